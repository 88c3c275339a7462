/* Stripe webhook events (see paywall.h): the fields mod_paywall stores, read from the object shapes of Stripe's API
 * (https://docs.stripe.com/api/events/object and the objects it carries), old and new API versions alike, since the
 * version is the account's or the endpoint's and can change under a running site. The strings point into the
 * parsed document, which the event owns. */
#include "paywall.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#define PAYWALL_EVENT_WORD_MAX   64                 /* mode, status, billing_reason, api_version */
#define PAYWALL_EVENT_AMOUNT_MAX 1000000000000000LL /* cents: far above any real charge, far from overflow */
#define PAYWALL_EVENT_USER_CHARS "._@:+-"           /* besides [A-Za-z0-9]: integers, UUIDs, most emails */

typedef struct {
    paywall_event *event;
    char *err;
    size_t errlen;
} paywall_event_ctx;

static int paywall_event_fail(paywall_event_ctx *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int paywall_event_fail(paywall_event_ctx *ctx, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(ctx->err, ctx->errlen, fmt, ap);
    va_end(ap);
    return -1;
}

/* Keeps the first warnings that fit: one is the common case, and the log line must stay a line. */
static void paywall_event_warn(paywall_event_ctx *ctx, const char *path, const char *why)
{
    char *w = ctx->event->warning;
    size_t used = strlen(w);

    if (used > 0 && used + 2 < sizeof(ctx->event->warning)) {
        snprintf(w + used, sizeof(ctx->event->warning) - used, "; ");
        used += 2;
    }
    snprintf(w + used, sizeof(ctx->event->warning) - used, "%s %s", path, why);
}

/* ------------------------------------------------------------------------------------------- character sets */

static int paywall_event_is_alnum(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static int paywall_event_id_ok(const char *s, size_t len)
{
    size_t i;

    if (len == 0 || len > PAYWALL_EVENT_ID_MAX) {
        return 0;
    }
    for (i = 0; i < len; i++) {
        if (!paywall_event_is_alnum((unsigned char)s[i]) && s[i] != '_') {
            return 0;
        }
    }
    return 1;
}

static int paywall_event_user_ok(const char *s, size_t len)
{
    size_t i;

    if (len == 0 || len > PAYWALL_EVENT_ID_MAX) {
        return 0;
    }
    for (i = 0; i < len; i++) {
        if (!paywall_event_is_alnum((unsigned char)s[i]) && strchr(PAYWALL_EVENT_USER_CHARS, s[i]) == NULL) {
            return 0;
        }
    }
    return 1;
}

/* Event types, statuses, modes, API versions: Stripe's own vocabulary, never free text. */
static int paywall_event_word_ok(const char *s, size_t len, size_t max)
{
    size_t i;

    if (len == 0 || len > max) {
        return 0;
    }
    for (i = 0; i < len; i++) {
        if (!paywall_event_is_alnum((unsigned char)s[i]) && strchr("._-", s[i]) == NULL) {
            return 0;
        }
    }
    return 1;
}

/* jansson has checked that the text is UTF-8 without U+0000; what is left to refuse are the C0 controls, DEL and the
 * C1 controls (U+0080 to U+009F, encoded C2 80 to C2 9F), which break CSV rows and terminal logs. */
static const char *paywall_event_text_problem(const char *s, size_t len)
{
    size_t i;

    if (len > PAYWALL_EVENT_TEXT_MAX) {
        return "is too long: dropped";
    }
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c < 0x20 || c == 0x7f || (c == 0xc2 && i + 1 < len && (unsigned char)s[i + 1] < 0xa0)) {
            return "has a control character: dropped";
        }
    }
    return NULL;
}

/* -------------------------------------------------------------------------------------------- field readers */

/* The member, or NULL when it is absent or null: Stripe sends null for "none" in most places, and older API
 * versions omit members that newer ones send as null. */
static json_t *paywall_event_member(json_t *object, const char *key)
{
    json_t *value = json_object_get(object, key);

    return json_is_null(value) ? NULL : value;
}

static int paywall_event_get_object(paywall_event_ctx *ctx, json_t *parent, const char *key, const char *path,
                                    int required, json_t **out)
{
    json_t *value = paywall_event_member(parent, key);

    *out = NULL;
    if (value == NULL) {
        return required ? paywall_event_fail(ctx, "%s is missing", path) : 0;
    }
    if (!json_is_object(value)) {
        return paywall_event_fail(ctx, "%s is not an object", path);
    }
    *out = value;
    return 0;
}

static int paywall_event_get_string(paywall_event_ctx *ctx, json_t *parent, const char *key, const char *path,
                                    int required, json_t **out)
{
    json_t *value = paywall_event_member(parent, key);

    *out = NULL;
    if (value == NULL) {
        return required ? paywall_event_fail(ctx, "%s is missing", path) : 0;
    }
    if (!json_is_string(value)) {
        return paywall_event_fail(ctx, "%s is not a string", path);
    }
    *out = value;
    return 0;
}

/* A Stripe id. A reference to another object (customer, subscription) may also come expanded as the object itself;
 * webhooks do not expand, but the id inside is the same id, so expanded = 1 accepts that shape too. */
static int paywall_event_get_id(paywall_event_ctx *ctx, json_t *parent, const char *key, const char *path, int required,
                                int expanded, const char **out)
{
    json_t *value = paywall_event_member(parent, key);

    *out = NULL;
    if (value == NULL) {
        return required ? paywall_event_fail(ctx, "%s is missing", path) : 0;
    }
    if (expanded && json_is_object(value)) {
        value = json_object_get(value, "id");
        if (!json_is_string(value)) {
            return paywall_event_fail(ctx, "%s is an object without a string id", path);
        }
    }
    if (!json_is_string(value)) {
        return paywall_event_fail(ctx, "%s is not a string", path);
    }
    if (!paywall_event_id_ok(json_string_value(value), json_string_length(value))) {
        return paywall_event_fail(ctx, "%s is not an id of 1 to 255 letters, digits or _", path);
    }
    *out = json_string_value(value);
    return 0;
}

/* Our own user id, which our checkout gave Stripe: refused rather than dropped when malformed, since it decides
 * whose account a payment opens. */
static int paywall_event_get_user(paywall_event_ctx *ctx, json_t *parent, const char *key, const char *path,
                                  const char **out)
{
    json_t *value;

    if (paywall_event_get_string(ctx, parent, key, path, 0, &value) != 0) {
        return -1;
    }
    *out = NULL;
    if (value == NULL) {
        return 0;
    }
    if (!paywall_event_user_ok(json_string_value(value), json_string_length(value))) {
        return paywall_event_fail(ctx, "%s is not a user id of 1 to 255 letters, digits or " PAYWALL_EVENT_USER_CHARS,
                                  path);
    }
    *out = json_string_value(value);
    return 0;
}

static int paywall_event_get_word(paywall_event_ctx *ctx, json_t *parent, const char *key, const char *path,
                                  int required, const char **out)
{
    json_t *value;

    if (paywall_event_get_string(ctx, parent, key, path, required, &value) != 0) {
        return -1;
    }
    *out = NULL;
    if (value == NULL) {
        return 0;
    }
    if (!paywall_event_word_ok(json_string_value(value), json_string_length(value), PAYWALL_EVENT_WORD_MAX)) {
        return paywall_event_fail(ctx, "%s is not a word of 1 to 64 letters, digits or . _ -", path);
    }
    *out = json_string_value(value);
    return 0;
}

/* Free text (names, addresses, emails): a wrong type is refused like any other, but bad content is only dropped
 * (*out NULL, *dropped 1, a warning), so that a customer's odd address cannot stop a paid subscription from being
 * recorded. An empty string counts as absent. */
static int paywall_event_get_text(paywall_event_ctx *ctx, json_t *parent, const char *key, const char *path,
                                  const char **out, int *dropped)
{
    json_t *value;
    const char *why;

    if (paywall_event_get_string(ctx, parent, key, path, 0, &value) != 0) {
        return -1;
    }
    *out = NULL;
    if (value == NULL || json_string_length(value) == 0) {
        return 0;
    }
    why = paywall_event_text_problem(json_string_value(value), json_string_length(value));
    if (why != NULL) {
        paywall_event_warn(ctx, path, why);
        *dropped = 1;
        return 0;
    }
    *out = json_string_value(value);
    return 0;
}

/* An integer in [0, max]. jansson refuses integers beyond 64 bits while parsing; a real (1e3, 1.0) is refused here,
 * since Stripe writes times and amounts as plain integers. */
static int paywall_event_get_integer(paywall_event_ctx *ctx, json_t *parent, const char *key, const char *path,
                                     int required, long long max, int *present, long long *out)
{
    json_t *value = paywall_event_member(parent, key);
    json_int_t n;

    *out = 0;
    if (present != NULL) {
        *present = 0;
    }
    if (value == NULL) {
        return required ? paywall_event_fail(ctx, "%s is missing", path) : 0;
    }
    if (!json_is_integer(value)) {
        return paywall_event_fail(ctx, "%s is not an integer", path);
    }
    n = json_integer_value(value);
    if (n < 0 || n > max) {
        return paywall_event_fail(ctx, "%s is out of range (0 to %lld)", path, max);
    }
    if (present != NULL) {
        *present = 1;
    }
    *out = (long long)n;
    return 0;
}

static int paywall_event_get_time(paywall_event_ctx *ctx, json_t *parent, const char *key, const char *path,
                                  int required, int *present, time_t *out)
{
    long long n;

    if (paywall_event_get_integer(ctx, parent, key, path, required, PAYWALL_EVENT_TIME_MAX, present, &n) != 0) {
        return -1;
    }
    *out = (time_t)n;
    return 0;
}

static int paywall_event_get_bool(paywall_event_ctx *ctx, json_t *parent, const char *key, const char *path, int *out)
{
    json_t *value = json_object_get(parent, key);

    if (value == NULL) {
        return paywall_event_fail(ctx, "%s is missing", path);
    }
    if (!json_is_boolean(value)) {
        return paywall_event_fail(ctx, "%s is not a boolean", path);
    }
    *out = json_is_true(value);
    return 0;
}

static int paywall_event_get_currency(paywall_event_ctx *ctx, json_t *parent, const char *key, const char *path,
                                      int required, char out[4])
{
    json_t *value;
    const char *s;

    if (paywall_event_get_string(ctx, parent, key, path, required, &value) != 0) {
        return -1;
    }
    out[0] = '\0';
    if (value == NULL) {
        return 0;
    }
    s = json_string_value(value);
    if (json_string_length(value) != 3 || s[0] < 'a' || s[0] > 'z' || s[1] < 'a' || s[1] > 'z' || s[2] < 'a' ||
        s[2] > 'z') {
        return paywall_event_fail(ctx, "%s is not a three-letter lower-case currency code", path);
    }
    memcpy(out, s, 4);
    return 0;
}

/* Checks "object": the kind of object data.object holds, so that an event of a known type carrying something else
 * (a test fixture gone wrong, a future shape) is refused instead of half-read. */
static int paywall_event_check_kind(paywall_event_ctx *ctx, json_t *object, const char *kind)
{
    json_t *value = json_object_get(object, "object");

    if (!json_is_string(value) || strcmp(json_string_value(value), kind) != 0) {
        return paywall_event_fail(ctx, "data.object.object is not \"%s\"", kind);
    }
    return 0;
}

/* ------------------------------------------------------------------------------- checkout.session.completed */

static int paywall_event_parse_address(paywall_event_ctx *ctx, json_t *shipping, const char *path,
                                       paywall_event_address *out, int *dropped)
{
    json_t *address, *country;
    char p[128];

    snprintf(p, sizeof(p), "%s.name", path);
    if (paywall_event_get_text(ctx, shipping, "name", p, &out->name, dropped) != 0) {
        return -1;
    }
    snprintf(p, sizeof(p), "%s.address", path);
    if (paywall_event_get_object(ctx, shipping, "address", p, 1, &address) != 0) {
        return -1;
    }
#define PAYWALL_EVENT_ADDRESS_LINE(member)                                                                             \
    do {                                                                                                               \
        snprintf(p, sizeof(p), "%s.address." #member, path);                                                           \
        if (paywall_event_get_text(ctx, address, #member, p, &out->member, dropped) != 0) {                            \
            return -1;                                                                                                 \
        }                                                                                                              \
    } while (0)
    PAYWALL_EVENT_ADDRESS_LINE(line1);
    PAYWALL_EVENT_ADDRESS_LINE(line2);
    PAYWALL_EVENT_ADDRESS_LINE(postal_code);
    PAYWALL_EVENT_ADDRESS_LINE(city);
    PAYWALL_EVENT_ADDRESS_LINE(state);
    PAYWALL_EVENT_ADDRESS_LINE(country);
#undef PAYWALL_EVENT_ADDRESS_LINE
    country = json_object_get(address, "country");
    if (out->country != NULL && (json_string_length(country) != 2 || out->country[0] < 'A' || out->country[0] > 'Z' ||
                                 out->country[1] < 'A' || out->country[1] > 'Z')) {
        paywall_event_warn(ctx, p, "is not a two-letter country code: dropped");
        out->country = NULL;
        *dropped = 1;
    }
    return 0;
}

/* Where the shipping address is: collected_information.shipping_details since 2025-03-31 (basil), shipping_details
 * from 2022-08-01 to 2025-02-24, shipping before. The first present one wins. */
static int paywall_event_parse_shipping(paywall_event_ctx *ctx, json_t *session, json_t *collected,
                                        paywall_event_checkout *checkout)
{
    static const struct {
        int in_collected;
        const char *key, *path;
    } places[] = {
        {1, "shipping_details", "data.object.collected_information.shipping_details"},
        {0, "shipping_details", "data.object.shipping_details"},
        {0, "shipping", "data.object.shipping"},
    };
    paywall_event_address address;
    json_t *shipping = NULL;
    const char *path = NULL;
    size_t i;
    int dropped = 0;

    for (i = 0; i < sizeof(places) / sizeof(places[0]) && shipping == NULL; i++) {
        if (places[i].in_collected && collected == NULL) {
            continue;
        }
        if (paywall_event_get_object(ctx, places[i].in_collected ? collected : session, places[i].key, places[i].path,
                                     0, &shipping) != 0) {
            return -1;
        }
        path = places[i].path;
    }
    if (shipping == NULL) {
        return 0;
    }
    memset(&address, 0, sizeof(address));
    if (paywall_event_parse_address(ctx, shipping, path, &address, &dropped) != 0) {
        return -1;
    }
    if (dropped) {
        /* A part of an address is worse than none: a parcel would go to the wrong door. */
        paywall_event_warn(ctx, path, "not kept");
        return 0;
    }
    if (address.name == NULL || address.line1 == NULL || address.country == NULL) {
        paywall_event_warn(ctx, path, "lacks a name, line1 or country: not kept");
        return 0;
    }
    checkout->shipping = address;
    checkout->has_shipping = 1;
    return 0;
}

static int paywall_event_parse_checkout(paywall_event_ctx *ctx, json_t *session)
{
    paywall_event_checkout *c = &ctx->event->checkout;
    json_t *details, *collected;
    const char *company = NULL, *details_company = NULL, *details_email = NULL, *prefilled_email = NULL;
    int dropped = 0, details_dropped = 0;

    if (paywall_event_check_kind(ctx, session, "checkout.session") != 0 ||
        paywall_event_get_id(ctx, session, "id", "data.object.id", 1, 0, &c->session_id) != 0 ||
        paywall_event_get_user(ctx, session, "client_reference_id", "data.object.client_reference_id", &c->user_id) !=
            0 ||
        paywall_event_get_id(ctx, session, "customer", "data.object.customer", 0, 1, &c->customer) != 0 ||
        paywall_event_get_id(ctx, session, "subscription", "data.object.subscription", 0, 1, &c->subscription) != 0 ||
        paywall_event_get_word(ctx, session, "mode", "data.object.mode", 1, &c->mode) != 0 ||
        paywall_event_get_word(ctx, session, "payment_status", "data.object.payment_status", 0, &c->payment_status) !=
            0 ||
        paywall_event_get_integer(ctx, session, "amount_total", "data.object.amount_total", 0, PAYWALL_EVENT_AMOUNT_MAX,
                                  &c->has_amount_total, &c->amount_total) != 0 ||
        paywall_event_get_currency(ctx, session, "currency", "data.object.currency", 0, c->currency) != 0 ||
        paywall_event_get_object(ctx, session, "customer_details", "data.object.customer_details", 0, &details) != 0 ||
        paywall_event_get_object(ctx, session, "collected_information", "data.object.collected_information", 0,
                                 &collected) != 0) {
        return -1;
    }
    /* Both places are read (and type-checked) whichever is used. customer_details.email is what the customer finally
     * typed, customer_email only what our checkout prefilled: when the first is there but dropped, no email is
     * better than the stale one. */
    if ((details != NULL && paywall_event_get_text(ctx, details, "email", "data.object.customer_details.email",
                                                   &details_email, &details_dropped) != 0) ||
        paywall_event_get_text(ctx, session, "customer_email", "data.object.customer_email", &prefilled_email,
                               &dropped) != 0) {
        return -1;
    }
    c->email = details_email != NULL || details_dropped ? details_email : prefilled_email;
    if ((collected != NULL &&
         paywall_event_get_text(ctx, collected, "business_name", "data.object.collected_information.business_name",
                                &company, &dropped) != 0) ||
        (details != NULL &&
         paywall_event_get_text(ctx, details, "business_name", "data.object.customer_details.business_name",
                                &details_company, &dropped) != 0)) {
        return -1;
    }
    if (company == NULL) {
        company = details_company;
    }
    if (paywall_event_parse_shipping(ctx, session, collected, c) != 0) {
        return -1;
    }
    if (c->has_shipping) {
        c->shipping.company = company;
    }
    return 0;
}

/* ---------------------------------------------------------------------------------- customer.subscription.* */

static int paywall_event_parse_subscription(paywall_event_ctx *ctx, json_t *sub)
{
    paywall_event_subscription *s = &ctx->event->subscription;
    json_t *items, *data, *item, *price, *metadata, *status;
    int has_period_end;

    if (paywall_event_check_kind(ctx, sub, "subscription") != 0 ||
        paywall_event_get_id(ctx, sub, "id", "data.object.id", 1, 0, &s->subscription) != 0 ||
        paywall_event_get_id(ctx, sub, "customer", "data.object.customer", 1, 1, &s->customer) != 0 ||
        paywall_event_get_word(ctx, sub, "status", "data.object.status", 1, &s->status_text) != 0 ||
        paywall_event_get_bool(ctx, sub, "cancel_at_period_end", "data.object.cancel_at_period_end",
                               &s->cancel_at_period_end) != 0 ||
        paywall_event_get_time(ctx, sub, "cancel_at", "data.object.cancel_at", 0, NULL, &s->cancel_at) != 0 ||
        paywall_event_get_time(ctx, sub, "canceled_at", "data.object.canceled_at", 0, NULL, &s->canceled_at) != 0 ||
        paywall_event_get_time(ctx, sub, "current_period_end", "data.object.current_period_end", 0, &has_period_end,
                               &s->current_period_end) != 0 ||
        paywall_event_get_object(ctx, sub, "metadata", "data.object.metadata", 0, &metadata) != 0 ||
        (metadata != NULL &&
         paywall_event_get_user(ctx, metadata, "user_id", "data.object.metadata.user_id", &s->user_id) != 0) ||
        paywall_event_get_object(ctx, sub, "items", "data.object.items", 1, &items) != 0) {
        return -1;
    }
    status = json_object_get(sub, "status");
    s->status = paywall_sub_status_parse(s->status_text, json_string_length(status));

    data = json_object_get(items, "data");
    if (!json_is_array(data)) {
        return paywall_event_fail(ctx, "data.object.items.data is not an array");
    }
    item = json_array_get(data, 0);
    if (item == NULL) {
        return paywall_event_fail(ctx, "data.object.items.data is empty");
    }
    if (!json_is_object(item)) {
        return paywall_event_fail(ctx, "data.object.items.data[0] is not an object");
    }
    if (paywall_event_get_object(ctx, item, "price", "data.object.items.data[0].price", 1, &price) != 0 ||
        paywall_event_get_id(ctx, price, "id", "data.object.items.data[0].price.id", 1, 0, &s->price_id) != 0) {
        return -1;
    }
    /* Moved from the subscription to its items in API version 2025-03-31 (basil). */
    if (!has_period_end &&
        paywall_event_get_time(ctx, item, "current_period_end", "data.object.items.data[0].current_period_end", 0,
                               &has_period_end, &s->current_period_end) != 0) {
        return -1;
    }
    if (!has_period_end) {
        return paywall_event_fail(ctx, "data.object.current_period_end is missing, as is "
                                       "data.object.items.data[0].current_period_end");
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------------ invoice.* */

static int paywall_event_parse_invoice(paywall_event_ctx *ctx, json_t *invoice)
{
    paywall_event_invoice *v = &ctx->event->invoice;
    json_t *parent, *details;

    if (paywall_event_check_kind(ctx, invoice, "invoice") != 0 ||
        paywall_event_get_id(ctx, invoice, "id", "data.object.id", 1, 0, &v->invoice) != 0 ||
        paywall_event_get_id(ctx, invoice, "customer", "data.object.customer", 0, 1, &v->customer) != 0 ||
        paywall_event_get_id(ctx, invoice, "subscription", "data.object.subscription", 0, 1, &v->subscription) != 0 ||
        paywall_event_get_integer(ctx, invoice, "amount_paid", "data.object.amount_paid", 1, PAYWALL_EVENT_AMOUNT_MAX,
                                  NULL, &v->amount_paid) != 0 ||
        paywall_event_get_integer(ctx, invoice, "amount_due", "data.object.amount_due", 1, PAYWALL_EVENT_AMOUNT_MAX,
                                  NULL, &v->amount_due) != 0 ||
        paywall_event_get_currency(ctx, invoice, "currency", "data.object.currency", 1, v->currency) != 0 ||
        paywall_event_get_word(ctx, invoice, "status", "data.object.status", 0, &v->status) != 0 ||
        paywall_event_get_word(ctx, invoice, "billing_reason", "data.object.billing_reason", 0, &v->billing_reason) !=
            0) {
        return -1;
    }
    if (v->subscription != NULL) {
        return 0;
    }
    /* Moved to parent.subscription_details in API version 2025-03-31 (basil). */
    if (paywall_event_get_object(ctx, invoice, "parent", "data.object.parent", 0, &parent) != 0 ||
        (parent != NULL && paywall_event_get_object(ctx, parent, "subscription_details",
                                                    "data.object.parent.subscription_details", 0, &details) != 0)) {
        return -1;
    }
    if (parent != NULL && details != NULL &&
        paywall_event_get_id(ctx, details, "subscription", "data.object.parent.subscription_details.subscription", 0, 1,
                             &v->subscription) != 0) {
        return -1;
    }
    return 0;
}

/* ----------------------------------------------------------------------------------------------- the event */

static const struct {
    const char *name;
    paywall_event_type type;
} paywall_event_types[] = {
    {"checkout.session.completed", PAYWALL_EVENT_CHECKOUT_COMPLETED},
    {"customer.subscription.created", PAYWALL_EVENT_SUBSCRIPTION_CREATED},
    {"customer.subscription.updated", PAYWALL_EVENT_SUBSCRIPTION_UPDATED},
    {"customer.subscription.deleted", PAYWALL_EVENT_SUBSCRIPTION_DELETED},
    {"invoice.paid", PAYWALL_EVENT_INVOICE_PAID},
    {"invoice.payment_failed", PAYWALL_EVENT_INVOICE_PAYMENT_FAILED},
};

const char *paywall_event_type_name(paywall_event_type type)
{
    size_t i;

    for (i = 0; i < sizeof(paywall_event_types) / sizeof(paywall_event_types[0]); i++) {
        if (paywall_event_types[i].type == type) {
            return paywall_event_types[i].name;
        }
    }
    return "other";
}

/* jansson's own limit is 2048 levels; ours is lower and checked before parsing, so that a deep document costs one
 * pass over its bytes and no allocation. */
static int paywall_event_depth_ok(const char *json, size_t len)
{
    size_t i, depth = 0;
    int in_string = 0;

    for (i = 0; i < len; i++) {
        char c = json[i];

        if (in_string) {
            if (c == '\\') {
                i++;
            } else if (c == '"') {
                in_string = 0;
            }
        } else if (c == '"') {
            in_string = 1;
        } else if (c == '{' || c == '[') {
            if (++depth > PAYWALL_EVENT_DEPTH_MAX) {
                return 0;
            }
        } else if ((c == '}' || c == ']') && depth > 0) {
            depth--;
        }
    }
    return 1;
}

static int paywall_event_parse_envelope(paywall_event_ctx *ctx, json_t *root)
{
    paywall_event *ev = ctx->event;
    json_t *type, *object, *data, *inner;
    size_t i;

    if (paywall_event_get_id(ctx, root, "id", "id", 1, 0, &ev->id) != 0 ||
        paywall_event_get_string(ctx, root, "type", "type", 1, &type) != 0) {
        return -1;
    }
    if (!paywall_event_word_ok(json_string_value(type), json_string_length(type), PAYWALL_EVENT_ID_MAX)) {
        return paywall_event_fail(ctx, "type is not a word of 1 to 255 letters, digits or . _ -");
    }
    ev->type_text = json_string_value(type);
    object = json_object_get(root, "object");
    if (object != NULL && (!json_is_string(object) || strcmp(json_string_value(object), "event") != 0)) {
        return paywall_event_fail(ctx, "object is not \"event\"");
    }
    if (paywall_event_get_time(ctx, root, "created", "created", 1, NULL, &ev->created) != 0 ||
        paywall_event_get_bool(ctx, root, "livemode", "livemode", &ev->livemode) != 0 ||
        paywall_event_get_word(ctx, root, "api_version", "api_version", 0, &ev->api_version) != 0) {
        return -1;
    }
    ev->type = PAYWALL_EVENT_OTHER;
    for (i = 0; i < sizeof(paywall_event_types) / sizeof(paywall_event_types[0]); i++) {
        if (strcmp(paywall_event_types[i].name, ev->type_text) == 0) {
            ev->type = paywall_event_types[i].type;
        }
    }
    if (ev->type == PAYWALL_EVENT_OTHER) {
        return 0;
    }
    if (paywall_event_get_object(ctx, root, "data", "data", 1, &data) != 0 ||
        paywall_event_get_object(ctx, data, "object", "data.object", 1, &inner) != 0) {
        return -1;
    }
    switch (ev->type) {
    case PAYWALL_EVENT_CHECKOUT_COMPLETED:
        return paywall_event_parse_checkout(ctx, inner);
    case PAYWALL_EVENT_SUBSCRIPTION_CREATED:
    case PAYWALL_EVENT_SUBSCRIPTION_UPDATED:
    case PAYWALL_EVENT_SUBSCRIPTION_DELETED:
        return paywall_event_parse_subscription(ctx, inner);
    case PAYWALL_EVENT_INVOICE_PAID:
    case PAYWALL_EVENT_INVOICE_PAYMENT_FAILED:
        return paywall_event_parse_invoice(ctx, inner);
    case PAYWALL_EVENT_OTHER:
        break;
    }
    return 0;
}

/* jansson's messages quote the input near the error: made printable so that the log line stays one line. */
static void paywall_event_printable(char *s)
{
    for (; *s != '\0'; s++) {
        if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f) {
            *s = '?';
        }
    }
}

int paywall_event_parse(const char *json, size_t len, paywall_event **out, char *err, size_t errlen)
{
    paywall_event_ctx ctx;
    json_error_t jerr;
    json_t *root;
    char scratch[1];

    *out = NULL;
    if (err == NULL || errlen == 0) {
        err = scratch;
        errlen = sizeof(scratch);
    }
    err[0] = '\0';
    ctx.event = NULL;
    ctx.err = err;
    ctx.errlen = errlen;
    if (json == NULL || len == 0) {
        return paywall_event_fail(&ctx, "empty event");
    }
    if (len > PAYWALL_EVENT_BYTES_MAX) {
        return paywall_event_fail(&ctx, "event larger than %d bytes", PAYWALL_EVENT_BYTES_MAX);
    }
    if (!paywall_event_depth_ok(json, len)) {
        return paywall_event_fail(&ctx, "event nested deeper than %d levels", PAYWALL_EVENT_DEPTH_MAX);
    }
    /* Duplicate keys are refused: with two "id" or two "customer", which one counts would be the parser's choice. */
    root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        paywall_event_fail(&ctx, "invalid JSON at byte %d: %s", jerr.position, jerr.text);
        paywall_event_printable(err);
        return -1;
    }
    if (!json_is_object(root)) {
        json_decref(root);
        return paywall_event_fail(&ctx, "event is not a JSON object");
    }
    ctx.event = calloc(1, sizeof(*ctx.event));
    if (ctx.event == NULL) {
        json_decref(root);
        return paywall_event_fail(&ctx, "out of memory");
    }
    ctx.event->doc = root;
    if (paywall_event_parse_envelope(&ctx, root) != 0) {
        paywall_event_printable(err);
        paywall_event_free(ctx.event);
        return -1;
    }
    paywall_event_printable(ctx.event->warning);
    *out = ctx.event;
    return 0;
}

void paywall_event_free(paywall_event *event)
{
    if (event == NULL) {
        return;
    }
    json_decref((json_t *)event->doc);
    free(event);
}

int paywall_event_should_apply(const paywall_event *event, int has_stored, time_t stored_event_created,
                               paywall_sub_status stored_status)
{
    int deleted;

    if (event->type != PAYWALL_EVENT_SUBSCRIPTION_CREATED && event->type != PAYWALL_EVENT_SUBSCRIPTION_UPDATED &&
        event->type != PAYWALL_EVENT_SUBSCRIPTION_DELETED) {
        return 1;
    }
    if (!has_stored) {
        return 1;
    }
    deleted = event->type == PAYWALL_EVENT_SUBSCRIPTION_DELETED;
    if ((stored_status == PAYWALL_SUB_CANCELED || stored_status == PAYWALL_SUB_INCOMPLETE_EXPIRED) && !deleted) {
        return 0;
    }
    if (event->created != stored_event_created) {
        return event->created > stored_event_created;
    }
    return event->type != PAYWALL_EVENT_SUBSCRIPTION_CREATED;
}

/* ---------------------------------------------------------------------------------------------- plan table */

const char *paywall_plans_add(paywall_plans *plans, const char *name, const char *price_id, const char *flag)
{
    paywall_require check;
    size_t i;
    int print = 0;

    if (name == NULL || price_id == NULL) {
        return "needs a plan name and a Stripe price id";
    }
    /* Same rule as PaywallRequire's plan names, from the same function, so every plan named here can be required. */
    memset(&check, 0, sizeof(check));
    if (strcasecmp(name, "any") == 0 || paywall_parse_require(&check, name) != NULL) {
        return "plan names are 1 to 128 printable ASCII characters without space, comma or quote, and not any";
    }
    if (!paywall_event_id_ok(price_id, strlen(price_id))) {
        return "price ids are 1 to 255 letters, digits or _ (price_...)";
    }
    if (flag != NULL) {
        if (strcasecmp(flag, "print") != 0) {
            return "the third argument can only be print";
        }
        print = 1;
    }
    for (i = 0; i < plans->nplans; i++) {
        if (strcmp(plans->plans[i].name, name) == 0) {
            return "names a plan already defined";
        }
        if (strcmp(plans->plans[i].price_id, price_id) == 0) {
            return "maps a price id already mapped to another plan";
        }
    }
    if (plans->nplans >= PAYWALL_PLANS_MAX) {
        return "defines more than 64 plans";
    }
    plans->plans[plans->nplans].name = name;
    plans->plans[plans->nplans].price_id = price_id;
    plans->plans[plans->nplans].print = print;
    plans->nplans++;
    return NULL;
}

const paywall_plan *paywall_plans_find_price(const paywall_plans *plans, const char *price_id)
{
    size_t i;

    if (plans == NULL || price_id == NULL) {
        return NULL;
    }
    for (i = 0; i < plans->nplans && i < PAYWALL_PLANS_MAX; i++) {
        if (strcmp(plans->plans[i].price_id, price_id) == 0) {
            return &plans->plans[i];
        }
    }
    return NULL;
}

const paywall_plan *paywall_plans_find_name(const paywall_plans *plans, const char *name)
{
    size_t i;

    if (plans == NULL || name == NULL) {
        return NULL;
    }
    for (i = 0; i < plans->nplans && i < PAYWALL_PLANS_MAX; i++) {
        if (strcmp(plans->plans[i].name, name) == 0) {
            return &plans->plans[i];
        }
    }
    return NULL;
}
