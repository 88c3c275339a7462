#!/usr/bin/perl
# The editors' page and its JSON API on both servers: behind the server's own authentication, CSRF-protected, bad
# input refused with 400 naming the field and nothing written, create / read / update / switch on and off, and a
# change made through one server showing on the other within PromoRefresh.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use JSON::PP;
use Time::HiRes qw(sleep time);
use ModTest;
use PromoConf qw(promo_conf promotion iso editor api);

my $t = ModTest->new(memcached => 1, postgres => 1, php => 1);
PromoConf::setup_files($t);
$t->start_servers(promo_conf());

sub count { my $n = $t->psql($_[0]); chomp $n; return $n }

for my $s (qw(apache nginx)) {
    # The page: authentication, CSRF token and cookie, headers that keep it from being framed.
    is($t->get($s, '/promo/admin/')->{status}, 401, "$s: the editors' page needs a login");
    my $r = $t->get($s, '/promo/admin/', {Authorization => $PromoConf::AUTH});
    is($r->{status}, 200, "$s: the editors' page");
    like($r->{headers}{'content-type'}, qr{^text/html}, "$s: as HTML");
    like($r->{content}, qr/<meta name="promo-csrf" content="[0-9a-f]{32}">/, "$s: with a fresh CSRF token");
    unlike($r->{content}, qr/\{\{CSRF\}\}/, "$s: the placeholder is filled");
    my $c = ModTest::set_cookie($r, 'promo_csrf');
    ok($c && $c->{httponly} && lc($c->{samesite} // '') eq 'strict', "$s: CSRF cookie HttpOnly, SameSite=Strict");
    like($r->{headers}{'content-security-policy'} // '', qr/frame-ancestors 'none'/, "$s: not framable");
    unlike($r->{content}, qr/wm-promo-\d/, "$s: no banner on the editors' page");
    is($t->get($s, '/promo/admin/api/promotions')->{status}, 401, "$s: the API needs a login too");

    # Refusals: 400 naming the field, nothing written.
    my $before = count('SELECT count(*) FROM promo.promotions');
    my %bad = (
        ends_at   => promotion(ends_at => iso(time - 7200)),
        text      => promotion(text => 'Click <b>here</b>'),
        headline  => promotion(headline => 'x' x 500),
        cta_url   => promotion(cta_url => 'javascript:alert(1)'),
        bg_color  => promotion(bg_color => 'red'),
        image_alt => promotion(image_wide => '/img/banner.jpg'),
        nonsense  => promotion(nonsense => 1),
        'discount.percent_off' => promotion(discount => {code => 'X10', percent_off => 130}),
    );
    for my $field (sort keys %bad) {
        my ($status, $data) = api($t, $s, 'POST', 'promotions', $bad{$field});
        is($status, 400, "$s: bad $field: 400");
        is($data->{field}, $field, "$s: the error names $field") or diag(explain($data));
    }
    my ($status, $data) = api($t, $s, 'POST', 'promotions', '{"name": ');
    is($status, 400, "$s: invalid JSON: 400");
    like($data->{error} // '', qr/./, "$s: with a message");
    ($status) = api($t, $s, 'POST', 'promotions', promotion(), 'X-Promo-CSRF' => undef);
    is($status, 403, "$s: no CSRF token: 403");
    ($status) = api($t, $s, 'POST', 'promotions', promotion(), 'X-Promo-CSRF' => 'f' x 32);
    is($status, 403, "$s: a wrong CSRF token: 403");
    ($status) = api($t, $s, 'POST', 'promotions', 'name=x', 'Content-Type' => 'application/x-www-form-urlencoded');
    is($status, 415, "$s: not JSON: 415");
    ($status) = api($t, $s, 'POST', 'promotions', '{"name":"' . ('x' x 70000) . '"}');
    is($status, 413, "$s: over 64 KB: 413");
    is(count('SELECT count(*) FROM promo.promotions'), $before, "$s: nothing was written by refused requests");

    # Create, read, update, switch.
    ($status, $data) = api($t, $s, 'POST', 'promotions',
        promotion(name => "Year end $s", enabled => JSON::PP::false, discount => {code => uc("YEAREND$s"),
            percent_off => 30, duration => 'once', stripe_coupon => 'coupon_30'}));
    is($status, 201, "$s: created") or diag(explain($data));
    my $id = $data->{id};
    ok($id, "$s: with an id");
    is($data->{discount}{percent_off}, 30, "$s: the discount as given");
    ($status, $data) = api($t, $s, 'GET', "promotions/$id");
    is($data->{name}, "Year end $s", "$s: read back");
    ($status, $data) = api($t, $s, 'PUT', "promotions/$id", promotion(name => "Year end $s", headline => 'New headline'));
    is($status, 200, "$s: updated");
    is($data->{headline}, 'New headline', "$s: the change is there");
    ($status, $data) = api($t, $s, 'POST', "promotions/$id/disable");
    ok($status == 200 && !$data->{enabled}, "$s: switched off");
    ($status, $data) = api($t, $s, 'GET', 'promotions');
    ok((grep { $_->{id} == $id } @{$data->{promotions}}), "$s: in the list");
    is((api($t, $s, 'GET', 'promotions/999999'))[0], 404, "$s: unknown id: 404");
    is((api($t, $s, 'DELETE', "promotions/$id"))[0], 405, "$s: DELETE is not a method here: 405");
    is((api($t, $s, 'GET', 'nothing'))[0], 404, "$s: unknown route: 404");

    # Switched on through this server: the banner shows on the other one within PromoRefresh (1 s here).
    my $other = $s eq 'apache' ? 'nginx' : 'apache';
    ($status) = api($t, $s, 'POST', "promotions/$id/enable");
    is($status, 200, "$s: switched on");
    my $t0 = time;
    my $seen;
    while (time - $t0 < 5) {
        last if ($seen = $t->get($other, '/promo/page.html')->{content} =~ /wm-promo-$id\b/);
        sleep 0.2;
    }
    ok($seen, "$s: the banner shows on $other");
    cmp_ok(time - $t0, '<', 3, "$s: within PromoRefresh and a request (" . sprintf('%.1f', time - $t0) . ' s)');
    api($t, $s, 'POST', "promotions/$id/disable");
}

done_testing();
