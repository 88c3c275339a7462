#include "promo_store.h"

#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct promo_snapshot {
    unsigned refs; /* atomic: requests release snapshots without their store */
    pthread_mutex_t banner_lock;
    char *banner_click_url; /* the click URL the banners were rendered with */
    char **banners;         /* per item, rendered on first use */
    size_t *banner_lens;
    promo_promotion *items;
    const promo_promotion **list;
    long long *redemptions; /* PostgreSQL's total per item at load time */
    size_t count;
};

/* This process's counts not yet added to PostgreSQL. */
typedef struct {
    long long id;
    long day; /* days since 1970-01-01, UTC */
    long long n[3];
} promo_pending_count;

struct promo_store {
    promo_store *next;
    promo_store_config config;
    pg_pool *pg;
    mc_cluster *mc; /* PromoMemcached: counts shared by every node between two moves to PostgreSQL */
    int mc_down;
    int migrated;
    pthread_mutex_t lock;
    promo_snapshot *current;
    time_t refreshed; /* last attempt */
    int refreshing;
    int pg_down;
    promo_pending_count *counts;
    size_t ncounts;
    size_t capcounts;
    promo_pending_count *flushing; /* counts being written now: still part of the redemptions seen */
    size_t nflushing;
};

static pthread_mutex_t promo_stores_lock = PTHREAD_MUTEX_INITIALIZER;
static promo_store *promo_stores;

/* ------------------------------------------------------------------------------------------------- stores */

static int promo_same_text(const char *a, const char *b)
{
    return a == b || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static void promo_snapshot_free(promo_snapshot *snapshot)
{
    size_t i;

    if (snapshot == NULL)
        return;
    for (i = 0; i < snapshot->count; i++) {
        promo_promotion_clear(&snapshot->items[i]);
        if (snapshot->banners)
            free(snapshot->banners[i]);
    }
    free(snapshot->banners);
    free(snapshot->banner_lens);
    free(snapshot->banner_click_url);
    pthread_mutex_destroy(&snapshot->banner_lock);
    free(snapshot->items);
    free(snapshot->list);
    free(snapshot->redemptions);
    free(snapshot);
}

static void promo_store_free(promo_store *store)
{
    if (store == NULL)
        return;
    promo_snapshot_release(store->current);
    pg_pool_destroy(store->pg);
    mc_cluster_destroy(store->mc);
    free((char *)store->config.postgres);
    free((char *)store->config.memcached);
    free(store->counts);
    free(store->flushing);
    pthread_mutex_destroy(&store->lock);
    free(store);
}

promo_store *promo_store_get(const promo_store_config *config, char *err, size_t errlen)
{
    promo_store *store;
    pg_config pg = {0};

    if (config->postgres == NULL) {
        snprintf(err, errlen, "no PromoPostgres configured");
        return NULL;
    }
    pthread_mutex_lock(&promo_stores_lock);
    for (store = promo_stores; store; store = store->next)
        if (store->config.refresh == config->refresh && promo_same_text(store->config.postgres, config->postgres) &&
            promo_same_text(store->config.memcached, config->memcached))
            break;
    if (store == NULL) {
        store = calloc(1, sizeof(*store));
        if (store == NULL) {
            snprintf(err, errlen, "out of memory");
            goto out;
        }
        pthread_mutex_init(&store->lock, NULL);
        store->config = *config;
        store->config.postgres = strdup(config->postgres);
        store->config.memcached = config->memcached ? strdup(config->memcached) : NULL;
        pg.conninfo = config->postgres;
        if (store->config.postgres == NULL || (config->memcached && store->config.memcached == NULL)) {
            snprintf(err, errlen, "out of memory");
            promo_store_free(store);
            store = NULL;
            goto out;
        }
        if ((store->pg = pg_pool_create(&pg, err, errlen)) == NULL) {
            promo_store_free(store);
            store = NULL;
            goto out;
        }
        if (config->memcached) {
            mc_config mc = {.servers = config->memcached};
            if ((store->mc = mc_cluster_create(&mc, err, errlen)) == NULL) {
                promo_store_free(store);
                store = NULL;
                goto out;
            }
        }
        store->next = promo_stores;
        promo_stores = store;
    }
out:
    pthread_mutex_unlock(&promo_stores_lock);
    return store;
}

void promo_stores_close_all(void)
{
    promo_store *store, *next;

    pthread_mutex_lock(&promo_stores_lock);
    for (store = promo_stores; store; store = next) {
        next = store->next;
        promo_store_free(store);
    }
    promo_stores = NULL;
    pthread_mutex_unlock(&promo_stores_lock);
}

static PGconn *promo_pg_acquire(promo_store *store, char *err, size_t errlen)
{
    PGconn *conn = pg_pool_acquire(store->pg, err, errlen);

    if (conn == NULL || store->migrated)
        return conn;
    pg_pool_release(store->pg, conn, 1);
    if (pg_migrate(store->pg, "promo", promo_migrations, err, errlen) != 0)
        return NULL;
    store->migrated = 1;
    return pg_pool_acquire(store->pg, err, errlen);
}

/* ----------------------------------------------------------------------------------------------- snapshot */

promo_snapshot *promo_snapshot_acquire(promo_store *store)
{
    promo_snapshot *snapshot;

    pthread_mutex_lock(&store->lock);
    snapshot = store->current;
    if (snapshot)
        __atomic_add_fetch(&snapshot->refs, 1, __ATOMIC_ACQ_REL);
    pthread_mutex_unlock(&store->lock);
    return snapshot;
}

/* The last reference may be dropped by a request after the store moved on to a newer snapshot: it frees it then. */
void promo_snapshot_release(promo_snapshot *snapshot)
{
    if (snapshot && __atomic_sub_fetch(&snapshot->refs, 1, __ATOMIC_ACQ_REL) == 0)
        promo_snapshot_free(snapshot);
}

const promo_promotion *const *promo_snapshot_promotions(const promo_snapshot *snapshot, size_t *count)
{
    *count = snapshot ? snapshot->count : 0;
    return snapshot ? (const promo_promotion *const *)snapshot->list : NULL;
}

const promo_promotion *promo_snapshot_find_code(const promo_snapshot *snapshot, const char *code)
{
    size_t i;

    for (i = 0; snapshot && code && i < snapshot->count; i++)
        if (snapshot->items[i].code && strcmp(snapshot->items[i].code, code) == 0)
            return &snapshot->items[i];
    return NULL;
}

const promo_promotion *promo_snapshot_find_id(const promo_snapshot *snapshot, long long id)
{
    size_t i;

    for (i = 0; snapshot && i < snapshot->count; i++)
        if (snapshot->items[i].id == id)
            return &snapshot->items[i];
    return NULL;
}

const char *promo_snapshot_banner(promo_snapshot *snapshot, const promo_promotion *promotion, const char *click_url,
                                  size_t *len)
{
    const char *html = NULL;
    size_t i;

    if (snapshot == NULL || promotion < snapshot->items || promotion >= snapshot->items + snapshot->count)
        return NULL;
    i = (size_t)(promotion - snapshot->items);
    /* Rendering a banner costs more than the rest of a request's work: once per snapshot, under a lock that is
     * held only for the first request of each promotion. */
    pthread_mutex_lock(&snapshot->banner_lock);
    if (snapshot->banner_click_url == NULL && click_url)
        snapshot->banner_click_url = strdup(click_url);
    if (snapshot->banner_click_url && click_url && strcmp(snapshot->banner_click_url, click_url) == 0) {
        if (snapshot->banners[i] == NULL)
            snapshot->banners[i] = promo_banner_html(promotion, click_url, &snapshot->banner_lens[i]);
        html = snapshot->banners[i];
        *len = snapshot->banner_lens[i];
    }
    pthread_mutex_unlock(&snapshot->banner_lock);
    return html;
}

long long promo_snapshot_redemptions(promo_store *store, const promo_snapshot *snapshot,
                                     const promo_promotion *promotion)
{
    long long total = 0;
    size_t i;

    for (i = 0; i < snapshot->count; i++)
        if (&snapshot->items[i] == promotion)
            total = snapshot->redemptions[i];
    pthread_mutex_lock(&store->lock);
    for (i = 0; i < store->ncounts; i++)
        if (store->counts[i].id == promotion->id)
            total += store->counts[i].n[PROMO_COUNT_REDEMPTION];
    for (i = 0; i < store->nflushing; i++)
        if (store->flushing[i].id == promotion->id)
            total += store->flushing[i].n[PROMO_COUNT_REDEMPTION];
    pthread_mutex_unlock(&store->lock);
    return total;
}

int promo_store_refresh_due(promo_store *store, time_t now)
{
    int due;

    pthread_mutex_lock(&store->lock);
    due = !store->refreshing &&
          (store->current == NULL ? now != store->refreshed : now - store->refreshed >= store->config.refresh);
    if (due)
        store->refreshing = 1;
    pthread_mutex_unlock(&store->lock);
    return due;
}

static void promo_note(promo_store *store, int down, const char *why, char *note, size_t notelen, int *is_error)
{
    int changed;

    pthread_mutex_lock(&store->lock);
    changed = store->pg_down != down;
    store->pg_down = down;
    pthread_mutex_unlock(&store->lock);
    if (!changed || note == NULL || notelen == 0)
        return;
    if (down) {
        snprintf(note, notelen, "promotions: PostgreSQL unreachable (%.300s): the last promotions read stay in use",
                 why);
        *is_error = 1;
    } else {
        snprintf(note, notelen, "promotions: PostgreSQL answers again");
    }
}

/* Adds the counts taken out of the store to promo.daily_counts, in one statement per row. 0 or -1. */
static int promo_flush_counts(PGconn *conn, const promo_pending_count *counts, size_t n, char *err, size_t errlen)
{
    char id[32], day[32], a[32], b[32], c[32];
    const char *params[5] = {id, day, a, b, c};
    PGresult *res;
    size_t i;

    /* All or none: on a failure every count goes back to the process, so none may have been added. */
    res = pg_exec(conn, "BEGIN", 0, NULL, NULL, NULL, err, errlen);
    if (res == NULL)
        return -1;
    PQclear(res);
    for (i = 0; i < n; i++) {
        if (counts[i].n[0] == 0 && counts[i].n[1] == 0 && counts[i].n[2] == 0)
            continue;
        snprintf(id, sizeof(id), "%lld", counts[i].id);
        snprintf(day, sizeof(day), "%ld", counts[i].day);
        snprintf(a, sizeof(a), "%lld", counts[i].n[PROMO_COUNT_IMPRESSION]);
        snprintf(b, sizeof(b), "%lld", counts[i].n[PROMO_COUNT_CLICK]);
        snprintf(c, sizeof(c), "%lld", counts[i].n[PROMO_COUNT_REDEMPTION]);
        /* A promotion deleted meanwhile takes its counts with it: nothing to add to. */
        res = pg_exec(conn,
                      "INSERT INTO promo.daily_counts (promotion_id, day, impressions, clicks, redemptions)"
                      " SELECT $1::bigint, date '1970-01-01' + $2::int, $3, $4, $5"
                      " WHERE EXISTS (SELECT 1 FROM promo.promotions WHERE id = $1::bigint)"
                      " ON CONFLICT (promotion_id, day) DO UPDATE SET"
                      " impressions = promo.daily_counts.impressions + EXCLUDED.impressions,"
                      " clicks = promo.daily_counts.clicks + EXCLUDED.clicks,"
                      " redemptions = promo.daily_counts.redemptions + EXCLUDED.redemptions",
                      5, params, NULL, NULL, err, errlen);
        if (res == NULL) {
            res = PQexec(conn, "ROLLBACK");
            PQclear(res);
            return -1;
        }
        PQclear(res);
    }
    res = pg_exec(conn, "COMMIT", 0, NULL, NULL, NULL, err, errlen);
    if (res == NULL)
        return -1;
    PQclear(res);
    return 0;
}

static promo_snapshot *promo_load(PGconn *conn, char *err, size_t errlen)
{
    promo_snapshot *snapshot;
    PGresult *res;
    const char *field;
    size_t i, n, kept = 0;
    int rows;

    res = pg_exec(conn,
                  "SELECT p.id, p.body::text, coalesce((SELECT sum(redemptions) FROM promo.daily_counts d"
                  " WHERE d.promotion_id = p.id), 0), p.enabled FROM promo.promotions p"
                  /* Codes of promotions switched off or over (for 90 days) are kept too, so that a visitor
                   * following an old link is told the offer ended rather than that the code does not exist. */
                  " WHERE p.ends_at > now() AND p.enabled"
                  " OR p.code IS NOT NULL AND p.ends_at > now() - interval '90 days'"
                  " ORDER BY p.id DESC LIMIT 1000",
                  0, NULL, NULL, NULL, err, errlen);
    if (res == NULL)
        return NULL;
    rows = PQntuples(res);
    n = (size_t)rows;
    snapshot = calloc(1, sizeof(*snapshot));
    if (snapshot) {
        pthread_mutex_init(&snapshot->banner_lock, NULL);
        snapshot->banners = calloc(n ? n : 1, sizeof(*snapshot->banners));
        snapshot->banner_lens = calloc(n ? n : 1, sizeof(*snapshot->banner_lens));
        snapshot->items =
            snapshot->banners && snapshot->banner_lens ? calloc(n ? n : 1, sizeof(*snapshot->items)) : NULL;
    }
    if (snapshot && snapshot->items)
        snapshot->list = calloc(n ? n : 1, sizeof(*snapshot->list));
    if (snapshot && snapshot->list)
        snapshot->redemptions = calloc(n ? n : 1, sizeof(*snapshot->redemptions));
    if (snapshot == NULL || snapshot->redemptions == NULL) {
        PQclear(res);
        promo_snapshot_free(snapshot);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    for (i = 0; i < n; i++) {
        const char *body = PQgetvalue(res, (int)i, 1);
        promo_promotion *p = &snapshot->items[kept];
        char why[256];
        /* Stored bodies passed this same check when saved: one that no longer does is skipped, not fatal. */
        if (promo_promotion_from_json(body, strlen(body), p, &field, why, sizeof(why)) != 0)
            continue;
        p->id = strtoll(PQgetvalue(res, (int)i, 0), NULL, 10);
        p->enabled = PQgetvalue(res, (int)i, 3)[0] == 't';
        snapshot->redemptions[kept] = strtoll(PQgetvalue(res, (int)i, 2), NULL, 10);
        snapshot->list[kept] = p;
        kept++;
    }
    snapshot->count = kept;
    snapshot->refs = 1;
    PQclear(res);
    return snapshot;
}

/* ----------------------------------------------------------------------------------- counts in memcached */

static const char *const promo_count_names[3] = {"imp", "clk", "red"};

static size_t promo_count_key(long long id, long day, int kind, char *out, size_t outlen)
{
    int n = snprintf(out, outlen, "promo.count.%lld.%ld.%s", id, day, promo_count_names[kind]);
    return n > 0 && (size_t)n < outlen ? (size_t)n : 0;
}

/* Adds this process's counts to the counters every node shares. The rows memcached did not take (an outage) are
 * left in counts with their numbers, the others zeroed: the caller writes the rest to PostgreSQL itself. */
static void promo_counts_to_memcached(promo_store *store, promo_pending_count *counts, size_t n, char *err,
                                      size_t errlen)
{
    char key[96];
    size_t i, key_len;
    uint64_t value;
    int kind;

    for (i = 0; i < n; i++) {
        for (kind = 0; kind < 3; kind++) {
            if (counts[i].n[kind] <= 0 ||
                (key_len = promo_count_key(counts[i].id, counts[i].day, kind, key, sizeof(key))) == 0)
                continue;
            /* Eight days: a node that moves them to PostgreSQL has long done so by then. */
            if (mc_incr(store->mc, key, key_len, key, key_len, (uint64_t)counts[i].n[kind], (uint64_t)counts[i].n[kind],
                        8 * 86400, &value, err, errlen) != MC_OK)
                return;
            counts[i].n[kind] = 0;
        }
    }
}

/* A shared counter's value, 0 when absent or unreadable. */
static long long promo_counter(promo_store *store, long long id, long day, int kind)
{
    char key[96], err[256];
    size_t key_len = promo_count_key(id, day, kind, key, sizeof(key));
    mc_value value;
    long long n = 0;

    if (key_len && mc_get(store->mc, key, key_len, key, key_len, &value, err, sizeof(err)) == MC_OK) {
        n = strtoll(value.data, NULL, 10);
        free(value.data);
    }
    return n > 0 ? n : 0;
}

/* One node at a time (a lock item for one refresh interval) moves the shared counters of the live promotions, for
 * today and yesterday, into PostgreSQL: added there in one transaction, then taken off the counters (what other
 * nodes added meanwhile stays). 0, or -1 when PostgreSQL refused. */
static int promo_counters_to_postgres(promo_store *store, PGconn *conn, const promo_snapshot *snapshot, time_t now,
                                      char *err, size_t errlen)
{
    promo_pending_count *moved;
    size_t i, n = 0, k;
    long day, today = (long)(now / 86400);
    char key[96], lock_err[256];
    uint64_t left;
    int kind, rc;

    if (snapshot == NULL || snapshot->count == 0 ||
        mc_add(store->mc, "promo.count.lock", 16, "promo.count.lock", 16, "1", 1, 0, store->config.refresh, lock_err,
               sizeof(lock_err)) != MC_OK)
        return 0;
    moved = calloc(snapshot->count * 2, sizeof(*moved));
    if (moved == NULL)
        return 0;
    for (i = 0; i < snapshot->count; i++) {
        for (day = today - 1; day <= today; day++) {
            moved[n].id = snapshot->items[i].id;
            moved[n].day = day;
            for (kind = 0; kind < 3; kind++)
                moved[n].n[kind] = promo_counter(store, moved[n].id, day, kind);
            if (moved[n].n[0] || moved[n].n[1] || moved[n].n[2])
                n++;
        }
    }
    rc = n ? promo_flush_counts(conn, moved, n, err, errlen) : 0;
    for (k = 0; rc == 0 && k < n; k++)
        for (kind = 0; kind < 3; kind++) {
            size_t key_len = promo_count_key(moved[k].id, moved[k].day, kind, key, sizeof(key));
            if (moved[k].n[kind] > 0 && key_len)
                mc_decr(store->mc, key, key_len, key, key_len, (uint64_t)moved[k].n[kind], &left, lock_err,
                        sizeof(lock_err));
        }
    free(moved);
    return rc;
}

/* Redemptions still in the shared counters (not yet in PostgreSQL), for the promotions with a limit. */
static void promo_counters_redemptions(promo_store *store, promo_snapshot *snapshot, time_t now)
{
    long today = (long)(now / 86400);
    size_t i;

    for (i = 0; i < snapshot->count; i++)
        if (snapshot->items[i].max_redemptions > 0)
            snapshot->redemptions[i] += promo_counter(store, snapshot->items[i].id, today - 1, 2) +
                                        promo_counter(store, snapshot->items[i].id, today, 2);
}

void promo_store_refresh(promo_store *store, time_t now, char *note, size_t notelen, int *note_is_error)
{
    promo_snapshot *fresh = NULL, *old = NULL;
    promo_pending_count *counts;
    size_t ncounts;
    char err[512] = "";
    PGconn *conn;
    double started = metrics_now_ms();
    int ok = 0;

    /* Take the counts out; they go back if PostgreSQL does not take them. */
    pthread_mutex_lock(&store->lock);
    counts = store->counts;
    ncounts = store->ncounts;
    store->flushing = counts;
    store->nflushing = ncounts;
    store->counts = NULL;
    store->ncounts = store->capcounts = 0;
    pthread_mutex_unlock(&store->lock);

    if (store->mc)
        promo_counts_to_memcached(store, counts, ncounts, err, sizeof(err));
    conn = promo_pg_acquire(store, err, sizeof(err));
    if (conn) {
        /* What memcached did not take (no PromoMemcached, or an outage) goes to PostgreSQL directly. */
        ok = promo_flush_counts(conn, counts, ncounts, err, sizeof(err)) == 0;
        if (ok)
            fresh = promo_load(conn, err, sizeof(err));
        if (fresh && store->mc) {
            promo_counters_to_postgres(store, conn, fresh, now, err, sizeof(err));
            promo_counters_redemptions(store, fresh, now);
        }
        pg_pool_release(store->pg, conn, ok && fresh != NULL);
    }

    pthread_mutex_lock(&store->lock);
    if (!ok) {
        /* Merge back what could not be written: the next refresh tries again. */
        size_t i, j;
        for (i = 0; i < ncounts; i++) {
            for (j = 0; j < store->ncounts; j++)
                if (store->counts[j].id == counts[i].id && store->counts[j].day == counts[i].day)
                    break;
            if (j == store->ncounts) {
                if (store->ncounts == store->capcounts) {
                    size_t cap = store->capcounts ? 2 * store->capcounts : 16;
                    promo_pending_count *grown = realloc(store->counts, cap * sizeof(*grown));
                    if (grown == NULL)
                        break;
                    store->counts = grown;
                    store->capcounts = cap;
                }
                memset(&store->counts[j], 0, sizeof(store->counts[j]));
                store->counts[j].id = counts[i].id;
                store->counts[j].day = counts[i].day;
                store->ncounts++;
            }
            store->counts[j].n[0] += counts[i].n[0];
            store->counts[j].n[1] += counts[i].n[1];
            store->counts[j].n[2] += counts[i].n[2];
        }
    }
    store->flushing = NULL;
    store->nflushing = 0;
    if (fresh) {
        old = store->current;
        store->current = fresh;
    }
    store->refreshed = now;
    store->refreshing = 0;
    pthread_mutex_unlock(&store->lock);
    free(counts);
    if (old)
        promo_snapshot_release(old);
    metrics_add(promo_metrics, PROMO_METRIC_REFRESHES, fresh ? PROMO_REFRESH_OK : PROMO_REFRESH_FAILED, 1);
    metrics_observe_ms(promo_metrics, PROMO_METRIC_REFRESH_LATENCY, 0, metrics_now_ms() - started);
    promo_note(store, fresh == NULL, err, note, notelen, note_is_error);
}

void promo_count(promo_store *store, long long promotion_id, promo_count_kind kind, time_t now)
{
    long day = (long)(now / 86400);
    size_t i;

    /* Before the per-promotion count, which can fail for memory: the visitor saw or did it all the same. */
    if (kind == PROMO_COUNT_REDEMPTION)
        metrics_add(promo_metrics, PROMO_METRIC_CODES, PROMO_CODE_RESULT_APPLIED, 1);
    else
        metrics_add(promo_metrics, PROMO_METRIC_BANNERS,
                    kind == PROMO_COUNT_IMPRESSION ? PROMO_BANNER_INJECTED : PROMO_BANNER_CLICKED, 1);
    pthread_mutex_lock(&store->lock);
    for (i = 0; i < store->ncounts; i++)
        if (store->counts[i].id == promotion_id && store->counts[i].day == day)
            break;
    if (i == store->ncounts) {
        if (store->ncounts == store->capcounts) {
            size_t cap = store->capcounts ? 2 * store->capcounts : 16;
            promo_pending_count *grown = realloc(store->counts, cap * sizeof(*grown));
            if (grown == NULL) {
                pthread_mutex_unlock(&store->lock);
                return;
            }
            store->counts = grown;
            store->capcounts = cap;
        }
        memset(&store->counts[i], 0, sizeof(store->counts[i]));
        store->counts[i].id = promotion_id;
        store->counts[i].day = day;
        store->ncounts++;
    }
    store->counts[i].n[kind]++;
    pthread_mutex_unlock(&store->lock);
}

/* ------------------------------------------------------------------------------------------- editors' API */

void promo_api_result_free(promo_api_result *result)
{
    free(result->body);
    result->body = NULL;
}

static void promo_api_json(promo_api_result *result, int status, json_t *value)
{
    result->status = status;
    result->body = value ? json_dumps(value, JSON_COMPACT) : NULL;
    result->body_len = result->body ? strlen(result->body) : 0;
    json_decref(value);
    if (result->body == NULL) {
        result->status = 500;
        result->body = strdup("{\"error\":\"out of memory\"}");
        result->body_len = result->body ? strlen(result->body) : 0;
    }
}

static void promo_api_error(promo_api_result *result, int status, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void promo_api_error(promo_api_result *result, int status, const char *field, const char *fmt, ...)
{
    char message[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);
    promo_api_json(result, status,
                   field ? json_pack("{s:s, s:s}", "error", message, "field", field)
                         : json_pack("{s:s}", "error", message));
}

/* A row's body (stored with promo_promotion_to_json) with the row's id and enabled, as a JSON value. */
static json_t *promo_api_row(PGresult *res, int row)
{
    json_t *body = json_loads(PQgetvalue(res, row, 1), 0, NULL);

    if (body == NULL)
        return NULL;
    json_object_set_new(body, "id", json_integer(strtoll(PQgetvalue(res, row, 0), NULL, 10)));
    json_object_set_new(body, "enabled", json_boolean(PQgetvalue(res, row, 2)[0] == 't'));
    json_object_set_new(body, "counts",
                        json_pack("{s:I, s:I, s:I}", "impressions",
                                  (json_int_t)strtoll(PQgetvalue(res, row, 3), NULL, 10), "clicks",
                                  (json_int_t)strtoll(PQgetvalue(res, row, 4), NULL, 10), "redemptions",
                                  (json_int_t)strtoll(PQgetvalue(res, row, 5), NULL, 10)));
    return body;
}

#define PROMO_API_COLUMNS                                                                                              \
    "SELECT p.id, p.body::text, p.enabled, coalesce(sum(d.impressions), 0), coalesce(sum(d.clicks), 0),"               \
    " coalesce(sum(d.redemptions), 0) FROM promo.promotions p LEFT JOIN promo.daily_counts d"                          \
    " ON d.promotion_id = p.id AND d.day > current_date - 30 "

static PGconn *promo_api_conn(promo_store *store, promo_api_result *result)
{
    char err[512];
    PGconn *conn = promo_pg_acquire(store, err, sizeof(err));

    if (conn == NULL)
        promo_api_error(result, 503, NULL, "promotions unavailable: %s", err);
    return conn;
}

void promo_api_list(promo_store *store, promo_api_result *result)
{
    char err[512];
    PGconn *conn = promo_api_conn(store, result);
    PGresult *res;
    json_t *list;
    int i;

    if (conn == NULL)
        return;
    res = pg_exec(conn, PROMO_API_COLUMNS "GROUP BY p.id ORDER BY p.id DESC", 0, NULL, NULL, NULL, err, sizeof(err));
    pg_pool_release(store->pg, conn, res != NULL);
    if (res == NULL) {
        promo_api_error(result, 503, NULL, "promotions unavailable: %s", err);
        return;
    }
    list = json_array();
    for (i = 0; list && i < PQntuples(res); i++) {
        json_t *row = promo_api_row(res, i);
        if (row)
            json_array_append_new(list, row);
    }
    PQclear(res);
    promo_api_json(result, 200, json_pack("{s:o}", "promotions", list));
}

void promo_api_get(promo_store *store, long long id, promo_api_result *result)
{
    char err[512], idtext[32];
    const char *params[1] = {idtext};
    PGconn *conn = promo_api_conn(store, result);
    PGresult *res, *days;
    json_t *row, *list;
    int i;

    if (conn == NULL)
        return;
    snprintf(idtext, sizeof(idtext), "%lld", id);
    res = pg_exec(conn, PROMO_API_COLUMNS "WHERE p.id = $1 GROUP BY p.id", 1, params, NULL, NULL, err, sizeof(err));
    days = res ? pg_exec(conn,
                         "SELECT to_char(day, 'YYYY-MM-DD'), impressions, clicks, redemptions FROM promo.daily_counts"
                         " WHERE promotion_id = $1 ORDER BY day DESC LIMIT 366",
                         1, params, NULL, NULL, err, sizeof(err))
               : NULL;
    pg_pool_release(store->pg, conn, days != NULL);
    if (res == NULL || days == NULL) {
        PQclear(res);
        promo_api_error(result, 503, NULL, "promotions unavailable: %s", err);
        return;
    }
    if (PQntuples(res) == 0) {
        PQclear(res);
        PQclear(days);
        promo_api_error(result, 404, NULL, "no promotion %lld", id);
        return;
    }
    row = promo_api_row(res, 0);
    list = json_array();
    for (i = 0; row && list && i < PQntuples(days); i++)
        json_array_append_new(list, json_pack("{s:s, s:I, s:I, s:I}", "day", PQgetvalue(days, i, 0), "impressions",
                                              (json_int_t)strtoll(PQgetvalue(days, i, 1), NULL, 10), "clicks",
                                              (json_int_t)strtoll(PQgetvalue(days, i, 2), NULL, 10), "redemptions",
                                              (json_int_t)strtoll(PQgetvalue(days, i, 3), NULL, 10)));
    if (row)
        json_object_set_new(row, "days", list);
    else
        json_decref(list);
    PQclear(res);
    PQclear(days);
    promo_api_json(result, 200, row);
}

void promo_api_save(promo_store *store, long long id, const char *json, size_t len, const char *editor,
                    promo_api_result *result)
{
    promo_promotion promotion;
    const char *field = NULL;
    char err[512], idtext[32], starts[32], ends[32], *body;
    PGconn *conn;
    PGresult *res;
    int created = id == 0;

    memset(result, 0, sizeof(*result));
    if (promo_promotion_from_json(json, len, &promotion, &field, err, sizeof(err)) != 0) {
        promo_api_error(result, 400, field, "%s", err);
        return;
    }
    promotion.id = id;
    body = promo_promotion_to_json(&promotion);
    if (body == NULL) {
        promo_promotion_clear(&promotion);
        promo_api_error(result, 500, NULL, "out of memory");
        return;
    }
    conn = promo_api_conn(store, result);
    if (conn == NULL) {
        free(body);
        promo_promotion_clear(&promotion);
        return;
    }
    snprintf(idtext, sizeof(idtext), "%lld", id);
    if (promotion.code) {
        /* Asked first for a clear 409; the unique index still decides between two editors saving at once. */
        const char *check[2] = {promotion.code, idtext};
        res = pg_exec(conn, "SELECT 1 FROM promo.promotions WHERE code = $1 AND id <> $2::bigint", 2, check, NULL, NULL,
                      err, sizeof(err));
        if (res && PQntuples(res) > 0) {
            PQclear(res);
            pg_pool_release(store->pg, conn, 1);
            promo_api_error(result, 409, "discount.code", "another promotion already has the code %s", promotion.code);
            free(body);
            promo_promotion_clear(&promotion);
            return;
        }
        PQclear(res);
    }
    snprintf(starts, sizeof(starts), "%lld", (long long)promotion.starts_at);
    snprintf(ends, sizeof(ends), "%lld", (long long)promotion.ends_at);
    {
        const char *params[8] = {body,           promotion.name, starts, ends, promotion.enabled ? "true" : "false",
                                 promotion.code, editor,         idtext};
        if (id == 0)
            res = pg_exec(conn,
                          "INSERT INTO promo.promotions (body, name, starts_at, ends_at, enabled, code, updated_by)"
                          " VALUES ($1::jsonb - 'id', $2, to_timestamp($3), to_timestamp($4), $5, $6, $7) RETURNING id",
                          7, params, NULL, NULL, err, sizeof(err));
        else
            res =
                pg_exec(conn,
                        "UPDATE promo.promotions SET body = $1::jsonb - 'id', name = $2, starts_at = to_timestamp($3),"
                        " ends_at = to_timestamp($4), enabled = $5, code = $6, updated_by = $7, updated_at = now()"
                        " WHERE id = $8 RETURNING id",
                        8, params, NULL, NULL, err, sizeof(err));
    }
    pg_pool_release(store->pg, conn, res != NULL || strstr(err, "duplicate key") != NULL);
    free(body);
    if (res == NULL) {
        if (strstr(err, "duplicate key"))
            promo_api_error(result, 409, "discount.code", "another promotion already has the code %s", promotion.code);
        else
            promo_api_error(result, 503, NULL, "promotions unavailable: %s", err);
        promo_promotion_clear(&promotion);
        return;
    }
    promo_promotion_clear(&promotion);
    if (PQntuples(res) == 0) {
        PQclear(res);
        promo_api_error(result, 404, NULL, "no promotion %lld", id);
        return;
    }
    id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    promo_api_get(store, id, result);
    if (result->status == 200 && created)
        result->status = 201;
}

void promo_api_set_enabled(promo_store *store, long long id, int enabled, const char *editor, promo_api_result *result)
{
    char err[512], idtext[32];
    const char *params[3] = {idtext, enabled ? "true" : "false", editor};
    PGconn *conn;
    PGresult *res;

    memset(result, 0, sizeof(*result));
    conn = promo_api_conn(store, result);
    if (conn == NULL)
        return;
    snprintf(idtext, sizeof(idtext), "%lld", id);
    res =
        pg_exec(conn,
                "UPDATE promo.promotions SET enabled = $2, body = jsonb_set(body, '{enabled}', to_jsonb($2::boolean)),"
                " updated_by = $3, updated_at = now() WHERE id = $1 RETURNING id",
                3, params, NULL, NULL, err, sizeof(err));
    pg_pool_release(store->pg, conn, res != NULL);
    if (res == NULL) {
        promo_api_error(result, 503, NULL, "promotions unavailable: %s", err);
        return;
    }
    if (PQntuples(res) == 0) {
        PQclear(res);
        promo_api_error(result, 404, NULL, "no promotion %lld", id);
        return;
    }
    PQclear(res);
    promo_api_get(store, id, result);
}
