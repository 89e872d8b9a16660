-- estimate_call(): input tokens of a messages array or a string, worst-case output, estimated and worst-case
-- cost (exact, as cost_microcents), the context window check, time as an input, and bad input for each argument.
\set cookbook `cat test/fixtures/estimate/openai_cookbook_messages.json`
BEGIN;
SELECT plan(36);

SELECT aos_cus.set_price('custom', 'est-model', 1000000, 3000000, reasoning_price => 5000000, context_window => 100,
    effective_from => '2001-01-01+00');
SELECT aos_cus.set_price('custom', 'est-model', 2000000, 4000000, effective_from => '2002-01-01+00');
SELECT aos_cus.set_price('custom', 'est-nolimit', 1000000, 1000000, effective_from => '2001-01-01+00');
-- The estimate of a custom model as jsonb (columns by name).
CREATE FUNCTION pg_temp.est(input jsonb, max_output integer, at timestamptz DEFAULT '2001-06-01+00', model text DEFAULT 'est-model')
    RETURNS jsonb LANGUAGE sql AS $$
    SELECT to_jsonb(e) - 'price_provider' - 'canonical_model'
      FROM aos_cus.estimate_call('custom', model, input, max_output, at => at) e
$$;

-- 1. Input tokens: one internal count for a string and for a messages array (the chat overhead included); exact
-- (count_tokens) for the models tiktoken maps, estimate_tokens for any other.
SELECT is((SELECT input_tokens FROM aos_cus.estimate_call('openai', 'gpt-4o', (:'cookbook')::jsonb->'messages', 100)),
    124::bigint, 'the cookbook request: 124, as the API counted');
SELECT is((SELECT input_tokens FROM aos_cus.estimate_call('openai', 'gpt-4o', to_jsonb('Hello, how are you today?'::text), 100)),
    aos_cus.count_tokens('Hello, how are you today?', 'gpt-4o')::bigint, 'a string of an OpenAI model: count_tokens of it');
SELECT is((SELECT input_tokens FROM aos_cus.estimate_call('anthropic', 'claude-sonnet-4', to_jsonb('Hello, how are you today?'::text), 100)),
    aos_cus.estimate_tokens('Hello, how are you today?', 'claude-sonnet-4')::bigint, 'a string of another model: estimate_tokens of it');
SELECT is(aos_cus.call_input_tokens('gpt-4o', '[{"role": "user", "content": [{"type": "text", "text": "Hello there"},
    {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}]}]'),
    3 + 3 + aos_cus.count_tokens('user', 'gpt-4o') + aos_cus.count_tokens('Hello there', 'gpt-4o')::bigint,
    'content parts: text parts counted, image parts not');
SELECT is(aos_cus.call_input_tokens('claude-sonnet-4', '[{"role": "user", "content": "hi", "name": "ann"}]'),
    3 + 3 + aos_cus.estimate_tokens('user', 'claude-sonnet-4') + aos_cus.estimate_tokens('hi', 'claude-sonnet-4')
      + aos_cus.estimate_tokens('ann', 'claude-sonnet-4') + 1::bigint, 'a name costs one token more');

-- 2. Costs are cost_microcents() of the estimate: input alone, and input plus the worst-case output.
SELECT is((SELECT row(estimated_cost_microcents, worst_case_cost_microcents)::text
             FROM aos_cus.estimate_call('openai', 'gpt-4o', (:'cookbook')::jsonb->'messages', 500)),
    row(aos_cus.cost_microcents('openai', 'gpt-4o', 124, 0), aos_cus.cost_microcents('openai', 'gpt-4o', 124, 500))::text,
    'gpt-4o: estimated and worst-case cost');
SELECT is(pg_temp.est('"abcdefgh"', 10),
    '{"input_tokens": 2, "worst_case_output_tokens": 10, "context_window": 100, "exceeds_context_window": false,
      "estimated_cost_microcents": 2, "worst_case_cost_microcents": 52, "reason": null}',
    'worst case prices every output token at the higher reasoning price (2 * 1 + 10 * 5 micro-cents)');
SELECT is(pg_temp.est('"abcdefgh"', 10, '2002-06-01+00')->>'worst_case_cost_microcents', (44::bigint)::text, 'the price in force at "at" (2002: 2 * 2 + 10 * 4)');
SET LOCAL TimeZone = 'America/St_Johns';
SELECT is(pg_temp.est('"abcdefgh"', 10, '2000-06-01+00')->>'reason', ('no price of model est-model in force at 2000-06-01 00:00:00 UTC')::text, 'before the first price: NULL cost and the reason');

-- 3. Context window: input + worst-case output against it; without max_output_tokens the rest of the window.
SELECT is(pg_temp.est('"abcdefgh"', 98)->>'exceeds_context_window', (false)::text, '2 + 98 = 100 fits');
SELECT is(pg_temp.est('"abcdefgh"', 99)->>'exceeds_context_window', (true)::text, '2 + 99 exceeds the window of 100');
SELECT is(pg_temp.est('"abcdefgh"', NULL)->>'worst_case_output_tokens', (98::bigint)::text, 'no max_output_tokens: the rest of the context window');
SELECT is(pg_temp.est('"abcdefgh"', NULL, model => 'est-nolimit'),
    '{"input_tokens": 2, "worst_case_output_tokens": null, "context_window": null, "exceeds_context_window": null,
      "estimated_cost_microcents": 2, "worst_case_cost_microcents": null,
      "reason": "max_output_tokens not given and the model''s output limit and context window are unknown"}',
    'no limit known: NULL worst case and the reason');
SELECT is((SELECT context_window FROM aos_cus.estimate_call('google', 'gemini-2.5-flash-lite', '"x"', 1)), 1000000,
    'a seeded context window (genai-prices)');
SELECT is((SELECT exceeds_context_window FROM aos_cus.estimate_call('openai', 'gpt-4o', to_jsonb(repeat('word ', 130000)), 1)),
    true, 'a prompt larger than gpt-4o''s 128000 tokens exceeds it');

-- 4. New providers are priced; unknown models give NULL costs and a reason, with the token estimate.
SELECT isnt((SELECT worst_case_cost_microcents FROM aos_cus.estimate_call('mistral', 'mistral-large-latest', '"hi"', 100)), NULL,
    'Mistral is priced');
SELECT isnt((SELECT worst_case_cost_microcents FROM aos_cus.estimate_call('azure_openai', 'gpt-4o-mini', '"hi"', 100)), NULL,
    'Azure OpenAI is priced');
SELECT is((SELECT row(input_tokens, worst_case_output_tokens, estimated_cost_microcents, reason)::text
             FROM aos_cus.estimate_call('openai', 'gpt-unknown', '"abcdefgh"', 100)),
    '(2,100,,"no price for model ''gpt-unknown'' of provider openai")', 'unknown model: NULL cost, a clear reason');

-- 5. model_info: the context window and every price row in force now (tiers as rows, dated prices by now()).
SELECT is((SELECT array_agg(row(min_prompt_tokens, input_price, output_price, context_window)::text ORDER BY min_prompt_tokens)
             FROM aos_cus.model_info('google', 'gemini-1.5-pro')),
    '{"(0,125000000,500000000,1000000)","(128000,250000000,1000000000,1000000)"}', 'gemini-1.5-pro: the base and the 128k tier, with the context window');
SELECT is((SELECT effective_from FROM aos_cus.model_info('aws_bedrock', 'global.anthropic.claude-sonnet-5-v1:0')),
    CASE WHEN now() >= '2026-09-01 00:00:00+00' THEN '2026-09-01 00:00:00+00'::timestamptz ELSE '-infinity' END,
    'a dated genai-prices change: the row in force now');
SELECT is((SELECT count(*) FROM aos_cus.model_info('aws_bedrock', 'us.meta.llama3-3-70b-instruct-v1:0')), 1::bigint,
    'a Bedrock Meta model is priced');
SELECT is((SELECT count(*) FROM aos_cus.model_info('mistral', 'nope-9')), 0::bigint, 'model_info of an unknown model: no rows');

-- 6. Bad input: 22023 naming the element, 54000 over the size limit, 22004 for NULL.
SELECT throws_ok($$SELECT aos_cus.estimate_call('openai', 'gpt-4o', NULL, 1)$$, '22004', 'input must not be null', 'NULL input');
SELECT throws_ok($$SELECT aos_cus.estimate_call('openai', NULL, '"x"', 1)$$, '22004', NULL, 'NULL model');
SELECT throws_ok($$SELECT aos_cus.estimate_call('openai', 'gpt-4o', '42', 1)$$, '22023',
    'input must be a string or a non-empty chat messages array', 'a number');
SELECT throws_ok($$SELECT aos_cus.estimate_call('openai', 'gpt-4o', '{"messages": []}', 1)$$, '22023',
    'input must be a string or a non-empty chat messages array', 'an object');
SELECT throws_ok($$SELECT aos_cus.estimate_call('openai', 'gpt-4o', '[]', 1)$$, '22023',
    'input must be a string or a non-empty chat messages array', 'an empty array');
SELECT throws_ok($$SELECT aos_cus.estimate_call('openai', 'gpt-4o', '[{"role": "user", "content": "a"}, "b"]', 1)$$, '22023',
    'input[1] must be a JSON object', 'a message that is not an object');
SELECT throws_ok($$SELECT aos_cus.estimate_call('openai', 'gpt-4o', '[{"content": "a"}]', 1)$$, '22023',
    'input[0].role must be a string', 'a message without a role');
SELECT throws_ok($$SELECT aos_cus.estimate_call('openai', 'gpt-4o', '[{"role": "user", "content": 5}]', 1)$$, '22023',
    'input[0].content must be a string, an array of parts or null', 'content of the wrong type');
SELECT throws_ok($$SELECT aos_cus.estimate_call('openai', 'gpt-4o', '[{"role": "user", "content": ["a"]}]', 1)$$, '22023',
    'input[0].content[0] must be a JSON object', 'a content part that is not an object');
SELECT throws_ok($$SELECT aos_cus.estimate_call('openai', 'gpt-4o', '[{"role": "user", "content": [{"type": "image_url"}, {"type": "text", "text": 1}]}]', 1)$$,
    '22023', 'input[0].content[1].text must be a string', 'a text part whose text is not a string');
SELECT throws_ok($$SELECT aos_cus.estimate_call('openai', 'gpt-4o', '"x"', 0)$$, '22023', 'max_output_tokens must be positive', 'max_output_tokens 0');
SELECT throws_ok($$SELECT aos_cus.estimate_call('nobody', 'gpt-4o', '"x"', 1)$$, '22023', NULL, 'unknown provider');
SELECT throws_ok($$SELECT aos_cus.estimate_call('openai', 'gpt-4o', to_jsonb(repeat('a', 4194303)), 1)$$, '54000',
    'input is 4194305 bytes of JSON, more than the limit of 4194304', 'over 4 MiB of JSON');
SELECT lives_ok($$SELECT aos_cus.estimate_call('openai', 'gpt-4o', to_jsonb(repeat('a', 4194302)), 1)$$, 'exactly 4 MiB of JSON');

SELECT * FROM finish();
ROLLBACK;
