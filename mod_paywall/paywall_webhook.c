/* The Stripe webhook: verify, parse, apply once, publish the new entitlement. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "paywall_store_int.h"

#define PAYWALL_USERS_TOUCHED_MAX 4

typedef struct {
    PGconn *conn;
    char err[512];
    /* Users whose entitlement the event changed: republished to memcached after the commit. */
    char users[PAYWALL_USERS_TOUCHED_MAX][PAYWALL_USER_ID_MAX + 1];
    size_t nusers;
    const char *outcome; /* for the answer's body: "applied", "replay", "older than the stored state" ... */
    int replay;          /* the event was applied before */
} paywall_apply;

static void paywall_result_set(paywall_webhook_result *result, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void paywall_result_set(paywall_webhook_result *result, int status, const char *fmt, ...)
{
    va_list ap;

    result->status = status;
    va_start(ap, fmt);
    vsnprintf(result->message, sizeof(result->message), fmt, ap);
    va_end(ap);
}

static void paywall_apply_touch(paywall_apply *apply, const char *user)
{
    size_t i;

    if (user == NULL || *user == '\0' || !paywall_user_id_valid(user, strlen(user)))
        return;
    for (i = 0; i < apply->nusers; i++)
        if (strcmp(apply->users[i], user) == 0)
            return;
    if (apply->nusers < PAYWALL_USERS_TOUCHED_MAX)
        snprintf(apply->users[apply->nusers++], sizeof(apply->users[0]), "%s", user);
}

/* Runs a statement; returns its result (caller clears) or NULL with apply->err. */
static PGresult *paywall_sql(paywall_apply *apply, const char *sql, int nparams, const char *const *params)
{
    return pg_exec(apply->conn, sql, nparams, params, NULL, NULL, apply->err, sizeof(apply->err));
}

static int paywall_sql_run(paywall_apply *apply, const char *sql, int nparams, const char *const *params)
{
    PGresult *res = paywall_sql(apply, sql, nparams, params);

    if (res == NULL)
        return -1;
    PQclear(res);
    return 0;
}

/* A site user id from an event, only when the gate could ever use it. */
static const char *paywall_event_user(const char *user)
{
    return user && paywall_user_id_valid(user, strlen(user)) ? user : NULL;
}

static int paywall_apply_checkout(paywall_apply *apply, const paywall_event *event, const char *created)
{
    const paywall_event_checkout *co = &event->checkout;
    const char *user = paywall_event_user(co->user_id);
    const char *livemode = event->livemode ? "true" : "false";
    PGresult *res;

    if (co->customer == NULL) {
        apply->outcome = "no customer: nothing to record";
        return 0;
    }
    {
        const char *params[4] = {co->customer, user, co->email, livemode};
        if (paywall_sql_run(apply,
                            "INSERT INTO paywall.customers (customer_id, user_id, email, livemode)"
                            " VALUES ($1, $2, $3, $4)"
                            " ON CONFLICT (customer_id) DO UPDATE SET"
                            " user_id = coalesce(EXCLUDED.user_id, paywall.customers.user_id),"
                            " email = coalesce(EXCLUDED.email, paywall.customers.email), updated_at = now()",
                            4, params) != 0)
            return -1;
    }
    if (co->subscription && user) {
        const char *params[2] = {co->subscription, user};
        res = paywall_sql(apply,
                          "UPDATE paywall.subscriptions SET user_id = $2, updated_at = now()"
                          " WHERE subscription_id = $1 AND user_id IS NULL",
                          2, params);
        if (res == NULL)
            return -1;
        PQclear(res);
    }
    paywall_apply_touch(apply, user);
    if (co->has_shipping && co->subscription && co->shipping.name && co->shipping.line1 && co->shipping.country) {
        const paywall_event_address *a = &co->shipping;
        const char *close_params[2] = {co->subscription, created};
        const char *params[12] = {co->subscription, co->customer, a->name,  a->company, a->line1,  a->line2,
                                  a->postal_code,   a->city,      a->state, a->country, event->id, created};
        /* A new address closes the current one instead of overwriting it: a past issue's CSV keeps its address. */
        if (paywall_sql_run(apply,
                            "UPDATE paywall.shipping_addresses SET valid_until = greatest(to_timestamp($2), valid_from)"
                            " WHERE subscription_id = $1 AND valid_until IS NULL",
                            2, close_params) != 0)
            return -1;
        if (paywall_sql_run(apply,
                            "INSERT INTO paywall.shipping_addresses (subscription_id, customer_id, name, company,"
                            " line1, line2, postal_code, city, state, country, source_event_id, valid_from)"
                            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, to_timestamp($12))",
                            12, params) != 0)
            return -1;
    }
    apply->outcome = "applied";
    return 0;
}

static int paywall_apply_subscription(paywall_apply *apply, const paywall_plans *plans, const paywall_event *event,
                                      const char *created, char *warning, size_t warnlen)
{
    const paywall_event_subscription *sub = &event->subscription;
    const char *livemode = event->livemode ? "true" : "false";
    const char *user = paywall_event_user(sub->user_id);
    const paywall_plan *plan = sub->price_id ? paywall_plans_find_price(plans, sub->price_id) : NULL;
    char period_end[32], cancel_at[32], canceled_at[32];
    time_t stored_created = 0;
    paywall_sub_status stored_status = PAYWALL_SUB_UNKNOWN;
    int has_stored;
    PGresult *res;

    {
        const char *params[3] = {sub->customer, user, livemode};
        if (paywall_sql_run(apply,
                            "INSERT INTO paywall.customers (customer_id, user_id, livemode) VALUES ($1, $2, $3)"
                            " ON CONFLICT (customer_id) DO UPDATE SET"
                            " user_id = coalesce(paywall.customers.user_id, EXCLUDED.user_id), updated_at = now()",
                            3, params) != 0)
            return -1;
    }
    {
        const char *params[1] = {sub->subscription};
        /* FOR UPDATE: two deliveries of events about one subscription are applied one after the other. */
        res = paywall_sql(apply,
                          "SELECT extract(epoch FROM last_event_created)::bigint, status"
                          " FROM paywall.subscriptions WHERE subscription_id = $1 FOR UPDATE",
                          1, params);
        if (res == NULL)
            return -1;
        has_stored = PQntuples(res) == 1;
        if (has_stored) {
            const char *status = PQgetvalue(res, 0, 1);
            stored_created = (time_t)strtoll(PQgetvalue(res, 0, 0), NULL, 10);
            stored_status = paywall_sub_status_parse(status, strlen(status));
        }
        PQclear(res);
    }
    if (!paywall_event_should_apply(event, has_stored, stored_created, stored_status)) {
        apply->outcome = "older than the stored state: not applied";
        return 0;
    }
    if (sub->price_id && plan == NULL)
        snprintf(warning, warnlen, "price %s is not in any PaywallPlan: the subscription opens no plan", sub->price_id);
    snprintf(period_end, sizeof(period_end), "%lld", (long long)sub->current_period_end);
    snprintf(cancel_at, sizeof(cancel_at), "%lld", (long long)sub->cancel_at);
    snprintf(canceled_at, sizeof(canceled_at), "%lld", (long long)sub->canceled_at);
    {
        const char *params[14] = {sub->subscription,
                                  sub->customer,
                                  user,
                                  plan ? plan->name : NULL,
                                  sub->price_id ? sub->price_id : "unknown",
                                  sub->status_text,
                                  period_end,
                                  sub->cancel_at_period_end ? "true" : "false",
                                  sub->cancel_at ? cancel_at : NULL,
                                  sub->canceled_at ? canceled_at : NULL,
                                  livemode,
                                  created,
                                  event->id,
                                  event->type == PAYWALL_EVENT_SUBSCRIPTION_CREATED   ? "created"
                                  : event->type == PAYWALL_EVENT_SUBSCRIPTION_DELETED ? "deleted"
                                                                                      : "updated"};
        /* The same ordering rule as paywall_event_should_apply, again in the statement: two first events of a
         * subscription delivered at once both find no row to lock, and the later insert must not undo the newer.
         * The status is kept when an invoice event newer than this one set it; canceled is final either way. The
         * grace period counts from the first event that saw the subscription past_due. */
        res = paywall_sql(
            apply,
            "INSERT INTO paywall.subscriptions AS s (subscription_id, customer_id, user_id, plan, price_id, status,"
            " current_period_end, cancel_at_period_end, cancel_at, canceled_at, past_due_since, status_changed_at,"
            " livemode, last_event_created, last_event_id)"
            " VALUES ($1, $2, coalesce($3, (SELECT user_id FROM paywall.customers WHERE customer_id = $2)), $4, $5,"
            " $6, to_timestamp($7), $8, to_timestamp($9), to_timestamp($10),"
            " CASE WHEN $6 = 'past_due' THEN to_timestamp($12) END, to_timestamp($12), $11, to_timestamp($12), $13)"
            " ON CONFLICT (subscription_id) DO UPDATE SET"
            " customer_id = EXCLUDED.customer_id, user_id = coalesce(EXCLUDED.user_id, s.user_id),"
            " plan = EXCLUDED.plan, price_id = EXCLUDED.price_id,"
            " status = CASE WHEN s.status_changed_at <= EXCLUDED.last_event_created OR $14 = 'deleted'"
            " THEN EXCLUDED.status ELSE s.status END,"
            " past_due_since = CASE WHEN s.status_changed_at > EXCLUDED.last_event_created AND $14 <> 'deleted'"
            " THEN s.past_due_since WHEN EXCLUDED.status = 'past_due'"
            " THEN coalesce(s.past_due_since, EXCLUDED.past_due_since) END,"
            " status_changed_at = greatest(s.status_changed_at, EXCLUDED.status_changed_at),"
            " current_period_end = EXCLUDED.current_period_end, cancel_at_period_end = EXCLUDED.cancel_at_period_end,"
            " cancel_at = EXCLUDED.cancel_at, canceled_at = EXCLUDED.canceled_at,"
            " livemode = EXCLUDED.livemode, last_event_created = EXCLUDED.last_event_created,"
            " last_event_id = EXCLUDED.last_event_id, updated_at = now()"
            " WHERE (s.status NOT IN ('canceled', 'incomplete_expired') OR $14 = 'deleted')"
            " AND (s.last_event_created < EXCLUDED.last_event_created"
            " OR (s.last_event_created = EXCLUDED.last_event_created AND $14 <> 'created'))"
            " RETURNING user_id",
            14, params);
        if (res == NULL)
            return -1;
        if (PQntuples(res) == 1 && !PQgetisnull(res, 0, 0))
            paywall_apply_touch(apply, PQgetvalue(res, 0, 0));
        apply->outcome = PQntuples(res) == 1 ? "applied" : "older than the stored state: not applied";
        PQclear(res);
    }
    return 0;
}

/* invoice.paid ends a past_due period; invoice.payment_failed starts one. Both only when no newer subscription
 * event has been applied, since Stripe's events arrive in any order. */
static int paywall_apply_invoice(paywall_apply *apply, const paywall_event *event, const char *created)
{
    const paywall_event_invoice *inv = &event->invoice;
    const char *params[2] = {inv->subscription, created};
    PGresult *res;
    int i;

    if (inv->subscription == NULL) {
        apply->outcome = "not a subscription's invoice: nothing to record";
        return 0;
    }
    /* Only the status moves: the period, plan and cancellation stay the subscription events' (last_event_created
     * is theirs), so a subscription event delivered late still brings its new period end. */
    if (event->type == PAYWALL_EVENT_INVOICE_PAID)
        res = paywall_sql(apply,
                          "UPDATE paywall.subscriptions SET past_due_since = NULL,"
                          " status = CASE WHEN status IN ('past_due', 'unpaid') THEN 'active' ELSE status END,"
                          " status_changed_at = to_timestamp($2), updated_at = now()"
                          " WHERE subscription_id = $1 AND status_changed_at <= to_timestamp($2)"
                          " AND status NOT IN ('canceled', 'incomplete_expired') RETURNING user_id",
                          2, params);
    else
        res = paywall_sql(apply,
                          "UPDATE paywall.subscriptions SET"
                          " past_due_since = coalesce(past_due_since, to_timestamp($2)),"
                          " status = CASE WHEN status IN ('active', 'trialing') THEN 'past_due' ELSE status END,"
                          " status_changed_at = to_timestamp($2), updated_at = now()"
                          " WHERE subscription_id = $1 AND status_changed_at <= to_timestamp($2)"
                          " AND status IN ('active', 'trialing', 'past_due') RETURNING user_id",
                          2, params);
    if (res == NULL)
        return -1;
    for (i = 0; i < PQntuples(res); i++)
        if (!PQgetisnull(res, i, 0))
            paywall_apply_touch(apply, PQgetvalue(res, i, 0));
    apply->outcome = PQntuples(res) ? "applied" : "no newer state to change: not applied";
    PQclear(res);
    return 0;
}

/* Processed events older than Stripe's retry window are dropped, a few at a time, by the webhooks themselves. */
static void paywall_purge_events(paywall_apply *apply)
{
    PGresult *res = paywall_sql(apply,
                                "DELETE FROM paywall.processed_events WHERE event_id IN"
                                " (SELECT event_id FROM paywall.processed_events"
                                " WHERE received_at < now() - interval '30 days' LIMIT 100 FOR UPDATE SKIP LOCKED)",
                                0, NULL);
    if (res)
        PQclear(res);
}

static int paywall_apply_event(paywall_apply *apply, const paywall_plans *plans, const paywall_event *event,
                               char *warning, size_t warnlen)
{
    char created[32];
    const char *params[4];
    PGresult *res;
    int fresh;

    snprintf(created, sizeof(created), "%lld", (long long)event->created);
    if (paywall_sql_run(apply, "BEGIN", 0, NULL) != 0)
        return -1;
    params[0] = event->id;
    params[1] = event->type_text;
    params[2] = created;
    params[3] = event->livemode ? "true" : "false";
    res = paywall_sql(apply,
                      "INSERT INTO paywall.processed_events (event_id, type, event_created, livemode)"
                      " VALUES ($1, $2, to_timestamp($3), $4) ON CONFLICT (event_id) DO NOTHING",
                      4, params);
    if (res == NULL)
        goto fail;
    fresh = strcmp(PQcmdTuples(res), "1") == 0;
    PQclear(res);
    if (!fresh) {
        apply->outcome = "already processed (replay): acknowledged, not applied again";
        apply->replay = 1;
        return paywall_sql_run(apply, "COMMIT", 0, NULL);
    }
    switch (event->type) {
    case PAYWALL_EVENT_CHECKOUT_COMPLETED:
        if (paywall_apply_checkout(apply, event, created) != 0)
            goto fail;
        break;
    case PAYWALL_EVENT_SUBSCRIPTION_CREATED:
    case PAYWALL_EVENT_SUBSCRIPTION_UPDATED:
    case PAYWALL_EVENT_SUBSCRIPTION_DELETED:
        if (paywall_apply_subscription(apply, plans, event, created, warning, warnlen) != 0)
            goto fail;
        break;
    case PAYWALL_EVENT_INVOICE_PAID:
    case PAYWALL_EVENT_INVOICE_PAYMENT_FAILED:
        if (paywall_apply_invoice(apply, event, created) != 0)
            goto fail;
        break;
    case PAYWALL_EVENT_OTHER:
        apply->outcome = "type not handled: acknowledged";
        break;
    }
    if (paywall_sql_run(apply, "COMMIT", 0, NULL) != 0)
        goto fail;
    if ((unsigned char)event->id[strlen(event->id) - 1] % 8 == 0) /* ids end in [A-Za-z0-9]: about one event in eight */
        paywall_purge_events(apply);
    return 0;

fail:
    if (PQstatus(apply->conn) == CONNECTION_OK) {
        PGresult *rollback = PQexec(apply->conn, "ROLLBACK");
        PQclear(rollback);
    }
    return -1;
}

static void paywall_webhook_once(paywall_store *store, const paywall_plans *plans, const char *webhook_secret,
                                 size_t webhook_secret_len, const char *signature, size_t signature_len,
                                 const char *body, size_t body_len, time_t now, paywall_webhook_result *result,
                                 int *replay)
{
    paywall_stripe_status verified;
    paywall_event *event = NULL;
    paywall_apply apply;
    paywall_entitlement ent;
    char err[512], warning[256] = "";
    const char *reason = NULL;
    double started;
    size_t i;
    int ok;

    memset(result, 0, sizeof(*result));
    memset(&apply, 0, sizeof(apply));
    if (webhook_secret == NULL) {
        paywall_result_set(result, 500, "no PaywallStripeWebhookSecretFile configured");
        return;
    }
    if (signature == NULL) {
        paywall_result_set(result, 400, "refused: no Stripe-Signature header");
        return;
    }
    verified = paywall_stripe_verify(signature, signature_len, body, body_len, webhook_secret, webhook_secret_len, now,
                                     PAYWALL_STRIPE_TOLERANCE, &reason);
    if (verified != PAYWALL_STRIPE_OK) {
        paywall_result_set(result, 400, "refused: Stripe-Signature %s (%s)", paywall_stripe_status_name(verified),
                           reason ? reason : "");
        return;
    }
    if (paywall_event_parse(body, body_len, &event, err, sizeof(err)) != 0) {
        paywall_result_set(result, 400, "refused: not a Stripe event: %.200s", err);
        return;
    }
    if (event->warning[0])
        snprintf(result->note, sizeof(result->note), "event %s: %s", event->id, event->warning);

    started = metrics_now_ms();
    apply.conn = paywall_pg_acquire(store, apply.err, sizeof(apply.err));
    if (apply.conn == NULL) {
        metrics_observe_ms(paywall_metrics, PAYWALL_METRIC_STORE_LATENCY, PAYWALL_STORE_POSTGRES,
                           metrics_now_ms() - started);
        paywall_note_pg(store, 1, apply.err, result->note, sizeof(result->note), &result->note_is_error);
        /* Stripe retries any answer but 2xx for three days: nothing is lost while the database is away. */
        paywall_result_set(result, 503, "event %s not stored, Stripe will retry: %.200s", event->id, apply.err);
        paywall_event_free(event);
        return;
    }
    ok = paywall_apply_event(&apply, plans, event, warning, sizeof(warning)) == 0;
    metrics_observe_ms(paywall_metrics, PAYWALL_METRIC_STORE_LATENCY, PAYWALL_STORE_POSTGRES,
                       metrics_now_ms() - started);
    if (!ok) {
        int lost = PQstatus(apply.conn) != CONNECTION_OK;
        pg_pool_release(store->pg, apply.conn, 0);
        if (lost)
            paywall_note_pg(store, 1, apply.err, result->note, sizeof(result->note), &result->note_is_error);
        else /* a statement failed on a live connection: no outage to note, still a store error */
            metrics_add(paywall_metrics, PAYWALL_METRIC_STORE_ERRORS, PAYWALL_STORE_POSTGRES, 1);
        paywall_result_set(result, lost ? 503 : 500, "event %s (%s) not stored, Stripe will retry: %.200s", event->id,
                           event->type_text, apply.err);
        paywall_event_free(event);
        return;
    }
    paywall_note_pg(store, 0, "", result->note, sizeof(result->note), &result->note_is_error);
    /* The new state, read back after the commit, replaces memcached's copy: every node sees it on its next look. */
    for (i = 0; i < apply.nusers; i++) {
        if (paywall_entitlement_query(apply.conn, apply.users[i], &ent, err, sizeof(err)) == 0)
            paywall_entitlement_publish(store, apply.users[i], &ent, result->note, sizeof(result->note),
                                        &result->note_is_error);
    }
    pg_pool_release(store->pg, apply.conn, 1);
    if (warning[0] && result->note[0] == '\0')
        snprintf(result->note, sizeof(result->note), "event %s: %s", event->id, warning);
    paywall_result_set(result, 200, "event %s (%s): %s", event->id, event->type_text, apply.outcome);
    *replay = apply.replay;
    paywall_event_free(event);
}

void paywall_webhook_handle(paywall_store *store, const paywall_plans *plans, const char *webhook_secret,
                            size_t webhook_secret_len, const char *signature, size_t signature_len, const char *body,
                            size_t body_len, time_t now, paywall_webhook_result *result)
{
    paywall_webhook_outcome outcome;
    int replay = 0;

    paywall_webhook_once(store, plans, webhook_secret, webhook_secret_len, signature, signature_len, body, body_len,
                         now, result, &replay);
    if (result->status >= 200 && result->status < 300)
        outcome = replay ? PAYWALL_WEBHOOK_DUPLICATE : PAYWALL_WEBHOOK_PROCESSED;
    else if (result->status >= 400 && result->status < 500)
        outcome = PAYWALL_WEBHOOK_REFUSED;
    else
        outcome = PAYWALL_WEBHOOK_FAILED;
    metrics_add(paywall_metrics, PAYWALL_METRIC_WEBHOOKS, outcome, 1);
}
