/* The white-label booking page: the template compiled into the module (mod_booking/page/booking_page.html, turned
 * into C by build/embed-file.sh) with its holes filled for one response. {{API}} is the API path the page calls;
 * {{NONCE}} is fresh for every response, so the page's own inline script and style run under a policy that refuses
 * any other script or style, injected ones included. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "booking.h"
#include "crypto.h"

extern const char booking_page_html[];
extern const size_t booking_page_html_len;

#define BOOKING_PAGE_NONCE_BYTES 16
#define BOOKING_PAGE_API_DEFAULT "/booking/api"
#define BOOKING_PAGE_CSP                                                                                               \
    "default-src 'none'; script-src 'nonce-%s'; style-src 'nonce-%s'; img-src 'self' https: data:; "                   \
    "connect-src 'self'; form-action 'none'; frame-ancestors 'self'; base-uri 'none'"

typedef struct {
    const char *name; /* "{{API}}" */
    size_t name_len;
    const char *value;
    size_t value_len;
} booking_page_hole;

/* The entity for a byte that could end the attribute or open markup, NULL for any other. */
static const char *booking_html_entity(char c)
{
    switch (c) {
    case '&':
        return "&amp;";
    case '<':
        return "&lt;";
    case '>':
        return "&gt;";
    case '"':
        return "&#34;";
    case '\'':
        return "&#39;";
    default:
        return NULL;
    }
}

/* The API path goes into an attribute: escaped so that no configured path can end it or open markup. NULL when
 * memory ran out. */
static char *booking_escape_html(const char *s)
{
    const char *entity;
    size_t len = 0, i, n;
    char *out, *p;

    for (i = 0; s[i]; i++)
        len += (entity = booking_html_entity(s[i])) ? strlen(entity) : 1;
    if ((out = malloc(len + 1)) == NULL)
        return NULL;
    for (p = out, i = 0; s[i]; i++) {
        if ((entity = booking_html_entity(s[i])) != NULL) {
            n = strlen(entity);
            memcpy(p, entity, n);
            p += n;
        } else {
            *p++ = s[i];
        }
    }
    *p = '\0';
    return out;
}

/* The hole starting at p (which has left bytes), or NULL. */
static const booking_page_hole *booking_match_hole(const char *p, size_t left, const booking_page_hole *holes,
                                                   size_t nholes)
{
    size_t i;

    for (i = 0; i < nholes; i++) {
        if (left >= holes[i].name_len && memcmp(p, holes[i].name, holes[i].name_len) == 0)
            return &holes[i];
    }
    return NULL;
}

/* Copies the template into out with every hole replaced, or (out NULL) only measures. Returns the length, or
 * SIZE_MAX when it would not fit in a size_t. */
static size_t booking_fill_holes(const char *tpl, size_t tpl_len, const booking_page_hole *holes, size_t nholes,
                                 char *out)
{
    const booking_page_hole *hole;
    const char *p = tpl, *end = tpl + tpl_len, *brace;
    size_t len = 0, chunk;

    while (p < end) {
        brace = memchr(p, '{', (size_t)(end - p));
        chunk = (size_t)((brace ? brace : end) - p);
        if (out)
            memcpy(out + len, p, chunk);
        len += chunk;
        if (brace == NULL)
            break;
        if ((hole = booking_match_hole(brace, (size_t)(end - brace), holes, nholes)) != NULL) {
            if (hole->value_len > SIZE_MAX - len)
                return SIZE_MAX;
            if (out)
                memcpy(out + len, hole->value, hole->value_len);
            len += hole->value_len;
            p = brace + hole->name_len;
        } else {
            if (out)
                out[len] = '{';
            len++;
            p = brace + 1;
        }
    }
    return len;
}

/* base64url of fresh random bytes (out holds at least crypto_base64url_len(BOOKING_PAGE_NONCE_BYTES) + 1). */
static int booking_make_nonce(char *out)
{
    unsigned char raw[BOOKING_PAGE_NONCE_BYTES];
    size_t len;

    if (crypto_random_bytes(raw, sizeof(raw)) != 0)
        return -1;
    len = crypto_base64url_encode(raw, sizeof(raw), out);
    out[len] = '\0';
    return 0;
}

static char *booking_make_csp(const char *nonce)
{
    int len = snprintf(NULL, 0, BOOKING_PAGE_CSP, nonce, nonce);
    char *csp;

    if (len < 0 || (csp = malloc((size_t)len + 1)) == NULL)
        return NULL;
    snprintf(csp, (size_t)len + 1, BOOKING_PAGE_CSP, nonce, nonce);
    return csp;
}

int booking_page_render(const booking_config *config, char **html, size_t *html_len, char **csp)
{
    char nonce[32], *api, *page = NULL, *policy = NULL;
    size_t len;
    booking_page_hole holes[2];

    *html = NULL;
    *csp = NULL;
    *html_len = 0;
    if (booking_make_nonce(nonce) != 0)
        return -1;
    api = booking_escape_html(config && config->page_api ? config->page_api : BOOKING_PAGE_API_DEFAULT);
    if (api == NULL)
        return -1;
    holes[0] = (booking_page_hole){"{{API}}", 7, api, strlen(api)};
    holes[1] = (booking_page_hole){"{{NONCE}}", 9, nonce, strlen(nonce)};
    len = booking_fill_holes(booking_page_html, booking_page_html_len, holes, 2, NULL);
    if (len != SIZE_MAX && (page = malloc(len + 1)) != NULL) {
        booking_fill_holes(booking_page_html, booking_page_html_len, holes, 2, page);
        page[len] = '\0';
        policy = booking_make_csp(nonce);
    }
    free(api);
    if (policy == NULL) {
        free(page);
        return -1;
    }
    *html = page;
    *html_len = len;
    *csp = policy;
    return 0;
}
