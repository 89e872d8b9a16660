-- Exact cost in micro-cents: a few calls, a long-context edge, a price change and a breakdown
\pset footer off
SELECT provider, model, input, output, cached, reasoning, tier,
       aos_cus.cost_microcents(provider, model, input, output, cached, 0, 0, reasoning, tier) AS cost_microcents,
       (aos_cus.cost_microcents(provider, model, input, output, cached, 0, 0, reasoning, tier) / 1e8)::numeric(20, 8) AS usd
  FROM (VALUES ('openai', 'gpt-4o', 1000, 500, 200, 0, 'standard'),
               ('openai', 'openai/gpt-5', 12000, 3000, 8000, 2000, 'flex'),
               ('anthropic', 'claude-sonnet-4-5', 21, 393, 12000, 0, 'standard'),
               ('aws_bedrock', 'eu.anthropic.claude-sonnet-4-5-20250929-v1:0', 21, 393, 12000, 0, 'standard'),
               ('google', 'gemini-2.5-pro', 200000, 1000, 0, 0, 'standard'),
               ('google', 'gemini-2.5-pro', 200001, 1000, 0, 0, 'standard'),
               ('openai', 'no-such-model', 1, 1, 0, 0, 'standard'))
       AS calls(provider, model, input, output, cached, reasoning, tier);

-- A new price version from 2030 on: calls before keep the old price.
SELECT aos_cus.set_price('openai', 'gpt-4o', 200000000, 800000000, cache_read_price => 100000000,
                         effective_from => '2030-01-01+00') AS new_price_id;
SELECT aos_cus.cost_microcents('openai', 'gpt-4o', 1000, 500, at => '2029-12-31+00') AS cost_2029,
       aos_cus.cost_microcents('openai', 'gpt-4o', 1000, 500, at => '2030-06-01+00') AS cost_2030;

-- Normalize an Anthropic response's usage (5m/1h cache writes) and explain its cost.
SELECT aos_cus.extract_usage('anthropic', '{"type": "message", "model": "claude-sonnet-4-5-20250929",
    "usage": {"input_tokens": 21, "cache_creation_input_tokens": 3500, "cache_read_input_tokens": 12000,
              "cache_creation": {"ephemeral_5m_input_tokens": 1500, "ephemeral_1h_input_tokens": 2000},
              "output_tokens": 393}}') AS buckets;
WITH b AS (SELECT aos_cus.cost_breakdown('anthropic', 'claude-sonnet-4-5', 21, 393, cache_read_tokens => 12000,
                                         cache_write_tokens => 1500, cache_write_1h_tokens => 2000) AS b)
SELECT b->>'model' AS model, b->>'service_tier' AS tier, i->>'bucket' AS bucket, (i->>'tokens')::bigint AS tokens,
       (i->>'unit_price')::bigint AS unit_price_per_1m, (i->>'microcents')::numeric AS microcents,
       (b->>'total_microcents')::bigint AS total_microcents
  FROM b, jsonb_array_elements(b->'items') i
 WHERE (i->>'tokens')::bigint > 0;
SELECT aos_cus.estimate_tokens('Let''s circle back when we have more bandwidth to touch base.', 'gpt-4o') AS estimated_tokens;
