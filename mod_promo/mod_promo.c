/*
 * mod_promo: Apache adapter. Injects the editors' promotion banners into HTML pages (a streaming output filter),
 * applies discount codes (?promo=CODE or the banner's click) and publishes them (PROMO_*) for the PHP app and for
 * mod_paywall's checkout, counts impressions and clicks, and serves the editors' page and its JSON API.
 */

#include <stdlib.h>

#include "httpd.h"
#include "http_config.h"
#include "http_core.h"
#include "http_log.h"
#include "http_protocol.h"
#include "http_request.h"
#include "apr_lib.h"
#include "apr_strings.h"
#include "util_filter.h"

#include "cookie.h"
#include "crypto.h"
#include "promo.h"
#include "promo_store.h"
#include "req.h"

#define UNSET           -1
#define FILTER_NAME     "PROMO"
#define API_BODY_MAX    (64 * 1024)
#define SECRET_MIN      16
#define CODE_COOKIE     "promo_code"
#define CSRF_COOKIE     "promo_csrf"
#define CSRF_PLACEHOLDER "{{CSRF}}"

extern const char promo_admin_page[];
extern const size_t promo_admin_page_len;

module AP_MODULE_DECLARE_DATA promo_module;

APLOG_USE_MODULE(promo);

/* After APLOG_USE_MODULE: its log lines then name this module. */
#include "webmodules_metrics.h"

/* The block the other modules' metrics handlers render (webmodules_metrics.h). */
static metrics_block *webmodules_metrics_promo(void)
{
    return promo_metrics;
}

typedef struct {
    int enabled;
    promo_store_config store;
    int refresh_set;
    promo_placement placement;
    int placement_set;
    const char *secret;
    apr_size_t secret_len;
    req_source user; /* name NULL: not set here */
    long long base_price;
    const char *base_currency;
    const char *click_url;
} promo_dir_conf;

/* What the request learned, kept on the first request of an internal redirect chain. */
typedef struct {
    promo_snapshot *snapshot;
    promo_store *store;
    const promo_promotion *code_promotion; /* the applied discount */
    int decided;
} promo_request;

/* ------------------------------------------------------------------------------------------ configuration */

static void *promo_create_dir_conf(apr_pool_t *p, char *dir)
{
    promo_dir_conf *conf = apr_pcalloc(p, sizeof(*conf));

    (void) dir;
    conf->enabled = UNSET;
    conf->base_price = -1;
    return conf;
}

#define MERGE_PTR(field) conf->field = add->field ? add->field : base->field
#define MERGE_SET(field, flag) \
    do { \
        conf->flag = add->flag || base->flag; \
        conf->field = add->flag ? add->field : base->field; \
    } while (0)

static void *promo_merge_dir_conf(apr_pool_t *p, void *basev, void *addv)
{
    promo_dir_conf *base = basev, *add = addv;
    promo_dir_conf *conf = apr_pcalloc(p, sizeof(*conf));

    conf->enabled = add->enabled != UNSET ? add->enabled : base->enabled;
    MERGE_PTR(store.postgres);
    MERGE_PTR(store.memcached);
    MERGE_SET(store.refresh, refresh_set);
    MERGE_SET(placement, placement_set);
    if (add->secret) {
        conf->secret = add->secret;
        conf->secret_len = add->secret_len;
    } else {
        conf->secret = base->secret;
        conf->secret_len = base->secret_len;
    }
    conf->user = add->user.name ? add->user : base->user;
    if (add->base_price >= 0) {
        conf->base_price = add->base_price;
        conf->base_currency = add->base_currency;
    } else {
        conf->base_price = base->base_price;
        conf->base_currency = base->base_currency;
    }
    MERGE_PTR(click_url);
    return conf;
}

static promo_dir_conf promo_effective(const promo_dir_conf *conf)
{
    promo_dir_conf eff = *conf;

    if (!eff.refresh_set)
        eff.store.refresh = PROMO_REFRESH_DEFAULT;
    if (!eff.placement_set)
        eff.placement.kind = PROMO_PLACE_AFTER_BODY;
    if (eff.user.name == NULL) {
        eff.user.kind = REQ_SOURCE_SESSION;
        eff.user.name = "user_id";
    }
    if (eff.click_url == NULL)
        eff.click_url = "/promo/click";
    return eff;
}

static const char *promo_error(cmd_parms *cmd, const char *value, const char *why)
{
    return apr_psprintf(cmd->pool, "%s: invalid value \"%s\": %s", cmd->cmd->name, value, why);
}

static const char *set_postgres(cmd_parms *cmd, void *dconf, const char *value)
{
    (void) cmd;
    ((promo_dir_conf *) dconf)->store.postgres = value;
    return NULL;
}

static const char *set_memcached(cmd_parms *cmd, void *dconf, const char *value)
{
    (void) cmd;
    ((promo_dir_conf *) dconf)->store.memcached = value;
    return NULL;
}

static const char *set_refresh(cmd_parms *cmd, void *dconf, const char *value)
{
    promo_dir_conf *conf = dconf;
    char *end;
    long seconds = strtol(value, &end, 10);

    if (*value == '\0' || *end != '\0' || seconds < 1 || seconds > 3600)
        return promo_error(cmd, value, "must be a number of seconds from 1 to 3600");
    conf->store.refresh = seconds;
    conf->refresh_set = 1;
    return NULL;
}

static const char *set_placement(cmd_parms *cmd, void *dconf, const char *kind, const char *marker)
{
    promo_dir_conf *conf = dconf;
    const char *why = promo_parse_placement(kind, marker, &conf->placement);

    if (why)
        return promo_error(cmd, marker ? apr_pstrcat(cmd->pool, kind, " ", marker, NULL) : kind, why);
    conf->placement_set = 1;
    return NULL;
}

static const char *set_secret_file(cmd_parms *cmd, void *dconf, const char *value)
{
    promo_dir_conf *conf = dconf;
    char err[512], *secret;
    size_t len;

    if (crypto_read_secret_file(ap_server_root_relative(cmd->pool, value), SECRET_MIN, &secret, &len, err,
                                sizeof(err)))
        return apr_psprintf(cmd->pool, "%s: %s", cmd->cmd->name, err);
    conf->secret = apr_pstrmemdup(cmd->pool, secret, len);
    conf->secret_len = len;
    free(secret);
    return NULL;
}

static const char *set_user(cmd_parms *cmd, void *dconf, const char *value)
{
    promo_dir_conf *conf = dconf;
    const char *why = req_source_parse(value, &conf->user);

    if (why)
        return promo_error(cmd, value, why);
    return NULL;
}

static const char *set_base_price(cmd_parms *cmd, void *dconf, const char *cents, const char *currency)
{
    promo_dir_conf *conf = dconf;
    char *end;
    long long value = strtoll(cents, &end, 10);

    if (*cents == '\0' || *end != '\0' || value < 0 || value > 100000000)
        return promo_error(cmd, cents, "must be a price in cents");
    if (strlen(currency) != 3 || !apr_isalpha(currency[0]) || !apr_isalpha(currency[1]) || !apr_isalpha(currency[2]))
        return promo_error(cmd, currency, "must be a three-letter currency code such as eur");
    conf->base_price = value;
    conf->base_currency = apr_pstrdup(cmd->pool, currency);
    ap_str_tolower((char *) conf->base_currency);
    return NULL;
}

static const char *set_click_url(cmd_parms *cmd, void *dconf, const char *value)
{
    if (value[0] != '/' || value[1] == '/' || strpbrk(value, " \"'<>?#\\") != NULL)
        return promo_error(cmd, value, "must be a path such as /promo/click");
    ((promo_dir_conf *) dconf)->click_url = value;
    return NULL;
}

static const command_rec promo_cmds[] = {
    AP_INIT_FLAG("Promo", ap_set_flag_slot, (void *) APR_OFFSETOF(promo_dir_conf, enabled), RSRC_CONF | ACCESS_CONF,
                 "On to inject the promotions' banners into HTML pages here"),
    AP_INIT_TAKE1("PromoPostgres", set_postgres, NULL, RSRC_CONF | ACCESS_CONF,
                  "libpq connection string of the promotions database"),
    AP_INIT_TAKE1("PromoMemcached", set_memcached, NULL, RSRC_CONF | ACCESS_CONF,
                  "memcached servers where every node adds its counts (\"host:port,host:port\")"),
    AP_INIT_TAKE1("PromoRefresh", set_refresh, NULL, RSRC_CONF | ACCESS_CONF,
                  "seconds between two reads of the promotions (default 5): the longest a change takes to show"),
    AP_INIT_TAKE12("PromoPlacement", set_placement, NULL, RSRC_CONF | ACCESS_CONF,
                   "after-body (default), before-body-end, or marker TEXT"),
    AP_INIT_TAKE1("PromoSecretFile", set_secret_file, NULL, RSRC_CONF | ACCESS_CONF,
                  "file holding the key that signs the promo_code cookie (the same on every server)"),
    AP_INIT_TAKE1("PromoUser", set_user, NULL, RSRC_CONF | ACCESS_CONF,
                  "session:KEY, env:NAME or header:NAME: who is logged in (default session:user_id)"),
    AP_INIT_TAKE2("PromoBasePrice", set_base_price, NULL, RSRC_CONF | ACCESS_CONF,
                  "CENTS CURRENCY: the yearly price PROMO_FIRST_YEAR_PRICE is computed from"),
    AP_INIT_TAKE1("PromoClickURL", set_click_url, NULL, RSRC_CONF | ACCESS_CONF,
                  "the promo-click handler's path that banners link through (default /promo/click)"),
    {NULL}
};

/* ---------------------------------------------------------------------------------------------- requests */

static const char *promo_user(request_rec *r, const promo_dir_conf *conf)
{
    char *name;
    apr_size_t i;

    switch (conf->user.kind) {
    case REQ_SOURCE_SESSION:
        name = apr_pstrcat(r->pool, "SESSION_", conf->user.name, NULL);
        for (i = 0; name[i]; i++)
            name[i] = apr_isalnum(name[i]) ? apr_toupper(name[i]) : '_';
        return apr_table_get(r->subprocess_env, name);
    case REQ_SOURCE_ENV:
        if (strcmp(conf->user.name, "REMOTE_USER") == 0 && r->user)
            return r->user;
        return apr_table_get(r->subprocess_env, conf->user.name);
    case REQ_SOURCE_HEADER:
        return apr_table_get(r->headers_in, conf->user.name);
    }
    return NULL;
}

static const char *promo_cookie(request_rec *r, const char *name, apr_size_t *len)
{
    const char *header = apr_table_get(r->headers_in, "Cookie"), *value;
    size_t n;

    if (header == NULL || !cookie_find(header, strlen(header), name, strlen(name), &value, &n))
        return NULL;
    *len = n;
    return value;
}

static request_rec *promo_first_request(request_rec *r)
{
    while (r->prev)
        r = r->prev;
    return r;
}

static apr_status_t promo_request_cleanup(void *data)
{
    promo_request *state = data;

    promo_snapshot_release(state->snapshot);
    return APR_SUCCESS;
}

/* The snapshot for this request, refreshed first when due (one request thread of the process does it). */
static promo_request *promo_request_state(request_rec *r, const promo_dir_conf *conf)
{
    request_rec *first = promo_first_request(r->main ? r->main : r);
    promo_request *state = ap_get_module_config(first->request_config, &promo_module);
    char err[512], note[512] = "";
    int is_error = 0;
    time_t now = apr_time_sec(r->request_time);

    if (state)
        return state;
    state = apr_pcalloc(first->pool, sizeof(*state));
    ap_set_module_config(first->request_config, &promo_module, state);
    apr_pool_cleanup_register(first->pool, state, promo_request_cleanup, apr_pool_cleanup_null);
    if (conf->store.postgres == NULL)
        return state;
    state->store = promo_store_get(&conf->store, err, sizeof(err));
    if (state->store == NULL) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "promo: %s", err);
        return state;
    }
    if (promo_store_refresh_due(state->store, now)) {
        promo_store_refresh(state->store, now, note, sizeof(note), &is_error);
        if (note[0])
            ap_log_rerror(APLOG_MARK, is_error ? APLOG_ERR : APLOG_NOTICE, 0, r, "%s", note);
    }
    state->snapshot = promo_snapshot_acquire(state->store);
    return state;
}

static void promo_set_code_cookie(request_rec *r, const promo_dir_conf *conf, const promo_promotion *promotion)
{
    char value[PROMO_COOKIE_MAX];
    time_t now = apr_time_sec(r->request_time);

    if (conf->secret == NULL || promotion->ends_at <= now ||
        promo_cookie_make(conf->secret, conf->secret_len, promotion->code, promotion->ends_at, value, sizeof(value)) ==
            0)
        return;
    apr_table_addn(r->err_headers_out, "Set-Cookie",
                   apr_psprintf(r->pool, "%s=%s; Path=/; Max-Age=%ld; HttpOnly; SameSite=Lax%s", CODE_COOKIE, value,
                                (long) (promotion->ends_at - now), ap_http_scheme(r)[4] == 's' ? "; Secure" : ""));
}

static void promo_publish_code(request_rec *r, const promo_dir_conf *conf, const promo_promotion *promotion)
{
    apr_table_t *env = r->subprocess_env;

    apr_table_setn(env, "PROMO_CODE", apr_pstrdup(r->pool, promotion->code));
    if (promotion->stripe_coupon)
        apr_table_setn(env, "PROMO_STRIPE_COUPON", apr_pstrdup(r->pool, promotion->stripe_coupon));
    if (promotion->discount == PROMO_DISCOUNT_PERCENT)
        apr_table_setn(env, "PROMO_DISCOUNT", apr_psprintf(r->pool, "%u%%", promotion->percent_off));
    else if (promotion->discount == PROMO_DISCOUNT_AMOUNT)
        apr_table_setn(env, "PROMO_DISCOUNT",
                       apr_psprintf(r->pool, "%" APR_INT64_T_FMT ".%02d %s", (apr_int64_t) (promotion->amount_off / 100),
                                    (int) (promotion->amount_off % 100), promotion->currency));
    if (conf->base_price >= 0)
        apr_table_setn(env, "PROMO_FIRST_YEAR_PRICE",
                       apr_psprintf(r->pool, "%" APR_INT64_T_FMT,
                                    (apr_int64_t) promo_first_year_price(promotion, conf->base_price,
                                                                         conf->base_currency)));
}

/* ?promo=CODE, or the promo_code cookie: what discount applies to this visitor. */
static void promo_apply_code(request_rec *r, const promo_dir_conf *conf, promo_request *state)
{
    const promo_promotion *promotion;
    promo_code_status status;
    const char *arg = NULL, *cookie;
    char code[PROMO_CODE_MAX + 1], held[PROMO_CODE_MAX + 1];
    apr_size_t len = 0;
    time_t now = apr_time_sec(r->request_time);

    if (state->snapshot == NULL)
        return;
    if (r->args) {
        const char *p = r->args;
        while (p) {
            if (strncmp(p, "promo=", 6) == 0) {
                const char *end = strchr(p + 6, '&');
                char *value = apr_pstrndup(r->pool, p + 6, end ? (apr_size_t) (end - p - 6) : strlen(p + 6));
                arg = ap_unescape_url(value) == OK ? value : "";
                break;
            }
            p = strchr(p, '&');
            if (p)
                p++;
        }
    }
    if (arg) {
        promotion = NULL;
        status = PROMO_CODE_UNKNOWN;
        if (promo_code_normalise(arg, strlen(arg), code, sizeof(code)) == 0) {
            promotion = promo_snapshot_find_code(state->snapshot, code);
            status = promo_code_check(promotion, now,
                                      promotion ? promo_snapshot_redemptions(state->store, state->snapshot, promotion)
                                                : 0);
        }
        if (status == PROMO_CODE_OK) {
            state->code_promotion = promotion;
            /* A visitor following the same link again (a reload, a prefetch) holds the code already: one
             * redemption per visitor, and only when a cookie carries it on. */
            if (conf->secret &&
                !((cookie = promo_cookie(r, CODE_COOKIE, &len)) != NULL &&
                  promo_cookie_parse(conf->secret, conf->secret_len, cookie, len, now, held, sizeof(held)) == 0 &&
                  strcmp(held, promotion->code) == 0)) {
                promo_set_code_cookie(r, conf, promotion);
                promo_count(state->store, promotion->id, PROMO_COUNT_REDEMPTION, now);
            }
        } else {
            metrics_add(promo_metrics, PROMO_METRIC_CODES, PROMO_CODE_RESULT_REFUSED, 1);
            apr_table_setn(r->subprocess_env, "PROMO_CODE_ERROR", promo_code_status_name(status));
            apr_table_setn(r->subprocess_env, "PROMO_CODE_MESSAGE", promo_code_status_message(status));
            ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, "promo code \"%s\" refused: %s",
                          ap_escape_logitem(r->pool, arg), promo_code_status_name(status));
        }
    }
    if (state->code_promotion == NULL && conf->secret && (cookie = promo_cookie(r, CODE_COOKIE, &len)) != NULL &&
        promo_cookie_parse(conf->secret, conf->secret_len, cookie, len, now, code, sizeof(code)) == 0) {
        promotion = promo_snapshot_find_code(state->snapshot, code);
        /* A code already applied stays applied until the promotion ends, even past its redemption limit. */
        if (promo_code_check(promotion, now, 0) == PROMO_CODE_OK)
            state->code_promotion = promotion;
    }
}

static int promo_fixups(request_rec *r)
{
    promo_dir_conf conf = promo_effective(ap_get_module_config(r->per_dir_config, &promo_module));
    promo_request *state;
    apr_size_t len;

    if (r->main || conf.store.postgres == NULL)
        return DECLINED;
    /* Most requests neither show a banner nor carry a code: they cost no lock and no snapshot. */
    if (conf.enabled != 1 && !(r->args && strstr(r->args, "promo=")) && !promo_cookie(r, CODE_COOKIE, &len))
        return DECLINED;
    state = promo_request_state(r, &conf);
    if (!state->decided) {
        state->decided = 1;
        promo_apply_code(r, &conf, state);
    }
    if (state->code_promotion)
        promo_publish_code(r, &conf, state->code_promotion);
    /* The editors' page and the click handler are not pages to advertise on. */
    if (conf.enabled == 1 && state->snapshot && r->method_number == M_GET &&
        !(r->handler && strncmp(r->handler, "promo-", 6) == 0))
        ap_add_output_filter(FILTER_NAME, NULL, r, r->connection);
    return DECLINED;
}

/* ------------------------------------------------------------------------------------------- output filter */

typedef struct {
    promo_inject inject;
    apr_bucket_brigade *out;
    long long promotion_id;
    promo_store *store;
    int finished;
} promo_filter_ctx;

static int promo_filter_emit(void *data, const char *bytes, size_t len)
{
    promo_filter_ctx *ctx = data;

    return apr_brigade_write(ctx->out, NULL, NULL, bytes, len) == APR_SUCCESS ? 0 : -1;
}

static unsigned promo_roll(void)
{
    static __thread unsigned long long state;

    if (state == 0) {
        if (crypto_random_bytes(&state, sizeof(state)) != 0 || state == 0)
            state = (unsigned long long) apr_time_now() | 1;
    }
    /* xorshift64* */
    state ^= state >> 12;
    state ^= state << 25;
    state ^= state >> 27;
    return (unsigned) ((state * 2685821657736338717ULL) >> 32);
}

/* The promotion for this page, or NULL: the filter then steps aside. */
static const promo_promotion *promo_pick(request_rec *r, const promo_dir_conf *conf, promo_request *state)
{
    const promo_promotion *const *list;
    promo_visit visit;
    size_t count;
    unsigned roll;
    const char *user = promo_user(r, conf);

    list = promo_snapshot_promotions(state->snapshot, &count);
    if (count == 0)
        return NULL;
    memset(&visit, 0, sizeof(visit));
    visit.path = r->uri;
    visit.path_len = strlen(r->uri);
    visit.logged_in = user && *user;
    visit.paywall_access = apr_table_get(r->subprocess_env, "PAYWALL_ACCESS");
    visit.paywall_plan = apr_table_get(r->subprocess_env, "PAYWALL_PLAN");
    visit.dismissed = promo_cookie(r, "promo_dismissed", &visit.dismissed_len);
    visit.now = apr_time_sec(r->request_time);
    /* Rotation needs an even spread, not secrecy: a per-thread generator instead of a system call a page. */
    roll = promo_roll();
    return promo_choose(list, count, &visit, roll);
}

static apr_status_t promo_output_filter(ap_filter_t *f, apr_bucket_brigade *bb)
{
    request_rec *r = f->r;
    promo_filter_ctx *ctx = f->ctx;
    apr_bucket *b;

    if (ctx == NULL) {
        promo_dir_conf conf = promo_effective(ap_get_module_config(r->per_dir_config, &promo_module));
        promo_request *state = ap_get_module_config(promo_first_request(r)->request_config, &promo_module);
        const promo_promotion *promotion;
        const char *cached;
        char *block;
        size_t len;

        /* HTML pages answered in full only: not JSON, not HEAD, not a range, not a body the backend compressed
         * (decompressing every page would cost more than the banner is worth; mod_deflate compresses after us). */
        if (state == NULL || state->snapshot == NULL || r->status != HTTP_OK || r->header_only || r->main ||
            r->content_type == NULL || strncasecmp(r->content_type, "text/html", 9) != 0 ||
            apr_table_get(r->headers_out, "Content-Encoding") || apr_table_get(r->headers_in, "Range") ||
            (promotion = promo_pick(r, &conf, state)) == NULL) {
            ap_remove_output_filter(f);
            return ap_pass_brigade(f->next, bb);
        }
        /* The snapshot's copy lives as long as the request holds the snapshot. */
        cached = promo_snapshot_banner(state->snapshot, promotion, conf.click_url, &len);
        if (cached == NULL) {
            block = promo_banner_html(promotion, conf.click_url, &len);
            if (block == NULL) {
                ap_remove_output_filter(f);
                return ap_pass_brigade(f->next, bb);
            }
            cached = apr_pstrmemdup(r->pool, block, len);
            free(block);
        }
        ctx = f->ctx = apr_pcalloc(r->pool, sizeof(*ctx));
        ctx->out = apr_brigade_create(r->pool, f->c->bucket_alloc);
        ctx->promotion_id = promotion->id;
        ctx->store = state->store;
        promo_inject_init(&ctx->inject, &conf.placement, cached, len);
        apr_table_setn(r->subprocess_env, "PROMO_ID", apr_psprintf(r->pool, "%" APR_INT64_T_FMT, (apr_int64_t) promotion->id));
        apr_table_unset(r->headers_out, "Content-Length");
        apr_table_unset(r->headers_out, "ETag");
        /* The page now holds a banner of this moment: no 304 for a copy with another, or none. */
        apr_table_unset(r->headers_out, "Last-Modified");
    }
    if (ctx->finished) {
        apr_brigade_cleanup(bb);
        return APR_SUCCESS;
    }
    for (b = APR_BRIGADE_FIRST(bb); b != APR_BRIGADE_SENTINEL(bb); b = APR_BUCKET_NEXT(b)) {
        const char *data;
        apr_size_t len;

        if (APR_BUCKET_IS_EOS(b)) {
            if (promo_inject_finish(&ctx->inject, promo_filter_emit, ctx) != 0)
                return APR_EGENERAL;
            if (promo_inject_inserted(&ctx->inject))
                promo_count(ctx->store, ctx->promotion_id, PROMO_COUNT_IMPRESSION, apr_time_sec(r->request_time));
            ctx->finished = 1;
            APR_BRIGADE_INSERT_TAIL(ctx->out, apr_bucket_eos_create(f->c->bucket_alloc));
            apr_brigade_cleanup(bb);
            return ap_pass_brigade(f->next, ctx->out);
        }
        if (APR_BUCKET_IS_FLUSH(b)) {
            APR_BRIGADE_INSERT_TAIL(ctx->out, apr_bucket_flush_create(f->c->bucket_alloc));
            continue;
        }
        if (APR_BUCKET_IS_METADATA(b))
            continue;
        /* A small page is read faster than it is mapped and unmapped, which a file bucket does by default. */
        if (APR_BUCKET_IS_FILE(b))
            apr_bucket_file_enable_mmap(b, 0);
        if (apr_bucket_read(b, &data, &len, APR_BLOCK_READ) != APR_SUCCESS)
            return APR_EGENERAL;
        if (len && promo_inject_feed(&ctx->inject, data, len, promo_filter_emit, ctx) != 0)
            return APR_EGENERAL;
    }
    apr_brigade_cleanup(bb);
    if (APR_BRIGADE_EMPTY(ctx->out))
        return APR_SUCCESS;
    {
        apr_status_t rv = ap_pass_brigade(f->next, ctx->out);
        apr_brigade_cleanup(ctx->out);
        return rv;
    }
}

/* ------------------------------------------------------------------------------------------------ handlers */

static int promo_text(request_rec *r, int status, const char *type, const char *body, apr_size_t len)
{
    r->status = status;
    ap_set_content_type(r, type);
    apr_table_setn(r->err_headers_out, "Cache-Control", "no-store");
    if (!r->header_only && len)
        ap_rwrite(body, (int) len, r);
    return OK;
}

static int promo_json_error(request_rec *r, int status, const char *message)
{
    char *body = apr_psprintf(r->pool, "{\"error\":\"%s\"}\n", message);

    ap_log_rerror(APLOG_MARK, status >= 500 ? APLOG_ERR : APLOG_INFO, 0, r, "promo admin: %d %s", status, message);
    return promo_text(r, status, "application/json", body, strlen(body));
}

static int promo_click_handler(request_rec *r, promo_dir_conf *conf)
{
    promo_request *state = promo_request_state(r, conf);
    const promo_promotion *promotion = NULL;
    const char *id = NULL, *cookie;
    char code[PROMO_CODE_MAX + 1];
    apr_size_t len;
    time_t now = apr_time_sec(r->request_time);

    if (r->method_number != M_GET) {
        apr_table_setn(r->headers_out, "Allow", "GET, HEAD");
        return promo_text(r, HTTP_METHOD_NOT_ALLOWED, "text/plain", "GET a promotion link\n", 21);
    }
    if (r->args && strncmp(r->args, "id=", 3) == 0)
        id = r->args + 3;
    if (id && state->snapshot) {
        char *end;
        long long value = strtoll(id, &end, 10);
        if (end != id && (*end == '\0' || *end == '&'))
            promotion = promo_snapshot_find_id(state->snapshot, value);
    }
    if (promotion == NULL)
        return promo_text(r, HTTP_NOT_FOUND, "text/plain", "no such promotion\n", 18);
    promo_count(state->store, promotion->id, PROMO_COUNT_CLICK, now);
    /* Following the banner applies its discount, unless the visitor already holds a valid code. */
    if (promotion->discount != PROMO_DISCOUNT_NONE && conf->secret &&
        promo_code_check(promotion, now, promo_snapshot_redemptions(state->store, state->snapshot, promotion)) ==
            PROMO_CODE_OK &&
        !(conf->secret && (cookie = promo_cookie(r, CODE_COOKIE, &len)) != NULL &&
          promo_cookie_parse(conf->secret, conf->secret_len, cookie, len, now, code, sizeof(code)) == 0)) {
        promo_set_code_cookie(r, conf, promotion);
        promo_count(state->store, promotion->id, PROMO_COUNT_REDEMPTION, now);
    }
    apr_table_setn(r->headers_out, "Location", apr_pstrdup(r->pool, promotion->cta_url));
    apr_table_setn(r->err_headers_out, "Cache-Control", "no-store");
    return HTTP_MOVED_TEMPORARILY;
}

static int promo_csrf_ok(request_rec *r)
{
    const char *header = apr_table_get(r->headers_in, "X-Promo-CSRF"), *cookie;
    apr_size_t len;

    cookie = promo_cookie(r, CSRF_COOKIE, &len);
    return header && cookie && len >= 32 && strlen(header) == len && crypto_equal_consttime(header, cookie, len);
}

static int promo_admin_page_send(request_rec *r, const char *prefix)
{
    unsigned char raw[16];
    char token[33];
    const char *page = promo_admin_page, *hole;
    apr_size_t page_len = promo_admin_page_len;

    if (crypto_random_bytes(raw, sizeof(raw)) != 0)
        return HTTP_INTERNAL_SERVER_ERROR;
    crypto_hex_encode(raw, sizeof(raw), token);
    apr_table_addn(r->err_headers_out, "Set-Cookie",
                   apr_psprintf(r->pool, "%s=%s; Path=%s; HttpOnly; SameSite=Strict%s", CSRF_COOKIE, token, prefix,
                                ap_http_scheme(r)[4] == 's' ? "; Secure" : ""));
    apr_table_setn(r->headers_out, "Content-Security-Policy",
                   "default-src 'self'; img-src * data:; style-src 'self' 'unsafe-inline'; "
                   "script-src 'self' 'unsafe-inline'; frame-ancestors 'none'");
    apr_table_setn(r->headers_out, "X-Frame-Options", "DENY");
    r->status = HTTP_OK;
    ap_set_content_type(r, "text/html; charset=utf-8");
    apr_table_setn(r->err_headers_out, "Cache-Control", "no-store");
    if (r->header_only)
        return OK;
    while ((hole = strstr(page, CSRF_PLACEHOLDER)) != NULL && (apr_size_t) (hole - promo_admin_page) < page_len) {
        ap_rwrite(page, (int) (hole - page), r);
        ap_rwrite(token, 32, r);
        page = hole + sizeof(CSRF_PLACEHOLDER) - 1;
    }
    ap_rwrite(page, (int) (promo_admin_page + page_len - page), r);
    return OK;
}

static int promo_read_body(request_rec *r, char **out, apr_size_t *out_len)
{
    char *buf;
    apr_size_t len = 0;
    long n;
    int rv;

    if ((rv = ap_setup_client_block(r, REQUEST_CHUNKED_DECHUNK)) != OK)
        return rv;
    if (r->remaining > API_BODY_MAX)
        return HTTP_REQUEST_ENTITY_TOO_LARGE;
    buf = apr_palloc(r->pool, API_BODY_MAX + 1);
    if (ap_should_client_block(r)) {
        while ((n = ap_get_client_block(r, buf + len, API_BODY_MAX + 1 - len)) > 0) {
            len += (apr_size_t) n;
            if (len > API_BODY_MAX)
                return HTTP_REQUEST_ENTITY_TOO_LARGE;
        }
        if (n < 0)
            return HTTP_BAD_REQUEST;
    }
    buf[len] = '\0';
    *out = buf;
    *out_len = len;
    return 0;
}

static int promo_api_answer(request_rec *r, promo_api_result *result)
{
    int rv;

    if (result->status >= 400)
        ap_log_rerror(APLOG_MARK, result->status >= 500 ? APLOG_ERR : APLOG_INFO, 0, r, "promo admin: %d %s",
                      result->status, result->body ? result->body : "");
    rv = promo_text(r, result->status, "application/json", result->body ? result->body : "",
                    result->body ? result->body_len : 0);
    promo_api_result_free(result);
    return rv;
}

static int promo_admin_handler(request_rec *r, promo_dir_conf *conf)
{
    promo_request *state = promo_request_state(r, conf);
    promo_api_result result;
    const char *route, *type, *api, *prefix, *editor = r->user ? r->user : "";
    char *body, *end;
    apr_size_t len, plen;
    long long id = 0;
    int rv, write = r->method_number == M_POST || r->method_number == M_PUT;

    if (state->store == NULL)
        return promo_json_error(r, HTTP_SERVICE_UNAVAILABLE, "promotions unavailable");
    /* Routes are found from the end of the path: the handler's location may be merged with others around it, so
     * no configuration section tells where it starts. */
    api = strstr(r->uri, "/api/");
    if (api) {
        prefix = apr_pstrndup(r->pool, r->uri, (apr_size_t) (api - r->uri) + 1);
        route = api + 1;
    } else {
        prefix = r->uri;
        plen = strlen(prefix);
        if (plen == 0 || prefix[plen - 1] != '/') {
            apr_table_setn(r->headers_out, "Location", apr_pstrcat(r->pool, r->uri, "/", NULL));
            return HTTP_MOVED_PERMANENTLY;
        }
        if (r->method_number != M_GET) {
            apr_table_setn(r->headers_out, "Allow", "GET, HEAD");
            return promo_json_error(r, HTTP_METHOD_NOT_ALLOWED, "GET the editors' page");
        }
        return promo_admin_page_send(r, prefix);
    }
    if (strncmp(route, "api/promotions", 14) != 0)
        return promo_json_error(r, HTTP_NOT_FOUND, "no such route");
    route += 14;
    if (*route == '/') {
        id = strtoll(route + 1, &end, 10);
        if (end == route + 1 || id <= 0)
            return promo_json_error(r, HTTP_NOT_FOUND, "no such route");
        route = end;
    }
    if (write) {
        if (!promo_csrf_ok(r))
            return promo_json_error(r, HTTP_FORBIDDEN, "missing or invalid CSRF token");
    }
    memset(&result, 0, sizeof(result));
    if (id == 0 && *route == '\0') {
        if (r->method_number == M_GET) {
            promo_api_list(state->store, &result);
            return promo_api_answer(r, &result);
        }
        if (r->method_number != M_POST) {
            apr_table_setn(r->headers_out, "Allow", "GET, HEAD, POST");
            return promo_json_error(r, HTTP_METHOD_NOT_ALLOWED, "GET or POST promotions");
        }
    } else if (id && *route == '\0') {
        if (r->method_number == M_GET) {
            promo_api_get(state->store, id, &result);
            return promo_api_answer(r, &result);
        }
        if (r->method_number != M_PUT) {
            apr_table_setn(r->headers_out, "Allow", "GET, HEAD, PUT");
            return promo_json_error(r, HTTP_METHOD_NOT_ALLOWED, "GET or PUT a promotion");
        }
    } else if (id && (strcmp(route, "/enable") == 0 || strcmp(route, "/disable") == 0)) {
        if (r->method_number != M_POST) {
            apr_table_setn(r->headers_out, "Allow", "POST");
            return promo_json_error(r, HTTP_METHOD_NOT_ALLOWED, "POST to switch a promotion");
        }
        promo_api_set_enabled(state->store, id, route[1] == 'e', editor, &result);
        return promo_api_answer(r, &result);
    } else {
        return promo_json_error(r, HTTP_NOT_FOUND, "no such route");
    }
    type = apr_table_get(r->headers_in, "Content-Type");
    if (type == NULL || strncasecmp(type, "application/json", 16) != 0)
        return promo_json_error(r, HTTP_UNSUPPORTED_MEDIA_TYPE, "send application/json");
    if ((rv = promo_read_body(r, &body, &len)) != 0)
        return promo_json_error(r, rv, rv == HTTP_REQUEST_ENTITY_TOO_LARGE ? "body larger than 64 KB"
                                                                          : "the body could not be read");
    promo_api_save(state->store, id, body, len, editor, &result);
    return promo_api_answer(r, &result);
}

static int promo_handler(request_rec *r)
{
    promo_dir_conf conf;

    if (r->handler == NULL || strncmp(r->handler, "promo-", 6) != 0)
        return DECLINED;
    conf = promo_effective(ap_get_module_config(r->per_dir_config, &promo_module));
    if (conf.store.postgres == NULL) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "promo: %s without PromoPostgres", r->handler);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    if (strcmp(r->handler, "promo-click") == 0)
        return promo_click_handler(r, &conf);
    if (strcmp(r->handler, "promo-admin") == 0)
        return promo_admin_handler(r, &conf);
    return DECLINED;
}

/* ---------------------------------------------------------------------------------------------- process */

static apr_status_t promo_child_exit(void *data)
{
    (void) data;
    promo_stores_close_all();
    return APR_SUCCESS;
}

static void promo_child_init(apr_pool_t *p, server_rec *s)
{
    (void) s;
    apr_pool_cleanup_register(p, NULL, promo_child_exit, apr_pool_cleanup_null);
}

static int promo_post_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp, server_rec *s)
{
    (void) plog;
    (void) ptemp;
    return webmodules_metrics_create(pconf, s, "promo", promo_metric_defs, promo_metric_count, &promo_metrics);
}

static void promo_register_hooks(apr_pool_t *p)
{
    /* After mod_paywall's fixups, whose PAYWALL_ACCESS decides the audience. */
    static const char *const after[] = {"mod_paywall.c", "mod_session_shared.c", NULL};

    (void) p;
    ap_hook_post_config(promo_post_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_child_init(promo_child_init, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_fixups(promo_fixups, after, NULL, APR_HOOK_MIDDLE);
    ap_hook_handler(promo_handler, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_handler(webmodules_metrics_handler, NULL, NULL, APR_HOOK_MIDDLE);
    APR_REGISTER_OPTIONAL_FN(webmodules_metrics_promo);
    ap_register_output_filter(FILTER_NAME, promo_output_filter, NULL, AP_FTYPE_RESOURCE);
}

module AP_MODULE_DECLARE_DATA promo_module = {
    STANDARD20_MODULE_STUFF,
    promo_create_dir_conf,
    promo_merge_dir_conf,
    NULL,
    NULL,
    promo_cmds,
    promo_register_hooks,
    AP_MODULE_FLAG_NONE
};
