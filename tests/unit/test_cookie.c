/* Unit tests of core/cookie.c: finding a cookie in a Cookie or Set-Cookie header, checking a session id. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "cookie.h"

#define LIT(s) s, sizeof(s) - 1

static void assert_found(const char *header, const char *name, const char *expected)
{
    const char *value = NULL;
    size_t len = 999;

    assert_int_equal(cookie_find(header, strlen(header), name, strlen(name), &value, &len), 1);
    assert_true(value >= header && value + len <= header + strlen(header));
    assert_int_equal(len, strlen(expected));
    assert_memory_equal(value, expected, len);
}

static void assert_absent(const char *header, const char *name)
{
    const char *value = NULL;
    size_t len = 999;

    assert_int_equal(cookie_find(header, strlen(header), name, strlen(name), &value, &len), 0);
}

static void test_find_plain(void **state)
{
    (void)state;
    assert_found("PHPSESSID=abc", "PHPSESSID", "abc");
    assert_found("a=1; PHPSESSID=abc; b=2", "PHPSESSID", "abc");
    assert_found("a=1; PHPSESSID=abc; b=2", "a", "1");
    assert_found("a=1; PHPSESSID=abc; b=2", "b", "2");
    assert_found("a=1;PHPSESSID=abc;b=2", "PHPSESSID", "abc");
    assert_found("a=1; b=2; PHPSESSID=abc;", "PHPSESSID", "abc");
    assert_found("t=a=b", "t", "a=b");
}

/* browsers send the most specific path first; PHP keeps the first too */
static void test_find_first_of_duplicates(void **state)
{
    (void)state;
    assert_found("PHPSESSID=first; PHPSESSID=second", "PHPSESSID", "first");
}

static void test_find_quoted_and_spaces(void **state)
{
    (void)state;
    assert_found("PHPSESSID=\"abc\"", "PHPSESSID", "abc");
    assert_found("a=1; PHPSESSID=\"abc def\" ; b=2", "PHPSESSID", "abc def");
    assert_found("PHPSESSID=\"\"", "PHPSESSID", "");
    assert_found("PHPSESSID=\"abc", "PHPSESSID", "\"abc");
    assert_found("PHPSESSID=\"", "PHPSESSID", "\"");
    assert_found("   PHPSESSID   =   abc   ;x=y", "PHPSESSID", "abc");
    assert_found("a=1;\tPHPSESSID=\tabc\t", "PHPSESSID", "abc");
    assert_found(";;; ; PHPSESSID=abc", "PHPSESSID", "abc");
    assert_found("PHPSESSID=", "PHPSESSID", "");
    assert_found("PHPSESSID= ; a=b", "PHPSESSID", "");
}

static void test_find_missing(void **state)
{
    const char *value = NULL;
    size_t len = 0;

    (void)state;
    assert_absent("", "PHPSESSID");
    assert_absent("a=1; b=2", "PHPSESSID");
    assert_absent("PHPSESSID", "PHPSESSID"); /* no '=': no value */
    assert_absent("PHPSESSID; a=b", "PHPSESSID");
    assert_absent("phpsessid=abc", "PHPSESSID");   /* names are case-sensitive */
    assert_absent("a=PHPSESSID=abc", "PHPSESSID"); /* inside another cookie's value */
    assert_absent("a=\"x; PHPSESSID\"", "PHPSESSID");
    assert_int_equal(cookie_find(NULL, 0, LIT("PHPSESSID"), &value, &len), 0);
    assert_int_equal(cookie_find(LIT("PHPSESSID=a"), NULL, 0, &value, &len), 0);
    assert_int_equal(cookie_find(LIT("=a"), "", 0, &value, &len), 0);
    assert_int_equal(cookie_find(LIT("PHPSESSID=a"), LIT("PHPSESSID"), NULL, &len), 0);
    /* only header_len bytes count */
    assert_int_equal(cookie_find("a=1; PHPSESSID=abc", 4, LIT("PHPSESSID"), &value, &len), 0);
    assert_int_equal(cookie_find("PHPSESSID=abcdef", 13, LIT("PHPSESSID"), &value, &len), 1);
    assert_int_equal(len, 3);
}

static void test_find_prefix_collisions(void **state)
{
    (void)state;
    assert_absent("XPHPSESSID=evil", "PHPSESSID");
    assert_found("XPHPSESSID=evil; PHPSESSID=good", "PHPSESSID", "good");
    assert_found("PHPSESSIDX=evil; PHPSESSID=good", "PHPSESSID", "good");
    assert_absent("PHPSESSIDX=evil", "PHPSESSID");
    assert_absent("PHPSESS=evil", "PHPSESSID");
    assert_found("PHPSESSID=good; XPHPSESSID=evil", "XPHPSESSID", "evil");
}

static void assert_set_cookie(const char *header, const char *name, int found, const char *expected)
{
    const char *value = NULL;
    size_t len = 999;

    assert_int_equal(cookie_find_set_cookie(header, strlen(header), name, strlen(name), &value, &len), found);
    if (found) {
        assert_int_equal(len, strlen(expected));
        assert_memory_equal(value, expected, len);
    }
}

static void test_set_cookie(void **state)
{
    const char *value;
    size_t len;

    (void)state;
    assert_set_cookie("PHPSESSID=abc; Path=/; HttpOnly", "PHPSESSID", 1, "abc");
    assert_set_cookie("PHPSESSID=abc", "PHPSESSID", 1, "abc");
    assert_set_cookie("  PHPSESSID = \"abc\" ; path=/", "PHPSESSID", 1, "abc");
    assert_set_cookie("PHPSESSID=deleted; expires=Thu, 01 Jan 1970 00:00:01 GMT", "PHPSESSID", 1, "deleted");
    assert_set_cookie("PHPSESSID=; Max-Age=0", "PHPSESSID", 1, "");
    assert_set_cookie("Path=/; PHPSESSID=abc", "PHPSESSID", 0, NULL); /* attributes are not cookies */
    assert_set_cookie("XPHPSESSID=abc; Path=/", "PHPSESSID", 0, NULL);
    assert_set_cookie("PHPSESSIDX=abc; Path=/", "PHPSESSID", 0, NULL);
    assert_set_cookie("other=1; PHPSESSID=abc", "PHPSESSID", 0, NULL);
    assert_set_cookie("PHPSESSID", "PHPSESSID", 0, NULL);
    assert_set_cookie("", "PHPSESSID", 0, NULL);
    assert_int_equal(cookie_find_set_cookie(NULL, 0, LIT("PHPSESSID"), &value, &len), 0);
}

static void test_session_id_ok(void **state)
{
    char id[COOKIE_SESSION_ID_MAX + 1];

    (void)state;
    assert_int_equal(cookie_session_id_check(LIT("0123456789abcdefghijklmnopqrstuv")), COOKIE_ID_OK);
    assert_int_equal(cookie_session_id_check(LIT("ABCDEFGHIJKLMNOPQRSTUVWXYZ,-")), COOKIE_ID_OK);
    memset(id, 'a', sizeof(id));
    assert_int_equal(cookie_session_id_check(id, 22), COOKIE_ID_OK);
    assert_int_equal(cookie_session_id_check(id, 26), COOKIE_ID_OK);
    assert_int_equal(cookie_session_id_check(id, 256), COOKIE_ID_OK);
}

static void test_session_id_bad(void **state)
{
    char id[300];
    static const char bad_chars[] = {'\x01', '\x1f', '\x7f', '\n', '\r', '\t', '\0',   ' ',    '.',    '_',   '/',
                                     '=',    ';',    '"',    '%',  '+',  '\\', '\xc3', '\xa9', '\x80', '\xff'};
    size_t i, pos;

    (void)state;
    assert_int_equal(cookie_session_id_check("", 0), COOKIE_ID_EMPTY);
    assert_int_equal(cookie_session_id_check(NULL, 0), COOKIE_ID_EMPTY);
    assert_int_equal(cookie_session_id_check(NULL, 5), COOKIE_ID_EMPTY);
    memset(id, 'a', sizeof(id));
    assert_int_equal(cookie_session_id_check(id, 21), COOKIE_ID_TOO_SHORT);
    assert_int_equal(cookie_session_id_check(id, 1), COOKIE_ID_TOO_SHORT);
    assert_int_equal(cookie_session_id_check(id, 257), COOKIE_ID_TOO_LONG);
    assert_int_equal(cookie_session_id_check(id, 300), COOKIE_ID_TOO_LONG);
    for (i = 0; i < sizeof(bad_chars); i++) {
        for (pos = 0; pos < 26; pos += 25) {
            memset(id, 'a', 26);
            id[pos] = bad_chars[i];
            assert_int_equal(cookie_session_id_check(id, 26), COOKIE_ID_BAD_CHAR);
        }
    }
    /* "é" in UTF-8 starts with 0xC3 */
    assert_int_equal(cookie_session_id_check(LIT("abcdefghijklmnopqrstuv\xc3\xa9")), COOKIE_ID_BAD_CHAR);
    /* a bad character in a short id is reported as such */
    assert_int_equal(cookie_session_id_check(LIT("ab cd")), COOKIE_ID_BAD_CHAR);
}

static void test_status_text(void **state)
{
    cookie_id_status s;

    (void)state;
    for (s = COOKIE_ID_OK; s <= COOKIE_ID_BAD_CHAR; s++) {
        assert_non_null(cookie_id_status_text(s));
        assert_true(strlen(cookie_id_status_text(s)) > 0);
    }
    assert_string_not_equal(cookie_id_status_text(COOKIE_ID_TOO_SHORT), cookie_id_status_text(COOKIE_ID_TOO_LONG));
    assert_non_null(cookie_id_status_text((cookie_id_status)99));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_find_plain),
        cmocka_unit_test(test_find_first_of_duplicates),
        cmocka_unit_test(test_find_quoted_and_spaces),
        cmocka_unit_test(test_find_missing),
        cmocka_unit_test(test_find_prefix_collisions),
        cmocka_unit_test(test_set_cookie),
        cmocka_unit_test(test_session_id_ok),
        cmocka_unit_test(test_session_id_bad),
        cmocka_unit_test(test_status_text),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
