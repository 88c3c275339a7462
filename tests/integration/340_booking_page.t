#!/usr/bin/perl
# mod_booking's white-label booking page on both servers. Plain HTTP: 200 text/html, a Content-Security-Policy
# whose nonce is the one on the page's script and style (a new one every response), the API path filled in.
# Headless Chromium at phone size (375x740, touch), on the partner's own host (BookingPartner from-host, hosts
# {127.0.0.1}): the partner's branding, a service, a day, a slot with a staff member, the contact form, the
# confirmation; the booking row in PostgreSQL; no horizontal scroll, no console error, the policy in force. Then a
# phone the browser accepts but the server refuses (its 400 shown next to the field) and a slot taken while the
# visitor types (409: "just taken", fresh slots, another slot booked).

use strict;
use warnings;
use utf8;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Encode qw(encode_utf8);
use JSON::PP;
use Browser;

BEGIN {
    plan skip_all => 'no headless browser: ' . Browser::unavailable_reason() unless Browser::available();
}
use ModTest;
use BookingConf qw(booking_conf api seed_sql sql_value ensure_schema);

my $t = ModTest->new(postgres => 1);
BookingConf::setup_files($t);
$t->start_servers(booking_conf(partner => 'from-host'));
ensure_schema($t);

# A salon whose white-label host is the one Chromium reaches (from-host matching ignores the port), open 09:00 to
# 18:00 every day with two staff members; a second salon on another host that the page must never show.
my $LOGO = 'data:image/svg+xml,%3Csvg%20xmlns=%22http://www.w3.org/2000/svg%22%20width=%2248%22%20height=%2248%22%3E'
    . '%3Crect%20width=%2248%22%20height=%2248%22%20fill=%22%23f2c14e%22/%3E%3C/svg%3E';
my $branding = JSON::PP->new->canonical->encode({color => '#8a3b5c', tagline => 'Hair & nails since 1999',
    logo_url => $LOGO});
seed_sql($t, encode_utf8(<<"SQL"));
INSERT INTO booking.partners (id, name, city, time_zone, hosts, branding, currency, min_notice_minutes,
    slot_step_minutes, horizon_days)
VALUES ('page-salon', 'Salon Lumière', 'Lyon', 'Europe/Paris', '{127.0.0.1}', '$branding', 'EUR', 0, 15, 60),
       ('other-salon', 'Salon Rival', 'Lyon', 'Europe/Paris', '{rival.example}', '{"color": "#00ff00"}', 'EUR', 0, 15, 60);
INSERT INTO booking.opening_hours (partner_id, weekday, opens, closes)
    SELECT p, d, '09:00', '18:00' FROM unnest(ARRAY['page-salon', 'other-salon']) p, generate_series(1, 7) d;
INSERT INTO booking.staff (partner_id, name) VALUES ('page-salon', 'Alice'), ('page-salon', 'Bob'),
    ('other-salon', 'Rita');
INSERT INTO booking.staff_hours (staff_id, weekday, starts, ends)
    SELECT s.id, d, '09:00', '18:00' FROM booking.staff s, generate_series(1, 7) d;
INSERT INTO booking.services (partner_id, name, description, duration_minutes, price_cents, currency)
VALUES ('page-salon', 'Cut & blow-dry', 'Wash, cut and style', 45, 4500, 'EUR'),
       ('page-salon', 'Manicure', '', 90, 2550, 'EUR'),
       ('other-salon', 'Rival cut', '', 30, 1000, 'EUR');
INSERT INTO booking.service_staff (service_id, staff_id)
    SELECT v.id, s.id FROM booking.services v JOIN booking.staff s USING (partner_id)
    WHERE v.name <> 'Manicure' OR s.name = 'Alice';
SQL
my $CUT = sql_value($t, "SELECT id FROM booking.services WHERE name = 'Cut & blow-dry'");
my $MANICURE = sql_value($t, "SELECT id FROM booking.services WHERE name = 'Manicure'");
my $BOB = sql_value($t, "SELECT id FROM booking.staff WHERE name = 'Bob'");
my $TODAY = sql_value($t, "SELECT (now() AT TIME ZONE 'Europe/Paris')::date::text");
my $TOMORROW = sql_value($t, "SELECT ((now() AT TIME ZONE 'Europe/Paris')::date + 1)::text");

my $JSON = JSON::PP->new->utf8->canonical;
my $CSP_RE = qr/^default-src 'none'; script-src 'nonce-([A-Za-z0-9_-]{22})'; style-src 'nonce-\1'; img-src 'self' https: data:; connect-src 'self'; form-action 'none'; frame-ancestors 'self'; base-uri 'none'$/;
sub plus45 { my ($h, $m) = split /:/, $_[0]; my $end = $h * 60 + $m + 45; return sprintf('%02d:%02d', int($end / 60), $end % 60) }

sub png_ok {
    my ($path, $name) = @_;
    my $head = '';
    if (open(my $fh, '<:raw', $path)) { read($fh, $head, 8); close $fh }
    ok(-s $path && $head eq "\x89PNG\r\n\x1a\n", "$name: screenshot taken") or diag("$path missing");
}

# Console messages other than the browser's own line for an HTTP error status the step expected.
sub unexpected_errors {
    my ($r, @statuses) = @_;
    my $allowed = join '|', @statuses;
    return [grep {
        !(@statuses && $_->{text} =~ /^Failed to load resource: the server responded with a status of (?:$allowed)\b/)
    } @{$r->{errors} // []}];
}

# The booking the page made, as PostgreSQL holds it.
sub booked {
    my ($email) = @_;
    return sql_value($t, "SELECT c.name || '|' || c.phone || '|' || b.service_id || '|' || b.staff_id || '|' || "
        . "to_char(b.starts_at AT TIME ZONE 'Europe/Paris', 'YYYY-MM-DD HH24:MI') || '|' || "
        . "to_char(b.ends_at AT TIME ZONE 'Europe/Paris', 'HH24:MI') || '|' || b.price_cents || '|' || b.status "
        . "FROM booking.bookings b JOIN booking.customers c ON c.id = b.customer_id WHERE c.email = '$email' "
        . 'ORDER BY b.id');
}

my %context = (isMobile => JSON::PP::true, hasTouch => JSON::PP::true, locale => 'en-US',
    timezoneId => 'America/New_York');    # not the salon's zone: times must not move with the visitor's

my %hour = (apache => {book => '10:00', taken => '14:00', retry => '16:00'},
    nginx => {book => '11:00', taken => '15:00', retry => '17:00'});

for my $s (qw(apache nginx)) {
    # --------------------------------------------------------------------------------------- plain HTTP
    my $r = $t->get($s, '/book/');
    is($r->{status}, 200, "$s: the page answers 200");
    like($r->{headers}{'content-type'} // '', qr{^text/html;\s*charset=utf-8$}i, "$s: as UTF-8 HTML");
    my $csp = $r->{headers}{'content-security-policy'} // '';
    my ($nonce) = $csp =~ $CSP_RE;
    ok($nonce, "$s: Content-Security-Policy with a 16-byte nonce") or diag($csp);
    $nonce //= 'none';
    my $body = $r->{content};
    my @scripts = $body =~ /<script\b([^>]*)>/g;
    my @styles = $body =~ /<style\b([^>]*)>/g;
    is_deeply([@scripts, @styles], [qq{ nonce="$nonce"}, qq{ nonce="$nonce"}],
        "$s: the one script and the one style carry the header's nonce");
    like($body, qr{<meta name="booking-api" content="/booking/api">}, "$s: {{API}} filled with BookingPageAPI");
    unlike($body, qr/\{\{(?:API|NONCE)\}\}/, "$s: no placeholder left");
    unlike($body, qr{\b(?:src|href)="https?:}i, "$s: no external resource");
    my ($again) = ($t->get($s, '/book/')->{headers}{'content-security-policy'} // '') =~ $CSP_RE;
    ok($again && $again ne $nonce, "$s: a new nonce every response");

    # ------------------------------------------------------------------------------ booked in Chromium
    my $email = "jeanne.$s\@example.com";
    my $shot = $t->prefix . "/page-$s.png";
    my $slot = qq{#slot-list button[data-start^="${TOMORROW}T$hour{$s}{book}:"]};
    $r = Browser::run([
        {goto => $t->url($s, '/book/'), width => 375, height => 740},                                   # 0
        {waitFor => qq{button[data-service="$CUT"]}},
        {eval => '({name: document.getElementById("brand-name").textContent, tagline: document.getElementById("tagline").textContent,'
            . ' title: document.title, brand: getComputedStyle(document.documentElement).getPropertyValue("--brand").trim(),'
            . ' header: getComputedStyle(document.querySelector("header")).backgroundColor,'
            . ' logo: await (l => l.decode().then(() => l.naturalWidth))(document.getElementById("logo")), partners: document.querySelectorAll("#partner-list button").length,'
            . ' services: [...document.querySelectorAll("#service-list button")].map(b => b.innerText.replace(/\s+/g, " ").trim())})'},
        {click => qq{button[data-service="$CUT"]}},
        {waitFor => qq{#day-list button[data-date="$TOMORROW"]:not([disabled])}},
        {eval => '({days: [...document.querySelectorAll("#day-list button")].map(b => b.dataset.date), focus: document.activeElement.id})'}, # 5
        {click => qq{#day-list button[data-date="$TOMORROW"]}},
        {waitFor => '#slot-list button'},
        {eval => '[...document.querySelectorAll("#slot-list button")].map(b => b.textContent)'},
        {select => ['#staff', $BOB]},
        {click => $slot},                                                                               # 10
        {waitFor => '#name'},
        {eval => '[document.activeElement.id, document.getElementById("contact-summary").textContent]'},
        {fill => ['#name', 'Jeanne Martin']},
        {fill => ['#email', $email]},
        {fill => ['#phone', '+33 6 12 34 56 78']},                                                      # 15
        {eval => 'document.documentElement.scrollWidth <= document.documentElement.clientWidth'},
        {click => '#confirm'},
        {waitFor => '#step-done', timeout => 10000},
        {eval => '({details: document.getElementById("done-details").innerText.split("\n"), focus: document.activeElement.id,'
            . ' manage: document.getElementById("manage-link").getAttribute("href")})'},
        {eval => 'document.documentElement.scrollWidth <= document.documentElement.clientWidth'},       # 20
        {eval => 'fetch(location.href).then(r => r.headers.get("content-security-policy"))'},
        {eval => 'Object.keys(localStorage).filter(k => k.startsWith("booking:")).map(k => JSON.parse(localStorage.getItem(k)).token)'},
        {screenshot => $shot, fullPage => JSON::PP::true},
    ], context => \%context, step_timeout => 8000);
    ok($r->{ok}, "$s: booked end to end in Chromium at 375 px") or diag(explain($r));
    my @res = @{$r->{results}};
    is($res[0]{status}, 200, "$s: page loaded in the browser");
    is_deeply($res[2], {name => 'Salon Lumière', tagline => 'Hair & nails since 1999', title => 'Book at Salon Lumière',
        brand => '#8a3b5c', header => 'rgb(138, 59, 92)', logo => 48, partners => 0,
        services => ['Cut & blow-dry 45 min Wash, cut and style €45.00', 'Manicure 1 h 30 min €25.50']},
        "$s: the host's partner alone, in its branding, services with duration and price") or diag(explain($res[2]));
    is(scalar @{$res[5]{days} // []}, 14, "$s: 14 days offered");
    my $today_now = sql_value($t, "SELECT (now() AT TIME ZONE 'Europe/Paris')::date::text");    # midnight may pass
    ok(grep({ $_ eq ($res[5]{days}[0] // '') } $TODAY, $today_now), "$s: starting today in the salon's zone")
        or diag($res[5]{days}[0]);
    is($res[5]{focus}, 'day-heading', "$s: focus moved to the day step");
    # 09:00 to 17:15 every 15 minutes (45 minutes must end by 18:00): 34 starts, in the salon's wall-clock time.
    my @want = map { sprintf('%02d:%02d', 9 + int($_ * 15 / 60), $_ * 15 % 60) } 0 .. 33;
    is_deeply($res[8], \@want, "$s: tomorrow's slots, salon time, HH:MM") or diag(explain($res[8]));
    is($res[12][0], 'contact-heading', "$s: focus moved to the contact form");
    like($res[12][1] // '', qr/^Cut & blow-dry · \w+,? \d+ \w+ at $hour{$s}{book} · €45\.00$/, "$s: summary of the choice");
    ok($res[16], "$s: no horizontal scroll at 375 px (form)");
    ok($res[20], "$s: no horizontal scroll at 375 px (confirmation)");
    my $details = {@{$res[19]{details} // []}};
    is($details->{Time}, "$hour{$s}{book} – " . plus45($hour{$s}{book}), "$s: confirmation: time");
    is_deeply([@$details{qw(Service With Price)}], ['Cut & blow-dry', 'Bob', '€45.00'],
        "$s: confirmation: service, staff, price");
    is($res[19]{focus}, 'done-heading', "$s: focus moved to the confirmation");
    like($res[21] // '', $CSP_RE, "$s: the browser got the page's policy");
    is(scalar @{unexpected_errors($r)}, 0, "$s: no console error") or diag(explain($r->{errors}));
    png_ok($shot, "$s: booked page");

    is(booked($email), "Jeanne Martin|+33612345678|$CUT|$BOB|$TOMORROW $hour{$s}{book}|" . plus45($hour{$s}{book})
        . '|4500|confirmed', "$s: the booking row in PostgreSQL");
    my ($manage, $token) = ($res[19]{manage} // '', $res[22][0] // '');
    like($manage, qr{^/booking/api/bookings/\d+\?token=\Q$token\E$}, "$s: manage link kept with the token");
    my $view = $t->get($s, $manage);
    is($view->{status}, 200, "$s: the manage link opens the booking");
    my $id = eval { $JSON->decode($view->{content})->{id} } // '';
    is($id, sql_value($t, "SELECT b.id FROM booking.bookings b JOIN booking.customers c ON c.id = b.customer_id "
        . "WHERE c.email = '$email'"), "$s: ... this one");

    # --------------------------------------------------------------- refused by the server, then taken
    my $taken_start = qq{${TOMORROW}T$hour{$s}{taken}:};
    my ($status, $refusal) = api($t, $s, 'POST', '/bookings', {service => $CUT + 0, staff => $BOB + 0,
        start => sql_value($t, "SELECT to_char(('$TOMORROW $hour{$s}{taken}'::timestamp AT TIME ZONE 'Europe/Paris') "
            . q{AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')}),
        customer => {name => 'Probe', email => 'probe@example.com', phone => '12345'}});
    is($status, 400, "$s: the server refuses phone 12345");
    is($refusal->{field} // '', 'customer.phone', "$s: ... naming customer.phone");
    my $other = "other.$s\@example.com";
    my $retry = qq{#slot-list button[data-start^="${TOMORROW}T$hour{$s}{retry}:"]};
    my $email2 = "paul.$s\@example.com";
    # The slot Paul has chosen, booked for the same staff member through the same API, as another visitor would.
    my $take_slot = sprintf('fetch(document.querySelector(\'meta[name="booking-api"]\').content + "/bookings", '
        . '{method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify({service: %d, staff: %d, '
        . 'start: document.querySelector(\'#slot-list button[aria-pressed="true"]\').dataset.start, '
        . 'customer: {name: "Other", email: "%s", phone: "+33700000000"}})}).then(r => r.status)', $CUT, $BOB, $other);
    $r = Browser::run([
        {goto => $t->url($s, '/book/'), width => 375, height => 740},                                   # 0
        {click => qq{button[data-service="$CUT"]}},
        {click => qq{#day-list button[data-date="$TOMORROW"]:not([disabled])}},
        {select => ['#staff', $BOB]},
        {click => qq{#slot-list button[data-start^="$taken_start"]}},
        {fill => ['#name', 'Paul Durand']},                                                              # 5
        {fill => ['#email', 'paul.example.com']},
        {fill => ['#phone', '12345']},
        {click => '#confirm'},
        {eval => '[document.getElementById("email-error").textContent, document.activeElement.id,'
            . ' document.getElementById("email").getAttribute("aria-invalid")]'},
        {fill => ['#email', $email2]},                                                                   # 10
        {click => '#confirm'},
        {waitForText => ['#phone-error', $refusal->{error} // 'no message']},
        {eval => '[document.getElementById("phone-error").textContent, document.activeElement.id,'
            . ' document.getElementById("phone").getAttribute("aria-invalid"), document.getElementById("email-error").textContent]'},
        {fill => ['#phone', '06 12 34 56 78']},
        # someone else takes the slot while Paul types                                                  # 15
        {eval => $take_slot},
        {click => '#confirm'},
        {waitForText => ['#slot-notice', 'just taken', 8000]},
        {eval => '({focus: document.activeElement.id, form: document.getElementById("step-contact").hidden,'
            . ' name: document.getElementById("name").value,'
            . ' slots: [...document.querySelectorAll("#slot-list button")].map(b => b.dataset.start)})'},
        {click => $retry},
        {click => '#confirm'},                                                                           # 20
        {waitFor => '#step-done', timeout => 10000},
        {eval => 'document.documentElement.scrollWidth <= document.documentElement.clientWidth'},
    ], context => \%context, step_timeout => 8000);
    ok($r->{ok}, "$s: refused, taken and booked again in Chromium") or diag(explain($r));
    @res = @{$r->{results}};
    is_deeply($res[9], ['Please enter a valid e-mail address, like name@example.com.', 'email', 'true'],
        "$s: the browser's own check on the e-mail, focus on it");
    is_deeply($res[13], [$refusal->{error}, 'phone', 'true', ''],
        "$s: the server's 400 shown next to the phone field, focus on it") or diag(explain($res[13]));
    is($res[15], 201, "$s: the slot taken behind the visitor's back");
    is($res[18]{focus}, 'slot-heading', "$s: 409: back to the times, focus on them");
    ok($res[18]{form}, "$s: 409: the form put away until another time is chosen");
    is($res[18]{name}, 'Paul Durand', "$s: 409: the details kept");
    my @starts = @{$res[18]{slots} // []};
    ok(@starts && !grep({ index($_, $taken_start) == 0 } @starts), "$s: 409: the slots reloaded without the taken one")
        or diag(explain(\@starts));
    ok($res[22], "$s: no horizontal scroll at 375 px (after a 409)");
    is(scalar @{unexpected_errors($r, 400, 409)}, 0, "$s: no console error but the 400 and 409 responses")
        or diag(explain($r->{errors}));
    is(booked($email2), "Paul Durand|0612345678|$CUT|$BOB|$TOMORROW $hour{$s}{retry}|" . plus45($hour{$s}{retry})
        . '|4500|confirmed', "$s: Paul's one booking, at the time chosen after the 409");
    is(sql_value($t, "SELECT count(*) FROM booking.customers WHERE phone = '12345' OR email = 'probe\@example.com'"), 0,
        "$s: nothing written for the refused attempts");
    is(booked($other), "Other|+33700000000|$CUT|$BOB|$TOMORROW $hour{$s}{taken}|" . plus45($hour{$s}{taken})
        . '|4500|confirmed', "$s: the other visitor has the slot");
}

done_testing();
