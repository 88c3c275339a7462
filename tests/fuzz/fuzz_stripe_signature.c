/* libFuzzer target for mod_paywall/paywall_stripe.c.
 *
 * Input: one mode byte, then the Stripe-Signature header up to the first '\n', then the payload. The result of
 * paywall_stripe_verify must be exactly what a reference written another way (strsep over a copy) predicts, for the
 * parser and for the MAC and the tolerance. Mode bit 0 puts a genuine "t=...,v1=..." for the payload in front of the
 * fuzzed header, so that the accepting path is explored too; bits 1-2 choose the tolerance, bits 3-5 how far the
 * signing time lies from now.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "paywall.h"

#include "fuzz.h"

#define FUZZ_NOW 1718000000LL

static const char fuzz_secret[] = "whsec_test_8fJk2LmN4pQr6StUv8WxYz0aBcDeFgHi";

typedef struct {
    long long t;
    size_t nv1;
    char v1[PAYWALL_STRIPE_V1_MAX][PAYWALL_STRIPE_SIG_HEX + 1];
} fuzz_header;

static int fuzz_all_of(const char *s, const char *set)
{
    return strspn(s, set) == strlen(s);
}

/* The header rules of paywall.h, restated: 0 well formed, 1 malformed, 2 no v1. */
static int fuzz_reference_parse(const char *header, size_t len, fuzz_header *out)
{
    char *copy, *cursor, *item, *eq;
    int have_t = 0, result = 0;
    size_t i;

    memset(out, 0, sizeof(*out));
    if (len == 0 || len > PAYWALL_STRIPE_HEADER_MAX) {
        return 1;
    }
    for (i = 0; i < len; i++) {
        if ((unsigned char)header[i] <= ' ' || (unsigned char)header[i] >= 0x7f) {
            return 1;
        }
    }
    copy = strndup(header, len);
    FUZZ_CHECK(copy != NULL);
    cursor = copy;
    while (result == 0 && (item = strsep(&cursor, ",")) != NULL) {
        eq = strchr(item, '=');
        if (eq == NULL || eq == item) {
            result = 1;
            break;
        }
        *eq = '\0';
        if (strcmp(item, "t") == 0) {
            if (have_t || eq[1] == '\0' || strlen(eq + 1) > 12 || !fuzz_all_of(eq + 1, "0123456789") ||
                (eq[1] == '0' && eq[2] != '\0')) {
                result = 1;
            }
            out->t = strtoll(eq + 1, NULL, 10);
            have_t = 1;
        } else if (strcmp(item, "v1") == 0) {
            if (strlen(eq + 1) != PAYWALL_STRIPE_SIG_HEX || !fuzz_all_of(eq + 1, "0123456789abcdef") ||
                out->nv1 == PAYWALL_STRIPE_V1_MAX) {
                result = 1;
            } else {
                memcpy(out->v1[out->nv1++], eq + 1, PAYWALL_STRIPE_SIG_HEX + 1);
            }
        }
    }
    free(copy);
    if (result == 0 && !have_t) {
        result = 1;
    }
    if (result == 0 && out->nv1 == 0) {
        result = 2;
    }
    return result;
}

static void fuzz_signature(long long t, const char *payload, size_t payload_len, char *hex)
{
    unsigned char mac[CRYPTO_SHA256_LEN];
    char *msg = malloc(32 + payload_len);
    int n;

    FUZZ_CHECK(msg != NULL);
    n = sprintf(msg, "%lld.", t);
    memcpy(msg + n, payload, payload_len);
    crypto_hmac_sha256(fuzz_secret, sizeof(fuzz_secret) - 1, msg, (size_t)n + payload_len, mac);
    crypto_hex_encode(mac, sizeof(mac), hex);
    free(msg);
}

static paywall_stripe_status fuzz_expected(const char *header, size_t header_len, const char *payload,
                                           size_t payload_len, long tolerance)
{
    char expected[PAYWALL_STRIPE_SIG_HEX + 1];
    fuzz_header parsed;
    size_t i;
    int match = 0, shape = fuzz_reference_parse(header, header_len, &parsed);

    if (shape == 1) {
        return PAYWALL_STRIPE_MALFORMED;
    }
    if (shape == 2) {
        return PAYWALL_STRIPE_NO_SIGNATURE;
    }
    if (payload_len == 0) {
        return PAYWALL_STRIPE_MALFORMED;
    }
    fuzz_signature(parsed.t, payload, payload_len, expected);
    for (i = 0; i < parsed.nv1; i++) {
        match |= strcmp(parsed.v1[i], expected) == 0;
    }
    if (!match) {
        return PAYWALL_STRIPE_MISMATCH;
    }
    if (tolerance <= 0) {
        tolerance = PAYWALL_STRIPE_TOLERANCE;
    }
    if (parsed.t > FUZZ_NOW + tolerance || parsed.t < FUZZ_NOW - tolerance) {
        return PAYWALL_STRIPE_TIMESTAMP;
    }
    return PAYWALL_STRIPE_OK;
}

static void fuzz_check_parse(const char *header, size_t header_len)
{
    paywall_stripe_header parsed;
    const char *reason = NULL;
    paywall_stripe_status status = paywall_stripe_parse_header(header, header_len, &parsed, &reason);
    size_t i;

    FUZZ_CHECK(reason != NULL && reason[0] != '\0');
    if (status != PAYWALL_STRIPE_OK) {
        return;
    }
    FUZZ_CHECK(parsed.timestamp >= 0 && parsed.timestamp <= 999999999999LL);
    FUZZ_CHECK(parsed.nv1 >= 1 && parsed.nv1 <= PAYWALL_STRIPE_V1_MAX);
    for (i = 0; i < parsed.nv1; i++) {
        FUZZ_CHECK(parsed.v1[i] >= header + 3 && parsed.v1[i] + PAYWALL_STRIPE_SIG_HEX <= header + header_len);
        FUZZ_CHECK(memcmp(parsed.v1[i] - 3, "v1=", 3) == 0);
        FUZZ_CHECK(parsed.v1[i] == header + 3 || parsed.v1[i][-4] == ',');
        FUZZ_CHECK(parsed.v1[i] + PAYWALL_STRIPE_SIG_HEX == header + header_len ||
                   parsed.v1[i][PAYWALL_STRIPE_SIG_HEX] == ',');
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const long tolerances[] = {0, 1, 300, 100000};
    static const long long offsets[] = {0, 1, -1, 299, -300, 301, -301, 100001};
    const char *text = (const char *)data + 1, *newline, *payload;
    char *header;
    size_t text_len, fuzz_len, payload_len, header_len = 0;
    const char *reason = NULL;
    paywall_stripe_status status;
    long tolerance;
    int mode;

    if (size == 0) {
        return 0;
    }
    mode = data[0];
    text_len = size - 1;
    newline = memchr(text, '\n', text_len);
    fuzz_len = newline != NULL ? (size_t)(newline - text) : text_len;
    payload = newline != NULL ? newline + 1 : text + text_len;
    payload_len = text_len - fuzz_len - (newline != NULL);
    tolerance = tolerances[(mode >> 1) & 3];

    header = malloc(fuzz_len + 128);
    FUZZ_CHECK(header != NULL);
    if (mode & 1) {
        long long t = FUZZ_NOW + offsets[(mode >> 3) & 7];

        header_len = (size_t)sprintf(header, "t=%lld,v1=", t);
        fuzz_signature(t, payload, payload_len, header + header_len);
        header_len += PAYWALL_STRIPE_SIG_HEX;
        if (fuzz_len > 0) {
            header[header_len++] = ',';
        }
    }
    memcpy(header + header_len, text, fuzz_len);
    header_len += fuzz_len;

    fuzz_check_parse(header, header_len);
    status = paywall_stripe_verify(header, header_len, payload, payload_len, fuzz_secret, sizeof(fuzz_secret) - 1,
                                   (time_t)FUZZ_NOW, tolerance, &reason);
    FUZZ_CHECK(reason != NULL && reason[0] != '\0');
    FUZZ_CHECK(strcmp(paywall_stripe_status_name(status), "unknown") != 0);
    if (status != fuzz_expected(header, header_len, payload, payload_len, tolerance)) {
        fprintf(stderr, "status %s (%s), reference %s\n", paywall_stripe_status_name(status), reason,
                paywall_stripe_status_name(fuzz_expected(header, header_len, payload, payload_len, tolerance)));
        abort();
    }
    /* a wrong secret never verifies */
    FUZZ_CHECK(paywall_stripe_verify(header, header_len, payload, payload_len, "whsec_other", 11, (time_t)FUZZ_NOW,
                                     tolerance, NULL) != PAYWALL_STRIPE_OK);
    free(header);
    return 0;
}
