#include "promo_store.h"

static const char *const promo_banner_results[] = {"injected", "clicked", NULL};
static const char *const promo_code_results[] = {"applied", "refused", NULL};
static const char *const promo_refresh_results[] = {"ok", "failed", NULL};

const metrics_def promo_metric_defs[] = {
    [PROMO_METRIC_BANNERS] = {"banners_total", "Banners shown in pages and clicked.", METRICS_COUNTER, "result",
                              promo_banner_results},
    [PROMO_METRIC_CODES] = {"codes_total", "Discount codes applied or refused.", METRICS_COUNTER, "result",
                            promo_code_results},
    [PROMO_METRIC_REFRESHES] = {"refreshes_total", "Refreshes of the promotions from PostgreSQL.", METRICS_COUNTER,
                                "result", promo_refresh_results},
    [PROMO_METRIC_REFRESH_LATENCY] = {"refresh_latency_ms", "Duration of a refresh.", METRICS_HISTOGRAM, NULL, NULL},
};

const size_t promo_metric_count = sizeof(promo_metric_defs) / sizeof(promo_metric_defs[0]);

metrics_block *promo_metrics;
