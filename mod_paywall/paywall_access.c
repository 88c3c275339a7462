/* The access decision from a subscription's state, and the setters of the directives that shape it
 * (see paywall.h). */
#include "paywall.h"

#include <string.h>
#include <strings.h>

#define PAYWALL_URL_MAX 2048

static const struct {
    const char *name;
    paywall_sub_status status;
} paywall_sub_statuses[] = {
    {"active", PAYWALL_SUB_ACTIVE},         {"trialing", PAYWALL_SUB_TRIALING},
    {"past_due", PAYWALL_SUB_PAST_DUE},     {"unpaid", PAYWALL_SUB_UNPAID},
    {"incomplete", PAYWALL_SUB_INCOMPLETE}, {"incomplete_expired", PAYWALL_SUB_INCOMPLETE_EXPIRED},
    {"canceled", PAYWALL_SUB_CANCELED},     {"paused", PAYWALL_SUB_PAUSED},
};

paywall_sub_status paywall_sub_status_parse(const char *text, size_t len)
{
    size_t i;

    if (text == NULL) {
        return PAYWALL_SUB_UNKNOWN;
    }
    for (i = 0; i < sizeof(paywall_sub_statuses) / sizeof(paywall_sub_statuses[0]); i++) {
        if (strlen(paywall_sub_statuses[i].name) == len && memcmp(paywall_sub_statuses[i].name, text, len) == 0) {
            return paywall_sub_statuses[i].status;
        }
    }
    return PAYWALL_SUB_UNKNOWN;
}

const char *paywall_sub_status_name(paywall_sub_status status)
{
    size_t i;

    for (i = 0; i < sizeof(paywall_sub_statuses) / sizeof(paywall_sub_statuses[0]); i++) {
        if (paywall_sub_statuses[i].status == status) {
            return paywall_sub_statuses[i].name;
        }
    }
    return "unknown";
}

static paywall_decision paywall_access_result(paywall_decision decision, const char *why, const char **reason)
{
    if (reason != NULL) {
        *reason = why;
    }
    return decision;
}

/* Whether the status alone opens; *why says which rule decided. */
static int paywall_access_status_opens(const paywall_subscription *sub, long grace, time_t now, const char **why)
{
    switch (sub->status) {
    case PAYWALL_SUB_ACTIVE:
        *why = "active";
        return 1;
    case PAYWALL_SUB_TRIALING:
        *why = "trialing";
        return 1;
    case PAYWALL_SUB_PAST_DUE:
        if (sub->past_due_since <= 0) {
            *why = "past_due since an unknown time";
            return 0;
        }
        /* Written so that nothing can overflow: now - past_due_since is only taken when it is not negative. */
        if (now < sub->past_due_since || (long long)(now - sub->past_due_since) < (long long)(grace < 0 ? 0 : grace)) {
            *why = "past_due within grace";
            return 1;
        }
        *why = "past_due, grace over";
        return 0;
    case PAYWALL_SUB_UNPAID:
        *why = "unpaid";
        return 0;
    case PAYWALL_SUB_INCOMPLETE:
        *why = "incomplete";
        return 0;
    case PAYWALL_SUB_INCOMPLETE_EXPIRED:
        *why = "incomplete_expired";
        return 0;
    case PAYWALL_SUB_CANCELED:
        *why = "canceled";
        return 0;
    case PAYWALL_SUB_PAUSED:
        *why = "paused";
        return 0;
    case PAYWALL_SUB_UNKNOWN:
        break;
    }
    *why = "unknown status";
    return 0;
}

static int paywall_access_plan_allowed(const paywall_require *require, const char *plan)
{
    size_t i;

    if (require->any) {
        return 1;
    }
    if (plan == NULL) {
        return 0;
    }
    for (i = 0; i < require->nplans && i < PAYWALL_REQUIRE_MAX; i++) {
        if (require->plans[i] != NULL && strcmp(require->plans[i], plan) == 0) {
            return 1;
        }
    }
    return 0;
}

paywall_decision paywall_access_decide(const paywall_subscription *sub, const paywall_require *require, long grace,
                                       time_t now, const char **reason)
{
    const char *why;

    if (sub == NULL) {
        return paywall_access_result(PAYWALL_DENIED, "no subscription", reason);
    }
    if (!paywall_access_status_opens(sub, grace, now, &why)) {
        return paywall_access_result(PAYWALL_DENIED, why, reason);
    }
    if (sub->cancel_at_period_end && now >= sub->current_period_end) {
        return paywall_access_result(PAYWALL_DENIED, "cancelled at period end, period over", reason);
    }
    if (require == NULL || (!require->any && require->nplans == 0)) {
        return paywall_access_result(PAYWALL_DENIED, "PaywallRequire lists no plan", reason);
    }
    if (!paywall_access_plan_allowed(require, sub->plan)) {
        return paywall_access_result(PAYWALL_DENIED, "plan not in PaywallRequire", reason);
    }
    return paywall_access_result(PAYWALL_GRANTED, why, reason);
}

/* --------------------------------------------------------------------------------------------- directives */

const char *paywall_parse_grace(const char *value, long *out)
{
    long seconds;

    if (paywall_parse_duration(value, &seconds) != NULL || seconds > 365L * 24 * 60 * 60) {
        return "must be a duration from 0 to 365d such as 7d or 36h (a bare number is seconds; units s, m, h, d)";
    }
    *out = seconds;
    return NULL;
}

static int paywall_plan_name_ok(const char *name)
{
    size_t i;

    for (i = 0; name[i] != '\0'; i++) {
        /* A comma is refused so that "gold,silver" cannot pass for one plan nobody has. */
        if ((unsigned char)name[i] <= 0x20 || (unsigned char)name[i] >= 0x7f || name[i] == ',' || name[i] == '"') {
            return 0;
        }
    }
    return i > 0 && i <= PAYWALL_PLAN_MAX;
}

const char *paywall_parse_require(paywall_require *require, const char *arg)
{
    size_t i;

    if (arg == NULL || *arg == '\0') {
        return "must be any or plan names";
    }
    if (strcasecmp(arg, "any") == 0) {
        if (require->nplans > 0) {
            return "cannot combine any with plan names";
        }
        require->any = 1;
        return NULL;
    }
    if (require->any) {
        return "cannot combine any with plan names";
    }
    if (!paywall_plan_name_ok(arg)) {
        return "plan names are 1 to 128 printable ASCII characters without space, comma or quote";
    }
    for (i = 0; i < require->nplans; i++) {
        if (strcmp(require->plans[i], arg) == 0) {
            return NULL;
        }
    }
    if (require->nplans >= PAYWALL_REQUIRE_MAX) {
        return "lists more than 32 plans";
    }
    require->plans[require->nplans++] = arg;
    return NULL;
}

static int paywall_url_ok(const char *url)
{
    size_t i;

    if (url[0] != '/' && strncasecmp(url, "http://", 7) != 0 && strncasecmp(url, "https://", 8) != 0) {
        return 0;
    }
    for (i = 0; url[i] != '\0'; i++) {
        /* Nothing that could end the Location header or the HTML attribute the URL may be written into. */
        if ((unsigned char)url[i] <= 0x20 || (unsigned char)url[i] >= 0x7f || strchr("\"'<>\\", url[i]) != NULL) {
            return 0;
        }
    }
    return i <= PAYWALL_URL_MAX;
}

const char *paywall_parse_deny(const char *kind, const char *arg, paywall_deny *out)
{
    int code = 0, i;

    if (kind == NULL) {
        return "must be redirect URL, teaser or status CODE";
    }
    if (strcasecmp(kind, "teaser") == 0) {
        if (arg != NULL) {
            return "teaser takes no argument";
        }
        out->kind = PAYWALL_DENY_TEASER;
        out->url = NULL;
        out->status = 0;
        return NULL;
    }
    if (strcasecmp(kind, "redirect") == 0) {
        if (arg == NULL || !paywall_url_ok(arg)) {
            return "redirect needs a path or an http(s) URL without spaces or quotes";
        }
        out->kind = PAYWALL_DENY_REDIRECT;
        out->url = arg;
        out->status = 0;
        return NULL;
    }
    if (strcasecmp(kind, "status") == 0) {
        if (arg == NULL) {
            return "status needs a 4xx code";
        }
        for (i = 0; arg[i] != '\0'; i++) {
            if (i >= 3 || arg[i] < '0' || arg[i] > '9') {
                return "status needs a 4xx code";
            }
            code = code * 10 + (arg[i] - '0');
        }
        if (code < 400 || code > 499) {
            return "status needs a 4xx code";
        }
        out->kind = PAYWALL_DENY_STATUS;
        out->url = NULL;
        out->status = code;
        return NULL;
    }
    return "must be redirect URL, teaser or status CODE";
}

const char *paywall_parse_fail_mode(const char *value, paywall_fail_mode *out)
{
    if (value != NULL && strcasecmp(value, "open") == 0) {
        *out = PAYWALL_FAIL_OPEN;
    } else if (value != NULL && strcasecmp(value, "closed") == 0) {
        *out = PAYWALL_FAIL_CLOSED;
    } else {
        return "must be open or closed";
    }
    return NULL;
}
