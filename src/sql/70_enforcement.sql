-- Enforcement (README: Enforcement): decisions from shared memory (src/enforce_*.c), the bounded enforcement log,
-- and the triggers that keep the shared state in step with usage and limits.

CREATE TYPE aos_cus.decision AS (
    decision                 text,
    reason                   text,
    retry_after_ms           bigint,
    budget_used_microcents   bigint,
    budget_limit_microcents  bigint,
    tokens_used              bigint,
    token_limit              bigint,
    period_resets_at         timestamptz,
    scope                    text,
    dimension                text
);
COMMENT ON TYPE aos_cus.decision IS 'result of check(): allowed, warned or blocked, why, the usage it was decided on, and the scope and dimension that decided';

-- Warned and blocked decisions; pruned to aos_cus.enforcement_log_max_rows per tenant by check() itself.
CREATE SEQUENCE aos_cus.cus_enforcement_log_id_seq AS bigint;
CREATE TABLE aos_cus.cus_enforcement_log (
    tenant_id                  uuid NOT NULL,
    id                         bigint NOT NULL DEFAULT pg_catalog.nextval('aos_cus.cus_enforcement_log_id_seq'),
    logged_at                  timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    integration_id             uuid NOT NULL,
    call_id                    text CHECK (pg_catalog.length(call_id) BETWEEN 1 AND 255),
    decision                   text NOT NULL CHECK (decision IN ('warned', 'blocked')),
    reason                     text NOT NULL CHECK (reason IN ('integration_not_found', 'integration_disabled',
                               'rate_limited', 'budget_exceeded', 'token_limit_exceeded', 'budget_warning', 'token_warning',
                               'already_ingested', 'model_not_allowed', 'request_cost_cap', 'request_token_cap',
                               'concurrency_limit', 'unpriced_model', 'request_quota')),
    estimated_cost_microcents  bigint NOT NULL,
    estimated_tokens           bigint NOT NULL,
    budget_used_microcents     bigint NOT NULL,
    budget_limit_microcents    bigint,
    tokens_used                bigint NOT NULL,
    token_limit                bigint,
    retry_after_ms             bigint,
    PRIMARY KEY (tenant_id, id)
);
ALTER SEQUENCE aos_cus.cus_enforcement_log_id_seq OWNED BY aos_cus.cus_enforcement_log.id;
COMMENT ON TABLE aos_cus.cus_enforcement_log IS 'warned and blocked check() decisions, newest aos_cus.enforcement_log_max_rows per tenant kept';
-- Pruning deletes a tenant's oldest ids by the primary key (tenant_id, id); reads go per tenant and integration, newest first.
CREATE INDEX cus_enforcement_log_integration_idx ON aos_cus.cus_enforcement_log (tenant_id, integration_id, logged_at);
SELECT aos_cus_internal.enable_tenant_rls('aos_cus.cus_enforcement_log');
SELECT pg_catalog.pg_extension_config_dump('aos_cus.cus_enforcement_log', '');
SELECT pg_catalog.pg_extension_config_dump('aos_cus.cus_enforcement_log_id_seq', '');
REVOKE ALL ON aos_cus.cus_enforcement_log FROM PUBLIC;
GRANT SELECT, DELETE ON aos_cus.cus_enforcement_log TO aos_cus_admin;
GRANT SELECT ON aos_cus.cus_enforcement_log TO aos_cus_app, aos_cus_reader;

-- Usage moves the shared counters when its transaction commits, exactly once, from every insert path.
CREATE FUNCTION aos_cus_internal.usage_settle_trigger() RETURNS trigger
    AS 'MODULE_PATHNAME', 'aos_cus_usage_settle_trigger' LANGUAGE C;
COMMENT ON FUNCTION aos_cus_internal.usage_settle_trigger() IS
    'queues each usage row''s cost and tokens (and its reservation''s settlement) for the enforcement state at commit';
CREATE TRIGGER enforcement_settle AFTER INSERT OR UPDATE OF cost_microcents ON aos_cus.cus_llm_usage
    FOR EACH ROW EXECUTE FUNCTION aos_cus_internal.usage_settle_trigger();

-- A change to integrations' limits or status makes cached limits reload on their next use
-- (health updates, which set none of these columns, do not).
CREATE FUNCTION aos_cus_internal.limits_changed_trigger() RETURNS trigger
    AS 'MODULE_PATHNAME', 'aos_cus_limits_changed_trigger' LANGUAGE C;
COMMENT ON FUNCTION aos_cus_internal.limits_changed_trigger() IS
    'marks cached enforcement limits stale when the transaction commits';
CREATE TRIGGER enforcement_limits_changed AFTER INSERT OR DELETE OR TRUNCATE ON aos_cus.cus_integrations
    FOR EACH STATEMENT EXECUTE FUNCTION aos_cus_internal.limits_changed_trigger();
CREATE TRIGGER enforcement_limits_updated
    AFTER UPDATE OF tenant_id, id, status, budget_microcents, budget_period, token_limit, token_period, rpm, tpm,
                    rph, rpd, warn_at_pct, enforcement_mode, timezone ON aos_cus.cus_integrations
    FOR EACH STATEMENT EXECUTE FUNCTION aos_cus_internal.limits_changed_trigger();
REVOKE ALL ON FUNCTION aos_cus_internal.usage_settle_trigger(), aos_cus_internal.limits_changed_trigger() FROM PUBLIC;

CREATE FUNCTION aos_cus.check(tenant_id uuid, integration_id uuid, estimated_cost_microcents bigint DEFAULT 0,
                              estimated_tokens bigint DEFAULT 0, call_id text DEFAULT NULL,
                              subject text DEFAULT NULL, tags jsonb DEFAULT NULL, model text DEFAULT NULL)
    RETURNS aos_cus.decision
    AS 'MODULE_PATHNAME', 'aos_cus_check' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION aos_cus.check(uuid, uuid, bigint, bigint, text, text, jsonb, text) IS
    'decides a call before it is made against every scope it touches (integration, tenant, subject, tags): state, rate, budget, tokens; with call_id an admitted estimate is reserved on all of them or none';

CREATE FUNCTION aos_cus.check_budget_limit(tenant_id uuid, integration_id uuid, estimated_cost_microcents bigint DEFAULT 0)
    RETURNS aos_cus.decision
    AS 'MODULE_PATHNAME', 'aos_cus_check_budget_limit' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION aos_cus.check_budget_limit(uuid, uuid, bigint) IS
    'budget dimension of check() alone; reserves and counts nothing';

CREATE FUNCTION aos_cus.check_token_limit(tenant_id uuid, integration_id uuid, estimated_tokens bigint DEFAULT 0)
    RETURNS aos_cus.decision
    AS 'MODULE_PATHNAME', 'aos_cus_check_token_limit' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION aos_cus.check_token_limit(uuid, uuid, bigint) IS
    'token-limit dimension of check() alone; reserves and counts nothing';

CREATE FUNCTION aos_cus.check_rate_limit(tenant_id uuid, integration_id uuid, estimated_tokens bigint DEFAULT 0)
    RETURNS aos_cus.decision
    AS 'MODULE_PATHNAME', 'aos_cus_check_rate_limit' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION aos_cus.check_rate_limit(uuid, uuid, bigint) IS
    'rpm and tpm dimension of check() alone; consumes no request slot';

CREATE FUNCTION aos_cus.current_usage(tenant_id uuid, integration_id uuid,
    OUT budget_period_start timestamptz, OUT budget_period_end timestamptz,
    OUT spent_microcents bigint, OUT reserved_microcents bigint,
    OUT token_period_start timestamptz, OUT token_period_end timestamptz,
    OUT tokens_used bigint, OUT reserved_tokens bigint, OUT active_reservations bigint,
    OUT requests_this_minute bigint, OUT tokens_this_minute bigint)
    RETURNS record
    AS 'MODULE_PATHNAME', 'aos_cus_current_usage' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION aos_cus.current_usage(uuid, uuid) IS
    'the current periods, settled spend and tokens, reservations and this minute''s requests, from shared memory';

CREATE FUNCTION aos_cus.release_reservation(tenant_id uuid, call_id text) RETURNS boolean
    AS 'MODULE_PATHNAME', 'aos_cus_release_reservation' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION aos_cus.release_reservation(uuid, text) IS
    'frees the live reservation of a checked call that will not happen; true when there was one';

CREATE FUNCTION aos_cus.integration_limits(tenant_id uuid, integration_id uuid,
    OUT budget_microcents bigint, OUT budget_period text, OUT budget_period_start timestamptz,
    OUT budget_period_end timestamptz, OUT budget_used_microcents bigint, OUT budget_remaining_microcents bigint,
    OUT token_limit bigint, OUT token_period text, OUT token_period_start timestamptz,
    OUT token_period_end timestamptz, OUT tokens_used bigint, OUT tokens_remaining bigint,
    OUT rpm integer, OUT requests_this_minute bigint, OUT tpm bigint, OUT tokens_this_minute bigint,
    OUT warn_at_pct smallint, OUT mode text, OUT timezone text, OUT rph integer, OUT rpd integer)
    RETURNS record
    -- PL/pgSQL, not SQL: Citus cannot plan a SQL function's parameterized query on a distributed table.
    LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    SELECT i.budget_microcents, i.budget_period, u.budget_period_start, u.budget_period_end,
           u.spent_microcents OPERATOR(pg_catalog.+) u.reserved_microcents,
           CASE WHEN i.budget_microcents IS NOT NULL
                THEN GREATEST(i.budget_microcents OPERATOR(pg_catalog.-) u.spent_microcents
                              OPERATOR(pg_catalog.-) u.reserved_microcents, 0) END,
           i.token_limit, i.token_period, u.token_period_start, u.token_period_end,
           u.tokens_used OPERATOR(pg_catalog.+) u.reserved_tokens,
           CASE WHEN i.token_limit IS NOT NULL
                THEN GREATEST(i.token_limit OPERATOR(pg_catalog.-) u.tokens_used OPERATOR(pg_catalog.-) u.reserved_tokens, 0) END,
           i.rpm, u.requests_this_minute, i.tpm, u.tokens_this_minute,
           i.warn_at_pct, i.enforcement_mode, i.timezone, i.rph, i.rpd
      INTO budget_microcents, budget_period, budget_period_start, budget_period_end, budget_used_microcents,
           budget_remaining_microcents, token_limit, token_period, token_period_start, token_period_end, tokens_used,
           tokens_remaining, rpm, requests_this_minute, tpm, tokens_this_minute, warn_at_pct, mode, timezone, rph, rpd
      FROM aos_cus.current_usage(integration_limits.tenant_id, integration_limits.integration_id) u,
           aos_cus.cus_integrations i
     WHERE i.tenant_id OPERATOR(pg_catalog.=) integration_limits.tenant_id
       AND i.id OPERATOR(pg_catalog.=) integration_limits.integration_id;
END
$$;
COMMENT ON FUNCTION aos_cus.integration_limits(uuid, uuid) IS
    'configured limits with current period usage (reservations included) and what remains (NULL where there is no limit)';

CREATE FUNCTION aos_cus.stat_decisions(OUT decision text, OUT reason text, OUT count bigint) RETURNS SETOF record
    AS 'MODULE_PATHNAME', 'aos_cus_stat_decisions' LANGUAGE C VOLATILE PARALLEL SAFE;
COMMENT ON FUNCTION aos_cus.stat_decisions() IS 'check() decisions per outcome and reason since server start';

CREATE FUNCTION aos_cus.stat_enforcement(OUT name text, OUT value bigint) RETURNS SETOF record
    AS 'MODULE_PATHNAME', 'aos_cus_stat_enforcement' LANGUAGE C VOLATILE PARALLEL SAFE;
COMMENT ON FUNCTION aos_cus.stat_enforcement() IS 'fill of the enforcement shared-memory tables and evictions';

REVOKE ALL ON FUNCTION aos_cus.check(uuid, uuid, bigint, bigint, text, text, jsonb, text), aos_cus.check_budget_limit(uuid, uuid, bigint),
    aos_cus.check_token_limit(uuid, uuid, bigint), aos_cus.check_rate_limit(uuid, uuid, bigint),
    aos_cus.current_usage(uuid, uuid), aos_cus.integration_limits(uuid, uuid),
    aos_cus.stat_decisions(), aos_cus.stat_enforcement() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION aos_cus.check(uuid, uuid, bigint, bigint, text, text, jsonb, text), aos_cus.check_budget_limit(uuid, uuid, bigint),
    aos_cus.check_token_limit(uuid, uuid, bigint), aos_cus.check_rate_limit(uuid, uuid, bigint)
    TO aos_cus_admin, aos_cus_app;
GRANT EXECUTE ON FUNCTION aos_cus.current_usage(uuid, uuid), aos_cus.integration_limits(uuid, uuid)
    TO aos_cus_admin, aos_cus_app, aos_cus_reader;
REVOKE ALL ON FUNCTION aos_cus.release_reservation(uuid, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION aos_cus.release_reservation(uuid, text) TO aos_cus_admin, aos_cus_app;
GRANT EXECUTE ON FUNCTION aos_cus.stat_decisions(), aos_cus.stat_enforcement() TO aos_cus_admin, aos_cus_reader;

CREATE FUNCTION aos_cus.limit_period_bounds(period text, timezone text, at timestamptz DEFAULT pg_catalog.now(),
    OUT period_start timestamptz, OUT period_end timestamptz)
    RETURNS record
    AS 'MODULE_PATHNAME', 'aos_cus_limit_period_bounds' LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION aos_cus.limit_period_bounds(text, text, timestamptz) IS
    'the calendar period (hour as rph counts it, day, week from Monday, month, total) containing at in an IANA time zone; NULL bounds for total';
GRANT EXECUTE ON FUNCTION aos_cus.limit_period_bounds(text, text, timestamptz)
    TO aos_cus_admin, aos_cus_app, aos_cus_reader, aos_cus_worker;
