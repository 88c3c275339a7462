#!/usr/bin/perl
# mod_booking's partner API (/account) on both servers: Basic auth in front (401), a login that manages no partner
# (403); the partner's settings, opening hours, exceptions, staff with plans, breaks and absences, services and
# resources created, read, changed and deactivated; bad input refused with 400 naming the field and nothing written;
# 415 without a JSON body; another partner's ids answering 404 with nothing changed; the calendar by day and by week
# across staff against bookings inserted by SQL, with local times checked by hand across the end of summer time in
# Europe/Paris (2026-10-25: +02:00 until 03:00 local, +01:00 after); booking status changes and their notifications.

use strict;
use utf8;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Encode qw(encode decode);
use JSON::PP;
use ModTest;
use BookingConf qw(booking_conf api account_api sql_value ensure_schema);

my $t = ModTest->new(postgres => 1);
BookingConf::setup_files($t);
$t->start_servers(booking_conf());
ensure_schema($t);

sub sql { return $t->psql(encode('UTF-8', $_[0])) }
sub q1 { return decode('UTF-8', sql_value($t, encode('UTF-8', $_[0]))) }
sub lumiere { return account_api($t, shift, 'lumiere', @_) }
sub rival { return account_api($t, shift, 'rival', @_) }

# Everything the partner API can write, as one digest: "nothing was written" is this value unchanged.
my @TABLES = qw(partners partner_users opening_hours partner_exceptions staff staff_hours staff_breaks
    staff_exceptions services service_staff resources bookings outbox);
my $STATE_SQL = 'SELECT md5(string_agg(t, chr(10) ORDER BY t)) FROM ('
    . join(' UNION ALL ', map { "SELECT '$_ ' || x::text AS t FROM booking.$_ x" } @TABLES) . ') u';
sub state { return q1($STATE_SQL) }

# One booking by SQL; $start is a timestamptz literal or expression. Returns its id.
sub add_booking {
    my (%b) = @_;
    my $status = $b{status} // 'confirmed';
    my $cancelled = $status eq 'cancelled' ? 'now()' : 'NULL';
    return q1(<<"SQL");
INSERT INTO booking.bookings (partner_id, service_id, staff_id, customer_id, starts_at, ends_at, busy, status,
    price_cents, currency, manage_token_hash, cancelled_at)
SELECT sv.partner_id, sv.id, st.id, c.id, s.t, s.t + make_interval(mins => sv.duration_minutes),
    tstzrange(s.t - make_interval(mins => sv.buffer_before_minutes),
              s.t + make_interval(mins => sv.duration_minutes + sv.buffer_after_minutes)),
    '$status', sv.price_cents, sv.currency, sha256(convert_to(gen_random_uuid()::text, 'UTF8')), $cancelled
FROM (SELECT ($b{start})::timestamptz) s(t), booking.services sv, booking.staff st, booking.customers c
WHERE sv.name = '$b{service}' AND st.name = '$b{staff}' AND c.email = '$b{email}'
RETURNING id;
SQL
}

sub id_of { my ($table, $name) = @_; return q1("SELECT id FROM booking.$table WHERE name = '$name'") }

############################################################################## seed

# Two salons in Europe/Paris; "ops" has a login but manages no partner.
sql(<<'SQL');
INSERT INTO booking.partners (id, name, city, time_zone) VALUES
    ('salon-lumiere', 'Salon Lumière', 'Paris', 'Europe/Paris'),
    ('salon-rival', 'Salon Rival', 'Paris', 'Europe/Paris');
INSERT INTO booking.partner_users (login, partner_id) VALUES ('lumiere', 'salon-lumiere'), ('rival', 'salon-rival');
INSERT INTO booking.customers (name, email, phone) VALUES
    ('Alice Martin', 'alice@example.com', '+33612345678'), ('Bob Durand', 'bob@example.com', '+33698765432');
INSERT INTO booking.staff (partner_id, name) VALUES
    ('salon-lumiere', 'Anna'), ('salon-lumiere', 'Bruno'), ('salon-rival', 'Rex');
INSERT INTO booking.staff (partner_id, name, active) VALUES
    ('salon-lumiere', 'Chloé', false), ('salon-lumiere', 'Zoé', false);
INSERT INTO booking.services (partner_id, name, duration_minutes, price_cents) VALUES
    ('salon-lumiere', 'Coupe calendrier', 45, 4500), ('salon-lumiere', 'Couleur', 90, 8000),
    ('salon-rival', 'Coupe rivale', 60, 9900);
INSERT INTO booking.resources (partner_id, name, kind) VALUES ('salon-rival', 'Rival room', 'room');
SQL

# The week of Monday 2026-10-19 to Sunday 2026-10-25; summer time ends on the Sunday at 01:00 UTC (03:00 CEST
# becomes 02:00 CET). Instants in UTC, the local times the calendar must show in the comments.
my %B;
$B{sat} = add_booking(staff => 'Anna', service => 'Coupe calendrier', email => 'alice@example.com',
    start => "'2026-10-24 08:00Z'");    # Sat 10:00+02:00 - 10:45+02:00
$B{sun} = add_booking(staff => 'Anna', service => 'Couleur', email => 'bob@example.com',
    start => "'2026-10-25 09:00Z'", status => 'completed');    # Sun 10:00+01:00 - 11:30+01:00
$B{cancelled} = add_booking(staff => 'Anna', service => 'Coupe calendrier', email => 'alice@example.com',
    start => "'2026-10-25 10:00Z'", status => 'cancelled');    # Sun 11:00+01:00, only with include=cancelled
$B{next_monday} = add_booking(staff => 'Anna', service => 'Coupe calendrier', email => 'alice@example.com',
    start => "'2026-10-25 23:00Z'");    # Mon 2026-10-26 00:00+01:00: the next week
$B{ends_at_monday} = add_booking(staff => 'Anna', service => 'Coupe calendrier', email => 'bob@example.com',
    start => "'2026-10-18 21:15Z'");    # Sun 2026-10-18 23:15+02:00 - Mon 00:00+02:00: ends as the week starts
$B{first_0230} = add_booking(staff => 'Bruno', service => 'Coupe calendrier', email => 'alice@example.com',
    start => "'2026-10-25 00:30Z'");    # 02:30+02:00 - 02:15+01:00 (the end is after the change)
$B{second_0230} = add_booking(staff => 'Bruno', service => 'Coupe calendrier', email => 'bob@example.com',
    start => "'2026-10-25 01:30Z'", status => 'no_show');    # 02:30+01:00 - 03:15+01:00
$B{monday} = add_booking(staff => 'Bruno', service => 'Coupe calendrier', email => 'alice@example.com',
    start => "'2026-10-18 22:00Z'");    # Mon 2026-10-19 00:00+02:00 - 00:45+02:00
$B{sunday_night} = add_booking(staff => 'Bruno', service => 'Coupe calendrier', email => 'bob@example.com',
    start => "'2026-10-25 22:30Z'");    # Sun 23:30+01:00 - Mon 2026-10-26 00:15+01:00
$B{chloe} = add_booking(staff => 'Chloé', service => 'Couleur', email => 'alice@example.com',
    start => "'2026-10-21 12:00Z'");    # Wed 14:00+02:00 - 15:30+02:00, by a staff member who has left
$B{rival} = add_booking(staff => 'Rex', service => 'Coupe rivale', email => 'alice@example.com',
    start => "'2026-10-22 08:00Z'");    # Thu 10:00+02:00 - 11:00+02:00, the other salon's
ok((grep { /^\d+$/ } values %B) == 11, 'eleven bookings seeded') or diag(explain(\%B));

my %SVC = (coupe => id_of('services', 'Coupe calendrier'), couleur => id_of('services', 'Couleur'));
my %ALICE = (name => 'Alice Martin', phone => '+33612345678', email => 'alice@example.com');
my %BOB = (name => 'Bob Durand', phone => '+33698765432', email => 'bob@example.com');

# What the calendar must show for a booking, by hand.
sub cal {
    my ($key, $start, $end, $status, $service, $customer) = @_;
    my $price = $service eq 'coupe' ? 4500 : 8000;
    return {id => $B{$key} + 0, start => $start, end => $end, status => $status,
        service => {id => $SVC{$service} + 0, name => $service eq 'coupe' ? 'Coupe calendrier' : 'Couleur'},
        customer => $customer, price_cents => $price};
}

my %CAL = (
    sat => cal('sat', '2026-10-24T10:00:00+02:00', '2026-10-24T10:45:00+02:00', 'confirmed', 'coupe', \%ALICE),
    sun => cal('sun', '2026-10-25T10:00:00+01:00', '2026-10-25T11:30:00+01:00', 'completed', 'couleur', \%BOB),
    cancelled => cal('cancelled', '2026-10-25T11:00:00+01:00', '2026-10-25T11:45:00+01:00', 'cancelled', 'coupe',
        \%ALICE),
    first_0230 => cal('first_0230', '2026-10-25T02:30:00+02:00', '2026-10-25T02:15:00+01:00', 'confirmed', 'coupe',
        \%ALICE),
    second_0230 => cal('second_0230', '2026-10-25T02:30:00+01:00', '2026-10-25T03:15:00+01:00', 'no_show', 'coupe',
        \%BOB),
    monday => cal('monday', '2026-10-19T00:00:00+02:00', '2026-10-19T00:45:00+02:00', 'confirmed', 'coupe', \%ALICE),
    sunday_night => cal('sunday_night', '2026-10-25T23:30:00+01:00', '2026-10-26T00:15:00+01:00', 'confirmed',
        'coupe', \%BOB),
    chloe => cal('chloe', '2026-10-21T14:00:00+02:00', '2026-10-21T15:30:00+02:00', 'confirmed', 'couleur', \%ALICE),
);

sub staff_cal {
    my ($name, @keys) = @_;
    return {id => id_of('staff', $name) + 0, name => $name, bookings => [map { $CAL{$_} } @keys]};
}

############################################################################## calendar

for my $s (qw(apache nginx)) {
    my ($status, $data) = lumiere($s, 'GET', '/account/calendar?date=2026-10-21&view=week');
    is($status, 200, "$s: calendar by week") or diag(explain($data));
    is_deeply([@$data{qw(from to time_zone)}], ['2026-10-19', '2026-10-25', 'Europe/Paris'],
        "$s: the week of Wednesday 2026-10-21 is Monday 19 to Sunday 25, in the salon's zone");
    is_deeply($data->{staff}, [
            staff_cal('Anna', qw(sat sun)),
            staff_cal('Bruno', qw(monday first_0230 second_0230 sunday_night)),
            staff_cal('Chloé', qw(chloe))],
        "$s: the week across staff: offsets +02:00 then +01:00, no cancelled booking, nothing of the next week or "
        . "of a booking that ends as the week starts, a former staff member with a booking, not one without")
        or diag(explain($data->{staff}));

    ($status, $data) = lumiere($s, 'GET', '/account/calendar?date=2026-10-25&view=week&include=cancelled');
    is($data->{from}, '2026-10-19', "$s: a Sunday belongs to the week that started the Monday before");
    is_deeply([map { $_->{id} } @{$data->{staff}[0]{bookings}}], [map { $B{$_} } qw(sat sun cancelled)],
        "$s: include=cancelled shows the cancelled booking in its place");
    is_deeply($data->{staff}[0]{bookings}[2], $CAL{cancelled}, "$s: with its status");

    ($status, $data) = lumiere($s, 'GET', '/account/calendar?date=2026-10-25&view=day');
    is($status, 200, "$s: calendar by day");
    is_deeply([@$data{qw(from to)}], ['2026-10-25', '2026-10-25'], "$s: one day");
    is_deeply($data->{staff}, [staff_cal('Anna', qw(sun)), staff_cal('Bruno', qw(first_0230 second_0230 sunday_night))],
        "$s: the 25-hour day: 02:30 twice (+02:00, then +01:00), until 24:00 local; Chloé has nothing that day")
        or diag(explain($data->{staff}));

    ($status, $data) = lumiere($s, 'GET', '/account/calendar?date=2026-10-21');
    is_deeply($data->{staff}, [staff_cal('Anna'), staff_cal('Bruno'), staff_cal('Chloé', qw(chloe))],
        "$s: day is the default view; active staff are listed without bookings") or diag(explain($data->{staff}));

    ($status, $data) = rival($s, 'GET', '/account/calendar?date=2026-10-21&view=week');
    is_deeply([map { $_->{name} } @{$data->{staff}}], ['Rex'], "$s: the other salon sees only its own staff");
    is_deeply([map { $_->{start} } @{$data->{staff}[0]{bookings}}], ['2026-10-22T10:00:00+02:00'],
        "$s: and only its own booking");

    for my $bad (['', 'date'], ['date=2026-13-01', 'date'], ['date=2026-10-21&view=month', 'view'],
        ['date=2026-10-21&include=everything', 'include']) {
        ($status, $data) = lumiere($s, 'GET', "/account/calendar?$bad->[0]");
        is("$status " . ($data->{field} // ''), "400 $bad->[1]", "$s: calendar?$bad->[0]: 400 naming $bad->[1]");
    }
}

############################################################################## the API, each server in turn

for my $s (qw(apache nginx)) {
    my ($status, $data, $r);

    # ---- who may call
    ($status) = api($t, $s, 'GET', '/account');
    is($status, 401, "$s: no login: 401");
    ($status) = account_api($t, $s, 'nobody', 'GET', '/account');
    is($status, 401, "$s: unknown login: 401");
    ($status, $data) = account_api($t, $s, 'ops', 'GET', '/account');
    is($status, 403, "$s: a login without a partner: 403");
    is($data->{code}, 'no_partner', "$s: saying so");
    ($status) = account_api($t, $s, 'ops', 'GET', '/account/staff');
    is($status, 403, "$s: on every partner route");

    # ---- the partner itself
    ($status, $data) = lumiere($s, 'GET', '/account');
    is($status, 200, "$s: GET /account");
    is_deeply([@$data{qw(id name time_zone currency slot_step_minutes cancel_deadline_minutes)}],
        ['salon-lumiere', 'Salon Lumière', 'Europe/Paris', 'EUR',
            q1("SELECT slot_step_minutes FROM booking.partners WHERE id = 'salon-lumiere'"), 1440],
        "$s: the salon's settings") or diag(explain($data));
    ok(exists $data->{branding}{color} && ref $data->{hosts} eq 'ARRAY', "$s: with branding and hosts");

    ($status, $data) = lumiere($s, 'PUT', '/account', {city => "Paris $s", phone => '+33 1 23 45 67 89',
            hosts => ['Booking.Lumiere.example', "$s.lumiere.example", 'booking.lumiere.example.'],
            branding => {color => '#8A3B5C', logo_url => '/img/lumiere.png', tagline => 'Coiffure & soins'},
            slot_step_minutes => 30, time_zone => 'Europe/Paris'});
    is($status, 200, "$s: PUT /account") or diag(explain($data));
    is_deeply($data->{hosts}, ['booking.lumiere.example', "$s.lumiere.example"],
        "$s: host names lower-cased, the final dot and the duplicate dropped");
    is_deeply($data->{branding}, {color => '#8a3b5c', logo_url => '/img/lumiere.png', tagline => 'Coiffure & soins'},
        "$s: branding as given, colour lower-cased");
    is_deeply([@$data{qw(city phone slot_step_minutes name)}], ["Paris $s", '+33123456789', 30, 'Salon Lumière'],
        "$s: the members sent changed, the others kept");
    is(q1("SELECT city || ' ' || slot_step_minutes || ' ' || array_to_string(hosts, ',') FROM booking.partners "
          . "WHERE id = 'salon-lumiere'"), "Paris $s 30 booking.lumiere.example,$s.lumiere.example",
        "$s: stored");

    my $before = state();
    my %bad = (
        time_zone => {city => 'Nowhere', time_zone => 'Mars/Olympus'},
        'hosts[0]' => {hosts => ['bad host.example']},
        'hosts[1]' => {hosts => ['ok.example', '-dash.example']},
        hosts => {hosts => 'one.example'},
        'branding.color' => {branding => {color => 'red'}},
        'branding.logo_url' => {branding => {logo_url => 'javascript:alert(1)'}},
        'branding.font' => {branding => {font => 'Comic Sans'}},
        slot_step_minutes => {slot_step_minutes => 3},
        horizon_days => {horizon_days => '60'},
        currency => {currency => 'EURO'},
        name => {name => ''},
        email => {email => 'not-an-address'},
        id => {id => 'salon-rival'},
    );
    for my $field (sort keys %bad) {
        ($status, $data) = lumiere($s, 'PUT', '/account', $bad{$field});
        is("$status " . ($data->{field} // ''), "400 $field", "$s: PUT /account with a bad $field: 400 naming it")
            or diag(explain($data));
    }
    ($status, $data) = rival($s, 'PUT', '/account', {hosts => ["$s.lumiere.example"]});
    is("$status " . ($data->{field} // ''), '409 hosts', "$s: another salon's host name: 409");
    ($status) = lumiere($s, 'PUT', '/account', '{"city": "Lyon"}', 'Content-Type' => 'text/plain');
    is($status, 415, "$s: not JSON: 415");
    ($status) = lumiere($s, 'PUT', '/account', 'city=Lyon', 'Content-Type' => 'application/x-www-form-urlencoded');
    is($status, 415, "$s: a form (what a cross-site page can send): 415");
    ($status, $data) = lumiere($s, 'PUT', '/account', '{"city": ');
    is("$status $data->{code}", '400 invalid_json', "$s: broken JSON: 400");
    is(state(), $before, "$s: nothing was written by the refused requests");

    # ---- opening hours
    ($status, $data) = lumiere($s, 'PUT', '/account/hours', {hours => [
        {weekday => 6, opens => '10:00', closes => '24:00'},
        {weekday => 1, opens => '13:00', closes => '19:00'},
        {weekday => 1, opens => '09:00', closes => '12:00'}]});
    is($status, 200, "$s: PUT /account/hours") or diag(explain($data));
    my $hours = [{weekday => 1, opens => '09:00', closes => '12:00'}, {weekday => 1, opens => '13:00',
            closes => '19:00'}, {weekday => 6, opens => '10:00', closes => '24:00'}];
    is_deeply($data->{hours}, $hours, "$s: in weekday order, 24:00 kept");
    is_deeply((lumiere($s, 'GET', '/account/hours'))[1]{hours}, $hours, "$s: GET /account/hours reads them back");
    is(q1("SELECT count(*) FROM booking.opening_hours WHERE partner_id = 'salon-lumiere'"), 3,
        "$s: replaced, not added to");
    $before = state();
    my @bad_hours = (
        ['hours[0].closes', [{weekday => 2, opens => '18:00', closes => '09:00'}]],
        ['hours[1].weekday', [{weekday => 2, opens => '09:00', closes => '12:00'},
            {weekday => 8, opens => '09:00', closes => '12:00'}]],
        ['hours[1]', [{weekday => 3, opens => '09:00', closes => '12:00'},
            {weekday => 3, opens => '11:00', closes => '14:00'}]],
        ['hours[0].opens', [{weekday => 3, opens => '9h', closes => '12:00'}]],
        ['hours[0].lunch', [{weekday => 3, opens => '09:00', closes => '12:00', lunch => 1}]],
        ['hours[0]', ['09:00-12:00']],
    );
    for my $case (@bad_hours) {
        ($status, $data) = lumiere($s, 'PUT', '/account/hours', {hours => $case->[1]});
        is("$status " . ($data->{field} // ''), "400 $case->[0]", "$s: hours refused naming $case->[0]")
            or diag(explain($data));
    }
    ($status, $data) = lumiere($s, 'PUT', '/account/hours', {});
    is("$status " . ($data->{field} // ''), '400 hours', "$s: hours are required");
    is(state(), $before, "$s: nothing was written by the refused hours");

    # ---- the salon's exceptions
    ($status, $data, $r) = lumiere($s, 'POST', '/account/exceptions', {day => '2026-12-25', note => 'Noël'});
    is($status, 201, "$s: a closed day") or diag(explain($data));
    my $closed = $data->{id};
    like($r->{headers}{location} // '', qr{/booking/api/account/exceptions/$closed$}, "$s: Location of the new row");
    is_deeply($data, {id => $closed, day => '2026-12-25', opens => undef, closes => undef, note => 'Noël'},
        "$s: closed all day");
    ($status, $data) = lumiere($s, 'POST', '/account/exceptions',
        {day => '2026-12-24', opens => '09:00', closes => '13:00', note => 'Veille'});
    is($status, 201, "$s: special hours");
    my $special = $data->{id};
    ($status, $data) = lumiere($s, 'POST', '/account/exceptions', {day => '2026-12-25', opens => '10:00',
            closes => '12:00'});
    is("$status " . ($data->{field} // ''), '409 day', "$s: hours on a closed day: 409");
    ($status, $data) = lumiere($s, 'POST', '/account/exceptions', {day => '2026-12-24', opens => '12:00',
            closes => '14:00'});
    is($status, 409, "$s: special hours that overlap: 409");
    $before = state();
    for my $case (['day', {day => '2026-02-30'}], ['closes', {day => '2026-12-20', opens => '10:00'}],
        ['opens', {day => '2026-12-20', closes => '10:00'}],
        ['closes', {day => '2026-12-20', opens => '12:00', closes => '10:00'}],
        ['note', {day => '2026-12-20', note => 'x' x 201}], ['day', {note => 'no day'}],
        ['starts', {day => '2026-12-20', starts => '10:00'}]) {
        ($status, $data) = lumiere($s, 'POST', '/account/exceptions', $case->[1]);
        is("$status " . ($data->{field} // ''), "400 $case->[0]", "$s: exception refused naming $case->[0]")
            or diag(explain($data));
    }
    is(state(), $before, "$s: nothing was written by the refused exceptions");
    ($status, $data) = lumiere($s, 'GET', '/account/exceptions?from=2026-12-24&to=2026-12-24');
    is_deeply([map { $_->{id} } @{$data->{exceptions}}], [$special], "$s: listed by date range");
    ($status, $data) = lumiere($s, 'GET', '/account/exceptions');
    is_deeply([map { $_->{day} } @{$data->{exceptions}}], ['2026-12-24', '2026-12-25'], "$s: all, by day");
    ($status, $data) = lumiere($s, 'GET', '/account/exceptions?from=2026-12-26&to=2026-12-01');
    is("$status " . ($data->{field} // ''), '400 to', "$s: a reversed range: 400");
    ($status, $data) = rival($s, 'GET', '/account/exceptions');
    is_deeply($data->{exceptions}, [], "$s: the other salon sees none of them");
    ($status) = rival($s, 'DELETE', "/account/exceptions/$closed");
    is($status, 404, "$s: nor deletes them");
    is(q1("SELECT count(*) FROM booking.partner_exceptions WHERE id = $closed"), 1, "$s: still there");
    is((lumiere($s, 'DELETE', "/account/exceptions/$closed"))[0], 204, "$s: deleted by its salon");
    is((lumiere($s, 'DELETE', "/account/exceptions/$closed"))[0], 404, "$s: once");
    is((lumiere($s, 'DELETE', "/account/exceptions/$special"))[0], 204, "$s: the other one too");

    # ---- services, staff, resources
    ($status, $data, $r) = lumiere($s, 'POST', '/account/services', {name => "Coupe $s", category => 'Cheveux',
            duration_minutes => 45, price_cents => 3500, buffer_after_minutes => 15});
    is($status, 201, "$s: a service") or diag(explain($data));
    my $svc = $data->{id};
    like($r->{headers}{location} // '', qr{/account/services/$svc$}, "$s: with its Location");
    is_deeply($data, {id => $svc, name => "Coupe $s", category => 'Cheveux', description => '',
            duration_minutes => 45, price_cents => 3500, currency => 'EUR', buffer_before_minutes => 0,
            buffer_after_minutes => 15, resource_kind => undef, active => JSON::PP::true, staff => []},
        "$s: as given, in the salon's currency") or diag(explain($data));

    ($status, $data) = lumiere($s, 'POST', '/account/staff', {name => "Camille $s", services => [$svc, $svc]});
    is($status, 201, "$s: a staff member") or diag(explain($data));
    my $camille = $data->{id};
    is_deeply($data, {id => $camille, name => "Camille $s", active => JSON::PP::true, services => [$svc]},
        "$s: who performs the service");
    is_deeply((lumiere($s, 'GET', "/account/services/$svc"))[1]{staff}, [$camille], "$s: seen from the service");

    ($status, $data) = lumiere($s, 'POST', '/account/resources', {name => "Fauteuil $s", kind => 'chair'});
    is($status, 201, "$s: a resource") or diag(explain($data));
    my $chair = $data->{id};
    is_deeply($data, {id => $chair, name => "Fauteuil $s", kind => 'chair', active => JSON::PP::true},
        "$s: as given");

    $before = state();
    my $rival_svc = id_of('services', 'Coupe rivale');
    my $rex = id_of('staff', 'Rex');
    my @bad_catalogue = (
        ['/account/staff', 'services[1]', {name => 'X', services => [$svc, $rival_svc]}],
        ['/account/staff', 'services[0]', {name => 'X', services => [99999999]}],
        ['/account/staff', 'services[0]', {name => 'X', services => ['1']}],
        ['/account/staff', 'name', {services => []}],
        ['/account/staff', 'name', {name => 'x' x 201}],
        ['/account/staff', 'active', {name => 'X', active => 'yes'}],
        ['/account/staff', 'role', {name => 'X', role => 'boss'}],
        ['/account/services', 'staff[0]', {name => 'X', duration_minutes => 30, price_cents => 100, staff => [$rex]}],
        ['/account/services', 'duration_minutes', {name => 'X', duration_minutes => 0, price_cents => 100}],
        ['/account/services', 'duration_minutes', {name => 'X', price_cents => 100}],
        ['/account/services', 'price_cents', {name => 'X', duration_minutes => 30, price_cents => -1}],
        ['/account/services', 'price_cents', {name => 'X', duration_minutes => 30, price_cents => '12'}],
        ['/account/services', 'resource_kind', {name => 'X', duration_minutes => 30, price_cents => 1,
            resource_kind => 'Big Room'}],
        ['/account/services', 'currency', {name => 'X', duration_minutes => 30, price_cents => 1, currency => 'E'}],
        ['/account/services', 'buffer_before_minutes', {name => 'X', duration_minutes => 30, price_cents => 1,
            buffer_before_minutes => 241}],
        ['/account/resources', 'kind', {name => 'X', kind => 'a room'}],
        ['/account/resources', 'kind', {name => 'X'}],
    );
    for my $case (@bad_catalogue) {
        ($status, $data) = lumiere($s, 'POST', $case->[0], $case->[2]);
        is("$status " . ($data->{field} // ''), "400 $case->[1]", "$s: POST $case->[0] refused naming $case->[1]")
            or diag(explain($data));
    }
    ($status) = lumiere($s, 'POST', '/account/staff', '{"name": "X"}', 'Content-Type' => 'text/plain');
    is($status, 415, "$s: POST without JSON: 415");
    is(state(), $before, "$s: nothing was written by the refused requests");

    # A booking at the old price, then the price changes: the booking keeps what the customer was quoted.
    my $priced = add_booking(staff => "Camille $s", service => "Coupe $s", email => 'bob@example.com',
        start => $s eq 'apache' ? "'2027-01-11 09:00Z'" : "'2027-01-12 09:00Z'");
    ($status, $data) = lumiere($s, 'PUT', "/account/services/$svc", {price_cents => 4000, resource_kind => 'chair',
            description => 'Shampooing compris'});
    is($status, 200, "$s: PUT a service") or diag(explain($data));
    is_deeply([@$data{qw(price_cents resource_kind description name duration_minutes)}],
        [4000, 'chair', 'Shampooing compris', "Coupe $s", 45], "$s: the members sent changed, the others kept");
    is(q1("SELECT price_cents FROM booking.bookings WHERE id = $priced"), 3500, "$s: the booking keeps its price");
    ($status, $data) = lumiere($s, 'PUT', "/account/services/$svc", {resource_kind => undef, staff => []});
    is_deeply([$data->{resource_kind}, $data->{staff}], [undef, []], "$s: null clears the resource, [] the staff");
    ($status, $data) = lumiere($s, 'PUT', "/account/staff/$camille", {name => "Camille B. $s", services => [$svc]});
    is_deeply([@$data{qw(name services)}], ["Camille B. $s", [$svc]], "$s: PUT a staff member");
    ($status, $data) = lumiere($s, 'PUT', "/account/resources/$chair", {kind => 'room', name => "Salle $s"});
    is_deeply([@$data{qw(kind name)}], ['room', "Salle $s"], "$s: PUT a resource");
    ($status, $data) = lumiere($s, 'GET', '/account/staff');
    ok((grep { $_->{id} == $camille } @{$data->{staff}}), "$s: the staff list has the new member");
    ok(!(grep { $_->{name} eq 'Rex' } @{$data->{staff}}), "$s: and not the other salon's");
    ($status, $data) = lumiere($s, 'GET', '/account/resources');
    is_deeply([sort map { $_->{name} } @{$data->{resources}}], [$s eq 'apache' ? ('Salle apache') : ('Salle apache',
        'Salle nginx')], "$s: the resource list, not the other salon's room");

    # ---- working plan and absences
    my $plan = {hours => [{weekday => 1, starts => '09:00', ends => '17:00'}, {weekday => 3, starts => '10:00',
                ends => '19:00'}], breaks => [{weekday => 1, starts => '12:00', ends => '13:00'}]};
    ($status, $data) = lumiere($s, 'PUT', "/account/staff/$camille/plan", $plan);
    is($status, 200, "$s: PUT a working plan") or diag(explain($data));
    is_deeply($data, $plan, "$s: as given");
    is_deeply((lumiere($s, 'GET', "/account/staff/$camille/plan"))[1], $plan, "$s: read back");
    $before = state();
    for my $case (
        ['breaks[0]', {hours => $plan->{hours}, breaks => [{weekday => 1, starts => '16:30', ends => '17:30'}]}],
        ['breaks[1]', {hours => $plan->{hours}, breaks => [$plan->{breaks}[0], {weekday => 2, starts => '12:00',
            ends => '13:00'}]}],
        ['hours[0].ends', {hours => [{weekday => 1, starts => '09:00', ends => '09:00'}]}],
        ['hours', {breaks => []}]) {
        ($status, $data) = lumiere($s, 'PUT', "/account/staff/$camille/plan", $case->[1]);
        is("$status " . ($data->{field} // ''), "400 $case->[0]", "$s: plan refused naming $case->[0]")
            or diag(explain($data));
    }
    is(state(), $before, "$s: nothing was written by the refused plans");

    ($status, $data, $r) = lumiere($s, 'POST', "/account/staff/$camille/exceptions",
        {day => '2027-02-01', starts => '14:00', ends => '16:00', note => 'Formation'});
    is($status, 201, "$s: an absence") or diag(explain($data));
    my $absence = $data->{id};
    like($r->{headers}{location} // '', qr{/account/staff/$camille/exceptions/$absence$}, "$s: with its Location");
    ($status, $data) = lumiere($s, 'POST', "/account/staff/$camille/exceptions", {day => '2027-02-02'});
    is_deeply([$status, @$data{qw(starts ends)}], [201, undef, undef], "$s: a whole day off");
    ($status, $data) = lumiere($s, 'GET', "/account/staff/$camille/exceptions?from=2027-02-01&to=2027-02-01");
    is_deeply($data->{exceptions}, [{id => $absence, day => '2027-02-01', starts => '14:00', ends => '16:00',
                note => 'Formation'}], "$s: listed by date range");
    ($status, $data) = lumiere($s, 'POST', "/account/staff/$camille/exceptions", {day => '2027-02-03',
            starts => '16:00', ends => '14:00'});
    is("$status " . ($data->{field} // ''), '400 ends', "$s: an absence that ends before it starts: 400");

    # ---- the other salon: every id of this one is unknown to it, and nothing changes
    $before = state();
    my @foreign = (
        ['GET', "/account/staff/$camille"], ['PUT', "/account/staff/$camille", {name => 'Taken'}],
        ['DELETE', "/account/staff/$camille"], ['GET', "/account/staff/$camille/plan"],
        ['PUT', "/account/staff/$camille/plan", {hours => []}], ['GET', "/account/staff/$camille/exceptions"],
        ['POST', "/account/staff/$camille/exceptions", {day => '2027-03-01'}],
        ['DELETE', "/account/staff/$camille/exceptions/$absence"], ['GET', "/account/services/$svc"],
        ['PUT', "/account/services/$svc", {price_cents => 1}], ['DELETE', "/account/services/$svc"],
        ['PUT', "/account/resources/$chair", {name => 'Taken'}], ['DELETE', "/account/resources/$chair"],
        ['POST', "/account/bookings/$priced/status", {status => 'cancelled'}],
    );
    for my $req (@foreign) {
        ($status, $data) = rival($s, @$req);
        is($status, 404, "$s: the other salon: $req->[0] $req->[1]: 404") or diag(explain($data));
    }
    ($status, $data) = rival($s, 'POST', '/account/staff', {name => 'Poacher', services => [$svc]});
    is("$status " . ($data->{field} // ''), '400 services[0]', "$s: nor links its staff to this salon's service");
    ($status) = lumiere($s, 'DELETE', "/account/staff/$camille/exceptions/999999999");
    is($status, 404, "$s: an unknown absence: 404");
    is(state(), $before, "$s: nothing changed in the database");
    for my $path ('/account/staff/abc', '/account/staff/0', '/account/staff/012', '/account/services/-1') {
        is((lumiere($s, 'GET', $path))[0], 404, "$s: GET $path: 404");
    }

    # ---- deactivation keeps history
    is((lumiere($s, 'DELETE', "/account/staff/$camille/exceptions/$absence"))[0], 204, "$s: absence deleted");
    is(q1("SELECT count(*) FROM booking.staff_exceptions WHERE id = $absence"), 0, "$s: gone");
    is((lumiere($s, 'DELETE', "/account/staff/$camille"))[0], 204, "$s: DELETE a staff member");
    is(q1("SELECT active::text FROM booking.staff WHERE id = $camille"), 'false', "$s: deactivated, kept");
    is((lumiere($s, 'GET', "/account/staff/$camille"))[1]{active}, JSON::PP::false, "$s: and shown as inactive");
    is((lumiere($s, 'DELETE', "/account/services/$svc"))[0], 204, "$s: DELETE a service");
    is((lumiere($s, 'DELETE', "/account/resources/$chair"))[0], 204, "$s: DELETE a resource");
    is(q1("SELECT string_agg(active::text, ' ') FROM (SELECT active FROM booking.services WHERE id = $svc "
          . "UNION ALL SELECT active FROM booking.resources WHERE id = $chair) a"), 'false false',
        "$s: both kept, inactive");
    is(q1("SELECT count(*) FROM booking.bookings WHERE id = $priced"), 1, "$s: the booking is still there");
    ($status, $data) = lumiere($s, 'PUT', "/account/staff/$camille", {active => JSON::PP::true});
    is($data->{active}, JSON::PP::true, "$s: a staff member can come back");

    # ---- booking status
    my $hours_ahead = $s eq 'apache' ? 48 : 72;
    my $future = add_booking(staff => 'Bruno', service => 'Coupe calendrier', email => 'alice@example.com',
        start => "date_trunc('hour', now()) + interval '$hours_ahead hours'");
    my $past = add_booking(staff => 'Bruno', service => 'Coupe calendrier', email => 'bob@example.com',
        start => "date_trunc('hour', now()) - interval '" . ($hours_ahead / 12) . " hours'");
    my $outbox = sub { q1("SELECT coalesce(string_agg(kind, ' ' ORDER BY id), '') FROM booking.outbox "
                         . "WHERE booking_id = $_[0] AND kind <> 'booking.reminder'") };

    $before = state();
    ($status, $data) = lumiere($s, 'POST', "/account/bookings/$future/status", {status => 'completed'});
    is("$status " . ($data->{field} // ''), '409 status', "$s: completed before it started: 409");
    ($status, $data) = lumiere($s, 'POST', "/account/bookings/$future/status", {status => 'no_show'});
    is($status, 409, "$s: no_show before it started: 409");
    ($status, $data) = lumiere($s, 'POST', "/account/bookings/$future/status", {status => 'done'});
    is("$status " . ($data->{field} // ''), '400 status', "$s: an unknown status: 400");
    ($status, $data) = lumiere($s, 'POST', "/account/bookings/$future/status", {status => 'cancelled', why => 1});
    is("$status " . ($data->{field} // ''), '400 why', "$s: an unknown member: 400");
    ($status) = lumiere($s, 'POST', "/account/bookings/$future/status", '{"status":"cancelled"}',
        'Content-Type' => 'text/plain');
    is($status, 415, "$s: not JSON: 415");
    ($status) = lumiere($s, 'POST', "/account/bookings/$B{rival}/status", {status => 'cancelled'});
    is($status, 404, "$s: the other salon's booking: 404");
    is(state(), $before, "$s: nothing changed by the refused status changes");

    ($status, $data) = lumiere($s, 'POST', "/account/bookings/$future/status", {status => 'cancelled'});
    is($status, 200, "$s: cancelled by the salon") or diag(explain($data));
    is_deeply([@$data{qw(id status previous_status)}], [$future, 'cancelled', 'confirmed'], "$s: says so");
    is(q1("SELECT status || ' ' || (cancelled_at IS NOT NULL) FROM booking.bookings WHERE id = $future"),
        'cancelled true', "$s: stored with the time of cancellation");
    is($outbox->($future), 'booking.cancelled', "$s: the customer's notification is queued with it");
    ($status, $data) = lumiere($s, 'POST', "/account/bookings/$future/status", {status => 'cancelled'});
    is($status, 200, "$s: cancelling again is harmless");
    is($outbox->($future), 'booking.cancelled', "$s: and queues nothing more");
    ($status, $data) = lumiere($s, 'POST', "/account/bookings/$future/status", {status => 'confirmed'});
    is("$status $data->{status}", '200 confirmed', "$s: restored");
    is(q1("SELECT status || ' ' || (cancelled_at IS NULL) FROM booking.bookings WHERE id = $future"),
        'confirmed true', "$s: stored");
    is($outbox->($future), 'booking.cancelled booking.confirmed', "$s: the customer hears of it");

    # Cancelled, the slot taken by someone else, then restored: the exclusion constraint says no.
    lumiere($s, 'POST', "/account/bookings/$future/status", {status => 'cancelled'});
    my $taker = add_booking(staff => 'Bruno', service => 'Coupe calendrier', email => 'bob@example.com',
        start => "date_trunc('hour', now()) + interval '$hours_ahead hours' + interval '30 minutes'");
    ok($taker, "$s: the slot is taken by another booking");
    ($status, $data) = lumiere($s, 'POST', "/account/bookings/$future/status", {status => 'confirmed'});
    is("$status " . ($data->{code} // ''), '409 slot_taken', "$s: restoring into a taken slot: 409");
    is(q1("SELECT status FROM booking.bookings WHERE id = $future"), 'cancelled', "$s: still cancelled");
    is($outbox->($future), 'booking.cancelled booking.confirmed booking.cancelled', "$s: nothing queued for it");

    ($status, $data) = lumiere($s, 'POST', "/account/bookings/$past/status", {status => 'completed'});
    is("$status $data->{status}", '200 completed', "$s: completed once started");
    ($status, $data) = lumiere($s, 'POST', "/account/bookings/$past/status", {status => 'no_show'});
    is("$status $data->{previous_status}", '200 completed', "$s: corrected to no_show");
    is(q1("SELECT status FROM booking.bookings WHERE id = $past"), 'no_show', "$s: stored");
    is($outbox->($past), '', "$s: a missed visit sends the customer nothing");
}

done_testing();
