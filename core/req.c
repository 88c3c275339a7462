#include "req.h"

#include <ctype.h>
#include <string.h>

const char *req_source_parse(const char *arg, req_source *out)
{
    static const struct {
        const char *prefix;
        req_source_kind kind;
    } kinds[] = {{"session:", REQ_SOURCE_SESSION}, {"env:", REQ_SOURCE_ENV}, {"header:", REQ_SOURCE_HEADER}};
    size_t i, j, n;

    for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        n = strlen(kinds[i].prefix);
        if (strncmp(arg, kinds[i].prefix, n) != 0)
            continue;
        if (arg[n] == '\0' || strlen(arg + n) > 128)
            return "needs a name of 1 to 128 characters after the colon";
        for (j = n; arg[j] != '\0'; j++)
            if (!isalnum((unsigned char)arg[j]) && arg[j] != '_' && arg[j] != '-' && arg[j] != '.')
                return "names are letters, digits, _ - and .";
        out->kind = kinds[i].kind;
        out->name = arg + n;
        return NULL;
    }
    return "must be session:KEY, env:NAME or header:NAME";
}

const char *req_query_find(const char *args, const char *name, size_t *raw_len)
{
    size_t name_len = strlen(name), pair_len;
    const char *pair = args, *end, *eq;

    while (pair != NULL && *pair != '\0') {
        end = strchr(pair, '&');
        pair_len = end ? (size_t)(end - pair) : strlen(pair);
        eq = memchr(pair, '=', pair_len);
        if ((size_t)((eq ? eq : pair + pair_len) - pair) == name_len && memcmp(pair, name, name_len) == 0) {
            *raw_len = eq ? pair_len - name_len - 1 : 0;
            return eq ? eq + 1 : pair + pair_len;
        }
        pair = end ? end + 1 : NULL;
    }
    return NULL;
}

static int req_hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

size_t req_url_decode(const char *in, size_t len, char *out)
{
    size_t i, n = 0;
    int hi, lo;

    for (i = 0; i < len; i++) {
        if (in[i] == '+') {
            out[n++] = ' ';
        } else if (in[i] == '%' && i + 2 < len && (hi = req_hex_value((unsigned char)in[i + 1])) >= 0 &&
                   (lo = req_hex_value((unsigned char)in[i + 2])) >= 0) {
            out[n++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            out[n++] = in[i];
        }
    }
    out[n] = '\0';
    return n;
}
