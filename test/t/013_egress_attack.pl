# Issue 13, as written: a tenant admin (PostgREST-style requests) creates a custom integration whose base_url is a
# listener on 127.0.0.1 and whose credential is env://AOS_CUS_PLATFORM_KEY (a server-wide variable under the
# allowed prefix) or vault://<another tenant's secret>, then calls test_credentials. The references are refused
# with 42501 at write time and, when planted directly in the table or revoked later, at resolve time; the
# listener never receives a secret; the egress policy refuses 127.0.0.1 (by its resolved address, also behind
# "localhost") unless the operator allows it, with one outcome for an open and a closed port.
use strict;
use warnings;
use IO::Socket::INET;
use IPC::Run;
use PostgreSQL::Test::Utils;
use Test::More;
use AosCusTest;

my $platform_key = 'platform-Secret-0000-egress-attack';
my $victim_key = 'victim-Secret-1111-egress-attack';
my $tenant_key = 'own-Secret-2222-egress-attack';
$ENV{AOS_CUS_PLATFORM_KEY} = $platform_key;
my $node = aos_cus_node('egress_attack', extra_conf => "aos_cus.health_timeout = '2s'");
$node->safe_psql('postgres', slurp_file("$ENV{REPO}/examples/postgrest/roles.sql"));

my $A = 'aaaaaaaa-0000-4000-8000-0000000000e1';    # the attacker
my $B = 'bbbbbbbb-0000-4000-8000-0000000000e2';    # the victim

# A listener on 127.0.0.1 that appends every byte it receives to a file and answers 200.
my $dir = PostgreSQL::Test::Utils::tempdir();
my $listener_py = q{
import socket, sys
s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(16)
log = open(sys.argv[2], 'ab', buffering=0)
with open(sys.argv[1] + '.tmp', 'w') as f: f.write(str(s.getsockname()[1]))
import os; os.rename(sys.argv[1] + '.tmp', sys.argv[1])
while True:
    c, _ = s.accept(); c.settimeout(2)
    try:
        log.write(b'<connection>' + c.recv(65536))
        c.sendall(b'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}')
    except Exception:
        pass
    c.close()
};
my $listener = IPC::Run::start([ '/usr/bin/python3', '-c', $listener_py, "$dir/port", "$dir/received" ]);
END { local $?; $listener->kill_kill if $listener; }
for (my $i = 0; $i < 100 && !-s "$dir/port"; $i++) { select(undef, undef, undef, 0.1); }
my $open = slurp_file("$dir/port");
my $probe_sock = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0, Listen => 1) or die "socket: $!";
my $closed = $probe_sock->sockport;
close $probe_sock;    # nothing listens on $closed now
sub received { return -e "$dir/received" ? slurp_file("$dir/received") : ''; }

# One request as PostgREST runs it for tenant_admin of $tenant, in a session where the operator (superuser)
# may have set egress settings first; returns (exit status, last output line, stderr).
sub as_tenant
{
	my ($tenant, $sql, $operator_settings) = @_;
	$operator_settings //= '';
	my ($ret, $out, $err) = $node->psql('postgres', qq{\\set VERBOSITY verbose
$operator_settings
BEGIN;
SET LOCAL ROLE tenant_admin;
SELECT set_config('request.jwt.claims', '{"role":"tenant_admin","tenant_id":"$tenant"}', true) IS NOT NULL AS claims;
$sql;
COMMIT;});
	my @lines = split /\n/, $out;
	return ($ret, $lines[-1] // '', $err);
}

# The platform operator (superuser, no tenant): the victim's vault secret (Supabase Vault stand-in) and its allowance.
$node->safe_psql('postgres', qq{
CREATE SCHEMA vault;
CREATE TABLE vault.decrypted_secrets (name text, decrypted_secret text);
INSERT INTO vault.decrypted_secrets VALUES ('tenant-b-openai', '$victim_key');});
$node->psql('postgres', qq{SELECT aos_cus.allow_credential_source('$B', 'vault://tenant-b-openai')});

# 1. Write time: the tenant admin cannot store the platform's env:// variable or the victim's vault:// secret.
for my $ref ('env://AOS_CUS_PLATFORM_KEY', 'vault://tenant-b-openai')
{
	my ($ret, $out, $err) = as_tenant($A, qq{SELECT aos_cus.create_integration('$A', 'steal $ref', 'custom', '$ref',
		'{"base_url": "http://127.0.0.1:$open"}')});
	like($err, qr/ERROR:  42501: .*may not use/, "create_integration with $ref is refused with 42501");
}
my ($ret, $own, $err) = as_tenant($A, qq{SELECT aos_cus.create_integration('$A', 'own', 'custom', '$tenant_key',
	'{"base_url": "http://127.0.0.1:$open"}')});
is($ret, 0, 'the tenant admin creates an integration with its own key') or diag($err);
($ret, undef, $err) = as_tenant($A, "SELECT aos_cus.rotate_credential('$A', '$own', 'env://AOS_CUS_PLATFORM_KEY')");
like($err, qr/ERROR:  42501: /, 'rotate_credential to env://AOS_CUS_PLATFORM_KEY is refused with 42501');

# 2. Resolve time: references planted directly in the table (the tenant admin may UPDATE its rows) are refused.
for my $ref ('env://AOS_CUS_PLATFORM_KEY', 'vault://tenant-b-openai')
{
	my (undef, $id) = as_tenant($A, qq{INSERT INTO aos_cus.cus_integrations (tenant_id, name, provider, status, credential_ref, base_url)
		VALUES ('$A', 'planted $ref', 'custom', 'enabled', '$ref', 'http://127.0.0.1:$open') RETURNING id});
	($ret, undef, $err) = as_tenant($A, "SELECT * FROM aos_cus.test_credentials('$A', '$id')");
	like($err, qr/ERROR:  42501: .*may not use/, "test_credentials of a planted $ref is refused with 42501");
	($ret, undef, $err) = as_tenant($A, "SELECT aos_cus.resolve_credential('$A', '$id')");
	like($err, qr/ERROR:  42501: /, "resolve_credential of a planted $ref is refused with 42501");
}

# 3. A stored reference the operator no longer allows is refused at resolve time.
$node->psql('postgres', qq{SELECT aos_cus.allow_credential_source('$A', 'env://AOS_CUS_PLATFORM_KEY')});
my (undef, $allowed_once) = as_tenant($A, qq{SELECT aos_cus.create_integration('$A', 'allowed once', 'custom', 'env://AOS_CUS_PLATFORM_KEY',
	'{"base_url": "http://127.0.0.1:$open"}')});
$node->psql('postgres', qq{SELECT aos_cus.revoke_credential_source('$A', 'env://AOS_CUS_PLATFORM_KEY')});
($ret, undef, $err) = as_tenant($A, "SELECT * FROM aos_cus.test_credentials('$A', '$allowed_once')");
like($err, qr/ERROR:  42501: .*may not use/, 'a stored env:// reference whose allowance was revoked is refused at resolve time');

# 4. Egress: 127.0.0.1 is refused by default, and an open and a closed port give one outcome and identical rows.
# "state|latency|error" of the tenant admin's test_credentials for its own key at base_url (operator settings
# applied first), and the row it stored.
sub probe_at
{
	my ($name, $base_url, $settings) = @_;
	my (undef, $id) = as_tenant($A, qq{SELECT aos_cus.create_integration('$A', '$name', 'custom', '$tenant_key',
		'{"base_url": "$base_url"}')});
	my (undef, $out) = as_tenant($A, qq{SELECT state || '|' || latency_ms || '|' || coalesce(error, '') FROM aos_cus.test_credentials('$A', '$id')},
		$settings);
	my $row = $node->safe_psql('postgres', qq{SELECT i.health_state || '|' || i.health_latency_ms || '|' || coalesce(i.health_error, '')
		|| ' / ' || h.state || '|' || h.latency_ms || '|' || coalesce(h.error, '')
		FROM aos_cus.cus_integrations i JOIN aos_cus.cus_health_history h ON h.integration_id = i.id WHERE i.id = '$id'});
	return ($out, $row);
}
my $before = received();
for my $case (
	[ 'https', "",                                   'https://127.0.0.1' ],
	[ 'https, IPv4-mapped IPv6', "",                 'https://[::ffff:127.0.0.1]' ],
	[ 'http allowed', "SET aos_cus.egress_allow_http = on;", 'http://127.0.0.1' ],
	[ 'http allowed, localhost', "SET aos_cus.egress_allow_http = on;", 'http://localhost' ])
{
	my ($label, $settings, $base) = @$case;
	my ($open_out, $open_row) = probe_at("$label open", "$base:$open", $settings);
	my ($closed_out, $closed_row) = probe_at("$label closed", "$base:$closed", $settings);
	like($open_out, qr/^failing\|0\|egress refused: /, "$label: a loopback target is refused by the egress policy");
	is($open_out, $closed_out, "$label: an open and a closed port give the same outcome");
	is($open_row, $closed_row, "$label: and the same stored health row");
}
is(received(), $before, 'the listener got no connection from a refused probe');
my ($http_out) = probe_at('plain http', "http://127.0.0.1:$open", '');
like($http_out, qr/^failing\|0\|the URL must use https/, 'plain http is refused unless the operator allows it');

# A tenant admin cannot change the egress settings.
($ret, undef, $err) = as_tenant($A, "SET aos_cus.egress_allowed_networks = '127.0.0.1/32'");
like($err, qr/ERROR:  42501: /, 'a tenant admin cannot set aos_cus.egress_allowed_networks');
($ret, undef, $err) = as_tenant($A, "SET aos_cus.egress_allow_http = on");
like($err, qr/ERROR:  42501: /, 'a tenant admin cannot set aos_cus.egress_allow_http');
($ret, undef, $err) = as_tenant($A, "SHOW aos_cus.egress_allowed_networks");
like($err, qr/ERROR:  42501: /, 'nor read the allowed networks');

# 5. With the operator's allowance the probe reaches the listener, carrying the tenant's own key only.
my $allow = "SET aos_cus.egress_allow_http = on; SET aos_cus.egress_allowed_networks = '127.0.0.1/32';";
my ($allowed_out) = probe_at('operator allowed', "http://127.0.0.1:$open", $allow);
like($allowed_out, qr/^healthy\|/, 'with aos_cus.egress_allowed_networks = 127.0.0.1/32 the listener is probed');
like(received(), qr/Authorization: Bearer \Q$tenant_key\E/, 'the listener received the tenant\'s own key');
my ($metadata_out) = probe_at('metadata', 'http://169.254.169.254', $allow);
like($metadata_out, qr/^failing\|0\|egress refused: /, 'the allowance is exact: a link-local address (cloud metadata) stays refused');

my $all = received();
unlike($all, qr/\Q$platform_key\E/, 'the listener never received the platform key');
unlike($all, qr/\Q$victim_key\E/, 'the listener never received the other tenant\'s vault secret');

$node->stop;
done_testing();
