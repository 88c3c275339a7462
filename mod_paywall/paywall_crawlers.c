/* Crawler ranges (see paywall.h): Google's published JSON read into sorted, merged address intervals, so that a
 * lookup is a binary search whatever the size of the list. */
#include "paywall.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <jansson.h>

typedef struct {
    uint64_t hi, lo;
} paywall_u128;

typedef struct {
    uint32_t first, last;
} paywall_v4_range;

typedef struct {
    paywall_u128 first, last;
} paywall_v6_range;

typedef struct {
    int family; /* AF_INET or AF_INET6 */
    unsigned char addr[16];
    unsigned len;
} paywall_prefix;

struct paywall_crawlers {
    char *creation_time;
    paywall_prefix *prefixes; /* as listed, normalised */
    size_t nprefixes;
    paywall_v4_range *v4; /* sorted, disjoint, not adjacent */
    size_t nv4;
    paywall_v6_range *v6;
    size_t nv6;
};

static const unsigned char paywall_v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

/* A copy of untrusted text fit for an error message: bounded, control and non-ASCII bytes shown as '?'. */
static void paywall_crawlers_quote(const char *in, char *out, size_t outlen)
{
    size_t i;

    for (i = 0; in[i] != '\0' && i + 1 < outlen; i++) {
        out[i] = (unsigned char)in[i] < 0x20 || (unsigned char)in[i] >= 0x7f ? '?' : in[i];
    }
    out[i] = '\0';
}

static void paywall_prefix_mask(paywall_prefix *prefix)
{
    size_t bytes = prefix->family == AF_INET ? 4 : 16;
    size_t i;

    for (i = 0; i < bytes; i++) {
        if (i * 8 >= prefix->len) {
            prefix->addr[i] = 0;
        } else if (i * 8 + 8 > prefix->len) {
            prefix->addr[i] &= (unsigned char)(0xff << (8 - (prefix->len - i * 8)));
        }
    }
}

/* "address/length" of the family the member's name promises. Returns NULL or a phrase for the message. */
static const char *paywall_prefix_parse(const char *text, int family, paywall_prefix *out)
{
    const char *slash = strchr(text, '/');
    char addr[INET6_ADDRSTRLEN];
    size_t addr_len, i;
    unsigned len = 0, max = family == AF_INET ? 32 : 128;

    if (slash == NULL) {
        return "is not address/length";
    }
    addr_len = (size_t)(slash - text);
    if (addr_len == 0 || addr_len >= sizeof(addr)) {
        return "has a bad address";
    }
    memcpy(addr, text, addr_len);
    addr[addr_len] = '\0';
    memset(out, 0, sizeof(*out));
    out->family = family;
    if (inet_pton(family, addr, out->addr) != 1) {
        return "has a bad address";
    }
    if (slash[1] == '\0' || strlen(slash + 1) > 3) {
        return "has a bad prefix length";
    }
    for (i = 1; slash[i] != '\0'; i++) {
        if (slash[i] < '0' || slash[i] > '9') {
            return "has a bad prefix length";
        }
        len = len * 10 + (unsigned)(slash[i] - '0');
    }
    if (len > max) {
        return family == AF_INET ? "has a prefix length out of range (above 32)"
                                 : "has a prefix length out of range (above 128)";
    }
    out->len = len;
    if (family == AF_INET6 && len >= 96 && memcmp(out->addr, paywall_v4_mapped, 12) == 0) {
        memmove(out->addr, out->addr + 12, 4);
        memset(out->addr + 4, 0, 12);
        out->family = AF_INET;
        out->len = len - 96;
    }
    if (out->len < (out->family == AF_INET ? PAYWALL_CRAWLERS_V4_MIN_LEN : PAYWALL_CRAWLERS_V6_MIN_LEN)) {
        return out->family == AF_INET ? "is shorter than /8: refused, it would open the paywall to too many addresses"
                                      : "is shorter than /16: refused, it would open the paywall to too many addresses";
    }
    paywall_prefix_mask(out);
    return NULL;
}

static int paywall_crawlers_add(paywall_crawlers *crawlers, json_t *entry, const char *member, int family, size_t index,
                                char *err, size_t errlen)
{
    json_t *value = json_object_get(entry, member);
    const char *why;
    char quoted[64];

    if (value == NULL) {
        return 0;
    }
    if (!json_is_string(value)) {
        snprintf(err, errlen, "prefixes[%zu]: %s is not a string", index, member);
        return -1;
    }
    why = paywall_prefix_parse(json_string_value(value), family, &crawlers->prefixes[crawlers->nprefixes]);
    if (why != NULL) {
        paywall_crawlers_quote(json_string_value(value), quoted, sizeof(quoted));
        snprintf(err, errlen, "prefixes[%zu]: %s \"%s\" %s", index, member, quoted, why);
        return -1;
    }
    crawlers->nprefixes++;
    return 1;
}

static paywall_u128 paywall_u128_from(const unsigned char *b)
{
    paywall_u128 v = {0, 0};
    int i;

    for (i = 0; i < 8; i++) {
        v.hi = v.hi << 8 | b[i];
        v.lo = v.lo << 8 | b[i + 8];
    }
    return v;
}

static int paywall_u128_cmp(paywall_u128 a, paywall_u128 b)
{
    if (a.hi != b.hi) {
        return a.hi < b.hi ? -1 : 1;
    }
    return a.lo < b.lo ? -1 : a.lo > b.lo;
}

static int paywall_v4_cmp(const void *a, const void *b)
{
    const paywall_v4_range *x = a, *y = b;

    return x->first < y->first ? -1 : x->first > y->first;
}

static int paywall_v6_cmp(const void *a, const void *b)
{
    const paywall_v6_range *x = a, *y = b;

    return paywall_u128_cmp(x->first, y->first);
}

/* Sorted and merged, so that the binary search may stop at the one range that can hold an address. */
static void paywall_crawlers_index(paywall_crawlers *crawlers)
{
    const paywall_prefix *p;
    uint32_t v4_first, v4_mask;
    paywall_u128 first, v6_mask;
    size_t i, n;

    for (i = 0; i < crawlers->nprefixes; i++) {
        p = &crawlers->prefixes[i];
        if (p->family == AF_INET) {
            v4_first = (uint32_t)p->addr[0] << 24 | (uint32_t)p->addr[1] << 16 | (uint32_t)p->addr[2] << 8 | p->addr[3];
            v4_mask = p->len == 0 ? 0 : UINT32_MAX << (32 - p->len);
            crawlers->v4[crawlers->nv4].first = v4_first;
            crawlers->v4[crawlers->nv4].last = v4_first | ~v4_mask;
            crawlers->nv4++;
        } else {
            first = paywall_u128_from(p->addr);
            v6_mask.hi = p->len >= 64 ? UINT64_MAX : p->len == 0 ? 0 : UINT64_MAX << (64 - p->len);
            v6_mask.lo = p->len <= 64 ? 0 : p->len == 128 ? UINT64_MAX : UINT64_MAX << (128 - p->len);
            crawlers->v6[crawlers->nv6].first = first;
            crawlers->v6[crawlers->nv6].last.hi = first.hi | ~v6_mask.hi;
            crawlers->v6[crawlers->nv6].last.lo = first.lo | ~v6_mask.lo;
            crawlers->nv6++;
        }
    }

    if (crawlers->nv4 > 1) {
        qsort(crawlers->v4, crawlers->nv4, sizeof(*crawlers->v4), paywall_v4_cmp);
        for (i = 1, n = 0; i < crawlers->nv4; i++) {
            if (crawlers->v4[n].last == UINT32_MAX || crawlers->v4[i].first <= crawlers->v4[n].last + 1) {
                if (crawlers->v4[i].last > crawlers->v4[n].last) {
                    crawlers->v4[n].last = crawlers->v4[i].last;
                }
            } else {
                crawlers->v4[++n] = crawlers->v4[i];
            }
        }
        crawlers->nv4 = n + 1;
    }
    if (crawlers->nv6 > 1) {
        qsort(crawlers->v6, crawlers->nv6, sizeof(*crawlers->v6), paywall_v6_cmp);
        for (i = 1, n = 0; i < crawlers->nv6; i++) {
            /* Overlapping ranges merge; adjacent ones are left apart, which only costs a step of the search. */
            if (paywall_u128_cmp(crawlers->v6[i].first, crawlers->v6[n].last) <= 0) {
                if (paywall_u128_cmp(crawlers->v6[i].last, crawlers->v6[n].last) > 0) {
                    crawlers->v6[n].last = crawlers->v6[i].last;
                }
            } else {
                crawlers->v6[++n] = crawlers->v6[i];
            }
        }
        crawlers->nv6 = n + 1;
    }
}

static int paywall_crawlers_read(paywall_crawlers *crawlers, json_t *root, char *err, size_t errlen)
{
    json_t *prefixes, *entry, *created;
    size_t i, n;
    int added4, added6;

    if (!json_is_object(root)) {
        snprintf(err, errlen, "not a JSON object");
        return -1;
    }
    created = json_object_get(root, "creationTime");
    if (json_is_string(created)) {
        crawlers->creation_time = strdup(json_string_value(created));
        if (crawlers->creation_time == NULL) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
    }
    prefixes = json_object_get(root, "prefixes");
    if (!json_is_array(prefixes)) {
        snprintf(err, errlen, "no \"prefixes\" array");
        return -1;
    }
    n = json_array_size(prefixes);
    if (n > PAYWALL_CRAWLERS_ENTRIES_MAX) {
        snprintf(err, errlen, "%zu prefixes, more than the %d allowed", n, PAYWALL_CRAWLERS_ENTRIES_MAX);
        return -1;
    }
    if (n > 0) {
        /* An entry may hold both members: at most two prefixes each. */
        crawlers->prefixes = calloc(2 * n, sizeof(*crawlers->prefixes));
        if (crawlers->prefixes == NULL) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
    }
    json_array_foreach(prefixes, i, entry)
    {
        if (!json_is_object(entry)) {
            snprintf(err, errlen, "prefixes[%zu]: not an object", i);
            return -1;
        }
        added4 = paywall_crawlers_add(crawlers, entry, "ipv4Prefix", AF_INET, i, err, errlen);
        if (added4 < 0) {
            return -1;
        }
        added6 = paywall_crawlers_add(crawlers, entry, "ipv6Prefix", AF_INET6, i, err, errlen);
        if (added6 < 0) {
            return -1;
        }
        if (!added4 && !added6) {
            snprintf(err, errlen, "prefixes[%zu]: neither ipv4Prefix nor ipv6Prefix", i);
            return -1;
        }
    }
    if (crawlers->nprefixes > 0) {
        crawlers->v4 = malloc(crawlers->nprefixes * sizeof(*crawlers->v4));
        crawlers->v6 = malloc(crawlers->nprefixes * sizeof(*crawlers->v6));
        if (crawlers->v4 == NULL || crawlers->v6 == NULL) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        paywall_crawlers_index(crawlers);
    }
    return 0;
}

int paywall_crawlers_parse(const char *json, size_t len, paywall_crawlers **out, char *err, size_t errlen)
{
    paywall_crawlers *crawlers;
    json_error_t error;
    json_t *root;
    char quoted[JSON_ERROR_TEXT_LENGTH];

    *out = NULL;
    if (len > PAYWALL_CRAWLERS_FILE_MAX) {
        snprintf(err, errlen, "%zu bytes, more than the %d allowed", len, PAYWALL_CRAWLERS_FILE_MAX);
        return -1;
    }
    root = json_loadb(json != NULL ? json : "", len, JSON_REJECT_DUPLICATES, &error);
    if (root == NULL) {
        /* jansson quotes the offending token, which may hold any byte of the file */
        paywall_crawlers_quote(error.text, quoted, sizeof(quoted));
        snprintf(err, errlen, "invalid JSON at line %d, column %d: %s", error.line, error.column, quoted);
        return -1;
    }
    crawlers = calloc(1, sizeof(*crawlers));
    if (crawlers == NULL) {
        json_decref(root);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (paywall_crawlers_read(crawlers, root, err, errlen) != 0) {
        json_decref(root);
        paywall_crawlers_free(crawlers);
        return -1;
    }
    json_decref(root);
    *out = crawlers;
    return 0;
}

int paywall_crawlers_load(const char *path, paywall_crawlers **out, char *err, size_t errlen)
{
    FILE *file;
    struct stat st;
    char *text, inner[512];
    size_t len;
    int rc;

    *out = NULL;
    file = fopen(path, "rb");
    if (file == NULL) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    if (fstat(fileno(file), &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s: not a regular file", path);
        fclose(file);
        return -1;
    }
    if (st.st_size > PAYWALL_CRAWLERS_FILE_MAX) {
        snprintf(err, errlen, "%s: %lld bytes, more than the %d allowed", path, (long long)st.st_size,
                 PAYWALL_CRAWLERS_FILE_MAX);
        fclose(file);
        return -1;
    }
    /* One byte more than allowed, to notice a file that grew since fstat. */
    text = malloc(PAYWALL_CRAWLERS_FILE_MAX + 1);
    if (text == NULL) {
        snprintf(err, errlen, "%s: out of memory", path);
        fclose(file);
        return -1;
    }
    len = fread(text, 1, PAYWALL_CRAWLERS_FILE_MAX + 1, file);
    if (ferror(file)) {
        snprintf(err, errlen, "%s: read error", path);
        fclose(file);
        free(text);
        return -1;
    }
    fclose(file);
    rc = paywall_crawlers_parse(text, len, out, inner, sizeof(inner));
    free(text);
    if (rc != 0) {
        snprintf(err, errlen, "%s: %s", path, inner);
    }
    return rc;
}

void paywall_crawlers_free(paywall_crawlers *crawlers)
{
    if (crawlers == NULL) {
        return;
    }
    free(crawlers->creation_time);
    free(crawlers->prefixes);
    free(crawlers->v4);
    free(crawlers->v6);
    free(crawlers);
}

static int paywall_crawlers_match_v4(const paywall_crawlers *crawlers, uint32_t addr)
{
    size_t lo = 0, hi = crawlers->nv4, mid;

    /* The last range starting at or before addr is the only one that can hold it. */
    while (lo < hi) {
        mid = lo + (hi - lo) / 2;
        if (crawlers->v4[mid].first <= addr) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo > 0 && addr <= crawlers->v4[lo - 1].last;
}

static int paywall_crawlers_match_v6(const paywall_crawlers *crawlers, paywall_u128 addr)
{
    size_t lo = 0, hi = crawlers->nv6, mid;

    while (lo < hi) {
        mid = lo + (hi - lo) / 2;
        if (paywall_u128_cmp(crawlers->v6[mid].first, addr) <= 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo > 0 && paywall_u128_cmp(addr, crawlers->v6[lo - 1].last) <= 0;
}

int paywall_crawlers_match(const paywall_crawlers *crawlers, const char *addr)
{
    unsigned char bytes[16];
    uint32_t v4;

    if (crawlers == NULL || addr == NULL) {
        return 0;
    }
    if (inet_pton(AF_INET, addr, bytes + 12) == 1) {
        memcpy(bytes, paywall_v4_mapped, 12);
    } else if (inet_pton(AF_INET6, addr, bytes) != 1) {
        return 0;
    }
    /* One address, two spellings: a mapped client is looked up as IPv4, and both as IPv6 in case the list holds an
     * ipv6Prefix wider than ::ffff:0:0/96. */
    if (memcmp(bytes, paywall_v4_mapped, 12) == 0) {
        v4 = (uint32_t)bytes[12] << 24 | (uint32_t)bytes[13] << 16 | (uint32_t)bytes[14] << 8 | bytes[15];
        if (paywall_crawlers_match_v4(crawlers, v4)) {
            return 1;
        }
    }
    return paywall_crawlers_match_v6(crawlers, paywall_u128_from(bytes));
}

size_t paywall_crawlers_count(const paywall_crawlers *crawlers)
{
    return crawlers != NULL ? crawlers->nprefixes : 0;
}

int paywall_crawlers_prefix(const paywall_crawlers *crawlers, size_t i, char *out, size_t outlen)
{
    char addr[INET6_ADDRSTRLEN];
    const paywall_prefix *p;
    int n;

    if (crawlers == NULL || i >= crawlers->nprefixes) {
        return -1;
    }
    p = &crawlers->prefixes[i];
    if (inet_ntop(p->family, p->addr, addr, sizeof(addr)) == NULL) {
        return -1;
    }
    n = snprintf(out, outlen, "%s/%u", addr, p->len);
    return n < 0 || (size_t)n >= outlen ? -1 : 0;
}

const char *paywall_crawlers_creation_time(const paywall_crawlers *crawlers)
{
    return crawlers != NULL ? crawlers->creation_time : NULL;
}
