/* Unit tests of mod_paywall's server-neutral logic: Stripe-Signature headers made by the official stripe npm package
 * accepted and every kind of tampering refused, Google's crawler-ranges format, the access decision at its boundary
 * times, the anonymous meter cookie, and the directive setters. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include "crypto.h"
#include "paywall.h"

#define LIT(s) s, sizeof(s) - 1

/* ------------------------------------------------------------------------------------------ Stripe vectors */

/* Generated with the stripe npm package 23.1.0 (node 20):
 *   stripe.webhooks.generateTestHeaderString({payload, secret, timestamp})
 * The multi-v1 headers join the headers made for the same payload and timestamp with two secrets (as Stripe signs
 * while a secret is being rolled) and a v0 made with scheme: 'v0'; stripe.webhooks.signature.verifyHeader accepts
 * them with either secret. */
static const char secret_a[] = "whsec_test_8fJk2LmN4pQr6StUv8WxYz0aBcDeFgHi";
static const char secret_b[] = "whsec_rolled_Zy9Xw8Vu7Ts6Rq5Po4Nm3Lk2Ji1Hg0Fe";

static const char payload_subscription[] = "{\n"
                                           "  \"id\": \"evt_1PbQz2LkdIwHu7ixAbCdEfGh\",\n"
                                           "  \"object\": \"event\",\n"
                                           "  \"api_version\": \"2024-06-20\",\n"
                                           "  \"created\": 1718000000,\n"
                                           "  \"data\": {\n"
                                           "    \"object\": {\n"
                                           "      \"id\": \"sub_1PbQyzLkdIwHu7ixQ1w2e3r4\",\n"
                                           "      \"object\": \"subscription\",\n"
                                           "      \"status\": \"active\",\n"
                                           "      \"cancel_at_period_end\": false,\n"
                                           "      \"current_period_end\": 1720592000\n"
                                           "    }\n"
                                           "  },\n"
                                           "  \"type\": \"customer.subscription.updated\"\n"
                                           "}";
static const char header_subscription[] =
    "t=1718000000,v1=5cf8e6a8539a7bddea54974e5d84abac0d790ca4abba4d3f018839b5c83b3485";
#define T_SUBSCRIPTION 1718000000

static const char payload_utf8[] =
    "{\"id\":\"evt_2\",\"object\":\"event\",\"type\":\"invoice.payment_failed\",\"data\":{\"object\":{\"cu"
    "stomer_name\":\"Zo\303\253 M\303\274ller \342\202\254\"}}}";
static const char header_utf8[] = "t=1718000123,v1=2d3d5f52a0dedc9302470aad3e3d0dd4a8674443a0d23e6612348a0bc2fe25db";
#define T_UTF8 1718000123

/* signed with secret_b */
static const char header_one_byte[] =
    "t=1700000000,v1=76990c5d7267dbee8538ad336ad6bde985544ba38c0a19ccf5b2881c78cb0f4f";
#define T_ONE_BYTE 1700000000

/* payload_subscription at 1718000400: v1 with secret_a, v1 with secret_b, v0 with another secret */
static const char header_multi[] = "t=1718000400,v1=99e090f38819d5e0549d363142e9b3e8b7453c4a31d4c29088c87278d535977a,"
                                   "v1=d9e70d82a26f3cc363caec4308b293e5c544cf35318214d2b964397cf3793e14,"
                                   "v0=326d7037ee2906e68acd7e9e5f0443064996d1631a7fb13ec52ad71b65c7bfac";
static const char header_reordered[] = "v1=d9e70d82a26f3cc363caec4308b293e5c544cf35318214d2b964397cf3793e14,"
                                       "v0=326d7037ee2906e68acd7e9e5f0443064996d1631a7fb13ec52ad71b65c7bfac,"
                                       "t=1718000400,"
                                       "v1=99e090f38819d5e0549d363142e9b3e8b7453c4a31d4c29088c87278d535977a";
#define T_MULTI 1718000400

#define SIG_A "5cf8e6a8539a7bddea54974e5d84abac0d790ca4abba4d3f018839b5c83b3485"

static paywall_stripe_status verify(const char *header, size_t header_len, const char *payload, size_t payload_len,
                                    const char *secret, time_t now, long tolerance, const char **reason)
{
    return paywall_stripe_verify(header, header_len, payload, payload_len, secret, strlen(secret), now, tolerance,
                                 reason);
}

static void assert_verify(const char *header, const char *payload, size_t payload_len, const char *secret, time_t now,
                          long tolerance, paywall_stripe_status expected, const char *expected_reason)
{
    const char *reason = NULL;
    paywall_stripe_status status =
        verify(header, strlen(header), payload, payload_len, secret, now, tolerance, &reason);

    if (status != expected || strcmp(reason, expected_reason) != 0) {
        print_error("header %s: got %s (%s), expected %s (%s)\n", header, paywall_stripe_status_name(status), reason,
                    paywall_stripe_status_name(expected), expected_reason);
        fail();
    }
}

static void test_stripe_npm_vectors(void **state)
{
    static const struct {
        const char *header, *payload, *secret;
        size_t payload_len;
        time_t t;
    } vectors[] = {
        {header_subscription, payload_subscription, secret_a, sizeof(payload_subscription) - 1, T_SUBSCRIPTION},
        {header_utf8, payload_utf8, secret_a, sizeof(payload_utf8) - 1, T_UTF8},
        {header_one_byte, "x", secret_b, 1, T_ONE_BYTE},
        {header_multi, payload_subscription, secret_a, sizeof(payload_subscription) - 1, T_MULTI},
        {header_multi, payload_subscription, secret_b, sizeof(payload_subscription) - 1, T_MULTI},
        {header_reordered, payload_subscription, secret_a, sizeof(payload_subscription) - 1, T_MULTI},
        {header_reordered, payload_subscription, secret_b, sizeof(payload_subscription) - 1, T_MULTI},
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
        /* at the signing time and at both edges of the 300 s tolerance */
        assert_verify(vectors[i].header, vectors[i].payload, vectors[i].payload_len, vectors[i].secret, vectors[i].t, 0,
                      PAYWALL_STRIPE_OK, "valid");
        assert_verify(vectors[i].header, vectors[i].payload, vectors[i].payload_len, vectors[i].secret,
                      vectors[i].t + 300, 300, PAYWALL_STRIPE_OK, "valid");
        assert_verify(vectors[i].header, vectors[i].payload, vectors[i].payload_len, vectors[i].secret,
                      vectors[i].t - 300, 300, PAYWALL_STRIPE_OK, "valid");
        /* NULL reason is allowed */
        assert_int_equal(verify(vectors[i].header, strlen(vectors[i].header), vectors[i].payload,
                                vectors[i].payload_len, vectors[i].secret, vectors[i].t, 300, NULL),
                         PAYWALL_STRIPE_OK);
    }
}

static void test_stripe_parse_header(void **state)
{
    paywall_stripe_header parsed;
    const char *reason = NULL;

    (void)state;
    assert_int_equal(paywall_stripe_parse_header(LIT(header_multi), &parsed, &reason), PAYWALL_STRIPE_OK);
    assert_string_equal(reason, "valid");
    assert_true(parsed.timestamp == T_MULTI);
    assert_int_equal(parsed.nv1, 2);
    assert_memory_equal(parsed.v1[0], "99e090f3", 8);
    assert_memory_equal(parsed.v1[1], "d9e70d82", 8);
    assert_ptr_equal(parsed.v1[0], header_multi + strlen("t=1718000400,v1="));

    assert_int_equal(paywall_stripe_parse_header(LIT(header_reordered), &parsed, &reason), PAYWALL_STRIPE_OK);
    assert_true(parsed.timestamp == T_MULTI);
    assert_int_equal(parsed.nv1, 2);
    assert_memory_equal(parsed.v1[0], "d9e70d82", 8);

    assert_int_equal(paywall_stripe_parse_header(LIT("t=0,v1=" SIG_A), &parsed, NULL), PAYWALL_STRIPE_OK);
    assert_true(parsed.timestamp == 0);
    assert_int_equal(paywall_stripe_parse_header(LIT("t=999999999999,v1=" SIG_A), &parsed, NULL), PAYWALL_STRIPE_OK);
    assert_true(parsed.timestamp == 999999999999LL);
    assert_int_equal(paywall_stripe_parse_header(NULL, 0, &parsed, &reason), PAYWALL_STRIPE_MALFORMED);
}

static void test_stripe_tampered_payload(void **state)
{
    char payload[sizeof(payload_subscription)];
    const char *reason = NULL;
    size_t len = sizeof(payload_subscription) - 1;

    (void)state;
    memcpy(payload, payload_subscription, sizeof(payload));
    payload[strstr(payload, "active") - payload] = 'A';
    assert_verify(header_subscription, payload, len, secret_a, T_SUBSCRIPTION, 300, PAYWALL_STRIPE_MISMATCH,
                  "signature mismatch");
    /* one byte less, one byte more (the raw body must be used, not a re-serialised one) */
    assert_verify(header_subscription, payload_subscription, len - 1, secret_a, T_SUBSCRIPTION, 300,
                  PAYWALL_STRIPE_MISMATCH, "signature mismatch");
    memcpy(payload, payload_subscription, sizeof(payload));
    assert_verify(header_subscription, "{\"id\":\"evt_1PbQz2LkdIwHu7ixAbCdEfGh\"}",
                  strlen("{\"id\":\"evt_1PbQz2LkdIwHu7ixAbCdEfGh\"}"), secret_a, T_SUBSCRIPTION, 300,
                  PAYWALL_STRIPE_MISMATCH, "signature mismatch");
    assert_verify(header_one_byte, "y", 1, secret_b, T_ONE_BYTE, 300, PAYWALL_STRIPE_MISMATCH, "signature mismatch");
    /* the payload of another event with this event's signature */
    assert_verify(header_utf8, payload_subscription, len, secret_a, T_UTF8, 300, PAYWALL_STRIPE_MISMATCH,
                  "signature mismatch");
    /* the timestamp is signed: moving it, even within the tolerance, breaks the signature */
    assert_verify("t=1718000001,v1=" SIG_A, payload_subscription, len, secret_a, T_SUBSCRIPTION, 300,
                  PAYWALL_STRIPE_MISMATCH, "signature mismatch");
    /* one hex digit of the signature changed */
    assert_verify("t=1718000000,v1=5cf8e6a8539a7bddea54974e5d84abac0d790ca4abba4d3f018839b5c83b3486",
                  payload_subscription, len, secret_a, T_SUBSCRIPTION, 300, PAYWALL_STRIPE_MISMATCH,
                  "signature mismatch");
    /* the signature under v0 only does not count */
    assert_verify("t=1718000000,v0=" SIG_A, payload_subscription, len, secret_a, T_SUBSCRIPTION, 300,
                  PAYWALL_STRIPE_NO_SIGNATURE, "no v1 signature");
    assert_verify(header_subscription, "", 0, secret_a, T_SUBSCRIPTION, 300, PAYWALL_STRIPE_MALFORMED, "empty payload");
    assert_int_equal(verify(LIT(header_subscription), NULL, 0, secret_a, T_SUBSCRIPTION, 300, &reason),
                     PAYWALL_STRIPE_MALFORMED);
}

static void test_stripe_wrong_secret(void **state)
{
    size_t len = sizeof(payload_subscription) - 1;
    const char *reason = NULL;

    (void)state;
    assert_verify(header_subscription, payload_subscription, len, secret_b, T_SUBSCRIPTION, 300,
                  PAYWALL_STRIPE_MISMATCH, "signature mismatch");
    assert_verify(header_subscription, payload_subscription, len, "whsec_test_8fJk2LmN4pQr6StUv8WxYz0aBcDeFgHi\n",
                  T_SUBSCRIPTION, 300, PAYWALL_STRIPE_MISMATCH, "signature mismatch");
    /* the secret without its whsec_ prefix is another key */
    assert_verify(header_subscription, payload_subscription, len, "test_8fJk2LmN4pQr6StUv8WxYz0aBcDeFgHi",
                  T_SUBSCRIPTION, 300, PAYWALL_STRIPE_MISMATCH, "signature mismatch");
    assert_verify(header_multi, payload_subscription, len, "whsec_test_mode_v0", T_MULTI, 300, PAYWALL_STRIPE_MISMATCH,
                  "signature mismatch");
    assert_int_equal(paywall_stripe_verify(LIT(header_subscription), payload_subscription, len, secret_a, 0,
                                           T_SUBSCRIPTION, 300, &reason),
                     PAYWALL_STRIPE_NO_SECRET);
    assert_string_equal(reason, "no webhook signing secret configured");
    assert_int_equal(paywall_stripe_verify(LIT(header_subscription), payload_subscription, len, NULL, 0, T_SUBSCRIPTION,
                                           300, &reason),
                     PAYWALL_STRIPE_NO_SECRET);
}

static void test_stripe_timestamps(void **state)
{
    size_t len = sizeof(payload_subscription) - 1;

    (void)state;
    /* stale */
    assert_verify(header_subscription, payload_subscription, len, secret_a, T_SUBSCRIPTION + 301, 300,
                  PAYWALL_STRIPE_TIMESTAMP, "timestamp outside tolerance");
    assert_verify(header_subscription, payload_subscription, len, secret_a, T_SUBSCRIPTION + 86400, 0,
                  PAYWALL_STRIPE_TIMESTAMP, "timestamp outside tolerance");
    /* from the future */
    assert_verify(header_subscription, payload_subscription, len, secret_a, T_SUBSCRIPTION - 301, 300,
                  PAYWALL_STRIPE_TIMESTAMP, "timestamp outside tolerance");
    assert_verify(header_multi, payload_subscription, len, secret_b, T_MULTI - 301, 300, PAYWALL_STRIPE_TIMESTAMP,
                  "timestamp outside tolerance");
    /* a configured tolerance */
    assert_verify(header_subscription, payload_subscription, len, secret_a, T_SUBSCRIPTION + 600, 600,
                  PAYWALL_STRIPE_OK, "valid");
    assert_verify(header_subscription, payload_subscription, len, secret_a, T_SUBSCRIPTION + 601, 600,
                  PAYWALL_STRIPE_TIMESTAMP, "timestamp outside tolerance");
    assert_verify(header_subscription, payload_subscription, len, secret_a, T_SUBSCRIPTION + 60, 60, PAYWALL_STRIPE_OK,
                  "valid");
    assert_verify(header_subscription, payload_subscription, len, secret_a, T_SUBSCRIPTION + 61, 60,
                  PAYWALL_STRIPE_TIMESTAMP, "timestamp outside tolerance");
    /* 0 and negative mean the default, never "no check" */
    assert_verify(header_subscription, payload_subscription, len, secret_a, T_SUBSCRIPTION + 301, 0,
                  PAYWALL_STRIPE_TIMESTAMP, "timestamp outside tolerance");
    assert_verify(header_subscription, payload_subscription, len, secret_a, T_SUBSCRIPTION + 301, -1,
                  PAYWALL_STRIPE_TIMESTAMP, "timestamp outside tolerance");
    /* a forged signature is reported as such even when also stale */
    assert_verify(header_subscription, payload_subscription, len, secret_b, T_SUBSCRIPTION + 10000, 300,
                  PAYWALL_STRIPE_MISMATCH, "signature mismatch");
}

static void test_stripe_malformed(void **state)
{
    static const struct {
        const char *header;
        paywall_stripe_status status;
        const char *reason;
    } cases[] = {
        {"", PAYWALL_STRIPE_MALFORMED, "empty Stripe-Signature header"},
        {"t=1718000000", PAYWALL_STRIPE_NO_SIGNATURE, "no v1 signature"},
        {"t=1718000000,v0=" SIG_A, PAYWALL_STRIPE_NO_SIGNATURE, "no v1 signature"},
        {"t=1718000000,v2=" SIG_A, PAYWALL_STRIPE_NO_SIGNATURE, "no v1 signature"},
        {"t=1718000000,V1=" SIG_A, PAYWALL_STRIPE_NO_SIGNATURE, "no v1 signature"},
        {"v1=" SIG_A, PAYWALL_STRIPE_MALFORMED, "no timestamp"},
        {"T=1718000000,v1=" SIG_A, PAYWALL_STRIPE_MALFORMED, "no timestamp"},
        {"v1=" SIG_A ",v1=" SIG_A, PAYWALL_STRIPE_MALFORMED, "no timestamp"},
        /* spaces, tabs, line breaks anywhere */
        {"t=1718000000, v1=" SIG_A, PAYWALL_STRIPE_MALFORMED, "space, control or non-ASCII character in header"},
        {" t=1718000000,v1=" SIG_A, PAYWALL_STRIPE_MALFORMED, "space, control or non-ASCII character in header"},
        {"t=1718000000,v1=" SIG_A " ", PAYWALL_STRIPE_MALFORMED, "space, control or non-ASCII character in header"},
        {"t = 1718000000,v1=" SIG_A, PAYWALL_STRIPE_MALFORMED, "space, control or non-ASCII character in header"},
        {"t=1718000000,\tv1=" SIG_A, PAYWALL_STRIPE_MALFORMED, "space, control or non-ASCII character in header"},
        {"t=1718000000,v1=" SIG_A "\r\nX: y", PAYWALL_STRIPE_MALFORMED,
         "space, control or non-ASCII character in header"},
        {"t=1718000000,v1=" SIG_A ",v9=\303\251", PAYWALL_STRIPE_MALFORMED,
         "space, control or non-ASCII character in header"},
        /* the timestamp */
        {"t=1718000000,t=1718000000,v1=" SIG_A, PAYWALL_STRIPE_MALFORMED, "more than one timestamp"},
        {"t=1718000000,v1=" SIG_A ",t=1718000001", PAYWALL_STRIPE_MALFORMED, "more than one timestamp"},
        {"t=17180000000000000000,v1=" SIG_A, PAYWALL_STRIPE_MALFORMED, "malformed timestamp"},
        {"t=9223372036854775808,v1=" SIG_A, PAYWALL_STRIPE_MALFORMED, "malformed timestamp"},
        {"t=1000000000000,v1=" SIG_A, PAYWALL_STRIPE_MALFORMED, "malformed timestamp"},
        {"t=,v1=" SIG_A, PAYWALL_STRIPE_MALFORMED, "malformed timestamp"},
        {"t=-1718000000,v1=" SIG_A, PAYWALL_STRIPE_MALFORMED, "malformed timestamp"},
        {"t=+1718000000,v1=" SIG_A, PAYWALL_STRIPE_MALFORMED, "malformed timestamp"},
        {"t=01718000000,v1=" SIG_A, PAYWALL_STRIPE_MALFORMED, "malformed timestamp"},
        {"t=1718000000.5,v1=" SIG_A, PAYWALL_STRIPE_MALFORMED, "malformed timestamp"},
        {"t=0x6666a880,v1=" SIG_A, PAYWALL_STRIPE_MALFORMED, "malformed timestamp"},
        {"t=1718000000x,v1=" SIG_A, PAYWALL_STRIPE_MALFORMED, "malformed timestamp"},
        {"t=1718000000=,v1=" SIG_A, PAYWALL_STRIPE_MALFORMED, "malformed timestamp"},
        {"t=1718000000;v1=" SIG_A, PAYWALL_STRIPE_MALFORMED, "malformed timestamp"},
        /* the signatures */
        {"t=1718000000,v1=", PAYWALL_STRIPE_MALFORMED, "v1 signature is not 64 lower-case hex digits"},
        {"t=1718000000,v1=5cf8e6a8539a7bddea54974e5d84abac0d790ca4abba4d3f018839b5c83b348", PAYWALL_STRIPE_MALFORMED,
         "v1 signature is not 64 lower-case hex digits"},
        {"t=1718000000,v1=" SIG_A "5", PAYWALL_STRIPE_MALFORMED, "v1 signature is not 64 lower-case hex digits"},
        {"t=1718000000,v1=" SIG_A "=", PAYWALL_STRIPE_MALFORMED, "v1 signature is not 64 lower-case hex digits"},
        {"t=1718000000,v1=5CF8E6A8539A7BDDEA54974E5D84ABAC0D790CA4ABBA4D3F018839B5C83B3485", PAYWALL_STRIPE_MALFORMED,
         "v1 signature is not 64 lower-case hex digits"},
        {"t=1718000000,v1=5cf8e6a8539a7bddea54974e5d84abac0d790ca4abba4d3f018839b5c83b348g", PAYWALL_STRIPE_MALFORMED,
         "v1 signature is not 64 lower-case hex digits"},
        {"t=1718000000,v1=XPjmqFOae93qVJdOXYSrrA15DKSruk0_AYg5tcg7NIU", PAYWALL_STRIPE_MALFORMED,
         "v1 signature is not 64 lower-case hex digits"},
        {"t=1718000000,v1=" SIG_A ",v1=zz", PAYWALL_STRIPE_MALFORMED, "v1 signature is not 64 lower-case hex digits"},
        /* the items */
        {"t=1718000000,v1=" SIG_A ",", PAYWALL_STRIPE_MALFORMED, "empty item in header"},
        {",t=1718000000,v1=" SIG_A, PAYWALL_STRIPE_MALFORMED, "empty item in header"},
        {"t=1718000000,,v1=" SIG_A, PAYWALL_STRIPE_MALFORMED, "empty item in header"},
        {",", PAYWALL_STRIPE_MALFORMED, "empty item in header"},
        {"t", PAYWALL_STRIPE_MALFORMED, "header item is not scheme=value"},
        {"t=1718000000,v1", PAYWALL_STRIPE_MALFORMED, "header item is not scheme=value"},
        {"t=1718000000,=" SIG_A, PAYWALL_STRIPE_MALFORMED, "header item is not scheme=value"},
        {"t:1718000000,v1:" SIG_A, PAYWALL_STRIPE_MALFORMED, "header item is not scheme=value"},
        {"=", PAYWALL_STRIPE_MALFORMED, "header item is not scheme=value"},
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_verify(cases[i].header, payload_subscription, sizeof(payload_subscription) - 1, secret_a, T_SUBSCRIPTION,
                      300, cases[i].status, cases[i].reason);
    }
}

static void test_stripe_sizes(void **state)
{
    char header[PAYWALL_STRIPE_HEADER_MAX + 16];
    size_t len = sizeof(payload_subscription) - 1, n;
    const char *reason = NULL;
    int i;

    (void)state;
    /* Unknown schemes are skipped whatever their value, up to the size limit, which is exact. */
    n = (size_t)snprintf(header, sizeof(header), "%s,x=", header_subscription);
    memset(header + n, 'a', PAYWALL_STRIPE_HEADER_MAX - n);
    assert_int_equal(
        verify(header, PAYWALL_STRIPE_HEADER_MAX, payload_subscription, len, secret_a, T_SUBSCRIPTION, 300, &reason),
        PAYWALL_STRIPE_OK);
    header[PAYWALL_STRIPE_HEADER_MAX] = 'a';
    assert_int_equal(verify(header, PAYWALL_STRIPE_HEADER_MAX + 1, payload_subscription, len, secret_a, T_SUBSCRIPTION,
                            300, &reason),
                     PAYWALL_STRIPE_MALFORMED);
    assert_string_equal(reason, "Stripe-Signature header too long");

    /* a NUL inside the header, within the length given */
    memcpy(header, header_subscription, sizeof(header_subscription));
    assert_int_equal(
        verify(header, sizeof(header_subscription), payload_subscription, len, secret_a, T_SUBSCRIPTION, 300, &reason),
        PAYWALL_STRIPE_MALFORMED);
    assert_string_equal(reason, "space, control or non-ASCII character in header");
    /* only the given length is read */
    assert_int_equal(verify(header_subscription, 12, payload_subscription, len, secret_a, T_SUBSCRIPTION, 300, &reason),
                     PAYWALL_STRIPE_NO_SIGNATURE);

    /* PAYWALL_STRIPE_V1_MAX signatures with the right one last, then one too many */
    n = (size_t)snprintf(header, sizeof(header), "t=1718000000");
    for (i = 0; i < PAYWALL_STRIPE_V1_MAX - 1; i++) {
        n += (size_t)snprintf(header + n, sizeof(header) - n, ",v1=%064d", i);
    }
    n += (size_t)snprintf(header + n, sizeof(header) - n, ",v1=%s", SIG_A);
    assert_int_equal(verify(header, n, payload_subscription, len, secret_a, T_SUBSCRIPTION, 300, &reason),
                     PAYWALL_STRIPE_OK);
    n += (size_t)snprintf(header + n, sizeof(header) - n, ",v1=%064d", 0);
    assert_int_equal(verify(header, n, payload_subscription, len, secret_a, T_SUBSCRIPTION, 300, &reason),
                     PAYWALL_STRIPE_MALFORMED);
    assert_string_equal(reason, "too many v1 signatures");
}

static void test_stripe_status_names(void **state)
{
    (void)state;
    assert_string_equal(paywall_stripe_status_name(PAYWALL_STRIPE_OK), "ok");
    assert_string_equal(paywall_stripe_status_name(PAYWALL_STRIPE_MALFORMED), "malformed");
    assert_string_equal(paywall_stripe_status_name(PAYWALL_STRIPE_NO_SIGNATURE), "no signature");
    assert_string_equal(paywall_stripe_status_name(PAYWALL_STRIPE_MISMATCH), "mismatch");
    assert_string_equal(paywall_stripe_status_name(PAYWALL_STRIPE_TIMESTAMP), "timestamp");
    assert_string_equal(paywall_stripe_status_name(PAYWALL_STRIPE_NO_SECRET), "no secret");
    assert_string_equal(paywall_stripe_status_name((paywall_stripe_status)99), "unknown");
}

/* ------------------------------------------------------------------------------------------ crawler ranges */

/* The shape and the first entries of https://developers.google.com/static/search/apis/ipranges/googlebot.json */
static const char googlebot_json[] = "{\n"
                                     "  \"creationTime\": \"2024-06-11T14:46:02.000000\",\n"
                                     "  \"prefixes\": [\n"
                                     "    {\n"
                                     "      \"ipv6Prefix\": \"2001:4860:4801:10::/64\"\n"
                                     "    },\n"
                                     "    {\n"
                                     "      \"ipv6Prefix\": \"2001:4860:4801:12::/64\"\n"
                                     "    },\n"
                                     "    {\n"
                                     "      \"ipv4Prefix\": \"66.249.64.0/27\"\n"
                                     "    },\n"
                                     "    {\n"
                                     "      \"ipv4Prefix\": \"66.249.64.32/27\"\n"
                                     "    },\n"
                                     "    {\n"
                                     "      \"ipv4Prefix\": \"66.249.66.0/27\"\n"
                                     "    },\n"
                                     "    {\n"
                                     "      \"ipv4Prefix\": \"66.249.79.224/27\"\n"
                                     "    }\n"
                                     "  ]\n"
                                     "}\n";

static paywall_crawlers *parse_ok(const char *json)
{
    paywall_crawlers *crawlers = NULL;
    char err[256] = "";

    if (paywall_crawlers_parse(json, strlen(json), &crawlers, err, sizeof(err)) != 0) {
        print_error("%s: %s\n", json, err);
        fail();
    }
    assert_non_null(crawlers);
    return crawlers;
}

static void assert_prefix(const paywall_crawlers *crawlers, size_t i, const char *expected)
{
    char text[64];

    assert_int_equal(paywall_crawlers_prefix(crawlers, i, text, sizeof(text)), 0);
    assert_string_equal(text, expected);
}

static void test_crawlers_googlebot(void **state)
{
    paywall_crawlers *crawlers = parse_ok(googlebot_json);
    static const char *const inside[] = {
        "66.249.64.0",
        "66.249.64.1",
        "66.249.64.31",
        "66.249.64.63", /* the next /27, adjacent */
        "66.249.66.17",
        "66.249.79.255",
        "::ffff:66.249.64.1",
        "::FFFF:66.249.79.230",
        "0:0:0:0:0:ffff:42f9:4001", /* 66.249.64.1 written in hex */
        "2001:4860:4801:10::",
        "2001:4860:4801:10::1",
        "2001:4860:4801:10:ffff:ffff:ffff:ffff",
        "2001:4860:4801:12:abcd::1",
        "2001:4860:4801:0012:0000:0000:0000:0001",
    };
    static const char *const outside[] = {
        "66.249.63.255",
        "66.249.64.64",
        "66.249.65.1",
        "66.249.66.32",
        "66.249.79.223",
        "66.249.80.0",
        "::ffff:66.249.65.1",
        "::66.249.64.1", /* IPv4-compatible, deprecated: not the same address */
        "2001:4860:4801:11::1",
        "2001:4860:4801:f::ffff",
        "2001:4860:4801:13::",
        "127.0.0.1",
        "::1",
        /* not addresses */
        "",
        "66.249.64.1 ",
        " 66.249.64.1",
        "66.249.64.1x",
        "66.249.64",
        "066.249.064.001",
        "66.249.64.1/32",
        "[2001:4860:4801:10::1]",
        "2001:4860:4801:10::1%eth0",
        "googlebot",
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    };
    size_t i;

    (void)state;
    assert_int_equal(paywall_crawlers_count(crawlers), 6);
    assert_string_equal(paywall_crawlers_creation_time(crawlers), "2024-06-11T14:46:02.000000");
    assert_prefix(crawlers, 0, "2001:4860:4801:10::/64");
    assert_prefix(crawlers, 2, "66.249.64.0/27");
    assert_prefix(crawlers, 5, "66.249.79.224/27");
    for (i = 0; i < sizeof(inside) / sizeof(inside[0]); i++) {
        if (paywall_crawlers_match(crawlers, inside[i]) != 1) {
            print_error("%s should match\n", inside[i]);
            fail();
        }
    }
    for (i = 0; i < sizeof(outside) / sizeof(outside[0]); i++) {
        if (paywall_crawlers_match(crawlers, outside[i]) != 0) {
            print_error("%s should not match\n", outside[i]);
            fail();
        }
    }
    assert_int_equal(paywall_crawlers_match(crawlers, NULL), 0);
    assert_int_equal(paywall_crawlers_match(NULL, "66.249.64.1"), 0);
    paywall_crawlers_free(crawlers);
    paywall_crawlers_free(NULL);
}

static void test_crawlers_normalise(void **state)
{
    paywall_crawlers *crawlers;
    char text[64];

    (void)state;
    /* host bits cleared; an IPv4-mapped ipv6Prefix becomes the IPv4 range; other members ignored; an entry holding
     * both members gives both */
    crawlers = parse_ok("{\"syncToken\":\"1718\",\"prefixes\":["
                        "{\"ipv4Prefix\":\"66.249.64.5/27\",\"service\":\"x\",\"scope\":\"us\"},"
                        "{\"ipv6Prefix\":\"2001:4860:4801:10:abcd::1/64\"},"
                        "{\"ipv6Prefix\":\"::ffff:10.1.2.3/112\"},"
                        "{\"ipv4Prefix\":\"192.0.2.7/32\",\"ipv6Prefix\":\"2001:db8::7/128\"},"
                        "{\"ipv4Prefix\":\"198.51.100.0/24\"},"
                        "{\"ipv4Prefix\":\"198.51.100.128/25\"},"
                        "{\"ipv6Prefix\":\"2001:db8:1::/48\"},"
                        "{\"ipv6Prefix\":\"2001:db8:1:2::/64\"}]}");
    assert_null(paywall_crawlers_creation_time(crawlers));
    assert_int_equal(paywall_crawlers_count(crawlers), 9);
    assert_prefix(crawlers, 0, "66.249.64.0/27");
    assert_prefix(crawlers, 1, "2001:4860:4801:10::/64");
    assert_prefix(crawlers, 2, "10.1.0.0/16");
    assert_prefix(crawlers, 3, "192.0.2.7/32");
    assert_prefix(crawlers, 4, "2001:db8::7/128");
    assert_int_equal(paywall_crawlers_prefix(crawlers, 9, text, sizeof(text)), -1);
    assert_int_equal(paywall_crawlers_prefix(crawlers, 0, text, 5), -1);

    assert_int_equal(paywall_crawlers_match(crawlers, "66.249.64.31"), 1);
    assert_int_equal(paywall_crawlers_match(crawlers, "10.1.255.255"), 1);
    assert_int_equal(paywall_crawlers_match(crawlers, "::ffff:10.1.0.0"), 1);
    assert_int_equal(paywall_crawlers_match(crawlers, "10.2.0.0"), 0);
    assert_int_equal(paywall_crawlers_match(crawlers, "192.0.2.7"), 1);
    assert_int_equal(paywall_crawlers_match(crawlers, "192.0.2.6"), 0);
    assert_int_equal(paywall_crawlers_match(crawlers, "192.0.2.8"), 0);
    assert_int_equal(paywall_crawlers_match(crawlers, "2001:db8::7"), 1);
    assert_int_equal(paywall_crawlers_match(crawlers, "2001:db8::8"), 0);
    /* nested ranges merged */
    assert_int_equal(paywall_crawlers_match(crawlers, "198.51.100.0"), 1);
    assert_int_equal(paywall_crawlers_match(crawlers, "198.51.100.200"), 1);
    assert_int_equal(paywall_crawlers_match(crawlers, "198.51.101.0"), 0);
    assert_int_equal(paywall_crawlers_match(crawlers, "2001:db8:1:2::5"), 1);
    assert_int_equal(paywall_crawlers_match(crawlers, "2001:db8:1:ffff:ffff:ffff:ffff:ffff"), 1);
    assert_int_equal(paywall_crawlers_match(crawlers, "2001:db8:2::"), 0);
    paywall_crawlers_free(crawlers);

    /* the ends of the address space, adjacent and overlapping ranges */
    crawlers =
        parse_ok("{\"prefixes\":[{\"ipv4Prefix\":\"255.0.0.0/8\"},{\"ipv4Prefix\":\"254.0.0.0/8\"},"
                 "{\"ipv4Prefix\":\"10.0.0.0/8\"},{\"ipv4Prefix\":\"10.1.0.0/16\"},{\"ipv4Prefix\":\"11.0.0.0/8\"},"
                 "{\"ipv4Prefix\":\"0.0.0.0/8\"},"
                 "{\"ipv6Prefix\":\"ffff::/16\"},{\"ipv6Prefix\":\"8000::/16\"},{\"ipv6Prefix\":\"8000:1::/32\"}]}");
    assert_int_equal(paywall_crawlers_match(crawlers, "255.255.255.255"), 1);
    assert_int_equal(paywall_crawlers_match(crawlers, "254.0.0.0"), 1);
    assert_int_equal(paywall_crawlers_match(crawlers, "253.255.255.255"), 0);
    assert_int_equal(paywall_crawlers_match(crawlers, "9.255.255.255"), 0);
    assert_int_equal(paywall_crawlers_match(crawlers, "10.0.0.0"), 1);
    assert_int_equal(paywall_crawlers_match(crawlers, "11.255.255.255"), 1);
    assert_int_equal(paywall_crawlers_match(crawlers, "12.0.0.0"), 0);
    assert_int_equal(paywall_crawlers_match(crawlers, "0.0.0.0"), 1);
    assert_int_equal(paywall_crawlers_match(crawlers, "0.255.255.255"), 1);
    assert_int_equal(paywall_crawlers_match(crawlers, "1.0.0.0"), 0);
    assert_int_equal(paywall_crawlers_match(crawlers, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), 1);
    assert_int_equal(paywall_crawlers_match(crawlers, "fffe:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), 0);
    assert_int_equal(paywall_crawlers_match(crawlers, "8000:1:2::3"), 1);
    assert_int_equal(paywall_crawlers_match(crawlers, "8000::"), 1);
    assert_int_equal(paywall_crawlers_match(crawlers, "8001::"), 0);
    assert_int_equal(paywall_crawlers_match(crawlers, "7fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), 0);
    assert_int_equal(paywall_crawlers_match(crawlers, "::"), 0);
    paywall_crawlers_free(crawlers);

    /* the same start, the wider prefix listed second or first */
    crawlers = parse_ok("{\"prefixes\":[{\"ipv6Prefix\":\"2001:db8:5::/64\"},{\"ipv6Prefix\":\"2001:db8:5::/48\"},"
                        "{\"ipv6Prefix\":\"2001:db8:7::/48\"},{\"ipv6Prefix\":\"2001:db8:7::/64\"},"
                        "{\"ipv4Prefix\":\"192.0.2.0/28\"},{\"ipv4Prefix\":\"192.0.2.0/24\"},"
                        "{\"ipv4Prefix\":\"198.51.100.0/24\"},{\"ipv4Prefix\":\"198.51.100.0/28\"}]}");
    assert_int_equal(paywall_crawlers_match(crawlers, "2001:db8:5:ffff::1"), 1);
    assert_int_equal(paywall_crawlers_match(crawlers, "2001:db8:7:ffff::1"), 1);
    assert_int_equal(paywall_crawlers_match(crawlers, "2001:db8:6::"), 0);
    assert_int_equal(paywall_crawlers_match(crawlers, "192.0.2.255"), 1);
    assert_int_equal(paywall_crawlers_match(crawlers, "198.51.100.255"), 1);
    assert_int_equal(paywall_crawlers_match(crawlers, "198.51.101.0"), 0);
    paywall_crawlers_free(crawlers);

    /* ::/16 holds ::ffff:0:0/96: every IPv4 address is in it when spelt as IPv6, so in it also when spelt as IPv4 */
    crawlers = parse_ok("{\"prefixes\":[{\"ipv6Prefix\":\"::/16\"}]}");
    assert_int_equal(paywall_crawlers_match(crawlers, "::"), 1);
    assert_int_equal(paywall_crawlers_match(crawlers, "::1"), 1);
    assert_int_equal(paywall_crawlers_match(crawlers, "::ffff:1.2.3.4"), 1);
    assert_int_equal(paywall_crawlers_match(crawlers, "1.2.3.4"), 1);
    assert_int_equal(paywall_crawlers_match(crawlers, "1::"), 0);
    paywall_crawlers_free(crawlers);

    /* an empty list matches nothing */
    crawlers = parse_ok("{\"creationTime\":\"x\",\"prefixes\":[]}");
    assert_int_equal(paywall_crawlers_count(crawlers), 0);
    assert_int_equal(paywall_crawlers_match(crawlers, "66.249.64.1"), 0);
    assert_int_equal(paywall_crawlers_match(crawlers, "::1"), 0);
    paywall_crawlers_free(crawlers);
}

static void test_crawlers_errors(void **state)
{
    static const struct {
        const char *json, *err;
    } cases[] = {
        {"", "invalid JSON at line 1"},
        {"not json", "invalid JSON"},
        {"{\"prefixes\":[{\"ipv4Prefix\":\"66.249.64.0/27\"}]", "invalid JSON"},
        {"{\"prefixes\":[],\"prefixes\":[]}", "invalid JSON"},
        {"[]", "not a JSON object"},
        {"\"x\"", "invalid JSON"},
        {"{}", "no \"prefixes\" array"},
        {"{\"prefixes\":{}}", "no \"prefixes\" array"},
        {"{\"prefixes\":[\"66.249.64.0/27\"]}", "prefixes[0]: not an object"},
        {"{\"prefixes\":[{\"ipv4Prefix\":\"66.249.64.0/27\"},{}]}", "prefixes[1]: neither ipv4Prefix nor ipv6Prefix"},
        {"{\"prefixes\":[{\"ipv4prefix\":\"66.249.64.0/27\"}]}", "prefixes[0]: neither ipv4Prefix nor ipv6Prefix"},
        {"{\"prefixes\":[{\"ipv4Prefix\":27}]}", "prefixes[0]: ipv4Prefix is not a string"},
        {"{\"prefixes\":[{\"ipv6Prefix\":null}]}", "prefixes[0]: ipv6Prefix is not a string"},
        {"{\"prefixes\":[{\"ipv4Prefix\":\"66.249.64.0/27\"},{\"ipv4Prefix\":\"66.249.64.0/33\"}]}",
         "prefixes[1]: ipv4Prefix \"66.249.64.0/33\" has a prefix length out of range (above 32)"},
        {"{\"prefixes\":[{\"ipv6Prefix\":\"2001:db8::/129\"}]}",
         "prefixes[0]: ipv6Prefix \"2001:db8::/129\" has a prefix length out of range (above 128)"},
        {"{\"prefixes\":[{\"ipv4Prefix\":\"66.249.64.256/27\"}]}",
         "prefixes[0]: ipv4Prefix \"66.249.64.256/27\" has a bad address"},
        {"{\"prefixes\":[{\"ipv4Prefix\":\"2001:db8::/32\"}]}",
         "prefixes[0]: ipv4Prefix \"2001:db8::/32\" has a bad address"},
        {"{\"prefixes\":[{\"ipv6Prefix\":\"66.249.64.0/27\"}]}",
         "prefixes[0]: ipv6Prefix \"66.249.64.0/27\" has a bad address"},
        {"{\"prefixes\":[{\"ipv6Prefix\":\"2001:db8:::1/64\"}]}",
         "prefixes[0]: ipv6Prefix \"2001:db8:::1/64\" has a bad address"},
        {"{\"prefixes\":[{\"ipv4Prefix\":\"/27\"}]}", "prefixes[0]: ipv4Prefix \"/27\" has a bad address"},
        {"{\"prefixes\":[{\"ipv4Prefix\":\" 66.249.64.0/27\"}]}",
         "prefixes[0]: ipv4Prefix \" 66.249.64.0/27\" has a bad address"},
        {"{\"prefixes\":[{\"ipv4Prefix\":\"66.249.64.0\"}]}",
         "prefixes[0]: ipv4Prefix \"66.249.64.0\" is not address/length"},
        {"{\"prefixes\":[{\"ipv4Prefix\":\"66.249.64.0/\"}]}",
         "prefixes[0]: ipv4Prefix \"66.249.64.0/\" has a bad prefix length"},
        {"{\"prefixes\":[{\"ipv4Prefix\":\"66.249.64.0/-1\"}]}",
         "prefixes[0]: ipv4Prefix \"66.249.64.0/-1\" has a bad prefix length"},
        {"{\"prefixes\":[{\"ipv4Prefix\":\"66.249.64.0/0027\"}]}",
         "prefixes[0]: ipv4Prefix \"66.249.64.0/0027\" has a bad prefix length"},
        {"{\"prefixes\":[{\"ipv4Prefix\":\"66.249.64.0/27 \"}]}",
         "prefixes[0]: ipv4Prefix \"66.249.64.0/27 \" has a bad prefix length"},
        {"{\"prefixes\":[{\"ipv4Prefix\":\"66.249.64.0/27/3\"}]}",
         "prefixes[0]: ipv4Prefix \"66.249.64.0/27/3\" has a bad prefix length"},
        {"{\"prefixes\":[{\"ipv4Prefix\":\"0.0.0.0/0\"}]}",
         "prefixes[0]: ipv4Prefix \"0.0.0.0/0\" is shorter than /8: refused, it would open the paywall to too many "
         "addresses"},
        {"{\"prefixes\":[{\"ipv4Prefix\":\"66.0.0.0/7\"}]}",
         "prefixes[0]: ipv4Prefix \"66.0.0.0/7\" is shorter than /8"},
        {"{\"prefixes\":[{\"ipv6Prefix\":\"::/0\"}]}", "prefixes[0]: ipv6Prefix \"::/0\" is shorter than /16"},
        {"{\"prefixes\":[{\"ipv6Prefix\":\"::ffff:0.0.0.0/96\"}]}",
         "prefixes[0]: ipv6Prefix \"::ffff:0.0.0.0/96\" is shorter than /8"},
        /* untrusted text is quoted safely and bounded */
        {"{\"prefixes\":[{\"ipv4Prefix\":\"1.2.3.4\\n/24\"}]}", "prefixes[0]: ipv4Prefix \"1.2.3.4?/24\" has a bad"},
        {"{\"prefixes\":[{\"ipv4Prefix\":"
         "\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
         "AAAAAAAAAAAA/8\"}]}",
         "prefixes[0]: ipv4Prefix \"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\" has a bad "
         "address"},
    };
    paywall_crawlers *crawlers;
    char err[256];
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        crawlers = (paywall_crawlers *)&crawlers;
        err[0] = '\0';
        if (paywall_crawlers_parse(cases[i].json, strlen(cases[i].json), &crawlers, err, sizeof(err)) != -1 ||
            crawlers != NULL || strncmp(err, cases[i].err, strlen(cases[i].err)) != 0) {
            print_error("%s: got \"%s\", expected \"%s\"\n", cases[i].json, err, cases[i].err);
            fail();
        }
    }
}

static char *prefixes_json(size_t n)
{
    static const char entry[] = "{\"ipv4Prefix\":\"66.249.64.0/27\"},";
    char *json = malloc(32 + n * (sizeof(entry) - 1));
    size_t len, i;

    assert_non_null(json);
    len = (size_t)sprintf(json, "{\"prefixes\":[");
    for (i = 0; i < n; i++) {
        memcpy(json + len, entry, sizeof(entry) - 1);
        len += sizeof(entry) - 1;
    }
    strcpy(json + len - (n > 0), "]}");
    return json;
}

static void test_crawlers_limits(void **state)
{
    paywall_crawlers *crawlers;
    char *json, err[256];

    (void)state;
    json = prefixes_json(PAYWALL_CRAWLERS_ENTRIES_MAX);
    assert_int_equal(paywall_crawlers_parse(json, strlen(json), &crawlers, err, sizeof(err)), 0);
    assert_int_equal(paywall_crawlers_count(crawlers), PAYWALL_CRAWLERS_ENTRIES_MAX);
    assert_int_equal(paywall_crawlers_match(crawlers, "66.249.64.9"), 1);
    paywall_crawlers_free(crawlers);
    free(json);

    json = prefixes_json(PAYWALL_CRAWLERS_ENTRIES_MAX + 1);
    assert_int_equal(paywall_crawlers_parse(json, strlen(json), &crawlers, err, sizeof(err)), -1);
    assert_null(crawlers);
    assert_string_equal(err, "65537 prefixes, more than the 65536 allowed");
    free(json);

    /* refused by size before any parsing */
    json = malloc(PAYWALL_CRAWLERS_FILE_MAX + 1);
    assert_non_null(json);
    memset(json, ' ', PAYWALL_CRAWLERS_FILE_MAX + 1);
    assert_int_equal(paywall_crawlers_parse(json, PAYWALL_CRAWLERS_FILE_MAX + 1, &crawlers, err, sizeof(err)), -1);
    assert_string_equal(err, "4194305 bytes, more than the 4194304 allowed");
    free(json);

    /* a short err buffer is enough to fail safely */
    assert_int_equal(paywall_crawlers_parse(LIT("{}"), &crawlers, err, 4), -1);
    assert_string_equal(err, "no ");
}

static void test_crawlers_load(void **state)
{
    static const char bad_json[] = "{\"prefixes\":[{\"ipv4Prefix\":\"1.2.3.4/40\"}]}";
    char path[] = "/tmp/test_paywall_XXXXXX", dir[] = "/tmp/test_paywall_dir_XXXXXX", err[512];
    paywall_crawlers *crawlers;
    int fd;

    (void)state;
    fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, googlebot_json, sizeof(googlebot_json) - 1), (ssize_t)(sizeof(googlebot_json) - 1));
    close(fd);
    assert_int_equal(paywall_crawlers_load(path, &crawlers, err, sizeof(err)), 0);
    assert_int_equal(paywall_crawlers_count(crawlers), 6);
    assert_int_equal(paywall_crawlers_match(crawlers, "66.249.66.1"), 1);
    paywall_crawlers_free(crawlers);

    fd = open(path, O_WRONLY | O_TRUNC);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, bad_json, sizeof(bad_json) - 1), (ssize_t)(sizeof(bad_json) - 1));
    close(fd);
    assert_int_equal(paywall_crawlers_load(path, &crawlers, err, sizeof(err)), -1);
    assert_null(crawlers);
    assert_true(strncmp(err, path, strlen(path)) == 0);
    assert_string_equal(err + strlen(path), ": prefixes[0]: ipv4Prefix \"1.2.3.4/40\" has a prefix length out of range "
                                            "(above 32)");

    assert_int_equal(truncate(path, PAYWALL_CRAWLERS_FILE_MAX + 1), 0);
    assert_int_equal(paywall_crawlers_load(path, &crawlers, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "4194305 bytes, more than the 4194304 allowed"));
    unlink(path);

    assert_int_equal(paywall_crawlers_load(path, &crawlers, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "No such file or directory"));
    assert_non_null(mkdtemp(dir));
    assert_int_equal(paywall_crawlers_load(dir, &crawlers, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "not a regular file"));
    rmdir(dir);
}

/* ----------------------------------------------------------------------------------------- access decision */

#define T0    1718000000L
#define DAY   (24L * 60 * 60)
#define GRACE PAYWALL_GRACE_DEFAULT

static void test_access_table(void **state)
{
    paywall_require any = {.any = 1}, gold = {.plans = {"gold", "silver"}, .nplans = 2}, unset = {0};
    const struct {
        paywall_sub_status status;
        const char *plan;
        time_t period_end, past_due_since;
        int cancel;
        const paywall_require *require;
        long grace;
        time_t now;
        paywall_decision decision;
        const char *reason;
    } cases[] = {
        {PAYWALL_SUB_ACTIVE, "gold", T0 + 30 * DAY, 0, 0, &any, GRACE, T0, PAYWALL_GRANTED, "active"},
        {PAYWALL_SUB_TRIALING, "gold", T0 + 14 * DAY, 0, 0, &any, GRACE, T0, PAYWALL_GRANTED, "trialing"},
        /* active stays open after current_period_end: the renewal's webhook may simply be late */
        {PAYWALL_SUB_ACTIVE, "gold", T0, 0, 0, &any, GRACE, T0 + DAY, PAYWALL_GRANTED, "active"},

        /* past_due: open for the grace period from past_due_since, [since, since + grace) */
        {PAYWALL_SUB_PAST_DUE, "gold", T0 + 30 * DAY, T0, 0, &any, GRACE, T0, PAYWALL_GRANTED, "past_due within grace"},
        {PAYWALL_SUB_PAST_DUE, "gold", T0 + 30 * DAY, T0, 0, &any, GRACE, T0 + 7 * DAY - 1, PAYWALL_GRANTED,
         "past_due within grace"},
        {PAYWALL_SUB_PAST_DUE, "gold", T0 + 30 * DAY, T0, 0, &any, GRACE, T0 + 7 * DAY, PAYWALL_DENIED,
         "past_due, grace over"},
        /* current_period_end far ahead does not extend the grace */
        {PAYWALL_SUB_PAST_DUE, "gold", T0 + 30 * DAY, T0, 0, &any, GRACE, T0 + 20 * DAY, PAYWALL_DENIED,
         "past_due, grace over"},
        /* a node whose clock is behind the one that recorded past_due_since */
        {PAYWALL_SUB_PAST_DUE, "gold", T0 + 30 * DAY, T0, 0, &any, GRACE, T0 - 10, PAYWALL_GRANTED,
         "past_due within grace"},
        {PAYWALL_SUB_PAST_DUE, "gold", T0 + 30 * DAY, T0, 0, &any, 3 * DAY, T0 + 3 * DAY - 1, PAYWALL_GRANTED,
         "past_due within grace"},
        {PAYWALL_SUB_PAST_DUE, "gold", T0 + 30 * DAY, T0, 0, &any, 3 * DAY, T0 + 3 * DAY, PAYWALL_DENIED,
         "past_due, grace over"},
        {PAYWALL_SUB_PAST_DUE, "gold", T0 + 30 * DAY, T0, 0, &any, 0, T0, PAYWALL_DENIED, "past_due, grace over"},
        {PAYWALL_SUB_PAST_DUE, "gold", T0 + 30 * DAY, T0, 0, &any, -5, T0, PAYWALL_DENIED, "past_due, grace over"},
        {PAYWALL_SUB_PAST_DUE, "gold", T0 + 30 * DAY, 0, 0, &any, GRACE, T0, PAYWALL_DENIED,
         "past_due since an unknown time"},
        {PAYWALL_SUB_PAST_DUE, "gold", T0 + 30 * DAY, -1, 0, &any, GRACE, T0, PAYWALL_DENIED,
         "past_due since an unknown time"},

        /* cancel_at_period_end: open until current_period_end, [.., end) */
        {PAYWALL_SUB_ACTIVE, "gold", T0 + 30 * DAY, 0, 1, &any, GRACE, T0 + 30 * DAY - 1, PAYWALL_GRANTED, "active"},
        {PAYWALL_SUB_ACTIVE, "gold", T0 + 30 * DAY, 0, 1, &any, GRACE, T0 + 30 * DAY, PAYWALL_DENIED,
         "cancelled at period end, period over"},
        {PAYWALL_SUB_TRIALING, "gold", T0 + 14 * DAY, 0, 1, &any, GRACE, T0 + 14 * DAY - 1, PAYWALL_GRANTED,
         "trialing"},
        {PAYWALL_SUB_TRIALING, "gold", T0 + 14 * DAY, 0, 1, &any, GRACE, T0 + 14 * DAY, PAYWALL_DENIED,
         "cancelled at period end, period over"},
        /* past_due and cancelling: whichever ends first */
        {PAYWALL_SUB_PAST_DUE, "gold", T0 + 2 * DAY, T0, 1, &any, GRACE, T0 + 2 * DAY - 1, PAYWALL_GRANTED,
         "past_due within grace"},
        {PAYWALL_SUB_PAST_DUE, "gold", T0 + 2 * DAY, T0, 1, &any, GRACE, T0 + 2 * DAY, PAYWALL_DENIED,
         "cancelled at period end, period over"},
        {PAYWALL_SUB_PAST_DUE, "gold", T0 + 30 * DAY, T0, 1, &any, GRACE, T0 + 7 * DAY, PAYWALL_DENIED,
         "past_due, grace over"},
        /* an unknown period end with cancel_at_period_end closes */
        {PAYWALL_SUB_ACTIVE, "gold", 0, 0, 1, &any, GRACE, T0, PAYWALL_DENIED, "cancelled at period end, period over"},

        /* closed statuses, whatever the period */
        {PAYWALL_SUB_UNPAID, "gold", T0 + 30 * DAY, T0, 0, &any, GRACE, T0, PAYWALL_DENIED, "unpaid"},
        {PAYWALL_SUB_INCOMPLETE, "gold", T0 + 30 * DAY, 0, 0, &any, GRACE, T0, PAYWALL_DENIED, "incomplete"},
        {PAYWALL_SUB_INCOMPLETE_EXPIRED, "gold", T0 + 30 * DAY, 0, 0, &any, GRACE, T0, PAYWALL_DENIED,
         "incomplete_expired"},
        {PAYWALL_SUB_CANCELED, "gold", T0 + 30 * DAY, 0, 0, &any, GRACE, T0, PAYWALL_DENIED, "canceled"},
        {PAYWALL_SUB_CANCELED, "gold", T0 + 30 * DAY, 0, 1, &any, GRACE, T0, PAYWALL_DENIED, "canceled"},
        {PAYWALL_SUB_PAUSED, "gold", T0 + 30 * DAY, 0, 0, &any, GRACE, T0, PAYWALL_DENIED, "paused"},
        {PAYWALL_SUB_UNKNOWN, "gold", T0 + 30 * DAY, 0, 0, &any, GRACE, T0, PAYWALL_DENIED, "unknown status"},
        {(paywall_sub_status)42, "gold", T0 + 30 * DAY, 0, 0, &any, GRACE, T0, PAYWALL_DENIED, "unknown status"},

        /* plans */
        {PAYWALL_SUB_ACTIVE, "gold", T0 + 30 * DAY, 0, 0, &gold, GRACE, T0, PAYWALL_GRANTED, "active"},
        {PAYWALL_SUB_ACTIVE, "silver", T0 + 30 * DAY, 0, 0, &gold, GRACE, T0, PAYWALL_GRANTED, "active"},
        {PAYWALL_SUB_ACTIVE, "bronze", T0 + 30 * DAY, 0, 0, &gold, GRACE, T0, PAYWALL_DENIED,
         "plan not in PaywallRequire"},
        {PAYWALL_SUB_ACTIVE, "Gold", T0 + 30 * DAY, 0, 0, &gold, GRACE, T0, PAYWALL_DENIED,
         "plan not in PaywallRequire"},
        {PAYWALL_SUB_ACTIVE, "gol", T0 + 30 * DAY, 0, 0, &gold, GRACE, T0, PAYWALL_DENIED,
         "plan not in PaywallRequire"},
        {PAYWALL_SUB_ACTIVE, NULL, T0 + 30 * DAY, 0, 0, &gold, GRACE, T0, PAYWALL_DENIED, "plan not in PaywallRequire"},
        {PAYWALL_SUB_ACTIVE, NULL, T0 + 30 * DAY, 0, 0, &any, GRACE, T0, PAYWALL_GRANTED, "active"},
        {PAYWALL_SUB_PAST_DUE, "bronze", T0 + 30 * DAY, T0, 0, &gold, GRACE, T0 + DAY, PAYWALL_DENIED,
         "plan not in PaywallRequire"},
        /* the status is reported before the plan */
        {PAYWALL_SUB_CANCELED, "bronze", T0 + 30 * DAY, 0, 0, &gold, GRACE, T0, PAYWALL_DENIED, "canceled"},
        {PAYWALL_SUB_ACTIVE, "gold", T0 + 30 * DAY, 0, 0, &unset, GRACE, T0, PAYWALL_DENIED,
         "PaywallRequire lists no plan"},
        {PAYWALL_SUB_ACTIVE, "gold", T0 + 30 * DAY, 0, 0, NULL, GRACE, T0, PAYWALL_DENIED,
         "PaywallRequire lists no plan"},
    };
    paywall_subscription sub;
    paywall_decision decision;
    const char *reason;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        sub.status = cases[i].status;
        sub.plan = cases[i].plan;
        sub.current_period_end = cases[i].period_end;
        sub.past_due_since = cases[i].past_due_since;
        sub.cancel_at_period_end = cases[i].cancel;
        reason = NULL;
        decision = paywall_access_decide(&sub, cases[i].require, cases[i].grace, cases[i].now, &reason);
        if (decision != cases[i].decision || reason == NULL || strcmp(reason, cases[i].reason) != 0) {
            print_error("case %zu: got %d (%s), expected %d (%s)\n", i, decision, reason ? reason : "NULL",
                        cases[i].decision, cases[i].reason);
            fail();
        }
        assert_int_equal(paywall_access_decide(&sub, cases[i].require, cases[i].grace, cases[i].now, NULL),
                         cases[i].decision);
    }
    assert_int_equal(paywall_access_decide(NULL, &any, GRACE, T0, &reason), PAYWALL_DENIED);
    assert_string_equal(reason, "no subscription");
}

static void test_access_statuses(void **state)
{
    static const char *const names[] = {"active",     "trialing",           "past_due", "unpaid",
                                        "incomplete", "incomplete_expired", "canceled", "paused"};
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        paywall_sub_status status = paywall_sub_status_parse(names[i], strlen(names[i]));

        assert_int_not_equal(status, PAYWALL_SUB_UNKNOWN);
        assert_string_equal(paywall_sub_status_name(status), names[i]);
    }
    assert_int_equal(paywall_sub_status_parse(LIT("active")), PAYWALL_SUB_ACTIVE);
    assert_int_equal(paywall_sub_status_parse("activex", 6), PAYWALL_SUB_ACTIVE);
    assert_int_equal(paywall_sub_status_parse(LIT("Active")), PAYWALL_SUB_UNKNOWN);
    assert_int_equal(paywall_sub_status_parse(LIT("active ")), PAYWALL_SUB_UNKNOWN);
    assert_int_equal(paywall_sub_status_parse(LIT("cancelled")), PAYWALL_SUB_UNKNOWN);
    assert_int_equal(paywall_sub_status_parse(LIT("incomplete_")), PAYWALL_SUB_UNKNOWN);
    assert_int_equal(paywall_sub_status_parse(LIT("")), PAYWALL_SUB_UNKNOWN);
    assert_int_equal(paywall_sub_status_parse(NULL, 0), PAYWALL_SUB_UNKNOWN);
    assert_string_equal(paywall_sub_status_name(PAYWALL_SUB_UNKNOWN), "unknown");
}

/* ------------------------------------------------------------------------------------------- meter cookie */

static const char meter_key[] = "0123456789abcdef0123456789abcdef";
/* Computed independently (Python hmac): base64url(01 || 10..1f || be64(1718000000)) "." base64url(HMAC-SHA256(key,
 * "mod_paywall meter cookie" || payload)), so that a change of format cannot pass unnoticed. */
static const char meter_cookie[] = "ARAREhMUFRYXGBkaGxwdHh8AAAAAZmaZgA.DXHfjCPto9WMx2TysZafGGIrikcgyBSeMyhg-qwLTJo";

static void meter_visitor_fixed(paywall_meter_visitor *visitor)
{
    int i;

    for (i = 0; i < PAYWALL_METER_ID_LEN; i++) {
        visitor->id[i] = (unsigned char)(0x10 + i);
    }
    visitor->start = T0;
}

static void test_meter_cookie_roundtrip(void **state)
{
    paywall_meter_visitor visitor, parsed, other;
    char cookie[PAYWALL_METER_COOKIE_MAX], hex[PAYWALL_METER_ID_HEX + 1];
    size_t len;

    (void)state;
    meter_visitor_fixed(&visitor);
    len = paywall_meter_cookie_make(&visitor, LIT(meter_key), cookie, sizeof(cookie));
    assert_int_equal(len, 78);
    assert_string_equal(cookie, meter_cookie);
    assert_int_equal(paywall_meter_cookie_verify(cookie, len, LIT(meter_key)), PAYWALL_METER_COOKIE_OK);
    memset(&parsed, 0, sizeof(parsed));
    assert_int_equal(paywall_meter_cookie_parse(cookie, len, LIT(meter_key), &parsed), PAYWALL_METER_COOKIE_OK);
    assert_memory_equal(parsed.id, visitor.id, PAYWALL_METER_ID_LEN);
    assert_true(parsed.start == T0);
    paywall_meter_id_hex(&parsed, hex);
    assert_string_equal(hex, "101112131415161718191a1b1c1d1e1f");

    /* new visitors: random ids, start now */
    assert_int_equal(paywall_meter_visitor_new(&visitor, T0 + 5), 0);
    assert_int_equal(paywall_meter_visitor_new(&other, T0 + 5), 0);
    assert_true(visitor.start == T0 + 5);
    assert_memory_not_equal(visitor.id, other.id, PAYWALL_METER_ID_LEN);
    len = paywall_meter_cookie_make(&visitor, LIT(meter_key), cookie, sizeof(cookie));
    assert_int_equal(paywall_meter_cookie_parse(cookie, len, LIT(meter_key), &parsed), PAYWALL_METER_COOKIE_OK);
    assert_memory_equal(parsed.id, visitor.id, PAYWALL_METER_ID_LEN);
    assert_true(parsed.start == T0 + 5);

    /* buffer too small, key too short */
    assert_int_equal(paywall_meter_cookie_make(&visitor, LIT(meter_key), cookie, PAYWALL_METER_COOKIE_MAX - 1), 0);
    assert_int_equal(paywall_meter_cookie_make(&visitor, meter_key, PAYWALL_METER_KEY_MIN - 1, cookie, sizeof(cookie)),
                     0);
    assert_int_equal(paywall_meter_cookie_make(&visitor, NULL, 32, cookie, sizeof(cookie)), 0);
}

static void test_meter_cookie_tampered(void **state)
{
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.";
    char cookie[sizeof(meter_cookie) + 1];
    paywall_meter_visitor parsed;
    paywall_meter_cookie_status status;
    size_t len = sizeof(meter_cookie) - 1, i, j;

    (void)state;
    /* every character replaced by every other one */
    for (i = 0; i < len; i++) {
        for (j = 0; j < sizeof(alphabet) - 1; j++) {
            if (alphabet[j] == meter_cookie[i]) {
                continue;
            }
            memcpy(cookie, meter_cookie, sizeof(meter_cookie));
            cookie[i] = alphabet[j];
            status = paywall_meter_cookie_parse(cookie, len, LIT(meter_key), &parsed);
            if (status == PAYWALL_METER_COOKIE_OK) {
                print_error("accepted %s\n", cookie);
                fail();
            }
        }
    }
    /* a changed payload is a bad signature, not garbage: the visitor gets a new id */
    memcpy(cookie, meter_cookie, sizeof(meter_cookie));
    cookie[5] = cookie[5] == 'A' ? 'B' : 'A';
    assert_int_equal(paywall_meter_cookie_verify(cookie, len, LIT(meter_key)), PAYWALL_METER_COOKIE_BAD_SIGNATURE);
    /* the period anchor moved back (to reset the meter) */
    memcpy(cookie, meter_cookie, sizeof(meter_cookie));
    cookie[28] = 'A';
    assert_int_equal(paywall_meter_cookie_parse(cookie, len, LIT(meter_key), &parsed),
                     PAYWALL_METER_COOKIE_BAD_SIGNATURE);
    /* trailing bits set in the last character of a part: the same bytes, another spelling, refused */
    memcpy(cookie, meter_cookie, sizeof(meter_cookie));
    cookie[33] = 'B'; /* "gA" -> "gB": the 2 unused low bits of the payload's last character */
    assert_int_equal(paywall_meter_cookie_verify(cookie, len, LIT(meter_key)), PAYWALL_METER_COOKIE_MALFORMED);
    memcpy(cookie, meter_cookie, sizeof(meter_cookie));
    cookie[len - 1] = 'p';
    assert_int_equal(paywall_meter_cookie_verify(cookie, len, LIT(meter_key)), PAYWALL_METER_COOKIE_BAD_SIGNATURE);
}

static void test_meter_cookie_truncated(void **state)
{
    paywall_meter_visitor parsed;
    char cookie[PAYWALL_METER_COOKIE_MAX + 8];
    size_t len = sizeof(meter_cookie) - 1, i;

    (void)state;
    for (i = 0; i < len; i++) {
        assert_int_not_equal(paywall_meter_cookie_parse(meter_cookie, i, LIT(meter_key), &parsed),
                             PAYWALL_METER_COOKIE_OK);
    }
    assert_int_equal(paywall_meter_cookie_verify(meter_cookie, len - 1, LIT(meter_key)),
                     PAYWALL_METER_COOKIE_BAD_SIGNATURE);
    assert_int_equal(paywall_meter_cookie_verify(meter_cookie, 35, LIT(meter_key)), PAYWALL_METER_COOKIE_BAD_SIGNATURE);
    assert_int_equal(paywall_meter_cookie_verify(meter_cookie, 34, LIT(meter_key)), PAYWALL_METER_COOKIE_MALFORMED);
    assert_int_equal(paywall_meter_cookie_verify(meter_cookie + 1, len - 1, LIT(meter_key)),
                     PAYWALL_METER_COOKIE_MALFORMED);
    assert_int_equal(paywall_meter_cookie_verify(meter_cookie, 0, LIT(meter_key)), PAYWALL_METER_COOKIE_MALFORMED);
    assert_int_equal(paywall_meter_cookie_verify(NULL, 0, LIT(meter_key)), PAYWALL_METER_COOKIE_MALFORMED);

    /* longer */
    snprintf(cookie, sizeof(cookie), "%sA", meter_cookie);
    assert_int_equal(paywall_meter_cookie_verify(cookie, len + 1, LIT(meter_key)), PAYWALL_METER_COOKIE_BAD_SIGNATURE);
    snprintf(cookie, sizeof(cookie), "%s.", meter_cookie);
    assert_int_equal(paywall_meter_cookie_verify(cookie, len + 1, LIT(meter_key)), PAYWALL_METER_COOKIE_BAD_SIGNATURE);
    snprintf(cookie, sizeof(cookie), "A%s", meter_cookie);
    assert_int_equal(paywall_meter_cookie_verify(cookie, len + 1, LIT(meter_key)), PAYWALL_METER_COOKIE_MALFORMED);
    memset(cookie, 'A', sizeof(cookie));
    assert_int_equal(paywall_meter_cookie_verify(cookie, PAYWALL_METER_COOKIE_MAX + 1, LIT(meter_key)),
                     PAYWALL_METER_COOKIE_MALFORMED);
    assert_int_equal(paywall_meter_cookie_verify(LIT("no dot at all"), LIT(meter_key)), PAYWALL_METER_COOKIE_MALFORMED);
    assert_int_equal(paywall_meter_cookie_verify(LIT("."), LIT(meter_key)), PAYWALL_METER_COOKIE_MALFORMED);
    /* the real cookie's parts swapped */
    assert_int_equal(paywall_meter_cookie_verify(LIT("DXHfjCPto9WMx2TysZafGGIrikcgyBSeMyhg-qwLTJo."
                                                     "ARAREhMUFRYXGBkaGxwdHh8AAAAAZmaZgA"),
                                                 LIT(meter_key)),
                     PAYWALL_METER_COOKIE_MALFORMED);
}

static void test_meter_cookie_keys(void **state)
{
    paywall_meter_visitor parsed;
    char key[sizeof(meter_key)];
    size_t len = sizeof(meter_cookie) - 1;

    (void)state;
    memcpy(key, meter_key, sizeof(key));
    key[0] = '1';
    assert_int_equal(paywall_meter_cookie_verify(meter_cookie, len, LIT(key)), PAYWALL_METER_COOKIE_BAD_SIGNATURE);
    assert_int_equal(paywall_meter_cookie_parse(meter_cookie, len, LIT(key), &parsed),
                     PAYWALL_METER_COOKIE_BAD_SIGNATURE);
    /* a longer key with the same beginning is another key (unless the extra bytes are NULs: HMAC pads short keys
     * with zeros) */
    assert_int_equal(paywall_meter_cookie_verify(meter_cookie, len, LIT("0123456789abcdef0123456789abcdefx")),
                     PAYWALL_METER_COOKIE_BAD_SIGNATURE);
    assert_int_equal(paywall_meter_cookie_verify(meter_cookie, len, meter_key, 31), PAYWALL_METER_COOKIE_BAD_SIGNATURE);
    assert_int_equal(paywall_meter_cookie_verify(meter_cookie, len, meter_key, PAYWALL_METER_KEY_MIN - 1),
                     PAYWALL_METER_COOKIE_BAD_KEY);
    assert_int_equal(paywall_meter_cookie_verify(meter_cookie, len, NULL, 32), PAYWALL_METER_COOKIE_BAD_KEY);
    assert_string_equal(paywall_meter_cookie_status_name(PAYWALL_METER_COOKIE_OK), "valid");
    assert_string_equal(paywall_meter_cookie_status_name(PAYWALL_METER_COOKIE_MALFORMED), "malformed meter cookie");
    assert_string_equal(paywall_meter_cookie_status_name(PAYWALL_METER_COOKIE_BAD_SIGNATURE),
                        "meter cookie signature mismatch");
    assert_string_equal(paywall_meter_cookie_status_name(PAYWALL_METER_COOKIE_BAD_KEY),
                        "meter key shorter than 16 bytes");
    assert_string_equal(paywall_meter_cookie_status_name((paywall_meter_cookie_status)9), "unknown");
}

/* A correctly signed payload of our own making, to reach the checks behind the signature. */
static size_t meter_cookie_forge(unsigned char version, int64_t start, char *out)
{
    unsigned char payload[1 + PAYWALL_METER_ID_LEN + 8], msg[24 + sizeof(payload)], mac[CRYPTO_SHA256_LEN];
    size_t n;
    int i;

    payload[0] = version;
    memset(payload + 1, 0x42, PAYWALL_METER_ID_LEN);
    for (i = 0; i < 8; i++) {
        payload[1 + PAYWALL_METER_ID_LEN + i] = (unsigned char)((uint64_t)start >> (56 - 8 * i));
    }
    memcpy(msg, "mod_paywall meter cookie", 24);
    memcpy(msg + 24, payload, sizeof(payload));
    crypto_hmac_sha256(meter_key, sizeof(meter_key) - 1, msg, sizeof(msg), mac);
    n = crypto_base64url_encode(payload, sizeof(payload), out);
    out[n++] = '.';
    n += crypto_base64url_encode(mac, sizeof(mac), out + n);
    out[n] = '\0';
    return n;
}

static void test_meter_cookie_payload(void **state)
{
    paywall_meter_visitor parsed;
    char cookie[PAYWALL_METER_COOKIE_MAX];
    size_t len;

    (void)state;
    len = meter_cookie_forge(1, T0, cookie);
    assert_int_equal(paywall_meter_cookie_parse(cookie, len, LIT(meter_key), &parsed), PAYWALL_METER_COOKIE_OK);
    assert_true(parsed.start == T0);
    len = meter_cookie_forge(2, T0, cookie);
    assert_int_equal(paywall_meter_cookie_verify(cookie, len, LIT(meter_key)), PAYWALL_METER_COOKIE_OK);
    assert_int_equal(paywall_meter_cookie_parse(cookie, len, LIT(meter_key), &parsed), PAYWALL_METER_COOKIE_MALFORMED);
    len = meter_cookie_forge(1, -1, cookie);
    assert_int_equal(paywall_meter_cookie_parse(cookie, len, LIT(meter_key), &parsed), PAYWALL_METER_COOKIE_MALFORMED);
    len = meter_cookie_forge(1, (int64_t)1 << 41, cookie);
    assert_int_equal(paywall_meter_cookie_parse(cookie, len, LIT(meter_key), &parsed), PAYWALL_METER_COOKIE_MALFORMED);
    len = meter_cookie_forge(1, 0, cookie);
    assert_int_equal(paywall_meter_cookie_parse(cookie, len, LIT(meter_key), &parsed), PAYWALL_METER_COOKIE_OK);
    assert_true(parsed.start == 0);
}

static void assert_period(time_t anchor, long period, time_t now, time_t start, time_t end)
{
    time_t got_start = -7, got_end = -7;

    paywall_meter_period(anchor, period, now, &got_start, &got_end);
    if (got_start != start || got_end != end) {
        print_error("anchor %lld period %ld now %lld: got [%lld, %lld), expected [%lld, %lld)\n", (long long)anchor,
                    period, (long long)now, (long long)got_start, (long long)got_end, (long long)start, (long long)end);
        fail();
    }
}

static void test_meter_period(void **state)
{
    const long month = 30 * DAY;
    paywall_meter_visitor visitor;
    time_t first_start, first_end, later_start, later_end;
    size_t len;
    char cookie[PAYWALL_METER_COOKIE_MAX];

    (void)state;
    assert_period(T0, month, T0, T0, T0 + month);
    assert_period(T0, month, T0 + 1, T0, T0 + month);
    assert_period(T0, month, T0 + month - 1, T0, T0 + month);
    /* the period is over: the next one starts at the boundary, not at the next view */
    assert_period(T0, month, T0 + month, T0 + month, T0 + 2 * month);
    assert_period(T0, month, T0 + 5 * month + 17, T0 + 5 * month, T0 + 6 * month);
    /* a clock behind the anchor */
    assert_period(T0, month, T0 - 1, T0 - month, T0);
    assert_period(T0, month, T0 - month, T0 - month, T0);
    assert_period(T0, month, T0 - month - 1, T0 - 2 * month, T0 - month);
    assert_period(T0, 1, T0 + 3, T0 + 3, T0 + 4);
    assert_period(T0, 0, T0 + 3, T0 + 3, T0 + 4);
    assert_period(T0, -5, T0 + 3, T0 + 3, T0 + 4);
    assert_period(0, 3600, 7199, 3600, 7200);

    /* a visitor's cookie, read again after its period expired: same id, a new period (so a new count key) */
    meter_visitor_fixed(&visitor);
    len = paywall_meter_cookie_make(&visitor, LIT(meter_key), cookie, sizeof(cookie));
    assert_int_equal(paywall_meter_cookie_parse(cookie, len, LIT(meter_key), &visitor), PAYWALL_METER_COOKIE_OK);
    paywall_meter_period(visitor.start, month, T0 + 3 * DAY, &first_start, &first_end);
    paywall_meter_period(visitor.start, month, T0 + 31 * DAY, &later_start, &later_end);
    assert_true(first_start == T0 && first_end == T0 + month);
    assert_true(later_start == first_end && later_end == T0 + 2 * month);
    assert_true(later_end - (T0 + 31 * DAY) == 29 * DAY); /* the TTL for the new count */
}

/* -------------------------------------------------------------------------------------------- directives */

static void test_parse_duration_grace(void **state)
{
    static const struct {
        const char *value;
        long seconds;
    } good[] = {
        {"0", 0},       {"30", 30}, {"30s", 30},          {"15m", 900},           {"36h", 129600},
        {"7d", 604800}, {"0d", 0},  {"3650d", 315360000}, {"000000007d", 604800},
    };
    static const char *const bad[] = {"",   "d",    "-1",   "+5",  "7 d",   " 7d",       "7d ",        "7dd", "7w",
                                      "7D", "1.5h", "0x10", "7ds", "3651d", "315360001", "9999999999", NULL};
    long seconds;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        seconds = -2;
        assert_null(paywall_parse_duration(good[i].value, &seconds));
        assert_int_equal(seconds, good[i].seconds);
    }
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        seconds = -2;
        assert_non_null(paywall_parse_duration(bad[i], &seconds));
        assert_int_equal(seconds, -2);
    }

    assert_null(paywall_parse_grace("7d", &seconds));
    assert_int_equal(seconds, PAYWALL_GRACE_DEFAULT);
    assert_null(paywall_parse_grace("0", &seconds));
    assert_int_equal(seconds, 0);
    assert_null(paywall_parse_grace("365d", &seconds));
    assert_int_equal(seconds, 365 * DAY);
    assert_null(paywall_parse_grace("72h", &seconds));
    assert_int_equal(seconds, 3 * DAY);
    seconds = -2;
    assert_string_equal(paywall_parse_grace("366d", &seconds),
                        "must be a duration from 0 to 365d such as 7d or 36h (a bare number is seconds; units s, m, "
                        "h, d)");
    assert_non_null(paywall_parse_grace("-1d", &seconds));
    assert_non_null(paywall_parse_grace("seven days", &seconds));
    assert_non_null(paywall_parse_grace(NULL, &seconds));
    assert_int_equal(seconds, -2);
}

static void test_parse_require(void **state)
{
    paywall_require require;
    char names[PAYWALL_REQUIRE_MAX + 1][8], longest[PAYWALL_PLAN_MAX + 2];
    int i;

    (void)state;
    memset(&require, 0, sizeof(require));
    assert_null(paywall_parse_require(&require, "any"));
    assert_true(require.any);
    assert_string_equal(paywall_parse_require(&require, "gold"), "cannot combine any with plan names");

    memset(&require, 0, sizeof(require));
    assert_null(paywall_parse_require(&require, "ANY"));
    assert_true(require.any);

    memset(&require, 0, sizeof(require));
    assert_null(paywall_parse_require(&require, "gold"));
    assert_null(paywall_parse_require(&require, "price_1PbQyzLkdIwHu7ix"));
    assert_null(paywall_parse_require(&require, "gold")); /* a repeat is harmless */
    assert_int_equal(require.nplans, 2);
    assert_false(require.any);
    assert_string_equal(require.plans[0], "gold");
    assert_string_equal(paywall_parse_require(&require, "any"), "cannot combine any with plan names");
    assert_string_equal(paywall_parse_require(&require, "gold,silver"),
                        "plan names are 1 to 128 printable ASCII characters without space, comma or quote");
    assert_non_null(paywall_parse_require(&require, "gold silver"));
    assert_non_null(paywall_parse_require(&require, "\"gold\""));
    assert_non_null(paywall_parse_require(&require, "g\303\266ld"));
    assert_non_null(paywall_parse_require(&require, ""));
    assert_non_null(paywall_parse_require(&require, NULL));
    memset(longest, 'p', sizeof(longest));
    longest[PAYWALL_PLAN_MAX + 1] = '\0';
    assert_non_null(paywall_parse_require(&require, longest));
    longest[PAYWALL_PLAN_MAX] = '\0';
    assert_null(paywall_parse_require(&require, longest));
    assert_int_equal(require.nplans, 3);

    memset(&require, 0, sizeof(require));
    for (i = 0; i < PAYWALL_REQUIRE_MAX; i++) {
        snprintf(names[i], sizeof(names[i]), "plan%d", i);
        assert_null(paywall_parse_require(&require, names[i]));
    }
    snprintf(names[i], sizeof(names[i]), "plan%d", i);
    assert_string_equal(paywall_parse_require(&require, names[i]), "lists more than 32 plans");
    assert_int_equal(require.nplans, PAYWALL_REQUIRE_MAX);
}

static void test_parse_meter(void **state)
{
    paywall_meter_config meter = {7, 7}, untouched = {7, 7};
    static const char *const bad[][2] = {
        {"", "30d"}, {"-1", "30d"}, {"3x", "30d"}, {"10001", "30d"}, {"000003", "30d"}, {"3.5", "30d"},
        {"3", "0"},  {"3", "0d"},   {"3", "367d"}, {"3", "30 d"},    {"3", "month"},    {"3", ""},
        {"3", NULL}, {NULL, "30d"}, {" 3", "30d"}, {"3", "-30d"},
    };
    size_t i;

    (void)state;
    assert_null(paywall_parse_meter("3", "30d", &meter));
    assert_int_equal(meter.limit, 3);
    assert_int_equal(meter.period, 30 * DAY);
    assert_null(paywall_parse_meter("0", "1s", &meter));
    assert_int_equal(meter.limit, 0);
    assert_int_equal(meter.period, 1);
    assert_null(paywall_parse_meter("10000", "366d", &meter));
    assert_int_equal(meter.limit, 10000);
    assert_int_equal(meter.period, 366 * DAY);
    assert_null(paywall_parse_meter("00005", "90m", &meter));
    assert_int_equal(meter.limit, 5);
    assert_int_equal(meter.period, 5400);
    assert_null(paywall_parse_meter("5", "3600", &meter));
    assert_int_equal(meter.period, 3600);

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        meter = untouched;
        if (paywall_parse_meter(bad[i][0], bad[i][1], &meter) == NULL) {
            print_error("accepted %s %s\n", bad[i][0] ? bad[i][0] : "NULL", bad[i][1] ? bad[i][1] : "NULL");
            fail();
        }
        assert_int_equal(meter.limit, 7);
        assert_int_equal(meter.period, 7);
    }
    assert_string_equal(paywall_parse_meter("3", "367d", &meter),
                        "needs a period from 1s to 366d such as 30d, 12h or 90m");
    assert_string_equal(paywall_parse_meter("many", "30d", &meter),
                        "needs a number of free views from 0 to 10000 and a period such as 30d");
}

static void test_parse_deny(void **state)
{
    paywall_deny deny;
    static const char url[] = "https://example.com/subscribe?from=paywall&plan=gold#top";
    static const char *const bad_urls[] = {
        "subscribe",
        "javascript:alert(1)",
        "ftp://example.com/",
        "/a b",
        "/a\r\nSet-Cookie: x=1",
        "/x\"onmouseover=\"alert(1)",
        "/x'",
        "/<script>",
        "/a\\b",
        "/caf\303\251",
        "",
    };
    static const char *const bad_codes[] = {"399", "500", "302", "200", "40", "4022", "abc", "", "-403", "4o3", " 403"};
    size_t i;

    (void)state;
    memset(&deny, 0, sizeof(deny));
    assert_null(paywall_parse_deny("teaser", NULL, &deny));
    assert_int_equal(deny.kind, PAYWALL_DENY_TEASER);
    assert_string_equal(paywall_parse_deny("teaser", "x", &deny), "teaser takes no argument");

    assert_null(paywall_parse_deny("redirect", "/subscribe", &deny));
    assert_int_equal(deny.kind, PAYWALL_DENY_REDIRECT);
    assert_string_equal(deny.url, "/subscribe");
    assert_null(paywall_parse_deny("Redirect", url, &deny));
    assert_ptr_equal(deny.url, url);
    assert_null(paywall_parse_deny("redirect", "HTTP://example.com/", &deny));
    assert_string_equal(paywall_parse_deny("redirect", NULL, &deny),
                        "redirect needs a path or an http(s) URL without spaces or quotes");
    for (i = 0; i < sizeof(bad_urls) / sizeof(bad_urls[0]); i++) {
        if (paywall_parse_deny("redirect", bad_urls[i], &deny) == NULL) {
            print_error("accepted redirect %s\n", bad_urls[i]);
            fail();
        }
    }

    assert_null(paywall_parse_deny("status", "402", &deny));
    assert_int_equal(deny.kind, PAYWALL_DENY_STATUS);
    assert_int_equal(deny.status, 402);
    assert_null(deny.url);
    assert_null(paywall_parse_deny("STATUS", "400", &deny));
    assert_int_equal(deny.status, 400);
    assert_null(paywall_parse_deny("status", "499", &deny));
    assert_int_equal(deny.status, 499);
    assert_null(paywall_parse_deny("status", "451", &deny));
    assert_int_equal(deny.status, 451);
    for (i = 0; i < sizeof(bad_codes) / sizeof(bad_codes[0]); i++) {
        deny.status = 1;
        if (paywall_parse_deny("status", bad_codes[i], &deny) == NULL) {
            print_error("accepted status %s\n", bad_codes[i]);
            fail();
        }
        assert_int_equal(deny.status, 1);
    }
    assert_string_equal(paywall_parse_deny("status", NULL, &deny), "status needs a 4xx code");
    assert_string_equal(paywall_parse_deny("block", NULL, &deny), "must be redirect URL, teaser or status CODE");
    assert_non_null(paywall_parse_deny(NULL, NULL, &deny));
}

static void test_parse_fail_mode(void **state)
{
    paywall_fail_mode mode = PAYWALL_FAIL_OPEN;

    (void)state;
    assert_null(paywall_parse_fail_mode("closed", &mode));
    assert_int_equal(mode, PAYWALL_FAIL_CLOSED);
    assert_null(paywall_parse_fail_mode("open", &mode));
    assert_int_equal(mode, PAYWALL_FAIL_OPEN);
    assert_null(paywall_parse_fail_mode("Closed", &mode));
    assert_int_equal(mode, PAYWALL_FAIL_CLOSED);
    assert_string_equal(paywall_parse_fail_mode("on", &mode), "must be open or closed");
    assert_non_null(paywall_parse_fail_mode("", &mode));
    assert_non_null(paywall_parse_fail_mode("opened", &mode));
    assert_non_null(paywall_parse_fail_mode(NULL, &mode));
    assert_int_equal(mode, PAYWALL_FAIL_CLOSED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stripe_npm_vectors),
        cmocka_unit_test(test_stripe_parse_header),
        cmocka_unit_test(test_stripe_tampered_payload),
        cmocka_unit_test(test_stripe_wrong_secret),
        cmocka_unit_test(test_stripe_timestamps),
        cmocka_unit_test(test_stripe_malformed),
        cmocka_unit_test(test_stripe_sizes),
        cmocka_unit_test(test_stripe_status_names),
        cmocka_unit_test(test_crawlers_googlebot),
        cmocka_unit_test(test_crawlers_normalise),
        cmocka_unit_test(test_crawlers_errors),
        cmocka_unit_test(test_crawlers_limits),
        cmocka_unit_test(test_crawlers_load),
        cmocka_unit_test(test_access_table),
        cmocka_unit_test(test_access_statuses),
        cmocka_unit_test(test_meter_cookie_roundtrip),
        cmocka_unit_test(test_meter_cookie_tampered),
        cmocka_unit_test(test_meter_cookie_truncated),
        cmocka_unit_test(test_meter_cookie_keys),
        cmocka_unit_test(test_meter_cookie_payload),
        cmocka_unit_test(test_meter_period),
        cmocka_unit_test(test_parse_duration_grace),
        cmocka_unit_test(test_parse_require),
        cmocka_unit_test(test_parse_meter),
        cmocka_unit_test(test_parse_deny),
        cmocka_unit_test(test_parse_fail_mode),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
