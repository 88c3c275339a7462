#!/usr/bin/perl
# mod_booking's public API on both servers: the partner directory (search by city, case-insensitive, and by service
# name, with wildcards taken literally), a partner and its services (active ones, with active staff), booking a slot
# (201 with a manage token and Location, the first free staff member when none is asked for, buffers, the price at
# booking time), the customer's view, cancel (deadline, twice) and reschedule (to a free slot, onto itself, to a
# taken one) behind the token; bad input answered 400/415 naming the field with nothing written; one outbox row per
# booking event; 100 concurrent POSTs for one slot across both servers giving one 201 and 99 x 409; white-label
# hosts (BookingPartner from-host, then a fixed partner) seeing and booking only their partner.
#
# The salon works in Asia/Tokyo (UTC+09:00 all year, no DST), so local times are computed by hand below; the other
# partner has no zone of its own and gets BookingTimeZone (Europe/Paris).

use strict;
use utf8;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Encode qw(encode decode);
use HTTP::Tiny;
use IO::Socket::INET;
use JSON::PP;
use POSIX ();
use ModTest;
use BookingConf qw(booking_conf api sql_value ensure_schema);

my $t = ModTest->new(postgres => 1);
plan skip_all => 'mod_booking is not built for both servers' unless $t->has_module('booking');
BookingConf::setup_files($t);
$t->start_servers(booking_conf(), php => 0);
ensure_schema($t);

my $JSON = JSON::PP->new->utf8->canonical;

sub sql { return $t->psql(encode('UTF-8', $_[0])) }
sub q1 { return decode('UTF-8', sql_value($t, encode('UTF-8', $_[0]))) }
sub id_of { my ($table, $name) = @_; return q1("SELECT id FROM booking.$table WHERE name = '$name'") + 0 }

############################################################################## seed

# Salon Lumière (Tokyo, white-label host salon.example), Rival Barbers (Osaka, no zone: Europe/Paris), a closed
# salon that must never show. Everyone works every day 00:00-24:00; no minimum notice, so tomorrow is bookable.
sql(<<'SQL');
INSERT INTO booking.partners (id, name, city, address, phone, email, time_zone, hosts, branding, currency,
        min_notice_minutes, slot_step_minutes, cancel_deadline_minutes, horizon_days) VALUES
    ('salon-lumiere', 'Salon Lumière', 'Tokyo', '1-2-3 Ginza', '+81312345678', 'hello@lumiere.example', 'Asia/Tokyo',
        '{salon.example}', '{"color": "#8a3b5c", "tagline": "Light"}', 'EUR', 0, 15, 0, 60),
    ('barber-rival', 'Rival Barbers', 'Osaka', '4-5 Namba', '+81611112222', 'hi@rival.example', NULL,
        '{rival.example}', '{}', 'JPY', 0, 30, 0, 60);
INSERT INTO booking.partners (id, name, city, time_zone, active) VALUES ('closed-salon', 'Closed Salon', 'Tokyo',
    'Asia/Tokyo', false);
INSERT INTO booking.opening_hours (partner_id, weekday, opens, closes)
    SELECT p, d, '00:00', '24:00' FROM unnest(ARRAY['salon-lumiere', 'barber-rival', 'closed-salon']) p,
        generate_series(1, 7) d;
INSERT INTO booking.staff (partner_id, name, active) VALUES
    ('salon-lumiere', 'Anna', true), ('salon-lumiere', 'Bruno', true), ('salon-lumiere', 'Ines', false),
    ('barber-rival', 'Rex', true), ('closed-salon', 'Cleo', true);
INSERT INTO booking.staff_hours (staff_id, weekday, starts, ends)
    SELECT s.id, d, '00:00', '24:00' FROM booking.staff s, generate_series(1, 7) d;
INSERT INTO booking.services (partner_id, name, category, description, duration_minutes, price_cents, currency,
        buffer_after_minutes, resource_kind, active) VALUES
    ('salon-lumiere', 'Coupe femme', 'Hair', 'Cut and blow-dry', 60, 4500, 'EUR', 15, NULL, true),
    ('salon-lumiere', 'Massage 100%_relax', 'Spa', 'In the quiet room', 30, 6000, 'EUR', 0, 'room', true),
    ('salon-lumiere', 'Old perm', 'Hair', '', 90, 7000, 'EUR', 0, NULL, false),
    ('barber-rival', 'Coupe homme', 'Hair', '', 30, 2500, 'JPY', 0, NULL, true),
    ('closed-salon', 'Coupe fermée', 'Hair', '', 30, 1000, 'EUR', 0, NULL, true);
INSERT INTO booking.service_staff (service_id, staff_id)
    SELECT sv.id, st.id FROM booking.services sv JOIN booking.staff st ON st.partner_id = sv.partner_id
     WHERE sv.name <> 'Massage 100%_relax' OR st.name = 'Anna';
INSERT INTO booking.resources (partner_id, name, kind) VALUES ('salon-lumiere', 'Quiet room', 'room');
SQL

my %SVC = (coupe => id_of('services', 'Coupe femme'), massage => id_of('services', 'Massage 100%_relax'),
    perm => id_of('services', 'Old perm'), homme => id_of('services', 'Coupe homme'));
my %STAFF = map { $_ => id_of('staff', $_) } qw(Anna Bruno Ines Rex);

# Tokyo is UTC+09:00: local day number $d (days since 1970-01-01 in Tokyo) at $h:$m is this instant and this text.
my $TODAY = int((time + 9 * 3600) / 86400);
sub tokyo_epoch { my ($d, $h, $m) = @_; return $d * 86400 + $h * 3600 + ($m // 0) * 60 - 9 * 3600 }
sub tokyo {
    my ($d, $h, $m) = @_;
    my @g = gmtime($d * 86400);
    return sprintf('%04d-%02d-%02dT%02d:%02d:00+09:00', $g[5] + 1900, $g[4] + 1, $g[3], $h, $m // 0);
}

my $N = 0;
sub customer { $N++; return {name => "Client $N", email => "Client.$N\@Example.com", phone => '+33 6 12 34 56 ' . sprintf('%02d', $N % 100)} }
sub order { my (%o) = @_; return {partner => 'salon-lumiere', service => $SVC{coupe}, customer => customer(), %o} }

sub counts { return q1('SELECT (SELECT count(*) FROM booking.bookings) || \' \' || (SELECT count(*) FROM booking.customers) || \' \' || (SELECT count(*) FROM booking.outbox)') }
# Notifications other than reminders, which follow their booking's start and are not events.
sub events { my ($id) = @_; return q1("SELECT coalesce(string_agg(kind, ',' ORDER BY id), '') FROM booking.outbox WHERE booking_id = $id AND kind <> 'booking.reminder'") }

# HTTP::Tiny refuses a Host header of its own (BookingConf::api passes it on, and HTTP::Tiny answers 599): requests
# for a white-label host name go over a plain socket, HTTP/1.0 so that the answer is neither chunked nor kept alive.
sub host_api {
    my ($s, $host, $method, $path, $body, %h) = @_;
    my $content = defined $body ? (ref $body ? $JSON->encode($body) : $body) : '';
    my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $t->port($s), Timeout => 10)
        or die "connect to $s: $!\n";
    my $req = "$method /booking/api$path HTTP/1.0\r\nHost: $host\r\n";
    $req .= "Content-Type: application/json\r\n" if defined $body;
    $req .= "$_: $h{$_}\r\n" for sort keys %h;
    print $sock $req . 'Content-Length: ' . length($content) . "\r\n\r\n" . $content;
    my $response = do { local $/; <$sock> } // '';
    close $sock;
    my ($head, $text) = split /\r\n\r\n/, $response, 2;
    my ($status) = ($head // '') =~ m{^HTTP/1\.\d (\d{3})};
    my $data = eval { $JSON->decode($text // '') };
    return ($status // 0, $data, {status => $status, content => $text});
}

my %EVENTS;    # booking id => the events it must have, in order

############################################################################## directory

for my $s (qw(apache nginx)) {
    my ($status, $data) = api($t, $s, 'GET', '/partners');
    is($status, 200, "$s: the directory");
    is_deeply([map { $_->{id} } @{$data->{partners}}], ['barber-rival', 'salon-lumiere'],
        "$s: active partners only, by name") or diag(explain($data));
    my ($lumiere) = grep { $_->{id} eq 'salon-lumiere' } @{$data->{partners}};
    is_deeply($lumiere, {id => 'salon-lumiere', name => 'Salon Lumière', city => 'Tokyo', address => '1-2-3 Ginza',
            time_zone => 'Asia/Tokyo', branding => {color => '#8a3b5c', tagline => 'Light'}, currency => 'EUR'},
        "$s: a partner's card") or diag(explain($lumiere));
    is($data->{partners}[0]{time_zone}, 'Europe/Paris', "$s: no zone of its own: BookingTimeZone");

    my %search = (
        'city=tokyo'             => ['salon-lumiere'],
        'city=OSAKA'             => ['barber-rival'],
        'city=Tok'               => [],
        'city=%20Tokyo%20'       => ['salon-lumiere'],
        'service=coupe'          => ['barber-rival', 'salon-lumiere'],
        'service=COUPE%20H'      => ['barber-rival'],
        'service=100%25_relax'   => ['salon-lumiere'],
        'service=100%25'         => ['salon-lumiere'],
        'service=%25'            => ['salon-lumiere'],
        'service=_'              => ['salon-lumiere'],
        'service=1__%25'         => [],
        'service=perm'           => [],
        'service=ferm%C3%A9e'    => [],
        'city=tokyo&service=homme' => [],
        'city=osaka&service=homme' => ['barber-rival'],
        'city=&service='         => ['barber-rival', 'salon-lumiere'],
    );
    for my $q (sort keys %search) {
        ($status, $data) = api($t, $s, 'GET', "/partners?$q");
        is_deeply([map { $_->{id} } @{$data->{partners} // []}], $search{$q}, "$s: /partners?$q")
            or diag(explain($data));
    }
    ($status, $data) = api($t, $s, 'GET', '/partners?city=' . ('x' x 101));
    is("$status " . ($data->{field} // ''), '400 city', "$s: a city over 100 characters: 400 naming it");
    ($status, $data) = api($t, $s, 'GET', '/partners?service=a%0Ab');
    is("$status " . ($data->{field} // ''), '400 service', "$s: a control character: 400 naming service");
    ($status, $data) = api($t, $s, 'GET', '/partners?city=%FF');
    is("$status " . ($data->{field} // ''), '400 city', "$s: not UTF-8: 400 naming city");

    ($status, $data) = api($t, $s, 'GET', '/partners/salon-lumiere');
    is($status, 200, "$s: one partner");
    is_deeply($data, {id => 'salon-lumiere', name => 'Salon Lumière', city => 'Tokyo', address => '1-2-3 Ginza',
            time_zone => 'Asia/Tokyo', branding => {color => '#8a3b5c', tagline => 'Light'}, currency => 'EUR',
            phone => '+81312345678', email => 'hello@lumiere.example', cancel_deadline_minutes => 0,
            min_notice_minutes => 0, slot_step_minutes => 15, horizon_days => 60},
        "$s: with its contact details and booking rules") or diag(explain($data));
    for my $id (qw(closed-salon no-such-salon Salon_Lumiere)) {
        ($status) = api($t, $s, 'GET', "/partners/$id");
        is($status, 404, "$s: /partners/$id: 404");
        ($status) = api($t, $s, 'GET', "/partners/$id/services");
        is($status, 404, "$s: /partners/$id/services: 404");
    }

    ($status, $data) = api($t, $s, 'GET', '/partners/salon-lumiere/services');
    is($status, 200, "$s: a partner's services");
    is_deeply($data->{services}, [
            {id => $SVC{coupe}, name => 'Coupe femme', category => 'Hair', description => 'Cut and blow-dry',
                duration_minutes => 60, price_cents => 4500, currency => 'EUR',
                staff => [{id => $STAFF{Anna}, name => 'Anna'}, {id => $STAFF{Bruno}, name => 'Bruno'}]},
            {id => $SVC{massage}, name => 'Massage 100%_relax', category => 'Spa', description => 'In the quiet room',
                duration_minutes => 30, price_cents => 6000, currency => 'EUR',
                staff => [{id => $STAFF{Anna}, name => 'Anna'}]}],
        "$s: active services with their active staff (no Old perm, no Ines)") or diag(explain($data));
    ($status, $data) = api($t, $s, 'GET', '/partners/barber-rival/services');
    is_deeply([map { "$_->{name} $_->{price_cents} $_->{currency}" } @{$data->{services}}], ['Coupe homme 2500 JPY'],
        "$s: the other partner's");
}

############################################################################## booking, view, cancel, reschedule

for my $s (qw(apache nginx)) {
    # Each server its own day, so that neither sees the other's bookings.
    my $day = $TODAY + ($s eq 'apache' ? 1 : 2);
    my ($status, $data, $r);

    # ---- book: Anna is the first free, then Bruno, then nobody
    my $order = order(start => tokyo($day, 10), notes => "  first visit \n");
    ($status, $data, $r) = api($t, $s, 'POST', '/bookings', $order);
    is($status, 201, "$s: booked") or diag(explain($data));
    my $id = $data->{id};
    my $token = $data->{token} // '';
    like($token, qr/^[A-Za-z0-9_-]{43}\z/, "$s: a manage token of 256 bits, base64url");
    is($r->{headers}{location}, "/booking/api/bookings/$id", "$s: Location: the manage URL");
    is_deeply($data, {id => $id, token => $token, status => 'confirmed', partner => 'salon-lumiere',
            partner_name => 'Salon Lumière',
            service => {id => $SVC{coupe}, name => 'Coupe femme'}, staff => {id => $STAFF{Anna}, name => 'Anna'},
            start => tokyo($day, 10), end => tokyo($day, 11), time_zone => 'Asia/Tokyo', price_cents => 4500,
            currency => 'EUR', cancel_before => tokyo($day, 10), manage_url => "/booking/api/bookings/$id",
            customer => {name => $order->{customer}{name}, email => lc $order->{customer}{email},
                phone => '+336123456' . sprintf('%02d', $N % 100)},
            notes => 'first visit'},
        "$s: the booking: Anna (the first free), 10:00-11:00 Tokyo time, the service's price, e-mail in lower case, "
        . "phone normalised, notes trimmed") or diag(explain($data));
    $EVENTS{$id} = ['booking.confirmed'];

    is(q1("SELECT price_cents || ' ' || currency || ' ' || status || ' ' || (staff_id = $STAFF{Anna}) || ' ' || "
        . "(starts_at = to_timestamp(" . tokyo_epoch($day, 10) . ")) || ' ' || "
        . "(busy = tstzrange(starts_at, ends_at + interval '15 minutes', '[)')) || ' ' || "
        . "(manage_token_hash = sha256(convert_to('$token', 'UTF8'))) FROM booking.bookings WHERE id = $id"),
        '4500 EUR confirmed true true true true',
        "$s: the row: price at booking time, the start, busy = the service plus its 15-minute buffer after, the token "
        . "stored as its SHA-256 only");
    is(q1("SELECT count(*) FROM booking.bookings WHERE manage_token_hash::text LIKE '%$token%'"), 0,
        "$s: the token itself is nowhere in the table");

    # The price changes: the booking keeps the one it was made at, a new booking gets the new one.
    sql("UPDATE booking.services SET price_cents = 5000 WHERE id = $SVC{coupe}");
    ($status, $data) = api($t, $s, 'POST', '/bookings', order(start => tokyo($day, 10)));
    is("$status $data->{staff}{name} $data->{price_cents}", '201 Bruno 5000',
        "$s: the same slot again: Bruno, the next free, at the new price") or diag(explain($data));
    my $bruno_id = $data->{id};
    my $bruno_token = $data->{token};
    $EVENTS{$bruno_id} = ['booking.confirmed'];
    ($status, $data) = api($t, $s, 'GET', "/bookings/$id", undef, 'X-Booking-Token' => $token);
    is($data->{price_cents}, 4500, "$s: the first booking keeps its price");
    is(q1("SELECT price_cents FROM booking.bookings WHERE id = $id"), 4500, "$s: in PostgreSQL too");
    sql("UPDATE booking.services SET price_cents = 4500 WHERE id = $SVC{coupe}");

    ($status, $data) = api($t, $s, 'POST', '/bookings', order(start => tokyo($day, 10)));
    is("$status " . ($data->{code} // ''), '409 slot_unavailable', "$s: a third time: nobody is free: 409");
    ($status, $data) = api($t, $s, 'POST', '/bookings', order(start => tokyo($day, 11), staff => $STAFF{Anna}));
    is("$status " . ($data->{code} // ''), '409 slot_unavailable', "$s: Anna at 11:00, inside her buffer: 409");
    ($status, $data) = api($t, $s, 'POST', '/bookings', order(start => tokyo($day, 11, 15), staff => $STAFF{Anna}));
    is("$status " . ($data->{staff}{name} // ''), '201 Anna', "$s: Anna at 11:15, when the buffer ends: 201");
    my $later_id = $data->{id};
    my $later_token = $data->{token};
    $EVENTS{$later_id} = ['booking.confirmed'];
    ($status, $data) = api($t, $s, 'POST', '/bookings', order(start => tokyo($day, 9, 5)));
    is("$status " . ($data->{code} // ''), '409 slot_unavailable', "$s: 09:05 is not on the 15-minute grid: 409");

    # A service that needs the salon's only room: one booking at a time, whoever the staff.
    ($status, $data) = api($t, $s, 'POST', '/bookings', order(service => $SVC{massage}, start => tokyo($day, 15)));
    is($status, 201, "$s: a massage in the quiet room") or diag(explain($data));
    $EVENTS{$data->{id}} = ['booking.confirmed'];
    is(q1("SELECT r.name FROM booking.bookings b JOIN booking.resources r ON r.id = b.resource_id WHERE b.id = $data->{id}"),
        'Quiet room', "$s: with the room");

    # ---- view
    ($status, $data) = api($t, $s, 'GET', "/bookings/$id", undef, 'X-Booking-Token' => $token);
    is($status, 200, "$s: the customer's view");
    is_deeply([@$data{qw(id status start)}, exists $data->{token} ? 'token shown' : 'no token'],
        [$id, 'confirmed', tokyo($day, 10), 'no token'], "$s: the booking, without its token");
    ($status, $data) = api($t, $s, 'GET', "/bookings/$id?token=$token");
    is("$status " . ($data->{id} // ''), "200 $id", "$s: the token as ?token= works too");
    for my $case (['no token', "/bookings/$id", undef], ['a wrong token', "/bookings/$id", 'x' x 43],
        ['another booking\'s token', "/bookings/$id", $bruno_token], ['an unknown id', '/bookings/99999999', $token],
        ['a malformed id', '/bookings/1x', $token], ['a huge id', '/bookings/99999999999999999999', $token]) {
        my ($label, $path, $tok) = @$case;
        ($status, $data) = api($t, $s, 'GET', $path, undef, (defined $tok ? ('X-Booking-Token' => $tok) : ()));
        is("$status " . ($data->{code} // ''), '404 not_found', "$s: $label: 404, the same answer");
    }

    # ---- reschedule
    ($status, $data) = api($t, $s, 'POST', "/bookings/$id/reschedule", {start => tokyo($day, 13)},
        'X-Booking-Token' => $token);
    is("$status " . ($data->{start} // '') . ' ' . ($data->{staff}{name} // ''), '200 ' . tokyo($day, 13) . ' Anna',
        "$s: rescheduled to 13:00, with the same staff member") or diag(explain($data));
    is($data->{end}, tokyo($day, 14), "$s: the same duration");
    push @{$EVENTS{$id}}, 'booking.rescheduled';
    is(q1("SELECT (starts_at = to_timestamp(" . tokyo_epoch($day, 13) . ")) || ' ' || "
        . "(busy = tstzrange(starts_at, ends_at + interval '15 minutes', '[)')) FROM booking.bookings WHERE id = $id"),
        'true true', "$s: moved in PostgreSQL, with its buffer");
    ($status, $data) = api($t, $s, 'POST', "/bookings/$id/reschedule", {start => tokyo($day, 13, 30)},
        'X-Booking-Token' => $token);
    is("$status " . ($data->{start} // ''), '200 ' . tokyo($day, 13, 30),
        "$s: 30 minutes later, overlapping its own old time: 200");
    push @{$EVENTS{$id}}, 'booking.rescheduled';
    ($status, $data) = api($t, $s, 'POST', "/bookings/$id/reschedule", {start => tokyo($day, 10), staff => $STAFF{Bruno}},
        'X-Booking-Token' => $token);
    is("$status " . ($data->{code} // ''), '409 slot_unavailable', "$s: onto Bruno's booking: 409");
    ($status, $data) = api($t, $s, 'POST', "/bookings/$id/reschedule", {start => tokyo($day, 11, 30)},
        'X-Booking-Token' => $token);
    is("$status " . ($data->{staff}{name} // ''), '200 Bruno',
        "$s: onto a time Anna is taken but Bruno is free: Bruno takes it") or diag(explain($data));
    push @{$EVENTS{$id}}, 'booking.rescheduled';
    ($status, $data) = api($t, $s, 'POST', "/bookings/$id/reschedule", {start => tokyo($day, 16), staff => $STAFF{Rex}},
        'X-Booking-Token' => $token);
    is("$status " . ($data->{field} // ''), '400 staff', "$s: another salon's staff: 400 naming staff");
    ($status, $data) = api($t, $s, 'POST', "/bookings/$id/reschedule", {start => tokyo($TODAY - 1, 10)},
        'X-Booking-Token' => $token);
    is("$status " . ($data->{code} // '') . ' ' . ($data->{field} // ''), '400 in_past start',
        "$s: to yesterday: 400 in_past");
    ($status, $data) = api($t, $s, 'POST', "/bookings/$id/reschedule", {start => tokyo($day, 17), when => 'now'},
        'X-Booking-Token' => $token);
    is("$status " . ($data->{field} // ''), '400 when', "$s: an unknown member: 400 naming it");
    ($status) = api($t, $s, 'POST', "/bookings/$id/reschedule", {start => tokyo($day, 17)}, 'X-Booking-Token' => 'nope');
    is($status, 404, "$s: reschedule with a wrong token: 404");
    is(q1("SELECT starts_at = to_timestamp(" . tokyo_epoch($day, 11, 30) . ") FROM booking.bookings WHERE id = $id"),
        't', "$s: none of the refused changes moved it");

    # ---- deadline
    sql("UPDATE booking.partners SET cancel_deadline_minutes = 43200 WHERE id = 'salon-lumiere'");
    ($status, $data) = api($t, $s, 'POST', "/bookings/$later_id/cancel", undef, 'X-Booking-Token' => $later_token);
    is("$status " . ($data->{code} // ''), '409 deadline_passed', "$s: cancel within 30 days of the start: 409");
    ($status, $data) = api($t, $s, 'POST', "/bookings/$later_id/reschedule", {start => tokyo($day, 18)},
        'X-Booking-Token' => $later_token);
    is("$status " . ($data->{code} // ''), '409 deadline_passed', "$s: reschedule too");
    ($status, $data) = api($t, $s, 'GET', "/bookings/$later_id", undef, 'X-Booking-Token' => $later_token);
    is($data->{cancel_before}, tokyo($day - 30, 11, 15), "$s: the view says until when (30 days before)");
    sql("UPDATE booking.partners SET cancel_deadline_minutes = 0 WHERE id = 'salon-lumiere'");
    is(q1("SELECT status FROM booking.bookings WHERE id = $later_id"), 'confirmed', "$s: still confirmed");

    # ---- cancel
    ($status, $data) = api($t, $s, 'POST', "/bookings/$later_id/cancel", undef, 'X-Booking-Token' => 'wrong');
    is($status, 404, "$s: cancel with a wrong token: 404");
    ($status, $data) = api($t, $s, 'POST', "/bookings/$later_id/cancel", undef, 'X-Booking-Token' => $later_token);
    is("$status " . ($data->{status} // ''), '200 cancelled', "$s: cancelled") or diag(explain($data));
    push @{$EVENTS{$later_id}}, 'booking.cancelled';
    is(q1("SELECT status || ' ' || (cancelled_at IS NOT NULL) FROM booking.bookings WHERE id = $later_id"),
        'cancelled true', "$s: in PostgreSQL");
    ($status, $data) = api($t, $s, 'POST', "/bookings/$later_id/cancel", undef, 'X-Booking-Token' => $later_token);
    is("$status " . ($data->{code} // ''), '409 already_cancelled', "$s: cancelled twice: 409");
    ($status, $data) = api($t, $s, 'POST', "/bookings/$later_id/reschedule", {start => tokyo($day, 18)},
        'X-Booking-Token' => $later_token);
    is("$status " . ($data->{code} // ''), '409 already_cancelled', "$s: a cancelled booking cannot be moved");
    ($status, $data) = api($t, $s, 'POST', '/bookings', order(start => tokyo($day, 11, 15), staff => $STAFF{Anna}));
    is("$status", '201', "$s: the cancelled slot is free again") or diag(explain($data));
    $EVENTS{$data->{id}} = ['booking.confirmed'];

    # ---- bad input: 400/415 naming the field, nothing written
    my $before = counts();
    my $long_name = 'N' x 201;
    my @bad = (
        ['unknown service', order(service => 999999, start => tokyo($day, 16)), 400, 'invalid', 'service'],
        ['an inactive service', order(service => $SVC{perm}, start => tokyo($day, 16)), 400, 'invalid', 'service'],
        ['another partner\'s service', order(service => $SVC{homme}, start => tokyo($day, 16)), 400, 'invalid',
            'service'],
        ['an unknown partner', order(partner => 'no-such-salon', start => tokyo($day, 16)), 400, 'invalid', 'partner'],
        ['a closed partner', order(partner => 'closed-salon', start => tokyo($day, 16)), 400, 'invalid', 'partner'],
        ['a malformed partner', order(partner => 'Salon Lumière', start => tokyo($day, 16)), 400, 'invalid',
            'partner'],
        ['no partner', {%{order(start => tokyo($day, 16))}, partner => undef}, 400, 'invalid', 'partner'],
        ['a slot in the past', order(start => tokyo($TODAY - 1, 10)), 400, 'in_past', 'start'],
        ['a start without offset', order(start => substr(tokyo($day, 16), 0, 19)), 400, 'invalid', 'start'],
        ['a start on 30 February', order(start => '2031-02-30T10:00:00+09:00'), 400, 'invalid', 'start'],
        ['no start', order(), 400, 'invalid', 'start'],
        ['a service as text', order(service => "$SVC{coupe}", start => tokyo($day, 16)), 400, 'invalid', 'service'],
        ['staff not doing it', order(start => tokyo($day, 16), staff => $STAFF{Rex}), 400, 'invalid', 'staff'],
        ['inactive staff', order(start => tokyo($day, 16), staff => $STAFF{Ines}), 400, 'invalid', 'staff'],
        ['a malformed phone', order(start => tokyo($day, 16), customer => {%{customer()}, phone => '06 12 AB'}),
            400, 'invalid', 'customer.phone'],
        ['a short phone', order(start => tokyo($day, 16), customer => {%{customer()}, phone => '123 45'}),
            400, 'invalid', 'customer.phone'],
        ['a malformed e-mail', order(start => tokyo($day, 16), customer => {%{customer()}, email => 'anna@example'}),
            400, 'invalid', 'customer.email'],
        ['an overlong name', order(start => tokyo($day, 16), customer => {%{customer()}, name => $long_name}),
            400, 'invalid', 'customer.name'],
        ['a name with a line break', order(start => tokyo($day, 16), customer => {%{customer()}, name => "A\nB"}),
            400, 'invalid', 'customer.name'],
        ['no name', order(start => tokyo($day, 16), customer => {%{customer()}, name => '  '}),
            400, 'invalid', 'customer.name'],
        ['an unknown customer member', order(start => tokyo($day, 16), customer => {%{customer()}, age => 30}),
            400, 'invalid', 'customer.age'],
        ['no customer', {%{order(start => tokyo($day, 16))}, customer => undef}, 400, 'invalid', 'customer'],
        ['a customer as text', order(start => tokyo($day, 16), customer => 'Anna'), 400, 'invalid', 'customer'],
        ['overlong notes', order(start => tokyo($day, 16), notes => 'n' x 1001), 400, 'invalid', 'notes'],
        ['an unknown member', order(start => tokyo($day, 16), colour => 'red'), 400, 'invalid', 'colour'],
        ['invalid JSON', '{"partner": "salon-lumiere", "service": ', 400, 'invalid_json', undef],
        ['a JSON array', '[1, 2]', 400, 'invalid_json', undef],
        ['a duplicate member', '{"service": 1, "service": 2}', 400, 'invalid_json', undef],
    );
    for my $case (@bad) {
        my ($label, $body, $want_status, $want_code, $want_field) = @$case;
        ($status, $data, $r) = api($t, $s, 'POST', '/bookings', $body);
        is("$status " . ($data->{code} // '') . ' ' . ($data->{field} // '-'),
            "$want_status $want_code " . ($want_field // '-'), "$s: $label: $want_status naming " . ($want_field // 'no field'))
            or diag($r->{content});
        like($data->{error} // '', qr/\w/, "$s: $label: with a message");
    }
    ($status, $data) = api($t, $s, 'POST', '/bookings', order(start => tokyo($day, 16)),
        'Content-Type' => 'application/x-www-form-urlencoded');
    is($status, 415, "$s: not JSON: 415");
    ($status, $data) = api($t, $s, 'POST', "/bookings/$id/reschedule", '{"start": ', 'X-Booking-Token' => $token);
    is("$status " . ($data->{code} // ''), '400 invalid_json', "$s: reschedule with invalid JSON: 400");
    is(counts(), $before, "$s: bookings, customers and outbox unchanged by every refused request");

    # ---- one outbox row per event, in order
    for my $b (sort { $a <=> $b } keys %EVENTS) {
        is(events($b), join(',', @{$EVENTS{$b}}), "$s: booking $b: its events in the outbox, once each");
    }
}

############################################################################## 100 concurrent POSTs for one slot

{
    my $start = tokyo($TODAY + 3, 9);
    my ($gate_r, $gate_w, $res_r, $res_w);
    pipe($gate_r, $gate_w) or die "pipe: $!";
    pipe($res_r, $res_w) or die "pipe: $!";
    my $before = q1('SELECT count(*) FROM booking.customers');
    my @pids;
    for my $i (1 .. 100) {
        my $s = $i % 2 ? 'apache' : 'nginx';
        my $body = $JSON->encode({partner => 'salon-lumiere', service => $SVC{coupe}, staff => $STAFF{Anna},
                start => $start, customer => {name => "Racer $i", email => "racer$i\@example.com",
                    phone => '+3361234' . sprintf('%04d', $i)}});
        my $url = $t->url($s, '/booking/api/bookings');
        my $pid = fork() // die "fork: $!";
        if ($pid == 0) {
            close $gate_w;
            close $res_r;
            sysread($gate_r, my $buf, 1);    # all start together when the parent closes the gate
            my $r = HTTP::Tiny->new(timeout => 30)->request('POST', $url,
                {headers => {'Content-Type' => 'application/json'}, content => $body});
            my $code = eval { JSON::PP->new->decode($r->{content})->{code} } // '-';
            syswrite($res_w, "$s $r->{status} $code\n");
            POSIX::_exit(0);    # not END blocks: the harness' servers belong to the parent
        }
        push @pids, $pid;
    }
    close $gate_r;
    close $res_w;
    close $gate_w;
    my @results = <$res_r>;
    waitpid($_, 0) for @pids;
    chomp @results;
    my %by;
    $by{(split ' ', $_)[1]}++ for @results;
    is(scalar @results, 100, 'race: 100 answers');
    is($by{201} // 0, 1, 'race: exactly one 201') or diag(join "\n", sort @results);
    is($by{409} // 0, 99, 'race: 99 x 409') or diag(join "\n", sort @results);
    is(scalar(grep { /^\S+ 409 (slot_taken|slot_unavailable)$/ } @results), 99, 'race: each 409 says the slot is gone');
    my %servers = map { (split ' ', $_)[0] => 1 } grep { / 409 / } @results;
    is(join(',', sort keys %servers), 'apache,nginx', 'race: refusals came from both servers');
    is(q1("SELECT count(*) FROM booking.bookings WHERE staff_id = $STAFF{Anna} AND status = 'confirmed' "
            . "AND starts_at = to_timestamp(" . tokyo_epoch($TODAY + 3, 9) . ')'), 1, 'race: one row for the slot');
    is(q1('SELECT count(*) FROM booking.customers') - $before, 1, 'race: one new customer, the others rolled back');
}

############################################################################## white label

$t->start_servers(booking_conf(partner => 'from-host'), php => 0);
for my $s (qw(apache nginx)) {
    my $day = $TODAY + 4;
    my ($status, $data) = host_api($s, 'salon.example', 'GET', '/partners', undef);
    is_deeply([map { $_->{id} } @{$data->{partners} // []}], ['salon-lumiere'], "$s: Host salon.example: only its salon")
        or diag(explain($data));
    ($status, $data) = host_api($s, 'salon.example', 'GET', '/partners?city=osaka', undef);
    is_deeply($data->{partners}, [], "$s: searching does not reach beyond it");
    ($status) = host_api($s, 'salon.example', 'GET', '/partners/salon-lumiere', undef);
    is($status, 200, "$s: its own page");
    ($status) = host_api($s, 'salon.example', 'GET', '/partners/barber-rival', undef);
    is($status, 404, "$s: another partner's id: 404");
    ($status) = host_api($s, 'salon.example', 'GET', '/partners/barber-rival/services', undef);
    is($status, 404, "$s: another partner's services: 404");
    ($status, $data) = host_api($s, 'SALON.example:80', 'GET', '/partners', undef);
    is(scalar @{$data->{partners} // []}, 1, "$s: the host name in any case, with a port");

    my $order = order(start => tokyo($day, $s eq 'apache' ? 10 : 12));
    delete $order->{partner};
    ($status, $data) = host_api($s, 'salon.example', 'POST', '/bookings', $order);
    is("$status " . ($data->{partner} // ''), '201 salon-lumiere', "$s: booked without naming the partner")
        or diag(explain($data));
    my ($id, $token) = @$data{qw(id token)};
    ($status, $data) = host_api($s, 'salon.example', 'POST', '/bookings',
        order(partner => 'barber-rival', service => $SVC{homme}, start => tokyo($day, 10)));
    is("$status " . ($data->{field} // ''), '400 partner', "$s: naming another partner: 400");
    ($status, $data) = host_api($s, 'salon.example', 'GET', "/bookings/$id", undef, 'X-Booking-Token' => $token);
    is($status, 200, "$s: the booking seen on its salon's host");
    ($status, $data) = host_api($s, 'rival.example', 'GET', "/bookings/$id", undef, 'X-Booking-Token' => $token);
    is($status, 404, "$s: not on the other partner's host");

    # The other partner's host books the other partner.
    ($status, $data) = host_api($s, 'rival.example', 'POST', '/bookings',
        {service => $SVC{homme}, start => tokyo($day, $s eq 'apache' ? 10 : 12), customer => customer()});
    is("$status " . ($data->{partner} // ''), '201 barber-rival', "$s: rival.example books Rival Barbers")
        or diag(explain($data));
    ($status, $data) = host_api($s, 'unknown.example', 'GET', '/partners', undef);
    is($status, 404, "$s: a host no partner has: 404");
}

$t->start_servers(booking_conf(partner => 'barber-rival'), php => 0);
for my $s (qw(apache nginx)) {
    my $day = $TODAY + 5;
    my ($status, $data) = api($t, $s, 'GET', '/partners');
    is_deeply([map { $_->{id} } @{$data->{partners} // []}], ['barber-rival'], "$s: BookingPartner barber-rival: only it");
    ($status) = host_api($s, 'salon.example', 'GET', '/partners/salon-lumiere', undef);
    is($status, 404, "$s: even on the salon's host name, the salon is not there");
    ($status, $data) = api($t, $s, 'POST', '/bookings',
        {service => $SVC{homme}, start => tokyo($day, $s eq 'apache' ? 10 : 12), customer => customer()});
    is("$status " . ($data->{partner} // ''), '201 barber-rival', "$s: booked without naming the partner")
        or diag(explain($data));
    ($status, $data) = api($t, $s, 'POST', '/bookings', {service => $SVC{coupe}, start => tokyo($day, 10),
            customer => customer()});
    is("$status " . ($data->{field} // ''), '400 service', "$s: the salon's service is unknown here");
}

done_testing();
