/*
 * The metrics plumbing every nginx adapter shares (core/metrics.h): the
 * module's block in a shared zone named "webmodules_metrics_<module>", the
 * "webmodules_metrics" location directive that renders every such zone, and
 * the test of a user checked by auth_basic that this handler and
 * mod_booking's partner API rely on.
 *
 * Each adapter includes this file, so each module has its own static copy:
 * nginx gives a directive that several modules declare to the first of them,
 * and that one's handler finds the other modules' blocks by their zones'
 * names, never through their symbols.
 */

#ifndef _NGX_HTTP_WEBMODULES_METRICS_H_INCLUDED_
#define _NGX_HTTP_WEBMODULES_METRICS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <stdlib.h>

#include "metrics.h"
#include "webmodules_util.h"


#define NGX_HTTP_WEBMODULES_METRICS_ZONE  "webmodules_metrics_"
#define NGX_HTTP_WEBMODULES_METRICS_TYPE                                      \
    "text/plain; version=0.0.4; charset=utf-8"


/* what a module's zone is set up from; in the cycle's pool */

typedef struct {
    const char                *module;
    const metrics_def         *defs;
    size_t                     count;
    size_t                     size;
    metrics_block            **block;
} ngx_http_webmodules_metrics_ctx_t;


static ngx_int_t ngx_http_webmodules_metrics_handler(ngx_http_request_t *r);


/*
 * Set from this module's "webmodules_metrics" directive, cleared by its
 * postconfiguration: only a configuration that uses the handler pays for
 * its access handler.
 */

static ngx_uint_t  ngx_http_webmodules_metrics_used;


/* ------------------------------------------------------ the checked user */

/*
 * From an access handler of a location that trusts only auth_basic: it runs
 * before auth_basic's handler (a dynamic module's access handlers come
 * first) and forgets a user parsed earlier (by a $remote_user in the rewrite
 * phase, say), so that auth_basic parses it again and checks it.
 */

static ngx_inline void
ngx_http_webmodules_forget_user(ngx_http_request_t *r)
{
    ngx_str_null(&r->headers_in.user);
    ngx_str_null(&r->headers_in.passwd);
}


/*
 * Whether auth_basic checked the request's user, in a location whose access
 * handler called ngx_http_webmodules_forget_user(): the user was then parsed
 * by auth_basic in this access phase, and without a WWW-Authenticate it was
 * accepted rather than refused and then let in by "satisfy any". Subrequests
 * skip the access phase: never trusted. A header nobody checked (a location
 * without auth_basic, where $remote_user would still show it) is no login,
 * as on Apache.
 */

static ngx_inline ngx_uint_t
ngx_http_webmodules_checked_user(ngx_http_request_t *r)
{
    return r == r->main
           && r->headers_in.user.data != NULL
           && r->headers_in.user.len
           && r->headers_out.www_authenticate == NULL;
}


/* ---------------------------------------------------------- the zone */

/*
 * In the master, before the workers start (and in each reload's new cycle):
 * nginx hands a reused zone's previous data, and the block it holds keeps
 * counting when its layout is the same, so that a reload does not reset the
 * counters the way a restart does.
 */

static ngx_int_t
ngx_http_webmodules_metrics_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_webmodules_metrics_ctx_t  *ctx = shm_zone->data;

    void                               *mem;
    metrics_block                      *block;
    ngx_slab_pool_t                    *shpool;

    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (data && shpool->data) {
        block = metrics_block_match(shpool->data, ctx->size, ctx->module,
                                    ctx->defs, ctx->count);
        if (block) {
            *ctx->block = block;
            return NGX_OK;
        }
    }

    /*
     * A block of another layout is left to the old workers that still count
     * into it: their memory stays valid until they exit.
     */

    mem = ngx_slab_alloc(shpool, ctx->size);
    if (mem == NULL) {
        ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                      "no room for the metrics in zone \"%V\"",
                      &shm_zone->shm.name);
        return NGX_ERROR;
    }

    block = metrics_block_init(mem, ctx->size, ctx->module, ctx->defs,
                               ctx->count);
    if (block == NULL) {
        ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                      "%s: cannot lay out its metrics", ctx->module);
        return NGX_ERROR;
    }

    shpool->data = mem;
    *ctx->block = block;

    return NGX_OK;
}


static metrics_block *
ngx_http_webmodules_metrics_zone_block(ngx_shm_zone_t *shm_zone)
{
    ngx_slab_pool_t  *shpool;

    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    return shpool ? metrics_block_at(shpool->data) : NULL;
}


/* ------------------------------------------------------- the handler */

static ngx_int_t
ngx_http_webmodules_metrics_access_handler(ngx_http_request_t *r)
{
    ngx_http_core_loc_conf_t  *clcf;

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    if (clcf->handler == ngx_http_webmodules_metrics_handler) {
        ngx_http_webmodules_forget_user(r);
    }

    return NGX_DECLINED;
}


static void
ngx_http_webmodules_metrics_free(void *data)
{
    free(data);
}


static ngx_int_t
ngx_http_webmodules_metrics_handler(ngx_http_request_t *r)
{
    char                *text;
    size_t               len, cap;
    ngx_int_t            rc;
    ngx_uint_t           i;
    metrics_block       *block;
    ngx_shm_zone_t      *zone;
    ngx_list_part_t     *part;
    ngx_pool_cleanup_t  *cln;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    /* the figures tell a lot about the site's traffic: never to anybody */

    if (!ngx_http_webmodules_checked_user(r)) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "metrics: refused: no user checked by auth_basic; "
                      "protect the location of \"webmodules_metrics\" "
                      "with auth_basic and auth_basic_user_file");
        return NGX_HTTP_FORBIDDEN;
    }

    rc = ngx_http_discard_request_body(r);

    if (rc != NGX_OK) {
        return rc;
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    text = NULL;
    len = 0;
    cap = 0;

    part = (ngx_list_part_t *) &ngx_cycle->shared_memory.part;
    zone = part->elts;

    for (i = 0; /* void */ ; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            zone = part->elts;
            i = 0;
        }

        if (zone[i].shm.name.len <= sizeof(NGX_HTTP_WEBMODULES_METRICS_ZONE) - 1
            || ngx_strncmp(zone[i].shm.name.data,
                           NGX_HTTP_WEBMODULES_METRICS_ZONE,
                           sizeof(NGX_HTTP_WEBMODULES_METRICS_ZONE) - 1)
               != 0)
        {
            continue;
        }

        block = ngx_http_webmodules_metrics_zone_block(&zone[i]);

        if (block == NULL) {
            continue;
        }

        if (metrics_render(block, "nginx", &text, &len, &cap) != 0) {
            free(text);
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "metrics: out of memory rendering %s's metrics",
                          metrics_block_module(block));
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    /* the text stays until the request is over: the buffer points into it */

    cln->handler = ngx_http_webmodules_metrics_free;
    cln->data = text;

    if (ngx_http_webmodules_add_header(r, "Cache-Control",
                                       (u_char *) "no-store",
                                       sizeof("no-store") - 1)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_str_set(&r->headers_out.content_type, NGX_HTTP_WEBMODULES_METRICS_TYPE);
    r->headers_out.content_type_len = sizeof("text/plain") - 1;
    r->headers_out.content_type_lowcase = NULL;

    return ngx_http_webmodules_send(r, NGX_HTTP_OK, (u_char *) text, len);
}


/* ----------------------------------------------- directive and set-up */

static char *
ngx_http_webmodules_metrics(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_core_loc_conf_t  *clcf;

    (void) cmd;
    (void) conf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    if (clcf->handler == ngx_http_webmodules_metrics_handler) {
        return "is duplicate";
    }

    clcf->handler = ngx_http_webmodules_metrics_handler;
    ngx_http_webmodules_metrics_used = 1;

    return NGX_CONF_OK;
}


/*
 * From the module's postconfiguration: its zone, "webmodules_metrics_"
 * module, and the access handler of the locations that serve the metrics.
 * tag: the module, so that a reload finds the zone of the same module.
 */

static ngx_int_t
ngx_http_webmodules_metrics_init(ngx_conf_t *cf, const char *module,
    const metrics_def *defs, size_t count, metrics_block **block, void *tag)
{
    size_t                              n;
    ngx_str_t                           name;
    ngx_shm_zone_t                     *shm_zone;
    ngx_http_handler_pt                *h;
    ngx_http_core_main_conf_t          *cmcf;
    ngx_http_webmodules_metrics_ctx_t  *ctx;

    ctx = ngx_pcalloc(cf->pool, sizeof(ngx_http_webmodules_metrics_ctx_t));
    if (ctx == NULL) {
        return NGX_ERROR;
    }

    ctx->module = module;
    ctx->defs = defs;
    ctx->count = count;
    ctx->size = metrics_block_size(defs, count);
    ctx->block = block;

    n = ngx_strlen(module);
    name.len = sizeof(NGX_HTTP_WEBMODULES_METRICS_ZONE) - 1 + n;
    name.data = ngx_pnalloc(cf->pool, name.len);
    if (name.data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(ngx_cpymem(name.data, NGX_HTTP_WEBMODULES_METRICS_ZONE,
                          sizeof(NGX_HTTP_WEBMODULES_METRICS_ZONE) - 1),
               module, n);

    /* the slab allocator's own pages, then whole pages for the block */

    shm_zone = ngx_shared_memory_add(cf, &name,
                                     8 * ngx_pagesize
                                     + ngx_align(ctx->size, ngx_pagesize),
                                     tag);
    if (shm_zone == NULL) {
        return NGX_ERROR;
    }

    shm_zone->init = ngx_http_webmodules_metrics_init_zone;
    shm_zone->data = ctx;

    if (!ngx_http_webmodules_metrics_used) {
        return NGX_OK;
    }

    ngx_http_webmodules_metrics_used = 0;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_ACCESS_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_webmodules_metrics_access_handler;

    return NGX_OK;
}


#endif /* _NGX_HTTP_WEBMODULES_METRICS_H_INCLUDED_ */
