/* mod_booking's internals shared by its source files: the request context routes run in, replies, PostgreSQL calls
 * that map failures to HTTP statuses, validation of JSON members and query parameters, the availability engine and
 * the outbox. Not for the adapters (they use booking.h). */
#ifndef BOOKING_INT_H
#define BOOKING_INT_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stddef.h>

#include "booking.h"
#include "pg.h"

/* ------------------------------------------------------------------------------------------------ context */

#define BOOKING_MAX_PARAMS 4

typedef struct booking_arena_block booking_arena_block;

typedef struct {
    booking_store *store;
    const booking_config *config;
    const booking_request *req;
    booking_response *resp;
    char base[512];         /* the API's base path, e.g. "/booking/api" (no trailing slash) */
    const char *route;      /* the path below base, e.g. "/partners/salon-lumiere/services" */
    const char *partner_id; /* public routes: the partner this host is limited to (NULL: all); partner routes:
                               the partner of the authenticated user */
    const char *params[BOOKING_MAX_PARAMS]; /* the route's {captures}, in order, decoded, NUL-terminated */
    PGconn *conn;                           /* borrowed by booking_conn, given back by the router */
    int conn_broken;                        /* the connection failed: close it rather than reuse it */
    int in_transaction;                     /* the router rolls back an open transaction after the route */
    char sqlstate[6];                       /* of the last failed booking_exec */
    char err[512];                          /* of the last failed booking_exec */
    const char *field_prefix;               /* prepended to field names in 400 errors, e.g. "customer." */
    booking_arena_block *arena;             /* memory freed when the request ends */
} booking_ctx;

/* Memory that lives until the request ends (never NULL: aborts on exhaustion like the servers' pools). */
void *booking_alloc(booking_ctx *ctx, size_t size);
char *booking_strdup(booking_ctx *ctx, const char *s);
char *booking_strndup(booking_ctx *ctx, const char *s, size_t len);
char *booking_printf(booking_ctx *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---------------------------------------------------------------------------------------------- replies */

/* 2xx with a JSON body (steals body; NULL body: no content). */
void booking_reply_json(booking_ctx *ctx, int status, json_t *body);
/* {"error": message, "code": code, "field": field} (field omitted when NULL; the field name gets ctx->field_prefix).
 * 4xx: ctx->resp->log gets "<code>: <message> (field <field>)" at info level. 5xx: at error level. */
void booking_reply_error(booking_ctx *ctx, int status, const char *code, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* Any other body (CSV, iCalendar): steals the malloc'd body. */
void booking_reply_raw(booking_ctx *ctx, int status, const char *content_type, char *body, size_t len);
/* Maps the last failed booking_exec: 23P01 (exclusion: a staff member or resource is taken) -> 409 "slot_taken";
 * 23505 (unique) -> 409 "conflict"; 22xxx/23xxx (data the checks refused) -> 400 "invalid"; 08xxx, 57xxx and
 * anything else -> 503 "unavailable" with Retry-After (and the connection is marked broken). */
void booking_reply_db_error(booking_ctx *ctx);

/* ------------------------------------------------------------------------------------------- PostgreSQL */

/* The store's connection pool (the dispatcher borrows from it directly). */
pg_pool *booking_store_pool(booking_store *store);
/* The process's availability cache of this store (booking_cache.c), NULL when it could not be made. */
typedef struct booking_cache booking_cache;
booking_cache *booking_store_cache(booking_store *store);
booking_cache *booking_cache_create(void);
void booking_cache_destroy(booking_cache *cache);
void booking_cache_clear(booking_cache *cache);
/* 1 and response filled when a fresh answer for this request is cached. */
int booking_cache_answer(booking_cache *cache, const booking_config *config, const booking_request *request,
                         booking_response *response);
/* Keeps an availability answer for config->cache_ttl seconds; empties the cache after a successful write. */
void booking_cache_keep(booking_cache *cache, const booking_config *config, const booking_request *request,
                        const booking_response *response);

/* A connection from the store's pool, the schema migrated first. NULL and err when PostgreSQL cannot be reached. */
PGconn *booking_store_acquire(booking_store *store, char *err, size_t errlen);

/* The request's connection, borrowed on first use. NULL after replying 503 + Retry-After (logged). */
PGconn *booking_conn(booking_ctx *ctx);
/* Parameterised query (text parameters; NULL values are SQL NULL). NULL on failure with ctx->sqlstate and ctx->err
 * set and nothing replied: the caller decides (usually booking_reply_db_error). Borrows the connection if needed;
 * when that fails, ctx->sqlstate is "08006". */
PGresult *booking_exec(booking_ctx *ctx, const char *sql, int nparams, const char *const *values);
/* BEGIN / COMMIT / ROLLBACK. 0 or -1 (ctx->sqlstate/err set, nothing replied). */
int booking_begin(booking_ctx *ctx);
int booking_commit(booking_ctx *ctx);
void booking_rollback(booking_ctx *ctx);

/* -------------------------------------------------------------------------------------- request reading */

/* A query parameter, decoded (+ and %XX), NULL when absent. The first occurrence wins. */
const char *booking_arg(booking_ctx *ctx, const char *name);
/* The body as a JSON object: 415 unless Content-Type is application/json, 400 "invalid_json" (with line and column)
 * unless it parses to an object. NULL after replying. The caller json_decref()s the result. */
json_t *booking_body_json(booking_ctx *ctx);

/* Members of a JSON object. Each returns 0 when the member is valid (or absent and not required: *out untouched),
 * or replies 400 naming the field (ctx->field_prefix + name) and returns -1. Strings are trimmed copies in the
 * request's memory; control characters are refused. */
int booking_check_members(booking_ctx *ctx, json_t *object, const char *const *allowed); /* NULL-terminated list */
int booking_get_string(booking_ctx *ctx, json_t *object, const char *name, int required, size_t max_len,
                       const char **out);
int booking_get_int(booking_ctx *ctx, json_t *object, const char *name, int required, long long min, long long max,
                    long long *out);
int booking_get_bool(booking_ctx *ctx, json_t *object, const char *name, int required, int *out);
int booking_get_email(booking_ctx *ctx, json_t *object, const char *name, int required, const char **out);
int booking_get_phone(booking_ctx *ctx, json_t *object, const char *name, int required, const char **out);
int booking_get_date(booking_ctx *ctx, json_t *object, const char *name, int required, const char **out);
int booking_get_time(booking_ctx *ctx, json_t *object, const char *name, int required, const char **out);
/* RFC 3339 with an offset or Z; *epoch gets the instant. */
int booking_get_timestamp(booking_ctx *ctx, json_t *object, const char *name, int required, const char **out,
                          long long *epoch);

/* The same rules for query parameters (400 naming the parameter). */
int booking_arg_date(booking_ctx *ctx, const char *name, int required, const char **out);
int booking_arg_id(booking_ctx *ctx, const char *name, int required, long long *out);

/* The rules themselves, pure (unit tests and fuzzing call them). */
int booking_valid_email(const char *s);                               /* 1 when valid, at most 254 bytes */
int booking_normalize_phone(const char *s, char *out, size_t outlen); /* "+33 6 12-34.56.78" -> "+33612345678";
                                                                         0 or -1 (7 to 15 digits, optional +) */
int booking_valid_date(const char *s);                                /* YYYY-MM-DD, a real calendar day */
int booking_valid_time(const char *s);                                /* HH:MM, 00:00 to 24:00 */
int booking_parse_timestamp(const char *s, long long *epoch);         /* RFC 3339 -> epoch; 0 or -1 */
int booking_valid_partner_id(const char *s);                          /* ^[a-z0-9][a-z0-9-]{0,62}$ */

/* ----------------------------------------------------------------------------------------- availability */

typedef struct {
    long long start, end; /* UTC epoch seconds, [start, end) */
} booking_interval;

/* Pure engine (booking_avail.c). The service needs [t - buffer_before, t + duration + buffer_after) inside one of
 * the staff member's working windows and free of that staff member's busy intervals (other bookings, which already
 * include their buffers), and, when it needs a resource, one resource free over the same range. Candidate starts
 * are each working window's opening plus whole steps (so slots keep local wall-clock alignment across DST), between
 * earliest and latest (inclusive/exclusive). */
typedef struct {
    long long staff_id;
    const booking_interval *windows; /* sorted, disjoint */
    size_t window_count;
    const booking_interval *busy; /* any order, may overlap */
    size_t busy_count;
} booking_avail_staff;

typedef struct {
    long long resource_id;
    const booking_interval *busy;
    size_t busy_count;
} booking_avail_resource;

typedef struct {
    long long duration_s, buffer_before_s, buffer_after_s, step_s;
    long long earliest, latest; /* starts allowed in [earliest, latest) */
    const booking_avail_staff *staff;
    size_t staff_count;
    int needs_resource; /* 1: one of resources must be free too (none given: no slot) */
    const booking_avail_resource *resources;
    size_t resource_count;
} booking_avail_query;

typedef struct {
    long long start, end; /* the service itself, UTC epoch seconds */
    long long *staff_ids; /* who is free for it, ascending */
    size_t staff_count;
    int utc_offset; /* seconds east of UTC at start, in the partner's zone (filled by the loader) */
} booking_slot;

typedef struct {
    booking_slot *slots; /* ascending by start, one entry per distinct start */
    size_t count;
} booking_slots;

/* 0, or -1 when memory ran out. */
int booking_avail_compute(const booking_avail_query *query, booking_slots *out);
void booking_slots_free(booking_slots *slots);
/* Sorted, merged set operations on intervals (malloc'd result, *out_count); 0 or -1 on memory. */
int booking_intervals_intersect(const booking_interval *a, size_t na, const booking_interval *b, size_t nb,
                                booking_interval **out, size_t *out_count);
int booking_intervals_subtract(const booking_interval *a, size_t na, const booking_interval *b, size_t nb,
                               booking_interval **out, size_t *out_count);

/* Loader (booking_availability.c): reads the partner's calendar for the service over the local dates [from, to]
 * (inclusive) and computes the free slots, with utc_offset filled for each. staff_id 0: any staff member who
 * performs the service. ignore_booking_id > 0: that booking's busy range is ignored (rescheduling it). Honours the
 * partner's minimum notice, horizon and slot step. Returns 0, or -1 after replying (404 unknown partner or
 * service or staff not performing it, 400 bad range, 503). */
int booking_availability_load(booking_ctx *ctx, const char *partner_id, long long service_id, long long staff_id,
                              const char *from_date, const char *to_date, long long ignore_booking_id,
                              booking_slots *out);

/* Each active staff member's working windows (opening hours or the day's special hours, intersected with the
 * working plan, minus breaks, closures and absences) over the local dates [from, to], UTC epochs. staff_id 0: all
 * of the partner's. Returns 0, or -1 after replying. */
typedef struct {
    long long staff_id;
    booking_interval *windows;
    size_t count;
} booking_staff_windows;

int booking_windows_load(booking_ctx *ctx, const char *partner_id, long long staff_id, const char *from_date,
                         const char *to_date, booking_staff_windows **out, size_t *count);
void booking_staff_windows_free(booking_staff_windows *windows, size_t count);

/* "2026-03-28T10:00:00+01:00" for an instant and a UTC offset (out: at least 32 bytes). */
void booking_format_local(long long epoch, int utc_offset, char *out);
/* The partner's zone (its own or BookingTimeZone), in request memory; NULL after replying 404/503. */
const char *booking_partner_zone(booking_ctx *ctx, const char *partner_id);

/* ----------------------------------------------------------------------------------------------- outbox */

/* Inside the caller's open transaction: writes the notification for kind ("booking.confirmed",
 * "booking.cancelled", "booking.rescheduled") with the booking's details as its payload, and keeps its reminder in
 * step (scheduled BookingReminder hours before the start when that is still ahead; cancelled with the booking).
 * Returns 0, or -1 with ctx->sqlstate/err set and nothing replied. */
int booking_outbox_enqueue(booking_ctx *ctx, long long booking_id, const char *kind);

/* ------------------------------------------------------------------------------------------------ routes */

/* Every route is a function of the context; it replies through booking_reply_*. The router (booking_api.c) has
 * matched the method and path, filled ctx->params, resolved ctx->partner_id, and gives the connection back after. */
typedef void (*booking_route_fn)(booking_ctx *ctx);

/* public (booking_public.c) */
void booking_route_partners(booking_ctx *ctx);           /* GET  /partners?city=&service= */
void booking_route_partner(booking_ctx *ctx);            /* GET  /partners/{id} */
void booking_route_services(booking_ctx *ctx);           /* GET  /partners/{id}/services */
void booking_route_book(booking_ctx *ctx);               /* POST /bookings */
void booking_route_booking_view(booking_ctx *ctx);       /* GET  /bookings/{id}          (manage token) */
void booking_route_booking_cancel(booking_ctx *ctx);     /* POST /bookings/{id}/cancel   (manage token) */
void booking_route_booking_reschedule(booking_ctx *ctx); /* POST /bookings/{id}/reschedule (manage token) */
/* booking_availability.c */
void booking_route_availability(booking_ctx *ctx); /* GET /partners/{id}/availability?service=&from=&to=&staff= */
/* booking_ical.c */
void booking_route_ical(booking_ctx *ctx); /* GET /ical/{token}.ics */
/* booking_notify.c */
void booking_route_status(booking_ctx *ctx); /* GET /status (authenticated): outbox depth and lag */

/* partner (booking_partner.c), ctx->partner_id is the authenticated user's partner */
void booking_route_p_self(booking_ctx *ctx);                   /* GET /account */
void booking_route_p_update(booking_ctx *ctx);                 /* PUT /account */
void booking_route_p_hours(booking_ctx *ctx);                  /* GET, PUT /account/hours */
void booking_route_p_exceptions(booking_ctx *ctx);             /* GET, POST /account/exceptions */
void booking_route_p_exception_delete(booking_ctx *ctx);       /* DELETE /account/exceptions/{id} */
void booking_route_p_calendar(booking_ctx *ctx);               /* GET /account/calendar?date=&view=day|week */
void booking_route_p_staff_list(booking_ctx *ctx);             /* GET, POST /account/staff */
void booking_route_p_staff_one(booking_ctx *ctx);              /* GET, PUT, DELETE /account/staff/{id} */
void booking_route_p_staff_plan(booking_ctx *ctx);             /* GET, PUT /account/staff/{id}/plan */
void booking_route_p_staff_exceptions(booking_ctx *ctx);       /* GET, POST /account/staff/{id}/exceptions */
void booking_route_p_staff_exception_delete(booking_ctx *ctx); /* DELETE /account/staff/{id}/exceptions/{id} */
void booking_route_p_services(booking_ctx *ctx);               /* GET, POST /account/services */
void booking_route_p_service_one(booking_ctx *ctx);            /* GET, PUT, DELETE /account/services/{id} */
void booking_route_p_resources(booking_ctx *ctx);              /* GET, POST /account/resources */
void booking_route_p_resource_one(booking_ctx *ctx);           /* PUT, DELETE /account/resources/{id} */
void booking_route_p_booking_status(booking_ctx *ctx);         /* POST /account/bookings/{id}/status */
/* booking_report.c */
void booking_route_p_reports(booking_ctx *ctx); /* GET /account/reports?month=YYYY-MM&format=json|csv */
/* booking_ical.c */
void booking_route_p_staff_ical(booking_ctx *ctx); /* GET /account/staff/{id}/ical: the feed's secret URL */

#endif
