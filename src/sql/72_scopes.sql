-- Layered budgets (issue 14): limits per scope besides each integration's own. A scope is tenant (all its
-- integrations together), integration:<id> (the limits on cus_integrations), subject:<value> or subject:*
-- (each end user its own copy), tag:<key>=<value> or tag:<key>=* (each value its own copy). check() reserves
-- against every scope instance a call touches, all or none (enforce_decide.c).

CREATE FUNCTION aos_cus_internal.parse_scope(scope text, OUT kind text, OUT integration_id uuid) RETURNS record
    AS 'MODULE_PATHNAME', 'aos_cus_parse_scope' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION aos_cus_internal.parse_scope(text) IS
    'kind (tenant, integration, subject, tag) of a scope string and its integration id; 22023 naming scope when malformed';

-- Limits of the tenant, subject and tag scopes; the same columns and defaults as cus_integrations' limits.
CREATE TABLE aos_cus.cus_scope_limits (
    tenant_id          uuid NOT NULL,
    scope              text NOT NULL CHECK ((aos_cus_internal.parse_scope(scope)).kind OPERATOR(pg_catalog.<>) 'integration'),
    budget_microcents  aos_cus.microcents,
    budget_period      aos_cus.limit_period NOT NULL DEFAULT 'month',
    token_limit        aos_cus.token_count,
    token_period       aos_cus.limit_period NOT NULL DEFAULT 'month',
    rpm                integer CHECK (rpm > 0),
    tpm                bigint CHECK (tpm > 0),
    warn_at_pct        smallint NOT NULL DEFAULT 80 CHECK (warn_at_pct BETWEEN 1 AND 100),
    enforcement_mode   text NOT NULL DEFAULT 'enforce' CHECK (enforcement_mode IN ('enforce', 'warn', 'off')),
    timezone           text NOT NULL DEFAULT 'UTC' CHECK (pg_catalog.length(timezone) BETWEEN 1 AND 64),
    updated_at         timestamptz NOT NULL DEFAULT pg_catalog.now(),
    rph                integer CHECK (rph > 0),
    rpd                integer CHECK (rpd > 0),
    PRIMARY KEY (tenant_id, scope)
);
COMMENT ON TABLE aos_cus.cus_scope_limits IS 'limits of the tenant, subject:<v>|* and tag:<k>=<v>|* scopes (integration limits stay on cus_integrations)';
SELECT aos_cus_internal.enable_tenant_rls('aos_cus.cus_scope_limits');
SELECT pg_catalog.pg_extension_config_dump('aos_cus.cus_scope_limits', '');
REVOKE ALL ON aos_cus.cus_scope_limits FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE, DELETE ON aos_cus.cus_scope_limits TO aos_cus_admin;
GRANT SELECT ON aos_cus.cus_scope_limits TO aos_cus_app, aos_cus_reader;

-- Per-scope sums for rebuilding a scope's state from the usage rows of its period.
-- On the default partition, whose indexes every time partition copies (as cus_llm_usage's others, 10_tables.sql).
CREATE INDEX cus_llm_usage_default_subject_idx ON aos_cus.cus_llm_usage_default (tenant_id, subject, started_at) WHERE subject IS NOT NULL;
CREATE INDEX cus_llm_usage_default_tags_idx ON aos_cus.cus_llm_usage_default USING gin (tags jsonb_path_ops) WHERE tags IS NOT NULL;

-- A change of scope limits makes cached scope state reload on its next use.
CREATE FUNCTION aos_cus_internal.scope_limits_changed_trigger() RETURNS trigger
    AS 'MODULE_PATHNAME', 'aos_cus_scope_limits_changed_trigger' LANGUAGE C;
COMMENT ON FUNCTION aos_cus_internal.scope_limits_changed_trigger() IS
    'marks cached enforcement limits stale when the transaction commits';
CREATE TRIGGER enforcement_scope_limits_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON aos_cus.cus_scope_limits
    FOR EACH STATEMENT EXECUTE FUNCTION aos_cus_internal.scope_limits_changed_trigger();
REVOKE ALL ON FUNCTION aos_cus_internal.scope_limits_changed_trigger() FROM PUBLIC;

-- The limits JSON of a scope row, keyed as set_limits() takes them.
CREATE FUNCTION aos_cus_internal.scope_limits_json(s aos_cus.cus_scope_limits) RETURNS jsonb
    LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT pg_catalog.jsonb_build_object(
               'budget_microcents', s.budget_microcents, 'budget_period', s.budget_period,
               'token_limit', s.token_limit, 'token_period', s.token_period,
               'rpm', s.rpm, 'tpm', s.tpm, 'rph', s.rph, 'rpd', s.rpd, 'warn_at_pct', s.warn_at_pct,
               'mode', s.enforcement_mode, 'timezone', s.timezone)
$$;
COMMENT ON FUNCTION aos_cus_internal.scope_limits_json(aos_cus.cus_scope_limits) IS 'limits of a cus_scope_limits row as JSON';

-- Patch the limits of a scope, validated by apply_limits() as set_limits() is; integration:<id> is set_limits().
CREATE FUNCTION aos_cus.set_scope_limits(tenant_id uuid, scope text, limits jsonb) RETURNS jsonb
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    p record;
    s aos_cus.cus_scope_limits;
    i aos_cus.cus_integrations;
BEGIN
    PERFORM aos_cus.assert_tenant(tenant_id);
    p := aos_cus_internal.parse_scope(scope);
    IF p.kind OPERATOR(pg_catalog.=) 'integration' THEN
        RETURN (aos_cus.set_limits(tenant_id, p.integration_id, limits)).limits;
    END IF;
    SELECT * INTO s FROM aos_cus.cus_scope_limits c
     WHERE c.tenant_id OPERATOR(pg_catalog.=) set_scope_limits.tenant_id
       AND c.scope OPERATOR(pg_catalog.=) set_scope_limits.scope FOR UPDATE;
    i.budget_microcents := s.budget_microcents;
    i.budget_period := coalesce(s.budget_period, 'month');
    i.token_limit := s.token_limit;
    i.token_period := coalesce(s.token_period, 'month');
    i.rpm := s.rpm;
    i.tpm := s.tpm;
    i.rph := s.rph;
    i.rpd := s.rpd;
    i.warn_at_pct := coalesce(s.warn_at_pct, 80);
    i.enforcement_mode := coalesce(s.enforcement_mode, 'enforce');
    i.timezone := coalesce(s.timezone, 'UTC');
    i := aos_cus_internal.apply_limits(i, limits);
    INSERT INTO aos_cus.cus_scope_limits AS c (tenant_id, scope, budget_microcents, budget_period, token_limit,
                                               token_period, rpm, tpm, rph, rpd, warn_at_pct, enforcement_mode, timezone,
                                               updated_at)
    VALUES (set_scope_limits.tenant_id, set_scope_limits.scope, i.budget_microcents, i.budget_period, i.token_limit,
            i.token_period, i.rpm, i.tpm, i.rph, i.rpd, i.warn_at_pct, i.enforcement_mode, i.timezone, pg_catalog.now())
    -- No function in DO UPDATE SET: Citus refuses a non-immutable one there on a distributed table.
    ON CONFLICT ON CONSTRAINT cus_scope_limits_pkey DO UPDATE
       SET budget_microcents = EXCLUDED.budget_microcents, budget_period = EXCLUDED.budget_period,
           token_limit = EXCLUDED.token_limit, token_period = EXCLUDED.token_period, rpm = EXCLUDED.rpm,
           tpm = EXCLUDED.tpm, rph = EXCLUDED.rph, rpd = EXCLUDED.rpd, warn_at_pct = EXCLUDED.warn_at_pct, enforcement_mode = EXCLUDED.enforcement_mode,
           timezone = EXCLUDED.timezone, updated_at = EXCLUDED.updated_at
    RETURNING * INTO s;
    RETURN aos_cus_internal.scope_limits_json(s);
END
$$;
COMMENT ON FUNCTION aos_cus.set_scope_limits(uuid, text, jsonb) IS
    'patch the limits of a scope (tenant, integration:<id>, subject:<v>|*, tag:<k>=<v>|*) with set_limits'' keys; returns them';

-- Every scope of a tenant with limits: its scope rows and its integrations' limits.
CREATE FUNCTION aos_cus.scope_limits(tenant_id uuid) RETURNS TABLE (scope text, limits jsonb)
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM aos_cus.assert_tenant(tenant_id);
    -- Whole rows by ROW(x.*)::type: under Citus x is a shard, of the shard's own row type.
    RETURN QUERY
        SELECT s.scope, aos_cus_internal.scope_limits_json(ROW(s.*)::aos_cus.cus_scope_limits) FROM aos_cus.cus_scope_limits s
         WHERE s.tenant_id OPERATOR(pg_catalog.=) scope_limits.tenant_id
        UNION ALL
        SELECT 'integration:' OPERATOR(pg_catalog.||) i.id::pg_catalog.text, (aos_cus_internal.integration_of(ROW(i.*)::aos_cus.cus_integrations)).limits
          FROM aos_cus.cus_integrations i
         WHERE i.tenant_id OPERATOR(pg_catalog.=) scope_limits.tenant_id AND i.status OPERATOR(pg_catalog.<>) 'deleted'
        ORDER BY 1;
END
$$;
COMMENT ON FUNCTION aos_cus.scope_limits(uuid) IS 'every scope of the tenant and its limits (integrations included)';

-- Remove a scope's limits; integration:<id> restores the integration's defaults (no limits). True when there were some.
CREATE FUNCTION aos_cus.delete_scope_limits(tenant_id uuid, scope text) RETURNS boolean
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    p record;
BEGIN
    PERFORM aos_cus.assert_tenant(tenant_id);
    p := aos_cus_internal.parse_scope(scope);
    IF p.kind OPERATOR(pg_catalog.=) 'integration' THEN
        PERFORM aos_cus.set_limits(tenant_id, p.integration_id, '{"budget_microcents": null, "budget_period": null,
            "token_limit": null, "token_period": null, "rpm": null, "tpm": null, "rph": null, "rpd": null, "warn_at_pct": null, "mode": null,
            "timezone": null}');
        RETURN true;
    END IF;
    DELETE FROM aos_cus.cus_scope_limits c
     WHERE c.tenant_id OPERATOR(pg_catalog.=) delete_scope_limits.tenant_id
       AND c.scope OPERATOR(pg_catalog.=) delete_scope_limits.scope;
    RETURN FOUND;
END
$$;
COMMENT ON FUNCTION aos_cus.delete_scope_limits(uuid, text) IS
    'remove a scope''s limits (integration:<id>: back to no limits); true when the scope had limits';

REVOKE ALL ON FUNCTION aos_cus_internal.parse_scope(text), aos_cus_internal.scope_limits_json(aos_cus.cus_scope_limits),
    aos_cus.set_scope_limits(uuid, text, jsonb), aos_cus.scope_limits(uuid), aos_cus.delete_scope_limits(uuid, text)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION aos_cus_internal.parse_scope(text), aos_cus_internal.scope_limits_json(aos_cus.cus_scope_limits),
    aos_cus.scope_limits(uuid) TO aos_cus_admin, aos_cus_app, aos_cus_reader;
GRANT EXECUTE ON FUNCTION aos_cus.set_scope_limits(uuid, text, jsonb), aos_cus.delete_scope_limits(uuid, text)
    TO aos_cus_admin;

-- Every limit a call would meet, without reserving or counting anything.
CREATE FUNCTION aos_cus.explain_check(tenant_id uuid, integration_id uuid, estimated_cost_microcents bigint DEFAULT 0,
                                      estimated_tokens bigint DEFAULT 0, call_id text DEFAULT NULL,
                                      subject text DEFAULT NULL, tags jsonb DEFAULT NULL, model text DEFAULT NULL,
    OUT scope text, OUT dimension text, OUT limit_value bigint, OUT used bigint, OUT reserved bigint,
    OUT remaining bigint, OUT estimate bigint, OUT period_start timestamptz, OUT period_end timestamptz,
    OUT mode text, OUT verdict text)
    RETURNS SETOF record
    AS 'MODULE_PATHNAME', 'aos_cus_explain_check' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION aos_cus.explain_check(uuid, uuid, bigint, bigint, text, text, jsonb, text) IS
    'check()''s arguments: every limit of every scope the call touches with used, reserved, remaining and its verdict; reserves nothing';
REVOKE ALL ON FUNCTION aos_cus.explain_check(uuid, uuid, bigint, bigint, text, text, jsonb, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION aos_cus.explain_check(uuid, uuid, bigint, bigint, text, text, jsonb, text)
    TO aos_cus_admin, aos_cus_app, aos_cus_reader;

-- Call policies (issue 14): per integration, with a tenant default (integration_id NULL): model allow and deny globs,
-- caps on a request's estimated cost and tokens, and on in-flight calls (live reservations). check() refuses with
-- model_not_allowed, request_cost_cap, request_token_cap or concurrency_limit, under the integration's mode.
CREATE FUNCTION aos_cus.check_policy(policy jsonb) RETURNS jsonb
    AS 'MODULE_PATHNAME', 'aos_cus_check_policy' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION aos_cus.check_policy(jsonb) IS
    'the policy when valid (models_allow, models_deny, max_cost_microcents_per_request, max_tokens_per_request, max_concurrent, unpriced, fallback_input_price, fallback_output_price); 22023/22003/54000 naming the field otherwise';

CREATE TABLE aos_cus.cus_policies (
    tenant_id       uuid NOT NULL,
    integration_id  uuid,
    policy          jsonb NOT NULL CHECK (aos_cus.check_policy(policy) IS NOT NULL),
    updated_at      timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE aos_cus.cus_policies IS 'call policies per integration; integration_id NULL is the tenant default';
CREATE UNIQUE INDEX cus_policies_integration_key ON aos_cus.cus_policies (tenant_id, integration_id) WHERE integration_id IS NOT NULL;
CREATE UNIQUE INDEX cus_policies_default_key ON aos_cus.cus_policies (tenant_id) WHERE integration_id IS NULL;
SELECT aos_cus_internal.enable_tenant_rls('aos_cus.cus_policies');
SELECT pg_catalog.pg_extension_config_dump('aos_cus.cus_policies', '');
REVOKE ALL ON aos_cus.cus_policies FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE, DELETE ON aos_cus.cus_policies TO aos_cus_admin;
GRANT SELECT ON aos_cus.cus_policies TO aos_cus_app, aos_cus_reader;

CREATE FUNCTION aos_cus_internal.policies_changed_trigger() RETURNS trigger
    AS 'MODULE_PATHNAME', 'aos_cus_policies_changed_trigger' LANGUAGE C;
COMMENT ON FUNCTION aos_cus_internal.policies_changed_trigger() IS 'marks cached policies stale when the transaction commits';
CREATE TRIGGER enforcement_policies_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON aos_cus.cus_policies
    FOR EACH STATEMENT EXECUTE FUNCTION aos_cus_internal.policies_changed_trigger();
REVOKE ALL ON FUNCTION aos_cus_internal.policies_changed_trigger() FROM PUBLIC;

-- Set (or with NULL remove) the policy of an integration, or with integration_id NULL the tenant default.
CREATE FUNCTION aos_cus.set_policy(tenant_id uuid, integration_id uuid, policy jsonb) RETURNS jsonb
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM aos_cus.assert_tenant(tenant_id);
    IF integration_id IS NOT NULL THEN
        PERFORM aos_cus_internal.integration_for_update(tenant_id, integration_id);
    END IF;
    IF policy IS NOT NULL THEN
        PERFORM aos_cus.check_policy(policy);
    END IF;
    DELETE FROM aos_cus.cus_policies p
     WHERE p.tenant_id OPERATOR(pg_catalog.=) set_policy.tenant_id
       AND p.integration_id IS NOT DISTINCT FROM set_policy.integration_id;
    IF policy IS NOT NULL THEN
        INSERT INTO aos_cus.cus_policies (tenant_id, integration_id, policy)
        VALUES (set_policy.tenant_id, set_policy.integration_id, set_policy.policy);
    END IF;
    RETURN policy;
END
$$;
COMMENT ON FUNCTION aos_cus.set_policy(uuid, uuid, jsonb) IS
    'set the call policy of an integration (integration_id NULL: the tenant default); NULL policy removes it';
REVOKE ALL ON FUNCTION aos_cus.check_policy(jsonb), aos_cus.set_policy(uuid, uuid, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION aos_cus.check_policy(jsonb) TO aos_cus_admin, aos_cus_app, aos_cus_reader;
GRANT EXECUTE ON FUNCTION aos_cus.set_policy(uuid, uuid, jsonb) TO aos_cus_admin;
