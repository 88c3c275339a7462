/* mod_paywall's response rewriting, shared by the Apache output filter and the nginx body filter, and the cells of the
 * routing CSV. Server-neutral and pure like paywall.h: no store, no network, nothing printed, no server headers. */
#ifndef PAYWALL_FILTER_H
#define PAYWALL_FILTER_H

#include <stddef.h>

#include "csv.h"

/* ----------------------------------------------------------------------------------------- HTML rewriter */

#define PAYWALL_FILTER_MARKER_DEFAULT "<!--paywall-->"
/* PaywallTeaserFile's default: the call to action when the site gives none. */
#define PAYWALL_FILTER_CTA_DEFAULT  "<div class=\"paywall-cta\"><p>This article is for subscribers.</p></div>"
#define PAYWALL_FILTER_MARKER_MAX   255
#define PAYWALL_FILTER_HOLD_DEFAULT (256 * 1024) /* bytes of teaser a denied response may hold before its marker */
#define PAYWALL_FILTER_PENDING_MAX  6            /* "</head" waiting for the byte after it */
#define PAYWALL_STRUCTURED_DATA_MAX 256          /* bytes of a PaywallStructuredData selector */

/* How a response ended up; the adapters log the last two (the site forgot the marker, or put it too far down). */
typedef enum {
    PAYWALL_FILTER_OPEN,      /* no cut (yet): without a marker configured, always */
    PAYWALL_FILTER_CUT,       /* cut at the marker: the teaser, then the call to action */
    PAYWALL_FILTER_NO_MARKER, /* the response ended without the marker: all of it withheld */
    PAYWALL_FILTER_TOO_LONG,  /* the marker did not come within the hold buffer: all of it withheld */
} paywall_filter_status;

/* What to do to one response. Every pointer is kept, not copied: the caller keeps the bytes alive (a pool or the
 * location's configuration) until the response is finished. */
typedef struct {
    /* (a) Inserted once, before the first head end tag: "</head" (any case) followed by whitespace, '/' or '>',
     * which is what ends the head for a browser ("</head>", "</HEAD  >", also "</head foo>"); when a "<body" start
     * tag (followed the same way) comes first, before that; when neither comes, at the end. NULL or 0: none. */
    const char *head_insert;
    size_t head_insert_len;
    /* (b) The teaser cut, for a denied visitor: the response up to, not including, the first occurrence of marker
     * (exact bytes, 1 to PAYWALL_FILTER_MARKER_MAX), then cta once, then nothing more. NULL or 0: no cut (cta is
     * then ignored). If the head insert has not been emitted when the cut happens, it goes right before cta. */
    const char *marker;
    size_t marker_len;
    const char *cta; /* may be empty */
    size_t cta_len;
    /* Required with a cut, at least marker_len bytes (PAYWALL_FILTER_HOLD_DEFAULT is a good size); allocate it once
     * per response, from its pool. Nothing of the response is emitted before the marker is found: passing the teaser
     * on as it comes would give away the whole article whenever the marker is missing. A marker that does not end
     * within the first hold_size bytes counts as missing (PAYWALL_FILTER_TOO_LONG): insert and cta only. */
    char *hold;
    size_t hold_size;
} paywall_filter_config;

/* One response's state: public so the adapters can allocate it (sizeof) from the request's pool, but read only
 * through the functions below. No member owns memory; nothing needs freeing. */
typedef struct {
    paywall_filter_config config;
    unsigned char marker_fail[PAYWALL_FILTER_MARKER_MAX]; /* KMP failure function of the marker */
    size_t marker_matched;
    unsigned head_matched;                    /* bytes of "</head" or "<body" seen so far */
    unsigned head_anchor;                     /* which of the two they are */
    char pending[PAYWALL_FILTER_PENDING_MAX]; /* without a cut: the bytes that may start the head anchor */
    size_t pending_len;
    size_t held;      /* with a cut: bytes in config.hold */
    size_t insert_at; /* with a cut: where in config.hold the insert goes; (size_t)-1 while not found */
    int inserted;
    int finished;
    int failed;
    paywall_filter_status status;
} paywall_filter;

/* Called for each piece of output, in order, never with len 0. A piece may point into the input given to
 * paywall_filter_feed, into the filter's own state or hold buffer (valid only until the next call into the filter),
 * or into head_insert or cta: an adapter copies it or references it before returning. 0 to go on, -1 to abort: the
 * filter then returns -1 from this and every later call. */
typedef int (*paywall_filter_emit_fn)(void *ctx, const char *data, size_t len);

/* Returns 0, or -1 with a phrase in err: a marker longer than PAYWALL_FILTER_MARKER_MAX, a cut without a hold buffer
 * of at least marker_len bytes, a length without its pointer. */
int paywall_filter_init(paywall_filter *f, const paywall_filter_config *config, char *err, size_t errlen);
/* The next bytes of the response body. Without a cut, everything is emitted at once except the at most
 * PAYWALL_FILTER_PENDING_MAX bytes that may be the start of the head anchor, and after the insert everything is
 * passed on as given. Returns 0 or -1 (the emit callback aborted, or called after paywall_filter_finish). After the
 * cut, input is ignored. */
int paywall_filter_feed(paywall_filter *f, const char *in, size_t len, paywall_filter_emit_fn emit, void *ctx);
/* The end of the response: what is pending, then the insert if it has not been placed, or (with a cut and no marker)
 * the insert and cta alone. Returns 0 or -1 like paywall_filter_feed; every later call returns -1. */
int paywall_filter_finish(paywall_filter *f, paywall_filter_emit_fn emit, void *ctx);
/* 1 once the cut has happened, so the rest of the response cannot change the output: the caller may stop reading
 * (and discard) the input, then call paywall_filter_finish. */
int paywall_filter_done(const paywall_filter *f);
paywall_filter_status paywall_filter_get_status(const paywall_filter *f);
const char *paywall_filter_status_name(paywall_filter_status status); /* "open", "cut", "no marker", "too long" */

/* The head insert for PaywallStructuredData SELECTOR, Google's markup for paywalled content:
 *   <script type="application/ld+json">{"@context":"https://schema.org","@type":"WebPage","isAccessibleForFree":false,
 *   "hasPart":{"@type":"WebPageElement","isAccessibleForFree":false,"cssSelector":"SELECTOR"}}</script>
 * The selector is JSON-escaped, with '<', '>' and '&' (and U+2028, U+2029) written as \uXXXX, so that no selector
 * can close the script element or open a comment in it. malloc'd (free()), or NULL when the selector is NULL, empty,
 * longer than PAYWALL_STRUCTURED_DATA_MAX bytes, not valid UTF-8, or has a control character (C0, DEL, C1). */
char *paywall_structured_data(const char *selector);

/* ------------------------------------------------------------------------------------------- routing CSV */

/* RFC 4180, for the routing export of print subscribers. */

#define PAYWALL_CSV_COLUMNS 10
#define PAYWALL_CSV_HEADER  "id,name,company,address_line1,address_line2,postal_code,city,country,plan,period_end\r\n"

#endif
