/* Each staff member's bookings as an iCalendar feed (RFC 5545) behind a secret URL, for calendar applications that
 * subscribe to it, and the partner route that tells the partner that URL.
 *
 * The feed holds the bookings starting from 30 days ago to 365 days ahead; cancelled ones stay in it with
 * STATUS:CANCELLED so that subscribers remove them rather than keep a stale copy. Times are UTC ("...Z"), which
 * needs no VTIMEZONE. */
#include "booking_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BOOKING_ICAL_LINE_OCTETS 75 /* RFC 5545 3.1: lines longer than this are folded */
#define BOOKING_ICAL_TOKEN_MAX   128

/* The text being built; failed is set once memory ran out and every later append is skipped. */
typedef struct {
    char *data;
    size_t len, cap;
    int failed;
} booking_ical_buf;

static void booking_ical_append(booking_ical_buf *buf, const char *bytes, size_t len)
{
    if (buf->failed)
        return;
    if (buf->len + len + 1 > buf->cap) {
        size_t cap = buf->cap ? buf->cap : 4096;
        char *data;

        while (cap < buf->len + len + 1)
            cap *= 2;
        data = realloc(buf->data, cap);
        if (data == NULL) {
            buf->failed = 1;
            return;
        }
        buf->data = data;
        buf->cap = cap;
    }
    memcpy(buf->data + buf->len, bytes, len);
    buf->len += len;
    buf->data[buf->len] = '\0';
}

/* RFC 5545 3.3.11: backslash, semicolon and comma are escaped, line breaks become \n, and other control characters
 * (which TEXT may not hold) become spaces. */
static void booking_ical_escape(booking_ical_buf *out, const char *text)
{
    const unsigned char *p;

    for (p = (const unsigned char *)text; *p; p++) {
        if (*p == '\\' || *p == ';' || *p == ',') {
            char pair[2] = {'\\', (char)*p};
            booking_ical_append(out, pair, 2);
        } else if (*p == '\r' && p[1] == '\n') {
            continue;
        } else if (*p == '\n' || *p == '\r') {
            booking_ical_append(out, "\\n", 2);
        } else if (*p < 0x20 || *p == 0x7f) {
            booking_ical_append(out, " ", 1);
        } else {
            booking_ical_append(out, (const char *)p, 1);
        }
    }
}

/* The length of the next folded piece of line[0..len) that fits in room octets, never ending inside a UTF-8
 * sequence (a continuation byte 10xxxxxx never starts a piece). */
static size_t booking_ical_fold_at(const char *line, size_t len, size_t room)
{
    size_t cut;

    if (len <= room)
        return len;
    cut = room;
    while (cut > 0 && ((unsigned char)line[cut] & 0xC0) == 0x80)
        cut--;
    return cut > 0 ? cut : room;
}

/* Appends one content line ending in CRLF, folded at 75 octets: each continuation line starts with a space, which
 * counts towards its 75. */
static void booking_ical_put_folded(booking_ical_buf *out, const char *line, size_t len)
{
    size_t room = BOOKING_ICAL_LINE_OCTETS, piece;

    for (;;) {
        piece = booking_ical_fold_at(line, len, room);
        booking_ical_append(out, line, piece);
        booking_ical_append(out, "\r\n", 2);
        line += piece;
        len -= piece;
        if (len == 0)
            return;
        booking_ical_append(out, " ", 1);
        room = BOOKING_ICAL_LINE_OCTETS - 1;
    }
}

/* name:value with value as it is (already in the property's syntax). */
static void booking_ical_put(booking_ical_buf *out, const char *name, const char *value)
{
    booking_ical_buf line = {0};

    booking_ical_append(&line, name, strlen(name));
    booking_ical_append(&line, ":", 1);
    booking_ical_append(&line, value, strlen(value));
    if (line.failed)
        out->failed = 1;
    else
        booking_ical_put_folded(out, line.data, line.len);
    free(line.data);
}

/* name:value with value escaped as TEXT. */
static void booking_ical_put_text(booking_ical_buf *out, const char *name, const char *value)
{
    booking_ical_buf line = {0};

    booking_ical_append(&line, name, strlen(name));
    booking_ical_append(&line, ":", 1);
    booking_ical_escape(&line, value);
    if (line.failed)
        out->failed = 1;
    else
        booking_ical_put_folded(out, line.data, line.len);
    free(line.data);
}

/* name:YYYYMMDDTHHMMSSZ */
static void booking_ical_put_utc(booking_ical_buf *out, const char *name, long long epoch)
{
    time_t t = (time_t)epoch;
    struct tm tm;
    char value[32];

    if (gmtime_r(&t, &tm) == NULL || strftime(value, sizeof(value), "%Y%m%dT%H%M%SZ", &tm) == 0) {
        out->failed = 1;
        return;
    }
    booking_ical_put(out, name, value);
}

/* Columns of booking_ical_feed_sql. */
enum {
    BOOKING_ICAL_STAFF_NAME,
    BOOKING_ICAL_PARTNER_ID,
    BOOKING_ICAL_PARTNER_NAME,
    BOOKING_ICAL_BOOKING_ID,
    BOOKING_ICAL_STATUS,
    BOOKING_ICAL_STARTS,
    BOOKING_ICAL_ENDS,
    BOOKING_ICAL_CREATED,
    BOOKING_ICAL_UPDATED,
    BOOKING_ICAL_SERVICE,
    BOOKING_ICAL_CUSTOMER,
    BOOKING_ICAL_PHONE,
};

/* One row per booking, or one row of NULL bookings when there are none; no row for an unknown token or a staff
 * member who was removed. $1 token, $2 now (epoch seconds). */
static const char booking_ical_feed_sql[] =
    "SELECT st.name, p.id, p.name, b.id, b.status, extract(epoch FROM b.starts_at)::bigint,"
    " extract(epoch FROM b.ends_at)::bigint, extract(epoch FROM b.created_at)::bigint,"
    " extract(epoch FROM b.updated_at)::bigint, b.service_name, b.customer_name, b.customer_phone"
    " FROM booking.staff st JOIN booking.partners p ON p.id = st.partner_id"
    " LEFT JOIN (SELECT bk.*, sv.name AS service_name, c.name AS customer_name, c.phone AS customer_phone"
    "   FROM booking.bookings bk JOIN booking.services sv ON sv.id = bk.service_id"
    "   JOIN booking.customers c ON c.id = bk.customer_id) b ON b.staff_id = st.id"
    "   AND b.starts_at >= to_timestamp($2::bigint) - interval '30 days'"
    "   AND b.starts_at < to_timestamp($2::bigint) + interval '365 days'"
    " WHERE st.ical_token = $1 AND st.active ORDER BY b.starts_at, b.id";

static void booking_ical_put_event(booking_ical_buf *out, PGresult *res, int row)
{
    const char *partner_id = PQgetvalue(res, row, BOOKING_ICAL_PARTNER_ID);
    const char *status = PQgetvalue(res, row, BOOKING_ICAL_STATUS);
    booking_ical_buf text = {0};
    char uid[160];

    snprintf(uid, sizeof(uid), "booking-%s@%s", PQgetvalue(res, row, BOOKING_ICAL_BOOKING_ID), partner_id);
    booking_ical_put(out, "BEGIN", "VEVENT");
    booking_ical_put(out, "UID", uid);
    booking_ical_put_utc(out, "DTSTAMP", strtoll(PQgetvalue(res, row, BOOKING_ICAL_UPDATED), NULL, 10));
    booking_ical_put_utc(out, "CREATED", strtoll(PQgetvalue(res, row, BOOKING_ICAL_CREATED), NULL, 10));
    booking_ical_put_utc(out, "LAST-MODIFIED", strtoll(PQgetvalue(res, row, BOOKING_ICAL_UPDATED), NULL, 10));
    booking_ical_put_utc(out, "DTSTART", strtoll(PQgetvalue(res, row, BOOKING_ICAL_STARTS), NULL, 10));
    booking_ical_put_utc(out, "DTEND", strtoll(PQgetvalue(res, row, BOOKING_ICAL_ENDS), NULL, 10));
    /* The summary is built unescaped, then escaped as a whole. */
    booking_ical_append(&text, PQgetvalue(res, row, BOOKING_ICAL_SERVICE),
                        strlen(PQgetvalue(res, row, BOOKING_ICAL_SERVICE)));
    booking_ical_append(&text, " - ", 3);
    booking_ical_append(&text, PQgetvalue(res, row, BOOKING_ICAL_CUSTOMER),
                        strlen(PQgetvalue(res, row, BOOKING_ICAL_CUSTOMER)));
    if (text.failed)
        out->failed = 1;
    else
        booking_ical_put_text(out, "SUMMARY", text.data);
    free(text.data);
    booking_ical_put_text(out, "DESCRIPTION", PQgetvalue(res, row, BOOKING_ICAL_PHONE));
    /* A no-show or a completed booking still took the time: only a cancellation frees it. */
    if (strcmp(status, "cancelled") == 0) {
        booking_ical_put(out, "STATUS", "CANCELLED");
        booking_ical_put(out, "TRANSP", "TRANSPARENT");
    } else {
        booking_ical_put(out, "STATUS", "CONFIRMED");
        booking_ical_put(out, "TRANSP", "OPAQUE");
    }
    booking_ical_put(out, "END", "VEVENT");
}

static void booking_ical_put_calendar(booking_ical_buf *out, PGresult *res)
{
    booking_ical_buf name = {0};
    const char *staff = PQgetvalue(res, 0, BOOKING_ICAL_STAFF_NAME);
    const char *partner = PQgetvalue(res, 0, BOOKING_ICAL_PARTNER_NAME);
    int row, rows = PQntuples(res);

    booking_ical_put(out, "BEGIN", "VCALENDAR");
    booking_ical_put(out, "PRODID", "-//mod_booking//Booking calendar//EN");
    booking_ical_put(out, "VERSION", "2.0");
    booking_ical_put(out, "CALSCALE", "GREGORIAN");
    booking_ical_append(&name, staff, strlen(staff));
    booking_ical_append(&name, " - ", 3);
    booking_ical_append(&name, partner, strlen(partner));
    if (name.failed)
        out->failed = 1;
    else
        booking_ical_put_text(out, "X-WR-CALNAME", name.data);
    free(name.data);
    /* How often subscribers should fetch the feed again (RFC 7986, and its older Microsoft name). */
    booking_ical_put(out, "REFRESH-INTERVAL;VALUE=DURATION", "PT15M");
    booking_ical_put(out, "X-PUBLISHED-TTL", "PT15M");
    for (row = 0; row < rows; row++)
        if (!PQgetisnull(res, row, BOOKING_ICAL_BOOKING_ID))
            booking_ical_put_event(out, res, row);
    booking_ical_put(out, "END", "VCALENDAR");
}

/* The token part of "{token}.ics", or NULL when it cannot be a token (answered 404 without asking PostgreSQL). */
static const char *booking_ical_token(booking_ctx *ctx, const char *piece)
{
    size_t len, i;

    if (piece == NULL)
        return NULL;
    len = strlen(piece);
    if (len <= 4 || len - 4 > BOOKING_ICAL_TOKEN_MAX || strcmp(piece + len - 4, ".ics") != 0)
        return NULL;
    for (i = 0; i < len - 4; i++) {
        char c = piece[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-' || c == '_'))
            return NULL;
    }
    return booking_strndup(ctx, piece, len - 4);
}

void booking_route_ical(booking_ctx *ctx)
{
    char now[24];
    const char *params[2];
    booking_ical_buf out = {0};
    PGresult *res;

    /* No detail on a bad token: the URL is the only secret. */
    params[0] = booking_ical_token(ctx, ctx->params[0]);
    if (params[0] == NULL) {
        booking_reply_error(ctx, 404, "not_found", NULL, "not found");
        return;
    }
    snprintf(now, sizeof(now), "%lld", (long long)ctx->req->now);
    params[1] = now;
    res = booking_exec(ctx, booking_ical_feed_sql, 2, params);
    if (res == NULL) {
        booking_reply_db_error(ctx);
        return;
    }
    if (PQntuples(res) == 0) {
        PQclear(res);
        booking_reply_error(ctx, 404, "not_found", NULL, "not found");
        return;
    }
    booking_ical_put_calendar(&out, res);
    PQclear(res);
    if (out.failed) {
        free(out.data);
        booking_reply_error(ctx, 500, "internal", NULL, "out of memory");
        return;
    }
    booking_reply_raw(ctx, 200, "text/calendar; charset=utf-8", out.data, out.len);
}

/* A staff id from the path: digits only, no sign, fits a bigint. */
static int booking_parse_staff_id(const char *s)
{
    size_t i, len = s ? strlen(s) : 0;

    if (len == 0 || len > 18 || s[0] == '0')
        return 0;
    for (i = 0; i < len; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return 1;
}

void booking_route_p_staff_ical(booking_ctx *ctx)
{
    const char *params[2];
    PGresult *res;
    json_t *body;
    char *url;

    if (!booking_parse_staff_id(ctx->params[0])) {
        booking_reply_error(ctx, 404, "not_found", NULL, "no such staff member");
        return;
    }
    params[0] = ctx->params[0];
    params[1] = ctx->partner_id;
    res = booking_exec(ctx, "SELECT ical_token FROM booking.staff WHERE id = $1 AND partner_id = $2 AND active", 2,
                       params);
    if (res == NULL) {
        booking_reply_db_error(ctx);
        return;
    }
    if (PQntuples(res) != 1) {
        PQclear(res);
        booking_reply_error(ctx, 404, "not_found", NULL, "no such staff member");
        return;
    }
    url = booking_printf(ctx, "%s/ical/%s.ics", ctx->base, PQgetvalue(res, 0, 0));
    PQclear(res);
    body = json_pack("{s:s}", "url", url);
    if (body == NULL) {
        booking_reply_error(ctx, 500, "internal", NULL, "out of memory");
        return;
    }
    booking_reply_json(ctx, 200, body);
}
