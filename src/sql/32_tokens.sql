-- Exact OpenAI token counts (issue 16): tiktoken's o200k_base and cl100k_base in C, ranks in share/extension.
CREATE FUNCTION aos_cus.count_tokens(input text, model text) RETURNS integer
    AS 'MODULE_PATHNAME', 'aos_cus_count_tokens'
    LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION aos_cus.count_tokens(text, text) IS
    'exact tokens of input for an OpenAI model or encoding (o200k_base, cl100k_base), as tiktoken counts them; NULL input gives NULL';

CREATE FUNCTION aos_cus.count_message_tokens(messages jsonb, model text) RETURNS integer
    AS 'MODULE_PATHNAME', 'aos_cus_count_message_tokens'
    LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION aos_cus.count_message_tokens(jsonb, text) IS
    'exact prompt tokens of a chat messages array for an OpenAI model: its strings, 3 per message, 1 per name, 3 for the reply';

CREATE FUNCTION aos_cus.token_encoding(model text) RETURNS text
    AS 'MODULE_PATHNAME', 'aos_cus_token_encoding'
    LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION aos_cus.token_encoding(text) IS
    'the encoding count_tokens uses for model (o200k_base or cl100k_base, as tiktoken maps OpenAI models), NULL for any other model';

-- The tokens of one text for a model: exact where tiktoken maps the model, estimated otherwise.
CREATE FUNCTION aos_cus_internal.text_tokens(input text, model text) RETURNS bigint
    LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
    RETURN CASE WHEN aos_cus.token_encoding(model) IS NULL THEN aos_cus.estimate_tokens(input, model)
                ELSE aos_cus.count_tokens(input, model) END;
COMMENT ON FUNCTION aos_cus_internal.text_tokens(text, text) IS
    'count_tokens for models tiktoken maps, estimate_tokens for any other (call_input_tokens counts with it)';

-- Pure functions: every aos_cus role may call them (99_privileges.sql revokes PUBLIC).
GRANT EXECUTE ON FUNCTION aos_cus.count_tokens(text, text), aos_cus.count_message_tokens(jsonb, text),
    aos_cus.token_encoding(text), aos_cus_internal.text_tokens(text, text)
    TO aos_cus_admin, aos_cus_app, aos_cus_reader, aos_cus_worker;
