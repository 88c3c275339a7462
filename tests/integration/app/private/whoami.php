<?php
// Behind mod_auth_form: who Apache says is logged in.
header('Content-Type: application/json');
echo json_encode(['REMOTE_USER' => $_SERVER['REMOTE_USER'] ?? null]), "\n";
