/* The routing CSV: print subscribers entitled on an issue date, read through a server-side cursor so that a
 * hundred thousand rows never sit in memory at once. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "paywall_filter.h"
#include "paywall_store_int.h"

#define PAYWALL_EXPORT_FETCH "FETCH 400 FROM paywall_export" /* about 60 KB of CSV a chunk */

struct paywall_export {
    paywall_store *store;
    PGconn *conn;
    csv_buf csv;
    int header_sent;
    int done;
};

static int paywall_date_valid(const char *date)
{
    struct tm tm;
    int y, m, d;
    char check[11];

    if (strlen(date) != 10 || sscanf(date, "%4d-%2d-%2d", &y, &m, &d) != 3 || y < 2000 || y > 2999)
        return 0;
    memset(&tm, 0, sizeof(tm));
    tm.tm_year = y - 1900;
    tm.tm_mon = m - 1;
    tm.tm_mday = d;
    tm.tm_hour = 12;
    if (timegm(&tm) == (time_t)-1)
        return 0;
    /* timegm normalises 2026-02-30 to March: a date that changes was not a date. */
    strftime(check, sizeof(check), "%Y-%m-%d", &tm);
    return strcmp(check, date) == 0;
}

static void paywall_export_abort(paywall_export *export, int ok)
{
    if (export->conn) {
        if (ok && PQstatus(export->conn) == CONNECTION_OK) {
            PGresult *res = PQexec(export->conn, "ROLLBACK");
            ok = PQresultStatus(res) == PGRES_COMMAND_OK;
            PQclear(res);
        }
        pg_pool_release(export->store->pg, export->conn, ok);
        export->conn = NULL;
    }
}

paywall_export *paywall_export_open(paywall_store *store, const paywall_plans *plans, long grace, const char *date,
                                    int *bad_request, char *err, size_t errlen)
{
    paywall_export *export;
    char today[11], grace_text[32], print_plans[PAYWALL_PLANS_MAX * (PAYWALL_PLAN_MAX + 1) + 1] = "";
    const char *params[3];
    PGresult *res;
    size_t i;
    time_t now = time(NULL);
    struct tm tm;

    *bad_request = 0;
    if (date == NULL) {
        gmtime_r(&now, &tm);
        strftime(today, sizeof(today), "%Y-%m-%d", &tm);
        date = today;
    } else if (!paywall_date_valid(date)) {
        snprintf(err, errlen, "date must be YYYY-MM-DD, a real day between 2000 and 2999");
        *bad_request = 1;
        return NULL;
    }
    for (i = 0; i < plans->nplans; i++) {
        if (!plans->plans[i].print)
            continue;
        strcat(print_plans, plans->plans[i].name);
        strcat(print_plans, "\n");
    }
    export = calloc(1, sizeof(*export));
    if (export == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    export->store = store;
    export->conn = paywall_pg_acquire(store, err, errlen);
    if (export->conn == NULL) {
        free(export);
        return NULL;
    }
    res = pg_exec(export->conn, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", 0, NULL, NULL, NULL, err, errlen);
    if (res == NULL)
        goto fail;
    PQclear(res);
    snprintf(grace_text, sizeof(grace_text), "%ld", grace);
    params[0] = print_plans;
    params[1] = date;
    params[2] = grace_text;
    /* Entitled on the date: its paid period covers the date's start (UTC), and a past_due subscription is still
     * within its grace then; the address is the one that was current at the end of that day. */
    res = pg_exec(export->conn,
                  "DECLARE paywall_export NO SCROLL CURSOR FOR"
                  " SELECT coalesce(s.user_id, s.customer_id), a.name, a.company, a.line1, a.line2, a.postal_code,"
                  " a.city, a.country, s.plan, to_char(s.current_period_end AT TIME ZONE 'UTC', 'YYYY-MM-DD')"
                  " FROM paywall.subscriptions s"
                  " JOIN LATERAL (SELECT * FROM paywall.shipping_addresses a"
                  "   WHERE a.subscription_id = s.subscription_id"
                  "   AND a.valid_from < (($2::date + 1)::timestamp AT TIME ZONE 'UTC')"
                  "   AND (a.valid_until IS NULL OR a.valid_until >= (($2::date + 1)::timestamp AT TIME ZONE 'UTC'))"
                  "   ORDER BY a.valid_from DESC LIMIT 1) a ON true"
                  " WHERE s.plan = ANY (string_to_array($1, E'\\n'))"
                  " AND s.current_period_end > ($2::date::timestamp AT TIME ZONE 'UTC')"
                  " AND (s.status IN ('active', 'trialing') OR (s.status = 'past_due'"
                  "   AND s.past_due_since + make_interval(secs => $3::bigint)"
                  "       > ($2::date::timestamp AT TIME ZONE 'UTC')))"
                  " ORDER BY s.subscription_id",
                  3, params, NULL, NULL, err, errlen);
    if (res == NULL)
        goto fail;
    PQclear(res);
    return export;

fail:
    paywall_export_abort(export, 1);
    free(export);
    return NULL;
}

int paywall_export_next(paywall_export *export, const char **data, size_t *len, char *err, size_t errlen)
{
    const char *cells[PAYWALL_CSV_COLUMNS];
    PGresult *res;
    int i, j, rows;

    if (export->done || export->conn == NULL)
        return 0;
    csv_reset(&export->csv);
    if (!export->header_sent) {
        const char *header[PAYWALL_CSV_COLUMNS] = {"id",          "name", "company", "address_line1", "address_line2",
                                                   "postal_code", "city", "country", "plan",          "period_end"};
        if (csv_row(&export->csv, header, PAYWALL_CSV_COLUMNS) != 0)
            goto oom;
        export->header_sent = 1;
    }
    res = pg_exec(export->conn, PAYWALL_EXPORT_FETCH, 0, NULL, NULL, NULL, err, errlen);
    if (res == NULL) {
        paywall_export_abort(export, 0);
        return -1;
    }
    rows = PQntuples(res);
    for (i = 0; i < rows; i++) {
        for (j = 0; j < PAYWALL_CSV_COLUMNS; j++)
            cells[j] = PQgetisnull(res, i, j) ? NULL : PQgetvalue(res, i, j);
        if (csv_row(&export->csv, cells, PAYWALL_CSV_COLUMNS) != 0) {
            PQclear(res);
            goto oom;
        }
    }
    PQclear(res);
    if (rows == 0) {
        export->done = 1;
        paywall_export_abort(export, 1);
    }
    *data = export->csv.data;
    *len = export->csv.len;
    return export->csv.len > 0 ? 1 : 0;

oom:
    snprintf(err, errlen, "out of memory");
    paywall_export_abort(export, 0);
    return -1;
}

void paywall_export_close(paywall_export *export)
{
    if (export == NULL)
        return;
    paywall_export_abort(export, 1);
    csv_free(&export->csv);
    free(export);
}
