-- Call policies (issue 14, requirement 5): model globs, request caps, concurrency leases, tenant default; each
-- refusal reason, the decision's scope and dimension, and validation. Tenants are random (shared memory outlives ROLLBACK).
BEGIN;
SELECT plan(24);

SELECT gen_random_uuid() AS t, gen_random_uuid() AS im, gen_random_uuid() AS ic, gen_random_uuid() AS ik,
       gen_random_uuid() AS iq, gen_random_uuid() AS id, gen_random_uuid() AS ie \gset
INSERT INTO aos_cus.cus_integrations (tenant_id, id, name, provider, status)
VALUES (:'t', :'im', 'models', 'openai', 'enabled'), (:'t', :'ic', 'caps', 'openai', 'enabled'),
       (:'t', :'iq', 'concurrency', 'openai', 'enabled'), (:'t', :'ie', 'expiry', 'openai', 'enabled'),
       (:'t', :'id', 'default', 'openai', 'enabled');

-- Validation: precise SQLSTATEs naming the field.
SELECT throws_like($$SELECT aos_cus.check_policy('{"models_allow": ["gpt-[4"]}')$$,
    'policy.models_allow[0] "gpt-[4" is not a valid glob%', 'an unclosed [ class is refused, naming the element');
SELECT throws_ok($$SELECT aos_cus.check_policy('{"max_cost_microcents_per_request": -1}')$$, '22003', NULL,
    'a negative cost cap is refused');
SELECT throws_ok($$SELECT aos_cus.check_policy('{"max_tokens_per_request": 1.5}')$$, '22023', NULL,
    'a fractional cap is refused');
SELECT throws_ok($$SELECT aos_cus.check_policy('{"max_concurrent": 0}')$$, '22003', NULL, 'max_concurrent below 1 is refused');
SELECT throws_ok($$SELECT aos_cus.check_policy('{"models": []}')$$, '22023', 'policy has an unknown key "models"',
    'an unknown key is refused');
SELECT throws_ok($$SELECT aos_cus.check_policy('[1]')$$, '22023', 'policy must be a JSON object', 'a non-object is refused');
SELECT throws_ok(format($$SELECT aos_cus.set_policy(%L, %L, '{"models_deny": "x"}')$$, :'t', :'im'), '22023', NULL,
    'set_policy validates');

SELECT lives_ok(format($$SELECT aos_cus.set_policy(%L, %L, '{"models_allow": ["gpt-4o*", "claude-*"], "models_deny": ["*-preview"], "unpriced": "allow"}'),
                               aos_cus.set_policy(%L, %L, '{"max_cost_microcents_per_request": 100, "max_tokens_per_request": 50}'),
                               aos_cus.set_policy(%L, %L, '{"max_concurrent": 2}'),
                               aos_cus.set_policy(%L, %L, '{"max_concurrent": 1}'),
                               aos_cus.set_policy(%L, NULL, '{"max_tokens_per_request": 10}')$$,
                       :'t', :'im', :'t', :'ic', :'t', :'iq', :'t', :'ie', :'t'), 'policies set');

-- model_not_allowed
SELECT is((SELECT (decision, reason, scope, dimension)::text FROM aos_cus.check(:'t', :'im', 1, 1, NULL, NULL, NULL, 'mistral-large')),
    format('(blocked,model_not_allowed,integration:%s,model)', :'im'), 'a model outside the allow list: model_not_allowed');
SELECT is((aos_cus.check(:'t', :'im', 1, 1, NULL, NULL, NULL, 'gpt-4o-mini')).decision, 'allowed', 'gpt-4o* admits gpt-4o-mini');
SELECT is((aos_cus.check(:'t', :'im', 1, 1, NULL, NULL, NULL, 'Claude-3-5-Sonnet')).decision, 'allowed', 'claude-* admits, case-insensitively');
SELECT is((aos_cus.check(:'t', :'im', 1, 1, NULL, NULL, NULL, 'gpt-4o-realtime-preview')).reason, 'model_not_allowed',
    'the deny list wins over the allow list');
SELECT is((aos_cus.check(:'t', :'im', 1, 1)).reason, 'model_not_allowed', 'with an allow list, a call naming no model is refused');

-- request_cost_cap, request_token_cap
SELECT is((SELECT (reason, dimension)::text FROM aos_cus.check(:'t', :'ic', 101, 1)), '(request_cost_cap,request_cost)',
    'an estimate over the cost cap: request_cost_cap');
SELECT is((aos_cus.check(:'t', :'ic', 100, 50)).decision, 'allowed', 'estimates at the caps are admitted');
SELECT is((SELECT (reason, dimension)::text FROM aos_cus.check(:'t', :'ic', 1, 51)), '(request_token_cap,request_tokens)',
    'an estimate over the token cap: request_token_cap');

-- concurrency_limit: a lease per call_id (its reservation), released at ingest (test/t/076) or when its TTL passes.
SELECT is((aos_cus.check(:'t', :'iq', 1, 1, 'q1')).decision, 'allowed', 'first in-flight call');
SELECT is((aos_cus.check(:'t', :'iq', 1, 1, 'q2')).decision, 'allowed', 'second in-flight call');
SELECT is((SELECT (reason, dimension)::text FROM aos_cus.check(:'t', :'iq', 1, 1, 'q3')), '(concurrency_limit,concurrency)',
    'a third while two are in flight: concurrency_limit');
SELECT is((aos_cus.check(:'t', :'iq', 1, 1, 'q1')).decision, 'allowed', 'a repeated call_id keeps its own lease');
SET LOCAL aos_cus.reservation_ttl = '200ms';
SELECT is((aos_cus.check(:'t', :'ie', 1, 1, 'e1')).decision, 'allowed', 'max_concurrent 1: one in flight');
SELECT is((aos_cus.check(:'t', :'ie', 1, 1, 'e2')).reason, 'concurrency_limit', 'the next waits');
SELECT pg_sleep(0.3);
SELECT is((aos_cus.check(:'t', :'ie', 1, 1, 'e2')).decision, 'allowed', 'a crashed caller''s lease ends with its TTL');

-- The tenant default applies to integrations without their own policy.
SELECT is((aos_cus.check(:'t', :'id', 1, 11)).reason, 'request_token_cap', 'the tenant default caps tokens at 10');

SELECT * FROM finish();
ROLLBACK;
