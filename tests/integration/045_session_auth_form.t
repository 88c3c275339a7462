#!/usr/bin/perl
# Apache: mod_auth_form keeps its login in the PHP app's shared session through mod_session_shared: a login through
# the form handler stores the user in a session PHP reads (behind Apache and nginx), the protected location then
# admits the visitor by that session on every request, a wrong password stores nothing, and a logout ends the
# session. mod_auth_form is Apache's: nginx has no counterpart, it only reads the session here.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use ModTest;
use SessionSharedConf qw(session_conf);

my $t = ModTest->new(memcached => 3, php => 1);
# "editor" / "s3cret", hashed as htpasswd -B would (bcrypt), written by Apache's own tool
my $htpasswd = $t->prefix . '/htpasswd';
system('htpasswd', '-bcB', $htpasswd, 'editor', 's3cret') == 0 or die "htpasswd failed";
chmod 0644, $htpasswd;

my %conf = session_conf(export => [qw(members-user)]);
$conf{apache} .= qq{
<Location /dologin>
    SetHandler form-login-handler
    AuthType form
    AuthName members
    AuthFormProvider file
    AuthUserFile $htpasswd
    AuthFormLoginSuccessLocation /private/whoami.php
    Session On
</Location>
<Location /private>
    AuthType form
    AuthName members
    AuthFormProvider file
    AuthUserFile $htpasswd
    AuthFormLoginRequiredLocation /index.html
    Session On
    Require valid-user
</Location>
<Location /dologout>
    SetHandler form-logout-handler
    AuthName members
    AuthFormLogoutLocation /index.html
    Session On
</Location>
};
$t->start_servers(%conf);

is($t->get('apache', '/private/whoami.php')->{status}, 302, 'protected page without a session: sent to log in');

my $r = $t->post('apache', '/dologin', {httpd_username => 'editor', httpd_password => 'wrong'});
ok(!ModTest::cookie_from($r, 'PHPSESSID'), 'a wrong password stores no session');
cmp_ok($r->{status}, '>=', 400, "and is refused ($r->{status})");

$r = $t->post('apache', '/dologin', {httpd_username => 'editor', httpd_password => 's3cret'});
is($r->{status}, 302, 'login accepted');
my $sid = ModTest::cookie_from($r, 'PHPSESSID');
like($sid // '', qr/^[0-9a-v]{32}\z/, 'the login lives in a shared session with a CSPRNG id');

$r = $t->get('apache', '/private/whoami.php', {Cookie => "PHPSESSID=$sid"});
is($r->{status}, 200, 'the protected page admits the session');
is(ModTest::json($r)->{REMOTE_USER}, 'editor', 'as the user who logged in');

for my $s (qw(apache nginx)) {
    my $j = ModTest::json($t->get($s, '/session.php', {Cookie => "PHPSESSID=$sid"}));
    # mod_auth_form keys its values by AuthName: "members-user"
    is($j->{session}{'members-user'}, 'editor', "PHP behind $s reads the user mod_auth_form stored");
    is(ModTest::json($t->get($s, '/env.php', {Cookie => "PHPSESSID=$sid"}))->{SESSION_MEMBERS_USER}, 'editor',
        "$s exports it");
}

$r = $t->get('apache', '/dologout', {Cookie => "PHPSESSID=$sid"});
like($r->{status}, qr/^30[27]$/, 'logout redirects');
isnt($t->get('apache', '/private/whoami.php', {Cookie => "PHPSESSID=$sid"})->{status}, 200,
    'after logout the old session opens nothing');

done_testing();
