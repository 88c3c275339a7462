/* libFuzzer target for mod_promo/promo_json.c.
 *
 * Input: the body of a POST or PUT to the editors' API, as it reaches promo_promotion_from_json. Properties: never
 * crash or leak; a refusal leaves *out all zero, a non-empty printable message and a field that is NULL or a short
 * printable name; an accepted promotion keeps every rule of promo.h (lengths, character sets, ranges, the discount's
 * shape); and what promo_promotion_to_json writes for it is read back to text that is byte for byte the same, so the
 * store's bodies are a fixed point.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "promo.h"

#include "fuzz.h"

static int fuzz_printable(const char *s)
{
    for (; *s != '\0'; s++) {
        if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f) {
            return 0;
        }
    }
    return 1;
}

static int fuzz_all_zero(const void *p, size_t len)
{
    const unsigned char *b = p;
    size_t i;

    for (i = 0; i < len; i++) {
        if (b[i] != 0) {
            return 0;
        }
    }
    return 1;
}

/* 1 to max bytes (strnlen first, so that an unterminated string is caught by the bound or by ASan), no C0, DEL or
 * C1 control, and no < > when it is banner text. */
static void fuzz_check_text(const char *s, size_t max, int required, int text)
{
    size_t i, len;

    FUZZ_CHECK(!required || s != NULL);
    if (s == NULL) {
        return;
    }
    len = strnlen(s, max + 1);
    FUZZ_CHECK(len >= 1 && len <= max);
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];

        FUZZ_CHECK(c >= 0x20 && c != 0x7f);
        FUZZ_CHECK(!(c == 0xc2 && (unsigned char)s[i + 1] >= 0x80 && (unsigned char)s[i + 1] < 0xa0));
        FUZZ_CHECK(!text || (c != '<' && c != '>'));
    }
}

static void fuzz_check_url(const char *s, int required)
{
    size_t len;

    FUZZ_CHECK(!required || s != NULL);
    if (s == NULL) {
        return;
    }
    len = strnlen(s, PROMO_URL_MAX + 1);
    FUZZ_CHECK(len >= 1 && len <= PROMO_URL_MAX);
    FUZZ_CHECK(fuzz_printable(s) && strpbrk(s, " \"'<>\\") == NULL);
    FUZZ_CHECK((s[0] == '/' && s[1] != '/') || strncasecmp(s, "http://", 7) == 0 || strncasecmp(s, "https://", 8) == 0);
    if (s[0] != '/') {
        const char *host = s + (s[4] == ':' ? 7 : 8);

        FUZZ_CHECK(*host != '\0' && strchr("/?#@:", *host) == NULL);
    }
}

static void fuzz_check_color(const char *c)
{
    size_t i;

    FUZZ_CHECK(c[0] == '#' && c[7] == '\0');
    for (i = 1; i < 7; i++) {
        FUZZ_CHECK((c[i] >= '0' && c[i] <= '9') || (c[i] >= 'a' && c[i] <= 'f'));
    }
}

static void fuzz_check_promotion(const promo_promotion *p)
{
    size_t i;

    FUZZ_CHECK(p->id == 0);
    fuzz_check_text(p->name, PROMO_NAME_MAX, 1, 1);
    FUZZ_CHECK(p->starts_at >= 0 && p->ends_at > p->starts_at && p->ends_at <= 253402300799LL);
    FUZZ_CHECK(p->enabled == 0 || p->enabled == 1);
    FUZZ_CHECK(p->audience >= PROMO_AUDIENCE_EVERYONE && p->audience <= PROMO_AUDIENCE_PLANS);
    FUZZ_CHECK(strcmp(promo_audience_name(p->audience), "unknown") != 0);
    FUZZ_CHECK(p->audience == PROMO_AUDIENCE_PLANS ? p->nplans >= 1 && p->nplans <= PROMO_PLANS_MAX : p->nplans == 0);
    for (i = 0; i < p->nplans; i++) {
        size_t len = strnlen(p->plans[i], 129);

        FUZZ_CHECK(len >= 1 && len <= 128 && fuzz_printable(p->plans[i]) && strpbrk(p->plans[i], " ,\"") == NULL);
    }
    for (i = p->nplans; i < PROMO_PLANS_MAX; i++) {
        FUZZ_CHECK(p->plans[i] == NULL);
    }
    FUZZ_CHECK(p->npaths <= PROMO_PATHS_MAX);
    for (i = 0; i < p->npaths; i++) {
        fuzz_check_text(p->paths[i], 255, 1, 0);
        FUZZ_CHECK(p->paths[i][0] == '/');
    }
    for (i = p->npaths; i < PROMO_PATHS_MAX; i++) {
        FUZZ_CHECK(p->paths[i] == NULL);
    }
    FUZZ_CHECK(p->weight >= 1 && p->weight <= PROMO_WEIGHT_MAX);
    fuzz_check_text(p->headline, PROMO_HEADLINE_MAX, 1, 1);
    fuzz_check_text(p->text, PROMO_TEXT_MAX, 0, 1);
    fuzz_check_text(p->cta_label, PROMO_LABEL_MAX, 1, 1);
    fuzz_check_url(p->cta_url, 1);
    fuzz_check_url(p->image_wide, 0);
    fuzz_check_url(p->image_narrow, 0);
    FUZZ_CHECK(p->image_narrow == NULL || p->image_wide != NULL);
    FUZZ_CHECK(p->image_wide == NULL || p->image_alt != NULL);
    fuzz_check_text(p->image_alt, PROMO_TEXT_MAX, 0, 1);
    fuzz_check_color(p->bg_color);
    fuzz_check_color(p->fg_color);
    fuzz_check_color(p->cta_bg_color);
    fuzz_check_color(p->cta_fg_color);
    FUZZ_CHECK(p->dismiss_days <= PROMO_DISMISS_MAX);

    if (p->discount == PROMO_DISCOUNT_NONE) {
        FUZZ_CHECK(p->code == NULL && p->percent_off == 0 && p->amount_off == 0 && p->currency[0] == '\0' &&
                   p->duration == PROMO_DURATION_ONCE && p->duration_months == 0 && p->stripe_coupon == NULL &&
                   p->max_redemptions == 0);
        return;
    }
    FUZZ_CHECK(p->code != NULL && strnlen(p->code, PROMO_CODE_MAX + 1) >= 1 &&
               strnlen(p->code, PROMO_CODE_MAX + 1) <= PROMO_CODE_MAX);
    FUZZ_CHECK(strspn(p->code, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") == strlen(p->code));
    if (p->discount == PROMO_DISCOUNT_PERCENT) {
        FUZZ_CHECK(p->percent_off >= 1 && p->percent_off <= 100 && p->amount_off == 0 && p->currency[0] == '\0');
    } else {
        FUZZ_CHECK(p->discount == PROMO_DISCOUNT_AMOUNT);
        FUZZ_CHECK(p->amount_off >= 1 && p->amount_off <= 1000000000LL && p->percent_off == 0);
        FUZZ_CHECK(strnlen(p->currency, 4) == 3 && strspn(p->currency, "abcdefghijklmnopqrstuvwxyz") == 3);
    }
    FUZZ_CHECK(p->duration == PROMO_DURATION_REPEATING ? p->duration_months >= 1 && p->duration_months <= 36
                                                       : p->duration_months == 0);
    FUZZ_CHECK(p->duration == PROMO_DURATION_ONCE || p->duration == PROMO_DURATION_REPEATING ||
               p->duration == PROMO_DURATION_FOREVER);
    if (p->stripe_coupon != NULL) {
        FUZZ_CHECK(strnlen(p->stripe_coupon, 256) >= 1 && strnlen(p->stripe_coupon, 256) <= 255);
        FUZZ_CHECK(strspn(p->stripe_coupon, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") ==
                   strlen(p->stripe_coupon));
    }
    FUZZ_CHECK(p->max_redemptions >= 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    promo_promotion p, again;
    const char *field = "unset";
    char err[256], *first, *second;
    int rc;

    memset(&p, 0xa5, sizeof(p));
    memset(err, 'x', sizeof(err));
    rc = promo_promotion_from_json((const char *)data, size, &p, &field, err, sizeof(err));
    FUZZ_CHECK(rc == 0 || rc == -1);
    if (rc != 0) {
        FUZZ_CHECK(fuzz_all_zero(&p, sizeof(p)));
        FUZZ_CHECK(memchr(err, '\0', sizeof(err)) != NULL && err[0] != '\0' && fuzz_printable(err));
        FUZZ_CHECK(field == NULL || (field[0] != '\0' && strlen(field) <= 80 && fuzz_printable(field)));
        FUZZ_CHECK(promo_promotion_from_json((const char *)data, size, &again, NULL, NULL, 0) == -1);
        FUZZ_CHECK(fuzz_all_zero(&again, sizeof(again)));
        return 0;
    }
    FUZZ_CHECK(field == NULL && err[0] == '\0');
    fuzz_check_promotion(&p);

    first = promo_promotion_to_json(&p);
    FUZZ_CHECK(first != NULL);
    rc = promo_promotion_from_json(first, strlen(first), &again, &field, err, sizeof(err));
    if (rc != 0) {
        fprintf(stderr, "written text refused: %s [%s]\n%s\n", err, field ? field : "-", first);
    }
    FUZZ_CHECK(rc == 0);
    fuzz_check_promotion(&again);
    second = promo_promotion_to_json(&again);
    FUZZ_CHECK(second != NULL);
    FUZZ_CHECK(strcmp(first, second) == 0);

    free(first);
    free(second);
    promo_promotion_clear(&p);
    promo_promotion_clear(&again);
    FUZZ_CHECK(fuzz_all_zero(&p, sizeof(p)));
    return 0;
}
