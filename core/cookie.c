/* Cookie header parsing and session id validation (see cookie.h). */
#include "cookie.h"

#include <string.h>

static int cookie_is_space(char c)
{
    return c == ' ' || c == '\t';
}

/* One "name=value" pair in [p, end): trims the spaces around name and value and one pair of DQUOTEs around the
 * value. Returns 0 for a pair without '=' (it names no value). */
static int cookie_split_pair(const char *p, const char *end, const char **name, size_t *name_len, const char **value,
                             size_t *value_len)
{
    const char *eq = memchr(p, '=', (size_t)(end - p));
    const char *name_end, *v;

    if (eq == NULL) {
        return 0;
    }
    while (p < eq && cookie_is_space(*p)) {
        p++;
    }
    name_end = eq;
    while (name_end > p && cookie_is_space(name_end[-1])) {
        name_end--;
    }
    v = eq + 1;
    while (v < end && cookie_is_space(*v)) {
        v++;
    }
    while (end > v && cookie_is_space(end[-1])) {
        end--;
    }
    if (end - v >= 2 && *v == '"' && end[-1] == '"') {
        v++;
        end--;
    }
    *name = p;
    *name_len = (size_t)(name_end - p);
    *value = v;
    *value_len = (size_t)(end - v);
    return 1;
}

static int cookie_name_matches(const char *candidate, size_t candidate_len, const char *name, size_t name_len)
{
    return candidate_len == name_len && memcmp(candidate, name, name_len) == 0;
}

/* The first cookie of a name wins, as in PHP: browsers send the most specific path first. */
int cookie_find(const char *header, size_t header_len, const char *name, size_t name_len, const char **value,
                size_t *value_len)
{
    const char *p, *end, *semi, *pair_name, *pair_value;
    size_t pair_name_len, pair_value_len;

    if (header == NULL || name == NULL || name_len == 0 || value == NULL || value_len == NULL) {
        return 0;
    }
    p = header;
    end = header + header_len;
    while (p < end) {
        semi = memchr(p, ';', (size_t)(end - p));
        if (semi == NULL) {
            semi = end;
        }
        if (cookie_split_pair(p, semi, &pair_name, &pair_name_len, &pair_value, &pair_value_len) &&
            cookie_name_matches(pair_name, pair_name_len, name, name_len)) {
            *value = pair_value;
            *value_len = pair_value_len;
            return 1;
        }
        p = semi + 1;
    }
    return 0;
}

int cookie_find_set_cookie(const char *header, size_t header_len, const char *name, size_t name_len, const char **value,
                           size_t *value_len)
{
    const char *semi, *pair_name, *pair_value;
    size_t pair_name_len, pair_value_len;

    if (header == NULL || name == NULL || name_len == 0 || value == NULL || value_len == NULL) {
        return 0;
    }
    semi = memchr(header, ';', header_len);
    if (semi == NULL) {
        semi = header + header_len;
    }
    if (!cookie_split_pair(header, semi, &pair_name, &pair_name_len, &pair_value, &pair_value_len) ||
        !cookie_name_matches(pair_name, pair_name_len, name, name_len)) {
        return 0;
    }
    *value = pair_value;
    *value_len = pair_value_len;
    return 1;
}

static int cookie_is_id_char(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == ',' || c == '-';
}

/* The length limit is checked before the characters so that a huge value is refused without being scanned. */
cookie_id_status cookie_session_id_check(const char *id, size_t len)
{
    size_t i;

    if (id == NULL || len == 0) {
        return COOKIE_ID_EMPTY;
    }
    if (len > COOKIE_SESSION_ID_MAX) {
        return COOKIE_ID_TOO_LONG;
    }
    for (i = 0; i < len; i++) {
        if (!cookie_is_id_char((unsigned char)id[i])) {
            return COOKIE_ID_BAD_CHAR;
        }
    }
    return len < COOKIE_SESSION_ID_MIN ? COOKIE_ID_TOO_SHORT : COOKIE_ID_OK;
}

const char *cookie_id_status_text(cookie_id_status status)
{
    switch (status) {
    case COOKIE_ID_OK:
        return "valid";
    case COOKIE_ID_EMPTY:
        return "is empty";
    case COOKIE_ID_TOO_SHORT:
        return "is shorter than 22 characters";
    case COOKIE_ID_TOO_LONG:
        return "is longer than 256 characters";
    case COOKIE_ID_BAD_CHAR:
        return "contains a character outside [0-9a-zA-Z,-]";
    }
    return "has an unknown status";
}
