#include "pg.h"
#include "crypto.h"

#include <libpq-events.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct pg_pool {
    pthread_mutex_t lock;
    char *conninfo;
    unsigned statement_timeout_ms;
    unsigned retry_after_s;
    PGconn **idle;
    size_t idle_count;
    size_t max_connections;
    time_t down_until; /* fail fast while the database is known to be unreachable */
};

pg_pool *pg_pool_create(const pg_config *config, char *err, size_t errlen)
{
    pg_pool *pool;
    PQconninfoOption *options;
    char *parse_error = NULL;
    unsigned connect_s;
    size_t len;

    options = PQconninfoParse(config->conninfo ? config->conninfo : "", &parse_error);
    if (options == NULL) {
        snprintf(err, errlen, "invalid PostgreSQL connection string: %s", parse_error ? parse_error : "out of memory");
        PQfreemem(parse_error);
        return NULL;
    }
    PQconninfoFree(options);

    pool = calloc(1, sizeof(*pool));
    if (pool == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    connect_s = ((config->connect_timeout_ms ? config->connect_timeout_ms : 1000) + 999) / 1000;
    if (connect_s < 2)
        connect_s = 2; /* libpq treats 1 as 2 anyway */
    len = strlen(config->conninfo) + 64;
    pool->conninfo = malloc(len);
    pool->max_connections = config->max_connections ? config->max_connections : 16;
    pool->idle = calloc(pool->max_connections, sizeof(PGconn *));
    if (pool->conninfo == NULL || pool->idle == NULL) {
        free(pool->conninfo);
        free(pool->idle);
        free(pool);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    /* An explicit connect_timeout in the conninfo comes later and wins. */
    snprintf(pool->conninfo, len, "connect_timeout=%u %s", connect_s, config->conninfo);
    pool->statement_timeout_ms = config->statement_timeout_ms ? config->statement_timeout_ms : 2000;
    pool->retry_after_s = config->retry_after_s ? config->retry_after_s : 2;
    pthread_mutex_init(&pool->lock, NULL);
    return pool;
}

void pg_pool_destroy(pg_pool *pool)
{
    size_t i;

    if (pool == NULL)
        return;
    for (i = 0; i < pool->idle_count; i++)
        PQfinish(pool->idle[i]);
    pthread_mutex_destroy(&pool->lock);
    free(pool->idle);
    free(pool->conninfo);
    free(pool);
}

/* libpq prints server notices ("schema ... already exists, skipping") on stderr, which is the web server's error log
 * without a date or a module name; the modules report what matters themselves. */
static void pg_ignore_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

static PGconn *pg_connect(pg_pool *pool, char *err, size_t errlen)
{
    PGconn *conn = PQconnectdb(pool->conninfo);
    char setting[64];
    PGresult *res;

    if (conn == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (PQstatus(conn) != CONNECTION_OK) {
        snprintf(err, errlen, "cannot connect to PostgreSQL: %s", PQerrorMessage(conn));
        err[strcspn(err, "\n")] = '\0';
        PQfinish(conn);
        return NULL;
    }
    PQsetNoticeProcessor(conn, pg_ignore_notice, NULL);
    snprintf(setting, sizeof(setting), "SET statement_timeout = %u", pool->statement_timeout_ms);
    res = PQexec(conn, setting);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        snprintf(err, errlen, "cannot set statement_timeout: %s", PQerrorMessage(conn));
        PQclear(res);
        PQfinish(conn);
        return NULL;
    }
    PQclear(res);
    return conn;
}

PGconn *pg_pool_acquire(pg_pool *pool, char *err, size_t errlen)
{
    PGconn *conn = NULL;
    time_t now = time(NULL);

    pthread_mutex_lock(&pool->lock);
    if (pool->idle_count > 0) {
        conn = pool->idle[--pool->idle_count];
    } else if (now < pool->down_until) {
        pthread_mutex_unlock(&pool->lock);
        snprintf(err, errlen, "PostgreSQL unreachable (not retrying for %ld s)", (long)(pool->down_until - now));
        return NULL;
    }
    pthread_mutex_unlock(&pool->lock);

    if (conn != NULL && PQstatus(conn) == CONNECTION_OK)
        return conn;
    if (conn != NULL)
        PQfinish(conn);
    conn = pg_connect(pool, err, errlen);
    if (conn == NULL) {
        pthread_mutex_lock(&pool->lock);
        pool->down_until = time(NULL) + pool->retry_after_s;
        pthread_mutex_unlock(&pool->lock);
    }
    return conn;
}

void pg_pool_release(pg_pool *pool, PGconn *conn, int ok)
{
    if (conn == NULL)
        return;
    if (ok && PQstatus(conn) == CONNECTION_OK && PQtransactionStatus(conn) == PQTRANS_IDLE) {
        pthread_mutex_lock(&pool->lock);
        if (pool->idle_count < pool->max_connections) {
            pool->idle[pool->idle_count++] = conn;
            conn = NULL;
        }
        pthread_mutex_unlock(&pool->lock);
    }
    if (conn != NULL)
        PQfinish(conn);
}

PGresult *pg_exec(PGconn *conn, const char *sql, int nparams, const char *const *values, const int *lengths,
                  const int *formats, char *err, size_t errlen)
{
    return pg_exec_state(conn, sql, nparams, values, lengths, formats, NULL, err, errlen);
}

static PGresult *pg_result_or_error(PGconn *conn, PGresult *res, char sqlstate[6], char *err, size_t errlen);

PGresult *pg_exec_state(PGconn *conn, const char *sql, int nparams, const char *const *values, const int *lengths,
                        const int *formats, char sqlstate[6], char *err, size_t errlen)
{
    return pg_result_or_error(conn, PQexecParams(conn, sql, nparams, NULL, values, lengths, formats, 0), sqlstate, err,
                              errlen);
}

/* ------------------------------------------------------------------------------------- prepared statements */

/* The statements a connection has prepared, by a 64-bit hash of their text, attached to the connection itself
 * (libpq's instance data) so that it goes when the connection is closed, however that happens. */
typedef struct {
    uint64_t *hashes;
    size_t count;
    size_t cap;
} pg_prepared_set;

#define PG_PREPARED_MAX 256 /* beyond this, statements run unprepared: text built per request must not pile up */

static int pg_event(PGEventId id, void *info, void *pass_through)
{
    (void)pass_through;
    if (id == PGEVT_CONNDESTROY) {
        PGEventConnDestroy *destroy = info;
        pg_prepared_set *set = PQinstanceData(destroy->conn, pg_event);
        if (set != NULL) {
            free(set->hashes);
            free(set);
        }
    }
    return 1;
}

static pg_prepared_set *pg_prepared_of(PGconn *conn)
{
    pg_prepared_set *set = PQinstanceData(conn, pg_event);

    if (set != NULL)
        return set;
    if (!PQregisterEventProc(conn, pg_event, "webmodules prepared statements", NULL))
        return NULL;
    set = calloc(1, sizeof(*set));
    if (set != NULL && !PQsetInstanceData(conn, pg_event, set)) {
        free(set);
        set = NULL;
    }
    return set;
}

static int pg_prepared_has(const pg_prepared_set *set, uint64_t hash)
{
    size_t i;

    for (i = 0; i < set->count; i++)
        if (set->hashes[i] == hash)
            return 1;
    return 0;
}

/* res when it succeeded; otherwise its SQLSTATE ("08006" when the server never answered: class 08, connection
 * exception, says so to the caller) and message, and NULL. */
static PGresult *pg_result_or_error(PGconn *conn, PGresult *res, char sqlstate[6], char *err, size_t errlen)
{
    ExecStatusType status = PQresultStatus(res);
    const char *state;

    if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) {
        if (sqlstate != NULL)
            sqlstate[0] = '\0';
        return res;
    }
    if (sqlstate != NULL) {
        state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
        snprintf(sqlstate, 6, "%s", state ? state : "08006");
    }
    snprintf(err, errlen, "%s", res ? PQresultErrorMessage(res) : PQerrorMessage(conn));
    err[strcspn(err, "\n")] = '\0';
    PQclear(res);
    return NULL;
}

PGresult *pg_exec_prepared(PGconn *conn, const char *sql, int nparams, const char *const *values, char sqlstate[6],
                           char *err, size_t errlen)
{
    pg_prepared_set *set = pg_prepared_of(conn);
    uint64_t hash = crypto_fnv1a64(sql, strlen(sql));
    char name[24];
    PGresult *res;

    if (set == NULL || (!pg_prepared_has(set, hash) && set->count >= PG_PREPARED_MAX))
        return pg_exec_state(conn, sql, nparams, values, NULL, NULL, sqlstate, err, errlen);
    snprintf(name, sizeof(name), "wm_%016llx", (unsigned long long)hash);
    if (!pg_prepared_has(set, hash)) {
        if (set->count == set->cap) {
            size_t cap = set->cap ? 2 * set->cap : 16;
            uint64_t *grown = realloc(set->hashes, cap * sizeof(*grown));
            if (grown == NULL)
                return pg_exec_state(conn, sql, nparams, values, NULL, NULL, sqlstate, err, errlen);
            set->hashes = grown;
            set->cap = cap;
        }
        res = pg_result_or_error(conn, PQprepare(conn, name, sql, nparams, NULL), sqlstate, err, errlen);
        if (res == NULL)
            return NULL;
        PQclear(res);
        set->hashes[set->count++] = hash;
    }
    return pg_result_or_error(conn, PQexecPrepared(conn, name, nparams, values, NULL, NULL, 0), sqlstate, err, errlen);
}

static int pg_run(PGconn *conn, const char *sql, int nparams, const char *const *values, char *err, size_t errlen)
{
    PGresult *res = pg_exec(conn, sql, nparams, values, NULL, NULL, err, errlen);

    if (res == NULL)
        return -1;
    PQclear(res);
    return 0;
}

static int pg_schema_name_ok(const char *schema)
{
    const char *p;

    if (schema == NULL || *schema == '\0' || strlen(schema) > 48)
        return 0;
    for (p = schema; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || *p == '_' || (p != schema && *p >= '0' && *p <= '9')))
            return 0;
    return 1;
}

static int pg_apply_missing(PGconn *conn, const char *schema, const pg_migration *migrations, char *err, size_t errlen)
{
    char sql[256], version[16];
    const char *params[2];
    const pg_migration *m;
    PGresult *res;
    int seen;

    for (m = migrations; m->version != 0; m++) {
        snprintf(sql, sizeof(sql), "SELECT 1 FROM %s.schema_migrations WHERE version = $1", schema);
        snprintf(version, sizeof(version), "%d", m->version);
        params[0] = version;
        res = pg_exec(conn, sql, 1, params, NULL, NULL, err, errlen);
        if (res == NULL)
            return -1;
        seen = PQntuples(res) > 0;
        PQclear(res);
        if (seen)
            continue;
        if (pg_run(conn, "BEGIN", 0, NULL, err, errlen) != 0)
            return -1;
        /* Migrations are trusted files compiled into the module; they may hold several statements. */
        res = PQexec(conn, m->sql);
        if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK) {
            snprintf(err, errlen, "migration %s failed: %s", m->name, PQresultErrorMessage(res));
            err[strcspn(err, "\n")] = '\0';
            PQclear(res);
            pg_run(conn, "ROLLBACK", 0, NULL, err + strlen(err), 0);
            return -1;
        }
        PQclear(res);
        snprintf(sql, sizeof(sql), "INSERT INTO %s.schema_migrations (version, name) VALUES ($1, $2)", schema);
        params[1] = m->name;
        if (pg_run(conn, sql, 2, params, err, errlen) != 0 || pg_run(conn, "COMMIT", 0, NULL, err, errlen) != 0) {
            pg_run(conn, "ROLLBACK", 0, NULL, err + strlen(err), 0);
            return -1;
        }
    }
    return 0;
}

int pg_migrate(pg_pool *pool, const char *schema, const pg_migration *migrations, char *err, size_t errlen)
{
    char sql[512];
    const char *params[1] = {schema};
    PGconn *conn;
    int rc = -1;

    if (!pg_schema_name_ok(schema)) {
        snprintf(err, errlen, "invalid schema name");
        return -1;
    }
    conn = pg_pool_acquire(pool, err, errlen);
    if (conn == NULL)
        return -1;
    /* Session-level lock keyed by the schema name: concurrent nodes wait here, then find the work done. */
    if (pg_run(conn, "SELECT pg_advisory_lock(hashtext('webmodules.migrate.' || $1))", 1, params, err, errlen) != 0)
        goto out;
    snprintf(sql, sizeof(sql),
             "CREATE SCHEMA IF NOT EXISTS %s; CREATE TABLE IF NOT EXISTS %s.schema_migrations ("
             "version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())",
             schema, schema);
    {
        PGresult *res = PQexec(conn, sql);
        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
            snprintf(err, errlen, "cannot create schema %s: %s", schema, PQresultErrorMessage(res));
            err[strcspn(err, "\n")] = '\0';
            PQclear(res);
            goto unlock;
        }
        PQclear(res);
    }
    rc = pg_apply_missing(conn, schema, migrations, err, errlen);
unlock:
    if (pg_run(conn, "SELECT pg_advisory_unlock(hashtext('webmodules.migrate.' || $1))", 1, params,
               rc == 0 ? err : err + strlen(err), rc == 0 ? errlen : 0) != 0)
        rc = -1;
out:
    pg_pool_release(pool, conn, rc == 0);
    return rc;
}
