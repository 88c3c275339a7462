
/*
 * ngx_http_session_shared_module: nginx adapter of mod_session_shared.
 * Every store access runs as a thread-pool task: the event loop never waits on memcached or PostgreSQL.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "cookie.h"
#include "session_shared.h"
#include "webmodules_metrics.h"


#if !(NGX_THREADS)
#error ngx_http_session_shared_module needs nginx built --with-threads
#endif


typedef struct {
    ngx_flag_t                     enable;
    ngx_str_t                      memcached;
    ngx_str_t                      postgres;
    ngx_str_t                      prefix;
    ngx_uint_t                     replicas;
    ngx_uint_t                     format;
    ngx_int_t                      idle_timeout;
    ngx_int_t                      absolute_timeout;
    ngx_msec_t                     cache_ttl;
    ngx_str_t                      cookie_name;
    ngx_array_t                   *cookie_attrs;
    ngx_array_t                   *exports;
    ngx_str_t                      thread_pool_name;
    ngx_thread_pool_t             *thread_pool;
    session_shared_store_config    store;
    session_shared_cookie          cookie;
    session_shared_store          *opened;   /* this process's store, once a task opened it */
} ngx_http_session_shared_loc_conf_t;


typedef struct {
    ngx_http_request_t            *request;
    ngx_http_session_shared_loc_conf_t  *conf;
    ngx_str_t                      id;
    session_shared_store          *store;
    session_shared_record          record;
    char                           err[256];
    unsigned                       posted:1;
    unsigned                       done:1;
} ngx_http_session_shared_ctx_t;


typedef struct {
    ngx_http_session_shared_ctx_t *ctx;
} ngx_http_session_shared_load_task_t;


typedef struct {
    session_shared_store          *store;
    session_shared_store_config   *config;
    char                          *id;
    ngx_uint_t                     loaded;
    char                           note[512];
} ngx_http_session_shared_sync_task_t;


static ngx_int_t ngx_http_session_shared_cookies(ngx_http_request_t *r,
    ngx_str_t *cookies);
static ngx_int_t ngx_http_session_shared_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_session_shared_log_handler(ngx_http_request_t *r);
static ngx_http_session_shared_ctx_t *ngx_http_session_shared_get_ctx(
    ngx_http_request_t *r);
static void ngx_http_session_shared_cleanup(void *data);
static void ngx_http_session_shared_load_thread(void *data, ngx_log_t *log);
static void ngx_http_session_shared_load_done(ngx_event_t *ev);
static void ngx_http_session_shared_sync_thread(void *data, ngx_log_t *log);
static void ngx_http_session_shared_sync_done(ngx_event_t *ev);
static ngx_int_t ngx_http_session_shared_id_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_uint_t ngx_http_session_shared_key_matches(ngx_str_t *key,
    ngx_str_t *name);
static ngx_int_t ngx_http_session_shared_key_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_session_shared_add_variables(ngx_conf_t *cf);
static void *ngx_http_session_shared_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_session_shared_merge_loc_conf(ngx_conf_t *cf,
    void *parent, void *child);
static char *ngx_http_session_shared_memcached(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_session_shared_replicas(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_session_shared_format(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_session_shared_seconds(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_session_shared_cookie(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_session_shared_export(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static ngx_int_t ngx_http_session_shared_init(ngx_conf_t *cf);
static void ngx_http_session_shared_exit_process(ngx_cycle_t *cycle);


static ngx_command_t  ngx_http_session_shared_commands[] = {

    { ngx_string("session_shared"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_session_shared_loc_conf_t, enable),
      NULL },

    { ngx_string("session_shared_memcached"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_session_shared_memcached,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("session_shared_postgres"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_session_shared_loc_conf_t, postgres),
      NULL },

    { ngx_string("session_shared_replicas"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_session_shared_replicas,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("session_shared_prefix"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_session_shared_loc_conf_t, prefix),
      NULL },

    { ngx_string("session_shared_format"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_session_shared_format,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("session_shared_idle_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_session_shared_seconds,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_session_shared_loc_conf_t, idle_timeout),
      NULL },

    { ngx_string("session_shared_absolute_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_session_shared_seconds,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_session_shared_loc_conf_t, absolute_timeout),
      NULL },

    { ngx_string("session_shared_cache_ttl"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_session_shared_loc_conf_t, cache_ttl),
      NULL },

    { ngx_string("session_shared_cookie"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_session_shared_cookie,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("session_shared_export"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_session_shared_export,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("session_shared_thread_pool"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_session_shared_loc_conf_t, thread_pool_name),
      NULL },

    { ngx_string("webmodules_metrics"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_webmodules_metrics,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_session_shared_module_ctx = {
    ngx_http_session_shared_add_variables, /* preconfiguration */
    ngx_http_session_shared_init,          /* postconfiguration */

    NULL,                                  /* create main configuration */
    NULL,                                  /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_session_shared_create_loc_conf, /* create location configuration */
    ngx_http_session_shared_merge_loc_conf   /* merge location configuration */
};


ngx_module_t  ngx_http_session_shared_module = {
    NGX_MODULE_V1,
    &ngx_http_session_shared_module_ctx,   /* module context */
    ngx_http_session_shared_commands,      /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    NULL,                                  /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_session_shared_exit_process,  /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_str_t  ngx_http_session_shared_id_name =
    ngx_string("session_shared_id");
static ngx_str_t  ngx_http_session_shared_prefix_name =
    ngx_string("session_shared_");


/* every Cookie header of the request, joined as one */

static ngx_int_t
ngx_http_session_shared_cookies(ngx_http_request_t *r, ngx_str_t *cookies)
{
    size_t             len;
    u_char            *p;
#if (nginx_version >= 1023000)
    ngx_table_elt_t   *h;
#else
    ngx_uint_t         i;
    ngx_table_elt_t  **hh;
#endif

    len = 0;

#if (nginx_version >= 1023000)
    for (h = r->headers_in.cookie; h; h = h->next) {
        len += h->value.len + 2;
    }
#else
    hh = r->headers_in.cookies.elts;

    for (i = 0; i < r->headers_in.cookies.nelts; i++) {
        len += hh[i]->value.len + 2;
    }
#endif

    ngx_str_null(cookies);

    if (len == 0) {
        return NGX_OK;
    }

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    cookies->data = p;

#if (nginx_version >= 1023000)
    for (h = r->headers_in.cookie; h; h = h->next) {
        if (p != cookies->data) {
            *p++ = ';'; *p++ = ' ';
        }
        p = ngx_cpymem(p, h->value.data, h->value.len);
    }
#else
    for (i = 0; i < r->headers_in.cookies.nelts; i++) {
        if (p != cookies->data) {
            *p++ = ';'; *p++ = ' ';
        }
        p = ngx_cpymem(p, hh[i]->value.data, hh[i]->value.len);
    }
#endif

    cookies->len = p - cookies->data;

    return NGX_OK;
}


static ngx_int_t
ngx_http_session_shared_handler(ngx_http_request_t *r)
{
    int                                  found;
    ngx_str_t                            cookies;
    const char                          *id, *why;
    ngx_thread_task_t                   *task;
    ngx_pool_cleanup_t                  *cln;
    ngx_http_session_shared_ctx_t       *ctx;
    ngx_http_session_shared_loc_conf_t  *sscf;
    ngx_http_session_shared_load_task_t *lt;

    sscf = ngx_http_get_module_loc_conf(r, ngx_http_session_shared_module);

    if (!sscf->enable || r != r->main) {
        return NGX_DECLINED;
    }

    ctx = ngx_http_session_shared_get_ctx(r);

    if (ctx) {
        return ctx->done ? NGX_DECLINED : NGX_DONE;
    }

    if (sscf->store.memcached == NULL) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "session_shared is on but session_shared_memcached "
                      "is not set");
        return NGX_DECLINED;
    }

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_session_shared_ctx_t));
    if (ctx == NULL) {
        return NGX_ERROR;
    }

    ctx->request = r;
    ctx->conf = sscf;

    /* a cleanup, not only the module ctx: it survives internal redirects */

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_ERROR;
    }

    cln->handler = ngx_http_session_shared_cleanup;
    cln->data = ctx;
    ngx_http_set_ctx(r, ctx, ngx_http_session_shared_module);

    if (ngx_http_session_shared_cookies(r, &cookies) != NGX_OK) {
        return NGX_ERROR;
    }

    if (cookies.len == 0) {
        ctx->done = 1;
        return NGX_DECLINED;
    }

    found = session_shared_cookie_id((char *) cookies.data, cookies.len,
                                     sscf->cookie.name,
                                     &id, &ctx->id.len, &why);

    if (found < 0) {
        /* visitors can send anything: a debug line, never a store access */
        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "session cookie %s refused: %s",
                       sscf->cookie.name, why);
        ctx->done = 1;
        return NGX_DECLINED;
    }

    if (found == 0) {
        ctx->done = 1;
        return NGX_DECLINED;
    }

    ctx->id.data = ngx_pnalloc(r->pool, ctx->id.len + 1);
    if (ctx->id.data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(ctx->id.data, id, ctx->id.len);
    ctx->id.data[ctx->id.len] = '\0';

    /* a session this process read moments ago needs no thread and no network */

    if (sscf->opened
        && session_shared_cache_lookup(sscf->opened, (char *) ctx->id.data,
                                       ctx->id.len, &ctx->record))
    {
        ctx->store = sscf->opened;
        ctx->done = 1;
        return NGX_DECLINED;
    }

    ctx->store = sscf->opened;

    task = ngx_thread_task_alloc(r->pool,
                                 sizeof(ngx_http_session_shared_load_task_t));
    if (task == NULL) {
        return NGX_ERROR;
    }

    lt = task->ctx;
    lt->ctx = ctx;

    task->handler = ngx_http_session_shared_load_thread;
    task->event.handler = ngx_http_session_shared_load_done;
    task->event.data = r;

    if (ngx_thread_task_post(sscf->thread_pool, task) != NGX_OK) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "session_shared: thread pool queue full, "
                      "request served without its session");
        ctx->done = 1;
        return NGX_DECLINED;
    }

    ctx->posted = 1;
    r->main->blocked++;
    r->aio = 1;

    return NGX_DONE;
}


static void
ngx_http_session_shared_load_thread(void *data, ngx_log_t *log)
{
    ngx_http_session_shared_load_task_t  *lt = data;
    ngx_http_session_shared_ctx_t        *ctx = lt->ctx;

    (void) log;

    /* the first task of a process opens the store (it may migrate) */

    if (ctx->store == NULL) {
        ctx->store = session_shared_store_get(&ctx->conf->store, ctx->err,
                                              sizeof(ctx->err));
        if (ctx->store == NULL) {
            return;
        }
    }

    session_shared_load(ctx->store, (char *) ctx->id.data, ctx->id.len,
                        time(NULL), &ctx->record);
}


static void
ngx_http_session_shared_load_done(ngx_event_t *ev)
{
    ngx_uint_t                      level;
    ngx_connection_t               *c;
    ngx_http_request_t             *r;
    ngx_http_session_shared_ctx_t  *ctx;

    r = ev->data;
    c = r->connection;

    ngx_http_set_log_request(c->log, r);

    ctx = ngx_http_session_shared_get_ctx(r);

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
    }

    if (ctx->store == NULL) {
        ngx_log_error(NGX_LOG_ERR, c->log, 0,
                      "cannot open the session store: %s", ctx->err);

    } else if (ctx->record.note[0]) {
        level = ctx->record.note_is_error ? NGX_LOG_ERR : NGX_LOG_INFO;
        ngx_log_error(level, c->log, 0, "%s", ctx->record.note);
    }

    if (ctx->record.state == SESSION_SHARED_EXPIRED) {
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, c->log, 0,
                       "session %V expired", &ctx->id);
    }

    if (c->error) {
        /* the client went away meanwhile: let nginx finish the request */
        ngx_http_finalize_request(r, NGX_HTTP_CLIENT_CLOSED_REQUEST);

    } else {
        r->write_event_handler(r);
    }

    ngx_http_run_posted_requests(c);
}


static ngx_http_session_shared_ctx_t *
ngx_http_session_shared_get_ctx(ngx_http_request_t *r)
{
    ngx_pool_cleanup_t             *cln;
    ngx_http_session_shared_ctx_t  *ctx;

    r = r->main;

    ctx = ngx_http_get_module_ctx(r, ngx_http_session_shared_module);

    if (ctx == NULL && (r->internal || r->filter_finalize)) {

        /*
         * the module context may be either cleared by an internal
         * redirect or never set: look for the cleanup set with it
         */

        for (cln = r->pool->cleanup; cln; cln = cln->next) {
            if (cln->handler == ngx_http_session_shared_cleanup) {
                ctx = cln->data;
                ngx_http_set_ctx(r, ctx, ngx_http_session_shared_module);
                break;
            }
        }
    }

    return ctx;
}


static void
ngx_http_session_shared_cleanup(void *data)
{
    ngx_http_session_shared_ctx_t  *ctx = data;

    session_shared_record_clear(&ctx->record);
}


static ngx_str_t *
ngx_http_session_shared_response_id(ngx_http_request_t *r, ngx_str_t *name)
{
    size_t            len;
    ngx_str_t        *id;
    ngx_uint_t        i;
    const char       *value;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    part = &r->headers_out.headers.part;
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

        if (h[i].hash == 0
            || h[i].key.len != sizeof("Set-Cookie") - 1
            || ngx_strncasecmp(h[i].key.data, (u_char *) "Set-Cookie",
                               sizeof("Set-Cookie") - 1) != 0)
        {
            continue;
        }

        if (cookie_find_set_cookie((char *) h[i].value.data, h[i].value.len,
                                   (char *) name->data, name->len,
                                   &value, &len)
            && cookie_session_id_check(value, len) == COOKIE_ID_OK)
        {
            id = ngx_palloc(r->pool, sizeof(ngx_str_t));
            if (id == NULL) {
                return NULL;
            }

            id->data = (u_char *) value;
            id->len = len;
            return id;
        }
    }

    return NULL;
}


static ngx_int_t
ngx_http_session_shared_log_handler(ngx_http_request_t *r)
{
    ngx_str_t                            *id;
    ngx_thread_task_t                    *task;
    ngx_http_session_shared_ctx_t        *ctx;
    ngx_http_session_shared_sync_task_t  *st;
    ngx_http_session_shared_loc_conf_t   *sscf;

    ctx = ngx_http_session_shared_get_ctx(r);

    /* only a backend can have written the session behind the module's back */

    if (ctx == NULL || r->upstream == NULL) {
        return NGX_OK;
    }

    if (ctx->store && ctx->id.len) {
        session_shared_cache_forget(ctx->store, (char *) ctx->id.data,
                                    ctx->id.len);
    }

    if (ctx->conf->postgres.len == 0) {
        return NGX_OK;
    }

    sscf = ctx->conf;

    id = ngx_http_session_shared_response_id(r, &sscf->cookie_name);
    if (id == NULL) {
        id = &ctx->id;
    }

    if (id->len == 0) {
        return NGX_OK;
    }

    /* the request is gone when the task runs: it owns copies of everything */

    task = ngx_calloc(sizeof(ngx_thread_task_t)
                      + sizeof(ngx_http_session_shared_sync_task_t),
                      r->connection->log);
    if (task == NULL) {
        return NGX_OK;
    }

    st = (ngx_http_session_shared_sync_task_t *) (task + 1);
    task->ctx = st;
    task->handler = ngx_http_session_shared_sync_thread;
    task->event.handler = ngx_http_session_shared_sync_done;
    task->event.data = task;
    task->event.log = ngx_cycle->log;

    st->store = ctx->store ? ctx->store : sscf->opened;
    st->id = ngx_alloc(id->len + 1, r->connection->log);

    st->loaded = ctx->record.data && id->len == ctx->id.len
                 && ngx_strncmp(id->data, ctx->id.data, id->len) == 0;

    if (st->id == NULL) {
        ngx_free(task);
        return NGX_OK;
    }

    ngx_memcpy(st->id, id->data, id->len);
    st->id[id->len] = '\0';

    /* a store not opened yet is opened by the task: it may connect */

    st->config = &sscf->store;

    if (ngx_thread_task_post(sscf->thread_pool, task) != NGX_OK)
    {
        ngx_free(st->id);
        ngx_free(task);
    }

    return NGX_OK;
}


static void
ngx_http_session_shared_sync_thread(void *data, ngx_log_t *log)
{
    ngx_http_session_shared_sync_task_t  *st = data;

    (void) log;

    if (st->store == NULL) {
        st->store = session_shared_store_get(st->config, st->note,
                                             sizeof(st->note));
        if (st->store == NULL) {
            return;
        }
    }

    session_shared_sync(st->store, st->id, ngx_strlen(st->id), st->loaded,
                        time(NULL), st->note, sizeof(st->note));
}


static void
ngx_http_session_shared_sync_done(ngx_event_t *ev)
{
    ngx_thread_task_t                    *task = ev->data;
    ngx_http_session_shared_sync_task_t  *st = task->ctx;

    if (st->note[0]) {
        ngx_log_error(NGX_LOG_INFO, ngx_cycle->log, 0, "%s", st->note);
    }

    ngx_free(st->id);
    ngx_free(task);
}


static ngx_int_t
ngx_http_session_shared_value(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, const char *value, size_t len)
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
ngx_http_session_shared_id_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_http_session_shared_ctx_t  *ctx;

    (void) data;

    ctx = ngx_http_session_shared_get_ctx(r);

    if (ctx == NULL || !ctx->done
        || ctx->record.state != SESSION_SHARED_FOUND)
    {
        v->not_found = 1;
        return NGX_OK;
    }

    v->data = ctx->id.data;
    v->len = ctx->id.len;
    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;

    return NGX_OK;
}


static ngx_uint_t
ngx_http_session_shared_key_matches(ngx_str_t *key, ngx_str_t *name)
{
    u_char      c;
    ngx_uint_t  i;

    for (i = 0; i < key->len; i++) {
        c = ngx_tolower(key->data[i]);

        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) {
            c = '_';
        }

        if (c != ngx_tolower(name->data[i])) {
            return 0;
        }
    }

    return 1;
}


static ngx_int_t
ngx_http_session_shared_key_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_str_t                      *name = (ngx_str_t *) data;

    size_t                          len;
    char                           *text;
    ngx_int_t                       rc;
    ngx_str_t                       key, *exported;
    ngx_uint_t                      i;
    int                             present;
    ngx_http_session_shared_ctx_t  *ctx;

    ctx = ngx_http_session_shared_get_ctx(r);

    v->not_found = 1;

    if (ctx == NULL || !ctx->done || ctx->record.session == NULL
        || ctx->conf->exports == NULL)
    {
        return NGX_OK;
    }

    key.data = name->data + ngx_http_session_shared_prefix_name.len;
    key.len = name->len - ngx_http_session_shared_prefix_name.len;

    /*
     * only what session_shared_export lists; a variable name is the key
     * in lower case with any other character than [a-z0-9_] as "_"
     */

    exported = ctx->conf->exports->elts;

    for (i = 0; i < ctx->conf->exports->nelts; i++) {
        if (exported[i].len == key.len
            && ngx_http_session_shared_key_matches(&exported[i], &key))
        {
            break;
        }
    }

    if (i == ctx->conf->exports->nelts) {
        return NGX_OK;
    }

    text = session_shared_value_text(ctx->record.session,
                                     (char *) exported[i].data,
                                     exported[i].len, &len, &present);
    if (!present) {
        return NGX_OK;
    }

    if (text == NULL) {
        return NGX_ERROR;
    }

    rc = ngx_http_session_shared_value(r, v, text, len);
    free(text);

    return rc;
}


static ngx_int_t
ngx_http_session_shared_add_variables(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var;

    var = ngx_http_add_variable(cf, &ngx_http_session_shared_id_name,
                                NGX_HTTP_VAR_NOCACHEABLE);
    if (var == NULL) {
        return NGX_ERROR;
    }

    var->get_handler = ngx_http_session_shared_id_variable;

    var = ngx_http_add_variable(cf, &ngx_http_session_shared_prefix_name,
                                NGX_HTTP_VAR_NOCACHEABLE|NGX_HTTP_VAR_PREFIX);
    if (var == NULL) {
        return NGX_ERROR;
    }

    var->get_handler = ngx_http_session_shared_key_variable;

    return NGX_OK;
}


static void *
ngx_http_session_shared_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_session_shared_loc_conf_t  *conf;

    conf = ngx_pcalloc(cf->pool, sizeof(ngx_http_session_shared_loc_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     conf->memcached = { 0, NULL };
     *     conf->postgres = { 0, NULL };
     *     conf->prefix = { 0, NULL };
     *     conf->cookie_name = { 0, NULL };
     *     conf->thread_pool_name = { 0, NULL };
     *     conf->thread_pool = NULL;
     */

    conf->enable = NGX_CONF_UNSET;
    conf->replicas = NGX_CONF_UNSET_UINT;
    conf->format = NGX_CONF_UNSET_UINT;
    conf->idle_timeout = NGX_CONF_UNSET;
    conf->absolute_timeout = NGX_CONF_UNSET;
    conf->cache_ttl = NGX_CONF_UNSET_MSEC;
    conf->cookie_attrs = NGX_CONF_UNSET_PTR;
    conf->exports = NGX_CONF_UNSET_PTR;

    return conf;
}


static char *
ngx_http_session_shared_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child)
{
    ngx_http_session_shared_loc_conf_t *prev = parent;
    ngx_http_session_shared_loc_conf_t *conf = child;

    ngx_str_t   *attr;
    ngx_uint_t   i;
    const char  *why;

    ngx_conf_merge_value(conf->enable, prev->enable, 0);
    ngx_conf_merge_str_value(conf->memcached, prev->memcached, "");
    ngx_conf_merge_str_value(conf->postgres, prev->postgres, "");
    ngx_conf_merge_str_value(conf->prefix, prev->prefix,
                             SESSION_SHARED_DEFAULT_PREFIX);
    ngx_conf_merge_uint_value(conf->replicas, prev->replicas, 0);
    ngx_conf_merge_uint_value(conf->format, prev->format, PHPSER_FORMAT_PHP);
    ngx_conf_merge_value(conf->idle_timeout, prev->idle_timeout,
                         SESSION_SHARED_DEFAULT_IDLE);
    ngx_conf_merge_value(conf->absolute_timeout, prev->absolute_timeout, 0);
    ngx_conf_merge_msec_value(conf->cache_ttl, prev->cache_ttl, 0);

    if (conf->cache_ttl > 60000) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"session_shared_cache_ttl\" must be at most 60s");
        return NGX_CONF_ERROR;
    }
    ngx_conf_merge_str_value(conf->cookie_name, prev->cookie_name,
                             SESSION_SHARED_DEFAULT_COOKIE);
    ngx_conf_merge_ptr_value(conf->cookie_attrs, prev->cookie_attrs, NULL);
    ngx_conf_merge_ptr_value(conf->exports, prev->exports, NULL);
    ngx_conf_merge_str_value(conf->thread_pool_name, prev->thread_pool_name,
                             "default");

    /* the server-neutral settings, as NUL-terminated strings */

    conf->store.memcached = conf->memcached.len
                            ? (const char *) conf->memcached.data : NULL;
    conf->store.postgres = conf->postgres.len
                           ? (const char *) conf->postgres.data : NULL;
    conf->store.prefix = (const char *) conf->prefix.data;
    conf->store.replicas = conf->replicas;
    conf->store.format = (phpser_format) conf->format;
    conf->store.idle_timeout = conf->idle_timeout;
    conf->store.absolute_timeout = conf->absolute_timeout;
    conf->store.cache_ttl_ms = (long) conf->cache_ttl;

    conf->cookie.name = (const char *) conf->cookie_name.data;
    conf->cookie.httponly = 1;
    conf->cookie.secure = SESSION_SHARED_SECURE_AUTO;

    if (conf->cookie_attrs) {
        attr = conf->cookie_attrs->elts;

        for (i = 0; i < conf->cookie_attrs->nelts; i++) {
            why = session_shared_parse_cookie_attr(&conf->cookie,
                                                   (char *) attr[i].data);
            if (why) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid cookie attribute \"%V\": %s",
                                   &attr[i], why);
                return NGX_CONF_ERROR;
            }
        }
    }

    if (conf->enable) {
        conf->thread_pool = ngx_thread_pool_add(cf, &conf->thread_pool_name);
        if (conf->thread_pool == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_session_shared_memcached(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_session_shared_loc_conf_t *sscf = conf;

    ngx_str_t   *value;
    const char  *why;

    if (sscf->memcached.data) {
        return "is duplicate";
    }

    value = cf->args->elts;

    why = session_shared_check_memcached((char *) value[1].data);
    if (why) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid value \"%V\": %s", &value[1], why);
        return NGX_CONF_ERROR;
    }

    sscf->memcached = value[1];

    return NGX_CONF_OK;
}


static char *
ngx_http_session_shared_replicas(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_session_shared_loc_conf_t *sscf = conf;

    unsigned     replicas;
    ngx_str_t   *value;
    const char  *why;

    if (sscf->replicas != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;

    why = session_shared_parse_replicas((char *) value[1].data, &replicas);
    if (why) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid value \"%V\": %s", &value[1], why);
        return NGX_CONF_ERROR;
    }

    sscf->replicas = replicas;

    return NGX_CONF_OK;
}


static char *
ngx_http_session_shared_format(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_session_shared_loc_conf_t *sscf = conf;

    ngx_str_t     *value;
    const char    *why;
    phpser_format  format;

    if (sscf->format != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;

    why = session_shared_parse_format((char *) value[1].data, &format);
    if (why) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid value \"%V\": %s", &value[1], why);
        return NGX_CONF_ERROR;
    }

    sscf->format = format;

    return NGX_CONF_OK;
}


static char *
ngx_http_session_shared_seconds(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    char  *p = conf;

    long         seconds;
    ngx_int_t   *field;
    ngx_str_t   *value;
    const char  *why;

    field = (ngx_int_t *) (p + cmd->offset);

    if (*field != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    value = cf->args->elts;

    why = session_shared_parse_seconds((char *) value[1].data, &seconds);
    if (why) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid value \"%V\": %s", &value[1], why);
        return NGX_CONF_ERROR;
    }

    *field = seconds;

    return NGX_CONF_OK;
}


static char *
ngx_http_session_shared_cookie(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_session_shared_loc_conf_t *sscf = conf;

    u_char      *c;
    ngx_str_t   *value, *attr;
    ngx_uint_t   i;
    const char  *why;

    session_shared_cookie  probe;

    if (sscf->cookie_name.data) {
        return "is duplicate";
    }

    value = cf->args->elts;

    for (c = value[1].data; c < value[1].data + value[1].len; c++) {
        if (*c <= ' ' || *c >= 0x7f || ngx_strchr(";,=\"\\()<>@:/[]?{}", *c)) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid cookie name \"%V\"", &value[1]);
            return NGX_CONF_ERROR;
        }
    }

    if (value[1].len == 0) {
        return "has an empty cookie name";
    }

    sscf->cookie_name = value[1];

    sscf->cookie_attrs = ngx_array_create(cf->pool, 4, sizeof(ngx_str_t));
    if (sscf->cookie_attrs == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(&probe, sizeof(session_shared_cookie));

    for (i = 2; i < cf->args->nelts; i++) {

        /* checked here too, to report the error at its line */

        why = session_shared_parse_cookie_attr(&probe,
                                               (char *) value[i].data);
        if (why) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid value \"%V\": %s", &value[i], why);
            return NGX_CONF_ERROR;
        }

        attr = ngx_array_push(sscf->cookie_attrs);
        if (attr == NULL) {
            return NGX_CONF_ERROR;
        }

        *attr = value[i];
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_session_shared_export(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_session_shared_loc_conf_t *sscf = conf;

    ngx_str_t   *value, *key;
    ngx_uint_t   i;

    if (sscf->exports == NGX_CONF_UNSET_PTR) {
        sscf->exports = ngx_array_create(cf->pool, 4, sizeof(ngx_str_t));
        if (sscf->exports == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {
        if (value[i].len == 0 || value[i].len > 100) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid session key \"%V\"", &value[i]);
            return NGX_CONF_ERROR;
        }

        key = ngx_array_push(sscf->exports);
        if (key == NULL) {
            return NGX_CONF_ERROR;
        }

        *key = value[i];
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_session_shared_init(ngx_conf_t *cf)
{
    ngx_http_handler_pt        *h;
    ngx_http_core_main_conf_t  *cmcf;

    if (ngx_http_webmodules_metrics_init(cf, "session_shared",
                                         session_shared_metric_defs,
                                         session_shared_metric_count,
                                         &session_shared_metrics,
                                         &ngx_http_session_shared_module)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    /* the rewrite phase, so that "if" and "set" can use the variables */

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_REWRITE_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_session_shared_handler;

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_LOG_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_session_shared_log_handler;

    return NGX_OK;
}


static void
ngx_http_session_shared_exit_process(ngx_cycle_t *cycle)
{
    (void) cycle;

    session_shared_stores_close_all();
}
