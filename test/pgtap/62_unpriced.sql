-- Issue 21 (4): unpriced usage is never silent: the row keeps its reason, ingest_unpriced counts it, and
-- reprice_usage() settles the true spend into enforcement (current_usage). Commits (settlement happens at
-- commit), so it runs without an enclosing transaction and removes its rows at the end.
\set ON_ERROR_STOP 1
SELECT plan(11);
\set t '''62626262-0000-4000-8000-000000000001'''
\set i '''62626262-0000-4000-8000-0000000000a1'''

INSERT INTO aos_cus.cus_integrations (tenant_id, id, name, provider, status, budget_microcents)
VALUES (:t, :i, 'tap-unpriced', 'openai', 'enabled', 100000000);
CREATE TEMP TABLE before AS
    SELECT value FROM aos_cus.stat_counters() WHERE name = 'ingest_unpriced';

-- A typo of a model (no price of it): the row is kept, its cost NULL, with the reason.
SELECT is((SELECT status || '/' || coalesce(cost_microcents::text, 'null') FROM aos_cus.ingest_usage(:t,
          jsonb_build_object('integration_id', :i, 'call_id', 'tap-np-1', 'provider', 'openai', 'model', 'tap-gpt4o',
                             'input_tokens', 1000000, 'output_tokens', 500000, 'started_at', now()))),
          'inserted/null', 'ingest_usage keeps an unpriced row, cost NULL');
SELECT is((SELECT unpriced_reason FROM aos_cus.cus_llm_usage WHERE tenant_id = :t AND call_id = 'tap-np-1'),
          'no price in force at started_at for model ''tap-gpt4o'' of provider openai, service tier standard',
          'the row says why it has no cost');
SELECT is((SELECT error FROM aos_cus.ingest_usage_batch(:t, jsonb_build_array(jsonb_build_object(
          'integration_id', :i, 'call_id', 'tap-np-2', 'provider', 'openai', 'model', 'tap-gpt4o',
          'input_tokens', 10, 'started_at', now())))),
          'unpriced: no price in force at started_at for model ''tap-gpt4o'' of provider openai, service tier standard',
          'ingest_usage_batch reports it in the record''s error column, status inserted');
SELECT is((SELECT value FROM aos_cus.stat_counters() WHERE name = 'ingest_unpriced') - (SELECT value FROM before),
          2::bigint, 'stat_counters(): ingest_unpriced counts both rows');
SELECT matches(aos_cus.metrics(), E'\n# HELP aos_cus_ingest_unpriced_total [^\n]+\n# TYPE aos_cus_ingest_unpriced_total counter\naos_cus_ingest_unpriced_total [0-9]+\n',
               'metrics() exports aos_cus_ingest_unpriced_total, documented and typed');
SELECT is((SELECT ROW(spent_microcents, tokens_used)::text FROM aos_cus.current_usage(:t, :i)), '(0,1500010)',
          'unpriced: enforcement counts the tokens, no spend');

-- A price for the model arrives; reprice_usage() prices the rows and enforcement sees the spend.
SELECT ok(aos_cus.set_price('openai', 'tap-gpt4o', 2000000, 8000000, effective_from => now() - interval '1 day') > 0,
          'the operator prices the model');
SELECT is(aos_cus.reprice_usage(now() - interval '1 hour', now() + interval '1 hour'), 2::bigint,
          'reprice_usage prices both rows');
SELECT is((SELECT ROW(cost_microcents, unpriced_reason)::text FROM aos_cus.cus_llm_usage
            WHERE tenant_id = :t AND call_id = 'tap-np-1'), '(6000000,)', 'the row has its cost and no reason left');
SELECT is((SELECT spent_microcents FROM aos_cus.current_usage(:t, :i)),
          (SELECT sum(cost_microcents)::bigint FROM aos_cus.cus_llm_usage WHERE tenant_id = :t),
          'after reprice_usage current_usage() shows the true spend (the settle trigger applied the difference)');
SELECT is((SELECT value FROM aos_cus.stat_counters() WHERE name = 'ingest_unpriced') - (SELECT value FROM before),
          2::bigint, 'a counter of events: repricing does not take it back');

SELECT * FROM finish();

DELETE FROM aos_cus.cus_model_prices WHERE model = 'tap-gpt4o';
DELETE FROM aos_cus.cus_usage_daily WHERE tenant_id = :t;
DELETE FROM aos_cus.cus_llm_usage WHERE tenant_id = :t;
DELETE FROM aos_cus.cus_integrations WHERE tenant_id = :t;
