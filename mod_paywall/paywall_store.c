#include "paywall_store.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cookie.h"
#include "crypto.h"
#include "paywall_store_int.h"

#define PAYWALL_CACHE_BUCKETS 4096
#define PAYWALL_CACHE_DEPTH   4 /* entries a bucket keeps: bounds the cache to 16384 users a process */
#define PAYWALL_KEY_MAX       256
#define PAYWALL_CSRF_LIFETIME (24L * 60 * 60)

typedef struct paywall_cached paywall_cached;
struct paywall_cached {
    paywall_cached *next;
    char user[PAYWALL_USER_ID_MAX + 1];
    size_t user_len;
    paywall_entitlement entitlement;
    struct timespec fetched; /* CLOCK_MONOTONIC */
};

static pthread_mutex_t paywall_stores_lock = PTHREAD_MUTEX_INITIALIZER;
static paywall_store *paywall_stores;

/* ------------------------------------------------------------------------------------------ small values */

const char *paywall_access_name(paywall_access access)
{
    switch (access) {
    case PAYWALL_ACCESS_GRANTED:
        return "granted";
    case PAYWALL_ACCESS_METERED:
        return "metered";
    case PAYWALL_ACCESS_CRAWLER:
        return "crawler";
    case PAYWALL_ACCESS_DENIED:
        break;
    }
    return "denied";
}

int paywall_user_id_valid(const char *id, size_t len)
{
    size_t i;

    if (id == NULL || len == 0 || len > PAYWALL_USER_ID_MAX)
        return 0;
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)id[i];
        if (!isalnum(c) && strchr("._@:+-", c) == NULL)
            return 0;
    }
    return 1;
}

char *paywall_deny_location(const char *url, const char *uri, size_t uri_len)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t url_len = strlen(url), i, o;
    char *out = malloc(url_len + 8 + 3 * uri_len + 1);

    if (out == NULL)
        return NULL;
    memcpy(out, url, url_len);
    o = url_len;
    memcpy(out + o, strchr(url, '?') ? "&return=" : "?return=", 8);
    o += 8;
    for (i = 0; i < uri_len; i++) {
        unsigned char c = (unsigned char)uri[i];
        if (isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
            out[o++] = (char)c;
        } else {
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    out[o] = '\0';
    return out;
}

/* ------------------------------------------------------------------------------------------------- stores */

static int paywall_same_text(const char *a, const char *b)
{
    return a == b || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static int paywall_store_serves(const paywall_store *store, const paywall_store_config *config)
{
    return store->config.cache_ttl_ms == config->cache_ttl_ms && store->config.max_stale == config->max_stale &&
           paywall_same_text(store->config.memcached, config->memcached) &&
           paywall_same_text(store->config.postgres, config->postgres);
}

static void paywall_store_free(paywall_store *store)
{
    size_t i;
    paywall_cached *entry, *next;

    if (store == NULL)
        return;
    if (store->cache) {
        for (i = 0; i < PAYWALL_CACHE_BUCKETS; i++)
            for (entry = store->cache[i]; entry; entry = next) {
                next = entry->next;
                free(entry);
            }
        free(store->cache);
    }
    mc_cluster_destroy(store->mc);
    pg_pool_destroy(store->pg);
    free((char *)store->config.memcached);
    free((char *)store->config.postgres);
    pthread_mutex_destroy(&store->lock);
    pthread_mutex_destroy(&store->cache_lock);
    free(store);
}

static char *paywall_strdup_or_null(const char *s, int *failed)
{
    char *copy;

    if (s == NULL)
        return NULL;
    copy = strdup(s);
    if (copy == NULL)
        *failed = 1;
    return copy;
}

static paywall_store *paywall_store_open(const paywall_store_config *config, char *err, size_t errlen)
{
    paywall_store *store = calloc(1, sizeof(*store));
    mc_config mc = {0};
    pg_config pg = {0};
    int failed = 0;

    if (store == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&store->lock, NULL);
    pthread_mutex_init(&store->cache_lock, NULL);
    store->config = *config;
    store->config.memcached = paywall_strdup_or_null(config->memcached, &failed);
    store->config.postgres = paywall_strdup_or_null(config->postgres, &failed);
    /* Entitlements are also kept for max_stale, even without a fresh cache, to serve when both stores fail. */
    store->cache = calloc(PAYWALL_CACHE_BUCKETS, sizeof(*store->cache));
    if (failed || store->cache == NULL) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (config->memcached) {
        mc.servers = config->memcached;
        store->mc = mc_cluster_create(&mc, err, errlen);
        if (store->mc == NULL)
            goto fail;
    }
    if (config->postgres) {
        pg.conninfo = config->postgres;
        store->pg = pg_pool_create(&pg, err, errlen);
        if (store->pg == NULL)
            goto fail;
        /* A database that is down now must not keep the gate from working: migrate on a later use. */
        store->migrated = pg_migrate(store->pg, "paywall", paywall_migrations, err, errlen) == 0;
    }
    return store;

fail:
    paywall_store_free(store);
    return NULL;
}

paywall_store *paywall_store_get(const paywall_store_config *config, char *err, size_t errlen)
{
    paywall_store *store;

    pthread_mutex_lock(&paywall_stores_lock);
    for (store = paywall_stores; store; store = store->next)
        if (paywall_store_serves(store, config))
            break;
    if (store == NULL) {
        store = paywall_store_open(config, err, errlen);
        if (store) {
            store->next = paywall_stores;
            paywall_stores = store;
        }
    }
    pthread_mutex_unlock(&paywall_stores_lock);
    return store;
}

paywall_store *paywall_store_find(const paywall_store_config *config)
{
    paywall_store *store;

    pthread_mutex_lock(&paywall_stores_lock);
    for (store = paywall_stores; store; store = store->next)
        if (paywall_store_serves(store, config))
            break;
    pthread_mutex_unlock(&paywall_stores_lock);
    return store;
}

void paywall_stores_close_all(void)
{
    paywall_store *store, *next;

    pthread_mutex_lock(&paywall_stores_lock);
    for (store = paywall_stores; store; store = next) {
        next = store->next;
        paywall_store_free(store);
    }
    paywall_stores = NULL;
    pthread_mutex_unlock(&paywall_stores_lock);
}

/* Outages are logged when they start and when they end, not once per request. */
static int paywall_store_pg_known_down(paywall_store *store)
{
    int down;

    if (store->pg == NULL)
        return 0;
    pthread_mutex_lock(&store->lock);
    down = store->pg_down;
    pthread_mutex_unlock(&store->lock);
    return down;
}

static int paywall_flag_changed(paywall_store *store, int *flag, int down)
{
    int changed;

    pthread_mutex_lock(&store->lock);
    changed = *flag != down;
    __atomic_store_n(flag, down, __ATOMIC_RELAXED); /* read without the lock by the node notes */
    pthread_mutex_unlock(&store->lock);
    return changed;
}

/* After an answer from memcached: whether it came without one of the cluster's nodes (core/mc.c goes around a dead
 * node as php-memcached does, so the operation itself succeeds and says nothing). One note when it starts and ends. */
static void paywall_note_mc_node(paywall_store *store, char *note, size_t notelen, int *is_error)
{
    char why[256] = "";
    int lost = mc_cluster_degraded(store->mc, why, sizeof(why));

    /* every answer asks: the common one, nothing changed, takes no lock */
    if (lost == __atomic_load_n(&store->mc_node_lost, __ATOMIC_RELAXED) || note[0] != '\0' ||
        !paywall_flag_changed(store, &store->mc_node_lost, lost))
        return;
    if (lost) {
        snprintf(note, notelen,
                 "a node of memcached \"%s\" is unreachable (%.300s): its keys go to the next node of the ring, "
                 "entitlements it held come from PostgreSQL",
                 store->config.memcached, why);
        *is_error = 1;
    } else {
        snprintf(note, notelen, "every node of memcached \"%s\" answers again", store->config.memcached);
    }
}

/* Every failure of a store passes through paywall_note_mc or paywall_note_pg (which write a note only when an outage
 * starts or ends): the place to count them. */
void paywall_note_mc(paywall_store *store, int down, const char *why, char *note, size_t notelen, int *is_error)
{
    if (down)
        metrics_add(paywall_metrics, PAYWALL_METRIC_STORE_ERRORS, PAYWALL_STORE_MEMCACHED, 1);
    if (!paywall_flag_changed(store, &store->mc_down, down) || note[0] != '\0') {
        if (!down)
            paywall_note_mc_node(store, note, notelen, is_error);
        return;
    }
    if (down) {
        snprintf(note, notelen,
                 "memcached \"%s\" unreachable (%.300s): entitlements from PostgreSQL, meters follow PaywallFailMode",
                 store->config.memcached, why);
        *is_error = 1;
    } else {
        snprintf(note, notelen, "memcached \"%s\" answers again", store->config.memcached);
    }
}

void paywall_note_pg(paywall_store *store, int down, const char *why, char *note, size_t notelen, int *is_error)
{
    if (down)
        metrics_add(paywall_metrics, PAYWALL_METRIC_STORE_ERRORS, PAYWALL_STORE_POSTGRES, 1);
    if (!paywall_flag_changed(store, &store->pg_down, down) || note[0] != '\0')
        return;
    if (down) {
        snprintf(note, notelen, "PostgreSQL unreachable (%.300s)", why);
        *is_error = 1;
    } else {
        snprintf(note, notelen, "PostgreSQL answers again");
    }
}

PGconn *paywall_pg_acquire(paywall_store *store, char *err, size_t errlen)
{
    PGconn *conn;

    if (store->pg == NULL) {
        snprintf(err, errlen, "no PaywallPostgres configured");
        return NULL;
    }
    conn = pg_pool_acquire(store->pg, err, errlen);
    if (conn == NULL)
        return NULL;
    if (!store->migrated) {
        pg_pool_release(store->pg, conn, 1);
        if (pg_migrate(store->pg, "paywall", paywall_migrations, err, errlen) != 0)
            return NULL;
        store->migrated = 1;
        conn = pg_pool_acquire(store->pg, err, errlen);
    }
    return conn;
}

/* ---------------------------------------------------------------------------------------- entitlements */

/* memcached holds a user's entitlement as text: "<n>\n" then per subscription
 * "<status> <period end> <past_due_since> <cancel_at_period_end> <plan or ->\n". Plan names have no spaces. */
static int paywall_entitlement_encode(const paywall_entitlement *ent, char *out, size_t outlen)
{
    size_t i, used;
    int n = snprintf(out, outlen, "%zu\n", ent->nsubs);

    if (n < 0 || (size_t)n >= outlen)
        return -1;
    used = (size_t)n;
    for (i = 0; i < ent->nsubs; i++) {
        const paywall_subscription *s = &ent->subs[i];
        n = snprintf(out + used, outlen - used, "%s %lld %lld %d %s\n", paywall_sub_status_name(s->status),
                     (long long)s->current_period_end, (long long)s->past_due_since, s->cancel_at_period_end ? 1 : 0,
                     ent->plans[i][0] ? ent->plans[i] : "-");
        if (n < 0 || (size_t)n >= outlen - used)
            return -1;
        used += (size_t)n;
    }
    return (int)used;
}

static int paywall_entitlement_decode(const char *text, paywall_entitlement *ent)
{
    char status[32], plan[PAYWALL_PLAN_MAX + 1];
    long long end, since;
    int cape, consumed;
    size_t i, count;
    const char *p = text;

    memset(ent, 0, sizeof(*ent));
    if (sscanf(p, "%zu\n%n", &count, &consumed) != 1 || count > PAYWALL_ENTITLEMENT_SUBS_MAX)
        return -1;
    p += consumed;
    for (i = 0; i < count; i++) {
        if (sscanf(p, "%31s %lld %lld %d %128s\n%n", status, &end, &since, &cape, plan, &consumed) != 5)
            return -1;
        p += consumed;
        ent->subs[i].status = paywall_sub_status_parse(status, strlen(status));
        ent->subs[i].current_period_end = (time_t)end;
        ent->subs[i].past_due_since = (time_t)since;
        ent->subs[i].cancel_at_period_end = cape != 0;
        if (strcmp(plan, "-") != 0)
            snprintf(ent->plans[i], sizeof(ent->plans[i]), "%s", plan);
    }
    ent->nsubs = count;
    return 0;
}

static size_t paywall_cache_bucket(const char *user, size_t len)
{
    size_t hash = 5381, i;

    for (i = 0; i < len; i++)
        hash = hash * 33 + (unsigned char)user[i];
    return hash % PAYWALL_CACHE_BUCKETS;
}

static long paywall_age_ms(const struct timespec *then)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (long)(now.tv_sec - then->tv_sec) * 1000 + (now.tv_nsec - then->tv_nsec) / 1000000;
}

/* 1 with *ent when this process holds the user's entitlement no older than max_age_ms. */
static int paywall_cache_get(paywall_store *store, const char *user, size_t len, long max_age_ms,
                             paywall_entitlement *ent)
{
    paywall_cached *entry;
    int hit = 0;

    pthread_mutex_lock(&store->cache_lock);
    for (entry = store->cache[paywall_cache_bucket(user, len)]; entry; entry = entry->next) {
        if (entry->user_len == len && memcmp(entry->user, user, len) == 0) {
            if (paywall_age_ms(&entry->fetched) < max_age_ms) {
                *ent = entry->entitlement;
                hit = 1;
            }
            break;
        }
    }
    pthread_mutex_unlock(&store->cache_lock);
    return hit;
}

static void paywall_cache_put(paywall_store *store, const char *user, size_t len, const paywall_entitlement *ent)
{
    paywall_cached *entry, **link;
    size_t bucket = paywall_cache_bucket(user, len), depth = 0;

    entry = calloc(1, sizeof(*entry));
    if (entry == NULL)
        return;
    memcpy(entry->user, user, len);
    entry->user_len = len;
    entry->entitlement = *ent;
    clock_gettime(CLOCK_MONOTONIC, &entry->fetched);
    pthread_mutex_lock(&store->cache_lock);
    for (link = &store->cache[bucket]; *link; link = &(*link)->next) {
        if ((*link)->user_len == len && memcmp((*link)->user, user, len) == 0) {
            paywall_cached *old = *link;
            *link = old->next;
            free(old);
            break;
        }
    }
    entry->next = store->cache[bucket];
    store->cache[bucket] = entry;
    for (link = &store->cache[bucket]; *link; link = &(*link)->next) {
        if (++depth > PAYWALL_CACHE_DEPTH) {
            paywall_cached *old = *link, *next;
            *link = NULL;
            for (; old; old = next) {
                next = old->next;
                free(old);
            }
            break;
        }
    }
    pthread_mutex_unlock(&store->cache_lock);
}

size_t paywall_entitlement_key(const char *user, size_t len, char *out, size_t outlen)
{
    int n = snprintf(out, outlen, "paywall.ent.%.*s", (int)len, user);
    return n > 0 && (size_t)n < outlen ? (size_t)n : 0;
}

/* The subscriptions of a user that can still open something, newest period first. 0, or -1 with err. */
int paywall_entitlement_query(PGconn *conn, const char *user, paywall_entitlement *ent, char *err, size_t errlen)
{
    const char *params[1] = {user};
    PGresult *res;
    int i, rows;

    res = pg_exec(conn,
                  "SELECT status, extract(epoch FROM current_period_end)::bigint,"
                  " coalesce(extract(epoch FROM past_due_since)::bigint, 0), cancel_at_period_end, coalesce(plan, '')"
                  " FROM paywall.subscriptions WHERE user_id = $1"
                  " AND status NOT IN ('canceled', 'incomplete_expired')"
                  " ORDER BY current_period_end DESC LIMIT 8",
                  1, params, NULL, NULL, err, errlen);
    if (res == NULL)
        return -1;
    memset(ent, 0, sizeof(*ent));
    rows = PQntuples(res);
    for (i = 0; i < rows && i < PAYWALL_ENTITLEMENT_SUBS_MAX; i++) {
        const char *status = PQgetvalue(res, i, 0);
        ent->subs[i].status = paywall_sub_status_parse(status, strlen(status));
        ent->subs[i].current_period_end = (time_t)strtoll(PQgetvalue(res, i, 1), NULL, 10);
        ent->subs[i].past_due_since = (time_t)strtoll(PQgetvalue(res, i, 2), NULL, 10);
        ent->subs[i].cancel_at_period_end = PQgetvalue(res, i, 3)[0] == 't';
        snprintf(ent->plans[i], sizeof(ent->plans[i]), "%s", PQgetvalue(res, i, 4));
    }
    ent->nsubs = (size_t)i;
    PQclear(res);
    return 0;
}

/* Overwrites memcached's copy with what PostgreSQL now says: after a webhook changed it, so that no node keeps an
 * older copy another node put back a moment before. */
void paywall_entitlement_publish(paywall_store *store, const char *user, const paywall_entitlement *ent, char *note,
                                 size_t notelen, int *is_error)
{
    char key[PAYWALL_KEY_MAX], value[2048], err[256] = "";
    size_t key_len;
    int len;
    mc_status status;

    paywall_cache_put(store, user, strlen(user), ent);
    if (store->mc == NULL)
        return;
    key_len = paywall_entitlement_key(user, strlen(user), key, sizeof(key));
    len = paywall_entitlement_encode(ent, value, sizeof(value));
    if (key_len == 0 || len < 0)
        return;
    status = mc_set(store->mc, key, key_len, key, key_len, value, (size_t)len, 0, PAYWALL_ENTITLEMENT_MC_TTL, err,
                    sizeof(err));
    if (status == MC_OUTAGE) {
        /* Without the new copy a node may keep the old one until it expires: delete is no better, say so. */
        paywall_note_mc(store, 1, err, note, notelen, is_error);
    }
}

typedef enum { PAYWALL_ENT_FOUND, PAYWALL_ENT_STALE, PAYWALL_ENT_UNAVAILABLE } paywall_ent_status;

static void paywall_count_lookup(paywall_lookup_source source)
{
    metrics_add(paywall_metrics, PAYWALL_METRIC_ENTITLEMENT_LOOKUPS, source, 1);
}

static void paywall_count_latency(paywall_store_kind kind, double started)
{
    metrics_observe_ms(paywall_metrics, PAYWALL_METRIC_STORE_LATENCY, kind, metrics_now_ms() - started);
}

static paywall_ent_status paywall_entitlement_load(paywall_store *store, const char *user, size_t len,
                                                   paywall_entitlement *ent, paywall_result *result)
{
    char key[PAYWALL_KEY_MAX], user_z[PAYWALL_USER_ID_MAX + 1], err[256] = "", value[2048];
    size_t key_len = paywall_entitlement_key(user, len, key, sizeof(key));
    mc_value got;
    mc_status status;
    PGconn *conn;
    double started;
    int len_enc;

    if (store->config.cache_ttl_ms > 0 && paywall_cache_get(store, user, len, store->config.cache_ttl_ms, ent)) {
        paywall_count_lookup(PAYWALL_LOOKUP_PROCESS_CACHE);
        return PAYWALL_ENT_FOUND;
    }
    if (store->mc) {
        started = metrics_now_ms();
        status = mc_get(store->mc, key, key_len, key, key_len, &got, err, sizeof(err));
        paywall_count_latency(PAYWALL_STORE_MEMCACHED, started);
        if (status == MC_OK) {
            int ok = paywall_entitlement_decode(got.data, ent) == 0;
            free(got.data);
            paywall_note_mc(store, 0, "", result->note, sizeof(result->note), &result->note_is_error);
            if (ok) {
                paywall_cache_put(store, user, len, ent);
                paywall_count_lookup(PAYWALL_LOOKUP_MEMCACHED);
                return PAYWALL_ENT_FOUND;
            }
        } else {
            paywall_note_mc(store, status == MC_OUTAGE, err, result->note, sizeof(result->note),
                            &result->note_is_error);
        }
    }
    if (store->pg == NULL) {
        /* memcached alone knows nothing a webhook wrote: nobody is a subscriber. */
        if (store->mc == NULL || !store->mc_down) {
            memset(ent, 0, sizeof(*ent));
            paywall_count_lookup(store->mc ? PAYWALL_LOOKUP_MEMCACHED : PAYWALL_LOOKUP_PROCESS_CACHE);
            return PAYWALL_ENT_FOUND;
        }
    } else {
        memcpy(user_z, user, len);
        user_z[len] = '\0';
        started = metrics_now_ms();
        conn = paywall_pg_acquire(store, err, sizeof(err));
        if (conn) {
            int rc = paywall_entitlement_query(conn, user_z, ent, err, sizeof(err));
            pg_pool_release(store->pg, conn, rc == 0);
            paywall_count_latency(PAYWALL_STORE_POSTGRES, started);
            if (rc == 0) {
                paywall_count_lookup(PAYWALL_LOOKUP_POSTGRES);
                paywall_note_pg(store, 0, "", result->note, sizeof(result->note), &result->note_is_error);
                paywall_cache_put(store, user, len, ent);
                len_enc = paywall_entitlement_encode(ent, value, sizeof(value));
                /* add, not set: a webhook's fresher copy that landed meanwhile must win. */
                if (store->mc && len_enc > 0 && !store->mc_down)
                    mc_add(store->mc, key, key_len, key, key_len, value, (size_t)len_enc, 0, PAYWALL_ENTITLEMENT_MC_TTL,
                           err, sizeof(err));
                return PAYWALL_ENT_FOUND;
            }
        } else {
            /* a connection that could not be made took time too: a connect timeout is what visitors wait for */
            paywall_count_latency(PAYWALL_STORE_POSTGRES, started);
        }
        paywall_note_pg(store, 1, err, result->note, sizeof(result->note), &result->note_is_error);
    }
    if (paywall_cache_get(store, user, len, store->config.max_stale * 1000, ent)) {
        paywall_count_lookup(PAYWALL_LOOKUP_STALE);
        return PAYWALL_ENT_STALE;
    }
    paywall_count_lookup(PAYWALL_LOOKUP_FAILED);
    return PAYWALL_ENT_UNAVAILABLE;
}

/* ---------------------------------------------------------------------------------------------- decisions */

static const paywall_require paywall_require_any = {.any = 1};

static void paywall_result_init(paywall_result *result)
{
    memset(result, 0, sizeof(*result));
    result->access = PAYWALL_ACCESS_DENIED;
    result->meter_remaining = -1;
    result->reason = "no subscription";
}

static const paywall_require *paywall_rules_require(const paywall_rules *rules)
{
    if (rules->require == NULL || (!rules->require->any && rules->require->nplans == 0))
        return &paywall_require_any;
    return rules->require;
}

/* 1 when one of the user's subscriptions opens the location. */
static int paywall_entitlement_grants(const paywall_rules *rules, const paywall_entitlement *ent, time_t now,
                                      paywall_result *result)
{
    size_t i;

    for (i = 0; i < ent->nsubs; i++) {
        paywall_subscription sub = ent->subs[i];
        const char *why;
        sub.plan = ent->plans[i][0] ? ent->plans[i] : NULL;
        if (paywall_access_decide(&sub, paywall_rules_require(rules), rules->grace, now, &why) == PAYWALL_GRANTED) {
            result->access = PAYWALL_ACCESS_GRANTED;
            snprintf(result->plan, sizeof(result->plan), "%s", ent->plans[i]);
            result->reason = why;
            return 1;
        }
        result->reason = why;
    }
    return 0;
}

static int paywall_has_meter(const paywall_rules *rules, const paywall_visit *visit)
{
    int identified = visit->user_id && paywall_user_id_valid(visit->user_id, visit->user_id_len);

    if (rules->meter == NULL || rules->meter->limit == 0)
        return 0;
    return identified || rules->secret != NULL;
}

static void paywall_meter_count(paywall_store *store, const paywall_rules *rules, const paywall_visit *visit,
                                int identified, paywall_result *result);

static int paywall_decide_cached_once(paywall_store *store, const paywall_rules *rules, const paywall_visit *visit,
                                      paywall_result *result)
{
    paywall_entitlement ent;
    int identified = visit->user_id && paywall_user_id_valid(visit->user_id, visit->user_id_len);

    paywall_result_init(result);
    if (rules->crawlers && paywall_crawlers_match(rules->crawlers, visit->client_addr)) {
        result->access = PAYWALL_ACCESS_CRAWLER;
        result->reason = "published crawler range";
        return 1;
    }
    if (identified && store && store->config.cache_ttl_ms > 0 &&
        paywall_cache_get(store, visit->user_id, visit->user_id_len, store->config.cache_ttl_ms, &ent)) {
        paywall_count_lookup(PAYWALL_LOOKUP_PROCESS_CACHE);
        if (paywall_entitlement_grants(rules, &ent, visit->now, result))
            return 1;
        return !paywall_has_meter(rules, visit);
    }
    if (!identified && !paywall_has_meter(rules, visit)) {
        result->reason = visit->user_id ? "invalid user id" : "anonymous";
        return 1;
    }
    /* a new visitor's first view is counted without the store (paywall_meter_count): no thread, no network */
    if (!identified && store != NULL && visit->meter_cookie == NULL) {
        if (visit->user_id)
            result->reason = "invalid user id";
        paywall_meter_count(store, rules, visit, 0, result);
        return 1;
    }
    return 0;
}

int paywall_decide_cached(paywall_store *store, const paywall_rules *rules, const paywall_visit *visit,
                          paywall_result *result)
{
    int decided = paywall_decide_cached_once(store, rules, visit, result);

    /* 0 leaves the decision to paywall_decide, which counts it */
    if (decided)
        metrics_add(paywall_metrics, PAYWALL_METRIC_DECISIONS, result->access, 1);
    return decided;
}

/* The meter: a counter per visitor and period in memcached, shared by every node. */
static void paywall_meter_count(paywall_store *store, const paywall_rules *rules, const paywall_visit *visit,
                                int identified, paywall_result *result)
{
    paywall_meter_visitor visitor;
    char key[PAYWALL_KEY_MAX], hex[PAYWALL_METER_ID_HEX + 1], err[256] = "";
    time_t start, end;
    uint64_t count = 0;
    mc_status status;
    double started;
    int n, tampered = 0, first_view = 0;
    uint64_t initial = 1;

    if (identified) {
        paywall_meter_period(0, rules->meter->period, visit->now, &start, &end);
        n = snprintf(key, sizeof(key), "paywall.meter.u.%.*s.%lld", (int)visit->user_id_len, visit->user_id,
                     (long long)start);
    } else {
        if (visit->meter_cookie != NULL &&
            paywall_meter_cookie_parse(visit->meter_cookie, visit->meter_cookie_len, rules->secret, rules->secret_len,
                                       &visitor) != PAYWALL_METER_COOKIE_OK) {
            /* An edited or foreign cookie (or one signed with a secret since replaced) gets a new id whose count starts
             * used up for this period: editing never earns a free view, and a visitor whose cookie a secret rotation
             * invalidated gets free views again next period. */
            tampered = 1;
            result->reason = "meter cookie refused (bad signature or shape): no free view this period";
        }
        if (visit->meter_cookie == NULL || tampered) {
            if (paywall_meter_visitor_new(&visitor, visit->now) != 0 ||
                paywall_meter_cookie_make(&visitor, rules->secret, rules->secret_len, result->meter_cookie,
                                          sizeof(result->meter_cookie)) == 0) {
                result->meter_cookie[0] = '\0';
                result->reason = "no randomness for a meter id";
                return;
            }
            result->meter_cookie_max_age = PAYWALL_METER_PERIOD_MAX;
            first_view = !tampered;
        }
        paywall_meter_period(visitor.start, rules->meter->period, visit->now, &start, &end);
        paywall_meter_id_hex(&visitor, hex);
        n = snprintf(key, sizeof(key), "paywall.meter.a.%s.%lld", hex, (long long)start);
        /* A new visitor's first view is counted by the cookie alone (its count is 1 by definition), so a client that
         * never returns the cookie, a crawler most often, stores nothing: a memcached item per such request would
         * push sessions out of memcached's LRU. The item appears at the second view, already counting the first one
         * when it falls in the same period. */
        if (visit->meter_cookie != NULL && start == visitor.start)
            initial = 2;
    }
    if (tampered)
        initial = rules->meter->limit + 1;
    if (n <= 0 || (size_t)n >= sizeof(key))
        return;
    if (store->mc == NULL) {
        result->reason = "no PaywallMemcached for the meter";
        return;
    }
    if (first_view) {
        count = 1;
        status = MC_OK;
    } else {
        started = metrics_now_ms();
        status = mc_incr(store->mc, key, (size_t)n, key, (size_t)n, tampered ? initial : 1, initial,
                         end - visit->now + 1, &count, err, sizeof(err));
        paywall_count_latency(PAYWALL_STORE_MEMCACHED, started);
    }
    if (status != MC_OK) {
        paywall_note_mc(store, 1, err, result->note, sizeof(result->note), &result->note_is_error);
        result->meter_remaining = -1;
        if (rules->fail_mode == PAYWALL_FAIL_OPEN) {
            result->access = PAYWALL_ACCESS_METERED;
            result->reason = "meter unavailable: fail mode open";
        } else {
            result->reason = "meter unavailable: fail mode closed";
        }
        return;
    }
    if (!first_view)
        paywall_note_mc(store, 0, "", result->note, sizeof(result->note), &result->note_is_error);
    if (count <= rules->meter->limit) {
        result->access = PAYWALL_ACCESS_METERED;
        result->meter_remaining = (long)(rules->meter->limit - count);
        result->reason = "free view from the meter";
    } else {
        result->access = PAYWALL_ACCESS_DENIED;
        result->meter_remaining = 0;
        result->reason = "meter exhausted";
    }
}

static void paywall_fail_mode_note(paywall_store *store, int failing, paywall_fail_mode mode, paywall_result *result)
{
    /* One note per request: when this one already carries another (PostgreSQL unreachable, say), the change waits for
     * the next request rather than being lost. */
    if (result->note[0] != '\0' || !paywall_flag_changed(store, &store->failing, failing))
        return;
    if (failing) {
        snprintf(result->note, sizeof(result->note),
                 "no store can tell entitlements (memcached and PostgreSQL unreachable): PaywallFailMode %s applies "
                 "until one answers",
                 mode == PAYWALL_FAIL_OPEN ? "open" : "closed");
        result->note_is_error = 1;
    } else {
        snprintf(result->note, sizeof(result->note), "entitlements available again: PaywallFailMode no longer applies");
    }
}

static void paywall_decide_once(paywall_store *store, const paywall_rules *rules, const paywall_visit *visit,
                                paywall_result *result)
{
    paywall_entitlement ent;
    paywall_ent_status status;
    int identified = visit->user_id && paywall_user_id_valid(visit->user_id, visit->user_id_len);

    paywall_result_init(result);
    if (rules->crawlers && paywall_crawlers_match(rules->crawlers, visit->client_addr)) {
        result->access = PAYWALL_ACCESS_CRAWLER;
        result->reason = "published crawler range";
        return;
    }
    if (visit->user_id && !identified)
        result->reason = "invalid user id";
    if (identified) {
        status = paywall_entitlement_load(store, visit->user_id, visit->user_id_len, &ent, result);
        if (status == PAYWALL_ENT_UNAVAILABLE) {
            paywall_fail_mode_note(store, 1, rules->fail_mode, result);
            if (rules->fail_mode == PAYWALL_FAIL_OPEN) {
                result->access = PAYWALL_ACCESS_GRANTED;
                result->reason = "stores unreachable: fail mode open";
                return;
            }
            result->reason = "stores unreachable: fail mode closed";
        } else {
            /* An entitlement memcached still had is no sign PostgreSQL is back: ending the incident on it would
             * log it starting and stopping with every visitor memcached does not know. */
            if (status == PAYWALL_ENT_FOUND && !paywall_store_pg_known_down(store))
                paywall_fail_mode_note(store, 0, rules->fail_mode, result);
            if (paywall_entitlement_grants(rules, &ent, visit->now, result)) {
                if (status == PAYWALL_ENT_STALE)
                    result->reason = "stores unreachable: cached entitlement";
                return;
            }
        }
    }
    if (paywall_has_meter(rules, visit))
        paywall_meter_count(store, rules, visit, identified, result);
}

void paywall_decide(paywall_store *store, const paywall_rules *rules, const paywall_visit *visit,
                    paywall_result *result)
{
    paywall_decide_once(store, rules, visit, result);
    metrics_add(paywall_metrics, PAYWALL_METRIC_DECISIONS, result->access, 1);
}

/* ------------------------------------------------------------------------------------------------- CSRF */

static void paywall_csrf_mac(const unsigned char *secret, size_t secret_len, const char *user, size_t user_len,
                             long long issued, char *out)
{
    unsigned char mac[CRYPTO_SHA256_LEN];
    char msg[PAYWALL_USER_ID_MAX + 64];
    int n = snprintf(msg, sizeof(msg), "paywall-csrf\n%lld\n%.*s", issued, (int)user_len, user);

    crypto_hmac_sha256(secret, secret_len, msg, n > 0 ? (size_t)n : 0, mac);
    crypto_base64url_encode(mac, sizeof(mac), out);
}

size_t paywall_csrf_token(const unsigned char *secret, size_t secret_len, const char *user_id, size_t user_id_len,
                          time_t now, char *out, size_t outlen)
{
    char mac[64];
    int n;

    if (secret == NULL || !paywall_user_id_valid(user_id, user_id_len))
        return 0;
    paywall_csrf_mac(secret, secret_len, user_id, user_id_len, (long long)now, mac);
    n = snprintf(out, outlen, "%lld.%s", (long long)now, mac);
    return n > 0 && (size_t)n < outlen ? (size_t)n : 0;
}

int paywall_csrf_check(const unsigned char *secret, size_t secret_len, const char *user_id, size_t user_id_len,
                       const char *token, size_t token_len, time_t now)
{
    char mac[64];
    const char *dot;
    long long issued = 0;
    size_t i, digits;

    if (secret == NULL || token == NULL || !paywall_user_id_valid(user_id, user_id_len) || token_len > 80)
        return 0;
    dot = memchr(token, '.', token_len);
    if (dot == NULL)
        return 0;
    digits = (size_t)(dot - token);
    if (digits == 0 || digits > 12)
        return 0;
    for (i = 0; i < digits; i++) {
        if (!isdigit((unsigned char)token[i]))
            return 0;
        issued = issued * 10 + (token[i] - '0');
    }
    if (issued > (long long)now + 300 || (long long)now - issued > PAYWALL_CSRF_LIFETIME)
        return 0;
    paywall_csrf_mac(secret, secret_len, user_id, user_id_len, issued, mac);
    return token_len - digits - 1 == strlen(mac) && crypto_equal_consttime(dot + 1, mac, strlen(mac));
}
