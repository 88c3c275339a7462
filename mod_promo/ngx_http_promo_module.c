
/*
 * ngx_http_promo_module: nginx adapter of mod_promo.
 * The promotions are read from PostgreSQL by a thread-pool task that a
 * timer posts every second when the snapshot is due, so requests only ever
 * take the snapshot in memory. Discount codes are applied in the pre-content
 * phase, the banner is chosen in the header filter and streamed into the
 * page by the body filter; the editors' API runs as thread-pool tasks.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "cookie.h"
#include "crypto.h"
#include "promo.h"
#include "promo_store.h"
#include "req.h"
#include "webmodules_metrics.h"
#include "webmodules_util.h"


#if !(NGX_THREADS)
#error ngx_http_promo_module needs nginx built --with-threads
#endif


#define NGX_HTTP_PROMO_CLICK          1
#define NGX_HTTP_PROMO_ADMIN          2

#define NGX_HTTP_PROMO_API_LIST       1
#define NGX_HTTP_PROMO_API_GET        2
#define NGX_HTTP_PROMO_API_SAVE       3
#define NGX_HTTP_PROMO_API_ENABLE     4
#define NGX_HTTP_PROMO_API_DISABLE    5

#define NGX_HTTP_PROMO_VAR_CODE       0
#define NGX_HTTP_PROMO_VAR_COUPON     1
#define NGX_HTTP_PROMO_VAR_DISCOUNT   2
#define NGX_HTTP_PROMO_VAR_PRICE      3
#define NGX_HTTP_PROMO_VAR_ERROR      4
#define NGX_HTTP_PROMO_VAR_MESSAGE    5
#define NGX_HTTP_PROMO_VAR_ID         6

#define NGX_HTTP_PROMO_BODY_MAX       (64 * 1024)
#define NGX_HTTP_PROMO_SECRET_MIN     16
#define NGX_HTTP_PROMO_PRICE_MAX      100000000
#define NGX_HTTP_PROMO_LOGGED_CODE    64

#define NGX_HTTP_PROMO_CODE_COOKIE    "promo_code"
#define NGX_HTTP_PROMO_CSRF_COOKIE    "promo_csrf"
#define NGX_HTTP_PROMO_DISMISSED      "promo_dismissed"
#define NGX_HTTP_PROMO_CSRF_HEADER    "X-Promo-CSRF"
#define NGX_HTTP_PROMO_CSRF_HOLE      "{{CSRF}}"
#define NGX_HTTP_PROMO_CSRF_LEN       32

#define NGX_HTTP_PROMO_CSP                                                    \
    "default-src 'self'; img-src * data:; style-src 'self' 'unsafe-inline'; " \
    "script-src 'self' 'unsafe-inline'; frame-ancestors 'none'"


/* the editors' page, generated from mod_promo/admin/promo_admin.html */

extern const char    promo_admin_page[];
extern const size_t  promo_admin_page_len;


typedef enum {
    NGX_HTTP_PROMO_USER_SESSION,
    NGX_HTTP_PROMO_USER_ENV,
    NGX_HTTP_PROMO_USER_HEADER
} ngx_http_promo_user_kind_e;


/* promo_user: the nginx variable that holds the user id */

typedef struct {
    ngx_http_promo_user_kind_e     kind;
    ngx_str_t                      variable;
    ngx_uint_t                     hash;
} ngx_http_promo_source_t;


/*
 * One per distinct promo_store_config of the configuration: this process's
 * store, and the task that refreshes its snapshot
 */

typedef struct ngx_http_promo_store_s  ngx_http_promo_store_t;

struct ngx_http_promo_store_s {
    promo_store_config             config;
    ngx_thread_pool_t             *thread_pool;
    promo_store                   *opened;   /* this process's */
    ngx_thread_task_t              task;
    time_t                         now;
    char                           note[512];
    int                            note_is_error;
    unsigned                       owned:1;  /* refresh_due said so */
    unsigned                       posted:1;
    ngx_http_promo_store_t        *next;
};


typedef struct {
    ngx_http_promo_store_t        *stores;
    ngx_event_t                    timer;
} ngx_http_promo_main_conf_t;


typedef struct {
    ngx_flag_t                     enable;
    ngx_str_t                      postgres;
    ngx_str_t                      memcached;
    ngx_int_t                      refresh;
    promo_placement               *placement;
    ngx_str_t                      secret;
    ngx_http_promo_source_t       *user;
    ngx_int_t                      base_price;    /* cents; -1: none */
    ngx_str_t                      base_currency;
    ngx_str_t                      click_url;
    ngx_uint_t                     handler;       /* not inherited */
    ngx_str_t                      thread_pool_name;
    ngx_thread_pool_t             *thread_pool;

    ngx_http_promo_store_t        *store;         /* NULL: no promo_postgres */
} ngx_http_promo_loc_conf_t;


/* the body filter's state for one response */

typedef struct {
    promo_inject                   inject;
    ngx_http_request_t            *request;
    ngx_str_t                      block;    /* the banner: request memory */
    ngx_str_t                      marker;   /* configuration memory */
    ngx_buf_t                     *in;       /* the buffer being fed */
    ngx_chain_t                   *in_ref;   /* the last output link into it */
    ngx_chain_t                   *out;
    ngx_chain_t                  **last_out;
    ngx_chain_t                   *busy;
    ngx_chain_t                   *free;
    unsigned                       finished:1;
} ngx_http_promo_filter_ctx_t;


typedef struct ngx_http_promo_call_s  ngx_http_promo_call_t;


typedef struct {
    ngx_http_request_t            *request;
    promo_store                   *store;        /* the snapshot's */
    promo_snapshot                *snapshot;     /* held for the request */
    const promo_promotion         *code;         /* the discount that applies */
    promo_code_status              refused;      /* with the refused flag */
    long long                      promotion_id; /* the banner shown, or 0 */
    ngx_http_promo_filter_ctx_t   *filter;
    ngx_http_promo_call_t         *call;         /* while its body is read */
    unsigned                       acquired:1;
    unsigned                       decided:1;    /* codes looked at */
    unsigned                       refused_code:1;
    unsigned                       chosen:1;     /* the banner decided */
} ngx_http_promo_ctx_t;


/* the editors' API: one call to the store */

struct ngx_http_promo_call_s {
    ngx_http_request_t            *request;
    promo_store                   *store;
    ngx_thread_pool_t             *thread_pool;
    ngx_uint_t                     route;
    long long                      id;
    char                          *editor;
    u_char                        *body;
    size_t                         body_len;
    ngx_fd_t                       body_fd;  /* NGX_INVALID_FILE: in memory */
    promo_api_result               result;
    ngx_uint_t                     failed;   /* an HTTP status, or 0 */
    char                           err[256];
};


static ngx_int_t ngx_http_promo_code_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_promo_apply_arg(ngx_http_request_t *r,
    ngx_http_promo_loc_conf_t *plcf, ngx_http_promo_ctx_t *ctx,
    ngx_str_t *raw, ngx_str_t *value);
static ngx_int_t ngx_http_promo_set_code_cookie(ngx_http_request_t *r,
    ngx_http_promo_loc_conf_t *plcf, const promo_promotion *promotion);
static ngx_int_t ngx_http_promo_valid_cookie(ngx_http_request_t *r,
    ngx_http_promo_loc_conf_t *plcf, char *code, size_t len);
static ngx_http_promo_ctx_t *ngx_http_promo_acquire(ngx_http_request_t *r,
    ngx_http_promo_loc_conf_t *plcf);
static ngx_http_promo_ctx_t *ngx_http_promo_get_ctx(ngx_http_request_t *r);
static ngx_http_promo_ctx_t *ngx_http_promo_create_ctx(ngx_http_request_t *r);
static void ngx_http_promo_cleanup(void *data);

static ngx_int_t ngx_http_promo_header_filter(ngx_http_request_t *r);
static ngx_int_t ngx_http_promo_pick(ngx_http_request_t *r,
    ngx_http_promo_loc_conf_t *plcf, ngx_http_promo_ctx_t *ctx,
    const promo_promotion **promotion);
static ngx_int_t ngx_http_promo_body_filter(ngx_http_request_t *r,
    ngx_chain_t *in);
static ngx_int_t ngx_http_promo_pass(ngx_http_request_t *r,
    ngx_http_promo_filter_ctx_t *f, ngx_chain_t *in);
static void ngx_http_promo_finished(ngx_http_request_t *r,
    ngx_http_promo_filter_ctx_t *f);
static int ngx_http_promo_emit(void *data, const char *p, size_t len);
static ngx_int_t ngx_http_promo_special_buf(ngx_http_promo_filter_ctx_t *f,
    ngx_buf_t *in);
static ngx_int_t ngx_http_promo_filter_output(ngx_http_request_t *r,
    ngx_http_promo_filter_ctx_t *f);

static ngx_int_t ngx_http_promo_content_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_promo_click_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_promo_admin_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_promo_admin_page(ngx_http_request_t *r,
    ngx_str_t *prefix);
static ngx_int_t ngx_http_promo_csrf_ok(ngx_http_request_t *r);
static void ngx_http_promo_body_read(ngx_http_request_t *r);
static ngx_int_t ngx_http_promo_body(ngx_http_request_t *r,
    ngx_http_promo_call_t *call);
static ngx_int_t ngx_http_promo_post_call(ngx_http_request_t *r,
    ngx_http_promo_call_t *call);
static void ngx_http_promo_call_thread(void *data, ngx_log_t *log);
static void ngx_http_promo_call_done(ngx_event_t *ev);
static ngx_int_t ngx_http_promo_api_answer(ngx_http_request_t *r,
    ngx_http_promo_call_t *call);

static ngx_int_t ngx_http_promo_refuse(ngx_http_request_t *r,
    ngx_uint_t status, const char *message);
static ngx_int_t ngx_http_promo_json_error(ngx_http_request_t *r,
    ngx_uint_t status, const char *message);
static ngx_int_t ngx_http_promo_text(ngx_http_request_t *r,
    ngx_uint_t status, const char *message);
static ngx_int_t ngx_http_promo_location(ngx_http_request_t *r,
    u_char *url, size_t len);
static ngx_int_t ngx_http_promo_cookie(ngx_http_request_t *r,
    const char *name, size_t name_len, ngx_str_t *value);
static ngx_int_t ngx_http_promo_variable_str(ngx_http_request_t *r,
    ngx_str_t *name, ngx_uint_t hash, ngx_str_t *value);

static void ngx_http_promo_timer_handler(ngx_event_t *ev);
static void ngx_http_promo_refresh_thread(void *data, ngx_log_t *log);
static void ngx_http_promo_refresh_done(ngx_event_t *ev);

static ngx_int_t ngx_http_promo_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_promo_add_variables(ngx_conf_t *cf);

static void *ngx_http_promo_create_main_conf(ngx_conf_t *cf);
static void *ngx_http_promo_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_promo_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static char *ngx_http_promo_invalid(ngx_conf_t *cf, ngx_str_t *value,
    const char *why);
static char *ngx_http_promo_refresh(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_promo_placement(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_promo_secret_file(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_promo_user(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_promo_make_source(ngx_conf_t *cf, ngx_str_t *arg,
    ngx_http_promo_source_t **out);
static char *ngx_http_promo_base_price(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_promo_click_url(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_promo_handler(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_int_t ngx_http_promo_init(ngx_conf_t *cf);
static ngx_int_t ngx_http_promo_init_process(ngx_cycle_t *cycle);
static void ngx_http_promo_exit_process(ngx_cycle_t *cycle);


static ngx_command_t  ngx_http_promo_commands[] = {

    { ngx_string("promo"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_promo_loc_conf_t, enable),
      NULL },

    { ngx_string("promo_postgres"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_promo_loc_conf_t, postgres),
      NULL },

    { ngx_string("promo_memcached"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_promo_loc_conf_t, memcached),
      NULL },

    { ngx_string("promo_refresh"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_promo_refresh,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("promo_placement"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE12,
      ngx_http_promo_placement,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("promo_secret_file"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_promo_secret_file,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("promo_user"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_promo_user,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("promo_base_price"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE2,
      ngx_http_promo_base_price,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("promo_click_url"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_promo_click_url,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("promo_thread_pool"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_promo_loc_conf_t, thread_pool_name),
      NULL },

    { ngx_string("promo_click"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_promo_handler,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_PROMO_CLICK,
      NULL },

    { ngx_string("promo_admin"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_promo_handler,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_PROMO_ADMIN,
      NULL },

    { ngx_string("webmodules_metrics"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_webmodules_metrics,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_promo_module_ctx = {
    ngx_http_promo_add_variables,          /* preconfiguration */
    ngx_http_promo_init,                   /* postconfiguration */

    ngx_http_promo_create_main_conf,       /* create main configuration */
    NULL,                                  /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_promo_create_loc_conf,        /* create location configuration */
    ngx_http_promo_merge_loc_conf          /* merge location configuration */
};


ngx_module_t  ngx_http_promo_module = {
    NGX_MODULE_V1,
    &ngx_http_promo_module_ctx,            /* module context */
    ngx_http_promo_commands,               /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_http_promo_init_process,           /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_promo_exit_process,           /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_http_output_header_filter_pt  ngx_http_next_header_filter;
static ngx_http_output_body_filter_pt    ngx_http_next_body_filter;


static ngx_http_variable_t  ngx_http_promo_vars[] = {

    { ngx_string("promo_code"), NULL, ngx_http_promo_variable,
      NGX_HTTP_PROMO_VAR_CODE, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("promo_stripe_coupon"), NULL, ngx_http_promo_variable,
      NGX_HTTP_PROMO_VAR_COUPON, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("promo_discount"), NULL, ngx_http_promo_variable,
      NGX_HTTP_PROMO_VAR_DISCOUNT, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("promo_first_year_price"), NULL, ngx_http_promo_variable,
      NGX_HTTP_PROMO_VAR_PRICE, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("promo_code_error"), NULL, ngx_http_promo_variable,
      NGX_HTTP_PROMO_VAR_ERROR, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("promo_code_message"), NULL, ngx_http_promo_variable,
      NGX_HTTP_PROMO_VAR_MESSAGE, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("promo_id"), NULL, ngx_http_promo_variable,
      NGX_HTTP_PROMO_VAR_ID, NGX_HTTP_VAR_NOCACHEABLE, 0 },

      ngx_http_null_variable
};


/* mod_paywall's variables, looked up by name: that module may not be loaded */

static ngx_str_t   ngx_http_promo_access_name = ngx_string("paywall_access");
static ngx_str_t   ngx_http_promo_plan_name = ngx_string("paywall_plan");
static ngx_str_t   ngx_http_promo_remote_user_name = ngx_string("remote_user");
static ngx_uint_t  ngx_http_promo_access_hash;
static ngx_uint_t  ngx_http_promo_plan_hash;
static ngx_uint_t  ngx_http_promo_remote_user_hash;

static promo_placement  ngx_http_promo_after_body = {
    PROMO_PLACE_AFTER_BODY, NULL
};


/* ------------------------------------------------------ discount codes */

/*
 * The pre-content phase: after the access phase, so that a refused login
 * applies no code (as Apache's fixups), and a phase whose handlers all run,
 * whatever "satisfy" says; before the content handler, so that fastcgi_param
 * and mod_paywall's checkout see the variables. Never blocks: the snapshot is
 * in memory.
 */

static ngx_int_t
ngx_http_promo_code_handler(ngx_http_request_t *r)
{
    u_char                     *dst, *src;
    time_t                      now;
    ngx_str_t                   arg, value, cookie;
    ngx_uint_t                  has_arg, has_cookie;
    ngx_http_promo_ctx_t       *ctx;
    const promo_promotion      *promotion;
    ngx_http_promo_loc_conf_t  *plcf;
    char                        code[PROMO_CODE_MAX + 1];

    if (r != r->main) {
        return NGX_DECLINED;
    }

    plcf = ngx_http_get_module_loc_conf(r, ngx_http_promo_module);

    if (plcf->store == NULL || plcf->store->opened == NULL) {
        return NGX_DECLINED;
    }

    /* one decision per request: an internal redirect must not count twice */

    ctx = ngx_http_promo_get_ctx(r);

    if (ctx && ctx->decided) {
        return NGX_DECLINED;
    }

    has_arg = (ngx_http_arg(r, (u_char *) "promo", sizeof("promo") - 1, &arg)
               == NGX_OK);

    has_cookie = plcf->secret.len
                 && ngx_http_promo_cookie(r, NGX_HTTP_PROMO_CODE_COOKIE,
                                          sizeof(NGX_HTTP_PROMO_CODE_COOKIE)
                                          - 1, &cookie)
                    == NGX_OK;

    if (!has_arg && !has_cookie) {
        return NGX_DECLINED;
    }

    ctx = ngx_http_promo_acquire(r, plcf);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->decided = 1;

    if (ctx->snapshot == NULL) {
        return NGX_DECLINED;
    }

    if (has_arg) {
        value.data = ngx_pnalloc(r->pool, arg.len);
        if (value.data == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        dst = value.data;
        src = arg.data;
        ngx_unescape_uri(&dst, &src, arg.len, 0);
        value.len = dst - value.data;

        if (ngx_http_promo_apply_arg(r, plcf, ctx, &arg, &value) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    if (ctx->code || !has_cookie) {
        return NGX_DECLINED;
    }

    now = ngx_time();

    if (promo_cookie_parse(plcf->secret.data, plcf->secret.len,
                           (char *) cookie.data, cookie.len, now, code,
                           sizeof(code))
        != 0)
    {
        return NGX_DECLINED;
    }

    /*
     * a code once applied stays applied until its promotion ends, even past
     * its redemption limit: the visitor was promised it
     */

    promotion = promo_snapshot_find_code(ctx->snapshot, code);

    if (promo_code_check(promotion, now, 0) == PROMO_CODE_OK) {
        ctx->code = promotion;
    }

    return NGX_DECLINED;
}


/*
 * ?promo=CODE: value is unescaped, raw as it came (logged: escaped, it holds
 * no control character). The result is in ctx: the code, or why it was
 * refused.
 */

static ngx_int_t
ngx_http_promo_apply_arg(ngx_http_request_t *r,
    ngx_http_promo_loc_conf_t *plcf, ngx_http_promo_ctx_t *ctx,
    ngx_str_t *raw, ngx_str_t *value)
{
    time_t                  now;
    promo_code_status       status;
    const promo_promotion  *promotion;
    char                    code[PROMO_CODE_MAX + 1];
    char                    held[PROMO_CODE_MAX + 1];

    now = ngx_time();
    promotion = NULL;
    status = PROMO_CODE_UNKNOWN;

    if (promo_code_normalise((char *) value->data, value->len, code,
                             sizeof(code))
        == 0)
    {
        promotion = promo_snapshot_find_code(ctx->snapshot, code);
        status = promo_code_check(promotion, now,
                                  promotion
                                  ? promo_snapshot_redemptions(ctx->store,
                                                               ctx->snapshot,
                                                               promotion)
                                  : 0);
    }

    if (status != PROMO_CODE_OK) {
        ctx->refused = status;
        ctx->refused_code = 1;
        metrics_add(promo_metrics, PROMO_METRIC_CODES,
                    PROMO_CODE_RESULT_REFUSED, 1);

        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "promo code \"%*s\" refused: %s",
                      ngx_min(raw->len, NGX_HTTP_PROMO_LOGGED_CODE),
                      raw->data, promo_code_status_name(status));
        return NGX_OK;
    }

    ctx->code = promotion;

    /*
     * a visitor following the same link again (a reload, a prefetch) holds
     * the code already: one redemption per visitor, and only when a cookie
     * carries it on
     */

    if (ngx_http_promo_valid_cookie(r, plcf, held, sizeof(held)) == NGX_OK
        && ngx_strcmp(held, promotion->code) == 0)
    {
        return NGX_OK;
    }

    if (plcf->secret.len == 0) {
        return NGX_OK;
    }

    if (ngx_http_promo_set_code_cookie(r, plcf, promotion) != NGX_OK) {
        return NGX_ERROR;
    }

    promo_count(ctx->store, promotion->id, PROMO_COUNT_REDEMPTION, now);

    return NGX_OK;
}


static ngx_int_t
ngx_http_promo_set_code_cookie(ngx_http_request_t *r,
    ngx_http_promo_loc_conf_t *plcf, const promo_promotion *promotion)
{
    char        value[PROMO_COOKIE_MAX];
    size_t      len;
    u_char     *p;
    time_t      now;
    ngx_uint_t  secure;

    now = ngx_time();

    /* without promo_secret_file the code applies to this request only */

    if (plcf->secret.len == 0 || promotion->ends_at <= now) {
        return NGX_OK;
    }

    if (promo_cookie_make(plcf->secret.data, plcf->secret.len,
                          promotion->code, promotion->ends_at, value,
                          sizeof(value))
        == 0)
    {
        return NGX_OK;
    }

    secure = 0;

#if (NGX_HTTP_SSL)
    secure = (r->connection->ssl != NULL);
#endif

    len = sizeof(NGX_HTTP_PROMO_CODE_COOKIE "=") - 1 + ngx_strlen(value)
          + sizeof("; Path=/; Max-Age=") - 1 + NGX_TIME_T_LEN
          + sizeof("; HttpOnly; SameSite=Lax; Secure") - 1;

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    len = ngx_snprintf(p, len, "%s=%s; Path=/; Max-Age=%T; HttpOnly; "
                       "SameSite=Lax%s", NGX_HTTP_PROMO_CODE_COOKIE, value,
                       promotion->ends_at - now, secure ? "; Secure" : "")
          - p;

    return ngx_http_webmodules_add_header(r, "Set-Cookie", p, len);
}


/* NGX_OK when the visitor holds a promo_code cookie that verifies */

static ngx_int_t
ngx_http_promo_valid_cookie(ngx_http_request_t *r,
    ngx_http_promo_loc_conf_t *plcf, char *code, size_t len)
{
    ngx_str_t  cookie;

    if (plcf->secret.len == 0
        || ngx_http_promo_cookie(r, NGX_HTTP_PROMO_CODE_COOKIE,
                                 sizeof(NGX_HTTP_PROMO_CODE_COOKIE) - 1,
                                 &cookie)
           != NGX_OK)
    {
        return NGX_DECLINED;
    }

    if (promo_cookie_parse(plcf->secret.data, plcf->secret.len,
                           (char *) cookie.data, cookie.len, ngx_time(), code,
                           len)
        != 0)
    {
        return NGX_DECLINED;
    }

    return NGX_OK;
}


/* the request's context with the snapshot taken, once; NULL: no memory */

static ngx_http_promo_ctx_t *
ngx_http_promo_acquire(ngx_http_request_t *r, ngx_http_promo_loc_conf_t *plcf)
{
    ngx_http_promo_ctx_t  *ctx;

    ctx = ngx_http_promo_get_ctx(r);

    if (ctx == NULL) {
        ctx = ngx_http_promo_create_ctx(r);
        if (ctx == NULL) {
            return NULL;
        }
    }

    if (!ctx->acquired && plcf->store && plcf->store->opened) {
        ctx->acquired = 1;
        ctx->store = plcf->store->opened;
        ctx->snapshot = promo_snapshot_acquire(ctx->store);
    }

    return ctx;
}


static ngx_http_promo_ctx_t *
ngx_http_promo_get_ctx(ngx_http_request_t *r)
{
    ngx_pool_cleanup_t    *cln;
    ngx_http_promo_ctx_t  *ctx;

    r = r->main;

    ctx = ngx_http_get_module_ctx(r, ngx_http_promo_module);

    if (ctx == NULL && (r->internal || r->filter_finalize)) {

        /*
         * the module context may be either cleared by an internal
         * redirect or never set: look for the cleanup set with it
         */

        for (cln = r->pool->cleanup; cln; cln = cln->next) {
            if (cln->handler == ngx_http_promo_cleanup) {
                ctx = cln->data;
                ngx_http_set_ctx(r, ctx, ngx_http_promo_module);
                break;
            }
        }
    }

    return ctx;
}


static ngx_http_promo_ctx_t *
ngx_http_promo_create_ctx(ngx_http_request_t *r)
{
    ngx_pool_cleanup_t    *cln;
    ngx_http_promo_ctx_t  *ctx;

    r = r->main;

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_promo_ctx_t));
    if (ctx == NULL) {
        return NULL;
    }

    ctx->request = r;

    /* a cleanup, not only the module ctx: it survives internal redirects */

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NULL;
    }

    cln->handler = ngx_http_promo_cleanup;
    cln->data = ctx;
    ngx_http_set_ctx(r, ctx, ngx_http_promo_module);

    return ctx;
}


static void
ngx_http_promo_cleanup(void *data)
{
    ngx_http_promo_ctx_t  *ctx = data;

    /* the snapshot may have been replaced meanwhile: the last one frees it */

    promo_snapshot_release(ctx->snapshot);
    ctx->snapshot = NULL;
}


/* ---------------------------------------------------------- the filters */

static ngx_uint_t
ngx_http_promo_is_html(ngx_http_request_t *r)
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


/*
 * The banner is chosen here rather than in a phase handler: the header
 * filter always runs after the access phase, where mod_paywall sets
 * $paywall_access and $paywall_plan, whatever the order in which the two
 * modules were loaded (phase handlers of dynamic modules run in the reverse
 * order of load_module), and only for responses that can take a banner.
 */

static ngx_int_t
ngx_http_promo_header_filter(ngx_http_request_t *r)
{
    char                         *html;
    const char                   *cached;
    size_t                        len;
    ngx_int_t                     rc;
    ngx_http_promo_ctx_t         *ctx;
    const promo_promotion        *promotion;
    ngx_http_promo_loc_conf_t    *plcf;
    ngx_http_promo_filter_ctx_t  *f;

    if (r != r->main) {
        return ngx_http_next_header_filter(r);
    }

    plcf = ngx_http_get_module_loc_conf(r, ngx_http_promo_module);

    /*
     * complete HTML pages only; a body the backend compressed itself is
     * left alone: decompressing every page would cost more than the banner
     * is worth, and nginx's own gzip runs after this filter anyway
     */

    if (!plcf->enable
        || plcf->handler
        || plcf->store == NULL
        || plcf->store->opened == NULL
        || r->headers_out.status != NGX_HTTP_OK
        || r->method != NGX_HTTP_GET
        || r->header_only
        || r->headers_in.range
        || !ngx_http_promo_is_html(r)
        || (r->headers_out.content_encoding
            && r->headers_out.content_encoding->value.len))
    {
        return ngx_http_next_header_filter(r);
    }

    ctx = ngx_http_promo_get_ctx(r);

    if (ctx && ctx->chosen) {
        return ngx_http_next_header_filter(r);
    }

    ctx = ngx_http_promo_acquire(r, plcf);
    if (ctx == NULL) {
        return NGX_ERROR;
    }

    ctx->chosen = 1;

    if (ctx->snapshot == NULL) {
        return ngx_http_next_header_filter(r);
    }

    rc = ngx_http_promo_pick(r, plcf, ctx, &promotion);

    if (rc != NGX_OK) {
        return NGX_ERROR;
    }

    if (promotion == NULL) {
        return ngx_http_next_header_filter(r);
    }

    f = ngx_pcalloc(r->pool, sizeof(ngx_http_promo_filter_ctx_t));
    if (f == NULL) {
        return NGX_ERROR;
    }

    /* rendered once per snapshot, which the request holds until its end */

    cached = promo_snapshot_banner(ctx->snapshot, promotion,
                                   (char *) plcf->click_url.data, &len);

    if (cached) {
        f->block.data = (u_char *) cached;
        f->block.len = len;

    } else {
        html = promo_banner_html(promotion, (char *) plcf->click_url.data,
                                 &len);
        if (html == NULL) {
            return NGX_ERROR;
        }

        f->block.data = ngx_pnalloc(r->pool, len);
        if (f->block.data == NULL) {
            free(html);
            return NGX_ERROR;
        }

        ngx_memcpy(f->block.data, html, len);
        f->block.len = len;
        free(html);
    }

    if (plcf->placement->marker) {
        f->marker.data = (u_char *) plcf->placement->marker;
        f->marker.len = ngx_strlen(plcf->placement->marker);
    }

    f->request = r;
    f->last_out = &f->out;

    promo_inject_init(&f->inject, plcf->placement, (char *) f->block.data,
                      f->block.len);

    ctx->filter = f;
    ctx->promotion_id = promotion->id;

    ngx_http_clear_content_length(r);
    ngx_http_clear_accept_ranges(r);
    ngx_http_clear_etag(r);

    /* the page now holds a banner of this moment: no 304 for another copy */

    ngx_http_clear_last_modified(r);
    r->allow_ranges = 0;
    r->filter_need_in_memory = 1;

    return ngx_http_next_header_filter(r);
}


/* NGX_OK with *promotion set, NULL when none fits the page */

static ngx_int_t
ngx_http_promo_pick(ngx_http_request_t *r, ngx_http_promo_loc_conf_t *plcf,
    ngx_http_promo_ctx_t *ctx, const promo_promotion **promotion)
{
    size_t                        count;
    unsigned                      roll;
    ngx_str_t                     user, access, plan, dismissed;
    promo_visit                   visit;
    const promo_promotion *const *list;

    *promotion = NULL;

    list = promo_snapshot_promotions(ctx->snapshot, &count);

    if (count == 0) {
        return NGX_OK;
    }

    ngx_memzero(&visit, sizeof(promo_visit));

    visit.path = (char *) r->uri.data;
    visit.path_len = r->uri.len;
    visit.now = ngx_time();

    if (ngx_http_promo_variable_str(r, &plcf->user->variable,
                                    plcf->user->hash, &user)
        != NGX_OK
        || ngx_http_promo_variable_str(r, &ngx_http_promo_access_name,
                                       ngx_http_promo_access_hash, &access)
           != NGX_OK
        || ngx_http_promo_variable_str(r, &ngx_http_promo_plan_name,
                                       ngx_http_promo_plan_hash, &plan)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    visit.logged_in = (user.len != 0);

    if (access.len) {
        visit.paywall_access = ngx_http_webmodules_cstr(r->pool, access.data,
                                                   access.len);
        if (visit.paywall_access == NULL) {
            return NGX_ERROR;
        }
    }

    if (plan.len) {
        visit.paywall_plan = ngx_http_webmodules_cstr(r->pool, plan.data, plan.len);
        if (visit.paywall_plan == NULL) {
            return NGX_ERROR;
        }
    }

    if (ngx_http_promo_cookie(r, NGX_HTTP_PROMO_DISMISSED,
                              sizeof(NGX_HTTP_PROMO_DISMISSED) - 1, &dismissed)
        == NGX_OK)
    {
        visit.dismissed = (char *) dismissed.data;
        visit.dismissed_len = dismissed.len;
    }

    /* ngx_random() gives 31 bits: two of them make a uniform 32-bit roll */

    roll = ((unsigned) ngx_random() << 1) ^ (unsigned) ngx_random();

    *promotion = promo_choose(list, count, &visit, roll);

    return NGX_OK;
}


/*
 * Buffers: every input buffer is fed to the injector whole. What it emits is
 * either a piece of that very buffer, which the output references (the last
 * such reference carries the input as its shadow, and the input is marked
 * consumed only when that reference has been sent, as the sub filter does),
 * or the banner (request memory) or the marker (configuration memory), also
 * referenced, or bytes the injector held back from earlier buffers while
 * they might be part of the anchor, which are copied (they are valid only
 * until the next call into it). An input buffer nothing references is marked
 * consumed at once: the injector has copied what it keeps. Once the banner is
 * in and nothing of this filter is in flight, the rest passes untouched.
 */

static ngx_int_t
ngx_http_promo_body_filter(ngx_http_request_t *r, ngx_chain_t *in)
{
    ngx_buf_t                    *b;
    ngx_chain_t                  *cl;
    ngx_http_promo_ctx_t         *ctx;
    ngx_http_promo_filter_ctx_t  *f;

    if (r != r->main) {
        return ngx_http_next_body_filter(r, in);
    }

    ctx = ngx_http_promo_get_ctx(r);

    if (ctx == NULL || ctx->filter == NULL) {
        return ngx_http_next_body_filter(r, in);
    }

    f = ctx->filter;

    if (in == NULL && f->busy == NULL) {
        return ngx_http_next_body_filter(r, in);
    }

    if (f->busy == NULL
        && (f->finished || promo_inject_inserted(&f->inject)))
    {
        return ngx_http_promo_pass(r, f, in);
    }

    for (cl = in; cl; cl = cl->next) {
        b = cl->buf;

        if (!f->finished && ngx_buf_in_memory(b) && b->last > b->pos) {
            f->in = b;
            f->in_ref = NULL;

            if (promo_inject_feed(&f->inject, (char *) b->pos,
                                  b->last - b->pos, ngx_http_promo_emit, f)
                != 0)
            {
                return NGX_ERROR;
            }

            f->in = NULL;

            if (f->in_ref) {
                f->in_ref->buf->shadow = b;

                /* the write filter flushes it, so upstream gets it back */
                f->in_ref->buf->recycled = b->recycled;

            } else {
                b->pos = b->last;

                if (b->in_file) {
                    b->file_pos = b->file_last;
                }
            }

        } else if (!f->finished && ngx_buf_size(b)) {

            /* r->filter_need_in_memory has the copy filter read files */

            ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                          "promo filter: a body buffer not in memory");
            return NGX_ERROR;

        } else {
            b->pos = b->last;

            if (b->in_file) {
                b->file_pos = b->file_last;
            }
        }

        if (b->last_buf && !f->finished) {

            /* an anchor cut off by the end of the page is page */

            if (promo_inject_finish(&f->inject, ngx_http_promo_emit, f) != 0)
            {
                return NGX_ERROR;
            }

            ngx_http_promo_finished(r, f);
        }

        if (b->last_buf || b->flush) {
            if (ngx_http_promo_special_buf(f, b) != NGX_OK) {
                return NGX_ERROR;
            }
        }
    }

    if (f->out == NULL && f->busy == NULL) {
        return NGX_OK;
    }

    return ngx_http_promo_filter_output(r, f);
}


/* the banner is in (or the page over): the input goes on as it is */

static ngx_int_t
ngx_http_promo_pass(ngx_http_request_t *r, ngx_http_promo_filter_ctx_t *f,
    ngx_chain_t *in)
{
    ngx_chain_t  *cl;

    if (!f->finished) {
        for (cl = in; cl; cl = cl->next) {
            if (cl->buf->last_buf) {
                ngx_http_promo_finished(r, f);
                break;
            }
        }
    }

    return ngx_http_next_body_filter(r, in);
}


/* the whole page went through: an impression when the banner is in it */

static void
ngx_http_promo_finished(ngx_http_request_t *r, ngx_http_promo_filter_ctx_t *f)
{
    ngx_http_promo_ctx_t  *ctx;

    f->finished = 1;

    if (!promo_inject_inserted(&f->inject)) {
        ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "promo filter: no place for the banner");
        return;
    }

    ctx = ngx_http_promo_get_ctx(r);

    if (ctx && ctx->store) {
        promo_count(ctx->store, ctx->promotion_id, PROMO_COUNT_IMPRESSION,
                    ngx_time());
    }
}


static int
ngx_http_promo_emit(void *data, const char *p, size_t len)
{
    ngx_http_promo_filter_ctx_t  *f = data;

    u_char       *d;
    ngx_buf_t    *b, *in;
    ngx_chain_t  *cl;

    d = (u_char *) p;
    in = f->in;

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

    } else if ((d >= f->block.data && d + len <= f->block.data + f->block.len)
               || (f->marker.len && d >= f->marker.data
                   && d + len <= f->marker.data + f->marker.len))
    {
        /* the banner or the marker: referenced */

        ngx_memzero(b, sizeof(ngx_buf_t));

        b->pos = d;
        b->last = d + len;
        b->memory = 1;

    } else {

        /* what the injector held back: copied */

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

    b->tag = (ngx_buf_tag_t) &ngx_http_promo_module;

    cl->next = NULL;
    *f->last_out = cl;
    f->last_out = &cl->next;

    return 0;
}


static ngx_int_t
ngx_http_promo_special_buf(ngx_http_promo_filter_ctx_t *f, ngx_buf_t *in)
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
    b->tag = (ngx_buf_tag_t) &ngx_http_promo_module;

    cl->next = NULL;
    *f->last_out = cl;
    f->last_out = &cl->next;

    return NGX_OK;
}


static ngx_int_t
ngx_http_promo_filter_output(ngx_http_request_t *r,
    ngx_http_promo_filter_ctx_t *f)
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


/* ------------------------------------------------------------ handlers */

static ngx_int_t
ngx_http_promo_content_handler(ngx_http_request_t *r)
{
    ngx_http_promo_loc_conf_t  *plcf;

    plcf = ngx_http_get_module_loc_conf(r, ngx_http_promo_module);

    if (plcf->handler == NGX_HTTP_PROMO_CLICK) {
        return ngx_http_promo_click_handler(r);
    }

    return ngx_http_promo_admin_handler(r);
}


/*
 * The banner's link: counts the click, applies the banner's discount to a
 * visitor who holds no valid code yet, and sends the visitor on. Never
 * blocks.
 */

static ngx_int_t
ngx_http_promo_click_handler(ngx_http_request_t *r)
{
    off_t                       id;
    time_t                      now;
    ngx_int_t                   rc;
    ngx_str_t                   arg;
    ngx_http_promo_ctx_t       *ctx;
    const promo_promotion      *promotion;
    ngx_http_promo_loc_conf_t  *plcf;
    char                        code[PROMO_CODE_MAX + 1];

    plcf = ngx_http_get_module_loc_conf(r, ngx_http_promo_module);

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

        return ngx_http_promo_text(r, NGX_HTTP_NOT_ALLOWED,
                                   "GET a promotion link");
    }

    ctx = ngx_http_promo_acquire(r, plcf);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    promotion = NULL;

    if (ctx->snapshot
        && ngx_http_arg(r, (u_char *) "id", sizeof("id") - 1, &arg) == NGX_OK)
    {
        id = ngx_atoof(arg.data, arg.len);

        if (id > 0) {
            promotion = promo_snapshot_find_id(ctx->snapshot, (long long) id);
        }
    }

    if (promotion == NULL) {
        return ngx_http_promo_text(r, NGX_HTTP_NOT_FOUND, "no such promotion");
    }

    now = ngx_time();

    promo_count(ctx->store, promotion->id, PROMO_COUNT_CLICK, now);

    /* following the banner applies its discount, unless a code is held */

    if (promotion->discount != PROMO_DISCOUNT_NONE
        && plcf->secret.len
        && promo_code_check(promotion, now,
                            promo_snapshot_redemptions(ctx->store,
                                                       ctx->snapshot,
                                                       promotion))
           == PROMO_CODE_OK
        && ngx_http_promo_valid_cookie(r, plcf, code, sizeof(code)) != NGX_OK)
    {
        if (ngx_http_promo_set_code_cookie(r, plcf, promotion) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        promo_count(ctx->store, promotion->id, PROMO_COUNT_REDEMPTION, now);
    }

    /* a path stays relative: absolute_redirect decides, as for any redirect */

    if (ngx_http_promo_location(r, (u_char *) promotion->cta_url,
                                ngx_strlen(promotion->cta_url))
        != NGX_OK
        || ngx_http_webmodules_add_header(r, "Cache-Control", (u_char *) "no-store",
                                     sizeof("no-store") - 1)
           != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return NGX_HTTP_MOVED_TEMPORARILY;
}


/*
 * The editors' page and its API, routed relative to the location's prefix:
 *     PREFIX                                  GET: the page
 *     PREFIX api/promotions                   GET: list; POST: create
 *     PREFIX api/promotions/N                 GET: read; PUT: update
 *     PREFIX api/promotions/N/enable|disable  POST
 * The location's own authentication protects it; POST and PUT also need the
 * page's CSRF token.
 */

static ngx_int_t
ngx_http_promo_admin_handler(ngx_http_request_t *r)
{
    u_char                     *p, *last, *route;
    size_t                      rest;
    ngx_int_t                   rc;
    ngx_str_t                   prefix, editor, allow;
    ngx_uint_t                  write;
    long long                   id;
    ngx_table_elt_t            *type;
    ngx_http_promo_ctx_t       *ctx;
    ngx_http_promo_call_t      *call;
    ngx_http_core_loc_conf_t   *clcf;
    ngx_http_promo_loc_conf_t  *plcf;

    plcf = ngx_http_get_module_loc_conf(r, ngx_http_promo_module);
    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    /*
     * the body is kept for POST and PUT until the route takes one; any
     * refusal discards it (ngx_http_discard_request_body does so once)
     */

    write = (r->method & (NGX_HTTP_POST|NGX_HTTP_PUT)) != 0;

    if (!write) {
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }
    }

    if (plcf->store->opened == NULL) {
        return ngx_http_promo_refuse(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                     "promotions unavailable");
    }

    /* the location's path, or the request's own for a regex location */

    prefix = clcf->name;

    if (clcf->named
#if (NGX_PCRE)
        || clcf->regex
#endif
        || prefix.len == 0
        || r->uri.len < prefix.len
        || ngx_strncmp(r->uri.data, prefix.data, prefix.len) != 0)
    {
        prefix = r->uri;
    }

    if (prefix.len == 0) {
        return ngx_http_promo_refuse(r, NGX_HTTP_NOT_FOUND, "no such route");
    }

    if (prefix.data[prefix.len - 1] != '/') {

        if (r->uri.len > prefix.len && r->uri.data[prefix.len] != '/') {
            return ngx_http_promo_refuse(r, NGX_HTTP_NOT_FOUND,
                                         "no such route");
        }

        p = ngx_pnalloc(r->pool, prefix.len + 1);
        if (p == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_memcpy(p, prefix.data, prefix.len);
        p[prefix.len] = '/';

        if (r->uri.len == prefix.len) {

            /* the prefix without its slash: the page is one level down */

            rc = ngx_http_discard_request_body(r);
            if (rc != NGX_OK) {
                return rc;
            }

            if (ngx_http_promo_location(r, p, prefix.len + 1) != NGX_OK) {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            return NGX_HTTP_MOVED_PERMANENTLY;
        }

        prefix.data = p;
        prefix.len++;
    }

    route = r->uri.data + prefix.len;
    last = r->uri.data + r->uri.len;
    rest = last - route;

    if (rest == 0) {
        if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
            ngx_str_set(&allow, "GET, HEAD");
            goto not_allowed;
        }

        return ngx_http_promo_admin_page(r, &prefix);
    }

    if (rest < sizeof("api/promotions") - 1
        || ngx_strncmp(route, "api/promotions", sizeof("api/promotions") - 1)
           != 0)
    {
        return ngx_http_promo_refuse(r, NGX_HTTP_NOT_FOUND, "no such route");
    }

    route += sizeof("api/promotions") - 1;
    id = 0;

    if (route < last) {
        if (*route != '/') {
            return ngx_http_promo_refuse(r, NGX_HTTP_NOT_FOUND,
                                         "no such route");
        }

        /* an id: 1 to 18 digits */

        for (p = ++route; p < last && *p >= '0' && *p <= '9'; p++) {
            if (p - route == 18) {
                return ngx_http_promo_refuse(r, NGX_HTTP_NOT_FOUND,
                                             "no such route");
            }

            id = id * 10 + (*p - '0');
        }

        if (id <= 0) {
            return ngx_http_promo_refuse(r, NGX_HTTP_NOT_FOUND,
                                         "no such route");
        }

        route = p;
    }

    call = ngx_pcalloc(r->pool, sizeof(ngx_http_promo_call_t));
    if (call == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    call->request = r;
    call->store = plcf->store->opened;
    call->thread_pool = plcf->thread_pool;
    call->id = id;
    call->body_fd = NGX_INVALID_FILE;

    rest = last - route;

    if (id == 0) {
        call->route = (r->method == NGX_HTTP_POST) ? NGX_HTTP_PROMO_API_SAVE
                                                   : NGX_HTTP_PROMO_API_LIST;
        ngx_str_set(&allow, "GET, HEAD, POST");

    } else if (rest == 0) {
        call->route = (r->method == NGX_HTTP_PUT) ? NGX_HTTP_PROMO_API_SAVE
                                                  : NGX_HTTP_PROMO_API_GET;
        ngx_str_set(&allow, "GET, HEAD, PUT");

    } else if (rest == sizeof("/enable") - 1
               && ngx_strncmp(route, "/enable", rest) == 0)
    {
        call->route = NGX_HTTP_PROMO_API_ENABLE;
        ngx_str_set(&allow, "POST");

    } else if (rest == sizeof("/disable") - 1
               && ngx_strncmp(route, "/disable", rest) == 0)
    {
        call->route = NGX_HTTP_PROMO_API_DISABLE;
        ngx_str_set(&allow, "POST");

    } else {
        return ngx_http_promo_refuse(r, NGX_HTTP_NOT_FOUND, "no such route");
    }

    /* as on Apache: the token first, for any state-changing method */

    if (write && !ngx_http_promo_csrf_ok(r)) {
        return ngx_http_promo_refuse(r, NGX_HTTP_FORBIDDEN,
                                     "missing or invalid CSRF token");
    }

    switch (call->route) {

    case NGX_HTTP_PROMO_API_ENABLE:
    case NGX_HTTP_PROMO_API_DISABLE:
        if (r->method != NGX_HTTP_POST) {
            goto not_allowed;
        }

        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }

        break;

    case NGX_HTTP_PROMO_API_SAVE:
        break;

    default: /* NGX_HTTP_PROMO_API_LIST, NGX_HTTP_PROMO_API_GET */
        if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
            goto not_allowed;
        }

        break;
    }

    if (call->route != NGX_HTTP_PROMO_API_LIST
        && call->route != NGX_HTTP_PROMO_API_GET)
    {
        if (ngx_http_promo_variable_str(r, &ngx_http_promo_remote_user_name,
                                        ngx_http_promo_remote_user_hash,
                                        &editor)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        call->editor = ngx_http_webmodules_cstr(r->pool, editor.data, editor.len);
        if (call->editor == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    if (call->route != NGX_HTTP_PROMO_API_SAVE) {
        if (ngx_http_promo_post_call(r, call) != NGX_OK) {
            return ngx_http_promo_json_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                             "promotions unavailable");
        }

        /* finalized when the task is done */

        r->main->count++;

        return NGX_DONE;
    }

    type = r->headers_in.content_type;

    if (type == NULL
        || type->value.len < sizeof("application/json") - 1
        || ngx_strncasecmp(type->value.data, (u_char *) "application/json",
                           sizeof("application/json") - 1)
           != 0)
    {
        return ngx_http_promo_refuse(r, NGX_HTTP_UNSUPPORTED_MEDIA_TYPE,
                                     "send application/json");
    }

    if (r->headers_in.content_length_n > NGX_HTTP_PROMO_BODY_MAX) {
        return ngx_http_promo_refuse(r, NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                     "body larger than 64 KB");
    }

    ctx = ngx_http_promo_get_ctx(r);

    if (ctx == NULL) {
        ctx = ngx_http_promo_create_ctx(r);
        if (ctx == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    ctx->call = call;

    /* a body in one buffer, or else all of it in the temporary file */

    r->request_body_in_single_buf = 1;

    rc = ngx_http_read_client_request_body(r, ngx_http_promo_body_read);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;

not_allowed:

    if (ngx_http_webmodules_add_header(r, "Allow", allow.data, allow.len)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_promo_refuse(r, NGX_HTTP_NOT_ALLOWED,
                                 "method not allowed here");
}


/* the page, with a fresh CSRF token in its placeholders and in a cookie */

static ngx_int_t
ngx_http_promo_admin_page(ngx_http_request_t *r, ngx_str_t *prefix)
{
    u_char       *body, *p, *page, *end, *hole;
    size_t        len, n;
    ngx_uint_t    secure;
    u_char        raw[NGX_HTTP_PROMO_CSRF_LEN / 2];
    char          token[NGX_HTTP_PROMO_CSRF_LEN + 1];

    if (crypto_random_bytes(raw, sizeof(raw)) != 0) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "promo admin: no randomness for a CSRF token");
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    crypto_hex_encode(raw, sizeof(raw), token);

    secure = 0;

#if (NGX_HTTP_SSL)
    secure = (r->connection->ssl != NULL);
#endif

    len = sizeof(NGX_HTTP_PROMO_CSRF_COOKIE "=; Path=") - 1
          + NGX_HTTP_PROMO_CSRF_LEN + prefix->len
          + sizeof("; HttpOnly; SameSite=Strict; Secure") - 1;

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    len = ngx_snprintf(p, len, "%s=%s; Path=%V; HttpOnly; SameSite=Strict%s",
                       NGX_HTTP_PROMO_CSRF_COOKIE, token, prefix,
                       secure ? "; Secure" : "")
          - p;

    if (ngx_http_webmodules_add_header(r, "Set-Cookie", p, len) != NGX_OK
        || ngx_http_webmodules_add_header(r, "Cache-Control", (u_char *) "no-store",
                                     sizeof("no-store") - 1)
           != NGX_OK
        || ngx_http_webmodules_add_header(r, "Content-Security-Policy",
                                     (u_char *) NGX_HTTP_PROMO_CSP,
                                     sizeof(NGX_HTTP_PROMO_CSP) - 1)
           != NGX_OK
        || ngx_http_webmodules_add_header(r, "X-Frame-Options", (u_char *) "DENY",
                                     sizeof("DENY") - 1)
           != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    page = (u_char *) promo_admin_page;
    end = page + promo_admin_page_len;

    /* the token is as long as hex as the placeholder is: count them first */

    n = 0;

    for (p = page;
         (hole = ngx_strlchr(p, end, '{')) != NULL;
         p = hole + 1)
    {
        if ((size_t) (end - hole) >= sizeof(NGX_HTTP_PROMO_CSRF_HOLE) - 1
            && ngx_memcmp(hole, NGX_HTTP_PROMO_CSRF_HOLE,
                          sizeof(NGX_HTTP_PROMO_CSRF_HOLE) - 1) == 0)
        {
            n++;
        }
    }

    len = promo_admin_page_len
          + n * (NGX_HTTP_PROMO_CSRF_LEN
                 - (sizeof(NGX_HTTP_PROMO_CSRF_HOLE) - 1));

    body = ngx_pnalloc(r->pool, len);
    if (body == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = body;

    while ((hole = ngx_strlchr(page, end, '{')) != NULL) {
        p = ngx_cpymem(p, page, hole - page);
        page = hole;

        if ((size_t) (end - hole) >= sizeof(NGX_HTTP_PROMO_CSRF_HOLE) - 1
            && ngx_memcmp(hole, NGX_HTTP_PROMO_CSRF_HOLE,
                          sizeof(NGX_HTTP_PROMO_CSRF_HOLE) - 1) == 0)
        {
            p = ngx_cpymem(p, token, NGX_HTTP_PROMO_CSRF_LEN);
            page += sizeof(NGX_HTTP_PROMO_CSRF_HOLE) - 1;

        } else {
            *p++ = *page++;
        }
    }

    p = ngx_cpymem(p, page, end - page);

    ngx_str_set(&r->headers_out.content_type, "text/html");
    r->headers_out.content_type_len = sizeof("text/html") - 1;
    r->headers_out.content_type_lowcase = NULL;
    ngx_str_set(&r->headers_out.charset, "utf-8");

    return ngx_http_webmodules_send(r, NGX_HTTP_OK, body, p - body);
}


/* the X-Promo-CSRF header equals the promo_csrf cookie */

static ngx_int_t
ngx_http_promo_csrf_ok(ngx_http_request_t *r)
{
    ngx_str_t         cookie;
    ngx_table_elt_t  *h;

    h = ngx_http_webmodules_header_in(r, NGX_HTTP_PROMO_CSRF_HEADER,
                                 sizeof(NGX_HTTP_PROMO_CSRF_HEADER) - 1);

    if (h == NULL
        || ngx_http_promo_cookie(r, NGX_HTTP_PROMO_CSRF_COOKIE,
                                 sizeof(NGX_HTTP_PROMO_CSRF_COOKIE) - 1,
                                 &cookie)
           != NGX_OK)
    {
        return 0;
    }

    return cookie.len >= NGX_HTTP_PROMO_CSRF_LEN
           && h->value.len == cookie.len
           && crypto_equal_consttime(h->value.data, cookie.data, cookie.len);
}


static void
ngx_http_promo_body_read(ngx_http_request_t *r)
{
    ngx_int_t               rc;
    const char             *message;
    ngx_http_promo_ctx_t   *ctx;
    ngx_http_promo_call_t  *call;

    ctx = ngx_http_promo_get_ctx(r);
    call = ctx ? ctx->call : NULL;

    if (call == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    rc = ngx_http_promo_body(r, call);

    if (rc != NGX_OK) {
        message = (rc == NGX_HTTP_REQUEST_ENTITY_TOO_LARGE)
                  ? "body larger than 64 KB" : "the body could not be read";
        ngx_http_finalize_request(r, ngx_http_promo_json_error(r, rc, message));
        return;
    }

    if (ngx_http_promo_post_call(r, call) != NGX_OK) {
        rc = ngx_http_promo_json_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                       "promotions unavailable");
        ngx_http_finalize_request(r, rc);
    }
}


/*
 * NGX_OK with the body in call, or an HTTP status. A body in the temporary
 * file is read by the task.
 */

static ngx_int_t
ngx_http_promo_body(ngx_http_request_t *r, ngx_http_promo_call_t *call)
{
    off_t                     len;
    u_char                   *p;
    ngx_buf_t                *b;
    ngx_chain_t              *cl;
    ngx_http_request_body_t  *rb;

    rb = r->request_body;

    if (rb == NULL) {
        call->body = (u_char *) "";
        return NGX_OK;
    }

    if (rb->temp_file) {
        len = rb->temp_file->file.offset;

        if (len > NGX_HTTP_PROMO_BODY_MAX) {
            return NGX_HTTP_REQUEST_ENTITY_TOO_LARGE;
        }

        call->body = ngx_pnalloc(r->pool, (size_t) len + 1);
        if (call->body == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        call->body_len = (size_t) len;
        call->body_fd = rb->temp_file->file.fd;

        return NGX_OK;
    }

    len = 0;

    for (cl = rb->bufs; cl; cl = cl->next) {
        b = cl->buf;

        if (!ngx_buf_in_memory(b)) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "promo admin: request body not in memory");
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        len += b->last - b->pos;
    }

    if (len > NGX_HTTP_PROMO_BODY_MAX) {
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


static ngx_int_t
ngx_http_promo_post_call(ngx_http_request_t *r, ngx_http_promo_call_t *call)
{
    ngx_thread_task_t       *task;
    ngx_http_promo_call_t  **tcall;

    task = ngx_thread_task_alloc(r->pool, sizeof(ngx_http_promo_call_t *));
    if (task == NULL) {
        return NGX_ERROR;
    }

    tcall = task->ctx;
    *tcall = call;

    task->handler = ngx_http_promo_call_thread;
    task->event.handler = ngx_http_promo_call_done;
    task->event.data = call;

    if (ngx_thread_task_post(call->thread_pool, task) != NGX_OK) {
        return NGX_ERROR;
    }

    /* the task owns the request until it is done: events wait */

    r->write_event_handler = ngx_http_request_empty_handler;

    r->main->blocked++;
    r->aio = 1;

    return NGX_OK;
}


static void
ngx_http_promo_call_thread(void *data, ngx_log_t *log)
{
    ngx_http_promo_call_t  *call = *(ngx_http_promo_call_t **) data;

    off_t       done;
    u_char     *p, *last;
    ssize_t     n;
    ngx_err_t   err;

    (void) log;

    switch (call->route) {

    case NGX_HTTP_PROMO_API_LIST:
        promo_api_list(call->store, &call->result);
        return;

    case NGX_HTTP_PROMO_API_GET:
        promo_api_get(call->store, call->id, &call->result);
        return;

    case NGX_HTTP_PROMO_API_ENABLE:
    case NGX_HTTP_PROMO_API_DISABLE:
        promo_api_set_enabled(call->store, call->id,
                              call->route == NGX_HTTP_PROMO_API_ENABLE,
                              call->editor, &call->result);
        return;

    default: /* NGX_HTTP_PROMO_API_SAVE */
        break;
    }

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

    promo_api_save(call->store, call->id, (char *) call->body, call->body_len,
                   call->editor, &call->result);
}


static void
ngx_http_promo_call_done(ngx_event_t *ev)
{
    ngx_int_t               rc;
    ngx_connection_t       *c;
    ngx_http_request_t     *r;
    ngx_http_promo_call_t  *call;

    call = ev->data;
    r = call->request;
    c = r->connection;

    ngx_http_set_log_request(c->log, r);

    r->main->blocked--;
    r->aio = 0;

    if (c->error) {
        promo_api_result_free(&call->result);
        ngx_http_finalize_request(r, NGX_HTTP_CLIENT_CLOSED_REQUEST);
        ngx_http_run_posted_requests(c);
        return;
    }

    if (call->failed) {
        ngx_log_error(NGX_LOG_ERR, c->log, 0, "promo admin: %s", call->err);
        promo_api_result_free(&call->result);
        rc = ngx_http_promo_json_error(r, call->failed,
                                       "the body could not be read");

    } else {
        rc = ngx_http_promo_api_answer(r, call);
    }

    ngx_http_finalize_request(r, rc);
    ngx_http_run_posted_requests(c);
}


static ngx_int_t
ngx_http_promo_api_answer(ngx_http_request_t *r, ngx_http_promo_call_t *call)
{
    u_char            *body;
    size_t             len;
    ngx_uint_t         status, level;
    promo_api_result  *result;

    result = &call->result;
    status = (ngx_uint_t) result->status;

    if (result->body == NULL || status < NGX_HTTP_OK || status > 599) {
        promo_api_result_free(result);
        return ngx_http_promo_json_error(r, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                         "the promotions could not answer");
    }

    len = result->body_len;

    body = ngx_pnalloc(r->pool, len);
    if (body == NULL) {
        promo_api_result_free(result);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memcpy(body, result->body, len);
    promo_api_result_free(result);

    if (status >= NGX_HTTP_BAD_REQUEST) {
        level = (status >= NGX_HTTP_INTERNAL_SERVER_ERROR) ? NGX_LOG_ERR
                                                           : NGX_LOG_INFO;

        ngx_log_error(level, r->connection->log, 0, "promo admin: %ui %*s",
                      status, ngx_min(len, 512), body);
    }

    ngx_str_set(&r->headers_out.content_type, "application/json");
    r->headers_out.content_type_len = sizeof("application/json") - 1;
    r->headers_out.content_type_lowcase = NULL;

    if (ngx_http_webmodules_add_header(r, "Cache-Control", (u_char *) "no-store",
                                  sizeof("no-store") - 1)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_webmodules_send(r, status, body, len);
}


/* ------------------------------------------------------------- helpers */

/* a JSON error, once whatever body the request has is discarded */

static ngx_int_t
ngx_http_promo_refuse(ngx_http_request_t *r, ngx_uint_t status,
    const char *message)
{
    ngx_int_t  rc;

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    return ngx_http_promo_json_error(r, status, message);
}


static ngx_int_t
ngx_http_promo_json_error(ngx_http_request_t *r, ngx_uint_t status,
    const char *message)
{
    u_char     *body;
    size_t      len;
    ngx_uint_t  level;

    level = (status >= NGX_HTTP_INTERNAL_SERVER_ERROR) ? NGX_LOG_ERR
                                                       : NGX_LOG_INFO;

    ngx_log_error(level, r->connection->log, 0, "promo admin: %ui %s",
                  status, message);

    /* the messages are ASCII without quotes: no escaping needed */

    len = sizeof("{\"error\":\"\"}\n") - 1 + ngx_strlen(message);

    body = ngx_pnalloc(r->pool, len);
    if (body == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_sprintf(body, "{\"error\":\"%s\"}\n", message);

    ngx_str_set(&r->headers_out.content_type, "application/json");
    r->headers_out.content_type_len = sizeof("application/json") - 1;
    r->headers_out.content_type_lowcase = NULL;

    if (ngx_http_webmodules_add_header(r, "Cache-Control", (u_char *) "no-store",
                                  sizeof("no-store") - 1)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_webmodules_send(r, status, body, len);
}


static ngx_int_t
ngx_http_promo_text(ngx_http_request_t *r, ngx_uint_t status,
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

    if (ngx_http_webmodules_add_header(r, "Cache-Control", (u_char *) "no-store",
                                  sizeof("no-store") - 1)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_webmodules_send(r, status, body, len + 1);
}


/* a redirect's Location, copied; nginx makes a path absolute if asked */

static ngx_int_t
ngx_http_promo_location(ngx_http_request_t *r, u_char *url, size_t len)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
#if (nginx_version >= 1023000)
    h->next = NULL;
#endif
    ngx_str_set(&h->key, "Location");

    h->value.data = ngx_pnalloc(r->pool, len);
    if (h->value.data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(h->value.data, url, len);
    h->value.len = len;

    ngx_http_clear_location(r);
    r->headers_out.location = h;

    return NGX_OK;
}


/* the first cookie called name of any Cookie header */

static ngx_int_t
ngx_http_promo_cookie(ngx_http_request_t *r, const char *name,
    size_t name_len, ngx_str_t *value)
{
    size_t             len;
    const char        *p;
#if (nginx_version >= 1023000)
    ngx_table_elt_t   *h;
#else
    ngx_uint_t         i;
    ngx_table_elt_t  **hh, *h;
#endif

#if (nginx_version >= 1023000)
    for (h = r->headers_in.cookie; h; h = h->next) {
#else
    hh = r->headers_in.cookies.elts;

    for (i = 0; i < r->headers_in.cookies.nelts; i++) {
        h = hh[i];
#endif
        if (cookie_find((char *) h->value.data, h->value.len, name, name_len,
                        &p, &len))
        {
            value->data = (u_char *) p;
            value->len = len;
            return NGX_OK;
        }
    }

    return NGX_DECLINED;
}


/* a variable's text, empty when it is missing, empty or unknown */

static ngx_int_t
ngx_http_promo_variable_str(ngx_http_request_t *r, ngx_str_t *name,
    ngx_uint_t hash, ngx_str_t *value)
{
    ngx_http_variable_value_t  *vv;

    ngx_str_null(value);

    vv = ngx_http_get_variable(r, name, hash);
    if (vv == NULL) {
        return NGX_ERROR;
    }

    if (!vv->not_found && vv->len) {
        value->data = vv->data;
        value->len = vv->len;
    }

    return NGX_OK;
}


/* ------------------------------------------------------------ snapshots */

/*
 * Every second each worker asks its stores whether the snapshot is due; the
 * one that is gets refreshed by a thread-pool task (which also adds this
 * process's counts to PostgreSQL). A refresh the queue could not take stays
 * this process's own and is posted again at the next tick.
 */

static void
ngx_http_promo_timer_handler(ngx_event_t *ev)
{
    time_t                       now;
    ngx_http_promo_store_t      *s;
    ngx_http_promo_main_conf_t  *pmcf;

    pmcf = ev->data;
    now = ngx_time();

    for (s = pmcf->stores; s; s = s->next) {

        if (s->opened == NULL || s->posted) {
            continue;
        }

        if (!s->owned) {
            if (!promo_store_refresh_due(s->opened, now)) {
                continue;
            }

            s->owned = 1;
        }

        s->now = now;
        s->note[0] = '\0';
        s->note_is_error = 0;

        /* the thread pool logs a full queue */

        if (ngx_thread_task_post(s->thread_pool, &s->task) == NGX_OK) {
            s->posted = 1;
        }
    }

    if (!ngx_exiting) {
        ngx_add_timer(ev, 1000);
    }
}


static void
ngx_http_promo_refresh_thread(void *data, ngx_log_t *log)
{
    ngx_http_promo_store_t  *s = data;

    (void) log;

    promo_store_refresh(s->opened, s->now, s->note, sizeof(s->note),
                        &s->note_is_error);
}


static void
ngx_http_promo_refresh_done(ngx_event_t *ev)
{
    ngx_http_promo_store_t  *s = ev->data;

    ngx_uint_t  level;

    s->posted = 0;
    s->owned = 0;

    if (s->note[0]) {
        level = s->note_is_error ? NGX_LOG_ERR : NGX_LOG_NOTICE;
        ngx_log_error(level, ev->log, 0, "%s", s->note);
    }
}


/* ----------------------------------------------------------- variables */

static ngx_int_t
ngx_http_promo_variable(ngx_http_request_t *r, ngx_http_variable_value_t *v,
    uintptr_t data)
{
    u_char                     *p;
    const char                 *s;
    ngx_http_promo_ctx_t       *ctx;
    const promo_promotion      *code;
    ngx_http_promo_loc_conf_t  *plcf;

    ctx = ngx_http_promo_get_ctx(r);

    v->not_found = 1;

    if (ctx == NULL) {
        return NGX_OK;
    }

    code = ctx->code;
    s = NULL;
    p = NULL;

    switch (data) {

    case NGX_HTTP_PROMO_VAR_CODE:
        s = code ? code->code : NULL;
        break;

    case NGX_HTTP_PROMO_VAR_COUPON:
        s = code ? code->stripe_coupon : NULL;
        break;

    case NGX_HTTP_PROMO_VAR_DISCOUNT:
        if (code == NULL) {
            break;
        }

        p = ngx_pnalloc(r->pool, NGX_INT64_LEN + sizeof(".00 ") + 3);
        if (p == NULL) {
            return NGX_ERROR;
        }

        if (code->discount == PROMO_DISCOUNT_PERCENT) {
            v->len = ngx_sprintf(p, "%ui%%", (ngx_uint_t) code->percent_off)
                     - p;

        } else if (code->discount == PROMO_DISCOUNT_AMOUNT) {
            v->len = ngx_sprintf(p, "%L.%02L %s",
                                 (int64_t) (code->amount_off / 100),
                                 (int64_t) (code->amount_off % 100),
                                 code->currency)
                     - p;

        } else {
            p = NULL;
        }

        break;

    case NGX_HTTP_PROMO_VAR_PRICE:
        plcf = ngx_http_get_module_loc_conf(r, ngx_http_promo_module);

        if (code == NULL || plcf->base_price < 0) {
            break;
        }

        p = ngx_pnalloc(r->pool, NGX_INT64_LEN);
        if (p == NULL) {
            return NGX_ERROR;
        }

        v->len = ngx_sprintf(p, "%L",
                             (int64_t) promo_first_year_price(code,
                                 plcf->base_price,
                                 (char *) plcf->base_currency.data))
                 - p;
        break;

    case NGX_HTTP_PROMO_VAR_ERROR:
        s = ctx->refused_code ? promo_code_status_name(ctx->refused) : NULL;
        break;

    case NGX_HTTP_PROMO_VAR_MESSAGE:
        s = ctx->refused_code ? promo_code_status_message(ctx->refused)
                              : NULL;
        break;

    default: /* NGX_HTTP_PROMO_VAR_ID */
        if (ctx->promotion_id == 0) {
            break;
        }

        p = ngx_pnalloc(r->pool, NGX_INT64_LEN);
        if (p == NULL) {
            return NGX_ERROR;
        }

        v->len = ngx_sprintf(p, "%L", (int64_t) ctx->promotion_id) - p;
        break;
    }

    /* the snapshot the strings live in is held until the request ends */

    if (s) {
        p = (u_char *) s;
        v->len = ngx_strlen(s);
    }

    if (p == NULL) {
        return NGX_OK;
    }

    v->data = p;
    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;

    return NGX_OK;
}


static ngx_int_t
ngx_http_promo_add_variables(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var, *v;

    for (v = ngx_http_promo_vars; v->name.len; v++) {
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
ngx_http_promo_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_promo_main_conf_t  *pmcf;

    pmcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_promo_main_conf_t));
    if (pmcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     pmcf->stores = NULL;
     *     pmcf->timer = { 0 };
     */

    return pmcf;
}


static void *
ngx_http_promo_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_promo_loc_conf_t  *conf;

    conf = ngx_pcalloc(cf->pool, sizeof(ngx_http_promo_loc_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     conf->postgres = { 0, NULL };
     *     conf->memcached = { 0, NULL };
     *     conf->secret = { 0, NULL };
     *     conf->base_currency = { 0, NULL };
     *     conf->click_url = { 0, NULL };
     *     conf->handler = 0;
     *     conf->thread_pool_name = { 0, NULL };
     *     conf->thread_pool = NULL;
     *     conf->store = NULL;
     */

    conf->enable = NGX_CONF_UNSET;
    conf->refresh = NGX_CONF_UNSET;
    conf->placement = NGX_CONF_UNSET_PTR;
    conf->user = NGX_CONF_UNSET_PTR;
    conf->base_price = NGX_CONF_UNSET;

    return conf;
}


static char *
ngx_http_promo_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_promo_loc_conf_t *prev = parent;
    ngx_http_promo_loc_conf_t *conf = child;

    ngx_str_t                    value;
    ngx_http_promo_store_t      *s;
    ngx_http_promo_main_conf_t  *pmcf;

    ngx_conf_merge_value(conf->enable, prev->enable, 0);
    ngx_conf_merge_str_value(conf->postgres, prev->postgres, "");
    ngx_conf_merge_str_value(conf->memcached, prev->memcached, "");
    ngx_conf_merge_value(conf->refresh, prev->refresh, PROMO_REFRESH_DEFAULT);
    ngx_conf_merge_ptr_value(conf->placement, prev->placement,
                             &ngx_http_promo_after_body);
    ngx_conf_merge_str_value(conf->secret, prev->secret, "");
    ngx_conf_merge_ptr_value(conf->user, prev->user, NULL);
    ngx_conf_merge_str_value(conf->click_url, prev->click_url,
                             "/promo/click");
    ngx_conf_merge_str_value(conf->thread_pool_name, prev->thread_pool_name,
                             "default");

    /* the price and its currency go together */

    if (conf->base_price == NGX_CONF_UNSET) {
        conf->base_price = (prev->base_price == NGX_CONF_UNSET)
                           ? -1 : prev->base_price;
        conf->base_currency = prev->base_currency;
    }

    if (conf->user == NULL) {

        /* session:user_id, as if configured */

        ngx_str_set(&value, "session:user_id");

        if (ngx_http_promo_make_source(cf, &value, &conf->user)
            != NGX_CONF_OK)
        {
            return NGX_CONF_ERROR;
        }
    }

    if (conf->postgres.len == 0) {
        if (conf->handler) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "\"%s\" needs "
                               "\"promo_postgres\"",
                               conf->handler == NGX_HTTP_PROMO_CLICK
                               ? "promo_click" : "promo_admin");
            return NGX_CONF_ERROR;
        }

        return NGX_CONF_OK;
    }

    conf->thread_pool = ngx_thread_pool_add(cf, &conf->thread_pool_name);
    if (conf->thread_pool == NULL) {
        return NGX_CONF_ERROR;
    }

    /* one store per distinct configuration, opened in each worker */

    pmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_promo_module);

    for (s = pmcf->stores; s; s = s->next) {
        if (s->config.refresh == conf->refresh
            && ngx_strcmp(s->config.postgres, conf->postgres.data) == 0
            && (s->config.memcached
                ? conf->memcached.len
                  && ngx_strcmp(s->config.memcached, conf->memcached.data) == 0
                : conf->memcached.len == 0))
        {
            break;
        }
    }

    if (s == NULL) {
        s = ngx_pcalloc(cf->pool, sizeof(ngx_http_promo_store_t));
        if (s == NULL) {
            return NGX_CONF_ERROR;
        }

        /* arguments are NUL-terminated and live as long as the cycle */

        s->config.postgres = (const char *) conf->postgres.data;
        s->config.memcached = conf->memcached.len
                              ? (const char *) conf->memcached.data : NULL;
        s->config.refresh = (long) conf->refresh;

        /* the refresh runs in the pool of the first scope that uses it */

        s->thread_pool = conf->thread_pool;

        s->next = pmcf->stores;
        pmcf->stores = s;
    }

    conf->store = s;

    return NGX_CONF_OK;
}


static char *
ngx_http_promo_invalid(ngx_conf_t *cf, ngx_str_t *value, const char *why)
{
    ngx_str_t  *name;

    name = cf->args->elts;

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid value \"%V\" in \"%V\" directive: %s",
                       value, &name[0], why);

    return NGX_CONF_ERROR;
}


static char *
ngx_http_promo_refresh(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_promo_loc_conf_t *plcf = conf;

    ngx_int_t   n;
    ngx_str_t  *value;

    if (plcf->refresh != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    value = cf->args->elts;

    n = ngx_atoi(value[1].data, value[1].len);

    if (n < 1 || n > 3600) {
        return ngx_http_promo_invalid(cf, &value[1],
                                      "must be a number of seconds "
                                      "from 1 to 3600");
    }

    plcf->refresh = n;

    return NGX_CONF_OK;
}


static char *
ngx_http_promo_placement(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_promo_loc_conf_t *plcf = conf;

    ngx_str_t   *value, both;
    const char  *why;

    if (plcf->placement != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    plcf->placement = ngx_pcalloc(cf->pool, sizeof(promo_placement));
    if (plcf->placement == NULL) {
        return NGX_CONF_ERROR;
    }

    value = cf->args->elts;

    /* the marker stays in the arguments, which live as long as the cycle */

    why = promo_parse_placement((char *) value[1].data,
                                cf->args->nelts > 2 ? (char *) value[2].data
                                                    : NULL,
                                plcf->placement);
    if (why == NULL) {
        return NGX_CONF_OK;
    }

    if (cf->args->nelts == 2) {
        return ngx_http_promo_invalid(cf, &value[1], why);
    }

    both.len = value[1].len + 1 + value[2].len;
    both.data = ngx_pnalloc(cf->pool, both.len);
    if (both.data == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_sprintf(both.data, "%V %V", &value[1], &value[2]);

    return ngx_http_promo_invalid(cf, &both, why);
}


/*
 * Read at start-up, as root: the file may be root's alone. The secret is its
 * first line, without the line end and trailing blanks.
 */

static char *
ngx_http_promo_secret_file(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_promo_loc_conf_t *plcf = conf;

    if (plcf->secret.data) {
        return "is duplicate";
    }

    return ngx_http_webmodules_secret_file(cf, NGX_HTTP_PROMO_SECRET_MIN,
                                           &plcf->secret);
}


/*
 * promo_user: session:KEY reads mod_session_shared's $session_shared_<key>
 * (lower case, any other character than [a-z0-9_] as "_"), env:NAME the
 * variable $<name> (env:REMOTE_USER: $remote_user), header:NAME
 * $http_<name>; the hash is computed once, here. As for paywall_user.
 */

static char *
ngx_http_promo_user(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_promo_loc_conf_t *plcf = conf;

    ngx_str_t  *value;

    if (plcf->user != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    return ngx_http_promo_make_source(cf, &value[1], &plcf->user);
}


static char *
ngx_http_promo_make_source(ngx_conf_t *cf, ngx_str_t *arg,
    ngx_http_promo_source_t **out)
{
    u_char                   c, *d, *s, *last;
    size_t                   prefix;
    ngx_str_t                name;
    req_source               parsed;
    const char              *why;
    ngx_http_promo_source_t  *src;

    src = ngx_pcalloc(cf->pool, sizeof(ngx_http_promo_source_t));
    if (src == NULL) {
        return NGX_CONF_ERROR;
    }

    /* the same rule as paywall_user's: one parser in core/ */

    why = req_source_parse((char *) arg->data, &parsed);
    if (why) {
        return ngx_http_promo_invalid(cf, arg, why);
    }

    name.data = (u_char *) parsed.name;

    switch (parsed.kind) {

    case REQ_SOURCE_SESSION:
        src->kind = NGX_HTTP_PROMO_USER_SESSION;
        prefix = sizeof("session_shared_") - 1;
        break;

    case REQ_SOURCE_ENV:
        src->kind = NGX_HTTP_PROMO_USER_ENV;
        prefix = 0;
        break;

    default: /* REQ_SOURCE_HEADER */
        src->kind = NGX_HTTP_PROMO_USER_HEADER;
        prefix = sizeof("http_") - 1;
        break;
    }

    name.len = arg->data + arg->len - name.data;

    src->variable.len = prefix + name.len;
    src->variable.data = ngx_pnalloc(cf->pool, src->variable.len);
    if (src->variable.data == NULL) {
        return NGX_CONF_ERROR;
    }

    d = ngx_cpymem(src->variable.data,
                   src->kind == NGX_HTTP_PROMO_USER_SESSION
                   ? "session_shared_" : "http_", prefix);

    last = name.data + name.len;

    for (s = name.data; s < last; s++) {
        c = ngx_tolower(*s);

        if (src->kind == NGX_HTTP_PROMO_USER_SESSION
            && !((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
        {
            c = '_';

        } else if (src->kind == NGX_HTTP_PROMO_USER_HEADER && c == '-') {
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
ngx_http_promo_base_price(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_promo_loc_conf_t *plcf = conf;

    u_char      c;
    ngx_int_t   cents;
    ngx_str_t  *value;
    ngx_uint_t  i;

    if (plcf->base_price != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    value = cf->args->elts;

    cents = ngx_atoi(value[1].data, value[1].len);

    if (cents == NGX_ERROR || cents > NGX_HTTP_PROMO_PRICE_MAX) {
        return ngx_http_promo_invalid(cf, &value[1],
                                      "must be a price in cents");
    }

    for (i = 0; i < value[2].len; i++) {
        c = ngx_tolower(value[2].data[i]);

        if (c < 'a' || c > 'z') {
            break;
        }
    }

    if (value[2].len != 3 || i != 3) {
        return ngx_http_promo_invalid(cf, &value[2],
                                      "must be a three-letter currency code "
                                      "such as eur");
    }

    /* lower case, in place: the argument stays NUL-terminated */

    ngx_strlow(value[2].data, value[2].data, 3);

    plcf->base_price = cents;
    plcf->base_currency = value[2];

    return NGX_CONF_OK;
}


static char *
ngx_http_promo_click_url(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_promo_loc_conf_t *plcf = conf;

    u_char     *p;
    ngx_str_t  *value;

    if (plcf->click_url.data) {
        return "is duplicate";
    }

    value = cf->args->elts;

    /* it goes into the banner's HTML, with "?id=N" after it */

    if (value[1].len == 0
        || value[1].data[0] != '/'
        || (value[1].len > 1 && value[1].data[1] == '/'))
    {
        goto invalid;
    }

    for (p = value[1].data; p < value[1].data + value[1].len; p++) {
        if (*p <= ' ' || *p == 0x7f || ngx_strchr(" \"'<>?#\\", *p)) {
            goto invalid;
        }
    }

    plcf->click_url = value[1];

    return NGX_CONF_OK;

invalid:

    return ngx_http_promo_invalid(cf, &value[1],
                                  "must be a path such as /promo/click");
}


static char *
ngx_http_promo_handler(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_promo_loc_conf_t *plcf = conf;

    ngx_http_core_loc_conf_t  *clcf;

    if (plcf->handler) {
        return "is duplicate";
    }

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_promo_content_handler;

    plcf->handler = cmd->offset;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_promo_init(ngx_conf_t *cf)
{
    ngx_http_handler_pt        *h;
    ngx_http_core_main_conf_t  *cmcf;

    if (ngx_http_webmodules_metrics_init(cf, "promo", promo_metric_defs,
                                         promo_metric_count,
                                         &promo_metrics,
                                         &ngx_http_promo_module)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_PRECONTENT_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_promo_code_handler;

    ngx_http_next_header_filter = ngx_http_top_header_filter;
    ngx_http_top_header_filter = ngx_http_promo_header_filter;

    ngx_http_next_body_filter = ngx_http_top_body_filter;
    ngx_http_top_body_filter = ngx_http_promo_body_filter;

    ngx_http_promo_access_hash = ngx_hash_key(
                                     ngx_http_promo_access_name.data,
                                     ngx_http_promo_access_name.len);
    ngx_http_promo_plan_hash = ngx_hash_key(ngx_http_promo_plan_name.data,
                                            ngx_http_promo_plan_name.len);
    ngx_http_promo_remote_user_hash = ngx_hash_key(
                                          ngx_http_promo_remote_user_name.data,
                                          ngx_http_promo_remote_user_name.len);

    return NGX_OK;
}


/* the stores of this worker, and the timer that keeps them fresh */

static ngx_int_t
ngx_http_promo_init_process(ngx_cycle_t *cycle)
{
    char                         err[512];
    ngx_event_t                 *ev;
    ngx_http_promo_store_t      *s;
    ngx_http_promo_main_conf_t  *pmcf;

    if (ngx_process != NGX_PROCESS_WORKER
        && ngx_process != NGX_PROCESS_SINGLE)
    {
        return NGX_OK;
    }

    pmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_promo_module);

    if (pmcf == NULL || pmcf->stores == NULL) {
        return NGX_OK;
    }

    for (s = pmcf->stores; s; s = s->next) {

        /* opens no connection: the first refresh does, in a thread */

        s->opened = promo_store_get(&s->config, err, sizeof(err));

        if (s->opened == NULL) {
            ngx_log_error(NGX_LOG_ERR, cycle->log, 0,
                          "promo: no promotions from \"%s\": %s",
                          s->config.postgres, err);
            continue;
        }

        s->task.ctx = s;
        s->task.handler = ngx_http_promo_refresh_thread;
        s->task.event.handler = ngx_http_promo_refresh_done;
        s->task.event.data = s;
        s->task.event.log = cycle->log;
    }

    ev = &pmcf->timer;

    ev->handler = ngx_http_promo_timer_handler;
    ev->data = pmcf;
    ev->log = cycle->log;

    /* the timer alone must not keep a worker from shutting down */
    ev->cancelable = 1;

    /* the first refresh at once, on the first turn of the event loop */
    ngx_add_timer(ev, 1);

    return NGX_OK;
}


static void
ngx_http_promo_exit_process(ngx_cycle_t *cycle)
{
    (void) cycle;

    promo_stores_close_all();
}
