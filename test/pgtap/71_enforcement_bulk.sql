-- A bulk insert of usage across many integrations holds no settlement lock until it commits (then at most 32).
BEGIN;
SELECT plan(3);

INSERT INTO aos_cus.cus_integrations (tenant_id, id, name, provider, status)
SELECT 'b0b0b0b0-0000-4000-8000-000000000001', gen_random_uuid(), 'bulk-' || g, 'openai', 'enabled'
  FROM generate_series(1, 10000) g;

SELECT lives_ok($$
    INSERT INTO aos_cus.cus_llm_usage (tenant_id, integration_id, call_id, provider, model, started_at,
                                       input_tokens, output_tokens)
    SELECT tenant_id, id, 'bulk-call-' || name, 'openai', 'gpt-4o', now(), 100, 10
      FROM aos_cus.cus_integrations WHERE tenant_id = 'b0b0b0b0-0000-4000-8000-000000000001'$$,
    'one INSERT of usage for 10,000 integrations succeeds with the default max_locks_per_transaction');
SELECT is((SELECT count(*)::int FROM pg_locks
            WHERE locktype = 'advisory' AND objsubid = 41052 AND pid = pg_backend_pid()), 0,
          'before its commit the transaction holds no settlement lock (at most 32 stripes, taken at commit)');
SELECT is((SELECT count(*)::int FROM aos_cus.cus_llm_usage WHERE tenant_id = 'b0b0b0b0-0000-4000-8000-000000000001'),
          10000, 'every usage row landed');

SELECT * FROM finish();
ROLLBACK;
