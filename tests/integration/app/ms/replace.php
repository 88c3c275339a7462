<?php
// Behind mod_session (SessionHeader X-Replace-Session): the backend replaces the session's values with these.
header('X-Replace-Session: ' . ($_GET['values'] ?? ''));
header('Content-Type: text/plain');
echo "replaced\n";
