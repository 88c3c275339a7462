<?php
// The PHP way of mod_booking's availability and booking creation, for the benchmark: the same queries against the
// same schema, the same rules (working windows = opening hours ∩ working plan − breaks − absences; the service with
// its buffers inside a window and clear of other bookings; starts on the slot grid from each window's start), done
// the way a PHP application would: a persistent connection per php-fpm worker, arrays, json_encode.

function bench_db()
{
    static $db = null;
    if ($db === null) {
        $db = pg_pconnect(getenv('BENCH_PG') ?: ($_SERVER['BENCH_PG'] ?? ''));
        if (!$db) {
            http_response_code(503);
            exit;
        }
    }
    return $db;
}

function bench_fail($status, $field, $message)
{
    http_response_code($status);
    header('Content-Type: application/json');
    echo json_encode(['error' => $message, 'code' => 'invalid', 'field' => $field]);
    exit;
}

// Sorted, disjoint intervals [start, end).
function bench_merge(array $list)
{
    usort($list, fn($a, $b) => $a[0] <=> $b[0]);
    $out = [];
    foreach ($list as $i) {
        if ($out && $i[0] <= $out[count($out) - 1][1]) {
            $out[count($out) - 1][1] = max($out[count($out) - 1][1], $i[1]);
        } else {
            $out[] = $i;
        }
    }
    return $out;
}

function bench_intersect(array $a, array $b)
{
    $out = [];
    $i = $j = 0;
    while ($i < count($a) && $j < count($b)) {
        $s = max($a[$i][0], $b[$j][0]);
        $e = min($a[$i][1], $b[$j][1]);
        if ($s < $e) {
            $out[] = [$s, $e];
        }
        if ($a[$i][1] < $b[$j][1]) {
            $i++;
        } else {
            $j++;
        }
    }
    return $out;
}

function bench_subtract(array $a, array $b)
{
    $out = [];
    foreach ($a as [$s, $e]) {
        foreach ($b as [$bs, $be]) {
            if ($be <= $s || $bs >= $e) {
                continue;
            }
            if ($bs > $s) {
                $out[] = [$s, $bs];
            }
            $s = max($s, $be);
            if ($s >= $e) {
                break;
            }
        }
        if ($s < $e) {
            $out[] = [$s, $e];
        }
    }
    return $out;
}

// Free slots of a service: [start => [staff ids]], plus the zone; null when the partner or service is unknown.
function bench_availability($partner, $service, $staff, $from, $to, $ignore = 0)
{
    $db = bench_db();
    $setup = pg_query_params($db, 'SELECT coalesce(p.time_zone, $3), p.min_notice_minutes, p.horizon_days,'
        . ' p.slot_step_minutes, s.id, s.duration_minutes, s.buffer_before_minutes, s.buffer_after_minutes'
        . ' FROM booking.partners p LEFT JOIN booking.services s ON s.id = $2::bigint AND s.partner_id = p.id'
        . ' AND s.active WHERE p.id = $1 AND p.active', [$partner, $service, 'UTC']);
    $row = pg_fetch_row($setup);
    if (!$row || $row[4] === null) {
        return null;
    }
    [$zone, $notice, $horizon, $step, , $duration, $before, $after] = $row;
    $calendar = pg_query_params($db, "WITH days AS (SELECT \$2::date + i AS day, extract(isodow FROM \$2::date + i)::int AS weekday"
        . " FROM generate_series(0, \$3::date - \$2::date) AS i), staff AS (SELECT st.id FROM booking.staff st"
        . " WHERE st.partner_id = \$1 AND st.active AND (\$5::bigint = 0 OR st.id = \$5::bigint)"
        . " AND EXISTS (SELECT 1 FROM booking.service_staff ss WHERE ss.service_id = \$6::bigint AND ss.staff_id = st.id)),"
        . " exceptions AS (SELECT day, opens, closes, bool_or(opens IS NULL) OVER (PARTITION BY day) AS closed"
        . " FROM booking.partner_exceptions WHERE partner_id = \$1 AND day BETWEEN \$2::date AND \$3::date),"
        . " opening AS (SELECT day, opens, closes FROM exceptions WHERE NOT closed UNION ALL"
        . " SELECT d.day, h.opens, h.closes FROM days d JOIN booking.opening_hours h ON h.partner_id = \$1 AND h.weekday = d.weekday"
        . " WHERE NOT EXISTS (SELECT 1 FROM exceptions e WHERE e.day = d.day))"
        . " SELECT 0, s.id, 0::bigint, 0::bigint FROM staff s UNION ALL"
        . " SELECT 1, 0, extract(epoch FROM (o.day + o.opens) AT TIME ZONE \$4)::bigint,"
        . " extract(epoch FROM (o.day + o.closes) AT TIME ZONE \$4)::bigint FROM opening o UNION ALL"
        . " SELECT 2, h.staff_id, extract(epoch FROM (d.day + h.starts) AT TIME ZONE \$4)::bigint,"
        . " extract(epoch FROM (d.day + h.ends) AT TIME ZONE \$4)::bigint"
        . " FROM days d JOIN booking.staff_hours h ON h.weekday = d.weekday JOIN staff s ON s.id = h.staff_id UNION ALL"
        . " SELECT 3, b.staff_id, extract(epoch FROM (d.day + b.starts) AT TIME ZONE \$4)::bigint,"
        . " extract(epoch FROM (d.day + b.ends) AT TIME ZONE \$4)::bigint"
        . " FROM days d JOIN booking.staff_breaks b ON b.weekday = d.weekday JOIN staff s ON s.id = b.staff_id UNION ALL"
        . " SELECT 3, x.staff_id, extract(epoch FROM (x.day + coalesce(x.starts, time '00:00')) AT TIME ZONE \$4)::bigint,"
        . " extract(epoch FROM (CASE WHEN x.ends IS NULL THEN (x.day + 1)::timestamp ELSE x.day + x.ends END) AT TIME ZONE \$4)::bigint"
        . " FROM booking.staff_exceptions x JOIN staff s ON s.id = x.staff_id WHERE x.day BETWEEN \$2::date AND \$3::date"
        . " ORDER BY 1, 2, 3", [$partner, $from, $to, $zone, $staff, $service]);
    $opening = [];
    $hours = [];
    $off = [];
    $ids = [];
    while ($r = pg_fetch_row($calendar)) {
        if ($r[0] == 0) {
            $ids[] = (int)$r[1];
        } elseif ($r[0] == 1) {
            $opening[] = [(int)$r[2], (int)$r[3]];
        } elseif ($r[0] == 2) {
            $hours[$r[1]][] = [(int)$r[2], (int)$r[3]];
        } else {
            $off[$r[1]][] = [(int)$r[2], (int)$r[3]];
        }
    }
    $opening = bench_merge($opening);
    $now = time();
    $earliest = $now + 60 * $notice;
    $latest = $now + 86400 * $horizon;
    $step *= 60;
    $duration *= 60;
    $before *= 60;
    $after *= 60;
    $lo = $opening ? $opening[0][0] - 86400 : 0;
    $hi = $opening ? $opening[count($opening) - 1][1] + 86400 : 0;
    $busy = [];
    if ($ids) {
        // The module's query: one range scan per staff member on the GiST index (see booking_availability.c).
        $res = pg_query_params($db, 'SELECT s.id, extract(epoch FROM lower(b.busy))::bigint,'
            . ' extract(epoch FROM upper(b.busy))::bigint FROM unnest($1::bigint[]) AS s(id)'
            . ' CROSS JOIN LATERAL (SELECT b.busy FROM booking.bookings b'
            . " WHERE b.staff_id = s.id AND b.status <> 'cancelled' AND b.id <> $4::bigint"
            . ' AND b.busy && tstzrange(to_timestamp($2::bigint), to_timestamp($3::bigint)) OFFSET 0) b'
            . ' ORDER BY 1, 2', ['{' . implode(',', $ids) . '}', $lo, $hi, $ignore]);
        while ($r = pg_fetch_row($res)) {
            $busy[$r[0]][] = [(int)$r[1], (int)$r[2]];
        }
    }
    $slots = [];
    foreach ($ids as $id) {
        $windows = bench_subtract(bench_intersect($opening, bench_merge($hours[$id] ?? [])),
            bench_merge($off[$id] ?? []));
        $taken = bench_merge($busy[$id] ?? []);
        foreach ($windows as [$ws, $we]) {
            for ($t = $ws; $t + $duration + $after <= $we; $t += $step) {
                if ($t - $before < $ws || $t < $earliest || $t >= $latest) {
                    continue;
                }
                $clear = true;
                foreach ($taken as [$bs, $be]) {
                    if ($bs < $t + $duration + $after && $be > $t - $before) {
                        $clear = false;
                        break;
                    }
                }
                if ($clear) {
                    $slots[$t][] = $id;
                }
            }
        }
    }
    ksort($slots);
    return ['zone' => $zone, 'duration' => $duration, 'before' => $before, 'after' => $after, 'slots' => $slots];
}

// "2026-03-28T10:00:00+01:00" for every start and end, the offsets from PostgreSQL as the module does.
function bench_local_times(array $instants, $zone)
{
    if (!$instants) {
        return [];
    }
    $res = pg_query_params(bench_db(), 'SELECT u.t, (extract(epoch FROM to_timestamp(u.t) AT TIME ZONE $2) - u.t)::int'
        . ' FROM unnest($1::bigint[]) AS u(t)', ['{' . implode(',', $instants) . '}', $zone]);
    $out = [];
    while ($r = pg_fetch_row($res)) {
        $offset = (int)$r[1];
        $out[$r[0]] = gmdate('Y-m-d\TH:i:s', (int)$r[0] + $offset)
            . sprintf('%s%02d:%02d', $offset < 0 ? '-' : '+', intdiv(abs($offset), 3600), intdiv(abs($offset) % 3600, 60));
    }
    return $out;
}
