-- Integration management: lifecycle from every state (API and direct UPDATE), reads without secrets,
-- names, limits validation that never half-applies, and bad input for every function.
BEGIN;
SELECT plan(153);

SET aos_cus.tenant_id = 'abcdef00-0000-4000-8000-000000000001';

-- A fresh integration moved to a status through the API.
CREATE FUNCTION pg_temp.in_state(st text) RETURNS uuid LANGUAGE plpgsql AS $$
DECLARE
    t constant uuid := 'abcdef00-0000-4000-8000-000000000001';
    i uuid := aos_cus.create_integration(t, 'state-' || gen_random_uuid(), 'openai', 'sk-proj-state-test-0000000000000');
BEGIN
    IF st IN ('enabled', 'disabled') THEN PERFORM aos_cus.enable_integration(t, i); END IF;
    IF st = 'disabled' THEN PERFORM aos_cus.disable_integration(t, i); END IF;
    IF st = 'deleted' THEN PERFORM aos_cus.delete_integration(t, i); END IF;
    RETURN i;
END $$;

CREATE TEMP TABLE moves AS
SELECT f.s AS from_state, t.s AS to_state, pg_temp.in_state(f.s) AS id,
       (f.s, t.s) IN (('created', 'enabled'), ('enabled', 'disabled'), ('disabled', 'enabled'),
                      ('created', 'deleted'), ('enabled', 'deleted'), ('disabled', 'deleted'),
                      ('created', 'created'), ('enabled', 'enabled'), ('disabled', 'disabled')) AS allowed
  FROM (VALUES ('created'), ('enabled'), ('disabled'), ('deleted')) f(s),
       (VALUES ('created'), ('enabled'), ('disabled'), ('deleted')) t(s);

-- 1. Every transition from every state by direct UPDATE: the trigger allows exactly the lifecycle.
SELECT CASE WHEN allowed
            THEN lives_ok(format('UPDATE aos_cus.cus_integrations SET status = %L WHERE id = %L', to_state, id),
                          format('direct UPDATE %s -> %s is allowed', from_state, to_state))
            ELSE throws_ok(format('UPDATE aos_cus.cus_integrations SET status = %L WHERE id = %L', to_state, id), '55000',
                           format('integration %s cannot go from status %s to %s', id, from_state, to_state),
                           format('direct UPDATE %s -> %s raises 55000 naming both states', from_state, to_state))
       END
  FROM moves ORDER BY from_state, to_state;
SELECT is(count(*)::int, 3, 'the 3 direct soft deletes set deleted_at and wipe the credential')
  FROM aos_cus.cus_integrations i JOIN moves m USING (id)
 WHERE m.allowed AND m.to_state = 'deleted' AND m.from_state <> 'deleted'
   AND i.status = 'deleted' AND i.deleted_at IS NOT NULL AND i.credential_ref IS NULL AND i.credential_hint IS NULL;

-- 2. Every lifecycle function from every state.
CREATE TEMP TABLE api_moves AS
SELECT f.s AS from_state, a.fn, a.to_state, pg_temp.in_state(f.s) AS id,
       (f.s, a.to_state) IN (('created', 'enabled'), ('enabled', 'disabled'), ('disabled', 'enabled'),
                             ('created', 'deleted'), ('enabled', 'deleted'), ('disabled', 'deleted'),
                             ('enabled', 'enabled'), ('disabled', 'disabled')) AS allowed
  FROM (VALUES ('created'), ('enabled'), ('disabled'), ('deleted')) f(s),
       (VALUES ('enable_integration', 'enabled'), ('disable_integration', 'disabled'), ('delete_integration', 'deleted')) a(fn, to_state);
CREATE FUNCTION pg_temp.api(fn text, id uuid) RETURNS text LANGUAGE plpgsql AS $$
DECLARE r text;
BEGIN
    EXECUTE format('SELECT (aos_cus.%I(%L, %L)).status', fn, 'abcdef00-0000-4000-8000-000000000001', id) INTO r;
    RETURN r;
END $$;
SELECT CASE WHEN allowed
            THEN is(pg_temp.api(m.fn, m.id), m.to_state, format('%s from %s gives %s', m.fn, m.from_state, m.to_state))
            ELSE throws_ok(format('SELECT aos_cus.%I(%L, %L)', m.fn, 'abcdef00-0000-4000-8000-000000000001', m.id), '55000',
                           format('integration %s cannot go from status %s to %s', m.id, m.from_state, m.to_state),
                           format('%s from %s raises 55000', m.fn, m.from_state))
       END
  FROM api_moves m ORDER BY from_state, fn;

-- 3. create, get, list: reads return the credential kind and hint, never the reference.
SELECT lives_ok($$SELECT aos_cus.create_integration('abcdef00-0000-4000-8000-000000000001', 'prod', 'anthropic',
                  'sk-ant-api03-read-test-000000000ABCD',
                  '{"id": "abcdef00-0000-4000-8000-0000000000a1", "base_url": "http://127.0.0.1:9/v1", "config": {"region": "eu"},
                    "limits": {"budget_microcents": 500000000, "budget_period": "day", "token_limit": 1000000, "token_period": "week",
                               "rpm": 60, "tpm": 100000, "warn_at_pct": 90, "mode": "warn", "timezone": "Europe/Paris"}}')$$,
                'create_integration with every option');
SELECT is(g.credential_kind || '/' || g.credential_hint, 'encrypted/ABCD', 'get_integration returns kind and hint')
  FROM aos_cus.get_integration('abcdef00-0000-4000-8000-000000000001', 'abcdef00-0000-4000-8000-0000000000a1') g;
SELECT is(g.limits, '{"budget_microcents": 500000000, "budget_period": "day", "token_limit": 1000000, "token_period": "week",
                      "rpm": 60, "tpm": 100000, "rph": null, "rpd": null, "warn_at_pct": 90, "mode": "warn", "timezone": "Europe/Paris"}'::jsonb,
          'limits come back as configured')
  FROM aos_cus.get_integration('abcdef00-0000-4000-8000-000000000001', 'abcdef00-0000-4000-8000-0000000000a1') g;
SELECT is(enforcement_mode || ' ' || budget_microcents || ' ' || timezone || ' ' || base_url || ' ' || (config ->> 'region'),
          'warn 500000000 Europe/Paris http://127.0.0.1:9/v1 eu', 'options land in the table columns')
  FROM aos_cus.cus_integrations WHERE id = 'abcdef00-0000-4000-8000-0000000000a1';
SELECT ok(strpos(g::text, 'encrypted://') = 0 AND strpos(g::text, 'read-test') = 0, 'get_integration holds neither the reference nor the key')
  FROM aos_cus.get_integration('abcdef00-0000-4000-8000-000000000001', 'abcdef00-0000-4000-8000-0000000000a1') g;
SELECT is((SELECT count(*)::int FROM pg_attribute WHERE attrelid = 'aos_cus.integration'::regclass AND attname = 'credential_ref'), 0,
          'the API type has no credential_ref column');
SELECT is((SELECT count(*)::int FROM aos_cus.list_integrations('abcdef00-0000-4000-8000-000000000001', page_size => 1000) l
            WHERE strpos(l::text, 'encrypted://') > 0), 0, 'list_integrations never returns a reference');
-- vault:// and env:// references need the platform operator's allowance for the tenant (issue 13).
SELECT throws_ok($$SELECT aos_cus.create_integration('abcdef00-0000-4000-8000-000000000001', 'vaulted', 'openai', 'vault://prod-openai')$$,
                 '42501', 'tenant abcdef00-0000-4000-8000-000000000001 may not use the credential source "vault://prod-openai"',
                 'create_integration refuses a vault:// source the tenant was not allowed');
RESET aos_cus.tenant_id;
SELECT ok(aos_cus.allow_credential_source('abcdef00-0000-4000-8000-000000000001', 'vault://prod-openai')
          AND aos_cus.allow_credential_source('abcdef00-0000-4000-8000-000000000001', 'env://AOS_CUS_MISTRAL_KEY'),
          'the operator allows the tenant a vault:// and an env:// source');
SET aos_cus.tenant_id = 'abcdef00-0000-4000-8000-000000000001';
SELECT is(aos_cus.create_integration('abcdef00-0000-4000-8000-000000000001', 'vaulted', 'openai', 'vault://prod-openai',
          '{"id": "abcdef00-0000-4000-8000-0000000000a2"}'), 'abcdef00-0000-4000-8000-0000000000a2'::uuid,
          'create_integration with a vault:// reference returns the chosen id');
SELECT is(g.credential_kind || '/' || coalesce(g.credential_hint, '-') || '/' || g.status, 'vault/-/created', 'a reference has kind vault, no hint, status created')
  FROM aos_cus.get_integration('abcdef00-0000-4000-8000-000000000001', 'abcdef00-0000-4000-8000-0000000000a2') g;
SELECT lives_ok($$SELECT aos_cus.create_integration('abcdef00-0000-4000-8000-000000000001', 'from-env', 'mistral', 'env://AOS_CUS_MISTRAL_KEY',
                  '{"id": "abcdef00-0000-4000-8000-0000000000a3"}')$$, 'create_integration with an env:// reference');
SELECT is(g.credential_kind, 'env', 'an env:// credential has kind env')
  FROM aos_cus.get_integration('abcdef00-0000-4000-8000-000000000001', 'abcdef00-0000-4000-8000-0000000000a3') g;
SELECT is(g.limits ->> 'mode', 'enforce', 'defaults: mode enforce') FROM aos_cus.get_integration('abcdef00-0000-4000-8000-000000000001', 'abcdef00-0000-4000-8000-0000000000a2') g;
SELECT is(g.limits, '{"budget_microcents": null, "budget_period": "month", "token_limit": null, "token_period": "month",
                      "rpm": null, "tpm": null, "rph": null, "rpd": null, "warn_at_pct": 80, "mode": "enforce", "timezone": "UTC"}'::jsonb, 'default limits')
  FROM aos_cus.get_integration('abcdef00-0000-4000-8000-000000000001', 'abcdef00-0000-4000-8000-0000000000a2') g;

-- Names: unique per tenant among non-deleted; a deleted name can be reused; another tenant may use it.
SELECT throws_ok($$SELECT aos_cus.create_integration('abcdef00-0000-4000-8000-000000000001', 'prod', 'openai', 'sk-dup-0000000000000000000')$$,
                 '23505', 'an integration named "prod" already exists for this tenant', 'a duplicate name is 23505');
SELECT throws_ok($$SELECT aos_cus.update_integration('abcdef00-0000-4000-8000-000000000001', 'abcdef00-0000-4000-8000-0000000000a2', '{"name": "prod"}')$$,
                 '23505', 'an integration named "prod" already exists for this tenant', 'renaming onto a taken name is 23505');
SELECT throws_ok($$SELECT aos_cus.create_integration('abcdef00-0000-4000-8000-000000000001', 'other', 'openai', 'sk-dup-0000000000000000000',
                   '{"id": "abcdef00-0000-4000-8000-0000000000a1"}')$$,
                 '23505', 'integration abcdef00-0000-4000-8000-0000000000a1 already exists', 'a duplicate id is 23505');
SELECT lives_ok($$SELECT aos_cus.delete_integration('abcdef00-0000-4000-8000-000000000001', 'abcdef00-0000-4000-8000-0000000000a1')$$, 'delete prod');
SELECT is(status || ' ' || (deleted_at IS NOT NULL) || ' ' || coalesce(credential_ref, 'no-ref') || ' ' || coalesce(credential_hint, 'no-hint'),
          'deleted true no-ref no-hint', 'delete is soft: status deleted, deleted_at set, credential wiped')
  FROM aos_cus.cus_integrations WHERE id = 'abcdef00-0000-4000-8000-0000000000a1';
SELECT lives_ok($$SELECT aos_cus.create_integration('abcdef00-0000-4000-8000-000000000001', 'prod', 'openai', 'sk-proj-second-prod-00000000000')$$,
                'a deleted integration''s name can be reused');
RESET aos_cus.tenant_id;
SELECT lives_ok($$SELECT aos_cus.create_integration('abcdef00-0000-4000-8000-000000000002', 'prod', 'openai', 'sk-proj-other-tenant-0000000000')$$,
                'another tenant may use the same name');
SET aos_cus.tenant_id = 'abcdef00-0000-4000-8000-000000000001';
SELECT throws_ok($$SELECT aos_cus.update_integration('abcdef00-0000-4000-8000-000000000001', 'abcdef00-0000-4000-8000-0000000000a1', '{"name": "x"}')$$,
                 '55000', 'integration abcdef00-0000-4000-8000-0000000000a1 is deleted', 'a deleted integration cannot be updated');
SELECT throws_ok($$SELECT aos_cus.rotate_credential('abcdef00-0000-4000-8000-000000000001', 'abcdef00-0000-4000-8000-0000000000a1', 'sk-proj-x-00000000000000000000')$$,
                 '55000', NULL, 'a deleted integration''s credential cannot be rotated');
SELECT throws_ok($$UPDATE aos_cus.cus_integrations SET credential_ref = 'vault://x' WHERE id = 'abcdef00-0000-4000-8000-0000000000a1'$$,
                 '23514', NULL, 'a direct UPDATE cannot give a deleted integration a credential again');
SELECT is(g.status, 'deleted', 'get_integration still shows a deleted integration')
  FROM aos_cus.get_integration('abcdef00-0000-4000-8000-000000000001', 'abcdef00-0000-4000-8000-0000000000a1') g;

-- update_integration and set_limits: patches; JSON null clears base_url or restores a default.
SELECT is((u).name || ' ' || (u).base_url || ' ' || ((u).config ->> 'x'), 'vaulted-2 https://api.example.com/v1 1', 'update_integration patches name, base_url, config')
  FROM (SELECT aos_cus.update_integration('abcdef00-0000-4000-8000-000000000001', 'abcdef00-0000-4000-8000-0000000000a2',
              '{"name": "vaulted-2", "base_url": "https://api.example.com/v1", "config": {"x": 1}}') u) s;
SELECT is((u).base_url, NULL, 'base_url null clears it')
  FROM (SELECT aos_cus.update_integration('abcdef00-0000-4000-8000-000000000001', 'abcdef00-0000-4000-8000-0000000000a2', '{"base_url": null}') u) s;
SELECT is((u).name, 'vaulted-2', 'an empty patch changes nothing')
  FROM (SELECT aos_cus.update_integration('abcdef00-0000-4000-8000-000000000001', 'abcdef00-0000-4000-8000-0000000000a2', '{}') u) s;
SELECT is((s).limits ->> 'rpm', '120', 'set_limits sets a limit')
  FROM (SELECT aos_cus.set_limits('abcdef00-0000-4000-8000-000000000001', 'abcdef00-0000-4000-8000-0000000000a2', '{"rpm": 120, "budget_microcents": 7}') s) x;
SELECT is((s).limits ->> 'budget_microcents', '7', 'set_limits keeps absent keys')
  FROM (SELECT aos_cus.set_limits('abcdef00-0000-4000-8000-000000000001', 'abcdef00-0000-4000-8000-0000000000a2', '{"rpm": null}') s) x;
SELECT is(rpm, NULL, 'JSON null removes a limit') FROM aos_cus.cus_integrations WHERE id = 'abcdef00-0000-4000-8000-0000000000a2';
SELECT is((s).limits ->> 'warn_at_pct', '55', 'set_limits sets warn_at_pct')
  FROM (SELECT aos_cus.set_limits('abcdef00-0000-4000-8000-000000000001', 'abcdef00-0000-4000-8000-0000000000a2', '{"warn_at_pct": 55}') s) x;
SELECT is((s).limits ->> 'warn_at_pct', '80', 'JSON null restores warn_at_pct to 80')
  FROM (SELECT aos_cus.set_limits('abcdef00-0000-4000-8000-000000000001', 'abcdef00-0000-4000-8000-0000000000a2', '{"warn_at_pct": null}') s) x;
SELECT throws_ok($$SELECT aos_cus.set_limits('abcdef00-0000-4000-8000-000000000001', 'abcdef00-0000-4000-8000-0000000000a2',
                   '{"rpm": 999, "budget_microcents": 1, "timezone": "Mars/Olympus_Mons"}')$$, '22023', NULL, 'a bad timezone fails the whole patch');
SELECT is(coalesce(rpm, 0) || ' ' || budget_microcents || ' ' || timezone, '0 7 UTC', 'a bad limit never half-applies')
  FROM aos_cus.cus_integrations WHERE id = 'abcdef00-0000-4000-8000-0000000000a2';
SELECT throws_ok($$SELECT aos_cus.update_integration('abcdef00-0000-4000-8000-000000000001', 'abcdef00-0000-4000-8000-0000000000a2',
                   '{"name": "renamed", "limits": {"mode": "loud"}}')$$, '22023', NULL, 'a bad limit in update_integration fails the patch');
SELECT is(name, 'vaulted-2', 'neither the name nor the limits changed') FROM aos_cus.cus_integrations WHERE id = 'abcdef00-0000-4000-8000-0000000000a2';

-- 4. Bad input, function by function.
CREATE FUNCTION pg_temp.bad(sql text, code text, msg text) RETURNS text LANGUAGE sql AS $$
    SELECT throws_ok(sql, code, msg, format('%s: %s', code, coalesce(msg, sql))) $$;
SELECT pg_temp.bad($$SELECT aos_cus.create_integration(NULL, 'n', 'openai', 'sk-x-000000000000000')$$, '22004', 'tenant_id must not be null');
SELECT pg_temp.bad($$SELECT aos_cus.create_integration('abcdef00-0000-4000-8000-000000000001', NULL, 'openai', 'sk-x-000000000000000')$$, '22004', 'name must not be null');
SELECT pg_temp.bad($$SELECT aos_cus.create_integration('abcdef00-0000-4000-8000-000000000001', 'n', NULL, 'sk-x-000000000000000')$$, '22004', 'provider must not be null');
SELECT pg_temp.bad($$SELECT aos_cus.create_integration('abcdef00-0000-4000-8000-000000000001', 'n', 'openai', NULL)$$, '22004', 'credential must not be null');
SELECT pg_temp.bad($$SELECT aos_cus.create_integration('abcdef00-0000-4000-8000-000000000001', 'n', 'openai', 'sk-x-000000000000000', NULL)$$, '22004', 'options must not be null');
SELECT pg_temp.bad($$SELECT aos_cus.create_integration('abcdef00-0000-4000-8000-000000000001', 'n', 'openia', 'sk-x-000000000000000')$$, '22023',
                   'provider "openia" is not one of openai, anthropic, google, azure_openai, aws_bedrock, mistral, custom');
SELECT pg_temp.bad($$SELECT aos_cus.create_integration('abcdef00-0000-4000-8000-000000000001', '', 'openai', 'sk-x-000000000000000')$$, '22023', NULL);
SELECT pg_temp.bad($$SELECT aos_cus.create_integration('abcdef00-0000-4000-8000-000000000001', repeat('n', 201), 'openai', 'sk-x-000000000000000')$$, '22023',
                   'name must be 1 to 200 characters without control characters or surrounding spaces, not "' || repeat('n', 40) || '..."');
SELECT pg_temp.bad($$SELECT aos_cus.create_integration('abcdef00-0000-4000-8000-000000000001', E'tab\there', 'openai', 'sk-x-000000000000000')$$, '22023', NULL);
SELECT pg_temp.bad($$SELECT aos_cus.create_integration('abcdef00-0000-4000-8000-000000000001', ' padded', 'openai', 'sk-x-000000000000000')$$, '22023', NULL);
SELECT pg_temp.bad($$SELECT aos_cus.create_integration('abcdef00-0000-4000-8000-000000000001', 'n', 'openai', '')$$, '22023', 'credential must not be empty');
SELECT pg_temp.bad($$SELECT aos_cus.create_integration('abcdef00-0000-4000-8000-000000000001', 'n', 'openai', repeat('k', 5000))$$, '22023', 'credential is longer than 2048 bytes');
SELECT pg_temp.bad($$SELECT aos_cus.create_integration('abcdef00-0000-4000-8000-000000000001', 'n', 'openai', 'vault://')$$, '22023', NULL);
SELECT pg_temp.bad($$SELECT aos_cus.create_integration('abcdef00-0000-4000-8000-000000000001', 'n', 'openai', 'encrypted://v1/1/' || repeat('A', 40))$$, '22023',
                   'credential is already a credential reference, not a plaintext key');
SELECT pg_temp.bad($$SELECT aos_cus.create_integration('abcdef00-0000-4000-8000-000000000001', 'n', 'openai', 'sk-x-000000000000000', '[]')$$, '22023', 'options must be a JSON object, not array');
SELECT pg_temp.bad($$SELECT aos_cus.create_integration('abcdef00-0000-4000-8000-000000000001', 'n', 'openai', 'sk-x-000000000000000', '{"status": "enabled"}')$$, '22023',
                   'options has unknown key(s): status');
SELECT pg_temp.bad($$SELECT aos_cus.create_integration('abcdef00-0000-4000-8000-000000000001', 'n', 'openai', 'sk-x-000000000000000', '{"id": "nope"}')$$, '22023', 'options.id must be a non-nil UUID string, not "nope"');
SELECT pg_temp.bad($$SELECT aos_cus.create_integration('abcdef00-0000-4000-8000-000000000001', 'n', 'openai', 'sk-x-000000000000000', '{"id": "00000000-0000-0000-0000-000000000000"}')$$, '22023', NULL);
SELECT pg_temp.bad($$SELECT aos_cus.create_integration('abcdef00-0000-4000-8000-000000000001', 'n', 'openai', 'sk-x-000000000000000', '{"id": 7}')$$, '22023', NULL);
SELECT pg_temp.bad($$SELECT aos_cus.create_integration('abcdef00-0000-4000-8000-000000000001', 'n', 'openai', 'sk-x-000000000000000', '{"base_url": "ftp://x"}')$$, '22023',
                   'base_url must be an http:// or https:// URL of at most 2048 characters');
SELECT pg_temp.bad($$SELECT aos_cus.create_integration('abcdef00-0000-4000-8000-000000000001', 'n', 'openai', 'sk-x-000000000000000', '{"base_url": 5}')$$, '22023', 'base_url must be a string, not 5');
SELECT pg_temp.bad($$SELECT aos_cus.create_integration('abcdef00-0000-4000-8000-000000000001', 'n', 'openai', 'sk-x-000000000000000', '{"config": [1]}')$$, '22023', 'config must be a JSON object, not array');
SELECT pg_temp.bad($$SELECT aos_cus.create_integration('abcdef00-0000-4000-8000-000000000001', 'n', 'openai', 'sk-x-000000000000000',
                   jsonb_build_object('config', jsonb_build_object('blob', (SELECT string_agg(md5(g::text), '') FROM generate_series(1, 5000) g))))$$,
                   '54000', 'config must be at most 64 kB');
SELECT pg_temp.bad($$SELECT aos_cus.create_integration('abcdef00-0000-4000-8000-000000000001', 'n', 'openai', 'sk-x-000000000000000', '{"limits": 5}')$$, '22023', 'limits must be a JSON object, not number');
SELECT pg_temp.bad($$SELECT aos_cus.create_integration('abcdef00-0000-4000-8000-000000000001', 'n', 'openai', 'sk-x-000000000000000', '{"limits": {"budget": 5}}')$$, '22023',
                   'limits has unknown key(s): budget');
SELECT pg_temp.bad($$SELECT aos_cus.set_limits('abcdef00-0000-4000-8000-000000000001', 'abcdef00-0000-4000-8000-0000000000a2', NULL)$$, '22004', 'limits must not be null');
SELECT pg_temp.bad($$SELECT aos_cus.set_limits('abcdef00-0000-4000-8000-000000000001', 'abcdef00-0000-4000-8000-0000000000a2', '"x"')$$, '22023', NULL);
SELECT pg_temp.bad($$SELECT aos_cus.set_limits('abcdef00-0000-4000-8000-000000000001', 'abcdef00-0000-4000-8000-0000000000a2', '{"budget_microcents": -1}')$$, '22003',
                   'limits.budget_microcents must be between 0 and 9223372036854775807, not -1');
SELECT pg_temp.bad($$SELECT aos_cus.set_limits('abcdef00-0000-4000-8000-000000000001', 'abcdef00-0000-4000-8000-0000000000a2', '{"budget_microcents": 9223372036854775808}')$$, '22003', NULL);
SELECT pg_temp.bad($$SELECT aos_cus.set_limits('abcdef00-0000-4000-8000-000000000001', 'abcdef00-0000-4000-8000-0000000000a2', '{"budget_microcents": 1.5}')$$, '22023',
                   'limits.budget_microcents must be an integer, not 1.5');
SELECT pg_temp.bad($$SELECT aos_cus.set_limits('abcdef00-0000-4000-8000-000000000001', 'abcdef00-0000-4000-8000-0000000000a2', '{"budget_microcents": "100"}')$$, '22023',
                   'limits.budget_microcents must be an integer, not string');
SELECT pg_temp.bad($$SELECT aos_cus.set_limits('abcdef00-0000-4000-8000-000000000001', 'abcdef00-0000-4000-8000-0000000000a2', '{"budget_period": "year"}')$$, '22023',
                   'limits.budget_period must be one of day, week, month, total, not "year"');
SELECT pg_temp.bad($$SELECT aos_cus.set_limits('abcdef00-0000-4000-8000-000000000001', 'abcdef00-0000-4000-8000-0000000000a2', '{"token_period": 1}')$$, '22023', NULL);
SELECT pg_temp.bad($$SELECT aos_cus.set_limits('abcdef00-0000-4000-8000-000000000001', 'abcdef00-0000-4000-8000-0000000000a2', '{"token_limit": -5}')$$, '22003', NULL);
SELECT pg_temp.bad($$SELECT aos_cus.set_limits('abcdef00-0000-4000-8000-000000000001', 'abcdef00-0000-4000-8000-0000000000a2', '{"rpm": 0}')$$, '22003', 'limits.rpm must be between 1 and 2147483647, not 0');
SELECT pg_temp.bad($$SELECT aos_cus.set_limits('abcdef00-0000-4000-8000-000000000001', 'abcdef00-0000-4000-8000-0000000000a2', '{"rpm": 2147483648}')$$, '22003', NULL);
SELECT pg_temp.bad($$SELECT aos_cus.set_limits('abcdef00-0000-4000-8000-000000000001', 'abcdef00-0000-4000-8000-0000000000a2', '{"tpm": 0}')$$, '22003', NULL);
SELECT pg_temp.bad($$SELECT aos_cus.set_limits('abcdef00-0000-4000-8000-000000000001', 'abcdef00-0000-4000-8000-0000000000a2', '{"warn_at_pct": 0}')$$, '22003', 'limits.warn_at_pct must be between 1 and 100, not 0');
SELECT pg_temp.bad($$SELECT aos_cus.set_limits('abcdef00-0000-4000-8000-000000000001', 'abcdef00-0000-4000-8000-0000000000a2', '{"warn_at_pct": 101}')$$, '22003', NULL);
SELECT pg_temp.bad($$SELECT aos_cus.set_limits('abcdef00-0000-4000-8000-000000000001', 'abcdef00-0000-4000-8000-0000000000a2', '{"mode": "block"}')$$, '22023', 'limits.mode must be one of enforce, warn, off, not "block"');
SELECT pg_temp.bad($$SELECT aos_cus.set_limits('abcdef00-0000-4000-8000-000000000001', 'abcdef00-0000-4000-8000-0000000000a2', '{"timezone": "Mars/Olympus"}')$$, '22023',
                   'limits.timezone must be an IANA time zone such as Europe/Paris, not "Mars/Olympus"');
SELECT pg_temp.bad($$SELECT aos_cus.set_limits('abcdef00-0000-4000-8000-000000000001', 'abcdef00-0000-4000-8000-0000000000a2', '{"timezone": "UTC+5"}')$$, '22023', NULL);
SELECT pg_temp.bad($$SELECT aos_cus.set_limits('abcdef00-0000-4000-8000-000000000001', 'abcdef00-0000-4000-8000-0000000000a2', '{"timezone": "europe/paris"}')$$, '22023', NULL);
SELECT pg_temp.bad($$SELECT aos_cus.set_limits('abcdef00-0000-4000-8000-000000000001', 'abcdef00-0000-4000-8000-0000000000a2', '{"timezone": "../../etc/passwd"}')$$, '22023', NULL);
SELECT pg_temp.bad($$SELECT aos_cus.set_limits('abcdef00-0000-4000-8000-000000000001', 'abcdef00-0000-4000-8000-0000000000a2', '{"timezone": 5}')$$, '22023', 'limits.timezone must be a string, not 5');
SELECT pg_temp.bad(format($$SELECT aos_cus.set_limits('abcdef00-0000-4000-8000-000000000001', 'abcdef00-0000-4000-8000-0000000000a2', '{"timezone": "%s"}')$$, repeat('A', 100)), '22023', NULL);
SELECT is((s).limits ->> 'timezone', 'America/Argentina/Buenos_Aires', 'a three-part IANA zone is accepted')
  FROM (SELECT aos_cus.set_limits('abcdef00-0000-4000-8000-000000000001', 'abcdef00-0000-4000-8000-0000000000a2', '{"timezone": "America/Argentina/Buenos_Aires"}') s) x;
SELECT pg_temp.bad($$SELECT aos_cus.update_integration('abcdef00-0000-4000-8000-000000000001', 'abcdef00-0000-4000-8000-0000000000a2', NULL)$$, '22004', 'patch must not be null');
SELECT pg_temp.bad($$SELECT aos_cus.update_integration('abcdef00-0000-4000-8000-000000000001', 'abcdef00-0000-4000-8000-0000000000a2', '{"status": "enabled"}')$$, '22023',
                   'patch has unknown key(s): status');
SELECT pg_temp.bad($$SELECT aos_cus.update_integration('abcdef00-0000-4000-8000-000000000001', 'abcdef00-0000-4000-8000-0000000000a2', '{"credential_ref": "vault://x"}')$$, '22023', NULL);
SELECT pg_temp.bad($$SELECT aos_cus.update_integration('abcdef00-0000-4000-8000-000000000001', 'abcdef00-0000-4000-8000-0000000000a2', '{"name": null}')$$, '22004', 'name must not be null');
SELECT pg_temp.bad($$SELECT aos_cus.update_integration('abcdef00-0000-4000-8000-000000000001', 'abcdef00-0000-4000-8000-0000000000a2', '{"name": 42}')$$, '22023', 'name must be a string, not 42');
SELECT pg_temp.bad($$SELECT aos_cus.update_integration('abcdef00-0000-4000-8000-000000000001', 'abcdef00-0000-4000-8000-0000000000a2', '{"config": null}')$$, '22023', 'config must be a JSON object, not null');
SELECT pg_temp.bad($$SELECT aos_cus.list_integrations('abcdef00-0000-4000-8000-000000000001', 'live')$$, '22023', NULL);
SELECT pg_temp.bad($$SELECT aos_cus.list_integrations('abcdef00-0000-4000-8000-000000000001', page_size => 0)$$, '22023', 'page_size must be between 1 and 1000, not 0');
SELECT pg_temp.bad($$SELECT aos_cus.list_integrations('abcdef00-0000-4000-8000-000000000001', page_size => 1001)$$, '22023', NULL);
SELECT pg_temp.bad($$SELECT aos_cus.list_integrations('abcdef00-0000-4000-8000-000000000001', page_size => -1)$$, '22023', NULL);
SELECT pg_temp.bad($$SELECT aos_cus.list_integrations('abcdef00-0000-4000-8000-000000000001', page_size => NULL)$$, '22004', 'page_size must not be null');
SELECT pg_temp.bad($$SELECT aos_cus.list_integrations(NULL)$$, '22004', 'tenant_id must not be null');
SELECT pg_temp.bad(format('SELECT aos_cus.%s(%L, NULL)', fn, 'abcdef00-0000-4000-8000-000000000001'), '22004', 'integration_id must not be null')
  FROM unnest(ARRAY['get_integration', 'enable_integration', 'disable_integration', 'delete_integration']) fn;
SELECT pg_temp.bad(format('SELECT aos_cus.%s(NULL, %L)', fn, 'abcdef00-0000-4000-8000-0000000000a2'), '22004', 'tenant_id must not be null')
  FROM unnest(ARRAY['get_integration', 'enable_integration', 'disable_integration', 'delete_integration']) fn;
SELECT pg_temp.bad(format('SELECT aos_cus.%s(%L, %L)', fn, 'abcdef00-0000-4000-8000-000000000001', 'abcdef00-0000-4000-8000-0000000009ff'), '42704',
                   'integration abcdef00-0000-4000-8000-0000000009ff does not exist for this tenant')
  FROM unnest(ARRAY['get_integration', 'enable_integration', 'disable_integration', 'delete_integration']) fn;
SELECT pg_temp.bad($$SELECT aos_cus.update_integration('abcdef00-0000-4000-8000-000000000001', 'abcdef00-0000-4000-8000-0000000009ff', '{}')$$, '42704', NULL);
SELECT pg_temp.bad($$SELECT aos_cus.set_limits('abcdef00-0000-4000-8000-000000000001', 'abcdef00-0000-4000-8000-0000000009ff', '{}')$$, '42704', NULL);
SELECT pg_temp.bad($$SELECT aos_cus.get_integration('abcdef00-0000-4000-8000-000000000001', 'not-a-uuid')$$, '22P02', NULL);
SELECT pg_temp.bad($$SELECT aos_cus.create_integration('abcdef00-0000-4000-8000-000000000001', 'n', 'openai', convert_from('\xc328'::bytea, 'UTF8'))$$,
                   '22021', NULL);

-- 5. Pagination: stable order by id, each row once, page_size respected, status filter.
SELECT is((SELECT count(*)::int FROM aos_cus.list_integrations('abcdef00-0000-4000-8000-000000000001', page_size => 5)), 5, 'page_size bounds a page');
CREATE FUNCTION pg_temp.walk(st text, size int) RETURNS uuid[] LANGUAGE plpgsql AS $$
DECLARE seen uuid[] := '{}'; last uuid; page uuid[];
BEGIN
    LOOP
        SELECT array_agg(id ORDER BY id) INTO page FROM aos_cus.list_integrations('abcdef00-0000-4000-8000-000000000001', st, last, size);
        EXIT WHEN page IS NULL;
        seen := seen || page;
        last := page[array_length(page, 1)];
    END LOOP;
    RETURN seen;
END $$;
SELECT is(pg_temp.walk(NULL, 3), (SELECT array_agg(id ORDER BY id) FROM aos_cus.cus_integrations
                                   WHERE tenant_id = 'abcdef00-0000-4000-8000-000000000001' AND status <> 'deleted'),
          'walking pages of 3 returns every non-deleted integration once, in id order');
SELECT is(pg_temp.walk('deleted', 2), (SELECT array_agg(id ORDER BY id) FROM aos_cus.cus_integrations
                                        WHERE tenant_id = 'abcdef00-0000-4000-8000-000000000001' AND status = 'deleted'),
          'status => deleted lists the deleted ones');

-- 6. Privileges: reads for every role, management for aos_cus_admin only.
CREATE ROLE tap_i_app IN ROLE aos_cus_app;
CREATE ROLE tap_i_reader IN ROLE aos_cus_reader;
SET ROLE tap_i_app;
SELECT ok((SELECT count(*) FROM aos_cus.list_integrations('abcdef00-0000-4000-8000-000000000001')) > 0, 'app can list');
SELECT pg_temp.bad($$SELECT aos_cus.create_integration('abcdef00-0000-4000-8000-000000000001', 'n', 'openai', 'sk-x-000000000000000')$$, '42501', NULL);
SELECT pg_temp.bad($$SELECT aos_cus.disable_integration('abcdef00-0000-4000-8000-000000000001', 'abcdef00-0000-4000-8000-0000000000a2')$$, '42501', NULL);
SELECT pg_temp.bad($$UPDATE aos_cus.cus_integrations SET status = 'enabled'$$, '42501', NULL);
SET ROLE tap_i_reader;
SELECT is(g.name, 'vaulted-2', 'reader can get') FROM aos_cus.get_integration('abcdef00-0000-4000-8000-000000000001', 'abcdef00-0000-4000-8000-0000000000a2') g;
SELECT pg_temp.bad($$SELECT aos_cus.set_limits('abcdef00-0000-4000-8000-000000000001', 'abcdef00-0000-4000-8000-0000000000a2', '{}')$$, '42501', NULL);
RESET ROLE;
SELECT is((SELECT count(*)::int FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
            WHERE n.nspname = 'aos_cus' AND p.proname <> 'current_tenant' AND has_function_privilege('public', p.oid, 'EXECUTE')), 0,
          'no aos_cus function but current_tenant() is executable by PUBLIC');
SELECT is((SELECT count(*)::int FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
            WHERE n.nspname = 'aos_cus' AND p.proname IN ('create_integration', 'get_integration', 'list_integrations', 'update_integration',
                  'delete_integration', 'enable_integration', 'disable_integration', 'set_limits', 'rotate_credential') AND p.prosecdef), 0,
          'management functions run with the caller''s rights (row-level security applies)');

SELECT * FROM finish();
ROLLBACK;
