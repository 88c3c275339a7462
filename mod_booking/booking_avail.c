/* The availability engine (see booking_int.h): pure, no I/O. Every time is a UTC epoch; the loader
 * (booking_availability.c) turns wall-clock calendars into instants before calling it, so DST never shows up here.
 *
 * Cost: each staff member's busy intervals are sorted and merged once, then one sweep walks its windows and its busy
 * list together, so a staff member costs O(busy log busy + windows + slots), never slots x busy. A conflict jumps
 * straight to the first aligned start after the busy interval rather than trying every step inside it. Resources
 * are swept the same way over the distinct starts. */
#include <stdlib.h>
#include <string.h>

#include "booking_int.h"

/* One free (start, staff) pair before grouping by start. */
typedef struct {
    long long start;
    long long staff_id;
} booking_free_pair;

typedef struct {
    booking_free_pair *items;
    size_t count, cap;
} booking_pairs;

/* ----------------------------------------------------------------------------------------- interval sets */

static int booking_compare_intervals(const void *a, const void *b)
{
    const booking_interval *x = a, *y = b;

    if (x->start != y->start)
        return x->start < y->start ? -1 : 1;
    if (x->end != y->end)
        return x->end < y->end ? -1 : 1;
    return 0;
}

/* 1 when the set is already sorted, disjoint, not touching and without empty intervals: the common case from the
 * loader, which then needs no copy. */
static int booking_intervals_normal(const booking_interval *set, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if (set[i].start >= set[i].end)
            return 0;
        if (i > 0 && set[i].start <= set[i - 1].end)
            return 0;
    }
    return 1;
}

/* The set sorted and merged: *norm is set itself when it already was (*owned = NULL), otherwise a malloc'd copy
 * (*owned points to it, for the caller to free). 0 or -1 on memory. */
static int booking_normalize_intervals(const booking_interval *set, size_t n, const booking_interval **norm,
                                       size_t *norm_count, booking_interval **owned)
{
    booking_interval *copy;
    size_t i, m = 0;

    *owned = NULL;
    if (n == 0 || booking_intervals_normal(set, n)) {
        *norm = set;
        *norm_count = n;
        return 0;
    }
    copy = malloc(n * sizeof(*copy));
    if (copy == NULL)
        return -1;
    memcpy(copy, set, n * sizeof(*copy));
    qsort(copy, n, sizeof(*copy), booking_compare_intervals);
    for (i = 0; i < n; i++) {
        if (copy[i].start >= copy[i].end)
            continue;
        if (m > 0 && copy[i].start <= copy[m - 1].end) {
            if (copy[i].end > copy[m - 1].end)
                copy[m - 1].end = copy[i].end;
            continue;
        }
        copy[m++] = copy[i];
    }
    *owned = copy;
    *norm = copy;
    *norm_count = m;
    return 0;
}

static int booking_intervals_push(booking_interval **out, size_t *count, size_t *cap, long long start, long long end)
{
    booking_interval *grown;
    size_t want;

    if (start >= end)
        return 0;
    if (*count == *cap) {
        want = *cap ? *cap * 2 : 8;
        grown = realloc(*out, want * sizeof(**out));
        if (grown == NULL)
            return -1;
        *out = grown;
        *cap = want;
    }
    (*out)[*count].start = start;
    (*out)[*count].end = end;
    (*count)++;
    return 0;
}

/* Runs op on normalised copies of both sets: 'i' intersects, 's' subtracts b from a. */
static int booking_intervals_combine(char op, const booking_interval *a, size_t na, const booking_interval *b,
                                     size_t nb, booking_interval **out, size_t *out_count)
{
    const booking_interval *x, *y;
    booking_interval *ox = NULL, *oy = NULL, *res = NULL;
    size_t nx, ny, i, j = 0, count = 0, cap = 0;
    long long cur;
    int rc = -1;

    *out = NULL;
    *out_count = 0;
    if (booking_normalize_intervals(a, na, &x, &nx, &ox) < 0 || booking_normalize_intervals(b, nb, &y, &ny, &oy) < 0)
        goto done;
    for (i = 0; i < nx; i++) {
        /* y's intervals that end before x[i] starts cannot touch x[i] nor any later x */
        while (j < ny && y[j].end <= x[i].start)
            j++;
        if (op == 'i') {
            size_t k;
            for (k = j; k < ny && y[k].start < x[i].end; k++) {
                long long s = x[i].start > y[k].start ? x[i].start : y[k].start;
                long long e = x[i].end < y[k].end ? x[i].end : y[k].end;
                if (booking_intervals_push(&res, &count, &cap, s, e) < 0)
                    goto done;
            }
        } else {
            size_t k;
            cur = x[i].start;
            for (k = j; k < ny && y[k].start < x[i].end; k++) {
                if (booking_intervals_push(&res, &count, &cap, cur, y[k].start) < 0)
                    goto done;
                if (y[k].end > cur)
                    cur = y[k].end;
            }
            if (booking_intervals_push(&res, &count, &cap, cur, x[i].end) < 0)
                goto done;
        }
    }
    *out = res;
    *out_count = count;
    res = NULL;
    rc = 0;
done:
    free(res);
    free(ox);
    free(oy);
    return rc;
}

int booking_intervals_intersect(const booking_interval *a, size_t na, const booking_interval *b, size_t nb,
                                booking_interval **out, size_t *out_count)
{
    return booking_intervals_combine('i', a, na, b, nb, out, out_count);
}

int booking_intervals_subtract(const booking_interval *a, size_t na, const booking_interval *b, size_t nb,
                               booking_interval **out, size_t *out_count)
{
    return booking_intervals_combine('s', a, na, b, nb, out, out_count);
}

/* ---------------------------------------------------------------------------------------------- sweeping */

/* The first start at or after t that is the window's opening plus whole steps. */
static long long booking_align_start(long long opening, long long t, long long step)
{
    long long k;

    if (t <= opening)
        return opening;
    k = (t - opening + step - 1) / step;
    return opening + k * step;
}

/* Advances *pos past busy intervals that end at or before from; 1 when the next one overlaps [from, to). */
static int booking_busy_overlaps(const booking_interval *busy, size_t n, size_t *pos, long long from, long long to)
{
    while (*pos < n && busy[*pos].end <= from)
        (*pos)++;
    return *pos < n && busy[*pos].start < to;
}

static int booking_pairs_push(booking_pairs *pairs, long long start, long long staff_id)
{
    booking_free_pair *grown;
    size_t want;

    if (pairs->count == pairs->cap) {
        want = pairs->cap ? pairs->cap * 2 : 64;
        grown = realloc(pairs->items, want * sizeof(*grown));
        if (grown == NULL)
            return -1;
        pairs->items = grown;
        pairs->cap = want;
    }
    pairs->items[pairs->count].start = start;
    pairs->items[pairs->count].staff_id = staff_id;
    pairs->count++;
    return 0;
}

/* Every start one staff member is free for, in ascending order. */
static int booking_sweep_staff(const booking_avail_query *q, const booking_avail_staff *staff, booking_pairs *pairs)
{
    const booking_interval *windows, *busy;
    booking_interval *owned_windows = NULL, *owned_busy = NULL;
    size_t nwindows, nbusy, w, pos = 0;
    long long before = q->buffer_before_s, after = q->duration_s + q->buffer_after_s;
    int rc = -1;

    if (booking_normalize_intervals(staff->windows, staff->window_count, &windows, &nwindows, &owned_windows) < 0 ||
        booking_normalize_intervals(staff->busy, staff->busy_count, &busy, &nbusy, &owned_busy) < 0)
        goto done;
    for (w = 0; w < nwindows; w++) {
        long long opening = windows[w].start;
        long long low = opening + before > q->earliest ? opening + before : q->earliest;
        long long t = booking_align_start(opening, low, q->step_s);

        while (t < q->latest && t + after <= windows[w].end) {
            if (booking_busy_overlaps(busy, nbusy, &pos, t - before, t + after)) {
                /* jump to the first aligned start whose buffer begins once that booking is over */
                t = booking_align_start(opening, busy[pos].end + before, q->step_s);
                continue;
            }
            if (booking_pairs_push(pairs, t, staff->staff_id) < 0)
                goto done;
            t += q->step_s;
        }
    }
    rc = 0;
done:
    free(owned_windows);
    free(owned_busy);
    return rc;
}

static int booking_compare_pairs(const void *a, const void *b)
{
    const booking_free_pair *x = a, *y = b;

    if (x->start != y->start)
        return x->start < y->start ? -1 : 1;
    if (x->staff_id != y->staff_id)
        return x->staff_id < y->staff_id ? -1 : 1;
    return 0;
}

/* Each resource's busy set normalised, with a sweep position. */
typedef struct {
    const booking_interval *busy;
    booking_interval *owned;
    size_t count, pos;
} booking_resource_sweep;

static void booking_resource_sweeps_free(booking_resource_sweep *sweeps, size_t n)
{
    size_t i;

    if (sweeps == NULL)
        return;
    for (i = 0; i < n; i++)
        free(sweeps[i].owned);
    free(sweeps);
}

static booking_resource_sweep *booking_resource_sweeps_new(const booking_avail_query *q)
{
    booking_resource_sweep *sweeps;
    size_t i;

    sweeps = calloc(q->resource_count ? q->resource_count : 1, sizeof(*sweeps));
    if (sweeps == NULL)
        return NULL;
    for (i = 0; i < q->resource_count; i++) {
        if (booking_normalize_intervals(q->resources[i].busy, q->resources[i].busy_count, &sweeps[i].busy,
                                        &sweeps[i].count, &sweeps[i].owned) < 0) {
            booking_resource_sweeps_free(sweeps, i);
            return NULL;
        }
    }
    return sweeps;
}

/* Starts come in ascending order, so every resource's position only moves forward. */
static int booking_resource_free(const booking_avail_query *q, booking_resource_sweep *sweeps, long long t)
{
    size_t i;

    for (i = 0; i < q->resource_count; i++)
        if (!booking_busy_overlaps(sweeps[i].busy, sweeps[i].count, &sweeps[i].pos, t - q->buffer_before_s,
                                   t + q->duration_s + q->buffer_after_s))
            return 1;
    return 0;
}

/* ------------------------------------------------------------------------------------------------ grouping */

static int booking_slots_append(booking_slots *out, size_t *cap, const booking_free_pair *group, size_t n,
                                long long duration)
{
    booking_slot *grown, *slot;
    size_t i, want;

    if (out->count == *cap) {
        want = *cap ? *cap * 2 : 32;
        grown = realloc(out->slots, want * sizeof(*grown));
        if (grown == NULL)
            return -1;
        out->slots = grown;
        *cap = want;
    }
    slot = &out->slots[out->count];
    memset(slot, 0, sizeof(*slot));
    slot->staff_ids = malloc(n * sizeof(*slot->staff_ids));
    if (slot->staff_ids == NULL)
        return -1;
    slot->start = group[0].start;
    slot->end = group[0].start + duration;
    for (i = 0; i < n; i++) {
        /* the same staff member listed twice in the query would give the same pair twice */
        if (slot->staff_count > 0 && slot->staff_ids[slot->staff_count - 1] == group[i].staff_id)
            continue;
        slot->staff_ids[slot->staff_count++] = group[i].staff_id;
    }
    out->count++;
    return 0;
}

static int booking_group_pairs(const booking_avail_query *q, booking_pairs *pairs, booking_slots *out)
{
    booking_resource_sweep *sweeps = NULL;
    size_t i = 0, j, cap = 0;
    int rc = -1;

    if (pairs->count == 0)
        return 0;
    qsort(pairs->items, pairs->count, sizeof(*pairs->items), booking_compare_pairs);
    if (q->needs_resource && (sweeps = booking_resource_sweeps_new(q)) == NULL)
        return -1;
    while (i < pairs->count) {
        for (j = i + 1; j < pairs->count && pairs->items[j].start == pairs->items[i].start; j++)
            ;
        if (!q->needs_resource || booking_resource_free(q, sweeps, pairs->items[i].start)) {
            if (booking_slots_append(out, &cap, &pairs->items[i], j - i, q->duration_s) < 0)
                goto done;
        }
        i = j;
    }
    rc = 0;
done:
    booking_resource_sweeps_free(sweeps, q->resource_count);
    return rc;
}

int booking_avail_compute(const booking_avail_query *query, booking_slots *out)
{
    booking_pairs pairs = {0};
    size_t i;
    int rc = -1;

    out->slots = NULL;
    out->count = 0;
    /* nothing can be offered without a positive step and duration, nor when a resource is needed and none exists */
    if (query->step_s <= 0 || query->duration_s <= 0 || query->buffer_before_s < 0 || query->buffer_after_s < 0 ||
        query->earliest >= query->latest || (query->needs_resource && query->resource_count == 0))
        return 0;
    for (i = 0; i < query->staff_count; i++)
        if (booking_sweep_staff(query, &query->staff[i], &pairs) < 0)
            goto done;
    if (booking_group_pairs(query, &pairs, out) < 0)
        goto done;
    rc = 0;
done:
    free(pairs.items);
    if (rc < 0)
        booking_slots_free(out);
    return rc;
}

void booking_slots_free(booking_slots *slots)
{
    size_t i;

    if (slots == NULL)
        return;
    for (i = 0; i < slots->count; i++)
        free(slots->slots[i].staff_ids);
    free(slots->slots);
    slots->slots = NULL;
    slots->count = 0;
}
