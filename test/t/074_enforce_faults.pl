# check() that fails after deciding leaves nothing in shared memory (issue 22 finding 2):
#  - BEGIN READ ONLY: a warned or blocked check() skips the decision log (counted as log_skipped_read_only)
#    instead of failing with 25006 after reserving;
#  - an error in the log write (a trigger raising, a statement_timeout) undoes the reservation, the rate slot and
#    the alert flags: current_usage shows nothing reserved and the next check is allowed.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use AosCusTest;

my $node = aos_cus_node('faults');
my $T = '74000000-0000-4000-8000-000000000001';
my ($RO, $ERR, $TMO) = map { "74000000-0000-4000-8000-0000000000$_" } qw(a1 b1 c1);

# Budget 100,000,000 per month, warn at 80%, one request per minute: a leaked reservation blocks by budget, a
# leaked rate slot by rate.
$node->safe_psql('postgres', qq{
INSERT INTO aos_cus.cus_integrations (tenant_id, id, name, provider, status, rpm, budget_microcents, budget_period,
                                      warn_at_pct)
VALUES ('$T', '$RO', 'ro', 'openai', 'enabled', NULL, 100000000, 'month', 80),
       ('$T', '$ERR', 'err', 'openai', 'enabled', 1, 100000000, 'month', 80),
       ('$T', '$TMO', 'tmo', 'openai', 'enabled', 1, 100000000, 'month', 80);
});
my $usage = q{SELECT spent_microcents, reserved_microcents, active_reservations, requests_this_minute
                FROM aos_cus.current_usage('%s', '%s')};
my $skipped = q{SELECT value FROM aos_cus.stat_enforcement() WHERE name = 'log_skipped_read_only'};

# 1. The issue's scenario: a blocked then a warned decision in a read-only transaction.
my ($ret, $out, $err) = $node->psql('postgres', qq{
BEGIN READ ONLY;
SELECT decision, reason FROM aos_cus.check('$T', '$RO', 150000000, 0, 'ro-call-0');
SELECT decision, reason FROM aos_cus.check('$T', '$RO', 90000000, 0, 'ro-call-1');
COMMIT;
});
is($ret, 0, 'check() in a read-only transaction does not fail') or diag $err;
is($out, "blocked|budget_exceeded\nwarned|budget_warning", 'it decides blocked, then warned');
is($node->safe_psql('postgres', $skipped), '2', 'both decisions skipped the log and were counted');
is($node->safe_psql('postgres', "SELECT count(*) FROM aos_cus.cus_enforcement_log WHERE integration_id = '$RO'"),
	'0', 'nothing was written to the decision log');
is($node->safe_psql('postgres', "SELECT spent_microcents, reserved_microcents, active_reservations
                                    FROM aos_cus.current_usage('$T', '$RO')"), '0|90000000|1',
	'the warned check holds its 90,000,000 reservation (the blocked one reserved nothing)');
# Its usage settles the reservation; a later 20,000,000 check is not budget_exceeded.
$node->safe_psql('postgres', qq{
INSERT INTO aos_cus.cus_llm_usage (tenant_id, integration_id, call_id, provider, model, started_at, cost_microcents)
VALUES ('$T', '$RO', 'ro-call-1', 'openai', 'gpt-4o', now(), 1000000)});
is($node->safe_psql('postgres', "SELECT decision, reason FROM aos_cus.check('$T', '$RO', 20000000, 0)"),
	'allowed|ok', 'after its usage settled it, a later check is allowed');

# 2. An error injected into the log write after the decision: nothing stays reserved or counted.
$node->safe_psql('postgres', q{
CREATE FUNCTION public.fail_log() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('aos_test.fault', true) = 'sleep' THEN
        PERFORM pg_catalog.pg_sleep(5);
    END IF;
    RAISE EXCEPTION 'injected log failure';
END $$;
CREATE TRIGGER fail_log BEFORE INSERT ON aos_cus.cus_enforcement_log FOR EACH ROW EXECUTE FUNCTION public.fail_log();
});
($ret, $out, $err) = $node->psql('postgres', qq{
LISTEN aos_cus_alerts;
SELECT decision FROM aos_cus.check('$T', '$ERR', 90000000, 0, 'err-call-1');
});
isnt($ret, 0, 'check() fails when its log write fails');
like($err, qr/injected log failure/, 'with the injected error');
unlike($out, qr/Asynchronous notification/, 'and no alert is sent');
is($node->safe_psql('postgres', sprintf($usage, $T, $ERR)), '0|0|0|0',
	'no reservation and no rate slot outlive the failed check');
is($node->safe_psql('postgres', q{SELECT value FROM aos_cus.stat_enforcement() WHERE name = 'reservations_active'}),
	'0', 'no reservation is active in shared memory');
is($node->safe_psql('postgres', "SELECT count(*) FROM aos_cus.cus_enforcement_log"), '0', 'no log row either');
$node->safe_psql('postgres', 'DROP TRIGGER fail_log ON aos_cus.cus_enforcement_log');
($ret, $out, $err) = $node->psql('postgres', qq{
LISTEN aos_cus_alerts;
SELECT decision, reason FROM aos_cus.check('$T', '$ERR', 85000000, 0, 'err-call-2');
});
like($out, qr/^warned\|budget_warning$/m, 'the next check is neither budget_exceeded nor rate_limited');
like($out, qr/"dimension": "budget", "threshold": 80,/, 'and the 80% alert, undone with the failed check, is sent');

# 3. A statement_timeout during the log write (57014) undoes the same way.
$node->safe_psql('postgres', q{
CREATE TRIGGER fail_log BEFORE INSERT ON aos_cus.cus_enforcement_log FOR EACH ROW EXECUTE FUNCTION public.fail_log();
});
($ret, $out, $err) = $node->psql('postgres', qq{
SET aos_test.fault = 'sleep';
SET statement_timeout = '300ms';
SELECT decision FROM aos_cus.check('$T', '$TMO', 90000000, 0, 'tmo-call-1');
});
like($err, qr/canceling statement due to statement timeout/, 'a statement_timeout hits the log write');
is($node->safe_psql('postgres', sprintf($usage, $T, $TMO)), '0|0|0|0',
	'no reservation and no rate slot outlive the timed-out check');
is($node->safe_psql('postgres', q{SELECT value FROM aos_cus.stat_enforcement() WHERE name = 'reservations_active'}),
	'1', 'only err-call-2 is reserved in shared memory');

# 4. A failed check() that replaced its call_id's reservation restores the one it replaced.
is($node->safe_psql('postgres', "SELECT decision FROM aos_cus.check('$T', '$RO', 5000000, 0, 'rep-1')"), 'allowed',
	'a first check of rep-1 reserves 5,000,000');
($ret, $out, $err) = $node->psql('postgres', "SELECT decision FROM aos_cus.check('$T', '$RO', 85000000, 0, 'rep-1')");
like($err, qr/injected log failure/, 'a second, warned check of rep-1 fails in its log write');
is($node->safe_psql('postgres', "SELECT reserved_microcents, active_reservations FROM aos_cus.current_usage('$T', '$RO')"),
	'5000000|1', 'rep-1 keeps its first 5,000,000 reservation');
$node->safe_psql('postgres', 'DROP TRIGGER fail_log ON aos_cus.cus_enforcement_log');
is($node->safe_psql('postgres', "SELECT decision, reason FROM aos_cus.check('$T', '$TMO', 10000000, 0, 'tmo-call-2')"),
	'allowed|ok', 'the next check is allowed');

done_testing();
