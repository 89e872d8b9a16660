-- Property test of enforcement periods with an oracle in plain SQL (no aos_cus code): for random IANA zones
-- (Kathmandu, Lord Howe, St John's and Chatham always among them), random budget and token periods and random
-- usage rows around now() (previous periods, exact boundaries, the last microsecond before the next period),
-- current_usage() and integration_limits() equal sums over date_trunc(period, now() in the zone) bounds:
-- after settlement by the usage trigger, after a rollup folded part of the rows, and after a rebuild from the
-- durable tables. The daily rollup equals a recompute. Runs without an enclosing transaction (rollups fold
-- committed rows) and removes its rows at the end. The seed is printed: rerun with it to reproduce.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
SELECT plan(7);
-- Start at least 90 s before the next quarter hour (a day boundary in some zone): the oracle takes its bounds at
-- now() (the statement's transaction start), enforcement at the clock of the call, so a bound passing within a
-- statement makes them name different periods (reproduced with seed 0.129628 and a fake clock at
-- 2028-02-29T23:59:58Z: current_usage() named March, the oracle February; an oracle at clock_timestamp() agreed).
SELECT pg_sleep(extract(epoch FROM q - clock_timestamp()) + 1)
  FROM (SELECT date_trunc('hour', clock_timestamp())
               + (floor(extract(minute FROM clock_timestamp()) / 15) + 1) * interval '15 minutes' AS q) n
 WHERE q - clock_timestamp() < interval '90 seconds';

-- The oracle: the calendar period of `period` containing `at` in `zone` (NULL bounds for total).
CREATE FUNCTION pg_temp.oracle_bounds(period text, zone text, at timestamptz, OUT s timestamptz, OUT e timestamptz)
    LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN period = 'total' THEN NULL ELSE date_trunc(period, at AT TIME ZONE zone) AT TIME ZONE zone END,
           CASE WHEN period = 'total' THEN NULL
                ELSE (date_trunc(period, at AT TIME ZONE zone) + ('1 ' || period)::interval) AT TIME ZONE zone END
$$;

CREATE TABLE pg_temp.seed AS SELECT (floor(random() * 1000000) / 1000000)::float8 AS seed;
SELECT diag('seed ' || seed) FROM pg_temp.seed;
SELECT setseed(seed) FROM pg_temp.seed;

-- 32 cases: the four named zones, then random canonical zones; random periods.
CREATE TABLE pg_temp.cases AS
WITH zones AS (
    SELECT name, row_number() OVER (ORDER BY random()) AS r
      FROM pg_timezone_names WHERE name ~ '^(Africa|America|Antarctica|Asia|Atlantic|Australia|Europe|Indian|Pacific)/'
)
SELECT g AS n,
       ('72100000-0000-4000-8000-' || lpad(g::text, 12, '0'))::uuid AS id,
       coalesce((ARRAY['Asia/Kathmandu', 'Australia/Lord_Howe', 'America/St_Johns', 'Pacific/Chatham'])[g],
                (SELECT name FROM zones WHERE r = g)) AS zone,
       (ARRAY['day', 'week', 'month', 'total'])[1 + floor(random() * 4)::int] AS budget_period,
       (ARRAY['day', 'week', 'month', 'total'])[1 + floor(random() * 4)::int] AS token_period
  FROM generate_series(1, 32) g;

INSERT INTO aos_cus.cus_integrations (tenant_id, id, name, provider, status, budget_microcents, budget_period,
                                      token_limit, token_period, timezone, enforcement_mode)
SELECT '72100000-0000-4000-8000-000000000000', id, 'period-' || n, 'openai', 'enabled', 1000000000000000,
       budget_period, 1000000000000000, token_period, zone, 'enforce'
  FROM pg_temp.cases;
-- Load every entry before any usage exists, so the first rows settle through the trigger.
SELECT count(*) FROM pg_temp.cases c, aos_cus.current_usage('72100000-0000-4000-8000-000000000000', c.id);

-- Usage rows of a case: 40 random instants in the last 80 days and up to a day ahead, and every period
-- boundary of both periods with the microseconds on each side (the period end itself belongs to the next).
CREATE FUNCTION pg_temp.case_instants(c pg_temp.cases) RETURNS SETOF timestamptz LANGUAGE sql VOLATILE AS $$
    SELECT now() - random() * interval '80 days' + interval '1 day' FROM generate_series(1, 40)
    UNION ALL
    SELECT x + d
      FROM (SELECT s FROM pg_temp.oracle_bounds(c.budget_period, c.zone, now())
            UNION ALL SELECT e FROM pg_temp.oracle_bounds(c.budget_period, c.zone, now())
            UNION ALL SELECT s FROM pg_temp.oracle_bounds(c.token_period, c.zone, now())
            UNION ALL SELECT e FROM pg_temp.oracle_bounds(c.token_period, c.zone, now())) b(x),
           (VALUES (interval '-1 microsecond'), (interval '0'), (interval '1 microsecond')) o(d)
     WHERE x IS NOT NULL
$$;
CREATE FUNCTION pg_temp.insert_usage(part int) RETURNS bigint LANGUAGE sql VOLATILE AS $$
    WITH ins AS (
        INSERT INTO aos_cus.cus_llm_usage (tenant_id, integration_id, call_id, provider, model, started_at,
                                           input_tokens, output_tokens, cache_read_tokens, cost_microcents)
        SELECT '72100000-0000-4000-8000-000000000000', c.id, 'p' || part || '-' || gen_random_uuid(), 'openai',
               'gpt-4o', t, floor(random() * 10000)::bigint, floor(random() * 1000)::bigint,
               floor(random() * 100)::bigint, floor(random() * 1000000)::bigint
          FROM pg_temp.cases c, pg_temp.case_instants(c) t
        RETURNING 1)
    SELECT count(*) FROM ins
$$;

-- Cases whose current_usage() or integration_limits() differ from the oracle (one row per difference).
CREATE FUNCTION pg_temp.mismatches() RETURNS TABLE (n int, zone text, what text, got text, want text)
    LANGUAGE sql VOLATILE AS $$
    WITH o AS (
        SELECT c.n, c.id, c.zone, bb.s AS bs, bb.e AS be, tb.s AS ts, tb.e AS te,
               (SELECT coalesce(sum(u.cost_microcents), 0) FROM aos_cus.cus_llm_usage u
                 WHERE u.integration_id = c.id AND (bb.s IS NULL OR u.started_at >= bb.s AND u.started_at < bb.e)) AS spent,
               (SELECT coalesce(sum(u.input_tokens + u.output_tokens + u.cache_read_tokens), 0) FROM aos_cus.cus_llm_usage u
                 WHERE u.integration_id = c.id AND (tb.s IS NULL OR u.started_at >= tb.s AND u.started_at < tb.e)) AS tokens
          FROM pg_temp.cases c, pg_temp.oracle_bounds(c.budget_period, c.zone, now()) bb,
               pg_temp.oracle_bounds(c.token_period, c.zone, now()) tb),
    g AS (
        SELECT o.*, u.budget_period_start AS g_bs, u.budget_period_end AS g_be, u.token_period_start AS g_ts,
               u.token_period_end AS g_te, u.spent_microcents AS g_spent, u.tokens_used AS g_tokens,
               l.budget_used_microcents AS l_used, l.budget_remaining_microcents AS l_rem,
               l.tokens_used AS l_tokens, l.tokens_remaining AS l_trem
          FROM o, aos_cus.current_usage('72100000-0000-4000-8000-000000000000', o.id) u,
               aos_cus.integration_limits('72100000-0000-4000-8000-000000000000', o.id) l)
    SELECT g.n, g.zone, x.what, x.got, x.want
      FROM g, LATERAL (VALUES ('budget_period_start', g.g_bs::text, g.bs::text),
                              ('budget_period_end', g.g_be::text, g.be::text),
                              ('token_period_start', g.g_ts::text, g.ts::text),
                              ('token_period_end', g.g_te::text, g.te::text),
                              ('spent_microcents', g.g_spent::text, g.spent::text),
                              ('tokens_used', g.g_tokens::text, g.tokens::text),
                              ('budget_used_microcents', g.l_used::text, g.spent::text),
                              ('budget_remaining_microcents', g.l_rem::text, (1000000000000000 - g.spent)::text),
                              ('integration_limits.tokens_used', g.l_tokens::text, g.tokens::text),
                              ('tokens_remaining', g.l_trem::text, (1000000000000000 - g.tokens)::text)) x(what, got, want)
     WHERE x.got IS DISTINCT FROM x.want
$$;

-- Half the rows, a rollup, the other half: settled by the trigger into the loaded entries.
SELECT pg_temp.insert_usage(1);
SELECT aos_cus.rollup_usage();
SELECT pg_temp.insert_usage(2);
SELECT is((SELECT count(*) FROM pg_temp.mismatches()), 0::bigint,
          'settled by the trigger: current_usage() and integration_limits() equal the plain-SQL oracle in every zone');
SELECT diag(n || ' ' || zone || ': ' || what || ' = ' || coalesce(got, 'NULL') || ', oracle ' || coalesce(want, 'NULL'))
  FROM pg_temp.mismatches() LIMIT 20;

-- A limits change makes the next use rebuild each entry from the rollup plus the raw rows it has not folded.
UPDATE aos_cus.cus_integrations SET warn_at_pct = 81 WHERE tenant_id = '72100000-0000-4000-8000-000000000000';
SELECT is((SELECT count(*) FROM pg_temp.mismatches()), 0::bigint,
          'rebuilt from a partial rollup and raw rows: equal to the oracle');
SELECT diag(n || ' ' || zone || ': ' || what || ' = ' || coalesce(got, 'NULL') || ', oracle ' || coalesce(want, 'NULL'))
  FROM pg_temp.mismatches() LIMIT 20;

SELECT aos_cus.rollup_usage();
UPDATE aos_cus.cus_integrations SET warn_at_pct = 82 WHERE tenant_id = '72100000-0000-4000-8000-000000000000';
SELECT is((SELECT count(*) FROM pg_temp.mismatches()), 0::bigint,
          'rebuilt after every row is folded into the daily rollup: equal to the oracle');

-- The daily rollup of these rows equals a recompute over UTC days.
SELECT is((SELECT count(*) FROM (
              (SELECT integration_id, (started_at AT TIME ZONE 'UTC')::date AS day, count(*) AS requests,
                      sum(input_tokens) AS i, sum(output_tokens) AS o, sum(cost_microcents) AS cost
                 FROM aos_cus.cus_llm_usage WHERE tenant_id = '72100000-0000-4000-8000-000000000000' GROUP BY 1, 2
               EXCEPT
               SELECT integration_id, day, requests, input_tokens, output_tokens, cost_microcents
                 FROM aos_cus.cus_usage_daily WHERE tenant_id = '72100000-0000-4000-8000-000000000000')
              UNION ALL
              (SELECT integration_id, day, requests, input_tokens, output_tokens, cost_microcents
                 FROM aos_cus.cus_usage_daily WHERE tenant_id = '72100000-0000-4000-8000-000000000000'
               EXCEPT
               SELECT integration_id, (started_at AT TIME ZONE 'UTC')::date, count(*), sum(input_tokens),
                      sum(output_tokens), sum(cost_microcents)
                 FROM aos_cus.cus_llm_usage WHERE tenant_id = '72100000-0000-4000-8000-000000000000' GROUP BY 1, 2)) x),
          0::bigint, 'the daily rollup equals a recompute from the raw rows');

-- The oracle itself is not vacuous: rows fell on both sides of the current periods' starts.
SELECT cmp_ok((SELECT count(*) FROM pg_temp.cases c, pg_temp.oracle_bounds(c.budget_period, c.zone, now()) b
                WHERE b.s IS NOT NULL
                  AND EXISTS (SELECT 1 FROM aos_cus.cus_llm_usage u WHERE u.integration_id = c.id AND u.started_at < b.s)
                  AND EXISTS (SELECT 1 FROM aos_cus.cus_llm_usage u WHERE u.integration_id = c.id AND u.started_at = b.s)),
              '>', 0::bigint, 'some cases have rows before and exactly at the start of their budget period');
SELECT ok((SELECT count(DISTINCT budget_period) FROM pg_temp.cases) >= 3, 'the cases cover at least three period kinds');
SELECT ok((SELECT sum(spent_microcents) FROM pg_temp.cases c,
                  aos_cus.current_usage('72100000-0000-4000-8000-000000000000', c.id)) > 0, 'the cases carry spend');

DELETE FROM aos_cus.cus_usage_daily WHERE tenant_id = '72100000-0000-4000-8000-000000000000';
DELETE FROM aos_cus.cus_llm_usage WHERE tenant_id = '72100000-0000-4000-8000-000000000000';
DELETE FROM aos_cus.cus_integrations WHERE tenant_id = '72100000-0000-4000-8000-000000000000';
SELECT * FROM finish();
