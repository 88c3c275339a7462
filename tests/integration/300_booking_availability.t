#!/usr/bin/perl
# Availability on both servers against hand-checked calendars of a salon in Europe/Paris: opening hours with a
# lunch closure, a staff break, buffers before and after, existing bookings (a cancelled one ignored), a closure and
# special hours, a whole-day and a partial absence, "any" staff against a given one, a service limited by its room,
# minimum notice and horizon relative to now, and both DST weekends (09:00 stays 09:00 with the new offset; a night
# spa open 00:00-06:00 gets 5 slots on the short night and 7 on the long one, 02:00 twice). Then the refusals (400
# naming the field, 404), the white-label host that sees only its partner, and PostgreSQL down (503).
#
# Dates are chosen relative to today (a Monday at least two weeks ahead, the next DST Sundays), so the test keeps
# working as time passes; the wall-clock expectations do not depend on the year.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Time::Local qw(timegm);
use ModTest;
use BookingConf qw(booking_conf api seed_sql sql_value ensure_schema);

my $t = ModTest->new(postgres => 1);
BookingConf::setup_files($t);
$t->start_servers(booking_conf());
ensure_schema($t);

# ------------------------------------------------------------------------------------------------- dates

sub epoch_of { my ($y, $m, $d) = split /-/, $_[0]; return timegm(0, 0, 0, $d, $m - 1, $y) }
sub ymd { my @g = gmtime($_[0]); return sprintf('%04d-%02d-%02d', $g[5] + 1900, $g[4] + 1, $g[3]) }
sub add_days { return ymd(epoch_of($_[0]) + $_[1] * 86400) }
sub weekday { return (gmtime(epoch_of($_[0])))[6] }    # 0 Sunday .. 6 Saturday

# The EU rule: summer time from the last Sunday of March to the last Sunday of October.
sub last_sunday {
    my ($y, $m) = @_;
    my $d = add_days(sprintf('%04d-%02d-01', $m == 12 ? $y + 1 : $y, $m == 12 ? 1 : $m + 1), -1);
    $d = add_days($d, -1) while weekday($d) != 0;
    return $d;
}

# Paris's offset on a day that is not itself a change day.
sub paris_offset {
    my ($d) = @_;
    my $y = substr($d, 0, 4);
    return ($d gt last_sunday($y, 3) && $d lt last_sunday($y, 10)) ? '+02:00' : '+01:00';
}

sub next_change_sunday {
    my ($month, $after) = @_;
    my $y = substr($after, 0, 4);
    for my $year ($y, $y + 1) {
        my $s = last_sunday($year, $month);
        return $s if $s ge $after;
    }
}

my $today = sql_value($t, "SELECT to_char(now() AT TIME ZONE 'Europe/Paris', 'YYYY-MM-DD')");
my $spring = next_change_sunday(3, add_days($today, 7));
my $autumn = next_change_sunday(10, add_days($today, 7));
my %change = map { $_ => 1 } $spring, $autumn;

# The regular week: Monday $D .. Saturday, its Sundays not change days, so it cannot meet the DST weekends.
my $D = add_days($today, 14);
$D = add_days($D, 1) while weekday($D) != 1;
$D = add_days($D, 7) while $change{add_days($D, -1)} || $change{add_days($D, 6)};
my @day = map { add_days($D, $_) } 0 .. 5;    # Mon .. Sat
my $off = paris_offset($D);
diag("week of $D ($off), spring change $spring, autumn change $autumn");

# ---------------------------------------------------------------------------------------------- the seed

seed_sql($t, <<"SQL");
INSERT INTO booking.partners (id, name, city, time_zone, min_notice_minutes, horizon_days, slot_step_minutes, active)
VALUES ('salon-lumiere', 'Salon Lumière', 'Paris', 'Europe/Paris', 60, 730, 30, true),
       ('nuit-spa', 'Nuit Spa', 'Paris', NULL, 0, 730, 60, true),
       ('express-24', 'Express 24', 'Lyon', 'Europe/Paris', 180, 2, 60, true),
       ('salon-ferme', 'Salon fermé', 'Paris', 'Europe/Paris', 0, 730, 30, false);
INSERT INTO booking.opening_hours (partner_id, weekday, opens, closes)
SELECT 'salon-lumiere', d, '09:00'::time, '12:00'::time FROM generate_series(1, 6) d
UNION ALL SELECT 'salon-lumiere', d, '13:00'::time, '18:00'::time FROM generate_series(1, 6) d
UNION ALL SELECT 'salon-lumiere', 7, '09:00'::time, '12:00'::time
UNION ALL SELECT 'nuit-spa', 7, '00:00'::time, '06:00'::time
UNION ALL SELECT 'express-24', d, '00:00'::time, '24:00'::time FROM generate_series(1, 7) d
UNION ALL SELECT 'salon-ferme', d, '09:00'::time, '18:00'::time FROM generate_series(1, 7) d;
INSERT INTO booking.staff (partner_id, name, active)
VALUES ('salon-lumiere', 'Alice', true), ('salon-lumiere', 'Bruno', true), ('salon-lumiere', 'Chloe', true),
       ('salon-lumiere', 'Dora', false), ('nuit-spa', 'Nina', true), ('express-24', 'Eve', true),
       ('salon-ferme', 'Fred', true);
SQL

my %staff = map { $_ => sql_value($t, "SELECT id FROM booking.staff WHERE name = '$_'") }
    qw(Alice Bruno Chloe Dora Nina Eve Fred);
my ($A, $B) = @staff{qw(Alice Bruno)};

seed_sql($t, <<"SQL");
INSERT INTO booking.staff_hours (staff_id, weekday, starts, ends)
SELECT $A, d, '09:00'::time, '18:00'::time FROM generate_series(1, 5) d
UNION ALL SELECT $A, 6, '09:00'::time, '12:00'::time
UNION ALL SELECT $A, 7, '09:00'::time, '12:00'::time
UNION ALL SELECT $B, d, '14:00'::time, '18:00'::time FROM generate_series(1, 6) d
UNION ALL SELECT $staff{Chloe}, d, '09:00'::time, '18:00'::time FROM generate_series(1, 7) d
UNION ALL SELECT $staff{Dora}, d, '09:00'::time, '18:00'::time FROM generate_series(1, 7) d
UNION ALL SELECT $staff{Nina}, 7, '00:00'::time, '06:00'::time
UNION ALL SELECT $staff{Eve}, d, '00:00'::time, '24:00'::time FROM generate_series(1, 7) d
UNION ALL SELECT $staff{Fred}, d, '09:00'::time, '18:00'::time FROM generate_series(1, 7) d;
INSERT INTO booking.staff_breaks (staff_id, weekday, starts, ends) VALUES ($A, 1, '10:30', '11:00');
INSERT INTO booking.services (partner_id, name, duration_minutes, price_cents, buffer_before_minutes,
                              buffer_after_minutes, resource_kind, active)
VALUES ('salon-lumiere', 'Coupe', 60, 3500, 0, 15, NULL, true),
       ('salon-lumiere', 'Massage', 60, 6000, 0, 0, 'room', true),
       ('salon-lumiere', 'Soin', 30, 2500, 15, 0, NULL, true),
       ('salon-lumiere', 'Ancien', 30, 1000, 0, 0, NULL, false),
       ('salon-lumiere', 'Hammam', 60, 4000, 0, 0, 'hammam', true),
       ('nuit-spa', 'Nuit', 60, 9000, 0, 0, NULL, true),
       ('express-24', 'Express', 60, 2000, 0, 0, NULL, true),
       ('salon-ferme', 'Coupe fermée', 60, 3000, 0, 0, NULL, true);
SQL

my %svc = map { $_ => sql_value($t, "SELECT id FROM booking.services WHERE name = '$_'") }
    ('Coupe', 'Massage', 'Soin', 'Ancien', 'Hammam', 'Nuit', 'Express', 'Coupe fermée');

seed_sql($t, <<"SQL");
INSERT INTO booking.service_staff (service_id, staff_id)
VALUES ($svc{Coupe}, $A), ($svc{Coupe}, $B), ($svc{Coupe}, $staff{Dora}), ($svc{Massage}, $A), ($svc{Massage}, $B),
       ($svc{Soin}, $A), ($svc{Ancien}, $A), ($svc{Hammam}, $A), ($svc{Nuit}, $staff{Nina}),
       ($svc{Express}, $staff{Eve}), ($svc{'Coupe fermée'}, $staff{Fred});
INSERT INTO booking.resources (partner_id, name, kind, active)
VALUES ('salon-lumiere', 'Cabine 1', 'room', true), ('salon-lumiere', 'Cabine 2', 'room', false),
       ('salon-lumiere', 'Fauteuil', 'chair', true);
-- Tuesday closed; Wednesday open 10:00-13:00 only.
INSERT INTO booking.partner_exceptions (partner_id, day, opens, closes, note)
VALUES ('salon-lumiere', '$day[1]', NULL, NULL, 'inventaire'), ('salon-lumiere', '$day[2]', '10:00', '13:00', 'spécial');
-- Thursday: Alice away all day, Bruno 15:00-16:00.
INSERT INTO booking.staff_exceptions (staff_id, day, starts, ends)
VALUES ($A, '$day[3]', NULL, NULL), ($B, '$day[3]', '15:00', '16:00');
INSERT INTO booking.customers (name, email, phone) VALUES ('Claire Martin', 'claire\@example.org', '+33612345678');
SQL

my $room1 = sql_value($t, "SELECT id FROM booking.resources WHERE name = 'Cabine 1'");
my $customer = sql_value($t, "SELECT id FROM booking.customers");

# Existing bookings, busy ranges by hand: the service plus its buffers.
my $n = 0;
sub booking_row {
    my ($staff, $service, $resource, $start, $end, $busy_from, $busy_to, $status) = @_;
    $n++;
    return "($staff, $service, " . ($resource // 'NULL') . ", '$start', '$end', '[$busy_from, $busy_to)', '$status', "
        . "decode(md5('availability-$n'), 'hex'))";
}
my @rows = (
    # Monday: Alice, Coupe 14:00-15:00 with 15 min after -> busy [14:00, 15:15)
    booking_row($A, $svc{Coupe}, undef, "$day[0] 14:00$off", "$day[0] 15:00$off", "$day[0] 14:00$off",
        "$day[0] 15:15$off", 'confirmed'),
    # Friday: Alice in Cabine 1, 15:00-16:00; Bruno in Cabine 1 17:00-18:00 but cancelled (ignored)
    booking_row($A, $svc{Massage}, $room1, "$day[4] 15:00$off", "$day[4] 16:00$off", "$day[4] 15:00$off",
        "$day[4] 16:00$off", 'confirmed'),
    booking_row($B, $svc{Massage}, $room1, "$day[4] 17:00$off", "$day[4] 18:00$off", "$day[4] 17:00$off",
        "$day[4] 18:00$off", 'cancelled'),
    # Saturday: Alice, Soin 10:15-10:45 with 15 min before -> busy [10:00, 10:45)
    booking_row($A, $svc{Soin}, undef, "$day[5] 10:15$off", "$day[5] 10:45$off", "$day[5] 10:00$off",
        "$day[5] 10:45$off", 'completed'),
);
seed_sql($t, "INSERT INTO booking.bookings (partner_id, customer_id, price_cents, currency, staff_id, service_id, "
    . "resource_id, starts_at, ends_at, busy, status, manage_token_hash) "
    . "SELECT 'salon-lumiere', $customer, 0, 'EUR', s, v, r, a::timestamptz, e::timestamptz, b::tstzrange, st, h "
    . "FROM (VALUES " . join(', ', @rows) . ") AS x(s, v, r, a, e, b, st, h)");
is(sql_value($t, 'SELECT count(*) FROM booking.bookings'), 4, 'the bookings are in');

# ------------------------------------------------------------------------------------------------ helpers

# "HH:MM" + minutes, on a day without a change
sub hm_add {
    my ($hm, $minutes) = @_;
    my ($h, $m) = split /:/, $hm;
    my $total = $h * 60 + $m + $minutes;
    return sprintf('%02d:%02d', int($total / 60), $total % 60);
}

# Expected slots of one day: [hh:mm, [staff...]] or hh:mm (then @$default_staff).
sub expect {
    my ($date, $offset, $duration, $default_staff, @specs) = @_;
    return map {
        my ($hm, $who) = ref $_ ? @$_ : ($_, $default_staff);
        "${date}T$hm:00$offset ${date}T" . hm_add($hm, $duration) . ":00$offset " . join(',', @$who)
    } @specs;
}

sub got { my ($data) = @_; return [map { "$_->{start} $_->{end} " . join(',', @{$_->{staff}}) } @{$data->{slots} // []}] }

sub avail {
    my ($s, $partner, %q) = @_;
    my $query = join '&', map { "$_=$q{$_}" } sort keys %q;
    return api($t, $s, 'GET', "/partners/$partner/availability?$query");
}

sub slots_are {
    my ($s, $label, $partner, $query, @want) = @_;
    my ($status, $data) = avail($s, $partner, %$query);
    is($status, 200, "$s: $label: 200") or diag(explain($data));
    is_deeply(got($data), \@want, "$s: $label: the slots") or diag(explain(got($data)));
    return $data;
}

# "2026-03-29T03:00:00+02:00" -> epoch
sub epoch_of_stamp {
    my ($y, $mo, $d, $h, $mi, $se, $sign, $oh, $om) = $_[0] =~ /^(\d+)-(\d+)-(\d+)T(\d+):(\d+):(\d+)([+-])(\d+):(\d+)\z/
        or return undef;
    return timegm($se, $mi, $h, $d, $mo - 1, $y) - ($sign eq '-' ? -1 : 1) * ($oh * 3600 + $om * 60);
}

# ---------------------------------------------------------------------------------------------- the tests

my @monday_any = expect($day[0], $off, 60, [$A], '09:00', ['14:00', [$B]], ['14:30', [$B]], ['15:00', [$B]],
    ['15:30', [$A, $B]], ['16:00', [$A, $B]], ['16:30', [$A, $B]]);
my @wednesday = expect($day[2], $off, 60, [$A], '10:00', '10:30', '11:00', '11:30');

for my $s (qw(apache nginx)) {
    # Monday, Coupe (60 min + 15 after), Alice: her break 10:30-11:00 leaves [09:00, 10:30) (only 09:00 fits 75 min),
    # [11:00, 12:00) (too short), [13:00, 18:00) where her 14:00 booking (busy to 15:15) leaves 15:30, 16:00, 16:30.
    my $data = slots_are($s, 'Monday, Alice', 'salon-lumiere', {service => $svc{Coupe}, from => $day[0], staff => $A},
        expect($day[0], $off, 60, [$A], '09:00', '15:30', '16:00', '16:30'));
    is($data->{partner}, 'salon-lumiere', "$s: the partner");
    is($data->{service}, $svc{Coupe}, "$s: the service");
    is($data->{time_zone}, 'Europe/Paris', "$s: the partner's zone");
    is("$data->{from} $data->{to}", "$day[0] $day[0]", "$s: to defaults to from");

    # Any staff: Bruno works 14:00-18:00 (14:00 .. 16:30 for 75 min), merged with Alice's, ids ascending.
    slots_are($s, 'Monday, any staff', 'salon-lumiere', {service => $svc{Coupe}, from => $day[0], to => $day[0]},
        @monday_any);

    # Tuesday closed, Wednesday special hours 10:00-13:00 (Bruno's 14:00-18:00 falls outside): one range, three days.
    slots_are($s, 'Monday to Wednesday', 'salon-lumiere', {service => $svc{Coupe}, from => $day[0], to => $day[2]},
        @monday_any, @wednesday);
    slots_are($s, 'Tuesday closed', 'salon-lumiere', {service => $svc{Coupe}, from => $day[1]});

    # Thursday: Alice away all day; Bruno away 15:00-16:00 leaves [14:00, 15:00) (too short) and [16:00, 18:00).
    slots_are($s, 'Thursday absences', 'salon-lumiere', {service => $svc{Coupe}, from => $day[3]},
        expect($day[3], $off, 60, [$B], '16:00', '16:30'));

    # Friday, Massage needs a room: the only active one is taken 15:00-16:00 by Alice (Cabine 2 is inactive, the
    # chair is another kind, Bruno's 17:00 booking in it was cancelled). Bruno is free 14:00-18:00.
    slots_are($s, 'Friday, the room', 'salon-lumiere', {service => $svc{Massage}, from => $day[4], staff => $B},
        expect($day[4], $off, 60, [$B], '14:00', '16:00', '16:30', '17:00'));
    # A service needing a kind of resource the partner has none of: nothing.
    slots_are($s, 'no hammam', 'salon-lumiere', {service => $svc{Hammam}, from => $day[0]});

    # Saturday, Soin (30 min, 15 before) in Alice's 09:00-12:00: starts 09:30 .. 11:30; her booking busy
    # [10:00, 10:45) rules out 10:00 ([09:45, 10:30)) and 10:30 ([10:15, 11:00)); 09:30 and 11:00 touch it.
    slots_are($s, 'Saturday, buffer before', 'salon-lumiere', {service => $svc{Soin}, from => $day[5]},
        expect($day[5], $off, 30, [$A], '09:30', '11:00', '11:30'));

    # Spring forward: 09:00 is 09:00 on each day, +01:00 on Saturday, +02:00 from Sunday.
    my @sat_sun = ('09:00', '09:30', '10:00', '10:30');
    my @monday_alice = ('09:00', '13:00', '13:30', '14:00', '14:30', '15:00', '15:30', '16:00', '16:30');
    slots_are($s, 'spring weekend', 'salon-lumiere',
        {service => $svc{Coupe}, staff => $A, from => add_days($spring, -1), to => add_days($spring, 1)},
        expect(add_days($spring, -1), '+01:00', 60, [$A], @sat_sun), expect($spring, '+02:00', 60, [$A], @sat_sun),
        expect(add_days($spring, 1), '+02:00', 60, [$A], @monday_alice));
    slots_are($s, 'autumn weekend', 'salon-lumiere',
        {service => $svc{Coupe}, staff => $A, from => add_days($autumn, -1), to => add_days($autumn, 1)},
        expect(add_days($autumn, -1), '+02:00', 60, [$A], @sat_sun), expect($autumn, '+01:00', 60, [$A], @sat_sun),
        expect(add_days($autumn, 1), '+01:00', 60, [$A], @monday_alice));

    # The nights of the changes, 00:00-06:00 (the partner has no zone: BookingTimeZone, Europe/Paris): 02:00 does
    # not exist in spring (5 hours, 5 slots) and happens twice in autumn (7 hours, 7 slots).
    my $N = $staff{Nina};
    $data = slots_are($s, 'the short night', 'nuit-spa', {service => $svc{Nuit}, from => $spring},
        "${spring}T00:00:00+01:00 ${spring}T01:00:00+01:00 $N", "${spring}T01:00:00+01:00 ${spring}T03:00:00+02:00 $N",
        "${spring}T03:00:00+02:00 ${spring}T04:00:00+02:00 $N", "${spring}T04:00:00+02:00 ${spring}T05:00:00+02:00 $N",
        "${spring}T05:00:00+02:00 ${spring}T06:00:00+02:00 $N");
    is($data->{time_zone}, 'Europe/Paris', "$s: a partner without a zone gets BookingTimeZone");
    slots_are($s, 'the long night', 'nuit-spa', {service => $svc{Nuit}, from => $autumn},
        "${autumn}T00:00:00+02:00 ${autumn}T01:00:00+02:00 $N", "${autumn}T01:00:00+02:00 ${autumn}T02:00:00+02:00 $N",
        "${autumn}T02:00:00+02:00 ${autumn}T02:00:00+01:00 $N", "${autumn}T02:00:00+01:00 ${autumn}T03:00:00+01:00 $N",
        "${autumn}T03:00:00+01:00 ${autumn}T04:00:00+01:00 $N", "${autumn}T04:00:00+01:00 ${autumn}T05:00:00+01:00 $N",
        "${autumn}T05:00:00+01:00 ${autumn}T06:00:00+01:00 $N");

    # Minimum notice (3 h) and horizon (2 days), open around the clock, hourly: the first start is the first whole
    # hour at least 3 h from now, the last the last whole hour before now + 48 h, every hour in between.
    my ($first, $last, $ok);
    for (1 .. 3) {
        my $before = time;
        my ($status, $d) = avail($s, 'express-24', service => $svc{Express}, from => $today, to => add_days($today, 3));
        my $after = time;
        my $want_first = 3600 * int(($before + 3 * 3600 + 3599) / 3600);
        my $want_last = 3600 * int(($before + 48 * 3600 - 1) / 3600);
        # a whole hour passed during the request: ask again
        next if $want_first != 3600 * int(($after + 3 * 3600 + 3599) / 3600)
            || $want_last != 3600 * int(($after + 48 * 3600 - 1) / 3600);
        my @starts = map { epoch_of_stamp($_->{start}) } @{$d->{slots} // []};
        is($status, 200, "$s: notice and horizon: 200");
        is($starts[0], $want_first, "$s: the first slot is the first whole hour 3 h from now ($d->{slots}[0]{start})");
        is($starts[-1], $want_last, "$s: the last slot is within 48 h ($d->{slots}[-1]{start})");
        is(scalar @starts, ($want_last - $want_first) / 3600 + 1, "$s: every hour in between");
        $ok = 1;
        last;
    }
    ok($ok, "$s: notice and horizon checked");

    # Refusals.
    my %bad = (
        'no service' => [{from => $day[0]}, 400, 'service'],
        'a service that is not a number' => [{service => 'coupe', from => $day[0]}, 400, 'service'],
        "another partner's service" => [{service => $svc{Nuit}, from => $day[0]}, 400, 'service'],
        'an inactive service' => [{service => $svc{Ancien}, from => $day[0]}, 400, 'service'],
        'an unknown service' => [{service => 999999, from => $day[0]}, 400, 'service'],
        'a staff member not doing the service' => [{service => $svc{Coupe}, from => $day[0], staff => $staff{Chloe}},
            400, 'staff'],
        'an inactive staff member' => [{service => $svc{Coupe}, from => $day[0], staff => $staff{Dora}}, 400, 'staff'],
        "another partner's staff member" => [{service => $svc{Coupe}, from => $day[0], staff => $staff{Nina}}, 400,
            'staff'],
        'no from' => [{service => $svc{Coupe}}, 400, 'from'],
        'an impossible date' => [{service => $svc{Coupe}, from => '2027-02-29'}, 400, 'from'],
        'to before from' => [{service => $svc{Coupe}, from => $day[1], to => $day[0]}, 400, 'to'],
        'a range of 32 days' => [{service => $svc{Coupe}, from => $day[0], to => add_days($day[0], 31)}, 400, 'to'],
        'a malformed to' => [{service => $svc{Coupe}, from => $day[0], to => 'tomorrow'}, 400, 'to'],
    );
    for my $case (sort keys %bad) {
        my ($q, $want_status, $field) = @{$bad{$case}};
        my ($status, $d) = avail($s, 'salon-lumiere', %$q);
        is($status, $want_status, "$s: $case: $want_status");
        is($d->{field}, $field, "$s: $case: names $field") or diag(explain($d));
    }
    my ($status, $d) = avail($s, 'salon-lumiere', service => $svc{Coupe}, from => $day[0], to => add_days($day[0], 30));
    is($status, 200, "$s: a range of 31 days is fine");
    ok((grep { $_->{start} eq "$day[2]T10:00:00$off" } @{$d->{slots}}), "$s: and holds Wednesday's slots");
    ($status) = avail($s, 'nobody-here', service => $svc{Coupe}, from => $day[0]);
    is($status, 404, "$s: an unknown partner: 404");
    ($status) = avail($s, 'salon-ferme', service => $svc{'Coupe fermée'}, from => $day[0]);
    is($status, 404, "$s: an inactive partner: 404");
    ($status) = avail($s, 'Not_An_Id', service => $svc{Coupe}, from => $day[0]);
    is($status, 404, "$s: a malformed partner id: 404");
}

# White label: a host fixed to salon-lumiere sees only it.
$t->start_servers(booking_conf(partner => 'salon-lumiere'));
for my $s (qw(apache nginx)) {
    slots_are($s, 'white label, its partner', 'salon-lumiere', {service => $svc{Coupe}, from => $day[0]}, @monday_any);
    my ($status, $d) = avail($s, 'nuit-spa', service => $svc{Nuit}, from => $spring);
    is($status, 404, "$s: white label, another partner: 404");
}

# PostgreSQL down: 503 with Retry-After.
$t->pg_stop;
for my $s (qw(apache nginx)) {
    my ($status, $d, $r) = avail($s, 'salon-lumiere', service => $svc{Coupe}, from => $day[0]);
    is($status, 503, "$s: PostgreSQL down: 503");
    like($r->{headers}{'retry-after'} // '', qr/^\d+\z/, "$s: with Retry-After");
}

done_testing();
