# ingest_usage_batch() aborts as a whole on query cancel, statement and lock timeouts, deadlocks and serialization
# failures (nothing inserted, nothing stored as a reject); only a record's own data errors become rejects.
# The fault-injection review found each of these swallowed: a timeout inserted everything, a cancel was ignored,
# two cancels or a lock timeout stored "canceling statement ..." as a record's reject.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use AosCusTest;

my $node = aos_cus_node('batch_interrupts', extra_conf => "deadlock_timeout = '200ms'");
my $T = '63000000-0000-4000-8000-000000000001';
my $I = '63000000-0000-4000-8000-0000000000a1';
$node->safe_psql('postgres', qq{
INSERT INTO aos_cus.cus_integrations (tenant_id, id, name, provider, status) VALUES ('$T', '$I', 'b', 'openai', 'enabled')});

# A batch of n records with call_ids <prefix>1..<prefix>n, plus the extra call_ids given.
sub batch
{
	my ($prefix, $n, @extra) = @_;
	my $extra = join('', map { ", '$_'" } @extra);
	return qq{SELECT count(*) FROM aos_cus.ingest_usage_batch('$T', (
    SELECT jsonb_agg(jsonb_build_object('integration_id', '$I', 'call_id', c, 'provider', 'openai', 'model', 'gpt-4o',
                                        'input_tokens', 10, 'output_tokens', 1, 'started_at', now()))
      FROM (SELECT '$prefix' || g AS c FROM generate_series(1, $n) g UNION ALL SELECT unnest(ARRAY[NULL::text$extra])) x
     WHERE c IS NOT NULL))};
}
# Usage rows and rejects stored under call_ids starting with prefix.
sub stored
{
	my ($prefix) = @_;
	return $node->safe_psql('postgres', qq{
SELECT (SELECT count(*) FROM aos_cus.cus_llm_usage WHERE tenant_id = '$T' AND call_id LIKE '$prefix%') || '/' ||
       (SELECT count(*) FROM aos_cus.cus_ingest_rejects WHERE tenant_id = '$T' AND call_id LIKE '$prefix%')});
}

# 1. statement_timeout on a batch of 2,000 records given as a literal (the time is spent in ingest_usage_batch).
my $literal = '[' . join(', ', map { qq{{"integration_id": "$I", "call_id": "st$_", "provider": "openai", "model": "gpt-4o", "input_tokens": 10, "output_tokens": 1, "started_at": "2026-06-01T00:00:00Z"}} } 1 .. 2000) . ']';
my ($ret, $out, $err) = $node->psql('postgres', "\\set VERBOSITY verbose\nSET statement_timeout = '20ms';\n"
	  . "SELECT count(*) FROM aos_cus.ingest_usage_batch('$T', '$literal')");
like($err, qr/57014: canceling statement due to statement timeout/, 'statement_timeout aborts the batch (57014)');
is(stored('st'), '0/0', 'statement_timeout: nothing inserted, nothing stored as a reject');

# 2. A cancel while the batch waits for a concurrent insert of one of its call_ids (sent twice, as in the review).
my $holder = $node->background_psql('postgres');
$holder->query_safe(qq{BEGIN; SELECT status FROM aos_cus.ingest_usage('$T', '{"integration_id": "$I", "call_id": "held-1",
    "provider": "openai", "model": "gpt-4o", "input_tokens": 1, "started_at": "2026-06-01T00:00:00Z"}')});
my $victim = $node->background_psql('postgres', on_error_stop => 0);
$victim->{stdin} .= "\\set VERBOSITY verbose\n" . batch('cx', 100, 'held-1') . ";\n\\echo done\n";
$victim->{run}->pump_nb;
for my $i (1, 2)
{
	$node->poll_query_until('postgres', q{SELECT count(*) > 0 FROM pg_stat_activity WHERE wait_event_type = 'Lock'
	  AND query LIKE '%ingest_usage_batch%'}) or die 'the batch never waited';
	$node->safe_psql('postgres', q{SELECT pg_cancel_backend(pid) FROM pg_stat_activity
	  WHERE wait_event_type = 'Lock' AND query LIKE '%ingest_usage_batch%'});
	sleep 1;
	last if $node->safe_psql('postgres', q{SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'
	  AND query LIKE '%ingest_usage_batch%'}) eq '0';
}
$victim->{run}->pump until $victim->{stdout} =~ /done/ || !$victim->{run}->pumpable;
like($victim->{stderr}, qr/57014: canceling statement due to user request/, 'a cancel aborts the batch (57014)');
is(stored('cx'), '0/0', 'cancel: nothing inserted, nothing stored as a reject');
is($node->safe_psql('postgres', qq{SELECT count(*) FROM aos_cus.cus_ingest_rejects WHERE tenant_id = '$T' AND call_id = 'held-1'}),
	'0', 'cancel: the contended record is not stored as a reject');
$victim->quit;

# 3. lock_timeout while waiting for the same uncommitted call_id.
($ret, $out, $err) = $node->psql('postgres', "\\set VERBOSITY verbose\nSET lock_timeout = '100ms';\n" . batch('lt', 50, 'held-1'));
like($err, qr/55P03: canceling statement due to lock timeout/, 'lock_timeout aborts the batch (55P03)');
is(stored('lt'), '0/0', 'lock_timeout: nothing inserted, nothing stored as a reject');
$holder->query_safe('COMMIT');

# 4. A deadlock between two batches: the victim aborts whole; the other commits.
my $a = $node->background_psql('postgres', on_error_stop => 0);
my $b = $node->background_psql('postgres', on_error_stop => 0);
$a->query_safe('BEGIN; ' . batch('da', 3));
$b->query_safe('BEGIN; ' . batch('db', 3));
$a->{stdin} .= "\\set VERBOSITY verbose\n" . batch('da-more', 1, 'db1') . ";\n\\echo a-done\n";
$a->{run}->pump_nb;
$node->poll_query_until('postgres', q{SELECT count(*) > 0 FROM pg_stat_activity WHERE wait_event_type = 'Lock'})
  or die 'a never waited';
$b->{stdin} .= "\\set VERBOSITY verbose\n" . batch('db-more', 1, 'da1') . ";\n\\echo b-done\n";
$b->{run}->pump until $b->{stdout} =~ /b-done/ || !$b->{run}->pumpable;
$a->{run}->pump until $a->{stdout} =~ /a-done/ || !$a->{run}->pumpable;
my $deadlocked = ($a->{stderr} . $b->{stderr}) =~ /40P01: deadlock detected/;
ok($deadlocked, 'two crossed batches deadlock and one is chosen as the victim');
$a->{stdin} .= "COMMIT;\n";
$b->{stdin} .= "COMMIT;\n";
$a->quit;
$b->quit;
is($node->safe_psql('postgres', qq{SELECT count(*) FROM aos_cus.cus_ingest_rejects WHERE tenant_id = '$T'
  AND (call_id LIKE 'da%' OR call_id LIKE 'db%')}), '0', 'deadlock: nothing stored as a reject');
is($node->safe_psql('postgres', qq{SELECT count(*) FROM aos_cus.cus_llm_usage WHERE tenant_id = '$T'
  AND (call_id LIKE 'da%' OR call_id LIKE 'db%')}), '5', 'deadlock: the victim transaction inserted nothing, the other all of its 5');

# 5. A serialization failure under REPEATABLE READ (a call_id committed after the snapshot).
my $rr = $node->background_psql('postgres', on_error_stop => 0);
$rr->query_safe('BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT 1');
$node->safe_psql('postgres', batch('late', 1));
$rr->{stdin} .= "\\set VERBOSITY verbose\n" . batch('rr', 20, 'late1') . ";\n\\echo rr-done\n";
$rr->{run}->pump until $rr->{stdout} =~ /rr-done/ || !$rr->{run}->pumpable;
like($rr->{stderr}, qr/40001: /, 'a serialization failure aborts the batch (40001)');
$rr->quit;
is(stored('rr'), '0/0', 'serialization failure: nothing inserted, nothing stored as a reject');

# 6. A record's own data error is still a reject, and the rest of the batch is inserted.
is($node->safe_psql('postgres', qq{SELECT string_agg(status::text, ',' ORDER BY ord) FROM aos_cus.ingest_usage_batch('$T',
  '[{"integration_id": "$I", "call_id": "ok-1", "provider": "openai", "model": "gpt-4o", "input_tokens": 1, "started_at": "2026-06-01T00:00:00Z"},
    {"integration_id": "$I", "call_id": "bad-1", "provider": "openai", "model": "gpt-4o", "input_tokens": -1, "started_at": "2026-06-01T00:00:00Z"}]')}),
	'inserted,rejected', 'a data error is a reject and the valid record is inserted');

$node->stop;
done_testing();
