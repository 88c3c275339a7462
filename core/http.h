/* Outbound HTTP for the modules (payment and notification APIs): libcurl easy handles with a deadline on every
 * call, a bounded response, and retries with exponential backoff. Blocking: Apache calls it from request or
 * background threads, nginx only from thread-pool tasks. Thread-safe after http_global_init(). */
#ifndef CORE_HTTP_H
#define CORE_HTTP_H

#include <stddef.h>

typedef struct {
    const char *method; /* "GET", "POST", ... */
    const char *url;
    const char *const *headers; /* "Name: value" strings, NULL-terminated list; may be NULL */
    const char *body;           /* may be NULL */
    size_t body_len;
    unsigned timeout_ms;         /* whole call, each attempt; default 5000 */
    unsigned connect_timeout_ms; /* default 1000 */
    unsigned retries;            /* further attempts after a transport error, a 429 or a 5xx; default 0 */
    unsigned backoff_ms;         /* first wait between attempts, doubled each time; default 100 */
    size_t max_body;             /* a larger response is an error; default 1 MiB */
} http_request;

typedef struct {
    long status; /* HTTP status of the last attempt, 0 when none answered */
    char *body;  /* malloc'd, NUL-terminated */
    size_t body_len;
    unsigned attempts;
    char error[256]; /* why the call failed, when it returns -1 */
} http_response;

/* Once per process, before threads start (libcurl's global state). Returns 0 or -1. */
int http_global_init(void);

/* 0 when a server answered (any status, including after retries), -1 on a transport error, a timeout or a
 * response over max_body, with response->error saying which. */
int http_perform(const http_request *request, http_response *response);
void http_response_free(http_response *response);

#endif
