package ModTest;

# Integration-test harness: fresh memcached nodes, PostgreSQL, php-fpm, Apache httpd and nginx on free
# 127.0.0.1 ports under a temporary prefix, stopped at the end of the test file (even on die or Ctrl-C; a
# watchdog process kills them if the test process itself is killed). Modelled on nginx-tests' Test::Nginx and
# Apache::Test. Core Perl only.
#
#   use FindBin; use lib "$FindBin::Bin/../lib";
#   use Test::More;
#   use ModTest;
#
#   my $t = ModTest->new(memcached => 3, postgres => 1, php => 1);
#   $t->start_servers(apache => 'SessionShared On', nginx => 'session_shared on;');
#   for my $s ($t->servers) { my $r = $t->get($s, '/session.php?set=a&value=1'); ... }
#   done_testing();
#
# Constructor  ModTest->new(%opt)
#   memcached => N, postgres => 0|1, php => 0|1      services started now (default none)
#   php_ini => { key => value }                      extends/overrides the generated php.ini (undef deletes;
#                                                    \'raw' is written unquoted)
#   docroot => dir                                   default tests/integration/app (@DOCROOT@)
#   apache_port, nginx_port, fpm_port, pg_port, mc_ports => [...]   fixed ports instead of free ones
#   php_children => 4, fpm_pool => 'extra pool lines', nginx_workers => 1, servers => [...], load_modules => 1,
#   pg_max_connections => 50, nginx_worker_connections => 1024
# Servers      $t->start_servers(%opt)   (again: restarts them with the new configuration)
#   apache, nginx                 inside <VirtualHost> / server {}
#   apache_php, nginx_php         inside the PHP <FilesMatch> / location ~ \.php$ {}
#   apache_global, nginx_http, nginx_main     server config / http {} / main context
#   servers => ['apache'], load_modules => 0 (bare servers), php => 0 (no PHP wiring), nginx_workers => N
#   Placeholders in every snippet: @MC@ @PG@ @DOCROOT@ @FPM@ @TMP@ @APACHE_PORT@ @NGINX_PORT@
#   $t->stop_servers, $t->servers, $t->port($name), $t->url($server, $path)
# HTTP         $t->get($server, $path, \%headers), $t->post($server, $path, $body_or_hashref, \%headers),
#              $t->request($method, $server, $path, \%http_tiny_options), $t->ua (HTTP::Tiny, no redirects,
#              no keep-alive, 10 s); ModTest::cookie_from($res, $name), ModTest::set_cookie($res, $name)
#              (value and attributes), ModTest::json($res)
# memcached    nodes are numbered from 0: $t->mc_servers, mc_port($i), mc_count, mc_stop($i), mc_start($i) (same
#              port, data lost), mc_restart_all, mc_running($i), mc_get($i, $key) (value, or (value, flags) in
#              list context), mc_set($i, $key, $value, $flags, $exptime), mc_delete, mc_flush_all, mc_stat($name),
#              mc_session_key($session_id), mc_find($key) (nodes holding it)
# PostgreSQL   $t->pg_conninfo, pg_port, psql($sql, dbname => ..) (stdout, unaligned tuples; dies on error),
#              pg_stop, pg_start (data kept)
# php-fpm      $t->fpm ("127.0.0.1:port"), php_stop, php_start, php_restart(%ini_overrides)
# Logs         $t->error_log($what, $offset) for apache nginx php fpm postgres mc0.. (or a path in the prefix),
#              $t->php_error_log, log_mark($what) (size now, to pass as $offset later), log_path($what),
#              access_log($server), sanitizer_reports
# Other        $t->prefix, docroot, write_file($rel, $content), pids, check_processes, has_module($name),
#              startup_times, stop (also at END and DESTROY)
#
# The prefix (configs, logs, data) is removed at the end unless a test failed (its path is then printed with
# diag) or MODTEST_KEEP=1.
#
# Environment: MODTEST_KEEP=1 keeps the prefix (logs, configs) even when every test passed; MODTEST_DEBUG=1
# raises log levels (nginx `debug`, Apache `debug`, php-fpm `debug`, memcached -vv); MODTEST_MODULES points to
# the built modules (default <repo>/modules, holding apache/mod_*.so and nginx/ngx_*_module.so; each gets a
# LoadModule / load_module line); MODTEST_PRELOAD overrides the sanitizer runtime preloaded for modules built
# with --enable-sanitizers (detected from their libasan dependency); MODTEST_APACHE, MODTEST_NGINX,
# MODTEST_PHP_FPM, MODTEST_MEMCACHED, MODTEST_PG_BIN override the binaries.
#
# When run as root (CI), every service is told so: memcached -u nobody, php-fpm pool user nobody, Apache
# User/Group nobody/nogroup, nginx `user nobody nogroup`, PostgreSQL initdb/pg_ctl through
# `runuser -u postgres --` with its directory owned by postgres.

use strict;
use warnings;

use Carp qw(croak);
use Cwd qw(abs_path);
use Fcntl qw(:flock :mode);
use File::Basename qw(dirname basename);
use File::Copy qw(copy);
use File::Find qw(find);
use File::Path qw(make_path remove_tree);
use File::Spec;
use File::Temp qw(tempdir);
use HTTP::Tiny;
use IO::Socket::INET;
use JSON::PP;
use POSIX qw(WNOHANG _exit setpgid);
use Scalar::Util qw(weaken refaddr);
use Time::HiRes qw(sleep time);

our $VERSION = '0.1';

our $REPO = abs_path(dirname(abs_path(__FILE__)) . '/../..');
our $START_TIMEOUT = 10;

our %BIN = (
    apache    => $ENV{MODTEST_APACHE}    // '/usr/sbin/apache2',
    nginx     => $ENV{MODTEST_NGINX}     // '/usr/sbin/nginx',
    php_fpm   => $ENV{MODTEST_PHP_FPM}   // '/usr/sbin/php-fpm8.2',
    memcached => $ENV{MODTEST_MEMCACHED} // '/usr/bin/memcached',
    pg        => $ENV{MODTEST_PG_BIN}    // '/usr/lib/postgresql/15/bin',
    runuser   => '/usr/sbin/runuser',
);
our $APACHE_MODDIR = $ENV{MODTEST_APACHE_MODDIR} // '/usr/lib/apache2/modules';
our @APACHE_MODULES = qw(mpm_event authz_core authn_core auth_basic authn_file authz_user mime dir log_config env
    setenvif rewrite headers alias proxy proxy_fcgi session session_cookie request auth_form);

my $IS_ROOT = $> == 0;
my $DEBUG = $ENV{MODTEST_DEBUG} ? 1 : 0;

# users the services drop to when the harness runs as root
our $RUN_USER = 'nobody';
our $PG_USER = 'postgres';

my %LIVE;          # refaddr => weak ref of every instance, for END
my %SAN_REPORTS;   # sanitizer reports found when instances stopped
my @PREFIXES;      # prefixes created by this process, removed at END unless a test failed
my ($GUARD_PID, $GUARD_FH, $GUARD_OWNER);

sub modules_dir { $ENV{MODTEST_MODULES} // "$REPO/modules" }

##############################################################################
# construction

sub new {
    my ($class, %o) = @_;
    my $self = bless {
        owner     => $$,
        opt       => \%o,
        procs     => {},
        ports     => {},
        locks     => [],
        mc        => [],
        started   => [],
        php_ini   => $o{php_ini} // {},
        docroot   => $o{docroot} // "$REPO/tests/integration/app",
    }, $class;
    for my $fixed (grep { defined } @o{qw(apache_port nginx_port fpm_port pg_port)}, @{$o{mc_ports} // []}) {
        croak "port $fixed is in use" unless _bindable($fixed);
    }
    $LIVE{refaddr $self} = $self;
    weaken $LIVE{refaddr $self};
    _install_signal_handlers();
    _guardian_start();

    $self->{prefix} = _make_prefix();
    push @PREFIXES, [$self->{prefix}, $$];
    $self->{t0} = time;

    if ($IS_ROOT) {
        my @pw = getpwnam($RUN_USER) or croak "no user $RUN_USER";
        $self->{run_uid} = $pw[2];
        $self->{run_gid} = $pw[3];
        $self->{run_group} = getgrgid($pw[3]) // $pw[3];
    }

    croak "docroot $self->{docroot} does not exist" unless -d $self->{docroot};
    $self->{docroot} = abs_path($self->{docroot});
    if ($IS_ROOT && !_traversable($self->{docroot})) {
        # php-fpm workers run as nobody: give them a copy they can read
        my $copy = "$self->{prefix}/docroot";
        _copy_tree($self->{docroot}, $copy);
        $self->{docroot} = $copy;
    }

    # ports: fixed ones are checked, others picked free and locked for this process' lifetime
    my $n_mc = $o{memcached} // 0;
    for my $i (0 .. $n_mc - 1) {
        push @{$self->{mc}}, { port => $self->_port($o{mc_ports} ? $o{mc_ports}[$i] : undef) };
    }
    $self->{ports}{apache} = $self->_port($o{apache_port});
    $self->{ports}{nginx}  = $self->_port($o{nginx_port});
    $self->{ports}{fpm}    = $self->_port($o{fpm_port}) if $o{php};
    $self->{ports}{pg}     = $self->_port($o{pg_port}) if $o{postgres};

    my $ok = eval {
        # spawn the quick ones first, initdb (the slow part) while they come up, then wait for all
        $self->mc_start($_, nowait => 1) for 0 .. $n_mc - 1;
        $self->_php_start(nowait => 1) if $o{php};
        $self->_pg_init if $o{postgres};
        $self->_wait_port("memcached $_", $self->{mc}[$_]{port}, "mc$_") for 0 .. $n_mc - 1;
        $self->_wait_port('php-fpm', $self->{ports}{fpm}, 'fpm') if $o{php};
        1;
    };
    unless ($ok) {
        my $err = $@;
        $self->stop;
        die $err;
    }
    $self->{startup}{backends} = time - $self->{t0};
    return $self;
}

sub prefix { $_[0]{prefix} }
sub docroot { $_[0]{docroot} }
sub port { my ($self, $what) = @_; return $self->{ports}{$what} }
sub is_root { $IS_ROOT }
# the servers run with the AddressSanitizer runtime (a --enable-sanitizers build)
sub sanitized { $_[0]{sanitized} ? 1 : 0 }
sub startup_times { %{$_[0]{startup} // {}} }

# true when the project's module NAME is built for both servers (or for the one named)
sub has_module {
    my ($self, $name, $server) = @_;
    my $dir = modules_dir();
    my %f = (apache => "$dir/apache/mod_$name.so", nginx => "$dir/nginx/ngx_http_${name}_module.so");
    return -f $f{$server} if $server;
    return -f $f{apache} && -f $f{nginx};
}

##############################################################################
# memcached

sub mc_servers {
    my ($self) = @_;
    return join ',', map { "127.0.0.1:$_->{port}" } @{$self->{mc}};
}

sub mc_port { $_[0]{mc}[$_[1]]{port} }
sub mc_count { scalar @{$_[0]{mc}} }

sub mc_start {
    my ($self, $i, %o) = @_;
    my $node = $self->{mc}[$i] or croak "no memcached node $i";
    return if $self->{procs}{"mc$i"};
    my @cmd = ($BIN{memcached}, '-l', '127.0.0.1', '-p', $node->{port}, '-U', '0', '-m', '64', '-t', '2');
    push @cmd, '-u', $RUN_USER if $IS_ROOT;
    push @cmd, '-vv' if $DEBUG;
    $self->_spawn("mc$i", "$self->{prefix}/memcached/mc$i.log", @cmd);
    $self->_wait_port("memcached $i", $node->{port}, "mc$i") unless $o{nowait};
    return 1;
}

sub mc_stop {
    my ($self, $i) = @_;
    croak "no memcached node $i" unless $self->{mc}[$i];
    $self->_stop_proc("mc$i");
    return 1;
}

sub mc_restart_all {
    my ($self) = @_;
    $self->mc_stop($_) for 0 .. $#{$self->{mc}};
    $self->mc_start($_, nowait => 1) for 0 .. $#{$self->{mc}};
    $self->_wait_port("memcached $_", $self->{mc}[$_]{port}, "mc$_") for 0 .. $#{$self->{mc}};
    return 1;
}

sub mc_running { my ($self, $i) = @_; return $self->{procs}{"mc$i"} ? 1 : 0 }

# one request/response on node $i over the text protocol; reads until $done->($buf) is true
sub _mc_talk {
    my ($self, $i, $req, $done) = @_;
    my $node = $self->{mc}[$i] or croak "no memcached node $i";
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $node->{port}, Proto => 'tcp',
        Timeout => 2) or croak "memcached $i (port $node->{port}): $!";
    $s->autoflush(1);
    print $s $req;
    my $buf = '';
    my $deadline = time + 5;
    until ($done->($buf)) {
        croak "memcached $i: timeout, got '$buf'" if time > $deadline;
        my $n = sysread($s, $buf, 65536, length $buf);
        croak "memcached $i: read: $!" unless defined $n;
        croak "memcached $i: connection closed, got '$buf'" if $n == 0;
    }
    close $s;
    croak "memcached $i: $buf" if $buf =~ /^(?:ERROR|CLIENT_ERROR|SERVER_ERROR)/;
    return $buf;
}

sub _mc_line { $_[0] =~ /\r\n/ }

# value (and flags in list context) of $key on node $i, undef when absent
sub mc_get {
    my ($self, $i, $key) = @_;
    my $buf = $self->_mc_talk($i, "get $key\r\n", sub {
        my ($b) = @_;
        return $b =~ /^VALUE \S+ \d+ (\d+)\r\n/ ? length($b) >= length($&) + $1 + 7 : _mc_line($b);
    });
    return unless $buf =~ /^VALUE \S+ (\d+) (\d+)\r\n/;
    my ($flags, $len) = ($1, $2);
    my $value = substr($buf, length($&), $len);
    return wantarray ? ($value, $flags) : $value;
}

sub mc_set {
    my ($self, $i, $key, $value, $flags, $exptime) = @_;
    $flags //= 0;
    $exptime //= 0;
    my $buf = $self->_mc_talk($i, "set $key $flags $exptime " . length($value) . "\r\n$value\r\n", \&_mc_line);
    return $buf eq "STORED\r\n" ? 1 : 0;
}

sub mc_delete {
    my ($self, $i, $key) = @_;
    return $self->_mc_talk($i, "delete $key\r\n", \&_mc_line) eq "DELETED\r\n" ? 1 : 0;
}

sub mc_flush_all {
    my ($self) = @_;
    $self->_mc_talk($_, "flush_all\r\n", \&_mc_line) for grep { $self->mc_running($_) } 0 .. $#{$self->{mc}};
    return 1;
}

# a counter of memcached's "stats" (e.g. cmd_get) summed over the running nodes
sub mc_stat {
    my ($self, $name) = @_;
    my $total = 0;
    for my $i (grep { $self->mc_running($_) } 0 .. $#{$self->{mc}}) {
        my $out = $self->_mc_talk($i, "stats\r\n", sub { $_[0] =~ /^END\r\n/m });
        $total += $1 if $out =~ /^STAT \Q$name\E (\d+)\r$/m;
    }
    return $total;
}

# memcached key php-memcached uses for session $id
sub mc_session_key {
    my ($self, $id) = @_;
    return ($self->{php_ini}{'memcached.sess_prefix'} // 'memc.sess.key.') . $id;
}

# indexes of the running nodes that hold $key
sub mc_find {
    my ($self, $key) = @_;
    return grep { $self->mc_running($_) && defined $self->mc_get($_, $key) } 0 .. $#{$self->{mc}};
}

##############################################################################
# PostgreSQL

sub pg_conninfo {
    my ($self) = @_;
    croak 'postgres was not started (new(postgres => 1))' unless $self->{ports}{pg};
    return "host=127.0.0.1 port=$self->{ports}{pg} dbname=modtest user=postgres";
}

sub pg_port { $_[0]{ports}{pg} }

sub _pg_dir { "$_[0]{prefix}/pg" }

sub _pg_cmd {
    my ($self, @cmd) = @_;
    return $IS_ROOT ? ($BIN{runuser}, '-u', $PG_USER, '--', @cmd) : @cmd;
}

sub _pg_init {
    my ($self) = @_;
    my $dir = $self->_pg_dir;
    make_path($dir);
    chmod 0700, $dir;
    if ($IS_ROOT) {
        my @pw = getpwnam($PG_USER) or croak "no user $PG_USER to run PostgreSQL as";
        chown $pw[2], $pw[3], $dir or croak "chown $dir: $!";
    }
    my $log = "$self->{prefix}/pg_ctl.log";
    my $rc = $self->_run($log, $self->_pg_cmd("$BIN{pg}/initdb", '-D', "$dir/data", '-U', 'postgres',
        '--auth=trust', '--no-sync', '-E', 'UTF8', '--locale=C.UTF-8'));
    croak "initdb failed:\n" . _tail($log, 30) if $rc;
    $self->pg_start;
    my $out = $self->psql('CREATE DATABASE modtest', dbname => 'postgres');
    return 1;
}

sub pg_start {
    my ($self) = @_;
    return if $self->{pg_pid};
    my $dir = $self->_pg_dir;
    my $port = $self->{ports}{pg};
    my $log = "$self->{prefix}/pg_ctl.log";
    my $opts = join ' ', "-p $port", "-k $dir", '-c listen_addresses=127.0.0.1', '-c fsync=off',
        '-c synchronous_commit=off', '-c full_page_writes=off',
        '-c max_connections=' . ($self->{opt}{pg_max_connections} // 50);
    my $rc = $self->_run($log, $self->_pg_cmd("$BIN{pg}/pg_ctl", '-D', "$dir/data", '-l', "$dir/postgres.log",
        '-w', '-t', $START_TIMEOUT, '-o', $opts, 'start'));
    if ($rc) {
        # a postmaster that came up too late still has to go
        if (open my $fh, '<', "$dir/data/postmaster.pid") {
            chomp(my $pid = <$fh> // '');
            kill 'QUIT', $pid if $pid =~ /^\d+\z/;
        }
        croak "postgres did not start:\n" . _tail($log, 10) . _tail("$dir/postgres.log", 20);
    }
    open my $fh, '<', "$dir/data/postmaster.pid" or croak "postmaster.pid: $!";
    chomp(my $pid = <$fh>);
    $self->{pg_pid} = $pid;
    _guard("pid $pid QUIT");
    return 1;
}

sub pg_stop {
    my ($self) = @_;
    my $pid = delete $self->{pg_pid} or return;
    my $dir = $self->_pg_dir;
    my $rc = $self->_run("$self->{prefix}/pg_ctl.log",
        $self->_pg_cmd("$BIN{pg}/pg_ctl", '-D', "$dir/data", '-w', '-t', 10, '-m', 'fast', 'stop'));
    if ($rc || _alive($pid)) {
        kill 'QUIT', $pid;
        my $deadline = time + 5;
        sleep 0.02 while _alive($pid) && time < $deadline;
        kill 'KILL', $pid if _alive($pid);
    }
    _guard("unpid $pid");
    return 1;
}

# runs SQL through psql (unaligned, tuples only, stop on error) and returns its stdout; dies on error
sub psql {
    my ($self, $sql, %o) = @_;
    my $file = "$self->{prefix}/psql.sql";
    _write($file, $sql);
    my @cmd = ("$BIN{pg}/psql", '-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-h', '127.0.0.1',
        '-p', $self->{ports}{pg} // croak('postgres was not started'), '-U', 'postgres',
        '-d', $o{dbname} // 'modtest', '-f', $file, @{$o{args} // []});
    # The statements are UTF-8 whatever the locale the tests run under.
    local $ENV{PGCLIENTENCODING} = 'UTF8';
    my ($rc, $out, $err) = $self->_capture(@cmd);
    croak "psql failed ($rc): $err" if $rc;
    return $out;
}

##############################################################################
# php-fpm

sub _php_ini_defaults {
    my ($self) = @_;
    my $p = $self->{prefix};
    my %ini = (
        'error_reporting'        => 'E_ALL',
        # php-fpm treats display_errors=stderr like On (only cli/cgi write to stderr): errors would land in
        # response bodies and break headers, so they go to the log file only
        'display_errors'         => 'Off',
        'display_startup_errors' => 'On',
        'log_errors'             => 'On',
        'html_errors'            => 'Off',
        'error_log'              => "$p/php/error.log",
        'date.timezone'          => 'UTC',
        'opcache.revalidate_freq' => '0',
        'session.gc_probability' => '0',
    );
    if (@{$self->{mc}}) {
        %ini = (%ini,
            'session.save_handler'                 => 'memcached',
            'session.save_path'                    => $self->mc_servers,
            'memcached.sess_binary_protocol'       => '1',
            'memcached.sess_consistent_hash'       => '1',
            'memcached.sess_number_of_replicas'    => '1',
            'memcached.sess_remove_failed_servers' => '1',
            'memcached.sess_server_failure_limit'  => '1',
            'memcached.sess_connect_timeout'       => '200',
        );
    } else {
        %ini = (%ini, 'session.save_handler' => 'files', 'session.save_path' => "$p/php/sessions");
    }
    return %ini;
}

sub _ini_value {
    my ($v) = @_;
    return $$v if ref $v eq 'SCALAR';          # \'E_ALL & ~E_NOTICE': written as is
    return $v if $v =~ m{^[A-Za-z0-9_.:/,@+\-]*\z};
    $v =~ s/(["\\])/\\$1/g;
    return qq("$v");
}

sub _php_start {
    my ($self, %o) = @_;
    my $p = $self->{prefix};
    my $dir = "$p/php";
    make_path($dir, "$dir/sessions");
    my %ini = ($self->_php_ini_defaults, %{$self->{php_ini}});
    delete $ini{$_} for grep { !defined $ini{$_} } keys %ini;
    _write("$dir/php.ini", "; generated by ModTest\n"
        . join('', map { "$_ = " . _ini_value($ini{$_}) . "\n" } sort keys %ini));
    _write("$dir/error.log", '');
    if ($IS_ROOT) {
        chown $self->{run_uid}, $self->{run_gid}, "$dir/error.log", "$dir/sessions";
    }
    my $children = $self->{opt}{php_children} // 4;
    my $fpm = "; generated by ModTest\n[global]\npid = $dir/fpm.pid\nerror_log = $dir/fpm.log\n"
        . 'log_level = ' . ($DEBUG ? 'debug' : 'notice') . "\ndaemonize = no\n\n[modtest]\n"
        . ($IS_ROOT ? "user = $RUN_USER\ngroup = $self->{run_group}\n" : '')
        . "listen = 127.0.0.1:$self->{ports}{fpm}\nlisten.allowed_clients = 127.0.0.1\n"
        . "pm = static\npm.max_children = $children\ncatch_workers_output = yes\n"
        . "decorate_workers_output = no\nclear_env = yes\n"
        . ($self->{opt}{fpm_pool} // '');
    _write("$dir/php-fpm.conf", $fpm);
    $self->_spawn('fpm', "$dir/fpm.stderr.log", $BIN{php_fpm}, '-F', '-y', "$dir/php-fpm.conf",
        '-c', "$dir/php.ini");
    $self->_wait_port('php-fpm', $self->{ports}{fpm}, 'fpm') unless $o{nowait};
    return 1;
}

sub php_start { my ($self) = @_; return $self->_php_start }

# restarts php-fpm, with php_ini entries merged into the current ones (undef removes an entry)
sub php_restart {
    my ($self, %ini) = @_;
    croak 'php-fpm was not started (new(php => 1))' unless $self->{ports}{fpm};
    $self->_stop_proc('fpm');
    $self->{php_ini} = { %{$self->{php_ini}}, %ini };
    return $self->_php_start;
}
sub php_stop { my ($self) = @_; return $self->_stop_proc('fpm') }

sub fpm { my ($self) = @_; return "127.0.0.1:$self->{ports}{fpm}" }

##############################################################################
# Apache and nginx

sub start_servers {
    my ($self, %o) = @_;
    my @want = @{$o{servers} // $self->{opt}{servers} // [qw(apache nginx)]};
    $self->stop_servers;
    $self->{server_opt} = \%o;
    my $t0 = time;
    my $ok = eval {
        for my $s (@want) {
            croak "unknown server $s" unless $s eq 'apache' || $s eq 'nginx';
            my $m = "_${s}_spawn";
            $self->$m(%o);
        }
        $self->_wait_http($_) for @want;
        1;
    };
    unless ($ok) {
        my $err = $@;
        $self->stop_servers;    # not half started
        die $err;
    }
    $self->{started} = [grep { my $s = $_; grep { $_ eq $s } @want } qw(apache nginx)];
    $self->{startup}{servers} = time - $t0;
    return $self;
}

sub stop_servers {
    my ($self) = @_;
    $self->_stop_procs(qw(nginx apache));
    $self->{started} = [];
    return 1;
}

sub servers { @{$_[0]{started}} }

sub _subst {
    my ($self, $text) = @_;
    return '' unless defined $text;
    my %v = (
        MC          => $self->mc_servers,
        DOCROOT     => $self->{docroot},
        TMP         => $self->{prefix},
        APACHE_PORT => $self->{ports}{apache},
        NGINX_PORT  => $self->{ports}{nginx},
    );
    $v{FPM} = $self->fpm if $self->{ports}{fpm};
    $v{PG} = $self->pg_conninfo if $self->{ports}{pg};
    $text =~ s{\@(MC|PG|DOCROOT|FPM|TMP|APACHE_PORT|NGINX_PORT)\@}{
        defined $v{$1} ? $v{$1} : croak "snippet uses \@$1\@ but that service was not started"
    }ge;
    return $text;
}

sub _project_modules {
    my ($self, $server, %o) = @_;
    my $load = $o{load_modules} // $self->{opt}{load_modules} // 1;
    return () unless $load;
    my $dir = modules_dir();
    return $server eq 'apache'
        ? sort glob("$dir/apache/mod_*.so")
        : sort glob("$dir/nginx/ngx_*_module.so");
}

sub _apache_spawn {
    my ($self, %o) = @_;
    my $p = $self->{prefix};
    my $dir = "$p/apache";
    make_path("$dir/run");
    my $port = $self->{ports}{apache};
    my $conf = "# generated by ModTest\n"
        . "ServerRoot \"$dir\"\nServerName 127.0.0.1\nListen 127.0.0.1:$port\n"
        . "PidFile \"$dir/httpd.pid\"\nDefaultRuntimeDir \"$dir/run\"\n"
        . "ErrorLog \"$dir/error.log\"\nLogLevel " . ($DEBUG ? 'debug' : 'info') . "\n\n";
    # Debian builds some (log_config) into the binary: load only what is not there already
    $conf .= "<IfModule !${_}_module>\n    LoadModule ${_}_module \"$APACHE_MODDIR/mod_$_.so\"\n</IfModule>\n"
        for @APACHE_MODULES;
    for my $so ($self->_project_modules('apache', %o)) {
        (my $name = basename($so)) =~ s/^mod_(.*)\.so\z/$1/;
        $conf .= "LoadModule ${name}_module \"$so\"\n";
    }
    $conf .= "\n" . ($IS_ROOT ? "User $RUN_USER\nGroup $self->{run_group}\n" : '') . <<"EOF";
StartServers 1
ServerLimit 2
ThreadLimit 16
ThreadsPerChild 16
MaxRequestWorkers 32
MinSpareThreads 4
MaxSpareThreads 32
Timeout 30
KeepAlive On
HostnameLookups Off
TypesConfig /etc/mime.types
DirectoryIndex index.html index.php
LogFormat "%h %l %u %t \\"%r\\" %>s %b %D \\"%{Cookie}i\\"" modtest
CustomLog "$dir/access.log" modtest

<Directory />
    AllowOverride None
    Require all denied
</Directory>
<Directory "$self->{docroot}">
    Require all granted
</Directory>
EOF
    $conf .= "\n" . $self->_subst($o{apache_global}) . "\n";
    $conf .= "<VirtualHost 127.0.0.1:$port>\n    ServerName 127.0.0.1\n    DocumentRoot \"$self->{docroot}\"\n";
    if ($self->{ports}{fpm} && ($o{php} // 1)) {
        $conf .= "    <FilesMatch \"\\.php\$\">\n        SetHandler \"proxy:fcgi://" . $self->fpm . "\"\n"
            . _indent($self->_subst($o{apache_php}), 8) . "    </FilesMatch>\n";
    }
    $conf .= _indent($self->_subst($o{apache}), 4) . "</VirtualHost>\n";
    _write("$dir/httpd.conf", $conf);
    $self->_spawn('apache', "$dir/stderr.log", { $self->_sanitizer_env('apache', %o) }, $BIN{apache}, '-f', "$dir/httpd.conf", '-DFOREGROUND');
    return 1;
}

sub _nginx_spawn {
    my ($self, %o) = @_;
    my $p = $self->{prefix};
    my $dir = "$p/nginx";
    make_path($dir);
    my $port = $self->{ports}{nginx};
    my $conf = "# generated by ModTest\n";
    $conf .= "load_module \"$_\";\n" for $self->_project_modules('nginx', %o);
    $conf .= ($IS_ROOT ? "user $RUN_USER $self->{run_group};\n" : '')
        . 'worker_processes ' . ($o{nginx_workers} // $self->{opt}{nginx_workers} // 1) . ";\n"
        . "pid $dir/nginx.pid;\n"
        . "error_log $dir/error.log " . ($DEBUG ? 'debug' : 'info') . ";\n"
        . $self->_subst($o{nginx_main}) . "\n"
        . "events {\n    worker_connections " . ($o{nginx_worker_connections} // 1024) . ";\n}\n\nhttp {\n"
        . "    include /etc/nginx/mime.types;\n    default_type application/octet-stream;\n"
        . "    access_log $dir/access.log;\n";
    $conf .= "    ${_}_temp_path $dir/${_}_temp;\n" for qw(client_body proxy fastcgi uwsgi scgi);
    $conf .= _indent($self->_subst($o{nginx_http}), 4) . "\n"
        . "    server {\n        listen 127.0.0.1:$port;\n        server_name 127.0.0.1 localhost;\n"
        . "        root $self->{docroot};\n        index index.html index.php;\n\n"
        . _indent($self->_subst($o{nginx}), 8);
    if ($self->{ports}{fpm} && ($o{php} // 1)) {
        $conf .= "\n        location ~ \\.php\$ {\n            fastcgi_pass " . $self->fpm . ";\n"
            . "            include /etc/nginx/fastcgi_params;\n"
            . "            fastcgi_param SCRIPT_FILENAME \$document_root\$fastcgi_script_name;\n"
            . _indent($self->_subst($o{nginx_php}), 12) . "        }\n";
    }
    $conf .= "    }\n}\n";
    _write("$dir/nginx.conf", $conf);
    $self->_spawn('nginx', "$dir/stderr.log", { $self->_sanitizer_env('nginx', %o) }, $BIN{nginx}, '-p', "$dir/", '-e', "$dir/error.log",
        '-c', "$dir/nginx.conf", '-g', 'daemon off;');
    return 1;
}

# Modules built with --enable-sanitizers (gcc: libasan linked dynamically) only load into a server started with
# the ASan runtime preloaded. Reports go to <prefix>/sanitizer/report.PID; the test fails when there are any.
# MODTEST_PRELOAD overrides the library to preload.
sub _sanitizer_env {
    my ($self, $server, %o) = @_;
    my $preload = $ENV{MODTEST_PRELOAD};
    unless (defined $preload) {
        for my $so ($self->_project_modules($server, %o)) {
            open my $fh, '<:raw', $so or next;
            local $/;
            my $bin = <$fh>;
            if ($bin =~ /\0(libasan\.so(?:\.\d+)*)\0/) {
                $preload = $1;
                last;
            }
        }
    }
    return () unless $preload;
    my $dir = "$self->{prefix}/sanitizer";
    make_path($dir);
    # workers run as nobody when root and write their own reports
    chown $self->{run_uid}, $self->{run_gid}, $dir if $IS_ROOT;
    my $log = "$dir/report";
    $self->{sanitized} = 1;
    # nginx's dynamic-module ABI has every module export the same globals (ngx_modules, ngx_module_names,
    # ngx_module_order), which nginx reads per module with dlsym: by design, not a one-definition-rule bug.
    my $odr = $server eq 'nginx' ? 'detect_odr_violation=0:' : '';
    return (
        LD_PRELOAD   => $preload,
        # servers free little at exit by design: leak reports would only be noise
        ASAN_OPTIONS => "detect_leaks=0:abort_on_error=0:${odr}log_path=$log:" . ($ENV{ASAN_OPTIONS} // ''),
        UBSAN_OPTIONS => "print_stacktrace=1:log_path=$log:" . ($ENV{UBSAN_OPTIONS} // ''),
    );
}

# sanitizer reports written so far (file => content)
sub sanitizer_reports {
    my ($self) = @_;
    my %r;
    for my $f (glob("$self->{prefix}/sanitizer/report.*")) {
        open my $fh, '<', $f or next;
        local $/;
        $r{$f} = <$fh> // '';
    }
    return %r;
}

sub _indent {
    my ($text, $n) = @_;
    return '' unless defined $text && length $text;
    my $pad = ' ' x $n;
    my $out = join '', map { length($_) ? "$pad$_\n" : "\n" } split /\n/, $text;
    return $out;
}

sub _wait_http {
    my ($self, $server) = @_;
    my $ua = HTTP::Tiny->new(timeout => 1, max_redirect => 0, keep_alive => 0);
    my $url = $self->url($server, '/');
    my $deadline = time + $START_TIMEOUT;
    while (1) {
        $self->_check_alive($server);
        my $r = $ua->get($url);
        return 1 unless $r->{status} == 599;
        if (time > $deadline) {
            die "$server did not start within $START_TIMEOUT s ($r->{content})\n" . $self->_log_tails($server);
        }
        sleep 0.02;
    }
}

##############################################################################
# HTTP

sub url {
    my ($self, $server, $path) = @_;
    my $port = $self->{ports}{$server} // croak "unknown server $server";
    $path //= '/';
    $path = "/$path" unless $path =~ m{^/};
    return "http://127.0.0.1:$port$path";
}

sub ua {
    my ($self) = @_;
    return $self->{ua} //= HTTP::Tiny->new(timeout => 10, max_redirect => 0, keep_alive => 0,
        agent => "ModTest/$VERSION");
}

sub request {
    my ($self, $method, $server, $path, $opt) = @_;
    return $self->ua->request($method, $self->url($server, $path), $opt // {});
}

sub get {
    my ($self, $server, $path, $headers) = @_;
    return $self->request('GET', $server, $path, { headers => $headers // {} });
}

sub post {
    my ($self, $server, $path, $body, $headers) = @_;
    my %h = %{$headers // {}};
    if (ref $body) {
        $body = $self->ua->www_form_urlencode($body);
    }
    $h{'Content-Type'} //= 'application/x-www-form-urlencoded'
        unless grep { lc $_ eq 'content-type' } keys %h;
    return $self->request('POST', $server, $path, { headers => \%h, content => $body // '' });
}

# value of cookie $name set by a response (the last Set-Cookie for it), undef when not set
# Calls $cond every 50 ms until it returns true or $secs have passed; returns its last value.
sub polled {
    my ($secs, $cond) = @_;
    my $deadline = time + $secs;
    while (1) {
        my $v = $cond->();
        return $v if $v || time > $deadline;
        sleep 0.05;
    }
}

sub cookie_from {
    my ($res, $name) = @_;
    my $c = set_cookie($res, $name);
    return $c ? $c->{value} : undef;
}

# { value => ..., attribute (lower case) => value or 1 } of the last Set-Cookie for $name
sub set_cookie {
    my ($res, $name) = @_;
    my $h = $res->{headers}{'set-cookie'};
    my @all = ref $h ? @$h : defined $h ? ($h) : ();
    my $found;
    for my $line (@all) {
        my ($pair, @attrs) = split /;\s*/, $line;
        my ($n, $v) = split /=/, $pair, 2;
        next unless defined $n && $n eq $name;
        $found = { value => $v // '' };
        for (@attrs) {
            my ($k, $av) = split /=/, $_, 2;
            $found->{lc $k} = $av // 1;
        }
    }
    return $found;
}

# decoded JSON body of a response (dies with the body when it is not JSON)
sub json {
    my ($res) = @_;
    my $d = eval { JSON::PP->new->utf8->allow_nonref->decode($res->{content}) };
    die "not JSON ($res->{status}): $res->{content}\n" unless defined $d || !$@;
    return $d;
}

##############################################################################
# logs

my %LOGS = (
    apache   => 'apache/error.log',
    nginx    => 'nginx/error.log',
    php      => 'php/error.log',
    fpm      => 'php/fpm.log',
    postgres => 'pg/postgres.log',
);

sub log_path {
    my ($self, $what) = @_;
    return "$self->{prefix}/memcached/$what.log" if $what =~ /^mc\d+\z/;
    return "$self->{prefix}/$what" unless $LOGS{$what};
    return "$self->{prefix}/$LOGS{$what}";
}

# content of a log (from byte $offset, e.g. a value of log_mark taken earlier)
sub error_log {
    my ($self, $what, $offset) = @_;
    my $f = $self->log_path($what);
    open my $fh, '<', $f or return '';
    local $/;
    seek $fh, $offset, 0 if $offset;
    my $c = <$fh>;
    return $c // '';
}

sub log_mark { my ($self, $what) = @_; return -s $self->log_path($what) // 0 }
sub php_error_log { $_[0]->error_log('php', $_[1]) }
sub access_log { my ($self, $server) = @_; return $self->error_log("$server/access.log") }

sub write_file {
    my ($self, $rel, $content) = @_;
    my $f = "$self->{prefix}/$rel";
    make_path(dirname($f));
    _write($f, $content);
    return $f;
}

sub _log_tails {
    my ($self, $what) = @_;
    my @f = $what eq 'apache' || $what eq 'nginx'
        ? ($self->log_path($what), "$self->{prefix}/$what/stderr.log")
        : $what eq 'fpm' ? ($self->log_path('fpm'), "$self->{prefix}/php/fpm.stderr.log")
        : ($self->log_path($what));
    return join '', map { _tail($_, 20) } @f;
}

##############################################################################
# stopping

sub pids {
    my ($self) = @_;
    my %p = map { $_ => $self->{procs}{$_}{pid} } keys %{$self->{procs}};
    $p{postgres} = $self->{pg_pid} if $self->{pg_pid};
    return %p;
}

sub stop {
    my ($self) = @_;
    return unless $self->{owner} == $$;
    local ($?, $!, $@);
    my @names = keys %{$self->{procs}};
    kill 'TERM', $self->{procs}{$_}{pid} for grep { !/^mc\d/ } @names;    # all at once: saves time
    eval { $self->pg_stop };
    $self->_stop_procs(@names);
    $self->{started} = [];
    if ($self->{sanitized}) {
        my %rep = $self->sanitizer_reports;
        @SAN_REPORTS{keys %rep} = values %rep;
    }
    return 1;
}

sub DESTROY {
    my ($self) = @_;
    $self->stop if $self->{owner} && $self->{owner} == $$;
}

sub _failed {
    my ($status) = @_;
    return 1 if $status;
    return 0 unless $INC{'Test/Builder.pm'};
    my $tb = Test::Builder->new;
    return 1 unless $tb->is_passing;
    my $plan = $tb->has_plan;
    return 1 if defined $plan && $plan =~ /^\d+\z/ && $tb->current_test != $plan;
    return 1 if !defined $plan && $tb->current_test > 0;       # died before done_testing
    return 0;
}

sub _diag {
    my ($msg) = @_;
    if ($INC{'Test/Builder.pm'}) {
        Test::Builder->new->diag($msg);
    } else {
        print STDERR "# $msg\n";
    }
}

END {
    my $status = $?;
    {
        local ($?, $!, $@);
        for my $t (grep { defined } values %LIVE) {
            next unless $t->{owner} == $$;
            eval { $t->stop; 1 } or warn "ModTest stop: $@";
        }
        if ($GUARD_FH && $GUARD_PID) {
            close $GUARD_FH;
            waitpid $GUARD_PID, 0 if $GUARD_OWNER == $$;
            undef $GUARD_FH;
        }
        if (%SAN_REPORTS) {
            _diag("sanitizer report $_:\n$SAN_REPORTS{$_}") for sort keys %SAN_REPORTS;
            $status ||= 1;
        }
        my $failed = _failed($status);
        for (@PREFIXES) {
            my ($p, $owner) = @$_;
            next unless $owner == $$ && -d $p;    # not from a forked child's END
            if ($failed || $ENV{MODTEST_KEEP}) {
                _diag(($failed ? ($INC{'Test/Builder.pm'} ? 'test failed, ' : 'failed, ') : '')
                    . "ModTest logs kept in $p");
            } else {
                remove_tree($p);
            }
        }
        @PREFIXES = ();
    }
    $? = $status;
}

##############################################################################
# processes

my $HANDLERS_SET;

sub _install_signal_handlers {
    return if $HANDLERS_SET++;
    my %num = (HUP => 1, INT => 2, TERM => 15);
    for my $sig (qw(INT TERM HUP)) {
        next if defined $SIG{$sig} && $SIG{$sig} ne '' && $SIG{$sig} ne 'DEFAULT';
        $SIG{$sig} = sub {
            print STDERR "# ModTest: caught SIG$sig, stopping servers\n";
            exit(128 + $num{$sig});
        };
    }
}

# A watchdog process: when this process dies without cleaning up (SIGKILL, a crashed interpreter), the pipe
# closes and the guardian kills whatever is still registered, so no server outlives its test.
sub _guardian_start {
    return if $GUARD_FH && $GUARD_PID && $GUARD_OWNER == $$;
    pipe(my $r, my $w) or die "pipe: $!";
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        close $w;
        $0 = 'modtest-guardian';
        setpgid(0, 0);
        $SIG{$_} = 'IGNORE' for qw(INT TERM HUP PIPE);
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', '/dev/null';
        open STDERR, '>', '/dev/null';
        my (%groups, %pids);
        while (my $line = <$r>) {
            my ($op, $n, $sig) = split ' ', $line;
            if ($op eq 'group') { $groups{$n} = 1 }
            elsif ($op eq 'ungroup') { delete $groups{$n} }
            elsif ($op eq 'pid') { $pids{$n} = $sig }
            elsif ($op eq 'unpid') { delete $pids{$n} }
        }
        if (%groups || %pids) {
            kill 'TERM', -$_ for keys %groups;
            kill $pids{$_}, $_ for keys %pids;
            my $deadline = time + 3;
            while (time < $deadline && grep({ _group_alive($_) } keys %groups) + grep({ _alive($_) } keys %pids)) {
                sleep 0.05;
            }
            kill 'KILL', -$_ for keys %groups;
            kill 'KILL', $_ for keys %pids;
        }
        _exit(0);
    }
    close $r;
    $w->autoflush(1);
    ($GUARD_FH, $GUARD_PID, $GUARD_OWNER) = ($w, $pid, $$);
}

sub _guard {
    my ($msg) = @_;
    return unless $GUARD_FH;
    local $SIG{PIPE} = 'IGNORE';
    syswrite $GUARD_FH, "$msg\n";
}

sub _spawn {
    my ($self, $name, $log, @cmd) = @_;
    my %env = ref $cmd[0] eq 'HASH' ? %{shift @cmd} : ();
    croak "$name is already running" if $self->{procs}{$name};
    croak "$cmd[0] is not executable" unless -x $cmd[0];
    make_path(dirname($log));
    my $pid = fork // croak "fork: $!";
    if ($pid == 0) {
        eval {
            setpgid(0, 0);
            chdir $self->{prefix};
            open STDIN, '<', '/dev/null' or die "stdin: $!";
            open STDOUT, '>>', $log or die "$log: $!";
            open STDERR, '>&', \*STDOUT or die "stderr: $!";
            @ENV{keys %env} = values %env;
            exec { $cmd[0] } @cmd or die "exec $cmd[0]: $!";
        };
        print STDERR $@;
        _exit(127);
    }
    setpgid($pid, $pid);    # also here, so the group exists before anyone signals it
    $self->{procs}{$name} = { name => $name, pid => $pid, log => $log, cmd => \@cmd };
    _guard("group $pid");
    return $pid;
}

# names of the services that exited on their own since the last call (reaped; their log tails in $@-style
# messages are returned in list context as name => message pairs)
sub check_processes {
    my ($self) = @_;
    my %dead;
    for my $name (sort keys %{$self->{procs}}) {
        eval { $self->_check_alive($name); 1 } or $dead{$name} = $@;
    }
    if ($self->{pg_pid} && !_alive($self->{pg_pid})) {
        $dead{postgres} = "postgres exited\n" . $self->_log_tails('postgres');
        _guard("unpid $self->{pg_pid}");
        delete $self->{pg_pid};
    }
    return %dead;
}

sub _check_alive {
    my ($self, $name) = @_;
    my $p = $self->{procs}{$name} or die "$name is not running\n";
    my $r = waitpid($p->{pid}, WNOHANG);
    return 1 if $r == 0;
    my $status = $?;
    delete $self->{procs}{$name};
    _guard("ungroup $p->{pid}");
    kill 'KILL', -$p->{pid};
    die "$name exited during start-up (status " . ($status >> 8) . ', signal ' . ($status & 127) . ")\n"
        . "command: @{$p->{cmd}}\n" . $self->_log_tails($name);
}

sub _wait_port {
    my ($self, $what, $port, $name) = @_;
    my $deadline = time + $START_TIMEOUT;
    while (1) {
        $self->_check_alive($name) if $name;
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Proto => 'tcp', Timeout => 1);
        if ($s) {
            close $s;
            return 1;
        }
        die "$what did not listen on port $port within $START_TIMEOUT s\n" . ($name ? $self->_log_tails($name) : '')
            if time > $deadline;
        sleep 0.02;
    }
}

sub _stop_proc {
    my ($self, @names) = @_;
    return $self->_stop_procs(@names);
}

# signals every named process (memcached gets KILL: on TERM it waits for its 1 s clock tick), then reaps them
# together; whatever has not exited after 5 s, and anything left in their process groups, is killed
sub _stop_procs {
    my ($self, @names) = @_;
    my @p = map { delete $self->{procs}{$_} } grep { $self->{procs}{$_} } @names;
    return 1 unless @p;
    kill(($_->{name} =~ /^mc\d/ ? 'KILL' : 'TERM'), $_->{pid}) for @p;
    my %left = map { $_->{pid} => $_ } @p;
    my $deadline = time + 5;
    while (%left && time < $deadline) {
        for my $pid (keys %left) {
            my $r = waitpid($pid, WNOHANG);
            delete $left{$pid} if $r == $pid || $r == -1;
        }
        sleep 0.01 if %left;
    }
    for my $pid (keys %left) {
        warn "ModTest: $left{$pid}{name} ($pid) did not stop on TERM, killing its process group\n";
        kill 'KILL', -$pid;
        waitpid($pid, 0);
    }
    # workers outliving their master (they should not): give them a moment, then kill them
    my @groups = map { $_->{pid} } @p;
    $deadline = time + 2;
    sleep 0.01 while grep({ _group_alive($_) } @groups) && time < $deadline;
    for my $g (@groups) {
        kill 'KILL', -$g if _group_alive($g);
        _guard("ungroup $g");
    }
    return 1;
}

# live (not zombie) processes: a process reparented to init stays a zombie until init reaps it, and kill 0
# still succeeds on it
sub _proc_states {
    my %st;
    opendir my $d, '/proc' or return;
    for my $pid (grep { /^\d+\z/ } readdir $d) {
        open my $fh, '<', "/proc/$pid/stat" or next;
        my $line = <$fh> // next;
        $line =~ /\)\s+(\S)\s+\S+\s+(\d+)/ or next;
        $st{$pid} = [$1, $2];    # state, pgrp
    }
    return \%st;
}

sub _alive {
    my ($pid) = @_;
    return 0 unless kill 0, $pid;
    open my $fh, '<', "/proc/$pid/stat" or return 1;
    my $line = <$fh> // return 0;
    return $line =~ /\)\s+Z/ ? 0 : 1;
}

sub _group_alive {
    my ($pgid) = @_;
    return 0 unless kill 0, -$pgid;
    my $st = _proc_states() or return 1;
    return scalar grep { $_->[1] == $pgid && $_->[0] ne 'Z' } values %$st;
}

# runs a command to completion, output appended to $log; returns its exit code
sub _run {
    my ($self, $log, @cmd) = @_;
    my $pid = fork // croak "fork: $!";
    if ($pid == 0) {
        eval {
            chdir $self->{prefix};
            open STDIN, '<', '/dev/null';
            open STDOUT, '>>', $log or die "$log: $!";
            open STDERR, '>&', \*STDOUT;
            exec { $cmd[0] } @cmd or die "exec $cmd[0]: $!";
        };
        print STDERR $@;
        _exit(127);
    }
    waitpid $pid, 0;
    return $? >> 8 || $? & 127;
}

# runs a command, returns (exit code, stdout, stderr)
sub _capture {
    my ($self, @cmd) = @_;
    my $errf = "$self->{prefix}/capture.stderr";
    my $pid = open(my $fh, '-|') // croak "fork: $!";
    if ($pid == 0) {
        eval {
            chdir $self->{prefix};
            open STDIN, '<', '/dev/null';
            open STDERR, '>', $errf or die "$errf: $!";
            exec { $cmd[0] } @cmd or die "exec $cmd[0]: $!";
        };
        print STDERR $@;
        _exit(127);
    }
    local $/;
    my $out = <$fh> // '';
    close $fh;
    my $rc = $? >> 8 || $? & 127;
    my $err = do { open my $e, '<', $errf; local $/; <$e> } // '';
    unlink $errf;
    return ($rc, $out, $err);
}

##############################################################################
# ports and files

my $LOCKDIR = File::Spec->tmpdir . "/modtest-ports-$<";

# a port free now and locked against other ModTest processes of this user (below the ephemeral range, so no
# outgoing connection takes it); a fixed port is only checked
sub _port {
    my ($self, $fixed) = @_;
    if ($fixed) {
        croak "port $fixed is in use" unless _bindable($fixed);
        return $fixed;
    }
    mkdir $LOCKDIR, 0700;
    for (1 .. 2000) {
        my $port = 20000 + int rand 12000;
        open my $fh, '>', "$LOCKDIR/$port" or next;
        next unless flock $fh, LOCK_EX | LOCK_NB;
        next unless _bindable($port);
        push @{$self->{locks}}, $fh;
        return $port;
    }
    croak 'no free port found';
}

sub _bindable {
    my ($port) = @_;
    my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $port, Proto => 'tcp',
        ReuseAddr => 1, Listen => 1) or return 0;
    close $s;
    return 1;
}

# a world-traversable temporary prefix, so that nobody and postgres can reach their parts of it
sub _make_prefix {
    my $base = File::Spec->tmpdir;
    $base = '/tmp' if $IS_ROOT && !_traversable($base);
    my $p = tempdir('modtest-XXXXXX', DIR => $base);
    chmod 0755, $p;
    return $p;
}

sub _traversable {
    my ($path) = @_;
    my @parts = File::Spec->splitdir($path);
    my $cur = '';
    for my $part (@parts) {
        $cur = $cur eq '/' || $cur eq '' ? "/$part" : "$cur/$part";
        $cur =~ s{^//}{/};
        my @st = stat $cur or return 0;
        return 0 unless $st[2] & S_IXOTH;
    }
    return 1;
}

sub _copy_tree {
    my ($from, $to) = @_;
    find({ no_chdir => 1, wanted => sub {
        (my $rel = $File::Find::name) =~ s{^\Q$from\E}{};
        my $dst = "$to$rel";
        if (-d $_) { make_path($dst); chmod 0755, $dst }
        else { copy($_, $dst) or die "copy $_: $!"; chmod 0644, $dst }
    } }, $from);
}

sub _write {
    my ($file, $content) = @_;
    open my $fh, '>', $file or croak "$file: $!";
    print $fh $content;
    close $fh or croak "$file: $!";
}

sub _tail {
    my ($file, $n) = @_;
    open my $fh, '<', $file or return "--- $file: (none)\n";
    my @l = <$fh>;
    @l = @l[-$n .. -1] if @l > $n;
    return "--- $file:\n" . join('', @l);
}

1;
