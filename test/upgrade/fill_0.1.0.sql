-- Data written through 0.1.0's own API before ALTER EXTENSION aos_cus UPDATE (scripts/test.sh, pgTAP "upgraded"):
-- integrations with an encrypted key and limits, ingested usage, a rollup, health results. Tenant fe000000-...
-- keeps it apart from the pgTAP suite's own rows; test/upgrade/verify.sql checks it after the update.
\set ON_ERROR_STOP 1
SET aos_cus.tenant_id = 'fe000000-0000-4000-8000-000000000001';
SELECT aos_cus.create_integration('fe000000-0000-4000-8000-000000000001', 'upgrade-openai', 'openai',
    'sk-upgrade-0123456789abcdefghij', '{"id": "fe000000-0000-4000-8000-0000000000a1"}');
SELECT aos_cus.create_integration('fe000000-0000-4000-8000-000000000001', 'upgrade-anthropic', 'anthropic',
    'sk-ant-upgrade-0123456789abcdefghij', '{"id": "fe000000-0000-4000-8000-0000000000a2"}');
SELECT aos_cus.enable_integration('fe000000-0000-4000-8000-000000000001', 'fe000000-0000-4000-8000-0000000000a1');
SELECT aos_cus.set_limits('fe000000-0000-4000-8000-000000000001', 'fe000000-0000-4000-8000-0000000000a1',
    '{"budget_microcents": 123456789, "budget_period": "month", "token_limit": 4242, "token_period": "day",
      "rpm": 77, "warn_at_pct": 70, "mode": "warn", "timezone": "Asia/Kathmandu"}');
-- The new library reads limits on the 0.1.0 schema, which has no rph and rpd (loaded without them).
SELECT spent_microcents FROM aos_cus.current_usage('fe000000-0000-4000-8000-000000000001', 'fe000000-0000-4000-8000-0000000000a1');
SELECT count(*) FROM aos_cus.ingest_usage_batch('fe000000-0000-4000-8000-000000000001', (
    SELECT jsonb_agg(jsonb_build_object('integration_id', 'fe000000-0000-4000-8000-0000000000a' || (1 + g % 2),
               'call_id', 'up-' || g, 'provider', CASE g % 2 WHEN 0 THEN 'openai' ELSE 'anthropic' END,
               'model', CASE g % 2 WHEN 0 THEN 'gpt-4o' ELSE 'claude-3-5-sonnet' END,
               'input_tokens', 100 * g, 'output_tokens', 10 * g,
               'started_at', '2026-05-01T00:00:00Z'::timestamptz + g * interval '7 hours'))
      FROM generate_series(1, 200) g));
SELECT aos_cus.rollup_usage();
-- Rows after the rollup stay unfolded until the next one.
SELECT count(*) FROM aos_cus.ingest_usage_batch('fe000000-0000-4000-8000-000000000001', (
    SELECT jsonb_agg(jsonb_build_object('integration_id', 'fe000000-0000-4000-8000-0000000000a1', 'call_id', 'late-' || g,
               'provider', 'openai', 'model', 'gpt-4o-mini', 'input_tokens', 1000, 'output_tokens', 50,
               'started_at', '2026-05-03T12:00:00Z'))
      FROM generate_series(1, 10) g));
RESET aos_cus.tenant_id;
SELECT aos_cus.record_health('fe000000-0000-4000-8000-000000000001', 'fe000000-0000-4000-8000-0000000000a1', 'healthy', 120, NULL);
SELECT aos_cus.record_health('fe000000-0000-4000-8000-000000000001', 'fe000000-0000-4000-8000-0000000000a2', 'failing', 900,
    'HTTP 401: credential rejected');
-- What verify.sql compares with after the update.
CREATE TABLE public.upgrade_expected AS
SELECT (SELECT count(*) FROM aos_cus.cus_llm_usage WHERE tenant_id = 'fe000000-0000-4000-8000-000000000001') AS usage_rows,
       (SELECT sum(cost_microcents) FROM aos_cus.cus_llm_usage WHERE tenant_id = 'fe000000-0000-4000-8000-000000000001') AS usage_cost,
       (SELECT sum(cost_microcents) FROM aos_cus.cus_usage_daily WHERE tenant_id = 'fe000000-0000-4000-8000-000000000001') AS daily_cost,
       (SELECT credential_ref FROM aos_cus.cus_integrations WHERE id = 'fe000000-0000-4000-8000-0000000000a1') AS ref;
