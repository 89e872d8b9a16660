-- Usage ingest: statuses, idempotency, every bad field, batches, rejects, the pricing trigger, reads, rollups.
SET aos_cus.tenant_id = 'aaaaaaaa-0000-4000-8000-000000000001';
INSERT INTO aos_cus.cus_integrations (tenant_id, id, name, provider) VALUES
    ('aaaaaaaa-0000-4000-8000-000000000001', 'aaaaaaaa-0000-4000-8000-0000000000a1', 'oa', 'openai'),
    ('aaaaaaaa-0000-4000-8000-000000000001', 'aaaaaaaa-0000-4000-8000-0000000000a2', 'an', 'anthropic'),
    ('aaaaaaaa-0000-4000-8000-000000000001', 'aaaaaaaa-0000-4000-8000-0000000000a3', 'gw', 'custom');
RESET aos_cus.tenant_id;
INSERT INTO aos_cus.cus_integrations (tenant_id, id, name, provider)
VALUES ('bbbbbbbb-0000-4000-8000-000000000002', 'bbbbbbbb-0000-4000-8000-0000000000b1', 'other', 'openai');
SET aos_cus.tenant_id = 'aaaaaaaa-0000-4000-8000-000000000001';

-- A valid record, with fields added or replaced by a patch.
CREATE FUNCTION pg_temp.rec(patch jsonb DEFAULT '{}') RETURNS jsonb LANGUAGE sql AS $$
    SELECT '{"integration_id": "aaaaaaaa-0000-4000-8000-0000000000a1", "call_id": "ok", "model": "gpt-4o",
             "input_tokens": 1000, "output_tokens": 200, "started_at": "2026-03-01T10:00:00Z"}'::jsonb || patch
$$;
-- ingest_usage() outcome as text: the result, or SQLSTATE and message.
CREATE FUNCTION pg_temp.try(record jsonb, tenant uuid DEFAULT 'aaaaaaaa-0000-4000-8000-000000000001') RETURNS text
LANGUAGE plpgsql AS $$
DECLARE r aos_cus.ingest_result;
BEGIN
    r := aos_cus.ingest_usage(tenant, record);
    RETURN r::text;
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END $$;

-- Inserted once, then duplicate with the original id and cost; cost from the price at started_at.
SELECT * FROM aos_cus.ingest_usage('aaaaaaaa-0000-4000-8000-000000000001', pg_temp.rec('{"call_id": "c1"}'));
SELECT * FROM aos_cus.ingest_usage('aaaaaaaa-0000-4000-8000-000000000001', pg_temp.rec('{"call_id": "c1", "input_tokens": 5}'));
SELECT call_id, provider, model, input_tokens, cost_microcents, price_id IS NOT NULL AS priced, metadata
  FROM aos_cus.cus_llm_usage ORDER BY id;
-- A raw provider usage block is normalized (Anthropic: cache reads are separate from input).
SELECT * FROM aos_cus.ingest_usage('aaaaaaaa-0000-4000-8000-000000000001',
    '{"integration_id": "aaaaaaaa-0000-4000-8000-0000000000a2", "call_id": "u1", "model": "claude-sonnet-4-20250514",
      "usage": {"input_tokens": 100, "output_tokens": 20, "cache_read_input_tokens": 1000},
      "started_at": "2026-03-01T11:00:00+01:00", "latency_ms": 812, "status": "success",
      "service_tier": "standard", "metadata": {"route": "/chat"}, "error_code": null}');
SELECT call_id, provider, input_tokens, cache_read_tokens, output_tokens, latency_ms, started_at AT TIME ZONE 'UTC' AS started_utc
  FROM aos_cus.cus_llm_usage WHERE call_id = 'u1';
-- A model with no price is stored unpriced (NULL cost); a custom gateway may carry any provider.
SELECT * FROM aos_cus.ingest_usage('aaaaaaaa-0000-4000-8000-000000000001',
    pg_temp.rec('{"call_id": "np", "model": "no-such-model", "integration_id": "aaaaaaaa-0000-4000-8000-0000000000a3", "provider": "openai"}'));
-- Issue 21: never silently: the row keeps why it is unpriced, a duplicate says so again, a batch reports it per record.
SELECT call_id, unpriced_reason FROM aos_cus.cus_llm_usage WHERE call_id = 'np';
SELECT status FROM aos_cus.ingest_usage('aaaaaaaa-0000-4000-8000-000000000001',
    pg_temp.rec('{"call_id": "np", "model": "no-such-model", "integration_id": "aaaaaaaa-0000-4000-8000-0000000000a3", "provider": "openai"}'));
SELECT ord, call_id, status, cost_microcents IS NULL AS unpriced, error
  FROM aos_cus.ingest_usage_batch('aaaaaaaa-0000-4000-8000-000000000001', jsonb_build_array(
    pg_temp.rec('{"call_id": "np", "model": "no-such-model", "integration_id": "aaaaaaaa-0000-4000-8000-0000000000a3", "provider": "openai"}'),
    pg_temp.rec('{"call_id": "np-batch", "model": "gpt4o", "integration_id": "aaaaaaaa-0000-4000-8000-0000000000a3", "provider": "openai"}')));
SELECT call_id, unpriced_reason FROM aos_cus.cus_llm_usage WHERE call_id = 'np-batch';

-- Every field wrong in every way: 22023 (22003 for overflow, 22004 for NULL arguments) naming the field.
SELECT label, pg_temp.try(record) AS outcome FROM (VALUES
    ('record null', NULL::jsonb),
    ('record array', '[]'),
    ('record string', '"x"'),
    ('record number', '5'),
    ('unknown key', pg_temp.rec('{"tokens": 5}')),
    ('integration_id missing', pg_temp.rec() - 'integration_id'),
    ('integration_id null', pg_temp.rec('{"integration_id": null}')),
    ('integration_id number', pg_temp.rec('{"integration_id": 7}')),
    ('integration_id malformed', pg_temp.rec('{"integration_id": "aaaaaaaa-0000-4000-8000"}')),
    ('integration_id unknown', pg_temp.rec('{"integration_id": "aaaaaaaa-0000-4000-8000-0000000000ff"}')),
    ('integration_id other tenant', pg_temp.rec('{"integration_id": "bbbbbbbb-0000-4000-8000-0000000000b1"}')),
    ('call_id missing', pg_temp.rec() - 'call_id'),
    ('call_id empty', pg_temp.rec('{"call_id": ""}')),
    ('call_id number', pg_temp.rec('{"call_id": 12}')),
    ('call_id 256 chars', pg_temp.rec(jsonb_build_object('call_id', repeat('x', 256)))),
    ('provider unknown', pg_temp.rec('{"provider": "openia"}')),
    ('provider number', pg_temp.rec('{"provider": 1}')),
    ('provider mismatch', pg_temp.rec('{"provider": "anthropic"}')),
    ('model missing', pg_temp.rec() - 'model'),
    ('model empty', pg_temp.rec('{"model": ""}')),
    ('model 201 chars', pg_temp.rec(jsonb_build_object('model', repeat('m', 201)))),
    ('model object', pg_temp.rec('{"model": {}}')),
    ('service_tier unknown', pg_temp.rec('{"service_tier": "gold"}')),
    ('service_tier boolean', pg_temp.rec('{"service_tier": true}')),
    ('input_tokens negative', pg_temp.rec('{"input_tokens": -1}')),
    ('input_tokens fraction', pg_temp.rec('{"input_tokens": 1.5}')),
    ('input_tokens string', pg_temp.rec('{"input_tokens": "12"}')),
    ('input_tokens overflow', pg_temp.rec('{"input_tokens": 9223372036854775808}')),
    ('input_tokens huge', pg_temp.rec('{"input_tokens": 1e30}')),
    ('cache_read_tokens boolean', pg_temp.rec('{"cache_read_tokens": true}')),
    ('cache_write_tokens negative', pg_temp.rec('{"cache_write_tokens": -3}')),
    ('cache_write_1h_tokens array', pg_temp.rec('{"cache_write_1h_tokens": [1]}')),
    ('output_audio_tokens fraction', pg_temp.rec('{"output_audio_tokens": 0.5}')),
    ('input_audio_tokens negative', pg_temp.rec('{"input_audio_tokens": -9}')),
    ('reasoning over output', pg_temp.rec('{"reasoning_tokens": 201}')),
    ('cost overflow', pg_temp.rec('{"input_tokens": 9000000000000000000}')),
    ('usage and tokens', pg_temp.rec('{"usage": {"prompt_tokens": 1}}')),
    ('usage array', pg_temp.rec('{"usage": []}') - 'input_tokens' - 'output_tokens'),
    ('usage unknown shape', pg_temp.rec('{"usage": {"foo": 1}}') - 'input_tokens' - 'output_tokens'),
    ('latency_ms negative', pg_temp.rec('{"latency_ms": -5}')),
    ('latency_ms overflow', pg_temp.rec('{"latency_ms": 2147483648}')),
    ('latency_ms string', pg_temp.rec('{"latency_ms": "fast"}')),
    ('status unknown', pg_temp.rec('{"status": "ok"}')),
    ('error_code 201 chars', pg_temp.rec(jsonb_build_object('error_code', repeat('e', 201)))),
    ('error_code number', pg_temp.rec('{"error_code": 500}')),
    ('started_at missing', pg_temp.rec() - 'started_at'),
    ('started_at number', pg_temp.rec('{"started_at": 1700000000}')),
    ('started_at garbage', pg_temp.rec('{"started_at": "2026-13-45T99:00:00Z"}')),
    ('started_at word', pg_temp.rec('{"started_at": "now"}')),
    ('started_at infinity', pg_temp.rec('{"started_at": "infinity"}')),
    ('started_at far future', pg_temp.rec('{"started_at": "2999-01-01T00:00:00Z"}')),
    ('started_at before 2000', pg_temp.rec('{"started_at": "1999-12-31T23:59:59Z"}')),
    ('metadata string', pg_temp.rec('{"metadata": "x"}')),
    ('metadata array', pg_temp.rec('{"metadata": [1, 2]}')),
    ('metadata over 16 kB', pg_temp.rec(jsonb_build_object('metadata', jsonb_build_object('blob', repeat('z', 17000)))))
) AS t(label, record);
-- NULL tenant, another tenant, and no tenant for an application role.
SELECT pg_temp.try(pg_temp.rec('{"call_id": "t1"}'), NULL) AS null_tenant;
SELECT pg_temp.try(pg_temp.rec('{"call_id": "t1"}'), 'bbbbbbbb-0000-4000-8000-000000000002') AS other_tenant;
CREATE ROLE aos_cus_regress_ingest IN ROLE aos_cus_app;
RESET aos_cus.tenant_id;
SET ROLE aos_cus_regress_ingest;
SELECT pg_temp.try(pg_temp.rec('{"call_id": "t1"}')) AS app_without_tenant;
SET aos_cus.tenant_id = 'aaaaaaaa-0000-4000-8000-000000000001';
SELECT pg_temp.try(pg_temp.rec('{"call_id": "as-app"}')) AS app_for_its_tenant;
RESET ROLE;
-- Nothing invalid landed, and a failed record is not marked seen: its corrected retry is inserted.
SELECT count(*) AS usage_rows FROM aos_cus.cus_llm_usage;
SELECT pg_temp.try(pg_temp.rec('{"call_id": "retry", "input_tokens": -1}')) AS bad;
SELECT pg_temp.try(pg_temp.rec('{"call_id": "retry"}')) AS corrected;

-- Batches: input order kept; duplicates inside the batch, of earlier rows, and of an earlier batch.
SELECT * FROM aos_cus.ingest_usage_batch('aaaaaaaa-0000-4000-8000-000000000001', jsonb_build_array(
    pg_temp.rec('{"call_id": "b1"}'),
    pg_temp.rec('{"call_id": "c1"}'),
    pg_temp.rec('{"call_id": "b1", "model": "gpt-4o-mini"}'),
    pg_temp.rec('{"call_id": "b2", "model": "gpt-4o-mini"}')));
SELECT * FROM aos_cus.ingest_usage_batch('aaaaaaaa-0000-4000-8000-000000000001', jsonb_build_array(
    pg_temp.rec('{"call_id": "b2"}'), pg_temp.rec('{"call_id": "b3"}')));
SELECT call_id, count(*), min(model) FROM aos_cus.cus_llm_usage WHERE call_id LIKE 'b_' GROUP BY call_id ORDER BY 1;
-- Mixed valid and invalid: every valid record lands, every invalid one is rejected with its reason and kept.
SELECT ord, call_id, status, usage_id IS NOT NULL AS has_id, cost_microcents, error
  FROM aos_cus.ingest_usage_batch('aaaaaaaa-0000-4000-8000-000000000001', jsonb_build_array(
    pg_temp.rec('{"call_id": "m1"}'),
    pg_temp.rec('{"call_id": "m2", "input_tokens": -1}'),
    '"not an object"'::jsonb,
    pg_temp.rec('{"call_id": "m3", "usage": {"foo": 1}}') - 'input_tokens' - 'output_tokens',
    pg_temp.rec('{"call_id": "m4", "input_tokens": 9000000000000000000}'),
    pg_temp.rec('{"call_id": "m2"}'),
    pg_temp.rec('{"call_id": "m5", "integration_id": "bbbbbbbb-0000-4000-8000-0000000000b1"}'),
    pg_temp.rec('{"call_id": "m6", "status": "error", "error_code": "rate_limit", "latency_ms": 30}')));
SELECT ord, call_id, sqlstate, reason, payload_bytes, left(payload, 60) AS payload
  FROM aos_cus.cus_ingest_rejects ORDER BY id;
SELECT call_id FROM aos_cus.cus_llm_usage WHERE call_id LIKE 'm_' ORDER BY 1;
-- A rejected payload is kept up to 64 kB.
SELECT status, left(error, 40) AS error FROM aos_cus.ingest_usage_batch('aaaaaaaa-0000-4000-8000-000000000001',
    jsonb_build_array(pg_temp.rec(jsonb_build_object('call_id', 'big', 'metadata', jsonb_build_object('blob', repeat('z', 70000))))));
SELECT octet_length(payload) AS kept, payload_bytes FROM aos_cus.cus_ingest_rejects WHERE call_id = 'big';
-- Batch shapes: NULL, not an array, empty, over the limit (nothing ingested), at the limit.
SELECT * FROM aos_cus.ingest_usage_batch('aaaaaaaa-0000-4000-8000-000000000001', NULL);
SELECT * FROM aos_cus.ingest_usage_batch('aaaaaaaa-0000-4000-8000-000000000001', '{"call_id": "x"}');
SELECT * FROM aos_cus.ingest_usage_batch('aaaaaaaa-0000-4000-8000-000000000001', '7');
SELECT count(*) AS empty_batch_rows FROM aos_cus.ingest_usage_batch('aaaaaaaa-0000-4000-8000-000000000001', '[]');
SELECT count(*) FROM aos_cus.ingest_usage_batch('aaaaaaaa-0000-4000-8000-000000000001',
    (SELECT jsonb_agg(pg_temp.rec(jsonb_build_object('call_id', 'h' || g))) FROM generate_series(1, 100000) g));
SELECT count(*) FROM aos_cus.ingest_usage_batch('aaaaaaaa-0000-4000-8000-000000000001',
    (SELECT jsonb_agg(pg_temp.rec(jsonb_build_object('call_id', 'h' || g))) FROM generate_series(1, 10001) g));
SELECT status, count(*) FROM aos_cus.ingest_usage_batch('aaaaaaaa-0000-4000-8000-000000000001',
    (SELECT jsonb_agg(pg_temp.rec(jsonb_build_object('call_id', 'k' || (g % 9000)))) FROM generate_series(1, 10000) g))
 GROUP BY status ORDER BY status;
SELECT count(*) AS other_tenant FROM aos_cus.ingest_usage_batch('bbbbbbbb-0000-4000-8000-000000000002', '[]');

-- The trigger prices plain INSERT and COPY; an admin's own cost is kept; an application may not supply one.
INSERT INTO aos_cus.cus_llm_usage (tenant_id, integration_id, call_id, provider, model, started_at, input_tokens, output_tokens)
VALUES ('aaaaaaaa-0000-4000-8000-000000000001', 'aaaaaaaa-0000-4000-8000-0000000000a1', 'plain', 'openai', 'gpt-4o', '2026-03-02', 1000, 200)
RETURNING cost_microcents, price_id IS NOT NULL AS priced;
COPY aos_cus.cus_llm_usage (tenant_id, integration_id, call_id, provider, model, started_at, input_tokens, output_tokens) FROM stdin;
aaaaaaaa-0000-4000-8000-000000000001	aaaaaaaa-0000-4000-8000-0000000000a1	copied	openai	gpt-4o	2026-03-02	1000	200
\.
SELECT call_id, cost_microcents FROM aos_cus.cus_llm_usage WHERE call_id IN ('copied', 'c1') ORDER BY 1;
INSERT INTO aos_cus.cus_llm_usage (tenant_id, integration_id, call_id, provider, model, started_at, input_tokens, cost_microcents)
VALUES ('aaaaaaaa-0000-4000-8000-000000000001', 'aaaaaaaa-0000-4000-8000-0000000000a1', 'admin-cost', 'openai', 'gpt-4o', '2026-03-02', 1000, 1)
RETURNING cost_microcents;
SET ROLE aos_cus_regress_ingest;
INSERT INTO aos_cus.cus_llm_usage (tenant_id, integration_id, call_id, provider, model, started_at, input_tokens, cost_microcents)
VALUES ('aaaaaaaa-0000-4000-8000-000000000001', 'aaaaaaaa-0000-4000-8000-0000000000a1', 'app-cost', 'openai', 'gpt-4o', '2026-03-02', 1000, 1);
INSERT INTO aos_cus.cus_llm_usage (tenant_id, integration_id, call_id, provider, model, started_at, input_tokens)
VALUES ('aaaaaaaa-0000-4000-8000-000000000001', 'aaaaaaaa-0000-4000-8000-0000000000a1', 'app-cost', 'openai', 'gpt-4o', '2026-03-02', 1000);
RESET ROLE;
SELECT cost_microcents FROM aos_cus.cus_llm_usage WHERE call_id = 'app-cost';

-- Rollups: incremental, idempotent, equal to a full GROUP BY recompute, late rows included. They span every
-- tenant: the operator (here the superuser) runs them acting for no tenant.
SELECT aos_cus.rollup_usage();
RESET aos_cus.tenant_id;
CREATE VIEW pg_temp.recompute AS
SELECT tenant_id, integration_id, (started_at AT TIME ZONE 'UTC')::date AS day, provider::text, model,
       count(*) AS requests, count(*) FILTER (WHERE status <> 'success') AS errors,
       sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens, sum(cache_read_tokens) AS cache_read_tokens,
       coalesce(sum(cost_microcents), 0) AS cost, count(*) FILTER (WHERE cost_microcents IS NULL) AS unpriced,
       coalesce(sum(latency_ms), 0) AS latency_sum, coalesce(max(latency_ms), 0) AS latency_max
  FROM aos_cus.cus_llm_usage GROUP BY 1, 2, 3, 4, 5;
CREATE VIEW pg_temp.daily AS
SELECT tenant_id, integration_id, day, provider::text, model, requests, errors, input_tokens::numeric, output_tokens::numeric,
       cache_read_tokens::numeric, cost_microcents::numeric AS cost, unpriced_requests AS unpriced,
       latency_sum_ms::numeric AS latency_sum, latency_max_ms AS latency_max
  FROM aos_cus.cus_usage_daily;
CREATE FUNCTION pg_temp.mismatches() RETURNS bigint LANGUAGE sql AS $$
    SELECT count(*) FROM ((TABLE pg_temp.recompute EXCEPT TABLE pg_temp.daily) UNION ALL (TABLE pg_temp.daily EXCEPT TABLE pg_temp.recompute)) x
$$;
SELECT aos_cus.rollup_usage() AS folded;
SELECT aos_cus.rollup_usage() AS folded_again, pg_temp.mismatches();
SELECT count(*) FROM aos_cus.ingest_usage_batch('aaaaaaaa-0000-4000-8000-000000000001', jsonb_build_array(
    pg_temp.rec('{"call_id": "late-1", "started_at": "2026-01-05T23:59:59Z"}'),
    pg_temp.rec('{"call_id": "late-2", "started_at": "2026-03-01T00:00:00Z", "latency_ms": 99999}')));
SELECT pg_temp.mismatches() AS before_rollup;
SELECT aos_cus.rollup_usage() AS folded, pg_temp.mismatches();
-- rebuild_daily recomputes a range exactly, and rollups stay exact after it.
UPDATE aos_cus.cus_usage_daily SET requests = requests + 100 WHERE day = '2026-03-01';
SELECT aos_cus.rebuild_daily('2026-03-01', '2026-03-01') AS rebuilt, pg_temp.mismatches();
SELECT aos_cus.rebuild_daily('2026-03-02', NULL);
SELECT aos_cus.rebuild_daily('2026-03-02', '2026-03-01');
-- reprice_usage: a price added later prices the unpriced rows, and the aggregates follow.
SELECT aos_cus.set_price('custom', 'no-such-model', 100000000, 200000000, effective_from => '2026-01-01') > 0 AS price_set;
SELECT aos_cus.set_price('openai', 'no-such-model', 100000000, 200000000, effective_from => '2026-01-01') > 0 AS price_set;
SELECT aos_cus.reprice_usage('2026-01-01', '2026-12-31') AS repriced;
SELECT call_id, cost_microcents, unpriced_reason FROM aos_cus.cus_llm_usage WHERE call_id = 'np';
SELECT pg_temp.mismatches() AS after_reprice;
SELECT aos_cus.reprice_usage('2026-01-01', '2026-12-31') AS repriced_again;
SELECT aos_cus.reprice_usage(NULL, now());
SELECT aos_cus.rollup_usage() AS folded, pg_temp.mismatches();
SET aos_cus.tenant_id = 'aaaaaaaa-0000-4000-8000-000000000001';

-- Reads: summary (exact, including rows not rolled up yet), keyset history, daily aggregates.
SELECT pg_temp.try(pg_temp.rec('{"call_id": "fresh", "started_at": "2026-03-01T12:00:00Z"}')) IS NOT NULL AS ingested;
SELECT provider, model, requests, errors, unpriced_requests, input_tokens, cost_microcents, cost_usd, max_latency_ms
  FROM aos_cus.usage_summary('aaaaaaaa-0000-4000-8000-000000000001', NULL, '2026-03-01T00:00:00Z', '2026-03-03T00:00:00Z');
SELECT sum(requests) AS partial_day_requests
  FROM aos_cus.usage_summary('aaaaaaaa-0000-4000-8000-000000000001', NULL, '2026-03-01T10:30:00Z', '2026-03-01T12:00:01Z');
SELECT (SELECT sum(requests) FROM aos_cus.usage_summary('aaaaaaaa-0000-4000-8000-000000000001', NULL, '2026-01-01', '2026-12-31'))
     = (SELECT count(*) FROM aos_cus.cus_llm_usage WHERE tenant_id = 'aaaaaaaa-0000-4000-8000-000000000001') AS summary_is_exact;
SELECT call_id FROM aos_cus.usage_history('aaaaaaaa-0000-4000-8000-000000000001', 'aaaaaaaa-0000-4000-8000-0000000000a2', '2026-01-01', '2026-12-31');
SELECT count(*) AS page1 FROM aos_cus.usage_history('aaaaaaaa-0000-4000-8000-000000000001', NULL, '2026-01-01', '2026-12-31', NULL, 1000);
SELECT count(*) AS page2 FROM aos_cus.usage_history('aaaaaaaa-0000-4000-8000-000000000001', NULL, '2026-01-01', '2026-12-31',
    (SELECT min(id) FROM aos_cus.usage_history('aaaaaaaa-0000-4000-8000-000000000001', NULL, '2026-01-01', '2026-12-31', NULL, 1000)), 1000);
SELECT * FROM aos_cus.usage_history('aaaaaaaa-0000-4000-8000-000000000001', page_size => 0);
SELECT * FROM aos_cus.usage_history('aaaaaaaa-0000-4000-8000-000000000001', page_size => 1001);
SELECT * FROM aos_cus.usage_history('aaaaaaaa-0000-4000-8000-000000000001', from_ts => '2026-03-02', to_ts => '2026-03-01');
SELECT day, model, requests, cost_microcents FROM aos_cus.daily_aggregates('aaaaaaaa-0000-4000-8000-000000000001',
    'aaaaaaaa-0000-4000-8000-0000000000a1', '2026-01-01', '2026-01-31');
SELECT * FROM aos_cus.daily_aggregates('aaaaaaaa-0000-4000-8000-000000000001', NULL, '2026-02-01', '2026-01-01');
SELECT * FROM aos_cus.usage_summary('bbbbbbbb-0000-4000-8000-000000000002');
SELECT * FROM aos_cus.usage_summary(NULL);

-- Scheduling needs pg_cron in this database (and, like the counters, a session acting for no tenant).
SELECT aos_cus.schedule_rollup();
RESET aos_cus.tenant_id;
SELECT aos_cus.schedule_rollup();
SELECT aos_cus.schedule_rollup(NULL);
-- Counters.
SELECT name, value > 0 AS counted FROM aos_cus.stat_counters() WHERE name LIKE 'ingest_%' ORDER BY name;
DROP ROLE aos_cus_regress_ingest;
