#!/usr/bin/perl
# Banner injection on both servers: static HTML and PHP output (also flushed byte by byte), each placement, nothing
# injected into JSON, HEAD or range requests, Content-Length right, path prefixes, schedule boundaries, audiences by
# mod_paywall's variables, weighted rotation, dismissal cookie, HTML-escaped text, counts of impressions and clicks.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use JSON::PP;
use Time::HiRes qw(sleep time);
use ModTest;
use PaywallConf qw(paywall_server paywall_location merge_conf);
use PromoConf qw(promo_conf promotion iso api);

my $t = ModTest->new(memcached => 1, postgres => 1, php => 1);
PromoConf::setup_files($t);
$t->write_file('paywall.secret', "paywall-secret-0123456789abcdef\n");

# mod_paywall decides who subscribes (X-User header, one subscriber) so that audiences can be tested.
my @paywall = ([paywall_server('PaywallPostgres "@PG@"', 'PaywallMemcached "@MC@"', 'PaywallUser header:X-User',
    'PromoUser header:X-User', 'PaywallPlan digital price_digital')],
    [paywall_location('/articles/', ['Paywall On', 'PaywallDeny teaser'], php_params => PaywallConf::promo_php_params())]);

sub start {
    my (%o) = @_;
    # Counts go through memcached here (220_promo_discount.t counts straight into PostgreSQL).
    $t->start_servers(promo_conf(%o, memcached => 1, more => [@paywall]));
}

start();
$t->get('apache', '/articles/story.html');    # creates the paywall schema
$t->psql("INSERT INTO paywall.customers (customer_id, user_id, livemode) VALUES ('cus_1', 'u-sub', false);"
    . "INSERT INTO paywall.subscriptions (subscription_id, customer_id, user_id, plan, price_id, status,"
    . " current_period_end, livemode, last_event_created, last_event_id) VALUES ('sub_1', 'cus_1', 'u-sub', 'digital',"
    . " 'price_digital', 'active', now() + interval '30 days', false, now(), 'evt_1')");

my %ids;
sub create {
    my ($key, %o) = @_;
    my ($status, $data) = api($t, 'apache', 'POST', 'promotions', promotion(%o));
    die "cannot create $key: $status " . JSON::PP->new->encode($data // {}) . "\n" unless $status == 201;
    return $ids{$key} = $data->{id};
}
sub switch { my ($key, $on) = @_; api($t, 'apache', 'POST', "promotions/$ids{$key}/" . ($on ? 'enable' : 'disable')) }
sub settle { sleep 1.3 }    # PromoRefresh 1 s

create('main', name => 'Main', paths => ['/promo/'], headline => 'Fish & chips "quoted"', text => "It's 30% off",
    weight => 100);
settle();

sub banner_ids { my ($html) = @_; return [$html =~ /<aside[^>]*class="wm-promo wm-promo-(\d+)"/g] }

for my $s (qw(apache nginx)) {
    my $r = $t->get($s, '/promo/page.html');
    is($r->{status}, 200, "$s: the page");
    is_deeply(banner_ids($r->{content}), [$ids{main}], "$s: one banner, the live promotion's");
    like($r->{content}, qr/<body class="home" data-note="a > inside quotes">\s*<aside/,
        "$s: right after the <body ...> start tag, a quoted > notwithstanding");
    like($r->{content}, qr/Fish &amp; chips &quot;quoted&quot;/, "$s: banner text is HTML-escaped");
    my $cl = $r->{headers}{'content-length'};
    ok(!defined $cl || $cl == length $r->{content}, "$s: Content-Length matches");

    my $php = $t->get($s, '/promo/page.php');
    my $flushed = $t->get($s, '/promo/page.php?flush=1');
    is(scalar @{banner_ids($php->{content})}, 1, "$s: banner in PHP output");
    is(scalar @{banner_ids($flushed->{content})}, 1, "$s: banner in PHP output flushed byte by byte");
    (my $a = $php->{content}) =~ s/<aside.*<\/aside>//s;
    (my $b = $flushed->{content}) =~ s/<aside.*<\/aside>//s;
    is($b, $a, "$s: the page around it is intact, byte by byte or not");

    is(scalar @{banner_ids($t->get($s, '/promo/env.php')->{content})}, 0, "$s: no banner in JSON");
    $r = $t->request('HEAD', $s, '/promo/page.html');
    ok($r->{status} == 200 && !length $r->{content}, "$s: HEAD untouched");
    $r = $t->get($s, '/promo/page.html', {Range => 'bytes=0-20'});
    is($r->{status}, 206, "$s: a range request is served as a range");
    is(scalar @{banner_ids($r->{content})}, 0, "$s: without a banner");
    is(scalar @{banner_ids($t->get($s, '/index.html')->{content})}, 0, "$s: not outside the promotion's paths");

    # Dismissed: the cookie the banner's button sets hides it.
    $r = $t->get($s, '/promo/page.html', {Cookie => "promo_dismissed=7.$ids{main}.x"});
    is(scalar @{banner_ids($r->{content})}, 0, "$s: a dismissed banner stays away");
}

# Placements.
for my $placement ('before-body-end', 'marker <!--promo-->') {
    start(placement => $placement);
    for my $s (qw(apache nginx)) {
        for my $path ('/promo/page.html', '/promo/page.php?flush=1') {
            my $c = $t->get($s, $path)->{content};
            my $where = $placement eq 'before-body-end' ? qr{</aside>\s*</body>} : qr{<p>PAGE-CONTENT</p><aside.*</aside></main>}s;
            like($c, $where, "$s: $placement placement on $path");
            unlike($c, qr/<!--promo-->/, "$s: marker replaced") if $placement =~ /marker/;
        }
    }
}
start();

# Schedule boundaries: a promotion starting in 2 s shows only from then on; one ending in 2 s stops.
switch('main', 0);
my $now = time;
create('later', name => 'Later', paths => ['/promo/'], starts_at => iso(int($now) + 3), ends_at => iso(int($now) + 3600));
create('ending', name => 'Ending', paths => ['/promo/'], starts_at => iso(int($now) - 60), ends_at => iso(int($now) + 3));
settle();
for my $s (qw(apache nginx)) {
    is_deeply(banner_ids($t->get($s, '/promo/page.html')->{content}), [$ids{ending}], "$s: before the boundary");
}
sleep(int($now) + 3.2 - time) if time < int($now) + 3.2;
for my $s (qw(apache nginx)) {
    is_deeply(banner_ids($t->get($s, '/promo/page.html')->{content}), [$ids{later}], "$s: after the boundary");
}
switch('later', 0);

# Audiences by mod_paywall's variables (on its gated location) and by login.
create('subs', name => 'Subscribers', audience => 'subscribers', paths => ['/articles/']);
create('nonsubs', name => 'Non-subscribers', audience => 'non-subscribers', paths => ['/articles/']);
create('plan', name => 'Digital plan', audience => 'plans', plans => ['digital'], paths => ['/articles/']);
settle();
for my $s (qw(apache nginx)) {
    my %seen;
    $seen{$_}++ for map { @{banner_ids($t->get($s, '/articles/story.html', {'X-User' => 'u-sub'})->{content})} } 1 .. 30;
    ok(!$seen{$ids{nonsubs}} && $seen{$ids{subs}} && $seen{$ids{plan}}, "$s: a subscriber sees subscriber banners only");
    %seen = ();
    $seen{$_}++ for map { @{banner_ids($t->get($s, '/articles/story.html')->{content})} } 1 .. 10;
    is_deeply([keys %seen], [$ids{nonsubs}], "$s: a non-subscriber never sees subscriber banners");
}
switch($_, 0) for qw(subs nonsubs plan);

# Weighted rotation: 1 to 3.
create('w1', name => 'Weight 1', paths => ['/promo/'], weight => 10);
create('w3', name => 'Weight 3', paths => ['/promo/'], weight => 30);
settle();
for my $s (qw(apache nginx)) {
    my %n;
    $n{$_}++ for map { @{banner_ids($t->get($s, '/promo/page.html')->{content})} } 1 .. 400;
    my $share = ($n{$ids{w3}} // 0) / 400;
    ok($share > 0.65 && $share < 0.85, "$s: weights 1:3 give the heavier one about 75% (" . int(100 * $share) . '%)');
}

# Counts: impressions of the banners shown, clicks through the click handler.
my $imp_before = $t->psql("SELECT coalesce(sum(impressions), 0) FROM promo.daily_counts WHERE promotion_id = $ids{w1}") + 0;
for my $s (qw(apache nginx)) {
    my $r = $t->get($s, "/promo/click?id=$ids{w1}");
    is($r->{status}, 302, "$s: the click handler redirects");
    is($r->{headers}{location} =~ s{^http://[^/]+}{}r, '/subscribe.html', "$s: to the call to action");
    is($t->get($s, '/promo/click?id=987654')->{status}, 404, "$s: unknown promotion: 404");
}
switch('w3', 0);
settle();
$t->get($_, '/promo/page.html') for qw(apache nginx apache nginx);
sleep 1.3;
$t->get($_, '/index.html') for qw(apache nginx);    # a request after the refresh interval flushes the counts
sleep 1.3;
$t->get($_, '/promo/page.html') for qw(apache nginx);
my ($status, $data) = api($t, 'nginx', 'GET', "promotions/$ids{w1}");
cmp_ok($data->{counts}{clicks}, '>=', 2, 'both clicks counted (through memcached, moved to PostgreSQL by one node)');
cmp_ok($data->{counts}{impressions}, '>', $imp_before + 3, 'impressions counted on both servers');
ok(@{$data->{days} // []} >= 1 && $data->{days}[0]{day} =~ /^\d{4}-\d\d-\d\d\z/, 'counts per day');

done_testing();
