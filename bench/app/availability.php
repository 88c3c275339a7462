<?php
// The PHP way of GET .../partners/{id}/availability (see booking_lib.php).
require __DIR__ . '/booking_lib.php';

$partner = $_GET['partner'] ?? '';
$service = $_GET['service'] ?? '';
$from = $_GET['from'] ?? '';
$to = $_GET['to'] ?? $from;
$staff = $_GET['staff'] ?? '0';
if (!preg_match('/^\d{4}-\d{2}-\d{2}$/', $from)) {
    bench_fail(400, 'from', 'must be a date YYYY-MM-DD');
}
if (!preg_match('/^\d{4}-\d{2}-\d{2}$/', $to) || $to < $from) {
    bench_fail(400, 'to', 'must be a date YYYY-MM-DD, not before from');
}
if (!ctype_digit($service) || !ctype_digit($staff)) {
    bench_fail(400, 'service', 'must be an id');
}
$found = bench_availability($partner, $service, $staff, $from, $to);
if ($found === null) {
    bench_fail(400, 'service', 'unknown service');
}
$instants = [];
foreach ($found['slots'] as $t => $ids) {
    $instants[] = $t;
    $instants[] = $t + $found['duration'];
}
$local = bench_local_times($instants, $found['zone']);
$slots = [];
foreach ($found['slots'] as $t => $ids) {
    sort($ids);
    $slots[] = ['start' => $local[$t], 'end' => $local[$t + $found['duration']], 'staff' => $ids];
}
header('Content-Type: application/json');
echo json_encode(['partner' => $partner, 'service' => (int)$service, 'time_zone' => $found['zone'], 'from' => $from,
    'to' => $to, 'slots' => $slots]);
