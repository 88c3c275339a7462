/* The partner routes (/account...): a salon's own settings, opening hours and exceptions, staff with their working
 * plans and absences, services, resources, the calendar across staff and the status of its bookings.
 *
 * The router has resolved ctx->partner_id from the login, and every statement here carries it: an id of another
 * partner's row reads exactly like an id that does not exist (404), so nothing tells a partner what others have.
 * Objects are rendered by PostgreSQL (json_build_object) from one SQL fragment per kind, so that a GET and the reply
 * to a write cannot disagree on the shape. Writes validate the whole body first (400 naming the field), then run in
 * one transaction. */
#include "booking_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BOOKING_P_PERIODS_MAX 100 /* periods in one week's hours or breaks: far more than any salon needs */
#define BOOKING_P_IDS_MAX     500 /* staff of a service, services of a staff member */
#define BOOKING_P_HOSTS_MAX   20
#define BOOKING_P_HOST_MAX    253 /* bytes of a DNS name, RFC 1035 */
#define BOOKING_P_LABEL_MAX   63
#define BOOKING_P_URL_MAX     500
#define BOOKING_P_ZONE_MAX    64
#define BOOKING_P_COLUMNS_MAX 16
#define BOOKING_P_ID_DIGITS   15          /* ids stay below 2^53 (booking_valid.c) */
#define BOOKING_P_PRICE_MAX   100000000LL /* cents: one million in any currency */

/* ------------------------------------------------------------------------------------------ renderings */

#define BOOKING_P_PARTNER_JSON                                                                                         \
    "json_build_object('id', p.id, 'name', p.name, 'city', p.city, 'address', p.address, 'phone', p.phone, "           \
    "'email', p.email, 'time_zone', p.time_zone, 'hosts', to_json(p.hosts), 'branding', "                              \
    "json_build_object('color', p.branding->>'color', 'logo_url', p.branding->>'logo_url', "                           \
    "'tagline', p.branding->>'tagline'), 'currency', p.currency, 'min_notice_minutes', p.min_notice_minutes, "         \
    "'horizon_days', p.horizon_days, 'slot_step_minutes', p.slot_step_minutes, "                                       \
    "'cancel_deadline_minutes', p.cancel_deadline_minutes)"

#define BOOKING_P_STAFF_JSON                                                                                           \
    "json_build_object('id', s.id, 'name', s.name, 'active', s.active, 'services', "                                   \
    "coalesce((SELECT json_agg(l.service_id ORDER BY l.service_id) FROM booking.service_staff l "                      \
    "WHERE l.staff_id = s.id), '[]'))"

#define BOOKING_P_SERVICE_JSON                                                                                         \
    "json_build_object('id', s.id, 'name', s.name, 'category', s.category, 'description', s.description, "             \
    "'duration_minutes', s.duration_minutes, 'price_cents', s.price_cents, 'currency', s.currency, "                   \
    "'buffer_before_minutes', s.buffer_before_minutes, 'buffer_after_minutes', s.buffer_after_minutes, "               \
    "'resource_kind', s.resource_kind, 'active', s.active, 'staff', "                                                  \
    "coalesce((SELECT json_agg(l.staff_id ORDER BY l.staff_id) FROM booking.service_staff l "                          \
    "WHERE l.service_id = s.id), '[]'))"

#define BOOKING_P_RESOURCE_JSON "json_build_object('id', s.id, 'name', s.name, 'kind', s.kind, 'active', s.active)"

#define BOOKING_P_EXCEPTION_JSON                                                                                       \
    "json_build_object('id', id, 'day', to_char(day, 'YYYY-MM-DD'), 'opens', to_char(opens, 'HH24:MI'), "              \
    "'closes', to_char(closes, 'HH24:MI'), 'note', note)"

#define BOOKING_P_ABSENCE_JSON                                                                                         \
    "json_build_object('id', id, 'day', to_char(day, 'YYYY-MM-DD'), 'starts', to_char(starts, 'HH24:MI'), "            \
    "'ends', to_char(ends, 'HH24:MI'), 'note', note)"

/* A weekly plan's periods as a JSON array; "HH24:MI" prints 24:00 as "24:00", which is what a client sends for
 * "until midnight". */
#define BOOKING_P_PERIODS_JSON(table, a, b, where)                                                                     \
    "coalesce((SELECT json_agg(json_build_object('weekday', h.weekday, '" a "', to_char(h." a ", 'HH24:MI'), '" b      \
    "', to_char(h." b ", 'HH24:MI')) ORDER BY h.weekday, h." a ") FROM " table " h WHERE " where "), '[]')"

/* ------------------------------------------------------------------------------------------------ common */

static int booking_p_is_get(booking_ctx *ctx)
{
    return strcmp(ctx->req->method, "GET") == 0 || strcmp(ctx->req->method, "HEAD") == 0;
}

static int booking_p_is(booking_ctx *ctx, const char *method)
{
    return strcmp(ctx->req->method, method) == 0;
}

static int booking_p_bad(booking_ctx *ctx, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* 400 naming the field; returns -1 so that readers can end with it. */
static int booking_p_bad(booking_ctx *ctx, const char *field, const char *fmt, ...)
{
    char message[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);
    booking_reply_error(ctx, 400, "invalid", field, "%s", message);
    return -1;
}

static void booking_p_not_found(booking_ctx *ctx, const char *what)
{
    booking_reply_error(ctx, 404, "not_found", NULL, "no such %s", what);
}

/* A path id: digits only, so that "12abc", "-1" or "012" read as unknown rather than as 12. NULL after 404. */
static const char *booking_p_path_id(booking_ctx *ctx, int index, const char *what)
{
    const char *s = ctx->params[index];
    size_t n;

    n = s ? strspn(s, "0123456789") : 0;
    if (n == 0 || n > BOOKING_P_ID_DIGITS || s[n] != '\0' || s[0] == '0') {
        booking_p_not_found(ctx, what);
        return NULL;
    }
    return s;
}

/* Runs a query whose one column is JSON text. 1 with *out, 0 when there is no row (nothing replied), -1 after
 * replying. */
static int booking_p_fetch_json(booking_ctx *ctx, const char *sql, int nparams, const char *const *values, json_t **out)
{
    json_error_t error;
    PGresult *res;

    *out = NULL;
    res = booking_exec(ctx, sql, nparams, values);
    if (res == NULL) {
        booking_reply_db_error(ctx);
        return -1;
    }
    if (PQntuples(res) == 0 || PQgetisnull(res, 0, 0)) {
        PQclear(res);
        return 0;
    }
    *out = json_loads(PQgetvalue(res, 0, 0), JSON_DECODE_ANY, &error);
    PQclear(res);
    if (*out == NULL) {
        booking_reply_error(ctx, 500, "internal", NULL, "PostgreSQL rendered unreadable JSON: %s", error.text);
        return -1;
    }
    return 1;
}

/* A statement whose rows do not matter: the number of rows it touched, or -1 after replying. */
static long booking_p_run(booking_ctx *ctx, const char *sql, int nparams, const char *const *values)
{
    PGresult *res = booking_exec(ctx, sql, nparams, values);
    long rows;

    if (res == NULL) {
        booking_reply_db_error(ctx);
        return -1;
    }
    rows = PQresultStatus(res) == PGRES_TUPLES_OK ? PQntuples(res) : atol(PQcmdTuples(res));
    PQclear(res);
    return rows;
}

/* Replies with what the query renders, or 404 naming what was looked for. */
static void booking_p_reply_query(booking_ctx *ctx, const char *what, const char *sql, int nparams,
                                  const char *const *values)
{
    json_t *object;
    int found = booking_p_fetch_json(ctx, sql, nparams, values, &object);

    if (found == 1) {
        booking_reply_json(ctx, 200, object);
    } else if (found == 0) {
        booking_p_not_found(ctx, what);
    }
}

/* Commits the open transaction, then replies with object (stolen) and, for 201, its URL: path below the base, then the
 * object's id. */
static void booking_p_commit_reply(booking_ctx *ctx, int status, json_t *object, const char *path)
{
    char *location = NULL;
    size_t len;

    if (object == NULL) {
        booking_reply_error(ctx, 500, "internal", NULL, "out of memory");
        return;
    }
    /* A single statement (an absence) commits by itself. */
    if (ctx->in_transaction && booking_commit(ctx) != 0) {
        json_decref(object);
        booking_reply_db_error(ctx);
        return;
    }
    if (status == 201 && path != NULL) {
        len = strlen(ctx->base) + strlen(path) + 32;
        location = malloc(len);
        if (location != NULL) {
            snprintf(location, len, "%s%s/%lld", ctx->base, path,
                     (long long)json_integer_value(json_object_get(object, "id")));
        }
    }
    booking_reply_json(ctx, status, object);
    if (ctx->resp->status == status) {
        free(ctx->resp->location);
        ctx->resp->location = location;
    } else {
        free(location);
    }
}

/* Renders inside the open transaction (so the reply shows what is being committed), then commits and replies. */
static void booking_p_render_commit(booking_ctx *ctx, int status, const char *what, const char *sql, int nparams,
                                    const char *const *values, const char *path)
{
    json_t *object;
    int found = booking_p_fetch_json(ctx, sql, nparams, values, &object);

    if (found == 0) {
        booking_p_not_found(ctx, what);
    } else if (found == 1) {
        booking_p_commit_reply(ctx, status, object, path);
    }
}

/* The body as an object holding only the allowed members; NULL after replying. */
static json_t *booking_p_body(booking_ctx *ctx, const char *const *allowed)
{
    json_t *body = booking_body_json(ctx);

    if (body != NULL && booking_check_members(ctx, body, allowed) != 0) {
        json_decref(body);
        return NULL;
    }
    return body;
}

/* Minutes since midnight of a valid "HH:MM". */
static int booking_p_minutes(const char *hhmm)
{
    return ((hhmm[0] - '0') * 10 + (hhmm[1] - '0')) * 60 + (hhmm[3] - '0') * 10 + (hhmm[4] - '0');
}

/* ---------------------------------------------------------------------------------------- row building */

/* The columns a body sets, so that one reading serves an INSERT (POST) and an UPDATE (PUT). Column names and casts
 * are static strings of this file; values are always parameters. */
typedef struct {
    const char *columns[BOOKING_P_COLUMNS_MAX];
    const char *casts[BOOKING_P_COLUMNS_MAX];
    const char *values[BOOKING_P_COLUMNS_MAX];
    int count;
} booking_p_row;

static void booking_p_row_add(booking_p_row *row, const char *column, const char *cast, const char *value)
{
    if (row->count < BOOKING_P_COLUMNS_MAX) {
        row->columns[row->count] = column;
        row->casts[row->count] = cast;
        row->values[row->count] = value;
        row->count++;
    }
}

/* keys first ($1...), then the row's values: the parameters of the statements below. */
static const char **booking_p_row_params(booking_ctx *ctx, const booking_p_row *row, const char *const *keys, int nkeys)
{
    const char **params = booking_alloc(ctx, sizeof(*params) * (size_t)(nkeys + row->count + 1));
    int i;

    for (i = 0; i < nkeys; i++) {
        params[i] = keys[i];
    }
    for (i = 0; i < row->count; i++) {
        params[nkeys + i] = row->values[i];
    }
    return params;
}

/* INSERT INTO table (partner_id, ...) VALUES ($1, ...) RETURNING id */
static const char *booking_p_row_insert_sql(booking_ctx *ctx, const booking_p_row *row, const char *table)
{
    const char *columns = "partner_id", *values = "$1";
    int i;

    for (i = 0; i < row->count; i++) {
        columns = booking_printf(ctx, "%s, %s", columns, row->columns[i]);
        values = booking_printf(ctx, "%s, $%d%s", values, i + 2, row->casts[i]);
    }
    return booking_printf(ctx, "INSERT INTO %s (%s) VALUES (%s) RETURNING id", table, columns, values);
}

/* UPDATE table SET ... WHERE where (whose parameters are the nkeys first ones); NULL when nothing is set. */
static const char *booking_p_row_update_sql(booking_ctx *ctx, const booking_p_row *row, const char *table,
                                            const char *where, int nkeys)
{
    const char *sets = "";
    int i;

    if (row->count == 0) {
        return NULL;
    }
    for (i = 0; i < row->count; i++) {
        sets =
            booking_printf(ctx, "%s%s%s = $%d%s", sets, i ? ", " : "", row->columns[i], nkeys + i + 1, row->casts[i]);
    }
    return booking_printf(ctx, "UPDATE %s SET %s WHERE %s", table, sets, where);
}

/* ---------------------------------------------------------------------------------------- member readers */

/* Free text of at most max characters; empty only when allow_empty. */
static int booking_p_read_text(booking_ctx *ctx, json_t *body, booking_p_row *row, const char *name, int required,
                               size_t max, int allow_empty)
{
    const char *value = NULL;

    if (booking_get_string(ctx, body, name, required, max, &value) != 0) {
        return -1;
    }
    if (value == NULL) {
        return 0;
    }
    if (!allow_empty && value[0] == '\0') {
        return booking_p_bad(ctx, name, "%s must not be empty", name);
    }
    booking_p_row_add(row, name, "", value);
    return 0;
}

static int booking_p_read_int(booking_ctx *ctx, json_t *body, booking_p_row *row, const char *name, int required,
                              long long min, long long max)
{
    json_t *member = json_object_get(body, name);
    long long value = 0;

    if (booking_get_int(ctx, body, name, required, min, max, &value) != 0) {
        return -1;
    }
    if (member != NULL && !json_is_null(member)) {
        booking_p_row_add(row, name, "::integer", booking_printf(ctx, "%lld", value));
    }
    return 0;
}

static int booking_p_read_bool(booking_ctx *ctx, json_t *body, booking_p_row *row, const char *name)
{
    int value = -1;

    if (booking_get_bool(ctx, body, name, 0, &value) != 0) {
        return -1;
    }
    if (value == 0 || value == 1) {
        booking_p_row_add(row, name, "::boolean", value ? "true" : "false");
    }
    return 0;
}

/* ISO 4217: three letters, stored upper-case. */
static int booking_p_read_currency(booking_ctx *ctx, json_t *body, booking_p_row *row)
{
    const char *value = NULL;
    char *upper;
    size_t i;

    if (booking_get_string(ctx, body, "currency", 0, 3, &value) != 0) {
        return -1;
    }
    if (value == NULL) {
        return 0;
    }
    upper = booking_strdup(ctx, value);
    for (i = 0; upper[i] != '\0'; i++) {
        if (upper[i] >= 'a' && upper[i] <= 'z') {
            upper[i] = (char)(upper[i] - 'a' + 'A');
        }
    }
    if (strlen(upper) != 3 || strspn(upper, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != 3) {
        return booking_p_bad(ctx, "currency", "currency must be an ISO 4217 code such as EUR");
    }
    booking_p_row_add(row, "currency", "", upper);
    return 0;
}

/* A resource kind ("room", "chair"): the schema's ^[a-z0-9_-]{1,40}$. */
static int booking_p_valid_kind(const char *s)
{
    size_t len = strlen(s);

    return len >= 1 && len <= 40 && strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_-") == len;
}

/* nullable: an explicit null clears the column (a service that no longer needs a room). */
static int booking_p_read_kind(booking_ctx *ctx, json_t *body, booking_p_row *row, const char *name, int required,
                               int nullable)
{
    const char *value = NULL;

    if (nullable && json_is_null(json_object_get(body, name))) {
        booking_p_row_add(row, name, "", NULL);
        return 0;
    }
    if (booking_get_string(ctx, body, name, required, 40, &value) != 0) {
        return -1;
    }
    if (value == NULL) {
        return 0;
    }
    if (!booking_p_valid_kind(value)) {
        return booking_p_bad(ctx, name, "%s takes lower-case letters, digits, '_' and '-' (1 to 40)", name);
    }
    booking_p_row_add(row, name, "", value);
    return 0;
}

/* ----------------------------------------------------------------------------------------- id lists */

/* An array of ids as a PostgreSQL array literal ("{3,5}"), *out NULL when the member is absent. The ids are checked
 * against the partner's rows of table (a static name) by booking_p_check_ids. */
static int booking_p_read_ids(booking_ctx *ctx, json_t *body, const char *name, const char **out)
{
    json_t *array = json_object_get(body, name), *item;
    size_t i;
    char *text, *p;

    *out = NULL;
    if (array == NULL || json_is_null(array)) {
        return 0;
    }
    if (!json_is_array(array)) {
        return booking_p_bad(ctx, name, "%s must be an array of ids", name);
    }
    if (json_array_size(array) > BOOKING_P_IDS_MAX) {
        return booking_p_bad(ctx, name, "%s holds more than %d ids", name, BOOKING_P_IDS_MAX);
    }
    text = booking_alloc(ctx, json_array_size(array) * (BOOKING_P_ID_DIGITS + 2) + 3);
    p = text;
    *p++ = '{';
    json_array_foreach(array, i, item)
    {
        if (!json_is_integer(item) || json_integer_value(item) < 1 || json_integer_value(item) > 999999999999999LL) {
            return booking_p_bad(ctx, booking_printf(ctx, "%s[%zu]", name, i), "%s[%zu] must be an id", name, i);
        }
        p += sprintf(p, "%s%lld", i ? "," : "", (long long)json_integer_value(item));
    }
    *p++ = '}';
    *p = '\0';
    *out = text;
    return 0;
}

/* Every id must be one of the partner's rows in table; the first that is not gets 400 "name[i]" (the same answer
 * whether it does not exist or belongs to someone else). */
static int booking_p_check_ids(booking_ctx *ctx, const char *name, const char *table, const char *ids)
{
    const char *values[2] = {ctx->partner_id, ids};
    const char *sql = booking_printf(ctx,
                                     "SELECT u.i - 1 FROM unnest($2::bigint[]) WITH ORDINALITY AS u(id, i) "
                                     "WHERE NOT EXISTS (SELECT 1 FROM %s t WHERE t.id = u.id AND t.partner_id = $1) "
                                     "ORDER BY u.i LIMIT 1",
                                     table);
    PGresult *res = booking_exec(ctx, sql, 2, values);
    const char *index;

    if (res == NULL) {
        booking_reply_db_error(ctx);
        return -1;
    }
    if (PQntuples(res) == 0) {
        PQclear(res);
        return 0;
    }
    index = booking_strdup(ctx, PQgetvalue(res, 0, 0));
    PQclear(res);
    return booking_p_bad(ctx, booking_printf(ctx, "%s[%s]", name, index), "%s[%s] is not one of yours", name, index);
}

/* ----------------------------------------------------------------------------------------- weekly periods */

typedef struct {
    long long weekday;
    const char *from, *to; /* "HH:MM" */
    int from_min, to_min;
} booking_p_period;

typedef struct {
    const char *member; /* "hours", "breaks" */
    const char *from;   /* "opens", "starts" */
    const char *to;     /* "closes", "ends" */
} booking_p_period_names;

static int booking_p_read_period(booking_ctx *ctx, json_t *item, const booking_p_period_names *names,
                                 booking_p_period *period)
{
    const char *allowed[] = {"weekday", names->from, names->to, NULL};

    if (!json_is_object(item)) {
        return booking_p_bad(ctx, "", "an object with weekday, %s and %s is expected", names->from, names->to);
    }
    if (booking_check_members(ctx, item, allowed) != 0 ||
        booking_get_int(ctx, item, "weekday", 1, 1, 7, &period->weekday) != 0 ||
        booking_get_time(ctx, item, names->from, 1, &period->from) != 0 ||
        booking_get_time(ctx, item, names->to, 1, &period->to) != 0) {
        return -1;
    }
    period->from_min = booking_p_minutes(period->from);
    period->to_min = booking_p_minutes(period->to);
    if (period->from_min >= period->to_min) {
        return booking_p_bad(ctx, names->to, "%s must be after %s", names->to, names->from);
    }
    return 0;
}

/* The member's array of weekly periods, none overlapping another of the same weekday. *count 0 when absent. */
static int booking_p_read_periods(booking_ctx *ctx, json_t *body, const booking_p_period_names *names, int required,
                                  booking_p_period **out, size_t *count)
{
    json_t *array = json_object_get(body, names->member), *item;
    booking_p_period *periods;
    size_t i, j;
    int rc = 0;

    *out = NULL;
    *count = 0;
    if (array == NULL || json_is_null(array)) {
        return required ? booking_p_bad(ctx, names->member, "%s is required", names->member) : 0;
    }
    if (!json_is_array(array) || json_array_size(array) > BOOKING_P_PERIODS_MAX) {
        return booking_p_bad(ctx, names->member, "%s must be an array of at most %d periods", names->member,
                             BOOKING_P_PERIODS_MAX);
    }
    periods = booking_alloc(ctx, sizeof(*periods) * (json_array_size(array) + 1));
    json_array_foreach(array, i, item)
    {
        ctx->field_prefix = booking_printf(ctx, "%s[%zu]%s", names->member, i, json_is_object(item) ? "." : "");
        rc = booking_p_read_period(ctx, item, names, &periods[i]);
        ctx->field_prefix = NULL;
        if (rc != 0) {
            return -1;
        }
        for (j = 0; j < i; j++) {
            if (periods[j].weekday == periods[i].weekday && periods[j].from_min < periods[i].to_min &&
                periods[i].from_min < periods[j].to_min) {
                return booking_p_bad(ctx, booking_printf(ctx, "%s[%zu]", names->member, i), "%s[%zu] overlaps %s[%zu]",
                                     names->member, i, names->member, j);
            }
        }
    }
    *out = periods;
    *count = json_array_size(array);
    return 0;
}

/* Three PostgreSQL array literals (weekdays, starts, ends) for unnest(): the values are digits and colons only. */
static void booking_p_period_arrays(booking_ctx *ctx, const booking_p_period *periods, size_t count,
                                    const char **weekdays, const char **froms, const char **tos)
{
    size_t i;

    *weekdays = "";
    *froms = "";
    *tos = "";
    for (i = 0; i < count; i++) {
        *weekdays = booking_printf(ctx, "%s%s%lld", *weekdays, i ? "," : "", periods[i].weekday);
        *froms = booking_printf(ctx, "%s%s%s", *froms, i ? "," : "", periods[i].from);
        *tos = booking_printf(ctx, "%s%s%s", *tos, i ? "," : "", periods[i].to);
    }
    *weekdays = booking_printf(ctx, "{%s}", *weekdays);
    *froms = booking_printf(ctx, "{%s}", *froms);
    *tos = booking_printf(ctx, "{%s}", *tos);
}

/* Replaces owner's rows of table with the periods, in the caller's transaction. */
static int booking_p_replace_periods(booking_ctx *ctx, const char *table, const char *owner_column, const char *owner,
                                     const booking_p_period_names *names, const booking_p_period *periods, size_t count)
{
    const char *values[4] = {owner, NULL, NULL, NULL};
    const char *sql;

    sql = booking_printf(ctx, "DELETE FROM %s WHERE %s = $1", table, owner_column);
    if (booking_p_run(ctx, sql, 1, values) < 0) {
        return -1;
    }
    if (count == 0) {
        return 0;
    }
    booking_p_period_arrays(ctx, periods, count, &values[1], &values[2], &values[3]);
    sql = booking_printf(ctx,
                         "INSERT INTO %s (%s, weekday, %s, %s) SELECT $1, w, f, t "
                         "FROM unnest($2::smallint[], $3::time[], $4::time[]) AS u(w, f, t)",
                         table, owner_column, names->from, names->to);
    return booking_p_run(ctx, sql, 4, values) < 0 ? -1 : 0;
}

/* ------------------------------------------------------------------------------------- the partner itself */

#define BOOKING_P_SELF_SQL "SELECT " BOOKING_P_PARTNER_JSON "::text FROM booking.partners p WHERE p.id = $1"

void booking_route_p_self(booking_ctx *ctx)
{
    const char *values[1] = {ctx->partner_id};

    booking_p_reply_query(ctx, "partner", BOOKING_P_SELF_SQL, 1, values);
}

/* An empty string clears the phone or the e-mail address; anything else must be a valid one. */
static int booking_p_read_contact(booking_ctx *ctx, json_t *body, booking_p_row *row, const char *name)
{
    json_t *member = json_object_get(body, name);
    const char *value = NULL;
    int rc;

    if (json_is_string(member) && strspn(json_string_value(member), " \t") == strlen(json_string_value(member))) {
        booking_p_row_add(row, name, "", "");
        return 0;
    }
    rc = strcmp(name, "phone") == 0 ? booking_get_phone(ctx, body, name, 0, &value)
                                    : booking_get_email(ctx, body, name, 0, &value);
    if (rc != 0) {
        return -1;
    }
    if (value != NULL) {
        booking_p_row_add(row, name, "", value);
    }
    return 0;
}

/* A zone PostgreSQL knows, since the availability engine converts with PostgreSQL's tzdata; null: the server's
 * BookingTimeZone. */
static int booking_p_read_zone(booking_ctx *ctx, json_t *body, booking_p_row *row)
{
    const char *zone = NULL;
    long found;

    if (json_is_null(json_object_get(body, "time_zone"))) {
        booking_p_row_add(row, "time_zone", "", NULL);
        return 0;
    }
    if (booking_get_string(ctx, body, "time_zone", 0, BOOKING_P_ZONE_MAX, &zone) != 0) {
        return -1;
    }
    if (zone == NULL) {
        return 0;
    }
    found = booking_p_run(ctx, "SELECT 1 FROM pg_timezone_names WHERE name = $1", 1, &zone);
    if (found < 0) {
        return -1;
    }
    if (found == 0) {
        return booking_p_bad(ctx, "time_zone", "time_zone must be an IANA zone such as Europe/Paris");
    }
    booking_p_row_add(row, "time_zone", "", zone);
    return 0;
}

/* Lower-case letters, digits and '-' in labels of 1 to 63 that neither start nor end with '-'. */
static int booking_p_valid_host(const char *s)
{
    size_t len = strlen(s), label = 0, i;

    if (len == 0 || len > BOOKING_P_HOST_MAX) {
        return 0;
    }
    for (i = 0; i <= len; i++) {
        char c = s[i];

        if (c == '.' || c == '\0') {
            if (label == 0 || s[i - 1] == '-') {
                return 0;
            }
            label = 0;
        } else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (c == '-' && label > 0)) {
            if (++label > BOOKING_P_LABEL_MAX) {
                return 0;
            }
        } else {
            return 0;
        }
    }
    return 1;
}

/* One host name, lower-cased and without a final dot, as the router compares them. NULL after replying. */
static const char *booking_p_read_host(booking_ctx *ctx, json_t *item, size_t index)
{
    const char *field = booking_printf(ctx, "hosts[%zu]", index);
    char *host, *p;
    size_t len;

    if (!json_is_string(item) || json_string_length(item) > BOOKING_P_HOST_MAX + 1) {
        booking_p_bad(ctx, field, "%s must be a host name", field);
        return NULL;
    }
    host = booking_strdup(ctx, json_string_value(item));
    for (p = host; *p != '\0'; p++) {
        if (*p >= 'A' && *p <= 'Z') {
            *p = (char)(*p - 'A' + 'a');
        }
    }
    len = strlen(host);
    if (len > 1 && host[len - 1] == '.') {
        host[len - 1] = '\0';
    }
    if (!booking_p_valid_host(host)) {
        booking_p_bad(ctx, field, "%s must be a host name such as booking.example.com", field);
        return NULL;
    }
    return host;
}

/* The white-label site's host names as a text[] literal (each quoted; host names hold no quote or backslash). */
static int booking_p_read_hosts(booking_ctx *ctx, json_t *body, booking_p_row *row)
{
    json_t *array = json_object_get(body, "hosts"), *item;
    const char *hosts[BOOKING_P_HOSTS_MAX], *host, *text = "";
    size_t i, j, n = 0;

    if (array == NULL || json_is_null(array)) {
        return 0;
    }
    if (!json_is_array(array) || json_array_size(array) > BOOKING_P_HOSTS_MAX) {
        return booking_p_bad(ctx, "hosts", "hosts must be an array of at most %d host names", BOOKING_P_HOSTS_MAX);
    }
    json_array_foreach(array, i, item)
    {
        if ((host = booking_p_read_host(ctx, item, i)) == NULL) {
            return -1;
        }
        for (j = 0; j < n && strcmp(hosts[j], host) != 0; j++) {
        }
        if (j == n) {
            hosts[n++] = host;
            text = booking_printf(ctx, "%s%s\"%s\"", text, n > 1 ? "," : "", host);
        }
    }
    booking_p_row_add(row, "hosts", "::text[]", booking_printf(ctx, "{%s}", text));
    return 0;
}

/* https:// URLs or paths of this site; no characters that would need escaping in an attribute or a CSS url(). */
static int booking_p_valid_logo_url(const char *s)
{
    const char *p;

    if (strncmp(s, "https://", 8) == 0) {
        if (s[8] == '\0' || s[8] == '/') {
            return 0;
        }
    } else if (s[0] != '/' || s[1] == '/') {
        return 0;
    }
    for (p = s; *p != '\0'; p++) {
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f || strchr("\"'<>\\`(){}", *p) != NULL) {
            return 0;
        }
    }
    return 1;
}

static int booking_p_valid_color(const char *s)
{
    return strlen(s) == 7 && s[0] == '#' && strspn(s + 1, "0123456789abcdefABCDEF") == 6;
}

static int booking_p_branding_members(booking_ctx *ctx, json_t *branding, json_t *out)
{
    static const char *const allowed[] = {"color", "logo_url", "tagline", NULL};
    const char *color = NULL, *logo_url = NULL, *tagline = NULL;
    char *lower;
    size_t i;

    if (booking_check_members(ctx, branding, allowed) != 0 ||
        booking_get_string(ctx, branding, "color", 0, 7, &color) != 0 ||
        booking_get_string(ctx, branding, "logo_url", 0, BOOKING_P_URL_MAX, &logo_url) != 0 ||
        booking_get_string(ctx, branding, "tagline", 0, 200, &tagline) != 0) {
        return -1;
    }
    if (color != NULL && color[0] != '\0') {
        if (!booking_p_valid_color(color)) {
            return booking_p_bad(ctx, "color", "color must be #rrggbb");
        }
        lower = booking_strdup(ctx, color);
        for (i = 1; lower[i] != '\0'; i++) {
            lower[i] = (char)(lower[i] >= 'A' && lower[i] <= 'F' ? lower[i] - 'A' + 'a' : lower[i]);
        }
        json_object_set_new(out, "color", json_string(lower));
    }
    if (logo_url != NULL && logo_url[0] != '\0') {
        if (!booking_p_valid_logo_url(logo_url)) {
            return booking_p_bad(ctx, "logo_url", "logo_url must be an https:// URL or a path starting with /");
        }
        json_object_set_new(out, "logo_url", json_string(logo_url));
    }
    if (tagline != NULL && tagline[0] != '\0') {
        json_object_set_new(out, "tagline", json_string(tagline));
    }
    return 0;
}

/* branding replaces the whole object: members left out (or null, or "") are removed. */
static int booking_p_read_branding(booking_ctx *ctx, json_t *body, booking_p_row *row)
{
    json_t *branding = json_object_get(body, "branding"), *out;
    char *text;
    int rc;

    if (branding == NULL) {
        return 0;
    }
    if (json_is_null(branding)) {
        booking_p_row_add(row, "branding", "::jsonb", "{}");
        return 0;
    }
    if (!json_is_object(branding)) {
        return booking_p_bad(ctx, "branding", "branding must be an object with color, logo_url and tagline");
    }
    out = json_object();
    if (out == NULL) {
        booking_reply_error(ctx, 500, "internal", NULL, "out of memory");
        return -1;
    }
    ctx->field_prefix = "branding.";
    rc = booking_p_branding_members(ctx, branding, out);
    ctx->field_prefix = NULL;
    text = rc == 0 ? json_dumps(out, JSON_COMPACT) : NULL;
    json_decref(out);
    if (rc != 0) {
        return -1;
    }
    if (text == NULL) {
        booking_reply_error(ctx, 500, "internal", NULL, "out of memory");
        return -1;
    }
    booking_p_row_add(row, "branding", "::jsonb", booking_strdup(ctx, text));
    free(text);
    return 0;
}

static int booking_p_read_partner(booking_ctx *ctx, json_t *body, booking_p_row *row)
{
    if (booking_p_read_text(ctx, body, row, "name", 0, 200, 0) != 0 ||
        booking_p_read_text(ctx, body, row, "city", 0, 100, 1) != 0 ||
        booking_p_read_text(ctx, body, row, "address", 0, 300, 1) != 0 ||
        booking_p_read_contact(ctx, body, row, "phone") != 0 || booking_p_read_contact(ctx, body, row, "email") != 0 ||
        booking_p_read_hosts(ctx, body, row) != 0 || booking_p_read_branding(ctx, body, row) != 0 ||
        booking_p_read_currency(ctx, body, row) != 0 ||
        booking_p_read_int(ctx, body, row, "min_notice_minutes", 0, 0, 43200) != 0 ||
        booking_p_read_int(ctx, body, row, "horizon_days", 0, 1, 730) != 0 ||
        booking_p_read_int(ctx, body, row, "slot_step_minutes", 0, 5, 240) != 0 ||
        booking_p_read_int(ctx, body, row, "cancel_deadline_minutes", 0, 0, 43200) != 0) {
        return -1;
    }
    /* Last: the only check that needs the database. */
    return booking_p_read_zone(ctx, body, row);
}

/* Host names decide which partner a white-label site shows: one partner may not take another's. The lock keeps two
 * partners from claiming the same name at the same moment. */
static int booking_p_check_hosts(booking_ctx *ctx, const booking_p_row *row)
{
    const char *values[2] = {ctx->partner_id, NULL};
    long taken;
    int i;

    for (i = 0; i < row->count && strcmp(row->columns[i], "hosts") != 0; i++) {
    }
    if (i == row->count) {
        return 0;
    }
    values[1] = row->values[i];
    if (booking_p_run(ctx, "SELECT pg_advisory_xact_lock(hashtext('booking.partners.hosts'))", 0, NULL) < 0) {
        return -1;
    }
    taken =
        booking_p_run(ctx, "SELECT 1 FROM booking.partners WHERE id <> $1 AND hosts && $2::text[] LIMIT 1", 2, values);
    if (taken < 0) {
        return -1;
    }
    if (taken > 0) {
        booking_reply_error(ctx, 409, "conflict", "hosts", "a host name is already another partner's");
        return -1;
    }
    return 0;
}

void booking_route_p_update(booking_ctx *ctx)
{
    static const char *const allowed[] = {"name",
                                          "city",
                                          "address",
                                          "phone",
                                          "email",
                                          "time_zone",
                                          "hosts",
                                          "branding",
                                          "currency",
                                          "min_notice_minutes",
                                          "horizon_days",
                                          "slot_step_minutes",
                                          "cancel_deadline_minutes",
                                          NULL};
    booking_p_row row = {0};
    const char *keys[1] = {ctx->partner_id}, *sql;
    json_t *body = booking_p_body(ctx, allowed);
    int rc;

    if (body == NULL) {
        return;
    }
    rc = booking_p_read_partner(ctx, body, &row);
    json_decref(body);
    if (rc != 0 || booking_begin(ctx) != 0) {
        if (rc == 0) {
            booking_reply_db_error(ctx);
        }
        return;
    }
    if (booking_p_check_hosts(ctx, &row) != 0) {
        return;
    }
    sql = booking_p_row_update_sql(ctx, &row, "booking.partners", "id = $1", 1);
    if (sql != NULL && booking_p_run(ctx, sql, 1 + row.count, booking_p_row_params(ctx, &row, keys, 1)) < 0) {
        return;
    }
    booking_p_render_commit(ctx, 200, "partner", BOOKING_P_SELF_SQL, 1, keys, NULL);
}

/* --------------------------------------------------------------------------------------- opening hours */

static const booking_p_period_names booking_p_hours_names = {"hours", "opens", "closes"};

#define BOOKING_P_OPENING_HOURS_JSON                                                                                   \
    BOOKING_P_PERIODS_JSON("booking.opening_hours", "opens", "closes", "h.partner_id = p.id")
#define BOOKING_P_HOURS_SQL                                                                                            \
    "SELECT json_build_object('hours', " BOOKING_P_OPENING_HOURS_JSON ")::text "                                       \
    "FROM booking.partners p WHERE p.id = $1"

void booking_route_p_hours(booking_ctx *ctx)
{
    static const char *const allowed[] = {"hours", NULL};
    const char *keys[1] = {ctx->partner_id};
    booking_p_period *periods;
    size_t count;
    json_t *body;
    int rc;

    if (booking_p_is_get(ctx)) {
        booking_p_reply_query(ctx, "partner", BOOKING_P_HOURS_SQL, 1, keys);
        return;
    }
    if ((body = booking_p_body(ctx, allowed)) == NULL) {
        return;
    }
    rc = booking_p_read_periods(ctx, body, &booking_p_hours_names, 1, &periods, &count);
    json_decref(body);
    if (rc != 0) {
        return;
    }
    if (booking_begin(ctx) != 0) {
        booking_reply_db_error(ctx);
        return;
    }
    if (booking_p_replace_periods(ctx, "booking.opening_hours", "partner_id", ctx->partner_id, &booking_p_hours_names,
                                  periods, count) != 0) {
        return;
    }
    booking_p_render_commit(ctx, 200, "partner", BOOKING_P_HOURS_SQL, 1, keys, NULL);
}

/* ------------------------------------------------------------------------------------------ exceptions */

/* A day with times (special hours, or an absence of part of the day) or without (closed, or away all day). */
typedef struct {
    const char *day, *from, *to, *note;
} booking_p_day;

static int booking_p_read_day(booking_ctx *ctx, json_t *body, const char *from_name, const char *to_name,
                              booking_p_day *day)
{
    const char *allowed[] = {"day", from_name, to_name, "note", NULL};

    memset(day, 0, sizeof(*day));
    if (booking_check_members(ctx, body, allowed) != 0 || booking_get_date(ctx, body, "day", 1, &day->day) != 0 ||
        booking_get_time(ctx, body, from_name, 0, &day->from) != 0 ||
        booking_get_time(ctx, body, to_name, 0, &day->to) != 0 ||
        booking_get_string(ctx, body, "note", 0, 200, &day->note) != 0) {
        return -1;
    }
    if ((day->from == NULL) != (day->to == NULL)) {
        const char *missing = day->from == NULL ? from_name : to_name;

        return booking_p_bad(ctx, missing, "%s and %s go together (neither: the whole day)", from_name, to_name);
    }
    if (day->from != NULL && booking_p_minutes(day->from) >= booking_p_minutes(day->to)) {
        return booking_p_bad(ctx, to_name, "%s must be after %s", to_name, from_name);
    }
    if (day->note == NULL) {
        day->note = "";
    }
    return 0;
}

/* ?from=&to= (both optional, inclusive). -1 after replying. */
static int booking_p_read_range(booking_ctx *ctx, const char **from, const char **to)
{
    *from = NULL;
    *to = NULL;
    if (booking_arg_date(ctx, "from", 0, from) != 0 || booking_arg_date(ctx, "to", 0, to) != 0) {
        return -1;
    }
    if (*from != NULL && *to != NULL && strcmp(*from, *to) > 0) {
        return booking_p_bad(ctx, "to", "to must not be before from");
    }
    return 0;
}

/* Special hours replace the day's opening hours and a closure closes it: a day cannot hold both, and its special
 * hours cannot overlap. The lock serialises writers of the same partner's exceptions. */
static int booking_p_check_day(booking_ctx *ctx, const booking_p_day *day)
{
    const char *values[4] = {ctx->partner_id, day->day, day->from, day->to};
    PGresult *res;
    const char *clash;

    if (booking_p_run(ctx, "SELECT pg_advisory_xact_lock(hashtext('booking.partner_exceptions:' || $1))", 1, values) <
        0) {
        return -1;
    }
    res = booking_exec(ctx,
                       "SELECT CASE WHEN bool_or(opens IS NULL) THEN 'the day is already closed' "
                       "WHEN $3::time IS NULL AND count(*) > 0 THEN 'the day has special hours' "
                       "WHEN bool_or(opens < $4::time AND closes > $3::time) THEN 'it overlaps special hours' END "
                       "FROM booking.partner_exceptions WHERE partner_id = $1 AND day = $2::date",
                       4, values);
    if (res == NULL) {
        booking_reply_db_error(ctx);
        return -1;
    }
    clash = PQgetisnull(res, 0, 0) ? NULL : booking_strdup(ctx, PQgetvalue(res, 0, 0));
    PQclear(res);
    if (clash != NULL) {
        booking_reply_error(ctx, 409, "conflict", "day", "%s", clash);
        return -1;
    }
    return 0;
}

static void booking_p_exception_create(booking_ctx *ctx)
{
    const char *values[5];
    booking_p_day day;
    json_t *body = booking_body_json(ctx), *object;
    int rc;

    if (body == NULL) {
        return;
    }
    rc = booking_p_read_day(ctx, body, "opens", "closes", &day);
    json_decref(body);
    if (rc != 0) {
        return;
    }
    if (booking_begin(ctx) != 0) {
        booking_reply_db_error(ctx);
        return;
    }
    if (booking_p_check_day(ctx, &day) != 0) {
        return;
    }
    values[0] = ctx->partner_id;
    values[1] = day.day;
    values[2] = day.from;
    values[3] = day.to;
    values[4] = day.note;
    rc = booking_p_fetch_json(ctx,
                              "INSERT INTO booking.partner_exceptions (partner_id, day, opens, closes, note) "
                              "VALUES ($1, $2::date, $3::time, $4::time, $5) RETURNING " BOOKING_P_EXCEPTION_JSON
                              "::text",
                              5, values, &object);
    if (rc == 1) {
        booking_p_commit_reply(ctx, 201, object, "/account/exceptions");
    }
}

void booking_route_p_exceptions(booking_ctx *ctx)
{
    const char *values[3] = {ctx->partner_id, NULL, NULL};

    if (!booking_p_is_get(ctx)) {
        booking_p_exception_create(ctx);
        return;
    }
    if (booking_p_read_range(ctx, &values[1], &values[2]) != 0) {
        return;
    }
    booking_p_reply_query(ctx, "partner",
                          "SELECT json_build_object('exceptions', coalesce(json_agg(" BOOKING_P_EXCEPTION_JSON
                          " ORDER BY day, opens NULLS FIRST, id), '[]'))::text FROM booking.partner_exceptions "
                          "WHERE partner_id = $1 AND ($2::date IS NULL OR day >= $2::date) "
                          "AND ($3::date IS NULL OR day <= $3::date)",
                          3, values);
}

void booking_route_p_exception_delete(booking_ctx *ctx)
{
    const char *values[2] = {booking_p_path_id(ctx, 0, "exception"), ctx->partner_id};
    long rows;

    if (values[0] == NULL) {
        return;
    }
    rows = booking_p_run(ctx, "DELETE FROM booking.partner_exceptions WHERE id = $1 AND partner_id = $2", 2, values);
    if (rows == 0) {
        booking_p_not_found(ctx, "exception");
    } else if (rows > 0) {
        booking_reply_json(ctx, 204, NULL);
    }
}

/* ------------------------------------------------------------------------------------------------ calendar */

/* The local dates the view covers: the day, or Monday to Sunday of its ISO week. date is valid. */
static void booking_p_calendar_range(const char *date, int week, char *from, char *to, size_t len)
{
    struct tm tm = {0};
    time_t day;
    int back;

    tm.tm_year = atoi(date) - 1900;
    tm.tm_mon = atoi(date + 5) - 1;
    tm.tm_mday = atoi(date + 8);
    tm.tm_hour = 12;
    day = timegm(&tm);
    back = week ? (tm.tm_wday + 6) % 7 : 0;
    day -= (time_t)back * 86400;
    gmtime_r(&day, &tm);
    strftime(from, len, "%Y-%m-%d", &tm);
    day += (time_t)(week ? 6 : 0) * 86400;
    gmtime_r(&day, &tm);
    strftime(to, len, "%Y-%m-%d", &tm);
}

/* Columns: staff id, staff name, then the booking's (NULL for active staff without bookings in the range). The
 * offsets are the zone's at each instant, so a week across a DST change shows each booking with its own. */
#define BOOKING_P_CALENDAR_SQL                                                                                         \
    "WITH b AS (SELECT b.id, b.staff_id, extract(epoch FROM b.starts_at)::bigint AS s, "                               \
    "extract(epoch FROM b.ends_at)::bigint AS e, "                                                                     \
    "extract(epoch FROM (b.starts_at AT TIME ZONE $4) - (b.starts_at AT TIME ZONE 'UTC'))::int AS so, "                \
    "extract(epoch FROM (b.ends_at AT TIME ZONE $4) - (b.ends_at AT TIME ZONE 'UTC'))::int AS eo, "                    \
    "b.status, v.id AS service_id, v.name AS service_name, c.name AS customer_name, c.phone, c.email, "                \
    "b.price_cents, b.starts_at "                                                                                      \
    "FROM booking.bookings b JOIN booking.services v ON v.id = b.service_id "                                          \
    "JOIN booking.customers c ON c.id = b.customer_id "                                                                \
    "WHERE b.partner_id = $1 AND b.starts_at < (($3::date + 1)::timestamp AT TIME ZONE $4) "                           \
    "AND b.ends_at > ($2::date::timestamp AT TIME ZONE $4) AND ($5::boolean OR b.status <> 'cancelled')) "             \
    "SELECT s.id, s.name, b.id, b.s, b.e, b.so, b.eo, b.status, b.service_id, b.service_name, b.customer_name, "       \
    "b.phone, b.email, b.price_cents FROM booking.staff s LEFT JOIN b ON b.staff_id = s.id "                           \
    "WHERE s.partner_id = $1 AND (s.active OR b.id IS NOT NULL) ORDER BY lower(s.name), s.id, b.starts_at, b.id"

static json_t *booking_p_calendar_booking(PGresult *res, int row)
{
    char start[40], end[40];

    booking_format_local(atoll(PQgetvalue(res, row, 3)), atoi(PQgetvalue(res, row, 5)), start);
    booking_format_local(atoll(PQgetvalue(res, row, 4)), atoi(PQgetvalue(res, row, 6)), end);
    return json_pack("{s:I, s:s, s:s, s:s, s:{s:I, s:s}, s:{s:s, s:s, s:s}, s:I}", "id",
                     (json_int_t)atoll(PQgetvalue(res, row, 2)), "start", start, "end", end, "status",
                     PQgetvalue(res, row, 7), "service", "id", (json_int_t)atoll(PQgetvalue(res, row, 8)), "name",
                     PQgetvalue(res, row, 9), "customer", "name", PQgetvalue(res, row, 10), "phone",
                     PQgetvalue(res, row, 11), "email", PQgetvalue(res, row, 12), "price_cents",
                     (json_int_t)atoll(PQgetvalue(res, row, 13)));
}

/* Rows ordered by staff: one entry per staff member, its bookings in order. NULL when memory ran out. */
static json_t *booking_p_calendar_staff(PGresult *res)
{
    json_t *staff = json_array(), *member = NULL, *bookings = NULL, *booking;
    int i, n = PQntuples(res);

    for (i = 0; staff != NULL && i < n; i++) {
        if (i == 0 || strcmp(PQgetvalue(res, i, 0), PQgetvalue(res, i - 1, 0)) != 0) {
            bookings = json_array();
            member = json_pack("{s:I, s:s, s:o}", "id", (json_int_t)atoll(PQgetvalue(res, i, 0)), "name",
                               PQgetvalue(res, i, 1), "bookings", bookings);
            if (member == NULL || json_array_append_new(staff, member) != 0) {
                json_decref(staff);
                return NULL;
            }
        }
        if (PQgetisnull(res, i, 2)) {
            continue;
        }
        booking = booking_p_calendar_booking(res, i);
        if (booking == NULL || json_array_append_new(bookings, booking) != 0) {
            json_decref(staff);
            return NULL;
        }
    }
    return staff;
}

void booking_route_p_calendar(booking_ctx *ctx)
{
    const char *date = NULL, *view, *include, *zone, *values[5];
    char from[16], to[16];
    json_t *staff, *body;
    PGresult *res;
    int week;

    if (booking_arg_date(ctx, "date", 1, &date) != 0) {
        return;
    }
    view = booking_arg(ctx, "view");
    if (view != NULL && strcmp(view, "day") != 0 && strcmp(view, "week") != 0) {
        booking_p_bad(ctx, "view", "view must be day or week");
        return;
    }
    include = booking_arg(ctx, "include");
    if (include != NULL && include[0] != '\0' && strcmp(include, "cancelled") != 0) {
        booking_p_bad(ctx, "include", "include takes cancelled");
        return;
    }
    if ((zone = booking_partner_zone(ctx, ctx->partner_id)) == NULL) {
        return;
    }
    week = view != NULL && strcmp(view, "week") == 0;
    booking_p_calendar_range(date, week, from, to, sizeof(from));
    values[0] = ctx->partner_id;
    values[1] = from;
    values[2] = to;
    values[3] = zone;
    values[4] = include != NULL && include[0] != '\0' ? "true" : "false";
    if ((res = booking_exec(ctx, BOOKING_P_CALENDAR_SQL, 5, values)) == NULL) {
        booking_reply_db_error(ctx);
        return;
    }
    staff = booking_p_calendar_staff(res);
    PQclear(res);
    body = staff ? json_pack("{s:s, s:s, s:s, s:s, s:o}", "from", from, "to", to, "view", week ? "week" : "day",
                             "time_zone", zone, "staff", staff)
                 : NULL;
    if (body == NULL) {
        booking_reply_error(ctx, 500, "internal", NULL, "out of memory");
        return;
    }
    booking_reply_json(ctx, 200, body);
}

/* -------------------------------------------------------------------------- staff, services, resources */

/* What differs between the three catalogues; the routes below are the same for each. */
typedef struct {
    const char *table;  /* "booking.staff" */
    const char *what;   /* "staff member", in 404 messages */
    const char *path;   /* "/account/staff", for Location */
    const char *list;   /* the list's member name */
    const char *render; /* the JSON of one row aliased s */
    const char *const *allowed;
    int (*read)(booking_ctx *ctx, json_t *body, booking_p_row *row, int creating);
    /* service_staff links: the body's member, the other table, this row's and the other's column (NULL: none) */
    const char *links_member, *links_table, *links_self, *links_other;
} booking_p_kind;

static int booking_p_read_staff(booking_ctx *ctx, json_t *body, booking_p_row *row, int creating)
{
    if (booking_p_read_text(ctx, body, row, "name", creating, 200, 0) != 0 ||
        booking_p_read_bool(ctx, body, row, "active") != 0) {
        return -1;
    }
    return 0;
}

static int booking_p_read_service(booking_ctx *ctx, json_t *body, booking_p_row *row, int creating)
{
    if (booking_p_read_text(ctx, body, row, "name", creating, 200, 0) != 0 ||
        booking_p_read_text(ctx, body, row, "category", 0, 100, 1) != 0 ||
        booking_p_read_text(ctx, body, row, "description", 0, 2000, 1) != 0 ||
        booking_p_read_int(ctx, body, row, "duration_minutes", creating, 5, 720) != 0 ||
        booking_p_read_int(ctx, body, row, "price_cents", creating, 0, BOOKING_P_PRICE_MAX) != 0 ||
        booking_p_read_currency(ctx, body, row) != 0 ||
        booking_p_read_int(ctx, body, row, "buffer_before_minutes", 0, 0, 240) != 0 ||
        booking_p_read_int(ctx, body, row, "buffer_after_minutes", 0, 0, 240) != 0 ||
        booking_p_read_kind(ctx, body, row, "resource_kind", 0, 1) != 0 ||
        booking_p_read_bool(ctx, body, row, "active") != 0) {
        return -1;
    }
    return 0;
}

static int booking_p_read_resource(booking_ctx *ctx, json_t *body, booking_p_row *row, int creating)
{
    if (booking_p_read_text(ctx, body, row, "name", creating, 200, 0) != 0 ||
        booking_p_read_kind(ctx, body, row, "kind", creating, 0) != 0 ||
        booking_p_read_bool(ctx, body, row, "active") != 0) {
        return -1;
    }
    return 0;
}

static const char *const booking_p_staff_members[] = {"name", "active", "services", NULL};
static const char *const booking_p_service_members[] = {"name",
                                                        "category",
                                                        "description",
                                                        "duration_minutes",
                                                        "price_cents",
                                                        "currency",
                                                        "buffer_before_minutes",
                                                        "buffer_after_minutes",
                                                        "resource_kind",
                                                        "active",
                                                        "staff",
                                                        NULL};
static const char *const booking_p_resource_members[] = {"name", "kind", "active", NULL};

static const booking_p_kind booking_p_staff_kind = {
    .table = "booking.staff",
    .what = "staff member",
    .path = "/account/staff",
    .list = "staff",
    .render = BOOKING_P_STAFF_JSON,
    .allowed = booking_p_staff_members,
    .read = booking_p_read_staff,
    .links_member = "services",
    .links_table = "booking.services",
    .links_self = "staff_id",
    .links_other = "service_id",
};

static const booking_p_kind booking_p_service_kind = {
    .table = "booking.services",
    .what = "service",
    .path = "/account/services",
    .list = "services",
    .render = BOOKING_P_SERVICE_JSON,
    .allowed = booking_p_service_members,
    .read = booking_p_read_service,
    .links_member = "staff",
    .links_table = "booking.staff",
    .links_self = "service_id",
    .links_other = "staff_id",
};

static const booking_p_kind booking_p_resource_kind = {
    .table = "booking.resources",
    .what = "resource",
    .path = "/account/resources",
    .list = "resources",
    .render = BOOKING_P_RESOURCE_JSON,
    .allowed = booking_p_resource_members,
    .read = booking_p_read_resource,
};

static const char *booking_p_one_sql(booking_ctx *ctx, const booking_p_kind *kind)
{
    return booking_printf(ctx, "SELECT %s::text FROM %s s WHERE s.id = $1 AND s.partner_id = $2", kind->render,
                          kind->table);
}

static void booking_p_list(booking_ctx *ctx, const booking_p_kind *kind)
{
    const char *values[1] = {ctx->partner_id};
    const char *sql = booking_printf(ctx,
                                     "SELECT json_build_object('%s', coalesce(json_agg(%s ORDER BY s.active DESC, "
                                     "lower(s.name), s.id), '[]'))::text FROM %s s WHERE s.partner_id = $1",
                                     kind->list, kind->render, kind->table);

    booking_p_reply_query(ctx, "partner", sql, 1, values);
}

/* Replaces the row's service_staff links, in the caller's transaction. */
static int booking_p_replace_links(booking_ctx *ctx, const booking_p_kind *kind, const char *id, const char *ids)
{
    const char *values[2] = {id, ids};
    const char *sql = booking_printf(ctx, "DELETE FROM booking.service_staff WHERE %s = $1", kind->links_self);

    if (booking_p_run(ctx, sql, 1, values) < 0) {
        return -1;
    }
    sql = booking_printf(ctx,
                         "INSERT INTO booking.service_staff (%s, %s) SELECT DISTINCT $1::bigint, u "
                         "FROM unnest($2::bigint[]) AS u",
                         kind->links_self, kind->links_other);
    return booking_p_run(ctx, sql, 2, values) < 0 ? -1 : 0;
}

/* Reads and checks a POST or PUT body: row gets the columns, *links the id list (NULL when absent). */
static int booking_p_read_body(booking_ctx *ctx, const booking_p_kind *kind, int creating, booking_p_row *row,
                               const char **links)
{
    json_t *body = booking_p_body(ctx, kind->allowed);
    int rc;

    *links = NULL;
    if (body == NULL) {
        return -1;
    }
    rc = kind->read(ctx, body, row, creating);
    if (rc == 0 && kind->links_member != NULL) {
        rc = booking_p_read_ids(ctx, body, kind->links_member, links);
    }
    json_decref(body);
    if (rc == 0 && *links != NULL) {
        rc = booking_p_check_ids(ctx, kind->links_member, kind->links_table, *links);
    }
    return rc;
}

/* A new service is priced in the partner's currency unless the body says otherwise. */
static int booking_p_default_currency(booking_ctx *ctx, booking_p_row *row)
{
    const char *values[1] = {ctx->partner_id};
    PGresult *res;
    int i;

    for (i = 0; i < row->count; i++) {
        if (strcmp(row->columns[i], "currency") == 0) {
            return 0;
        }
    }
    if ((res = booking_exec(ctx, "SELECT currency FROM booking.partners WHERE id = $1", 1, values)) == NULL) {
        booking_reply_db_error(ctx);
        return -1;
    }
    if (PQntuples(res) == 1) {
        booking_p_row_add(row, "currency", "", booking_strdup(ctx, PQgetvalue(res, 0, 0)));
    }
    PQclear(res);
    return 0;
}

static void booking_p_create(booking_ctx *ctx, const booking_p_kind *kind)
{
    booking_p_row row = {0};
    const char *links, *keys[2] = {NULL, ctx->partner_id}, *sql;
    PGresult *res;

    if (booking_p_read_body(ctx, kind, 1, &row, &links) != 0) {
        return;
    }
    if (kind == &booking_p_service_kind && booking_p_default_currency(ctx, &row) != 0) {
        return;
    }
    if (booking_begin(ctx) != 0) {
        booking_reply_db_error(ctx);
        return;
    }
    sql = booking_p_row_insert_sql(ctx, &row, kind->table);
    res = booking_exec(ctx, sql, 1 + row.count, booking_p_row_params(ctx, &row, keys + 1, 1));
    if (res == NULL) {
        booking_reply_db_error(ctx);
        return;
    }
    keys[0] = booking_strdup(ctx, PQgetvalue(res, 0, 0));
    PQclear(res);
    if (links != NULL && booking_p_replace_links(ctx, kind, keys[0], links) != 0) {
        return;
    }
    booking_p_render_commit(ctx, 201, kind->what, booking_p_one_sql(ctx, kind), 2, keys, kind->path);
}

/* Locks the partner's row for the rest of the transaction: 1 when it is there, 0 after 404, -1 after 503. */
static int booking_p_lock(booking_ctx *ctx, const booking_p_kind *kind, const char *const *keys)
{
    const char *sql = booking_printf(ctx, "SELECT 1 FROM %s WHERE id = $1 AND partner_id = $2 FOR UPDATE", kind->table);
    long rows = booking_p_run(ctx, sql, 2, keys);

    if (rows == 0) {
        booking_p_not_found(ctx, kind->what);
    }
    return rows < 0 ? -1 : rows > 0;
}

static void booking_p_update(booking_ctx *ctx, const booking_p_kind *kind, const char *id)
{
    booking_p_row row = {0};
    const char *links, *keys[2] = {id, ctx->partner_id}, *sql;

    if (booking_p_read_body(ctx, kind, 0, &row, &links) != 0) {
        return;
    }
    if (booking_begin(ctx) != 0) {
        booking_reply_db_error(ctx);
        return;
    }
    if (booking_p_lock(ctx, kind, keys) != 1) {
        return;
    }
    sql = booking_p_row_update_sql(ctx, &row, kind->table, "id = $1 AND partner_id = $2", 2);
    if (sql != NULL && booking_p_run(ctx, sql, 2 + row.count, booking_p_row_params(ctx, &row, keys, 2)) < 0) {
        return;
    }
    if (links != NULL && booking_p_replace_links(ctx, kind, id, links) != 0) {
        return;
    }
    booking_p_render_commit(ctx, 200, kind->what, booking_p_one_sql(ctx, kind), 2, keys, NULL);
}

/* DELETE keeps the row (bookings refer to it, reports count it) and takes it out of what can be booked. */
static void booking_p_deactivate(booking_ctx *ctx, const booking_p_kind *kind, const char *id)
{
    const char *values[2] = {id, ctx->partner_id};
    const char *sql =
        booking_printf(ctx, "UPDATE %s SET active = false WHERE id = $1 AND partner_id = $2", kind->table);
    long rows = booking_p_run(ctx, sql, 2, values);

    if (rows == 0) {
        booking_p_not_found(ctx, kind->what);
    } else if (rows > 0) {
        booking_reply_json(ctx, 204, NULL);
    }
}

static void booking_p_one(booking_ctx *ctx, const booking_p_kind *kind)
{
    const char *id = booking_p_path_id(ctx, 0, kind->what), *keys[2] = {id, ctx->partner_id};

    if (id == NULL) {
        return;
    }
    if (booking_p_is_get(ctx)) {
        booking_p_reply_query(ctx, kind->what, booking_p_one_sql(ctx, kind), 2, keys);
    } else if (booking_p_is(ctx, "PUT")) {
        booking_p_update(ctx, kind, id);
    } else {
        booking_p_deactivate(ctx, kind, id);
    }
}

static void booking_p_collection(booking_ctx *ctx, const booking_p_kind *kind)
{
    if (booking_p_is_get(ctx)) {
        booking_p_list(ctx, kind);
    } else {
        booking_p_create(ctx, kind);
    }
}

void booking_route_p_staff_list(booking_ctx *ctx)
{
    booking_p_collection(ctx, &booking_p_staff_kind);
}

void booking_route_p_staff_one(booking_ctx *ctx)
{
    booking_p_one(ctx, &booking_p_staff_kind);
}

void booking_route_p_services(booking_ctx *ctx)
{
    booking_p_collection(ctx, &booking_p_service_kind);
}

void booking_route_p_service_one(booking_ctx *ctx)
{
    booking_p_one(ctx, &booking_p_service_kind);
}

void booking_route_p_resources(booking_ctx *ctx)
{
    booking_p_collection(ctx, &booking_p_resource_kind);
}

void booking_route_p_resource_one(booking_ctx *ctx)
{
    booking_p_one(ctx, &booking_p_resource_kind);
}

/* ------------------------------------------------------------------------------------- working plans */

static const booking_p_period_names booking_p_plan_hours = {"hours", "starts", "ends"};
static const booking_p_period_names booking_p_plan_breaks = {"breaks", "starts", "ends"};

#define BOOKING_P_PLAN_HOURS_JSON  BOOKING_P_PERIODS_JSON("booking.staff_hours", "starts", "ends", "h.staff_id = s.id")
#define BOOKING_P_PLAN_BREAKS_JSON BOOKING_P_PERIODS_JSON("booking.staff_breaks", "starts", "ends", "h.staff_id = s.id")
#define BOOKING_P_PLAN_SQL                                                                                             \
    "SELECT json_build_object('hours', " BOOKING_P_PLAN_HOURS_JSON ", 'breaks', " BOOKING_P_PLAN_BREAKS_JSON           \
    ")::text FROM booking.staff s WHERE s.id = $1 AND s.partner_id = $2"

/* A break is time off inside a working period: one outside any would mean nothing, and is most likely a typo. */
static int booking_p_check_breaks(booking_ctx *ctx, const booking_p_period *hours, size_t nhours,
                                  const booking_p_period *breaks, size_t nbreaks)
{
    size_t i, j;

    for (i = 0; i < nbreaks; i++) {
        for (j = 0; j < nhours; j++) {
            if (hours[j].weekday == breaks[i].weekday && hours[j].from_min <= breaks[i].from_min &&
                breaks[i].to_min <= hours[j].to_min) {
                break;
            }
        }
        if (j == nhours) {
            return booking_p_bad(ctx, booking_printf(ctx, "breaks[%zu]", i),
                                 "breaks[%zu] is not inside a working period of weekday %lld", i, breaks[i].weekday);
        }
    }
    return 0;
}

static int booking_p_read_plan(booking_ctx *ctx, booking_p_period **hours, size_t *nhours, booking_p_period **breaks,
                               size_t *nbreaks)
{
    static const char *const allowed[] = {"hours", "breaks", NULL};
    json_t *body = booking_p_body(ctx, allowed);
    int rc;

    if (body == NULL) {
        return -1;
    }
    rc = booking_p_read_periods(ctx, body, &booking_p_plan_hours, 1, hours, nhours);
    if (rc == 0) {
        rc = booking_p_read_periods(ctx, body, &booking_p_plan_breaks, 0, breaks, nbreaks);
    }
    json_decref(body);
    if (rc == 0) {
        rc = booking_p_check_breaks(ctx, *hours, *nhours, *breaks, *nbreaks);
    }
    return rc;
}

void booking_route_p_staff_plan(booking_ctx *ctx)
{
    const char *id = booking_p_path_id(ctx, 0, "staff member"), *keys[2] = {id, ctx->partner_id};
    booking_p_period *hours, *breaks;
    size_t nhours, nbreaks;

    if (id == NULL) {
        return;
    }
    if (booking_p_is_get(ctx)) {
        booking_p_reply_query(ctx, "staff member", BOOKING_P_PLAN_SQL, 2, keys);
        return;
    }
    if (booking_p_read_plan(ctx, &hours, &nhours, &breaks, &nbreaks) != 0) {
        return;
    }
    if (booking_begin(ctx) != 0) {
        booking_reply_db_error(ctx);
        return;
    }
    if (booking_p_lock(ctx, &booking_p_staff_kind, keys) != 1 ||
        booking_p_replace_periods(ctx, "booking.staff_hours", "staff_id", id, &booking_p_plan_hours, hours, nhours) !=
            0 ||
        booking_p_replace_periods(ctx, "booking.staff_breaks", "staff_id", id, &booking_p_plan_breaks, breaks,
                                  nbreaks) != 0) {
        return;
    }
    booking_p_render_commit(ctx, 200, "staff member", BOOKING_P_PLAN_SQL, 2, keys, NULL);
}

/* ------------------------------------------------------------------------------------- staff absences */

static void booking_p_absence_create(booking_ctx *ctx, const char *staff_id)
{
    const char *values[6];
    booking_p_day day;
    json_t *body = booking_body_json(ctx), *object;
    int rc;

    if (body == NULL) {
        return;
    }
    rc = booking_p_read_day(ctx, body, "starts", "ends", &day);
    json_decref(body);
    if (rc != 0) {
        return;
    }
    values[0] = staff_id;
    values[1] = ctx->partner_id;
    values[2] = day.day;
    values[3] = day.from;
    values[4] = day.to;
    values[5] = day.note;
    /* One statement: the staff member is the partner's or nothing is inserted. */
    rc = booking_p_fetch_json(ctx,
                              "INSERT INTO booking.staff_exceptions (staff_id, day, starts, ends, note) "
                              "SELECT s.id, $3::date, $4::time, $5::time, $6 FROM booking.staff s "
                              "WHERE s.id = $1 AND s.partner_id = $2 RETURNING " BOOKING_P_ABSENCE_JSON "::text",
                              6, values, &object);
    if (rc == 0) {
        booking_p_not_found(ctx, "staff member");
    } else if (rc == 1) {
        booking_p_commit_reply(ctx, 201, object, booking_printf(ctx, "/account/staff/%s/exceptions", staff_id));
    }
}

void booking_route_p_staff_exceptions(booking_ctx *ctx)
{
    const char *id = booking_p_path_id(ctx, 0, "staff member");
    const char *values[4] = {id, ctx->partner_id, NULL, NULL};

    if (id == NULL) {
        return;
    }
    if (!booking_p_is_get(ctx)) {
        booking_p_absence_create(ctx, id);
        return;
    }
    if (booking_p_read_range(ctx, &values[2], &values[3]) != 0) {
        return;
    }
    booking_p_reply_query(ctx, "staff member",
                          "SELECT json_build_object('exceptions', coalesce((SELECT json_agg(" BOOKING_P_ABSENCE_JSON
                          " ORDER BY day, starts NULLS FIRST, id) FROM booking.staff_exceptions "
                          "WHERE staff_id = s.id AND ($3::date IS NULL OR day >= $3::date) "
                          "AND ($4::date IS NULL OR day <= $4::date)), '[]'))::text "
                          "FROM booking.staff s WHERE s.id = $1 AND s.partner_id = $2",
                          4, values);
}

void booking_route_p_staff_exception_delete(booking_ctx *ctx)
{
    const char *values[3] = {NULL, NULL, ctx->partner_id};
    long rows;

    if ((values[1] = booking_p_path_id(ctx, 0, "staff member")) == NULL ||
        (values[0] = booking_p_path_id(ctx, 1, "exception")) == NULL) {
        return;
    }
    rows = booking_p_run(ctx,
                         "DELETE FROM booking.staff_exceptions e USING booking.staff s "
                         "WHERE e.id = $1 AND e.staff_id = $2 AND s.id = e.staff_id AND s.partner_id = $3",
                         3, values);
    if (rows == 0) {
        booking_p_not_found(ctx, "exception");
    } else if (rows > 0) {
        booking_reply_json(ctx, 204, NULL);
    }
}

/* ------------------------------------------------------------------------------------- booking status */

static int booking_p_read_status(booking_ctx *ctx, const char **status)
{
    static const char *const allowed[] = {"status", NULL};
    static const char *const statuses[] = {"confirmed", "cancelled", "completed", "no_show"};
    json_t *body = booking_p_body(ctx, allowed);
    size_t i;
    int rc;

    *status = NULL;
    if (body == NULL) {
        return -1;
    }
    rc = booking_get_string(ctx, body, "status", 1, 16, status);
    json_decref(body);
    if (rc != 0) {
        return -1;
    }
    for (i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++) {
        if (strcmp(*status, statuses[i]) == 0) {
            return 0;
        }
    }
    return booking_p_bad(ctx, "status", "status must be confirmed, cancelled, completed or no_show");
}

/* The customer hears of what changes for them: a cancellation, or a cancelled booking restored (which also puts its
 * reminder back). Marking a visit completed or missed tells them nothing. */
static const char *booking_p_status_notice(const char *from, const char *to)
{
    if (strcmp(to, "cancelled") == 0) {
        return "booking.cancelled";
    }
    if (strcmp(from, "cancelled") == 0 && strcmp(to, "confirmed") == 0) {
        return "booking.confirmed";
    }
    return NULL;
}

/* In the open transaction, after the row is locked: writes the status and the customer's notice with it. */
static int booking_p_write_status(booking_ctx *ctx, const char *id, long long booking_id, const char *from,
                                  const char *to)
{
    const char *values[2] = {id, to}, *notice = booking_p_status_notice(from, to);

    /* Restoring a cancelled booking into a slot taken since trips the exclusion constraint: 409 slot_taken. */
    if (booking_p_run(ctx,
                      "UPDATE booking.bookings SET status = $2, updated_at = now(), "
                      "cancelled_at = CASE WHEN $2 = 'cancelled' THEN now() END WHERE id = $1",
                      2, values) < 0) {
        return -1;
    }
    if (notice != NULL && booking_outbox_enqueue(ctx, booking_id, notice) != 0) {
        booking_reply_db_error(ctx);
        return -1;
    }
    return 0;
}

void booking_route_p_booking_status(booking_ctx *ctx)
{
    const char *id = booking_p_path_id(ctx, 0, "booking"), *status, *from, *values[3];
    PGresult *res;
    int started;

    if (id == NULL || booking_p_read_status(ctx, &status) != 0) {
        return;
    }
    if (booking_begin(ctx) != 0) {
        booking_reply_db_error(ctx);
        return;
    }
    values[0] = id;
    values[1] = ctx->partner_id;
    values[2] = booking_printf(ctx, "%lld", (long long)ctx->req->now);
    res = booking_exec(ctx,
                       "SELECT status, starts_at <= to_timestamp($3::bigint) FROM booking.bookings "
                       "WHERE id = $1 AND partner_id = $2 FOR UPDATE",
                       3, values);
    if (res == NULL) {
        booking_reply_db_error(ctx);
        return;
    }
    if (PQntuples(res) == 0) {
        PQclear(res);
        booking_p_not_found(ctx, "booking");
        return;
    }
    from = booking_strdup(ctx, PQgetvalue(res, 0, 0));
    started = PQgetvalue(res, 0, 1)[0] == 't';
    PQclear(res);
    if ((strcmp(status, "completed") == 0 || strcmp(status, "no_show") == 0) && !started) {
        booking_reply_error(ctx, 409, "not_started", "status", "a booking is %s only once it has started", status);
        return;
    }
    if (strcmp(from, status) != 0 && booking_p_write_status(ctx, id, atoll(id), from, status) != 0) {
        return;
    }
    booking_p_commit_reply(
        ctx, 200, json_pack("{s:I, s:s, s:s}", "id", (json_int_t)atoll(id), "status", status, "previous_status", from),
        NULL);
}
