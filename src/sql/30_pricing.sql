-- Pricing engine: model resolution, cost, prices, token estimates and usage extraction (README: Pricing, cost and tokens).

-- Every change to the price table is announced to every backend's price cache (pricing.c).
CREATE FUNCTION aos_cus_internal.prices_changed() RETURNS trigger
    AS 'MODULE_PATHNAME', 'aos_cus_prices_changed'
    LANGUAGE C;
COMMENT ON FUNCTION aos_cus_internal.prices_changed() IS 'trigger: sends a relcache invalidation so price caches reload';
REVOKE ALL ON FUNCTION aos_cus_internal.prices_changed() FROM PUBLIC;
CREATE TRIGGER cus_model_prices_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON aos_cus.cus_model_prices
    FOR EACH STATEMENT EXECUTE FUNCTION aos_cus_internal.prices_changed();

-- Price providers searched for a caller's provider, most specific first: Azure OpenAI falls back to
-- OpenAI prices, Bedrock to Anthropic, Google (Vertex AI also serves Claude) to Anthropic.
CREATE FUNCTION aos_cus_internal.price_providers(provider text) RETURNS text[]
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN CASE provider
        WHEN 'azure_openai' THEN ARRAY['azure_openai', 'openai']
        WHEN 'aws_bedrock' THEN ARRAY['aws_bedrock', 'anthropic']
        WHEN 'google' THEN ARRAY['google', 'anthropic']
        ELSE ARRAY[provider] END;
COMMENT ON FUNCTION aos_cus_internal.price_providers(text) IS 'price providers searched for a provider, in order';

-- Which priced model a (provider, model) names. Deterministic order, first hit wins:
--   name variants: 1 the name as given; 2 without a leading "vendor/" path ("azure/", "models/");
--                  3 variant 2 without a dated snapshot suffix (-YYYY-MM-DD or -YYYYMMDD);
--   within a variant: the caller's provider before its fallbacks (so Bedrock, Azure and Vertex AI prices win);
--   within a provider: exact model name, then an alias, then the match pattern (genai-prices rules included);
--   within a step: the longest model name, then by name.
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
     CROSS JOIN LATERAL pg_catalog.unnest(aos_cus_internal.price_providers(resolve_model.provider)) WITH ORDINALITY AS pp(provider, pref)
      JOIN LATERAL (SELECT DISTINCT p.provider::text AS provider, p.model,
                           CASE WHEN pg_catalog.lower(p.model) = names.name THEN 1
                                WHEN names.name = ANY (p.aliases) THEN 2
                                WHEN names.name ~* p.match_pattern THEN 3 END AS step
                      FROM aos_cus.cus_model_prices p
                     WHERE p.provider = pp.provider) c ON c.step IS NOT NULL
     ORDER BY names.variant, pp.pref, c.step, pg_catalog.length(c.model) DESC, c.model
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
    names_given text[];
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
    IF set_price.source LIKE 'langfuse: %' OR set_price.source LIKE 'genai-prices: %' THEN
        RAISE EXCEPTION USING ERRCODE = '22023',
            MESSAGE = 'source must not start with "langfuse: " or "genai-prices: " (reserved for the seed)';
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
    -- Computed here, not in VALUES: Citus refuses subqueries in an INSERT into the reference table.
    names_given := (SELECT pg_catalog.array_agg(pg_catalog.lower(a)) FROM pg_catalog.unnest(set_price.aliases) a);
    INSERT INTO aos_cus.cus_model_prices AS p (provider, model, aliases, match_pattern, service_tier, min_prompt_tokens,
        effective_from, input_price, output_price, cache_read_price, cache_write_price, cache_write_1h_price,
        reasoning_price, input_audio_price, output_audio_price, context_window, max_output_tokens, source)
    VALUES (set_price.provider, m,
            COALESCE(names_given, latest.aliases, '{}'),
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
    'token buckets (cus_llm_usage column names) of a provider response or usage object, or of OpenTelemetry GenAI span attributes';

-- Pure pricing functions: every aos_cus role may call them (99_privileges.sql revokes PUBLIC).
GRANT EXECUTE ON FUNCTION aos_cus_internal.price_providers(text), aos_cus.resolve_model(text, text),
    aos_cus.cost_microcents(text, text, bigint, bigint, bigint, bigint, bigint, bigint, text, timestamptz, bigint, bigint),
    aos_cus.cost_breakdown(text, text, bigint, bigint, bigint, bigint, bigint, bigint, text, timestamptz, bigint, bigint),
    aos_cus.model_info(text, text), aos_cus.estimate_tokens(text, text), aos_cus.extract_usage(text, jsonb)
    TO aos_cus_admin, aos_cus_app, aos_cus_reader, aos_cus_worker;

-- Estimated input tokens of a call's input (a chat messages array or a string), the one place a pre-call count
-- is made: estimate_tokens() per string, plus the chat format's overhead (3 per message, 1 per name, 3 for the
-- reply). Non-text content parts (images, audio, files) are not counted. 22023 names a malformed element;
-- over 4 MiB of JSON text is 54000.
CREATE FUNCTION aos_cus.call_input_tokens(model text, input jsonb) RETURNS bigint
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    total bigint := 3;
    size bigint;
    m jsonb;
    i bigint;
    part jsonb;
    j bigint;
    kv record;
BEGIN
    IF call_input_tokens.input IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = '22004', MESSAGE = 'input must not be null';
    END IF;
    size := pg_catalog.octet_length(call_input_tokens.input::pg_catalog.text);
    IF size OPERATOR(pg_catalog.>) 4194304 THEN
        RAISE EXCEPTION USING ERRCODE = '54000',
            MESSAGE = pg_catalog.format('input is %s bytes of JSON, more than the limit of 4194304', size);
    END IF;
    IF pg_catalog.jsonb_typeof(call_input_tokens.input) OPERATOR(pg_catalog.=) 'string' THEN
        RETURN aos_cus_internal.text_tokens(call_input_tokens.input OPERATOR(pg_catalog.#>>) '{}'::pg_catalog.text[], call_input_tokens.model);
    END IF;
    IF pg_catalog.jsonb_typeof(call_input_tokens.input) OPERATOR(pg_catalog.<>) 'array'
       OR pg_catalog.jsonb_array_length(call_input_tokens.input) OPERATOR(pg_catalog.=) 0 THEN
        RAISE EXCEPTION USING ERRCODE = '22023',
            MESSAGE = 'input must be a string or a non-empty chat messages array';
    END IF;
    FOR m, i IN SELECT e.value, e.ord OPERATOR(pg_catalog.-) 1
                  FROM pg_catalog.jsonb_array_elements(call_input_tokens.input) WITH ORDINALITY AS e(value, ord) LOOP
        IF pg_catalog.jsonb_typeof(m) OPERATOR(pg_catalog.<>) 'object' THEN
            RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = pg_catalog.format('input[%s] must be a JSON object', i);
        END IF;
        IF pg_catalog.jsonb_typeof(m OPERATOR(pg_catalog.->) 'role') IS DISTINCT FROM 'string' THEN
            RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = pg_catalog.format('input[%s].role must be a string', i);
        END IF;
        total := total OPERATOR(pg_catalog.+) 3;
        FOR kv IN SELECT e.key, e.value FROM pg_catalog.jsonb_each(m) AS e(key, value) LOOP
            IF kv.key OPERATOR(pg_catalog.=) 'content' AND pg_catalog.jsonb_typeof(kv.value) OPERATOR(pg_catalog.=) 'array' THEN
                FOR part, j IN SELECT e.value, e.ord OPERATOR(pg_catalog.-) 1
                                 FROM pg_catalog.jsonb_array_elements(kv.value) WITH ORDINALITY AS e(value, ord) LOOP
                    IF pg_catalog.jsonb_typeof(part) OPERATOR(pg_catalog.<>) 'object' THEN
                        RAISE EXCEPTION USING ERRCODE = '22023',
                            MESSAGE = pg_catalog.format('input[%s].content[%s] must be a JSON object', i, j);
                    END IF;
                    IF part OPERATOR(pg_catalog.?) 'text' THEN
                        IF pg_catalog.jsonb_typeof(part OPERATOR(pg_catalog.->) 'text') OPERATOR(pg_catalog.<>) 'string' THEN
                            RAISE EXCEPTION USING ERRCODE = '22023',
                                MESSAGE = pg_catalog.format('input[%s].content[%s].text must be a string', i, j);
                        END IF;
                        total := total OPERATOR(pg_catalog.+)
                                 aos_cus_internal.text_tokens(part OPERATOR(pg_catalog.->>) 'text', call_input_tokens.model);
                    END IF;
                END LOOP;
            ELSIF kv.key OPERATOR(pg_catalog.=) 'content' AND pg_catalog.jsonb_typeof(kv.value) OPERATOR(pg_catalog.<>) 'string'
                  AND pg_catalog.jsonb_typeof(kv.value) OPERATOR(pg_catalog.<>) 'null' THEN
                RAISE EXCEPTION USING ERRCODE = '22023',
                    MESSAGE = pg_catalog.format('input[%s].content must be a string, an array of parts or null', i);
            ELSIF pg_catalog.jsonb_typeof(kv.value) OPERATOR(pg_catalog.=) 'string' THEN
                total := total OPERATOR(pg_catalog.+) aos_cus_internal.text_tokens(kv.value OPERATOR(pg_catalog.#>>) '{}'::pg_catalog.text[],
                                                                               call_input_tokens.model)
                         OPERATOR(pg_catalog.+) CASE WHEN kv.key OPERATOR(pg_catalog.=) 'name' THEN 1 ELSE 0 END;
            ELSIF pg_catalog.jsonb_typeof(kv.value) OPERATOR(pg_catalog.<>) 'null' THEN
                -- Tool calls and other structured members: their JSON text.
                total := total OPERATOR(pg_catalog.+) aos_cus_internal.text_tokens(kv.value::pg_catalog.text, call_input_tokens.model);
            END IF;
        END LOOP;
    END LOOP;
    RETURN total;
END
$$;
COMMENT ON FUNCTION aos_cus.call_input_tokens(text, jsonb) IS
    'input tokens of a chat messages array or a string plus the chat overhead: exact (count_tokens) for models tiktoken maps, estimate_tokens otherwise';

-- A call's size and cost before it is made, with the prices and limits in force at "at".
CREATE FUNCTION aos_cus.estimate_call(provider text, model text, input jsonb, max_output_tokens integer,
    service_tier text DEFAULT 'standard', at timestamptz DEFAULT pg_catalog.now(),
    OUT price_provider text, OUT canonical_model text, OUT input_tokens bigint, OUT worst_case_output_tokens bigint,
    OUT context_window integer, OUT exceeds_context_window boolean, OUT estimated_cost_microcents bigint,
    OUT worst_case_cost_microcents bigint, OUT reason text)
    LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    model_max integer;
BEGIN
    IF estimate_call.provider IS NULL OR estimate_call.model IS NULL OR estimate_call.service_tier IS NULL
       OR estimate_call.at IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = '22004', MESSAGE = 'provider, model, service_tier and at must not be null';
    END IF;
    IF estimate_call.max_output_tokens OPERATOR(pg_catalog.<=) 0 THEN
        RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'max_output_tokens must be positive';
    END IF;
    SELECT r.price_provider, r.canonical_model INTO estimate_call.price_provider, estimate_call.canonical_model
      FROM aos_cus.resolve_model(estimate_call.provider, estimate_call.model) r;
    estimate_call.input_tokens := aos_cus.call_input_tokens(estimate_call.model, estimate_call.input);
    IF estimate_call.canonical_model IS NULL THEN
        reason := pg_catalog.format('no price for model %L of provider %s', pg_catalog.left(estimate_call.model, 200),
                                    estimate_call.provider);
        worst_case_output_tokens := estimate_call.max_output_tokens;
        RETURN;
    END IF;
    -- Limits of the model's base row in force at "at".
    SELECT p.context_window, p.max_output_tokens INTO estimate_call.context_window, model_max
      FROM aos_cus.cus_model_prices p
     WHERE p.provider OPERATOR(pg_catalog.=) estimate_call.price_provider::aos_cus.provider
       AND p.model OPERATOR(pg_catalog.=) estimate_call.canonical_model
       AND p.effective_from OPERATOR(pg_catalog.<=) estimate_call.at
     ORDER BY p.min_prompt_tokens, p.effective_from DESC, p.id DESC
     LIMIT 1;
    worst_case_output_tokens := COALESCE(estimate_call.max_output_tokens, model_max,
        CASE WHEN estimate_call.context_window IS NOT NULL
             THEN GREATEST(estimate_call.context_window OPERATOR(pg_catalog.-) estimate_call.input_tokens, 0) END);
    exceeds_context_window := estimate_call.input_tokens OPERATOR(pg_catalog.+)
                              COALESCE(worst_case_output_tokens, 0) OPERATOR(pg_catalog.>) estimate_call.context_window;
    estimated_cost_microcents := aos_cus.cost_microcents(estimate_call.provider, estimate_call.model,
        estimate_call.input_tokens, 0, service_tier => estimate_call.service_tier, at => estimate_call.at);
    -- Worst case: every output token at the higher of the output and reasoning prices.
    worst_case_cost_microcents := CASE WHEN worst_case_output_tokens IS NOT NULL THEN GREATEST(
        aos_cus.cost_microcents(estimate_call.provider, estimate_call.model, estimate_call.input_tokens,
            worst_case_output_tokens, service_tier => estimate_call.service_tier, at => estimate_call.at),
        aos_cus.cost_microcents(estimate_call.provider, estimate_call.model, estimate_call.input_tokens,
            worst_case_output_tokens, reasoning_tokens => worst_case_output_tokens,
            service_tier => estimate_call.service_tier, at => estimate_call.at)) END;
    IF estimated_cost_microcents IS NULL THEN
        reason := pg_catalog.format('no price of model %s in force at %s UTC', estimate_call.canonical_model,
                                    (estimate_call.at AT TIME ZONE 'UTC')::pg_catalog.text);
    ELSIF worst_case_output_tokens IS NULL THEN
        reason := 'max_output_tokens not given and the model''s output limit and context window are unknown';
    END IF;
END
$$;
COMMENT ON FUNCTION aos_cus.estimate_call(text, text, jsonb, integer, text, timestamptz) IS
    'estimated input tokens, worst-case output tokens, estimated and worst-case cost and context window check of a call';

GRANT EXECUTE ON FUNCTION aos_cus.call_input_tokens(text, jsonb),
    aos_cus.estimate_call(text, text, jsonb, integer, text, timestamptz)
    TO aos_cus_admin, aos_cus_app, aos_cus_reader, aos_cus_worker;
