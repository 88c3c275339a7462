#!/usr/bin/perl
# What a sysadmin does: `make install DESTDIR=...` puts every module (Apache and nginx builds), the a2enmod .load/.conf files and the nginx
# load_module snippet in their Debian places, and `apache2 -t` / `nginx -t` accept the installed modules with the
# example configurations in conf/examples (and refuse a bad directive value with a message naming it).

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use File::Temp qw(tempdir);
use Test::More;

my $top = "$FindBin::Bin/../..";
my $builddir = $ENV{MODTEST_BUILDDIR} // $top;
my $dest = tempdir(CLEANUP => 1);
my $out = `make -s -C '$builddir' install DESTDIR='$dest' 2>&1`;
is($?, 0, 'make install DESTDIR=... succeeds') or diag($out);

my $apache_moddir = `apxs -q LIBEXECDIR`;
chomp $apache_moddir;
sub slurp { open my $fh, '<', $_[0] or return ''; local $/; return <$fh> }

my (%installed, $loads, $includes, $snippets) = ();
for my $m (qw(session_shared paywall promo booking)) {
    (my $dashed = $m) =~ tr/_/-/;
    my %f = (
        apache_so => "$dest$apache_moddir/mod_$m.so",
        nginx_so  => "$dest/usr/lib/nginx/modules/ngx_http_${m}_module.so",
        load      => "$dest/etc/apache2/mods-available/$m.load",
        conf      => "$dest/etc/apache2/mods-available/$m.conf",
        snippet   => "$dest/usr/share/nginx/modules-available/mod-http-$dashed.conf",
    );
    ok(-f $f{$_}, "$m: installed $_: $f{$_}") for sort keys %f;
    ok(!-e "$dest$apache_moddir/mod_$m.la", "$m: no libtool .la left next to the Apache module");
    like(slurp($f{load}), qr{^LoadModule ${m}_module \Q$apache_moddir\E/mod_$m\.so$}m, "$m: .load points at the installed module");
    like(slurp($f{snippet}), qr{^load_module /usr/lib/nginx/modules/ngx_http_${m}_module\.so;$}m,
        "$m: nginx snippet points at the installed module");
    (my $load = slurp($f{load})) =~ s{\Q$apache_moddir\E}{$dest$apache_moddir};
    $loads .= $load;
    $includes .= "Include $f{conf}\n";
    (my $snippet = slurp($f{snippet})) =~ s{/usr/lib/nginx/modules}{$dest/usr/lib/nginx/modules};
    $snippets .= $snippet;
    $installed{$m} = \%f;
}

# A --enable-sanitizers build links libasan: the servers need its runtime loaded first.
my $env = '';
if (slurp($installed{session_shared}{apache_so}) =~ /\0(libasan\.so(?:\.\d+)*)\0/) {
    my $lib = `gcc -print-file-name=$1`;
    chomp $lib;
    # detect_odr_violation=0: nginx modules all export ngx_modules etc. by design (see ModTest::_sanitizer_env)
    $env = "LD_PRELOAD=$lib ASAN_OPTIONS=detect_leaks=0:detect_odr_violation=0 ";
}

my $dir = tempdir(CLEANUP => 1);
sub write_file { my ($f, $c) = @_; open my $fh, '>', $f or die "$f: $!"; print $fh $c; close $fh; return $f }

# Apache: the installed .load files (moved under DESTDIR), then the example virtual host.
my $httpd_conf = write_file("$dir/httpd.conf", <<"CONF");
ServerName localhost
PidFile $dir/httpd.pid
ErrorLog $dir/error.log
Listen 127.0.0.1:80
<IfModule !mpm_event_module>
LoadModule mpm_event_module /usr/lib/apache2/modules/mod_mpm_event.so
</IfModule>
LoadModule authz_core_module /usr/lib/apache2/modules/mod_authz_core.so
LoadModule proxy_module /usr/lib/apache2/modules/mod_proxy.so
LoadModule proxy_fcgi_module /usr/lib/apache2/modules/mod_proxy_fcgi.so
LoadModule session_module /usr/lib/apache2/modules/mod_session.so
LoadModule alias_module /usr/lib/apache2/modules/mod_alias.so
LoadModule auth_basic_module /usr/lib/apache2/modules/mod_auth_basic.so
LoadModule authn_core_module /usr/lib/apache2/modules/mod_authn_core.so
LoadModule authn_file_module /usr/lib/apache2/modules/mod_authn_file.so
LoadModule authz_user_module /usr/lib/apache2/modules/mod_authz_user.so
$loads
$includes
Include $top/conf/examples/apache-vhost.conf
CONF
$out = `${env}apache2 -t -f '$httpd_conf' 2>&1`;
is($?, 0, 'apache2 -t accepts the installed module with conf/examples/apache-vhost.conf') or diag($out);
like($out, qr/Syntax OK/, 'apache2 says Syntax OK');

# nginx: the installed snippets (moved under DESTDIR), then the example server.
system("cp /etc/nginx/fastcgi_params '$dir/fastcgi_params'") == 0 or die;
my $nginx_conf = write_file("$dir/nginx.conf", <<"CONF");
$snippets
pid $dir/nginx.pid;
error_log $dir/nginx-error.log;
events {}
http {
    include $top/conf/examples/nginx-site.conf;
}
CONF
$out = `${env}nginx -t -p '$dir' -c '$nginx_conf' 2>&1`;
is($?, 0, 'nginx -t accepts the installed module with conf/examples/nginx-site.conf') or diag($out);
like($out, qr/test is successful/, 'nginx says the test is successful');

# Bad values are configuration errors that name the directive and the value.
(my $bad_httpd = slurp($httpd_conf)) =~ s{Include \S+apache-vhost\.conf}{SessionSharedIdleTimeout soon};
write_file("$dir/bad-httpd.conf", $bad_httpd);
$out = `${env}apache2 -t -f '$dir/bad-httpd.conf' 2>&1`;
isnt($?, 0, 'apache2 -t refuses SessionSharedIdleTimeout soon');
like($out, qr/SessionSharedIdleTimeout: invalid value "soon"/, 'and says which directive and value');

(my $bad_nginx = slurp($nginx_conf)) =~ s{include \S+nginx-site\.conf;}{session_shared_format yaml;};
write_file("$dir/bad-nginx.conf", $bad_nginx);
$out = `${env}nginx -t -p '$dir' -c '$dir/bad-nginx.conf' 2>&1`;
isnt($?, 0, 'nginx -t refuses session_shared_format yaml');
like($out, qr/invalid value "yaml".*session_shared_format|invalid value "yaml"/, 'and says which value');

($bad_httpd = slurp($httpd_conf)) =~ s{Include \S+apache-vhost\.conf}{PaywallMeter 3 fortnights};
write_file("$dir/bad-httpd2.conf", $bad_httpd);
$out = `${env}apache2 -t -f '$dir/bad-httpd2.conf' 2>&1`;
isnt($?, 0, 'apache2 -t refuses PaywallMeter 3 fortnights');
like($out, qr/PaywallMeter: invalid value "3 fortnights"/, 'and says which directive and value');
($bad_nginx = slurp($nginx_conf)) =~ s{include \S+nginx-site\.conf;}{paywall_fail_mode maybe;};
write_file("$dir/bad-nginx2.conf", $bad_nginx);
$out = `${env}nginx -t -p '$dir' -c '$dir/bad-nginx2.conf' 2>&1`;
isnt($?, 0, 'nginx -t refuses paywall_fail_mode maybe');
like($out, qr/invalid value "maybe"/, 'and says which value');

done_testing();
