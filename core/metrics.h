/* Counters, gauges and latency histograms that every process of a server adds to, in one block of shared memory per
 * module, rendered in Prometheus' text format by the status handler. The block is self-describing (names, help and
 * kinds are copied into it), so that any module's handler can render every module's block without knowing its
 * metrics. Updates are lock-free atomic operations, safe from any thread of any process sharing the memory; never
 * blocks. The adapters provide the memory (Apache: apr_shm before the fork; nginx: a shared zone). */
#ifndef CORE_METRICS_H
#define CORE_METRICS_H

#include <stddef.h>
#include <stdint.h>

typedef enum { METRICS_COUNTER, METRICS_GAUGE, METRICS_HISTOGRAM } metrics_kind;

/* One metric of a module, as the module declares it (a static table indexed by the module's own enum). */
typedef struct {
    const char *name; /* without the module prefix: "decisions_total"; rendered as webmodules_<module>_<name> */
    const char *help;
    metrics_kind kind;
    const char *label;         /* NULL, or one label name whose values are declared in values */
    const char *const *values; /* NULL-terminated label values; each gets its own series (index = position) */
} metrics_def;

#define METRICS_BUCKETS 12 /* latency histograms, ms: 1 2 5 10 25 50 100 250 500 1000 2500 +Inf */

typedef struct metrics_block metrics_block;

/* Bytes the block needs for these definitions. */
size_t metrics_block_size(const metrics_def *defs, size_t count);
/* Lays the block out in mem (size bytes, zeroed or not, 8-byte aligned) for module ("paywall"). NULL when size is too
 * small, the module's name is longer than 31 bytes, or a name is not a Prometheus name (or is "server" or "le" as a
 * label, both added by the rendering). Call once, before the processes that share mem start updating it. */
metrics_block *metrics_block_init(void *mem, size_t size, const char *module, const metrics_def *defs, size_t count);
/* The block that metrics_block_init laid out at mem (for a process that attaches to memory another laid out), or
 * NULL when mem holds none. */
metrics_block *metrics_block_at(void *mem);
/* The block at mem when it was laid out for exactly this module and these definitions (names, help, kinds, labels,
 * values) within size bytes, NULL otherwise: for nginx, which on reload may keep the counts of a shared zone whose
 * metrics did not change, and must lay out afresh one whose metrics did. */
metrics_block *metrics_block_match(void *mem, size_t size, const char *module, const metrics_def *defs, size_t count);
const char *metrics_block_module(const metrics_block *block);

/* id: the metric's index in its definitions; value: the label value's index (0 when the metric has no label).
 * Out-of-range ids or values are ignored. */
void metrics_add(metrics_block *block, unsigned id, unsigned value, uint64_t n);
void metrics_set(metrics_block *block, unsigned id, unsigned value, int64_t v);        /* gauges */
void metrics_observe_ms(metrics_block *block, unsigned id, unsigned value, double ms); /* histograms */
/* A monotonic clock in milliseconds, to time a call: metrics_observe_ms(..., metrics_now_ms() - started). */
double metrics_now_ms(void);

/* Appends the block's metrics in Prometheus text format (HELP, TYPE, series, with server="apache" or "nginx" as a
 * label on every series) to *buf (malloc'd, grown as needed; *len bytes used). Returns 0 or -1 on memory. */
int metrics_render(const metrics_block *block, const char *server, char **buf, size_t *len, size_t *cap);

/* Conventions for the modules (X = session_shared, paywall, promo, booking), in X_metrics.c of each module:
 *   extern const metrics_def X_metric_defs[];   the table, indexed by an enum in X's header (X_METRIC_...)
 *   extern const size_t X_metric_count;
 *   extern metrics_block *X_metrics;             set by the adapter once the shared block exists; NULL: the
 *                                                server-neutral code counts nothing (unit tests, tools)
 * The server-neutral code counts through metrics_add(X_metrics, ...) etc. (a NULL block is ignored).
 * The status handler (Apache: SetHandler webmodules-metrics; nginx: webmodules_metrics;) is in every module and
 * renders every module's block it can find, so that any one loaded module serves the whole page; it answers only a
 * request the server's own authentication let in (403 otherwise). */

#endif
