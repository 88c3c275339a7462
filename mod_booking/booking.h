/* mod_booking, the part both adapters call: the settings the directives fill, the JSON API as one function from a
 * request view to a response, the white-label page, and the notification dispatcher's pass. Everything here that
 * touches PostgreSQL or the notification gateway blocks: Apache calls it from request threads or its dispatcher
 * thread, nginx only from thread-pool tasks. */
#ifndef BOOKING_H
#define BOOKING_H

#include <stddef.h>
#include <time.h>

#include "pg.h"
#include "metrics.h"

extern const pg_migration booking_migrations[];

/* Metrics (core/metrics.h), indexed by these enums; label values in the order of the definitions' values. */
typedef enum {
    BOOKING_METRIC_API_REQUESTS,  /* api_requests_total{status} */
    BOOKING_METRIC_BOOKINGS,      /* bookings_total{result} */
    BOOKING_METRIC_STORE_ERRORS,  /* store_errors_total */
    BOOKING_METRIC_STORE_LATENCY, /* store_latency_ms */
    BOOKING_METRIC_NOTIFICATIONS, /* notifications_total{result} */
    BOOKING_METRIC_OUTBOX_PENDING,
    BOOKING_METRIC_OUTBOX_DUE,
    BOOKING_METRIC_OUTBOX_LAG
} booking_metric;

typedef enum { BOOKING_STATUS_2XX, BOOKING_STATUS_4XX, BOOKING_STATUS_5XX } booking_status_class; /* 1xx, 3xx: none */
typedef enum { BOOKING_RESULT_CREATED, BOOKING_RESULT_CONFLICT, BOOKING_RESULT_REFUSED } booking_create_result;
typedef enum { BOOKING_NOTIFY_DELIVERED, BOOKING_NOTIFY_RETRIED, BOOKING_NOTIFY_DEAD } booking_notify_result;

extern const metrics_def booking_metric_defs[];
extern const size_t booking_metric_count;
extern metrics_block *booking_metrics; /* set by the adapter; NULL: nothing is counted */

#define BOOKING_MAX_BODY                  (64 * 1024) /* larger request bodies get 413 from the adapters */
#define BOOKING_NOTIFY_POLL_MS            250         /* how often each process looks for due notifications */
#define BOOKING_RETRY_AFTER_S             5           /* Retry-After sent with 503 while PostgreSQL cannot be reached */
#define BOOKING_NOTIFY_ATTEMPTS_DEFAULT   8
#define BOOKING_NOTIFY_TIMEOUT_MS_DEFAULT 5000
#define BOOKING_REMINDER_HOURS_DEFAULT    24

typedef enum {
    BOOKING_PARTNER_ALL = 0,   /* a marketplace: every partner */
    BOOKING_PARTNER_FIXED,     /* BookingPartner ID: one partner's white-label site */
    BOOKING_PARTNER_FROM_HOST, /* BookingPartner from-host: the partner whose host names hold the request's Host */
} booking_partner_mode;

/* Per virtual host (every directive is server-level on both servers). Strings belong to the adapter's
 * configuration memory and live as long as the configuration. */
typedef struct {
    const char *postgres;  /* BookingPostgres conninfo; NULL: the module is off for this host */
    const char *time_zone; /* BookingTimeZone, for partners without a zone of their own; default "UTC" */
    booking_partner_mode partner_mode;
    const char *partner_id;    /* BookingPartner ID */
    const char *page_api;      /* BookingPageAPI: the API's URL path the booking page calls; "/booking/api" */
    const char *notify_url;    /* BookingNotifyURL; NULL: no notifications are sent from this host */
    const char *notify_secret; /* BookingNotifySecretFile's content (HMAC-SHA256 key) */
    size_t notify_secret_len;  /* */
    long notify_attempts;      /* BookingNotifyAttempts: tries before a message is parked as dead */
    long notify_timeout_ms;    /* BookingNotifyTimeout: one delivery attempt */
    long reminder_hours;       /* BookingReminder: hours before the start; 0 sends no reminder */
    long cache_ttl;            /* BookingCacheTTL: seconds an availability answer is reused by this process; 0: never */
} booking_config;

/* Defaults for everything not set (call after merging). The adapters create configurations with the long fields at
 * -1 (unset: nginx's NGX_CONF_UNSET) and the pointers NULL. */
void booking_config_defaults(booking_config *config);

/* Directive values shared by both adapters, so they cannot drift apart. Each returns NULL when the value is good
 * (and stores it), or a short phrase for the server's configuration error. */
const char *booking_set_partner(booking_config *config, const char *arg);    /* ID | from-host */
const char *booking_set_time_zone(booking_config *config, const char *arg);  /* an IANA name tzdata knows */
const char *booking_set_notify_url(booking_config *config, const char *arg); /* http:// or https:// */
const char *booking_set_page_api(booking_config *config, const char *arg);   /* an absolute path */
/* 1 to 100 / 100 ms to 60000 ms / 0 to 720 h */
const char *booking_set_number(long *field, const char *arg, long min, long max);

/* ------------------------------------------------------------------------------------------------- store */

typedef struct booking_store booking_store;

/* The process's store for this conninfo, opened lazily (migrations applied on first use; a database that is down
 * then is migrated later). Never blocks. NULL and err when the conninfo is unusable. */
booking_store *booking_store_get(const char *postgres, char *err, size_t errlen);
void booking_stores_close_all(void);

/* -------------------------------------------------------------------------------------------------- API */

/* One request to the `booking-api` handler, as the adapter sees it. */
typedef struct {
    const char *method;      /* "GET", "HEAD", "POST", "PUT", "DELETE", ... */
    const char *path;        /* the decoded URI path, e.g. "/booking/api/partners/salon-lumiere/services" */
    const char *args;        /* the raw query string without '?', NULL when none */
    const char *host;        /* the Host header (may carry a port), NULL when none */
    const char *remote_user; /* the user the server's own authentication let in, NULL when none */
    const char *token;       /* the X-Booking-Token header (a customer's manage token), NULL when none */
    const char *content_type;
    const char *body; /* the request body, NULL when none */
    size_t body_len;
    time_t now;
} booking_request;

typedef struct {
    int status;                /* HTTP status */
    const char *content_type;  /* static string */
    char *body;                /* malloc'd, may be NULL for 204 */
    size_t body_len;           /* */
    long retry_after;          /* > 0: send Retry-After with this many seconds */
    const char *allow;         /* 405: the Allow header (static) */
    char *content_disposition; /* malloc'd, NULL when none (CSV downloads) */
    char *location;            /* malloc'd, NULL when none (201 Created) */
    char log[512];             /* non-empty: one line for the server's error log saying what was wrong */
    int log_is_error;          /* 1: the store failed (error level); 0: the client sent bad input (info level) */
} booking_response;

void booking_response_free(booking_response *response);

/* Routes the request (see docs/booking.md for the routes), runs it and fills response. The API's base is found in
 * the path itself (the part before the route), so it answers wherever the handler is mounted. Blocks. */
/* The answer from this process's availability cache (BookingCacheTTL), when it holds one: 1 and response filled (free
 * it with booking_response_free), else 0. Never blocks: nginx calls it on the event loop before posting a task. */
int booking_api_cached(booking_store *store, const booking_config *config, const booking_request *request,
                       booking_response *response);

void booking_api_handle(booking_store *store, const booking_config *config, const booking_request *request,
                        booking_response *response);

/* ----------------------------------------------------------------------------------------------- the page */

/* The white-label booking page (mod_booking/page/booking_page.html) with its API path filled in and a fresh nonce
 * for its inline script and style. *html and *csp (the Content-Security-Policy header value) are malloc'd.
 * Returns 0, or -1 when memory or randomness failed. Never blocks. */
int booking_page_render(const booking_config *config, char **html, size_t *html_len, char **csp);

/* ------------------------------------------------------------------------------------------ notifications */

typedef struct {
    unsigned delivered; /* accepted by the gateway (2xx) */
    unsigned retried;   /* failed, tried again later with backoff */
    unsigned dead;      /* failed for the last time: parked as dead */
    unsigned purged;    /* old delivered, dead and cancelled rows removed */
} booking_notify_stats;

/* One pass of the dispatcher: claims the messages due now one at a time with FOR UPDATE SKIP LOCKED (so that
 * several nodes never take the same one), posts each to config->notify_url signed with HMAC-SHA256, and records
 * the outcome in the same transaction; stops when nothing is due, after max_messages, or after max_ms. Purges old
 * rows now and then. Returns the number of messages handled, or -1 when PostgreSQL cannot be reached (err says
 * why). Blocks. */
int booking_notify_pass(booking_store *store, const booking_config *config, unsigned max_messages, unsigned max_ms,
                        booking_notify_stats *stats, char *err, size_t errlen);

#endif
