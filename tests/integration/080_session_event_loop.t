#!/usr/bin/perl
# A store that does not answer holds up only the requests that need it: with every memcached node frozen
# (SIGSTOP: connections are accepted, nothing is answered, as with an overloaded or half-dead host), a request
# carrying a session waits for the module's I/O timeout, while requests without one, sent after it to the same
# single nginx worker (or Apache child), are answered first. On nginx this shows that the store access runs in a
# thread pool, not on the event loop. The frozen request is then served, not failed.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use IO::Socket::INET;
use IO::Select;
use Test::More;
use Time::HiRes qw(time sleep);
use ModTest;
use SessionSharedConf qw(session_conf);

my $t = ModTest->new(memcached => 3, php => 1);
$t->start_servers(session_conf(), nginx_workers => 1);
my %pids = $t->pids;

sub send_request {
    my ($server, $path, $cookie) = @_;
    my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $t->port($server), Timeout => 5) or die;
    print $sock "GET $path HTTP/1.0\r\nHost: localhost\r\n" . ($cookie ? "Cookie: $cookie\r\n" : '') . "\r\n";
    return $sock;
}

sub read_status {
    my ($sock) = @_;
    local $/;
    my $response = <$sock> // '';
    return $response =~ m{^HTTP/1\.\d (\d{3})} ? $1 : 0;
}

for my $s (qw(apache nginx)) {
    my $sid = ModTest::cookie_from($t->get($s, '/session.php?set=user_id&value=1'), 'PHPSESSID');
    kill 'STOP', $pids{"mc$_"} for 0 .. 2;
    my $start = time;
    my $slow = send_request($s, '/index.html', "PHPSESSID=$sid");
    sleep 0.05;
    my @fast = map { send_request($s, '/index.html') } 1 .. 5;
    my ($fast_done, $fast_ok) = (0, 0);
    for my $sock (@fast) {
        $fast_ok++ if read_status($sock) == 200;
    }
    $fast_done = time - $start;
    my $slow_pending = IO::Select->new($slow)->can_read(0) ? 0 : 1;
    is($fast_ok, 5, "$s: 5 requests without a session answered while memcached is frozen");
    ok($slow_pending, "$s: ... before the request that waits on memcached (after ${\ sprintf '%.2f', $fast_done} s)");
    kill 'CONT', $pids{"mc$_"} for 0 .. 2;
    is(read_status($slow), 200, "$s: the request that waited is served, not failed");
}

done_testing();
