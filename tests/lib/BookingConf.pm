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
our @EXPORT_OK = qw(booking_conf api account_api seed_sql sql_value ensure_schema %LOGINS);

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
