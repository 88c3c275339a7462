
/*
 * ngx_http_booking_module: nginx adapter of mod_booking.
 * The JSON API (booking_api) runs each request as a thread-pool task, since
 * every route talks to PostgreSQL; the white-label page (booking_page) is
 * rendered inline. A per-worker timer posts the notification dispatcher's
 * passes as thread-pool tasks too, so the event loop never waits.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "booking.h"
#include "crypto.h"
#include "http.h"
#include "webmodules_metrics.h"
#include "webmodules_util.h"


#if !(NGX_THREADS)
#error ngx_http_booking_module needs nginx built --with-threads
#endif


#define NGX_HTTP_BOOKING_API           1
#define NGX_HTTP_BOOKING_PAGE          2

#define NGX_HTTP_BOOKING_SECRET_MIN    16

/* one dispatcher pass: at most this many messages, for at most this long */
#define NGX_HTTP_BOOKING_PASS_MESSAGES 50
#define NGX_HTTP_BOOKING_PASS_MS       2000


typedef const char *(*ngx_http_booking_setter_pt)(booking_config *config,
    const char *arg);


/* cmd->post of the directives whose value goes through booking_set_*() */

typedef struct {
    ngx_http_booking_setter_pt     set;
} ngx_http_booking_setter_t;


typedef struct {
    long                           min;
    long                           max;
} ngx_http_booking_bounds_t;


typedef struct {
    booking_config                 config;
    ngx_str_t                      thread_pool_name;
    ngx_thread_pool_t             *thread_pool;
    booking_store                 *store;     /* this worker's, on first use */
} ngx_http_booking_srv_conf_t;


typedef struct {
    ngx_uint_t                     handler;   /* not inherited */
} ngx_http_booking_loc_conf_t;


/* one request to the API, handed to a thread-pool task */

typedef struct {
    ngx_http_request_t            *request;
    ngx_http_booking_srv_conf_t   *conf;
    booking_store                 *store;
    booking_request                view;
    booking_response               response;
    u_char                        *body;
    size_t                         body_len;
    ngx_fd_t                       body_fd;   /* NGX_INVALID_FILE: in memory */
    ngx_uint_t                     failed;    /* the body file was unread */
    char                           err[256];
} ngx_http_booking_call_t;


/* one per distinct booking_postgres with a booking_notify_url, per worker */

typedef struct ngx_http_booking_dispatcher_s  ngx_http_booking_dispatcher_t;

struct ngx_http_booking_dispatcher_s {
    const booking_config          *config;    /* the first server's */
    booking_store                 *store;
    ngx_thread_pool_t             *thread_pool;
    ngx_thread_task_t              task;
    ngx_event_t                    timer;
    booking_notify_stats           stats;
    int                            handled;   /* -1: PostgreSQL is down */
    char                           err[256];
    unsigned                       posted:1;
    unsigned                       failing:1; /* the outage is logged */
    ngx_http_booking_dispatcher_t *next;
};


static ngx_int_t ngx_http_booking_api_handler(ngx_http_request_t *r);
static void ngx_http_booking_body_read(ngx_http_request_t *r);
static ngx_int_t ngx_http_booking_body(ngx_http_request_t *r,
    ngx_http_booking_call_t *call);
static ngx_int_t ngx_http_booking_view(ngx_http_request_t *r,
    ngx_http_booking_call_t *call);
static ngx_int_t ngx_http_booking_post(ngx_http_request_t *r,
    ngx_http_booking_call_t *call);
static void ngx_http_booking_api_thread(void *data, ngx_log_t *log);
static void ngx_http_booking_api_done(ngx_event_t *ev);
static ngx_int_t ngx_http_booking_answer(ngx_http_request_t *r,
    ngx_http_booking_call_t *call);

static ngx_int_t ngx_http_booking_page_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_booking_access_handler(ngx_http_request_t *r);

static ngx_int_t ngx_http_booking_refuse(ngx_http_request_t *r,
    ngx_uint_t status, const char *code, const char *message);
static ngx_int_t ngx_http_booking_error(ngx_http_request_t *r,
    ngx_uint_t status, const char *code, const char *message);
static ngx_int_t ngx_http_booking_send(ngx_http_request_t *r,
    ngx_uint_t status, const char *type, u_char *body, size_t len);
static ngx_int_t ngx_http_booking_copy_header(ngx_http_request_t *r,
    char *key, const char *value);
static ngx_int_t ngx_http_booking_free_with_pool(ngx_http_request_t *r,
    void *p);
static void ngx_http_booking_free(void *data);

static void ngx_http_booking_dispatch_timer(ngx_event_t *ev);
static void ngx_http_booking_dispatch_post(ngx_http_booking_dispatcher_t *d);
static void ngx_http_booking_dispatch_thread(void *data, ngx_log_t *log);
static void ngx_http_booking_dispatch_done(ngx_event_t *ev);

static void *ngx_http_booking_create_srv_conf(ngx_conf_t *cf);
static char *ngx_http_booking_merge_srv_conf(ngx_conf_t *cf, void *parent,
    void *child);
static void *ngx_http_booking_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_booking_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static char *ngx_http_booking_invalid(ngx_conf_t *cf, ngx_str_t *value,
    const char *why);
static char *ngx_http_booking_postgres(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_booking_set(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_booking_partner(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_booking_number(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_booking_secret_file(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_booking_handler(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

static ngx_int_t ngx_http_booking_init(ngx_conf_t *cf);
static ngx_int_t ngx_http_booking_init_module(ngx_cycle_t *cycle);
static ngx_int_t ngx_http_booking_init_process(ngx_cycle_t *cycle);
static void ngx_http_booking_exit_process(ngx_cycle_t *cycle);


static ngx_http_booking_setter_t  ngx_http_booking_time_zone_setter = {
    booking_set_time_zone
};

static ngx_http_booking_setter_t  ngx_http_booking_page_api_setter = {
    booking_set_page_api
};

static ngx_http_booking_setter_t  ngx_http_booking_notify_url_setter = {
    booking_set_notify_url
};

/* the same bounds as Apache's, which calls booking_set_number() too */

static ngx_http_booking_bounds_t  ngx_http_booking_attempts_bounds = {
    1, 100
};

static ngx_http_booking_bounds_t  ngx_http_booking_timeout_bounds = {
    100, 60000
};

static ngx_http_booking_bounds_t  ngx_http_booking_reminder_bounds = {
    0, 720
};

static ngx_http_booking_bounds_t  ngx_http_booking_cache_ttl_bounds = {
    0, 60
};


static ngx_command_t  ngx_http_booking_commands[] = {

    { ngx_string("booking_postgres"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_CONF_TAKE1,
      ngx_http_booking_postgres,
      NGX_HTTP_SRV_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("booking_time_zone"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_CONF_TAKE1,
      ngx_http_booking_set,
      NGX_HTTP_SRV_CONF_OFFSET,
      offsetof(booking_config, time_zone),
      &ngx_http_booking_time_zone_setter },

    { ngx_string("booking_partner"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_CONF_TAKE1,
      ngx_http_booking_partner,
      NGX_HTTP_SRV_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("booking_page_api"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_CONF_TAKE1,
      ngx_http_booking_set,
      NGX_HTTP_SRV_CONF_OFFSET,
      offsetof(booking_config, page_api),
      &ngx_http_booking_page_api_setter },

    { ngx_string("booking_notify_url"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_CONF_TAKE1,
      ngx_http_booking_set,
      NGX_HTTP_SRV_CONF_OFFSET,
      offsetof(booking_config, notify_url),
      &ngx_http_booking_notify_url_setter },

    { ngx_string("booking_notify_secret_file"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_CONF_TAKE1,
      ngx_http_booking_secret_file,
      NGX_HTTP_SRV_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("booking_notify_attempts"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_CONF_TAKE1,
      ngx_http_booking_number,
      NGX_HTTP_SRV_CONF_OFFSET,
      offsetof(booking_config, notify_attempts),
      &ngx_http_booking_attempts_bounds },

    { ngx_string("booking_notify_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_CONF_TAKE1,
      ngx_http_booking_number,
      NGX_HTTP_SRV_CONF_OFFSET,
      offsetof(booking_config, notify_timeout_ms),
      &ngx_http_booking_timeout_bounds },

    { ngx_string("booking_reminder"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_CONF_TAKE1,
      ngx_http_booking_number,
      NGX_HTTP_SRV_CONF_OFFSET,
      offsetof(booking_config, reminder_hours),
      &ngx_http_booking_reminder_bounds },

    { ngx_string("booking_cache_ttl"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_CONF_TAKE1,
      ngx_http_booking_number,
      NGX_HTTP_SRV_CONF_OFFSET,
      offsetof(booking_config, cache_ttl),
      &ngx_http_booking_cache_ttl_bounds },

    { ngx_string("booking_thread_pool"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_SRV_CONF_OFFSET,
      offsetof(ngx_http_booking_srv_conf_t, thread_pool_name),
      NULL },

    { ngx_string("booking_api"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_booking_handler,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_BOOKING_API,
      NULL },

    { ngx_string("booking_page"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_booking_handler,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_BOOKING_PAGE,
      NULL },

    { ngx_string("webmodules_metrics"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_webmodules_metrics,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_booking_module_ctx = {
    NULL,                                  /* preconfiguration */
    ngx_http_booking_init,                 /* postconfiguration */

    NULL,                                  /* create main configuration */
    NULL,                                  /* init main configuration */

    ngx_http_booking_create_srv_conf,      /* create server configuration */
    ngx_http_booking_merge_srv_conf,       /* merge server configuration */

    ngx_http_booking_create_loc_conf,      /* create location configuration */
    ngx_http_booking_merge_loc_conf        /* merge location configuration */
};


ngx_module_t  ngx_http_booking_module = {
    NGX_MODULE_V1,
    &ngx_http_booking_module_ctx,          /* module context */
    ngx_http_booking_commands,             /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    ngx_http_booking_init_module,          /* init module */
    ngx_http_booking_init_process,         /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_booking_exit_process,         /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_str_t  ngx_http_booking_retry_after =
    ngx_string(ngx_value(BOOKING_RETRY_AFTER_S));


/* this worker's dispatchers */

static ngx_http_booking_dispatcher_t  *ngx_http_booking_dispatchers;


/* ------------------------------------------------------------- the API */

static ngx_int_t
ngx_http_booking_api_handler(ngx_http_request_t *r)
{
    char                          err[256];
    ngx_int_t                     rc;
    ngx_http_booking_call_t      *call;
    ngx_http_booking_srv_conf_t  *bscf;

    bscf = ngx_http_get_module_srv_conf(r, ngx_http_booking_module);

    if (bscf->store == NULL) {
        bscf->store = booking_store_get(bscf->config.postgres, err,
                                        sizeof(err));

        if (bscf->store == NULL) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "booking: %s", err);
            return ngx_http_booking_refuse(r,
                                           NGX_HTTP_INTERNAL_SERVER_ERROR,
                                           "internal",
                                           "the booking store cannot open");
        }
    }

    if (r->headers_in.content_length_n > BOOKING_MAX_BODY) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "booking: request body over %d bytes",
                      BOOKING_MAX_BODY);
        return ngx_http_booking_refuse(r, NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                       "too_large",
                                       "the request body is too large");
    }

    call = ngx_pcalloc(r->pool, sizeof(ngx_http_booking_call_t));
    if (call == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    call->request = r;
    call->conf = bscf;
    call->store = bscf->store;
    call->body_fd = NGX_INVALID_FILE;

    ngx_http_set_ctx(r, call, ngx_http_booking_module);

    rc = ngx_http_read_client_request_body(r, ngx_http_booking_body_read);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;
}


static void
ngx_http_booking_body_read(ngx_http_request_t *r)
{
    ngx_int_t                 rc;
    ngx_http_booking_call_t  *call;

    call = ngx_http_get_module_ctx(r, ngx_http_booking_module);

    if (call == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    rc = ngx_http_booking_body(r, call);

    if (rc == NGX_OK) {
        rc = ngx_http_booking_view(r, call);
    }

    /* a fresh availability answer of this worker's cache: no task, no wait */

    if (rc == NGX_OK
        && booking_api_cached(call->store, &call->conf->config, &call->view,
                              &call->response))
    {
        ngx_http_finalize_request(r, ngx_http_booking_answer(r, call));
        return;
    }

    if (rc == NGX_OK) {
        if (ngx_http_booking_post(r, call) == NGX_OK) {
            return;
        }

        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "booking: the thread pool cannot take the request");
        rc = ngx_http_booking_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                    "unavailable",
                                    "the booking service is busy");

    } else if (rc == NGX_HTTP_REQUEST_ENTITY_TOO_LARGE) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "booking: request body over %d bytes",
                      BOOKING_MAX_BODY);
        rc = ngx_http_booking_error(r, rc, "too_large",
                                    "the request body is too large");

    } else if (rc == NGX_HTTP_BAD_REQUEST) {
        rc = ngx_http_booking_error(r, rc, "bad_request",
                                    "the request path is malformed");
    }

    ngx_http_finalize_request(r, rc);
}


/*
 * NGX_OK with the body in call, or an HTTP status. A body in the temporary
 * file is read by the task, off the event loop.
 */

static ngx_int_t
ngx_http_booking_body(ngx_http_request_t *r, ngx_http_booking_call_t *call)
{
    off_t                     len;
    u_char                   *p;
    ngx_chain_t              *cl;
    ngx_http_request_body_t  *rb;

    rb = r->request_body;

    if (rb == NULL) {
        return NGX_OK;
    }

    if (rb->temp_file) {

        /* nginx moved all of the body into the file */

        len = rb->temp_file->file.offset;

        if (len > BOOKING_MAX_BODY) {
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

        /* an empty body is one last_buf without memory */

        if (ngx_buf_special(cl->buf)) {
            continue;
        }

        if (!ngx_buf_in_memory(cl->buf)) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "booking: request body not in memory");
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        len += cl->buf->last - cl->buf->pos;
    }

    if (len > BOOKING_MAX_BODY) {
        return NGX_HTTP_REQUEST_ENTITY_TOO_LARGE;
    }

    call->body = ngx_pnalloc(r->pool, (size_t) len + 1);
    if (call->body == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = call->body;

    for (cl = rb->bufs; cl; cl = cl->next) {
        if (!ngx_buf_special(cl->buf)) {
            p = ngx_cpymem(p, cl->buf->pos, cl->buf->last - cl->buf->pos);
        }
    }

    *p = '\0';
    call->body_len = (size_t) len;

    return NGX_OK;
}


/* the request as booking_api_handle() sees it: NUL-terminated copies */

static ngx_int_t
ngx_http_booking_view(ngx_http_request_t *r, ngx_http_booking_call_t *call)
{
    ngx_table_elt_t  *h;
    booking_request  *view;

    view = &call->view;

    /* a decoded %00 would cut the path short: refuse it rather than route */

    if (ngx_strlchr(r->uri.data, r->uri.data + r->uri.len, '\0')) {
        return NGX_HTTP_BAD_REQUEST;
    }

    view->method = ngx_http_webmodules_cstr(r->pool, r->method_name.data,
                                         r->method_name.len);
    view->path = ngx_http_webmodules_cstr(r->pool, r->uri.data, r->uri.len);

    if (view->method == NULL || view->path == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (r->args.len) {
        view->args = ngx_http_webmodules_cstr(r->pool, r->args.data, r->args.len);
        if (view->args == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    h = r->headers_in.host;

    if (h) {
        view->host = ngx_http_webmodules_cstr(r->pool, h->value.data,
                                           h->value.len);
        if (view->host == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    /* only a user auth_basic checked (ngx_http_booking_access_handler()) */

    if (ngx_http_webmodules_checked_user(r)) {
        view->remote_user = ngx_http_webmodules_cstr(r->pool,
                                                  r->headers_in.user.data,
                                                  r->headers_in.user.len);
        if (view->remote_user == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    h = ngx_http_webmodules_header_in(r, "X-Booking-Token",
                                   sizeof("X-Booking-Token") - 1);

    if (h) {
        view->token = ngx_http_webmodules_cstr(r->pool, h->value.data,
                                            h->value.len);
        if (view->token == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    h = r->headers_in.content_type;

    if (h) {
        view->content_type = ngx_http_webmodules_cstr(r->pool, h->value.data,
                                                   h->value.len);
        if (view->content_type == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    /* a body in the temporary file is in call->body once the task read it */

    if (call->body_len) {
        view->body = (const char *) call->body;
        view->body_len = call->body_len;
    }

    view->now = r->start_sec;

    return NGX_OK;
}


static ngx_int_t
ngx_http_booking_post(ngx_http_request_t *r, ngx_http_booking_call_t *call)
{
    ngx_thread_task_t         *task;
    ngx_http_booking_call_t  **tcall;

    task = ngx_thread_task_alloc(r->pool, sizeof(ngx_http_booking_call_t *));
    if (task == NULL) {
        return NGX_ERROR;
    }

    tcall = task->ctx;
    *tcall = call;

    task->handler = ngx_http_booking_api_thread;
    task->event.handler = ngx_http_booking_api_done;
    task->event.data = call;

    if (ngx_thread_task_post(call->conf->thread_pool, task) != NGX_OK) {
        return NGX_ERROR;
    }

    /*
     * the task owns the request until it is done: a client that goes away
     * meanwhile only marks the connection, and the request stays allocated
     */

    r->write_event_handler = ngx_http_request_empty_handler;

    r->main->blocked++;
    r->aio = 1;

    return NGX_OK;
}


static void
ngx_http_booking_api_thread(void *data, ngx_log_t *log)
{
    ngx_http_booking_call_t  *call = *(ngx_http_booking_call_t **) data;

    u_char     *p, *last;
    size_t      done;
    ssize_t     n;
    ngx_err_t   err;

    (void) log;

    if (call->body_fd != NGX_INVALID_FILE) {

        for (done = 0; done < call->body_len; done += n) {
            n = pread(call->body_fd, call->body + done, call->body_len - done,
                      (off_t) done);

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
                call->failed = 1;
                return;
            }
        }

        call->body[call->body_len] = '\0';
    }

    booking_api_handle(call->store, &call->conf->config, &call->view,
                       &call->response);
}


static void
ngx_http_booking_api_done(ngx_event_t *ev)
{
    ngx_int_t                 rc;
    ngx_uint_t                level;
    ngx_connection_t         *c;
    ngx_http_request_t       *r;
    ngx_http_booking_call_t  *call;

    call = ev->data;
    r = call->request;
    c = r->connection;

    ngx_http_set_log_request(c->log, r);

    r->main->blocked--;
    r->aio = 0;

    if (call->response.log[0]) {
        level = call->response.log_is_error ? NGX_LOG_ERR : NGX_LOG_INFO;
        ngx_log_error(level, c->log, 0, "%s", call->response.log);
    }

    if (c->error) {
        booking_response_free(&call->response);
        ngx_http_finalize_request(r, NGX_HTTP_CLIENT_CLOSED_REQUEST);
        ngx_http_run_posted_requests(c);
        return;
    }

    if (call->failed) {
        ngx_log_error(NGX_LOG_ERR, c->log, 0, "booking: %s", call->err);
        booking_response_free(&call->response);
        rc = ngx_http_booking_error(r, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                    "internal",
                                    "the request body could not be read");

    } else {
        rc = ngx_http_booking_answer(r, call);
    }

    ngx_http_finalize_request(r, rc);
    ngx_http_run_posted_requests(c);
}


/* sends the route's response and frees it */

static ngx_int_t
ngx_http_booking_answer(ngx_http_request_t *r, ngx_http_booking_call_t *call)
{
    u_char            *p, *body;
    size_t             len;
    ngx_uint_t         status;
    const char        *type;
    booking_response  *res;

    res = &call->response;
    status = (ngx_uint_t) res->status;

    if (status < NGX_HTTP_OK || status > 599) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "booking: the API answered status %d", res->status);
        booking_response_free(res);
        return ngx_http_booking_error(r, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                      "internal",
                                      "the booking API could not answer");
    }

    if (res->retry_after > 0) {
        p = ngx_pnalloc(r->pool, NGX_INT64_LEN);
        if (p == NULL) {
            goto failed;
        }

        len = ngx_sprintf(p, "%l", res->retry_after) - p;

        if (ngx_http_webmodules_add_header(r, "Retry-After", p, len) != NGX_OK) {
            goto failed;
        }
    }

    /* Allow is a static string; the others are the response's: copied */

    if (res->allow
        && ngx_http_webmodules_add_header(r, "Allow", (u_char *) res->allow,
                                       ngx_strlen(res->allow))
           != NGX_OK)
    {
        goto failed;
    }

    if (res->content_disposition
        && ngx_http_booking_copy_header(r, "Content-Disposition",
                                        res->content_disposition)
           != NGX_OK)
    {
        goto failed;
    }

    /*
     * an ordinary header rather than r->headers_out.location, which nginx
     * would make absolute: Apache sends the route's path as it is
     */

    if (res->location
        && ngx_http_booking_copy_header(r, "Location", res->location)
           != NGX_OK)
    {
        goto failed;
    }

    body = NULL;
    len = 0;

    if (res->body && res->body_len) {
        if (ngx_http_booking_free_with_pool(r, res->body) != NGX_OK) {
            goto failed;
        }

        /* the pool frees it now */

        body = (u_char *) res->body;
        len = res->body_len;
        res->body = NULL;
    }

    type = res->content_type ? res->content_type : "application/json";

    booking_response_free(res);

    return ngx_http_booking_send(r, status, type, body, len);

failed:

    booking_response_free(res);

    return NGX_HTTP_INTERNAL_SERVER_ERROR;
}


/* ------------------------------------------------------------ the page */

static ngx_int_t
ngx_http_booking_page_handler(ngx_http_request_t *r)
{
    char                         *html, *csp;
    size_t                        len;
    ngx_int_t                     rc;
    ngx_http_booking_srv_conf_t  *bscf;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        if (ngx_http_webmodules_add_header(r, "Allow", (u_char *) "GET, HEAD",
                                        sizeof("GET, HEAD") - 1)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_booking_refuse(r, NGX_HTTP_NOT_ALLOWED,
                                       "method_not_allowed",
                                       "the booking page only answers GET");
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    bscf = ngx_http_get_module_srv_conf(r, ngx_http_booking_module);

    if (booking_page_render(&bscf->config, &html, &len, &csp) != 0) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "booking: cannot render the booking page");
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_booking_free_with_pool(r, html) != NGX_OK) {
        free(html);
        free(csp);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_booking_copy_header(r, "Content-Security-Policy", csp);

    free(csp);

    if (rc != NGX_OK
        || ngx_http_webmodules_add_header(r, "Referrer-Policy",
                                       (u_char *) "same-origin",
                                       sizeof("same-origin") - 1)
           != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_booking_send(r, NGX_HTTP_OK, "text/html; charset=utf-8",
                                 (u_char *) html, len);
}


/* ------------------------------------------------- the partner's login */

/*
 * In booking_api locations, the API sees a user only when auth_basic checked
 * it (webmodules_metrics.h).
 */

static ngx_int_t
ngx_http_booking_access_handler(ngx_http_request_t *r)
{
    ngx_http_booking_loc_conf_t  *blcf;

    blcf = ngx_http_get_module_loc_conf(r, ngx_http_booking_module);

    if (blcf->handler == NGX_HTTP_BOOKING_API) {
        ngx_http_webmodules_forget_user(r);
    }

    return NGX_DECLINED;
}


/* ------------------------------------------------------------- helpers */

/* an error once whatever body the request has is discarded */

static ngx_int_t
ngx_http_booking_refuse(ngx_http_request_t *r, ngx_uint_t status,
    const char *code, const char *message)
{
    ngx_int_t  rc;

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    return ngx_http_booking_error(r, status, code, message);
}


/* the API's error shape: {"error": message, "code": code} */

static ngx_int_t
ngx_http_booking_error(ngx_http_request_t *r, ngx_uint_t status,
    const char *code, const char *message)
{
    u_char  *body;
    size_t   len;

    /* the messages and codes are ASCII without quotes: no escaping needed */

    len = sizeof("{\"error\":\"\",\"code\":\"\"}\n") - 1
          + ngx_strlen(message) + ngx_strlen(code);

    body = ngx_pnalloc(r->pool, len);
    if (body == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_sprintf(body, "{\"error\":\"%s\",\"code\":\"%s\"}\n", message, code);

    if (status == NGX_HTTP_SERVICE_UNAVAILABLE) {
        if (ngx_http_webmodules_add_header(r, "Retry-After",
                                        ngx_http_booking_retry_after.data,
                                        ngx_http_booking_retry_after.len)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    return ngx_http_booking_send(r, status, "application/json", body, len);
}


static ngx_int_t
ngx_http_booking_send(ngx_http_request_t *r, ngx_uint_t status,
    const char *type, u_char *body, size_t len)
{
    /*
     * the type as the route gave it, charset included: with
     * content_type_len covering all of it, the charset filter leaves it be
     */

    r->headers_out.content_type.data = (u_char *) type;
    r->headers_out.content_type.len = ngx_strlen(type);
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_type_lowcase = NULL;

    if (ngx_http_webmodules_add_header(r, "Cache-Control", (u_char *) "no-store",
                                    sizeof("no-store") - 1)
        != NGX_OK
        || ngx_http_webmodules_add_header(r, "X-Content-Type-Options",
                                       (u_char *) "nosniff",
                                       sizeof("nosniff") - 1)
           != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_webmodules_send(r, status, body, len);
}


/* a header whose value is malloc'd memory about to be freed */

static ngx_int_t
ngx_http_booking_copy_header(ngx_http_request_t *r, char *key,
    const char *value)
{
    u_char  *p;
    size_t   len;

    len = ngx_strlen(value);

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(p, value, len);

    return ngx_http_webmodules_add_header(r, key, p, len);
}


/* p (malloc'd) is freed with the request; nothing is taken on failure */

static ngx_int_t
ngx_http_booking_free_with_pool(ngx_http_request_t *r, void *p)
{
    ngx_pool_cleanup_t  *cln;

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_ERROR;
    }

    cln->handler = ngx_http_booking_free;
    cln->data = p;

    return NGX_OK;
}


static void
ngx_http_booking_free(void *data)
{
    free(data);
}


/* ----------------------------------------------------- notifications */

/*
 * Every BOOKING_NOTIFY_POLL_MS each worker posts one pass per database when
 * none is in flight; the workers and the other nodes never send the same
 * message twice, since each claims its rows with FOR UPDATE SKIP LOCKED.
 */

static void
ngx_http_booking_dispatch_timer(ngx_event_t *ev)
{
    ngx_http_booking_dispatcher_t  *d = ev->data;

    /* a worker shutting down cancels the timer: no new pass, no new tick */

    if (ngx_exiting || ngx_terminate || ngx_quit) {
        return;
    }

    if (!d->posted) {
        ngx_http_booking_dispatch_post(d);
    }

    ngx_add_timer(ev, BOOKING_NOTIFY_POLL_MS);
}


static void
ngx_http_booking_dispatch_post(ngx_http_booking_dispatcher_t *d)
{
    d->handled = 0;
    d->err[0] = '\0';
    ngx_memzero(&d->stats, sizeof(booking_notify_stats));

    /* the thread pool logs a full queue; the next tick tries again */

    if (ngx_thread_task_post(d->thread_pool, &d->task) == NGX_OK) {
        d->posted = 1;
    }
}


static void
ngx_http_booking_dispatch_thread(void *data, ngx_log_t *log)
{
    ngx_http_booking_dispatcher_t  *d = data;

    (void) log;

    d->handled = booking_notify_pass(d->store, d->config,
                                     NGX_HTTP_BOOKING_PASS_MESSAGES,
                                     NGX_HTTP_BOOKING_PASS_MS, &d->stats,
                                     d->err, sizeof(d->err));
}


static void
ngx_http_booking_dispatch_done(ngx_event_t *ev)
{
    ngx_http_booking_dispatcher_t  *d = ev->data;

    d->posted = 0;

    /* once per outage, not once per pass */

    if (d->handled < 0) {
        if (!d->failing) {
            ngx_log_error(NGX_LOG_ERR, ev->log, 0,
                          "booking: notifications paused: %s", d->err);
            d->failing = 1;
        }

        return;
    }

    if (d->failing) {
        ngx_log_error(NGX_LOG_NOTICE, ev->log, 0,
                      "booking: notifications resumed");
        d->failing = 0;
    }

    if (d->stats.dead) {
        ngx_log_error(NGX_LOG_WARN, ev->log, 0,
                      "booking: %ud notification(s) parked as dead after "
                      "their last attempt", d->stats.dead);
    }

    ngx_log_debug4(NGX_LOG_DEBUG_HTTP, ev->log, 0,
                   "booking: notifications delivered:%ud retried:%ud "
                   "dead:%ud purged:%ud", d->stats.delivered,
                   d->stats.retried, d->stats.dead, d->stats.purged);

    /* a full pass leaves more due now: go on at once rather than at the tick */

    if (d->handled >= NGX_HTTP_BOOKING_PASS_MESSAGES
        && !(ngx_exiting || ngx_terminate || ngx_quit))
    {
        ngx_http_booking_dispatch_post(d);
    }
}


/* ------------------------------------------------------- configuration */

static void *
ngx_http_booking_create_srv_conf(ngx_conf_t *cf)
{
    ngx_http_booking_srv_conf_t  *conf;

    conf = ngx_pcalloc(cf->pool, sizeof(ngx_http_booking_srv_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     conf->config.postgres = NULL;
     *     conf->config.time_zone = NULL;
     *     conf->config.partner_mode = BOOKING_PARTNER_ALL;
     *     conf->config.partner_id = NULL;
     *     conf->config.page_api = NULL;
     *     conf->config.notify_url = NULL;
     *     conf->config.notify_secret = NULL;
     *     conf->config.notify_secret_len = 0;
     *     conf->thread_pool_name = { 0, NULL };
     *     conf->thread_pool = NULL;
     *     conf->store = NULL;
     */

    /* booking_config_defaults() reads -1 as unset, as NGX_CONF_UNSET is */

    conf->config.notify_attempts = NGX_CONF_UNSET;
    conf->config.notify_timeout_ms = NGX_CONF_UNSET;
    conf->config.reminder_hours = NGX_CONF_UNSET;
    conf->config.cache_ttl = NGX_CONF_UNSET;

    return conf;
}


static char *
ngx_http_booking_merge_srv_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_booking_srv_conf_t *prev = parent;
    ngx_http_booking_srv_conf_t *conf = child;

    booking_config  *c, *p;

    c = &conf->config;
    p = &prev->config;

    if (c->postgres == NULL) {
        c->postgres = p->postgres;
    }

    if (c->time_zone == NULL) {
        c->time_zone = p->time_zone;
    }

    /* BookingPartner has no "all" value: "all" here means not set here */

    if (c->partner_mode == BOOKING_PARTNER_ALL) {
        c->partner_mode = p->partner_mode;
        c->partner_id = p->partner_id;
    }

    if (c->page_api == NULL) {
        c->page_api = p->page_api;
    }

    if (c->notify_url == NULL) {
        c->notify_url = p->notify_url;
    }

    if (c->notify_secret == NULL) {
        c->notify_secret = p->notify_secret;
        c->notify_secret_len = p->notify_secret_len;
    }

    if (c->notify_attempts == NGX_CONF_UNSET) {
        c->notify_attempts = p->notify_attempts;
    }

    if (c->notify_timeout_ms == NGX_CONF_UNSET) {
        c->notify_timeout_ms = p->notify_timeout_ms;
    }

    if (c->reminder_hours == NGX_CONF_UNSET) {
        c->reminder_hours = p->reminder_hours;
    }

    if (c->cache_ttl == NGX_CONF_UNSET) {
        c->cache_ttl = p->cache_ttl;
    }

    ngx_conf_merge_str_value(conf->thread_pool_name, prev->thread_pool_name,
                             "default");

    booking_config_defaults(c);

    /* as on Apache: notifications are always signed */

    if (c->notify_url && c->notify_secret == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"booking_notify_url\" needs "
                           "\"booking_notify_secret_file\"");
        return NGX_CONF_ERROR;
    }

    if (c->postgres == NULL) {
        return NGX_CONF_OK;
    }

    conf->thread_pool = ngx_thread_pool_add(cf, &conf->thread_pool_name);
    if (conf->thread_pool == NULL) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static void *
ngx_http_booking_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_booking_loc_conf_t  *conf;

    conf = ngx_pcalloc(cf->pool, sizeof(ngx_http_booking_loc_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     conf->handler = 0;
     */

    return conf;
}


/* the server's settings are merged by now: booking_api needs a database */

static char *
ngx_http_booking_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_booking_loc_conf_t *conf = child;

    ngx_http_booking_srv_conf_t  *bscf;

    (void) parent;

    if (conf->handler != NGX_HTTP_BOOKING_API) {
        return NGX_CONF_OK;
    }

    bscf = ngx_http_conf_get_module_srv_conf(cf, ngx_http_booking_module);

    if (bscf->config.postgres == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"booking_api\" needs \"booking_postgres\"");
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_booking_invalid(ngx_conf_t *cf, ngx_str_t *value, const char *why)
{
    ngx_str_t  *name;

    name = cf->args->elts;

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid value \"%V\" in \"%V\" directive: %s",
                       value, &name[0], why);

    return NGX_CONF_ERROR;
}


/* arguments are NUL-terminated and live as long as the cycle */

static char *
ngx_http_booking_postgres(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_booking_srv_conf_t *bscf = conf;

    ngx_str_t  *value;

    if (bscf->config.postgres) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (value[1].len == 0) {
        return ngx_http_booking_invalid(cf, &value[1],
                                        "a libpq connection string");
    }

    bscf->config.postgres = (const char *) value[1].data;

    return NGX_CONF_OK;
}


/* the string settings checked by the setters both servers share */

static char *
ngx_http_booking_set(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_booking_srv_conf_t *bscf = conf;

    ngx_str_t                  *value;
    const char                **field, *why;
    ngx_http_booking_setter_t  *setter;

    field = (const char **) ((char *) &bscf->config + cmd->offset);

    if (*field) {
        return "is duplicate";
    }

    value = cf->args->elts;
    setter = cmd->post;

    why = setter->set(&bscf->config, (const char *) value[1].data);
    if (why) {
        return ngx_http_booking_invalid(cf, &value[1], why);
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_booking_partner(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_booking_srv_conf_t *bscf = conf;

    ngx_str_t   *value;
    const char  *why;

    if (bscf->config.partner_mode != BOOKING_PARTNER_ALL) {
        return "is duplicate";
    }

    value = cf->args->elts;

    why = booking_set_partner(&bscf->config, (const char *) value[1].data);
    if (why) {
        return ngx_http_booking_invalid(cf, &value[1], why);
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_booking_number(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_booking_srv_conf_t *bscf = conf;

    long                       *field;
    ngx_str_t                  *value;
    const char                 *why;
    ngx_http_booking_bounds_t  *bounds;

    field = (long *) ((char *) &bscf->config + cmd->offset);

    if (*field != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    value = cf->args->elts;
    bounds = cmd->post;

    why = booking_set_number(field, (const char *) value[1].data,
                             bounds->min, bounds->max);
    if (why) {
        return ngx_http_booking_invalid(cf, &value[1], why);
    }

    return NGX_CONF_OK;
}


/*
 * Read at start-up, as root: the file may be root's alone. The secret is its
 * first line, without the line end and trailing blanks.
 */

static char *
ngx_http_booking_secret_file(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_booking_srv_conf_t *bscf = conf;

    char       *rv;
    ngx_str_t   secret;

    if (bscf->config.notify_secret) {
        return "is duplicate";
    }

    ngx_str_null(&secret);

    rv = ngx_http_webmodules_secret_file(cf, NGX_HTTP_BOOKING_SECRET_MIN,
                                         &secret);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    bscf->config.notify_secret = (const char *) secret.data;
    bscf->config.notify_secret_len = secret.len;

    return NGX_CONF_OK;
}


static char *
ngx_http_booking_handler(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_booking_loc_conf_t *blcf = conf;

    ngx_http_core_loc_conf_t  *clcf;

    if (blcf->handler) {
        return "is duplicate";
    }

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    clcf->handler = (cmd->offset == NGX_HTTP_BOOKING_API)
                    ? ngx_http_booking_api_handler
                    : ngx_http_booking_page_handler;

    blcf->handler = cmd->offset;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_booking_init(ngx_conf_t *cf)
{
    ngx_http_handler_pt        *h;
    ngx_http_core_main_conf_t  *cmcf;

    if (ngx_http_webmodules_metrics_init(cf, "booking", booking_metric_defs,
                                         booking_metric_count,
                                         &booking_metrics,
                                         &ngx_http_booking_module)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_ACCESS_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_booking_access_handler;

    return NGX_OK;
}


/* libcurl's global state, before any thread starts: in the master */

static ngx_int_t
ngx_http_booking_init_module(ngx_cycle_t *cycle)
{
    if (http_global_init() != 0) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                      "booking: libcurl cannot start");
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * One dispatcher per database among the servers with a booking_notify_url:
 * the outbox is per database, and any of those servers' settings can send
 * its messages (as on Apache).
 */

static ngx_int_t
ngx_http_booking_init_process(ngx_cycle_t *cycle)
{
    char                            err[256];
    ngx_uint_t                      s;
    ngx_event_t                    *ev;
    booking_store                  *store;
    ngx_http_core_srv_conf_t      **cscfp;
    ngx_http_core_main_conf_t      *cmcf;
    ngx_http_booking_srv_conf_t    *bscf;
    ngx_http_booking_dispatcher_t  *d;

    if (ngx_process != NGX_PROCESS_WORKER
        && ngx_process != NGX_PROCESS_SINGLE)
    {
        return NGX_OK;
    }

    cmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_core_module);

    if (cmcf == NULL) {
        return NGX_OK;
    }

    cscfp = cmcf->servers.elts;

    for (s = 0; s < cmcf->servers.nelts; s++) {

        bscf = cscfp[s]->ctx->srv_conf[ngx_http_booking_module.ctx_index];

        if (bscf->config.postgres == NULL || bscf->config.notify_url == NULL) {
            continue;
        }

        for (d = ngx_http_booking_dispatchers; d; d = d->next) {
            if (ngx_strcmp(d->config->postgres, bscf->config.postgres) == 0) {
                break;
            }
        }

        if (d) {
            continue;
        }

        /* opens no connection: the first pass does, in a thread */

        store = booking_store_get(bscf->config.postgres, err, sizeof(err));

        if (store == NULL) {
            ngx_log_error(NGX_LOG_ERR, cycle->log, 0,
                          "booking: no notifications from \"%s\": %s",
                          bscf->config.postgres, err);
            continue;
        }

        d = ngx_pcalloc(cycle->pool, sizeof(ngx_http_booking_dispatcher_t));
        if (d == NULL) {
            return NGX_ERROR;
        }

        d->config = &bscf->config;
        d->store = store;
        d->thread_pool = bscf->thread_pool;

        d->task.ctx = d;
        d->task.handler = ngx_http_booking_dispatch_thread;
        d->task.event.handler = ngx_http_booking_dispatch_done;
        d->task.event.data = d;
        d->task.event.log = cycle->log;

        ev = &d->timer;

        ev->handler = ngx_http_booking_dispatch_timer;
        ev->data = d;
        ev->log = cycle->log;

        /* the timer alone must not keep a worker from shutting down */
        ev->cancelable = 1;

        ngx_add_timer(ev, BOOKING_NOTIFY_POLL_MS);

        d->next = ngx_http_booking_dispatchers;
        ngx_http_booking_dispatchers = d;
    }

    return NGX_OK;
}


/*
 * ngx_thread_pool_module, listed before any dynamic module, has joined the
 * threads by now: no task still uses the stores
 */

static void
ngx_http_booking_exit_process(ngx_cycle_t *cycle)
{
    (void) cycle;

    ngx_http_booking_dispatchers = NULL;

    booking_stores_close_all();
}
