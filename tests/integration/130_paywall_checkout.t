#!/usr/bin/perl
# Checkout and billing portal on both servers, against a fake Stripe API that checks the real form-encoded request:
# the Checkout Session's shape (subscription mode, the user as client_reference_id and subscription metadata, the
# customer's e-mail, shipping address collection for print plans only, a promotion code from the form, else
# Stripe's own code field; mod_promo's coupon: 220_promo_discount.t), 303 to Stripe's URL, CSRF refusals, unknown plans,
# anonymous visitors; a slow or failing Stripe gives a clear error page within the timeout, and the server keeps
# answering other requests meanwhile.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use POSIX ();
use Time::HiRes qw(time);
use ModTest;
use FakeStripe;
use PaywallConf qw(paywall_server paywall_location merge_conf);

my $t = ModTest->new(memcached => 1, postgres => 1, php => 1);
mkdir $t->prefix . '/stripe';
my $stripe = FakeStripe->start(dir => $t->prefix . '/stripe', key => 'sk_test_checkout123',
    prices => [qw(price_digital price_print)]);
$t->write_file('paywall.secret', "csrf-secret-0123456789abcdef\n");
$t->write_file('stripe.key', "sk_test_checkout123\n");
my $api = $stripe->url;
$t->start_servers(
    merge_conf(
        [paywall_server('PaywallPostgres "@PG@"', 'PaywallMemcached "@MC@"', 'PaywallUser header:X-User',
            'PaywallEmail header:X-Email', 'PaywallSecretFile @TMP@/paywall.secret',
            'PaywallStripeKeyFile @TMP@/stripe.key', "PaywallStripeAPI $api", 'PaywallStripeTimeout 2s',
            'PaywallPlan digital price_digital', 'PaywallPlan print price_print print',
            'PaywallReturnURL /account.html')],
        [paywall_location('/subscribe/checkout', [], handler => 'paywall-checkout')],
        [paywall_location('/subscribe/portal', [], handler => 'paywall-portal')]),
    nginx_php => PaywallConf::paywall_php_params());

# The token PHP pages put in their forms, as the module publishes it.
sub token {
    my ($s, $user) = @_;
    return ModTest::json($t->get($s, '/env.php', {'X-User' => $user}))->{PAYWALL_CSRF_TOKEN};
}

sub checkout {
    my ($s, $user, $form, $path) = @_;
    return $t->post($s, $path // '/subscribe/checkout', $form,
        {($user ? ('X-User' => $user) : ()), 'X-Email' => 'reader@example.org'});
}

for my $s (qw(apache nginx)) {
    my $user = "buyer-$s";
    my $csrf = token($s, $user);
    like($csrf // '', qr/^\d+\.\S+/, "$s: PHP pages get a CSRF token for the visitor");

    # Digital plan: no shipping address, Stripe's own promotion code field.
    $stripe->clear;
    my $r = checkout($s, $user, {plan => 'digital', csrf => $csrf});
    is($r->{status}, 303, "$s: checkout answers 303") or diag($r->{content});
    like($r->{headers}{location} // '', qr{^https://checkout\.stripe\.com/c/pay/cs_test_}, "$s: to Stripe's URL");
    my $req = $stripe->last_request;
    is($req->{path}, '/v1/checkout/sessions', "$s: a Checkout Session was created");
    is($req->{status}, 200, "$s: the fake Stripe accepted the request's shape");
    is($req->{headers}{'content-type'}, 'application/x-www-form-urlencoded', "$s: form-encoded");
    like($req->{headers}{authorization} // '', qr/^Bearer sk_test_checkout123\z/, "$s: with the secret key");
    ok($req->{headers}{'idempotency-key'}, "$s: and an idempotency key");
    my $p = $req->{params};
    is($p->{mode}, 'subscription', "$s: mode=subscription");
    is($p->{line_items}[0]{price}, 'price_digital', "$s: the plan's price");
    is($p->{client_reference_id}, $user, "$s: client_reference_id is the user");
    is($p->{subscription_data}{metadata}{user_id}, $user, "$s: and so is the subscription's metadata");
    is($p->{customer_email}, 'reader@example.org', "$s: customer_email from PaywallEmail");
    like($p->{success_url}, qr{^http://127\.0\.0\.1:\d+/account\.html\?paywall=success&session_id=\{CHECKOUT_SESSION_ID\}\z},
        "$s: absolute success URL with Stripe's placeholder");
    like($p->{cancel_url}, qr{/account\.html\?paywall=cancel\z}, "$s: cancel URL");
    ok(!$p->{shipping_address_collection}, "$s: no shipping address for a digital plan");
    is($p->{allow_promotion_codes}, 'true', "$s: Stripe's code field when no promotion applies");

    # Print plan: the address is collected; a promotion code id from the form becomes the discount.
    $r = checkout($s, $user, {plan => 'print', csrf => $csrf, promotion_code => 'promo_SPRING'});
    is($r->{status}, 303, "$s: print checkout answers 303") or diag($r->{content});
    $p = $stripe->last_request->{params};
    ok(@{$p->{shipping_address_collection}{allowed_countries} // []} >= 1 &&
       (grep { $_ eq 'FR' } @{$p->{shipping_address_collection}{allowed_countries}}),
       "$s: shipping address collected for print");
    is($p->{discounts}[0]{promotion_code}, 'promo_SPRING', "$s: the promotion code applies");
    ok(!exists $p->{allow_promotion_codes}, "$s: not together with the code field (Stripe refuses both)");

    # (mod_promo's promotion codes reaching the checkout: tests/integration/220_promo_discount.t)

    # Refusals, none reaching Stripe.
    $stripe->clear;
    is(checkout($s, $user, {plan => 'digital'})->{status}, 403, "$s: no CSRF token: 403");
    is(checkout($s, $user, {plan => 'digital', csrf => "$csrf" . 'x'})->{status}, 403, "$s: a forged token: 403");
    is(checkout($s, 'someone-else', {plan => 'digital', csrf => $csrf})->{status}, 403,
        "$s: another user's token: 403");
    is(checkout($s, undef, {plan => 'digital', csrf => $csrf})->{status}, 403, "$s: anonymous: 403");
    is(checkout($s, $user, {plan => 'gold', csrf => $csrf})->{status}, 400, "$s: unknown plan: 400");
    is($t->request('GET', $s, '/subscribe/checkout')->{status}, 405, "$s: GET: 405");
    is(scalar $stripe->requests, 0, "$s: none of those reached Stripe");

    # Stripe refusing: a clear page, not a hang.
    $stripe->mode('fail');
    $r = checkout($s, $user, {plan => 'digital', csrf => $csrf});
    is($r->{status}, 502, "$s: Stripe failing: 502");
    like($r->{content}, qr/Nothing was charged/, "$s: with a clear message");
    $stripe->mode('refuse');
    $r = checkout($s, $user, {plan => 'digital', csrf => $csrf});
    is($r->{status}, 504, "$s: Stripe unreachable: 504");

    # Stripe slow (10 s): the visitor gets the error when PaywallStripeTimeout (2 s, one retry) has passed, and the
    # server answers others meanwhile.
    $stripe->mode('slow', seconds => 10);
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        my $t0 = time;
        my $res = checkout($s, $user, {plan => 'digital', csrf => $csrf});
        my $took = time - $t0;
        POSIX::_exit(($res->{status} == 504 && $took < 8) ? 0 : 1);
    }
    sleep 1;
    my $t0 = time;
    my $other = $t->get($s, '/index.html');
    ok($other->{status} == 200 && time - $t0 < 1, "$s: other requests are answered while Stripe is slow");
    waitpid($pid, 0);
    is($? >> 8, 0, "$s: the slow checkout ends with 504 within the timeout");
    $stripe->mode('ok');

    # Billing portal: the user's Stripe customer, as a webhook recorded it.
    $r = $t->post($s, '/subscribe/portal', {csrf => token($s, 'no-sub')}, {'X-User' => 'no-sub'});
    is($r->{status}, 404, "$s: no customer yet: 404 with a message");
    $t->psql("INSERT INTO paywall.customers (customer_id, user_id, livemode) VALUES ('cus_portal_$s', '$user', false)");
    $stripe->clear;
    $r = $t->post($s, '/subscribe/portal', {csrf => $csrf}, {'X-User' => $user});
    is($r->{status}, 303, "$s: portal answers 303") or diag($r->{content});
    like($r->{headers}{location} // '', qr{^https://billing\.stripe\.com/}, "$s: to Stripe's billing portal");
    $p = $stripe->last_request->{params};
    is($p->{customer}, "cus_portal_$s", "$s: for the user's customer");
    like($p->{return_url}, qr{/account\.html\z}, "$s: coming back to the account page");
}

done_testing();
