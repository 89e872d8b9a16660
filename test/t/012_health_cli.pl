# aos_cus_health: every flag, JSON that parses, exit statuses 0/1/2, and no key in its output.
use strict;
use warnings;
use IPC::Run;
use JSON::PP;
use PostgreSQL::Test::Utils;
use Test::More;
use AosCusTest;
use AosCusMock;

set_mock_key_env();
my %keys = mock_keys();
my ($mock, $port) = start_mock_provider();
# The mock listens on 127.0.0.1 over plain http: the operator allows both explicitly (the egress policy refuses them).
my $node = aos_cus_node('health_cli', extra_conf => "aos_cus.health_timeout = '1s'\n"
	. "aos_cus.egress_allowed_networks = '127.0.0.1/32'\naos_cus.egress_allow_http = on");
my $t1 = '00000000-0000-0000-0000-0000000000e1';
my $t2 = '00000000-0000-0000-0000-0000000000e2';
my $all_output = '';

# An enabled integration at the mock (its env:// source allowed by the operator); returns its id.
sub integration
{
	my ($tenant, $name, $provider, $key) = @_;
	$node->safe_psql('postgres', qq{SELECT aos_cus.allow_credential_source('$tenant', 'env://AOS_CUS_KEY_$key')});
	return $node->safe_psql('postgres', qq{
INSERT INTO aos_cus.cus_integrations (tenant_id, name, provider, status, credential_ref, base_url)
VALUES ('$tenant', '$name', '$provider', 'enabled', 'env://AOS_CUS_KEY_$key', 'http://127.0.0.1:$port') RETURNING id});
}

# Run the CLI against the node; returns (exit status, stdout, stderr), stdout checked by python3 -m json.tool.
sub cli
{
	my (@args) = @_;
	my ($out, $err);
	IPC::Run::run([ 'aos_cus_health', '-d', $node->connstr('postgres'), @args ], '>', \$out, '2>', \$err);
	my $rc = $? >> 8;
	$all_output .= $out . $err;
	return ($rc, $out, $err);
}

# Run the CLI, expect the exit status and JSON on stdout (validated by python3 -m json.tool); returns the decoded JSON.
sub cli_json
{
	my ($want_rc, $what, @args) = @_;
	my ($rc, $out, $err) = cli(@args);
	is($rc, $want_rc, "$what: exit status $want_rc");
	my ($pretty, $perr);
	IPC::Run::run([ '/usr/bin/python3', '-m', 'json.tool' ], '<', \$out, '>', \$pretty, '2>', \$perr);
	is($?, 0, "$what: python3 -m json.tool parses the output");
	return decode_json($out);
}

my $good1 = integration($t1, 'cli-openai-good', 'openai', 'GOOD');
my $bad1 = integration($t1, 'cli-google-bad', 'google', 'BAD');
my $slow1 = integration($t1, 'cli-anthropic-500', 'anthropic', 'R500');
my $good2 = integration($t2, 'cli-azure-good', 'azure_openai', 'GOOD');
my $good2b = integration($t2, 'cli-anthropic-good', 'anthropic', 'GOOD');

# --integration: one probe, with or without --tenant.
my $j = cli_json(0, '--integration of a healthy integration', '--integration', $good1);
is($j->{checked}, 1, 'one integration checked');
is($j->{integrations}[0]{state}, 'healthy', 'its state is healthy');
is($j->{integrations}[0]{integration_id}, $good1, 'its id is reported');
ok($j->{integrations}[0]{latency_ms} >= 0, 'its latency is reported');
$j = cli_json(1, '--integration of a failing integration with --tenant', '--integration', $bad1, '--tenant', $t1);
is($j->{integrations}[0]{error}, 'HTTP 401: credential rejected', 'the failing integration carries its error');
is($j->{failing}, 1, 'the failing count is 1');

# --tenant alone means every enabled integration of that tenant.
$j = cli_json(0, '--tenant of an all-healthy tenant', '--tenant', $t2);
is($j->{checked}, 2, 'both of the tenant\'s integrations checked');
is($j->{healthy}, 2, 'both healthy');

# --all with --tenant and with --all-tenants.
$j = cli_json(1, '--all --tenant', '--all', '--tenant', $t1);
is_deeply([ $j->{checked}, $j->{healthy}, $j->{degraded}, $j->{failing} ], [ 3, 1, 1, 1 ], '--all --tenant counts per state');
$j = cli_json(1, '--all --all-tenants', '--all', '--all-tenants');
is($j->{checked}, 5, '--all --all-tenants checks every enabled integration');
is(scalar(@{ $j->{integrations} }), 5, 'and lists each');

# --stale: nothing is stale right after the probes; an integration probed two hours ago is.
$j = cli_json(0, '--stale with nothing stale', '--stale', '1 hour', '--all-tenants');
is($j->{checked}, 0, 'no integration checked');
$node->safe_psql('postgres', qq{UPDATE aos_cus.cus_integrations SET health_checked_at = now() - interval '2 hours' WHERE id = '$good2'});
$j = cli_json(0, '--stale --tenant', '--stale', '1 hour', '--tenant', $t2);
is($j->{checked}, 1, 'the stale integration alone is checked');
is($j->{integrations}[0]{integration_id}, $good2, 'it is the one probed two hours ago');

# --summary: counts per state, nothing probed.
my $before = mock_stats($port)->{requests};
$j = cli_json(0, '--summary --tenant of a healthy tenant', '--summary', '--tenant', $t2);
is_deeply($j->{summary}, { healthy => 2, degraded => 0, failing => 0, unknown => 0 }, 'summary of the healthy tenant');
$j = cli_json(1, '--summary --all-tenants', '--summary', '--all-tenants');
is_deeply($j->{summary}, { healthy => 3, degraded => 1, failing => 1, unknown => 0 }, 'summary of every tenant');
is($j->{total}, 5, 'total of the summary');
is(mock_stats($port)->{requests}, $before, '--summary probes nothing');

# A probe that raises (credential not resolvable) is reported as an error entry and counts as not healthy.
my $nokey = integration('00000000-0000-0000-0000-0000000000e3', 'cli-nokey', 'openai', 'MISSING');
$j = cli_json(1, '--integration whose credential cannot be resolved', '--integration', $nokey);
is($j->{integrations}[0]{state}, 'error', 'its state is error');
is($j->{errors}, 1, 'the errors count is 1');
like($j->{integrations}[0]{error}, qr/\S/, 'the server\'s message is reported');

# Usage and connection errors exit 2.
my @usage = (
	[ 'no selection', [] ],
	[ '--all without a scope', ['--all'] ],
	[ '--stale without a scope', [ '--stale', '1 hour' ] ],
	[ '--summary without a scope', ['--summary'] ],
	[ 'two selections', [ '--all', '--summary', '--all-tenants' ] ],
	[ '--tenant with --all-tenants', [ '--all', '--tenant', $t1, '--all-tenants' ] ],
	[ '--integration with --all-tenants', [ '--integration', $good1, '--all-tenants' ] ],
	[ 'an unknown flag', ['--bogus'] ],
	[ 'a stray argument', [ '--all-tenants', '--all', 'extra' ] ],
	[ 'a malformed duration', [ '--stale', 'soon', '--all-tenants' ] ],
	[ 'a malformed tenant id', [ '--all', '--tenant', 'nope' ] ],
	[ 'an unknown integration', [ '--integration', '00000000-0000-0000-0000-00000000ffff' ] ],
	[ 'an integration of another tenant', [ '--integration', $good1, '--tenant', $t2 ] ],
);
for my $u (@usage)
{
	my ($rc, $out, $err) = cli(@{ $u->[1] });
	is($rc, 2, "$u->[0]: exit status 2");
	like($err, qr/aos_cus_health: /, "$u->[0]: explained on stderr");
}
my ($out, $err);
IPC::Run::run([ 'aos_cus_health', '-d', 'host=/nonexistent port=1', '--summary', '--all-tenants' ], '>', \$out, '2>', \$err);
is($? >> 8, 2, 'a connection failure exits 2');
like($err, qr/could not connect/, 'and says so');
my ($rc, $help) = cli('--help');
is($rc, 0, '--help exits 0');
like($help, qr/--integration ID.*--tenant ID.*--all-tenants/s, '--help lists the flags');

# No key in anything the CLI printed.
unlike($all_output, qr/\Q$keys{$_}\E/, "key $_ appears in no CLI output") for sort keys %keys;

$node->stop;
$mock->kill_kill;
done_testing();
