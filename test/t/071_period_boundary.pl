# A budget exhausted in the last seconds of a period admits again in the first second of the next, in zones with
# odd offsets and DST: for each case the node restarts under libfaketime 4 s before the period's end, which plain
# SQL computes (date_trunc in the zone), never aos_cus. Cases run in time order so the clock only moves forward.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use AosCusTest;

my $lib = '/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1';
ok(-r $lib, "libfaketime is installed ($lib)") or done_testing(), exit;

my $node = aos_cus_node('boundary');
my $T = '71100000-0000-4000-8000-000000000001';
# zone, period, an instant inside the period whose end is crossed
my @cases = (
	[ 'Pacific/Chatham',     'day',   '2027-01-09 00:00+00' ],    # +13:45
	[ 'America/Los_Angeles', 'day',   '2027-03-14 12:00+00' ],    # the 23-hour spring-forward day
	[ 'America/St_Johns',    'week',  '2027-03-14 12:00+00' ],    # -02:30 after its spring-forward
	[ 'Australia/Lord_Howe', 'day',   '2027-04-03 20:00+00' ],    # the half-hour fall-back day
	[ 'Asia/Kathmandu',      'month', '2027-04-30 12:00+00' ],    # +05:45
	[ 'America/Los_Angeles', 'day',   '2027-11-07 12:00+00' ],    # the 25-hour fall-back day
	[ 'UTC',                 'month', '2028-02-29 12:00+00' ],    # leap day to 1 March
);

my $i = 0;
for my $c (@cases)
{
	my ($zone, $period, $inside) = @$c;
	$i++;
	my $id = sprintf('71100000-0000-4000-8000-%012d', $i);
	my ($end, $end_epoch) = split /\|/, $node->safe_psql('postgres', qq{
SELECT e, extract(epoch FROM e)::bigint
  FROM (SELECT (date_trunc('$period', '$inside'::timestamptz AT TIME ZONE '$zone') + interval '1 $period')
               AT TIME ZONE '$zone' AS e) x});
	$node->safe_psql('postgres', qq{
INSERT INTO aos_cus.cus_integrations (tenant_id, id, name, provider, status, budget_microcents, budget_period,
                                      timezone, enforcement_mode)
VALUES ('$T', '$id', 'b$i', 'openai', 'enabled', 1000, '$period', '$zone', 'enforce')});

	# Restart with a clock 4 s before the end of the period.
	$node->stop;
	my $real = `env -u LD_PRELOAD -u FAKETIME date -u +%s`;
	chomp $real;
	local $ENV{LD_PRELOAD} = $lib;
	local $ENV{FAKETIME} = sprintf('+%ds', $end_epoch - 4 - $real);
	local $ENV{FAKETIME_DONT_FAKE_MONOTONIC} = 1;
	$node->start;

	my ($before, $first, $spent, $second) = $node->safe_psql('postgres', qq{
SELECT now() < '$end', (aos_cus.check('$T', '$id', 1000, 0, 'call-$i')).decision;
INSERT INTO aos_cus.cus_llm_usage (tenant_id, integration_id, call_id, provider, model, started_at, cost_microcents)
VALUES ('$T', '$id', 'call-$i', 'openai', 'gpt-4o', now(), 1000);
SELECT (SELECT spent_microcents FROM aos_cus.current_usage('$T', '$id')),
       (aos_cus.check('$T', '$id', 1, 0)).reason}) =~ /^(\w+)\|(\w+)\n(\d+)\|(\w+)$/;
	is($before, 't', "$zone $period: the clock runs in the last seconds before $end");
	like($first, qr/^(allowed|warned)$/, "$zone $period: the last call of the period is admitted");
	is($spent, 1000, "$zone $period: its cost settles into the period");
	is($second, 'budget_exceeded', "$zone $period: the exhausted budget blocks in the last seconds");

	# Wait (on the server's clock) for the first second of the next period.
	$node->poll_query_until('postgres', qq{SELECT now() >= '$end'}) or die "the clock did not reach $end";
	my ($after, $start, $spent_after) = split /\|/, $node->safe_psql('postgres', qq{
SELECT d.reason, u.budget_period_start = '$end', u.spent_microcents
  FROM aos_cus.check('$T', '$id', 1, 0) d, aos_cus.current_usage('$T', '$id') u});
	is($after, 'ok', "$zone $period: the first check of the next period is admitted again");
	is($start, 't', "$zone $period: the new period starts exactly at $end");
	is($spent_after, 0, "$zone $period: the new period starts with no spend");
}

$node->stop;
done_testing();
