<?php
// Prints, as a JSON object, every $_SERVER entry named SESSION_*, PAYWALL_*, PROMO_* or BOOKING_* (what the
// modules export to the application), plus REMOTE_USER when set and not empty (nginx's fastcgi_params always
// passes it, empty without auth).
$out = [];
foreach ($_SERVER as $k => $v) {
    if (preg_match('/^(SESSION|PAYWALL|PROMO|BOOKING)_/', $k)) {
        $out[$k] = $v;
    }
}
if (isset($_SERVER['REMOTE_USER']) && $_SERVER['REMOTE_USER'] !== '') {
    $out['REMOTE_USER'] = $_SERVER['REMOTE_USER'];
}
ksort($out);
header('Content-Type: application/json');
echo json_encode((object)$out, JSON_UNESCAPED_SLASHES), "\n";
