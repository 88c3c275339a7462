/* Unit tests of mod_promo's pure logic, but for the editors' JSON (test_promo_json.c): eligibility at its boundaries,
 * the weighted rotation's distribution, the banner's escaping, scoping and markup, the streaming injection (every
 * page fed whole, in two pieces split at every byte, and byte by byte: the output must be the same each time), and
 * discount codes, prices and the signed cookie. Promotions are filled in directly, never read from JSON. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "promo.h"

#define LIT(s) s, sizeof(s) - 1

#define NASTY         "\"><script>alert(1)</script>&'"
#define NASTY_ESCAPED "&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;&amp;&#39;"

/* ------------------------------------------------------------------------------------------------ helpers */

static void promotion_init(promo_promotion *p, long long id)
{
    memset(p, 0, sizeof(*p));
    p->id = id;
    p->name = (char *)"Spring sale";
    p->starts_at = 1000;
    p->ends_at = 2000;
    p->enabled = 1;
    p->audience = PROMO_AUDIENCE_EVERYONE;
    p->weight = 1;
    p->headline = (char *)"Spring sale";
    p->text = (char *)"30% off the first year";
    p->cta_label = (char *)"Subscribe";
    p->cta_url = (char *)"/subscribe";
    strcpy(p->bg_color, "#112233");
    strcpy(p->fg_color, "#fefefe");
    strcpy(p->cta_bg_color, "#ffcc00");
    strcpy(p->cta_fg_color, "#000000");
    p->dismiss_days = 30;
}

static void visit_init(promo_visit *v, const char *path, time_t now)
{
    memset(v, 0, sizeof(*v));
    v->path = path;
    v->path_len = strlen(path);
    v->now = now;
}

/* ------------------------------------------------------------------------------------------- eligibility */

static void test_eligible_schedule(void **state)
{
    promo_promotion p;
    promo_visit v;

    (void)state;
    promotion_init(&p, 1);
    visit_init(&v, "/", 0);
    v.now = 999;
    assert_int_equal(promo_eligible(&p, &v), 0);
    v.now = 1000; /* starts_at is in */
    assert_int_equal(promo_eligible(&p, &v), 1);
    v.now = 1999;
    assert_int_equal(promo_eligible(&p, &v), 1);
    v.now = 2000; /* ends_at is out */
    assert_int_equal(promo_eligible(&p, &v), 0);
    v.now = 1500;
    p.enabled = 0;
    assert_int_equal(promo_eligible(&p, &v), 0);
    p.enabled = 1;
    assert_int_equal(promo_eligible(NULL, &v), 0);
    assert_int_equal(promo_eligible(&p, NULL), 0);
}

static void test_eligible_audience(void **state)
{
    static const struct {
        promo_audience audience;
        int logged_in;
        const char *access;
        const char *plan;
        int expected;
    } cases[] = {
        {PROMO_AUDIENCE_EVERYONE, 0, NULL, NULL, 1},
        {PROMO_AUDIENCE_EVERYONE, 1, "granted", "digital", 1},
        {PROMO_AUDIENCE_ANONYMOUS, 0, NULL, NULL, 1},
        {PROMO_AUDIENCE_ANONYMOUS, 0, "granted", "digital", 1}, /* access without a user: by IP, say */
        {PROMO_AUDIENCE_ANONYMOUS, 1, NULL, NULL, 0},
        {PROMO_AUDIENCE_ANONYMOUS, 1, "denied", NULL, 0},
        {PROMO_AUDIENCE_NON_SUBSCRIBERS, 0, NULL, NULL, 1},
        {PROMO_AUDIENCE_NON_SUBSCRIBERS, 1, "denied", NULL, 1},
        {PROMO_AUDIENCE_NON_SUBSCRIBERS, 1, "metered", NULL, 1},
        {PROMO_AUDIENCE_NON_SUBSCRIBERS, 0, "crawler", NULL, 1},
        {PROMO_AUDIENCE_NON_SUBSCRIBERS, 1, "GRANTED", NULL, 1}, /* mod_paywall writes it in lower case */
        {PROMO_AUDIENCE_NON_SUBSCRIBERS, 1, "granted", "digital", 0},
        {PROMO_AUDIENCE_SUBSCRIBERS, 1, "granted", "digital", 1},
        {PROMO_AUDIENCE_SUBSCRIBERS, 1, "granted", NULL, 1},
        {PROMO_AUDIENCE_SUBSCRIBERS, 1, NULL, NULL, 0},
        {PROMO_AUDIENCE_SUBSCRIBERS, 1, "metered", NULL, 0},
        {PROMO_AUDIENCE_SUBSCRIBERS, 1, "grantedx", NULL, 0},
        {PROMO_AUDIENCE_PLANS, 1, "granted", "digital", 1},
        {PROMO_AUDIENCE_PLANS, 1, "granted", "print", 1},
        {PROMO_AUDIENCE_PLANS, 1, "granted", "premium", 0},
        {PROMO_AUDIENCE_PLANS, 1, "granted", "Digital", 0},
        {PROMO_AUDIENCE_PLANS, 1, "granted", "digita", 0},
        {PROMO_AUDIENCE_PLANS, 1, "granted", NULL, 0},
        {PROMO_AUDIENCE_PLANS, 1, "denied", "digital", 0},
        {PROMO_AUDIENCE_PLANS, 1, NULL, "digital", 0},
        {(promo_audience)42, 0, NULL, NULL, 0},
    };
    promo_promotion p;
    promo_visit v;
    size_t i;

    (void)state;
    promotion_init(&p, 1);
    p.plans[0] = (char *)"digital";
    p.plans[1] = (char *)"print";
    p.nplans = 2;
    visit_init(&v, "/", 1500);
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        p.audience = cases[i].audience;
        v.logged_in = cases[i].logged_in;
        v.paywall_access = cases[i].access;
        v.paywall_plan = cases[i].plan;
        if (promo_eligible(&p, &v) != cases[i].expected) {
            fail_msg("case %zu: audience %d, logged in %d, access %s, plan %s: expected %d", i, (int)cases[i].audience,
                     cases[i].logged_in, cases[i].access ? cases[i].access : "(none)",
                     cases[i].plan ? cases[i].plan : "(none)", cases[i].expected);
        }
    }
    /* an audience by plan without plans reaches nobody */
    p.audience = PROMO_AUDIENCE_PLANS;
    p.nplans = 0;
    v.paywall_access = "granted";
    v.paywall_plan = "digital";
    assert_int_equal(promo_eligible(&p, &v), 0);
}

static void test_eligible_paths(void **state)
{
    static const struct {
        const char *prefix; /* NULL: none */
        const char *path;
        int expected;
    } cases[] = {
        {NULL, "/anything", 1},
        {NULL, "", 1},
        {"/articles/", "/articles/x", 1},
        {"/articles/", "/articles/", 1},
        {"/articles/", "/articles", 0},
        {"/articles/", "/articlesfoo", 0},
        {"/articles", "/articles", 1},
        {"/articles", "/articles/", 1},
        {"/articles", "/articles/x/y", 1},
        {"/articles", "/articlesfoo", 0},
        {"/articles", "/article", 0},
        {"/articles", "/Articles", 0},
        {"/articles", "/news/articles", 0},
        {"/", "/", 1},
        {"/", "/x", 1},
        {"/", "", 0},
        {"/a.html", "/a.html", 1},
        {"/a.html", "/a.htmlx", 0},
        {"", "/x", 0}, /* an empty prefix never comes from the editors' page; it matches nothing rather than all */
    };
    promo_promotion p;
    promo_visit v;
    size_t i;

    (void)state;
    promotion_init(&p, 1);
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        p.paths[0] = (char *)cases[i].prefix;
        p.npaths = cases[i].prefix != NULL ? 1 : 0;
        visit_init(&v, cases[i].path, 1500);
        if (promo_eligible(&p, &v) != cases[i].expected) {
            fail_msg("prefix \"%s\", path \"%s\": expected %d", cases[i].prefix ? cases[i].prefix : "(none)",
                     cases[i].path, cases[i].expected);
        }
    }
    /* any of several; the path's length counts, not its NUL */
    p.paths[0] = (char *)"/news/";
    p.paths[1] = (char *)"/articles";
    p.npaths = 2;
    visit_init(&v, "/articles/x", 1500);
    assert_int_equal(promo_eligible(&p, &v), 1);
    v.path = "/articlesfoo";
    v.path_len = 9;
    assert_int_equal(promo_eligible(&p, &v), 1);
    v.path_len = 8;
    assert_int_equal(promo_eligible(&p, &v), 0);
    v.path = NULL;
    v.path_len = 0;
    assert_int_equal(promo_eligible(&p, &v), 0);
}

static void test_eligible_dismissed(void **state)
{
    static const struct {
        const char *cookie;
        int dismissed;
    } cases[] = {
        {"40", 1},
        {"12.40.7", 1},
        {"12.7.40", 1},
        {"7.40.x", 1},
        {"x.40", 1},
        {"..40..", 1},
        {"99999999999999999999999.40", 1}, /* a part too long for a number is skipped, not wrapped around */
        {"12.400.7", 0},
        {"12.4.7", 0},
        {"140", 0},
        {"40x", 0},
        {"x40", 0},
        {"-40", 0},
        {"+40", 0},
        {" 40", 0},
        {"4 0", 0},
        {"", 0},
        {".", 0},
        {"18446744073709551656", 0}, /* 2^64 + 40 */
        {"9223372036854775848", 0},  /* 2^63 + 40 */
    };
    promo_promotion p;
    promo_visit v;
    size_t i;

    (void)state;
    promotion_init(&p, 40);
    visit_init(&v, "/", 1500);
    assert_int_equal(promo_eligible(&p, &v), 1);
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        v.dismissed = cases[i].cookie;
        v.dismissed_len = strlen(cases[i].cookie);
        if (promo_eligible(&p, &v) != !cases[i].dismissed) {
            fail_msg("cookie \"%s\": expected %s", cases[i].cookie, cases[i].dismissed ? "dismissed" : "shown");
        }
    }
    /* the cookie's length counts, not a NUL */
    v.dismissed = "12.405";
    v.dismissed_len = 5;
    assert_int_equal(promo_eligible(&p, &v), 0);
    v.dismissed_len = 6;
    assert_int_equal(promo_eligible(&p, &v), 1);
}

/* ------------------------------------------------------------------------------------------------ rotation */

static void test_choose_weighted(void **state)
{
    promo_promotion a, b, off;
    const promo_promotion *list[3] = {&a, &off, &b};
    promo_visit v;
    size_t na = 0, nb = 0, i;
    uint32_t lcg = 12345;
    const size_t runs = 40000;

    (void)state;
    promotion_init(&a, 1);
    promotion_init(&b, 2);
    promotion_init(&off, 3);
    a.weight = 1;
    b.weight = 3;
    off.weight = 1000;
    off.enabled = 0; /* never drawn, whatever its weight */
    visit_init(&v, "/", 1500);

    /* evenly spread rolls: the shares are exact but for rounding */
    for (i = 0; i < runs; i++) {
        const promo_promotion *chosen = promo_choose(list, 3, &v, (unsigned)(i * (UINT64_C(1) << 32) / runs));

        assert_non_null(chosen);
        na += chosen == &a;
        nb += chosen == &b;
    }
    assert_int_equal(na + nb, runs);
    assert_in_range(nb * 1000 / runs, 745, 755);

    /* a pseudo-random sequence (Numerical Recipes' LCG): within 2 % of 3/4 */
    na = nb = 0;
    for (i = 0; i < runs; i++) {
        const promo_promotion *chosen;

        lcg = lcg * 1664525u + 1013904223u;
        chosen = promo_choose(list, 3, &v, lcg);
        assert_non_null(chosen);
        na += chosen == &a;
        nb += chosen == &b;
    }
    assert_int_equal(na + nb, runs);
    assert_in_range(nb * 1000 / runs, 730, 770);

    /* the ends of the roll's range */
    assert_ptr_equal(promo_choose(list, 3, &v, 0), &a);
    assert_ptr_equal(promo_choose(list, 3, &v, 0x3fffffffu), &a);
    assert_ptr_equal(promo_choose(list, 3, &v, 0x40000000u), &b);
    assert_ptr_equal(promo_choose(list, 3, &v, 0xffffffffu), &b);
}

static void test_choose_edges(void **state)
{
    promo_promotion a, b, heavy;
    const promo_promotion *list[3] = {&a, NULL, &b};
    const promo_promotion *one[1] = {&heavy};
    promo_visit v;
    unsigned roll;

    (void)state;
    promotion_init(&a, 1);
    promotion_init(&b, 2);
    visit_init(&v, "/", 1500);
    assert_null(promo_choose(NULL, 3, &v, 0));
    assert_null(promo_choose(list, 3, NULL, 0));
    assert_null(promo_choose(list, 0, &v, 0));
    /* one eligible: always that one */
    a.enabled = 0;
    for (roll = 0; roll < 16; roll++) {
        assert_ptr_equal(promo_choose(list, 3, &v, roll * 0x10000001u), &b);
    }
    /* none */
    b.ends_at = 1500;
    assert_null(promo_choose(list, 3, &v, 7));
    /* weights outside 1 to PROMO_WEIGHT_MAX are clamped, never a division by zero nor a promotion that vanishes */
    promotion_init(&a, 1);
    promotion_init(&b, 2);
    a.weight = 0;
    b.weight = 0;
    assert_ptr_equal(promo_choose(list, 3, &v, 0), &a);
    assert_ptr_equal(promo_choose(list, 3, &v, 0xffffffffu), &b);
    promotion_init(&heavy, 3);
    heavy.weight = 4000000000u;
    assert_ptr_equal(promo_choose(one, 1, &v, 0xffffffffu), &heavy);
}

/* ------------------------------------------------------------------------------------------------- banner */

static char *banner(const promo_promotion *p, const char *click_url)
{
    size_t len = 12345;
    char *html = promo_banner_html(p, click_url, &len);

    assert_non_null(html);
    assert_int_equal(len, strlen(html));
    return html;
}

static size_t count(const char *haystack, const char *needle)
{
    size_t n = 0;
    const char *p = haystack;

    while ((p = strstr(p, needle)) != NULL) {
        n++;
        p += strlen(needle);
    }
    return n;
}

/* The text between <tag> and </tag>, NUL-terminated in a new string; NULL when absent. */
static char *element_text(const char *html, const char *open, const char *close)
{
    const char *start = strstr(html, open), *end;
    char *text;

    if (start == NULL) {
        return NULL;
    }
    start += strlen(open);
    end = strstr(start, close);
    assert_non_null(end);
    text = strndup(start, (size_t)(end - start));
    assert_non_null(text);
    return text;
}

/* Outside <style> and <script>, every '<' opens or closes one of the banner's own elements. */
static void check_markup(const char *html)
{
    static const char *const tags[] = {"aside ",  "/aside>", "style>",  "/style>",  "picture ", "/picture>",
                                       "source ", "img ",    "div ",    "/div>",    "p ",       "/p>",
                                       "a ",      "/a>",     "button ", "/button>", "script>",  "/script>"};
    const char *p = html;
    size_t i;

    while ((p = strchr(p, '<')) != NULL) {
        p++;
        for (i = 0; i < sizeof(tags) / sizeof(tags[0]); i++) {
            if (strncmp(p, tags[i], strlen(tags[i])) == 0) {
                break;
            }
        }
        if (i == sizeof(tags) / sizeof(tags[0])) {
            fail_msg("unexpected markup at \"%.40s\"", p - 1);
        }
        if (strncmp(p, "style>", 6) == 0 || strncmp(p, "script>", 7) == 0) {
            p = strstr(p, strncmp(p, "style>", 6) == 0 ? "</style>" : "</script>");
            assert_non_null(p);
            p++;
        }
    }
}

#define ASIDE_7 "<aside class=\"wm-promo wm-promo-7\" role=\"region\" aria-label=\"Spring sale\""

static void test_banner_structure(void **state)
{
    promo_promotion p;
    char *html;

    (void)state;
    promotion_init(&p, 7);
    html = banner(&p, "/promo/click");
    /* what the adapters' tests and the integration tests look for */
    assert_true(strncmp(html, ASIDE_7, strlen(ASIDE_7)) == 0);
    assert_non_null(strstr(html, " data-promo-id=\"7\">"));
    assert_int_equal(strcmp(html + strlen(html) - 8, "</aside>"), 0);
    assert_int_equal(count(html, "<aside"), 1);
    assert_non_null(strstr(html, "<p class=\"wm-promo-headline\">Spring sale</p>"));
    assert_non_null(strstr(html, "<p class=\"wm-promo-text\">30% off the first year</p>"));
    assert_non_null(strstr(html, "<a class=\"wm-promo-cta\" href=\"/promo/click?id=7\">Subscribe</a>"));
    /* the configured colors */
    assert_non_null(strstr(html, "background:#112233;color:#fefefe"));
    assert_non_null(strstr(html, "background:#ffcc00;color:#000000"));
    assert_non_null(strstr(html, "outline:3px solid #fefefe"));
    assert_null(strstr(html, "<picture"));
    check_markup(html);
    free(html);

    /* a click handler with a query of its own; none at all: straight to the offer */
    html = banner(&p, "/promo/click?from=banner");
    assert_non_null(strstr(html, "href=\"/promo/click?from=banner&amp;id=7\""));
    free(html);
    html = banner(&p, NULL);
    assert_non_null(strstr(html, "<a class=\"wm-promo-cta\" href=\"/subscribe\">Subscribe</a>"));
    free(html);

    /* colors that are not #rrggbb are replaced, never copied into the style */
    strcpy(p.bg_color, "red;}x");
    strcpy(p.fg_color, "#12345g");
    memcpy(p.cta_bg_color, "#1234567", 8);
    p.cta_fg_color[0] = '\0';
    html = banner(&p, "/c");
    assert_null(strstr(html, "red"));
    assert_null(strstr(html, "#12345g"));
    assert_null(strstr(html, "#1234567"));
    assert_non_null(strstr(html, "background:#1f2937;color:#ffffff"));
    free(html);

    /* optional parts absent */
    promotion_init(&p, 8);
    p.name = NULL;
    p.text = NULL;
    p.cta_label = NULL;
    html = banner(&p, "/c");
    assert_non_null(strstr(html, "aria-label=\"Promotion\""));
    assert_null(strstr(html, "wm-promo-text\""));
    assert_null(strstr(html, "<a "));
    check_markup(html);
    free(html);

    assert_null(promo_banner_html(NULL, "/c", NULL));
    html = promo_banner_html(&p, "/c", NULL);
    assert_non_null(html);
    free(html);
}

static void test_banner_escaping(void **state)
{
    promo_promotion p;
    char *html;

    (void)state;
    promotion_init(&p, 9);
    p.name = (char *)NASTY;
    p.headline = (char *)NASTY;
    p.text = (char *)NASTY;
    p.cta_label = (char *)NASTY;
    p.image_wide = (char *)"/w" NASTY;
    p.image_narrow = (char *)"https://cdn.example/n" NASTY;
    p.image_alt = (char *)NASTY;
    html = banner(&p, "/click" NASTY);
    assert_null(strstr(html, "alert(1)</script>"));
    assert_int_equal(count(html, "<script>"), 1); /* the dismiss script, and only it */
    assert_non_null(strstr(html, "aria-label=\"" NASTY_ESCAPED "\""));
    assert_non_null(strstr(html, "<p class=\"wm-promo-headline\">" NASTY_ESCAPED "</p>"));
    assert_non_null(strstr(html, "<p class=\"wm-promo-text\">" NASTY_ESCAPED "</p>"));
    assert_non_null(strstr(html, "href=\"/click" NASTY_ESCAPED "?id=9\">" NASTY_ESCAPED "</a>"));
    assert_non_null(strstr(html, "srcset=\"/w" NASTY_ESCAPED "\""));
    assert_non_null(strstr(html, "src=\"https://cdn.example/n" NASTY_ESCAPED "\" alt=\"" NASTY_ESCAPED "\""));
    check_markup(html);
    free(html);

    /* without a click handler the offer's own URL is the link, escaped the same way */
    p.cta_url = (char *)"/offer" NASTY;
    html = banner(&p, NULL);
    assert_non_null(strstr(html, "href=\"/offer" NASTY_ESCAPED "\">"));
    check_markup(html);
    free(html);

    /* URLs that are neither a path nor http(s) are left out; whitespace and controls cannot split an attribute */
    promotion_init(&p, 9);
    p.image_alt = (char *)"alt";
    p.image_wide = (char *)"javascript:alert(1)";
    p.cta_url = (char *)"JavaScript:alert(1)";
    html = banner(&p, "data:text/html,x");
    assert_null(strstr(html, "alert(1)"));
    assert_null(strstr(html, "<picture"));
    assert_null(strstr(html, "<a "));
    free(html);
    p.image_wide = (char *)"/a b,c\t1x.png";
    p.image_narrow = (char *)"HTTPS://cdn.example/a b,c.png";
    html = banner(&p, "/c");
    assert_non_null(strstr(html, "srcset=\"/a%20b%2Cc%091x.png\""));
    assert_non_null(strstr(html, "src=\"HTTPS://cdn.example/a%20b,c.png\""));
    free(html);
}

/* Every selector of every rule in css, inside @media blocks too, starts with .wm-promo-ID and then ends or goes on
 * with something other than a name character (so .wm-promo-70 is not .wm-promo-7). */
static void check_scoped_css(const char *css, long long id)
{
    char scope[64];
    size_t scope_len, depth = 0, rules = 0;
    const char *p = css;

    snprintf(scope, sizeof(scope), ".wm-promo-%lld", id);
    scope_len = strlen(scope);
    while (*p != '\0') {
        const char *brace, *sel;

        while (*p == ' ' || *p == '\n') {
            p++;
        }
        if (*p == '}') {
            assert_true(depth > 0);
            depth--;
            p++;
            continue;
        }
        if (*p == '\0') {
            break;
        }
        brace = strchr(p, '{');
        assert_non_null(brace);
        if (*p == '@') {
            assert_true(strncmp(p, "@media ", 7) == 0);
            depth++;
            p = brace + 1;
            continue;
        }
        /* a selector list: each selector in it */
        for (sel = p; sel < brace;) {
            const char *comma = memchr(sel, ',', (size_t)(brace - sel));
            const char *end = comma != NULL ? comma : brace;
            char after;

            while (*sel == ' ') {
                sel++;
            }
            if (strncmp(sel, scope, scope_len) != 0) {
                fail_msg("selector not scoped: \"%.*s\"", (int)(end - sel), sel);
            }
            after = sel[scope_len];
            assert_true(after == ' ' || after == ':' || after == '.' || after == '{' || after == ',' || after == '[');
            sel = end + 1;
        }
        rules++;
        /* the declarations: no braces, nothing that leaves the block */
        p = strchr(brace, '}');
        assert_non_null(p);
        assert_null(memchr(brace + 1, '{', (size_t)(p - brace - 1)));
        p++;
    }
    assert_int_equal(depth, 0);
    assert_true(rules >= 5);
}

static void test_banner_scoped_style(void **state)
{
    static const long long ids[] = {7, 70, 1234567890123LL, 9223372036854775807LL};
    promo_promotion p;
    char *html, *css;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
        promotion_init(&p, ids[i]);
        p.image_wide = (char *)"/w.png";
        p.image_alt = (char *)"A";
        p.dismiss_days = i == 1 ? 0 : 30;
        html = banner(&p, "/c");
        assert_int_equal(count(html, "<style>"), 1);
        css = element_text(html, "<style>", "</style>");
        assert_non_null(css);
        check_scoped_css(css, ids[i]);
        /* responsive: nothing wider than its box, wrapping, and one column on narrow screens */
        assert_non_null(strstr(css, "max-width:100%"));
        assert_non_null(strstr(css, "flex-wrap:wrap"));
        assert_non_null(strstr(css, "@media (max-width: 640px){"));
        assert_non_null(strstr(css, ":focus{outline:3px solid"));
        free(css);
        free(html);
    }
}

static void test_banner_picture(void **state)
{
    promo_promotion p;
    char *html;

    (void)state;
    promotion_init(&p, 5);
    p.image_wide = (char *)"https://cdn.example/wide.jpg";
    p.image_narrow = (char *)"/img/narrow.jpg";
    p.image_alt = (char *)"Two mugs of coffee";
    html = banner(&p, "/c");
    assert_non_null(strstr(html, "<picture class=\"wm-promo-picture\"><source media=\"(min-width: 641px)\" "
                                 "srcset=\"https://cdn.example/wide.jpg\"><img src=\"/img/narrow.jpg\" "
                                 "alt=\"Two mugs of coffee\" loading=\"lazy\"></picture>"));
    /* the picture comes before the text, so that it wraps above it on a narrow screen */
    assert_true(strstr(html, "<picture") < strstr(html, "wm-promo-body\">"));
    free(html);

    p.image_narrow = NULL;
    html = banner(&p, "/c");
    assert_non_null(strstr(html, "srcset=\"https://cdn.example/wide.jpg\"><img src=\"https://cdn.example/wide.jpg\""));
    free(html);

    /* no alt text: an empty one (decorative), never a missing attribute */
    p.image_alt = NULL;
    html = banner(&p, "/c");
    assert_non_null(strstr(html, " alt=\"\" loading=\"lazy\""));
    free(html);

    /* no wide image: no picture, even with a narrow one */
    p.image_wide = NULL;
    p.image_narrow = (char *)"/img/narrow.jpg";
    html = banner(&p, "/c");
    assert_null(strstr(html, "<picture"));
    assert_null(strstr(html, "<img"));
    free(html);
}

static void test_banner_dismiss(void **state)
{
    promo_promotion p;
    char *html, *script;

    (void)state;
    promotion_init(&p, 12);
    p.dismiss_days = 0;
    html = banner(&p, "/c");
    assert_null(strstr(html, "<script"));
    assert_null(strstr(html, "<button"));
    assert_null(strstr(html, "wm-promo-dismiss"));
    free(html);

    p.dismiss_days = 30;
    html = banner(&p, "/c");
    assert_non_null(strstr(html, "<button type=\"button\" class=\"wm-promo-dismiss\" aria-label=\"Dismiss\">"
                                 "\xc3\x97</button>"));
    assert_int_equal(count(html, "<script>"), 1);
    script = element_text(html, "<script>", "</script>");
    assert_non_null(script);
    assert_null(strchr(script, '<')); /* nothing that could end the element early or open a comment */
    assert_non_null(strstr(script, "i=\"12\""));
    assert_non_null(strstr(script, "promo_dismissed="));
    assert_non_null(strstr(script, ";Max-Age=2592000;Path=/;SameSite=Lax"));
    assert_non_null(strstr(script, "\"Escape\""));
    assert_non_null(strstr(script, "removeChild"));
    assert_non_null(strstr(script, "m[1].split(\".\")")); /* the ids dismissed before are kept */
    free(script);
    /* the script sits inside the banner, after its button */
    assert_true(strstr(html, "<button") < strstr(html, "<script>"));
    assert_true(strstr(html, "</script></aside>") != NULL);
    free(html);

    p.dismiss_days = 1;
    html = banner(&p, "/c");
    assert_non_null(strstr(html, ";Max-Age=86400;"));
    free(html);
    p.dismiss_days = PROMO_DISMISS_MAX + 1000;
    html = banner(&p, "/c");
    assert_non_null(strstr(html, ";Max-Age=31536000;"));
    free(html);
}

/* ---------------------------------------------------------------------------------------------- injection */

#define BLOCK "<aside>B</aside>"

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

static promo_placement place(promo_placement_kind kind, const char *marker)
{
    promo_placement placement;

    placement.kind = kind;
    placement.marker = marker;
    return placement;
}

/* Feeds doc in pieces of the given lengths (summing to len), then finishes; returns the output (free it). */
static char *run_pieces(const promo_placement *placement, const char *doc, size_t len, const size_t *pieces,
                        size_t npieces, int *inserted)
{
    promo_inject j;
    sink s = {0};
    size_t i, at = 0;

    promo_inject_init(&j, placement, LIT(BLOCK));
    for (i = 0; i < npieces; i++) {
        /* a copy of each piece alone, so that reading beyond it is caught by ASan and valgrind */
        char *copy = malloc(pieces[i] + 1);

        assert_non_null(copy);
        memcpy(copy, doc + at, pieces[i]);
        assert_int_equal(promo_inject_feed(&j, copy, pieces[i], sink_emit, &s), 0);
        free(copy);
        at += pieces[i];
    }
    assert_int_equal(at, len);
    assert_int_equal(promo_inject_finish(&j, sink_emit, &s), 0);
    assert_int_equal(promo_inject_finish(&j, sink_emit, &s), -1);
    assert_int_equal(promo_inject_feed(&j, "x", 1, sink_emit, &s), -1);
    *inserted = promo_inject_inserted(&j);
    if (s.data == NULL) {
        s.data = calloc(1, 1);
        assert_non_null(s.data);
    }
    return s.data;
}

static void check_inject_len(const promo_placement *placement, const char *doc, size_t len, const char *expected)
{
    size_t *pieces = malloc((len + 2) * sizeof(*pieces));
    size_t i, split;
    int inserted, expect_inserted = strstr(expected, BLOCK) != NULL;
    char *out;

    assert_non_null(pieces);
    pieces[0] = len;
    out = run_pieces(placement, doc, len, pieces, 1, &inserted);
    assert_string_equal(out, expected);
    assert_int_equal(inserted, expect_inserted);
    free(out);
    for (split = 0; split <= len; split++) {
        pieces[0] = split;
        pieces[1] = len - split;
        out = run_pieces(placement, doc, len, pieces, 2, &inserted);
        if (strcmp(out, expected) != 0) {
            fail_msg("split at %zu: \"%s\", expected \"%s\"", split, out, expected);
        }
        assert_int_equal(inserted, expect_inserted);
        free(out);
    }
    for (i = 0; i < len; i++) {
        pieces[i] = 1;
    }
    out = run_pieces(placement, doc, len, pieces, len, &inserted);
    assert_string_equal(out, expected);
    assert_int_equal(inserted, expect_inserted);
    free(out);
    free(pieces);
}

static void check_inject(const promo_placement *placement, const char *doc, const char *expected)
{
    check_inject_len(placement, doc, strlen(doc), expected);
}

static void test_parse_placement(void **state)
{
    promo_placement out;
    char long_marker[257];

    (void)state;
    memset(&out, 0xff, sizeof(out));
    assert_null(promo_parse_placement("after-body", NULL, &out));
    assert_int_equal(out.kind, PROMO_PLACE_AFTER_BODY);
    assert_null(out.marker);
    assert_null(promo_parse_placement("before-body-end", NULL, &out));
    assert_int_equal(out.kind, PROMO_PLACE_BEFORE_BODY_END);
    assert_null(promo_parse_placement("Before-Body-End", NULL, &out));
    assert_null(promo_parse_placement("marker", "<!--promo-->", &out));
    assert_int_equal(out.kind, PROMO_PLACE_MARKER);
    assert_string_equal(out.marker, "<!--promo-->");

    assert_string_equal(promo_parse_placement("after-body", "x", &out),
                        "takes no text after after-body or before-body-end");
    assert_string_equal(promo_parse_placement("marker", NULL, &out), "marker needs the text it replaces");
    assert_string_equal(promo_parse_placement("marker", "", &out), "marker needs the text it replaces");
    assert_string_equal(promo_parse_placement("top", NULL, &out), "must be after-body, before-body-end or marker TEXT");
    assert_string_equal(promo_parse_placement(NULL, NULL, &out), "must be after-body, before-body-end or marker TEXT");
    memset(long_marker, 'm', sizeof(long_marker) - 1);
    long_marker[256] = '\0';
    assert_string_equal(promo_parse_placement("marker", long_marker, &out), "the marker is longer than 255 bytes");
    long_marker[255] = '\0';
    assert_null(promo_parse_placement("marker", long_marker, &out));
    /* a refusal leaves out as it was */
    assert_ptr_equal(out.marker, long_marker);
    assert_non_null(promo_parse_placement("bottom", NULL, &out));
    assert_int_equal(out.kind, PROMO_PLACE_MARKER);
}

static void test_inject_after_body(void **state)
{
    promo_placement after = place(PROMO_PLACE_AFTER_BODY, NULL);

    (void)state;
    check_inject(&after, "<html><head></head><body><p>x</p></body></html>",
                 "<html><head></head><body>" BLOCK "<p>x</p></body></html>");
    check_inject(&after, "<body>", "<body>" BLOCK);
    check_inject(&after, "<BODY>x", "<BODY>" BLOCK "x");
    check_inject(&after, "<BoDy\nclass=a>x", "<BoDy\nclass=a>" BLOCK "x");
    check_inject(&after, "<body/>x", "<body/>" BLOCK "x");
    check_inject(&after, "<body class=\"home\" id=main>x", "<body class=\"home\" id=main>" BLOCK "x");
    /* only the first */
    check_inject(&after, "<body><body>", "<body>" BLOCK "<body>");
    /* other elements, near misses */
    check_inject(&after, "<bodyguard><tbody><bod<body>x", "<bodyguard><tbody><bod<body>" BLOCK "x");
    check_inject(&after, "<<body>", "<<body>" BLOCK);
    check_inject(&after, "< body></body><body>", "< body></body><body>" BLOCK);
}

static void test_inject_body_quotes(void **state)
{
    promo_placement after = place(PROMO_PLACE_AFTER_BODY, NULL);

    (void)state;
    /* a '>' inside a quoted value does not end the tag */
    check_inject(&after, "<body class=\"home\" data-note=\"a > inside quotes\">\n<main>",
                 "<body class=\"home\" data-note=\"a > inside quotes\">" BLOCK "\n<main>");
    check_inject(&after, "<body data-a='x>y' data-b=\"p'>q\" data-c='\">'>z",
                 "<body data-a='x>y' data-b=\"p'>q\" data-c='\">'>" BLOCK "z");
    check_inject(&after, "<BODY ONLOAD = \"a>b\" >z", "<BODY ONLOAD = \"a>b\" >" BLOCK "z");
    check_inject(&after, "<body a=\"\"b='>'>z", "<body a=\"\"b='>'>" BLOCK "z");
    /* quotes that open no value, as HTML's tokenizer has it: the first '>' ends the tag */
    check_inject(&after, "<body class\"x>y\">z", "<body class\"x>" BLOCK "y\">z");
    check_inject(&after, "<body \"x>y\">z", "<body \"x>" BLOCK "y\">z");
    check_inject(&after, "<body a=b\"c>d\">z", "<body a=b\"c>" BLOCK "d\">z");
    check_inject(&after, "<body =\"x>y\">z", "<body =\"x>" BLOCK "y\">z");
    check_inject(&after, "<body a=>z", "<body a=>" BLOCK "z");
    check_inject(&after, "<body/a=\"/>\">z", "<body/a=\"/>\">" BLOCK "z");
    /* an unterminated tag never ends: nothing inserted, the page unchanged */
    check_inject(&after, "<body class=\"x>", "<body class=\"x>");
    check_inject(&after, "<body class='x", "<body class='x");
}

static void test_inject_before_body_end(void **state)
{
    promo_placement end = place(PROMO_PLACE_BEFORE_BODY_END, NULL);

    (void)state;
    check_inject(&end, "<body><p>x</p></body></html>", "<body><p>x</p>" BLOCK "</body></html>");
    check_inject(&end, "x</BODY >", "x" BLOCK "</BODY >");
    check_inject(&end, "x</Body\n>", "x" BLOCK "</Body\n>");
    check_inject(&end, "x</body/>", "x" BLOCK "</body/>");
    check_inject(&end, "</tbody></bodyx></body></body>", "</tbody></bodyx>" BLOCK "</body></body>");
    check_inject(&end, "<</</b</body>", "<</</b" BLOCK "</body>");
    /* "<body>" is not its end */
    check_inject(&end, "<body>x", "<body>x");
    check_inject(&end, "x</body", "x</body");
}

static void test_inject_marker(void **state)
{
    promo_placement marker = place(PROMO_PLACE_MARKER, "<!--promo-->");
    promo_placement abac = place(PROMO_PLACE_MARKER, "abac");
    promo_placement aab = place(PROMO_PLACE_MARKER, "aab");
    promo_placement one = place(PROMO_PLACE_MARKER, "@");

    (void)state;
    check_inject(&marker, "<main><p>PAGE-CONTENT</p><!--promo--></main>", "<main><p>PAGE-CONTENT</p>" BLOCK "</main>");
    check_inject(&marker, "<!--promo-->", BLOCK);
    check_inject(&marker, "a<!--promo-->b<!--promo-->c", "a" BLOCK "b<!--promo-->c");
    /* exact bytes: no case folding, no spaces */
    check_inject(&marker, "<!--PROMO--><!-- promo --><!--promo-->", "<!--PROMO--><!-- promo -->" BLOCK);
    /* overlaps */
    check_inject(&marker, "<!--<!--promo-->x", "<!--" BLOCK "x");
    check_inject(&marker, "<!--promo<!--promo-->x", "<!--promo" BLOCK "x");
    check_inject(&marker, "<!--promo--<!--promo-->", "<!--promo--" BLOCK);
    check_inject(&abac, "ababac", "ab" BLOCK);
    check_inject(&abac, "abababacab", "abab" BLOCK "ab");
    check_inject(&aab, "aaaab", "aa" BLOCK);
    check_inject(&aab, "aaaa", "aaaa");
    check_inject(&one, "x@y@", "x" BLOCK "y@");
    /* a partial marker at the end is page */
    check_inject(&marker, "x<!--promo--", "x<!--promo--");
}

static void test_inject_no_anchor(void **state)
{
    static const char page[] = "<html><head><title>No body</title></head><p>b</p><!--promo--></html>";
    promo_placement after = place(PROMO_PLACE_AFTER_BODY, NULL);
    promo_placement end = place(PROMO_PLACE_BEFORE_BODY_END, NULL);
    promo_placement marker = place(PROMO_PLACE_MARKER, "<!--banner-->");

    (void)state;
    check_inject(&after, page, page);
    check_inject(&end, page, page);
    check_inject(&marker, page, page);
    check_inject(&after, "", "");
    check_inject(&end, "", "");
    check_inject(&marker, "", "");
    check_inject(&after, "<", "<");
    check_inject(&after, "<body", "<body");
    check_inject(&after, "<body ", "<body ");
}

static void test_inject_bad_placement(void **state)
{
    promo_placement none = place(PROMO_PLACE_MARKER, NULL);
    promo_placement empty = place(PROMO_PLACE_MARKER, "");
    promo_placement unknown = place((promo_placement_kind)9, "<body>");
    char long_marker[300];

    (void)state;
    /* a placement promo_parse_placement would have refused finds nothing: the page passes unchanged */
    check_inject(&none, "<body><!--promo--></body>", "<body><!--promo--></body>");
    check_inject(&empty, "<body></body>", "<body></body>");
    check_inject(&unknown, "<body></body>", "<body></body>");
    memset(long_marker, 'x', sizeof(long_marker) - 1);
    long_marker[sizeof(long_marker) - 1] = '\0';
    {
        promo_placement too_long = place(PROMO_PLACE_MARKER, long_marker);

        check_inject(&too_long, long_marker, long_marker);
    }
    {
        promo_inject j;
        sink s = {0};

        promo_inject_init(&j, NULL, LIT(BLOCK));
        assert_int_equal(promo_inject_feed(&j, LIT("<body>"), sink_emit, &s), 0);
        assert_int_equal(promo_inject_finish(&j, sink_emit, &s), 0);
        assert_string_equal(s.data, "<body>");
        assert_int_equal(promo_inject_inserted(&j), 0);
        free(s.data);
    }
}

static void test_inject_binary(void **state)
{
    static const char doc[] = "a\0b<body x\0y>\0c";
    static const char expected[] = "a\0b<body x\0y>" BLOCK "\0c";
    promo_placement after = place(PROMO_PLACE_AFTER_BODY, NULL);
    promo_placement marker = place(PROMO_PLACE_MARKER, "\xff\xfe");
    promo_inject j;
    sink s = {0};

    (void)state;
    promo_inject_init(&j, &after, LIT(BLOCK));
    assert_int_equal(promo_inject_feed(&j, doc, sizeof(doc) - 1, sink_emit, &s), 0);
    assert_int_equal(promo_inject_finish(&j, sink_emit, &s), 0);
    assert_int_equal(s.len, sizeof(expected) - 1);
    assert_memory_equal(s.data, expected, s.len);
    free(s.data);
    check_inject(&marker, "\xff\xff\xfe\xfe", "\xff" BLOCK "\xfe");
}

/* A tag is held whole until its '>', at most PROMO_INJECT_PENDING_MAX bytes: a longer one gets no banner. */
static void test_inject_pending_overflow(void **state)
{
    promo_placement after = place(PROMO_PLACE_AFTER_BODY, NULL);
    size_t size = PROMO_INJECT_PENDING_MAX + 64, tag_len;
    char *doc = malloc(size), *expected = malloc(size + sizeof(BLOCK));
    static const char head[] = "<body data-x=\"";
    static const char tail[] = "\">";

    (void)state;
    assert_non_null(doc);
    assert_non_null(expected);
    for (tag_len = PROMO_INJECT_PENDING_MAX - 1; tag_len <= PROMO_INJECT_PENDING_MAX + 1; tag_len++) {
        /* a tag of tag_len bytes, '<' to '>', with '>' in its value, then text and another <body> */
        memset(doc, 'v', tag_len);
        memcpy(doc, head, sizeof(head) - 1);
        doc[sizeof(head)] = '>';
        memcpy(doc + tag_len - 2, tail, 2);
        strcpy(doc + tag_len, "text<body>");
        if (tag_len <= PROMO_INJECT_PENDING_MAX) {
            memcpy(expected, doc, tag_len);
            strcpy(expected + tag_len, BLOCK "text<body>");
        } else {
            /* given up: neither there, nor at the later <body>, nor at the end */
            strcpy(expected, doc);
        }
        check_inject(&after, doc, expected);
    }
    free(doc);
    free(expected);
}

/* Bytes leave as soon as they cannot be part of the anchor; once inserted, the input passes as given. */
static void test_inject_no_delay(void **state)
{
    static const struct {
        const char *in;
        const char *out; /* output so far */
    } steps[] = {
        {"abc", "abc"},
        {"<", "abc"},
        {"bo", "abc"},
        {"x", "abc<box"},
        {"<bod", "abc<box"},
        {"y class=\"a>", "abc<box"},
        {"b\"", "abc<box"},
        {">", "abc<box<body class=\"a>b\">" BLOCK},
        {"rest<body>", "abc<box<body class=\"a>b\">" BLOCK "rest<body>"},
    };
    promo_placement after = place(PROMO_PLACE_AFTER_BODY, NULL);
    promo_inject j;
    sink s = {0};
    size_t i;

    (void)state;
    promo_inject_init(&j, &after, LIT(BLOCK));
    for (i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        size_t calls = s.calls;

        assert_int_equal(promo_inject_feed(&j, steps[i].in, strlen(steps[i].in), sink_emit, &s), 0);
        assert_int_equal(s.len, strlen(steps[i].out));
        assert_memory_equal(s.data, steps[i].out, s.len);
        assert_int_equal(promo_inject_inserted(&j), i >= 7);
        if (i == sizeof(steps) / sizeof(steps[0]) - 1) {
            assert_int_equal(s.calls, calls + 1); /* one piece: the input itself */
        }
    }
    assert_int_equal(promo_inject_finish(&j, sink_emit, &s), 0);
    assert_int_equal(promo_inject_feed(&j, LIT("late"), sink_emit, &s), -1);
    free(s.data);

    /* before-body-end holds at most "</body" */
    {
        promo_placement end = place(PROMO_PLACE_BEFORE_BODY_END, NULL);

        memset(&s, 0, sizeof(s));
        promo_inject_init(&j, &end, LIT(BLOCK));
        assert_int_equal(promo_inject_feed(&j, LIT("x</body"), sink_emit, &s), 0);
        assert_string_equal(s.data, "x");
        assert_int_equal(promo_inject_feed(&j, LIT("\t"), sink_emit, &s), 0);
        assert_string_equal(s.data, "x" BLOCK "</body\t");
        free(s.data);
    }
}

/* Feeds doc in two halves and finishes; returns the number of emit calls, or 0 when a call failed. */
static size_t run_halves(const promo_placement *placement, const char *doc, size_t fail_at)
{
    size_t half = strlen(doc) / 2;
    promo_inject j;
    sink s = {0};
    int rc;

    s.fail_at = fail_at;
    promo_inject_init(&j, placement, LIT(BLOCK));
    rc = promo_inject_feed(&j, doc, half, sink_emit, &s);
    if (rc == 0) {
        rc = promo_inject_feed(&j, doc + half, strlen(doc) - half, sink_emit, &s);
    }
    if (rc == 0) {
        rc = promo_inject_finish(&j, sink_emit, &s);
    }
    if (rc == -1) {
        /* the failing call was the last one, and the injection stays failed */
        assert_int_equal(s.calls, fail_at);
        assert_int_equal(promo_inject_feed(&j, "x", 1, sink_emit, &s), -1);
        assert_int_equal(promo_inject_feed(&j, "x", 0, sink_emit, &s), -1);
        assert_int_equal(promo_inject_finish(&j, sink_emit, &s), -1);
        assert_int_equal(s.calls, fail_at);
    } else {
        assert_int_equal(rc, 0);
    }
    free(s.data);
    return rc == 0 ? s.calls : 0;
}

/* Each emit call in turn fails: the call into the injection that made it and every later one return -1. */
static void check_abort(const promo_placement *placement, const char *doc, size_t calls)
{
    size_t fail_at;

    assert_int_equal(run_halves(placement, doc, 0), calls);
    for (fail_at = 1; fail_at <= calls; fail_at++) {
        assert_int_equal(run_halves(placement, doc, fail_at), 0);
    }
}

static void test_inject_emit_error(void **state)
{
    promo_placement after = place(PROMO_PLACE_AFTER_BODY, NULL);
    promo_placement end = place(PROMO_PLACE_BEFORE_BODY_END, NULL);
    promo_placement marker = place(PROMO_PLACE_MARKER, "<!--promo-->");

    (void)state;
    /* "ab" with "<bo" held, then the held "<bo", "dy>", the block, "cd" */
    check_abort(&after, "ab<body>cd", 5);
    check_abort(&after, "abcd", 2);            /* the halves, nothing at the end */
    check_abort(&after, "ab<bod", 2);          /* "ab", then the held "<bod" at the end */
    check_abort(&end, "x</body>y", 4);         /* "x" with "</b" held, then the block, the held "</b", "ody>y" */
    check_abort(&marker, "a<!--promo-->b", 3); /* "a", the block, "b" */
}

/* ------------------------------------------------------------------------------------------------ discount */

static void test_code_status(void **state)
{
    static const char *const names[] = {"ok", "unknown", "disabled", "not_started", "expired", "exhausted"};
    promo_promotion p;
    size_t i;

    (void)state;
    promotion_init(&p, 1);
    assert_int_equal(promo_code_check(NULL, 1500, 0), PROMO_CODE_UNKNOWN);
    assert_int_equal(promo_code_check(&p, 1500, 0), PROMO_CODE_UNKNOWN); /* a promotion without a discount */
    p.discount = PROMO_DISCOUNT_PERCENT;
    p.code = (char *)"SPRING30";
    p.percent_off = 30;
    assert_int_equal(promo_code_check(&p, 1500, 0), PROMO_CODE_OK);
    assert_int_equal(promo_code_check(&p, 999, 0), PROMO_CODE_NOT_STARTED);
    assert_int_equal(promo_code_check(&p, 1000, 0), PROMO_CODE_OK);
    assert_int_equal(promo_code_check(&p, 1999, 0), PROMO_CODE_OK);
    assert_int_equal(promo_code_check(&p, 2000, 0), PROMO_CODE_EXPIRED);
    p.max_redemptions = 3;
    assert_int_equal(promo_code_check(&p, 1500, 2), PROMO_CODE_OK);
    assert_int_equal(promo_code_check(&p, 1500, 3), PROMO_CODE_EXHAUSTED);
    assert_int_equal(promo_code_check(&p, 1500, 4), PROMO_CODE_EXHAUSTED);
    p.max_redemptions = 0;
    assert_int_equal(promo_code_check(&p, 1500, 1000000), PROMO_CODE_OK);
    /* disabled before anything else, the schedule before the limit */
    p.max_redemptions = 1;
    p.enabled = 0;
    assert_int_equal(promo_code_check(&p, 2500, 5), PROMO_CODE_DISABLED);
    p.enabled = 1;
    assert_int_equal(promo_code_check(&p, 2500, 5), PROMO_CODE_EXPIRED);
    assert_int_equal(promo_code_check(&p, 500, 5), PROMO_CODE_NOT_STARTED);

    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        const char *message = promo_code_status_message((promo_code_status)i);

        assert_string_equal(promo_code_status_name((promo_code_status)i), names[i]);
        assert_true(strlen(message) > 0 && strlen(message) < 80);
    }
    assert_string_equal(promo_code_status_message(PROMO_CODE_EXPIRED), "This offer has ended.");
    assert_string_equal(promo_code_status_name((promo_code_status)42), "unknown");
    assert_string_equal(promo_code_status_message((promo_code_status)42),
                        promo_code_status_message(PROMO_CODE_UNKNOWN));
}

static void test_code_normalise(void **state)
{
    char out[PROMO_CODE_MAX + 1], small[4], code[PROMO_CODE_MAX + 2];

    (void)state;
    assert_int_equal(promo_code_normalise(LIT("congress30"), out, sizeof(out)), 0);
    assert_string_equal(out, "CONGRESS30");
    assert_int_equal(promo_code_normalise(LIT("a-b_C9"), out, sizeof(out)), 0);
    assert_string_equal(out, "A-B_C9");
    /* the length given counts */
    assert_int_equal(promo_code_normalise("abcdef", 3, out, sizeof(out)), 0);
    assert_string_equal(out, "ABC");

    assert_int_equal(promo_code_normalise(LIT(""), out, sizeof(out)), -1);
    assert_string_equal(out, "");
    assert_int_equal(promo_code_normalise(LIT("bad code!"), out, sizeof(out)), -1);
    assert_string_equal(out, "");
    assert_int_equal(promo_code_normalise(LIT(" CODE"), out, sizeof(out)), -1);
    assert_int_equal(promo_code_normalise(LIT("CODE."), out, sizeof(out)), -1);
    assert_int_equal(promo_code_normalise(LIT("CO\0DE"), out, sizeof(out)), -1);
    assert_int_equal(promo_code_normalise(LIT("caf\xc3\xa9"), out, sizeof(out)), -1);
    assert_int_equal(promo_code_normalise(NULL, 3, out, sizeof(out)), -1);
    assert_int_equal(promo_code_normalise(LIT("ABCD"), small, sizeof(small)), -1);
    assert_int_equal(promo_code_normalise(LIT("ABC"), small, sizeof(small)), 0);
    assert_int_equal(promo_code_normalise(LIT("ABC"), NULL, 0), -1);

    memset(code, 'x', sizeof(code));
    assert_int_equal(promo_code_normalise(code, PROMO_CODE_MAX, out, sizeof(out)), 0);
    assert_int_equal(strlen(out), PROMO_CODE_MAX);
    assert_int_equal(promo_code_normalise(code, PROMO_CODE_MAX + 1, out, sizeof(out)), -1);
}

static void test_first_year_price(void **state)
{
    promo_promotion p;

    (void)state;
    promotion_init(&p, 1);
    assert_int_equal(promo_first_year_price(NULL, 12000, "eur"), 12000);
    assert_int_equal(promo_first_year_price(&p, 12000, "eur"), 12000); /* no discount */

    p.discount = PROMO_DISCOUNT_PERCENT;
    p.percent_off = 30;
    assert_int_equal(promo_first_year_price(&p, 12000, "eur"), 8400);
    assert_int_equal(promo_first_year_price(&p, 12000, "usd"), 8400); /* a share has no currency */
    p.percent_off = 33;
    assert_int_equal(promo_first_year_price(&p, 999, "eur"), 669); /* 329.67 off, rounded to 330 */
    p.percent_off = 50;
    assert_int_equal(promo_first_year_price(&p, 999, "eur"), 499); /* 499.5 off, half up to 500 */
    assert_int_equal(promo_first_year_price(&p, 1, "eur"), 0);     /* 0.5 off, half up to 1 */
    p.percent_off = 10;
    assert_int_equal(promo_first_year_price(&p, 1004, "eur"), 904); /* 100.4 off: 100 */
    assert_int_equal(promo_first_year_price(&p, 1005, "eur"), 904); /* 100.5 off: 101 */
    p.percent_off = 100;
    assert_int_equal(promo_first_year_price(&p, 12000, "eur"), 0);
    p.percent_off = 150;
    assert_int_equal(promo_first_year_price(&p, 12000, "eur"), 0);
    p.percent_off = 1;
    assert_int_equal(promo_first_year_price(&p, 0, "eur"), 0);
    assert_int_equal(promo_first_year_price(&p, -5, "eur"), -5);
    /* no overflow near the top of the range */
    assert_int_equal(promo_first_year_price(&p, 9223372036854775800LL, "eur"), 9131138316486228042LL);

    p.discount = PROMO_DISCOUNT_AMOUNT;
    p.amount_off = 2000;
    strcpy(p.currency, "eur");
    assert_int_equal(promo_first_year_price(&p, 12000, "eur"), 10000);
    assert_int_equal(promo_first_year_price(&p, 12000, "EUR"), 10000);
    assert_int_equal(promo_first_year_price(&p, 2000, "eur"), 0);
    assert_int_equal(promo_first_year_price(&p, 1500, "eur"), 0); /* floored at 0 */
    assert_int_equal(promo_first_year_price(&p, 12000, "usd"), 12000);
    assert_int_equal(promo_first_year_price(&p, 12000, NULL), 12000);
    assert_int_equal(promo_first_year_price(&p, 12000, ""), 12000);
    p.currency[0] = '\0';
    assert_int_equal(promo_first_year_price(&p, 12000, "eur"), 12000);
}

static const char key_a[] = "promo-secret-0123456789abcdef";
static const char key_b[] = "promo-secret-0123456789abcdeF";

static void test_cookie_round_trip(void **state)
{
    char value[PROMO_COOKIE_MAX], code[PROMO_CODE_MAX + 1], longest[PROMO_CODE_MAX + 1];
    size_t len;

    (void)state;
    len = promo_cookie_make(LIT(key_a), "CONGRESS30", 1700000000, value, sizeof(value));
    assert_int_equal(len, strlen(value));
    assert_int_equal(len, strlen("CONGRESS30.1700000000.") + 43);
    assert_true(strncmp(value, "CONGRESS30.1700000000.", 22) == 0);
    assert_int_equal(promo_cookie_parse(LIT(key_a), value, len, 1699999999, code, sizeof(code)), 0);
    assert_string_equal(code, "CONGRESS30");

    /* the MAC is HMAC-SHA256 over "CODE.EXPIRY", in base64url */
    {
        unsigned char mac[CRYPTO_SHA256_LEN];
        char text[64];

        crypto_hmac_sha256(LIT(key_a), LIT("CONGRESS30.1700000000"), mac);
        crypto_base64url_encode(mac, sizeof(mac), text);
        assert_string_equal(value + 22, text);
    }

    /* the longest code, the latest expiry: still within PROMO_COOKIE_MAX */
    memset(longest, 'Z', PROMO_CODE_MAX);
    longest[PROMO_CODE_MAX] = '\0';
    len = promo_cookie_make(LIT(key_a), longest, (time_t)9223372036854775807LL, value, sizeof(value));
    assert_true(len > 0 && len < PROMO_COOKIE_MAX);
    assert_int_equal(promo_cookie_parse(LIT(key_a), value, len, 1700000000, code, sizeof(code)), 0);
    assert_string_equal(code, longest);
    /* a code buffer too small for it */
    assert_int_equal(promo_cookie_parse(LIT(key_a), value, len, 1700000000, code, PROMO_CODE_MAX), -1);
    assert_string_equal(code, "");
}

static void test_cookie_refusals(void **state)
{
    char value[PROMO_COOKIE_MAX], edited[PROMO_COOKIE_MAX + 8], code[PROMO_CODE_MAX + 1];
    size_t len, i, cut;

    (void)state;
    len = promo_cookie_make(LIT(key_a), "CONGRESS30", 1700000000, value, sizeof(value));
    assert_true(len > 0);

    /* expired at its expiry */
    assert_int_equal(promo_cookie_parse(LIT(key_a), value, len, 1700000000, code, sizeof(code)), -1);
    assert_string_equal(code, "");
    assert_int_equal(promo_cookie_parse(LIT(key_a), value, len, 1800000000, code, sizeof(code)), -1);
    /* another key */
    assert_int_equal(promo_cookie_parse(LIT(key_b), value, len, 1600000000, code, sizeof(code)), -1);
    assert_int_equal(promo_cookie_parse(key_a, sizeof(key_a) - 2, value, len, 1600000000, code, sizeof(code)), -1);
    /* every byte changed in turn, upper or lower case included */
    for (i = 0; i < len; i++) {
        memcpy(edited, value, len);
        edited[i] = (char)(edited[i] ^ 0x20);
        if (promo_cookie_parse(LIT(key_a), edited, len, 1600000000, code, sizeof(code)) != -1) {
            fail_msg("byte %zu changed and accepted: %.*s", i, (int)len, edited);
        }
        edited[i] = value[i] == 'A' ? 'B' : 'A';
        assert_int_equal(promo_cookie_parse(LIT(key_a), edited, len, 1600000000, code, sizeof(code)), -1);
    }
    /* truncated anywhere, or longer */
    for (cut = 0; cut < len; cut++) {
        assert_int_equal(promo_cookie_parse(LIT(key_a), value, cut, 1600000000, code, sizeof(code)), -1);
    }
    memcpy(edited, value, len);
    memcpy(edited + len, "AA", 2);
    assert_int_equal(promo_cookie_parse(LIT(key_a), edited, len + 2, 1600000000, code, sizeof(code)), -1);
    memcpy(edited + len, ".x", 2);
    assert_int_equal(promo_cookie_parse(LIT(key_a), edited, len + 2, 1600000000, code, sizeof(code)), -1);
    /* the expiry pushed later: the MAC no longer holds */
    assert_int_equal(promo_cookie_parse(LIT(key_a),
                                        LIT("CONGRESS30.1900000000.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
                                        1600000000, code, sizeof(code)),
                     -1);
    /* shapes refused before any MAC is computed */
    assert_int_equal(promo_cookie_parse(LIT(key_a), LIT("CONGRESS30"), 0, code, sizeof(code)), -1);
    assert_int_equal(promo_cookie_parse(LIT(key_a), LIT("CONGRESS30.17"), 0, code, sizeof(code)), -1);
    assert_int_equal(promo_cookie_parse(LIT(key_a), LIT(".1700000000.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"), 0,
                                        code, sizeof(code)),
                     -1);
    assert_int_equal(promo_cookie_parse(LIT(key_a),
                                        LIT("C.99999999999999999999.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"), 0,
                                        code, sizeof(code)),
                     -1);
    assert_int_equal(
        promo_cookie_parse(LIT(key_a), LIT("C.-1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"), 0, code, sizeof(code)),
        -1);
    /* bounded: never more than PROMO_COOKIE_MAX bytes looked at */
    {
        char big[4096];

        memset(big, 'A', sizeof(big));
        assert_int_equal(promo_cookie_parse(LIT(key_a), big, sizeof(big), 0, code, sizeof(code)), -1);
    }
    assert_int_equal(promo_cookie_parse(LIT(key_a), NULL, 10, 0, code, sizeof(code)), -1);
    assert_int_equal(promo_cookie_parse(NULL, 0, value, len, 1600000000, code, sizeof(code)), -1);
    assert_int_equal(promo_cookie_parse(LIT(key_a), value, len, 1600000000, NULL, 0), -1);

    /* what promo_cookie_make refuses */
    assert_int_equal(promo_cookie_make(LIT(key_a), "congress30", 1700000000, value, sizeof(value)), 0);
    assert_string_equal(value, "");
    assert_int_equal(promo_cookie_make(LIT(key_a), "", 1700000000, value, sizeof(value)), 0);
    assert_int_equal(promo_cookie_make(LIT(key_a), "A.B", 1700000000, value, sizeof(value)), 0);
    assert_int_equal(
        promo_cookie_make(LIT(key_a), "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", 1700000000, value, sizeof(value)),
        0); /* 33 characters */
    assert_int_equal(promo_cookie_make(LIT(key_a), NULL, 1700000000, value, sizeof(value)), 0);
    assert_int_equal(promo_cookie_make(key_a, 0, "CODE", 1700000000, value, sizeof(value)), 0);
    assert_int_equal(promo_cookie_make(NULL, 5, "CODE", 1700000000, value, sizeof(value)), 0);
    assert_int_equal(promo_cookie_make(LIT(key_a), "CODE", -1, value, sizeof(value)), 0);
    /* an output buffer exactly large enough, and one byte short */
    len = strlen("CODE.1700000000.") + 43;
    assert_int_equal(promo_cookie_make(LIT(key_a), "CODE", 1700000000, value, len + 1), len);
    assert_int_equal(promo_cookie_make(LIT(key_a), "CODE", 1700000000, edited, len), 0);
    assert_string_equal(edited, "");
    assert_int_equal(promo_cookie_make(LIT(key_a), "CODE", 1700000000, NULL, 0), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_eligible_schedule),
        cmocka_unit_test(test_eligible_audience),
        cmocka_unit_test(test_eligible_paths),
        cmocka_unit_test(test_eligible_dismissed),
        cmocka_unit_test(test_choose_weighted),
        cmocka_unit_test(test_choose_edges),
        cmocka_unit_test(test_banner_structure),
        cmocka_unit_test(test_banner_escaping),
        cmocka_unit_test(test_banner_scoped_style),
        cmocka_unit_test(test_banner_picture),
        cmocka_unit_test(test_banner_dismiss),
        cmocka_unit_test(test_parse_placement),
        cmocka_unit_test(test_inject_after_body),
        cmocka_unit_test(test_inject_body_quotes),
        cmocka_unit_test(test_inject_before_body_end),
        cmocka_unit_test(test_inject_marker),
        cmocka_unit_test(test_inject_no_anchor),
        cmocka_unit_test(test_inject_bad_placement),
        cmocka_unit_test(test_inject_binary),
        cmocka_unit_test(test_inject_pending_overflow),
        cmocka_unit_test(test_inject_no_delay),
        cmocka_unit_test(test_inject_emit_error),
        cmocka_unit_test(test_code_status),
        cmocka_unit_test(test_code_normalise),
        cmocka_unit_test(test_first_year_price),
        cmocka_unit_test(test_cookie_round_trip),
        cmocka_unit_test(test_cookie_refusals),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
