#!/usr/bin/perl
# Idle and absolute timeouts are enforced by the module on both servers, whoever wrote the session: a session
# kept busy outlives the idle timeout, an idle one ends, a busy one ends at the absolute timeout; an ended
# session is deleted everywhere (memcached and PostgreSQL), so PHP does not see it either. Expired durable rows
# are purged.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Time::HiRes qw(sleep time);
use ModTest;
use SessionSharedConf qw(session_conf);

my $t = ModTest->new(memcached => 3, postgres => 1, php => 1, php_ini => {'memcached.sess_locking' => 0});
$t->start_servers(session_conf(postgres => 1, idle => 3, absolute => 7));

sub new_session {
    my ($server, $value) = @_;
    my $r = $t->get($server, "/session.php?set=user_id&value=$value");
    return ModTest::cookie_from($r, 'PHPSESSID');
}

sub exported {
    my ($server, $sid) = @_;
    return ModTest::json($t->get($server, '/env.php', {Cookie => "PHPSESSID=$sid"}))->{SESSION_USER_ID};
}

# Whether PostgreSQL holds this session with its user_id (PHP may store an empty session under the same id).
sub pg_has {
    my ($sid) = @_;
    my $n = $t->psql("SELECT count(*) FROM session_shared.sessions WHERE id = '$sid' "
        . "AND encode(data, 'escape') LIKE '%user_id%'");
    chomp $n;
    return $n;
}

for my $s (qw(apache nginx)) {
    my $other = $s eq 'apache' ? 'nginx' : 'apache';
    my $idle = new_session($s, 2);
    is(exported($other, $idle), 2, "$other: new session exported");
    my $deadline = time + 10;
    sleep 0.1 while pg_has($idle) == 0 && time < $deadline;
    is(pg_has($idle), 1, "$s: durable copy written")
        or diag($t->psql("SELECT id, encode(data, 'escape'), created_at, last_access, now() FROM session_shared.sessions"), " idle=$idle");
    # created after the wait, which may be long on a loaded machine, so that its idle clock starts now
    my $busy = new_session($s, 1);
    is(exported($s, $busy), 1, "$s: new session exported");

    # Busy every second for 5 s (beyond the 3 s idle timeout), alternating servers; the other stays idle.
    my $start = time;
    my $kept = 0;
    while (time - $start < 5) {
        sleep 1;
        $kept++ if (exported((int(time) % 2 ? $s : $other), $busy) // '') eq '1';
    }
    is($kept, 5, "$s: a session used every second outlives the idle timeout on both servers");
    ok(!defined exported($other, $idle), "$other: an idle session ended after 3 s");
    my $php = ModTest::json($t->get($s, '/session.php', {Cookie => "PHPSESSID=$idle"}));
    is_deeply($php->{session}, {}, "$s: PHP sees the idle session emptied too");
    is(pg_has($idle), 0, "$s: its durable copy is gone");

    # The busy session reaches its 7 s absolute timeout however active it is.
    my $absolute_end = $start + 8;
    while (time < $absolute_end) {
        sleep 0.5;
        exported($s, $busy);
    }
    ok(!defined exported($s, $busy), "$s: a busy session ends at the absolute timeout");
    ok(!defined exported($other, $busy), "$other: and is gone on the other server too");
}

# A durable row whose session memcached forgot is purged by the module itself.
my $sid = new_session('apache', 3);
my $deadline = time + 10;
sleep 0.1 while pg_has($sid) == 0 && time < $deadline;
$t->psql("UPDATE session_shared.sessions SET last_access = now() - interval '1 hour' WHERE id = '$sid'");
$t->psql("INSERT INTO session_shared.sessions (id, data, created_at, last_access) "
    . "SELECT 'purge' || g, 'x', now() - interval '2 hours', now() - interval '2 hours' FROM generate_series(1, 50) g");
# The purge runs at most once a minute per process: restart the servers so that the next requests purge.
$t->start_servers(session_conf(postgres => 1, idle => 3, absolute => 7));
for my $s (qw(apache nginx)) {
    for (1 .. 3) { $t->get($s, '/session.php', {Cookie => 'PHPSESSID=' . ('z' x 32)}) }
}
$deadline = time + 15;
my $left;
do { sleep 0.2; ($left) = $t->psql("SELECT count(*) FROM session_shared.sessions WHERE id LIKE 'purge%' OR id = '$sid'") =~ /(\d+)/ }
    while $left && time < $deadline;
is($left, 0, 'expired durable rows purged by the module');

done_testing();
