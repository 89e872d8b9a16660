# pg_dump of a database with rolled-up usage, restored into another cluster: the restored rows carry
# the old cluster's transaction ids (here ahead of the new cluster's), so the first rollup sees another
# system identifier, rebuilds every aggregate (daily and hourly) and resets its state; later rollups are incremental
# and exact.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use AosCusTest;

my $tenant = '00000000-0000-4000-8000-000000000062';
my $integration = '00000000-0000-4000-8000-0000000006b1';

# Insert n usage rows with call_ids prefix1..prefixn into a database of a node.
sub ingest
{
	my ($node, $db, $prefix, $n) = @_;
	$node->safe_psql($db, qq{
SELECT count(*) FROM aos_cus.ingest_usage_batch('$tenant', (SELECT jsonb_agg(jsonb_build_object(
    'integration_id', '$integration', 'call_id', '$prefix' || g, 'model', 'gpt-4o', 'input_tokens', g,
    'started_at', '2026-02-01T00:00:00Z'::timestamptz + g * interval '37 minutes')) FROM generate_series(1, $n) g))});
}

my $mismatches = q{
WITH recompute AS (
    SELECT tenant_id, integration_id, (started_at AT TIME ZONE 'UTC')::date AS day, model, count(*) AS requests,
           sum(input_tokens) AS i, coalesce(sum(cost_microcents), 0) AS cost FROM aos_cus.cus_llm_usage GROUP BY 1, 2, 3, 4),
daily AS (
    SELECT tenant_id, integration_id, day, model, requests, input_tokens::numeric, cost_microcents::numeric FROM aos_cus.cus_usage_daily),
recompute_hourly AS (
    SELECT tenant_id, integration_id, date_trunc('hour', started_at, 'UTC') AS hour, model, count(*) AS requests,
           sum(input_tokens) AS i, coalesce(sum(cost_microcents), 0) AS cost FROM aos_cus.cus_llm_usage GROUP BY 1, 2, 3, 4),
hourly AS (
    SELECT tenant_id, integration_id, hour, model, requests, input_tokens::numeric, cost_microcents::numeric FROM aos_cus.cus_usage_hourly)
SELECT (SELECT count(*) FROM ((TABLE recompute EXCEPT TABLE daily) UNION ALL (TABLE daily EXCEPT TABLE recompute)) x)
     + (SELECT count(*) FROM ((TABLE recompute_hourly EXCEPT TABLE hourly) UNION ALL (TABLE hourly EXCEPT TABLE recompute_hourly)) x)};

my $old = aos_cus_node('rollup_old');
# The rows below are from February 2026: keep their hours (the setting is restored with the dump).
$old->safe_psql('postgres', "SELECT aos_cus.set_partitioning(hourly_retention => interval '100 years')");
$old->safe_psql('postgres',
	"INSERT INTO aos_cus.cus_integrations (tenant_id, id, name, provider) VALUES ('$tenant', '$integration', 'r', 'openai')");
ingest($old, 'postgres', 'a', 300);
$old->safe_psql('postgres', 'SELECT aos_cus.rollup_usage()');
# Move the old cluster's transaction ids well ahead of a fresh cluster's.
$old->safe_psql('postgres', 'DO $$ BEGIN FOR i IN 1..3000 LOOP PERFORM pg_current_xact_id(); COMMIT; END LOOP; END $$');
ingest($old, 'postgres', 'b', 200);
$old->safe_psql('postgres', 'SELECT aos_cus.rollup_usage()');
ingest($old, 'postgres', 'c', 100);    # dumped before any rollup saw it
is($old->safe_psql('postgres', 'SELECT count(*) FROM aos_cus.cus_usage_hourly') > 0, 1, 'the old cluster has aggregates');

my $dump = $old->basedir . '/usage.sql';
$old->command_ok([ 'pg_dump', '-d', $old->connstr('postgres'), '-f', $dump ], 'pg_dump succeeds');

my $new = aos_cus_node('rollup_new');
$new->safe_psql('postgres', 'CREATE DATABASE restored');
$new->command_ok([ 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', $new->connstr('restored'), '-f', $dump ],
	'restore into another cluster succeeds');
isnt($new->safe_psql('restored', 'SELECT system_identifier FROM pg_control_system()'),
	$old->safe_psql('postgres', 'SELECT system_identifier FROM pg_control_system()'), 'the clusters differ');
is($new->safe_psql('restored',
	'SELECT count(*) FROM aos_cus.cus_llm_usage WHERE ingest_xid >= pg_snapshot_xmin(pg_current_snapshot())') > 0,
	1, 'restored rows carry transaction ids this cluster has not reached');

ingest($new, 'restored', 'd', 50);
is($new->safe_psql('restored', 'SELECT aos_cus.rollup_usage()'), '650', 'the first rollup rebuilds from every row');
is($new->safe_psql('restored', $mismatches), '0', 'the rebuilt aggregates equal a recompute');
is($new->safe_psql('restored', 'SELECT system_id = (SELECT system_identifier FROM pg_control_system()) FROM aos_cus.cus_rollup_state'),
	't', 'the rollup state now records this cluster');
# Burn past the restored ids: nothing restored may be folded a second time.
$new->safe_psql('restored', 'DO $$ BEGIN FOR i IN 1..4000 LOOP PERFORM pg_current_xact_id(); COMMIT; END LOOP; END $$');
ingest($new, 'restored', 'e', 40);
is($new->safe_psql('restored', 'SELECT aos_cus.rollup_usage()'), '40', 'later rollups are incremental');
is($new->safe_psql('restored', $mismatches), '0', 'and exact');

# A state recorded by another cluster (pg_upgrade, a copied data directory) also triggers a rebuild.
$new->safe_psql('restored', 'UPDATE aos_cus.cus_rollup_state SET system_id = 42');
is($new->safe_psql('restored', 'SELECT aos_cus.rollup_usage()'), '690', 'a foreign system_id rebuilds everything');
is($new->safe_psql('restored', $mismatches), '0', 'exactly');

$old->stop;
$new->stop;
done_testing();
