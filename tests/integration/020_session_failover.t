#!/usr/bin/perl
# Losing memcached loses no session: with one node of three killed, every session is still seen by the module and
# by PHP on both servers and no request fails; with every node restarted empty, PostgreSQL's durable copy refills
# memcached before PHP reads it. Without PostgreSQL the same restart does lose them (the test can fail).

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use ModTest;
use SessionSharedConf qw(session_conf);

# php-memcached cannot take its session lock when the node holding the lock key is down (it does not fail over
# the lock), so a site that must survive a node loss runs PHP with sess_locking off: see docs/session_shared.md.
my $t = ModTest->new(memcached => 3, postgres => 1, php => 1, php_ini => {'memcached.sess_locking' => 0});
$t->start_servers(session_conf(postgres => 1));

# Enough sessions for every node to be the primary of some.
my %sessions;
for my $n (1 .. 12) {
    my $server = $n % 2 ? 'apache' : 'nginx';
    my $r = $t->get($server, "/session.php?set=user_id&value=$n");
    die "session.php through $server: $r->{status}" unless $r->{status} == 200;
    $sessions{ModTest::cookie_from($r, 'PHPSESSID')} = $n;
}
is(scalar keys %sessions, 12, '12 sessions created by PHP through both servers');

my %primaries;
for my $sid (keys %sessions) {
    my @nodes = $t->mc_find($t->mc_session_key($sid));
    $primaries{$_}++ for @nodes;
}
is(scalar keys %primaries, 3, 'the sessions are spread over the three nodes');

sub check_all {
    my ($label) = @_;
    my ($seen, $php_seen, $errors) = (0, 0, 0);
    for my $sid (sort keys %sessions) {
        for my $s (qw(apache nginx)) {
            my $r = $t->get($s, '/env.php', {Cookie => "PHPSESSID=$sid"});
            $errors++ if $r->{status} >= 500;
            if ($r->{status} == 200 && (ModTest::json($r)->{SESSION_USER_ID} // '') eq $sessions{$sid}) { $seen++ }
            else { diag("$label: $s module misses $sid: $r->{status} $r->{content}") }
            $r = $t->get($s, '/session.php', {Cookie => "PHPSESSID=$sid"});
            $errors++ if $r->{status} >= 500;
            if ($r->{status} == 200 && (ModTest::json($r)->{session}{user_id} // '') eq $sessions{$sid}) { $php_seen++ }
            else { diag("$label: $s PHP misses $sid: $r->{status} $r->{content}") }
        }
    }
    is($errors, 0, "$label: no request failed");
    is($seen, 24, "$label: the module sees all 12 sessions on both servers");
    is($php_seen, 24, "$label: PHP reads all 12 sessions behind both servers");
}

# Wait until the module's write-through after PHP's responses reached PostgreSQL.
sub pg_count {
    my $n = $t->psql('SELECT count(*) FROM session_shared.sessions');
    chomp $n;
    return $n;
}
my $deadline = time + 10;
sleep 1 while pg_count() < 12 && time < $deadline;
is(pg_count(), 12, 'every session PHP wrote has a durable copy in PostgreSQL');

$t->mc_stop(1);
check_all('memcached node 1 killed');
$t->mc_start(1);

my $apache_mark = $t->log_mark('apache');
$t->mc_restart_all;
check_all('all memcached nodes restarted empty, PostgreSQL configured');

# An outage is logged once when it starts, not once per request.
$t->mc_stop(0);
$t->mc_stop(1);
$t->mc_stop(2);
my $mark = $t->log_mark('apache');
for (1 .. 5) { $t->get('apache', '/env.php', {Cookie => 'PHPSESSID=' . (keys %sessions)[0]}) }
my @lines = $t->error_log('apache', $mark) =~ /unreachable/g;
ok(@lines <= 1, 'a memcached outage is logged once, not per request (' . scalar(@lines) . ' lines)');
my $r = $t->get('nginx', '/env.php', {Cookie => 'PHPSESSID=' . (keys %sessions)[0]});
is(ModTest::json($r)->{SESSION_USER_ID}, $sessions{(keys %sessions)[0]}, 'all of memcached down: served from PostgreSQL');
$t->mc_start($_) for 0 .. 2;

# The same restart without PostgreSQL loses the sessions: the check above is not vacuous.
$t->start_servers(session_conf(postgres => 0));
$t->mc_restart_all;
my $env = ModTest::json($t->get('apache', '/env.php', {Cookie => 'PHPSESSID=' . (keys %sessions)[0]}));
ok(!exists $env->{SESSION_USER_ID}, 'without PostgreSQL, restarting memcached loses the session');

done_testing();
