# AosCusCitus.pm: a loopback Citus cluster for test/citus/*.pl: a coordinator and two workers of
# PostgreSQL::Test::Cluster, citus and aos_cus preloaded on all three with one keyring, aos_cus.citus_distribute()
# not yet run; and tenant ids whose shards live on each worker.
package AosCusCitus;

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Exporter 'import';

our @EXPORT = qw(citus_cluster write_keyring tenants_on_workers);

my $keyring;

# A keyring of versions 1..n (the highest encrypts), the same file for every node; keys derive from the version.
sub write_keyring
{
	my ($versions) = @_;
	$keyring //= PostgreSQL::Test::Utils::tempdir . '/keyring';
	open(my $fh, '>', $keyring) or die "keyring: $!";
	printf $fh "%d:%s\n", $_, join('', map { sprintf('%02x', ($_ * 7 + 13 * $_) % 256) } 1 .. 32) =~ s/^../sprintf('%02x', $_)/er
		for 1 .. $versions;
	close $fh;
	chmod 0600, $keyring;
}

# (coordinator, worker1, worker2, pg_cron installed), started and joined; extra_conf goes to every node.
# pg_cron, when installed, is preloaded and created on the coordinator only (for the job citus_distribute() schedules).
sub citus_cluster
{
	my (%opts) = @_;
	write_keyring(1);
	my $sharedir = `$ENV{PG_CONFIG} --sharedir`;
	chomp $sharedir;
	my $cron = -f "$sharedir/extension/pg_cron.control";
	my @nodes;
	for my $name (qw(coordinator worker1 worker2))
	{
		my $node = PostgreSQL::Test::Cluster->new($name);
		my $preload = $cron && $name eq 'coordinator' ? 'citus,pg_cron,aos_cus' : 'citus,aos_cus';
		$node->init;
		$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = '$preload'
cron.database_name = 'postgres'
aos_cus.keyring_file = '$keyring'
max_connections = 60
max_prepared_transactions = 20
citus.node_conninfo = 'sslmode=disable'
aos_cus.health_database = 'postgres'
aos_cus.egress_allowed_networks = '127.0.0.1/32'
aos_cus.egress_allow_http = on
} . ($opts{extra_conf} // ''));
		$node->start;
		$node->safe_psql('postgres', 'CREATE EXTENSION citus; CREATE EXTENSION aos_cus;');
		push @nodes, $node;
	}
	my ($coord, $w1, $w2) = @nodes;
	my $host = $coord->host;
	$coord->safe_psql('postgres', qq{
SELECT citus_set_coordinator_host('$host', ${\ $coord->port});
SELECT citus_add_node('$host', ${\ $w1->port});
SELECT citus_add_node('$host', ${\ $w2->port});
});
	# pg_cron lives on the coordinator only: not propagated to the workers.
	$coord->safe_psql('postgres', 'SET citus.enable_ddl_propagation = off; CREATE EXTENSION pg_cron') if $cron;
	return ($coord, $w1, $w2, $cron);
}

# After citus_distribute(): (T1, T2, { tenant => worker node }), a tenant uuid with the given prefix (8 hex digits)
# whose shard lives on worker1 and one on worker2.
sub tenants_on_workers
{
	my ($coord, $w1, $w2, $prefix) = @_;
	my @rows = split /\n/, $coord->safe_psql('postgres', qq{
WITH t AS (SELECT ('$prefix-0000-4000-8000-' || lpad(g::text, 12, '0'))::uuid AS tenant_id FROM generate_series(1, 200) g)
SELECT DISTINCT ON (n.nodeport) t.tenant_id || '|' || n.nodeport
  FROM t JOIN pg_dist_placement p ON p.shardid = get_shard_id_for_distribution_column('aos_cus.cus_integrations', t.tenant_id)
  JOIN pg_dist_node n ON n.groupid = p.groupid ORDER BY n.nodeport, t.tenant_id});
	die "no tenant on each worker" unless @rows == 2;
	my %port_of = map { split /\|/ } @rows;
	my %node_of = map { $_->port => $_ } ($w1, $w2);
	my ($t1, $t2) = sort { $port_of{$a} <=> $port_of{$b} } keys %port_of;
	return ($t1, $t2, { map { $_ => $node_of{ $port_of{$_} } } keys %port_of });
}

1;
