# PostgREST-style requests: each request is its own transaction with the statements PostgREST issues
# (SET LOCAL ROLE, set_config('request.jwt.claims', ..., true), SELECT aos_cus.fn(...)). Acting for
# tenant A, every function called with tenant B's ids fails or returns nothing, table-level RLS holds,
# and tenant B's integration is unchanged afterwards. Roles come from examples/postgrest/roles.sql.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use AosCusTest;

my $node = aos_cus_node('postgrest');
$node->safe_psql('postgres', slurp_file("$ENV{REPO}/examples/postgrest/roles.sql"));

my $A = 'aaaaaaaa-0000-4000-8000-000000000001';
my $B = 'bbbbbbbb-0000-4000-8000-000000000002';
my $a1 = $node->safe_psql('postgres', "SELECT aos_cus.create_integration('$A', 'a-openai', 'openai', 'sk-proj-tenant-a-000000000000AAAA')");
my $b1 = $node->safe_psql('postgres', "SELECT aos_cus.create_integration('$B', 'b-openai', 'openai', 'sk-proj-tenant-b-000000000000BBBB')");
$node->safe_psql('postgres', "SELECT aos_cus.enable_integration('$B', '$b1')");
my $b_before = $node->safe_psql('postgres', "SELECT row(name, status, credential_ref, credential_hint, rpm, updated_at)::text FROM aos_cus.cus_integrations WHERE id = '$b1'");
my $b_ref = $node->safe_psql('postgres', "SELECT credential_ref FROM aos_cus.cus_integrations WHERE id = '$b1'");

# One HTTP request as PostgREST runs it; returns (psql exit status, last output line, stderr).
sub request
{
	my ($role, $tenant, $sql) = @_;
	my $claims = qq({"role":"$role","tenant_id":"$tenant"});
	my ($ret, $out, $err) = $node->psql('postgres', qq{\\set VERBOSITY verbose
BEGIN ISOLATION LEVEL READ COMMITTED;
SET LOCAL ROLE $role;
SELECT set_config('request.jwt.claims', '$claims', true) IS NOT NULL AS claims;
SELECT set_config('request.method', 'POST', true) IS NOT NULL AS method;
$sql;
COMMIT;});
	my @lines = split /\n/, $out;
	return ($ret, $lines[-1] // '', $err);
}

# The request fails with the SQLSTATE.
sub refused
{
	my ($code, $sql, $label) = @_;
	my ($ret, $out, $err) = request('tenant_admin', $A, $sql);
	like($err, qr/ERROR:  $code:/, "$label: $code");
}

my @two_arg = qw(get_integration enable_integration disable_integration delete_integration resolve_credential);
foreach my $fn (@two_arg)
{
	refused('42501', "SELECT aos_cus.$fn('$B', '$b1')", "$fn with tenant B's id");
	refused('42704', "SELECT aos_cus.$fn('$A', '$b1')", "$fn with B's integration under tenant A");
}
refused('42501', "SELECT aos_cus.update_integration('$B', '$b1', '{\"name\": \"pwned\"}')", 'update_integration for B');
refused('42704', "SELECT aos_cus.update_integration('$A', '$b1', '{\"name\": \"pwned\"}')", "update_integration of B's id under A");
refused('42501', "SELECT aos_cus.set_limits('$B', '$b1', '{\"rpm\": 1}')", 'set_limits for B');
refused('42704', "SELECT aos_cus.set_limits('$A', '$b1', '{\"rpm\": 1}')", "set_limits of B's id under A");
refused('42501', "SELECT aos_cus.rotate_credential('$B', '$b1', 'sk-proj-attacker-0000000000000')", 'rotate_credential for B');
refused('42704', "SELECT aos_cus.rotate_credential('$A', '$b1', 'sk-proj-attacker-0000000000000')", "rotate_credential of B's id under A");
refused('42501', "SELECT aos_cus.create_integration('$B', 'planted', 'openai', 'sk-proj-attacker-0000000000000')", 'create_integration for B');
refused('42501', "SELECT aos_cus.list_integrations('$B')", 'list_integrations for B');
refused('42501', "SELECT aos_cus.encrypt_credential('$B', '$b1', 'sk-proj-attacker-0000000000000')", 'encrypt_credential for B');
refused('42501', "SELECT aos_cus.decrypt_credential('$B', '$b1', '$b_ref')", 'decrypt_credential for B');
refused('22023', "SELECT aos_cus.decrypt_credential('$A', '$b1', '$b_ref')", "decrypt_credential of B's ciphertext under A");
refused('42501', "SELECT * FROM aos_cus.keyring_status()", 'keyring_status while acting for a tenant');
refused('42501', "SELECT aos_cus.rotate_encryption_key()", 'rotate_encryption_key while acting for a tenant');
refused('42501', "INSERT INTO aos_cus.cus_integrations (tenant_id, name, provider) VALUES ('$B', 'planted', 'openai')", 'direct INSERT for B');
# Issue 13, finding 4: what spans every tenant is the operator's, never a tenant's admin.
refused('42501', "SELECT aos_cus.set_price('openai', 'gpt-4o', 0, 0, effective_from => '2001-01-01')", 'set_price');
refused('42501', "UPDATE aos_cus.cus_model_prices SET input_price = 0", 'UPDATE cus_model_prices');
refused('42501', "SELECT aos_cus.reprice_usage('-infinity', 'infinity', false)", 'reprice_usage across tenants');
refused('42501', "UPDATE aos_cus.cus_rollup_state SET last_rollup_at = now()", 'UPDATE cus_rollup_state');
refused('42501', "SELECT * FROM aos_cus.stat_budget()", 'stat_budget');
refused('42501', "SELECT aos_cus.stat_reset()", 'stat_reset');
refused('42501', "SELECT aos_cus.bind_login('authenticator', '$A')", 'bind_login');

my ($ret, $out, $err) = request('tenant_admin', $A, "SELECT string_agg(id::text, ',') FROM aos_cus.list_integrations('$A')");
is($out, $a1, 'list_integrations for A returns A only');
($ret, $out, $err) = request('tenant_admin', $A, 'SELECT count(*) FROM aos_cus.cus_integrations');
is($out, '1', 'direct SELECT sees A only');
($ret, $out, $err) = request('tenant_admin', $A, "WITH u AS (UPDATE aos_cus.cus_integrations SET name = 'pwned' WHERE tenant_id = '$B' RETURNING 1) SELECT count(*) FROM u");
is($out, '0', "direct UPDATE of B's rows touches nothing");
($ret, $out, $err) = request('tenant_admin', $A, "WITH d AS (DELETE FROM aos_cus.cus_integrations WHERE id = '$b1' RETURNING 1) SELECT count(*) FROM d");
is($out, '0', "direct DELETE of B's rows touches nothing");
($ret, $out, $err) = request('tenant_admin', $A, "SELECT (aos_cus.get_integration('$A', '$a1')).credential_hint");
is($out, 'AAAA', 'A reads its own integration: hint only');
($ret, $out, $err) = request('tenant_admin', $A, "SELECT aos_cus.resolve_credential('$A', '$a1')");
is($out, 'sk-proj-tenant-a-000000000000AAAA', 'tenant_admin (aos_cus_admin) resolves its own credential');
($ret, $out, $err) = request('tenant_admin', $A, "SELECT (aos_cus.set_limits('$A', '$a1', '{\"rpm\": 30}')).limits ->> 'rpm'");
is($out, '30', 'A manages its own integration');

# tenant_app reads but cannot manage or resolve; the anonymous role has no rights at all.
($ret, $out, $err) = request('tenant_app', $A, "SELECT count(*) FROM aos_cus.list_integrations('$A')");
is($out, '1', 'tenant_app lists its tenant');
($ret, $out, $err) = request('tenant_app', $A, "SELECT aos_cus.create_integration('$A', 'x', 'openai', 'sk-proj-app-000000000000000')");
like($err, qr/ERROR:  42501: permission denied for function create_integration/, 'tenant_app cannot create');
($ret, $out, $err) = request('tenant_app', $A, "SELECT aos_cus.resolve_credential('$A', '$a1')");
like($err, qr/ERROR:  42501: permission denied for function resolve_credential/, 'tenant_app cannot resolve');
($ret, $out, $err) = request('web_anon', $A, "SELECT aos_cus.list_integrations('$A')");
like($err, qr/ERROR:  42501: permission denied for schema aos_cus/, 'web_anon has no rights');
($ret, $out, $err) = request('web_anon', $A, 'SELECT count(*) FROM aos_cus.cus_integrations');
like($err, qr/ERROR:  42501: permission denied for schema aos_cus/, 'web_anon cannot read tables');

# A JWT without a tenant_id gives a tenant's admin nothing (only aos_cus_operator acts for no tenant).
($ret, $out, $err) = $node->psql('postgres', qq{BEGIN; SET LOCAL ROLE tenant_admin;
SELECT set_config('request.jwt.claims', '{"role":"tenant_admin"}', true) IS NOT NULL;
SELECT count(*) FROM aos_cus.cus_integrations; COMMIT;});
is((split /\n/, $out)[-1], '0', 'tenant_admin without a tenant claim sees no tenant');
is($node->safe_psql('postgres', "SELECT pg_has_role('authenticator', 'aos_cus_operator', 'MEMBER')"), 'f',
	'no JWT role of the example can become the operator');

# Issue 13, finding 11: a direct-SQL login bound to tenant A always acts for A.
$node->safe_psql('postgres', "CREATE ROLE acme_ops LOGIN IN ROLE aos_cus_admin; SELECT aos_cus.bind_login('acme_ops', '$A')");
($ret, $out, $err) = $node->psql('postgres', "SELECT count(*) FROM aos_cus.cus_integrations", extra_params => [ '-U', 'acme_ops' ]);
is($out, '1', 'a bound login sees its tenant with nothing set');
($ret, $out, $err) = $node->psql('postgres', "SET aos_cus.tenant_id = '$B'; SELECT aos_cus.list_integrations('$B')",
	extra_params => [ '-U', 'acme_ops', '-v', 'VERBOSITY=verbose' ]);
like($err, qr/ERROR:  42501: aos_cus.tenant_id names another tenant than the one login role "acme_ops" is bound to/,
	'a bound login setting tenant B gets 42501');
($ret, $out, $err) = $node->psql('postgres', qq{SELECT set_config('request.jwt.claims', '{"tenant_id":"$B"}', false);
SELECT count(*) FROM aos_cus.cus_integrations}, extra_params => [ '-U', 'acme_ops', '-v', 'VERBOSITY=verbose' ]);
like($err, qr/ERROR:  42501: request.jwt.claims tenant_id names another tenant/, 'a bound login claiming tenant B gets 42501');

is($node->safe_psql('postgres', "SELECT row(name, status, credential_ref, credential_hint, rpm, updated_at)::text FROM aos_cus.cus_integrations WHERE id = '$b1'"),
	$b_before, "tenant B's integration is unchanged after every attempt");
is($node->safe_psql('postgres', "SELECT count(*) FROM aos_cus.cus_integrations WHERE tenant_id = '$B'"), '1', 'nothing was planted in tenant B');

# Issue 21: PostgREST serves /rpc/<fn> for every function of the schemas in db-schemas and 404s the rest. The
# helpers of the API are in aos_cus_internal: none is in an exposed schema, and calling one there finds nothing.
my ($schemas) = slurp_file("$ENV{REPO}/examples/postgrest/postgrest.conf") =~ /^db-schemas\s*=\s*"([^"]*)"/m;
is($schemas, 'aos_cus', 'PostgREST exposes schema aos_cus only');
my @helpers = qw(apply_limits check_integration_fields check_integration_name check_keys integration_for_update
  limit_choice limit_integer patch_text set_integration_status check_credential_ref integration_of is_iana_timezone
  price_providers);
my $list = join(',', map { "'$_'" } @helpers);
is($node->safe_psql('postgres', "SELECT string_agg(proname, ',') FROM pg_proc WHERE pronamespace = 'aos_cus'::regnamespace AND proname IN ($list)"),
	'', 'no helper is an /rpc/ endpoint (none is in the exposed schema)');
($ret, $out, $err) = request('tenant_admin', $A, "SELECT aos_cus.is_iana_timezone(name => 'UTC')");
like($err, qr/ERROR:  42883: function aos_cus.is_iana_timezone\(name => unknown\) does not exist/,
	'/rpc/is_iana_timezone: no such function (PostgREST: 404)');
($ret, $out, $err) = request('tenant_admin', $A, "SELECT aos_cus.limit_integer(limits => '{}', key => 'rpm', low => 1, high => 2)");
like($err, qr/ERROR:  42883: function aos_cus.limit_integer/, '/rpc/limit_integer: no such function (PostgREST: 404)');

$node->stop;
done_testing();
