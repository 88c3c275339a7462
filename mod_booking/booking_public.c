/* The public routes: the partner directory, a partner's services, booking a slot, and the customer's view, cancel
 * and reschedule behind the manage token.
 *
 * A booking is checked against the availability engine first (so the customer gets "slot_unavailable" for anything
 * the calendar would not offer: closures, breaks, minimum notice) and then written in one transaction whose
 * exclusion constraints settle races between nodes: of two requests for the same staff member or resource at
 * overlapping times only one commits, the other gets 409 "slot_taken". The manage token is only ever stored as its
 * SHA-256, computed by PostgreSQL in the same query that looks the booking up, so a wrong token and an unknown id
 * are the same 404. */
#include "booking_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"

#define BOOKING_TOKEN_BYTES    32  /* 256 bits from the CSPRNG */
#define BOOKING_TOKEN_MAX      128 /* bytes of a token worth hashing: ours are 43 */
#define BOOKING_CITY_MAX       100 /* characters, as the partners table */
#define BOOKING_SEARCH_MAX     200 /* characters, as a service name */
#define BOOKING_CUSTOMER_MAX   200 /* characters of a customer's name */
#define BOOKING_NOTES_MAX      1000
#define BOOKING_ID_MAX         9007199254740991LL /* 2^53 - 1: ids JavaScript reads exactly */
#define BOOKING_LOCAL_TIME_LEN 32

static const char *const booking_order_members[] = {"partner", "service", "staff", "start", "customer", "notes", NULL};
static const char *const booking_customer_members[] = {"name", "email", "phone", NULL};
static const char *const booking_reschedule_members[] = {"start", "staff", NULL};

/* ---------------------------------------------------------------------------------------------- helpers */

static long long booking_value_ll(const PGresult *res, int row, int col)
{
    return strtoll(PQgetvalue(res, row, col), NULL, 10);
}

/* JSON text PostgreSQL built (jsonb columns, json_agg), or the fallback when it does not parse. */
static json_t *booking_json_from_text(const char *text, json_t *fallback)
{
    json_t *value = json_loads(text, 0, NULL);

    if (value == NULL) {
        return fallback;
    }
    json_decref(fallback);
    return value;
}

static void booking_reply_oom(booking_ctx *ctx)
{
    booking_reply_error(ctx, 500, "internal", NULL, "out of memory");
}

static void booking_reply_not_found(booking_ctx *ctx)
{
    booking_reply_error(ctx, 404, "not_found", NULL, "no such booking, or a wrong manage token");
}

/* A query parameter used as a filter: trimmed, no control characters, at most max_len characters; NULL when absent
 * or empty. *failed after replying 400. */
static const char *booking_arg_filter(booking_ctx *ctx, const char *name, size_t max_len, int *failed)
{
    const char *raw = booking_arg(ctx, name), *value = NULL;
    json_t *holder;

    *failed = 0;
    if (raw == NULL) {
        return NULL;
    }
    /* Through the JSON members' rules, so that parameters and bodies cannot drift apart; json_string refuses what
     * is not UTF-8. */
    holder = json_pack("{s:s}", name, raw);
    if (holder == NULL) {
        *failed = 1;
        booking_reply_error(ctx, 400, "invalid", name, "must be UTF-8 text");
        return NULL;
    }
    if (booking_get_string(ctx, holder, name, 0, max_len, &value) != 0) {
        *failed = 1;
    }
    json_decref(holder);
    return value != NULL && value[0] != '\0' ? value : NULL;
}

/* A route's {id} capture of a booking: positive decimal below 2^53, or NULL (the caller answers 404). */
static const char *booking_param_id(booking_ctx *ctx, long long *id)
{
    const char *s = ctx->params[0];
    char *end;
    long long v;

    if (s == NULL || s[0] < '1' || s[0] > '9' || strlen(s) > 16) {
        return NULL;
    }
    v = strtoll(s, &end, 10);
    if (*end != '\0' || v < 1 || v > BOOKING_ID_MAX) {
        return NULL;
    }
    *id = v;
    return s;
}

/* The customer's manage token: the X-Booking-Token header, else ?token=. NULL when absent or implausible. */
static const char *booking_manage_token(booking_ctx *ctx)
{
    const char *token = ctx->req->token;

    if (token == NULL || token[0] == '\0') {
        token = booking_arg(ctx, "token");
    }
    if (token == NULL || token[0] == '\0' || strlen(token) > BOOKING_TOKEN_MAX) {
        return NULL;
    }
    return token;
}

/* ------------------------------------------------------------------------------------------- partners */

static const char booking_partners_sql[] =
    "SELECT p.id, p.name, p.city, p.address, COALESCE(p.time_zone, $4), p.branding::text, p.currency "
    "  FROM booking.partners p "
    " WHERE p.active "
    "   AND ($1::text IS NULL OR lower(p.city) = lower($1)) "
    "   AND ($2::text IS NULL OR EXISTS (SELECT 1 FROM booking.services s "
    "                                     WHERE s.partner_id = p.id AND s.active "
    "                                       AND s.name ILIKE '%' || $2 || '%' ESCAPE '\\')) "
    "   AND ($3::text IS NULL OR p.id = $3) "
    " ORDER BY lower(p.name), p.id";

static const char booking_partner_sql[] =
    "SELECT p.id, p.name, p.city, p.address, COALESCE(p.time_zone, $2), p.branding::text, p.currency, "
    "       p.phone, p.email, p.cancel_deadline_minutes, p.min_notice_minutes, p.slot_step_minutes, p.horizon_days "
    "  FROM booking.partners p WHERE p.id = $1 AND p.active";

/* The service filter as an ILIKE pattern that matches it literally (%, _ and \ escaped). */
static const char *booking_like_pattern(booking_ctx *ctx, const char *s)
{
    char *out = booking_alloc(ctx, 2 * strlen(s) + 1), *p = out;

    for (; *s != '\0'; s++) {
        if (*s == '%' || *s == '_' || *s == '\\') {
            *p++ = '\\';
        }
        *p++ = *s;
    }
    *p = '\0';
    return out;
}

/* The columns both partner queries start with. */
static json_t *booking_partner_json(const PGresult *res, int row)
{
    json_t *partner =
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "id", PQgetvalue(res, row, 0), "name", PQgetvalue(res, row, 1),
                  "city", PQgetvalue(res, row, 2), "address", PQgetvalue(res, row, 3), "time_zone",
                  PQgetvalue(res, row, 4), "currency", PQgetvalue(res, row, 6));

    if (partner == NULL) {
        return NULL;
    }
    if (json_object_set_new(partner, "branding", booking_json_from_text(PQgetvalue(res, row, 5), json_object())) != 0) {
        json_decref(partner);
        return NULL;
    }
    return partner;
}

void booking_route_partners(booking_ctx *ctx)
{
    const char *city, *service, *params[4];
    int failed, i;
    json_t *list, *body;
    PGresult *res;

    city = booking_arg_filter(ctx, "city", BOOKING_CITY_MAX, &failed);
    if (failed) {
        return;
    }
    service = booking_arg_filter(ctx, "service", BOOKING_SEARCH_MAX, &failed);
    if (failed) {
        return;
    }
    params[0] = city;
    params[1] = service ? booking_like_pattern(ctx, service) : NULL;
    params[2] = ctx->partner_id;
    params[3] = ctx->config->time_zone;
    res = booking_exec(ctx, booking_partners_sql, 4, params);
    if (res == NULL) {
        booking_reply_db_error(ctx);
        return;
    }
    list = json_array();
    for (i = 0; list != NULL && i < PQntuples(res); i++) {
        if (json_array_append_new(list, booking_partner_json(res, i)) != 0) {
            json_decref(list);
            list = NULL;
        }
    }
    PQclear(res);
    body = list ? json_pack("{s:o}", "partners", list) : NULL;
    if (body == NULL) {
        booking_reply_oom(ctx);
        return;
    }
    booking_reply_json(ctx, 200, body);
}

/* The {id} capture names a partner this host may show. 0, or -1 after replying 404. */
static int booking_check_partner_param(booking_ctx *ctx)
{
    const char *id = ctx->params[0];

    if (id == NULL || !booking_valid_partner_id(id) || (ctx->partner_id && strcmp(ctx->partner_id, id) != 0)) {
        booking_reply_error(ctx, 404, "not_found", NULL, "no such partner");
        return -1;
    }
    return 0;
}

void booking_route_partner(booking_ctx *ctx)
{
    const char *params[2];
    PGresult *res;
    json_t *partner;

    if (booking_check_partner_param(ctx) != 0) {
        return;
    }
    params[0] = ctx->params[0];
    params[1] = ctx->config->time_zone;
    res = booking_exec(ctx, booking_partner_sql, 2, params);
    if (res == NULL) {
        booking_reply_db_error(ctx);
        return;
    }
    if (PQntuples(res) == 0) {
        PQclear(res);
        booking_reply_error(ctx, 404, "not_found", NULL, "no such partner");
        return;
    }
    partner = booking_partner_json(res, 0);
    if (partner != NULL &&
        (json_object_set_new(partner, "phone", json_string(PQgetvalue(res, 0, 7))) != 0 ||
         json_object_set_new(partner, "email", json_string(PQgetvalue(res, 0, 8))) != 0 ||
         json_object_set_new(partner, "cancel_deadline_minutes", json_integer(booking_value_ll(res, 0, 9))) != 0 ||
         json_object_set_new(partner, "min_notice_minutes", json_integer(booking_value_ll(res, 0, 10))) != 0 ||
         json_object_set_new(partner, "slot_step_minutes", json_integer(booking_value_ll(res, 0, 11))) != 0 ||
         json_object_set_new(partner, "horizon_days", json_integer(booking_value_ll(res, 0, 12))) != 0)) {
        json_decref(partner);
        partner = NULL;
    }
    PQclear(res);
    if (partner == NULL) {
        booking_reply_oom(ctx);
        return;
    }
    booking_reply_json(ctx, 200, partner);
}

/* One row per active service (none: the partner has no service yet), the active staff who perform it as JSON. */
static const char booking_services_sql[] =
    "SELECT s.id, s.name, s.category, s.description, s.duration_minutes, s.price_cents, s.currency, "
    "       COALESCE((SELECT json_agg(json_build_object('id', st.id, 'name', st.name) ORDER BY st.name, st.id) "
    "                   FROM booking.service_staff ss JOIN booking.staff st ON st.id = ss.staff_id "
    "                  WHERE ss.service_id = s.id AND st.active), '[]')::text "
    "  FROM booking.partners p "
    "  LEFT JOIN booking.services s ON s.partner_id = p.id AND s.active "
    " WHERE p.id = $1 AND p.active "
    " ORDER BY s.category, s.name, s.id";

static json_t *booking_service_json(const PGresult *res, int row)
{
    json_t *service =
        json_pack("{s:I, s:s, s:s, s:s, s:I, s:I, s:s}", "id", (json_int_t)booking_value_ll(res, row, 0), "name",
                  PQgetvalue(res, row, 1), "category", PQgetvalue(res, row, 2), "description", PQgetvalue(res, row, 3),
                  "duration_minutes", (json_int_t)booking_value_ll(res, row, 4), "price_cents",
                  (json_int_t)booking_value_ll(res, row, 5), "currency", PQgetvalue(res, row, 6));

    if (service != NULL &&
        json_object_set_new(service, "staff", booking_json_from_text(PQgetvalue(res, row, 7), json_array())) != 0) {
        json_decref(service);
        return NULL;
    }
    return service;
}

void booking_route_services(booking_ctx *ctx)
{
    const char *params[1];
    PGresult *res;
    json_t *list, *body;
    int i;

    if (booking_check_partner_param(ctx) != 0) {
        return;
    }
    params[0] = ctx->params[0];
    res = booking_exec(ctx, booking_services_sql, 1, params);
    if (res == NULL) {
        booking_reply_db_error(ctx);
        return;
    }
    if (PQntuples(res) == 0) {
        PQclear(res);
        booking_reply_error(ctx, 404, "not_found", NULL, "no such partner");
        return;
    }
    list = json_array();
    for (i = 0; list != NULL && i < PQntuples(res); i++) {
        if (PQgetisnull(res, i, 0)) {
            continue;
        }
        if (json_array_append_new(list, booking_service_json(res, i)) != 0) {
            json_decref(list);
            list = NULL;
        }
    }
    PQclear(res);
    body = list ? json_pack("{s:o}", "services", list) : NULL;
    if (body == NULL) {
        booking_reply_oom(ctx);
        return;
    }
    booking_reply_json(ctx, 200, body);
}

/* -------------------------------------------------------------------------------------- a booking's view */

/* Everything the customer sees of a booking; offsets are the partner zone's at each instant, so that times read as
 * the salon's clock on both sides of a DST change. $2 is the zone of partners without their own; $3 the manage
 * token (NULL: not checked, for a booking this request has just written); $4 the host's partner (NULL: any). */
static const char booking_view_sql[] =
    "SELECT b.id, b.status, b.partner_id, s.id, s.name, st.id, st.name, "
    "       extract(epoch FROM b.starts_at)::bigint, extract(epoch FROM b.ends_at)::bigint, z.zone, "
    "       extract(epoch FROM (b.starts_at AT TIME ZONE z.zone) - (b.starts_at AT TIME ZONE 'UTC'))::int, "
    "       extract(epoch FROM (b.ends_at AT TIME ZONE z.zone) - (b.ends_at AT TIME ZONE 'UTC'))::int, "
    "       extract(epoch FROM b.starts_at)::bigint - p.cancel_deadline_minutes * 60, "
    "       extract(epoch FROM (b.starts_at - make_interval(mins => p.cancel_deadline_minutes)) AT TIME ZONE z.zone "
    "                        - (b.starts_at - make_interval(mins => p.cancel_deadline_minutes)) AT TIME ZONE "
    "'UTC')::int, "
    "       b.price_cents, b.currency, c.name, c.email, c.phone, b.notes, p.name "
    "  FROM booking.bookings b "
    "  JOIN booking.partners p ON p.id = b.partner_id "
    "  JOIN booking.services s ON s.id = b.service_id "
    "  JOIN booking.staff st ON st.id = b.staff_id "
    "  JOIN booking.customers c ON c.id = b.customer_id "
    " CROSS JOIN LATERAL (SELECT COALESCE(p.time_zone, $2) AS zone) z "
    " WHERE b.id = $1 "
    "   AND ($3::text IS NULL OR b.manage_token_hash = sha256(convert_to($3, 'UTF8'))) "
    "   AND ($4::text IS NULL OR b.partner_id = $4)";

static json_t *booking_local_time(const PGresult *res, int row, int epoch_col, int offset_col)
{
    char text[BOOKING_LOCAL_TIME_LEN];

    booking_format_local(booking_value_ll(res, row, epoch_col), (int)booking_value_ll(res, row, offset_col), text);
    return json_string(text);
}

static json_t *booking_view_json(booking_ctx *ctx, const PGresult *res)
{
    const char *id = PQgetvalue(res, 0, 0);
    json_t *view =
        json_pack("{s:I, s:s, s:s, s:s, s:{s:I, s:s}, s:{s:I, s:s}, s:o, s:o, s:s, s:I, s:s, s:o, s:s, "
                  "s:{s:s, s:s, s:s}, s:s}",
                  "id", (json_int_t)booking_value_ll(res, 0, 0), "status", PQgetvalue(res, 0, 1), "partner",
                  PQgetvalue(res, 0, 2), "partner_name", PQgetvalue(res, 0, 20), "service", "id",
                  (json_int_t)booking_value_ll(res, 0, 3), "name", PQgetvalue(res, 0, 4), "staff", "id",
                  (json_int_t)booking_value_ll(res, 0, 5), "name", PQgetvalue(res, 0, 6), "start",
                  booking_local_time(res, 0, 7, 10), "end", booking_local_time(res, 0, 8, 11), "time_zone",
                  PQgetvalue(res, 0, 9), "price_cents", (json_int_t)booking_value_ll(res, 0, 14), "currency",
                  PQgetvalue(res, 0, 15), "cancel_before", booking_local_time(res, 0, 12, 13), "manage_url",
                  booking_printf(ctx, "%s/bookings/%s", ctx->base, id), "customer", "name", PQgetvalue(res, 0, 16),
                  "email", PQgetvalue(res, 0, 17), "phone", PQgetvalue(res, 0, 18), "notes", PQgetvalue(res, 0, 19));

    return view;
}

/* The booking as JSON, or NULL after replying (404 when token or host do not match). */
static json_t *booking_view_load(booking_ctx *ctx, const char *id, const char *token)
{
    const char *params[4] = {id, ctx->config->time_zone, token, ctx->partner_id};
    PGresult *res = booking_exec(ctx, booking_view_sql, 4, params);
    json_t *view;

    if (res == NULL) {
        booking_reply_db_error(ctx);
        return NULL;
    }
    if (PQntuples(res) == 0) {
        PQclear(res);
        booking_reply_not_found(ctx);
        return NULL;
    }
    view = booking_view_json(ctx, res);
    PQclear(res);
    if (view == NULL) {
        booking_reply_oom(ctx);
    }
    return view;
}

void booking_route_booking_view(booking_ctx *ctx)
{
    long long id;
    const char *id_text = booking_param_id(ctx, &id), *token = booking_manage_token(ctx);
    json_t *view;

    if (id_text == NULL || token == NULL) {
        booking_reply_not_found(ctx);
        return;
    }
    view = booking_view_load(ctx, id_text, token);
    if (view != NULL) {
        booking_reply_json(ctx, 200, view);
    }
}

/* --------------------------------------------------------------------------------------- finding a slot */

typedef struct {
    long long start;    /* the requested start, UTC epoch */
    long long staff_id; /* asked for (0: any) */
    long long prefer;   /* when any: this staff member if free (rescheduling keeps the same person) */
} booking_slot_wish;

/* Who takes the slot starting at wish->start among the engine's offer: 0 when it is not offered. */
static long long booking_pick_staff(const booking_slots *slots, const booking_slot_wish *wish)
{
    size_t i, k;

    for (i = 0; i < slots->count; i++) {
        const booking_slot *slot = &slots->slots[i];

        if (slot->start != wish->start || slot->staff_count == 0) {
            continue;
        }
        for (k = 0; k < slot->staff_count; k++) {
            if (wish->staff_id ? slot->staff_ids[k] == wish->staff_id : slot->staff_ids[k] == wish->prefer) {
                return slot->staff_ids[k];
            }
        }
        return wish->staff_id ? 0 : slot->staff_ids[0];
    }
    return 0;
}

/* Asks the engine about the local days around the start (clamped to today and the horizon by the caller's dates).
 * Returns the staff member, 0 after replying 409 "slot_unavailable", or -1 after the loader replied. */
static long long booking_find_slot(booking_ctx *ctx, const char *partner, long long service, const char *from,
                                   const char *to, long long ignore_booking, const booking_slot_wish *wish)
{
    booking_slots slots = {0};
    long long staff = 0;

    if (strcmp(from, to) <= 0) {
        if (booking_availability_load(ctx, partner, service, wish->staff_id, from, to, ignore_booking, &slots) != 0) {
            return -1;
        }
        staff = booking_pick_staff(&slots, wish);
        booking_slots_free(&slots);
    }
    if (staff == 0) {
        booking_reply_error(ctx, 409, "slot_unavailable", "start", "this time is not offered for this service");
    }
    return staff;
}

/* A free resource of the kind over [lower, upper), locked so that concurrent bookings spread over the others; when
 * all free ones are locked by transactions in flight, the first free one unlocked (the exclusion constraint then
 * decides). $5: a booking to disregard (rescheduling); $6: the resource preferred when free. OFFSET 0 keeps the
 * NOT EXISTS a per-resource scan on both columns of the GiST index (see booking_staff_busy_sql for why). */
static const char booking_resource_sql[] =
    "SELECT r.id FROM booking.resources r "
    " WHERE r.partner_id = $1 AND r.kind = $2 AND r.active "
    "   AND NOT EXISTS (SELECT 1 FROM booking.bookings b "
    "                    WHERE b.resource_id = r.id AND b.status <> 'cancelled' AND b.id <> $5::bigint "
    "                      AND b.busy && tstzrange(to_timestamp($3::bigint), to_timestamp($4::bigint), '[)') "
    "                    OFFSET 0) "
    " ORDER BY r.id = $6::bigint DESC, r.id LIMIT 1 ";

/* The resource's id in out (32 bytes), "" when none is free. 0, or -1 (ctx->sqlstate set). */
static int booking_pick_resource(booking_ctx *ctx, const char *partner, const char *kind, long long lower,
                                 long long upper, long long ignore_booking, long long prefer, char *out)
{
    static const char *const locks[] = {"FOR UPDATE OF r SKIP LOCKED", ""};
    char lower_s[24], upper_s[24], ignore_s[24], prefer_s[24];
    const char *params[6] = {partner, kind, lower_s, upper_s, ignore_s, prefer_s};
    size_t i;

    snprintf(lower_s, sizeof(lower_s), "%lld", lower);
    snprintf(upper_s, sizeof(upper_s), "%lld", upper);
    snprintf(ignore_s, sizeof(ignore_s), "%lld", ignore_booking);
    snprintf(prefer_s, sizeof(prefer_s), "%lld", prefer);
    out[0] = '\0';
    for (i = 0; i < sizeof(locks) / sizeof(locks[0]) && out[0] == '\0'; i++) {
        PGresult *res = booking_exec(ctx, booking_printf(ctx, "%s%s", booking_resource_sql, locks[i]), 6, params);

        if (res == NULL) {
            return -1;
        }
        if (PQntuples(res) > 0) {
            snprintf(out, 32, "%s", PQgetvalue(res, 0, 0));
        }
        PQclear(res);
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------------ booking */

typedef struct {
    const char *partner;
    long long service, staff;
    const char *start;
    long long epoch;
    const char *name, *email, *phone, *notes;
} booking_order;

/* The service as it is now, and the local dates to ask the engine about. */
typedef struct {
    long long duration_s, before_s, after_s;
    const char *resource_kind; /* NULL: none needed */
    const char *from, *to;     /* local dates: the day before the start (not before today) to the day after (not
                                  beyond the horizon) */
    int staff_ok;              /* the staff member asked for performs it */
} booking_service_info;

static int booking_read_customer(booking_ctx *ctx, json_t *body, booking_order *order)
{
    json_t *customer = json_object_get(body, "customer");
    int rc;

    if (customer == NULL || json_is_null(customer)) {
        booking_reply_error(ctx, 400, "invalid", "customer", "is required");
        return -1;
    }
    if (!json_is_object(customer)) {
        booking_reply_error(ctx, 400, "invalid", "customer", "must be an object with name, email and phone");
        return -1;
    }
    ctx->field_prefix = "customer.";
    rc = 0;
    if (booking_check_members(ctx, customer, booking_customer_members) != 0 ||
        booking_get_string(ctx, customer, "name", 1, BOOKING_CUSTOMER_MAX, &order->name) != 0 ||
        booking_get_email(ctx, customer, "email", 1, &order->email) != 0 ||
        booking_get_phone(ctx, customer, "phone", 1, &order->phone) != 0) {
        rc = -1;
    }
    ctx->field_prefix = NULL;
    return rc;
}

/* The body of POST /bookings, every rule checked. 0, or -1 after replying 400. */
static int booking_read_order(booking_ctx *ctx, json_t *body, booking_order *order)
{
    memset(order, 0, sizeof(*order));
    order->notes = "";
    if (booking_check_members(ctx, body, booking_order_members) != 0 ||
        booking_get_string(ctx, body, "partner", ctx->partner_id == NULL, 63, &order->partner) != 0 ||
        booking_get_int(ctx, body, "service", 1, 1, BOOKING_ID_MAX, &order->service) != 0 ||
        booking_get_int(ctx, body, "staff", 0, 1, BOOKING_ID_MAX, &order->staff) != 0 ||
        booking_get_timestamp(ctx, body, "start", 1, &order->start, &order->epoch) != 0 ||
        booking_read_customer(ctx, body, order) != 0 ||
        booking_get_string(ctx, body, "notes", 0, BOOKING_NOTES_MAX, &order->notes) != 0) {
        return -1;
    }
    if (order->partner != NULL && order->partner[0] != '\0' && !booking_valid_partner_id(order->partner)) {
        booking_reply_error(ctx, 400, "invalid", "partner", "must be a partner id");
        return -1;
    }
    if (order->partner == NULL || order->partner[0] == '\0') {
        order->partner = ctx->partner_id;
    } else if (ctx->partner_id != NULL && strcmp(order->partner, ctx->partner_id) != 0) {
        booking_reply_error(ctx, 400, "invalid", "partner", "is not the partner of this site");
        return -1;
    }
    if (order->epoch <= (long long)ctx->req->now) {
        booking_reply_error(ctx, 400, "in_past", "start", "is in the past");
        return -1;
    }
    return 0;
}

/* $1 service, $2 partner, $3 start epoch, $4 default zone, $5 staff (0: any), $6 now (epoch). */
static const char booking_service_info_sql[] =
    "SELECT s.id, s.duration_minutes, s.buffer_before_minutes, s.buffer_after_minutes, s.resource_kind, "
    "       to_char(GREATEST((to_timestamp($3::bigint) AT TIME ZONE z.zone)::date - 1, "
    "                        (to_timestamp($6::bigint) AT TIME ZONE z.zone)::date), 'YYYY-MM-DD'), "
    "       to_char(LEAST((to_timestamp($3::bigint) AT TIME ZONE z.zone)::date + 1, "
    "                     (to_timestamp($6::bigint) AT TIME ZONE z.zone)::date + p.horizon_days), 'YYYY-MM-DD'), "
    "       $5::bigint = 0 OR EXISTS (SELECT 1 FROM booking.service_staff ss "
    "                                   JOIN booking.staff st ON st.id = ss.staff_id "
    "                                  WHERE ss.service_id = s.id AND st.id = $5::bigint AND st.active) "
    "  FROM booking.partners p "
    " CROSS JOIN LATERAL (SELECT COALESCE(p.time_zone, $4) AS zone) z "
    "  LEFT JOIN booking.services s ON s.partner_id = p.id AND s.id = $1::bigint AND s.active "
    " WHERE p.id = $2 AND p.active";

/* 0, or -1 after replying (400 naming partner, service or staff when unknown). */
static int booking_load_service(booking_ctx *ctx, const booking_order *order, booking_service_info *info)
{
    const char *params[6] = {
        booking_printf(ctx, "%lld", order->service), order->partner,
        booking_printf(ctx, "%lld", order->epoch),   ctx->config->time_zone,
        booking_printf(ctx, "%lld", order->staff),   booking_printf(ctx, "%lld", (long long)ctx->req->now)};
    PGresult *res = booking_exec(ctx, booking_service_info_sql, 6, params);

    if (res == NULL) {
        booking_reply_db_error(ctx);
        return -1;
    }
    if (PQntuples(res) == 0 || PQgetisnull(res, 0, 0)) {
        int partner_unknown = PQntuples(res) == 0;

        PQclear(res);
        if (partner_unknown) {
            booking_reply_error(ctx, 400, "invalid", "partner", "is not a partner taking bookings");
        } else {
            booking_reply_error(ctx, 400, "invalid", "service", "is not a service this partner offers");
        }
        return -1;
    }
    info->duration_s = booking_value_ll(res, 0, 1) * 60;
    info->before_s = booking_value_ll(res, 0, 2) * 60;
    info->after_s = booking_value_ll(res, 0, 3) * 60;
    info->resource_kind = PQgetisnull(res, 0, 4) ? NULL : booking_strdup(ctx, PQgetvalue(res, 0, 4));
    info->from = booking_strdup(ctx, PQgetvalue(res, 0, 5));
    info->to = booking_strdup(ctx, PQgetvalue(res, 0, 6));
    info->staff_ok = strcmp(PQgetvalue(res, 0, 7), "t") == 0;
    PQclear(res);
    if (!info->staff_ok) {
        booking_reply_error(ctx, 400, "invalid", "staff", "does not perform this service");
        return -1;
    }
    return 0;
}

/* A fresh manage token (base64url of 32 random bytes) in request memory; NULL when randomness failed. */
static char *booking_new_token(booking_ctx *ctx)
{
    unsigned char raw[BOOKING_TOKEN_BYTES];
    char *token;

    if (crypto_random_bytes(raw, sizeof(raw)) != 0) {
        return NULL;
    }
    token = booking_alloc(ctx, crypto_base64url_len(sizeof(raw)) + 1);
    crypto_base64url_encode(raw, sizeof(raw), token);
    return token;
}

static const char booking_customer_sql[] =
    "INSERT INTO booking.customers (name, email, phone) VALUES ($1, $2, $3) "
    "ON CONFLICT (email) DO UPDATE SET name = EXCLUDED.name, phone = EXCLUDED.phone RETURNING id";

/* Price and currency are copied from the service row as it is now: later price changes leave the booking alone. */
static const char booking_insert_sql[] =
    "INSERT INTO booking.bookings (partner_id, service_id, staff_id, resource_id, customer_id, starts_at, ends_at, "
    "                              busy, price_cents, currency, manage_token_hash, notes) "
    "SELECT s.partner_id, s.id, $2::bigint, $3::bigint, $4::bigint, to_timestamp($5::bigint), "
    "       to_timestamp($5::bigint) + make_interval(mins => s.duration_minutes), "
    "       tstzrange(to_timestamp($5::bigint) - make_interval(mins => s.buffer_before_minutes), "
    "                 to_timestamp($5::bigint) + make_interval(mins => s.duration_minutes + s.buffer_after_minutes), "
    "                 '[)'), "
    "       s.price_cents, s.currency, sha256(convert_to($6, 'UTF8')), $7 "
    "  FROM booking.services s WHERE s.id = $1::bigint "
    "RETURNING id";

/* One row's first column, copied, from a query expected to return exactly one row. NULL with ctx->sqlstate set. */
static const char *booking_exec_value(booking_ctx *ctx, const char *sql, int nparams, const char *const *params)
{
    PGresult *res = booking_exec(ctx, sql, nparams, params);
    const char *value;

    if (res == NULL) {
        return NULL;
    }
    if (PQntuples(res) != 1) {
        PQclear(res);
        snprintf(ctx->sqlstate, sizeof(ctx->sqlstate), "XX000");
        snprintf(ctx->err, sizeof(ctx->err), "expected one row");
        return NULL;
    }
    value = booking_strdup(ctx, PQgetvalue(res, 0, 0));
    PQclear(res);
    return value;
}

/* The writes of POST /bookings, in the caller's transaction. The view on success; NULL after replying. */
static json_t *booking_write_order(booking_ctx *ctx, const booking_order *order, const booking_service_info *info,
                                   long long staff, const char *token)
{
    const char *customer_params[3] = {order->name, order->email, order->phone};
    const char *customer_id, *booking_id, *insert_params[7];
    char resource[32] = "";

    customer_id = booking_exec_value(ctx, booking_customer_sql, 3, customer_params);
    if (customer_id == NULL) {
        booking_reply_db_error(ctx);
        return NULL;
    }
    if (info->resource_kind != NULL) {
        if (booking_pick_resource(ctx, order->partner, info->resource_kind, order->epoch - info->before_s,
                                  order->epoch + info->duration_s + info->after_s, 0, 0, resource) != 0) {
            booking_reply_db_error(ctx);
            return NULL;
        }
        if (resource[0] == '\0') {
            booking_reply_error(ctx, 409, "slot_unavailable", "start", "no room or chair is free at this time");
            return NULL;
        }
    }
    insert_params[0] = booking_printf(ctx, "%lld", order->service);
    insert_params[1] = booking_printf(ctx, "%lld", staff);
    insert_params[2] = resource[0] ? resource : NULL;
    insert_params[3] = customer_id;
    insert_params[4] = booking_printf(ctx, "%lld", order->epoch);
    insert_params[5] = token;
    insert_params[6] = order->notes;
    booking_id = booking_exec_value(ctx, booking_insert_sql, 7, insert_params);
    if (booking_id == NULL || booking_outbox_enqueue(ctx, strtoll(booking_id, NULL, 10), "booking.confirmed") != 0) {
        booking_reply_db_error(ctx);
        return NULL;
    }
    return booking_view_load(ctx, booking_id, NULL);
}

/* 201 with the token (shown this once) and Location: the manage URL. */
static void booking_reply_created(booking_ctx *ctx, json_t *view, const char *token)
{
    json_t *url = json_object_get(view, "manage_url");

    if (json_object_set_new(view, "token", json_string(token)) != 0) {
        json_decref(view);
        booking_reply_oom(ctx);
        return;
    }
    free(ctx->resp->location);
    ctx->resp->location = url ? strdup(json_string_value(url)) : NULL;
    booking_reply_json(ctx, 201, view);
}

static void booking_book_once(booking_ctx *ctx)
{
    json_t *body = booking_body_json(ctx), *view;
    booking_order order;
    booking_service_info info;
    booking_slot_wish wish;
    long long staff;
    const char *token;

    if (body == NULL) {
        return;
    }
    if (booking_read_order(ctx, body, &order) != 0 || booking_load_service(ctx, &order, &info) != 0) {
        json_decref(body);
        return;
    }
    wish.start = order.epoch;
    wish.staff_id = order.staff;
    wish.prefer = 0;
    staff = booking_find_slot(ctx, order.partner, order.service, info.from, info.to, 0, &wish);
    if (staff <= 0) {
        json_decref(body);
        return;
    }
    token = booking_new_token(ctx);
    if (token == NULL) {
        json_decref(body);
        booking_reply_error(ctx, 503, "unavailable", NULL, "no randomness for the manage token");
        return;
    }
    if (booking_begin(ctx) != 0) {
        json_decref(body);
        booking_reply_db_error(ctx);
        return;
    }
    view = booking_write_order(ctx, &order, &info, staff, token);
    json_decref(body); /* order's strings live in request memory */
    if (view == NULL) {
        booking_rollback(ctx);
        return;
    }
    if (booking_commit(ctx) != 0) {
        json_decref(view);
        booking_reply_db_error(ctx);
        return;
    }
    booking_reply_created(ctx, view, token);
}

void booking_route_book(booking_ctx *ctx)
{
    booking_book_once(ctx);
    /* 5xx: the store failed, which store_errors_total counts; the booking was neither made nor refused */
    if (ctx->resp->status == 201)
        metrics_add(booking_metrics, BOOKING_METRIC_BOOKINGS, BOOKING_RESULT_CREATED, 1);
    else if (ctx->resp->status == 409)
        metrics_add(booking_metrics, BOOKING_METRIC_BOOKINGS, BOOKING_RESULT_CONFLICT, 1);
    else if (ctx->resp->status >= 400 && ctx->resp->status < 500)
        metrics_add(booking_metrics, BOOKING_METRIC_BOOKINGS, BOOKING_RESULT_REFUSED, 1);
}

/* --------------------------------------------------------------------------------- cancel and reschedule */

/* The booking's state as the manage routes need it, looked up by id and token (and the host's partner). $5: a new
 * start (epoch, or the current one) for the local dates to ask the engine about; $6: a staff member to check
 * (0: none); $7: now. */
static const char booking_state_sql[] =
    "SELECT b.status, extract(epoch FROM b.starts_at)::bigint, p.cancel_deadline_minutes, b.partner_id, "
    "       b.service_id, b.staff_id, COALESCE(b.resource_id, 0), s.resource_kind, "
    "       extract(epoch FROM b.starts_at - lower(b.busy))::bigint, "
    "       extract(epoch FROM upper(b.busy) - b.starts_at)::bigint, "
    "       to_char(GREATEST((to_timestamp($5::bigint) AT TIME ZONE z.zone)::date - 1, "
    "                        (to_timestamp($7::bigint) AT TIME ZONE z.zone)::date), 'YYYY-MM-DD'), "
    "       to_char(LEAST((to_timestamp($5::bigint) AT TIME ZONE z.zone)::date + 1, "
    "                     (to_timestamp($7::bigint) AT TIME ZONE z.zone)::date + p.horizon_days), 'YYYY-MM-DD'), "
    "       $6::bigint = 0 OR EXISTS (SELECT 1 FROM booking.service_staff ss "
    "                                   JOIN booking.staff st ON st.id = ss.staff_id "
    "                                  WHERE ss.service_id = b.service_id AND st.id = $6::bigint AND st.active) "
    "  FROM booking.bookings b "
    "  JOIN booking.partners p ON p.id = b.partner_id "
    "  JOIN booking.services s ON s.id = b.service_id "
    " CROSS JOIN LATERAL (SELECT COALESCE(p.time_zone, $4) AS zone) z "
    " WHERE b.id = $1::bigint AND b.manage_token_hash = sha256(convert_to($2, 'UTF8')) "
    "   AND ($3::text IS NULL OR b.partner_id = $3) ";

typedef struct {
    char status[16];
    long long start, deadline_s;
    const char *partner;
    long long service, staff, resource;
    const char *resource_kind;   /* NULL: the service needs none */
    long long before_s, upper_s; /* the busy range around the start: [start - before_s, start + upper_s) */
    const char *from, *to;
    int staff_ok;
} booking_state;

/* 0, or -1 after replying (404 for an unknown id or a wrong token). */
static int booking_state_load(booking_ctx *ctx, const char *id, const char *token, long long new_start, long long staff,
                              int for_update, booking_state *state)
{
    const char *params[7] = {id,
                             token,
                             ctx->partner_id,
                             ctx->config->time_zone,
                             booking_printf(ctx, "%lld", new_start),
                             booking_printf(ctx, "%lld", staff),
                             booking_printf(ctx, "%lld", (long long)ctx->req->now)};
    PGresult *res = booking_exec(
        ctx, for_update ? booking_printf(ctx, "%sFOR UPDATE OF b", booking_state_sql) : booking_state_sql, 7, params);

    if (res == NULL) {
        booking_reply_db_error(ctx);
        return -1;
    }
    if (PQntuples(res) == 0) {
        PQclear(res);
        booking_reply_not_found(ctx);
        return -1;
    }
    snprintf(state->status, sizeof(state->status), "%s", PQgetvalue(res, 0, 0));
    state->start = booking_value_ll(res, 0, 1);
    state->deadline_s = booking_value_ll(res, 0, 2) * 60;
    state->partner = booking_strdup(ctx, PQgetvalue(res, 0, 3));
    state->service = booking_value_ll(res, 0, 4);
    state->staff = booking_value_ll(res, 0, 5);
    state->resource = booking_value_ll(res, 0, 6);
    state->resource_kind = PQgetisnull(res, 0, 7) ? NULL : booking_strdup(ctx, PQgetvalue(res, 0, 7));
    state->before_s = booking_value_ll(res, 0, 8);
    state->upper_s = booking_value_ll(res, 0, 9);
    state->from = booking_strdup(ctx, PQgetvalue(res, 0, 10));
    state->to = booking_strdup(ctx, PQgetvalue(res, 0, 11));
    state->staff_ok = strcmp(PQgetvalue(res, 0, 12), "t") == 0;
    PQclear(res);
    return 0;
}

/* A confirmed booking whose start is still further away than the partner's cancellation deadline. 0, or -1 after
 * replying 409. */
static int booking_check_changeable(booking_ctx *ctx, const booking_state *state)
{
    if (strcmp(state->status, "cancelled") == 0) {
        booking_reply_error(ctx, 409, "already_cancelled", NULL, "this booking is already cancelled");
        return -1;
    }
    if (strcmp(state->status, "confirmed") != 0) {
        booking_reply_error(ctx, 409, "not_changeable", NULL, "this booking is %s", state->status);
        return -1;
    }
    if ((long long)ctx->req->now >= state->start - state->deadline_s) {
        booking_reply_error(ctx, 409, "deadline_passed", NULL,
                            "bookings can be changed until %lld minutes before the start", state->deadline_s / 60);
        return -1;
    }
    return 0;
}

/* The id and token of a manage route, or -1 after replying 404. */
static int booking_manage_target(booking_ctx *ctx, const char **id_text, long long *id, const char **token)
{
    *id_text = booking_param_id(ctx, id);
    *token = booking_manage_token(ctx);
    if (*id_text == NULL || *token == NULL) {
        booking_reply_not_found(ctx);
        return -1;
    }
    return 0;
}

/* Runs the last steps every manage route shares inside its transaction: the outbox row, the view, the commit. */
static void booking_finish_change(booking_ctx *ctx, long long id, const char *id_text, const char *kind)
{
    json_t *view;

    if (booking_outbox_enqueue(ctx, id, kind) != 0) {
        booking_reply_db_error(ctx);
        booking_rollback(ctx);
        return;
    }
    view = booking_view_load(ctx, id_text, NULL);
    if (view == NULL) {
        booking_rollback(ctx);
        return;
    }
    if (booking_commit(ctx) != 0) {
        json_decref(view);
        booking_reply_db_error(ctx);
        return;
    }
    booking_reply_json(ctx, 200, view);
}

void booking_route_booking_cancel(booking_ctx *ctx)
{
    const char *id_text, *token, *params[1];
    long long id;
    booking_state state;
    PGresult *res;

    if (booking_manage_target(ctx, &id_text, &id, &token) != 0) {
        return;
    }
    if (booking_begin(ctx) != 0) {
        booking_reply_db_error(ctx);
        return;
    }
    if (booking_state_load(ctx, id_text, token, (long long)ctx->req->now, 0, 1, &state) != 0 ||
        booking_check_changeable(ctx, &state) != 0) {
        booking_rollback(ctx);
        return;
    }
    params[0] = id_text;
    res = booking_exec(ctx,
                       "UPDATE booking.bookings SET status = 'cancelled', cancelled_at = now(), updated_at = now() "
                       " WHERE id = $1::bigint",
                       1, params);
    if (res == NULL) {
        booking_reply_db_error(ctx);
        booking_rollback(ctx);
        return;
    }
    PQclear(res);
    booking_finish_change(ctx, id, id_text, "booking.cancelled");
}

/* The booking keeps its own duration and buffers (what the customer bought) at the new start. */
static const char booking_move_sql[] =
    "UPDATE booking.bookings "
    "   SET starts_at = to_timestamp($2::bigint), "
    "       ends_at = to_timestamp($2::bigint) + (ends_at - starts_at), "
    "       busy = tstzrange(to_timestamp($2::bigint) - (starts_at - lower(busy)), "
    "                        to_timestamp($2::bigint) + (upper(busy) - starts_at), '[)'), "
    "       staff_id = $3::bigint, resource_id = $4::bigint, updated_at = now() "
    " WHERE id = $1::bigint";

/* Locks the booking, checks it again (a cancel may have come in between), picks a resource and moves it. 0, or -1
 * after replying. */
static int booking_move(booking_ctx *ctx, const char *id_text, long long id, const char *token, long long start,
                        long long staff)
{
    booking_state state;
    char resource[32] = "";
    const char *params[4];
    PGresult *res;

    if (booking_state_load(ctx, id_text, token, start, 0, 1, &state) != 0 ||
        booking_check_changeable(ctx, &state) != 0) {
        return -1;
    }
    if (state.resource_kind != NULL) {
        if (booking_pick_resource(ctx, state.partner, state.resource_kind, start - state.before_s,
                                  start + state.upper_s, id, state.resource, resource) != 0) {
            booking_reply_db_error(ctx);
            return -1;
        }
        if (resource[0] == '\0') {
            booking_reply_error(ctx, 409, "slot_unavailable", "start", "no room or chair is free at this time");
            return -1;
        }
    }
    params[0] = id_text;
    params[1] = booking_printf(ctx, "%lld", start);
    params[2] = booking_printf(ctx, "%lld", staff);
    params[3] = resource[0] ? resource : NULL;
    res = booking_exec(ctx, booking_move_sql, 4, params);
    if (res == NULL) {
        booking_reply_db_error(ctx);
        return -1;
    }
    PQclear(res);
    return 0;
}

void booking_route_booking_reschedule(booking_ctx *ctx)
{
    const char *id_text, *token, *start_text = NULL;
    long long id, start = 0, staff = 0;
    json_t *body;
    booking_state state;
    booking_slot_wish wish;

    if (booking_manage_target(ctx, &id_text, &id, &token) != 0 || (body = booking_body_json(ctx)) == NULL) {
        return;
    }
    if (booking_check_members(ctx, body, booking_reschedule_members) != 0 ||
        booking_get_timestamp(ctx, body, "start", 1, &start_text, &start) != 0 ||
        booking_get_int(ctx, body, "staff", 0, 1, BOOKING_ID_MAX, &staff) != 0) {
        json_decref(body);
        return;
    }
    json_decref(body);
    if (start <= (long long)ctx->req->now) {
        booking_reply_error(ctx, 400, "in_past", "start", "is in the past");
        return;
    }
    if (booking_state_load(ctx, id_text, token, start, staff, 0, &state) != 0 ||
        booking_check_changeable(ctx, &state) != 0) {
        return;
    }
    if (!state.staff_ok) {
        booking_reply_error(ctx, 400, "invalid", "staff", "does not perform this service");
        return;
    }
    wish.start = start;
    wish.staff_id = staff;
    wish.prefer = state.staff;
    staff = booking_find_slot(ctx, state.partner, state.service, state.from, state.to, id, &wish);
    if (staff <= 0) {
        return;
    }
    if (booking_begin(ctx) != 0) {
        booking_reply_db_error(ctx);
        return;
    }
    if (booking_move(ctx, id_text, id, token, start, staff) != 0) {
        booking_rollback(ctx);
        return;
    }
    booking_finish_change(ctx, id, id_text, "booking.rescheduled");
}
