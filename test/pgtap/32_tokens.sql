-- Exact OpenAI token counts: count_tokens, count_message_tokens, the model table, bad input, grants.
-- (The comparison with npm tiktoken on 20,000+ strings is clients/node/test/tokens.test.ts.)
\set cookbook `cat test/fixtures/estimate/openai_cookbook_messages.json`
BEGIN;
SELECT plan(41);

-- Values from npm tiktoken 1.0.22.
SELECT is(aos_cus.count_tokens('hello world', 'gpt-4o'), 2, 'o200k_base: hello world');
SELECT is(aos_cus.count_tokens(E'I''m sure they''ll say: "It''s 12345678 o''clock"!\n\n\tdone  ', 'gpt-4o'), 17, 'o200k_base: contractions, digits, whitespace');
SELECT is(aos_cus.count_tokens(E'I''m sure they''ll say: "It''s 12345678 o''clock"!\n\n\tdone  ', 'gpt-4'), 20, 'cl100k_base: the same text');
SELECT is(aos_cus.count_tokens('日本語のテキストです。', 'o200k_base'), 8, 'o200k_base by encoding name: Japanese');
SELECT is(aos_cus.count_tokens('日本語のテキストです。', 'cl100k_base'), 10, 'cl100k_base by encoding name: Japanese');
SELECT is(aos_cus.count_tokens('👨‍👩‍👧‍👦 👍🏽', 'gpt-4o'), 14, 'o200k_base: ZWJ family and a skin tone');
SELECT is(aos_cus.count_tokens('<|endoftext|>', 'gpt-4o'), 7, 'special tokens count as ordinary text');
SELECT is(aos_cus.count_tokens('', 'gpt-4o'), 0, 'empty input: 0');
SELECT is(aos_cus.count_tokens(NULL, 'gpt-4o'), NULL::integer, 'NULL input: NULL');

-- tiktoken's model table: exact names, then prefixes.
SELECT is(aos_cus.count_tokens('日本語のテキストです。', m), 8, 'o200k_base model: ' || m)
  FROM unnest(ARRAY['gpt-4o-mini-2024-07-18', 'o1', 'o3-mini', 'o4-mini', 'gpt-4.1-nano', 'gpt-5-mini', 'chatgpt-4o-latest', 'ft:gpt-4o-mini:acme::x1']) m;
SELECT is(aos_cus.count_tokens('日本語のテキストです。', m), 10, 'cl100k_base model: ' || m)
  FROM unnest(ARRAY['gpt-4-turbo', 'gpt-3.5-turbo-0125', 'gpt-35-turbo', 'text-embedding-3-small']) m;
SELECT is(aos_cus.token_encoding('gpt-4o-2024-08-06'), 'o200k_base', 'token_encoding: gpt-4o-2024-08-06');
SELECT is(aos_cus.token_encoding('gpt-3.5-turbo'), 'cl100k_base', 'token_encoding: gpt-3.5-turbo');
SELECT is(aos_cus.token_encoding('my-azure-deployment'), NULL, 'token_encoding: NULL for a name tiktoken does not map');
SELECT throws_ok($$SELECT aos_cus.token_encoding(NULL)$$, '22004', 'model must not be null', 'token_encoding: NULL model: 22004');

-- The OpenAI API counted the cookbook's request as 124 prompt tokens (gpt-4o) and 129 (gpt-4-0613).
SELECT is(aos_cus.count_message_tokens((:'cookbook')::jsonb->'messages', r->>'model'), (r->'usage'->>'prompt_tokens')::integer,
          'count_message_tokens equals the API''s prompt_tokens for ' || (r->>'model'))
  FROM jsonb_array_elements((:'cookbook')::jsonb->'responses') r;
SELECT is(aos_cus.count_message_tokens('[]', 'gpt-4o'), 3, 'no messages: the reply priming only');
SELECT is(aos_cus.count_message_tokens('[{"role": "user", "name": "bob", "content": ""}]', 'gpt-4o'),
          3 + 1 + 1 + 1 + 3, 'one message: role, name (+1), empty content, 3 per message, 3 for the reply');
SELECT is(aos_cus.count_message_tokens(NULL, 'gpt-4o'), NULL::integer, 'NULL messages: NULL');

-- Bad input: each names the argument or element.
SELECT throws_ok($$SELECT aos_cus.count_tokens('x', 'claude-sonnet-4-5')$$, '22023',
    'model "claude-sonnet-4-5" has no exact tokenizer', 'another provider''s model: 22023 naming it');
SELECT throws_ok($$SELECT aos_cus.count_tokens('x', 'text-davinci-003')$$, '22023', NULL, 'an encoding other than o200k_base and cl100k_base: 22023');
SELECT throws_ok($$SELECT aos_cus.count_tokens('x', NULL)$$, '22004', 'model must not be null', 'NULL model: 22004');
SELECT throws_ok($$SELECT aos_cus.count_message_tokens('[]', NULL)$$, '22004', 'model must not be null', 'messages, NULL model: 22004');
SELECT throws_ok($$SELECT aos_cus.count_tokens(repeat('a', 8 * 1024 * 1024 + 1), 'gpt-4o')$$, '54000',
    'input is longer than 8388608 bytes', 'input over 8 MiB: 54000');
SELECT throws_ok($$SELECT aos_cus.count_message_tokens(jsonb_build_array(jsonb_build_object('content', repeat('a', 8 * 1024 * 1024))), 'gpt-4o')$$,
    '54000', 'messages is longer than 8388608 bytes', 'messages over 8 MiB: 54000');
SELECT throws_ok($$SELECT aos_cus.count_message_tokens('{"role": "user"}', 'gpt-4o')$$, '22023', 'messages must be a JSON array', 'an object: 22023');
SELECT throws_ok($$SELECT aos_cus.count_message_tokens('[{"role": "user", "content": "x"}, "hi"]', 'gpt-4o')$$, '22023',
    'messages[1] must be an object', 'a non-object message: 22023 naming it');
SELECT throws_ok($$SELECT aos_cus.count_message_tokens('[{"role": "user", "content": "x"}, {"role": "user", "content": "x"}, {"role": "user", "content": [{"type": "text", "text": "x"}]}]', 'gpt-4o')$$,
    '22023', 'messages[2].content must be a string', 'content parts: 22023 naming the element');

-- Every aos_cus role may call them; PUBLIC may not.
CREATE ROLE tap_tokens_nobody;
SET LOCAL ROLE aos_cus_reader;
SELECT is(aos_cus.count_tokens('hello world', aos_cus.token_encoding('gpt-4o')) + aos_cus.count_message_tokens('[]', 'gpt-4o'), 5, 'aos_cus_reader may count');
RESET ROLE;
SET LOCAL ROLE tap_tokens_nobody;
SELECT throws_ok($$SELECT aos_cus.count_tokens('x', 'gpt-4o')$$, '42501', NULL, 'a role outside aos_cus may not count');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
