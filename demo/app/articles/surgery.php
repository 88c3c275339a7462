<?php
// A subscriber-only article. mod_paywall decided before PHP ran: PAYWALL_ACCESS says what it decided, and for a
// visitor without access the server cuts the page at the marker and appends the call to action.
require __DIR__ . '/../common.php';

$access = $_SERVER['PAYWALL_ACCESS'] ?? '(mod_paywall not loaded)';
$left = $_SERVER['PAYWALL_METER_REMAINING'] ?? '';
page('Robotic surgery: ten years on',
    '<p class="box">mod_paywall: <code>PAYWALL_ACCESS=' . h($access) . '</code>'
    . ($left !== '' ? ', free articles left: <code>' . h($left) . '</code>' : '')
    . (($_SERVER['PAYWALL_PLAN'] ?? '') !== '' ? ', plan <code>' . h($_SERVER['PAYWALL_PLAN']) . '</code>' : '')
    . '</p>'
    . '<p>Everyone reads this first paragraph: a decade after the first fully robotic procedures, what changed in '
    . 'the operating room?</p>'
    . "<!--paywall-->\n"
    . '<div class="article-body"><p>The rest of the article is for subscribers: outcomes, costs, training, and '
    . 'what surgeons expect next.</p></div>');
