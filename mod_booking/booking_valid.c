/* Reading the request: members of JSON bodies and query parameters, each checked once here so that the routes can
 * trust what they get, and the pure rules behind them (unit tests and the fuzzer call those directly).
 *
 * Conventions: a JSON null is the same as an absent member (forms send every field they have); strings are trimmed
 * of ASCII blanks at both ends, and what is left may hold no control character (C0, DEL or C1), since names and
 * notes end up in log lines, SMS and iCalendar feeds; lengths of free text are counted in characters (code points),
 * as PostgreSQL's length() in the schema's checks counts them. */
#include "booking_int.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BOOKING_EMAIL_MAX        254 /* bytes: RFC 5321's path limit less the angle brackets */
#define BOOKING_EMAIL_LOCAL_MAX  64  /* bytes, RFC 5321 */
#define BOOKING_EMAIL_LABEL_MAX  63  /* bytes of one domain label, RFC 1035 */
#define BOOKING_PHONE_IN_MAX     40  /* bytes of a phone number as typed, separators included */
#define BOOKING_PHONE_DIGITS_MIN 7
#define BOOKING_PHONE_DIGITS_MAX 15 /* E.164 */
#define BOOKING_PHONE_OUT_MAX    (1 + BOOKING_PHONE_DIGITS_MAX + 1)
#define BOOKING_TIMESTAMP_MAX    64 /* bytes: 35 with a nanosecond fraction; the margin costs nothing */
#define BOOKING_PARTNER_ID_MAX   63
#define BOOKING_NAME_SHOWN_MAX   64                 /* bytes of an unknown member's name repeated in the error */
#define BOOKING_ID_DIGITS_MAX    16                 /* ids stay below 2^53, so JavaScript reads them exactly */
#define BOOKING_JSON_INT_MAX     9007199254740991LL /* 2^53 - 1, for the same reason */

/* ------------------------------------------------------------------------------------------- characters */

static int booking_is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static int booking_is_alnum(unsigned char c)
{
    return booking_is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int booking_is_blank(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* C0, DEL and C1 (U+0080 to U+009F, encoded C2 80 to C2 9F): jansson has already refused invalid UTF-8 and U+0000
 * in the body (and booking_arg's decoding may give anything, so the same test is applied to parameters). */
static int booking_has_control(const char *s, size_t len)
{
    size_t i;

    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c < 0x20 || c == 0x7f || (c == 0xc2 && i + 1 < len && (unsigned char)s[i + 1] < 0xa0)) {
            return 1;
        }
    }
    return 0;
}

/* Code points of valid UTF-8: every byte but the continuation bytes starts one. */
static size_t booking_utf8_chars(const char *s, size_t len)
{
    size_t i, n = 0;

    for (i = 0; i < len; i++) {
        if (((unsigned char)s[i] & 0xc0) != 0x80) {
            n++;
        }
    }
    return n;
}

/* Strict UTF-8 (no overlong forms, no surrogates, nothing above U+10FFFF): query parameters are percent-decoded
 * bytes that nothing has checked yet, and PostgreSQL refuses invalid text with an error we would report as 400
 * anyway, only less precisely. */
static int booking_utf8_valid(const char *s, size_t len)
{
    size_t i = 0;

    while (i < len) {
        unsigned char c = (unsigned char)s[i];
        size_t need, k;
        uint32_t cp;

        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) {
            need = 1;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            need = 2;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            need = 3;
            cp = c & 0x07;
        } else {
            return 0;
        }
        if (len - i <= need) {
            return 0;
        }
        for (k = 1; k <= need; k++) {
            unsigned char d = (unsigned char)s[i + k];

            if ((d & 0xc0) != 0x80) {
                return 0;
            }
            cp = (cp << 6) | (d & 0x3f);
        }
        if ((need == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
            (need == 3 && (cp < 0x10000 || cp > 0x10ffff))) {
            return 0;
        }
        i += need + 1;
    }
    return 1;
}

/* -------------------------------------------------------------------------------------------- pure rules */

/* Dot-atom local part of ASCII atext (RFC 5322 3.2.3, without quoted strings, which no booking form produces and
 * many gateways mishandle) and a host name of at least two labels whose last is not all digits. */
static int booking_email_local_ok(const char *s, size_t len)
{
    static const char atext_extra[] = "!#$%&'*+-/=?^_`{|}~";
    size_t i;

    if (len == 0 || len > BOOKING_EMAIL_LOCAL_MAX || s[0] == '.' || s[len - 1] == '.') {
        return 0;
    }
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c == '.') {
            if (s[i + 1] == '.') {
                return 0;
            }
        } else if (!booking_is_alnum(c) && (c == '\0' || strchr(atext_extra, c) == NULL)) {
            return 0;
        }
    }
    return 1;
}

static int booking_email_domain_ok(const char *s, size_t len)
{
    size_t i, label_start = 0, labels = 0;
    int last_all_digits = 1;

    if (len == 0) {
        return 0;
    }
    for (i = 0; i <= len; i++) {
        unsigned char c = i < len ? (unsigned char)s[i] : '.';

        if (c == '.') {
            size_t label_len = i - label_start;

            if (label_len == 0 || label_len > BOOKING_EMAIL_LABEL_MAX || s[label_start] == '-' || s[i - 1] == '-') {
                return 0;
            }
            labels++;
            label_start = i + 1;
            if (i < len) {
                last_all_digits = 1;
            }
            continue;
        }
        if (!booking_is_alnum(c) && c != '-') {
            return 0;
        }
        if (!booking_is_digit(c)) {
            last_all_digits = 0;
        }
    }
    return labels >= 2 && !last_all_digits;
}

int booking_valid_email(const char *s)
{
    const char *at;
    size_t len;

    if (s == NULL) {
        return 0;
    }
    len = strnlen(s, BOOKING_EMAIL_MAX + 1);
    if (len > BOOKING_EMAIL_MAX) {
        return 0;
    }
    at = strchr(s, '@');
    if (at == NULL || strchr(at + 1, '@') != NULL) {
        return 0;
    }
    return booking_email_local_ok(s, (size_t)(at - s)) && booking_email_domain_ok(at + 1, len - (size_t)(at - s) - 1);
}

/* People type numbers with spaces, dashes, dots, slashes and parentheses; gateways want E.164-like digits. A '+' is
 * kept only in front; "00" international prefixes are kept as typed, since only the partner's country would say
 * what a number without either means. */
int booking_normalize_phone(const char *s, char *out, size_t outlen)
{
    size_t i, n = 0, digits = 0, len;

    if (s == NULL || out == NULL || outlen == 0) {
        return -1;
    }
    out[0] = '\0';
    len = strnlen(s, BOOKING_PHONE_IN_MAX + 1);
    if (len > BOOKING_PHONE_IN_MAX) {
        return -1;
    }
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];

        if (booking_is_digit(c)) {
            if (digits == BOOKING_PHONE_DIGITS_MAX || n + 1 >= outlen) {
                out[0] = '\0';
                return -1;
            }
            out[n++] = (char)c;
            digits++;
        } else if (c == '+' && n == 0 && digits == 0) {
            if (n + 1 >= outlen) {
                return -1;
            }
            out[n++] = '+';
        } else if (c != ' ' && c != '-' && c != '.' && c != '/' && c != '(' && c != ')') {
            out[0] = '\0';
            return -1;
        }
    }
    if (digits < BOOKING_PHONE_DIGITS_MIN) {
        out[0] = '\0';
        return -1;
    }
    out[n] = '\0';
    return 0;
}

static int booking_is_leap(long year)
{
    return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
}

static int booking_days_in_month(long year, int month)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

    return month == 2 && booking_is_leap(year) ? 29 : days[month - 1];
}

/* n digits at s as a number, or -1 when one of them is not a digit. */
static long booking_digits(const char *s, size_t n)
{
    long v = 0;
    size_t i;

    for (i = 0; i < n; i++) {
        if (!booking_is_digit((unsigned char)s[i])) {
            return -1;
        }
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

/* "YYYY-MM-DD" at the start of s (no terminator required); years 0001 to 9999, as PostgreSQL and RFC 3339 print
 * them with four digits. */
static int booking_date_parts(const char *s, long *year, int *month, int *day)
{
    long y, m, d;

    if (strnlen(s, 10) < 10 || s[4] != '-' || s[7] != '-') {
        return -1;
    }
    y = booking_digits(s, 4);
    m = booking_digits(s + 5, 2);
    d = booking_digits(s + 8, 2);
    if (y < 1 || m < 1 || m > 12 || d < 1 || d > booking_days_in_month(y, (int)m)) {
        return -1;
    }
    *year = y;
    *month = (int)m;
    *day = (int)d;
    return 0;
}

int booking_valid_date(const char *s)
{
    long year;
    int month, day;

    return s != NULL && booking_date_parts(s, &year, &month, &day) == 0 && s[10] == '\0';
}

int booking_valid_time(const char *s)
{
    long h, m;

    if (s == NULL || strnlen(s, 6) != 5 || s[2] != ':') {
        return 0;
    }
    h = booking_digits(s, 2);
    m = booking_digits(s + 3, 2);
    return h >= 0 && m >= 0 && m <= 59 && (h <= 23 || (h == 24 && m == 0));
}

/* Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's days_from_civil), exact for every year the
 * parser lets through. */
static long long booking_days_from_civil(long y, int m, int d)
{
    long era, yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153L * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return (long long)era * 146097 + doe - 719468;
}

/* RFC 3339 date-time (section 5.6): "T" or "t" (or a space, which its note allows), seconds required, a fraction of
 * up to 9 digits truncated to the second, "Z", "z" or a numeric offset. Leap seconds (":60") are refused: nothing
 * in a calendar starts on one. */
int booking_parse_timestamp(const char *s, long long *epoch)
{
    long year, hour, minute, second, off_h = 0, off_m = 0;
    int month, day, sign = 0;
    size_t len, i;

    if (s == NULL || epoch == NULL) {
        return -1;
    }
    len = strnlen(s, BOOKING_TIMESTAMP_MAX + 1);
    if (len > BOOKING_TIMESTAMP_MAX || len < 20 || booking_date_parts(s, &year, &month, &day) != 0) {
        return -1;
    }
    if ((s[10] != 'T' && s[10] != 't' && s[10] != ' ') || s[13] != ':' || s[16] != ':') {
        return -1;
    }
    hour = booking_digits(s + 11, 2);
    minute = booking_digits(s + 14, 2);
    second = booking_digits(s + 17, 2);
    if (hour < 0 || hour > 23 || minute < 0 || minute > 59 || second < 0 || second > 59) {
        return -1;
    }
    i = 19;
    if (s[i] == '.') {
        size_t start = ++i;

        while (i < len && booking_is_digit((unsigned char)s[i])) {
            i++;
        }
        if (i == start || i - start > 9) {
            return -1;
        }
    }
    if ((s[i] == 'Z' || s[i] == 'z') && i + 1 == len) {
        sign = 0;
    } else if ((s[i] == '+' || s[i] == '-') && len - i == 6 && s[i + 3] == ':') {
        sign = s[i] == '+' ? 1 : -1;
        off_h = booking_digits(s + i + 1, 2);
        off_m = booking_digits(s + i + 4, 2);
        if (off_h < 0 || off_h > 23 || off_m < 0 || off_m > 59) {
            return -1;
        }
    } else {
        return -1;
    }
    *epoch = booking_days_from_civil(year, month, day) * 86400LL + hour * 3600LL + minute * 60LL + second -
             sign * (off_h * 3600LL + off_m * 60LL);
    return 0;
}

int booking_valid_partner_id(const char *s)
{
    size_t i, len;

    if (s == NULL) {
        return 0;
    }
    len = strnlen(s, BOOKING_PARTNER_ID_MAX + 1);
    if (len == 0 || len > BOOKING_PARTNER_ID_MAX || s[0] == '-') {
        return 0;
    }
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];

        if (!booking_is_digit(c) && !(c >= 'a' && c <= 'z') && c != '-') {
            return 0;
        }
    }
    return 1;
}

/* ------------------------------------------------------------------------------------------ JSON members */

static int booking_refuse(booking_ctx *ctx, const char *name, const char *message)
{
    booking_reply_error(ctx, 400, "invalid", name, "%s", message);
    return -1;
}

/* The member, or NULL when absent or null (after replying 400 when it was required). *failed tells the two apart. */
static json_t *booking_member(booking_ctx *ctx, json_t *object, const char *name, int required, int *failed)
{
    json_t *value = json_is_object(object) ? json_object_get(object, name) : NULL;

    *failed = 0;
    if (value == NULL || json_is_null(value)) {
        if (required) {
            *failed = 1;
            booking_refuse(ctx, name, "is required");
        }
        return NULL;
    }
    return value;
}

/* An unknown member's name goes into the reply and the log line: cut short and made printable first. */
static const char *booking_shown_name(booking_ctx *ctx, const char *key)
{
    size_t len = strnlen(key, BOOKING_NAME_SHOWN_MAX + 1), i;
    char *shown;

    if (len == 0) {
        return "(empty name)";
    }
    if (len > BOOKING_NAME_SHOWN_MAX) {
        len = BOOKING_NAME_SHOWN_MAX;
    }
    shown = booking_strndup(ctx, key, len);
    for (i = 0; i < len; i++) {
        if ((unsigned char)shown[i] < 0x20 || (unsigned char)shown[i] >= 0x7f || shown[i] == '"') {
            shown[i] = '?';
        }
    }
    return shown;
}

int booking_check_members(booking_ctx *ctx, json_t *object, const char *const *allowed)
{
    const char *key;
    json_t *value;
    size_t i;

    if (!json_is_object(object)) {
        booking_reply_error(ctx, 400, "invalid", NULL, "a JSON object is expected");
        return -1;
    }
    json_object_foreach(object, key, value)
    {
        (void)value;
        for (i = 0; allowed[i] != NULL && strcmp(allowed[i], key) != 0; i++) {
        }
        if (allowed[i] == NULL) {
            return booking_refuse(ctx, booking_shown_name(ctx, key), "is not a known member");
        }
    }
    return 0;
}

/* Trims, then checks for control characters, emptiness and length (max_len in characters; 0: no limit). The copy
 * lives in the request's memory. */
static int booking_text(booking_ctx *ctx, const char *name, const char *s, size_t len, int required, size_t max_len,
                        const char **out)
{
    while (len > 0 && booking_is_blank((unsigned char)s[0])) {
        s++;
        len--;
    }
    while (len > 0 && booking_is_blank((unsigned char)s[len - 1])) {
        len--;
    }
    if (memchr(s, '\0', len) != NULL || !booking_utf8_valid(s, len)) {
        return booking_refuse(ctx, name, "must be UTF-8 text");
    }
    if (booking_has_control(s, len)) {
        return booking_refuse(ctx, name, "must not contain control characters");
    }
    if (required && len == 0) {
        return booking_refuse(ctx, name, "must not be empty");
    }
    if (max_len > 0 && booking_utf8_chars(s, len) > max_len) {
        booking_reply_error(ctx, 400, "invalid", name, "must be at most %zu characters long", max_len);
        return -1;
    }
    *out = booking_strndup(ctx, s, len);
    return 0;
}

int booking_get_string(booking_ctx *ctx, json_t *object, const char *name, int required, size_t max_len,
                       const char **out)
{
    int failed;
    json_t *value = booking_member(ctx, object, name, required, &failed);

    if (value == NULL) {
        return failed ? -1 : 0;
    }
    if (!json_is_string(value)) {
        return booking_refuse(ctx, name, "must be a string");
    }
    return booking_text(ctx, name, json_string_value(value), json_string_length(value), required, max_len, out);
}

int booking_get_int(booking_ctx *ctx, json_t *object, const char *name, int required, long long min, long long max,
                    long long *out)
{
    int failed;
    json_t *value = booking_member(ctx, object, name, required, &failed);
    long long v;

    if (value == NULL) {
        return failed ? -1 : 0;
    }
    if (!json_is_integer(value)) {
        return booking_refuse(ctx, name, "must be an integer");
    }
    v = (long long)json_integer_value(value);
    if (v < min || v > max) {
        booking_reply_error(ctx, 400, "invalid", name, "must be between %lld and %lld", min, max);
        return -1;
    }
    *out = v;
    return 0;
}

int booking_get_bool(booking_ctx *ctx, json_t *object, const char *name, int required, int *out)
{
    int failed;
    json_t *value = booking_member(ctx, object, name, required, &failed);

    if (value == NULL) {
        return failed ? -1 : 0;
    }
    if (!json_is_boolean(value)) {
        return booking_refuse(ctx, name, "must be true or false");
    }
    *out = json_is_true(value);
    return 0;
}

/* A present but empty optional string reads as absent for the typed getters below: an empty form field. */
static int booking_get_typed(booking_ctx *ctx, json_t *object, const char *name, int required, size_t max_len,
                             const char **out)
{
    const char *s = NULL;

    if (booking_get_string(ctx, object, name, required, max_len, &s) != 0) {
        return -1;
    }
    if (s == NULL || s[0] == '\0') {
        return 1;
    }
    *out = s;
    return 0;
}

/* Lower-cased: the customers table keeps one row per address whatever case it was typed in, and no mail system in
 * use treats local parts case-sensitively. */
int booking_get_email(booking_ctx *ctx, json_t *object, const char *name, int required, const char **out)
{
    const char *s = NULL;
    char *lower;
    size_t i;
    int rc = booking_get_typed(ctx, object, name, required, 0, &s);

    if (rc != 0) {
        return rc < 0 ? -1 : 0;
    }
    if (!booking_valid_email(s)) {
        return booking_refuse(ctx, name, "must be an e-mail address like name@example.com");
    }
    lower = booking_strdup(ctx, s);
    for (i = 0; lower[i] != '\0'; i++) {
        if (lower[i] >= 'A' && lower[i] <= 'Z') {
            lower[i] = (char)(lower[i] - 'A' + 'a');
        }
    }
    *out = lower;
    return 0;
}

/* The normalised form ("+33612345678"), which is what gateways and the customers table get. */
int booking_get_phone(booking_ctx *ctx, json_t *object, const char *name, int required, const char **out)
{
    const char *s = NULL;
    char normal[BOOKING_PHONE_OUT_MAX];
    int rc = booking_get_typed(ctx, object, name, required, 0, &s);

    if (rc != 0) {
        return rc < 0 ? -1 : 0;
    }
    if (booking_normalize_phone(s, normal, sizeof(normal)) != 0) {
        return booking_refuse(ctx, name, "must be a phone number of 7 to 15 digits, like +33 6 12 34 56 78");
    }
    *out = booking_strdup(ctx, normal);
    return 0;
}

int booking_get_date(booking_ctx *ctx, json_t *object, const char *name, int required, const char **out)
{
    const char *s = NULL;
    int rc = booking_get_typed(ctx, object, name, required, 0, &s);

    if (rc != 0) {
        return rc < 0 ? -1 : 0;
    }
    if (!booking_valid_date(s)) {
        return booking_refuse(ctx, name, "must be a date YYYY-MM-DD");
    }
    *out = s;
    return 0;
}

int booking_get_time(booking_ctx *ctx, json_t *object, const char *name, int required, const char **out)
{
    const char *s = NULL;
    int rc = booking_get_typed(ctx, object, name, required, 0, &s);

    if (rc != 0) {
        return rc < 0 ? -1 : 0;
    }
    if (!booking_valid_time(s)) {
        return booking_refuse(ctx, name, "must be a time HH:MM from 00:00 to 24:00");
    }
    *out = s;
    return 0;
}

int booking_get_timestamp(booking_ctx *ctx, json_t *object, const char *name, int required, const char **out,
                          long long *epoch)
{
    const char *s = NULL;
    long long t;
    int rc = booking_get_typed(ctx, object, name, required, 0, &s);

    if (rc != 0) {
        return rc < 0 ? -1 : 0;
    }
    if (booking_parse_timestamp(s, &t) != 0) {
        return booking_refuse(ctx, name, "must be a date and time like 2026-03-28T09:00:00+01:00");
    }
    *out = s;
    *epoch = t;
    return 0;
}

/* ------------------------------------------------------------------------------------- query parameters */

/* The parameter trimmed, or NULL when absent or empty (after replying 400 when it was required). */
static const char *booking_arg_text(booking_ctx *ctx, const char *name, int required, int *failed)
{
    const char *raw = booking_arg(ctx, name), *s = NULL;

    *failed = 0;
    if (raw != NULL && booking_text(ctx, name, raw, strlen(raw), 0, 0, &s) != 0) {
        *failed = 1;
        return NULL;
    }
    if (s == NULL || s[0] == '\0') {
        if (required) {
            *failed = 1;
            booking_refuse(ctx, name, "is required");
        }
        return NULL;
    }
    return s;
}

int booking_arg_date(booking_ctx *ctx, const char *name, int required, const char **out)
{
    int failed;
    const char *s = booking_arg_text(ctx, name, required, &failed);

    if (s == NULL) {
        return failed ? -1 : 0;
    }
    if (!booking_valid_date(s)) {
        return booking_refuse(ctx, name, "must be a date YYYY-MM-DD");
    }
    *out = s;
    return 0;
}

/* Positive decimal ids without sign or leading zero, below 2^53. */
int booking_arg_id(booking_ctx *ctx, const char *name, int required, long long *out)
{
    int failed;
    const char *s = booking_arg_text(ctx, name, required, &failed);
    size_t len;
    long long v = 0;
    size_t i;

    if (s == NULL) {
        return failed ? -1 : 0;
    }
    len = strlen(s);
    if (len > BOOKING_ID_DIGITS_MAX || s[0] == '0') {
        return booking_refuse(ctx, name, "must be a positive integer id");
    }
    for (i = 0; i < len; i++) {
        if (!booking_is_digit((unsigned char)s[i])) {
            return booking_refuse(ctx, name, "must be a positive integer id");
        }
        v = v * 10 + (s[i] - '0');
    }
    if (v < 1 || v > BOOKING_JSON_INT_MAX) {
        return booking_refuse(ctx, name, "must be a positive integer id");
    }
    *out = v;
    return 0;
}
