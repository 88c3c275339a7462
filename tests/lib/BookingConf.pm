package BookingConf;
# mod_booking for the integration tests: the same configuration on both servers (written in Apache's syntax, turned
# into nginx's by PaywallConf::nginx_directive), partner logins behind the server's own Basic authentication, a
# JSON API client, and SQL helpers to seed partners, staff and services.
#
# Layout on both servers:
#   /booking/api/          booking-api handler (public routes)
#   /booking/api/account   the same handler behind Basic auth (partner users below)
#   /booking/api/status    the same handler behind Basic auth
#   /book/                 booking-page handler (the white-label page)
use strict;
use warnings;
use Exporter 'import';
use JSON::PP;
use MIME::Base64 qw(encode_base64);
use PaywallConf qw(paywall_server paywall_location merge_conf);
our @EXPORT_OK = qw(booking_conf api account_api seed_sql sql_value ensure_schema tokyo_spa tokyo_time %LOGINS);

my $JSON = JSON::PP->new->utf8->canonical;

# login => password, for partners the tests create with partner_users rows.
our %LOGINS = (lumiere => 'lumiere-pass', rival => 'rival-pass', ops => 'ops-pass');

# %o: server => [more server-level lines], partner => 'from-host' | ID, notify => 1 (BookingNotifyURL to the fake
# gateway on port $o{notify_port}, secret file written by setup_files), zone => BookingTimeZone (Europe/Paris),
# more => [more (apache => , nginx => ) parts].
sub booking_conf {
    my (%o) = @_;
    my @server = ('BookingPostgres "@PG@"', 'BookingTimeZone ' . ($o{zone} // 'Europe/Paris'),
        ($o{partner} ? ("BookingPartner $o{partner}") : ()),
        ($o{notify_url} ? ("BookingNotifyURL $o{notify_url}", 'BookingNotifySecretFile @TMP@/notify.secret') : ()),
        @{$o{server} // []});
    my $auth_apache = "AuthType Basic\nAuthName partners\nAuthUserFile \@TMP\@/partners.htpasswd\nRequire valid-user";
    my $auth_nginx = "auth_basic partners;\nauth_basic_user_file \@TMP\@/partners.htpasswd;";
    my %conf = merge_conf([paywall_server(@server)],
        [paywall_location('/booking/api/account', [], handler => 'booking-api',
            apache_extra => $auth_apache, nginx_extra => $auth_nginx)],
        [paywall_location('/booking/api/status', [], handler => 'booking-api',
            apache_extra => $auth_apache, nginx_extra => $auth_nginx)],
        [paywall_location('/booking/api/', [], handler => 'booking-api')],
        [paywall_location('/book/', [], handler => 'booking-page')],
        @{$o{more} // []});
    return %conf;
}

sub setup_files {
    my ($t) = @_;
    $t->write_file('notify.secret', "notify-secret-0123456789abcdef\n");
    my $file = $t->prefix . '/partners.htpasswd';
    my $flag = '-cbB';
    for my $login (sort keys %LOGINS) {
        system("htpasswd $flag '$file' $login $LOGINS{$login} >/dev/null 2>&1") == 0 or die "htpasswd failed\n";
        $flag = '-bB';
    }
}

# The module creates its schema on first use: one request to each server, then wait for the tables.
sub ensure_schema {
    my ($t) = @_;
    for my $s ($t->servers) { $t->get($s, '/booking/api/partners') }
    for (1 .. 100) {
        my $n = eval { $t->psql("SELECT count(*) FROM pg_tables WHERE schemaname = 'booking' AND tablename = 'outbox'") };
        return 1 if defined $n && $n =~ /1/;
        select(undef, undef, undef, 0.1);
    }
    die "the booking schema was never created\n";
}

# Runs SQL (several statements allowed) and dies on error.
sub seed_sql {
    my ($t, $sql) = @_;
    return $t->psql($sql);
}

# The first column of the first row, trimmed.
sub sql_value {
    my ($t, $sql) = @_;
    my $v = $t->psql($sql);
    $v =~ s/^\s+|\s+\z//g if defined $v;
    return $v;
}

# A spa in Asia/Tokyo (+09:00 all year, so local times are hand-checkable) open around the clock, so that any test
# slot is bookable at any hour: staff working 24 hours a day, one 30-minute service (4,500 JPY) they all perform, no
# notice, a 30-day horizon, 5-minute steps, no cancellation deadline; %o: id (default kyoto-spa), name, staff (names,
# default Aiko), login (a partner login for /account). Returns (service id, {staff name => id}).
sub tokyo_spa {
    my ($t, %o) = @_;
    my $id = $o{id} // 'kyoto-spa';
    my $name = $o{name} // 'Kyoto Spa';
    my @staff = @{$o{staff} // ['Aiko']};
    my $q = sub { my $v = shift; $v =~ s/'/''/g; return "'$v'" };
    my $staff_rows = join ', ', map { '(' . $q->($id) . ', ' . $q->($_) . ')' } @staff;
    my $sql = "INSERT INTO booking.partners (id, name, city, time_zone, currency, min_notice_minutes, horizon_days,"
        . " slot_step_minutes, cancel_deadline_minutes) VALUES (${\ $q->($id)}, ${\ $q->($name)}, 'Tokyo',"
        . " 'Asia/Tokyo', 'JPY', 0, 30, 5, 0);\n";
    $sql .= "INSERT INTO booking.partner_users (login, partner_id) VALUES (${\ $q->($o{login})}, ${\ $q->($id)});\n"
        if $o{login};
    $sql .= <<"SQL";
INSERT INTO booking.opening_hours (partner_id, weekday, opens, closes)
     SELECT ${\ $q->($id)}, d, '00:00', '24:00' FROM generate_series(1, 7) d;
INSERT INTO booking.staff (partner_id, name) VALUES $staff_rows;
INSERT INTO booking.staff_hours (staff_id, weekday, starts, ends)
     SELECT s.id, d, '00:00', '24:00' FROM booking.staff s, generate_series(1, 7) d WHERE s.partner_id = ${\ $q->($id)};
INSERT INTO booking.services (partner_id, name, duration_minutes, price_cents, currency)
     VALUES (${\ $q->($id)}, 'Shiatsu', 30, 4500, 'JPY');
INSERT INTO booking.service_staff (service_id, staff_id)
     SELECT sv.id, st.id FROM booking.services sv, booking.staff st
      WHERE sv.partner_id = ${\ $q->($id)} AND st.partner_id = ${\ $q->($id)};
SQL
    seed_sql($t, $sql);
    my $service = sql_value($t, "SELECT id FROM booking.services WHERE partner_id = ${\ $q->($id)}");
    my %ids = map { split /\|/ } split /\n/,
        $t->psql("SELECT name, id FROM booking.staff WHERE partner_id = ${\ $q->($id)}");
    return ($service, \%ids);
}

# "2026-11-25T10:30:00+09:00" for an epoch, Tokyo's local time as the booking API takes it.
sub tokyo_time {
    my ($epoch) = @_;
    my @t = gmtime($epoch + 9 * 3600);
    return sprintf '%04d-%02d-%02dT%02d:%02d:00+09:00', $t[5] + 1900, $t[4] + 1, @t[3, 2, 1];
}

# (status, decoded body or undef, raw response) of a public API call; $body: a Perl structure (JSON-encoded) or raw
# text; %h: more headers (Host, X-Booking-Token, Content-Type...).
sub api {
    my ($t, $s, $method, $path, $body, %h) = @_;
    my %headers = ((defined $body ? ('Content-Type' => 'application/json') : ()), %h);
    delete $headers{$_} for grep { !defined $headers{$_} } keys %headers;
    my $r = $t->request($method, $s, "/booking/api$path",
        {headers => \%headers, (defined $body ? (content => ref $body ? $JSON->encode($body) : $body) : ())});
    my $data = eval { $JSON->decode($r->{content}) };
    return ($r->{status}, $data, $r);
}

# The same as the partner $login (Basic auth).
sub account_api {
    my ($t, $s, $login, $method, $path, $body, %h) = @_;
    return api($t, $s, $method, $path, $body,
        Authorization => 'Basic ' . encode_base64("$login:" . ($LOGINS{$login} // 'wrong'), ''), %h);
}

1;
