# Usage counters per provider and model: exactly the committed usage (concurrent writers, rollbacks,
# savepoints, cost updates), the overflow to model "other" at aos_cus.usage_stats_max_models, label
# clipping, stat_reset(), and zero after a crash (shared memory is not durable).
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use AosCusTest;

my $node = aos_cus_node('metrics', extra_conf => 'aos_cus.usage_stats_max_models = 16');
my $t = "'00000000-0000-0000-0000-000000000001'";
my $i = "'00000000-0000-0000-0000-0000000000a1'";
$node->safe_psql('postgres', qq{
INSERT INTO aos_cus.cus_integrations (tenant_id, id, name, provider, status) VALUES ($t, $i, 'a', 'openai', 'enabled');
CREATE SEQUENCE call_seq;
});

# The counters as one comparable text, and the same figures computed from the committed rows.
my $counters = q{SELECT coalesce(string_agg(provider || '/' || model || ':' || requests || ':' || cost_microcents || ':' ||
    input_tokens || ':' || output_tokens, ' ' ORDER BY provider, model), '') FROM aos_cus.stat_usage};
my $from_rows = q{SELECT coalesce(string_agg(provider || '/' || model || ':' || n || ':' || c || ':' || it || ':' || ot, ' '
    ORDER BY provider, model), '') FROM (SELECT provider, model, count(*) n, sum(cost_microcents) c, sum(input_tokens) it,
    sum(output_tokens) ot FROM aos_cus.cus_llm_usage GROUP BY 1, 2) s};

# 4 clients x 150 transactions over 5 models, one in four rolled back.
$node->pgbench('-n -c 4 -j 2 -t 150', 0, [qr/processed: 600\/600/], [qr/^$/], 'concurrent usage writers', {
	'usage' => qq{
\\set m random(0, 4)
\\set c random(0, 3)
BEGIN;
INSERT INTO aos_cus.cus_llm_usage (tenant_id, integration_id, call_id, provider, model, input_tokens, output_tokens,
                                   cost_microcents, started_at)
VALUES ($t, $i, 'p' || nextval('call_seq'), CASE WHEN :m < 3 THEN 'openai' ELSE 'anthropic' END, 'model-' || :m,
        10 + :m, 1 + :m, 1000 * (:m + 1) + :c, now());
\\if :c = 0
ROLLBACK;
\\else
COMMIT;
\\endif
}});
my $rows = $node->safe_psql('postgres', 'SELECT count(*) FROM aos_cus.cus_llm_usage');
cmp_ok($rows, '<', 600, "some of the 600 transactions rolled back ($rows committed)");
is($node->safe_psql('postgres', $counters), $node->safe_psql('postgres', $from_rows),
	'counters per provider and model equal the committed rows exactly');

# Savepoints: a rolled-back subtransaction's row is not counted; a released one is.
$node->safe_psql('postgres', qq{
BEGIN;
SAVEPOINT a;
INSERT INTO aos_cus.cus_llm_usage (tenant_id, integration_id, call_id, provider, model, cost_microcents, started_at)
VALUES ($t, $i, 'sp-1', 'openai', 'model-0', 999, now());
ROLLBACK TO a;
SAVEPOINT b;
INSERT INTO aos_cus.cus_llm_usage (tenant_id, integration_id, call_id, provider, model, cost_microcents, started_at)
VALUES ($t, $i, 'sp-2', 'openai', 'model-0', 7, now());
RELEASE b;
COMMIT;
});
# A cost update (reprice) moves the cost by new - old and the request count not at all.
$node->safe_psql('postgres', q{UPDATE aos_cus.cus_llm_usage SET cost_microcents = cost_microcents + 5 WHERE call_id = 'sp-2'});
is($node->safe_psql('postgres', $counters), $node->safe_psql('postgres', $from_rows),
	'after savepoints and a cost update the counters still equal the committed rows');

# metrics() shows the same figures.
my $metrics = $node->safe_psql('postgres', 'SELECT aos_cus.metrics()');
my $m0 = $node->safe_psql('postgres', q{SELECT requests || ' ' || cost_microcents FROM aos_cus.stat_usage WHERE model = 'model-0'});
my ($req0, $cost0) = split / /, $m0;
like($metrics, qr/^aos_cus_usage_requests_total\{provider="openai",model="model-0"\} $req0$/m, 'metrics(): requests of model-0');
like($metrics, qr/^aos_cus_usage_cost_microcents_total\{provider="openai",model="model-0"\} $cost0$/m, 'metrics(): cost of model-0');

# Overflow: 5 models tracked, then a 400-byte name (clipped to 255 bytes on a character boundary), then
# 20 more; only 16 get their own entry, the rest count under model "other" of their provider.
# (The long name is written in a UTF8 database: the test cluster's default encoding may be SQL_ASCII.)
$node->safe_psql('postgres', q{CREATE DATABASE utf8 TEMPLATE template0 ENCODING 'UTF8' LOCALE 'C'});
$node->safe_psql('utf8', qq{
CREATE EXTENSION aos_cus;
INSERT INTO aos_cus.cus_integrations (tenant_id, id, name, provider, status) VALUES ($t, $i, 'a', 'openai', 'enabled');
INSERT INTO aos_cus.cus_llm_usage (tenant_id, integration_id, call_id, provider, model, cost_microcents, started_at)
VALUES ($t, $i, 'long', 'openai', repeat(chr(233), 200), 1, now());
});
$node->safe_psql('postgres', qq{
INSERT INTO aos_cus.cus_llm_usage (tenant_id, integration_id, call_id, provider, model, cost_microcents, started_at)
SELECT $t, $i, 'of-' || g, 'google', 'g-' || lpad(g::text, 2, '0'), 100, now() FROM generate_series(1, 20) g;
});
is($node->safe_psql('utf8', q{SELECT octet_length(model) || ':' || (model = repeat(chr(233), 127)) FROM aos_cus.stat_usage WHERE model LIKE chr(233) || '%'}),
	'254:true',
	'a 400-byte model name is clipped to 254 bytes (127 two-byte characters)');
is($node->safe_psql('postgres', q{SELECT count(*) FROM aos_cus.stat_usage WHERE model <> 'other'}), '16',
	'exactly aos_cus.usage_stats_max_models models have their own entry');
is($node->safe_psql('postgres', q{SELECT requests || ':' || cost_microcents FROM aos_cus.stat_usage WHERE provider = 'google' AND model = 'other'}),
	'10:1000', 'the 10 models past the cap are counted under google/other');
is($node->safe_psql('postgres', q{SELECT sum(requests) FROM aos_cus.stat_usage}),
	$node->safe_psql('postgres', 'SELECT count(*) FROM aos_cus.cus_llm_usage') + 1, 'nothing is lost to the cap (rows of both databases)');
is($node->safe_psql('postgres', q{SELECT entries_used || '/' || entries_capacity FROM aos_cus.stat_shmem WHERE area = 'usage_stats'}),
	'17/24', 'stat_shmem: 16 models + 1 overflow entry of 24');

# stat_reset() zeroes the counters; new usage starts from zero.
$node->safe_psql('postgres', 'SELECT aos_cus.stat_reset()');
is($node->safe_psql('postgres', 'SELECT count(*) FROM aos_cus.stat_usage'), '0', 'stat_reset() empties the usage table');
is($node->safe_psql('postgres', 'SELECT sum(value) FROM aos_cus.stat_events'), '0', 'stat_reset() zeroes the event counters');
is($node->safe_psql('postgres', 'SELECT sum(count) FROM aos_cus.stat_decisions'), '0', 'stat_reset() zeroes the decisions');
$node->safe_psql('postgres', qq{
INSERT INTO aos_cus.cus_llm_usage (tenant_id, integration_id, call_id, provider, model, cost_microcents, started_at)
VALUES ($t, $i, 'after-reset', 'openai', 'model-0', 3, now());
});
is($node->safe_psql('postgres', q{SELECT requests || ':' || cost_microcents FROM aos_cus.stat_usage}), '1:3',
	'counting resumes from zero after the reset');

# Budget ratios: three budgeted integrations at 90%, 50% and 10%; with a cap of 2 the two nearest their
# budget are reported, highest first, and one is counted as omitted. Total budgets: under a fake clock a month
# may end between the usage and the read.
$node->safe_psql('postgres', qq{
INSERT INTO aos_cus.cus_integrations (tenant_id, id, name, provider, status, budget_microcents, budget_period, warn_at_pct)
SELECT $t, ('00000000-0000-0000-0000-0000000000b' || g)::uuid, 'b' || g, 'openai', 'enabled', 1000, 'total', 75
  FROM generate_series(1, 3) g;
INSERT INTO aos_cus.cus_llm_usage (tenant_id, integration_id, call_id, provider, model, cost_microcents, started_at)
VALUES ($t, '00000000-0000-0000-0000-0000000000b1', 'b1', 'openai', 'model-0', 900, now()),
       ($t, '00000000-0000-0000-0000-0000000000b2', 'b2', 'openai', 'model-0', 500, now()),
       ($t, '00000000-0000-0000-0000-0000000000b3', 'b3', 'openai', 'model-0', 100, now());
SELECT (aos_cus.check($t, id, 0)).decision FROM aos_cus.cus_integrations WHERE name LIKE 'b_';
});
$metrics = $node->safe_psql('postgres', 'SET aos_cus.metrics_max_integrations = 2; SELECT aos_cus.metrics()');
my @ratios = $metrics =~ /^aos_cus_budget_used_ratio\{tenant_id="[^"]+",integration_id="[^"]+(b\d)"\} (\S+)$/mg;
is(join(' ', @ratios), 'b1 0.9 b2 0.5', 'the cap keeps the 2 integrations nearest their budget, highest first');
like($metrics, qr/^aos_cus_budget_warn_ratio\{tenant_id="[^"]+",integration_id="[^"]+b1"\} 0.75$/m, 'warn ratio is warn_at_pct / 100');
like($metrics, qr/^aos_cus_budget_integrations_omitted 1$/m, 'one budgeted integration is omitted');
is($node->safe_psql('postgres', 'SET aos_cus.metrics_max_integrations = 2; SELECT count(*) FROM aos_cus.stat_budget'), '2',
	'stat_budget applies the same cap');
my ($ret, $out, $err) = $node->psql('postgres', 'SET aos_cus.metrics_max_integrations = -1');
like($err, qr/-1 is outside the valid range/, 'the cap refuses a negative value');

# A crash empties shared memory: the counters restart at zero, the rows stay.
crash_and_restart($node);
is($node->safe_psql('postgres', 'SELECT count(*) FROM aos_cus.stat_usage'), '0', 'usage counters are empty after a crash');
like($node->safe_psql('postgres', 'SELECT aos_cus.metrics()'), qr/^aos_cus_shmem_entries_used\{table="usage_stats"\} 0$/m,
	'metrics() works after the crash and shows an empty table');

$node->stop;
done_testing();
