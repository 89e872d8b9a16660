-- Issue 13, findings 4 and 11: the platform operator apart from tenant admins, and tenant binding of logins.
-- Each attack of the issue is replayed as written (tenant A's claims, a member of aos_cus_admin).
BEGIN;
SELECT plan(57);

CREATE ROLE p_admin IN ROLE aos_cus_admin;
CREATE ROLE p_reader IN ROLE aos_cus_reader;
CREATE ROLE p_op IN ROLE aos_cus_operator;
CREATE ROLE p_bound LOGIN IN ROLE aos_cus_operator;  -- a login: bindings follow session_user
CREATE ROLE p_group NOLOGIN;

INSERT INTO aos_cus.cus_integrations (tenant_id, id, name, provider, budget_microcents)
VALUES ('aaaaaaaa-0000-4000-8000-000000000001', 'aaaaaaaa-0000-4000-8000-0000000000a1', 'a-openai', 'openai', 1000000),
       ('bbbbbbbb-0000-4000-8000-000000000002', 'bbbbbbbb-0000-4000-8000-0000000000b1', 'b-openai', 'openai', 1000000);
-- B's billed call: a cost given on insert is kept (an import of billed history).
INSERT INTO aos_cus.cus_llm_usage (tenant_id, integration_id, call_id, provider, model, started_at, input_tokens, cost_microcents)
VALUES ('bbbbbbbb-0000-4000-8000-000000000002', 'bbbbbbbb-0000-4000-8000-0000000000b1', 'b-call', 'openai', 'gpt-4o',
        now() - interval '1 hour', 1000, 350000);
SELECT decision FROM aos_cus.check('bbbbbbbb-0000-4000-8000-000000000002', 'bbbbbbbb-0000-4000-8000-0000000000b1', 1, 1, NULL);
CREATE FUNCTION pg_temp.b_cost() RETURNS bigint LANGUAGE sql AS
    $$SELECT cost_microcents FROM aos_cus.cus_llm_usage WHERE call_id = 'b-call'$$;
GRANT EXECUTE ON FUNCTION pg_temp.b_cost() TO PUBLIC;
CREATE FUNCTION pg_temp.claims(tenant text) RETURNS text LANGUAGE sql AS
    $$SELECT set_config('request.jwt.claims', pg_catalog.format('{"role":"x","tenant_id":"%s"}', tenant), true)$$;
GRANT EXECUTE ON FUNCTION pg_temp.claims(text) TO PUBLIC;

-- 1. The attacks of finding 4: tenant A's claims and aos_cus_admin.
SELECT pg_temp.claims('aaaaaaaa-0000-4000-8000-000000000001');
SET ROLE p_admin;
SELECT throws_ok($$SELECT aos_cus.set_price('openai', 'gpt-4o', 0, 0, effective_from => '2001-01-01')$$,
    '42501', NULL, 'tenant admin: set_price refused');
SELECT throws_ok($$UPDATE aos_cus.cus_model_prices SET input_price = 0 WHERE model = 'gpt-4o'$$,
    '42501', NULL, 'tenant admin: UPDATE cus_model_prices refused');
SELECT throws_ok($$INSERT INTO aos_cus.cus_model_prices (provider, model, input_price, output_price) VALUES ('openai', 'x', 0, 0)$$,
    '42501', NULL, 'tenant admin: INSERT into cus_model_prices refused');
SELECT throws_ok($$SELECT aos_cus.reprice_usage('-infinity', 'infinity', false)$$,
    '42501', NULL, 'tenant admin: reprice_usage across tenants refused');
SELECT throws_ok($$UPDATE aos_cus.cus_rollup_state SET last_rollup_at = now()$$,
    '42501', NULL, 'tenant admin: UPDATE cus_rollup_state refused');
SELECT throws_ok($$SELECT * FROM aos_cus.stat_budget()$$, '42501', NULL, 'tenant admin: stat_budget refused');
SELECT throws_ok($$SELECT * FROM aos_cus.stat_budget$$, '42501', NULL, 'tenant admin: stat_budget view refused');
SELECT throws_ok($$SELECT aos_cus.stat_reset()$$, '42501', NULL, 'tenant admin: stat_reset refused');
SELECT throws_ok($$SELECT aos_cus.rollup_usage()$$, '42501', NULL, 'tenant admin: rollup_usage refused');
SELECT throws_ok($$SELECT aos_cus.rebuild_daily(current_date, current_date)$$, '42501', NULL, 'tenant admin: rebuild_daily refused');
SELECT throws_ok($$SELECT aos_cus.rotate_encryption_key()$$, '42501', NULL, 'tenant admin: rotate_encryption_key refused');
SELECT throws_ok($$SELECT * FROM aos_cus.keyring_status()$$, '42501', NULL, 'tenant admin: keyring_status refused');
SELECT throws_ok($$SELECT aos_cus.metrics()$$, '42501', NULL, 'tenant admin: metrics refused');
SELECT throws_ok($$SELECT * FROM aos_cus.stat_events$$, '42501', NULL, 'tenant admin: stat_events refused');
SELECT throws_ok($$SELECT * FROM aos_cus.stat_decisions()$$, '42501', NULL, 'tenant admin: stat_decisions refused');
SELECT throws_ok($$SELECT aos_cus.bind_login('p_bound', 'aaaaaaaa-0000-4000-8000-000000000001')$$,
    '42501', NULL, 'tenant admin: bind_login refused');
RESET ROLE;
SELECT is(pg_temp.b_cost(), 350000::bigint, 'B''s billed cost is unchanged');
SELECT is((SELECT count(*)::int FROM aos_cus.cus_model_prices WHERE model = 'gpt-4o' AND input_price = 0), 0, 'no gpt-4o price is zero');

-- 2. Without a tenant, aos_cus_admin is no operator: it sees no tenant and runs nothing global.
SELECT set_config('request.jwt.claims', '', true);
SET ROLE p_admin;
SELECT is((SELECT count(*)::int FROM aos_cus.cus_integrations), 0, 'tenant admin with no tenant sees no integration');
SELECT throws_ok($$SELECT aos_cus.get_integration('bbbbbbbb-0000-4000-8000-000000000002', 'bbbbbbbb-0000-4000-8000-0000000000b1')$$,
    '42501', 'no tenant is set for this session', 'tenant admin with no tenant cannot read B');
SELECT throws_ok($$SELECT aos_cus.set_price('openai', 'gpt-4o', 0, 0, effective_from => '2001-01-01')$$,
    '42501', NULL, 'tenant admin with no tenant: set_price refused');
SELECT throws_ok($$SELECT aos_cus.reprice_usage('-infinity', 'infinity', false)$$,
    '42501', NULL, 'tenant admin with no tenant: reprice_usage refused');
SELECT throws_ok($$UPDATE aos_cus.cus_rollup_state SET last_rollup_at = now()$$,
    '42501', NULL, 'tenant admin with no tenant: UPDATE cus_rollup_state refused');
SELECT throws_ok($$SELECT * FROM aos_cus.stat_budget()$$, '42501', NULL, 'tenant admin with no tenant: stat_budget refused');
SET ROLE p_reader;
SELECT throws_ok($$SELECT * FROM aos_cus.stat_counters()$$, '42501', NULL, 'reader: stat_counters refused');
RESET ROLE;

-- 3. The operator acting for a tenant is scoped like anyone and runs nothing global.
SELECT pg_temp.claims('aaaaaaaa-0000-4000-8000-000000000001');
SET ROLE p_op;
SELECT throws_ok($$SELECT aos_cus.set_price('openai', 'gpt-4o', 0, 0, effective_from => '2001-01-01')$$,
    '42501', 'set_price() spans every tenant and cannot run while the session acts for one', 'operator with claims: set_price refused');
SELECT throws_ok($$UPDATE aos_cus.cus_model_prices SET input_price = 0 WHERE model = 'gpt-4o'$$,
    '42501', 'UPDATE of aos_cus.cus_model_prices spans every tenant and cannot run while the session acts for one',
    'operator with claims: UPDATE cus_model_prices refused');
SELECT throws_ok($$TRUNCATE aos_cus.cus_rollup_state$$, '42501', NULL, 'operator with claims: TRUNCATE cus_rollup_state refused');
SELECT throws_ok($$SELECT aos_cus.reprice_usage('-infinity', 'infinity', false)$$, '42501', NULL, 'operator with claims: reprice_usage refused');
SELECT throws_ok($$SELECT * FROM aos_cus.stat_budget()$$, '42501', NULL, 'operator with claims: stat_budget refused');
SELECT throws_ok($$SELECT aos_cus.stat_reset()$$, '42501', NULL, 'operator with claims: stat_reset refused');
SELECT throws_ok($$SELECT aos_cus.metrics()$$, '42501', NULL, 'operator with claims: metrics refused');
SELECT throws_ok($$SELECT * FROM aos_cus.stat_health$$, '42501', 'stat_health spans every tenant and cannot run while the session acts for one',
    'operator with claims: stat_health refused');
SELECT throws_ok($$SELECT * FROM aos_cus.keyring_status()$$, '42501', NULL, 'operator with claims: keyring_status refused');
SELECT is((SELECT array_agg(DISTINCT tenant_id::text) FROM aos_cus.cus_integrations), '{aaaaaaaa-0000-4000-8000-000000000001}',
    'operator with claims sees its tenant only');
RESET ROLE;
SELECT set_config('request.jwt.claims', '', true);
SET aos_cus.tenant_id = 'aaaaaaaa-0000-4000-8000-000000000001';
SET ROLE p_op;
SELECT throws_ok($$SELECT aos_cus.rollup_usage()$$, '42501', NULL, 'operator with aos_cus.tenant_id: rollup_usage refused');
RESET ROLE;
RESET aos_cus.tenant_id;

-- 4. The operator with no tenant runs the platform.
SET ROLE p_op;
SELECT is((SELECT count(*)::int FROM aos_cus.cus_integrations), 2, 'operator with no tenant sees every tenant');
SELECT lives_ok($$SELECT aos_cus.set_price('custom', 'platform-model', 10, 20, effective_from => '2020-01-01+00')$$, 'operator: set_price');
SELECT lives_ok($$SELECT aos_cus.reprice_usage(now() - interval '1 day', now(), true)$$, 'operator: reprice_usage');
SELECT lives_ok($$SELECT aos_cus.rollup_usage()$$, 'operator: rollup_usage');
SELECT ok((SELECT count(*) FROM aos_cus.stat_budget() WHERE tenant_id = 'bbbbbbbb-0000-4000-8000-000000000002') = 1, 'operator: stat_budget lists B');
SELECT lives_ok($$SELECT aos_cus.stat_reset()$$, 'operator: stat_reset');
RESET ROLE;
SELECT is(pg_temp.b_cost(), 350000::bigint, 'B''s billed cost is still unchanged (only unpriced rows repriced)');

-- 5. Finding 11: a login bound to a tenant always acts for it, whatever it sets.
SELECT throws_ok($$SELECT aos_cus.bind_login('p_group', 'aaaaaaaa-0000-4000-8000-000000000001')$$,
    '22023', NULL, 'binding a role without LOGIN is refused');
SELECT throws_ok($$SELECT aos_cus.bind_login(NULL, 'aaaaaaaa-0000-4000-8000-000000000001')$$, '22004', NULL, 'NULL login refused');
SET ROLE p_op;
SELECT lives_ok($$SELECT aos_cus.bind_login('p_bound', 'aaaaaaaa-0000-4000-8000-000000000001')$$, 'operator binds p_bound to A');
RESET ROLE;
SET SESSION AUTHORIZATION p_bound;
SELECT is(aos_cus.current_tenant(), 'aaaaaaaa-0000-4000-8000-000000000001'::uuid, 'bound login acts for A with nothing set');
SELECT is((SELECT array_agg(DISTINCT tenant_id::text) FROM aos_cus.cus_integrations), '{aaaaaaaa-0000-4000-8000-000000000001}',
    'bound login (an operator) sees A only');
SET aos_cus.tenant_id = 'bbbbbbbb-0000-4000-8000-000000000002';
SELECT throws_ok($$SELECT aos_cus.current_tenant()$$, '42501',
    'aos_cus.tenant_id names another tenant than the one login role "p_bound" is bound to', 'bound login setting B: 42501');
SELECT throws_ok($$SELECT count(*) FROM aos_cus.cus_integrations$$, '42501', NULL, 'bound login setting B reads nothing');
RESET aos_cus.tenant_id;
SELECT pg_temp.claims('bbbbbbbb-0000-4000-8000-000000000002');
SELECT throws_ok($$SELECT aos_cus.get_integration('bbbbbbbb-0000-4000-8000-000000000002', 'bbbbbbbb-0000-4000-8000-0000000000b1')$$,
    '42501', 'request.jwt.claims tenant_id names another tenant than the one login role "p_bound" is bound to',
    'bound login with B claims: 42501');
SELECT pg_temp.claims('aaaaaaaa-0000-4000-8000-000000000001');
SELECT is((aos_cus.get_integration('aaaaaaaa-0000-4000-8000-000000000001', 'aaaaaaaa-0000-4000-8000-0000000000a1')).name, 'a-openai',
    'bound login with its own tenant''s claims works');
SELECT set_config('request.jwt.claims', '', true);
SELECT throws_ok($$SELECT aos_cus.set_price('openai', 'gpt-4o', 0, 0, effective_from => '2001-01-01')$$,
    '42501', NULL, 'bound login (an operator) cannot run set_price');
SELECT throws_ok($$SELECT aos_cus.unbind_login('p_bound')$$, '42501', NULL, 'bound login cannot unbind itself');
RESET SESSION AUTHORIZATION;
SET ROLE p_op;
SELECT is(aos_cus.unbind_login('p_bound'), true, 'operator unbinds p_bound');
SELECT is(aos_cus.unbind_login('p_bound'), false, 'unbinding again finds nothing');
RESET ROLE;
SET SESSION AUTHORIZATION p_bound;
SELECT is(aos_cus.current_tenant(), NULL, 'unbound login acts for no tenant again');
RESET SESSION AUTHORIZATION;

SELECT * FROM finish();
ROLLBACK;
