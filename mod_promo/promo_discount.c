/* Discount codes (see promo.h): whether one applies, what it makes of a price, and the signed cookie that carries it
 * from page to page until checkout.
 *
 * The cookie is CODE "." EXPIRY "." MAC, the MAC base64url(HMAC-SHA256(key, CODE "." EXPIRY)). It is checked by
 * comparing the MAC it carries with the one computed again, both in their text form: base64url has one spelling per
 * MAC (crypto_base64url_decode refuses the others), so comparing texts is comparing MACs, without decoding input. */
#include "promo.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "crypto.h"

#define PROMO_MAC_TEXT_LEN 43 /* base64url of 32 bytes, unpadded */
#define PROMO_EXPIRY_MAX   19 /* digits of a 64-bit time */

const char *promo_code_status_message(promo_code_status status)
{
    switch (status) {
    case PROMO_CODE_OK:
        return "The offer has been applied.";
    case PROMO_CODE_UNKNOWN:
        return "This code is not valid.";
    case PROMO_CODE_DISABLED:
        return "This offer is not available.";
    case PROMO_CODE_NOT_STARTED:
        return "This offer has not started yet.";
    case PROMO_CODE_EXPIRED:
        return "This offer has ended.";
    case PROMO_CODE_EXHAUSTED:
        return "This offer has been fully redeemed.";
    }
    return "This code is not valid.";
}

const char *promo_code_status_name(promo_code_status status)
{
    switch (status) {
    case PROMO_CODE_OK:
        return "ok";
    case PROMO_CODE_UNKNOWN:
        return "unknown";
    case PROMO_CODE_DISABLED:
        return "disabled";
    case PROMO_CODE_NOT_STARTED:
        return "not_started";
    case PROMO_CODE_EXPIRED:
        return "expired";
    case PROMO_CODE_EXHAUSTED:
        return "exhausted";
    }
    return "unknown";
}

static int promo_code_char(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

int promo_code_normalise(const char *in, size_t len, char *out, size_t outlen)
{
    size_t i;

    if (out != NULL && outlen > 0) {
        out[0] = '\0';
    }
    if (in == NULL || out == NULL || len == 0 || len > PROMO_CODE_MAX || outlen <= len) {
        return -1;
    }
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];

        if (c >= 'a' && c <= 'z') {
            c = (unsigned char)(c - ('a' - 'A'));
        }
        if (!promo_code_char(c)) {
            out[0] = '\0';
            return -1;
        }
        out[i] = (char)c;
    }
    out[len] = '\0';
    return 0;
}

promo_code_status promo_code_check(const promo_promotion *promotion, time_t now, long long redemptions)
{
    const promo_promotion *p = promotion;

    if (p == NULL || p->discount == PROMO_DISCOUNT_NONE) {
        return PROMO_CODE_UNKNOWN;
    }
    if (!p->enabled) {
        return PROMO_CODE_DISABLED;
    }
    if (now < p->starts_at) {
        return PROMO_CODE_NOT_STARTED;
    }
    if (now >= p->ends_at) {
        return PROMO_CODE_EXPIRED;
    }
    if (p->max_redemptions > 0 && redemptions >= p->max_redemptions) {
        return PROMO_CODE_EXHAUSTED;
    }
    return PROMO_CODE_OK;
}

long long promo_first_year_price(const promo_promotion *promotion, long long base_cents, const char *base_currency)
{
    const promo_promotion *p = promotion;

    /* a negative price is no price this could sensibly reduce */
    if (p == NULL || base_cents < 0) {
        return base_cents;
    }
    if (p->discount == PROMO_DISCOUNT_PERCENT) {
        long long percent = p->percent_off > 100 ? 100 : p->percent_off;

        /* base * percent / 100 rounded half up, split so that the product cannot overflow: q * percent <= base */
        return base_cents - ((base_cents / 100) * percent + ((base_cents % 100) * percent + 50) / 100);
    }
    if (p->discount == PROMO_DISCOUNT_AMOUNT) {
        if (p->amount_off <= 0 || base_currency == NULL || p->currency[0] == '\0' ||
            strcasecmp(p->currency, base_currency) != 0) {
            return base_cents;
        }
        return p->amount_off >= base_cents ? 0 : base_cents - p->amount_off;
    }
    return base_cents;
}

/* The code as a cookie may carry it: what promo_code_normalise gives, so upper case only. */
static int promo_code_valid(const char *code, size_t len)
{
    size_t i;

    if (len == 0 || len > PROMO_CODE_MAX) {
        return 0;
    }
    for (i = 0; i < len; i++) {
        if (!promo_code_char((unsigned char)code[i])) {
            return 0;
        }
    }
    return 1;
}

static void promo_cookie_mac(const void *key, size_t key_len, const char *signed_part, size_t len,
                             char out[PROMO_MAC_TEXT_LEN + 1])
{
    unsigned char mac[CRYPTO_SHA256_LEN];

    crypto_hmac_sha256(key, key_len, signed_part, len, mac);
    crypto_base64url_encode(mac, sizeof(mac), out);
}

size_t promo_cookie_make(const void *key, size_t key_len, const char *code, time_t expires, char *out, size_t outlen)
{
    char value[PROMO_COOKIE_MAX];
    size_t code_len;
    int n;

    if (out != NULL && outlen > 0) {
        out[0] = '\0';
    }
    /* an empty key would sign cookies anyone can forge */
    if (key == NULL || key_len == 0 || code == NULL || out == NULL || expires < 0) {
        return 0;
    }
    code_len = strlen(code);
    if (!promo_code_valid(code, code_len)) {
        return 0;
    }
    n = snprintf(value, sizeof(value), "%s.%lld.", code, (long long)expires);
    if (n < 0 || (size_t)n + PROMO_MAC_TEXT_LEN >= sizeof(value) || (size_t)n + PROMO_MAC_TEXT_LEN >= outlen) {
        return 0;
    }
    /* the MAC covers the code and the expiry, not the '.' that separates it from them */
    promo_cookie_mac(key, key_len, value, (size_t)n - 1, value + n);
    memcpy(out, value, (size_t)n + PROMO_MAC_TEXT_LEN + 1);
    return (size_t)n + PROMO_MAC_TEXT_LEN;
}

int promo_cookie_parse(const void *key, size_t key_len, const char *value, size_t len, time_t now, char *code,
                       size_t codelen)
{
    char expected[PROMO_MAC_TEXT_LEN + 1];
    const char *dot1, *dot2;
    size_t code_len, expiry_len, i;
    long long expiry = 0;

    if (code != NULL && codelen > 0) {
        code[0] = '\0';
    }
    if (key == NULL || key_len == 0 || value == NULL || code == NULL || len >= PROMO_COOKIE_MAX) {
        return -1;
    }
    dot1 = memchr(value, '.', len);
    if (dot1 == NULL) {
        return -1;
    }
    code_len = (size_t)(dot1 - value);
    dot2 = memchr(dot1 + 1, '.', len - code_len - 1);
    if (dot2 == NULL) {
        return -1;
    }
    expiry_len = (size_t)(dot2 - dot1 - 1);
    if (!promo_code_valid(value, code_len) || codelen <= code_len || expiry_len == 0 || expiry_len > PROMO_EXPIRY_MAX ||
        len - (size_t)(dot2 + 1 - value) != PROMO_MAC_TEXT_LEN) {
        return -1;
    }
    for (i = 0; i < expiry_len; i++) {
        unsigned char c = (unsigned char)dot1[1 + i];

        /* 19 digits may still exceed a long long */
        if (c < '0' || c > '9' || expiry > (LLONG_MAX - (c - '0')) / 10) {
            return -1;
        }
        expiry = expiry * 10 + (c - '0');
    }
    promo_cookie_mac(key, key_len, value, (size_t)(dot2 - value), expected);
    if (!crypto_equal_consttime(expected, dot2 + 1, PROMO_MAC_TEXT_LEN)) {
        return -1;
    }
    if ((long long)now >= expiry) {
        return -1;
    }
    memcpy(code, value, code_len);
    code[code_len] = '\0';
    return 0;
}
