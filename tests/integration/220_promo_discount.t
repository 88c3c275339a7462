#!/usr/bin/perl
# Discount codes on both servers: ?promo=CODE (any URL) or a click on the banner sets a signed cookie and publishes
# PROMO_CODE, PROMO_STRIPE_COUPON, PROMO_DISCOUNT and PROMO_FIRST_YEAR_PRICE; unknown, disabled, not started,
# expired and exhausted codes are refused with a message and never applied; an edited cookie is ignored; mod_paywall's
# checkout sends the promotion's Stripe coupon to Stripe.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use JSON::PP;
use Time::HiRes qw(sleep time);
use ModTest;
use FakeStripe;
use PaywallConf qw(paywall_server paywall_location merge_conf);
use PromoConf qw(promo_conf promotion iso api);

my $t = ModTest->new(memcached => 1, postgres => 1, php => 1);
PromoConf::setup_files($t);
mkdir $t->prefix . '/stripe';
my $stripe = FakeStripe->start(dir => $t->prefix . '/stripe', key => 'sk_test_promo123');
$t->write_file('paywall.secret', "paywall-secret-0123456789abcdef\n");
$t->write_file('stripe.key', "sk_test_promo123\n");
$t->start_servers(promo_conf(more => [
    [paywall_server('PaywallPostgres "@PG@"', 'PaywallUser header:X-User', 'PaywallSecretFile @TMP@/paywall.secret',
        'PaywallStripeKeyFile @TMP@/stripe.key', 'PaywallStripeAPI ' . $stripe->url, 'PaywallPlan digital price_digital')],
    [paywall_location('/subscribe/checkout', [], handler => 'paywall-checkout')]]));

my %id;
sub create {
    my ($key, %o) = @_;
    my ($status, $data) = api($t, 'apache', 'POST', 'promotions', promotion(%o));
    die "cannot create $key: $status " . JSON::PP->new->encode($data // {}) . "\n" unless $status == 201;
    return $id{$key} = $data->{id};
}
create('pct', name => 'Thirty', paths => ['/nowhere/'],
    discount => {code => 'CONGRESS30', percent_off => 30, duration => 'once', stripe_coupon => 'coupon_c30'});
create('amount', name => 'Twenty euros', paths => ['/nowhere/'],
    discount => {code => 'MINUS20', amount_off => 2000, currency => 'eur', duration => 'once', stripe_coupon => 'coupon_m20'});
create('off', name => 'Off', enabled => JSON::PP::false, discount => {code => 'SWITCHEDOFF', percent_off => 10});
create('soon', name => 'Soon', starts_at => iso(time + 86400), ends_at => iso(time + 2 * 86400),
    discount => {code => 'SOON', percent_off => 10});
create('once', name => 'One only', paths => ['/nowhere/'], discount => {code => 'ONLYONE', percent_off => 50, max_redemptions => 1});
# An expired promotion cannot be created through the API as such: end it in the database.
create('over', name => 'Over', discount => {code => 'OVER', percent_off => 10});
$t->psql("UPDATE promo.promotions SET starts_at = now() - interval '2 days', ends_at = now() - interval '1 day',"
    . " body = jsonb_set(jsonb_set(body, '{starts_at}', to_jsonb(to_char(now() - interval '2 days', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'))),"
    . " '{ends_at}', to_jsonb(to_char(now() - interval '1 day', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'))) WHERE id = $id{over}");
sleep 1.3;

sub env_of {
    my ($r) = @_;
    my ($json) = $r->{content} =~ /<!-- (.*) -->\s*<\/html>/s or return {};
    $json =~ s/&quot;/"/g;
    $json =~ s/&amp;/&/g;
    return JSON::PP->new->decode($json);
}

for my $s (qw(apache nginx)) {
    my $r = $t->get($s, '/promo/page.php?promo=congress30');
    my $c = ModTest::set_cookie($r, 'promo_code');
    ok($c && $c->{httponly}, "$s: ?promo=congress30 sets the signed promo_code cookie");
    my $env = env_of($r);
    is($env->{PROMO_CODE}, 'CONGRESS30', "$s: PROMO_CODE at once, upper-cased");
    is($env->{PROMO_STRIPE_COUPON}, 'coupon_c30', "$s: PROMO_STRIPE_COUPON");
    is($env->{PROMO_DISCOUNT}, '30%', "$s: PROMO_DISCOUNT");
    is($env->{PROMO_FIRST_YEAR_PRICE}, 8400, "$s: PROMO_FIRST_YEAR_PRICE: 120.00 - 30% = 84.00");
    my $cookie = "promo_code=$c->{value}";
    $env = env_of($t->get($s, '/promo/page.php', {Cookie => $cookie}));
    is($env->{PROMO_CODE}, 'CONGRESS30', "$s: the cookie carries it to later pages");
    (my $edited = $c->{value}) =~ s/CONGRESS30/CONGRESS99/;
    $env = env_of($t->get($s, '/promo/page.php', {Cookie => "promo_code=$edited"}));
    ok(!$env->{PROMO_CODE}, "$s: an edited cookie is ignored");

    $env = env_of($t->get($s, '/promo/page.php?promo=MINUS20'));
    is($env->{PROMO_FIRST_YEAR_PRICE}, 10000, "$s: 120.00 - 20.00 = 100.00");
    is($env->{PROMO_DISCOUNT}, '20.00 eur', "$s: amount discount shown with its currency");

    my %refused = (NOSUCHCODE => 'unknown', SWITCHEDOFF => 'disabled', SOON => 'not_started', OVER => 'expired',
        'bad code!' => 'unknown');
    for my $code (sort keys %refused) {
        my $mark = $t->log_mark($s);
        $r = $t->get($s, '/promo/page.php?promo=' . ($code =~ s/ /%20/gr));
        $env = env_of($r);
        ok(!ModTest::set_cookie($r, 'promo_code') && !$env->{PROMO_CODE}, "$s: $code is not applied");
        is($env->{PROMO_CODE_ERROR}, $refused{$code}, "$s: $code refused as $refused{$code}");
        like($env->{PROMO_CODE_MESSAGE} // '', qr/\w/, "$s: with a message for the visitor");
        like($t->error_log($s, $mark), qr/promo code .* refused: $refused{$code}/, "$s: and a log line");
    }

    # The paywall's checkout takes the coupon of the code the visitor holds.
    my $csrf = ModTest::json($t->get($s, '/env.php', {'X-User' => "buyer-$s"}))->{PAYWALL_CSRF_TOKEN};
    $r = $t->post($s, '/subscribe/checkout', {plan => 'digital', csrf => $csrf}, {'X-User' => "buyer-$s", Cookie => $cookie});
    is($r->{status}, 303, "$s: checkout with the code") or diag($r->{content});
    my $p = $stripe->last_request->{params};
    is($p->{discounts}[0]{coupon}, 'coupon_c30', "$s: Stripe gets the promotion's coupon");
    is($p->{metadata}{promo_code}, 'CONGRESS30', "$s: and the code in the session's metadata");
}

# Redemption limit: the first visitor gets it, the next one is told it is exhausted (counts shared via PostgreSQL).
my $r = $t->get('apache', '/promo/page.php?promo=ONLYONE');
my $held = ModTest::set_cookie($r, 'promo_code');
ok($held, 'ONLYONE applied once');
# The same visitor following the link again (a reload, a prefetch) is not a second redemption.
for my $s (qw(apache nginx)) {
    $r = $t->get($s, '/promo/page.php?promo=ONLYONE', {Cookie => "promo_code=$held->{value}"});
    is(env_of($r)->{PROMO_CODE}, 'ONLYONE', "$s: the holder following the link again keeps the code");
}
sleep 1.3;
$t->get($_, '/index.html') for qw(apache nginx);    # the refresh adds the redemption to PostgreSQL
sleep 1.3;
for my $s (qw(apache nginx)) {
    $r = $t->get($s, '/promo/page.php?promo=ONLYONE');
    is(env_of($r)->{PROMO_CODE_ERROR}, 'exhausted', "$s: ONLYONE is exhausted for anyone else after one redemption");
}

# A click on a banner with a discount applies it.
$t->psql("UPDATE promo.promotions SET body = jsonb_set(body, '{paths}', '[\"/promo/\"]') WHERE id = $id{pct}");
sleep 1.3;
for my $s (qw(apache nginx)) {
    $r = $t->get($s, "/promo/click?id=$id{pct}");
    is($r->{status}, 302, "$s: banner click");
    ok(ModTest::set_cookie($r, 'promo_code'), "$s: the click applies the banner's discount");
}

done_testing();
