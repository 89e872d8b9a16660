# pg_dump of a database holding aos_cus and tenant data, restored into a new database, keeps every row, the
# time partitions of the usage table and its idempotency keys (rebuilt by the table's triggers).
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use AosCusTest;

my $node = aos_cus_node('dump');
$node->safe_psql('postgres', q{
INSERT INTO aos_cus.cus_integrations (tenant_id, id, name, provider)
SELECT ('00000000-0000-0000-0000-' || lpad(t::text, 12, '0'))::uuid, gen_random_uuid(), 'int-' || t, 'openai'
  FROM generate_series(1, 5) t;
INSERT INTO aos_cus.cus_llm_usage (tenant_id, integration_id, call_id, provider, model, started_at, input_tokens, output_tokens)
SELECT i.tenant_id, i.id, 'call-' || g, 'openai', 'gpt-4o', now() - g * interval '1 minute', g, g
  FROM aos_cus.cus_integrations i, generate_series(1, 200) g;
INSERT INTO aos_cus.cus_usage_daily (tenant_id, integration_id, day, provider, model, requests)
SELECT tenant_id, id, current_date, 'openai', 'gpt-4o', 200 FROM aos_cus.cus_integrations;
INSERT INTO aos_cus.cus_model_prices (provider, model, input_price, output_price, source)
VALUES ('openai', 'tap-model', 1, 2, 'tap');
-- A call_id recorded twice: once in 2019 (long past the idempotency window), again now.
INSERT INTO aos_cus.cus_llm_usage (tenant_id, integration_id, call_id, provider, model, started_at, ingested_at)
SELECT tenant_id, id, 'twice', 'openai', 'gpt-4o', '2019-05-05', '2019-05-05' FROM aos_cus.cus_integrations ORDER BY tenant_id LIMIT 1;
INSERT INTO aos_cus.cus_llm_usage (tenant_id, integration_id, call_id, provider, model, started_at)
SELECT tenant_id, id, 'twice', 'openai', 'gpt-4o', '2019-06-01' FROM aos_cus.cus_integrations ORDER BY tenant_id LIMIT 1;
SELECT count(*) FROM aos_cus.maintain_partitions();
});

# A digest of every row of every data table, compared before and after.
my $digest_sql = q{
SELECT string_agg(t || ':' || n || ':' || d, ' ' ORDER BY t) FROM (
  SELECT 'integrations' t, count(*) n, md5(string_agg(x::text, ',' ORDER BY x::text)) d FROM aos_cus.cus_integrations x
  UNION ALL SELECT 'usage', count(*), md5(string_agg(x::text, ',' ORDER BY x::text)) FROM aos_cus.cus_llm_usage x
  UNION ALL SELECT 'daily', count(*), md5(string_agg(x::text, ',' ORDER BY x::text)) FROM aos_cus.cus_usage_daily x
  UNION ALL SELECT 'prices', count(*), md5(string_agg(x::text, ',' ORDER BY x::text)) FROM aos_cus.cus_model_prices x WHERE source = 'tap'
  UNION ALL SELECT 'keys', count(*), md5(string_agg(x::text, ',' ORDER BY x::text)) FROM aos_cus.cus_usage_keys x
  UNION ALL SELECT 'partitions', count(*), md5(string_agg(x::text, ',' ORDER BY x::text))
              FROM (SELECT tableoid::regclass::text, id FROM aos_cus.cus_llm_usage) x
) s};
my $before = $node->safe_psql('postgres', $digest_sql);
like($before, qr/keys:1001:.*usage:1002:/, 'source database holds 1002 usage rows, 1001 call_ids');
like($node->safe_psql('postgres', q{SELECT string_agg(tableoid::regclass::text, ',' ORDER BY id) FROM aos_cus.cus_llm_usage WHERE call_id = 'twice'}),
	qr/^aos_cus.cus_llm_usage_p20190501,aos_cus.cus_llm_usage_p20190601$/, 'in partitions of their months');

my $dump = $node->basedir . '/dump.sql';
$node->command_ok([ 'pg_dump', '-d', $node->connstr('postgres'), '-f', $dump ], 'pg_dump succeeds');
$node->safe_psql('postgres', 'CREATE DATABASE restored');
$node->command_ok([ 'psql', '-X', '-v', 'ON_ERROR_STOP=1', '-q', '-d', $node->connstr('restored'), '-f', $dump ],
	'restore into a new database succeeds');

is($node->safe_psql('restored', $digest_sql), $before, 'every row of every table survives dump and restore');
my $next_id = $node->safe_psql('restored', q{
INSERT INTO aos_cus.cus_llm_usage (tenant_id, integration_id, call_id, provider, model, started_at)
SELECT tenant_id, id, 'after-restore', 'openai', 'gpt-4o', now() FROM aos_cus.cus_integrations LIMIT 1
RETURNING id > (SELECT max(id) FROM aos_cus.cus_llm_usage WHERE call_id <> 'after-restore')});
is($next_id, 't', 'the usage id sequence continues after restore');
my ($rc, $out, $err) = $node->psql('restored', q{
INSERT INTO aos_cus.cus_llm_usage (tenant_id, integration_id, call_id, provider, model, started_at)
SELECT tenant_id, integration_id, call_id, provider, model, now() FROM aos_cus.cus_llm_usage WHERE call_id = 'call-7' LIMIT 1});
like($err, qr/duplicate key value violates unique constraint "cus_llm_usage_tenant_id_call_id_key"/,
	'restored call_ids stay idempotent');

$node->stop;
done_testing();
