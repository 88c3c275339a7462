<?php
// Greets the logged-in user, shows which server answered and what the session module exported.
require __DIR__ . '/common.php';

$exported = $_SERVER['SESSION_USER_ID'] ?? null;
$module = $exported !== null && $exported !== ''
    ? '<p>The session module exported <code>SESSION_USER_ID=' . h((string)$exported) . '</code>.</p>'
    : '<p>No <code>SESSION_USER_ID</code> exported (session module not loaded or not configured).</p>';

if (isset($_SESSION['user_id'])) {
    page('Hello, ' . $_SESSION['name'],
        '<p>You are user <code>' . h((string)$_SESSION['user_id']) . '</code>. Open the other server: you stay logged in, '
        . 'the session lives in memcached.</p>' . $module
        . '<p><a href="articles/surgery.php">A subscriber-only article</a> · <a href="subscribe.php">Subscribe</a></p>'
        . '<form method="post" action="logout.php">' . csrf_field() . '<button>Log out</button></form>');
} else {
    page('Shared sessions demo',
        '<p>You are not logged in. <a href="login.php">Log in</a> with any name (<code>alice</code> and <code>bob</code> '
        . 'are subscribers).</p><p><a href="articles/surgery.php">A subscriber-only article</a>: three free views a '
        . 'month, then the teaser.</p>' . $module);
}
