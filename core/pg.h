/* PostgreSQL connection pool shared by the modules: parameterised queries only, a statement timeout on every
 * connection, and versioned migrations that several nodes may apply at the same time (an advisory lock serialises
 * them, and each migration runs in its own transaction with its version row).
 * Thread-safe; create the pool in each server child process. Connections are opened lazily.
 */
#ifndef CORE_PG_H
#define CORE_PG_H

#include <libpq-fe.h>
#include <stddef.h>

typedef struct {
    int version; /* 1, 2, ... in order; 0 ends the list */
    const char *name;
    const char *sql;
} pg_migration;

typedef struct {
    const char *conninfo;          /* libpq connection string */
    unsigned connect_timeout_ms;   /* default 1000 (libpq rounds up to whole seconds, minimum 2) */
    unsigned statement_timeout_ms; /* default 2000 */
    unsigned max_connections;      /* default 16 */
    unsigned retry_after_s;        /* after a failed connect, fail fast for this long; default 2 */
} pg_config;

typedef struct pg_pool pg_pool;

pg_pool *pg_pool_create(const pg_config *config, char *err, size_t errlen);
void pg_pool_destroy(pg_pool *pool);

/* Borrow a live connection (opening one if needed) and give it back. NULL when the database cannot be reached;
 * err says why. Give a connection back with ok = 0 after a failure so that it is closed rather than reused. */
PGconn *pg_pool_acquire(pg_pool *pool, char *err, size_t errlen);
void pg_pool_release(pg_pool *pool, PGconn *conn, int ok);

/* PQexecParams with text parameters (lengths from strlen, or binary when lengths/formats are given).
 * Returns the result when its status is COMMAND_OK or TUPLES_OK; otherwise clears it, writes err and returns NULL. */
PGresult *pg_exec(PGconn *conn, const char *sql, int nparams, const char *const *values, const int *lengths,
                  const int *formats, char *err, size_t errlen);

/* pg_exec that also reports the SQLSTATE of a failure ("23P01" exclusion violation, "08006" when the server could
 * not be reached...), or "" on success, so callers can tell a conflict from bad input from an outage. */
PGresult *pg_exec_state(PGconn *conn, const char *sql, int nparams, const char *const *values, const int *lengths,
                        const int *formats, char sqlstate[6], char *err, size_t errlen);

/* pg_exec_state for text parameters, through a statement the connection prepares the first time it sees this SQL
 * text and reuses after (parsing and planning cost more than running most of the modules' queries). For SQL with
 * parameters only: the text must not carry values. Inside a transaction too (preparing does not abort it). */
PGresult *pg_exec_prepared(PGconn *conn, const char *sql, int nparams, const char *const *values, char sqlstate[6],
                           char *err, size_t errlen);

/* Creates schema if needed and applies the migrations it has not seen yet, recorded in
 * <schema>.schema_migrations. Safe to call from every node and every process at once. Returns 0 or -1. */
int pg_migrate(pg_pool *pool, const char *schema, const pg_migration *migrations, char *err, size_t errlen);

#endif
