-- Row-level security: for every tenant table and every role, tenant A sees and writes only A's rows;
-- only aos_cus_operator acting for no tenant sees every tenant.
BEGIN;
SELECT plan(52);

CREATE ROLE tap_admin IN ROLE aos_cus_admin;
CREATE ROLE tap_operator IN ROLE aos_cus_operator;
CREATE ROLE tap_app IN ROLE aos_cus_app;
CREATE ROLE tap_reader IN ROLE aos_cus_reader;
CREATE ROLE tap_worker IN ROLE aos_cus_worker;

-- Two tenants with one integration, one usage row and one daily row each (inserted as the owner).
INSERT INTO aos_cus.cus_integrations (tenant_id, id, name, provider)
VALUES ('aaaaaaaa-0000-0000-0000-000000000001', 'aaaaaaaa-0000-0000-0000-0000000000a1', 'a-openai', 'openai'),
       ('bbbbbbbb-0000-0000-0000-000000000002', 'bbbbbbbb-0000-0000-0000-0000000000b1', 'b-openai', 'openai');
INSERT INTO aos_cus.cus_llm_usage (tenant_id, integration_id, call_id, provider, model, started_at)
VALUES ('aaaaaaaa-0000-0000-0000-000000000001', 'aaaaaaaa-0000-0000-0000-0000000000a1', 'a-call', 'openai', 'gpt-4o', now()),
       ('bbbbbbbb-0000-0000-0000-000000000002', 'bbbbbbbb-0000-0000-0000-0000000000b1', 'b-call', 'openai', 'gpt-4o', now());
INSERT INTO aos_cus.cus_usage_daily (tenant_id, integration_id, day, provider, model, requests)
VALUES ('aaaaaaaa-0000-0000-0000-000000000001', 'aaaaaaaa-0000-0000-0000-0000000000a1', current_date, 'openai', 'gpt-4o', 1),
       ('bbbbbbbb-0000-0000-0000-000000000002', 'bbbbbbbb-0000-0000-0000-0000000000b1', current_date, 'openai', 'gpt-4o', 1);

-- Tenant ids visible to the current role in one table, as a sorted text array.
CREATE FUNCTION pg_temp.visible(tbl text) RETURNS text[] LANGUAGE plpgsql AS $$
DECLARE r text[];
BEGIN
    EXECUTE format('SELECT coalesce(array_agg(DISTINCT tenant_id::text ORDER BY tenant_id::text), ''{}'') FROM aos_cus.%I', tbl) INTO r;
    RETURN r;
END $$;
GRANT EXECUTE ON FUNCTION pg_temp.visible(text) TO PUBLIC;

-- Each non-admin role, acting for tenant A, sees only A in each table; with no tenant, nothing.
SET aos_cus.tenant_id = 'aaaaaaaa-0000-0000-0000-000000000001';
SET ROLE tap_app;
SELECT is(pg_temp.visible('cus_integrations'), '{aaaaaaaa-0000-0000-0000-000000000001}', 'app for A sees only A integrations');
SELECT is(pg_temp.visible('cus_llm_usage'), '{aaaaaaaa-0000-0000-0000-000000000001}', 'app for A sees only A usage');
SELECT is(pg_temp.visible('cus_usage_daily'), '{aaaaaaaa-0000-0000-0000-000000000001}', 'app for A sees only A daily rows');
SET ROLE tap_reader;
SELECT is(pg_temp.visible('cus_integrations'), '{aaaaaaaa-0000-0000-0000-000000000001}', 'reader for A sees only A integrations');
SELECT is(pg_temp.visible('cus_llm_usage'), '{aaaaaaaa-0000-0000-0000-000000000001}', 'reader for A sees only A usage');
SELECT is(pg_temp.visible('cus_usage_daily'), '{aaaaaaaa-0000-0000-0000-000000000001}', 'reader for A sees only A daily rows');
SET ROLE tap_worker;
SELECT is(pg_temp.visible('cus_integrations'), '{aaaaaaaa-0000-0000-0000-000000000001}', 'worker for A sees only A integrations');
SELECT is(pg_temp.visible('cus_llm_usage'), '{aaaaaaaa-0000-0000-0000-000000000001}', 'worker for A sees only A usage');
SELECT is(pg_temp.visible('cus_usage_daily'), '{aaaaaaaa-0000-0000-0000-000000000001}', 'worker for A sees only A daily rows');
RESET ROLE;

-- The PostgREST claim selects the tenant just as the setting does.
SELECT set_config('request.jwt.claims', '{"role":"tap_app","tenant_id":"bbbbbbbb-0000-0000-0000-000000000002"}', true);
SET ROLE tap_app;
SELECT is(pg_temp.visible('cus_integrations'), '{bbbbbbbb-0000-0000-0000-000000000002}', 'app with B claims sees only B integrations');
SELECT is(pg_temp.visible('cus_llm_usage'), '{bbbbbbbb-0000-0000-0000-000000000002}', 'app with B claims sees only B usage');
RESET ROLE;
SELECT set_config('request.jwt.claims', '', true);

RESET aos_cus.tenant_id;
SET ROLE tap_app;
SELECT is(pg_temp.visible('cus_integrations'), '{}', 'app with no tenant sees no integrations');
SELECT is(pg_temp.visible('cus_llm_usage'), '{}', 'app with no tenant sees no usage');
SELECT is(pg_temp.visible('cus_usage_daily'), '{}', 'app with no tenant sees no daily rows');
SET ROLE tap_reader;
SELECT is(pg_temp.visible('cus_integrations'), '{}', 'reader with no tenant sees no integrations');
SELECT is(pg_temp.visible('cus_llm_usage'), '{}', 'reader with no tenant sees no usage');
SELECT is(pg_temp.visible('cus_usage_daily'), '{}', 'reader with no tenant sees no daily rows');
SET ROLE tap_worker;
SELECT is(pg_temp.visible('cus_integrations'), '{}', 'worker with no tenant sees no integrations');
SELECT is(pg_temp.visible('cus_llm_usage'), '{}', 'worker with no tenant sees no usage');
SELECT is(pg_temp.visible('cus_usage_daily'), '{}', 'worker with no tenant sees no daily rows');
SET ROLE tap_admin;
SELECT is(pg_temp.visible('cus_integrations'), '{}', 'tenant admin with no tenant sees no integrations');
SELECT is(pg_temp.visible('cus_llm_usage'), '{}', 'tenant admin with no tenant sees no usage');
SELECT is(pg_temp.visible('cus_usage_daily'), '{}', 'tenant admin with no tenant sees no daily rows');
SET ROLE tap_operator;
SELECT is(pg_temp.visible('cus_integrations'), '{aaaaaaaa-0000-0000-0000-000000000001,bbbbbbbb-0000-0000-0000-000000000002}', 'operator with no tenant sees every integration');
SELECT is(pg_temp.visible('cus_llm_usage'), '{aaaaaaaa-0000-0000-0000-000000000001,bbbbbbbb-0000-0000-0000-000000000002}', 'operator with no tenant sees all usage');
SELECT is(pg_temp.visible('cus_usage_daily'), '{aaaaaaaa-0000-0000-0000-000000000001,bbbbbbbb-0000-0000-0000-000000000002}', 'operator with no tenant sees all daily rows');
RESET ROLE;

-- Writes: acting for A, no role can write B's rows, and only the granted writes succeed for A.
SET aos_cus.tenant_id = 'aaaaaaaa-0000-0000-0000-000000000001';
SET ROLE tap_app;
SELECT throws_ok($$INSERT INTO aos_cus.cus_llm_usage (tenant_id, integration_id, call_id, provider, model, started_at)
    VALUES ('bbbbbbbb-0000-0000-0000-000000000002', 'bbbbbbbb-0000-0000-0000-0000000000b1', 'x', 'openai', 'gpt-4o', now())$$,
    '42501', NULL, 'app for A cannot insert B usage');
SELECT lives_ok($$INSERT INTO aos_cus.cus_llm_usage (tenant_id, integration_id, call_id, provider, model, started_at)
    VALUES ('aaaaaaaa-0000-0000-0000-000000000001', 'aaaaaaaa-0000-0000-0000-0000000000a1', 'a-call-2', 'openai', 'gpt-4o', now())$$,
    'app for A can insert A usage');
SELECT throws_ok($$UPDATE aos_cus.cus_llm_usage SET model = 'x'$$, '42501', NULL, 'app cannot update usage');
SELECT throws_ok($$DELETE FROM aos_cus.cus_llm_usage$$, '42501', NULL, 'app cannot delete usage');
SELECT throws_ok($$INSERT INTO aos_cus.cus_integrations (tenant_id, name, provider) VALUES ('aaaaaaaa-0000-0000-0000-000000000001', 'n', 'openai')$$,
    '42501', NULL, 'app cannot insert integrations directly');
SELECT throws_ok($$UPDATE aos_cus.cus_usage_daily SET requests = 0$$, '42501', NULL, 'app cannot update daily rows');
SET ROLE tap_reader;
SELECT throws_ok($$INSERT INTO aos_cus.cus_llm_usage (tenant_id, integration_id, call_id, provider, model, started_at)
    VALUES ('aaaaaaaa-0000-0000-0000-000000000001', 'aaaaaaaa-0000-0000-0000-0000000000a1', 'r', 'openai', 'gpt-4o', now())$$,
    '42501', NULL, 'reader cannot insert usage');
SELECT throws_ok($$UPDATE aos_cus.cus_integrations SET name = 'x'$$, '42501', NULL, 'reader cannot update integrations');
SELECT throws_ok($$DELETE FROM aos_cus.cus_usage_daily$$, '42501', NULL, 'reader cannot delete daily rows');
SET ROLE tap_worker;
SELECT throws_ok($$UPDATE aos_cus.cus_integrations SET name = 'x'$$, '42501', NULL, 'worker cannot rename integrations');
SELECT results_eq($$WITH u AS (UPDATE aos_cus.cus_integrations SET health_state = 'healthy' RETURNING tenant_id) SELECT array_agg(tenant_id::text) FROM u$$,
    $$VALUES ('{aaaaaaaa-0000-0000-0000-000000000001}'::text[])$$, 'worker for A updates health of A only');
SELECT throws_ok($$INSERT INTO aos_cus.cus_llm_usage (tenant_id, integration_id, call_id, provider, model, started_at)
    VALUES ('aaaaaaaa-0000-0000-0000-000000000001', 'aaaaaaaa-0000-0000-0000-0000000000a1', 'w', 'openai', 'gpt-4o', now())$$,
    '42501', NULL, 'worker cannot insert usage');
SET ROLE tap_admin;
SELECT throws_ok($$INSERT INTO aos_cus.cus_integrations (tenant_id, name, provider) VALUES ('bbbbbbbb-0000-0000-0000-000000000002', 'b2', 'openai')$$,
    '42501', NULL, 'admin acting for A cannot insert B integrations either');
SELECT results_eq($$WITH u AS (UPDATE aos_cus.cus_llm_usage SET model = model RETURNING tenant_id) SELECT count(*)::int FROM u$$,
    $$VALUES (2)$$, 'admin acting for A updates A usage only (2 rows: a-call, a-call-2)');
RESET ROLE;
RESET aos_cus.tenant_id;
SET ROLE tap_admin;
SELECT throws_ok($$INSERT INTO aos_cus.cus_integrations (tenant_id, name, provider) VALUES ('bbbbbbbb-0000-0000-0000-000000000002', 'b2', 'openai')$$,
    '42501', NULL, 'tenant admin with no tenant cannot write any tenant');
SET ROLE tap_operator;
SELECT lives_ok($$INSERT INTO aos_cus.cus_integrations (tenant_id, name, provider) VALUES ('bbbbbbbb-0000-0000-0000-000000000002', 'b2', 'openai')$$,
    'operator with no tenant can write any tenant');
RESET ROLE;

-- Schema guarantees: tenant_id leads every key of every tenant table.
SELECT is((SELECT count(*)::int FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid
            JOIN pg_namespace n ON n.oid = t.relnamespace
            WHERE n.nspname = 'aos_cus' AND t.relname IN ('cus_integrations', 'cus_llm_usage', 'cus_usage_daily')
              AND c.contype IN ('p', 'u', 'f')
              AND (SELECT attname FROM pg_attribute WHERE attrelid = t.oid AND attnum = c.conkey[1]) <> 'tenant_id'),
          0, 'tenant_id is the first column of every primary, unique and foreign key');
SELECT is((SELECT count(*)::int FROM pg_class t JOIN pg_namespace n ON n.oid = t.relnamespace
            WHERE n.nspname = 'aos_cus' AND t.relkind = 'r' AND NOT t.relrowsecurity AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = t.oid AND a.attname = 'tenant_id')),
          0, 'every tenant table has row-level security');
SELECT ok((SELECT count(*) FROM pg_extension e, unnest(e.extconfig) c WHERE e.extname = 'aos_cus') >= 4,
          'user data tables are registered with pg_extension_config_dump');

-- CHECK constraints refuse bad enum values and ranges.
SELECT throws_ok($$INSERT INTO aos_cus.cus_integrations (tenant_id, name, provider) VALUES (gen_random_uuid(), 'x', 'openia')$$,
    '23514', NULL, 'unknown provider refused');
SELECT throws_ok($$INSERT INTO aos_cus.cus_integrations (tenant_id, name, provider, status) VALUES (gen_random_uuid(), 'x', 'openai', 'live')$$,
    '23514', NULL, 'unknown status refused');
SELECT throws_ok($$INSERT INTO aos_cus.cus_integrations (tenant_id, name, provider, warn_at_pct) VALUES (gen_random_uuid(), 'x', 'openai', 101)$$,
    '23514', NULL, 'warn_at_pct over 100 refused');
SELECT throws_ok($$INSERT INTO aos_cus.cus_llm_usage (tenant_id, integration_id, call_id, provider, model, started_at, output_tokens, reasoning_tokens)
    VALUES ('aaaaaaaa-0000-0000-0000-000000000001', 'aaaaaaaa-0000-0000-0000-0000000000a1', 'big-reasoning', 'openai', 'gpt-4o', now(), 1, 2)$$,
    '23514', NULL, 'reasoning_tokens above output_tokens refused');
SELECT throws_ok($$INSERT INTO aos_cus.cus_llm_usage (tenant_id, integration_id, call_id, provider, model, started_at, input_tokens)
    VALUES ('aaaaaaaa-0000-0000-0000-000000000001', 'aaaaaaaa-0000-0000-0000-0000000000a1', 'neg', 'openai', 'gpt-4o', now(), -1)$$,
    '23514', NULL, 'negative tokens refused');
SELECT throws_ok($$INSERT INTO aos_cus.cus_llm_usage (tenant_id, integration_id, call_id, provider, model, started_at)
    VALUES ('aaaaaaaa-0000-0000-0000-000000000001', 'aaaaaaaa-0000-0000-0000-0000000000a1', '', 'openai', 'gpt-4o', now())$$,
    '23514', NULL, 'empty call_id refused');
SELECT throws_ok($$INSERT INTO aos_cus.cus_llm_usage (tenant_id, integration_id, call_id, provider, model, started_at)
    VALUES ('aaaaaaaa-0000-0000-0000-000000000001', 'bbbbbbbb-0000-0000-0000-0000000000b1', 'cross', 'openai', 'gpt-4o', now())$$,
    '23503', NULL, 'usage cannot point at another tenant''s integration');

SELECT * FROM finish();
ROLLBACK;
