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

-- Time partitions (issue 19): cus_llm_usage and cus_ingest_rejects become partitioned by time, (tenant_id,
-- call_id) moves to cus_usage_keys, and the 0.1.0 rows move into the new tables' partitions: kept aside in
-- temporary tables, copied back before any trigger exists (no row is priced, settled or keyed twice), then
-- moved into monthly partitions. usage_history() returns the table's row type: made anew.
DROP FUNCTION aos_cus.usage_history(uuid, uuid, timestamptz, timestamptz, bigint, integer);
CREATE TEMPORARY TABLE usage_0_1 AS SELECT * FROM aos_cus.cus_llm_usage;
CREATE TEMPORARY TABLE rejects_0_1 AS SELECT * FROM aos_cus.cus_ingest_rejects;
ALTER SEQUENCE aos_cus.cus_llm_usage_id_seq OWNED BY NONE;
-- Leaving the extension first takes them off its list of tables whose data pg_dump keeps.
ALTER EXTENSION aos_cus DROP TABLE aos_cus.cus_llm_usage;
ALTER EXTENSION aos_cus DROP TABLE aos_cus.cus_ingest_rejects;
ALTER EXTENSION aos_cus DROP SEQUENCE aos_cus.cus_ingest_rejects_id_seq;
DROP TABLE aos_cus.cus_llm_usage, aos_cus.cus_ingest_rejects;
CREATE TABLE aos_cus.cus_llm_usage (
    tenant_id              uuid NOT NULL,
    id                     bigint NOT NULL DEFAULT pg_catalog.nextval('aos_cus.cus_llm_usage_id_seq'),
    integration_id         uuid NOT NULL,
    call_id                text NOT NULL CHECK (pg_catalog.length(call_id) BETWEEN 1 AND 255),
    provider               aos_cus.provider NOT NULL,
    model                  text NOT NULL CHECK (pg_catalog.length(model) BETWEEN 1 AND 200),
    service_tier           aos_cus.service_tier NOT NULL DEFAULT 'standard',
    input_tokens           aos_cus.token_count NOT NULL DEFAULT 0,
    cache_read_tokens      aos_cus.token_count NOT NULL DEFAULT 0,
    cache_write_tokens     aos_cus.token_count NOT NULL DEFAULT 0,
    cache_write_1h_tokens  aos_cus.token_count NOT NULL DEFAULT 0,
    output_tokens          aos_cus.token_count NOT NULL DEFAULT 0,
    reasoning_tokens       aos_cus.token_count NOT NULL DEFAULT 0,
    input_audio_tokens     aos_cus.token_count NOT NULL DEFAULT 0,
    output_audio_tokens    aos_cus.token_count NOT NULL DEFAULT 0,
    cost_microcents        aos_cus.microcents,
    price_id               bigint,
    latency_ms             integer CHECK (latency_ms >= 0),
    status                 text NOT NULL DEFAULT 'success'
                           CHECK (status IN ('success', 'error', 'timeout', 'cancelled', 'blocked')),
    error_code             text CHECK (pg_catalog.length(error_code) <= 200),
    started_at             timestamptz NOT NULL,
    ingested_at            timestamptz NOT NULL DEFAULT pg_catalog.now(),
    metadata               jsonb NOT NULL DEFAULT '{}'
                           CHECK (pg_catalog.jsonb_typeof(metadata) = 'object' AND pg_catalog.pg_column_size(metadata) <= 16384),
    -- Transaction that inserted the row: rollups fold exactly the rows committed since their last snapshot.
    ingest_xid             xid8 NOT NULL DEFAULT pg_catalog.pg_current_xact_id(),
    FOREIGN KEY (tenant_id, integration_id) REFERENCES aos_cus.cus_integrations (tenant_id, id),
    CHECK (reasoning_tokens <= output_tokens)
) PARTITION BY RANGE (started_at);
-- One bound per count (AOS_TOKEN_COUNT_MAX in src/core/cost.h): no sum over a call's buckets can overflow.
ALTER TABLE aos_cus.cus_llm_usage ADD CONSTRAINT cus_llm_usage_token_counts_bounded
    CHECK (GREATEST(input_tokens, cache_read_tokens, cache_write_tokens, cache_write_1h_tokens, output_tokens,
                    reasoning_tokens, input_audio_tokens, output_audio_tokens) <= 1000000000000);
COMMENT ON TABLE aos_cus.cus_llm_usage IS 'one row per LLM call, idempotent by (tenant_id, call_id), cost in micro-cents; partitioned by started_at';
-- Rows no time partition holds yet; maintain_partitions() moves them into partitions of their own.
CREATE TABLE aos_cus.cus_llm_usage_default PARTITION OF aos_cus.cus_llm_usage DEFAULT;
COMMENT ON TABLE aos_cus.cus_llm_usage_default IS 'usage rows of periods without a partition yet (maintain_partitions() moves them)';
-- Keys and indexes belong to each partition, copied from the default partition's by maintain_partitions():
-- pg_dump can restore the partitions of an extension's table only when the table itself has none.
-- (tenant_id, id) is unique per partition with the partition key; call_id is unique through cus_usage_keys.
ALTER TABLE aos_cus.cus_llm_usage_default ADD PRIMARY KEY (tenant_id, id, started_at);
CREATE INDEX cus_llm_usage_default_integration_time_idx ON aos_cus.cus_llm_usage_default (tenant_id, integration_id, started_at);
CREATE INDEX cus_llm_usage_default_time_idx ON aos_cus.cus_llm_usage_default (tenant_id, started_at);
-- xids grow with insertion order: inserts land on the index's right edge, and a rollup reads only new rows.
CREATE INDEX cus_llm_usage_default_ingest_xid_idx ON aos_cus.cus_llm_usage_default (ingest_xid);

-- Idempotency keys: (tenant_id, call_id) of every usage row started or ingested inside the idempotency window
-- (a table partitioned by time cannot hold that unique key). Kept by the usage table's triggers, which also
-- rebuild it when a dump is restored.
CREATE TABLE aos_cus.cus_usage_keys (
    tenant_id    uuid NOT NULL,
    call_id      text NOT NULL,
    usage_id     bigint NOT NULL,
    started_at   timestamptz NOT NULL,
    ingested_at  timestamptz NOT NULL,
    CONSTRAINT cus_llm_usage_tenant_id_call_id_key PRIMARY KEY (tenant_id, call_id)
);
COMMENT ON TABLE aos_cus.cus_usage_keys IS 'the usage row holding each call_id started or ingested inside the idempotency window';

INSERT INTO aos_cus.cus_llm_usage (tenant_id, id, integration_id, call_id, provider, model, service_tier, input_tokens,
        cache_read_tokens, cache_write_tokens, cache_write_1h_tokens, output_tokens, reasoning_tokens, input_audio_tokens,
        output_audio_tokens, cost_microcents, price_id, latency_ms, status, error_code, started_at, ingested_at, metadata,
        ingest_xid)
SELECT tenant_id, id, integration_id, call_id, provider, model, service_tier, input_tokens, cache_read_tokens,
       cache_write_tokens, cache_write_1h_tokens, output_tokens, reasoning_tokens, input_audio_tokens, output_audio_tokens,
       cost_microcents, price_id, latency_ms, status, error_code, started_at, ingested_at, metadata, ingest_xid
  FROM pg_temp.usage_0_1;
INSERT INTO aos_cus.cus_usage_keys (tenant_id, call_id, usage_id, started_at, ingested_at)
SELECT tenant_id, call_id, id, started_at, ingested_at FROM pg_temp.usage_0_1;
ALTER SEQUENCE aos_cus.cus_llm_usage_id_seq OWNED BY aos_cus.cus_llm_usage.id;
DROP TABLE pg_temp.usage_0_1;
SELECT pg_catalog.pg_extension_config_dump('aos_cus.cus_llm_usage_default', '');
SELECT aos_cus.enable_tenant_rls('aos_cus.cus_llm_usage');
GRANT SELECT, INSERT, UPDATE, DELETE ON aos_cus.cus_llm_usage TO aos_cus_admin;
GRANT SELECT ON aos_cus.cus_llm_usage TO aos_cus_app, aos_cus_reader, aos_cus_worker;
GRANT INSERT (tenant_id, integration_id, call_id, provider, model, service_tier, input_tokens, cache_read_tokens,
              cache_write_tokens, cache_write_1h_tokens, output_tokens, reasoning_tokens, input_audio_tokens,
              output_audio_tokens, latency_ms, status, error_code, started_at, metadata)
    ON aos_cus.cus_llm_usage TO aos_cus_app;
REVOKE ALL ON aos_cus.cus_llm_usage_default, aos_cus.cus_usage_keys FROM PUBLIC;
-- Partitions and idempotency keys are reached through cus_llm_usage alone (its row-level security): row-level
-- security without a policy refuses every row to anyone but their owner.
REVOKE ALL ON aos_cus.cus_llm_usage_default, aos_cus.cus_usage_keys FROM aos_cus_admin;
ALTER TABLE aos_cus.cus_llm_usage_default ENABLE ROW LEVEL SECURITY;
ALTER TABLE aos_cus.cus_usage_keys ENABLE ROW LEVEL SECURITY;
CREATE TRIGGER cus_llm_usage_price BEFORE INSERT OR UPDATE OF cost_microcents, price_id ON aos_cus.cus_llm_usage
    FOR EACH ROW WHEN (NEW.cost_microcents IS NULL) EXECUTE FUNCTION aos_cus.usage_price_trigger();
CREATE TRIGGER enforcement_settle AFTER INSERT OR UPDATE OF cost_microcents ON aos_cus.cus_llm_usage
    FOR EACH ROW EXECUTE FUNCTION aos_cus.usage_settle_trigger();
-- Idempotency: each inserted row claims its (tenant_id, call_id) in cus_usage_keys (a duplicate raises 23505,
-- or, inside ingest_usage(), is skipped and reported as duplicate); a deleted row frees its key.
CREATE FUNCTION aos_cus.usage_key_trigger() RETURNS trigger
    AS 'MODULE_PATHNAME', 'aos_cus_usage_key_trigger'
    LANGUAGE C;
COMMENT ON FUNCTION aos_cus.usage_key_trigger() IS
    'keeps cus_usage_keys: claims a usage row''s call_id on insert, frees it on delete or truncate';
REVOKE ALL ON FUNCTION aos_cus.usage_key_trigger() FROM PUBLIC;
CREATE TRIGGER cus_llm_usage_key BEFORE INSERT ON aos_cus.cus_llm_usage
    FOR EACH ROW EXECUTE FUNCTION aos_cus.usage_key_trigger();
CREATE TRIGGER cus_llm_usage_key_free AFTER DELETE ON aos_cus.cus_llm_usage
    FOR EACH ROW EXECUTE FUNCTION aos_cus.usage_key_trigger();
CREATE TRIGGER cus_llm_usage_key_truncate AFTER TRUNCATE ON aos_cus.cus_llm_usage
    FOR EACH STATEMENT EXECUTE FUNCTION aos_cus.usage_key_trigger();

CREATE TABLE aos_cus.cus_ingest_rejects (
    tenant_id      uuid NOT NULL,
    id             bigint GENERATED BY DEFAULT AS IDENTITY,
    rejected_at    timestamptz NOT NULL DEFAULT pg_catalog.now(),
    ord            integer NOT NULL CHECK (ord > 0),
    call_id        text,
    reason         text NOT NULL,
    sqlstate       text NOT NULL CHECK (pg_catalog.length(sqlstate) = 5),
    payload        text NOT NULL CHECK (pg_catalog.octet_length(payload) <= 65536),
    payload_bytes  integer NOT NULL CHECK (payload_bytes >= 0)
) PARTITION BY RANGE (rejected_at);
COMMENT ON TABLE aos_cus.cus_ingest_rejects IS 'usage records refused by ingest_usage_batch(), with raw payload and reason; partitioned by rejected_at';
CREATE TABLE aos_cus.cus_ingest_rejects_default PARTITION OF aos_cus.cus_ingest_rejects DEFAULT;
COMMENT ON TABLE aos_cus.cus_ingest_rejects_default IS 'rejects of periods without a partition yet (maintain_partitions() moves them)';
-- Each partition's own key and index, as cus_llm_usage's.
ALTER TABLE aos_cus.cus_ingest_rejects_default ADD PRIMARY KEY (tenant_id, id, rejected_at);
CREATE INDEX cus_ingest_rejects_default_time_idx ON aos_cus.cus_ingest_rejects_default (rejected_at);
SELECT aos_cus.enable_tenant_rls('aos_cus.cus_ingest_rejects');
SELECT pg_catalog.pg_extension_config_dump('aos_cus.cus_ingest_rejects_default', '');
SELECT pg_catalog.pg_extension_config_dump('aos_cus.cus_ingest_rejects_id_seq', '');
REVOKE ALL ON aos_cus.cus_ingest_rejects, aos_cus.cus_ingest_rejects_default FROM PUBLIC;
REVOKE ALL ON aos_cus.cus_ingest_rejects_default FROM aos_cus_admin;
ALTER TABLE aos_cus.cus_ingest_rejects_default ENABLE ROW LEVEL SECURITY;
INSERT INTO aos_cus.cus_ingest_rejects (tenant_id, id, rejected_at, ord, call_id, reason, sqlstate, payload, payload_bytes)
SELECT tenant_id, id, rejected_at, ord, call_id, reason, sqlstate, payload, payload_bytes FROM pg_temp.rejects_0_1;
SELECT pg_catalog.setval('aos_cus.cus_ingest_rejects_id_seq', coalesce((SELECT max(id) FROM pg_temp.rejects_0_1), 0) + 1, false);
DROP TABLE pg_temp.rejects_0_1;
GRANT SELECT, DELETE ON aos_cus.cus_ingest_rejects TO aos_cus_admin;
GRANT SELECT ON aos_cus.cus_ingest_rejects TO aos_cus_app, aos_cus_reader;
CREATE FUNCTION aos_cus.usage_history(tenant_id uuid, integration_id uuid DEFAULT NULL,
                                      from_ts timestamptz DEFAULT pg_catalog.now() - interval '30 days',
                                      to_ts timestamptz DEFAULT pg_catalog.now(),
                                      after_id bigint DEFAULT NULL, page_size integer DEFAULT 100)
    RETURNS SETOF aos_cus.cus_llm_usage
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF tenant_id IS NULL OR from_ts IS NULL OR to_ts IS NULL OR page_size IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = '22004', MESSAGE = 'tenant_id, from_ts, to_ts and page_size must not be null';
    END IF;
    IF page_size < 1 OR page_size > 1000 THEN
        RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = pg_catalog.format('page_size %s is not between 1 and 1000', page_size);
    END IF;
    IF from_ts > to_ts THEN
        RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = pg_catalog.format('from_ts %s is after to_ts %s', from_ts, to_ts);
    END IF;
    PERFORM aos_cus.assert_tenant(tenant_id);
    -- Newest first; the next page passes the last id of this one as after_id.
    RETURN QUERY
    SELECT u.* FROM aos_cus.cus_llm_usage u
     WHERE u.tenant_id = usage_history.tenant_id
       AND (usage_history.integration_id IS NULL OR u.integration_id = usage_history.integration_id)
       AND u.started_at >= from_ts AND u.started_at < to_ts
       AND (after_id IS NULL OR u.id < after_id)
     ORDER BY u.id DESC
     LIMIT page_size;
END
$$;
COMMENT ON FUNCTION aos_cus.usage_history(uuid, uuid, timestamptz, timestamptz, bigint, integer) IS
    'usage rows of a tenant, newest first, keyset-paginated by after_id (the last id of the previous page)';

REVOKE ALL ON FUNCTION aos_cus.usage_history(uuid, uuid, timestamptz, timestamptz, bigint, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION aos_cus.usage_history(uuid, uuid, timestamptz, timestamptz, bigint, integer)
    TO aos_cus_admin, aos_cus_app, aos_cus_reader;
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
    PERFORM aos_cus.maintain_partitions();
    RETURN folded;
END
$$;
COMMENT ON FUNCTION aos_cus.rollup_usage() IS
    'folds usage rows committed since the last rollup into cus_usage_daily, then maintain_partitions(); returns how many; safe to run concurrently';

-- Windows and layout; no row means the defaults of usage_settings() (a row is user data, kept by pg_dump).
CREATE TABLE aos_cus.cus_usage_settings (
    id                  boolean PRIMARY KEY DEFAULT true CHECK (id),
    partition_interval  interval NOT NULL CHECK (partition_interval IN ('1 day', '7 days', '1 mon', '3 mons', '1 year')),
    idempotency_window  interval NOT NULL CHECK (idempotency_window >= interval '1 day'),
    raw_retention       interval CHECK (raw_retention >= interval '1 day'),
    rejects_retention   interval CHECK (rejects_retention >= interval '1 day'),
    hourly_retention    interval NOT NULL CHECK (hourly_retention >= interval '1 day'),
    updated_at          timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE aos_cus.cus_usage_settings IS 'partition interval, idempotency window and retention (set_partitioning(), set_retention())';
REVOKE ALL ON aos_cus.cus_usage_settings FROM aos_cus_admin;
GRANT SELECT ON aos_cus.cus_usage_settings TO aos_cus_operator;
SELECT pg_catalog.pg_extension_config_dump('aos_cus.cus_usage_settings', '');

CREATE FUNCTION aos_cus.usage_settings(OUT partition_interval interval, OUT idempotency_window interval,
                                       OUT raw_retention interval, OUT rejects_retention interval,
                                       OUT hourly_retention interval)
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT coalesce(s.partition_interval, interval '1 month'), coalesce(s.idempotency_window, interval '35 days'),
           s.raw_retention, CASE WHEN s.id IS NULL THEN interval '30 days' ELSE s.rejects_retention END,
           coalesce(s.hourly_retention, interval '35 days')
      FROM (SELECT) d LEFT JOIN aos_cus.cus_usage_settings s ON true
$$;
COMMENT ON FUNCTION aos_cus.usage_settings() IS
    'settings in force: partition interval (1 month), idempotency window (35 days), raw and rejects retention (forever, 30 days), hourly retention (35 days)';

-- Internal: the bounds of every time partition of tbl (not the default one), in order.
CREATE FUNCTION aos_cus.partition_bounds(tbl regclass, OUT part regclass, OUT lower timestamptz, OUT upper timestamptz)
    RETURNS SETOF record LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT c.oid::regclass, b[1]::timestamptz, b[2]::timestamptz
      FROM pg_catalog.pg_inherits i
      JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) i.inhrelid,
           LATERAL pg_catalog.regexp_match(pg_catalog.pg_get_expr(c.relpartbound, c.oid),
                                           $r$FROM \('([^']+)'\) TO \('([^']+)'\)$r$) b
     WHERE i.inhparent OPERATOR(pg_catalog.=) tbl AND b IS NOT NULL
     ORDER BY 2
$$;
COMMENT ON FUNCTION aos_cus.partition_bounds(regclass) IS 'internal: each time partition of tbl with its [lower, upper) bounds';
REVOKE ALL ON FUNCTION aos_cus.partition_bounds(regclass) FROM PUBLIC;

-- Internal: the start of the partition period holding ts (UTC days, ISO weeks, months, quarters, years).
CREATE FUNCTION aos_cus.partition_start(ts timestamptz, step interval) RETURNS timestamptz
    LANGUAGE sql IMMUTABLE STRICT SET search_path = pg_catalog, pg_temp
    RETURN pg_catalog.date_trunc(CASE step WHEN interval '1 day' THEN 'day' WHEN interval '7 days' THEN 'week'
                                          WHEN interval '1 month' THEN 'month' WHEN interval '3 months' THEN 'quarter'
                                          ELSE 'year' END, ts, 'UTC');
COMMENT ON FUNCTION aos_cus.partition_start(timestamptz, interval) IS 'internal: start of the partition period holding ts';
REVOKE ALL ON FUNCTION aos_cus.partition_start(timestamptz, interval) FROM PUBLIC;

-- Internal: a new partition [lower, upper) of tbl holding the default partition's rows of that range, built with
-- the default partition's keys and indexes and attached (the parent's triggers and foreign key are cloned). The
-- default partition is detached meanwhile (moving its rows fires no trigger); inserts wait for the commit.
CREATE FUNCTION aos_cus.add_partition(tbl regclass, lower timestamptz, upper timestamptz) RETURNS regclass
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    rel name := (SELECT c.relname FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) tbl);
    col name := CASE rel WHEN 'cus_llm_usage' THEN 'started_at' ELSE 'rejected_at' END;
    name text := rel || '_p' || pg_catalog.to_char(lower AT TIME ZONE 'UTC', 'YYYYMMDD');
    def text := pg_catalog.format('aos_cus.%I', rel || '_default');
    part text := pg_catalog.format('aos_cus.%I', name);
BEGIN
    EXECUTE pg_catalog.format('ALTER TABLE %s DETACH PARTITION %s', tbl, def);
    EXECUTE pg_catalog.format('CREATE TABLE %s (LIKE %s INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING INDEXES)', part, def);
    EXECUTE pg_catalog.format('WITH m AS (DELETE FROM %s WHERE %I OPERATOR(pg_catalog.>=) $1 AND %I OPERATOR(pg_catalog.<) $2 RETURNING *) '
                              'INSERT INTO %s SELECT * FROM m', def, col, col, part) USING lower, upper;
    EXECUTE pg_catalog.format('ALTER TABLE %s ATTACH PARTITION %s FOR VALUES FROM (%L) TO (%L)', tbl, part, lower, upper);
    EXECUTE pg_catalog.format('ALTER TABLE %s ATTACH PARTITION %s DEFAULT', tbl, def);
    -- Reached through the parent only: no grant, and row-level security without a policy.
    EXECUTE pg_catalog.format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', part);
    EXECUTE pg_catalog.format('COMMENT ON TABLE %s IS %L', part,
                              pg_catalog.format('%s rows with %s in [%s, %s)', rel, col, lower, upper));
    -- Made by ALTER EXTENSION UPDATE, it would be a member of the extension: partitions are data.
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
                  AND d.objid OPERATOR(pg_catalog.=) part::pg_catalog.regclass AND d.deptype OPERATOR(pg_catalog.=) 'e') THEN
        EXECUTE pg_catalog.format('ALTER EXTENSION aos_cus DROP TABLE %s', part);
    END IF;
    RETURN part::pg_catalog.regclass;
END
$$;
COMMENT ON FUNCTION aos_cus.add_partition(regclass, timestamptz, timestamptz) IS
    'internal to maintain_partitions(): a new time partition holding the default partition''s rows of its range';
REVOKE ALL ON FUNCTION aos_cus.add_partition(regclass, timestamptz, timestamptz) FROM PUBLIC;

-- Internal: partitions of tbl ahead of now, the default partition's rows in their own, past retention dropped.
CREATE FUNCTION aos_cus.maintain_table(tbl regclass, step interval, retention interval)
    RETURNS TABLE (action text, partition_name text)
    -- Bounds are UTC months (a month added in another zone ends elsewhere), written and read back as ISO text.
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET TimeZone = 'UTC' SET DateStyle = 'ISO, YMD' AS $$
DECLARE
    rel name := (SELECT c.relname FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) tbl);
    col name := CASE rel WHEN 'cus_llm_usage' THEN 'started_at' ELSE 'rejected_at' END;
    def text := pg_catalog.format('aos_cus.%I', rel || '_default');
    ahead timestamptz := pg_catalog.now() + step + interval '1 day';
    r timestamptz;
    lo timestamptz;
    hi timestamptz;
    st pg_snapshot;
    unfolded boolean;
    p record;
BEGIN
    -- Ahead: contiguous from the last partition (or the current period) to past now + one period.
    LOOP
        lo := GREATEST((SELECT max(b.upper) FROM aos_cus.partition_bounds(tbl) b),
                       aos_cus.partition_start(pg_catalog.now(), step));
        EXIT WHEN lo > ahead;
        action := 'created';
        partition_name := aos_cus.add_partition(tbl, lo, aos_cus.partition_start(lo, step) + step)::text;
        RETURN NEXT;
    END LOOP;
    -- Rows in the default partition: each in the gap between partitions that holds it, cut to its period.
    LOOP
        EXECUTE pg_catalog.format('SELECT min(%I) FROM %s', col, def) INTO r;
        EXIT WHEN r IS NULL;
        lo := GREATEST(aos_cus.partition_start(r, step),
                       (SELECT max(b.upper) FROM aos_cus.partition_bounds(tbl) b WHERE b.upper OPERATOR(pg_catalog.<=) r));
        hi := LEAST(aos_cus.partition_start(r, step) + step,
                    (SELECT min(b.lower) FROM aos_cus.partition_bounds(tbl) b WHERE b.lower OPERATOR(pg_catalog.>) r));
        action := 'moved';
        partition_name := aos_cus.add_partition(tbl, lo, hi)::text;
        RETURN NEXT;
    END LOOP;
    IF retention IS NULL THEN
        RETURN;
    END IF;
    -- Retention: whole partitions ending before now - retention; usage only once every row is rolled up.
    st := (SELECT s.last_snapshot FROM aos_cus.cus_rollup_state s);
    FOR p IN SELECT * FROM aos_cus.partition_bounds(tbl) b WHERE b.upper OPERATOR(pg_catalog.<=) pg_catalog.now() - retention LOOP
        EXECUTE pg_catalog.format('LOCK TABLE %s IN ACCESS EXCLUSIVE MODE', p.part);
        IF rel OPERATOR(pg_catalog.=) 'cus_llm_usage' THEN
            EXECUTE pg_catalog.format('SELECT EXISTS (SELECT 1 FROM %s WHERE ingest_xid OPERATOR(pg_catalog.>=) pg_catalog.pg_snapshot_xmin($1) '
                                      'AND NOT pg_catalog.pg_visible_in_snapshot(ingest_xid, $1))', p.part) INTO unfolded USING st;
            CONTINUE WHEN unfolded;
            DELETE FROM aos_cus.cus_usage_keys k
             WHERE k.started_at OPERATOR(pg_catalog.>=) p.lower AND k.started_at OPERATOR(pg_catalog.<) p.upper;
        END IF;
        action := 'dropped';
        partition_name := p.part::text;
        EXECUTE pg_catalog.format('ALTER TABLE %s DETACH PARTITION %s', tbl, p.part);
        EXECUTE pg_catalog.format('DROP TABLE %s', p.part);
        RETURN NEXT;
    END LOOP;
END
$$;
COMMENT ON FUNCTION aos_cus.maintain_table(regclass, interval, interval) IS 'internal to maintain_partitions(): one partitioned table';
REVOKE ALL ON FUNCTION aos_cus.maintain_table(regclass, interval, interval) FROM PUBLIC;

CREATE FUNCTION aos_cus.maintain_partitions() RETURNS TABLE (table_name text, action text, partition_name text)
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    cfg record := aos_cus.usage_settings();
BEGIN
    PERFORM aos_cus.assert_platform('maintain_partitions()');
    RETURN QUERY SELECT 'cus_llm_usage', m.action, m.partition_name
                   FROM aos_cus.maintain_table('aos_cus.cus_llm_usage', cfg.partition_interval, cfg.raw_retention) m;
    RETURN QUERY SELECT 'cus_ingest_rejects', m.action, m.partition_name
                   FROM aos_cus.maintain_table('aos_cus.cus_ingest_rejects', cfg.partition_interval, cfg.rejects_retention) m;
    DELETE FROM aos_cus.cus_usage_hourly h WHERE h.hour OPERATOR(pg_catalog.<) pg_catalog.now() - cfg.hourly_retention;
    -- A key lives while its row started, or was ingested, inside the window.
    DELETE FROM aos_cus.cus_usage_keys k WHERE k.started_at OPERATOR(pg_catalog.<) pg_catalog.now() - cfg.idempotency_window
                                           AND k.ingested_at OPERATOR(pg_catalog.<) pg_catalog.now() - cfg.idempotency_window;
END
$$;
COMMENT ON FUNCTION aos_cus.maintain_partitions() IS
    'creates time partitions ahead, moves default-partition rows into their own, drops partitions past retention, prunes hourly rollups and idempotency keys; rollup_usage() runs it';

-- Internal: the settings row, made from the defaults when missing, for an update.
CREATE FUNCTION aos_cus.lock_usage_settings() RETURNS void
    LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    INSERT INTO aos_cus.cus_usage_settings (partition_interval, idempotency_window, raw_retention, rejects_retention, hourly_retention)
    SELECT s.partition_interval, s.idempotency_window, s.raw_retention, s.rejects_retention, s.hourly_retention
      FROM aos_cus.usage_settings() s
    ON CONFLICT (id) DO UPDATE SET updated_at = pg_catalog.now()
$$;
COMMENT ON FUNCTION aos_cus.lock_usage_settings() IS 'internal: makes and locks the settings row';
REVOKE ALL ON FUNCTION aos_cus.lock_usage_settings() FROM PUBLIC;

CREATE FUNCTION aos_cus.set_retention(raw interval, rejects interval) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM aos_cus.assert_platform('set_retention()');
    IF raw < interval '1 day' OR rejects < interval '1 day' THEN
        RAISE EXCEPTION USING ERRCODE = '22023',
            MESSAGE = pg_catalog.format('retention raw %s, rejects %s: each must be NULL (forever) or at least 1 day',
                                        coalesce(raw::text, 'NULL'), coalesce(rejects::text, 'NULL'));
    END IF;
    PERFORM aos_cus.lock_usage_settings();
    UPDATE aos_cus.cus_usage_settings SET raw_retention = raw, rejects_retention = rejects;
END
$$;
COMMENT ON FUNCTION aos_cus.set_retention(interval, interval) IS
    'keeps raw usage rows and ingest rejects this long (NULL: forever); maintain_partitions() drops whole partitions past it';

CREATE FUNCTION aos_cus.set_partitioning(partition_interval interval DEFAULT NULL, idempotency_window interval DEFAULT NULL,
                                         hourly_retention interval DEFAULT NULL) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM aos_cus.assert_platform('set_partitioning()');
    IF partition_interval NOT IN (interval '1 day', interval '7 days', interval '1 month', interval '3 months', interval '1 year') THEN
        RAISE EXCEPTION USING ERRCODE = '22023',
            MESSAGE = pg_catalog.format('partition_interval %s is not one of 1 day, 7 days, 1 month, 3 months, 1 year', partition_interval);
    END IF;
    IF idempotency_window < interval '1 day' OR hourly_retention < interval '1 day' THEN
        RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = pg_catalog.format(
            'idempotency_window %s, hourly_retention %s: each must be at least 1 day', idempotency_window, hourly_retention);
    END IF;
    PERFORM aos_cus.lock_usage_settings();
    UPDATE aos_cus.cus_usage_settings s
       SET partition_interval = coalesce(set_partitioning.partition_interval, s.partition_interval),
           idempotency_window = coalesce(set_partitioning.idempotency_window, s.idempotency_window),
           hourly_retention = coalesce(set_partitioning.hourly_retention, s.hourly_retention);
END
$$;
COMMENT ON FUNCTION aos_cus.set_partitioning(interval, interval, interval) IS
    'partition interval of new partitions, idempotency window and hourly rollup retention (NULL keeps the current value)';

REVOKE ALL ON FUNCTION aos_cus.usage_settings(), aos_cus.maintain_partitions(), aos_cus.set_retention(interval, interval),
    aos_cus.set_partitioning(interval, interval, interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION aos_cus.usage_settings(), aos_cus.maintain_partitions(), aos_cus.set_retention(interval, interval),
    aos_cus.set_partitioning(interval, interval, interval) TO aos_cus_operator;
-- The 0.1.0 rows, now in the default partitions, move into monthly partitions of their own.
SELECT count(*) FROM aos_cus.maintain_table('aos_cus.cus_llm_usage', interval '1 month', NULL);
SELECT count(*) FROM aos_cus.maintain_table('aos_cus.cus_ingest_rejects', interval '1 month', NULL);

-- Hourly rollups (issue 19): cus_usage_hourly beside cus_usage_daily, folded by the same rollups, kept for the hourly
-- retention; the hours inside it are rebuilt from the usage rows the daily rollups already hold.
-- Hourly aggregates, as the daily ones but per UTC hour (its start), kept for the hourly retention (35 days).
CREATE TABLE aos_cus.cus_usage_hourly (
    tenant_id              uuid NOT NULL,
    integration_id         uuid NOT NULL,
    hour                   timestamptz NOT NULL,
    provider               aos_cus.provider NOT NULL,
    model                  text NOT NULL,
    requests               bigint NOT NULL DEFAULT 0 CHECK (requests >= 0),
    errors                 bigint NOT NULL DEFAULT 0 CHECK (errors >= 0),
    input_tokens           aos_cus.token_count NOT NULL DEFAULT 0,
    cache_read_tokens      aos_cus.token_count NOT NULL DEFAULT 0,
    cache_write_tokens     aos_cus.token_count NOT NULL DEFAULT 0,
    cache_write_1h_tokens  aos_cus.token_count NOT NULL DEFAULT 0,
    output_tokens          aos_cus.token_count NOT NULL DEFAULT 0,
    reasoning_tokens       aos_cus.token_count NOT NULL DEFAULT 0,
    input_audio_tokens     aos_cus.token_count NOT NULL DEFAULT 0,
    output_audio_tokens    aos_cus.token_count NOT NULL DEFAULT 0,
    cost_microcents        aos_cus.microcents NOT NULL DEFAULT 0,
    unpriced_requests      bigint NOT NULL DEFAULT 0 CHECK (unpriced_requests >= 0),
    latency_sum_ms         bigint NOT NULL DEFAULT 0 CHECK (latency_sum_ms >= 0),
    latency_max_ms         integer NOT NULL DEFAULT 0 CHECK (latency_max_ms >= 0),
    updated_at             timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (tenant_id, integration_id, hour, provider, model),
    -- A short-lived derivative of the usage rows: it goes with its integration.
    FOREIGN KEY (tenant_id, integration_id) REFERENCES aos_cus.cus_integrations (tenant_id, id) ON DELETE CASCADE
);
COMMENT ON TABLE aos_cus.cus_usage_hourly IS 'hourly usage aggregates (UTC hours) maintained by rollup_usage(), kept for the hourly retention';

SELECT pg_catalog.pg_extension_config_dump('aos_cus.cus_usage_hourly', '');
SELECT aos_cus.enable_tenant_rls('aos_cus.cus_usage_hourly');
REVOKE ALL ON aos_cus.cus_usage_hourly FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE, DELETE ON aos_cus.cus_usage_hourly TO aos_cus_admin;
GRANT SELECT ON aos_cus.cus_usage_hourly TO aos_cus_app, aos_cus_reader, aos_cus_worker;
CREATE OR REPLACE FUNCTION aos_cus.fold_usage(filter text, a pg_snapshot, b pg_snapshot, from_day date, to_day date)
    RETURNS bigint LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    -- Adds the groups of a CTE to an aggregate table keyed by its period column (%1$I table, %2$I column, %3$s CTE).
    upsert constant text := $u$
            INSERT INTO aos_cus.%1$I AS d
                   (tenant_id, integration_id, %2$I, provider, model, requests, errors, input_tokens,
                    cache_read_tokens, cache_write_tokens, cache_write_1h_tokens, output_tokens, reasoning_tokens,
                    input_audio_tokens, output_audio_tokens, cost_microcents, unpriced_requests, latency_sum_ms,
                    latency_max_ms)
            SELECT * FROM %3$s
            ON CONFLICT (tenant_id, integration_id, %2$I, provider, model) DO UPDATE SET
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
                updated_at = pg_catalog.now()$u$;
    -- Hours before the hourly retention are not kept (maintain_partitions() prunes them).
    hourly_from timestamptz := pg_catalog.now() - (SELECT s.hourly_retention FROM aos_cus.usage_settings() s);
    folded bigint;
BEGIN
    -- Rows grouped by UTC hour; the days are sums of their hours (sums of non-negative counts saturate alike).
    EXECUTE pg_catalog.format($q$
        WITH h AS (
            SELECT tenant_id, integration_id, pg_catalog.date_trunc('hour', started_at, 'UTC') AS hour, provider, model,
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
             WHERE %1$s
             GROUP BY 1, 2, 3, 4, 5),
        kept AS (SELECT * FROM h WHERE hour >= $5),
        g AS (
            SELECT tenant_id, integration_id, (hour AT TIME ZONE 'UTC')::date AS day, provider, model,
                   sum(requests)::bigint AS requests, sum(errors)::bigint AS errors,
                   aos_cus.saturate(sum(input_tokens)) AS input_tokens,
                   aos_cus.saturate(sum(cache_read_tokens)) AS cache_read_tokens,
                   aos_cus.saturate(sum(cache_write_tokens)) AS cache_write_tokens,
                   aos_cus.saturate(sum(cache_write_1h_tokens)) AS cache_write_1h_tokens,
                   aos_cus.saturate(sum(output_tokens)) AS output_tokens,
                   aos_cus.saturate(sum(reasoning_tokens)) AS reasoning_tokens,
                   aos_cus.saturate(sum(input_audio_tokens)) AS input_audio_tokens,
                   aos_cus.saturate(sum(output_audio_tokens)) AS output_audio_tokens,
                   aos_cus.saturate(sum(cost_microcents)) AS cost_microcents,
                   sum(unpriced_requests)::bigint AS unpriced_requests,
                   aos_cus.saturate(sum(latency_sum_ms)) AS latency_sum_ms,
                   max(latency_max_ms) AS latency_max_ms
              FROM h
             GROUP BY 1, 2, 3, 4, 5),
        ins_hourly AS (%2$s),
        ins_daily AS (%3$s)
        SELECT coalesce(sum(requests), 0)::bigint FROM g$q$, filter,
        pg_catalog.format(upsert, 'cus_usage_hourly', 'hour', 'kept'), pg_catalog.format(upsert, 'cus_usage_daily', 'day', 'g'))
    INTO folded USING a, b, from_day, to_day, hourly_from;
    RETURN folded;
END
$$;
COMMENT ON FUNCTION aos_cus.fold_usage(text, pg_snapshot, pg_snapshot, date, date) IS
    'internal to rollup_usage() and rebuild_daily(): adds the usage rows a fixed filter selects to cus_usage_daily and cus_usage_hourly';
REVOKE ALL ON FUNCTION aos_cus.fold_usage(text, pg_snapshot, pg_snapshot, date, date) FROM PUBLIC;

CREATE OR REPLACE FUNCTION aos_cus.lock_rollup_state(OUT last_snapshot pg_snapshot, OUT rebuilt bigint)
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    recorded_system bigint;
    this_system bigint := (SELECT system_identifier FROM pg_catalog.pg_control_system());
    s pg_snapshot;
BEGIN
    SELECT r.last_snapshot, r.system_id INTO last_snapshot, recorded_system
      FROM aos_cus.cus_rollup_state r FOR UPDATE;
    IF recorded_system IS NOT DISTINCT FROM this_system THEN
        RETURN;
    END IF;
    s := aos_cus.rollup_snapshot();
    -- Ids from another cluster mean nothing here: mark every row we can see as folded ("frozen" xid 2).
    UPDATE aos_cus.cus_llm_usage SET ingest_xid = '2' WHERE ingest_xid >= pg_catalog.pg_snapshot_xmin(s);
    DELETE FROM aos_cus.cus_usage_daily;
    DELETE FROM aos_cus.cus_usage_hourly;
    rebuilt := aos_cus.fold_usage('pg_catalog.pg_visible_in_snapshot(ingest_xid, $2)', NULL, s, NULL, NULL);
    UPDATE aos_cus.cus_rollup_state SET last_snapshot = s, system_id = this_system, last_rollup_at = pg_catalog.now();
    last_snapshot := s;
END
$$;
COMMENT ON FUNCTION aos_cus.lock_rollup_state() IS
    'internal: locks cus_rollup_state; rebuilds every aggregate when the cluster changed (restore) or on first use';
REVOKE ALL ON FUNCTION aos_cus.lock_rollup_state() FROM PUBLIC;

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
    DELETE FROM aos_cus.cus_usage_hourly
     WHERE hour >= (from_day::timestamp AT TIME ZONE 'UTC') AND hour < ((to_day + 1)::timestamp AT TIME ZONE 'UTC');
    RETURN aos_cus.fold_usage(
        'started_at >= ($3::timestamp AT TIME ZONE ''UTC'') AND started_at < (($4 + 1)::timestamp AT TIME ZONE ''UTC'')'
        ' AND pg_catalog.pg_visible_in_snapshot(ingest_xid, $1)', st.last_snapshot, NULL, from_day, to_day);
END
$$;
COMMENT ON FUNCTION aos_cus.rebuild_daily(date, date) IS
    'recomputes cus_usage_daily and cus_usage_hourly exactly for the UTC days from_day..to_day; returns the usage rows counted';

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
        RETURNING u.tenant_id, u.integration_id, pg_catalog.date_trunc('hour', u.started_at, 'UTC') AS hour, u.provider,
                  u.model, u.ingest_xid, old.cost_microcents AS old_cost, u.cost_microcents AS new_cost),
    delta_hourly AS (
        SELECT tenant_id, integration_id, hour, provider, model,
               sum(coalesce(new_cost, 0) - coalesce(old_cost, 0)) AS cost,
               sum((new_cost IS NULL)::int - (old_cost IS NULL)::int) AS unpriced
          FROM upd
         WHERE pg_catalog.pg_visible_in_snapshot(ingest_xid, st.last_snapshot)
         GROUP BY 1, 2, 3, 4, 5),
    delta AS (
        SELECT tenant_id, integration_id, (hour AT TIME ZONE 'UTC')::date AS day, provider, model,
               sum(cost) AS cost, sum(unpriced) AS unpriced
          FROM delta_hourly
         GROUP BY 1, 2, 3, 4, 5),
    adjusted_hourly AS (
        UPDATE aos_cus.cus_usage_hourly h
           SET cost_microcents = h.cost_microcents + delta_hourly.cost,
               unpriced_requests = h.unpriced_requests + delta_hourly.unpriced, updated_at = pg_catalog.now()
          FROM delta_hourly
         WHERE h.tenant_id = delta_hourly.tenant_id AND h.integration_id = delta_hourly.integration_id
           AND h.hour = delta_hourly.hour AND h.provider = delta_hourly.provider AND h.model = delta_hourly.model
        RETURNING 1),
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
COMMENT ON FUNCTION aos_cus.reprice_usage(timestamptz, timestamptz, boolean) IS
    'prices again the usage rows started in [from_ts, to_ts) (only unpriced ones by default); aggregates follow; returns rows whose cost changed';

CREATE FUNCTION aos_cus.hourly_aggregates(tenant_id uuid, integration_id uuid DEFAULT NULL,
                                          from_ts timestamptz DEFAULT pg_catalog.now() - interval '1 day',
                                          to_ts timestamptz DEFAULT pg_catalog.now())
    RETURNS SETOF aos_cus.cus_usage_hourly
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF tenant_id IS NULL OR from_ts IS NULL OR to_ts IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = '22004', MESSAGE = 'tenant_id, from_ts and to_ts must not be null';
    END IF;
    IF from_ts > to_ts THEN
        RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = pg_catalog.format('from_ts %s is after to_ts %s', from_ts, to_ts);
    END IF;
    PERFORM aos_cus.assert_tenant(tenant_id);
    RETURN QUERY
    SELECT h.* FROM aos_cus.cus_usage_hourly h
     WHERE h.tenant_id = hourly_aggregates.tenant_id
       AND (hourly_aggregates.integration_id IS NULL OR h.integration_id = hourly_aggregates.integration_id)
       AND h.hour >= pg_catalog.date_trunc('hour', from_ts, 'UTC') AND h.hour < to_ts
     ORDER BY h.hour, h.integration_id, h.provider, h.model;
END
$$;
COMMENT ON FUNCTION aos_cus.hourly_aggregates(uuid, uuid, timestamptz, timestamptz) IS
    'rolled-up hourly rows (UTC hours overlapping [from_ts, to_ts), inside the hourly retention) as of the last rollup_usage()';

REVOKE ALL ON FUNCTION aos_cus.hourly_aggregates(uuid, uuid, timestamptz, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION aos_cus.hourly_aggregates(uuid, uuid, timestamptz, timestamptz) TO aos_cus_admin, aos_cus_app, aos_cus_reader;
SELECT aos_cus.rebuild_daily(((pg_catalog.now() - interval '35 days') AT TIME ZONE 'UTC')::date, (pg_catalog.now() AT TIME ZONE 'UTC')::date + 1);
