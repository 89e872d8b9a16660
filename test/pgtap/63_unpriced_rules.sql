-- Issue 21 (4): the unpriced rule of a policy (set_policy, per tenant default and per integration): block (the
-- default: check() naming an unpriced model is blocked with unpriced_model), fallback_price (ingest charges the
-- fallback prices, the row keeps its reason), allow (admitted, charged nothing, counted); validation; and
-- reprice_usage() settling the difference into enforcement. Commits (settlement happens at commit), so it runs
-- without an enclosing transaction and removes its rows at the end. Tenants are random (shared memory outlives them).
\set ON_ERROR_STOP 1
SELECT plan(42);

SELECT gen_random_uuid() AS t, gen_random_uuid() AS t2, gen_random_uuid() AS ib, gen_random_uuid() AS io,
       gen_random_uuid() AS i_f, gen_random_uuid() AS ia, gen_random_uuid() AS ic \gset
INSERT INTO aos_cus.cus_integrations (tenant_id, id, name, provider, status, budget_microcents)
VALUES (:'t2', :'ib', 'tap-block', 'openai', 'enabled', 100000000),
       (:'t2', :'ic', 'tap-custom', 'custom', 'enabled', 100000000),
       (:'t', :'io', 'tap-override', 'openai', 'enabled', 100000000),
       (:'t', :'i_f', 'tap-fallback', 'openai', 'enabled', 100000000),
       (:'t', :'ia', 'tap-allow', 'openai', 'enabled', 100000000);
CREATE TEMP TABLE before AS
    SELECT value FROM aos_cus.stat_counters() WHERE name = 'ingest_unpriced';

-- Validation: precise SQLSTATEs naming the field.
SELECT throws_ok($$SELECT aos_cus.check_policy('{"unpriced": "charge"}')$$, '22023',
    'policy.unpriced must be one of block, fallback_price, allow, not "charge"', 'an unknown rule is refused, quoted');
SELECT throws_ok($$SELECT aos_cus.check_policy('{"unpriced": true}')$$, '22023',
    'policy.unpriced must be one of block, fallback_price, allow, as a string', 'a rule that is not a string is refused');
SELECT throws_ok($$SELECT aos_cus.check_policy('{"unpriced": "fallback_price", "fallback_input_price": 1}')$$, '22023',
    'policy.unpriced "fallback_price" needs policy.fallback_output_price', 'fallback_price without its output price is refused');
SELECT throws_ok($$SELECT aos_cus.check_policy('{"unpriced": "allow", "fallback_input_price": 1, "fallback_output_price": 1}')$$,
    '22023', 'policy.fallback_input_price is used only with policy.unpriced "fallback_price", not "allow"',
    'fallback prices under another rule are refused');
SELECT throws_ok($$SELECT aos_cus.check_policy('{"unpriced": "fallback_price", "fallback_input_price": -1, "fallback_output_price": 1}')$$,
    '22003', NULL, 'a negative fallback price is refused');
SELECT throws_ok($$SELECT aos_cus.check_policy('{"unpriced": "fallback_price", "fallback_input_price": 1.5, "fallback_output_price": 1}')$$,
    '22023', 'policy.fallback_input_price must be an integer, not 1.5', 'a fractional fallback price is refused');
SELECT throws_ok(format($$SELECT aos_cus.set_policy(%L, %L, '{"unpriced": "free"}')$$, :'t', :'i_f'), '22023', NULL,
    'set_policy validates the rule');

-- Tenant t: allow by default, fallback prices on one integration, and an integration whose own policy has no rule
-- (its policy replaces the tenant default as a whole: block). Tenant t2 has no policy at all (block).
SELECT lives_ok(format($$SELECT aos_cus.set_policy(%L, NULL, '{"unpriced": "allow"}'),
                               aos_cus.set_policy(%L, %L, '{"unpriced": "fallback_price", "fallback_input_price": 1000000, "fallback_output_price": 4000000}'),
                               aos_cus.set_policy(%L, %L, '{"max_concurrent": 10}')$$,
                       :'t', :'t', :'i_f', :'t', :'io'), 'policies set');

-- block
SELECT is((SELECT (decision, reason, scope, dimension)::text FROM aos_cus.check(:'t2', :'ib', 0, 10, NULL, NULL, NULL, 'tap-nomodel-21')),
    format('(blocked,unpriced_model,integration:%s,model)', :'ib'), 'no policy: check() naming an unpriced model is blocked, unpriced_model');
SELECT is((SELECT reason FROM aos_cus.cus_enforcement_log WHERE tenant_id = :'t2' ORDER BY id DESC LIMIT 1), 'unpriced_model',
    'the enforcement log keeps the unpriced_model decision');
-- The issue's flow: the estimate from estimate_call(), NULL for an unpriced model, no longer raises 22004.
SELECT is((SELECT (c.decision, c.reason)::text FROM aos_cus.estimate_call('openai', 'tap-nomodel-21', '"Hello"', 100) e,
                  aos_cus.check(:'t2', :'ib', e.worst_case_cost_microcents, e.input_tokens + e.worst_case_output_tokens,
                                NULL, NULL, NULL, 'tap-nomodel-21') c), '(blocked,unpriced_model)',
    'check() with estimate_call''s NULL cost of an unpriced model: blocked, unpriced_model');
SELECT is((aos_cus.check(:'t2', :'ib', 0, 10, NULL, NULL, NULL, 'gpt-4o')).decision, 'allowed', 'a priced model is admitted');
SELECT is((aos_cus.check(:'t2', :'ib', 0, 10)).decision, 'allowed', 'a call naming no model is admitted');
SELECT is((aos_cus.check(:'t2', :'ic', 0, 10, NULL, NULL, NULL, 'claude-sonnet-4-5')).decision, 'allowed',
    'a custom integration: a model any provider prices is admitted');
SELECT is((aos_cus.check(:'t2', :'ic', 0, 10, NULL, NULL, NULL, 'tap-nomodel-21')).reason, 'unpriced_model',
    'a custom integration: a model no provider prices is blocked');
SELECT is((aos_cus.check(:'t', :'io', 0, 10, NULL, NULL, NULL, 'tap-nomodel-21')).reason, 'unpriced_model',
    'an integration''s own policy without a rule blocks (it replaces the tenant default)');
SELECT is((SELECT status || '/' || coalesce(cost_microcents::text, 'null') FROM aos_cus.ingest_usage(:'t2',
          jsonb_build_object('integration_id', :'ib', 'call_id', 'tap-rule-b', 'provider', 'openai', 'model', 'tap-nomodel-21',
                             'input_tokens', 1000000, 'output_tokens', 500000, 'started_at', now()))),
          'inserted/null', 'block: ingest keeps the row, cost NULL');

-- fallback_price
SELECT is((aos_cus.check(:'t', :'i_f', 0, 10, NULL, NULL, NULL, 'tap-nomodel-21')).decision, 'allowed', 'fallback_price: check() admits');
SELECT is((SELECT c.decision FROM aos_cus.estimate_call('openai', 'tap-nomodel-21', '"Hello"', 100) e,
                  aos_cus.check(:'t', :'i_f', e.worst_case_cost_microcents, e.input_tokens + e.worst_case_output_tokens,
                                NULL, NULL, NULL, 'tap-nomodel-21') c), 'allowed',
    'fallback_price: the same flow is admitted on a derived estimate');
SELECT is((SELECT status || '/' || coalesce(cost_microcents::text, 'null') FROM aos_cus.ingest_usage(:'t',
          jsonb_build_object('integration_id', :'i_f', 'call_id', 'tap-rule-f1', 'provider', 'openai', 'model', 'tap-nomodel-21',
                             'input_tokens', 1000000, 'output_tokens', 500000, 'started_at', now()))),
          'inserted/3000000', 'fallback_price: ingest charges 1M input at 1000000 and 0.5M output at 4000000 per 1M');
SELECT is((SELECT unpriced_reason FROM aos_cus.cus_llm_usage WHERE tenant_id = :'t' AND call_id = 'tap-rule-f1'),
          'no price in force at started_at for model ''tap-nomodel-21'' of provider openai, service tier standard',
          'the fallback-charged row keeps its reason');
SELECT is((SELECT cost_microcents::text || ' ' || error FROM aos_cus.ingest_usage_batch(:'t', jsonb_build_array(jsonb_build_object(
          'integration_id', :'i_f', 'call_id', 'tap-rule-f2', 'provider', 'openai', 'model', 'tap-nomodel-21',
          'output_tokens', 1000000, 'started_at', now())))),
          '4000000 unpriced: no price in force at started_at for model ''tap-nomodel-21'' of provider openai, service tier standard (charged at the fallback prices of its policy)',
          'ingest_usage_batch: the fallback cost, and the detail says so');
SELECT is((SELECT spent_microcents FROM aos_cus.current_usage(:'t', :'i_f')), 7000000::bigint,
          'fallback_price: enforcement counts the fallback spend');
SELECT is((aos_cus.check(:'t', :'i_f', 0, 0)).budget_used_microcents, 7000000::bigint, 'check() decides on it');
-- A NULL estimate with a model is derived: estimated_tokens as output tokens at the price, else the fallback.
SELECT is((SELECT estimate FROM aos_cus.explain_check(:'t', :'i_f', NULL, 1000000, NULL, NULL, NULL, 'tap-nomodel-21')
            WHERE dimension = 'budget'), 4000000::bigint, 'fallback_price: check() derives its estimate at fallback_output_price');
SELECT is((SELECT estimate FROM aos_cus.explain_check(:'t', :'i_f', NULL, 1000, NULL, NULL, NULL, 'gpt-4o')
            WHERE dimension = 'budget'), 1000000::bigint, 'a priced model: at its output price');
SELECT is((SELECT estimate FROM aos_cus.explain_check(:'t', :'ia', NULL, 1000000, NULL, NULL, NULL, 'tap-nomodel-21')
            WHERE dimension = 'budget'), 0::bigint, 'allow: the derived estimate is 0');
SELECT is((aos_cus.check(:'t', :'i_f', NULL, 1000000, 'tap-rule-est', NULL, NULL, 'tap-nomodel-21')).budget_used_microcents,
          11000000::bigint, 'check() reserves the derived estimate (7000000 spent + 4000000)');
SELECT ok(aos_cus.release_reservation(:'t', 'tap-rule-est'), 'released');
SELECT throws_ok(format($$SELECT aos_cus.check(%L, %L, NULL, 10)$$, :'t', :'i_f'), '22004',
    'estimated_cost_microcents must not be null', 'without a model a NULL estimate is still refused');
SELECT is(aos_cus.reprice_usage(now() - interval '1 hour', now() + interval '1 hour') >= 0, true, 'reprice_usage with no price yet');
SELECT is((SELECT ROW(cost_microcents, unpriced_reason IS NOT NULL)::text FROM aos_cus.cus_llm_usage
            WHERE tenant_id = :'t' AND call_id = 'tap-rule-f1'), '(3000000,t)', 'without a price the fallback charge and reason stay');

-- allow
SELECT is((SELECT (decision, reason)::text FROM aos_cus.check(:'t', :'ia', 0, 10, NULL, NULL, NULL, 'tap-nomodel-21')), '(allowed,ok)',
    'allow (tenant default): check() admits');
SELECT is((SELECT status || '/' || coalesce(cost_microcents::text, 'null') FROM aos_cus.ingest_usage(:'t',
          jsonb_build_object('integration_id', :'ia', 'call_id', 'tap-rule-a', 'provider', 'openai', 'model', 'tap-nomodel-21',
                             'input_tokens', 1000000, 'output_tokens', 500000, 'started_at', now()))),
          'inserted/null', 'allow: ingest charges nothing');
SELECT is((SELECT value FROM aos_cus.stat_counters() WHERE name = 'ingest_unpriced') - (SELECT value FROM before),
          4::bigint, 'ingest_unpriced counts every unpriced insert, charged by fallback or not');

-- A price arrives: reprice_usage() replaces the fallback charge and prices the free rows; enforcement follows.
SELECT ok(aos_cus.set_price('openai', 'tap-nomodel-21', 2000000, 8000000, effective_from => now() - interval '1 day') > 0,
          'the operator prices the model');
SELECT ok(aos_cus.reprice_usage(now() - interval '1 hour', now() + interval '1 hour') >= 4, 'reprice_usage prices the rows');
SELECT is((SELECT ROW(cost_microcents, unpriced_reason)::text FROM aos_cus.cus_llm_usage
            WHERE tenant_id = :'t' AND call_id = 'tap-rule-f1'), '(6000000,)', 'the fallback charge is replaced by the price');
SELECT is((SELECT ROW(f.spent_microcents, a.spent_microcents)::text
             FROM aos_cus.current_usage(:'t', :'i_f') f, aos_cus.current_usage(:'t', :'ia') a),
          '(14000000,6000000)', 'enforcement settles the difference: fallback 7000000 -> 14000000, allowed 0 -> 6000000');
SELECT is((aos_cus.check(:'t', :'i_f', 0, 0)).budget_used_microcents, 14000000::bigint, 'check() decides on the true spend');
SELECT is((aos_cus.check(:'t2', :'ib', 0, 10, NULL, NULL, NULL, 'tap-nomodel-21')).decision, 'allowed',
    'block: once priced, the model is admitted');

SELECT matches(aos_cus.metrics(), E'\naos_cus_decisions_total\\{decision="blocked",reason="unpriced_model"\\} [1-9]',
               'metrics() counts unpriced_model decisions');

SELECT * FROM finish();

DELETE FROM aos_cus.cus_model_prices WHERE model = 'tap-nomodel-21';
DELETE FROM aos_cus.cus_policies WHERE tenant_id IN (:'t', :'t2');
DELETE FROM aos_cus.cus_usage_daily WHERE tenant_id IN (:'t', :'t2');
DELETE FROM aos_cus.cus_usage_hourly WHERE tenant_id IN (:'t', :'t2');
DELETE FROM aos_cus.cus_llm_usage WHERE tenant_id IN (:'t', :'t2');
DELETE FROM aos_cus.cus_enforcement_log WHERE tenant_id IN (:'t', :'t2');
DELETE FROM aos_cus.cus_integrations WHERE tenant_id IN (:'t', :'t2');
