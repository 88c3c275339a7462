/* mod_booking for Apache httpd 2.4: per-virtual-host directives, the booking-api and booking-page handlers, and the
 * notification dispatcher (one thread per child process; several children and several nodes share the outbox
 * safely, since each message is claimed with FOR UPDATE SKIP LOCKED). */
#include "httpd.h"
#include "http_config.h"
#include "http_core.h"
#include "http_log.h"
#include "http_protocol.h"
#include "http_request.h"
#include "apr_strings.h"
#include "apr_thread_proc.h"
#include "apr_time.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "booking.h"
#include "crypto.h"
#include "http.h"

module AP_MODULE_DECLARE_DATA booking_module;

APLOG_USE_MODULE(booking);

/* After APLOG_USE_MODULE: its log lines then name this module. */
#include "webmodules_metrics.h"

/* The block the other modules' metrics handlers render (webmodules_metrics.h). */
static metrics_block *webmodules_metrics_booking(void)
{
    return booking_metrics;
}

typedef struct {
    booking_config booking;
    int partner_set; /* BookingPartner given here (its mode may be "all" after merging otherwise) */
} booking_server_conf;

static void *booking_create_server_conf(apr_pool_t *p, server_rec *s)
{
    booking_server_conf *conf = apr_pcalloc(p, sizeof(*conf));

    (void)s;
    conf->booking.notify_attempts = -1;
    conf->booking.notify_timeout_ms = -1;
    conf->booking.reminder_hours = -1;
    conf->booking.cache_ttl = -1;
    return conf;
}

#define BOOKING_MERGE_PTR(field) conf->booking.field = add->booking.field ? add->booking.field : base->booking.field
#define BOOKING_MERGE_LONG(field)                                                                                      \
    conf->booking.field = add->booking.field >= 0 ? add->booking.field : base->booking.field

static void *booking_merge_server_conf(apr_pool_t *p, void *base_conf, void *add_conf)
{
    booking_server_conf *base = base_conf, *add = add_conf, *conf = apr_pcalloc(p, sizeof(*conf));

    BOOKING_MERGE_PTR(postgres);
    BOOKING_MERGE_PTR(time_zone);
    BOOKING_MERGE_PTR(page_api);
    BOOKING_MERGE_PTR(notify_url);
    if (add->booking.notify_secret) {
        conf->booking.notify_secret = add->booking.notify_secret;
        conf->booking.notify_secret_len = add->booking.notify_secret_len;
    } else {
        conf->booking.notify_secret = base->booking.notify_secret;
        conf->booking.notify_secret_len = base->booking.notify_secret_len;
    }
    BOOKING_MERGE_LONG(notify_attempts);
    BOOKING_MERGE_LONG(notify_timeout_ms);
    BOOKING_MERGE_LONG(reminder_hours);
    BOOKING_MERGE_LONG(cache_ttl);
    conf->partner_set = add->partner_set || base->partner_set;
    conf->booking.partner_mode = add->partner_set ? add->booking.partner_mode : base->booking.partner_mode;
    conf->booking.partner_id = add->partner_set ? add->booking.partner_id : base->booking.partner_id;
    return conf;
}

static booking_server_conf *booking_conf_of(server_rec *s)
{
    return ap_get_module_config(s->module_config, &booking_module);
}

/* ------------------------------------------------------------------------------------------- directives */

static const char *booking_directive_error(cmd_parms *cmd, const char *arg, const char *phrase)
{
    return apr_psprintf(cmd->pool, "%s \"%s\" %s", cmd->directive->directive, arg, phrase);
}

static const char *booking_cmd_postgres(cmd_parms *cmd, void *dconf, const char *arg)
{
    (void)dconf;
    booking_conf_of(cmd->server)->booking.postgres = arg;
    return NULL;
}

static const char *booking_cmd_time_zone(cmd_parms *cmd, void *dconf, const char *arg)
{
    const char *err = booking_set_time_zone(&booking_conf_of(cmd->server)->booking, arg);

    (void)dconf;
    return err ? booking_directive_error(cmd, arg, err) : NULL;
}

static const char *booking_cmd_partner(cmd_parms *cmd, void *dconf, const char *arg)
{
    booking_server_conf *conf = booking_conf_of(cmd->server);
    const char *err = booking_set_partner(&conf->booking, arg);

    (void)dconf;
    if (err)
        return booking_directive_error(cmd, arg, err);
    conf->partner_set = 1;
    return NULL;
}

static const char *booking_cmd_page_api(cmd_parms *cmd, void *dconf, const char *arg)
{
    const char *err = booking_set_page_api(&booking_conf_of(cmd->server)->booking, arg);

    (void)dconf;
    return err ? booking_directive_error(cmd, arg, err) : NULL;
}

static const char *booking_cmd_notify_url(cmd_parms *cmd, void *dconf, const char *arg)
{
    const char *err = booking_set_notify_url(&booking_conf_of(cmd->server)->booking, arg);

    (void)dconf;
    return err ? booking_directive_error(cmd, arg, err) : NULL;
}

static apr_status_t booking_free_secret(void *secret)
{
    free(secret);
    return APR_SUCCESS;
}

static const char *booking_cmd_notify_secret_file(cmd_parms *cmd, void *dconf, const char *arg)
{
    booking_server_conf *conf = booking_conf_of(cmd->server);
    char err[256], *secret;
    size_t len;

    (void)dconf;
    /* Read now, while the server still runs as root: the file can be readable by root alone. */
    if (crypto_read_secret_file(ap_server_root_relative(cmd->pool, arg), 16, &secret, &len, err, sizeof(err)))
        return apr_psprintf(cmd->pool, "%s: %s", cmd->directive->directive, err);
    apr_pool_cleanup_register(cmd->pool, secret, booking_free_secret, apr_pool_cleanup_null);
    conf->booking.notify_secret = secret;
    conf->booking.notify_secret_len = len;
    return NULL;
}

static const char *booking_cmd_number(cmd_parms *cmd, void *dconf, const char *arg)
{
    booking_server_conf *conf = booking_conf_of(cmd->server);
    const char *err;

    (void)dconf;
    switch ((long)(intptr_t)cmd->info) {
    case 0:
        err = booking_set_number(&conf->booking.notify_attempts, arg, 1, 100);
        break;
    case 1:
        err = booking_set_number(&conf->booking.notify_timeout_ms, arg, 100, 60000);
        break;
    case 2:
        err = booking_set_number(&conf->booking.reminder_hours, arg, 0, 720);
        break;
    default:
        err = booking_set_number(&conf->booking.cache_ttl, arg, 0, 60);
        break;
    }
    return err ? booking_directive_error(cmd, arg, err) : NULL;
}

static const command_rec booking_cmds[] = {
    AP_INIT_TAKE1("BookingPostgres", booking_cmd_postgres, NULL, RSRC_CONF,
                  "libpq connection string of the booking database"),
    AP_INIT_TAKE1("BookingTimeZone", booking_cmd_time_zone, NULL, RSRC_CONF,
                  "time zone of partners that have none of their own (default UTC)"),
    AP_INIT_TAKE1("BookingPartner", booking_cmd_partner, NULL, RSRC_CONF,
                  "a partner id, or from-host: this virtual host is that partner's white-label site"),
    AP_INIT_TAKE1("BookingPageAPI", booking_cmd_page_api, NULL, RSRC_CONF,
                  "URL path of the booking API the booking page calls (default /booking/api)"),
    AP_INIT_TAKE1("BookingNotifyURL", booking_cmd_notify_url, NULL, RSRC_CONF, "URL notifications are POSTed to"),
    AP_INIT_TAKE1("BookingNotifySecretFile", booking_cmd_notify_secret_file, NULL, RSRC_CONF,
                  "file holding the HMAC-SHA256 key that signs notifications"),
    AP_INIT_TAKE1("BookingNotifyAttempts", booking_cmd_number, (void *)0, RSRC_CONF,
                  "delivery attempts before a notification is parked as dead (default 8)"),
    AP_INIT_TAKE1("BookingNotifyTimeout", booking_cmd_number, (void *)1, RSRC_CONF,
                  "milliseconds one delivery attempt may take (default 5000)"),
    AP_INIT_TAKE1("BookingReminder", booking_cmd_number, (void *)2, RSRC_CONF,
                  "hours before a booking its reminder is sent; 0 sends none (default 24)"),
    AP_INIT_TAKE1("BookingCacheTTL", booking_cmd_number, (void *)3, RSRC_CONF,
                  "seconds a process reuses an availability answer; 0 (the default) reads it every time"),
    {NULL},
};

/* -------------------------------------------------------------------------------------------- handlers */

static int booking_read_body(request_rec *r, char **out, apr_size_t *out_len)
{
    char *buf;
    apr_size_t len = 0;
    long n;
    int rv;

    if ((rv = ap_setup_client_block(r, REQUEST_CHUNKED_DECHUNK)) != OK)
        return rv;
    if (r->remaining > BOOKING_MAX_BODY)
        return HTTP_REQUEST_ENTITY_TOO_LARGE;
    buf = apr_palloc(r->pool, BOOKING_MAX_BODY + 1);
    if (ap_should_client_block(r)) {
        while ((n = ap_get_client_block(r, buf + len, BOOKING_MAX_BODY + 1 - len)) > 0) {
            len += (apr_size_t)n;
            if (len > BOOKING_MAX_BODY)
                return HTTP_REQUEST_ENTITY_TOO_LARGE;
        }
        if (n < 0)
            return HTTP_BAD_REQUEST;
    }
    buf[len] = '\0';
    *out = buf;
    *out_len = len;
    return OK;
}

static int booking_send(request_rec *r, int status, const char *type, const char *body, apr_size_t len)
{
    r->status = status;
    if (type)
        ap_set_content_type(r, type);
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    apr_table_setn(r->headers_out, "X-Content-Type-Options", "nosniff");
    if (len > 0) {
        ap_set_content_length(r, len);
        if (!r->header_only)
            ap_rwrite(body, (int)len, r);
    } else {
        ap_set_content_length(r, 0);
    }
    return OK;
}

static int booking_api_handler(request_rec *r, booking_server_conf *conf)
{
    booking_request request = {0};
    booking_response response;
    booking_store *store;
    char err[256], *body = NULL;
    apr_size_t body_len = 0;
    int rv;

    if (conf->booking.postgres == NULL) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "booking: no BookingPostgres for this virtual host");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    if ((store = booking_store_get(conf->booking.postgres, err, sizeof(err))) == NULL) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "booking: %s", err);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    if ((rv = booking_read_body(r, &body, &body_len)) != OK) {
        if (rv == HTTP_REQUEST_ENTITY_TOO_LARGE)
            ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, "booking: request body over %d bytes", BOOKING_MAX_BODY);
        return rv;
    }
    request.method = r->method;
    request.path = r->uri;
    request.args = r->args;
    request.host = apr_table_get(r->headers_in, "Host");
    request.remote_user = r->user;
    request.token = apr_table_get(r->headers_in, "X-Booking-Token");
    request.content_type = apr_table_get(r->headers_in, "Content-Type");
    request.body = body_len ? body : NULL;
    request.body_len = body_len;
    request.now = (time_t)apr_time_sec(r->request_time);
    booking_api_handle(store, &conf->booking, &request, &response);
    if (response.log[0])
        ap_log_rerror(APLOG_MARK, response.log_is_error ? APLOG_ERR : APLOG_INFO, 0, r, "%s", response.log);
    if (response.retry_after > 0)
        apr_table_setn(r->headers_out, "Retry-After", apr_ltoa(r->pool, response.retry_after));
    if (response.allow)
        apr_table_setn(r->headers_out, "Allow", response.allow);
    if (response.content_disposition)
        apr_table_set(r->headers_out, "Content-Disposition", response.content_disposition);
    if (response.location)
        apr_table_set(r->headers_out, "Location", response.location);
    rv = booking_send(r, response.status, response.content_type, response.body, response.body_len);
    booking_response_free(&response);
    return rv;
}

static int booking_page_handler(request_rec *r, booking_server_conf *conf)
{
    char *html, *csp;
    size_t len;
    int rv;

    if (r->method_number != M_GET) {
        ap_allow_standard_methods(r, REPLACE_ALLOW, M_GET, -1);
        return HTTP_METHOD_NOT_ALLOWED;
    }
    if (booking_page_render(&conf->booking, &html, &len, &csp) != 0) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "booking: cannot render the booking page");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    apr_table_set(r->headers_out, "Content-Security-Policy", csp);
    apr_table_setn(r->headers_out, "Referrer-Policy", "same-origin");
    rv = booking_send(r, HTTP_OK, "text/html; charset=utf-8", html, len);
    free(html);
    free(csp);
    return rv;
}

static int booking_handler(request_rec *r)
{
    booking_server_conf *conf;

    if (r->handler == NULL)
        return DECLINED;
    conf = booking_conf_of(r->server);
    if (strcmp(r->handler, "booking-api") == 0)
        return booking_api_handler(r, conf);
    if (strcmp(r->handler, "booking-page") == 0)
        return booking_page_handler(r, conf);
    return DECLINED;
}

/* ------------------------------------------------------------------------------------------ dispatcher */

typedef struct booking_dispatch_target {
    booking_store *store;
    const booking_config *config;
    int failing; /* logged the current outage already */
    struct booking_dispatch_target *next;
} booking_dispatch_target;

typedef struct {
    server_rec *server;
    booking_dispatch_target *targets;
    volatile int stopping;
    apr_thread_t *thread;
} booking_dispatcher;

static void booking_dispatch_once(booking_dispatcher *d, booking_dispatch_target *target)
{
    booking_notify_stats stats = {0};
    char err[256];
    int handled;

    handled = booking_notify_pass(target->store, target->config, 50, 2000, &stats, err, sizeof(err));
    if (handled < 0) {
        if (!target->failing)
            ap_log_error(APLOG_MARK, APLOG_ERR, 0, d->server, "booking: notifications paused: %s", err);
        target->failing = 1;
        return;
    }
    if (target->failing)
        ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, d->server, "booking: notifications resumed");
    target->failing = 0;
    if (stats.dead > 0)
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, d->server,
                     "booking: %u notification(s) parked as dead after their last attempt", stats.dead);
}

static void *APR_THREAD_FUNC booking_dispatch_thread(apr_thread_t *thread, void *data)
{
    booking_dispatcher *d = data;
    booking_dispatch_target *target;

    while (!d->stopping) {
        for (target = d->targets; target && !d->stopping; target = target->next)
            booking_dispatch_once(d, target);
        apr_sleep(apr_time_from_msec(BOOKING_NOTIFY_POLL_MS));
    }
    apr_thread_exit(thread, APR_SUCCESS);
    return NULL;
}

static apr_status_t booking_child_exit(void *data)
{
    booking_dispatcher *d = data;
    apr_status_t rv;

    if (d->thread) {
        d->stopping = 1;
        apr_thread_join(&rv, d->thread);
    }
    booking_stores_close_all();
    return APR_SUCCESS;
}

static void booking_child_init(apr_pool_t *p, server_rec *s)
{
    booking_dispatcher *d = apr_pcalloc(p, sizeof(*d));
    booking_dispatch_target *target;
    booking_server_conf *conf;
    booking_store *store;
    server_rec *vhost;
    char err[256];
    apr_status_t rv;

    d->server = s;
    /* One target per database: the outbox is per database, and any host's settings can send its messages. */
    for (vhost = s; vhost; vhost = vhost->next) {
        conf = booking_conf_of(vhost);
        if (conf->booking.postgres == NULL || conf->booking.notify_url == NULL)
            continue;
        if ((store = booking_store_get(conf->booking.postgres, err, sizeof(err))) == NULL) {
            ap_log_error(APLOG_MARK, APLOG_ERR, 0, vhost, "booking: %s", err);
            continue;
        }
        for (target = d->targets; target && target->store != store; target = target->next)
            ;
        if (target)
            continue;
        target = apr_pcalloc(p, sizeof(*target));
        target->store = store;
        target->config = &conf->booking;
        target->next = d->targets;
        d->targets = target;
    }
    /* A pre-cleanup: it runs before the pool frees its subpools, the dispatcher thread's among them, so the thread is
     * joined while its memory still exists, and before the stores close. */
    apr_pool_pre_cleanup_register(p, d, booking_child_exit);
    if (d->targets == NULL)
        return;
    if ((rv = apr_thread_create(&d->thread, NULL, booking_dispatch_thread, d, p)) != APR_SUCCESS) {
        d->thread = NULL;
        ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s, "booking: cannot start the notification dispatcher");
    }
}

static int booking_post_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp, server_rec *s)
{
    booking_server_conf *conf;
    server_rec *vhost;
    int rv;

    (void)plog;
    (void)ptemp;
    if ((rv = webmodules_metrics_create(pconf, s, "booking", booking_metric_defs, booking_metric_count,
                                        &booking_metrics)) != OK)
        return rv;
    for (vhost = s; vhost; vhost = vhost->next) {
        conf = booking_conf_of(vhost);
        booking_config_defaults(&conf->booking);
        if (conf->booking.notify_url && conf->booking.notify_secret == NULL) {
            ap_log_error(APLOG_MARK, APLOG_CRIT, 0, vhost,
                         "booking: BookingNotifyURL needs BookingNotifySecretFile (notifications are signed)");
            return HTTP_INTERNAL_SERVER_ERROR;
        }
    }
    if (http_global_init() != 0) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s, "booking: libcurl cannot start");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    return OK;
}

static void booking_register_hooks(apr_pool_t *p)
{
    (void)p;
    ap_hook_post_config(booking_post_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_child_init(booking_child_init, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_handler(booking_handler, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_handler(webmodules_metrics_handler, NULL, NULL, APR_HOOK_MIDDLE);
    APR_REGISTER_OPTIONAL_FN(webmodules_metrics_booking);
}

module AP_MODULE_DECLARE_DATA booking_module = {STANDARD20_MODULE_STUFF,
                                                NULL,
                                                NULL,
                                                booking_create_server_conf,
                                                booking_merge_server_conf,
                                                booking_cmds,
                                                booking_register_hooks,
                                                AP_MODULE_FLAG_NONE};
