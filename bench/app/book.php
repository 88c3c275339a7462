<?php
// The PHP way of POST .../bookings (see booking_lib.php): validate the JSON, check the start is a free slot and
// choose the staff member, then one transaction: customer, booking (the exclusion constraint still guards races),
// its notification and reminder in the outbox; 201 with a manage token.
require __DIR__ . '/booking_lib.php';

$in = json_decode(file_get_contents('php://input'), true);
if (!is_array($in)) {
    bench_fail(400, null, 'invalid JSON');
}
$partner = $in['partner'] ?? '';
$service = $in['service'] ?? 0;
$staff = $in['staff'] ?? 0;
$customer = $in['customer'] ?? null;
if (!is_string($partner) || !preg_match('/^[a-z0-9][a-z0-9-]{0,62}$/', $partner)) {
    bench_fail(400, 'partner', 'unknown partner');
}
if (!is_int($service) || $service <= 0) {
    bench_fail(400, 'service', 'must be an id');
}
if (!is_int($staff) || $staff < 0) {
    bench_fail(400, 'staff', 'must be an id');
}
$start = is_string($in['start'] ?? null) ? date_create_immutable($in['start']) : false;
if (!$start || !preg_match('/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(Z|[+-]\d{2}:\d{2})$/', $in['start'])) {
    bench_fail(400, 'start', 'must be an RFC 3339 time');
}
$t = $start->getTimestamp();
if ($t < time()) {
    bench_fail(400, 'start', 'is in the past');
}
if (!is_array($customer)) {
    bench_fail(400, 'customer', 'is required');
}
$name = trim($customer['name'] ?? '');
$email = strtolower(trim($customer['email'] ?? ''));
$phone = preg_replace('/[\s.\-()]/', '', $customer['phone'] ?? '');
if (!preg_match('/^[^\x00-\x1f]{1,200}$/u', $name)) {
    bench_fail(400, 'customer.name', 'is required, at most 200 characters');
}
if (strlen($email) > 254 || !filter_var($email, FILTER_VALIDATE_EMAIL)) {
    bench_fail(400, 'customer.email', 'is not an e-mail address');
}
if (!preg_match('/^\+?\d{7,15}$/', $phone)) {
    bench_fail(400, 'customer.phone', 'is not a phone number');
}
$day = gmdate('Y-m-d', $t);
$found = bench_availability($partner, $service, $staff, gmdate('Y-m-d', $t - 86400), gmdate('Y-m-d', $t + 86400));
if ($found === null) {
    bench_fail(400, 'service', 'unknown service');
}
$free = $found['slots'][$t] ?? [];
if ($staff) {
    $free = in_array($staff, $free, true) ? [$staff] : [];
}
if (!$free) {
    http_response_code(409);
    header('Content-Type: application/json');
    echo json_encode(['error' => 'this slot is not offered', 'code' => 'slot_unavailable']);
    exit;
}
$token = rtrim(strtr(base64_encode(random_bytes(32)), '+/', '-_'), '=');
$db = bench_db();
pg_query($db, 'BEGIN');
$c = pg_query_params($db, 'INSERT INTO booking.customers (name, email, phone) VALUES ($1, $2, $3)'
    . ' ON CONFLICT (email) DO UPDATE SET name = EXCLUDED.name, phone = EXCLUDED.phone RETURNING id',
    [$name, $email, $phone]);
$b = @pg_query_params($db, 'INSERT INTO booking.bookings (partner_id, service_id, staff_id, customer_id, starts_at,'
    . ' ends_at, busy, price_cents, currency, manage_token_hash, notes) SELECT s.partner_id, s.id, $2::bigint, $3::bigint,'
    . ' to_timestamp($4::bigint), to_timestamp($4::bigint) + make_interval(mins => s.duration_minutes),'
    . ' tstzrange(to_timestamp($4::bigint) - make_interval(mins => s.buffer_before_minutes), to_timestamp($4::bigint)'
    . " + make_interval(mins => s.duration_minutes + s.buffer_after_minutes), '[)'), s.price_cents, s.currency,"
    . " sha256(convert_to(\$5, 'UTF8')), '' FROM booking.services s WHERE s.id = \$1::bigint RETURNING id",
    [$service, $free[0], pg_fetch_result($c, 0, 0), $t, $token]);
if (!$b) {
    pg_query($db, 'ROLLBACK');
    http_response_code(409);
    header('Content-Type: application/json');
    echo json_encode(['error' => 'this slot was just taken', 'code' => 'slot_taken']);
    exit;
}
$id = pg_fetch_result($b, 0, 0);
foreach ([['booking.confirmed', null], ['booking.reminder', 24]] as [$kind, $hours]) {
    pg_query_params($db, "INSERT INTO booking.outbox (booking_id, kind, payload, due_at, next_attempt_at)"
        . " SELECT b.id, \$2::text, jsonb_build_object('event', \$2::text, 'booking', jsonb_build_object('id', b.id,"
        . " 'status', b.status, 'partner', jsonb_build_object('id', p.id, 'name', p.name), 'service',"
        . " jsonb_build_object('id', s.id, 'name', s.name), 'staff', jsonb_build_object('id', st.id, 'name', st.name),"
        . " 'start', b.starts_at, 'end', b.ends_at, 'price_cents', b.price_cents, 'currency', b.currency,"
        . " 'customer', jsonb_build_object('name', c.name, 'email', c.email, 'phone', c.phone))), d.due, d.due"
        . " FROM booking.bookings b JOIN booking.partners p ON p.id = b.partner_id"
        . " JOIN booking.services s ON s.id = b.service_id JOIN booking.staff st ON st.id = b.staff_id"
        . " JOIN booking.customers c ON c.id = b.customer_id"
        . " CROSS JOIN LATERAL (SELECT coalesce(b.starts_at - make_interval(hours => \$3::int), clock_timestamp()) AS due) d"
        . " WHERE b.id = \$1::bigint AND (\$3::int IS NULL OR d.due > clock_timestamp())", [$id, $kind, $hours]);
}
pg_query($db, 'COMMIT');
$local = bench_local_times([$t, $t + $found['duration']], $found['zone']);
http_response_code(201);
header('Content-Type: application/json');
echo json_encode(['id' => (int)$id, 'token' => $token, 'status' => 'confirmed', 'partner' => $partner,
    'service' => ['id' => $service], 'staff' => ['id' => $free[0]], 'start' => $local[$t],
    'end' => $local[$t + $found['duration']], 'time_zone' => $found['zone']]);
