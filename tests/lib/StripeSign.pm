package StripeSign;

# Stripe webhook events for the integration tests: realistic event JSON, and Stripe-Signature headers made by the
# official stripe npm package (tests/node/stripe-sign.js), so that the modules are checked against Stripe's own
# signing code. Core Perl only (JSON::PP).
#
#   plan skip_all => StripeSign::unavailable_reason() unless StripeSign::available();
#   my $sub = StripeSign::subscription(customer => 'cus_1', price => 'price_print', user_id => '42');
#   my $json = StripeSign::event(type => 'customer.subscription.created', object => $sub);
#   my $sig = StripeSign::header($json, 'whsec_test', time);          # t=...,v1=...
#   my @sigs = StripeSign::headers([[$json, 'whsec_test'], {payload => $other, secret => 's', timestamp => 5}]);
#
# The builders give the shape of API version 2024-06-20 unless api_version => '2025-03-31.basil' (or later) is
# passed, which moves what basil moved: the subscription's current_period_end into its items, the invoice's
# subscription into parent.subscription_details, the checkout's shipping_details into collected_information. Any
# other named argument replaces the top-level field of that name (undef gives null). Integer-looking values of
# integer fields become JSON numbers and booleans JSON booleans, so that '1700000000' from a test does not end up
# as a string that the module would rightly refuse.

use strict;
use utf8;
use warnings;

use Carp qw(croak);
use Cwd qw(abs_path);
use Encode qw(decode FB_CROAK LEAVE_SRC);
use File::Basename qw(dirname);
use IPC::Open2 qw(open2);
use JSON::PP;

our $NODE_DIR = abs_path(dirname(abs_path(__FILE__)) . '/../node');
our $SCRIPT = "$NODE_DIR/stripe-sign.js";
our $NODE = $ENV{MODTEST_NODE} // 'node';
our $API_VERSION = '2024-06-20';

my $JSON = JSON::PP->new->utf8->canonical;
my %INTEGER = map { $_ => 1 } qw(created amount_total amount_subtotal amount_paid amount_due current_period_end
    current_period_start cancel_at canceled_at ended_at start_date expires_at);
my %BOOLEAN = map { $_ => 1 } qw(livemode cancel_at_period_end);

##############################################################################
# signatures

sub unavailable_reason {
    my $node = _which($NODE) or return "no $NODE in PATH";
    return "no stripe package in $NODE_DIR/node_modules (run npm ci in tests/node)"
        unless -f "$NODE_DIR/node_modules/stripe/package.json";
    return;
}

sub available { return !defined unavailable_reason() }

sub header {
    my ($payload, $secret, $timestamp) = @_;
    return (headers([[$payload, $secret, $timestamp]]))[0];
}

# [payload, secret, timestamp] or {payload, secret, timestamp} each; timestamp undef: now. One node start for all.
sub headers {
    my ($items) = @_;
    my @in = map {
        my ($payload, $secret, $ts) = ref $_ eq 'HASH' ? @$_{qw(payload secret timestamp)} : @$_;
        croak 'a payload and a secret are needed' unless defined $payload && defined $secret;
        croak 'the payload must be bytes' if $payload =~ /[^\x00-\xff]/;
        # the package signs a JS string as UTF-8: other bytes cannot reach it unchanged
        my $text = eval { decode('UTF-8', $payload, FB_CROAK | LEAVE_SRC) } // croak 'the payload is not UTF-8';
        {payload => $text, secret => decode('UTF-8', $secret), defined $ts ? (timestamp => 0 + $ts) : ()};
    } @$items;

    my $pid = open2(my $out, my $in, _which($NODE) // $NODE, $SCRIPT);
    binmode $in;
    print $in $JSON->encode(\@in);
    close $in;
    my $answer = do { local $/; <$out> };
    waitpid $pid, 0;
    croak "stripe-sign.js failed (exit " . ($? >> 8) . ')' if $?;
    my $list = $JSON->decode($answer);
    croak 'stripe-sign.js gave ' . scalar(@$list) . ' headers for ' . scalar(@in) . ' payloads' unless @$list == @in;
    return @$list;
}

sub _which {
    my ($cmd) = @_;
    return -x $cmd ? $cmd : undef if $cmd =~ m{/};
    for my $dir (split /:/, $ENV{PATH} // '') {
        return "$dir/$cmd" if length $dir && -x "$dir/$cmd" && !-d "$dir/$cmd";
    }
    return;
}

##############################################################################
# events

# The event's JSON text (UTF-8 bytes), ready to sign and POST.
sub event {
    my (%o) = @_;
    croak 'event needs a type' unless $o{type};
    my %event = (
        id               => $o{id} // 'evt_1' . _random(24),
        object           => 'event',
        api_version      => exists $o{api_version} ? $o{api_version} : $API_VERSION,
        created          => $o{created} // time,
        data             => {object => $o{object} // {}},
        livemode         => $o{livemode} // 0,
        pending_webhooks => $o{pending_webhooks} // 1,
        request          => {id => undef, idempotency_key => undef},
        type             => $o{type},
    );
    $event{data}{previous_attributes} = $o{previous_attributes} if $o{previous_attributes};
    return $JSON->encode(_typed(\%event));
}

sub checkout_session {
    my (%o) = @_;
    my $basil = _basil(delete $o{api_version});
    my $email = exists $o{email} ? delete $o{email} : 'reader@example.com';
    my $name = exists $o{name} ? delete $o{name} : 'Zoë Müller';
    my %shipping_address = (line1 => 'Hauptstraße 1', line2 => undef, city => 'Berlin', postal_code => '10115',
        state => undef, country => 'DE');
    my $shipping = exists $o{shipping} ? delete $o{shipping} : {name => $name, %shipping_address};
    my $ship = $shipping && {
        name    => $shipping->{name},
        address => {map { $_ => $shipping->{$_} } qw(line1 line2 city postal_code state country)},
    };
    my $id = 'cs_test_a1' . _random(56);
    my %s = (
        id                          => $id,
        object                      => 'checkout.session',
        allow_promotion_codes       => undef,
        amount_subtotal             => 1990,
        amount_total                => 1990,
        cancel_url                  => 'https://news.example/subscribe?canceled=1',
        client_reference_id         => '42',
        created                     => time - 100,
        currency                    => 'eur',
        customer                    => 'cus_' . _random(14),
        customer_details            => {
            address => {%shipping_address, line2 => undef}, email => $email, name => $name, phone => undef,
            tax_exempt => 'none', tax_ids => [],
        },
        customer_email              => undef,
        expires_at                  => time + 86300,
        invoice                     => 'in_1' . _random(24),
        livemode                    => 0,
        locale                      => undef,
        metadata                    => {},
        mode                        => 'subscription',
        payment_method_types        => ['card'],
        payment_status              => 'paid',
        shipping_address_collection => {allowed_countries => ['DE', 'AT', 'CH', 'FR']},
        status                      => 'complete',
        subscription                => 'sub_1' . _random(24),
        success_url                 => 'https://news.example/welcome?session_id={CHECKOUT_SESSION_ID}',
        ui_mode                     => 'hosted',
        url                         => undef,
    );
    if ($basil) {
        $s{collected_information} = {business_name => undef, individual_name => undef, shipping_details => $ship};
    } else {
        $s{shipping_details} = $ship;
    }
    return _typed({%s, %o});
}

sub subscription {
    my (%o) = @_;
    my $basil = _basil(delete $o{api_version});
    my $price = exists $o{price} ? delete $o{price} : 'price_1' . _random(24);
    my $user = exists $o{user_id} ? delete $o{user_id} : '42';
    my $start = time - 100;
    my $end = exists $o{current_period_end} ? delete $o{current_period_end} : $start + 30 * 86400;
    my $id = $o{id} // 'sub_1' . _random(24);
    my $item = {
        id           => 'si_' . _random(14),
        object       => 'subscription_item',
        created      => $start,
        metadata     => {},
        price        => {
            id => $price, object => 'price', active => JSON::PP::true, currency => 'eur', product => 'prod_'
                . _random(14), recurring => {interval => 'month', interval_count => 1, usage_type => 'licensed'},
            type => 'recurring', unit_amount => 990,
        },
        quantity     => 1,
        subscription => $id,
    };
    my %s = (
        id                   => $id,
        object               => 'subscription',
        cancel_at            => undef,
        cancel_at_period_end => 0,
        canceled_at          => undef,
        created              => $start,
        currency             => 'eur',
        customer             => 'cus_' . _random(14),
        ended_at             => undef,
        items                => {object => 'list', data => [$item], has_more => JSON::PP::false, total_count => 1,
            url => "/v1/subscription_items?subscription=$id"},
        latest_invoice       => 'in_1' . _random(24),
        livemode             => 0,
        metadata             => defined $user ? {user_id => $user} : {},
        start_date           => $start,
        status               => 'active',
    );
    if ($basil) {
        @$item{qw(current_period_start current_period_end)} = ($start, $end);
    } else {
        @s{qw(current_period_start current_period_end)} = ($start, $end);
    }
    return _typed({%s, %o});
}

sub invoice {
    my (%o) = @_;
    my $basil = _basil(delete $o{api_version});
    my $sub = exists $o{subscription} ? delete $o{subscription} : 'sub_1' . _random(24);
    my %v = (
        id             => 'in_1' . _random(24),
        object         => 'invoice',
        amount_due     => 990,
        amount_paid    => 990,
        amount_remaining => 0,
        billing_reason => 'subscription_create',
        created        => time - 50,
        currency       => 'eur',
        customer       => 'cus_' . _random(14),
        livemode       => 0,
        status         => 'paid',
    );
    if ($basil) {
        $v{parent} = {type => 'subscription_details', quote_details => undef,
            subscription_details => {metadata => {}, subscription => $sub}};
    } else {
        $v{subscription} = $sub;
    }
    return _typed({%v, %o});
}

sub _basil {
    my ($version) = @_;
    return defined $version && $version ge '2025-03-31';
}

# integers and booleans as JSON wants them, however a test wrote them
sub _typed {
    my ($v) = @_;
    if (ref $v eq 'HASH') {
        for my $k (keys %$v) {
            my $x = $v->{$k};
            if ($INTEGER{$k} && defined $x && !ref $x && $x =~ /^-?\d+\z/) { $v->{$k} = 0 + $x }
            elsif ($BOOLEAN{$k} && defined $x && !JSON::PP::is_bool($x)) { $v->{$k} = $x ? JSON::PP::true : JSON::PP::false }
            else { _typed($x) }
        }
    } elsif (ref $v eq 'ARRAY') {
        _typed($_) for @$v;
    }
    return $v;
}

sub _random {
    my ($n) = @_;
    my @c = ('0' .. '9', 'A' .. 'Z', 'a' .. 'z');
    return join '', map { $c[rand @c] } 1 .. $n;
}

1;
