/* Availability: reads a partner's calendar from PostgreSQL and hands it to the pure engine (booking_avail.c), and
 * the public route GET {base}/partners/{id}/availability.
 *
 * Wall-clock to instants: calendars are local times of the partner's zone; PostgreSQL turns each local date plus
 * time into an instant ((day + time) AT TIME ZONE zone), so a 09:00 opening is 09:00 on both sides of a DST change
 * and a whole-day absence lasts 23 or 25 hours on those days. Once everything is an instant the set operations need
 * no notion of days. Offsets shown with each slot come from PostgreSQL too, one query for every start at once.
 *
 * Queries per request: the partner with the service, the calendar (opening hours, special hours, closures, working
 * plans, breaks, absences, in one statement), the staff's bookings, the resources' bookings when the service needs
 * one, and the offsets: never one per day or per staff member. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "booking_int.h"

#define BOOKING_AVAIL_MAX_DAYS   31  /* days in one availability request, both ends included */
#define BOOKING_WINDOWS_MAX_DAYS 400 /* days of windows for one call (a report covers a month; a year fits) */

/* The row kinds of the calendar statement (column 1), in its ORDER BY order. */
enum {
    BOOKING_ROW_STAFF = 0,   /* a staff member with no interval */
    BOOKING_ROW_OPENING = 1, /* the partner open (weekday hours, or the day's special hours) */
    BOOKING_ROW_HOURS = 2,   /* a staff member's working plan */
    BOOKING_ROW_OFF = 3,     /* a staff member's break or absence */
};

/* Dates are checked by booking_valid_date before this is used; wall-clock here is only for a local date in the
 * partner's zone ("2026-03-29"), days are counted without any zone. */
static const char booking_calendar_sql[] =
    "WITH days AS ("
    "  SELECT $2::date + i AS day, extract(isodow FROM $2::date + i)::int AS weekday"
    "  FROM generate_series(0, $3::date - $2::date) AS i"
    "), staff AS ("
    "  SELECT st.id FROM booking.staff st"
    "  WHERE st.partner_id = $1 AND st.active AND ($5::bigint = 0 OR st.id = $5::bigint)"
    "    AND ($6::bigint = 0 OR EXISTS (SELECT 1 FROM booking.service_staff ss"
    "                                  WHERE ss.service_id = $6::bigint AND ss.staff_id = st.id))"
    "), exceptions AS ("
    "  SELECT day, opens, closes, bool_or(opens IS NULL) OVER (PARTITION BY day) AS closed"
    "  FROM booking.partner_exceptions WHERE partner_id = $1 AND day BETWEEN $2::date AND $3::date"
    "), opening AS ("
    /* a closure wins over special hours given for the same day */
    "  SELECT day, opens, closes FROM exceptions WHERE NOT closed"
    "  UNION ALL"
    "  SELECT d.day, h.opens, h.closes FROM days d"
    "  JOIN booking.opening_hours h ON h.partner_id = $1 AND h.weekday = d.weekday"
    "  WHERE NOT EXISTS (SELECT 1 FROM exceptions e WHERE e.day = d.day)"
    ") "
    "SELECT 0, s.id, 0::bigint, 0::bigint FROM staff s "
    "UNION ALL "
    "SELECT 1, 0, extract(epoch FROM (o.day + o.opens) AT TIME ZONE $4)::bigint,"
    "             extract(epoch FROM (o.day + o.closes) AT TIME ZONE $4)::bigint FROM opening o "
    "UNION ALL "
    "SELECT 2, h.staff_id, extract(epoch FROM (d.day + h.starts) AT TIME ZONE $4)::bigint,"
    "                      extract(epoch FROM (d.day + h.ends) AT TIME ZONE $4)::bigint"
    "  FROM days d JOIN booking.staff_hours h ON h.weekday = d.weekday JOIN staff s ON s.id = h.staff_id "
    "UNION ALL "
    "SELECT 3, b.staff_id, extract(epoch FROM (d.day + b.starts) AT TIME ZONE $4)::bigint,"
    "                      extract(epoch FROM (d.day + b.ends) AT TIME ZONE $4)::bigint"
    "  FROM days d JOIN booking.staff_breaks b ON b.weekday = d.weekday JOIN staff s ON s.id = b.staff_id "
    "UNION ALL "
    /* an absence without times is the whole local day, midnight to midnight */
    "SELECT 3, x.staff_id, extract(epoch FROM (x.day + coalesce(x.starts, time '00:00')) AT TIME ZONE $4)::bigint,"
    "       extract(epoch FROM (CASE WHEN x.ends IS NULL THEN (x.day + 1)::timestamp ELSE x.day + x.ends END)"
    "                              AT TIME ZONE $4)::bigint"
    "  FROM booking.staff_exceptions x JOIN staff s ON s.id = x.staff_id"
    "  WHERE x.day BETWEEN $2::date AND $3::date "
    "ORDER BY 1, 2, 3";

/* The partner's settings and the service, in one row; the service columns are NULL when it is not this partner's
 * active service. */
static const char booking_setup_sql[] =
    "SELECT coalesce(p.time_zone, $3), p.min_notice_minutes, p.horizon_days, p.slot_step_minutes,"
    "       s.id, s.duration_minutes, s.buffer_before_minutes, s.buffer_after_minutes, s.resource_kind"
    "  FROM booking.partners p"
    "  LEFT JOIN booking.services s ON s.id = $2::bigint AND s.partner_id = p.id AND s.active"
    " WHERE p.id = $1 AND p.active";

/* The exclusion constraint's GiST index on (staff_id, busy) answers each staff member's range scan, provided the scan
 * carries both columns. Planned with the range as a constant, a range past the statistics' last bucket (the future,
 * where new bookings land) looks empty, and the planner would scan the range alone for everyone's bookings and filter
 * by staff afterwards: 20 ms and growing with the day's bookings instead of 0.1 ms. The LATERAL subquery (OFFSET 0
 * keeps it from being flattened) makes the member a parameter of the scan, so both columns are always used. */
static const char booking_staff_busy_sql[] =
    "SELECT s.id, extract(epoch FROM lower(b.busy))::bigint, extract(epoch FROM upper(b.busy))::bigint"
    "  FROM unnest($1::bigint[]) AS s(id)"
    " CROSS JOIN LATERAL (SELECT b.busy FROM booking.bookings b"
    "                      WHERE b.staff_id = s.id AND b.status <> 'cancelled' AND b.id <> $4::bigint"
    "                        AND b.busy && tstzrange(to_timestamp($2::bigint), to_timestamp($3::bigint)) OFFSET 0) b"
    " ORDER BY 1, 2";

static const char booking_resource_busy_sql[] =
    "SELECT r.id, extract(epoch FROM lower(b.busy))::bigint, extract(epoch FROM upper(b.busy))::bigint"
    "  FROM booking.resources r"
    "  LEFT JOIN LATERAL (SELECT b.busy FROM booking.bookings b"
    "                      WHERE b.resource_id = r.id AND b.status <> 'cancelled' AND b.id <> $5::bigint"
    "                        AND b.busy && tstzrange(to_timestamp($3::bigint), to_timestamp($4::bigint)) OFFSET 0) b"
    "    ON true"
    " WHERE r.partner_id = $1 AND r.kind = $2 AND r.active"
    " ORDER BY 1, 2";

/* Local wall-clock time as if it were UTC, minus the instant: the offset east of UTC at that instant. */
static const char booking_offsets_sql[] = "SELECT (extract(epoch FROM to_timestamp(u.t) AT TIME ZONE $2) - u.t)::int"
                                          "  FROM unnest($1::bigint[]) WITH ORDINALITY AS u(t, n) ORDER BY u.n";

/* What the availability of one service needs to know besides the calendar. */
typedef struct {
    const char *zone;
    long long notice_s, horizon_s, step_s;
    long long duration_s, before_s, after_s;
    const char *resource_kind; /* NULL: the service needs no resource */
} booking_avail_setup;

/* ------------------------------------------------------------------------------------------------ helpers */

static long long booking_cell_ll(const PGresult *res, int row, int col)
{
    return strtoll(PQgetvalue(res, row, col), NULL, 10);
}

/* Days since 1970-01-01 of a valid YYYY-MM-DD (Howard Hinnant's days_from_civil). */
static long booking_days_from_civil(const char *date)
{
    long y = strtol(date, NULL, 10), m = strtol(date + 5, NULL, 10), d = strtol(date + 8, NULL, 10);
    long era, yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* from and to valid, from <= to and at most max_days days both included. 0, or -1 after replying 400. */
static int booking_check_range(booking_ctx *ctx, const char *from, const char *to, long max_days)
{
    long span;

    if (from == NULL || !booking_valid_date(from)) {
        booking_reply_error(ctx, 400, "invalid", "from", "must be a date YYYY-MM-DD");
        return -1;
    }
    if (to == NULL || !booking_valid_date(to)) {
        booking_reply_error(ctx, 400, "invalid", "to", "must be a date YYYY-MM-DD");
        return -1;
    }
    span = booking_days_from_civil(to) - booking_days_from_civil(from);
    if (span < 0) {
        booking_reply_error(ctx, 400, "invalid", "to", "must not be before from");
        return -1;
    }
    if (span >= max_days) {
        booking_reply_error(ctx, 400, "invalid", "to", "the range is at most %ld days", max_days);
        return -1;
    }
    return 0;
}

/* On a white-label host only that partner exists. */
static int booking_partner_visible(booking_ctx *ctx, const char *partner_id)
{
    if (partner_id == NULL || !booking_valid_partner_id(partner_id) ||
        (ctx->partner_id != NULL && strcmp(ctx->partner_id, partner_id) != 0)) {
        booking_reply_error(ctx, 404, "not_found", NULL, "no such partner");
        return 0;
    }
    return 1;
}

static const char *booking_default_zone(booking_ctx *ctx)
{
    return ctx->config->time_zone ? ctx->config->time_zone : "UTC";
}

/* "{1,2,3}", a bigint[] parameter, in request memory. */
static char *booking_id_array(booking_ctx *ctx, const long long *ids, size_t n, size_t stride)
{
    char *text = booking_alloc(ctx, n * 21 + 3), *p = text;
    size_t i;

    *p++ = '{';
    for (i = 0; i < n; i++) {
        const long long *id = (const long long *)((const char *)ids + i * stride);
        p += sprintf(p, "%s%lld", i ? "," : "", *id);
    }
    *p++ = '}';
    *p = '\0';
    return text;
}

void booking_format_local(long long epoch, int utc_offset, char *out)
{
    time_t local = (time_t)(epoch + utc_offset);
    struct tm tm;
    int minutes = utc_offset / 60;
    char sign = '+';
    size_t len;

    if (minutes < 0) {
        sign = '-';
        minutes = -minutes;
    }
    if (gmtime_r(&local, &tm) == NULL || (len = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm)) == 0) {
        strcpy(out, "1970-01-01T00:00:00+00:00");
        return;
    }
    snprintf(out + len, 32 - len, "%c%02d:%02d", sign, minutes / 60 % 100, minutes % 60);
}

const char *booking_partner_zone(booking_ctx *ctx, const char *partner_id)
{
    const char *values[2] = {partner_id, booking_default_zone(ctx)};
    const char *zone;
    PGresult *res;

    if (!booking_partner_visible(ctx, partner_id))
        return NULL;
    res = booking_exec(ctx, "SELECT coalesce(time_zone, $2) FROM booking.partners WHERE id = $1 AND active", 2, values);
    if (res == NULL) {
        booking_reply_db_error(ctx);
        return NULL;
    }
    if (PQntuples(res) == 0) {
        PQclear(res);
        booking_reply_error(ctx, 404, "not_found", NULL, "no such partner");
        return NULL;
    }
    zone = booking_strdup(ctx, PQgetvalue(res, 0, 0));
    PQclear(res);
    return zone;
}

/* ------------------------------------------------------------------------------------------------ windows */

void booking_staff_windows_free(booking_staff_windows *windows, size_t count)
{
    size_t i;

    if (windows == NULL)
        return;
    for (i = 0; i < count; i++)
        free(windows[i].windows);
    free(windows);
}

/* Rows [*row, n) of one kind and (when staff_id >= 0) one staff member, as intervals in request memory; *row moves
 * past them. Rows are ordered by kind, staff, start, so each call continues where the previous one stopped. */
static booking_interval *booking_take_rows(booking_ctx *ctx, const PGresult *res, int *row, int kind,
                                           long long staff_id, size_t *count)
{
    int n = PQntuples(res), first;
    booking_interval *set;
    size_t i;

    while (*row < n && booking_cell_ll(res, *row, 0) == kind && staff_id >= 0 &&
           booking_cell_ll(res, *row, 1) < staff_id)
        (*row)++;
    first = *row;
    while (*row < n && booking_cell_ll(res, *row, 0) == kind &&
           (staff_id < 0 || booking_cell_ll(res, *row, 1) == staff_id))
        (*row)++;
    *count = (size_t)(*row - first);
    set = booking_alloc(ctx, (*count ? *count : 1) * sizeof(*set));
    for (i = 0; i < *count; i++) {
        set[i].start = booking_cell_ll(res, first + (int)i, 2);
        set[i].end = booking_cell_ll(res, first + (int)i, 3);
    }
    return set;
}

/* First row of a kind (the kinds come in order). */
static int booking_kind_start(const PGresult *res, int kind)
{
    int row, n = PQntuples(res);

    for (row = 0; row < n && booking_cell_ll(res, row, 0) < kind; row++)
        ;
    return row;
}

/* (opening ∩ plan) − (breaks ∪ absences) for one staff member, malloc'd. 0 or -1 on memory. */
static int booking_staff_windows_compute(const booking_interval *opening, size_t nopening,
                                         const booking_interval *hours, size_t nhours, const booking_interval *off,
                                         size_t noff, booking_staff_windows *out)
{
    booking_interval *worked = NULL;
    size_t nworked = 0;
    int rc;

    if (booking_intervals_intersect(opening, nopening, hours, nhours, &worked, &nworked) < 0)
        return -1;
    rc = booking_intervals_subtract(worked, nworked, off, noff, &out->windows, &out->count);
    free(worked);
    return rc;
}

/* Turns the calendar statement's rows into each staff member's windows. 0 or -1 on memory (nothing replied). */
static int booking_windows_from_rows(booking_ctx *ctx, const PGresult *res, booking_staff_windows **out, size_t *count)
{
    booking_staff_windows *all;
    booking_interval *opening_rows, *opening = NULL, *hours, *off;
    size_t nstaff, nopening_rows, nopening = 0, nhours, noff, i;
    int row = 0, hours_row, off_row;

    booking_take_rows(ctx, res, &row, BOOKING_ROW_STAFF, -1, &nstaff);
    all = calloc(nstaff ? nstaff : 1, sizeof(*all));
    if (all == NULL)
        return -1;
    row = booking_kind_start(res, BOOKING_ROW_OPENING);
    opening_rows = booking_take_rows(ctx, res, &row, BOOKING_ROW_OPENING, -1, &nopening_rows);
    /* subtracting nothing sorts and merges overlapping opening rows once rather than once per staff member */
    if (booking_intervals_subtract(opening_rows, nopening_rows, NULL, 0, &opening, &nopening) < 0)
        goto fail;
    hours_row = booking_kind_start(res, BOOKING_ROW_HOURS);
    off_row = booking_kind_start(res, BOOKING_ROW_OFF);
    for (i = 0; i < nstaff; i++) {
        all[i].staff_id = booking_cell_ll(res, (int)i, 1);
        hours = booking_take_rows(ctx, res, &hours_row, BOOKING_ROW_HOURS, all[i].staff_id, &nhours);
        off = booking_take_rows(ctx, res, &off_row, BOOKING_ROW_OFF, all[i].staff_id, &noff);
        if (booking_staff_windows_compute(opening, nopening, hours, nhours, off, noff, &all[i]) < 0)
            goto fail;
    }
    free(opening);
    *out = all;
    *count = nstaff;
    return 0;
fail:
    free(opening);
    booking_staff_windows_free(all, nstaff);
    return -1;
}

/* The windows of the partner's active staff (staff_id > 0: only that one; service_id > 0: only those who perform
 * it). 0, or -1 after replying (400 "staff" when staff_id is not among them). */
static int booking_windows_query(booking_ctx *ctx, const char *partner_id, const char *zone, long long staff_id,
                                 long long service_id, const char *from, const char *to, booking_staff_windows **out,
                                 size_t *count)
{
    const char *values[6];
    PGresult *res;
    int rc;

    *out = NULL;
    *count = 0;
    values[0] = partner_id;
    values[1] = from;
    values[2] = to;
    values[3] = zone;
    values[4] = booking_printf(ctx, "%lld", staff_id > 0 ? staff_id : 0);
    values[5] = booking_printf(ctx, "%lld", service_id > 0 ? service_id : 0);
    res = booking_exec(ctx, booking_calendar_sql, 6, values);
    if (res == NULL) {
        booking_reply_db_error(ctx);
        return -1;
    }
    if (staff_id > 0 && (PQntuples(res) == 0 || booking_cell_ll(res, 0, 0) != BOOKING_ROW_STAFF)) {
        PQclear(res);
        booking_reply_error(ctx, 400, "invalid", "staff",
                            service_id > 0 ? "no such staff member performs this service" : "no such staff member");
        return -1;
    }
    rc = booking_windows_from_rows(ctx, res, out, count);
    PQclear(res);
    if (rc < 0) {
        booking_reply_error(ctx, 500, "internal", NULL, "out of memory");
        return -1;
    }
    return 0;
}

int booking_windows_load(booking_ctx *ctx, const char *partner_id, long long staff_id, const char *from_date,
                         const char *to_date, booking_staff_windows **out, size_t *count)
{
    const char *zone;

    *out = NULL;
    *count = 0;
    if (booking_check_range(ctx, from_date, to_date, BOOKING_WINDOWS_MAX_DAYS) < 0)
        return -1;
    zone = booking_partner_zone(ctx, partner_id);
    if (zone == NULL)
        return -1;
    return booking_windows_query(ctx, partner_id, zone, staff_id, 0, from_date, to_date, out, count);
}

/* --------------------------------------------------------------------------------------------- busy times */

/* The partner and the service. 0, or -1 after replying (404 partner, 400 "service"). */
static int booking_setup_load(booking_ctx *ctx, const char *partner_id, long long service_id,
                              booking_avail_setup *setup)
{
    const char *values[3];
    PGresult *res;

    values[0] = partner_id;
    values[1] = booking_printf(ctx, "%lld", service_id);
    values[2] = booking_default_zone(ctx);
    res = booking_exec(ctx, booking_setup_sql, 3, values);
    if (res == NULL) {
        booking_reply_db_error(ctx);
        return -1;
    }
    if (PQntuples(res) == 0) {
        PQclear(res);
        booking_reply_error(ctx, 404, "not_found", NULL, "no such partner");
        return -1;
    }
    if (PQgetisnull(res, 0, 4)) {
        PQclear(res);
        booking_reply_error(ctx, 400, "invalid", "service", "no such service at this partner");
        return -1;
    }
    setup->zone = booking_strdup(ctx, PQgetvalue(res, 0, 0));
    setup->notice_s = booking_cell_ll(res, 0, 1) * 60;
    setup->horizon_s = booking_cell_ll(res, 0, 2) * 86400;
    setup->step_s = booking_cell_ll(res, 0, 3) * 60;
    setup->duration_s = booking_cell_ll(res, 0, 5) * 60;
    setup->before_s = booking_cell_ll(res, 0, 6) * 60;
    setup->after_s = booking_cell_ll(res, 0, 7) * 60;
    setup->resource_kind = PQgetisnull(res, 0, 8) ? NULL : booking_strdup(ctx, PQgetvalue(res, 0, 8));
    PQclear(res);
    return 0;
}

/* The first window's start and the last window's end over every staff member; 0 when there is no window. */
static int booking_windows_span(const booking_staff_windows *windows, size_t count, long long *lo, long long *hi)
{
    size_t i;
    int any = 0;

    for (i = 0; i < count; i++) {
        if (windows[i].count == 0)
            continue;
        if (!any || windows[i].windows[0].start < *lo)
            *lo = windows[i].windows[0].start;
        if (!any || windows[i].windows[windows[i].count - 1].end > *hi)
            *hi = windows[i].windows[windows[i].count - 1].end;
        any = 1;
    }
    return any;
}

/* Each staff member's busy intervals over [lo, hi), in request memory, into staff[i].busy. 0 or -1 after replying. */
static int booking_staff_busy_load(booking_ctx *ctx, booking_avail_staff *staff, size_t nstaff, long long lo,
                                   long long hi, long long ignore_booking_id)
{
    const char *values[4];
    booking_interval *busy;
    PGresult *res;
    size_t i;
    int row = 0, n;

    values[0] = booking_id_array(ctx, &staff[0].staff_id, nstaff, sizeof(*staff));
    values[1] = booking_printf(ctx, "%lld", lo);
    values[2] = booking_printf(ctx, "%lld", hi);
    values[3] = booking_printf(ctx, "%lld", ignore_booking_id > 0 ? ignore_booking_id : 0);
    res = booking_exec(ctx, booking_staff_busy_sql, 4, values);
    if (res == NULL) {
        booking_reply_db_error(ctx);
        return -1;
    }
    n = PQntuples(res);
    busy = booking_alloc(ctx, (n ? (size_t)n : 1) * sizeof(*busy));
    for (row = 0; row < n; row++) {
        busy[row].start = booking_cell_ll(res, row, 1);
        busy[row].end = booking_cell_ll(res, row, 2);
    }
    /* staff are in ascending id order and so are the rows: one pass hands each its run */
    row = 0;
    for (i = 0; i < nstaff; i++) {
        while (row < n && booking_cell_ll(res, row, 0) < staff[i].staff_id)
            row++;
        staff[i].busy = &busy[row];
        staff[i].busy_count = 0;
        while (row < n && booking_cell_ll(res, row, 0) == staff[i].staff_id) {
            staff[i].busy_count++;
            row++;
        }
    }
    PQclear(res);
    return 0;
}

/* The partner's active resources of the kind, each with its busy intervals over [lo, hi). 0 or -1 after replying. */
static int booking_resources_load(booking_ctx *ctx, const char *partner_id, const char *kind, long long lo,
                                  long long hi, long long ignore_booking_id, booking_avail_resource **out,
                                  size_t *count)
{
    const char *values[5];
    booking_avail_resource *resources;
    booking_interval *busy;
    PGresult *res;
    int row, n;
    size_t m = 0;

    values[0] = partner_id;
    values[1] = kind;
    values[2] = booking_printf(ctx, "%lld", lo);
    values[3] = booking_printf(ctx, "%lld", hi);
    values[4] = booking_printf(ctx, "%lld", ignore_booking_id > 0 ? ignore_booking_id : 0);
    res = booking_exec(ctx, booking_resource_busy_sql, 5, values);
    if (res == NULL) {
        booking_reply_db_error(ctx);
        return -1;
    }
    n = PQntuples(res);
    resources = booking_alloc(ctx, (n ? (size_t)n : 1) * sizeof(*resources));
    busy = booking_alloc(ctx, (n ? (size_t)n : 1) * sizeof(*busy));
    for (row = 0; row < n; row++) {
        long long id = booking_cell_ll(res, row, 0);
        if (m == 0 || resources[m - 1].resource_id != id) {
            resources[m].resource_id = id;
            resources[m].busy = &busy[row];
            resources[m].busy_count = 0;
            m++;
        }
        /* a resource without bookings comes once, with NULL bounds (the LEFT JOIN) */
        if (!PQgetisnull(res, row, 1)) {
            busy[row].start = booking_cell_ll(res, row, 1);
            busy[row].end = booking_cell_ll(res, row, 2);
            resources[m - 1].busy_count++;
        }
    }
    PQclear(res);
    *out = resources;
    *count = m;
    return 0;
}

/* Each slot's offset east of UTC in the zone, from PostgreSQL's tzdata, and when end_offsets is given, the offset
 * at each slot's end too (in request memory), so a slot across a DST change shows both ends in local time.
 * 0 or -1 after replying. */
static int booking_offsets_fill(booking_ctx *ctx, const char *zone, booking_slots *slots, int **end_offsets)
{
    const char *values[2];
    size_t i, n = slots->count, total = end_offsets ? 2 * n : n;
    char *text, *p;
    PGresult *res;

    if (n == 0)
        return 0;
    text = p = booking_alloc(ctx, total * 21 + 3);
    *p++ = '{';
    for (i = 0; i < total; i++)
        p += sprintf(p, "%s%lld", i ? "," : "", i < n ? slots->slots[i].start : slots->slots[i - n].end);
    strcpy(p, "}");
    values[0] = text;
    values[1] = zone;
    res = booking_exec(ctx, booking_offsets_sql, 2, values);
    if (res == NULL) {
        booking_reply_db_error(ctx);
        return -1;
    }
    if ((size_t)PQntuples(res) != total) {
        PQclear(res);
        booking_reply_error(ctx, 500, "internal", NULL, "the offsets do not match the slots");
        return -1;
    }
    for (i = 0; i < n; i++)
        slots->slots[i].utc_offset = (int)booking_cell_ll(res, (int)i, 0);
    if (end_offsets != NULL) {
        *end_offsets = booking_alloc(ctx, n * sizeof(**end_offsets));
        for (i = 0; i < n; i++)
            (*end_offsets)[i] = (int)booking_cell_ll(res, (int)(n + i), 0);
    }
    PQclear(res);
    return 0;
}

/* ----------------------------------------------------------------------------------------------- the loader */

/* The slots once the calendar is known: busy times, resources, the engine, offsets. 0 or -1 after replying. */
static int booking_slots_compute(booking_ctx *ctx, const char *partner_id, const booking_avail_setup *setup,
                                 const booking_staff_windows *windows, size_t nwindows, long long ignore_booking_id,
                                 booking_slots *out, int **end_offsets)
{
    booking_avail_query query;
    booking_avail_staff *staff;
    long long lo = 0, hi = 0;
    time_t now = ctx->req->now ? ctx->req->now : time(NULL);
    size_t i;

    memset(&query, 0, sizeof(query));
    query.duration_s = setup->duration_s;
    query.buffer_before_s = setup->before_s;
    query.buffer_after_s = setup->after_s;
    query.step_s = setup->step_s;
    query.earliest = (long long)now + setup->notice_s;
    query.latest = (long long)now + setup->horizon_s;
    query.needs_resource = setup->resource_kind != NULL;
    if (!booking_windows_span(windows, nwindows, &lo, &hi) || lo >= query.latest || hi <= query.earliest)
        return 0;
    /* bookings outside what a candidate's buffered range can reach cannot matter */
    if (lo < query.earliest - setup->before_s)
        lo = query.earliest - setup->before_s;
    if (hi > query.latest + setup->duration_s + setup->after_s)
        hi = query.latest + setup->duration_s + setup->after_s;
    staff = booking_alloc(ctx, nwindows * sizeof(*staff));
    for (i = 0; i < nwindows; i++) {
        staff[i].staff_id = windows[i].staff_id;
        staff[i].windows = windows[i].windows;
        staff[i].window_count = windows[i].count;
        staff[i].busy = NULL;
        staff[i].busy_count = 0;
    }
    query.staff = staff;
    query.staff_count = nwindows;
    if (booking_staff_busy_load(ctx, staff, nwindows, lo, hi, ignore_booking_id) < 0)
        return -1;
    if (query.needs_resource) {
        booking_avail_resource *resources;
        if (booking_resources_load(ctx, partner_id, setup->resource_kind, lo, hi, ignore_booking_id, &resources,
                                   &query.resource_count) < 0)
            return -1;
        query.resources = resources;
    }
    if (booking_avail_compute(&query, out) < 0) {
        booking_reply_error(ctx, 500, "internal", NULL, "out of memory");
        return -1;
    }
    if (booking_offsets_fill(ctx, setup->zone, out, end_offsets) < 0) {
        booking_slots_free(out);
        return -1;
    }
    return 0;
}

/* booking_availability_load, also telling the zone and the offsets at the slots' ends (the route shows them) when
 * zone and end_offsets are given. */
static int booking_availability_run(booking_ctx *ctx, const char *partner_id, long long service_id, long long staff_id,
                                    const char *from, const char *to, long long ignore_booking_id, const char **zone,
                                    booking_slots *out, int **end_offsets)
{
    booking_avail_setup setup;
    booking_staff_windows *windows = NULL;
    size_t nwindows = 0;
    int rc;

    out->slots = NULL;
    out->count = 0;
    if (!booking_partner_visible(ctx, partner_id) || booking_check_range(ctx, from, to, BOOKING_AVAIL_MAX_DAYS) < 0)
        return -1;
    if (service_id <= 0) {
        booking_reply_error(ctx, 400, "invalid", "service", "is required");
        return -1;
    }
    memset(&setup, 0, sizeof(setup));
    if (booking_setup_load(ctx, partner_id, service_id, &setup) < 0)
        return -1;
    if (booking_windows_query(ctx, partner_id, setup.zone, staff_id, service_id, from, to, &windows, &nwindows) < 0)
        return -1;
    rc = booking_slots_compute(ctx, partner_id, &setup, windows, nwindows, ignore_booking_id, out, end_offsets);
    booking_staff_windows_free(windows, nwindows);
    if (rc == 0 && zone != NULL)
        *zone = setup.zone;
    return rc;
}

int booking_availability_load(booking_ctx *ctx, const char *partner_id, long long service_id, long long staff_id,
                              const char *from_date, const char *to_date, long long ignore_booking_id,
                              booking_slots *out)
{
    return booking_availability_run(ctx, partner_id, service_id, staff_id, from_date, to_date, ignore_booking_id, NULL,
                                    out, NULL);
}

/* -------------------------------------------------------------------------------------------------- route */

static json_t *booking_slot_json(const booking_slot *slot, int end_offset)
{
    char start[32], end[32];
    json_t *staff = json_array(), *item;
    size_t i;

    if (staff == NULL)
        return NULL;
    for (i = 0; i < slot->staff_count; i++) {
        if (json_array_append_new(staff, json_integer(slot->staff_ids[i])) != 0) {
            json_decref(staff);
            return NULL;
        }
    }
    booking_format_local(slot->start, slot->utc_offset, start);
    booking_format_local(slot->end, end_offset, end);
    item = json_pack("{s:s, s:s, s:o}", "start", start, "end", end, "staff", staff);
    return item;
}

static json_t *booking_slots_json(const booking_slots *slots, const int *end_offsets)
{
    json_t *list = json_array(), *item;
    size_t i;

    if (list == NULL)
        return NULL;
    for (i = 0; i < slots->count; i++) {
        item = booking_slot_json(&slots->slots[i], end_offsets[i]);
        if (item == NULL || json_array_append_new(list, item) != 0) {
            json_decref(list);
            return NULL;
        }
    }
    return list;
}

void booking_route_availability(booking_ctx *ctx)
{
    const char *partner_id = ctx->params[0], *from = NULL, *to = NULL, *zone = NULL;
    long long service_id = 0, staff_id = 0;
    booking_slots slots = {0};
    int *end_offsets = NULL;
    json_t *list, *body;

    if (!booking_partner_visible(ctx, partner_id))
        return;
    if (booking_arg_id(ctx, "service", 1, &service_id) < 0 || booking_arg_date(ctx, "from", 1, &from) < 0 ||
        booking_arg_date(ctx, "to", 0, &to) < 0 || booking_arg_id(ctx, "staff", 0, &staff_id) < 0)
        return;
    if (to == NULL)
        to = from;
    if (booking_availability_run(ctx, partner_id, service_id, staff_id, from, to, 0, &zone, &slots, &end_offsets) < 0)
        return;
    list = booking_slots_json(&slots, end_offsets);
    booking_slots_free(&slots);
    body = list ? json_pack("{s:s, s:I, s:s, s:s, s:s, s:o}", "partner", partner_id, "service", (json_int_t)service_id,
                            "time_zone", zone, "from", from, "to", to, "slots", list)
                : NULL;
    if (body == NULL) {
        booking_reply_error(ctx, 500, "internal", NULL, "out of memory");
        return;
    }
    booking_reply_json(ctx, 200, body);
}
