/* The streaming HTML rewriter of paywalled responses and the structured-data block it inserts (see paywall_filter.h).
 *
 * Two byte matchers run over the response, each a state machine that sees every byte once, so where the server
 * splits the body into buffers cannot change what they find:
 *   - the head anchor, "</head" or "<body" (ASCII case-insensitive) and a delimiter. Both start with '<' and have no
 *     other '<', so after a mismatch the only partial match left is the mismatching byte itself when it is a '<': the
 *     state is the number of bytes matched and which anchor they belong to, and those bytes are exactly the ones held
 *     back (at most 6);
 *   - the marker, any bytes, with Knuth-Morris-Pratt's failure function, which keeps the longest partial match across
 *     overlaps such as "<!--<!--paywall-->".
 * Without a cut the head matcher works on the stream as it passes; with a cut everything is copied to the caller's
 * hold buffer until the marker is found, and the head matcher only records where the insert goes. */
#include "paywall_filter.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PAYWALL_FILTER_NOWHERE ((size_t)-1)

enum { PAYWALL_ANCHOR_HEAD_END, PAYWALL_ANCHOR_BODY };

static const struct {
    const char *name; /* lower case */
    unsigned len;
} paywall_filter_anchors[] = {
    {"</head", 6},
    {"<body", 5},
};

static int paywall_filter_fail(char *err, size_t errlen, const char *message)
{
    if (err != NULL && errlen > 0) {
        snprintf(err, errlen, "%s", message);
    }
    return -1;
}

static void paywall_filter_marker_prepare(paywall_filter *f)
{
    const unsigned char *marker = (const unsigned char *)f->config.marker;
    size_t i, k = 0;

    f->marker_fail[0] = 0;
    for (i = 1; i < f->config.marker_len; i++) {
        while (k > 0 && marker[i] != marker[k]) {
            k = f->marker_fail[k - 1];
        }
        if (marker[i] == marker[k]) {
            k++;
        }
        f->marker_fail[i] = (unsigned char)k;
    }
}

int paywall_filter_init(paywall_filter *f, const paywall_filter_config *config, char *err, size_t errlen)
{
    if (f == NULL || config == NULL) {
        return paywall_filter_fail(err, errlen, "no filter state or configuration");
    }
    memset(f, 0, sizeof(*f));
    if (config->head_insert_len > 0 && config->head_insert == NULL) {
        return paywall_filter_fail(err, errlen, "a head insert length without the insert");
    }
    if (config->marker_len > PAYWALL_FILTER_MARKER_MAX) {
        return paywall_filter_fail(err, errlen, "the marker is longer than 255 bytes");
    }
    if (config->marker_len > 0) {
        if (config->marker == NULL) {
            return paywall_filter_fail(err, errlen, "a marker length without the marker");
        }
        if (config->cta_len > 0 && config->cta == NULL) {
            return paywall_filter_fail(err, errlen, "a call-to-action length without the call to action");
        }
        if (config->hold == NULL || config->hold_size < config->marker_len) {
            return paywall_filter_fail(err, errlen, "a cut needs a hold buffer at least as long as the marker");
        }
    }
    f->config = *config;
    if (f->config.head_insert_len == 0) {
        f->config.head_insert = NULL;
        f->inserted = 1; /* nothing to insert: the head matcher never runs */
    }
    if (f->config.marker_len == 0) {
        f->config.marker = NULL;
        f->config.cta = NULL;
        f->config.cta_len = 0;
        f->config.hold = NULL;
        f->config.hold_size = 0;
    } else {
        paywall_filter_marker_prepare(f);
    }
    f->insert_at = PAYWALL_FILTER_NOWHERE;
    f->status = PAYWALL_FILTER_OPEN;
    return 0;
}

static int paywall_filter_emit(paywall_filter *f, paywall_filter_emit_fn emit, void *ctx, const char *data, size_t len)
{
    if (len == 0) {
        return 0;
    }
    if (emit(ctx, data, len) != 0) {
        f->failed = 1;
        return -1;
    }
    return 0;
}

static int paywall_filter_is_delimiter(unsigned char c)
{
    /* what ends a tag name for a browser: HTML's whitespace, a self-closing slash, the end of the tag */
    return c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r' || c == '/' || c == '>';
}

/* Advances the head matcher by one byte; the anchor's length (delimiter included) when c completes it, else 0. */
static size_t paywall_filter_head_step(paywall_filter *f, unsigned char c)
{
    unsigned k = f->head_matched;
    unsigned char lower = c >= 'A' && c <= 'Z' ? (unsigned char)(c + ('a' - 'A')) : c;

    if (k == 1 && (c == '/' || lower == 'b')) {
        f->head_anchor = c == '/' ? PAYWALL_ANCHOR_HEAD_END : PAYWALL_ANCHOR_BODY;
        f->head_matched = 2;
        return 0;
    }
    if (k >= 2 && k < paywall_filter_anchors[f->head_anchor].len &&
        lower == (unsigned char)paywall_filter_anchors[f->head_anchor].name[k]) {
        f->head_matched = k + 1;
        return 0;
    }
    if (k >= 2 && k == paywall_filter_anchors[f->head_anchor].len && paywall_filter_is_delimiter(c)) {
        f->head_matched = 0;
        return k + 1;
    }
    /* no byte after the first of an anchor is a '<', so nothing matched so far can begin another one */
    f->head_matched = c == '<';
    return 0;
}

/* Runs the head matcher over data[0..len). Returns how many bytes it consumed: up to and including the byte that
 * completes an anchor (its length in *anchor_len), or all of them (*anchor_len = 0). */
static size_t paywall_filter_head_scan(paywall_filter *f, const char *data, size_t len, size_t *anchor_len)
{
    size_t i = 0, n;

    while (i < len) {
        if (f->head_matched == 0) {
            const char *lt = memchr(data + i, '<', len - i);

            if (lt == NULL) {
                break;
            }
            i = (size_t)(lt - data);
        }
        n = paywall_filter_head_step(f, (unsigned char)data[i++]);
        if (n > 0) {
            *anchor_len = n;
            return i;
        }
    }
    *anchor_len = 0;
    return len;
}

/* Runs the marker matcher over data[0..len). 1 with *end just after the marker's last byte, or 0. */
static int paywall_filter_marker_scan(paywall_filter *f, const char *data, size_t len, size_t *end)
{
    const unsigned char *marker = (const unsigned char *)f->config.marker;
    size_t k = f->marker_matched, i = 0;

    while (i < len) {
        unsigned char c;

        if (k == 0) {
            const char *first = memchr(data + i, marker[0], len - i);

            if (first == NULL) {
                break;
            }
            i = (size_t)(first - data);
        }
        c = (unsigned char)data[i++];
        while (k > 0 && marker[k] != c) {
            k = f->marker_fail[k - 1];
        }
        if (marker[k] == c) {
            k++;
        }
        if (k == f->config.marker_len) {
            f->marker_matched = 0;
            *end = i;
            return 1;
        }
    }
    f->marker_matched = k;
    return 0;
}

/* Bytes [from, to) of the pending bytes followed by the input. */
static int paywall_filter_emit_joined(paywall_filter *f, paywall_filter_emit_fn emit, void *ctx, const char *in,
                                      size_t from, size_t to)
{
    size_t p = f->pending_len;

    if (from < p && paywall_filter_emit(f, emit, ctx, f->pending + from, (to < p ? to : p) - from) != 0) {
        return -1;
    }
    if (to > p) {
        from = from > p ? from - p : 0;
        return paywall_filter_emit(f, emit, ctx, in + from, to - p - from);
    }
    return 0;
}

static int paywall_filter_feed_stream(paywall_filter *f, const char *in, size_t len, paywall_filter_emit_fn emit,
                                      void *ctx)
{
    size_t used, anchor_len, keep, total = f->pending_len + len;

    if (f->inserted) {
        return paywall_filter_emit(f, emit, ctx, in, len);
    }
    used = paywall_filter_head_scan(f, in, len, &anchor_len);
    if (anchor_len > 0) {
        /* the anchor is the last anchor_len bytes of pending + in[0..used) */
        size_t start = f->pending_len + used - anchor_len;

        if (paywall_filter_emit_joined(f, emit, ctx, in, 0, start) != 0 ||
            paywall_filter_emit(f, emit, ctx, f->config.head_insert, f->config.head_insert_len) != 0) {
            return -1;
        }
        f->inserted = 1;
        if (paywall_filter_emit_joined(f, emit, ctx, in, start, total) != 0) {
            return -1;
        }
        f->pending_len = 0;
        return 0;
    }
    /* what the matcher has matched is all that may still become the anchor: hold exactly that */
    keep = f->head_matched;
    if (paywall_filter_emit_joined(f, emit, ctx, in, 0, total - keep) != 0) {
        return -1;
    }
    if (keep > len) {
        memmove(f->pending, f->pending + f->pending_len - (keep - len), keep - len);
        memcpy(f->pending + (keep - len), in, len);
    } else {
        memcpy(f->pending, in + len - keep, keep);
    }
    f->pending_len = keep;
    return 0;
}

/* The insert, unless it was placed, then the call to action: how every cut ends. */
static int paywall_filter_emit_cta(paywall_filter *f, paywall_filter_emit_fn emit, void *ctx)
{
    if (!f->inserted) {
        f->inserted = 1;
        if (paywall_filter_emit(f, emit, ctx, f->config.head_insert, f->config.head_insert_len) != 0) {
            return -1;
        }
    }
    return paywall_filter_emit(f, emit, ctx, f->config.cta, f->config.cta_len);
}

static int paywall_filter_feed_hold(paywall_filter *f, const char *in, size_t len, paywall_filter_emit_fn emit,
                                    void *ctx)
{
    size_t start = f->held, room = f->config.hold_size - f->held, take = len < room ? len : room;
    size_t marker_end = 0, scan, used, anchor_len;
    int found;
    const char *hold = f->config.hold;

    memcpy(f->config.hold + start, in, take);
    f->held += take;
    found = paywall_filter_marker_scan(f, hold + start, take, &marker_end);
    if (!f->inserted && f->insert_at == PAYWALL_FILTER_NOWHERE) {
        /* up to the marker's last byte: an anchor ending on that same byte still counts as coming first */
        scan = found ? marker_end : take;
        used = paywall_filter_head_scan(f, hold + start, scan, &anchor_len);
        if (anchor_len > 0) {
            f->insert_at = start + used - anchor_len;
        }
    }
    if (found) {
        size_t cut = start + marker_end - f->config.marker_len;

        f->status = PAYWALL_FILTER_CUT;
        /* an anchor inside the marker is never emitted: the insert then goes with the call to action */
        if (f->insert_at != PAYWALL_FILTER_NOWHERE && f->insert_at <= cut) {
            if (paywall_filter_emit(f, emit, ctx, hold, f->insert_at) != 0 ||
                paywall_filter_emit(f, emit, ctx, f->config.head_insert, f->config.head_insert_len) != 0) {
                return -1;
            }
            f->inserted = 1;
            if (paywall_filter_emit(f, emit, ctx, hold + f->insert_at, cut - f->insert_at) != 0) {
                return -1;
            }
        } else if (paywall_filter_emit(f, emit, ctx, hold, cut) != 0) {
            return -1;
        }
        return paywall_filter_emit_cta(f, emit, ctx);
    }
    if (take < len) {
        f->status = PAYWALL_FILTER_TOO_LONG;
        return paywall_filter_emit_cta(f, emit, ctx);
    }
    return 0;
}

int paywall_filter_feed(paywall_filter *f, const char *in, size_t len, paywall_filter_emit_fn emit, void *ctx)
{
    if (f->failed || f->finished) {
        return -1;
    }
    if (f->status != PAYWALL_FILTER_OPEN || len == 0) {
        return 0;
    }
    if (f->config.marker_len > 0) {
        return paywall_filter_feed_hold(f, in, len, emit, ctx);
    }
    return paywall_filter_feed_stream(f, in, len, emit, ctx);
}

int paywall_filter_finish(paywall_filter *f, paywall_filter_emit_fn emit, void *ctx)
{
    if (f->failed || f->finished) {
        return -1;
    }
    f->finished = 1;
    if (f->config.marker_len > 0) {
        if (f->status != PAYWALL_FILTER_OPEN) {
            return 0;
        }
        f->status = PAYWALL_FILTER_NO_MARKER;
        return paywall_filter_emit_cta(f, emit, ctx);
    }
    if (paywall_filter_emit(f, emit, ctx, f->pending, f->pending_len) != 0) {
        return -1;
    }
    f->pending_len = 0;
    if (!f->inserted) {
        f->inserted = 1;
        return paywall_filter_emit(f, emit, ctx, f->config.head_insert, f->config.head_insert_len);
    }
    return 0;
}

int paywall_filter_done(const paywall_filter *f)
{
    return f->status != PAYWALL_FILTER_OPEN;
}

paywall_filter_status paywall_filter_get_status(const paywall_filter *f)
{
    return f->status;
}

const char *paywall_filter_status_name(paywall_filter_status status)
{
    switch (status) {
    case PAYWALL_FILTER_OPEN:
        return "open";
    case PAYWALL_FILTER_CUT:
        return "cut";
    case PAYWALL_FILTER_NO_MARKER:
        return "no marker";
    case PAYWALL_FILTER_TOO_LONG:
        return "too long";
    }
    return "unknown";
}

/* ------------------------------------------------------------------------------------------ structured data */

/* Length of the UTF-8 sequence at s (at most len bytes) that is a character the selector may hold, or 0: malformed,
 * overlong, a surrogate, beyond U+10FFFF, or a C0, DEL or C1 control. */
static size_t paywall_structured_char(const unsigned char *s, size_t len)
{
    unsigned char c = s[0];
    unsigned char lo = 0x80, hi = 0xbf;
    size_t n, i;

    if (c < 0x80) {
        return c >= 0x20 && c != 0x7f ? 1 : 0;
    }
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
        if (c == 0xc2) {
            lo = 0xa0; /* U+0080 to U+009F are the C1 controls */
        }
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        if (c == 0xe0) {
            lo = 0xa0;
        } else if (c == 0xed) {
            hi = 0x9f;
        }
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        if (c == 0xf0) {
            lo = 0x90;
        } else if (c == 0xf4) {
            hi = 0x8f;
        }
    } else {
        return 0;
    }
    if (len < n || s[1] < lo || s[1] > hi) {
        return 0;
    }
    for (i = 2; i < n; i++) {
        if (s[i] < 0x80 || s[i] > 0xbf) {
            return 0;
        }
    }
    return n;
}

char *paywall_structured_data(const char *selector)
{
    static const char head[] = "<script type=\"application/ld+json\">{\"@context\":\"https://schema.org\",\"@type\":"
                               "\"WebPage\",\"isAccessibleForFree\":false,\"hasPart\":{\"@type\":\"WebPageElement\","
                               "\"isAccessibleForFree\":false,\"cssSelector\":\"";
    static const char tail[] = "\"}}</script>";
    const unsigned char *s = (const unsigned char *)selector;
    size_t len, i, n;
    char *out, *p;

    if (selector == NULL || (len = strlen(selector)) == 0 || len > PAYWALL_STRUCTURED_DATA_MAX) {
        return NULL;
    }
    for (i = 0; i < len; i += n) {
        if ((n = paywall_structured_char(s + i, len - i)) == 0) {
            return NULL;
        }
    }
    /* no byte takes more than 6 ("\u003c"; U+2028's 3 bytes take 6 too) */
    out = malloc(sizeof(head) - 1 + 6 * len + sizeof(tail));
    if (out == NULL) {
        return NULL;
    }
    p = out;
    memcpy(p, head, sizeof(head) - 1);
    p += sizeof(head) - 1;
    for (i = 0; i < len; i++) {
        if (s[i] == '"' || s[i] == '\\') {
            *p++ = '\\';
            *p++ = (char)s[i];
        } else if (s[i] == '<' || s[i] == '>' || s[i] == '&') {
            p += sprintf(p, "\\u%04x", s[i]);
        } else if (s[i] == 0xe2 && s[i + 1] == 0x80 && (s[i + 2] == 0xa8 || s[i + 2] == 0xa9)) {
            /* line and paragraph separators end a line in older JavaScript: out of the way of any script parser */
            p += sprintf(p, "\\u%s", s[i + 2] == 0xa8 ? "2028" : "2029");
            i += 2;
        } else {
            *p++ = (char)s[i];
        }
    }
    memcpy(p, tail, sizeof(tail));
    return out;
}
