#!/usr/bin/perl
# Apache: mod_session_shared is a storage provider for mod_session, so Session On, SessionEnv and the backend's
# X-Replace-Session header work on the PHP app's own sessions: what mod_session stores PHP reads, what PHP stores
# mod_session hands to SessionEnv, arrays PHP stored survive mod_session's writes, new ids come from the CSPRNG in
# PHP's alphabet, keys land on the very node php-memcached reads (no replicas here, so a wrong node would show),
# and a write waits for php-memcached's lock. mod_session is Apache's: nginx has no counterpart to test.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use ModTest;
use SessionSharedConf qw(session_conf);

my $t = ModTest->new(memcached => 3, php => 1, php_ini => {'memcached.sess_number_of_replicas' => 0});
my %conf = session_conf(replicas => 0, export => [qw(user_id user)]);
$conf{apache} .= qq{
<Location /ms>
    Session On
    SessionEnv On
    SessionHeader X-Replace-Session
</Location>
};
$t->start_servers(%conf);

# mod_session creates the session: the module makes the id and stores PHP-readable data.
my $r = $t->get('apache', '/ms/replace.php?values=user%3Dbob%26role%3Deditor');
is($r->{status}, 200, 'apache: backend replaced the session through mod_session');
my $sid = ModTest::cookie_from($r, 'PHPSESSID');
like($sid, qr/^[0-9a-v]{32}\z/, 'new id: 32 characters of PHP\'s 5-bit alphabet (160 bits)');
my $cookie = ModTest::set_cookie($r, 'PHPSESSID');
ok($cookie->{httponly}, 'cookie is HttpOnly');
is(lc($cookie->{samesite} // ''), 'lax', 'cookie is SameSite=Lax');
is($cookie->{path}, '/', 'cookie path /');

my @nodes = $t->mc_find($t->mc_session_key($sid));
is(scalar @nodes, 1, 'stored on exactly one node without replicas');
is(scalar $t->mc_get($nodes[0], $t->mc_session_key($sid)), 'user|s:3:"bob";role|s:6:"editor";',
    'stored in PHP\'s php serialize_handler format');

for my $s (qw(apache nginx)) {
    my $j = ModTest::json($t->get($s, '/session.php', {Cookie => "PHPSESSID=$sid"}));
    is_deeply($j->{session}, {user => 'bob', role => 'editor'}, "PHP behind $s reads what mod_session stored");
    is(ModTest::json($t->get($s, '/env.php', {Cookie => "PHPSESSID=$sid"}))->{SESSION_USER}, 'bob',
        "$s exports it");
}

# PHP writes the same id again after the key is gone: php-memcached picks the node the module picked.
$t->mc_delete($nodes[0], $t->mc_session_key($sid));
$t->get('apache', '/session.php?set=user_id&value=9', {Cookie => "PHPSESSID=$sid"});
is_deeply([$t->mc_find($t->mc_session_key($sid))], \@nodes, 'php-memcached writes that id on the same node');

# What PHP stores, mod_session sees (SessionEnv); arrays survive mod_session's writes.
$t->get('apache', '/sessioncomplex.php?write=1', {Cookie => "PHPSESSID=$sid"});
my $env = ModTest::json($t->get('apache', '/ms/env.php', {Cookie => "PHPSESSID=$sid"}))->{HTTP_SESSION} // '';
like($env, qr/(^|&)user_id=9(&|$)/, 'SessionEnv hands the backend what PHP stored');
like($env, qr/(^|&)top_str=plain(&|$)/, 'SessionEnv: another scalar');
$t->get('apache', '/ms/replace.php?values=user_id%3D10%26top_str%3Dplain%26top_int%3D7', {Cookie => "PHPSESSID=$sid"});
my $j = ModTest::json($t->get('apache', '/sessioncomplex.php', {Cookie => "PHPSESSID=$sid"}));
is($j->{session}{user_id}, '10', 'mod_session\'s change reaches PHP');
ok($j->{match}, 'the arrays and objects PHP stored survive a mod_session write');

# A write waits for php-memcached's lock (memc.sess.key.lock.<id>), then proceeds when it is released.
my $lock_key = "memc.sess.key.lock.$sid";
$t->mc_set($_, $lock_key, '1', 0, 30) for 0 .. 2;
my $t0 = time;
$r = $t->get('apache', '/ms/replace.php?values=note%3Dlocked', {Cookie => "PHPSESSID=$sid"});
my $waited = time - $t0;
ok($waited >= 1, "a write while PHP holds the lock waits for it ($waited s)");
like($t->error_log('apache'), qr/is locked by another writer/, 'and says why it gave up');
isnt(ModTest::json($t->get('apache', '/session.php', {Cookie => "PHPSESSID=$sid"}))->{session}{note}, 'locked',
    'nothing was written while the lock was held');
$t->mc_delete($_, $lock_key) for 0 .. 2;
$t->get('apache', '/ms/replace.php?values=note%3Dunlocked', {Cookie => "PHPSESSID=$sid"});
is(ModTest::json($t->get('apache', '/session.php', {Cookie => "PHPSESSID=$sid"}))->{session}{note}, 'unlocked',
    'once released, the write goes through');

# A change of user (mod_auth_form's "user" key) moves the session to a new id; the old id is worth nothing.
$r = $t->get('apache', '/ms/replace.php?values=user%3Dmallory', {Cookie => "PHPSESSID=$sid"});
my $new_sid = ModTest::cookie_from($r, 'PHPSESSID');
ok($new_sid && $new_sid ne $sid, 'a change of user gives the session a new id');
is(ModTest::json($t->get('apache', '/session.php', {Cookie => "PHPSESSID=$new_sid"}))->{session}{user}, 'mallory',
    'the session lives on under the new id');
is_deeply([$t->mc_find($t->mc_session_key($sid))], [], 'the old id is deleted');
$sid = $new_sid;
$r = $t->get('apache', '/ms/replace.php?values=user%3Dmallory%26theme%3Ddark', {Cookie => "PHPSESSID=$sid"});
ok(!ModTest::cookie_from($r, 'PHPSESSID'), 'other changes keep the id');

# Emptying the session through mod_session (a key with an empty value removes it) deletes it.
$r = $t->get('apache', '/ms/replace.php?values=user%3Dann%26role%3Dreader');
my $short = ModTest::cookie_from($r, 'PHPSESSID');
ok(scalar $t->mc_find($t->mc_session_key($short)), 'another session stored');
$r = $t->get('apache', '/ms/replace.php?values=user%3D%26role%3D', {Cookie => "PHPSESSID=$short"});
is_deeply([$t->mc_find($t->mc_session_key($short))], [], 'a session mod_session empties is deleted');
is(ModTest::set_cookie($r, 'PHPSESSID')->{'max-age'}, '0', 'and its cookie expired');

done_testing();
