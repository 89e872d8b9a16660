# Ingest under load from several clients (single records and batches, rollups running alongside), then
# SIGKILL of the postmaster: after recovery every acknowledged call_id is present exactly once, a repeat
# of each is a duplicate, and the aggregates (rollup, then rebuild_daily) equal a full recompute.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use AosCusTest;

my $node = aos_cus_node('ingest_crash');
my $tenant = '00000000-0000-4000-8000-000000000061';
my $integration = '00000000-0000-4000-8000-0000000006a1';
$node->safe_psql('postgres',
	"INSERT INTO aos_cus.cus_integrations (tenant_id, id, name, provider) VALUES ('$tenant', '$integration', 'crash', 'openai')");

# The JSON of one record.
sub record_json
{
	my ($call_id, $n) = @_;
	my $day = 1 + $n % 5;
	return qq({"integration_id": "$integration", "call_id": "$call_id", "model": "gpt-4o", )
	  . qq("input_tokens": $n, "output_tokens": 7, "latency_ms": $n, "started_at": "2026-02-0${day}T12:00:00Z"});
}

# Four ingest clients (two single-record, two batches of 20) and one rollup client; each prints the
# call_ids the server acknowledged (psql prints a result only after its commit) into its own file.
my $dir = $node->basedir;
my (@harnesses, @outputs);
for my $c (1 .. 5)
{
	my $script = '';
	for my $i (1 .. 1500)
	{
		if ($c <= 2)
		{
			my $id = "c$c-$i";
			$script .= "SELECT '$id' FROM aos_cus.ingest_usage('$tenant', '" . record_json($id, $i) . "');\n";
		}
		elsif ($c <= 4)
		{
			my @recs = map { record_json("c$c-$i-$_", $i + $_) } 1 .. 20;
			$script .= "SELECT call_id FROM aos_cus.ingest_usage_batch('$tenant', '[" . join(',', @recs)
			  . "]') WHERE status = 'inserted';\n";
		}
		else
		{
			$script .= "SELECT 'rollup:' || aos_cus.rollup_usage() FROM pg_sleep(0.05);\n";
		}
	}
	open(my $fh, '>', "$dir/client$c.sql") or die "client script: $!";
	print $fh $script;
	close $fh;
	push @outputs, "$dir/client$c.out" if $c <= 4;
	push @harnesses,
	  IPC::Run::start(
		[ 'psql', '-X', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr('postgres'), '-f', "$dir/client$c.sql" ],
		'>', "$dir/client$c.out", '2>', "$dir/client$c.err");
}

# Let the load run, then kill the postmaster mid-flight.
# (On a loaded machine the rollup client may start late: wait for its first rollup as well.)
$node->poll_query_until('postgres', "SELECT count(*) > 3000 AND (SELECT last_rollup_at IS NOT NULL FROM aos_cus.cus_rollup_state)
  FROM aos_cus.cus_llm_usage")
  or die "load did not start";
crash_and_restart($node);
$_->finish for @harnesses;

my %acked;
for my $out (@outputs)
{
	$acked{$_}++ for grep { length } split /\n/, slurp_file($out);
}
my $nacked = scalar keys %acked;
my $rollups_done = () = slurp_file("$dir/client5.out") =~ /^rollup:/mg;
ok($rollups_done > 0, "$rollups_done rollups ran during the load");
ok($nacked > 3000, "clients had $nacked call_ids acknowledged before the crash");
is((grep { $_ > 1 } values %acked), 0, 'no call_id was acknowledged as inserted twice');

my $list = join(',', map { "('$_')" } sort keys %acked);
$node->safe_psql('postgres', "CREATE TABLE acked (call_id text PRIMARY KEY); INSERT INTO acked VALUES $list");
is($node->safe_psql('postgres', 'SELECT count(*) FROM acked a LEFT JOIN aos_cus.cus_llm_usage u USING (call_id) WHERE u.id IS NULL'),
	'0', 'every acknowledged call_id survived the crash');
is($node->safe_psql('postgres', 'SELECT count(*) FROM (SELECT call_id FROM aos_cus.cus_llm_usage GROUP BY tenant_id, call_id HAVING count(*) > 1) d'),
	'0', 'no call_id is present twice');

# Repeating every acknowledged record now gives duplicate, never a second row.
my $repeat = $node->safe_psql('postgres', qq{
SELECT count(*) FILTER (WHERE (aos_cus.ingest_usage('$tenant', jsonb_build_object(
           'integration_id', '$integration', 'call_id', call_id, 'model', 'gpt-4o', 'started_at', '2026-02-01T00:00:00Z'))).status = 'duplicate')
  FROM acked});
is($repeat, $nacked, 'a repeat of every acknowledged call_id is a duplicate');

my $mismatches = q{
WITH recompute AS (
    SELECT tenant_id, integration_id, (started_at AT TIME ZONE 'UTC')::date AS day, provider::text, model,
           count(*) AS requests, sum(input_tokens) AS i, sum(output_tokens) AS o,
           coalesce(sum(cost_microcents), 0) AS cost, coalesce(sum(latency_ms), 0) AS lsum, coalesce(max(latency_ms), 0) AS lmax
      FROM aos_cus.cus_llm_usage GROUP BY 1, 2, 3, 4, 5),
daily AS (
    SELECT tenant_id, integration_id, day, provider::text, model, requests, input_tokens::numeric, output_tokens::numeric,
           cost_microcents::numeric, latency_sum_ms::numeric, latency_max_ms FROM aos_cus.cus_usage_daily)
SELECT count(*) FROM ((TABLE recompute EXCEPT TABLE daily) UNION ALL (TABLE daily EXCEPT TABLE recompute)) x};
$node->safe_psql('postgres', 'SELECT aos_cus.rollup_usage()');
is($node->safe_psql('postgres', $mismatches), '0', 'after recovery a rollup makes the aggregates equal a recompute');
$node->safe_psql('postgres', "SELECT aos_cus.rebuild_daily('2026-01-01', '2026-12-31')");
is($node->safe_psql('postgres', $mismatches), '0', 'rebuild_daily gives the same aggregates');
is($node->safe_psql('postgres', 'SELECT aos_cus.rollup_usage()'), '0', 'and a further rollup has nothing to fold');

$node->stop;
done_testing();
