/* The editors' JSON (see promo.h): a promotion read with every rule checked once, here, so that everything
 * downstream (the banner, the click redirect, the store, the checkout) can trust the struct; and written back in a
 * fixed shape that this same reader accepts, since the store keeps that text as the promotion's body.
 *
 * Conventions of the format: null means absent (the page sends every member it has, some empty); an empty string
 * means "none" for the optional texts (text, image_wide, image_narrow, image_alt, discount.stripe_coupon), which is
 * what an empty form field sends; "id" is accepted and ignored, since the page sends back what it read and the URL
 * says which promotion is meant. */
#include "promo.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#define PROMO_JSON_BYTES_MAX   (64 * 1024)    /* the adapters refuse larger bodies before this */
#define PROMO_JSON_DEPTH_MAX   16             /* a promotion nests 2 levels; the margin costs nothing */
#define PROMO_JSON_TIME_MAX    64             /* bytes of an RFC 3339 time, with a generous fraction */
#define PROMO_JSON_YEAR_END    253402300799LL /* 9999-12-31T23:59:59Z: times print as 4-digit years */
#define PROMO_JSON_ALT_MAX     PROMO_TEXT_MAX
#define PROMO_JSON_PLAN_MAX    128 /* as PaywallPlan names */
#define PROMO_JSON_PATH_MAX    255
#define PROMO_JSON_COUPON_MAX  255
#define PROMO_JSON_AMOUNT_MAX  1000000000LL /* cents: ten million in any currency */
#define PROMO_JSON_MONTHS_MAX  36
#define PROMO_JSON_UNKNOWN_MAX 64 /* bytes of an unknown member's name kept for *field */

#define PROMO_JSON_BG_DEFAULT      "#1d3557"
#define PROMO_JSON_FG_DEFAULT      "#ffffff"
#define PROMO_JSON_CTA_BG_DEFAULT  "#ffd166"
#define PROMO_JSON_CTA_FG_DEFAULT  "#1d3557"
#define PROMO_JSON_WEIGHT_DEFAULT  100
#define PROMO_JSON_DISMISS_DEFAULT 30

#define PROMO_JSON_HTML_REFUSED "has < or >, and HTML is not allowed: banner text is shown as text"

typedef struct {
    promo_promotion *p;
    const char **field;
    char *err;
    size_t errlen;
} promo_json_ctx;

/* An unknown member's name cannot be a static string, yet callers use *field after the document is gone: each
 * thread keeps the last one (Apache's threads and nginx's thread pool each parse one body at a time). */
static _Thread_local char promo_json_unknown[sizeof("discount.") + PROMO_JSON_UNKNOWN_MAX];

static const char *const promo_json_members[] = {
    "id",       "name",     "starts_at",    "ends_at",      "enabled",      "audience",   "plans",        "paths",
    "weight",   "headline", "text",         "cta_label",    "cta_url",      "image_wide", "image_narrow", "image_alt",
    "bg_color", "fg_color", "cta_bg_color", "cta_fg_color", "dismiss_days", "discount",
};

static const char *const promo_json_discount_members[] = {
    "code", "percent_off", "amount_off", "currency", "duration", "duration_months", "stripe_coupon", "max_redemptions",
};

static const struct {
    promo_audience audience;
    const char *name;
} promo_json_audiences[] = {
    {PROMO_AUDIENCE_EVERYONE, "everyone"},
    {PROMO_AUDIENCE_ANONYMOUS, "anonymous"},
    {PROMO_AUDIENCE_NON_SUBSCRIBERS, "non-subscribers"},
    {PROMO_AUDIENCE_SUBSCRIBERS, "subscribers"},
    {PROMO_AUDIENCE_PLANS, "plans"},
};

static const struct {
    promo_duration duration;
    const char *name;
} promo_json_durations[] = {
    {PROMO_DURATION_ONCE, "once"},
    {PROMO_DURATION_REPEATING, "repeating"},
    {PROMO_DURATION_FOREVER, "forever"},
};

static int promo_json_fail(promo_json_ctx *ctx, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The message starts with the member's name, so that it reads alone in a log line as well as next to the field. */
static int promo_json_fail(promo_json_ctx *ctx, const char *field, const char *fmt, ...)
{
    va_list ap;
    size_t used = 0;

    *ctx->field = field;
    if (field != NULL) {
        snprintf(ctx->err, ctx->errlen, "%s ", field);
        used = strlen(ctx->err);
    }
    va_start(ap, fmt);
    vsnprintf(ctx->err + used, ctx->errlen - used, fmt, ap);
    va_end(ap);
    return -1;
}

/* jansson's messages quote the input near the error: made printable so that the log line stays one line. */
static void promo_json_printable(char *s)
{
    for (; *s != '\0'; s++) {
        if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f) {
            *s = '?';
        }
    }
}

/* ------------------------------------------------------------------------------------------- character sets */

static int promo_json_is_alnum(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static int promo_json_is_hex(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static int promo_json_is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

/* jansson has checked that the text is UTF-8 without U+0000; what is left are the C0 controls, DEL and the C1
 * controls (U+0080 to U+009F, encoded C2 80 to C2 9F), which break log lines, headers and the page's layout. */
static int promo_json_has_control(const char *s, size_t len)
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

/* [A-Za-z0-9_-]: discount codes and Stripe coupon ids. */
static int promo_json_word_ok(const char *s, size_t len, size_t max)
{
    size_t i;

    if (len == 0 || len > max) {
        return 0;
    }
    for (i = 0; i < len; i++) {
        if (!promo_json_is_alnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '-') {
            return 0;
        }
    }
    return 1;
}

/* As PaywallPlan names (mod_paywall's rule), so that every plan mod_paywall can publish can be targeted. */
static int promo_json_plan_ok(const char *s, size_t len)
{
    size_t i;

    if (len == 0 || len > PROMO_JSON_PLAN_MAX) {
        return 0;
    }
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c <= 0x20 || c >= 0x7f || c == ',' || c == '"') {
            return 0;
        }
    }
    return 1;
}

/* host[:port] of an http(s) URL: a name or IPv4 address, or an IPv6 one in brackets. No user info: a banner has no
 * credentials to pass, and "https://our.example@elsewhere.example" only serves to mislead. */
static int promo_json_authority_ok(const char *s, size_t len)
{
    size_t i = 0;

    if (len > 0 && s[0] == '[') {
        for (i = 1; i < len && s[i] != ']'; i++) {
            if (!promo_json_is_hex((unsigned char)s[i]) && s[i] != ':' && s[i] != '.') {
                return 0;
            }
        }
        if (i == len || i == 1) {
            return 0;
        }
        i++;
    } else {
        for (; i < len && s[i] != ':'; i++) {
            if (!promo_json_is_alnum((unsigned char)s[i]) && s[i] != '.' && s[i] != '-') {
                return 0;
            }
        }
        if (i == 0) {
            return 0;
        }
    }
    if (i == len) {
        return 1;
    }
    if (s[i] != ':' || len - i - 1 < 1 || len - i - 1 > 5) {
        return 0;
    }
    for (i++; i < len; i++) {
        if (!promo_json_is_digit((unsigned char)s[i])) {
            return 0;
        }
    }
    return 1;
}

/* A path of this site ("/subscribe", not "//elsewhere", which browsers read as a host) or an http(s) URL with a
 * host. Printable ASCII only, without spaces, quotes, < > or backslash: the URL goes into a Location header and
 * into HTML attributes, and browsers read a backslash as a slash. */
static int promo_json_url_ok(const char *s, size_t len)
{
    size_t i, start, end;

    if (len == 0 || len > PROMO_URL_MAX) {
        return 0;
    }
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c <= 0x20 || c >= 0x7f || strchr("\"'<>\\", c) != NULL) {
            return 0;
        }
    }
    if (s[0] == '/') {
        return len == 1 || s[1] != '/';
    }
    if (len > 7 && strncasecmp(s, "http://", 7) == 0) {
        start = 7;
    } else if (len > 8 && strncasecmp(s, "https://", 8) == 0) {
        start = 8;
    } else {
        return 0;
    }
    for (end = start; end < len && s[end] != '/' && s[end] != '?' && s[end] != '#'; end++) {
    }
    return promo_json_authority_ok(s + start, end - start);
}

/* ----------------------------------------------------------------------------------------------- times */

static int promo_json_number(const char *s, size_t n, int *out)
{
    size_t i;
    int v = 0;

    for (i = 0; i < n; i++) {
        if (!promo_json_is_digit((unsigned char)s[i])) {
            return -1;
        }
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

static int promo_json_days_in_month(int year, int month)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;

    return month == 2 && leap ? 29 : days[month - 1];
}

/* RFC 3339's date-time: YYYY-MM-DDTHH:MM:SS, an optional fraction (ignored: promotions start on seconds), then Z or
 * an offset. A leap second (:60) is refused: time_t has no place for it, and no editor means one. 0; -1: not a
 * date-time; -2: outside 1970 to 9999 in UTC, which the writer could not give back as four-digit years. */
static int promo_json_parse_time(const char *s, size_t len, time_t *out)
{
    int year, month, day, hour, minute, second, oh = 0, om = 0, sign = 0;
    struct tm tm;
    size_t i = 19;
    long long t;

    if (len < 20 || len > PROMO_JSON_TIME_MAX || promo_json_number(s, 4, &year) != 0 || s[4] != '-' ||
        promo_json_number(s + 5, 2, &month) != 0 || s[7] != '-' || promo_json_number(s + 8, 2, &day) != 0 ||
        (s[10] != 'T' && s[10] != 't') || promo_json_number(s + 11, 2, &hour) != 0 || s[13] != ':' ||
        promo_json_number(s + 14, 2, &minute) != 0 || s[16] != ':' || promo_json_number(s + 17, 2, &second) != 0) {
        return -1;
    }
    if (month < 1 || month > 12 || day < 1 || day > promo_json_days_in_month(year, month) || hour > 23 || minute > 59 ||
        second > 59) {
        return -1;
    }
    if (s[i] == '.') {
        for (i++; i < len && promo_json_is_digit((unsigned char)s[i]); i++) {
        }
        if (i == 20) {
            return -1;
        }
    }
    if (i + 1 == len && (s[i] == 'Z' || s[i] == 'z')) {
        sign = 0;
    } else if (i + 6 == len && (s[i] == '+' || s[i] == '-') && promo_json_number(s + i + 1, 2, &oh) == 0 &&
               s[i + 3] == ':' && promo_json_number(s + i + 4, 2, &om) == 0 && oh <= 23 && om <= 59) {
        sign = s[i] == '+' ? 1 : -1;
    } else {
        return -1;
    }
    memset(&tm, 0, sizeof(tm));
    tm.tm_year = year - 1900;
    tm.tm_mon = month - 1;
    tm.tm_mday = day;
    tm.tm_hour = hour;
    tm.tm_min = minute;
    tm.tm_sec = second;
    t = (long long)timegm(&tm) - sign * (oh * 3600LL + om * 60LL);
    if (t < 0 || t > PROMO_JSON_YEAR_END) {
        return -2;
    }
    *out = (time_t)t;
    return 0;
}

/* ------------------------------------------------------------------------------------------ member readers */

/* The member, or NULL when it is absent or null. */
static json_t *promo_json_member(json_t *object, const char *key)
{
    json_t *value = json_object_get(object, key);

    return json_is_null(value) ? NULL : value;
}

/* Refuses the first member not in the list, naming it (printable, truncated) in the thread's buffer. */
static int promo_json_check_members(promo_json_ctx *ctx, json_t *object, const char *prefix, const char *const *known,
                                    size_t nknown, const char *what)
{
    const char *key;
    json_t *value;
    size_t i;

    json_object_foreach(object, key, value)
    {
        for (i = 0; i < nknown && strcmp(key, known[i]) != 0; i++) {
        }
        if (i < nknown) {
            continue;
        }
        /* "" would read as no field at all */
        snprintf(promo_json_unknown, sizeof(promo_json_unknown), "%s%.*s", prefix, PROMO_JSON_UNKNOWN_MAX,
                 key[0] == '\0' ? "\"\"" : key);
        promo_json_printable(promo_json_unknown);
        return promo_json_fail(ctx, promo_json_unknown, "is not a member of %s", what);
    }
    return 0;
}

typedef enum {
    PROMO_JSON_OPTIONAL,      /* "" is a value, checked like any other */
    PROMO_JSON_REQUIRED,      /* "" is refused */
    PROMO_JSON_OPTIONAL_TEXT, /* "" is none: an empty form field */
} promo_json_presence;

/* A string member as the jansson value, NULL when absent or null (or empty, for optional texts). */
static int promo_json_get_string(promo_json_ctx *ctx, json_t *object, const char *key, const char *field,
                                 promo_json_presence presence, json_t **out)
{
    json_t *value = promo_json_member(object, key);

    *out = NULL;
    if (value == NULL) {
        return presence == PROMO_JSON_REQUIRED ? promo_json_fail(ctx, field, "is missing") : 0;
    }
    if (!json_is_string(value)) {
        return promo_json_fail(ctx, field, "is not a string");
    }
    if (json_string_length(value) == 0 && presence == PROMO_JSON_REQUIRED) {
        return promo_json_fail(ctx, field, "is empty");
    }
    if (json_string_length(value) == 0 && presence == PROMO_JSON_OPTIONAL_TEXT) {
        return 0;
    }
    *out = value;
    return 0;
}

static int promo_json_dup(promo_json_ctx *ctx, json_t *value, char **out)
{
    *out = strdup(json_string_value(value));
    return *out == NULL ? promo_json_fail(ctx, NULL, "out of memory") : 0;
}

/* Free text shown in the banner, the editors' list or as an image's alt: text, so no markup either. */
static int promo_json_get_text(promo_json_ctx *ctx, json_t *object, const char *key, int required, size_t max,
                               char **out)
{
    json_t *value;
    const char *s;
    size_t len;

    if (promo_json_get_string(ctx, object, key, key, required ? PROMO_JSON_REQUIRED : PROMO_JSON_OPTIONAL_TEXT,
                              &value) != 0) {
        return -1;
    }
    if (value == NULL) {
        return 0;
    }
    s = json_string_value(value);
    len = json_string_length(value);
    if (len > max) {
        return promo_json_fail(ctx, key, "is too long (at most %zu bytes)", max);
    }
    if (promo_json_has_control(s, len)) {
        return promo_json_fail(ctx, key, "has a control character");
    }
    if (memchr(s, '<', len) != NULL || memchr(s, '>', len) != NULL) {
        return promo_json_fail(ctx, key, PROMO_JSON_HTML_REFUSED);
    }
    return promo_json_dup(ctx, value, out);
}

static int promo_json_get_url(promo_json_ctx *ctx, json_t *object, const char *key, int required, char **out)
{
    json_t *value;

    if (promo_json_get_string(ctx, object, key, key, required ? PROMO_JSON_REQUIRED : PROMO_JSON_OPTIONAL_TEXT,
                              &value) != 0) {
        return -1;
    }
    if (value == NULL) {
        return 0;
    }
    if (json_string_length(value) > PROMO_URL_MAX) {
        return promo_json_fail(ctx, key, "is too long (at most %d bytes)", PROMO_URL_MAX);
    }
    if (!promo_json_url_ok(json_string_value(value), json_string_length(value))) {
        return promo_json_fail(ctx, key,
                               "is not a path (/...) or an http(s) URL with a host, in printable ASCII without spaces, "
                               "quotes, < > or backslash");
    }
    return promo_json_dup(ctx, value, out);
}

static int promo_json_get_color(promo_json_ctx *ctx, json_t *object, const char *key, const char *fallback, char out[8])
{
    json_t *value = promo_json_member(object, key);
    const char *s;
    size_t i;

    if (value == NULL) {
        memcpy(out, fallback, 8);
        return 0;
    }
    if (!json_is_string(value)) {
        return promo_json_fail(ctx, key, "is not a string");
    }
    s = json_string_value(value);
    if (json_string_length(value) != 7 || s[0] != '#') {
        return promo_json_fail(ctx, key, "is not a color #rrggbb");
    }
    out[0] = '#';
    for (i = 1; i < 7; i++) {
        if (!promo_json_is_hex((unsigned char)s[i])) {
            return promo_json_fail(ctx, key, "is not a color #rrggbb");
        }
        out[i] = (s[i] >= 'A' && s[i] <= 'F') ? (char)(s[i] - 'A' + 'a') : s[i];
    }
    out[7] = '\0';
    return 0;
}

/* An integer in [min, max], fallback when absent. A real (100.0, 1e2) is refused: every count here is whole. */
static int promo_json_get_integer(promo_json_ctx *ctx, json_t *object, const char *key, const char *field,
                                  long long min, long long max, long long fallback, int *present, long long *out)
{
    json_t *value = promo_json_member(object, key);
    json_int_t n;

    *out = fallback;
    if (present != NULL) {
        *present = value != NULL;
    }
    if (value == NULL) {
        return 0;
    }
    if (!json_is_integer(value)) {
        return promo_json_fail(ctx, field, "is not an integer");
    }
    n = json_integer_value(value);
    if (n < min || n > max) {
        return promo_json_fail(ctx, field, "is out of range (%lld to %lld)", min, max);
    }
    *out = (long long)n;
    return 0;
}

static int promo_json_get_time(promo_json_ctx *ctx, json_t *object, const char *key, time_t *out)
{
    json_t *value;
    int rc;

    if (promo_json_get_string(ctx, object, key, key, PROMO_JSON_REQUIRED, &value) != 0) {
        return -1;
    }
    rc = promo_json_parse_time(json_string_value(value), json_string_length(value), out);
    if (rc == -2) {
        return promo_json_fail(ctx, key, "is out of range (1970 to 9999 UTC)");
    }
    if (rc != 0) {
        return promo_json_fail(ctx, key, "is not an RFC 3339 time such as 2026-12-01T00:00:00Z or with an offset");
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------- promotion */

static int promo_json_parse_audience(promo_json_ctx *ctx, json_t *root)
{
    promo_promotion *p = ctx->p;
    json_t *value, *plans, *plan;
    size_t i, j;

    if (promo_json_get_string(ctx, root, "audience", "audience", PROMO_JSON_OPTIONAL, &value) != 0) {
        return -1;
    }
    p->audience = PROMO_AUDIENCE_EVERYONE;
    if (value != NULL) {
        for (i = 0; i < sizeof(promo_json_audiences) / sizeof(promo_json_audiences[0]); i++) {
            if (strcmp(json_string_value(value), promo_json_audiences[i].name) == 0) {
                break;
            }
        }
        if (i == sizeof(promo_json_audiences) / sizeof(promo_json_audiences[0])) {
            return promo_json_fail(ctx, "audience",
                                   "is not everyone, anonymous, non-subscribers, subscribers or plans");
        }
        p->audience = promo_json_audiences[i].audience;
    }
    plans = promo_json_member(root, "plans");
    if (plans != NULL && !json_is_array(plans)) {
        return promo_json_fail(ctx, "plans", "is not an array");
    }
    if (p->audience != PROMO_AUDIENCE_PLANS) {
        /* refused rather than kept unused: the page would show plans that target nobody */
        return json_array_size(plans) > 0 ? promo_json_fail(ctx, "plans", "is only for the audience plans") : 0;
    }
    if (json_array_size(plans) == 0) {
        return promo_json_fail(ctx, "plans", "is required with the audience plans");
    }
    if (json_array_size(plans) > PROMO_PLANS_MAX) {
        return promo_json_fail(ctx, "plans", "lists more than %d plans", PROMO_PLANS_MAX);
    }
    json_array_foreach(plans, j, plan)
    {
        if (!json_is_string(plan) || !promo_json_plan_ok(json_string_value(plan), json_string_length(plan))) {
            return promo_json_fail(ctx, "plans",
                                   "has a name that is not 1 to 128 printable ASCII characters without space, comma "
                                   "or quote");
        }
        if (promo_json_dup(ctx, plan, &p->plans[p->nplans]) != 0) {
            return -1;
        }
        p->nplans++;
    }
    return 0;
}

static int promo_json_parse_paths(promo_json_ctx *ctx, json_t *root)
{
    promo_promotion *p = ctx->p;
    json_t *paths = promo_json_member(root, "paths"), *path;
    size_t i;

    if (paths == NULL) {
        return 0;
    }
    if (!json_is_array(paths)) {
        return promo_json_fail(ctx, "paths", "is not an array");
    }
    if (json_array_size(paths) > PROMO_PATHS_MAX) {
        return promo_json_fail(ctx, "paths", "lists more than %d paths", PROMO_PATHS_MAX);
    }
    json_array_foreach(paths, i, path)
    {
        if (!json_is_string(path)) {
            return promo_json_fail(ctx, "paths", "is not an array of strings");
        }
        if (json_string_value(path)[0] != '/') {
            return promo_json_fail(ctx, "paths", "has a prefix that does not start with /");
        }
        if (json_string_length(path) > PROMO_JSON_PATH_MAX) {
            return promo_json_fail(ctx, "paths", "has a prefix longer than %d bytes", PROMO_JSON_PATH_MAX);
        }
        if (promo_json_has_control(json_string_value(path), json_string_length(path))) {
            return promo_json_fail(ctx, "paths", "has a prefix with a control character");
        }
        if (promo_json_dup(ctx, path, &p->paths[p->npaths]) != 0) {
            return -1;
        }
        p->npaths++;
    }
    return 0;
}

static int promo_json_parse_banner(promo_json_ctx *ctx, json_t *root)
{
    promo_promotion *p = ctx->p;
    long long n;

    if (promo_json_get_text(ctx, root, "headline", 1, PROMO_HEADLINE_MAX, &p->headline) != 0 ||
        promo_json_get_text(ctx, root, "text", 0, PROMO_TEXT_MAX, &p->text) != 0 ||
        promo_json_get_text(ctx, root, "cta_label", 1, PROMO_LABEL_MAX, &p->cta_label) != 0 ||
        promo_json_get_url(ctx, root, "cta_url", 1, &p->cta_url) != 0 ||
        promo_json_get_url(ctx, root, "image_wide", 0, &p->image_wide) != 0 ||
        promo_json_get_url(ctx, root, "image_narrow", 0, &p->image_narrow) != 0 ||
        promo_json_get_text(ctx, root, "image_alt", 0, PROMO_JSON_ALT_MAX, &p->image_alt) != 0) {
        return -1;
    }
    if (p->image_narrow != NULL && p->image_wide == NULL) {
        return promo_json_fail(ctx, "image_narrow", "needs image_wide (the image for wide screens)");
    }
    if (p->image_wide != NULL && p->image_alt == NULL) {
        return promo_json_fail(ctx, "image_alt", "is required with an image");
    }
    if (promo_json_get_color(ctx, root, "bg_color", PROMO_JSON_BG_DEFAULT, p->bg_color) != 0 ||
        promo_json_get_color(ctx, root, "fg_color", PROMO_JSON_FG_DEFAULT, p->fg_color) != 0 ||
        promo_json_get_color(ctx, root, "cta_bg_color", PROMO_JSON_CTA_BG_DEFAULT, p->cta_bg_color) != 0 ||
        promo_json_get_color(ctx, root, "cta_fg_color", PROMO_JSON_CTA_FG_DEFAULT, p->cta_fg_color) != 0 ||
        promo_json_get_integer(ctx, root, "dismiss_days", "dismiss_days", 0, PROMO_DISMISS_MAX,
                               PROMO_JSON_DISMISS_DEFAULT, NULL, &n) != 0) {
        return -1;
    }
    p->dismiss_days = (unsigned)n;
    return 0;
}

static int promo_json_parse_amount(promo_json_ctx *ctx, json_t *discount)
{
    promo_promotion *p = ctx->p;
    int has_percent, has_amount;
    long long percent, amount;
    json_t *currency;
    const char *s;
    size_t i;

    if (promo_json_get_integer(ctx, discount, "percent_off", "discount.percent_off", 1, 100, 0, &has_percent,
                               &percent) != 0 ||
        promo_json_get_integer(ctx, discount, "amount_off", "discount.amount_off", 1, PROMO_JSON_AMOUNT_MAX, 0,
                               &has_amount, &amount) != 0 ||
        promo_json_get_string(ctx, discount, "currency", "discount.currency", PROMO_JSON_OPTIONAL, &currency) != 0) {
        return -1;
    }
    if (has_percent == has_amount) {
        return promo_json_fail(ctx, "discount.percent_off",
                               has_percent ? "and amount_off cannot both be given" : "or amount_off is required");
    }
    if (has_percent) {
        if (currency != NULL) {
            return promo_json_fail(ctx, "discount.currency", "is only for amount_off");
        }
        p->discount = PROMO_DISCOUNT_PERCENT;
        p->percent_off = (unsigned)percent;
        return 0;
    }
    if (currency == NULL) {
        return promo_json_fail(ctx, "discount.currency", "is required with amount_off");
    }
    s = json_string_value(currency);
    if (json_string_length(currency) != 3) {
        return promo_json_fail(ctx, "discount.currency", "is not a three-letter currency code");
    }
    for (i = 0; i < 3; i++) {
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z'))) {
            return promo_json_fail(ctx, "discount.currency", "is not a three-letter currency code");
        }
        p->currency[i] = (char)(s[i] | 0x20);
    }
    p->currency[3] = '\0';
    p->discount = PROMO_DISCOUNT_AMOUNT;
    p->amount_off = amount;
    return 0;
}

static int promo_json_parse_duration(promo_json_ctx *ctx, json_t *discount)
{
    promo_promotion *p = ctx->p;
    json_t *value;
    long long months;
    int has_months;
    size_t i;

    if (promo_json_get_string(ctx, discount, "duration", "discount.duration", PROMO_JSON_OPTIONAL, &value) != 0) {
        return -1;
    }
    p->duration = PROMO_DURATION_ONCE;
    if (value != NULL) {
        for (i = 0; i < sizeof(promo_json_durations) / sizeof(promo_json_durations[0]); i++) {
            if (strcmp(json_string_value(value), promo_json_durations[i].name) == 0) {
                break;
            }
        }
        if (i == sizeof(promo_json_durations) / sizeof(promo_json_durations[0])) {
            return promo_json_fail(ctx, "discount.duration", "is not once, repeating or forever");
        }
        p->duration = promo_json_durations[i].duration;
    }
    if (promo_json_get_integer(ctx, discount, "duration_months", "discount.duration_months", 1, PROMO_JSON_MONTHS_MAX,
                               0, &has_months, &months) != 0) {
        return -1;
    }
    if (p->duration == PROMO_DURATION_REPEATING && !has_months) {
        return promo_json_fail(ctx, "discount.duration_months", "is required with the duration repeating");
    }
    if (p->duration != PROMO_DURATION_REPEATING && has_months) {
        return promo_json_fail(ctx, "discount.duration_months", "is only for the duration repeating");
    }
    p->duration_months = (unsigned)months;
    return 0;
}

static int promo_json_parse_discount(promo_json_ctx *ctx, json_t *root)
{
    promo_promotion *p = ctx->p;
    json_t *discount = promo_json_member(root, "discount"), *value;
    size_t i;

    if (discount == NULL) {
        return 0;
    }
    if (!json_is_object(discount)) {
        return promo_json_fail(ctx, "discount", "is not an object or null");
    }
    if (promo_json_check_members(ctx, discount, "discount.", promo_json_discount_members,
                                 sizeof(promo_json_discount_members) / sizeof(promo_json_discount_members[0]),
                                 "a discount") != 0 ||
        promo_json_get_string(ctx, discount, "code", "discount.code", PROMO_JSON_REQUIRED, &value) != 0) {
        return -1;
    }
    if (!promo_json_word_ok(json_string_value(value), json_string_length(value), PROMO_CODE_MAX)) {
        return promo_json_fail(ctx, "discount.code", "is not 1 to %d letters, digits, _ or -", PROMO_CODE_MAX);
    }
    if (promo_json_dup(ctx, value, &p->code) != 0) {
        return -1;
    }
    for (i = 0; p->code[i] != '\0'; i++) {
        if (p->code[i] >= 'a' && p->code[i] <= 'z') {
            p->code[i] = (char)(p->code[i] - 'a' + 'A');
        }
    }
    if (promo_json_parse_amount(ctx, discount) != 0 || promo_json_parse_duration(ctx, discount) != 0 ||
        promo_json_get_string(ctx, discount, "stripe_coupon", "discount.stripe_coupon", PROMO_JSON_OPTIONAL_TEXT,
                              &value) != 0) {
        return -1;
    }
    if (value != NULL) {
        if (!promo_json_word_ok(json_string_value(value), json_string_length(value), PROMO_JSON_COUPON_MAX)) {
            return promo_json_fail(ctx, "discount.stripe_coupon", "is not 1 to %d letters, digits, _ or -",
                                   PROMO_JSON_COUPON_MAX);
        }
        if (promo_json_dup(ctx, value, &p->stripe_coupon) != 0) {
            return -1;
        }
    }
    return promo_json_get_integer(ctx, discount, "max_redemptions", "discount.max_redemptions", 0, LLONG_MAX, 0, NULL,
                                  &p->max_redemptions);
}

static int promo_json_parse_promotion(promo_json_ctx *ctx, json_t *root)
{
    promo_promotion *p = ctx->p;
    json_t *value;
    long long n;

    if (promo_json_check_members(ctx, root, "", promo_json_members,
                                 sizeof(promo_json_members) / sizeof(promo_json_members[0]), "a promotion") != 0) {
        return -1;
    }
    value = promo_json_member(root, "id");
    if (value != NULL && !json_is_integer(value)) {
        return promo_json_fail(ctx, "id", "is not an integer");
    }
    if (promo_json_get_text(ctx, root, "name", 1, PROMO_NAME_MAX, &p->name) != 0 ||
        promo_json_get_time(ctx, root, "starts_at", &p->starts_at) != 0 ||
        promo_json_get_time(ctx, root, "ends_at", &p->ends_at) != 0) {
        return -1;
    }
    if (p->ends_at <= p->starts_at) {
        return promo_json_fail(ctx, "ends_at", "is not after starts_at");
    }
    value = promo_json_member(root, "enabled");
    if (value != NULL && !json_is_boolean(value)) {
        return promo_json_fail(ctx, "enabled", "is not true or false");
    }
    p->enabled = json_is_true(value);
    if (promo_json_parse_audience(ctx, root) != 0 || promo_json_parse_paths(ctx, root) != 0 ||
        promo_json_get_integer(ctx, root, "weight", "weight", 1, PROMO_WEIGHT_MAX, PROMO_JSON_WEIGHT_DEFAULT, NULL,
                               &n) != 0) {
        return -1;
    }
    p->weight = (unsigned)n;
    if (promo_json_parse_banner(ctx, root) != 0) {
        return -1;
    }
    return promo_json_parse_discount(ctx, root);
}

/* Checked before parsing, so that a deep document costs one pass over its bytes and no allocation (jansson's own
 * limit is 2048 levels). */
static int promo_json_depth_ok(const char *json, size_t len)
{
    size_t i, depth = 0;
    int in_string = 0;

    for (i = 0; i < len; i++) {
        char c = json[i];

        if (in_string) {
            if (c == '\\') {
                i++;
            } else if (c == '"') {
                in_string = 0;
            }
        } else if (c == '"') {
            in_string = 1;
        } else if (c == '{' || c == '[') {
            if (++depth > PROMO_JSON_DEPTH_MAX) {
                return 0;
            }
        } else if ((c == '}' || c == ']') && depth > 0) {
            depth--;
        }
    }
    return 1;
}

int promo_promotion_from_json(const char *json, size_t len, promo_promotion *out, const char **field, char *err,
                              size_t errlen)
{
    promo_json_ctx ctx;
    json_error_t jerr;
    json_t *root;
    const char *scratch_field;
    char scratch[1];
    int rc;

    memset(out, 0, sizeof(*out));
    if (field == NULL) {
        field = &scratch_field;
    }
    if (err == NULL || errlen == 0) {
        err = scratch;
        errlen = sizeof(scratch);
    }
    *field = NULL;
    err[0] = '\0';
    ctx.p = out;
    ctx.field = field;
    ctx.err = err;
    ctx.errlen = errlen;
    if (json == NULL || len == 0) {
        return promo_json_fail(&ctx, NULL, "empty body");
    }
    if (len > PROMO_JSON_BYTES_MAX) {
        return promo_json_fail(&ctx, NULL, "body larger than %d bytes", PROMO_JSON_BYTES_MAX);
    }
    if (!promo_json_depth_ok(json, len)) {
        return promo_json_fail(&ctx, NULL, "body nested deeper than %d levels", PROMO_JSON_DEPTH_MAX);
    }
    /* With two "name" members, which one counts would be the parser's choice, not the editor's. */
    root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        promo_json_fail(&ctx, NULL, "invalid JSON at byte %d: %s", jerr.position, jerr.text);
        promo_json_printable(err);
        return -1;
    }
    if (!json_is_object(root)) {
        json_decref(root);
        return promo_json_fail(&ctx, NULL, "not a JSON object");
    }
    rc = promo_json_parse_promotion(&ctx, root);
    json_decref(root);
    if (rc != 0) {
        promo_promotion_clear(out);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------------ writing */

static json_t *promo_json_string_or_null(const char *s)
{
    return s == NULL ? json_null() : json_string(s);
}

static json_t *promo_json_time(time_t t)
{
    char text[80]; /* room for any int, though years stay within 1970 to 9999 */
    struct tm tm;

    if (gmtime_r(&t, &tm) == NULL) {
        return NULL;
    }
    snprintf(text, sizeof(text), "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
             tm.tm_hour, tm.tm_min, tm.tm_sec);
    return json_string(text);
}

static json_t *promo_json_strings(char *const *items, size_t n)
{
    json_t *array = json_array();
    size_t i;

    for (i = 0; array != NULL && i < n; i++) {
        if (json_array_append_new(array, json_string(items[i])) != 0) {
            json_decref(array);
            return NULL;
        }
    }
    return array;
}

static const char *promo_json_duration_name(promo_duration duration)
{
    size_t i;

    for (i = 0; i < sizeof(promo_json_durations) / sizeof(promo_json_durations[0]); i++) {
        if (promo_json_durations[i].duration == duration) {
            return promo_json_durations[i].name;
        }
    }
    return "unknown";
}

/* Sets each member in order (jansson keeps insertion order), stopping at the first failure. Every member is present,
 * null when it has no value, so that the page can fill its form from any promotion alike. */
static int promo_json_set(json_t *object, const char *key, json_t *value)
{
    if (object == NULL || value == NULL) {
        json_decref(value);
        return -1;
    }
    return json_object_set_new(object, key, value);
}

/* A fixed-size member: a struct not made here (a test's, a future store's) may lack the NUL. */
static json_t *promo_json_chars(const char *s, size_t size)
{
    return json_stringn(s, strnlen(s, size));
}

static json_t *promo_json_discount(const promo_promotion *p)
{
    json_t *d = json_object();
    int percent = p->discount == PROMO_DISCOUNT_PERCENT, amount = p->discount == PROMO_DISCOUNT_AMOUNT;

    if (promo_json_set(d, "code", promo_json_string_or_null(p->code)) != 0 ||
        promo_json_set(d, "percent_off", percent ? json_integer(p->percent_off) : json_null()) != 0 ||
        promo_json_set(d, "amount_off", amount ? json_integer(p->amount_off) : json_null()) != 0 ||
        promo_json_set(d, "currency", amount ? promo_json_chars(p->currency, sizeof(p->currency)) : json_null()) != 0 ||
        promo_json_set(d, "duration", json_string(promo_json_duration_name(p->duration))) != 0 ||
        promo_json_set(d, "duration_months",
                       p->duration == PROMO_DURATION_REPEATING ? json_integer(p->duration_months) : json_null()) != 0 ||
        promo_json_set(d, "stripe_coupon", promo_json_string_or_null(p->stripe_coupon)) != 0 ||
        promo_json_set(d, "max_redemptions", json_integer(p->max_redemptions)) != 0) {
        json_decref(d);
        return NULL;
    }
    return d;
}

char *promo_promotion_to_json(const promo_promotion *promotion)
{
    const promo_promotion *p = promotion;
    json_t *o = json_object();
    char *text;

    if (promo_json_set(o, "id", json_integer(p->id)) != 0 ||
        promo_json_set(o, "name", promo_json_string_or_null(p->name)) != 0 ||
        promo_json_set(o, "enabled", json_boolean(p->enabled)) != 0 ||
        promo_json_set(o, "starts_at", promo_json_time(p->starts_at)) != 0 ||
        promo_json_set(o, "ends_at", promo_json_time(p->ends_at)) != 0 ||
        promo_json_set(o, "audience", json_string(promo_audience_name(p->audience))) != 0 ||
        promo_json_set(o, "plans",
                       promo_json_strings(p->plans, p->nplans < PROMO_PLANS_MAX ? p->nplans : PROMO_PLANS_MAX)) != 0 ||
        promo_json_set(o, "paths",
                       promo_json_strings(p->paths, p->npaths < PROMO_PATHS_MAX ? p->npaths : PROMO_PATHS_MAX)) != 0 ||
        promo_json_set(o, "weight", json_integer(p->weight)) != 0 ||
        promo_json_set(o, "headline", promo_json_string_or_null(p->headline)) != 0 ||
        promo_json_set(o, "text", promo_json_string_or_null(p->text)) != 0 ||
        promo_json_set(o, "cta_label", promo_json_string_or_null(p->cta_label)) != 0 ||
        promo_json_set(o, "cta_url", promo_json_string_or_null(p->cta_url)) != 0 ||
        promo_json_set(o, "image_wide", promo_json_string_or_null(p->image_wide)) != 0 ||
        promo_json_set(o, "image_narrow", promo_json_string_or_null(p->image_narrow)) != 0 ||
        promo_json_set(o, "image_alt", promo_json_string_or_null(p->image_alt)) != 0 ||
        promo_json_set(o, "bg_color", promo_json_chars(p->bg_color, sizeof(p->bg_color))) != 0 ||
        promo_json_set(o, "fg_color", promo_json_chars(p->fg_color, sizeof(p->fg_color))) != 0 ||
        promo_json_set(o, "cta_bg_color", promo_json_chars(p->cta_bg_color, sizeof(p->cta_bg_color))) != 0 ||
        promo_json_set(o, "cta_fg_color", promo_json_chars(p->cta_fg_color, sizeof(p->cta_fg_color))) != 0 ||
        promo_json_set(o, "dismiss_days", json_integer(p->dismiss_days)) != 0 ||
        promo_json_set(o, "discount", p->discount == PROMO_DISCOUNT_NONE ? json_null() : promo_json_discount(p)) != 0) {
        json_decref(o);
        return NULL;
    }
    text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    return text;
}

/* -------------------------------------------------------------------------------------------------- misc */

void promo_promotion_clear(promo_promotion *promotion)
{
    size_t i;

    if (promotion == NULL) {
        return;
    }
    free(promotion->name);
    for (i = 0; i < promotion->nplans && i < PROMO_PLANS_MAX; i++) {
        free(promotion->plans[i]);
    }
    for (i = 0; i < promotion->npaths && i < PROMO_PATHS_MAX; i++) {
        free(promotion->paths[i]);
    }
    free(promotion->headline);
    free(promotion->text);
    free(promotion->cta_label);
    free(promotion->cta_url);
    free(promotion->image_wide);
    free(promotion->image_narrow);
    free(promotion->image_alt);
    free(promotion->code);
    free(promotion->stripe_coupon);
    memset(promotion, 0, sizeof(*promotion));
}

const char *promo_audience_name(promo_audience audience)
{
    size_t i;

    for (i = 0; i < sizeof(promo_json_audiences) / sizeof(promo_json_audiences[0]); i++) {
        if (promo_json_audiences[i].audience == audience) {
            return promo_json_audiences[i].name;
        }
    }
    return "unknown";
}
