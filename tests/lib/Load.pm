package Load;

# A small load driver for the resilience tests: wrk (Debian package wrk, on PATH) in the background against one
# server for a number of seconds, with a generated Lua script whose response hook counts the answers per status.
# wrk's own summary puts every answer that is not 2xx or 3xx under one "Non-2xx or 3xx responses" figure, which
# cannot tell a 503 from a 403; the script prints the count of each status, wrk's socket errors and the latency
# figures when wrk is done, and this module reads them back. Core Perl only.
#
#   my $load = Load->start(url => $t->url('nginx', '/'), seconds => 20, connections => 8, dir => $t->prefix,
#       requests => [{path => '/env.php', headers => {Cookie => "PHPSESSID=$id"}}, ...],   # taken in turn
#       method => 'POST', headers => {...}, body => '...',       # defaults for every request
#       unique => ['X-User', 'u-new-'],   # this header differs on every request: prefix, thread, counter
#       match => 'SESSION_USER_ID',       # counts the 2xx answers whose body does not contain this text
#       require_header => [503, 'Retry-After'],   # counts the answers with this status that lack this header
#       delay_ms => 10,                   # pause per connection between requests (wrk has no rate option)
#       threads => 1, timeout => 5, name => 'label');
#   ... faults ...
#   my $r = $load->wait;    # or $load->stop: ends it now, with the figures so far
#   $r->{requests}, $r->{status}{503}, $r->{class}{'5xx'}, $r->{errors}{connect|read|write|timeout},
#   $r->{mismatch}, $r->{missing_header}, $r->{rps}, $r->{latency_ms}{p50|p90|p99|max|mean},
#   $r->{failed} (wrk did not report)
#   Load::summary($r)       # one line for diag
#   plan skip_all => Load::unavailable_reason() if Load::unavailable_reason();
#   my $r = Load->run(...); # start and wait
#
# Helpers for the tests that watch the servers: Load::processes($pid) (the pid and its descendants),
# Load::rss_kb($pid) (VmRSS from /proc), Load::open_files($pid) (path => 'r'|'w' of the regular files it holds),
# Load::per_process($log_text, qr/.../) (pid => number of matching error-log lines, Apache's and nginx's formats).

use strict;
use warnings;

use Carp qw(croak);
use File::Temp qw(tempdir);
use POSIX qw(_exit setpgid WNOHANG);
use Time::HiRes qw(sleep time);

our $WRK = $ENV{MODTEST_WRK} // 'wrk';

# why the resilience tests cannot run here, or undef
sub unavailable_reason {
    return undef if $WRK =~ m{/} ? -x $WRK : grep { length && -x "$_/$WRK" } split /:/, $ENV{PATH} // '';
    return "no $WRK on PATH (Debian package wrk)";
}

sub start {
    my ($class, %o) = @_;
    croak 'Load->start needs a url' unless $o{url};
    my ($base) = $o{url} =~ m{^(https?://[^/]+)} or croak "not an http URL: $o{url}";
    my $threads = $o{threads} // 1;
    my $connections = $o{connections} // 4;
    $connections = $threads if $connections < $threads;    # wrk refuses fewer connections than threads
    my $seconds = $o{seconds} // 10;
    my $dir = $o{dir} // tempdir('load-XXXXXX', TMPDIR => 1, CLEANUP => 1);
    my $name = $o{name} // 'load';
    $name =~ s/[^A-Za-z0-9_.-]/_/g;
    my $n = 0;
    $n++ while -e "$dir/$name.$n.lua";
    my $self = bless {
        owner => $$, name => $o{name} // $name, seconds => $seconds, timeout => $o{timeout} // 5,
        script => "$dir/$name.$n.lua", out => "$dir/$name.$n.out", t0 => time,
    }, $class;

    my @requests = @{$o{requests} // [{path => ($o{url} =~ m{^https?://[^/]+(/.*)?\z})[0] // '/'}]};
    _write($self->{script}, _script(\@requests, %o));

    my @cmd = ($WRK, '-t', $threads, '-c', $connections, '-d', "${seconds}s", '--timeout', "$self->{timeout}s",
        '-s', $self->{script}, "$base/");
    # one descriptor per connection: a soft limit below that is raised as far as the hard one allows
    my $soft = POSIX::sysconf(POSIX::_SC_OPEN_MAX()) // 1024;
    if ($soft < $connections + 64) {
        my $want = $connections + 256;
        @cmd = ('/bin/sh', '-c', "ulimit -n $want 2>/dev/null || ulimit -n \$(ulimit -Hn); exec \"\$@\"", 'sh', @cmd);
    }
    my $pid = fork // croak "fork: $!";
    if ($pid == 0) {
        eval {
            setpgid(0, 0);
            open STDIN, '<', '/dev/null' or die "stdin: $!";
            open STDOUT, '>', $self->{out} or die "$self->{out}: $!";
            open STDERR, '>&', \*STDOUT or die "stderr: $!";
            exec { $cmd[0] } @cmd or die "exec $cmd[0]: $!";
        };
        print STDERR $@;
        _exit(127);
    }
    $self->{pid} = $pid;
    return $self;
}

sub run {
    my ($class, %o) = @_;
    return $class->start(%o)->wait;
}

sub running {
    my ($self) = @_;
    return 0 unless $self->{pid};
    my $r = waitpid($self->{pid}, WNOHANG);
    return 1 if $r == 0;
    $self->{exit} = $?;
    delete $self->{pid};
    return 0;
}

# Waits for wrk to finish (its duration, plus its timeout for the last answers, plus a margin) and returns the
# figures; a wrk that overstays is interrupted, which makes it report what it has.
sub wait {
    my ($self) = @_;
    return $self->{result} if $self->{result};
    my $deadline = $self->{t0} + $self->{seconds} + $self->{timeout} + 15;
    sleep 0.05 while $self->running && time < $deadline;
    $self->_end if $self->{pid};
    return $self->{result} = $self->_parse;
}

sub stop {
    my ($self) = @_;
    return $self->{result} if $self->{result};
    $self->_end if $self->running;
    return $self->{result} = $self->_parse;
}

# SIGINT: wrk stops its threads and still prints its figures and runs the script's done()
sub _end {
    my ($self) = @_;
    my $pid = $self->{pid} or return;
    kill 'INT', $pid;
    my $deadline = time + $self->{timeout} + 5;
    sleep 0.05 while time < $deadline && !waitpid($pid, WNOHANG);
    if (kill 0, $pid) {
        kill 'KILL', -$pid;
        waitpid $pid, 0;
    }
    delete $self->{pid};
}

sub DESTROY {
    my ($self) = @_;
    local ($?, $!, $@);
    return unless $self->{pid} && $self->{owner} == $$;
    kill 'KILL', -$self->{pid};
    waitpid $self->{pid}, 0;
}

sub _parse {
    my ($self) = @_;
    my $out = '';
    if (open my $fh, '<', $self->{out}) {
        local $/;
        $out = <$fh> // '';
    }
    my %r = (name => $self->{name}, output => $out, status => {}, class => {}, errors => {}, latency_ms => {},
        mismatch => 0, missing_header => 0);
    my $seen = 0;
    for (split /\n/, $out) {
        next unless s/^LOAD //;
        $seen++;
        my ($what, @v) = split ' ';
        if ($what eq 'status') { $r{status}{$v[0]} += $v[1] }
        elsif ($what eq 'errors') { my %e = @v; $r{errors} = \%e }
        elsif ($what eq 'latency_us') { my %l = @v; $r{latency_ms}{$_} = $l{$_} / 1000 for keys %l }
        else { $r{$what} = $v[0] }
    }
    unless ($seen && defined $r{requests}) {
        $r{failed} = 1;
        return \%r;
    }
    for my $code (keys %{$r{status}}) {
        $r{class}{substr($code, 0, 1) . 'xx'} += $r{status}{$code};
    }
    $r{$_} //= 0 for qw(requests duration_us);
    $r{errors}{$_} //= 0 for qw(connect read write timeout status);
    $r{socket_errors} = $r{errors}{connect} + $r{errors}{read} + $r{errors}{write} + $r{errors}{timeout};
    $r{duration_s} = $r{duration_us} / 1e6;
    $r{rps} = $r{duration_s} > 0 ? $r{requests} / $r{duration_s} : 0;
    return \%r;
}

# "wrk apache sessions: 5230 requests (435/s): 200 x5230; socket errors: none; latency p50 1.2 p99 9.8 max 31 ms"
sub summary {
    my ($r) = @_;
    return "wrk $r->{name}: no figures (wrk failed):\n$r->{output}" if $r->{failed};
    my $statuses = join(', ', map { "$_ x$r->{status}{$_}" } sort keys %{$r->{status}}) || 'no answer';
    my $e = $r->{errors};
    my $errors = join(', ', map { "$_ $e->{$_}" } grep { $e->{$_} } qw(connect read write timeout)) || 'none';
    my $l = $r->{latency_ms};
    return sprintf('wrk %s: %d requests (%.0f/s): %s%s; socket errors: %s; latency p50 %.1f p99 %.1f max %.1f ms',
        $r->{name}, $r->{requests}, $r->{rps}, $statuses,
        ($r->{mismatch} ? "; $r->{mismatch} bodies without the text" : '')
            . ($r->{missing_header} ? "; $r->{missing_header} without the header" : ''),
        $errors, $l->{p50} // 0, $l->{p99} // 0, $l->{max} // 0);
}

##############################################################################
# the Lua script

# A Lua string literal for any bytes: every byte outside a safe set as a three-digit decimal escape.
sub _lua_str {
    my ($s) = @_;
    return 'nil' unless defined $s;
    return '"' . join('', map { /[A-Za-z0-9 _.\/:,;=+-]/ ? $_ : sprintf('\\%03d', ord) } split //, $s) . '"';
}

sub _lua_headers {
    my ($h) = @_;
    return '{' . join(', ', map { '[' . _lua_str($_) . '] = ' . _lua_str($h->{$_}) } sort keys %$h) . '}';
}

sub _script {
    my ($requests, %o) = @_;
    my @reqs = map {
        my $r = $_;
        my %h = (%{$o{headers} // {}}, %{$r->{headers} // {}});
        '    {' . join(', ', _lua_str($r->{method} // $o{method} // 'GET'), _lua_str($r->{path} // '/'),
            _lua_headers(\%h), _lua_str(exists $r->{body} ? $r->{body} : $o{body})) . '},';
    } @$requests;
    my ($uh, $up) = @{$o{unique} // []};
    my $delay = $o{delay_ms} // 0;
    my ($rh_status, $rh_name) = @{$o{require_header} // [0, undef]};
    return join "\n", '-- generated by tests/lib/Load.pm', 'local reqs = {', @reqs, '}',
        'local unique_header, unique_prefix = ' . _lua_str($uh) . ', ' . _lua_str($up // ''),
        'local match = ' . _lua_str($o{match}), "local delay_ms = $delay",
        'local required_status, required_header = ' . (0 + $rh_status) . ', ' . _lua_str(defined $rh_name ? lc $rh_name : undef),
        <<'LUA';
local threads = {}

function setup(thread)
    threads[#threads + 1] = thread
    thread:set("tid", #threads)
end

-- per thread (each has its own Lua state): what response() counts, read back by done() through thread:get
counts = {}
mismatch = 0
missing = 0
local n = 0
local formatted = {}

function init(args)
    for i, r in ipairs(reqs) do
        formatted[i] = wrk.format(r[1], r[2], r[3], r[4])
    end
end

function request()
    n = n + 1
    local i = (n - 1) % #reqs + 1
    if not unique_header then
        return formatted[i]
    end
    local r, h = reqs[i], {}
    for k, v in pairs(r[3]) do h[k] = v end
    h[unique_header] = unique_prefix .. tostring(tid) .. "-" .. tostring(n)
    return wrk.format(r[1], r[2], h, r[4])
end

if delay_ms > 0 then
    function delay()
        return delay_ms
    end
end

function response(status, headers, body)
    counts[status] = (counts[status] or 0) + 1
    if match and status >= 200 and status < 300 and not (body and string.find(body, match, 1, true)) then
        mismatch = mismatch + 1
    end
    if required_header and status == required_status then
        local found = false
        for k, _ in pairs(headers) do
            if string.lower(k) == required_header then found = true end
        end
        if not found then missing = missing + 1 end
    end
end

function done(summary, latency, requests)
    local total, miss, lacking = {}, 0, 0
    for _, thread in ipairs(threads) do
        for status, count in pairs(thread:get("counts")) do
            total[status] = (total[status] or 0) + count
        end
        miss = miss + thread:get("mismatch")
        lacking = lacking + thread:get("missing")
    end
    for status, count in pairs(total) do
        io.write(string.format("LOAD status %d %d\n", status, count))
    end
    local e = summary.errors
    io.write(string.format("LOAD mismatch %d\n", miss))
    io.write(string.format("LOAD missing_header %d\n", lacking))
    io.write(string.format("LOAD requests %d\n", summary.requests))
    io.write(string.format("LOAD duration_us %d\n", summary.duration))
    io.write(string.format("LOAD errors connect %d read %d write %d timeout %d status %d\n",
        e.connect, e.read, e.write, e.timeout, e.status))
    local f = math.floor
    io.write(string.format("LOAD latency_us p50 %d p90 %d p99 %d max %d mean %d\n", f(latency:percentile(50)),
        f(latency:percentile(90)), f(latency:percentile(99)), f(latency.max), f(latency.mean)))
end
LUA
}

sub _write {
    my ($file, $content) = @_;
    open my $fh, '>', $file or croak "$file: $!";
    print $fh $content;
    close $fh or croak "$file: $!";
}

##############################################################################
# watching server processes

# $pid and every process below it (an nginx master's workers, Apache's children and their helpers)
sub processes {
    my ($root) = @_;
    my %parent;
    opendir my $d, '/proc' or return ($root);
    for my $pid (grep { /^\d+\z/ } readdir $d) {
        open my $fh, '<', "/proc/$pid/stat" or next;
        my $line = <$fh> // next;
        $parent{$pid} = $1 if $line =~ /\)\s+[^Z\s]\s+(\d+)/;    # live processes only, not zombies
    }
    my @out;
    my @todo = ($root);
    while (defined(my $p = shift @todo)) {
        next unless exists $parent{$p};
        push @out, $p;
        push @todo, grep { $parent{$_} == $p } keys %parent;
    }
    return sort { $a <=> $b } @out;
}

# resident memory in kB, undef when the process is gone
sub rss_kb {
    my ($pid) = @_;
    open my $fh, '<', "/proc/$pid/status" or return;
    while (my $line = <$fh>) { return $1 if $line =~ /^VmRSS:\s+(\d+)\s+kB/ }
    return;
}

# pid => count of the lines of an Apache or nginx error log that match $re ('?' for lines without a pid)
sub per_process {
    my ($log, $re) = @_;
    my %n;
    for my $line (grep { $_ =~ $re } split /\n/, $log // '') {
        my $pid = $line =~ /\[pid (\d+)/ ? $1 : $line =~ /\[\w+\] (\d+)#\d+:/ ? $1 : '?';
        $n{$pid}++;
    }
    return %n;
}

# regular files the process holds open: path => 'w' (open for writing) or 'r'
sub open_files {
    my ($pid) = @_;
    my %f;
    opendir my $d, "/proc/$pid/fd" or return %f;
    for my $fd (grep { /^\d+\z/ } readdir $d) {
        my $path = readlink "/proc/$pid/fd/$fd" // next;
        next unless $path =~ m{^/};    # pipes, sockets, anon inodes
        my $flags = 0;
        if (open my $fh, '<', "/proc/$pid/fdinfo/$fd") {
            while (my $line = <$fh>) { $flags = oct($1) if $line =~ /^flags:\s+(\d+)/ }
        }
        my $mode = ($flags & 3) ? 'w' : 'r';    # O_WRONLY 1, O_RDWR 2
        $f{$path} = $mode unless ($f{$path} // '') eq 'w';
    }
    return %f;
}

1;
