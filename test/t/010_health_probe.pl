# Real libcurl probes against the mock provider: each provider healthy with the right key, failing with a
# wrong one, degraded on 429, 500 and a hang (within the timeout bound); transport failures; no key leaks.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use AosCusTest;
use AosCusMock;

set_mock_key_env();
my %keys = mock_keys();
my ($mock, $port) = start_mock_provider();
# The mock listens on 127.0.0.1 over plain http: the operator allows both explicitly (the egress policy refuses them).
my $node = aos_cus_node('health_probe', extra_conf => "log_statement = 'all'\naos_cus.health_timeout = '1s'\n"
	. "aos_cus.egress_allowed_networks = '127.0.0.1/32'\naos_cus.egress_allow_http = on");
my $base = "http://127.0.0.1:$port";
my $tenant = '00000000-0000-0000-0000-0000000000c1';

# An enabled integration of the test tenant (its env:// source allowed by the operator); returns its id.
sub integration
{
	my ($name, $provider, $key, $base_url, $config) = @_;
	$config //= '{}';
	$node->safe_psql('postgres', qq{SELECT aos_cus.allow_credential_source('$tenant', 'env://AOS_CUS_KEY_$key')});
	return $node->safe_psql('postgres', qq{
INSERT INTO aos_cus.cus_integrations (tenant_id, name, provider, status, credential_ref, base_url, config)
VALUES ('$tenant', '$name', '$provider', 'enabled', 'env://AOS_CUS_KEY_$key', '$base_url', '$config') RETURNING id});
}

# test_credentials() of one integration as "state|error".
sub probe
{
	my ($id) = @_;
	return $node->safe_psql('postgres', qq{SELECT state || '|' || coalesce(error, '') FROM aos_cus.test_credentials('$tenant', '$id')});
}

my %expect = (
	GOOD => qr/^healthy\|$/,
	BAD  => qr/^failing\|HTTP 401: credential rejected$/,
	R403 => qr/^failing\|HTTP 403: credential rejected$/,
	R429 => qr/^degraded\|HTTP 429: rate limited$/,
	R500 => qr/^degraded\|HTTP 500: provider error$/,
	HANG => qr/^degraded\|timed out after \d+ ms$/,
);
my $probes = 0;
for my $provider (qw(openai anthropic google azure_openai))
{
	for my $kind (qw(GOOD BAD R403 R429 R500 HANG))
	{
		my $id = integration("$provider-$kind", $provider, $kind, $base);
		like(probe($id), $expect{$kind}, "$provider with key $kind");
		$probes++;
	}
}
my $stats = mock_stats($port);
is_deeply($stats->{by_provider}, { openai => 6, anthropic => 6, google => 6, azure_openai => 6 },
	'the mock saw each provider\'s auth headers (x-api-key + anthropic-version, x-goog-api-key, api-key + api-version, Bearer)');
is($stats->{by_status}{hang}, 4, 'each provider hung once');

# The hang was cut by aos_cus.health_timeout (1 s), not by the mock (which hangs for an hour).
my $hang_ms = $node->safe_psql('postgres', qq{SELECT max(health_latency_ms) FROM aos_cus.cus_integrations WHERE name LIKE '%-HANG'});
ok($hang_ms >= 900 && $hang_ms < 60000, "a hanging provider is cut at the timeout bound ($hang_ms ms)");

# Custom provider with its health_path, an SDK-style base_url ending in /v1, and Azure's api_version.
like(probe(integration('custom-ok', 'custom', 'GOOD', $base, '{"health_path": "/v1/models"}')), qr/^healthy\|$/, 'custom provider at its health_path');
like(probe(integration('custom-404', 'custom', 'GOOD', $base, '{"health_path": "/nowhere"}')), qr/^failing\|HTTP 404: unexpected status/, 'custom provider at a wrong path fails');
like(probe(integration('openai-v1', 'openai', 'GOOD', "$base/v1/")), qr/^healthy\|$/, 'an OpenAI base_url ending in /v1/ is not doubled');
like(probe(integration('azure-ver', 'azure_openai', 'GOOD', $base, '{"api_version": "2024-06-01"}')), qr/^healthy\|$/, 'Azure with a configured api_version');
like(probe(integration('azure-badver', 'azure_openai', 'GOOD', $base, '{"api_version": "x&y"}')), qr/^failing\|api_version must hold only/, 'an unsafe api_version is refused before any request');

# Transport failures and redirects.
like(probe(integration('refused', 'openai', 'GOOD', 'http://127.0.0.1:1')), qr/^failing\|could not connect/, 'connection refused is failing');
like(probe(integration('nxdomain', 'openai', 'GOOD', 'http://aos-cus-health-probe.invalid')), qr/^failing\|could not resolve host name$/, 'DNS failure is failing');
like(probe(integration('redirect', 'openai', 'REDIRECT', $base)), qr/^failing\|HTTP 302: redirect not followed/, 'a redirect to another host is not followed');
like(probe(integration('tls', 'openai', 'GOOD', "https://127.0.0.1:$port")), qr/^failing\|TLS handshake/, 'TLS to a plain-HTTP port fails verification, not silently');
like(probe(integration('endless', 'openai', 'ENDLESS', $base)), qr/^healthy\|$/,
	'a body that never ends is cut at its bound: the status decides, no timeout');
$probes++;

# TLS verification is on; aos_cus.health_ca_file names the CA bundle that makes a private CA trusted.
my $tlsdir = PostgreSQL::Test::Utils::tempdir();
system_or_bail('openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1',
	'-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', "$tlsdir/key.pem", '-out', "$tlsdir/cert.pem");
my ($tls_mock, $tls_port) = start_mock_provider("$tlsdir/cert.pem", "$tlsdir/key.pem");
my $tls_id = integration('tls-private-ca', 'openai', 'GOOD', "https://127.0.0.1:$tls_port");
like(probe($tls_id), qr/^failing\|TLS handshake or certificate verification failed$/, 'a certificate from an untrusted CA fails verification');
$node->safe_psql('postgres', qq{ALTER SYSTEM SET aos_cus.health_ca_file = '$tlsdir/cert.pem'; SELECT pg_reload_conf()});
$node->poll_query_until('postgres', q{SELECT current_setting('aos_cus.health_ca_file') <> ''});
like(probe($tls_id), qr/^healthy\|$/, 'with aos_cus.health_ca_file naming that CA the same provider is healthy over HTTPS');
$node->safe_psql('postgres', q{ALTER SYSTEM RESET aos_cus.health_ca_file; SELECT pg_reload_conf()});
$tls_mock->kill_kill;
$probes += 2;

my ($ret, $out, $err) = $node->psql('postgres', qq{SELECT * FROM aos_cus.test_credentials('$tenant', '@{[integration('nokey', 'openai', 'MISSING', $base)]}')});
isnt($ret, 0, 'an integration whose credential cannot be resolved raises an error');
$probes += 9;

# Through the credential vault: create_integration() encrypts the key, the probe resolves (decrypts) it.
my $vault_key = 'valid-vault-Secret-2024-health';
for my $provider (qw(openai anthropic google azure_openai))
{
	my $id = $node->safe_psql('postgres',
		qq{SELECT aos_cus.create_integration('$tenant', 'vault-$provider', '$provider', '$vault_key', '{"base_url": "$base"}')});
	$node->safe_psql('postgres', qq{SELECT aos_cus.enable_integration('$tenant', '$id')});
	like(probe($id), qr/^healthy\|$/, "$provider with an encrypted:// credential from the vault");
	$probes++;
}
$keys{VAULT} = $vault_key;

# Results are recorded on the integration and in the history, and counted.
is($node->safe_psql('postgres', "SELECT count(*) FROM aos_cus.cus_health_history WHERE tenant_id = '$tenant'"), $probes,
	'every probe left one history row');
is($node->safe_psql('postgres', q{SELECT value FROM aos_cus.stat_counters() WHERE name = 'health_probes'}), $probes,
	'health_probes counts every probe');
is($node->safe_psql('postgres', q{SELECT string_agg(name || '=' || value, ',' ORDER BY name) FROM aos_cus.stat_counters() WHERE name LIKE 'health_probes_%'}),
	'health_probes_degraded=12,health_probes_failing=15,health_probes_healthy=13', 'per-state outcome counters');

# No key anywhere: not in health_error, not in the history, not in the server log (log_statement = all).
my $errors = $node->safe_psql('postgres', q{SELECT string_agg(coalesce(health_error, ''), ' ') FROM aos_cus.cus_integrations}) . ' '
	. $node->safe_psql('postgres', q{SELECT string_agg(coalesce(error, ''), ' ') FROM aos_cus.cus_health_history});
my $log = slurp_file($node->logfile);
for my $k (sort keys %keys)
{
	unlike($errors, qr/\Q$keys{$k}\E/, "key $k appears in no health_error or history row");
	unlike($log, qr/\Q$keys{$k}\E/, "key $k appears in no server log line");
}

$node->stop;
$mock->kill_kill;
done_testing();
