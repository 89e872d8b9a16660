-- Rollups after random ingest (duplicates, bad records, late rows on old days) equal a full GROUP BY
-- recompute, twice in a row, daily, hourly and the daily sums per subject and per tag; rebuild_daily and
-- reprice_usage keep them exact. Runs without an enclosing
-- transaction (rollups fold committed rows only) and removes its rows at the end.
\set ON_ERROR_STOP 1
SELECT plan(23);
-- The rows below are from early 2026: keep their hours whatever today is.
SELECT aos_cus.set_partitioning(hourly_retention => interval '100 years');

INSERT INTO aos_cus.cus_integrations (tenant_id, id, name, provider)
SELECT ('70000000-0000-4000-8000-00000000000' || t)::uuid, ('70000000-0000-4000-8000-0000000000' || t || p)::uuid,
       'tap-' || t || p, (ARRAY['openai', 'anthropic'])[p]
  FROM generate_series(1, 3) t, generate_series(1, 2) p;

-- Mismatching rows between cus_usage_daily and cus_usage_hourly and a recompute from cus_llm_usage (of the tap tenants).
CREATE FUNCTION pg_temp.mismatches_hourly() RETURNS bigint LANGUAGE sql AS $$
    WITH recompute AS (
        SELECT tenant_id, integration_id, date_trunc('hour', started_at, 'UTC') AS hour, provider::text, model,
               count(*) AS requests, count(*) FILTER (WHERE status <> 'success') AS errors,
               sum(input_tokens) AS i, sum(output_tokens) AS o, sum(cache_read_tokens) AS cr,
               coalesce(sum(cost_microcents), 0) AS cost, count(*) FILTER (WHERE cost_microcents IS NULL) AS unpriced,
               coalesce(sum(latency_ms), 0) AS lsum, coalesce(max(latency_ms), 0) AS lmax
          FROM aos_cus.cus_llm_usage WHERE tenant_id::text LIKE '70000000-%' GROUP BY 1, 2, 3, 4, 5),
    hourly AS (
        SELECT tenant_id, integration_id, hour, provider::text, model, requests, errors, input_tokens::numeric,
               output_tokens::numeric, cache_read_tokens::numeric, cost_microcents::numeric, unpriced_requests,
               latency_sum_ms::numeric, latency_max_ms
          FROM aos_cus.cus_usage_hourly WHERE tenant_id::text LIKE '70000000-%')
    SELECT count(*) FROM ((TABLE recompute EXCEPT TABLE hourly) UNION ALL (TABLE hourly EXCEPT TABLE recompute)) x
$$;
CREATE FUNCTION pg_temp.mismatches_daily() RETURNS bigint LANGUAGE sql AS $$
    WITH recompute AS (
        SELECT tenant_id, integration_id, (started_at AT TIME ZONE 'UTC')::date AS day, provider::text, model,
               count(*) AS requests, count(*) FILTER (WHERE status <> 'success') AS errors,
               sum(input_tokens) AS i, sum(output_tokens) AS o, sum(cache_read_tokens) AS cr,
               coalesce(sum(cost_microcents), 0) AS cost, count(*) FILTER (WHERE cost_microcents IS NULL) AS unpriced,
               coalesce(sum(latency_ms), 0) AS lsum, coalesce(max(latency_ms), 0) AS lmax
          FROM aos_cus.cus_llm_usage WHERE tenant_id::text LIKE '70000000-%' GROUP BY 1, 2, 3, 4, 5),
    daily AS (
        SELECT tenant_id, integration_id, day, provider::text, model, requests, errors, input_tokens::numeric,
               output_tokens::numeric, cache_read_tokens::numeric, cost_microcents::numeric, unpriced_requests,
               latency_sum_ms::numeric, latency_max_ms
          FROM aos_cus.cus_usage_daily WHERE tenant_id::text LIKE '70000000-%')
    SELECT count(*) FROM ((TABLE recompute EXCEPT TABLE daily) UNION ALL (TABLE daily EXCEPT TABLE recompute)) x
$$;

-- The same for the daily sums per subject and per tag (string tag values, as check() and ingest read them).
CREATE FUNCTION pg_temp.mismatches_subject() RETURNS bigint LANGUAGE sql AS $$
    WITH recompute AS (
        SELECT tenant_id, subject, (started_at AT TIME ZONE 'UTC')::date AS day, integration_id, count(*) AS requests,
               sum(input_tokens) AS i, sum(output_tokens) AS o, sum(cache_read_tokens) AS cr,
               coalesce(sum(cost_microcents), 0) AS cost, count(*) FILTER (WHERE cost_microcents IS NULL) AS unpriced
          FROM aos_cus.cus_llm_usage WHERE tenant_id::text LIKE '70000000-%' AND subject IS NOT NULL GROUP BY 1, 2, 3, 4),
    sums AS (
        SELECT tenant_id, subject, day, integration_id, requests, input_tokens::numeric, output_tokens::numeric,
               cache_read_tokens::numeric, cost_microcents::numeric, unpriced_requests
          FROM aos_cus.cus_usage_daily_subject WHERE tenant_id::text LIKE '70000000-%')
    SELECT count(*) FROM ((TABLE recompute EXCEPT TABLE sums) UNION ALL (TABLE sums EXCEPT TABLE recompute)) x
$$;
CREATE FUNCTION pg_temp.mismatches_tag() RETURNS bigint LANGUAGE sql AS $$
    WITH recompute AS (
        SELECT tenant_id, kv.key, kv.value #>> '{}', (started_at AT TIME ZONE 'UTC')::date AS day, integration_id,
               count(*) AS requests, sum(input_tokens) AS i, sum(output_tokens) AS o, sum(cache_read_tokens) AS cr,
               coalesce(sum(cost_microcents), 0) AS cost, count(*) FILTER (WHERE cost_microcents IS NULL) AS unpriced
          FROM aos_cus.cus_llm_usage u, jsonb_each(u.tags) kv
         WHERE tenant_id::text LIKE '70000000-%' AND jsonb_typeof(kv.value) = 'string' GROUP BY 1, 2, 3, 4, 5),
    sums AS (
        SELECT tenant_id, tag_key, tag_value, day, integration_id, requests, input_tokens::numeric, output_tokens::numeric,
               cache_read_tokens::numeric, cost_microcents::numeric, unpriced_requests
          FROM aos_cus.cus_usage_daily_tag WHERE tenant_id::text LIKE '70000000-%')
    SELECT count(*) FROM ((TABLE recompute EXCEPT TABLE sums) UNION ALL (TABLE sums EXCEPT TABLE recompute)) x
$$;

CREATE FUNCTION pg_temp.mismatches() RETURNS bigint LANGUAGE sql AS $$
    SELECT pg_temp.mismatches_daily() + pg_temp.mismatches_hourly() + pg_temp.mismatches_subject() + pg_temp.mismatches_tag()
$$;

-- 30 rounds of random batches, each committed; a rollup every 4 rounds; later rounds add late rows.
DO $$
DECLARE
    batch jsonb;
BEGIN
    PERFORM setseed(0.42);
    FOR round IN 1..30 LOOP
        FOR t IN 1..3 LOOP
            SELECT jsonb_agg(jsonb_strip_nulls(jsonb_build_object(
                       'integration_id', '70000000-0000-4000-8000-0000000000' || t || p,
                       'call_id', 'r' || (random() * 4000)::int,
                       'model', CASE p WHEN 1 THEN (ARRAY['gpt-4o', 'gpt-4o-mini', 'o3-mini', 'unpriced-x'])[1 + (random() * 3)::int]
                                       ELSE (ARRAY['claude-sonnet-4-20250514', 'claude-3-5-haiku-20241022'])[1 + (random() * 1)::int] END,
                       'input_tokens', CASE WHEN random() < 0.03 THEN -1 ELSE (random() * 5000)::int END,
                       'output_tokens', (random() * 800)::int,
                       'cache_read_tokens', (random() * 2000)::int,
                       'status', CASE WHEN random() < 0.1 THEN 'error' END,
                       'latency_ms', (random() * 3000)::int,
                       'subject', (ARRAY['u-1', 'u-2', 'u-3', 'u-4'])[1 + (random() * 4)::int],
                       'tags', CASE WHEN random() < 0.8 THEN jsonb_strip_nulls(jsonb_build_object(
                                   'team', (ARRAY['search', 'ads', 'infra'])[1 + (random() * 3)::int],
                                   'env', (ARRAY['prod', 'dev'])[1 + (random() * 2)::int])) END,
                       'started_at', to_char(CASE WHEN round > 15 AND random() < 0.3
                                                  THEN timestamptz '2026-01-01' + random() * interval '20 days'
                                                  ELSE timestamptz '2026-02-01' + random() * interval '10 days' END
                                             AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'))))
              INTO batch
              FROM generate_series(1, 60), (SELECT 1 + (random() * 1)::int AS p) pick;
            PERFORM aos_cus.ingest_usage_batch(('70000000-0000-4000-8000-00000000000' || t)::uuid, batch);
        END LOOP;
        IF round % 4 = 0 THEN
            PERFORM aos_cus.rollup_usage();
        END IF;
        COMMIT;
    END LOOP;
END
$$;

SELECT ok((SELECT count(*) FROM aos_cus.cus_llm_usage WHERE tenant_id::text LIKE '70000000-%') > 3000, 'random ingest landed rows');
SELECT ok((SELECT count(*) FROM aos_cus.cus_ingest_rejects WHERE tenant_id::text LIKE '70000000-%') > 0, 'bad records were rejected and kept');
SELECT ok((SELECT count(*) FROM aos_cus.cus_llm_usage WHERE tenant_id::text LIKE '70000000-%' AND started_at < '2026-02-01') > 0,
          'late rows on old days were ingested after earlier rollups');
SELECT ok((SELECT count(DISTINCT subject) = 4 AND count(*) FILTER (WHERE subject IS NULL) > 0
                   AND count(*) FILTER (WHERE tags ? 'team' AND tags ? 'env') > 0 AND count(*) FILTER (WHERE tags IS NULL) > 0
              FROM aos_cus.cus_llm_usage WHERE tenant_id::text LIKE '70000000-%'),
          'rows carry subjects and tags, or none');
SELECT ok(pg_temp.mismatches() > 0, 'before the final rollup the aggregates lag');
SELECT ok(aos_cus.rollup_usage() > 0, 'rollup folds the new rows');
SELECT is(pg_temp.mismatches(), 0::bigint, 'after rollup the aggregates equal a full GROUP BY recompute');
SELECT is(pg_temp.mismatches_subject(), 0::bigint, 'after rollup the daily sums per subject equal a recompute');
SELECT is(pg_temp.mismatches_tag(), 0::bigint, 'after rollup the daily sums per tag equal a recompute');
SELECT ok((SELECT count(*) FROM aos_cus.cus_usage_hourly WHERE tenant_id::text LIKE '70000000-%')
          > (SELECT count(*) FROM aos_cus.cus_usage_daily WHERE tenant_id::text LIKE '70000000-%'), 'hourly rows are finer than daily ones');
SELECT is((SELECT (count(*), sum(requests))::text FROM aos_cus.hourly_aggregates('70000000-0000-4000-8000-000000000001', NULL,
                                                                            '2026-01-01 00:30+00', '2026-03-01')),
          (SELECT (count(*), sum(requests))::text FROM aos_cus.cus_usage_hourly WHERE tenant_id = '70000000-0000-4000-8000-000000000001'
              AND hour >= '2026-01-01'), 'hourly_aggregates() reads the hours overlapping the range');
SELECT throws_ok($$SELECT * FROM aos_cus.hourly_aggregates('70000000-0000-4000-8000-000000000001', NULL, '2026-03-01', '2026-01-01')$$,
    '22023', 'from_ts 2026-03-01 00:00:00+00 is after to_ts 2026-01-01 00:00:00+00', 'hourly_aggregates() refuses a reversed range');
SET aos_cus.tenant_id = '70000000-0000-4000-8000-000000000002';
SELECT throws_ok($$SELECT * FROM aos_cus.hourly_aggregates('70000000-0000-4000-8000-000000000001')$$, '42501', NULL,
    'hourly_aggregates() of another tenant is refused');
RESET aos_cus.tenant_id;
SELECT is(aos_cus.rollup_usage(), 0::bigint, 'a second rollup folds nothing');
SELECT is(pg_temp.mismatches(), 0::bigint, 'and the aggregates still equal the recompute');

UPDATE aos_cus.cus_usage_daily SET cost_microcents = 0, requests = requests + 5
 WHERE tenant_id::text LIKE '70000000-%' AND day BETWEEN '2026-01-03' AND '2026-02-03';
UPDATE aos_cus.cus_usage_hourly SET cost_microcents = 0, requests = requests + 5
 WHERE tenant_id::text LIKE '70000000-%' AND hour BETWEEN '2026-01-03' AND '2026-02-03';
UPDATE aos_cus.cus_usage_daily_subject SET cost_microcents = 0, requests = requests + 5
 WHERE tenant_id::text LIKE '70000000-%' AND day BETWEEN '2026-01-03' AND '2026-02-03';
UPDATE aos_cus.cus_usage_daily_tag SET cost_microcents = 0, requests = requests + 5
 WHERE tenant_id::text LIKE '70000000-%' AND day BETWEEN '2026-01-03' AND '2026-02-03';
SELECT ok(aos_cus.rebuild_daily('2026-01-03', '2026-02-03') > 0, 'rebuild_daily recounts a damaged range');
SELECT is(pg_temp.mismatches(), 0::bigint, 'after rebuild_daily the aggregates equal the recompute');
SELECT is(pg_temp.mismatches_subject() + pg_temp.mismatches_tag(), 0::bigint,
          'after rebuild_daily the daily sums per subject and per tag equal the recompute');

SELECT ok(aos_cus.set_price('openai', 'unpriced-x', 1000000, 2000000, effective_from => '2025-12-01') > 0,
          'a price for the unpriced model arrives later');
SELECT ok(aos_cus.reprice_usage('2025-12-01', '2026-03-01') > 0, 'reprice_usage prices the unpriced rows');
SELECT is(pg_temp.mismatches(), 0::bigint, 'after reprice the aggregates follow the new costs');
SELECT is(pg_temp.mismatches_subject() + pg_temp.mismatches_tag(), 0::bigint,
          'after reprice the daily sums per subject and per tag follow the new costs');
SELECT ok((SELECT count(*) FROM aos_cus.cus_usage_daily_tag WHERE tenant_id::text LIKE '70000000-%' AND unpriced_requests > 0) = 0
          AND (SELECT count(*) FROM aos_cus.cus_llm_usage WHERE tenant_id::text LIKE '70000000-%' AND model = 'unpriced-x' AND tags IS NOT NULL) > 0,
          'the repriced rows had tags, and no tag sum counts them unpriced any more');

SELECT * FROM finish();

DELETE FROM aos_cus.cus_model_prices WHERE model = 'unpriced-x';
DELETE FROM aos_cus.cus_ingest_rejects WHERE tenant_id::text LIKE '70000000-%';
DELETE FROM aos_cus.cus_usage_daily WHERE tenant_id::text LIKE '70000000-%';
DELETE FROM aos_cus.cus_usage_hourly WHERE tenant_id::text LIKE '70000000-%';
DELETE FROM aos_cus.cus_usage_daily_subject WHERE tenant_id::text LIKE '70000000-%';
DELETE FROM aos_cus.cus_usage_daily_tag WHERE tenant_id::text LIKE '70000000-%';
DELETE FROM aos_cus.cus_usage_settings;
DELETE FROM aos_cus.cus_llm_usage WHERE tenant_id::text LIKE '70000000-%';
DELETE FROM aos_cus.cus_integrations WHERE tenant_id::text LIKE '70000000-%';
