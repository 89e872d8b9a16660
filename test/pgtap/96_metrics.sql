-- metrics() and the stat_* views: shape, catalog-derived values, cross-tenant visibility, privileges.
BEGIN;
SELECT plan(38);

SELECT has_function('aos_cus', 'metrics', ARRAY[]::text[], 'metrics() exists');
SELECT function_returns('aos_cus', 'metrics', ARRAY[]::text[], 'text', 'metrics() returns text');
SELECT is_definer('aos_cus', 'metrics', ARRAY[]::text[], 'metrics() is SECURITY DEFINER (reads every tenant)');
SELECT has_view('aos_cus', v, 'view aos_cus.' || v || ' exists')
  FROM unnest(ARRAY['stat_events', 'stat_usage', 'stat_shmem', 'stat_health', 'stat_rollup', 'stat_decisions', 'stat_budget']) AS v;
SELECT has_function('aos_cus', 'stat_reset', ARRAY[]::text[], 'stat_reset() exists');

-- Known catalog state: two tenants, integrations in several states, one deleted (not counted).
INSERT INTO aos_cus.cus_integrations (tenant_id, name, provider, status, health_state, deleted_at)
VALUES ('aaaaaaaa-0000-0000-0000-000000000001', 'a1', 'openai', 'enabled', 'failing', NULL),
       ('aaaaaaaa-0000-0000-0000-000000000001', 'a2', 'openai', 'enabled', 'healthy', NULL),
       ('bbbbbbbb-0000-0000-0000-000000000002', 'b1', 'anthropic', 'enabled', 'failing', NULL),
       ('bbbbbbbb-0000-0000-0000-000000000002', 'b2', 'anthropic', 'disabled', 'degraded', NULL),
       ('bbbbbbbb-0000-0000-0000-000000000002', 'b3', 'anthropic', 'deleted', 'failing', now());

SELECT is((SELECT count(*) FROM aos_cus.stat_health), 12::bigint, 'stat_health has every status x health_state pair');
SELECT is((SELECT integrations FROM aos_cus.stat_health WHERE status = 'enabled' AND health_state = 'failing'),
          2::bigint, 'stat_health counts enabled+failing across tenants, deleted excluded');
SELECT is((SELECT integrations FROM aos_cus.stat_health WHERE status = 'created' AND health_state = 'unknown'),
          0::bigint, 'an empty pair reads 0');
SELECT matches(aos_cus.metrics(), E'\naos_cus_integrations\\{status="enabled",health_state="failing"\\} 2\n',
               'metrics() reports the same count');
SELECT matches(aos_cus.metrics(), E'\naos_cus_integrations\\{status="disabled",health_state="degraded"\\} 1\n',
               'metrics(): disabled+degraded = 1');

-- Rollup lag: +Inf before any rollup, seconds since last_rollup_at afterwards.
UPDATE aos_cus.cus_rollup_state SET last_rollup_at = NULL;
SELECT is((SELECT lag_seconds FROM aos_cus.stat_rollup), 'Infinity'::float8, 'lag is Infinity when the rollup never ran');
SELECT matches(aos_cus.metrics(), E'\naos_cus_rollup_lag_seconds \\+Inf\n', 'metrics() writes +Inf');
UPDATE aos_cus.cus_rollup_state SET last_rollup_at = now() - interval '90 seconds';
SELECT is((SELECT lag_seconds FROM aos_cus.stat_rollup), 90::float8, 'lag is now() - last_rollup_at');
SELECT matches(aos_cus.metrics(), E'\naos_cus_rollup_lag_seconds 90(\\.[0-9]+)?\n', 'metrics() lag ~ 90 s');

-- Shared-memory fill: capacity is aos_cus.usage_stats_max_models + one overflow entry per provider label.
SELECT is((SELECT entries_capacity FROM aos_cus.stat_shmem WHERE area = 'usage_stats'),
          current_setting('aos_cus.usage_stats_max_models')::bigint + 8, 'usage_stats capacity');
SELECT is((SELECT entries_capacity FROM aos_cus.stat_shmem WHERE area = 'enforcement_integrations'),
          current_setting('aos_cus.max_integrations')::bigint, 'enforcement table capacity is aos_cus.max_integrations');

-- Decisions: every decision x reason pair is a series, zeros included.
SELECT is((SELECT count(*) FROM regexp_split_to_table(aos_cus.metrics(), E'\n') AS l WHERE l ~ '^aos_cus_decisions_total\{'),
          (SELECT count(*) FROM aos_cus.stat_decisions), 'one aos_cus_decisions_total series per stat_decisions row');

-- Every sample line belongs to a family with HELP and TYPE, all names start with aos_cus_.
SELECT is((SELECT count(*) FROM regexp_split_to_table(aos_cus.metrics(), E'\n') AS l
            WHERE l <> '' AND l !~ '^(# (HELP|TYPE) )?aos_cus_'), 0::bigint, 'every line is aos_cus_ or a comment on one');
SELECT is((SELECT count(*) FROM regexp_split_to_table(aos_cus.metrics(), E'\n') AS l
            WHERE l ~ '^# TYPE \S+ counter$' AND l !~ '_total counter$'), 0::bigint, 'counters end in _total');

-- metrics() counts every tenant, so a session acting for one may not call it (issue 13).
SELECT matches(aos_cus.metrics(), E'\naos_cus_integrations\\{status="enabled",health_state="failing"\\} 2\n',
               'metrics() counts every tenant');
SET LOCAL aos_cus.tenant_id = 'aaaaaaaa-0000-0000-0000-000000000001';
SELECT throws_ok('SELECT aos_cus.metrics()', '42501', NULL, 'metrics() refused while acting for a tenant');
SELECT throws_ok('SELECT * FROM aos_cus.stat_usage', '42501', NULL, 'stat_usage refused while acting for a tenant');
RESET aos_cus.tenant_id;

-- Privileges: pg_monitor and aos_cus_operator read; tenant roles (aos_cus_admin included) do not; only the operator resets.
CREATE ROLE tap_monitor IN ROLE pg_monitor;
CREATE ROLE tap_metrics_admin IN ROLE aos_cus_admin;
CREATE ROLE tap_metrics_operator IN ROLE aos_cus_operator;
CREATE ROLE tap_metrics_app IN ROLE aos_cus_app;
SET LOCAL ROLE tap_monitor;
SELECT lives_ok('SELECT aos_cus.metrics()', 'pg_monitor may call metrics()');
SELECT lives_ok('SELECT * FROM aos_cus.stat_usage, aos_cus.stat_health, aos_cus.stat_rollup, aos_cus.stat_shmem, aos_cus.stat_events',
                'pg_monitor may read the stat views');
SELECT lives_ok('SELECT * FROM aos_cus.stat_decisions, aos_cus.stat_budget', 'pg_monitor may read decisions and budgets');
SELECT throws_ok('SELECT aos_cus.stat_reset()', '42501', NULL, 'pg_monitor may not reset');
SET LOCAL ROLE tap_metrics_app;
SELECT throws_ok('SELECT aos_cus.metrics()', '42501', NULL, 'aos_cus_app may not call metrics()');
SELECT throws_ok('SELECT * FROM aos_cus.stat_health', '42501', NULL, 'aos_cus_app may not read stat_health');
SET LOCAL ROLE tap_metrics_admin;
SELECT throws_ok('SELECT aos_cus.metrics()', '42501', NULL, 'aos_cus_admin may not call metrics()');
SELECT throws_ok('SELECT * FROM aos_cus.stat_budget', '42501', NULL, 'aos_cus_admin may not read stat_budget');
SELECT throws_ok('SELECT aos_cus.stat_reset()', '42501', NULL, 'aos_cus_admin may not reset');
SET LOCAL ROLE tap_metrics_operator;
SELECT lives_ok('SELECT aos_cus.metrics(), aos_cus.stat_reset()', 'aos_cus_operator may call metrics() and reset');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
