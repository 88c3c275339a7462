package FakeStripe;

# A fake Stripe API for the integration tests: POST /v1/checkout/sessions and /v1/billing_portal/sessions on
# 127.0.0.1, Stripe's wire format (form bodies in bracket notation, Bearer or Basic key, JSON answers and errors),
# and modes that make it slow, failing or unreachable (FakeServer's). Core Perl only.
#
#   my $fs = FakeStripe->start(dir => $tmp, key => 'sk_test_123');   # also mode => .., seconds => .., prices => [..]
#   # PaywallStripeAPI $fs->url
#   $fs->mode('slow', seconds => 10);  $fs->mode('fail', status => 503);  $fs->mode('refuse');  $fs->mode('ok');
#   my @r = $fs->requests;  my $r = $fs->last_request;  $r->{params}{line_items}[0]{price}
#   $fs->clear;  $fs->stop;   (also on DESTROY)
#
# A record (one JSON line per request in <dir>/fakestripe-<port>.requests) holds FakeServer's fields, with path
# without its query and: query, params (decoded, UTF-8 text; undef when not decoded). A request that 'refuse' drops
# is not recorded: Stripe never saw it, and clients retry and find the port refused.

use strict;
use warnings;

use parent 'FakeServer';

use Encode qw(decode);
use JSON::PP;
use MIME::Base64 qw(decode_base64);

my $PRETTY = JSON::PP->new->utf8->canonical->pretty->indent_length(2);    # Stripe indents its answers by 2
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

sub key { $_[0]{key} }

sub last_request { my @r = $_[0]->requests; return $r[-1] }

##############################################################################
# FakeServer's hooks

sub init {
    my ($self, $o) = @_;
    $self->{key} = (delete $o->{key}) // 'sk_test_fake';
    my $prices = delete $o->{prices};
    $self->{prices} = $prices ? {map { $_ => 1 } @$prices} : undef;
}

sub describe {
    my ($self, $req) = @_;
    @$req{qw(path query)} = split /\?/, $req->{path}, 2;
}

sub error {
    my ($self, $what) = @_;
    return _error('invalid_request_error', 'Malformed request') if $what eq 'malformed';
    return _error('invalid_request_error', 'Request too large') if $what eq 'too large';
    return _error('api_error', 'Sorry, something went wrong. We\'ve already been notified of the problem, but if you '
        . 'need any help, you can reach us at support.stripe.com/contact.');
}

sub render {
    my ($self, $status, $answer, $req) = @_;
    my %h = ('Server' => 'nginx', 'Cache-Control' => 'no-cache, no-store', 'Request-Id' => 'req_' . _random(14));
    # no request when it could not be read, so nothing of it to echo
    if ($req) {
        $h{'Idempotency-Key'} = $req->{headers}{'idempotency-key'} if defined $req->{headers}{'idempotency-key'};
        $h{'Stripe-Version'} = $req->{headers}{'stripe-version'} // $API_VERSION;
        $h{'WWW-Authenticate'} = 'Basic realm="Stripe"' if $status == 401;
    }
    return ($PRETTY->encode($answer), %h);
}

##############################################################################
# Stripe's behaviour

sub handle {
    my ($self, $req) = @_;
    my %routes = ('/v1/checkout/sessions' => \&_checkout, '/v1/billing_portal/sessions' => \&_portal);
    my $route = $routes{$req->{path}};

    my $key = _api_key($req->{headers}{authorization});
    return (401, _error('invalid_request_error', 'You did not provide an API key. You need to provide your API '
        . 'key in the Authorization header, using Bearer auth (e.g. \'Authorization: Bearer YOUR_SECRET_KEY\').'))
        unless defined $key && length $key;
    return (401, _error('invalid_request_error', 'Invalid API Key provided: ' . _redact($key)))
        unless $key eq $self->{key};
    return (404, _error('invalid_request_error', "Unrecognized request URL ($req->{method}: $req->{path}). Please "
        . 'see https://stripe.com/docs or we can help at https://support.stripe.com/.'))
        unless $route && $req->{method} eq 'POST';

    my $type = $req->{headers}{'content-type'} // '';
    return (400, _error('invalid_request_error', "Invalid request: unsupported Content-Type $type. If error "
        . 'persists and you need assistance, please contact support@stripe.com.'))
        if length $req->{body} && $type !~ m{^application/x-www-form-urlencoded\s*(?:;|\z)}i;

    my ($params, $err) = _decode_form(join '&', grep { defined && length } $req->{query}, $req->{body});
    $req->{params} = $params;
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
