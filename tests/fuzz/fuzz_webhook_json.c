/* libFuzzer target for mod_paywall/paywall_event.c.
 *
 * Input: the body of a webhook, as it reaches paywall_event_parse once the signature has been verified. Properties:
 * never crash or leak; a refusal leaves *out NULL and a non-empty printable message; an accepted event has every
 * string NUL-terminated, within its limit and of its character set, times and amounts in range, only the member of
 * its type filled, and parses again to the same event (nothing depends on state or uninitialised memory).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "paywall.h"

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

static int fuzz_all_of(const char *s, const char *set)
{
    size_t i;

    for (i = 0; s[i] != '\0'; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') ||
              strchr(set, s[i]) != NULL)) {
            return 0;
        }
    }
    return 1;
}

/* NULL allowed unless required; else 1 to max bytes (strnlen first, so an unterminated string is caught by ASan or
 * by the bound rather than read past). */
static void fuzz_check_id(const char *s, int required)
{
    FUZZ_CHECK(!required || s != NULL);
    if (s != NULL) {
        FUZZ_CHECK(strnlen(s, PAYWALL_EVENT_ID_MAX + 1) >= 1 && strnlen(s, PAYWALL_EVENT_ID_MAX + 1) <= 255);
        FUZZ_CHECK(fuzz_all_of(s, "_"));
    }
}

static void fuzz_check_user(const char *s)
{
    if (s != NULL) {
        FUZZ_CHECK(strnlen(s, PAYWALL_EVENT_ID_MAX + 1) >= 1 && strnlen(s, PAYWALL_EVENT_ID_MAX + 1) <= 255);
        FUZZ_CHECK(fuzz_all_of(s, "._@:+-"));
    }
}

static void fuzz_check_word(const char *s, int required)
{
    FUZZ_CHECK(!required || s != NULL);
    if (s != NULL) {
        FUZZ_CHECK(strnlen(s, 65) >= 1 && strnlen(s, 65) <= 64);
        FUZZ_CHECK(fuzz_all_of(s, "._-"));
    }
}

/* Free text: no C0, DEL or C1 control character, at most PAYWALL_EVENT_TEXT_MAX bytes. */
static void fuzz_check_text(const char *s)
{
    size_t i, len;

    if (s == NULL) {
        return;
    }
    len = strnlen(s, PAYWALL_EVENT_TEXT_MAX + 1);
    FUZZ_CHECK(len >= 1 && len <= PAYWALL_EVENT_TEXT_MAX);
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];

        FUZZ_CHECK(c >= 0x20 && c != 0x7f);
        FUZZ_CHECK(!(c == 0xc2 && (unsigned char)s[i + 1] >= 0x80 && (unsigned char)s[i + 1] < 0xa0));
    }
}

static void fuzz_check_currency(const char *currency, int required)
{
    size_t i, len = strnlen(currency, 4);

    FUZZ_CHECK(len == 3 || (!required && len == 0));
    for (i = 0; i < len; i++) {
        FUZZ_CHECK(currency[i] >= 'a' && currency[i] <= 'z');
    }
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

static void fuzz_check_event(const paywall_event *e)
{
    const paywall_event_checkout *c = &e->checkout;
    const paywall_event_subscription *s = &e->subscription;
    const paywall_event_invoice *v = &e->invoice;
    int is_checkout = e->type == PAYWALL_EVENT_CHECKOUT_COMPLETED;
    int is_sub = e->type == PAYWALL_EVENT_SUBSCRIPTION_CREATED || e->type == PAYWALL_EVENT_SUBSCRIPTION_UPDATED ||
                 e->type == PAYWALL_EVENT_SUBSCRIPTION_DELETED;
    int is_invoice = e->type == PAYWALL_EVENT_INVOICE_PAID || e->type == PAYWALL_EVENT_INVOICE_PAYMENT_FAILED;

    fuzz_check_id(e->id, 1);
    FUZZ_CHECK(e->type_text != NULL && strnlen(e->type_text, 256) >= 1 && strnlen(e->type_text, 256) <= 255);
    FUZZ_CHECK(fuzz_all_of(e->type_text, "._-"));
    FUZZ_CHECK(e->type == PAYWALL_EVENT_OTHER ? strcmp(paywall_event_type_name(e->type), "other") == 0
                                              : strcmp(paywall_event_type_name(e->type), e->type_text) == 0);
    FUZZ_CHECK(e->created >= 0 && e->created <= PAYWALL_EVENT_TIME_MAX);
    FUZZ_CHECK(e->livemode == 0 || e->livemode == 1);
    fuzz_check_word(e->api_version, 0);
    FUZZ_CHECK(memchr(e->warning, '\0', sizeof(e->warning)) != NULL && fuzz_printable(e->warning));
    FUZZ_CHECK(e->doc != NULL);

    if (is_checkout) {
        fuzz_check_id(c->session_id, 1);
        fuzz_check_user(c->user_id);
        fuzz_check_id(c->customer, 0);
        fuzz_check_id(c->subscription, 0);
        fuzz_check_word(c->mode, 1);
        fuzz_check_word(c->payment_status, 0);
        fuzz_check_text(c->email);
        FUZZ_CHECK(c->has_amount_total == 0 || c->has_amount_total == 1);
        FUZZ_CHECK(c->amount_total >= 0 && c->amount_total <= 1000000000000000LL);
        FUZZ_CHECK(c->has_amount_total || c->amount_total == 0);
        fuzz_check_currency(c->currency, 0);
        if (c->has_shipping) {
            FUZZ_CHECK(c->shipping.name != NULL && c->shipping.line1 != NULL && c->shipping.country != NULL);
            fuzz_check_text(c->shipping.name);
            fuzz_check_text(c->shipping.company);
            fuzz_check_text(c->shipping.line1);
            fuzz_check_text(c->shipping.line2);
            fuzz_check_text(c->shipping.postal_code);
            fuzz_check_text(c->shipping.city);
            fuzz_check_text(c->shipping.state);
            FUZZ_CHECK(strlen(c->shipping.country) == 2 && c->shipping.country[0] >= 'A' &&
                       c->shipping.country[0] <= 'Z' && c->shipping.country[1] >= 'A' && c->shipping.country[1] <= 'Z');
        } else {
            FUZZ_CHECK(fuzz_all_zero(&c->shipping, sizeof(c->shipping)));
        }
    } else {
        FUZZ_CHECK(fuzz_all_zero(c, sizeof(*c)));
    }

    if (is_sub) {
        fuzz_check_id(s->subscription, 1);
        fuzz_check_id(s->customer, 1);
        fuzz_check_word(s->status_text, 1);
        FUZZ_CHECK(s->status == paywall_sub_status_parse(s->status_text, strlen(s->status_text)));
        fuzz_check_id(s->price_id, 1);
        FUZZ_CHECK(s->current_period_end >= 0 && s->current_period_end <= PAYWALL_EVENT_TIME_MAX);
        FUZZ_CHECK(s->cancel_at >= 0 && s->cancel_at <= PAYWALL_EVENT_TIME_MAX);
        FUZZ_CHECK(s->canceled_at >= 0 && s->canceled_at <= PAYWALL_EVENT_TIME_MAX);
        FUZZ_CHECK(s->cancel_at_period_end == 0 || s->cancel_at_period_end == 1);
        fuzz_check_user(s->user_id);
    } else {
        FUZZ_CHECK(fuzz_all_zero(s, sizeof(*s)));
    }

    if (is_invoice) {
        fuzz_check_id(v->invoice, 1);
        fuzz_check_id(v->customer, 0);
        fuzz_check_id(v->subscription, 0);
        FUZZ_CHECK(v->amount_paid >= 0 && v->amount_paid <= 1000000000000000LL);
        FUZZ_CHECK(v->amount_due >= 0 && v->amount_due <= 1000000000000000LL);
        fuzz_check_currency(v->currency, 1);
        fuzz_check_word(v->status, 0);
        fuzz_check_word(v->billing_reason, 0);
    } else {
        FUZZ_CHECK(fuzz_all_zero(v, sizeof(*v)));
    }
}

static void fuzz_check_same(const paywall_event *a, const paywall_event *b)
{
    FUZZ_CHECK(strcmp(a->id, b->id) == 0 && a->type == b->type && a->created == b->created &&
               a->livemode == b->livemode && strcmp(a->warning, b->warning) == 0);
    FUZZ_CHECK(a->checkout.has_shipping == b->checkout.has_shipping &&
               a->checkout.amount_total == b->checkout.amount_total);
    FUZZ_CHECK(a->subscription.current_period_end == b->subscription.current_period_end &&
               a->subscription.status == b->subscription.status);
    FUZZ_CHECK(a->invoice.amount_paid == b->invoice.amount_paid && a->invoice.amount_due == b->invoice.amount_due);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    paywall_event *event = (paywall_event *)&event, *again = NULL;
    char err[256];
    int rc;

    memset(err, 'x', sizeof(err));
    rc = paywall_event_parse((const char *)data, size, &event, err, sizeof(err));
    FUZZ_CHECK(rc == 0 || rc == -1);
    if (rc != 0) {
        FUZZ_CHECK(event == NULL);
        FUZZ_CHECK(memchr(err, '\0', sizeof(err)) != NULL && err[0] != '\0' && fuzz_printable(err));
        FUZZ_CHECK(paywall_event_parse((const char *)data, size, &again, NULL, 0) == -1 && again == NULL);
        return 0;
    }
    FUZZ_CHECK(event != NULL);
    fuzz_check_event(event);
    FUZZ_CHECK(paywall_event_parse((const char *)data, size, &again, err, sizeof(err)) == 0 && again != NULL);
    fuzz_check_same(event, again);
    /* the ordering rule is total: any stored state gets an answer, and an unstored one always applies */
    FUZZ_CHECK(paywall_event_should_apply(event, 0, 0, PAYWALL_SUB_UNKNOWN) == 1);
    FUZZ_CHECK(paywall_event_should_apply(event, 1, event->created, event->subscription.status) <= 1);
    paywall_event_free(event);
    paywall_event_free(again);
    return 0;
}
