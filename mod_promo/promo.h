/* mod_promo's logic, shared by the Apache and nginx adapters: promotions as editors define them, which one a page
 * shows (schedule, audience, path, weighted rotation), the banner's HTML, its streaming injection into a page, the
 * discount code's signed cookie and first-year price, and the JSON the editors' page exchanges. Everything here is
 * pure: no store, no network, nothing printed (promo_store.h has the parts that touch memcached and PostgreSQL). */
#ifndef PROMO_H
#define PROMO_H

#include <stddef.h>
#include <time.h>

/* ------------------------------------------------------------------------------------------- promotions */

#define PROMO_NAME_MAX       120  /* bytes of a name */
#define PROMO_TEXT_MAX       500  /* bytes of the banner's text */
#define PROMO_HEADLINE_MAX   120  /* bytes of the headline */
#define PROMO_LABEL_MAX      40   /* bytes of the call-to-action label */
#define PROMO_URL_MAX        1024 /* bytes of a link or image URL */
#define PROMO_PATHS_MAX      16   /* path prefixes of one promotion */
#define PROMO_PLANS_MAX      8    /* plans of an audience by plan */
#define PROMO_CODE_MAX       32   /* characters of a discount code: [A-Z0-9_-] */
#define PROMO_WEIGHT_MAX     1000
#define PROMO_DISMISS_MAX    365 /* days a dismissed banner stays hidden */
#define PROMO_PROMOTIONS_MAX 1000

typedef enum {
    PROMO_AUDIENCE_EVERYONE,
    PROMO_AUDIENCE_ANONYMOUS,       /* no user id (PromoUser) */
    PROMO_AUDIENCE_NON_SUBSCRIBERS, /* PAYWALL_ACCESS is not granted (absent, denied, metered, crawler) */
    PROMO_AUDIENCE_SUBSCRIBERS,     /* PAYWALL_ACCESS=granted */
    PROMO_AUDIENCE_PLANS,           /* PAYWALL_ACCESS=granted and PAYWALL_PLAN among plans */
} promo_audience;

typedef enum { PROMO_DISCOUNT_NONE, PROMO_DISCOUNT_PERCENT, PROMO_DISCOUNT_AMOUNT } promo_discount_kind;

/* Stripe's coupon durations: once = the first period (the first year of a yearly plan). */
typedef enum { PROMO_DURATION_ONCE, PROMO_DURATION_REPEATING, PROMO_DURATION_FOREVER } promo_duration;

/* One promotion. Strings are NUL-terminated UTF-8 without control characters, NULL when absent; the struct owns
 * them when it comes from promo_promotion_from_json or a store snapshot (free with promo_promotion_clear). */
typedef struct {
    long long id; /* 0 for a new one */
    char *name;
    time_t starts_at; /* [starts_at, ends_at) */
    time_t ends_at;
    int enabled;
    promo_audience audience;
    char *plans[PROMO_PLANS_MAX];
    size_t nplans;
    char *paths[PROMO_PATHS_MAX]; /* prefixes starting with '/'; none: every page */
    size_t npaths;
    unsigned weight; /* 1 to PROMO_WEIGHT_MAX: the share among the promotions eligible for a page */

    /* banner */
    char *headline;
    char *text;
    char *cta_label;
    char *cta_url;      /* a path or an http(s) URL */
    char *image_wide;   /* for screens wider than 640 px; NULL: no image */
    char *image_narrow; /* for narrower ones; NULL: the wide one */
    char *image_alt;    /* required when there is an image */
    char bg_color[8];   /* "#rrggbb" */
    char fg_color[8];
    char cta_bg_color[8];
    char cta_fg_color[8];
    unsigned dismiss_days; /* 0 to PROMO_DISMISS_MAX; 0: not dismissible */

    /* discount (PROMO_DISCOUNT_NONE: none) */
    promo_discount_kind discount;
    char *code;           /* what visitors type or follow (?promo=CODE), upper case */
    unsigned percent_off; /* 1 to 100 */
    long long amount_off; /* cents, > 0 */
    char currency[4];     /* "eur", with amount_off */
    promo_duration duration;
    unsigned duration_months;  /* with PROMO_DURATION_REPEATING, 1 to 36 */
    char *stripe_coupon;       /* Stripe's coupon id that applies it at checkout */
    long long max_redemptions; /* 0: no limit */
} promo_promotion;

void promo_promotion_clear(promo_promotion *promotion);
const char *promo_audience_name(promo_audience audience); /* "everyone", "anonymous", ... */

/* ------------------------------------------------------------------------------------------- editors' JSON */

/* Reads a promotion from the editors' page: a JSON object with the members
 *   name, starts_at, ends_at (RFC 3339, "2026-12-01T00:00:00Z" or with an offset), enabled, audience, plans, paths,
 *   weight, headline, text, cta_label, cta_url, image_wide, image_narrow, image_alt, bg_color, fg_color,
 *   cta_bg_color, cta_fg_color, dismiss_days, discount: null | {code, percent_off | amount_off + currency, duration,
 *   duration_months, stripe_coupon, max_redemptions}.
 * Refuses (-1) with the member's name in *field (a static string, "ends_at", "discount.code"...) and a phrase in err:
 * invalid JSON, not an object, an unknown member, a missing required one (name, starts_at, ends_at, headline,
 * cta_label, cta_url), a wrong type, ends_at not after starts_at, a string too long or with a control character,
 * HTML in a text member ('<' or '>': banner text is text), a URL that is not a path or http(s), a color that is not
 * #rrggbb, an image without alt text, a discount with both or neither of percent_off and amount_off.
 * *field is NULL when the fault is the whole body's (invalid JSON, not an object, over 64 KB); for an unknown member
 * it is that member's name ("nonsense", "discount.foo"), kept in a thread-local buffer until the thread's next call.
 * null counts as absent; "" as none for the optional texts; "id" is accepted and ignored (*out's id is 0). */
int promo_promotion_from_json(const char *json, size_t len, promo_promotion *out, const char **field, char *err,
                              size_t errlen);
/* The same object (with "id"), as the API returns it. malloc'd; NULL when out of memory. */
char *promo_promotion_to_json(const promo_promotion *promotion);

/* ----------------------------------------------------------------------------------------- choosing one */

typedef struct {
    const char *path; /* the request's path, without query */
    size_t path_len;
    int logged_in;              /* a user id is known */
    const char *paywall_access; /* PAYWALL_ACCESS, NULL when absent */
    const char *paywall_plan;   /* PAYWALL_PLAN, NULL when absent */
    const char *dismissed;      /* the promo_dismissed cookie: ids joined by '.', NULL when absent */
    size_t dismissed_len;
    time_t now;
} promo_visit;

/* Whether a promotion may show on this page for this visitor: enabled, now in [starts_at, ends_at), the audience,
 * a path prefix (or none), not dismissed. */
int promo_eligible(const promo_promotion *promotion, const promo_visit *visit);
/* Weighted choice among the eligible ones: roll is uniform in [0, 2^32). NULL when none. */
const promo_promotion *promo_choose(const promo_promotion *const *promotions, size_t count, const promo_visit *visit,
                                    unsigned roll);

/* ------------------------------------------------------------------------------------------------ banner */

/* The banner: one <aside class="wm-promo wm-promo-ID" role="region" aria-label=NAME> with its own <style> scoped
 * under .wm-promo-ID (so it cannot restyle the site, nor the site it beyond its prefix), headline, text, a <picture>
 * with a source for wide screens and the narrow image (srcset, alt), the call to action as a link through the click
 * handler (click_url + "?id=ID"), and, when dismissible, a <button> that hides it and sets the promo_dismissed
 * cookie for dismiss_days (a few lines of script; Escape also dismisses). Every text and URL is HTML-escaped;
 * colors are the validated #rrggbb. malloc'd, *len set; NULL when out of memory. */
char *promo_banner_html(const promo_promotion *promotion, const char *click_url, size_t *len);

/* ----------------------------------------------------------------------------------------- injection */

typedef enum {
    PROMO_PLACE_AFTER_BODY,      /* right after the <body ...> start tag (default) */
    PROMO_PLACE_BEFORE_BODY_END, /* right before </body> */
    PROMO_PLACE_MARKER,          /* in place of a marker the site put in its template */
} promo_placement_kind;

typedef struct {
    promo_placement_kind kind;
    const char *marker; /* PROMO_PLACE_MARKER: 1 to 255 bytes */
} promo_placement;

/* PromoPlacement after-body | before-body-end | marker TEXT */
const char *promo_parse_placement(const char *kind, const char *marker, promo_placement *out);

#define PROMO_INJECT_PENDING_MAX 1024 /* bytes held while a <body ...> tag may still be ending */

typedef int (*promo_emit_fn)(void *ctx, const char *data, size_t len);

/* Streams a page through, inserting a block once at the placement; the anchor may be split across input buffers
 * at any byte. Only what may be part of the anchor is held (for after-body, the start tag up to its '>', bounded by
 * PROMO_INJECT_PENDING_MAX: a longer tag gets no banner); everything else is emitted at once. A page without the
 * anchor passes unchanged. Public for sizeof; owns nothing. */
typedef struct {
    promo_placement placement;
    const char *block;
    size_t block_len;
    char pending[PROMO_INJECT_PENDING_MAX];
    size_t pending_len;
    unsigned state;
    size_t matched;
    int inserted;
    int failed;
} promo_inject;

void promo_inject_init(promo_inject *inject, const promo_placement *placement, const char *block, size_t block_len);
int promo_inject_feed(promo_inject *inject, const char *in, size_t len, promo_emit_fn emit, void *ctx);
int promo_inject_finish(promo_inject *inject, promo_emit_fn emit, void *ctx);
int promo_inject_inserted(const promo_inject *inject);

/* ------------------------------------------------------------------------------------------------ discount */

typedef enum {
    PROMO_CODE_OK,
    PROMO_CODE_UNKNOWN,
    PROMO_CODE_DISABLED,
    PROMO_CODE_NOT_STARTED,
    PROMO_CODE_EXPIRED,
    PROMO_CODE_EXHAUSTED,
} promo_code_status;

/* A message for the visitor ("This offer has ended."): short, static. */
const char *promo_code_status_message(promo_code_status status);
const char *promo_code_status_name(promo_code_status status); /* "ok", "unknown", ... */
/* Upper-cases and checks a code a visitor typed: 1 to PROMO_CODE_MAX of [A-Za-z0-9_-]. 0 or -1. */
int promo_code_normalise(const char *in, size_t len, char *out, size_t outlen);
/* Whether the promotion with this code (NULL: none has it) applies now, given redemptions so far. */
promo_code_status promo_code_check(const promo_promotion *promotion, time_t now, long long redemptions);

/* The first-year price of a base price under the promotion's discount (percent rounded to the cent, half up;
 * amount off floored at 0; another currency than the base's leaves it unchanged). */
long long promo_first_year_price(const promo_promotion *promotion, long long base_cents, const char *base_currency);

#define PROMO_COOKIE_MAX 160

/* The promo_code cookie: CODE "." expiry "." base64url(HMAC-SHA256(key, code "." expiry)). Returns its length or
 * 0. promo_cookie_parse returns 0 with the code in out when the signature and expiry hold, -1 otherwise. */
size_t promo_cookie_make(const void *key, size_t key_len, const char *code, time_t expires, char *out, size_t outlen);
int promo_cookie_parse(const void *key, size_t key_len, const char *value, size_t len, time_t now, char *code,
                       size_t codelen);

#endif
