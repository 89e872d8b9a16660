-- Health API without network: record_health, history retention, health_summary, stale_integrations,
-- request_health_check coalescing and wake-up, test_credentials refusals, tenancy and RLS of the health tables.
BEGIN;
SELECT plan(57);

CREATE ROLE tap_h_app IN ROLE aos_cus_app;
CREATE ROLE tap_h_worker IN ROLE aos_cus_worker;
CREATE ROLE tap_h_reader IN ROLE aos_cus_reader;

INSERT INTO aos_cus.cus_integrations (tenant_id, id, name, provider, status, deleted_at)
VALUES ('aaaaaaaa-0000-0000-0000-000000000001', 'aaaaaaaa-0000-0000-0000-0000000000a1', 'a-openai', 'openai', 'enabled', NULL),
       ('aaaaaaaa-0000-0000-0000-000000000001', 'aaaaaaaa-0000-0000-0000-0000000000a2', 'a-bedrock', 'aws_bedrock', 'enabled', NULL),
       ('aaaaaaaa-0000-0000-0000-000000000001', 'aaaaaaaa-0000-0000-0000-0000000000a3', 'a-off', 'google', 'disabled', NULL),
       ('aaaaaaaa-0000-0000-0000-000000000001', 'aaaaaaaa-0000-0000-0000-0000000000a4', 'a-gone', 'google', 'deleted', now()),
       ('bbbbbbbb-0000-0000-0000-000000000002', 'bbbbbbbb-0000-0000-0000-0000000000b1', 'b-anthropic', 'anthropic', 'enabled', NULL);

-- record_health: argument checks with precise SQLSTATEs.
SELECT throws_ok($$SELECT aos_cus.record_health(NULL, 'aaaaaaaa-0000-0000-0000-0000000000a1', 'healthy', 1)$$,
    '22004', 'tenant_id must not be null', 'record_health: NULL tenant_id');
SELECT throws_ok($$SELECT aos_cus.record_health('aaaaaaaa-0000-0000-0000-000000000001', NULL, 'healthy', 1)$$,
    '22004', 'integration_id must not be null', 'record_health: NULL integration_id');
SELECT throws_ok($$SELECT aos_cus.record_health('aaaaaaaa-0000-0000-0000-000000000001', 'aaaaaaaa-0000-0000-0000-0000000000a1', 'ok', 1)$$,
    '22023', 'state must be one of unknown, healthy, degraded, failing', 'record_health: unknown state');
SELECT throws_ok($$SELECT aos_cus.record_health('aaaaaaaa-0000-0000-0000-000000000001', 'aaaaaaaa-0000-0000-0000-0000000000a1', NULL, 1)$$,
    '22023', NULL, 'record_health: NULL state');
SELECT throws_ok($$SELECT aos_cus.record_health('aaaaaaaa-0000-0000-0000-000000000001', 'aaaaaaaa-0000-0000-0000-0000000000a1', 'healthy', -1)$$,
    '22023', 'latency_ms must not be negative', 'record_health: negative latency');
SELECT throws_ok($$SELECT aos_cus.record_health('aaaaaaaa-0000-0000-0000-000000000001', 'aaaaaaaa-0000-0000-0000-0000000000a1', 'failing', 1, repeat('x', 1001))$$,
    '22001', 'error must be at most 1000 characters', 'record_health: oversized error');
SELECT throws_ok($$SELECT aos_cus.record_health('aaaaaaaa-0000-0000-0000-000000000001', 'aaaaaaaa-0000-0000-0000-00000000ffff', 'healthy', 1)$$,
    '42704', 'integration aaaaaaaa-0000-0000-0000-00000000ffff does not exist for this tenant', 'record_health: unknown integration');
SELECT throws_ok($$SELECT aos_cus.record_health('aaaaaaaa-0000-0000-0000-000000000001', 'bbbbbbbb-0000-0000-0000-0000000000b1', 'healthy', 1)$$,
    '42704', NULL, 'record_health: another tenant''s integration is unknown to this tenant');
SELECT throws_ok($$SELECT aos_cus.record_health('aaaaaaaa-0000-0000-0000-000000000001', 'aaaaaaaa-0000-0000-0000-0000000000a4', 'healthy', 1)$$,
    '55000', 'integration aaaaaaaa-0000-0000-0000-0000000000a4 is deleted', 'record_health: deleted integration');

-- record_health stores the result on the integration and in the history.
SELECT lives_ok($$SELECT aos_cus.record_health('aaaaaaaa-0000-0000-0000-000000000001', 'aaaaaaaa-0000-0000-0000-0000000000a1', 'degraded', 42, 'HTTP 429: rate limited')$$,
    'record_health stores a result');
SELECT results_eq($$SELECT health_state, health_latency_ms, health_error, health_checked_at = now() FROM aos_cus.cus_integrations WHERE id = 'aaaaaaaa-0000-0000-0000-0000000000a1'$$,
    $$VALUES ('degraded'::text, 42, 'HTTP 429: rate limited'::text, true)$$, 'the integration carries the recorded health');
SELECT results_eq($$SELECT state, latency_ms, error FROM aos_cus.cus_health_history WHERE integration_id = 'aaaaaaaa-0000-0000-0000-0000000000a1'$$,
    $$VALUES ('degraded'::text, 42, 'HTTP 429: rate limited'::text)$$, 'the history holds the result');

-- Bounded retention: only the newest aos_cus.health_history_keep rows per integration remain.
SET LOCAL aos_cus.health_history_keep = 3;
SELECT aos_cus.record_health('aaaaaaaa-0000-0000-0000-000000000001', 'aaaaaaaa-0000-0000-0000-0000000000a1', 'healthy', g) FROM generate_series(1, 10) g;
SELECT aos_cus.record_health('bbbbbbbb-0000-0000-0000-000000000002', 'bbbbbbbb-0000-0000-0000-0000000000b1', 'failing', 7, 'HTTP 401: credential rejected');
SELECT results_eq($$SELECT array_agg(latency_ms ORDER BY id) FROM aos_cus.cus_health_history WHERE integration_id = 'aaaaaaaa-0000-0000-0000-0000000000a1'$$,
    $$VALUES ('{8,9,10}'::int[])$$, 'history keeps the newest 3 rows of the integration');
SELECT is((SELECT count(*)::int FROM aos_cus.cus_health_history WHERE integration_id = 'bbbbbbbb-0000-0000-0000-0000000000b1'), 1,
    'retention of one integration leaves the others alone');
RESET aos_cus.health_history_keep;

-- health_summary: every state listed, deleted integrations not counted, per tenant or for all.
SELECT results_eq($$SELECT state, integrations FROM aos_cus.health_summary('aaaaaaaa-0000-0000-0000-000000000001')$$,
    $$VALUES ('healthy'::text, 1::bigint), ('degraded', 0), ('failing', 0), ('unknown', 2)$$, 'health_summary for tenant A');
SELECT results_eq($$SELECT state, integrations FROM aos_cus.health_summary()$$,
    $$VALUES ('healthy'::text, 1::bigint), ('degraded', 0), ('failing', 1), ('unknown', 2)$$, 'health_summary for every tenant (admin)');

-- stale_integrations: enabled only, never probed or probed longer ago than older_than.
SELECT results_eq($$SELECT integration_id FROM aos_cus.stale_integrations('1 hour')$$,
    $$VALUES ('aaaaaaaa-0000-0000-0000-0000000000a2'::uuid)$$, 'only the never-probed enabled integration is stale after an hour');
SELECT results_eq($$SELECT integration_id FROM aos_cus.stale_integrations('1 hour', 'bbbbbbbb-0000-0000-0000-000000000002')$$,
    $$SELECT NULL::uuid WHERE false$$, 'tenant B has nothing stale after an hour');
UPDATE aos_cus.cus_integrations SET health_checked_at = now() - interval '2 hours' WHERE id = 'bbbbbbbb-0000-0000-0000-0000000000b1';
SELECT results_eq($$SELECT tenant_id, integration_id, name, provider, health_state FROM aos_cus.stale_integrations(tenant_id => 'bbbbbbbb-0000-0000-0000-000000000002')$$,
    $$VALUES ('bbbbbbbb-0000-0000-0000-000000000002'::uuid, 'bbbbbbbb-0000-0000-0000-0000000000b1'::uuid, 'b-anthropic'::text, 'anthropic'::text, 'failing'::text)$$,
    'an integration probed two hours ago is stale, with its details');
SELECT results_eq($$SELECT integration_id FROM aos_cus.stale_integrations('0 seconds')$$,
    $$VALUES ('aaaaaaaa-0000-0000-0000-0000000000a2'::uuid), ('bbbbbbbb-0000-0000-0000-0000000000b1')$$,
    'older_than 0: every enabled integration not probed in this very transaction, oldest first');
SELECT throws_ok($$SELECT * FROM aos_cus.stale_integrations(NULL)$$, '22004', 'older_than must not be null', 'stale_integrations: NULL older_than');
SELECT throws_ok($$SELECT * FROM aos_cus.stale_integrations('-1 minute')$$, '22023', 'older_than must not be negative', 'stale_integrations: negative older_than');

-- request_health_check: queues once, coalesces repeats and recent probes, refuses bad ids.
CREATE TEMP TABLE queued_before AS SELECT value FROM aos_cus.stat_counters() WHERE name = 'health_checks_queued';
SELECT is(aos_cus.request_health_check('aaaaaaaa-0000-0000-0000-000000000001', 'aaaaaaaa-0000-0000-0000-0000000000a2'), true,
    'a never-probed integration is queued');
SELECT is(aos_cus.request_health_check('aaaaaaaa-0000-0000-0000-000000000001', 'aaaaaaaa-0000-0000-0000-0000000000a2'), false,
    'a second request while one is queued is coalesced');
SELECT is(aos_cus.request_health_check('aaaaaaaa-0000-0000-0000-000000000001', 'aaaaaaaa-0000-0000-0000-0000000000a1'), false,
    'a request within health_min_interval of the last probe is coalesced');
SET LOCAL aos_cus.health_min_interval = 0;
SELECT is(aos_cus.request_health_check('aaaaaaaa-0000-0000-0000-000000000001', 'aaaaaaaa-0000-0000-0000-0000000000a1'), true,
    'with health_min_interval 0 the recently probed integration is queued');
RESET aos_cus.health_min_interval;
SELECT is(aos_cus.request_health_check('aaaaaaaa-0000-0000-0000-000000000001', 'aaaaaaaa-0000-0000-0000-0000000000a3'), true,
    'a disabled integration may be checked on request');
SELECT is((SELECT count(*)::int FROM aos_cus.cus_health_checks), 3, 'three checks are queued, one per integration');
SELECT is((SELECT value - (SELECT value FROM queued_before) FROM aos_cus.stat_counters() WHERE name = 'health_checks_queued'), 3::bigint,
    'the queue trigger counted three queued checks');
SELECT throws_ok($$SELECT aos_cus.request_health_check('aaaaaaaa-0000-0000-0000-000000000001', 'aaaaaaaa-0000-0000-0000-0000000000a4')$$,
    '55000', 'integration aaaaaaaa-0000-0000-0000-0000000000a4 is deleted', 'request_health_check: deleted integration');
SELECT throws_ok($$SELECT aos_cus.request_health_check('aaaaaaaa-0000-0000-0000-000000000001', 'aaaaaaaa-0000-0000-0000-00000000ffff')$$,
    '42704', NULL, 'request_health_check: unknown integration');
SELECT throws_ok($$SELECT aos_cus.request_health_check(NULL, 'aaaaaaaa-0000-0000-0000-0000000000a1')$$,
    '22004', 'tenant_id must not be null', 'request_health_check: NULL tenant_id');
SELECT throws_ok($$SELECT aos_cus.request_health_check('aaaaaaaa-0000-0000-0000-000000000001', NULL)$$,
    '22004', 'integration_id must not be null', 'request_health_check: NULL integration_id');

-- test_credentials without network: refusals, and a provider without a probe records unknown.
SELECT throws_ok($$SELECT * FROM aos_cus.test_credentials(NULL, 'aaaaaaaa-0000-0000-0000-0000000000a1')$$,
    '22004', 'tenant_id must not be null', 'test_credentials: NULL tenant_id');
SELECT throws_ok($$SELECT * FROM aos_cus.test_credentials('aaaaaaaa-0000-0000-0000-000000000001', NULL)$$,
    '22004', 'integration_id must not be null', 'test_credentials: NULL integration_id');
SELECT throws_ok($$SELECT * FROM aos_cus.test_credentials('aaaaaaaa-0000-0000-0000-000000000001', 'bbbbbbbb-0000-0000-0000-0000000000b1')$$,
    '42704', 'integration bbbbbbbb-0000-0000-0000-0000000000b1 does not exist for this tenant', 'test_credentials: another tenant''s integration');
SELECT throws_ok($$SELECT * FROM aos_cus.test_credentials('aaaaaaaa-0000-0000-0000-000000000001', 'aaaaaaaa-0000-0000-0000-0000000000a4')$$,
    '55000', 'integration aaaaaaaa-0000-0000-0000-0000000000a4 is deleted', 'test_credentials: deleted integration');
SELECT results_eq($$SELECT state, latency_ms, error FROM aos_cus.test_credentials('aaaaaaaa-0000-0000-0000-000000000001', 'aaaaaaaa-0000-0000-0000-0000000000a2')$$,
    $$VALUES ('unknown'::text, 0, 'no health probe exists for this provider'::text)$$, 'aws_bedrock has no probe: unknown, recorded');
SELECT is((SELECT health_error FROM aos_cus.cus_integrations WHERE id = 'aaaaaaaa-0000-0000-0000-0000000000a2'),
    'no health probe exists for this provider', 'the unknown result is recorded on the integration');

-- Tenancy: acting for A, no health function reaches B, and the health tables show only A's rows.
SET LOCAL aos_cus.tenant_id = 'aaaaaaaa-0000-0000-0000-000000000001';
SET LOCAL ROLE tap_h_app;
SELECT throws_ok($$SELECT aos_cus.request_health_check('bbbbbbbb-0000-0000-0000-000000000002', 'bbbbbbbb-0000-0000-0000-0000000000b1')$$,
    '42501', NULL, 'app for A cannot queue a check for B');
SELECT throws_ok($$SELECT * FROM aos_cus.test_credentials('bbbbbbbb-0000-0000-0000-000000000002', 'bbbbbbbb-0000-0000-0000-0000000000b1')$$,
    '42501', NULL, 'app for A cannot probe B');
SELECT throws_ok($$SELECT * FROM aos_cus.health_summary('bbbbbbbb-0000-0000-0000-000000000002')$$,
    '42501', NULL, 'app for A cannot summarize B');
SELECT throws_ok($$SELECT aos_cus.record_health('aaaaaaaa-0000-0000-0000-000000000001', 'aaaaaaaa-0000-0000-0000-0000000000a1', 'healthy', 1)$$,
    '42501', NULL, 'app may not record health');
SELECT results_eq($$SELECT state FROM aos_cus.test_credentials('aaaaaaaa-0000-0000-0000-000000000001', 'aaaaaaaa-0000-0000-0000-0000000000a2')$$,
    $$VALUES ('unknown'::text)$$, 'app for A may test A''s own credentials');
SELECT is((SELECT sum(integrations)::int FROM aos_cus.health_summary()), 3, 'app for A summarizes only A (3 non-deleted integrations)');
SELECT is((SELECT array_agg(DISTINCT tenant_id::text) FROM aos_cus.cus_health_history), '{aaaaaaaa-0000-0000-0000-000000000001}',
    'app for A sees only A history');
SELECT throws_ok($$SELECT * FROM aos_cus.cus_health_checks$$, '42501', NULL, 'app cannot read the check queue');
SELECT throws_ok($$INSERT INTO aos_cus.cus_health_history (tenant_id, integration_id, state) VALUES ('aaaaaaaa-0000-0000-0000-000000000001', 'aaaaaaaa-0000-0000-0000-0000000000a1', 'healthy')$$,
    '42501', NULL, 'app cannot write history directly');
SET LOCAL ROLE tap_h_worker;
SELECT lives_ok($$SELECT aos_cus.record_health('aaaaaaaa-0000-0000-0000-000000000001', 'aaaaaaaa-0000-0000-0000-0000000000a1', 'healthy', 1)$$,
    'worker for A records A health');
SELECT throws_ok($$SELECT aos_cus.record_health('bbbbbbbb-0000-0000-0000-000000000002', 'bbbbbbbb-0000-0000-0000-0000000000b1', 'healthy', 1)$$,
    '42501', NULL, 'worker for A cannot record B health');
SELECT is((SELECT array_agg(DISTINCT tenant_id::text) FROM aos_cus.cus_health_checks), '{aaaaaaaa-0000-0000-0000-000000000001}',
    'worker for A sees only A queued checks');
SET LOCAL ROLE tap_h_reader;
SELECT throws_ok($$SELECT aos_cus.request_health_check('aaaaaaaa-0000-0000-0000-000000000001', 'aaaaaaaa-0000-0000-0000-0000000000a1')$$,
    '42501', NULL, 'reader cannot queue checks');
SELECT throws_ok($$SELECT * FROM aos_cus.stale_integrations('1 hour', 'bbbbbbbb-0000-0000-0000-000000000002')$$,
    '42501', NULL, 'reader for A cannot list B stale integrations');
SELECT is((SELECT sum(integrations)::int FROM aos_cus.health_summary()), 3, 'reader for A summarizes only A');
RESET ROLE;

-- Schema: tenant_id leads every key of the health tables; both have row-level security.
SELECT is((SELECT count(*)::int FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid
            WHERE t.oid IN ('aos_cus.cus_health_checks'::regclass, 'aos_cus.cus_health_history'::regclass)
              AND c.contype IN ('p', 'u', 'f')
              AND (SELECT attname FROM pg_attribute WHERE attrelid = t.oid AND attnum = c.conkey[1]) <> 'tenant_id'),
          0, 'tenant_id is the first column of every key of the health tables');
SELECT is((SELECT count(*)::int FROM pg_class WHERE oid IN ('aos_cus.cus_health_checks'::regclass, 'aos_cus.cus_health_history'::regclass)
              AND relrowsecurity), 2, 'both health tables have row-level security');

-- A rolled-back request leaves nothing queued.
RESET aos_cus.tenant_id;
SAVEPOINT s;
SET LOCAL aos_cus.health_min_interval = 0;
SELECT aos_cus.request_health_check('bbbbbbbb-0000-0000-0000-000000000002', 'bbbbbbbb-0000-0000-0000-0000000000b1');
ROLLBACK TO SAVEPOINT s;
SELECT is((SELECT count(*)::int FROM aos_cus.cus_health_checks WHERE tenant_id = 'bbbbbbbb-0000-0000-0000-000000000002'), 0,
    'a rolled-back request queues nothing');

SELECT * FROM finish();
ROLLBACK;
