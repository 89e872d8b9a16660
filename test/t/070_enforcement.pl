# Enforcement under real concurrency and crashes (the rpm test over calendar minutes is 073_rate_minutes.pl):
#  - 8 clients reserving random estimates against one budget until it is exhausted;
#  - LISTEN aos_cus_alerts gets exactly one notification per threshold per period;
#  - SIGKILL of the postmaster during usage load: after restart current_usage equals the durable sums;
#  - without shared_preload_libraries check() names the setting and usage inserts still work.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use AosCusTest;

my $node = aos_cus_node('enforce', extra_conf => 'max_connections = 40');
my $T = '72000000-0000-4000-8000-000000000001';
my ($BUDGET, $ALERT, $CRASH, $MONTHLY) = map { "72000000-0000-4000-8000-0000000000$_" } qw(b1 c1 d1 e1);

$node->safe_psql('postgres', qq{
INSERT INTO aos_cus.cus_integrations (tenant_id, id, name, provider, status, rpm, budget_microcents, budget_period,
                                      token_limit, token_period, warn_at_pct)
VALUES ('$T', '$BUDGET', 'budget', 'openai', 'enabled', NULL, 1000000, 'total', NULL, 'month', 80),
       ('$T', '$ALERT', 'alert', 'openai', 'enabled', NULL, 1000, 'total', 100, 'total', 80),
       ('$T', '$CRASH', 'crash', 'openai', 'enabled', NULL, NULL, 'total', NULL, 'month', 80);
CREATE TABLE budget_admitted (est bigint);
});

my $dir = PostgreSQL::Test::Utils::tempdir;
# Write a pgbench script and return its path.
sub script
{
	my ($name, $text) = @_;
	my $path = "$dir/$name.sql";
	open(my $fh, '>', $path) or die "$path: $!";
	print $fh $text;
	close $fh;
	return $path;
}
# Start pgbench against the node in the background.
sub pgbench_start
{
	my ($out, @args) = @_;
	return IPC::Run::start([ 'pgbench', '-n', '-h', $node->host, '-p', $node->port, @args, 'postgres' ],
		'>', $out, '2>', $out);
}

# 2. Budget: 8 clients reserving random estimates (1..1000) until 1,000,000 is exhausted.
my $budget_out = '';
my $budget = pgbench_start(\$budget_out, '-c', 8, '-j', 2, '-t', 400, '-f', script('budget', qq{\\set est random(1, 1000)
INSERT INTO budget_admitted SELECT :est FROM aos_cus.check('$T', '$BUDGET', :est, 0, gen_random_uuid()::text) WHERE decision <> 'blocked';
}));
$budget->finish;
is($?, 0, 'budget pgbench ran') or diag $budget_out;
my ($admitted, $n, $reserved, $blocked) = split /\|/, $node->safe_psql('postgres', qq{
SELECT (SELECT sum(est) FROM budget_admitted), (SELECT count(*) FROM budget_admitted),
       (SELECT reserved_microcents FROM aos_cus.current_usage('$T', '$BUDGET')),
       (SELECT count(*) FROM aos_cus.cus_enforcement_log WHERE integration_id = '$BUDGET' AND reason = 'budget_exceeded')});
note "budget: $n admissions reserving $admitted of 1000000, $blocked blocked";
cmp_ok($admitted, '<=', 1000000, 'concurrent reservations never exceed the budget');
cmp_ok(1000000 - $admitted, '<', 1000, 'the last admissions fill the budget to within one estimate');
is($reserved, $admitted, 'shared memory holds exactly the admitted reservations');
cmp_ok($blocked, '>', 0, 'once exhausted, checks are blocked and logged');

# 3. Alerts: budget 1000 and token limit 100 in total (a month could end mid-test under a fake clock), warn at
# 80%, reached by reservations. One notification per threshold; a reload (limits UPDATE) does not repeat them.
my $alerts = $node->safe_psql('postgres', qq{
LISTEN aos_cus_alerts;
SELECT decision FROM aos_cus.check('$T', '$ALERT', 500, 10, 'a1');
SELECT decision FROM aos_cus.check('$T', '$ALERT', 300, 10, 'a2');
SELECT decision FROM aos_cus.check('$T', '$ALERT', 100, 60, 'a3');
SELECT decision FROM aos_cus.check('$T', '$ALERT', 100, 20, 'a4');
SELECT decision FROM aos_cus.check('$T', '$ALERT', 1, 1, 'a5');
UPDATE aos_cus.cus_integrations SET warn_at_pct = 80 WHERE id = '$ALERT';
SELECT decision FROM aos_cus.check('$T', '$ALERT', 0, 0);
});
my @notes = ($alerts =~ /Asynchronous notification "aos_cus_alerts" with payload "(.*?)" received/g);
note join("\n", @notes);
is(scalar(@notes), 4, 'four notifications: warn and 100% for budget and for tokens');
is(scalar(grep { /"dimension": "budget", "threshold": 80,/ } @notes), 1, 'one budget warning');
is(scalar(grep { /"dimension": "budget", "threshold": 100,/ } @notes), 1, 'one budget 100% alert');
is(scalar(grep { /"dimension": "tokens", "threshold": 80,/ } @notes), 1, 'one token warning');
is(scalar(grep { /"dimension": "tokens", "threshold": 100,/ } @notes), 1, 'one token 100% alert');
like($notes[0], qr/^\{"tenant": "$T", "integration": "$ALERT", .*"period": \{"start": null, "end": null\}/,
	'payload names tenant, integration, threshold and period (none for a total budget)');
# A monthly budget's alert names the month it is for: the bounds of the transaction that crossed the threshold.
my $monthly = $node->safe_psql('postgres', qq{
INSERT INTO aos_cus.cus_integrations (tenant_id, id, name, provider, status, budget_microcents, budget_period)
VALUES ('$T', '$MONTHLY', 'monthly', 'openai', 'enabled', 1000, 'month');
LISTEN aos_cus_alerts;
BEGIN;
SELECT decision FROM aos_cus.check('$T', '$MONTHLY', 900, 0, 'm1');
SELECT 'bounds: ' || to_char(period_start AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') || ', '
       || to_char(period_end AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') FROM aos_cus.limit_period_bounds('month', 'UTC');
COMMIT;
});
my ($start, $end) = $monthly =~ /^bounds: (.*), (.*)$/m;
like($monthly, qr/"integration": "$MONTHLY", .*"threshold": 80, "period": \{"start": "\Q$start\E", "end": "\Q$end\E"\}/,
	"a monthly budget's alert names its month ($start to $end)");
my $again = $node->safe_psql('postgres', qq{LISTEN aos_cus_alerts; SELECT decision FROM aos_cus.check('$T', '$ALERT', 1, 1);});
unlike($again, qr/Asynchronous notification/, 'another session later gets no repeat in the same period');

# 5. Crash during load: usage inserts (and a rollup fold) while the postmaster is killed.
$node->safe_psql('postgres', qq{SELECT spent_microcents FROM aos_cus.current_usage('$T', '$CRASH')});
my $load_out = '';
my $load = pgbench_start(\$load_out, '-c', 4, '-j', 2, '-T', 30, '-f', script('load', qq{\\set cost random(1, 100000)
\\set tok random(1, 5000)
INSERT INTO aos_cus.cus_llm_usage (tenant_id, integration_id, call_id, provider, model, started_at, cost_microcents, input_tokens)
VALUES ('$T', '$CRASH', gen_random_uuid()::text, 'openai', 'gpt-4o', now() - random() * interval '3 days', :cost, :tok);
}));
sleep 2;
# A rollup in the middle of the load: fold what its snapshot sees and record that snapshot.
$node->safe_psql('postgres', q{
BEGIN ISOLATION LEVEL REPEATABLE READ;
INSERT INTO aos_cus.cus_usage_daily (tenant_id, integration_id, day, provider, model, requests, cost_microcents, input_tokens)
SELECT tenant_id, integration_id, (started_at AT TIME ZONE 'UTC')::date, provider, model, count(*), sum(cost_microcents), sum(input_tokens)
  FROM aos_cus.cus_llm_usage GROUP BY 1, 2, 3, 4, 5;
UPDATE aos_cus.cus_rollup_state SET last_snapshot = pg_current_snapshot(), last_rollup_at = now();
COMMIT;
});
sleep 2;
my $before = $node->safe_psql('postgres', qq{SELECT spent_microcents FROM aos_cus.current_usage('$T', '$CRASH')});
crash_and_restart($node);
$load->finish;
# Expected sums over the periods current_usage() reports (budget 'total', tokens 'month' in UTC):
# rows spread over 3 days straddle a month boundary in the first days of a month.
my ($spent, $tokens, $sum_cost, $sum_tokens, $rows) = split /\|/, $node->safe_psql('postgres', qq{
SELECT u.spent_microcents, u.tokens_used,
       (SELECT sum(cost_microcents) FROM aos_cus.cus_llm_usage
         WHERE integration_id = '$CRASH'
           AND (u.budget_period_start IS NULL OR started_at >= u.budget_period_start AND started_at < u.budget_period_end)),
       (SELECT coalesce(sum(input_tokens), 0) FROM aos_cus.cus_llm_usage
         WHERE integration_id = '$CRASH'
           AND (u.token_period_start IS NULL OR started_at >= u.token_period_start AND started_at < u.token_period_end)),
       (SELECT count(*) FROM aos_cus.cus_llm_usage WHERE integration_id = '$CRASH')
  FROM aos_cus.current_usage('$T', '$CRASH') u});
note "crash: $rows durable rows, spent before the crash $before, rebuilt $spent";
cmp_ok($rows, '>', 0, 'usage rows were committed before the crash');
is($spent, $sum_cost, 'after the crash current_usage spend equals the durable sum');
is($tokens, $sum_tokens, 'after the crash current_usage tokens equal the durable sum');
$node->safe_psql('postgres', qq{
INSERT INTO aos_cus.cus_llm_usage (tenant_id, integration_id, call_id, provider, model, started_at, cost_microcents)
VALUES ('$T', '$CRASH', 'after-crash', 'openai', 'gpt-4o', now(), 12345)});
is($node->safe_psql('postgres', qq{SELECT spent_microcents FROM aos_cus.current_usage('$T', '$CRASH')}),
	$sum_cost + 12345, 'usage committed after the restart moves the rebuilt counters by its cost');

# 6. Not preloaded: a clear error naming the setting; usage inserts still work.
$node->append_conf('postgresql.conf', "shared_preload_libraries = ''");
$node->restart;
my ($ret, $out, $err) = $node->psql('postgres', qq{SELECT * FROM aos_cus.check('$T', '$CRASH')});
isnt($ret, 0, 'check() fails without preload');
like($err, qr/aos_cus must be loaded via shared_preload_libraries/, 'the error names shared_preload_libraries');
($ret, $out, $err) = $node->psql('postgres', qq{SELECT * FROM aos_cus.current_usage('$T', '$CRASH')});
like($err, qr/shared_preload_libraries/, 'current_usage() names it too');
is($node->safe_psql('postgres', qq{
INSERT INTO aos_cus.cus_llm_usage (tenant_id, integration_id, call_id, provider, model, started_at, cost_microcents)
VALUES ('$T', '$CRASH', 'no-preload', 'openai', 'gpt-4o', now(), 1) RETURNING call_id}), 'no-preload',
	'usage inserts work without preload (the settlement trigger stands aside)');

$node->stop;
done_testing();
