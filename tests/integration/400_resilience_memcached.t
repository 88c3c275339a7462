#!/usr/bin/perl
# Resilience: one memcached node of three killed under wrk load on pages with sessions (mod_session_shared with a
# replica, no PostgreSQL, so that only the replicas can save the sessions): no 5xx and no socket error on either
# server while it happens, the module finds the session on every page it serves, every session created before the
# kill still reads back with its data afterwards, through the module and through PHP, on both servers, and each
# server process logs the outage once, not once per request. RESILIENCE_LONG=1: 60 s of load instead of 12.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Time::HiRes qw(sleep time);
use ModTest;
use Load;
use SessionSharedConf qw(session_conf);

plan skip_all => Load::unavailable_reason() if Load::unavailable_reason();

my $LONG = $ENV{RESILIENCE_LONG} ? 1 : 0;
my $SECONDS = $LONG ? 60 : 12;
my $KILL_AT = $LONG ? 15 : 4;    # seconds into the load
my $SESSIONS = $LONG ? 60 : 24;

# php-memcached cannot take its session lock when the node holding the lock key is down: a site that must survive
# a node loss runs PHP with sess_locking off (docs/session_shared.md), and so does this test.
my $t = ModTest->new(memcached => 3, php => 1, php_children => 6, php_ini => {'memcached.sess_locking' => 0});
$t->start_servers(session_conf(replicas => 1));

# Sessions created by PHP through both servers, each with two values the module exports.
my %sessions;
for my $n (1 .. $SESSIONS) {
    my $s = $n % 2 ? 'apache' : 'nginx';
    my $r = $t->get($s, "/session.php?set=user_id&value=u$n");
    die "session.php through $s: $r->{status}\n" unless $r->{status} == 200;
    my $sid = ModTest::cookie_from($r, 'PHPSESSID') or die "no session cookie from $s\n";
    $r = $t->get($s, "/session.php?set=name&value=Reader+$n", {Cookie => "PHPSESSID=$sid"});
    die "session.php through $s: $r->{status}\n" unless $r->{status} == 200;
    $sessions{$sid} = {user_id => "u$n", name => "Reader $n"};
}
is(scalar keys %sessions, $SESSIONS, "$SESSIONS sessions created through both servers");

# The node to kill holds the primary copy of some sessions (the first node php-memcached wrote them to).
my %primary;
for my $sid (keys %sessions) {
    my @nodes = $t->mc_find($t->mc_session_key($sid));
    $primary{$_}++ for @nodes;
}
my ($victim) = sort { ($primary{$b} // 0) <=> ($primary{$a} // 0) } 0 .. 2;
cmp_ok($primary{$victim} // 0, '>=', 2, "memcached node $victim holds copies of $primary{$victim} sessions");
cmp_ok(scalar(grep { $primary{$_} } 0 .. 2), '>=', 2, 'the copies are spread over the nodes');

# What the module exports and what PHP reads, for one session on one server: (status, module's, PHP's)
sub read_back {
    my ($s, $sid) = @_;
    my $r = $t->get($s, '/env.php', {Cookie => "PHPSESSID=$sid"});
    my $env = $r->{status} == 200 ? eval { ModTest::json($r) } // {} : {};
    my $p = $t->get($s, '/session.php', {Cookie => "PHPSESSID=$sid"});
    my $php = $p->{status} == 200 ? eval { ModTest::json($p)->{session} } // {} : {};
    my $status = $r->{status} >= $p->{status} ? $r->{status} : $p->{status};
    return ($status, join('|', $env->{SESSION_USER_ID} // '-', $env->{SESSION_NAME} // '-'),
        join('|', $php->{user_id} // '-', $php->{name} // '-'));
}

sub check_all {
    my ($label) = @_;
    my ($errors, $module, $php) = (0, 0, 0);
    for my $sid (sort keys %sessions) {
        my $want = "$sessions{$sid}{user_id}|$sessions{$sid}{name}";
        for my $s (qw(apache nginx)) {
            my ($status, $m, $p) = read_back($s, $sid);
            $errors++ if $status >= 500;
            if ($m eq $want) { $module++ } else { diag("$label: $s: the module reads $sid as '$m', want '$want'") }
            if ($p eq $want) { $php++ } else { diag("$label: $s: PHP reads $sid as '$p', want '$want'") }
        }
    }
    my $n = 2 * keys %sessions;
    is($errors, 0, "$label: no 5xx");
    is($module, $n, "$label: the module exports every session's values on both servers");
    is($php, $n, "$label: PHP reads every session's values behind both servers");
}

check_all('before the kill');

# Load on both servers: module and PHP reading the sessions (env.php, the module must find the session on each
# request), and static pages with the session cookie (the module alone), taken in turn over every session.
my @sids = sort keys %sessions;
my %mark = map { $_ => $t->log_mark($_) } qw(apache nginx);
my @loads;
for my $s (qw(apache nginx)) {
    push @loads, Load->start(url => $t->url($s, '/'), name => "$s env.php", dir => $t->prefix, seconds => $SECONDS,
        connections => 4, timeout => 5, match => 'SESSION_USER_ID',
        requests => [map { {path => '/env.php', headers => {Cookie => "PHPSESSID=$_"}} } @sids]);
    push @loads, Load->start(url => $t->url($s, '/'), name => "$s static+session.php", dir => $t->prefix,
        seconds => $SECONDS, connections => 4, timeout => 5,
        requests => [map { ({path => '/index.html', headers => {Cookie => "PHPSESSID=$_"}},
            {path => '/session.php', headers => {Cookie => "PHPSESSID=$_"}}) } @sids]);
}
my $t0 = time;
sleep $KILL_AT;
$t->mc_stop($victim);
my $killed_at = time - $t0;
ok(!$t->mc_running($victim), sprintf('memcached node %d killed %.1f s into the load', $victim, $killed_at));

for my $load (@loads) {
    my $r = $load->wait;
    note(Load::summary($r));
    ok(!$r->{failed}, "$r->{name}: wrk reported") or diag(Load::summary($r));
    cmp_ok($r->{requests}, '>', 20 * $SECONDS, "$r->{name}: the load ran (" . $r->{requests} . ' requests)');
    is($r->{class}{'5xx'} // 0, 0, "$r->{name}: no 5xx") or diag(Load::summary($r));
    is($r->{class}{'2xx'} // 0, $r->{requests}, "$r->{name}: every answer 2xx") or diag(Load::summary($r));
    is($r->{socket_errors}, 0, "$r->{name}: no socket error") or diag(Load::summary($r));
    is($r->{mismatch}, 0, "$r->{name}: the module found the session on every page") if $r->{name} =~ /env/;
}

check_all("memcached node $victim killed");

# The lost node is logged when a server process meets it, not on every request: at most one line per process (the
# requests succeed, so only core/mc.c knows a node was skipped; mc_cluster_degraded tells the module).
for my $s (qw(apache nginx)) {
    my $log = $t->error_log($s, $mark{$s});
    my %per_pid = Load::per_process($log, qr/a node of memcached "[^"]*" is unreachable/);
    my $lines = 0;
    $lines += $_ for values %per_pid;
    cmp_ok($lines, '>=', 1, "$s: the lost node is logged") or diag($log);
    like($log, qr/a node of memcached "[^"]*" is unreachable \([^\n]*?127\.0\.0\.1:${\ $t->mc_port($victim)}\b/,
        "$s: naming the node that is gone");
    is((grep { $_ > 1 } values %per_pid), 0, "$s: once per server process, not per request ($lines lines from "
        . scalar(keys %per_pid) . ' processes)') or diag(join "\n", grep { /unreachable/ } split /\n/, $log);
    unlike($log, qr/\[(?:crit|alert|emerg)\]|segfault|exit signal/, "$s: no crash or critical error");
}

done_testing();
