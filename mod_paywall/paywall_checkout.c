/* Calls to Stripe's API: Checkout Sessions and Billing Portal sessions, form-encoded as Stripe expects. */
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "http.h"
#include "paywall_store_int.h"

#define PAYWALL_FORM_MAX 8192

/* Where the printed edition is sent unless the site says otherwise: the magazine's own readership. */
static const char *const paywall_default_countries[] = {"FR", "BE", "CH", "LU", "MC", "DE", "ES", "IT",
                                                        "PT", "NL", "GB", "IE", "US", "CA", NULL};

typedef struct {
    char data[PAYWALL_FORM_MAX];
    size_t len;
    int overflow;
} paywall_form;

static void paywall_form_raw(paywall_form *form, const char *s, size_t n)
{
    if (form->overflow || form->len + n >= sizeof(form->data)) {
        form->overflow = 1;
        return;
    }
    memcpy(form->data + form->len, s, n);
    form->len += n;
    form->data[form->len] = '\0';
}

/* application/x-www-form-urlencoded as Stripe's own libraries write it: brackets in keys escaped too. */
static void paywall_form_escaped(paywall_form *form, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    char enc[3];

    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || strchr("-_.~", c)) {
            paywall_form_raw(form, (const char *)&c, 1);
        } else {
            enc[0] = '%';
            enc[1] = hex[c >> 4];
            enc[2] = hex[c & 15];
            paywall_form_raw(form, enc, 3);
        }
    }
}

static void paywall_form_add(paywall_form *form, const char *key, const char *value)
{
    if (value == NULL)
        return;
    if (form->len)
        paywall_form_raw(form, "&", 1);
    paywall_form_escaped(form, key);
    paywall_form_raw(form, "=", 1);
    paywall_form_escaped(form, value);
}

static void paywall_stripe_set(paywall_stripe_result *result, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void paywall_stripe_set(paywall_stripe_result *result, int status, const char *fmt, ...)
{
    va_list ap;

    result->status = status;
    va_start(ap, fmt);
    vsnprintf(result->message, sizeof(result->message), fmt, ap);
    va_end(ap);
}

/* POSTs a form to Stripe and takes the "url" of the object it creates. */
static void paywall_stripe_post(const paywall_stripe_api *api, const char *path, const paywall_form *form,
                                const char *what, paywall_stripe_result *result)
{
    char url[1024], auth[4200], idempotency[80], key[32];
    const char *headers[5];
    http_request request = {0};
    http_response response = {0};
    json_t *root = NULL, *member;
    json_error_t jerr;

    if (api->secret_key == NULL) {
        paywall_stripe_set(result, 500, "no PaywallStripeKeyFile configured");
        return;
    }
    if (form->overflow) {
        paywall_stripe_set(result, 500, "request to Stripe too large");
        return;
    }
    snprintf(url, sizeof(url), "%s%s", api->api_base ? api->api_base : PAYWALL_STRIPE_API_DEFAULT, path);
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", api->secret_key);
    /* The same key on a retry makes Stripe answer with the first session instead of creating a second one. */
    if (crypto_random_bytes(key, 16) != 0) {
        paywall_stripe_set(result, 500, "no randomness for an idempotency key");
        return;
    }
    strcpy(idempotency, "Idempotency-Key: ");
    crypto_hex_encode(key, 16, idempotency + strlen(idempotency));
    headers[0] = auth;
    headers[1] = "Content-Type: application/x-www-form-urlencoded";
    headers[2] = idempotency;
    headers[3] = "Accept: application/json";
    headers[4] = NULL;
    request.method = "POST";
    request.url = url;
    request.headers = headers;
    request.body = form->data;
    request.body_len = form->len;
    request.timeout_ms = api->timeout_ms ? api->timeout_ms : PAYWALL_STRIPE_TIMEOUT_MS;
    request.connect_timeout_ms = 2000;
    request.retries = 1;
    request.backoff_ms = 200;
    request.max_body = 256 * 1024;
    if (http_perform(&request, &response) != 0) {
        paywall_stripe_set(result, 504, "the payment service did not answer (%s): %.200s", what, response.error);
        http_response_free(&response);
        return;
    }
    root = json_loadb(response.body ? response.body : "", response.body_len, 0, &jerr);
    if (response.status != 200) {
        member = root ? json_object_get(json_object_get(root, "error"), "message") : NULL;
        paywall_stripe_set(result, 502, "the payment service refused %s (HTTP %ld): %.300s", what, response.status,
                           json_is_string(member) ? json_string_value(member) : "no message");
    } else if ((member = root ? json_object_get(root, "url") : NULL) == NULL || !json_is_string(member) ||
               strncmp(json_string_value(member), "https://", 8) != 0 ||
               strlen(json_string_value(member)) >= sizeof(result->url) ||
               strpbrk(json_string_value(member), "\r\n\"<> ") != NULL) {
        paywall_stripe_set(result, 502, "the payment service's answer to %s has no usable url", what);
    } else {
        snprintf(result->url, sizeof(result->url), "%s", json_string_value(member));
        paywall_stripe_set(result, 303, "%s created", what);
    }
    json_decref(root);
    http_response_free(&response);
}

void paywall_checkout_create(const paywall_stripe_api *api, const paywall_checkout_request *request,
                             paywall_stripe_result *result)
{
    const char *const *countries = request->countries ? request->countries : paywall_default_countries;
    paywall_form form = {.len = 0};
    char key[96];
    size_t i;

    memset(result, 0, sizeof(*result));
    if (request->plan == NULL || request->user_id == NULL || request->success_url == NULL) {
        paywall_stripe_set(result, 500, "checkout needs a plan, a user and a return URL");
        return;
    }
    paywall_form_add(&form, "mode", "subscription");
    paywall_form_add(&form, "line_items[0][price]", request->plan->price_id);
    paywall_form_add(&form, "line_items[0][quantity]", "1");
    paywall_form_add(&form, "client_reference_id", request->user_id);
    /* Subscription events carry the user themselves, even when they arrive before the checkout's own event. */
    paywall_form_add(&form, "subscription_data[metadata][user_id]", request->user_id);
    paywall_form_add(&form, "subscription_data[metadata][plan]", request->plan->name);
    paywall_form_add(&form, "success_url", request->success_url);
    paywall_form_add(&form, "cancel_url", request->cancel_url);
    paywall_form_add(&form, "customer_email", request->email);
    if (request->plan->print) {
        for (i = 0; countries[i]; i++) {
            snprintf(key, sizeof(key), "shipping_address_collection[allowed_countries][%zu]", i);
            paywall_form_add(&form, key, countries[i]);
        }
    }
    /* Stripe takes either a discount chosen here or a code field on its page, never both. */
    if (request->coupon)
        paywall_form_add(&form, "discounts[0][coupon]", request->coupon);
    else if (request->promotion_code)
        paywall_form_add(&form, "discounts[0][promotion_code]", request->promotion_code);
    else
        paywall_form_add(&form, "allow_promotion_codes", "true");
    paywall_form_add(&form, "metadata[user_id]", request->user_id);
    paywall_form_add(&form, "metadata[promo_code]", request->promo_code);
    paywall_stripe_post(api, "/v1/checkout/sessions", &form, "the checkout session", result);
}

void paywall_portal_create(paywall_store *store, const paywall_stripe_api *api, const char *user_id,
                           const char *return_url, paywall_stripe_result *result)
{
    paywall_form form = {.len = 0};
    const char *params[1] = {user_id};
    char err[256], customer[256];
    PGconn *conn;
    PGresult *res;

    memset(result, 0, sizeof(*result));
    conn = paywall_pg_acquire(store, err, sizeof(err));
    if (conn == NULL) {
        paywall_stripe_set(result, 503, "subscriptions unavailable: %.200s", err);
        return;
    }
    res = pg_exec(conn,
                  "SELECT customer_id FROM paywall.customers WHERE user_id = $1"
                  " ORDER BY (SELECT max(current_period_end) FROM paywall.subscriptions s"
                  " WHERE s.customer_id = customers.customer_id) DESC NULLS LAST, updated_at DESC LIMIT 1",
                  1, params, NULL, NULL, err, sizeof(err));
    pg_pool_release(store->pg, conn, res != NULL);
    if (res == NULL) {
        paywall_stripe_set(result, 503, "subscriptions unavailable: %.200s", err);
        return;
    }
    if (PQntuples(res) == 0) {
        PQclear(res);
        paywall_stripe_set(result, 404, "no subscription to manage for this account");
        return;
    }
    snprintf(customer, sizeof(customer), "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    paywall_form_add(&form, "customer", customer);
    paywall_form_add(&form, "return_url", return_url);
    paywall_stripe_post(api, "/v1/billing_portal/sessions", &form, "the billing portal session", result);
}
