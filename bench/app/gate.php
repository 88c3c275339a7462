<?php
// The PHP way of the "gated page for a subscriber" scenario, doing what the module does on a cache hit: read the
// session, read the user's entitlement from memcached (the same item, placed the same way), check the status and
// the plan, then send the page or refuse it.
session_start(['read_and_close' => true]);
$user = $_SESSION['user_id'] ?? null;
$mc = new Memcached('bench');
if (!$mc->getServerList()) {
    $mc->setOption(Memcached::OPT_BINARY_PROTOCOL, true);
    // libmemcached's MEMCACHED_BEHAVIOR_KETAMA (3), as php-memcached's sessions (and the module) place keys
    $mc->setOption(3, 1);
    foreach (explode(',', ini_get('session.save_path')) as $server) {
        [$host, $port] = explode(':', trim($server));
        $mc->addServer($host, (int)$port);
    }
}
$open = false;
$entitlement = $user !== null ? $mc->get('paywall.ent.' . $user) : false;
if (is_string($entitlement)) {
    foreach (array_slice(explode("\n", trim($entitlement)), 1) as $line) {
        [$status, $end] = explode(' ', $line);
        if (in_array($status, ['active', 'trialing'], true) && (int)$end > time()) {
            $open = true;
        }
    }
}
if (!$open) {
    http_response_code(403);
    exit;
}
readfile(__DIR__ . '/gated.html');
