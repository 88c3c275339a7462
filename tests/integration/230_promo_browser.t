#!/usr/bin/perl
# mod_promo in a real browser (headless Chromium): an editor switches a promotion on in the editors' page served by
# one server; within PromoRefresh the banner appears on a page served by the other; at 375 and 1280 px it fits
# without horizontal scroll (screenshots kept in the test's prefix); the dismiss button and the Escape key hide it,
# and the cookie keeps it hidden on the next page. Both directions: Apache -> nginx and nginx -> Apache.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use JSON::PP;
use Time::HiRes qw(time);
use Browser;

BEGIN {
    plan skip_all => 'no headless browser: ' . Browser::unavailable_reason() unless Browser::available();
}
use ModTest;
use PromoConf qw(promo_conf promotion api);

my $t = ModTest->new(memcached => 1, postgres => 1, php => 1);
PromoConf::setup_files($t);
$t->start_servers(promo_conf(refresh => 2));

my $credentials = {username => 'editor', password => 'editor-pass'};

sub png_ok {
    my ($path, $name) = @_;
    my $head = '';
    if (open(my $fh, '<:raw', $path)) { read($fh, $head, 8); close $fh }
    ok(-s $path && $head eq "\x89PNG\r\n\x1a\n", "$name: screenshot taken") or diag("$path missing");
}

for my $pair (['apache', 'nginx'], ['nginx', 'apache']) {
    my ($editor_server, $reader_server) = @$pair;
    my ($status, $data) = api($t, 'apache', 'POST', 'promotions', promotion(name => "Browser $editor_server",
        enabled => JSON::PP::false, paths => ['/promo/'], headline => "Spring offer via $editor_server",
        text => 'One year of the journal, print and digital, with a long sentence that has to wrap on a phone screen.',
        dismiss_days => 7));
    is($status, 201, "$editor_server: promotion created switched off") or diag(explain($data));
    my $id = $data->{id};
    my $page = $t->url($reader_server, '/promo/page.html');
    unlike($t->get($reader_server, '/promo/page.html')->{content}, qr/wm-promo-$id\b/, "$reader_server: no banner yet");

    # The editor clicks the switch in the page.
    my $r = Browser::run([
        {goto => $t->url($editor_server, '/promo/admin/'), width => 1280, height => 900, httpCredentials => $credentials},
        {waitFor => qq{tr[data-id="$id"] button.toggle}},
        {click => qq{tr[data-id="$id"] button.toggle}},
        {waitFor => qq{tr[data-id="$id"] button.toggle[aria-pressed="true"]}, timeout => 5000},
        {screenshot => $t->prefix . "/admin-$editor_server.png"},
    ], context => {httpCredentials => $credentials});
    ok($r->{ok}, "$editor_server: the editor switched it on in the page") or diag(explain($r));
    my $switched = time;
    png_ok($t->prefix . "/admin-$editor_server.png", "$editor_server: editors' page");
    ok((api($t, $editor_server, 'GET', "promotions/$id"))[1]{enabled}, "$editor_server: stored as switched on");

    # The reader's page on the other server: the banner within PromoRefresh (2 s) plus a request.
    my $seen;
    while (time - $switched < 6) {
        last if ($seen = $t->get($reader_server, '/promo/page.html')->{content} =~ /wm-promo-$id\b/);
        select(undef, undef, undef, 0.2);
    }
    ok($seen, "$reader_server: the banner shows");
    cmp_ok(time - $switched, '<=', 2 + 1.5, "$reader_server: within PromoRefresh (" . sprintf('%.1f s', time - $switched) . ')');

    for my $width (375, 1280) {
        my $shot = $t->prefix . "/banner-$reader_server-$width.png";
        $r = Browser::run([
            {goto => $page, width => $width, height => 800},
            {waitFor => ".wm-promo-$id"},
            {eval => "(() => { const b = document.querySelector('.wm-promo-$id').getBoundingClientRect();"
                . " return {left: b.left, right: b.right, width: b.width, visible: b.height > 0}; })()"},
            {eval => 'document.documentElement.scrollWidth <= document.documentElement.clientWidth'},
            {screenshot => $shot},
        ]);
        ok($r->{ok}, "$reader_server at $width px: page loaded") or diag(explain($r));
        my $box = $r->{results}[2] // {};
        ok($box->{visible} && $box->{left} >= 0 && $box->{right} <= $width, "$reader_server at $width px: the banner fits")
            or diag(explain($box));
        ok($r->{results}[3], "$reader_server at $width px: no horizontal scroll");
        png_ok($shot, "$reader_server at $width px");
    }

    # Dismiss with the button, then with Escape; the cookie keeps it away on the next load.
    $r = Browser::run([
        {goto => $page, width => 375, height => 800},
        {waitFor => ".wm-promo-$id"},
        {click => ".wm-promo-$id button"},
        {eval => "document.querySelector('.wm-promo-$id') === null"},
        {eval => 'document.cookie'},
        {reload => JSON::PP::true},
        {eval => "document.querySelector('.wm-promo-$id') === null"},
    ]);
    ok($r->{ok}, "$reader_server: dismiss steps ran") or diag(explain($r));
    ok($r->{results}[3], "$reader_server: the button removes the banner");
    like($r->{results}[4] // '', qr/promo_dismissed=[^;]*\b$id\b/, "$reader_server: and remembers it in a cookie");
    ok($r->{results}[6], "$reader_server: still hidden after a reload");
    $r = Browser::run([
        {goto => $page, width => 1280, height => 800},
        {waitFor => ".wm-promo-$id"},
        {focus => ".wm-promo-$id a"},
        {press => [".wm-promo-$id a", 'Escape']},
        {eval => "document.querySelector('.wm-promo-$id') === null"},
    ]);
    ok($r->{ok} && $r->{results}[4], "$reader_server: Escape dismisses it from the keyboard") or diag(explain($r));

    api($t, $editor_server, 'POST', "promotions/$id/disable");
}

done_testing();
