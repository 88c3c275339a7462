package FakeServer;

# The machinery of the fake outside services (FakeStripe, FakeGateway): a small HTTP/1.1 server forked on
# 127.0.0.1 that records every request and has modes that make it slow, failing or unreachable. A subclass says only
# what its service answers. Core Perl only.
#
#   my $fake = FakeSub->start(dir => $tmp, mode => 'ok', <the subclass's options>, <options of the mode>);
#   $fake->url;  $fake->port;  $fake->dir
#   $fake->mode('slow', seconds => 3);  $fake->mode('fail', status => 503);  $fake->mode('refuse');  $fake->mode('ok');
#   $fake->mode;  (the mode in force)
#   my @r = $fake->requests;  $fake->clear;  $fake->stop;   (also on DESTROY)
#
# 'slow' delays each answer by seconds (default 5) after recording the request, so a client that timed out still
# finds it; 'fail' answers status (default 500) with the subclass's error; 'refuse' closes the listening socket (new
# connections are refused at once) and keeps the port bound so that nothing else takes it, and a request that arrives
# on a keep-alive connection opened before is dropped unanswered, as if the connection had broken.
#
# A record (one JSON line per request in <dir>/<lower-case class>-<port>.requests) holds: time (Time::HiRes, when
# the request was read), method, path (the request target), headers (lower-case names), body (raw bytes), mode,
# conn and nth (which connection, which request on it: keep-alive shows as the same conn with nth > 1), status,
# response (the answer), delay, and whatever the subclass's describe and handle add.
#
# A subclass overrides:
#   init(\%options)      take its own constructor options out of %options (what is left are the mode's options)
#   describe($req)       add what it records about any request, even one that a mode answers or drops
#   handle($req)         (status, answer) for a request in modes 'ok' and 'slow'; may add to $req what it recorded
#   error($what)         the answer for 'malformed' (400), 'too large' (413) and 'failing' (mode 'fail')
#   render($status, $answer, $req)   (body, extra headers); $req is undef for a malformed or too large request
#   records_dropped      true when requests dropped by 'refuse' are recorded (with status 0)
#
# Each connection is served by its own process, so a slow answer does not hold up the others. Modes live in a file
# that each request re-reads.

use strict;
use warnings;

use Carp qw(croak);
use Fcntl qw(:flock);
use File::Temp qw(tempdir);
use IO::Select;
use IO::Socket::INET;
use JSON::PP;
use POSIX qw(_exit setpgid strftime WNOHANG);
use Time::HiRes qw(sleep time);

my $JSON = JSON::PP->new->utf8->canonical;
my $IDLE = 15;            # seconds a keep-alive connection may wait for its next request
my $HEAD_MAX = 65536;
my $BODY_MAX = 1 << 20;
my %REASON = (200 => 'OK', 202 => 'Accepted', 400 => 'Bad Request', 401 => 'Unauthorized', 402 => 'Request Failed',
    404 => 'Not Found', 413 => 'Too Large', 429 => 'Too Many Requests', 500 => 'Internal Server Error',
    502 => 'Bad Gateway', 503 => 'Service Unavailable');

##############################################################################
# the test's side

sub start {
    my ($class, %o) = @_;
    my $name = lc $class;
    my $mode = (delete $o{mode}) // 'ok';
    my $self = bless {
        owner => $$,
        dir   => (delete $o{dir}) // tempdir("$name-XXXXXX", TMPDIR => 1, CLEANUP => 1),
    }, $class;
    $self->init(\%o);
    croak "$self->{dir} is not a directory" unless -d $self->{dir};

    # bound before the fork, so the port accepts connections as soon as start returns
    my $listen = _listen(0) or croak "listen: $!";
    $self->{port} = $listen->sockport;
    $self->{base} = "$self->{dir}/$name-$self->{port}";
    open my $fh, '>', "$self->{base}.requests" or croak "$self->{base}.requests: $!";
    close $fh;
    $self->_write_mode($mode, %o);

    my $pid = fork // croak "fork: $!";
    if ($pid == 0) {
        # no END blocks, DESTROY or Test::More output from this copy of the test process
        $SIG{$_} = 'DEFAULT' for qw(INT TERM HUP QUIT);
        eval { $self->_serve($listen) };
        print STDERR "$class: $@" if $@;
        _exit(0);
    }
    close $listen;
    $self->{pid} = $pid;
    $self->_wait_state($mode);
    return $self;
}

sub url { "http://127.0.0.1:$_[0]{port}" }
sub port { $_[0]{port} }
sub dir { $_[0]{dir} }

# mode() reads it; mode($name, %opt) changes it and returns once it is in force
sub mode {
    my ($self, $mode, %o) = @_;
    return (_read_mode("$self->{base}.mode"))[0] unless defined $mode;
    croak "unknown mode $mode" unless $mode =~ /^(?:ok|slow|fail|refuse)\z/;
    $self->_write_mode($mode, %o);
    $self->_wait_state($mode);
    return $mode;
}

sub requests {
    my ($self) = @_;
    open my $fh, '<:raw', "$self->{base}.requests" or return;
    flock $fh, LOCK_SH;
    my @r;
    while (my $line = <$fh>) {
        push @r, $JSON->decode($line) if $line =~ /\n\z/;
    }
    return @r;
}

sub clear {
    my ($self) = @_;
    open my $fh, '>>', "$self->{base}.requests" or croak "$self->{base}.requests: $!";
    flock $fh, LOCK_EX;
    truncate $fh, 0;
    close $fh;
}

sub stop {
    my ($self) = @_;
    my $pid = delete $self->{pid} or return;
    return unless $self->{owner} == $$;
    kill 'TERM', -$pid;
    my $deadline = time + 3;
    sleep 0.02 while time < $deadline && !waitpid($pid, WNOHANG);
    if (kill 0, $pid) {
        kill 'KILL', -$pid;
        waitpid $pid, 0;
    }
}

sub DESTROY { local ($?, $@); $_[0]->stop }

sub _write_mode {
    my ($self, $mode, %o) = @_;
    my $file = "$self->{base}.mode";
    open my $fh, '>', "$file.tmp" or croak "$file.tmp: $!";
    print $fh join(' ', $mode, map { "$_=$o{$_}" } sort keys %o), "\n";
    close $fh;
    rename "$file.tmp", $file or croak "rename $file: $!";    # atomic: the server never reads half a mode
}

sub _read_mode {
    my ($file) = @_;
    open my $fh, '<', $file or return ('ok');
    my ($mode, @kv) = split ' ', scalar(<$fh>) // '';
    return ($mode // 'ok', map { split /=/, $_, 2 } @kv);
}

# 'refuse' starts or ends in the server's loop, not at once: wait until a connection shows it
sub _wait_state {
    my ($self, $mode) = @_;
    my $deadline = time + 5;
    while (time < $deadline) {
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $self->{port}, Proto => 'tcp',
            Timeout => 1);
        return if ($mode eq 'refuse') == !$s;
        sleep 0.02;
    }
    croak ref($self) . " did not switch to mode $mode";
}

##############################################################################
# the subclass's side: defaults

sub init { }
sub describe { }
sub handle { croak ref($_[0]) . ' does not handle requests' }
sub error { {error => $_[1]} }
sub render { ($JSON->encode($_[2])) }
sub records_dropped { 0 }

##############################################################################
# the server's side (a child process and one grandchild per connection, all in one process group)

sub _listen {
    my ($port) = @_;
    return IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $port, Proto => 'tcp', Listen => 128,
        ReuseAddr => 1);
}

sub _serve {
    my ($self, $listen) = @_;
    setpgid(0, 0);
    $0 = lc(ref $self) . " $self->{port}";
    $SIG{CHLD} = 'IGNORE';    # connection processes reap themselves
    $SIG{PIPE} = 'IGNORE';
    my $parent = getppid;
    my $reserve;
    my $sel = IO::Select->new($listen);
    while (1) {
        # the test process died without stopping us (SIGKILL): do not outlive it
        if (getppid != $parent) {
            kill 'TERM', -$$;
            _exit(0);
        }
        my ($mode) = _read_mode("$self->{base}.mode");
        if ($mode eq 'refuse' && $listen) {
            $sel->remove($listen);
            close $listen;
            undef $listen;
            # bound but not listening: connections are refused, and the port stays ours
            $reserve = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $self->{port}, Proto => 'tcp',
                ReuseAddr => 1);
        } elsif ($mode ne 'refuse' && !$listen) {
            undef $reserve;
            $listen = _listen($self->{port}) or die "listen again on $self->{port}: $!\n";
            $sel->add($listen);
        }
        unless ($listen) {
            sleep 0.05;
            next;
        }
        next unless $sel->can_read(0.05);
        my $conn = $listen->accept or next;
        my $pid = fork;
        if (defined $pid && $pid == 0) {
            close $listen;    # else 'refuse' could not close it
            eval { $self->_connection($conn) };
            _exit(0);
        }
        close $conn;
    }
}

sub _connection {
    my ($self, $sock) = @_;
    binmode $sock;
    my $buf = '';
    my $conn = sprintf '%d.%d', $$, int(time * 1000) % 1000000;
    for (my $nth = 1;; $nth++) {
        my $end;
        until (($end = index $buf, "\r\n\r\n") >= 0) {
            return if length $buf > $HEAD_MAX || !_fill($sock, \$buf, $IDLE);
        }
        my $head = substr $buf, 0, $end + 4, '';
        my ($line, @lines) = split /\r\n/, $head;
        my ($method, $target, $proto) = split / /, $line // '';
        return $self->_reply($sock, 400, $self->error('malformed'), 1) unless $proto && $proto =~ m{^HTTP/1\.[01]\z};
        my %h;
        for (@lines) {
            my ($k, $v) = /^([^:]+):\s*(.*?)\s*\z/ or next;
            $k = lc $k;
            $h{$k} = exists $h{$k} ? "$h{$k}, $v" : $v;
        }
        my $close = $proto eq 'HTTP/1.0' ? ($h{connection} // '') !~ /keep-alive/i : ($h{connection} // '') =~ /close/i;

        my $body = '';
        if (($h{'transfer-encoding'} // '') =~ /chunked/i) {
            $body = _read_chunked($sock, \$buf) // return;
        } elsif (my $len = $h{'content-length'}) {
            return $self->_reply($sock, 413, $self->error('too large'), 1) if $len !~ /^\d+\z/ || $len > $BODY_MAX;
            # curl waits a second for this before sending a body over 1 KB
            syswrite $sock, "HTTP/1.1 100 Continue\r\n\r\n"
                if ($h{expect} // '') =~ /100-continue/i && length $buf < $len;
            while (length $buf < $len) { _fill($sock, \$buf, $IDLE) or return }
            $body = substr $buf, 0, $len, '';
        }

        my $req = {time => time, method => $method, path => $target, headers => \%h, body => $body, conn => $conn,
            nth => $nth};
        my ($mode, %mo) = _read_mode("$self->{base}.mode");
        $req->{mode} = $mode;
        $self->describe($req);
        if ($mode eq 'refuse') {    # as if the connection had broken: clients retry and find it refused
            $req->{status} = 0;
            $self->_record($req) if $self->records_dropped;
            return;
        }
        my ($status, $answer) = $mode eq 'fail' ? ($mo{status} // 500, $self->error('failing')) : $self->handle($req);
        $req->{status} = $status;
        $req->{response} = $answer;
        $req->{delay} = $mode eq 'slow' ? 0 + ($mo{seconds} // 5) : 0;
        $self->_record($req);
        sleep $req->{delay} if $req->{delay};
        $self->_reply($sock, $status, $answer, $close, $req) or return;
        return if $close;
    }
}

sub _fill {
    my ($sock, $buf, $timeout) = @_;
    return 0 unless IO::Select->new($sock)->can_read($timeout);
    return sysread($sock, $$buf, 65536, length $$buf) ? 1 : 0;
}

sub _read_chunked {
    my ($sock, $buf) = @_;
    my $body = '';
    while (1) {
        until ($$buf =~ /\r\n/) { _fill($sock, $buf, $IDLE) or return }
        $$buf =~ s/^([0-9a-fA-F]+)[^\r]*\r\n// or return;
        my $size = hex $1;
        if ($size == 0) {
            until ($$buf =~ /^(?:[^\r]*\r\n)*?\r\n/) { _fill($sock, $buf, $IDLE) or return }    # trailers
            $$buf =~ s/^(?:[^\r\n]+\r\n)*\r\n//;
            return $body;
        }
        return if length($body) + $size > $BODY_MAX;
        while (length $$buf < $size + 2) { _fill($sock, $buf, $IDLE) or return }
        $body .= substr $$buf, 0, $size + 2, '';
        chop $body; chop $body;
    }
}

sub _reply {
    my ($self, $sock, $status, $answer, $close, $req) = @_;
    my ($body, %extra) = $self->render($status, $answer, $req);
    my %h = (
        'Date'           => strftime('%a, %d %b %Y %H:%M:%S GMT', gmtime),
        'Content-Type'   => 'application/json',
        'Content-Length' => length $body,
        'Connection'     => $close ? 'close' : 'keep-alive',
        %extra,
    );
    my $msg = "HTTP/1.1 $status " . ($REASON{$status} // 'Error') . "\r\n"
        . join('', map { "$_: $h{$_}\r\n" } sort keys %h) . "\r\n" . $body;
    while (length $msg) {
        my $n = syswrite $sock, $msg or return 0;
        substr $msg, 0, $n, '';
    }
    return 1;
}

sub _record {
    my ($self, $rec) = @_;
    open my $fh, '>>:raw', "$self->{base}.requests" or die "$self->{base}.requests: $!";
    flock $fh, LOCK_EX;
    print $fh $JSON->encode($rec), "\n";
    close $fh;
}

1;
