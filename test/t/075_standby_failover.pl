# Enforcement on a hot standby and after failover (issue 22 finding 1):
#  - a standby's reads (current_usage, check_budget_limit) follow replay, even of an integration read there before
#    the primary spent anything; its check() is refused (25006) and disable_integration on the primary reaches it;
#  - after kill -9 of the primary and promotion, the new primary rebuilds from the durable tables: its admissions
#    never exceed the budget plus the reservations in flight at the kill (the bound README states).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use AosCusTest;

my $primary = aos_cus_node('primary', init => { allows_streaming => 1 });
my $T = '75000000-0000-4000-8000-000000000001';
my ($W, $W2) = map { "75000000-0000-4000-8000-0000000000$_" } qw(a1 b1);
my $BUDGET = 100_000_000;
my $EST = 1_000_000;

$primary->safe_psql('postgres', qq{
INSERT INTO aos_cus.cus_integrations (tenant_id, id, name, provider, status, budget_microcents, budget_period,
                                      warn_at_pct)
VALUES ('$T', '$W', 'w', 'openai', 'enabled', $BUDGET, 'total', 80),
       ('$T', '$W2', 'w2', 'openai', 'enabled', $BUDGET, 'total', 80);
});
# The standby: same configuration (shared_preload_libraries, keyring file) from the base backup.
$primary->backup('base');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'base', has_streaming => 1);
$standby->start;
$primary->wait_for_catchup($standby);

# 1. Read on the standby at spend 0 (an older standby cached it here and never refreshed it).
is($standby->safe_psql('postgres', "SELECT spent_microcents FROM aos_cus.current_usage('$T', '$W')"), '0',
	'standby: spend 0 before the workload');
is($standby->safe_psql('postgres', "SELECT decision FROM aos_cus.check_budget_limit('$T', '$W2', 0)"), 'allowed',
	'standby: the second integration is allowed before it is disabled');

# 2. A reserving workload on the primary: 70 calls checked and settled, 4 more checked and still in flight.
my $sql = '';
for my $i (1 .. 70)
{
	$sql .= qq{INSERT INTO aos_cus.cus_llm_usage (tenant_id, integration_id, call_id, provider, model, started_at,
                                         cost_microcents)
SELECT '$T', '$W', 'old-$i', 'openai', 'gpt-4o', now(), $EST
  FROM aos_cus.check('$T', '$W', $EST, 0, 'old-$i') WHERE decision <> 'blocked';
};
}
$sql .= "SELECT decision FROM aos_cus.check('$T', '$W', $EST, 0, 'flight-$_');\n" for 1 .. 4;
$primary->safe_psql('postgres', $sql);
is($primary->safe_psql('postgres', "SELECT spent_microcents, reserved_microcents FROM aos_cus.current_usage('$T', '$W')"),
	'70000000|4000000', 'primary: 70,000,000 spent and 4,000,000 reserved in flight');
$primary->safe_psql('postgres', "SELECT aos_cus.disable_integration('$T', '$W2')");
$primary->wait_for_catchup($standby);

# 3. The standby follows replay.
is($standby->safe_psql('postgres', "SELECT spent_microcents, reserved_microcents FROM aos_cus.current_usage('$T', '$W')"),
	'70000000|0', 'standby: current_usage shows the replayed spend (reservations live in the primary\'s memory)');
is($standby->safe_psql('postgres', "SELECT decision, reason FROM aos_cus.check_budget_limit('$T', '$W', 40000000)"),
	'blocked|budget_exceeded', 'standby: check_budget_limit decides on the replayed spend');
my ($ret, $out, $err) = $standby->psql('postgres', "SELECT * FROM aos_cus.check('$T', '$W', 1, 0, 'standby-1')",
	extra_params => [ '-v', 'VERBOSITY=verbose' ]);
isnt($ret, 0, 'standby: check() is refused');
like($err, qr/25006: aos_cus.check\(\) cannot run on a hot standby/, 'with 25006 naming the standby');
like($err, qr/HINT:  Call check\(\) on the primary/, 'and a hint to call the primary');
($ret, $out, $err) = $standby->psql('postgres', "SELECT * FROM aos_cus.check('$T', '$W2', 0, 0)");
like($err, qr/cannot run on a hot standby/, 'standby: check() of the disabled integration is refused too');
is($standby->safe_psql('postgres', "SELECT decision, reason FROM aos_cus.check_budget_limit('$T', '$W2', 0)"),
	'blocked|integration_disabled', 'standby: disable_integration on the primary is honored');
is($standby->safe_psql('postgres', "SELECT value FROM aos_cus.stat_enforcement() WHERE name = 'integrations_cached'"),
	'0', 'standby: nothing is stored in shared memory');

# 4. kill -9 of the primary, promotion of the standby.
$primary->kill9;
$standby->promote;
$standby->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()') or die 'promotion did not finish';

# 5. The new primary admits until the budget, counting the 70,000,000 settled before the kill. Then the clients of
# the 4 calls in flight at the kill report their usage. Bound: spend <= budget + reservations in flight at the kill.
$sql = '';
for my $i (1 .. 60)
{
	$sql .= qq{INSERT INTO aos_cus.cus_llm_usage (tenant_id, integration_id, call_id, provider, model, started_at,
                                         cost_microcents)
SELECT '$T', '$W', 'new-$i', 'openai', 'gpt-4o', now(), $EST
  FROM aos_cus.check('$T', '$W', $EST, 0, 'new-$i') WHERE decision <> 'blocked';
};
}
$standby->safe_psql('postgres', $sql);
is($standby->safe_psql('postgres', "SELECT count(*) FROM aos_cus.cus_llm_usage WHERE call_id LIKE 'new-%'"), '30',
	'new primary: 30 admissions fill the budget (70 were spent before the kill)');
$standby->safe_psql('postgres', qq{
INSERT INTO aos_cus.cus_llm_usage (tenant_id, integration_id, call_id, provider, model, started_at, cost_microcents)
SELECT '$T', '$W', 'flight-' || g, 'openai', 'gpt-4o', now(), $EST FROM generate_series(1, 4) g});
my $spent = $standby->safe_psql('postgres', "SELECT sum(cost_microcents) FROM aos_cus.cus_llm_usage WHERE integration_id = '$W'");
cmp_ok($spent, '<=', $BUDGET + 4 * $EST, 'durable spend <= budget + the 4,000,000 reserved in flight at the kill');
is($standby->safe_psql('postgres', "SELECT spent_microcents FROM aos_cus.current_usage('$T', '$W')"), $spent,
	'new primary: current_usage equals the durable sum');
is($standby->safe_psql('postgres', "SELECT decision, reason FROM aos_cus.check('$T', '$W', 1, 0)"),
	'blocked|budget_exceeded', 'new primary: check() now runs and blocks');
is($standby->safe_psql('postgres', "SELECT decision, reason FROM aos_cus.check('$T', '$W2', 0, 0)"),
	'blocked|integration_disabled', 'new primary: the disabled integration stays blocked');

done_testing();
