#!/usr/bin/perl
# Resilience: nothing the modules write grows without bound, with all four modules on both servers.
#   - files: during a run of mixed traffic (sessions, metered pages, banners and clicks, bookings and their
#     notifications, availability), the only files under the test prefix that change are the servers' own logs
#     (and PostgreSQL's, memcached's and PHP's own files); nothing reaches the servers' stderr; the server processes
#     hold no file open for writing but their logs;
#   - memcached: every item has an expiry, within what each module documents (sessions: the idle timeout; the
#     module's session meta: 30 days; entitlements: 60 s; meters: the end of their period; promotion counters:
#     8 days); expired sessions and meters are gone once their time has passed;
#   - PostgreSQL: expired sessions are purged (SessionSharedPostgres), promotion counts move from memcached into
#     promo.daily_counts and the memcached counters are taken back to 0, outbox rows finished over 30 days ago are
#     purged (pending and recent ones stay), processed Stripe events over 30 days old are purged.
# The purges run at most once a minute per server process, first when a process starts: the test restarts the
# servers to see them at once. RESILIENCE_LONG=1 waits 80 s for the periodic purges instead.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use File::Find qw(find);
use File::Temp qw(tempdir);
use IO::Socket::INET;
use JSON::PP;
use Time::HiRes qw(sleep time);
use ModTest;
use Load;
use FakeGateway;
use StripeSign;
use SessionSharedConf qw(session_conf);
use PaywallConf qw(paywall_server paywall_location merge_conf);
use PromoConf qw(promo_conf promotion);
use BookingConf qw(booking_conf api sql_value ensure_schema tokyo_time);

plan skip_all => Load::unavailable_reason() if Load::unavailable_reason();

my $LONG = $ENV{RESILIENCE_LONG} ? 1 : 0;
my $IDLE = 3;            # SessionSharedIdleTimeout, and PHP's session.gc_maxlifetime
my $METER_PERIOD = 4;    # PaywallMeter 2 4s
my $WHSEC = 'whsec_test_0123456789abcdefghij';
my $TOKYO = 9 * 3600;
my @SERVERS = qw(apache nginx);

my $gw = FakeGateway->start(secret => 'notify-secret-0123456789abcdef');
my $t = ModTest->new(memcached => 2, postgres => 1, php => 1, php_ini => {'session.gc_maxlifetime' => $IDLE});
PromoConf::setup_files($t);
BookingConf::setup_files($t);
$t->write_file('paywall.secret', "paywall-secret-0123456789abcdef\n");
$t->write_file('webhook.secret', "$WHSEC\n");
my $loads = tempdir('resilience-disk-XXXXXX', TMPDIR => 1, CLEANUP => 1);    # wrk's files, outside the prefix

my %promo = promo_conf(memcached => 1, more => [
    [paywall_server('PaywallPostgres "@PG@"', 'PaywallMemcached "@MC@"', 'PaywallUser header:X-User',
        'PaywallSecretFile @TMP@/paywall.secret', 'PaywallPlan digital price_digital',
        'PaywallStripeWebhookSecretFile @TMP@/webhook.secret')],
    [paywall_location('/articles/', ['Paywall On', 'PaywallRequire digital', "PaywallMeter 2 ${METER_PERIOD}s",
        'PaywallDeny status 403'])],
    [paywall_location('/stripe/webhook', [], handler => 'paywall-stripe-webhook')],
    [booking_conf(notify_url => $gw->url, server => ['BookingReminder 0'])]]);
my %session = session_conf(postgres => 1, idle => $IDLE);
my %conf = map { $_ => "$session{$_}\n$promo{$_}" } qw(apache nginx nginx_php);
$t->start_servers(%conf);

# ------------------------------------------------------------------------------------------------------ set-up

$t->get('apache', '/articles/story.html');    # the paywall's schema
ensure_schema($t);
my ($SERVICE, $staff_ids) = BookingConf::tokyo_spa($t, id => 'kyoto-spa');
my ($STAFF) = values %$staff_ids;
my $DAY2 = int(time) + 2 * 86400 - ((int(time) + $TOKYO) % 86400);
my @t2 = gmtime($DAY2 + $TOKYO);
my $AVAILABILITY = sprintf '/booking/api/partners/kyoto-spa/availability?service=%d&from=%04d-%02d-%02d', $SERVICE,
    $t2[5] + 1900, $t2[4] + 1, $t2[3];

my ($st, $created) = PromoConf::api($t, 'apache', 'POST', 'promotions', promotion(name => 'Disk', paths => ['/promo/']));
is($st, 201, 'a live promotion on /promo/');
my $PROMO = $created->{id};


my $impressions = 0;    # every page sent with the banner, from the first
ok(ModTest::polled(5, sub { (grep { my $c = $t->get($_, '/promo/page.html')->{content}; $c =~ /wm-promo-$PROMO/ && ++$impressions }
    @SERVERS) == 2 }), 'both servers show the banner');

# Every file under the prefix: relative path => "size mtime"
sub files {
    my %f;
    my $p = $t->prefix;
    find({no_chdir => 1, wanted => sub {
        return unless -f $_;
        (my $rel = $File::Find::name) =~ s{^\Q$p\E/}{};
        my @st = stat _;
        $f{$rel} = [$st[7], $st[9]];
    }}, $p);
    return %f;
}

# ------------------------------------------------------------------------------------------------------ traffic

sleep 1.1;    # a changed file shows in its mtime even when its size stays
my %before = files();
my $traffic_from = time;

my (@sessions, $clicks);
for my $s (@SERVERS) {
    for my $n (1 .. 3) {
        my $r = $t->get($s, "/session.php?set=user_id&value=$s$n");
        push @sessions, ModTest::cookie_from($r, 'PHPSESSID') if $r->{status} == 200;
        $impressions++ if $t->get($s, '/promo/page.html', {Cookie => "PHPSESSID=$sessions[-1]"})->{content}
            =~ /wm-promo-$PROMO/;
    }
    for (1 .. 15) { $impressions++ if $t->get($s, '/promo/page.html')->{content} =~ /wm-promo-$PROMO/ }
    for (1 .. 2) { $clicks++ if $t->get($s, "/promo/click?id=$PROMO")->{status} == 302 }
    $t->get($s, '/articles/story.html', {'X-User' => "reader-$s-$_"}) for 1 .. 3;
    $t->get($s, '/articles/story.html') for 1 .. 2;    # anonymous: a meter cookie each
    for my $k (1 .. 2) {
        my $i = ($s eq 'apache' ? 0 : 2) + $k;
        my ($bst) = api($t, $s, 'POST', '/bookings', {partner => 'kyoto-spa', service => 0 + $SERVICE,
            staff => 0 + $STAFF, start => sprintf('%s', tokyo_time($DAY2 + 1800 * $i)),
            customer => {name => "Customer $i", email => "c$i\@example.com", phone => '+81 90-1234-5678'}});
        is($bst, 201, "$s: booking $k");
    }
}
is(scalar @sessions, 6, '6 sessions created by PHP');
my @data = map { $t->mc_session_key($_) } @sessions;
is(scalar(grep { $t->mc_find($_) } @data), 6, 'each one in memcached');


# wrk: a bit of everything, new sessions included (at a few per second: see docs/resilience.md on purge rates)
my @mixed = ({path => '/session.php'}, {path => '/index.html'}, {path => '/articles/story.html'},
    {path => $AVAILABILITY}, {path => '/promo/env.php?promo=NOPE'}, {path => '/env.php'});
my @runs = map { Load->start(url => $t->url($_, '/'), name => "$_ mixed traffic", dir => $loads, seconds => 5,
    connections => 2, delay_ms => 40, unique => ['X-User', "w-$_-"], requests => \@mixed) } @SERVERS;
for my $run (@runs) {
    my $r = $run->wait;
    note(Load::summary($r));
    ok(!$r->{failed} && $r->{requests} > 50, "$r->{name}: ran") or diag(Load::summary($r));
    is($r->{class}{'5xx'} // 0, 0, "$r->{name}: no 5xx") or diag(Load::summary($r));
}
my $traffic_to = time;

# ---------------------------------------------------------------------------------- memcached

# Every item of a node: key => absolute expiry (-1: never), through the LRU crawler.
sub items {
    my ($i) = @_;
    for (1 .. 20) {
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $t->mc_port($i), Proto => 'tcp',
            Timeout => 2) or die "memcached $i: $!";
        print $s "lru_crawler metadump all\r\n";
        my ($buf, %items) = ('');
        my $deadline = time + 10;
        while ($buf !~ /(?:^|\n)(?:END|BUSY[^\n]*|ERROR[^\n]*)\r\n\z/ && time < $deadline) {
            my $n = sysread($s, $buf, 65536, length $buf);
            last unless $n;
        }
        close $s;
        if ($buf =~ /^BUSY/m) { sleep 0.2; next }
        die "memcached $i: metadump: $buf" unless $buf =~ /END\r\n\z/;
        for (split /\n/, $buf) {
            my ($k, $exp) = /^key=(\S+) exp=(-?\d+)/ or next;
            $k =~ s/%([0-9A-Fa-f]{2})/chr hex $1/ge;
            $items{$k} = $exp;
        }
        return %items;
    }
    die "memcached $i: the crawler stayed busy\n";
}

my $now = time;
my %items = map { items($_) } 0 .. $t->mc_count - 1;
my %limit = (    # the longest each kind of item may live, in seconds, from the modules' documentation
    'session data (idle timeout)'      => [qr/^memc\.sess\.key\.(?!meta\.|lock\.)/, $IDLE + 2],
    'session meta (30 days)'           => [qr/^memc\.sess\.key\.meta\./, 30 * 86400 + 60],
    'session lock'                     => [qr/^(?:memc\.sess\.key\.)?lock\./, 60],
    'entitlement (60 s)'               => [qr/^paywall\.ent\./, 61],
    'meter (its period)'               => [qr/^paywall\.meter\./, $METER_PERIOD + 2],
    'promotion counter (8 days)'       => [qr/^promo\.count\.\d+\./, 8 * 86400 + 60],
    'promotion counter lock (refresh)' => [qr/^promo\.count\.lock\z/, 2],
);
my (%kinds, @forever, @too_long, @unknown);
for my $k (sort keys %items) {
    my ($kind) = grep { $k =~ $limit{$_}[0] } sort keys %limit;
    push @unknown, $k unless $kind;
    $kind //= 'other';
    $kinds{$kind}++;
    if ($items{$k} < 0) { push @forever, $k; next }
    push @too_long, sprintf('%s (%s: %d s)', $k, $kind, $items{$k} - $now)
        if $kind ne 'other' && $items{$k} - $now > $limit{$kind}[1];
}
note('memcached items: ' . join(', ', map { "$_ $kinds{$_}" } sort keys %kinds));
ok($kinds{$_}, "memcached holds $_ items") for 'session data (idle timeout)', 'session meta (30 days)',
    'meter (its period)', 'promotion counter (8 days)';
is_deeply(\@forever, [], 'every memcached item has an expiry') or diag(explain(\@forever));
is_deeply(\@too_long, [], 'none lives longer than its module documents') or diag(explain(\@too_long));
is_deeply(\@unknown, [], 'no item of an unknown kind') or diag(explain(\@unknown));


ok(ModTest::polled(15, sub { sql_value($t, "SELECT count(*) FROM booking.outbox WHERE kind = 'booking.confirmed' "
    . "AND status = 'delivered'") == 4 }), 'the 4 confirmations are delivered');

# ---------------------------------------------------------------------------------- promotion counters

# Apache adds a process's counts at its first request after PromoRefresh: requests that carry a (refused) code
# wake the processes without counting an impression.
my $moved = ModTest::polled(20, sub {
    $t->get($_, '/promo/env.php?promo=NOPE') for @SERVERS, @SERVERS;
    sql_value($t, "SELECT coalesce(sum(impressions), 0) || ' ' || coalesce(sum(clicks), 0) FROM promo.daily_counts "
        . "WHERE promotion_id = $PROMO") eq "$impressions $clicks";
});
ok($moved, "the $impressions impressions and $clicks clicks reached promo.daily_counts")
    or diag(sql_value($t, "SELECT sum(impressions) || ' ' || sum(clicks) FROM promo.daily_counts"));
my $day = int(time / 86400);
for my $kind (qw(imp clk)) {
    my $key = "promo.count.$PROMO.$day.$kind";
    my @left = map { my $v = $t->mc_get($_, $key); defined $v ? $v =~ s/\s+//gr : () } 0 .. $t->mc_count - 1;
    ok(@left && !grep({ $_ != 0 } @left), "memcached's $kind counter is back to 0 (" . join(',', @left) . ')');
}

# ---------------------------------------------------------------------------------- files

my %after = files();
my @changed = sort grep { !$before{$_} || "@{$before{$_}}" ne "@{$after{$_}}" } keys %after;
note('changed during the traffic: ' . join(' ', grep { !m{^pg/} } @changed));
my %theirs = (
    qr{^(?:apache|nginx)/(?:error|access)\.log\z}  => 'the servers\' own logs',
    qr{^pg/|^pg_ctl\.log\z}                         => 'PostgreSQL\'s own files',
    qr{^memcached/mc\d+\.log\z}                     => 'memcached\'s log',
    qr{^php/(?:error|fpm|fpm\.stderr)\.log\z}       => 'PHP\'s logs',
    qr{^(?:psql\.sql|capture\.stderr)\z}            => 'the harness\'s psql',
    qr{^nginx/\w+_temp/}                            => 'nginx\'s own buffers',
);
my @foreign = grep { my $f = $_; !grep { $f =~ $_ } keys %theirs } @changed;
is_deeply(\@foreign, [], 'the modules wrote no file of their own') or diag(explain(\@foreign));
my @shrunk = grep { /\.log\z/ && $before{$_} && $after{$_}[0] < $before{$_}[0] } @changed;
is_deeply(\@shrunk, [], 'the logs only grew');
for my $s (@SERVERS) {
    is((-s $t->prefix . "/$s/stderr.log") || 0, $before{"$s/stderr.log"}[0] // 0, "$s: nothing went to stderr");
}

# the server processes hold no other file open for writing
my %pids = $t->pids;
for my $s (@SERVERS) {
    my %writing;
    for my $pid (Load::processes($pids{$s})) {
        my %f = Load::open_files($pid);
        $writing{$_} = 1 for grep { $f{$_} eq 'w' } keys %f;
    }
    my $p = $t->prefix;
    my @other = grep { !m{^\Q$p\E/$s/(?:error|access|stderr)\.log\z} && $_ ne '/dev/null' } sort keys %writing;
    is_deeply(\@other, [], "$s: no file open for writing but the server's logs") or diag(explain(\@other));
}

# expired sessions and meters leave memcached once their time has passed
my @meters = grep { /^paywall\.meter\./ } keys %items;
my $wait = $traffic_to + ($IDLE > $METER_PERIOD ? $IDLE : $METER_PERIOD) + 2 - time;
sleep $wait if $wait > 0;
my @left = grep { my $k = $_; grep { defined $t->mc_get($_, $k) } 0 .. $t->mc_count - 1 } @data, @meters;
is_deeply(\@left, [], scalar(@data) . ' expired sessions and ' . scalar(@meters) . ' meters are gone from memcached')
    or diag(explain(\@left));

# ---------------------------------------------------------------------------------- PostgreSQL purges

my $in = join ',', map { "'$_'" } @sessions;
is(sql_value($t, "SELECT count(*) FROM session_shared.sessions WHERE id IN ($in)"), 6,
    'the 6 sessions had their durable copy in PostgreSQL');
my $expired_rows = sql_value($t, 'SELECT count(*) FROM session_shared.sessions');
cmp_ok($expired_rows, '>', 6, "$expired_rows session rows, the traffic's included, all idle by now");

$t->psql(<<'SQL');
INSERT INTO booking.outbox (kind, payload, status, created_at, next_attempt_at)
     VALUES ('booking.confirmed', '{"purge": "delivered"}', 'delivered', now() - interval '31 days', now()),
            ('booking.confirmed', '{"purge": "dead"}', 'dead', now() - interval '31 days', now()),
            ('booking.reminder', '{"purge": "cancelled"}', 'cancelled', now() - interval '31 days', now()),
            ('booking.confirmed', '{"keep": "recent"}', 'delivered', now() - interval '29 days', now()),
            ('booking.reminder', '{"keep": "pending"}', 'pending', now() - interval '31 days', now() + interval '1 day');
INSERT INTO paywall.processed_events (event_id, type, event_created, livemode, received_at)
     SELECT 'evt_old' || g, 'invoice.paid', now() - interval '40 days', false, now() - interval '31 days'
       FROM generate_series(1, 20) g;
INSERT INTO paywall.processed_events (event_id, type, event_created, livemode, received_at)
     VALUES ('evt_recent1', 'invoice.paid', now() - interval '29 days', false, now() - interval '29 days');
SQL

if ($LONG) {
    # the periodic purges: at most once a minute per process, whatever restarts
    my $until = time + 80;
    while (time < $until) {
        $t->get($_, '/session.php?set=user_id&value=tick') for @SERVERS;
        sleep 5;
    }
} else {
    $t->start_servers(%conf);    # fresh processes purge at their first chance
}
my %fresh;
for my $s (@SERVERS) {
    my $r = $t->get($s, '/session.php?set=user_id&value=fresh');
    $fresh{$s} = ModTest::cookie_from($r, 'PHPSESSID');
}
ok(ModTest::polled(15, sub { sql_value($t, "SELECT count(*) FROM session_shared.sessions WHERE last_access < "
    . "to_timestamp($traffic_to)") == 0 }), 'every expired session row is purged from PostgreSQL');
my $fresh_in = join ',', map { "'$_'" } grep { defined } values %fresh;
ok(ModTest::polled(5, sub { sql_value($t, "SELECT count(*) FROM session_shared.sessions WHERE id IN ($fresh_in)") == 2 }),
    'the sessions in use stay');
ok(ModTest::polled(15, sub { sql_value($t, "SELECT count(*) FROM booking.outbox WHERE payload ? 'purge'") == 0 }),
    'outbox rows finished over 30 days ago are purged');
is(sql_value($t, "SELECT string_agg(payload->>'keep', ' ' ORDER BY id) FROM booking.outbox WHERE payload ? 'keep'"),
    'recent pending', 'a recent row and a pending one stay');

SKIP: {
    skip 'no Stripe signing: ' . (StripeSign::unavailable_reason() // ''), 2 unless StripeSign::available();
    # the webhook purges after about one event in eight: those whose id ends in a character whose code is a
    # multiple of 8, as '0' (48) is
    my $event = StripeSign::event(type => 'customer.subscription.created', id => 'evt_1disk' . int(time) . '0',
        object => StripeSign::subscription(customer => 'cus_disk', price => 'price_digital', user_id => 'u-disk'));
    my $r = $t->request('POST', 'nginx', '/stripe/webhook', {headers => {'Content-Type' => 'application/json',
        'Stripe-Signature' => StripeSign::header($event, $WHSEC, int time)}, content => $event});
    is($r->{status}, 200, 'a webhook event is applied') or diag($r->{content});
    is(sql_value($t, "SELECT count(*) FROM paywall.processed_events WHERE event_id LIKE 'evt_old%' "
        . "OR event_id = 'evt_recent1'"), 1, 'processed events over 30 days old are purged, a recent one stays');
}

# Over the whole run, two restarts included: every line of the error logs in the server's own format (a line
# without it was written to stderr by a library), and no crash, at stop either.
my %format = (apache => qr/^\[\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d/, nginx => qr{^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d \[});
for my $s (@SERVERS) {
    my $log = $t->error_log($s);
    my %raw;
    $raw{$_}++ for grep { length && $_ !~ $format{$s} } split /\n/, $log;
    is_deeply([sort keys %raw], [], "$s: every error-log line is the server's own") or diag(explain(\%raw));
    unlike($log, qr/\[(?:crit|alert|emerg)\]|segfault|exit signal/, "$s: no crash or critical error, at stop either")
        or diag(join "\n", grep { /\[(?:crit|alert|emerg)\]|segfault|exit signal/ } split /\n/, $log);
}

done_testing();
