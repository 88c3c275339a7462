/* The banner's HTML (see promo.h): one self-contained <aside> whose style, markup and script cannot leak into the
 * page, nor the page's data into its markup.
 *
 * Every string of the promotion is text as far as this file is concerned: it is HTML-escaped wherever it goes. URLs
 * are checked again too (a record edited in the database never went through the JSON reader): one that is not a path
 * or an http(s) URL is left out, and whitespace and controls in the others are percent-encoded. The only values
 * written raw are the id (a number) and the colors, which are checked to be #rrggbb here as well. */
#include "promo.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define PROMO_BANNER_NAME_DEFAULT "Promotion"

/* Used when a stored color is not #rrggbb: readable together, whatever the site's own colors. */
#define PROMO_BANNER_BG_DEFAULT     "#1f2937"
#define PROMO_BANNER_FG_DEFAULT     "#ffffff"
#define PROMO_BANNER_CTA_BG_DEFAULT "#facc15"
#define PROMO_BANNER_CTA_FG_DEFAULT "#111827"

typedef struct {
    char *data;
    size_t len;
    size_t cap;
    int failed;
} promo_buf;

static void promo_buf_put(promo_buf *b, const char *s, size_t len)
{
    if (b->failed || len == 0) {
        return;
    }
    if (b->len + len + 1 > b->cap) {
        size_t cap = (b->len + len + 1) * 2;
        char *data = realloc(b->data, cap);

        if (data == NULL) {
            b->failed = 1;
            return;
        }
        b->data = data;
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, len);
    b->len += len;
    b->data[b->len] = '\0';
}

static void promo_buf_str(promo_buf *b, const char *s)
{
    promo_buf_put(b, s, strlen(s));
}

static void promo_buf_printf(promo_buf *b, const char *format, ...) __attribute__((format(printf, 2, 3)));

static void promo_buf_printf(promo_buf *b, const char *format, ...)
{
    char piece[512];
    va_list ap;
    int n;

    va_start(ap, format);
    n = vsnprintf(piece, sizeof(piece), format, ap);
    va_end(ap);
    /* only short fixed pieces with numbers and colors go through here */
    if (n < 0 || (size_t)n >= sizeof(piece)) {
        b->failed = 1;
        return;
    }
    promo_buf_put(b, piece, (size_t)n);
}

/* Text and attribute values alike: the five characters that can end or start markup in either. */
static void promo_buf_escaped(promo_buf *b, const char *s)
{
    const char *run = s;

    for (; *s != '\0'; s++) {
        const char *entity;

        switch (*s) {
        case '&':
            entity = "&amp;";
            break;
        case '<':
            entity = "&lt;";
            break;
        case '>':
            entity = "&gt;";
            break;
        case '"':
            entity = "&quot;";
            break;
        case '\'':
            entity = "&#39;";
            break;
        default:
            continue;
        }
        promo_buf_put(b, run, (size_t)(s - run));
        promo_buf_str(b, entity);
        run = s + 1;
    }
    promo_buf_put(b, run, (size_t)(s - run));
}

static int promo_url_usable(const char *url)
{
    return url != NULL &&
           (url[0] == '/' || strncasecmp(url, "http://", 7) == 0 || strncasecmp(url, "https://", 8) == 0);
}

/* An attribute value holding a URL. Whitespace and controls are percent-encoded so that the value stays one URL
 * even where whitespace separates candidates (srcset); in_srcset also encodes ',', srcset's other separator. */
static void promo_buf_url(promo_buf *b, const char *url, int in_srcset)
{
    static const char hex[] = "0123456789ABCDEF";
    const unsigned char *s = (const unsigned char *)url;

    for (; *s != '\0'; s++) {
        if (*s <= ' ' || *s == 0x7f || (in_srcset && *s == ',')) {
            char pct[3] = {'%', hex[*s >> 4], hex[*s & 15]};

            promo_buf_put(b, pct, 3);
        } else {
            char c[2] = {(char)*s, '\0'};

            promo_buf_escaped(b, c);
        }
    }
}

static const char *promo_color(const char *color, const char *fallback)
{
    size_t i;

    if (color[0] != '#' || color[7] != '\0') {
        return fallback;
    }
    for (i = 1; i < 7; i++) {
        char c = color[i];

        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) {
            return fallback;
        }
    }
    return color;
}

static void promo_banner_style(promo_buf *b, long long id, const promo_promotion *p, int dismissible)
{
    const char *bg = promo_color(p->bg_color, PROMO_BANNER_BG_DEFAULT);
    const char *fg = promo_color(p->fg_color, PROMO_BANNER_FG_DEFAULT);
    const char *cta_bg = promo_color(p->cta_bg_color, PROMO_BANNER_CTA_BG_DEFAULT);
    const char *cta_fg = promo_color(p->cta_fg_color, PROMO_BANNER_CTA_FG_DEFAULT);

    /* Every rule starts with the banner's own class, so the style touches nothing of the page; the properties the
     * page could otherwise pass down (font, colors, alignment) are set on the banner itself. */
    promo_buf_str(b, "<style>");
    promo_buf_printf(
        b,
        ".wm-promo-%lld{display:flex;flex-wrap:wrap;align-items:center;gap:12px 20px;box-sizing:border-box;"
        "max-width:100%%;margin:0;padding:16px %s 16px 20px;position:relative;background:%s;color:%s;"
        "font:16px/1.4 system-ui,-apple-system,\"Segoe UI\",Roboto,Arial,sans-serif;text-align:left}",
        id, dismissible ? "52px" : "20px", bg, fg);
    promo_buf_printf(b, ".wm-promo-%lld *{box-sizing:border-box}", id);
    promo_buf_printf(b, ".wm-promo-%lld .wm-promo-picture{flex:0 1 auto;max-width:100%%;margin:0}", id);
    promo_buf_printf(
        b, ".wm-promo-%lld .wm-promo-picture img{display:block;max-width:100%%;height:auto;max-height:200px}", id);
    promo_buf_printf(b, ".wm-promo-%lld .wm-promo-body{flex:1 1 260px;min-width:0}", id);
    promo_buf_printf(b,
                     ".wm-promo-%lld .wm-promo-headline{margin:0 0 4px;font-size:1.25em;font-weight:700;color:%s;"
                     "overflow-wrap:anywhere}",
                     id, fg);
    promo_buf_printf(b, ".wm-promo-%lld .wm-promo-text{margin:0;color:%s;overflow-wrap:anywhere}", id, fg);
    promo_buf_printf(b,
                     ".wm-promo-%lld .wm-promo-cta{display:inline-block;flex:0 0 auto;max-width:100%%;padding:10px "
                     "18px;border-radius:4px;background:%s;color:%s;font-weight:700;text-decoration:none;"
                     "overflow-wrap:anywhere}",
                     id, cta_bg, cta_fg);
    /* the outline sits on the banner's background, so it takes the banner's text color, which contrasts with it */
    promo_buf_printf(b, ".wm-promo-%lld a:focus,.wm-promo-%lld button:focus{outline:3px solid %s;outline-offset:2px}",
                     id, id, fg);
    if (dismissible) {
        promo_buf_printf(b,
                         ".wm-promo-%lld .wm-promo-dismiss{position:absolute;top:6px;right:6px;min-width:40px;"
                         "min-height:40px;margin:0;padding:0;border:0;background:transparent;color:%s;"
                         "font:28px/1 Arial,sans-serif;cursor:pointer}",
                         id, fg);
    }
    /* narrow screens (375 px phones): one column, nothing wider than the screen */
    promo_buf_printf(b,
                     "@media (max-width: 640px){.wm-promo-%lld{flex-direction:column;align-items:flex-start;"
                     "padding:12px %s 12px 12px}.wm-promo-%lld .wm-promo-body{flex:0 1 auto;width:100%%}"
                     ".wm-promo-%lld .wm-promo-cta{white-space:normal}}",
                     id, dismissible ? "48px" : "12px", id, id);
    promo_buf_str(b, "</style>");
}

static void promo_banner_picture(promo_buf *b, const promo_promotion *p)
{
    const char *wide = p->image_wide, *narrow = promo_url_usable(p->image_narrow) ? p->image_narrow : wide;

    if (!promo_url_usable(wide)) {
        return;
    }
    promo_buf_str(b, "<picture class=\"wm-promo-picture\"><source media=\"(min-width: 641px)\" srcset=\"");
    promo_buf_url(b, wide, 1);
    promo_buf_str(b, "\"><img src=\"");
    promo_buf_url(b, narrow, 0);
    promo_buf_str(b, "\" alt=\"");
    promo_buf_escaped(b, p->image_alt != NULL ? p->image_alt : "");
    promo_buf_str(b, "\" loading=\"lazy\"></picture>");
}

static void promo_banner_cta(promo_buf *b, long long id, const promo_promotion *p, const char *click_url)
{
    if (p->cta_label == NULL) {
        return;
    }
    if (click_url != NULL && promo_url_usable(click_url)) {
        promo_buf_str(b, "<a class=\"wm-promo-cta\" href=\"");
        promo_buf_url(b, click_url, 0);
        /* mod_promo's handler reads "id=" at the start of the query; another one with a query of its own keeps it */
        promo_buf_printf(b, "%sid=%lld\">", strchr(click_url, '?') != NULL ? "&amp;" : "?", id);
    } else if (promo_url_usable(p->cta_url)) {
        /* no click handler configured: straight to the offer, uncounted */
        promo_buf_str(b, "<a class=\"wm-promo-cta\" href=\"");
        promo_buf_url(b, p->cta_url, 0);
        promo_buf_str(b, "\">");
    } else {
        return;
    }
    promo_buf_escaped(b, p->cta_label);
    promo_buf_str(b, "</a>");
}

/* The dismissal: keeps the ids already dismissed (at most the last 40, so the cookie stays small whatever
 * accumulates), drops malformed parts, adds this one, removes the banner. Escape works from anywhere inside it. The
 * id is a number, so nothing in here can end the script element. */
static void promo_banner_script(promo_buf *b, long long id, unsigned days)
{
    promo_buf_str(b, "<button type=\"button\" class=\"wm-promo-dismiss\" aria-label=\"Dismiss\">\xc3\x97</button>");
    promo_buf_printf(
        b,
        "<script>(function(){var s=document.currentScript,a=s&&s.parentNode,i=\"%lld\";if(!a)return;"
        "function d(){var m=document.cookie.match(/(?:^|;\\s*)promo_dismissed=([^;]*)/),v=(m?m[1].split(\".\"):[])"
        ".filter(function(x){return /^\\d{1,19}$/.test(x)&&x!==i}).slice(-39);v.push(i);"
        "document.cookie=\"promo_dismissed=\"+v.join(\".\")+\";Max-Age=%lu;Path=/;SameSite=Lax\"+"
        "(location.protocol==\"https:\"?\";Secure\":\"\");if(a.parentNode)a.parentNode.removeChild(a)}",
        id, (unsigned long)days * 86400UL);
    promo_buf_str(b, "a.querySelector(\".wm-promo-dismiss\").addEventListener(\"click\",d);"
                     "a.addEventListener(\"keydown\",function(e){if(e.key===\"Escape\"||e.key===\"Esc\")d()})})()"
                     "</script>");
}

char *promo_banner_html(const promo_promotion *promotion, const char *click_url, size_t *len)
{
    promo_buf b = {0};
    const promo_promotion *p = promotion;
    unsigned days;
    long long id;

    if (len != NULL) {
        *len = 0;
    }
    if (p == NULL) {
        return NULL;
    }
    id = p->id;
    days = p->dismiss_days > PROMO_DISMISS_MAX ? PROMO_DISMISS_MAX : p->dismiss_days;
    promo_buf_printf(&b, "<aside class=\"wm-promo wm-promo-%lld\" role=\"region\" aria-label=\"", id);
    promo_buf_escaped(&b, p->name != NULL && p->name[0] != '\0' ? p->name : PROMO_BANNER_NAME_DEFAULT);
    promo_buf_printf(&b, "\" data-promo-id=\"%lld\">", id);
    promo_banner_style(&b, id, p, days > 0);
    promo_banner_picture(&b, p);
    promo_buf_str(&b, "<div class=\"wm-promo-body\">");
    if (p->headline != NULL) {
        promo_buf_str(&b, "<p class=\"wm-promo-headline\">");
        promo_buf_escaped(&b, p->headline);
        promo_buf_str(&b, "</p>");
    }
    if (p->text != NULL) {
        promo_buf_str(&b, "<p class=\"wm-promo-text\">");
        promo_buf_escaped(&b, p->text);
        promo_buf_str(&b, "</p>");
    }
    promo_buf_str(&b, "</div>");
    promo_banner_cta(&b, id, p, click_url);
    if (days > 0) {
        promo_banner_script(&b, id, days);
    }
    promo_buf_str(&b, "</aside>");
    if (b.failed || b.data == NULL) {
        free(b.data);
        return NULL;
    }
    if (len != NULL) {
        *len = b.len;
    }
    return b.data;
}
