/* The metrics plumbing every Apache adapter shares (core/metrics.h): the shared memory of the module's block, the
 * optional function that hands the block to the other modules, and the "webmodules-metrics" handler.
 *
 * Each adapter includes this file after its APLOG_USE_MODULE line (the log lines then carry its module's name), so
 * each module has its own static copy: the modules find each other's blocks through the optional functions'
 * names, never through each other's symbols, and whichever of them is loaded serves the whole page. */
#ifndef WEBMODULES_METRICS_APACHE_H
#define WEBMODULES_METRICS_APACHE_H

#include "httpd.h"
#include "http_config.h"
#include "http_log.h"
#include "http_protocol.h"
#include "http_request.h"
#include "apr_optional.h"
#include "apr_shm.h"

#include <stdlib.h>
#include <string.h>

#include "metrics.h"

#define WEBMODULES_METRICS_HANDLER "webmodules-metrics"
#define WEBMODULES_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* Each module registers the one of its name; NULL until its post_config has laid out the block. */
APR_DECLARE_OPTIONAL_FN(metrics_block *, webmodules_metrics_session_shared, (void));
APR_DECLARE_OPTIONAL_FN(metrics_block *, webmodules_metrics_paywall, (void));
APR_DECLARE_OPTIONAL_FN(metrics_block *, webmodules_metrics_promo, (void));
APR_DECLARE_OPTIONAL_FN(metrics_block *, webmodules_metrics_booking, (void));

/* From a post_config hook, which runs before the children are forked: the anonymous shared memory is then mapped in
 * every child, and their updates add up in the same block. The memory belongs to pconf, so a restart (and the second
 * post_config of the start-up) starts from a fresh block and frees the previous one. */
static int webmodules_metrics_create(apr_pool_t *pconf, server_rec *s, const char *module, const metrics_def *defs,
                                     size_t count, metrics_block **block)
{
    apr_size_t size = metrics_block_size(defs, count);
    apr_shm_t *shm;
    apr_status_t rv;

    *block = NULL;
    if ((rv = apr_shm_create(&shm, size, NULL, pconf)) != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s, "%s: cannot create %" APR_SIZE_T_FMT " bytes of shared memory "
                     "for its metrics", module, size);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    *block = metrics_block_init(apr_shm_baseaddr_get(shm), size, module, defs, count);
    if (*block == NULL) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s, "%s: cannot lay out its metrics", module);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    return OK;
}

static int webmodules_metrics_append(request_rec *r, metrics_block *block, char **buf, size_t *len, size_t *cap)
{
    if (block == NULL)
        return 0;
    if (metrics_render(block, "apache", buf, len, cap) != 0) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "metrics: out of memory rendering %s's metrics",
                      metrics_block_module(block));
        return -1;
    }
    return 0;
}

/* SetHandler webmodules-metrics: every loaded module's block, in Prometheus' text format. */
static int webmodules_metrics_handler(request_rec *r)
{
    /* the four have the same type: one array */
    APR_OPTIONAL_FN_TYPE(webmodules_metrics_paywall) *blocks[4];
    char *buf = NULL;
    size_t len = 0, cap = 0;
    int i;

    if (r->handler == NULL || strcmp(r->handler, WEBMODULES_METRICS_HANDLER) != 0)
        return DECLINED;
    if (r->method_number != M_GET) {
        ap_allow_standard_methods(r, REPLACE_ALLOW, M_GET, -1);
        return HTTP_METHOD_NOT_ALLOWED;
    }
    /* The figures tell a lot about the site's traffic: never served to whoever asks, even by mistake. */
    if (r->user == NULL) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "metrics: %s refused: no authenticated user; protect the "
                      "location of SetHandler " WEBMODULES_METRICS_HANDLER " with the server's authentication "
                      "(AuthType Basic, Require valid-user)", r->uri);
        return HTTP_FORBIDDEN;
    }
    blocks[0] = APR_RETRIEVE_OPTIONAL_FN(webmodules_metrics_session_shared);
    blocks[1] = APR_RETRIEVE_OPTIONAL_FN(webmodules_metrics_paywall);
    blocks[2] = APR_RETRIEVE_OPTIONAL_FN(webmodules_metrics_promo);
    blocks[3] = APR_RETRIEVE_OPTIONAL_FN(webmodules_metrics_booking);
    for (i = 0; i < 4; i++) {
        if (blocks[i] && webmodules_metrics_append(r, blocks[i](), &buf, &len, &cap) != 0) {
            free(buf);
            return HTTP_INTERNAL_SERVER_ERROR;
        }
    }
    ap_set_content_type(r, WEBMODULES_METRICS_CONTENT_TYPE);
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    ap_set_content_length(r, (apr_off_t) len);
    if (!r->header_only && len)
        ap_rwrite(buf, (int) len, r);
    free(buf);
    return OK;
}

#endif
