/* libFuzzer target for mod_promo/promo_inject.c (and the banner of promo_banner.c, which is what it injects).
 *
 * Input: four control bytes, then the page. Byte 0 chooses: bits 0-1 the placement (after-body, before-body-end, a
 * marker taken from the bytes after the control bytes, a marker sliced from the page itself so that it is found),
 * bits 2-3 the block (a plain one, one that itself holds every anchor and the marker, which must never be matched,
 * the banner built from the page's first bytes, an empty one), bit 4 an emit callback that fails. Byte 1 gives the
 * marker's length, byte 2 the slice's offset, byte 3 seeds the split points.
 *
 * The page is fed whole, byte by byte, in two pieces and in random pieces (empty ones among them); every output must
 * equal what a reference written another way predicts (naive searches over the whole page, the <body> tag read
 * attribute by attribute). Besides: the output less the block is the page (less the marker), the block comes at most
 * once, and no more is held back at any time than the anchor can need. The banner's markup is checked too: what
 * the page's bytes are put in never adds or removes a '<', '>' or quote.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "promo.h"

#include "fuzz.h"

#define FUZZ_BLOCK    "<aside class=\"wm-promo wm-promo-1\">B</aside>"
#define FUZZ_TEXT_MAX 200

typedef struct {
    char *data;
    size_t len;
    size_t cap;
    size_t calls;
    size_t fail_at; /* 0: never */
} fuzz_out;

/* What the reference predicts. */
typedef struct {
    int found;
    size_t at;   /* where the block goes, in the page */
    size_t skip; /* bytes of the page it replaces (the marker) */
    size_t end;  /* the page's bytes needed to see the anchor complete */
} fuzz_expect;

typedef struct {
    promo_placement placement;
    size_t marker_len;
    const char *block;
    size_t block_len;
    const char *doc;
    size_t len;
} fuzz_case;

static void fuzz_append(fuzz_out *out, const char *data, size_t len)
{
    if (out->len + len > out->cap) {
        out->cap = (out->len + len) * 2 + 64;
        out->data = realloc(out->data, out->cap);
        FUZZ_CHECK(out->data != NULL);
    }
    if (len > 0) {
        memcpy(out->data + out->len, data, len);
    }
    out->len += len;
}

static int fuzz_emit(void *ctx, const char *data, size_t len)
{
    fuzz_out *out = ctx;

    FUZZ_CHECK(len > 0 && data != NULL);
    if (++out->calls == out->fail_at) {
        return -1;
    }
    fuzz_append(out, data, len);
    return 0;
}

/* ------------------------------------------------------------------------------------------------- reference */

static int fuzz_ieq(const char *s, size_t len, const char *lower)
{
    size_t i;

    for (i = 0; i < len; i++) {
        char c = s[i] >= 'A' && s[i] <= 'Z' ? (char)(s[i] + 32) : s[i];

        if (c != lower[i]) {
            return 0;
        }
    }
    return 1;
}

static int fuzz_space(char c)
{
    return c != '\0' && memchr(" \t\n\f\r", c, 5) != NULL;
}

/* Where the start tag that begins at doc[p] with "<body" and a delimiter ends: the index of its '>', or len if it
 * does not end. Read attribute by attribute, as HTML's tokenizer reads them. */
static size_t fuzz_tag_end(const char *doc, size_t len, size_t p)
{
    p += 5; /* the delimiter: whitespace, '/' or '>' */
    for (;;) {
        while (p < len && (fuzz_space(doc[p]) || doc[p] == '/')) {
            p++;
        }
        if (p >= len || doc[p] == '>') {
            return p;
        }
        /* a name: its first character may be anything, even '=' or a quote */
        p++;
        while (p < len && doc[p] != '=' && doc[p] != '>' && doc[p] != '/') {
            if (fuzz_space(doc[p])) {
                /* whitespace after a name: an '=' may still follow, or a new name */
                while (p < len && fuzz_space(doc[p])) {
                    p++;
                }
                if (p < len && doc[p] != '=' && doc[p] != '>' && doc[p] != '/') {
                    p++; /* the next name's first character */
                }
                continue;
            }
            p++;
        }
        if (p >= len || doc[p] == '>') {
            return p;
        }
        if (doc[p] == '/') {
            continue;
        }
        /* '=' and a value */
        p++;
        while (p < len && fuzz_space(doc[p])) {
            p++;
        }
        if (p >= len || doc[p] == '>') {
            return p;
        }
        if (doc[p] == '"' || doc[p] == '\'') {
            const char *close = memchr(doc + p + 1, doc[p], len - p - 1);

            if (close == NULL) {
                return len;
            }
            p = (size_t)(close - doc) + 1;
            continue;
        }
        while (p < len && !fuzz_space(doc[p]) && doc[p] != '>') {
            p++;
        }
    }
}

static fuzz_expect fuzz_found(size_t at, size_t skip, size_t end)
{
    fuzz_expect e;

    e.found = 1;
    e.at = at;
    e.skip = skip;
    e.end = end;
    return e;
}

static fuzz_expect fuzz_reference(const fuzz_case *c)
{
    static const fuzz_expect none = {0, 0, 0, 0};
    const char *doc = c->doc;
    size_t len = c->len, p, end;

    switch (c->placement.kind) {
    case PROMO_PLACE_AFTER_BODY:
        for (p = 0; p + 6 <= len; p++) {
            if (fuzz_ieq(doc + p, 5, "<body") && (fuzz_space(doc[p + 5]) || doc[p + 5] == '/' || doc[p + 5] == '>')) {
                /* the first one decides: unfinished, or too long to hold, and there is no banner at all */
                end = fuzz_tag_end(doc, len, p);
                if (end >= len || end + 1 - p > PROMO_INJECT_PENDING_MAX) {
                    return none;
                }
                return fuzz_found(end + 1, 0, end + 1);
            }
        }
        return none;
    case PROMO_PLACE_BEFORE_BODY_END:
        for (p = 0; p + 7 <= len; p++) {
            if (fuzz_ieq(doc + p, 6, "</body") && (fuzz_space(doc[p + 6]) || doc[p + 6] == '/' || doc[p + 6] == '>')) {
                return fuzz_found(p, 0, p + 7);
            }
        }
        return none;
    case PROMO_PLACE_MARKER:
        for (p = 0; p + c->marker_len <= len; p++) {
            if (memcmp(doc + p, c->placement.marker, c->marker_len) == 0) {
                return fuzz_found(p, c->marker_len, p + c->marker_len);
            }
        }
        return none;
    }
    return none;
}

/* ------------------------------------------------------------------------------------------------------- runs */

/* The most bytes the matcher may hold back: what the anchor can need before it is complete. */
static size_t fuzz_hold_max(const fuzz_case *c)
{
    switch (c->placement.kind) {
    case PROMO_PLACE_AFTER_BODY:
        return PROMO_INJECT_PENDING_MAX - 1;
    case PROMO_PLACE_BEFORE_BODY_END:
        return 6;
    case PROMO_PLACE_MARKER:
        return c->marker_len - 1;
    }
    return 0;
}

/* Feeds the page in the given pieces, checking after each what may have come out; returns whether it inserted. */
static int fuzz_run(const fuzz_case *c, const size_t *pieces, size_t npieces, const fuzz_expect *e, fuzz_out *out)
{
    promo_inject j;
    size_t i, fed = 0;

    promo_inject_init(&j, &c->placement, c->block, c->block_len);
    for (i = 0; i < npieces; i++) {
        /* each piece alone on the heap, so that a read beyond it is caught */
        char *piece = malloc(pieces[i] + 1);

        FUZZ_CHECK(piece != NULL);
        memcpy(piece, c->doc + fed, pieces[i]);
        FUZZ_CHECK(promo_inject_feed(&j, piece, pieces[i], fuzz_emit, out) == 0);
        free(piece);
        fed += pieces[i];
        if (e->found && fed >= e->end) {
            /* once the anchor has come, all of it has gone out, and the block with it */
            FUZZ_CHECK(promo_inject_inserted(&j));
            FUZZ_CHECK(out->len == fed - e->skip + c->block_len);
        } else {
            FUZZ_CHECK(!promo_inject_inserted(&j));
            FUZZ_CHECK(out->len <= fed && fed - out->len <= fuzz_hold_max(c));
        }
    }
    FUZZ_CHECK(fed == c->len);
    FUZZ_CHECK(promo_inject_finish(&j, fuzz_emit, out) == 0);
    FUZZ_CHECK(promo_inject_finish(&j, fuzz_emit, out) == -1);
    FUZZ_CHECK(promo_inject_feed(&j, "x", 1, fuzz_emit, out) == -1);
    return promo_inject_inserted(&j);
}

static void fuzz_check_run(const fuzz_case *c, const size_t *pieces, size_t npieces, const fuzz_expect *e,
                           const fuzz_out *expected)
{
    fuzz_out out = {0};

    FUZZ_CHECK(fuzz_run(c, pieces, npieces, e, &out) == e->found);
    FUZZ_CHECK(out.len == expected->len);
    FUZZ_CHECK(out.len == 0 || memcmp(out.data, expected->data, out.len) == 0);
    free(out.data);
}

/* The properties that hold whatever the reference says: the output is the page with the block in one place, in
 * place of the marker for a marker. */
static void fuzz_check_shape(const fuzz_case *c, const fuzz_out *out, int inserted)
{
    size_t skip = c->placement.kind == PROMO_PLACE_MARKER ? c->marker_len : 0;
    size_t prefix = 0, suffix = 0, p;

    if (!inserted) {
        FUZZ_CHECK(out->len == c->len && (c->len == 0 || memcmp(out->data, c->doc, c->len) == 0));
        return;
    }
    FUZZ_CHECK(c->len >= skip && out->len == c->len - skip + c->block_len);
    while (prefix < out->len && prefix < c->len && out->data[prefix] == c->doc[prefix]) {
        prefix++;
    }
    while (suffix < out->len && suffix < c->len && out->data[out->len - 1 - suffix] == c->doc[c->len - 1 - suffix]) {
        suffix++;
    }
    /* some p with out = doc[0..p) block doc[p + skip..len) */
    for (p = 0; p + skip <= c->len; p++) {
        if (p <= prefix && c->len - p - skip <= suffix &&
            (c->block_len == 0 || memcmp(out->data + p, c->block, c->block_len) == 0) &&
            (skip == 0 || memcmp(c->doc + p, c->placement.marker, skip) == 0)) {
            return;
        }
    }
    FUZZ_CHECK(!"the output is not the page with the block inserted once");
}

static uint32_t fuzz_next(uint32_t *state)
{
    *state ^= *state << 13;
    *state ^= *state >> 17;
    *state ^= *state << 5;
    return *state;
}

/* Feeds the page in two halves and finishes, the emit call fail_at (1 = the first; 0 = none) failing. Returns the
 * number of emit calls; when one failed, checks that the call that saw it and every later one returned -1. */
static size_t fuzz_run_halves(const fuzz_case *c, size_t fail_at)
{
    promo_inject j;
    fuzz_out out = {0};
    size_t half = c->len / 2;
    int rc;

    out.fail_at = fail_at;
    promo_inject_init(&j, &c->placement, c->block, c->block_len);
    rc = promo_inject_feed(&j, c->doc, half, fuzz_emit, &out);
    if (rc == 0) {
        rc = promo_inject_feed(&j, c->doc + half, c->len - half, fuzz_emit, &out);
    }
    if (rc == 0) {
        rc = promo_inject_finish(&j, fuzz_emit, &out);
    }
    FUZZ_CHECK(rc == (fail_at > 0 && out.calls >= fail_at ? -1 : 0));
    if (rc == -1) {
        FUZZ_CHECK(out.calls == fail_at);
        FUZZ_CHECK(promo_inject_feed(&j, c->doc, c->len, fuzz_emit, &out) == -1);
        FUZZ_CHECK(promo_inject_finish(&j, fuzz_emit, &out) == -1);
        FUZZ_CHECK(out.calls == fail_at);
    }
    free(out.data);
    return out.calls;
}

/* ------------------------------------------------------------------------------------------------ the banner */

static void fuzz_count_markup(const char *html, size_t len, size_t counts[4])
{
    static const char markup[4] = {'<', '>', '"', '\''};
    size_t i;

    memset(counts, 0, 4 * sizeof(counts[0]));
    for (i = 0; i < len; i++) {
        const char *hit = memchr(markup, html[i], sizeof(markup));

        if (hit != NULL) {
            counts[hit - markup]++;
        }
    }
}

/* The banner with text in every field: its markup must be that of the same banner with harmless text. Returns it
 * (free it), or NULL when there is no text to try. */
static char *fuzz_banner(const char *data, size_t size, size_t *len)
{
    char text[FUZZ_TEXT_MAX + 1], url[FUZZ_TEXT_MAX + 2];
    size_t n = size < FUZZ_TEXT_MAX ? size : FUZZ_TEXT_MAX, plain_len, counts[4], plain_counts[4];
    promo_promotion p;
    char *html, *plain;

    memcpy(text, data, n);
    text[n] = '\0';
    snprintf(url, sizeof(url), "/%s", text);
    memset(&p, 0, sizeof(p));
    p.id = 42;
    p.name = p.headline = p.text = p.cta_label = p.image_alt = text;
    p.cta_url = p.image_wide = p.image_narrow = url;
    strcpy(p.bg_color, "#000000");
    memcpy(p.fg_color, text, n < 7 ? n : 7); /* a color that is not one is replaced */
    p.dismiss_days = n > 0 ? (unsigned char)text[0] : 0;
    html = promo_banner_html(&p, size > 1 && data[1] & 1 ? url : NULL, len);
    FUZZ_CHECK(html != NULL && strlen(html) == *len);
    FUZZ_CHECK(strncmp(html, "<aside class=\"wm-promo wm-promo-42\"", 35) == 0);
    FUZZ_CHECK(*len >= 8 && strcmp(html + *len - 8, "</aside>") == 0);

    /* the same shape with harmless text: "x" wherever the text was, the same colors */
    p.name = p.headline = p.text = p.cta_label = p.image_alt = (char *)"x";
    p.cta_url = p.image_wide = p.image_narrow = (char *)"/x";
    plain = promo_banner_html(&p, size > 1 && data[1] & 1 ? "/x" : NULL, &plain_len);
    FUZZ_CHECK(plain != NULL);
    fuzz_count_markup(html, *len, counts);
    fuzz_count_markup(plain, plain_len, plain_counts);
    FUZZ_CHECK(memcmp(counts, plain_counts, sizeof(counts)) == 0);
    free(plain);
    return html;
}

/* ------------------------------------------------------------------------------------------------ the target */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char block[2 * 255 + 64], marker[256];
    char *banner = NULL;
    fuzz_case c;
    fuzz_expect e;
    fuzz_out expected = {0};
    size_t *pieces, npieces, i, at, mlen, banner_len = 0;
    unsigned mode;
    uint32_t seed;

    if (size < 4) {
        return 0;
    }
    mode = data[0];
    seed = 0x9e3779b9u ^ data[3];
    memset(&c, 0, sizeof(c));
    c.doc = (const char *)data + 4;
    c.len = size - 4;
    c.placement.kind = PROMO_PLACE_AFTER_BODY;

    mlen = 1 + data[1] % 24;
    switch (mode & 3) {
    case 1:
        c.placement.kind = PROMO_PLACE_BEFORE_BODY_END;
        break;
    case 2: /* the next bytes, up to a NUL: the marker is a C string */
    case 3: /* a slice of the page, found unless it holds a NUL */
        if (c.len == 0) {
            break;
        }
        {
            size_t from = (mode & 3) == 2 ? 0 : data[2] % c.len;

            mlen = mlen < c.len - from ? mlen : c.len - from;
            memcpy(marker, c.doc + from, mlen);
            marker[mlen] = '\0';
            if (strlen(marker) == 0) {
                break;
            }
            c.placement.kind = PROMO_PLACE_MARKER;
            c.placement.marker = marker;
            c.marker_len = strlen(marker);
            if ((mode & 3) == 2) {
                c.doc += mlen;
                c.len -= mlen;
            }
        }
        break;
    }

    switch ((mode >> 2) & 3) {
    case 0:
        c.block = FUZZ_BLOCK;
        c.block_len = strlen(FUZZ_BLOCK);
        break;
    case 1: {
        /* a block with everything the matchers look for in it */
        int n =
            snprintf(block, sizeof(block), "<body x='>'></BODY>%s<body>", c.placement.marker ? c.placement.marker : "");

        FUZZ_CHECK(n > 0 && (size_t)n < sizeof(block));
        c.block = block;
        c.block_len = (size_t)n;
        break;
    }
    case 2:
        banner = fuzz_banner(c.doc, c.len, &banner_len);
        c.block = banner;
        c.block_len = banner_len;
        break;
    case 3:
        c.block = NULL; /* nothing to insert: a marker still goes */
        break;
    }

    e = fuzz_reference(&c);
    if (e.found) {
        fuzz_append(&expected, c.doc, e.at);
        fuzz_append(&expected, c.block, c.block_len);
        fuzz_append(&expected, c.doc + e.at + e.skip, c.len - e.at - e.skip);
    } else {
        fuzz_append(&expected, c.doc, c.len);
    }
    pieces = malloc((c.len + 2) * sizeof(*pieces));
    FUZZ_CHECK(pieces != NULL);

    /* whole, and the shape of its output */
    {
        fuzz_out out = {0};

        pieces[0] = c.len;
        FUZZ_CHECK(fuzz_run(&c, pieces, 1, &e, &out) == e.found);
        FUZZ_CHECK(out.len == expected.len);
        FUZZ_CHECK(out.len == 0 || memcmp(out.data, expected.data, out.len) == 0);
        fuzz_check_shape(&c, &out, e.found);
        free(out.data);
    }
    /* byte by byte */
    for (i = 0; i < c.len; i++) {
        pieces[i] = 1;
    }
    fuzz_check_run(&c, pieces, c.len, &e, &expected);
    /* two pieces */
    pieces[0] = fuzz_next(&seed) % (c.len + 1);
    pieces[1] = c.len - pieces[0];
    fuzz_check_run(&c, pieces, 2, &e, &expected);
    /* random pieces, empty ones among them */
    for (npieces = 0, at = 0; at < c.len; npieces++) {
        size_t n = fuzz_next(&seed) % 12;

        n = n < c.len - at ? n : c.len - at;
        pieces[npieces] = n;
        at += n;
        if (npieces + 2 >= c.len + 2 && at < c.len) {
            pieces[npieces] += c.len - at;
            at = c.len;
        }
    }
    fuzz_check_run(&c, pieces, npieces, &e, &expected);

    if (mode & 16) {
        size_t calls = fuzz_run_halves(&c, 0);

        if (calls > 0) {
            fuzz_run_halves(&c, 1 + fuzz_next(&seed) % calls);
        }
    }
    free(pieces);
    free(expected.data);
    free(banner);
    return 0;
}
