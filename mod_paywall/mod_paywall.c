/*
 * mod_paywall: Apache adapter. Gates locations for subscribers (PHP pages and static files alike), meters free
 * views, lets published crawler ranges through, tells the backend what it decided (PAYWALL_*), and serves the
 * Stripe handlers: checkout, billing portal, webhook, and the routing CSV export.
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
#include "http.h"
#include "paywall.h"
#include "paywall_filter.h"
#include "paywall_store.h"

#define UNSET          -1
#define FORM_MAX       8192
#define FILTER_NAME    "PAYWALL"

module AP_MODULE_DECLARE_DATA paywall_module;

APLOG_USE_MODULE(paywall);

/* After APLOG_USE_MODULE: its log lines then name this module. */
#include "webmodules_metrics.h"

/* The block the other modules' metrics handlers render (webmodules_metrics.h). */
static metrics_block *webmodules_metrics_paywall(void)
{
    return paywall_metrics;
}

typedef struct {
    int enabled;
    paywall_store_config store;
    int cache_set;
    int stale_set;
    paywall_user_source user;
    int user_set;
    paywall_user_source email;
    int email_set;
    paywall_require *require;
    paywall_meter_config meter;
    int meter_set;
    paywall_deny deny;
    int deny_set;
    const char *marker;
    const char *teaser;
    apr_size_t teaser_len;
    paywall_crawlers *crawlers;
    const char *structured_data; /* the JSON-LD block to insert */
    long grace;
    int grace_set;
    paywall_fail_mode fail_mode;
    int fail_set;
    const unsigned char *secret;
    apr_size_t secret_len;
    const char *stripe_key;
    const char *webhook_secret;
    apr_size_t webhook_secret_len;
    const char *stripe_api;
    long stripe_timeout;
    int timeout_set;
    paywall_plans *plans;
    const char *return_url;
} paywall_dir_conf;

/* The gate's decision, kept on the first request so that internal redirects neither meter twice nor lose it. */
typedef struct {
    paywall_result result;
    int teaser;   /* denied with PaywallDeny teaser: the output filter cuts */
    int observed; /* decided under Paywall Observe: published, never enforced */
} paywall_request;

/* ------------------------------------------------------------------------------------------ configuration */

static void *paywall_create_dir_conf(apr_pool_t *p, char *dir)
{
    paywall_dir_conf *conf = apr_pcalloc(p, sizeof(*conf));

    (void) dir;
    conf->enabled = UNSET;
    return conf;
}

#define MERGE_PTR(field) conf->field = add->field ? add->field : base->field
#define MERGE_SET(field, flag) \
    do { \
        conf->flag = add->flag || base->flag; \
        conf->field = add->flag ? add->field : base->field; \
    } while (0)

static void *paywall_merge_dir_conf(apr_pool_t *p, void *basev, void *addv)
{
    paywall_dir_conf *base = basev, *add = addv;
    paywall_dir_conf *conf = apr_pcalloc(p, sizeof(*conf));

    conf->enabled = add->enabled != UNSET ? add->enabled : base->enabled;
    MERGE_PTR(store.memcached);
    MERGE_PTR(store.postgres);
    MERGE_SET(store.cache_ttl_ms, cache_set);
    MERGE_SET(store.max_stale, stale_set);
    MERGE_SET(user, user_set);
    MERGE_SET(email, email_set);
    MERGE_PTR(require);
    MERGE_SET(meter, meter_set);
    MERGE_SET(deny, deny_set);
    MERGE_PTR(marker);
    if (add->teaser) {
        conf->teaser = add->teaser;
        conf->teaser_len = add->teaser_len;
    } else {
        conf->teaser = base->teaser;
        conf->teaser_len = base->teaser_len;
    }
    MERGE_PTR(crawlers);
    MERGE_PTR(structured_data);
    MERGE_SET(grace, grace_set);
    MERGE_SET(fail_mode, fail_set);
    if (add->secret) {
        conf->secret = add->secret;
        conf->secret_len = add->secret_len;
    } else {
        conf->secret = base->secret;
        conf->secret_len = base->secret_len;
    }
    MERGE_PTR(stripe_key);
    if (add->webhook_secret) {
        conf->webhook_secret = add->webhook_secret;
        conf->webhook_secret_len = add->webhook_secret_len;
    } else {
        conf->webhook_secret = base->webhook_secret;
        conf->webhook_secret_len = base->webhook_secret_len;
    }
    MERGE_PTR(stripe_api);
    MERGE_SET(stripe_timeout, timeout_set);
    MERGE_PTR(plans);
    MERGE_PTR(return_url);
    return conf;
}

/* The effective settings: defaults for whatever no scope set. */
static paywall_dir_conf paywall_effective(const paywall_dir_conf *conf)
{
    paywall_dir_conf eff = *conf;

    if (!eff.cache_set)
        eff.store.cache_ttl_ms = PAYWALL_CACHE_TTL_MS_DEFAULT;
    if (!eff.stale_set)
        eff.store.max_stale = PAYWALL_MAX_STALE_DEFAULT;
    if (!eff.user_set) {
        eff.user.kind = PAYWALL_USER_SESSION;
        eff.user.name = "user_id";
    }
    if (!eff.deny_set) {
        eff.deny.kind = PAYWALL_DENY_STATUS;
        eff.deny.status = HTTP_FORBIDDEN;
    }
    if (eff.marker == NULL)
        eff.marker = PAYWALL_FILTER_MARKER_DEFAULT;
    if (eff.teaser == NULL) {
        eff.teaser = PAYWALL_FILTER_CTA_DEFAULT;
        eff.teaser_len = sizeof(PAYWALL_FILTER_CTA_DEFAULT) - 1;
    }
    if (!eff.grace_set)
        eff.grace = PAYWALL_GRACE_DEFAULT;
    if (!eff.fail_set)
        eff.fail_mode = PAYWALL_FAIL_CLOSED;
    if (eff.stripe_api == NULL)
        eff.stripe_api = PAYWALL_STRIPE_API_DEFAULT;
    if (!eff.timeout_set)
        eff.stripe_timeout = PAYWALL_STRIPE_TIMEOUT_MS / 1000;
    if (eff.return_url == NULL)
        eff.return_url = "/";
    return eff;
}

static const char *paywall_error(cmd_parms *cmd, const char *value, const char *why)
{
    return apr_psprintf(cmd->pool, "%s: invalid value \"%s\": %s", cmd->cmd->name, value, why);
}

#define PAYWALL_OBSERVE 2 /* Paywall Observe: decide and publish, never deny, never meter */

static const char *set_enabled(cmd_parms *cmd, void *dconf, const char *value)
{
    paywall_dir_conf *conf = dconf;

    if (strcasecmp(value, "on") == 0)
        conf->enabled = 1;
    else if (strcasecmp(value, "off") == 0)
        conf->enabled = 0;
    else if (strcasecmp(value, "observe") == 0)
        conf->enabled = PAYWALL_OBSERVE;
    else
        return paywall_error(cmd, value, "must be On, Off or Observe");
    return NULL;
}

static const char *set_memcached(cmd_parms *cmd, void *dconf, const char *value)
{
    (void) cmd;
    ((paywall_dir_conf *) dconf)->store.memcached = value;
    return NULL;
}

static const char *set_postgres(cmd_parms *cmd, void *dconf, const char *value)
{
    (void) cmd;
    ((paywall_dir_conf *) dconf)->store.postgres = value;
    return NULL;
}

static const char *set_cache_ttl(cmd_parms *cmd, void *dconf, const char *value)
{
    paywall_dir_conf *conf = dconf;
    const char *why;
    long seconds;

    if ((why = paywall_parse_duration(value, &seconds)) != NULL)
        return paywall_error(cmd, value, why);
    if (seconds > 60)
        return paywall_error(cmd, value, "must be at most 60s: entitlement changes must show within seconds");
    conf->store.cache_ttl_ms = seconds * 1000;
    conf->cache_set = 1;
    return NULL;
}

static const char *set_max_stale(cmd_parms *cmd, void *dconf, const char *value)
{
    paywall_dir_conf *conf = dconf;
    const char *why;

    if ((why = paywall_parse_duration(value, &conf->store.max_stale)) != NULL)
        return paywall_error(cmd, value, why);
    conf->stale_set = 1;
    return NULL;
}

static const char *set_user(cmd_parms *cmd, void *dconf, const char *value)
{
    paywall_dir_conf *conf = dconf;
    const char *why = paywall_parse_user_source(value, &conf->user);

    if (why)
        return paywall_error(cmd, value, why);
    conf->user_set = 1;
    return NULL;
}

static const char *set_email(cmd_parms *cmd, void *dconf, const char *value)
{
    paywall_dir_conf *conf = dconf;
    const char *why = paywall_parse_user_source(value, &conf->email);

    if (why)
        return paywall_error(cmd, value, why);
    conf->email_set = 1;
    return NULL;
}

static const char *set_require(cmd_parms *cmd, void *dconf, const char *value)
{
    paywall_dir_conf *conf = dconf;
    const char *why;

    /* Each PaywallRequire line replaces what an outer scope required, as Require does without RequireAll. */
    if (conf->require == NULL || cmd->info == NULL) {
        conf->require = apr_pcalloc(cmd->pool, sizeof(*conf->require));
        cmd->info = conf->require;
    }
    if ((why = paywall_parse_require(conf->require, value)) != NULL)
        return paywall_error(cmd, value, why);
    return NULL;
}

static const char *set_meter(cmd_parms *cmd, void *dconf, const char *count, const char *period)
{
    paywall_dir_conf *conf = dconf;
    const char *why = paywall_parse_meter(count, period, &conf->meter);

    if (why)
        return paywall_error(cmd, apr_pstrcat(cmd->pool, count, " ", period, NULL), why);
    conf->meter_set = 1;
    return NULL;
}

static const char *set_deny(cmd_parms *cmd, void *dconf, const char *kind, const char *arg)
{
    paywall_dir_conf *conf = dconf;
    const char *why = paywall_parse_deny(kind, arg, &conf->deny);

    if (why)
        return paywall_error(cmd, arg ? apr_pstrcat(cmd->pool, kind, " ", arg, NULL) : kind, why);
    conf->deny_set = 1;
    return NULL;
}

static const char *set_marker(cmd_parms *cmd, void *dconf, const char *value)
{
    if (*value == '\0' || strlen(value) > PAYWALL_FILTER_MARKER_MAX)
        return paywall_error(cmd, value, "must be 1 to 255 bytes");
    ((paywall_dir_conf *) dconf)->marker = value;
    return NULL;
}

static const char *paywall_read_file(cmd_parms *cmd, const char *path, apr_size_t max, const char **out,
                                     apr_size_t *len)
{
    apr_file_t *file;
    apr_finfo_t info;
    char *data;
    apr_status_t rv;

    path = ap_server_root_relative(cmd->pool, path);
    rv = apr_file_open(&file, path, APR_READ, 0, cmd->pool);
    if (rv != APR_SUCCESS)
        return apr_psprintf(cmd->pool, "%s: cannot open \"%s\"", cmd->cmd->name, path);
    if (apr_file_info_get(&info, APR_FINFO_SIZE, file) != APR_SUCCESS || info.size < 0 || (apr_size_t) info.size > max)
        return apr_psprintf(cmd->pool, "%s: \"%s\" is larger than %lu bytes", cmd->cmd->name, path,
                            (unsigned long) max);
    data = apr_palloc(cmd->pool, (apr_size_t) info.size + 1);
    *len = 0;
    if (info.size > 0 && apr_file_read_full(file, data, (apr_size_t) info.size, len) != APR_SUCCESS)
        return apr_psprintf(cmd->pool, "%s: cannot read \"%s\"", cmd->cmd->name, path);
    data[*len] = '\0';
    apr_file_close(file);
    *out = data;
    return NULL;
}

static const char *set_teaser_file(cmd_parms *cmd, void *dconf, const char *value)
{
    paywall_dir_conf *conf = dconf;

    return paywall_read_file(cmd, value, 64 * 1024, &conf->teaser, &conf->teaser_len);
}

static apr_status_t paywall_crawlers_cleanup(void *data)
{
    paywall_crawlers_free(data);
    return APR_SUCCESS;
}

static const char *set_crawler_ranges(cmd_parms *cmd, void *dconf, const char *value)
{
    paywall_dir_conf *conf = dconf;
    char err[512];

    if (paywall_crawlers_load(ap_server_root_relative(cmd->pool, value), &conf->crawlers, err, sizeof(err)) != 0)
        return apr_psprintf(cmd->pool, "%s: %s", cmd->cmd->name, err);
    apr_pool_cleanup_register(cmd->pool, conf->crawlers, paywall_crawlers_cleanup, apr_pool_cleanup_null);
    return NULL;
}

static const char *set_structured_data(cmd_parms *cmd, void *dconf, const char *value)
{
    char *block = paywall_structured_data(value);

    if (block == NULL)
        return paywall_error(cmd, value, "must be a CSS selector of 1 to 256 bytes without control characters");
    ((paywall_dir_conf *) dconf)->structured_data = apr_pstrdup(cmd->pool, block);
    free(block);
    return NULL;
}

static const char *set_grace(cmd_parms *cmd, void *dconf, const char *value)
{
    paywall_dir_conf *conf = dconf;
    const char *why = paywall_parse_grace(value, &conf->grace);

    if (why)
        return paywall_error(cmd, value, why);
    conf->grace_set = 1;
    return NULL;
}

static const char *set_fail_mode(cmd_parms *cmd, void *dconf, const char *value)
{
    paywall_dir_conf *conf = dconf;
    const char *why = paywall_parse_fail_mode(value, &conf->fail_mode);

    if (why)
        return paywall_error(cmd, value, why);
    conf->fail_set = 1;
    return NULL;
}

/* Secrets are read at start-up, as root, so the files can be readable by root alone. */
static const char *paywall_secret(cmd_parms *cmd, const char *path, size_t min_len, const char **out,
                                  apr_size_t *out_len)
{
    char err[512], *secret;
    size_t len;

    if (paywall_read_secret_file(ap_server_root_relative(cmd->pool, path), min_len, &secret, &len, err, sizeof(err)))
        return apr_psprintf(cmd->pool, "%s: %s", cmd->cmd->name, err);
    *out = apr_pstrmemdup(cmd->pool, secret, len);
    *out_len = len;
    free(secret);
    return NULL;
}

static const char *set_secret_file(cmd_parms *cmd, void *dconf, const char *value)
{
    paywall_dir_conf *conf = dconf;

    return paywall_secret(cmd, value, PAYWALL_SECRET_MIN, (const char **) &conf->secret, &conf->secret_len);
}

static const char *set_stripe_key_file(cmd_parms *cmd, void *dconf, const char *value)
{
    paywall_dir_conf *conf = dconf;
    apr_size_t len;

    return paywall_secret(cmd, value, 8, &conf->stripe_key, &len);
}

static const char *set_webhook_secret_file(cmd_parms *cmd, void *dconf, const char *value)
{
    paywall_dir_conf *conf = dconf;

    return paywall_secret(cmd, value, 8, &conf->webhook_secret, &conf->webhook_secret_len);
}

static const char *set_stripe_api(cmd_parms *cmd, void *dconf, const char *value)
{
    apr_size_t len = strlen(value);

    if ((strncmp(value, "https://", 8) != 0 && strncmp(value, "http://", 7) != 0) || len > 512)
        return paywall_error(cmd, value, "must be an http(s) URL such as https://api.stripe.com");
    while (len > 0 && value[len - 1] == '/')
        len--;
    ((paywall_dir_conf *) dconf)->stripe_api = apr_pstrmemdup(cmd->pool, value, len);
    return NULL;
}

static const char *set_stripe_timeout(cmd_parms *cmd, void *dconf, const char *value)
{
    paywall_dir_conf *conf = dconf;
    const char *why = paywall_parse_duration(value, &conf->stripe_timeout);

    if (why || conf->stripe_timeout < 1 || conf->stripe_timeout > 60)
        return paywall_error(cmd, value, "must be a duration from 1s to 60s");
    conf->timeout_set = 1;
    return NULL;
}

static const char *set_plan(cmd_parms *cmd, void *dconf, const char *name, const char *price, const char *flag)
{
    paywall_dir_conf *conf = dconf;
    const char *why;

    if (conf->plans == NULL)
        conf->plans = apr_pcalloc(cmd->pool, sizeof(*conf->plans));
    if ((why = paywall_plans_add(conf->plans, name, price, flag)) != NULL)
        return paywall_error(cmd, name, why);
    return NULL;
}

static const char *set_return_url(cmd_parms *cmd, void *dconf, const char *value)
{
    paywall_deny check;

    /* The same rule as PaywallDeny redirect's URL. */
    if (paywall_parse_deny("redirect", value, &check) != NULL)
        return paywall_error(cmd, value, "must be a path or an http(s) URL");
    ((paywall_dir_conf *) dconf)->return_url = value;
    return NULL;
}

static const command_rec paywall_cmds[] = {
    AP_INIT_TAKE1("Paywall", set_enabled, NULL, RSRC_CONF | ACCESS_CONF,
                  "On to gate this location for subscribers; Observe to publish PAYWALL_* without gating"),
    AP_INIT_TAKE1("PaywallPostgres", set_postgres, NULL, RSRC_CONF | ACCESS_CONF,
                  "libpq connection string of the subscriptions database"),
    AP_INIT_TAKE1("PaywallMemcached", set_memcached, NULL, RSRC_CONF | ACCESS_CONF,
                  "memcached servers for entitlements and meters (\"host:port,host:port\")"),
    AP_INIT_TAKE1("PaywallCacheTTL", set_cache_ttl, NULL, RSRC_CONF | ACCESS_CONF,
                  "how long a server process reuses an entitlement (default 2s, at most 60s, 0 = never)"),
    AP_INIT_TAKE1("PaywallCacheMaxStale", set_max_stale, NULL, RSRC_CONF | ACCESS_CONF,
                  "how old a cached entitlement may be when no store answers (default 1h)"),
    AP_INIT_TAKE1("PaywallUser", set_user, NULL, RSRC_CONF | ACCESS_CONF,
                  "session:KEY, env:NAME or header:NAME: where the subscriber id comes from (default session:user_id)"),
    AP_INIT_TAKE1("PaywallEmail", set_email, NULL, RSRC_CONF | ACCESS_CONF,
                  "session:KEY, env:NAME or header:NAME: the e-mail address given to Stripe Checkout"),
    AP_INIT_ITERATE("PaywallRequire", set_require, NULL, RSRC_CONF | ACCESS_CONF,
                    "any, or the plans that open this location"),
    AP_INIT_TAKE2("PaywallMeter", set_meter, NULL, RSRC_CONF | ACCESS_CONF,
                  "free views per visitor and period, e.g. 3 30d"),
    AP_INIT_TAKE12("PaywallDeny", set_deny, NULL, RSRC_CONF | ACCESS_CONF,
                   "redirect URL, teaser, or status CODE (default status 403)"),
    AP_INIT_TAKE1("PaywallTeaserMarker", set_marker, NULL, RSRC_CONF | ACCESS_CONF,
                  "where the teaser ends in the HTML (default <!--paywall-->)"),
    AP_INIT_TAKE1("PaywallTeaserFile", set_teaser_file, NULL, RSRC_CONF | ACCESS_CONF,
                  "HTML fragment shown after the teaser"),
    AP_INIT_TAKE1("PaywallCrawlerRanges", set_crawler_ranges, NULL, RSRC_CONF | ACCESS_CONF,
                  "crawler IP ranges in Google's JSON format, which see the whole content"),
    AP_INIT_TAKE1("PaywallStructuredData", set_structured_data, NULL, RSRC_CONF | ACCESS_CONF,
                  "CSS selector of the paywalled part, for schema.org's isAccessibleForFree markup"),
    AP_INIT_TAKE1("PaywallGrace", set_grace, NULL, RSRC_CONF | ACCESS_CONF,
                  "how long a past_due subscription still opens (default 7d)"),
    AP_INIT_TAKE1("PaywallFailMode", set_fail_mode, NULL, RSRC_CONF | ACCESS_CONF,
                  "open or closed, when no store can tell (default closed)"),
    AP_INIT_TAKE1("PaywallSecretFile", set_secret_file, NULL, RSRC_CONF | ACCESS_CONF,
                  "file holding the key that signs meter cookies and CSRF tokens (the same on every server)"),
    AP_INIT_TAKE1("PaywallStripeKeyFile", set_stripe_key_file, NULL, RSRC_CONF | ACCESS_CONF,
                  "file holding the Stripe secret key (sk_...)"),
    AP_INIT_TAKE1("PaywallStripeWebhookSecretFile", set_webhook_secret_file, NULL, RSRC_CONF | ACCESS_CONF,
                  "file holding the webhook endpoint's signing secret (whsec_...)"),
    AP_INIT_TAKE1("PaywallStripeAPI", set_stripe_api, NULL, RSRC_CONF | ACCESS_CONF,
                  "Stripe API base URL (default https://api.stripe.com)"),
    AP_INIT_TAKE1("PaywallStripeTimeout", set_stripe_timeout, NULL, RSRC_CONF | ACCESS_CONF,
                  "how long a call to Stripe may take (default 8s)"),
    AP_INIT_TAKE23("PaywallPlan", set_plan, NULL, RSRC_CONF | ACCESS_CONF,
                   "NAME PRICE_ID [print]: a plan and its Stripe price"),
    AP_INIT_TAKE1("PaywallReturnURL", set_return_url, NULL, RSRC_CONF | ACCESS_CONF,
                  "where Stripe sends the subscriber back (default /)"),
    {NULL}
};

/* ------------------------------------------------------------------------------------------ request values */

static void paywall_log_note(request_rec *r, const char *note, int is_error)
{
    if (note[0] == '\0')
        return;
    ap_log_rerror(APLOG_MARK, is_error ? APLOG_ERR : APLOG_NOTICE, 0, r, "%s", note);
}

/* A value from session:KEY (mod_session_shared's SESSION_<KEY>), env:NAME or header:NAME. */
static const char *paywall_source_value(request_rec *r, const paywall_user_source *source)
{
    char *name;
    apr_size_t i;

    switch (source->kind) {
    case PAYWALL_USER_SESSION:
        name = apr_pstrcat(r->pool, "SESSION_", source->name, NULL);
        for (i = 0; name[i]; i++)
            name[i] = apr_isalnum(name[i]) ? apr_toupper(name[i]) : '_';
        return apr_table_get(r->subprocess_env, name);
    case PAYWALL_USER_ENV:
        if (strcmp(source->name, "REMOTE_USER") == 0 && r->user)
            return r->user;
        return apr_table_get(r->subprocess_env, source->name);
    case PAYWALL_USER_HEADER:
        return apr_table_get(r->headers_in, source->name);
    }
    return NULL;
}

static const char *paywall_user(request_rec *r, const paywall_dir_conf *conf)
{
    const char *user = paywall_source_value(r, &conf->user);

    return user && *user ? user : NULL;
}

static request_rec *paywall_first_request(request_rec *r)
{
    while (r->prev)
        r = r->prev;
    return r;
}

static void paywall_publish(request_rec *r, const paywall_request *state)
{
    const paywall_result *result = &state->result;

    apr_table_setn(r->subprocess_env, "PAYWALL_ACCESS", paywall_access_name(result->access));
    apr_table_setn(r->subprocess_env, "PAYWALL_PLAN", apr_pstrdup(r->pool, result->plan));
    if (result->meter_remaining >= 0)
        apr_table_setn(r->subprocess_env, "PAYWALL_METER_REMAINING",
                       apr_psprintf(r->pool, "%ld", result->meter_remaining));
}

/* The form token for the checkout and portal handlers, for any page of a logged-in visitor (the subscribe button
 * is usually on a page nobody gates). */
static void paywall_publish_csrf(request_rec *r, const paywall_dir_conf *conf, const char *user)
{
    char token[96];

    if (conf->secret == NULL || user == NULL)
        return;
    if (paywall_csrf_token(conf->secret, conf->secret_len, user, strlen(user), apr_time_sec(r->request_time), token,
                           sizeof(token)))
        apr_table_setn(r->subprocess_env, "PAYWALL_CSRF_TOKEN", apr_pstrdup(r->pool, token));
}

static int paywall_deny_response(request_rec *r, const paywall_dir_conf *conf)
{
    const char *uri;
    char *target;

    switch (conf->deny.kind) {
    case PAYWALL_DENY_REDIRECT:
        uri = paywall_first_request(r)->unparsed_uri;
        if (uri == NULL)
            uri = "/";
        target = paywall_deny_location(conf->deny.url, uri, strlen(uri));
        if (target == NULL)
            return HTTP_INTERNAL_SERVER_ERROR;
        apr_table_setn(r->headers_out, "Location", apr_pstrdup(r->pool, target));
        free(target);
        apr_table_setn(r->err_headers_out, "Cache-Control", "no-store");
        return HTTP_MOVED_TEMPORARILY;
    case PAYWALL_DENY_STATUS:
        return conf->deny.status;
    case PAYWALL_DENY_TEASER:
        break;
    }
    return OK;
}

static int paywall_fixups(request_rec *r)
{
    paywall_dir_conf *dconf = ap_get_module_config(r->per_dir_config, &paywall_module);
    request_rec *first = paywall_first_request(r);
    paywall_dir_conf conf;
    paywall_request *state;
    paywall_store *store;
    paywall_rules rules;
    paywall_visit visit;
    const char *user, *cookie_header, *cookie = NULL;
    apr_size_t cookie_len = 0;
    char err[512];

    if (r->main)
        return DECLINED;
    conf = paywall_effective(dconf);
    /* The handlers (checkout, webhook...) are not content to gate. */
    if (r->handler && strncmp(r->handler, "paywall-", 8) == 0)
        return DECLINED;
    user = paywall_user(r, &conf);
    paywall_publish_csrf(r, &conf, user);
    if (conf.enabled != 1 && conf.enabled != PAYWALL_OBSERVE)
        return DECLINED;

    state = ap_get_module_config(first->request_config, &paywall_module);
    /* Observed first, then redirected into a gated location: decide again, with this location's rules. */
    if (state && state->observed && conf.enabled == 1)
        state = NULL;
    if (state == NULL) {
        state = apr_pcalloc(first->pool, sizeof(*state));
        memset(&rules, 0, sizeof(rules));
        rules.require = conf.require;
        /* An observed page is no view: it must not use up the meter. */
        rules.meter = conf.meter_set && conf.enabled != PAYWALL_OBSERVE ? &conf.meter : NULL;
        rules.grace = conf.grace;
        rules.fail_mode = conf.fail_mode;
        rules.crawlers = conf.crawlers;
        rules.secret = conf.secret;
        rules.secret_len = conf.secret_len;
        memset(&visit, 0, sizeof(visit));
        visit.user_id = user;
        visit.user_id_len = user ? strlen(user) : 0;
        visit.client_addr = r->useragent_ip;
        visit.now = apr_time_sec(r->request_time);
        cookie_header = apr_table_get(r->headers_in, "Cookie");
        if (cookie_header && cookie_find(cookie_header, strlen(cookie_header), PAYWALL_METER_COOKIE_NAME,
                                         sizeof(PAYWALL_METER_COOKIE_NAME) - 1, &cookie, &cookie_len) &&
            cookie_len <= PAYWALL_METER_COOKIE_MAX) {
            visit.meter_cookie = cookie;
            visit.meter_cookie_len = cookie_len;
        }
        store = paywall_store_get(&conf.store, err, sizeof(err));
        if (store == NULL) {
            ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "cannot open the paywall's stores: %s", err);
            if (!paywall_decide_cached(NULL, &rules, &visit, &state->result))
                state->result.access = conf.fail_mode == PAYWALL_FAIL_OPEN ? PAYWALL_ACCESS_GRANTED
                                                                           : PAYWALL_ACCESS_DENIED;
        } else if (!paywall_decide_cached(store, &rules, &visit, &state->result)) {
            paywall_decide(store, &rules, &visit, &state->result);
        }
        paywall_log_note(r, state->result.note, state->result.note_is_error);
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, "paywall: %s (%s)", paywall_access_name(state->result.access),
                      state->result.reason ? state->result.reason : "");
        if (user && !paywall_user_id_valid(user, strlen(user)))
            ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, "paywall: user id from %s refused: not 1 to %d of "
                          "[A-Za-z0-9._@:+-]", conf.user.name, PAYWALL_USER_ID_MAX);
        if (state->result.meter_cookie[0])
            apr_table_addn(r->err_headers_out, "Set-Cookie",
                           apr_psprintf(r->pool, "%s=%s; Path=/; Max-Age=%ld; HttpOnly; SameSite=Lax%s",
                                        PAYWALL_METER_COOKIE_NAME, state->result.meter_cookie,
                                        state->result.meter_cookie_max_age,
                                        ap_http_scheme(r)[4] == 's' ? "; Secure" : ""));
        state->observed = conf.enabled == PAYWALL_OBSERVE;
        state->teaser = !state->observed && state->result.access == PAYWALL_ACCESS_DENIED &&
                        conf.deny.kind == PAYWALL_DENY_TEASER;
        ap_set_module_config(first->request_config, &paywall_module, state);
    }
    paywall_publish(r, state);
    if (state->observed || conf.enabled == PAYWALL_OBSERVE)
        return DECLINED;
    /* What one visitor may read is not what the next one may: no shared cache keeps a gated answer. */
    apr_table_mergen(r->err_headers_out, "Cache-Control", "private");
    if (state->teaser) {
        /* The teaser is cut from the whole, uncompressed document, never answered by a 304 or a slice. */
        apr_table_unset(r->headers_in, "Range");
        apr_table_unset(r->headers_in, "If-Range");
        apr_table_unset(r->headers_in, "Accept-Encoding");
        apr_table_unset(r->headers_in, "If-None-Match");
        apr_table_unset(r->headers_in, "If-Modified-Since");
    }
    if (state->teaser || conf.structured_data)
        ap_add_output_filter(FILTER_NAME, NULL, r, r->connection);
    if (state->result.access == PAYWALL_ACCESS_DENIED)
        return paywall_deny_response(r, &conf);
    return DECLINED;
}

/* ------------------------------------------------------------------------------------------- output filter */

typedef struct {
    paywall_filter filter;
    apr_bucket_brigade *out;
    int active;   /* rewriting this response */
    int replaced; /* a non-HTML response for a denied visitor: only the call to action goes out */
    int finished;
} paywall_filter_ctx;

static int paywall_filter_emit(void *data, const char *bytes, size_t len)
{
    paywall_filter_ctx *ctx = data;

    /* Copied: a piece may point into the filter's hold buffer or into the bucket being read. */
    return apr_brigade_write(ctx->out, NULL, NULL, bytes, len) == APR_SUCCESS ? 0 : -1;
}

static int paywall_is_html(request_rec *r)
{
    return r->content_type && strncasecmp(r->content_type, "text/html", 9) == 0;
}

static apr_status_t paywall_output_filter(ap_filter_t *f, apr_bucket_brigade *bb)
{
    request_rec *r = f->r;
    paywall_filter_ctx *ctx = f->ctx;
    paywall_dir_conf conf;
    paywall_request *state;
    paywall_filter_config fc;
    apr_bucket *b;
    char err[256];

    if (ctx == NULL) {
        conf = paywall_effective(ap_get_module_config(r->per_dir_config, &paywall_module));
        state = ap_get_module_config(paywall_first_request(r)->request_config, &paywall_module);
        ctx = f->ctx = apr_pcalloc(r->pool, sizeof(*ctx));
        if (state == NULL || r->status != HTTP_OK || r->header_only) {
            ap_remove_output_filter(f);
            return ap_pass_brigade(f->next, bb);
        }
        if (state->teaser && (!paywall_is_html(r) || apr_table_get(r->headers_out, "Content-Encoding"))) {
            /* A PDF, a video or a compressed page cannot be cut: the denied visitor gets the call to action. */
            r->status = HTTP_FORBIDDEN;
            ap_set_content_type(r, "text/html; charset=utf-8");
            apr_table_unset(r->headers_out, "Content-Encoding");
            /* the fragment must not be saved as "issue.pdf" */
            apr_table_unset(r->headers_out, "Content-Disposition");
            ctx->replaced = 1;
        } else if (!paywall_is_html(r) || apr_table_get(r->headers_out, "Content-Encoding") ||
                   (!state->teaser && conf.structured_data == NULL)) {
            ap_remove_output_filter(f);
            return ap_pass_brigade(f->next, bb);
        }
        memset(&fc, 0, sizeof(fc));
        if (!ctx->replaced) {
            fc.head_insert = conf.structured_data;
            fc.head_insert_len = conf.structured_data ? strlen(conf.structured_data) : 0;
        }
        if (state->teaser) {
            /* Replaced responses feed nothing: at the end the filter gives the call to action alone. */
            fc.marker = conf.marker;
            fc.marker_len = strlen(fc.marker);
            fc.cta = conf.teaser;
            fc.cta_len = conf.teaser_len;
            fc.hold = apr_palloc(r->pool, PAYWALL_FILTER_HOLD_DEFAULT);
            fc.hold_size = PAYWALL_FILTER_HOLD_DEFAULT;
        }
        if (paywall_filter_init(&ctx->filter, &fc, err, sizeof(err)) != 0) {
            ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "paywall filter: %s", err);
            return HTTP_INTERNAL_SERVER_ERROR;
        }
        ctx->out = apr_brigade_create(r->pool, f->c->bucket_alloc);
        ctx->active = 1;
        apr_table_unset(r->headers_out, "Content-Length");
        apr_table_unset(r->headers_out, "ETag");
        apr_table_unset(r->headers_out, "Accept-Ranges");
    }
    if (ctx->finished) {
        apr_brigade_cleanup(bb);
        return APR_SUCCESS;
    }
    for (b = APR_BRIGADE_FIRST(bb); b != APR_BRIGADE_SENTINEL(bb); b = APR_BUCKET_NEXT(b)) {
        const char *data;
        apr_size_t len;

        if (APR_BUCKET_IS_EOS(b)) {
            if (paywall_filter_finish(&ctx->filter, paywall_filter_emit, ctx) != 0)
                return APR_EGENERAL;
            state = ap_get_module_config(paywall_first_request(r)->request_config, &paywall_module);
            if (state && state->teaser && !ctx->replaced &&
                paywall_filter_get_status(&ctx->filter) != PAYWALL_FILTER_CUT)
                ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                              "paywall teaser: %s: the whole page was withheld (put the marker in the first %d KB)",
                              paywall_filter_status_name(paywall_filter_get_status(&ctx->filter)),
                              PAYWALL_FILTER_HOLD_DEFAULT / 1024);
            ctx->finished = 1;
            APR_BRIGADE_INSERT_TAIL(ctx->out, apr_bucket_eos_create(f->c->bucket_alloc));
            apr_brigade_cleanup(bb);
            return ap_pass_brigade(f->next, ctx->out);
        }
        if (APR_BUCKET_IS_FLUSH(b)) {
            APR_BRIGADE_INSERT_TAIL(ctx->out, apr_bucket_flush_create(f->c->bucket_alloc));
            continue;
        }
        if (APR_BUCKET_IS_METADATA(b) || ctx->replaced || paywall_filter_done(&ctx->filter))
            continue;
        if (apr_bucket_read(b, &data, &len, APR_BLOCK_READ) != APR_SUCCESS)
            return APR_EGENERAL;
        if (len && paywall_filter_feed(&ctx->filter, data, len, paywall_filter_emit, ctx) != 0)
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

static int paywall_page(request_rec *r, int status, const char *message)
{
    r->status = status;
    ap_set_content_type(r, "text/html; charset=utf-8");
    apr_table_setn(r->err_headers_out, "Cache-Control", "no-store");
    if (!r->header_only)
        ap_rprintf(r, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Subscription</title></head>"
                      "<body><p>%s</p></body></html>\n", ap_escape_html(r->pool, message));
    return OK;
}

static int paywall_text(request_rec *r, int status, const char *message)
{
    r->status = status;
    ap_set_content_type(r, "text/plain; charset=utf-8");
    if (!r->header_only)
        ap_rprintf(r, "%s\n", message);
    return OK;
}

/* The request body, refused past max bytes: 0, or an HTTP status. */
static int paywall_read_body(request_rec *r, apr_size_t max, char **out, apr_size_t *out_len)
{
    char *buf;
    apr_size_t len = 0;
    long n;
    int rv;

    if ((rv = ap_setup_client_block(r, REQUEST_CHUNKED_DECHUNK)) != OK)
        return rv;
    if (r->remaining > (apr_off_t) max)
        return HTTP_REQUEST_ENTITY_TOO_LARGE;
    buf = apr_palloc(r->pool, max + 1);
    if (ap_should_client_block(r)) {
        while ((n = ap_get_client_block(r, buf + len, max + 1 - len)) > 0) {
            len += (apr_size_t) n;
            if (len > max)
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

/* One field of an application/x-www-form-urlencoded body or query string, decoded; NULL when absent. */
static const char *paywall_form_get(apr_pool_t *p, const char *form, const char *name)
{
    apr_size_t name_len = strlen(name);
    const char *pos = form, *end;
    char *value;

    while (pos && *pos) {
        end = strchr(pos, '&');
        if (strncmp(pos, name, name_len) == 0 && pos[name_len] == '=') {
            value = apr_pstrndup(p, pos + name_len + 1, end ? (apr_size_t) (end - pos - name_len - 1)
                                                           : strlen(pos + name_len + 1));
            for (char *c = value; *c; c++)
                if (*c == '+')
                    *c = ' ';
            if (ap_unescape_url(value) != OK)
                return NULL;
            return value;
        }
        pos = end ? end + 1 : NULL;
    }
    return NULL;
}

static const char *paywall_absolute(request_rec *r, const char *url)
{
    return url[0] == '/' ? ap_construct_url(r->pool, url, r) : url;
}

static const char *paywall_with_query(request_rec *r, const char *url, const char *query)
{
    return apr_pstrcat(r->pool, url, strchr(url, '?') ? "&" : "?", query, NULL);
}

/* Checkout and portal forms: POST, a logged-in visitor, a valid CSRF token. 0 to go on, 1 when the request has been
 * answered. */
static int paywall_form_request(request_rec *r, const paywall_dir_conf *conf, const char **user, const char **form)
{
    char *body;
    apr_size_t len;
    const char *token;
    int rv;

    if (r->method_number != M_POST) {
        apr_table_setn(r->headers_out, "Allow", "POST");
        return paywall_text(r, HTTP_METHOD_NOT_ALLOWED, "POST the form"), 1;
    }
    if ((rv = paywall_read_body(r, FORM_MAX, &body, &len)) != 0) {
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, "paywall form: body refused (HTTP %d)", rv);
        return paywall_page(r, rv, "The form could not be read."), 1;
    }
    *form = body;
    *user = paywall_user(r, conf);
    if (*user == NULL || !paywall_user_id_valid(*user, strlen(*user)))
        return paywall_page(r, HTTP_FORBIDDEN, "Please log in first."), 1;
    if (conf->secret == NULL) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "paywall form: PaywallSecretFile is not set: no CSRF token");
        return paywall_page(r, HTTP_INTERNAL_SERVER_ERROR, "Subscriptions are not available right now."), 1;
    }
    token = paywall_form_get(r->pool, body, "csrf");
    if (!paywall_csrf_check(conf->secret, conf->secret_len, *user, strlen(*user), token, token ? strlen(token) : 0,
                            apr_time_sec(r->request_time))) {
        ap_log_rerror(APLOG_MARK, APLOG_NOTICE, 0, r, "paywall form: missing or invalid CSRF token for user %s", *user);
        return paywall_page(r, HTTP_FORBIDDEN, "This form has expired: please reload the page and try again."), 1;
    }
    return 0;
}

static paywall_stripe_api paywall_api(const paywall_dir_conf *conf)
{
    paywall_stripe_api api;

    api.api_base = conf->stripe_api;
    api.secret_key = conf->stripe_key;
    api.timeout_ms = (unsigned) conf->stripe_timeout * 1000;
    return api;
}

static int paywall_stripe_answer(request_rec *r, const paywall_stripe_result *result)
{
    if (result->status == HTTP_SEE_OTHER) {
        apr_table_setn(r->headers_out, "Location", apr_pstrdup(r->pool, result->url));
        apr_table_setn(r->err_headers_out, "Cache-Control", "no-store");
        return HTTP_SEE_OTHER;
    }
    ap_log_rerror(APLOG_MARK, result->status >= 500 ? APLOG_ERR : APLOG_NOTICE, 0, r, "paywall: %s", result->message);
    if (result->status == HTTP_NOT_FOUND)
        return paywall_page(r, HTTP_NOT_FOUND, "There is no subscription to manage for this account.");
    return paywall_page(r, result->status,
                        result->status == HTTP_GATEWAY_TIME_OUT
                            ? "The payment service is not answering. Nothing was charged: please try again in a moment."
                            : "The payment service could not start. Nothing was charged: please try again later.");
}

static int paywall_checkout_handler(request_rec *r, paywall_dir_conf *conf)
{
    paywall_checkout_request request;
    paywall_stripe_result result;
    paywall_stripe_api api = paywall_api(conf);
    const char *user, *form, *plan_name, *return_url;
    const paywall_plan *plan;
    if (paywall_form_request(r, conf, &user, &form))
        return OK;
    plan_name = paywall_form_get(r->pool, form, "plan");
    plan = plan_name && conf->plans ? paywall_plans_find_name(conf->plans, plan_name) : NULL;
    if (plan == NULL) {
        ap_log_rerror(APLOG_MARK, APLOG_NOTICE, 0, r, "paywall checkout: unknown plan \"%s\"",
                      plan_name ? plan_name : "");
        return paywall_page(r, HTTP_BAD_REQUEST, "Unknown subscription plan.");
    }
    memset(&request, 0, sizeof(request));
    request.plan = plan;
    request.user_id = user;
    request.email = conf->email_set ? paywall_source_value(r, &conf->email) : NULL;
    request.coupon = apr_table_get(r->subprocess_env, "PROMO_STRIPE_COUPON");
    request.promotion_code = paywall_form_get(r->pool, form, "promotion_code");
    if (request.promotion_code && strncmp(request.promotion_code, "promo_", 6) != 0)
        request.promotion_code = NULL;
    request.promo_code = apr_table_get(r->subprocess_env, "PROMO_CODE");
    if (request.promo_code == NULL)
        request.promo_code = paywall_form_get(r->pool, form, "promo");
    return_url = paywall_absolute(r, conf->return_url);
    request.success_url = paywall_with_query(r, return_url, "paywall=success&session_id={CHECKOUT_SESSION_ID}");
    request.cancel_url = paywall_with_query(r, return_url, "paywall=cancel");
    paywall_checkout_create(&api, &request, &result);
    return paywall_stripe_answer(r, &result);
}

static int paywall_portal_handler(request_rec *r, paywall_dir_conf *conf)
{
    paywall_stripe_result result;
    paywall_stripe_api api = paywall_api(conf);
    paywall_store *store;
    const char *user, *form;
    char err[512];

    if (paywall_form_request(r, conf, &user, &form))
        return OK;
    store = paywall_store_get(&conf->store, err, sizeof(err));
    if (store == NULL) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "cannot open the paywall's stores: %s", err);
        return paywall_page(r, HTTP_SERVICE_UNAVAILABLE, "Subscriptions are not available right now.");
    }
    paywall_portal_create(store, &api, user, paywall_absolute(r, conf->return_url), &result);
    return paywall_stripe_answer(r, &result);
}

static int paywall_webhook_handler(request_rec *r, paywall_dir_conf *conf)
{
    paywall_webhook_result result;
    paywall_store *store;
    const char *signature;
    char *body, err[512];
    apr_size_t len;
    int rv;

    if (r->method_number != M_POST) {
        apr_table_setn(r->headers_out, "Allow", "POST");
        return paywall_text(r, HTTP_METHOD_NOT_ALLOWED, "Stripe webhooks are POSTed");
    }
    if ((rv = paywall_read_body(r, PAYWALL_EVENT_BYTES_MAX, &body, &len)) != 0) {
        ap_log_rerror(APLOG_MARK, APLOG_NOTICE, 0, r, "paywall webhook: body refused (HTTP %d)", rv);
        return paywall_text(r, rv, "body refused");
    }
    store = paywall_store_get(&conf->store, err, sizeof(err));
    if (store == NULL) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "cannot open the paywall's stores: %s", err);
        return paywall_text(r, HTTP_SERVICE_UNAVAILABLE, "stores unavailable");
    }
    signature = apr_table_get(r->headers_in, "Stripe-Signature");
    paywall_webhook_handle(store, conf->plans ? conf->plans : &(paywall_plans){.nplans = 0}, conf->webhook_secret,
                           conf->webhook_secret_len, signature, signature ? strlen(signature) : 0, body, len,
                           apr_time_sec(apr_time_now()), &result);
    paywall_log_note(r, result.note, result.note_is_error);
    ap_log_rerror(APLOG_MARK, result.status >= 500 ? APLOG_ERR : result.status >= 400 ? APLOG_NOTICE : APLOG_INFO, 0,
                  r, "paywall webhook: %s", result.message);
    return paywall_text(r, result.status, result.message);
}

static int paywall_export_handler(request_rec *r, paywall_dir_conf *conf)
{
    paywall_export *export;
    paywall_store *store;
    const char *date = NULL, *data;
    apr_size_t len;
    char err[512];
    int bad_request = 0, rc;
    apr_time_exp_t now;

    if (r->method_number != M_GET) {
        apr_table_setn(r->headers_out, "Allow", "GET, HEAD");
        return paywall_text(r, HTTP_METHOD_NOT_ALLOWED, "GET the export");
    }
    if (r->args)
        date = paywall_form_get(r->pool, r->args, "date");
    store = paywall_store_get(&conf->store, err, sizeof(err));
    if (store == NULL) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "cannot open the paywall's stores: %s", err);
        return paywall_text(r, HTTP_SERVICE_UNAVAILABLE, "subscriptions unavailable");
    }
    export = paywall_export_open(store, conf->plans ? conf->plans : &(paywall_plans){.nplans = 0}, conf->grace, date,
                                 &bad_request, err, sizeof(err));
    if (export == NULL) {
        ap_log_rerror(APLOG_MARK, bad_request ? APLOG_NOTICE : APLOG_ERR, 0, r, "paywall export: %s", err);
        return paywall_text(r, bad_request ? HTTP_BAD_REQUEST : HTTP_SERVICE_UNAVAILABLE,
                            bad_request ? err : "subscriptions unavailable");
    }
    if (date == NULL) {
        apr_time_exp_gmt(&now, r->request_time);
        date = apr_psprintf(r->pool, "%04d-%02d-%02d", now.tm_year + 1900, now.tm_mon + 1, now.tm_mday);
    }
    ap_set_content_type(r, "text/csv; charset=utf-8");
    apr_table_setn(r->headers_out, "Content-Disposition",
                   apr_psprintf(r->pool, "attachment; filename=\"routing-%s.csv\"", date));
    apr_table_setn(r->err_headers_out, "Cache-Control", "no-store");
    if (r->header_only) {
        paywall_export_close(export);
        return OK;
    }
    /* One chunk at a time, flushed before the next is read: memory stays flat whatever the number of rows. */
    while ((rc = paywall_export_next(export, &data, &len, err, sizeof(err))) == 1) {
        if (ap_rwrite(data, (int) len, r) < 0 || ap_rflush(r) < 0 || r->connection->aborted)
            break;
    }
    if (rc < 0)
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "paywall export cut short: %s", err);
    paywall_export_close(export);
    return OK;
}

static int paywall_handler(request_rec *r)
{
    paywall_dir_conf conf;

    if (r->handler == NULL || strncmp(r->handler, "paywall-", 8) != 0)
        return DECLINED;
    conf = paywall_effective(ap_get_module_config(r->per_dir_config, &paywall_module));
    if (strcmp(r->handler, "paywall-checkout") == 0)
        return paywall_checkout_handler(r, &conf);
    if (strcmp(r->handler, "paywall-portal") == 0)
        return paywall_portal_handler(r, &conf);
    if (strcmp(r->handler, "paywall-stripe-webhook") == 0)
        return paywall_webhook_handler(r, &conf);
    if (strcmp(r->handler, "paywall-export") == 0)
        return paywall_export_handler(r, &conf);
    return DECLINED;
}

/* ---------------------------------------------------------------------------------------------- process */

static apr_status_t paywall_child_exit(void *data)
{
    (void) data;
    paywall_stores_close_all();
    return APR_SUCCESS;
}

static void paywall_child_init(apr_pool_t *p, server_rec *s)
{
    (void) s;
    /* Stores open on first use in each child, never before the fork. */
    apr_pool_cleanup_register(p, NULL, paywall_child_exit, apr_pool_cleanup_null);
}

static int paywall_post_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp, server_rec *s)
{
    int rv;

    (void) plog;
    (void) ptemp;
    if ((rv = webmodules_metrics_create(pconf, s, "paywall", paywall_metric_defs, paywall_metric_count,
                                        &paywall_metrics)) != OK)
        return rv;
    if (http_global_init() != 0) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s, "paywall: libcurl cannot start");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    return OK;
}

static void paywall_register_hooks(apr_pool_t *p)
{
    (void) p;
    ap_hook_post_config(paywall_post_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_child_init(paywall_child_init, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_fixups(paywall_fixups, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_handler(paywall_handler, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_handler(webmodules_metrics_handler, NULL, NULL, APR_HOOK_MIDDLE);
    APR_REGISTER_OPTIONAL_FN(webmodules_metrics_paywall);
    ap_register_output_filter(FILTER_NAME, paywall_output_filter, NULL, AP_FTYPE_RESOURCE);
}

module AP_MODULE_DECLARE_DATA paywall_module = {
    STANDARD20_MODULE_STUFF,
    paywall_create_dir_conf,
    paywall_merge_dir_conf,
    NULL,
    NULL,
    paywall_cmds,
    paywall_register_hooks,
    AP_MODULE_FLAG_NONE
};
