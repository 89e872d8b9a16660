# Scaling out on Citus (issue 20): a loopback coordinator and two workers, aos_cus preloaded on all three with one
# keyring; aos_cus.citus_distribute(), then the README's main flow through the coordinator.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use AosCusMock;
use FindBin;
use lib $FindBin::RealBin;
use AosCusCitus;

# Health probes go to a loopback mock provider with env:// keys (see AosCusMock.pm).
set_mock_key_env();
my ($mock, $mock_port) = start_mock_provider();

my ($coord, $w1, $w2, $cron) = citus_cluster(extra_conf => q{
aos_cus.health_worker = on
aos_cus.health_interval = 0
});
my @nodes = ($coord, $w1, $w2);

# Before: the single-node schema; citus_distribute() refuses tenants and runs as the operator only.
my ($ret, $out, $err) = $coord->psql('postgres', q{SET aos_cus.tenant_id = '00000000-0000-4000-8000-000000000001';
SELECT * FROM aos_cus.citus_distribute()});
like($err, qr/spans every tenant/, 'citus_distribute() refuses a session acting for a tenant');

my $dist = $coord->safe_psql('postgres', 'SELECT action, count(*) FROM aos_cus.citus_distribute() GROUP BY 1 ORDER BY 1');
note $dist;
like($dist, qr/distributed by tenant_id\|12/, 'twelve tenant tables distributed by tenant_id');
like($dist, qr/reference table\|1/, 'prices are a reference table');
like($dist, qr/delegated by tenant_id\|\d+/, 'tenant-scoped functions delegated');
my $again = $coord->safe_psql('postgres', 'SELECT action, count(*) FROM aos_cus.citus_distribute() GROUP BY 1 ORDER BY 1');
like($again, qr/already distributed\|12/, 'citus_distribute() is idempotent');
SKIP:
{
	skip 'pg_cron not installed', 1 unless $cron;
	is($coord->safe_psql('postgres', q{SELECT count(*) || ':' || min(command) FROM cron.job WHERE jobname = 'aos_cus_rollup'}),
		'1:SELECT aos_cus.citus_rollup()', 'one rollup job on the coordinator, running citus_rollup() on every worker');
}
is($coord->safe_psql('postgres', q{SELECT count(*) FROM pg_dist_partition d WHERE colocationid =
    (SELECT colocationid FROM pg_dist_partition WHERE logicalrelid = 'aos_cus.cus_integrations'::regclass)
    AND NOT EXISTS (SELECT 1 FROM pg_inherits i WHERE i.inhrelid = d.logicalrelid)}),
	'12', 'every tenant table colocated with cus_integrations (time partitions follow their table)');

# Tenants on both workers.
my ($T1, $T2, $worker_of) = tenants_on_workers($coord, $w1, $w2, 'a0000000');
my %port_of = map { $_ => $worker_of->{$_}->port } ($T1, $T2);
my %node_of = map { $_->port => $_ } ($w1, $w2);
ok($port_of{$T1} != $port_of{$T2}, 'tenants found on each worker');

# The README main flow through the coordinator, for a tenant on each worker.
my %integ;
my @days = split /\n/, $coord->safe_psql('postgres', 'SELECT now() - make_interval(days => g) FROM generate_series(0, 2) g');
for my $t ($T1, $T2)
{
	$integ{$t} = $coord->safe_psql('postgres', qq{
SELECT aos_cus.create_integration('$t', 'openai-prod', 'openai', 'sk-proj-abcdefghijklmnop1234',
       '{"limits": {"budget_microcents": 1000000, "budget_period": "total"}}')});
	$coord->safe_psql('postgres', qq{SELECT aos_cus.enable_integration('$t', '$integ{$t}')});
	my $list = $coord->safe_psql('postgres', qq{SELECT name || ':' || status FROM aos_cus.list_integrations('$t')});
	is($list, 'openai-prod:enabled', "list_integrations through the coordinator ($port_of{$t})");
	is($coord->safe_psql('postgres', qq{SELECT credential_hint FROM aos_cus.get_integration('$t', '$integ{$t}')}),
		'1234', 'get_integration through the coordinator');
	is($coord->safe_psql('postgres', qq{SELECT decision FROM aos_cus.check('$t', '$integ{$t}', 1000, 100, 'c1')}),
		'allowed', 'check() allows within the budget');
	my $first = $coord->safe_psql('postgres', qq{SELECT status || ':' || cost_microcents FROM aos_cus.ingest_usage('$t',
		jsonb_build_object('integration_id', '$integ{$t}', 'call_id', 'c1', 'provider', 'openai', 'model', 'gpt-4o',
		'usage', '{"prompt_tokens": 1000, "completion_tokens": 100}'::jsonb, 'latency_ms', 812, 'started_at', now()))});
	like($first, qr/^inserted:\d+$/, 'ingest_usage inserts');
	my $dup = $coord->safe_psql('postgres', qq{SELECT status FROM aos_cus.ingest_usage('$t',
		jsonb_build_object('integration_id', '$integ{$t}', 'call_id', 'c1', 'provider', 'openai', 'model', 'gpt-4o',
		'usage', '{"prompt_tokens": 1000, "completion_tokens": 100}'::jsonb, 'started_at', now()))});
	is($dup, 'duplicate', 'the same call_id again is a duplicate (dedupe per tenant)');
	# Delegation needs constant arguments: the batch is built here, not by a subquery.
	my $records = '[' . join(',', map { sprintf('{"integration_id": "%s", "call_id": "b%d", "provider": "openai", '
		. '"model": "gpt-4o-mini", "usage": {"prompt_tokens": %d, "completion_tokens": %d}, "started_at": "%s"}',
		$integ{$t}, $_, $_ * 10, $_, $days[$_ % 3]) } 1 .. 50) . ',{"call_id": "c1"}]';
	my $batch = join(',', split /\n/, $coord->safe_psql('postgres',
		qq{SELECT status FROM aos_cus.ingest_usage_batch('$t', '$records')}));
	like($batch, qr/^(inserted,){50}(rejected|duplicate)$/, 'ingest_usage_batch through the coordinator');
	my $used = $coord->safe_psql('postgres', qq{SELECT spent_microcents > 0 AND reserved_microcents = 0 FROM aos_cus.current_usage('$t', '$integ{$t}')});
	is($used, 't', 'the worker settled the usage: current_usage shows it, no reservation left');
	is($coord->safe_psql('postgres', qq{SELECT sum(requests) FROM aos_cus.usage_summary('$t')}), '51',
		'usage_summary through the coordinator');
	is($node_of{ $port_of{$t} }->safe_psql('postgres', qq{SET citus.override_table_visibility = off;
		SELECT count(*) FROM pg_class WHERE relname LIKE 'cus_llm_usage_%' AND relkind = 'r'}) > 0 ? 'shards' : 'none',
		'shards', 'the tenant\'s worker stores usage shards');
}
# Tenancy on the workers: a login bound to T2 (bind_login() writes the binding on every node) acts for T2
# there too; a tenant set only by the coordinator session's aos_cus.tenant_id does not travel, so the worker refuses.
$coord->safe_psql('postgres', qq{
CREATE ROLE t2_app LOGIN IN ROLE aos_cus_app; CREATE ROLE guc_app LOGIN IN ROLE aos_cus_app;
SELECT aos_cus.bind_login('t2_app', '$T2');});
($ret, $out, $err) = $coord->psql('postgres', qq{SELECT name FROM aos_cus.list_integrations('$T1')},
	extra_params => [ '-U', 't2_app' ]);
like($err, qr/permission denied|acts for|42501/, 'a login bound to T2 cannot read T1 through the coordinator');
is($coord->safe_psql('postgres', qq{SELECT name FROM aos_cus.list_integrations('$T2')}, extra_params => [ '-U', 't2_app' ]),
	'openai-prod', 'a login bound to T2 reads T2 on its worker');
($ret, $out, $err) = $coord->psql('postgres', qq{SET aos_cus.tenant_id = '$T1'; SELECT name FROM aos_cus.list_integrations('$T1')},
	extra_params => [ '-U', 'guc_app' ]);
like($err, qr/no tenant is set/,
	'aos_cus.tenant_id of the coordinator session does not reach the worker: refused there (fails closed)');

# Inside a transaction block (how PostgREST runs a request) the call is still delegated (force_delegation).
my $dec_before = $coord->safe_psql('postgres', q{SELECT coalesce(sum(count), 0) FROM aos_cus.stat_decisions()});
is($coord->safe_psql('postgres', qq{BEGIN; SELECT decision FROM aos_cus.check('$T1', '$integ{$T1}', 1, 1); COMMIT;}),
	'allowed', 'check() inside BEGIN ... COMMIT through the coordinator');
is($coord->safe_psql('postgres', qq{PREPARE q(uuid, uuid) AS SELECT decision FROM aos_cus.check(\$1, \$2, 1, 1);
BEGIN; EXECUTE q('$T1', '$integ{$T1}'); COMMIT;}), 'allowed', 'check() with bind parameters inside BEGIN ... COMMIT');
is($coord->safe_psql('postgres', q{SELECT coalesce(sum(count), 0) FROM aos_cus.stat_decisions()}), $dec_before,
	'inside a transaction block, with constants or parameters, the worker decided, not the coordinator');
# PostgREST: authenticator, SET LOCAL ROLE (Citus opens the worker connection as that role: it needs LOGIN), claims
# by set_config(). set_config() does not travel to the worker: refused there (fails closed). A pre-request function
# that re-states the tenant with SET LOCAL, with citus.propagate_set_commands = 'local', makes it travel.
$coord->safe_psql('postgres', q{
CREATE ROLE authenticator LOGIN NOINHERIT; CREATE ROLE tenant_admin LOGIN IN ROLE aos_cus_admin;
GRANT tenant_admin TO authenticator;
CREATE FUNCTION public.citus_pre_request() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE pg_catalog.format('SET LOCAL aos_cus.tenant_id = %L',
                              pg_catalog.current_setting('request.jwt.claims', true)::jsonb ->> 'tenant_id');
END $$;
GRANT EXECUTE ON FUNCTION public.citus_pre_request() TO tenant_admin;});
my $request = sub {
	my ($pre) = @_;
	return $coord->psql('postgres', qq{SET citus.propagate_set_commands = 'local';
BEGIN ISOLATION LEVEL READ COMMITTED; SET LOCAL ROLE tenant_admin;
SELECT set_config('request.jwt.claims', '{"role": "tenant_admin", "tenant_id": "$T1"}', true) IS NOT NULL;
$pre
SELECT name FROM aos_cus.list_integrations('$T1'); COMMIT;}, extra_params => [ '-U', 'authenticator' ]);
};
($ret, $out, $err) = $request->('');
like($err, qr/no tenant is set/,
	'PostgREST request: request.jwt.claims set by set_config() does not reach the worker: refused there (fails closed)');
($ret, $out, $err) = $request->('SELECT public.citus_pre_request();');
like($out, qr/openai-prod/, 'with a pre-request function (SET LOCAL aos_cus.tenant_id) the tenant reaches the worker')
	or diag $err;

# Ids unique cluster-wide.
is($coord->safe_psql('postgres', q{SELECT count(*) = count(DISTINCT id) AND count(*) = 102 FROM aos_cus.cus_llm_usage}),
	't', 'usage ids are unique cluster-wide');
is($coord->safe_psql('postgres', q{SELECT count(DISTINCT id >> 48) FROM aos_cus.cus_llm_usage}), '2',
	'each worker draws ids from its own range');

# Rollups per node equal a recompute.
my $roll = $coord->safe_psql('postgres', 'SELECT string_agg(coalesce(folded::text, \'failed\'), \',\' ORDER BY nodeport) FROM aos_cus.citus_rollup()');
is($roll, '51,51', 'citus_rollup() folds each worker\'s own rows once');
is($coord->safe_psql('postgres', 'SELECT string_agg(folded::text, \',\' ORDER BY nodeport) FROM aos_cus.citus_rollup()'), '0,0',
	'a second rollup folds nothing');
my $recompute = q{
SELECT tenant_id, integration_id, (started_at AT TIME ZONE 'UTC')::date, provider, model, count(*), sum(input_tokens),
       sum(output_tokens), sum(cost_microcents) FROM aos_cus.cus_llm_usage GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5};
my $daily = q{
SELECT tenant_id, integration_id, day, provider, model, requests, input_tokens, output_tokens, cost_microcents
  FROM aos_cus.cus_usage_daily ORDER BY 1, 2, 3, 4, 5};
is($coord->safe_psql('postgres', $daily), $coord->safe_psql('postgres', $recompute), 'rollups equal a recompute');

# reprice_usage() through the coordinator: each worker reprices the rows it stores; aggregates and spend follow.
for my $t ($T1, $T2)
{
	is($coord->safe_psql('postgres', qq{SELECT status || ':' || (cost_microcents IS NULL) FROM aos_cus.ingest_usage('$t',
		'{"integration_id": "$integ{$t}", "call_id": "u1", "provider": "openai", "model": "aos-citus-model", "usage": {"prompt_tokens": 1000000, "completion_tokens": 0}, "started_at": "$days[0]"}')}),
		'inserted:true', 'an unpriced row');
}
is($coord->safe_psql('postgres', 'SELECT string_agg(folded::text, \',\' ORDER BY nodeport) FROM aos_cus.citus_rollup()'), '1,1',
	'the unpriced rows are folded');
my %spent = map { $_ => $coord->safe_psql('postgres', qq{SELECT spent_microcents FROM aos_cus.current_usage('$_', '$integ{$_}')}) } ($T1, $T2);
$coord->safe_psql('postgres', q{SELECT aos_cus.set_price('openai', 'aos-citus-model', 7000000, 0, effective_from => now() - interval '30 days')});
is($coord->safe_psql('postgres', q{SELECT aos_cus.reprice_usage(now() - interval '30 days', now() + interval '1 day')}), '2',
	'reprice_usage() through the coordinator reprices the unpriced row on each worker');
is($coord->safe_psql('postgres', q{SELECT count(*) FROM aos_cus.cus_llm_usage WHERE cost_microcents IS NULL}), '0', 'no unpriced row left');
for my $t ($T1, $T2)
{
	is($coord->safe_psql('postgres', qq{SELECT spent_microcents - $spent{$t} FROM aos_cus.current_usage('$t', '$integ{$t}')}),
		'7000000', "the worker holding the tenant settled the new cost ($port_of{$t})");
}
is($coord->safe_psql('postgres', $daily), $coord->safe_psql('postgres', $recompute), 'after repricing, rollups equal a recompute');
is($coord->safe_psql('postgres', q{SELECT aos_cus.reprice_usage(now() - interval '30 days', now() + interval '1 day')}), '0',
	'a second reprice changes nothing');

# Retention: set_retention() on the coordinator reaches every worker; citus_rollup() drops the partitions past it
# (on the coordinator) and each worker prunes its own hourly rollups.
my $old_day = $coord->safe_psql('postgres', q{SELECT date_trunc('month', now() - interval '100 days') + interval '1 day'});
$coord->safe_psql('postgres', q{SELECT aos_cus.set_partitioning(hourly_retention => interval '200 days')});
is($coord->safe_psql('postgres', qq{SELECT status FROM aos_cus.ingest_usage('$T2',
	'{"integration_id": "$integ{$T2}", "call_id": "old1", "provider": "openai", "model": "gpt-4o", "usage": {"prompt_tokens": 10, "completion_tokens": 1}, "started_at": "$old_day"}')}),
	'inserted', 'a row 100 days old');
$coord->safe_psql('postgres', 'SELECT aos_cus.citus_rollup()');
my $w_T2 = $node_of{ $port_of{$T2} };
is($w_T2->safe_psql('postgres', qq{SELECT count(*) FROM aos_cus.cus_usage_hourly WHERE hour < now() - interval '35 days'}), '1',
	'the old row is in the hourly rollup of its worker');
$coord->safe_psql('postgres', q{SELECT aos_cus.set_retention(interval '60 days', interval '60 days');
SELECT aos_cus.set_partitioning(hourly_retention => interval '40 days')});
is(join(',', map { $_->safe_psql('postgres', q{SELECT raw_retention || '/' || hourly_retention FROM aos_cus.cus_usage_settings}) } @nodes),
	'60 days/40 days,60 days/40 days,60 days/40 days', 'set_retention() and set_partitioning() on the coordinator reach every worker');
$coord->safe_psql('postgres', 'SELECT aos_cus.citus_rollup()');
is($coord->safe_psql('postgres', q{SELECT count(*) FROM aos_cus.cus_llm_usage WHERE started_at < now() - interval '60 days'}), '0',
	'the partition past retention is dropped cluster-wide');
is($w_T2->safe_psql('postgres', q{SELECT count(*) FROM aos_cus.cus_usage_hourly WHERE hour < now() - interval '40 days'}), '0',
	'the worker prunes its hourly rollups past hourly_retention');
is($coord->safe_psql('postgres', q{SELECT count(*) FROM aos_cus.cus_llm_usage WHERE started_at >= now() - interval '60 days'}), '104',
	'rows inside retention are kept');


# Reservation exactness: 8 pgbench clients reserving random estimates through the coordinator against one tenant's
# budget of 1,000,000 on its worker; check() is delegated, so the worker's shared memory decides.
my $budget_integ = $coord->safe_psql('postgres', qq{
SELECT aos_cus.create_integration('$T1', 'budget', 'openai', 'sk-proj-abcdefghijklmnop5678',
       '{"limits": {"budget_microcents": 1000000, "budget_period": "total"}}')});
$coord->safe_psql('postgres', qq{SELECT aos_cus.enable_integration('$T1', '$budget_integ')});
# Webhooks stay local tables of each node (cus_webhook_events.event_id is unique by itself, not by tenant): the
# delegated create_webhook and check() write them on the worker holding the tenant.
like($coord->safe_psql('postgres', qq{SELECT secret FROM aos_cus.create_webhook('$T1', 'http://127.0.0.1:9/hook')}),
	qr/^whsec_/, 'create_webhook() through the coordinator');
is($coord->safe_psql('postgres', qq{SELECT url FROM aos_cus.list_webhooks('$T1')}), 'http://127.0.0.1:9/hook',
	'list_webhooks() through the coordinator');
is(join(',', map { $_->safe_psql('postgres', 'SELECT count(*) FROM aos_cus.cus_webhooks') } @nodes),
	$port_of{$T1} == $w1->port ? '0,1,0' : '0,0,1', 'the endpoint is stored on the tenant\'s worker only');
my $script = PostgreSQL::Test::Utils::tempdir . '/budget.sql';
open(my $fh, '>', $script) or die "$script: $!";
print $fh qq{\\set est random(1, 1000)
\\set cid random(1, 1000000000000)
SELECT decision FROM aos_cus.check('$T1', '$budget_integ', :est, 0, 'c:cid');
};
close $fh;
my $bench_out = '';
my $bench = IPC::Run::start([ 'pgbench', '-n', '-h', $coord->host, '-p', $coord->port, '-c', 8, '-j', 2, '-t', 400,
	'-f', $script, 'postgres' ], '>', \$bench_out, '2>', \$bench_out);
$bench->finish;
is($?, 0, 'pgbench: 8 clients x 400 checks through the coordinator') or diag $bench_out;
note join("\n", grep { /tps|latency/ } split /\n/, $bench_out);
# Delegated reads are plain calls: SELECT ... FROM fn(constants), no subquery around them.
my $reserved = $coord->safe_psql('postgres', qq{SELECT reserved_microcents FROM aos_cus.current_usage('$T1', '$budget_integ')});
my $blocked = $coord->safe_psql('postgres',
	qq{SELECT count(*) FROM aos_cus.cus_enforcement_log WHERE integration_id = '$budget_integ' AND reason = 'budget_exceeded'});
note "budget: $reserved of 1000000 reserved, $blocked blocked";
cmp_ok($reserved, '<=', 1000000, 'admitted reservations never exceed the budget');
cmp_ok(1000000 - $reserved, '<', 1000, 'the last admissions fill the budget to within one estimate');
cmp_ok($blocked, '>', 0, 'once exhausted, checks are blocked and logged on the tenant\'s worker');
is($node_of{ $port_of{$T1} }->safe_psql('postgres', qq{SELECT count(*) FROM aos_cus.cus_webhook_events
    WHERE type = 'budget.exhausted' AND payload ->> 'integration' = '$budget_integ'}), '1',
	'the worker that blocked wrote the budget.exhausted event once, with a delivery for the endpoint');
is($coord->safe_psql('postgres', 'SELECT count(*) FROM aos_cus.cus_webhook_events'), '0', 'the coordinator wrote no event');
my ($dec_worker, $dec_coord) = map { $_->safe_psql('postgres',
	q{SELECT coalesce(sum(count), 0) FROM aos_cus.stat_decisions() WHERE decision = 'blocked'}) } ($node_of{ $port_of{$T1} }, $coord);
cmp_ok($dec_worker, '>', 0, 'the decisions were taken on the worker holding the tenant');
is($dec_coord, '0', 'the coordinator decided nothing itself');

# Throughput figures for docs/citus-throughput.md (notes only: a 2-core loopback machine shows no scaling).
sub bench
{
	my ($node, $label, $sql) = @_;
	my $file = PostgreSQL::Test::Utils::tempdir . '/bench.sql';
	open(my $bf, '>', $file) or die "$file: $!";
	print $bf $sql;
	close $bf;
	my $o = '';
	my $h = IPC::Run::start([ 'pgbench', '-n', '-h', $node->host, '-p', $node->port, '-c', 4, '-j', 2, '-T', 4,
		'-f', $file, 'postgres' ], '>', \$o, '2>', \$o);
	$h->finish;
	my ($tps) = $o =~ /tps = ([0-9.]+)/;
	note sprintf('throughput %-60s %8.0f/s', $label, $tps // 0);
}
my $ingest = qq{\\set cid random(1, 1000000000000)
SELECT status FROM aos_cus.ingest_usage('$T2', '{"integration_id": "$integ{$T2}", "call_id": "bench-:cid", "provider": "openai", "model": "gpt-4o", "usage": {"prompt_tokens": 100, "completion_tokens": 10}, "started_at": "$days[0]"}');
};
my $check = qq{SELECT decision FROM aos_cus.check('$T2', '$integ{$T2}', 1, 1);
};
bench($coord, 'check() through the coordinator (delegated)', $check);
bench($node_of{ $port_of{$T2} }, 'check() on the tenant\'s worker', $check);
bench($coord, 'ingest_usage() through the coordinator (delegated)', $ingest);
bench($node_of{ $port_of{$T2} }, 'ingest_usage() on the tenant\'s worker', $ingest);

# Metrics per node: each node's metrics() shows the tenants it stores; scrape every node.
for my $n ($w1, $w2)
{
	my $m = $n->safe_psql('postgres', 'SELECT aos_cus.metrics()');
	like($m, qr/^aos_cus_/m, 'metrics() on worker ' . $n->port);
}
like($node_of{ $port_of{$T1} }->safe_psql('postgres', 'SELECT aos_cus.metrics()'), qr/\Q$budget_integ\E/,
	'the budget gauge of T1 is on its worker');

# Health: each node's health worker probes the integrations that node stores, so a check requested through the
# coordinator is probed exactly once cluster-wide, on the tenant's worker.
my %probe;
for my $t ($T1, $T2)
{
	$coord->safe_psql('postgres', qq{SELECT aos_cus.allow_credential_source('$t', 'env://AOS_CUS_KEY_GOOD')});
	$probe{$t} = $coord->safe_psql('postgres', qq{
SELECT aos_cus.create_integration('$t', 'probed', 'openai', 'env://AOS_CUS_KEY_GOOD', '{"base_url": "http://127.0.0.1:$mock_port"}')});
	$coord->safe_psql('postgres', qq{SELECT aos_cus.enable_integration('$t', '$probe{$t}')});
	is($coord->safe_psql('postgres', qq{SELECT aos_cus.request_health_check('$t', '$probe{$t}')}), 't',
		'request_health_check() through the coordinator queues the check');
}
for my $t ($T1, $T2)
{
	ok($coord->poll_query_until('postgres', qq{SELECT health_state = 'healthy' FROM aos_cus.get_integration('$t', '$probe{$t}')}),
		"the probe of the tenant on $port_of{$t} is recorded");
}
sleep 2;
is(mock_stats($mock_port)->{requests}, 2, 'the provider saw exactly one probe per integration cluster-wide');
is($coord->safe_psql('postgres', q{SELECT count(*) FROM aos_cus.cus_health_checks}), '0', 'the queue is empty');
is($coord->safe_psql('postgres', q{SELECT count(*) FROM aos_cus.cus_health_history}), '2', 'one history row per probe');

# Key rotation across nodes: version 2 appended to the one keyring, every node restarted, one rotation.
write_keyring(2);
$_->restart for @nodes;
is($coord->safe_psql('postgres', 'SELECT aos_cus.rotate_encryption_key()'), '4',
	'rotate_encryption_key() through the coordinator re-encrypts the credentials (3) and the webhook secret (1) of every worker');
is($node_of{ $port_of{$T1} }->safe_psql('postgres', q{SELECT count(*) FROM aos_cus.cus_webhooks WHERE secret_ref LIKE 'encrypted://v1/2/%'}),
	'1', 'the webhook secret on the tenant\'s worker is under version 2');
is($coord->safe_psql('postgres', q{SELECT count(*) FROM aos_cus.cus_integrations WHERE credential_ref LIKE 'encrypted://%' AND credential_ref NOT LIKE 'encrypted://v1/2/%'}),
	'0', 'every credential under version 2');
for my $t ($T1, $T2)
{
	is($coord->safe_psql('postgres', qq{SELECT credential_hint FROM aos_cus.get_integration('$t', '$integ{$t}')}),
		'1234', 'credentials still read after rotation');
}

$mock->kill_kill;
done_testing();
