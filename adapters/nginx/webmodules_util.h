/*
 * Small request and configuration helpers the nginx adapters share: a whole
 * response from memory, a response header, a request header by name, a pool
 * copy as a C string, and a secret read from a file at configuration time.
 *
 * Static inline, included by each adapter: every module is its own shared
 * object, loaded alone or with the others, so nothing here may be an exported
 * symbol two modules would both define.
 */

#ifndef _NGX_HTTP_WEBMODULES_UTIL_H_INCLUDED_
#define _NGX_HTTP_WEBMODULES_UTIL_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <stdlib.h>

#include "crypto.h"


/* The header, then the body (empty: a sync buffer, so that the chain still
 * ends and HEAD requests need nothing special). */
static ngx_inline ngx_int_t
ngx_http_webmodules_send(ngx_http_request_t *r, ngx_uint_t status,
    u_char *body, size_t len)
{
    ngx_int_t     rc;
    ngx_buf_t    *b;
    ngx_chain_t   out;

    r->headers_out.status = status;
    r->headers_out.content_length_n = len;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_ERROR;
    }

    b->pos = body;
    b->last = body + len;
    b->memory = (len != 0);
    b->sync = (len == 0);
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


/* key must outlive the request (a literal); value is not copied either. */
static ngx_inline ngx_int_t
ngx_http_webmodules_add_header(ngx_http_request_t *r, char *key,
    u_char *value, size_t len)
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
    h->key.data = (u_char *) key;
    h->key.len = ngx_strlen(key);
    h->value.data = value;
    h->value.len = len;

    return NGX_OK;
}


/* The first request header of that name (case-insensitive), or NULL. */
static ngx_inline ngx_table_elt_t *
ngx_http_webmodules_header_in(ngx_http_request_t *r, const char *name,
    size_t len)
{
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                return NULL;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len == len
            && ngx_strncasecmp(h[i].key.data, (u_char *) name, len) == 0)
        {
            return &h[i];
        }
    }
}


/* The server-neutral code takes NUL-terminated strings; nginx's are not. */
static ngx_inline char *
ngx_http_webmodules_cstr(ngx_pool_t *pool, u_char *data, size_t len)
{
    u_char  *p;

    p = ngx_pnalloc(pool, len + 1);
    if (p == NULL) {
        return NULL;
    }

    ngx_memcpy(p, data, len);
    p[len] = '\0';

    return (char *) p;
}


/*
 * The directive's file argument (relative to the prefix) read with the same
 * reader as Apache's (core/crypto.c), copied NUL-terminated into the
 * configuration pool; the reader's copy is wiped. NGX_CONF_OK or an error
 * already logged.
 */
static ngx_inline char *
ngx_http_webmodules_secret_file(ngx_conf_t *cf, size_t min_len,
    ngx_str_t *out)
{
    char        *secret, err[512];
    size_t       len;
    ngx_str_t   *value, name;

    value = cf->args->elts;
    name = value[1];

    if (ngx_conf_full_name(cf->cycle, &name, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    if (crypto_read_secret_file((char *) name.data, min_len, &secret, &len,
                                err, sizeof(err))
        != NULL)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "%s", err);
        return NGX_CONF_ERROR;
    }

    out->data = ngx_pnalloc(cf->pool, len + 1);

    if (out->data != NULL) {
        ngx_memcpy(out->data, secret, len + 1);
        out->len = len;
    }

    ngx_explicit_memzero(secret, len);
    free(secret);

    return out->data ? NGX_CONF_OK : NGX_CONF_ERROR;
}


#endif /* _NGX_HTTP_WEBMODULES_UTIL_H_INCLUDED_ */
