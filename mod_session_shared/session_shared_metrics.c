#include "session_shared.h"

static const char *const session_shared_load_results[] = {"cache_hit", "memcached_hit", "replica_hit", "postgres_hit",
                                                          "miss",      "expired",       "unavailable", NULL};
static const char *const session_shared_save_results[] = {"ok", "failed", NULL};
static const char *const session_shared_stores[] = {"memcached", "postgres", NULL};

const metrics_def session_shared_metric_defs[] = {
    [SESSION_SHARED_METRIC_LOADS] = {"loads_total", "Session loads by where the session was found.", METRICS_COUNTER,
                                     "result", session_shared_load_results},
    [SESSION_SHARED_METRIC_SAVES] = {"saves_total", "Session saves by outcome.", METRICS_COUNTER, "result",
                                     session_shared_save_results},
    [SESSION_SHARED_METRIC_STORE_ERRORS] = {"store_errors_total", "Failed calls to a session store.", METRICS_COUNTER,
                                            "store", session_shared_stores},
    [SESSION_SHARED_METRIC_STORE_LATENCY] = {"store_latency_ms", "Duration of calls to a session store.",
                                             METRICS_HISTOGRAM, "store", session_shared_stores},
};

const size_t session_shared_metric_count = sizeof(session_shared_metric_defs) / sizeof(session_shared_metric_defs[0]);

metrics_block *session_shared_metrics;
