-- Pricing engine: model resolution, cost, prices, token estimates and usage extraction (README: Pricing, cost and tokens).

-- Every change to the price table is announced to every backend's price cache (pricing.c).
CREATE FUNCTION aos_cus.prices_changed() RETURNS trigger
    AS 'MODULE_PATHNAME', 'aos_cus_prices_changed'
    LANGUAGE C;
COMMENT ON FUNCTION aos_cus.prices_changed() IS 'trigger: sends a relcache invalidation so price caches reload';
REVOKE ALL ON FUNCTION aos_cus.prices_changed() FROM PUBLIC;
CREATE TRIGGER cus_model_prices_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON aos_cus.cus_model_prices
    FOR EACH STATEMENT EXECUTE FUNCTION aos_cus.prices_changed();

-- Price providers searched for a caller's provider, most specific first: Azure OpenAI falls back to
-- OpenAI prices, Bedrock to Anthropic, Google (Vertex AI also serves Claude) to Anthropic.
CREATE FUNCTION aos_cus.price_providers(provider text) RETURNS text[]
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN CASE provider
        WHEN 'azure_openai' THEN ARRAY['azure_openai', 'openai']
        WHEN 'aws_bedrock' THEN ARRAY['aws_bedrock', 'anthropic']
        WHEN 'google' THEN ARRAY['google', 'anthropic']
        ELSE ARRAY[provider] END;
COMMENT ON FUNCTION aos_cus.price_providers(text) IS 'price providers searched for a provider, in order';

-- Which priced model a (provider, model) names. Deterministic order, first hit wins:
--   name variants: 1 the name as given; 2 without a leading "vendor/" path ("azure/", "models/");
--                  3 variant 2 without a dated snapshot suffix (-YYYY-MM-DD or -YYYYMMDD);
--   within a variant: exact model name, then an alias, then the match pattern;
--   within a step: the caller's provider before its fallbacks, then the longest model name, then by name.
-- Matching ignores case and surrounding blanks.
CREATE FUNCTION aos_cus.resolve_model(provider text, model text)
    RETURNS TABLE (price_provider text, canonical_model text)
    LANGUAGE plpgsql STABLE PARALLEL SAFE ROWS 1 SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF resolve_model.provider IS NULL OR resolve_model.model IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = '22004', MESSAGE = 'provider and model must not be null';
    END IF;
    IF NOT resolve_model.provider = ANY (ARRAY['openai', 'anthropic', 'google', 'azure_openai', 'aws_bedrock', 'mistral', 'custom']) THEN
        RAISE EXCEPTION USING ERRCODE = '22023',
            MESSAGE = pg_catalog.format('provider "%s" is not one of openai, anthropic, google, azure_openai, aws_bedrock, mistral, custom', pg_catalog.left(resolve_model.provider, 64));
    END IF;
    RETURN QUERY
    SELECT c.provider, c.model
      FROM (SELECT pg_catalog.lower(pg_catalog.btrim(resolve_model.model)) AS v1) n1
     CROSS JOIN LATERAL (SELECT pg_catalog.regexp_replace(n1.v1, '^[a-z0-9_.-]+/', '') AS v2) n2
     CROSS JOIN LATERAL (VALUES (1, n1.v1), (2, n2.v2),
                                (3, pg_catalog.regexp_replace(n2.v2, '-(\d{4}-\d{2}-\d{2}|\d{8})$', ''))) AS names(variant, name)
     CROSS JOIN LATERAL pg_catalog.unnest(aos_cus.price_providers(resolve_model.provider)) WITH ORDINALITY AS pp(provider, pref)
      JOIN LATERAL (SELECT DISTINCT p.provider::text AS provider, p.model,
                           CASE WHEN pg_catalog.lower(p.model) = names.name THEN 1
                                WHEN names.name = ANY (p.aliases) THEN 2
                                WHEN names.name ~* p.match_pattern THEN 3 END AS step
                      FROM aos_cus.cus_model_prices p
                     WHERE p.provider = pp.provider) c ON c.step IS NOT NULL
     ORDER BY names.variant, c.step, pp.pref, pg_catalog.length(c.model) DESC, c.model
     LIMIT 1;
END
$$;
COMMENT ON FUNCTION aos_cus.resolve_model(text, text) IS
    'the price provider and canonical model a provider''s model name resolves to (no row when unknown)';

CREATE FUNCTION aos_cus.cost_microcents(provider text, model text, input_tokens bigint, output_tokens bigint,
    cache_read_tokens bigint DEFAULT 0, cache_write_tokens bigint DEFAULT 0,
    cache_write_1h_tokens bigint DEFAULT 0, reasoning_tokens bigint DEFAULT 0,
    service_tier text DEFAULT 'standard', at timestamptz DEFAULT pg_catalog.now(),
    input_audio_tokens bigint DEFAULT 0, output_audio_tokens bigint DEFAULT 0) RETURNS bigint
    AS 'MODULE_PATHNAME', 'aos_cus_cost_microcents'
    LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION aos_cus.cost_microcents(text, text, bigint, bigint, bigint, bigint, bigint, bigint, text, timestamptz, bigint, bigint) IS
    'exact cost in micro-cents with the price in force at "at"; NULL for an unknown model';

CREATE FUNCTION aos_cus.cost_breakdown(provider text, model text, input_tokens bigint, output_tokens bigint,
    cache_read_tokens bigint DEFAULT 0, cache_write_tokens bigint DEFAULT 0,
    cache_write_1h_tokens bigint DEFAULT 0, reasoning_tokens bigint DEFAULT 0,
    service_tier text DEFAULT 'standard', at timestamptz DEFAULT pg_catalog.now(),
    input_audio_tokens bigint DEFAULT 0, output_audio_tokens bigint DEFAULT 0) RETURNS jsonb
    AS 'MODULE_PATHNAME', 'aos_cus_cost_breakdown'
    LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION aos_cus.cost_breakdown(text, text, bigint, bigint, bigint, bigint, bigint, bigint, text, timestamptz, bigint, bigint) IS
    'cost_microcents() explained: price row, tier, one item per bucket (exact micro-cents) and the rounded total';

-- A new effective-dated price version; rows already in force are never changed.
CREATE FUNCTION aos_cus.set_price(provider text, model text, input_price bigint, output_price bigint,
    cache_read_price bigint DEFAULT NULL, cache_write_price bigint DEFAULT NULL,
    cache_write_1h_price bigint DEFAULT NULL, reasoning_price bigint DEFAULT NULL,
    input_audio_price bigint DEFAULT NULL, output_audio_price bigint DEFAULT NULL,
    service_tier text DEFAULT 'standard', min_prompt_tokens bigint DEFAULT 0,
    effective_from timestamptz DEFAULT pg_catalog.now(), context_window integer DEFAULT NULL,
    max_output_tokens integer DEFAULT NULL, aliases text[] DEFAULT NULL, match_pattern text DEFAULT NULL,
    source text DEFAULT 'manual') RETURNS bigint
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    m text := pg_catalog.lower(pg_catalog.btrim(set_price.model));
    prices bigint[] := ARRAY[set_price.input_price, set_price.output_price, set_price.cache_read_price,
                             set_price.cache_write_price, set_price.cache_write_1h_price, set_price.reasoning_price,
                             set_price.input_audio_price, set_price.output_audio_price];
    names text[] := ARRAY['input_price', 'output_price', 'cache_read_price', 'cache_write_price',
                          'cache_write_1h_price', 'reasoning_price', 'input_audio_price', 'output_audio_price'];
    latest aos_cus.cus_model_prices;
    new_id bigint;
BEGIN
    PERFORM aos_cus.assert_platform('set_price()');
    IF set_price.provider IS NULL OR set_price.model IS NULL OR set_price.input_price IS NULL
       OR set_price.output_price IS NULL OR set_price.service_tier IS NULL
       OR set_price.min_prompt_tokens IS NULL OR set_price.effective_from IS NULL OR set_price.source IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = '22004', MESSAGE = 'provider, model, input_price, output_price, service_tier, '
            'min_prompt_tokens, effective_from and source must not be null';
    END IF;
    IF NOT set_price.provider = ANY (ARRAY['openai', 'anthropic', 'google', 'azure_openai', 'aws_bedrock', 'mistral', 'custom']) THEN
        RAISE EXCEPTION USING ERRCODE = '22023',
            MESSAGE = pg_catalog.format('provider "%s" is not one of openai, anthropic, google, azure_openai, aws_bedrock, mistral, custom', pg_catalog.left(set_price.provider, 64));
    END IF;
    IF m = '' OR pg_catalog.length(m) > 200 THEN
        RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'model must be 1 to 200 characters';
    END IF;
    IF NOT set_price.service_tier = ANY (ARRAY['standard', 'priority', 'flex', 'batch']) THEN
        RAISE EXCEPTION USING ERRCODE = '22023',
            MESSAGE = pg_catalog.format('service_tier "%s" is not one of standard, priority, flex, batch', pg_catalog.left(set_price.service_tier, 64));
    END IF;
    FOR i IN 1 .. 8 LOOP
        IF prices[i] < 0 THEN
            RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = pg_catalog.format('%s must not be negative', names[i]);
        END IF;
    END LOOP;
    IF set_price.min_prompt_tokens < 0 THEN
        RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'min_prompt_tokens must not be negative';
    END IF;
    IF NOT pg_catalog.isfinite(set_price.effective_from) THEN
        RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'effective_from must be a finite timestamp';
    END IF;
    IF set_price.source LIKE 'langfuse: %' THEN
        RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'source must not start with "langfuse: " (reserved for the seed)';
    END IF;
    IF set_price.match_pattern IS NOT NULL THEN
        PERFORM '' ~* set_price.match_pattern;
    END IF;

    -- One writer at a time, so "later than every version" holds at commit; readers are not blocked.
    LOCK TABLE aos_cus.cus_model_prices IN SHARE ROW EXCLUSIVE MODE;
    IF EXISTS (SELECT 1 FROM aos_cus.cus_model_prices p
                WHERE p.provider = set_price.provider AND p.model = m AND p.service_tier = set_price.service_tier
                  AND p.min_prompt_tokens = set_price.min_prompt_tokens AND p.effective_from >= set_price.effective_from) THEN
        RAISE EXCEPTION USING ERRCODE = '22023',
            MESSAGE = 'effective_from must be later than every existing version of this price',
            DETAIL = pg_catalog.format('%s %s tier %s above %s tokens already has a version at or after %s.',
                                       set_price.provider, m, set_price.service_tier, set_price.min_prompt_tokens,
                                       set_price.effective_from),
            HINT = 'Prices are history: add a new version instead of changing one.';
    END IF;
    -- Names and limits not given are kept from the model's latest row.
    SELECT * INTO latest FROM aos_cus.cus_model_prices p
     WHERE p.provider = set_price.provider AND p.model = m ORDER BY p.effective_from DESC, p.id DESC LIMIT 1;
    INSERT INTO aos_cus.cus_model_prices AS p (provider, model, aliases, match_pattern, service_tier, min_prompt_tokens,
        effective_from, input_price, output_price, cache_read_price, cache_write_price, cache_write_1h_price,
        reasoning_price, input_audio_price, output_audio_price, context_window, max_output_tokens, source)
    VALUES (set_price.provider, m,
            COALESCE((SELECT pg_catalog.array_agg(pg_catalog.lower(a)) FROM pg_catalog.unnest(set_price.aliases) a),
                     latest.aliases, '{}'),
            COALESCE(set_price.match_pattern, latest.match_pattern),
            set_price.service_tier, set_price.min_prompt_tokens, set_price.effective_from,
            set_price.input_price, set_price.output_price, set_price.cache_read_price, set_price.cache_write_price,
            set_price.cache_write_1h_price, set_price.reasoning_price, set_price.input_audio_price,
            set_price.output_audio_price, COALESCE(set_price.context_window, latest.context_window),
            COALESCE(set_price.max_output_tokens, latest.max_output_tokens), set_price.source)
    RETURNING p.id INTO new_id;
    RETURN new_id;
END
$$;
COMMENT ON FUNCTION aos_cus.set_price(text, text, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, text, bigint, timestamptz, integer, integer, text[], text, text) IS
    'adds a price version (micro-cents per 1M tokens) effective from effective_from; returns its id';
REVOKE ALL ON FUNCTION aos_cus.set_price(text, text, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, text, bigint, timestamptz, integer, integer, text[], text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION aos_cus.set_price(text, text, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, text, bigint, timestamptz, integer, integer, text[], text, text) TO aos_cus_operator;

-- The model a name resolves to, with every price row in force now (one per tier and threshold).
CREATE FUNCTION aos_cus.model_info(provider text, model text)
    RETURNS TABLE (price_provider text, canonical_model text, service_tier text, min_prompt_tokens bigint,
                   price_id bigint, effective_from timestamptz, input_price bigint, output_price bigint,
                   cache_read_price bigint, cache_write_price bigint, cache_write_1h_price bigint,
                   reasoning_price bigint, input_audio_price bigint, output_audio_price bigint,
                   context_window integer, max_output_tokens integer, aliases text[], match_pattern text, source text)
    LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT DISTINCT ON (pg_catalog.array_position(ARRAY['standard', 'priority', 'flex', 'batch'], p.service_tier::text),
                        p.min_prompt_tokens)
           r.price_provider, r.canonical_model, p.service_tier, p.min_prompt_tokens, p.id, p.effective_from,
           p.input_price, p.output_price, p.cache_read_price, p.cache_write_price, p.cache_write_1h_price,
           p.reasoning_price, p.input_audio_price, p.output_audio_price, p.context_window, p.max_output_tokens,
           p.aliases, p.match_pattern, p.source
      FROM aos_cus.resolve_model(model_info.provider, model_info.model) r
      JOIN aos_cus.cus_model_prices p ON p.provider = r.price_provider AND p.model = r.canonical_model
     WHERE p.effective_from <= pg_catalog.now()
     ORDER BY pg_catalog.array_position(ARRAY['standard', 'priority', 'flex', 'batch'], p.service_tier::text),
              p.min_prompt_tokens, p.effective_from DESC;
END;
COMMENT ON FUNCTION aos_cus.model_info(text, text) IS
    'canonical model, limits and the prices in force now for each tier and long-context threshold';

CREATE FUNCTION aos_cus.estimate_tokens(content text, model text DEFAULT NULL) RETURNS integer
    AS 'MODULE_PATHNAME', 'aos_cus_estimate_tokens'
    LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION aos_cus.estimate_tokens(text, text) IS
    'fast token estimate of content for a model (NULL content gives NULL); see README for its error';

CREATE FUNCTION aos_cus.extract_usage(provider text, response jsonb) RETURNS jsonb
    AS 'MODULE_PATHNAME', 'aos_cus_extract_usage'
    LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION aos_cus.extract_usage(text, jsonb) IS
    'token buckets (cus_llm_usage column names) of a provider response or usage object';

-- Pure pricing functions: every aos_cus role may call them (99_privileges.sql revokes PUBLIC).
GRANT EXECUTE ON FUNCTION aos_cus.price_providers(text), aos_cus.resolve_model(text, text),
    aos_cus.cost_microcents(text, text, bigint, bigint, bigint, bigint, bigint, bigint, text, timestamptz, bigint, bigint),
    aos_cus.cost_breakdown(text, text, bigint, bigint, bigint, bigint, bigint, bigint, text, timestamptz, bigint, bigint),
    aos_cus.model_info(text, text), aos_cus.estimate_tokens(text, text), aos_cus.extract_usage(text, jsonb)
    TO aos_cus_admin, aos_cus_app, aos_cus_reader, aos_cus_worker;
