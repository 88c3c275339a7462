/* Cookie header parsing and session id validation, shared by both server adapters. */
#ifndef CORE_COOKIE_H
#define CORE_COOKIE_H

#include <stddef.h>

/* PHP accepts ids of 22 to 256 characters from [0-9a-zA-Z,-]; anything else is refused before a store is asked. */
#define COOKIE_SESSION_ID_MIN 22
#define COOKIE_SESSION_ID_MAX 256

typedef enum {
    COOKIE_ID_OK = 0,
    COOKIE_ID_EMPTY,
    COOKIE_ID_TOO_SHORT,
    COOKIE_ID_TOO_LONG,
    COOKIE_ID_BAD_CHAR, /* control, space, non-ASCII, or any character outside PHP's id alphabet */
} cookie_id_status;

/* Finds the first cookie called name in one Cookie header value (RFC 6265: "a=b; c=d", optional DQUOTEs around
 * the value, tolerant of extra spaces). Returns 1 and points *value and *value_len into header, or 0 when absent. */
int cookie_find(const char *header, size_t header_len, const char *name, size_t name_len, const char **value,
                size_t *value_len);

cookie_id_status cookie_session_id_check(const char *id, size_t len);
/* A short reason for logs, e.g. "contains a control character". */
const char *cookie_id_status_text(cookie_id_status status);

/* Same as cookie_find on a response's Set-Cookie header value: "name=value; Path=/; ..." (first pair only). */
int cookie_find_set_cookie(const char *header, size_t header_len, const char *name, size_t name_len, const char **value,
                           size_t *value_len);

#endif
