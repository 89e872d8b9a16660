-- Bounds (security review, finding 8): token counts above 10^12 are refused with 22003 naming the field (a reject
-- inside batches), extract_usage() never wraps, and sums over calls saturate, so one tenant's rows cannot make
-- rollup_usage(), check() or usage_summary() fail for anyone. Runs without an enclosing transaction (rollups fold
-- committed rows) and removes its rows at the end.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
SELECT plan(20);

INSERT INTO aos_cus.cus_integrations (tenant_id, id, name, provider, status, budget_microcents, budget_period)
VALUES ('61000000-0000-4000-8000-00000000000a', '61000000-0000-4000-8000-0000000000a1', 'big', 'openai', 'enabled',
        1000000, 'total'),
       ('61000000-0000-4000-8000-00000000000b', '61000000-0000-4000-8000-0000000000b1', 'small', 'openai', 'enabled',
        NULL, 'total');

-- The attack as written: 2^63-1 tokens through the API and straight into the table.
SELECT throws_ok($$SELECT aos_cus.ingest_usage('61000000-0000-4000-8000-00000000000a',
    '{"integration_id": "61000000-0000-4000-8000-0000000000a1", "call_id": "huge", "provider": "openai",
      "model": "gpt-4o", "input_tokens": 9223372036854775807, "started_at": "2026-06-01T00:00:00Z"}')$$,
    '22003', 'input_tokens is out of range: 9223372036854775807 (at most 1000000000000)',
    'ingest_usage: a count above 10^12 is 22003 naming the field');
SELECT is((SELECT array_agg(status::text ORDER BY ord) FROM aos_cus.ingest_usage_batch('61000000-0000-4000-8000-00000000000a',
    '[{"integration_id": "61000000-0000-4000-8000-0000000000a1", "call_id": "b-huge", "provider": "openai", "model": "gpt-4o",
       "output_tokens": 1000000000001, "started_at": "2026-06-01T00:00:00Z"},
      {"integration_id": "61000000-0000-4000-8000-0000000000a1", "call_id": "b-ok", "provider": "openai", "model": "gpt-4o",
       "output_tokens": 1000000000000, "started_at": "2026-06-01T00:00:00Z"}]')),
    ARRAY['rejected', 'inserted'], 'ingest_usage_batch: the record over the bound is a reject, the one at the bound is kept');
SELECT is((SELECT reason FROM aos_cus.cus_ingest_rejects WHERE tenant_id = '61000000-0000-4000-8000-00000000000a' AND call_id = 'b-huge'),
    'output_tokens is out of range: 1000000000001 (at most 1000000000000)', 'the reject names the field and the bound');
SELECT throws_ok($$INSERT INTO aos_cus.cus_llm_usage (tenant_id, integration_id, call_id, provider, model, started_at, reasoning_tokens, output_tokens)
    VALUES ('61000000-0000-4000-8000-00000000000a', '61000000-0000-4000-8000-0000000000a1', 'direct', 'openai', 'unpriced-model', now(),
            9223372036854775807, 9223372036854775807)$$,
    '23514', NULL, 'a direct insert above the bound violates cus_llm_usage_token_counts_bounded');

-- extract_usage: reasoning and audio counts of 2^63-1 no longer wrap into negative output tokens.
SELECT throws_ok($$SELECT aos_cus.extract_usage('openai', '{"usage": {"prompt_tokens": 1, "completion_tokens": 9223372036854775807,
    "completion_tokens_details": {"reasoning_tokens": 9223372036854775807, "audio_tokens": 9223372036854775807}}}')$$,
    '22003', 'response usage.completion_tokens is out of range: 9223372036854775807 (at most 1000000000000)',
    'extract_usage openai: a count beyond the bound is 22003, not a wrapped negative');
SELECT throws_ok($$SELECT aos_cus.extract_usage('google', '{"usageMetadata": {"promptTokenCount": 1000000000000,
    "promptTokensDetails": [{"modality": "AUDIO", "tokenCount": 1000000000000}, {"modality": "AUDIO", "tokenCount": 1}]}}')$$,
    '22003', 'response usageMetadata.promptTokensDetails AUDIO tokenCount sum is out of range (at most 1000000000000)',
    'extract_usage google: an audio sum beyond the bound is 22003, not dropped');
SELECT is(aos_cus.extract_usage('openai', '{"usage": {"prompt_tokens": 1000000000000, "completion_tokens": 1000000000000,
    "completion_tokens_details": {"reasoning_tokens": 1000000000000}}}') ->> 'output_tokens', '1000000000000',
    'extract_usage at the bound keeps exact counts');

-- Sums saturate: eleven calls of 9 * 10^17 micro-cents in one day pass 2^63 - 1.
INSERT INTO aos_cus.cus_llm_usage (tenant_id, integration_id, call_id, provider, model, started_at, input_tokens,
                                   output_tokens, cost_microcents)
SELECT '61000000-0000-4000-8000-00000000000a', '61000000-0000-4000-8000-0000000000a1', 'max-' || g, 'openai', 'gpt-4o',
       '2026-06-01T12:00:00Z', 1000000000000, 1000000000000, 900000000000000000
  FROM generate_series(1, 11) g;
INSERT INTO aos_cus.cus_llm_usage (tenant_id, integration_id, call_id, provider, model, started_at, input_tokens, cost_microcents)
VALUES ('61000000-0000-4000-8000-00000000000b', '61000000-0000-4000-8000-0000000000b1', 'b-1', 'openai', 'gpt-4o',
        '2026-06-01T12:00:00Z', 100, 350000);
SELECT lives_ok($$SELECT aos_cus.rollup_usage()$$, 'rollup_usage() succeeds with sums past 2^63 - 1');
SELECT is((SELECT cost_microcents::bigint FROM aos_cus.cus_usage_daily WHERE tenant_id = '61000000-0000-4000-8000-00000000000a'
             AND model = 'gpt-4o' AND day = '2026-06-01'), 9223372036854775807, 'the daily cost saturates at 2^63 - 1');
SELECT is((SELECT input_tokens::bigint FROM aos_cus.cus_usage_daily WHERE tenant_id = '61000000-0000-4000-8000-00000000000a'
             AND day = '2026-06-01'), 11000000000000, 'token sums below the limit stay exact');
SELECT is((SELECT (cost_microcents, input_tokens)::text FROM aos_cus.cus_usage_daily
            WHERE tenant_id = '61000000-0000-4000-8000-00000000000b' AND day = '2026-06-01'), '(350000,100)',
          'the other tenant''s rows are rolled up exactly');
-- A second fold into the saturated row saturates too.
INSERT INTO aos_cus.cus_llm_usage (tenant_id, integration_id, call_id, provider, model, started_at, cost_microcents)
VALUES ('61000000-0000-4000-8000-00000000000a', '61000000-0000-4000-8000-0000000000a1', 'max-12', 'openai', 'gpt-4o',
        '2026-06-01T13:00:00Z', 900000000000000000);
SELECT lives_ok($$SELECT aos_cus.rollup_usage()$$, 'a later rollup into the saturated row succeeds');
SELECT is((SELECT requests FROM aos_cus.cus_usage_daily WHERE tenant_id = '61000000-0000-4000-8000-00000000000a'
             AND model = 'gpt-4o' AND day = '2026-06-01'), 13::bigint, 'and still counts every request (12 + the batch''s one)');

-- The tenant's own reads and checks keep working.
UPDATE aos_cus.cus_integrations SET warn_at_pct = 81 WHERE id = '61000000-0000-4000-8000-0000000000a1';
SELECT is((SELECT spent_microcents FROM aos_cus.current_usage('61000000-0000-4000-8000-00000000000a',
                                                             '61000000-0000-4000-8000-0000000000a1')),
          9223372036854775807, 'current_usage(): the rebuilt spend saturates');
SELECT is((SELECT reason FROM aos_cus.check('61000000-0000-4000-8000-00000000000a', '61000000-0000-4000-8000-0000000000a1', 1)),
          'budget_exceeded', 'check() decides (blocked) instead of failing');
SELECT is((SELECT cost_microcents FROM aos_cus.usage_summary('61000000-0000-4000-8000-00000000000a', NULL,
                                                            '2026-06-01', '2026-06-02')),
          9223372036854775807, 'usage_summary() saturates instead of failing');
SELECT is(aos_cus_internal.saturate(9223372036854775808::numeric), 9223372036854775807, 'saturate() caps at 2^63 - 1');
SELECT is(aos_cus_internal.saturate(42), 42::bigint, 'saturate() keeps smaller sums');
SELECT is(aos_cus_internal.saturate(-1e30), -9223372036854775808, 'saturate() clamps below too (no bigint out of range)');
SELECT is(aos_cus_internal.saturate(NULL), NULL::bigint, 'saturate(NULL) is NULL');

DELETE FROM aos_cus.cus_usage_daily WHERE tenant_id::text LIKE '61000000-%';
DELETE FROM aos_cus.cus_ingest_rejects WHERE tenant_id::text LIKE '61000000-%';
DELETE FROM aos_cus.cus_enforcement_log WHERE tenant_id::text LIKE '61000000-%';
DELETE FROM aos_cus.cus_llm_usage WHERE tenant_id::text LIKE '61000000-%';
DELETE FROM aos_cus.cus_integrations WHERE tenant_id::text LIKE '61000000-%';
SELECT * FROM finish();
