# schedule_rollup() registers a pg_cron job that really runs rollup_usage() in the cluster.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use AosCusTest;

my $node = aos_cus_node('cron',
	extra_conf => "shared_preload_libraries = 'aos_cus, pg_cron'\ncron.database_name = 'postgres'\ncron.use_background_workers = on\n");
$node->safe_psql('postgres', 'CREATE EXTENSION pg_cron');
$node->safe_psql('postgres', q{
INSERT INTO aos_cus.cus_integrations (tenant_id, id, name, provider)
VALUES ('00000000-0000-4000-8000-000000000063', '00000000-0000-4000-8000-0000000006c1', 'cron', 'openai');
SELECT count(*) FROM aos_cus.ingest_usage_batch('00000000-0000-4000-8000-000000000063', (SELECT jsonb_agg(jsonb_build_object(
    'integration_id', '00000000-0000-4000-8000-0000000006c1', 'call_id', 'cron-' || g, 'model', 'gpt-4o',
    'input_tokens', g, 'started_at', '2026-02-01T00:00:00Z')) FROM generate_series(1, 25) g));
});

my $job = $node->safe_psql('postgres', "SELECT aos_cus.schedule_rollup('* * * * *')");
like($job, qr/^\d+$/, 'schedule_rollup returns the job id');
like($node->safe_psql('postgres', "SELECT aos_cus.schedule_rollup('* * * * *')"), qr/^\d+$/, 'scheduling again');
is($node->safe_psql('postgres', "SELECT count(*) FROM cron.job WHERE jobname = 'aos_cus_rollup'"), '1',
	'scheduling again replaces the job instead of adding one');
is($node->safe_psql('postgres', "SELECT jobname || ' ' || command FROM cron.job"),
	'aos_cus_rollup SELECT aos_cus.rollup_usage()', 'the job runs rollup_usage()');
my ($ret, $out, $err) = $node->psql('postgres', "SELECT aos_cus.schedule_rollup('every now and then')");
isnt($ret, 0, 'an invalid schedule is refused');
like($err, qr/schedule/, 'the error names the schedule');

# pg_cron runs minutely jobs at the top of the minute: wait up to 90 s for the first run.
ok($node->poll_query_until('postgres', 'SELECT count(*) > 0 FROM aos_cus.cus_usage_daily'),
	'the cron job filled the aggregates');
is($node->safe_psql('postgres', 'SELECT sum(requests) FROM aos_cus.cus_usage_daily'), '25', 'with every ingested row');
ok($node->poll_query_until('postgres', "SELECT count(*) > 0 FROM cron.job_run_details WHERE status = 'succeeded'"),
	'pg_cron recorded a successful run');

$node->stop;
done_testing();
