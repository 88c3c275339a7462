#!/usr/bin/perl
# mod_booking's notifications on both servers: bookings made through the public API are posted to a fake gateway
# that checks the HMAC-SHA256 signature; each message once, with the booking's details in the partner's local time;
# 200 bookings (half through each server, both dispatching) delivered within 2 s at p99 from the outbox row's
# creation; a gateway refusing connections, then failing with 503, then slow: every message still delivered exactly
# once; reminders scheduled BookingReminder hours before the start (none when that is past), moved by a reschedule
# and cancelled with the booking; each server's dispatcher delivering alone; old finished rows purged; a message
# parked as dead after BookingNotifyAttempts tries; /booking/api/status shows depth and lag behind a login.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use JSON::PP;
use POSIX qw(_exit ceil);
use Time::HiRes qw(sleep time);
use Time::Local qw(timegm);
use ModTest;
use FakeGateway;
use BookingConf qw(booking_conf api account_api sql_value ensure_schema tokyo_time);

my $SECRET = 'notify-secret-0123456789abcdef';    # what BookingConf::setup_files writes to notify.secret
my $TOKYO = 9 * 3600;                              # Asia/Tokyo: +09:00 all year, so local times are hand-checkable
my $JSON = JSON::PP->new->utf8->canonical;

my $gw = FakeGateway->start(secret => $SECRET);
my $t = ModTest->new(postgres => 1);
BookingConf::setup_files($t);

sub start_servers {
    my (@server) = @_;
    $t->start_servers(booking_conf(notify_url => $gw->url, server => \@server), php => 0);
}

start_servers('BookingReminder 1');
ensure_schema($t);

# A spa open around the clock (so that every test slot is bookable at any hour the test runs), no minimum notice,
# no cancellation deadline, two therapists and one 30-minute service at 45.00 JPY... in cents, as everywhere.
my ($SERVICE, $staff_ids) = BookingConf::tokyo_spa($t, id => 'kyoto-spa', staff => ['Aiko', 'Haru'], login => 'ops');
my %STAFF = %$staff_ids;

# ------------------------------------------------------------------------------------------------------ helpers


# The first 5-minute slot at or after $epoch that does not run over Tokyo's midnight (each day is its own window).
sub slot_from {
    my ($epoch) = @_;
    my $start = ceil($epoch / 300) * 300;
    my $minute = (($start + $TOKYO) % 86400) / 60;
    $start += (1440 - $minute) * 60 if $minute > 1410;
    return $start;
}

# "2026-11-23T15:53:00.895429Z" -> epoch with fraction
sub utc_epoch {
    my ($text) = @_;
    my ($y, $mo, $d, $h, $mi, $s, $frac) = $text =~ /^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(\.\d+)?Z\z/ or return;
    return timegm($s, $mi, $h, $d, $mo - 1, $y) + ($frac // 0);
}

my $n_customer = 0;

# POST /bookings; (status, data)
sub book {
    my ($s, $start, $staff) = @_;
    $n_customer++;
    return api($t, $s, 'POST', '/bookings', {
        partner => 'kyoto-spa', service => 0 + $SERVICE, staff => 0 + $STAFF{$staff}, start => $start,
        customer => {name => "Customer $$-$n_customer", email => "c$$-$n_customer\@example.com",
            phone => '+81 90-1234-5678'},
    });
}


# The gateway's records for a booking and an event, answered 2xx or all of them.
sub received {
    my ($booking_id, $event, $any) = @_;
    return grep {
        ($any || ($_->{status} >= 200 && $_->{status} < 300)) && ($_->{event} // '') eq $event
            && ref $_->{payload} eq 'HASH' && ($_->{payload}{booking}{id} // 0) == $booking_id
    } $gw->requests;
}

sub outbox_rows {
    my ($booking_id) = @_;
    return map { [split /\|/] } split /\n/, $t->psql("SELECT id, kind, status, attempts FROM booking.outbox "
        . "WHERE booking_id = $booking_id ORDER BY id");
}

sub status_of { my ($s) = @_; my (undef, $data) = account_api($t, $s, 'ops', 'GET', '/status'); return $data->{outbox} }

# ------------------------------------------------------------------------------- one booking per server, in detail

my $now = int time;
my $day2 = $now + 2 * 86400 - (($now + $TOKYO) % 86400);    # Tokyo's midnight two days from now
for my $s (qw(apache nginx)) {
    my $offset = $s eq 'apache' ? 10 * 3600 : 10 * 3600 + 1800;       # 10:00 and 10:30 local
    my $start = tokyo_time($day2 + $offset);
    my ($status, $view) = book($s, $start, 'Aiko');
    is($status, 201, "$s: booked $start") or diag(explain($view));
    my $id = $view->{id};
    ModTest::polled(10, sub { scalar received($id, 'booking.confirmed') });
    my @got = received($id, 'booking.confirmed', 1);
    is(scalar @got, 1, "$s: the confirmation was posted once");
    my $r = $got[0] // {};
    is($r->{sig_ok}, 1, "$s: with a valid X-Booking-Signature");
    ok(abs(($r->{sig_t} // 0) - $r->{time}) < 5, "$s: signed just now");
    is($r->{headers}{'content-type'}, 'application/json', "$s: as JSON");
    my ($row) = grep { $_->[1] eq 'booking.confirmed' } outbox_rows($id);
    is($r->{delivery}, $row->[0], "$s: X-Booking-Delivery is the outbox row's id");
    my $p = $r->{payload} // {};
    is($p->{id}, $row->[0], "$s: the body's id is the delivery id");
    is($p->{event}, 'booking.confirmed', "$s: event");
    like($p->{created_at} // '', qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z\z/, "$s: created_at in UTC");
    my $b = $p->{booking} // {};
    is_deeply([@$b{qw(id status start end time_zone price_cents currency)}],
        [$id, 'confirmed', $start, tokyo_time($day2 + $offset + 1800), 'Asia/Tokyo', 4500, 'JPY'],
        "$s: booking id, status, local start and end (+09:00), zone, price in cents") or diag(explain($b));
    is_deeply([$b->{partner}, $b->{service}, $b->{staff}],
        [{id => 'kyoto-spa', name => 'Kyoto Spa'}, {id => 0 + $SERVICE, name => 'Shiatsu'},
         {id => 0 + $STAFF{Aiko}, name => 'Aiko'}], "$s: partner, service and staff");
    is_deeply($b->{customer}, {name => "Customer $$-$n_customer", email => "c$$-$n_customer\@example.com",
        phone => '+819012345678'}, "$s: the customer as stored");
    is_deeply([$row->[2], $row->[3]], ['delivered', 1], "$s: the row is delivered after one attempt");
    is(sql_value($t, "SELECT count(*) FROM booking.outbox WHERE id = $row->[0] AND delivered_at IS NOT NULL "
        . "AND last_error IS NULL"), 1, "$s: with its delivery time");
}

# ----------------------------------------------------------------------------------------------------- status

for my $s (qw(apache nginx)) {
    my ($status) = api($t, $s, 'GET', '/status');
    is($status, 401, "$s: /status needs a login");
    ($status) = account_api($t, $s, 'nobody', 'GET', '/status');
    is($status, 401, "$s: /status refuses an unknown login");
    my ($st, $data) = account_api($t, $s, 'ops', 'GET', '/status');
    is($st, 200, "$s: /status with a login");
    my $o = $data->{outbox} // {};
    is_deeply([sort keys %$o], [sort qw(pending due dead oldest_due_lag_s delivered_last_hour
        delivery_lag_p99_ms_last_hour)], "$s: every figure is there");
    is($o->{delivered_last_hour}, 2, "$s: the two confirmations were delivered in the last hour");
    is($o->{due}, 0, "$s: nothing due");
    cmp_ok($o->{oldest_due_lag_s} // -1, '==', 0, "$s: so no lag");
    # the two reminders (BookingReminder 1, two days ahead) wait
    is($o->{pending}, 2, "$s: two reminders pending");
}

# ------------------------------------------------------------- 200 bookings, half through each server, p99 < 2 s

{
    $gw->clear;
    my $base = $day2 + 86400;    # the next day, 00:30 local onwards
    my @jobs = map {
        my $k = int($_ / 2);
        [$_ % 4 < 2 ? 'apache' : 'nginx', tokyo_time($base + 1800 + (int($k / 40) * 86400) + ($k % 40) * 1800),
         $_ % 2 ? 'Haru' : 'Aiko']
    } 0 .. 199;
    # four clients at once, two per server
    my @kids;
    for my $w (0 .. 3) {
        my $file = $t->prefix . "/bulk.$w";
        my $pid = fork // die "fork: $!";
        if ($pid == 0) {
            open my $out, '>', $file or _exit(1);
            for my $j (grep { $_ % 4 == $w } 0 .. $#jobs) {
                $n_customer = 1000 + $j;
                my ($status, $view) = book(@{$jobs[$j]});
                print $out join(' ', $j, $status, $view->{id} // 0), "\n";
            }
            close $out;
            _exit(0);
        }
        push @kids, [$pid, $file];
    }
    my (%status, @ids);
    for my $k (@kids) {
        waitpid $k->[0], 0;
        open my $in, '<', $k->[1] or die "$k->[1]: $!";
        while (<$in>) {
            my ($j, $st, $id) = split;
            $status{$st}++;
            push @ids, $id if $st == 201;
        }
    }
    is_deeply(\%status, {201 => 200}, 'bulk: 200 bookings created (100 through each server)');
    my $in = join ',', @ids;
    my %want = map { $_ => 1 } split /\n/, $t->psql("SELECT id FROM booking.outbox WHERE booking_id IN ($in) "
        . "AND kind = 'booking.confirmed'");
    is(scalar keys %want, 200, 'bulk: one confirmation row per booking');
    ModTest::polled(60, sub { (grep { $want{$_} } $gw->deliveries) >= 200 });
    my @recs = grep { $want{$_->{delivery} // ''} } $gw->requests;
    my %seen;
    $seen{$_->{delivery}}++ for @recs;
    is(scalar keys %seen, 200, 'bulk: every message delivered, none missing');
    is((grep { $_ > 1 } values %seen), 0, 'bulk: no delivery id twice');
    is((grep { !$_->{sig_ok} } @recs), 0, 'bulk: every signature valid');
    is((grep { $_->{status} != 200 } @recs), 0, 'bulk: every post answered 200');
    my @lag = sort { $a <=> $b } map { $_->{time} - (utc_epoch($_->{payload}{created_at}) // 0) } @recs;
    my $p99 = $lag[ceil(0.99 * @lag) - 1] // 99;
    ok($p99 < 2, sprintf('bulk: p99 from the outbox row to the gateway %.3f s < 2 s (max %.3f s)', $p99,
        $lag[-1] // 99));
    ok($lag[0] >= 0, 'bulk: no message arrived before its row was written (clocks agree)');
    is(sql_value($t, "SELECT count(*) FROM booking.outbox WHERE booking_id IN ($in) AND kind = 'booking.confirmed' "
        . "AND status = 'delivered' AND attempts = 1"), 200, 'bulk: every row delivered at the first attempt');
    my $o = status_of('nginx');
    ok(defined $o->{delivery_lag_p99_ms_last_hour} && $o->{delivery_lag_p99_ms_last_hour} < 2000,
        'bulk: /status shows the p99 lag under 2000 ms') or diag(explain($o));
    is($o->{delivered_last_hour}, 202, 'bulk: /status counts 202 deliveries in the last hour');
}

# ------------------------------------------- gateway down (refused), then failing (503), then slow, then back up

{
    $gw->clear;
    $gw->mode('refuse');
    my @ids;
    my $base = $day2 + 5 * 86400;
    for my $i (0 .. 7) {
        my $s = $i % 2 ? 'nginx' : 'apache';
        my ($status, $view) = book($s, tokyo_time($base + 3600 + $i * 1800), 'Aiko');
        push @ids, $view->{id} if $status == 201;
    }
    is(scalar @ids, 8, 'outage: 8 bookings made while the gateway refuses connections');
    my $in = join ',', @ids;
    my $tried = ModTest::polled(10, sub {
        sql_value($t, "SELECT count(*) FROM booking.outbox WHERE booking_id IN ($in) AND kind = 'booking.confirmed' "
            . "AND status = 'pending' AND attempts >= 1 AND last_error IS NOT NULL") == 8 });
    ok($tried, 'outage: every message tried, kept pending with its error');
    like(sql_value($t, "SELECT last_error FROM booking.outbox WHERE booking_id = $ids[0] AND kind = 'booking.confirmed'"),
        qr/connect/i, 'outage: the error says the connection failed');
    unlike(sql_value($t, "SELECT string_agg(last_error, ' ') FROM booking.outbox WHERE booking_id IN ($in)"),
        qr/127\.0\.0\.1|notify/, 'outage: errors do not carry the URL');
    my $o = status_of('apache');
    ok($o->{pending} >= 8, 'outage: /status shows the messages pending') or diag(explain($o));

    $gw->mode('fail', status => 503);
    ModTest::polled(10, sub { (grep { $_->{status} == 503 } $gw->requests) >= 4 });
    ok((grep { $_->{status} == 503 } $gw->requests) >= 4, 'outage: the gateway answers 503 and is retried');
    my $attempts = ModTest::polled(10, sub {
        sql_value($t, "SELECT count(*) FROM booking.outbox WHERE booking_id IN ($in) AND last_error = 'HTTP 503'") });
    ok($attempts, 'outage: 503 recorded as the last error');

    # slow: each dispatcher holds one message for 1.5 s, so the others wait and the lag shows
    $gw->mode('slow', seconds => 1.5);
    $t->psql("UPDATE booking.outbox SET next_attempt_at = now() WHERE booking_id IN ($in) AND status = 'pending'");
    $o = ModTest::polled(8, sub { my $o = status_of('nginx'); $o && $o->{due} > 0 && $o->{oldest_due_lag_s} > 0.5 ? $o : undef });
    ok($o, 'outage: /status shows messages due and waiting while the gateway is slow') or diag(explain(status_of('nginx')));

    $gw->mode('ok');
    my $done = ModTest::polled(30, sub {
        sql_value($t, "SELECT count(*) FROM booking.outbox WHERE booking_id IN ($in) AND kind = 'booking.confirmed' "
            . "AND status = 'delivered'") == 8 });
    ok($done, 'outage over: every message delivered');
    my %ok;
    $ok{$_->{delivery}}++ for grep { $_->{status} == 200 && $_->{event} eq 'booking.confirmed' } $gw->requests;
    my @want = split /\n/, $t->psql("SELECT id FROM booking.outbox WHERE booking_id IN ($in) AND kind = 'booking.confirmed'");
    is_deeply([map { $ok{$_} // 0 } @want], [(1) x 8], 'outage over: each delivered exactly once (one 2xx per delivery id)');
    is((grep { !$_->{sig_ok} } $gw->requests), 0, 'outage: every attempt was signed');
    $o = ModTest::polled(5, sub { my $o = status_of('apache'); $o && $o->{due} == 0 ? $o : undef });
    ok($o && $o->{oldest_due_lag_s} == 0, 'outage over: /status shows nothing due, no lag');
}

# ------------------------------------------------------------------------------------------------- reminders

{
    $gw->clear;
    my ($status, $soon) = book('apache', tokyo_time(slot_from(time + 90 * 60)), 'Haru');
    is($status, 201, 'reminder: booked about 1 h 30 min ahead');
    my $id = $soon->{id};
    my @rows = grep { $_->[1] eq 'booking.reminder' } outbox_rows($id);
    is(scalar @rows, 1, 'reminder: one reminder row');
    is($rows[0][2], 'pending', 'reminder: pending');
    is(sql_value($t, "SELECT extract(epoch FROM b.starts_at - o.due_at)::int || ' ' || (o.due_at = o.next_attempt_at)"
        . " || ' ' || (o.due_at > now() + interval '25 minutes') FROM booking.outbox o JOIN booking.bookings b ON "
        . "b.id = o.booking_id WHERE o.id = $rows[0][0]"), '3600 true true',
        'reminder: due exactly 1 h before the start (BookingReminder 1), about 30 min from now');
    is(sql_value($t, "SELECT payload->>'event' || ' ' || (payload->'booking'->>'start') FROM booking.outbox "
        . "WHERE id = $rows[0][0]"), "booking.reminder $soon->{start}", 'reminder: its payload');

    my ($st2, $close) = book('nginx', tokyo_time(slot_from(time + 20 * 60)), 'Aiko');
    is($st2, 201, 'reminder: booked about 30 min ahead');
    is(scalar(grep { $_->[1] eq 'booking.reminder' } outbox_rows($close->{id})), 0,
        'reminder: none when its time has already passed');

    # reschedule two hours later: the old reminder is cancelled, a new one follows the new start
    my $later = tokyo_time(slot_from(time + 210 * 60));
    ($status, my $view) = api($t, 'nginx', 'POST', "/bookings/$id/reschedule", {start => $later},
        'X-Booking-Token' => $soon->{token});
    is($status, 200, 'reminder: rescheduled') or diag(explain($view));
    my %by = map { $_->[0] => $_ } outbox_rows($id);
    is($by{$rows[0][0]}[2], 'cancelled', 'reminder: the old reminder is cancelled');
    my @new = grep { $_->[1] eq 'booking.reminder' && $_->[2] eq 'pending' } values %by;
    is(scalar @new, 1, 'reminder: one new pending reminder');
    is(sql_value($t, "SELECT extract(epoch FROM b.starts_at - o.due_at)::int FROM booking.outbox o JOIN "
        . "booking.bookings b ON b.id = o.booking_id WHERE o.id = " . ($new[0][0] // 0)), 3600,
        'reminder: 1 h before the new start');
    ok(ModTest::polled(10, sub { received($id, 'booking.rescheduled') }), 'reminder: the reschedule was notified');
    my ($r) = received($id, 'booking.rescheduled');
    is($r->{payload}{booking}{start}, $later, 'reminder: with the new start');

    # a due reminder is delivered like any message
    $t->psql("UPDATE booking.outbox SET due_at = now(), next_attempt_at = now() WHERE id = $new[0][0]");
    ok(ModTest::polled(10, sub { received($id, 'booking.reminder') }), 'reminder: delivered once due');
    ($r) = received($id, 'booking.reminder');
    is($r->{payload}{event}, 'booking.reminder', 'reminder: as booking.reminder');
    ok($r->{sig_ok}, 'reminder: signed');

    # cancelling cancels the pending reminder of the other booking
    my ($st3, $other) = book('apache', tokyo_time(slot_from(time + 300 * 60)), 'Aiko');
    my ($rem) = grep { $_->[1] eq 'booking.reminder' } outbox_rows($other->{id});
    is($rem->[2], 'pending', 'reminder: a fourth booking has its reminder');
    ($status) = api($t, 'apache', 'POST', "/bookings/$other->{id}/cancel", {}, 'X-Booking-Token' => $other->{token});
    is($status, 200, 'reminder: the booking is cancelled');
    %by = map { $_->[0] => $_ } outbox_rows($other->{id});
    is($by{$rem->[0]}[2], 'cancelled', 'reminder: its reminder is cancelled with it');
    ok(ModTest::polled(10, sub { received($other->{id}, 'booking.cancelled') }), 'reminder: the cancellation was notified');
    ($r) = received($other->{id}, 'booking.cancelled');
    is($r->{payload}{booking}{status}, 'cancelled', 'reminder: showing the booking cancelled');
}

# ----------------------------------------------------- each server's dispatcher works alone (the other one stopped)

for my $s (qw(apache nginx)) {
    $t->start_servers(booking_conf(notify_url => $gw->url, server => ['BookingReminder 1']), php => 0,
        servers => [$s]);
    $gw->clear;
    my ($status, $view) = book($s, tokyo_time($day2 + 7 * 86400 + ($s eq 'apache' ? 3600 : 7200)), 'Aiko');
    is($status, 201, "$s alone: booked");
    ok(ModTest::polled(10, sub { received($view->{id}, 'booking.confirmed') }), "$s alone: its dispatcher delivers");
    is(scalar(received($view->{id}, 'booking.confirmed', 1)), 1, "$s alone: once");
}

# ------------------------------------------------------------------------- dead letters (BookingNotifyAttempts 2)

{
    # finished rows older than 30 days go at the dispatcher's first pass; pending and recent rows stay
    $t->psql(<<'SQL');
INSERT INTO booking.outbox (kind, payload, status, created_at, next_attempt_at)
     VALUES ('booking.confirmed', '{"purge": "delivered"}', 'delivered', now() - interval '31 days', now()),
            ('booking.confirmed', '{"purge": "dead"}', 'dead', now() - interval '31 days', now()),
            ('booking.reminder', '{"purge": "cancelled"}', 'cancelled', now() - interval '31 days', now()),
            ('booking.confirmed', '{"keep": "recent"}', 'delivered', now() - interval '29 days', now()),
            ('booking.reminder', '{"keep": "pending"}', 'pending', now() - interval '31 days', now() + interval '1 day');
SQL
    start_servers('BookingReminder 0', 'BookingNotifyAttempts 2');
    ok(ModTest::polled(10, sub { sql_value($t, "SELECT count(*) FROM booking.outbox WHERE payload ? 'purge'") == 0 }),
        'purge: delivered, dead and cancelled rows older than 30 days are removed');
    is(sql_value($t, "SELECT string_agg(payload->>'keep', ' ' ORDER BY id) FROM booking.outbox WHERE payload ? 'keep'"),
        'recent pending', 'purge: a recent row and a pending one stay');
    $gw->clear;
    $gw->mode('fail', status => 500);
    my ($status, $view) = book('nginx', tokyo_time($day2 + 8 * 86400 + 3600), 'Haru');
    is($status, 201, 'dead: booked while the gateway fails');
    my $id = $view->{id};
    ok(ModTest::polled(10, sub { sql_value($t, "SELECT status FROM booking.outbox WHERE booking_id = $id "
        . "AND kind = 'booking.confirmed'") eq 'dead' }), 'dead: parked as dead');
    is(sql_value($t, "SELECT attempts || ' ' || last_error FROM booking.outbox WHERE booking_id = $id "
        . "AND kind = 'booking.confirmed'"), '2 HTTP 500', 'dead: after 2 attempts, with the last error');
    is(scalar(received($id, 'booking.confirmed', 1)), 2, 'dead: the gateway saw exactly 2 attempts');
    is(scalar(grep { $_->[1] eq 'booking.reminder' } outbox_rows($id)), 0, 'dead: BookingReminder 0 schedules none');
    my $o = status_of('apache');
    ok($o->{dead} >= 1, 'dead: /status counts it') or diag(explain($o));

    # the gateway comes back: new messages flow, the dead one stays dead
    $gw->mode('ok');
    my ($st2, $next) = book('apache', tokyo_time($day2 + 8 * 86400 + 7200), 'Haru');
    ok(ModTest::polled(10, sub { received($next->{id}, 'booking.confirmed') }), 'dead: the next message is delivered');
    is(scalar(received($id, 'booking.confirmed')), 0, 'dead: the dead one is not sent again');
    is(sql_value($t, "SELECT status FROM booking.outbox WHERE booking_id = $id AND kind = 'booking.confirmed'"), 'dead',
        'dead: and stays dead');
}

for my $s (qw(apache nginx)) {
    unlike($t->error_log($s), qr/notify-secret-0123456789abcdef/, "$s: the secret never reaches the log");
}

done_testing();
