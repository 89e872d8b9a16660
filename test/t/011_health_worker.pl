# The health worker: queued checks probed and recorded, repeats coalesced, several probes in flight,
# no transaction or snapshot (and no lock blocking ALTER TABLE) while a probe hangs, stale integrations
# re-probed, restart after a crash with its claimed checks released, exit on postmaster death.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use AosCusTest;
use AosCusMock;

set_mock_key_env();
my %keys = mock_keys();
my ($mock, $port) = start_mock_provider();
# The mock listens on 127.0.0.1 over plain http: the operator allows both explicitly (the egress policy refuses them);
# the worker reads the allowance from the configuration file.
my $node = aos_cus_node('health_worker', extra_conf => qq{
aos_cus.health_worker = on
aos_cus.health_database = 'postgres'
aos_cus.health_interval = 0
aos_cus.health_timeout = '8s'
log_statement = 'all'
restart_after_crash = on
aos_cus.egress_allowed_networks = '127.0.0.1/32'
aos_cus.egress_allow_http = on
});
my $tenant = '00000000-0000-0000-0000-0000000000d1';
my $worker_sql = q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'aos_cus health worker'};

# An enabled integration at the mock (its env:// source allowed by the operator); returns its id.
sub integration
{
	my ($name, $provider, $key, $status) = @_;
	$status //= 'enabled';
	$node->safe_psql('postgres', qq{SELECT aos_cus.allow_credential_source('$tenant', 'env://AOS_CUS_KEY_$key')});
	return $node->safe_psql('postgres', qq{
INSERT INTO aos_cus.cus_integrations (tenant_id, name, provider, status, credential_ref, base_url)
VALUES ('$tenant', '$name', '$provider', '$status', 'env://AOS_CUS_KEY_$key', 'http://127.0.0.1:$port') RETURNING id});
}

# request_health_check() of one integration ('t' queued, 'f' coalesced).
sub request
{
	my ($id, $settings) = @_;
	$settings //= '';
	return $node->safe_psql('postgres', qq{$settings SELECT aos_cus.request_health_check('$tenant', '$id')});
}

# "state|error" as recorded on the integration.
sub health
{
	my ($id) = @_;
	return $node->safe_psql('postgres', qq{SELECT health_state || '|' || coalesce(health_error, '') FROM aos_cus.cus_integrations WHERE id = '$id'});
}

ok($node->poll_query_until('postgres', "SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'aos_cus health worker'"),
	'the health worker runs');
my $worker = $node->safe_psql('postgres', $worker_sql);

my $good = integration('w-openai-good', 'openai', 'GOOD');
my $bad = integration('w-google-bad', 'google', 'BAD');
my $r429 = integration('w-azure-429', 'azure_openai', 'R429');
my $hang = integration('w-anthropic-hang', 'anthropic', 'HANG');
my $off = integration('w-disabled', 'openai', 'GOOD', 'disabled');
my $nokey = integration('w-nokey', 'openai', 'MISSING');

# Queued checks are probed and recorded; a second request inside health_min_interval is coalesced.
is(request($good), 't', 'a check is queued');
is(request($good), 'f', 'a second request while it is queued is coalesced');
is(request($bad), 't', 'a second integration is queued');
is(request($r429), 't', 'a third integration is queued');
is(request($nokey), 't', 'an integration whose credential cannot be resolved is queued');
ok($node->poll_query_until('postgres', qq{SELECT count(*) = 4 FROM aos_cus.cus_integrations WHERE health_checked_at IS NOT NULL}),
	'the worker probed and recorded the queued checks');
like(health($nokey), qr/^failing\|credential could not be resolved: /, 'an unresolvable credential is recorded failing, the batch goes on');
is(health($good), 'healthy|', 'queued OpenAI check recorded healthy');
is(health($bad), 'failing|HTTP 401: credential rejected', 'queued Google check with a wrong key recorded failing');
is(health($r429), 'degraded|HTTP 429: rate limited', 'queued Azure check answered 429 recorded degraded');
is(request($good), 'f', 'a request right after the probe (inside health_min_interval) is coalesced');
is($node->safe_psql('postgres', 'SELECT count(*) FROM aos_cus.cus_health_checks'), '0', 'the queue is empty again');
is(mock_stats($port)->{requests}, 3, 'the provider saw exactly one request per integration: coalesced requests never probed');

# The worker resolves a credential encrypted by the vault (create_integration) on its own.
$keys{VAULT} = 'valid-vault-Secret-2024-health';
my $vault = $node->safe_psql('postgres', qq{SELECT aos_cus.create_integration('$tenant', 'w-vault', 'google', '$keys{VAULT}',
    '{"base_url": "http://127.0.0.1:$port"}')});
$node->safe_psql('postgres', qq{SELECT aos_cus.enable_integration('$tenant', '$vault')});
is(request($vault), 't', 'a check of an integration with an encrypted:// credential is queued');
ok($node->poll_query_until('postgres', qq{SELECT health_state = 'healthy' FROM aos_cus.cus_integrations WHERE id = '$vault'}),
	'the worker decrypted its key and recorded it healthy');

# A hanging probe: the worker holds no transaction, snapshot or lock meanwhile, and runs other probes beside it.
is(request($hang), 't', 'a check of a hanging provider is queued');
ok($node->poll_query_until('postgres', qq{SELECT claimed_at IS NOT NULL FROM aos_cus.cus_health_checks WHERE integration_id = '$hang'}),
	'the worker claimed it');
for (my $i = 0; $i < 100 && !(mock_stats($port)->{by_status}{hang} // 0); $i++)
{
	select(undef, undef, undef, 0.1);
}
is(mock_stats($port)->{by_status}{hang}, 1, 'the hanging request reached the provider');
is($node->safe_psql('postgres', qq{SELECT state || '|' || (backend_xid IS NULL) || '|' || (backend_xmin IS NULL) FROM pg_stat_activity WHERE pid = $worker}),
	'idle|true|true', 'while the probe hangs the worker is idle, with no transaction id and no snapshot');
is($node->safe_psql('postgres', qq{SELECT count(*) FROM pg_locks WHERE pid = $worker AND locktype = 'relation'}), '0',
	'and holds no relation lock');
my ($ret, $out, $err) = $node->psql('postgres', q{SET lock_timeout = '5s';
ALTER TABLE aos_cus.cus_integrations ADD COLUMN tap_probe integer;
ALTER TABLE aos_cus.cus_integrations DROP COLUMN tap_probe;});
is($ret, 0, 'ALTER TABLE on cus_integrations is not blocked by the hanging probe');
is(request($bad, "SET aos_cus.health_min_interval = 0;"), 't', 'another check is queued while the hang is in flight');
ok($node->poll_query_until('postgres', qq{SELECT count(*) = 2 FROM aos_cus.cus_health_history WHERE integration_id = '$bad'}),
	'it is probed and recorded while the hanging probe is still in flight (curl multi)');
is($node->safe_psql('postgres', qq{SELECT health_state FROM aos_cus.cus_integrations WHERE id = '$hang'}), 'unknown',
	'the hanging probe is still unrecorded');
ok($node->poll_query_until('postgres', qq{SELECT health_state = 'degraded' FROM aos_cus.cus_integrations WHERE id = '$hang'}),
	'the hanging probe ends at the timeout bound');
like(health($hang), qr/^degraded\|timed out after \d+ ms$/, 'and is recorded degraded with a timeout error');
is($node->safe_psql('postgres', $worker_sql), $worker, 'the worker survived failing and hanging probes (same process)');

# Stale integrations are re-probed; disabled ones are not.
$node->safe_psql('postgres', qq{UPDATE aos_cus.cus_integrations SET health_checked_at = now() - interval '1 hour' WHERE id = '$good'});
$node->safe_psql('postgres', q{ALTER SYSTEM SET aos_cus.health_interval = '30min'; SELECT pg_reload_conf()});
ok($node->poll_query_until('postgres', qq{SELECT health_checked_at > now() - interval '5 minutes' FROM aos_cus.cus_integrations WHERE id = '$good'}),
	'an integration last probed an hour ago (health_interval 30min) is re-probed without a request');
is($node->safe_psql('postgres', qq{SELECT count(*) FROM aos_cus.cus_health_history WHERE integration_id = '$good'}), '2',
	'the re-probe is recorded in the history');
is($node->safe_psql('postgres', qq{SELECT health_checked_at IS NULL FROM aos_cus.cus_integrations WHERE id = '$off'}), 't',
	'a disabled integration is not re-probed');
$node->safe_psql('postgres', q{ALTER SYSTEM SET aos_cus.health_interval = 0; SELECT pg_reload_conf()});

# The worker applies a reloaded egress policy: without the operator's allowance the mock is refused, unprobed.
my $mock_requests = mock_stats($port)->{requests};
$node->safe_psql('postgres', q{ALTER SYSTEM SET aos_cus.egress_allowed_networks = ''; SELECT pg_reload_conf()});
sleep 1;
is(request($good, "SET aos_cus.health_min_interval = 0;"), 't', 'a check is queued after the allowance is withdrawn');
ok($node->poll_query_until('postgres', qq{SELECT health_error LIKE 'egress refused:%' FROM aos_cus.cus_integrations WHERE id = '$good'}),
	'the worker refuses the loopback target once the allowance is withdrawn');
is(health($good), 'failing|egress refused: the target address is not allowed by the egress policy', 'recorded failing with the one refusal text');
is(mock_stats($port)->{requests}, $mock_requests, 'the mock saw no request');
$node->safe_psql('postgres', q{ALTER SYSTEM RESET aos_cus.egress_allowed_networks; SELECT pg_reload_conf()});

# A crash of the worker: the postmaster restarts it, and checks its predecessor had claimed are probed.
$node->safe_psql('postgres', qq{INSERT INTO aos_cus.cus_health_checks (tenant_id, integration_id, claimed_at) VALUES ('$tenant', '$r429', now())});
kill 'KILL', $worker;
ok($node->poll_query_until('postgres', "SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'aos_cus health worker' AND pid <> $worker"),
	'the worker comes back after being killed with SIGKILL');
my $worker2 = $node->safe_psql('postgres', $worker_sql);
ok($node->poll_query_until('postgres', qq{SELECT count(*) = 0 FROM aos_cus.cus_health_checks}),
	'a check claimed by the killed worker is released and probed');
is($node->safe_psql('postgres', qq{SELECT count(*) FROM aos_cus.cus_health_history WHERE integration_id = '$r429'}), '2',
	'and its result recorded');

# Postmaster death: the worker exits on its own.
$node->kill9;
my $gone = 0;
for (my $i = 0; $i < 300; $i++)
{
	if (!kill(0, $worker2)) { $gone = 1; last; }
	select(undef, undef, undef, 0.1);
}
ok($gone, 'the worker exits when the postmaster dies');
$node->start;

# No key in the server log.
my $log = slurp_file($node->logfile);
unlike($log, qr/\Q$keys{$_}\E/, "key $_ appears in no server log line") for sort keys %keys;

$node->stop;
$mock->kill_kill;
done_testing();
