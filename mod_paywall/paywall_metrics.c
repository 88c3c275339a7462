#include "paywall_store.h"

/* In paywall_access's order, so that a decision's access is its series. */
static const char *const paywall_accesses[] = {"granted", "metered", "denied", "crawler", NULL};
static const char *const paywall_lookup_sources[] = {"process_cache", "memcached", "postgres", "stale", "failed", NULL};
static const char *const paywall_stores[] = {"memcached", "postgres", NULL};
static const char *const paywall_webhook_outcomes[] = {"processed", "duplicate", "refused", "failed", NULL};

const metrics_def paywall_metric_defs[] = {
    [PAYWALL_METRIC_DECISIONS] = {"decisions_total", "Access decisions on gated and observed locations.",
                                  METRICS_COUNTER, "access", paywall_accesses},
    [PAYWALL_METRIC_ENTITLEMENT_LOOKUPS] = {"entitlement_lookups_total",
                                            "Entitlement lookups by where the answer came from.", METRICS_COUNTER,
                                            "source", paywall_lookup_sources},
    [PAYWALL_METRIC_STORE_ERRORS] = {"store_errors_total", "Failed calls to a store.", METRICS_COUNTER, "store",
                                     paywall_stores},
    [PAYWALL_METRIC_STORE_LATENCY] = {"store_latency_ms", "Duration of calls to a store.", METRICS_HISTOGRAM, "store",
                                      paywall_stores},
    [PAYWALL_METRIC_WEBHOOKS] = {"webhooks_total", "Stripe webhook events by outcome.", METRICS_COUNTER, "result",
                                 paywall_webhook_outcomes},
};

const size_t paywall_metric_count = sizeof(paywall_metric_defs) / sizeof(paywall_metric_defs[0]);

metrics_block *paywall_metrics;
