/* mod_promo's store side, shared by the Apache and nginx adapters: the promotions every node reads from PostgreSQL
 * at most PromoRefresh seconds apart (a snapshot the requests share without locking each other), the counts of
 * impressions, clicks and applied codes (kept in the process, added at each refresh to memcached counters every
 * node shares, which one node at a time moves into PostgreSQL; without PromoMemcached each process adds its own to
 * PostgreSQL: never a network call per request), and the editors' API. Functions marked "never blocks" are safe on
 * nginx's event loop; the others block on PostgreSQL: Apache calls them from request threads, nginx from thread-pool
 * tasks. */
#ifndef PROMO_STORE_H
#define PROMO_STORE_H

#include <stddef.h>
#include <time.h>

#include "mc.h"
#include "metrics.h"
#include "pg.h"
#include "promo.h"

extern const pg_migration promo_migrations[];

#define PROMO_REFRESH_DEFAULT 5 /* seconds: the longest an editor's change takes to show on every node */

typedef struct {
    const char *postgres;  /* libpq conninfo */
    const char *memcached; /* PromoMemcached; NULL: each process adds its counts to PostgreSQL itself */
    long refresh;          /* seconds, 1 to 3600 */
} promo_store_config;

typedef struct promo_store promo_store;

/* Metrics (core/metrics.h), indexed by these enums; label values in the order of the definitions' values. */
typedef enum {
    PROMO_METRIC_BANNERS,        /* banners_total{result} */
    PROMO_METRIC_CODES,          /* codes_total{result} */
    PROMO_METRIC_REFRESHES,      /* refreshes_total{result} */
    PROMO_METRIC_REFRESH_LATENCY /* refresh_latency_ms */
} promo_metric;

typedef enum { PROMO_BANNER_INJECTED, PROMO_BANNER_CLICKED } promo_banner_result;
typedef enum { PROMO_CODE_RESULT_APPLIED, PROMO_CODE_RESULT_REFUSED } promo_code_result;
typedef enum { PROMO_REFRESH_OK, PROMO_REFRESH_FAILED } promo_refresh_result;

extern const metrics_def promo_metric_defs[];
extern const size_t promo_metric_count;
extern metrics_block *promo_metrics; /* set by the adapter; NULL: nothing is counted */

/* The process's store for this configuration, opened lazily (migrations on first open; a database that is down then
 * is migrated later). NULL and err when the configuration cannot work. Never blocks: opens no connection. */
promo_store *promo_store_get(const promo_store_config *config, char *err, size_t errlen);
void promo_stores_close_all(void);

/* ------------------------------------------------------------------------------------------------ snapshot */

/* The promotions live now or later (enabled, not over), and those with a code switched off or ended in the last 90
 * days (so that their codes get a clear refusal), as of the last refresh, with their redemptions. Shared,
 * reference-counted, immutable: take one for a request, release it at the end. */
typedef struct promo_snapshot promo_snapshot;

/* The current snapshot (NULL before the first successful refresh). Never blocks. */
promo_snapshot *promo_snapshot_acquire(promo_store *store);
void promo_snapshot_release(promo_snapshot *snapshot);
const promo_promotion *const *promo_snapshot_promotions(const promo_snapshot *snapshot, size_t *count);
const promo_promotion *promo_snapshot_find_code(const promo_snapshot *snapshot, const char *code);
const promo_promotion *promo_snapshot_find_id(const promo_snapshot *snapshot, long long id);
/* The banner of one of the snapshot's promotions (promo_banner_html), rendered once per snapshot: valid while the
 * snapshot is held. The cache serves one click URL, the first one asked for; for another, NULL (render it yourself).
 * Never blocks. */
const char *promo_snapshot_banner(promo_snapshot *snapshot, const promo_promotion *promotion, const char *click_url,
                                  size_t *len);
/* Codes applied so far (PostgreSQL's count at the refresh plus this process's since). Never blocks. */
long long promo_snapshot_redemptions(promo_store *store, const promo_snapshot *snapshot,
                                     const promo_promotion *promotion);

/* 1 when the snapshot is older than the refresh interval (or absent) and no other thread is refreshing: the caller
 * then owns the refresh and must call promo_store_refresh. Never blocks. */
int promo_store_refresh_due(promo_store *store, time_t now);
/* Reads the live promotions from PostgreSQL into a new snapshot, and hands this process's counts on (memcached, or
 * PostgreSQL directly); with memcached, the node that takes the lock moves the shared counters to
 * promo.daily_counts, and redemptions not moved yet count towards the limits. Keeps the previous snapshot when
 * PostgreSQL cannot answer (note says so, once per outage). Blocks. */
void promo_store_refresh(promo_store *store, time_t now, char *note, size_t notelen, int *note_is_error);

/* ------------------------------------------------------------------------------------------------- counts */

typedef enum { PROMO_COUNT_IMPRESSION, PROMO_COUNT_CLICK, PROMO_COUNT_REDEMPTION } promo_count_kind;

/* Adds one to a promotion's count for the day of now (UTC), in this process. Never blocks. */
void promo_count(promo_store *store, long long promotion_id, promo_count_kind kind, time_t now);

/* ------------------------------------------------------------------------------------------- editors' API */

typedef struct {
    int status; /* HTTP status: 200, 201, 400, 404, 409 (code taken), 503 */
    char *body; /* JSON, malloc'd: the result, or {"error": "...", "field": "..."} */
    size_t body_len;
} promo_api_result;

void promo_api_result_free(promo_api_result *result);

/* GET: every promotion (newest first) with its counts of the last 30 days. */
void promo_api_list(promo_store *store, promo_api_result *result);
/* GET one, with its counts per day. */
void promo_api_get(promo_store *store, long long id, promo_api_result *result);
/* POST (id 0) or PUT: a promotion from the editors' JSON, validated by promo_promotion_from_json. */
void promo_api_save(promo_store *store, long long id, const char *json, size_t len, const char *editor,
                    promo_api_result *result);
/* POST .../enable or .../disable */
void promo_api_set_enabled(promo_store *store, long long id, int enabled, const char *editor, promo_api_result *result);

#endif
