<?php
// The subscribe page: the form posts to mod_paywall's checkout handler with the token it published.
require __DIR__ . '/common.php';

$token = $_SERVER['PAYWALL_CSRF_TOKEN'] ?? '';
if (!isset($_SESSION['user_id'])) {
    page('Subscribe', '<p><a href="login.php">Log in</a> first: the subscription is attached to your account.</p>');
    exit;
}
$form = function (string $plan, string $label) use ($token): string {
    return '<form method="post" action="/subscribe/checkout"><input type="hidden" name="plan" value="' . h($plan) . '">'
        . '<input type="hidden" name="csrf" value="' . h($token) . '"><button>' . h($label) . '</button></form>';
};
page('Subscribe',
    '<p>Plans (Stripe is simulated in the demo: the button shows the redirect a real checkout would get).</p>'
    . $form('digital', 'Digital, yearly') . $form('print', 'Print + digital, yearly')
    . '<form method="post" action="/subscribe/portal"><input type="hidden" name="csrf" value="' . h($token) . '">'
    . '<button>Manage my subscription</button></form>');
