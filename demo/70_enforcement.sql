-- Enforcement: limits, reservations, and allowed, warned and blocked checks with the reason why
\pset footer off
SET aos_cus.tenant_id = 'd0d0d0d0-0000-4000-8000-000000000001';
-- The ingest step already spent money this month: each budget below is "what is spent so far + headroom",
-- computed in SQL over the same Los Angeles periods the product enforces (limit_period_bounds).
-- openai-prod: $10 more this month in Los Angeles time, 1M more tokens today, 600 requests a minute, enforced.
-- anthropic-prod: $1 more this month, 3 requests a minute, in warn mode (warm-up: would-be blocks are warnings).
WITH spent AS (
    SELECT u.integration_id, coalesce(sum(u.cost_microcents), 0) AS month_spent,
           coalesce(sum(u.input_tokens + u.cache_read_tokens + u.cache_write_tokens + u.cache_write_1h_tokens
                        + u.output_tokens + u.input_audio_tokens + u.output_audio_tokens)
                    FILTER (WHERE u.started_at >= d.period_start), 0) AS day_tokens
      FROM aos_cus.cus_llm_usage u,
           aos_cus.limit_period_bounds('month', 'America/Los_Angeles') m,
           aos_cus.limit_period_bounds('day', 'America/Los_Angeles') d
     WHERE u.tenant_id = aos_cus.current_tenant() AND u.started_at >= m.period_start AND u.started_at < m.period_end
     GROUP BY u.integration_id
), wanted (id, budget_headroom, token_headroom, rpm, mode) AS (
    VALUES ('d0d0d0d0-0000-4000-8000-0000000000a1'::uuid, 1000000000::bigint, 1000000::bigint, 600, 'enforce'),
           ('d0d0d0d0-0000-4000-8000-0000000000a2'::uuid, 100000000::bigint, NULL::bigint, 3, 'warn')
)
UPDATE aos_cus.cus_integrations i
   SET budget_microcents = coalesce(s.month_spent, 0) + w.budget_headroom, budget_period = 'month',
       token_limit = coalesce(s.day_tokens, 0) + w.token_headroom, token_period = 'day',
       rpm = w.rpm, warn_at_pct = 80, enforcement_mode = w.mode, timezone = 'America/Los_Angeles'
  FROM wanted w LEFT JOIN spent s ON s.integration_id = w.id
 WHERE i.id = w.id AND i.tenant_id = aos_cus.current_tenant();
SELECT name, status, round(budget_microcents / 100000000.0, 2) AS budget_usd, budget_period, token_limit, token_period,
       rpm, enforcement_mode AS mode, timezone
  FROM aos_cus.cus_integrations WHERE tenant_id = aos_cus.current_tenant() ORDER BY name;

\echo '== openai-prod: reserve $6 for call demo-1, then ask for more while it is in flight'
CREATE TEMP TABLE demo_checks (step int, integration text, estimate_usd numeric, call_id text, d aos_cus.decision);
INSERT INTO demo_checks
SELECT 1, 'openai-prod', 6, 'demo-1', aos_cus.check(aos_cus.current_tenant(), 'd0d0d0d0-0000-4000-8000-0000000000a1', 600000000, 20000, 'demo-1');
INSERT INTO demo_checks
SELECT 2, 'openai-prod', 2.5, 'demo-2', aos_cus.check(aos_cus.current_tenant(), 'd0d0d0d0-0000-4000-8000-0000000000a1', 250000000, 5000, 'demo-2');
INSERT INTO demo_checks
SELECT 3, 'openai-prod', 3, 'demo-3', aos_cus.check(aos_cus.current_tenant(), 'd0d0d0d0-0000-4000-8000-0000000000a1', 300000000, 5000, 'demo-3');
-- demo-1 comes back: it cost $1.20, not $6. Ingest settles the reservation to the real cost.
INSERT INTO aos_cus.cus_llm_usage (tenant_id, integration_id, call_id, provider, model, started_at,
                                   input_tokens, output_tokens, cost_microcents)
VALUES (aos_cus.current_tenant(), 'd0d0d0d0-0000-4000-8000-0000000000a1', 'demo-1', 'openai', 'gpt-4o', now(),
        12000, 4000, 120000000);
INSERT INTO demo_checks
SELECT 4, 'openai-prod', 3, 'demo-3', aos_cus.check(aos_cus.current_tenant(), 'd0d0d0d0-0000-4000-8000-0000000000a1', 300000000, 5000, 'demo-3');
INSERT INTO demo_checks
SELECT 5, 'openai-prod', 0.01, 'demo-4', aos_cus.check(aos_cus.current_tenant(), 'd0d0d0d0-0000-4000-8000-0000000000a1', 1000000, 2000000, 'demo-4');

\echo '== anthropic-prod (warn mode, rpm 3): would-be blocks come back as warnings; the rate comes before the budget'
INSERT INTO demo_checks
SELECT 5 + g, 'anthropic-prod', 0.10, NULL, aos_cus.check(aos_cus.current_tenant(), 'd0d0d0d0-0000-4000-8000-0000000000a2', 10000000, 100)
  FROM generate_series(1, 4) g;
INSERT INTO demo_checks
SELECT 10, 'anthropic-prod', 2, NULL, aos_cus.check(aos_cus.current_tenant(), 'd0d0d0d0-0000-4000-8000-0000000000a2', 200000000, 100);

\echo '== gemini-lab is not enabled; an unknown id does not exist'
INSERT INTO demo_checks
SELECT 11, 'gemini-lab', 0, NULL, aos_cus.check(aos_cus.current_tenant(), 'd0d0d0d0-0000-4000-8000-0000000000a3');
INSERT INTO demo_checks
SELECT 12, 'unknown', 0, NULL, aos_cus.check(aos_cus.current_tenant(), 'd0d0d0d0-0000-4000-8000-00000000ffff');

SELECT step, integration, estimate_usd, call_id, (d).decision, (d).reason,
       round((d).budget_used_microcents / 100000000.0, 2) AS used_usd,
       round((d).budget_limit_microcents / 100000000.0, 2) AS limit_usd, (d).retry_after_ms,
       CASE (d).reason
           WHEN 'ok' THEN 'within every limit'
           WHEN 'budget_warning' THEN 'admitted; used would reach warn_at_pct of the budget'
           WHEN 'budget_exceeded' THEN 'used + estimate would pass the budget (reservations count as used)'
           WHEN 'token_limit_exceeded' THEN 'estimated tokens would pass today''s token limit'
           WHEN 'rate_limited' THEN 'more than rpm requests in the sliding minute'
           WHEN 'integration_disabled' THEN 'integration is not enabled'
           WHEN 'integration_not_found' THEN 'no such integration for this tenant'
       END || CASE WHEN (d).decision = 'warned' AND (d).reason LIKE '%exceeded' OR (d).reason = 'rate_limited' AND (d).decision = 'warned'
                   THEN ' (warn mode: reported, not blocked)' ELSE '' END AS why
  FROM demo_checks ORDER BY step;

\echo '== where each integration stands (reservations included)'
SELECT i.name, round(l.budget_used_microcents / 100000000.0, 2) AS used_usd,
       round(l.budget_remaining_microcents / 100000000.0, 2) AS remaining_usd,
       l.budget_period_end AS budget_resets_at, l.tokens_used, l.token_limit, l.requests_this_minute, l.rpm
  FROM aos_cus.cus_integrations i, aos_cus.integration_limits(i.tenant_id, i.id) l
 WHERE i.tenant_id = aos_cus.current_tenant() AND i.status = 'enabled' ORDER BY i.name;

\echo '== the enforcement log keeps warned and blocked decisions'
SELECT l.decision, l.reason, coalesce(i.name, 'unknown') AS integration, count(*)
  FROM aos_cus.cus_enforcement_log l
  LEFT JOIN aos_cus.cus_integrations i ON i.tenant_id = l.tenant_id AND i.id = l.integration_id
 GROUP BY 1, 2, 3 ORDER BY 3, 1, 2;
