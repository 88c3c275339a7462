<?php
// Any user name logs in: sets $_SESSION['user_id'] (derived from the name) and $_SESSION['name'].
require __DIR__ . '/common.php';

$error = '';
if ($_SERVER['REQUEST_METHOD'] === 'POST') {
    $name = trim((string)($_POST['name'] ?? ''));
    if (!csrf_ok()) {
        $error = 'The form expired, please try again.';
    } elseif ($name === '' || strlen($name) > 64) {
        $error = 'Enter a name of 1 to 64 bytes.';
    } else {
        session_regenerate_id(true);    // privilege change: new id
        $_SESSION['user_id'] = (int)sprintf('%u', crc32(strtolower($name))) % 1000000 + 1;
        $_SESSION['name'] = $name;
        redirect('index.php');
    }
}
page('Log in',
    ($error ? '<p style="color:#a00">' . h($error) . '</p>' : '')
    . '<form method="post" action="login.php">' . csrf_field()
    . '<label>Name <input name="name" required maxlength="64" autofocus></label> <button>Log in</button></form>');
