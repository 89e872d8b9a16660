# The rollup job after a failover to a server on another port (fault review, finding 5): pg_cron keeps the port
# a job was scheduled with, so on the promoted standby the replicated job still targets the old primary's port
# and every run fails. schedule_rollup() on the new primary makes the job anew for its port, and it runs.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

# A node with aos_cus and pg_cron, whose jobs connect over the node's Unix socket (cron.host).
sub cron_node
{
	my ($name, %init) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init(%init);
	my $keyring = PostgreSQL::Test::Utils::tempdir . '/keyring';
	unless (-e $keyring)
	{
		open(my $fh, '>', $keyring) or die "keyring: $!";
		printf $fh "1:%s\n", join('', map { sprintf('%02x', int(rand(256))) } 1 .. 32);
		close $fh;
		chmod 0600, $keyring;
	}
	my $host = $node->host;
	$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'aos_cus, pg_cron'
aos_cus.keyring_file = '$keyring'
cron.database_name = 'postgres'
cron.host = '$host'
});
	return $node;
}

my $primary = cron_node('primary', allows_streaming => 1);
$primary->start;
$primary->safe_psql('postgres', q{
CREATE EXTENSION aos_cus;
CREATE EXTENSION pg_cron;
INSERT INTO aos_cus.cus_integrations (tenant_id, id, name, provider)
VALUES ('00000000-0000-4000-8000-000000000064', '00000000-0000-4000-8000-0000000006a4', 'failover', 'openai');
});
$primary->safe_psql('postgres', "SELECT aos_cus.schedule_rollup('* * * * *')");
# The rows below are from February 2026: keep their hours whatever today is.
$primary->safe_psql('postgres', "SELECT aos_cus.set_partitioning(hourly_retention => interval '100 years')");
is($primary->safe_psql('postgres', "SELECT nodeport FROM cron.job WHERE jobname = 'aos_cus_rollup'"), $primary->port,
	'the job targets the primary\'s port');

$primary->backup('b');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'b', has_streaming => 1);
$standby->start;
$primary->safe_psql('postgres', q{
SELECT count(*) FROM aos_cus.ingest_usage_batch('00000000-0000-4000-8000-000000000064', (SELECT jsonb_agg(jsonb_build_object(
    'integration_id', '00000000-0000-4000-8000-0000000006a4', 'call_id', 'f-' || g, 'model', 'gpt-4o',
    'input_tokens', g, 'started_at', '2026-02-01T00:00:00Z')) FROM generate_series(1, 12) g))});
$primary->wait_for_catchup($standby);
isnt($standby->port, $primary->port, 'the standby listens on another port');

$primary->stop('immediate');
$standby->promote;
is($standby->safe_psql('postgres', "SELECT nodeport FROM cron.job WHERE jobname = 'aos_cus_rollup'"), $primary->port,
	'after promotion the replicated job still targets the old primary\'s port (every run would fail)');

$standby->safe_psql('postgres', "SELECT aos_cus.schedule_rollup('* * * * *')");
is($standby->safe_psql('postgres', "SELECT nodeport FROM cron.job WHERE jobname = 'aos_cus_rollup'"), $standby->port,
	'schedule_rollup() on the new primary points the job at its port');
is($standby->safe_psql('postgres', "SELECT count(*) FROM cron.job WHERE jobname = 'aos_cus_rollup'"), '1',
	'still one job');
# pg_cron runs minutely jobs at the top of the minute: wait up to the poll timeout for the first run.
ok($standby->poll_query_until('postgres', 'SELECT coalesce(sum(requests), 0) = 12 FROM aos_cus.cus_usage_daily'),
	'the job runs rollup_usage() on the new primary');
is($standby->safe_psql('postgres', 'SELECT sum(requests) FROM aos_cus.cus_usage_hourly'), '12', 'the hourly rollup too');
is($standby->safe_psql('postgres', q{SELECT tableoid::regclass FROM aos_cus.cus_llm_usage GROUP BY 1}),
	'aos_cus.cus_llm_usage_p20260201', 'and maintain_partitions(): the rows moved into their month\'s partition');
ok($standby->poll_query_until('postgres', q{SELECT count(*) > 0 FROM cron.job_run_details d JOIN cron.job j USING (jobid)
  WHERE j.jobname = 'aos_cus_rollup' AND d.status = 'succeeded'}), 'pg_cron records a successful run');

$standby->stop;
done_testing();
