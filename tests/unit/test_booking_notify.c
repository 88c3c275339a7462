/* Unit tests of mod_booking's notification helpers: the X-Booking-Signature value (checked against HMAC-SHA256
 * computed independently with Python's hmac module), the retry backoff, and transport errors stripped of the URL. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

/* Not in a header: booking_notify.c keeps them to itself and this test. */
long booking_notify_backoff_ms(long attempts);
int booking_notify_sign(const char *secret, size_t secret_len, long long t, const char *body, size_t body_len,
                        char *out, size_t outlen);
void booking_notify_error_text(const char *error, const char *url, char *out, size_t outlen);

#define SECRET "notify-secret-0123456789abcdef"

/* python3: hmac.new(b'notify-secret-0123456789abcdef', b'1700000000.{"id":1}', hashlib.sha256).hexdigest() */
static void test_sign_known_value(void **state)
{
    char out[128];
    const char *body = "{\"id\":1}";
    int n;

    (void)state;
    n = booking_notify_sign(SECRET, strlen(SECRET), 1700000000LL, body, strlen(body), out, sizeof(out));
    assert_string_equal(out, "t=1700000000,v1=0dffff0508c5bc88208a940115c6e582d680cfdcfadf532c3ef2aabe5302c62f");
    assert_int_equal(n, (int)strlen(out));
}

/* An empty body still signs "<t>.": hmac.new(b'k', b'0.', hashlib.sha256) */
static void test_sign_empty_body(void **state)
{
    char out[128];

    (void)state;
    assert_true(booking_notify_sign("k", 1, 0, NULL, 0, out, sizeof(out)) > 0);
    assert_string_equal(out, "t=0,v1=6b4a4b8b3c40f1e8f53a3d36682e5f99f7ad2ac1df1c93dfe336f329167641e7");
}

static void test_sign_changes_with_body_and_time(void **state)
{
    char a[128], b[128], c[128];

    (void)state;
    booking_notify_sign(SECRET, strlen(SECRET), 1700000000LL, "{\"id\":1}", 8, a, sizeof(a));
    booking_notify_sign(SECRET, strlen(SECRET), 1700000000LL, "{\"id\":2}", 8, b, sizeof(b));
    booking_notify_sign(SECRET, strlen(SECRET), 1700000001LL, "{\"id\":1}", 8, c, sizeof(c));
    assert_string_not_equal(strchr(a, 'v'), strchr(b, 'v'));
    assert_string_not_equal(strchr(a, 'v'), strchr(c, 'v'));
}

static void test_sign_too_small(void **state)
{
    char out[40];

    (void)state;
    assert_int_equal(booking_notify_sign(SECRET, strlen(SECRET), 1700000000LL, "x", 1, out, sizeof(out)), -1);
}

/* 1 s, 2 s, 4 s ... doubling from the first failure, never more than a minute */
static void test_backoff(void **state)
{
    (void)state;
    assert_int_equal(booking_notify_backoff_ms(0), 1000);
    assert_int_equal(booking_notify_backoff_ms(1), 1000);
    assert_int_equal(booking_notify_backoff_ms(2), 2000);
    assert_int_equal(booking_notify_backoff_ms(3), 4000);
    assert_int_equal(booking_notify_backoff_ms(6), 32000);
    assert_int_equal(booking_notify_backoff_ms(7), 60000);
    assert_int_equal(booking_notify_backoff_ms(8), 60000);
    assert_int_equal(booking_notify_backoff_ms(1000000), 60000);
}

static void test_error_text_hides_url(void **state)
{
    const char *url = "https://user:s3cret@hooks.example.com/notify?key=abc";
    char err[300], out[256];

    (void)state;
    snprintf(err, sizeof(err), "POST %s: Couldn't connect to server", url);
    booking_notify_error_text(err, url, out, sizeof(out));
    assert_string_equal(out, "Couldn't connect to server");
    snprintf(err, sizeof(err), "response from %s larger than 65536 bytes", url);
    booking_notify_error_text(err, url, out, sizeof(out));
    assert_string_equal(out, "response too large");
    booking_notify_error_text("out of memory", url, out, sizeof(out));
    assert_string_equal(out, "out of memory");
    booking_notify_error_text("", url, out, sizeof(out));
    assert_string_equal(out, "transport error");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sign_known_value),
        cmocka_unit_test(test_sign_empty_body),
        cmocka_unit_test(test_sign_changes_with_body_and_time),
        cmocka_unit_test(test_sign_too_small),
        cmocka_unit_test(test_backoff),
        cmocka_unit_test(test_error_text_hides_url),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
