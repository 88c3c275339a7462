#include "session_shared.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cookie.h"
#include "crypto.h"
#include "req.h"

#define SESSION_SHARED_META_TTL      (60 * 60 * 24 * 30)
#define SESSION_SHARED_LOCK_TTL      30
#define SESSION_SHARED_LOCK_WAIT_MS  2000
#define SESSION_SHARED_PURGE_EVERY   60
#define SESSION_SHARED_PURGE_BATCH   "1000"
#define SESSION_SHARED_KEY_MAX       (COOKIE_SESSION_ID_MAX + 128)
#define SESSION_SHARED_CACHE_BUCKETS 4096
#define SESSION_SHARED_CACHE_DEPTH   4 /* entries a bucket keeps: bounds the cache to 16384 sessions a process */

typedef struct session_shared_cached session_shared_cached;
struct session_shared_cached {
    session_shared_cached *next;
    char *id;
    size_t id_len;
    char *data;
    size_t len;
    time_t created;
    time_t last_access;
    struct timespec expires;
};

struct session_shared_store {
    session_shared_store *next;
    session_shared_store_config config;
    mc_cluster *mc;
    pg_pool *pg;
    pthread_mutex_t lock;
    int mc_down;      /* an outage was logged and has not been seen to end */
    int mc_node_lost; /* the loss of one node was logged and has not been seen to end */
    int pg_down;
    time_t next_purge;
    pthread_mutex_t cache_lock;
    session_shared_cached **cache; /* NULL when cache_ttl_ms is 0 */
};

static pthread_mutex_t session_shared_stores_lock = PTHREAD_MUTEX_INITIALIZER;
static session_shared_store *session_shared_stores;

/* ------------------------------------------------------------------------------------------------- metrics */

static void session_shared_count_call(session_shared_store_kind kind, double started, int failed)
{
    metrics_observe_ms(session_shared_metrics, SESSION_SHARED_METRIC_STORE_LATENCY, kind, metrics_now_ms() - started);
    if (failed)
        metrics_add(session_shared_metrics, SESSION_SHARED_METRIC_STORE_ERRORS, kind, 1);
}

static void session_shared_count_load(session_shared_load_result result)
{
    metrics_add(session_shared_metrics, SESSION_SHARED_METRIC_LOADS, result, 1);
}

static int session_shared_count_save(int rc)
{
    metrics_add(session_shared_metrics, SESSION_SHARED_METRIC_SAVES,
                rc == 0 ? SESSION_SHARED_SAVE_OK : SESSION_SHARED_SAVE_FAILED, 1);
    return rc;
}

/* ------------------------------------------------------------------------------------------- directive values */

const char *session_shared_parse_format(const char *value, phpser_format *out)
{
    if (strcmp(value, "php") == 0)
        *out = PHPSER_FORMAT_PHP;
    else if (strcmp(value, "php_binary") == 0)
        *out = PHPSER_FORMAT_PHP_BINARY;
    else if (strcmp(value, "php_serialize") == 0)
        *out = PHPSER_FORMAT_PHP_SERIALIZE;
    else
        return "must be php, php_binary or php_serialize";
    return NULL;
}

const char *session_shared_parse_seconds(const char *value, long *out)
{
    char *end;
    long seconds;

    errno = 0;
    seconds = strtol(value, &end, 10);
    if (errno != 0 || end == value || *end != '\0' || seconds < 0 || seconds > 60L * 60 * 24 * 3650)
        return "must be a number of seconds from 0 to 315360000";
    *out = seconds;
    return NULL;
}

const char *session_shared_parse_milliseconds(const char *value, long *out)
{
    char *end;
    long n;

    errno = 0;
    n = strtol(value, &end, 10);
    if (errno != 0 || end == value || n < 0)
        return "must be a time such as 500ms or 1s (a bare number is milliseconds), at most 60s";
    if (strcmp(end, "s") == 0)
        n *= 1000;
    else if (*end != '\0' && strcmp(end, "ms") != 0)
        return "must be a time such as 500ms or 1s (a bare number is milliseconds), at most 60s";
    if (n > 60000)
        return "must be a time such as 500ms or 1s (a bare number is milliseconds), at most 60s";
    *out = n;
    return NULL;
}

const char *session_shared_parse_replicas(const char *value, unsigned *out)
{
    char *end;
    long n = strtol(value, &end, 10);

    if (end == value || *end != '\0' || n < 0 || n > 16)
        return "must be a number of replicas from 0 to 16";
    *out = (unsigned)n;
    return NULL;
}

static int session_shared_cookie_token_ok(const char *value)
{
    const char *p;

    if (*value == '\0')
        return 0;
    for (p = value; *p; p++)
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f || strchr(";,\"\\", *p))
            return 0;
    return 1;
}

const char *session_shared_parse_cookie_attr(session_shared_cookie *cookie, const char *attr)
{
    const char *value = strchr(attr, '=');
    size_t name_len;

    if (value == NULL)
        return "must be name=value (path, domain, secure, httponly, samesite)";
    name_len = (size_t)(value - attr);
    value++;
    if (name_len == 4 && strncasecmp(attr, "path", 4) == 0) {
        if (value[0] != '/' || !session_shared_cookie_token_ok(value))
            return "path must start with / and hold no space, comma, semicolon or quote";
        cookie->path = value;
    } else if (name_len == 6 && strncasecmp(attr, "domain", 6) == 0) {
        if (!session_shared_cookie_token_ok(value))
            return "domain holds a character a cookie cannot carry";
        cookie->domain = value;
    } else if (name_len == 6 && strncasecmp(attr, "secure", 6) == 0) {
        if (strcasecmp(value, "on") == 0)
            cookie->secure = SESSION_SHARED_SECURE_ON;
        else if (strcasecmp(value, "off") == 0)
            cookie->secure = SESSION_SHARED_SECURE_OFF;
        else if (strcasecmp(value, "auto") == 0)
            cookie->secure = SESSION_SHARED_SECURE_AUTO;
        else
            return "secure must be on, off or auto";
    } else if (name_len == 8 && strncasecmp(attr, "httponly", 8) == 0) {
        if (strcasecmp(value, "on") == 0)
            cookie->httponly = 1;
        else if (strcasecmp(value, "off") == 0)
            cookie->httponly = 0;
        else
            return "httponly must be on or off";
    } else if (name_len == 8 && strncasecmp(attr, "samesite", 8) == 0) {
        if (strcasecmp(value, "Strict") == 0)
            cookie->samesite = "Strict";
        else if (strcasecmp(value, "Lax") == 0)
            cookie->samesite = "Lax";
        else if (strcasecmp(value, "None") == 0)
            cookie->samesite = "None";
        else
            return "samesite must be Strict, Lax or None";
    } else {
        return "unknown cookie attribute (path, domain, secure, httponly, samesite)";
    }
    return NULL;
}

const char *session_shared_check_memcached(const char *servers)
{
    mc_config config = {0};
    mc_cluster *cluster;
    static __thread char err[256];

    config.servers = servers;
    cluster = mc_cluster_create(&config, err, sizeof(err));
    if (cluster == NULL)
        return err;
    mc_cluster_destroy(cluster);
    return NULL;
}

/* ------------------------------------------------------------------------------------------------- stores */

static int session_shared_same_text(const char *a, const char *b)
{
    return a == b || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* Whether a configuration is served by this store: compared field by field, as it runs on every request. */
static int session_shared_store_serves(const session_shared_store *store, const session_shared_store_config *config)
{
    const session_shared_store_config *own = &store->config;

    return own->replicas == config->replicas && own->format == config->format &&
           own->idle_timeout == config->idle_timeout && own->absolute_timeout == config->absolute_timeout &&
           own->cache_ttl_ms == config->cache_ttl_ms && session_shared_same_text(own->memcached, config->memcached) &&
           session_shared_same_text(own->prefix, config->prefix) &&
           session_shared_same_text(own->postgres, config->postgres);
}

static void session_shared_cached_free(session_shared_cached *entry)
{
    free(entry->id);
    free(entry->data);
    free(entry);
}

static void session_shared_store_free(session_shared_store *store)
{
    size_t i;
    session_shared_cached *entry, *next;

    if (store == NULL)
        return;
    if (store->cache) {
        for (i = 0; i < SESSION_SHARED_CACHE_BUCKETS; i++)
            for (entry = store->cache[i]; entry; entry = next) {
                next = entry->next;
                session_shared_cached_free(entry);
            }
        free(store->cache);
    }
    pthread_mutex_destroy(&store->cache_lock);
    mc_cluster_destroy(store->mc);
    pg_pool_destroy(store->pg);
    free((char *)store->config.memcached);
    free((char *)store->config.postgres);
    free((char *)store->config.prefix);
    pthread_mutex_destroy(&store->lock);
    free(store);
}

static session_shared_store *session_shared_store_open(const session_shared_store_config *config, char *err,
                                                       size_t errlen)
{
    session_shared_store *store = calloc(1, sizeof(*store));
    mc_config mc = {0};
    pg_config pg = {0};

    if (store == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&store->lock, NULL);
    pthread_mutex_init(&store->cache_lock, NULL);
    store->config = *config;
    store->config.memcached = strdup(config->memcached);
    store->config.postgres = config->postgres ? strdup(config->postgres) : NULL;
    store->config.prefix = strdup(config->prefix);
    if (!store->config.memcached || !store->config.prefix || (config->postgres && !store->config.postgres)) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (config->cache_ttl_ms > 0) {
        store->cache = calloc(SESSION_SHARED_CACHE_BUCKETS, sizeof(*store->cache));
        if (store->cache == NULL) {
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
    }
    mc.servers = config->memcached;
    mc.replicas = config->replicas;
    store->mc = mc_cluster_create(&mc, err, errlen);
    if (store->mc == NULL)
        goto fail;
    if (config->postgres) {
        pg.conninfo = config->postgres;
        store->pg = pg_pool_create(&pg, err, errlen);
        if (store->pg == NULL)
            goto fail;
        /* A database that is down now must not keep sessions from working: migrate later, on first use. */
        if (pg_migrate(store->pg, "session_shared", session_shared_migrations, err, errlen) != 0)
            store->pg_down = 1;
    }
    return store;

fail:
    session_shared_store_free(store);
    return NULL;
}

session_shared_store *session_shared_store_get(const session_shared_store_config *config, char *err, size_t errlen)
{
    session_shared_store *store;

    pthread_mutex_lock(&session_shared_stores_lock);
    for (store = session_shared_stores; store; store = store->next)
        if (session_shared_store_serves(store, config))
            break;
    if (store == NULL) {
        store = session_shared_store_open(config, err, errlen);
        if (store) {
            store->next = session_shared_stores;
            session_shared_stores = store;
        }
    }
    pthread_mutex_unlock(&session_shared_stores_lock);
    return store;
}

session_shared_store *session_shared_store_find(const session_shared_store_config *config)
{
    session_shared_store *store;

    pthread_mutex_lock(&session_shared_stores_lock);
    for (store = session_shared_stores; store; store = store->next)
        if (session_shared_store_serves(store, config))
            break;
    pthread_mutex_unlock(&session_shared_stores_lock);
    return store;
}

void session_shared_stores_close_all(void)
{
    session_shared_store *store, *next;

    pthread_mutex_lock(&session_shared_stores_lock);
    for (store = session_shared_stores; store; store = next) {
        next = store->next;
        session_shared_store_free(store);
    }
    session_shared_stores = NULL;
    pthread_mutex_unlock(&session_shared_stores_lock);
}

/* Outages are logged when they start and when they end, not once per request: *flag remembers the state. */
static int session_shared_outage_changed(session_shared_store *store, int *flag, int down, char *note, size_t notelen,
                                         int *is_error)
{
    int changed;

    pthread_mutex_lock(&store->lock);
    changed = *flag != down;
    __atomic_store_n(flag, down, __ATOMIC_RELAXED); /* read without the lock by the node notes */
    pthread_mutex_unlock(&store->lock);
    if (!changed || notelen == 0 || note[0] != '\0')
        return 0;
    if (down && is_error)
        *is_error = 1;
    return 1;
}

static void session_shared_note_mc(session_shared_store *store, int down, const char *why, char *note, size_t notelen,
                                   int *is_error)
{
    if (!session_shared_outage_changed(store, &store->mc_down, down, note, notelen, is_error))
        return;
    if (down)
        snprintf(note, notelen, "memcached \"%s\" unreachable (%.300s): using the surviving copies%s",
                 store->config.memcached, why, store->pg ? " and PostgreSQL" : "");
    else
        snprintf(note, notelen, "memcached \"%s\" answers again", store->config.memcached);
}

/* After an answer from the cluster: whether it came without one of its nodes (core/mc.c goes around a dead node as
 * php-memcached does, so the operation itself succeeds and says nothing). */
static void session_shared_note_mc_node(session_shared_store *store, char *note, size_t notelen, int *is_error)
{
    char why[256] = "";
    int lost = mc_cluster_degraded(store->mc, why, sizeof(why));

    /* every read asks: the common answer, nothing changed, takes no lock */
    if (lost == __atomic_load_n(&store->mc_node_lost, __ATOMIC_RELAXED) || note[0] != '\0' ||
        !session_shared_outage_changed(store, &store->mc_node_lost, lost, note, notelen, is_error))
        return;
    if (lost)
        snprintf(note, notelen,
                 "a node of memcached \"%s\" is unreachable (%.300s): its keys go to the next node of the ring, "
                 "sessions it held are read from their copies%s",
                 store->config.memcached, why, store->pg ? " and PostgreSQL" : "");
    else
        snprintf(note, notelen, "every node of memcached \"%s\" answers again", store->config.memcached);
}

static void session_shared_note_pg(session_shared_store *store, int down, const char *why, char *note, size_t notelen,
                                   int *is_error)
{
    if (!session_shared_outage_changed(store, &store->pg_down, down, note, notelen, is_error))
        return;
    if (down)
        snprintf(note, notelen, "PostgreSQL unreachable (%.300s): sessions kept in memcached only until it is back",
                 why);
    else
        snprintf(note, notelen, "PostgreSQL answers again");
}

/* ----------------------------------------------------------------------------------------------- keys, meta */

typedef struct {
    char data[SESSION_SHARED_KEY_MAX];
    size_t data_len;
    char meta[SESSION_SHARED_KEY_MAX];
    size_t meta_len;
    char lock_hash[SESSION_SHARED_KEY_MAX];
    size_t lock_hash_len;
    char lock[SESSION_SHARED_KEY_MAX];
    size_t lock_len;
} session_shared_keys;

static int session_shared_keys_make(const session_shared_store *store, const char *id, size_t id_len,
                                    session_shared_keys *keys)
{
    const char *prefix = store->config.prefix;
    int n;

    if (id_len > COOKIE_SESSION_ID_MAX)
        return -1;
    /* php-memcached hashes the bare id and stores prefix + id; its lock is "lock." + id under the same prefix. */
    n = snprintf(keys->data, sizeof(keys->data), "%s%.*s", prefix, (int)id_len, id);
    keys->data_len = (size_t)n;
    n = snprintf(keys->meta, sizeof(keys->meta), "%smeta.%.*s", prefix, (int)id_len, id);
    keys->meta_len = (size_t)n;
    n = snprintf(keys->lock_hash, sizeof(keys->lock_hash), "lock.%.*s", (int)id_len, id);
    keys->lock_hash_len = (size_t)n;
    n = snprintf(keys->lock, sizeof(keys->lock), "%slock.%.*s", prefix, (int)id_len, id);
    keys->lock_len = (size_t)n;
    /* memcached keys are at most 250 bytes */
    return keys->data_len <= 250 && keys->meta_len <= 250 && keys->lock_len <= 250 ? 0 : -1;
}

/* Which version of the data PostgreSQL holds, kept in the meta item: a change PHP made behind the module's back
 * is copied at the next read on any server even if the copy after that response missed it. FNV-1a, 64 bits:
 * a fingerprint, not a defence (nothing here is secret or chosen against us). */
static unsigned long long session_shared_fingerprint(const char *data, size_t len)
{
    return crypto_fnv1a64(data, len);
}

typedef struct {
    time_t created;
    time_t last_access;
    unsigned long long durable; /* fingerprint of the data PostgreSQL has; 0 when unknown */
} session_shared_meta;

static int session_shared_meta_parse(const mc_value *value, session_shared_meta *meta)
{
    long long c, a;
    unsigned long long durable = 0;
    int n = sscanf(value->data, "%lld %lld %llx", &c, &a, &durable);

    if (n < 2 || c <= 0 || a < c)
        return -1;
    meta->created = (time_t)c;
    meta->last_access = (time_t)a;
    meta->durable = n == 3 ? durable : 0;
    return 0;
}

static mc_status session_shared_meta_write(session_shared_store *store, const char *id, size_t id_len,
                                           const session_shared_keys *keys, time_t created, time_t last_access,
                                           unsigned long long durable)
{
    char meta[80], err[256];
    int n = snprintf(meta, sizeof(meta), "%lld %lld %llx", (long long)created, (long long)last_access, durable);

    return mc_set(store->mc, id, id_len, keys->meta, keys->meta_len, meta, (size_t)n, 0, SESSION_SHARED_META_TTL, err,
                  sizeof(err));
}

static time_t session_shared_data_ttl(const session_shared_store *store)
{
    long ttl = store->config.idle_timeout;

    if (store->config.absolute_timeout && (ttl == 0 || store->config.absolute_timeout < ttl))
        ttl = store->config.absolute_timeout;
    return (time_t)ttl;
}

/* How stale the recorded last access may get before it is written again: a write on every request would make
 * each page view a store write; this bounds the idle timeout's error to a tenth of it. */
static time_t session_shared_touch_interval(const session_shared_store *store)
{
    time_t interval = store->config.idle_timeout / 10;

    if (interval < 1)
        interval = 1;
    if (interval > 60)
        interval = 60;
    return interval;
}

/* ------------------------------------------------------------------------------------------------- postgres */

static PGconn *session_shared_pg_acquire(session_shared_store *store, char *note, size_t notelen, int *is_error)
{
    char err[512];
    double started = metrics_now_ms();
    PGconn *conn = pg_pool_acquire(store->pg, err, sizeof(err));

    if (conn == NULL) {
        session_shared_count_call(SESSION_SHARED_STORE_POSTGRES, started, 1);
        session_shared_note_pg(store, 1, err, note, notelen, is_error);
        return NULL;
    }
    if (store->pg_down) {
        /* Back after an outage, or never migrated: make sure the schema is there before using it. */
        pg_pool_release(store->pg, conn, 1);
        if (pg_migrate(store->pg, "session_shared", session_shared_migrations, err, sizeof(err)) != 0) {
            session_shared_note_pg(store, 1, err, note, notelen, is_error);
            return NULL;
        }
        session_shared_note_pg(store, 0, NULL, note, notelen, is_error);
        conn = pg_pool_acquire(store->pg, err, sizeof(err));
    }
    return conn;
}

static void session_shared_pg_done(session_shared_store *store, PGconn *conn, int ok, const char *err, char *note,
                                   size_t notelen, int *is_error)
{
    pg_pool_release(store->pg, conn, ok);
    if (!ok)
        session_shared_note_pg(store, 1, err, note, notelen, is_error);
}

static int session_shared_pg_read(session_shared_store *store, const char *id, size_t id_len,
                                  session_shared_record *record)
{
    char err[512], idbuf[COOKIE_SESSION_ID_MAX + 1];
    const char *params[1] = {idbuf};
    PGconn *conn;
    PGresult *res;
    double started;
    int found = 0;

    conn = session_shared_pg_acquire(store, record->note, sizeof(record->note), &record->note_is_error);
    if (conn == NULL)
        return -1;
    snprintf(idbuf, sizeof(idbuf), "%.*s", (int)id_len, id);
    started = metrics_now_ms();
    res = pg_exec(conn,
                  "SELECT data, extract(epoch FROM created_at)::bigint, extract(epoch FROM last_access)::bigint "
                  "FROM session_shared.sessions WHERE id = $1",
                  1, params, NULL, NULL, err, sizeof(err));
    session_shared_count_call(SESSION_SHARED_STORE_POSTGRES, started, res == NULL);
    if (res == NULL) {
        session_shared_pg_done(store, conn, 0, err, record->note, sizeof(record->note), &record->note_is_error);
        return -1;
    }
    if (PQntuples(res) == 1) {
        size_t len;
        unsigned char *bytes = PQunescapeBytea((const unsigned char *)PQgetvalue(res, 0, 0), &len);
        if (bytes != NULL) {
            record->data = malloc(len + 1);
            if (record->data) {
                memcpy(record->data, bytes, len);
                record->data[len] = '\0';
                record->len = len;
                record->created = (time_t)strtoll(PQgetvalue(res, 0, 1), NULL, 10);
                record->last_access = (time_t)strtoll(PQgetvalue(res, 0, 2), NULL, 10);
                found = 1;
            }
            PQfreemem(bytes);
        }
    }
    PQclear(res);
    session_shared_pg_done(store, conn, 1, NULL, record->note, sizeof(record->note), &record->note_is_error);
    return found;
}

static int session_shared_pg_write(session_shared_store *store, const char *id, size_t id_len, const char *data,
                                   size_t len, time_t created, time_t last_access, char *note, size_t notelen,
                                   int *is_error)
{
    char err[512], idbuf[COOKIE_SESSION_ID_MAX + 1], created_s[24], access_s[24];
    const char *params[4] = {idbuf, data, created_s, access_s};
    int lengths[4] = {0, (int)len, 0, 0};
    int formats[4] = {0, 1, 0, 0};
    PGconn *conn;
    PGresult *res;
    double started;

    conn = session_shared_pg_acquire(store, note, notelen, is_error);
    if (conn == NULL)
        return -1;
    snprintf(idbuf, sizeof(idbuf), "%.*s", (int)id_len, id);
    snprintf(created_s, sizeof(created_s), "%lld", (long long)created);
    snprintf(access_s, sizeof(access_s), "%lld", (long long)last_access);
    started = metrics_now_ms();
    res = pg_exec(conn,
                  "INSERT INTO session_shared.sessions (id, data, created_at, last_access, updated_at) "
                  "VALUES ($1, $2, to_timestamp($3), to_timestamp($4), now()) "
                  "ON CONFLICT (id) DO UPDATE SET data = EXCLUDED.data, last_access = EXCLUDED.last_access, "
                  "updated_at = now()",
                  4, params, lengths, formats, err, sizeof(err));
    session_shared_count_call(SESSION_SHARED_STORE_POSTGRES, started, res == NULL);
    session_shared_pg_done(store, conn, res != NULL, err, note, notelen, is_error);
    if (res == NULL)
        return -1;
    PQclear(res);
    return 0;
}

static void session_shared_pg_simple(session_shared_store *store, const char *sql, const char *id, size_t id_len,
                                     const char *arg, char *note, size_t notelen, int *is_error)
{
    char err[512], idbuf[COOKIE_SESSION_ID_MAX + 1];
    const char *params[2] = {idbuf, arg};
    PGconn *conn = session_shared_pg_acquire(store, note, notelen, is_error);
    PGresult *res;
    double started;

    if (conn == NULL)
        return;
    snprintf(idbuf, sizeof(idbuf), "%.*s", (int)id_len, id);
    started = metrics_now_ms();
    res = pg_exec(conn, sql, arg ? 2 : 1, params, NULL, NULL, err, sizeof(err));
    session_shared_count_call(SESSION_SHARED_STORE_POSTGRES, started, res == NULL);
    session_shared_pg_done(store, conn, res != NULL, err, note, notelen, is_error);
    PQclear(res);
}

static void session_shared_pg_purge(session_shared_store *store, time_t now, char *note, size_t notelen)
{
    char err[512], idle[24], absolute[24];
    const char *params[2] = {idle, absolute};
    PGconn *conn;
    PGresult *res;
    double started;
    int due;

    pthread_mutex_lock(&store->lock);
    due = now >= store->next_purge;
    if (due)
        store->next_purge = now + SESSION_SHARED_PURGE_EVERY + (rand() % 10);
    pthread_mutex_unlock(&store->lock);
    if (!due || (store->config.idle_timeout == 0 && store->config.absolute_timeout == 0))
        return;
    conn = session_shared_pg_acquire(store, note, notelen, NULL);
    if (conn == NULL)
        return;
    snprintf(idle, sizeof(idle), "%ld", store->config.idle_timeout ? store->config.idle_timeout : 0x7fffffffL);
    snprintf(absolute, sizeof(absolute), "%ld",
             store->config.absolute_timeout ? store->config.absolute_timeout : 0x7fffffffL);
    started = metrics_now_ms();
    /* Batched, so a backlog never holds a long lock; several nodes purging at once only share the work. */
    res = pg_exec(conn,
                  "DELETE FROM session_shared.sessions WHERE id IN (SELECT id FROM session_shared.sessions "
                  "WHERE last_access < now() - make_interval(secs => $1::bigint) "
                  "OR created_at < now() - make_interval(secs => $2::bigint) LIMIT " SESSION_SHARED_PURGE_BATCH
                  " FOR UPDATE SKIP LOCKED)",
                  2, params, NULL, NULL, err, sizeof(err));
    session_shared_count_call(SESSION_SHARED_STORE_POSTGRES, started, res == NULL);
    session_shared_pg_done(store, conn, res != NULL, err, note, notelen, NULL);
    PQclear(res);
}

/* ---------------------------------------------------------------------------------------------- the cache */

static int session_shared_timed_out(const session_shared_store *store, time_t created, time_t last_access, time_t now)
{
    if (store->config.idle_timeout && now - last_access >= store->config.idle_timeout)
        return 1;
    if (store->config.absolute_timeout && now - created >= store->config.absolute_timeout)
        return 1;
    return 0;
}

static size_t session_shared_cache_bucket(const char *id, size_t id_len)
{
    size_t hash = 5381, i;

    for (i = 0; i < id_len; i++)
        hash = hash * 33 + (unsigned char)id[i];
    return hash % SESSION_SHARED_CACHE_BUCKETS;
}

static int session_shared_time_before(const struct timespec *a, const struct timespec *b)
{
    return a->tv_sec < b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

int session_shared_cache_lookup(session_shared_store *store, const char *id, size_t id_len,
                                session_shared_record *record)
{
    session_shared_cached *entry;
    struct timespec now;
    char err[128];
    int hit = 0;

    memset(record, 0, sizeof(*record));
    if (store->cache == NULL)
        return 0;
    clock_gettime(CLOCK_MONOTONIC, &now);
    pthread_mutex_lock(&store->cache_lock);
    for (entry = store->cache[session_shared_cache_bucket(id, id_len)]; entry; entry = entry->next) {
        if (entry->id_len != id_len || memcmp(entry->id, id, id_len) != 0)
            continue;
        if (session_shared_time_before(&now, &entry->expires) &&
            !session_shared_timed_out(store, entry->created, entry->last_access, time(NULL))) {
            record->data = malloc(entry->len + 1);
            if (record->data) {
                memcpy(record->data, entry->data, entry->len + 1);
                record->len = entry->len;
                record->created = entry->created;
                record->last_access = entry->last_access;
                hit = 1;
            }
        }
        break;
    }
    pthread_mutex_unlock(&store->cache_lock);
    if (!hit)
        return 0;
    if (phpser_session_decode(store->config.format, record->data, record->len, &record->session, err, sizeof(err)) != 0)
        record->session = NULL;
    record->state = SESSION_SHARED_FOUND;
    record->source = "cache";
    session_shared_count_load(SESSION_SHARED_LOAD_CACHE_HIT);
    return 1;
}

static void session_shared_cache_unlink(session_shared_store *store, size_t bucket, const char *id, size_t id_len)
{
    session_shared_cached **link, *entry;

    for (link = &store->cache[bucket]; (entry = *link) != NULL; link = &entry->next) {
        if (entry->id_len == id_len && memcmp(entry->id, id, id_len) == 0) {
            *link = entry->next;
            session_shared_cached_free(entry);
            return;
        }
    }
}

void session_shared_cache_forget(session_shared_store *store, const char *id, size_t id_len)
{
    if (store == NULL || store->cache == NULL)
        return;
    pthread_mutex_lock(&store->cache_lock);
    session_shared_cache_unlink(store, session_shared_cache_bucket(id, id_len), id, id_len);
    pthread_mutex_unlock(&store->cache_lock);
}

static void session_shared_cache_store(session_shared_store *store, const char *id, size_t id_len,
                                       const session_shared_record *record)
{
    session_shared_cached *entry, **link;
    size_t bucket, depth = 0;

    if (store->cache == NULL || record->data == NULL)
        return;
    entry = calloc(1, sizeof(*entry));
    if (entry == NULL)
        return;
    entry->id = malloc(id_len + 1);
    entry->data = malloc(record->len + 1);
    if (entry->id == NULL || entry->data == NULL) {
        session_shared_cached_free(entry);
        return;
    }
    memcpy(entry->id, id, id_len);
    entry->id[id_len] = '\0';
    entry->id_len = id_len;
    memcpy(entry->data, record->data, record->len);
    entry->data[record->len] = '\0';
    entry->len = record->len;
    entry->created = record->created;
    entry->last_access = record->last_access;
    clock_gettime(CLOCK_MONOTONIC, &entry->expires);
    entry->expires.tv_sec += store->config.cache_ttl_ms / 1000;
    entry->expires.tv_nsec += (store->config.cache_ttl_ms % 1000) * 1000000L;
    if (entry->expires.tv_nsec >= 1000000000L) {
        entry->expires.tv_sec++;
        entry->expires.tv_nsec -= 1000000000L;
    }

    bucket = session_shared_cache_bucket(id, id_len);
    pthread_mutex_lock(&store->cache_lock);
    session_shared_cache_unlink(store, bucket, id, id_len);
    entry->next = store->cache[bucket];
    store->cache[bucket] = entry;
    /* Newest first: past the depth, the oldest go. */
    for (link = &store->cache[bucket]; *link; link = &(*link)->next) {
        if (++depth > SESSION_SHARED_CACHE_DEPTH) {
            session_shared_cached *old = *link, *next;
            *link = NULL;
            for (; old; old = next) {
                next = old->next;
                session_shared_cached_free(old);
            }
            break;
        }
    }
    pthread_mutex_unlock(&store->cache_lock);
}

/* ------------------------------------------------------------------------------------------------ sessions */

void session_shared_record_clear(session_shared_record *record)
{
    free(record->data);
    phpser_session_free(record->session);
    memset(record, 0, sizeof(*record));
}

static void session_shared_forget(session_shared_store *store, const char *id, size_t id_len,
                                  const session_shared_keys *keys, char *note, size_t notelen, int *is_error)
{
    char err[256];

    session_shared_cache_forget(store, id, id_len);
    mc_delete(store->mc, id, id_len, keys->data, keys->data_len, err, sizeof(err));
    mc_delete(store->mc, id, id_len, keys->meta, keys->meta_len, err, sizeof(err));
    if (store->pg)
        session_shared_pg_simple(store, "DELETE FROM session_shared.sessions WHERE id = $1", id, id_len, NULL, note,
                                 notelen, is_error);
}

/* Reads the session data from the ring, then from any node, then from PostgreSQL. Returns 1 found, 0 none,
 * -1 when nothing could answer. *from_ring tells whether the ring already holds it where PHP will look. */
static int session_shared_read_data(session_shared_store *store, const char *id, size_t id_len,
                                    const session_shared_keys *keys, session_shared_record *record, int *from_ring,
                                    mc_value *meta)
{
    char err[256];
    mc_value value;
    mc_status status;
    double started;
    int answered = 0, found;

    *from_ring = 0;
    /* The data and its meta hash alike, so one round trip to one node answers both. */
    started = metrics_now_ms();
    status = mc_get2(store->mc, id, id_len, keys->data, keys->data_len, keys->meta, keys->meta_len, &value, meta, err,
                     sizeof(err));
    session_shared_count_call(SESSION_SHARED_STORE_MEMCACHED, started, status == MC_OUTAGE);
    if (status == MC_OK) {
        session_shared_note_mc(store, 0, NULL, record->note, sizeof(record->note), &record->note_is_error);
        session_shared_note_mc_node(store, record->note, sizeof(record->note), &record->note_is_error);
        char conv_err[128];
        size_t len;
        char *plain = value.flags
                          ? phpser_memcached_value(value.flags, value.data, value.len, &len, conv_err, sizeof(conv_err))
                          : NULL;
        if (plain) {
            free(value.data);
            value.data = plain;
            value.len = len;
        }
        record->data = value.data;
        record->len = value.len;
        record->source = "memcached";
        *from_ring = 1;
        return 1;
    }
    if (status == MC_OUTAGE)
        session_shared_note_mc(store, 1, err, record->note, sizeof(record->note), &record->note_is_error);
    else
        answered = 1;
    if (answered)
        session_shared_note_mc_node(store, record->note, sizeof(record->note), &record->note_is_error);

    /* A node that died or restarted leaves the ring; a copy may still be on a replica. */
    started = metrics_now_ms();
    status = mc_get_any_node(store->mc, keys->data, keys->data_len, &value, err, sizeof(err));
    session_shared_count_call(SESSION_SHARED_STORE_MEMCACHED, started, status == MC_OUTAGE);
    if (status == MC_OK) {
        record->data = value.data;
        record->len = value.len;
        record->source = "memcached replica";
        return 1;
    }
    if (status == MC_MISS)
        answered = 1;

    if (store->pg) {
        found = session_shared_pg_read(store, id, id_len, record);
        if (found == 1) {
            record->source = "postgresql";
            return 1;
        }
        if (found == 0)
            answered = 1;
    }
    return answered ? 0 : -1;
}

void session_shared_load(session_shared_store *store, const char *id, size_t id_len, time_t now,
                         session_shared_record *record)
{
    session_shared_keys keys;
    char err[256], decode_err[256];
    mc_value meta = {0};
    session_shared_meta parsed;
    unsigned long long durable = 0, fingerprint;
    int from_ring = 0, found, have_meta = 0;

    memset(record, 0, sizeof(*record));
    if (session_shared_keys_make(store, id, id_len, &keys) != 0) {
        record->state = SESSION_SHARED_NONE;
        session_shared_count_load(SESSION_SHARED_LOAD_MISS);
        return;
    }
    found = session_shared_read_data(store, id, id_len, &keys, record, &from_ring, &meta);
    if (found <= 0) {
        free(meta.data);
        meta.data = NULL;
    }
    if (found < 0) {
        record->state = SESSION_SHARED_UNAVAILABLE;
        session_shared_count_load(SESSION_SHARED_LOAD_UNAVAILABLE);
        return;
    }
    if (found == 0) {
        record->state = SESSION_SHARED_NONE;
        session_shared_count_load(SESSION_SHARED_LOAD_MISS);
        return;
    }

    if (meta.data != NULL || mc_get_any_node(store->mc, keys.meta, keys.meta_len, &meta, err, sizeof(err)) == MC_OK) {
        if (session_shared_meta_parse(&meta, &parsed) == 0) {
            /* PostgreSQL's times may be older than memcached's if a touch did not reach it: take the newest. */
            if (record->created == 0 || parsed.created < record->created)
                record->created = parsed.created;
            if (parsed.last_access > record->last_access)
                record->last_access = parsed.last_access;
            durable = parsed.durable;
            have_meta = 1;
        }
        free(meta.data);
    }
    if (!have_meta && record->created == 0) {
        /* Written by the app alone (PHP created it): its life starts now. */
        record->created = now;
        record->last_access = now;
    }

    if (session_shared_timed_out(store, record->created, record->last_access, now)) {
        session_shared_forget(store, id, id_len, &keys, record->note, sizeof(record->note), &record->note_is_error);
        free(record->data);
        record->data = NULL;
        record->len = 0;
        record->state = SESSION_SHARED_EXPIRED;
        session_shared_count_load(SESSION_SHARED_LOAD_EXPIRED);
        return;
    }

    fingerprint = store->pg ? session_shared_fingerprint(record->data, record->len) : 0;
    if (strcmp(record->source, "postgresql") == 0)
        durable = fingerprint;
    if (from_ring)
        session_shared_count_load(SESSION_SHARED_LOAD_MEMCACHED_HIT);
    else if (strcmp(record->source, "postgresql") == 0)
        session_shared_count_load(SESSION_SHARED_LOAD_POSTGRES_HIT);
    else
        session_shared_count_load(SESSION_SHARED_LOAD_REPLICA_HIT);
    if (!from_ring) {
        /* Put it back where PHP looks, so the app sees the session on this very request. */
        mc_set(store->mc, id, id_len, keys.data, keys.data_len, record->data, record->len, 0,
               session_shared_data_ttl(store), err, sizeof(err));
        session_shared_meta_write(store, id, id_len, &keys, record->created, now, durable);
        record->last_access = now;
    } else if (store->pg && durable != fingerprint) {
        /* PostgreSQL has not got this version yet (PHP created or changed it, and the copy after that response
         * did not see it): copy it now. */
        if (session_shared_pg_write(store, id, id_len, record->data, record->len, record->created, now, record->note,
                                    sizeof(record->note), &record->note_is_error) == 0)
            durable = fingerprint;
        session_shared_meta_write(store, id, id_len, &keys, record->created, now, durable);
        record->last_access = now;
    } else if (!have_meta || now - record->last_access >= session_shared_touch_interval(store)) {
        session_shared_meta_write(store, id, id_len, &keys, record->created, now, durable);
        if (store->pg && have_meta) {
            char access_s[24];
            snprintf(access_s, sizeof(access_s), "%lld", (long long)now);
            session_shared_pg_simple(store,
                                     "UPDATE session_shared.sessions SET last_access = to_timestamp($2) "
                                     "WHERE id = $1",
                                     id, id_len, access_s, record->note, sizeof(record->note), &record->note_is_error);
        }
        record->last_access = now;
    }

    session_shared_cache_store(store, id, id_len, record);
    if (phpser_session_decode(store->config.format, record->data, record->len, &record->session, decode_err,
                              sizeof(decode_err)) != 0) {
        record->session = NULL;
        if (record->note[0] == '\0')
            snprintf(record->note, sizeof(record->note), "session data is not in the configured format: %s",
                     decode_err);
    }
    record->state = SESSION_SHARED_FOUND;
}

static int session_shared_lock(session_shared_store *store, const char *id, size_t id_len,
                               const session_shared_keys *keys, char *err, size_t errlen)
{
    unsigned waited_ms = 0, step_ms = 5;
    mc_status status;

    /* php-memcached's own lock: an add of "1" that only one writer can win. */
    for (;;) {
        status = mc_add(store->mc, keys->lock_hash, keys->lock_hash_len, keys->lock, keys->lock_len, "1", 1, 0,
                        SESSION_SHARED_LOCK_TTL, err, errlen);
        if (status != MC_MISS)
            return status == MC_OK ? 0 : -1;
        if (waited_ms >= SESSION_SHARED_LOCK_WAIT_MS) {
            snprintf(err, errlen, "session %.*s is locked by another writer", (int)id_len, id);
            return -2;
        }
        usleep(step_ms * 1000);
        waited_ms += step_ms;
        if (step_ms < 100)
            step_ms *= 2;
    }
}

int session_shared_save(session_shared_store *store, const char *id, size_t id_len, const char *data, size_t len,
                        time_t created, time_t now, char *err, size_t errlen)
{
    session_shared_keys keys;
    char mc_err[256], note[512] = "";
    unsigned long long durable = 0;
    mc_status status;
    double started;
    int locked, stored = 0;

    if (session_shared_keys_make(store, id, id_len, &keys) != 0) {
        snprintf(err, errlen, "session id too long");
        return session_shared_count_save(-1);
    }
    if (created == 0)
        created = now;
    session_shared_cache_forget(store, id, id_len);
    locked = session_shared_lock(store, id, id_len, &keys, mc_err, sizeof(mc_err));
    if (locked == -2) {
        snprintf(err, errlen, "%s", mc_err);
        return session_shared_count_save(-1);
    }
    started = metrics_now_ms();
    status = mc_set(store->mc, id, id_len, keys.data, keys.data_len, data, len, 0, session_shared_data_ttl(store),
                    mc_err, sizeof(mc_err));
    session_shared_count_call(SESSION_SHARED_STORE_MEMCACHED, started, status == MC_OUTAGE);
    if (status == MC_OK)
        stored = 1;
    if (store->pg &&
        session_shared_pg_write(store, id, id_len, data, len, created, now, note, sizeof(note), NULL) == 0) {
        stored = 1;
        durable = session_shared_fingerprint(data, len);
    }
    if (stored)
        session_shared_meta_write(store, id, id_len, &keys, created, now, durable);
    if (locked == 0)
        mc_delete(store->mc, keys.lock_hash, keys.lock_hash_len, keys.lock, keys.lock_len, mc_err, sizeof(mc_err));
    if (!stored) {
        snprintf(err, errlen, "no store took the session: %.200s%s%.250s", mc_err, note[0] ? "; " : "", note);
        return session_shared_count_save(-1);
    }
    return session_shared_count_save(0);
}

int session_shared_destroy(session_shared_store *store, const char *id, size_t id_len, char *err, size_t errlen)
{
    session_shared_keys keys;
    char note[512] = "";

    if (session_shared_keys_make(store, id, id_len, &keys) != 0) {
        snprintf(err, errlen, "session id too long");
        return -1;
    }
    session_shared_forget(store, id, id_len, &keys, note, sizeof(note), NULL);
    return 0;
}

void session_shared_sync(session_shared_store *store, const char *id, size_t id_len, int loaded, time_t now, char *note,
                         size_t notelen)
{
    session_shared_keys keys;
    char err[256];
    mc_value value, meta;
    session_shared_meta parsed;
    mc_status status;
    double started;
    time_t created = now;

    if (notelen)
        note[0] = '\0';
    if (store->pg == NULL || session_shared_keys_make(store, id, id_len, &keys) != 0)
        return;
    /* One round trip for the data and its meta; the meta's fingerprint says whether PostgreSQL already has it. */
    started = metrics_now_ms();
    status = mc_get2(store->mc, id, id_len, keys.data, keys.data_len, keys.meta, keys.meta_len, &value, &meta, err,
                     sizeof(err));
    session_shared_count_call(SESSION_SHARED_STORE_MEMCACHED, started, status == MC_OUTAGE);
    if (status == MC_OK) {
        unsigned long long fingerprint = session_shared_fingerprint(value.data, value.len);
        unsigned long long durable = 0;

        if (meta.data && session_shared_meta_parse(&meta, &parsed) == 0) {
            created = parsed.created;
            durable = parsed.durable;
        }
        if (durable != fingerprint &&
            session_shared_pg_write(store, id, id_len, value.data, value.len, created, now, note, notelen, NULL) == 0)
            session_shared_meta_write(store, id, id_len, &keys, created, now, fingerprint);
        free(value.data);
    } else if (status == MC_MISS && loaded) {
        /* Gone from the ring. Only when every node answers that it has no copy did the app destroy the session
         * (session_destroy()), and the durable copy goes too: a node that did not answer may hold the only one. */
        status = mc_get_any_node(store->mc, keys.data, keys.data_len, &value, err, sizeof(err));
        if (status == MC_OK)
            free(value.data);
        else if (status == MC_MISS)
            session_shared_pg_simple(store, "DELETE FROM session_shared.sessions WHERE id = $1", id, id_len, NULL, note,
                                     notelen, NULL);
    }
    free(meta.data);
    session_shared_pg_purge(store, now, note, notelen);
}

/* --------------------------------------------------------------------------------------------- requests */

char *session_shared_value_text(const phpser_session *session, const char *key, size_t key_len, size_t *len,
                                int *present)
{
    const phpser_entry *entry = session ? phpser_session_find(session, key, key_len) : NULL;

    *present = entry != NULL && entry->value != NULL;
    return *present ? phpser_value_to_text(entry->value, len) : NULL;
}

void session_shared_env_name(const char *key, char *out, size_t outlen)
{
    size_t i = 0;
    const char *prefix = "SESSION_";

    if (outlen == 0)
        return;
    while (*prefix && i + 1 < outlen)
        out[i++] = *prefix++;
    for (; *key && i + 1 < outlen; key++) {
        unsigned char c = (unsigned char)*key;
        out[i++] = isalnum(c) && c < 0x80 ? (char)toupper(c) : '_';
    }
    out[i] = '\0';
}

int session_shared_export(req_view *req, const char *id, size_t id_len, const session_shared_record *record,
                          const char *const *keys, size_t nkeys)
{
    char name[128];
    size_t i, len;
    int count = 0;

    if (req->publish(req, "SESSION_ID", id, id_len) != 0)
        return -1;
    count++;
    if (record->session == NULL)
        return count;
    for (i = 0; i < nkeys; i++) {
        int present;
        char *text = session_shared_value_text(record->session, keys[i], strlen(keys[i]), &len, &present);

        if (!present)
            continue;
        if (text == NULL)
            return -1;
        session_shared_env_name(keys[i], name, sizeof(name));
        if (req->publish(req, name, text, len) != 0) {
            free(text);
            return -1;
        }
        free(text);
        count++;
    }
    return count;
}

int session_shared_cookie_id(const char *cookie_header, size_t len, const char *name, const char **id, size_t *id_len,
                             const char **why)
{
    cookie_id_status status;

    if (cookie_header == NULL || !cookie_find(cookie_header, len, name, strlen(name), id, id_len))
        return 0;
    status = cookie_session_id_check(*id, *id_len);
    if (status != COOKIE_ID_OK) {
        *why = cookie_id_status_text(status);
        return -1;
    }
    return 1;
}

char *session_shared_set_cookie(const session_shared_cookie *cookie, const char *id, int secure_request, long max_age)
{
    int secure =
        cookie->secure == SESSION_SHARED_SECURE_ON || (cookie->secure == SESSION_SHARED_SECURE_AUTO && secure_request);
    const char *samesite = cookie->samesite ? cookie->samesite : "Lax";
    size_t len = strlen(cookie->name) + strlen(id) + (cookie->path ? strlen(cookie->path) : 1) +
                 (cookie->domain ? strlen(cookie->domain) : 0) + 128;
    char *header = malloc(len);
    char max_age_s[40] = "";

    if (header == NULL)
        return NULL;
    if (max_age >= 0)
        snprintf(max_age_s, sizeof(max_age_s), "; Max-Age=%ld", max_age);
    /* SameSite=None is ignored by browsers without Secure. */
    if (strcmp(samesite, "None") == 0)
        secure = 1;
    snprintf(header, len, "%s=%s; Path=%s%s%s%s%s%s; SameSite=%s", cookie->name, id, cookie->path ? cookie->path : "/",
             cookie->domain ? "; Domain=" : "", cookie->domain ? cookie->domain : "", max_age_s,
             secure ? "; Secure" : "", cookie->httponly ? "; HttpOnly" : "", samesite);
    return header;
}

/* ------------------------------------------------------------------------------------------- mod_session */

static int session_shared_append(char **buf, size_t *len, size_t *cap, const char *data, size_t n)
{
    if (*len + n + 1 > *cap) {
        size_t cap2 = (*cap ? *cap * 2 : 256);
        char *grown;
        while (cap2 < *len + n + 1)
            cap2 *= 2;
        grown = realloc(*buf, cap2);
        if (grown == NULL)
            return -1;
        *buf = grown;
        *cap = cap2;
    }
    memcpy(*buf + *len, data, n);
    *len += n;
    (*buf)[*len] = '\0';
    return 0;
}

static int session_shared_append_escaped(char **buf, size_t *len, size_t *cap, const char *data, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t i;
    char esc[3];

    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)data[i];
        if (isalnum(c) && c < 0x80) {
            if (session_shared_append(buf, len, cap, (const char *)&data[i], 1) != 0)
                return -1;
        } else if (c == '-' || c == '_' || c == '.' || c == '~') {
            if (session_shared_append(buf, len, cap, (const char *)&data[i], 1) != 0)
                return -1;
        } else {
            esc[0] = '%';
            esc[1] = hex[c >> 4];
            esc[2] = hex[c & 15];
            if (session_shared_append(buf, len, cap, esc, 3) != 0)
                return -1;
        }
    }
    return 0;
}

static int session_shared_is_scalar(const phpser_value *value)
{
    return value && (value->type == PHPSER_STRING || value->type == PHPSER_INT || value->type == PHPSER_DOUBLE ||
                     value->type == PHPSER_BOOL);
}

char *session_shared_to_urlencoded(const phpser_session *session)
{
    char *buf = NULL;
    size_t len = 0, cap = 0, i, count = session ? phpser_session_count(session) : 0;

    if (session_shared_append(&buf, &len, &cap, "", 0) != 0)
        return NULL;
    for (i = 0; i < count; i++) {
        const phpser_entry *entry = phpser_session_entry(session, i);
        size_t text_len;
        char *text;

        if (!session_shared_is_scalar(entry->value))
            continue;
        text = phpser_value_to_text(entry->value, &text_len);
        if (text == NULL || (len && session_shared_append(&buf, &len, &cap, "&", 1) != 0) ||
            session_shared_append_escaped(&buf, &len, &cap, entry->name, entry->name_len) != 0 ||
            session_shared_append(&buf, &len, &cap, "=", 1) != 0 ||
            session_shared_append_escaped(&buf, &len, &cap, text, text_len) != 0) {
            free(text);
            free(buf);
            return NULL;
        }
        free(text);
    }
    return buf;
}

int session_shared_value_changed(const phpser_session *before, const phpser_session *after, const char *key)
{
    size_t la = 0, lb = 0, key_len = strlen(key);
    int in_a, in_b, changed;
    char *ta = session_shared_value_text(before, key, key_len, &la, &in_a);
    char *tb = session_shared_value_text(after, key, key_len, &lb, &in_b);

    if (!in_a || !in_b)
        changed = in_a != in_b;
    else
        changed = ta == NULL || tb == NULL || la != lb || memcmp(ta, tb, la) != 0;
    free(ta);
    free(tb);
    return changed;
}

static int session_shared_is_user_key(const phpser_entry *entry)
{
    return (entry->name_len == 4 && memcmp(entry->name, "user", 4) == 0) ||
           (entry->name_len > 5 && memcmp(entry->name + entry->name_len - 5, "-user", 5) == 0);
}

static int session_shared_user_changed_one_way(const phpser_session *from, const phpser_session *to)
{
    size_t i, count = from ? phpser_session_count(from) : 0;

    for (i = 0; i < count; i++) {
        const phpser_entry *entry = phpser_session_entry(from, i);
        if (session_shared_is_user_key(entry) && session_shared_value_changed(from, to, entry->name))
            return 1;
    }
    return 0;
}

int session_shared_user_changed(const phpser_session *before, const phpser_session *after)
{
    return session_shared_user_changed_one_way(before, after) || session_shared_user_changed_one_way(after, before);
}

typedef struct {
    char *name;
    size_t name_len;
    char *value;
    size_t value_len;
} session_shared_pair;

int session_shared_apply_urlencoded(phpser_session *session, const char *encoded, size_t len)
{
    session_shared_pair *pairs = NULL;
    size_t npairs = 0, i, j, start = 0;
    char *copy = malloc(len + 1);
    int rc = -1;

    if (copy == NULL)
        return -1;
    memcpy(copy, encoded, len);
    copy[len] = '\0';
    pairs = calloc(len / 2 + 1, sizeof(*pairs));
    if (pairs == NULL)
        goto out;
    for (i = 0; i <= len; i++) {
        if (i < len && copy[i] != '&')
            continue;
        if (i > start) {
            char *eq = memchr(copy + start, '=', i - start);
            session_shared_pair *pair = &pairs[npairs];
            pair->name = copy + start;
            pair->name_len = eq ? (size_t)(eq - pair->name) : i - start;
            pair->value = eq ? eq + 1 : copy + i;
            pair->value_len = eq ? (size_t)(copy + i - pair->value) : 0;
            pair->name_len = req_url_decode(pair->name, pair->name_len, pair->name); /* in place: it only shrinks */
            pair->value_len = req_url_decode(pair->value, pair->value_len, pair->value);
            /* mod_session's own bookkeeping: timeouts are enforced here, not stored in the app's session. */
            if (!(pair->name_len == 6 && memcmp(pair->name, "expiry", 6) == 0) && pair->name_len > 0)
                npairs++;
        }
        start = i + 1;
    }
    /* Scalars that mod_session no longer has were removed by it. */
    for (i = phpser_session_count(session); i-- > 0;) {
        const phpser_entry *entry = phpser_session_entry(session, i);
        int kept = 0;
        if (!session_shared_is_scalar(entry->value))
            continue;
        for (j = 0; j < npairs && !kept; j++)
            kept = pairs[j].name_len == entry->name_len && memcmp(pairs[j].name, entry->name, entry->name_len) == 0;
        if (!kept) {
            /* remove() frees the entry's name while it still compares: pass a copy */
            char *name = malloc(entry->name_len + 1);
            size_t name_len = entry->name_len;
            if (name == NULL)
                goto out;
            memcpy(name, entry->name, name_len + 1);
            phpser_session_remove(session, name, name_len);
            free(name);
        }
    }
    for (j = 0; j < npairs; j++) {
        const phpser_entry *entry = phpser_session_find(session, pairs[j].name, pairs[j].name_len);
        char *text = NULL;
        size_t text_len = 0;
        int same = 0;
        /* Keep an unchanged int or bool as PHP stored it rather than turning it into a string. */
        if (entry && session_shared_is_scalar(entry->value)) {
            text = phpser_value_to_text(entry->value, &text_len);
            same = text && text_len == pairs[j].value_len && memcmp(text, pairs[j].value, text_len) == 0;
            free(text);
        }
        if (!same && phpser_session_set_string(session, pairs[j].name, pairs[j].name_len, pairs[j].value,
                                               pairs[j].value_len) != 0)
            goto out;
    }
    rc = 0;
out:
    free(pairs);
    free(copy);
    return rc;
}
