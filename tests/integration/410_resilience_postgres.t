#!/usr/bin/perl
# Resilience: PostgreSQL stopped for 30 s under wrk load, memcached up, on both servers at once.
#   - gated pages (mod_paywall): a subscriber keeps reading (the entitlement memcached and the processes hold);
#     visitors nobody can tell about follow PaywallFailMode (closed: 403, open: 200); no 5xx;
#   - mod_booking's API (availability, bookings): 503 with Retry-After, and only that;
#   - a Stripe webhook: 5xx (Stripe retries), and the retry after the restart is applied;
#   - after the restart nothing is lost: a booking works, the notifications due meanwhile are delivered (the outbox
#     drains), each exactly once (delivery ids unique);
#   - each server process logs the outage once (PostgreSQL unreachable, the fail mode, notifications paused), not
#     once per request.
# RESILIENCE_LONG=1: two outages of 30 s in a row (each one logged once, each one recovered).

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use JSON::PP;
use POSIX qw(ceil);
use Time::HiRes qw(sleep time);
use ModTest;
use Load;
use FakeGateway;
use StripeSign;
use PaywallConf qw(paywall_server paywall_location merge_conf);
use BookingConf qw(booking_conf api sql_value ensure_schema tokyo_time);

plan skip_all => Load::unavailable_reason() if Load::unavailable_reason();

my $LONG = $ENV{RESILIENCE_LONG} ? 1 : 0;
my $OUTAGE = 30;
my $ROUNDS = $LONG ? 2 : 1;
my $NOTIFY_SECRET = 'notify-secret-0123456789abcdef';    # what BookingConf::setup_files writes
my $WHSEC = 'whsec_test_0123456789abcdefghij';
my $TOKYO = 9 * 3600;
my $JSON = JSON::PP->new->utf8->canonical;
my @SERVERS = qw(apache nginx);

my $gw = FakeGateway->start(secret => $NOTIFY_SECRET);
my $t = ModTest->new(memcached => 2, postgres => 1, php => 1);
BookingConf::setup_files($t);
$t->write_file('webhook.secret', "$WHSEC\n");
$t->start_servers(
    merge_conf(
        [paywall_server('PaywallPostgres "@PG@"', 'PaywallMemcached "@MC@"', 'PaywallUser header:X-User',
            'PaywallCacheTTL 1s', 'PaywallCacheMaxStale 1h', 'PaywallPlan digital price_digital',
            'PaywallStripeWebhookSecretFile @TMP@/webhook.secret')],
        [paywall_location('/articles/', ['Paywall On', 'PaywallRequire digital', 'PaywallDeny status 403'])],
        [paywall_location('/premium/', ['Paywall On', 'PaywallRequire digital', 'PaywallDeny status 403',
            'PaywallFailMode open'])],
        [paywall_location('/stripe/webhook', [], handler => 'paywall-stripe-webhook')],
        [booking_conf(notify_url => $gw->url, server => ['BookingReminder 0'])]),
    nginx_php => PaywallConf::paywall_php_params());

# ------------------------------------------------------------------------------------------------------ data

sub gated { my ($s, $path, $user) = @_; return $t->get($s, $path, {$user ? ('X-User' => $user) : ()})->{status} }

gated('apache', '/articles/story.html', 'nobody');    # creates the paywall's schema
ensure_schema($t);
$t->psql("INSERT INTO paywall.customers (customer_id, user_id, livemode) VALUES ('cus_1', 'u-sub', false);"
    . "INSERT INTO paywall.subscriptions (subscription_id, customer_id, user_id, plan, price_id, status,"
    . " current_period_end, livemode, last_event_created, last_event_id) VALUES ('sub_1', 'cus_1', 'u-sub', 'digital',"
    . " 'price_digital', 'active', now() + interval '30 days', false, now(), 'evt_seed')");

# A spa open around the clock in Tokyo (every slot bookable whatever the hour), two therapists, one 30-minute service.
my ($SERVICE, $staff_ids) = BookingConf::tokyo_spa($t, id => 'kyoto-spa', staff => ['Aiko', 'Haru'], login => 'ops');
my %STAFF = %$staff_ids;


sub tokyo_date { my @t = gmtime($_[0] + $TOKYO); return sprintf '%04d-%02d-%02d', $t[5] + 1900, $t[4] + 1, $t[3] }

my $DAY2 = int(time) + 2 * 86400 - ((int(time) + $TOKYO) % 86400);    # Tokyo's midnight two days from now
my $next_slot = 0;
my $n_customer = 0;

sub booking_body {
    my ($start, $staff) = @_;
    $n_customer++;
    return {partner => 'kyoto-spa', service => 0 + $SERVICE, staff => 0 + $STAFF{$staff}, start => $start,
        customer => {name => "Customer $n_customer", email => "c$n_customer\@example.com", phone => '+81 90-1234-5678'}};
}

# POST /bookings on a slot nobody took yet: (status, data, response)
sub book {
    my ($s) = @_;
    my $k = $next_slot++;
    return api($t, $s, 'POST', '/bookings',
        booking_body(tokyo_time($DAY2 + 1800 * ($k >> 1)), $k % 2 ? 'Haru' : 'Aiko'));
}

my $AVAILABILITY = "/booking/api/partners/kyoto-spa/availability?service=$SERVICE&from=" . tokyo_date($DAY2);


# Stripe webhooks, signed by Stripe's own package when node has it.
my $STRIPE = StripeSign::available();
diag('no Stripe webhook checks: ' . StripeSign::unavailable_reason()) unless $STRIPE;

sub send_event {
    my ($s, $json) = @_;
    return $t->request('POST', $s, '/stripe/webhook', {headers => {'Content-Type' => 'application/json',
        'Stripe-Signature' => StripeSign::header($json, $WHSEC, int time)}, content => $json});
}

# Each server process logs an incident once: pid => lines of $re since $mark.
sub once_per_process {
    my ($s, $mark, $re, $label) = @_;
    my $log = $t->error_log($s, $mark);
    my %n = Load::per_process($log, $re);
    my $total = 0;
    $total += $_ for values %n;
    cmp_ok($total, '>=', 1, "$s: $label is logged");
    is((grep { $_ > 1 } values %n), 0, "$s: $label once per server process, not per request ($total lines, "
        . scalar(keys %n) . ' processes)') or diag(join "\n", grep { $_ =~ $re } split /\n/, $log);
}

my %all_ids;    # booking id => 1, every booking whose confirmation must reach the gateway once

for my $round (1 .. $ROUNDS) {
    my $R = $ROUNDS > 1 ? "round $round: " : '';

    # ------------------------------------------------------------------------------------------ before
    # The subscriber's entitlement freshly in memcached (60 s) and in the processes: it outlives the outage.
    $t->mc_delete($_, 'paywall.ent.u-sub') for $t->mc_find('paywall.ent.u-sub');
    for my $s (@SERVERS) {
        is(gated($s, $_, 'u-sub'), 200, "$R$s: the subscriber reads $_") for qw(/articles/story.html /premium/story.html);
        is(gated($s, '/premium/story.html', "u-none-$round"), 403, "${R}$s: a visitor without subscription is refused");
        my ($st) = api($t, $s, 'GET', substr($AVAILABILITY, length '/booking/api'));
        is($st, 200, "$R$s: availability answers");
    }

    # Notifications that will be due during the outage: the gateway fails now, so that no message can reach it
    # between its answer and PostgreSQL recording it (that window would send it twice: docs/booking.md).
    $gw->mode('fail', status => 503);
    my @before;
    for my $s (@SERVERS, @SERVERS) {
        my ($st, $view) = book($s);
        is($st, 201, "$R$s: booked before the outage") or diag(explain($view));
        push @before, $view->{id} if $st == 201;
    }
    my $in = join(',', @before) || 0;
    ok(ModTest::polled(10, sub { sql_value($t, "SELECT count(*) FROM booking.outbox WHERE booking_id IN ($in) "
        . "AND attempts >= 1 AND status = 'pending'") == @before }), "${R}their notifications were tried and wait");
    $all_ids{$_} = 1 for @before;

    # ------------------------------------------------------------------------------------------ load
    my %mark = map { $_ => $t->log_mark($_) } @SERVERS;
    my $span = 3 + $OUTAGE + 12;
    my (@span_loads, @outage_loads);
    for my $s (@SERVERS) {
        push @span_loads, Load->start(url => $t->url($s, '/'), name => "$s subscriber", dir => $t->prefix,
            seconds => $span, connections => 2, delay_ms => 10, headers => {'X-User' => 'u-sub'},
            requests => [{path => '/articles/story.html'}, {path => '/premium/story.html'}]);
        push @span_loads, Load->start(url => $t->url($s, '/'), name => "$s availability", dir => $t->prefix,
            seconds => $span, connections => 2, delay_ms => 20, require_header => [503, 'Retry-After'],
            requests => [{path => $AVAILABILITY}]);
    }
    sleep 3;
    my $down_at = time;
    $t->pg_stop;
    note(sprintf '%sPostgreSQL stopped (%.1f s to stop)', $R, time - $down_at);
    sleep 1;
    $gw->mode('ok');

    for my $s (@SERVERS) {
        push @outage_loads, Load->start(url => $t->url($s, '/'), name => "$s unknown visitors, fail mode open",
            dir => $t->prefix, seconds => 8, connections => 2, delay_ms => 10, unique => ['X-User', "new-$round-$s-"],
            requests => [{path => '/premium/story.html'}]);
        push @outage_loads, Load->start(url => $t->url($s, '/'), name => "$s unknown visitors, fail mode closed",
            dir => $t->prefix, seconds => 8, connections => 2, delay_ms => 10, unique => ['X-User', "old-$round-$s-"],
            requests => [{path => '/articles/story.html'}]);
        push @outage_loads, Load->start(url => $t->url($s, '/'), name => "$s bookings", dir => $t->prefix,
            seconds => 8, connections => 2, delay_ms => 20, require_header => [503, 'Retry-After'],
            requests => [{method => 'POST', path => '/booking/api/bookings',
                headers => {'Content-Type' => 'application/json'},
                body => $JSON->encode(booking_body(tokyo_time($DAY2 + 20 * 86400 + 3600 * $round), 'Aiko'))}]);
    }
    for my $load (@outage_loads) {
        my $r = $load->wait;
        note($R . Load::summary($r));
        ok(!$r->{failed} && $r->{requests} > 20, "$R$r->{name}: the load ran") or diag(Load::summary($r));
        my $want = $r->{name} =~ /closed/ ? 403 : $r->{name} =~ /bookings/ ? 503 : 200;
        is($r->{status}{$want} // 0, $r->{requests}, "$R$r->{name}: every answer $want") or diag(Load::summary($r));
        is($r->{socket_errors}, 0, "$R$r->{name}: no socket error") or diag(Load::summary($r));
        is($r->{missing_header}, 0, "$R$r->{name}: each 503 with Retry-After") if $want == 503;
    }

    # The same, one request at a time, in detail.
    my $event = $STRIPE && StripeSign::event(type => 'customer.subscription.created',
        object => StripeSign::subscription(id => "sub_late$round", customer => "cus_late$round",
            price => 'price_digital', user_id => "u-late-$round"));
    for my $s (@SERVERS) {
        my ($st, $data, $res) = book($s);
        is($st, 503, "$R$s: during the outage a booking gets 503");
        is($res->{headers}{'retry-after'}, 5, "$R$s: with Retry-After: 5");
        is(ref $data eq 'HASH' && $data->{code}, 'unavailable', "$R$s: and the code unavailable");
        ($st, $data, $res) = api($t, $s, 'GET', substr($AVAILABILITY, length '/booking/api'));
        is("$st " . ($res->{headers}{'retry-after'} // '-'), '503 5', "$R$s: availability: 503, Retry-After: 5");
        is(gated($s, '/articles/story.html', 'u-sub'), 200, "$R$s: the subscriber still reads (entitlement cached)");
        is(gated($s, '/articles/story.html', "u-nobody-$round-$s"), 403, "$R$s: nobody can tell: fail mode closed");
        is(gated($s, '/premium/story.html', "u-nobody-$round-$s"), 200, "$R$s: nobody can tell: fail mode open");
        is(gated($s, '/premium/story.html', undef), 403, "$R$s: anonymous visitors stay out in either mode");
      SKIP: {
            skip 'no Stripe signing', 1 unless $STRIPE;
            my $r = send_event($s, $event);
            cmp_ok($r->{status}, '>=', 500, "$R$s: a webhook gets a 5xx ($r->{status}): Stripe will retry");
        }
    }
    my $outage_for = time - $down_at;
    sleep $OUTAGE - $outage_for if $outage_for < $OUTAGE;

    # ------------------------------------------------------------------------------------------ after
    $t->pg_start;
    my $up_at = time;
    note(sprintf '%sPostgreSQL started again after %.1f s', $R, $up_at - $down_at);
    my $back = ModTest::polled(15, sub { (grep { (api($t, $_, 'GET', substr($AVAILABILITY, length '/booking/api')))[0] == 200 }
        @SERVERS) == 2 });
    ok($back, sprintf('%savailability answers again on both servers %.1f s after the restart', $R, time - $up_at));

  SKIP: {
        skip 'no Stripe signing', 2 unless $STRIPE;
        my $r = send_event('nginx', $event);
        is($r->{status}, 200, "${R}Stripe's retry after the outage is applied") or diag($r->{content});
        ok(ModTest::polled(5, sub { (grep { gated($_, '/articles/story.html', "u-late-$round") == 200 } @SERVERS) == 2 }),
            "${R}the retried event opens the gate on both servers");
    }
    my @after;
    for my $s (@SERVERS) {
        my ($st, $view) = book($s);
        is($st, 201, "$R$s: a booking made after the restart works") or diag(explain($view));
        push @after, $view->{id} if $st == 201;
        is(gated($s, '/premium/story.html', "u-after-$round-$s"), 403, "$R$s: the open fail mode no longer applies");
    }
    $all_ids{$_} = 1 for @after;

    # the outbox drains: every confirmation delivered, each once
    $in = join(',', keys %all_ids) || 0;
    my $want = keys %all_ids;
    ok(ModTest::polled(20, sub { sql_value($t, "SELECT count(*) FROM booking.outbox WHERE booking_id IN ($in) "
        . "AND kind = 'booking.confirmed' AND status = 'delivered'") == $want }),
        "${R}the outbox drains: the $want confirmations are delivered");
    is(sql_value($t, "SELECT count(*) FROM booking.outbox WHERE status = 'pending' AND next_attempt_at <= now()"), 0,
        "${R}nothing due is left in the outbox");
    my %rows = map { $_ => 1 } split /\n/, $t->psql("SELECT id FROM booking.outbox WHERE booking_id IN ($in) "
        . "AND kind = 'booking.confirmed'");
    my %got;
    $got{$_->{delivery}}++ for grep { $_->{status} >= 200 && $_->{status} < 300 } $gw->requests;
    is_deeply([sort { $a <=> $b } grep { $rows{$_} } keys %got], [sort { $a <=> $b } keys %rows],
        "${R}the gateway got every one of them");
    is((grep { $_ > 1 } values %got), 0, "${R}no notification twice (delivery ids unique)")
        or diag(explain(\%got));
    is((grep { !$_->{sig_ok} } $gw->requests), 0, "${R}every notification signed");

    # the loads that spanned the outage
    for my $load (@span_loads) {
        my $r = $load->wait;
        note($R . Load::summary($r));
        ok(!$r->{failed} && $r->{requests} > 50, "$R$r->{name}: the load ran") or diag(Load::summary($r));
        is($r->{socket_errors}, 0, "$R$r->{name}: no socket error") or diag(Load::summary($r));
        if ($r->{name} =~ /subscriber/) {
            is($r->{status}{200} // 0, $r->{requests}, "$R$r->{name}: every page 200 before, during and after")
                or diag(Load::summary($r));
        } else {
            my $other = $r->{requests} - ($r->{status}{200} // 0) - ($r->{status}{503} // 0);
            is($other, 0, "$R$r->{name}: only 200 and 503") or diag(Load::summary($r));
            ok(($r->{status}{200} // 0) > 0 && ($r->{status}{503} // 0) > 0, "$R$r->{name}: both seen")
                or diag(Load::summary($r));
            is($r->{missing_header}, 0, "$R$r->{name}: each 503 with Retry-After");
        }
    }

    # once per incident and process
    for my $s (@SERVERS) {
        once_per_process($s, $mark{$s}, qr/^(?!.*(?:booking|webhook)).*PostgreSQL unreachable \(/, "${R}paywall: PostgreSQL unreachable");
        once_per_process($s, $mark{$s}, qr/PaywallFailMode \w+ applies/, "${R}paywall: the fail mode applying");
        once_per_process($s, $mark{$s}, qr/notifications paused/, "${R}booking: notifications paused");
        like($t->error_log($s, $mark{$s}), qr/PostgreSQL answers again/, "$R$s: paywall: the end is logged");
        like($t->error_log($s, $mark{$s}), qr/notifications resumed/, "$R$s: booking: the end is logged");
        unlike($t->error_log($s, $mark{$s}), qr/\[(?:crit|alert|emerg)\]|segfault|exit signal/,
            "$R$s: no crash or critical error");
    }
}

done_testing();
