#!/usr/bin/perl
# mod_booking's partner reports and iCalendar feeds on both servers: a month of a Paris salon seeded by SQL, its
# report as JSON and CSV against figures computed by hand (month bounds in the partner's zone, another partner's
# bookings and the previous month's left out, cancelled and no-show bookings bringing nothing, availability from the
# working plans), a formula-looking service name neutralised in the CSV; a staff member's secret feed URL, the feed
# parsed by ical.js (npm) and compared with the bookings, folded lines that keep UTF-8 whole, an unknown token 404.

use strict;
use utf8;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Encode qw(encode decode FB_CROAK);
use JSON::PP;
use POSIX qw(strftime);
use Text::CSV;
use ModTest;
use BookingConf qw(booking_conf api account_api sql_value ensure_schema);

my $NODE_DIR = "$FindBin::Bin/../node";

my $t = ModTest->new(postgres => 1);
BookingConf::setup_files($t);
$t->start_servers(booking_conf());
ensure_schema($t);

sub sql { return $t->psql(encode('UTF-8', $_[0])) }
sub q1 { return decode('UTF-8', sql_value($t, encode('UTF-8', $_[0]))) }

# One booking. $start is an SQL timestamptz expression; the end and the busy range follow from the service.
sub booking_sql {
    my (%b) = @_;
    my $cancelled = $b{status} eq 'cancelled' ? 'now()' : 'NULL';
    return <<"SQL";
INSERT INTO booking.bookings (partner_id, service_id, staff_id, customer_id, starts_at, ends_at, busy, status,
    price_cents, currency, manage_token_hash, cancelled_at)
SELECT sv.partner_id, sv.id, st.id, c.id, s.t, s.t + make_interval(mins => sv.duration_minutes),
    tstzrange(s.t - make_interval(mins => sv.buffer_before_minutes),
              s.t + make_interval(mins => sv.duration_minutes + sv.buffer_after_minutes)),
    '$b{status}', $b{price}, 'EUR', sha256(convert_to('$b{token}', 'UTF8')), $cancelled
FROM (SELECT $b{start}) s(t), booking.services sv, booking.staff st, booking.customers c
WHERE sv.name = '$b{service}' AND st.name = '$b{staff}' AND c.email = '$b{email}';
SQL
}

############################################################################## the salon's June 2026

# Salon Lumière, Europe/Paris (CEST, UTC+2 all June: no DST change inside the month).
# Opening hours Mon-Fri 09:00-19:00, Sat 09:00-17:00; closed Tuesday 2026-06-16.
# Camille works Mon-Fri 09:00-17:00 with a 12:00-13:00 break; Inès Tue-Sat 10:00-18:00, off Saturday 2026-06-20 and
# away 14:00-15:30 on Wednesday 2026-06-24. "Former" left (inactive); "Ancien soin" is no longer offered.
sql(<<'SQL');
INSERT INTO booking.partners (id, name, city, time_zone, currency) VALUES
    ('salon-lumiere', 'Salon Lumière', 'Paris', 'Europe/Paris', 'EUR'),
    ('salon-rival', 'Salon Rival', 'Paris', 'Europe/Paris', 'EUR');
INSERT INTO booking.partner_users (login, partner_id) VALUES ('lumiere', 'salon-lumiere'), ('rival', 'salon-rival');
INSERT INTO booking.opening_hours (partner_id, weekday, opens, closes)
    SELECT 'salon-lumiere', d, '09:00'::time, '19:00'::time FROM generate_series(1, 5) d
    UNION ALL SELECT 'salon-lumiere', 6, '09:00', '17:00';
INSERT INTO booking.partner_exceptions (partner_id, day, note) VALUES ('salon-lumiere', '2026-06-16', 'Works');
INSERT INTO booking.staff (partner_id, name) VALUES
    ('salon-lumiere', 'Camille'), ('salon-lumiere', 'Inès'), ('salon-rival', 'Rival staff');
INSERT INTO booking.staff (partner_id, name, active) VALUES ('salon-lumiere', 'Former', false);
INSERT INTO booking.staff_hours (staff_id, weekday, starts, ends)
    SELECT id, d, '09:00'::time, '17:00'::time FROM booking.staff, generate_series(1, 5) d WHERE name IN ('Camille', 'Former')
    UNION ALL SELECT id, d, '10:00', '18:00' FROM booking.staff, generate_series(2, 6) d WHERE name = 'Inès';
INSERT INTO booking.staff_breaks (staff_id, weekday, starts, ends)
    SELECT id, d, '12:00', '13:00' FROM booking.staff, generate_series(1, 5) d WHERE name = 'Camille';
INSERT INTO booking.staff_exceptions (staff_id, day, starts, ends, note)
    SELECT id, '2026-06-20'::date, NULL::time, NULL::time, 'Day off' FROM booking.staff WHERE name = 'Inès'
    UNION ALL SELECT id, '2026-06-24', '14:00', '15:30', 'Training' FROM booking.staff WHERE name = 'Inès';
INSERT INTO booking.services (partner_id, name, duration_minutes, price_cents, buffer_after_minutes) VALUES
    ('salon-lumiere', 'Coupe femme', 60, 4500, 15),
    ('salon-lumiere', '=1+1 Soin éclat', 90, 8000, 0),
    ('salon-rival', 'Coupe rivale', 60, 9900, 0);
INSERT INTO booking.services (partner_id, name, duration_minutes, price_cents, active) VALUES
    ('salon-lumiere', 'Ancien soin', 30, 2000, false);
INSERT INTO booking.service_staff (service_id, staff_id)
    SELECT sv.id, st.id FROM booking.services sv JOIN booking.staff st ON st.partner_id = sv.partner_id
    WHERE sv.active AND st.active;
INSERT INTO booking.customers (name, email, phone) VALUES
    ('Alice Martin', 'alice@example.com', '+33612345678'),
    ('Bruno Petit', 'bruno@example.com', '+33698765432'),
    ('Zoé Durand, VIP; "Gold" \ backslash', 'zoe@example.com', '+33611223344'),
    ('Hélène-Bérénice de La Châtaigneraie-Saint-Évremond née Hôtel-Dieu', 'helene@example.com', '+33655667788');
SQL

my @june = (
    # B1..B7 count in June (Paris); B8 starts on 1 July in Paris (30 June in UTC), B9 in May, B10 is the rival's.
    {token => 'B1', service => 'Coupe femme', staff => 'Camille', status => 'confirmed', price => 4500,
     start => "timestamptz '2026-06-02 10:00 Europe/Paris'", email => 'alice@example.com'},
    {token => 'B2', service => 'Coupe femme', staff => 'Camille', status => 'completed', price => 4000,
     start => "timestamptz '2026-06-03 10:00 Europe/Paris'", email => 'bruno@example.com'},
    {token => 'B3', service => '=1+1 Soin éclat', staff => 'Inès', status => 'no_show', price => 8000,
     start => "timestamptz '2026-06-04 14:00 Europe/Paris'", email => 'alice@example.com'},
    {token => 'B4', service => '=1+1 Soin éclat', staff => 'Inès', status => 'cancelled', price => 8000,
     start => "timestamptz '2026-06-05 10:00 Europe/Paris'", email => 'bruno@example.com'},
    {token => 'B5', service => 'Coupe femme', staff => 'Inès', status => 'cancelled', price => 4500,
     start => "timestamptz '2026-06-09 11:00 Europe/Paris'", email => 'alice@example.com'},
    {token => 'B6', service => '=1+1 Soin éclat', staff => 'Camille', status => 'completed', price => 7500,
     start => "timestamptz '2026-06-10 09:00 Europe/Paris'", email => 'bruno@example.com'},
    # 00:30 in Paris on 1 June is still 31 May in UTC: June's because the month is the partner's.
    {token => 'B7', service => 'Coupe femme', staff => 'Camille', status => 'confirmed', price => 4500,
     start => "timestamptz '2026-06-01 00:30 Europe/Paris'", email => 'alice@example.com'},
    {token => 'B8', service => 'Coupe femme', staff => 'Inès', status => 'confirmed', price => 4500,
     start => "timestamptz '2026-07-01 00:30 Europe/Paris'", email => 'bruno@example.com'},
    {token => 'B9', service => 'Coupe femme', staff => 'Camille', status => 'completed', price => 4500,
     start => "timestamptz '2026-05-29 10:00 Europe/Paris'", email => 'bruno@example.com'},
    {token => 'B10', service => 'Coupe rivale', staff => 'Rival staff', status => 'confirmed', price => 9900,
     start => "timestamptz '2026-06-02 10:00 Europe/Paris'", email => 'alice@example.com'},
);
sql(join '', map { booking_sql(%$_) } @june);
is(q1('SELECT count(*) FROM booking.bookings'), 10, 'ten bookings seeded');

my %id = map { $_ => q1("SELECT id FROM booking.staff WHERE name = '$_'") } ('Camille', 'Inès', 'Rival staff');
my %sid = map { $_ => q1("SELECT id FROM booking.services WHERE name = '$_'") } ('Coupe femme', '=1+1 Soin éclat');

# The figures, by hand.
# Coupe femme: B1 confirmed 4500 + B2 completed 4000 + B7 confirmed 4500 = 3 bookings, 13000 cents, 3 x 60 = 180 min;
#   B5 cancelled; B8 (July in Paris), B9 (May) and B10 (rival) do not count; buffers are not service time.
# =1+1 Soin éclat: B3 no_show (no revenue) + B6 completed 7500 = 2 bookings, 7500 cents, 2 x 90 = 180 min; B4
#   cancelled.
my %by_service = (
    $sid{'Coupe femme'} => {name => 'Coupe femme', bookings => 3, revenue_cents => 13000, cancellations => 1,
        no_shows => 0, completed => 1, booked_minutes => 180},
    $sid{'=1+1 Soin éclat'} => {name => '=1+1 Soin éclat', bookings => 2, revenue_cents => 7500,
        cancellations => 1, no_shows => 1, completed => 1, booked_minutes => 180},
);
# June 2026: Mondays 1 8 15 22 29, Tuesdays 2 9 16 23 30, four each of Wednesday to Saturday (Sat 6 13 20 27).
# Camille: Mon-Fri = 5 + 5 + 4 + 4 + 4 = 22 days, minus the closure on Tue 16 = 21 days x (8 h - 1 h break = 420 min)
#   = 8820 min. Booked B1 60 + B2 60 + B6 90 + B7 60 = 270 min -> 270 / 8820 = 0.03061 -> 0.0306.
# Inès: Tue 4 (without the 16th) + Wed 4 + Thu 4 + Fri 4 = 16 days x 480 min (10:00-18:00) = 7680 min; Saturdays
#   6 13 27 (off on the 20th) = 3 x 420 min (10:00 to the 17:00 closing) = 1260 min; minus 90 min away on the 24th
#   = 7680 + 1260 - 90 = 8850 min. Booked B3 90 min (a no-show took the time) -> 90 / 8850 = 0.01017 -> 0.0102.
my %by_staff = (
    $id{Camille} => {name => 'Camille', bookings => 4, revenue_cents => 4500 + 4000 + 7500 + 4500,
        cancellations => 0, no_shows => 0, completed => 2, booked_minutes => 270, available_minutes => 8820,
        occupancy => 0.0306},
    $id{'Inès'} => {name => 'Inès', bookings => 1, revenue_cents => 0, cancellations => 2, no_shows => 1,
        completed => 0, booked_minutes => 90, available_minutes => 8850, occupancy => 0.0102},
);
# Totals: 3 + 2 = 5 bookings, 13000 + 7500 = 20500 cents, 2 cancellations, 1 no-show, 2 completed, 360 min booked
# of 8820 + 8850 = 17670 available -> 360 / 17670 = 0.02037 -> 0.0204.
my %totals = (bookings => 5, revenue_cents => 20500, cancellations => 2, no_shows => 1, completed => 2,
    booked_minutes => 360, available_minutes => 17670, occupancy => 0.0204);

my @COUNTS = qw(bookings revenue_cents cancellations no_shows completed booked_minutes);

sub check_rows {
    my ($s, $what, $got, $want, @extra) = @_;
    is(scalar @{$got // []}, scalar keys %$want, "$s: $what: one entry each") or diag(explain($got));
    for my $row (@{$got // []}) {
        my $w = $want->{$row->{id}};
        ok($w, "$s: $what: $row->{id} is expected") or next;
        is($row->{name}, $w->{name}, "$s: $what $row->{id}: name");
        is($row->{$_}, $w->{$_}, "$s: $what $w->{name}: $_") for @COUNTS, @extra;
    }
}

for my $s (qw(apache nginx)) {
    # JSON
    my ($status, $data, $r) = account_api($t, $s, 'lumiere', 'GET', '/account/reports?month=2026-06');
    is($status, 200, "$s: June's report") or diag($r->{content});
    like($r->{headers}{'content-type'} // '', qr{^application/json}, "$s: as JSON");
    is($data->{month}, '2026-06', "$s: month");
    is($data->{time_zone}, 'Europe/Paris', "$s: in the partner's zone");
    is($data->{currency}, 'EUR', "$s: currency");
    is($data->{from}, '2026-06-01T00:00:00+02:00', "$s: from local midnight on the 1st");
    is($data->{to}, '2026-07-01T00:00:00+02:00', "$s: to local midnight on 1 July");
    ok(length($data->{definitions}{$_} // ''), "$s: definition of $_")
        for @COUNTS, qw(available_minutes occupancy);
    is($data->{totals}{$_}, $totals{$_}, "$s: total $_") for @COUNTS, qw(available_minutes occupancy);
    check_rows($s, 'by_service', $data->{by_service}, \%by_service);
    check_rows($s, 'by_staff', $data->{by_staff}, \%by_staff, qw(available_minutes occupancy));
    like($r->{content}, qr/"occupancy":0\.0306[,}]/, "$s: occupancy printed with 4 decimals");

    # CSV: the same figures, revenue in euros, the formula-looking name neutralised.
    ($status, undef, $r) = account_api($t, $s, 'lumiere', 'GET', '/account/reports?month=2026-06&format=csv');
    is($status, 200, "$s: CSV report");
    is($r->{headers}{'content-type'}, 'text/csv; charset=utf-8', "$s: text/csv");
    is($r->{headers}{'content-disposition'}, 'attachment; filename="report-salon-lumiere-2026-06.csv"',
        "$s: downloaded as report-salon-lumiere-2026-06.csv");
    like($r->{content}, qr/\r\n\z/, "$s: CRLF row ends");
    my $csv = Text::CSV->new({binary => 1, decode_utf8 => 1});
    open my $fh, '<', \$r->{content} or die;
    my @rows;
    while (my $row = $csv->getline($fh)) { push @rows, $row }
    ok($csv->eof, "$s: the CSV parses") or diag($csv->error_diag);
    is_deeply($rows[0], [qw(scope id name bookings revenue cancellations no_shows completed booked_minutes
        available_minutes occupancy)], "$s: CSV header");
    my %csv_rows = map { ("$_->[0]:$_->[1]" => $_) } @rows[1 .. $#rows];
    is(scalar @rows, 1 + 2 + 2 + 1, "$s: 2 services, 2 staff and a total");
    is_deeply($csv_rows{"service:$sid{'Coupe femme'}"},
        ['service', $sid{'Coupe femme'}, 'Coupe femme', 3, '130.00', 1, 0, 1, 180, '', ''], "$s: CSV Coupe femme");
    is_deeply($csv_rows{"service:$sid{'=1+1 Soin éclat'}"},
        ['service', $sid{'=1+1 Soin éclat'}, "'=1+1 Soin éclat", 2, '75.00', 1, 1, 1, 180, '', ''],
        "$s: CSV '=1+1 Soin éclat', neutralised with a leading quote");
    like($r->{content}, qr/"'=1\+1 Soin/, "$s: the neutralised cell is quoted");
    is_deeply($csv_rows{"staff:$id{Camille}"},
        ['staff', $id{Camille}, 'Camille', 4, '205.00', 0, 0, 2, 270, 8820, '0.0306'], "$s: CSV Camille");
    is_deeply($csv_rows{"staff:$id{'Inès'}"},
        ['staff', $id{'Inès'}, 'Inès', 1, '0.00', 2, 1, 0, 90, 8850, '0.0102'], "$s: CSV Inès");
    is_deeply($csv_rows{'total:'}, ['total', '', '', 5, '205.00', 2, 1, 2, 360, 17670, '0.0204'], "$s: CSV total");

    # The rival sees only its own booking (B10), and with no working plan, occupancy 0.
    ($status, $data) = account_api($t, $s, 'rival', 'GET', '/account/reports?month=2026-06');
    is($status, 200, "$s: the rival's report");
    is_deeply([map { $_->{name} } @{$data->{by_service} // []}], ['Coupe rivale'], "$s: rival: its service only");
    is($data->{totals}{bookings}, 1, "$s: rival: 1 booking");
    is($data->{totals}{revenue_cents}, 9900, "$s: rival: 9900 cents");
    is($data->{totals}{available_minutes}, 0, "$s: rival: nothing available");
    is($data->{totals}{occupancy}, 0, "$s: rival: occupancy 0 without availability");

    # May holds B9 only: completed, 4500 cents.
    ($status, $data) = account_api($t, $s, 'lumiere', 'GET', '/account/reports?month=2026-05');
    is($data->{totals}{bookings}, 1, "$s: May: B9 only");
    is($data->{totals}{revenue_cents}, 4500, "$s: May: 4500 cents");

    # Refusals.
    for my $bad ('', 'month=2026-13', 'month=2026-6', 'month=26-06', 'month=2026-06-01', 'month=abcd-ef') {
        ($status, $data) = account_api($t, $s, 'lumiere', 'GET', "/account/reports?$bad");
        is($status, 400, "$s: '$bad': 400");
        is($data->{field}, 'month', "$s: '$bad': the error names month");
    }
    ($status, $data) = account_api($t, $s, 'lumiere', 'GET', '/account/reports?month=2026-06&format=xml');
    is($status, 400, "$s: format=xml: 400");
    is($data->{field}, 'format', "$s: the error names format");
    ($status) = api($t, $s, 'GET', '/account/reports?month=2026-06');
    is($status, 401, "$s: reports need a login");
}

############################################################################## iCalendar feeds

# Camille's feed: from 30 days ago to 365 days ahead. Starts on whole hours so that they are easy to read.
my $now = time;
my $hour = $now - $now % 3600;
my %feed = (
    F1 => {start => $hour + 2 * 86400, minutes => 60, status => 'confirmed', service => 'Coupe femme',
           customer => 'Alice Martin', phone => '+33612345678', email => 'alice@example.com'},
    F2 => {start => $hour + 10 * 86400, minutes => 60, status => 'cancelled', service => 'Coupe femme',
           customer => 'Zoé Durand, VIP; "Gold" \ backslash', phone => '+33611223344', email => 'zoe@example.com'},
    # Its SUMMARY line is 100 octets, and a cut at exactly 75 would fall inside the two octets of "É" (74 and 75).
    F3 => {start => $hour - 5 * 86400, minutes => 90, status => 'completed', service => '=1+1 Soin éclat',
           customer => 'Hélène-Bérénice de La Châtaigneraie-Saint-Évremond née Hôtel-Dieu',
           phone => '+33655667788', email => 'helene@example.com'},
    F4 => {start => $hour + 20 * 86400, minutes => 90, status => 'no_show', service => '=1+1 Soin éclat',
           customer => 'Bruno Petit', phone => '+33698765432', email => 'bruno@example.com'},
);
my %outside = (    # too old, too far ahead
    F5 => {start => $hour - 40 * 86400, service => 'Coupe femme', email => 'alice@example.com'},
    F6 => {start => $hour + 400 * 86400, service => 'Coupe femme', email => 'alice@example.com'},
);
for my $k (sort keys %feed, sort keys %outside) {
    my $b = $feed{$k} // $outside{$k};
    sql(booking_sql(token => $k, service => $b->{service}, staff => 'Camille', status => $b->{status} // 'confirmed',
        price => 4500, start => "to_timestamp($b->{start})", email => $b->{email}));
}
# Inès has a booking in the window too: not in Camille's feed.
sql(booking_sql(token => 'F7', service => 'Coupe femme', staff => 'Inès', status => 'confirmed', price => 4500,
    start => "to_timestamp(" . ($hour + 3 * 86400) . ")", email => 'alice@example.com'));
my %uid = map { ('booking-' . q1("SELECT id FROM booking.bookings WHERE manage_token_hash = sha256('$_')")
    . '@salon-lumiere' => $_) } keys %feed;

sub utc { return strftime('%Y-%m-%dT%H:%M:%SZ', gmtime $_[0]) }

sub ical_parse {
    my ($text) = @_;
    my $file = $t->write_file('feed.ics', $text);
    my $out = `node "$NODE_DIR/ical.js" < "$file"`;
    return $? == 0 ? JSON::PP->new->utf8->decode($out) : undef;
}

my $have_ical = -f "$NODE_DIR/node_modules/ical.js/package.json";
my %seen_url;
for my $s (qw(apache nginx)) {
    my ($status, $data) = account_api($t, $s, 'lumiere', 'GET', "/account/staff/$id{Camille}/ical");
    is($status, 200, "$s: Camille's feed URL");
    my $token = q1("SELECT ical_token FROM booking.staff WHERE name = 'Camille'");
    is($data->{url}, "/booking/api/ical/$token.ics", "$s: the URL holds the staff member's secret token");
    $seen_url{$data->{url} // ''}++;
    ($status) = account_api($t, $s, 'rival', 'GET', "/account/staff/$id{Camille}/ical");
    is($status, 404, "$s: another partner's staff member: 404");
    ($status) = account_api($t, $s, 'lumiere', 'GET', "/account/staff/$id{'Rival staff'}/ical");
    is($status, 404, "$s: the rival's staff member: 404");
    ($status) = account_api($t, $s, 'lumiere', 'GET', '/account/staff/abc/ical');
    is($status, 404, "$s: not an id: 404");
    ($status) = api($t, $s, 'GET', "/account/staff/$id{Camille}/ical");
    is($status, 401, "$s: the URL is only given to a login");

    # The feed itself needs no login.
    my $r = $t->get($s, $data->{url} // '/booking/api/ical/none.ics');
    is($r->{status}, 200, "$s: the feed without a login");
    is($r->{headers}{'content-type'}, 'text/calendar; charset=utf-8', "$s: text/calendar");
    my $raw = $r->{content};
    like($raw, qr/\ABEGIN:VCALENDAR\r\n/, "$s: a VCALENDAR");
    like($raw, qr/\r\nEND:VCALENDAR\r\n\z/, "$s: ended, with CRLF");
    unlike($raw, qr/(?<!\r)\n/, "$s: every line ends with CRLF");
    my @lines = split /\r\n/, $raw;
    is((grep { length($_) > 75 } @lines), 0, "$s: no line over 75 octets");
    ok((grep { /^ / } @lines) >= 1, "$s: long lines were folded");
    is((grep { !eval { decode('UTF-8', $_, FB_CROAK); 1 } } @lines), 0,
        "$s: folding never splits a UTF-8 sequence (each physical line is valid UTF-8)");
    like(decode('UTF-8', $raw), qr/\r\nSUMMARY:Coupe femme - Zoé Durand\\, VIP\\; "Gold" \\\\ backslash\r\n/,
        "$s: TEXT escaping of , ; and \\");

    my $unknown = $t->get($s, '/booking/api/ical/' . ('0' x 64) . '.ics');
    is($unknown->{status}, 404, "$s: an unknown token: 404");
    unlike($unknown->{content}, qr/token|staff/i, "$s: with no detail");
    is($t->get($s, "/booking/api/ical/$token")->{status}, 404, "$s: without .ics: 404");

    SKIP: {
        skip 'no ical.js in tests/node/node_modules (run npm ci in tests/node)', 1 unless $have_ical;
        my $cal = ical_parse($raw);
        ok($cal, "$s: ical.js parses the feed") or next;
        is($cal->{calendar}{version}, '2.0', "$s: VERSION 2.0");
        is($cal->{calendar}{calscale}, 'GREGORIAN', "$s: CALSCALE");
        like($cal->{calendar}{prodid} // '', qr/mod_booking/, "$s: PRODID");
        is($cal->{calendar}{name}, 'Camille - Salon Lumière', "$s: X-WR-CALNAME: staff and partner");
        my %events = map { ($_->{uid} => $_) } @{$cal->{events}};
        is_deeply([sort map { $uid{$_} // $_ } keys %events], [sort keys %feed],
            "$s: F1-F4 only (not 40 days old, not 400 days ahead, not Inès's)");
        for my $u (sort keys %uid) {
            my ($e, $b) = ($events{$u}, $feed{$uid{$u}});
            next unless $e;
            is($e->{start}, utc($b->{start}), "$s: $uid{$u}: DTSTART in UTC");
            is($e->{end}, utc($b->{start} + 60 * $b->{minutes}), "$s: $uid{$u}: DTEND in UTC");
            is($e->{summary}, "$b->{service} - $b->{customer}", "$s: $uid{$u}: summary");
            is($e->{description}, $b->{phone}, "$s: $uid{$u}: the phone in the description");
            is($e->{status}, $b->{status} eq 'cancelled' ? 'CANCELLED' : 'CONFIRMED', "$s: $uid{$u}: status");
            like($e->{dtstamp} // '', qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\z/, "$s: $uid{$u}: DTSTAMP");
        }
    }
}
is(scalar keys %seen_url, 1, 'both servers give the same URL');

done_testing();
