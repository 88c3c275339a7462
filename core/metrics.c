/* Metrics in shared memory (see metrics.h). The block holds only offsets, never pointers, so that processes which
 * map the memory at different addresses read the same block; everything but the values is written once by
 * metrics_block_init and read-only afterwards. */
#include "metrics.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define METRICS_MAGIC      UINT64_C(0x3143495254454d57) /* "WMETRIC1": also the layout's version */
#define METRICS_MODULE_MAX 32                           /* bytes of the module's name with its NUL */
#define METRICS_SLOTS_HIST (METRICS_BUCKETS + 1)        /* the buckets (not cumulative), then the sum in us */
#define METRICS_RENDER_MIN 4096

/* Upper bounds of the histogram buckets but the last (+Inf), in ms, as rendered in le. */
static const unsigned metrics_bounds[METRICS_BUCKETS - 1] = {1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500};

struct metrics_block {
    uint64_t magic; /* written last, so that metrics_block_at never sees a half-made block */
    uint64_t size;  /* bytes laid out */
    uint32_t count; /* metrics */
    uint32_t descs; /* offset of count metrics_desc */
    uint32_t slots; /* offset of the values, 8-byte aligned */
    uint32_t nslots;
    char module[METRICS_MODULE_MAX];
};

/* One metric. Offsets are from the start of the block, strings are NUL-terminated copies. */
typedef struct {
    uint32_t name;
    uint32_t help;
    uint32_t label;  /* 0: no label */
    uint32_t values; /* offset of nseries uint32_t offsets of the label values; 0 without label */
    uint32_t kind;
    uint32_t nseries; /* 1 without label */
    uint32_t slot;    /* index of the first series' first value */
    uint32_t pad;
} metrics_desc;

/* What the definitions need, in the order they are laid out. */
typedef struct {
    size_t descs;   /* offset of the descriptions */
    size_t offsets; /* offset of the label values' offsets */
    size_t strings; /* offset of the strings */
    size_t slots;   /* offset of the values */
    size_t nslots;
    size_t size;
} metrics_layout;

static size_t metrics_align8(size_t n)
{
    return (n + 7) & ~(size_t)7;
}

static size_t metrics_nvalues(const metrics_def *def)
{
    size_t n = 0;

    if (def->label == NULL || def->values == NULL)
        return 0;
    while (def->values[n] != NULL)
        n++;
    return n;
}

static size_t metrics_nseries(const metrics_def *def)
{
    return def->label == NULL ? 1 : metrics_nvalues(def);
}

static size_t metrics_text_len(const char *s)
{
    return s == NULL ? 0 : strlen(s) + 1;
}

/* Sizes only: whether the definitions make sense is metrics_defs_valid's business. */
static void metrics_plan(const metrics_def *defs, size_t count, metrics_layout *layout)
{
    size_t i, j, offsets = 0, strings = 0, nslots = 0;

    for (i = 0; i < count; i++) {
        strings += metrics_text_len(defs[i].name) + metrics_text_len(defs[i].help) + metrics_text_len(defs[i].label);
        if (defs[i].label != NULL) {
            offsets += metrics_nvalues(&defs[i]);
            for (j = 0; j < metrics_nvalues(&defs[i]); j++)
                strings += metrics_text_len(defs[i].values[j]);
        }
        nslots += metrics_nseries(&defs[i]) * (defs[i].kind == METRICS_HISTOGRAM ? METRICS_SLOTS_HIST : 1);
    }
    layout->descs = metrics_align8(sizeof(struct metrics_block));
    layout->offsets = layout->descs + count * sizeof(metrics_desc);
    layout->strings = layout->offsets + offsets * sizeof(uint32_t);
    layout->slots = metrics_align8(layout->strings + strings);
    layout->nslots = nslots;
    layout->size = layout->slots + nslots * sizeof(uint64_t);
}

size_t metrics_block_size(const metrics_def *defs, size_t count)
{
    metrics_layout layout;

    if (defs == NULL && count > 0)
        return 0;
    metrics_plan(defs, count, &layout);
    return layout.size;
}

/* Prometheus' metric and label names, so that whatever the block holds renders as valid text. */
static int metrics_name_valid(const char *name, int colon)
{
    const char *p;

    if (name == NULL || name[0] == '\0' || (name[0] >= '0' && name[0] <= '9'))
        return 0;
    for (p = name; *p != '\0'; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_' ||
              (colon && *p == ':')))
            return 0;
    }
    return 1;
}

static int metrics_defs_valid(const metrics_def *defs, size_t count)
{
    size_t i;

    for (i = 0; i < count; i++) {
        if (!metrics_name_valid(defs[i].name, 1) || defs[i].help == NULL)
            return 0;
        if (defs[i].kind != METRICS_COUNTER && defs[i].kind != METRICS_GAUGE && defs[i].kind != METRICS_HISTOGRAM)
            return 0;
        /* server is added to every series, le to every bucket: a metric of its own by either name would clash */
        if (defs[i].label != NULL && (!metrics_name_valid(defs[i].label, 0) || strcmp(defs[i].label, "server") == 0 ||
                                      strcmp(defs[i].label, "le") == 0 || metrics_nvalues(&defs[i]) == 0))
            return 0;
    }
    return 1;
}

static uint32_t metrics_copy_text(char *base, size_t *at, const char *s)
{
    size_t off = *at, len = strlen(s) + 1;

    memcpy(base + off, s, len);
    *at += len;
    return (uint32_t)off;
}

metrics_block *metrics_block_init(void *mem, size_t size, const char *module, const metrics_def *defs, size_t count)
{
    metrics_layout layout;
    metrics_block *block = mem;
    metrics_desc *desc;
    uint32_t *offsets;
    char *base = mem;
    size_t i, j, at, slot = 0, next_offset = 0;

    if (mem == NULL || module == NULL || (defs == NULL && count > 0) || ((uintptr_t)mem & 7) != 0)
        return NULL;
    if (strlen(module) >= METRICS_MODULE_MAX || !metrics_name_valid(module, 0) || !metrics_defs_valid(defs, count))
        return NULL;
    metrics_plan(defs, count, &layout);
    if (layout.size > size || layout.size > UINT32_MAX || count > UINT32_MAX)
        return NULL;

    memset(mem, 0, layout.size);
    block->size = layout.size;
    block->count = (uint32_t)count;
    block->descs = (uint32_t)layout.descs;
    block->slots = (uint32_t)layout.slots;
    block->nslots = (uint32_t)layout.nslots;
    memcpy(block->module, module, strlen(module) + 1);

    desc = (metrics_desc *)(base + layout.descs);
    offsets = (uint32_t *)(base + layout.offsets);
    at = layout.strings;
    for (i = 0; i < count; i++) {
        desc[i].name = metrics_copy_text(base, &at, defs[i].name);
        desc[i].help = metrics_copy_text(base, &at, defs[i].help);
        desc[i].kind = (uint32_t)defs[i].kind;
        desc[i].nseries = (uint32_t)metrics_nseries(&defs[i]);
        desc[i].slot = (uint32_t)slot;
        slot += desc[i].nseries * (defs[i].kind == METRICS_HISTOGRAM ? METRICS_SLOTS_HIST : 1);
        if (defs[i].label == NULL)
            continue;
        desc[i].label = metrics_copy_text(base, &at, defs[i].label);
        desc[i].values = (uint32_t)(layout.offsets + next_offset * sizeof(uint32_t));
        for (j = 0; j < desc[i].nseries; j++)
            offsets[next_offset++] = metrics_copy_text(base, &at, defs[i].values[j]);
    }
    __atomic_store_n(&block->magic, METRICS_MAGIC, __ATOMIC_RELEASE);
    return block;
}

metrics_block *metrics_block_at(void *mem)
{
    metrics_block *block = mem;

    if (mem == NULL || ((uintptr_t)mem & 7) != 0 || __atomic_load_n(&block->magic, __ATOMIC_ACQUIRE) != METRICS_MAGIC)
        return NULL;
    return block;
}

static const char *metrics_text(const metrics_block *block, uint32_t off)
{
    return (const char *)block + off;
}

static int metrics_same_text(const metrics_block *block, uint32_t off, const char *s)
{
    return s != NULL && strcmp(metrics_text(block, off), s) == 0;
}

metrics_block *metrics_block_match(void *mem, size_t size, const char *module, const metrics_def *defs, size_t count)
{
    metrics_block *block = metrics_block_at(mem);
    const metrics_desc *desc;
    const uint32_t *offsets;
    size_t i, j;

    if (block == NULL || module == NULL || (defs == NULL && count > 0) || block->size > size ||
        block->size != metrics_block_size(defs, count) || block->count != count || strcmp(block->module, module) != 0 ||
        !metrics_defs_valid(defs, count))
        return NULL;
    desc = (const metrics_desc *)((const char *)block + block->descs);
    for (i = 0; i < count; i++) {
        if (!metrics_same_text(block, desc[i].name, defs[i].name) ||
            !metrics_same_text(block, desc[i].help, defs[i].help) || desc[i].kind != (uint32_t)defs[i].kind ||
            desc[i].nseries != metrics_nseries(&defs[i]) || (desc[i].label == 0) != (defs[i].label == NULL))
            return NULL;
        if (defs[i].label == NULL)
            continue;
        if (!metrics_same_text(block, desc[i].label, defs[i].label))
            return NULL;
        offsets = (const uint32_t *)((const char *)block + desc[i].values);
        for (j = 0; j < desc[i].nseries; j++) {
            if (!metrics_same_text(block, offsets[j], defs[i].values[j]))
                return NULL;
        }
    }
    return block;
}

const char *metrics_block_module(const metrics_block *block)
{
    return block == NULL ? NULL : block->module;
}

/* The first value of a series of the given kind, or NULL when id, value or kind do not fit the block. */
static uint64_t *metrics_series(metrics_block *block, unsigned id, unsigned value, metrics_kind kind)
{
    const metrics_desc *desc;

    if (block == NULL || id >= block->count)
        return NULL;
    desc = (const metrics_desc *)((const char *)block + block->descs) + id;
    if (value >= desc->nseries || desc->kind != (uint32_t)kind)
        return NULL;
    return (uint64_t *)((char *)block + block->slots) + desc->slot +
           (size_t)value * (kind == METRICS_HISTOGRAM ? METRICS_SLOTS_HIST : 1);
}

void metrics_add(metrics_block *block, unsigned id, unsigned value, uint64_t n)
{
    uint64_t *slot = metrics_series(block, id, value, METRICS_COUNTER);

    /* a gauge may be moved up and down by adding (n as two's complement), besides being set */
    if (slot == NULL)
        slot = metrics_series(block, id, value, METRICS_GAUGE);
    if (slot != NULL)
        __atomic_fetch_add(slot, n, __ATOMIC_RELAXED);
}

void metrics_set(metrics_block *block, unsigned id, unsigned value, int64_t v)
{
    uint64_t *slot = metrics_series(block, id, value, METRICS_GAUGE);

    if (slot != NULL)
        __atomic_store_n(slot, (uint64_t)v, __ATOMIC_RELAXED);
}

void metrics_observe_ms(metrics_block *block, unsigned id, unsigned value, double ms)
{
    uint64_t *slot = metrics_series(block, id, value, METRICS_HISTOGRAM);
    unsigned bucket = 0;

    if (slot == NULL)
        return;
    /* a clock stepping back gives a negative duration: count it as instant rather than lose it */
    if (!(ms > 0))
        ms = 0;
    while (bucket < METRICS_BUCKETS - 1 && ms > metrics_bounds[bucket])
        bucket++;
    __atomic_fetch_add(&slot[bucket], 1, __ATOMIC_RELAXED);
    /* 2^64 us is 584,000 years: the cap only keeps the conversion defined for absurd values */
    __atomic_fetch_add(&slot[METRICS_BUCKETS],
                       ms < 1e15 ? (uint64_t)(ms * 1000.0 + 0.5) : UINT64_C(1000000000000000000), __ATOMIC_RELAXED);
}

double metrics_now_ms(void)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec * 1000.0 + (double)now.tv_nsec / 1e6;
}

/* ------------------------------------------------------------------------------------------------- render */

typedef struct {
    char **buf;
    size_t *len;
    size_t *cap;
    int failed;
} metrics_out;

static void metrics_put(metrics_out *out, const char *s, size_t n)
{
    size_t need, cap;
    char *grown;

    if (out->failed)
        return;
    if (n > SIZE_MAX - 1 - *out->len) {
        out->failed = 1;
        return;
    }
    need = *out->len + n + 1;
    if (*out->buf == NULL || need > *out->cap) {
        cap = *out->buf != NULL && *out->cap > 0 ? *out->cap : METRICS_RENDER_MIN;
        while (cap < need)
            cap = cap > SIZE_MAX / 2 ? need : cap * 2;
        grown = realloc(*out->buf, cap);
        if (grown == NULL) {
            out->failed = 1;
            return;
        }
        *out->buf = grown;
        *out->cap = cap;
    }
    memcpy(*out->buf + *out->len, s, n);
    *out->len += n;
    (*out->buf)[*out->len] = '\0';
}

static void metrics_puts(metrics_out *out, const char *s)
{
    metrics_put(out, s, strlen(s));
}

/* The text format's escapes: backslash and line feed everywhere, the double quote too in label values. */
static void metrics_put_escaped(metrics_out *out, const char *s, int quote)
{
    const char *run = s;

    for (; *s != '\0'; s++) {
        if (*s != '\\' && *s != '\n' && !(quote && *s == '"'))
            continue;
        metrics_put(out, run, (size_t)(s - run));
        metrics_puts(out, *s == '\\' ? "\\\\" : *s == '\n' ? "\\n" : "\\\"");
        run = s + 1;
    }
    metrics_put(out, run, (size_t)(s - run));
}

static void metrics_put_name(metrics_out *out, const metrics_block *block, const metrics_desc *desc, const char *suffix)
{
    metrics_puts(out, "webmodules_");
    metrics_puts(out, block->module);
    metrics_puts(out, "_");
    metrics_puts(out, metrics_text(block, desc->name));
    metrics_puts(out, suffix);
}

/* {server="...",label="value",le="..."}: each part only when there is one; nothing when none. */
static void metrics_put_labels(metrics_out *out, const metrics_block *block, const metrics_desc *desc, uint32_t series,
                               const char *server, const char *le)
{
    const char *sep = "{";

    if (server != NULL) {
        metrics_puts(out, "{server=\"");
        metrics_put_escaped(out, server, 1);
        metrics_puts(out, "\"");
        sep = ",";
    }
    if (desc->label != 0) {
        metrics_puts(out, sep);
        metrics_puts(out, metrics_text(block, desc->label));
        metrics_puts(out, "=\"");
        metrics_put_escaped(out, metrics_text(block, ((const uint32_t *)((const char *)block + desc->values))[series]),
                            1);
        metrics_puts(out, "\"");
        sep = ",";
    }
    if (le != NULL) {
        metrics_puts(out, sep);
        metrics_puts(out, "le=\"");
        metrics_puts(out, le);
        metrics_puts(out, "\"");
        sep = ",";
    }
    if (sep[0] == ',')
        metrics_puts(out, "}");
}

static void metrics_put_value(metrics_out *out, const char *text)
{
    metrics_puts(out, " ");
    metrics_puts(out, text);
    metrics_puts(out, "\n");
}

static void metrics_put_histogram(metrics_out *out, const metrics_block *block, const metrics_desc *desc,
                                  uint32_t series, const char *server, const uint64_t *slot)
{
    uint64_t counts[METRICS_BUCKETS], total = 0, sum_us;
    char le[24], text[48];
    unsigned b;

    /* read once, so that every bucket, the +Inf bucket and _count agree even while requests add to them */
    for (b = 0; b < METRICS_BUCKETS; b++)
        counts[b] = __atomic_load_n(&slot[b], __ATOMIC_RELAXED);
    sum_us = __atomic_load_n(&slot[METRICS_BUCKETS], __ATOMIC_RELAXED);
    for (b = 0; b < METRICS_BUCKETS; b++) {
        total += counts[b];
        if (b < METRICS_BUCKETS - 1)
            snprintf(le, sizeof(le), "%u", metrics_bounds[b]);
        else
            snprintf(le, sizeof(le), "+Inf");
        metrics_put_name(out, block, desc, "_bucket");
        metrics_put_labels(out, block, desc, series, server, le);
        snprintf(text, sizeof(text), "%" PRIu64, total);
        metrics_put_value(out, text);
    }
    metrics_put_name(out, block, desc, "_sum");
    metrics_put_labels(out, block, desc, series, server, NULL);
    /* integer arithmetic: the microseconds are exact, a double would print 0.30000000000000004 */
    snprintf(text, sizeof(text), "%" PRIu64 ".%03" PRIu64, sum_us / 1000, sum_us % 1000);
    metrics_put_value(out, text);
    metrics_put_name(out, block, desc, "_count");
    metrics_put_labels(out, block, desc, series, server, NULL);
    snprintf(text, sizeof(text), "%" PRIu64, total);
    metrics_put_value(out, text);
}

static void metrics_put_metric(metrics_out *out, const metrics_block *block, const metrics_desc *desc,
                               const char *server)
{
    static const char *const kinds[] = {"counter", "gauge", "histogram"};
    const uint64_t *slot = (const uint64_t *)((const char *)block + block->slots) + desc->slot;
    char text[32];
    uint32_t s;

    metrics_puts(out, "# HELP ");
    metrics_put_name(out, block, desc, " ");
    metrics_put_escaped(out, metrics_text(block, desc->help), 0);
    metrics_puts(out, "\n# TYPE ");
    metrics_put_name(out, block, desc, " ");
    metrics_puts(out, desc->kind < 3 ? kinds[desc->kind] : "untyped");
    metrics_puts(out, "\n");
    for (s = 0; s < desc->nseries; s++) {
        if (desc->kind == METRICS_HISTOGRAM) {
            metrics_put_histogram(out, block, desc, s, server, slot + (size_t)s * METRICS_SLOTS_HIST);
            continue;
        }
        if (desc->kind == METRICS_GAUGE)
            snprintf(text, sizeof(text), "%" PRId64, (int64_t)__atomic_load_n(&slot[s], __ATOMIC_RELAXED));
        else
            snprintf(text, sizeof(text), "%" PRIu64, __atomic_load_n(&slot[s], __ATOMIC_RELAXED));
        metrics_put_name(out, block, desc, "");
        metrics_put_labels(out, block, desc, s, server, NULL);
        metrics_put_value(out, text);
    }
}

int metrics_render(const metrics_block *block, const char *server, char **buf, size_t *len, size_t *cap)
{
    metrics_out out = {buf, len, cap, 0};
    const metrics_desc *desc;
    uint32_t i;

    if (buf == NULL || len == NULL || cap == NULL)
        return -1;
    if (*buf == NULL)
        *len = *cap = 0;
    if (block == NULL)
        return 0;
    desc = (const metrics_desc *)((const char *)block + block->descs);
    for (i = 0; i < block->count; i++)
        metrics_put_metric(&out, block, &desc[i], server);
    return out.failed ? -1 : 0;
}
