/* Unit tests of mod_booking's availability engine (booking_avail.c): interval set operations, then slots with
 * buffers at window edges, busy intervals that overlap each other and touch the candidates, step alignment after a
 * break, the earliest / latest bounds, resources, several staff members and empty inputs, and how an instant is
 * written in local time with its offset. Every expected list is worked out by hand in the comments; a last test
 * checks the sweep against a brute-force reference on seeded random calendars, and one runs the bench's size (1,000
 * staff members, a year of bookings) once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "booking_int.h"

/* A Monday, 00:00 UTC, so that hand-written times read as wall-clock. */
#define DAY0 1795996800LL
#define DAY  86400LL
#define MIN  60LL

/* hh:mm on day d, as an epoch */
static long long at(int d, int h, int m)
{
    return DAY0 + d * DAY + (h * 60 + m) * MIN;
}

static booking_interval iv(long long start, long long end)
{
    booking_interval i = {start, end};
    return i;
}

static void query_init(booking_avail_query *q, const booking_avail_staff *staff, size_t n)
{
    memset(q, 0, sizeof(*q));
    q->duration_s = 45 * MIN;
    q->step_s = 15 * MIN;
    q->earliest = 0;
    q->latest = DAY0 + 1000 * DAY;
    q->staff = staff;
    q->staff_count = n;
}

/* Asserts the slot starts (as minutes after DAY0) and, when staff_ids is given, each slot's staff members
 * (a string like "3,4|4|3" per slot). */
static void assert_starts(const booking_slots *slots, const long long *minutes, size_t n, const char *staff)
{
    size_t i, j;
    char got[4096] = "", one[32];

    for (i = 0; i < slots->count && i < n; i++)
        if (slots->slots[i].start != DAY0 + minutes[i] * MIN)
            print_error("slot %zu starts at minute %lld, expected %lld\n", i, (slots->slots[i].start - DAY0) / MIN,
                        minutes[i]);
    assert_int_equal(slots->count, n);
    for (i = 0; i < n; i++) {
        assert_int_equal(slots->slots[i].start, DAY0 + minutes[i] * MIN);
        assert_true(slots->slots[i].end > slots->slots[i].start);
        assert_int_equal(slots->slots[i].utc_offset, 0);
    }
    if (staff == NULL)
        return;
    for (i = 0; i < slots->count; i++) {
        if (i)
            strcat(got, "|");
        for (j = 0; j < slots->slots[i].staff_count; j++) {
            snprintf(one, sizeof(one), "%s%lld", j ? "," : "", slots->slots[i].staff_ids[j]);
            strcat(got, one);
        }
    }
    assert_string_equal(got, staff);
}

#define HM(h, m) ((h)*60 + (m))

/* ------------------------------------------------------------------------------------------ interval sets */

static void assert_set(const booking_interval *got, size_t n, const booking_interval *want, size_t nwant)
{
    size_t i;

    assert_int_equal(n, nwant);
    for (i = 0; i < n; i++) {
        assert_int_equal(got[i].start, want[i].start);
        assert_int_equal(got[i].end, want[i].end);
    }
}

static void test_intersect(void **state)
{
    booking_interval a[] = {iv(0, 10), iv(20, 30), iv(40, 50)};
    booking_interval b[] = {iv(5, 25), iv(28, 45), iv(50, 60)};
    booking_interval want[] = {iv(5, 10), iv(20, 25), iv(28, 30), iv(40, 45)};
    booking_interval *out = NULL;
    size_t n = 99;

    (void)state;
    assert_int_equal(booking_intervals_intersect(a, 3, b, 3, &out, &n), 0);
    assert_set(out, n, want, 4); /* [50, 60) only touches [40, 50): nothing */
    free(out);
    /* commutative */
    assert_int_equal(booking_intervals_intersect(b, 3, a, 3, &out, &n), 0);
    assert_set(out, n, want, 4);
    free(out);
    /* empty on either side */
    assert_int_equal(booking_intervals_intersect(a, 3, NULL, 0, &out, &n), 0);
    assert_int_equal(n, 0);
    free(out);
    assert_int_equal(booking_intervals_intersect(NULL, 0, b, 3, &out, &n), 0);
    assert_int_equal(n, 0);
    free(out);
}

static void test_intersect_unsorted_overlapping(void **state)
{
    /* inputs in any order, overlapping and touching, with an empty interval: normalised first */
    booking_interval a[] = {iv(20, 30), iv(0, 10), iv(5, 15), iv(15, 18), iv(50, 50)};
    booking_interval b[] = {iv(12, 100), iv(0, 1)};
    booking_interval want[] = {iv(0, 1), iv(12, 18), iv(20, 30)};
    booking_interval *out = NULL;
    size_t n;

    (void)state;
    assert_int_equal(booking_intervals_intersect(a, 5, b, 2, &out, &n), 0);
    assert_set(out, n, want, 3);
    free(out);
    /* one interval covering many */
    {
        booking_interval big[] = {iv(-100, 1000)};
        booking_interval want2[] = {iv(0, 18), iv(20, 30)};
        assert_int_equal(booking_intervals_intersect(big, 1, a, 5, &out, &n), 0);
        assert_set(out, n, want2, 2);
        free(out);
    }
}

static void test_subtract(void **state)
{
    booking_interval a[] = {iv(0, 100), iv(200, 300)};
    booking_interval holes[] = {iv(10, 20), iv(20, 30), iv(90, 210), iv(250, 260), iv(299, 400)};
    booking_interval want[] = {iv(0, 10), iv(30, 90), iv(210, 250), iv(260, 299)};
    booking_interval *out = NULL;
    size_t n;

    (void)state;
    assert_int_equal(booking_intervals_subtract(a, 2, holes, 5, &out, &n), 0);
    assert_set(out, n, want, 4);
    free(out);
    /* nothing removed: the set itself, normalised */
    {
        booking_interval messy[] = {iv(5, 8), iv(0, 6), iv(8, 9), iv(20, 21)};
        booking_interval want2[] = {iv(0, 9), iv(20, 21)};
        assert_int_equal(booking_intervals_subtract(messy, 4, NULL, 0, &out, &n), 0);
        assert_set(out, n, want2, 2);
        free(out);
    }
    /* all removed, and holes touching the edges exactly */
    {
        booking_interval cover[] = {iv(-5, 100), iv(100, 350)};
        assert_int_equal(booking_intervals_subtract(a, 2, cover, 2, &out, &n), 0);
        assert_int_equal(n, 0);
        free(out);
        booking_interval edges[] = {iv(0, 10), iv(90, 100)};
        booking_interval want3[] = {iv(10, 90), iv(200, 300)};
        assert_int_equal(booking_intervals_subtract(a, 2, edges, 2, &out, &n), 0);
        assert_set(out, n, want3, 2);
        free(out);
    }
    /* outside holes leave it alone; from nothing, nothing */
    {
        booking_interval far[] = {iv(-50, 0), iv(100, 200), iv(300, 301)};
        assert_int_equal(booking_intervals_subtract(a, 2, far, 3, &out, &n), 0);
        assert_set(out, n, a, 2);
        free(out);
        assert_int_equal(booking_intervals_subtract(NULL, 0, far, 3, &out, &n), 0);
        assert_int_equal(n, 0);
        free(out);
    }
}

/* ------------------------------------------------------------------------------------------------- slots */

static void test_plain_window(void **state)
{
    /* 09:00-12:00, 45 min, step 15: 09:00 ... 11:15 (11:15 + 45 = 12:00 fits exactly) */
    booking_interval w[] = {iv(at(0, 9, 0), at(0, 12, 0))};
    booking_avail_staff s = {7, w, 1, NULL, 0};
    booking_avail_query q;
    booking_slots out;
    long long want[] = {HM(9, 0),   HM(9, 15),  HM(9, 30),  HM(9, 45), HM(10, 0),
                        HM(10, 15), HM(10, 30), HM(10, 45), HM(11, 0), HM(11, 15)};

    (void)state;
    query_init(&q, &s, 1);
    assert_int_equal(booking_avail_compute(&q, &out), 0);
    assert_starts(&out, want, 10, "7|7|7|7|7|7|7|7|7|7");
    assert_int_equal(out.slots[0].end, at(0, 9, 45));
    booking_slots_free(&out);
    assert_null(out.slots);
    assert_int_equal(out.count, 0);
}

static void test_buffers_at_window_edges(void **state)
{
    /* buffer 10 before, 5 after: the first start needs t - 10 >= 09:00 -> 09:15 (09:00 + whole steps); the last
     * needs t + 45 + 5 <= 12:00 -> t <= 11:10 -> 11:00. The slot itself ends 45 min after its start. */
    booking_interval w[] = {iv(at(0, 9, 0), at(0, 12, 0))};
    booking_avail_staff s = {7, w, 1, NULL, 0};
    booking_avail_query q;
    booking_slots out;
    long long want[] = {HM(9, 15), HM(9, 30), HM(9, 45), HM(10, 0), HM(10, 15), HM(10, 30), HM(10, 45), HM(11, 0)};

    (void)state;
    query_init(&q, &s, 1);
    q.buffer_before_s = 10 * MIN;
    q.buffer_after_s = 5 * MIN;
    assert_int_equal(booking_avail_compute(&q, &out), 0);
    assert_starts(&out, want, 8, NULL);
    assert_int_equal(out.slots[7].end, at(0, 11, 45));
    booking_slots_free(&out);
}

static void test_busy_overlaps(void **state)
{
    /* 09:00-13:00, 45 min, buffers 10 / 5: a start t needs [t-10, t+50) free, so candidates run from 09:15 (09:10
     * aligned on the opening) to 12:00 (t + 50 <= 13:00).
     * First layout: busy [10:00, 10:30) and [10:20, 11:00) overlap (one block [10:00, 11:00)), and [12:00, 12:05)
     * comes twice and out of order:
     *   09:15 [09:05, 10:05) hits 10:00 -> the next start with t - 10 >= 11:00 is 11:15
     *   11:15 [11:05, 12:05) hits 12:00 -> the next would be 12:15, past 12:00: no slot at all.
     * Second layout: busy [10:00, 11:00) and [12:50, 13:00):
     *   09:15 hits; 11:15 [11:05, 12:05), 11:30, 11:45 free; 12:00 [11:50, 12:50) free: it touches 12:50, and ranges
     *   are [) so touching is not overlapping. */
    booking_interval w[] = {iv(at(0, 9, 0), at(0, 13, 0))};
    booking_interval busy1[] = {iv(at(0, 12, 0), at(0, 12, 5)), iv(at(0, 10, 20), at(0, 11, 0)),
                                iv(at(0, 10, 0), at(0, 10, 30)), iv(at(0, 12, 0), at(0, 12, 5))};
    booking_interval busy3[] = {iv(at(0, 12, 50), at(0, 13, 0)), iv(at(0, 10, 0), at(0, 11, 0))};
    booking_avail_staff s = {7, w, 1, busy1, 4};
    booking_avail_query q;
    booking_slots out;
    long long want[] = {HM(11, 15), HM(11, 30), HM(11, 45), HM(12, 0)};

    (void)state;
    query_init(&q, &s, 1);
    q.buffer_before_s = 10 * MIN;
    q.buffer_after_s = 5 * MIN;
    assert_int_equal(booking_avail_compute(&q, &out), 0);
    assert_starts(&out, want, 0, NULL);
    booking_slots_free(&out);

    s.busy = busy3;
    s.busy_count = 2;
    assert_int_equal(booking_avail_compute(&q, &out), 0);
    assert_starts(&out, want, 4, NULL);
    booking_slots_free(&out);
}

static void test_busy_touching_edges(void **state)
{
    /* no buffers, 30 min, step 30, 09:00-12:00; busy [10:00, 10:30) exactly: 09:30 ends at 10:00 (touching, fine),
     * 10:00 is taken, 10:30 starts as it ends (fine). */
    booking_interval w[] = {iv(at(0, 9, 0), at(0, 12, 0))};
    booking_interval busy[] = {iv(at(0, 10, 0), at(0, 10, 30))};
    booking_avail_staff s = {1, w, 1, busy, 1};
    booking_avail_query q;
    booking_slots out;
    long long want[] = {HM(9, 0), HM(9, 30), HM(10, 30), HM(11, 0), HM(11, 30)};

    (void)state;
    query_init(&q, &s, 1);
    q.duration_s = 30 * MIN;
    q.step_s = 30 * MIN;
    assert_int_equal(booking_avail_compute(&q, &out), 0);
    assert_starts(&out, want, 5, NULL);
    booking_slots_free(&out);
}

static void test_busy_jump_keeps_alignment(void **state)
{
    /* busy ends at 10:07: the next start is the window's opening plus whole steps (10:15), not 10:07 */
    booking_interval w[] = {iv(at(0, 9, 0), at(0, 11, 0))};
    booking_interval busy[] = {iv(at(0, 9, 0), at(0, 10, 7))};
    booking_avail_staff s = {1, w, 1, busy, 1};
    booking_avail_query q;
    booking_slots out;
    long long want[] = {HM(10, 15)};

    (void)state;
    query_init(&q, &s, 1);
    assert_int_equal(booking_avail_compute(&q, &out), 0);
    assert_starts(&out, want, 1, NULL);
    booking_slots_free(&out);
}

static void test_step_alignment_after_break(void **state)
{
    /* windows 09:00-10:00 and 13:10-14:30 (a break in between), 30 min, step 20:
     * first window: 09:00, 09:20 (09:40 + 30 > 10:00); second: 13:10, 13:30, 13:50 (14:10 + 30 > 14:30),
     * aligned on 13:10, the second window's own opening */
    booking_interval w[] = {iv(at(0, 9, 0), at(0, 10, 0)), iv(at(0, 13, 10), at(0, 14, 30))};
    booking_avail_staff s = {1, w, 2, NULL, 0};
    booking_avail_query q;
    booking_slots out;
    long long want[] = {HM(9, 0), HM(9, 20), HM(13, 10), HM(13, 30), HM(13, 50)};

    (void)state;
    query_init(&q, &s, 1);
    q.duration_s = 30 * MIN;
    q.step_s = 20 * MIN;
    assert_int_equal(booking_avail_compute(&q, &out), 0);
    assert_starts(&out, want, 5, NULL);
    booking_slots_free(&out);
}

static void test_earliest_latest(void **state)
{
    /* 09:00-12:00, 45 min, step 15; earliest 10:07 -> 10:15 (aligned on the opening, not on earliest); latest 11:00
     * is exclusive -> 10:45 is the last */
    booking_interval w[] = {iv(at(0, 9, 0), at(0, 12, 0))};
    booking_avail_staff s = {1, w, 1, NULL, 0};
    booking_avail_query q;
    booking_slots out;
    long long want[] = {HM(10, 15), HM(10, 30), HM(10, 45)};

    (void)state;
    query_init(&q, &s, 1);
    q.earliest = at(0, 10, 7);
    q.latest = at(0, 11, 0);
    assert_int_equal(booking_avail_compute(&q, &out), 0);
    assert_starts(&out, want, 3, NULL);
    booking_slots_free(&out);
    /* earliest exactly on a step is included */
    q.earliest = at(0, 10, 15);
    assert_int_equal(booking_avail_compute(&q, &out), 0);
    assert_starts(&out, want, 3, NULL);
    booking_slots_free(&out);
    /* earliest with a buffer before: the buffer may start before earliest, the service not */
    q.buffer_before_s = 30 * MIN;
    q.earliest = at(0, 9, 20);
    q.latest = at(0, 10, 0);
    {
        long long want2[] = {HM(9, 30), HM(9, 45)};
        assert_int_equal(booking_avail_compute(&q, &out), 0);
        assert_starts(&out, want2, 2, NULL);
        booking_slots_free(&out);
    }
    /* nothing between them */
    q.earliest = at(0, 11, 0);
    q.latest = at(0, 11, 0);
    assert_int_equal(booking_avail_compute(&q, &out), 0);
    assert_int_equal(out.count, 0);
    booking_slots_free(&out);
}

static void test_several_staff(void **state)
{
    /* staff 4: 09:00-11:00 busy [09:30, 10:00); staff 3: 10:00-12:00; staff 9: no windows. Given out of order.
     * 60 min, step 30: staff 4 -> 10:00 (09:00 hits 09:30); staff 3 -> 10:00, 10:30, 11:00.
     * Slots: 10:00 {3, 4}, 10:30 {3}, 11:00 {3} */
    booking_interval w4[] = {iv(at(0, 9, 0), at(0, 11, 0))};
    booking_interval b4[] = {iv(at(0, 9, 30), at(0, 10, 0))};
    booking_interval w3[] = {iv(at(0, 10, 0), at(0, 12, 0))};
    booking_avail_staff s[] = {{4, w4, 1, b4, 1}, {9, NULL, 0, NULL, 0}, {3, w3, 1, NULL, 0}};
    booking_avail_query q;
    booking_slots out;
    long long want[] = {HM(10, 0), HM(10, 30), HM(11, 0)};

    (void)state;
    query_init(&q, s, 3);
    q.duration_s = 60 * MIN;
    q.step_s = 30 * MIN;
    assert_int_equal(booking_avail_compute(&q, &out), 0);
    assert_starts(&out, want, 3, "3,4|3|3");
    booking_slots_free(&out);
    /* the same staff member twice does not show twice */
    s[1] = s[2];
    assert_int_equal(booking_avail_compute(&q, &out), 0);
    assert_starts(&out, want, 3, "3,4|3|3");
    booking_slots_free(&out);
}

static void test_resources(void **state)
{
    /* two staff free 09:00-11:00, 30 min, step 30, buffer after 10 ([t, t+40)); room 1 busy [09:00, 10:00),
     * room 2 busy [09:30, 10:30) and [10:40, 11:00):
     *   09:00 [09:00,09:40): room1 busy, room2 hits 09:30 -> no
     *   09:30 [09:30,10:10): room1 hits, room2 hits -> no
     *   10:00 [10:00,10:40): room1 free (touching 10:00) -> yes
     *   10:30 [10:30,11:10) > 11:00 window: not a candidate (the buffer must fit too) */
    booking_interval w[] = {iv(at(0, 9, 0), at(0, 11, 0))};
    booking_avail_staff s[] = {{1, w, 1, NULL, 0}, {2, w, 1, NULL, 0}};
    booking_interval r1[] = {iv(at(0, 9, 0), at(0, 10, 0))};
    booking_interval r2[] = {iv(at(0, 10, 40), at(0, 11, 0)), iv(at(0, 9, 30), at(0, 10, 30))};
    booking_avail_resource rooms[] = {{1, r1, 1}, {2, r2, 2}};
    booking_avail_query q;
    booking_slots out;
    long long want[] = {HM(10, 0)};

    (void)state;
    query_init(&q, s, 2);
    q.duration_s = 30 * MIN;
    q.step_s = 30 * MIN;
    q.buffer_after_s = 10 * MIN;
    q.needs_resource = 1;
    q.resources = rooms;
    q.resource_count = 2;
    assert_int_equal(booking_avail_compute(&q, &out), 0);
    assert_starts(&out, want, 1, "1,2");
    booking_slots_free(&out);

    /* a needed resource but none exists: no slot */
    q.resource_count = 0;
    assert_int_equal(booking_avail_compute(&q, &out), 0);
    assert_int_equal(out.count, 0);
    booking_slots_free(&out);

    /* a free room with no bookings at all: every staff slot (09:00, 09:30, 10:00) */
    {
        booking_avail_resource free_room[] = {{5, NULL, 0}};
        long long want2[] = {HM(9, 0), HM(9, 30), HM(10, 0)};
        q.resources = free_room;
        q.resource_count = 1;
        assert_int_equal(booking_avail_compute(&q, &out), 0);
        assert_starts(&out, want2, 3, "1,2|1,2|1,2");
        booking_slots_free(&out);
    }
    /* resources are ignored when the service needs none */
    q.needs_resource = 0;
    q.resources = rooms;
    q.resource_count = 2;
    {
        long long want3[] = {HM(9, 0), HM(9, 30), HM(10, 0)};
        assert_int_equal(booking_avail_compute(&q, &out), 0);
        assert_starts(&out, want3, 3, NULL);
        booking_slots_free(&out);
    }
}

static void test_empty_inputs(void **state)
{
    booking_interval w[] = {iv(at(0, 9, 0), at(0, 12, 0))};
    booking_avail_staff s = {1, w, 1, NULL, 0};
    booking_avail_staff none = {1, NULL, 0, NULL, 0};
    booking_avail_query q;
    booking_slots out;

    (void)state;
    query_init(&q, NULL, 0);
    assert_int_equal(booking_avail_compute(&q, &out), 0);
    assert_int_equal(out.count, 0);
    booking_slots_free(&out);
    query_init(&q, &none, 1);
    assert_int_equal(booking_avail_compute(&q, &out), 0);
    assert_int_equal(out.count, 0);
    booking_slots_free(&out);
    /* a window shorter than the service */
    query_init(&q, &s, 1);
    q.duration_s = 181 * MIN;
    assert_int_equal(booking_avail_compute(&q, &out), 0);
    assert_int_equal(out.count, 0);
    booking_slots_free(&out);
    /* nonsense steps and durations give nothing rather than looping */
    query_init(&q, &s, 1);
    q.step_s = 0;
    assert_int_equal(booking_avail_compute(&q, &out), 0);
    assert_int_equal(out.count, 0);
    booking_slots_free(&out);
    query_init(&q, &s, 1);
    q.duration_s = 0;
    assert_int_equal(booking_avail_compute(&q, &out), 0);
    assert_int_equal(out.count, 0);
    booking_slots_free(&out);
    booking_slots_free(NULL);
}

static void test_unsorted_windows(void **state)
{
    /* windows given out of order and touching: merged to 09:00-11:00, so 10:00 (across the seam) is a slot */
    booking_interval w[] = {iv(at(0, 10, 0), at(0, 11, 0)), iv(at(0, 9, 0), at(0, 10, 0))};
    booking_avail_staff s = {1, w, 2, NULL, 0};
    booking_avail_query q;
    booking_slots out;
    long long want[] = {HM(9, 0), HM(9, 30), HM(10, 0)};

    (void)state;
    query_init(&q, &s, 1);
    q.duration_s = 60 * MIN;
    q.step_s = 30 * MIN;
    assert_int_equal(booking_avail_compute(&q, &out), 0);
    assert_starts(&out, want, 3, NULL);
    booking_slots_free(&out);
}

/* ------------------------------------------------------------------------------------------ local times */

static void test_format_local(void **state)
{
    char out[32];

    (void)state;
    booking_format_local(1774684800LL, 3600, out); /* 2026-03-28 08:00 UTC */
    assert_string_equal(out, "2026-03-28T09:00:00+01:00");
    /* 2027-10-31 00:00 UTC and an hour later: 02:00 twice in Paris, told apart by the offset */
    booking_format_local(1824940800LL, 7200, out);
    assert_string_equal(out, "2027-10-31T02:00:00+02:00");
    booking_format_local(1824940800LL + 3600, 3600, out);
    assert_string_equal(out, "2027-10-31T02:00:00+01:00");
    /* UTC, west of it with half hours, east with quarter hours across the new year */
    booking_format_local(1798761599LL, 0, out);
    assert_string_equal(out, "2026-12-31T23:59:59+00:00");
    booking_format_local(1798761599LL, -(4 * 3600 + 30 * 60), out);
    assert_string_equal(out, "2026-12-31T19:29:59-04:30");
    booking_format_local(1798761599LL, 5 * 3600 + 45 * 60, out);
    assert_string_equal(out, "2027-01-01T05:44:59+05:45");
}

/* ------------------------------------------------------------------------------- against a brute force */

static unsigned long long rng_state = 0x9e3779b97f4a7c15ULL;

static unsigned rnd(unsigned n)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (unsigned)(rng_state % n);
}

static int overlaps_any(const booking_interval *set, size_t n, long long a, long long b)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (set[i].start < b && a < set[i].end)
            return 1;
    return 0;
}

/* Whether staff member s is free at t, the slow and obvious way (windows disjoint and sorted here). */
static int brute_free(const booking_avail_query *q, const booking_avail_staff *s, long long t)
{
    size_t w;
    long long a = t - q->buffer_before_s, b = t + q->duration_s + q->buffer_after_s;

    if (t < q->earliest || t >= q->latest)
        return 0;
    for (w = 0; w < s->window_count; w++) {
        if (a >= s->windows[w].start && b <= s->windows[w].end && (t - s->windows[w].start) % q->step_s == 0)
            return !overlaps_any(s->busy, s->busy_count, a, b);
    }
    return 0;
}

static int brute_resource(const booking_avail_query *q, long long t)
{
    size_t r;
    long long a = t - q->buffer_before_s, b = t + q->duration_s + q->buffer_after_s;

    for (r = 0; r < q->resource_count; r++)
        if (!overlaps_any(q->resources[r].busy, q->resources[r].busy_count, a, b))
            return 1;
    return 0;
}

static void test_random_against_brute_force(void **state)
{
    enum { STAFF = 4, WINDOWS = 3, BUSY = 6, ROOMS = 2 };
    booking_interval windows[STAFF][WINDOWS], busy[STAFF][BUSY], room_busy[ROOMS][BUSY];
    booking_avail_staff staff[STAFF];
    booking_avail_resource rooms[ROOMS];
    booking_avail_query q;
    booking_slots out;
    int round, i, j;

    (void)state;
    for (round = 0; round < 2000; round++) {
        for (i = 0; i < STAFF; i++) {
            long long t = at(0, 7, 0) + rnd(120) * 5 * MIN;
            for (j = 0; j < WINDOWS; j++) {
                long long len = (1 + rnd(48)) * 5 * MIN;
                windows[i][j] = iv(t, t + len);
                t += len + (1 + rnd(24)) * 5 * MIN;
            }
            for (j = 0; j < BUSY; j++) {
                long long s = at(0, 7, 0) + rnd(200) * 5 * MIN;
                busy[i][j] = iv(s, s + (1 + rnd(24)) * 5 * MIN);
            }
            staff[i].staff_id = 10 + (STAFF - i); /* descending on purpose */
            staff[i].windows = windows[i];
            staff[i].window_count = 1 + rnd(WINDOWS);
            staff[i].busy = busy[i];
            staff[i].busy_count = rnd(BUSY + 1);
        }
        for (i = 0; i < ROOMS; i++) {
            for (j = 0; j < BUSY; j++) {
                long long s = at(0, 7, 0) + rnd(200) * 5 * MIN;
                room_busy[i][j] = iv(s, s + (1 + rnd(36)) * 5 * MIN);
            }
            rooms[i].resource_id = i + 1;
            rooms[i].busy = room_busy[i];
            rooms[i].busy_count = rnd(BUSY + 1);
        }
        query_init(&q, staff, STAFF);
        q.duration_s = (1 + rnd(12)) * 5 * MIN;
        q.buffer_before_s = rnd(4) * 5 * MIN;
        q.buffer_after_s = rnd(4) * 5 * MIN;
        q.step_s = (1 + rnd(6)) * 5 * MIN;
        q.earliest = at(0, 6, 0) + rnd(150) * 5 * MIN;
        q.latest = q.earliest + rnd(200) * 5 * MIN;
        q.needs_resource = rnd(2);
        q.resources = rooms;
        q.resource_count = rnd(ROOMS + 1);
        assert_int_equal(booking_avail_compute(&q, &out), 0);

        /* every minute of two days (windows may run past midnight), in order: the engine's slots must be exactly the
         * brute force's */
        {
            size_t k = 0;
            long long t;
            for (t = at(0, 0, 0); t < at(2, 0, 0); t += MIN) {
                long long ids[STAFF];
                size_t n = 0;
                int s;
                for (s = STAFF - 1; s >= 0; s--)
                    if (brute_free(&q, &staff[s], t))
                        ids[n++] = staff[s].staff_id;
                if (n > 0 && q.needs_resource && !brute_resource(&q, t))
                    n = 0;
                if (n == 0)
                    continue;
                assert_true(k < out.count);
                assert_int_equal(out.slots[k].start, t);
                assert_int_equal(out.slots[k].end, t + q.duration_s);
                assert_int_equal(out.slots[k].staff_count, n);
                for (s = 0; s < (int)n; s++)
                    assert_int_equal(out.slots[k].staff_ids[s], ids[s]);
                k++;
            }
            assert_int_equal(k, out.count);
        }
        booking_slots_free(&out);
    }
}

/* The bench's catalogue: 1,000 staff members with a year of 9:00-18:00 windows and a booking an hour; a week asked
 * at a time is what the API does, but the whole year at once must stay fast too (a sweep, not slots x busy). */
static void test_bench_size(void **state)
{
    enum { STAFF = 1000, DAYS = 365 };
    booking_avail_staff *staff = calloc(STAFF, sizeof(*staff));
    booking_interval *windows = calloc((size_t)STAFF * DAYS, sizeof(*windows));
    booking_interval *busy = calloc((size_t)STAFF * DAYS * 4, sizeof(*busy));
    booking_avail_query q;
    booking_slots out;
    struct timespec t0, t1;
    double seconds;
    int i, d, b;

    (void)state;
    assert_non_null(staff);
    assert_non_null(windows);
    assert_non_null(busy);
    for (i = 0; i < STAFF; i++) {
        for (d = 0; d < DAYS; d++) {
            windows[(size_t)i * DAYS + d] = iv(at(d, 9, 0), at(d, 18, 0));
            for (b = 0; b < 4; b++) {
                /* reversed order, so the engine has to sort */
                long long s = at(DAYS - 1 - d, 9 + 2 * b + (i % 2), 0);
                busy[((size_t)i * DAYS + d) * 4 + b] = iv(s, s + 60 * MIN);
            }
        }
        staff[i].staff_id = i + 1;
        staff[i].windows = &windows[(size_t)i * DAYS];
        staff[i].window_count = DAYS;
        staff[i].busy = &busy[(size_t)i * DAYS * 4];
        staff[i].busy_count = DAYS * 4;
    }
    query_init(&q, staff, STAFF);
    q.duration_s = 60 * MIN;
    q.step_s = 60 * MIN;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(booking_avail_compute(&q, &out), 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    seconds = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    /* each day: 9 starts; even staff busy at 9, 11, 13, 15 -> free at 10, 12, 14, 16, 17; odd staff busy at 10, 12,
     * 14, 16 -> free at 9, 11, 13, 15, 17. So every hour 9..17 is a slot, 17:00 with everybody, others with half. */
    assert_int_equal(out.count, (size_t)DAYS * 9);
    assert_int_equal(out.slots[0].start, at(0, 9, 0));
    assert_int_equal(out.slots[0].staff_count, STAFF / 2);
    assert_int_equal(out.slots[0].staff_ids[0], 2);
    assert_int_equal(out.slots[8].start, at(0, 17, 0));
    assert_int_equal(out.slots[8].staff_count, STAFF);
    print_message("1,000 staff x 365 days: %.3f s\n", seconds);
    assert_true(seconds < 10.0); /* a generous bound for sanitizer builds; a plain build takes well under 1 s */
    booking_slots_free(&out);
    free(staff);
    free(windows);
    free(busy);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_intersect),
        cmocka_unit_test(test_intersect_unsorted_overlapping),
        cmocka_unit_test(test_subtract),
        cmocka_unit_test(test_plain_window),
        cmocka_unit_test(test_buffers_at_window_edges),
        cmocka_unit_test(test_busy_overlaps),
        cmocka_unit_test(test_busy_touching_edges),
        cmocka_unit_test(test_busy_jump_keeps_alignment),
        cmocka_unit_test(test_step_alignment_after_break),
        cmocka_unit_test(test_earliest_latest),
        cmocka_unit_test(test_several_staff),
        cmocka_unit_test(test_resources),
        cmocka_unit_test(test_empty_inputs),
        cmocka_unit_test(test_unsorted_windows),
        cmocka_unit_test(test_format_local),
        cmocka_unit_test(test_random_against_brute_force),
        cmocka_unit_test(test_bench_size),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
