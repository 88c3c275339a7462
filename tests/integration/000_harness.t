#!/usr/bin/perl
# The harness itself: fresh memcached nodes, PostgreSQL, php-fpm, Apache and nginx; a PHP session written through
# one server is read through the other (PHP keeps it in memcached, no project module involved); snippets and
# placeholders reach both configurations; memcached nodes stop and start; psql works; stop leaves nothing behind.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use ModTest;

my $t = ModTest->new(memcached => 3, postgres => 1, php => 1);
$t->start_servers(
    load_modules => 0,    # bare servers: the harness alone
    apache     => "Header set X-MC \"\@MC\@\"\nSetEnv SESSION_PROBE apache\nSetEnv PAYWALL_PROBE \"\@FPM\@\"",
    nginx      => "add_header X-MC \"\@MC\@\";\nadd_header X-Http-Level \$modtest_probe;\n"
        . "location = /prefix { return 200 \"\@TMP\@\"; }",
    nginx_php  => "fastcgi_param SESSION_PROBE nginx;\nfastcgi_param PAYWALL_PROBE \"\@FPM\@\";",
    nginx_http => "map \$uri \$modtest_probe { default \"\@APACHE_PORT\@\"; }",
);

is_deeply([$t->servers], [qw(apache nginx)], 'both servers started');
like($t->mc_servers, qr/^127\.0\.0\.1:\d+,127\.0\.0\.1:\d+,127\.0\.0\.1:\d+\z/, 'three memcached nodes');

# static page and snippets on both servers
for my $s ($t->servers) {
    my $r = $t->get($s, '/');
    is($r->{status}, 200, "$s: static index");
    like($r->{content}, qr/modtest static page/, "$s: index.html content");
    is($r->{headers}{'x-mc'}, $t->mc_servers, "$s: snippet with \@MC\@ applied");

    my $env = ModTest::json($t->get($s, '/env.php'));
    is($env->{SESSION_PROBE}, $s, "$s: variable exported to PHP");
    is($env->{PAYWALL_PROBE}, $t->fpm, "$s: \@FPM\@ replaced");
    ok(!exists $env->{REMOTE_USER}, "$s: no REMOTE_USER without auth");
}
is($t->get('nginx', '/index.html')->{headers}{'x-http-level'}, $t->port('apache'), 'nginx_http snippet');
is($t->get('nginx', '/prefix')->{content}, $t->prefix, '@TMP@ replaced');

# sessions cross servers both ways
my %cross = (apache => 'nginx', nginx => 'apache');
for my $writer (sort keys %cross) {
    my $reader = $cross{$writer};
    my $r = $t->get($writer, "/session.php?set=by&value=$writer");
    is($r->{status}, 200, "$writer: session.php");
    my $sid = ModTest::cookie_from($r, 'PHPSESSID');
    like($sid, qr/^[A-Za-z0-9,-]{20,}\z/, "$writer: session cookie set");
    is(ModTest::set_cookie($r, 'PHPSESSID')->{path}, '/', "$writer: cookie attributes parsed");
    is(ModTest::json($r)->{session}{by}, $writer, "$writer: value in the session");

    my $key = $t->mc_session_key($sid);
    my @nodes = $t->mc_find($key);
    is(scalar @nodes, 2, "$writer: session on a primary and a replica node (@nodes)");
    like(scalar $t->mc_get($nodes[0], $key), qr/^by\|s:\d+:"$writer";\z/, "$writer: php-serialized blob in memcached");

    $r = $t->get($reader, '/session.php?set=also&value=' . $reader, { Cookie => "PHPSESSID=$sid" });
    my $j = ModTest::json($r);
    is($j->{id}, $sid, "$reader: same session id");
    is($j->{session}{by}, $writer, "$reader: reads the session $writer wrote");

    $r = $t->get($writer, '/session.php?unset=by', { Cookie => "PHPSESSID=$sid" });
    is_deeply(ModTest::json($r)->{session}, { also => $reader }, "$writer: sees ${reader}'s write, unsets a key");
    is_deeply(ModTest::json($t->get($reader, '/session.php', { Cookie => "PHPSESSID=$sid" }))->{session},
        { also => $reader }, "$reader: key gone");
}

# regenerate: new id, old key removed from memcached
{
    my $r = $t->get('apache', '/session.php?set=x&value=1');
    my $old = ModTest::cookie_from($r, 'PHPSESSID');
    $r = $t->get('nginx', '/session.php?regenerate=1', { Cookie => "PHPSESSID=$old" });
    my $new = ModTest::cookie_from($r, 'PHPSESSID');
    ok($new && $new ne $old, 'regenerate sets a new id');
    is(ModTest::json($r)->{session}{x}, 1, 'regenerate keeps the data');
    is_deeply([$t->mc_find($t->mc_session_key($old))], [], 'old session deleted');
    is(ModTest::json($t->get('apache', '/session.php', { Cookie => "PHPSESSID=$new" }))->{session}{x}, 1,
        'new id read through apache');
}

# codec fixture round-trips through PHP on both servers
{
    my $r = $t->get('apache', '/sessioncomplex.php?write=1');
    my $sid = ModTest::cookie_from($r, 'PHPSESSID');
    ok(ModTest::json($r)->{match}, 'sessioncomplex written through apache');
    my $j = ModTest::json($t->get('nginx', '/sessioncomplex.php', { Cookie => "PHPSESSID=$sid" }));
    ok($j->{match}, 'sessioncomplex read through nginx');
    is($j->{session}{complex}{object}{inner}{flag}, JSON::PP::true, 'nested object survives');
    like($j->{encoded}, qr/O:8:"stdClass":3:\{/, 'encoded session holds the stdClass');
    my $encoded = $j->{encoded};
    utf8::encode($encoded);    # memcached holds bytes
    is(scalar $t->mc_get(($t->mc_find($t->mc_session_key($sid)))[0], $t->mc_session_key($sid)), $encoded,
        'memcached holds exactly session_encode()');
}

# POST helper
{
    my $r = $t->post('nginx', '/session.php?set=p&value=posted', { ignored => 'form' });
    is($r->{status}, 200, 'post through nginx');
    is(ModTest::json($r)->{session}{p}, 'posted', 'post response');
}

# raw memcached access, stop and start of a node (same port, data lost)
{
    ok($t->mc_set(1, 'modtest:k', 'v1', 42, 0), 'mc_set');
    is_deeply([$t->mc_get(1, 'modtest:k')], ['v1', 42], 'mc_get value and flags');
    is($t->mc_get(0, 'modtest:k'), undef, 'key only on the node it was set on');
    my $bin = "a\r\nEND\r\nb\0c" . ("x" x 70000);
    ok($t->mc_set(2, 'modtest:bin', $bin), 'mc_set binary value');
    is($t->mc_get(2, 'modtest:bin'), $bin, 'mc_get binary value with END inside, larger than one read');
    ok($t->mc_delete(2, 'modtest:bin'), 'mc_delete');
    my $port = $t->mc_port(1);
    $t->mc_stop(1);
    ok(!IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Timeout => 1), 'stopped node refuses');
    ok(!eval { $t->mc_get(1, 'modtest:k'); 1 }, 'mc_get on a stopped node dies');
    $t->mc_start(1);
    is($t->mc_port(1), $port, 'restarted on the same port');
    is($t->mc_get(1, 'modtest:k'), undef, 'data lost on restart');
    ok($t->mc_set(0, 'modtest:all', 'x'), 'set before restart_all');
    $t->mc_restart_all;
    is($t->mc_get(0, 'modtest:all'), undef, 'mc_restart_all empties every node');
    my $r = $t->get('nginx', '/session.php?set=after&value=restart');
    is(ModTest::json($r)->{session}{after}, 'restart', 'sessions work after restart_all');
}

# PostgreSQL
{
    like($t->pg_conninfo, qr/host=127\.0\.0\.1 port=\d+ dbname=modtest user=postgres/, 'pg_conninfo');
    is($t->psql('SELECT current_database()'), "modtest\n", 'psql in database modtest');
    $t->psql("CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (1, 'one'), (2, 'two');");
    is($t->psql('SELECT v FROM t ORDER BY id'), "one\ntwo\n", 'psql returns rows');
    ok(!eval { $t->psql('SELECT * FROM missing'); 1 }, 'psql dies on error');
    like($@, qr/missing/, 'with the error message');
    $t->pg_stop;
    ok(!eval { $t->psql('SELECT 1'); 1 }, 'psql fails while postgres is stopped');
    $t->pg_start;
    is($t->psql('SELECT count(*) FROM t'), "2\n", 'data kept across pg_stop/pg_start');
}

# logs
like($t->error_log('apache'), qr/resuming normal operations/, 'apache error log');
like($t->error_log('nginx'), qr/start worker process/, 'nginx error log');
is($t->php_error_log, '', 'no PHP errors');

# the project's built modules load into both servers (every apache/mod_*.so and nginx/ngx_*_module.so)
SKIP: {
    my $dir = ModTest::modules_dir();
    my @apache = glob("$dir/apache/mod_*.so");
    my @nginx = glob("$dir/nginx/ngx_*_module.so");
    skip "no module built in $dir", 4 unless @apache && @nginx;
    $t->start_servers;
    (my $sym = $apache[0]) =~ s{.*/mod_(\w+)\.so\z}{$1_module};
    like($t->error_log('apache/httpd.conf'), qr/^LoadModule \Q$sym\E "\Q$apache[0]\E"$/m, "LoadModule $sym");
    like($t->error_log('nginx/nginx.conf'), qr/^load_module "\Q$nginx[0]\E";$/m, 'load_module line');
    is($t->get($_, '/')->{status}, 200, "$_ answers with the project's modules loaded") for $t->servers;
}

# stop leaves nothing running
{
    my %pids = $t->pids;
    is(scalar(keys %pids), 7, 'seven services (3 memcached, postgres, php-fpm, apache, nginx)');
    my $port = $t->port('apache');
    $t->stop;
    my @alive = grep { ModTest::_alive($pids{$_}) } sort keys %pids;
    is_deeply(\@alive, [], 'no process left after stop');
    my @groups = grep { $_ ne 'postgres' && ModTest::_group_alive($pids{$_}) } sort keys %pids;
    is_deeply(\@groups, [], 'no worker left in the process groups');
    ok(!IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Timeout => 1), 'apache port closed');
    is_deeply([$t->servers], [], 'no servers after stop');
}

done_testing();
