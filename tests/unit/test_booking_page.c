/* Unit tests of the white-label page's rendering (booking_page_render.c): every hole of the embedded template
 * filled and nothing else changed, the API path escaped for its attribute whatever the configuration says, a fresh
 * 128-bit nonce per page that the script, the style and the Content-Security-Policy all carry. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "booking.h"

extern const char booking_page_html[];
extern const size_t booking_page_html_len;

#define NONCE_LEN 22 /* base64url of 16 bytes, unpadded */

static size_t count_in(const char *haystack, size_t len, const char *needle)
{
    size_t n = 0, nlen = strlen(needle), i;

    for (i = 0; i + nlen <= len; i++) {
        if (memcmp(haystack + i, needle, nlen) == 0)
            n++;
    }
    return n;
}

/* The nonce the policy names, checked against its exact expected text. */
static void nonce_of(const char *csp, char nonce[NONCE_LEN + 1])
{
    char expected[512];
    size_t i;

    assert_int_equal(strncmp(csp, "default-src 'none'; script-src 'nonce-", 38), 0);
    memcpy(nonce, csp + 38, NONCE_LEN);
    nonce[NONCE_LEN] = '\0';
    for (i = 0; i < NONCE_LEN; i++)
        assert_non_null(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", nonce[i]));
    snprintf(expected, sizeof(expected),
             "default-src 'none'; script-src 'nonce-%s'; style-src 'nonce-%s'; img-src 'self' https: data:; "
             "connect-src 'self'; form-action 'none'; frame-ancestors 'self'; base-uri 'none'",
             nonce, nonce);
    assert_string_equal(csp, expected);
}

static void render(const char *page_api, char **html, size_t *len, char **csp)
{
    booking_config config;

    memset(&config, 0, sizeof(config));
    config.page_api = page_api;
    assert_int_equal(booking_page_render(&config, html, len, csp), 0);
    assert_non_null(*html);
    assert_non_null(*csp);
    assert_int_equal(strlen(*html), *len);
}

static void test_holes_filled(void **state)
{
    char *html, *csp, nonce[NONCE_LEN + 1], tag[64];
    size_t len, apis = count_in(booking_page_html, booking_page_html_len, "{{API}}"),
                nonces = count_in(booking_page_html, booking_page_html_len, "{{NONCE}}");
    (void)state;

    assert_true(apis >= 1);
    assert_int_equal(nonces, 2); /* the script and the style, nothing else */
    render("/booking/api", &html, &len, &csp);
    nonce_of(csp, nonce);
    assert_int_equal(len, booking_page_html_len - apis * 7 - nonces * 9 + apis * strlen("/booking/api") +
                              nonces * NONCE_LEN);
    assert_null(strstr(html, "{{API}}"));
    assert_null(strstr(html, "{{NONCE}}"));
    assert_non_null(strstr(html, "<meta name=\"booking-api\" content=\"/booking/api\">"));
    snprintf(tag, sizeof(tag), "<script nonce=\"%s\">", nonce);
    assert_int_equal(count_in(html, len, tag), 1);
    snprintf(tag, sizeof(tag), "<style nonce=\"%s\">", nonce);
    assert_int_equal(count_in(html, len, tag), 1);
    assert_int_equal(count_in(html, len, "<script"), 1);
    assert_int_equal(count_in(html, len, "<style"), 1);
    free(html);
    free(csp);
}

static void test_nonce_fresh(void **state)
{
    char *html[2], *csp[2], nonce[2][NONCE_LEN + 1];
    size_t len[2];
    int i;
    (void)state;

    for (i = 0; i < 2; i++) {
        render("/booking/api", &html[i], &len[i], &csp[i]);
        nonce_of(csp[i], nonce[i]);
    }
    assert_string_not_equal(nonce[0], nonce[1]);
    for (i = 0; i < 2; i++) {
        free(html[i]);
        free(csp[i]);
    }
}

static void test_api_escaped(void **state)
{
    char *html, *csp;
    size_t len;
    (void)state;

    render("/shop/\"><script>alert('x')</script>&api", &html, &len, &csp);
    assert_non_null(
        strstr(html, "content=\"/shop/&#34;&gt;&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;api\">"));
    assert_null(strstr(html, "alert('x')"));
    assert_int_equal(count_in(html, len, "<script"), 1);
    free(html);
    free(csp);
}

static void test_api_default(void **state)
{
    char *html, *csp;
    size_t len;
    (void)state;

    render(NULL, &html, &len, &csp);
    assert_non_null(strstr(html, "<meta name=\"booking-api\" content=\"/booking/api\">"));
    free(html);
    free(csp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_holes_filled),
        cmocka_unit_test(test_nonce_fresh),
        cmocka_unit_test(test_api_escaped),
        cmocka_unit_test(test_api_default),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
