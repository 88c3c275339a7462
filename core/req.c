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
