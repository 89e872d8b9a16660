-- Time partitions (issue 19): rows of a period without a partition land in the default partition and move into
-- their own; a late row lands in its partition; idempotency holds across partitions inside the window; retention
-- drops whole partitions once rolled up, and reads and enforcement rebuilds (of the integration, the tenant, a
-- subject and a tag) stay exact from the daily rollups.
-- Runs without an enclosing transaction (rollups fold committed rows only) and removes its rows at the end.
\set ON_ERROR_STOP 1
SELECT plan(41);

-- The lines of a statement's plan (EXPLAIN, costs off).
CREATE FUNCTION pg_temp.plan_of(sql text) RETURNS SETOF text LANGUAGE plpgsql AS $$
BEGIN
    RETURN QUERY EXECUTE 'EXPLAIN (COSTS OFF) ' || sql;
END $$;

INSERT INTO aos_cus.cus_integrations (tenant_id, id, name, provider)
VALUES ('62000000-0000-4000-8000-000000000001', '62000000-0000-4000-8000-0000000000a1', 'tap-partitions', 'openai');
SELECT aos_cus.set_limits('62000000-0000-4000-8000-000000000001', '62000000-0000-4000-8000-0000000000a1',
                          '{"budget_microcents": 1000000000000, "budget_period": "total"}') IS NOT NULL;
SELECT aos_cus.set_scope_limits('62000000-0000-4000-8000-000000000001', s, '{"budget_microcents": 1000000000000, "budget_period": "total"}') IS NOT NULL
  FROM unnest(ARRAY['tenant', 'subject:*', 'tag:team=*']) s;
CREATE FUNCTION pg_temp.rec(call_id text, started_at text) RETURNS jsonb LANGUAGE sql AS $$
    SELECT jsonb_build_object('integration_id', '62000000-0000-4000-8000-0000000000a1', 'call_id', call_id,
                              'model', 'gpt-4o', 'input_tokens', 1000, 'output_tokens', 100, 'started_at', started_at,
                              'subject', 'u-62', 'tags', jsonb_build_object('team', 't62'))
$$;
-- Budget spent per scope of the test's calls, as check() sees it.
CREATE FUNCTION pg_temp.spent() RETURNS TABLE (scope text, used bigint) LANGUAGE sql AS $$
    SELECT e.scope, e.used
      FROM aos_cus.explain_check('62000000-0000-4000-8000-000000000001', '62000000-0000-4000-8000-0000000000a1',
                                 subject => 'u-62', tags => '{"team": "t62"}') e
     WHERE e.dimension = 'budget'
$$;
CREATE FUNCTION pg_temp.home(call text) RETURNS text LANGUAGE sql AS $$
    SELECT string_agg(tableoid::regclass::text, ',') FROM aos_cus.cus_llm_usage
     WHERE tenant_id = '62000000-0000-4000-8000-000000000001' AND call_id = call
$$;
CREATE FUNCTION pg_temp.maintained(what text) RETURNS text[] LANGUAGE sql AS $$
    SELECT coalesce(array_agg(partition_name ORDER BY partition_name), '{}')
      FROM aos_cus.maintain_partitions() WHERE table_name = 'cus_llm_usage' AND action = what
$$;

SELECT is((SELECT relkind::text FROM pg_class WHERE oid = 'aos_cus.cus_llm_usage'::regclass), 'p', 'cus_llm_usage is partitioned');
SELECT is((SELECT relkind::text FROM pg_class WHERE oid = 'aos_cus.cus_ingest_rejects'::regclass), 'p', 'and so is cus_ingest_rejects');
SELECT is((SELECT pg_get_partkeydef('aos_cus.cus_llm_usage'::regclass)), 'RANGE (started_at)', 'by started_at');

-- Settings: defaults, checks, and only the operator may change them.
SELECT is((SELECT (partition_interval, idempotency_window, raw_retention, rejects_retention, hourly_retention)::text
             FROM aos_cus.usage_settings()), '("1 mon","35 days",,"30 days","35 days")', 'default settings');
SELECT throws_ok($$SELECT aos_cus.set_retention(interval '1 hour', NULL)$$, '22023',
    'retention raw 01:00:00, rejects NULL: each must be NULL (forever) or at least 1 day', 'a retention under a day is 22023');
SELECT throws_ok($$SELECT aos_cus.set_partitioning(interval '2 months')$$, '22023',
    'partition_interval "2 mons" is not one of 1 day, 7 days, 1 month, 3 months, 1 year', 'an unsupported partition interval is 22023');
SET ROLE aos_cus_admin;
SELECT throws_ok($$SELECT aos_cus.set_retention(interval '1 day', interval '1 day')$$, '42501', NULL, 'a tenant admin cannot set retention');
SELECT throws_ok($$SELECT * FROM aos_cus.maintain_partitions()$$, '42501', NULL, 'nor maintain partitions');
SELECT throws_ok($$SELECT * FROM aos_cus.cus_llm_usage_default$$, '42501', NULL, 'nor read a partition directly');
SELECT throws_ok($$SELECT * FROM aos_cus.cus_usage_keys$$, '42501', NULL, 'nor the idempotency keys');
RESET ROLE;

-- Created ahead: the partitions cover now and at least the next period.
SELECT pg_temp.maintained('created') IS NOT NULL;
SELECT ok((SELECT count(*) FROM aos_cus_internal.partition_bounds('aos_cus.cus_llm_usage')
            WHERE lower <= now() + interval '1 month' AND upper > now() + interval '1 month') = 1
          AND (SELECT count(*) FROM aos_cus_internal.partition_bounds('aos_cus.cus_llm_usage') WHERE lower <= now() AND upper > now()) = 1,
          'partitions exist for now and a month ahead');
SELECT is(pg_temp.maintained('created'), '{}', 'maintenance again creates nothing');

-- A call of a month without a partition lands in the default partition; maintenance moves it; a late row lands in it.
SELECT is((SELECT status FROM aos_cus.ingest_usage('62000000-0000-4000-8000-000000000001', pg_temp.rec('old-1', '2001-01-15T10:00:00Z'))),
          'inserted', 'a call of January 2001 is inserted');
SELECT is(pg_temp.home('old-1'), 'aos_cus.cus_llm_usage_default', 'into the default partition');
SELECT is(pg_temp.maintained('moved'), '{aos_cus.cus_llm_usage_p20010101}', 'maintenance makes January 2001 a partition');
SELECT is(pg_temp.home('old-1'), 'aos_cus.cus_llm_usage_p20010101', 'holding the row');
SELECT is((SELECT count(*)::int FROM aos_cus.cus_llm_usage_default), 0, 'the default partition is empty again');
SELECT is((SELECT status FROM aos_cus.ingest_usage('62000000-0000-4000-8000-000000000001', pg_temp.rec('old-2', '2001-01-31T23:59:59Z'))),
          'inserted', 'a late row of that month');
SELECT is(pg_temp.home('old-2'), 'aos_cus.cus_llm_usage_p20010101', 'lands in its partition');

-- Idempotency across partitions, inside the window.
SELECT is((SELECT (status, usage_id)::text FROM aos_cus.ingest_usage('62000000-0000-4000-8000-000000000001', pg_temp.rec('old-1', '2026-01-01T00:00:00Z'))),
          (SELECT ('duplicate', id)::text FROM aos_cus.cus_llm_usage WHERE call_id = 'old-1' AND tenant_id = '62000000-0000-4000-8000-000000000001'),
          'a duplicate call_id (even with another started_at) is a duplicate of the original row');
SELECT is((SELECT array_agg(status ORDER BY ord) FROM aos_cus.ingest_usage_batch('62000000-0000-4000-8000-000000000001',
              jsonb_build_array(pg_temp.rec('old-2', '2001-01-31T23:59:59Z'), pg_temp.rec('new-1', '2001-01-02T00:00:00Z')))),
          '{duplicate,inserted}', 'in a batch too');
SELECT throws_ok($$INSERT INTO aos_cus.cus_llm_usage (tenant_id, integration_id, call_id, provider, model, started_at)
                   VALUES ('62000000-0000-4000-8000-000000000001', '62000000-0000-4000-8000-0000000000a1', 'old-1', 'openai', 'gpt-4o', now())$$,
    '23505', 'duplicate key value violates unique constraint "cus_llm_usage_tenant_id_call_id_key"', 'a plain INSERT of a duplicate is 23505');
DELETE FROM aos_cus.cus_llm_usage WHERE tenant_id = '62000000-0000-4000-8000-000000000001' AND call_id = 'new-1';
SELECT is((SELECT status FROM aos_cus.ingest_usage('62000000-0000-4000-8000-000000000001', pg_temp.rec('new-1', '2001-01-02T00:00:00Z'))),
          'inserted', 'a deleted row frees its call_id');

-- Past the window (started and ingested more than 35 days ago) a key is pruned: the call counts again.
UPDATE aos_cus.cus_usage_keys SET ingested_at = now() - interval '36 days'
 WHERE tenant_id = '62000000-0000-4000-8000-000000000001' AND call_id = 'old-1';
SELECT pg_temp.maintained('none') IS NOT NULL;
SELECT is((SELECT count(*)::int FROM aos_cus.cus_usage_keys WHERE tenant_id = '62000000-0000-4000-8000-000000000001'), 2,
          'the key past the window is pruned, the recently recorded ones stay');
SELECT is((SELECT status FROM aos_cus.ingest_usage('62000000-0000-4000-8000-000000000001', pg_temp.rec('old-1', '2001-01-15T10:00:00Z'))),
          'inserted', 'a duplicate older than the window is recorded again');
DELETE FROM aos_cus.cus_llm_usage WHERE tenant_id = '62000000-0000-4000-8000-000000000001' AND call_id = 'old-1'
   AND id = (SELECT max(id) FROM aos_cus.cus_llm_usage WHERE tenant_id = '62000000-0000-4000-8000-000000000001' AND call_id = 'old-1');

-- A key past the window but not pruned yet is taken over by the new row, single record and batch alike.
UPDATE aos_cus.cus_usage_keys SET ingested_at = now() - interval '36 days' WHERE tenant_id = '62000000-0000-4000-8000-000000000001' AND call_id IN ('old-2', 'new-1');
SELECT is((SELECT status FROM aos_cus.ingest_usage('62000000-0000-4000-8000-000000000001', pg_temp.rec('old-2', '2001-01-20T00:00:00Z'))), 'inserted',
          'a single record takes over a key past the window that is not pruned yet');
SELECT is((SELECT array_agg(status ORDER BY ord) FROM aos_cus.ingest_usage_batch('62000000-0000-4000-8000-000000000001',
              jsonb_build_array(pg_temp.rec('new-1', '2001-01-03T00:00:00Z'), pg_temp.rec('new-2', '2001-01-03T00:00:00Z')))),
          '{inserted,inserted}', 'so does a batch');
SELECT is((SELECT array_agg(k.call_id ORDER BY k.call_id) FROM aos_cus.cus_usage_keys k JOIN aos_cus.cus_llm_usage u ON u.id = k.usage_id
            WHERE k.tenant_id = '62000000-0000-4000-8000-000000000001' AND u.started_at IN ('2001-01-20T00:00:00Z', '2001-01-03T00:00:00Z')),
          '{new-1,new-2,old-2}', 'each key names the new row');
DELETE FROM aos_cus.cus_llm_usage WHERE tenant_id = '62000000-0000-4000-8000-000000000001' AND started_at IN ('2001-01-20T00:00:00Z', '2001-01-03T00:00:00Z');

-- Rejects land in the current period's partition.
SELECT is((SELECT status FROM aos_cus.ingest_usage_batch('62000000-0000-4000-8000-000000000001', '[{"call_id": "bad"}]')), 'rejected', 'a bad record');
SELECT is((SELECT tableoid::regclass::text FROM aos_cus.cus_ingest_rejects WHERE tenant_id = '62000000-0000-4000-8000-000000000001'),
          'aos_cus.cus_ingest_rejects_p' || to_char(date_trunc('month', now(), 'UTC') AT TIME ZONE 'UTC', 'YYYYMMDD'),
          'is kept in the partition of this month');

-- Retention: a partition with rows not rolled up yet stays; once rolled up it is dropped whole, and the daily
-- rollups answer for it.
CREATE TEMP TABLE spent_before AS SELECT * FROM pg_temp.spent();
SELECT aos_cus.set_retention(interval '3650 days', NULL);
SELECT is(pg_temp.maintained('dropped'), '{}', 'a partition past retention holding rows not rolled up is kept');
SELECT aos_cus.rollup_usage() > 0;
SELECT is(to_regclass('aos_cus.cus_llm_usage_p20010101'), NULL, 'once rolled up, rollup_usage() drops it');
SELECT is(pg_temp.home('old-2'), NULL, 'with its rows');
SELECT is((SELECT count(*)::int FROM aos_cus.cus_usage_keys WHERE tenant_id = '62000000-0000-4000-8000-000000000001'), 0,
          'and their idempotency keys');
SELECT is((SELECT (requests, input_tokens, cost_microcents)::text FROM aos_cus.usage_summary('62000000-0000-4000-8000-000000000001', NULL,
                   '2001-01-01T00:00:00Z', '2001-02-01T00:00:00Z')),
          (SELECT (3, 3000, 3 * cost_microcents)::text FROM aos_cus.ingest_usage('62000000-0000-4000-8000-000000000001', pg_temp.rec('now-1', now()::text))),
          'usage_summary of a month past retention is exact, from the daily rollups');
-- Limits changed: the next use rebuilds the integration's total spend from the durable tables.
SELECT aos_cus.set_limits('62000000-0000-4000-8000-000000000001', '62000000-0000-4000-8000-0000000000a1', '{"warn_at_pct": 90}') IS NOT NULL;
SELECT is((SELECT spent_microcents FROM aos_cus.current_usage('62000000-0000-4000-8000-000000000001', '62000000-0000-4000-8000-0000000000a1')),
          (SELECT 4 * cost_microcents FROM aos_cus.cus_llm_usage WHERE tenant_id = '62000000-0000-4000-8000-000000000001' AND call_id = 'now-1'),
          'an enforcement rebuild counts the dropped rows from the daily rollups');
-- Scope limits changed: the tenant, subject and tag scopes rebuild too, from the daily sums per subject and per tag.
SELECT aos_cus.set_scope_limits('62000000-0000-4000-8000-000000000001', s, '{"warn_at_pct": 90}') IS NOT NULL
  FROM unnest(ARRAY['tenant', 'subject:*', 'tag:team=*']) s;
SELECT set_eq('SELECT * FROM pg_temp.spent()',
              $$SELECT b.scope, b.used + c.cost_microcents FROM spent_before b, aos_cus.cus_llm_usage c
                 WHERE c.tenant_id = '62000000-0000-4000-8000-000000000001' AND c.call_id = 'now-1'$$,
              'rebuilt scopes spend what they spent before retention dropped the rows, plus the new call');
SELECT is((SELECT array_agg(split_part(scope, ':', 1) ORDER BY scope) FROM spent_before WHERE used > 0),
          '{subject,tag,tenant}', 'before, the tenant, subject and tag scopes each had spend');
SELECT is((SELECT (sum(requests), sum(cost_microcents))::text FROM aos_cus.cus_usage_daily_tag
            WHERE tenant_id = '62000000-0000-4000-8000-000000000001' AND tag_key = 'team' AND tag_value = 't62' AND day < '2002-01-01'),
          (SELECT (sum(requests), sum(cost_microcents))::text FROM aos_cus.cus_usage_daily_subject
            WHERE tenant_id = '62000000-0000-4000-8000-000000000001' AND subject = 'u-62' AND day < '2002-01-01'),
          'the dropped rows are in the daily sums of their subject and of their tag');

-- Key pruning reads the block-range summary of ingested_at, not every key (with a sequential scan ruled out, the plan
-- of maintain_partitions()'s statement still finds an index that serves it).
SELECT count(*) >= 0 FROM aos_cus.maintain_partitions();
SELECT is(pg_catalog.brin_summarize_new_values('aos_cus.cus_usage_keys_ingested_at_idx'), 0,
          'maintain_partitions() leaves no block range of keys unsummarized');
BEGIN;
SET LOCAL enable_seqscan = off;
SELECT matches((SELECT string_agg(p, ' ') FROM pg_temp.plan_of($$DELETE FROM aos_cus.cus_usage_keys k
           WHERE k.started_at < now() - interval '35 days' AND k.ingested_at < now() - interval '35 days'$$) p),
       'Bitmap Index Scan on cus_usage_keys_ingested_at_idx', 'pruning keys past the window reads the BRIN index of ingested_at');
COMMIT;

DELETE FROM aos_cus.cus_usage_settings;
DELETE FROM aos_cus.cus_ingest_rejects WHERE tenant_id = '62000000-0000-4000-8000-000000000001';
DELETE FROM aos_cus.cus_usage_daily WHERE tenant_id = '62000000-0000-4000-8000-000000000001';
DELETE FROM aos_cus.cus_usage_daily_subject WHERE tenant_id = '62000000-0000-4000-8000-000000000001';
DELETE FROM aos_cus.cus_usage_daily_tag WHERE tenant_id = '62000000-0000-4000-8000-000000000001';
DELETE FROM aos_cus.cus_scope_limits WHERE tenant_id = '62000000-0000-4000-8000-000000000001';
DELETE FROM aos_cus.cus_llm_usage WHERE tenant_id = '62000000-0000-4000-8000-000000000001';
DELETE FROM aos_cus.cus_integrations WHERE tenant_id = '62000000-0000-4000-8000-000000000001';
SELECT * FROM finish();
