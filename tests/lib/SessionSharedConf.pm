package SessionSharedConf;
# The mod_session_shared configuration the integration tests share, the same on both servers.
use strict;
use warnings;
use Exporter 'import';
our @EXPORT_OK = qw(session_conf);

# %o: replicas, postgres (bool), idle, absolute, export (list), extra_apache, extra_nginx
sub session_conf {
    my (%o) = @_;
    my $replicas = $o{replicas} // 1;
    my @export = @{$o{export} // [qw(user_id name)]};
    my $apache = join "\n", 'SessionShared On', 'SessionSharedMemcached "@MC@"', "SessionSharedReplicas $replicas",
        ($o{postgres} ? 'SessionSharedPostgres "@PG@"' : ()),
        (defined $o{idle} ? "SessionSharedIdleTimeout $o{idle}" : ()),
        (defined $o{absolute} ? "SessionSharedAbsoluteTimeout $o{absolute}" : ()),
        "SessionSharedExport @export", $o{extra_apache} // '';
    my $nginx = join "\n", 'session_shared on;', 'session_shared_memcached "@MC@";',
        "session_shared_replicas $replicas;",
        ($o{postgres} ? 'session_shared_postgres "@PG@";' : ()),
        (defined $o{idle} ? "session_shared_idle_timeout $o{idle};" : ()),
        (defined $o{absolute} ? "session_shared_absolute_timeout $o{absolute};" : ()),
        "session_shared_export @export;", $o{extra_nginx} // '';
    # nginx passes variables to PHP explicitly; Apache passes its whole environment.
    my $nginx_php = join "\n", 'fastcgi_param SESSION_ID $session_shared_id if_not_empty;',
        map { (my $n = lc $_) =~ s/[^a-z0-9_]/_/g; "fastcgi_param SESSION_\U$n\E \$session_shared_$n if_not_empty;" } @export;
    return (apache => $apache, nginx => $nginx, nginx_php => $nginx_php);
}

1;
