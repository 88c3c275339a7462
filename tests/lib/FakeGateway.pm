package FakeGateway;

# A fake notification gateway for mod_booking's tests: takes the POSTs of BookingNotifyURL on 127.0.0.1, checks
# X-Booking-Signature ("t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>">") with the shared secret, records every
# request, and has modes that make it fail, slow or unreachable (FakeServer's). Core Perl only (Digest::SHA, JSON::PP).
#
#   my $gw = FakeGateway->start(secret => 'notify-secret-0123456789abcdef');   # also dir => .., mode => .., status =>
#   # BookingNotifyURL $gw->url   (http://127.0.0.1:<port>/notify)
#   $gw->mode('fail', status => 503);  $gw->mode('slow', seconds => 3);  $gw->mode('refuse');  $gw->mode('ok');
#   my @r = $gw->requests;  $gw->deliveries (ids in order of receipt);  $gw->clear;  $gw->stop (also on DESTROY)
#
# A record (one JSON line per request in <dir>/fakegateway-<port>.requests) holds FakeServer's fields and: payload
# (the decoded JSON body, undef when it is not JSON), event (X-Booking-Event), delivery (X-Booking-Delivery),
# signature (the header), sig_t (its time), sig_ok (1 when v1 is the HMAC of "<t>.<body>" with the secret, else 0).
# A request that 'refuse' drops is recorded too, with status 0: the tests count every attempt the module made.

use strict;
use warnings;

use parent 'FakeServer';

use Digest::SHA qw(hmac_sha256_hex);
use JSON::PP;

my %ERROR = (malformed => 'malformed request', 'too large' => 'too large', failing => 'gateway failing (test mode)');

sub url { $_[0]->SUPER::url . '/notify' }
sub secret { $_[0]{secret} }

# The delivery ids of the requests answered 2xx, in order of receipt.
sub deliveries {
    my ($self) = @_;
    return map { $_->{delivery} } grep { $_->{status} >= 200 && $_->{status} < 300 } $self->requests;
}

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

##############################################################################
# FakeServer's hooks

sub init {
    my ($self, $o) = @_;
    $self->{secret} = (delete $o->{secret}) // 'notify-secret-0123456789abcdef';
}

sub records_dropped { 1 }

# in every mode, so that a failed or dropped attempt shows whether it was signed
sub describe {
    my ($self, $req) = @_;
    my $h = $req->{headers};
    my ($sig_t) = ($h->{'x-booking-signature'} // '') =~ /(?:^|,)t=(\d+)/;
    %$req = (%$req,
        payload => scalar eval { decode_json($req->{body}) }, event => $h->{'x-booking-event'},
        delivery => $h->{'x-booking-delivery'}, signature => $h->{'x-booking-signature'}, sig_t => $sig_t,
        sig_ok => signature_ok($self->{secret}, $h->{'x-booking-signature'}, $req->{body}),
    );
}

sub handle {
    my ($self, $req) = @_;
    return (405, {error => 'POST only'}) if $req->{method} ne 'POST';
    return (200, {received => JSON::PP::true, delivery => $req->{delivery}});
}

sub error { {error => $ERROR{$_[1]}} }

1;
