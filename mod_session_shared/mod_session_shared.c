/*
 * mod_session_shared: Apache adapter. Shares the PHP app's sessions (php-memcached format and key placement)
 * across every web server, exports chosen session values to the backend, and is a storage provider for
 * mod_session when that module is loaded first.
 */

#include <dlfcn.h>
#include <stdlib.h>

#include "httpd.h"
#include "http_config.h"
#include "http_core.h"
#include "http_log.h"
#include "http_protocol.h"
#include "http_request.h"
#include "apr_strings.h"
#include "mod_session.h"

#include "cookie.h"
#include "crypto.h"
#include "session_shared.h"

#define UNSET -1

module AP_MODULE_DECLARE_DATA session_shared_module;

APLOG_USE_MODULE(session_shared);

/* After APLOG_USE_MODULE: its log lines then name this module. */
#include "webmodules_metrics.h"

/* The block the other modules' metrics handlers render (webmodules_metrics.h). */
static metrics_block *webmodules_metrics_session_shared(void)
{
    return session_shared_metrics;
}

typedef struct {
    int enabled;
    session_shared_store_config store;
    int replicas_set;
    int format_set;
    int idle_set;
    int absolute_set;
    int cache_set;
    session_shared_cookie cookie;
    int cookie_secure_set;
    int cookie_httponly_set;
    apr_array_header_t *exports;
} session_shared_dir_conf;

/* What this request learned, kept for mod_session and for the log phase. */
typedef struct {
    session_shared_store *store;
    const session_shared_dir_conf *conf;
    const char *id;
    session_shared_record record;
    int loaded;
    session_rec *z; /* what mod_session got from us: it must get the same one on every load of the request */
} session_shared_request;

static void *session_shared_create_dir_conf(apr_pool_t *p, char *dir)
{
    session_shared_dir_conf *conf = apr_pcalloc(p, sizeof(*conf));

    (void) dir;
    conf->enabled = UNSET;
    conf->exports = NULL;
    return conf;
}

#define MERGE_PTR(field) conf->field = add->field ? add->field : base->field
#define MERGE_SET(field, flag) \
    do { \
        conf->flag = add->flag || base->flag; \
        conf->field = add->flag ? add->field : base->field; \
    } while (0)

static void *session_shared_merge_dir_conf(apr_pool_t *p, void *basev, void *addv)
{
    session_shared_dir_conf *base = basev, *add = addv;
    session_shared_dir_conf *conf = apr_pcalloc(p, sizeof(*conf));

    conf->enabled = add->enabled != UNSET ? add->enabled : base->enabled;
    MERGE_PTR(store.memcached);
    MERGE_PTR(store.postgres);
    MERGE_PTR(store.prefix);
    MERGE_SET(store.replicas, replicas_set);
    MERGE_SET(store.format, format_set);
    MERGE_SET(store.idle_timeout, idle_set);
    MERGE_SET(store.absolute_timeout, absolute_set);
    MERGE_SET(store.cache_ttl_ms, cache_set);
    MERGE_PTR(cookie.name);
    MERGE_PTR(cookie.path);
    MERGE_PTR(cookie.domain);
    MERGE_PTR(cookie.samesite);
    MERGE_SET(cookie.secure, cookie_secure_set);
    MERGE_SET(cookie.httponly, cookie_httponly_set);
    MERGE_PTR(exports);
    return conf;
}

/* The effective settings: defaults for whatever no scope set. */
static session_shared_dir_conf session_shared_effective(const session_shared_dir_conf *conf)
{
    session_shared_dir_conf eff = *conf;

    if (eff.store.prefix == NULL)
        eff.store.prefix = SESSION_SHARED_DEFAULT_PREFIX;
    if (!eff.format_set)
        eff.store.format = PHPSER_FORMAT_PHP;
    if (!eff.idle_set)
        eff.store.idle_timeout = SESSION_SHARED_DEFAULT_IDLE;
    if (eff.cookie.name == NULL)
        eff.cookie.name = SESSION_SHARED_DEFAULT_COOKIE;
    if (!eff.cookie_httponly_set)
        eff.cookie.httponly = 1;
    if (!eff.cookie_secure_set)
        eff.cookie.secure = SESSION_SHARED_SECURE_AUTO;
    return eff;
}

static const char *session_shared_error(cmd_parms *cmd, const char *value, const char *why)
{
    return apr_psprintf(cmd->pool, "%s: invalid value \"%s\": %s", cmd->cmd->name, value, why);
}

static const char *set_memcached(cmd_parms *cmd, void *dconf, const char *value)
{
    session_shared_dir_conf *conf = dconf;
    const char *why = session_shared_check_memcached(value);

    if (why)
        return session_shared_error(cmd, value, why);
    conf->store.memcached = value;
    return NULL;
}

static const char *set_postgres(cmd_parms *cmd, void *dconf, const char *value)
{
    session_shared_dir_conf *conf = dconf;

    (void) cmd;
    conf->store.postgres = value;
    return NULL;
}

static const char *set_prefix(cmd_parms *cmd, void *dconf, const char *value)
{
    session_shared_dir_conf *conf = dconf;

    if (*value == '\0' || strlen(value) > 64 || strpbrk(value, " \t\r\n"))
        return session_shared_error(cmd, value, "must be 1 to 64 characters without spaces");
    conf->store.prefix = value;
    return NULL;
}

static const char *set_replicas(cmd_parms *cmd, void *dconf, const char *value)
{
    session_shared_dir_conf *conf = dconf;
    const char *why = session_shared_parse_replicas(value, &conf->store.replicas);

    if (why)
        return session_shared_error(cmd, value, why);
    conf->replicas_set = 1;
    return NULL;
}

static const char *set_format(cmd_parms *cmd, void *dconf, const char *value)
{
    session_shared_dir_conf *conf = dconf;
    const char *why = session_shared_parse_format(value, &conf->store.format);

    if (why)
        return session_shared_error(cmd, value, why);
    conf->format_set = 1;
    return NULL;
}

static const char *set_idle(cmd_parms *cmd, void *dconf, const char *value)
{
    session_shared_dir_conf *conf = dconf;
    const char *why = session_shared_parse_seconds(value, &conf->store.idle_timeout);

    if (why)
        return session_shared_error(cmd, value, why);
    conf->idle_set = 1;
    return NULL;
}

static const char *set_absolute(cmd_parms *cmd, void *dconf, const char *value)
{
    session_shared_dir_conf *conf = dconf;
    const char *why = session_shared_parse_seconds(value, &conf->store.absolute_timeout);

    if (why)
        return session_shared_error(cmd, value, why);
    conf->absolute_set = 1;
    return NULL;
}

static const char *set_cache_ttl(cmd_parms *cmd, void *dconf, const char *value)
{
    session_shared_dir_conf *conf = dconf;
    const char *why = session_shared_parse_milliseconds(value, &conf->store.cache_ttl_ms);

    if (why)
        return session_shared_error(cmd, value, why);
    conf->cache_set = 1;
    return NULL;
}

static const char *set_cookie(cmd_parms *cmd, void *dconf, const char *arg)
{
    session_shared_dir_conf *conf = dconf;
    session_shared_cookie cookie = conf->cookie;
    const char *word, *why;

    if (cmd->info == NULL) {
        /* The cookie name: a token, as RFC 6265 requires. */
        if (*arg == '\0' || strpbrk(arg, " \t;,=\"\\()<>@:/[]?{}"))
            return session_shared_error(cmd, arg, "not a valid cookie name");
        conf->cookie.name = arg;
        cmd->info = (void *) 1;
        return NULL;
    }
    word = arg;
    why = session_shared_parse_cookie_attr(&cookie, word);
    if (why)
        return session_shared_error(cmd, word, why);
    if (strncasecmp(word, "secure=", 7) == 0)
        conf->cookie_secure_set = 1;
    if (strncasecmp(word, "httponly=", 9) == 0)
        conf->cookie_httponly_set = 1;
    conf->cookie = cookie;
    return NULL;
}

static const char *set_cookie_args(cmd_parms *cmd, void *dconf, int argc, char *const argv[])
{
    const char *err;
    int i;

    if (argc < 1)
        return apr_psprintf(cmd->pool, "%s takes a cookie name and optional attributes", cmd->cmd->name);
    cmd->info = NULL;
    for (i = 0; i < argc; i++) {
        err = set_cookie(cmd, dconf, argv[i]);
        if (err)
            return err;
    }
    return NULL;
}

static const char *set_export(cmd_parms *cmd, void *dconf, const char *key)
{
    session_shared_dir_conf *conf = dconf;

    if (*key == '\0' || strlen(key) > 100)
        return session_shared_error(cmd, key, "must be a session key of 1 to 100 characters");
    if (conf->exports == NULL)
        conf->exports = apr_array_make(cmd->pool, 4, sizeof(const char *));
    *(const char **) apr_array_push(conf->exports) = key;
    return NULL;
}

static const command_rec session_shared_cmds[] = {
    AP_INIT_FLAG("SessionShared", ap_set_flag_slot,
                 (void *) APR_OFFSETOF(session_shared_dir_conf, enabled), RSRC_CONF | ACCESS_CONF,
                 "On to share the PHP app's sessions through memcached"),
    AP_INIT_TAKE1("SessionSharedMemcached", set_memcached, NULL, RSRC_CONF | ACCESS_CONF,
                  "memcached servers, as in the app's session.save_path (\"host:port,host:port\")"),
    AP_INIT_TAKE1("SessionSharedPostgres", set_postgres, NULL, RSRC_CONF | ACCESS_CONF,
                  "libpq connection string of the durable copy"),
    AP_INIT_TAKE1("SessionSharedReplicas", set_replicas, NULL, RSRC_CONF | ACCESS_CONF,
                  "copies on further nodes, as memcached.sess_number_of_replicas"),
    AP_INIT_TAKE1("SessionSharedPrefix", set_prefix, NULL, RSRC_CONF | ACCESS_CONF,
                  "key prefix, as memcached.sess_prefix (default memc.sess.key.)"),
    AP_INIT_TAKE1("SessionSharedFormat", set_format, NULL, RSRC_CONF | ACCESS_CONF,
                  "php, php_binary or php_serialize, as session.serialize_handler"),
    AP_INIT_TAKE1("SessionSharedIdleTimeout", set_idle, NULL, RSRC_CONF | ACCESS_CONF,
                  "seconds without a request before a session ends (default 1440)"),
    AP_INIT_TAKE1("SessionSharedAbsoluteTimeout", set_absolute, NULL, RSRC_CONF | ACCESS_CONF,
                  "seconds after its creation when a session ends whatever its use (default 0: none)"),
    AP_INIT_TAKE1("SessionSharedCacheTTL", set_cache_ttl, NULL, RSRC_CONF | ACCESS_CONF,
                  "milliseconds a server process may reuse a session it read (default 0: ask memcached every time)"),
    AP_INIT_TAKE_ARGV("SessionSharedCookie", set_cookie_args, NULL, RSRC_CONF | ACCESS_CONF,
                      "cookie name, then path= domain= secure=on|off|auto httponly=on|off samesite=Strict|Lax|None"),
    AP_INIT_ITERATE("SessionSharedExport", set_export, NULL, RSRC_CONF | ACCESS_CONF,
                    "session keys published to the backend as SESSION_<KEY>"),
    {NULL}
};

static int session_shared_publish(req_view *req, const char *name, const char *value, size_t len)
{
    request_rec *r = req->server_ctx;

    apr_table_setn(r->subprocess_env, apr_pstrdup(r->pool, name), apr_pstrmemdup(r->pool, value, len));
    return 0;
}

static apr_status_t session_shared_request_cleanup(void *data)
{
    session_shared_request *state = data;

    session_shared_record_clear(&state->record);
    return APR_SUCCESS;
}

static void session_shared_log_note(request_rec *r, const session_shared_record *record)
{
    if (record->note[0] == '\0')
        return;
    if (record->note_is_error)
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "%s", record->note);
    else
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, "%s", record->note);
}

/* Loads the session once per request (subrequests and internal redirects reuse the first load). */
static session_shared_request *session_shared_load_request(request_rec *r)
{
    session_shared_dir_conf *dconf = ap_get_module_config(r->per_dir_config, &session_shared_module);
    request_rec *main_r = r;
    session_shared_request *state;
    session_shared_dir_conf *eff;
    const char *cookie, *id, *why = NULL;
    size_t id_len;
    char err[256];
    int found;

    while (main_r->main)
        main_r = main_r->main;
    while (main_r->prev)
        main_r = main_r->prev;
    state = ap_get_module_config(main_r->request_config, &session_shared_module);
    if (state)
        return state;
    if (dconf->enabled != 1)
        return NULL;

    state = apr_pcalloc(main_r->pool, sizeof(*state));
    eff = apr_palloc(main_r->pool, sizeof(*eff));
    *eff = session_shared_effective(dconf);
    state->conf = eff;
    ap_set_module_config(main_r->request_config, &session_shared_module, state);
    apr_pool_cleanup_register(main_r->pool, state, session_shared_request_cleanup, apr_pool_cleanup_null);

    if (eff->store.memcached == NULL) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "SessionShared is On but SessionSharedMemcached is not set");
        return state;
    }
    state->store = session_shared_store_get(&eff->store, err, sizeof(err));
    if (state->store == NULL) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "cannot open the session store: %s", err);
        return state;
    }

    cookie = apr_table_get(r->headers_in, "Cookie");
    found = session_shared_cookie_id(cookie, cookie ? strlen(cookie) : 0, eff->cookie.name, &id, &id_len, &why);
    if (found < 0) {
        /* Visitors can send anything: not worth more than a debug line, and never a store access. */
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, "session cookie %s refused: %s", eff->cookie.name, why);
        return state;
    }
    if (found == 0)
        return state;
    state->id = apr_pstrmemdup(main_r->pool, id, id_len);
    if (session_shared_cache_lookup(state->store, state->id, id_len, &state->record))
        return state;
    session_shared_load(state->store, state->id, id_len, apr_time_sec(r->request_time), &state->record);
    state->loaded = 1;
    session_shared_log_note(r, &state->record);
    if (state->record.state == SESSION_SHARED_EXPIRED)
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, "session %s expired", state->id);
    return state;
}

static int session_shared_header_parser(request_rec *r)
{
    session_shared_request *state = session_shared_load_request(r);
    req_view view;

    if (state == NULL || state->id == NULL || state->record.state != SESSION_SHARED_FOUND)
        return DECLINED;
    memset(&view, 0, sizeof(view));
    view.publish = session_shared_publish;
    view.server_ctx = r;
    if (session_shared_export(&view, state->id, strlen(state->id), &state->record,
                              state->conf->exports ? (const char *const *) state->conf->exports->elts : NULL,
                              state->conf->exports ? (size_t) state->conf->exports->nelts : 0) < 0)
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "cannot export session values: out of memory");
    return DECLINED;
}

/* The id the backend gave a session it created during this request, from its Set-Cookie. */
static const char *session_shared_response_id(request_rec *r, const char *name)
{
    const apr_array_header_t *headers[2] = {apr_table_elts(r->headers_out), apr_table_elts(r->err_headers_out)};
    const char *value;
    size_t len;
    int i, j;

    for (i = 0; i < 2; i++) {
        const apr_table_entry_t *e = (const apr_table_entry_t *) headers[i]->elts;
        for (j = 0; j < headers[i]->nelts; j++) {
            if (e[j].key == NULL || strcasecmp(e[j].key, "Set-Cookie") != 0 || e[j].val == NULL)
                continue;
            if (cookie_find_set_cookie(e[j].val, strlen(e[j].val), name, strlen(name), &value, &len) &&
                cookie_session_id_check(value, len) == COOKIE_ID_OK)
                return apr_pstrmemdup(r->pool, value, len);
        }
    }
    return NULL;
}

static int session_shared_log_transaction(request_rec *r)
{
    session_shared_request *state = ap_get_module_config(r->request_config, &session_shared_module);
    const char *id;
    char note[512];

    if (state == NULL || state->store == NULL)
        return DECLINED;
    /* Only a backend (PHP behind proxy_fcgi, a CGI...) can have written the session behind the module's back. */
    if (r->handler == NULL || strcmp(r->handler, "default-handler") == 0)
        return DECLINED;
    if (state->id)
        session_shared_cache_forget(state->store, state->id, strlen(state->id));
    id = session_shared_response_id(r, state->conf->cookie.name);
    if (id == NULL)
        id = state->id;
    if (id == NULL || state->conf->store.postgres == NULL)
        return DECLINED;
    session_shared_sync(state->store, id, strlen(id),
                        state->id && strcmp(id, state->id) == 0 && state->record.data != NULL,
                        apr_time_sec(apr_time_now()), note, sizeof(note));
    if (note[0])
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, "%s", note);
    return DECLINED;
}

/* ---------------------------------------------------------------------------------------- mod_session */

static apr_status_t session_shared_session_load(request_rec *r, session_rec **z)
{
    session_shared_request *state = session_shared_load_request(r);
    session_rec *zz;
    char *encoded;

    if (state == NULL)
        return DECLINED;
    /* mod_session loads again in its output filter and keeps no copy itself: a module that changed the session
     * (mod_auth_form's login) must find its change there, so the request keeps one session_rec. */
    if (state->z) {
        /* already decoded into its entries: decoding the stored text again would undo the changes */
        state->z->encoded = NULL;
        *z = state->z;
        return OK;
    }
    zz = apr_pcalloc(r->pool, sizeof(*zz));
    zz->pool = r->pool;
    zz->entries = apr_table_make(r->pool, 10);
    if (state->record.state == SESSION_SHARED_FOUND) {
        encoded = session_shared_to_urlencoded(state->record.session);
        if (encoded == NULL)
            return HTTP_INTERNAL_SERVER_ERROR;
        zz->encoded = apr_pstrdup(r->pool, encoded);
        free(encoded);
    }
    state->z = zz;
    *z = zz;
    return OK;
}

static apr_status_t session_shared_session_save(request_rec *r, session_rec *z)
{
    session_shared_request *state = session_shared_load_request(r);
    phpser_session *session;
    char id[SESSION_SHARED_ID_CHARS + 1], err[512], *data = NULL, *header;
    const char *use_id, *old_id = NULL;
    size_t len;
    int is_new = 0;
    apr_time_t now = apr_time_now();

    if (state == NULL)
        return DECLINED;
    if (state->store == NULL)
        return HTTP_INTERNAL_SERVER_ERROR;
    use_id = state->id;
    if (z->encoded == NULL || z->encoded[0] == '\0') {
        if (use_id && session_shared_destroy(state->store, use_id, strlen(use_id), err, sizeof(err)) == 0) {
            header = session_shared_set_cookie(&state->conf->cookie, "", ap_http_scheme(r)[4] == 's', 0);
            if (header) {
                apr_table_addn(r->err_headers_out, "Set-Cookie", apr_pstrdup(r->pool, header));
                free(header);
            }
        }
        return OK;
    }
    if (use_id == NULL) {
        if (crypto_session_id_new(id, SESSION_SHARED_ID_CHARS) != 0) {
            ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "cannot create a session id: no randomness available");
            return HTTP_INTERNAL_SERVER_ERROR;
        }
        use_id = id;
        is_new = 1;
    }
    /* Start from what PHP stored, so arrays and objects mod_session cannot see survive the write. */
    session = NULL;
    if (!is_new && state->record.session && state->record.data &&
        phpser_session_decode(state->conf->store.format, state->record.data, state->record.len, &session, err,
                              sizeof(err)) != 0)
        session = NULL;
    if (session == NULL)
        session = phpser_session_new();
    if (session == NULL || session_shared_apply_urlencoded(session, z->encoded, strlen(z->encoded)) != 0 ||
        phpser_session_encode(session, state->conf->store.format, &data, &len, err, sizeof(err)) != 0) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "cannot encode the session: %s", session ? err : "out of memory");
        phpser_session_free(session);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    /* A login, logout or change of user (mod_auth_form's "user" or "<AuthName>-user") moves the session to a new id. */
    if (!is_new && session_shared_user_changed(state->record.session, session)) {
        if (crypto_session_id_new(id, SESSION_SHARED_ID_CHARS) != 0) {
            phpser_session_free(session);
            free(data);
            ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "cannot create a session id: no randomness available");
            return HTTP_INTERNAL_SERVER_ERROR;
        }
        old_id = use_id;
        use_id = id;
        is_new = 1;
    }
    phpser_session_free(session);
    if (session_shared_save(state->store, use_id, strlen(use_id), data, len,
                            is_new ? 0 : state->record.created, apr_time_sec(now), err, sizeof(err)) != 0) {
        free(data);
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "cannot save session: %s", err);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    free(data);
    if (old_id && session_shared_destroy(state->store, old_id, strlen(old_id), err, sizeof(err)) != 0)
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, "cannot delete the session's previous id: %s", err);
    if (is_new) {
        state->id = apr_pstrdup(r->pool, use_id);
        header = session_shared_set_cookie(&state->conf->cookie, use_id, ap_http_scheme(r)[4] == 's', -1);
        if (header == NULL)
            return HTTP_INTERNAL_SERVER_ERROR;
        apr_table_addn(r->err_headers_out, "Set-Cookie", apr_pstrdup(r->pool, header));
        free(header);
    }
    return OK;
}

/* ------------------------------------------------------------------------------------------------ setup */

static apr_status_t session_shared_child_exit(void *data)
{
    (void) data;
    session_shared_stores_close_all();
    return APR_SUCCESS;
}

static void session_shared_child_init(apr_pool_t *p, server_rec *s)
{
    (void) s;
    /* Stores open lazily, in the child, on first use: connections never cross a fork. */
    apr_pool_cleanup_register(p, NULL, session_shared_child_exit, apr_pool_cleanup_null);
}

static int session_shared_post_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp, server_rec *s)
{
    (void) plog;
    (void) ptemp;
    return webmodules_metrics_create(pconf, s, "session_shared", session_shared_metric_defs,
                                     session_shared_metric_count, &session_shared_metrics);
}

typedef void (*session_shared_hook_load_fn)(apr_status_t (*)(request_rec *, session_rec **), const char *const *,
                                            const char *const *, int);
typedef void (*session_shared_hook_save_fn)(apr_status_t (*)(request_rec *, session_rec *), const char *const *,
                                            const char *const *, int);

static void session_shared_register_hooks(apr_pool_t *p)
{
    session_shared_hook_load_fn hook_load;
    session_shared_hook_save_fn hook_save;

    (void) p;
    ap_hook_post_config(session_shared_post_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_child_init(session_shared_child_init, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_handler(webmodules_metrics_handler, NULL, NULL, APR_HOOK_MIDDLE);
    APR_REGISTER_OPTIONAL_FN(webmodules_metrics_session_shared);
    ap_hook_header_parser(session_shared_header_parser, NULL, NULL, APR_HOOK_FIRST);
    ap_hook_log_transaction(session_shared_log_transaction, NULL, NULL, APR_HOOK_MIDDLE);

    /* mod_session is optional: when it was loaded first, be one of its storage providers. */
    hook_load = (session_shared_hook_load_fn) dlsym(RTLD_DEFAULT, "ap_hook_session_load");
    hook_save = (session_shared_hook_save_fn) dlsym(RTLD_DEFAULT, "ap_hook_session_save");
    if (hook_load && hook_save) {
        hook_load(session_shared_session_load, NULL, NULL, APR_HOOK_MIDDLE);
        hook_save(session_shared_session_save, NULL, NULL, APR_HOOK_MIDDLE);
    }
}

module AP_MODULE_DECLARE_DATA session_shared_module = {
    STANDARD20_MODULE_STUFF,
    session_shared_create_dir_conf,
    session_shared_merge_dir_conf,
    NULL,
    NULL,
    session_shared_cmds,
    session_shared_register_hooks,
    AP_MODULE_FLAG_NONE
};
