/* libFuzzer target for mod_booking/booking_valid.c.
 *
 * Input: any bytes, read two ways. As one string, through every pure rule: booking_valid_email,
 * booking_normalize_phone, booking_valid_date, booking_valid_time, booking_parse_timestamp and
 * booking_valid_partner_id. As a JSON document, through the member readers (booking_check_members, booking_get_*).
 *
 * Properties: never crash, overrun or leak; whatever a rule accepts has the shape it promises (an accepted
 * timestamp converts back, by an independent calendar computation here, to the very date and time it was written
 * with; a normalised phone number is +?[0-9]{7,15} and normalises to itself; an accepted e-mail address is printable
 * ASCII with one '@'); a refused phone number leaves an empty output; a member reader either accepts (output
 * trimmed, free of control characters, within its length in characters) or replies 400 naming a printable field, and
 * never both.
 *
 * booking_valid.c is compiled into this file, with the request memory, the reply and the query parameters stubbed,
 * so the target needs no server and no database: build it with -I core and libpq's include directory. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../mod_booking/booking_valid.c"

#include "fuzz.h"

/* ------------------------------------------------------------------------------------------------ stubs */

typedef struct fuzz_block {
    struct fuzz_block *next;
    char data[];
} fuzz_block;

static fuzz_block *fuzz_blocks;
static int fuzz_status;
static char fuzz_field[256];

char *booking_strndup(booking_ctx *ctx, const char *s, size_t len)
{
    fuzz_block *b = malloc(sizeof(*b) + len + 1);

    (void)ctx;
    FUZZ_CHECK(b != NULL);
    memcpy(b->data, s, len);
    b->data[len] = '\0';
    b->next = fuzz_blocks;
    fuzz_blocks = b;
    return b->data;
}

char *booking_strdup(booking_ctx *ctx, const char *s)
{
    return booking_strndup(ctx, s, strlen(s));
}

void booking_reply_error(booking_ctx *ctx, int status, const char *code, const char *field, const char *fmt, ...)
{
    (void)fmt;
    FUZZ_CHECK(fuzz_status == 0); /* one reply per refusal */
    FUZZ_CHECK(code != NULL && code[0] != '\0');
    fuzz_status = status;
    snprintf(fuzz_field, sizeof(fuzz_field), "%s%s", field && ctx->field_prefix ? ctx->field_prefix : "",
             field ? field : "");
}

const char *booking_arg(booking_ctx *ctx, const char *name)
{
    (void)ctx;
    (void)name;
    return NULL;
}

static void fuzz_free_blocks(void)
{
    while (fuzz_blocks != NULL) {
        fuzz_block *next = fuzz_blocks->next;

        free(fuzz_blocks);
        fuzz_blocks = next;
    }
}

/* ------------------------------------------------------------------------------------- pure properties */

static int fuzz_printable_ascii(const char *s)
{
    for (; *s != '\0'; s++) {
        if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f) {
            return 0;
        }
    }
    return 1;
}

/* Calendar date of a day count from 1970-01-01 (Hinnant's civil_from_days), independent of the parser's own
 * direction of the computation. */
static void fuzz_civil_from_days(long long z, long *y, int *m, int *d)
{
    long long era, doe, yoe, doy, mp;

    z += 719468;
    era = (z >= 0 ? z : z - 146096) / 146097;
    doe = z - era * 146097;
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = (long)(yoe + era * 400 + (*m <= 2));
}

static long long fuzz_floor_div(long long a, long long b)
{
    return a / b - ((a % b != 0) && ((a < 0) != (b < 0)));
}

static int fuzz_2digits(const char *s)
{
    return (s[0] - '0') * 10 + (s[1] - '0');
}

/* An accepted timestamp, shifted by its own offset, gives back the date and time written in it. */
static void fuzz_check_timestamp(const char *s, long long epoch)
{
    size_t len = strlen(s);
    long long local, secs;
    long y;
    int m, d, offset = 0;
    char date[11];

    FUZZ_CHECK(len >= 20 && len <= BOOKING_TIMESTAMP_MAX);
    memcpy(date, s, 10);
    date[10] = '\0';
    FUZZ_CHECK(booking_valid_date(date));
    if (s[len - 1] != 'Z' && s[len - 1] != 'z') {
        offset = (fuzz_2digits(s + len - 5) * 60 + fuzz_2digits(s + len - 2)) * 60;
        FUZZ_CHECK(s[len - 6] == '+' || s[len - 6] == '-');
        if (s[len - 6] == '-') {
            offset = -offset;
        }
    }
    local = epoch + offset;
    fuzz_civil_from_days(fuzz_floor_div(local, 86400), &y, &m, &d);
    secs = local - fuzz_floor_div(local, 86400) * 86400;
    FUZZ_CHECK(y == strtol(date, NULL, 10) && m == fuzz_2digits(date + 5) && d == fuzz_2digits(date + 8));
    FUZZ_CHECK(secs == fuzz_2digits(s + 11) * 3600 + fuzz_2digits(s + 14) * 60 + fuzz_2digits(s + 17));
    FUZZ_CHECK(epoch >= -62135596800LL - 86400 && epoch <= 253402300799LL + 86400);
}

static void fuzz_pure(const char *s)
{
    char phone[BOOKING_PHONE_OUT_MAX], again[BOOKING_PHONE_OUT_MAX];
    long long epoch = 0x5a5a;
    size_t len = strlen(s), i;

    if (booking_valid_email(s)) {
        const char *at = strchr(s, '@');

        FUZZ_CHECK(len <= BOOKING_EMAIL_MAX && fuzz_printable_ascii(s));
        FUZZ_CHECK(at != NULL && at != s && strchr(at + 1, '@') == NULL && strchr(at, '.') != NULL);
        FUZZ_CHECK((size_t)(at - s) <= BOOKING_EMAIL_LOCAL_MAX);
    }

    memset(phone, 'x', sizeof(phone));
    if (booking_normalize_phone(s, phone, sizeof(phone)) == 0) {
        const char *digits = phone + (phone[0] == '+');
        size_t n = strlen(digits);

        FUZZ_CHECK(n >= BOOKING_PHONE_DIGITS_MIN && n <= BOOKING_PHONE_DIGITS_MAX);
        FUZZ_CHECK(strspn(digits, "0123456789") == n);
        FUZZ_CHECK(booking_normalize_phone(phone, again, sizeof(again)) == 0 && strcmp(phone, again) == 0);
    } else {
        FUZZ_CHECK(phone[0] == '\0');
    }
    /* a buffer of any size is never overrun (ASan watches the heap copy) */
    for (i = 0; i <= 3; i++) {
        size_t outlen = i * 6;
        char *small = outlen ? malloc(outlen) : NULL;

        FUZZ_CHECK(outlen == 0 || small != NULL);
        if (booking_normalize_phone(s, small, outlen) == 0) {
            FUZZ_CHECK(strlen(small) < outlen);
        }
        free(small);
    }

    if (booking_valid_date(s)) {
        char stamp[32];

        FUZZ_CHECK(len == 10);
        snprintf(stamp, sizeof(stamp), "%sT00:00:00Z", s);
        FUZZ_CHECK(booking_parse_timestamp(stamp, &epoch) == 0);
        fuzz_check_timestamp(stamp, epoch);
    }
    if (booking_valid_time(s)) {
        FUZZ_CHECK(len == 5 && s[2] == ':');
        FUZZ_CHECK(fuzz_2digits(s) * 60 + fuzz_2digits(s + 3) <= 24 * 60 && fuzz_2digits(s + 3) < 60);
    }
    epoch = 0x5a5a;
    if (booking_parse_timestamp(s, &epoch) == 0) {
        fuzz_check_timestamp(s, epoch);
    } else {
        FUZZ_CHECK(epoch == 0x5a5a);
    }
    if (booking_valid_partner_id(s)) {
        FUZZ_CHECK(len >= 1 && len <= 63 && s[0] != '-');
        FUZZ_CHECK(strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789-") == len);
    }
}

/* ------------------------------------------------------------------------------------ member properties */

static void fuzz_check_text(const char *s, size_t max_chars)
{
    size_t len = strlen(s);

    FUZZ_CHECK(!booking_has_control(s, len) && booking_utf8_valid(s, len));
    FUZZ_CHECK(len == 0 || (!booking_is_blank((unsigned char)s[0]) && !booking_is_blank((unsigned char)s[len - 1])));
    FUZZ_CHECK(max_chars == 0 || booking_utf8_chars(s, len) <= max_chars);
}

/* rc and the stubbed reply agree: 0 and no reply, or -1 and one 400 naming the field (the prefix and key when key
 * is given; otherwise an unknown member's name, which must come back printable). */
static void fuzz_check_outcome(const booking_ctx *ctx, int rc, const char *key)
{
    char expected[sizeof(fuzz_field)];
    const char *p;

    if (rc == 0) {
        FUZZ_CHECK(fuzz_status == 0);
        return;
    }
    FUZZ_CHECK(rc == -1 && fuzz_status == 400);
    if (key != NULL) {
        snprintf(expected, sizeof(expected), "%s%s", ctx->field_prefix ? ctx->field_prefix : "", key);
        FUZZ_CHECK(strcmp(fuzz_field, expected) == 0);
    } else {
        FUZZ_CHECK(fuzz_field[0] != '\0');
        for (p = fuzz_field; *p; p++) {
            FUZZ_CHECK((unsigned char)*p >= 0x20 && (unsigned char)*p < 0x7f && *p != '"');
        }
    }
    fuzz_status = 0;
}

static void fuzz_members(booking_ctx *ctx, json_t *object, size_t max_chars)
{
    static const char *const allowed[] = {"name", "email", "phone", "start", "staff", NULL};
    const char *key, *out;
    json_t *value;
    long long n, epoch;
    int b, rc;

    fuzz_check_outcome(ctx, booking_check_members(ctx, object, allowed), NULL);
    json_object_foreach(object, key, value)
    {
        out = NULL;
        rc = booking_get_string(ctx, object, key, 1, max_chars, &out);
        fuzz_check_outcome(ctx, rc, key);
        if (rc == 0) {
            FUZZ_CHECK(out != NULL && out[0] != '\0');
            fuzz_check_text(out, max_chars);
        }
        out = NULL;
        rc = booking_get_email(ctx, object, key, 0, &out);
        fuzz_check_outcome(ctx, rc, key);
        FUZZ_CHECK(out == NULL || (booking_valid_email(out) && strpbrk(out, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") == NULL));
        out = NULL;
        rc = booking_get_phone(ctx, object, key, 0, &out);
        fuzz_check_outcome(ctx, rc, key);
        FUZZ_CHECK(out == NULL || out[0] == '+' || (out[0] >= '0' && out[0] <= '9'));
        out = NULL;
        rc = booking_get_timestamp(ctx, object, key, 0, &out, &epoch);
        fuzz_check_outcome(ctx, rc, key);
        if (rc == 0 && out != NULL) {
            fuzz_check_timestamp(out, epoch);
        }
        n = -7;
        rc = booking_get_int(ctx, object, key, 0, -100, 100, &n);
        fuzz_check_outcome(ctx, rc, key);
        FUZZ_CHECK(n == -7 || (n >= -100 && n <= 100));
        rc = booking_get_bool(ctx, object, key, 0, &b);
        fuzz_check_outcome(ctx, rc, key);
        fuzz_check_outcome(ctx, booking_get_date(ctx, object, key, 0, &out), key);
        fuzz_check_outcome(ctx, booking_get_time(ctx, object, key, 0, &out), key);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    booking_ctx ctx;
    char *s = malloc(size + 1);
    json_t *doc;

    FUZZ_CHECK(s != NULL);
    memcpy(s, data, size);
    s[size] = '\0';
    fuzz_pure(s);

    memset(&ctx, 0, sizeof(ctx));
    fuzz_status = 0;
    doc = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
    if (json_is_object(doc)) {
        fuzz_members(&ctx, doc, 0);
        fuzz_members(&ctx, doc, size % 7 + 1);
        ctx.field_prefix = "customer.";
        fuzz_members(&ctx, doc, 3);
    }
    json_decref(doc);
    fuzz_free_blocks();
    free(s);
    return 0;
}
