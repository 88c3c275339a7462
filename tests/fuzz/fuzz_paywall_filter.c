/* libFuzzer target for mod_paywall/paywall_filter.c (and the structured-data and CSV helpers).
 *
 * Input: four control bytes, then the document. Byte 0 chooses the jobs: bit 0 the head insert, bit 1 the cut, bits
 * 2-3 where the marker comes from (the default, the bytes after the control bytes, a slice of the document itself so
 * that it is found, or the default with a hold buffer barely longer than the marker), bit 4 an insert that itself
 * holds the anchors and the marker (it must never be matched), bit 5 an empty call to action, bit 6 an emit callback
 * that fails, bit 7 a hold buffer one byte longer than the document rather than exactly as long. Byte 1 gives the
 * marker's length, byte 2 the slice's offset or the hold buffer's slack, byte 3 seeds the split points.
 *
 * The document is fed whole, byte by byte, in two pieces and in random pieces; every output must equal what a
 * reference written another way (naive searches over the whole document) predicts. Besides: without a cut the output
 * less the insert is the document, and nothing is held back beyond the anchor's length; with a cut the output is a
 * prefix of the document, the insert somewhere in it, and the call to action, and nothing comes out before the cut.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "paywall_filter.h"

#include "fuzz.h"

#define FUZZ_CTA "<div class=\"paywall\">Subscribe</div>"

typedef struct {
    char *data;
    size_t len;
    size_t cap;
    size_t calls;
    size_t fail_at; /* 0: never */
} fuzz_out;

typedef struct {
    paywall_filter_config config;
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

/* The first "</head" or "<body" followed by a delimiter: 1 with its start and end. */
static int fuzz_find_anchor(const char *doc, size_t len, size_t *start, size_t *end)
{
    size_t p;

    for (p = 0; p < len; p++) {
        if (p + 7 <= len && fuzz_ieq(doc + p, 6, "</head") && memchr(" \t\n\f\r/>", doc[p + 6], 7) != NULL) {
            *start = p;
            *end = p + 7;
            return 1;
        }
        if (p + 6 <= len && fuzz_ieq(doc + p, 5, "<body") && memchr(" \t\n\f\r/>", doc[p + 5], 7) != NULL) {
            *start = p;
            *end = p + 6;
            return 1;
        }
    }
    return 0;
}

static int fuzz_find_marker(const char *doc, size_t len, const char *marker, size_t mlen, size_t *at)
{
    size_t p;

    for (p = 0; p + mlen <= len; p++) {
        if (memcmp(doc + p, marker, mlen) == 0) {
            *at = p;
            return 1;
        }
    }
    return 0;
}

/* The expected output and status; *anchor_end gets where the insert is placed, in the document, (size_t)-1 if not. */
static paywall_filter_status fuzz_reference(const fuzz_case *c, fuzz_out *out, size_t *anchor_end)
{
    const paywall_filter_config *k = &c->config;
    size_t h = 0, h_end = 0, m = 0;
    int has_h = k->head_insert_len > 0 && fuzz_find_anchor(c->doc, c->len, &h, &h_end);

    *anchor_end = has_h ? h_end : (size_t)-1;
    if (k->marker_len == 0) {
        fuzz_append(out, c->doc, has_h ? h : c->len);
        fuzz_append(out, k->head_insert, k->head_insert_len);
        if (has_h) {
            fuzz_append(out, c->doc + h, c->len - h);
        }
        return PAYWALL_FILTER_OPEN;
    }
    if (!fuzz_find_marker(c->doc, c->len, k->marker, k->marker_len, &m) || m + k->marker_len > k->hold_size) {
        fuzz_append(out, k->head_insert, k->head_insert_len);
        fuzz_append(out, k->cta, k->cta_len);
        return c->len > k->hold_size ? PAYWALL_FILTER_TOO_LONG : PAYWALL_FILTER_NO_MARKER;
    }
    /* the anchor counts when it is complete by the marker's last byte, and not inside the marker */
    if (has_h && h <= m && h_end <= m + k->marker_len) {
        fuzz_append(out, c->doc, h);
        fuzz_append(out, k->head_insert, k->head_insert_len);
        fuzz_append(out, c->doc + h, m - h);
    } else {
        fuzz_append(out, c->doc, m);
        fuzz_append(out, k->head_insert, k->head_insert_len);
    }
    fuzz_append(out, k->cta, k->cta_len);
    return PAYWALL_FILTER_CUT;
}

/* ------------------------------------------------------------------------------------------------------- runs */

/* Feeds the document in the given pieces; checks what may have come out after each; returns the output. */
static void fuzz_run(const fuzz_case *c, const size_t *pieces, size_t npieces, size_t anchor_end,
                     paywall_filter_status expected, fuzz_out *out)
{
    paywall_filter f;
    char err[128];
    char *hold = NULL;
    paywall_filter_config config = c->config;
    size_t i, fed = 0;

    if (config.marker_len > 0) {
        hold = malloc(config.hold_size);
        FUZZ_CHECK(hold != NULL);
        config.hold = hold;
    }
    FUZZ_CHECK(paywall_filter_init(&f, &config, err, sizeof(err)) == 0);
    for (i = 0; i < npieces; i++) {
        /* each piece alone on the heap, so that a read beyond it is caught */
        char *piece = malloc(pieces[i] + 1);

        FUZZ_CHECK(piece != NULL);
        memcpy(piece, c->doc + fed, pieces[i]);
        FUZZ_CHECK(paywall_filter_feed(&f, piece, pieces[i], fuzz_emit, out) == 0);
        free(piece);
        fed += pieces[i];
        if (config.marker_len == 0 && config.head_insert_len > 0 && fed >= anchor_end) {
            FUZZ_CHECK(out->len == fed + config.head_insert_len);
        } else if (config.marker_len == 0) {
            FUZZ_CHECK(out->len <= fed && fed - out->len <= PAYWALL_FILTER_PENDING_MAX);
        } else if (!paywall_filter_done(&f)) {
            FUZZ_CHECK(out->len == 0);
        }
    }
    FUZZ_CHECK(fed == c->len);
    FUZZ_CHECK(paywall_filter_finish(&f, fuzz_emit, out) == 0);
    FUZZ_CHECK(paywall_filter_get_status(&f) == expected);
    FUZZ_CHECK(paywall_filter_done(&f) == (expected != PAYWALL_FILTER_OPEN));
    FUZZ_CHECK(paywall_filter_finish(&f, fuzz_emit, out) == -1);
    free(hold);
}

static void fuzz_check_run(const fuzz_case *c, const size_t *pieces, size_t npieces, size_t anchor_end,
                           paywall_filter_status status, const fuzz_out *expected)
{
    fuzz_out out = {0};

    fuzz_run(c, pieces, npieces, anchor_end, status, &out);
    FUZZ_CHECK(out.len == expected->len);
    FUZZ_CHECK(out.len == 0 || memcmp(out.data, expected->data, out.len) == 0);
    free(out.data);
}

/* Where the insert sits in out when out less the insert is text[0..text_len): (size_t)-1 if it sits nowhere. */
static size_t fuzz_insert_position(const fuzz_out *out, const char *text, size_t text_len, const char *insert,
                                   size_t insert_len)
{
    size_t prefix = 0, suffix = 0, p;

    if (out->len != text_len + insert_len) {
        return (size_t)-1;
    }
    if (text_len == 0) {
        return insert_len == 0 || memcmp(out->data, insert, insert_len) == 0 ? 0 : (size_t)-1;
    }
    if (insert_len == 0) {
        return memcmp(out->data, text, text_len) == 0 ? 0 : (size_t)-1;
    }
    while (prefix < text_len && out->data[prefix] == text[prefix]) {
        prefix++;
    }
    while (suffix < text_len && out->data[out->len - 1 - suffix] == text[text_len - 1 - suffix]) {
        suffix++;
    }
    for (p = text_len - suffix; p <= prefix; p++) {
        if (memcmp(out->data + p, insert, insert_len) == 0) {
            return p;
        }
    }
    return (size_t)-1;
}

/* The properties that hold whatever the reference says. */
static void fuzz_check_shape(const fuzz_case *c, const fuzz_out *out, paywall_filter_status status)
{
    const paywall_filter_config *k = &c->config;
    fuzz_out rest = {0};

    if (k->marker_len == 0) {
        if (k->head_insert_len == 0) {
            FUZZ_CHECK(out->len == c->len && (c->len == 0 || memcmp(out->data, c->doc, c->len) == 0));
        } else {
            FUZZ_CHECK(fuzz_insert_position(out, c->doc, c->len, k->head_insert, k->head_insert_len) != (size_t)-1);
        }
        return;
    }
    /* the call to action at the end, before it the document's first bytes with the insert among them */
    FUZZ_CHECK(out->len >= k->cta_len + k->head_insert_len);
    FUZZ_CHECK(k->cta_len == 0 || memcmp(out->data + out->len - k->cta_len, k->cta, k->cta_len) == 0);
    rest.data = out->data;
    rest.len = out->len - k->cta_len;
    FUZZ_CHECK(rest.len - k->head_insert_len <= c->len);
    FUZZ_CHECK(fuzz_insert_position(&rest, c->doc, rest.len - k->head_insert_len, k->head_insert, k->head_insert_len) !=
               (size_t)-1);
    if (status != PAYWALL_FILTER_CUT) {
        FUZZ_CHECK(rest.len == k->head_insert_len); /* nothing of the article */
    }
}

static uint32_t fuzz_next(uint32_t *state)
{
    *state ^= *state << 13;
    *state ^= *state >> 17;
    *state ^= *state << 5;
    return *state;
}

/* Feeds the document in two halves and finishes, the emit call fail_at (1 = the first; 0 = none) failing. Returns
 * the number of emit calls; when one failed, checks that the call into the filter that saw it and every later one
 * returned -1. */
static size_t fuzz_run_halves(const fuzz_case *c, size_t fail_at)
{
    paywall_filter f;
    char err[128];
    char *hold = NULL;
    paywall_filter_config config = c->config;
    fuzz_out out = {0};
    size_t half = c->len / 2;
    int rc;

    out.fail_at = fail_at;
    if (config.marker_len > 0) {
        hold = malloc(config.hold_size);
        FUZZ_CHECK(hold != NULL);
        config.hold = hold;
    }
    FUZZ_CHECK(paywall_filter_init(&f, &config, err, sizeof(err)) == 0);
    rc = paywall_filter_feed(&f, c->doc, half, fuzz_emit, &out);
    if (rc == 0) {
        rc = paywall_filter_feed(&f, c->doc + half, c->len - half, fuzz_emit, &out);
    }
    if (rc == 0) {
        rc = paywall_filter_finish(&f, fuzz_emit, &out);
    }
    FUZZ_CHECK(rc == (fail_at > 0 && out.calls >= fail_at ? -1 : 0));
    if (rc == -1) {
        FUZZ_CHECK(out.calls == fail_at);
        FUZZ_CHECK(paywall_filter_feed(&f, c->doc, c->len, fuzz_emit, &out) == -1);
        FUZZ_CHECK(paywall_filter_finish(&f, fuzz_emit, &out) == -1);
        FUZZ_CHECK(out.calls == fail_at);
    }
    free(out.data);
    free(hold);
    return out.calls;
}

static void fuzz_check_abort(const fuzz_case *c, uint32_t seed)
{
    size_t calls = fuzz_run_halves(c, 0);

    if (calls > 0) {
        fuzz_run_halves(c, 1 + seed % calls);
    }
}

/* ------------------------------------------------------------------------------------------ the other helpers */

static void fuzz_check_structured(const char *text, size_t len)
{
    char selector[PAYWALL_STRUCTURED_DATA_MAX + 2];
    char *block;
    const char *body;
    size_t n = len < sizeof(selector) - 1 ? len : sizeof(selector) - 1;

    memcpy(selector, text, n);
    selector[n] = '\0';
    block = paywall_structured_data(selector);
    if (block == NULL) {
        return;
    }
    /* the selector can neither end the script element nor the JSON string early */
    body = block + strlen("<script type=\"application/ld+json\">");
    FUZZ_CHECK(strncmp(block, "<script type=\"application/ld+json\">", (size_t)(body - block)) == 0);
    FUZZ_CHECK(strchr(body, '<') == strstr(body, "</script>"));
    FUZZ_CHECK(strlen(strstr(body, "</script>")) == strlen("</script>"));
    FUZZ_CHECK(strchr(body, '>') == body + strlen(body) - 1);
    FUZZ_CHECK(strchr(body, '&') == NULL);
    FUZZ_CHECK(strlen(selector) > 0 && strlen(selector) <= PAYWALL_STRUCTURED_DATA_MAX);
    free(block);
}

static void fuzz_check_csv(const char *text, size_t len)
{
    char value[64];
    csv_buf buf = {0};
    size_t n = len < sizeof(value) - 1 ? len : sizeof(value) - 1, i, j = 0;

    memcpy(value, text, n);
    value[n] = '\0';
    n = strlen(value);
    FUZZ_CHECK(csv_cell(&buf, value) == 0);
    FUZZ_CHECK(buf.data != NULL && strlen(buf.data) == buf.len);
    if (buf.len > 0 && buf.data[0] == '"') {
        /* quoted: undo it and find the value again, with the neutralising quote when one was due */
        FUZZ_CHECK(buf.len >= 2 && buf.data[buf.len - 1] == '"');
        i = 1;
        if (n > 0 && strchr("=+-@\t\r", value[0]) != NULL) {
            FUZZ_CHECK(buf.data[i++] == '\'');
        }
        for (; i < buf.len - 1; i++) {
            if (buf.data[i] == '"') {
                FUZZ_CHECK(buf.data[++i] == '"');
            }
            FUZZ_CHECK(j < n && buf.data[i] == value[j++]);
        }
        FUZZ_CHECK(j == n);
    } else {
        FUZZ_CHECK(buf.len == n && memcmp(buf.data, value, n) == 0);
        FUZZ_CHECK(n == 0 || (strchr("=+-@\t\r ", value[0]) == NULL && value[n - 1] != ' '));
        FUZZ_CHECK(strpbrk(value, ",\"\r\n") == NULL);
    }
    csv_free(&buf);
}

/* ------------------------------------------------------------------------------------------------ the target */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char insert[PAYWALL_FILTER_MARKER_MAX + 64];
    fuzz_case c;
    fuzz_out expected = {0};
    paywall_filter_status status;
    size_t *pieces, npieces, i, at, anchor_end, mlen;
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
    fuzz_check_structured(c.doc, c.len);
    fuzz_check_csv(c.doc, c.len);

    if (mode & 1) {
        c.config.head_insert = "<script type=\"application/ld+json\">{}</script>";
    }
    if (mode & 2) {
        mlen = 1 + data[1] % 24;
        c.config.marker = PAYWALL_FILTER_MARKER_DEFAULT;
        c.config.marker_len = strlen(PAYWALL_FILTER_MARKER_DEFAULT);
        c.config.hold_size = PAYWALL_FILTER_HOLD_DEFAULT;
        switch ((mode >> 2) & 3) {
        case 1: /* the next bytes */
            mlen = mlen < c.len ? mlen : c.len;
            if (mlen > 0) {
                c.config.marker = c.doc;
                c.config.marker_len = mlen;
                c.doc += mlen;
                c.len -= mlen;
            }
            break;
        case 2: /* a slice of the document, found for sure */
            if (c.len > 0) {
                at = data[2] % c.len;
                c.config.marker = c.doc + at;
                c.config.marker_len = mlen < c.len - at ? mlen : c.len - at;
            }
            break;
        case 3:
            c.config.hold_size = c.config.marker_len + data[2] % 64;
            break;
        }
        if (c.config.hold_size == PAYWALL_FILTER_HOLD_DEFAULT) {
            /* as good as the default for a document this long, without a 256 KB allocation per run; bit 7 chooses
             * between exactly full at the end and a byte to spare */
            c.config.hold_size = (c.len > c.config.marker_len ? c.len : c.config.marker_len) + (mode >> 7);
        }
        c.config.cta = (mode & 32) ? NULL : FUZZ_CTA;
        c.config.cta_len = (mode & 32) ? 0 : strlen(FUZZ_CTA);
    }
    if ((mode & 1) && (mode & 16)) {
        /* an insert with everything the matchers look for in it */
        int n = snprintf(insert, sizeof(insert), "</head><body><!--paywall--></HEAD>%.*s", (int)c.config.marker_len,
                         c.config.marker != NULL ? c.config.marker : "");

        FUZZ_CHECK(n > 0 && (size_t)n < sizeof(insert));
        c.config.head_insert = insert;
    }
    if (c.config.head_insert != NULL) {
        c.config.head_insert_len = strlen(c.config.head_insert);
    }

    status = fuzz_reference(&c, &expected, &anchor_end);
    pieces = malloc((c.len + 2) * sizeof(*pieces));
    FUZZ_CHECK(pieces != NULL);

    /* whole, and the shape of its output */
    {
        fuzz_out out = {0};

        pieces[0] = c.len;
        fuzz_run(&c, pieces, 1, anchor_end, status, &out);
        FUZZ_CHECK(out.len == expected.len);
        FUZZ_CHECK(out.len == 0 || memcmp(out.data, expected.data, out.len) == 0);
        fuzz_check_shape(&c, &out, status);
        free(out.data);
    }
    /* byte by byte */
    for (i = 0; i < c.len; i++) {
        pieces[i] = 1;
    }
    fuzz_check_run(&c, pieces, c.len, anchor_end, status, &expected);
    /* two pieces */
    pieces[0] = fuzz_next(&seed) % (c.len + 1);
    pieces[1] = c.len - pieces[0];
    fuzz_check_run(&c, pieces, 2, anchor_end, status, &expected);
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
    fuzz_check_run(&c, pieces, npieces, anchor_end, status, &expected);

    if (mode & 64) {
        fuzz_check_abort(&c, fuzz_next(&seed));
    }
    free(pieces);
    free(expected.data);
    return 0;
}
