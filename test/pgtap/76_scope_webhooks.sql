-- Layered budgets with webhooks (issues 14 and 15): every scope instance's crossing writes its own event, with the
-- instance in scope and payload, once per period; the first block is "exhausted" for the scope that blocked; a
-- rolled-back savepoint takes back its events and alert flags. Tenants are random: flags live in shared memory.
BEGIN;
SELECT plan(9);

SELECT gen_random_uuid() AS t1, gen_random_uuid() AS i1 \gset
INSERT INTO aos_cus.cus_integrations (tenant_id, id, name, provider, status)
VALUES (:'t1', :'i1', 'scope-hooks', 'openai', 'enabled');
SELECT aos_cus.set_scope_limits(:'t1', 'subject:*', '{"budget_microcents": 100, "warn_at_pct": 80}') IS NOT NULL AS l \gset
CREATE TEMP VIEW ev AS SELECT * FROM aos_cus.cus_webhook_events WHERE tenant_id = :'t1';

SELECT is((aos_cus.check(:'t1', :'i1', 85, 0, NULL, 'user-42')).decision, 'warned', 'check() at 85% of subject:user-42 warns');
SELECT is((SELECT count(*)::int FROM ev WHERE type = 'budget.threshold' AND scope = 'subject:user-42'
             AND payload ->> 'scope' = 'subject:user-42' AND payload ->> 'threshold' = '80'
             AND payload ->> 'integration' = :'i1'), 1, 'the crossing wrote one budget.threshold event naming the subject');
SELECT is((SELECT count(*)::int FROM ev WHERE scope <> 'subject:user-42'), 0, 'no other scope (without limits) wrote an event');
SELECT is((aos_cus.check(:'t1', :'i1', 90, 0, NULL, 'user-42')).decision, 'warned', 'a second check crossing 80% again warns');
SELECT is((SELECT count(*)::int FROM ev WHERE type = 'budget.threshold'), 1, 'but writes no second event in the period');

SELECT is((aos_cus.check(:'t1', :'i1', 150, 0, NULL, 'user-42')).reason, 'budget_exceeded', 'over the subject budget blocks');
SELECT is((aos_cus.check(:'t1', :'i1', 150, 0, NULL, 'user-42')).reason, 'budget_exceeded', 'and again');
SELECT is((SELECT count(*)::int FROM ev WHERE type = 'budget.exhausted' AND scope = 'subject:user-42'
             AND payload ->> 'scope' = 'subject:user-42' AND NOT payload ? 'threshold'), 1,
          'the first block wrote one budget.exhausted event for the subject');

SAVEPOINT s;
SELECT aos_cus.check(:'t1', :'i1', 85, 0, NULL, 'user-43') IS NOT NULL AS c \gset
ROLLBACK TO SAVEPOINT s;
SELECT aos_cus.check(:'t1', :'i1', 85, 0, NULL, 'user-43') IS NOT NULL AS c \gset
SELECT is((SELECT count(*)::int FROM ev WHERE type = 'budget.threshold' AND scope = 'subject:user-43'), 1,
          'a crossing rolled back with its savepoint is written again by the next check (its flag was taken back)');

SELECT * FROM finish();
ROLLBACK;
