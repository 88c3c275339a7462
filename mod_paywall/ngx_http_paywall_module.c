
/*
 * ngx_http_paywall_module: nginx adapter of mod_paywall.
 * The gate runs in the access phase; whatever needs a store or Stripe runs as
 * a thread-pool task, so the event loop never waits on memcached, PostgreSQL
 * or the payment service. The header and body filters cut the teaser and
 * insert the structured data.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "cookie.h"
#include "http.h"
#include "paywall.h"
#include "paywall_filter.h"
#include "paywall_store.h"
#include "webmodules_metrics.h"
#include "webmodules_util.h"


#if !(NGX_THREADS)
#error ngx_http_paywall_module needs nginx built --with-threads
#endif


#define NGX_HTTP_PAYWALL_FORM_MAX     8192
#define NGX_HTTP_PAYWALL_TEASER_MAX   (64 * 1024)
#define NGX_HTTP_PAYWALL_TEASER       PAYWALL_FILTER_CTA_DEFAULT

#define NGX_HTTP_PAYWALL_OBSERVE      2    /* "paywall observe": decide, never deny */

#define NGX_HTTP_PAYWALL_CHECKOUT     1
#define NGX_HTTP_PAYWALL_PORTAL       2
#define NGX_HTTP_PAYWALL_WEBHOOK      3
#define NGX_HTTP_PAYWALL_EXPORT       4


/* paywall_user, paywall_email: the nginx variable that holds the value */

typedef struct {
    paywall_user_source            source;
    ngx_str_t                      variable;
    ngx_uint_t                     hash;
} ngx_http_paywall_source_t;


typedef struct {
    ngx_flag_t                     enable;
    ngx_str_t                      postgres;
    ngx_str_t                      memcached;
    ngx_int_t                      cache_ttl;
    ngx_int_t                      max_stale;
    ngx_http_paywall_source_t     *user;
    ngx_http_paywall_source_t     *email;
    paywall_require               *require;
    paywall_meter_config          *meter;
    ngx_int_t                      grace;
    ngx_int_t                      fail_mode;
    paywall_deny                  *deny;
    ngx_str_t                      marker;
    ngx_str_t                      teaser;
    paywall_crawlers              *crawlers;
    ngx_str_t                      structured_data;  /* the JSON-LD block */
    ngx_str_t                      secret;
    ngx_str_t                      stripe_key;
    ngx_str_t                      webhook_secret;
    ngx_str_t                      stripe_api;
    ngx_int_t                      stripe_timeout;
    paywall_plans                 *plans;
    ngx_str_t                      return_url;
    ngx_uint_t                     handler;          /* not inherited */
    ngx_str_t                      thread_pool_name;
    ngx_thread_pool_t             *thread_pool;

    paywall_store_config           store;
    paywall_rules                  rules;
    paywall_stripe_api             api;
    paywall_store                 *opened;  /* this process's, once found */
} ngx_http_paywall_loc_conf_t;


/* the body filter's state for one response */

typedef struct {
    paywall_filter                 engine;
    ngx_http_request_t            *request;
    ngx_http_paywall_loc_conf_t   *conf;
    ngx_buf_t                     *in;      /* the buffer being fed */
    ngx_chain_t                   *in_ref;  /* the last output link into it */
    ngx_chain_t                   *out;
    ngx_chain_t                  **last_out;
    ngx_chain_t                   *busy;
    ngx_chain_t                   *free;
    unsigned                       replace:1;
    unsigned                       teaser:1;
    unsigned                       finished:1;
} ngx_http_paywall_filter_ctx_t;


typedef struct ngx_http_paywall_export_s  ngx_http_paywall_export_t;


typedef struct {
    ngx_http_request_t            *request;
    ngx_http_paywall_loc_conf_t   *conf;     /* where the gate last applied */
    paywall_store                 *store;
    paywall_visit                  visit;
    paywall_result                 result;
    char                           err[256];
    ngx_http_paywall_filter_ctx_t *filter;
    ngx_http_paywall_export_t     *export;
    unsigned                       posted:1;
    unsigned                       done:1;   /* the gate decided */
    unsigned                       applied:1;
    unsigned                       teaser:1;
    unsigned                       whole:1;  /* asks for the whole document */
    unsigned                       private_set:1;
} ngx_http_paywall_ctx_t;


/* checkout, portal, webhook: one call to a store or to Stripe */

typedef struct {
    ngx_http_request_t            *request;
    ngx_http_paywall_loc_conf_t   *conf;
    ngx_uint_t                     kind;
    paywall_store                 *store;
    u_char                        *body;
    size_t                         body_len;
    ngx_fd_t                       body_fd;  /* NGX_INVALID_FILE: in memory */
    ngx_str_t                      signature;
    char                          *user;
    char                          *return_url;
    time_t                         now;
    paywall_checkout_request       checkout;
    paywall_webhook_result         webhook;
    paywall_stripe_result          stripe;
    ngx_uint_t                     failed;   /* an HTTP status, or 0 */
    char                           err[256];
} ngx_http_paywall_call_t;


struct ngx_http_paywall_export_s {
    ngx_http_request_t            *request;
    ngx_http_paywall_loc_conf_t   *conf;
    ngx_thread_task_t             *task;
    paywall_store                 *store;
    paywall_export                *export;
    char                          *date;      /* NULL: today */
    int                            bad_request;
    int                            rc;        /* of paywall_export_next */
    u_char                        *data;      /* the chunk, malloc'd */
    size_t                         len;
    size_t                         size;
    ngx_buf_t                      buf;
    ngx_chain_t                    out;
    char                           err[256];
    unsigned                       head:1;
    unsigned                       started:1;
};


typedef struct {
    const char                  *(*parse)(const char *value, long *out);
    long                           min;
    long                           max;
    const char                    *why;
} ngx_http_paywall_duration_t;


static ngx_int_t ngx_http_paywall_access_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_paywall_visit(ngx_http_request_t *r,
    ngx_http_paywall_loc_conf_t *plcf, paywall_visit *visit);
static void ngx_http_paywall_decide_thread(void *data, ngx_log_t *log);
static void ngx_http_paywall_decide_done(ngx_event_t *ev);
static void ngx_http_paywall_fail_open_or_closed(ngx_http_paywall_ctx_t *ctx);
static ngx_int_t ngx_http_paywall_apply(ngx_http_request_t *r,
    ngx_http_paywall_ctx_t *ctx, ngx_http_paywall_loc_conf_t *plcf);
static ngx_int_t ngx_http_paywall_set_cookie(ngx_http_request_t *r,
    paywall_result *result);
static ngx_int_t ngx_http_paywall_redirect(ngx_http_request_t *r,
    const char *url);
static ngx_int_t ngx_http_paywall_whole_response(ngx_http_request_t *r);
static ngx_http_paywall_ctx_t *ngx_http_paywall_get_ctx(ngx_http_request_t *r);
static ngx_http_paywall_ctx_t *ngx_http_paywall_create_ctx(
    ngx_http_request_t *r);
static void ngx_http_paywall_cleanup(void *data);

static ngx_int_t ngx_http_paywall_header_filter(ngx_http_request_t *r);
static ngx_int_t ngx_http_paywall_body_filter(ngx_http_request_t *r,
    ngx_chain_t *in);
static int ngx_http_paywall_emit(void *data, const char *p, size_t len);
static ngx_int_t ngx_http_paywall_special_buf(ngx_http_paywall_filter_ctx_t *f,
    ngx_buf_t *in);
static ngx_int_t ngx_http_paywall_filter_output(ngx_http_request_t *r,
    ngx_http_paywall_filter_ctx_t *f);
static ngx_int_t ngx_http_paywall_replace_body(ngx_http_request_t *r,
    ngx_http_paywall_filter_ctx_t *f, ngx_chain_t *in);

static ngx_int_t ngx_http_paywall_content_handler(ngx_http_request_t *r);
static void ngx_http_paywall_body_read(ngx_http_request_t *r);
static ngx_int_t ngx_http_paywall_body_refused(ngx_http_request_t *r,
    ngx_uint_t kind, ngx_int_t status);
static ngx_int_t ngx_http_paywall_body(ngx_http_request_t *r,
    ngx_http_paywall_call_t *call, size_t max);
static ngx_int_t ngx_http_paywall_form(ngx_http_request_t *r,
    ngx_http_paywall_call_t *call);
static ngx_int_t ngx_http_paywall_post_call(ngx_http_request_t *r,
    ngx_http_paywall_call_t *call);
static void ngx_http_paywall_call_thread(void *data, ngx_log_t *log);
static void ngx_http_paywall_call_done(ngx_event_t *ev);
static ngx_int_t ngx_http_paywall_stripe_answer(ngx_http_request_t *r,
    paywall_stripe_result *result);

static ngx_int_t ngx_http_paywall_export_handler(ngx_http_request_t *r);
static void ngx_http_paywall_export_thread(void *data, ngx_log_t *log);
static void ngx_http_paywall_export_done(ngx_event_t *ev);
static void ngx_http_paywall_export_start(ngx_http_request_t *r,
    ngx_http_paywall_export_t *ex);
static void ngx_http_paywall_export_send(ngx_http_request_t *r,
    ngx_http_paywall_export_t *ex);
static void ngx_http_paywall_export_wait(ngx_http_request_t *r,
    ngx_http_paywall_export_t *ex);
static void ngx_http_paywall_export_writer(ngx_http_request_t *r);
static ngx_int_t ngx_http_paywall_export_post(ngx_http_request_t *r,
    ngx_http_paywall_export_t *ex);
static void ngx_http_paywall_export_close(ngx_http_paywall_export_t *ex);
static void ngx_http_paywall_export_close_thread(void *data, ngx_log_t *log);
static void ngx_http_paywall_export_closed(ngx_event_t *ev);

static ngx_int_t ngx_http_paywall_text(ngx_http_request_t *r,
    ngx_uint_t status, const char *message);
static ngx_int_t ngx_http_paywall_page(ngx_http_request_t *r,
    ngx_uint_t status, const char *message);
static char *ngx_http_paywall_set_enable(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static void ngx_http_paywall_drop_header(ngx_http_request_t *r,
    const char *name);
static ngx_int_t ngx_http_paywall_source_value(ngx_http_request_t *r,
    ngx_http_paywall_source_t *source, ngx_str_t *value);
static char *ngx_http_paywall_variable_text(ngx_http_request_t *r,
    ngx_str_t *name, ngx_uint_t hash);
static char *ngx_http_paywall_form_get(ngx_pool_t *pool, ngx_str_t *form,
    const char *name);
static char *ngx_http_paywall_absolute(ngx_http_request_t *r, ngx_str_t *url);
static char *ngx_http_paywall_with_query(ngx_pool_t *pool, const char *url,
    const char *query);

static ngx_int_t ngx_http_paywall_access_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_paywall_plan_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_paywall_meter_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_paywall_csrf_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_paywall_add_variables(ngx_conf_t *cf);

static void *ngx_http_paywall_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_paywall_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static char *ngx_http_paywall_duration(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_paywall_invalid(ngx_conf_t *cf, ngx_str_t *value,
    const char *why);
static char *ngx_http_paywall_source(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_paywall_make_source(ngx_conf_t *cf, ngx_str_t *arg,
    ngx_http_paywall_source_t **out);
static char *ngx_http_paywall_require(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_paywall_meter(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_paywall_fail_mode(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_paywall_deny(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_paywall_marker(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_paywall_teaser_file(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_paywall_crawler_ranges(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static void ngx_http_paywall_crawlers_cleanup(void *data);
static char *ngx_http_paywall_structured_data(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_paywall_secret_file(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_paywall_stripe_api(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_paywall_plan(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_paywall_return_url(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_paywall_handler(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_int_t ngx_http_paywall_init(ngx_conf_t *cf);
static ngx_int_t ngx_http_paywall_init_module(ngx_cycle_t *cycle);
static void ngx_http_paywall_exit_process(ngx_cycle_t *cycle);


static ngx_http_paywall_duration_t  ngx_http_paywall_cache_ttl_bounds = {
    paywall_parse_duration, 0, 60,
    "must be at most 60s: entitlement changes must show within seconds"
};

static ngx_http_paywall_duration_t  ngx_http_paywall_max_stale_bounds = {
    paywall_parse_duration, 0, LONG_MAX, NULL
};

static ngx_http_paywall_duration_t  ngx_http_paywall_grace_bounds = {
    paywall_parse_grace, 0, LONG_MAX, NULL
};

static ngx_http_paywall_duration_t  ngx_http_paywall_timeout_bounds = {
    paywall_parse_duration, 1, 60, "must be a duration from 1s to 60s"
};


static ngx_command_t  ngx_http_paywall_commands[] = {

    { ngx_string("paywall"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_paywall_set_enable,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("paywall_postgres"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_paywall_loc_conf_t, postgres),
      NULL },

    { ngx_string("paywall_memcached"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_paywall_loc_conf_t, memcached),
      NULL },

    { ngx_string("paywall_cache_ttl"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_paywall_duration,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_paywall_loc_conf_t, cache_ttl),
      &ngx_http_paywall_cache_ttl_bounds },

    { ngx_string("paywall_cache_max_stale"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_paywall_duration,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_paywall_loc_conf_t, max_stale),
      &ngx_http_paywall_max_stale_bounds },

    { ngx_string("paywall_user"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_paywall_source,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_paywall_loc_conf_t, user),
      NULL },

    { ngx_string("paywall_email"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_paywall_source,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_paywall_loc_conf_t, email),
      NULL },

    { ngx_string("paywall_require"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_paywall_require,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("paywall_meter"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE2,
      ngx_http_paywall_meter,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("paywall_grace"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_paywall_duration,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_paywall_loc_conf_t, grace),
      &ngx_http_paywall_grace_bounds },

    { ngx_string("paywall_fail_mode"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_paywall_fail_mode,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("paywall_deny"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE12,
      ngx_http_paywall_deny,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("paywall_teaser_marker"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_paywall_marker,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("paywall_teaser_file"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_paywall_teaser_file,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("paywall_crawler_ranges"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_paywall_crawler_ranges,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("paywall_structured_data"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_paywall_structured_data,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("paywall_secret_file"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_paywall_secret_file,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_paywall_loc_conf_t, secret),
      (void *) PAYWALL_SECRET_MIN },

    { ngx_string("paywall_stripe_key_file"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_paywall_secret_file,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_paywall_loc_conf_t, stripe_key),
      (void *) 8 },

    { ngx_string("paywall_stripe_webhook_secret_file"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_paywall_secret_file,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_paywall_loc_conf_t, webhook_secret),
      (void *) 8 },

    { ngx_string("paywall_stripe_api"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_paywall_stripe_api,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("paywall_stripe_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_paywall_duration,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_paywall_loc_conf_t, stripe_timeout),
      &ngx_http_paywall_timeout_bounds },

    { ngx_string("paywall_plan"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE23,
      ngx_http_paywall_plan,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("paywall_return_url"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_paywall_return_url,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("paywall_thread_pool"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_paywall_loc_conf_t, thread_pool_name),
      NULL },

    { ngx_string("paywall_checkout"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_paywall_handler,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_PAYWALL_CHECKOUT,
      NULL },

    { ngx_string("paywall_portal"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_paywall_handler,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_PAYWALL_PORTAL,
      NULL },

    { ngx_string("paywall_stripe_webhook"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_paywall_handler,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_PAYWALL_WEBHOOK,
      NULL },

    { ngx_string("paywall_export"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_paywall_handler,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_PAYWALL_EXPORT,
      NULL },

    { ngx_string("webmodules_metrics"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_webmodules_metrics,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_paywall_module_ctx = {
    ngx_http_paywall_add_variables,        /* preconfiguration */
    ngx_http_paywall_init,                 /* postconfiguration */

    NULL,                                  /* create main configuration */
    NULL,                                  /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_paywall_create_loc_conf,      /* create location configuration */
    ngx_http_paywall_merge_loc_conf        /* merge location configuration */
};


ngx_module_t  ngx_http_paywall_module = {
    NGX_MODULE_V1,
    &ngx_http_paywall_module_ctx,          /* module context */
    ngx_http_paywall_commands,             /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    ngx_http_paywall_init_module,          /* init module */
    NULL,                                  /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_paywall_exit_process,         /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_http_output_header_filter_pt  ngx_http_next_header_filter;
static ngx_http_output_body_filter_pt    ngx_http_next_body_filter;


static ngx_http_variable_t  ngx_http_paywall_vars[] = {

    { ngx_string("paywall_access"), NULL, ngx_http_paywall_access_variable,
      0, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("paywall_plan"), NULL, ngx_http_paywall_plan_variable,
      0, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("paywall_meter_remaining"), NULL,
      ngx_http_paywall_meter_variable, 0, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("paywall_csrf_token"), NULL, ngx_http_paywall_csrf_variable,
      0, 0, 0 },

      ngx_http_null_variable
};


/* mod_promo's variables, looked up by name: that module may not be loaded */

static ngx_str_t   ngx_http_paywall_coupon_name =
    ngx_string("promo_stripe_coupon");
static ngx_str_t   ngx_http_paywall_promo_name = ngx_string("promo_code");
static ngx_uint_t  ngx_http_paywall_coupon_hash;
static ngx_uint_t  ngx_http_paywall_promo_hash;

static paywall_plans  ngx_http_paywall_no_plans;


/* ------------------------------------------------------------- the gate */

static ngx_int_t
ngx_http_paywall_access_handler(ngx_http_request_t *r)
{
    ngx_thread_task_t            *task;
    ngx_http_paywall_ctx_t       *ctx, **tctx;
    ngx_http_paywall_loc_conf_t  *plcf;

    if (r != r->main) {
        return NGX_DECLINED;
    }

    plcf = ngx_http_get_module_loc_conf(r, ngx_http_paywall_module);

    ctx = ngx_http_paywall_get_ctx(r);

    if (ctx && ctx->posted && !ctx->done) {
        return NGX_DONE;
    }

    /* the handlers (checkout, webhook...) are not content to gate */

    if (!plcf->enable || plcf->handler) {
        return NGX_DECLINED;
    }

    /* one decision per request: an internal redirect must not meter twice */

    if (ctx && ctx->done) {
        return ngx_http_paywall_apply(r, ctx, plcf);
    }

    if (ctx == NULL) {
        ctx = ngx_http_paywall_create_ctx(r);
        if (ctx == NULL) {
            return NGX_ERROR;
        }
    }

    ctx->conf = plcf;

    if (ngx_http_paywall_visit(r, plcf, &ctx->visit) != NGX_OK) {
        return NGX_ERROR;
    }

    /* crawlers, anonymous visitors and fresh entitlements: no thread */

    if (plcf->opened == NULL) {
        plcf->opened = paywall_store_find(&plcf->store);
    }

    ctx->store = plcf->opened;

    if (paywall_decide_cached(ctx->store, &plcf->rules, &ctx->visit,
                              &ctx->result))
    {
        ctx->done = 1;
        return ngx_http_paywall_apply(r, ctx, plcf);
    }

    task = ngx_thread_task_alloc(r->pool, sizeof(ngx_http_paywall_ctx_t *));
    if (task == NULL) {
        return NGX_ERROR;
    }

    tctx = task->ctx;
    *tctx = ctx;

    task->handler = ngx_http_paywall_decide_thread;
    task->event.handler = ngx_http_paywall_decide_done;
    task->event.data = r;

    if (ngx_thread_task_post(plcf->thread_pool, task) != NGX_OK) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "paywall: thread pool queue full, "
                      "paywall_fail_mode applies");
        ngx_http_paywall_fail_open_or_closed(ctx);
        ctx->done = 1;
        return ngx_http_paywall_apply(r, ctx, plcf);
    }

    ctx->posted = 1;
    r->main->blocked++;
    r->aio = 1;

    return NGX_DONE;
}


static ngx_int_t
ngx_http_paywall_visit(ngx_http_request_t *r,
    ngx_http_paywall_loc_conf_t *plcf, paywall_visit *visit)
{
    size_t             len;
    ngx_str_t          user;
    const char        *value;
#if (nginx_version >= 1023000)
    ngx_table_elt_t   *h;
#else
    ngx_uint_t         i;
    ngx_table_elt_t  **hh, *h;
#endif

    ngx_memzero(visit, sizeof(paywall_visit));

    visit->now = ngx_time();

    if (ngx_http_paywall_source_value(r, plcf->user, &user) != NGX_OK) {
        return NGX_ERROR;
    }

    if (user.len) {
        visit->user_id = ngx_http_webmodules_cstr(r->pool, user.data, user.len);
        if (visit->user_id == NULL) {
            return NGX_ERROR;
        }

        visit->user_id_len = user.len;
    }

    visit->client_addr = ngx_http_webmodules_cstr(r->pool,
                                               r->connection->addr_text.data,
                                               r->connection->addr_text.len);
    if (visit->client_addr == NULL) {
        return NGX_ERROR;
    }

    /* the first paywall_meter cookie of any Cookie header */

#if (nginx_version >= 1023000)
    for (h = r->headers_in.cookie; h; h = h->next) {
#else
    hh = r->headers_in.cookies.elts;

    for (i = 0; i < r->headers_in.cookies.nelts; i++) {
        h = hh[i];
#endif
        if (cookie_find((char *) h->value.data, h->value.len,
                        PAYWALL_METER_COOKIE_NAME,
                        sizeof(PAYWALL_METER_COOKIE_NAME) - 1, &value, &len))
        {
            if (len <= PAYWALL_METER_COOKIE_MAX) {
                visit->meter_cookie = value;
                visit->meter_cookie_len = len;
            }

            break;
        }
    }

    return NGX_OK;
}


static void
ngx_http_paywall_decide_thread(void *data, ngx_log_t *log)
{
    ngx_http_paywall_ctx_t  *ctx = *(ngx_http_paywall_ctx_t **) data;

    (void) log;

    /* the first task of a process opens the store (it may migrate) */

    if (ctx->store == NULL) {
        ctx->store = paywall_store_get(&ctx->conf->store, ctx->err,
                                       sizeof(ctx->err));
        if (ctx->store == NULL) {
            return;
        }
    }

    paywall_decide(ctx->store, &ctx->conf->rules, &ctx->visit, &ctx->result);
}


static void
ngx_http_paywall_decide_done(ngx_event_t *ev)
{
    ngx_connection_t        *c;
    ngx_http_request_t      *r;
    ngx_http_paywall_ctx_t  *ctx;

    r = ev->data;
    c = r->connection;

    ngx_http_set_log_request(c->log, r);

    ctx = ngx_http_paywall_get_ctx(r);

    r->main->blocked--;
    r->aio = 0;

    if (ctx == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        ngx_http_run_posted_requests(c);
        return;
    }

    ctx->done = 1;

    if (ctx->store) {
        ctx->conf->opened = ctx->store;

    } else {
        ngx_log_error(NGX_LOG_ERR, c->log, 0,
                      "cannot open the paywall's stores: %s", ctx->err);
        ngx_http_paywall_fail_open_or_closed(ctx);
    }

    if (c->error) {
        /* the client went away meanwhile: let nginx finish the request */
        ngx_http_finalize_request(r, NGX_HTTP_CLIENT_CLOSED_REQUEST);

    } else {
        /* back into the phases: the access handler applies the decision */
        r->write_event_handler(r);
    }

    ngx_http_run_posted_requests(c);
}


static void
ngx_http_paywall_fail_open_or_closed(ngx_http_paywall_ctx_t *ctx)
{
    if (ctx->conf->rules.fail_mode == PAYWALL_FAIL_OPEN) {
        ctx->result.access = PAYWALL_ACCESS_GRANTED;
        ctx->result.reason = "stores unreachable: fail mode open";

    } else {
        ctx->result.access = PAYWALL_ACCESS_DENIED;
        ctx->result.reason = "stores unreachable: fail mode closed";
    }
}


static ngx_int_t
ngx_http_paywall_apply(ngx_http_request_t *r, ngx_http_paywall_ctx_t *ctx,
    ngx_http_paywall_loc_conf_t *plcf)
{
    ngx_uint_t       level;
    paywall_result  *result;

    result = &ctx->result;

    if (!ctx->applied) {
        ctx->applied = 1;

        if (result->note[0]) {
            level = result->note_is_error ? NGX_LOG_ERR : NGX_LOG_NOTICE;
            ngx_log_error(level, r->connection->log, 0, "%s", result->note);
        }

        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "paywall: %s (%s)", paywall_access_name(result->access),
                       result->reason ? result->reason : "");

        if (ctx->visit.user_id
            && !paywall_user_id_valid(ctx->visit.user_id,
                                      ctx->visit.user_id_len))
        {
            ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                          "paywall: user id from %s refused: not 1 to %d "
                          "of [A-Za-z0-9._@:+-]",
                          plcf->user->source.name, PAYWALL_USER_ID_MAX);
        }

        if (result->meter_cookie[0]
            && ngx_http_paywall_set_cookie(r, result) != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    /* observed, not gated: the variables are all that was asked for */

    if (plcf->enable == NGX_HTTP_PAYWALL_OBSERVE) {
        return NGX_DECLINED;
    }

    /* the filters follow the last gated location of the request */

    ctx->conf = plcf;

    /* what one visitor may read is not what the next one may */

    if (!ctx->private_set) {
        ctx->private_set = 1;

        if (ngx_http_webmodules_add_header(r, "Cache-Control",
                                        (u_char *) "private",
                                        sizeof("private") - 1)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    if (result->access != PAYWALL_ACCESS_DENIED) {
        return NGX_DECLINED;
    }

    switch (plcf->deny->kind) {

    case PAYWALL_DENY_REDIRECT:
        return ngx_http_paywall_redirect(r, plcf->deny->url);

    case PAYWALL_DENY_TEASER:
        ctx->teaser = 1;

        if (!ctx->whole && ngx_http_paywall_whole_response(r) != NGX_OK) {
            return NGX_ERROR;
        }

        ctx->whole = 1;

        /*
         * declined, not NGX_OK: with "satisfy any", NGX_OK would skip
         * the other access checks
         */

        return NGX_DECLINED;

    default: /* PAYWALL_DENY_STATUS */
        return plcf->deny->status;
    }
}


static ngx_int_t
ngx_http_paywall_set_cookie(ngx_http_request_t *r, paywall_result *result)
{
    size_t       len;
    u_char      *p;
    ngx_uint_t   secure;

    secure = 0;

#if (NGX_HTTP_SSL)
    secure = (r->connection->ssl != NULL);
#endif

    len = sizeof(PAYWALL_METER_COOKIE_NAME "=") - 1
          + ngx_strlen(result->meter_cookie)
          + sizeof("; Path=/; Max-Age=") - 1 + NGX_TIME_T_LEN
          + sizeof("; HttpOnly; SameSite=Lax; Secure") - 1;

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    len = ngx_snprintf(p, len, "%s=%s; Path=/; Max-Age=%l; HttpOnly; "
                       "SameSite=Lax%s", PAYWALL_METER_COOKIE_NAME,
                       result->meter_cookie, result->meter_cookie_max_age,
                       secure ? "; Secure" : "")
          - p;

    return ngx_http_webmodules_add_header(r, "Set-Cookie", p, len);
}


static void
ngx_http_paywall_drop_header(ngx_http_request_t *r, const char *name)
{
    size_t            len;
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    len = ngx_strlen(name);
    part = &r->headers_out.headers.part;
    h = part->elts;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                return;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].hash && h[i].key.len == len
            && ngx_strncasecmp(h[i].key.data, (u_char *) name, len) == 0)
        {
            h[i].hash = 0;
        }
    }
}


static ngx_int_t
ngx_http_paywall_redirect(ngx_http_request_t *r, const char *url)
{
    char             *location;
    ngx_str_t        *uri;
    ngx_table_elt_t  *h;

    uri = &r->main->unparsed_uri;

    /* the same bytes as Apache's: one encoder for both */

    location = paywall_deny_location(url, (const char *) uri->data, uri->len);
    if (location == NULL) {
        return NGX_ERROR;
    }

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        free(location);
        return NGX_ERROR;
    }

    h->hash = 1;
#if (nginx_version >= 1023000)
    h->next = NULL;
#endif
    ngx_str_set(&h->key, "Location");
    h->value.len = ngx_strlen(location);
    h->value.data = ngx_pnalloc(r->pool, h->value.len);
    if (h->value.data == NULL) {
        free(location);
        return NGX_ERROR;
    }

    ngx_memcpy(h->value.data, location, h->value.len);
    free(location);

    ngx_http_clear_location(r);
    r->headers_out.location = h;

    if (ngx_http_webmodules_add_header(r, "Cache-Control",
                                    (u_char *) "no-store",
                                    sizeof("no-store") - 1)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_HTTP_MOVED_TEMPORARILY;
}


/*
 * A teaser is cut from the whole, uncompressed document: the headers that
 * would make a backend answer with a range or compressed are emptied in
 * place (an empty Accept-Encoding asks for no coding), since request header
 * lists have no removal and other fields point into them.
 */

static ngx_int_t
ngx_http_paywall_whole_response(ngx_http_request_t *r)
{
    ngx_uint_t        i, n;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h, *copy;

    static ngx_str_t  names[] = {
        ngx_string("range"),
        ngx_string("if-range"),
        ngx_string("accept-encoding"),
        ngx_string("if-none-match"),
        ngx_string("if-modified-since")
    };

    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        for (n = 0; n < sizeof(names) / sizeof(ngx_str_t); n++) {
            if (h[i].key.len != names[n].len
                || ngx_strncasecmp(h[i].key.data, names[n].data,
                                   names[n].len) != 0)
            {
                continue;
            }

#if (NGX_HTTP_GZIP || NGX_HTTP_HEADERS)
            if (&h[i] == r->headers_in.accept_encoding) {

                /* kept for the gzip filter, which compresses what goes out */

                copy = ngx_palloc(r->pool, sizeof(ngx_table_elt_t));
                if (copy == NULL) {
                    return NGX_ERROR;
                }

                *copy = h[i];
                r->headers_in.accept_encoding = copy;
            }
#else
            (void) copy;
#endif

            ngx_str_set(&h[i].value, "");
        }
    }

    r->headers_in.range = NULL;
    r->headers_in.if_range = NULL;
    r->headers_in.if_none_match = NULL;
    r->headers_in.if_modified_since = NULL;

#if (NGX_HTTP_GZIP)
    /* no gzip_static either; the header filter lets gzip decide again */
    r->gzip_tested = 1;
    r->gzip_ok = 0;
#endif

    return NGX_OK;
}


static ngx_http_paywall_ctx_t *
ngx_http_paywall_get_ctx(ngx_http_request_t *r)
{
    ngx_pool_cleanup_t      *cln;
    ngx_http_paywall_ctx_t  *ctx;

    r = r->main;

    ctx = ngx_http_get_module_ctx(r, ngx_http_paywall_module);

    if (ctx == NULL && (r->internal || r->filter_finalize)) {

        /*
         * the module context may be either cleared by an internal
         * redirect or never set: look for the cleanup set with it
         */

        for (cln = r->pool->cleanup; cln; cln = cln->next) {
            if (cln->handler == ngx_http_paywall_cleanup) {
                ctx = cln->data;
                ngx_http_set_ctx(r, ctx, ngx_http_paywall_module);
                break;
            }
        }
    }

    return ctx;
}


static ngx_http_paywall_ctx_t *
ngx_http_paywall_create_ctx(ngx_http_request_t *r)
{
    ngx_pool_cleanup_t      *cln;
    ngx_http_paywall_ctx_t  *ctx;

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_paywall_ctx_t));
    if (ctx == NULL) {
        return NULL;
    }

    ctx->request = r;

    /* a cleanup, not only the module ctx: it survives internal redirects */

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NULL;
    }

    cln->handler = ngx_http_paywall_cleanup;
    cln->data = ctx;
    ngx_http_set_ctx(r, ctx, ngx_http_paywall_module);

    return ctx;
}


static void
ngx_http_paywall_cleanup(void *data)
{
    ngx_http_paywall_ctx_t  *ctx = data;

    ngx_http_paywall_export_t  *ex;

    ex = ctx->export;

    if (ex == NULL) {
        return;
    }

    /* the client went away during the export: no task is running now */

    if (ex->export) {
        ngx_http_paywall_export_close(ex);
    }

    if (ex->data) {
        ngx_free(ex->data);
        ex->data = NULL;
    }
}


/* ---------------------------------------------------------- the filters */

static ngx_uint_t
ngx_http_paywall_is_html(ngx_http_request_t *r)
{
    ngx_str_t  *type;

    type = &r->headers_out.content_type;

    return type->len >= sizeof("text/html") - 1
           && ngx_strncasecmp(type->data, (u_char *) "text/html",
                              sizeof("text/html") - 1) == 0
           && (type->len == sizeof("text/html") - 1
               || type->data[sizeof("text/html") - 1] == ';'
               || type->data[sizeof("text/html") - 1] == ' ');
}


static ngx_int_t
ngx_http_paywall_header_filter(ngx_http_request_t *r)
{
    char                            err[256];
    ngx_uint_t                      html, encoded, teaser;
    paywall_filter_config           fc;
    ngx_http_paywall_ctx_t         *ctx;
    ngx_http_paywall_filter_ctx_t  *f;
    ngx_http_paywall_loc_conf_t    *plcf;

    if (r != r->main) {
        return ngx_http_next_header_filter(r);
    }

    ctx = ngx_http_paywall_get_ctx(r);

    if (ctx == NULL || !ctx->done || ctx->filter) {
        return ngx_http_next_header_filter(r);
    }

#if (NGX_HTTP_GZIP)
    if (ctx->whole) {
        /* the content handler ran without gzip_static: gzip may compress */
        r->gzip_tested = 0;
    }
#endif

    plcf = ctx->conf;
    teaser = ctx->teaser;

    if (r->headers_out.status != NGX_HTTP_OK
        || r->header_only
        || r->method == NGX_HTTP_HEAD
        || (!teaser && plcf->structured_data.len == 0))
    {
        return ngx_http_next_header_filter(r);
    }

    html = ngx_http_paywall_is_html(r);
    encoded = r->headers_out.content_encoding
              && r->headers_out.content_encoding->value.len;

    if (!teaser && (!html || encoded)) {
        return ngx_http_next_header_filter(r);
    }

    f = ngx_pcalloc(r->pool, sizeof(ngx_http_paywall_filter_ctx_t));
    if (f == NULL) {
        return NGX_ERROR;
    }

    f->request = r;
    f->conf = plcf;
    f->teaser = teaser;
    f->last_out = &f->out;

    if (teaser && (!html || encoded)) {

        /*
         * a PDF, a video or a compressed page cannot be cut:
         * the denied visitor gets the call to action alone
         */

        f->replace = 1;

        r->headers_out.status = NGX_HTTP_FORBIDDEN;
        r->headers_out.status_line.len = 0;

        ngx_str_set(&r->headers_out.content_type, "text/html");
        r->headers_out.content_type_len = sizeof("text/html") - 1;
        r->headers_out.content_type_lowcase = NULL;
        ngx_str_set(&r->headers_out.charset, "utf-8");

        if (r->headers_out.content_encoding) {
            r->headers_out.content_encoding->hash = 0;
            r->headers_out.content_encoding = NULL;
        }

        ngx_http_clear_content_length(r);
        r->headers_out.content_length_n = plcf->teaser.len;

        /* the fragment must not be saved as "issue.pdf" */

        ngx_http_paywall_drop_header(r, "Content-Disposition");

    } else {
        ngx_memzero(&fc, sizeof(paywall_filter_config));

        if (plcf->structured_data.len) {
            fc.head_insert = (char *) plcf->structured_data.data;
            fc.head_insert_len = plcf->structured_data.len;
        }

        if (teaser) {
            fc.marker = (char *) plcf->marker.data;
            fc.marker_len = plcf->marker.len;
            fc.cta = (char *) plcf->teaser.data;
            fc.cta_len = plcf->teaser.len;

            fc.hold = ngx_palloc(r->pool, PAYWALL_FILTER_HOLD_DEFAULT);
            if (fc.hold == NULL) {
                return NGX_ERROR;
            }

            fc.hold_size = PAYWALL_FILTER_HOLD_DEFAULT;
        }

        if (paywall_filter_init(&f->engine, &fc, err, sizeof(err)) != 0) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "paywall filter: %s", err);
            return NGX_ERROR;
        }

        ngx_http_clear_content_length(r);
        r->filter_need_in_memory = 1;
    }

    ngx_http_clear_accept_ranges(r);
    ngx_http_clear_last_modified(r);
    ngx_http_clear_etag(r);
    r->allow_ranges = 0;

    ctx->filter = f;

    return ngx_http_next_header_filter(r);
}


/*
 * Buffers: every input buffer is fed to the engine whole. What the engine
 * emits is either a piece of that very buffer, which the output references
 * (the last such reference carries the input as its shadow, and the input is
 * marked consumed only when that reference has been sent, as the sub filter
 * does), or the head insert or call to action, which live as long as the
 * configuration, or bytes of the engine's own state or hold buffer, which are
 * copied (they are valid only until the next call into the engine). An input
 * buffer nothing references is marked consumed at once: the engine has
 * copied what it keeps.
 */

static ngx_int_t
ngx_http_paywall_body_filter(ngx_http_request_t *r, ngx_chain_t *in)
{
    ngx_buf_t                      *b;
    ngx_uint_t                      status;
    ngx_chain_t                    *cl;
    ngx_http_paywall_ctx_t         *ctx;
    ngx_http_paywall_filter_ctx_t  *f;

    if (r != r->main) {
        return ngx_http_next_body_filter(r, in);
    }

    ctx = ngx_http_paywall_get_ctx(r);

    if (ctx == NULL || ctx->filter == NULL) {
        return ngx_http_next_body_filter(r, in);
    }

    f = ctx->filter;

    if (f->replace) {
        return ngx_http_paywall_replace_body(r, f, in);
    }

    if (in == NULL && f->busy == NULL) {
        return ngx_http_next_body_filter(r, in);
    }

    for (cl = in; cl; cl = cl->next) {
        b = cl->buf;

        if (!f->finished && ngx_buf_in_memory(b) && b->last > b->pos) {
            f->in = b;
            f->in_ref = NULL;

            if (paywall_filter_feed(&f->engine, (char *) b->pos,
                                    b->last - b->pos, ngx_http_paywall_emit,
                                    f)
                != 0)
            {
                return NGX_ERROR;
            }

            f->in = NULL;

            if (f->in_ref) {
                f->in_ref->buf->shadow = b;

            } else {
                b->pos = b->last;

                if (b->in_file) {
                    b->file_pos = b->file_last;
                }
            }

            /* after the cut the rest of the response cannot matter */

            if (paywall_filter_done(&f->engine)) {
                if (paywall_filter_finish(&f->engine, ngx_http_paywall_emit,
                                          f)
                    != 0)
                {
                    return NGX_ERROR;
                }

                f->finished = 1;
            }

        } else if (!f->finished && ngx_buf_size(b)) {

            /* r->filter_need_in_memory has the copy filter read files */

            ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                          "paywall filter: a body buffer not in memory");
            return NGX_ERROR;

        } else {
            b->pos = b->last;

            if (b->in_file) {
                b->file_pos = b->file_last;
            }
        }

        if (b->last_buf) {
            if (!f->finished) {
                if (paywall_filter_finish(&f->engine, ngx_http_paywall_emit,
                                          f)
                    != 0)
                {
                    return NGX_ERROR;
                }

                f->finished = 1;
            }

            status = paywall_filter_get_status(&f->engine);

            if (f->teaser && status != PAYWALL_FILTER_CUT) {
                ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                              "paywall teaser: %s: the whole page was "
                              "withheld (put the marker in the first %d KB)",
                              paywall_filter_status_name(status),
                              PAYWALL_FILTER_HOLD_DEFAULT / 1024);
            }
        }

        if (b->last_buf || b->flush) {
            if (ngx_http_paywall_special_buf(f, b) != NGX_OK) {
                return NGX_ERROR;
            }
        }
    }

    if (f->out == NULL && f->busy == NULL) {
        return NGX_OK;
    }

    return ngx_http_paywall_filter_output(r, f);
}


static int
ngx_http_paywall_emit(void *data, const char *p, size_t len)
{
    ngx_http_paywall_filter_ctx_t  *f = data;

    u_char       *d;
    ngx_buf_t    *b, *in;
    ngx_str_t    *insert, *cta;
    ngx_chain_t  *cl;

    d = (u_char *) p;
    in = f->in;
    insert = &f->conf->structured_data;
    cta = &f->conf->teaser;

    cl = ngx_chain_get_free_buf(f->request->pool, &f->free);
    if (cl == NULL) {
        return -1;
    }

    b = cl->buf;

    if (in && d >= in->pos && d + len <= in->last) {

        /* a piece of the input buffer: referenced */

        ngx_memcpy(b, in, sizeof(ngx_buf_t));

        b->pos = d;
        b->last = d + len;
        b->shadow = NULL;
        b->last_buf = 0;
        b->last_in_chain = 0;
        b->flush = 0;
        b->recycled = 0;

        if (b->in_file) {
            b->file_last = b->file_pos + (b->last - in->pos);
            b->file_pos += b->pos - in->pos;
        }

        f->in_ref = cl;

    } else if ((d >= insert->data && d + len <= insert->data + insert->len)
               || (d >= cta->data && d + len <= cta->data + cta->len))
    {
        /* configuration memory: referenced */

        ngx_memzero(b, sizeof(ngx_buf_t));

        b->pos = d;
        b->last = d + len;
        b->memory = 1;

    } else {

        /* the engine's state or hold buffer: copied */

        ngx_memzero(b, sizeof(ngx_buf_t));

        b->start = ngx_pnalloc(f->request->pool, len);
        if (b->start == NULL) {
            return -1;
        }

        b->pos = b->start;
        b->last = ngx_cpymem(b->start, d, len);
        b->end = b->last;
        b->temporary = 1;
    }

    cl->next = NULL;
    *f->last_out = cl;
    f->last_out = &cl->next;

    return 0;
}


static ngx_int_t
ngx_http_paywall_special_buf(ngx_http_paywall_filter_ctx_t *f, ngx_buf_t *in)
{
    ngx_buf_t    *b;
    ngx_chain_t  *cl;

    cl = ngx_chain_get_free_buf(f->request->pool, &f->free);
    if (cl == NULL) {
        return NGX_ERROR;
    }

    b = cl->buf;

    ngx_memzero(b, sizeof(ngx_buf_t));

    b->last_buf = in->last_buf;
    b->last_in_chain = in->last_in_chain;
    b->flush = in->flush;
    b->sync = 1;

    cl->next = NULL;
    *f->last_out = cl;
    f->last_out = &cl->next;

    return NGX_OK;
}


static ngx_int_t
ngx_http_paywall_filter_output(ngx_http_request_t *r,
    ngx_http_paywall_filter_ctx_t *f)
{
    ngx_int_t     rc;
    ngx_buf_t    *b;
    ngx_chain_t  *cl;

    rc = ngx_http_next_body_filter(r, f->out);

    if (f->busy == NULL) {
        f->busy = f->out;

    } else {
        for (cl = f->busy; cl->next; cl = cl->next) { /* void */ }
        cl->next = f->out;
    }

    f->out = NULL;
    f->last_out = &f->out;

    while (f->busy) {

        cl = f->busy;
        b = cl->buf;

        if (ngx_buf_size(b) != 0) {
            break;
        }

        /* sent: the input buffer it pointed into is free again */

        if (b->shadow) {
            b->shadow->pos = b->shadow->last;

            if (b->shadow->in_file) {
                b->shadow->file_pos = b->shadow->file_last;
            }

            b->shadow = NULL;
        }

        f->busy = cl->next;

        if (ngx_buf_in_memory(b) || b->in_file) {
            /* add data bufs only to the free buf chain */

            cl->next = f->free;
            f->free = cl;
        }
    }

    return rc;
}


static ngx_int_t
ngx_http_paywall_replace_body(ngx_http_request_t *r,
    ngx_http_paywall_filter_ctx_t *f, ngx_chain_t *in)
{
    ngx_buf_t    *b;
    ngx_uint_t    last;
    ngx_chain_t  *cl, out;

    last = 0;

    /* the original body is dropped as it comes */

    for (cl = in; cl; cl = cl->next) {
        b = cl->buf;

        b->pos = b->last;

        if (b->in_file) {
            b->file_pos = b->file_last;
        }

        if (b->last_buf) {
            last = 1;
        }
    }

    if (!last || f->finished) {
        return in ? NGX_OK : ngx_http_next_body_filter(r, NULL);
    }

    f->finished = 1;

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_ERROR;
    }

    if (f->conf->teaser.len) {
        b->pos = f->conf->teaser.data;
        b->last = f->conf->teaser.data + f->conf->teaser.len;
        b->memory = 1;

    } else {
        b->sync = 1;
    }

    b->last_buf = 1;

    out.buf = b;
    out.next = NULL;

    return ngx_http_next_body_filter(r, &out);
}


/* ------------------------------------------- checkout, portal, webhook */

static ngx_int_t
ngx_http_paywall_content_handler(ngx_http_request_t *r)
{
    size_t                        max;
    ngx_int_t                     rc;
    ngx_http_paywall_loc_conf_t  *plcf;

    plcf = ngx_http_get_module_loc_conf(r, ngx_http_paywall_module);

    if (plcf->handler == NGX_HTTP_PAYWALL_EXPORT) {
        return ngx_http_paywall_export_handler(r);
    }

    if (!(r->method & NGX_HTTP_POST)) {
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }

        if (ngx_http_webmodules_add_header(r, "Allow", (u_char *) "POST",
                                        sizeof("POST") - 1)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_paywall_text(r, NGX_HTTP_NOT_ALLOWED,
                                     plcf->handler == NGX_HTTP_PAYWALL_WEBHOOK
                                     ? "Stripe webhooks are POSTed"
                                     : "POST the form");
    }

    max = plcf->handler == NGX_HTTP_PAYWALL_WEBHOOK ? PAYWALL_EVENT_BYTES_MAX
                                                    : NGX_HTTP_PAYWALL_FORM_MAX;

    if (r->headers_in.content_length_n > (off_t) max) {
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }

        return ngx_http_paywall_body_refused(r, plcf->handler,
                                         NGX_HTTP_REQUEST_ENTITY_TOO_LARGE);
    }

    /* a body in one buffer, or else all of it in the temporary file */

    r->request_body_in_single_buf = 1;

    rc = ngx_http_read_client_request_body(r, ngx_http_paywall_body_read);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;
}


static void
ngx_http_paywall_body_read(ngx_http_request_t *r)
{
    size_t                        max;
    ngx_int_t                     rc;
    ngx_list_part_t              *part;
    ngx_table_elt_t              *h;
    ngx_uint_t                    i;
    ngx_http_paywall_call_t      *call;
    ngx_http_paywall_loc_conf_t  *plcf;

    plcf = ngx_http_get_module_loc_conf(r, ngx_http_paywall_module);

    call = ngx_pcalloc(r->pool, sizeof(ngx_http_paywall_call_t));
    if (call == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    call->request = r;
    call->conf = plcf;
    call->kind = plcf->handler;
    call->body_fd = NGX_INVALID_FILE;
    call->now = ngx_time();

    max = call->kind == NGX_HTTP_PAYWALL_WEBHOOK ? PAYWALL_EVENT_BYTES_MAX
                                                 : NGX_HTTP_PAYWALL_FORM_MAX;

    rc = ngx_http_paywall_body(r, call, max);

    if (rc != NGX_OK) {
        ngx_http_finalize_request(r,
                          ngx_http_paywall_body_refused(r, call->kind, rc));
        return;
    }

    if (call->kind != NGX_HTTP_PAYWALL_WEBHOOK) {
        rc = ngx_http_paywall_form(r, call);

        if (rc != NGX_OK) {
            ngx_http_finalize_request(r, rc);
        }

        return;
    }

    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len == sizeof("Stripe-Signature") - 1
            && ngx_strncasecmp(h[i].key.data, (u_char *) "Stripe-Signature",
                               sizeof("Stripe-Signature") - 1) == 0)
        {
            call->signature = h[i].value;
            break;
        }
    }

    rc = ngx_http_paywall_post_call(r, call);

    if (rc != NGX_OK) {
        ngx_http_finalize_request(r, rc);
    }
}


static ngx_int_t
ngx_http_paywall_body_refused(ngx_http_request_t *r, ngx_uint_t kind,
    ngx_int_t status)
{
    if (kind == NGX_HTTP_PAYWALL_WEBHOOK) {
        ngx_log_error(NGX_LOG_NOTICE, r->connection->log, 0,
                      "paywall webhook: body refused (HTTP %i)", status);
        return ngx_http_paywall_text(r, status, "body refused");
    }

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "paywall form: body refused (HTTP %i)", status);
    return ngx_http_paywall_page(r, status, "The form could not be read.");
}


/* NGX_OK with the body in call, or an HTTP status */

static ngx_int_t
ngx_http_paywall_body(ngx_http_request_t *r, ngx_http_paywall_call_t *call,
    size_t max)
{
    off_t                      len;
    u_char                    *p;
    ssize_t                    n;
    ngx_buf_t                 *b;
    ngx_chain_t               *cl;
    ngx_http_request_body_t   *rb;

    rb = r->request_body;

    if (rb == NULL) {
        call->body = (u_char *) "";
        return NGX_OK;
    }

    if (rb->temp_file) {
        len = rb->temp_file->file.offset;

        if (len > (off_t) max) {
            return NGX_HTTP_REQUEST_ENTITY_TOO_LARGE;
        }

        call->body = ngx_pnalloc(r->pool, (size_t) len + 1);
        if (call->body == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        call->body_len = (size_t) len;

        if (call->kind == NGX_HTTP_PAYWALL_WEBHOOK) {
            /* up to 1 MB: read by the task */
            call->body_fd = rb->temp_file->file.fd;
            return NGX_OK;
        }

        /* a form of at most 8 KB that nginx itself has just written */

        n = ngx_read_file(&rb->temp_file->file, call->body, (size_t) len, 0);

        if (n != len) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "paywall: cannot read the request body from \"%V\"",
                          &rb->temp_file->file.name);
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        call->body[len] = '\0';
        return NGX_OK;
    }

    len = 0;

    for (cl = rb->bufs; cl; cl = cl->next) {
        b = cl->buf;

        if (!ngx_buf_in_memory(b)) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "paywall: request body not in memory");
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        len += b->last - b->pos;
    }

    if (len > (off_t) max) {
        return NGX_HTTP_REQUEST_ENTITY_TOO_LARGE;
    }

    call->body = ngx_pnalloc(r->pool, (size_t) len + 1);
    if (call->body == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = call->body;

    for (cl = rb->bufs; cl; cl = cl->next) {
        p = ngx_cpymem(p, cl->buf->pos, cl->buf->last - cl->buf->pos);
    }

    *p = '\0';
    call->body_len = (size_t) len;

    return NGX_OK;
}


/*
 * Checkout and portal forms: a logged-in visitor, a valid CSRF token.
 * NGX_OK once the task is posted, else what to finalize the request with.
 */

static ngx_int_t
ngx_http_paywall_form(ngx_http_request_t *r, ngx_http_paywall_call_t *call)
{
    char                         *token, *plan_name, *return_url;
    ngx_str_t                     user, form, email;
    const paywall_plan           *plan;
    paywall_checkout_request     *req;
    ngx_http_paywall_loc_conf_t  *plcf;

    plcf = call->conf;

    if (ngx_http_paywall_source_value(r, plcf->user, &user) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (user.len == 0 || !paywall_user_id_valid((char *) user.data, user.len))
    {
        return ngx_http_paywall_page(r, NGX_HTTP_FORBIDDEN,
                                     "Please log in first.");
    }

    call->user = ngx_http_webmodules_cstr(r->pool, user.data, user.len);
    if (call->user == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (plcf->secret.len == 0) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "paywall form: paywall_secret_file is not set: "
                      "no CSRF token");
        return ngx_http_paywall_page(r, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                 "Subscriptions are not available right now.");
    }

    form.data = call->body;
    form.len = call->body_len;

    token = ngx_http_paywall_form_get(r->pool, &form, "csrf");

    if (!paywall_csrf_check(plcf->secret.data, plcf->secret.len, call->user,
                            user.len, token, token ? ngx_strlen(token) : 0,
                            call->now))
    {
        ngx_log_error(NGX_LOG_NOTICE, r->connection->log, 0,
                      "paywall form: missing or invalid CSRF token "
                      "for user %s", call->user);
        return ngx_http_paywall_page(r, NGX_HTTP_FORBIDDEN,
                                     "This form has expired: please reload "
                                     "the page and try again.");
    }

    return_url = ngx_http_paywall_absolute(r, &plcf->return_url);
    if (return_url == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (call->kind == NGX_HTTP_PAYWALL_PORTAL) {
        call->return_url = return_url;
        return ngx_http_paywall_post_call(r, call);
    }

    plan_name = ngx_http_paywall_form_get(r->pool, &form, "plan");

    plan = plan_name && plcf->plans
           ? paywall_plans_find_name(plcf->plans, plan_name) : NULL;

    if (plan == NULL) {
        ngx_log_error(NGX_LOG_NOTICE, r->connection->log, 0,
                      "paywall checkout: unknown plan \"%s\"",
                      plan_name ? plan_name : "");
        return ngx_http_paywall_page(r, NGX_HTTP_BAD_REQUEST,
                                     "Unknown subscription plan.");
    }

    if (plcf->stripe_key.len == 0) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "paywall: no paywall_stripe_key_file configured");
        return ngx_http_paywall_page(r, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                     "The payment service could not start. "
                                     "Nothing was charged: please try again "
                                     "later.");
    }

    req = &call->checkout;

    req->plan = plan;
    req->user_id = call->user;

    if (plcf->email) {
        if (ngx_http_paywall_source_value(r, plcf->email, &email) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (email.len) {
            req->email = ngx_http_webmodules_cstr(r->pool, email.data,
                                               email.len);
            if (req->email == NULL) {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }
        }
    }

    req->coupon = ngx_http_paywall_variable_text(r,
                                                 &ngx_http_paywall_coupon_name,
                                                 ngx_http_paywall_coupon_hash);

    req->promotion_code = ngx_http_paywall_form_get(r->pool, &form,
                                                    "promotion_code");

    if (req->promotion_code
        && ngx_strncmp(req->promotion_code, "promo_", 6) != 0)
    {
        req->promotion_code = NULL;
    }

    req->promo_code = ngx_http_paywall_variable_text(r,
                                                 &ngx_http_paywall_promo_name,
                                                 ngx_http_paywall_promo_hash);

    if (req->promo_code == NULL) {
        req->promo_code = ngx_http_paywall_form_get(r->pool, &form, "promo");
    }

    req->success_url = ngx_http_paywall_with_query(r->pool, return_url,
                         "paywall=success&session_id={CHECKOUT_SESSION_ID}");
    req->cancel_url = ngx_http_paywall_with_query(r->pool, return_url,
                                                  "paywall=cancel");

    if (req->success_url == NULL || req->cancel_url == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_paywall_post_call(r, call);
}


static ngx_int_t
ngx_http_paywall_post_call(ngx_http_request_t *r,
    ngx_http_paywall_call_t *call)
{
    ngx_thread_task_t         *task;
    ngx_http_paywall_call_t  **tcall;

    task = ngx_thread_task_alloc(r->pool, sizeof(ngx_http_paywall_call_t *));
    if (task == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    tcall = task->ctx;
    *tcall = call;

    task->handler = ngx_http_paywall_call_thread;
    task->event.handler = ngx_http_paywall_call_done;
    task->event.data = call;

    if (ngx_thread_task_post(call->conf->thread_pool, task) != NGX_OK) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "paywall: thread pool queue full");
        return NGX_HTTP_SERVICE_UNAVAILABLE;
    }

    r->main->blocked++;
    r->aio = 1;

    return NGX_OK;
}


static void
ngx_http_paywall_call_thread(void *data, ngx_log_t *log)
{
    ngx_http_paywall_call_t  *call = *(ngx_http_paywall_call_t **) data;

    off_t                         done;
    u_char                       *p, *last;
    ssize_t                       n;
    ngx_err_t                     err;
    paywall_stripe_api           *api;
    ngx_http_paywall_loc_conf_t  *plcf;

    (void) log;

    plcf = call->conf;
    api = &plcf->api;

    if (call->kind == NGX_HTTP_PAYWALL_CHECKOUT) {
        paywall_checkout_create(api, &call->checkout, &call->stripe);
        return;
    }

    call->store = paywall_store_get(&plcf->store, call->err,
                                    sizeof(call->err));
    if (call->store == NULL) {
        call->failed = NGX_HTTP_SERVICE_UNAVAILABLE;
        return;
    }

    if (call->kind == NGX_HTTP_PAYWALL_PORTAL) {
        paywall_portal_create(call->store, api, call->user, call->return_url,
                              &call->stripe);
        return;
    }

    /* the webhook */

    if (call->body_fd != NGX_INVALID_FILE) {
        for (done = 0; done < (off_t) call->body_len; done += n) {
            n = pread(call->body_fd, call->body + done,
                      call->body_len - done, done);

            err = (n == -1) ? ngx_errno : 0;

            if (err == NGX_EINTR) {
                n = 0;
                continue;
            }

            if (n <= 0) {
                last = (u_char *) call->err + sizeof(call->err) - 1;
                p = ngx_slprintf((u_char *) call->err, last,
                                 "cannot read the request body: ");
                p = err ? ngx_strerror(err, p, last - p)
                        : ngx_slprintf(p, last, "file too short");
                *p = '\0';
                call->failed = NGX_HTTP_INTERNAL_SERVER_ERROR;
                return;
            }
        }

        call->body[call->body_len] = '\0';
    }

    paywall_webhook_handle(call->store,
                           plcf->plans ? plcf->plans
                                       : &ngx_http_paywall_no_plans,
                           plcf->webhook_secret.len
                           ? (char *) plcf->webhook_secret.data : NULL,
                           plcf->webhook_secret.len,
                           call->signature.data
                           ? (char *) call->signature.data : NULL,
                           call->signature.len,
                           (char *) call->body, call->body_len, time(NULL),
                           &call->webhook);
}


static void
ngx_http_paywall_call_done(ngx_event_t *ev)
{
    ngx_int_t                 rc;
    ngx_uint_t                level;
    ngx_connection_t         *c;
    ngx_http_request_t       *r;
    ngx_http_paywall_call_t  *call;

    call = ev->data;
    r = call->request;
    c = r->connection;

    ngx_http_set_log_request(c->log, r);

    r->main->blocked--;
    r->aio = 0;

    if (c->error) {
        ngx_http_finalize_request(r, NGX_HTTP_CLIENT_CLOSED_REQUEST);
        ngx_http_run_posted_requests(c);
        return;
    }

    if (call->store) {
        call->conf->opened = call->store;
    }

    if (call->failed) {
        if (call->store == NULL) {
            ngx_log_error(NGX_LOG_ERR, c->log, 0,
                          "cannot open the paywall's stores: %s", call->err);

        } else {
            ngx_log_error(NGX_LOG_ERR, c->log, 0, "paywall: %s", call->err);
        }

        if (call->kind == NGX_HTTP_PAYWALL_WEBHOOK) {
            rc = ngx_http_paywall_text(r, call->failed,
                                       call->store ? "body unreadable"
                                                   : "stores unavailable");
        } else {
            rc = ngx_http_paywall_page(r, call->failed,
                                 "Subscriptions are not available right now.");
        }

    } else if (call->kind == NGX_HTTP_PAYWALL_WEBHOOK) {

        if (call->webhook.note[0]) {
            level = call->webhook.note_is_error ? NGX_LOG_ERR
                                                : NGX_LOG_NOTICE;
            ngx_log_error(level, c->log, 0, "%s", call->webhook.note);
        }

        level = call->webhook.status >= 500 ? NGX_LOG_ERR
                : call->webhook.status >= 400 ? NGX_LOG_NOTICE
                : NGX_LOG_INFO;

        ngx_log_error(level, c->log, 0, "paywall webhook: %s",
                      call->webhook.message);

        rc = ngx_http_paywall_text(r, call->webhook.status,
                                   call->webhook.message);

    } else {
        rc = ngx_http_paywall_stripe_answer(r, &call->stripe);
    }

    ngx_http_finalize_request(r, rc);
    ngx_http_run_posted_requests(c);
}


static ngx_int_t
ngx_http_paywall_stripe_answer(ngx_http_request_t *r,
    paywall_stripe_result *result)
{
    size_t            len;
    ngx_uint_t        level;
    ngx_table_elt_t  *h;

    if (result->status == NGX_HTTP_SEE_OTHER) {
        len = ngx_strlen(result->url);

        h = ngx_list_push(&r->headers_out.headers);
        if (h == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        h->hash = 1;
#if (nginx_version >= 1023000)
        h->next = NULL;
#endif
        ngx_str_set(&h->key, "Location");

        h->value.data = ngx_pnalloc(r->pool, len);
        if (h->value.data == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_memcpy(h->value.data, result->url, len);
        h->value.len = len;

        ngx_http_clear_location(r);
        r->headers_out.location = h;

        if (ngx_http_webmodules_add_header(r, "Cache-Control",
                                        (u_char *) "no-store",
                                        sizeof("no-store") - 1)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return NGX_HTTP_SEE_OTHER;
    }

    level = result->status >= 500 ? NGX_LOG_ERR : NGX_LOG_NOTICE;
    ngx_log_error(level, r->connection->log, 0, "paywall: %s",
                  result->message);

    if (result->status == NGX_HTTP_NOT_FOUND) {
        return ngx_http_paywall_page(r, NGX_HTTP_NOT_FOUND,
                                     "There is no subscription to manage "
                                     "for this account.");
    }

    if (result->status < NGX_HTTP_BAD_REQUEST || result->status > 599) {
        result->status = NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_paywall_page(r, result->status,
                                 result->status == NGX_HTTP_GATEWAY_TIME_OUT
                                 ? "The payment service is not answering. "
                                   "Nothing was charged: please try again "
                                   "in a moment."
                                 : "The payment service could not start. "
                                   "Nothing was charged: please try again "
                                   "later.");
}


/* ----------------------------------------------------- the routing CSV */

static ngx_int_t
ngx_http_paywall_export_handler(ngx_http_request_t *r)
{
    u_char                       *dst, *src;
    ngx_int_t                     rc;
    ngx_str_t                     arg;
    ngx_thread_task_t            *task;
    ngx_http_paywall_ctx_t       *ctx;
    ngx_http_paywall_export_t    *ex, **tex;
    ngx_http_paywall_loc_conf_t  *plcf;

    plcf = ngx_http_get_module_loc_conf(r, ngx_http_paywall_module);

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        if (ngx_http_webmodules_add_header(r, "Allow", (u_char *) "GET, HEAD",
                                        sizeof("GET, HEAD") - 1)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_paywall_text(r, NGX_HTTP_NOT_ALLOWED,
                                     "GET the export");
    }

    ctx = ngx_http_paywall_get_ctx(r);

    if (ctx == NULL) {
        ctx = ngx_http_paywall_create_ctx(r);
        if (ctx == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    ex = ngx_pcalloc(r->pool, sizeof(ngx_http_paywall_export_t));
    if (ex == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ex->request = r;
    ex->conf = plcf;
    ex->head = (r->method == NGX_HTTP_HEAD);

    /* checked by paywall_export_open, which answers bad_request */

    if (ngx_http_arg(r, (u_char *) "date", sizeof("date") - 1, &arg)
        == NGX_OK)
    {
        ex->date = ngx_pnalloc(r->pool, arg.len + 1);
        if (ex->date == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        dst = (u_char *) ex->date;
        src = arg.data;
        ngx_unescape_uri(&dst, &src, arg.len, 0);
        *dst = '\0';
    }

    task = ngx_thread_task_alloc(r->pool, sizeof(ngx_http_paywall_export_t *));
    if (task == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    tex = task->ctx;
    *tex = ex;

    task->handler = ngx_http_paywall_export_thread;
    task->event.handler = ngx_http_paywall_export_done;
    task->event.data = ex;

    ex->task = task;

    /* the pool cleanup closes the export if the client goes away */

    ctx->export = ex;

    if (ngx_thread_task_post(plcf->thread_pool, task) != NGX_OK) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "paywall: thread pool queue full");
        return ngx_http_paywall_text(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                     "subscriptions unavailable");
    }

    r->main->blocked++;
    r->aio = 1;
    r->main->count++;

    return NGX_DONE;
}


static void
ngx_http_paywall_export_thread(void *data, ngx_log_t *log)
{
    ngx_http_paywall_export_t  *ex = *(ngx_http_paywall_export_t **) data;

    u_char      *p;
    size_t       len;
    const char  *chunk;

    (void) log;

    if (ex->export == NULL) {
        if (ex->store == NULL) {
            ex->store = paywall_store_get(&ex->conf->store, ex->err,
                                          sizeof(ex->err));
            if (ex->store == NULL) {
                return;
            }
        }

        ex->export = paywall_export_open(ex->store,
                                         ex->conf->plans
                                         ? ex->conf->plans
                                         : &ngx_http_paywall_no_plans,
                                         ex->conf->grace, ex->date,
                                         &ex->bad_request, ex->err,
                                         sizeof(ex->err));

        if (ex->export == NULL || ex->head) {
            return;
        }
    }

    /* copied, so that the export may be closed while the chunk goes out */

    ex->rc = paywall_export_next(ex->export, &chunk, &len, ex->err,
                                 sizeof(ex->err));

    if (ex->rc != 1) {
        return;
    }

    if (len > ex->size) {
        p = realloc(ex->data, len);
        if (p == NULL) {
            ngx_snprintf((u_char *) ex->err, sizeof(ex->err) - 1,
                         "out of memory%Z");
            ex->rc = -1;
            return;
        }

        ex->data = p;
        ex->size = len;
    }

    ngx_memcpy(ex->data, chunk, len);
    ex->len = len;
}


static void
ngx_http_paywall_export_done(ngx_event_t *ev)
{
    ngx_connection_t           *c;
    ngx_http_request_t         *r;
    ngx_http_paywall_export_t  *ex;

    ex = ev->data;
    r = ex->request;
    c = r->connection;

    ngx_http_set_log_request(c->log, r);

    r->main->blocked--;
    r->aio = 0;

    if (ex->store) {
        ex->conf->opened = ex->store;
    }

    if (c->error) {
        /* the pool cleanup closes the export */
        ngx_http_finalize_request(r, NGX_HTTP_CLIENT_CLOSED_REQUEST);

    } else if (!ex->started) {
        ex->started = 1;
        ngx_http_paywall_export_start(r, ex);

    } else {
        ngx_http_paywall_export_send(r, ex);
    }

    ngx_http_run_posted_requests(c);
}


static void
ngx_http_paywall_export_start(ngx_http_request_t *r,
    ngx_http_paywall_export_t *ex)
{
    u_char     *p;
    size_t      len;
    ngx_int_t   rc;
    ngx_tm_t    tm;

    if (ex->export == NULL) {
        if (ex->store == NULL) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "cannot open the paywall's stores: %s", ex->err);
            rc = ngx_http_paywall_text(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                       "subscriptions unavailable");

        } else if (ex->bad_request) {
            ngx_log_error(NGX_LOG_NOTICE, r->connection->log, 0,
                          "paywall export: %s", ex->err);
            rc = ngx_http_paywall_text(r, NGX_HTTP_BAD_REQUEST, ex->err);

        } else {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "paywall export: %s", ex->err);
            rc = ngx_http_paywall_text(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                       "subscriptions unavailable");
        }

        ngx_http_finalize_request(r, rc);
        return;
    }

    /* the date was valid: paywall_export_open checked it */

    len = sizeof("attachment; filename=\"routing-YYYY-MM-DD.csv\"") - 1;

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        ngx_http_paywall_export_close(ex);
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (ex->date) {
        len = ngx_snprintf(p, len, "attachment; filename=\"routing-%s.csv\"",
                           ex->date)
              - p;

    } else {
        ngx_gmtime(ngx_time(), &tm);
        len = ngx_snprintf(p, len, "attachment; filename=\"routing-"
                           "%04d-%02d-%02d.csv\"",
                           tm.ngx_tm_year, tm.ngx_tm_mon, tm.ngx_tm_mday)
              - p;
    }

    if (ngx_http_webmodules_add_header(r, "Content-Disposition", p, len)
        != NGX_OK
        || ngx_http_webmodules_add_header(r, "Cache-Control",
                                       (u_char *) "no-store",
                                       sizeof("no-store") - 1)
           != NGX_OK)
    {
        ngx_http_paywall_export_close(ex);
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    r->headers_out.status = NGX_HTTP_OK;
    ngx_str_set(&r->headers_out.content_type, "text/csv");
    r->headers_out.content_type_len = sizeof("text/csv") - 1;
    r->headers_out.content_type_lowcase = NULL;
    ngx_str_set(&r->headers_out.charset, "utf-8");
    r->headers_out.content_length_n = -1;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        ngx_http_paywall_export_close(ex);
        ngx_http_finalize_request(r, rc);
        return;
    }

    ngx_http_paywall_export_send(r, ex);
}


static void
ngx_http_paywall_export_send(ngx_http_request_t *r,
    ngx_http_paywall_export_t *ex)
{
    ngx_int_t   rc;
    ngx_buf_t  *b;

    if (ex->rc < 0) {
        /* the client sees the transfer cut short, not a complete file */
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "paywall export cut short: %s", ex->err);
        ngx_http_paywall_export_close(ex);
        ngx_http_finalize_request(r, NGX_ERROR);
        return;
    }

    if (ex->rc == 0) {
        ngx_http_paywall_export_close(ex);
        ngx_http_finalize_request(r, ngx_http_send_special(r, NGX_HTTP_LAST));
        return;
    }

    b = &ex->buf;

    ngx_memzero(b, sizeof(ngx_buf_t));

    b->pos = ex->data;
    b->last = ex->data + ex->len;
    b->memory = 1;

    /* never left waiting in the write filter for more */
    b->flush = 1;

    ex->out.buf = b;
    ex->out.next = NULL;

    rc = ngx_http_output_filter(r, &ex->out);

    if (rc == NGX_ERROR) {
        ngx_http_finalize_request(r, NGX_ERROR);
        return;
    }

    ngx_http_paywall_export_wait(r, ex);
}


/* the next chunk is read only once this one has gone out */

static void
ngx_http_paywall_export_wait(ngx_http_request_t *r,
    ngx_http_paywall_export_t *ex)
{
    ngx_event_t               *wev;
    ngx_http_core_loc_conf_t  *clcf;

    wev = r->connection->write;

    if (ngx_buf_size(&ex->buf) == 0) {
        if (wev->timer_set && !wev->delayed) {
            ngx_del_timer(wev);
        }

        if (ngx_http_paywall_export_post(r, ex) != NGX_OK) {
            ngx_http_paywall_export_close(ex);
            ngx_http_finalize_request(r, NGX_ERROR);
        }

        return;
    }

    r->write_event_handler = ngx_http_paywall_export_writer;

    if (wev->ready && wev->delayed) {
        return;
    }

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    if (!wev->delayed) {
        ngx_add_timer(wev, clcf->send_timeout);
    }

    if (ngx_handle_write_event(wev, clcf->send_lowat) != NGX_OK) {
        ngx_http_finalize_request(r, NGX_ERROR);
    }
}


static void
ngx_http_paywall_export_writer(ngx_http_request_t *r)
{
    ngx_int_t                   rc;
    ngx_event_t                *wev;
    ngx_connection_t           *c;
    ngx_http_paywall_ctx_t     *ctx;
    ngx_http_core_loc_conf_t   *clcf;

    c = r->connection;
    wev = c->write;

    ctx = ngx_http_paywall_get_ctx(r);

    if (ctx == NULL || ctx->export == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (wev->timedout) {
        ngx_log_error(NGX_LOG_INFO, c->log, NGX_ETIMEDOUT,
                      "client timed out");
        c->timedout = 1;
        ngx_http_finalize_request(r, NGX_HTTP_REQUEST_TIME_OUT);
        return;
    }

    if (wev->delayed) {
        clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

        if (ngx_handle_write_event(wev, clcf->send_lowat) != NGX_OK) {
            ngx_http_finalize_request(r, NGX_ERROR);
        }

        return;
    }

    rc = ngx_http_output_filter(r, NULL);

    if (rc == NGX_ERROR) {
        ngx_http_finalize_request(r, NGX_ERROR);
        return;
    }

    ngx_http_paywall_export_wait(r, ctx->export);
}


static ngx_int_t
ngx_http_paywall_export_post(ngx_http_request_t *r,
    ngx_http_paywall_export_t *ex)
{
    /* the task owns the request until it is done: write events wait */

    r->write_event_handler = ngx_http_request_empty_handler;

    if (ngx_thread_task_post(ex->conf->thread_pool, ex->task) != NGX_OK) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "paywall export cut short: thread pool queue full");
        return NGX_ERROR;
    }

    r->main->blocked++;
    r->aio = 1;

    return NGX_OK;
}


/* closing returns the cursor's connection: a task of its own, unowned */

static void
ngx_http_paywall_export_close(ngx_http_paywall_export_t *ex)
{
    ngx_thread_task_t  *task;

    if (ex->export == NULL) {
        return;
    }

    task = ngx_calloc(sizeof(ngx_thread_task_t) + sizeof(paywall_export *),
                      ngx_cycle->log);

    if (task) {
        task->ctx = task + 1;
        *(paywall_export **) task->ctx = ex->export;
        task->handler = ngx_http_paywall_export_close_thread;
        task->event.handler = ngx_http_paywall_export_closed;
        task->event.data = task;
        task->event.log = ngx_cycle->log;

        if (ngx_thread_task_post(ex->conf->thread_pool, task) == NGX_OK) {
            ex->export = NULL;
            return;
        }

        ngx_free(task);
    }

    /* rather a moment of the event loop than a connection held forever */

    ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                  "paywall export closed on the event loop: "
                  "thread pool queue full");

    paywall_export_close(ex->export);
    ex->export = NULL;
}


static void
ngx_http_paywall_export_close_thread(void *data, ngx_log_t *log)
{
    (void) log;

    paywall_export_close(*(paywall_export **) data);
}


static void
ngx_http_paywall_export_closed(ngx_event_t *ev)
{
    ngx_free(ev->data);
}


/* ------------------------------------------------------------- helpers */

static ngx_int_t
ngx_http_paywall_text(ngx_http_request_t *r, ngx_uint_t status,
    const char *message)
{
    size_t   len;
    u_char  *body;

    len = ngx_strlen(message);

    body = ngx_pnalloc(r->pool, len + 1);
    if (body == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memcpy(body, message, len);
    body[len] = LF;

    ngx_str_set(&r->headers_out.content_type, "text/plain");
    r->headers_out.content_type_len = sizeof("text/plain") - 1;
    r->headers_out.content_type_lowcase = NULL;
    ngx_str_set(&r->headers_out.charset, "utf-8");

    return ngx_http_webmodules_send(r, status, body, len + 1);
}


static ngx_int_t
ngx_http_paywall_page(ngx_http_request_t *r, ngx_uint_t status,
    const char *message)
{
    size_t   len;
    u_char  *body, *p;

    static u_char  head[] = "<!DOCTYPE html>" CRLF
                            "<html><head><meta charset=\"utf-8\">"
                            "<title>Subscription</title></head><body><p>";
    static u_char  tail[] = "</p></body></html>" CRLF;

    len = ngx_strlen(message);
    len += ngx_escape_html(NULL, (u_char *) message, len);

    body = ngx_pnalloc(r->pool, sizeof(head) - 1 + len + sizeof(tail) - 1);
    if (body == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_cpymem(body, head, sizeof(head) - 1);
    p = (u_char *) ngx_escape_html(p, (u_char *) message,
                                   ngx_strlen(message));
    p = ngx_cpymem(p, tail, sizeof(tail) - 1);

    ngx_str_set(&r->headers_out.content_type, "text/html");
    r->headers_out.content_type_len = sizeof("text/html") - 1;
    r->headers_out.content_type_lowcase = NULL;
    ngx_str_set(&r->headers_out.charset, "utf-8");

    if (ngx_http_webmodules_add_header(r, "Cache-Control", (u_char *) "no-store",
                                    sizeof("no-store") - 1)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_webmodules_send(r, status, body, p - body);
}


/* the source's text, empty when the variable is missing or empty */

static ngx_int_t
ngx_http_paywall_source_value(ngx_http_request_t *r,
    ngx_http_paywall_source_t *source, ngx_str_t *value)
{
    ngx_http_variable_value_t  *vv;

    ngx_str_null(value);

    vv = ngx_http_get_variable(r, &source->variable, source->hash);
    if (vv == NULL) {
        return NGX_ERROR;
    }

    if (!vv->not_found && vv->len) {
        value->data = vv->data;
        value->len = vv->len;
    }

    return NGX_OK;
}


/* a variable's text as a C string, NULL when absent, empty or unknown */

static char *
ngx_http_paywall_set_enable(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_paywall_loc_conf_t *plcf = conf;

    ngx_str_t  *value;

    if (plcf->enable != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "on") == 0) {
        plcf->enable = 1;

    } else if (ngx_strcmp(value[1].data, "off") == 0) {
        plcf->enable = 0;

    } else if (ngx_strcmp(value[1].data, "observe") == 0) {
        plcf->enable = NGX_HTTP_PAYWALL_OBSERVE;

    } else {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid value \"%V\" in \"%V\" directive, "
                           "it must be \"on\", \"off\" or \"observe\"",
                           &value[1], &cmd->name);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_paywall_variable_text(ngx_http_request_t *r, ngx_str_t *name,
    ngx_uint_t hash)
{
    ngx_http_variable_value_t  *vv;

    vv = ngx_http_get_variable(r, name, hash);

    if (vv == NULL || vv->not_found || vv->len == 0) {
        return NULL;
    }

    return ngx_http_webmodules_cstr(r->pool, vv->data, vv->len);
}


/*
 * The first field called name of an application/x-www-form-urlencoded body,
 * decoded; NULL when absent, or when it decodes to a NUL
 */

static char *
ngx_http_paywall_form_get(ngx_pool_t *pool, ngx_str_t *form,
    const char *name)
{
    u_char  *p, *end, *field, *next, *value, *dst, *src;
    size_t   len, n;

    len = ngx_strlen(name);
    p = form->data;
    end = form->data + form->len;

    for ( /* void */ ; p < end; p = next + 1) {
        field = p;
        next = ngx_strlchr(p, end, '&');

        if (next == NULL) {
            next = end;
        }

        if ((size_t) (next - field) <= len
            || ngx_strncmp(field, name, len) != 0
            || field[len] != '=')
        {
            continue;
        }

        src = field + len + 1;
        n = next - src;

        value = ngx_pnalloc(pool, n + 1);
        if (value == NULL) {
            return NULL;
        }

        for (dst = value; src < next; src++) {
            *dst++ = (*src == '+') ? ' ' : *src;
        }

        src = value;
        dst = value;
        ngx_unescape_uri(&dst, &src, n, 0);

        if (ngx_strlchr(value, dst, '\0')) {
            return NULL;
        }

        *dst = '\0';

        return (char *) value;
    }

    return NULL;
}


/* a path made absolute with the scheme, host and port, as nginx's redirects */

static char *
ngx_http_paywall_absolute(ngx_http_request_t *r, ngx_str_t *url)
{
    u_char                    *p, *start;
    size_t                     len;
    in_port_t                  port;
    ngx_str_t                 *host;
    ngx_uint_t                 ssl;
    ngx_http_core_srv_conf_t  *cscf;

    if (url->data[0] != '/') {
        return (char *) url->data;
    }

    ssl = 0;

#if (NGX_HTTP_SSL)
    ssl = (r->connection->ssl != NULL);
#endif

    if (r->headers_in.server.len) {
        host = &r->headers_in.server;

    } else {
        cscf = ngx_http_get_module_srv_conf(r, ngx_http_core_module);
        host = &cscf->server_name;
    }

    port = ngx_inet_get_port(r->connection->local_sockaddr);

    if ((ssl && port == 443) || (!ssl && port == 80)) {
        port = 0;
    }

    len = sizeof("https://") - 1 + host->len + sizeof(":65535") - 1
          + url->len + 1;

    start = ngx_pnalloc(r->pool, len);
    if (start == NULL) {
        return NULL;
    }

    p = ngx_sprintf(start, "%s://%V", ssl ? "https" : "http", host);

    if (port) {
        p = ngx_sprintf(p, ":%ui", (ngx_uint_t) port);
    }

    p = ngx_cpymem(p, url->data, url->len);
    *p = '\0';

    return (char *) start;
}


static char *
ngx_http_paywall_with_query(ngx_pool_t *pool, const char *url,
    const char *query)
{
    size_t   len;
    u_char  *p, *start;

    len = ngx_strlen(url);

    start = ngx_pnalloc(pool, len + 1 + ngx_strlen(query) + 1);
    if (start == NULL) {
        return NULL;
    }

    p = ngx_cpymem(start, url, len);
    *p++ = ngx_strchr(url, '?') ? '&' : '?';
    p = ngx_cpymem(p, query, ngx_strlen(query));
    *p = '\0';

    return (char *) start;
}


/* ----------------------------------------------------------- variables */

static ngx_int_t
ngx_http_paywall_value(ngx_http_request_t *r, ngx_http_variable_value_t *v,
    u_char *value, size_t len)
{
    v->data = ngx_pnalloc(r->pool, len);
    if (v->data == NULL && len) {
        return NGX_ERROR;
    }

    ngx_memcpy(v->data, value, len);
    v->len = len;
    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;

    return NGX_OK;
}


static ngx_int_t
ngx_http_paywall_access_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    const char              *name;
    ngx_http_paywall_ctx_t  *ctx;

    ctx = ngx_http_paywall_get_ctx(r);

    if (ctx == NULL || !ctx->done) {
        v->not_found = 1;
        return NGX_OK;
    }

    name = paywall_access_name(ctx->result.access);

    v->data = (u_char *) name;
    v->len = ngx_strlen(name);
    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;

    return NGX_OK;
}


static ngx_int_t
ngx_http_paywall_plan_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_http_paywall_ctx_t  *ctx;

    ctx = ngx_http_paywall_get_ctx(r);

    if (ctx == NULL || !ctx->done) {
        v->not_found = 1;
        return NGX_OK;
    }

    return ngx_http_paywall_value(r, v, (u_char *) ctx->result.plan,
                                  ngx_strlen(ctx->result.plan));
}


static ngx_int_t
ngx_http_paywall_meter_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    u_char                  *p;
    ngx_http_paywall_ctx_t  *ctx;

    ctx = ngx_http_paywall_get_ctx(r);

    if (ctx == NULL || !ctx->done || ctx->result.meter_remaining < 0) {
        v->not_found = 1;
        return NGX_OK;
    }

    p = ngx_pnalloc(r->pool, NGX_INT_T_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    v->data = p;
    v->len = ngx_sprintf(p, "%l", ctx->result.meter_remaining) - p;
    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;

    return NGX_OK;
}


/*
 * For any page of a logged-in visitor, gated or not: the subscribe form is
 * usually on a page nobody gates
 */

static ngx_int_t
ngx_http_paywall_csrf_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    char                          token[96];
    size_t                        len;
    ngx_str_t                     user;
    ngx_http_paywall_loc_conf_t  *plcf;

    plcf = ngx_http_get_module_loc_conf(r, ngx_http_paywall_module);

    v->not_found = 1;

    if (plcf->secret.len == 0) {
        return NGX_OK;
    }

    if (ngx_http_paywall_source_value(r, plcf->user, &user) != NGX_OK) {
        return NGX_ERROR;
    }

    if (user.len == 0) {
        return NGX_OK;
    }

    len = paywall_csrf_token(plcf->secret.data, plcf->secret.len,
                             (char *) user.data, user.len, ngx_time(),
                             token, sizeof(token));
    if (len == 0) {
        return NGX_OK;
    }

    return ngx_http_paywall_value(r, v, (u_char *) token, len);
}


static ngx_int_t
ngx_http_paywall_add_variables(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var, *v;

    for (v = ngx_http_paywall_vars; v->name.len; v++) {
        var = ngx_http_add_variable(cf, &v->name, v->flags);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = v->get_handler;
        var->data = v->data;
    }

    return NGX_OK;
}


/* ------------------------------------------------------- configuration */

static void *
ngx_http_paywall_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_paywall_loc_conf_t  *conf;

    conf = ngx_pcalloc(cf->pool, sizeof(ngx_http_paywall_loc_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     conf->postgres = { 0, NULL };
     *     conf->memcached = { 0, NULL };
     *     conf->marker = { 0, NULL };
     *     conf->teaser = { 0, NULL };
     *     conf->structured_data = { 0, NULL };
     *     conf->secret = { 0, NULL };
     *     conf->stripe_key = { 0, NULL };
     *     conf->webhook_secret = { 0, NULL };
     *     conf->stripe_api = { 0, NULL };
     *     conf->return_url = { 0, NULL };
     *     conf->handler = 0;
     *     conf->thread_pool_name = { 0, NULL };
     *     conf->thread_pool = NULL;
     *     conf->opened = NULL;
     */

    conf->enable = NGX_CONF_UNSET;
    conf->cache_ttl = NGX_CONF_UNSET;
    conf->max_stale = NGX_CONF_UNSET;
    conf->user = NGX_CONF_UNSET_PTR;
    conf->email = NGX_CONF_UNSET_PTR;
    conf->require = NGX_CONF_UNSET_PTR;
    conf->meter = NGX_CONF_UNSET_PTR;
    conf->grace = NGX_CONF_UNSET;
    conf->fail_mode = NGX_CONF_UNSET;
    conf->deny = NGX_CONF_UNSET_PTR;
    conf->crawlers = NGX_CONF_UNSET_PTR;
    conf->stripe_timeout = NGX_CONF_UNSET;
    conf->plans = NGX_CONF_UNSET_PTR;

    return conf;
}


static char *
ngx_http_paywall_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_paywall_loc_conf_t *prev = parent;
    ngx_http_paywall_loc_conf_t *conf = child;

    ngx_str_t  value;

    ngx_conf_merge_value(conf->enable, prev->enable, 0);
    ngx_conf_merge_str_value(conf->postgres, prev->postgres, "");
    ngx_conf_merge_str_value(conf->memcached, prev->memcached, "");
    ngx_conf_merge_value(conf->cache_ttl, prev->cache_ttl,
                         PAYWALL_CACHE_TTL_MS_DEFAULT / 1000);
    ngx_conf_merge_value(conf->max_stale, prev->max_stale,
                         PAYWALL_MAX_STALE_DEFAULT);
    ngx_conf_merge_ptr_value(conf->user, prev->user, NULL);
    ngx_conf_merge_ptr_value(conf->email, prev->email, NULL);
    ngx_conf_merge_ptr_value(conf->require, prev->require, NULL);
    ngx_conf_merge_ptr_value(conf->meter, prev->meter, NULL);
    ngx_conf_merge_value(conf->grace, prev->grace, PAYWALL_GRACE_DEFAULT);
    ngx_conf_merge_value(conf->fail_mode, prev->fail_mode,
                         PAYWALL_FAIL_CLOSED);
    ngx_conf_merge_ptr_value(conf->deny, prev->deny, NULL);
    ngx_conf_merge_str_value(conf->marker, prev->marker,
                             PAYWALL_FILTER_MARKER_DEFAULT);
    ngx_conf_merge_str_value(conf->teaser, prev->teaser,
                             NGX_HTTP_PAYWALL_TEASER);
    ngx_conf_merge_ptr_value(conf->crawlers, prev->crawlers, NULL);
    ngx_conf_merge_str_value(conf->structured_data, prev->structured_data,
                             "");
    ngx_conf_merge_str_value(conf->secret, prev->secret, "");
    ngx_conf_merge_str_value(conf->stripe_key, prev->stripe_key, "");
    ngx_conf_merge_str_value(conf->webhook_secret, prev->webhook_secret, "");
    ngx_conf_merge_str_value(conf->stripe_api, prev->stripe_api,
                             PAYWALL_STRIPE_API_DEFAULT);
    ngx_conf_merge_value(conf->stripe_timeout, prev->stripe_timeout,
                         PAYWALL_STRIPE_TIMEOUT_MS / 1000);
    ngx_conf_merge_ptr_value(conf->plans, prev->plans, NULL);
    ngx_conf_merge_str_value(conf->return_url, prev->return_url, "/");
    ngx_conf_merge_str_value(conf->thread_pool_name, prev->thread_pool_name,
                             "default");

    if (conf->user == NULL) {

        /* session:user_id, as if configured */

        ngx_str_set(&value, "session:user_id");

        if (ngx_http_paywall_make_source(cf, &value, &conf->user)
            != NGX_CONF_OK)
        {
            return NGX_CONF_ERROR;
        }
    }

    if (conf->deny == NULL) {
        conf->deny = ngx_pcalloc(cf->pool, sizeof(paywall_deny));
        if (conf->deny == NULL) {
            return NGX_CONF_ERROR;
        }

        conf->deny->kind = PAYWALL_DENY_STATUS;
        conf->deny->status = NGX_HTTP_FORBIDDEN;
    }

    /* the server-neutral settings */

    conf->store.memcached = conf->memcached.len
                            ? (const char *) conf->memcached.data : NULL;
    conf->store.postgres = conf->postgres.len
                           ? (const char *) conf->postgres.data : NULL;
    conf->store.cache_ttl_ms = (long) conf->cache_ttl * 1000;
    conf->store.max_stale = (long) conf->max_stale;

    conf->rules.require = conf->require;
    /* an observed page is no view: it must not use up the meter */
    conf->rules.meter = conf->enable == NGX_HTTP_PAYWALL_OBSERVE
                        ? NULL : conf->meter;
    conf->rules.grace = (long) conf->grace;
    conf->rules.fail_mode = (paywall_fail_mode) conf->fail_mode;
    conf->rules.crawlers = conf->crawlers;
    conf->rules.secret = conf->secret.len ? conf->secret.data : NULL;
    conf->rules.secret_len = conf->secret.len;

    conf->api.api_base = (const char *) conf->stripe_api.data;
    conf->api.secret_key = conf->stripe_key.len
                           ? (const char *) conf->stripe_key.data : NULL;
    conf->api.timeout_ms = (unsigned) conf->stripe_timeout * 1000;

    if (conf->enable || conf->handler) {
        conf->thread_pool = ngx_thread_pool_add(cf, &conf->thread_pool_name);
        if (conf->thread_pool == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_paywall_invalid(ngx_conf_t *cf, ngx_str_t *value, const char *why)
{
    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "invalid value \"%V\": %s",
                       value, why);

    return NGX_CONF_ERROR;
}


static char *
ngx_http_paywall_duration(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    char  *p = conf;

    long                          seconds;
    ngx_int_t                    *field;
    ngx_str_t                    *value;
    const char                   *why;
    ngx_http_paywall_duration_t  *bounds;

    field = (ngx_int_t *) (p + cmd->offset);
    bounds = cmd->post;

    if (*field != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    value = cf->args->elts;

    why = bounds->parse((char *) value[1].data, &seconds);
    if (why) {
        return ngx_http_paywall_invalid(cf, &value[1], why);
    }

    if (seconds < bounds->min || seconds > bounds->max) {
        return ngx_http_paywall_invalid(cf, &value[1], bounds->why);
    }

    *field = seconds;

    return NGX_CONF_OK;
}


/*
 * paywall_user, paywall_email: session:KEY reads mod_session_shared's
 * $session_shared_<key> (lower case, any other character than [a-z0-9_] as
 * "_"), env:NAME the variable $<name> (env:REMOTE_USER: $remote_user),
 * header:NAME $http_<name>; the hash is computed once, here.
 */

static char *
ngx_http_paywall_source(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    char  *p = conf;

    ngx_str_t                   *value;
    ngx_http_paywall_source_t  **field;

    field = (ngx_http_paywall_source_t **) (p + cmd->offset);

    if (*field != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    return ngx_http_paywall_make_source(cf, &value[1], field);
}


static char *
ngx_http_paywall_make_source(ngx_conf_t *cf, ngx_str_t *arg,
    ngx_http_paywall_source_t **out)
{
    u_char                      c, *d;
    size_t                      prefix;
    const char                 *why, *s;
    ngx_http_paywall_source_t  *src;

    src = ngx_pcalloc(cf->pool, sizeof(ngx_http_paywall_source_t));
    if (src == NULL) {
        return NGX_CONF_ERROR;
    }

    /* the setter keeps a pointer into the argument */

    s = ngx_http_webmodules_cstr(cf->pool, arg->data, arg->len);
    if (s == NULL) {
        return NGX_CONF_ERROR;
    }

    why = paywall_parse_user_source(s, &src->source);
    if (why) {
        return ngx_http_paywall_invalid(cf, arg, why);
    }

    switch (src->source.kind) {

    case PAYWALL_USER_SESSION:
        prefix = sizeof("session_shared_") - 1;
        break;

    case PAYWALL_USER_HEADER:
        prefix = sizeof("http_") - 1;
        break;

    default: /* PAYWALL_USER_ENV */
        prefix = 0;
        break;
    }

    src->variable.len = prefix + ngx_strlen(src->source.name);
    src->variable.data = ngx_pnalloc(cf->pool, src->variable.len);
    if (src->variable.data == NULL) {
        return NGX_CONF_ERROR;
    }

    d = ngx_cpymem(src->variable.data,
                   src->source.kind == PAYWALL_USER_SESSION
                   ? "session_shared_" : "http_", prefix);

    for (s = src->source.name; *s; s++) {
        c = ngx_tolower(*s);

        if (src->source.kind == PAYWALL_USER_SESSION
            && !((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
        {
            c = '_';

        } else if (src->source.kind == PAYWALL_USER_HEADER && c == '-') {
            c = '_';
        }

        *d++ = c;
    }

    src->hash = ngx_hash_strlow(src->variable.data, src->variable.data,
                                src->variable.len);

    *out = src;

    return NGX_CONF_OK;
}


static char *
ngx_http_paywall_require(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_paywall_loc_conf_t *plcf = conf;

    ngx_str_t   *value;
    ngx_uint_t   i;
    const char  *why;

    if (plcf->require != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    plcf->require = ngx_pcalloc(cf->pool, sizeof(paywall_require));
    if (plcf->require == NULL) {
        return NGX_CONF_ERROR;
    }

    value = cf->args->elts;

    /* plan names stay in the arguments, which live as long as the cycle */

    for (i = 1; i < cf->args->nelts; i++) {
        why = paywall_parse_require(plcf->require, (char *) value[i].data);
        if (why) {
            return ngx_http_paywall_invalid(cf, &value[i], why);
        }
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_paywall_meter(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_paywall_loc_conf_t *plcf = conf;

    ngx_str_t   *value;
    const char  *why;

    if (plcf->meter != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    plcf->meter = ngx_pcalloc(cf->pool, sizeof(paywall_meter_config));
    if (plcf->meter == NULL) {
        return NGX_CONF_ERROR;
    }

    value = cf->args->elts;

    why = paywall_parse_meter((char *) value[1].data, (char *) value[2].data,
                              plcf->meter);
    if (why) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid value \"%V %V\": %s",
                           &value[1], &value[2], why);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_paywall_fail_mode(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_paywall_loc_conf_t *plcf = conf;

    ngx_str_t          *value;
    const char         *why;
    paywall_fail_mode   mode;

    if (plcf->fail_mode != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    value = cf->args->elts;

    why = paywall_parse_fail_mode((char *) value[1].data, &mode);
    if (why) {
        return ngx_http_paywall_invalid(cf, &value[1], why);
    }

    plcf->fail_mode = mode;

    return NGX_CONF_OK;
}


static char *
ngx_http_paywall_deny(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_paywall_loc_conf_t *plcf = conf;

    ngx_str_t   *value;
    const char  *why;

    if (plcf->deny != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    plcf->deny = ngx_pcalloc(cf->pool, sizeof(paywall_deny));
    if (plcf->deny == NULL) {
        return NGX_CONF_ERROR;
    }

    value = cf->args->elts;

    why = paywall_parse_deny((char *) value[1].data,
                             cf->args->nelts > 2 ? (char *) value[2].data
                                                 : NULL,
                             plcf->deny);
    if (why) {
        return ngx_http_paywall_invalid(cf,
                                        &value[cf->args->nelts > 2 ? 2 : 1],
                                        why);
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_paywall_marker(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_paywall_loc_conf_t *plcf = conf;

    ngx_str_t  *value;

    if (plcf->marker.data) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (value[1].len == 0 || value[1].len > PAYWALL_FILTER_MARKER_MAX) {
        return ngx_http_paywall_invalid(cf, &value[1],
                                        "must be 1 to 255 bytes");
    }

    plcf->marker = value[1];

    return NGX_CONF_OK;
}


static char *
ngx_http_paywall_teaser_file(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_paywall_loc_conf_t *plcf = conf;

    u_char           *data;
    ssize_t           n;
    ngx_str_t        *value, name;
    ngx_file_t        file;
    ngx_file_info_t   fi;
    char             *rv;

    if (plcf->teaser.data) {
        return "is duplicate";
    }

    value = cf->args->elts;
    name = value[1];

    if (ngx_conf_full_name(cf->cycle, &name, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(&file, sizeof(ngx_file_t));

    file.name = name;
    file.log = cf->log;

    file.fd = ngx_open_file(name.data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);

    if (file.fd == NGX_INVALID_FILE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           ngx_open_file_n " \"%s\" failed", name.data);
        return NGX_CONF_ERROR;
    }

    rv = NGX_CONF_ERROR;

    if (ngx_fd_info(file.fd, &fi) == NGX_FILE_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           ngx_fd_info_n " \"%s\" failed", name.data);
        goto done;
    }

    if (ngx_file_size(&fi) > NGX_HTTP_PAYWALL_TEASER_MAX) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%s\" is larger than %d bytes",
                           name.data, NGX_HTTP_PAYWALL_TEASER_MAX);
        goto done;
    }

    data = ngx_pnalloc(cf->pool, (size_t) ngx_file_size(&fi) + 1);
    if (data == NULL) {
        goto done;
    }

    n = ngx_read_file(&file, data, (size_t) ngx_file_size(&fi), 0);

    if (n != (ssize_t) ngx_file_size(&fi)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "cannot read \"%s\"",
                           name.data);
        goto done;
    }

    data[n] = '\0';

    plcf->teaser.data = data;
    plcf->teaser.len = n;

    rv = NGX_CONF_OK;

done:

    if (ngx_close_file(file.fd) == NGX_FILE_ERROR) {
        ngx_log_error(NGX_LOG_ALERT, cf->log, ngx_errno,
                      ngx_close_file_n " \"%s\" failed", name.data);
    }

    return rv;
}


static char *
ngx_http_paywall_crawler_ranges(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_paywall_loc_conf_t *plcf = conf;

    char                 err[512];
    ngx_str_t           *value, name;
    paywall_crawlers    *crawlers;
    ngx_pool_cleanup_t  *cln;

    if (plcf->crawlers != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;
    name = value[1];

    if (ngx_conf_full_name(cf->cycle, &name, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        return NGX_CONF_ERROR;
    }

    if (paywall_crawlers_load((char *) name.data, &crawlers, err, sizeof(err))
        != 0)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "%s", err);
        return NGX_CONF_ERROR;
    }

    /* freed with the configuration, on reload */

    cln->handler = ngx_http_paywall_crawlers_cleanup;
    cln->data = crawlers;

    plcf->crawlers = crawlers;

    return NGX_CONF_OK;
}


static void
ngx_http_paywall_crawlers_cleanup(void *data)
{
    paywall_crawlers_free(data);
}


static char *
ngx_http_paywall_structured_data(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_paywall_loc_conf_t *plcf = conf;

    char       *block;
    size_t      len;
    ngx_str_t  *value;

    if (plcf->structured_data.data) {
        return "is duplicate";
    }

    value = cf->args->elts;

    block = paywall_structured_data((char *) value[1].data);
    if (block == NULL) {
        return ngx_http_paywall_invalid(cf, &value[1],
                                        "must be a CSS selector of 1 to 256 "
                                        "bytes without control characters");
    }

    len = ngx_strlen(block);

    plcf->structured_data.data = ngx_pnalloc(cf->pool, len);
    if (plcf->structured_data.data == NULL) {
        free(block);
        return NGX_CONF_ERROR;
    }

    ngx_memcpy(plcf->structured_data.data, block, len);
    plcf->structured_data.len = len;

    free(block);

    return NGX_CONF_OK;
}


/* secrets are read at start-up, as root: the files may be root's alone */

static char *
ngx_http_paywall_secret_file(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    char  *p = conf;

    ngx_str_t  *field;

    field = (ngx_str_t *) (p + cmd->offset);

    if (field->data) {
        return "is duplicate";
    }

    return ngx_http_webmodules_secret_file(cf, (size_t) cmd->post, field);
}


static char *
ngx_http_paywall_stripe_api(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_paywall_loc_conf_t *plcf = conf;

    size_t      len;
    ngx_str_t  *value;

    if (plcf->stripe_api.data) {
        return "is duplicate";
    }

    value = cf->args->elts;
    len = value[1].len;

    if ((ngx_strncmp(value[1].data, "https://", 8) != 0
         && ngx_strncmp(value[1].data, "http://", 7) != 0)
        || len > 512)
    {
        return ngx_http_paywall_invalid(cf, &value[1],
                                        "must be an http(s) URL such as "
                                        "https://api.stripe.com");
    }

    while (len > 0 && value[1].data[len - 1] == '/') {
        len--;
    }

    /* NUL-terminated where the slashes were */

    value[1].data[len] = '\0';
    value[1].len = len;

    plcf->stripe_api = value[1];

    return NGX_CONF_OK;
}


static char *
ngx_http_paywall_plan(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_paywall_loc_conf_t *plcf = conf;

    ngx_str_t   *value;
    const char  *why;

    if (plcf->plans == NGX_CONF_UNSET_PTR) {
        plcf->plans = ngx_pcalloc(cf->pool, sizeof(paywall_plans));
        if (plcf->plans == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    value = cf->args->elts;

    why = paywall_plans_add(plcf->plans, (char *) value[1].data,
                            (char *) value[2].data,
                            cf->args->nelts > 3 ? (char *) value[3].data
                                                : NULL);
    if (why) {
        return ngx_http_paywall_invalid(cf, &value[1], why);
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_paywall_return_url(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_paywall_loc_conf_t *plcf = conf;

    ngx_str_t     *value;
    paywall_deny   check;

    if (plcf->return_url.data) {
        return "is duplicate";
    }

    value = cf->args->elts;

    /* the same rule as paywall_deny redirect's URL */

    if (paywall_parse_deny("redirect", (char *) value[1].data, &check)) {
        return ngx_http_paywall_invalid(cf, &value[1],
                                        "must be a path or an http(s) URL");
    }

    plcf->return_url = value[1];

    return NGX_CONF_OK;
}


static char *
ngx_http_paywall_handler(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_paywall_loc_conf_t *plcf = conf;

    ngx_http_core_loc_conf_t  *clcf;

    if (plcf->handler) {
        return "is duplicate";
    }

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_paywall_content_handler;

    plcf->handler = cmd->offset;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_paywall_init(ngx_conf_t *cf)
{
    ngx_http_handler_pt        *h;
    ngx_http_core_main_conf_t  *cmcf;

    if (ngx_http_webmodules_metrics_init(cf, "paywall", paywall_metric_defs,
                                         paywall_metric_count,
                                         &paywall_metrics,
                                         &ngx_http_paywall_module)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    /* the access phase: after the rewrite phase, where sessions are loaded */

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_ACCESS_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_paywall_access_handler;

    ngx_http_next_header_filter = ngx_http_top_header_filter;
    ngx_http_top_header_filter = ngx_http_paywall_header_filter;

    ngx_http_next_body_filter = ngx_http_top_body_filter;
    ngx_http_top_body_filter = ngx_http_paywall_body_filter;

    ngx_http_paywall_coupon_hash = ngx_hash_key(
                                       ngx_http_paywall_coupon_name.data,
                                       ngx_http_paywall_coupon_name.len);
    ngx_http_paywall_promo_hash = ngx_hash_key(
                                       ngx_http_paywall_promo_name.data,
                                       ngx_http_paywall_promo_name.len);

    return NGX_OK;
}


/* libcurl's global state, before any thread starts: in the master */

static ngx_int_t
ngx_http_paywall_init_module(ngx_cycle_t *cycle)
{
    if (http_global_init() != 0) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                      "paywall: libcurl cannot start");
        return NGX_ERROR;
    }

    return NGX_OK;
}


static void
ngx_http_paywall_exit_process(ngx_cycle_t *cycle)
{
    (void) cycle;

    paywall_stores_close_all();
}
