#!/usr/bin/perl
# mod_session_shared and PHP share sessions both ways, across Apache and nginx: PHP's php-memcached handler writes,
# the module exports the values to the backend on the other server, PHP behind either server reads the same
# $_SESSION.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use ModTest;
use SessionSharedConf qw(session_conf);

my $t = ModTest->new(memcached => 3, php => 1);
$t->start_servers(session_conf());

my %other = (apache => 'nginx', nginx => 'apache');
for my $writer (qw(apache nginx)) {
    my $reader = $other{$writer};
    my $r = $t->get($writer, '/session.php?set=user_id&value=' . ($writer eq 'apache' ? 42 : 43));
    is($r->{status}, 200, "$writer: PHP writes the session");
    my $sid = ModTest::cookie_from($r, 'PHPSESSID');
    ok($sid, "$writer: PHP set a session cookie");
    $t->get($writer, '/session.php?set=name&value=ann%20o%27neil', {Cookie => "PHPSESSID=$sid"});

    for my $s ($reader, $writer) {
        my $env = ModTest::json($t->get($s, '/env.php', {Cookie => "PHPSESSID=$sid"}));
        is($env->{SESSION_ID}, $sid, "written through $writer, $s exports SESSION_ID");
        is($env->{SESSION_USER_ID}, $writer eq 'apache' ? 42 : 43, "written through $writer, $s exports user_id");
        is($env->{SESSION_NAME}, "ann o'neil", "written through $writer, $s exports a string with spaces and quotes");
    }
    my $j = ModTest::json($t->get($reader, '/session.php', {Cookie => "PHPSESSID=$sid"}));
    is($j->{session}{user_id}, $writer eq 'apache' ? 42 : 43, "PHP behind $reader reads what PHP behind $writer wrote");

    # no cookie, no export
    my $env = ModTest::json($t->get($reader, '/env.php'));
    ok(!exists $env->{SESSION_ID} && !exists $env->{SESSION_USER_ID}, "$reader: nothing exported without a session");
    # a well-formed id that no store knows
    $env = ModTest::json($t->get($reader, '/env.php', {Cookie => 'PHPSESSID=' . ('q' x 32)}));
    ok(!exists $env->{SESSION_ID}, "$reader: nothing exported for an unknown id");
}

# Complex values: arrays and objects survive, scalars are exported as PHP prints them.
$t->start_servers(session_conf(export => [qw(top_int top_str complex)]));
for my $s (qw(apache nginx)) {
    my $r = $t->get($s, '/sessioncomplex.php?write=1');
    is($r->{status}, 200, "$s: complex session stored");
    my $sid = ModTest::cookie_from($r, 'PHPSESSID');
    for my $reader (qw(apache nginx)) {
        my $env = ModTest::json($t->get($reader, '/env.php', {Cookie => "PHPSESSID=$sid"}));
        is($env->{SESSION_ID}, $sid, "$reader reads the complex session written through $s");
        is($env->{SESSION_TOP_INT}, 7, "$reader: an int is exported");
        is($env->{SESSION_TOP_STR}, 'plain', "$reader: a string is exported");
        like($env->{SESSION_COMPLEX} // '', qr/^a:18:\{s:3:"int";i:42;/, "$reader: an array is exported as its serialize() text");
        ok(ModTest::json($t->get($reader, '/sessioncomplex.php', {Cookie => "PHPSESSID=$sid"}))->{match},
            "$reader: PHP still reads every type intact");
    }
}
done_testing();
