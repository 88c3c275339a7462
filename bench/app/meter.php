<?php
// The PHP way of the "metered anonymous visit" scenarios, doing what the module does: read the visitor's signed meter
// cookie (or give a new visitor one, whose first view the cookie alone counts), count a returning visitor's view in
// memcached for this month, and send the page while the meter allows it.
const METER_SECRET = 'bench-meter-secret-0123456789abcdef';
const METER_LIMIT = 100000000;
$id = null;
$first_view = false;
$cookie = $_COOKIE['bench_meter'] ?? '';
if (preg_match('/^([0-9a-f]{32})\.([0-9a-f]{64})$/', $cookie, $m)
    && hash_equals(hash_hmac('sha256', $m[1], METER_SECRET), $m[2])) {
    $id = $m[1];
} else {
    $id = bin2hex(random_bytes(16));
    $first_view = true;
    setcookie('bench_meter', $id . '.' . hash_hmac('sha256', $id, METER_SECRET),
        ['expires' => time() + 30 * 86400, 'path' => '/', 'httponly' => true, 'samesite' => 'Lax']);
}
$views = 1;
if (!$first_view) {
    $mc = new Memcached('bench');
    if (!$mc->getServerList()) {
        $mc->setOption(Memcached::OPT_BINARY_PROTOCOL, true);
        $mc->setOption(3, 1);    // MEMCACHED_BEHAVIOR_KETAMA, as the module places keys
        foreach (explode(',', ini_get('session.save_path')) as $server) {
            [$host, $port] = explode(':', trim($server));
            $mc->addServer($host, (int)$port);
        }
    }
    $views = $mc->increment('bench.meter.' . $id . '.' . gmdate('Ym'), 1, 2, 30 * 86400);
}
if ($views === false || $views > METER_LIMIT) {
    http_response_code(403);
    exit;
}
header('Cache-Control: private');
readfile(__DIR__ . '/page.html');
