-- cus_llm_usage_row_check (issue 19): the ten SQL CHECK expressions of 0.1.0 became one C function, because
-- PostgreSQL reads and plans CHECK expressions again for every INSERT statement. It must refuse exactly what they
-- refused: each bound at and past its edge, an oracle of the old expressions over many rows, UPDATE, and a direct
-- INSERT by aos_cus_app (which needs EXECUTE on the function). Everything is rolled back.
BEGIN;
SELECT plan(35);
\set t '''64646464-0000-4000-8000-000000000001'''
\set i '''64646464-0000-4000-8000-0000000000a1'''
INSERT INTO aos_cus.cus_integrations (tenant_id, id, name, provider) VALUES (:t, :i, 'tap-row-check', 'openai');
CREATE ROLE tap_row_app IN ROLE aos_cus_app;

-- One row with one column set (the rest valid); returns 'ok', or the SQLSTATE and the error's detail.
CREATE FUNCTION pg_temp.try(col text, val text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE d text; s text;
    cols text[] := ARRAY['tenant_id', 'integration_id', 'call_id', 'provider', 'model', 'started_at', 'cost_microcents'];
    vals text[] := ARRAY[quote_literal('64646464-0000-4000-8000-000000000001'), quote_literal('64646464-0000-4000-8000-0000000000a1'),
                         quote_literal('rc-' || gen_random_uuid()), quote_literal('openai'), quote_literal('gpt-4o'), 'now()', '0'];
    n int := array_position(cols, col);
BEGIN
    IF n IS NULL THEN
        cols := cols || col;
        vals := vals || val;
    ELSE
        vals[n] := val;
    END IF;
    EXECUTE format('INSERT INTO aos_cus.cus_llm_usage (%s) VALUES (%s)', array_to_string(cols, ', '), array_to_string(vals, ', '));
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS s = RETURNED_SQLSTATE, d = PG_EXCEPTION_DETAIL;
    RETURN s || ': ' || d;
END $$;

SELECT is((SELECT array_agg(conname::text) FROM pg_constraint WHERE conrelid = 'aos_cus.cus_llm_usage'::regclass AND contype = 'c'),
          ARRAY['cus_llm_usage_row_check'], 'cus_llm_usage has one CHECK constraint, cus_llm_usage_row_check');
SELECT throws_ok($$INSERT INTO aos_cus.cus_llm_usage (tenant_id, integration_id, call_id, provider, model, started_at)
                   VALUES ('64646464-0000-4000-8000-000000000001', '64646464-0000-4000-8000-0000000000a1', '', 'openai', 'gpt-4o', now())$$,
                 '23514', 'new row for relation "cus_llm_usage" violates check constraint "cus_llm_usage_row_check"',
                 'a violation is 23514 naming the constraint');

-- Each bound at its edge (kept) and one past it (refused, the detail naming the column).
SELECT is(pg_temp.try('call_id', 'repeat(''é'', 255)'), 'ok', 'call_id of 255 characters (510 bytes) is kept');
SELECT is(pg_temp.try('call_id', 'repeat(''é'', 256)'), '23514: call_id has 256 characters; it must have 1 to 255.', 'call_id of 256 characters is refused');
SELECT is(pg_temp.try('call_id', ''''''), '23514: call_id has 0 characters; it must have 1 to 255.', 'an empty call_id is refused');
SELECT is(pg_temp.try('model', 'repeat(''m'', 200)'), 'ok', 'model of 200 characters is kept');
SELECT is(pg_temp.try('model', 'repeat(''m'', 201)'), '23514: model has 201 characters; it must have 1 to 200.', 'model of 201 characters is refused');
SELECT is(pg_temp.try('model', ''''''), '23514: model has 0 characters; it must have 1 to 200.', 'an empty model is refused');
SELECT is(pg_temp.try('status', '''blocked'''), 'ok', 'status blocked is kept');
SELECT is(pg_temp.try('status', '''ok'''), '23514: status "ok" is not one of success, error, timeout, cancelled, blocked.', 'an unknown status is refused');
SELECT is(pg_temp.try('error_code', 'repeat(''x'', 200)'), 'ok', 'error_code of 200 characters is kept');
SELECT is(pg_temp.try('error_code', 'repeat(''x'', 201)'), '23514: error_code has 201 characters; it must have 0 to 200.', 'error_code of 201 characters is refused');
SELECT is(pg_temp.try('subject', 'repeat(''u'', 255)'), 'ok', 'subject of 255 bytes is kept');
SELECT is(pg_temp.try('subject', 'repeat(''é'', 128)'), '23514: subject has 256 bytes; it must have 1 to 255.', 'subject of 256 bytes (128 characters) is refused');
SELECT is(pg_temp.try('subject', ''''''), '23514: subject has 0 bytes; it must have 1 to 255.', 'an empty subject is refused');
SELECT is(pg_temp.try('latency_ms', '0'), 'ok', 'latency_ms 0 is kept');
SELECT is(pg_temp.try('latency_ms', '-1'), '23514: latency_ms is -1; it must not be negative.', 'a negative latency_ms is refused');
SELECT is(pg_temp.try('metadata', '''[]'''), '23514: metadata must be a JSON object.', 'metadata that is an array is refused');
SELECT is(pg_temp.try('metadata', 'jsonb_build_object(''k'', repeat(''a'', 16367))'), 'ok', 'metadata of 16,384 bytes is kept');
SELECT is(pg_temp.try('metadata', 'jsonb_build_object(''k'', repeat(''a'', 16368))'), '23514: metadata takes 16385 bytes; at most 16384 are allowed.', 'metadata of 16,385 bytes is refused');
SELECT is(pg_temp.try('tags', '''"x"'''), '23514: tags must be a JSON object.', 'tags that are a string are refused');
SELECT is(pg_temp.try('tags', 'jsonb_build_object(''k'', repeat(''a'', 8176))'), '23514: tags takes 8193 bytes; at most 8192 are allowed.', 'tags of 8,193 bytes are refused');
SELECT is(pg_temp.try('output_audio_tokens', '1000000000000'), 'ok', 'a token count of 10^12 is kept');
SELECT is(pg_temp.try('cache_write_1h_tokens', '1000000000001'), '23514: a token count is 1000000000001; each must be at most 1000000000000.', 'a token count above 10^12 is refused');
SELECT is(pg_temp.try('reasoning_tokens', '1'), '23514: reasoning_tokens (1) exceeds output_tokens (0).', 'reasoning_tokens above output_tokens is refused');
SELECT is(pg_temp.try('error_code', 'NULL'), 'ok', 'NULL passes, as in a SQL CHECK');

-- UPDATE is checked as INSERT is.
SELECT throws_ok($$UPDATE aos_cus.cus_llm_usage SET latency_ms = -5 WHERE tenant_id = '64646464-0000-4000-8000-000000000001'$$,
                 '23514', NULL, 'an UPDATE past a bound is refused');

-- Oracle: the ten expressions of 0.1.0 over 3,000 rows of edge values; the function refuses exactly the rows they fail.
-- The jsonb values are built in memory by both sides (as an INSERT's VALUES has them), not read back compressed.
CREATE FUNCTION pg_temp.obj(kind int, edge int) RETURNS jsonb LANGUAGE sql AS $$
SELECT (ARRAY['{}', '[]', '"s"', NULL, jsonb_build_object('k', repeat('a', edge)), jsonb_build_object('k', repeat('a', edge + 1))])[1 + kind]::jsonb
$$;
CREATE TEMP TABLE cand AS
SELECT g,
       (ARRAY['', 'c', repeat('é', 255), repeat('é', 256), repeat('c', 255)])[1 + g % 5] AS call_id,
       (ARRAY['gpt-4o', '', repeat('m', 200), repeat('ü', 201)])[1 + g / 5 % 4] AS model,
       (ARRAY['success', 'error', 'timeout', 'cancelled', 'blocked', 'Success', 'ok'])[1 + g / 20 % 7] AS status,
       (ARRAY[NULL, '', repeat('e', 200), repeat('ß', 201)])[1 + g / 140 % 4] AS error_code,
       (ARRAY[NULL, '', repeat('s', 255), repeat('é', 128), repeat('é', 127)])[1 + g % 7 % 5] AS subject,
       (ARRAY[NULL, 0, -1, 2147483647])[1 + g % 11 % 4] AS latency_ms,
       g % 13 % 6 AS metadata_kind,
       (ARRAY[3, 0, 1, 4, 5])[1 + g % 17 % 5] AS tags_kind,
       (ARRAY[0, 1, 1000000000000, 1000000000001])[1 + g % 19 % 4]::bigint AS output_tokens,
       (ARRAY[0, 1, 1000000000000, 1000000000001])[1 + g % 23 % 4]::bigint AS reasoning_tokens,
       (ARRAY[0, 1000000000000, 1000000000001])[1 + g % 29 % 3]::bigint AS input_tokens
  FROM generate_series(0, 2999) g;
CREATE FUNCTION pg_temp.refused(c cand) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    PERFORM aos_cus_internal.usage_row_check(c.call_id, c.model, c.status, c.error_code, c.subject, c.latency_ms,
        pg_temp.obj(c.metadata_kind, 16367), pg_temp.obj(c.tags_kind, 8175), c.input_tokens::aos_cus.token_count, 0, 0, 0,
        c.output_tokens::aos_cus.token_count, c.reasoning_tokens::aos_cus.token_count, 0, 0);
    RETURN false;
EXCEPTION WHEN check_violation THEN
    RETURN true;
END $$;
CREATE FUNCTION pg_temp.sql_refused(c cand) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE metadata jsonb := pg_temp.obj(c.metadata_kind, 16367); tags jsonb := pg_temp.obj(c.tags_kind, 8175);
BEGIN
    RETURN NOT coalesce((length(c.call_id) BETWEEN 1 AND 255) IS NOT FALSE
           AND (length(c.model) BETWEEN 1 AND 200) IS NOT FALSE
           AND (c.latency_ms >= 0) IS NOT FALSE
           AND (c.status IN ('success', 'error', 'timeout', 'cancelled', 'blocked')) IS NOT FALSE
           AND (length(c.error_code) <= 200) IS NOT FALSE
           AND (jsonb_typeof(metadata) = 'object' AND pg_column_size(metadata) <= 16384) IS NOT FALSE
           AND (octet_length(c.subject) BETWEEN 1 AND 255) IS NOT FALSE
           AND (jsonb_typeof(tags) = 'object' AND pg_column_size(tags) <= 8192) IS NOT FALSE
           AND (c.reasoning_tokens <= c.output_tokens) IS NOT FALSE
           AND (GREATEST(c.input_tokens, c.output_tokens, c.reasoning_tokens) <= 1000000000000) IS NOT FALSE, true);
END $$;
CREATE TEMP TABLE verdicts AS SELECT g, pg_temp.refused(c) AS ours, pg_temp.sql_refused(c) AS sql FROM cand c;
SELECT is((SELECT count(*) FROM verdicts WHERE ours IS DISTINCT FROM sql), 0::bigint,
          'the function refuses exactly the rows the ten SQL expressions refuse');
SELECT cmp_ok((SELECT count(*) FROM verdicts WHERE ours), '>', 1000::bigint, 'the oracle refuses many rows');
SELECT cmp_ok((SELECT count(*) FROM verdicts WHERE NOT ours), '>', 20::bigint, 'and keeps some');

-- A stored value is measured as stored (pg_column_size): compressed metadata read back from a table passes.
CREATE TEMP TABLE big (m jsonb);
INSERT INTO big SELECT jsonb_build_object('k', repeat('a', 20000));
SELECT cmp_ok((SELECT pg_column_size(m) FROM big), '<=', 16384, 'the stored metadata is compressed below 16 kB');
SELECT is((SELECT pg_temp.try('metadata', '(SELECT m FROM pg_temp.big)')), 'ok',
          'metadata compressed below 16 kB passes, as pg_column_size measured it');

-- aos_cus_app inserts directly (EXECUTE on the function); PUBLIC may not call it.
SET aos_cus.tenant_id = '64646464-0000-4000-8000-000000000001';
SET ROLE tap_row_app;
SELECT lives_ok($$INSERT INTO aos_cus.cus_llm_usage (tenant_id, integration_id, call_id, provider, model, started_at, latency_ms)
                  VALUES ('64646464-0000-4000-8000-000000000001', '64646464-0000-4000-8000-0000000000a1', 'rc-app', 'openai', 'gpt-4o', now(), 5)$$,
                'aos_cus_app inserts a row directly through the check');
SELECT throws_ok($$INSERT INTO aos_cus.cus_llm_usage (tenant_id, integration_id, call_id, provider, model, started_at, latency_ms)
                   VALUES ('64646464-0000-4000-8000-000000000001', '64646464-0000-4000-8000-0000000000a1', 'rc-app2', 'openai', 'gpt-4o', now(), -5)$$,
                 '23514', NULL, 'and is refused past a bound');
RESET ROLE;
RESET aos_cus.tenant_id;
SELECT ok(NOT has_function_privilege('public', 'aos_cus_internal.usage_row_check(text, text, text, text, text, integer, jsonb, jsonb,
    aos_cus.token_count, aos_cus.token_count, aos_cus.token_count, aos_cus.token_count, aos_cus.token_count,
    aos_cus.token_count, aos_cus.token_count, aos_cus.token_count)', 'EXECUTE'), 'PUBLIC cannot execute usage_row_check');

SELECT * FROM finish();
ROLLBACK;
