#!/usr/bin/perl
# SessionSharedCacheTTL / session_shared_cache_ttl: a server process reuses a session it read for at most that long
# without asking memcached; a request its backend answered drops the copy at once (PHP may have changed the
# session), and another server's change shows once the time has passed. Off by default.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Time::HiRes qw(sleep);
use ModTest;
use SessionSharedConf qw(session_conf);

my $t = ModTest->new(memcached => 3, php => 1);
$t->start_servers(session_conf(extra_apache => 'SessionSharedCacheTTL 2s', extra_nginx => 'session_shared_cache_ttl 2s;'));

sub mc_gets { return $t->mc_stat('cmd_get') }

sub exported {
    my ($s, $sid) = @_;
    return ModTest::json($t->get($s, '/env.php', {Cookie => "PHPSESSID=$sid"}))->{SESSION_USER_ID};
}

for my $s (qw(apache nginx)) {
    my $other = $s eq 'apache' ? 'nginx' : 'apache';
    my $sid = ModTest::cookie_from($t->get($s, '/session.php?set=user_id&value=1'), 'PHPSESSID');

    # Static pages: the first request reads memcached, the next ones (same process) do not.
    $t->get($s, '/index.html', {Cookie => "PHPSESSID=$sid"}) for 1 .. 3;
    my $before = mc_gets();
    $t->get($s, '/index.html', {Cookie => "PHPSESSID=$sid"}) for 1 .. 5;
    is(mc_gets(), $before, "$s: 5 requests within the TTL asked memcached nothing");

    # The same server's backend changes the session: its copy is dropped at once.
    $t->get($s, '/session.php?set=user_id&value=2', {Cookie => "PHPSESSID=$sid"});
    is(exported($s, $sid), 2, "$s: a change made through this server's backend shows at once");

    # Another server's backend changes it: stale for at most the TTL, then fresh.
    exported($s, $sid);
    $t->get($other, '/session.php?set=user_id&value=3', {Cookie => "PHPSESSID=$sid"});
    sleep 2.2;
    $t->get($s, '/index.html', {Cookie => "PHPSESSID=$sid"});
    is(exported($s, $sid), 3, "$s: after the TTL the other server's change shows");
}

# Off by default: every request asks memcached.
$t->start_servers(session_conf());
my $sid = ModTest::cookie_from($t->get('nginx', '/session.php?set=user_id&value=1'), 'PHPSESSID');
for my $s (qw(apache nginx)) {
    my $before = mc_gets();
    $t->get($s, '/index.html', {Cookie => "PHPSESSID=$sid"}) for 1 .. 5;
    cmp_ok(mc_gets() - $before, '>=', 5, "$s: without a TTL each request reads memcached");
}

done_testing();
