<?php
// Behind mod_session with SessionEnv On: what mod_session hands the backend (HTTP_SESSION, URL-encoded).
header('Content-Type: application/json');
echo json_encode(['HTTP_SESSION' => $_SERVER['HTTP_SESSION'] ?? null]), "\n";
