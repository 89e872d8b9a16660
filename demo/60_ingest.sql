-- Usage ingest: 40,000 synthetic LLM calls over 7 days for two tenants (duplicates and bad records included), rollup, summary
\pset footer off
-- A second tenant with its own integration, to show tenants side by side.
INSERT INTO aos_cus.cus_integrations (tenant_id, id, name, provider, status)
VALUES ('d0d0d0d0-0000-4000-8000-000000000002', 'd0d0d0d0-0000-4000-8000-0000000000b1', 'acme-openai', 'openai', 'enabled');

-- 40 batches of 1,000 records, each committed, with progress. About 2% of the records repeat a call_id
-- already sent (a client retrying), about 1% are malformed (negative tokens, unknown status, no model).
DO $$
DECLARE
    batch jsonb;
    r record;
    tenants uuid[] := ARRAY['d0d0d0d0-0000-4000-8000-000000000001', 'd0d0d0d0-0000-4000-8000-000000000002'];
    t uuid;
BEGIN
    PERFORM setseed(0.6);
    FOR b IN 1..40 LOOP
        t := tenants[1 + (b % 4 = 0)::int];
        SELECT jsonb_agg(CASE
                   WHEN random() < 0.01 THEN rec || (ARRAY['{"input_tokens": -5}', '{"status": "exploded"}', '{"model": null}'])[1 + (random() * 2)::int]::jsonb
                   ELSE rec END)
          INTO batch
          FROM (SELECT jsonb_strip_nulls(jsonb_build_object(
                       'integration_id', integration,
                       'call_id', CASE WHEN random() < 0.02 AND b > 1 THEN 'call-' || t || '-' || (b - 1) || '-' || (random() * 999)::int
                                       ELSE 'call-' || t || '-' || b || '-' || g END,
                       'model', model,
                       'input_tokens', CASE WHEN provider = 'openai' THEN (200 + 6000 * random() ^ 3)::int END,
                       'output_tokens', CASE WHEN provider = 'openai' THEN (20 + 1500 * random() ^ 2)::int END,
                       'usage', CASE WHEN provider = 'anthropic' THEN jsonb_build_object(
                                    'input_tokens', (50 + 3000 * random() ^ 3)::int,
                                    'cache_read_input_tokens', (8000 * random() ^ 2)::int,
                                    'cache_creation_input_tokens', (500 * random() ^ 4)::int,
                                    'output_tokens', (20 + 1200 * random() ^ 2)::int) END,
                       'latency_ms', (300 + 4000 * random() ^ 2)::int,
                       'status', CASE WHEN random() < 0.03 THEN 'error' END,
                       'error_code', CASE WHEN random() < 0.03 THEN 'rate_limit_exceeded' END,
                       'started_at', to_char((now() - random() * interval '7 days') AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
                       'metadata', jsonb_build_object('feature', (ARRAY['chat', 'search', 'summarize', 'agent'])[1 + (random() * 3)::int]))) AS rec
                  FROM generate_series(1, 1000) g,
                       LATERAL (SELECT CASE WHEN t = tenants[2] THEN 1 ELSE 1 + (random() < 0.35)::int END AS pick, g AS gg) p,
                       LATERAL (SELECT (ARRAY['d0d0d0d0-0000-4000-8000-0000000000a1', 'd0d0d0d0-0000-4000-8000-0000000000a2'])[p.pick] AS a1,
                                       (ARRAY['openai', 'anthropic'])[p.pick] AS provider) i,
                       LATERAL (SELECT CASE WHEN t = tenants[2] THEN 'd0d0d0d0-0000-4000-8000-0000000000b1' ELSE i.a1 END AS integration,
                                       CASE i.provider
                                           WHEN 'openai' THEN (ARRAY['gpt-4o', 'gpt-4o-mini', 'gpt-4o-mini', 'o3-mini', 'gpt-4.1'])[1 + (random() * 4)::int]
                                           ELSE (ARRAY['claude-sonnet-4-20250514', 'claude-3-5-haiku-20241022'])[1 + (random() * 1)::int] END AS model) m) recs;
        SELECT count(*) FILTER (WHERE status = 'inserted') AS inserted, count(*) FILTER (WHERE status = 'duplicate') AS duplicate,
               count(*) FILTER (WHERE status = 'rejected') AS rejected
          INTO r FROM aos_cus.ingest_usage_batch(t, batch);
        IF b % 5 = 0 THEN
            RAISE NOTICE 'batch %/40 (tenant ...%): % inserted, % duplicate, % rejected', b, right(t::text, 4), r.inserted, r.duplicate, r.rejected;
        END IF;
        COMMIT;
    END LOOP;
END
$$;

SELECT count(*) AS usage_rows, count(DISTINCT tenant_id) AS tenants, count(*) FILTER (WHERE cost_microcents IS NULL) AS unpriced
  FROM aos_cus.cus_llm_usage;
SELECT reason, count(*) AS rejected FROM aos_cus.cus_ingest_rejects GROUP BY reason ORDER BY 2 DESC;

-- Fold everything into the daily aggregates; a second rollup has nothing left to do.
SELECT aos_cus.rollup_usage() AS rows_rolled_up;
SELECT aos_cus.rollup_usage() AS rows_rolled_up_again;

-- What the demo tenant spent, per integration and model, over the last 8 days.
SET aos_cus.tenant_id = 'd0d0d0d0-0000-4000-8000-000000000001';
SELECT i.name AS integration, s.model, s.requests, s.errors, s.input_tokens + s.cache_read_tokens + s.cache_write_tokens AS prompt_tokens,
       s.output_tokens, round(s.cost_usd, 2) AS cost_usd, s.avg_latency_ms
  FROM aos_cus.usage_summary(aos_cus.current_tenant(), NULL, now() - interval '8 days', now()) s
  JOIN aos_cus.cus_integrations i ON i.tenant_id = aos_cus.current_tenant() AND i.id = s.integration_id
 ORDER BY s.cost_microcents DESC;
SELECT day, sum(requests) AS requests, round(sum(cost_microcents) / 1e8, 2) AS cost_usd
  FROM aos_cus.daily_aggregates(aos_cus.current_tenant(), NULL, current_date - 8, current_date)
 GROUP BY day ORDER BY day;
