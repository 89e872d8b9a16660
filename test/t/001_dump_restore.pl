# pg_dump of a database holding aos_cus and tenant data, restored into a new database, keeps every row.
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
});

# A digest of every row of every data table, compared before and after.
my $digest_sql = q{
SELECT string_agg(t || ':' || n || ':' || d, ' ' ORDER BY t) FROM (
  SELECT 'integrations' t, count(*) n, md5(string_agg(x::text, ',' ORDER BY x::text)) d FROM aos_cus.cus_integrations x
  UNION ALL SELECT 'usage', count(*), md5(string_agg(x::text, ',' ORDER BY x::text)) FROM aos_cus.cus_llm_usage x
  UNION ALL SELECT 'daily', count(*), md5(string_agg(x::text, ',' ORDER BY x::text)) FROM aos_cus.cus_usage_daily x
  UNION ALL SELECT 'prices', count(*), md5(string_agg(x::text, ',' ORDER BY x::text)) FROM aos_cus.cus_model_prices x WHERE source = 'tap'
) s};
my $before = $node->safe_psql('postgres', $digest_sql);
like($before, qr/usage:1000:/, 'source database holds 1000 usage rows');

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

$node->stop;
done_testing();
