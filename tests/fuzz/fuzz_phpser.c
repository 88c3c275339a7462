/* libFuzzer target for core/phpser.c.
 *
 * The input is decoded as a session in each format and as a lone value. Whatever decodes must encode, decode again
 * and encode to the same bytes (the first encoding is canonical); written in another format it must read back the
 * same way; removing and replacing entries must leave an encodable session. The first 4 bytes are also taken as
 * php-memcached item flags for the rest.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "phpser.h"

#include "fuzz.h"

static int fuzz_has(const char *err, const char *part)
{
    return strstr(err, part) != NULL;
}

/* encode(decode(text)) == text for a canonical text */
static void fuzz_check_stable(phpser_format format, const char *text, size_t len)
{
    phpser_session *again = NULL;
    char err[256] = "", *out = NULL;
    size_t out_len = 0;

    if (phpser_session_decode(format, text, len, &again, err, sizeof(err)) != 0) {
        fprintf(stderr, "canonical text does not decode (%s): %.*s\n", err, (int)len, text);
        abort();
    }
    FUZZ_CHECK(phpser_session_encode(again, format, &out, &out_len, err, sizeof(err)) == 0);
    FUZZ_CHECK(out_len == len && memcmp(out, text, len) == 0);
    FUZZ_CHECK(phpser_session_count(again) <= len);
    free(out);
    phpser_session_free(again);
}

static void fuzz_encode_and_check(const phpser_session *session, phpser_format format, int decoded_from_format)
{
    char err[256] = "", *out = NULL;
    size_t out_len = 0;

    if (phpser_session_encode(session, format, &out, &out_len, err, sizeof(err)) != 0) {
        /* what each format cannot say; anything else after a successful decode is a bug */
        FUZZ_CHECK(out == NULL);
        FUZZ_CHECK(
            fuzz_has(err, "unambiguously") ||
            (!decoded_from_format && (fuzz_has(err, "'|'") || fuzz_has(err, "127") || fuzz_has(err, "session array"))));
        return;
    }
    FUZZ_CHECK(out[out_len] == '\0');
    fuzz_check_stable(format, out, out_len);
    free(out);
}

static void fuzz_change(phpser_session *session, phpser_format format)
{
    const phpser_entry *entry;
    char err[256] = "", *out = NULL, *name;
    size_t out_len = 0, count = phpser_session_count(session), name_len;
    phpser_session *again = NULL;

    if (count == 0) {
        return;
    }
    entry = phpser_session_entry(session, count - 1);
    name = malloc(entry->name_len + 1);
    memcpy(name, entry->name, entry->name_len + 1);
    name_len = entry->name_len;
    FUZZ_CHECK(phpser_session_set_string(session, name, name_len, "v", 1) == 0);
    FUZZ_CHECK(phpser_session_find(session, name, name_len)->value->type == PHPSER_STRING);
    free(name);
    entry = phpser_session_entry(session, 0);
    name = malloc(entry->name_len + 1);
    memcpy(name, entry->name, entry->name_len + 1);
    name_len = entry->name_len;
    FUZZ_CHECK(phpser_session_remove(session, name, name_len) == 1);
    FUZZ_CHECK(phpser_session_count(session) == count - 1);
    FUZZ_CHECK(phpser_session_find(session, name, name_len) == NULL);
    free(name);
    FUZZ_CHECK(phpser_session_set_string(session, "added", 5, "x\0y", 3) == 0);

    if (phpser_session_encode(session, format, &out, &out_len, err, sizeof(err)) != 0) {
        FUZZ_CHECK(fuzz_has(err, "unambiguously"));
        return;
    }
    /* a value handed over to a deeply nested reference may exceed the decoder's depth limit; PHP reads it */
    if (phpser_session_decode(format, out, out_len, &again, err, sizeof(err)) != 0) {
        FUZZ_CHECK(fuzz_has(err, "64 levels"));
    } else {
        phpser_session_free(again);
        fuzz_check_stable(format, out, out_len);
    }
    free(out);
}

static void fuzz_session(const char *data, size_t size, phpser_format format)
{
    phpser_session *session = NULL;
    char err[256] = "";
    size_t i;
    int other;

    if (phpser_session_decode(format, data, size, &session, err, sizeof(err)) != 0) {
        FUZZ_CHECK(session == NULL);
        FUZZ_CHECK(err[0] != '\0');
        return;
    }
    for (i = 0; i < phpser_session_count(session); i++) {
        char *text;
        size_t len;
        const phpser_entry *entry = phpser_session_entry(session, i);

        FUZZ_CHECK(entry->name[entry->name_len] == '\0');
        FUZZ_CHECK(phpser_session_find(session, entry->name, entry->name_len) == entry);
        if (entry->value != NULL) {
            text = phpser_value_to_text(entry->value, &len);
            FUZZ_CHECK(text != NULL && text[len] == '\0');
            free(text);
        }
    }
    for (other = PHPSER_FORMAT_PHP; other <= PHPSER_FORMAT_PHP_SERIALIZE; other++) {
        fuzz_encode_and_check(session, (phpser_format)other, other == (int)format);
    }
    fuzz_change(session, format);
    phpser_session_free(session);
}

static void fuzz_value(const char *data, size_t size)
{
    phpser_value *value = NULL, *again = NULL;
    char err[256] = "", *out = NULL, *out2 = NULL, *text;
    size_t consumed = 0, len = 0, cap = 0, len2 = 0, cap2 = 0, consumed2 = 0, text_len;

    if (phpser_value_decode(data, size, &consumed, &value, err, sizeof(err)) != 0) {
        FUZZ_CHECK(value == NULL);
        return;
    }
    FUZZ_CHECK(consumed > 0 && consumed <= size);
    FUZZ_CHECK(phpser_value_encode(value, &out, &len, &cap) == 0);
    FUZZ_CHECK(phpser_value_decode(out, len, &consumed2, &again, err, sizeof(err)) == 0);
    FUZZ_CHECK(consumed2 == len);
    FUZZ_CHECK(phpser_value_encode(again, &out2, &len2, &cap2) == 0);
    FUZZ_CHECK(len2 == len && memcmp(out, out2, len) == 0);
    text = phpser_value_to_text(value, &text_len);
    FUZZ_CHECK(text != NULL && text[text_len] == '\0');
    free(text);
    free(out);
    free(out2);
    phpser_value_free(value);
    phpser_value_free(again);
}

static void fuzz_memcached(const uint8_t *data, size_t size)
{
    uint32_t flags;
    size_t len = 0;
    char err[256] = "", *plain;

    if (size < 4) {
        return;
    }
    flags = (uint32_t)data[0] | (uint32_t)data[1] << 8 | (uint32_t)data[2] << 16 | (uint32_t)data[3] << 24;
    plain = phpser_memcached_value(flags, (const char *)data + 4, size - 4, &len, err, sizeof(err));
    if (plain == NULL) {
        FUZZ_CHECK(err[0] != '\0');
        return;
    }
    FUZZ_CHECK(plain[len] == '\0');
    if (!(flags & 0x10)) {
        FUZZ_CHECK(len == size - 4 && memcmp(plain, data + 4, len) == 0);
    }
    free(plain);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* an exact-size copy: libFuzzer's buffer has no slack either, but this keeps the intent obvious */
    char *copy = malloc(size ? size : 1);

    memcpy(copy, data, size);
    fuzz_session(copy, size, PHPSER_FORMAT_PHP);
    fuzz_session(copy, size, PHPSER_FORMAT_PHP_BINARY);
    fuzz_session(copy, size, PHPSER_FORMAT_PHP_SERIALIZE);
    fuzz_value(copy, size);
    fuzz_memcached(data, size);
    free(copy);
    return 0;
}
