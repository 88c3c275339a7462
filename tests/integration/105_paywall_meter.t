#!/usr/bin/perl
# PaywallMeter: free views per visitor and period, counted in memcached so every node and both servers share the
# count; anonymous visitors by a signed cookie that editing cannot reset, logged-in ones by their user id.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use ModTest;
use PaywallConf qw(paywall_server paywall_location merge_conf);

my $t = ModTest->new(memcached => 2, postgres => 1, php => 1);
$t->write_file('paywall.secret', "meter-secret-0123456789abcdef\n");
$t->start_servers(
    merge_conf(
        [paywall_server('PaywallPostgres "@PG@"', 'PaywallMemcached "@MC@"', 'PaywallSecretFile @TMP@/paywall.secret',
            'PaywallUser header:X-User')],
        [paywall_location('/articles/', ['Paywall On', 'PaywallMeter 3 30d', 'PaywallDeny status 403'])]),
    nginx_php => PaywallConf::paywall_php_params());

sub view {
    my ($s, %h) = @_;
    my $r = $t->get($s, '/articles/env.php', \%h);
    my $env = $r->{status} == 200 ? ModTest::json($r) : {};
    return ($r, $env);
}

# Anonymous: the cookie from the first view, then alternating servers; the count is one for the whole cluster.
my $items = $t->mc_stat('curr_items');
my ($r, $env) = view('apache');
is($r->{status}, 200, 'first anonymous view is free');
is($env->{PAYWALL_ACCESS}, 'metered', 'PAYWALL_ACCESS=metered');
is($env->{PAYWALL_METER_REMAINING}, 2, 'two views left');
my $c = ModTest::set_cookie($r, 'paywall_meter');
ok($c && $c->{httponly} && $c->{path} eq '/' && $c->{'max-age'} > 30 * 86400, 'signed meter cookie set, HttpOnly');
my $cookie = "paywall_meter=$c->{value}";
# The first view is counted by the cookie alone: a client that never sends it back (a crawler) stores nothing.
is($t->mc_stat('curr_items'), $items, 'the first view stores nothing in memcached');
($r, $env) = view('nginx', Cookie => $cookie);
is($env->{PAYWALL_METER_REMAINING}, 1, 'nginx counts on from apache\'s count');
is($t->mc_stat('curr_items'), $items + 1, 'the second view stores the count, one item');
ok(!ModTest::set_cookie($r, 'paywall_meter'), 'a valid cookie is not replaced');
($r, $env) = view('apache', Cookie => $cookie);
is($env->{PAYWALL_METER_REMAINING}, 0, 'third view: none left');
($r) = view('nginx', Cookie => $cookie);
is($r->{status}, 403, 'fourth view refused on nginx');
($r) = view('apache', Cookie => $cookie);
is($r->{status}, 403, 'and on apache');

# Editing the cookie (another id, a shifted start, a forged signature) earns nothing: the visitor gets a new id whose
# count for this period starts used up.
my ($payload, $mac) = split /\./, $c->{value};
(my $edited = $payload) =~ s/^(.)/$1 eq 'A' ? 'B' : 'A'/e;
for my $s (qw(apache nginx)) {
    ($r) = view($s, Cookie => "paywall_meter=$edited.$mac");
    is($r->{status}, 403, "$s: an edited meter cookie gets no free view");
    my $replacement = ModTest::set_cookie($r, 'paywall_meter');
    ok($replacement && $replacement->{value} ne $c->{value}, "$s: it is replaced by a new meter");
    ($r) = view($s, Cookie => "paywall_meter=$replacement->{value}");
    is($r->{status}, 403, "$s: whose count starts used up");
    ($r) = view($s, Cookie => 'paywall_meter=garbage');
    is($r->{status}, 403, "$s: a malformed meter cookie gets no free view");
}

# Cookieless clients, each request a new visitor, on both servers: a free view each, and still nothing stored.
$items = $t->mc_stat('curr_items');
for my $s (qw(apache nginx)) {
    my @free = grep { $_->{status} == 200 && ModTest::set_cookie($_, 'paywall_meter') } map { (view($s))[0] } 1 .. 20;
    is(scalar @free, 20, "$s: 20 cookieless requests, 20 first views with a new meter cookie each");
}
is($t->mc_stat('curr_items'), $items, 'and none of them stored an item');

# Logged-in visitors: counted by user id whatever the cookie says, on every server.
for my $s (qw(apache nginx apache)) {
    ($r, $env) = view($s, 'X-User' => 'reader-1');
    is($env->{PAYWALL_ACCESS}, 'metered', "$s: reader-1 metered");
}
is($env->{PAYWALL_METER_REMAINING}, 0, 'reader-1 used three views across both servers');
($r) = view('nginx', 'X-User' => 'reader-1', Cookie => 'paywall_meter=whatever');
is($r->{status}, 403, 'reader-1 is out of free views, cookie or not');
($r, $env) = view('nginx', 'X-User' => 'reader-2');
is($env->{PAYWALL_METER_REMAINING}, 2, 'another user has a count of their own');

# The counter is one memcached item for the whole cluster, keyed by the user and the period's start (periods of a
# user counted from the Unix epoch), so a new period starts afresh.
my $period = 30 * 86400;
my $key = 'paywall.meter.u.reader-1.' . (time - time % $period);
my @holders = $t->mc_find($key);
is(scalar @holders, 1, 'reader-1\'s count is one item on one node');
is($t->mc_get($holders[0], $key), 4, 'it counted every view, the refused one too') if @holders;

done_testing();
