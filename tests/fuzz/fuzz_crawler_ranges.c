/* libFuzzer target for mod_paywall/paywall_crawlers.c.
 *
 * The input is a crawler-ranges file. A refusal must come with a printable message and no result. An accepted file
 * must list prefixes that print as address/length with no host bits, that read back the same when written out as a
 * file again, and paywall_crawlers_match (a binary search over merged ranges) must agree with a linear scan of the
 * prefixes for each prefix's first and last address, the addresses just outside, and addresses taken from the input,
 * each spelt as IPv4, IPv6 and IPv4-mapped IPv6.
 */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "paywall.h"

#include "fuzz.h"

#define FUZZ_PROBED_PREFIXES 32

typedef struct {
    int family;
    unsigned char addr[16];
    unsigned len;
} fuzz_prefix;

static const unsigned char fuzz_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

static int fuzz_in_prefix(const unsigned char *addr, const fuzz_prefix *p)
{
    unsigned full = p->len / 8, rest = p->len % 8;

    if (memcmp(addr, p->addr, full) != 0) {
        return 0;
    }
    return rest == 0 || ((addr[full] ^ p->addr[full]) & (0xff << (8 - rest)) & 0xff) == 0;
}

/* addr is 16 bytes; an IPv4 address is given in its mapped form. */
static int fuzz_linear_match(const fuzz_prefix *prefixes, size_t n, const unsigned char *addr)
{
    int is_v4 = memcmp(addr, fuzz_mapped, 12) == 0;
    size_t i;

    for (i = 0; i < n; i++) {
        if (prefixes[i].family == AF_INET ? is_v4 && fuzz_in_prefix(addr + 12, &prefixes[i])
                                          : fuzz_in_prefix(addr, &prefixes[i])) {
            return 1;
        }
    }
    return 0;
}

static void fuzz_probe(const paywall_crawlers *crawlers, const fuzz_prefix *prefixes, size_t n,
                       const unsigned char *addr)
{
    char text[INET6_ADDRSTRLEN + 8];
    int expected = fuzz_linear_match(prefixes, n, addr);

    FUZZ_CHECK(inet_ntop(AF_INET6, addr, text, sizeof(text)) != NULL);
    if (paywall_crawlers_match(crawlers, text) != expected) {
        fprintf(stderr, "%s: expected %d\n", text, expected);
        abort();
    }
    if (memcmp(addr, fuzz_mapped, 12) == 0) {
        FUZZ_CHECK(inet_ntop(AF_INET, addr + 12, text, sizeof(text)) != NULL);
        FUZZ_CHECK(paywall_crawlers_match(crawlers, text) == expected);
        snprintf(text, sizeof(text), "::ffff:%u.%u.%u.%u", addr[12], addr[13], addr[14], addr[15]);
        FUZZ_CHECK(paywall_crawlers_match(crawlers, text) == expected);
    }
}

/* addr + delta as a 128-bit number (delta -1 or +1), within the family's space. */
static void fuzz_step(unsigned char *addr, size_t from, int delta)
{
    size_t i = 16;

    while (i-- > from) {
        addr[i] = (unsigned char)(addr[i] + delta);
        if ((delta > 0 && addr[i] != 0) || (delta < 0 && addr[i] != 0xff)) {
            break;
        }
    }
}

static void fuzz_probe_prefix(const paywall_crawlers *crawlers, const fuzz_prefix *prefixes, size_t n,
                              const fuzz_prefix *p)
{
    unsigned char first[16], last[16];
    size_t from = p->family == AF_INET ? 12 : 0, bits = p->family == AF_INET ? 32 : 128, i;

    memset(first, 0, sizeof(first));
    if (p->family == AF_INET) {
        memcpy(first, fuzz_mapped, 12);
    }
    memcpy(first + from, p->addr, 16 - from);
    memcpy(last, first, sizeof(last));
    for (i = p->len; i < bits; i++) {
        last[from + i / 8] |= (unsigned char)(0x80 >> (i % 8));
    }
    FUZZ_CHECK(fuzz_linear_match(prefixes, n, first) && fuzz_linear_match(prefixes, n, last));
    fuzz_probe(crawlers, prefixes, n, first);
    fuzz_probe(crawlers, prefixes, n, last);
    fuzz_step(first, from, -1);
    fuzz_step(last, from, +1);
    fuzz_probe(crawlers, prefixes, n, first);
    fuzz_probe(crawlers, prefixes, n, last);
}

static void fuzz_check_accepted(const paywall_crawlers *crawlers, const uint8_t *data, size_t size)
{
    size_t n = paywall_crawlers_count(crawlers), i, len = 0;
    fuzz_prefix *prefixes = calloc(n + 1, sizeof(*prefixes));
    char text[INET6_ADDRSTRLEN + 8], *slash, *json, err[256];
    paywall_crawlers *again;
    unsigned char addr[16];
    fuzz_prefix check;

    FUZZ_CHECK(prefixes != NULL);
    FUZZ_CHECK(n <= 2 * PAYWALL_CRAWLERS_ENTRIES_MAX);
    json = malloc(32 + n * (sizeof(text) + 32));
    FUZZ_CHECK(json != NULL);
    len = (size_t)sprintf(json, "{\"prefixes\":[");
    for (i = 0; i < n; i++) {
        FUZZ_CHECK(paywall_crawlers_prefix(crawlers, i, text, sizeof(text)) == 0);
        len += (size_t)sprintf(json + len, "%s{\"%s\":\"%s\"}", i ? "," : "",
                               strchr(text, ':') ? "ipv6Prefix" : "ipv4Prefix", text);
        slash = strchr(text, '/');
        FUZZ_CHECK(slash != NULL);
        *slash = '\0';
        prefixes[i].family = strchr(text, ':') ? AF_INET6 : AF_INET;
        FUZZ_CHECK(inet_pton(prefixes[i].family, text, prefixes[i].addr) == 1);
        prefixes[i].len = (unsigned)atoi(slash + 1);
        FUZZ_CHECK(prefixes[i].len <= (prefixes[i].family == AF_INET ? 32u : 128u));
        FUZZ_CHECK(prefixes[i].len >= (prefixes[i].family == AF_INET ? 8u : 16u));
        /* no host bits, and never an IPv4-mapped IPv6 prefix that should have become IPv4 */
        check = prefixes[i];
        FUZZ_CHECK(prefixes[i].family == AF_INET || check.len < 96 || memcmp(check.addr, fuzz_mapped, 12) != 0);
        for (check.len = prefixes[i].len; check.len < (prefixes[i].family == AF_INET ? 32u : 128u); check.len++) {
            FUZZ_CHECK((check.addr[check.len / 8] & (0x80 >> (check.len % 8))) == 0);
        }
    }
    strcpy(json + len, "]}");
    len += 2;

    /* what was normalised reads back the same (one entry a prefix: within the limit when the input was) */
    if (n <= PAYWALL_CRAWLERS_ENTRIES_MAX && len <= PAYWALL_CRAWLERS_FILE_MAX) {
        FUZZ_CHECK(paywall_crawlers_parse(json, len, &again, err, sizeof(err)) == 0);
        FUZZ_CHECK(paywall_crawlers_count(again) == n);
        for (i = 0; i < n; i++) {
            char a[INET6_ADDRSTRLEN + 8], b[INET6_ADDRSTRLEN + 8];

            FUZZ_CHECK(paywall_crawlers_prefix(crawlers, i, a, sizeof(a)) == 0);
            FUZZ_CHECK(paywall_crawlers_prefix(again, i, b, sizeof(b)) == 0);
            FUZZ_CHECK(strcmp(a, b) == 0);
        }
        paywall_crawlers_free(again);
    }
    free(json);

    for (i = 0; i < n && i < FUZZ_PROBED_PREFIXES; i++) {
        fuzz_probe_prefix(crawlers, prefixes, n, &prefixes[i]);
    }
    /* addresses from the input's last bytes, as IPv6 and as IPv4 */
    if (size >= 16) {
        memcpy(addr, data + size - 16, 16);
        fuzz_probe(crawlers, prefixes, n, addr);
        memcpy(addr, fuzz_mapped, 12);
        fuzz_probe(crawlers, prefixes, n, addr);
    }
    free(prefixes);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    paywall_crawlers *crawlers = NULL;
    char err[256], *addr;
    size_t i;

    memset(err, 'x', sizeof(err));
    if (paywall_crawlers_parse((const char *)data, size, &crawlers, err, sizeof(err)) != 0) {
        FUZZ_CHECK(crawlers == NULL);
        FUZZ_CHECK(memchr(err, '\0', sizeof(err)) != NULL && err[0] != '\0');
        for (i = 0; err[i] != '\0'; i++) {
            FUZZ_CHECK((unsigned char)err[i] >= 0x20 && (unsigned char)err[i] < 0x7f);
        }
        return 0;
    }
    FUZZ_CHECK(crawlers != NULL);
    fuzz_check_accepted(crawlers, data, size);

    /* the input itself as a client address: never a crash, and 0 unless it is an address */
    addr = malloc(size + 1);
    FUZZ_CHECK(addr != NULL);
    memcpy(addr, data, size);
    addr[size] = '\0';
    FUZZ_CHECK(paywall_crawlers_match(crawlers, addr) == 0);
    free(addr);
    paywall_crawlers_free(crawlers);
    return 0;
}
