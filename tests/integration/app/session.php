<?php
// Session probe for the integration tests.
//   ?set=KEY&value=VAL   $_SESSION[KEY] = VAL
//   ?unset=KEY           unset($_SESSION[KEY])
//   ?regenerate=1        session_regenerate_id(true) (old session deleted)
//   ?destroy=1           session_destroy()
// Prints {"id": session_id(), "session": $_SESSION}.
session_start();
if (isset($_GET['regenerate'])) {
    session_regenerate_id(true);
}
if (isset($_GET['set'], $_GET['value'])) {
    $_SESSION[$_GET['set']] = $_GET['value'];
}
if (isset($_GET['unset'])) {
    unset($_SESSION[$_GET['unset']]);
}
$id = session_id();
$session = $_SESSION;
if (isset($_GET['destroy'])) {
    session_destroy();
    $session = [];
}
header('Content-Type: application/json');
echo json_encode(['id' => $id, 'session' => (object)$session], JSON_UNESCAPED_SLASHES | JSON_PRESERVE_ZERO_FRACTION), "\n";
