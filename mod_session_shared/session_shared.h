/* mod_session_shared's logic, shared by the Apache and nginx adapters: where a session lives (memcached placed
 * like php-memcached, optionally PostgreSQL as the durable copy), when it expires, what is exported.
 * Every function that touches a store blocks on the network: Apache calls them from its request threads,
 * nginx only from thread-pool tasks. */
#ifndef SESSION_SHARED_H
#define SESSION_SHARED_H

#include <stddef.h>
#include <time.h>

#include "mc.h"
#include "metrics.h"
#include "pg.h"
#include "phpser.h"
#include "req.h"

#define SESSION_SHARED_DEFAULT_COOKIE "PHPSESSID"
#define SESSION_SHARED_DEFAULT_PREFIX "memc.sess.key."
#define SESSION_SHARED_DEFAULT_IDLE   1440
#define SESSION_SHARED_ID_CHARS       32 /* 160 bits at 5 bits a character, PHP's default id */

extern const pg_migration session_shared_migrations[];

/* Metrics (core/metrics.h), indexed by these enums; label values in the order of the definitions' values. */
typedef enum {
    SESSION_SHARED_METRIC_LOADS,        /* loads_total{result} */
    SESSION_SHARED_METRIC_SAVES,        /* saves_total{result} */
    SESSION_SHARED_METRIC_STORE_ERRORS, /* store_errors_total{store} */
    SESSION_SHARED_METRIC_STORE_LATENCY /* store_latency_ms{store} */
} session_shared_metric;

typedef enum {
    SESSION_SHARED_LOAD_CACHE_HIT,     /* this process's copy (SessionSharedCacheTTL) */
    SESSION_SHARED_LOAD_MEMCACHED_HIT, /* the session's own node */
    SESSION_SHARED_LOAD_REPLICA_HIT,   /* another memcached node */
    SESSION_SHARED_LOAD_POSTGRES_HIT,  /* the durable copy */
    SESSION_SHARED_LOAD_MISS,
    SESSION_SHARED_LOAD_EXPIRED,
    SESSION_SHARED_LOAD_UNAVAILABLE
} session_shared_load_result;

typedef enum { SESSION_SHARED_SAVE_OK, SESSION_SHARED_SAVE_FAILED } session_shared_save_result;
typedef enum { SESSION_SHARED_STORE_MEMCACHED, SESSION_SHARED_STORE_POSTGRES } session_shared_store_kind;

extern const metrics_def session_shared_metric_defs[];
extern const size_t session_shared_metric_count;
extern metrics_block *session_shared_metrics; /* set by the adapter; NULL: nothing is counted */

typedef enum { SESSION_SHARED_SECURE_AUTO, SESSION_SHARED_SECURE_ON, SESSION_SHARED_SECURE_OFF } session_shared_secure;

typedef struct {
    const char *name;   /* default PHPSESSID */
    const char *path;   /* default "/" */
    const char *domain; /* default none: host-only */
    session_shared_secure secure;
    int httponly;         /* default 1 */
    const char *samesite; /* Strict, Lax (default) or None */
} session_shared_cookie;

/* Where sessions are stored. Two configurations with the same store settings share one store per process. */
typedef struct {
    const char *memcached; /* php-memcached save_path or libmemcached config string */
    const char *postgres;  /* libpq conninfo, or NULL for memcached only */
    const char *prefix;
    unsigned replicas;
    phpser_format format;
    long idle_timeout;     /* seconds; 0 = none */
    long absolute_timeout; /* seconds; 0 = none */
    long cache_ttl_ms;     /* how long a process may reuse a session it read, without asking memcached; 0 = never */
} session_shared_store_config;

/* Directive setters shared by both adapters, so the two servers accept and refuse the same values.
 * Each returns NULL or a short error phrase for the server to report with the directive's name. */
const char *session_shared_parse_format(const char *value, phpser_format *out);
const char *session_shared_parse_seconds(const char *value, long *out);
const char *session_shared_parse_milliseconds(const char *value, long *out);
const char *session_shared_parse_replicas(const char *value, unsigned *out);
const char *session_shared_parse_cookie_attr(session_shared_cookie *cookie, const char *attr);
const char *session_shared_check_memcached(const char *servers);

typedef struct session_shared_store session_shared_store;

/* The process's stores, opened lazily and shared by every thread. Thread-safe. Returns NULL and writes err when
 * the store cannot be set up (bad server list, PostgreSQL migrations failing). */
session_shared_store *session_shared_store_get(const session_shared_store_config *config, char *err, size_t errlen);
void session_shared_stores_close_all(void);
/* The store of this configuration if this process already opened it, without opening anything: for nginx's
 * event loop, which must not wait. */
session_shared_store *session_shared_store_find(const session_shared_store_config *config);

typedef enum {
    SESSION_SHARED_NONE, /* no session under this id */
    SESSION_SHARED_FOUND,
    SESSION_SHARED_EXPIRED,     /* found but past a timeout: deleted everywhere */
    SESSION_SHARED_UNAVAILABLE, /* no store could answer */
} session_shared_state;

typedef struct {
    session_shared_state state;
    char *data; /* the session as PHP stored it (malloc'd), NULL when none */
    size_t len;
    phpser_session *session; /* decoded data; NULL when none or undecodable */
    time_t created;
    time_t last_access;
    const char *source; /* "memcached", "memcached replica", "postgresql" */
    char note[512];     /* something the adapter should log (an outage, a repair); empty when nothing */
    int note_is_error;  /* log the note as an error rather than at info level */
} session_shared_record;

void session_shared_record_clear(session_shared_record *record);

/* The process's short-lived copy of sessions it read (SessionSharedCacheTTL). A hit fills record exactly as
 * session_shared_load would (state FOUND, data, decoded session) and returns 1; 0 on a miss. Never blocks on the
 * network: nginx calls it on its event loop. */
int session_shared_cache_lookup(session_shared_store *store, const char *id, size_t id_len,
                                session_shared_record *record);
/* Drops this process's copy: the backend may have changed the session. */
void session_shared_cache_forget(session_shared_store *store, const char *id, size_t id_len);

/* Loads, enforces the timeouts, repairs memcached from a surviving copy, refreshes the last-access time. */
void session_shared_load(session_shared_store *store, const char *id, size_t id_len, time_t now,
                         session_shared_record *record);

/* Writes data under id (php-memcached's lock key held while writing), through to PostgreSQL when configured.
 * created = 0 for a new session. Returns 0, or -1 with err when no store took it. */
int session_shared_save(session_shared_store *store, const char *id, size_t id_len, const char *data, size_t len,
                        time_t created, time_t now, char *err, size_t errlen);
int session_shared_destroy(session_shared_store *store, const char *id, size_t id_len, char *err, size_t errlen);

/* After the backend answered: copies what it wrote to memcached (a new or changed session, as the meta item's
 * fingerprint of PostgreSQL's version tells) into PostgreSQL, and deletes the durable copy of a session the
 * backend destroyed. loaded: the request came with this session. Also purges expired durable rows now and then.
 * A no-op without PostgreSQL. */
void session_shared_sync(session_shared_store *store, const char *id, size_t id_len, int loaded, time_t now, char *note,
                         size_t notelen);

/* The value of a top-level session key as it reaches a backend (phpser_value_to_text), malloc'd; NULL when the
 * key is absent (*present = 0) or memory ran out (*present = 1). */
char *session_shared_value_text(const phpser_session *session, const char *key, size_t key_len, size_t *len,
                                int *present);

/* The environment name a session key is exported under: SESSION_ + the key in upper case, any character outside
 * [A-Z0-9_] as '_'. Writes at most outlen bytes including the NUL. */
void session_shared_env_name(const char *key, char *out, size_t outlen);
/* Publishes SESSION_ID and SESSION_<KEY> for each key present, through req->publish. Returns the count, or -1. */
int session_shared_export(req_view *req, const char *id, size_t id_len, const session_shared_record *record,
                          const char *const *keys, size_t nkeys);

/* Finds and validates the session cookie: 1 and *id set when a well-formed id is present, 0 when there is no
 * cookie, -1 when the cookie is malformed (reason in *why, for a debug-level log). */
int session_shared_cookie_id(const char *cookie_header, size_t len, const char *name, const char **id, size_t *id_len,
                             const char **why);

/* "NAME=ID; Path=/; HttpOnly; SameSite=Lax" (+ Secure, Domain, Max-Age when given). malloc'd. */
char *session_shared_set_cookie(const session_shared_cookie *cookie, const char *id, int secure_request, long max_age);

/* Translation for Apache's mod_session, whose providers see sessions as "k=v&k2=v2" (URL-encoded):
 * the scalar entries of session in that form, and the reverse, applied onto session (keys that disappeared are
 * removed, arrays and objects the app stored are kept). malloc'd / 0 or -1. */
char *session_shared_to_urlencoded(const phpser_session *session);
/* Whether key's value differs between two versions of a session (present in one only counts): a login, logout or
 * change of user, after which the session gets a new id so that an id seen before the change is worth nothing. */
int session_shared_value_changed(const phpser_session *before, const phpser_session *after, const char *key);
/* The same for the keys that name the logged-in user in mod_session: mod_auth_form's "user", or "<AuthName>-user". */
int session_shared_user_changed(const phpser_session *before, const phpser_session *after);
int session_shared_apply_urlencoded(phpser_session *session, const char *encoded, size_t len);

#endif
