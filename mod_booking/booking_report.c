/* A partner's monthly report: bookings, revenue, cancellations, no-shows and occupancy, by service and by staff
 * member, as JSON or CSV.
 *
 * Definitions (also sent in the JSON under "definitions"):
 * - the month runs from the first day 00:00 to the next month's first day 00:00 in the partner's time zone; a
 *   booking belongs to the month its start falls in;
 * - bookings: bookings whose status is confirmed, completed or no_show;
 * - cancellations: bookings whose status is cancelled; no_shows, completed: bookings with that status;
 * - revenue_cents: the sum of the price at booking time of confirmed and completed bookings (a no-show or a
 *   cancellation brings nothing);
 * - booked_minutes: service time (end minus start, buffers excluded) of confirmed, completed and no_show bookings;
 * - available_minutes: the staff members' working windows in the month (opening hours or special hours,
 *   intersected with working plans, minus breaks, closures and absences);
 * - occupancy: booked_minutes / available_minutes rounded to 4 decimals, 0 when nothing was available. */
#include "booking_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "csv.h"

#define BOOKING_REPORT_CSV_COLUMNS 11

/* The same aggregates for both dimensions; $1 partner, $2 and $3 the month's bounds (epoch seconds). */
#define BOOKING_REPORT_AGGREGATES                                                                                      \
    " count(b.id) FILTER (WHERE b.status IN ('confirmed', 'completed', 'no_show')),"                                   \
    " coalesce(sum(b.price_cents) FILTER (WHERE b.status IN ('confirmed', 'completed')), 0),"                          \
    " count(b.id) FILTER (WHERE b.status = 'cancelled'),"                                                              \
    " count(b.id) FILTER (WHERE b.status = 'no_show'),"                                                                \
    " count(b.id) FILTER (WHERE b.status = 'completed'),"                                                              \
    " coalesce(round(sum(extract(epoch FROM b.ends_at - b.starts_at))"                                                 \
    "   FILTER (WHERE b.status IN ('confirmed', 'completed', 'no_show')) / 60), 0)::bigint"

#define BOOKING_REPORT_BOOKINGS_IN_MONTH                                                                               \
    " AND b.partner_id = $1 AND b.starts_at >= to_timestamp($2::bigint) AND b.starts_at < to_timestamp($3::bigint)"

/* Inactive services and staff members are listed only when they have bookings in the month. */
static const char booking_report_services_sql[] =
    "SELECT s.id, s.name," BOOKING_REPORT_AGGREGATES " FROM booking.services s"
    " LEFT JOIN booking.bookings b ON b.service_id = s.id" BOOKING_REPORT_BOOKINGS_IN_MONTH
    " WHERE s.partner_id = $1 GROUP BY s.id HAVING s.active OR count(b.id) > 0 ORDER BY s.name, s.id";

static const char booking_report_staff_sql[] =
    "SELECT st.id, st.name," BOOKING_REPORT_AGGREGATES " FROM booking.staff st"
    " LEFT JOIN booking.bookings b ON b.staff_id = st.id" BOOKING_REPORT_BOOKINGS_IN_MONTH
    " WHERE st.partner_id = $1 GROUP BY st.id HAVING st.active OR count(b.id) > 0 ORDER BY st.name, st.id";

typedef struct {
    long long id;
    const char *name; /* request memory */
    long long bookings, revenue_cents, cancellations, no_shows, completed, booked_minutes;
    long long available_minutes; /* staff rows and the total */
    long long occupancy_bp;      /* occupancy in ten-thousandths */
} booking_report_row;

typedef struct {
    char month[8];      /* YYYY-MM */
    char first_day[11]; /* YYYY-MM-01 */
    char last_day[11];
    const char *zone;
    const char *currency;
    long long from, to; /* the month's bounds, epoch seconds */
    int from_offset, to_offset;
    booking_report_row *services, *staff, total;
    size_t service_count, staff_count;
} booking_report;

static const struct {
    const char *name, *text;
} booking_report_definitions[] = {
    {"month", "from the first day 00:00 to the next month's first day 00:00 in time_zone; a booking counts in the "
              "month its start falls in"},
    {"bookings", "bookings with status confirmed, completed or no_show"},
    {"cancellations", "bookings with status cancelled"},
    {"no_shows", "bookings with status no_show"},
    {"completed", "bookings with status completed"},
    {"revenue_cents", "sum of the price at booking time of confirmed and completed bookings, in cents of currency"},
    {"booked_minutes", "service time (end minus start, without buffers) of confirmed, completed and no_show bookings"},
    {"available_minutes", "working windows of the month: opening or special hours intersected with working plans, "
                          "minus breaks, closures and absences"},
    {"occupancy", "booked_minutes / available_minutes, 4 decimals; 0 when nothing was available"},
};

/* "YYYY-MM" with a month 01-12; the first and last local dates of that month. 0 or -1. */
static int booking_parse_month(const char *s, booking_report *report)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int year, month, last, i;

    if (s == NULL || strlen(s) != 7 || s[4] != '-')
        return -1;
    for (i = 0; i < 7; i++)
        if (i != 4 && (s[i] < '0' || s[i] > '9'))
            return -1;
    year = atoi(s);
    month = atoi(s + 5);
    if (year < 1970 || month < 1 || month > 12)
        return -1;
    last = days[month - 1];
    if (month == 2 && year % 4 == 0 && (year % 100 != 0 || year % 400 == 0))
        last = 29;
    memcpy(report->month, s, 8);
    memcpy(report->first_day, s, 7);
    memcpy(report->first_day + 7, "-01", 4);
    memcpy(report->last_day, s, 7);
    report->last_day[7] = '-';
    report->last_day[8] = (char)('0' + last / 10);
    report->last_day[9] = (char)('0' + last % 10);
    report->last_day[10] = '\0';
    return 0;
}

/* The partner's currency and the month's bounds as instants, from PostgreSQL's tzdata so that they agree with
 * the queries'. 0, or -1 after replying. */
static int booking_load_bounds(booking_ctx *ctx, booking_report *report)
{
    const char *params[3] = {ctx->partner_id, report->first_day, report->zone};
    PGresult *res;
    struct tm tm = {0};
    long long local_from;

    res = booking_exec(ctx,
                       "SELECT currency,"
                       " extract(epoch FROM $2::date::timestamp AT TIME ZONE $3)::bigint,"
                       " extract(epoch FROM ($2::date + interval '1 month') AT TIME ZONE $3)::bigint"
                       " FROM booking.partners WHERE id = $1",
                       3, params);
    if (res == NULL) {
        booking_reply_db_error(ctx);
        return -1;
    }
    if (PQntuples(res) != 1) {
        PQclear(res);
        booking_reply_error(ctx, 404, "not_found", NULL, "no such partner");
        return -1;
    }
    report->currency = booking_strdup(ctx, PQgetvalue(res, 0, 0));
    report->from = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
    report->to = strtoll(PQgetvalue(res, 0, 2), NULL, 10);
    PQclear(res);
    /* The offsets are the wall clock (read as if it were UTC) minus the instant. */
    tm.tm_year = atoi(report->first_day) - 1900;
    tm.tm_mon = atoi(report->first_day + 5) - 1;
    tm.tm_mday = 1;
    local_from = (long long)timegm(&tm);
    report->from_offset = (int)(local_from - report->from);
    tm.tm_mon++;
    report->to_offset = (int)((long long)timegm(&tm) - report->to);
    return 0;
}

/* Runs one of the GROUP BY queries into rows in request memory. 0, or -1 after replying. */
static int booking_load_rows(booking_ctx *ctx, const booking_report *report, const char *sql, booking_report_row **rows,
                             size_t *count)
{
    char from[24], to[24];
    const char *params[3] = {ctx->partner_id, from, to};
    PGresult *res;
    int i, n;

    snprintf(from, sizeof(from), "%lld", report->from);
    snprintf(to, sizeof(to), "%lld", report->to);
    res = booking_exec(ctx, sql, 3, params);
    if (res == NULL) {
        booking_reply_db_error(ctx);
        return -1;
    }
    n = PQntuples(res);
    *rows = booking_alloc(ctx, (size_t)(n > 0 ? n : 1) * sizeof(**rows));
    memset(*rows, 0, (size_t)(n > 0 ? n : 1) * sizeof(**rows));
    for (i = 0; i < n; i++) {
        booking_report_row *row = &(*rows)[i];

        row->id = strtoll(PQgetvalue(res, i, 0), NULL, 10);
        row->name = booking_strdup(ctx, PQgetvalue(res, i, 1));
        row->bookings = strtoll(PQgetvalue(res, i, 2), NULL, 10);
        row->revenue_cents = strtoll(PQgetvalue(res, i, 3), NULL, 10);
        row->cancellations = strtoll(PQgetvalue(res, i, 4), NULL, 10);
        row->no_shows = strtoll(PQgetvalue(res, i, 5), NULL, 10);
        row->completed = strtoll(PQgetvalue(res, i, 6), NULL, 10);
        row->booked_minutes = strtoll(PQgetvalue(res, i, 7), NULL, 10);
    }
    *count = (size_t)n;
    PQclear(res);
    return 0;
}

static long long booking_occupancy_bp(long long booked, long long available)
{
    if (available <= 0)
        return 0;
    return (booked * 10000 + available / 2) / available;
}

/* Each staff member's working minutes in the month, from the availability engine's windows. 0, or -1 after
 * replying. */
static int booking_load_available(booking_ctx *ctx, booking_report *report)
{
    booking_staff_windows *windows = NULL;
    size_t count = 0, i, j, k;

    if (booking_windows_load(ctx, ctx->partner_id, 0, report->first_day, report->last_day, &windows, &count) != 0)
        return -1;
    for (i = 0; i < count; i++) {
        long long seconds = 0;

        for (j = 0; j < windows[i].count; j++)
            seconds += windows[i].windows[j].end - windows[i].windows[j].start;
        for (k = 0; k < report->staff_count; k++)
            if (report->staff[k].id == windows[i].staff_id)
                report->staff[k].available_minutes += seconds / 60;
    }
    booking_staff_windows_free(windows, count);
    for (k = 0; k < report->staff_count; k++)
        report->staff[k].occupancy_bp =
            booking_occupancy_bp(report->staff[k].booked_minutes, report->staff[k].available_minutes);
    return 0;
}

/* Every booking has exactly one service, so the services add up to the whole; the staff give the availability. */
static void booking_sum_totals(booking_report *report)
{
    booking_report_row *t = &report->total;
    size_t i;

    memset(t, 0, sizeof(*t));
    for (i = 0; i < report->service_count; i++) {
        t->bookings += report->services[i].bookings;
        t->revenue_cents += report->services[i].revenue_cents;
        t->cancellations += report->services[i].cancellations;
        t->no_shows += report->services[i].no_shows;
        t->completed += report->services[i].completed;
        t->booked_minutes += report->services[i].booked_minutes;
    }
    for (i = 0; i < report->staff_count; i++)
        t->available_minutes += report->staff[i].available_minutes;
    t->occupancy_bp = booking_occupancy_bp(t->booked_minutes, t->available_minutes);
}

static int booking_load_report(booking_ctx *ctx, booking_report *report)
{
    PGresult *res;

    if (booking_begin(ctx) != 0) {
        booking_reply_db_error(ctx);
        return -1;
    }
    /* One snapshot for every query, so that the services and the staff add up to the same totals. */
    res = booking_exec(ctx, "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY", 0, NULL);
    if (res == NULL) {
        booking_reply_db_error(ctx);
        return -1;
    }
    PQclear(res);
    report->zone = booking_partner_zone(ctx, ctx->partner_id);
    if (report->zone == NULL || booking_load_bounds(ctx, report) != 0 ||
        booking_load_rows(ctx, report, booking_report_services_sql, &report->services, &report->service_count) != 0 ||
        booking_load_rows(ctx, report, booking_report_staff_sql, &report->staff, &report->staff_count) != 0 ||
        booking_load_available(ctx, report) != 0)
        return -1;
    if (booking_commit(ctx) != 0) {
        booking_reply_db_error(ctx);
        return -1;
    }
    booking_sum_totals(report);
    return 0;
}

/* ------------------------------------------------------------------------------------------------- JSON */

static json_t *booking_row_json(const booking_report_row *row, int with_id, int with_available)
{
    json_t *o = json_object();

    if (o == NULL)
        return NULL;
    if (with_id) {
        json_object_set_new(o, "id", json_integer(row->id));
        json_object_set_new(o, "name", json_string(row->name));
    }
    json_object_set_new(o, "bookings", json_integer(row->bookings));
    json_object_set_new(o, "revenue_cents", json_integer(row->revenue_cents));
    json_object_set_new(o, "cancellations", json_integer(row->cancellations));
    json_object_set_new(o, "no_shows", json_integer(row->no_shows));
    json_object_set_new(o, "completed", json_integer(row->completed));
    json_object_set_new(o, "booked_minutes", json_integer(row->booked_minutes));
    if (with_available) {
        json_object_set_new(o, "available_minutes", json_integer(row->available_minutes));
        json_object_set_new(o, "occupancy", json_real((double)row->occupancy_bp / 10000.0));
    }
    return o;
}

static json_t *booking_rows_json(const booking_report_row *rows, size_t count, int with_available)
{
    json_t *a = json_array();
    size_t i;

    for (i = 0; a != NULL && i < count; i++)
        if (json_array_append_new(a, booking_row_json(&rows[i], 1, with_available)) != 0) {
            json_decref(a);
            return NULL;
        }
    return a;
}

static json_t *booking_report_json(const booking_report *report)
{
    json_t *root, *definitions;
    char from[32], to[32];
    size_t i;

    definitions = json_object();
    for (i = 0; definitions != NULL && i < sizeof(booking_report_definitions) / sizeof(*booking_report_definitions);
         i++)
        json_object_set_new(definitions, booking_report_definitions[i].name,
                            json_string(booking_report_definitions[i].text));
    booking_format_local(report->from, report->from_offset, from);
    booking_format_local(report->to, report->to_offset, to);
    root = json_pack("{s:s, s:s, s:s, s:s, s:s, s:o*, s:o*, s:o*, s:o*}", "month", report->month, "time_zone",
                     report->zone, "currency", report->currency, "from", from, "to", to, "definitions", definitions,
                     "totals", booking_row_json(&report->total, 0, 1), "by_service",
                     booking_rows_json(report->services, report->service_count, 0), "by_staff",
                     booking_rows_json(report->staff, report->staff_count, 1));
    if (root == NULL || json_object_size(root) != 9) {
        json_decref(root);
        return NULL;
    }
    return root;
}

static void booking_reply_report_json(booking_ctx *ctx, const booking_report *report)
{
    json_t *root = booking_report_json(report);
    char *text;

    if (root == NULL) {
        booking_reply_error(ctx, 500, "internal", NULL, "out of memory");
        return;
    }
    /* Ten significant digits print the rounded occupancy as 0.1234, not as the nearest double's 17 digits. */
    text = json_dumps(root, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_REAL_PRECISION(10));
    json_decref(root);
    if (text == NULL) {
        booking_reply_error(ctx, 500, "internal", NULL, "out of memory");
        return;
    }
    booking_reply_raw(ctx, 200, "application/json", text, strlen(text));
}

/* -------------------------------------------------------------------------------------------------- CSV */

/* One CSV row; name NULL for the total. Numbers are formatted into the row's own buffers. */
static int booking_csv_report_row(csv_buf *csv, const char *scope, const booking_report_row *row, int with_available)
{
    char id[24], bookings[24], revenue[32], cancellations[24], no_shows[24], completed[24], booked[24],
        available[24] = "", occupancy[32] = "";
    const char *cells[BOOKING_REPORT_CSV_COLUMNS] = {scope,    id,        row->name, bookings,  revenue,  cancellations,
                                                     no_shows, completed, booked,    available, occupancy};

    id[0] = '\0';
    if (row->name != NULL)
        snprintf(id, sizeof(id), "%lld", row->id);
    snprintf(bookings, sizeof(bookings), "%lld", row->bookings);
    snprintf(revenue, sizeof(revenue), "%lld.%02lld", row->revenue_cents / 100, row->revenue_cents % 100);
    snprintf(cancellations, sizeof(cancellations), "%lld", row->cancellations);
    snprintf(no_shows, sizeof(no_shows), "%lld", row->no_shows);
    snprintf(completed, sizeof(completed), "%lld", row->completed);
    snprintf(booked, sizeof(booked), "%lld", row->booked_minutes);
    if (with_available) {
        snprintf(available, sizeof(available), "%lld", row->available_minutes);
        snprintf(occupancy, sizeof(occupancy), "%lld.%04lld", row->occupancy_bp / 10000, row->occupancy_bp % 10000);
    }
    return csv_row(csv, cells, BOOKING_REPORT_CSV_COLUMNS);
}

static int booking_report_csv(const booking_report *report, csv_buf *csv)
{
    static const char *const header[BOOKING_REPORT_CSV_COLUMNS] = {
        "scope",    "id",        "name",           "bookings",          "revenue",  "cancellations",
        "no_shows", "completed", "booked_minutes", "available_minutes", "occupancy"};
    size_t i;

    if (csv_row(csv, header, BOOKING_REPORT_CSV_COLUMNS) != 0)
        return -1;
    for (i = 0; i < report->service_count; i++)
        if (booking_csv_report_row(csv, "service", &report->services[i], 0) != 0)
            return -1;
    for (i = 0; i < report->staff_count; i++)
        if (booking_csv_report_row(csv, "staff", &report->staff[i], 1) != 0)
            return -1;
    return booking_csv_report_row(csv, "total", &report->total, 1);
}

static void booking_reply_report_csv(booking_ctx *ctx, const booking_report *report)
{
    csv_buf csv = {0};
    char *disposition;
    int n;

    disposition = malloc(128);
    if (disposition == NULL || booking_report_csv(report, &csv) != 0) {
        free(disposition);
        csv_free(&csv);
        booking_reply_error(ctx, 500, "internal", NULL, "out of memory");
        return;
    }
    /* The partner id is [a-z0-9-] and the month digits: nothing to quote in the file name. */
    n = snprintf(disposition, 128, "attachment; filename=\"report-%s-%s.csv\"", ctx->partner_id, report->month);
    if (n < 0 || n >= 128) {
        free(disposition);
        csv_free(&csv);
        booking_reply_error(ctx, 500, "internal", NULL, "file name too long");
        return;
    }
    free(ctx->resp->content_disposition);
    ctx->resp->content_disposition = disposition;
    /* The buffer's memory becomes the body. */
    booking_reply_raw(ctx, 200, "text/csv; charset=utf-8", csv.data, csv.len);
}

/* ------------------------------------------------------------------------------------------------ route */

void booking_route_p_reports(booking_ctx *ctx)
{
    booking_report report;
    const char *month, *format;
    int csv;

    memset(&report, 0, sizeof(report));
    month = booking_arg(ctx, "month");
    if (month == NULL) {
        booking_reply_error(ctx, 400, "required", "month", "month is required (YYYY-MM)");
        return;
    }
    if (booking_parse_month(month, &report) != 0) {
        booking_reply_error(ctx, 400, "invalid", "month", "month must be YYYY-MM");
        return;
    }
    format = booking_arg(ctx, "format");
    if (format == NULL || strcmp(format, "json") == 0) {
        csv = 0;
    } else if (strcmp(format, "csv") == 0) {
        csv = 1;
    } else {
        booking_reply_error(ctx, 400, "invalid", "format", "format must be json or csv");
        return;
    }
    if (booking_load_report(ctx, &report) != 0)
        return;
    if (csv)
        booking_reply_report_csv(ctx, &report);
    else
        booking_reply_report_json(ctx, &report);
}
