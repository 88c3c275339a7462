package PaywallConf;
# mod_paywall configurations for the integration tests, written once in Apache's syntax and turned into nginx's
# (PaywallCacheTTL 2s -> paywall_cache_ttl 2s;), so that both servers get the same settings by construction.
use strict;
use warnings;
use Exporter 'import';
our @EXPORT_OK = qw(nginx_directive paywall_server paywall_location paywall_php_params promo_php_params merge_conf);

# "PaywallRequire digital print" -> "paywall_require digital print;"
sub nginx_directive {
    my ($line) = @_;
    my ($name, $args) = $line =~ /^\s*(\S+)\s*(.*?)\s*\z/s or return '';
    (my $snake = $name) =~ s/([a-z])([A-Z])/$1_$2/g;
    $snake = lc $snake;
    $args = lc $args if $args =~ /^(On|Off|Observe)\z/;
    return length $args ? "$snake $args;" : "$snake;";
}

# Server-level directives (stores, secrets, Stripe): the same lines in both.
sub paywall_server {
    my (@lines) = @_;
    return (apache => join("\n", @lines), nginx => join("\n", map { nginx_directive($_) } @lines));
}

# What nginx must pass to PHP: Apache passes its whole environment.
sub paywall_php_params {
    return join "\n", map { "fastcgi_param \U$_\E \$$_ if_not_empty;" }
        qw(paywall_access paywall_plan paywall_meter_remaining paywall_csrf_token session_shared_user_id);
}

# What mod_promo publishes, for nginx's PHP locations (with the paywall's).
sub promo_php_params {
    return join "\n", paywall_php_params(), map { "fastcgi_param \U$_\E \$$_ if_not_empty;" }
        qw(promo_code promo_stripe_coupon promo_discount promo_first_year_price promo_code_error promo_code_message);
}

# A gated location; its PHP scripts go to php-fpm from inside the location on nginx, since a regex location at
# server level would otherwise take them out of it. %o: handler => 'paywall-checkout' (a handler location instead
# of a gate), apache_extra / nginx_extra (server-specific lines, e.g. authentication), php_params (nginx's
# fastcgi_params for the nested PHP location; default paywall_php_params()).
sub paywall_location {
    my ($path, $lines, %o) = @_;
    my @lines = @{$lines // []};
    my $apache = "<Location $path>\n" . join('', map { "    $_\n" } @lines);
    $apache .= "    SetHandler $o{handler}\n" if $o{handler};
    $apache .= join('', map { "    $_\n" } split /\n/, $o{apache_extra}) if $o{apache_extra};
    $apache .= "</Location>";
    my $nginx = "location $path {\n" . join('', map { '    ' . nginx_directive($_) . "\n" } @lines);
    if ($o{handler}) {
        (my $h = $o{handler}) =~ tr/-/_/;
        $nginx .= "    $h;\n";
    } else {
        $nginx .= "    location ~ \\.php\$ {\n        fastcgi_pass \@FPM\@;\n        include /etc/nginx/fastcgi_params;\n"
            . "        fastcgi_param SCRIPT_FILENAME \$document_root\$fastcgi_script_name;\n"
            . join('', map { "        $_\n" } split /\n/, $o{php_params} // paywall_php_params()) . "    }\n";
    }
    $nginx .= join('', map { "    $_\n" } split /\n/, $o{nginx_extra}) if $o{nginx_extra};
    $nginx .= "}";
    return (apache => $apache, nginx => $nginx);
}

# Joins several (apache => ..., nginx => ...) lists into one.
sub merge_conf {
    my (@parts) = @_;
    my %out = (apache => '', nginx => '');
    for my $p (@parts) {
        my %p = @$p;
        for my $k (keys %p) { $out{$k} = join "\n", grep { length } $out{$k} // '', $p{$k} }
    }
    return %out;
}

1;
