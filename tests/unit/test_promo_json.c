/* Unit tests of mod_promo's editors' JSON (promo_json.c): a full promotion and a minimal one with its defaults, the
 * exact text written back and the round trip through it, RFC 3339 times with offsets and at calendar edges, one
 * refusal per rule naming its member, and whole-body refusals (invalid JSON, duplicate keys, trailing data, deep
 * nesting, oversize) that name none. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "promo.h"

#define JSON_BYTES_MAX (64 * 1024)

/* ---------------------------------------------------------------------------------------------- fixtures */

/* Everything set, mixed-case input where the reader normalises (colors, code), an id the reader ignores. */
static const char fx_full[] =
    "{\"id\":7,\"name\":\"Congress 2026 \342\200\223 Jahresabo\",\"enabled\":true,"
    "\"starts_at\":\"2026-12-01T00:00:00Z\",\"ends_at\":\"2027-01-01T00:00:00Z\",\"audience\":\"plans\","
    "\"plans\":[\"digital\",\"print+digital\"],\"paths\":[\"/politik/\",\"/wirtschaft/\"],\"weight\":250,"
    "\"headline\":\"Ein Jahr lesen, 30 % sparen\",\"text\":\"Nur bis Silvester: das Jahresabo zum Kongresspreis.\","
    "\"cta_label\":\"Jetzt sparen\",\"cta_url\":\"https://shop.example.com:8443/abo?promo=CONGRESS30#top\","
    "\"image_wide\":\"/img/promo/congress-wide.webp\",\"image_narrow\":\"/img/promo/congress-narrow.webp\","
    "\"image_alt\":\"Reporters at the congress, 2026\",\"bg_color\":\"#0B3D91\",\"fg_color\":\"#FfFfFf\","
    "\"cta_bg_color\":\"#ffd166\",\"cta_fg_color\":\"#111111\",\"dismiss_days\":14,"
    "\"discount\":{\"code\":\"congress30\",\"percent_off\":30,\"duration\":\"repeating\",\"duration_months\":12,"
    "\"stripe_coupon\":\"coupon_Congress30\",\"max_redemptions\":500}}";

/* What promo_promotion_to_json writes for fx_full: every member, in this order, null where there is no value. */
static const char fx_full_written[] =
    "{\"id\":0,\"name\":\"Congress 2026 \342\200\223 Jahresabo\",\"enabled\":true,"
    "\"starts_at\":\"2026-12-01T00:00:00Z\",\"ends_at\":\"2027-01-01T00:00:00Z\",\"audience\":\"plans\","
    "\"plans\":[\"digital\",\"print+digital\"],\"paths\":[\"/politik/\",\"/wirtschaft/\"],\"weight\":250,"
    "\"headline\":\"Ein Jahr lesen, 30 % sparen\",\"text\":\"Nur bis Silvester: das Jahresabo zum Kongresspreis.\","
    "\"cta_label\":\"Jetzt sparen\",\"cta_url\":\"https://shop.example.com:8443/abo?promo=CONGRESS30#top\","
    "\"image_wide\":\"/img/promo/congress-wide.webp\",\"image_narrow\":\"/img/promo/congress-narrow.webp\","
    "\"image_alt\":\"Reporters at the congress, 2026\",\"bg_color\":\"#0b3d91\",\"fg_color\":\"#ffffff\","
    "\"cta_bg_color\":\"#ffd166\",\"cta_fg_color\":\"#111111\",\"dismiss_days\":14,"
    "\"discount\":{\"code\":\"CONGRESS30\",\"percent_off\":30,\"amount_off\":null,\"currency\":null,"
    "\"duration\":\"repeating\",\"duration_months\":12,\"stripe_coupon\":\"coupon_Congress30\","
    "\"max_redemptions\":500}}";

/* An amount off in an upper-case currency, forever, shown to everyone on every page. */
static const char fx_amount[] =
    "{\"name\":\"Welcome\",\"enabled\":false,\"starts_at\":\"2026-01-01T00:00:00+01:00\","
    "\"ends_at\":\"2026-02-01T00:00:00+01:00\",\"audience\":\"non-subscribers\",\"headline\":\"Welcome offer\","
    "\"cta_label\":\"Subscribe\",\"cta_url\":\"/subscribe.html\",\"dismiss_days\":0,"
    "\"discount\":{\"code\":\"WELCOME-20\",\"amount_off\":2000,\"currency\":\"EUR\",\"duration\":\"forever\"}}";

/* Only the required members. */
static const char fx_minimal[] = "{\"name\":\"Spring\",\"starts_at\":\"2026-03-01T00:00:00Z\","
                                 "\"ends_at\":\"2026-04-01T00:00:00Z\",\"headline\":\"Spring offer\","
                                 "\"cta_label\":\"Subscribe\",\"cta_url\":\"/subscribe\"}";

/* From the first second to the last one a promotion can have. */
static const char fx_all_time[] = "{\"name\":\"Always\",\"starts_at\":\"1970-01-01T00:00:00Z\","
                                  "\"ends_at\":\"9999-12-31T23:59:59Z\",\"headline\":\"Always\","
                                  "\"cta_label\":\"Go\",\"cta_url\":\"/\"}";

#define T_2026_12_01 1796083200
#define T_2027_01_01 1798761600

/* ------------------------------------------------------------------------------------------------ helpers */

static char test_context[512];

static int printable(const char *s)
{
    for (; *s != '\0'; s++) {
        if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f) {
            return 0;
        }
    }
    return 1;
}

static int all_zero(const void *p, size_t len)
{
    const unsigned char *b = p;
    size_t i;

    for (i = 0; i < len; i++) {
        if (b[i] != 0) {
            return 0;
        }
    }
    return 1;
}

static void parse_ok_len(const char *json, size_t len, promo_promotion *out)
{
    const char *field = "unset";
    char err[256] = "";

    if (promo_promotion_from_json(json, len, out, &field, err, sizeof(err)) != 0) {
        fail_msg("refused (%s): %s [%s]", test_context, err, field ? field : "no field");
    }
    assert_null(field);
    assert_string_equal(err, "");
}

static void parse_ok(const char *json, promo_promotion *out)
{
    parse_ok_len(json, strlen(json), out);
}

/* Refused, *out left all zero, a printable message, and the field named as expected (NULL: none). */
static void parse_fails_len(const char *json, size_t len, const char *want_field, const char *want_err)
{
    promo_promotion p;
    const char *field = "unset";
    char err[256] = "";

    memset(&p, 0xa5, sizeof(p));
    if (promo_promotion_from_json(json, len, &p, &field, err, sizeof(err)) != -1) {
        fail_msg("accepted (%s): %.*s", test_context, (int)(len > 300 ? 300 : len), json);
    }
    assert_true(all_zero(&p, sizeof(p)));
    assert_true(err[0] != '\0');
    assert_true(printable(err));
    if (want_field == NULL ? field != NULL : field == NULL || strcmp(field, want_field) != 0) {
        fail_msg("field %s, expected %s (%s: %s)", field ? field : "NULL", want_field ? want_field : "NULL",
                 test_context, err);
    }
    if (want_err != NULL && strstr(err, want_err) == NULL) {
        fail_msg("error \"%s\" lacks \"%s\" (%s)", err, want_err, test_context);
    }
}

static void parse_fails(const char *json, const char *want_field, const char *want_err)
{
    parse_fails_len(json, strlen(json), want_field, want_err);
}

/* The fixture with the member at path ("weight", "discount.code") set to value (JSON text), or removed when value
 * is NULL. Free the result. */
static char *mutate(const char *fixture, const char *path, const char *value)
{
    json_t *root = json_loads(fixture, 0, NULL), *parent;
    const char *dot = strchr(path, '.');
    char *text;

    assert_non_null(root);
    parent = root;
    if (dot != NULL) {
        char head[64];

        snprintf(head, sizeof(head), "%.*s", (int)(dot - path), path);
        parent = json_object_get(root, head);
        assert_true(json_is_object(parent));
        path = dot + 1;
    }
    if (value == NULL) {
        json_object_del(parent, path);
    } else {
        json_t *v = json_loads(value, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);

        assert_non_null(v);
        json_object_set_new(parent, path, v);
    }
    text = json_dumps(root, JSON_COMPACT);
    assert_non_null(text);
    json_decref(root);
    return text;
}

static void mutated_ok(const char *fixture, const char *path, const char *value, promo_promotion *out)
{
    char *json = mutate(fixture, path, value);

    snprintf(test_context, sizeof(test_context), "%s = %s", path, value ? value : "(removed)");
    parse_ok(json, out);
    free(json);
}

static void mutated_fails(const char *fixture, const char *path, const char *value, const char *want_field)
{
    char *json = mutate(fixture, path, value);

    snprintf(test_context, sizeof(test_context), "%s = %.200s", path, value ? value : "(removed)");
    parse_fails(json, want_field, NULL);
    free(json);
}

static int same_string(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static void assert_same_promotion(const promo_promotion *a, const promo_promotion *b)
{
    size_t i;

    assert_int_equal(a->id, b->id);
    assert_true(same_string(a->name, b->name));
    assert_int_equal(a->starts_at, b->starts_at);
    assert_int_equal(a->ends_at, b->ends_at);
    assert_int_equal(a->enabled, b->enabled);
    assert_int_equal(a->audience, b->audience);
    assert_int_equal(a->nplans, b->nplans);
    for (i = 0; i < a->nplans; i++) {
        assert_string_equal(a->plans[i], b->plans[i]);
    }
    assert_int_equal(a->npaths, b->npaths);
    for (i = 0; i < a->npaths; i++) {
        assert_string_equal(a->paths[i], b->paths[i]);
    }
    assert_int_equal(a->weight, b->weight);
    assert_true(same_string(a->headline, b->headline));
    assert_true(same_string(a->text, b->text));
    assert_true(same_string(a->cta_label, b->cta_label));
    assert_true(same_string(a->cta_url, b->cta_url));
    assert_true(same_string(a->image_wide, b->image_wide));
    assert_true(same_string(a->image_narrow, b->image_narrow));
    assert_true(same_string(a->image_alt, b->image_alt));
    assert_string_equal(a->bg_color, b->bg_color);
    assert_string_equal(a->fg_color, b->fg_color);
    assert_string_equal(a->cta_bg_color, b->cta_bg_color);
    assert_string_equal(a->cta_fg_color, b->cta_fg_color);
    assert_int_equal(a->dismiss_days, b->dismiss_days);
    assert_int_equal(a->discount, b->discount);
    assert_true(same_string(a->code, b->code));
    assert_int_equal(a->percent_off, b->percent_off);
    assert_int_equal(a->amount_off, b->amount_off);
    assert_string_equal(a->currency, b->currency);
    assert_int_equal(a->duration, b->duration);
    assert_int_equal(a->duration_months, b->duration_months);
    assert_true(same_string(a->stripe_coupon, b->stripe_coupon));
    assert_int_equal(a->max_redemptions, b->max_redemptions);
}

/* from_json(to_json(p)) == p, and writing that again gives the same bytes. */
static void assert_round_trip(const promo_promotion *p)
{
    promo_promotion again;
    char *first = promo_promotion_to_json(p), *second;

    assert_non_null(first);
    parse_ok(first, &again);
    assert_same_promotion(p, &again);
    second = promo_promotion_to_json(&again);
    assert_non_null(second);
    assert_string_equal(first, second);
    free(first);
    free(second);
    promo_promotion_clear(&again);
}

/* ------------------------------------------------------------------------------------------ valid bodies */

static void test_full(void **state)
{
    promo_promotion p;

    (void)state;
    parse_ok(fx_full, &p);
    assert_int_equal(p.id, 0); /* the URL says which promotion, not the body */
    assert_string_equal(p.name, "Congress 2026 \342\200\223 Jahresabo");
    assert_int_equal(p.starts_at, T_2026_12_01);
    assert_int_equal(p.ends_at, T_2027_01_01);
    assert_int_equal(p.enabled, 1);
    assert_int_equal(p.audience, PROMO_AUDIENCE_PLANS);
    assert_int_equal(p.nplans, 2);
    assert_string_equal(p.plans[0], "digital");
    assert_string_equal(p.plans[1], "print+digital");
    assert_int_equal(p.npaths, 2);
    assert_string_equal(p.paths[0], "/politik/");
    assert_string_equal(p.paths[1], "/wirtschaft/");
    assert_int_equal(p.weight, 250);
    assert_string_equal(p.headline, "Ein Jahr lesen, 30 % sparen");
    assert_string_equal(p.text, "Nur bis Silvester: das Jahresabo zum Kongresspreis.");
    assert_string_equal(p.cta_label, "Jetzt sparen");
    assert_string_equal(p.cta_url, "https://shop.example.com:8443/abo?promo=CONGRESS30#top");
    assert_string_equal(p.image_wide, "/img/promo/congress-wide.webp");
    assert_string_equal(p.image_narrow, "/img/promo/congress-narrow.webp");
    assert_string_equal(p.image_alt, "Reporters at the congress, 2026");
    assert_string_equal(p.bg_color, "#0b3d91");
    assert_string_equal(p.fg_color, "#ffffff");
    assert_string_equal(p.cta_bg_color, "#ffd166");
    assert_string_equal(p.cta_fg_color, "#111111");
    assert_int_equal(p.dismiss_days, 14);
    assert_int_equal(p.discount, PROMO_DISCOUNT_PERCENT);
    assert_string_equal(p.code, "CONGRESS30");
    assert_int_equal(p.percent_off, 30);
    assert_int_equal(p.amount_off, 0);
    assert_string_equal(p.currency, "");
    assert_int_equal(p.duration, PROMO_DURATION_REPEATING);
    assert_int_equal(p.duration_months, 12);
    assert_string_equal(p.stripe_coupon, "coupon_Congress30");
    assert_int_equal(p.max_redemptions, 500);
    promo_promotion_clear(&p);
    assert_true(all_zero(&p, sizeof(p)));
}

static void test_amount(void **state)
{
    promo_promotion p;

    (void)state;
    parse_ok(fx_amount, &p);
    assert_int_equal(p.starts_at, 1767222000); /* 2025-12-31T23:00:00Z */
    assert_int_equal(p.enabled, 0);
    assert_int_equal(p.audience, PROMO_AUDIENCE_NON_SUBSCRIBERS);
    assert_int_equal(p.dismiss_days, 0);
    assert_int_equal(p.discount, PROMO_DISCOUNT_AMOUNT);
    assert_string_equal(p.code, "WELCOME-20");
    assert_int_equal(p.amount_off, 2000);
    assert_string_equal(p.currency, "eur");
    assert_int_equal(p.percent_off, 0);
    assert_int_equal(p.duration, PROMO_DURATION_FOREVER);
    assert_int_equal(p.duration_months, 0);
    assert_null(p.stripe_coupon);
    assert_int_equal(p.max_redemptions, 0);
    promo_promotion_clear(&p);
}

static void test_minimal_defaults(void **state)
{
    promo_promotion p;

    (void)state;
    parse_ok(fx_minimal, &p);
    assert_int_equal(p.id, 0);
    assert_string_equal(p.name, "Spring");
    assert_int_equal(p.enabled, 0);
    assert_int_equal(p.audience, PROMO_AUDIENCE_EVERYONE);
    assert_int_equal(p.nplans, 0);
    assert_int_equal(p.npaths, 0);
    assert_int_equal(p.weight, 100);
    assert_null(p.text);
    assert_null(p.image_wide);
    assert_null(p.image_narrow);
    assert_null(p.image_alt);
    assert_string_equal(p.bg_color, "#1d3557");
    assert_string_equal(p.fg_color, "#ffffff");
    assert_string_equal(p.cta_bg_color, "#ffd166");
    assert_string_equal(p.cta_fg_color, "#1d3557");
    assert_int_equal(p.dismiss_days, 30);
    assert_int_equal(p.discount, PROMO_DISCOUNT_NONE);
    assert_null(p.code);
    assert_null(p.stripe_coupon);
    promo_promotion_clear(&p);
}

/* What the page sends for a form left partly empty: null for absent members, "" for empty optional texts. */
static void test_null_and_empty(void **state)
{
    static const char *const nulls[] = {"id",
                                        "enabled",
                                        "audience",
                                        "plans",
                                        "paths",
                                        "weight",
                                        "text",
                                        "image_wide",
                                        "image_narrow",
                                        "image_alt",
                                        "bg_color",
                                        "fg_color",
                                        "cta_bg_color",
                                        "cta_fg_color",
                                        "dismiss_days",
                                        "discount",
                                        "discount.duration",
                                        "discount.stripe_coupon",
                                        "discount.max_redemptions"};
    static const char *const empties[] = {"text", "image_wide", "image_narrow", "image_alt", "discount.stripe_coupon"};
    promo_promotion p, ref;
    size_t i;

    (void)state;
    parse_ok(fx_minimal, &ref);
    for (i = 0; i < sizeof(nulls) / sizeof(nulls[0]); i++) {
        mutated_ok(strncmp(nulls[i], "discount.", 9) == 0 ? fx_amount : fx_minimal, nulls[i], "null", &p);
        if (strncmp(nulls[i], "discount.", 9) != 0) {
            assert_same_promotion(&p, &ref);
        }
        promo_promotion_clear(&p);
    }
    for (i = 0; i < sizeof(empties) / sizeof(empties[0]); i++) {
        mutated_ok(fx_amount, empties[i], "\"\"", &p);
        assert_null(p.text);
        assert_null(p.image_wide);
        assert_null(p.image_narrow);
        assert_null(p.image_alt);
        assert_null(p.stripe_coupon);
        promo_promotion_clear(&p);
    }
    /* a bare image_narrow is refused, but an empty one beside no image is none */
    mutated_ok(fx_minimal, "image_narrow", "\"\"", &p);
    assert_null(p.image_narrow);
    promo_promotion_clear(&p);
    promo_promotion_clear(&ref);
}

static void test_id_ignored(void **state)
{
    promo_promotion p;

    (void)state;
    mutated_ok(fx_minimal, "id", "123456789012", &p);
    assert_int_equal(p.id, 0);
    promo_promotion_clear(&p);
    mutated_fails(fx_minimal, "id", "\"7\"", "id");
    mutated_fails(fx_minimal, "id", "7.5", "id");
}

static void test_accepted_values(void **state)
{
    static const struct {
        const char *path, *value;
    } cases[] = {
        {"name", "\"x\""},
        {"cta_url", "\"/\""},
        {"cta_url", "\"HTTPS://Example.COM\""},
        {"cta_url", "\"http://localhost:8080/\""},
        {"cta_url", "\"https://[2001:db8::1]/x\""},
        {"cta_url", "\"https://example.com?q=1\""},
        {"cta_url", "\"/abo?x=%22a%22&y=1#z\""},
        {"cta_url", "\"https://192.0.2.7\""},
        {"weight", "1"},
        {"weight", "1000"},
        {"dismiss_days", "365"},
        {"paths", "[\"/\", \"/sport/fu\\u00dfball/\"]"},
        {"text", "\"Caf\\u00e9 \\u2013 \\\"quoted\\\" & more, 100 %\""},
        {"discount.percent_off", "100"},
        {"discount.duration_months", "36"},
        {"discount.max_redemptions", "0"},
        {"discount.max_redemptions", "9223372036854775807"},
        {"discount.code", "\"a_b-c\""},
    };
    promo_promotion p;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        mutated_ok(fx_full, cases[i].path, cases[i].value, &p);
        promo_promotion_clear(&p);
    }
    mutated_ok(fx_amount, "discount.amount_off", "1000000000", &p);
    assert_int_equal(p.amount_off, 1000000000);
    promo_promotion_clear(&p);
    mutated_ok(fx_amount, "discount.amount_off", "1", &p);
    promo_promotion_clear(&p);
    /* 120 bytes of a 3-byte character: the limit is in bytes, and this is exactly it */
    {
        char name[3 * 40 + 3];
        size_t j;

        name[0] = '"';
        for (j = 0; j < 40; j++) {
            memcpy(name + 1 + 3 * j, "\342\202\254", 3);
        }
        name[121] = '"';
        name[122] = '\0';
        mutated_ok(fx_full, "name", name, &p);
        assert_int_equal(strlen(p.name), PROMO_NAME_MAX);
        promo_promotion_clear(&p);
    }
}

/* ------------------------------------------------------------------------------------------- writing back */

static void test_to_json_exact(void **state)
{
    promo_promotion p;
    char *text;

    (void)state;
    parse_ok(fx_full, &p);
    text = promo_promotion_to_json(&p);
    assert_non_null(text);
    assert_string_equal(text, fx_full_written);
    free(text);
    p.id = 42;
    text = promo_promotion_to_json(&p);
    assert_non_null(text);
    assert_true(strncmp(text, "{\"id\":42,\"name\":", 16) == 0);
    free(text);
    promo_promotion_clear(&p);

    parse_ok(fx_minimal, &p);
    text = promo_promotion_to_json(&p);
    assert_string_equal(text,
                        "{\"id\":0,\"name\":\"Spring\",\"enabled\":false,\"starts_at\":\"2026-03-01T00:00:00Z\","
                        "\"ends_at\":\"2026-04-01T00:00:00Z\",\"audience\":\"everyone\",\"plans\":[],\"paths\":[],"
                        "\"weight\":100,\"headline\":\"Spring offer\",\"text\":null,\"cta_label\":\"Subscribe\","
                        "\"cta_url\":\"/subscribe\",\"image_wide\":null,\"image_narrow\":null,\"image_alt\":null,"
                        "\"bg_color\":\"#1d3557\",\"fg_color\":\"#ffffff\",\"cta_bg_color\":\"#ffd166\","
                        "\"cta_fg_color\":\"#1d3557\",\"dismiss_days\":30,\"discount\":null}");
    free(text);
    promo_promotion_clear(&p);

    parse_ok(fx_amount, &p);
    text = promo_promotion_to_json(&p);
    assert_non_null(strstr(text, "\"discount\":{\"code\":\"WELCOME-20\",\"percent_off\":null,\"amount_off\":2000,"
                                 "\"currency\":\"eur\",\"duration\":\"forever\",\"duration_months\":null,"
                                 "\"stripe_coupon\":null,\"max_redemptions\":0}}"));
    assert_non_null(strstr(text, "\"starts_at\":\"2025-12-31T23:00:00Z\""));
    free(text);
    promo_promotion_clear(&p);
}

static void test_round_trip(void **state)
{
    const char *fixtures[] = {fx_full, fx_amount, fx_minimal};
    promo_promotion p;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(fixtures) / sizeof(fixtures[0]); i++) {
        snprintf(test_context, sizeof(test_context), "fixture %zu", i);
        parse_ok(fixtures[i], &p);
        assert_round_trip(&p);
        p.id = 99; /* the id is written, and ignored when read back, so compare without it */
        {
            char *text = promo_promotion_to_json(&p);
            promo_promotion again;

            parse_ok(text, &again);
            assert_int_equal(again.id, 0);
            again.id = 99;
            assert_same_promotion(&p, &again);
            promo_promotion_clear(&again);
            free(text);
        }
        promo_promotion_clear(&p);
    }
    /* text with what JSON must escape, and every character class the reader lets through */
    mutated_ok(fx_full, "text", "\"\\\"Quotes\\\", back\\\\slash, slash /, \\u00e9\\u20ac\\ud83d\\ude00, & amp\"", &p);
    assert_string_equal(p.text, "\"Quotes\", back\\slash, slash /, \303\251\342\202\254\360\237\230\200, & amp");
    assert_round_trip(&p);
    promo_promotion_clear(&p);
    /* at the limits */
    mutated_ok(fx_full, "weight", "1000", &p);
    p.max_redemptions = 9223372036854775807LL;
    assert_round_trip(&p);
    promo_promotion_clear(&p);
}

/* A struct made by hand (as a store snapshot would be) writes text the reader accepts back unchanged. */
static void test_round_trip_built(void **state)
{
    char name[] = "Built", headline[] = "Head", label[] = "Go", url[] = "/go", plan[] = "gold", path[] = "/a";
    char code[] = "BUILT", coupon[] = "c1";
    promo_promotion p;

    (void)state;
    memset(&p, 0, sizeof(p));
    p.name = name;
    p.starts_at = 0;
    p.ends_at = 253402300799LL;
    p.enabled = 1;
    p.audience = PROMO_AUDIENCE_PLANS;
    p.plans[0] = plan;
    p.nplans = 1;
    p.paths[0] = path;
    p.npaths = 1;
    p.weight = 1;
    p.headline = headline;
    p.cta_label = label;
    p.cta_url = url;
    memcpy(p.bg_color, "#000000", 8);
    memcpy(p.fg_color, "#abcdef", 8);
    memcpy(p.cta_bg_color, "#123456", 8);
    memcpy(p.cta_fg_color, "#fedcba", 8);
    p.dismiss_days = 365;
    p.discount = PROMO_DISCOUNT_AMOUNT;
    p.code = code;
    p.amount_off = 1000000000;
    memcpy(p.currency, "usd", 4);
    p.duration = PROMO_DURATION_ONCE;
    p.stripe_coupon = coupon;
    assert_round_trip(&p);
}

/* ------------------------------------------------------------------------------------------------ times */

static void test_times(void **state)
{
    static const struct {
        const char *text;
        long long t;
    } ok[] = {
        {"2026-12-01T00:00:00Z", 1796083200},
        {"2026-12-01T00:00:00z", 1796083200},
        {"2026-12-01t00:00:00Z", 1796083200},
        {"2026-12-01T00:00:00+00:00", 1796083200},
        {"2026-12-01T00:00:00-00:00", 1796083200},
        {"2026-12-01T01:00:00+01:00", 1796083200},
        {"2026-11-30T19:00:00-05:00", 1796083200},
        {"2026-12-01T05:30:00+05:30", 1796083200},
        {"2026-12-01T00:00:00.999999Z", 1796083200}, /* fraction ignored, not rounded */
        {"2026-12-01T00:00:00.5+00:00", 1796083200},
        {"2026-12-01T23:59:00+23:59", 1796083200},
        {"2026-01-01T00:30:00+01:00", 1767223800}, /* the year before in UTC */
        {"2026-06-30T23:59:59+05:30", 1782844199}, /* the day before in UTC */
        {"2024-02-29T12:00:00Z", 1709208000},      /* leap year */
        {"2000-02-29T00:00:00Z", 951782400},       /* divisible by 400: leap */
        {"1970-01-01T00:00:00Z", 0},               /* the first second */
        {"1970-01-01T01:00:00+01:00", 0},
        {"2038-01-19T03:14:08Z", 2147483648LL},   /* past 32-bit time_t */
        {"9999-12-31T23:59:59Z", 253402300799LL}, /* the last second */
        {"9999-12-31T23:59:59.9Z", 253402300799LL},
    };
    static const char *const bad[] = {
        "2026-12-01",
        "2026-12-01T00:00Z",        /* seconds required */
        "2026-12-01T00:00:00",      /* zone required */
        "2026-12-01 00:00:00Z",     /* RFC 3339's ABNF has T */
        "2026-12-01T00:00:00.Z",    /* a fraction has digits */
        "2026-12-01T00:00:00+0100", /* offsets have a colon */
        "2026-12-01T00:00:00+01",
        "2026-12-01T00:00:00+24:00",
        "2026-12-01T00:00:00+01:60",
        "2026-12-01T00:00:00ZZ",
        "2026-12-01T00:00:00Z ",
        " 2026-12-01T00:00:00Z",
        "2026-13-01T00:00:00Z",
        "2026-00-01T00:00:00Z",
        "2026-12-00T00:00:00Z",
        "2026-12-32T00:00:00Z",
        "2026-04-31T00:00:00Z",
        "2027-02-29T00:00:00Z", /* not a leap year */
        "2100-02-29T00:00:00Z", /* divisible by 100, not by 400 */
        "2026-12-01T24:00:00Z",
        "2026-12-01T00:60:00Z",
        "2016-12-31T23:59:60Z", /* a real leap second: time_t has no place for it */
        "+2026-12-01T00:00:00Z",
        "20261-12-01T00:00:00Z",
        "2026-1-01T00:00:00Z",
        "2026-12-01T00:00:00.00000000000000000000000000000000000000000000000000000000000Z", /* too long */
        "1969-12-31T23:59:59Z",                                                             /* before 1970 */
        "1970-01-01T00:30:00+01:00",                                                        /* before 1970 in UTC */
        "0000-01-01T00:00:00Z",
        "9999-12-31T23:59:59-00:01", /* after 9999 in UTC */
        "",
    };
    char value[160];
    promo_promotion p;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        snprintf(test_context, sizeof(test_context), "%s", ok[i].text);
        snprintf(value, sizeof(value), "\"%s\"", ok[i].text);
        if (ok[i].t < 253402300799LL) {
            mutated_ok(fx_all_time, "starts_at", value, &p);
            assert_int_equal(p.starts_at, ok[i].t);
            promo_promotion_clear(&p);
        }
        if (ok[i].t > 0) {
            mutated_ok(fx_all_time, "ends_at", value, &p);
            assert_int_equal(p.ends_at, ok[i].t);
            p.starts_at = ok[i].t - 1;
            assert_round_trip(&p);
            promo_promotion_clear(&p);
        }
    }
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(value, sizeof(value), "\"%s\"", bad[i]);
        mutated_fails(fx_all_time, "starts_at", value, "starts_at");
        mutated_fails(fx_all_time, "ends_at", value, "ends_at");
    }
    /* the same instant written two ways is not "after" */
    mutated_ok(fx_minimal, "starts_at", "\"2026-04-01T01:59:59+02:00\"", &p);
    promo_promotion_clear(&p);
    mutated_fails(fx_minimal, "starts_at", "\"2026-04-01T02:00:00+02:00\"", "ends_at");
}

/* ---------------------------------------------------------------------------------------------- refusals */

static char long_string[4][PROMO_TEXT_MAX + 8];

/* A JSON string of n times 'x'. */
static const char *json_long(int slot, size_t n)
{
    char *s = long_string[slot];

    assert_true(n + 3 <= sizeof(long_string[slot]));
    s[0] = '"';
    memset(s + 1, 'x', n);
    memcpy(s + 1 + n, "\"", 2);
    return s;
}

static void test_refusals(void **state)
{
    struct {
        const char *base, *path, *value, *field;
    } cases[] = {
        /* required members */
        {fx_full, "name", NULL, "name"},
        {fx_full, "starts_at", NULL, "starts_at"},
        {fx_full, "ends_at", NULL, "ends_at"},
        {fx_full, "headline", NULL, "headline"},
        {fx_full, "cta_label", NULL, "cta_label"},
        {fx_full, "cta_url", NULL, "cta_url"},
        {fx_full, "name", "null", "name"},
        {fx_full, "name", "\"\"", "name"},
        {fx_full, "headline", "\"\"", "headline"},
        {fx_full, "cta_url", "\"\"", "cta_url"},
        /* types */
        {fx_full, "name", "42", "name"},
        {fx_full, "starts_at", "1796083200", "starts_at"},
        {fx_full, "enabled", "1", "enabled"},
        {fx_full, "enabled", "\"true\"", "enabled"},
        {fx_full, "audience", "[\"plans\"]", "audience"},
        {fx_full, "plans", "\"digital\"", "plans"},
        {fx_full, "plans", "[\"digital\", 3]", "plans"},
        {fx_full, "paths", "\"/politik/\"", "paths"},
        {fx_full, "paths", "[{}]", "paths"},
        {fx_full, "weight", "\"100\"", "weight"},
        {fx_full, "weight", "100.0", "weight"},
        {fx_full, "weight", "true", "weight"},
        {fx_full, "text", "[]", "text"},
        {fx_full, "bg_color", "255", "bg_color"},
        {fx_full, "dismiss_days", "7.5", "dismiss_days"},
        {fx_full, "discount", "\"CONGRESS30\"", "discount"},
        {fx_full, "discount", "[]", "discount"},
        {fx_full, "discount", "true", "discount"},
        {fx_full, "discount.percent_off", "\"30\"", "discount.percent_off"},
        {fx_full, "discount.code", "30", "discount.code"},
        /* unknown members */
        {fx_full, "nonsense", "1", "nonsense"},
        {fx_full, "counts", "{}", "counts"},
        {fx_full, "Name", "\"x\"", "Name"},
        {fx_full, "discount.percent", "30", "discount.percent"},
        {fx_full, "discount.id", "1", "discount.id"},
        /* times */
        {fx_full, "starts_at", "\"tomorrow\"", "starts_at"},
        {fx_full, "ends_at", "\"2026-12-01T00:00:00Z\"", "ends_at"},
        {fx_full, "ends_at", "\"2026-11-30T23:59:59Z\"", "ends_at"},
        /* lengths, in bytes */
        {fx_full, "name", json_long(0, PROMO_NAME_MAX + 1), "name"},
        {fx_full, "headline", json_long(1, PROMO_HEADLINE_MAX + 1), "headline"},
        {fx_full, "text", json_long(2, PROMO_TEXT_MAX + 1), "text"},
        {fx_full, "cta_label", json_long(3, PROMO_LABEL_MAX + 1), "cta_label"},
        {fx_full, "name",
         "\"\\u20ac\\u20ac\\u20ac\\u20ac\\u20ac\\u20ac\\u20ac\\u20ac\\u20ac\\u20ac\\u20ac"
         "\\u20ac\\u20ac\\u20ac\\u20ac\\u20ac\\u20ac\\u20ac\\u20ac\\u20ac\\u20ac\\u20ac\\u20ac"
         "\\u20ac\\u20ac\\u20ac\\u20ac\\u20ac\\u20ac\\u20ac\\u20ac\\u20ac\\u20ac\\u20ac\\u20ac"
         "\\u20ac\\u20ac\\u20ac\\u20ac\\u20ac\\u20ac\"",
         "name"}, /* 41 euro signs: 123 bytes for 41 characters */
        {fx_full, "image_alt", "\"" /* 501 bytes below */, "image_alt"},
        /* control characters: C0, DEL, C1 */
        {fx_full, "name", "\"a\\u0007b\"", "name"},
        {fx_full, "text", "\"line\\nbreak\"", "text"},
        {fx_full, "text", "\"tab\\there\"", "text"},
        {fx_full, "headline", "\"del\\u007f\"", "headline"},
        {fx_full, "cta_label", "\"next\\u0085line\"", "cta_label"},
        {fx_full, "image_alt", "\"c1\\u009f\"", "image_alt"},
        {fx_full, "paths", "[\"/a\\u0000b\"]", NULL}, /* NUL: refused by the parser, before any member */
        /* HTML in text members */
        {fx_full, "name", "\"<script>\"", "name"},
        {fx_full, "headline", "\"a > b\"", "headline"},
        {fx_full, "text", "\"Click <b>here</b>\"", "text"},
        {fx_full, "cta_label", "\"Go &gt; <\"", "cta_label"},
        {fx_full, "image_alt", "\"<img>\"", "image_alt"},
        /* URLs */
        {fx_full, "cta_url", "\"javascript:alert(1)\"", "cta_url"},
        {fx_full, "cta_url", "\"JavaScript://%0aalert(1)\"", "cta_url"},
        {fx_full, "cta_url", "\"data:text/html,x\"", "cta_url"},
        {fx_full, "cta_url", "\"//evil.example/\"", "cta_url"},
        {fx_full, "cta_url", "\"/\\\\evil.example\"", "cta_url"},
        {fx_full, "cta_url", "\"subscribe\"", "cta_url"},
        {fx_full, "cta_url", "\"ftp://example.com/\"", "cta_url"},
        {fx_full, "cta_url", "\"https://\"", "cta_url"},
        {fx_full, "cta_url", "\"https:///path\"", "cta_url"},
        {fx_full, "cta_url", "\"https://?q\"", "cta_url"},
        {fx_full, "cta_url", "\"https://ex ample.com/\"", "cta_url"},
        {fx_full, "cta_url", "\"https://example.com/a b\"", "cta_url"},
        {fx_full, "cta_url", "\"/a\\\"onmouseover=x\"", "cta_url"},
        {fx_full, "cta_url", "\"/a'b\"", "cta_url"},
        {fx_full, "cta_url", "\"/a<b\"", "cta_url"},
        {fx_full, "cta_url", "\"/a\\tb\"", "cta_url"},
        {fx_full, "cta_url", "\"/caf\\u00e9\"", "cta_url"},
        {fx_full, "cta_url", "\"https://user@evil.example/\"", "cta_url"},
        {fx_full, "cta_url", "\"https://example.com:/\"", "cta_url"},
        {fx_full, "cta_url", "\"https://example.com:123456/\"", "cta_url"},
        {fx_full, "cta_url", "\"https://[]/\"", "cta_url"},
        {fx_full, "cta_url", "\"https://[::1/\"", "cta_url"},
        {fx_full, "image_wide", "\"data:image/png;base64,AAAA\"", "image_wide"},
        {fx_full, "image_narrow", "\"img/narrow.webp\"", "image_narrow"},
        /* images */
        {fx_full, "image_alt", NULL, "image_alt"},
        {fx_full, "image_alt", "\"\"", "image_alt"},
        {fx_full, "image_wide", NULL, "image_narrow"},
        {fx_minimal, "image_wide", "\"/img/banner.jpg\"", "image_alt"},
        {fx_minimal, "image_narrow", "\"/img/narrow.jpg\"", "image_narrow"},
        /* colors */
        {fx_full, "bg_color", "\"red\"", "bg_color"},
        {fx_full, "fg_color", "\"#fff\"", "fg_color"},
        {fx_full, "cta_bg_color", "\"#12345g\"", "cta_bg_color"},
        {fx_full, "cta_fg_color", "\"123456\"", "cta_fg_color"},
        {fx_full, "bg_color", "\"#1234567\"", "bg_color"},
        {fx_full, "bg_color", "\"\"", "bg_color"},
        {fx_full, "fg_color", "\"rgb(0,0,0)\"", "fg_color"},
        /* numbers */
        {fx_full, "weight", "0", "weight"},
        {fx_full, "weight", "1001", "weight"},
        {fx_full, "weight", "-1", "weight"},
        {fx_full, "dismiss_days", "366", "dismiss_days"},
        {fx_full, "dismiss_days", "-1", "dismiss_days"},
        /* audience and plans */
        {fx_full, "audience", "\"vip\"", "audience"},
        {fx_full, "audience", "\"Everyone\"", "audience"},
        {fx_full, "audience", "\"\"", "audience"},
        {fx_full, "plans", NULL, "plans"},
        {fx_full, "plans", "[]", "plans"},
        {fx_full, "plans", "[\"gold silver\"]", "plans"},
        {fx_full, "plans", "[\"gold,silver\"]", "plans"},
        {fx_full, "plans", "[\"gold\\\"\"]", "plans"},
        {fx_full, "plans", "[\"\"]", "plans"},
        {fx_full, "plans", "[\"caf\\u00e9\"]", "plans"},
        {fx_full, "plans", "[\"a\",\"b\",\"c\",\"d\",\"e\",\"f\",\"g\",\"h\",\"i\"]", "plans"},
        {fx_minimal, "plans", "[\"digital\"]", "plans"}, /* only for the audience plans */
        /* paths */
        {fx_full, "paths", "[\"politik/\"]", "paths"},
        {fx_full, "paths", "[\"\"]", "paths"},
        {fx_full, "paths",
         "[\"/a\",\"/b\",\"/c\",\"/d\",\"/e\",\"/f\",\"/g\",\"/h\",\"/i\",\"/j\",\"/k\",\"/l\","
         "\"/m\",\"/n\",\"/o\",\"/p\",\"/q\"]",
         "paths"},
        {fx_full, "paths", "" /* 256 bytes below */, "paths"},
        /* discount */
        {fx_full, "discount", "{}", "discount.code"},
        {fx_full, "discount.code", NULL, "discount.code"},
        {fx_full, "discount.code", "\"\"", "discount.code"},
        {fx_full, "discount.code", "\"TEN%\"", "discount.code"},
        {fx_full, "discount.code", "\"TEN OFF\"", "discount.code"},
        {fx_full, "discount.code", "\"R\\u00c9DUCTION\"", "discount.code"},
        {fx_full, "discount.code", "\"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456\"", "discount.code"},
        {fx_full, "discount.percent_off", "0", "discount.percent_off"},
        {fx_full, "discount.percent_off", "101", "discount.percent_off"},
        {fx_full, "discount.percent_off", "130", "discount.percent_off"},
        {fx_full, "discount.percent_off", "12.5", "discount.percent_off"},
        {fx_full, "discount.percent_off", NULL, "discount.percent_off"}, /* neither */
        {fx_full, "discount.amount_off", "500", "discount.percent_off"}, /* both */
        {fx_full, "discount.currency", "\"eur\"", "discount.currency"},  /* with percent_off */
        {fx_amount, "discount.currency", NULL, "discount.currency"},
        {fx_amount, "discount.currency", "\"\"", "discount.currency"},
        {fx_amount, "discount.currency", "\"euro\"", "discount.currency"},
        {fx_amount, "discount.currency", "\"e1r\"", "discount.currency"},
        {fx_amount, "discount.currency", "978", "discount.currency"},
        {fx_amount, "discount.amount_off", "0", "discount.amount_off"},
        {fx_amount, "discount.amount_off", "-100", "discount.amount_off"},
        {fx_amount, "discount.amount_off", "1000000001", "discount.amount_off"},
        {fx_amount, "discount.amount_off", "19.99", "discount.amount_off"},
        {fx_full, "discount.duration", "\"weekly\"", "discount.duration"},
        {fx_full, "discount.duration", "\"ONCE\"", "discount.duration"},
        {fx_full, "discount.duration", "3", "discount.duration"},
        {fx_full, "discount.duration_months", NULL, "discount.duration_months"},
        {fx_full, "discount.duration_months", "0", "discount.duration_months"},
        {fx_full, "discount.duration_months", "37", "discount.duration_months"},
        {fx_amount, "discount.duration_months", "3", "discount.duration_months"}, /* forever */
        {fx_full, "discount.stripe_coupon", "\"coupon 30\"", "discount.stripe_coupon"},
        {fx_full, "discount.stripe_coupon", "\"coupon/30\"", "discount.stripe_coupon"},
        {fx_full, "discount.stripe_coupon", "7", "discount.stripe_coupon"},
        {fx_full, "discount.max_redemptions", "-1", "discount.max_redemptions"},
        {fx_full, "discount.max_redemptions", "\"500\"", "discount.max_redemptions"},
        {fx_full, "discount.max_redemptions", "1e3", "discount.max_redemptions"},
    };
    char alt[PROMO_TEXT_MAX + 4], path[PROMO_URL_MAX + 8];
    size_t i;

    (void)state;
    /* the cases whose value is built here */
    alt[0] = '"';
    memset(alt + 1, 'a', PROMO_TEXT_MAX + 1);
    memcpy(alt + PROMO_TEXT_MAX + 2, "\"", 2);
    snprintf(path, sizeof(path), "[\"/%0255d\"]", 0);
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (strcmp(cases[i].path, "image_alt") == 0 && cases[i].value != NULL && strcmp(cases[i].value, "\"") == 0) {
            cases[i].value = alt;
        }
        if (strcmp(cases[i].path, "paths") == 0 && cases[i].value != NULL && cases[i].value[0] == '\0') {
            cases[i].value = path;
        }
    }
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        mutated_fails(cases[i].base, cases[i].path, cases[i].value, cases[i].field);
    }
}

/* URLs at their length limit, and one byte over. */
static void test_url_lengths(void **state)
{
    char value[PROMO_URL_MAX + 8];
    promo_promotion p;

    (void)state;
    snprintf(value, sizeof(value), "\"https://example.com/");
    memset(value + strlen(value), 'a', PROMO_URL_MAX - (strlen(value) - 1));
    memcpy(value + PROMO_URL_MAX + 1, "\"", 2);
    mutated_ok(fx_full, "cta_url", value, &p);
    assert_int_equal(strlen(p.cta_url), PROMO_URL_MAX);
    promo_promotion_clear(&p);
    mutated_ok(fx_full, "image_wide", value, &p);
    promo_promotion_clear(&p);
    memcpy(value + PROMO_URL_MAX + 1, "a\"", 3);
    mutated_fails(fx_full, "cta_url", value, "cta_url");
    mutated_fails(fx_full, "image_wide", value, "image_wide");
    mutated_fails(fx_full, "image_narrow", value, "image_narrow");
}

/* The messages say what is wrong, with the member's name first. */
static void test_messages(void **state)
{
    char *json;

    (void)state;
    json = mutate(fx_full, "text", "\"Click <b>here</b>\"");
    parse_fails(json, "text", "text has < or >, and HTML is not allowed: banner text is shown as text");
    free(json);
    json = mutate(fx_full, "ends_at", "\"2026-01-01T00:00:00Z\"");
    parse_fails(json, "ends_at", "ends_at is not after starts_at");
    free(json);
    json = mutate(fx_full, "name", NULL);
    parse_fails(json, "name", "name is missing");
    free(json);
    json = mutate(fx_full, "nonsense", "1");
    parse_fails(json, "nonsense", "nonsense is not a member");
    free(json);
    json = mutate(fx_full, "weight", "0");
    parse_fails(json, "weight", "1 to 1000");
    free(json);
}

/* The first unknown member is named; a name that cannot go into a log line or a JSON answer as it is becomes
 * printable and short. */
static void test_unknown_member_names(void **state)
{
    promo_promotion p;
    const char *field = NULL;
    char err[256], json[512];

    (void)state;
    parse_fails("{\"zzz\":1,\"name\":\"x\"}", "zzz", NULL);
    parse_fails("{\"name\":\"x\",\"aaa\":1,\"bbb\":2}", "aaa", NULL);
    parse_fails("{\"\":1}", "\"\"", NULL);
    mutated_fails(fx_minimal, "discount", "{\"\":1}", "discount.\"\"");
    parse_fails("{\"caf\\u00e9\\n\":1}", "caf???", NULL);
    snprintf(json, sizeof(json), "{\"%0100d\":1}", 0);
    assert_int_equal(promo_promotion_from_json(json, strlen(json), &p, &field, err, sizeof(err)), -1);
    assert_non_null(field);
    assert_int_equal(strlen(field), 64);
    assert_true(strspn(field, "0") == 64);
    /* still there after the document is gone, until this thread parses again */
    mutated_fails(fx_minimal, "discount", "{\"percent\":1,\"code\":\"A\"}", "discount.percent");
    assert_int_equal(promo_promotion_from_json("{\"other\":1}", 11, &p, &field, err, sizeof(err)), -1);
    assert_string_equal(field, "other");
}

/* ------------------------------------------------------------------------------------- whole-body refusals */

static void test_invalid_documents(void **state)
{
    static const char *const bad[] = {
        "",
        " ",
        "{",
        "{\"name\": ",
        "null",
        "[]",
        "\"promotion\"",
        "42",
        "{name: \"x\"}",
        "{'name': 'x'}",
        "{\"name\":\"x\",}",
        "{\"name\":\"x\"} {}", /* trailing data */
        "{\"name\":\"x\"}x",
        "{\"name\":\"x\"}\n]",
        "{\"name\":\"a\",\"name\":\"b\"}", /* duplicate keys */
        "{\"discount\":{\"code\":\"A\",\"code\":\"B\"}}",
        "{\"name\":\"\\ud800\"}",            /* a lone surrogate */
        "{\"name\":\"\\u0000\"}",            /* NUL */
        "{\"name\":\"\xc3\x28\"}",           /* invalid UTF-8 */
        "{\"name\":\"\xed\xa0\x80\"}",       /* an encoded surrogate */
        "{\"name\":\"\xc0\xaf\"}",           /* overlong */
        "{\"weight\":18446744073709551616}", /* beyond 64 bits */
        "\xef\xbb\xbf{}",                    /* a byte order mark */
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(test_context, sizeof(test_context), "document %zu", i);
        parse_fails(bad[i], NULL, NULL);
    }
    parse_fails("{\"name\":\"a\",\"name\":\"b\"}", NULL, "duplicate");
    parse_fails_len("{\"name\":\"x\"}\0{}", 14, NULL, NULL);
    parse_fails_len(NULL, 0, NULL, "empty");
    /* the whole text of a valid promotion followed by more */
    {
        char json[sizeof(fx_full) + 8];

        snprintf(json, sizeof(json), "%s{}", fx_full);
        parse_fails(json, NULL, NULL);
        snprintf(json, sizeof(json), "%s \n\t", fx_full);
        {
            promo_promotion p;

            parse_ok(json, &p); /* whitespace is not data */
            promo_promotion_clear(&p);
        }
    }
}

static void test_deep_nesting(void **state)
{
    char json[256];
    size_t i, n;

    (void)state;
    /* 16 levels pass the depth check (and fail as an unknown member); 17 do not reach the parser */
    for (n = 16; n <= 17; n++) {
        size_t len = (size_t)snprintf(json, sizeof(json), "{\"x\":");

        for (i = 1; i < n; i++) {
            json[len++] = '[';
        }
        for (i = 1; i < n; i++) {
            json[len++] = ']';
        }
        json[len++] = '}';
        json[len] = '\0';
        parse_fails(json, n == 16 ? "x" : NULL, n == 16 ? NULL : "nested deeper");
    }
    /* brackets inside strings are text, not nesting */
    {
        promo_promotion p;
        char *text = mutate(fx_full, "headline", "\"[[[[[[[[[[[[[[[[[[[[{{{{{{{{{{{{{{{{\\\"[[[[[[[[[[[[[[[[[\"");

        parse_ok(text, &p);
        promo_promotion_clear(&p);
        free(text);
    }
    /* a million levels cost one pass */
    {
        size_t big = 1000000;
        char *deep = malloc(big);

        assert_non_null(deep);
        memset(deep, '[', big);
        parse_fails_len(deep, JSON_BYTES_MAX, NULL, "nested deeper");
        parse_fails_len(deep, big, NULL, "larger than");
        free(deep);
    }
}

static void test_huge_input(void **state)
{
    size_t len = strlen(fx_full);
    char *big = malloc(JSON_BYTES_MAX + 2);
    promo_promotion p;

    (void)state;
    assert_non_null(big);
    /* exactly 64 KB, padded with whitespace: accepted */
    memcpy(big, fx_full, len);
    memset(big + len, ' ', JSON_BYTES_MAX + 1 - len);
    parse_ok_len(big, JSON_BYTES_MAX, &p);
    promo_promotion_clear(&p);
    /* one byte more: refused before parsing */
    parse_fails_len(big, JSON_BYTES_MAX + 1, NULL, "larger than 65536 bytes");
    /* a long string in a valid document */
    memcpy(big, "{\"name\":\"", 9);
    memset(big + 9, 'x', JSON_BYTES_MAX - 11);
    memcpy(big + JSON_BYTES_MAX - 2, "\"}", 2);
    parse_fails_len(big, JSON_BYTES_MAX, "name", "too long");
    free(big);
}

/* ---------------------------------------------------------------------------------------------------- misc */

static void test_null_outputs(void **state)
{
    promo_promotion p;

    (void)state;
    assert_int_equal(promo_promotion_from_json(fx_full, strlen(fx_full), &p, NULL, NULL, 0), 0);
    promo_promotion_clear(&p);
    assert_int_equal(promo_promotion_from_json("{", 1, &p, NULL, NULL, 0), -1);
    assert_true(all_zero(&p, sizeof(p)));
    assert_int_equal(promo_promotion_from_json("{\"x\":1}", 7, &p, NULL, NULL, 0), -1);
    /* a tiny buffer still gets a terminated message */
    {
        const char *field = NULL;
        char err[4];

        assert_int_equal(promo_promotion_from_json("{\"x\":1}", 7, &p, &field, err, sizeof(err)), -1);
        assert_string_equal(err, "x i");
        assert_string_equal(field, "x");
    }
}

/* *out may hold anything on entry (the callers declare it on the stack): it is overwritten, never freed. */
static void test_garbage_out(void **state)
{
    promo_promotion p;

    (void)state;
    memset(&p, 0xa5, sizeof(p));
    parse_ok(fx_full, &p);
    promo_promotion_clear(&p);
}

static void test_clear_and_names(void **state)
{
    promo_promotion p;

    (void)state;
    memset(&p, 0, sizeof(p));
    promo_promotion_clear(&p);
    promo_promotion_clear(&p);
    promo_promotion_clear(NULL);
    parse_ok(fx_full, &p);
    promo_promotion_clear(&p);
    promo_promotion_clear(&p);
    assert_string_equal(promo_audience_name(PROMO_AUDIENCE_EVERYONE), "everyone");
    assert_string_equal(promo_audience_name(PROMO_AUDIENCE_ANONYMOUS), "anonymous");
    assert_string_equal(promo_audience_name(PROMO_AUDIENCE_NON_SUBSCRIBERS), "non-subscribers");
    assert_string_equal(promo_audience_name(PROMO_AUDIENCE_SUBSCRIBERS), "subscribers");
    assert_string_equal(promo_audience_name(PROMO_AUDIENCE_PLANS), "plans");
    assert_string_equal(promo_audience_name((promo_audience)99), "unknown");
}

/* Every audience name read is the one written. */
static void test_audiences(void **state)
{
    static const promo_audience all[] = {PROMO_AUDIENCE_EVERYONE, PROMO_AUDIENCE_ANONYMOUS,
                                         PROMO_AUDIENCE_NON_SUBSCRIBERS, PROMO_AUDIENCE_SUBSCRIBERS};
    char value[64];
    promo_promotion p;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        snprintf(value, sizeof(value), "\"%s\"", promo_audience_name(all[i]));
        mutated_ok(fx_minimal, "audience", value, &p);
        assert_int_equal(p.audience, all[i]);
        assert_round_trip(&p);
        promo_promotion_clear(&p);
    }
    mutated_ok(fx_full, "plans", "[\"a\",\"b\",\"c\",\"d\",\"e\",\"f\",\"g\",\"h\"]", &p);
    assert_int_equal(p.nplans, PROMO_PLANS_MAX);
    assert_round_trip(&p);
    promo_promotion_clear(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full),
        cmocka_unit_test(test_amount),
        cmocka_unit_test(test_minimal_defaults),
        cmocka_unit_test(test_null_and_empty),
        cmocka_unit_test(test_id_ignored),
        cmocka_unit_test(test_accepted_values),
        cmocka_unit_test(test_to_json_exact),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_round_trip_built),
        cmocka_unit_test(test_times),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_url_lengths),
        cmocka_unit_test(test_messages),
        cmocka_unit_test(test_unknown_member_names),
        cmocka_unit_test(test_invalid_documents),
        cmocka_unit_test(test_deep_nesting),
        cmocka_unit_test(test_huge_input),
        cmocka_unit_test(test_null_outputs),
        cmocka_unit_test(test_garbage_out),
        cmocka_unit_test(test_clear_and_names),
        cmocka_unit_test(test_audiences),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
