#!/usr/bin/perl
# The headless browser the page tests use (tests/lib/Browser.pm -> tests/node/browser.js -> playwright-core ->
# Debian's chromium): a static page from both servers at phone and desktop widths (title, screenshot, no
# horizontal scroll), then mod_promo's editors' page (mod_promo/admin/promo_admin.html) against a stubbed API:
# the list, switching a promotion on, the server's refusal shown next to its field, what the page sends, and the
# banner previews at 1280 and 375 px.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use JSON::PP;
use POSIX qw(strftime);
use Browser;

BEGIN {
    unless (Browser::available()) {
        plan skip_all => 'no headless browser: ' . Browser::unavailable_reason();
    }
}
use ModTest;

my $t = ModTest->new();
$t->start_servers();

sub png_ok {
    my ($path, $name) = @_;
    my $head = '';
    if (open(my $fh, '<:raw', $path)) { read($fh, $head, 8); close $fh }
    ok(-s $path && $head eq "\x89PNG\r\n\x1a\n", "$name: screenshot is a PNG") or diag("$path: " . (-s $path // 'missing'));
}

# --------------------------------------------------------------------------------------------- static page
for my $s ($t->servers) {
    for my $width (375, 1280) {
        my $shot = $t->prefix . "/index-$s-$width.png";
        my $r = Browser::run([
            {goto => $t->url($s, '/index.html'), width => $width, height => 800},
            {eval => 'document.title'},
            {eval => 'document.querySelector("h1").getBoundingClientRect().width > 0'},
            {screenshot => $shot, fullPage => JSON::PP::true},
        ]);
        ok($r->{ok}, "$s at $width px: the steps ran") or diag(explain($r));
        my $page = $r->{results}[0] // {};
        is($page->{status}, 200, "$s at $width px: 200");
        is($page->{clientWidth}, $width, "$s at $width px: viewport as asked");
        is($r->{results}[1], 'modtest', "$s at $width px: document.title");
        ok($r->{results}[2], "$s at $width px: laid out");
        cmp_ok($page->{scrollWidth} // 1e9, '<=', $page->{clientWidth} // 0, "$s at $width px: no horizontal scroll");
        png_ok($shot, "$s at $width px");
    }
}

# A failing step says which one and why.
my $r = Browser::run([{goto => $t->url('nginx', '/index.html')}, {waitFor => '#not-there', timeout => 300}]);
ok(!$r->{ok} && $r->{step} == 1 && $r->{error} =~ /not-there|Timeout/i, 'a failing step is reported with its index')
    or diag(explain($r));

# ------------------------------------------------------------------------------- the editors' page, stubbed
my $page_file = "$FindBin::Bin/../../mod_promo/admin/promo_admin.html";
my $html = do { local $/; open(my $fh, '<:raw', $page_file) or die "$page_file: $!\n"; <$fh> };
is(scalar(() = $html =~ /\{\{CSRF\}\}/g), 1, 'the page has the CSRF placeholder once');
like($html, qr/<meta name="promo-csrf" content="\{\{CSRF\}\}">/, 'in its meta element');
unlike($html, qr/<(?:script|link|img|iframe)[^>]+(?:src|href)="(?:https?:)?\/\//i, 'no external resources');

my $TOKEN = '0123456789abcdef0123456789abcdef';
my $CSP = "default-src 'self'; img-src * data:; style-src 'self' 'unsafe-inline'; "
    . "script-src 'self' 'unsafe-inline'; frame-ancestors 'none'";    # what mod_promo sends with the page
sub iso { strftime('%Y-%m-%dT%H:%M:%SZ', gmtime($_[0])) }
my $now = time;
my %common = (audience => 'everyone', plans => [], paths => [], weight => 100, text => 'Save on your first year.',
    cta_label => 'Subscribe', cta_url => '/subscribe.html', image_wide => undef, image_narrow => undef,
    image_alt => undef, bg_color => '#1d3557', fg_color => '#ffffff', cta_bg_color => '#e63946',
    cta_fg_color => '#ffffff', dismiss_days => 7);
my $live = {%common, id => 7, name => 'Fish & <b>chips</b>', starts_at => iso($now - 86400),
    ends_at => iso($now + 86400), enabled => JSON::PP::true, headline => 'Congress offer',
    discount => {code => 'CONGRESS30', percent_off => 30, duration => 'once', stripe_coupon => 'coupon_c30',
        max_redemptions => 0},
    counts => {impressions => 2000, clicks => 50, redemptions => 3}};
my $later = {%common, id => 8, name => 'Winter sale', starts_at => iso($now + 7 * 86400), ends_at => iso($now + 14 * 86400),
    enabled => JSON::PP::false, audience => 'plans', plans => ['digital'], weight => 30, headline => 'Winter',
    discount => undef, counts => {impressions => 0, clicks => 0, redemptions => 0}};
my $later_on = {%$later, enabled => JSON::PP::true};
my $live_days = {%$live, days => [{day => '2026-11-01', impressions => 1200, clicks => 30, redemptions => 2},
    {day => '2026-11-02', impressions => 800, clicks => 20, redemptions => 1}]};

my $base = $t->url('nginx', '/stub/promo/admin/');    # an origin of the harness; every request below is stubbed
my $long = 'Supercalifragilisticexpialidocious' x 3;    # one 102-character word
my @steps = (
    {route => ['**/stub/promo/admin/', undef, 200], file => $page_file, replace => {'{{CSRF}}' => $TOKEN},
        headers => {'Content-Security-Policy' => $CSP}},
    {route => ['**/stub/promo/admin/api/promotions', {promotions => [$later, $live]}, 200], method => 'GET'},
    {route => ['**/stub/promo/admin/api/promotions/7', $live_days, 200], method => 'GET'},
    {route => ['**/stub/promo/admin/api/promotions/8/enable', $later_on, 200], method => 'POST'},
    {route => ['**/stub/promo/admin/api/promotions', {error => 'ends_at must be after starts_at', field => 'ends_at'}, 400],
        method => 'POST'},
    {goto => $base, width => 1280, height => 900},                                             # 5
    {waitFor => 'tr[data-id="7"]'},
    {eval => '[...document.querySelectorAll("#rows tr")].map(tr => [tr.dataset.id, tr.querySelector("th").textContent,'
        . ' tr.querySelector(".badge").textContent, tr.querySelector("button.toggle").getAttribute("aria-pressed"),'
        . ' tr.cells[8].textContent])'},
    {eval => 'document.querySelectorAll("#rows b").length'},
    {click => 'tr[data-id="8"] button.toggle'},
    {waitFor => 'tr[data-id="8"] button.toggle[aria-pressed="true"]'},                        # 10
    {waitForText => ['#status', 'switched on', 3000]},
    {eval => 'document.querySelector(\'tr[data-id="8"] .badge\').textContent'},
    {click => '#new-promotion'},
    {fill => ['[name="name"]', 'Year end'], timeout => 3000},
    {fill => ['[name="starts_at"]', '2026-12-01T10:00']},                                      # 15
    {fill => ['[name="ends_at"]', '2026-12-31T23:30']},
    {fill => ['[name="headline"]', $long]},
    {fill => ['[name="text"]', 'Fish & <chips> "quoted"']},
    {fill => ['[name="cta_label"]', 'Subscribe now']},
    {fill => ['[name="cta_url"]', '/subscribe.html']},                                         # 20
    {check => '[name="discount"]'},
    {fill => ['[name="discount.code"]', 'yearend']},
    {check => '#f-kind-amount'},
    {fill => ['[name="discount.amount_off"]', '20.00']},
    {click => '#save'},                                                                         # 25
    {waitForText => ['#e-ends_at', 'ends_at must be after starts_at', 3000]},
    {eval => '[document.activeElement.name, document.querySelector("[name=ends_at]").getAttribute("aria-invalid"),'
        . ' document.querySelector("#status").textContent, document.querySelector("#status").getAttribute("aria-live")]'},
    {requests => 'api/promotions'},
    {sleep => 300},
    {eval => 'Object.fromEntries(["wide", "narrow"].map(k => { const f = document.querySelector("#preview-" + k),'   # 30
        . ' d = f.contentDocument, a = d.querySelector("aside.wm-promo.wm-promo-preview"); return [k, {'
        . ' width: d.documentElement.clientWidth, scrollWidth: d.documentElement.scrollWidth,'
        . ' aside: !!a, asideWidth: a ? a.getBoundingClientRect().width : 0,'
        . ' headline: a ? a.querySelector(".wm-promo-headline").textContent : null,'
        . ' text: a ? a.querySelector(".wm-promo-text").textContent : null,'
        . ' cta: a ? a.querySelector("a.wm-promo-cta").textContent : null,'
        . ' dismiss: a ? !!a.querySelector("button.wm-promo-close") : false,'
        . ' elements: a ? a.querySelectorAll("*").length : 0,'
        . ' shown: f.getBoundingClientRect().width > 50 }]; }))'},
    {screenshot => $t->prefix . '/promo-admin-1280.png', fullPage => JSON::PP::true},
    {click => 'tr[data-id="7"] button.edit'},
    {waitForText => ['#editor-title', 'chips', 3000]},
    {eval => '[document.querySelector("[name=name]").value, document.querySelector("[name=\'discount.code\']").value,'
        . ' document.querySelector("[name=\'discount.percent_off\']").value, document.querySelector("[name=discount]").checked,'
        . ' document.querySelectorAll("#days tbody tr").length, document.querySelector("#days tbody tr th").textContent]'},
    {goto => $base, width => 375, height => 800},                                              # 35
    {waitFor => 'tr[data-id="7"]'},
    {click => 'tr[data-id="7"] button.edit'},
    {waitForText => ['#editor-title', 'chips', 3000]},
    {sleep => 300},
    {eval => '(() => { const d = document.querySelector("#preview-narrow").contentDocument;'         # 40
        . ' return [d.documentElement.scrollWidth, d.documentElement.clientWidth,'
        . ' document.documentElement.scrollWidth, document.documentElement.clientWidth]; })()'},
    {screenshot => $t->prefix . '/promo-admin-375.png', fullPage => JSON::PP::true},
    {eval => '[...document.querySelectorAll("input, select, textarea")].filter(e => !e.labels.length).map(e => e.name)'},
    {route => ['**/stub/promo/admin/api/promotions/7/disable', {%$live, enabled => JSON::PP::false}, 200], method => 'POST'},
    {press => ['tr[data-id="7"] button.toggle', 'Space']},                                   # 44
    {waitFor => 'tr[data-id="7"] button.toggle[aria-pressed="false"]'},
    {eval => 'document.activeElement.matches(\'tr[data-id="7"] button.toggle\')'},
);
$r = Browser::run(\@steps, context => {timezoneId => 'Europe/Paris', locale => 'en-GB'});
ok($r->{ok}, "editors' page: the steps ran") or diag(explain($r));
my $res = $r->{results};
is($res->[5]{status}, 200, "editors' page: served");
cmp_ok($res->[5]{scrollWidth}, '<=', $res->[5]{clientWidth}, "editors' page: no horizontal scroll at 1280 px");
is_deeply($res->[7], [['8', 'Winter sale', 'off', 'false', "\x{2014}"], ['7', 'Fish & <b>chips</b>', 'live', 'true', '2.5%']],
    "editors' page: both promotions listed in the API's order with status, switch and CTR") or diag(explain($res->[7]));
is($res->[8], 0, "editors' page: names are text, not markup");
is($res->[12], 'scheduled', "editors' page: one click switches a promotion on");

my @sent = @{$res->[28] // []};
my ($enable) = grep { $_->{url} =~ m{/8/enable\z} } @sent;
ok($enable && $enable->{method} eq 'POST', "editors' page: the switch POSTs to .../8/enable");
is($enable && $enable->{headers}{'x-promo-csrf'}, $TOKEN, "editors' page: with the CSRF token");
my ($post) = grep { $_->{method} eq 'POST' && $_->{url} =~ m{/api/promotions\z} } @sent;
ok($post, "editors' page: the form POSTs to api/promotions");
is($post && $post->{headers}{'x-promo-csrf'}, $TOKEN, "editors' page: with the CSRF token");
like($post && $post->{headers}{'content-type'} // '', qr{^application/json}, "editors' page: as JSON");
my $body = eval { JSON::PP->new->decode($post->{body}) } // {};
is_deeply([sort keys %$body], [sort qw(name starts_at ends_at enabled audience plans paths weight headline text
    cta_label cta_url image_wide image_narrow image_alt bg_color fg_color cta_bg_color cta_fg_color dismiss_days discount)],
    "editors' page: only the API's members (no id, counts, days)");
is($body->{starts_at}, '2026-12-01T09:00:00Z', "editors' page: local time (Paris) sent as UTC");
is($body->{ends_at}, '2026-12-31T22:30:00Z', "editors' page: the end too");
is($body->{text}, 'Fish & <chips> "quoted"', "editors' page: text as typed");
ok(!$body->{enabled} && JSON::PP::is_bool($body->{enabled}), "editors' page: a new promotion starts switched off");
is_deeply($body->{discount}, {code => 'YEAREND', amount_off => 2000, currency => 'eur', duration => 'once'},
    "editors' page: amount discount in cents, code upper-cased") or diag(explain($body->{discount}));
is_deeply($res->[27], ['ends_at', 'true', 'Not saved: ends_at must be after starts_at', 'polite'],
    "editors' page: the server's refusal next to its field, focused, and announced") or diag(explain($res->[27]));

my $pv = $res->[30] // {};
for my $k (qw(wide narrow)) {
    my $want = $k eq 'wide' ? 1280 : 375;
    my $p = $pv->{$k} // {};
    is($p->{width}, $want, "preview $k: $want px");
    ok($p->{aside} && $p->{shown}, "preview $k: the banner renders");
    cmp_ok($p->{scrollWidth} // 1e9, '<=', $want, "preview $k: no horizontal overflow");
    is($p->{headline}, $long, "preview $k: headline");
    is($p->{text}, 'Fish & <chips> "quoted"', "preview $k: text as text");
    is($p->{cta}, 'Subscribe now', "preview $k: call to action");
    ok($p->{dismiss}, "preview $k: dismiss button");
}
cmp_ok($pv->{wide}{asideWidth} // 0, '>', $pv->{narrow}{asideWidth} // 1e9, 'previews: the wide banner is wider');
is($pv->{wide}{elements}, $pv->{narrow}{elements}, 'previews: same markup at both widths');
png_ok($t->prefix . '/promo-admin-1280.png', "editors' page at 1280 px");

is_deeply($res->[34], ['Fish & <b>chips</b>', 'CONGRESS30', '30', JSON::PP::true, 2, '2026-11-02'],
    "editors' page: editing fills the form and the per-day counts, newest day first") or diag(explain($res->[34]));
my ($nsw, $ncw, $psw, $pcw) = @{$res->[40] // []};
ok(defined $nsw && $nsw <= $ncw && $ncw == 375, "editors' page at 375 px: the narrow preview does not overflow")
    or diag(explain($res->[40]));
ok(defined $psw && $psw <= $pcw, "editors' page at 375 px: no horizontal scroll") or diag(explain($res->[40]));
png_ok($t->prefix . '/promo-admin-375.png', "editors' page at 375 px");
is_deeply($res->[42], [], "editors' page: every input has a label");
ok($res->[46], "editors' page: switched off from the keyboard, focus kept on the switch");
# (the stubbed 400 is logged by Chromium as a failed resource: not an error of the page)
my @errors = grep { $_->{text} !~ /Failed to load resource: the server responded with a status of 400/ } @{$r->{errors} // []};
is_deeply(\@errors, [], "editors' page: no script errors, no CSP violations") or diag(explain(\@errors));

done_testing();
