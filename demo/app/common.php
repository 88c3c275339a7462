<?php
// Shared by the demo pages: session start, CSRF token, HTML escaping, page frame.
session_start();
if (empty($_SESSION['csrf'])) {
    $_SESSION['csrf'] = bin2hex(random_bytes(16));
}

function h(string $s): string
{
    return htmlspecialchars($s, ENT_QUOTES | ENT_SUBSTITUTE, 'UTF-8');
}

function csrf_field(): string
{
    return '<input type="hidden" name="csrf" value="' . h($_SESSION['csrf']) . '">';
}

function csrf_ok(): bool
{
    return isset($_POST['csrf']) && is_string($_POST['csrf']) && hash_equals($_SESSION['csrf'], $_POST['csrf']);
}

function redirect(string $to): void
{
    header('Location: ' . $to, true, 303);
    exit;
}

// Links to the same page on both servers (ports passed by build/demo.pl, host as the browser sent it).
function server_links(string $path): string
{
    $host = preg_replace('/:\d+$/', '', $_SERVER['HTTP_HOST'] ?? '127.0.0.1');
    $out = [];
    foreach (['Apache' => $_SERVER['DEMO_APACHE_PORT'] ?? '8080', 'nginx' => $_SERVER['DEMO_NGINX_PORT'] ?? '8081']
             as $name => $port) {
        $here = (string)$port === (string)($_SERVER['SERVER_PORT'] ?? '') ? ' (this one)' : '';
        $out[] = '<a href="http://' . h($host) . ':' . h((string)$port) . h($path) . '">' . $name . $here . '</a>';
    }
    return implode(' · ', $out);
}

function page(string $title, string $body): void
{
    header('Content-Type: text/html; charset=utf-8');
    echo '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>', h($title), '</title>',
        '<style>body{font-family:sans-serif;max-width:40em;margin:2em auto;line-height:1.5}',
        'code{background:#eee;padding:0 .3em}.box{border:1px solid #ccc;padding:1em;margin:1em 0}</style>',
        '</head><body><h1>', h($title), '</h1>', $body,
        '<p class="box">Answered by <code>', h($_SERVER['SERVER_SOFTWARE'] ?? '?'), '</code> on port <code>',
        h((string)($_SERVER['SERVER_PORT'] ?? '?')), '</code><br>Same page on: ', server_links($_SERVER['SCRIPT_NAME'] ?? '/'),
        '</p></body></html>';
}
