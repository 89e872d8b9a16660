# The search_path attacks of the security review, through every elevated entry point, as each tenant role:
#  1. a login with no CREATE on any schema plants pg_temp.text / pg_temp.date / ... domains whose CHECK calls
#     pg_temp.evil(), which makes the session user SUPERUSER when it runs with other rights;
#  2. a login owning a schema puts it first on its search_path with evil.+(bigint,bigint), evil.=(uuid,uuid),
#     evil.>=(timestamptz,timestamptz) and evil.text / evil.date domains.
# Then it calls every SECURITY DEFINER function of aos_cus and every C path that switches to the tables' owner
# (check() and friends with an entry that must be (re)loaded). No call may run the attacker's code elevated.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use AosCusTest;

my $node = aos_cus_node('search_path_attack');
my $T = '80000000-0000-4000-8000-000000000001';
my $I = '80000000-0000-4000-8000-0000000000a1';

$node->safe_psql('postgres', qq{
CREATE ROLE app_login LOGIN IN ROLE aos_cus_app;
CREATE ROLE reader_login LOGIN IN ROLE aos_cus_reader;
CREATE ROLE admin_login LOGIN IN ROLE aos_cus_admin;
GRANT CREATE ON DATABASE postgres TO reader_login, app_login, admin_login;
INSERT INTO aos_cus.cus_integrations (tenant_id, id, name, provider, status, budget_microcents, budget_period,
                                      token_limit, token_period, rpm, tpm, timezone, base_url)
VALUES ('$T', '$I', 'attacked', 'openai', 'enabled', 100000000, 'month', 1000000, 'day', 100, 100000,
        'America/Los_Angeles', 'http://127.0.0.1:9');
SELECT aos_cus.rotate_credential('$T', '$I', 'sk-attack-test-0123456789abcdef');
});

my $now = $node->safe_psql('postgres', "SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')");
# Every call an attacker may try; errors (missing grants, tenant rules) are fine, elevation is not.
my @calls = (
	"SELECT * FROM aos_cus.check('$T', '$I', 1, 1, 'sp-1')",
	"SELECT * FROM aos_cus.check_budget_limit('$T', '$I', 1)",
	"SELECT * FROM aos_cus.check_token_limit('$T', '$I', 1)",
	"SELECT * FROM aos_cus.check_rate_limit('$T', '$I', 1)",
	"SELECT * FROM aos_cus.current_usage('$T', '$I')",
	"SELECT * FROM aos_cus.integration_limits('$T', '$I')",
	qq{SELECT * FROM aos_cus.ingest_usage('$T', '{"integration_id": "$I", "call_id": "sp-ingest", "provider": "openai", "model": "gpt-4o", "input_tokens": 10, "output_tokens": 2, "started_at": "$now"}')},
	qq{SELECT * FROM aos_cus.ingest_usage_batch('$T', '[{"integration_id": "$I", "call_id": "sp-batch", "provider": "openai", "model": "gpt-4o", "input_tokens": 10, "output_tokens": 2, "started_at": "$now"}, {"call_id": "bad"}]')},
	"SELECT aos_cus.rollup_usage()",
	"SELECT aos_cus.rebuild_daily((now() - interval '2 days')::date, now()::date)",
	"SELECT aos_cus.reprice_usage(now() - interval '1 day', now() + interval '1 day', false)",
	"SELECT * FROM aos_cus.maintain_partitions()",
	"SELECT aos_cus.set_retention(interval '400 days', interval '40 days')",
	"SELECT aos_cus.set_partitioning(interval '1 month', interval '40 days', interval '40 days')",
	# The idempotency-key trigger switches to the tables' owner on a plain INSERT.
	"INSERT INTO aos_cus.cus_llm_usage (tenant_id, integration_id, call_id, provider, model, started_at) VALUES ('$T', '$I', 'sp-insert', 'openai', 'gpt-4o', now())",
	"SELECT aos_cus.resolve_credential('$T', '$I')",
	"SELECT aos_cus.rotate_encryption_key()",
	"SELECT aos_cus.rotate_encryption_key_batch(10)",
	"SELECT * FROM aos_cus.keyring_status()",
	"SELECT aos_cus.allow_credential_source('$T', 'env://AOS_CUS_ATTACK_KEY')",
	"SELECT aos_cus.revoke_credential_source('$T', 'env://AOS_CUS_ATTACK_KEY')",
	"SELECT aos_cus.record_health('$T', '$I', 'healthy', 5, NULL)",
	"SELECT aos_cus.request_health_check('$T', '$I')",
	"SELECT * FROM aos_cus.test_credentials('$T', '$I')",
	"SELECT aos_cus.metrics()",
);

# Every SECURITY DEFINER function of aos_cus must be among the calls (a new one must be added here).
my @definers = split /\n/, $node->safe_psql('postgres', q{
SELECT p.proname FROM pg_proc p WHERE p.pronamespace = 'aos_cus'::regnamespace AND p.prosecdef ORDER BY 1});
for my $f (@definers)
{
	ok((grep { /aos_cus\.\Q$f\E\(/ } @calls), "SECURITY DEFINER function $f is attacked");
}

# Plant the attacker's objects: in pg_temp (no CREATE needed), or in an owned schema first on search_path.
my $evil_body = q{
BEGIN
    RAISE NOTICE 'evil called';
    IF current_user <> session_user THEN
        EXECUTE pg_catalog.format('ALTER ROLE %I SUPERUSER', session_user);
        RAISE WARNING 'EVIL ran as %', current_user;
    END IF;
    RETURN true;
END};
sub plant_pg_temp
{
	return qq{
CREATE FUNCTION pg_temp.evil(d pg_catalog.text) RETURNS boolean LANGUAGE plpgsql AS \$\$$evil_body\$\$;
CREATE DOMAIN pg_temp.text AS pg_catalog.text CHECK (pg_temp.evil(VALUE));
CREATE DOMAIN pg_temp.date AS pg_catalog.date CHECK (pg_temp.evil(VALUE::pg_catalog.text));
CREATE DOMAIN pg_temp.uuid AS pg_catalog.uuid CHECK (pg_temp.evil(VALUE::pg_catalog.text));
CREATE DOMAIN pg_temp.jsonb AS pg_catalog.jsonb CHECK (pg_temp.evil(VALUE::pg_catalog.text));
SELECT 'proof'::text;
};
}
sub plant_schema
{
	my ($s) = @_;
	return qq{
DROP SCHEMA IF EXISTS $s CASCADE;
CREATE SCHEMA $s;
CREATE FUNCTION $s.evil(d pg_catalog.text) RETURNS boolean LANGUAGE plpgsql AS \$\$$evil_body\$\$;
CREATE FUNCTION $s.plus(a bigint, b bigint) RETURNS bigint LANGUAGE plpgsql AS
    \$\$ BEGIN PERFORM $s.evil('+'); RETURN a OPERATOR(pg_catalog.+) b; END \$\$;
CREATE OPERATOR $s.+ (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = $s.plus);
CREATE FUNCTION $s.eq(a uuid, b uuid) RETURNS boolean LANGUAGE plpgsql AS
    \$\$ BEGIN PERFORM $s.evil('='); RETURN a OPERATOR(pg_catalog.=) b; END \$\$;
CREATE OPERATOR $s.= (LEFTARG = uuid, RIGHTARG = uuid, FUNCTION = $s.eq);
CREATE FUNCTION $s.ge(a timestamptz, b timestamptz) RETURNS boolean LANGUAGE plpgsql AS
    \$\$ BEGIN PERFORM $s.evil('>='); RETURN a OPERATOR(pg_catalog.>=) b; END \$\$;
CREATE OPERATOR $s.>= (LEFTARG = timestamptz, RIGHTARG = timestamptz, FUNCTION = $s.ge);
CREATE DOMAIN $s.text AS pg_catalog.text CHECK ($s.evil(VALUE));
CREATE DOMAIN $s.date AS pg_catalog.date CHECK ($s.evil(VALUE::pg_catalog.text));
SET search_path = $s, pg_catalog, public;
SELECT 1::bigint + 2::bigint;
};
}

for my $role (qw(app_login reader_login admin_login))
{
	for my $attack ('pg_temp', 'schema')
	{
		# Make check() and current_usage() reload the entry (the path that runs SPI as the owner).
		$node->safe_psql('postgres', qq{
UPDATE aos_cus.cus_integrations SET warn_at_pct = CASE warn_at_pct WHEN 80 THEN 81 ELSE 80 END WHERE id = '$I'});
		my $sql = "SET aos_cus.tenant_id = '$T';\n"
		  . ($attack eq 'pg_temp' ? plant_pg_temp() : plant_schema("evil_$role"))
		  . join('', map { "$_;\n" } @calls);
		my ($ret, $out, $err) = $node->psql('postgres', $sql, on_error_stop => 0, extra_params => [ '-U', $role ]);
		like($err, qr/evil called/, "$role, $attack: the planted objects are live in the attacker's own session");
		unlike($err, qr/EVIL ran as/, "$role, $attack: no planted object ran with other rights");
		is($node->safe_psql('postgres', "SELECT rolsuper FROM pg_roles WHERE rolname = '$role'"), 'f',
			"$role, $attack: the login did not become superuser");
		like($out, qr/\|/, "$role, $attack: the entry points ran and returned rows") or diag $err;
	}
}

$node->stop;
done_testing();
