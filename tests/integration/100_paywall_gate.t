#!/usr/bin/perl
# mod_paywall's gate on both servers: plans, subscription statuses (grace, cancel at period end), the teaser cut on
# static HTML and on PHP output (also flushed byte by byte), media refused, structured data, crawler ranges by
# address only, the redirect and status denials, PAYWALL_* seen by PHP, identity from mod_session_shared.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use HTTP::Tiny;
use POSIX qw(strftime);
use ModTest;
use PaywallConf qw(paywall_server paywall_location merge_conf);

my $t = ModTest->new(memcached => 2, postgres => 1, php => 1);
$t->write_file('paywall.secret', "test-secret-0123456789abcdef\n");
$t->write_file('teaser.html', qq{<div class="cta">SUBSCRIBE-CTA</div>});
$t->write_file('crawlers.json', qq({"creationTime":"2026-11-01T00:00:00","prefixes":[{"ipv4Prefix":"127.0.0.2/32"},
  {"ipv4Prefix":"66.249.64.0/27"},{"ipv6Prefix":"2001:4860:4801:10::/64"}]}));

my @server = ('PaywallPostgres "@PG@"', 'PaywallMemcached "@MC@"', 'PaywallSecretFile @TMP@/paywall.secret',
    'PaywallUser header:X-User', 'PaywallCrawlerRanges @TMP@/crawlers.json', 'PaywallPlan digital price_digital',
    'PaywallPlan print price_print print', 'PaywallPlan premium price_premium');

sub start {
    my (%o) = @_;
    my %conf = merge_conf([paywall_server(@server, @{$o{server} // []})],
        [paywall_location('/articles/', ['Paywall On', 'PaywallRequire digital print premium',
            $o{deny} // 'PaywallDeny teaser', 'PaywallTeaserFile @TMP@/teaser.html',
            'PaywallStructuredData .article-body'])],
        [paywall_location('/premium/', ['Paywall On', 'PaywallRequire premium', 'PaywallDeny status 402'])],
        [paywall_location('/promo/', ['Paywall Observe', 'PaywallRequire digital print premium', 'PaywallMeter 1 30d'])],
        @{$o{more} // []});
    $t->start_servers(%conf, nginx_php => PaywallConf::paywall_php_params());
}

start();
# The first gated request creates the paywall schema.
$t->get('apache', '/articles/story.html');
my $now = time;
my @subs = (    # user, plan, status, period end, past_due_since, cancel_at_period_end
    ['u-digital', 'digital', 'active', $now + 30 * 86400, undef, 'false'],
    ['u-premium', 'premium', 'active', $now + 30 * 86400, undef, 'false'],
    ['u-trial', 'print', 'trialing', $now + 10 * 86400, undef, 'false'],
    ['u-late', 'digital', 'past_due', $now + 20 * 86400, $now - 86400, 'false'],
    ['u-lapsed', 'digital', 'past_due', $now + 20 * 86400, $now - 8 * 86400, 'false'],
    ['u-gone', 'digital', 'canceled', $now + 20 * 86400, undef, 'false'],
    ['u-leaving', 'digital', 'active', $now + 5 * 86400, undef, 'true'],
    ['u-left', 'digital', 'active', $now - 60, undef, 'true'],
    ['u-unpaid', 'digital', 'unpaid', $now + 20 * 86400, undef, 'false'],
);
my $n = 0;
for my $s (@subs) {
    my ($user, $plan, $status, $end, $since, $cape) = @$s;
    $n++;
    $t->psql("INSERT INTO paywall.customers (customer_id, user_id, livemode) VALUES ('cus_$n', '$user', false)");
    $t->psql("INSERT INTO paywall.subscriptions (subscription_id, customer_id, user_id, plan, price_id, status,"
        . " current_period_end, cancel_at_period_end, past_due_since, livemode, last_event_created, last_event_id)"
        . " VALUES ('sub_$n', 'cus_$n', '$user', '$plan', 'price_$plan', '$status', to_timestamp($end), $cape, "
        . (defined $since ? "to_timestamp($since)" : 'NULL') . ", false, now(), 'evt_$n')");
}

sub page {
    my ($s, $path, $user, %h) = @_;
    return $t->get($s, $path, {($user ? ('X-User' => $user) : ()), %h});
}

sub length_ok {
    my ($r, $label) = @_;
    my $cl = $r->{headers}{'content-length'};
    ok(!defined $cl || $cl == length($r->{content}), "$label: Content-Length matches the body");
}

for my $s (qw(apache nginx)) {
    # Teaser for a visitor without a subscription, static HTML.
    my $r = page($s, '/articles/story.html');
    is($r->{status}, 200, "$s: anonymous gets the teaser page");
    like($r->{content}, qr/TEASER-TEXT/, "$s: teaser kept");
    unlike($r->{content}, qr/FULL-TEXT/, "$s: the article after the marker is withheld");
    like($r->{content}, qr/SUBSCRIBE-CTA<\/div>\s*\z/, "$s: the call to action ends the page");
    like($r->{content}, qr{<script type="application/ld\+json">\{"\@context":"https://schema.org".*"isAccessibleForFree":false.*"cssSelector":"\.article-body"\}\}</script>\s*</head>}s,
        "$s: JSON-LD before </head>");
    length_ok($r, "$s teaser");
    like($r->{headers}{'cache-control'} // '', qr/\bprivate\b/, "$s: gated answers are private to shared caches");

    # Subscribers get the whole page, with the same markup (not cloaking).
    for my $u (qw(u-digital u-trial u-premium u-late u-leaving)) {
        $r = page($s, '/articles/story.html', $u);
        ok($r->{status} == 200 && $r->{content} =~ /FULL-TEXT/ && $r->{content} !~ /SUBSCRIBE-CTA/,
            "$s: $u reads the whole article") or diag("$r->{status} $r->{content}");
    }
    like($r->{content}, qr/"isAccessibleForFree":false/, "$s: subscribers' page carries the markup too");
    length_ok($r, "$s full page");
    for my $u (qw(u-lapsed u-gone u-left u-unpaid)) {
        $r = page($s, '/articles/story.html', $u);
        ok($r->{status} == 200 && $r->{content} !~ /FULL-TEXT/ && $r->{content} =~ /SUBSCRIBE-CTA/,
            "$s: $u gets the teaser") or diag("$r->{status} $r->{content}");
    }

    # PHP output: the same cut, also when PHP flushes one byte at a time; PHP saw the decision.
    my $whole = page($s, '/articles/story.php');
    like($whole->{content}, qr/<h1 data-access="denied">/, "$s: PHP saw PAYWALL_ACCESS=denied");
    unlike($whole->{content}, qr/FULL-TEXT/, "$s: PHP teaser withheld the rest");
    my $flushed = page($s, '/articles/story.php?flush=1');
    is($flushed->{content}, $whole->{content}, "$s: byte-by-byte output gives the same teaser");
    $r = page($s, '/articles/story.php', 'u-digital');
    like($r->{content}, qr/<h1 data-access="granted">.*FULL-TEXT/s, "$s: PHP saw granted and sent it all");

    # Variables for the backend.
    my $env = ModTest::json(page($s, '/articles/env.php', 'u-premium'));
    is($env->{PAYWALL_ACCESS}, 'granted', "$s: PAYWALL_ACCESS");
    is($env->{PAYWALL_PLAN}, 'premium', "$s: PAYWALL_PLAN");
    like($env->{PAYWALL_CSRF_TOKEN} // '', qr/^\d+\.[A-Za-z0-9_-]{43}\z/, "$s: PAYWALL_CSRF_TOKEN for a known user");

    # A conditional request that would match any version gets the teaser, not a 304 for the article it never had.
    $r = page($s, '/articles/story.html', undef, 'If-None-Match' => '*',
        'If-Modified-Since' => strftime('%a, %d %b %Y %H:%M:%S GMT', gmtime(time + 60)));
    ok($r->{status} == 200 && $r->{content} =~ /SUBSCRIBE-CTA/, "$s: a conditional request gets the teaser, not 304")
        or diag("$r->{status} $r->{content}");
    is(page($s, '/index.html', undef, 'If-None-Match' => '*')->{status}, 304,
        "$s: (the same condition outside the paywall does give 304)");

    # A Range request gets the teaser, not a slice of the article.
    $r = page($s, '/articles/story.html', undef, Range => 'bytes=200-400');
    ok($r->{status} == 200 && $r->{content} =~ /SUBSCRIBE-CTA/ && $r->{content} !~ /FULL-TEXT/,
        "$s: a Range request gets the teaser") or diag("$r->{status} $r->{content}");

    # Media cannot be cut: refused, with the call to action.
    $r = page($s, '/articles/issue.pdf');
    is($r->{status}, 403, "$s: a PDF for a visitor without a subscription is refused");
    unlike($r->{content}, qr/FULL-PDF/, "$s: none of the PDF is sent");
    $r = page($s, '/articles/issue.pdf', 'u-digital');
    ok($r->{status} == 200 && $r->{content} =~ /FULL-PDF/, "$s: subscribers get the PDF");

    # A page without the marker gives nothing away, and the log says why.
    my $mark = $t->log_mark($s);
    $r = page($s, '/articles/nomarker.html');
    ok($r->{content} !~ /FULL-TEXT/ && $r->{content} =~ /SUBSCRIBE-CTA/, "$s: no marker: only the call to action");
    like($t->error_log($s, $mark), qr/no marker/, "$s: the missing marker is logged");

    # Plans: digital does not open premium, which answers a bare status.
    is(page($s, '/premium/story.html', 'u-digital')->{status}, 402, "$s: digital does not open premium (402)");
    is(page($s, '/premium/story.html', 'u-premium')->{status}, 200, "$s: premium opens premium");
    is(page($s, '/premium/story.html')->{status}, 402, "$s: anonymous gets 402 on premium");

    # A malformed user id is nobody: no error.
    $r = page($s, '/articles/story.html', 'bad user!');
    ok($r->{status} == 200 && $r->{content} !~ /FULL-TEXT/, "$s: an invalid user id is treated as anonymous");

    # Crawlers: by address only.
    $r = page($s, '/articles/story.html', undef, 'User-Agent' => 'Mozilla/5.0 (compatible; Googlebot/2.1)');
    unlike($r->{content}, qr/FULL-TEXT/, "$s: a Googlebot User-Agent alone does not open the gate");
    my $crawler = HTTP::Tiny->new(local_address => '127.0.0.2', timeout => 10, max_redirect => 0);
    $r = $crawler->get($t->url($s, '/articles/story.php'));
    like($r->{content}, qr/<h1 data-access="crawler">.*FULL-TEXT/s, "$s: a listed crawler address reads it all");
}

# Paywall Observe: the decision is published on an ungated page (a home page, a subscribe page), nothing is
# withheld and no meter is used.
for my $s (qw(apache nginx)) {
    my $env = ModTest::json(page($s, '/promo/env.php', 'u-digital'));
    is($env->{PAYWALL_ACCESS}, 'granted', "$s: observed: a subscriber is known as one");
    is($env->{PAYWALL_PLAN}, 'digital', "$s: with the plan");
    for (1 .. 3) {
        my $r = page($s, '/promo/env.php');
        is($r->{status}, 200, "$s: observed: an anonymous visitor is not refused");
        is(ModTest::json($r)->{PAYWALL_ACCESS}, 'denied', "$s: but known as no subscriber");
        ok(!ModTest::set_cookie($r, 'paywall_meter'), "$s: and no meter is started");
    }
    unlike(page($s, '/promo/page.html')->{headers}{'cache-control'} // '', qr/private/, "$s: observed pages stay cacheable");
}

# Redirect denial, with the way back.
start(deny => 'PaywallDeny redirect /subscribe.html');
for my $s (qw(apache nginx)) {
    my $r = page($s, '/articles/story.html?from=home&x=1');
    is($r->{status}, 302, "$s: redirect denial");
    # nginx makes it absolute (absolute_redirect on, its default), Apache sends it as configured.
    like($r->{headers}{location}, qr{^(http://127\.0\.0\.1:\d+)?/subscribe\.html\?return=%2Farticles%2Fstory\.html%3Ffrom%3Dhome%26x%3D1\z},
        "$s: the redirect carries the return URL");
    is(page($s, '/articles/story.html', 'u-digital')->{status}, 200, "$s: subscribers are not redirected");
}

# Identity from mod_session_shared, as a PHP app that logs its users in sets it.
SKIP: {
    skip 'mod_session_shared not built', 4 unless $t->has_module('session_shared');
    $t->start_servers(merge_conf(
        [apache => "SessionShared On\nSessionSharedMemcached \"\@MC\@\"\nSessionSharedExport user_id",
         nginx => "session_shared on;\nsession_shared_memcached \"\@MC\@\";\nsession_shared_export user_id;"],
        [paywall_server(grep { !/PaywallUser/ } @server)],
        [paywall_location('/articles/', ['Paywall On', 'PaywallRequire digital', 'PaywallDeny status 403'])]),
        nginx_php => PaywallConf::paywall_php_params());
    for my $s (qw(apache nginx)) {
        my $sid = ModTest::cookie_from($t->get($s, '/session.php?set=user_id&value=u-digital'), 'PHPSESSID');
        is($t->get($s, '/articles/story.html', {Cookie => "PHPSESSID=$sid"})->{status}, 200,
            "$s: the session's user_id opens the gate");
        is($t->get($s, '/articles/story.html')->{status}, 403, "$s: without the session, 403");
    }
}

done_testing();
