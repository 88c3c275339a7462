<?php
// The PHP way of the "session read" scenario: php-memcached's session handler reads the session, the page follows.
session_start(['read_and_close' => true]);
$user = $_SESSION['user_id'] ?? null;
readfile(__DIR__ . '/page.html');
