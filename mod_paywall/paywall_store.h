/* mod_paywall's store side, shared by the Apache and nginx adapters: the gate's decision for a request
 * (entitlements from memcached and PostgreSQL, the meter, the crawler ranges, the fail mode), the Stripe webhook,
 * the Checkout and Billing Portal calls, and the routing CSV. Functions that touch a store or Stripe block on the
 * network: Apache calls them from its request threads, nginx only from thread-pool tasks. Functions marked
 * "never blocks" are safe on nginx's event loop. */
#ifndef PAYWALL_STORE_H
#define PAYWALL_STORE_H

#include <stddef.h>
#include <time.h>

#include "mc.h"
#include "paywall.h"
#include "pg.h"
#include "req.h"
#include "crypto.h"
#include "metrics.h"

extern const pg_migration paywall_migrations[];

#define PAYWALL_CACHE_TTL_MS_DEFAULT 2000L /* a process reuses an entitlement this long: changes show within 5 s */
#define PAYWALL_MAX_STALE_DEFAULT    3600L /* seconds an entitlement may serve when both stores fail */
#define PAYWALL_USER_ID_MAX          200   /* characters; longer ids are refused (they would not fit a memcached key) */
#define PAYWALL_SECRET_MIN           16    /* bytes of PaywallSecretFile */
#define PAYWALL_ENTITLEMENT_SUBS_MAX 8
#define PAYWALL_METER_COOKIE_NAME    "paywall_meter"

/* ------------------------------------------------------------------------------------------ configuration */

/* Where entitlements and meters live. Two configurations with the same settings share one store per process. */
typedef struct {
    const char *memcached; /* php-memcached save_path or libmemcached string; NULL: none */
    const char *postgres;  /* libpq conninfo; NULL: none */
    long cache_ttl_ms;     /* PaywallCacheTTL; default PAYWALL_CACHE_TTL_MS_DEFAULT, 0 = no process cache */
    long max_stale;        /* PaywallCacheMaxStale, seconds; default PAYWALL_MAX_STALE_DEFAULT */
} paywall_store_config;

/* PaywallUser session:KEY | env:NAME | header:NAME (default session:user_id): core's request source, under the names
 * the paywall's code and tests use. */
typedef req_source_kind paywall_user_kind;
typedef req_source paywall_user_source;
#define PAYWALL_USER_SESSION      REQ_SOURCE_SESSION
#define PAYWALL_USER_ENV          REQ_SOURCE_ENV
#define PAYWALL_USER_HEADER       REQ_SOURCE_HEADER
#define paywall_parse_user_source req_source_parse
/* PaywallSecretFile, PaywallStripeKeyFile, PaywallStripeWebhookSecretFile: crypto_read_secret_file. */
#define paywall_read_secret_file crypto_read_secret_file
/* A site user id the gate accepts: 1 to PAYWALL_USER_ID_MAX characters of [A-Za-z0-9._@:+-]. */
int paywall_user_id_valid(const char *id, size_t len);

/* PaywallDeny redirect's Location: url + ('?' or '&') + "return=" + the request's URI (path and query as the client
 * sent them) percent-encoded as a query value (everything but A-Z a-z 0-9 - . _ ~, upper-case hex), so both servers
 * send the same bytes. malloc'd; NULL when out of memory. Never blocks. */
char *paywall_deny_location(const char *url, const char *uri, size_t uri_len);

typedef struct paywall_store paywall_store;

/* Metrics (core/metrics.h), indexed by these enums; label values in the order of the definitions' values
 * (decisions_total's are paywall_access's). */
typedef enum {
    PAYWALL_METRIC_DECISIONS,           /* decisions_total{access} */
    PAYWALL_METRIC_ENTITLEMENT_LOOKUPS, /* entitlement_lookups_total{source} */
    PAYWALL_METRIC_STORE_ERRORS,        /* store_errors_total{store} */
    PAYWALL_METRIC_STORE_LATENCY,       /* store_latency_ms{store} */
    PAYWALL_METRIC_WEBHOOKS             /* webhooks_total{result} */
} paywall_metric;

typedef enum {
    PAYWALL_LOOKUP_PROCESS_CACHE,
    PAYWALL_LOOKUP_MEMCACHED,
    PAYWALL_LOOKUP_POSTGRES,
    PAYWALL_LOOKUP_STALE, /* both stores failed: an older cached entitlement served */
    PAYWALL_LOOKUP_FAILED /* both stores failed and nothing cached: the fail mode decides */
} paywall_lookup_source;

typedef enum { PAYWALL_STORE_MEMCACHED, PAYWALL_STORE_POSTGRES } paywall_store_kind;

typedef enum {
    PAYWALL_WEBHOOK_PROCESSED,
    PAYWALL_WEBHOOK_DUPLICATE, /* an event already applied: Stripe's retry */
    PAYWALL_WEBHOOK_REFUSED,   /* bad signature or body: 400 */
    PAYWALL_WEBHOOK_FAILED     /* stores down: 503, Stripe retries */
} paywall_webhook_outcome;

extern const metrics_def paywall_metric_defs[];
extern const size_t paywall_metric_count;
extern metrics_block *paywall_metrics; /* set by the adapter; NULL: nothing is counted */

/* The process's store for this configuration, opened lazily (PostgreSQL migrations on first open; a database that is
 * down then is migrated later). Thread-safe. NULL and err when the configuration cannot work (bad server list). */
paywall_store *paywall_store_get(const paywall_store_config *config, char *err, size_t errlen);
/* The store if this process already opened it, never opening one. Never blocks. */
paywall_store *paywall_store_find(const paywall_store_config *config);
void paywall_stores_close_all(void);

/* --------------------------------------------------------------------------------------------- the gate */

typedef enum {
    PAYWALL_ACCESS_GRANTED, /* a subscription opens the location (or the fail mode opened it) */
    PAYWALL_ACCESS_METERED, /* a free view from the meter */
    PAYWALL_ACCESS_DENIED,
    PAYWALL_ACCESS_CRAWLER, /* from a published crawler range */
} paywall_access;

const char *paywall_access_name(paywall_access access); /* "granted", "metered", "denied", "crawler" */

/* What a location asks for. */
typedef struct {
    const paywall_require *require; /* NULL or never set: any plan */
    const paywall_meter_config *meter;
    long grace;
    paywall_fail_mode fail_mode;
    const paywall_crawlers *crawlers; /* NULL: none */
    const unsigned char *secret; /* PaywallSecretFile: signs the anonymous meter cookie; NULL: no anonymous meter */
    size_t secret_len;
} paywall_rules;

typedef struct {
    const char *user_id; /* NULL: anonymous. An invalid id (paywall_user_id_valid) is treated as anonymous */
    size_t user_id_len;
    const char *client_addr;  /* the client's address as the server sees it (after mod_remoteip / realip) */
    const char *meter_cookie; /* the paywall_meter cookie's value, NULL when absent */
    size_t meter_cookie_len;
    time_t now;
} paywall_visit;

typedef struct {
    paywall_access access;
    char plan[PAYWALL_PLAN_MAX + 1]; /* the plan that opened it, "" when none */
    long meter_remaining;            /* free views left after this one; -1 when no meter applies */
    /* A meter cookie to set (the whole value), "" when the visitor's cookie stays as it is. */
    char meter_cookie[PAYWALL_METER_COOKIE_MAX];
    long meter_cookie_max_age;
    const char *reason; /* short static phrase for a debug log: "active subscription", "meter exhausted", ... */
    char note[512];     /* something to log (an outage starting or ending, a bad user id); "" when nothing */
    int note_is_error;
} paywall_result;

/* Decides from the crawler ranges and this process's fresh cached entitlements only. Returns 1 with *result set
 * when that suffices (a crawler, a subscriber whose cached entitlement opens, an anonymous visitor on a location
 * without meter), 0 when paywall_decide must ask the stores. Never blocks. */
int paywall_decide_cached(paywall_store *store, const paywall_rules *rules, const paywall_visit *visit,
                          paywall_result *result);
/* The whole decision: entitlements from the process cache, memcached, then PostgreSQL (refilling memcached); then the
 * meter (memcached counter per user id or per signed cookie id, per period); then the fail mode when the stores
 * cannot answer, after stale cached entitlements (up to max_stale). Blocks. */
void paywall_decide(paywall_store *store, const paywall_rules *rules, const paywall_visit *visit,
                    paywall_result *result);

/* ------------------------------------------------------------------------------------------ Stripe webhook */

typedef struct {
    int status;        /* to answer: 200 (applied or replay), 400 (refused: nothing stored), 503 (stores down: retry) */
    char message[256]; /* the plain-text body, also for the log */
    char note[512];    /* something else to log; "" when nothing */
    int note_is_error;
} paywall_webhook_result;

/* Verifies Stripe-Signature, parses the event and applies it once (paywall.processed_events) in one transaction,
 * then drops the cached entitlement of the user it concerns from memcached. Blocks. */
void paywall_webhook_handle(paywall_store *store, const paywall_plans *plans, const char *webhook_secret,
                            size_t webhook_secret_len, const char *signature, size_t signature_len, const char *body,
                            size_t body_len, time_t now, paywall_webhook_result *result);

/* ------------------------------------------------------------------------------------ Checkout and Portal */

#define PAYWALL_STRIPE_API_DEFAULT "https://api.stripe.com"
#define PAYWALL_STRIPE_TIMEOUT_MS  8000

/* CSRF token for the checkout and portal forms, published as PAYWALL_CSRF_TOKEN: "<unix time>.<base64url mac>",
 * bound to the user id, valid for 24 hours. Never blocks. Returns the length written (out needs 80 bytes) or 0. */
size_t paywall_csrf_token(const unsigned char *secret, size_t secret_len, const char *user_id, size_t user_id_len,
                          time_t now, char *out, size_t outlen);
int paywall_csrf_check(const unsigned char *secret, size_t secret_len, const char *user_id, size_t user_id_len,
                       const char *token, size_t token_len, time_t now);

typedef struct {
    const char *api_base;   /* PaywallStripeAPI, without trailing slash */
    const char *secret_key; /* sk_... from PaywallStripeKeyFile */
    unsigned timeout_ms;
} paywall_stripe_api;

typedef struct {
    const paywall_plan *plan;
    const char *user_id;
    const char *email;            /* NULL: Checkout asks for it */
    const char *coupon;           /* a Stripe coupon id (PROMO_STRIPE_COUPON from mod_promo); NULL: none */
    const char *promotion_code;   /* a Stripe promotion code id (promo_...); NULL: none */
    const char *promo_code;       /* the site's code (PROMO_CODE), kept in the session's metadata; NULL: none */
    const char *success_url;      /* absolute */
    const char *cancel_url;       /* absolute */
    const char *const *countries; /* shipping countries for print plans, NULL-terminated; NULL: a default list */
} paywall_checkout_request;

typedef struct {
    int status;     /* to answer: 303 (url set), 502 (Stripe refused), 504 (Stripe slow or unreachable), 500 */
    char url[2048]; /* where to send the visitor */
    char message[512];
} paywall_stripe_result;

/* POST /v1/checkout/sessions, form-encoded as Stripe expects. Blocks (up to the timeout). */
void paywall_checkout_create(const paywall_stripe_api *api, const paywall_checkout_request *request,
                             paywall_stripe_result *result);
/* Finds the user's Stripe customer in PostgreSQL and POSTs /v1/billing_portal/sessions. 404 in result->status when
 * the user has no customer yet. Blocks. */
void paywall_portal_create(paywall_store *store, const paywall_stripe_api *api, const char *user_id,
                           const char *return_url, paywall_stripe_result *result);

/* ------------------------------------------------------------------------------------------- routing CSV */

typedef struct paywall_export paywall_export;

/* Opens a server-side cursor over the print subscribers entitled on date ("YYYY-MM-DD", NULL: today in UTC; a
 * past_due subscription counts while within grace) and holds one PostgreSQL connection until paywall_export_close.
 * NULL and err on a bad date (*bad_request = 1) or a store error. Blocks. */
paywall_export *paywall_export_open(paywall_store *store, const paywall_plans *plans, long grace, const char *date,
                                    int *bad_request, char *err, size_t errlen);
/* The next chunk of CSV (the header row first), at most about 64 KB: *data points into the export's own buffer, valid
 * until the next call. Returns 1 with a chunk, 0 at the end, -1 on error (err). Blocks. */
int paywall_export_next(paywall_export *export, const char **data, size_t *len, char *err, size_t errlen);
void paywall_export_close(paywall_export *export);

#endif
