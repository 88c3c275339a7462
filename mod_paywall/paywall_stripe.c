/* Stripe-Signature verification (see paywall.h), following https://docs.stripe.com/webhooks#verify-manually and
 * the official libraries' behaviour, stricter only where they accept what Stripe never sends. */
#include "paywall.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"

#define PAYWALL_STRIPE_T_DIGITS_MAX 12 /* up to the year 33658; more is not a timestamp but an overflow attempt */

static int paywall_stripe_is_lower_hex(const char *s, size_t len)
{
    size_t i;

    for (i = 0; i < len; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) {
            return 0;
        }
    }
    return 1;
}

/* Only the canonical form: Stripe's libraries sign "<parsed integer>.<payload>", so a t written as "0123" or "+123"
 * would be signed under another string than the one in the header. */
static int paywall_stripe_parse_timestamp(const char *s, size_t len, long long *out)
{
    long long value = 0;
    size_t i;

    if (len == 0 || len > PAYWALL_STRIPE_T_DIGITS_MAX || (len > 1 && s[0] == '0')) {
        return -1;
    }
    for (i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return -1;
        }
        value = value * 10 + (s[i] - '0');
    }
    *out = value;
    return 0;
}

static paywall_stripe_status paywall_stripe_fail(paywall_stripe_status status, const char *why, const char **reason)
{
    if (reason != NULL) {
        *reason = why;
    }
    return status;
}

paywall_stripe_status paywall_stripe_parse_header(const char *header, size_t header_len, paywall_stripe_header *out,
                                                  const char **reason)
{
    const char *item, *end, *eq, *next;
    size_t i, key_len, value_len;
    int have_t = 0;

    memset(out, 0, sizeof(*out));
    if (header == NULL || header_len == 0) {
        return paywall_stripe_fail(PAYWALL_STRIPE_MALFORMED, "empty Stripe-Signature header", reason);
    }
    if (header_len > PAYWALL_STRIPE_HEADER_MAX) {
        return paywall_stripe_fail(PAYWALL_STRIPE_MALFORMED, "Stripe-Signature header too long", reason);
    }
    for (i = 0; i < header_len; i++) {
        if ((unsigned char)header[i] <= 0x20 || (unsigned char)header[i] >= 0x7f) {
            return paywall_stripe_fail(PAYWALL_STRIPE_MALFORMED, "space, control or non-ASCII character in header",
                                       reason);
        }
    }

    end = header + header_len;
    for (item = header;; item = next + 1) {
        next = memchr(item, ',', (size_t)(end - item));
        if (next == NULL) {
            next = end;
        }
        if (next == item) {
            return paywall_stripe_fail(PAYWALL_STRIPE_MALFORMED, "empty item in header", reason);
        }
        eq = memchr(item, '=', (size_t)(next - item));
        if (eq == NULL || eq == item) {
            return paywall_stripe_fail(PAYWALL_STRIPE_MALFORMED, "header item is not scheme=value", reason);
        }
        key_len = (size_t)(eq - item);
        value_len = (size_t)(next - eq - 1);
        if (key_len == 1 && item[0] == 't') {
            if (have_t) {
                return paywall_stripe_fail(PAYWALL_STRIPE_MALFORMED, "more than one timestamp", reason);
            }
            if (paywall_stripe_parse_timestamp(eq + 1, value_len, &out->timestamp) != 0) {
                return paywall_stripe_fail(PAYWALL_STRIPE_MALFORMED, "malformed timestamp", reason);
            }
            have_t = 1;
        } else if (key_len == 2 && item[0] == 'v' && item[1] == '1') {
            if (value_len != PAYWALL_STRIPE_SIG_HEX || !paywall_stripe_is_lower_hex(eq + 1, value_len)) {
                return paywall_stripe_fail(PAYWALL_STRIPE_MALFORMED, "v1 signature is not 64 lower-case hex digits",
                                           reason);
            }
            if (out->nv1 == PAYWALL_STRIPE_V1_MAX) {
                return paywall_stripe_fail(PAYWALL_STRIPE_MALFORMED, "too many v1 signatures", reason);
            }
            out->v1[out->nv1++] = eq + 1;
        }
        /* v0 (test-mode signatures made with a secret we do not hold) and future schemes are skipped, as Stripe's
         * libraries skip them. */
        if (next == end) {
            break;
        }
    }
    if (!have_t) {
        return paywall_stripe_fail(PAYWALL_STRIPE_MALFORMED, "no timestamp", reason);
    }
    if (out->nv1 == 0) {
        return paywall_stripe_fail(PAYWALL_STRIPE_NO_SIGNATURE, "no v1 signature", reason);
    }
    return paywall_stripe_fail(PAYWALL_STRIPE_OK, "valid", reason);
}

static void paywall_stripe_expected(const char *secret, size_t secret_len, long long timestamp, const char *payload,
                                    size_t payload_len, char hex[PAYWALL_STRIPE_SIG_HEX + 1])
{
    unsigned char mac[CRYPTO_SHA256_LEN];
    char prefix[PAYWALL_STRIPE_T_DIGITS_MAX + 2];
    int prefix_len = snprintf(prefix, sizeof(prefix), "%lld.", timestamp);
    char *signed_payload = malloc((size_t)prefix_len + payload_len);

    if (signed_payload == NULL) {
        /* Leaves a string no header can hold (v1 are hex): the comparison fails, as it must without a MAC. */
        memset(hex, 'x', PAYWALL_STRIPE_SIG_HEX);
        hex[PAYWALL_STRIPE_SIG_HEX] = '\0';
        return;
    }
    memcpy(signed_payload, prefix, (size_t)prefix_len);
    memcpy(signed_payload + prefix_len, payload, payload_len);
    crypto_hmac_sha256(secret, secret_len, signed_payload, (size_t)prefix_len + payload_len, mac);
    free(signed_payload);
    crypto_hex_encode(mac, sizeof(mac), hex);
}

paywall_stripe_status paywall_stripe_verify(const char *header, size_t header_len, const char *payload,
                                            size_t payload_len, const char *secret, size_t secret_len, time_t now,
                                            long tolerance, const char **reason)
{
    paywall_stripe_header parsed;
    paywall_stripe_status status;
    char expected[PAYWALL_STRIPE_SIG_HEX + 1];
    long long age;
    size_t i;
    int match = 0;

    if (secret == NULL || secret_len == 0) {
        return paywall_stripe_fail(PAYWALL_STRIPE_NO_SECRET, "no webhook signing secret configured", reason);
    }
    status = paywall_stripe_parse_header(header, header_len, &parsed, reason);
    if (status != PAYWALL_STRIPE_OK) {
        return status;
    }
    if (payload == NULL || payload_len == 0) {
        return paywall_stripe_fail(PAYWALL_STRIPE_MALFORMED, "empty payload", reason);
    }
    paywall_stripe_expected(secret, secret_len, parsed.timestamp, payload, payload_len, expected);
    /* Every v1 is compared, matched or not, so the time taken says nothing about which one matched. */
    for (i = 0; i < parsed.nv1; i++) {
        match |= crypto_equal_consttime(expected, parsed.v1[i], PAYWALL_STRIPE_SIG_HEX);
    }
    if (!match) {
        return paywall_stripe_fail(PAYWALL_STRIPE_MISMATCH, "signature mismatch", reason);
    }
    /* Checked after the signature, as Stripe's libraries do, so that this reason means "genuine but replayed or
     * delayed", never "forged". */
    if (tolerance <= 0) {
        tolerance = PAYWALL_STRIPE_TOLERANCE;
    }
    age = (long long)now - parsed.timestamp;
    if (age > tolerance || age < -(long long)tolerance) {
        return paywall_stripe_fail(PAYWALL_STRIPE_TIMESTAMP, "timestamp outside tolerance", reason);
    }
    return paywall_stripe_fail(PAYWALL_STRIPE_OK, "valid", reason);
}

const char *paywall_stripe_status_name(paywall_stripe_status status)
{
    switch (status) {
    case PAYWALL_STRIPE_OK:
        return "ok";
    case PAYWALL_STRIPE_MALFORMED:
        return "malformed";
    case PAYWALL_STRIPE_NO_SIGNATURE:
        return "no signature";
    case PAYWALL_STRIPE_MISMATCH:
        return "mismatch";
    case PAYWALL_STRIPE_TIMESTAMP:
        return "timestamp";
    case PAYWALL_STRIPE_NO_SECRET:
        return "no secret";
    }
    return "unknown";
}
