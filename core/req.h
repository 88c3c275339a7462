/* The view of a request that a server adapter hands to a module's logic, and the way the logic hands values back.
 * Only what the logic needs: the adapters own everything server-specific. */
#ifndef CORE_REQ_H
#define CORE_REQ_H

#include <stddef.h>

typedef struct req_view req_view;

/* Publishes a value to the backend and to the other modules. name is the Apache environment name
 * ("SESSION_USER_ID"); the nginx adapter maps it to its own variable. Returns 0 or -1. */
typedef int (*req_publish_fn)(req_view *req, const char *name, const char *value, size_t value_len);

struct req_view {
    const char *cookie_header; /* every Cookie header of the request joined with "; ", or NULL */
    size_t cookie_header_len;
    int secure; /* the request came over HTTPS */
    req_publish_fn publish;
    void *server_ctx; /* request_rec * or ngx_http_request_t * */
};

/* Where a module finds the visitor's identity (PaywallUser, PromoUser...): session:KEY (mod_session_shared's
 * exported value), env:NAME (the request environment, REMOTE_USER for the server's own authentication) or
 * header:NAME. One parser for every module and both servers, so all accept and refuse the same values. */
typedef enum { REQ_SOURCE_SESSION, REQ_SOURCE_ENV, REQ_SOURCE_HEADER } req_source_kind;

typedef struct {
    req_source_kind kind;
    const char *name; /* points into the argument */
} req_source;

/* NULL, or a short error phrase for the server to report with the directive's name. */
const char *req_source_parse(const char *arg, req_source *out);

/* Query strings, for every module's handlers the same way. The first parameter called name in a raw query string
 * (without the '?'): a pointer to its raw value and its length, or NULL when absent ("a" and "a=" are present and
 * empty). */
const char *req_query_find(const char *args, const char *name, size_t *raw_len);
/* Form decoding of len bytes into out (room for len + 1 bytes): '+' is a space, %XX a byte, a malformed escape is
 * kept as it is; out is NUL-terminated (a %00 shows as an early NUL: the caller checks the length returned).
 * Returns the decoded length, never more than len. */
size_t req_url_decode(const char *in, size_t len, char *out);

#endif
