package PromoConf;
# mod_promo for the integration tests: the same configuration on both servers (written in Apache's syntax, turned
# into nginx's by PaywallConf::nginx_directive), an editors' API client that goes through the editors' page for its
# CSRF token, and a valid promotion to start from.
use strict;
use warnings;
use Exporter 'import';
use JSON::PP;
use MIME::Base64 qw(encode_base64);
use POSIX qw(strftime);
use PaywallConf qw(paywall_server paywall_location promo_php_params merge_conf);
our @EXPORT_OK = qw(promo_conf promotion iso editor api);

my $JSON = JSON::PP->new->utf8->canonical;
our $AUTH = 'Basic ' . encode_base64('editor:editor-pass', '');

# %o: server (more server-level lines), more (more [apache => , nginx => ] parts), placement, refresh, memcached
# (counts shared through memcached)
sub promo_conf {
    my (%o) = @_;
    my @server = ('PromoPostgres "@PG@"', 'PromoSecretFile @TMP@/promo.secret', 'PromoRefresh ' . ($o{refresh} // 1),
        'PromoBasePrice 12000 eur', 'Promo On', ($o{placement} ? ("PromoPlacement $o{placement}") : ()),
        ($o{memcached} ? ('PromoMemcached "@MC@"') : ()),
        @{$o{server} // []});
    my %conf = merge_conf([paywall_server(@server)],
        [paywall_location('/promo/admin/', [], handler => 'promo-admin',
            apache_extra => "AuthType Basic\nAuthName editors\nAuthUserFile \@TMP\@/editors.htpasswd\nRequire valid-user",
            nginx_extra => "auth_basic editors;\nauth_basic_user_file \@TMP\@/editors.htpasswd;")],
        [paywall_location('/promo/click', [], handler => 'promo-click')],
        [paywall_location('/promo/', [], php_params => promo_php_params())],
        @{$o{more} // []});
    return (%conf, nginx_php => promo_php_params());
}

sub setup_files {
    my ($t) = @_;
    $t->write_file('promo.secret', "promo-secret-0123456789abcdef\n");
    system("htpasswd -cbB '" . $t->prefix . "/editors.htpasswd' editor editor-pass >/dev/null 2>&1") == 0
        or die "htpasswd failed\n";
}

sub iso { return strftime('%Y-%m-%dT%H:%M:%SZ', gmtime($_[0])) }

# A valid promotion; %o replaces members.
sub promotion {
    my (%o) = @_;
    return {
        name => 'Congress 2026', starts_at => iso(time - 3600), ends_at => iso(time + 86400), enabled => JSON::PP::true,
        audience => 'everyone', weight => 100, headline => 'Congress offer', text => 'Save on your first year.',
        cta_label => 'Subscribe', cta_url => '/subscribe.html', dismiss_days => 7, %o,
    };
}

# The editors' page once per server: its CSRF token and cookie.
my %session;
sub editor {
    my ($t, $s) = @_;
    return $session{$t}{$s} //= do {
        my $r = $t->get($s, '/promo/admin/', {Authorization => $AUTH});
        die "editors' page on $s: $r->{status}\n" unless $r->{status} == 200;
        my ($token) = $r->{content} =~ /<meta name="promo-csrf" content="([0-9a-f]+)"/;
        my $cookie = ModTest::cookie_from($r, 'promo_csrf');
        die "no CSRF token on $s\n" unless $token && $cookie;
        {token => $token, cookie => "promo_csrf=$cookie"};
    };
}

# (status, decoded body) of an API call; $body: a Perl structure (JSON-encoded) or raw text.
sub api {
    my ($t, $s, $method, $path, $body, %h) = @_;
    my $ed = editor($t, $s);
    my %headers = (Authorization => $AUTH, Cookie => $ed->{cookie}, 'X-Promo-CSRF' => $ed->{token},
        'Content-Type' => 'application/json', %h);
    delete $headers{$_} for grep { !defined $headers{$_} } keys %headers;
    my $r = $t->request($method, $s, "/promo/admin/api/$path",
        {headers => \%headers, (defined $body ? (content => ref $body ? $JSON->encode($body) : $body) : ())});
    my $data = eval { $JSON->decode($r->{content}) };
    return ($r->{status}, $data, $r);
}

1;
