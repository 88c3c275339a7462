/* Notifications: the outbox rows written in a booking's own transaction, the dispatcher pass that delivers them to
 * BookingNotifyURL signed with HMAC-SHA256, and the status route that shows the queue's depth and lag.
 *
 * Delivery is at least once: the row stays locked (FOR UPDATE SKIP LOCKED) while it is posted, so no other node
 * takes it, and its outcome is committed after the gateway answered. A crash or a lost COMMIT between the two sends
 * it again later with the same X-Booking-Delivery id, which is what receivers de-duplicate on. */
#include "booking_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crypto.h"
#include "http.h"

#define BOOKING_NOTIFY_BACKOFF_FIRST_MS 1000
#define BOOKING_NOTIFY_BACKOFF_MAX_MS   60000
#define BOOKING_NOTIFY_PURGE_EVERY_S    60
#define BOOKING_NOTIFY_SIGNATURE_MAX    128
#define BOOKING_NOTIFY_KIND_MAX         63
#define BOOKING_NOTIFY_GAUGES_EVERY_MS  2000

/* Pure parts, also driven by tests/unit/test_booking_notify.c. */
long booking_notify_backoff_ms(long attempts);
int booking_notify_sign(const char *secret, size_t secret_len, long long t, const char *body, size_t body_len,
                        char *out, size_t outlen);
void booking_notify_error_text(const char *error, const char *url, char *out, size_t outlen);

/* --------------------------------------------------------------------------------------------- the outbox */

/* One row for the booking, its payload built from the database itself so that it shows what was committed. $4 NULL:
 * the event, due at once; $4 hours: its reminder, due that long before the start, and only while that is ahead. The
 * partner's local times carry their own offset ("2026-03-28T10:00:00+01:00"), which to_char cannot print. */
static const char booking_outbox_insert_sql[] =
    "INSERT INTO booking.outbox (booking_id, kind, payload, due_at, next_attempt_at) "
    "SELECT b.id, $2::text, "
    "       jsonb_build_object('event', $2::text, 'booking', jsonb_build_object("
    "           'id', b.id, 'status', b.status, "
    "           'partner', jsonb_build_object('id', p.id, 'name', p.name), "
    "           'service', jsonb_build_object('id', s.id, 'name', s.name), "
    "           'staff', jsonb_build_object('id', st.id, 'name', st.name), "
    "           'start', to_char(l.ls, 'YYYY-MM-DD\"T\"HH24:MI:SS') || CASE WHEN o.so < 0 THEN '-' ELSE '+' END"
    "                    || lpad((abs(o.so) / 3600)::text, 2, '0') || ':'"
    "                    || lpad((abs(o.so) % 3600 / 60)::text, 2, '0'), "
    "           'end', to_char(l.le, 'YYYY-MM-DD\"T\"HH24:MI:SS') || CASE WHEN o.eo < 0 THEN '-' ELSE '+' END"
    "                  || lpad((abs(o.eo) / 3600)::text, 2, '0') || ':'"
    "                  || lpad((abs(o.eo) % 3600 / 60)::text, 2, '0'), "
    "           'time_zone', z.tz, "
    "           'price_cents', b.price_cents, "
    "           'currency', b.currency, "
    "           'customer', jsonb_build_object('name', c.name, 'email', c.email, 'phone', c.phone))), "
    "       d.due, d.due "
    "  FROM booking.bookings b "
    "  JOIN booking.partners p ON p.id = b.partner_id "
    "  JOIN booking.services s ON s.id = b.service_id "
    "  JOIN booking.staff st ON st.id = b.staff_id "
    "  JOIN booking.customers c ON c.id = b.customer_id "
    "  CROSS JOIN LATERAL (SELECT coalesce(p.time_zone, $3::text) AS tz) z "
    "  CROSS JOIN LATERAL (SELECT b.starts_at AT TIME ZONE z.tz AS ls, b.ends_at AT TIME ZONE z.tz AS le) l "
    "  CROSS JOIN LATERAL (SELECT extract(epoch FROM l.ls - (b.starts_at AT TIME ZONE 'UTC'))::int AS so, "
    "                             extract(epoch FROM l.le - (b.ends_at AT TIME ZONE 'UTC'))::int AS eo) o "
    "  CROSS JOIN LATERAL (SELECT coalesce(b.starts_at - make_interval(hours => $4::int), clock_timestamp()) "
    "                             AS due) d "
    " WHERE b.id = $1::bigint "
    "   AND ($4::int IS NULL OR (b.status = 'confirmed' AND d.due > clock_timestamp()))";

static void booking_outbox_fail(booking_ctx *ctx, const char *sqlstate, const char *why, const char *kind)
{
    snprintf(ctx->sqlstate, sizeof(ctx->sqlstate), "%s", sqlstate);
    snprintf(ctx->err, sizeof(ctx->err), "outbox: %s (%.80s)", why, kind);
}

/* Kinds go into an HTTP header as they are. */
static int booking_outbox_valid_kind(const char *kind)
{
    size_t len = strlen(kind);

    return len > 0 && len <= BOOKING_NOTIFY_KIND_MAX && strspn(kind, "abcdefghijklmnopqrstuvwxyz._") == len;
}

static int booking_outbox_insert(booking_ctx *ctx, const char *id, const char *kind, const char *hours, int required)
{
    const char *zone = ctx->config->time_zone ? ctx->config->time_zone : "UTC";
    const char *params[4] = {id, kind, zone, hours};
    PGresult *res = booking_exec(ctx, booking_outbox_insert_sql, 4, params);
    int inserted;

    if (res == NULL)
        return -1;
    inserted = atoi(PQcmdTuples(res));
    PQclear(res);
    if (required && inserted != 1) {
        booking_outbox_fail(ctx, "02000", "no such booking", id);
        return -1;
    }
    return 0;
}

/* A reminder belongs to one start time: a new time (or a cancellation) makes the pending one obsolete. */
static int booking_outbox_cancel_reminders(booking_ctx *ctx, const char *id)
{
    const char *params[1] = {id};
    PGresult *res = booking_exec(ctx,
                                 "UPDATE booking.outbox SET status = 'cancelled' "
                                 " WHERE booking_id = $1::bigint AND kind = 'booking.reminder' AND status = 'pending'",
                                 1, params);

    if (res == NULL)
        return -1;
    PQclear(res);
    return 0;
}

int booking_outbox_enqueue(booking_ctx *ctx, long long booking_id, const char *kind)
{
    char id[24], hours[24];
    int schedules, cancels;

    if (kind == NULL || !booking_outbox_valid_kind(kind)) {
        booking_outbox_fail(ctx, "22023", "invalid kind", kind ? kind : "(null)");
        return -1;
    }
    snprintf(id, sizeof(id), "%lld", booking_id);
    if (booking_outbox_insert(ctx, id, kind, NULL, 1) != 0)
        return -1;
    schedules = strcmp(kind, "booking.confirmed") == 0 || strcmp(kind, "booking.rescheduled") == 0;
    cancels = schedules || strcmp(kind, "booking.cancelled") == 0;
    if (cancels && booking_outbox_cancel_reminders(ctx, id) != 0)
        return -1;
    if (schedules && ctx->config->reminder_hours > 0) {
        snprintf(hours, sizeof(hours), "%ld", ctx->config->reminder_hours);
        if (booking_outbox_insert(ctx, id, "booking.reminder", hours, 0) != 0)
            return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------ pure helpers */

long booking_notify_backoff_ms(long attempts)
{
    long ms = BOOKING_NOTIFY_BACKOFF_FIRST_MS;

    for (; attempts > 1 && ms < BOOKING_NOTIFY_BACKOFF_MAX_MS; attempts--)
        ms *= 2;
    return ms < BOOKING_NOTIFY_BACKOFF_MAX_MS ? ms : BOOKING_NOTIFY_BACKOFF_MAX_MS;
}

/* "t=<t>,v1=<hex HMAC-SHA256 of "<t>.<body>">": the time inside the MAC lets receivers refuse old replays. Returns
 * the length written, or -1 when out is too small or memory ran out. */
int booking_notify_sign(const char *secret, size_t secret_len, long long t, const char *body, size_t body_len,
                        char *out, size_t outlen)
{
    unsigned char mac[CRYPTO_SHA256_LEN];
    char prefix[32], hex[2 * CRYPTO_SHA256_LEN + 1];
    int prefix_len = snprintf(prefix, sizeof(prefix), "%lld.", t), n;
    char *msg = malloc((size_t)prefix_len + body_len + 1);

    if (msg == NULL)
        return -1;
    memcpy(msg, prefix, (size_t)prefix_len);
    if (body_len > 0)
        memcpy(msg + prefix_len, body, body_len);
    crypto_hmac_sha256(secret, secret_len, msg, (size_t)prefix_len + body_len, mac);
    free(msg);
    crypto_hex_encode(mac, sizeof(mac), hex);
    n = snprintf(out, outlen, "t=%lld,v1=%s", t, hex);
    return n < 0 || (size_t)n >= outlen ? -1 : n;
}

/* core/http.c names the URL in its errors, and a URL may carry credentials: keep only the cause. */
void booking_notify_error_text(const char *error, const char *url, char *out, size_t outlen)
{
    const char *cause = error;
    size_t url_len = url ? strlen(url) : 0;

    if (strncmp(cause, "POST ", 5) == 0 && url_len > 0 && strncmp(cause + 5, url, url_len) == 0 &&
        strncmp(cause + 5 + url_len, ": ", 2) == 0)
        cause += 5 + url_len + 2;
    else if (url_len > 0 && strstr(cause, url) != NULL)
        cause = strncmp(cause, "response from ", 14) == 0 ? "response too large" : "transport error";
    snprintf(out, outlen, "%.200s", *cause ? cause : "transport error");
}

/* ------------------------------------------------------------------------------------------ the dispatcher */

typedef struct {
    PGconn *conn;
    const booking_config *config;
    booking_notify_stats *stats;
    char *err;
    size_t errlen;
} booking_dispatch;

typedef struct {
    int delivered;   /* the gateway answered 2xx */
    char error[256]; /* otherwise: why (no secrets) */
} booking_delivery;

static long long booking_notify_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static PGresult *booking_notify_sql(booking_dispatch *d, const char *sql, int nparams, const char *const *params)
{
    double started = metrics_now_ms();
    PGresult *res = pg_exec(d->conn, sql, nparams, params, NULL, NULL, d->err, d->errlen);

    metrics_observe_ms(booking_metrics, BOOKING_METRIC_STORE_LATENCY, 0, metrics_now_ms() - started);
    if (res == NULL)
        metrics_add(booking_metrics, BOOKING_METRIC_STORE_ERRORS, 0, 1);
    return res;
}

static int booking_notify_run(booking_dispatch *d, const char *sql, int nparams, const char *const *params)
{
    PGresult *res = booking_notify_sql(d, sql, nparams, params);

    if (res == NULL)
        return -1;
    PQclear(res);
    return 0;
}

/* Removes old finished rows, at most once a minute per process and 1000 at a time, so the table stays bounded
 * without one long delete. */
static int booking_notify_purge(booking_dispatch *d)
{
    static long long last_purge_ms;
    long long now = booking_notify_now_ms(), last = __atomic_load_n(&last_purge_ms, __ATOMIC_RELAXED);
    PGresult *res;

    if (last != 0 && now - last < BOOKING_NOTIFY_PURGE_EVERY_S * 1000)
        return 0;
    if (!__atomic_compare_exchange_n(&last_purge_ms, &last, now, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
        return 0; /* another thread of this process took this turn */
    res = booking_notify_sql(d,
                             "DELETE FROM booking.outbox WHERE id IN ("
                             "  SELECT id FROM booking.outbox "
                             "   WHERE status <> 'pending' AND created_at < now() - interval '30 days' LIMIT 1000)",
                             0, NULL);
    if (res == NULL)
        return -1;
    d->stats->purged += (unsigned)atoi(PQcmdTuples(res));
    PQclear(res);
    return 0;
}

/* Posts one message. The http layer does not retry: a failure is retried by the outbox with backoff, so that one
 * unreachable gateway does not hold the row lock for long. */
static void booking_notify_post(const booking_config *config, const char *id, const char *kind, const char *body,
                                size_t body_len, booking_delivery *out)
{
    char event[32 + BOOKING_NOTIFY_KIND_MAX], delivery[48], signature[32 + BOOKING_NOTIFY_SIGNATURE_MAX];
    const char *headers[6];
    size_t n = 0;
    http_request request = {0};
    http_response response = {0};
    int len;

    memset(out, 0, sizeof(*out));
    headers[n++] = "Content-Type: application/json";
    /* curl waits for a "100 Continue" before larger bodies: a lost second of latency for nothing */
    headers[n++] = "Expect:";
    snprintf(event, sizeof(event), "X-Booking-Event: %s", booking_outbox_valid_kind(kind) ? kind : "unknown");
    headers[n++] = event;
    snprintf(delivery, sizeof(delivery), "X-Booking-Delivery: %s", id);
    headers[n++] = delivery;
    if (config->notify_secret != NULL) {
        strcpy(signature, "X-Booking-Signature: ");
        len = (int)strlen(signature);
        if (booking_notify_sign(config->notify_secret, config->notify_secret_len, (long long)time(NULL), body, body_len,
                                signature + len, sizeof(signature) - (size_t)len) < 0) {
            snprintf(out->error, sizeof(out->error), "could not sign the message");
            return;
        }
        headers[n++] = signature;
    }
    headers[n] = NULL;
    request.method = "POST";
    request.url = config->notify_url;
    request.headers = headers;
    request.body = body;
    request.body_len = body_len;
    request.timeout_ms =
        (unsigned)(config->notify_timeout_ms > 0 ? config->notify_timeout_ms : BOOKING_NOTIFY_TIMEOUT_MS_DEFAULT);
    request.connect_timeout_ms = request.timeout_ms < 1000 ? request.timeout_ms : 1000;
    request.retries = 0;
    request.max_body = 64 * 1024;
    if (http_perform(&request, &response) != 0)
        booking_notify_error_text(response.error, config->notify_url, out->error, sizeof(out->error));
    else if (response.status >= 200 && response.status < 300)
        out->delivered = 1;
    else
        snprintf(out->error, sizeof(out->error), "HTTP %ld", response.status);
    http_response_free(&response);
}

/* Records the outcome in the claim's transaction. */
static int booking_notify_record(booking_dispatch *d, const char *id, long attempts, const booking_delivery *outcome)
{
    long max_attempts = d->config->notify_attempts > 0 ? d->config->notify_attempts : BOOKING_NOTIFY_ATTEMPTS_DEFAULT;
    char backoff[24], max[24];
    const char *params[4] = {id, outcome->error, max, backoff};
    PGresult *res;

    if (outcome->delivered) {
        if (booking_notify_run(d,
                               "UPDATE booking.outbox SET status = 'delivered', delivered_at = clock_timestamp(), "
                               "       attempts = attempts + 1, last_error = NULL WHERE id = $1::bigint",
                               1, params) != 0)
            return -1;
        d->stats->delivered++;
        metrics_add(booking_metrics, BOOKING_METRIC_NOTIFICATIONS, BOOKING_NOTIFY_DELIVERED, 1);
        return 0;
    }
    snprintf(max, sizeof(max), "%ld", max_attempts);
    snprintf(backoff, sizeof(backoff), "%ld", booking_notify_backoff_ms(attempts + 1));
    res = booking_notify_sql(d,
                             "UPDATE booking.outbox SET attempts = attempts + 1, last_error = $2, "
                             "       status = CASE WHEN attempts + 1 >= $3::int THEN 'dead' ELSE 'pending' END, "
                             "       next_attempt_at = clock_timestamp() + make_interval(secs => $4::int / 1000.0) "
                             " WHERE id = $1::bigint RETURNING status",
                             4, params);
    if (res == NULL)
        return -1;
    if (PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "dead") == 0) {
        d->stats->dead++;
        metrics_add(booking_metrics, BOOKING_METRIC_NOTIFICATIONS, BOOKING_NOTIFY_DEAD, 1);
    } else {
        d->stats->retried++;
        metrics_add(booking_metrics, BOOKING_METRIC_NOTIFICATIONS, BOOKING_NOTIFY_RETRIED, 1);
    }
    PQclear(res);
    return 0;
}

/* Claims, posts and records the oldest due message in one transaction. 1: handled, 0: nothing due, -1: PostgreSQL
 * failed (d->err; the connection should not be reused). */
static int booking_notify_one(booking_dispatch *d)
{
    booking_delivery outcome;
    PGresult *res;
    long attempts;
    int rc = -1;

    if (booking_notify_run(d, "BEGIN", 0, NULL) != 0)
        return -1;
    res = booking_notify_sql(d,
                             "SELECT id, kind, attempts, json_build_object("
                             "         'id', id, 'event', kind, "
                             "         'created_at', to_char(created_at AT TIME ZONE 'UTC', "
                             "                               'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), "
                             "         'booking', payload->'booking')::text "
                             "  FROM booking.outbox "
                             " WHERE status = 'pending' AND next_attempt_at <= now() "
                             " ORDER BY next_attempt_at LIMIT 1 FOR UPDATE SKIP LOCKED",
                             0, NULL);
    if (res == NULL)
        return -1;
    if (PQntuples(res) == 0) {
        PQclear(res);
        return booking_notify_run(d, "COMMIT", 0, NULL) == 0 ? 0 : -1;
    }
    attempts = atol(PQgetvalue(res, 0, 2));
    booking_notify_post(d->config, PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1), PQgetvalue(res, 0, 3),
                        (size_t)PQgetlength(res, 0, 3), &outcome);
    if (booking_notify_record(d, PQgetvalue(res, 0, 0), attempts, &outcome) == 0 &&
        booking_notify_run(d, "COMMIT", 0, NULL) == 0)
        rc = 1;
    PQclear(res);
    return rc;
}

/* The outbox's depth and lag for the metrics, at most every 2 s per process (every process runs the dispatcher, and
 * one answer is as good as another): one query on the partial index of pending rows. */
static void booking_notify_gauges(booking_dispatch *d)
{
    static long long last_ms;
    long long now = booking_notify_now_ms(), last = __atomic_load_n(&last_ms, __ATOMIC_RELAXED);
    PGresult *res;

    if (booking_metrics == NULL || (last != 0 && now - last < BOOKING_NOTIFY_GAUGES_EVERY_MS))
        return;
    if (!__atomic_compare_exchange_n(&last_ms, &last, now, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
        return;
    res = booking_notify_sql(d,
                             "SELECT count(*), count(*) FILTER (WHERE next_attempt_at <= now()), "
                             "       coalesce(floor(extract(epoch FROM now() - min(due_at) "
                             "           FILTER (WHERE next_attempt_at <= now()))), 0)::bigint "
                             "  FROM booking.outbox WHERE status = 'pending'",
                             0, NULL);
    if (res == NULL)
        return;
    if (PQntuples(res) == 1) {
        metrics_set(booking_metrics, BOOKING_METRIC_OUTBOX_PENDING, 0, strtoll(PQgetvalue(res, 0, 0), NULL, 10));
        metrics_set(booking_metrics, BOOKING_METRIC_OUTBOX_DUE, 0, strtoll(PQgetvalue(res, 0, 1), NULL, 10));
        metrics_set(booking_metrics, BOOKING_METRIC_OUTBOX_LAG, 0, strtoll(PQgetvalue(res, 0, 2), NULL, 10));
    }
    PQclear(res);
}

int booking_notify_pass(booking_store *store, const booking_config *config, unsigned max_messages, unsigned max_ms,
                        booking_notify_stats *stats, char *err, size_t errlen)
{
    booking_notify_stats ignored;
    booking_dispatch d = {.config = config, .stats = stats ? stats : &ignored, .err = err, .errlen = errlen};
    long long deadline = booking_notify_now_ms() + max_ms;
    pg_pool *pool;
    int handled = 0, rc = 0;

    memset(d.stats, 0, sizeof(*d.stats));
    if (config->notify_url == NULL || store == NULL)
        return 0;
    if ((pool = booking_store_pool(store)) == NULL) {
        snprintf(err, errlen, "no PostgreSQL pool");
        return -1;
    }
    if ((d.conn = pg_pool_acquire(pool, err, errlen)) == NULL) {
        metrics_add(booking_metrics, BOOKING_METRIC_STORE_ERRORS, 0, 1);
        return -1;
    }
    if (booking_notify_purge(&d) != 0)
        rc = -1;
    while (rc == 0 && (max_messages == 0 || (unsigned)handled < max_messages) &&
           (max_ms == 0 || booking_notify_now_ms() < deadline)) {
        rc = booking_notify_one(&d);
        if (rc <= 0)
            break;
        handled++;
        rc = 0;
    }
    /* after the pass: what it left behind is the depth to show */
    if (rc >= 0)
        booking_notify_gauges(&d);
    pg_pool_release(pool, d.conn, rc >= 0);
    return rc < 0 ? -1 : handled;
}

/* ------------------------------------------------------------------------------------------- the status */

void booking_route_status(booking_ctx *ctx)
{
    PGresult *res = booking_exec(
        ctx,
        "SELECT count(*) FILTER (WHERE status = 'pending'), "
        "       count(*) FILTER (WHERE status = 'pending' AND next_attempt_at <= now()), "
        "       count(*) FILTER (WHERE status = 'dead'), "
        "       coalesce(round(extract(epoch FROM now() - min(due_at) FILTER ("
        "           WHERE status = 'pending' AND next_attempt_at <= now())), 3), 0), "
        "       count(*) FILTER (WHERE status = 'delivered' AND delivered_at > now() - interval '1 hour'), "
        "       round(percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM delivered_at - due_at) * 1000) "
        "           FILTER (WHERE status = 'delivered' AND delivered_at > now() - interval '1 hour'))::bigint "
        "  FROM booking.outbox",
        0, NULL);
    json_t *body;

    if (res == NULL) {
        booking_reply_db_error(ctx);
        return;
    }
    body = json_pack("{s:{s:I,s:I,s:I,s:f,s:I,s:o}}", "outbox", "pending", (json_int_t)atoll(PQgetvalue(res, 0, 0)),
                     "due", (json_int_t)atoll(PQgetvalue(res, 0, 1)), "dead", (json_int_t)atoll(PQgetvalue(res, 0, 2)),
                     "oldest_due_lag_s", atof(PQgetvalue(res, 0, 3)), "delivered_last_hour",
                     (json_int_t)atoll(PQgetvalue(res, 0, 4)), "delivery_lag_p99_ms_last_hour",
                     PQgetisnull(res, 0, 5) ? json_null() : json_integer((json_int_t)atoll(PQgetvalue(res, 0, 5))));
    PQclear(res);
    if (body == NULL) {
        booking_reply_error(ctx, 500, "internal", NULL, "out of memory");
        return;
    }
    booking_reply_json(ctx, 200, body);
}
