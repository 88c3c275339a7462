/* libFuzzer target for core/cookie.c.
 *
 * The whole input is a Cookie header searched for PHPSESSID, and also, when its first byte n fits, a cookie name
 * (the next n bytes) and a header (the rest). Values found must lie inside the header and hold no ';', and a
 * session id judged valid must really be 22 to 256 characters of [0-9a-zA-Z,-].
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cookie.h"

#include "fuzz.h"

static void fuzz_check_id(const char *id, size_t len)
{
    cookie_id_status status = cookie_session_id_check(id, len);
    size_t i;

    FUZZ_CHECK(cookie_id_status_text(status) != NULL);
    if (status != COOKIE_ID_OK) {
        return;
    }
    FUZZ_CHECK(len >= COOKIE_SESSION_ID_MIN && len <= COOKIE_SESSION_ID_MAX);
    for (i = 0; i < len; i++) {
        FUZZ_CHECK(strchr("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ,-", id[i]) != NULL &&
                   id[i] != '\0');
    }
}

static void fuzz_find(const char *header, size_t header_len, const char *name, size_t name_len)
{
    const char *value = NULL;
    size_t value_len = 0;

    if (cookie_find(header, header_len, name, name_len, &value, &value_len)) {
        FUZZ_CHECK(value >= header && value + value_len <= header + header_len);
        FUZZ_CHECK(memchr(value, ';', value_len) == NULL);
        fuzz_check_id(value, value_len);
    }
    if (cookie_find_set_cookie(header, header_len, name, name_len, &value, &value_len)) {
        FUZZ_CHECK(value >= header && value + value_len <= header + header_len);
        FUZZ_CHECK(memchr(value, ';', value_len) == NULL);
        fuzz_check_id(value, value_len);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *copy = malloc(size ? size : 1);
    size_t name_len;

    memcpy(copy, data, size);
    fuzz_find(copy, size, "PHPSESSID", 9);
    fuzz_check_id(copy, size);
    if (size > 0) {
        name_len = (unsigned char)copy[0] % 32;
        if (name_len > 0 && name_len < size) {
            fuzz_find(copy + 1 + name_len, size - 1 - name_len, copy + 1, name_len);
        }
    }
    free(copy);
    return 0;
}
