<?php
// The same article as story.html, produced by PHP; ?flush=1 sends it one byte at a time (each byte flushed), so
// that the server's filter sees the marker and the head split across many buffers.
$page = file_get_contents(__DIR__ . '/story.html');
$page = str_replace('<h1>', '<h1 data-access="' . htmlspecialchars($_SERVER['PAYWALL_ACCESS'] ?? '') . '">', $page);
header('Content-Type: text/html; charset=utf-8');
if (!empty($_GET['flush'])) {
    while (ob_get_level()) {
        ob_end_flush();
    }
    foreach (str_split($page) as $byte) {
        echo $byte;
        flush();
    }
} else {
    echo $page;
}
