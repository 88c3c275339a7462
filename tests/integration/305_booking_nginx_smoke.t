#!/usr/bin/perl
# mod_booking's server adapters on both servers, independently of what the routes do: the API answers JSON with
# no-store, HEAD without a body, bodies over 64 KB refused with 413, bodies nginx spills into a temporary file read
# whole, partner routes behind the server's own Basic authentication, the page GET/HEAD only; PostgreSQL down ->
# 503 with Retry-After, and the notification dispatcher logs the outage once and its end once; clients that hang
# up while their request runs leave the server answering.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use IO::Socket::INET;
use JSON::PP;
use MIME::Base64 qw(encode_base64);
use Time::HiRes qw(sleep time);
use ModTest;
use BookingConf qw(booking_conf api account_api ensure_schema);

my $t = ModTest->new(postgres => 1);
plan skip_all => 'mod_booking is not built for both servers' unless $t->has_module('booking');
BookingConf::setup_files($t);
# Port 9 (discard) is closed on the test machines: the dispatcher runs, nothing is ever due.
# /booking/api/any/: the address or a login lets in (nginx "satisfy any", Apache <RequireAny>).
my %any = (
    apache => "<Location /booking/api/any/>\n    SetHandler booking-api\n    AuthType Basic\n    AuthName partners\n"
        . "    AuthUserFile \@TMP\@/partners.htpasswd\n    <RequireAny>\n        Require expr \"%{REMOTE_ADDR} == '127.0.0.1'\"\n"
        . "        Require valid-user\n    </RequireAny>\n</Location>",
    nginx => "location /booking/api/any/ {\n    booking_api;\n    satisfy any;\n    allow 127.0.0.1;\n    deny all;\n"
        . "    auth_basic partners;\n    auth_basic_user_file \@TMP\@/partners.htpasswd;\n}");
# /booking/api/seen/: no authentication, and nginx reads $remote_user (the header, unchecked) before the access phase.
my %seen = (apache => "<Location /booking/api/seen/>\n    SetHandler booking-api\n</Location>",
    nginx => "location /booking/api/seen/ {\n    set \$who \$remote_user;\n    booking_api;\n}");
$t->start_servers(booking_conf(notify_url => 'http://127.0.0.1:9/hook', more => [[%any], [%seen]]), php => 0);
ensure_schema($t);

sub count_matches { my ($text, $re) = @_; my $n = () = $text =~ /$re/g; return $n }

for my $s (qw(apache nginx)) {
    # Routing, headers, HEAD.
    my ($status, $data, $r) = api($t, $s, 'GET', '/no-such-route');
    is($status, 404, "$s: an unknown route: 404");
    like($r->{headers}{'content-type'} // '', qr{^application/json}, "$s: as JSON");
    is($r->{headers}{'cache-control'}, 'no-store', "$s: not stored by caches");
    ok(ref $data eq 'HASH' && length($data->{code} // ''), "$s: with an error code") or diag($r->{content});
    my (undef, undef, $hr) = api($t, $s, 'HEAD', '/no-such-route');
    is("$hr->{status} " . length($hr->{content} // ""), '404 0', "$s: HEAD: the same status, no body");

    # Bodies: none at all (nginx gives an empty last buffer) reaches the router like any other request.
    ($status, $data, $r) = api($t, $s, 'POST', '/no-such-route');
    is("$status " . ($data->{code} // ''), '404 not_found', "$s: a POST without a body") or diag($r->{content});
    ($status, $data, $r) = api($t, $s, 'POST', '/no-such-route', '');
    is("$status " . ($data->{code} // ''), '404 not_found', "$s: a POST with an empty body") or diag($r->{content});

    # Bodies: over the limit refused before any route runs; a large one (in nginx's temporary file) read whole.
    my $big = '{"note": "' . ('x' x 70_000) . '"}';
    ($status) = api($t, $s, 'POST', '/bookings', $big);
    is($status, 413, "$s: a body over 64 KB: 413");
    for my $len (100, 40_000) {
        ($status, $data, $r) = api($t, $s, 'POST', '/bookings', '{"note": "' . ('x' x $len) . '"');
        is($status, 400, "$s: $len-byte body without its closing brace: 400") or diag($r->{content});
        is($data->{code}, 'invalid_json', "$s: $len bytes: the whole body reached the parser");
    }

    # Partner routes: the server's own authentication.
    ($status) = api($t, $s, 'GET', '/account');
    is($status, 401, "$s: /account without a login: 401");
    ($status) = api($t, $s, 'GET', '/account', undef,
        Authorization => 'Basic ' . encode_base64('lumiere:wrong', ''));
    is($status, 401, "$s: /account with a wrong password: 401");
    ($status, $data) = account_api($t, $s, 'lumiere', 'GET', '/account');
    is("$status " . ($data->{code} // ''), '403 no_partner', "$s: a good login reaches the API as its user");
    # The base is found in the path, so /booking/api/x/account is the partner route, through the public location:
    # a Basic header nobody checked there must not make anyone a partner.
    ($status, $data) = api($t, $s, 'GET', '/x/account', undef,
        Authorization => 'Basic ' . encode_base64('lumiere:not-checked', ''));
    is("$status " . ($data->{code} // ''), '403 login_required', "$s: an unchecked Basic header is no login");
    ($status, $data) = api($t, $s, 'GET', '/seen/account', undef,
        Authorization => 'Basic ' . encode_base64('lumiere:not-checked', ''));
    is("$status " . ($data->{code} // ''), '403 login_required', "$s: nor is one read before the access phase");
    ($status, $data) = api($t, $s, 'GET', '/any/account', undef,
        Authorization => 'Basic ' . encode_base64('lumiere:wrong', ''));
    ok(($status == 401 || $status == 403) && ($data->{code} // '') ne 'no_partner',
        "$s: a refused login let in by address is no login either") or diag("$status $r->{content}");

    # The page.
    $r = $t->get($s, '/book/');
    is($r->{status}, 200, "$s: the booking page");
    like($r->{headers}{'content-type'} // '', qr{^text/html; charset=utf-8}i, "$s: HTML in UTF-8");
    like($r->{headers}{'content-security-policy'} // '', qr/nonce-/, "$s: with a nonce CSP");
    is($r->{headers}{'cache-control'}, 'no-store', "$s: the page is not stored");
    $r = $t->request('POST', $s, '/book/', {content => 'x=1'});
    is($r->{status}, 405, "$s: POST to the page: 405");
    like($r->{headers}{allow} // '', qr/GET/, "$s: Allow names GET");
}

# Clients that hang up while their request is in the thread pool: nginx keeps the request until the task ends.
for my $s (qw(apache nginx)) {
    my $mark = $t->log_mark($s);
    for (1 .. 20) {
        my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $t->port($s), Proto => 'tcp')
            or die "connect: $!\n";
        print $sock "GET /booking/api/partners HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
        close $sock;
    }
    my ($status) = api($t, $s, 'GET', '/no-such-route');
    is($status, 404, "$s: still answering after 20 clients hung up");
    unlike($t->error_log($s, $mark), qr/\[(alert|crit|emerg)\]|signal \d+|AddressSanitizer/,
        "$s: no alert or crash in the error log");
}

# PostgreSQL down: 503 with Retry-After; the dispatcher says so once, and once again when it is back.
my %mark = map { $_ => $t->log_mark($_) } qw(apache nginx);
$t->pg_stop;
for my $s (qw(apache nginx)) {
    my ($status, undef, $r) = api($t, $s, 'GET', '/partners');
    is($status, 503, "$s: PostgreSQL down: 503");
    is($r->{headers}{'retry-after'}, '5', "$s: with Retry-After");
}
my %paused;
for my $s (qw(apache nginx)) {
    my $deadline = time + 5;
    sleep 0.1 until count_matches($t->error_log($s, $mark{$s}), qr/notifications paused/) || time > $deadline;
    $paused{$s} = count_matches($t->error_log($s, $mark{$s}), qr/notifications paused/);
    ok($paused{$s} >= 1, "$s: the dispatcher logs the outage");
}
sleep 1.5;    # six more polls
for my $s (qw(apache nginx)) {
    is(count_matches($t->error_log($s, $mark{$s}), qr/notifications paused/), $paused{$s},
        "$s: once per outage, not once per poll");
}
$t->pg_start;
for my $s (qw(apache nginx)) {
    my $deadline = time + 10;
    sleep 0.1 until count_matches($t->error_log($s, $mark{$s}), qr/notifications resumed/) || time > $deadline;
    ok(count_matches($t->error_log($s, $mark{$s}), qr/notifications resumed/) >= 1,
        "$s: and its end");
    my ($status) = api($t, $s, 'GET', '/no-such-route');
    is($status, 404, "$s: answering again");
}

done_testing();
