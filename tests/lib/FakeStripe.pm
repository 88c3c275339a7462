package FakeStripe;

# A fake Stripe API for the integration tests: POST /v1/checkout/sessions and /v1/billing_portal/sessions on
# 127.0.0.1, Stripe's wire format (form bodies in bracket notation, Bearer or Basic key, JSON answers and errors),
# and modes that make it slow, failing or unreachable. Core Perl only.
#
#   my $fs = FakeStripe->start(dir => $tmp, key => 'sk_test_123');   # also mode => .., seconds => .., prices => [..]
#   # PaywallStripeAPI $fs->url
#   $fs->mode('slow', seconds => 10);  $fs->mode('fail', status => 503);  $fs->mode('refuse');  $fs->mode('ok');
#   my @r = $fs->requests;  my $r = $fs->last_request;  $r->{params}{line_items}[0]{price}
#   $fs->clear;  $fs->stop;   (also on DESTROY)
#
# A record (one JSON line per request in <dir>/fakestripe-<port>.requests) holds: time, method, path, query,
# headers (lower-case names), body (raw bytes), params (decoded, UTF-8 text; undef when not decoded), status,
# response (the JSON answered), mode, delay, conn and nth (which connection, which request on it: keep-alive shows
# as the same conn with nth > 1). A request is recorded before its answer is delayed, so a client that timed out
# still finds it.
#
# Each connection is served by its own process, so a slow answer does not hold up the others. Modes live in a file
# that each request re-reads; 'refuse' closes the listening socket (new connections are refused at once, open
# keep-alive connections are closed at their next request) and keeps the port bound so that nothing else takes it.

use strict;
use warnings;

use Carp qw(croak);
use Encode qw(decode);
use File::Temp qw(tempdir);
use Fcntl qw(:flock);
use IO::Select;
use IO::Socket::INET;
use JSON::PP;
use MIME::Base64 qw(decode_base64);
use POSIX qw(_exit setpgid strftime WNOHANG);
use Time::HiRes qw(sleep time);

my $JSON = JSON::PP->new->utf8->canonical;
my $PRETTY = JSON::PP->new->utf8->canonical->pretty->indent_length(2);    # Stripe indents its answers by 2
my $IDLE = 15;            # seconds a keep-alive connection may wait for its next request
my $HEAD_MAX = 65536;
my $BODY_MAX = 1 << 20;
my $API_VERSION = '2024-06-20';

# Stripe's parameters: a hash spec lists the known keys ('*': any key), an array spec the shape of its elements, a
# string the kind of value. Real parameters the tests do not care about are 'any', so that only a misspelt or
# invented name is refused.
my %METADATA = ('*' => 'metadata_value');
my %CHECKOUT = (
    mode                        => 'enum:payment,setup,subscription',
    success_url                 => 'url',
    cancel_url                  => 'url',
    return_url                  => 'url',
    client_reference_id         => 'string',
    customer                    => 'customer',
    customer_email              => 'string',
    line_items                  => [{
        price => 'string', quantity => 'int', price_data => 'any', adjustable_quantity => 'any',
        dynamic_tax_rates => 'any', tax_rates => 'any',
    }],
    subscription_data           => {
        metadata => \%METADATA, trial_period_days => 'int', description => 'string', trial_end => 'int',
        trial_settings => 'any', default_tax_rates => 'any', billing_cycle_anchor => 'int',
        proration_behavior => 'string', application_fee_percent => 'any', on_behalf_of => 'string',
        transfer_data => 'any', invoice_settings => 'any', billing_mode => 'any',
    },
    metadata                    => \%METADATA,
    shipping_address_collection => {allowed_countries => ['country']},
    discounts                   => [{coupon => 'string', promotion_code => 'string'}],
    allow_promotion_codes       => 'bool',
    locale                      => 'string',
    billing_address_collection  => 'enum:auto,required',
    payment_method_types        => ['string'],
    expand                      => ['string'],
    map { $_ => 'any' } qw(after_expiration automatic_tax consent_collection currency custom_fields custom_text
        customer_creation customer_update expires_at invoice_creation payment_intent_data payment_method_collection
        payment_method_configuration payment_method_options phone_number_collection redirect_on_completion
        saved_payment_method_options setup_intent_data shipping_options submit_type tax_id_collection ui_mode),
);
my %PORTAL = (
    customer      => 'customer',
    return_url    => 'url',
    configuration => 'string',
    locale        => 'string',
    on_behalf_of  => 'string',
    flow_data     => 'any',
    expand        => ['string'],
);

my %REASON = (200 => 'OK', 400 => 'Bad Request', 401 => 'Unauthorized', 402 => 'Request Failed',
    404 => 'Not Found', 500 => 'Internal Server Error', 502 => 'Bad Gateway', 503 => 'Service Unavailable');

##############################################################################
# the test's side

sub start {
    my ($class, %o) = @_;
    my $self = bless {
        owner  => $$,
        dir    => $o{dir} // tempdir('fakestripe-XXXXXX', TMPDIR => 1, CLEANUP => 1),
        key    => $o{key} // 'sk_test_fake',
        prices => $o{prices} ? {map { $_ => 1 } @{$o{prices}}} : undef,
    }, $class;
    croak "$self->{dir} is not a directory" unless -d $self->{dir};

    # bound before the fork, so the port accepts connections as soon as start returns
    my $listen = _listen(0) or croak "listen: $!";
    $self->{port} = $listen->sockport;
    $self->{base} = "$self->{dir}/fakestripe-$self->{port}";
    open my $fh, '>', "$self->{base}.requests" or croak "$self->{base}.requests: $!";
    close $fh;
    my %mode = %o;
    delete @mode{qw(dir key prices mode)};
    $self->_write_mode($o{mode} // 'ok', %mode);

    my $pid = fork // croak "fork: $!";
    if ($pid == 0) {
        # no END blocks, DESTROY or Test::More output from this copy of the test process
        $SIG{$_} = 'DEFAULT' for qw(INT TERM HUP QUIT);
        eval { $self->_serve($listen) };
        print STDERR "FakeStripe: $@" if $@;
        _exit(0);
    }
    close $listen;
    $self->{pid} = $pid;
    $self->_wait_state($o{mode} // 'ok');
    return $self;
}

sub url { "http://127.0.0.1:$_[0]{port}" }
sub port { $_[0]{port} }
sub key { $_[0]{key} }
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

sub last_request { my @r = $_[0]->requests; return $r[-1] }

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
    croak "FakeStripe did not switch to mode $mode";
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
    $0 = "fakestripe $self->{port}";
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
        return _reply($sock, 400, {}, _error('invalid_request_error', 'Malformed request'), 1)
            unless $proto && $proto =~ m{^HTTP/1\.[01]\z};
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
            return _reply($sock, 413, {}, _error('invalid_request_error', 'Request too large'), 1)
                if $len !~ /^\d+\z/ || $len > $BODY_MAX;
            # curl waits a second for this before sending a body over 1 KB
            syswrite $sock, "HTTP/1.1 100 Continue\r\n\r\n"
                if ($h{expect} // '') =~ /100-continue/i && length $buf < $len;
            while (length $buf < $len) { _fill($sock, \$buf, $IDLE) or return }
            $body = substr $buf, 0, $len, '';
        }

        my ($mode, %mo) = _read_mode("$self->{base}.mode");
        return if $mode eq 'refuse';    # as if the connection had broken: clients retry and find it refused
        my ($path, $query) = split /\?/, $target, 2;
        my $rec = {
            time => time, method => $method, path => $path, query => $query, headers => \%h, body => $body,
            mode => $mode, conn => $conn, nth => $nth,
        };
        my ($status, $answer) = $mode eq 'fail'
            ? ($mo{status} // 500, _error('api_error', 'Sorry, something went wrong. We\'ve already been notified of '
                . 'the problem, but if you need any help, you can reach us at support.stripe.com/contact.'))
            : $self->_handle($rec);
        $rec->{status} = $status;
        $rec->{response} = $answer;
        $rec->{delay} = $mode eq 'slow' ? 0 + ($mo{seconds} // 5) : 0;
        $self->_record($rec);
        sleep $rec->{delay} if $rec->{delay};

        my %extra;
        $extra{'Idempotency-Key'} = $h{'idempotency-key'} if defined $h{'idempotency-key'};
        $extra{'Stripe-Version'} = $h{'stripe-version'} // $API_VERSION;
        $extra{'WWW-Authenticate'} = 'Basic realm="Stripe"' if $status == 401;
        _reply($sock, $status, \%extra, $answer, $close) or return;
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
    my ($sock, $status, $extra, $answer, $close) = @_;
    my $body = $PRETTY->encode($answer);
    my %h = (
        'Server'         => 'nginx',
        'Date'           => strftime('%a, %d %b %Y %H:%M:%S GMT', gmtime),
        'Content-Type'   => 'application/json',
        'Content-Length' => length $body,
        'Cache-Control'  => 'no-cache, no-store',
        'Connection'     => $close ? 'close' : 'keep-alive',
        'Request-Id'     => 'req_' . _random(14),
        %$extra,
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

##############################################################################
# Stripe's behaviour

sub _handle {
    my ($self, $rec) = @_;
    my %routes = ('/v1/checkout/sessions' => \&_checkout, '/v1/billing_portal/sessions' => \&_portal);
    my $route = $routes{$rec->{path}};

    my $key = _api_key($rec->{headers}{authorization});
    return (401, _error('invalid_request_error', 'You did not provide an API key. You need to provide your API '
        . 'key in the Authorization header, using Bearer auth (e.g. \'Authorization: Bearer YOUR_SECRET_KEY\').'))
        unless defined $key && length $key;
    return (401, _error('invalid_request_error', 'Invalid API Key provided: ' . _redact($key)))
        unless $key eq $self->{key};
    return (404, _error('invalid_request_error', "Unrecognized request URL ($rec->{method}: $rec->{path}). Please "
        . 'see https://stripe.com/docs or we can help at https://support.stripe.com/.'))
        unless $route && $rec->{method} eq 'POST';

    my $type = $rec->{headers}{'content-type'} // '';
    return (400, _error('invalid_request_error', "Invalid request: unsupported Content-Type $type. If error "
        . 'persists and you need assistance, please contact support@stripe.com.'))
        if length $rec->{body} && $type !~ m{^application/x-www-form-urlencoded\s*(?:;|\z)}i;

    my ($params, $err) = _decode_form(join '&', grep { defined && length } $rec->{query}, $rec->{body});
    $rec->{params} = $params;
    return (400, $err) if $err;
    return $route->($self, $params);
}

sub _api_key {
    my ($auth) = @_;
    return unless defined $auth;
    return $1 if $auth =~ /^Bearer\s+(\S+)\s*\z/i;
    return (split /:/, decode_base64($1), 2)[0] if $auth =~ /^Basic\s+(\S+)\s*\z/i;
    return;
}

sub _redact {
    my ($key) = @_;
    return $key if length $key < 12;
    return substr($key, 0, 8) . ('*' x (length($key) - 12)) . substr($key, -4);
}

sub _checkout {
    my ($self, $sent) = @_;
    my $err = _check(\%CHECKOUT, $sent, '');
    return (400, $err) if $err;
    my $p = {map { $_ => $sent->{$_} } grep { _given($sent->{$_}) } keys %$sent};
    for my $name (qw(mode success_url)) {
        return (400, _missing($name)) unless defined $p->{$name} && length $p->{$name};
    }
    if ($p->{mode} ne 'setup') {
        return (400, _missing('line_items')) unless $p->{line_items} && @{$p->{line_items}};
        my $i = 0;
        for my $item (@{$p->{line_items}}) {
            if ($p->{mode} eq 'subscription' || !$item->{price_data}) {
                return (400, _missing("line_items[$i][price]")) unless length($item->{price} // '');
            }
            return (400, _missing("line_items[$i][quantity]")) unless length($item->{quantity} // '');
            return (400, _invalid("line_items[$i][price]", "No such price: '$item->{price}'", 'resource_missing'))
                if defined $item->{price} && $self->{prices} && !$self->{prices}{$item->{price}};
            $i++;
        }
    }
    for my $pair ([qw(allow_promotion_codes discounts)], [qw(customer customer_email)]) {
        next unless grep({ _given($p->{$_}) } @$pair) == 2;
        return (400, _invalid($pair->[1], "You may only specify one of these parameters: $pair->[0], $pair->[1].",
            'parameters_exclusive'));
    }

    my $id = ($self->{key} =~ /^sk_live_/ ? 'cs_live_' : 'cs_test_') . 'a1' . _random(56);
    my $now = time;
    return (200, {
        id                          => $id,
        object                      => 'checkout.session',
        after_expiration            => undef,
        allow_promotion_codes       => _given($p->{allow_promotion_codes})
            ? ($p->{allow_promotion_codes} eq 'true' ? JSON::PP::true : JSON::PP::false) : undef,
        amount_subtotal             => undef,
        amount_total                => undef,
        billing_address_collection  => $p->{billing_address_collection},
        cancel_url                  => $p->{cancel_url},
        client_reference_id         => $p->{client_reference_id},
        created                     => int $now,
        currency                    => undef,
        customer                    => $p->{customer},
        customer_email              => $p->{customer_email},
        discounts                   => $p->{discounts} // [],
        expires_at                  => int($now) + 86400,
        livemode                    => $self->{key} =~ /^sk_live_/ ? JSON::PP::true : JSON::PP::false,
        locale                      => $p->{locale},
        metadata                    => $p->{metadata} // {},
        mode                        => $p->{mode},
        payment_method_types        => $p->{payment_method_types} // ['card'],
        payment_status              => 'unpaid',
        shipping_address_collection => $p->{shipping_address_collection},
        status                      => 'open',
        subscription                => undef,
        success_url                 => $p->{success_url},
        ui_mode                     => 'hosted',
        url                         => "https://checkout.stripe.com/c/pay/$id#fidkdWxOYHwnPyd1blpxYHZxWjA0" . _random(40),
    });
}

sub _portal {
    my ($self, $p) = @_;
    my $err = _check(\%PORTAL, $p, '');
    return (400, $err) if $err;
    return (400, _missing('customer')) unless _given($p->{customer});
    return (200, {
        id            => 'bps_1' . _random(23),
        object        => 'billing_portal.session',
        configuration => $p->{configuration} // 'bpc_1' . _random(23),
        created       => int time,
        customer      => $p->{customer},
        flow          => undef,
        livemode      => $self->{key} =~ /^sk_live_/ ? JSON::PP::true : JSON::PP::false,
        locale        => $p->{locale},
        on_behalf_of  => undef,
        return_url    => $p->{return_url},
        url           => 'https://billing.stripe.com/p/session/' . ($self->{key} =~ /^sk_live_/ ? '' : 'test_')
            . _random(48),
    });
}

# An empty value unsets an optional parameter, as at Stripe.
sub _given { defined $_[0] && (ref $_[0] || length $_[0]) }

# Stripe's bracket notation into hashes and arrays: a[b][0][c]=x gives {a => {b => [{c => 'x'}]}}.
sub _decode_form {
    my ($form) = @_;
    my %root;
    for my $pair (split /&/, $form) {
        next unless length $pair;
        my ($k, $v) = map { my $s = $_ // ''; $s =~ tr/+/ /; $s =~ s/%([0-9a-fA-F]{2})/chr hex $1/ge; decode('UTF-8', $s) }
            split /=/, $pair, 2;
        my ($name, $rest) = $k =~ /^([^\[\]]+)((?:\[[^\[\]]*\])*)\z/
            or return (\%root, _invalid($k, "Invalid parameter name: $k", 'parameter_unknown'));
        my @segs = $rest =~ /\[([^\[\]]*)\]/g;
        my $slot = \$root{$name};
        my $path = $name;
        for my $seg (@segs) {
            my $want = $seg =~ /^\d*\z/ ? 'ARRAY' : 'HASH';
            return (\%root, _invalid("$path\[$seg]", 'Invalid array'))
                if $want eq 'ARRAY' && length $seg > 4;    # no index past 9999
            return (\%root, _invalid($path, $want eq 'ARRAY' ? 'Invalid array' : 'Invalid hash'))
                if defined $$slot && ref $$slot ne $want;
            $$slot //= $want eq 'ARRAY' ? [] : {};
            $slot = $want eq 'HASH' ? \$$slot->{$seg} : \$$slot->[length $seg ? $seg : scalar @{$$slot}];
            $path .= "[$seg]";
        }
        return (\%root, _invalid($path, 'Invalid hash')) if ref $$slot;
        $$slot = $v;
    }
    return (\%root, undef);
}

# undef when $v fits $spec, else Stripe's error object
sub _check {
    my ($spec, $v, $path) = @_;
    my $sub = sub { length $path ? "$path\[$_[0]]" : $_[0] };
    if (ref $spec eq 'HASH') {
        return if !ref $v && !length $v;
        return _invalid($path, 'Invalid hash') unless ref $v eq 'HASH';
        for my $k (sort keys %$v) {
            my $s = $spec->{$k} // $spec->{'*'}
                or return _invalid($sub->($k), 'Received unknown parameter: ' . $sub->($k), 'parameter_unknown');
            my $err = _check($s, $v->{$k}, $sub->($k));
            return $err if $err;
        }
        return;
    }
    if (ref $spec eq 'ARRAY') {
        return if !ref $v && !length $v;
        return _invalid($path, 'Invalid array') unless ref $v eq 'ARRAY';
        for my $i (0 .. $#$v) {
            return _invalid($sub->($i), 'Invalid array') unless defined $v->[$i];
            my $err = _check($spec->[0], $v->[$i], $sub->($i));
            return $err if $err;
        }
        return;
    }
    return if $spec eq 'any';
    return _invalid($path, "Invalid string: $path") if ref $v;
    return if !length $v;
    if ($spec eq 'int') {
        return _invalid($path, "Invalid integer: $v", 'parameter_invalid_integer') unless $v =~ /^\d{1,15}\z/;
    } elsif ($spec eq 'bool') {
        return _invalid($path, "Invalid boolean: $v") unless $v =~ /^(?:true|false)\z/;
    } elsif ($spec eq 'url') {
        return _invalid($path, 'Not a valid URL', 'url_invalid') unless $v =~ m{^https?://[^/?#\s]+[^\s]*\z}i;
    } elsif ($spec eq 'customer') {
        return _invalid($path, "No such customer: '$v'", 'resource_missing') unless $v =~ /^cus_\w+\z/;
    } elsif ($spec eq 'country') {
        return _invalid($path, "Invalid $path: must be one of AC, AD, AE, ... (a two-letter country code)")
            unless $v =~ /^[A-Z]{2}\z/;
    } elsif ($spec eq 'metadata_value') {
        return _invalid($path, 'Metadata values can have up to 500 characters') if length $v > 500;
    } elsif ($spec =~ /^enum:(.*)/) {
        my @ok = split /,/, $1;
        return _invalid($path, "Invalid $path: must be one of " . join(', ', @ok)) unless grep { $_ eq $v } @ok;
    }
    return;
}

sub _error {
    my ($type, $message, %more) = @_;
    return {error => {type => $type, message => $message, %more}};
}

sub _invalid {
    my ($param, $message, $code) = @_;
    return _error('invalid_request_error', $message, param => $param, $code ? (code => $code) : ());
}

sub _missing {
    my ($param) = @_;
    return _invalid($param, "Missing required param: $param.", 'parameter_missing');
}

# forked processes share Perl's rand state, so ids come from the kernel
sub _random {
    my ($n) = @_;
    my @c = ('0' .. '9', 'A' .. 'Z', 'a' .. 'z');
    open my $fh, '<:raw', '/dev/urandom' or die "/dev/urandom: $!";
    my $bytes;
    read $fh, $bytes, $n;
    return join '', map { $c[$_ % 62] } unpack 'C*', $bytes;
}

1;
