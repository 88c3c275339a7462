#!/usr/bin/perl
# The Stripe webhook on both servers: signatures made by Stripe's own npm package are accepted; tampered payloads,
# wrong secrets, stale or future timestamps and malformed headers are refused with 400 and store nothing; each
# event applies once; the whole lifecycle (checkout -> access, payment failed -> grace -> closed, paid again,
# cancelled at period end, deleted, late events) shows on every node within 5 s; PostgreSQL down -> 503 (Stripe
# retries) and the retry applies.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Time::HiRes qw(sleep time);
use ModTest;
use PaywallConf qw(paywall_server paywall_location merge_conf);
use StripeSign;

plan skip_all => StripeSign::unavailable_reason() unless StripeSign::available();

my $SECRET = 'whsec_test_0123456789abcdefghij';
my $t = ModTest->new(memcached => 2, postgres => 1, php => 1);
$t->write_file('webhook.secret', "$SECRET\n");
$t->start_servers(
    merge_conf(
        [paywall_server('PaywallPostgres "@PG@"', 'PaywallMemcached "@MC@"', 'PaywallUser header:X-User',
            'PaywallStripeWebhookSecretFile @TMP@/webhook.secret', 'PaywallPlan digital price_digital',
            'PaywallPlan print price_print print')],
        [paywall_location('/articles/', ['Paywall On', 'PaywallRequire digital print', 'PaywallDeny status 403'])],
        [paywall_location('/stripe/webhook', [], handler => 'paywall-stripe-webhook')]),
    nginx_php => PaywallConf::paywall_php_params());

sub send_event {
    my ($s, $json, %o) = @_;
    my $sig = exists $o{signature} ? $o{signature} : StripeSign::header($json, $o{secret} // $SECRET, $o{ts} // int time);
    return $t->request('POST', $s, '/stripe/webhook',
        {headers => {'Content-Type' => 'application/json', (defined $sig ? ('Stripe-Signature' => $sig) : ())},
         content => $o{body} // $json});
}

sub count { return $t->psql($_[0]) + 0 }
sub q1 { my $v = $t->psql($_[0]); chomp $v; return $v }
sub access { my ($s, $user) = @_; return $t->get($s, '/articles/story.html', {'X-User' => $user})->{status} }

# Within 5 s on both servers (each process may reuse what it read for PaywallCacheTTL, 2 s by default).
sub eventually_access {
    my ($user, $want, $label) = @_;
    my $deadline = time + 5;
    my %got;
    while (1) {
        %got = map { $_ => access($_, $user) } qw(apache nginx);
        last if (grep { $got{$_} == $want } keys %got) == 2 || time > $deadline;
        sleep 0.25;
    }
    is("$got{apache} $got{nginx}", "$want $want", "$label (both servers, within 5 s)");
}

# The first request creates the schema.
access('apache', 'nobody');

for my $s (qw(apache nginx)) {
    my $user = "u-$s";
    my $cus = "cus_$s" . 'A1';
    my $sub = "sub_$s" . 'A1';
    my $t0 = int time;

    # ---- refusals: nothing stored
    my $valid = StripeSign::event(type => 'customer.subscription.created', created => $t0 - 60,
        object => StripeSign::subscription(id => $sub, customer => $cus, price => 'price_print', user_id => $user));
    my $before = count('SELECT count(*) FROM paywall.processed_events');
    my $mark = $t->log_mark($s);
    (my $tampered = $valid) =~ s/"active"/"trialing"/;
    my %refused = (
        'tampered payload'      => [body => $tampered],
        'wrong secret'          => [secret => 'whsec_someone_else_0123456789'],
        'stale timestamp'       => [ts => $t0 - 301],
        'future timestamp'      => [ts => $t0 + 400],
        'malformed header'      => [signature => 't=abc,v1=zz'],
        'v0 only'               => [signature => "t=$t0,v0=" . ('a' x 64)],
        'no header'             => [signature => undef],
    );
    for my $why (sort keys %refused) {
        my $r = send_event($s, $valid, @{$refused{$why}});
        is($r->{status}, 400, "$s: $why refused with 400");
    }
    is(count('SELECT count(*) FROM paywall.processed_events'), $before, "$s: nothing stored for refused events");
    like($t->error_log($s, $mark), qr/Stripe-Signature (mismatch|timestamp|malformed)/, "$s: refusals logged with the reason");
    is($t->request('GET', $s, '/stripe/webhook')->{status}, 405, "$s: GET is not allowed");
    is(access($s, $user), 403, "$s: no access before any valid event");

    # ---- checkout completed, then the subscription: access
    my $checkout = StripeSign::event(type => 'checkout.session.completed', created => $t0 - 61,
        object => StripeSign::checkout_session(customer => $cus, subscription => $sub, client_reference_id => $user,
            shipping => {name => 'Dr Ada Lovelace', line1 => '1 rue de la Paix', line2 => undef, city => 'Paris',
                postal_code => '75002', state => undef, country => 'FR'}));
    my $r = send_event($s, $checkout);
    is($r->{status}, 200, "$s: checkout.session.completed accepted") or diag($r->{content});
    is(q1("SELECT user_id FROM paywall.customers WHERE customer_id = '$cus'"), $user,
        "$s: the customer is linked to the site's user");
    is(q1("SELECT city || ' ' || country FROM paywall.shipping_addresses WHERE subscription_id = '$sub'"),
        'Paris FR', "$s: the shipping address is stored");
    $r = send_event($s, $valid);
    is($r->{status}, 200, "$s: customer.subscription.created accepted") or diag($r->{content});
    is(access($s, $user), 200, "$s: access at once on the server that took the webhook");
    eventually_access($user, 200, "$s: the new subscription opens");
    is(q1("SELECT plan || ' ' || status FROM paywall.subscriptions WHERE subscription_id = '$sub'"),
        'print active', "$s: plan and status stored");

    # ---- a replay is acknowledged, not applied again
    my $events = count('SELECT count(*) FROM paywall.processed_events');
    $r = send_event($s, $valid);
    is($r->{status}, 200, "$s: a replayed event is acknowledged");
    like($r->{content}, qr/already processed/, "$s: and reported as a replay");
    is(count('SELECT count(*) FROM paywall.processed_events'), $events, "$s: no second row for a replay");

    # ---- payment failed: grace, then closed once the grace is over; paid again: open
    my $sub2 = "sub_$s" . 'B2';
    send_event($s, StripeSign::event(type => 'customer.subscription.created', created => $t0 - 10 * 86400,
        object => StripeSign::subscription(id => $sub2, customer => $cus, price => 'price_digital', user_id => "$user-2",
            current_period_end => $t0 + 20 * 86400)));
    eventually_access("$user-2", 200, "$s: second subscriber open");
    $r = send_event($s, StripeSign::event(type => 'invoice.payment_failed', created => $t0 - 2 * 86400,
        object => StripeSign::invoice(subscription => $sub2, customer => $cus, status => 'open', amount_paid => 0)));
    is($r->{status}, 200, "$s: invoice.payment_failed accepted");
    is(q1("SELECT status FROM paywall.subscriptions WHERE subscription_id = '$sub2'"), 'past_due',
        "$s: the subscription is past_due");
    eventually_access("$user-2", 200, "$s: past_due for 2 days: still open (grace 7d)");
    $t->psql("UPDATE paywall.subscriptions SET past_due_since = now() - interval '8 days' WHERE subscription_id = '$sub2'");
    $t->mc_flush_all;
    eventually_access("$user-2", 403, "$s: past_due for 8 days: closed");
    $r = send_event($s, StripeSign::event(type => 'invoice.paid', created => $t0,
        object => StripeSign::invoice(subscription => $sub2, customer => $cus, billing_reason => 'subscription_cycle')));
    is($r->{status}, 200, "$s: invoice.paid accepted");
    eventually_access("$user-2", 200, "$s: paid again: open");

    # ---- cancelled at period end: open until then, closed after; deletion closes; a late older event changes nothing
    $t0 = int time;
    $r = send_event($s, StripeSign::event(type => 'customer.subscription.updated', created => $t0 + 1,
        object => StripeSign::subscription(id => $sub, customer => $cus, price => 'price_print', user_id => $user,
            cancel_at_period_end => 1, current_period_end => $t0 + 4)));
    is($r->{status}, 200, "$s: cancellation at period end accepted");
    is(access($s, $user), 200, "$s: open until the period ends");
    sleep 4.5 - (time - $t0) if time - $t0 < 4.5;
    eventually_access($user, 403, "$s: closed once the period is over");
    $r = send_event($s, StripeSign::event(type => 'customer.subscription.deleted', created => $t0 + 2,
        object => StripeSign::subscription(id => $sub, customer => $cus, price => 'price_print', user_id => $user,
            status => 'canceled', canceled_at => $t0 + 2)));
    is($r->{status}, 200, "$s: customer.subscription.deleted accepted");
    $r = send_event($s, StripeSign::event(type => 'customer.subscription.updated', created => $t0 - 30,
        object => StripeSign::subscription(id => $sub, customer => $cus, price => 'price_print', user_id => $user)));
    like($r->{content}, qr/not applied/, "$s: an older event arriving late is not applied");
    is(q1("SELECT status FROM paywall.subscriptions WHERE subscription_id = '$sub'"), 'canceled',
        "$s: the subscription stays canceled");
}

# ---- PostgreSQL down: 503 so that Stripe retries; the retry applies.
my $late = StripeSign::event(type => 'customer.subscription.created',
    object => StripeSign::subscription(id => 'sub_outage1', customer => 'cus_outage1', price => 'price_digital',
        user_id => 'u-outage'));
$t->pg_stop;
for my $s (qw(apache nginx)) {
    my $r = send_event($s, $late);
    is($r->{status}, 503, "$s: PostgreSQL down: 503, Stripe will retry");
}
$t->pg_start;
my $r = send_event('nginx', $late);
is($r->{status}, 200, 'the retry after the outage is applied') or diag($r->{content});
eventually_access('u-outage', 200, 'the retried event opens the gate');

done_testing();
