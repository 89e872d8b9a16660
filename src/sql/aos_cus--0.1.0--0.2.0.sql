-- aos_cus 0.1.0 -> 0.2.0: every schema change of the 0.2.0 wave, in the order it landed.
\echo Use "ALTER EXTENSION aos_cus UPDATE TO '0.2.0'" to load this file. \quit

-- Security (issue 13): every function that fixes its search_path puts pg_catalog first and pg_temp last, explicitly,
-- so no type, function or operator can be taken from the caller's temporary schema.
ALTER FUNCTION aos_cus.apply_limits(aos_cus.cus_integrations,jsonb) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION aos_cus.check_integration_fields(aos_cus.cus_integrations) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION aos_cus.check_integration_name(text) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION aos_cus.check_keys(jsonb,text,text[]) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION aos_cus.create_integration(uuid,text,text,text,jsonb) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION aos_cus.daily_aggregates(uuid,uuid,date,date) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION aos_cus.delete_integration(uuid,uuid) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION aos_cus.disable_integration(uuid,uuid) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION aos_cus.enable_integration(uuid,uuid) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION aos_cus.enable_tenant_rls(regclass) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION aos_cus.fold_usage(text,pg_snapshot,pg_snapshot,date,date) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION aos_cus.get_integration(uuid,uuid) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION aos_cus.health_summary(uuid) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION aos_cus.ingest_usage(uuid,jsonb) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION aos_cus.ingest_usage_batch(uuid,jsonb) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION aos_cus.integration_for_update(uuid,uuid) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION aos_cus.integration_lifecycle() SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION aos_cus.keyring_status() SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION aos_cus.limit_choice(jsonb,text,text[]) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION aos_cus.limit_integer(jsonb,text,bigint,bigint) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION aos_cus.list_integrations(uuid,text,uuid,integer) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION aos_cus.lock_rollup_state() SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION aos_cus.metrics() SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION aos_cus.model_info(text,text) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION aos_cus.patch_text(jsonb,text,text) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION aos_cus.rebuild_daily(date,date) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION aos_cus.record_health(uuid,uuid,text,integer,text) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION aos_cus.reprice_usage(timestamp with time zone,timestamp with time zone,boolean) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION aos_cus.request_health_check(uuid,uuid) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION aos_cus.resolve_credential(uuid,uuid) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION aos_cus.resolve_model(text,text) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION aos_cus.rollup_snapshot() SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION aos_cus.rollup_usage() SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION aos_cus.rotate_credential(uuid,uuid,text) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION aos_cus.rotate_encryption_key() SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION aos_cus.rotate_encryption_key_batch(integer) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION aos_cus.schedule_rollup(text) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION aos_cus.set_integration_status(uuid,uuid,text) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION aos_cus.set_limits(uuid,uuid,jsonb) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION aos_cus.set_price(text,text,bigint,bigint,bigint,bigint,bigint,bigint,bigint,bigint,text,bigint,timestamp with time zone,integer,integer,text[],text,text) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION aos_cus.stale_integrations(interval,uuid) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION aos_cus.test_credentials(uuid,uuid) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION aos_cus.update_integration(uuid,uuid,jsonb) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION aos_cus.usage_history(uuid,uuid,timestamp with time zone,timestamp with time zone,bigint,integer) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION aos_cus.usage_summary(uuid,uuid,timestamp with time zone,timestamp with time zone) SET search_path = pg_catalog, pg_temp;

-- Bounds (issue 13, finding 8): at most 10^12 per token count of a call; sums over calls saturate at the largest
-- bigint, so one tenant's rows can never make a rollup, read or check() fail for anyone. Fails if a stored row
-- already exceeds the bound (reduce or delete it first).
ALTER TABLE aos_cus.cus_llm_usage ADD CONSTRAINT cus_llm_usage_token_counts_bounded
    CHECK (GREATEST(input_tokens, cache_read_tokens, cache_write_tokens, cache_write_1h_tokens, output_tokens,
                    reasoning_tokens, input_audio_tokens, output_audio_tokens) <= 1000000000000);
CREATE FUNCTION aos_cus.saturate(n numeric) RETURNS bigint
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN pg_catalog.int8(GREATEST(LEAST(n, 9223372036854775807::numeric), -9223372036854775808::numeric));
COMMENT ON FUNCTION aos_cus.saturate(numeric) IS 'internal: n as bigint, clamped to the bigint range (sums saturate instead of failing)';
REVOKE ALL ON FUNCTION aos_cus.saturate(numeric) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION aos_cus.saturate(numeric) TO aos_cus_admin, aos_cus_app, aos_cus_reader, aos_cus_worker;
CREATE OR REPLACE FUNCTION aos_cus.fold_usage(filter text, a pg_snapshot, b pg_snapshot, from_day date, to_day date)
    RETURNS bigint LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    folded bigint;
BEGIN
    EXECUTE pg_catalog.format($q$
        WITH g AS (
            SELECT tenant_id, integration_id, (started_at AT TIME ZONE 'UTC')::date AS day, provider, model,
                   count(*) AS requests, count(*) FILTER (WHERE status <> 'success') AS errors,
                   aos_cus.saturate(sum(input_tokens)) AS input_tokens,
                   aos_cus.saturate(sum(cache_read_tokens)) AS cache_read_tokens,
                   aos_cus.saturate(sum(cache_write_tokens)) AS cache_write_tokens,
                   aos_cus.saturate(sum(cache_write_1h_tokens)) AS cache_write_1h_tokens,
                   aos_cus.saturate(sum(output_tokens)) AS output_tokens,
                   aos_cus.saturate(sum(reasoning_tokens)) AS reasoning_tokens,
                   aos_cus.saturate(sum(input_audio_tokens)) AS input_audio_tokens,
                   aos_cus.saturate(sum(output_audio_tokens)) AS output_audio_tokens,
                   aos_cus.saturate(coalesce(sum(cost_microcents), 0)) AS cost_microcents,
                   count(*) FILTER (WHERE cost_microcents IS NULL) AS unpriced_requests,
                   aos_cus.saturate(coalesce(sum(latency_ms), 0)) AS latency_sum_ms,
                   coalesce(max(latency_ms), 0) AS latency_max_ms
              FROM aos_cus.cus_llm_usage
             WHERE %s
             GROUP BY 1, 2, 3, 4, 5),
        ins AS (
            INSERT INTO aos_cus.cus_usage_daily AS d
                   (tenant_id, integration_id, day, provider, model, requests, errors, input_tokens,
                    cache_read_tokens, cache_write_tokens, cache_write_1h_tokens, output_tokens, reasoning_tokens,
                    input_audio_tokens, output_audio_tokens, cost_microcents, unpriced_requests, latency_sum_ms,
                    latency_max_ms)
            SELECT * FROM g
            ON CONFLICT (tenant_id, integration_id, day, provider, model) DO UPDATE SET
                requests = d.requests + excluded.requests,
                errors = d.errors + excluded.errors,
                input_tokens = aos_cus.saturate(d.input_tokens::numeric + excluded.input_tokens),
                cache_read_tokens = aos_cus.saturate(d.cache_read_tokens::numeric + excluded.cache_read_tokens),
                cache_write_tokens = aos_cus.saturate(d.cache_write_tokens::numeric + excluded.cache_write_tokens),
                cache_write_1h_tokens = aos_cus.saturate(d.cache_write_1h_tokens::numeric + excluded.cache_write_1h_tokens),
                output_tokens = aos_cus.saturate(d.output_tokens::numeric + excluded.output_tokens),
                reasoning_tokens = aos_cus.saturate(d.reasoning_tokens::numeric + excluded.reasoning_tokens),
                input_audio_tokens = aos_cus.saturate(d.input_audio_tokens::numeric + excluded.input_audio_tokens),
                output_audio_tokens = aos_cus.saturate(d.output_audio_tokens::numeric + excluded.output_audio_tokens),
                cost_microcents = aos_cus.saturate(d.cost_microcents::numeric + excluded.cost_microcents),
                unpriced_requests = d.unpriced_requests + excluded.unpriced_requests,
                latency_sum_ms = aos_cus.saturate(d.latency_sum_ms::numeric + excluded.latency_sum_ms),
                latency_max_ms = GREATEST(d.latency_max_ms, excluded.latency_max_ms),
                updated_at = pg_catalog.now())
        SELECT coalesce(sum(requests), 0)::bigint FROM g$q$, filter)
    INTO folded USING a, b, from_day, to_day;
    RETURN folded;
END
$$;
CREATE OR REPLACE FUNCTION aos_cus.usage_summary(tenant_id uuid, integration_id uuid DEFAULT NULL,
                                      from_ts timestamptz DEFAULT pg_catalog.now() - interval '30 days',
                                      to_ts timestamptz DEFAULT pg_catalog.now())
    RETURNS SETOF aos_cus.usage_summary_row
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    whole_from timestamptz;
    whole_to timestamptz;
BEGIN
    IF tenant_id IS NULL OR from_ts IS NULL OR to_ts IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = '22004', MESSAGE = 'tenant_id, from_ts and to_ts must not be null';
    END IF;
    IF from_ts > to_ts THEN
        RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = pg_catalog.format('from_ts %s is after to_ts %s', from_ts, to_ts);
    END IF;
    PERFORM aos_cus.assert_tenant(tenant_id);
    -- Whole UTC days inside [from_ts, to_ts) come from the aggregates plus the rows not rolled up yet;
    -- the partial days at either edge come from the usage rows.
    whole_from := pg_catalog.date_trunc('day', from_ts, 'UTC');
    IF whole_from < from_ts THEN
        whole_from := whole_from + interval '1 day';
    END IF;
    whole_to := GREATEST(pg_catalog.date_trunc('day', to_ts, 'UTC'), whole_from);
    RETURN QUERY
    WITH st AS (SELECT r.last_snapshot AS s FROM aos_cus.cus_rollup_state r),
    raw AS (
        SELECT u.* FROM aos_cus.cus_llm_usage u
         WHERE u.tenant_id = usage_summary.tenant_id AND u.started_at >= from_ts AND u.started_at < LEAST(whole_from, to_ts)
        UNION ALL
        SELECT u.* FROM aos_cus.cus_llm_usage u
         WHERE u.tenant_id = usage_summary.tenant_id AND u.started_at >= whole_to AND u.started_at < to_ts
        UNION ALL
        SELECT u.* FROM aos_cus.cus_llm_usage u, st
         WHERE u.tenant_id = usage_summary.tenant_id AND u.started_at >= whole_from AND u.started_at < whole_to
           AND u.ingest_xid >= pg_catalog.pg_snapshot_xmin(st.s) AND NOT pg_catalog.pg_visible_in_snapshot(u.ingest_xid, st.s)),
    parts AS (
        SELECT d.integration_id, d.provider::text AS provider, d.model, d.requests, d.errors, d.unpriced_requests,
               d.input_tokens::bigint AS input_tokens, d.cache_read_tokens::bigint AS cache_read_tokens,
               d.cache_write_tokens::bigint AS cache_write_tokens, d.cache_write_1h_tokens::bigint AS cache_write_1h_tokens,
               d.output_tokens::bigint AS output_tokens, d.reasoning_tokens::bigint AS reasoning_tokens,
               d.input_audio_tokens::bigint AS input_audio_tokens, d.output_audio_tokens::bigint AS output_audio_tokens,
               d.cost_microcents::bigint AS cost_microcents, d.latency_sum_ms, d.latency_max_ms
          FROM aos_cus.cus_usage_daily d
         WHERE d.tenant_id = usage_summary.tenant_id
           AND d.day >= (whole_from AT TIME ZONE 'UTC')::date AND d.day < (whole_to AT TIME ZONE 'UTC')::date
        UNION ALL
        SELECT r.integration_id, r.provider::text, r.model, 1, (r.status <> 'success')::int,
               (r.cost_microcents IS NULL)::int, r.input_tokens, r.cache_read_tokens, r.cache_write_tokens,
               r.cache_write_1h_tokens, r.output_tokens, r.reasoning_tokens, r.input_audio_tokens,
               r.output_audio_tokens, coalesce(r.cost_microcents, 0), coalesce(r.latency_ms, 0), coalesce(r.latency_ms, 0)
          FROM raw r)
    SELECT p.integration_id, p.provider, p.model, sum(p.requests)::bigint, sum(p.errors)::bigint,
           sum(p.unpriced_requests)::bigint, aos_cus.saturate(sum(p.input_tokens)),
           aos_cus.saturate(sum(p.cache_read_tokens)), aos_cus.saturate(sum(p.cache_write_tokens)),
           aos_cus.saturate(sum(p.cache_write_1h_tokens)), aos_cus.saturate(sum(p.output_tokens)),
           aos_cus.saturate(sum(p.reasoning_tokens)), aos_cus.saturate(sum(p.input_audio_tokens)),
           aos_cus.saturate(sum(p.output_audio_tokens)), aos_cus.saturate(sum(p.cost_microcents)),
           pg_catalog.round(sum(p.cost_microcents) / 100000000.0, 8),
           pg_catalog.round(sum(p.latency_sum_ms)::numeric / sum(p.requests), 1), max(p.latency_max_ms)
      FROM parts p
     WHERE usage_summary.integration_id IS NULL OR p.integration_id = usage_summary.integration_id
     GROUP BY p.integration_id, p.provider, p.model
     ORDER BY sum(p.cost_microcents) DESC, p.integration_id, p.provider, p.model;
END
$$;

-- Triggers (issue 13, finding 10): every trigger function raises 39P01 unless attached to its own aos_cus table.
CREATE OR REPLACE FUNCTION aos_cus.integration_lifecycle() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF TG_TABLE_SCHEMA <> 'aos_cus' OR TG_TABLE_NAME <> 'cus_integrations' THEN
        RAISE EXCEPTION 'aos_cus.integration_lifecycle() may only be attached to aos_cus.cus_integrations, not to %.%',
            pg_catalog.quote_ident(TG_TABLE_SCHEMA), pg_catalog.quote_ident(TG_TABLE_NAME) USING ERRCODE = '39P01';
    END IF;
    IF (NEW.status IS DISTINCT FROM OLD.status OR OLD.status = 'deleted')
       AND (OLD.status, NEW.status) NOT IN (('created', 'enabled'), ('enabled', 'disabled'), ('disabled', 'enabled'),
                                            ('created', 'deleted'), ('enabled', 'deleted'), ('disabled', 'deleted')) THEN
        RAISE EXCEPTION 'integration % cannot go from status % to %', OLD.id, OLD.status, NEW.status
            USING ERRCODE = '55000',
                  HINT = 'Allowed: created -> enabled, enabled -> disabled, disabled -> enabled, and created, enabled or disabled -> deleted.';
    END IF;
    IF NEW.status = 'deleted' AND OLD.status <> 'deleted' THEN
        -- Soft delete wipes the credential.
        NEW.deleted_at := pg_catalog.now();
        NEW.credential_ref := NULL;
        NEW.credential_hint := NULL;
    END IF;
    RETURN NEW;
END
$$;

-- Security (issue 13, findings 4 and 11): the platform operator apart from tenant admins, and tenant binding
-- of direct-SQL logins. What changes for an existing install: aos_cus_admin still manages its tenant's
-- integrations, credentials and usage, but acting for no tenant (every tenant's rows), prices (set_price and
-- writes to cus_model_prices), rollup_usage / rebuild_daily / reprice_usage / schedule_rollup and
-- cus_rollup_state, cross-tenant statistics (stat_*, metrics(), stat_reset) and key rotation (rotate_encryption_key*,
-- keyring_status) now need the new role aos_cus_operator (itself a member of aos_cus_admin), and never run while
-- the session acts for a tenant. Roles that did those things as members of aos_cus_admin (platform logins, the
-- owner of the pg_cron job aos_cus_rollup) need GRANT aos_cus_operator TO <role>: the NOTICE below lists the
-- members of aos_cus_admin to review. Nothing is granted automatically, so no tenant role gains the platform.
DO $roles$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'aos_cus_operator') THEN
        CREATE ROLE aos_cus_operator NOLOGIN;
    END IF;
END
$roles$;
GRANT aos_cus_admin TO aos_cus_operator;
-- Grants already held by pg_monitor (and the tenant roles) are made again after the operator's, here and below,
-- so every privilege list reads as on a fresh install.
REVOKE USAGE ON SCHEMA aos_cus FROM pg_monitor;
GRANT USAGE ON SCHEMA aos_cus TO aos_cus_operator, pg_monitor;
DO $notice$
DECLARE
    members text;
BEGIN
    SELECT pg_catalog.string_agg(m.rolname, ', ' ORDER BY m.rolname) INTO members
      FROM pg_catalog.pg_auth_members a JOIN pg_catalog.pg_roles m ON m.oid = a.member
     WHERE a.roleid = 'aos_cus_admin'::regrole AND m.rolname <> 'aos_cus_operator';
    IF members IS NOT NULL THEN
        RAISE NOTICE 'aos_cus 0.2.0: members of aos_cus_admin no longer act for every tenant nor run platform operations: %', members
            USING HINT = 'GRANT aos_cus_operator TO the roles among them that are the platform''s own (not a tenant''s).';
    END IF;
END
$notice$;

CREATE OR REPLACE FUNCTION aos_cus.enable_tenant_rls(tbl regclass) RETURNS void
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

DROP POLICY admin_all ON aos_cus.cus_integrations;
CREATE POLICY operator_all ON aos_cus.cus_integrations TO aos_cus_operator USING (aos_cus.current_tenant() IS NULL)
    WITH CHECK (aos_cus.current_tenant() IS NULL);
DROP POLICY admin_all ON aos_cus.cus_llm_usage;
CREATE POLICY operator_all ON aos_cus.cus_llm_usage TO aos_cus_operator USING (aos_cus.current_tenant() IS NULL)
    WITH CHECK (aos_cus.current_tenant() IS NULL);
DROP POLICY admin_all ON aos_cus.cus_usage_daily;
CREATE POLICY operator_all ON aos_cus.cus_usage_daily TO aos_cus_operator USING (aos_cus.current_tenant() IS NULL)
    WITH CHECK (aos_cus.current_tenant() IS NULL);
DROP POLICY admin_all ON aos_cus.cus_ingest_rejects;
CREATE POLICY operator_all ON aos_cus.cus_ingest_rejects TO aos_cus_operator USING (aos_cus.current_tenant() IS NULL)
    WITH CHECK (aos_cus.current_tenant() IS NULL);
DROP POLICY admin_all ON aos_cus.cus_enforcement_log;
CREATE POLICY operator_all ON aos_cus.cus_enforcement_log TO aos_cus_operator USING (aos_cus.current_tenant() IS NULL)
    WITH CHECK (aos_cus.current_tenant() IS NULL);
DROP POLICY admin_all ON aos_cus.cus_health_checks;
CREATE POLICY operator_all ON aos_cus.cus_health_checks TO aos_cus_operator USING (aos_cus.current_tenant() IS NULL)
    WITH CHECK (aos_cus.current_tenant() IS NULL);
DROP POLICY admin_all ON aos_cus.cus_health_history;
CREATE POLICY operator_all ON aos_cus.cus_health_history TO aos_cus_operator USING (aos_cus.current_tenant() IS NULL)
    WITH CHECK (aos_cus.current_tenant() IS NULL);

COMMENT ON FUNCTION aos_cus.current_tenant() IS
    'tenant the session acts for: its login''s binding, else request.jwt.claims ->> ''tenant_id'', else aos_cus.tenant_id, else NULL';
COMMENT ON FUNCTION aos_cus.assert_tenant(uuid) IS
    'raises 42501 unless the session acts for tenant_id (or has no tenant and is aos_cus_operator)';

CREATE FUNCTION aos_cus.assert_platform(what text) RETURNS void
    AS 'MODULE_PATHNAME', 'aos_cus_assert_platform_sql'
    LANGUAGE C VOLATILE PARALLEL SAFE;
COMMENT ON FUNCTION aos_cus.assert_platform(text) IS
    'raises 42501 unless the caller is aos_cus_operator (or superuser) and the session acts for no tenant';
REVOKE ALL ON FUNCTION aos_cus.assert_platform(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION aos_cus.assert_platform(text) TO aos_cus_admin, aos_cus_app, aos_cus_reader, aos_cus_worker;

-- Global tables: no session acting for a tenant writes them, whatever its grants (the operator included).
CREATE FUNCTION aos_cus.platform_table_guard() RETURNS trigger
    AS 'MODULE_PATHNAME', 'aos_cus_platform_table_guard'
    LANGUAGE C;
COMMENT ON FUNCTION aos_cus.platform_table_guard() IS
    'trigger: 42501 when a session acting for a tenant writes a table shared by every tenant';
REVOKE ALL ON FUNCTION aos_cus.platform_table_guard() FROM PUBLIC;
CREATE TRIGGER cus_model_prices_platform_guard
    BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON aos_cus.cus_model_prices
    FOR EACH STATEMENT EXECUTE FUNCTION aos_cus.platform_table_guard();
CREATE TRIGGER cus_rollup_state_platform_guard
    BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON aos_cus.cus_rollup_state
    FOR EACH STATEMENT EXECUTE FUNCTION aos_cus.platform_table_guard();
-- Prices and rollup bookkeeping are the operator's; tenant roles read them.
REVOKE INSERT, UPDATE, DELETE ON aos_cus.cus_model_prices, aos_cus.cus_rollup_state FROM aos_cus_admin;
REVOKE USAGE, UPDATE ON SEQUENCE aos_cus.cus_model_prices_id_seq FROM aos_cus_admin;
GRANT INSERT, UPDATE, DELETE ON aos_cus.cus_model_prices, aos_cus.cus_rollup_state TO aos_cus_operator;
GRANT USAGE, UPDATE ON SEQUENCE aos_cus.cus_model_prices_id_seq TO aos_cus_operator;
REVOKE SELECT ON aos_cus.cus_rollup_state FROM aos_cus_app, aos_cus_reader;
GRANT SELECT ON aos_cus.cus_rollup_state TO aos_cus_app, aos_cus_reader;


-- Tenant binding of direct-SQL logins: a session whose session_user is listed always acts for that
-- tenant; a claim or aos_cus.tenant_id naming another raises 42501 (tenancy.c reads this table).
CREATE TABLE aos_cus.cus_tenant_logins (
    login      regrole PRIMARY KEY,
    tenant_id  uuid NOT NULL,
    bound_at   timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE aos_cus.cus_tenant_logins IS 'login roles bound to a tenant: sessions of that login always act for it';
SELECT aos_cus.enable_tenant_rls('aos_cus.cus_tenant_logins');
SELECT pg_catalog.pg_extension_config_dump('aos_cus.cus_tenant_logins', '');
CREATE TRIGGER cus_tenant_logins_platform_guard
    BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON aos_cus.cus_tenant_logins
    FOR EACH STATEMENT EXECUTE FUNCTION aos_cus.platform_table_guard();
CREATE FUNCTION aos_cus.tenant_logins_changed() RETURNS trigger
    AS 'MODULE_PATHNAME', 'aos_cus_tenant_logins_changed'
    LANGUAGE C;
COMMENT ON FUNCTION aos_cus.tenant_logins_changed() IS 'trigger: sends a relcache invalidation so sessions re-read their binding';
REVOKE ALL ON FUNCTION aos_cus.tenant_logins_changed() FROM PUBLIC;
CREATE TRIGGER cus_tenant_logins_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON aos_cus.cus_tenant_logins
    FOR EACH STATEMENT EXECUTE FUNCTION aos_cus.tenant_logins_changed();
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
END
$$;
COMMENT ON FUNCTION aos_cus.bind_login(regrole, uuid) IS
    'binds a login role to a tenant: its sessions always act for that tenant (aos_cus_operator only)';

CREATE FUNCTION aos_cus.unbind_login(login regrole) RETURNS boolean
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF unbind_login.login IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = '22004', MESSAGE = 'login must not be null';
    END IF;
    PERFORM aos_cus.assert_platform('unbind_login()');
    DELETE FROM aos_cus.cus_tenant_logins l WHERE l.login OPERATOR(pg_catalog.=) unbind_login.login;
    RETURN FOUND;
END
$$;
COMMENT ON FUNCTION aos_cus.unbind_login(regrole) IS
    'removes the tenant binding of a login role; true when there was one (aos_cus_operator only)';
REVOKE ALL ON FUNCTION aos_cus.bind_login(regrole, uuid), aos_cus.unbind_login(regrole) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION aos_cus.bind_login(regrole, uuid), aos_cus.unbind_login(regrole) TO aos_cus_operator;

CREATE OR REPLACE FUNCTION aos_cus.set_price(provider text, model text, input_price bigint, output_price bigint,
    cache_read_price bigint DEFAULT NULL, cache_write_price bigint DEFAULT NULL,
    cache_write_1h_price bigint DEFAULT NULL, reasoning_price bigint DEFAULT NULL,
    input_audio_price bigint DEFAULT NULL, output_audio_price bigint DEFAULT NULL,
    service_tier text DEFAULT 'standard', min_prompt_tokens bigint DEFAULT 0,
    effective_from timestamptz DEFAULT pg_catalog.now(), context_window integer DEFAULT NULL,
    max_output_tokens integer DEFAULT NULL, aliases text[] DEFAULT NULL, match_pattern text DEFAULT NULL,
    source text DEFAULT 'manual') RETURNS bigint
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    m text := pg_catalog.lower(pg_catalog.btrim(set_price.model));
    prices bigint[] := ARRAY[set_price.input_price, set_price.output_price, set_price.cache_read_price,
                             set_price.cache_write_price, set_price.cache_write_1h_price, set_price.reasoning_price,
                             set_price.input_audio_price, set_price.output_audio_price];
    names text[] := ARRAY['input_price', 'output_price', 'cache_read_price', 'cache_write_price',
                          'cache_write_1h_price', 'reasoning_price', 'input_audio_price', 'output_audio_price'];
    latest aos_cus.cus_model_prices;
    new_id bigint;
BEGIN
    PERFORM aos_cus.assert_platform('set_price()');
    IF set_price.provider IS NULL OR set_price.model IS NULL OR set_price.input_price IS NULL
       OR set_price.output_price IS NULL OR set_price.service_tier IS NULL
       OR set_price.min_prompt_tokens IS NULL OR set_price.effective_from IS NULL OR set_price.source IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = '22004', MESSAGE = 'provider, model, input_price, output_price, service_tier, '
            'min_prompt_tokens, effective_from and source must not be null';
    END IF;
    IF NOT set_price.provider = ANY (ARRAY['openai', 'anthropic', 'google', 'azure_openai', 'aws_bedrock', 'mistral', 'custom']) THEN
        RAISE EXCEPTION USING ERRCODE = '22023',
            MESSAGE = pg_catalog.format('provider %L is not a known provider', pg_catalog.left(set_price.provider, 64));
    END IF;
    IF m = '' OR pg_catalog.length(m) > 200 THEN
        RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'model must be 1 to 200 characters';
    END IF;
    IF NOT set_price.service_tier = ANY (ARRAY['standard', 'priority', 'flex', 'batch']) THEN
        RAISE EXCEPTION USING ERRCODE = '22023',
            MESSAGE = pg_catalog.format('service_tier %L is not a known service tier', pg_catalog.left(set_price.service_tier, 64));
    END IF;
    FOR i IN 1 .. 8 LOOP
        IF prices[i] < 0 THEN
            RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = pg_catalog.format('%s must not be negative', names[i]);
        END IF;
    END LOOP;
    IF set_price.min_prompt_tokens < 0 THEN
        RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'min_prompt_tokens must not be negative';
    END IF;
    IF NOT pg_catalog.isfinite(set_price.effective_from) THEN
        RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'effective_from must be a finite timestamp';
    END IF;
    IF set_price.source LIKE 'langfuse: %' THEN
        RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'source must not start with "langfuse: " (reserved for the seed)';
    END IF;
    IF set_price.match_pattern IS NOT NULL THEN
        PERFORM '' ~* set_price.match_pattern;
    END IF;

    -- One writer at a time, so "later than every version" holds at commit; readers are not blocked.
    LOCK TABLE aos_cus.cus_model_prices IN SHARE ROW EXCLUSIVE MODE;
    IF EXISTS (SELECT 1 FROM aos_cus.cus_model_prices p
                WHERE p.provider = set_price.provider AND p.model = m AND p.service_tier = set_price.service_tier
                  AND p.min_prompt_tokens = set_price.min_prompt_tokens AND p.effective_from >= set_price.effective_from) THEN
        RAISE EXCEPTION USING ERRCODE = '22023',
            MESSAGE = 'effective_from must be later than every existing version of this price',
            DETAIL = pg_catalog.format('%s %s tier %s above %s tokens already has a version at or after %s.',
                                       set_price.provider, m, set_price.service_tier, set_price.min_prompt_tokens,
                                       set_price.effective_from),
            HINT = 'Prices are history: add a new version instead of changing one.';
    END IF;
    -- Names and limits not given are kept from the model's latest row.
    SELECT * INTO latest FROM aos_cus.cus_model_prices p
     WHERE p.provider = set_price.provider AND p.model = m ORDER BY p.effective_from DESC, p.id DESC LIMIT 1;
    INSERT INTO aos_cus.cus_model_prices AS p (provider, model, aliases, match_pattern, service_tier, min_prompt_tokens,
        effective_from, input_price, output_price, cache_read_price, cache_write_price, cache_write_1h_price,
        reasoning_price, input_audio_price, output_audio_price, context_window, max_output_tokens, source)
    VALUES (set_price.provider, m,
            COALESCE((SELECT pg_catalog.array_agg(pg_catalog.lower(a)) FROM pg_catalog.unnest(set_price.aliases) a),
                     latest.aliases, '{}'),
            COALESCE(set_price.match_pattern, latest.match_pattern),
            set_price.service_tier, set_price.min_prompt_tokens, set_price.effective_from,
            set_price.input_price, set_price.output_price, set_price.cache_read_price, set_price.cache_write_price,
            set_price.cache_write_1h_price, set_price.reasoning_price, set_price.input_audio_price,
            set_price.output_audio_price, COALESCE(set_price.context_window, latest.context_window),
            COALESCE(set_price.max_output_tokens, latest.max_output_tokens), set_price.source)
    RETURNING p.id INTO new_id;
    RETURN new_id;
END
$$;

REVOKE EXECUTE ON FUNCTION aos_cus.set_price(text, text, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, text, bigint, timestamptz, integer, integer, text[], text, text) FROM aos_cus_admin;
GRANT EXECUTE ON FUNCTION aos_cus.set_price(text, text, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, text, bigint, timestamptz, integer, integer, text[], text, text) TO aos_cus_operator;

CREATE OR REPLACE FUNCTION aos_cus.rollup_usage() RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    st record;
    s pg_snapshot;
    folded bigint;
BEGIN
    PERFORM aos_cus.assert_platform('rollup_usage()');
    st := aos_cus.lock_rollup_state();
    IF st.rebuilt IS NOT NULL THEN
        folded := st.rebuilt;
    ELSE
        -- Taken after the lock: a concurrent rollup has committed, so we fold only what it did not.
        s := aos_cus.rollup_snapshot();
        folded := aos_cus.fold_usage(
            'ingest_xid >= pg_catalog.pg_snapshot_xmin($1) AND pg_catalog.pg_visible_in_snapshot(ingest_xid, $2)'
            ' AND NOT pg_catalog.pg_visible_in_snapshot(ingest_xid, $1)', st.last_snapshot, s, NULL, NULL);
        UPDATE aos_cus.cus_rollup_state SET last_snapshot = s, last_rollup_at = pg_catalog.now();
    END IF;
    DELETE FROM aos_cus.cus_ingest_rejects WHERE rejected_at < pg_catalog.now() - interval '30 days';
    RETURN folded;
END
$$;

CREATE OR REPLACE FUNCTION aos_cus.rebuild_daily(from_day date, to_day date) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    st record;
BEGIN
    PERFORM aos_cus.assert_platform('rebuild_daily()');
    IF from_day IS NULL OR to_day IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = '22004', MESSAGE = 'from_day and to_day must not be null';
    END IF;
    IF from_day > to_day THEN
        RAISE EXCEPTION USING ERRCODE = '22023',
            MESSAGE = pg_catalog.format('from_day %s is after to_day %s', from_day, to_day);
    END IF;
    st := aos_cus.lock_rollup_state();
    IF st.rebuilt IS NOT NULL THEN
        RETURN st.rebuilt;
    END IF;
    -- Exactly the rows the aggregates already stand for (visible in last_snapshot), so rollups stay exact.
    DELETE FROM aos_cus.cus_usage_daily WHERE day BETWEEN from_day AND to_day;
    RETURN aos_cus.fold_usage(
        'started_at >= ($3::timestamp AT TIME ZONE ''UTC'') AND started_at < (($4 + 1)::timestamp AT TIME ZONE ''UTC'')'
        ' AND pg_catalog.pg_visible_in_snapshot(ingest_xid, $1)', st.last_snapshot, NULL, from_day, to_day);
END
$$;

CREATE OR REPLACE FUNCTION aos_cus.reprice_usage(from_ts timestamptz, to_ts timestamptz, only_unpriced boolean DEFAULT true)
    RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    st record;
    changed bigint;
BEGIN
    PERFORM aos_cus.assert_platform('reprice_usage()');
    IF from_ts IS NULL OR to_ts IS NULL OR only_unpriced IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = '22004', MESSAGE = 'from_ts, to_ts and only_unpriced must not be null';
    END IF;
    IF from_ts > to_ts THEN
        RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = pg_catalog.format('from_ts %s is after to_ts %s', from_ts, to_ts);
    END IF;
    -- Serialize with rollups: rows already folded get their aggregate corrected here, the rest on their rollup.
    st := aos_cus.lock_rollup_state();
    WITH old AS (
        SELECT tenant_id, id, cost_microcents
          FROM aos_cus.cus_llm_usage
         WHERE started_at >= from_ts AND started_at < to_ts AND (NOT only_unpriced OR cost_microcents IS NULL)
           FOR UPDATE),
    upd AS (
        -- A NULL cost makes the pricing trigger price the row again.
        UPDATE aos_cus.cus_llm_usage u SET cost_microcents = NULL, price_id = NULL
          FROM old WHERE u.tenant_id = old.tenant_id AND u.id = old.id
        RETURNING u.tenant_id, u.integration_id, (u.started_at AT TIME ZONE 'UTC')::date AS day, u.provider, u.model,
                  u.ingest_xid, old.cost_microcents AS old_cost, u.cost_microcents AS new_cost),
    delta AS (
        SELECT tenant_id, integration_id, day, provider, model,
               sum(coalesce(new_cost, 0) - coalesce(old_cost, 0)) AS cost,
               sum((new_cost IS NULL)::int - (old_cost IS NULL)::int) AS unpriced
          FROM upd
         WHERE pg_catalog.pg_visible_in_snapshot(ingest_xid, st.last_snapshot)
         GROUP BY 1, 2, 3, 4, 5),
    adjusted AS (
        UPDATE aos_cus.cus_usage_daily d
           SET cost_microcents = d.cost_microcents + delta.cost,
               unpriced_requests = d.unpriced_requests + delta.unpriced, updated_at = pg_catalog.now()
          FROM delta
         WHERE d.tenant_id = delta.tenant_id AND d.integration_id = delta.integration_id AND d.day = delta.day
           AND d.provider = delta.provider AND d.model = delta.model
        RETURNING 1)
    SELECT count(*) FILTER (WHERE new_cost IS DISTINCT FROM old_cost) INTO changed FROM upd;
    RETURN changed;
END
$$;

CREATE OR REPLACE FUNCTION aos_cus.schedule_rollup(schedule text DEFAULT '*/10 * * * *') RETURNS bigint
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    job bigint;
BEGIN
    PERFORM aos_cus.assert_platform('schedule_rollup()');
    IF schedule IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = '22004', MESSAGE = 'schedule must not be null';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'pg_cron') THEN
        RAISE EXCEPTION USING ERRCODE = '55000',
            MESSAGE = 'schedule_rollup requires the pg_cron extension in this database',
            HINT = 'Add pg_cron to shared_preload_libraries, set cron.database_name to this database, '
                   'restart, and run CREATE EXTENSION pg_cron.';
    END IF;
    -- Named job: scheduling again replaces the schedule instead of adding a second job.
    EXECUTE 'SELECT cron.schedule($1, $2, $3)' INTO job
        USING 'aos_cus_rollup', schedule, 'SELECT aos_cus.rollup_usage()';
    RETURN job;
END
$$;

REVOKE EXECUTE ON FUNCTION aos_cus.rollup_usage(), aos_cus.rebuild_daily(date, date),
    aos_cus.reprice_usage(timestamptz, timestamptz, boolean), aos_cus.schedule_rollup(text) FROM aos_cus_admin;
GRANT EXECUTE ON FUNCTION aos_cus.rollup_usage(), aos_cus.rebuild_daily(date, date),
    aos_cus.reprice_usage(timestamptz, timestamptz, boolean), aos_cus.schedule_rollup(text) TO aos_cus_operator;
COMMENT ON FUNCTION aos_cus.stat_counters() IS 'event counters of every tenant since server start (needs shared_preload_libraries)';
REVOKE EXECUTE ON FUNCTION aos_cus.stat_counters() FROM aos_cus_admin, aos_cus_reader, pg_monitor;
GRANT EXECUTE ON FUNCTION aos_cus.stat_counters() TO aos_cus_operator, pg_monitor;
REVOKE EXECUTE ON FUNCTION aos_cus.stat_usage(), aos_cus.stat_shmem(), aos_cus.stat_budget(), aos_cus.metrics(),
    aos_cus.stat_reset() FROM aos_cus_admin, pg_monitor;
GRANT EXECUTE ON FUNCTION aos_cus.stat_usage(), aos_cus.stat_shmem(), aos_cus.stat_budget(), aos_cus.metrics(),
    aos_cus.stat_reset() TO aos_cus_operator;
GRANT EXECUTE ON FUNCTION aos_cus.stat_usage(), aos_cus.stat_shmem(), aos_cus.stat_budget(), aos_cus.metrics() TO pg_monitor;
REVOKE SELECT ON aos_cus.stat_events, aos_cus.stat_usage, aos_cus.stat_shmem, aos_cus.stat_health, aos_cus.stat_rollup,
    aos_cus.stat_decisions, aos_cus.stat_budget FROM aos_cus_admin, pg_monitor;
GRANT SELECT ON aos_cus.stat_events, aos_cus.stat_usage, aos_cus.stat_shmem, aos_cus.stat_health, aos_cus.stat_rollup,
    aos_cus.stat_decisions, aos_cus.stat_budget TO aos_cus_operator, pg_monitor;
REVOKE EXECUTE ON FUNCTION aos_cus.rotate_encryption_key(), aos_cus.rotate_encryption_key_batch(integer),
    aos_cus.keyring_status() FROM aos_cus_admin;
GRANT EXECUTE ON FUNCTION aos_cus.rotate_encryption_key(), aos_cus.rotate_encryption_key_batch(integer),
    aos_cus.keyring_status() TO aos_cus_operator;
REVOKE EXECUTE ON FUNCTION aos_cus.stat_decisions(), aos_cus.stat_enforcement() FROM aos_cus_admin, aos_cus_reader;
GRANT EXECUTE ON FUNCTION aos_cus.stat_decisions(), aos_cus.stat_enforcement() TO aos_cus_operator;
CREATE FUNCTION aos_cus.assert_no_tenant(what text) RETURNS boolean
    AS 'MODULE_PATHNAME', 'aos_cus_assert_no_tenant_sql'
    LANGUAGE C VOLATILE PARALLEL SAFE;
COMMENT ON FUNCTION aos_cus.assert_no_tenant(text) IS
    'true, or 42501 while the session acts for a tenant (guards views over every tenant)';
REVOKE ALL ON FUNCTION aos_cus.assert_no_tenant(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION aos_cus.assert_no_tenant(text) TO aos_cus_admin, aos_cus_app, aos_cus_reader, aos_cus_worker, pg_monitor;

-- stat_health counts every tenant's integrations: refused while the session acts for a tenant.
CREATE OR REPLACE VIEW aos_cus.stat_health AS
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

-- Security (issue 13, finding 7): the enforcement log is pruned per tenant by its primary key (tenant_id, id),
-- so one tenant's refusals no longer erase another's rows; the global id index pruning used is gone.
DROP INDEX aos_cus.cus_enforcement_log_id_idx;
COMMENT ON TABLE aos_cus.cus_enforcement_log IS 'warned and blocked check() decisions, newest aos_cus.enforcement_log_max_rows per tenant kept';

-- Credential sources (issue 13): vault:// and env:// references are bound to tenants by an operator allow-list.
CREATE TABLE aos_cus.cus_credential_sources (
    tenant_id   uuid NOT NULL,
    source      text NOT NULL CHECK (aos_cus.validate_credential_format(source) OPERATOR(pg_catalog.<>) 'encrypted'),
    allowed_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (tenant_id, source)
);
COMMENT ON TABLE aos_cus.cus_credential_sources IS
    'vault:// and env:// references the platform operator allowed a tenant to use (issue 13)';
ALTER TABLE aos_cus.cus_credential_sources ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_read ON aos_cus.cus_credential_sources FOR SELECT
    USING (tenant_id OPERATOR(pg_catalog.=) aos_cus.current_tenant());
CREATE POLICY operator_read ON aos_cus.cus_credential_sources FOR SELECT TO aos_cus_operator
    USING (aos_cus.current_tenant() IS NULL);
SELECT pg_catalog.pg_extension_config_dump('aos_cus.cus_credential_sources', '');
REVOKE ALL ON aos_cus.cus_credential_sources FROM PUBLIC;
GRANT SELECT ON aos_cus.cus_credential_sources TO aos_cus_admin, aos_cus_app, aos_cus_worker;

CREATE FUNCTION aos_cus.allow_credential_source(tenant_id uuid, source text) RETURNS boolean
    AS 'MODULE_PATHNAME', 'aos_cus_allow_credential_source'
    LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION aos_cus.allow_credential_source(uuid, text) IS
    'let a tenant use a vault:// or env:// credential reference (operator, no tenant set); true when newly allowed';

CREATE FUNCTION aos_cus.revoke_credential_source(tenant_id uuid, source text) RETURNS boolean
    AS 'MODULE_PATHNAME', 'aos_cus_revoke_credential_source'
    LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION aos_cus.revoke_credential_source(uuid, text) IS
    'withdraw a tenant''s vault:// or env:// source (operator, no tenant set); integrations using it fail to resolve with 42501';

REVOKE ALL ON FUNCTION aos_cus.allow_credential_source(uuid, text), aos_cus.revoke_credential_source(uuid, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION aos_cus.allow_credential_source(uuid, text), aos_cus.revoke_credential_source(uuid, text) TO aos_cus_operator;
COMMENT ON FUNCTION aos_cus.credential_reference(uuid, uuid, text) IS
    'what to store for a credential: vault:// and env:// references the tenant may use as they are, plaintext keys encrypted (with a 4-character hint)';
COMMENT ON FUNCTION aos_cus.resolve_credential(uuid, uuid) IS
    'plaintext credential of an integration: encrypted:// decrypted, vault:// from Supabase Vault, env:// from the server environment (vault:// and env:// only when allowed for the tenant)';

-- Faults (issue 22, finding 5): schedule_rollup() makes the job anew, so after a failover it connects to this server.
CREATE OR REPLACE FUNCTION aos_cus.schedule_rollup(schedule text DEFAULT '*/10 * * * *') RETURNS bigint
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    job bigint;
BEGIN
    PERFORM aos_cus.assert_platform('schedule_rollup()');
    IF schedule IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = '22004', MESSAGE = 'schedule must not be null';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'pg_cron') THEN
        RAISE EXCEPTION USING ERRCODE = '55000',
            MESSAGE = 'schedule_rollup requires the pg_cron extension in this database',
            HINT = 'Add pg_cron to shared_preload_libraries, set cron.database_name to this database, '
                   'restart, and run CREATE EXTENSION pg_cron.';
    END IF;
    -- One named job, made anew: pg_cron keeps a job's port from when it was scheduled, so after a failover to a
    -- server on another port scheduling again is what points the job at this server.
    EXECUTE 'SELECT cron.unschedule(jobid) FROM cron.job WHERE jobname = $1 AND username = current_user'
        USING 'aos_cus_rollup';
    EXECUTE 'SELECT cron.schedule($1, $2, $3)' INTO job
        USING 'aos_cus_rollup', schedule, 'SELECT aos_cus.rollup_usage()';
    RETURN job;
END
$$;
COMMENT ON FUNCTION aos_cus.schedule_rollup(text) IS
    'registers (or registers anew, for this server''s port) the pg_cron job aos_cus_rollup running rollup_usage(); returns the job id';

-- Key check values (issue 22): each keyring version's fingerprint (HMAC-SHA256 of a fixed label, reveals nothing of
-- the key), recorded when the version first encrypts. A key that does not match its version's row never encrypts
-- (55000) and decryption failures under it say "wrong key". Written by the extension only; kept by pg_dump.
CREATE TABLE aos_cus.cus_keyring_versions (
    version       bigint PRIMARY KEY CHECK (version OPERATOR(pg_catalog.>=) 1 AND version OPERATOR(pg_catalog.<=) 2147483647),
    fingerprint   text NOT NULL CHECK (fingerprint OPERATOR(pg_catalog.~) '^[0-9a-f]{16}$'),
    first_used_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE aos_cus.cus_keyring_versions IS
    'fingerprint of each keyring version recorded at its first encryption; a different key under a recorded version is refused (issue 22)';
SELECT pg_catalog.pg_extension_config_dump('aos_cus.cus_keyring_versions', '');
REVOKE ALL ON aos_cus.cus_keyring_versions FROM PUBLIC;
GRANT SELECT ON aos_cus.cus_keyring_versions TO aos_cus_operator;

-- Layered budgets (issue 14): usage rows name their subject and tags; limits per scope (tenant, subject, tag) in
-- cus_scope_limits; check() takes subject, tags and model (the 5-argument calls keep working through the defaults).
ALTER TABLE aos_cus.cus_llm_usage
    ADD COLUMN subject text CHECK (pg_catalog.octet_length(subject) BETWEEN 1 AND 255),
    ADD COLUMN tags jsonb CHECK (pg_catalog.jsonb_typeof(tags) = 'object' AND pg_catalog.pg_column_size(tags) <= 8192);
ALTER TYPE aos_cus.usage_row ADD ATTRIBUTE subject text, ADD ATTRIBUTE tags jsonb;
GRANT INSERT (subject, tags) ON aos_cus.cus_llm_usage TO aos_cus_app;

DROP FUNCTION aos_cus.check(uuid, uuid, bigint, bigint, text);
CREATE FUNCTION aos_cus.check(tenant_id uuid, integration_id uuid, estimated_cost_microcents bigint DEFAULT 0,
                              estimated_tokens bigint DEFAULT 0, call_id text DEFAULT NULL,
                              subject text DEFAULT NULL, tags jsonb DEFAULT NULL, model text DEFAULT NULL)
    RETURNS aos_cus.decision
    AS 'MODULE_PATHNAME', 'aos_cus_check' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION aos_cus.check(uuid, uuid, bigint, bigint, text, text, jsonb, text) IS
    'decides a call before it is made against every scope it touches (integration, tenant, subject, tags): state, rate, budget, tokens; with call_id an admitted estimate is reserved on all of them or none';
REVOKE ALL ON FUNCTION aos_cus.check(uuid, uuid, bigint, bigint, text, text, jsonb, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION aos_cus.check(uuid, uuid, bigint, bigint, text, text, jsonb, text) TO aos_cus_admin, aos_cus_app;


CREATE FUNCTION aos_cus.parse_scope(scope text, OUT kind text, OUT integration_id uuid) RETURNS record
    AS 'MODULE_PATHNAME', 'aos_cus_parse_scope' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION aos_cus.parse_scope(text) IS
    'kind (tenant, integration, subject, tag) of a scope string and its integration id; 22023 naming scope when malformed';

-- Limits of the tenant, subject and tag scopes; the same columns and defaults as cus_integrations' limits.
CREATE TABLE aos_cus.cus_scope_limits (
    tenant_id          uuid NOT NULL,
    scope              text NOT NULL CHECK ((aos_cus.parse_scope(scope)).kind OPERATOR(pg_catalog.<>) 'integration'),
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
    PRIMARY KEY (tenant_id, scope)
);
COMMENT ON TABLE aos_cus.cus_scope_limits IS 'limits of the tenant, subject:<v>|* and tag:<k>=<v>|* scopes (integration limits stay on cus_integrations)';
SELECT aos_cus.enable_tenant_rls('aos_cus.cus_scope_limits');
SELECT pg_catalog.pg_extension_config_dump('aos_cus.cus_scope_limits', '');
REVOKE ALL ON aos_cus.cus_scope_limits FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE, DELETE ON aos_cus.cus_scope_limits TO aos_cus_admin;
GRANT SELECT ON aos_cus.cus_scope_limits TO aos_cus_app, aos_cus_reader;

-- Per-scope sums for rebuilding a scope's state from the usage rows of its period.
CREATE INDEX cus_llm_usage_subject_idx ON aos_cus.cus_llm_usage (tenant_id, subject, started_at) WHERE subject IS NOT NULL;
CREATE INDEX cus_llm_usage_tags_idx ON aos_cus.cus_llm_usage USING gin (tags jsonb_path_ops) WHERE tags IS NOT NULL;

-- A change of scope limits makes cached scope state reload on its next use.
CREATE FUNCTION aos_cus.scope_limits_changed_trigger() RETURNS trigger
    AS 'MODULE_PATHNAME', 'aos_cus_scope_limits_changed_trigger' LANGUAGE C;
COMMENT ON FUNCTION aos_cus.scope_limits_changed_trigger() IS
    'marks cached enforcement limits stale when the transaction commits';
CREATE TRIGGER enforcement_scope_limits_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON aos_cus.cus_scope_limits
    FOR EACH STATEMENT EXECUTE FUNCTION aos_cus.scope_limits_changed_trigger();
REVOKE ALL ON FUNCTION aos_cus.scope_limits_changed_trigger() FROM PUBLIC;

-- The limits JSON of a scope row, keyed as set_limits() takes them.
CREATE FUNCTION aos_cus.scope_limits_json(s aos_cus.cus_scope_limits) RETURNS jsonb
    LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT pg_catalog.jsonb_build_object(
               'budget_microcents', s.budget_microcents, 'budget_period', s.budget_period,
               'token_limit', s.token_limit, 'token_period', s.token_period,
               'rpm', s.rpm, 'tpm', s.tpm, 'warn_at_pct', s.warn_at_pct,
               'mode', s.enforcement_mode, 'timezone', s.timezone)
$$;
COMMENT ON FUNCTION aos_cus.scope_limits_json(aos_cus.cus_scope_limits) IS 'limits of a cus_scope_limits row as JSON';

-- Patch the limits of a scope, validated by apply_limits() as set_limits() is; integration:<id> is set_limits().
CREATE FUNCTION aos_cus.set_scope_limits(tenant_id uuid, scope text, limits jsonb) RETURNS jsonb
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    p record;
    s aos_cus.cus_scope_limits;
    i aos_cus.cus_integrations;
BEGIN
    PERFORM aos_cus.assert_tenant(tenant_id);
    p := aos_cus.parse_scope(scope);
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
    i.warn_at_pct := coalesce(s.warn_at_pct, 80);
    i.enforcement_mode := coalesce(s.enforcement_mode, 'enforce');
    i.timezone := coalesce(s.timezone, 'UTC');
    i := aos_cus.apply_limits(i, limits);
    INSERT INTO aos_cus.cus_scope_limits AS c (tenant_id, scope, budget_microcents, budget_period, token_limit,
                                               token_period, rpm, tpm, warn_at_pct, enforcement_mode, timezone)
    VALUES (set_scope_limits.tenant_id, set_scope_limits.scope, i.budget_microcents, i.budget_period, i.token_limit,
            i.token_period, i.rpm, i.tpm, i.warn_at_pct, i.enforcement_mode, i.timezone)
    ON CONFLICT ON CONSTRAINT cus_scope_limits_pkey DO UPDATE
       SET budget_microcents = EXCLUDED.budget_microcents, budget_period = EXCLUDED.budget_period,
           token_limit = EXCLUDED.token_limit, token_period = EXCLUDED.token_period, rpm = EXCLUDED.rpm,
           tpm = EXCLUDED.tpm, warn_at_pct = EXCLUDED.warn_at_pct, enforcement_mode = EXCLUDED.enforcement_mode,
           timezone = EXCLUDED.timezone, updated_at = pg_catalog.now()
    RETURNING * INTO s;
    RETURN aos_cus.scope_limits_json(s);
END
$$;
COMMENT ON FUNCTION aos_cus.set_scope_limits(uuid, text, jsonb) IS
    'patch the limits of a scope (tenant, integration:<id>, subject:<v>|*, tag:<k>=<v>|*) with set_limits'' keys; returns them';

-- Every scope of a tenant with limits: its scope rows and its integrations' limits.
CREATE FUNCTION aos_cus.scope_limits(tenant_id uuid) RETURNS TABLE (scope text, limits jsonb)
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM aos_cus.assert_tenant(tenant_id);
    RETURN QUERY
        SELECT s.scope, aos_cus.scope_limits_json(s) FROM aos_cus.cus_scope_limits s
         WHERE s.tenant_id OPERATOR(pg_catalog.=) scope_limits.tenant_id
        UNION ALL
        SELECT 'integration:' OPERATOR(pg_catalog.||) i.id::pg_catalog.text, (aos_cus.integration_of(i)).limits
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
    p := aos_cus.parse_scope(scope);
    IF p.kind OPERATOR(pg_catalog.=) 'integration' THEN
        PERFORM aos_cus.set_limits(tenant_id, p.integration_id, '{"budget_microcents": null, "budget_period": null,
            "token_limit": null, "token_period": null, "rpm": null, "tpm": null, "warn_at_pct": null, "mode": null,
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

REVOKE ALL ON FUNCTION aos_cus.parse_scope(text), aos_cus.scope_limits_json(aos_cus.cus_scope_limits),
    aos_cus.set_scope_limits(uuid, text, jsonb), aos_cus.scope_limits(uuid), aos_cus.delete_scope_limits(uuid, text)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION aos_cus.parse_scope(text), aos_cus.scope_limits_json(aos_cus.cus_scope_limits),
    aos_cus.scope_limits(uuid) TO aos_cus_admin, aos_cus_app, aos_cus_reader;
GRANT EXECUTE ON FUNCTION aos_cus.set_scope_limits(uuid, text, jsonb), aos_cus.delete_scope_limits(uuid, text)
    TO aos_cus_admin;

-- Layered budgets (issue 14): the decision names the scope and dimension that decided; explain_check().
ALTER TYPE aos_cus.decision ADD ATTRIBUTE scope text, ADD ATTRIBUTE dimension text;
COMMENT ON TYPE aos_cus.decision IS 'result of check(): allowed, warned or blocked, why, the usage it was decided on, and the scope and dimension that decided';
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
    'the policy when valid (models_allow, models_deny, max_cost_microcents_per_request, max_tokens_per_request, max_concurrent); 22023/22003/54000 naming the field otherwise';

CREATE TABLE aos_cus.cus_policies (
    tenant_id       uuid NOT NULL,
    integration_id  uuid,
    policy          jsonb NOT NULL CHECK (aos_cus.check_policy(policy) IS NOT NULL),
    updated_at      timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE aos_cus.cus_policies IS 'call policies per integration; integration_id NULL is the tenant default';
CREATE UNIQUE INDEX cus_policies_integration_key ON aos_cus.cus_policies (tenant_id, integration_id) WHERE integration_id IS NOT NULL;
CREATE UNIQUE INDEX cus_policies_default_key ON aos_cus.cus_policies (tenant_id) WHERE integration_id IS NULL;
SELECT aos_cus.enable_tenant_rls('aos_cus.cus_policies');
SELECT pg_catalog.pg_extension_config_dump('aos_cus.cus_policies', '');
REVOKE ALL ON aos_cus.cus_policies FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE, DELETE ON aos_cus.cus_policies TO aos_cus_admin;
GRANT SELECT ON aos_cus.cus_policies TO aos_cus_app, aos_cus_reader;

CREATE FUNCTION aos_cus.policies_changed_trigger() RETURNS trigger
    AS 'MODULE_PATHNAME', 'aos_cus_policies_changed_trigger' LANGUAGE C;
COMMENT ON FUNCTION aos_cus.policies_changed_trigger() IS 'marks cached policies stale when the transaction commits';
CREATE TRIGGER enforcement_policies_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON aos_cus.cus_policies
    FOR EACH STATEMENT EXECUTE FUNCTION aos_cus.policies_changed_trigger();
REVOKE ALL ON FUNCTION aos_cus.policies_changed_trigger() FROM PUBLIC;

-- Set (or with NULL remove) the policy of an integration, or with integration_id NULL the tenant default.
CREATE FUNCTION aos_cus.set_policy(tenant_id uuid, integration_id uuid, policy jsonb) RETURNS jsonb
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM aos_cus.assert_tenant(tenant_id);
    IF integration_id IS NOT NULL THEN
        PERFORM aos_cus.integration_for_update(tenant_id, integration_id);
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
ALTER TABLE aos_cus.cus_enforcement_log DROP CONSTRAINT cus_enforcement_log_reason_check,
    ADD CONSTRAINT cus_enforcement_log_reason_check CHECK (reason IN ('integration_not_found', 'integration_disabled',
        'rate_limited', 'budget_exceeded', 'token_limit_exceeded', 'budget_warning', 'token_warning',
        'model_not_allowed', 'request_cost_cap', 'request_token_cap', 'concurrency_limit'));
