-- Enforcement: precedence, reservations, commit semantics, periods, rebuild, bad input.
SET timezone = 'UTC';
-- Decision counters are server-wide: compare with their values now.
CREATE TEMP TABLE stat0 AS SELECT * FROM aos_cus.stat_decisions();
\set t '''70000000-0000-4000-8000-000000000001'''
\set other '''70000000-0000-4000-8000-000000000002'''

-- The precedence matrix: every mode x rate x budget x token condition on its own integration.
-- Rate state is made first with lenient limits (one admitted request of rpm = 1), then the
-- limits are set: a limits change reloads the entry and keeps its rate window.
CREATE TEMP TABLE matrix AS
SELECT row_number() OVER () AS n, m.mode, r.rate, b.budget, k.tokens
  FROM unnest(ARRAY['enforce', 'warn', 'off']) WITH ORDINALITY m(mode, mo),
       unnest(ARRAY['ok', 'limited']) WITH ORDINALITY r(rate, ro),
       unnest(ARRAY['ok', 'warn', 'exceeded']) WITH ORDINALITY b(budget, bo),
       unnest(ARRAY['ok', 'warn', 'exceeded']) WITH ORDINALITY k(tokens, ko)
 ORDER BY mo, ro, bo, ko;
INSERT INTO aos_cus.cus_integrations (tenant_id, id, name, provider, status, rpm)
SELECT :t, ('70000000-0000-4000-8000-' || lpad(n::text, 12, '0'))::uuid, 'm' || n, 'openai', 'enabled', 1
  FROM matrix;
SELECT count(*) AS rate_slots_used
  FROM matrix, aos_cus.check(:t, ('70000000-0000-4000-8000-' || lpad(n::text, 12, '0'))::uuid) c
 WHERE rate = 'limited' AND c.decision = 'allowed';
UPDATE aos_cus.cus_integrations i
   SET enforcement_mode = m.mode, budget_microcents = 1000, token_limit = 1000, warn_at_pct = 80
  FROM matrix m
 WHERE i.id = ('70000000-0000-4000-8000-' || lpad(m.n::text, 12, '0'))::uuid;
CREATE TEMP TABLE matrix_result AS
SELECT m.*, c.decision, c.reason,
       CASE WHEN m.mode = 'off' THEN 'allowed/ok'
            WHEN m.rate = 'limited' OR m.budget = 'exceeded' OR m.tokens = 'exceeded' THEN
                 (CASE m.mode WHEN 'warn' THEN 'warned' ELSE 'blocked' END) || '/' ||
                 CASE WHEN m.rate = 'limited' THEN 'rate_limited'
                      WHEN m.budget = 'exceeded' THEN 'budget_exceeded' ELSE 'token_limit_exceeded' END
            WHEN m.budget = 'warn' THEN 'warned/budget_warning'
            WHEN m.tokens = 'warn' THEN 'warned/token_warning'
            ELSE 'allowed/ok' END AS expected
  FROM matrix m,
       aos_cus.check(:t, ('70000000-0000-4000-8000-' || lpad(m.n::text, 12, '0'))::uuid,
                     CASE m.budget WHEN 'ok' THEN 100 WHEN 'warn' THEN 800 ELSE 1001 END,
                     CASE m.tokens WHEN 'ok' THEN 100 WHEN 'warn' THEN 900 ELSE 5000 END) c;
SELECT mode, rate, budget, tokens, decision, reason FROM matrix_result ORDER BY n;
SELECT count(*) AS mismatches FROM matrix_result WHERE decision || '/' || reason <> expected;
-- Integration state comes first, whatever the limits and mode.
INSERT INTO aos_cus.cus_integrations (tenant_id, id, name, provider, status, deleted_at, enforcement_mode, budget_microcents)
VALUES (:t, '70000000-0000-4000-8000-0000000000c1', 'created', 'openai', 'created', NULL, 'off', 0),
       (:t, '70000000-0000-4000-8000-0000000000c2', 'disabled', 'openai', 'disabled', NULL, 'warn', 0),
       (:t, '70000000-0000-4000-8000-0000000000c3', 'deleted', 'openai', 'deleted', now(), 'off', 0);
SELECT s.id, c.decision, c.reason
  FROM (VALUES ('70000000-0000-4000-8000-0000000000c1'::uuid), ('70000000-0000-4000-8000-0000000000c2'),
               ('70000000-0000-4000-8000-0000000000c3'), ('70000000-0000-4000-8000-0000000000ff')) s(id),
       aos_cus.check(:t, s.id, 1, 1) c;
-- Enabling one takes effect on the next check (limits reload after the UPDATE commits).
UPDATE aos_cus.cus_integrations SET status = 'enabled', budget_microcents = NULL WHERE id = '70000000-0000-4000-8000-0000000000c2';
SELECT decision, reason FROM aos_cus.check(:t, '70000000-0000-4000-8000-0000000000c2', 1, 1);
-- Warned and blocked decisions are logged; allowed ones are not.
SELECT decision, reason, count(*) FROM aos_cus.cus_enforcement_log WHERE tenant_id = :t GROUP BY 1, 2 ORDER BY 1, 2;
SELECT s.decision, s.reason, s.count - s0.count AS counted
  FROM aos_cus.stat_decisions() s JOIN stat0 s0 USING (decision, reason)
 WHERE s.count > s0.count ORDER BY 1, 2;

-- Reservations: an allowed check with call_id holds its estimate until ingest settles it.
INSERT INTO aos_cus.cus_integrations (tenant_id, id, name, provider, status, budget_microcents, budget_period, token_limit, token_period)
VALUES (:t, '70000000-0000-4000-8000-0000000000b1', 'budget', 'openai', 'enabled', 10000, 'total', 1000000, 'total');
\set b '''70000000-0000-4000-8000-0000000000b1'''
SELECT decision, reason, budget_used_microcents, budget_limit_microcents, period_resets_at FROM aos_cus.check(:t, :b, 6000, 10, 'r1');
SELECT decision, reason, budget_used_microcents FROM aos_cus.check(:t, :b, 4001, 10, 'r2');
SELECT decision, reason, budget_used_microcents FROM aos_cus.check(:t, :b, 4000, 10, 'r2');
SELECT decision, reason, budget_used_microcents FROM aos_cus.check(:t, :b, 1, 0, 'r3');
-- A repeated check of the same call_id replaces its reservation instead of adding to it.
SELECT decision, reason, budget_used_microcents FROM aos_cus.check(:t, :b, 3000, 10, 'r2');
SELECT spent_microcents, reserved_microcents, reserved_tokens, active_reservations FROM aos_cus.current_usage(:t, :b);
-- Ingest of r1 settles its reservation of 6000 to the real cost of 2500.
INSERT INTO aos_cus.cus_llm_usage (tenant_id, integration_id, call_id, provider, model, started_at, cost_microcents, input_tokens, output_tokens)
VALUES (:t, :b, 'r1', 'openai', 'gpt-4o', now(), 2500, 40, 2);
SELECT spent_microcents, reserved_microcents, tokens_used, reserved_tokens, active_reservations FROM aos_cus.current_usage(:t, :b);
-- Commit semantics: a rolled-back ingest changes nothing; a committed one moves spend by exactly its cost.
BEGIN;
INSERT INTO aos_cus.cus_llm_usage (tenant_id, integration_id, call_id, provider, model, started_at, cost_microcents)
VALUES (:t, :b, 'r2', 'openai', 'gpt-4o', now(), 999);
SELECT spent_microcents, reserved_microcents FROM aos_cus.current_usage(:t, :b);
ROLLBACK;
SELECT spent_microcents, reserved_microcents FROM aos_cus.current_usage(:t, :b);
-- Savepoints: the rolled-back subtransaction's row is not counted, the others are.
BEGIN;
INSERT INTO aos_cus.cus_llm_usage (tenant_id, integration_id, call_id, provider, model, started_at, cost_microcents)
VALUES (:t, :b, 's1', 'openai', 'gpt-4o', now(), 100);
SAVEPOINT a;
INSERT INTO aos_cus.cus_llm_usage (tenant_id, integration_id, call_id, provider, model, started_at, cost_microcents)
VALUES (:t, :b, 's2', 'openai', 'gpt-4o', now(), 200);
SAVEPOINT b;
INSERT INTO aos_cus.cus_llm_usage (tenant_id, integration_id, call_id, provider, model, started_at, cost_microcents)
VALUES (:t, :b, 's3', 'openai', 'gpt-4o', now(), 400);
RELEASE b;
ROLLBACK TO a;
INSERT INTO aos_cus.cus_llm_usage (tenant_id, integration_id, call_id, provider, model, started_at, cost_microcents)
VALUES (:t, :b, 's4', 'openai', 'gpt-4o', now(), 800);
COMMIT;
SELECT spent_microcents FROM aos_cus.current_usage(:t, :b);
-- COPY moves the counters too; a row priced later (UPDATE OF cost_microcents) adds its cost then
-- (a model without a price stays unpriced at insert).
COPY aos_cus.cus_llm_usage (tenant_id, integration_id, call_id, provider, model, started_at, cost_microcents, output_tokens) FROM stdin;
70000000-0000-4000-8000-000000000001	70000000-0000-4000-8000-0000000000b1	copy-1	openai	no-such-model	2026-01-01 00:00:00+00	10	1
70000000-0000-4000-8000-000000000001	70000000-0000-4000-8000-0000000000b1	copy-2	openai	no-such-model	2026-01-01 00:00:01+00	20	2
70000000-0000-4000-8000-000000000001	70000000-0000-4000-8000-0000000000b1	copy-3	openai	no-such-model	2026-01-01 00:00:02+00	\N	3
\.
SELECT spent_microcents, tokens_used FROM aos_cus.current_usage(:t, :b);
UPDATE aos_cus.cus_llm_usage SET cost_microcents = 70 WHERE tenant_id = :t AND call_id = 'copy-3';
SELECT spent_microcents, tokens_used FROM aos_cus.current_usage(:t, :b);
-- Output includes reasoning: a call of 5 output tokens, 4 of them reasoning, counts 5 toward the token limit.
INSERT INTO aos_cus.cus_llm_usage (tenant_id, integration_id, call_id, provider, model, started_at, cost_microcents, output_tokens, reasoning_tokens)
VALUES (:t, :b, 'reasoning-1', 'openai', 'no-such-model', '2026-01-01 00:00:03+00', 0, 5, 4);
SELECT spent_microcents, tokens_used FROM aos_cus.current_usage(:t, :b);
-- The cache agrees with the durable rows after a forced rebuild (any limits change reloads).
UPDATE aos_cus.cus_integrations SET warn_at_pct = 90 WHERE id = :b;
SELECT u.spent_microcents = s.cost AS rebuilt_spend_matches, u.tokens_used = s.tokens AS rebuilt_tokens_match
  FROM aos_cus.current_usage(:t, :b) u,
       (SELECT sum(cost_microcents) AS cost,
               sum(input_tokens + output_tokens + cache_read_tokens + cache_write_tokens + cache_write_1h_tokens
                   + input_audio_tokens + output_audio_tokens) AS tokens
          FROM aos_cus.cus_llm_usage WHERE integration_id = :b) s;
-- Expired reservations are released (aos_cus.reservation_ttl).
SET aos_cus.reservation_ttl = '1s';
SELECT decision FROM aos_cus.check(:t, :b, 50, 0, 'expiring');
SELECT reserved_microcents > 0 AS held FROM aos_cus.current_usage(:t, :b);
SELECT pg_sleep(1.2);
SELECT reserved_microcents, active_reservations FROM aos_cus.current_usage(:t, :b);
RESET aos_cus.reservation_ttl;
SELECT budget_microcents, budget_used_microcents, budget_remaining_microcents, token_limit, tokens_used, tokens_remaining,
       rpm, mode, timezone
  FROM aos_cus.integration_limits(:t, :b);
-- No limit of a kind: nothing remains to count down, so remaining is NULL (not 0).
SELECT budget_microcents, budget_remaining_microcents IS NULL AS no_budget_remaining, token_limit,
       tokens_remaining IS NULL AS no_tokens_remaining, mode
  FROM aos_cus.integration_limits(:t, '70000000-0000-4000-8000-0000000000c2');

-- Periods: calendar boundaries in the integration's zone, daylight saving included.
SELECT * FROM aos_cus.limit_period_bounds('month', 'America/Los_Angeles', '2026-03-01 07:59:59.999999+00');
SELECT * FROM aos_cus.limit_period_bounds('month', 'America/Los_Angeles', '2026-03-01 08:00:00+00');
SELECT *, period_end - period_start AS length FROM aos_cus.limit_period_bounds('day', 'America/Los_Angeles', '2026-03-08 12:00+00');
SELECT *, period_end - period_start AS length FROM aos_cus.limit_period_bounds('day', 'America/Los_Angeles', '2026-11-01 12:00+00');
SELECT *, period_end - period_start AS length FROM aos_cus.limit_period_bounds('week', 'Europe/Berlin', '2026-03-25 12:00+00');
SELECT * FROM aos_cus.limit_period_bounds('month', 'Asia/Kathmandu', '2026-01-31 18:14:59+00');
SELECT * FROM aos_cus.limit_period_bounds('total', 'UTC');
SELECT * FROM aos_cus.limit_period_bounds('year', 'UTC');
SELECT * FROM aos_cus.limit_period_bounds('day', 'Mars/Olympus');

-- Rebuild from durable state: daily aggregates for full UTC days inside the period (here the
-- current month in Los Angeles), raw rows for its partial days and for rows the rollup has not
-- folded. Rows of the full days are deleted after folding: only cus_usage_daily still has them.
INSERT INTO aos_cus.cus_integrations (tenant_id, id, name, provider, status, budget_microcents, budget_period, token_period, timezone)
VALUES (:t, '70000000-0000-4000-8000-0000000000d1', 'la', 'openai', 'enabled', 1000000000, 'month', 'day', 'America/Los_Angeles');
\set d '''70000000-0000-4000-8000-0000000000d1'''
CREATE TEMP TABLE p AS SELECT * FROM aos_cus.limit_period_bounds('month', 'America/Los_Angeles', clock_timestamp());
INSERT INTO aos_cus.cus_llm_usage (tenant_id, integration_id, call_id, provider, model, started_at, cost_microcents, input_tokens)
SELECT :t, :d, 'la-' || x.tag, 'openai', 'gpt-4o', x.at, x.cost, 1
  FROM p, LATERAL (VALUES
       ('before', p.period_start - interval '1 microsecond', 1),          -- previous month: not counted
       ('first', p.period_start, 10),                                     -- partial first UTC day
       ('full', date_trunc('day', p.period_start, 'UTC') + interval '1 day 1 hour', 100),  -- full UTC day
       ('late', date_trunc('day', p.period_start, 'UTC') + interval '1 day 2 hours', 1000) -- full day, not folded
  ) x(tag, at, cost)
 WHERE x.tag <> 'late';
-- A rollup: fold every visible row into cus_usage_daily and record the snapshot (REPEATABLE READ).
BEGIN ISOLATION LEVEL REPEATABLE READ;
INSERT INTO aos_cus.cus_usage_daily (tenant_id, integration_id, day, provider, model, requests, cost_microcents, input_tokens)
SELECT tenant_id, integration_id, (started_at AT TIME ZONE 'UTC')::date, provider, model, count(*), sum(cost_microcents), sum(input_tokens)
  FROM aos_cus.cus_llm_usage WHERE integration_id = :d GROUP BY 1, 2, 3, 4, 5;
UPDATE aos_cus.cus_rollup_state SET last_snapshot = pg_current_snapshot(), last_rollup_at = now();
COMMIT;
DELETE FROM aos_cus.cus_llm_usage WHERE call_id = 'la-full';
INSERT INTO aos_cus.cus_llm_usage (tenant_id, integration_id, call_id, provider, model, started_at, cost_microcents, input_tokens)
SELECT :t, :d, 'la-late', 'openai', 'gpt-4o', date_trunc('day', p.period_start, 'UTC') + interval '1 day 2 hours', 1000, 1 FROM p;
UPDATE aos_cus.cus_integrations SET warn_at_pct = 81 WHERE id = :d;
SELECT u.budget_period_start = p.period_start AS starts_at_la_midnight, u.budget_period_end = p.period_end AS ends_at_next,
       u.spent_microcents AS spent_first_full_late
  FROM aos_cus.current_usage(:t, :d) u, p;
-- A total period counts everything, before the month included.
UPDATE aos_cus.cus_integrations SET budget_period = 'total' WHERE id = :d;
SELECT budget_period_start, budget_period_end, spent_microcents FROM aos_cus.current_usage(:t, :d);

-- Bad input: NULLs, negative estimates, overflow, bad call_id, unknown ids, another tenant.
SELECT * FROM aos_cus.check(NULL, :b);
SELECT * FROM aos_cus.check(:t, NULL);
SELECT * FROM aos_cus.check(:t, :b, NULL);
SELECT * FROM aos_cus.check(:t, :b, 0, NULL);
SELECT * FROM aos_cus.check(:t, :b, -1);
SELECT * FROM aos_cus.check(:t, :b, 0, -5);
SELECT * FROM aos_cus.check_budget_limit(:t, :b, -1);
SELECT * FROM aos_cus.check(:t, :b, 9223372036854775808::bigint);
SELECT decision, reason FROM aos_cus.check(:t, :b, 9223372036854775807, 9223372036854775807);
SELECT * FROM aos_cus.check(:t, :b, 0, 0, '');
SELECT * FROM aos_cus.check(:t, :b, 0, 0, repeat('x', 256));
SELECT decision, reason, budget_limit_microcents FROM aos_cus.check(:t, '70000000-0000-4000-8000-00000000dead');
SELECT * FROM aos_cus.current_usage(:t, '70000000-0000-4000-8000-00000000dead');
-- The other tenant's integration: as tenant t it does not exist; naming the other tenant is 42501.
INSERT INTO aos_cus.cus_integrations (tenant_id, id, name, provider, status)
VALUES (:other, '70000000-0000-4000-8000-0000000000e1', 'theirs', 'openai', 'enabled');
SET aos_cus.tenant_id = '70000000-0000-4000-8000-000000000001';
SELECT decision, reason FROM aos_cus.check(:t, '70000000-0000-4000-8000-0000000000e1');
\set VERBOSITY sqlstate
SELECT * FROM aos_cus.check(:other, '70000000-0000-4000-8000-0000000000e1');
SELECT * FROM aos_cus.current_usage(:other, '70000000-0000-4000-8000-0000000000e1');
SELECT * FROM aos_cus.integration_limits(:other, '70000000-0000-4000-8000-0000000000e1');
SELECT * FROM aos_cus.check_rate_limit(:other, '70000000-0000-4000-8000-0000000000e1');
\set VERBOSITY default
RESET aos_cus.tenant_id;
-- Single-dimension probes decide one dimension and change nothing.
SELECT decision, reason FROM aos_cus.check_budget_limit(:t, :b, 100000);
SELECT decision, reason FROM aos_cus.check_token_limit(:t, :b, 100);
SELECT decision, reason FROM aos_cus.check_rate_limit(:t, '70000000-0000-4000-8000-000000000010');
SELECT decision, reason FROM aos_cus.check_budget_limit(:t, '70000000-0000-4000-8000-0000000000c1');
