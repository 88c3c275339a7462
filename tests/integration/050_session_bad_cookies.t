#!/usr/bin/perl
# Malformed session cookies (too long, too short, control characters, spaces, non-ASCII, characters outside PHP's
# id alphabet) are refused before any store is asked: the request is served normally, nothing is exported,
# memcached sees no request, and a debug-level line says why. Neither server crashes.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use IO::Socket::INET;
use Test::More;
use ModTest;
use SessionSharedConf qw(session_conf);

my $t = ModTest->new(memcached => 3, php => 1);
my %conf = session_conf();
$conf{apache} .= "\nLogLevel session_shared:debug\n";
$conf{nginx} .= "\nerror_log \@TMP\@/nginx-debug.log debug;\n";
$t->start_servers(%conf);

# memcached's own count of get commands, summed over the nodes.
sub mc_gets { return $t->mc_stat('cmd_get') }

# Raw requests: HTTP::Tiny refuses to send some of these bytes.
sub raw_get {
    my ($server, $path, $cookie) = @_;
    my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $t->port($server), Timeout => 5)
        or die "$server: $!";
    print $sock "GET $path HTTP/1.0\r\nHost: localhost\r\nCookie: $cookie\r\n\r\n";
    local $/;
    my $response = <$sock> // '';
    my ($status) = $response =~ m{^HTTP/1\.\d (\d{3})};
    my ($body) = $response =~ /\r\n\r\n(.*)\z/s;
    return ($status // 0, $body // '');
}

my %bad = (
    'too long'          => 'a' x 257,
    'too short'         => 'a' x 21,
    'control character' => ('a' x 16) . "\x01" . ('b' x 16),
    'space'             => ('a' x 16) . ' ' . ('b' x 16),
    'non-ASCII'         => ('a' x 16) . "\xc3\xa9" . ('b' x 16),
    'path characters'   => '../../../../etc/passwd/abcdefghijkl',
    'quote'             => ('a' x 16) . '\'' . ('b' x 16),
    'empty'             => '',
);

my $good = ModTest::cookie_from($t->get('apache', '/session.php?set=user_id&value=5'), 'PHPSESSID');

for my $s (qw(apache nginx)) {
    for my $what (sort keys %bad) {
        my $before = mc_gets();
        my ($status, $body) = raw_get($s, '/index.html', "PHPSESSID=$bad{$what}");
        # Apache's own header parser already refuses a control character (HttpProtocolOptions Strict).
        ok($status == 200 || ($status == 400 && $s eq 'apache' && $what eq 'control character'),
            "$s, $what: the page is served ($status)");
        is(mc_gets(), $before, "$s, $what: no store access");
        ($status, $body) = raw_get($s, '/env.php', "PHPSESSID=$bad{$what}");
        unlike($body, qr/SESSION_/, "$s, $what: nothing exported");
    }
    # The same checks would see a valid cookie: they can fail.
    my $before = mc_gets();
    my ($status, $body) = raw_get($s, '/env.php', "PHPSESSID=$good");
    like($body, qr/"SESSION_USER_ID":"5"/, "$s: a valid cookie is exported");
    cmp_ok(mc_gets(), '>', $before, "$s: and asks memcached");
}

like($t->error_log('apache'), qr/session cookie PHPSESSID refused: is longer than 256 characters/, 'apache: debug line says why');
like($t->error_log('nginx-debug.log'), qr/session cookie PHPSESSID refused: contains a character outside/,
    'nginx: debug line says why');
unlike($t->error_log('apache') . $t->error_log('nginx'), qr/\[(error|crit|alert|emerg)\]|Segmentation|AH00052/,
    'no error, no crashed child');

done_testing();
