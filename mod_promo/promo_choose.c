/* Which promotion a page shows (see promo.h): the eligibility rules, then a weighted draw among the eligible ones.
 *
 * The draw maps the 32-bit roll onto [0, total weight) with a multiply and a shift rather than a modulo: each weight
 * unit gets either floor(2^32 / total) or one more of the 2^32 rolls, so no promotion is favoured by more than one
 * roll in 2^32 / total (total is at most PROMO_PROMOTIONS_MAX * PROMO_WEIGHT_MAX, 10^6: a bias below 0.03 %), and the
 * rolls a promotion gets form one contiguous range, which keeps the tests' evenly spaced rolls exact. */
#include "promo.h"

#include <stdint.h>
#include <string.h>

#define PROMO_ACCESS_GRANTED "granted"

static int promo_is_granted(const char *access)
{
    return access != NULL && strcmp(access, PROMO_ACCESS_GRANTED) == 0;
}

static int promo_audience_matches(const promo_promotion *promotion, const promo_visit *visit)
{
    size_t i, nplans;

    switch (promotion->audience) {
    case PROMO_AUDIENCE_EVERYONE:
        return 1;
    case PROMO_AUDIENCE_ANONYMOUS:
        return !visit->logged_in;
    case PROMO_AUDIENCE_NON_SUBSCRIBERS:
        /* absent counts as not granted: a page mod_paywall does not gate is still shown to non-subscribers */
        return !promo_is_granted(visit->paywall_access);
    case PROMO_AUDIENCE_SUBSCRIBERS:
        return promo_is_granted(visit->paywall_access);
    case PROMO_AUDIENCE_PLANS:
        if (!promo_is_granted(visit->paywall_access) || visit->paywall_plan == NULL) {
            return 0;
        }
        nplans = promotion->nplans < PROMO_PLANS_MAX ? promotion->nplans : PROMO_PLANS_MAX;
        for (i = 0; i < nplans; i++) {
            if (promotion->plans[i] != NULL && strcmp(promotion->plans[i], visit->paywall_plan) == 0) {
                return 1;
            }
        }
        return 0;
    }
    /* a value this code does not know: showing a banner to the wrong people is worse than not showing it */
    return 0;
}

/* A prefix matches whole path segments: "/articles" takes "/articles" and "/articles/x" but not "/articlesfoo",
 * which an editor who typed "/articles" would not expect; "/articles/" and "/" match as plain prefixes. */
static int promo_path_matches(const char *prefix, const char *path, size_t path_len)
{
    size_t len = strlen(prefix);

    if (len == 0 || len > path_len || memcmp(prefix, path, len) != 0) {
        return 0;
    }
    return prefix[len - 1] == '/' || len == path_len || path[len] == '/';
}

static int promo_paths_match(const promo_promotion *promotion, const promo_visit *visit)
{
    size_t i, npaths = promotion->npaths < PROMO_PATHS_MAX ? promotion->npaths : PROMO_PATHS_MAX;
    const char *path = visit->path != NULL ? visit->path : "";
    size_t path_len = visit->path != NULL ? visit->path_len : 0;

    if (npaths == 0) {
        return 1;
    }
    for (i = 0; i < npaths; i++) {
        if (promotion->paths[i] != NULL && promo_path_matches(promotion->paths[i], path, path_len)) {
            return 1;
        }
    }
    return 0;
}

/* The cookie is written by the banner's script but may be edited by anyone: a part that is not a plain decimal id
 * (empty, a sign, a letter, too many digits) is skipped, never taken for another id. */
static int promo_is_dismissed(long long id, const char *dismissed, size_t len)
{
    size_t i = 0;

    if (dismissed == NULL) {
        return 0;
    }
    while (i <= len) {
        size_t start = i;
        unsigned long long value = 0;
        int ok = 1;

        while (i < len && dismissed[i] != '.') {
            unsigned char c = (unsigned char)dismissed[i];

            if (c < '0' || c > '9' || value > ((unsigned long long)INT64_MAX - (c - '0')) / 10) {
                ok = 0;
            } else if (ok) {
                value = value * 10 + (c - '0');
            }
            i++;
        }
        if (ok && i > start && id >= 0 && value == (unsigned long long)id) {
            return 1;
        }
        i++; /* past the '.', or past the end */
    }
    return 0;
}

int promo_eligible(const promo_promotion *promotion, const promo_visit *visit)
{
    if (promotion == NULL || visit == NULL || !promotion->enabled) {
        return 0;
    }
    if (visit->now < promotion->starts_at || visit->now >= promotion->ends_at) {
        return 0;
    }
    return promo_audience_matches(promotion, visit) && promo_paths_match(promotion, visit) &&
           !promo_is_dismissed(promotion->id, visit->dismissed, visit->dismissed_len);
}

/* A weight outside 1 to PROMO_WEIGHT_MAX never comes from a validated promotion; clamping it keeps one bad record
 * from either vanishing or drowning every other promotion. */
static uint64_t promo_weight(const promo_promotion *promotion)
{
    if (promotion->weight < 1) {
        return 1;
    }
    return promotion->weight > PROMO_WEIGHT_MAX ? PROMO_WEIGHT_MAX : promotion->weight;
}

const promo_promotion *promo_choose(const promo_promotion *const *promotions, size_t count, const promo_visit *visit,
                                    unsigned roll)
{
    uint64_t total = 0, pick;
    size_t i, last = 0;

    if (promotions == NULL || visit == NULL) {
        return NULL;
    }
    for (i = 0; i < count; i++) {
        if (promo_eligible(promotions[i], visit)) {
            /* the multiply below needs total < 2^32: far beyond any real list, so simply stop counting there */
            if (total + promo_weight(promotions[i]) > UINT32_MAX) {
                break;
            }
            total += promo_weight(promotions[i]);
            last = i + 1;
        }
    }
    if (total == 0) {
        return NULL;
    }
    pick = ((uint64_t)(roll & 0xffffffffu) * total) >> 32;
    for (i = 0; i < last; i++) {
        if (promo_eligible(promotions[i], visit)) {
            uint64_t weight = promo_weight(promotions[i]);

            if (pick < weight) {
                return promotions[i];
            }
            pick -= weight;
        }
    }
    return NULL; /* not reached: pick < total */
}
