-- OpenTelemetry GenAI span attributes: extract_usage('otel', ...) and ingest records, one fixture per provider,
-- mapped into disjoint buckets (cached tokens out of input_tokens, reasoning inside output_tokens), and bad input.
\set o_openai `cat test/fixtures/usage/otel_openai.json`
\set o_anthropic `cat test/fixtures/usage/otel_anthropic.json`
\set o_bedrock `cat test/fixtures/usage/otel_aws_bedrock.json`
\set o_vertex `cat test/fixtures/usage/otel_gcp_vertex_ai.json`
\set o_gemini `cat test/fixtures/usage/otel_gcp_gemini.json`
\set o_azure `cat test/fixtures/usage/otel_azure_openai.json`
\set o_mistral `cat test/fixtures/usage/otel_mistral.json`
\set o_system `cat test/fixtures/usage/otel_deprecated_system.json`
\set anthropic `cat test/fixtures/usage/anthropic_messages.json`
BEGIN;
SELECT plan(42);

-- The buckets of a fixture, the zero buckets left out.
CREATE FUNCTION pg_temp.nonzero(u jsonb) RETURNS jsonb LANGUAGE sql AS $$
    SELECT jsonb_object_agg(key, value) FROM jsonb_each(u) WHERE value <> '0'
$$;
-- Bucket sums against the attributes: input side and output side each counted exactly once.
CREATE FUNCTION pg_temp.conserved(a jsonb) RETURNS boolean LANGUAGE sql AS $$
    SELECT (u->>'input_tokens')::bigint + (u->>'cache_read_tokens')::bigint + (u->>'cache_write_tokens')::bigint
               = (a->>'gen_ai.usage.input_tokens')::bigint
       AND (u->>'output_tokens')::bigint = coalesce((a->>'gen_ai.usage.output_tokens')::bigint, 0)
       AND (u->>'reasoning_tokens')::bigint = coalesce((a->>'gen_ai.usage.reasoning.output_tokens')::bigint, 0)
      FROM aos_cus.extract_usage('otel', a) u
$$;

-- 1. One fixture per provider: exact buckets.
SELECT is(pg_temp.nonzero(aos_cus.extract_usage('otel', :'o_openai')),
    '{"input_tokens": 819, "cache_read_tokens": 1024, "output_tokens": 956}', 'openai: cached tokens come out of input_tokens');
SELECT is(pg_temp.nonzero(aos_cus.extract_usage('otel', :'o_anthropic')),
    '{"input_tokens": 21, "cache_read_tokens": 12000, "cache_write_tokens": 3500, "output_tokens": 393}',
    'anthropic: cache reads and cache writes come out of input_tokens');
SELECT is(pg_temp.nonzero(aos_cus.extract_usage('otel', :'o_bedrock')),
    '{"input_tokens": 40, "cache_read_tokens": 2048, "cache_write_tokens": 512, "output_tokens": 210}', 'aws.bedrock');
SELECT is(pg_temp.nonzero(aos_cus.extract_usage('otel', :'o_vertex')),
    '{"input_tokens": 1024, "cache_read_tokens": 4096, "output_tokens": 1800, "reasoning_tokens": 1350}',
    'gcp.vertex_ai: reasoning stays inside output_tokens');
SELECT is(pg_temp.nonzero(aos_cus.extract_usage('otel', :'o_gemini')),
    '{"input_tokens": 812, "output_tokens": 640, "reasoning_tokens": 512}', 'gcp.gemini');
SELECT is(pg_temp.nonzero(aos_cus.extract_usage('otel', :'o_azure')),
    '{"input_tokens": 156, "cache_read_tokens": 2944, "output_tokens": 95}', 'azure.ai.openai');
SELECT is(pg_temp.nonzero(aos_cus.extract_usage('otel', :'o_mistral')),
    '{"input_tokens": 420, "output_tokens": 128}', 'mistral_ai');
SELECT is(pg_temp.nonzero(aos_cus.extract_usage('otel', :'o_system')),
    '{"input_tokens": 700, "output_tokens": 2300, "reasoning_tokens": 2048}', 'deprecated gen_ai.system');

-- 2. No double counting: every fixture's buckets add back up to its totals.
SELECT ok(pg_temp.conserved(:'o_openai'), 'openai: conserved');
SELECT ok(pg_temp.conserved(:'o_anthropic'), 'anthropic: conserved');
SELECT ok(pg_temp.conserved(:'o_bedrock'), 'aws.bedrock: conserved');
SELECT ok(pg_temp.conserved(:'o_vertex'), 'gcp.vertex_ai: conserved');
SELECT ok(pg_temp.conserved(:'o_gemini'), 'gcp.gemini: conserved');
SELECT ok(pg_temp.conserved(:'o_azure'), 'azure.ai.openai: conserved');
SELECT ok(pg_temp.conserved(:'o_mistral'), 'mistral_ai: conserved');
SELECT ok(pg_temp.conserved(:'o_system'), 'gen_ai.system: conserved');
SELECT is((SELECT row(o->'input_tokens', o->'cache_read_tokens', o->'output_tokens', o->'cache_write_tokens')::text
             FROM aos_cus.extract_usage('otel', :'o_anthropic') o),
          (SELECT row(n->'input_tokens', n->'cache_read_tokens', n->'output_tokens',
                      to_jsonb((n->>'cache_write_tokens')::int + (n->>'cache_write_1h_tokens')::int))::text
             FROM aos_cus.extract_usage('anthropic', :'anthropic') n),
    'the span of an Anthropic call has the buckets of its native usage (OTel has no 1-hour cache write split)');

-- 3. Span attributes are read for any provider, in extract_usage and in ingest.
SELECT is(aos_cus.extract_usage('openai', :'o_openai'), aos_cus.extract_usage('otel', :'o_openai'), 'attributes under provider openai');
SELECT is(aos_cus.extract_usage('aws_bedrock', :'o_bedrock'), aos_cus.extract_usage('otel', :'o_bedrock'), 'attributes under provider aws_bedrock');
SELECT is(aos_cus.extract_usage('google', :'o_vertex'), aos_cus.extract_usage('otel', :'o_vertex'), 'attributes under provider google');

INSERT INTO aos_cus.cus_integrations (tenant_id, id, name, provider) VALUES
    ('33000000-0000-4000-8000-000000000001', '33000000-0000-4000-8000-0000000000a1', 'otel-openai', 'openai'),
    ('33000000-0000-4000-8000-000000000001', '33000000-0000-4000-8000-0000000000a2', 'otel-custom', 'custom');
CREATE FUNCTION pg_temp.ingest(integration text, call_id text, attrs jsonb, extra jsonb DEFAULT '{}') RETURNS aos_cus.ingest_result
    LANGUAGE sql AS $$
    SELECT * FROM aos_cus.ingest_usage('33000000-0000-4000-8000-000000000001', jsonb_build_object(
        'integration_id', '33000000-0000-4000-8000-0000000000' || integration, 'call_id', call_id,
        'started_at', date_trunc('hour', now()) - interval '1 hour', 'usage', attrs) || extra)
$$;
SELECT is((pg_temp.ingest('a1', 'o1', :'o_openai')).status, 'inserted', 'ingest: a span without model or provider keys');
SELECT is((SELECT row(provider, model, input_tokens, cache_read_tokens, output_tokens)::text FROM aos_cus.cus_llm_usage
            WHERE call_id = 'o1'), '(openai,gpt-4o-2024-08-06,819,1024,956)', 'ingest: model from gen_ai.response.model, buckets mapped');
SELECT is((pg_temp.ingest('a1', 'o1b', :'o_openai')).cost_microcents,
    aos_cus.cost_microcents('openai', 'gpt-4o-2024-08-06', 819, 956, 1024, at => date_trunc('hour', now()) - interval '1 hour'), 'ingest: the span is priced');
SELECT is((pg_temp.ingest('a1', 'o2', :'o_system')).status, 'inserted', 'ingest: deprecated gen_ai.system');
SELECT is((SELECT model FROM aos_cus.cus_llm_usage WHERE call_id = 'o2'), 'o3-mini', 'ingest: model from gen_ai.request.model');
SELECT is((pg_temp.ingest('a1', 'o3', :'o_openai', '{"model": "gpt-4o-mini"}')).status, 'inserted', 'ingest: the record''s model key');
SELECT is((SELECT model FROM aos_cus.cus_llm_usage WHERE call_id = 'o3'), 'gpt-4o-mini', 'ingest: the record''s model wins over the span''s');
SELECT is((pg_temp.ingest('a2', 'o4', :'o_mistral')).status, 'inserted', 'ingest: custom integration');
SELECT is((SELECT row(provider, model, cost_microcents IS NOT NULL)::text FROM aos_cus.cus_llm_usage WHERE call_id = 'o4'),
    '(mistral,mistral-large-2411,t)', 'ingest: provider from gen_ai.provider.name (mistral_ai), priced');
SELECT is((pg_temp.ingest('a1', 'o7', '{"gen_ai.provider.name": "cohere", "gen_ai.request.model": "gpt-4o",
    "gen_ai.usage.input_tokens": 1, "gen_ai.usage.output_tokens": 1}')).status, 'inserted', 'ingest: a provider name aos_cus does not know');
SELECT is((SELECT provider::text FROM aos_cus.cus_llm_usage WHERE call_id = 'o7'), 'openai', '... leaves the integration''s provider');
SELECT throws_ok($$SELECT pg_temp.ingest('a1', 'o5', '{"gen_ai.provider.name": "aws.bedrock", "gen_ai.request.model": "x",
    "gen_ai.usage.input_tokens": 1, "gen_ai.usage.output_tokens": 1}')$$, '22023',
    'provider "aws_bedrock" does not match the integration''s provider "openai"', 'ingest: span of another provider is refused');
SELECT is((SELECT error FROM aos_cus.ingest_usage_batch('33000000-0000-4000-8000-000000000001', jsonb_build_array(
    jsonb_build_object('integration_id', '33000000-0000-4000-8000-0000000000a1', 'call_id', 'o6', 'started_at', now(),
        'usage', '{"gen_ai.provider.name": 7, "gen_ai.usage.input_tokens": 1}'::jsonb)))),
    'usage gen_ai.provider.name must be a string', 'ingest batch: a non-string attribute is rejected, naming it');

-- 4. Bad attributes: 22023 naming the attribute, 22003 out of range.
SELECT throws_ok($$SELECT aos_cus.extract_usage('otel', '{"gen_ai.usage.output_tokens": 5}')$$, '22023',
    'response is not a usage block aos_cus knows for provider otel', 'no gen_ai.usage.input_tokens');
SELECT throws_ok($$SELECT aos_cus.extract_usage('otel', '{"gen_ai.usage.input_tokens": "12"}')$$, '22023',
    'response gen_ai.usage.input_tokens must be a non-negative integer token count', 'a string count names the attribute');
SELECT throws_ok($$SELECT aos_cus.extract_usage('otel', '{"gen_ai.usage.input_tokens": 10, "gen_ai.usage.cache_read.input_tokens": -1}')$$,
    '22023', 'response gen_ai.usage.cache_read.input_tokens must be a non-negative integer token count', 'a negative count');
SELECT throws_like($$SELECT aos_cus.extract_usage('otel', '{"gen_ai.usage.input_tokens": 10, "gen_ai.usage.cache_read.input_tokens": 8,
    "gen_ai.usage.cache_creation.input_tokens": 3}')$$, '%usage block%', 'cached tokens above input_tokens are inconsistent');
SELECT throws_like($$SELECT aos_cus.extract_usage('otel', '{"gen_ai.usage.input_tokens": 10, "gen_ai.usage.output_tokens": 3,
    "gen_ai.usage.reasoning.output_tokens": 4}')$$, '%usage block%', 'reasoning above output_tokens is inconsistent');
SELECT throws_ok($$SELECT aos_cus.extract_usage('otel', '{"gen_ai.usage.input_tokens": 10000000000000}')$$, '22003', NULL,
    'a count above 10^12 is out of range');
SELECT throws_ok(format('SELECT aos_cus.extract_usage(%L, %L)', 'otel', :'anthropic'), '22023', NULL, 'otel takes span attributes only');
SELECT throws_ok($$SELECT aos_cus.extract_usage('otel', '[1]')$$, '22023', 'response must be a JSON object', 'not an object');
SELECT throws_ok($$SELECT aos_cus.extract_usage('otlp', '{}')$$, '22023', 'provider "otlp" is not one of openai, anthropic, google, azure_openai, aws_bedrock, mistral, custom, otel', 'unknown provider');

SELECT * FROM finish();
ROLLBACK;
