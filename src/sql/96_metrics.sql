-- Observability (metrics.c, usage_stats.c): metrics() in Prometheus text format and the stat_* views.
-- They read shared memory and small catalog tables, never cus_llm_usage. They report every tenant,
-- so they are for aos_cus_operator and monitoring roles (pg_monitor), never for a session acting for a tenant.

CREATE FUNCTION aos_cus.stat_usage(OUT provider text, OUT model text, OUT requests bigint,
                                   OUT cost_microcents bigint, OUT input_tokens bigint, OUT output_tokens bigint)
    RETURNS SETOF record
    AS 'MODULE_PATHNAME', 'aos_cus_stat_usage'
    LANGUAGE C VOLATILE PARALLEL SAFE;
COMMENT ON FUNCTION aos_cus.stat_usage() IS
    'committed requests, cost (micro-cents) and tokens per provider and model, from shared memory';

CREATE FUNCTION aos_cus.stat_shmem(OUT area text, OUT entries_used bigint, OUT entries_capacity bigint)
    RETURNS SETOF record
    AS 'MODULE_PATHNAME', 'aos_cus_stat_shmem'
    LANGUAGE C VOLATILE PARALLEL SAFE;
COMMENT ON FUNCTION aos_cus.stat_shmem() IS 'entries used and capacity of each shared-memory table';

CREATE FUNCTION aos_cus.stat_budget(OUT tenant_id uuid, OUT integration_id uuid, OUT used_microcents bigint,
                                    OUT budget_microcents bigint, OUT used_ratio float8, OUT warn_ratio float8,
                                    OUT reported boolean)
    RETURNS SETOF record
    AS 'MODULE_PATHNAME', 'aos_cus_stat_budget'
    LANGUAGE C VOLATILE PARALLEL SAFE;
COMMENT ON FUNCTION aos_cus.stat_budget() IS
    'cached integrations with a budget, nearest it first; reported: among the aos_cus.metrics_max_integrations that metrics() shows';

CREATE FUNCTION aos_cus.stat_reset() RETURNS void
    AS 'MODULE_PATHNAME', 'aos_cus_stat_reset'
    LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION aos_cus.stat_reset() IS
    'zero the event, decision and usage counters (Prometheus sees a counter reset)';

CREATE VIEW aos_cus.stat_events AS
SELECT name, value FROM aos_cus.stat_counters();
COMMENT ON VIEW aos_cus.stat_events IS 'event counters (ingest, credentials, probes) since server start or stat_reset()';

CREATE VIEW aos_cus.stat_usage AS
SELECT provider, model, requests, cost_microcents,
       cost_microcents / 100000000.0 AS cost_usd, input_tokens, output_tokens
  FROM aos_cus.stat_usage();
COMMENT ON VIEW aos_cus.stat_usage IS
    'committed usage per provider and model since server start or stat_reset(); model ''other'' holds models past aos_cus.usage_stats_max_models';

CREATE VIEW aos_cus.stat_shmem AS
SELECT area, entries_used, entries_capacity,
       round(entries_used::numeric / entries_capacity, 4) AS fill_ratio
  FROM (SELECT area, entries_used, entries_capacity FROM aos_cus.stat_shmem()
        UNION ALL
        SELECT 'enforcement_integrations',
               max(value) FILTER (WHERE name = 'integrations_cached'), max(value) FILTER (WHERE name = 'max_integrations')
          FROM aos_cus.stat_enforcement()
        UNION ALL
        SELECT 'enforcement_reservations',
               max(value) FILTER (WHERE name = 'reservations_active'), max(value) FILTER (WHERE name = 'max_reservations')
          FROM aos_cus.stat_enforcement()) AS s;
COMMENT ON VIEW aos_cus.stat_shmem IS 'fill of each shared-memory table (usage_stats, enforcement integrations and reservations)';

CREATE VIEW aos_cus.stat_decisions AS
SELECT decision, reason, count FROM aos_cus.stat_decisions();
COMMENT ON VIEW aos_cus.stat_decisions IS 'check() decisions per decision and reason since server start or stat_reset()';

CREATE VIEW aos_cus.stat_budget AS
SELECT tenant_id, integration_id, used_microcents, budget_microcents, used_ratio, warn_ratio
  FROM aos_cus.stat_budget()
 WHERE reported;
COMMENT ON VIEW aos_cus.stat_budget IS
    'integrations nearest their budget in the current period (cached in shared memory; at most aos_cus.metrics_max_integrations)';

-- Every status x health_state pair, zeros included, so a state that empties reads 0 rather than vanishing.
-- The counts come from an index-only scan of cus_integrations_status_health_idx (no heap, no usage rows).
CREATE INDEX cus_integrations_status_health_idx ON aos_cus.cus_integrations (status, health_state);
CREATE VIEW aos_cus.stat_health AS
SELECT s.status, h.health_state, coalesce(c.integrations, 0) AS integrations
  FROM unnest(ARRAY['created', 'enabled', 'disabled']) WITH ORDINALITY AS s(status, so)
 CROSS JOIN unnest(ARRAY['unknown', 'healthy', 'degraded', 'failing']) WITH ORDINALITY AS h(health_state, ho)
  LEFT JOIN (SELECT status, health_state, count(*) AS integrations
               FROM aos_cus.cus_integrations
              WHERE status <> 'deleted'
              GROUP BY status, health_state) AS c
         ON c.status = s.status AND c.health_state = h.health_state
 WHERE aos_cus.assert_no_tenant('stat_health')
 ORDER BY s.so, h.ho;
COMMENT ON VIEW aos_cus.stat_health IS 'integrations that are not deleted, by status and health state (every tenant)';

CREATE VIEW aos_cus.stat_rollup AS
SELECT last_rollup_at,
       coalesce(extract(epoch FROM pg_catalog.now() - last_rollup_at)::float8, 'Infinity') AS lag_seconds,
       coalesce(extract(epoch FROM last_rollup_at)::float8, 0) AS last_rollup_epoch
  FROM aos_cus.cus_rollup_state;
COMMENT ON VIEW aos_cus.stat_rollup IS 'when rollup_usage() last completed and the lag in seconds (Infinity when never)';

CREATE FUNCTION aos_cus.metrics() RETURNS text
    AS 'MODULE_PATHNAME', 'aos_cus_metrics'
    LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION aos_cus.metrics() IS
    'Prometheus text exposition (aos_cus_* metrics) from shared memory and the stat_* views; reads no usage rows';

REVOKE ALL ON FUNCTION aos_cus.stat_usage(), aos_cus.stat_shmem(), aos_cus.stat_budget(), aos_cus.stat_reset(),
    aos_cus.metrics() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION aos_cus.stat_usage(), aos_cus.stat_shmem(), aos_cus.stat_budget(), aos_cus.metrics()
    TO aos_cus_operator, pg_monitor;
GRANT EXECUTE ON FUNCTION aos_cus.stat_reset() TO aos_cus_operator;
-- A view's functions run with the privileges of the view's reader: pg_monitor needs stat_counters() too.
GRANT EXECUTE ON FUNCTION aos_cus.stat_counters(), aos_cus.stat_decisions(), aos_cus.stat_enforcement() TO pg_monitor;
REVOKE ALL ON aos_cus.stat_events, aos_cus.stat_usage, aos_cus.stat_shmem, aos_cus.stat_health, aos_cus.stat_rollup,
    aos_cus.stat_decisions, aos_cus.stat_budget FROM PUBLIC;
GRANT SELECT ON aos_cus.stat_events, aos_cus.stat_usage, aos_cus.stat_shmem, aos_cus.stat_health, aos_cus.stat_rollup,
    aos_cus.stat_decisions, aos_cus.stat_budget TO aos_cus_operator, pg_monitor;
GRANT USAGE ON SCHEMA aos_cus TO pg_monitor;
