#!/usr/bin/perl
# BookingCacheTTL on both servers: an availability answer is reused by the process for the TTL (a booking written
# behind the module's back shows only once it has expired), a booking made through the API empties the process's
# cache at once (the visitor never sees the slot they just took), and without the directive every answer is fresh.
# The harness runs one Apache child and one nginx worker at this load, so "the process" is the same one each time.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Time::HiRes qw(sleep time);
use ModTest;
use BookingConf qw(booking_conf api sql_value ensure_schema);

my $t = ModTest->new(postgres => 1);
plan skip_all => 'mod_booking is not built for both servers' unless $t->has_module('booking');
BookingConf::setup_files($t);
$t->start_servers(booking_conf(server => ['BookingCacheTTL 2']), php => 0);
ensure_schema($t);

# One salon in UTC, one staff member working 09:00-12:00 every day, a 60-minute service on the hour: three slots a day.
$t->psql(<<'SQL');
INSERT INTO booking.partners (id, name, city, time_zone, min_notice_minutes, slot_step_minutes, horizon_days)
    VALUES ('cache-salon', 'Cache Salon', 'Lyon', 'UTC', 0, 60, 30);
INSERT INTO booking.opening_hours (partner_id, weekday, opens, closes)
    SELECT 'cache-salon', d, '09:00', '12:00' FROM generate_series(1, 7) d;
INSERT INTO booking.staff (partner_id, name) VALUES ('cache-salon', 'Cleo');
INSERT INTO booking.staff_hours (staff_id, weekday, starts, ends)
    SELECT id, d, '09:00', '12:00' FROM booking.staff, generate_series(1, 7) d;
INSERT INTO booking.services (partner_id, name, duration_minutes, price_cents) VALUES ('cache-salon', 'Cut', 60, 3000);
INSERT INTO booking.service_staff (service_id, staff_id) SELECT s.id, st.id FROM booking.services s, booking.staff st;
INSERT INTO booking.customers (name, email, phone) VALUES ('Walk In', 'walkin@example.com', '+33600000000');
SQL
my $service = sql_value($t, 'SELECT id FROM booking.services') + 0;
my $staff = sql_value($t, 'SELECT id FROM booking.staff') + 0;

my $n = 0;
for my $s (qw(apache nginx)) {
    my $day = sql_value($t, "SELECT current_date + " . (2 + $n++));
    my $path = "/partners/cache-salon/availability?service=$service&from=$day&to=$day";
    my $starts = sub {
        my ($status, $data) = api($t, $s, 'GET', $path);
        is($status, 200, "$s: availability answered") or return [];
        return [map { substr $_->{start}, 11, 5 } @{$data->{slots}}];
    };

    is_deeply($starts->(), ['09:00', '10:00', '11:00'], "$s: three free slots");
    # A booking written straight into the database, as another node's would be: this process does not know.
    $t->psql("INSERT INTO booking.bookings (partner_id, service_id, staff_id, customer_id, starts_at, ends_at, busy,"
        . " price_cents, currency, manage_token_hash) SELECT 'cache-salon', $service, $staff, c.id,"
        . " '$day 09:00Z', '$day 10:00Z', tstzrange('$day 09:00Z', '$day 10:00Z'), 3000, 'EUR',"
        . " sha256(convert_to('cache-$s', 'UTF8')) FROM booking.customers c WHERE c.email = 'walkin\@example.com'");
    my $t0 = time;
    is_deeply($starts->(), ['09:00', '10:00', '11:00'], "$s: within BookingCacheTTL the answer is the cached one");
    sleep 2.2 - (time - $t0) if time - $t0 < 2.2;
    is_deeply($starts->(), ['10:00', '11:00'], "$s: once it expired, the slot taken elsewhere is gone");

    # A booking through this server: its process forgets every cached answer at once.
    my ($status) = api($t, $s, 'POST', '/bookings', {partner => 'cache-salon', service => $service,
        start => "${day}T10:00:00Z", customer => {name => 'Cache Test', email => "cache-$s\@example.com",
        phone => '+33611111111'}});
    is($status, 201, "$s: 10:00 booked through the API");
    is_deeply($starts->(), ['11:00'], "$s: the slot just booked is gone at once, TTL or not");
}

# Without BookingCacheTTL, every answer is read afresh.
$t->start_servers(booking_conf(), php => 0);
for my $s (qw(apache nginx)) {
    my $day = sql_value($t, "SELECT current_date + 10");
    my $path = "/partners/cache-salon/availability?service=$service&from=$day&to=$day";
    my ($status, $data) = api($t, $s, 'GET', $path);
    is(scalar @{$data->{slots} // []}, 3 - ($s eq 'nginx' ? 1 : 0), "$s: without a TTL the answer is fresh");
    $t->psql("INSERT INTO booking.bookings (partner_id, service_id, staff_id, customer_id, starts_at, ends_at, busy,"
        . " price_cents, currency, manage_token_hash) SELECT 'cache-salon', $service, $staff, c.id,"
        . " '$day " . ($s eq 'apache' ? '09' : '10') . ":00Z', '$day " . ($s eq 'apache' ? '10' : '11') . ":00Z',"
        . " tstzrange('$day " . ($s eq 'apache' ? '09' : '10') . ":00Z', '$day " . ($s eq 'apache' ? '10' : '11')
        . ":00Z'), 3000, 'EUR', sha256(convert_to('fresh-$s', 'UTF8')) FROM booking.customers c WHERE c.email = 'walkin\@example.com'");
    ($status, $data) = api($t, $s, 'GET', $path);
    is(scalar @{$data->{slots} // []}, 2 - ($s eq 'nginx' ? 1 : 0), "$s: and shows a booking made elsewhere at once");
}

done_testing;
