#include "booking.h"

static const char *const booking_status_classes[] = {"2xx", "4xx", "5xx", NULL};
static const char *const booking_create_results[] = {"created", "conflict", "refused", NULL};
static const char *const booking_notify_results[] = {"delivered", "retried", "dead", NULL};

const metrics_def booking_metric_defs[] = {
    [BOOKING_METRIC_API_REQUESTS] = {"api_requests_total", "API requests by status class.", METRICS_COUNTER, "status",
                                     booking_status_classes},
    [BOOKING_METRIC_BOOKINGS] = {"bookings_total", "Booking attempts by outcome.", METRICS_COUNTER, "result",
                                 booking_create_results},
    [BOOKING_METRIC_STORE_ERRORS] = {"store_errors_total", "Failed PostgreSQL calls.", METRICS_COUNTER, NULL, NULL},
    [BOOKING_METRIC_STORE_LATENCY] = {"store_latency_ms", "Duration of PostgreSQL calls.", METRICS_HISTOGRAM, NULL,
                                      NULL},
    [BOOKING_METRIC_NOTIFICATIONS] = {"notifications_total", "Notification delivery attempts by outcome.",
                                      METRICS_COUNTER, "result", booking_notify_results},
    [BOOKING_METRIC_OUTBOX_PENDING] = {"outbox_pending", "Notifications waiting to be delivered, due or not.",
                                       METRICS_GAUGE, NULL, NULL},
    [BOOKING_METRIC_OUTBOX_DUE] = {"outbox_due", "Notifications due now.", METRICS_GAUGE, NULL, NULL},
    [BOOKING_METRIC_OUTBOX_LAG] = {"outbox_lag_seconds", "How long the oldest due notification has waited.",
                                   METRICS_GAUGE, NULL, NULL},
};

const size_t booking_metric_count = sizeof(booking_metric_defs) / sizeof(booking_metric_defs[0]);

metrics_block *booking_metrics;
