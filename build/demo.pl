#!/usr/bin/perl
# The demo: 3 memcached nodes, PostgreSQL, php-fpm, Apache on 127.0.0.1:8080 and nginx on 127.0.0.1:8081 in front
# of demo/app (log in through one server, continue through the other), with every built module loaded.
# Runs until Ctrl-C, then stops everything.
#
# The vhost/server snippets come from conf/demo/ when present (same placeholders as the tests: @MC@ @PG@ @DOCROOT@
# @FPM@ @TMP@ @APACHE_PORT@ @NGINX_PORT@):
#   apache.conf         inside <VirtualHost>          nginx.conf        inside server {}
#   apache-php.conf     inside the PHP <FilesMatch>   nginx-php.conf    inside location ~ \.php$ {}
#   apache-global.conf  main server config            nginx-http.conf   http {}        nginx-main.conf  main context
#
# usage: perl build/demo.pl [--apache-port 8080] [--nginx-port 8081]      (MODTEST_KEEP=1 keeps the logs)

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../tests/lib";

use Getopt::Long;
use Time::HiRes qw(sleep);
use ModTest;

$| = 1;
my %port = (apache => 8080, nginx => 8081);
GetOptions('apache-port=i' => \$port{apache}, 'nginx-port=i' => \$port{nginx})
    or die "usage: $0 [--apache-port N] [--nginx-port N]\n";

my $root = "$FindBin::Bin/..";
my $stop = 0;
# Ctrl-C is the normal way out here: set before ModTest->new so the harness keeps these handlers
$SIG{INT} = $SIG{TERM} = $SIG{HUP} = sub { $stop = 1 };

my %built = map { $_ => [glob(ModTest::modules_dir() . ($_ eq 'apache' ? '/apache/mod_*.so' : '/nginx/ngx_*_module.so'))] }
    qw(apache nginx);
my @skipped;

sub snippet {
    my ($name) = @_;
    my $f = "$root/conf/demo/$name.conf";
    return '' unless -f $f;
    my ($server) = $name =~ /^(apache|nginx)/;
    unless (@{$built{$server}}) {
        # their directives come from the modules: without them the server would not start
        push @skipped, "conf/demo/$name.conf";
        return '';
    }
    open my $fh, '<', $f or die "$f: $!\n";
    local $/;
    return <$fh>;
}

my $t = ModTest->new(
    memcached   => 3,
    postgres    => 1,
    php         => 1,
    docroot     => "$root/demo/app",
    apache_port => $port{apache},
    nginx_port  => $port{nginx},
    php_ini     => { 'session.cookie_httponly' => 1, 'session.cookie_samesite' => 'Lax',
        'session.use_strict_mode' => 1 },
);

my @loaded = map { s{.*/}{}r } @{$built{apache}}, @{$built{nginx}};
my @snippets = grep { -f "$root/conf/demo/$_.conf" && @{$built{/^(apache|nginx)/ && $1}} }
    qw(apache apache-php apache-global nginx nginx-php nginx-http nginx-main);

$t->start_servers(
    apache        => "SetEnv DEMO_APACHE_PORT \@APACHE_PORT\@\nSetEnv DEMO_NGINX_PORT \@NGINX_PORT\@\n"
        . snippet('apache'),
    apache_php    => snippet('apache-php'),
    apache_global => snippet('apache-global'),
    nginx         => snippet('nginx'),
    nginx_php     => "fastcgi_param DEMO_APACHE_PORT \@APACHE_PORT\@;\nfastcgi_param DEMO_NGINX_PORT \@NGINX_PORT\@;\n"
        . snippet('nginx-php'),
    nginx_http    => snippet('nginx-http'),
    nginx_main    => snippet('nginx-main'),
);

my $p = $t->prefix;
print <<"EOF";

  Shared sessions demo is running.

    Apache  http://127.0.0.1:$port{apache}/
    nginx   http://127.0.0.1:$port{nginx}/

  Log in on one, open the other: same session (memcached ${\ $t->mc_servers}).
  Modules loaded:  @{[ @loaded ? join(' ', @loaded) : 'none (build them: make)' ]}
  Demo snippets:   @{[ @snippets ? join(' ', map { "conf/demo/$_.conf" } @snippets) : 'none' ]}
@{[ @skipped ? "  Skipped:         @skipped (no module built for that server)\n" : '' ]}  PostgreSQL:      ${\ $t->pg_conninfo }
  Logs:            $p/{apache,nginx}/error.log, $p/php/error.log, $p/pg/postgres.log

  Ctrl-C stops everything.
EOF

while (!$stop) {
    sleep 0.5;
    my %dead = $t->check_processes;
    if (%dead) {
        print STDERR "\n$dead{$_}" for sort keys %dead;
        print STDERR "\nstopping: a service exited (logs kept in $p)\n";
        $ENV{MODTEST_KEEP} = 1;
        last;
    }
}
print "\nstopping...\n";
$t->stop;
exit 0;
