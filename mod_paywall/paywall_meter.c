/* The anonymous meter cookie, meter periods, and the setters of PaywallMeter and of durations (see paywall.h).
 *
 * Cookie value: base64url(payload) "." base64url(HMAC-SHA256(key, PAYWALL_METER_LABEL || payload)), where payload is
 * a version byte, the 16-byte id and the period anchor as a big-endian 64-bit count of seconds: 78 characters. */
#include "paywall.h"

#include <stdint.h>
#include <string.h>

#include "crypto.h"

#define PAYWALL_METER_VERSION     1
#define PAYWALL_METER_PAYLOAD_LEN (1 + PAYWALL_METER_ID_LEN + 8)
/* Mixed into the MAC so that a key shared with another signer (say, a session secret reused by mistake) cannot turn
 * one of its tokens into a meter cookie. */
#define PAYWALL_METER_LABEL     "mod_paywall meter cookie"
#define PAYWALL_METER_LABEL_LEN (sizeof(PAYWALL_METER_LABEL) - 1)
#define PAYWALL_METER_START_MAX ((int64_t)1 << 40) /* keeps the period arithmetic far from overflow */
#define PAYWALL_DURATION_MAX    (3650LL * 24 * 60 * 60)

#define PAYWALL_B64_LEN(n)    ((n) / 3 * 4 + ((n) % 3 ? (n) % 3 + 1 : 0)) /* crypto_base64url_len, at compile time */
#define PAYWALL_METER_MAC_B64 PAYWALL_B64_LEN(CRYPTO_SHA256_LEN)

_Static_assert(PAYWALL_B64_LEN(PAYWALL_METER_PAYLOAD_LEN) + 1 + PAYWALL_METER_MAC_B64 < PAYWALL_METER_COOKIE_MAX,
               "PAYWALL_METER_COOKIE_MAX holds a cookie and its NUL");

static void paywall_meter_mac(const void *key, size_t key_len, const unsigned char *payload,
                              unsigned char mac[CRYPTO_SHA256_LEN])
{
    unsigned char msg[PAYWALL_METER_LABEL_LEN + PAYWALL_METER_PAYLOAD_LEN];

    memcpy(msg, PAYWALL_METER_LABEL, PAYWALL_METER_LABEL_LEN);
    memcpy(msg + PAYWALL_METER_LABEL_LEN, payload, PAYWALL_METER_PAYLOAD_LEN);
    crypto_hmac_sha256(key, key_len, msg, sizeof(msg), mac);
}

static void paywall_meter_payload(const paywall_meter_visitor *visitor, unsigned char *payload)
{
    uint64_t start = (uint64_t)(int64_t)visitor->start;
    int i;

    payload[0] = PAYWALL_METER_VERSION;
    memcpy(payload + 1, visitor->id, PAYWALL_METER_ID_LEN);
    for (i = 0; i < 8; i++) {
        payload[1 + PAYWALL_METER_ID_LEN + i] = (unsigned char)(start >> (56 - 8 * i));
    }
}

int paywall_meter_visitor_new(paywall_meter_visitor *out, time_t now)
{
    if (crypto_random_bytes(out->id, sizeof(out->id)) != 0) {
        return -1;
    }
    out->start = now;
    return 0;
}

size_t paywall_meter_cookie_make(const paywall_meter_visitor *visitor, const void *key, size_t key_len, char *out,
                                 size_t outlen)
{
    unsigned char payload[PAYWALL_METER_PAYLOAD_LEN], mac[CRYPTO_SHA256_LEN];
    size_t n;

    if (key == NULL || key_len < PAYWALL_METER_KEY_MIN || out == NULL || outlen < PAYWALL_METER_COOKIE_MAX) {
        return 0;
    }
    paywall_meter_payload(visitor, payload);
    paywall_meter_mac(key, key_len, payload, mac);
    n = crypto_base64url_encode(payload, sizeof(payload), out);
    out[n++] = '.';
    n += crypto_base64url_encode(mac, sizeof(mac), out + n);
    out[n] = '\0';
    return n;
}

/* Decodes one base64url part of known decoded size, refusing any other spelling of the same bytes (non-zero trailing
 * bits), so that exactly one cookie string carries a given payload and MAC. */
static int paywall_meter_decode(const char *in, size_t len, unsigned char *out, size_t want)
{
    unsigned char buf[CRYPTO_SHA256_LEN + 3];
    char again[PAYWALL_METER_MAC_B64 + 4];

    if (len != crypto_base64url_len(want) || len >= sizeof(again) || want > CRYPTO_SHA256_LEN) {
        return -1;
    }
    if (crypto_base64url_decode(in, len, buf) != want) {
        return -1;
    }
    crypto_base64url_encode(buf, want, again);
    if (memcmp(again, in, len) != 0) {
        return -1;
    }
    memcpy(out, buf, want);
    return 0;
}

/* Splits and decodes the cookie, then checks its MAC; the payload is returned only when the MAC holds. */
static paywall_meter_cookie_status paywall_meter_open(const char *value, size_t len, const void *key, size_t key_len,
                                                      unsigned char *payload)
{
    unsigned char mac[CRYPTO_SHA256_LEN], expected[CRYPTO_SHA256_LEN];
    const char *dot;

    if (key == NULL || key_len < PAYWALL_METER_KEY_MIN) {
        return PAYWALL_METER_COOKIE_BAD_KEY;
    }
    if (value == NULL || len == 0 || len > PAYWALL_METER_COOKIE_MAX) {
        return PAYWALL_METER_COOKIE_MALFORMED;
    }
    dot = memchr(value, '.', len);
    if (dot == NULL) {
        return PAYWALL_METER_COOKIE_MALFORMED;
    }
    if (paywall_meter_decode(value, (size_t)(dot - value), payload, PAYWALL_METER_PAYLOAD_LEN) != 0) {
        return PAYWALL_METER_COOKIE_MALFORMED;
    }
    /* A MAC of the wrong length is a truncated or altered cookie: reported as a bad signature, not as garbage. */
    if (paywall_meter_decode(dot + 1, len - (size_t)(dot - value) - 1, mac, CRYPTO_SHA256_LEN) != 0) {
        return PAYWALL_METER_COOKIE_BAD_SIGNATURE;
    }
    paywall_meter_mac(key, key_len, payload, expected);
    if (!crypto_equal_consttime(mac, expected, CRYPTO_SHA256_LEN)) {
        return PAYWALL_METER_COOKIE_BAD_SIGNATURE;
    }
    return PAYWALL_METER_COOKIE_OK;
}

paywall_meter_cookie_status paywall_meter_cookie_verify(const char *value, size_t len, const void *key, size_t key_len)
{
    unsigned char payload[PAYWALL_METER_PAYLOAD_LEN];

    return paywall_meter_open(value, len, key, key_len, payload);
}

paywall_meter_cookie_status paywall_meter_cookie_parse(const char *value, size_t len, const void *key, size_t key_len,
                                                       paywall_meter_visitor *out)
{
    unsigned char payload[PAYWALL_METER_PAYLOAD_LEN];
    paywall_meter_cookie_status status = paywall_meter_open(value, len, key, key_len, payload);
    uint64_t start = 0;
    int i;

    if (status != PAYWALL_METER_COOKIE_OK) {
        return status;
    }
    for (i = 0; i < 8; i++) {
        start = start << 8 | payload[1 + PAYWALL_METER_ID_LEN + i];
    }
    /* Signed by us, so these only fail for a cookie of a later format or a node with a broken clock. */
    if (payload[0] != PAYWALL_METER_VERSION || (int64_t)start < 0 || (int64_t)start > PAYWALL_METER_START_MAX) {
        return PAYWALL_METER_COOKIE_MALFORMED;
    }
    memcpy(out->id, payload + 1, PAYWALL_METER_ID_LEN);
    out->start = (time_t)(int64_t)start;
    return PAYWALL_METER_COOKIE_OK;
}

const char *paywall_meter_cookie_status_name(paywall_meter_cookie_status status)
{
    switch (status) {
    case PAYWALL_METER_COOKIE_OK:
        return "valid";
    case PAYWALL_METER_COOKIE_MALFORMED:
        return "malformed meter cookie";
    case PAYWALL_METER_COOKIE_BAD_SIGNATURE:
        return "meter cookie signature mismatch";
    case PAYWALL_METER_COOKIE_BAD_KEY:
        return "meter key shorter than 16 bytes";
    }
    return "unknown";
}

void paywall_meter_id_hex(const paywall_meter_visitor *visitor, char *out)
{
    crypto_hex_encode(visitor->id, PAYWALL_METER_ID_LEN, out);
}

void paywall_meter_period(time_t anchor, long period, time_t now, time_t *start, time_t *end)
{
    long long diff = (long long)now - (long long)anchor;
    long long k;

    if (period <= 0) {
        period = 1;
    }
    k = diff / period;
    if (diff % period < 0) {
        k--; /* floor, not truncation: a now before the anchor belongs to the period before it */
    }
    *start = (time_t)(anchor + k * period);
    *end = (time_t)(*start + period);
}

/* ------------------------------------------------------------------------------------------- directives */

const char *paywall_parse_duration(const char *value, long *out)
{
    static const char *const message =
        "must be a duration such as 30s, 15m, 36h or 7d (a bare number is seconds), at most 3650d";
    long long n = 0;
    size_t i;

    if (value == NULL || value[0] < '0' || value[0] > '9') {
        return message;
    }
    for (i = 0; value[i] >= '0' && value[i] <= '9'; i++) {
        if (i >= 9) {
            return message;
        }
        n = n * 10 + (value[i] - '0');
    }
    switch (value[i]) {
    case '\0':
        break;
    case 's':
        break;
    case 'm':
        n *= 60;
        break;
    case 'h':
        n *= 60 * 60;
        break;
    case 'd':
        n *= 24 * 60 * 60;
        break;
    default:
        return message;
    }
    if (value[i] != '\0' && value[i + 1] != '\0') {
        return message;
    }
    if (n > PAYWALL_DURATION_MAX) {
        return message;
    }
    *out = (long)n;
    return NULL;
}

const char *paywall_parse_meter(const char *count, const char *period, paywall_meter_config *out)
{
    long limit = 0, seconds;
    size_t i;

    if (count == NULL || count[0] == '\0') {
        return "needs a number of free views from 0 to 10000 and a period such as 30d";
    }
    for (i = 0; count[i] != '\0'; i++) {
        if (i >= 5 || count[i] < '0' || count[i] > '9') {
            return "needs a number of free views from 0 to 10000 and a period such as 30d";
        }
        limit = limit * 10 + (count[i] - '0');
    }
    if (limit > PAYWALL_METER_LIMIT_MAX) {
        return "needs a number of free views from 0 to 10000 and a period such as 30d";
    }
    if (period == NULL || paywall_parse_duration(period, &seconds) != NULL || seconds < 1 ||
        seconds > PAYWALL_METER_PERIOD_MAX) {
        return "needs a period from 1s to 366d such as 30d, 12h or 90m";
    }
    out->limit = (unsigned)limit;
    out->period = seconds;
    return NULL;
}
