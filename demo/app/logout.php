<?php
// POST (with the CSRF token) ends the session; GET only offers the button.
require __DIR__ . '/common.php';

if ($_SERVER['REQUEST_METHOD'] === 'POST' && csrf_ok()) {
    $_SESSION = [];
    $p = session_get_cookie_params();
    setcookie(session_name(), '', [
        'expires' => 1, 'path' => $p['path'], 'domain' => $p['domain'],
        'secure' => $p['secure'], 'httponly' => $p['httponly'], 'samesite' => $p['samesite'] ?: 'Lax',
    ]);
    session_destroy();
    redirect('index.php');
}
page('Log out', '<form method="post" action="logout.php">' . csrf_field() . '<button>Log out</button></form>');
