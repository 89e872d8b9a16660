# Layered budgets under real concurrency (issue 14, requirement 3): 8 pgbench clients reserve random estimates
# against tenant $50, integration $30, subject:* $1 (20 subjects) and tag:team=* $5 (4 teams) at once, half of
# the admitted calls ingested (settled) while the others stay reserved. For every scope instance admitted +
# settled <= its limit; the scope that binds admits at least its limit - the largest estimate; shared memory
# and the durable rows agree; alerts name the scope instance.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use AosCusTest;

my $node = aos_cus_node('scopes', extra_conf => 'max_connections = 40');
my $T = '76000000-0000-4000-8000-000000000001';
my $I = '76000000-0000-4000-8000-0000000000a1';
my ($DOLLAR, $MAXEST) = (100_000_000, 10_000_000);    # micro-cents; estimates are $0.01 .. $0.10

$node->safe_psql('postgres', qq{
INSERT INTO aos_cus.cus_integrations (tenant_id, id, name, provider, status) VALUES ('$T', '$I', 'scopes', 'openai', 'enabled');
SELECT aos_cus.set_scope_limits('$T', 'tenant', '{"budget_microcents": @{[50 * $DOLLAR]}, "budget_period": "total"}');
SELECT aos_cus.set_scope_limits('$T', 'integration:$I', '{"budget_microcents": @{[30 * $DOLLAR]}, "budget_period": "total"}');
SELECT aos_cus.set_scope_limits('$T', 'subject:*', '{"budget_microcents": $DOLLAR, "budget_period": "total"}');
SELECT aos_cus.set_scope_limits('$T', 'tag:team=*', '{"budget_microcents": @{[5 * $DOLLAR]}, "budget_period": "total"}');
CREATE TABLE admitted (call_id text PRIMARY KEY, est bigint, subject text, team text, ingested boolean);
});

my $dir = PostgreSQL::Test::Utils::tempdir;
my $script = "$dir/scopes.sql";
open(my $fh, '>', $script) or die "$script: $!";
print $fh qq{\\set est random(1000000, $MAXEST)
\\set s random(1, 20)
\\set tm random(1, 4)
\\set ingest random(0, 1)
SELECT (d.decision <> 'blocked')::int AS ok, x.c AS cid
  FROM (SELECT gen_random_uuid()::text AS c) x,
       LATERAL aos_cus.check('$T', '$I', :est, 0, x.c, 'user-' || :s, jsonb_build_object('team', 'team-' || :tm)) d \\gset
\\if :ok
INSERT INTO admitted VALUES (':cid', :est, 'user-' || :s, 'team-' || :tm, :ingest::boolean);
\\if :ingest
INSERT INTO aos_cus.cus_llm_usage (tenant_id, integration_id, call_id, provider, model, started_at, cost_microcents, subject, tags)
VALUES ('$T', '$I', ':cid', 'openai', 'gpt-4o', now(), :est, 'user-' || :s, jsonb_build_object('team', 'team-' || :tm));
\\endif
\\endif
};
close $fh;

my $out = '';
my $bench = IPC::Run::start([ 'pgbench', '-n', '-h', $node->host, '-p', $node->port, '-c', 8, '-j', 2, '-t', 300,
	'-f', $script, 'postgres' ], '>', \$out, '2>', \$out);
$bench->finish;
is($?, 0, 'pgbench: 8 clients, 2,400 checks, no error or deadlock') or diag $out;

# Admitted per scope instance (reserved or settled), with its limit.
my $rows = $node->safe_psql('postgres', qq{
SELECT 'subject:' || subject, sum(est), $DOLLAR FROM admitted GROUP BY subject
UNION ALL SELECT 'tag:team=' || team, sum(est), @{[5 * $DOLLAR]} FROM admitted GROUP BY team
UNION ALL SELECT 'integration', coalesce(sum(est), 0), @{[30 * $DOLLAR]} FROM admitted
UNION ALL SELECT 'tenant', coalesce(sum(est), 0), @{[50 * $DOLLAR]} FROM admitted ORDER BY 1});
my (%sum, %limit);
for (split /\n/, $rows)
{
	my ($scope, $s, $l) = split /\|/;
	($sum{$scope}, $limit{$scope}) = ($s, $l);
}
note join("\n", map { "$_: $sum{$_} of $limit{$_}" } sort keys %sum);
is(scalar(grep { /^subject:/ } keys %sum), 20, 'all 20 subjects were admitted at some point');
my @over = grep { $sum{$_} > $limit{$_} } keys %sum;
is_deeply(\@over, [], 'every scope instance: admitted + settled <= its limit');
my @subject_full = grep { /^subject:/ && $sum{$_} > $limit{$_} - $MAXEST } keys %sum;
my @team_full = grep { /^tag:/ && $sum{$_} > $limit{$_} - $MAXEST } keys %sum;
note scalar(@subject_full) . " subjects and " . scalar(@team_full) . " teams within one estimate of their limit";
# Every subject was stopped by its own budget, or else every team (which any of its calls could name) was full.
ok(@subject_full == 20 || @team_full == 4, 'the binding scopes admit at least limit - max estimate');

# Shared memory per scope kind: one entry per scope instance, each built once from the durable rows.
my %stat = map { split /\|/ } split /\n/, $node->safe_psql('postgres', 'SELECT name, value FROM aos_cus.stat_enforcement()');
is_deeply([ @stat{qw(entries_integration entries_tenant entries_subject entries_tag)} ], [ 1, 1, 20, 4 ],
	'stat_enforcement: entries per scope kind (1 integration, 1 tenant, 20 subjects, 4 teams)');
cmp_ok($stat{rebuilds_subject}, '>=', 20, 'every subject entry was built from the durable rows');
is($stat{evictions_subject}, 0, 'nothing was evicted');

my ($spent, $reserved, $nres, $ingested, $pending) = split /\|/, $node->safe_psql('postgres', qq{
SELECT u.spent_microcents, u.reserved_microcents, u.active_reservations,
       (SELECT coalesce(sum(est), 0) FROM admitted WHERE ingested), (SELECT coalesce(sum(est), 0) FROM admitted WHERE NOT ingested)
  FROM aos_cus.current_usage('$T', '$I') u});
is($spent, $ingested, q{the integration's settled spend is what was ingested});
is($reserved, $pending, 'its reservations are exactly the admitted calls not ingested');
my $blocked = $node->safe_psql('postgres', qq{SELECT count(*) FROM aos_cus.cus_enforcement_log WHERE reason = 'budget_exceeded'});
cmp_ok($blocked, '>', 0, 'once the scopes are exhausted checks are blocked and logged');

# A subject's settled spend is rebuilt from the durable rows after a restart: still blocked within one estimate.
my ($full) = sort @subject_full;
if (defined $full)
{
	(my $subject = $full) =~ s/^subject://;
	$node->restart;
	my $d = $node->safe_psql('postgres', qq{SELECT decision FROM aos_cus.check('$T', '$I', $MAXEST, 0, NULL, '$subject')});
	my $ingested_subject = $node->safe_psql('postgres', qq{SELECT coalesce(sum(est), 0) FROM admitted WHERE subject = '$subject' AND ingested});
	# Admitted may be warned (its spend past warn_at_pct): the rebuild is judged on blocked or not.
	is($d eq 'blocked' ? 'blocked' : 'admitted', $ingested_subject + $MAXEST > $DOLLAR ? 'blocked' : 'admitted',
		"after a restart $subject is decided on its ingested spend ($ingested_subject), rebuilt from the usage rows");
}
else
{
	pass('no subject full: nothing to rebuild');
}

# Alerts per scope instance: the payload names the scope.
$node->safe_psql('postgres', qq{SELECT aos_cus.set_scope_limits('$T', 'subject:alert-me', '{"budget_microcents": 100, "warn_at_pct": 50}')});
my $alerts = $node->safe_psql('postgres', qq{
LISTEN aos_cus_alerts;
SELECT decision FROM aos_cus.check('$T', '$I', 60, 0, 'alert-1', 'alert-me');
SELECT decision FROM aos_cus.check('$T', '$I', 1, 0, 'alert-2', 'alert-me');
});
my @notes = ($alerts =~ /Asynchronous notification "aos_cus_alerts" with payload "(.*?)" received/g);
note join("\n", @notes);
is(scalar(grep { /"scope": "subject:alert-me"/ && /"threshold": 50/ } @notes), 1,
	'one warning for subject:alert-me, naming the scope, once per period');

# Concurrency policy: a call's lease (its reservation) ends when its usage is ingested.
my $Q = '76000000-0000-4000-8000-0000000000b1';
$node->safe_psql('postgres', qq{
INSERT INTO aos_cus.cus_integrations (tenant_id, id, name, provider, status) VALUES ('$T', '$Q', 'leases', 'openai', 'enabled');
SELECT aos_cus.set_policy('$T', '$Q', '{"max_concurrent": 1}')});
is($node->safe_psql('postgres', qq{SELECT reason FROM aos_cus.check('$T', '$Q', 1, 0, 'lease-1')}), 'ok', 'one call in flight');
is($node->safe_psql('postgres', qq{SELECT reason FROM aos_cus.check('$T', '$Q', 1, 0, 'lease-2')}), 'concurrency_limit',
	'a second is refused while the first is in flight');
$node->safe_psql('postgres', qq{SELECT aos_cus.ingest_usage('$T', jsonb_build_object('integration_id', '$Q', 'call_id', 'lease-1',
    'model', 'gpt-4o', 'started_at', now(), 'input_tokens', 1))});
is($node->safe_psql('postgres', qq{SELECT reason FROM aos_cus.check('$T', '$Q', 1, 0, 'lease-2')}), 'ok',
	'the ingest of the first released its lease');

done_testing();
