-- Row-level security: a session sees and writes only its current tenant's rows;
-- aos_cus_admin with no tenant set sees every tenant. Every tenant table gets the same two
-- policies through enable_tenant_rls(), so later parts of this script call it for their tables.
CREATE FUNCTION aos_cus.enable_tenant_rls(tbl regclass) RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    EXECUTE pg_catalog.format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', tbl);
    EXECUTE pg_catalog.format(
        'CREATE POLICY tenant_isolation ON %s USING (tenant_id = aos_cus.current_tenant()) '
        'WITH CHECK (tenant_id = aos_cus.current_tenant())', tbl);
    EXECUTE pg_catalog.format(
        'CREATE POLICY admin_all ON %s TO aos_cus_admin USING (aos_cus.current_tenant() IS NULL) '
        'WITH CHECK (aos_cus.current_tenant() IS NULL)', tbl);
END
$$;
COMMENT ON FUNCTION aos_cus.enable_tenant_rls(regclass) IS 'install-time helper: tenant row-level security policies on a table';
REVOKE ALL ON FUNCTION aos_cus.enable_tenant_rls(regclass) FROM PUBLIC;

SELECT aos_cus.enable_tenant_rls('aos_cus.cus_integrations');
SELECT aos_cus.enable_tenant_rls('aos_cus.cus_llm_usage');
SELECT aos_cus.enable_tenant_rls('aos_cus.cus_usage_daily');

-- Table privileges by role (SPEC 9). API functions add their own EXECUTE grants.
REVOKE ALL ON ALL TABLES IN SCHEMA aos_cus FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA aos_cus TO aos_cus_admin;
GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA aos_cus TO aos_cus_admin;
GRANT SELECT ON aos_cus.cus_integrations, aos_cus.cus_llm_usage, aos_cus.cus_usage_daily, aos_cus.cus_model_prices
    TO aos_cus_app, aos_cus_reader, aos_cus_worker;
GRANT INSERT ON aos_cus.cus_llm_usage TO aos_cus_app;
GRANT USAGE ON SEQUENCE aos_cus.cus_llm_usage_id_seq TO aos_cus_app;
GRANT UPDATE (health_state, health_checked_at, health_latency_ms, health_error) ON aos_cus.cus_integrations TO aos_cus_worker;

REVOKE ALL ON FUNCTION aos_cus.assert_tenant(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION aos_cus.current_tenant(), aos_cus.assert_tenant(uuid)
    TO aos_cus_admin, aos_cus_app, aos_cus_reader, aos_cus_worker;
