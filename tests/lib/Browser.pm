package Browser;
# Headless Chromium for the integration tests, through tests/node/browser.js (playwright-core, pinned in
# tests/node/package-lock.json, driving Debian's chromium). Core Perl only.
#
#   use Browser;
#   plan skip_all => 'no browser: ' . Browser::unavailable_reason() unless Browser::available();
#   my $r = Browser::run([{goto => $t->url('nginx', '/index.html'), width => 375}, {eval => 'document.title'}]);
#   ok($r->{ok}) or diag(explain($r));    # $r->{results}[1] eq 'modtest'
#
# Browser::available()            true when node (20+), the chromium binary and playwright-core are all there
# Browser::unavailable_reason()   why not (undef when available): for skip_all
# Browser::run(\@steps, %opt)     runs the steps in one page; returns browser.js's answer decoded:
#     {ok => 1, results => [one per step], errors => [page errors, console errors and warnings]}
#     or {ok => 0, error => message, step => index (0-based), results => [...so far], errors => [...]}
#   %opt: context => {timezoneId => ..., locale => ..., httpCredentials => {...}} (Playwright context options),
#         timeout => ms for the whole run (default 120000), step_timeout => ms per step (default 5000)
# The steps are browser.js's (see its header): goto (width, height, httpCredentials), click, fill, check, uncheck,
# select, press, focus, waitFor, waitForText, screenshot (fullPage, selector), eval, reload, sleep, route
# (method, file, replace, headers, contentType, raw, times), unroute, requests.
#
# Environment: BROWSER_CHROMIUM (default /usr/bin/chromium), BROWSER_NODE (default node from PATH).
use strict;
use warnings;
use File::Basename qw(dirname);
use File::Spec;
use File::Temp qw(tempfile);
use Cwd qw(abs_path);
use JSON::PP;
use POSIX qw(WNOHANG);

our $NODE_DIR = abs_path(File::Spec->catdir(dirname(__FILE__), '..', 'node'));
our $CHROMIUM = $ENV{BROWSER_CHROMIUM} // '/usr/bin/chromium';
our $NODE = $ENV{BROWSER_NODE} // 'node';
my $JSON = JSON::PP->new->utf8->canonical;

sub unavailable_reason {
    return "no $CHROMIUM (apt-get install chromium fonts-dejavu-core, or build/deps.sh)" unless -x $CHROMIUM;
    my $version = `$NODE --version 2>/dev/null` // '';
    return "no Node.js ($NODE)" unless $version =~ /^v(\d+)\./;
    return "Node.js $1 is older than 20" if $1 < 20;
    return "no playwright-core in $NODE_DIR/node_modules (cd tests/node && npm ci)"
        unless -f "$NODE_DIR/node_modules/playwright-core/package.json";
    return undef;
}

sub available { return !defined unavailable_reason() }

sub run {
    my ($steps, %opt) = @_;
    my %script = (steps => $steps);
    $script{context} = $opt{context} if $opt{context};
    $script{timeout} = $opt{timeout} if $opt{timeout};
    $script{stepTimeout} = $opt{step_timeout} if $opt{step_timeout};
    my ($fh, $file) = tempfile('browser-XXXXXX', SUFFIX => '.json', TMPDIR => 1, UNLINK => 1);
    print {$fh} $JSON->encode(\%script);
    close $fh;

    # stdout from browser.js; stderr kept for the report when it printed no JSON. A backstop kills it (and the
    # browser it started, in its process group) should it hang past its own deadline.
    my ($efh, $errfile) = tempfile('browser-XXXXXX', SUFFIX => '.err', TMPDIR => 1, UNLINK => 1);
    my $pid = open(my $out, '-|') // return {ok => 0, error => "fork: $!", results => []};
    if ($pid == 0) {
        setpgrp(0, 0);
        open(STDERR, '>&', $efh) or POSIX::_exit(127);
        exec($NODE, "$NODE_DIR/browser.js", $file) or POSIX::_exit(127);
    }
    my $limit = int(($opt{timeout} // 120000) / 1000) + 30;
    my $text = '';
    my $ok = eval {
        local $SIG{ALRM} = sub { die "timeout\n" };
        alarm $limit;
        local $/;
        $text = <$out> // '';
        alarm 0;
        1;
    };
    alarm 0;
    unless ($ok) {
        kill 'KILL', -$pid;
        kill 'KILL', $pid;
    }
    close $out;
    my $answer = eval { $JSON->decode($text) };
    return $answer if ref $answer eq 'HASH';
    seek($efh, 0, 0);
    my $stderr = do { local $/; <$efh> } // '';
    return {ok => 0, error => ($ok ? 'browser.js printed no JSON' : "browser.js killed after $limit s")
        . ": stdout: $text stderr: $stderr", results => []};
}

1;
