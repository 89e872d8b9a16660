-- Issue 21: what a new DBA or app developer meets first: onboarding, truthful reads and errors, the public surface.
BEGIN;
SELECT plan(31);

SET LOCAL aos_cus.tenant_id = 'f1f1f1f1-0000-4000-8000-000000000001';
\set t '''f1f1f1f1-0000-4000-8000-000000000001'''

-- 1. "enabled": true in create_integration's options: check() admits at once; without it the integration blocks.
SELECT is(aos_cus.create_integration(:t, 'on-at-once', 'openai', 'sk-proj-first-hour-0000000000001',
          '{"id": "f1f1f1f1-0000-4000-8000-0000000000a1", "enabled": true}'),
          'f1f1f1f1-0000-4000-8000-0000000000a1'::uuid, 'create_integration accepts "enabled": true');
SELECT is(status, 'enabled', 'it starts enabled')
  FROM aos_cus.get_integration(:t, 'f1f1f1f1-0000-4000-8000-0000000000a1');
SELECT is((SELECT decision || '/' || reason FROM aos_cus.check(:t, 'f1f1f1f1-0000-4000-8000-0000000000a1')),
          'allowed/ok', 'check() admits a call of an integration created enabled');
SELECT aos_cus.create_integration(:t, 'off-by-default', 'openai', 'sk-proj-first-hour-0000000000002',
       '{"id": "f1f1f1f1-0000-4000-8000-0000000000a2", "enabled": false}');
SELECT is((SELECT decision || '/' || reason FROM aos_cus.check(:t, 'f1f1f1f1-0000-4000-8000-0000000000a2')),
          'blocked/integration_disabled', '"enabled": false (or no key) leaves it created: check() blocks');
SELECT throws_ok($$SELECT aos_cus.create_integration(current_setting('aos_cus.tenant_id')::uuid, 'x', 'openai',
                   'sk-proj-first-hour-0000000000003', '{"enabled": "yes"}')$$,
                 '22023', 'options.enabled must be true or false, not "yes"', 'a non-boolean enabled is refused, quoted');

-- 2. One name per field: limits read back as "mode", and integration_limits() names it mode too; the column's
-- name enforcement_mode is accepted on input.
SELECT is((aos_cus.set_limits(:t, 'f1f1f1f1-0000-4000-8000-0000000000a1', '{"enforcement_mode": "warn"}')).limits ->> 'mode',
          'warn', 'set_limits accepts enforcement_mode and reads it back as mode');
SELECT is(mode, 'warn', 'integration_limits() returns mode')
  FROM aos_cus.integration_limits(:t, 'f1f1f1f1-0000-4000-8000-0000000000a1');
SELECT throws_ok($$SELECT aos_cus.set_limits(current_setting('aos_cus.tenant_id')::uuid, 'f1f1f1f1-0000-4000-8000-0000000000a1',
                   '{"mode": "off", "enforcement_mode": "warn"}')$$,
                 '22023', 'limits has both mode and enforcement_mode: give mode only', 'both names at once are refused');

-- 3. Remaining is NULL where there is no limit, a number where there is one.
SELECT ok(budget_remaining_microcents IS NULL AND tokens_remaining IS NULL, 'no limits: remaining is NULL, not 0')
  FROM aos_cus.integration_limits(:t, 'f1f1f1f1-0000-4000-8000-0000000000a1');
SELECT aos_cus.set_limits(:t, 'f1f1f1f1-0000-4000-8000-0000000000a1', '{"budget_microcents": 1000, "token_limit": 0}');
SELECT is(ROW(budget_remaining_microcents, tokens_remaining)::text, '(1000,0)', 'with limits: what remains, 0 included')
  FROM aos_cus.integration_limits(:t, 'f1f1f1f1-0000-4000-8000-0000000000a1');

-- 4. Errors quote the offending value and carry no CONTEXT lines of internal helpers.
CREATE FUNCTION pg_temp.error_of(sql text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    m text;
    c text;
BEGIN
    EXECUTE sql;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS m = MESSAGE_TEXT, c = PG_EXCEPTION_CONTEXT;
    RETURN m || ' | context: ' || c;
END
$$;
SELECT is(pg_temp.error_of($$SELECT aos_cus.set_limits('f1f1f1f1-0000-4000-8000-000000000001',
            'f1f1f1f1-0000-4000-8000-0000000000a1', '{"rpm": 0}')$$),
          'limits.rpm must be between 1 and 2147483647, not 0 | context: ', 'a limit error: the value, no CONTEXT');
SELECT is(pg_temp.error_of($$SELECT aos_cus.create_integration('f1f1f1f1-0000-4000-8000-000000000001', 'p', 'openia',
            'sk-proj-first-hour-0000000000004')$$),
          'provider "openia" is not one of openai, anthropic, google, azure_openai, aws_bedrock, mistral, custom | context: ',
          'a bad provider: quoted, no CONTEXT');
SELECT is(pg_temp.error_of($$SELECT aos_cus.update_integration('f1f1f1f1-0000-4000-8000-000000000001',
            'f1f1f1f1-0000-4000-8000-0000000000a1', '{"limits": {"timezone": "Mars/Olympus"}}')$$),
          'limits.timezone must be an IANA time zone such as Europe/Paris, not "Mars/Olympus" | context: ',
          'update_integration: no CONTEXT');
SELECT is(pg_temp.error_of($$SELECT aos_cus.disable_integration('f1f1f1f1-0000-4000-8000-000000000001',
            'f1f1f1f1-0000-4000-8000-0000000000a2')$$),
          'integration f1f1f1f1-0000-4000-8000-0000000000a2 cannot go from status created to disabled | context: ',
          'a lifecycle error through disable_integration: no CONTEXT of the trigger or helpers');
SELECT is(pg_temp.error_of($$SELECT aos_cus.get_integration('f1f1f1f1-0000-4000-8000-000000000002',
            'f1f1f1f1-0000-4000-8000-0000000000a1')$$) ~ 'context: $', true, 'another tenant''s 42501: no CONTEXT');

-- 5. release_reservation(): a checked call that will not happen frees its estimate at once, not after the TTL.
SELECT is((SELECT decision FROM aos_cus.check(:t, 'f1f1f1f1-0000-4000-8000-0000000000a1', 10, 0, 'fh-call')) <> 'blocked',
          true, 'check() with a call_id admits and reserves');
SELECT is(ROW(reserved_microcents, active_reservations)::text, '(10,1)', 'the estimate is held')
  FROM aos_cus.current_usage(:t, 'f1f1f1f1-0000-4000-8000-0000000000a1');
SELECT is(aos_cus.release_reservation(:t, 'fh-call'), true, 'release_reservation() frees it');
SELECT is(ROW(reserved_microcents, active_reservations)::text, '(0,0)', 'nothing is held any more')
  FROM aos_cus.current_usage(:t, 'f1f1f1f1-0000-4000-8000-0000000000a1');
SELECT is(aos_cus.release_reservation(:t, 'fh-call'), false, 'a second release finds nothing');
SELECT throws_ok($$SELECT aos_cus.release_reservation('f1f1f1f1-0000-4000-8000-000000000002', 'fh-call')$$, '42501', NULL,
                 'another tenant''s release is refused (42501)');

-- A check() with the call_id of a call already ingested reserves nothing and says so.
SELECT is((aos_cus.ingest_usage(:t, '{"integration_id": "f1f1f1f1-0000-4000-8000-0000000000a1", "call_id": "fh-done",
          "model": "gpt-4o", "input_tokens": 1, "output_tokens": 1}'::jsonb || jsonb_build_object('started_at', now()))).status,
          'inserted', 'a call is ingested');
SELECT is((SELECT decision || '/' || reason || '/' || coalesce(retry_after_ms::text, 'null')
             FROM aos_cus.check(:t, 'f1f1f1f1-0000-4000-8000-0000000000a1', 10, 0, 'fh-done')),
          'blocked/already_ingested/null', 'check() of its call_id: blocked / already_ingested');
SELECT is(ROW(reserved_microcents, active_reservations)::text, '(0,0)', 'and nothing is reserved')
  FROM aos_cus.current_usage(:t, 'f1f1f1f1-0000-4000-8000-0000000000a1');
SELECT is((SELECT reason FROM aos_cus.cus_enforcement_log WHERE call_id = 'fh-done'), 'already_ingested', 'the refusal is logged');

-- 6. The public surface: helpers live in aos_cus_internal, which PUBLIC cannot execute; stats are the operator's.
SELECT is((SELECT count(*)::int FROM pg_proc p WHERE p.pronamespace = 'aos_cus'::regnamespace
            AND p.proname IN ('apply_limits', 'check_integration_fields', 'check_integration_name', 'check_keys',
                              'integration_for_update', 'limit_choice', 'limit_integer', 'patch_text',
                              'set_integration_status', 'check_credential_ref', 'integration_of', 'is_iana_timezone',
                              'price_providers', 'saturate', 'fold_usage')), 0, 'no helper is left in schema aos_cus');
SELECT is((SELECT count(*)::int FROM pg_proc p WHERE p.pronamespace = 'aos_cus_internal'::regnamespace
            AND has_function_privilege('public', p.oid, 'EXECUTE')), 0, 'PUBLIC executes nothing in aos_cus_internal');
CREATE ROLE fh_reader IN ROLE aos_cus_reader;
CREATE ROLE fh_app IN ROLE aos_cus_app;
SELECT is((SELECT count(*)::int FROM unnest(ARRAY['fh_reader', 'fh_app']) r,
                  unnest(ARRAY['aos_cus.stat_counters()', 'aos_cus.stat_decisions()', 'aos_cus.stat_enforcement()']) f
            WHERE has_function_privilege(r, f, 'EXECUTE')), 0,
          'stat_counters(), stat_decisions(), stat_enforcement(): not for reader or app (operator, pg_monitor)');
SELECT ok(has_function_privilege('pg_monitor', 'aos_cus.stat_counters()', 'EXECUTE')
          AND has_function_privilege('aos_cus_operator', 'aos_cus.stat_enforcement()', 'EXECUTE'), 'pg_monitor and the operator may');

-- 7. DROP EXTENSION removes the schemas it created.
SAVEPOINT before_drop;
DROP EXTENSION aos_cus CASCADE;
SELECT is((SELECT count(*)::int FROM pg_namespace WHERE nspname IN ('aos_cus', 'aos_cus_internal')), 0,
          'DROP EXTENSION leaves no aos_cus or aos_cus_internal schema');
ROLLBACK TO SAVEPOINT before_drop;
SELECT is((SELECT count(*)::int FROM pg_namespace n JOIN pg_depend d ON d.classid = 'pg_namespace'::regclass
            AND d.objid = n.oid AND d.deptype = 'e' WHERE n.nspname IN ('aos_cus', 'aos_cus_internal')), 2,
          'both schemas are members of the extension');

SELECT * FROM finish();
ROLLBACK;
