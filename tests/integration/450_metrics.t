#!/usr/bin/perl
# The metrics handler (SetHandler webmodules-metrics / webmodules_metrics;) on both servers, all four modules loaded:
# only behind the server's own authentication (401 without a login, 403 and a log line where no authentication
# checked the user, even with a Basic header that $remote_user parsed), GET and HEAD only; valid Prometheus text
# (a TYPE before every series, no series twice, server="..." on each, histograms cumulative); the counters of
# sessions, paywall decisions and entitlement lookups, banners, bookings, API answers and notifications move by
# exactly what known requests make them move, on the server that served them only; the outbox gauges follow the
# outbox; an nginx reload keeps the counts; each module alone serves the page with its own metrics.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use File::Temp qw(tempdir);
use MIME::Base64 qw(encode_base64);
use Time::HiRes qw(sleep time);
use ModTest;
use FakeGateway;
use PaywallConf qw(paywall_server paywall_location merge_conf);
use PromoConf qw(promo_conf promotion);
use BookingConf qw(booking_conf api sql_value ensure_schema tokyo_time);
use SessionSharedConf qw(session_conf);

my @MODULES = qw(session_shared paywall promo booking);
my $OPS = 'Basic ' . encode_base64('ops:ops-pass', '');    # a login of partners.htpasswd (BookingConf)
my $TOKYO = 9 * 3600;

my $gw = FakeGateway->start(secret => 'notify-secret-0123456789abcdef');
my $t = ModTest->new(memcached => 1, postgres => 1, php => 1);
plan skip_all => 'the four modules are not built for both servers' if grep { !$t->has_module($_) } @MODULES;
BookingConf::setup_files($t);
PromoConf::setup_files($t);

# /ops/metrics behind Basic auth; /public/metrics behind nothing (where nginx's $remote_user parses a Basic header
# nobody checks); nginx's /lan/metrics lets 127.0.0.1 in without a login ("satisfy any").
my $apache_auth = "AuthType Basic\nAuthName ops\nAuthUserFile \@TMP\@/partners.htpasswd\nRequire valid-user";
my $nginx_auth = "auth_basic ops;\nauth_basic_user_file \@TMP\@/partners.htpasswd;";
my @metrics_locations = (
    [paywall_location('/ops/metrics', [], handler => 'webmodules-metrics', apache_extra => $apache_auth,
        nginx_extra => $nginx_auth)],
    [paywall_location('/public/metrics', [], handler => 'webmodules-metrics',
        nginx_extra => 'set $probe $remote_user;')],
    [nginx => "location /lan/metrics {\n    webmodules_metrics;\n    satisfy any;\n    allow 127.0.0.1;\n"
        . "    deny all;\n$nginx_auth\n}"],
);

my %conf = merge_conf([session_conf()],
    [promo_conf(more => [
        [paywall_server('PaywallPostgres "@PG@"', 'PaywallMemcached "@MC@"', 'PaywallUser header:X-User',
            'PaywallPlan digital price_digital')],
        [paywall_location('/articles/', ['Paywall On', 'PaywallRequire digital', 'PaywallDeny status 403'])]])],
    [booking_conf(notify_url => $gw->url)],
    @metrics_locations);
$t->start_servers(%conf);

# ------------------------------------------------------------------------------------------------------- helpers

# Prometheus' text format, version 0.0.4, checked while read: {series => {key => value}, types => {family => type},
# servers => {server label values}, errors => [...]}. A key is the name and the labels but server, sorted:
# 'webmodules_paywall_decisions_total{access=granted}'.
sub parse_metrics {
    my ($text) = @_;
    my (%series, %types, %help, %servers, @errors, %hist);
    my $n = 0;
    for my $line (split /\n/, $text) {
        $n++;
        if ($line =~ /^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)\z/) {
            push @errors, "line $n: HELP of $1 twice" if $help{$1}++;
            next;
        }
        if ($line =~ /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)\z/) {
            push @errors, "line $n: TYPE of $1 twice" if $types{$1};
            $types{$1} = $2;
            next;
        }
        if ($line =~ /^#/ || $line eq '') {
            push @errors, "line $n: unexpected '$line'";
            next;
        }
        my ($name, $labels, $value) = $line =~ /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)\z/
            or do { push @errors, "line $n: not a series: '$line'"; next };
        push @errors, "line $n: value '$value'" unless $value =~ /^(?:-?\d+(?:\.\d+)?(?:e[+-]?\d+)?|[+-]Inf|NaN)\z/;
        my %l;
        my $rest = $labels // '';
        while (length $rest) {
            $rest =~ s/^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(?:,|\z)//
                or do { push @errors, "line $n: labels '$labels'"; last };
            push @errors, "line $n: label $1 twice" if exists $l{$1};
            $l{$1} = $2;
        }
        my $family = $name;
        $family =~ s/_(?:bucket|sum|count)\z// if $name =~ /_(?:bucket|sum|count)\z/
            && ($types{$name =~ s/_(?:bucket|sum|count)\z//r} // '') eq 'histogram';
        push @errors, "line $n: $name has no TYPE before it" unless $types{$family};
        push @errors, "line $n: counter $name does not end in _total"
            if ($types{$family} // '') eq 'counter' && $name !~ /_total\z/;
        $servers{delete $l{server} // '(none)'}++;
        my $key = $name . '{' . join(',', map { "$_=$l{$_}" } sort keys %l) . '}';
        push @errors, "line $n: $key twice" if exists $series{$key};
        $series{$key} = $value;
        if ($name =~ /_bucket\z/ && ($types{$family} // '') eq 'histogram') {
            my $le = delete $l{le};
            push @{$hist{$family . '{' . join(',', map { "$_=$l{$_}" } sort keys %l) . '}'}}, [$le, $value];
        }
    }
    # cumulative buckets, le ascending up to +Inf, which is _count
    for my $h (sort keys %hist) {
        my ($family, $labels) = $h =~ /^([^{]*)(\{.*\})\z/;
        my @b = @{$hist{$h}};
        my $ok = $b[-1][0] eq '+Inf' && $b[-1][1] == ($series{"${family}_count$labels"} // -1);
        for my $i (1 .. $#b) {
            $ok &&= ($b[$i][0] eq '+Inf' || $b[$i][0] > $b[$i - 1][0]) && $b[$i][1] >= $b[$i - 1][1];
        }
        push @errors, "histogram $h is not cumulative up to +Inf = _count" unless $ok;
    }
    return {series => \%series, types => \%types, servers => \%servers, errors => \@errors};
}

sub scrape {
    my ($s) = @_;
    my $r = $t->get($s, '/ops/metrics', {Authorization => $OPS});
    die "$s: /ops/metrics answered $r->{status}\n" unless $r->{status} == 200;
    return parse_metrics($r->{content});
}

# the value of a series ('webmodules_paywall_decisions_total', access => 'granted'), undef when absent
sub value {
    my ($m, $name, %l) = @_;
    return $m->{series}{$name . '{' . join(',', map { "$_=$l{$_}" } sort keys %l) . '}'};
}

sub delta {
    my ($before, $after, @series) = @_;
    return (value($after, @series) // 0) - (value($before, @series) // 0);
}


# ------------------------------------------------------------------------------------- set-up of the four modules

ensure_schema($t);
$t->get('apache', '/articles/story.html', {'X-User' => 'nobody'});    # creates the paywall schema
$t->psql("INSERT INTO paywall.customers (customer_id, user_id, livemode) VALUES ('cus_1', 'u-sub', false);"
    . "INSERT INTO paywall.subscriptions (subscription_id, customer_id, user_id, plan, price_id, status,"
    . " current_period_end, livemode, last_event_created, last_event_id) VALUES ('sub_1', 'cus_1', 'u-sub', 'digital',"
    . " 'price_digital', 'active', now() + interval '30 days', false, now(), 'evt_1')");

# A spa open around the clock (every test slot bookable at any hour), one therapist, one 30-minute service.
my ($SERVICE, $staff_ids) = BookingConf::tokyo_spa($t, id => 'metrics-spa', name => 'Metrics Spa');
my ($STAFF) = values %$staff_ids;


my $n_customer = 0;
sub book {
    my ($s, $start) = @_;
    $n_customer++;
    my ($status) = api($t, $s, 'POST', '/bookings', {partner => 'metrics-spa', service => 0 + $SERVICE,
        staff => 0 + $STAFF, start => $start, customer => {name => "Customer $n_customer",
        email => "c$n_customer\@example.com", phone => '+81 90-1234-5678'}});
    return $status;
}

# One promotion on /promo/ only, live on both servers (PromoRefresh 1) before anything is counted.
my ($st_promo) = PromoConf::api($t, 'apache', 'POST', 'promotions', promotion(paths => ['/promo/']));
is($st_promo, 201, 'a promotion for /promo/');
sub has_banner { my ($s) = @_; return $t->get($s, '/promo/page.html')->{content} =~ /<aside[^>]*class="wm-promo/ }
for my $s (qw(apache nginx)) {
    ok(ModTest::polled(10, sub { has_banner($s) }), "$s: the banner shows");
}

# A session PHP wrote, through Apache.
my $sid = ModTest::cookie_from($t->get('apache', '/session.php?set=user_id&value=42'), 'PHPSESSID');
ok($sid, 'PHP started a session');

# ------------------------------------------------------------------------------------------------ access control

for my $s (qw(apache nginx)) {
    is($t->get($s, '/ops/metrics')->{status}, 401, "$s: no login: 401");
    is($t->get($s, '/ops/metrics', {Authorization => 'Basic ' . encode_base64('ops:wrong', '')})->{status}, 401,
        "$s: a wrong password: 401");
    my $mark = $t->log_mark($s);
    my $r = $t->get($s, '/public/metrics');
    is($r->{status}, 403, "$s: where no authentication runs: 403");
    unlike($r->{content}, qr/webmodules_/, "$s: with no figure");
    is($t->get($s, '/public/metrics', {Authorization => $OPS})->{status}, 403,
        "$s: a Basic header nothing checked is no login: 403");
    like($t->error_log($s, $mark), qr/metrics: .*refused.*protect/, "$s: the log says to protect the location");
    if ($s eq 'nginx') {
        is($t->get($s, '/lan/metrics')->{status}, 403, "$s: let in by an allow rule without a login: 403");
    }

    $r = $t->request('POST', $s, '/ops/metrics', {headers => {Authorization => $OPS}, content => 'x=1'});
    is($r->{status}, 405, "$s: POST: 405");
    $r = $t->request('HEAD', $s, '/ops/metrics', {headers => {Authorization => $OPS}});
    is($r->{status}, 200, "$s: HEAD: 200");
    is($r->{content} // '', '', "$s: HEAD: no body");
    is($r->{headers}{'content-type'}, 'text/plain; version=0.0.4; charset=utf-8', "$s: HEAD: the content type");

    $r = $t->get($s, '/ops/metrics', {Authorization => $OPS});
    is($r->{status}, 200, "$s: with a login: 200");
    is($r->{headers}{'content-type'}, 'text/plain; version=0.0.4; charset=utf-8', "$s: Prometheus' content type");
    is($r->{headers}{'cache-control'}, 'no-store', "$s: not cached");
    is(length $r->{content}, $r->{headers}{'content-length'} // length $r->{content}, "$s: Content-Length right");

    my $m = parse_metrics($r->{content});
    is_deeply($m->{errors}, [], "$s: valid text format: TYPE before each series, no series twice, cumulative "
        . "histograms") or diag($r->{content});
    is_deeply([keys %{$m->{servers}}], [$s], "$s: server=\"$s\" on every series");
    for my $module (@MODULES) {
        ok((grep { /^webmodules_${module}_/ } keys %{$m->{types}}), "$s: the metrics of $module on the page");
    }
    is_deeply([map { $m->{types}{"webmodules_booking_$_"} // 'missing' } qw(outbox_pending outbox_due
        outbox_lag_seconds)], [qw(gauge gauge gauge)], "$s: the outbox gauges");
    is($m->{types}{webmodules_paywall_decisions_total}, 'counter', "$s: decisions are a counter");
    is($m->{types}{webmodules_session_shared_store_latency_ms}, 'histogram', "$s: store latency is a histogram");
    is_deeply([grep { !defined value($m, 'webmodules_paywall_decisions_total', access => $_) }
        qw(granted metered denied crawler)], [], "$s: a series for every access, zero or not");
}

# --------------------------------------------------------------------------- known requests, known increments

my $day2 = int(time) + 2 * 86400 - ((int(time) + $TOKYO) % 86400);    # Tokyo's midnight two days from now
my %slot = (apache => tokyo_time($day2 + 10 * 3600), nginx => tokyo_time($day2 + 11 * 3600));
my %first = map { $_ => scrape($_) } qw(apache nginx);
$gw->clear;

my %other = (apache => 'nginx', nginx => 'apache');
for my $s (qw(apache nginx)) {
    my %before = map { $_ => scrape($_) } qw(apache nginx);

    my $r = $t->get($s, '/index.html', {Cookie => "PHPSESSID=$sid"});
    is($r->{status}, 200, "$s: a page with the session's cookie");
    $t->get($s, '/index.html', {Cookie => 'PHPSESSID=' . ('q' x 32)});
    is($t->get($s, '/articles/story.html', {'X-User' => 'u-sub'})->{status}, 200, "$s: the subscriber reads");
    is($t->get($s, '/articles/story.html', {'X-User' => 'u-none'})->{status}, 403, "$s: a non-subscriber is refused");
    ok(has_banner($s), "$s: a page with a banner");
    is(book($s, $slot{$s}), 201, "$s: a booking");
    is(book($s, $slot{$s}), 409, "$s: the same slot again: 409");

    my %after = map { $_ => scrape($_) } qw(apache nginx);
    my @want = (    # series, increment on $s (on the other server: 0)
        [['webmodules_session_shared_loads_total', result => 'memcached_hit'], 1],
        [['webmodules_session_shared_loads_total', result => 'miss'], 1],
        [['webmodules_paywall_decisions_total', access => 'granted'], 1],
        [['webmodules_paywall_decisions_total', access => 'denied'], 1],
        [['webmodules_paywall_decisions_total', access => 'metered'], 0],
        [['webmodules_promo_banners_total', result => 'injected'], 1],
        [['webmodules_promo_banners_total', result => 'clicked'], 0],
        [['webmodules_booking_bookings_total', result => 'created'], 1],
        [['webmodules_booking_bookings_total', result => 'conflict'], 1],
        [['webmodules_booking_api_requests_total', status => '2xx'], 1],
        [['webmodules_booking_api_requests_total', status => '4xx'], 1],
        [['webmodules_booking_api_requests_total', status => '5xx'], 0],
    );
    for my $w (@want) {
        my ($series, $n) = @$w;
        my $label = "$series->[0]\{$series->[1]=\"$series->[2]\"}";
        is(delta($before{$s}, $after{$s}, @$series), $n, "$s: $label +$n");
        is(delta($before{$other{$s}}, $after{$other{$s}}, @$series), 0, "$s: $label unchanged on $other{$s}");
    }
    # both gated requests came from identified visitors: one entitlement lookup each, from wherever it was found
    my $lookups = 0;
    $lookups += delta($before{$s}, $after{$s}, 'webmodules_paywall_entitlement_lookups_total', source => $_)
        for qw(process_cache memcached postgres stale failed);
    is($lookups, 2, "$s: two entitlement lookups");
    is(delta($before{$s}, $after{$s}, 'webmodules_paywall_entitlement_lookups_total', source => 'failed'), 0,
        "$s: none failed");
    ok(delta($before{$s}, $after{$s}, 'webmodules_session_shared_store_latency_ms_count', store => 'memcached') >= 2,
        "$s: the two session loads timed memcached");
}

# The two confirmations went out through whichever server's dispatcher took them: delivered, once each, counted once.
ok(ModTest::polled(15, sub { (grep { ($_->{event} // '') eq 'booking.confirmed' && $_->{status} == 200 } $gw->requests) >= 2 }),
    'the two confirmations reached the gateway');
my $delivered = ModTest::polled(10, sub {
    my $n = 0;
    $n += delta($first{$_}, scrape($_), 'webmodules_booking_notifications_total', result => 'delivered')
        for qw(apache nginx);
    return $n >= 2 ? $n : undef;
}) // 0;
is($delivered, 2, 'notifications_total{result="delivered"}: +2 over both servers');
my %last = map { $_ => scrape($_) } qw(apache nginx);
is(delta($first{$_}, $last{$_}, 'webmodules_booking_notifications_total', result => 'retried'), 0,
    "$_: no notification retried") for qw(apache nginx);
is(scalar(grep { ($_->{event} // '') eq 'booking.confirmed' } $gw->requests), 2, 'the gateway saw two posts');

# The gauges follow the outbox: the two reminders (BookingReminder 24, two days ahead) pending, nothing due.
my $pending = sql_value($t, "SELECT count(*) FROM booking.outbox WHERE status = 'pending'");
is($pending, 2, 'two reminders pending in the outbox');
for my $s (qw(apache nginx)) {
    my $m = ModTest::polled(10, sub {
        my $m = scrape($s);
        return (value($m, 'webmodules_booking_outbox_pending') // -1) == $pending
            && (value($m, 'webmodules_booking_outbox_due') // -1) == 0 ? $m : undef;
    });
    ok($m, "$s: outbox_pending $pending, outbox_due 0");
    is(value($m // scrape($s), 'webmodules_booking_outbox_lag_seconds'), 0, "$s: no lag");
}

# ----------------------------------------------------------------------------------------- nginx reload keeps counts

{
    my $before = value(scrape('nginx'), 'webmodules_paywall_decisions_total', access => 'granted');
    my $mark = $t->log_mark('nginx');
    my %pids = $t->pids;
    ok(kill('HUP', $pids{nginx}), 'nginx: reload');
    ok(ModTest::polled(10, sub { $t->error_log('nginx', $mark) =~ /worker process \d+ exited/ }),
        'nginx: the old worker is gone');
    is(value(scrape('nginx'), 'webmodules_paywall_decisions_total', access => 'granted'), $before,
        'nginx: the count survived the reload');
    is($t->get('nginx', '/articles/story.html', {'X-User' => 'u-sub'})->{status}, 200, 'nginx: a subscriber again');
    is(value(scrape('nginx'), 'webmodules_paywall_decisions_total', access => 'granted'), $before + 1,
        'nginx: the new worker counts into the same block');
}

# -------------------------------------------------------------------- any one module serves the page: its own

for my $module (@MODULES) {
    my $dir = tempdir('metrics-modules-XXXXXX', TMPDIR => 1, CLEANUP => 1);
    mkdir "$dir/$_" for qw(apache nginx);
    my $built = ModTest::modules_dir();
    symlink("$built/apache/mod_$module.so", "$dir/apache/mod_$module.so") or die "symlink: $!";
    symlink("$built/nginx/ngx_http_${module}_module.so", "$dir/nginx/ngx_http_${module}_module.so") or die "symlink: $!";
    local $ENV{MODTEST_MODULES} = $dir;
    $t->start_servers(merge_conf(@metrics_locations[0, 1]), php => 0);
    for my $s (qw(apache nginx)) {
        is($t->get($s, '/public/metrics', {Authorization => $OPS})->{status}, 403, "$module alone, $s: 403 unprotected");
        my $m = scrape($s);
        is_deeply($m->{errors}, [], "$module alone, $s: valid text");
        my %seen = map { /^webmodules_([a-z]+(?:_shared)?)_/ ? ($1 => 1) : () } keys %{$m->{types}};
        is_deeply([sort keys %seen], [$module], "$module alone, $s: its metrics, no other module's");
    }
}

done_testing();
