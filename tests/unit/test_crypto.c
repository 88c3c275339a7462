/* Unit tests of core/crypto.c: RFC 4231 HMAC-SHA256 vectors, RFC 4648 base64url, session ids. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"

#define LIT(s) s, sizeof(s) - 1

static void hex_to_bytes(const char *hex, unsigned char *out)
{
    size_t i, n = strlen(hex) / 2;
    unsigned value;

    for (i = 0; i < n; i++) {
        assert_int_equal(sscanf(hex + 2 * i, "%2x", &value), 1);
        out[i] = (unsigned char)value;
    }
}

static void assert_hmac(const void *key, size_t key_len, const void *msg, size_t msg_len, const char *expected_hex,
                        size_t compare_len)
{
    unsigned char mac[CRYPTO_SHA256_LEN], expected[CRYPTO_SHA256_LEN];

    hex_to_bytes(expected_hex, expected);
    crypto_hmac_sha256(key, key_len, msg, msg_len, mac);
    assert_memory_equal(mac, expected, compare_len);
}

/* RFC 4231 section 4 */
static void test_hmac_rfc4231(void **state)
{
    unsigned char key[131], data[50];
    size_t i;

    (void)state;
    memset(key, 0x0b, 20);
    assert_hmac(key, 20, LIT("Hi There"), "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7", 32);

    assert_hmac(LIT("Jefe"), LIT("what do ya want for nothing?"),
                "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843", 32);

    memset(key, 0xaa, 20);
    memset(data, 0xdd, 50);
    assert_hmac(key, 20, data, 50, "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe", 32);

    for (i = 0; i < 25; i++) {
        key[i] = (unsigned char)(i + 1);
    }
    memset(data, 0xcd, 50);
    assert_hmac(key, 25, data, 50, "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b", 32);

    /* test case 5 is specified truncated to 128 bits */
    memset(key, 0x0c, 20);
    assert_hmac(key, 20, LIT("Test With Truncation"), "a3b6167473100ee06e0c796c2955552b", 16);

    memset(key, 0xaa, 131);
    assert_hmac(key, 131, LIT("Test Using Larger Than Block-Size Key - Hash Key First"),
                "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54", 32);
    assert_hmac(key, 131,
                LIT("This is a test using a larger than block-size key and a larger than block-size data. The key "
                    "needs to be hashed before being used by the HMAC algorithm."),
                "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2", 32);
}

static void test_hmac_empty(void **state)
{
    (void)state;
    assert_hmac(NULL, 0, NULL, 0, "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad", 32);
    assert_hmac("", 0, "", 0, "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad", 32);
}

static void test_equal_consttime(void **state)
{
    unsigned char a[64], b[64];

    (void)state;
    memset(a, 0x5a, sizeof(a));
    memcpy(b, a, sizeof(b));
    assert_int_equal(crypto_equal_consttime(a, b, sizeof(a)), 1);
    b[0] ^= 1;
    assert_int_equal(crypto_equal_consttime(a, b, sizeof(a)), 0);
    b[0] ^= 1;
    b[63] ^= 0x80;
    assert_int_equal(crypto_equal_consttime(a, b, sizeof(a)), 0);
    assert_int_equal(crypto_equal_consttime(a, b, 63), 1);
    assert_int_equal(crypto_equal_consttime(a, b, 0), 1);
}

static void assert_b64(const char *plain, size_t len, const char *encoded)
{
    char out[64];
    unsigned char back[64];

    assert_int_equal(crypto_base64url_len(len), strlen(encoded));
    assert_int_equal(crypto_base64url_encode(plain, len, out), strlen(encoded));
    assert_string_equal(out, encoded);
    assert_int_equal(crypto_base64url_decode(encoded, strlen(encoded), back), len);
    assert_memory_equal(back, plain, len);
}

/* RFC 4648 section 10, without padding, and the two characters that differ from base64 */
static void test_base64url_vectors(void **state)
{
    (void)state;
    assert_b64("", 0, "");
    assert_b64(LIT("f"), "Zg");
    assert_b64(LIT("fo"), "Zm8");
    assert_b64(LIT("foo"), "Zm9v");
    assert_b64(LIT("foob"), "Zm9vYg");
    assert_b64(LIT("fooba"), "Zm9vYmE");
    assert_b64(LIT("foobar"), "Zm9vYmFy");
    assert_b64(LIT("\xfb\xff"), "-_8");
    assert_b64(LIT("\xff\xff\xff"), "____");
    assert_b64(LIT("\xf8\x00\x3e"), "-AA-");
    assert_b64(LIT("\x00\x00\x00"), "AAAA");
}

static void test_base64url_round_trip(void **state)
{
    unsigned char plain[300], back[300 + 1]; /* len * 3 / 4 + 1 of the longest text */
    char encoded[401];
    size_t len, n;

    (void)state;
    assert_int_equal(crypto_random_bytes(plain, sizeof(plain)), 0);
    for (len = 0; len <= sizeof(plain); len++) {
        n = crypto_base64url_encode(plain, len, encoded);
        assert_int_equal(n, crypto_base64url_len(len));
        assert_int_equal(encoded[n], '\0');
        assert_null(memchr(encoded, '=', n));
        assert_null(memchr(encoded, '+', n));
        assert_null(memchr(encoded, '/', n));
        assert_int_equal(crypto_base64url_decode(encoded, n, back), len);
        assert_memory_equal(back, plain, len);
    }
}

static void test_base64url_invalid(void **state)
{
    static const char *const bad[] = {
        "Zm9v+mFy",                                           /* base64's own characters */
        "Zm9v/mFy", "Zm9vYg==",                               /* padding */
        "Zm9vY=",   "Zm 9v",    "Zm9v\n", "Zm9\xc3\xa9", "Z", /* 4n+1 characters cannot come from any bytes */
        "Zm9vY",    "Zh",                                     /* unused low bits set: "f" is only ever "Zg" */
        "Zm9",                                                /* "fo" is "Zm8" */
    };
    unsigned char out[16];
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(crypto_base64url_decode(bad[i], strlen(bad[i]), out), (size_t)-1);
    }
    assert_int_equal(crypto_base64url_decode("Zm\0v", 4, out), (size_t)-1);
}

static void test_hex(void **state)
{
    char out[9];

    (void)state;
    crypto_hex_encode("\x00\x1f\xa0\xff", 4, out);
    assert_string_equal(out, "001fa0ff");
    crypto_hex_encode("", 0, out);
    assert_string_equal(out, "");
}

static void test_random_bytes(void **state)
{
    unsigned char a[64], b[64], zero[64] = {0};

    (void)state;
    assert_int_equal(crypto_random_bytes(a, 0), 0);
    assert_int_equal(crypto_random_bytes(NULL, 0), 0);
    assert_int_equal(crypto_random_bytes(NULL, 1), -1);
    memset(a, 0, sizeof(a));
    memset(b, 0, sizeof(b));
    assert_int_equal(crypto_random_bytes(a, sizeof(a)), 0);
    assert_int_equal(crypto_random_bytes(b, sizeof(b)), 0);
    assert_memory_not_equal(a, zero, sizeof(a));
    assert_memory_not_equal(a, b, sizeof(a));
}

static int compare_ids(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
}

#define ID_COUNT 20000
#define ID_LEN   26

static void test_session_id_alphabet_and_length(void **state)
{
    char id[300];
    size_t lens[] = {26, 27, 32, 48, 256, 299}, i, j;

    (void)state;
    assert_int_equal(crypto_session_id_new(id, 25), -1); /* 125 bits */
    assert_int_equal(crypto_session_id_new(id, 0), -1);
    assert_int_equal(crypto_session_id_new(NULL, 26), -1);
    for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        memset(id, 'X', sizeof(id));
        assert_int_equal(crypto_session_id_new(id, lens[i]), 0);
        assert_int_equal(strlen(id), lens[i]);
        for (j = 0; j < lens[i]; j++) {
            assert_non_null(strchr("0123456789abcdefghijklmnopqrstuv", id[j]));
        }
    }
}

/* Many ids: all different, and every character of the alphabet about equally frequent in every position. */
static void test_session_id_unique(void **state)
{
    char(*ids)[ID_LEN + 1] = malloc(ID_COUNT * sizeof(*ids));
    unsigned counts[ID_LEN][32];
    size_t i, j, c;
    const char *alphabet = "0123456789abcdefghijklmnopqrstuv";

    (void)state;
    assert_non_null(ids);
    memset(counts, 0, sizeof(counts));
    for (i = 0; i < ID_COUNT; i++) {
        assert_int_equal(crypto_session_id_new(ids[i], ID_LEN), 0);
        for (j = 0; j < ID_LEN; j++) {
            counts[j][strchr(alphabet, ids[i][j]) - alphabet]++;
        }
    }
    qsort(ids, ID_COUNT, sizeof(*ids), compare_ids);
    for (i = 1; i < ID_COUNT; i++) {
        assert_int_not_equal(strcmp(ids[i - 1], ids[i]), 0);
    }
    /* expected 625 per cell, standard deviation about 24.6: 8 sigma apart from it means a biased mapping */
    for (j = 0; j < ID_LEN; j++) {
        for (c = 0; c < 32; c++) {
            assert_in_range(counts[j][c], 625 - 200, 625 + 200);
        }
    }
    free(ids);
}

/* Published FNV-1a 64 test vectors (the reference implementation's test suite), so that a change of the function
 * cannot pass unnoticed: prepared statement names and session fingerprints are derived from it. */
static void test_fnv1a64(void **state)
{
    (void)state;
    assert_true(crypto_fnv1a64("", 0) == 0xcbf29ce484222325ULL);
    assert_true(crypto_fnv1a64("a", 1) == 0xaf63dc4c8601ec8cULL);
    assert_true(crypto_fnv1a64("foobar", 6) == 0x85944171f73967e8ULL);
    assert_true(crypto_fnv1a64("a\0b", 3) != crypto_fnv1a64("a", 1));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hmac_rfc4231),
        cmocka_unit_test(test_hmac_empty),
        cmocka_unit_test(test_equal_consttime),
        cmocka_unit_test(test_base64url_vectors),
        cmocka_unit_test(test_base64url_round_trip),
        cmocka_unit_test(test_base64url_invalid),
        cmocka_unit_test(test_hex),
        cmocka_unit_test(test_fnv1a64),
        cmocka_unit_test(test_random_bytes),
        cmocka_unit_test(test_session_id_alphabet_and_length),
        cmocka_unit_test(test_session_id_unique),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
