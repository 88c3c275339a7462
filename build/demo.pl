#!/usr/bin/perl
# The demo: 3 memcached nodes, PostgreSQL, php-fpm, Apache on 127.0.0.1:8080 and nginx on 127.0.0.1:8081 in front
# of demo/app (log in through one server, continue through the other), with every built module loaded.
# Runs until Ctrl-C, then stops everything.
#
# The vhost/server snippets come from conf/demo/ when present (same placeholders as the tests: @MC@ @PG@ @DOCROOT@
# @FPM@ @TMP@ @APACHE_PORT@ @NGINX_PORT@):
#   apache.conf         inside <VirtualHost>          nginx.conf        inside server {}
#   apache-php.conf     inside the PHP <FilesMatch>   nginx-php.conf    inside location ~ \.php$ {}
#   apache-global.conf  main server config            nginx-http.conf   http {}        nginx-main.conf  main context
#
# usage: perl build/demo.pl [--apache-port 8080] [--nginx-port 8081]      (MODTEST_KEEP=1 keeps the logs)

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../tests/lib";

use Getopt::Long;
use Time::HiRes qw(sleep);
use ModTest;
use FakeStripe;
use MIME::Base64 ();

$| = 1;
my %port = (apache => 8080, nginx => 8081);
GetOptions('apache-port=i' => \$port{apache}, 'nginx-port=i' => \$port{nginx})
    or die "usage: $0 [--apache-port N] [--nginx-port N]\n";

my $root = "$FindBin::Bin/..";
my $stop = 0;
# Ctrl-C is the normal way out here: set before ModTest->new so the harness keeps these handlers
$SIG{INT} = $SIG{TERM} = $SIG{HUP} = sub { $stop = 1 };

my %built = map { $_ => [glob(ModTest::modules_dir() . ($_ eq 'apache' ? '/apache/mod_*.so' : '/nginx/ngx_*_module.so'))] }
    qw(apache nginx);
my @skipped;

sub snippet {
    my ($name) = @_;
    my $f = "$root/conf/demo/$name.conf";
    return '' unless -f $f;
    my ($server) = $name =~ /^(apache|nginx)/;
    unless (@{$built{$server}}) {
        # their directives come from the modules: without them the server would not start
        push @skipped, "conf/demo/$name.conf";
        return '';
    }
    open my $fh, '<', $f or die "$f: $!\n";
    local $/;
    my $text = <$fh>;
    $text =~ s/\@STRIPE_API\@/$main::stripe_api/g;
    return $text;
}

my $t = ModTest->new(
    memcached   => 3,
    postgres    => 1,
    php         => 1,
    docroot     => "$root/demo/app",
    apache_port => $port{apache},
    nginx_port  => $port{nginx},
    php_ini     => { 'session.cookie_httponly' => 1, 'session.cookie_samesite' => 'Lax',
        'session.use_strict_mode' => 1 },
);

# mod_paywall's secrets and the routing export's login (demo / demo); Stripe is simulated by the tests' fake API.
my $demo = $t->prefix . '/demo';
mkdir $demo;
$t->write_file('demo/paywall.secret', unpack('H*', join '', map { chr int rand 256 } 1 .. 32) . "\n");
$t->write_file('demo/stripe.key', "sk_test_demo\n");
$t->write_file('demo/promo.secret', unpack('H*', join '', map { chr int rand 256 } 1 .. 32) . "\n");
system("htpasswd -cbB '$demo/htpasswd' demo demo >/dev/null 2>&1") == 0 or die "htpasswd failed\n";
my $stripe = FakeStripe->start(dir => $demo, key => 'sk_test_demo');
our $stripe_api = $stripe->url;

my @loaded = map { s{.*/}{}r } @{$built{apache}}, @{$built{nginx}};
my @snippets = grep { -f "$root/conf/demo/$_.conf" && @{$built{/^(apache|nginx)/ && $1}} }
    qw(apache apache-php apache-global nginx nginx-php nginx-http nginx-main);

$t->start_servers(
    apache        => "SetEnv DEMO_APACHE_PORT \@APACHE_PORT\@\nSetEnv DEMO_NGINX_PORT \@NGINX_PORT\@\n"
        . snippet('apache'),
    apache_php    => snippet('apache-php'),
    apache_global => snippet('apache-global'),
    nginx         => snippet('nginx'),
    nginx_php     => "fastcgi_param DEMO_APACHE_PORT \@APACHE_PORT\@;\nfastcgi_param DEMO_NGINX_PORT \@NGINX_PORT\@;\n"
        . snippet('nginx-php'),
    nginx_http    => snippet('nginx-http'),
    nginx_main    => snippet('nginx-main'),
);

# Two subscribers to log in as: alice (digital) and bob (print, with the address the mail router gets).
if (grep { m{/mod_paywall\.so\z} } @{$built{apache}}) {
    $t->get('apache', '/articles/surgery.php');    # the first gated request creates the paywall schema
    my %id = map { $_ => `php -r 'echo crc32("$_") % 1000000 + 1;'` } qw(alice bob);
    my $sql = '';
    for (['alice', 'digital'], ['bob', 'print']) {
        my ($name, $plan) = @$_;
        $sql .= "INSERT INTO paywall.customers (customer_id, user_id, livemode) VALUES ('cus_demo_$name', '$id{$name}', false)"
            . " ON CONFLICT DO NOTHING;\n"
            . "INSERT INTO paywall.subscriptions (subscription_id, customer_id, user_id, plan, price_id, status,"
            . " current_period_end, livemode, last_event_created, last_event_id) VALUES ('sub_demo_$name',"
            . " 'cus_demo_$name', '$id{$name}', '$plan', 'price_demo_$plan', 'active', now() + interval '1 year', false,"
            . " now(), 'evt_demo_$name') ON CONFLICT DO NOTHING;\n";
    }
    $sql .= "INSERT INTO paywall.shipping_addresses (subscription_id, customer_id, name, line1, postal_code, city,"
        . " country, source_event_id, valid_from) SELECT 'sub_demo_bob', 'cus_demo_bob', 'Dr Bob Martin',"
        . " '12 rue de la Paix', '75002', 'Paris', 'FR', 'evt_demo_bob', now() - interval '1 day'"
        . " WHERE NOT EXISTS (SELECT 1 FROM paywall.shipping_addresses WHERE subscription_id = 'sub_demo_bob');\n";
    $t->psql($sql);
}

# A live promotion with a first-year discount, as an editor would make it on /promo/admin/.
if (grep { m{/mod_promo\.so\z} } @{$built{apache}}) {
    require PromoConf;
    no warnings 'once';
    local $PromoConf::AUTH = 'Basic ' . MIME::Base64::encode_base64('demo:demo', '');
    my ($status) = PromoConf::api($t, 'apache', 'POST', 'promotions', PromoConf::promotion(
        name => 'Year-end offer', headline => 'Year-end offer: 30% off your first year',
        text => 'Print and digital, cancel any time.', cta_label => 'Subscribe', cta_url => '/subscribe.php',
        discount => {code => 'YEAREND30', percent_off => 30, duration => 'once', stripe_coupon => 'coupon_demo_30'}));
    warn "demo promotion not created ($status)\n" unless $status == 201 || $status == 409;
}

# Two salons with staff, services and opening hours; the login demo manages the first one.
if (grep { m{/mod_booking\.so\z} } @{$built{apache}}) {
    require BookingConf;
    BookingConf::ensure_schema($t);
    $t->psql(<<'SQL');
INSERT INTO booking.partners (id, name, city, address, time_zone, branding, min_notice_minutes, cancel_deadline_minutes)
VALUES ('salon-lumiere', 'Salon Lumière', 'Paris', '12 rue des Martyrs', 'Europe/Paris',
        '{"color": "#8a3b5c", "tagline": "Hair and nails in Montmartre"}', 60, 1440),
       ('spa-riviera', 'Spa Riviera', 'Nice', '3 promenade des Anglais', 'Europe/Paris',
        '{"color": "#1d6f8a", "tagline": "Massages facing the sea"}', 120, 2880)
ON CONFLICT DO NOTHING;
INSERT INTO booking.partner_users (login, partner_id) VALUES ('demo', 'salon-lumiere') ON CONFLICT DO NOTHING;
INSERT INTO booking.opening_hours (partner_id, weekday, opens, closes)
SELECT p, d, '09:00', '19:00' FROM unnest(ARRAY['salon-lumiere', 'spa-riviera']) p, generate_series(1, 6) d
WHERE NOT EXISTS (SELECT 1 FROM booking.opening_hours);
INSERT INTO booking.staff (partner_id, name)
SELECT * FROM (VALUES ('salon-lumiere', 'Camille'), ('salon-lumiere', 'Inès'), ('spa-riviera', 'Hugo')) v
WHERE NOT EXISTS (SELECT 1 FROM booking.staff);
INSERT INTO booking.staff_hours (staff_id, weekday, starts, ends)
SELECT s.id, d, '09:00', '18:00' FROM booking.staff s, generate_series(1, 6) d
WHERE NOT EXISTS (SELECT 1 FROM booking.staff_hours);
INSERT INTO booking.staff_breaks (staff_id, weekday, starts, ends)
SELECT s.id, d, '12:30', '13:30' FROM booking.staff s, generate_series(1, 6) d
WHERE NOT EXISTS (SELECT 1 FROM booking.staff_breaks);
INSERT INTO booking.services (partner_id, name, category, duration_minutes, price_cents, buffer_after_minutes)
SELECT * FROM (VALUES ('salon-lumiere', 'Haircut', 'hair', 45, 3500, 15), ('salon-lumiere', 'Manicure', 'nails', 30, 2500, 10),
                      ('spa-riviera', 'Massage', 'spa', 60, 7000, 15)) v
WHERE NOT EXISTS (SELECT 1 FROM booking.services);
INSERT INTO booking.service_staff (service_id, staff_id)
SELECT sv.id, st.id FROM booking.services sv JOIN booking.staff st USING (partner_id) ON CONFLICT DO NOTHING;
SQL
}

my $p = $t->prefix;
print <<"EOF";

  Shared sessions demo is running.

    Apache  http://127.0.0.1:$port{apache}/
    nginx   http://127.0.0.1:$port{nginx}/

  Log in on one, open the other: same session (memcached ${\ $t->mc_servers}).
  Paywall: /articles/surgery.php (3 free views a month, then the teaser); alice and bob are subscribers;
  routing CSV for the mail router at /export/routing.csv (login demo / demo). Stripe is simulated.
  Promotions: the banner on every page; editors' page at /promo/admin/ (login demo / demo); ?promo=YEAREND30.
  Booking: the booking page at /book/; the API at /booking/api/partners; the salon's account at
  /booking/api/account (login demo / demo), e.g. /booking/api/account/calendar?view=week.
  Modules loaded:  @{[ @loaded ? join(' ', @loaded) : 'none (build them: make)' ]}
  Demo snippets:   @{[ @snippets ? join(' ', map { "conf/demo/$_.conf" } @snippets) : 'none' ]}
@{[ @skipped ? "  Skipped:         @skipped (no module built for that server)\n" : '' ]}  PostgreSQL:      ${\ $t->pg_conninfo }
  Logs:            $p/{apache,nginx}/error.log, $p/php/error.log, $p/pg/postgres.log

  Ctrl-C stops everything.
EOF

while (!$stop) {
    sleep 0.5;
    my %dead = $t->check_processes;
    if (%dead) {
        print STDERR "\n$dead{$_}" for sort keys %dead;
        print STDERR "\nstopping: a service exited (logs kept in $p)\n";
        $ENV{MODTEST_KEEP} = 1;
        last;
    }
}
print "\nstopping...\n";
$t->stop;
exit 0;
