/* Unit tests of core/metrics.c (layout, atomic updates from threads and processes, the Prometheus text) and of the
 * modules' definitions and the counting their server-neutral code does without a network. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "metrics.h"
#include "booking.h"
#include "paywall_store.h"
#include "promo_store.h"
#include "session_shared.h"

#define GUARD 64

enum { T_REQUESTS, T_DEPTH, T_LATENCY };

static const char *const t_results[] = {"ok", "failed", "we\"ird\\\n", NULL};
static const char *const t_stores[] = {"memcached", NULL};

static const metrics_def t_defs[] = {
    [T_REQUESTS] = {"requests_total", "Requests by result.", METRICS_COUNTER, "result", t_results},
    [T_DEPTH] = {"queue_depth", "Depth with \\ and\nnewline.", METRICS_GAUGE, NULL, NULL},
    [T_LATENCY] = {"latency_ms", "Latency.", METRICS_HISTOGRAM, "store", t_stores},
};
#define T_COUNT (sizeof(t_defs) / sizeof(t_defs[0]))

/* Memory as the servers hand it over: not zeroed, 8-byte aligned, with a guard after it that nothing may touch. */
static unsigned char *t_memory(size_t size)
{
    unsigned char *mem = malloc(size + GUARD);

    assert_non_null(mem);
    memset(mem, 0xA5, size + GUARD);
    return mem;
}

static void t_assert_guard(const unsigned char *mem, size_t size)
{
    size_t i;

    for (i = 0; i < GUARD; i++)
        assert_int_equal(mem[size + i], 0xA5);
}

static char *t_render(const metrics_block *block, const char *server)
{
    char *buf = NULL;
    size_t len = 0, cap = 0;

    assert_int_equal(metrics_render(block, server, &buf, &len, &cap), 0);
    assert_non_null(buf);
    assert_int_equal(strlen(buf), len);
    return buf;
}

/* The value of the series whose line starts with name_and_labels (name{labels}), or -1 when absent. */
static long long t_value(const char *text, const char *series)
{
    size_t n = strlen(series);
    const char *p = text;

    while ((p = strstr(p, series)) != NULL) {
        if ((p == text || p[-1] == '\n') && p[n] == ' ')
            return strtoll(p + n + 1, NULL, 10);
        p += n;
    }
    return -1;
}

/* ------------------------------------------------------------------------------------------------- layout */

static void test_layout_and_attach(void **state)
{
    size_t size = metrics_block_size(t_defs, T_COUNT);
    unsigned char *mem, *other;
    metrics_block *block;
    char *text;
    const metrics_def changed[] = {
        t_defs[0], t_defs[1], {"latency_ms", "Another help.", METRICS_HISTOGRAM, "store", t_stores}};

    (void)state;
    assert_true(size > 0);
    mem = t_memory(size);
    block = metrics_block_init(mem, size, "test", t_defs, T_COUNT);
    assert_ptr_equal(block, mem);
    assert_string_equal(metrics_block_module(block), "test");
    assert_ptr_equal(metrics_block_at(mem), block);
    assert_ptr_equal(metrics_block_match(mem, size, "test", t_defs, T_COUNT), block);
    assert_null(metrics_block_match(mem, size, "other", t_defs, T_COUNT));
    assert_null(metrics_block_match(mem, size, "test", changed, T_COUNT));
    assert_null(metrics_block_match(mem, size, "test", t_defs, T_COUNT - 1));
    assert_null(metrics_block_match(mem, size - 1, "test", t_defs, T_COUNT));

    /* every series of every metric, to its last value: nothing may land past the block */
    metrics_add(block, T_REQUESTS, 2, 1);
    metrics_set(block, T_DEPTH, 0, -1);
    metrics_observe_ms(block, T_LATENCY, 0, 1e9);
    t_assert_guard(mem, size);

    /* the block holds copies: a process that never saw the definitions renders it */
    other = t_memory(size);
    memcpy(other, mem, size);
    free(mem);
    block = metrics_block_at(other);
    assert_non_null(block);
    text = t_render(block, "nginx");
    assert_int_equal(t_value(text, "webmodules_test_requests_total{server=\"nginx\",result=\"we\\\"ird\\\\\\n\"}"), 1);
    assert_int_equal(t_value(text, "webmodules_test_queue_depth{server=\"nginx\"}"), -1);
    assert_int_equal(
        t_value(text, "webmodules_test_latency_ms_bucket{server=\"nginx\",store=\"memcached\",le=\"+Inf\"}"), 1);
    free(text);

    /* laid out again, it starts from zero */
    block = metrics_block_init(other, size, "test", t_defs, T_COUNT);
    text = t_render(block, "nginx");
    assert_int_equal(t_value(text, "webmodules_test_queue_depth{server=\"nginx\"}"), 0);
    free(text);
    free(other);
}

static void test_refused_layouts(void **state)
{
    size_t size = metrics_block_size(t_defs, T_COUNT);
    unsigned char *mem = t_memory(size + 8);
    const metrics_def bad_name[] = {{"bad-name", "h", METRICS_COUNTER, NULL, NULL}};
    const metrics_def digit_first[] = {{"1st", "h", METRICS_COUNTER, NULL, NULL}};
    const metrics_def server_label[] = {{"x_total", "h", METRICS_COUNTER, "server", t_results}};
    const metrics_def le_label[] = {{"x_ms", "h", METRICS_HISTOGRAM, "le", t_results}};
    const metrics_def no_values[] = {{"x_total", "h", METRICS_COUNTER, "result", NULL}};
    const metrics_def no_help[] = {{"x_total", NULL, METRICS_COUNTER, NULL, NULL}};
    const metrics_def bad_kind[] = {{"x_total", "h", (metrics_kind)7, NULL, NULL}};

    (void)state;
    memset(mem, 0, size + 8);
    assert_null(metrics_block_init(mem, size - 1, "test", t_defs, T_COUNT));
    assert_null(metrics_block_at(mem)); /* a refused layout writes nothing */
    assert_null(metrics_block_init(mem, size, "a_module_name_of_32_bytes_long__", t_defs, T_COUNT));
    assert_non_null(metrics_block_init(mem, size, "a_module_name_of_31_bytes_long_", t_defs, T_COUNT));
    assert_null(metrics_block_init(mem, size, "bad module", t_defs, T_COUNT));
    assert_null(metrics_block_init(mem + 4, size, "test", t_defs, T_COUNT)); /* unaligned */
    assert_null(metrics_block_at(mem + 4));
    assert_null(metrics_block_init(NULL, size, "test", t_defs, T_COUNT));
    assert_null(metrics_block_init(mem, size, NULL, t_defs, T_COUNT));
    assert_null(metrics_block_init(mem, size, "test", bad_name, 1));
    assert_null(metrics_block_init(mem, size, "test", digit_first, 1));
    assert_null(metrics_block_init(mem, size, "test", server_label, 1));
    assert_null(metrics_block_init(mem, size, "test", le_label, 1));
    assert_null(metrics_block_init(mem, size, "test", no_values, 1));
    assert_null(metrics_block_init(mem, size, "test", no_help, 1));
    assert_null(metrics_block_init(mem, size, "test", bad_kind, 1));
    assert_null(metrics_block_at(NULL));
    free(mem);
}

/* ------------------------------------------------------------------------------------------------- updates */

#define THREADS    8
#define PER_THREAD 100000
#define PER_CHILD  50000
#define CHILDREN   4

static void *t_worker(void *arg)
{
    metrics_block *block = arg;
    unsigned i;

    for (i = 0; i < PER_THREAD; i++) {
        metrics_add(block, T_REQUESTS, i % 2, 1);
        metrics_add(block, T_DEPTH, 0, i % 2 ? (uint64_t)-1 : 1); /* up and down: ends where it started */
        metrics_observe_ms(block, T_LATENCY, 0, i % 2 ? 0.5 : 30.0);
    }
    return NULL;
}

static void test_counts_from_threads(void **state)
{
    size_t size = metrics_block_size(t_defs, T_COUNT);
    unsigned char *mem = t_memory(size);
    metrics_block *block = metrics_block_init(mem, size, "test", t_defs, T_COUNT);
    pthread_t threads[THREADS];
    char *text;
    int i;

    (void)state;
    assert_non_null(block);
    for (i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&threads[i], NULL, t_worker, block), 0);
    for (i = 0; i < THREADS; i++)
        assert_int_equal(pthread_join(threads[i], NULL), 0);
    text = t_render(block, "apache");
    /* 8 threads x 100,000: half ok, half failed; half the latencies at 0.5 ms, half at 30 ms */
    assert_int_equal(t_value(text, "webmodules_test_requests_total{server=\"apache\",result=\"ok\"}"), 400000);
    assert_int_equal(t_value(text, "webmodules_test_requests_total{server=\"apache\",result=\"failed\"}"), 400000);
    assert_int_equal(t_value(text, "webmodules_test_queue_depth{server=\"apache\"}"), 0);
    assert_int_equal(t_value(text, "webmodules_test_latency_ms_bucket{server=\"apache\",store=\"memcached\",le=\"1\"}"),
                     400000);
    assert_int_equal(
        t_value(text, "webmodules_test_latency_ms_bucket{server=\"apache\",store=\"memcached\",le=\"25\"}"), 400000);
    assert_int_equal(
        t_value(text, "webmodules_test_latency_ms_bucket{server=\"apache\",store=\"memcached\",le=\"50\"}"), 800000);
    assert_int_equal(t_value(text, "webmodules_test_latency_ms_count{server=\"apache\",store=\"memcached\"}"), 800000);
    /* 400,000 x 0.5 + 400,000 x 30 = 12,200,000 ms exactly: the sum is kept in whole microseconds */
    assert_non_null(
        strstr(text, "\nwebmodules_test_latency_ms_sum{server=\"apache\",store=\"memcached\"} 12200000.000\n"));
    free(text);
    free(mem);
}

/* The servers' case: processes sharing one mapping. */
static void test_counts_from_processes(void **state)
{
    size_t size = metrics_block_size(t_defs, T_COUNT);
    void *mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    metrics_block *block;
    pid_t pids[CHILDREN];
    char *text;
    int i, status;

    (void)state;
    assert_true(mem != MAP_FAILED);
    block = metrics_block_init(mem, size, "test", t_defs, T_COUNT);
    assert_non_null(block);
    for (i = 0; i < CHILDREN; i++) {
        pids[i] = fork();
        assert_true(pids[i] >= 0);
        if (pids[i] == 0) {
            metrics_block *attached = metrics_block_at(mem);
            unsigned n;
            for (n = 0; n < PER_CHILD; n++)
                metrics_add(attached, T_REQUESTS, 0, 1);
            _exit(attached == NULL ? 1 : 0);
        }
    }
    for (i = 0; i < CHILDREN; i++) {
        assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    text = t_render(block, "apache");
    assert_int_equal(t_value(text, "webmodules_test_requests_total{server=\"apache\",result=\"ok\"}"),
                     CHILDREN * PER_CHILD);
    free(text);
    munmap(mem, size);
}

/* ------------------------------------------------------------------------------------------------- render */

static const char t_expected[] =
    "# HELP webmodules_test_requests_total Requests by result.\n"
    "# TYPE webmodules_test_requests_total counter\n"
    "webmodules_test_requests_total{server=\"apache\",result=\"ok\"} 3\n"
    "webmodules_test_requests_total{server=\"apache\",result=\"failed\"} 1\n"
    "webmodules_test_requests_total{server=\"apache\",result=\"we\\\"ird\\\\\\n\"} 2\n"
    "# HELP webmodules_test_queue_depth Depth with \\\\ and\\nnewline.\n"
    "# TYPE webmodules_test_queue_depth gauge\n"
    "webmodules_test_queue_depth{server=\"apache\"} -7\n"
    "# HELP webmodules_test_latency_ms Latency.\n"
    "# TYPE webmodules_test_latency_ms histogram\n"
    "webmodules_test_latency_ms_bucket{server=\"apache\",store=\"memcached\",le=\"1\"} 2\n"
    "webmodules_test_latency_ms_bucket{server=\"apache\",store=\"memcached\",le=\"2\"} 2\n"
    "webmodules_test_latency_ms_bucket{server=\"apache\",store=\"memcached\",le=\"5\"} 3\n"
    "webmodules_test_latency_ms_bucket{server=\"apache\",store=\"memcached\",le=\"10\"} 4\n"
    "webmodules_test_latency_ms_bucket{server=\"apache\",store=\"memcached\",le=\"25\"} 4\n"
    "webmodules_test_latency_ms_bucket{server=\"apache\",store=\"memcached\",le=\"50\"} 4\n"
    "webmodules_test_latency_ms_bucket{server=\"apache\",store=\"memcached\",le=\"100\"} 4\n"
    "webmodules_test_latency_ms_bucket{server=\"apache\",store=\"memcached\",le=\"250\"} 4\n"
    "webmodules_test_latency_ms_bucket{server=\"apache\",store=\"memcached\",le=\"500\"} 4\n"
    "webmodules_test_latency_ms_bucket{server=\"apache\",store=\"memcached\",le=\"1000\"} 4\n"
    "webmodules_test_latency_ms_bucket{server=\"apache\",store=\"memcached\",le=\"2500\"} 4\n"
    "webmodules_test_latency_ms_bucket{server=\"apache\",store=\"memcached\",le=\"+Inf\"} 6\n"
    "webmodules_test_latency_ms_sum{server=\"apache\",store=\"memcached\"} 6011.750\n"
    "webmodules_test_latency_ms_count{server=\"apache\",store=\"memcached\"} 6\n";

static metrics_block *t_filled(unsigned char *mem, size_t size)
{
    metrics_block *block = metrics_block_init(mem, size, "test", t_defs, T_COUNT);

    assert_non_null(block);
    metrics_add(block, T_REQUESTS, 0, 3);
    metrics_add(block, T_REQUESTS, 1, 1);
    metrics_add(block, T_REQUESTS, 2, 2);
    metrics_set(block, T_DEPTH, 0, -7);
    /* le is inclusive: 1 ms is in the le="1" bucket */
    metrics_observe_ms(block, T_LATENCY, 0, 0.5);
    metrics_observe_ms(block, T_LATENCY, 0, 1.0);
    metrics_observe_ms(block, T_LATENCY, 0, 3.0);
    metrics_observe_ms(block, T_LATENCY, 0, 7.25);
    metrics_observe_ms(block, T_LATENCY, 0, 3000.0);
    metrics_observe_ms(block, T_LATENCY, 0, 3000.0);
    return block;
}

static void test_render_exact(void **state)
{
    size_t size = metrics_block_size(t_defs, T_COUNT);
    unsigned char *mem = t_memory(size);
    metrics_block *block = t_filled(mem, size);
    char *text, *buf;
    size_t len, cap;

    (void)state;
    text = t_render(block, "apache");
    assert_string_equal(text, t_expected);
    free(text);

    /* appended after what the buffer holds, growing it from a tiny capacity */
    buf = malloc(4);
    assert_non_null(buf);
    memcpy(buf, "X\n", 3);
    len = 2;
    cap = 4;
    assert_int_equal(metrics_render(block, "apache", &buf, &len, &cap), 0);
    assert_int_equal(len, 2 + strlen(t_expected));
    assert_true(cap > len);
    assert_memory_equal(buf, "X\n", 2);
    assert_string_equal(buf + 2, t_expected);
    free(buf);

    /* without a server, no server label; a metric without label then has no braces at all */
    text = t_render(block, NULL);
    assert_non_null(strstr(text, "\nwebmodules_test_queue_depth -7\n"));
    assert_non_null(strstr(text, "\nwebmodules_test_requests_total{result=\"ok\"} 3\n"));
    assert_non_null(strstr(text, "\nwebmodules_test_latency_ms_bucket{store=\"memcached\",le=\"5\"} 3\n"));
    free(text);

    /* the server's name is a label value like any other: escaped */
    text = t_render(block, "a\"b");
    assert_non_null(strstr(text, "\nwebmodules_test_queue_depth{server=\"a\\\"b\"} -7\n"));
    free(text);
    free(mem);
}

/* A clock stepping back (or a NaN) is an instant call: counted in the first bucket, nothing added to the sum. */
static void test_odd_durations(void **state)
{
    size_t size = metrics_block_size(t_defs, T_COUNT);
    unsigned char *mem = t_memory(size);
    metrics_block *block = metrics_block_init(mem, size, "test", t_defs, T_COUNT);
    char *text;

    (void)state;
    assert_non_null(block);
    metrics_observe_ms(block, T_LATENCY, 0, -3.0);
    metrics_observe_ms(block, T_LATENCY, 0, NAN);
    metrics_observe_ms(block, T_LATENCY, 0, 2.5);
    metrics_observe_ms(block, T_LATENCY, 0, 0.0004); /* rounds to 0 us */
    metrics_observe_ms(block, T_LATENCY, 0, 0.0006); /* rounds to 1 us */
    text = t_render(block, "apache");
    assert_int_equal(t_value(text, "webmodules_test_latency_ms_bucket{server=\"apache\",store=\"memcached\",le=\"1\"}"),
                     4);
    assert_int_equal(t_value(text, "webmodules_test_latency_ms_bucket{server=\"apache\",store=\"memcached\",le=\"5\"}"),
                     5);
    assert_non_null(strstr(text, "\nwebmodules_test_latency_ms_sum{server=\"apache\",store=\"memcached\"} 2.501\n"));
    assert_int_equal(t_value(text, "webmodules_test_latency_ms_count{server=\"apache\",store=\"memcached\"}"), 5);
    free(text);
    free(mem);
}

/* ---------------------------------------------------------------------------------- what is ignored */

static void test_ignored_updates(void **state)
{
    size_t size = metrics_block_size(t_defs, T_COUNT);
    unsigned char *mem = t_memory(size);
    metrics_block *block;
    char *before, *after, *buf = NULL;
    size_t len = 0, cap = 0;

    (void)state;
    /* a NULL block: what the server-neutral code meets in unit tests and tools */
    metrics_add(NULL, 0, 0, 1);
    metrics_set(NULL, 0, 0, 1);
    metrics_observe_ms(NULL, 0, 0, 1.0);
    assert_null(metrics_block_module(NULL));
    assert_int_equal(metrics_render(NULL, "apache", &buf, &len, &cap), 0);
    assert_null(buf);
    assert_int_equal(len, 0);
    assert_int_equal(metrics_render(NULL, "apache", NULL, &len, &cap), -1);

    block = t_filled(mem, size);
    before = t_render(block, "apache");
    metrics_add(block, T_COUNT, 0, 1);            /* no such metric */
    metrics_add(block, T_REQUESTS, 3, 1);         /* no such label value */
    metrics_add(block, T_LATENCY, 0, 1);          /* adding to a histogram */
    metrics_set(block, T_REQUESTS, 0, 99);        /* setting a counter */
    metrics_set(block, T_DEPTH, 1, 99);           /* a metric without label has one series */
    metrics_observe_ms(block, T_DEPTH, 0, 1.0);   /* observing a gauge */
    metrics_observe_ms(block, T_LATENCY, 1, 1.0); /* no such label value */
    after = t_render(block, "apache");
    assert_string_equal(before, after);
    t_assert_guard(mem, size);
    free(before);
    free(after);
    free(mem);
}

/* --------------------------------------------------------------------------------- the modules' tables */

typedef struct {
    const char *module;
    const metrics_def *defs;
    size_t count;
    metrics_block **global;
} t_module;

static void t_module_block(const t_module *m, unsigned char **mem, metrics_block **block)
{
    size_t size = metrics_block_size(m->defs, m->count);

    *mem = t_memory(size);
    *block = metrics_block_init(*mem, size, m->module, m->defs, m->count);
    assert_non_null(*block);
}

static void test_module_tables(void **state)
{
    const t_module modules[] = {
        {"session_shared", session_shared_metric_defs, session_shared_metric_count, &session_shared_metrics},
        {"paywall", paywall_metric_defs, paywall_metric_count, &paywall_metrics},
        {"promo", promo_metric_defs, promo_metric_count, &promo_metrics},
        {"booking", booking_metric_defs, booking_metric_count, &booking_metrics},
    };
    unsigned char *mem;
    metrics_block *block;
    char *text;
    size_t i;

    (void)state;
    /* every table lays out (valid names, label values present) and nothing is counted until a block is set */
    for (i = 0; i < sizeof(modules) / sizeof(modules[0]); i++) {
        assert_null(*modules[i].global);
        t_module_block(&modules[i], &mem, &block);
        free(mem);
    }

    /* the enums index the tables: each label enum's last value is the table's last label value */
    t_module_block(&modules[0], &mem, &block);
    metrics_add(block, SESSION_SHARED_METRIC_LOADS, SESSION_SHARED_LOAD_UNAVAILABLE, 1);
    metrics_add(block, SESSION_SHARED_METRIC_SAVES, SESSION_SHARED_SAVE_FAILED, 1);
    metrics_observe_ms(block, SESSION_SHARED_METRIC_STORE_LATENCY, SESSION_SHARED_STORE_POSTGRES, 1.0);
    text = t_render(block, "apache");
    assert_int_equal(t_value(text, "webmodules_session_shared_loads_total{server=\"apache\",result=\"unavailable\"}"),
                     1);
    assert_int_equal(t_value(text, "webmodules_session_shared_loads_total{server=\"apache\",result=\"cache_hit\"}"), 0);
    assert_int_equal(t_value(text, "webmodules_session_shared_saves_total{server=\"apache\",result=\"failed\"}"), 1);
    assert_int_equal(t_value(text, "webmodules_session_shared_store_latency_ms_count{server=\"apache\","
                                   "store=\"postgres\"}"),
                     1);
    assert_non_null(strstr(text, "# TYPE webmodules_session_shared_store_errors_total counter\n"));
    free(text);
    free(mem);

    t_module_block(&modules[1], &mem, &block);
    metrics_add(block, PAYWALL_METRIC_DECISIONS, PAYWALL_ACCESS_CRAWLER, 1);
    metrics_add(block, PAYWALL_METRIC_ENTITLEMENT_LOOKUPS, PAYWALL_LOOKUP_FAILED, 1);
    metrics_add(block, PAYWALL_METRIC_WEBHOOKS, PAYWALL_WEBHOOK_FAILED, 1);
    metrics_add(block, PAYWALL_METRIC_STORE_ERRORS, PAYWALL_STORE_POSTGRES, 1);
    text = t_render(block, "nginx");
    assert_int_equal(t_value(text, "webmodules_paywall_decisions_total{server=\"nginx\",access=\"crawler\"}"), 1);
    assert_int_equal(t_value(text, "webmodules_paywall_entitlement_lookups_total{server=\"nginx\",source=\"failed\"}"),
                     1);
    assert_int_equal(t_value(text, "webmodules_paywall_webhooks_total{server=\"nginx\",result=\"failed\"}"), 1);
    assert_int_equal(t_value(text, "webmodules_paywall_store_errors_total{server=\"nginx\",store=\"postgres\"}"), 1);
    free(text);
    free(mem);

    t_module_block(&modules[2], &mem, &block);
    metrics_add(block, PROMO_METRIC_BANNERS, PROMO_BANNER_CLICKED, 1);
    metrics_add(block, PROMO_METRIC_CODES, PROMO_CODE_RESULT_REFUSED, 1);
    metrics_add(block, PROMO_METRIC_REFRESHES, PROMO_REFRESH_FAILED, 1);
    text = t_render(block, "nginx");
    assert_int_equal(t_value(text, "webmodules_promo_banners_total{server=\"nginx\",result=\"clicked\"}"), 1);
    assert_int_equal(t_value(text, "webmodules_promo_codes_total{server=\"nginx\",result=\"refused\"}"), 1);
    assert_int_equal(t_value(text, "webmodules_promo_refreshes_total{server=\"nginx\",result=\"failed\"}"), 1);
    assert_int_equal(t_value(text, "webmodules_promo_refresh_latency_ms_count{server=\"nginx\"}"), 0);
    free(text);
    free(mem);

    t_module_block(&modules[3], &mem, &block);
    metrics_add(block, BOOKING_METRIC_API_REQUESTS, BOOKING_STATUS_5XX, 1);
    metrics_add(block, BOOKING_METRIC_BOOKINGS, BOOKING_RESULT_REFUSED, 1);
    metrics_add(block, BOOKING_METRIC_NOTIFICATIONS, BOOKING_NOTIFY_DEAD, 1);
    metrics_set(block, BOOKING_METRIC_OUTBOX_LAG, 0, 42);
    text = t_render(block, "apache");
    assert_int_equal(t_value(text, "webmodules_booking_api_requests_total{server=\"apache\",status=\"5xx\"}"), 1);
    assert_int_equal(t_value(text, "webmodules_booking_bookings_total{server=\"apache\",result=\"refused\"}"), 1);
    assert_int_equal(t_value(text, "webmodules_booking_notifications_total{server=\"apache\",result=\"dead\"}"), 1);
    assert_int_equal(t_value(text, "webmodules_booking_outbox_lag_seconds{server=\"apache\"}"), 42);
    assert_non_null(strstr(text, "# TYPE webmodules_booking_outbox_pending gauge\n"));
    assert_int_equal(t_value(text, "webmodules_booking_store_errors_total{server=\"apache\"}"), 0);
    free(text);
    free(mem);
}

/* ------------------------------------------------------------------- counting in the server-neutral code */

static void test_paywall_counts(void **state)
{
    const t_module m = {"paywall", paywall_metric_defs, paywall_metric_count, &paywall_metrics};
    paywall_rules rules = {0};
    paywall_visit visit = {0};
    paywall_result result;
    paywall_webhook_result hook;
    paywall_plans plans = {0};
    unsigned char *mem;
    char *text;

    (void)state;
    t_module_block(&m, &mem, &paywall_metrics);
    /* an anonymous visitor on a location without meter: decided without a store, denied */
    visit.now = 1700000000;
    assert_int_equal(paywall_decide_cached(NULL, &rules, &visit, &result), 1);
    assert_int_equal(result.access, PAYWALL_ACCESS_DENIED);
    assert_int_equal(paywall_decide_cached(NULL, &rules, &visit, &result), 1);
    /* webhooks refused before any store is asked: no signature (400), no secret configured (500) */
    paywall_webhook_handle(NULL, &plans, "whsec", 5, NULL, 0, "{}", 2, 1700000000, &hook);
    assert_int_equal(hook.status, 400);
    paywall_webhook_handle(NULL, &plans, NULL, 0, "t=1,v1=00", 9, "{}", 2, 1700000000, &hook);
    assert_int_equal(hook.status, 500);
    text = t_render(paywall_metrics, "apache");
    assert_int_equal(t_value(text, "webmodules_paywall_decisions_total{server=\"apache\",access=\"denied\"}"), 2);
    assert_int_equal(t_value(text, "webmodules_paywall_decisions_total{server=\"apache\",access=\"granted\"}"), 0);
    assert_int_equal(t_value(text, "webmodules_paywall_webhooks_total{server=\"apache\",result=\"refused\"}"), 1);
    assert_int_equal(t_value(text, "webmodules_paywall_webhooks_total{server=\"apache\",result=\"failed\"}"), 1);
    assert_int_equal(t_value(text, "webmodules_paywall_webhooks_total{server=\"apache\",result=\"processed\"}"), 0);
    free(text);
    paywall_metrics = NULL;
    free(mem);
}

static void test_promo_counts(void **state)
{
    const t_module m = {"promo", promo_metric_defs, promo_metric_count, &promo_metrics};
    /* nothing listens on port 1: the refresh fails at once, without a timeout to wait for */
    promo_store_config config = {"host=127.0.0.1 port=1 connect_timeout=2", NULL, 5};
    promo_store *store;
    unsigned char *mem;
    char err[256], note[512] = "", *text;
    int is_error = 0;

    (void)state;
    t_module_block(&m, &mem, &promo_metrics);
    store = promo_store_get(&config, err, sizeof(err));
    assert_non_null(store);
    promo_count(store, 7, PROMO_COUNT_IMPRESSION, 1700000000);
    promo_count(store, 7, PROMO_COUNT_IMPRESSION, 1700000000);
    promo_count(store, 7, PROMO_COUNT_CLICK, 1700000000);
    promo_count(store, 7, PROMO_COUNT_REDEMPTION, 1700000000);
    promo_store_refresh(store, 1700000000, note, sizeof(note), &is_error);
    text = t_render(promo_metrics, "nginx");
    assert_int_equal(t_value(text, "webmodules_promo_banners_total{server=\"nginx\",result=\"injected\"}"), 2);
    assert_int_equal(t_value(text, "webmodules_promo_banners_total{server=\"nginx\",result=\"clicked\"}"), 1);
    assert_int_equal(t_value(text, "webmodules_promo_codes_total{server=\"nginx\",result=\"applied\"}"), 1);
    assert_int_equal(t_value(text, "webmodules_promo_refreshes_total{server=\"nginx\",result=\"failed\"}"), 1);
    assert_int_equal(t_value(text, "webmodules_promo_refreshes_total{server=\"nginx\",result=\"ok\"}"), 0);
    assert_int_equal(t_value(text, "webmodules_promo_refresh_latency_ms_count{server=\"nginx\"}"), 1);
    free(text);
    promo_stores_close_all();
    promo_metrics = NULL;
    free(mem);
}

static void test_booking_counts(void **state)
{
    const t_module m = {"booking", booking_metric_defs, booking_metric_count, &booking_metrics};
    booking_config config = {0};
    booking_request request = {0};
    booking_response response;
    booking_store *store;
    unsigned char *mem;
    char err[256], *text;

    (void)state;
    t_module_block(&m, &mem, &booking_metrics);
    /* nothing listens on port 1; none of these requests gets as far as asking */
    store = booking_store_get("host=127.0.0.1 port=1 connect_timeout=2", err, sizeof(err));
    assert_non_null(store);
    booking_config_defaults(&config);
    request.method = "GET";
    request.path = "/booking/api/no/such/route";
    request.now = 1700000000;
    booking_api_handle(store, &config, &request, &response);
    assert_int_equal(response.status, 404);
    booking_response_free(&response);
    /* a booking refused before the store is asked: the body is not JSON */
    request.method = "POST";
    request.path = "/booking/api/bookings";
    request.content_type = "text/plain";
    request.body = "x";
    request.body_len = 1;
    booking_api_handle(store, &config, &request, &response);
    assert_int_equal(response.status, 415);
    booking_response_free(&response);
    text = t_render(booking_metrics, "apache");
    assert_int_equal(t_value(text, "webmodules_booking_api_requests_total{server=\"apache\",status=\"4xx\"}"), 2);
    assert_int_equal(t_value(text, "webmodules_booking_api_requests_total{server=\"apache\",status=\"2xx\"}"), 0);
    assert_int_equal(t_value(text, "webmodules_booking_bookings_total{server=\"apache\",result=\"refused\"}"), 1);
    assert_int_equal(t_value(text, "webmodules_booking_bookings_total{server=\"apache\",result=\"created\"}"), 0);
    assert_int_equal(t_value(text, "webmodules_booking_store_errors_total{server=\"apache\"}"), 0);
    free(text);
    booking_stores_close_all();
    booking_metrics = NULL;
    free(mem);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layout_and_attach),   cmocka_unit_test(test_refused_layouts),
        cmocka_unit_test(test_counts_from_threads), cmocka_unit_test(test_counts_from_processes),
        cmocka_unit_test(test_render_exact),        cmocka_unit_test(test_odd_durations),
        cmocka_unit_test(test_ignored_updates),     cmocka_unit_test(test_module_tables),
        cmocka_unit_test(test_paywall_counts),      cmocka_unit_test(test_promo_counts),
        cmocka_unit_test(test_booking_counts),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
