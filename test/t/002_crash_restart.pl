# SIGKILL of the postmaster: committed rows survive, shared-memory counters restart from zero.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use AosCusTest;

my $node = aos_cus_node('crash');
$node->safe_psql('postgres', q{
INSERT INTO aos_cus.cus_integrations (tenant_id, id, name, provider)
VALUES ('00000000-0000-0000-0000-000000000001', '00000000-0000-0000-0000-0000000000a1', 'a', 'openai');
INSERT INTO aos_cus.cus_llm_usage (tenant_id, integration_id, call_id, provider, model, started_at)
SELECT '00000000-0000-0000-0000-000000000001', '00000000-0000-0000-0000-0000000000a1', 'c' || g, 'openai', 'gpt-4o', now()
  FROM generate_series(1, 500) g;
});
is($node->safe_psql('postgres', 'SELECT count(*) >= 7 FROM aos_cus.stat_counters()'), 't',
	'stat_counters() reads shared memory when preloaded');

crash_and_restart($node);
is($node->safe_psql('postgres', 'SELECT count(*) FROM aos_cus.cus_llm_usage'), '500',
	'committed usage rows survive a postmaster SIGKILL');
is($node->safe_psql('postgres', 'SELECT sum(value) FROM aos_cus.stat_counters()'), '0',
	'shared-memory counters restart from zero after the crash');

# Without shared_preload_libraries, preload-only functions name the setting.
$node->append_conf('postgresql.conf', "shared_preload_libraries = ''");
$node->restart;
my ($ret, $out, $err) = $node->psql('postgres', 'SELECT * FROM aos_cus.stat_counters()');
isnt($ret, 0, 'stat_counters() fails without preload');
like($err, qr/aos_cus must be loaded via shared_preload_libraries/, 'the error names shared_preload_libraries');
is($node->safe_psql('postgres', q{SET aos_cus.tenant_id = '00000000-0000-0000-0000-000000000001'; SELECT aos_cus.current_tenant()}),
	'00000000-0000-0000-0000-000000000001', 'pure functions work without preload');

$node->stop;
done_testing();
