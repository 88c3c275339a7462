/* The banner's streaming injection into a page (see promo.h), shared by the Apache output filter and the nginx body
 * filter.
 *
 * One matcher per placement sees every byte once, so where the server splits the body into buffers cannot change
 * what it finds; the bytes it has matched so far are exactly the bytes held back:
 *   - after-body: "<body" (ASCII case-insensitive) and a delimiter, then the rest of the start tag up to the '>' that
 *     ends it. Inside the tag the states are those of HTML's tokenizer that decide where a tag ends (before and in
 *     an attribute name, before a value, in a double-quoted, single-quoted or unquoted value), so a '>' inside a
 *     quoted value does not end it, nor does a quote that does not open a value start one. "<body" has one '<' only,
 *     so after a mismatch the only partial match left is the mismatching byte itself when it is a '<'. The tag is
 *     held whole, which is why it is bounded: a tag of more than PROMO_INJECT_PENDING_MAX bytes gets no banner;
 *   - before-body-end: "</body" (any case) and a delimiter, held at most 6 bytes;
 *   - marker: any bytes, with Knuth-Morris-Pratt's failure function, which keeps the longest partial match across
 *     overlaps such as "<!--<!--promo-->". What is held is then always a prefix of the marker, so it is emitted from
 *     the marker itself, and the pending buffer, unused, holds the failure function instead.
 * Like a browser, the matchers do not know about comments or scripts: "<body>" inside a comment before the real one
 * would take the banner, which only a page that is already odd can do. */
#include "promo.h"

#include <string.h>
#include <strings.h>

#define PROMO_MARKER_MAX 255

enum {
    PROMO_INJECT_SCAN,         /* looking for the anchor; matched: how many of its bytes have come */
    PROMO_INJECT_BEFORE_NAME,  /* in the <body tag, before an attribute's name (or after a '/') */
    PROMO_INJECT_NAME,         /* in or after an attribute's name */
    PROMO_INJECT_BEFORE_VALUE, /* after its '=' */
    PROMO_INJECT_DOUBLE,       /* in a "value" */
    PROMO_INJECT_SINGLE,       /* in a 'value' */
    PROMO_INJECT_UNQUOTED,     /* in a value without quotes */
    PROMO_INJECT_PASS,         /* inserted, given up, or nothing to look for: everything passes as given */
    PROMO_INJECT_FINISHED,
};

enum { PROMO_SCAN_MORE, PROMO_SCAN_FOUND, PROMO_SCAN_GIVE_UP };

static const char promo_body_open[] = "<body";
static const char promo_body_close[] = "</body";

const char *promo_parse_placement(const char *kind, const char *marker, promo_placement *out)
{
    size_t len;

    if (kind == NULL || out == NULL) {
        return "must be after-body, before-body-end or marker TEXT";
    }
    if (strcasecmp(kind, "after-body") == 0 || strcasecmp(kind, "before-body-end") == 0) {
        if (marker != NULL) {
            return "takes no text after after-body or before-body-end";
        }
        out->kind = strcasecmp(kind, "after-body") == 0 ? PROMO_PLACE_AFTER_BODY : PROMO_PLACE_BEFORE_BODY_END;
        out->marker = NULL;
        return NULL;
    }
    if (strcasecmp(kind, "marker") == 0) {
        if (marker == NULL || (len = strlen(marker)) == 0) {
            return "marker needs the text it replaces";
        }
        if (len > PROMO_MARKER_MAX) {
            return "the marker is longer than 255 bytes";
        }
        out->kind = PROMO_PLACE_MARKER;
        out->marker = marker;
        return NULL;
    }
    return "must be after-body, before-body-end or marker TEXT";
}

static size_t promo_marker_len(const promo_inject *j)
{
    return j->placement.marker != NULL ? strlen(j->placement.marker) : 0;
}

/* The failure function lives in pending (see above): fail[i] is the length of the longest proper prefix of
 * marker[0..i] that is also its suffix. */
static void promo_marker_prepare(promo_inject *j, size_t len)
{
    const unsigned char *marker = (const unsigned char *)j->placement.marker;
    unsigned char *fail = (unsigned char *)j->pending;
    size_t i, k = 0;

    fail[0] = 0;
    for (i = 1; i < len; i++) {
        while (k > 0 && marker[i] != marker[k]) {
            k = fail[k - 1];
        }
        if (marker[i] == marker[k]) {
            k++;
        }
        fail[i] = (unsigned char)k;
    }
}

void promo_inject_init(promo_inject *inject, const promo_placement *placement, const char *block, size_t block_len)
{
    size_t len;

    memset(inject, 0, sizeof(*inject));
    inject->block = block;
    inject->block_len = block != NULL ? block_len : 0;
    inject->state = PROMO_INJECT_PASS; /* until the placement proves usable */
    if (placement == NULL) {
        return;
    }
    inject->placement = *placement;
    switch (placement->kind) {
    case PROMO_PLACE_AFTER_BODY:
    case PROMO_PLACE_BEFORE_BODY_END:
        inject->state = PROMO_INJECT_SCAN;
        break;
    case PROMO_PLACE_MARKER:
        len = promo_marker_len(inject);
        if (len > 0 && len <= PROMO_MARKER_MAX) {
            promo_marker_prepare(inject, len);
            inject->state = PROMO_INJECT_SCAN;
        }
        break;
    }
}

static int promo_is_space(unsigned char c)
{
    /* HTML's whitespace; '\r' too, which the tokenizer sees as '\n' */
    return c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r';
}

static unsigned char promo_lower(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c + ('a' - 'A')) : c;
}

/* One byte of "<body" or "</body" and its delimiter. */
static int promo_name_step(promo_inject *j, unsigned char c, const char *name, size_t name_len)
{
    size_t k = j->matched;

    if (k < name_len && promo_lower(c) == (unsigned char)name[k]) {
        j->matched = k + 1;
        return PROMO_SCAN_MORE;
    }
    if (k == name_len && (promo_is_space(c) || c == '/' || c == '>')) {
        j->matched = k + 1;
        return PROMO_SCAN_FOUND;
    }
    /* no byte after the first of the name is a '<': nothing matched so far can begin another one */
    j->matched = c == '<';
    return PROMO_SCAN_MORE;
}

/* One byte inside the <body tag, from the delimiter after its name on. */
static int promo_tag_step(promo_inject *j, unsigned char c)
{
    switch (j->state) {
    case PROMO_INJECT_BEFORE_NAME:
        if (c == '>') {
            return PROMO_SCAN_FOUND;
        }
        if (!promo_is_space(c) && c != '/') {
            j->state = PROMO_INJECT_NAME; /* even a '=' or a quote, which only start a name here */
        }
        break;
    case PROMO_INJECT_NAME:
        if (c == '>') {
            return PROMO_SCAN_FOUND;
        }
        if (c == '=') {
            j->state = PROMO_INJECT_BEFORE_VALUE;
        } else if (c == '/') {
            j->state = PROMO_INJECT_BEFORE_NAME;
        }
        break;
    case PROMO_INJECT_BEFORE_VALUE:
        if (c == '>') {
            return PROMO_SCAN_FOUND;
        }
        if (c == '"') {
            j->state = PROMO_INJECT_DOUBLE;
        } else if (c == '\'') {
            j->state = PROMO_INJECT_SINGLE;
        } else if (!promo_is_space(c)) {
            j->state = PROMO_INJECT_UNQUOTED;
        }
        break;
    case PROMO_INJECT_DOUBLE:
        if (c == '"') {
            j->state = PROMO_INJECT_BEFORE_NAME;
        }
        break;
    case PROMO_INJECT_SINGLE:
        if (c == '\'') {
            j->state = PROMO_INJECT_BEFORE_NAME;
        }
        break;
    case PROMO_INJECT_UNQUOTED:
        if (c == '>') {
            return PROMO_SCAN_FOUND;
        }
        if (promo_is_space(c)) {
            j->state = PROMO_INJECT_BEFORE_NAME;
        }
        break;
    }
    return PROMO_SCAN_MORE;
}

static int promo_after_body_step(promo_inject *j, unsigned char c)
{
    int result;

    if (j->state == PROMO_INJECT_SCAN) {
        result = promo_name_step(j, c, promo_body_open, sizeof(promo_body_open) - 1);
        if (result == PROMO_SCAN_FOUND && c != '>') {
            j->state = PROMO_INJECT_BEFORE_NAME; /* a '/' included: it only matters right before the '>' */
            result = PROMO_SCAN_MORE;
        }
        return result;
    }
    j->matched++;
    result = promo_tag_step(j, c);
    /* the tag so far fills the buffer: with its '>' it would be longer than PROMO_INJECT_PENDING_MAX */
    if (result == PROMO_SCAN_MORE && j->matched >= PROMO_INJECT_PENDING_MAX) {
        return PROMO_SCAN_GIVE_UP;
    }
    return result;
}

static int promo_marker_step(promo_inject *j, unsigned char c, size_t marker_len)
{
    const unsigned char *marker = (const unsigned char *)j->placement.marker;
    const unsigned char *fail = (const unsigned char *)j->pending;
    size_t k = j->matched;

    while (k > 0 && marker[k] != c) {
        k = fail[k - 1];
    }
    if (marker[k] == c) {
        k++;
    }
    j->matched = k;
    if (k == marker_len) {
        return PROMO_SCAN_FOUND;
    }
    return PROMO_SCAN_MORE;
}

/* Runs the placement's matcher over data[0..len). Returns how many bytes it consumed: up to and including the byte
 * that completed the anchor or made it give up (*result says which), or all of them. */
static size_t promo_inject_scan(promo_inject *j, const char *data, size_t len, size_t marker_len, int *result)
{
    size_t i = 0;
    int r = PROMO_SCAN_MORE;

    while (i < len) {
        if (j->state == PROMO_INJECT_SCAN && j->matched == 0) {
            /* the common case, most of every page: nothing can start before the anchor's first byte */
            unsigned char first = j->placement.kind == PROMO_PLACE_MARKER ? (unsigned char)j->placement.marker[0] : '<';
            const char *next = memchr(data + i, first, len - i);

            if (next == NULL) {
                i = len;
                break;
            }
            i = (size_t)(next - data);
        }
        switch (j->placement.kind) {
        case PROMO_PLACE_AFTER_BODY:
            r = promo_after_body_step(j, (unsigned char)data[i]);
            break;
        case PROMO_PLACE_BEFORE_BODY_END:
            r = promo_name_step(j, (unsigned char)data[i], promo_body_close, sizeof(promo_body_close) - 1);
            break;
        case PROMO_PLACE_MARKER:
            r = promo_marker_step(j, (unsigned char)data[i], marker_len);
            break;
        }
        i++;
        if (r != PROMO_SCAN_MORE) {
            break;
        }
    }
    *result = r;
    return i;
}

static int promo_inject_emit(promo_inject *j, promo_emit_fn emit, void *ctx, const char *data, size_t len)
{
    if (len == 0) {
        return 0;
    }
    if (emit(ctx, data, len) != 0) {
        j->failed = 1;
        return -1;
    }
    return 0;
}

/* Bytes [from, to) of the held bytes followed by the input; the held bytes of a marker are the marker's own. */
static int promo_inject_emit_joined(promo_inject *j, promo_emit_fn emit, void *ctx, const char *in, size_t from,
                                    size_t to)
{
    const char *held = j->placement.kind == PROMO_PLACE_MARKER ? j->placement.marker : j->pending;
    size_t p = j->pending_len;

    if (from < p && promo_inject_emit(j, emit, ctx, held + from, (to < p ? to : p) - from) != 0) {
        return -1;
    }
    if (to > p) {
        from = from > p ? from - p : 0;
        return promo_inject_emit(j, emit, ctx, in + from, to - p - from);
    }
    return 0;
}

int promo_inject_feed(promo_inject *inject, const char *in, size_t len, promo_emit_fn emit, void *ctx)
{
    promo_inject *j = inject;
    size_t marker_len = 0, used, end, at, resume, keep, total;
    int result;

    if (j->failed || j->state == PROMO_INJECT_FINISHED) {
        return -1;
    }
    if (len == 0) {
        return 0;
    }
    if (j->state == PROMO_INJECT_PASS) {
        return promo_inject_emit(j, emit, ctx, in, len);
    }
    if (j->placement.kind == PROMO_PLACE_MARKER) {
        marker_len = promo_marker_len(j);
    }
    total = j->pending_len + len;
    used = promo_inject_scan(j, in, len, marker_len, &result);
    if (result == PROMO_SCAN_FOUND) {
        end = j->pending_len + used; /* just after the anchor's last byte, in held bytes + input */
        switch (j->placement.kind) {
        case PROMO_PLACE_AFTER_BODY:
            at = resume = end;
            break;
        case PROMO_PLACE_BEFORE_BODY_END:
            at = resume = end - j->matched;
            break;
        default:
            at = end - marker_len;
            resume = end;
            break;
        }
        j->state = PROMO_INJECT_PASS;
        j->inserted = 1;
        if (promo_inject_emit_joined(j, emit, ctx, in, 0, at) != 0 ||
            promo_inject_emit(j, emit, ctx, j->block, j->block_len) != 0 ||
            promo_inject_emit_joined(j, emit, ctx, in, resume, total) != 0) {
            return -1;
        }
        j->pending_len = 0;
        j->matched = 0;
        return 0;
    }
    if (result == PROMO_SCAN_GIVE_UP) {
        j->state = PROMO_INJECT_PASS;
        if (promo_inject_emit_joined(j, emit, ctx, in, 0, total) != 0) {
            return -1;
        }
        j->pending_len = 0;
        j->matched = 0;
        return 0;
    }
    /* what the matcher has matched is all that may still become the anchor: hold exactly that */
    keep = j->matched;
    if (promo_inject_emit_joined(j, emit, ctx, in, 0, total - keep) != 0) {
        return -1;
    }
    if (j->placement.kind != PROMO_PLACE_MARKER) {
        if (keep > len) {
            memmove(j->pending, j->pending + j->pending_len - (keep - len), keep - len);
            memcpy(j->pending + (keep - len), in, len);
        } else {
            memcpy(j->pending, in + len - keep, keep);
        }
    }
    j->pending_len = keep;
    return 0;
}

int promo_inject_finish(promo_inject *inject, promo_emit_fn emit, void *ctx)
{
    promo_inject *j = inject;

    if (j->failed || j->state == PROMO_INJECT_FINISHED) {
        return -1;
    }
    /* an anchor cut off by the end of the page never completes: what was held is page, as it came */
    j->state = PROMO_INJECT_FINISHED;
    if (promo_inject_emit_joined(j, emit, ctx, NULL, 0, j->pending_len) != 0) {
        return -1;
    }
    j->pending_len = 0;
    j->matched = 0;
    return 0;
}

int promo_inject_inserted(const promo_inject *inject)
{
    return inject->inserted;
}
