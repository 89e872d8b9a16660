-- After ALTER EXTENSION aos_cus UPDATE: the data test/upgrade/fill_0.1.0.sql wrote through 0.1.0 is intact and
-- usable through the current API. Removes it at the end, so the pgTAP suite then runs on the updated database.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
SELECT plan(14);
SELECT is((SELECT extversion FROM pg_extension WHERE extname = 'aos_cus'),
          (SELECT default_version FROM pg_available_extensions WHERE name = 'aos_cus'), 'the extension is at the current version');
SELECT is(aos_cus.resolve_credential('fe000000-0000-4000-8000-000000000001', 'fe000000-0000-4000-8000-0000000000a1'),
          'sk-upgrade-0123456789abcdefghij', 'a key encrypted by 0.1.0 decrypts');
SELECT is(aos_cus.resolve_credential('fe000000-0000-4000-8000-000000000001', 'fe000000-0000-4000-8000-0000000000a2'),
          'sk-ant-upgrade-0123456789abcdefghij', 'and the other one');
SELECT is((SELECT credential_ref FROM aos_cus.cus_integrations WHERE id = 'fe000000-0000-4000-8000-0000000000a1'),
          (SELECT ref FROM public.upgrade_expected), 'the stored reference is unchanged');
SELECT is((SELECT (budget_microcents, budget_period, token_limit, token_period, rpm, warn_at_pct, enforcement_mode, timezone)::text
             FROM aos_cus.cus_integrations WHERE id = 'fe000000-0000-4000-8000-0000000000a1'),
          '(123456789,month,4242,day,77,70,warn,Asia/Kathmandu)', 'limits are intact');
SELECT is((SELECT (count(*), sum(cost_microcents)) FROM aos_cus.cus_llm_usage WHERE tenant_id = 'fe000000-0000-4000-8000-000000000001'),
          (SELECT (usage_rows, usage_cost) FROM public.upgrade_expected), 'usage rows and their cost are intact');
SELECT cmp_ok((SELECT usage_cost FROM public.upgrade_expected), '>', 0::numeric, 'the usage was priced');
SELECT is((SELECT array_agg(DISTINCT tableoid::regclass::text ORDER BY tableoid::regclass::text) FROM aos_cus.cus_llm_usage
            WHERE tenant_id = 'fe000000-0000-4000-8000-000000000001'),
          '{aos_cus.cus_llm_usage_p20260501,aos_cus.cus_llm_usage_p20260601}', 'the 0.1.0 rows moved into monthly partitions');
SELECT is((SELECT (status, usage_id)::text FROM aos_cus.ingest_usage('fe000000-0000-4000-8000-000000000001',
              '{"integration_id": "fe000000-0000-4000-8000-0000000000a1", "call_id": "up-1", "model": "gpt-4o", "started_at": "2026-05-01T07:00:00Z"}')),
          (SELECT ('duplicate', id)::text FROM aos_cus.cus_llm_usage WHERE tenant_id = 'fe000000-0000-4000-8000-000000000001' AND call_id = 'up-1'),
          'a call_id recorded under 0.1.0 is still a duplicate');
SELECT is((SELECT sum(cost_microcents) FROM aos_cus.cus_usage_daily WHERE tenant_id = 'fe000000-0000-4000-8000-000000000001'),
          (SELECT daily_cost FROM public.upgrade_expected), 'daily rollups are intact');
SELECT lives_ok($$SELECT aos_cus.rollup_usage()$$, 'the next rollup folds the rows 0.1.0 left unfolded');
SELECT is((SELECT sum(cost_microcents) FROM aos_cus.cus_usage_daily WHERE tenant_id = 'fe000000-0000-4000-8000-000000000001'),
          (SELECT sum(cost_microcents) FROM aos_cus.cus_llm_usage WHERE tenant_id = 'fe000000-0000-4000-8000-000000000001'),
          'and the rollup then equals the raw rows');
SELECT is((SELECT array_agg(health_state ORDER BY name) FROM aos_cus.cus_integrations
            WHERE tenant_id = 'fe000000-0000-4000-8000-000000000001'), ARRAY['failing', 'healthy'], 'health states are intact');
SELECT is((SELECT spent_microcents FROM aos_cus.current_usage('fe000000-0000-4000-8000-000000000001',
                                                             'fe000000-0000-4000-8000-0000000000a1')),
          (SELECT coalesce(sum(u.cost_microcents), 0)::bigint FROM aos_cus.cus_llm_usage u,
                  aos_cus.limit_period_bounds('month', 'Asia/Kathmandu') b
            WHERE u.integration_id = 'fe000000-0000-4000-8000-0000000000a1' AND u.started_at >= b.period_start
              AND u.started_at < b.period_end), 'enforcement rebuilds the month''s spend from the upgraded tables');
SELECT * FROM finish();

DROP TABLE public.upgrade_expected;
DELETE FROM aos_cus.cus_health_history WHERE tenant_id = 'fe000000-0000-4000-8000-000000000001';
DELETE FROM aos_cus.cus_usage_daily WHERE tenant_id = 'fe000000-0000-4000-8000-000000000001';
DELETE FROM aos_cus.cus_llm_usage WHERE tenant_id = 'fe000000-0000-4000-8000-000000000001';
DELETE FROM aos_cus.cus_integrations WHERE tenant_id = 'fe000000-0000-4000-8000-000000000001';
