package FakeGateway;

# A fake notification gateway for mod_booking's tests: takes the POSTs of BookingNotifyURL on 127.0.0.1, checks
# X-Booking-Signature ("t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>">") with the shared secret, records every
# request, and has modes that make it fail, slow or unreachable. Core Perl only (Digest::SHA, JSON::PP).
#
#   my $gw = FakeGateway->start(secret => 'notify-secret-0123456789abcdef');   # also dir => .., mode => .., status =>
#   # BookingNotifyURL $gw->url   (http://127.0.0.1:<port>/notify)
#   $gw->mode('fail', status => 503);  $gw->mode('slow', seconds => 3);  $gw->mode('refuse');  $gw->mode('ok');
#   my @r = $gw->requests;  $gw->deliveries (ids in order of receipt);  $gw->clear;  $gw->stop (also on DESTROY)
#
# A record (one JSON line per request in <dir>/fakegateway-<port>.requests) holds: time (Time::HiRes, when the
# request was read), method, path, headers (lower-case names), body (raw text), payload (the decoded JSON body, undef
# when it is not JSON), event (X-Booking-Event), delivery (X-Booking-Delivery), signature (the header), sig_t (its
# time), sig_ok (1 when v1 is the HMAC of "<t>.<body>" with the secret, else 0), status (answered), mode, conn and
# nth (which connection, which request on it). A request is recorded before a slow answer is delayed, so a client
# that timed out still finds it.
#
# Each connection is served by its own process. Modes live in a file every request re-reads; 'refuse' closes the
# listening socket (connections are refused at once) and keeps the port bound so that nothing else takes it; a
# request that arrives on a connection opened before is dropped unanswered and recorded with status 0.

use strict;
use warnings;

use Carp qw(croak);
use Digest::SHA qw(hmac_sha256_hex);
use Fcntl qw(:flock);
use File::Temp qw(tempdir);
use IO::Select;
use IO::Socket::INET;
use JSON::PP;
use POSIX qw(_exit setpgid strftime WNOHANG);
use Time::HiRes qw(sleep time);

my $JSON = JSON::PP->new->utf8->canonical;
my $IDLE = 15;    # seconds a keep-alive connection may wait for its next request
my $BODY_MAX = 1 << 20;
my %REASON = (200 => 'OK', 202 => 'Accepted', 400 => 'Bad Request', 404 => 'Not Found', 413 => 'Too Large',
    429 => 'Too Many Requests', 500 => 'Internal Server Error', 502 => 'Bad Gateway', 503 => 'Service Unavailable');

##############################################################################
# the test's side

sub start {
    my ($class, %o) = @_;
    my $self = bless {
        owner  => $$,
        dir    => $o{dir} // tempdir('fakegateway-XXXXXX', TMPDIR => 1, CLEANUP => 1),
        secret => $o{secret} // 'notify-secret-0123456789abcdef',
    }, $class;
    croak "$self->{dir} is not a directory" unless -d $self->{dir};

    # bound before the fork, so the port accepts connections as soon as start returns
    my $listen = _listen(0) or croak "listen: $!";
    $self->{port} = $listen->sockport;
    $self->{base} = "$self->{dir}/fakegateway-$self->{port}";
    open my $fh, '>', "$self->{base}.requests" or croak "$self->{base}.requests: $!";
    close $fh;
    my %mode = %o;
    delete @mode{qw(dir secret mode)};
    $self->_write_mode($o{mode} // 'ok', %mode);

    my $pid = fork // croak "fork: $!";
    if ($pid == 0) {
        # no END blocks, DESTROY or Test::More output from this copy of the test process
        $SIG{$_} = 'DEFAULT' for qw(INT TERM HUP QUIT);
        eval { $self->_serve($listen) };
        print STDERR "FakeGateway: $@" if $@;
        _exit(0);
    }
    close $listen;
    $self->{pid} = $pid;
    $self->_wait_state($o{mode} // 'ok');
    return $self;
}

sub url { "http://127.0.0.1:$_[0]{port}/notify" }
sub port { $_[0]{port} }
sub secret { $_[0]{secret} }
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

# The delivery ids of the requests answered 2xx, in order of receipt.
sub deliveries {
    my ($self) = @_;
    return map { $_->{delivery} } grep { $_->{status} >= 200 && $_->{status} < 300 } $self->requests;
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

# The check a real receiver makes, for tests that sign or tamper themselves: 1 when $header signs $body.
sub signature_ok {
    my ($secret, $header, $body) = @_;
    my ($t) = ($header // '') =~ /(?:^|,)t=(\d+)(?:,|\z)/ or return 0;
    my @v1 = ($header =~ /(?:^|,)v1=([0-9a-f]{64})(?=,|\z)/g) or return 0;
    my $want = hmac_sha256_hex("$t.$body", $secret);
    return (grep { _equal($_, $want) } @v1) ? 1 : 0;
}

sub _equal {
    my ($a, $b) = @_;
    return 0 unless length $a == length $b;
    my $diff = 0;
    $diff |= ord(substr $a, $_, 1) ^ ord(substr $b, $_, 1) for 0 .. length($a) - 1;
    return $diff == 0;
}

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
    croak "FakeGateway did not switch to mode $mode";
}

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
    $0 = "fakegateway $self->{port}";
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
        until (defined($end = index($buf, "\r\n\r\n")) && $end >= 0) {
            return if length $buf > 65536;
            _fill($sock, \$buf, $IDLE) or return;
        }
        my $head = substr $buf, 0, $end + 4, '';
        my ($line, @lines) = split /\r\n/, $head;
        my ($method, $target, $proto) = split / /, $line // '';
        return _reply($sock, 400, {error => 'malformed request'}, 1) unless $proto && $proto =~ m{^HTTP/1\.[01]\z};
        my %h;
        for (@lines) {
            my ($k, $v) = /^([^:]+):\s*(.*?)\s*\z/ or next;
            $k = lc $k;
            $h{$k} = exists $h{$k} ? "$h{$k}, $v" : $v;
        }
        my $close = $proto eq 'HTTP/1.0' ? ($h{connection} // '') !~ /keep-alive/i : ($h{connection} // '') =~ /close/i;

        my $body = '';
        if (my $len = $h{'content-length'}) {
            return _reply($sock, 413, {error => 'too large'}, 1) if $len !~ /^\d+\z/ || $len > $BODY_MAX;
            syswrite $sock, "HTTP/1.1 100 Continue\r\n\r\n"
                if ($h{expect} // '') =~ /100-continue/i && length $buf < $len;
            while (length $buf < $len) { _fill($sock, \$buf, $IDLE) or return }
            $body = substr $buf, 0, $len, '';
        }
        my $received = time;

        my ($mode, %mo) = _read_mode("$self->{base}.mode");
        my ($sig_t) = ($h{'x-booking-signature'} // '') =~ /(?:^|,)t=(\d+)/;
        my $rec = {
            time => $received, method => $method, path => $target, headers => \%h, body => $body,
            payload => scalar eval { $JSON->decode($body) }, event => $h{'x-booking-event'},
            delivery => $h{'x-booking-delivery'}, signature => $h{'x-booking-signature'}, sig_t => $sig_t,
            sig_ok => signature_ok($self->{secret}, $h{'x-booking-signature'}, $body), mode => $mode, conn => $conn,
            nth => $nth,
        };
        if ($mode eq 'refuse') {    # as if the connection had broken
            $rec->{status} = 0;
            $self->_record($rec);
            return;
        }
        my ($status, $answer) = $mode eq 'fail' ? ($mo{status} // 500, {error => 'gateway failing (test mode)'})
            : $method ne 'POST' ? (405, {error => 'POST only'})
            : (200, {received => JSON::PP::true, delivery => $rec->{delivery}});
        $rec->{status} = $status;
        $rec->{delay} = $mode eq 'slow' ? 0 + ($mo{seconds} // 5) : 0;
        $self->_record($rec);
        sleep $rec->{delay} if $rec->{delay};
        _reply($sock, $status, $answer, $close) or return;
        return if $close;
    }
}

sub _fill {
    my ($sock, $buf, $timeout) = @_;
    return 0 unless IO::Select->new($sock)->can_read($timeout);
    return sysread($sock, $$buf, 65536, length $$buf) ? 1 : 0;
}

sub _reply {
    my ($sock, $status, $answer, $close) = @_;
    my $body = $JSON->encode($answer);
    my $msg = "HTTP/1.1 $status " . ($REASON{$status} // 'Error') . "\r\n"
        . 'Date: ' . strftime('%a, %d %b %Y %H:%M:%S GMT', gmtime) . "\r\n"
        . "Content-Type: application/json\r\n"
        . 'Content-Length: ' . length($body) . "\r\n"
        . 'Connection: ' . ($close ? 'close' : 'keep-alive') . "\r\n\r\n" . $body;
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
