#!/usr/bin/perl
# The Stripe fakes themselves, no web server involved: FakeStripe answers checkout and portal sessions in Stripe's
# wire format, validates like Stripe, records what it got, serves connections concurrently and with keep-alive,
# and turns slow, failing or unreachable on demand; StripeSign's headers (from the stripe npm package) are the
# HMAC Stripe documents, and its events have the shapes the module's parser reads.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Digest::SHA qw(hmac_sha256_hex);
use File::Temp qw(tempdir);
use HTTP::Tiny;
use IO::Socket::INET;
use JSON::PP;
use MIME::Base64 qw(encode_base64);
use Test::More;
use Time::HiRes qw(time);

use FakeStripe;
use StripeSign;

binmode Test::More->builder->$_, ':encoding(UTF-8)' for qw(output failure_output todo_output);

my $KEY = 'sk_test_51PbQzLkdIwHu7ixFakeKey0001';
my $dir = tempdir('fakestripe-t-XXXXXX', TMPDIR => 1, CLEANUP => 1);
my $fs = FakeStripe->start(dir => $dir, key => $KEY);
like($fs->url, qr{^http://127\.0\.0\.1:\d+\z}, 'listens on 127.0.0.1');

my $ua = HTTP::Tiny->new(timeout => 10);

# form-encoded as Stripe's libraries do it: brackets escaped too
sub form {
    my @kv = @_;
    my @pairs;
    while (my ($k, $v) = splice @kv, 0, 2) {
        utf8::encode($v);    # values are text, sent as UTF-8
        push @pairs, join '=', map { (my $s = $_) =~ s/([^A-Za-z0-9_.~-])/sprintf '%%%02X', ord $1/ge; $s } $k, $v;
    }
    return join '&', @pairs;
}

sub call {
    my ($path, $body, %o) = @_;
    my %h = ('Content-Type' => 'application/x-www-form-urlencoded', %{$o{headers} // {}});
    $h{Authorization} = "Bearer $KEY" unless exists $h{Authorization};
    delete $h{$_} for grep { !defined $h{$_} } keys %h;
    my $r = ($o{ua} // $ua)->post($fs->url . $path, {headers => \%h, content => $body});
    $r->{json} = eval { decode_json($r->{content}) } if $r->{status} != 599;
    return $r;
}

my @checkout = (
    'line_items[0][price]'                          => 'price_1PaAbCLkdIwHu7ixDigital',
    'line_items[0][quantity]'                       => '1',
    mode                                            => 'subscription',
    success_url                                     => 'https://news.example/welcome?session_id={CHECKOUT_SESSION_ID}',
    cancel_url                                      => 'https://news.example/subscribe',
    client_reference_id                             => '42',
    customer_email                                  => "zo\x{eb}\@example.com",
    'subscription_data[metadata][user_id]'          => '42',
    'metadata[promo_code]'                          => 'SPRING',
    'shipping_address_collection[allowed_countries][0]' => 'FR',
    'shipping_address_collection[allowed_countries][1]' => 'DE',
    'discounts[0][coupon]'                          => 'SPRING24',
);

# ------------------------------------------------------------------------------------------ checkout session
my $r = call('/v1/checkout/sessions', form(@checkout), headers => {'Idempotency-Key' => 'k-1'});
is($r->{status}, 200, 'checkout session: 200');
my $cs = $r->{json};
like($cs->{id}, qr/^cs_test_a1[A-Za-z0-9]{56}\z/, 'checkout session: Stripe-like id');
is($cs->{object}, 'checkout.session', 'checkout session: object');
like($cs->{url}, qr{^https://checkout\.stripe\.com/c/pay/\Q$cs->{id}\E#}, 'checkout session: url with the id');
is($cs->{$_->[0]}, $_->[1], "checkout session: $_->[0]")
    for [mode => 'subscription'], [client_reference_id => '42'], [customer_email => "zo\x{eb}\@example.com"],
    [status => 'open'], [payment_status => 'unpaid'];
ok(JSON::PP::is_bool($cs->{livemode}) && !$cs->{livemode}, 'checkout session: livemode false');
like($r->{headers}{'request-id'}, qr/^req_[A-Za-z0-9]{14}\z/, 'Request-Id header');
is($r->{headers}{'idempotency-key'}, 'k-1', 'Idempotency-Key echoed');
is($r->{headers}{'content-type'}, 'application/json', 'JSON answer');

my $rec = $fs->last_request;
is_deeply($rec->{params}, {
    line_items => [{price => 'price_1PaAbCLkdIwHu7ixDigital', quantity => '1'}],
    mode => 'subscription',
    success_url => 'https://news.example/welcome?session_id={CHECKOUT_SESSION_ID}',
    cancel_url => 'https://news.example/subscribe',
    client_reference_id => '42',
    customer_email => "zo\x{eb}\@example.com",
    subscription_data => {metadata => {user_id => '42'}},
    metadata => {promo_code => 'SPRING'},
    shipping_address_collection => {allowed_countries => ['FR', 'DE']},
    discounts => [{coupon => 'SPRING24'}],
}, 'recorded: params decoded into hashes and arrays');
is($rec->{method} . ' ' . $rec->{path}, 'POST /v1/checkout/sessions', 'recorded: method and path');
is($rec->{headers}{authorization}, "Bearer $KEY", 'recorded: Authorization');
is($rec->{body}, form(@checkout), 'recorded: raw body');
is($rec->{status}, 200, 'recorded: status');
is($rec->{response}{id}, $cs->{id}, 'recorded: answer');

$r = call('/v1/checkout/sessions', form(@checkout), headers => {Authorization => 'Basic ' . encode_base64("$KEY:", '')});
is($r->{status}, 200, 'HTTP Basic with the key as user is accepted');
my @recs = $fs->requests;
is(scalar @recs, 2, 'two requests recorded');
is($recs[1]{conn}, $recs[0]{conn}, 'keep-alive: the second request came on the same connection');
is($recs[1]{nth}, 2, 'keep-alive: as its second request');
$r = call('/v1/checkout/sessions', form(@checkout), headers => {Connection => 'close'});
is($r->{headers}{connection}, 'close', 'Connection: close is honoured');
$fs->clear;
is(scalar $fs->requests, 0, 'clear empties the record');

# ------------------------------------------------------------------------------------------------ refusals
sub refused {
    my ($name, $status, $r, %want) = @_;
    is($r->{status}, $status, "$name: $status");
    is($r->{json}{error}{$_}, $want{$_}, "$name: error $_") for sort keys %want;
}

$r = call('/v1/checkout/sessions', form(@checkout), headers => {Authorization => 'Bearer sk_test_wrongkey00001234'});
refused('wrong key', 401, $r, type => 'invalid_request_error');
like($r->{json}{error}{message}, qr/^Invalid API Key provided: sk_test_\*+1234\z/, 'wrong key: redacted in message');
refused('no key', 401, call('/v1/checkout/sessions', form(@checkout), headers => {Authorization => undef}),
    type => 'invalid_request_error');

$r = call('/v1/checkout/sessions', form(@checkout, foo => 'bar'));
refused('unknown parameter', 400, $r, code => 'parameter_unknown', param => 'foo',
    message => 'Received unknown parameter: foo');
refused('unknown nested parameter', 400, call('/v1/checkout/sessions', form(@checkout, 'subscription_data[trial]' => 1)),
    code => 'parameter_unknown', param => 'subscription_data[trial]');
refused('JSON body', 400, call('/v1/checkout/sessions', '{"mode":"subscription"}',
    headers => {'Content-Type' => 'application/json'}), type => 'invalid_request_error');

my %c = @checkout;
my @no_success = map { $_ => $c{$_} } grep { $_ ne 'success_url' } sort keys %c;
refused('missing success_url', 400, call('/v1/checkout/sessions', form(@no_success)),
    code => 'parameter_missing', param => 'success_url');
refused('subscription without price', 400, call('/v1/checkout/sessions', form(mode => 'subscription',
    success_url => 'https://x.example/', 'line_items[0][quantity]' => 1)),
    code => 'parameter_missing', param => 'line_items[0][price]');
refused('quantity not an integer', 400, call('/v1/checkout/sessions', form(@checkout, 'line_items[0][quantity]' => 'two')),
    param => 'line_items[0][quantity]');
refused('relative success_url', 400, call('/v1/checkout/sessions', form(@checkout, success_url => '/welcome')),
    code => 'url_invalid', param => 'success_url');
refused('discounts with allow_promotion_codes', 400,
    call('/v1/checkout/sessions', form(@checkout, allow_promotion_codes => 'true')), code => 'parameters_exclusive');
refused('customer with customer_email', 400,
    call('/v1/checkout/sessions', form(@checkout, customer => 'cus_QaBcDeFgHiJkLm')), code => 'parameters_exclusive');
refused('unknown path', 404, call('/v1/checkout/session', form(@checkout)), type => 'invalid_request_error');

# -------------------------------------------------------------------------------------------- portal session
$r = call('/v1/billing_portal/sessions', form(customer => 'cus_QaBcDeFgHiJkLm', return_url => 'https://news.example/account'));
is($r->{status}, 200, 'portal session: 200');
like($r->{json}{id}, qr/^bps_\w+\z/, 'portal session: id');
is($r->{json}{object}, 'billing_portal.session', 'portal session: object');
like($r->{json}{url}, qr{^https://billing\.stripe\.com/p/session/test_\w+\z}, 'portal session: url');
is($r->{json}{customer}, 'cus_QaBcDeFgHiJkLm', 'portal session: customer');
is($r->{json}{return_url}, 'https://news.example/account', 'portal session: return_url');
refused('portal without customer', 400, call('/v1/billing_portal/sessions', form(return_url => 'https://x.example/')),
    code => 'parameter_missing', param => 'customer');

# ------------------------------------------------------------------------------------- raw HTTP/1.1 details
sub raw {
    my ($text, $until) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $fs->port, Timeout => 5) or return '';
    my $body = $text->{body} // '';
    print $s "POST /v1/checkout/sessions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer $KEY\r\n"
        . "Content-Type: application/x-www-form-urlencoded\r\nConnection: close\r\n$text->{headers}\r\n";
    my $got = '';
    if ($text->{expect}) {
        sysread $s, $got, 4096;    # the 100 Continue, before any body
        print $s $body;
    } else {
        print $s $body;
    }
    local $/;
    return $got . (<$s> // '');
}
my $body = form(@checkout);
my $got = raw({headers => "Content-Length: " . length($body) . "\r\nExpect: 100-continue\r\n", body => $body,
    expect => 1});
like($got, qr{^HTTP/1\.1 100 Continue\r\n\r\nHTTP/1\.1 200 }, 'Expect: 100-continue gets 100, then the answer');
my $chunked = join('', map { sprintf("%x\r\n%s\r\n", length $_, $_) } unpack '(a100)*', $body) . "0\r\n\r\n";
like(raw({headers => "Transfer-Encoding: chunked\r\n", body => $chunked}), qr{^HTTP/1\.1 200 }, 'chunked body');
is($fs->last_request->{body}, $body, 'chunked body: reassembled');

# ------------------------------------------------------------------------------------------------ modes
$fs->mode('slow', seconds => 1);
is($fs->mode, 'slow', 'mode reads back');
my $t0 = time;
my @socks = map {
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $fs->port, Timeout => 5);
    print $s "POST /v1/billing_portal/sessions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer $KEY\r\n"
        . "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 26\r\nConnection: close\r\n\r\n"
        . "customer=cus_QaBcDeFgHiJkL";
    $s;
} 1 .. 3;
my @answers = map { local $/; scalar <$_> } @socks;
my $took = time - $t0;
is(scalar(grep { m{^HTTP/1\.1 200 } } @answers), 3, 'slow: three concurrent connections answered');
ok($took >= 0.9 && $took < 1.8, sprintf('slow: served in parallel (%.2f s for three 1 s answers)', $took));

$fs->mode('slow', seconds => 10);
$t0 = time;
$r = call('/v1/checkout/sessions', form(@checkout), ua => HTTP::Tiny->new(timeout => 1));
$took = time - $t0;
is($r->{status}, 599, 'slow: a client with a 1 s timeout gives up');
ok($took >= 0.9 && $took < 2.5, sprintf('slow: after about 1 s (%.2f s)', $took));
is($fs->last_request->{delay}, 10, 'slow: the request was recorded before the delay');

$fs->mode('fail');
refused('fail', 500, call('/v1/checkout/sessions', form(@checkout)), type => 'api_error');
$fs->mode('fail', status => 503);
is(call('/v1/checkout/sessions', form(@checkout))->{status}, 503, 'fail: another status');

$fs->mode('refuse');
$t0 = time;
$r = call('/v1/checkout/sessions', form(@checkout), ua => HTTP::Tiny->new(timeout => 5));
is($r->{status}, 599, 'refuse: no answer');
like($r->{content}, qr/refused/i, 'refuse: connection refused');
ok(time - $t0 < 1, 'refuse: at once');

$fs->mode('ok');
is(call('/v1/checkout/sessions', form(@checkout))->{status}, 200, 'ok again, on the same port');

my $port = $fs->port;
$fs->stop;
ok(!IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Timeout => 1), 'stop: port closed');

# ---------------------------------------------------------------------------------------- webhook signatures
SKIP: {
    skip 'StripeSign: ' . StripeSign::unavailable_reason(), 9 unless StripeSign::available();
    my $secret = 'whsec_Ab12Cd34Ef56Gh78Ij90';
    my $payload = StripeSign::event(type => 'customer.subscription.updated', created => 1717999990,
        object => StripeSign::subscription(customer => 'cus_QaBcDeFgHiJkLm', price => 'price_print'));
    my $h = StripeSign::header($payload, $secret, 1718000000);
    like($h, qr/^t=1718000000,v1=[0-9a-f]{64}\z/, 'header: t=<ts>,v1=<hex>');
    is((split /v1=/, $h)[1], hmac_sha256_hex("1718000000.$payload", $secret), 'header: v1 is HMAC-SHA256("t.payload")');

    my $checkout = StripeSign::event(type => 'checkout.session.completed',
        object => StripeSign::checkout_session(client_reference_id => '42'));
    like($checkout, qr/Zo\xc3\xab/, 'event: UTF-8 text');
    my @batch = ([$payload, $secret, 1], {payload => $checkout, secret => 'whsec_other', timestamp => 2},
        [$checkout, $secret]);
    my @h = StripeSign::headers(\@batch);
    is(scalar @h, 3, 'headers: one per payload');
    is($h[0], 't=1,v1=' . hmac_sha256_hex("1.$payload", $secret), 'headers: first');
    is($h[1], 't=2,v1=' . hmac_sha256_hex("2.$checkout", 'whsec_other'), 'headers: UTF-8 payload signed as bytes');
    my ($ts) = $h[2] =~ /^t=(\d+),/;
    ok(abs($ts - time) < 60, 'headers: timestamp defaults to now');
    is($h[2], "t=$ts,v1=" . hmac_sha256_hex("$ts.$checkout", $secret), 'headers: third');
    eval { StripeSign::header("\xff\xfe", $secret) };
    like($@, qr/not UTF-8/, 'header: a payload the package cannot sign is refused');
}

# ------------------------------------------------------------------------------------------- event builders
my $ev = decode_json(StripeSign::event(type => 'invoice.paid', id => 'evt_1', created => '1700000000',
    object => StripeSign::invoice(subscription => 'sub_1')));
is_deeply([@$ev{qw(id object api_version created type pending_webhooks)}],
    ['evt_1', 'event', '2024-06-20', 1700000000, 'invoice.paid', 1], 'event: envelope');
ok(JSON::PP::is_bool($ev->{livemode}), 'event: livemode is a boolean');
is($ev->{data}{object}{subscription}, 'sub_1', 'invoice 2024-06-20: subscription at the top');
my $basil = StripeSign::invoice(api_version => '2025-03-31.basil', subscription => 'sub_2');
is($basil->{parent}{subscription_details}{subscription}, 'sub_2', 'invoice basil: subscription under parent');
ok(!exists $basil->{subscription}, 'invoice basil: none at the top');
my $sub = StripeSign::subscription(api_version => '2025-03-31.basil', current_period_end => 1800000000);
is($sub->{items}{data}[0]{current_period_end}, 1800000000, 'subscription basil: period end in the item');
ok(!exists $sub->{current_period_end}, 'subscription basil: none at the top');
my $cko = StripeSign::checkout_session(api_version => '2025-03-31.basil');
is($cko->{collected_information}{shipping_details}{address}{country}, 'DE', 'checkout basil: collected shipping');
is(StripeSign::checkout_session(shipping => undef)->{shipping_details}, undef, 'checkout: shipping can be left out');

done_testing();
