/* libFuzzer target for query strings (core/req.c): the input is "name\nquery". Properties: a parameter found lies
 * inside the query, decoding never writes more than its input and stays NUL-terminated, and decoding text without
 * '%' or '+' gives it back unchanged. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "req.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *input = malloc(size + 1), *name, *args, *nl, *decoded;
    const char *raw;
    size_t raw_len = 0, n;

    if (input == NULL)
        return 0;
    memcpy(input, data, size);
    input[size] = '\0';
    nl = strchr(input, '\n');
    name = input;
    args = nl ? nl + 1 : input + size;
    if (nl)
        *nl = '\0';
    raw = req_query_find(args, name, &raw_len);
    if (raw != NULL) {
        FUZZ_CHECK(raw >= args && raw + raw_len <= args + strlen(args));
        decoded = malloc(raw_len + 1);
        FUZZ_CHECK(decoded != NULL);
        n = req_url_decode(raw, raw_len, decoded);
        FUZZ_CHECK(n <= raw_len);
        FUZZ_CHECK(decoded[n] == '\0');
        if (memchr(raw, '%', raw_len) == NULL && memchr(raw, '+', raw_len) == NULL)
            FUZZ_CHECK(n == raw_len && memcmp(decoded, raw, raw_len) == 0);
        free(decoded);
    }
    free(input);
    return 0;
}
