<?php
// page.html produced by PHP; ?flush=1 sends it one byte at a time (each flushed), so that the server's filter sees
// the <body ...> tag, the marker and </body> split across many buffers. The PROMO_* values PHP received are added
// as a comment before </html>.
$page = file_get_contents(__DIR__ . '/page.html');
$seen = [];
foreach ($_SERVER as $k => $v) {
    if (strncmp($k, 'PROMO_', 6) === 0) {
        $seen[$k] = $v;
    }
}
ksort($seen);
$page = str_replace('</html>', '<!-- ' . htmlspecialchars(json_encode((object)$seen)) . " -->\n</html>", $page);
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
