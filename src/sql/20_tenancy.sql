-- Row-level security: a session sees and writes only its current tenant's rows; aos_cus_operator
-- with no tenant set sees every tenant. Every tenant table gets the same two policies through
-- enable_tenant_rls(), so later parts of this script call it for their tables.
CREATE FUNCTION aos_cus_internal.enable_tenant_rls(tbl regclass) RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    EXECUTE pg_catalog.format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', tbl);
    EXECUTE pg_catalog.format(
        'CREATE POLICY tenant_isolation ON %s USING (tenant_id = aos_cus.current_tenant()) '
        'WITH CHECK (tenant_id = aos_cus.current_tenant())', tbl);
    EXECUTE pg_catalog.format(
        'CREATE POLICY operator_all ON %s TO aos_cus_operator USING (aos_cus.current_tenant() IS NULL) '
        'WITH CHECK (aos_cus.current_tenant() IS NULL)', tbl);
END
$$;
COMMENT ON FUNCTION aos_cus_internal.enable_tenant_rls(regclass) IS 'install-time helper: tenant row-level security policies on a table';
REVOKE ALL ON FUNCTION aos_cus_internal.enable_tenant_rls(regclass) FROM PUBLIC;

SELECT aos_cus_internal.enable_tenant_rls('aos_cus.cus_integrations');
SELECT aos_cus_internal.enable_tenant_rls('aos_cus.cus_llm_usage');
SELECT aos_cus_internal.enable_tenant_rls('aos_cus.cus_usage_daily');
SELECT aos_cus_internal.enable_tenant_rls('aos_cus.cus_usage_hourly');
SELECT aos_cus_internal.enable_tenant_rls('aos_cus.cus_usage_daily_subject');
SELECT aos_cus_internal.enable_tenant_rls('aos_cus.cus_usage_daily_tag');

-- Table privileges by role (README: Security model, Roles). API functions add their own EXECUTE grants.
REVOKE ALL ON ALL TABLES IN SCHEMA aos_cus FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA aos_cus TO aos_cus_admin;
GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA aos_cus TO aos_cus_admin;
GRANT SELECT ON aos_cus.cus_integrations, aos_cus.cus_llm_usage, aos_cus.cus_usage_daily, aos_cus.cus_usage_hourly,
    aos_cus.cus_usage_daily_subject, aos_cus.cus_usage_daily_tag,
    aos_cus.cus_model_prices TO aos_cus_app, aos_cus_reader, aos_cus_worker;
GRANT INSERT ON aos_cus.cus_llm_usage TO aos_cus_app;
GRANT USAGE ON SEQUENCE aos_cus.cus_llm_usage_id_seq TO aos_cus_app;
GRANT UPDATE (health_state, health_checked_at, health_latency_ms, health_error) ON aos_cus.cus_integrations TO aos_cus_worker;
-- Partitions and idempotency keys are reached through cus_llm_usage alone (its row-level security): row-level
-- security without a policy refuses every row to anyone but their owner.
REVOKE ALL ON aos_cus.cus_llm_usage_default, aos_cus.cus_usage_keys FROM aos_cus_admin;
ALTER TABLE aos_cus.cus_llm_usage_default ENABLE ROW LEVEL SECURITY;
ALTER TABLE aos_cus.cus_usage_keys ENABLE ROW LEVEL SECURITY;

REVOKE ALL ON FUNCTION aos_cus.assert_tenant(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION aos_cus.current_tenant(), aos_cus.assert_tenant(uuid)
    TO aos_cus_admin, aos_cus_app, aos_cus_reader, aos_cus_worker;

-- The platform (issue 13): what spans every tenant needs aos_cus_operator and a session acting for no tenant.
CREATE FUNCTION aos_cus.assert_platform(what text) RETURNS void
    AS 'MODULE_PATHNAME', 'aos_cus_assert_platform_sql'
    LANGUAGE C VOLATILE PARALLEL SAFE;
COMMENT ON FUNCTION aos_cus.assert_platform(text) IS
    'raises 42501 unless the caller is aos_cus_operator (or superuser) and the session acts for no tenant';
REVOKE ALL ON FUNCTION aos_cus.assert_platform(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION aos_cus.assert_platform(text) TO aos_cus_admin, aos_cus_app, aos_cus_reader, aos_cus_worker;

CREATE FUNCTION aos_cus.assert_no_tenant(what text) RETURNS boolean
    AS 'MODULE_PATHNAME', 'aos_cus_assert_no_tenant_sql'
    LANGUAGE C VOLATILE PARALLEL SAFE;
COMMENT ON FUNCTION aos_cus.assert_no_tenant(text) IS
    'true, or 42501 while the session acts for a tenant (guards views over every tenant)';
REVOKE ALL ON FUNCTION aos_cus.assert_no_tenant(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION aos_cus.assert_no_tenant(text) TO aos_cus_admin, aos_cus_app, aos_cus_reader, aos_cus_worker, pg_monitor;

-- Global tables: no session acting for a tenant writes them, whatever its grants (the operator included).
CREATE FUNCTION aos_cus_internal.platform_table_guard() RETURNS trigger
    AS 'MODULE_PATHNAME', 'aos_cus_platform_table_guard'
    LANGUAGE C;
COMMENT ON FUNCTION aos_cus_internal.platform_table_guard() IS
    'trigger: 42501 when a session acting for a tenant writes a table shared by every tenant';
REVOKE ALL ON FUNCTION aos_cus_internal.platform_table_guard() FROM PUBLIC;
CREATE TRIGGER cus_model_prices_platform_guard
    BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON aos_cus.cus_model_prices
    FOR EACH STATEMENT EXECUTE FUNCTION aos_cus_internal.platform_table_guard();
CREATE TRIGGER cus_rollup_state_platform_guard
    BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON aos_cus.cus_rollup_state
    FOR EACH STATEMENT EXECUTE FUNCTION aos_cus_internal.platform_table_guard();
-- Prices and rollup bookkeeping are the operator's; tenant roles read them.
REVOKE INSERT, UPDATE, DELETE ON aos_cus.cus_model_prices, aos_cus.cus_rollup_state FROM aos_cus_admin;
REVOKE USAGE, UPDATE ON SEQUENCE aos_cus.cus_model_prices_id_seq FROM aos_cus_admin;
GRANT INSERT, UPDATE, DELETE ON aos_cus.cus_model_prices, aos_cus.cus_rollup_state TO aos_cus_operator;
GRANT USAGE, UPDATE ON SEQUENCE aos_cus.cus_model_prices_id_seq TO aos_cus_operator;

-- Tenant binding of direct-SQL logins: a session whose session_user is listed always acts for that
-- tenant; a claim or aos_cus.tenant_id naming another raises 42501 (tenancy.c reads this table).
CREATE TABLE aos_cus.cus_tenant_logins (
    login      regrole PRIMARY KEY,
    tenant_id  uuid NOT NULL,
    bound_at   timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE aos_cus.cus_tenant_logins IS 'login roles bound to a tenant: sessions of that login always act for it';
SELECT aos_cus_internal.enable_tenant_rls('aos_cus.cus_tenant_logins');
SELECT pg_catalog.pg_extension_config_dump('aos_cus.cus_tenant_logins', '');
CREATE TRIGGER cus_tenant_logins_platform_guard
    BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON aos_cus.cus_tenant_logins
    FOR EACH STATEMENT EXECUTE FUNCTION aos_cus_internal.platform_table_guard();
CREATE FUNCTION aos_cus_internal.tenant_logins_changed() RETURNS trigger
    AS 'MODULE_PATHNAME', 'aos_cus_tenant_logins_changed'
    LANGUAGE C;
COMMENT ON FUNCTION aos_cus_internal.tenant_logins_changed() IS 'trigger: sends a relcache invalidation so sessions re-read their binding';
REVOKE ALL ON FUNCTION aos_cus_internal.tenant_logins_changed() FROM PUBLIC;
CREATE TRIGGER cus_tenant_logins_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON aos_cus.cus_tenant_logins
    FOR EACH STATEMENT EXECUTE FUNCTION aos_cus_internal.tenant_logins_changed();
REVOKE ALL ON aos_cus.cus_tenant_logins FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE, DELETE ON aos_cus.cus_tenant_logins TO aos_cus_operator;

CREATE FUNCTION aos_cus.bind_login(login regrole, tenant_id uuid) RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF bind_login.login IS NULL OR bind_login.tenant_id IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = '22004', MESSAGE = 'login and tenant_id must not be null';
    END IF;
    PERFORM aos_cus.assert_platform('bind_login()');
    IF NOT (SELECT r.rolcanlogin FROM pg_catalog.pg_roles r WHERE r.oid OPERATOR(pg_catalog.=) bind_login.login) THEN
        RAISE EXCEPTION USING ERRCODE = '22023',
            MESSAGE = pg_catalog.format('login %s is a role without LOGIN', bind_login.login),
            HINT = 'Bindings follow session_user: bind each login role, not a group role it is a member of.';
    END IF;
    INSERT INTO aos_cus.cus_tenant_logins AS l (login, tenant_id) VALUES (bind_login.login, bind_login.tenant_id)
        ON CONFLICT ON CONSTRAINT cus_tenant_logins_pkey
        DO UPDATE SET tenant_id = EXCLUDED.tenant_id, bound_at = pg_catalog.now();
    -- Under Citus the binding is read on every node (delegated calls run on the workers).
    PERFORM aos_cus_internal.citus_on_workers(pg_catalog.format('SELECT aos_cus.bind_login(%L, %L)', bind_login.login, bind_login.tenant_id));
END
$$;
COMMENT ON FUNCTION aos_cus.bind_login(regrole, uuid) IS
    'binds a login role to a tenant: its sessions always act for that tenant (aos_cus_operator only)';

CREATE FUNCTION aos_cus.unbind_login(login regrole) RETURNS boolean
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    was_bound boolean;
BEGIN
    IF unbind_login.login IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = '22004', MESSAGE = 'login must not be null';
    END IF;
    PERFORM aos_cus.assert_platform('unbind_login()');
    DELETE FROM aos_cus.cus_tenant_logins l WHERE l.login OPERATOR(pg_catalog.=) unbind_login.login;
    was_bound := FOUND;
    PERFORM aos_cus_internal.citus_on_workers(pg_catalog.format('SELECT aos_cus.unbind_login(%L)', unbind_login.login));
    RETURN was_bound;
END
$$;
COMMENT ON FUNCTION aos_cus.unbind_login(regrole) IS
    'removes the tenant binding of a login role; true when there was one (aos_cus_operator only)';
REVOKE ALL ON FUNCTION aos_cus.bind_login(regrole, uuid), aos_cus.unbind_login(regrole) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION aos_cus.bind_login(regrole, uuid), aos_cus.unbind_login(regrole) TO aos_cus_operator;
