#!/usr/bin/perl
# Resilience: the Stripe API slow (10 s), refusing connections or failing (503), under wrk load of checkouts and
# billing-portal calls, on both servers: each answers a clear error page (504 when Stripe does not answer, 502 when
# it fails) within PaywallStripeTimeout (2 s here; one retry after 200 ms, so at most about 4.2 s), and meanwhile
# the server answers its other requests (static pages, a subscriber's gated pages) in well under a second.
# RESILIENCE_LONG=1: 30 s of slow Stripe instead of 10.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Time::HiRes qw(sleep time);
use ModTest;
use Load;
use FakeStripe;
use PaywallConf qw(paywall_server paywall_location merge_conf);

plan skip_all => Load::unavailable_reason() if Load::unavailable_reason();

my $LONG = $ENV{RESILIENCE_LONG} ? 1 : 0;
my $SLOW_FOR = $LONG ? 30 : 10;
# Slow checkouts at once. On Apache each one holds a worker thread until Stripe's timeout: ModTest's Apache has 2
# processes of 16 threads, and a process whose threads are all taken stalls the keep-alive connections it holds,
# so this stays well below 16 (24 at once gave plain pages a p99 of 600 ms there); nginx waits in its thread pool.
my $CHECKOUTS = 12;
my $TIMEOUT = 2;                    # PaywallStripeTimeout
my $WORST = 2 * $TIMEOUT + 0.2;     # two attempts and the pause between them
my $KEY = 'sk_test_resilience123';

my $t = ModTest->new(memcached => 1, postgres => 1, php => 1);
mkdir $t->prefix . '/stripe';
my $stripe = FakeStripe->start(dir => $t->prefix . '/stripe', key => $KEY, prices => [qw(price_digital)]);
$t->write_file('paywall.secret', "csrf-secret-0123456789abcdef\n");
$t->write_file('stripe.key', "$KEY\n");
$t->start_servers(
    merge_conf(
        [paywall_server('PaywallPostgres "@PG@"', 'PaywallMemcached "@MC@"', 'PaywallUser header:X-User',
            'PaywallEmail header:X-Email', 'PaywallSecretFile @TMP@/paywall.secret',
            'PaywallStripeKeyFile @TMP@/stripe.key', 'PaywallStripeAPI ' . $stripe->url,
            "PaywallStripeTimeout ${TIMEOUT}s", 'PaywallPlan digital price_digital', 'PaywallReturnURL /account.html')],
        [paywall_location('/articles/', ['Paywall On', 'PaywallRequire digital', 'PaywallDeny status 403'])],
        [paywall_location('/subscribe/checkout', [], handler => 'paywall-checkout')],
        [paywall_location('/subscribe/portal', [], handler => 'paywall-portal')]),
    nginx_php => PaywallConf::paywall_php_params());

$t->get('apache', '/articles/story.html');    # creates the schema
$t->psql("INSERT INTO paywall.customers (customer_id, user_id, livemode) VALUES ('cus_buyer', 'buyer', false),"
    . " ('cus_reader', 'reader', false);"
    . "INSERT INTO paywall.subscriptions (subscription_id, customer_id, user_id, plan, price_id, status,"
    . " current_period_end, livemode, last_event_created, last_event_id) VALUES ('sub_reader', 'cus_reader', 'reader',"
    . " 'digital', 'price_digital', 'active', now() + interval '30 days', false, now(), 'evt_seed')");

my %token = map {
    my $s = $_;
    $s => ModTest::json($t->get($s, '/env.php', {'X-User' => 'buyer'}))->{PAYWALL_CSRF_TOKEN}
} qw(apache nginx);

sub stripe_calls {
    my ($s) = @_;
    my $headers = {'X-User' => 'buyer', 'X-Email' => 'reader@example.org',
        'Content-Type' => 'application/x-www-form-urlencoded'};
    return ({method => 'POST', path => '/subscribe/checkout', headers => $headers,
             body => $t->ua->www_form_urlencode({plan => 'digital', csrf => $token{$s}})},
            {method => 'POST', path => '/subscribe/portal', headers => $headers, body => $t->ua->www_form_urlencode({csrf => $token{$s}})});
}

# One call, timed: (status, seconds, body)
sub timed {
    my ($s, $call) = @_;
    my $t0 = time;
    my $r = $t->request($call->{method}, $s, $call->{path}, {headers => $call->{headers}, content => $call->{body}});
    return ($r->{status}, time - $t0, $r->{content});
}

# Plain requests one at a time while something else runs: the slowest of them, in seconds
sub probe_while {
    my ($s, $load) = @_;
    my ($slowest, $n, $bad) = (0, 0, 0);
    while ($load->running) {
        for my $p (['/index.html', {}], ['/articles/story.html', {'X-User' => 'reader'}]) {
            my $t0 = time;
            my $r = $t->get($s, $p->[0], $p->[1]);
            my $took = time - $t0;
            $slowest = $took if $took > $slowest;
            $bad++ unless $r->{status} == 200;
            $n++;
        }
        sleep 0.1;
    }
    return ($slowest, $n, $bad);
}

for my $s (qw(apache nginx)) {
    ok($token{$s}, "$s: a CSRF token for the buyer");
    my @calls = stripe_calls($s);
    is((timed($s, $calls[0]))[0], 303, "$s: with Stripe up, the checkout answers 303");
    is((timed($s, $calls[1]))[0], 303, "$s: and so does the portal");
    my $mark = $t->log_mark($s);

    # ---------------------------------------------------------------------------- slow: 10 s per answer
    $stripe->mode('slow', seconds => 10);
    my $slow = Load->start(url => $t->url($s, '/'), name => "$s checkouts, Stripe slow", dir => $t->prefix,
        seconds => $SLOW_FOR, connections => $CHECKOUTS, timeout => 10, requests => \@calls);
    my $plain = Load->start(url => $t->url($s, '/'), name => "$s plain pages meanwhile", dir => $t->prefix,
        seconds => $SLOW_FOR, connections => 2, delay_ms => 10, timeout => 5,
        requests => [{path => '/index.html'}, {path => '/articles/story.html', headers => {'X-User' => 'reader'}}]);
    sleep 1;
    my ($status, $took, $body) = timed($s, $calls[0]);
    is($status, 504, "$s: Stripe slow: the checkout answers 504");
    ok($took >= $TIMEOUT && $took < $WORST + 1, sprintf("$s: after the timeout and its retry (%.2f s)", $took));
    like($body, qr/Nothing was charged/i, "$s: with a clear message");
    my ($slowest, $n, $bad) = probe_while($s, $plain);
    ok($n >= 5 && $bad == 0, "$s: $n plain requests one at a time during the slow checkouts, all answered");
    cmp_ok($slowest, '<', 1, sprintf("$s: the slowest of them took %.3f s, well under a second", $slowest));
    for my $r ($slow->wait, $plain->wait) {
        note(Load::summary($r));
        ok(!$r->{failed}, "$r->{name}: wrk reported") or diag(Load::summary($r));
        is($r->{socket_errors}, 0, "$r->{name}: no socket error") or diag(Load::summary($r));
    }
    my $r = $slow->wait;
    cmp_ok($r->{requests}, '>=', $CHECKOUTS, "$s: $r->{requests} checkouts and portal calls waited on Stripe");
    is($r->{status}{504} // 0, $r->{requests}, "$s: every one answered 504") or diag(Load::summary($r));
    cmp_ok($r->{latency_ms}{max}, '<', 1000 * ($WORST + 1), sprintf("$s: none took longer than the timeout allows "
        . '(max %.2f s, limit %.1f s)', $r->{latency_ms}{max} / 1000, $WORST + 1));
    $r = $plain->wait;
    is($r->{status}{200} // 0, $r->{requests}, "$s: every plain page 200 meanwhile") or diag(Load::summary($r));
    cmp_ok($r->{latency_ms}{p99}, '<', 250, sprintf("$s: plain pages p99 %.1f ms under load", $r->{latency_ms}{p99}));
    cmp_ok($r->{latency_ms}{max}, '<', 1000, sprintf("$s: plain pages max %.1f ms, under a second",
        $r->{latency_ms}{max}));

    # the checkouts wrk left in flight hold their workers until the timeout: the next phase starts without them
    sleep $WORST + 0.5;

    # ---------------------------------------------------------------------------- refusing, failing
    for my $case (['refuse', {}, 504, 'refusing connections'], ['fail', {status => 503}, 502, 'failing with 503']) {
        my ($mode, $opt, $want, $what) = @$case;
        $stripe->mode($mode, %$opt);
        my $load = Load->start(url => $t->url($s, '/'), name => "$s checkouts, Stripe $what", dir => $t->prefix,
            seconds => 3, connections => 4, timeout => 10, requests => \@calls);
        my $plain = Load->start(url => $t->url($s, '/'), name => "$s plain pages meanwhile ($mode)",
            dir => $t->prefix, seconds => 3, connections => 2, delay_ms => 10, requests => [{path => '/index.html'}]);
        ($status, $took, $body) = timed($s, $calls[0]);
        is($status, $want, "$s: Stripe $what: the checkout answers $want");
        cmp_ok($took, '<', 1, sprintf("$s: at once (%.2f s)", $took));
        like($body, qr/Nothing was charged/i, "$s: with a clear message");
        for my $r ($load->wait, $plain->wait) {
            note(Load::summary($r));
            is($r->{socket_errors}, 0, "$r->{name}: no socket error") or diag(Load::summary($r));
        }
        $r = $load->wait;
        ok($r->{requests} > 10 && ($r->{status}{$want} // 0) == $r->{requests}, "$r->{name}: every one $want")
            or diag(Load::summary($r));
        cmp_ok($r->{latency_ms}{max}, '<', 1000 * ($WORST + 1), "$r->{name}: none waited past the timeout");
        $r = $plain->wait;
        ok(($r->{status}{200} // 0) == $r->{requests} && $r->{latency_ms}{max} < 1000,
            "$r->{name}: every plain page 200, the slowest in " . sprintf('%.1f ms', $r->{latency_ms}{max}))
            or diag(Load::summary($r));
    }

    # ---------------------------------------------------------------------------- back
    $stripe->mode('ok');
    is((timed($s, $calls[0]))[0], 303, "$s: Stripe back: the checkout answers 303 again");
    my $log = $t->error_log($s, $mark);
    like($log, qr/payment service/, "$s: the failures are logged");
    unlike($log, qr/\Q$KEY\E/, "$s: the secret key never reaches the log");
    unlike($log, qr/\[(?:crit|alert|emerg)\]|segfault|exit signal/, "$s: no crash or critical error");
}

done_testing();
