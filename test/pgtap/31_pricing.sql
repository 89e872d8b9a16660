-- Pricing engine: model resolution, long-context edges, tiers, effective-dated prices, breakdown,
-- model_info, estimate_tokens, extract_usage on real-shaped responses, and bad input for each function.
\set openai_chat `cat test/fixtures/usage/openai_chat_completion.json`
\set openai_responses `cat test/fixtures/usage/openai_responses.json`
\set openai_audio `cat test/fixtures/usage/openai_chat_audio.json`
\set anthropic `cat test/fixtures/usage/anthropic_messages.json`
\set gemini `cat test/fixtures/usage/gemini_generate_content.json`
\set azure `cat test/fixtures/usage/azure_openai_chat.json`
\set bedrock `cat test/fixtures/usage/bedrock_converse.json`
\set cookbook `cat test/fixtures/estimate/openai_cookbook_messages.json`
BEGIN;
SELECT plan(162);

-- Cost of an extract_usage() result at a model's standard price now.
CREATE FUNCTION pg_temp.cost_of(provider text, model text, u jsonb) RETURNS bigint LANGUAGE sql AS $$
    SELECT aos_cus.cost_microcents(provider, model, (u->>'input_tokens')::bigint, (u->>'output_tokens')::bigint,
        (u->>'cache_read_tokens')::bigint, (u->>'cache_write_tokens')::bigint, (u->>'cache_write_1h_tokens')::bigint,
        (u->>'reasoning_tokens')::bigint, 'standard', now(),
        (u->>'input_audio_tokens')::bigint, (u->>'output_audio_tokens')::bigint)
$$;

-- 1. Resolution: exact name first, then aliases, then match patterns; prefixes, Bedrock, Vertex, snapshots.
SELECT is((SELECT canonical_model FROM aos_cus.resolve_model('openai', 'gpt-4o')), 'gpt-4o', 'exact name');
SELECT is((SELECT canonical_model FROM aos_cus.resolve_model('openai', '  OpenAI/GPT-4o ')), 'gpt-4o', 'provider prefix, case and blanks ignored');
SELECT is((SELECT canonical_model FROM aos_cus.resolve_model('openai', 'gpt-4o-2024-05-13')), 'gpt-4o-2024-05-13',
    'a priced dated snapshot resolves to itself, not to its base model');
SELECT isnt(aos_cus.cost_microcents('openai', 'gpt-4o-2024-05-13', 1000000, 0), aos_cus.cost_microcents('openai', 'gpt-4o', 1000000, 0),
    'gpt-4o-2024-05-13 keeps its own (higher) price');
SELECT is((SELECT canonical_model FROM aos_cus.resolve_model('openai', 'gpt-4o-2099-01-01')), 'gpt-4o',
    'an unpriced dated snapshot falls back to its base model');
SELECT is((SELECT canonical_model FROM aos_cus.resolve_model('openai', 'gpt-4.1-mini-20990101')), 'gpt-4.1-mini',
    'compact snapshot dates fall back too');
SELECT is((SELECT row(price_provider, canonical_model)::text FROM aos_cus.resolve_model('aws_bedrock', 'anthropic.claude-sonnet-4-5-20250929-v1:0')),
    '(aws_bedrock,regional.anthropic.claude-sonnet-4-5-20250929-v1:0)', 'Bedrock id: Bedrock''s own (regional) price');
SELECT is((SELECT canonical_model FROM aos_cus.resolve_model('aws_bedrock', 'eu.anthropic.claude-3-5-haiku-20241022-v1:0')),
    'regional.anthropic.claude-3-5-haiku-20241022-v1:0', 'Bedrock id with a region prefix');
SELECT is((SELECT row(price_provider, canonical_model)::text FROM aos_cus.resolve_model('aws_bedrock', 'global.anthropic.claude-sonnet-4-5-20250929-v1:0')),
    '(aws_bedrock,global.anthropic.claude-sonnet-4-5-20250929-v1:0)', 'Bedrock global inference profile');
SELECT is((SELECT row(price_provider, canonical_model)::text FROM aos_cus.resolve_model('aws_bedrock', 'anthropic.claude-opus-1-v1:0')),
    NULL, 'a Bedrock Claude id Bedrock does not price resolves to nothing on Bedrock');
SELECT is((SELECT row(price_provider, canonical_model)::text FROM aos_cus.resolve_model('google', 'claude-sonnet-4-5@20250929')),
    '(google,claude-4-sonnet)', 'Vertex AI Claude id: Vertex AI''s own price');
SELECT is((SELECT row(price_provider, canonical_model)::text FROM aos_cus.resolve_model('google', 'claude-2.1@001')),
    (SELECT row(price_provider, canonical_model)::text FROM aos_cus.resolve_model('anthropic', 'claude-2.1@001')), 'a Claude id Vertex AI does not price falls back to Anthropic''s');
SELECT is((SELECT canonical_model FROM aos_cus.resolve_model('google', 'gemini-2.0-flash-001@001')), 'gemini-2.0-flash-001', 'Vertex version suffix');
SELECT is((SELECT canonical_model FROM aos_cus.resolve_model('google', 'models/gemini-2.5-flash')), 'gemini-2.5-flash', 'Gemini API models/ prefix');
SELECT is((SELECT canonical_model FROM aos_cus.resolve_model('openai', 'ft:gpt-3.5-turbo-0613:acme::8abc')), 'ft:gpt-3.5-turbo-0613', 'fine-tuned model');
SELECT is((SELECT row(price_provider, canonical_model)::text FROM aos_cus.resolve_model('azure_openai', 'azure/gpt-4o')),
    '(openai,gpt-4o)', 'Azure OpenAI falls back to OpenAI prices');
SELECT is(aos_cus.cost_microcents('aws_bedrock', 'us.anthropic.claude-sonnet-4-5-20250929-v1:0', 1000, 1000),
    1980000::bigint, 'a regional Bedrock id costs Bedrock''s regional price ($3.30/$16.50 per 1M)');
SELECT is(aos_cus.cost_microcents('aws_bedrock', 'global.anthropic.claude-sonnet-4-5-20250929-v1:0', 1000, 1000),
    aos_cus.cost_microcents('anthropic', 'claude-sonnet-4-5-20250929', 1000, 1000), 'a global Bedrock id costs what Anthropic charges');
SELECT is((SELECT count(*) FROM aos_cus.resolve_model('openai', 'gpt-unknown')), 0::bigint, 'unknown model: no row');
SELECT is(aos_cus.cost_microcents('openai', 'gpt-unknown', 1, 1), NULL::bigint, 'unknown model: cost is NULL');
SELECT is(aos_cus.cost_microcents('mistral', 'mistral-unknown-9', 1, 1), NULL::bigint, 'unknown Mistral model: cost is NULL');
SELECT is(aos_cus.cost_microcents('anthropic', 'gpt-4o', 1, 1), NULL::bigint, 'a model of another provider is unknown');
SELECT is(aos_cus.cost_breakdown('openai', 'gpt-unknown', 1, 1), NULL::jsonb, 'unknown model: breakdown is NULL');

-- 2. Long-context tiers: a prompt of exactly the threshold is standard; one more token prices the whole request higher.
SELECT is(aos_cus.cost_microcents('google', 'gemini-2.5-pro', 200000, 1000), 26000000::bigint,
    'gemini-2.5-pro, prompt = 200000: $1.25/$10 per 1M');
SELECT is(aos_cus.cost_microcents('google', 'gemini-2.5-pro', 200001, 1000), 51500250::bigint,
    'gemini-2.5-pro, prompt = 200001: $2.50/$15 per 1M for the whole request');
SELECT is(aos_cus.cost_microcents('google', 'gemini-2.5-pro', 100000, 0, 100001), 27500025::bigint,
    'cached input counts towards the prompt size');
SELECT is(aos_cus.cost_microcents('openai', 'gpt-5.4', 271000, 0, 0, 1000), 68000000::bigint,
    'gpt-5.4, input + cache writes = 272000: standard');
SELECT is(aos_cus.cost_microcents('openai', 'gpt-5.4', 272001, 0), 136000500::bigint, 'gpt-5.4, prompt 272001: long context');
SELECT is(aos_cus.cost_microcents('openai', 'gpt-5.4', 272000, 1000, service_tier => 'flex'), 34750000::bigint, 'gpt-5.4 flex at the threshold');
SELECT is(aos_cus.cost_microcents('openai', 'gpt-5.4', 272001, 1000, service_tier => 'flex'), 69125250::bigint, 'gpt-5.4 flex over the threshold');
SELECT is(aos_cus.cost_breakdown('openai', 'gpt-5.4', 272001, 0)->>'min_prompt_tokens', '272000', 'breakdown names the long-context tier');
SELECT is(aos_cus.cost_microcents('openai', 'gpt-5.4', 272001, 0, service_tier => 'priority'), 136000500::bigint,
    'priority has no long-context row: its base price applies (272001 * $5)');

-- 3. Tiers: a tier without its own row is priced at standard, and the breakdown says so.
SELECT is(aos_cus.cost_microcents('openai', 'gpt-4o', 1000, 1000, service_tier => 'batch'),
    aos_cus.cost_microcents('openai', 'gpt-4o', 1000, 1000), 'batch without a batch row: standard price');
SELECT is(aos_cus.cost_breakdown('openai', 'gpt-4o', 1, 1, service_tier => 'batch')->>'service_tier', 'standard', 'breakdown: tier applied');
SELECT is(aos_cus.cost_breakdown('openai', 'gpt-4o', 1, 1, service_tier => 'batch')->>'requested_service_tier', 'batch', 'breakdown: tier requested');
SELECT is(aos_cus.cost_microcents('openai', 'gpt-4o', 1000000, 0, service_tier => 'priority'), 425000000::bigint, 'gpt-4o priority: $4.25 per 1M');
SELECT is(aos_cus.cost_microcents('anthropic', 'claude-opus-4-8', 1000000, 0, service_tier => 'priority'), 1000000000::bigint,
    'Anthropic fast mode is the priority tier');

-- 4. cost_breakdown: items are exact, their sum rounds to the total, one item per bucket.
SELECT is(jsonb_array_length(aos_cus.cost_breakdown('openai', 'gpt-4o', 3, 3)->'items'), 8, 'eight items');
SELECT ok(aos_cus.set_price('custom', 'frac-model', 1500000, 2499999, effective_from => '2000-01-01+00') > 0,
    'a price with fractional micro-cents per token');
SELECT is((SELECT sum((i->>'microcents')::numeric) FROM jsonb_array_elements(aos_cus.cost_breakdown('custom', 'frac-model', 1, 1)->'items') i),
    3.999999::numeric, 'items hold exact fractional micro-cents (1.5 + 2.499999)');
SELECT is((aos_cus.cost_breakdown('custom', 'frac-model', 1, 1)->>'total_microcents')::bigint, 4::bigint, 'the total is rounded once');
SELECT is(aos_cus.cost_microcents('custom', 'frac-model', 1, 0), 2::bigint, 'half a micro-cent rounds up: 1.5 -> 2');
SELECT is(aos_cus.cost_microcents('custom', 'frac-model', 0, 1), 2::bigint, '2.499999 -> 2');
SELECT is((aos_cus.cost_breakdown('openai', 'gpt-4o', 2000, 1000)->>'total_microcents')::bigint,
    aos_cus.cost_microcents('openai', 'gpt-4o', 2000, 1000), 'breakdown total equals cost_microcents');
SELECT is((SELECT i FROM jsonb_array_elements(aos_cus.cost_breakdown('openai', 'o3', 100, 50, reasoning_tokens => 30)->'items') i WHERE i->>'bucket' = 'output'),
    '{"bucket": "output", "tokens": 20, "unit_price": 800000000, "microcents": 16000}'::jsonb, 'output item excludes reasoning');
SELECT is((aos_cus.cost_breakdown('openai', 'gpt-4o', 1, 1)->>'price_id')::bigint,
    (SELECT price_id FROM aos_cus.model_info('openai', 'gpt-4o') WHERE service_tier = 'standard'), 'breakdown names the price row');

-- 5. model_info.
SELECT is((SELECT count(*) FROM aos_cus.model_info('openai', 'gpt-5.4')), 5::bigint, 'gpt-5.4: five tiers in force');
SELECT is((SELECT array_agg(service_tier || ':' || min_prompt_tokens) FROM aos_cus.model_info('openai', 'openai/gpt-5.4')),
    '{standard:0,standard:272000,priority:0,flex:0,flex:272000}', 'tiers in order, through an alias');
SELECT is((SELECT input_price FROM aos_cus.model_info('anthropic', 'claude-sonnet-4-5') WHERE service_tier = 'standard'), 300000000::bigint,
    'model_info prices in micro-cents per 1M');
SELECT is((SELECT count(*) FROM aos_cus.model_info('openai', 'gpt-unknown')), 0::bigint, 'unknown model: no rows');
SELECT throws_ok($$SELECT * FROM aos_cus.model_info('acme', 'gpt-4o')$$, '22023', NULL, 'model_info: unknown provider');
SELECT throws_ok($$SELECT * FROM aos_cus.model_info(NULL, 'gpt-4o')$$, '22004', NULL, 'model_info: NULL provider');

-- 6. set_price: effective-dated versions; history never changes; the new price is used from its date on.
SELECT ok(aos_cus.set_price('openai', 'gpt-4o', 300000000, 1200000000, cache_read_price => 150000000,
    effective_from => '2030-01-01 00:00:00+00') > 0, 'set_price adds a version');
SELECT is(aos_cus.cost_microcents('openai', 'gpt-4o', 1000000, 0, at => '2029-12-31 23:59:59.999999+00'), 250000000::bigint,
    'a call just before the new version keeps the old price');
SELECT is(aos_cus.cost_microcents('openai', 'gpt-4o', 1000000, 0, at => '2030-01-01 00:00:00+00'), 300000000::bigint,
    'a call at the new version''s start uses it');
SELECT is(aos_cus.cost_microcents('openai', 'openai/gpt-4o', 0, 1000000, at => '2031-06-01+00'), 1200000000::bigint,
    'aliases see the new version too');
SELECT is((SELECT count(*) FROM aos_cus.cus_model_prices WHERE model = 'gpt-4o' AND service_tier = 'standard'), 2::bigint,
    'the old version is kept');
SELECT throws_ok($$SELECT aos_cus.set_price('openai', 'gpt-4o', 1, 1, effective_from => '2029-01-01+00')$$, '22023',
    'effective_from must be later than every existing version of this price', 'set_price never rewrites history');
SELECT ok(aos_cus.set_price('azure_openai', 'gpt-4o', 275000000, 1100000000, effective_from => '2020-01-01+00') > 0, 'an Azure-specific price');
SELECT is(aos_cus.cost_microcents('azure_openai', 'gpt-4o', 1000000, 0, at => '2025-01-01+00'), 275000000::bigint,
    'Azure rows win over the OpenAI fallback');
SELECT ok(aos_cus.set_price('custom', 'Acme-LLM', 100, 200, aliases => ARRAY['ACME-Chat'], effective_from => '2020-01-01+00') > 0, 'a custom model with an alias');
SELECT is(aos_cus.cost_microcents('custom', 'acme-chat', 1000000, 1000000), 300::bigint, 'an alias resolves (case-insensitively)');
SELECT ok(aos_cus.set_price('custom', 'acme-llm', 150, 250, effective_from => '2021-01-01+00') > 0, 'a second version');
SELECT is((SELECT aliases FROM aos_cus.cus_model_prices WHERE model = 'acme-llm' ORDER BY effective_from DESC LIMIT 1), '{acme-chat}',
    'aliases are kept from the previous version');
SELECT ok(aos_cus.set_price('custom', 'acme-llm', 400, 400, min_prompt_tokens => 1000, effective_from => '2021-01-01+00') > 0,
    'a long-context tier');
SELECT is(aos_cus.cost_microcents('custom', 'acme-llm', 1001, 0, at => '2021-02-01+00'), 0::bigint, '1001 * 400 / 1e6 rounds to 0');
SELECT is(aos_cus.cost_microcents('custom', 'acme-llm', 2000000, 0, at => '2021-02-01+00'), 800::bigint, 'long-context price applies');
SELECT is(aos_cus.cost_microcents('custom', 'acme-llm', 1000, 0, at => '2020-06-01+00'), 0::bigint, 'small prompt, first version');
SELECT is(aos_cus.cost_microcents('custom', 'acme-llm', 2000000, 0, at => '2020-06-01+00'), 200::bigint,
    'before the long-context tier existed, the base price applies');
SELECT is(aos_cus.cost_microcents('custom', 'acme-llm', 1, 1, at => '2019-01-01+00'), NULL::bigint, 'before the first version: no price');
SELECT throws_ok($$SELECT aos_cus.set_price('openai', 'x', -1, 1)$$, '22023', 'input_price must not be negative', 'negative price');
SELECT throws_ok($$SELECT aos_cus.set_price('openai', 'x', 1, 1, reasoning_price => -5)$$, '22023', 'reasoning_price must not be negative', 'negative optional price');
SELECT throws_ok($$SELECT aos_cus.set_price('openai', 'x', NULL, 1)$$, '22004', NULL, 'NULL price');
SELECT throws_ok($$SELECT aos_cus.set_price('acme', 'x', 1, 1)$$, '22023', 'provider "acme" is not one of openai, anthropic, google, azure_openai, aws_bedrock, mistral, custom', 'unknown provider');
SELECT throws_ok($$SELECT aos_cus.set_price('openai', '', 1, 1)$$, '22023', 'model must be 1 to 200 characters', 'empty model');
SELECT throws_ok($$SELECT aos_cus.set_price('openai', repeat('m', 201), 1, 1)$$, '22023', 'model must be 1 to 200 characters', 'long model');
SELECT throws_ok($$SELECT aos_cus.set_price('openai', 'x', 1, 1, service_tier => 'gold')$$, '22023', NULL, 'unknown tier');
SELECT throws_ok($$SELECT aos_cus.set_price('openai', 'x', 1, 1, min_prompt_tokens => -1)$$, '22023', NULL, 'negative threshold');
SELECT throws_ok($$SELECT aos_cus.set_price('openai', 'x', 1, 1, effective_from => 'infinity')$$, '22023', NULL, 'infinite effective_from');
SELECT throws_ok($$SELECT aos_cus.set_price('openai', 'x', 1, 1, source => 'langfuse: mine')$$, '22023', NULL, 'seed source is reserved');
SELECT throws_ok($$SELECT aos_cus.set_price('openai', 'x', 1, 1, match_pattern => '(')$$, '2201B', NULL, 'invalid match pattern');

-- Parallel query: workers and the leader price rows too (a cache miss there cannot take a new snapshot).
CREATE TABLE public.pricing_parallel AS SELECT g AS i FROM generate_series(1, 20000) g;
SET LOCAL force_parallel_mode = on;
SET LOCAL parallel_setup_cost = 0;
SET LOCAL parallel_tuple_cost = 0;
SET LOCAL min_parallel_table_scan_size = 0;
SELECT is((SELECT sum(aos_cus.cost_microcents('openai', 'gpt-4.1', i, i)) FROM public.pricing_parallel),
    (SELECT sum(i::numeric * 1000) FROM public.pricing_parallel), 'priced in parallel workers: gpt-4.1 $2 + $8 per 1M');
RESET force_parallel_mode;
SELECT is(aos_cus.cost_microcents('openai', 'gpt-4.1', 1000000, 0), 200000000::bigint, 'and again outside parallel mode');

-- Roles: aos_cus_operator sets prices; a tenant's admin, aos_cus_app and aos_cus_reader price calls but cannot change prices.
CREATE ROLE pricing_tap_operator IN ROLE aos_cus_operator;
CREATE ROLE pricing_tap_admin IN ROLE aos_cus_admin;
CREATE ROLE pricing_tap_app IN ROLE aos_cus_app;
SET LOCAL ROLE pricing_tap_operator;
SELECT ok(aos_cus.set_price('custom', 'role-model', 10, 20, effective_from => '2020-01-01+00') > 0, 'aos_cus_operator may set_price');
SET LOCAL ROLE pricing_tap_admin;
SELECT throws_ok($$SELECT aos_cus.set_price('custom', 'role-model', 1, 1)$$, '42501', NULL, 'aos_cus_admin may not set_price');
SELECT throws_ok($$UPDATE aos_cus.cus_model_prices SET input_price = 0$$, '42501', NULL, 'aos_cus_admin may not update prices');
SET LOCAL ROLE pricing_tap_app;
SELECT is(aos_cus.cost_microcents('custom', 'role-model', 1000000, 1000000), 30::bigint, 'aos_cus_app may price calls');
SELECT throws_ok($$SELECT aos_cus.set_price('custom', 'role-model', 1, 1)$$, '42501', NULL, 'aos_cus_app may not set_price');
SELECT throws_ok($$INSERT INTO aos_cus.cus_model_prices (provider, model, input_price, output_price) VALUES ('custom', 'x', 1, 1)$$,
    '42501', NULL, 'aos_cus_app may not insert prices');
RESET ROLE;

-- 7. cost_microcents bad input.
SELECT throws_ok($$SELECT aos_cus.cost_microcents(NULL, 'gpt-4o', 1, 1)$$, '22004', 'provider must not be null', 'NULL provider');
SELECT throws_ok($$SELECT aos_cus.cost_microcents('openai', NULL, 1, 1)$$, '22004', 'model must not be null', 'NULL model');
SELECT throws_ok($$SELECT aos_cus.cost_microcents('openai', 'gpt-4o', NULL, 1)$$, '22004', 'input_tokens must not be null', 'NULL input_tokens');
SELECT throws_ok($$SELECT aos_cus.cost_microcents('openai', 'gpt-4o', 1, 1, cache_write_1h_tokens => NULL)$$, '22004',
    'cache_write_1h_tokens must not be null', 'NULL cache_write_1h_tokens');
SELECT throws_ok($$SELECT aos_cus.cost_microcents('openai', 'gpt-4o', 1, 1, service_tier => NULL)$$, '22004', 'service_tier must not be null', 'NULL tier');
SELECT throws_ok($$SELECT aos_cus.cost_microcents('openai', 'gpt-4o', 1, 1, at => NULL)$$, '22004', 'at must not be null', 'NULL at');
SELECT throws_ok($$SELECT aos_cus.cost_microcents('openai', 'gpt-4o', -1, 1)$$, '22023', 'input_tokens must not be negative', 'negative input');
SELECT throws_ok($$SELECT aos_cus.cost_microcents('openai', 'gpt-4o', 1, 1, cache_read_tokens => -3)$$, '22023',
    'cache_read_tokens must not be negative', 'negative cache read');
SELECT throws_ok($$SELECT aos_cus.cost_microcents('openai', 'gpt-4o', 1, 1, output_audio_tokens => -1)$$, '22023',
    'output_audio_tokens must not be negative', 'negative audio');
SELECT throws_ok($$SELECT aos_cus.cost_microcents('openai', 'gpt-unknown', -1, 1)$$, '22023', NULL, 'negative tokens fail even for an unknown model');
SELECT throws_ok($$SELECT aos_cus.cost_microcents('openai', 'o3', 1, 10, reasoning_tokens => 11)$$, '22023',
    'reasoning_tokens must not exceed output_tokens', 'reasoning > output');
SELECT throws_ok($$SELECT aos_cus.cost_microcents('openai', 'o1-pro', 0, 4611686018427387904)$$, '22003',
    'cost is out of range for bigint micro-cents', 'overflow: 2^62 output tokens at $600 per 1M');
SELECT throws_ok($$SELECT aos_cus.cost_microcents('openai', 'gpt-4o', 9223372036854775807, 9223372036854775807)$$, '22003', NULL,
    'overflow: bigint max in two buckets');
SELECT is(aos_cus.cost_microcents('openai', 'gpt-4o', 36893488147419, 0), 9223372036854750::bigint, 'large but representable costs are exact');
SELECT throws_ok($$SELECT aos_cus.cost_microcents('acme', 'gpt-4o', 1, 1)$$, '22023', 'provider "acme" is not one of openai, anthropic, google, azure_openai, aws_bedrock, mistral, custom', 'unknown provider');
SELECT throws_ok($$SELECT aos_cus.cost_microcents('', 'gpt-4o', 1, 1)$$, '22023', 'provider "" is not one of openai, anthropic, google, azure_openai, aws_bedrock, mistral, custom', 'empty provider');
SELECT throws_ok($$SELECT aos_cus.cost_microcents('OpenAI', 'gpt-4o', 1, 1)$$, '22023', NULL, 'providers are lower case');
SELECT throws_ok($$SELECT aos_cus.cost_microcents('openai', '', 1, 1)$$, '22023', 'model must not be empty', 'empty model');
SELECT throws_ok($$SELECT aos_cus.cost_microcents('openai', repeat('x', 201), 1, 1)$$, '22023', 'model is longer than 200 characters', 'long model');
SELECT throws_ok($$SELECT aos_cus.cost_microcents('openai', repeat('é', 201), 1, 1)$$, '22023', 'model is longer than 200 characters', 'long multibyte model');
SELECT is(aos_cus.cost_microcents('openai', repeat('é', 200), 1, 1), NULL::bigint, '200 multibyte characters is a valid (unknown) name');
SELECT throws_ok($$SELECT aos_cus.cost_microcents('openai', 'gpt-4o', 1, 1, service_tier => 'gold')$$, '22023',
    'service_tier "gold" is not one of standard, priority, flex, batch', 'unknown tier');
SELECT throws_ok($$SELECT aos_cus.cost_microcents('openai', 'gpt-4o', 1, 1, service_tier => '')$$, '22023', NULL, 'empty tier');
SELECT throws_ok($$SELECT aos_cus.cost_breakdown('openai', 'gpt-4o', -1, 1)$$, '22023', 'input_tokens must not be negative', 'breakdown: negative');
SELECT throws_ok($$SELECT aos_cus.cost_breakdown('openai', 'o1-pro', 0, 4611686018427387904)$$, '22003', NULL, 'breakdown: overflow');
SELECT throws_ok($$SELECT aos_cus.cost_breakdown(NULL, 'gpt-4o', 1, 1)$$, '22004', NULL, 'breakdown: NULL provider');
SELECT throws_ok($$SELECT * FROM aos_cus.resolve_model('openai', NULL)$$, '22004', NULL, 'resolve_model: NULL model');

-- 8. extract_usage on real-shaped responses, then the provider's own arithmetic.
SELECT is(aos_cus.extract_usage('openai', :'openai_chat'),
    '{"input_tokens": 819, "cache_read_tokens": 1024, "cache_write_tokens": 0, "cache_write_1h_tokens": 0, "output_tokens": 956,
      "reasoning_tokens": 640, "input_audio_tokens": 0, "output_audio_tokens": 0}', 'OpenAI chat completions: cached and reasoning tokens');
-- o4-mini: (1843 - 1024) * $1.10 + 1024 * $0.275 + 956 * $4.40 per 1M = $0.0053889.
SELECT is(pg_temp.cost_of('openai', :'openai_chat'::jsonb->>'model', aos_cus.extract_usage('openai', :'openai_chat')), 538890::bigint,
    'OpenAI chat completions cost');
SELECT is(aos_cus.extract_usage('openai', :'openai_responses'),
    '{"input_tokens": 1248, "cache_read_tokens": 1152, "cache_write_tokens": 0, "cache_write_1h_tokens": 0, "output_tokens": 1532,
      "reasoning_tokens": 1024, "input_audio_tokens": 0, "output_audio_tokens": 0}', 'OpenAI responses API');
-- gpt-5: 1248 * $1.25 + 1152 * $0.125 + 1532 * $10 per 1M = $0.017024.
SELECT is(pg_temp.cost_of('openai', :'openai_responses'::jsonb->>'model', aos_cus.extract_usage('openai', :'openai_responses')), 1702400::bigint,
    'OpenAI responses API cost');
SELECT is(aos_cus.extract_usage('openai', (:'openai_responses')::jsonb->'usage'), aos_cus.extract_usage('openai', :'openai_responses'),
    'the usage object alone gives the same buckets');
SELECT is(aos_cus.extract_usage('openai', :'openai_audio'),
    '{"input_tokens": 200, "cache_read_tokens": 0, "cache_write_tokens": 0, "cache_write_1h_tokens": 0, "output_tokens": 200,
      "reasoning_tokens": 0, "input_audio_tokens": 1000, "output_audio_tokens": 700}', 'OpenAI audio tokens');
-- gpt-4o-audio-preview: 200 * $2.50 + 1000 * $100 + 200 * $10 + 700 * $200 per 1M = $0.2425.
SELECT is(pg_temp.cost_of('openai', 'gpt-4o-audio-preview', aos_cus.extract_usage('openai', :'openai_audio')), 24250000::bigint, 'OpenAI audio cost');
SELECT is(aos_cus.extract_usage('anthropic', :'anthropic'),
    '{"input_tokens": 21, "cache_read_tokens": 12000, "cache_write_tokens": 1500, "cache_write_1h_tokens": 2000, "output_tokens": 393,
      "reasoning_tokens": 0, "input_audio_tokens": 0, "output_audio_tokens": 0}', 'Anthropic messages: 5m/1h cache creation split');
-- claude-sonnet-4-5: 21 * $3 + 12000 * $0.30 + 1500 * $3.75 + 2000 * $6 + 393 * $15 per 1M = $0.027183.
SELECT is(pg_temp.cost_of('anthropic', :'anthropic'::jsonb->>'model', aos_cus.extract_usage('anthropic', :'anthropic')), 2718300::bigint,
    'Anthropic cost with 5m and 1h cache writes');
SELECT is(aos_cus.extract_usage('anthropic', '{"usage": {"input_tokens": 5, "output_tokens": 7, "cache_creation_input_tokens": 9}}')->>'cache_write_tokens',
    '9', 'Anthropic without the split: all creation is 5-minute');
SELECT is(aos_cus.extract_usage('google', :'gemini'),
    '{"input_tokens": 232, "cache_read_tokens": 1024, "cache_write_tokens": 0, "cache_write_1h_tokens": 0, "output_tokens": 1162,
      "reasoning_tokens": 750, "input_audio_tokens": 0, "output_audio_tokens": 0}', 'Gemini: cached inside the prompt, thoughts billed as output');
-- gemini-2.5-flash: 232 * $0.30 + 1024 * $0.03 + (412 + 750) * $2.50 per 1M = $0.00300532.
SELECT is(pg_temp.cost_of('google', :'gemini'::jsonb->>'modelVersion', aos_cus.extract_usage('google', :'gemini')), 300532::bigint, 'Gemini cost');
SELECT is(aos_cus.extract_usage('google', '{"usageMetadata": {"promptTokenCount": 100, "candidatesTokenCount": 40,
    "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 30}, {"modality": "AUDIO", "tokenCount": 70}],
    "candidatesTokensDetails": [{"modality": "AUDIO", "tokenCount": 25}]}}')->>'input_audio_tokens', '70', 'Gemini audio prompt tokens');
SELECT is(aos_cus.extract_usage('azure_openai', :'azure'),
    '{"input_tokens": 252, "cache_read_tokens": 1280, "cache_write_tokens": 0, "cache_write_1h_tokens": 0, "output_tokens": 211,
      "reasoning_tokens": 0, "input_audio_tokens": 0, "output_audio_tokens": 0}', 'Azure OpenAI (content filter results around the usage)');
-- gpt-4o-2024-11-20 through Azure: 252 * $2.50 + 1280 * $1.25 + 211 * $10 per 1M = $0.00434.
SELECT is(pg_temp.cost_of('azure_openai', :'azure'::jsonb->>'model', aos_cus.extract_usage('azure_openai', :'azure')), 434000::bigint, 'Azure cost');
SELECT is(aos_cus.extract_usage('aws_bedrock', :'bedrock'),
    '{"input_tokens": 1500, "cache_read_tokens": 5000, "cache_write_tokens": 2000, "cache_write_1h_tokens": 0, "output_tokens": 300,
      "reasoning_tokens": 0, "input_audio_tokens": 0, "output_audio_tokens": 0}', 'Bedrock Converse');
-- claude-3-5-haiku on Bedrock: 1500 * $0.80 + 5000 * $0.08 + 2000 * $1 + 300 * $4 per 1M = $0.0048.
SELECT is(pg_temp.cost_of('aws_bedrock', 'us.anthropic.claude-3-5-haiku-20241022-v1:0', aos_cus.extract_usage('aws_bedrock', :'bedrock')), 480000::bigint,
    'Bedrock cost');
SELECT is(aos_cus.extract_usage('aws_bedrock', :'anthropic'), aos_cus.extract_usage('anthropic', :'anthropic'), 'Bedrock InvokeModel (Anthropic shape)');

-- 9. extract_usage bad input.
SELECT throws_ok($$SELECT aos_cus.extract_usage(NULL, '{}')$$, '22004', 'provider must not be null', 'NULL provider');
SELECT throws_ok($$SELECT aos_cus.extract_usage('openai', NULL)$$, '22004', 'response must not be null', 'NULL response');
SELECT throws_ok($$SELECT aos_cus.extract_usage('acme', '{}')$$, '22023', 'provider "acme" is not one of openai, anthropic, google, azure_openai, aws_bedrock, mistral, custom, otel', 'unknown provider');
SELECT throws_ok($$SELECT aos_cus.extract_usage('', '{}')$$, '22023', NULL, 'empty provider');
SELECT throws_ok($$SELECT aos_cus.extract_usage('openai', '[1, 2]')$$, '22023', 'response must be a JSON object', 'array');
SELECT throws_ok($$SELECT aos_cus.extract_usage('openai', '"usage"')$$, '22023', 'response must be a JSON object', 'scalar');
SELECT throws_ok($$SELECT aos_cus.extract_usage('openai', '{}')$$, '22023', 'response is not a usage block aos_cus knows for provider openai',
    'no usage: an error, not zeros');
SELECT throws_ok($$SELECT aos_cus.extract_usage('openai', '{"usage": 5}')$$, '22023', 'response usage must be a JSON object', 'usage not an object');
SELECT throws_ok($$SELECT aos_cus.extract_usage('openai', '{"usage": {"prompt_tokens": -1, "completion_tokens": 1}}')$$, '22023',
    'response usage.prompt_tokens must be a non-negative integer token count', 'negative count');
SELECT throws_ok($$SELECT aos_cus.extract_usage('openai', '{"usage": {"prompt_tokens": 1.5, "completion_tokens": 1}}')$$, '22023', NULL, 'fractional count');
SELECT throws_ok($$SELECT aos_cus.extract_usage('openai', '{"usage": {"prompt_tokens": "12", "completion_tokens": 1}}')$$, '22023', NULL, 'string count');
SELECT throws_ok($$SELECT aos_cus.extract_usage('openai', '{"usage": {"prompt_tokens": 99999999999999999999, "completion_tokens": 1}}')$$, '22003',
    'response usage.prompt_tokens is out of range: 99999999999999999999 (at most 1000000000000)', 'count beyond bigint');
SELECT throws_ok($$SELECT aos_cus.extract_usage('openai', '{"usage": {"prompt_tokens": 10, "completion_tokens": 1, "prompt_tokens_details": {"cached_tokens": 11}}}')$$,
    '22023', NULL, 'cached > prompt');
SELECT throws_ok($$SELECT aos_cus.extract_usage('openai', '{"usage": {"prompt_tokens": 10, "completion_tokens": 1, "completion_tokens_details": {"reasoning_tokens": 2}}}')$$,
    '22023', NULL, 'reasoning > completion');
SELECT throws_ok($$SELECT aos_cus.extract_usage('anthropic', '{"usage": {"input_tokens": 1, "output_tokens": 1, "cache_creation_input_tokens": 5,
    "cache_creation": {"ephemeral_5m_input_tokens": 1, "ephemeral_1h_input_tokens": 1}}}')$$, '22023', NULL, 'Anthropic split disagrees with the total');
SELECT throws_ok($$SELECT aos_cus.extract_usage('openai', '{"usageMetadata": {"promptTokenCount": 5}}')$$, '22023', NULL, 'a Gemini shape is not OpenAI');
SELECT throws_ok($$SELECT aos_cus.extract_usage('google', '{"usage": {"prompt_tokens": 5, "completion_tokens": 1}}')$$, '22023',
    'response is not a usage block aos_cus knows for provider google', 'an OpenAI shape is not Gemini');
SELECT throws_ok($$SELECT aos_cus.extract_usage('google', '{"usageMetadata": {"promptTokenCount": 5, "promptTokensDetails": {}}}')$$, '22023', NULL,
    'Gemini details not an array');

-- 10. estimate_tokens.
SELECT is(aos_cus.estimate_tokens(NULL), NULL::integer, 'NULL content: NULL');
SELECT is(aos_cus.estimate_tokens(''), 0, 'empty content: 0');
SELECT is(aos_cus.estimate_tokens('abcdefgh'), 2, 'no model: characters / 4');
SELECT is(aos_cus.estimate_tokens('héllo', 'mistral-large'), 2, 'unknown model: characters (not bytes) / 4');
SELECT is(aos_cus.estimate_tokens('1234567', 'gpt-4o'), 3, 'digits split in groups of three');
SELECT ok(aos_cus.estimate_tokens(repeat('The quick brown fox. ', 100), 'claude-sonnet-4-5') > aos_cus.estimate_tokens(repeat('The quick brown fox. ', 100), 'gpt-4o'),
    'Claude counts more tokens than OpenAI for the same text');
SELECT is(aos_cus.estimate_tokens(repeat('数据', 50), 'gemini-2.5-pro'), 100, 'CJK characters are about one token each');
SELECT ok(aos_cus.estimate_tokens(repeat('x', 10000000), 'gpt-4o') > 0, '10 MB of text is estimated');
-- The OpenAI cookbook request that the API counted as 124 prompt tokens (gpt-4o) and 129 (gpt-4).
CREATE TEMP TABLE cookbook AS
SELECT r->>'model' AS model, (r->'usage'->>'prompt_tokens')::int AS actual,
       (SELECT sum(3 + (SELECT sum(aos_cus.estimate_tokens(v, r->>'model')) FROM jsonb_each_text(m) kv(k, v))
                   + CASE WHEN m ? 'name' THEN 1 ELSE 0 END) + 3
          FROM jsonb_array_elements((:'cookbook')::jsonb->'messages') m) AS estimate,
       (SELECT sum(3 + (SELECT sum(aos_cus.estimate_tokens(v)) FROM jsonb_each_text(m) kv(k, v))
                   + CASE WHEN m ? 'name' THEN 1 ELSE 0 END) + 3
          FROM jsonb_array_elements((:'cookbook')::jsonb->'messages') m) AS chars4
  FROM jsonb_array_elements((:'cookbook')::jsonb->'responses') r;
SELECT is((SELECT array_agg(model || ' ' || actual || ' -> ' || estimate || ' (' || chars4 || ')' ORDER BY model) FROM cookbook),
    '{"gpt-4-0613 129 -> 132 (165)","gpt-4o 124 -> 132 (165)"}', 'cookbook request: model-aware estimate vs the API count (characters / 4)');
SELECT ok((SELECT bool_and(abs(estimate - actual) * 100 <= actual * 10) FROM cookbook), 'model-aware estimate within 10% of the provider count');

SELECT * FROM finish();
ROLLBACK;
