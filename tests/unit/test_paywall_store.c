/* Unit tests of the parts of mod_paywall's store side that need no store: CSRF tokens, the redirect's Location, user
 * ids and sources, secret files, and the gate's decisions that never reach a store (crawlers, anonymous visitors). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "paywall_store.h"

static const unsigned char secret[] = "unit-test-secret-0123456789";
#define SECRET secret, sizeof(secret) - 1

static void test_csrf_roundtrip(void **state)
{
    char token[96];
    size_t len;

    (void)state;
    len = paywall_csrf_token(SECRET, "u-42", 4, 1800000000, token, sizeof(token));
    assert_true(len > 0);
    assert_int_equal(strlen(token), len);
    assert_true(paywall_csrf_check(SECRET, "u-42", 4, token, len, 1800000000));
    assert_true(paywall_csrf_check(SECRET, "u-42", 4, token, len, 1800000000 + 23 * 3600));
    /* expired, from the future, another user, another key, altered, truncated, empty */
    assert_false(paywall_csrf_check(SECRET, "u-42", 4, token, len, 1800000000 + 25 * 3600));
    assert_false(paywall_csrf_check(SECRET, "u-42", 4, token, len, 1800000000 - 3600));
    assert_false(paywall_csrf_check(SECRET, "u-43", 4, token, len, 1800000000));
    assert_false(
        paywall_csrf_check((const unsigned char *)"another-secret-0123456789", 25, "u-42", 4, token, len, 1800000000));
    token[len - 1] = token[len - 1] == 'A' ? 'B' : 'A';
    assert_false(paywall_csrf_check(SECRET, "u-42", 4, token, len, 1800000000));
    assert_false(paywall_csrf_check(SECRET, "u-42", 4, token, len - 1, 1800000000));
    assert_false(paywall_csrf_check(SECRET, "u-42", 4, "", 0, 1800000000));
    assert_false(paywall_csrf_check(SECRET, "u-42", 4, NULL, 0, 1800000000));
    /* a shifted timestamp keeps the mac but not its validity */
    len = paywall_csrf_token(SECRET, "u-42", 4, 1800000000, token, sizeof(token));
    token[0] = '2';
    assert_false(paywall_csrf_check(SECRET, "u-42", 4, token, len, 2800000000LL));
    /* no token without a secret or for an invalid user */
    assert_int_equal(paywall_csrf_token(NULL, 0, "u-42", 4, 1800000000, token, sizeof(token)), 0);
    assert_int_equal(paywall_csrf_token(SECRET, "bad user", 8, 1800000000, token, sizeof(token)), 0);
    assert_int_equal(paywall_csrf_token(SECRET, "u-42", 4, 1800000000, token, 10), 0);
}

static void test_deny_location(void **state)
{
    char *loc;

    (void)state;
    loc = paywall_deny_location("/subscribe", "/articles/a.html?x=1&y=é", strlen("/articles/a.html?x=1&y=é"));
    assert_string_equal(loc, "/subscribe?return=%2Farticles%2Fa.html%3Fx%3D1%26y%3D%C3%A9");
    free(loc);
    loc = paywall_deny_location("https://shop.example/sub?src=wall", "/a b", 4);
    assert_string_equal(loc, "https://shop.example/sub?src=wall&return=%2Fa%20b");
    free(loc);
    loc = paywall_deny_location("/s", "", 0);
    assert_string_equal(loc, "/s?return=");
    free(loc);
}

static void test_user_ids(void **state)
{
    char long_id[PAYWALL_USER_ID_MAX + 2];

    (void)state;
    assert_true(paywall_user_id_valid("42", 2));
    assert_true(paywall_user_id_valid("ada.lovelace@example.org", 24));
    assert_true(paywall_user_id_valid("auth0:abc-123+x_y", 17));
    assert_false(paywall_user_id_valid("", 0));
    assert_false(paywall_user_id_valid(NULL, 0));
    assert_false(paywall_user_id_valid("a b", 3));
    assert_false(paywall_user_id_valid("a\nb", 3));
    assert_false(paywall_user_id_valid("a/b", 3));
    assert_false(paywall_user_id_valid("é", strlen("é")));
    memset(long_id, 'a', sizeof(long_id));
    assert_true(paywall_user_id_valid(long_id, PAYWALL_USER_ID_MAX));
    assert_false(paywall_user_id_valid(long_id, PAYWALL_USER_ID_MAX + 1));
}

static void test_user_source(void **state)
{
    paywall_user_source src;

    (void)state;
    assert_null(paywall_parse_user_source("session:user_id", &src));
    assert_int_equal(src.kind, PAYWALL_USER_SESSION);
    assert_string_equal(src.name, "user_id");
    assert_null(paywall_parse_user_source("env:REMOTE_USER", &src));
    assert_int_equal(src.kind, PAYWALL_USER_ENV);
    assert_null(paywall_parse_user_source("header:X-User-Id", &src));
    assert_int_equal(src.kind, PAYWALL_USER_HEADER);
    assert_string_equal(src.name, "X-User-Id");
    assert_non_null(paywall_parse_user_source("session:", &src));
    assert_non_null(paywall_parse_user_source("cookie:uid", &src));
    assert_non_null(paywall_parse_user_source("header:X User", &src));
    assert_non_null(paywall_parse_user_source("user_id", &src));
}

static void test_secret_file(void **state)
{
    char path[] = "/tmp/paywall-secret-XXXXXX", err[256], *out = NULL;
    size_t len = 0;
    int fd;

    (void)state;
    fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "whsec_0123456789abcdef  \nsecond line\n", 37), 37);
    close(fd);
    assert_null(paywall_read_secret_file(path, 16, &out, &len, err, sizeof(err)));
    assert_string_equal(out, "whsec_0123456789abcdef");
    assert_int_equal(len, 22);
    free(out);
    assert_non_null(paywall_read_secret_file(path, 64, &out, &len, err, sizeof(err)));
    assert_non_null(strstr(err, path));
    unlink(path);
    assert_non_null(paywall_read_secret_file(path, 1, &out, &len, err, sizeof(err)));
    assert_non_null(strstr(err, "cannot read"));
}

/* Decisions that need no store: a crawler's address, anonymous visitors where no meter applies. */
static void test_decide_without_store(void **state)
{
    paywall_crawlers *crawlers;
    paywall_rules rules;
    paywall_visit visit;
    paywall_result result;
    paywall_meter_config meter = {.limit = 3, .period = 86400};
    char err[256];
    static const char ranges[] = "{\"prefixes\":[{\"ipv4Prefix\":\"66.249.64.0/27\"}]}";

    (void)state;
    assert_int_equal(paywall_crawlers_parse(ranges, sizeof(ranges) - 1, &crawlers, err, sizeof(err)), 0);
    memset(&rules, 0, sizeof(rules));
    memset(&visit, 0, sizeof(visit));
    rules.crawlers = crawlers;
    visit.now = 1800000000;
    visit.client_addr = "66.249.64.7";
    assert_true(paywall_decide_cached(NULL, &rules, &visit, &result));
    assert_int_equal(result.access, PAYWALL_ACCESS_CRAWLER);
    assert_string_equal(paywall_access_name(result.access), "crawler");

    visit.client_addr = "66.249.64.77";
    assert_true(paywall_decide_cached(NULL, &rules, &visit, &result));
    assert_int_equal(result.access, PAYWALL_ACCESS_DENIED);
    assert_int_equal(result.meter_remaining, -1);

    /* an anonymous visitor with a meter but no secret to sign its cookie: no meter, decided at once */
    rules.meter = &meter;
    assert_true(paywall_decide_cached(NULL, &rules, &visit, &result));
    assert_int_equal(result.access, PAYWALL_ACCESS_DENIED);
    /* with a secret, the meter must be asked */
    rules.secret = secret;
    rules.secret_len = sizeof(secret) - 1;
    assert_false(paywall_decide_cached(NULL, &rules, &visit, &result));
    /* a known user needs the stores */
    visit.user_id = "u-1";
    visit.user_id_len = 3;
    assert_false(paywall_decide_cached(NULL, &rules, &visit, &result));
    paywall_crawlers_free(crawlers);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_csrf_roundtrip), cmocka_unit_test(test_deny_location),
        cmocka_unit_test(test_user_ids),       cmocka_unit_test(test_user_source),
        cmocka_unit_test(test_secret_file),    cmocka_unit_test(test_decide_without_store),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
