/* The JSON API's frame: directive values shared by both adapters, the router (routes, base path, which partner a
 * request may see), request memory, replies, and PostgreSQL calls whose failures become the right HTTP status. */
#include "booking_int.h"
#include "req.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------------------------------------ configuration */

void booking_config_defaults(booking_config *config)
{
    if (config->time_zone == NULL)
        config->time_zone = "UTC";
    if (config->page_api == NULL)
        config->page_api = "/booking/api";
    if (config->notify_attempts < 0)
        config->notify_attempts = BOOKING_NOTIFY_ATTEMPTS_DEFAULT;
    if (config->notify_timeout_ms < 0)
        config->notify_timeout_ms = BOOKING_NOTIFY_TIMEOUT_MS_DEFAULT;
    if (config->reminder_hours < 0)
        config->reminder_hours = BOOKING_REMINDER_HOURS_DEFAULT;
    if (config->cache_ttl < 0)
        config->cache_ttl = 0;
}

const char *booking_set_partner(booking_config *config, const char *arg)
{
    if (strcmp(arg, "from-host") == 0) {
        config->partner_mode = BOOKING_PARTNER_FROM_HOST;
        config->partner_id = NULL;
        return NULL;
    }
    if (!booking_valid_partner_id(arg))
        return "takes a partner id (lower-case letters, digits and dashes) or from-host";
    config->partner_mode = BOOKING_PARTNER_FIXED;
    config->partner_id = arg;
    return NULL;
}

const char *booking_set_time_zone(booking_config *config, const char *arg)
{
    char path[256];
    const char *p;

    /* Checked against tzdata here so that a typo fails the configuration test rather than every request. */
    if (arg[0] == '\0' || arg[0] == '/' || strstr(arg, "..") != NULL || strlen(arg) > 64)
        return "takes an IANA time zone name such as Europe/Paris";
    for (p = arg; *p; p++)
        if (!isalnum((unsigned char)*p) && strchr("/_+-", *p) == NULL)
            return "takes an IANA time zone name such as Europe/Paris";
    snprintf(path, sizeof(path), "/usr/share/zoneinfo/%s", arg);
    if (strcmp(arg, "UTC") != 0 && access(path, R_OK) != 0)
        return "names a time zone this system's tzdata does not know";
    config->time_zone = arg;
    return NULL;
}

const char *booking_set_notify_url(booking_config *config, const char *arg)
{
    if ((strncmp(arg, "http://", 7) != 0 && strncmp(arg, "https://", 8) != 0) || strpbrk(arg, " \t\r\n") != NULL)
        return "takes an http:// or https:// URL";
    config->notify_url = arg;
    return NULL;
}

const char *booking_set_page_api(booking_config *config, const char *arg)
{
    if (arg[0] != '/' || strpbrk(arg, "\"'<>&\\ \t\r\n") != NULL)
        return "takes the API's absolute URL path, such as /booking/api";
    config->page_api = arg;
    return NULL;
}

const char *booking_set_number(long *field, const char *arg, long min, long max)
{
    char *end;
    long value;

    value = strtol(arg, &end, 10);
    if (end == arg || *end != '\0' || value < min || value > max)
        return "takes a whole number in its allowed range";
    *field = value;
    return NULL;
}

/* ------------------------------------------------------------------------------------------------ memory */

struct booking_arena_block {
    booking_arena_block *next;
    max_align_t align[];
};

void *booking_alloc(booking_ctx *ctx, size_t size)
{
    booking_arena_block *block = malloc(sizeof(*block) + size + 1);

    if (block == NULL)
        abort(); /* as the servers' own pools do */
    block->next = ctx->arena;
    ctx->arena = block;
    memset(block->align, 0, size + 1);
    return block->align;
}

char *booking_strndup(booking_ctx *ctx, const char *s, size_t len)
{
    char *copy = booking_alloc(ctx, len + 1);

    memcpy(copy, s, len);
    copy[len] = '\0';
    return copy;
}

char *booking_strdup(booking_ctx *ctx, const char *s)
{
    return booking_strndup(ctx, s, strlen(s));
}

char *booking_printf(booking_ctx *ctx, const char *fmt, ...)
{
    va_list ap;
    int len;
    char *out;

    va_start(ap, fmt);
    len = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (len < 0)
        abort();
    out = booking_alloc(ctx, (size_t)len + 1);
    va_start(ap, fmt);
    vsnprintf(out, (size_t)len + 1, fmt, ap);
    va_end(ap);
    return out;
}

static void booking_arena_free(booking_ctx *ctx)
{
    booking_arena_block *block, *next;

    for (block = ctx->arena; block; block = next) {
        next = block->next;
        free(block);
    }
    ctx->arena = NULL;
}

/* ----------------------------------------------------------------------------------------------- replies */

void booking_response_free(booking_response *response)
{
    free(response->body);
    free(response->content_disposition);
    free(response->location);
    response->body = NULL;
    response->content_disposition = NULL;
    response->location = NULL;
}

void booking_reply_raw(booking_ctx *ctx, int status, const char *content_type, char *body, size_t len)
{
    free(ctx->resp->body);
    ctx->resp->status = status;
    ctx->resp->content_type = content_type;
    ctx->resp->body = body;
    ctx->resp->body_len = body ? len : 0;
}

void booking_reply_json(booking_ctx *ctx, int status, json_t *body)
{
    char *text = NULL;

    if (body != NULL) {
        text = json_dumps(body, JSON_COMPACT | JSON_ENSURE_ASCII);
        json_decref(body);
        if (text == NULL) {
            booking_reply_error(ctx, 500, "internal", NULL, "out of memory");
            return;
        }
    }
    booking_reply_raw(ctx, status, "application/json", text, text ? strlen(text) : 0);
}

void booking_reply_error(booking_ctx *ctx, int status, const char *code, const char *field, const char *fmt, ...)
{
    char message[400];
    const char *full_field = NULL;
    json_t *body;
    char *text;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);
    if (field != NULL)
        full_field = ctx->field_prefix ? booking_printf(ctx, "%s%s", ctx->field_prefix, field) : field;
    body = json_pack("{s:s, s:s}", "error", message, "code", code);
    if (body != NULL && full_field != NULL)
        json_object_set_new(body, "field", json_string(full_field));
    text = body ? json_dumps(body, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
    json_decref(body);
    booking_reply_raw(ctx, status, "application/json", text, text ? strlen(text) : 0);
    if (text == NULL) {
        ctx->resp->status = 500;
        return;
    }
    if (status == 503)
        ctx->resp->retry_after = BOOKING_RETRY_AFTER_S;
    ctx->resp->log_is_error = status >= 500;
    /* Truncation is acceptable in a log line; the return value is looked at only to say so to the compiler. */
    if (snprintf(ctx->resp->log, sizeof(ctx->resp->log), "mod_booking: %.20s %.100s: %d %s: %s%s%s", ctx->req->method,
                 ctx->req->path, status, code, message, full_field ? ", field " : "", full_field ? full_field : "") < 0)
        ctx->resp->log[0] = '\0';
}

void booking_reply_db_error(booking_ctx *ctx)
{
    const char *state = ctx->sqlstate;

    if (strcmp(state, "23P01") == 0) {
        booking_reply_error(ctx, 409, "slot_taken", NULL, "this slot was just taken");
    } else if (strcmp(state, "23505") == 0) {
        booking_reply_error(ctx, 409, "conflict", NULL, "this already exists");
    } else if (strncmp(state, "22", 2) == 0 || strncmp(state, "23", 2) == 0) {
        booking_reply_error(ctx, 400, "invalid", NULL, "the values were refused: %s", ctx->err);
    } else {
        if (strncmp(state, "08", 2) == 0 || state[0] == '\0')
            ctx->conn_broken = 1;
        booking_reply_error(ctx, 503, "unavailable", NULL, "the booking database cannot answer now");
        /* The log gets the database's own words; the client only the fact. */
        if (snprintf(ctx->resp->log, sizeof(ctx->resp->log),
                     "mod_booking: %.60s %.100s: PostgreSQL failed (SQLSTATE %s): %.300s", ctx->req->method,
                     ctx->req->path, state[0] ? state : "none", ctx->err) < 0)
            ctx->resp->log[0] = '\0';
    }
}

/* ------------------------------------------------------------------------------------------- PostgreSQL */

static PGconn *booking_conn_quiet(booking_ctx *ctx)
{
    if (ctx->conn == NULL) {
        ctx->conn = booking_store_acquire(ctx->store, ctx->err, sizeof(ctx->err));
        if (ctx->conn == NULL) {
            snprintf(ctx->sqlstate, sizeof(ctx->sqlstate), "08006");
            metrics_add(booking_metrics, BOOKING_METRIC_STORE_ERRORS, 0, 1);
        }
    }
    return ctx->conn;
}

PGconn *booking_conn(booking_ctx *ctx)
{
    if (booking_conn_quiet(ctx) == NULL)
        booking_reply_db_error(ctx);
    return ctx->conn;
}

PGresult *booking_exec(booking_ctx *ctx, const char *sql, int nparams, const char *const *values)
{
    PGresult *res;
    double started;

    if (booking_conn_quiet(ctx) == NULL)
        return NULL;
    started = metrics_now_ms();
    res = nparams > 0 ? pg_exec_prepared(ctx->conn, sql, nparams, values, ctx->sqlstate, ctx->err, sizeof(ctx->err))
                      : pg_exec_state(ctx->conn, sql, 0, NULL, NULL, NULL, ctx->sqlstate, ctx->err, sizeof(ctx->err));
    metrics_observe_ms(booking_metrics, BOOKING_METRIC_STORE_LATENCY, 0, metrics_now_ms() - started);
    if (res == NULL && (strncmp(ctx->sqlstate, "08", 2) == 0 || PQstatus(ctx->conn) != CONNECTION_OK))
        ctx->conn_broken = 1;
    /* data the constraints refused (a slot just taken, a bad value) is the client's doing, not a store error */
    if (res == NULL && strncmp(ctx->sqlstate, "22", 2) != 0 && strncmp(ctx->sqlstate, "23", 2) != 0)
        metrics_add(booking_metrics, BOOKING_METRIC_STORE_ERRORS, 0, 1);
    return res;
}

static int booking_exec_command(booking_ctx *ctx, const char *sql)
{
    PGresult *res = booking_exec(ctx, sql, 0, NULL);

    if (res == NULL)
        return -1;
    PQclear(res);
    return 0;
}

int booking_begin(booking_ctx *ctx)
{
    if (booking_exec_command(ctx, "BEGIN") != 0)
        return -1;
    ctx->in_transaction = 1;
    return 0;
}

int booking_commit(booking_ctx *ctx)
{
    int rc = booking_exec_command(ctx, "COMMIT");

    ctx->in_transaction = 0;
    return rc;
}

void booking_rollback(booking_ctx *ctx)
{
    char state[6], err[512];

    if (!ctx->in_transaction || ctx->conn == NULL)
        return;
    ctx->in_transaction = 0;
    /* Keeps the failure that led here in ctx->sqlstate/err for the reply. */
    memcpy(state, ctx->sqlstate, sizeof(state));
    memcpy(err, ctx->err, sizeof(err));
    if (booking_exec_command(ctx, "ROLLBACK") != 0)
        ctx->conn_broken = 1;
    memcpy(ctx->sqlstate, state, sizeof(state));
    memcpy(ctx->err, err, sizeof(err));
}

/* ------------------------------------------------------------------------------------------------ input */

const char *booking_arg(booking_ctx *ctx, const char *name)
{
    size_t raw_len;
    const char *raw = req_query_find(ctx->req->args, name, &raw_len);
    char *value;

    if (raw == NULL)
        return NULL;
    value = booking_alloc(ctx, raw_len + 1);
    req_url_decode(raw, raw_len, value);
    return value;
}

static int booking_is_json_type(const char *type)
{
    static const char json[] = "application/json";

    if (type == NULL || strncasecmp(type, json, sizeof(json) - 1) != 0)
        return 0;
    type += sizeof(json) - 1;
    return *type == '\0' || *type == ';' || *type == ' ' || *type == '\t';
}

json_t *booking_body_json(booking_ctx *ctx)
{
    json_error_t error;
    json_t *body;

    if (!booking_is_json_type(ctx->req->content_type)) {
        booking_reply_error(ctx, 415, "unsupported_media_type", NULL, "the body must be application/json");
        return NULL;
    }
    if (ctx->req->body == NULL || ctx->req->body_len == 0) {
        booking_reply_error(ctx, 400, "invalid_json", NULL, "a JSON object is required");
        return NULL;
    }
    body = json_loadb(ctx->req->body, ctx->req->body_len, JSON_REJECT_DUPLICATES, &error);
    if (body == NULL) {
        booking_reply_error(ctx, 400, "invalid_json", NULL, "invalid JSON at line %d, column %d: %s", error.line,
                            error.column, error.text);
        return NULL;
    }
    if (!json_is_object(body)) {
        json_decref(body);
        booking_reply_error(ctx, 400, "invalid_json", NULL, "a JSON object is required");
        return NULL;
    }
    return body;
}

/* ------------------------------------------------------------------------------------------------ router */

typedef enum {
    BOOKING_ACCESS_PUBLIC,  /* anyone; limited to the host's partner on a white-label site */
    BOOKING_ACCESS_ACCOUNT, /* a login of the server's authentication that manages a partner */
    BOOKING_ACCESS_LOGIN,   /* any login of the server's authentication */
} booking_access;

typedef struct {
    const char *methods; /* space-separated */
    const char *pattern; /* segments; "*" captures one */
    booking_route_fn fn;
    booking_access access;
} booking_route;

static const booking_route booking_routes[] = {
    {"GET", "partners", booking_route_partners, BOOKING_ACCESS_PUBLIC},
    {"GET", "partners/*", booking_route_partner, BOOKING_ACCESS_PUBLIC},
    {"GET", "partners/*/services", booking_route_services, BOOKING_ACCESS_PUBLIC},
    {"GET", "partners/*/availability", booking_route_availability, BOOKING_ACCESS_PUBLIC},
    {"POST", "bookings", booking_route_book, BOOKING_ACCESS_PUBLIC},
    {"GET", "bookings/*", booking_route_booking_view, BOOKING_ACCESS_PUBLIC},
    {"POST", "bookings/*/cancel", booking_route_booking_cancel, BOOKING_ACCESS_PUBLIC},
    {"POST", "bookings/*/reschedule", booking_route_booking_reschedule, BOOKING_ACCESS_PUBLIC},
    {"GET", "ical/*", booking_route_ical, BOOKING_ACCESS_PUBLIC},
    {"GET", "status", booking_route_status, BOOKING_ACCESS_LOGIN},
    {"GET", "account", booking_route_p_self, BOOKING_ACCESS_ACCOUNT},
    {"PUT", "account", booking_route_p_update, BOOKING_ACCESS_ACCOUNT},
    {"GET PUT", "account/hours", booking_route_p_hours, BOOKING_ACCESS_ACCOUNT},
    {"GET POST", "account/exceptions", booking_route_p_exceptions, BOOKING_ACCESS_ACCOUNT},
    {"DELETE", "account/exceptions/*", booking_route_p_exception_delete, BOOKING_ACCESS_ACCOUNT},
    {"GET", "account/calendar", booking_route_p_calendar, BOOKING_ACCESS_ACCOUNT},
    {"GET POST", "account/staff", booking_route_p_staff_list, BOOKING_ACCESS_ACCOUNT},
    {"GET PUT DELETE", "account/staff/*", booking_route_p_staff_one, BOOKING_ACCESS_ACCOUNT},
    {"GET PUT", "account/staff/*/plan", booking_route_p_staff_plan, BOOKING_ACCESS_ACCOUNT},
    {"GET POST", "account/staff/*/exceptions", booking_route_p_staff_exceptions, BOOKING_ACCESS_ACCOUNT},
    {"DELETE", "account/staff/*/exceptions/*", booking_route_p_staff_exception_delete, BOOKING_ACCESS_ACCOUNT},
    {"GET", "account/staff/*/ical", booking_route_p_staff_ical, BOOKING_ACCESS_ACCOUNT},
    {"GET POST", "account/services", booking_route_p_services, BOOKING_ACCESS_ACCOUNT},
    {"GET PUT DELETE", "account/services/*", booking_route_p_service_one, BOOKING_ACCESS_ACCOUNT},
    {"GET POST", "account/resources", booking_route_p_resources, BOOKING_ACCESS_ACCOUNT},
    {"PUT DELETE", "account/resources/*", booking_route_p_resource_one, BOOKING_ACCESS_ACCOUNT},
    {"POST", "account/bookings/*/status", booking_route_p_booking_status, BOOKING_ACCESS_ACCOUNT},
    {"GET", "account/reports", booking_route_p_reports, BOOKING_ACCESS_ACCOUNT},
};

#define BOOKING_ROUTE_COUNT (sizeof(booking_routes) / sizeof(booking_routes[0]))

/* Whether route (without its leading '/') has the pattern's shape; captures go to params when given. */
static int booking_route_matches(booking_ctx *ctx, const char *pattern, const char *route, const char **params)
{
    size_t n = 0, seg_len, pat_len;
    const char *seg_end, *pat_end;

    for (;;) {
        pat_end = strchr(pattern, '/');
        pat_len = pat_end ? (size_t)(pat_end - pattern) : strlen(pattern);
        seg_end = strchr(route, '/');
        seg_len = seg_end ? (size_t)(seg_end - route) : strlen(route);
        if (seg_len == 0)
            return 0;
        if (pat_len == 1 && pattern[0] == '*') {
            if (n >= BOOKING_MAX_PARAMS)
                return 0;
            if (params != NULL)
                params[n] = booking_strndup(ctx, route, seg_len);
            n++;
        } else if (pat_len != seg_len || memcmp(pattern, route, seg_len) != 0) {
            return 0;
        }
        if ((pat_end == NULL) != (seg_end == NULL))
            return 0;
        if (pat_end == NULL)
            return 1;
        pattern = pat_end + 1;
        route = seg_end + 1;
    }
}

static int booking_method_in(const char *method, const char *methods)
{
    size_t len = strlen(method);
    const char *p = methods;

    while ((p = strstr(p, method)) != NULL) {
        if ((p == methods || p[-1] == ' ') && (p[len] == '\0' || p[len] == ' '))
            return 1;
        p += len;
    }
    return 0;
}

/* The API answers wherever it is mounted: the base is the shortest prefix of the path (ending before a '/') whose
 * remainder is a route. Returns the first route of that shape (any method), or NULL. */
static const char *booking_split_base(booking_ctx *ctx, const char *path)
{
    const char *slash;
    size_t i, len = strlen(path);

    while (len > 1 && path[len - 1] == '/')
        len--;
    path = booking_strndup(ctx, path, len);
    for (slash = strchr(path, '/'); slash != NULL; slash = strchr(slash + 1, '/')) {
        for (i = 0; i < BOOKING_ROUTE_COUNT; i++) {
            if (booking_route_matches(ctx, booking_routes[i].pattern, slash + 1, NULL)) {
                snprintf(ctx->base, sizeof(ctx->base), "%.*s", (int)(slash - path), path);
                return slash;
            }
        }
    }
    return NULL;
}

/* The host name of a Host header, lower-case and without its port. */
static char *booking_host_name(booking_ctx *ctx, const char *host)
{
    char *name = booking_strdup(ctx, host), *p;

    if (name[0] == '[') {
        p = strchr(name, ']');
        if (p)
            p[1] = '\0';
    } else if ((p = strchr(name, ':')) != NULL) {
        *p = '\0';
    }
    for (p = name; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    while (p > name && p[-1] == '.')
        *--p = '\0';
    return name;
}

/* The partner this request may see or manage, in ctx->partner_id. Returns 0, or -1 after replying. */
static int booking_resolve_partner(booking_ctx *ctx, booking_access access)
{
    const char *values[1];
    const char *host_partner = NULL;
    PGresult *res;

    if (ctx->config->partner_mode == BOOKING_PARTNER_FIXED) {
        host_partner = ctx->config->partner_id;
    } else if (ctx->config->partner_mode == BOOKING_PARTNER_FROM_HOST) {
        if (ctx->req->host == NULL || ctx->req->host[0] == '\0') {
            booking_reply_error(ctx, 404, "unknown_host", NULL, "no partner for a request without a Host");
            return -1;
        }
        values[0] = booking_host_name(ctx, ctx->req->host);
        res = booking_exec(ctx, "SELECT id FROM booking.partners WHERE $1 = ANY (hosts) AND active LIMIT 1", 1, values);
        if (res == NULL) {
            booking_reply_db_error(ctx);
            return -1;
        }
        if (PQntuples(res) == 0) {
            PQclear(res);
            booking_reply_error(ctx, 404, "unknown_host", NULL, "no partner has the host %s", values[0]);
            return -1;
        }
        host_partner = booking_strdup(ctx, PQgetvalue(res, 0, 0));
        PQclear(res);
    }
    if (access == BOOKING_ACCESS_PUBLIC) {
        ctx->partner_id = host_partner;
        return 0;
    }
    if (ctx->req->remote_user == NULL || ctx->req->remote_user[0] == '\0') {
        booking_reply_error(ctx, 403, "login_required", NULL,
                            "this route needs the server's authentication in front of it (no user)");
        return -1;
    }
    if (access == BOOKING_ACCESS_LOGIN)
        return 0;
    values[0] = ctx->req->remote_user;
    res = booking_exec(ctx, "SELECT partner_id FROM booking.partner_users WHERE login = $1", 1, values);
    if (res == NULL) {
        booking_reply_db_error(ctx);
        return -1;
    }
    if (PQntuples(res) == 0) {
        PQclear(res);
        booking_reply_error(ctx, 403, "no_partner", NULL, "the login %s manages no partner", values[0]);
        return -1;
    }
    ctx->partner_id = booking_strdup(ctx, PQgetvalue(res, 0, 0));
    PQclear(res);
    /* On a partner's own site, only that partner's logins. */
    if (host_partner != NULL && strcmp(host_partner, ctx->partner_id) != 0) {
        booking_reply_error(ctx, 403, "other_partner", NULL, "the login %s manages another partner", values[0]);
        return -1;
    }
    return 0;
}

static void booking_route_request(booking_ctx *ctx)
{
    const char *route, *method = ctx->req->method;
    size_t i;

    if (strcmp(method, "HEAD") == 0)
        method = "GET";
    route = booking_split_base(ctx, ctx->req->path);
    if (route == NULL) {
        booking_reply_error(ctx, 404, "not_found", NULL, "no such route");
        return;
    }
    ctx->route = route;
    for (i = 0; i < BOOKING_ROUTE_COUNT; i++) {
        if (!booking_route_matches(ctx, booking_routes[i].pattern, route + 1, NULL))
            continue;
        if (!booking_method_in(method, booking_routes[i].methods))
            continue;
        booking_route_matches(ctx, booking_routes[i].pattern, route + 1, ctx->params);
        if (booking_resolve_partner(ctx, booking_routes[i].access) != 0)
            return;
        booking_routes[i].fn(ctx);
        return;
    }
    /* Allow lists the methods of every route of this shape (GET and PUT of /account are two rows). */
    {
        static const char *const allow_by_mask[16] = {NULL,
                                                      "GET, HEAD",
                                                      "POST",
                                                      "GET, HEAD, POST",
                                                      "PUT",
                                                      "GET, HEAD, PUT",
                                                      "POST, PUT",
                                                      "GET, HEAD, POST, PUT",
                                                      "DELETE",
                                                      "GET, HEAD, DELETE",
                                                      "POST, DELETE",
                                                      "GET, HEAD, POST, DELETE",
                                                      "PUT, DELETE",
                                                      "GET, HEAD, PUT, DELETE",
                                                      "POST, PUT, DELETE",
                                                      "GET, HEAD, POST, PUT, DELETE"};
        static const char *const methods[4] = {"GET", "POST", "PUT", "DELETE"};
        unsigned mask = 0, m;

        for (i = 0; i < BOOKING_ROUTE_COUNT; i++)
            if (booking_route_matches(ctx, booking_routes[i].pattern, route + 1, NULL))
                for (m = 0; m < 4; m++)
                    if (booking_method_in(methods[m], booking_routes[i].methods))
                        mask |= 1u << m;
        ctx->resp->allow = allow_by_mask[mask];
    }
    booking_reply_error(ctx, 405, "method_not_allowed", NULL, "%s is not allowed here", ctx->req->method);
}

static void booking_count_response(const booking_response *response)
{
    if (response->status >= 200 && response->status < 300)
        metrics_add(booking_metrics, BOOKING_METRIC_API_REQUESTS, BOOKING_STATUS_2XX, 1);
    else if (response->status >= 400 && response->status < 500)
        metrics_add(booking_metrics, BOOKING_METRIC_API_REQUESTS, BOOKING_STATUS_4XX, 1);
    else if (response->status >= 500)
        metrics_add(booking_metrics, BOOKING_METRIC_API_REQUESTS, BOOKING_STATUS_5XX, 1);
}

int booking_api_cached(booking_store *store, const booking_config *config, const booking_request *request,
                       booking_response *response)
{
    /* counted here rather than in booking_api_handle: nginx asks the cache itself, on its event loop */
    if (!booking_cache_answer(booking_store_cache(store), config, request, response))
        return 0;
    booking_count_response(response);
    return 1;
}

void booking_api_handle(booking_store *store, const booking_config *config, const booking_request *request,
                        booking_response *response)
{
    booking_ctx ctx;

    if (booking_api_cached(store, config, request, response))
        return;
    memset(response, 0, sizeof(*response));
    memset(&ctx, 0, sizeof(ctx));
    ctx.store = store;
    ctx.config = config;
    ctx.req = request;
    ctx.resp = response;
    booking_route_request(&ctx);
    if (ctx.in_transaction)
        booking_rollback(&ctx);
    if (ctx.conn != NULL)
        pg_pool_release(booking_store_pool(store), ctx.conn,
                        !ctx.conn_broken && PQstatus(ctx.conn) == CONNECTION_OK &&
                            PQtransactionStatus(ctx.conn) == PQTRANS_IDLE);
    if (response->status == 0)
        booking_reply_error(&ctx, 500, "internal", NULL, "the route gave no answer");
    booking_cache_keep(booking_store_cache(store), config, request, response);
    booking_arena_free(&ctx);
    booking_count_response(response);
}
