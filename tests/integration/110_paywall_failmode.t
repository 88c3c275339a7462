#!/usr/bin/perl
# Stores failing, on both servers: memcached down -> PostgreSQL decides; both down -> entitlements the process has
# seen keep serving (PaywallCacheMaxStale), others follow PaywallFailMode (closed: denied, open: granted); each
# incident logged once when it starts and once when it ends, not per request.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Time::HiRes qw(sleep);
use ModTest;
use PaywallConf qw(paywall_server paywall_location merge_conf);

my $t = ModTest->new(memcached => 2, postgres => 1, php => 1);
$t->start_servers(
    merge_conf(
        [paywall_server('PaywallPostgres "@PG@"', 'PaywallMemcached "@MC@"', 'PaywallUser header:X-User',
            'PaywallCacheTTL 1s', 'PaywallCacheMaxStale 1h', 'PaywallPlan digital price_digital')],
        [paywall_location('/articles/', ['Paywall On', 'PaywallRequire digital', 'PaywallDeny status 403'])],
        [paywall_location('/premium/', ['Paywall On', 'PaywallRequire digital', 'PaywallDeny status 403',
            'PaywallFailMode open'])]));

sub status { my ($s, $path, $user) = @_; return $t->get($s, $path, {'X-User' => $user})->{status} }

status('apache', '/articles/story.html', 'nobody');    # creates the schema
$t->psql("INSERT INTO paywall.customers (customer_id, user_id, livemode) VALUES ('cus_1', 'u-sub', false)");
$t->psql("INSERT INTO paywall.subscriptions (subscription_id, customer_id, user_id, plan, price_id, status,"
    . " current_period_end, livemode, last_event_created, last_event_id) VALUES ('sub_1', 'cus_1', 'u-sub', 'digital',"
    . " 'price_digital', 'active', now() + interval '30 days', false, now(), 'evt_1')");

my @servers = qw(apache nginx);
for my $s (@servers) {
    is(status($s, $_, 'u-sub'), 200, "$s: subscriber reads $_") for qw(/articles/story.html /premium/story.html);
}
my %mark = map { $_ => $t->log_mark($_) } @servers;

# memcached down: PostgreSQL answers, decisions stay right.
$t->mc_stop($_) for 0 .. $t->mc_count - 1;
sleep 1.1;    # past PaywallCacheTTL
for my $s (@servers) {
    is(status($s, '/articles/story.html', 'u-sub'), 200, "$s: memcached down: the subscriber still reads");
    is(status($s, '/articles/story.html', 'u-none'), 403, "$s: memcached down: a non-subscriber is still refused");
    is(status($s, '/premium/story.html', 'u-none'), 403, "$s: memcached down: no fail mode while PostgreSQL answers");
}

# Both down: what the process has seen serves, the rest follows the fail mode.
$t->pg_stop;
sleep 1.1;
for my $s (@servers) {
    for (1 .. 3) {
        is(status($s, '/articles/story.html', 'u-sub'), 200, "$s: both down: a cached entitlement serves");
        is(status($s, '/articles/story.html', 'u-new'), 403, "$s: both down: unknown visitor, fail mode closed");
        is(status($s, '/premium/story.html', 'u-new'), 200, "$s: both down: unknown visitor, fail mode open");
    }
    my $log = $t->error_log($s, $mark{$s});
    my $starts = () = $log =~ /PaywallFailMode (?:open|closed) applies/g;
    is($starts, 1, "$s: the incident is logged once, not per request");
    like($log, qr/memcached .* unreachable/, "$s: the memcached outage is logged");
    like($log, qr/PostgreSQL unreachable/, "$s: the PostgreSQL outage is logged");
    $mark{$s} = $t->log_mark($s);
}

# Back: right decisions again, and the end is logged.
$t->mc_start($_) for 0 .. $t->mc_count - 1;
$t->pg_start;
sleep 2.5;    # PostgreSQL's fail-fast window after the failed connections
for my $s (@servers) {
    is(status($s, '/premium/story.html', 'u-new'), 403, "$s: stores back: the open fail mode no longer applies");
    is(status($s, '/articles/story.html', 'u-sub'), 200, "$s: stores back: the subscriber reads");
    like($t->error_log($s, $mark{$s}), qr/PaywallFailMode no longer applies|answers again/,
        "$s: the end of the incident is logged");
}

done_testing();
