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

-- Price catalogue (issue 16): genai-prices (data/genai-prices, MIT) adds Azure OpenAI, AWS Bedrock and Mistral
-- models and the models Langfuse lacks, with dated prices, prompt-size tiers and context windows; its seed rows
-- (source 'genai-prices: ...') are the extension's, like the Langfuse rows: not dumped, not writable by set_price.
SELECT pg_catalog.pg_extension_config_dump('aos_cus.cus_model_prices',
    $$WHERE source NOT LIKE 'langfuse: %' AND source NOT LIKE 'genai-prices: %'$$);
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
    IF set_price.source LIKE 'langfuse: %' OR set_price.source LIKE 'genai-prices: %' THEN
        RAISE EXCEPTION USING ERRCODE = '22023',
            MESSAGE = 'source must not start with "langfuse: " or "genai-prices: " (reserved for the seed)';
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
-- The caller's provider first: its own prices (Bedrock, Azure OpenAI, Vertex AI) win over a fallback's exact name.
CREATE OR REPLACE FUNCTION aos_cus.resolve_model(provider text, model text)
    RETURNS TABLE (price_provider text, canonical_model text)
    LANGUAGE plpgsql STABLE PARALLEL SAFE ROWS 1 SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF resolve_model.provider IS NULL OR resolve_model.model IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = '22004', MESSAGE = 'provider and model must not be null';
    END IF;
    IF NOT resolve_model.provider = ANY (ARRAY['openai', 'anthropic', 'google', 'azure_openai', 'aws_bedrock', 'mistral', 'custom']) THEN
        RAISE EXCEPTION USING ERRCODE = '22023',
            MESSAGE = pg_catalog.format('provider %L is not a known provider', pg_catalog.left(resolve_model.provider, 64)),
            HINT = 'Use one of openai, anthropic, google, azure_openai, aws_bedrock, mistral, custom.';
    END IF;
    RETURN QUERY
    SELECT c.provider, c.model
      FROM (SELECT pg_catalog.lower(pg_catalog.btrim(resolve_model.model)) AS v1) n1
     CROSS JOIN LATERAL (SELECT pg_catalog.regexp_replace(n1.v1, '^[a-z0-9_.-]+/', '') AS v2) n2
     CROSS JOIN LATERAL (VALUES (1, n1.v1), (2, n2.v2),
                                (3, pg_catalog.regexp_replace(n2.v2, '-(\d{4}-\d{2}-\d{2}|\d{8})$', ''))) AS names(variant, name)
     CROSS JOIN LATERAL pg_catalog.unnest(aos_cus.price_providers(resolve_model.provider)) WITH ORDINALITY AS pp(provider, pref)
      JOIN LATERAL (SELECT DISTINCT p.provider::text AS provider, p.model,
                           CASE WHEN pg_catalog.lower(p.model) = names.name THEN 1
                                WHEN names.name = ANY (p.aliases) THEN 2
                                WHEN names.name ~* p.match_pattern THEN 3 END AS step
                      FROM aos_cus.cus_model_prices p
                     WHERE p.provider = pp.provider) c ON c.step IS NOT NULL
     ORDER BY names.variant, pp.pref, c.step, pg_catalog.length(c.model) DESC, c.model
     LIMIT 1;
END
$$;
-- BEGIN GENERATED by scripts/price_seed.py: genai-prices seed rows and context windows.
INSERT INTO aos_cus.cus_model_prices (provider, model, match_pattern, service_tier, min_prompt_tokens,
    effective_from, context_window, input_price, output_price, cache_read_price, cache_write_price, cache_write_1h_price, reasoning_price, input_audio_price, output_audio_price, source) VALUES
('anthropic', 'claude-2', '(?:^claude\-2|claude\-v2)', 'standard', 0, '-infinity', 200000, 800000000, 2400000000, NULL, NULL, NULL, NULL, NULL, NULL, 'genai-prices: anthropic/claude-2'),
('anthropic', 'claude-3-5-sonnet', '(?:^claude\-3\-5\-sonnet|^claude\-3\.5\-sonnet)', 'standard', 0, '-infinity', 200000, 300000000, 1500000000, 30000000, 375000000, NULL, NULL, NULL, NULL, 'genai-prices: anthropic/claude-3-5-sonnet'),
('anthropic', 'claude-3-haiku', '^claude\-3\-haiku', 'standard', 0, '-infinity', 200000, 25000000, 125000000, 3000000, 30000000, NULL, NULL, NULL, NULL, 'genai-prices: anthropic/claude-3-haiku'),
('anthropic', 'claude-3-opus-latest', '^claude\-3\-opus', 'standard', 0, '-infinity', 200000, 1500000000, 7500000000, 150000000, 1875000000, NULL, NULL, NULL, NULL, 'genai-prices: anthropic/claude-3-opus-latest'),
('anthropic', 'claude-3-sonnet', '^claude\-3\-sonnet', 'standard', 0, '-infinity', 200000, 300000000, 1500000000, 30000000, 375000000, NULL, NULL, NULL, NULL, 'genai-prices: anthropic/claude-3-sonnet'),
('anthropic', 'claude-opus-4-0', '(?:^claude\-opus\-4\-0|^claude\-4\-opus|^claude\-opus\-4$|^claude\-opus\-4\-20250514$)', 'standard', 0, '-infinity', 200000, 1500000000, 7500000000, 150000000, 1875000000, NULL, NULL, NULL, NULL, 'genai-prices: anthropic/claude-opus-4-0'),
('anthropic', 'claude-sonnet-4-0', '(?:^claude\-sonnet\-4\-2025|^claude\-sonnet\-4\-0|^claude\-sonnet\-4@|^claude\-sonnet\-4$|^claude\-4\-sonnet)', 'standard', 0, '-infinity', 200000, 300000000, 1500000000, 30000000, 375000000, NULL, NULL, NULL, NULL, 'genai-prices: anthropic/claude-sonnet-4-0'),
('anthropic', 'claude-sonnet-5', '^((anthropic\/)?claude-sonnet-5|(eu\.|us\.|apac\.|au\.|jp\.|global\.)?anthropic\.claude-sonnet-5(-v1(:0)?)?)$', 'standard', 0, '2026-09-01 00:00:00+00', 1000000, 300000000, 1500000000, 30000000, 375000000, NULL, NULL, NULL, NULL, 'genai-prices: anthropic/claude-sonnet-5'),
('anthropic', 'claude-v1', '^claude\-v1$', 'standard', 0, '-infinity', NULL, 800000000, 2400000000, NULL, NULL, NULL, NULL, NULL, NULL, 'genai-prices: anthropic/claude-v1'),
('aws_bedrock', 'amazon.nova-2-sonic-v1:0', 'amazon\.nova\-2\-sonic', 'standard', 0, '-infinity', NULL, 33000000, 275000000, NULL, NULL, NULL, NULL, 300000000, 1200000000, 'genai-prices: aws/amazon.nova-2-sonic-v1:0'),
('aws_bedrock', 'amazon.nova-lite-v1:0', 'amazon\.nova\-lite', 'standard', 0, '-infinity', NULL, 6000000, 24000000, 1500000, NULL, NULL, NULL, NULL, NULL, 'genai-prices: aws/amazon.nova-lite-v1:0'),
('aws_bedrock', 'amazon.nova-micro-v1:0', 'amazon\.nova\-micro', 'standard', 0, '-infinity', NULL, 3500000, 14000000, 875000, NULL, NULL, NULL, NULL, NULL, 'genai-prices: aws/amazon.nova-micro-v1:0'),
('aws_bedrock', 'amazon.nova-premier-v1:0', 'amazon\.nova\-premier', 'standard', 0, '-infinity', NULL, 250000000, 1250000000, 62500000, NULL, NULL, NULL, NULL, NULL, 'genai-prices: aws/amazon.nova-premier-v1:0'),
('aws_bedrock', 'amazon.nova-pro-v1:0', 'amazon\.nova\-pro', 'standard', 0, '-infinity', NULL, 80000000, 320000000, 20000000, NULL, NULL, NULL, NULL, NULL, 'genai-prices: aws/amazon.nova-pro-v1:0'),
('aws_bedrock', 'amazon.nova-sonic-v1:0', 'amazon\.nova\-sonic', 'standard', 0, '-infinity', NULL, 6000000, 24000000, NULL, NULL, NULL, NULL, 340000000, 1360000000, 'genai-prices: aws/amazon.nova-sonic-v1:0'),
('aws_bedrock', 'amazon.titan-embed-text-v1', 'amazon\.titan\-embed\-text', 'standard', 0, '-infinity', NULL, 10000000, 0, NULL, NULL, NULL, NULL, NULL, NULL, 'genai-prices: aws/amazon.titan-embed-text-v1'),
('aws_bedrock', 'amazon.titan-text-express-v1', 'titan\-text\-express', 'standard', 0, '-infinity', NULL, 20000000, 60000000, NULL, NULL, NULL, NULL, NULL, NULL, 'genai-prices: aws/amazon.titan-text-express-v1'),
('aws_bedrock', 'amazon.titan-text-lite-v1', 'titan\-text\-lite', 'standard', 0, '-infinity', NULL, 15000000, 20000000, NULL, NULL, NULL, NULL, NULL, NULL, 'genai-prices: aws/amazon.titan-text-lite-v1'),
('aws_bedrock', 'deepseek.r1-v1:0', 'deepseek\.r1', 'standard', 0, '-infinity', NULL, 135000000, 540000000, NULL, NULL, NULL, NULL, NULL, NULL, 'genai-prices: aws/deepseek.r1-v1:0'),
('aws_bedrock', 'global.amazon.nova-2-lite-v1:0', 'global\.amazon\.nova\-2\-lite', 'standard', 0, '-infinity', NULL, 30000000, 250000000, 7500000, NULL, NULL, NULL, NULL, NULL, 'genai-prices: aws/global.amazon.nova-2-lite-v1:0'),
('aws_bedrock', 'global.anthropic.claude-fable-5-v1:0', 'global\.anthropic\.claude\-fable\-5', 'standard', 0, '-infinity', NULL, 1000000000, 5000000000, 100000000, 1250000000, NULL, NULL, NULL, NULL, 'genai-prices: aws/global.anthropic.claude-fable-5-v1:0'),
('aws_bedrock', 'global.anthropic.claude-haiku-4-5-20251001-v1:0', 'global\.anthropic\.claude\-haiku\-4\-5\-20251001', 'standard', 0, '-infinity', NULL, 100000000, 500000000, 10000000, 125000000, NULL, NULL, NULL, NULL, 'genai-prices: aws/global.anthropic.claude-haiku-4-5-20251001-v1:0'),
('aws_bedrock', 'global.anthropic.claude-opus-4-5-v1:0', 'global\.anthropic\.claude\-opus\-4\-5', 'standard', 0, '-infinity', NULL, 500000000, 2500000000, 50000000, 625000000, NULL, NULL, NULL, NULL, 'genai-prices: aws/global.anthropic.claude-opus-4-5-v1:0'),
('aws_bedrock', 'global.anthropic.claude-opus-4-6-v1:0', 'global\.anthropic\.claude\-opus\-4\-6', 'standard', 0, '-infinity', NULL, 500000000, 2500000000, 50000000, 625000000, NULL, NULL, NULL, NULL, 'genai-prices: aws/global.anthropic.claude-opus-4-6-v1:0'),
('aws_bedrock', 'global.anthropic.claude-opus-4-7-v1:0', 'global\.anthropic\.claude\-opus\-4\-7', 'standard', 0, '-infinity', NULL, 500000000, 2500000000, 50000000, 625000000, NULL, NULL, NULL, NULL, 'genai-prices: aws/global.anthropic.claude-opus-4-7-v1:0'),
('aws_bedrock', 'global.anthropic.claude-opus-4-8-v1:0', 'global\.anthropic\.claude\-opus\-4\-8', 'standard', 0, '-infinity', NULL, 500000000, 2500000000, 50000000, 625000000, NULL, NULL, NULL, NULL, 'genai-prices: aws/global.anthropic.claude-opus-4-8-v1:0'),
('aws_bedrock', 'global.anthropic.claude-opus-5', 'global\.anthropic\.claude\-opus\-5', 'standard', 0, '-infinity', NULL, 500000000, 2500000000, 50000000, 625000000, NULL, NULL, NULL, NULL, 'genai-prices: aws/global.anthropic.claude-opus-5'),
('aws_bedrock', 'global.anthropic.claude-sonnet-4-20250514-v1:0', 'global\.anthropic\.claude\-sonnet\-4\-20250514', 'standard', 0, '-infinity', NULL, 300000000, 1500000000, 30000000, 375000000, NULL, NULL, NULL, NULL, 'genai-prices: aws/global.anthropic.claude-sonnet-4-20250514-v1:0'),
('aws_bedrock', 'global.anthropic.claude-sonnet-4-5-20250929-v1:0', 'global\.anthropic\.claude\-sonnet\-4\-5\-20250929', 'standard', 0, '-infinity', NULL, 300000000, 1500000000, 30000000, 375000000, NULL, NULL, NULL, NULL, 'genai-prices: aws/global.anthropic.claude-sonnet-4-5-20250929-v1:0'),
('aws_bedrock', 'global.anthropic.claude-sonnet-4-6-v1:0', 'global\.anthropic\.claude\-sonnet\-4\-6', 'standard', 0, '-infinity', NULL, 300000000, 1500000000, 30000000, 375000000, NULL, NULL, NULL, NULL, 'genai-prices: aws/global.anthropic.claude-sonnet-4-6-v1:0'),
('aws_bedrock', 'global.anthropic.claude-sonnet-5-v1:0', 'global\.anthropic\.claude\-sonnet\-5', 'standard', 0, '-infinity', NULL, 200000000, 1000000000, 20000000, 250000000, NULL, NULL, NULL, NULL, 'genai-prices: aws/global.anthropic.claude-sonnet-5-v1:0'),
('aws_bedrock', 'global.anthropic.claude-sonnet-5-v1:0', 'global\.anthropic\.claude\-sonnet\-5', 'standard', 0, '2026-09-01 00:00:00+00', NULL, 300000000, 1500000000, 30000000, 375000000, NULL, NULL, NULL, NULL, 'genai-prices: aws/global.anthropic.claude-sonnet-5-v1:0'),
('aws_bedrock', 'google.gemma-3-12b-it', 'google\.gemma\-3\-12b\-it', 'standard', 0, '-infinity', NULL, 9000000, 29000000, NULL, NULL, NULL, NULL, NULL, NULL, 'genai-prices: aws/google.gemma-3-12b-it'),
('aws_bedrock', 'google.gemma-3-27b-it', 'google\.gemma\-3\-27b\-it', 'standard', 0, '-infinity', NULL, 23000000, 38000000, NULL, NULL, NULL, NULL, NULL, NULL, 'genai-prices: aws/google.gemma-3-27b-it'),
('aws_bedrock', 'google.gemma-3-4b-it', 'google\.gemma\-3\-4b\-it', 'standard', 0, '-infinity', NULL, 4000000, 8000000, NULL, NULL, NULL, NULL, NULL, NULL, 'genai-prices: aws/google.gemma-3-4b-it'),
('aws_bedrock', 'meta.llama3-1-70b-instruct-v1:0', 'meta\.llama3\-1\-70b\-instruct', 'standard', 0, '-infinity', NULL, 72000000, 72000000, NULL, NULL, NULL, NULL, NULL, NULL, 'genai-prices: aws/meta.llama3-1-70b-instruct-v1:0'),
('aws_bedrock', 'meta.llama3-1-8b-instruct-v1:0', 'meta\.llama3\-1\-8b\-instruct', 'standard', 0, '-infinity', NULL, 22000000, 22000000, NULL, NULL, NULL, NULL, NULL, NULL, 'genai-prices: aws/meta.llama3-1-8b-instruct-v1:0'),
('aws_bedrock', 'meta.llama3-2-11b-instruct-v1:0', 'meta\.llama3\-2\-11b\-instruct', 'standard', 0, '-infinity', NULL, 16000000, 16000000, NULL, NULL, NULL, NULL, NULL, NULL, 'genai-prices: aws/meta.llama3-2-11b-instruct-v1:0'),
('aws_bedrock', 'meta.llama3-2-1b-instruct-v1:0', 'meta\.llama3\-2\-1b\-instruct', 'standard', 0, '-infinity', NULL, 10000000, 10000000, NULL, NULL, NULL, NULL, NULL, NULL, 'genai-prices: aws/meta.llama3-2-1b-instruct-v1:0'),
('aws_bedrock', 'meta.llama3-2-3b-instruct-v1:0', 'meta\.llama3\-2\-3b\-instruct', 'standard', 0, '-infinity', NULL, 15000000, 15000000, NULL, NULL, NULL, NULL, NULL, NULL, 'genai-prices: aws/meta.llama3-2-3b-instruct-v1:0'),
('aws_bedrock', 'meta.llama3-2-90b-instruct-v1:0', 'meta\.llama3\-2\-90b\-instruct', 'standard', 0, '-infinity', NULL, 72000000, 72000000, NULL, NULL, NULL, NULL, NULL, NULL, 'genai-prices: aws/meta.llama3-2-90b-instruct-v1:0'),
('aws_bedrock', 'meta.llama3-3-70b-instruct-v1:0', 'meta\.llama3\-3\-70b\-instruct', 'standard', 0, '-infinity', NULL, 72000000, 72000000, NULL, NULL, NULL, NULL, NULL, NULL, 'genai-prices: aws/meta.llama3-3-70b-instruct-v1:0'),
('aws_bedrock', 'meta.llama3-70b-instruct-v1:0', 'meta\.llama3\-70b\-instruct', 'standard', 0, '-infinity', NULL, 265000000, 350000000, NULL, NULL, NULL, NULL, NULL, NULL, 'genai-prices: aws/meta.llama3-70b-instruct-v1:0'),
('aws_bedrock', 'meta.llama3-8b-instruct-v1:0', 'meta\.llama3\-8b\-instruct', 'standard', 0, '-infinity', NULL, 30000000, 60000000, NULL, NULL, NULL, NULL, NULL, NULL, 'genai-prices: aws/meta.llama3-8b-instruct-v1:0'),
('aws_bedrock', 'meta.llama4-maverick-17b-instruct-v1:0', 'meta\.llama4\-maverick\-17b\-instruct', 'standard', 0, '-infinity', NULL, 24000000, 97000000, NULL, NULL, NULL, NULL, NULL, NULL, 'genai-prices: aws/meta.llama4-maverick-17b-instruct-v1:0'),
('aws_bedrock', 'meta.llama4-scout-17b-instruct-v1:0', 'meta\.llama4\-scout\-17b\-instruct', 'standard', 0, '-infinity', NULL, 17000000, 66000000, NULL, NULL, NULL, NULL, NULL, NULL, 'genai-prices: aws/meta.llama4-scout-17b-instruct-v1:0'),
('aws_bedrock', 'mistral.devstral-2-123b', 'mistral\.devstral\-2\-123b', 'standard', 0, '-infinity', NULL, 40000000, 200000000, NULL, NULL, NULL, NULL, NULL, NULL, 'genai-prices: aws/mistral.devstral-2-123b'),
('aws_bedrock', 'mistral.magistral-small-2509', 'mistral\.magistral\-small\-2509', 'standard', 0, '-infinity', NULL, 50000000, 150000000, NULL, NULL, NULL, NULL, NULL, NULL, 'genai-prices: aws/mistral.magistral-small-2509'),
('aws_bedrock', 'mistral.ministral-3-14b-instruct', 'mistral\.ministral\-3\-14b\-instruct', 'standard', 0, '-infinity', NULL, 20000000, 20000000, NULL, NULL, NULL, NULL, NULL, NULL, 'genai-prices: aws/mistral.ministral-3-14b-instruct'),
('aws_bedrock', 'mistral.ministral-3-3b-instruct', 'mistral\.ministral\-3\-3b\-instruct', 'standard', 0, '-infinity', NULL, 10000000, 10000000, NULL, NULL, NULL, NULL, NULL, NULL, 'genai-prices: aws/mistral.ministral-3-3b-instruct'),
('aws_bedrock', 'mistral.ministral-3-8b-instruct', 'mistral\.ministral\-3\-8b\-instruct', 'standard', 0, '-infinity', NULL, 15000000, 15000000, NULL, NULL, NULL, NULL, NULL, NULL, 'genai-prices: aws/mistral.ministral-3-8b-instruct'),
('aws_bedrock', 'mistral.mistral-7b-instruct-v0:2', 'mistral\.mistral\-7b\-instruct\-v0', 'standard', 0, '-infinity', NULL, 15000000, 20000000, NULL, NULL, NULL, NULL, NULL, NULL, 'genai-prices: aws/mistral.mistral-7b-instruct-v0:2'),
('aws_bedrock', 'mistral.mistral-large-2402-v1:0', 'mistral\.mistral\-large\-2402', 'standard', 0, '-infinity', NULL, 400000000, 1200000000, NULL, NULL, NULL, NULL, NULL, NULL, 'genai-prices: aws/mistral.mistral-large-2402-v1:0'),
('aws_bedrock', 'mistral.mistral-large-3-675b-instruct', 'mistral\.mistral\-large\-3\-675b\-instruct', 'standard', 0, '-infinity', NULL, 50000000, 150000000, NULL, NULL, NULL, NULL, NULL, NULL, 'genai-prices: aws/mistral.mistral-large-3-675b-instruct'),
('aws_bedrock', 'mistral.mistral-small-2402-v1:0', 'mistral\.mistral\-small\-2402', 'standard', 0, '-infinity', NULL, 100000000, 300000000, NULL, NULL, NULL, NULL, NULL, NULL, 'genai-prices: aws/mistral.mistral-small-2402-v1:0'),
('aws_bedrock', 'mistral.mixtral-8x7b-instruct-v0:1', 'mistral\.mixtral\-8x7b\-instruct\-v0', 'standard', 0, '-infinity', NULL, 45000000, 70000000, NULL, NULL, NULL, NULL, NULL, NULL, 'genai-prices: aws/mistral.mixtral-8x7b-instruct-v0:1'),
('aws_bedrock', 'mistral.pixtral-large-2502-v1:0', 'mistral\.pixtral\-large\-2502', 'standard', 0, '-infinity', NULL, 200000000, 600000000, NULL, NULL, NULL, NULL, NULL, NULL, 'genai-prices: aws/mistral.pixtral-large-2502-v1:0'),
('aws_bedrock', 'mistral.voxtral-mini-3b-2507', 'mistral\.voxtral\-mini\-3b\-2507', 'standard', 0, '-infinity', NULL, 4000000, 4000000, NULL, NULL, NULL, NULL, NULL, NULL, 'genai-prices: aws/mistral.voxtral-mini-3b-2507'),
('aws_bedrock', 'mistral.voxtral-small-24b-2507', 'mistral\.voxtral\-small\-24b\-2507', 'standard', 0, '-infinity', NULL, 10000000, 30000000, NULL, NULL, NULL, NULL, NULL, NULL, 'genai-prices: aws/mistral.voxtral-small-24b-2507'),
('aws_bedrock', 'nvidia.nemotron-nano-3-30b:0', 'nvidia\.nemotron\-nano\-3\-30b', 'standard', 0, '-infinity', NULL, 6000000, 24000000, NULL, NULL, NULL, NULL, NULL, NULL, 'genai-prices: aws/nvidia.nemotron-nano-3-30b:0'),
('aws_bedrock', 'nvidia.nemotron-nano-9b-v2:0', 'nvidia\.nemotron\-nano\-9b\-v2', 'standard', 0, '-infinity', NULL, 6000000, 23000000, NULL, NULL, NULL, NULL, NULL, NULL, 'genai-prices: aws/nvidia.nemotron-nano-9b-v2:0'),
('aws_bedrock', 'nvidia.nemotron-super-3-120b:0', 'nvidia\.nemotron\-super\-3\-120b', 'standard', 0, '-infinity', NULL, 15000000, 65000000, NULL, NULL, NULL, NULL, NULL, NULL, 'genai-prices: aws/nvidia.nemotron-super-3-120b:0'),
('aws_bedrock', 'openai.gpt-5.4', '^openai\.gpt\-5\.4$', 'standard', 0, '-infinity', NULL, 275000000, 1650000000, 27500000, NULL, NULL, NULL, NULL, NULL, 'genai-prices: aws/openai.gpt-5.4'),
('aws_bedrock', 'openai.gpt-5.5', '^openai\.gpt\-5\.5$', 'standard', 0, '-infinity', NULL, 550000000, 3300000000, 55000000, NULL, NULL, NULL, NULL, NULL, 'genai-prices: aws/openai.gpt-5.5'),
('aws_bedrock', 'openai.gpt-oss-120b-1:0', 'openai\.gpt\-oss\-120b\-1', 'standard', 0, '-infinity', NULL, 15000000, 60000000, NULL, NULL, NULL, NULL, NULL, NULL, 'genai-prices: aws/openai.gpt-oss-120b-1:0'),
('aws_bedrock', 'openai.gpt-oss-20b-1:0', 'openai\.gpt\-oss\-20b\-1', 'standard', 0, '-infinity', NULL, 7000000, 30000000, NULL, NULL, NULL, NULL, NULL, NULL, 'genai-prices: aws/openai.gpt-oss-20b-1:0'),
('aws_bedrock', 'qwen.qwen3-32b-v1:0', 'qwen\.qwen3\-32b', 'standard', 0, '-infinity', NULL, 15000000, 60000000, NULL, NULL, NULL, NULL, NULL, NULL, 'genai-prices: aws/qwen.qwen3-32b-v1:0'),
('aws_bedrock', 'qwen.qwen3-coder-30b-a3b-v1:0', 'qwen\.qwen3\-coder\-30b\-a3b', 'standard', 0, '-infinity', NULL, 15000000, 60000000, NULL, NULL, NULL, NULL, NULL, NULL, 'genai-prices: aws/qwen.qwen3-coder-30b-a3b-v1:0'),
('aws_bedrock', 'qwen.qwen3-coder-480b-a35b-v1:0', 'qwen\.qwen3\-coder\-480b\-a35b', 'standard', 0, '-infinity', NULL, 45000000, 180000000, NULL, NULL, NULL, NULL, NULL, NULL, 'genai-prices: aws/qwen.qwen3-coder-480b-a35b-v1:0'),
('aws_bedrock', 'qwen.qwen3-vl-235b-a22b-v1:0', 'qwen\.qwen3\-vl\-235b\-a22b', 'standard', 0, '-infinity', NULL, 53000000, 266000000, NULL, NULL, NULL, NULL, NULL, NULL, 'genai-prices: aws/qwen.qwen3-vl-235b-a22b-v1:0'),
('aws_bedrock', 'regional.amazon.nova-2-lite-v1:0', '(?:us\.amazon\.nova\-2\-lite|eu\.amazon\.nova\-2\-lite|jp\.amazon\.nova\-2\-lite)', 'standard', 0, '-infinity', NULL, 33000000, 275000000, 8250000, NULL, NULL, NULL, NULL, NULL, 'genai-prices: aws/regional.amazon.nova-2-lite-v1:0'),
('aws_bedrock', 'regional.anthropic.claude-3-5-haiku-20241022-v1:0', 'claude\-3\-5\-haiku\-20241022', 'standard', 0, '-infinity', NULL, 80000000, 400000000, 8000000, 100000000, NULL, NULL, NULL, NULL, 'genai-prices: aws/regional.anthropic.claude-3-5-haiku-20241022-v1:0'),
('aws_bedrock', 'regional.anthropic.claude-3-5-sonnet-20240620-v1:0', 'claude\-3\-5\-sonnet\-20240620', 'standard', 0, '-infinity', NULL, 300000000, 1500000000, 30000000, 375000000, NULL, NULL, NULL, NULL, 'genai-prices: aws/regional.anthropic.claude-3-5-sonnet-20240620-v1:0'),
('aws_bedrock', 'regional.anthropic.claude-3-5-sonnet-20241022-v2:0', 'claude\-3\-5\-sonnet\-20241022', 'standard', 0, '-infinity', NULL, 300000000, 1500000000, 30000000, 375000000, NULL, NULL, NULL, NULL, 'genai-prices: aws/regional.anthropic.claude-3-5-sonnet-20241022-v2:0'),
('aws_bedrock', 'regional.anthropic.claude-3-7-sonnet-20250219-v1:0', 'claude\-3\-7\-sonnet\-20250219', 'standard', 0, '-infinity', NULL, 300000000, 1500000000, 30000000, 375000000, NULL, NULL, NULL, NULL, 'genai-prices: aws/regional.anthropic.claude-3-7-sonnet-20250219-v1:0'),
('aws_bedrock', 'regional.anthropic.claude-3-haiku-20240307-v1:0', 'claude\-3\-haiku\-20240307', 'standard', 0, '-infinity', NULL, 25000000, 125000000, NULL, NULL, NULL, NULL, NULL, NULL, 'genai-prices: aws/regional.anthropic.claude-3-haiku-20240307-v1:0'),
('aws_bedrock', 'regional.anthropic.claude-3-opus-20240229-v1:0', 'claude\-3\-opus\-20240229', 'standard', 0, '-infinity', NULL, 1500000000, 7500000000, NULL, NULL, NULL, NULL, NULL, NULL, 'genai-prices: aws/regional.anthropic.claude-3-opus-20240229-v1:0'),
('aws_bedrock', 'regional.anthropic.claude-3-sonnet-20240229-v1:0', 'claude\-3\-sonnet\-20240229', 'standard', 0, '-infinity', NULL, 300000000, 1500000000, 30000000, 375000000, NULL, NULL, NULL, NULL, 'genai-prices: aws/regional.anthropic.claude-3-sonnet-20240229-v1:0'),
('aws_bedrock', 'regional.anthropic.claude-fable-5-v1:0', '(?:^anthropic\.claude\-fable\-5|^claude\-fable\-5|us\.anthropic\.claude\-fable\-5|au\.anthropic\.claude\-fable\-5|eu\.anthropic\.claude\-fable\-5|jp\.anthropic\.claude\-fable\-5)', 'standard', 0, '-infinity', NULL, 1100000000, 5500000000, 110000000, 1375000000, NULL, NULL, NULL, NULL, 'genai-prices: aws/regional.anthropic.claude-fable-5-v1:0'),
('aws_bedrock', 'regional.anthropic.claude-haiku-4-5-20251001-v1:0', '(?:^anthropic\.claude\-haiku\-4\-5\-20251001|^claude\-haiku\-4\-5\-20251001|us\.anthropic\.claude\-haiku\-4\-5\-20251001|au\.anthropic\.claude\-haiku\-4\-5\-20251001|apac\.anthropic\.claude\-haiku\-4\-5\-20251001|eu\.anthropic\.claude\-haiku\-4\-5\-20251001|us\-gov\.anthropic\.claude\-haiku\-4\-5\-20251001|jp\.anthropic\.claude\-haiku\-4\-5\-20251001)', 'standard', 0, '-infinity', NULL, 110000000, 550000000, 11000000, 137500000, NULL, NULL, NULL, NULL, 'genai-prices: aws/regional.anthropic.claude-haiku-4-5-20251001-v1:0'),
('aws_bedrock', 'regional.anthropic.claude-opus-4-1-20250805-v1:0', '(?:^anthropic\.claude\-opus\-4\-1\-20250805|^claude\-opus\-4\-1\-20250805|us\.anthropic\.claude\-opus\-4\-1\-20250805|au\.anthropic\.claude\-opus\-4\-1\-20250805|apac\.anthropic\.claude\-opus\-4\-1\-20250805|eu\.anthropic\.claude\-opus\-4\-1\-20250805|us\-gov\.anthropic\.claude\-opus\-4\-1\-20250805|jp\.anthropic\.claude\-opus\-4\-1\-20250805)', 'standard', 0, '-infinity', NULL, 1500000000, 7500000000, 150000000, 1875000000, NULL, NULL, NULL, NULL, 'genai-prices: aws/regional.anthropic.claude-opus-4-1-20250805-v1:0'),
('aws_bedrock', 'regional.anthropic.claude-opus-4-20250514-v1:0', '(?:^anthropic\.claude\-opus\-4\-20250514|^claude\-opus\-4\-20250514|us\.anthropic\.claude\-opus\-4\-20250514|au\.anthropic\.claude\-opus\-4\-20250514|apac\.anthropic\.claude\-opus\-4\-20250514|eu\.anthropic\.claude\-opus\-4\-20250514|us\-gov\.anthropic\.claude\-opus\-4\-20250514|jp\.anthropic\.claude\-opus\-4\-20250514)', 'standard', 0, '-infinity', NULL, 1500000000, 7500000000, 150000000, 1875000000, NULL, NULL, NULL, NULL, 'genai-prices: aws/regional.anthropic.claude-opus-4-20250514-v1:0'),
('aws_bedrock', 'regional.anthropic.claude-opus-4-5-v1:0', '(?:^anthropic\.claude\-opus\-4\-5|^claude\-opus\-4\-5|us\.anthropic\.claude\-opus\-4\-5|au\.anthropic\.claude\-opus\-4\-5|apac\.anthropic\.claude\-opus\-4\-5|eu\.anthropic\.claude\-opus\-4\-5|us\-gov\.anthropic\.claude\-opus\-4\-5|jp\.anthropic\.claude\-opus\-4\-5)', 'standard', 0, '-infinity', NULL, 550000000, 2750000000, 55000000, 687500000, NULL, NULL, NULL, NULL, 'genai-prices: aws/regional.anthropic.claude-opus-4-5-v1:0'),
('aws_bedrock', 'regional.anthropic.claude-opus-4-6-v1:0', '(?:^anthropic\.claude\-opus\-4\-6|^claude\-opus\-4\-6|us\.anthropic\.claude\-opus\-4\-6|au\.anthropic\.claude\-opus\-4\-6|apac\.anthropic\.claude\-opus\-4\-6|eu\.anthropic\.claude\-opus\-4\-6|us\-gov\.anthropic\.claude\-opus\-4\-6|jp\.anthropic\.claude\-opus\-4\-6)', 'standard', 0, '-infinity', NULL, 550000000, 2750000000, 55000000, 687500000, NULL, NULL, NULL, NULL, 'genai-prices: aws/regional.anthropic.claude-opus-4-6-v1:0'),
('aws_bedrock', 'regional.anthropic.claude-opus-4-7-v1:0', '(?:^anthropic\.claude\-opus\-4\-7|^claude\-opus\-4\-7|us\.anthropic\.claude\-opus\-4\-7|au\.anthropic\.claude\-opus\-4\-7|apac\.anthropic\.claude\-opus\-4\-7|eu\.anthropic\.claude\-opus\-4\-7|us\-gov\.anthropic\.claude\-opus\-4\-7|jp\.anthropic\.claude\-opus\-4\-7)', 'standard', 0, '-infinity', NULL, 550000000, 2750000000, 55000000, 687500000, NULL, NULL, NULL, NULL, 'genai-prices: aws/regional.anthropic.claude-opus-4-7-v1:0'),
('aws_bedrock', 'regional.anthropic.claude-opus-4-8-v1:0', '(?:^anthropic\.claude\-opus\-4\-8|^claude\-opus\-4\-8|us\.anthropic\.claude\-opus\-4\-8|au\.anthropic\.claude\-opus\-4\-8|eu\.anthropic\.claude\-opus\-4\-8|jp\.anthropic\.claude\-opus\-4\-8)', 'standard', 0, '-infinity', NULL, 550000000, 2750000000, 55000000, 687500000, NULL, NULL, NULL, NULL, 'genai-prices: aws/regional.anthropic.claude-opus-4-8-v1:0'),
('aws_bedrock', 'regional.anthropic.claude-opus-5', '(?:^anthropic\.claude\-opus\-5|^claude\-opus\-5|us\.anthropic\.claude\-opus\-5|au\.anthropic\.claude\-opus\-5|eu\.anthropic\.claude\-opus\-5|jp\.anthropic\.claude\-opus\-5)', 'standard', 0, '-infinity', NULL, 550000000, 2750000000, 55000000, 687500000, NULL, NULL, NULL, NULL, 'genai-prices: aws/regional.anthropic.claude-opus-5'),
('aws_bedrock', 'regional.anthropic.claude-sonnet-4-20250514-v1:0', '(?:^anthropic\.claude\-sonnet\-4\-20250514|^claude\-sonnet\-4\-20250514|us\.anthropic\.claude\-sonnet\-4\-20250514|au\.anthropic\.claude\-sonnet\-4\-20250514|apac\.anthropic\.claude\-sonnet\-4\-20250514|eu\.anthropic\.claude\-sonnet\-4\-20250514|us\-gov\.anthropic\.claude\-sonnet\-4\-20250514|jp\.anthropic\.claude\-sonnet\-4\-20250514)', 'standard', 0, '-infinity', NULL, 300000000, 1500000000, 30000000, 375000000, NULL, NULL, NULL, NULL, 'genai-prices: aws/regional.anthropic.claude-sonnet-4-20250514-v1:0'),
('aws_bedrock', 'regional.anthropic.claude-sonnet-4-5-20250929-v1:0', '(?:^anthropic\.claude\-sonnet\-4\-5\-20250929|^claude\-sonnet\-4\-5\-20250929|us\.anthropic\.claude\-sonnet\-4\-5\-20250929|au\.anthropic\.claude\-sonnet\-4\-5\-20250929|apac\.anthropic\.claude\-sonnet\-4\-5\-20250929|eu\.anthropic\.claude\-sonnet\-4\-5\-20250929|us\-gov\.anthropic\.claude\-sonnet\-4\-5\-20250929|jp\.anthropic\.claude\-sonnet\-4\-5\-20250929)', 'standard', 0, '-infinity', NULL, 330000000, 1650000000, 33000000, 412500000, NULL, NULL, NULL, NULL, 'genai-prices: aws/regional.anthropic.claude-sonnet-4-5-20250929-v1:0'),
('aws_bedrock', 'regional.anthropic.claude-sonnet-4-6-v1:0', '(?:^anthropic\.claude\-sonnet\-4\-6|^claude\-sonnet\-4\-6|us\.anthropic\.claude\-sonnet\-4\-6|au\.anthropic\.claude\-sonnet\-4\-6|apac\.anthropic\.claude\-sonnet\-4\-6|eu\.anthropic\.claude\-sonnet\-4\-6|us\-gov\.anthropic\.claude\-sonnet\-4\-6|jp\.anthropic\.claude\-sonnet\-4\-6)', 'standard', 0, '-infinity', NULL, 330000000, 1650000000, 33000000, 412500000, NULL, NULL, NULL, NULL, 'genai-prices: aws/regional.anthropic.claude-sonnet-4-6-v1:0'),
('aws_bedrock', 'regional.anthropic.claude-sonnet-5-v1:0', '(?:^anthropic\.claude\-sonnet\-5|^claude\-sonnet\-5|us\.anthropic\.claude\-sonnet\-5|au\.anthropic\.claude\-sonnet\-5|apac\.anthropic\.claude\-sonnet\-5|eu\.anthropic\.claude\-sonnet\-5|us\-gov\.anthropic\.claude\-sonnet\-5|jp\.anthropic\.claude\-sonnet\-5)', 'standard', 0, '-infinity', NULL, 220000000, 1100000000, 22000000, 275000000, NULL, NULL, NULL, NULL, 'genai-prices: aws/regional.anthropic.claude-sonnet-5-v1:0'),
('aws_bedrock', 'regional.anthropic.claude-sonnet-5-v1:0', '(?:^anthropic\.claude\-sonnet\-5|^claude\-sonnet\-5|us\.anthropic\.claude\-sonnet\-5|au\.anthropic\.claude\-sonnet\-5|apac\.anthropic\.claude\-sonnet\-5|eu\.anthropic\.claude\-sonnet\-5|us\-gov\.anthropic\.claude\-sonnet\-5|jp\.anthropic\.claude\-sonnet\-5)', 'standard', 0, '2026-09-01 00:00:00+00', NULL, 330000000, 1650000000, 33000000, 412500000, NULL, NULL, NULL, NULL, 'genai-prices: aws/regional.anthropic.claude-sonnet-5-v1:0'),
('azure_openai', 'ada', '(?:^ada$|^text\-embedding\-ada$|^text\-embedding\-ada\-002$|^text\-embedding\-ada\-002\-v2$)', 'standard', 0, '-infinity', NULL, 10000000, 0, NULL, NULL, NULL, NULL, NULL, NULL, 'genai-prices: azure/ada'),
('azure_openai', 'babbage', '(?:^babbage$|^babbage\-002$)', 'standard', 0, '-infinity', NULL, 40000000, 0, NULL, NULL, NULL, NULL, NULL, NULL, 'genai-prices: azure/babbage'),
('azure_openai', 'curie', '(?:^curie$|^text\-curie$|^text\-curie\-001$)', 'standard', 0, '-infinity', NULL, 200000000, 0, NULL, NULL, NULL, NULL, NULL, NULL, 'genai-prices: azure/curie'),
('azure_openai', 'davinci', '(?:^davinci$|^davinci\-002$|^text\-davinci$|^text\-davinci\-002$)', 'standard', 0, '-infinity', NULL, 200000000, 0, NULL, NULL, NULL, NULL, NULL, NULL, 'genai-prices: azure/davinci'),
('azure_openai', 'mai-ds-r1:free', '^mai\-ds\-r1:free$', 'standard', 0, '-infinity', NULL, 0, 0, NULL, NULL, NULL, NULL, NULL, NULL, 'genai-prices: azure/mai-ds-r1:free'),
('azure_openai', 'o1', '(?:^o1$|^o1\-2024\-12\-17$|^o1\-preview$|^o1\-preview\-2024\-09\-12$)', 'standard', 0, '-infinity', NULL, 1500000000, 6000000000, 750000000, NULL, NULL, NULL, NULL, NULL, 'genai-prices: azure/o1'),
('azure_openai', 'o1-mini', '(?:^o1\-mini$|^o1\-mini\-2024\-09\-12$)', 'standard', 0, '-infinity', NULL, 110000000, 440000000, 55000000, NULL, NULL, NULL, NULL, NULL, 'genai-prices: azure/o1-mini'),
('azure_openai', 'o3-2025-04-16', '(?:^o3$|^o3\-2025\-04\-16$)', 'standard', 0, '-infinity', NULL, 200000000, 800000000, 50000000, NULL, NULL, NULL, NULL, NULL, 'genai-prices: azure/o3-2025-04-16'),
('azure_openai', 'o3-mini', '(?:^o3\-mini$|^o3\-mini\-2025\-01\-31$)', 'standard', 0, '-infinity', NULL, 110000000, 440000000, 55000000, NULL, NULL, NULL, NULL, NULL, 'genai-prices: azure/o3-mini'),
('azure_openai', 'o4-mini', '(?:o4\-mini|o4\-mini\-2025\-04\-16)', 'standard', 0, '-infinity', NULL, 110000000, 440000000, 28000000, NULL, NULL, NULL, NULL, NULL, 'genai-prices: azure/o4-mini'),
('azure_openai', 'phi-3-medium-128k-instruct', '^phi\-3\-medium\-128k\-instruct$', 'standard', 0, '-infinity', NULL, 100000000, 100000000, NULL, NULL, NULL, NULL, NULL, NULL, 'genai-prices: azure/phi-3-medium-128k-instruct'),
('azure_openai', 'phi-3-mini-128k-instruct', '^phi\-3\-mini\-128k\-instruct$', 'standard', 0, '-infinity', NULL, 10000000, 10000000, NULL, NULL, NULL, NULL, NULL, NULL, 'genai-prices: azure/phi-3-mini-128k-instruct'),
('azure_openai', 'phi-3.5-mini-128k-instruct', '^phi\-3\.5\-mini\-128k\-instruct$', 'standard', 0, '-infinity', NULL, 10000000, 10000000, NULL, NULL, NULL, NULL, NULL, NULL, 'genai-prices: azure/phi-3.5-mini-128k-instruct'),
('azure_openai', 'phi-4', '^phi\-4$', 'standard', 0, '-infinity', NULL, 7000000, 14000000, NULL, NULL, NULL, NULL, NULL, NULL, 'genai-prices: azure/phi-4'),
('azure_openai', 'phi-4-mini-instruct', '^phi\-4\-mini\-instruct$', 'standard', 0, '-infinity', NULL, 8000000, 35000000, 8000000, NULL, NULL, NULL, NULL, NULL, 'genai-prices: azure/phi-4-mini-instruct'),
('azure_openai', 'phi-4-multimodal-instruct', '^phi\-4\-multimodal\-instruct$', 'standard', 0, '-infinity', NULL, 5000000, 10000000, NULL, NULL, NULL, NULL, NULL, NULL, 'genai-prices: azure/phi-4-multimodal-instruct'),
('azure_openai', 'phi-4-reasoning-plus', '^phi\-4\-reasoning\-plus$', 'standard', 0, '-infinity', NULL, 7000000, 35000000, NULL, NULL, NULL, NULL, NULL, NULL, 'genai-prices: azure/phi-4-reasoning-plus'),
('azure_openai', 'phi-4-reasoning-plus:free', '^phi\-4\-reasoning\-plus:free$', 'standard', 0, '-infinity', NULL, 0, 0, NULL, NULL, NULL, NULL, NULL, NULL, 'genai-prices: azure/phi-4-reasoning-plus:free'),
('azure_openai', 'phi-4-reasoning:free', '^phi\-4\-reasoning:free$', 'standard', 0, '-infinity', NULL, 0, 0, NULL, NULL, NULL, NULL, NULL, NULL, 'genai-prices: azure/phi-4-reasoning:free'),
('azure_openai', 'text-embedding-3-large', '^text\-embedding\-3\-large$', 'standard', 0, '-infinity', NULL, 13000000, 0, NULL, NULL, NULL, NULL, NULL, NULL, 'genai-prices: azure/text-embedding-3-large'),
('azure_openai', 'text-embedding-3-small', '^text\-embedding\-3\-small$', 'standard', 0, '-infinity', NULL, 2000000, 0, NULL, NULL, NULL, NULL, NULL, NULL, 'genai-prices: azure/text-embedding-3-small'),
('azure_openai', 'wizardlm-2-8x22b', '^wizardlm\-2\-8x22b$', 'standard', 0, '-infinity', NULL, 48000000, 48000000, NULL, NULL, NULL, NULL, NULL, NULL, 'genai-prices: azure/wizardlm-2-8x22b'),
('google', 'claude-3-5-haiku', 'claude\-3\-5\-haiku', 'standard', 0, '-infinity', 200000, 80000000, 400000000, 8000000, 100000000, NULL, NULL, NULL, NULL, 'genai-prices: google/claude-3-5-haiku'),
('google', 'claude-3-5-sonnet', 'claude\-3\-5\-sonnet', 'standard', 0, '-infinity', 200000, 300000000, 1500000000, 30000000, 375000000, NULL, NULL, NULL, NULL, 'genai-prices: google/claude-3-5-sonnet'),
('google', 'claude-3-7-sonnet', 'claude\-3\-7\-sonnet', 'standard', 0, '-infinity', 200000, 300000000, 1500000000, 30000000, 375000000, NULL, NULL, NULL, NULL, 'genai-prices: google/claude-3-7-sonnet'),
('google', 'claude-3-haiku', 'claude\-3\-haiku', 'standard', 0, '-infinity', 200000, 25000000, 125000000, 3000000, 30000000, NULL, NULL, NULL, NULL, 'genai-prices: google/claude-3-haiku'),
('google', 'claude-3-opus', 'claude\-3\-opus', 'standard', 0, '-infinity', NULL, 1500000000, 7500000000, 150000000, 1875000000, NULL, NULL, NULL, NULL, 'genai-prices: google/claude-3-opus'),
('google', 'claude-4-opus', '(?:claude\-4\-opus|claude\-opus\-4@|claude\-opus\-4\-0|claude\-opus\-4\-1|^claude\-opus\-4$)', 'standard', 0, '-infinity', 200000, 1500000000, 7500000000, 150000000, 1875000000, NULL, NULL, NULL, NULL, 'genai-prices: google/claude-4-opus'),
('google', 'claude-4-sonnet', '(?:claude\-4\-sonnet|claude\-sonnet\-4)', 'standard', 0, '-infinity', 200000, 300000000, 1500000000, 30000000, 375000000, NULL, NULL, NULL, NULL, 'genai-prices: google/claude-4-sonnet'),
('google', 'claude-fable-5', 'claude\-fable\-5', 'standard', 0, '-infinity', 1000000, 1000000000, 5000000000, 100000000, 1250000000, NULL, NULL, NULL, NULL, 'genai-prices: google/claude-fable-5'),
('google', 'claude-opus-4-6', '(?:claude\-4\-6\-opus|claude\-opus\-4\-6|claude\-4\.6\-opus|claude\-opus\-4\.6)', 'standard', 0, '-infinity', 200000, 500000000, 2500000000, 50000000, 625000000, NULL, NULL, NULL, NULL, 'genai-prices: google/claude-opus-4-6'),
('google', 'claude-opus-4-6', '(?:claude\-4\-6\-opus|claude\-opus\-4\-6|claude\-4\.6\-opus|claude\-opus\-4\.6)', 'standard', 200000, '-infinity', 200000, 1000000000, 3750000000, 100000000, 1250000000, NULL, NULL, NULL, NULL, 'genai-prices: google/claude-opus-4-6'),
('google', 'claude-opus-4-7', '(?:claude\-4\-7\-opus|claude\-opus\-4\-7|claude\-4\.7\-opus|claude\-opus\-4\.7)', 'standard', 0, '-infinity', 1000000, 500000000, 2500000000, 50000000, 625000000, NULL, NULL, NULL, NULL, 'genai-prices: google/claude-opus-4-7'),
('google', 'claude-opus-4-8', '(?:claude\-4\-8\-opus|claude\-opus\-4\-8|claude\-4\.8\-opus|claude\-opus\-4\.8)', 'standard', 0, '-infinity', 1000000, 500000000, 2500000000, 50000000, 625000000, NULL, NULL, NULL, NULL, 'genai-prices: google/claude-opus-4-8'),
('google', 'claude-opus-5', '(?:claude\-5\-opus|claude\-opus\-5|claude\-5\.0\-opus|claude\-opus\-5\.0)', 'standard', 0, '-infinity', 1000000, 500000000, 2500000000, 50000000, 625000000, NULL, NULL, NULL, NULL, 'genai-prices: google/claude-opus-5'),
('google', 'gemini-1.0-pro-vision-001', '^gemini\-1\.0\-pro\-vision\-001$', 'standard', 0, '-infinity', 32768, 12500000, 37500000, NULL, NULL, NULL, NULL, NULL, NULL, 'genai-prices: google/gemini-1.0-pro-vision-001'),
('google', 'gemini-1.5-flash', 'gemini\-1\.5\-flash', 'standard', 0, '-infinity', 1000000, 7500000, 30000000, 1875000, NULL, NULL, NULL, NULL, NULL, 'genai-prices: google/gemini-1.5-flash'),
('google', 'gemini-1.5-flash', 'gemini\-1\.5\-flash', 'standard', 128000, '-infinity', 1000000, 15000000, 60000000, 3750000, NULL, NULL, NULL, NULL, NULL, 'genai-prices: google/gemini-1.5-flash'),
('google', 'gemini-1.5-pro', 'gemini\-1\.5\-pro', 'standard', 0, '-infinity', 1000000, 125000000, 500000000, NULL, NULL, NULL, NULL, NULL, NULL, 'genai-prices: google/gemini-1.5-pro'),
('google', 'gemini-1.5-pro', 'gemini\-1\.5\-pro', 'standard', 128000, '-infinity', 1000000, 250000000, 1000000000, NULL, NULL, NULL, NULL, NULL, NULL, 'genai-prices: google/gemini-1.5-pro'),
('google', 'gemini-2.0-flash-lite', 'gemini\-2\.0\-flash\-lite', 'standard', 0, '-infinity', 1000000, 7500000, 30000000, NULL, NULL, NULL, NULL, NULL, NULL, 'genai-prices: google/gemini-2.0-flash-lite'),
('google', 'gemini-2.5-flash-image', '(?:^gemini\-2\.5\-flash\-image$|^gemini\-2\.5\-flash\-image\-preview$)', 'standard', 0, '-infinity', 1000000, 30000000, 3000000000, NULL, NULL, NULL, NULL, NULL, NULL, 'genai-prices: google/gemini-2.5-flash-image'),
('google', 'gemini-2.5-flash-preview', '(?:gemini\-2\.5\-flash\-preview\-05\-20|gemini\-2\.5\-flash\-preview\-04\-17|^gemini\-2\.5\-flash\-preview\-05\-20:thinking$|^gemini\-2\.5\-flash\-preview$|^gemini\-2\.5\-flash\-preview:thinking$)', 'standard', 0, '-infinity', NULL, 15000000, 60000000, NULL, NULL, NULL, NULL, NULL, NULL, 'genai-prices: google/gemini-2.5-flash-preview'),
('google', 'gemini-3-pro-image-preview', '(?:^gemini\-3\-pro\-image\-preview|^gemini\-3\-pro\-image\-preview$)', 'standard', 0, '-infinity', 1000000, 200000000, 12000000000, NULL, NULL, NULL, NULL, NULL, NULL, 'genai-prices: google/gemini-3-pro-image-preview'),
('google', 'gemini-3.1-flash-image-preview', '^gemini\-3\.1\-flash\-image\-preview', 'standard', 0, '-infinity', 1000000, 50000000, 6000000000, NULL, NULL, NULL, NULL, NULL, NULL, 'genai-prices: google/gemini-3.1-flash-image-preview'),
('google', 'gemini-embedding-001', '^gemini\-embedding\-001$', 'standard', 0, '-infinity', NULL, 15000000, 0, NULL, NULL, NULL, NULL, NULL, NULL, 'genai-prices: google/gemini-embedding-001'),
('google', 'gemini-flash-1.5', '^gemini\-flash\-1\.5$', 'standard', 0, '-infinity', NULL, 7500000, 30000000, 1875000, NULL, NULL, NULL, NULL, NULL, 'genai-prices: google/gemini-flash-1.5'),
('google', 'gemini-flash-1.5', '^gemini\-flash\-1\.5$', 'standard', 128000, '-infinity', NULL, 15000000, 60000000, 3750000, NULL, NULL, NULL, NULL, NULL, 'genai-prices: google/gemini-flash-1.5'),
('google', 'gemini-flash-1.5-8b', '^gemini\-flash\-1\.5\-8b$', 'standard', 0, '-infinity', 1000000, 3750000, 15000000, 1000000, NULL, NULL, NULL, NULL, NULL, 'genai-prices: google/gemini-flash-1.5-8b'),
('google', 'gemini-flash-1.5-8b', '^gemini\-flash\-1\.5\-8b$', 'standard', 128000, '-infinity', 1000000, 7500000, 30000000, 2000000, NULL, NULL, NULL, NULL, NULL, 'genai-prices: google/gemini-flash-1.5-8b'),
('google', 'gemini-live-2.5-flash', '(?:^gemini\-live\-2\.5\-flash|^gemini\-2\.5\-flash\-native\-audio\-preview)', 'standard', 0, '-infinity', NULL, 50000000, 200000000, NULL, NULL, NULL, NULL, 300000000, 1200000000, 'genai-prices: google/gemini-live-2.5-flash'),
('google', 'gemini-pro-1.5', '^gemini\-pro\-1\.5$', 'standard', 0, '-infinity', 2000000, 125000000, 500000000, 31250000, NULL, NULL, NULL, NULL, NULL, 'genai-prices: google/gemini-pro-1.5'),
('google', 'gemini-pro-1.5', '^gemini\-pro\-1\.5$', 'standard', 128000, '-infinity', 2000000, 250000000, 1000000000, 62500000, NULL, NULL, NULL, NULL, NULL, 'genai-prices: google/gemini-pro-1.5'),
('google', 'gemma-2-27b-it', '^gemma\-2\-27b\-it$', 'standard', 0, '-infinity', NULL, 65000000, 65000000, NULL, NULL, NULL, NULL, NULL, NULL, 'genai-prices: google/gemma-2-27b-it'),
('google', 'gemma-3', '(?:^gemma\-3\-|^gemma\-3$)', 'standard', 0, '-infinity', NULL, 0, 0, NULL, NULL, NULL, NULL, NULL, NULL, 'genai-prices: google/gemma-3'),
('google', 'gemma-3n', '(?:^gemma\-3n)', 'standard', 0, '-infinity', NULL, 0, 0, NULL, NULL, NULL, NULL, NULL, NULL, 'genai-prices: google/gemma-3n'),
('google', 'gemma-4-26b-a4b-it', '^gemma\-4\-26b\-a4b\-it$', 'standard', 0, '-infinity', NULL, 6000000, 33000000, NULL, NULL, NULL, NULL, NULL, NULL, 'genai-prices: google/gemma-4-26b-a4b-it'),
('google', 'gemma-4-31b-it', '^gemma\-4\-31b\-it$', 'standard', 0, '-infinity', NULL, 12000000, 36000000, 9000000, NULL, NULL, NULL, NULL, NULL, 'genai-prices: google/gemma-4-31b-it'),
('mistral', 'codestral', '(?:^codestral\-latest$|^codestral\-2501$)', 'standard', 0, '-infinity', NULL, 30000000, 90000000, NULL, NULL, NULL, NULL, NULL, NULL, 'genai-prices: mistral/codestral'),
('mistral', 'codestral-2508', '^codestral\-2508$', 'standard', 0, '-infinity', NULL, 30000000, 90000000, 3000000, NULL, NULL, NULL, NULL, NULL, 'genai-prices: mistral/codestral-2508'),
('mistral', 'devstral-2512', '^devstral\-2512$', 'standard', 0, '-infinity', NULL, 40000000, 200000000, 4000000, NULL, NULL, NULL, NULL, NULL, 'genai-prices: mistral/devstral-2512'),
('mistral', 'devstral-small', '^devstral\-small$', 'standard', 0, '-infinity', NULL, 6000000, 12000000, NULL, NULL, NULL, NULL, NULL, NULL, 'genai-prices: mistral/devstral-small'),
('mistral', 'devstral-small:free', '^devstral\-small:free$', 'standard', 0, '-infinity', NULL, 0, 0, NULL, NULL, NULL, NULL, NULL, NULL, 'genai-prices: mistral/devstral-small:free'),
('mistral', 'magistral-medium', '(?:^magistral\-medium)', 'standard', 0, '-infinity', NULL, 200000000, 500000000, NULL, NULL, NULL, NULL, NULL, NULL, 'genai-prices: mistral/magistral-medium'),
('mistral', 'magistral-small', '^magistral\-small\-', 'standard', 0, '-infinity', NULL, 50000000, 150000000, NULL, NULL, NULL, NULL, NULL, NULL, 'genai-prices: mistral/magistral-small'),
('mistral', 'ministral-14b-2512', '^ministral\-14b\-2512$', 'standard', 0, '-infinity', NULL, 20000000, 20000000, 2000000, NULL, NULL, NULL, NULL, NULL, 'genai-prices: mistral/ministral-14b-2512'),
('mistral', 'ministral-3b', '^ministral\-3b$', 'standard', 0, '-infinity', NULL, 4000000, 4000000, NULL, NULL, NULL, NULL, NULL, NULL, 'genai-prices: mistral/ministral-3b'),
('mistral', 'ministral-3b-2512', '^ministral\-3b\-2512$', 'standard', 0, '-infinity', NULL, 10000000, 10000000, 1000000, NULL, NULL, NULL, NULL, NULL, 'genai-prices: mistral/ministral-3b-2512'),
('mistral', 'ministral-8b', '^ministral\-8b', 'standard', 0, '-infinity', NULL, 10000000, 100000000, NULL, NULL, NULL, NULL, NULL, NULL, 'genai-prices: mistral/ministral-8b'),
('mistral', 'mistral-7b', '(?:^mistral\-7b$|^open\-mistral\-7b$)', 'standard', 0, '-infinity', NULL, 25000000, 25000000, NULL, NULL, NULL, NULL, NULL, NULL, 'genai-prices: mistral/mistral-7b'),
('mistral', 'mistral-embed', '^mistral\-embed$', 'standard', 0, '-infinity', NULL, 10000000, 10000000, NULL, NULL, NULL, NULL, NULL, NULL, 'genai-prices: mistral/mistral-embed'),
('mistral', 'mistral-large', '(?:^mistral\-large$|^mistral\-large\-latest$|^mistral\-large\-2407$|^mistral\-large\-2411$)', 'standard', 0, '-infinity', NULL, 200000000, 600000000, NULL, NULL, NULL, NULL, NULL, NULL, 'genai-prices: mistral/mistral-large'),
('mistral', 'mistral-large-2512', '^mistral\-large\-2512$', 'standard', 0, '-infinity', NULL, 50000000, 150000000, 5000000, NULL, NULL, NULL, NULL, NULL, 'genai-prices: mistral/mistral-large-2512'),
('mistral', 'mistral-medium-3', '^mistral\-medium', 'standard', 0, '-infinity', NULL, 40000000, 200000000, NULL, NULL, NULL, NULL, NULL, NULL, 'genai-prices: mistral/mistral-medium-3'),
('mistral', 'mistral-nemo', '(?:^mistral\-nemo$|^open\-mistral\-nemo$)', 'standard', 0, '-infinity', NULL, 15000000, 15000000, NULL, NULL, NULL, NULL, NULL, NULL, 'genai-prices: mistral/mistral-nemo'),
('mistral', 'mistral-nemo:free', '^mistral\-nemo:free$', 'standard', 0, '-infinity', NULL, 0, 0, NULL, NULL, NULL, NULL, NULL, NULL, 'genai-prices: mistral/mistral-nemo:free'),
('mistral', 'mistral-saba', '(?:^mistral\-saba$|^mistral\-saba\-latest$)', 'standard', 0, '-infinity', NULL, 20000000, 60000000, NULL, NULL, NULL, NULL, NULL, NULL, 'genai-prices: mistral/mistral-saba'),
('mistral', 'mistral-small-24b-instruct-2501', '^mistral\-small\-24b\-instruct\-2501$', 'standard', 0, '-infinity', NULL, 5000000, 8000000, NULL, NULL, NULL, NULL, NULL, NULL, 'genai-prices: mistral/mistral-small-24b-instruct-2501'),
('mistral', 'mistral-small-24b-instruct-2501:free', '^mistral\-small\-24b\-instruct\-2501:free$', 'standard', 0, '-infinity', NULL, 0, 0, NULL, NULL, NULL, NULL, NULL, NULL, 'genai-prices: mistral/mistral-small-24b-instruct-2501:free'),
('mistral', 'mistral-small-2603', '^mistral\-small\-2603$', 'standard', 0, '-infinity', NULL, 15000000, 60000000, 1500000, NULL, NULL, NULL, NULL, NULL, 'genai-prices: mistral/mistral-small-2603'),
('mistral', 'mistral-small-3.1-24b-instruct', '^mistral\-small\-3\.1\-24b\-instruct$', 'standard', 0, '-infinity', NULL, 35100000, 55500000, NULL, NULL, NULL, NULL, NULL, NULL, 'genai-prices: mistral/mistral-small-3.1-24b-instruct'),
('mistral', 'mistral-small-3.2-24b-instruct', '^mistral\-small\-3\.2\-24b\-instruct$', 'standard', 0, '-infinity', NULL, 7500000, 20000000, NULL, NULL, NULL, NULL, NULL, NULL, 'genai-prices: mistral/mistral-small-3.2-24b-instruct'),
('mistral', 'mistral-small-latest', '^mistral\-small\-latest$', 'standard', 0, '-infinity', NULL, 10000000, 30000000, NULL, NULL, NULL, NULL, NULL, NULL, 'genai-prices: mistral/mistral-small-latest'),
('mistral', 'mistral-tiny', '^mistral\-tiny$', 'standard', 0, '-infinity', NULL, 25000000, 25000000, NULL, NULL, NULL, NULL, NULL, NULL, 'genai-prices: mistral/mistral-tiny'),
('mistral', 'mixtral-8x22b-instruct', '^mixtral\-8x22b\-instruct$', 'standard', 0, '-infinity', NULL, 90000000, 90000000, NULL, NULL, NULL, NULL, NULL, NULL, 'genai-prices: mistral/mixtral-8x22b-instruct'),
('mistral', 'mixtral-8x7b', '(?:^mixtral\-8x7b|^open\-mixtral\-8x7b$)', 'standard', 0, '-infinity', NULL, 70000000, 70000000, NULL, NULL, NULL, NULL, NULL, NULL, 'genai-prices: mistral/mixtral-8x7b'),
('mistral', 'pixtral-12b', '(?:^pixtral\-12b$|^pixtral\-12b\-latest$)', 'standard', 0, '-infinity', NULL, 15000000, 15000000, NULL, NULL, NULL, NULL, NULL, NULL, 'genai-prices: mistral/pixtral-12b'),
('mistral', 'pixtral-large', '(?:^pixtral\-large\-latest$|^pixtral\-large\-2411$)', 'standard', 0, '-infinity', NULL, 200000000, 600000000, NULL, NULL, NULL, NULL, NULL, NULL, 'genai-prices: mistral/pixtral-large'),
('mistral', 'voxtral-small-24b-2507', '^voxtral\-small\-24b\-2507$', 'standard', 0, '-infinity', NULL, 10000000, 30000000, 1000000, NULL, NULL, NULL, NULL, NULL, 'genai-prices: mistral/voxtral-small-24b-2507'),
('openai', 'ada', '(?:^ada$|^text\-ada\-001$)', 'standard', 0, '-infinity', NULL, 40000000, 40000000, NULL, NULL, NULL, NULL, NULL, NULL, 'genai-prices: openai/ada'),
('openai', 'babbage', '^babbage$', 'standard', 0, '-infinity', NULL, 50000000, 50000000, NULL, NULL, NULL, NULL, NULL, NULL, 'genai-prices: openai/babbage'),
('openai', 'codex-mini', '(?:^codex\-mini$|^codex\-mini\-latest$)', 'standard', 0, '-infinity', NULL, 150000000, 600000000, 37500000, NULL, NULL, NULL, NULL, NULL, 'genai-prices: openai/codex-mini'),
('openai', 'computer-use', '^computer\-use', 'standard', 0, '-infinity', NULL, 300000000, 1200000000, NULL, NULL, NULL, NULL, NULL, NULL, 'genai-prices: openai/computer-use'),
('openai', 'curie', '(?:^curie$|^text\-curie\-001$)', 'standard', 0, '-infinity', NULL, 200000000, 200000000, NULL, NULL, NULL, NULL, NULL, NULL, 'genai-prices: openai/curie'),
('openai', 'davinci', '(?:^davinci$|^text\-davinci\-001$)', 'standard', 0, '-infinity', NULL, 2000000000, 2000000000, NULL, NULL, NULL, NULL, NULL, NULL, 'genai-prices: openai/davinci'),
('openai', 'ft:gpt-3.5-turbo-', '^ft:gpt\-3\.5\-turbo', 'standard', 0, '-infinity', NULL, 300000000, 600000000, NULL, NULL, NULL, NULL, NULL, NULL, 'genai-prices: openai/ft:gpt-3.5-turbo-'),
('openai', 'ft:gpt-4o', '^ft:gpt\-4o\-2024\-', 'standard', 0, '-infinity', NULL, 375000000, 1500000000, NULL, NULL, NULL, NULL, NULL, NULL, 'genai-prices: openai/ft:gpt-4o'),
('openai', 'ft:gpt-4o-mini', '^ft:gpt\-4o\-mini\-2024\-', 'standard', 0, '-infinity', NULL, 30000000, 120000000, NULL, NULL, NULL, NULL, NULL, NULL, 'genai-prices: openai/ft:gpt-4o-mini'),
('openai', 'gpt-3.5-0301', '(?:^gpt\-3\.5\-turbo\-0301$|^gpt\-3\.5\-0301$)', 'standard', 0, '-infinity', NULL, 150000000, 200000000, NULL, NULL, NULL, NULL, NULL, NULL, 'genai-prices: openai/gpt-3.5-0301'),
('openai', 'gpt-4o-mini-2024-07-18.ft-', '^gpt\-4o\-mini\-2024\-07\-18\.ft\-', 'standard', 0, '-infinity', NULL, 30000000, 120000000, NULL, NULL, NULL, NULL, NULL, NULL, 'genai-prices: openai/gpt-4o-mini-2024-07-18.ft-'),
('openai', 'gpt-4o-mini-audio-preview', '^gpt\-4o\-mini\-audio', 'standard', 0, '-infinity', NULL, 15000000, 60000000, NULL, NULL, NULL, NULL, 15000000, NULL, 'genai-prices: openai/gpt-4o-mini-audio-preview'),
('openai', 'gpt-4o-mini-realtime-preview', '^gpt\-4o\-mini\-realtime', 'standard', 0, '-infinity', NULL, 60000000, 240000000, 30000000, NULL, NULL, NULL, 1000000000, 2000000000, 'genai-prices: openai/gpt-4o-mini-realtime-preview'),
('openai', 'gpt-4o-mini-transcribe', '^gpt\-4o\-mini\-transcribe$', 'standard', 0, '-infinity', NULL, 125000000, 500000000, NULL, NULL, NULL, NULL, 300000000, NULL, 'genai-prices: openai/gpt-4o-mini-transcribe'),
('openai', 'gpt-4o-mini-tts', '^gpt\-4o\-mini\-tts$', 'standard', 0, '-infinity', NULL, 60000000, 1200000000, NULL, NULL, NULL, NULL, NULL, 1200000000, 'genai-prices: openai/gpt-4o-mini-tts'),
('openai', 'gpt-4o-search-preview', '(?:^gpt\-4o\-search\-preview$|^gpt\-4o\-search\-preview\-2025\-03\-11$)', 'standard', 0, '-infinity', NULL, 250000000, 1000000000, NULL, NULL, NULL, NULL, NULL, NULL, 'genai-prices: openai/gpt-4o-search-preview'),
('openai', 'gpt-4o-transcribe', '(?:^gpt\-4o\-transcribe$|^gpt\-4o\-transcribe\-diarize$)', 'standard', 0, '-infinity', NULL, 250000000, 1000000000, NULL, NULL, NULL, NULL, 600000000, NULL, 'genai-prices: openai/gpt-4o-transcribe'),
('openai', 'gpt-4o:extended', '^gpt\-4o:extended$', 'standard', 0, '-infinity', NULL, 600000000, 1800000000, NULL, NULL, NULL, NULL, NULL, NULL, 'genai-prices: openai/gpt-4o:extended'),
('openai', 'gpt-5-image', '^gpt\-5\-image$', 'standard', 0, '-infinity', NULL, 1000000000, 1000000000, 125000000, NULL, NULL, NULL, NULL, NULL, 'genai-prices: openai/gpt-5-image'),
('openai', 'gpt-5-image-mini', '^gpt\-5\-image\-mini$', 'standard', 0, '-infinity', NULL, 250000000, 200000000, 25000000, NULL, NULL, NULL, NULL, NULL, 'genai-prices: openai/gpt-5-image-mini'),
('openai', 'gpt-5.1-codex-mini', '(?:^gpt\-5\.1\-codex\-mini$|^gpt\-5\.1\-mini$|^gpt\-5\-1\-codex\-mini$|^gpt\-5\-1\-mini$)', 'standard', 0, '-infinity', 400000, 25000000, 200000000, 2500000, NULL, NULL, NULL, NULL, NULL, 'genai-prices: openai/gpt-5.1-codex-mini'),
('openai', 'gpt-5.3', '(?:^gpt\-5\.3$|^gpt\-5\-3$|^gpt\-5\.3\-chat$|^gpt\-5\.3\-chat\-latest$|^gpt\-5\-3\-chat$|^gpt\-5\-3\-chat\-latest$)', 'standard', 0, '-infinity', 128000, 175000000, 1400000000, 17500000, NULL, NULL, NULL, NULL, NULL, 'genai-prices: openai/gpt-5.3'),
('openai', 'gpt-5.4-image-2', '^gpt\-5\.4\-image\-2$', 'standard', 0, '-infinity', NULL, 800000000, 1500000000, 200000000, NULL, NULL, NULL, NULL, NULL, 'genai-prices: openai/gpt-5.4-image-2'),
('openai', 'gpt-audio', '(?:^gpt\-audio$|^gpt\-audio\-2025\-08\-28$|^gpt\-audio\-1\.5$)', 'standard', 0, '-infinity', NULL, 250000000, 1000000000, NULL, NULL, NULL, NULL, 3200000000, 6400000000, 'genai-prices: openai/gpt-audio'),
('openai', 'gpt-audio-mini', '(?:^gpt\-audio\-mini$|^gpt\-audio\-mini\-2025\-10\-06$|^gpt\-audio\-mini\-2025\-12\-15$)', 'standard', 0, '-infinity', NULL, 60000000, 240000000, NULL, NULL, NULL, NULL, 1000000000, 2000000000, 'genai-prices: openai/gpt-audio-mini'),
('openai', 'gpt-chat-latest', '^gpt\-chat\-latest$', 'standard', 0, '-infinity', NULL, 500000000, 3000000000, 50000000, NULL, NULL, NULL, NULL, NULL, 'genai-prices: openai/gpt-chat-latest'),
('openai', 'gpt-image-1-mini', '(?:^gpt\-image\-1\-mini$)', 'standard', 0, '-infinity', NULL, 200000000, 0, 20000000, NULL, NULL, NULL, NULL, NULL, 'genai-prices: openai/gpt-image-1-mini'),
('openai', 'gpt-image-1.5', '(?:^gpt\-image\-1\.5$|^gpt\-image\-1\.5\-2025\-12\-16$)', 'standard', 0, '-infinity', NULL, 500000000, 1000000000, 125000000, NULL, NULL, NULL, NULL, NULL, 'genai-prices: openai/gpt-image-1.5'),
('openai', 'gpt-image-2', '(?:^gpt\-image\-2$|^gpt\-image\-2\-2026\-04\-21$)', 'standard', 0, '-infinity', NULL, 500000000, 0, 125000000, NULL, NULL, NULL, NULL, NULL, 'genai-prices: openai/gpt-image-2'),
('openai', 'gpt-oss-120b', '^gpt\-oss\-120b$', 'standard', 0, '-infinity', NULL, 3900000, 18000000, NULL, NULL, NULL, NULL, NULL, NULL, 'genai-prices: openai/gpt-oss-120b'),
('openai', 'gpt-oss-20b', '^gpt\-oss\-20b$', 'standard', 0, '-infinity', NULL, 2900000, 14000000, NULL, NULL, NULL, NULL, NULL, NULL, 'genai-prices: openai/gpt-oss-20b'),
('openai', 'gpt-oss-safeguard-20b', '^gpt\-oss\-safeguard\-20b$', 'standard', 0, '-infinity', NULL, 7500000, 30000000, 3700000, NULL, NULL, NULL, NULL, NULL, 'genai-prices: openai/gpt-oss-safeguard-20b'),
('openai', 'gpt-realtime', '(?:^gpt\-realtime$|^gpt\-realtime\-2025\-08\-28$|^gpt\-realtime\-1\.5$)', 'standard', 0, '-infinity', NULL, 400000000, 1600000000, 40000000, NULL, NULL, NULL, 3200000000, 6400000000, 'genai-prices: openai/gpt-realtime'),
('openai', 'gpt-realtime-2', '(?:^gpt\-realtime\-2$)', 'standard', 0, '-infinity', NULL, 400000000, 2400000000, 40000000, NULL, NULL, NULL, 3200000000, 6400000000, 'genai-prices: openai/gpt-realtime-2'),
('openai', 'gpt-realtime-mini', '(?:^gpt\-realtime\-mini$|^gpt\-realtime\-mini\-2025\-12\-15$|^gpt\-realtime\-mini\-2025\-10\-06$)', 'standard', 0, '-infinity', NULL, 60000000, 240000000, 6000000, NULL, NULL, NULL, 1000000000, 2000000000, 'genai-prices: openai/gpt-realtime-mini'),
('openai', 'moderation', 'moderation', 'standard', 0, '-infinity', NULL, 0, 0, NULL, NULL, NULL, NULL, NULL, NULL, 'genai-prices: openai/moderation'),
('openai', 'o3-deep-research', '(?:^o3\-deep\-research$|^o3\-deep\-research\-2025\-06\-26$)', 'standard', 0, '-infinity', NULL, 1000000000, 4000000000, 250000000, NULL, NULL, NULL, NULL, NULL, 'genai-prices: openai/o3-deep-research'),
('openai', 'o4-mini-deep-research', '(?:^o4\-mini\-deep\-research$|^o4\-mini\-deep\-research\-2025\-06\-26$)', 'standard', 0, '-infinity', NULL, 200000000, 800000000, 50000000, NULL, NULL, NULL, NULL, NULL, 'genai-prices: openai/o4-mini-deep-research')
ON CONFLICT DO NOTHING;
UPDATE aos_cus.cus_model_prices p SET context_window = w.context_window FROM (VALUES
('anthropic', 'claude-fable-5', 1000000),
('anthropic', 'claude-opus-4-6', 200000),
('anthropic', 'claude-opus-4-7', 1000000),
('anthropic', 'claude-opus-4-8', 1000000),
('anthropic', 'claude-opus-5', 1000000),
('anthropic', 'claude-sonnet-4-6', 1000000),
('anthropic', 'claude-sonnet-5', 1000000),
('google', 'gemini-2.0-flash', 1000000),
('google', 'gemini-2.5-flash-lite', 1000000),
('google', 'gemini-3-flash-preview', 1000000),
('google', 'gemini-3.1-flash-lite', 1000000),
('google', 'gemini-3.5-flash', 1000000),
('google', 'gemini-3.5-flash-lite', 1000000),
('google', 'gemini-3.6-flash', 1000000),
('google', 'gemini-pro', 32768),
('openai', 'gpt-3.5-turbo', 16385),
('openai', 'gpt-3.5-turbo-0613', 16385),
('openai', 'gpt-3.5-turbo-1106', 16385),
('openai', 'gpt-3.5-turbo-16k', 16385),
('openai', 'gpt-3.5-turbo-instruct', 16385),
('openai', 'gpt-4', 8192),
('openai', 'gpt-4-32k', 32000),
('openai', 'gpt-4-turbo', 128000),
('openai', 'gpt-4.1', 1000000),
('openai', 'gpt-4.1-mini', 1000000),
('openai', 'gpt-4.1-nano', 1000000),
('openai', 'gpt-4o', 128000),
('openai', 'gpt-4o-audio-preview', 128000),
('openai', 'gpt-4o-mini', 128000),
('openai', 'gpt-5', 400000),
('openai', 'gpt-5-mini', 400000),
('openai', 'gpt-5-nano', 400000),
('openai', 'gpt-5-pro', 400000),
('openai', 'gpt-5.1', 400000),
('openai', 'gpt-5.2', 400000),
('openai', 'gpt-5.2-pro', 400000),
('openai', 'gpt-5.3-codex', 400000),
('openai', 'gpt-5.4', 1050000),
('openai', 'gpt-5.4-mini', 400000),
('openai', 'gpt-5.4-nano', 400000),
('openai', 'gpt-5.4-pro', 1050000),
('openai', 'gpt-5.6-luna', 1050000),
('openai', 'gpt-5.6-sol', 1050000),
('openai', 'gpt-5.6-terra', 1050000),
('openai', 'o1', 128000),
('openai', 'o1-mini', 128000),
('openai', 'text-embedding-3-large', 8192),
('openai', 'text-embedding-3-small', 8192),
('openai', 'text-embedding-ada-002', 8192)
) AS w(provider, model, context_window)
 WHERE p.provider::pg_catalog.text OPERATOR(pg_catalog.=) w.provider
   AND p.model OPERATOR(pg_catalog.=) w.model AND p.source OPERATOR(pg_catalog.~~) 'langfuse: %';
-- END GENERATED by scripts/price_seed.py.

-- Model facts (issue 16): estimate_call() sizes and prices a call before it is made; call_input_tokens() is its count.
-- Estimated input tokens of a call's input (a chat messages array or a string), the one place a pre-call count
-- is made: estimate_tokens() per string, plus the chat format's overhead (3 per message, 1 per name, 3 for the
-- reply). Non-text content parts (images, audio, files) are not counted. 22023 names a malformed element;
-- over 4 MiB of JSON text is 54000.
CREATE FUNCTION aos_cus.call_input_tokens(model text, input jsonb) RETURNS bigint
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    total bigint := 3;
    size bigint;
    m jsonb;
    i bigint;
    part jsonb;
    j bigint;
    kv record;
BEGIN
    IF call_input_tokens.input IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = '22004', MESSAGE = 'input must not be null';
    END IF;
    size := pg_catalog.octet_length(call_input_tokens.input::pg_catalog.text);
    IF size OPERATOR(pg_catalog.>) 4194304 THEN
        RAISE EXCEPTION USING ERRCODE = '54000',
            MESSAGE = pg_catalog.format('input is %s bytes of JSON, more than the limit of 4194304', size);
    END IF;
    IF pg_catalog.jsonb_typeof(call_input_tokens.input) OPERATOR(pg_catalog.=) 'string' THEN
        RETURN aos_cus.estimate_tokens(call_input_tokens.input OPERATOR(pg_catalog.#>>) '{}'::pg_catalog.text[], call_input_tokens.model);
    END IF;
    IF pg_catalog.jsonb_typeof(call_input_tokens.input) OPERATOR(pg_catalog.<>) 'array'
       OR pg_catalog.jsonb_array_length(call_input_tokens.input) OPERATOR(pg_catalog.=) 0 THEN
        RAISE EXCEPTION USING ERRCODE = '22023',
            MESSAGE = 'input must be a string or a non-empty chat messages array';
    END IF;
    FOR m, i IN SELECT e.value, e.ord OPERATOR(pg_catalog.-) 1
                  FROM pg_catalog.jsonb_array_elements(call_input_tokens.input) WITH ORDINALITY AS e(value, ord) LOOP
        IF pg_catalog.jsonb_typeof(m) OPERATOR(pg_catalog.<>) 'object' THEN
            RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = pg_catalog.format('input[%s] must be a JSON object', i);
        END IF;
        IF pg_catalog.jsonb_typeof(m OPERATOR(pg_catalog.->) 'role') IS DISTINCT FROM 'string' THEN
            RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = pg_catalog.format('input[%s].role must be a string', i);
        END IF;
        total := total OPERATOR(pg_catalog.+) 3;
        FOR kv IN SELECT e.key, e.value FROM pg_catalog.jsonb_each(m) AS e(key, value) LOOP
            IF kv.key OPERATOR(pg_catalog.=) 'content' AND pg_catalog.jsonb_typeof(kv.value) OPERATOR(pg_catalog.=) 'array' THEN
                FOR part, j IN SELECT e.value, e.ord OPERATOR(pg_catalog.-) 1
                                 FROM pg_catalog.jsonb_array_elements(kv.value) WITH ORDINALITY AS e(value, ord) LOOP
                    IF pg_catalog.jsonb_typeof(part) OPERATOR(pg_catalog.<>) 'object' THEN
                        RAISE EXCEPTION USING ERRCODE = '22023',
                            MESSAGE = pg_catalog.format('input[%s].content[%s] must be a JSON object', i, j);
                    END IF;
                    IF part OPERATOR(pg_catalog.?) 'text' THEN
                        IF pg_catalog.jsonb_typeof(part OPERATOR(pg_catalog.->) 'text') OPERATOR(pg_catalog.<>) 'string' THEN
                            RAISE EXCEPTION USING ERRCODE = '22023',
                                MESSAGE = pg_catalog.format('input[%s].content[%s].text must be a string', i, j);
                        END IF;
                        total := total OPERATOR(pg_catalog.+)
                                 aos_cus.estimate_tokens(part OPERATOR(pg_catalog.->>) 'text', call_input_tokens.model);
                    END IF;
                END LOOP;
            ELSIF kv.key OPERATOR(pg_catalog.=) 'content' AND pg_catalog.jsonb_typeof(kv.value) OPERATOR(pg_catalog.<>) 'string'
                  AND pg_catalog.jsonb_typeof(kv.value) OPERATOR(pg_catalog.<>) 'null' THEN
                RAISE EXCEPTION USING ERRCODE = '22023',
                    MESSAGE = pg_catalog.format('input[%s].content must be a string, an array of parts or null', i);
            ELSIF pg_catalog.jsonb_typeof(kv.value) OPERATOR(pg_catalog.=) 'string' THEN
                total := total OPERATOR(pg_catalog.+) aos_cus.estimate_tokens(kv.value OPERATOR(pg_catalog.#>>) '{}'::pg_catalog.text[],
                                                                               call_input_tokens.model)
                         OPERATOR(pg_catalog.+) CASE WHEN kv.key OPERATOR(pg_catalog.=) 'name' THEN 1 ELSE 0 END;
            ELSIF pg_catalog.jsonb_typeof(kv.value) OPERATOR(pg_catalog.<>) 'null' THEN
                -- Tool calls and other structured members: their JSON text.
                total := total OPERATOR(pg_catalog.+) aos_cus.estimate_tokens(kv.value::pg_catalog.text, call_input_tokens.model);
            END IF;
        END LOOP;
    END LOOP;
    RETURN total;
END
$$;
COMMENT ON FUNCTION aos_cus.call_input_tokens(text, jsonb) IS
    'estimated input tokens of a chat messages array or a string (estimate_tokens plus the chat overhead)';

-- A call's size and cost before it is made, with the prices and limits in force at "at".
CREATE FUNCTION aos_cus.estimate_call(provider text, model text, input jsonb, max_output_tokens integer,
    service_tier text DEFAULT 'standard', at timestamptz DEFAULT pg_catalog.now(),
    OUT price_provider text, OUT canonical_model text, OUT input_tokens bigint, OUT worst_case_output_tokens bigint,
    OUT context_window integer, OUT exceeds_context_window boolean, OUT estimated_cost_microcents bigint,
    OUT worst_case_cost_microcents bigint, OUT reason text)
    LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    model_max integer;
BEGIN
    IF estimate_call.provider IS NULL OR estimate_call.model IS NULL OR estimate_call.service_tier IS NULL
       OR estimate_call.at IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = '22004', MESSAGE = 'provider, model, service_tier and at must not be null';
    END IF;
    IF estimate_call.max_output_tokens OPERATOR(pg_catalog.<=) 0 THEN
        RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'max_output_tokens must be positive';
    END IF;
    SELECT r.price_provider, r.canonical_model INTO estimate_call.price_provider, estimate_call.canonical_model
      FROM aos_cus.resolve_model(estimate_call.provider, estimate_call.model) r;
    estimate_call.input_tokens := aos_cus.call_input_tokens(estimate_call.model, estimate_call.input);
    IF estimate_call.canonical_model IS NULL THEN
        reason := pg_catalog.format('no price for model %L of provider %s', pg_catalog.left(estimate_call.model, 200),
                                    estimate_call.provider);
        worst_case_output_tokens := estimate_call.max_output_tokens;
        RETURN;
    END IF;
    -- Limits of the model's base row in force at "at".
    SELECT p.context_window, p.max_output_tokens INTO estimate_call.context_window, model_max
      FROM aos_cus.cus_model_prices p
     WHERE p.provider OPERATOR(pg_catalog.=) estimate_call.price_provider::aos_cus.provider
       AND p.model OPERATOR(pg_catalog.=) estimate_call.canonical_model
       AND p.effective_from OPERATOR(pg_catalog.<=) estimate_call.at
     ORDER BY p.min_prompt_tokens, p.effective_from DESC, p.id DESC
     LIMIT 1;
    worst_case_output_tokens := COALESCE(estimate_call.max_output_tokens, model_max,
        CASE WHEN estimate_call.context_window IS NOT NULL
             THEN GREATEST(estimate_call.context_window OPERATOR(pg_catalog.-) estimate_call.input_tokens, 0) END);
    exceeds_context_window := estimate_call.input_tokens OPERATOR(pg_catalog.+)
                              COALESCE(worst_case_output_tokens, 0) OPERATOR(pg_catalog.>) estimate_call.context_window;
    estimated_cost_microcents := aos_cus.cost_microcents(estimate_call.provider, estimate_call.model,
        estimate_call.input_tokens, 0, service_tier => estimate_call.service_tier, at => estimate_call.at);
    -- Worst case: every output token at the higher of the output and reasoning prices.
    worst_case_cost_microcents := CASE WHEN worst_case_output_tokens IS NOT NULL THEN GREATEST(
        aos_cus.cost_microcents(estimate_call.provider, estimate_call.model, estimate_call.input_tokens,
            worst_case_output_tokens, service_tier => estimate_call.service_tier, at => estimate_call.at),
        aos_cus.cost_microcents(estimate_call.provider, estimate_call.model, estimate_call.input_tokens,
            worst_case_output_tokens, reasoning_tokens => worst_case_output_tokens,
            service_tier => estimate_call.service_tier, at => estimate_call.at)) END;
    IF estimated_cost_microcents IS NULL THEN
        reason := pg_catalog.format('no price of model %s in force at %s UTC', estimate_call.canonical_model,
                                    (estimate_call.at AT TIME ZONE 'UTC')::pg_catalog.text);
    ELSIF worst_case_output_tokens IS NULL THEN
        reason := 'max_output_tokens not given and the model''s output limit and context window are unknown';
    END IF;
END
$$;
COMMENT ON FUNCTION aos_cus.estimate_call(text, text, jsonb, integer, text, timestamptz) IS
    'estimated input tokens, worst-case output tokens, estimated and worst-case cost and context window check of a call';

REVOKE ALL ON FUNCTION aos_cus.call_input_tokens(text, jsonb),
    aos_cus.estimate_call(text, text, jsonb, integer, text, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION aos_cus.call_input_tokens(text, jsonb),
    aos_cus.estimate_call(text, text, jsonb, integer, text, timestamptz)
    TO aos_cus_admin, aos_cus_app, aos_cus_reader, aos_cus_worker;

-- OpenTelemetry GenAI (issue 16): extract_usage() also reads span attributes (provider 'otel', or any provider).
COMMENT ON FUNCTION aos_cus.extract_usage(text, jsonb) IS
    'token buckets (cus_llm_usage column names) of a provider response or usage object, or of OpenTelemetry GenAI span attributes';

-- Public surface (issue 21): the extension lives in pg_catalog and owns schema aos_cus (DROP EXTENSION removes it);
-- the helpers of the API move to schema aos_cus_internal, which PostgREST does not expose, so pg_proc of aos_cus is
-- exactly the README's function list. 0.1.0 had aos_cus as the extension's schema, which cannot be a member.
UPDATE pg_catalog.pg_extension SET extnamespace = 'pg_catalog'::pg_catalog.regnamespace WHERE extname OPERATOR(pg_catalog.=) 'aos_cus';
DELETE FROM pg_catalog.pg_depend
 WHERE classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_extension'::pg_catalog.regclass
   AND objid OPERATOR(pg_catalog.=) (SELECT oid FROM pg_catalog.pg_extension WHERE extname OPERATOR(pg_catalog.=) 'aos_cus')
   AND refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_namespace'::pg_catalog.regclass;
ALTER EXTENSION aos_cus ADD SCHEMA aos_cus;
COMMENT ON SCHEMA aos_cus IS 'aos_cus API: the functions, tables and views README.md documents';
CREATE SCHEMA aos_cus_internal;
COMMENT ON SCHEMA aos_cus_internal IS 'aos_cus helpers: not API, not exposed by PostgREST';
GRANT USAGE ON SCHEMA aos_cus_internal TO aos_cus_admin, aos_cus_app, aos_cus_reader, aos_cus_worker, aos_cus_operator;
-- Errors of the integration API carry no CONTEXT lines of its helpers (issue 21): they are raised again through this.
CREATE FUNCTION aos_cus_internal.raise_error(sqlstate text, message text, detail text, hint text) RETURNS void
    AS 'MODULE_PATHNAME', 'aos_cus_raise_error'
    LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION aos_cus_internal.raise_error(text, text, text, text) IS
    'raise an error with no CONTEXT lines (empty detail or hint: none); how the integration API re-raises its helpers'' errors';
REVOKE ALL ON FUNCTION aos_cus_internal.raise_error(text, text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION aos_cus_internal.raise_error(text, text, text, text)
    TO aos_cus_admin, aos_cus_app, aos_cus_reader, aos_cus_worker;
ALTER FUNCTION aos_cus.apply_limits(i aos_cus.cus_integrations, limits jsonb) SET SCHEMA aos_cus_internal;
ALTER FUNCTION aos_cus.check_credential_ref(ref text) SET SCHEMA aos_cus_internal;
ALTER FUNCTION aos_cus.check_integration_fields(i aos_cus.cus_integrations) SET SCHEMA aos_cus_internal;
ALTER FUNCTION aos_cus.check_integration_name(name text) SET SCHEMA aos_cus_internal;
ALTER FUNCTION aos_cus.check_keys(obj jsonb, argname text, allowed text[]) SET SCHEMA aos_cus_internal;
ALTER FUNCTION aos_cus.enable_tenant_rls(tbl regclass) SET SCHEMA aos_cus_internal;
ALTER FUNCTION aos_cus.fold_usage(filter text, a pg_snapshot, b pg_snapshot, from_day date, to_day date) SET SCHEMA aos_cus_internal;
ALTER FUNCTION aos_cus.health_queue_wake() SET SCHEMA aos_cus_internal;
ALTER FUNCTION aos_cus.integration_for_update(tenant_id uuid, integration_id uuid) SET SCHEMA aos_cus_internal;
ALTER FUNCTION aos_cus.integration_lifecycle() SET SCHEMA aos_cus_internal;
ALTER FUNCTION aos_cus.integration_of(i aos_cus.cus_integrations) SET SCHEMA aos_cus_internal;
ALTER FUNCTION aos_cus.is_iana_timezone(name text) SET SCHEMA aos_cus_internal;
ALTER FUNCTION aos_cus.limit_choice(limits jsonb, key text, choices text[]) SET SCHEMA aos_cus_internal;
ALTER FUNCTION aos_cus.limit_integer(limits jsonb, key text, low bigint, high bigint) SET SCHEMA aos_cus_internal;
ALTER FUNCTION aos_cus.limits_changed_trigger() SET SCHEMA aos_cus_internal;
ALTER FUNCTION aos_cus.lock_rollup_state(OUT last_snapshot pg_snapshot, OUT rebuilt bigint) SET SCHEMA aos_cus_internal;
ALTER FUNCTION aos_cus.patch_text(patch jsonb, key text, old text) SET SCHEMA aos_cus_internal;
ALTER FUNCTION aos_cus.platform_table_guard() SET SCHEMA aos_cus_internal;
ALTER FUNCTION aos_cus.price_providers(provider text) SET SCHEMA aos_cus_internal;
ALTER FUNCTION aos_cus.prices_changed() SET SCHEMA aos_cus_internal;
ALTER FUNCTION aos_cus.rollup_snapshot() SET SCHEMA aos_cus_internal;
ALTER FUNCTION aos_cus.saturate(n numeric) SET SCHEMA aos_cus_internal;
ALTER FUNCTION aos_cus.set_integration_status(tenant_id uuid, integration_id uuid, new_status text) SET SCHEMA aos_cus_internal;
ALTER FUNCTION aos_cus.tenant_logins_changed() SET SCHEMA aos_cus_internal;
ALTER FUNCTION aos_cus.usage_price_trigger() SET SCHEMA aos_cus_internal;
ALTER FUNCTION aos_cus.usage_settle_trigger() SET SCHEMA aos_cus_internal;
CREATE OR REPLACE FUNCTION aos_cus_internal.enable_tenant_rls(tbl regclass) RETURNS void
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
CREATE OR REPLACE FUNCTION aos_cus_internal.platform_table_guard() RETURNS trigger
    AS 'MODULE_PATHNAME', 'aos_cus_platform_table_guard'
    LANGUAGE C;
CREATE OR REPLACE FUNCTION aos_cus_internal.tenant_logins_changed() RETURNS trigger
    AS 'MODULE_PATHNAME', 'aos_cus_tenant_logins_changed'
    LANGUAGE C;
CREATE OR REPLACE FUNCTION aos_cus_internal.check_credential_ref(ref text) RETURNS boolean
    AS 'MODULE_PATHNAME', 'aos_cus_check_credential_ref'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE OR REPLACE FUNCTION aos_cus_internal.prices_changed() RETURNS trigger
    AS 'MODULE_PATHNAME', 'aos_cus_prices_changed'
    LANGUAGE C;
CREATE OR REPLACE FUNCTION aos_cus_internal.price_providers(provider text) RETURNS text[]
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN CASE provider
        WHEN 'azure_openai' THEN ARRAY['azure_openai', 'openai']
        WHEN 'aws_bedrock' THEN ARRAY['aws_bedrock', 'anthropic']
        WHEN 'google' THEN ARRAY['google', 'anthropic']
        ELSE ARRAY[provider] END;
CREATE OR REPLACE FUNCTION aos_cus.resolve_model(provider text, model text)
    RETURNS TABLE (price_provider text, canonical_model text)
    LANGUAGE plpgsql STABLE PARALLEL SAFE ROWS 1 SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF resolve_model.provider IS NULL OR resolve_model.model IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = '22004', MESSAGE = 'provider and model must not be null';
    END IF;
    IF NOT resolve_model.provider = ANY (ARRAY['openai', 'anthropic', 'google', 'azure_openai', 'aws_bedrock', 'mistral', 'custom']) THEN
        RAISE EXCEPTION USING ERRCODE = '22023',
            MESSAGE = pg_catalog.format('provider %L is not a known provider', pg_catalog.left(resolve_model.provider, 64)),
            HINT = 'Use one of openai, anthropic, google, azure_openai, aws_bedrock, mistral, custom.';
    END IF;
    RETURN QUERY
    SELECT c.provider, c.model
      FROM (SELECT pg_catalog.lower(pg_catalog.btrim(resolve_model.model)) AS v1) n1
     CROSS JOIN LATERAL (SELECT pg_catalog.regexp_replace(n1.v1, '^[a-z0-9_.-]+/', '') AS v2) n2
     CROSS JOIN LATERAL (VALUES (1, n1.v1), (2, n2.v2),
                                (3, pg_catalog.regexp_replace(n2.v2, '-(\d{4}-\d{2}-\d{2}|\d{8})$', ''))) AS names(variant, name)
     CROSS JOIN LATERAL pg_catalog.unnest(aos_cus_internal.price_providers(resolve_model.provider)) WITH ORDINALITY AS pp(provider, pref)
      JOIN LATERAL (SELECT DISTINCT p.provider::text AS provider, p.model,
                           CASE WHEN pg_catalog.lower(p.model) = names.name THEN 1
                                WHEN names.name = ANY (p.aliases) THEN 2
                                WHEN names.name ~* p.match_pattern THEN 3 END AS step
                      FROM aos_cus.cus_model_prices p
                     WHERE p.provider = pp.provider) c ON c.step IS NOT NULL
     ORDER BY names.variant, pp.pref, c.step, pg_catalog.length(c.model) DESC, c.model
     LIMIT 1;
END
$$;
CREATE OR REPLACE FUNCTION aos_cus_internal.integration_of(i aos_cus.cus_integrations) RETURNS aos_cus.integration
    LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT ROW(i.tenant_id, i.id, i.name, i.provider, i.status,
               pg_catalog.split_part(i.credential_ref, '://', 1), i.credential_hint, i.base_url, i.config,
               pg_catalog.jsonb_build_object(
                   'budget_microcents', i.budget_microcents, 'budget_period', i.budget_period,
                   'token_limit', i.token_limit, 'token_period', i.token_period,
                   'rpm', i.rpm, 'tpm', i.tpm, 'warn_at_pct', i.warn_at_pct,
                   'mode', i.enforcement_mode, 'timezone', i.timezone),
               i.health_state, i.health_checked_at, i.health_latency_ms, i.health_error,
               i.created_at, i.updated_at, i.deleted_at)::aos_cus.integration
$$;
CREATE OR REPLACE FUNCTION aos_cus_internal.is_iana_timezone(name text) RETURNS boolean
    AS 'MODULE_PATHNAME', 'aos_cus_is_iana_timezone'
    LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE OR REPLACE FUNCTION aos_cus_internal.integration_lifecycle() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF TG_TABLE_SCHEMA <> 'aos_cus' OR TG_TABLE_NAME <> 'cus_integrations' THEN
        RAISE EXCEPTION 'aos_cus_internal.integration_lifecycle() may only be attached to aos_cus.cus_integrations, not to %.%',
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
CREATE OR REPLACE FUNCTION aos_cus_internal.limit_integer(limits jsonb, key text, low bigint, high bigint) RETURNS bigint
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v jsonb := limits -> key;
    n numeric;
BEGIN
    IF v IS NULL OR pg_catalog.jsonb_typeof(v) = 'null' THEN
        RETURN NULL;
    END IF;
    IF pg_catalog.jsonb_typeof(v) <> 'number' THEN
        RAISE EXCEPTION 'limits.% must be an integer, not %', key, pg_catalog.jsonb_typeof(v) USING ERRCODE = '22023';
    END IF;
    n := (v #>> '{}')::numeric;
    IF n <> pg_catalog.trunc(n) THEN
        RAISE EXCEPTION 'limits.% must be an integer, not %', key, v USING ERRCODE = '22023';
    END IF;
    IF n < low OR n > high THEN
        RAISE EXCEPTION 'limits.% must be between % and %, not %', key, low, high, v USING ERRCODE = '22003';
    END IF;
    RETURN n::bigint;
END
$$;
CREATE OR REPLACE FUNCTION aos_cus_internal.limit_choice(limits jsonb, key text, choices text[]) RETURNS text
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v jsonb := limits -> key;
BEGIN
    IF v IS NULL OR pg_catalog.jsonb_typeof(v) = 'null' THEN
        RETURN NULL;
    END IF;
    IF pg_catalog.jsonb_typeof(v) <> 'string' OR NOT (v #>> '{}') = ANY (choices) THEN
        RAISE EXCEPTION 'limits.% must be one of %, not %', key, pg_catalog.array_to_string(choices, ', '), v
            USING ERRCODE = '22023';
    END IF;
    RETURN v #>> '{}';
END
$$;
CREATE OR REPLACE FUNCTION aos_cus_internal.apply_limits(i aos_cus.cus_integrations, limits jsonb) RETURNS aos_cus.cus_integrations
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    unknown text;
    periods constant text[] := ARRAY['day', 'week', 'month', 'total'];
    tz text;
BEGIN
    IF limits IS NULL OR pg_catalog.jsonb_typeof(limits) = 'null' THEN
        RAISE EXCEPTION 'limits must not be null' USING ERRCODE = '22004';
    END IF;
    IF pg_catalog.jsonb_typeof(limits) <> 'object' THEN
        RAISE EXCEPTION 'limits must be a JSON object, not %', pg_catalog.jsonb_typeof(limits) USING ERRCODE = '22023';
    END IF;
    SELECT pg_catalog.string_agg(k, ', ' ORDER BY k) INTO unknown FROM pg_catalog.jsonb_object_keys(limits) k
     WHERE k <> ALL (ARRAY['budget_microcents', 'budget_period', 'token_limit', 'token_period', 'rpm', 'tpm',
                           'warn_at_pct', 'mode', 'enforcement_mode', 'timezone']);
    IF unknown IS NOT NULL THEN
        RAISE EXCEPTION 'limits has unknown key(s): %', unknown USING ERRCODE = '22023',
            HINT = 'Known keys: budget_microcents, budget_period, token_limit, token_period, rpm, tpm, warn_at_pct, mode, timezone.';
    END IF;
    IF limits ? 'budget_microcents' THEN
        i.budget_microcents := aos_cus_internal.limit_integer(limits, 'budget_microcents', 0, 9223372036854775807);
    END IF;
    IF limits ? 'budget_period' THEN
        i.budget_period := coalesce(aos_cus_internal.limit_choice(limits, 'budget_period', periods), 'month');
    END IF;
    IF limits ? 'token_limit' THEN
        i.token_limit := aos_cus_internal.limit_integer(limits, 'token_limit', 0, 9223372036854775807);
    END IF;
    IF limits ? 'token_period' THEN
        i.token_period := coalesce(aos_cus_internal.limit_choice(limits, 'token_period', periods), 'month');
    END IF;
    IF limits ? 'rpm' THEN
        i.rpm := aos_cus_internal.limit_integer(limits, 'rpm', 1, 2147483647);
    END IF;
    IF limits ? 'tpm' THEN
        i.tpm := aos_cus_internal.limit_integer(limits, 'tpm', 1, 9223372036854775807);
    END IF;
    IF limits ? 'warn_at_pct' THEN
        i.warn_at_pct := coalesce(aos_cus_internal.limit_integer(limits, 'warn_at_pct', 1, 100), 80);
    END IF;
    -- mode is the documented name (reads return it); enforcement_mode, the column's, is accepted too.
    IF limits ? 'mode' AND limits ? 'enforcement_mode' THEN
        RAISE EXCEPTION 'limits has both mode and enforcement_mode: give mode only' USING ERRCODE = '22023';
    END IF;
    IF limits ? 'mode' THEN
        i.enforcement_mode := coalesce(aos_cus_internal.limit_choice(limits, 'mode', ARRAY['enforce', 'warn', 'off']), 'enforce');
    ELSIF limits ? 'enforcement_mode' THEN
        i.enforcement_mode := coalesce(aos_cus_internal.limit_choice(limits, 'enforcement_mode', ARRAY['enforce', 'warn', 'off']), 'enforce');
    END IF;
    IF limits ? 'timezone' THEN
        IF pg_catalog.jsonb_typeof(limits -> 'timezone') NOT IN ('string', 'null') THEN
            RAISE EXCEPTION 'limits.timezone must be a string, not %', limits -> 'timezone' USING ERRCODE = '22023';
        END IF;
        tz := coalesce(limits ->> 'timezone', 'UTC');
        IF pg_catalog.length(tz) > 64 OR NOT aos_cus_internal.is_iana_timezone(tz) THEN
            RAISE EXCEPTION 'limits.timezone must be an IANA time zone such as Europe/Paris, not %', limits -> 'timezone'
                USING ERRCODE = '22023',
                HINT = 'SELECT name FROM pg_timezone_names lists them.';
        END IF;
        i.timezone := tz;
    END IF;
    RETURN i;
END
$$;
CREATE OR REPLACE FUNCTION aos_cus_internal.check_integration_name(name text) RETURNS text
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF name IS NULL THEN
        RAISE EXCEPTION 'name must not be null' USING ERRCODE = '22004';
    END IF;
    IF pg_catalog.length(name) NOT BETWEEN 1 AND 200 OR name ~ '[[:cntrl:]]' OR pg_catalog.btrim(name) <> name THEN
        RAISE EXCEPTION 'name must be 1 to 200 characters without control characters or surrounding spaces, not %',
            pg_catalog.to_jsonb(CASE WHEN pg_catalog.length(name) > 40 THEN pg_catalog.left(name, 40) || '...' ELSE name END) USING ERRCODE = '22023';
    END IF;
    RETURN name;
END
$$;
CREATE OR REPLACE FUNCTION aos_cus_internal.check_integration_fields(i aos_cus.cus_integrations) RETURNS aos_cus.cus_integrations
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM aos_cus_internal.check_integration_name(i.name);
    IF i.base_url IS NOT NULL AND (pg_catalog.length(i.base_url) > 2048 OR i.base_url !~ '^https?://[^\s]+$') THEN
        RAISE EXCEPTION 'base_url must be an http:// or https:// URL of at most 2048 characters' USING ERRCODE = '22023';
    END IF;
    IF i.config IS NULL OR pg_catalog.jsonb_typeof(i.config) <> 'object' THEN
        RAISE EXCEPTION 'config must be a JSON object, not %', coalesce(pg_catalog.jsonb_typeof(i.config), 'null')
            USING ERRCODE = '22023';
    END IF;
    IF pg_catalog.pg_column_size(i.config) > 65536 THEN
        RAISE EXCEPTION 'config must be at most 64 kB' USING ERRCODE = '54000';
    END IF;
    RETURN i;
END
$$;
CREATE OR REPLACE FUNCTION aos_cus_internal.patch_text(patch jsonb, key text, old text) RETURNS text
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NOT patch ? key THEN
        RETURN old;
    END IF;
    IF pg_catalog.jsonb_typeof(patch -> key) NOT IN ('string', 'null') THEN
        RAISE EXCEPTION '% must be a string, not %', key, patch -> key USING ERRCODE = '22023';
    END IF;
    RETURN patch ->> key;
END
$$;
CREATE OR REPLACE FUNCTION aos_cus_internal.check_keys(obj jsonb, argname text, allowed text[]) RETURNS void
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    unknown text;
BEGIN
    IF obj IS NULL THEN
        RAISE EXCEPTION '% must not be null', argname USING ERRCODE = '22004';
    END IF;
    IF pg_catalog.jsonb_typeof(obj) <> 'object' THEN
        RAISE EXCEPTION '% must be a JSON object, not %', argname, pg_catalog.jsonb_typeof(obj) USING ERRCODE = '22023';
    END IF;
    SELECT pg_catalog.string_agg(k, ', ' ORDER BY k) INTO unknown FROM pg_catalog.jsonb_object_keys(obj) k WHERE k <> ALL (allowed);
    IF unknown IS NOT NULL THEN
        RAISE EXCEPTION '% has unknown key(s): %', argname, unknown USING ERRCODE = '22023',
            HINT = pg_catalog.format('Known keys: %s.', pg_catalog.array_to_string(allowed, ', '));
    END IF;
END
$$;
CREATE OR REPLACE FUNCTION aos_cus_internal.integration_for_update(tenant_id uuid, integration_id uuid) RETURNS aos_cus.cus_integrations
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    i aos_cus.cus_integrations;
BEGIN
    PERFORM aos_cus.assert_tenant(tenant_id);
    IF integration_id IS NULL THEN
        RAISE EXCEPTION 'integration_id must not be null' USING ERRCODE = '22004';
    END IF;
    SELECT * INTO i FROM aos_cus.cus_integrations c
     WHERE c.tenant_id = integration_for_update.tenant_id AND c.id = integration_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'integration % does not exist for this tenant', integration_id USING ERRCODE = '02000';
    END IF;
    RETURN i;
END
$$;
CREATE OR REPLACE FUNCTION aos_cus.create_integration(tenant_id uuid, name text, provider text, credential text,
                                           options jsonb DEFAULT '{}') RETURNS uuid
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    e_state text;
    e_message text;
    e_detail text;
    e_hint text;
    i aos_cus.cus_integrations;
    stored record;
    constraint_name text;
BEGIN
    PERFORM aos_cus.assert_tenant(tenant_id);
    PERFORM aos_cus_internal.check_keys(options, 'options', ARRAY['id', 'base_url', 'config', 'limits', 'enabled']);
    IF provider IS NULL THEN
        RAISE EXCEPTION 'provider must not be null' USING ERRCODE = '22004';
    END IF;
    IF provider NOT IN ('openai', 'anthropic', 'google', 'azure_openai', 'aws_bedrock', 'mistral', 'custom') THEN
        RAISE EXCEPTION 'provider must be one of openai, anthropic, google, azure_openai, aws_bedrock, mistral, custom, not %',
            pg_catalog.to_jsonb(CASE WHEN pg_catalog.length(provider) > 40 THEN pg_catalog.left(provider, 40) || '...' ELSE provider END) USING ERRCODE = '22023';
    END IF;
    IF options ? 'id' THEN
        IF pg_catalog.jsonb_typeof(options -> 'id') <> 'string'
           OR (options ->> 'id') !~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
           OR (options ->> 'id')::uuid = '00000000-0000-0000-0000-000000000000' THEN
            RAISE EXCEPTION 'options.id must be a non-nil UUID string, not %', options -> 'id' USING ERRCODE = '22023';
        END IF;
        i.id := (options ->> 'id')::uuid;
    ELSE
        i.id := pg_catalog.gen_random_uuid();
    END IF;
    i.tenant_id := tenant_id;
    i.name := name;
    i.provider := provider;
    IF options ? 'enabled' AND pg_catalog.jsonb_typeof(options -> 'enabled') <> 'boolean' THEN
        RAISE EXCEPTION 'options.enabled must be true or false, not %', options -> 'enabled' USING ERRCODE = '22023';
    END IF;
    -- A new integration blocks every check() until enabled: "enabled": true does it at once.
    i.status := CASE WHEN (options -> 'enabled') = 'true' THEN 'enabled' ELSE 'created' END;
    i.base_url := aos_cus_internal.patch_text(options, 'base_url', NULL);
    i.config := coalesce(options -> 'config', '{}');
    i := aos_cus_internal.check_integration_fields(i);
    -- Every limit at its default (JSON null), then what options.limits sets.
    i := aos_cus_internal.apply_limits(i, '{"budget_microcents": null, "budget_period": null, "token_limit": null, "token_period": null,
                                  "rpm": null, "tpm": null, "warn_at_pct": null, "mode": null, "timezone": null}');
    IF options ? 'limits' THEN
        i := aos_cus_internal.apply_limits(i, options -> 'limits');
    END IF;
    -- Encrypted before the first write: the plaintext never reaches the table or the WAL.
    stored := aos_cus.credential_reference(tenant_id, i.id, credential);
    BEGIN
        INSERT INTO aos_cus.cus_integrations (tenant_id, id, name, provider, status, credential_ref, credential_hint,
                                              base_url, config, budget_microcents, budget_period, token_limit,
                                              token_period, rpm, tpm, warn_at_pct, enforcement_mode, timezone)
        VALUES (i.tenant_id, i.id, i.name, i.provider, i.status, stored.credential_ref, stored.credential_hint,
                i.base_url, i.config, i.budget_microcents, i.budget_period, i.token_limit,
                i.token_period, i.rpm, i.tpm, i.warn_at_pct, i.enforcement_mode, i.timezone);
    EXCEPTION WHEN unique_violation THEN
        GET STACKED DIAGNOSTICS constraint_name = CONSTRAINT_NAME;
        IF constraint_name = 'cus_integrations_name_key' THEN
            RAISE EXCEPTION 'an integration named "%" already exists for this tenant', i.name USING ERRCODE = '23505';
        END IF;
        RAISE EXCEPTION 'integration % already exists', i.id USING ERRCODE = '23505';
    END;
    RETURN i.id;
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS e_state = RETURNED_SQLSTATE, e_message = MESSAGE_TEXT, e_detail = PG_EXCEPTION_DETAIL,
                            e_hint = PG_EXCEPTION_HINT;
    PERFORM aos_cus_internal.raise_error(e_state, e_message, e_detail, e_hint);
END
$$;
CREATE OR REPLACE FUNCTION aos_cus.get_integration(tenant_id uuid, integration_id uuid) RETURNS aos_cus.integration
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    e_state text;
    e_message text;
    e_detail text;
    e_hint text;
    i aos_cus.cus_integrations;
BEGIN
    PERFORM aos_cus.assert_tenant(tenant_id);
    IF integration_id IS NULL THEN
        RAISE EXCEPTION 'integration_id must not be null' USING ERRCODE = '22004';
    END IF;
    SELECT * INTO i FROM aos_cus.cus_integrations c WHERE c.tenant_id = get_integration.tenant_id AND c.id = integration_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'integration % does not exist for this tenant', integration_id USING ERRCODE = '02000';
    END IF;
    RETURN aos_cus_internal.integration_of(i);
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS e_state = RETURNED_SQLSTATE, e_message = MESSAGE_TEXT, e_detail = PG_EXCEPTION_DETAIL,
                            e_hint = PG_EXCEPTION_HINT;
    PERFORM aos_cus_internal.raise_error(e_state, e_message, e_detail, e_hint);
END
$$;
CREATE OR REPLACE FUNCTION aos_cus.list_integrations(tenant_id uuid, status text DEFAULT NULL, after_id uuid DEFAULT NULL,
                                          page_size integer DEFAULT 50) RETURNS SETOF aos_cus.integration
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    e_state text;
    e_message text;
    e_detail text;
    e_hint text;
BEGIN
    PERFORM aos_cus.assert_tenant(tenant_id);
    IF status IS NOT NULL AND status NOT IN ('created', 'enabled', 'disabled', 'deleted') THEN
        RAISE EXCEPTION 'status must be created, enabled, disabled, deleted or NULL (every status but deleted), not %',
            pg_catalog.to_jsonb(CASE WHEN pg_catalog.length(status) > 40 THEN pg_catalog.left(status, 40) || '...' ELSE status END) USING ERRCODE = '22023';
    END IF;
    IF page_size IS NULL THEN
        RAISE EXCEPTION 'page_size must not be null' USING ERRCODE = '22004';
    END IF;
    IF page_size NOT BETWEEN 1 AND 1000 THEN
        RAISE EXCEPTION 'page_size must be between 1 and 1000, not %', page_size USING ERRCODE = '22023';
    END IF;
    -- Keyset pagination on the primary key (tenant_id, id): stable order, each row once.
    RETURN QUERY
        SELECT (aos_cus_internal.integration_of(c)).* FROM aos_cus.cus_integrations c
         WHERE c.tenant_id = list_integrations.tenant_id
           AND c.id > coalesce(after_id, '00000000-0000-0000-0000-000000000000')
           AND CASE WHEN list_integrations.status IS NULL THEN c.status <> 'deleted' ELSE c.status = list_integrations.status END
         ORDER BY c.id
         LIMIT page_size;
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS e_state = RETURNED_SQLSTATE, e_message = MESSAGE_TEXT, e_detail = PG_EXCEPTION_DETAIL,
                            e_hint = PG_EXCEPTION_HINT;
    PERFORM aos_cus_internal.raise_error(e_state, e_message, e_detail, e_hint);
END
$$;
CREATE OR REPLACE FUNCTION aos_cus.update_integration(tenant_id uuid, integration_id uuid, patch jsonb) RETURNS aos_cus.integration
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    e_state text;
    e_message text;
    e_detail text;
    e_hint text;
    i aos_cus.cus_integrations;
BEGIN
    PERFORM aos_cus_internal.check_keys(patch, 'patch', ARRAY['name', 'base_url', 'config', 'limits']);
    i := aos_cus_internal.integration_for_update(tenant_id, integration_id);
    IF i.status = 'deleted' THEN
        RAISE EXCEPTION 'integration % is deleted and cannot be changed', integration_id USING ERRCODE = '55000';
    END IF;
    i.name := aos_cus_internal.patch_text(patch, 'name', i.name);
    i.base_url := aos_cus_internal.patch_text(patch, 'base_url', i.base_url);
    IF patch ? 'config' THEN
        i.config := patch -> 'config';
    END IF;
    i := aos_cus_internal.check_integration_fields(i);
    IF patch ? 'limits' THEN
        i := aos_cus_internal.apply_limits(i, patch -> 'limits');
    END IF;
    BEGIN
        UPDATE aos_cus.cus_integrations c
           SET name = i.name, base_url = i.base_url, config = i.config,
               budget_microcents = i.budget_microcents, budget_period = i.budget_period,
               token_limit = i.token_limit, token_period = i.token_period, rpm = i.rpm, tpm = i.tpm,
               warn_at_pct = i.warn_at_pct, enforcement_mode = i.enforcement_mode, timezone = i.timezone,
               updated_at = pg_catalog.now()
         WHERE c.tenant_id = i.tenant_id AND c.id = i.id
        RETURNING * INTO i;
    EXCEPTION WHEN unique_violation THEN
        RAISE EXCEPTION 'an integration named "%" already exists for this tenant', i.name USING ERRCODE = '23505';
    END;
    RETURN aos_cus_internal.integration_of(i);
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS e_state = RETURNED_SQLSTATE, e_message = MESSAGE_TEXT, e_detail = PG_EXCEPTION_DETAIL,
                            e_hint = PG_EXCEPTION_HINT;
    PERFORM aos_cus_internal.raise_error(e_state, e_message, e_detail, e_hint);
END
$$;
CREATE OR REPLACE FUNCTION aos_cus_internal.set_integration_status(tenant_id uuid, integration_id uuid, new_status text) RETURNS aos_cus.integration
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    e_state text;
    e_message text;
    e_detail text;
    e_hint text;
    i aos_cus.cus_integrations;
BEGIN
    i := aos_cus_internal.integration_for_update(tenant_id, integration_id);
    UPDATE aos_cus.cus_integrations c SET status = new_status, updated_at = pg_catalog.now()
     WHERE c.tenant_id = i.tenant_id AND c.id = i.id
    RETURNING * INTO i;
    RETURN aos_cus_internal.integration_of(i);
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS e_state = RETURNED_SQLSTATE, e_message = MESSAGE_TEXT, e_detail = PG_EXCEPTION_DETAIL,
                            e_hint = PG_EXCEPTION_HINT;
    PERFORM aos_cus_internal.raise_error(e_state, e_message, e_detail, e_hint);
END
$$;
CREATE OR REPLACE FUNCTION aos_cus.enable_integration(tenant_id uuid, integration_id uuid) RETURNS aos_cus.integration
    LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$ SELECT aos_cus_internal.set_integration_status(tenant_id, integration_id, 'enabled') $$;
CREATE OR REPLACE FUNCTION aos_cus.disable_integration(tenant_id uuid, integration_id uuid) RETURNS aos_cus.integration
    LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$ SELECT aos_cus_internal.set_integration_status(tenant_id, integration_id, 'disabled') $$;
CREATE OR REPLACE FUNCTION aos_cus.delete_integration(tenant_id uuid, integration_id uuid) RETURNS aos_cus.integration
    LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$ SELECT aos_cus_internal.set_integration_status(tenant_id, integration_id, 'deleted') $$;
CREATE OR REPLACE FUNCTION aos_cus_internal.usage_price_trigger() RETURNS trigger
    AS 'MODULE_PATHNAME', 'aos_cus_usage_price_trigger'
    LANGUAGE C;
CREATE OR REPLACE FUNCTION aos_cus_internal.saturate(n numeric) RETURNS bigint
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN pg_catalog.int8(GREATEST(LEAST(n, 9223372036854775807::numeric), -9223372036854775808::numeric));
CREATE OR REPLACE FUNCTION aos_cus_internal.fold_usage(filter text, a pg_snapshot, b pg_snapshot, from_day date, to_day date)
    RETURNS bigint LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    folded bigint;
BEGIN
    EXECUTE pg_catalog.format($q$
        WITH g AS (
            SELECT tenant_id, integration_id, (started_at AT TIME ZONE 'UTC')::date AS day, provider, model,
                   count(*) AS requests, count(*) FILTER (WHERE status <> 'success') AS errors,
                   aos_cus_internal.saturate(sum(input_tokens)) AS input_tokens,
                   aos_cus_internal.saturate(sum(cache_read_tokens)) AS cache_read_tokens,
                   aos_cus_internal.saturate(sum(cache_write_tokens)) AS cache_write_tokens,
                   aos_cus_internal.saturate(sum(cache_write_1h_tokens)) AS cache_write_1h_tokens,
                   aos_cus_internal.saturate(sum(output_tokens)) AS output_tokens,
                   aos_cus_internal.saturate(sum(reasoning_tokens)) AS reasoning_tokens,
                   aos_cus_internal.saturate(sum(input_audio_tokens)) AS input_audio_tokens,
                   aos_cus_internal.saturate(sum(output_audio_tokens)) AS output_audio_tokens,
                   aos_cus_internal.saturate(coalesce(sum(cost_microcents), 0)) AS cost_microcents,
                   count(*) FILTER (WHERE cost_microcents IS NULL) AS unpriced_requests,
                   aos_cus_internal.saturate(coalesce(sum(latency_ms), 0)) AS latency_sum_ms,
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
                input_tokens = aos_cus_internal.saturate(d.input_tokens::numeric + excluded.input_tokens),
                cache_read_tokens = aos_cus_internal.saturate(d.cache_read_tokens::numeric + excluded.cache_read_tokens),
                cache_write_tokens = aos_cus_internal.saturate(d.cache_write_tokens::numeric + excluded.cache_write_tokens),
                cache_write_1h_tokens = aos_cus_internal.saturate(d.cache_write_1h_tokens::numeric + excluded.cache_write_1h_tokens),
                output_tokens = aos_cus_internal.saturate(d.output_tokens::numeric + excluded.output_tokens),
                reasoning_tokens = aos_cus_internal.saturate(d.reasoning_tokens::numeric + excluded.reasoning_tokens),
                input_audio_tokens = aos_cus_internal.saturate(d.input_audio_tokens::numeric + excluded.input_audio_tokens),
                output_audio_tokens = aos_cus_internal.saturate(d.output_audio_tokens::numeric + excluded.output_audio_tokens),
                cost_microcents = aos_cus_internal.saturate(d.cost_microcents::numeric + excluded.cost_microcents),
                unpriced_requests = d.unpriced_requests + excluded.unpriced_requests,
                latency_sum_ms = aos_cus_internal.saturate(d.latency_sum_ms::numeric + excluded.latency_sum_ms),
                latency_max_ms = GREATEST(d.latency_max_ms, excluded.latency_max_ms),
                updated_at = pg_catalog.now())
        SELECT coalesce(sum(requests), 0)::bigint FROM g$q$, filter)
    INTO folded USING a, b, from_day, to_day;
    RETURN folded;
END
$$;
CREATE OR REPLACE FUNCTION aos_cus_internal.rollup_snapshot() RETURNS pg_snapshot
    LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    s pg_snapshot := pg_catalog.pg_current_snapshot();
    own xid8 := pg_catalog.pg_current_xact_id_if_assigned();
BEGIN
    IF own IS NULL OR own >= pg_catalog.pg_snapshot_xmax(s) OR NOT pg_catalog.pg_visible_in_snapshot(own, s) THEN
        RETURN s;
    END IF;
    RETURN pg_catalog.format('%s:%s:%s', LEAST(pg_catalog.pg_snapshot_xmin(s), own), pg_catalog.pg_snapshot_xmax(s),
        (SELECT pg_catalog.string_agg(x::text, ',' ORDER BY x::text::numeric)
           FROM (SELECT pg_catalog.pg_snapshot_xip(s) AS x UNION SELECT own) xs))::pg_snapshot;
END
$$;
CREATE OR REPLACE FUNCTION aos_cus_internal.lock_rollup_state(OUT last_snapshot pg_snapshot, OUT rebuilt bigint)
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
    s := aos_cus_internal.rollup_snapshot();
    -- Ids from another cluster mean nothing here: mark every row we can see as folded ("frozen" xid 2).
    UPDATE aos_cus.cus_llm_usage SET ingest_xid = '2' WHERE ingest_xid >= pg_catalog.pg_snapshot_xmin(s);
    DELETE FROM aos_cus.cus_usage_daily;
    rebuilt := aos_cus_internal.fold_usage('pg_catalog.pg_visible_in_snapshot(ingest_xid, $2)', NULL, s, NULL, NULL);
    UPDATE aos_cus.cus_rollup_state SET last_snapshot = s, system_id = this_system, last_rollup_at = pg_catalog.now();
    last_snapshot := s;
END
$$;
CREATE OR REPLACE FUNCTION aos_cus.rollup_usage() RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    st record;
    s pg_snapshot;
    folded bigint;
BEGIN
    PERFORM aos_cus.assert_platform('rollup_usage()');
    st := aos_cus_internal.lock_rollup_state();
    IF st.rebuilt IS NOT NULL THEN
        folded := st.rebuilt;
    ELSE
        -- Taken after the lock: a concurrent rollup has committed, so we fold only what it did not.
        s := aos_cus_internal.rollup_snapshot();
        folded := aos_cus_internal.fold_usage(
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
    st := aos_cus_internal.lock_rollup_state();
    IF st.rebuilt IS NOT NULL THEN
        RETURN st.rebuilt;
    END IF;
    -- Exactly the rows the aggregates already stand for (visible in last_snapshot), so rollups stay exact.
    DELETE FROM aos_cus.cus_usage_daily WHERE day BETWEEN from_day AND to_day;
    RETURN aos_cus_internal.fold_usage(
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
    st := aos_cus_internal.lock_rollup_state();
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
           sum(p.unpriced_requests)::bigint, aos_cus_internal.saturate(sum(p.input_tokens)),
           aos_cus_internal.saturate(sum(p.cache_read_tokens)), aos_cus_internal.saturate(sum(p.cache_write_tokens)),
           aos_cus_internal.saturate(sum(p.cache_write_1h_tokens)), aos_cus_internal.saturate(sum(p.output_tokens)),
           aos_cus_internal.saturate(sum(p.reasoning_tokens)), aos_cus_internal.saturate(sum(p.input_audio_tokens)),
           aos_cus_internal.saturate(sum(p.output_audio_tokens)), aos_cus_internal.saturate(sum(p.cost_microcents)),
           pg_catalog.round(sum(p.cost_microcents) / 100000000.0, 8),
           pg_catalog.round(sum(p.latency_sum_ms)::numeric / sum(p.requests), 1), max(p.latency_max_ms)
      FROM parts p
     WHERE usage_summary.integration_id IS NULL OR p.integration_id = usage_summary.integration_id
     GROUP BY p.integration_id, p.provider, p.model
     ORDER BY sum(p.cost_microcents) DESC, p.integration_id, p.provider, p.model;
END
$$;
CREATE OR REPLACE FUNCTION aos_cus_internal.usage_settle_trigger() RETURNS trigger
    AS 'MODULE_PATHNAME', 'aos_cus_usage_settle_trigger' LANGUAGE C;
CREATE OR REPLACE FUNCTION aos_cus_internal.limits_changed_trigger() RETURNS trigger
    AS 'MODULE_PATHNAME', 'aos_cus_limits_changed_trigger' LANGUAGE C;
CREATE OR REPLACE FUNCTION aos_cus_internal.health_queue_wake() RETURNS trigger
    AS 'MODULE_PATHNAME', 'aos_cus_health_queue_wake'
    LANGUAGE C;
COMMENT ON FUNCTION aos_cus.create_integration(uuid, text, text, text, jsonb) IS
    'create an integration (status created, or enabled with options.enabled); credential: plaintext key (encrypted at once) or vault:// / env:// reference; options: id, base_url, config, limits, enabled';

-- Truthful reads (issue 21): remaining is NULL where there is no limit; the mode column is named as limits name it.
DROP FUNCTION aos_cus.integration_limits(uuid, uuid);
CREATE FUNCTION aos_cus.integration_limits(tenant_id uuid, integration_id uuid,
    OUT budget_microcents bigint, OUT budget_period text, OUT budget_period_start timestamptz,
    OUT budget_period_end timestamptz, OUT budget_used_microcents bigint, OUT budget_remaining_microcents bigint,
    OUT token_limit bigint, OUT token_period text, OUT token_period_start timestamptz,
    OUT token_period_end timestamptz, OUT tokens_used bigint, OUT tokens_remaining bigint,
    OUT rpm integer, OUT requests_this_minute bigint, OUT tpm bigint, OUT tokens_this_minute bigint,
    OUT warn_at_pct smallint, OUT mode text, OUT timezone text)
    RETURNS record
    LANGUAGE sql VOLATILE
    BEGIN ATOMIC
        SELECT i.budget_microcents, i.budget_period, u.budget_period_start, u.budget_period_end,
               u.spent_microcents + u.reserved_microcents,
               CASE WHEN i.budget_microcents IS NOT NULL
                    THEN GREATEST(i.budget_microcents - u.spent_microcents - u.reserved_microcents, 0) END,
               i.token_limit, i.token_period, u.token_period_start, u.token_period_end,
               u.tokens_used + u.reserved_tokens,
               CASE WHEN i.token_limit IS NOT NULL THEN GREATEST(i.token_limit - u.tokens_used - u.reserved_tokens, 0) END,
               i.rpm, u.requests_this_minute, i.tpm, u.tokens_this_minute,
               i.warn_at_pct, i.enforcement_mode, i.timezone
          FROM aos_cus.current_usage(integration_limits.tenant_id, integration_limits.integration_id) u,
               aos_cus.cus_integrations i
         WHERE i.tenant_id = integration_limits.tenant_id AND i.id = integration_limits.integration_id;
    END;
COMMENT ON FUNCTION aos_cus.integration_limits(uuid, uuid) IS
    'configured limits with current period usage (reservations included) and what remains (NULL where there is no limit)';
REVOKE ALL ON FUNCTION aos_cus.integration_limits(uuid, uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION aos_cus.integration_limits(uuid, uuid) TO aos_cus_admin, aos_cus_app, aos_cus_reader;

-- Reservations (issue 21): a call checked with a call_id that will not happen frees its reservation at once.
CREATE FUNCTION aos_cus.release_reservation(tenant_id uuid, call_id text) RETURNS boolean
    AS 'MODULE_PATHNAME', 'aos_cus_release_reservation' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION aos_cus.release_reservation(uuid, text) IS
    'frees the live reservation of a checked call that will not happen; true when there was one';
REVOKE ALL ON FUNCTION aos_cus.release_reservation(uuid, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION aos_cus.release_reservation(uuid, text) TO aos_cus_admin, aos_cus_app;
-- A check() of a call_id whose usage is recorded reserves nothing and says so: blocked / already_ingested.
ALTER TABLE aos_cus.cus_enforcement_log DROP CONSTRAINT cus_enforcement_log_reason_check,
    ADD CONSTRAINT cus_enforcement_log_reason_check CHECK (reason IN ('integration_not_found', 'integration_disabled',
        'rate_limited', 'budget_exceeded', 'token_limit_exceeded', 'budget_warning', 'token_warning', 'already_ingested'));

-- Messages (issue 18): an unknown integration is 42704 (undefined_object), not the class-02 completion code 02000;
-- one wording per condition ("integration <id> does not exist for this tenant", "integration <id> is deleted",
-- '<name> "<value>" is not one of <the list>'); comments point at the README.
CREATE OR REPLACE FUNCTION aos_cus.rotate_credential(tenant_id uuid, integration_id uuid, credential text) RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    stored record;
    current_status text;
BEGIN
    -- Encrypt first: it checks the tenant and marks the statement as carrying a secret.
    stored := aos_cus.credential_reference(tenant_id, integration_id, credential);
    SELECT i.status INTO current_status FROM aos_cus.cus_integrations i
     WHERE i.tenant_id = rotate_credential.tenant_id AND i.id = rotate_credential.integration_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'integration % does not exist for this tenant', integration_id USING ERRCODE = '42704';
    END IF;
    IF current_status = 'deleted' THEN
        RAISE EXCEPTION 'integration % is deleted', integration_id
            USING ERRCODE = '55000', DETAIL = 'The credential of a deleted integration cannot be rotated.';
    END IF;
    UPDATE aos_cus.cus_integrations i
       SET credential_ref = stored.credential_ref, credential_hint = stored.credential_hint, updated_at = pg_catalog.now()
     WHERE i.tenant_id = rotate_credential.tenant_id AND i.id = rotate_credential.integration_id;
END
$$;
CREATE OR REPLACE FUNCTION aos_cus_internal.integration_for_update(tenant_id uuid, integration_id uuid) RETURNS aos_cus.cus_integrations
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    i aos_cus.cus_integrations;
BEGIN
    PERFORM aos_cus.assert_tenant(tenant_id);
    IF integration_id IS NULL THEN
        RAISE EXCEPTION 'integration_id must not be null' USING ERRCODE = '22004';
    END IF;
    SELECT * INTO i FROM aos_cus.cus_integrations c
     WHERE c.tenant_id = integration_for_update.tenant_id AND c.id = integration_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'integration % does not exist for this tenant', integration_id USING ERRCODE = '42704';
    END IF;
    RETURN i;
END
$$;
CREATE OR REPLACE FUNCTION aos_cus.get_integration(tenant_id uuid, integration_id uuid) RETURNS aos_cus.integration
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    e_state text;
    e_message text;
    e_detail text;
    e_hint text;
    i aos_cus.cus_integrations;
BEGIN
    PERFORM aos_cus.assert_tenant(tenant_id);
    IF integration_id IS NULL THEN
        RAISE EXCEPTION 'integration_id must not be null' USING ERRCODE = '22004';
    END IF;
    SELECT * INTO i FROM aos_cus.cus_integrations c WHERE c.tenant_id = get_integration.tenant_id AND c.id = integration_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'integration % does not exist for this tenant', integration_id USING ERRCODE = '42704';
    END IF;
    RETURN aos_cus_internal.integration_of(i);
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS e_state = RETURNED_SQLSTATE, e_message = MESSAGE_TEXT, e_detail = PG_EXCEPTION_DETAIL,
                            e_hint = PG_EXCEPTION_HINT;
    PERFORM aos_cus_internal.raise_error(e_state, e_message, e_detail, e_hint);
END
$$;
CREATE OR REPLACE FUNCTION aos_cus.update_integration(tenant_id uuid, integration_id uuid, patch jsonb) RETURNS aos_cus.integration
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    e_state text;
    e_message text;
    e_detail text;
    e_hint text;
    i aos_cus.cus_integrations;
BEGIN
    PERFORM aos_cus_internal.check_keys(patch, 'patch', ARRAY['name', 'base_url', 'config', 'limits']);
    i := aos_cus_internal.integration_for_update(tenant_id, integration_id);
    IF i.status = 'deleted' THEN
        RAISE EXCEPTION 'integration % is deleted', integration_id
            USING ERRCODE = '55000', DETAIL = 'A deleted integration cannot be changed.';
    END IF;
    i.name := aos_cus_internal.patch_text(patch, 'name', i.name);
    i.base_url := aos_cus_internal.patch_text(patch, 'base_url', i.base_url);
    IF patch ? 'config' THEN
        i.config := patch -> 'config';
    END IF;
    i := aos_cus_internal.check_integration_fields(i);
    IF patch ? 'limits' THEN
        i := aos_cus_internal.apply_limits(i, patch -> 'limits');
    END IF;
    BEGIN
        UPDATE aos_cus.cus_integrations c
           SET name = i.name, base_url = i.base_url, config = i.config,
               budget_microcents = i.budget_microcents, budget_period = i.budget_period,
               token_limit = i.token_limit, token_period = i.token_period, rpm = i.rpm, tpm = i.tpm,
               warn_at_pct = i.warn_at_pct, enforcement_mode = i.enforcement_mode, timezone = i.timezone,
               updated_at = pg_catalog.now()
         WHERE c.tenant_id = i.tenant_id AND c.id = i.id
        RETURNING * INTO i;
    EXCEPTION WHEN unique_violation THEN
        RAISE EXCEPTION 'an integration named "%" already exists for this tenant', i.name USING ERRCODE = '23505';
    END;
    RETURN aos_cus_internal.integration_of(i);
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS e_state = RETURNED_SQLSTATE, e_message = MESSAGE_TEXT, e_detail = PG_EXCEPTION_DETAIL,
                            e_hint = PG_EXCEPTION_HINT;
    PERFORM aos_cus_internal.raise_error(e_state, e_message, e_detail, e_hint);
END
$$;
CREATE OR REPLACE FUNCTION aos_cus.record_health(tenant_id uuid, integration_id uuid, state text, latency_ms integer,
                                      error text DEFAULT NULL) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_status text;
BEGIN
    IF record_health.tenant_id IS NULL THEN
        RAISE EXCEPTION 'tenant_id must not be null' USING ERRCODE = '22004';
    END IF;
    IF record_health.integration_id IS NULL THEN
        RAISE EXCEPTION 'integration_id must not be null' USING ERRCODE = '22004';
    END IF;
    IF record_health.state IS NULL OR record_health.state NOT IN ('unknown', 'healthy', 'degraded', 'failing') THEN
        RAISE EXCEPTION 'state must be one of unknown, healthy, degraded, failing' USING ERRCODE = '22023';
    END IF;
    IF record_health.latency_ms < 0 THEN
        RAISE EXCEPTION 'latency_ms must not be negative' USING ERRCODE = '22023';
    END IF;
    IF pg_catalog.length(record_health.error) > 1000 THEN
        RAISE EXCEPTION 'error must be at most 1000 characters' USING ERRCODE = '22001';
    END IF;
    PERFORM aos_cus.assert_tenant(record_health.tenant_id);

    SELECT i.status INTO v_status FROM aos_cus.cus_integrations i
     WHERE i.tenant_id = record_health.tenant_id AND i.id = record_health.integration_id
       FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'integration % does not exist for this tenant', record_health.integration_id USING ERRCODE = '42704';
    ELSIF v_status = 'deleted' THEN
        RAISE EXCEPTION 'integration % is deleted', record_health.integration_id USING ERRCODE = '55000';
    END IF;
    UPDATE aos_cus.cus_integrations i
       SET health_state = record_health.state, health_checked_at = pg_catalog.now(),
           health_latency_ms = record_health.latency_ms, health_error = record_health.error
     WHERE i.tenant_id = record_health.tenant_id AND i.id = record_health.integration_id;
    INSERT INTO aos_cus.cus_health_history (tenant_id, integration_id, state, latency_ms, error)
    VALUES (record_health.tenant_id, record_health.integration_id, record_health.state,
            record_health.latency_ms, record_health.error);
    -- Bounded retention: drop this integration's rows beyond the newest health_history_keep.
    DELETE FROM aos_cus.cus_health_history h
     WHERE h.tenant_id = record_health.tenant_id AND h.integration_id = record_health.integration_id
       AND h.id <= (SELECT o.id FROM aos_cus.cus_health_history o
                     WHERE o.tenant_id = record_health.tenant_id AND o.integration_id = record_health.integration_id
                     ORDER BY o.id DESC
                    OFFSET pg_catalog.current_setting('aos_cus.health_history_keep')::integer LIMIT 1);
END
$$;
CREATE OR REPLACE FUNCTION aos_cus.request_health_check(tenant_id uuid, integration_id uuid) RETURNS boolean
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_status text;
    v_checked timestamptz;
BEGIN
    IF request_health_check.tenant_id IS NULL THEN
        RAISE EXCEPTION 'tenant_id must not be null' USING ERRCODE = '22004';
    END IF;
    IF request_health_check.integration_id IS NULL THEN
        RAISE EXCEPTION 'integration_id must not be null' USING ERRCODE = '22004';
    END IF;
    PERFORM aos_cus.assert_tenant(request_health_check.tenant_id);
    SELECT i.status, i.health_checked_at INTO v_status, v_checked FROM aos_cus.cus_integrations i
     WHERE i.tenant_id = request_health_check.tenant_id AND i.id = request_health_check.integration_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'integration % does not exist for this tenant', request_health_check.integration_id USING ERRCODE = '42704';
    ELSIF v_status = 'deleted' THEN
        RAISE EXCEPTION 'integration % is deleted', request_health_check.integration_id USING ERRCODE = '55000';
    END IF;
    -- Coalesce: probed within aos_cus.health_min_interval, or a check already queued or running.
    IF v_checked > pg_catalog.now() - pg_catalog.current_setting('aos_cus.health_min_interval')::interval THEN
        RETURN false;
    END IF;
    INSERT INTO aos_cus.cus_health_checks (tenant_id, integration_id)
    VALUES (request_health_check.tenant_id, request_health_check.integration_id)
    ON CONFLICT ON CONSTRAINT cus_health_checks_one_per_integration DO NOTHING;
    RETURN FOUND;
END
$$;
CREATE OR REPLACE FUNCTION aos_cus.resolve_model(provider text, model text)
    RETURNS TABLE (price_provider text, canonical_model text)
    LANGUAGE plpgsql STABLE PARALLEL SAFE ROWS 1 SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF resolve_model.provider IS NULL OR resolve_model.model IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = '22004', MESSAGE = 'provider and model must not be null';
    END IF;
    IF NOT resolve_model.provider = ANY (ARRAY['openai', 'anthropic', 'google', 'azure_openai', 'aws_bedrock', 'mistral', 'custom']) THEN
        RAISE EXCEPTION USING ERRCODE = '22023',
            MESSAGE = pg_catalog.format('provider "%s" is not one of openai, anthropic, google, azure_openai, aws_bedrock, mistral, custom', pg_catalog.left(resolve_model.provider, 64));
    END IF;
    RETURN QUERY
    SELECT c.provider, c.model
      FROM (SELECT pg_catalog.lower(pg_catalog.btrim(resolve_model.model)) AS v1) n1
     CROSS JOIN LATERAL (SELECT pg_catalog.regexp_replace(n1.v1, '^[a-z0-9_.-]+/', '') AS v2) n2
     CROSS JOIN LATERAL (VALUES (1, n1.v1), (2, n2.v2),
                                (3, pg_catalog.regexp_replace(n2.v2, '-(\d{4}-\d{2}-\d{2}|\d{8})$', ''))) AS names(variant, name)
     CROSS JOIN LATERAL pg_catalog.unnest(aos_cus_internal.price_providers(resolve_model.provider)) WITH ORDINALITY AS pp(provider, pref)
      JOIN LATERAL (SELECT DISTINCT p.provider::text AS provider, p.model,
                           CASE WHEN pg_catalog.lower(p.model) = names.name THEN 1
                                WHEN names.name = ANY (p.aliases) THEN 2
                                WHEN names.name ~* p.match_pattern THEN 3 END AS step
                      FROM aos_cus.cus_model_prices p
                     WHERE p.provider = pp.provider) c ON c.step IS NOT NULL
     ORDER BY names.variant, pp.pref, c.step, pg_catalog.length(c.model) DESC, c.model
     LIMIT 1;
END
$$;
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
            MESSAGE = pg_catalog.format('provider "%s" is not one of openai, anthropic, google, azure_openai, aws_bedrock, mistral, custom', pg_catalog.left(set_price.provider, 64));
    END IF;
    IF m = '' OR pg_catalog.length(m) > 200 THEN
        RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'model must be 1 to 200 characters';
    END IF;
    IF NOT set_price.service_tier = ANY (ARRAY['standard', 'priority', 'flex', 'batch']) THEN
        RAISE EXCEPTION USING ERRCODE = '22023',
            MESSAGE = pg_catalog.format('service_tier "%s" is not one of standard, priority, flex, batch', pg_catalog.left(set_price.service_tier, 64));
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
    IF set_price.source LIKE 'langfuse: %' OR set_price.source LIKE 'genai-prices: %' THEN
        RAISE EXCEPTION USING ERRCODE = '22023',
            MESSAGE = 'source must not start with "langfuse: " or "genai-prices: " (reserved for the seed)';
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
CREATE OR REPLACE FUNCTION aos_cus.create_integration(tenant_id uuid, name text, provider text, credential text,
                                           options jsonb DEFAULT '{}') RETURNS uuid
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    e_state text;
    e_message text;
    e_detail text;
    e_hint text;
    i aos_cus.cus_integrations;
    stored record;
    constraint_name text;
BEGIN
    PERFORM aos_cus.assert_tenant(tenant_id);
    PERFORM aos_cus_internal.check_keys(options, 'options', ARRAY['id', 'base_url', 'config', 'limits', 'enabled']);
    IF provider IS NULL THEN
        RAISE EXCEPTION 'provider must not be null' USING ERRCODE = '22004';
    END IF;
    IF provider NOT IN ('openai', 'anthropic', 'google', 'azure_openai', 'aws_bedrock', 'mistral', 'custom') THEN
        RAISE EXCEPTION 'provider "%" is not one of openai, anthropic, google, azure_openai, aws_bedrock, mistral, custom', pg_catalog.left(provider, 64)
            USING ERRCODE = '22023';
    END IF;
    IF options ? 'id' THEN
        IF pg_catalog.jsonb_typeof(options -> 'id') <> 'string'
           OR (options ->> 'id') !~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
           OR (options ->> 'id')::uuid = '00000000-0000-0000-0000-000000000000' THEN
            RAISE EXCEPTION 'options.id must be a non-nil UUID string, not %', options -> 'id' USING ERRCODE = '22023';
        END IF;
        i.id := (options ->> 'id')::uuid;
    ELSE
        i.id := pg_catalog.gen_random_uuid();
    END IF;
    i.tenant_id := tenant_id;
    i.name := name;
    i.provider := provider;
    IF options ? 'enabled' AND pg_catalog.jsonb_typeof(options -> 'enabled') <> 'boolean' THEN
        RAISE EXCEPTION 'options.enabled must be true or false, not %', options -> 'enabled' USING ERRCODE = '22023';
    END IF;
    -- A new integration blocks every check() until enabled: "enabled": true does it at once.
    i.status := CASE WHEN (options -> 'enabled') = 'true' THEN 'enabled' ELSE 'created' END;
    i.base_url := aos_cus_internal.patch_text(options, 'base_url', NULL);
    i.config := coalesce(options -> 'config', '{}');
    i := aos_cus_internal.check_integration_fields(i);
    -- Every limit at its default (JSON null), then what options.limits sets.
    i := aos_cus_internal.apply_limits(i, '{"budget_microcents": null, "budget_period": null, "token_limit": null, "token_period": null,
                                  "rpm": null, "tpm": null, "warn_at_pct": null, "mode": null, "timezone": null}');
    IF options ? 'limits' THEN
        i := aos_cus_internal.apply_limits(i, options -> 'limits');
    END IF;
    -- Encrypted before the first write: the plaintext never reaches the table or the WAL.
    stored := aos_cus.credential_reference(tenant_id, i.id, credential);
    BEGIN
        INSERT INTO aos_cus.cus_integrations (tenant_id, id, name, provider, status, credential_ref, credential_hint,
                                              base_url, config, budget_microcents, budget_period, token_limit,
                                              token_period, rpm, tpm, warn_at_pct, enforcement_mode, timezone)
        VALUES (i.tenant_id, i.id, i.name, i.provider, i.status, stored.credential_ref, stored.credential_hint,
                i.base_url, i.config, i.budget_microcents, i.budget_period, i.token_limit,
                i.token_period, i.rpm, i.tpm, i.warn_at_pct, i.enforcement_mode, i.timezone);
    EXCEPTION WHEN unique_violation THEN
        GET STACKED DIAGNOSTICS constraint_name = CONSTRAINT_NAME;
        IF constraint_name = 'cus_integrations_name_key' THEN
            RAISE EXCEPTION 'an integration named "%" already exists for this tenant', i.name USING ERRCODE = '23505';
        END IF;
        RAISE EXCEPTION 'integration % already exists', i.id USING ERRCODE = '23505';
    END;
    RETURN i.id;
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS e_state = RETURNED_SQLSTATE, e_message = MESSAGE_TEXT, e_detail = PG_EXCEPTION_DETAIL,
                            e_hint = PG_EXCEPTION_HINT;
    PERFORM aos_cus_internal.raise_error(e_state, e_message, e_detail, e_hint);
END
$$;
COMMENT ON FUNCTION aos_cus_internal.apply_limits(aos_cus.cus_integrations, jsonb) IS
    'validate a limits patch (the keys of set_limits) and return the row with it applied; raises before anything is written';
COMMENT ON FUNCTION aos_cus_internal.integration_for_update(uuid, uuid) IS 'API helper: lock and return a tenant''s integration, 42704 when unknown';
COMMENT ON FUNCTION aos_cus.get_integration(uuid, uuid) IS 'one integration (credential kind and hint only); 42704 when unknown';
COMMENT ON FUNCTION aos_cus.set_limits(uuid, uuid, jsonb) IS 'patch an integration''s limits (budget_microcents, budget_period, token_limit, token_period, rpm, tpm, warn_at_pct, mode, timezone; JSON null restores a default)';
-- Exact OpenAI token counts (issue 16): count_tokens, count_message_tokens and token_encoding (tiktoken's
-- o200k_base and cl100k_base in C); every aos_cus role may call them.
CREATE FUNCTION aos_cus.count_tokens(input text, model text) RETURNS integer
    AS 'MODULE_PATHNAME', 'aos_cus_count_tokens'
    LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION aos_cus.count_tokens(text, text) IS
    'exact tokens of input for an OpenAI model or encoding (o200k_base, cl100k_base), as tiktoken counts them; NULL input gives NULL';

CREATE FUNCTION aos_cus.count_message_tokens(messages jsonb, model text) RETURNS integer
    AS 'MODULE_PATHNAME', 'aos_cus_count_message_tokens'
    LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION aos_cus.count_message_tokens(jsonb, text) IS
    'exact prompt tokens of a chat messages array for an OpenAI model: its strings, 3 per message, 1 per name, 3 for the reply';

CREATE FUNCTION aos_cus.token_encoding(model text) RETURNS text
    AS 'MODULE_PATHNAME', 'aos_cus_token_encoding'
    LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION aos_cus.token_encoding(text) IS
    'the encoding count_tokens uses for model (o200k_base or cl100k_base, as tiktoken maps OpenAI models), NULL for any other model';

-- Pure functions: every aos_cus role may call them (99_privileges.sql revokes PUBLIC).
GRANT EXECUTE ON FUNCTION aos_cus.count_tokens(text, text), aos_cus.count_message_tokens(jsonb, text),
    aos_cus.token_encoding(text)
    TO aos_cus_admin, aos_cus_app, aos_cus_reader, aos_cus_worker;
REVOKE ALL ON FUNCTION aos_cus.count_tokens(text, text), aos_cus.count_message_tokens(jsonb, text),
    aos_cus.token_encoding(text) FROM PUBLIC;

-- Exact input tokens in estimate_call (issue 16): call_input_tokens counts with count_tokens for the models tiktoken
-- maps and estimate_tokens for any other.
CREATE FUNCTION aos_cus_internal.text_tokens(input text, model text) RETURNS bigint
    LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
    RETURN CASE WHEN aos_cus.token_encoding(model) IS NULL THEN aos_cus.estimate_tokens(input, model)
                ELSE aos_cus.count_tokens(input, model) END;
COMMENT ON FUNCTION aos_cus_internal.text_tokens(text, text) IS
    'count_tokens for models tiktoken maps, estimate_tokens for any other (call_input_tokens counts with it)';

GRANT EXECUTE ON FUNCTION aos_cus_internal.text_tokens(text, text) TO aos_cus_admin, aos_cus_app, aos_cus_reader, aos_cus_worker;
REVOKE ALL ON FUNCTION aos_cus_internal.text_tokens(text, text) FROM PUBLIC;
CREATE OR REPLACE FUNCTION aos_cus.call_input_tokens(model text, input jsonb) RETURNS bigint
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    total bigint := 3;
    size bigint;
    m jsonb;
    i bigint;
    part jsonb;
    j bigint;
    kv record;
BEGIN
    IF call_input_tokens.input IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = '22004', MESSAGE = 'input must not be null';
    END IF;
    size := pg_catalog.octet_length(call_input_tokens.input::pg_catalog.text);
    IF size OPERATOR(pg_catalog.>) 4194304 THEN
        RAISE EXCEPTION USING ERRCODE = '54000',
            MESSAGE = pg_catalog.format('input is %s bytes of JSON, more than the limit of 4194304', size);
    END IF;
    IF pg_catalog.jsonb_typeof(call_input_tokens.input) OPERATOR(pg_catalog.=) 'string' THEN
        RETURN aos_cus_internal.text_tokens(call_input_tokens.input OPERATOR(pg_catalog.#>>) '{}'::pg_catalog.text[], call_input_tokens.model);
    END IF;
    IF pg_catalog.jsonb_typeof(call_input_tokens.input) OPERATOR(pg_catalog.<>) 'array'
       OR pg_catalog.jsonb_array_length(call_input_tokens.input) OPERATOR(pg_catalog.=) 0 THEN
        RAISE EXCEPTION USING ERRCODE = '22023',
            MESSAGE = 'input must be a string or a non-empty chat messages array';
    END IF;
    FOR m, i IN SELECT e.value, e.ord OPERATOR(pg_catalog.-) 1
                  FROM pg_catalog.jsonb_array_elements(call_input_tokens.input) WITH ORDINALITY AS e(value, ord) LOOP
        IF pg_catalog.jsonb_typeof(m) OPERATOR(pg_catalog.<>) 'object' THEN
            RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = pg_catalog.format('input[%s] must be a JSON object', i);
        END IF;
        IF pg_catalog.jsonb_typeof(m OPERATOR(pg_catalog.->) 'role') IS DISTINCT FROM 'string' THEN
            RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = pg_catalog.format('input[%s].role must be a string', i);
        END IF;
        total := total OPERATOR(pg_catalog.+) 3;
        FOR kv IN SELECT e.key, e.value FROM pg_catalog.jsonb_each(m) AS e(key, value) LOOP
            IF kv.key OPERATOR(pg_catalog.=) 'content' AND pg_catalog.jsonb_typeof(kv.value) OPERATOR(pg_catalog.=) 'array' THEN
                FOR part, j IN SELECT e.value, e.ord OPERATOR(pg_catalog.-) 1
                                 FROM pg_catalog.jsonb_array_elements(kv.value) WITH ORDINALITY AS e(value, ord) LOOP
                    IF pg_catalog.jsonb_typeof(part) OPERATOR(pg_catalog.<>) 'object' THEN
                        RAISE EXCEPTION USING ERRCODE = '22023',
                            MESSAGE = pg_catalog.format('input[%s].content[%s] must be a JSON object', i, j);
                    END IF;
                    IF part OPERATOR(pg_catalog.?) 'text' THEN
                        IF pg_catalog.jsonb_typeof(part OPERATOR(pg_catalog.->) 'text') OPERATOR(pg_catalog.<>) 'string' THEN
                            RAISE EXCEPTION USING ERRCODE = '22023',
                                MESSAGE = pg_catalog.format('input[%s].content[%s].text must be a string', i, j);
                        END IF;
                        total := total OPERATOR(pg_catalog.+)
                                 aos_cus_internal.text_tokens(part OPERATOR(pg_catalog.->>) 'text', call_input_tokens.model);
                    END IF;
                END LOOP;
            ELSIF kv.key OPERATOR(pg_catalog.=) 'content' AND pg_catalog.jsonb_typeof(kv.value) OPERATOR(pg_catalog.<>) 'string'
                  AND pg_catalog.jsonb_typeof(kv.value) OPERATOR(pg_catalog.<>) 'null' THEN
                RAISE EXCEPTION USING ERRCODE = '22023',
                    MESSAGE = pg_catalog.format('input[%s].content must be a string, an array of parts or null', i);
            ELSIF pg_catalog.jsonb_typeof(kv.value) OPERATOR(pg_catalog.=) 'string' THEN
                total := total OPERATOR(pg_catalog.+) aos_cus_internal.text_tokens(kv.value OPERATOR(pg_catalog.#>>) '{}'::pg_catalog.text[],
                                                                               call_input_tokens.model)
                         OPERATOR(pg_catalog.+) CASE WHEN kv.key OPERATOR(pg_catalog.=) 'name' THEN 1 ELSE 0 END;
            ELSIF pg_catalog.jsonb_typeof(kv.value) OPERATOR(pg_catalog.<>) 'null' THEN
                -- Tool calls and other structured members: their JSON text.
                total := total OPERATOR(pg_catalog.+) aos_cus_internal.text_tokens(kv.value::pg_catalog.text, call_input_tokens.model);
            END IF;
        END LOOP;
    END LOOP;
    RETURN total;
END
$$;
COMMENT ON FUNCTION aos_cus.call_input_tokens(text, jsonb) IS
    'input tokens of a chat messages array or a string plus the chat overhead: exact (count_tokens) for models tiktoken maps, estimate_tokens otherwise';

-- Webhooks (issue 15): endpoints, the outbox, deliveries, their functions; record_health() emits health changes.
-- Webhooks (issue 15): endpoints per tenant, the durable outbox of events and one delivery row per endpoint and event.
-- Events are written in the transaction of their cause (check(), record_health(), the webhook worker's projection),
-- so a rolled-back cause emits nothing; the webhook worker delivers them signed (Standard Webhooks), at least once.
CREATE TABLE aos_cus.cus_webhooks (
    tenant_id      uuid NOT NULL,
    id             uuid NOT NULL DEFAULT pg_catalog.gen_random_uuid(),
    url            text NOT NULL CHECK (pg_catalog.length(url) OPERATOR(pg_catalog.<=) 2048),
    secret_ref     text NOT NULL CHECK (secret_ref OPERATOR(pg_catalog.~~) 'encrypted://%'),
    events         text[] CHECK (pg_catalog.cardinality(events) OPERATOR(pg_catalog.>) 0),
    format         text NOT NULL DEFAULT 'standard' CHECK (format OPERATOR(pg_catalog.=) ANY (ARRAY['standard', 'slack'])),
    enabled        boolean NOT NULL DEFAULT true,
    created_at     timestamptz NOT NULL DEFAULT pg_catalog.now(),
    delivered      bigint NOT NULL DEFAULT 0,
    failed         bigint NOT NULL DEFAULT 0,
    retried        bigint NOT NULL DEFAULT 0,
    dead_lettered  bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, id),
    CONSTRAINT cus_webhooks_url_key UNIQUE (tenant_id, url)
);
COMMENT ON TABLE aos_cus.cus_webhooks IS
    'webhook endpoints per tenant: URL, signing secret (encrypted://, never plaintext), event filter, format, delivery counters';

CREATE TABLE aos_cus.cus_webhook_events (
    tenant_id   uuid NOT NULL,
    id          bigint GENERATED BY DEFAULT AS IDENTITY,
    event_id    uuid NOT NULL DEFAULT pg_catalog.gen_random_uuid(),
    type        text NOT NULL,
    scope       text NOT NULL,
    dedup_key   text NOT NULL,
    payload     jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (tenant_id, id),
    CONSTRAINT cus_webhook_events_event_id_key UNIQUE (event_id),
    CONSTRAINT cus_webhook_events_once UNIQUE (tenant_id, dedup_key)
);
COMMENT ON TABLE aos_cus.cus_webhook_events IS
    'the outbox: one row per event (event_id is the webhook-id header), once per dedup_key';

CREATE TABLE aos_cus.cus_webhook_deliveries (
    tenant_id         uuid NOT NULL,
    webhook_id        uuid NOT NULL,
    event_seq         bigint NOT NULL,
    status            text NOT NULL DEFAULT 'pending'
                      CHECK (status OPERATOR(pg_catalog.=) ANY (ARRAY['pending', 'delivered', 'dead'])),
    attempts          integer NOT NULL DEFAULT 0,
    next_attempt_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
    last_http_status  integer,
    last_error        text,
    created_at        timestamptz NOT NULL DEFAULT pg_catalog.now(),
    delivered_at      timestamptz,
    PRIMARY KEY (tenant_id, webhook_id, event_seq),
    FOREIGN KEY (tenant_id, webhook_id) REFERENCES aos_cus.cus_webhooks (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, event_seq) REFERENCES aos_cus.cus_webhook_events (tenant_id, id) ON DELETE CASCADE
);
COMMENT ON TABLE aos_cus.cus_webhook_deliveries IS
    'one delivery per endpoint and event: pending (with attempts and the next attempt), delivered or dead (dead letter)';
CREATE INDEX cus_webhook_deliveries_pending_idx ON aos_cus.cus_webhook_deliveries (tenant_id, webhook_id, event_seq)
    WHERE status OPERATOR(pg_catalog.=) 'pending';
CREATE INDEX cus_webhook_deliveries_event_idx ON aos_cus.cus_webhook_deliveries (tenant_id, event_seq);
CREATE INDEX cus_webhook_events_created_idx ON aos_cus.cus_webhook_events (created_at);

SELECT aos_cus_internal.enable_tenant_rls('aos_cus.cus_webhooks');
SELECT aos_cus_internal.enable_tenant_rls('aos_cus.cus_webhook_events');
SELECT aos_cus_internal.enable_tenant_rls('aos_cus.cus_webhook_deliveries');
SELECT pg_catalog.pg_extension_config_dump('aos_cus.cus_webhooks', '');
SELECT pg_catalog.pg_extension_config_dump('aos_cus.cus_webhook_events', '');
SELECT pg_catalog.pg_extension_config_dump('aos_cus.cus_webhook_events_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('aos_cus.cus_webhook_deliveries', '');
REVOKE ALL ON aos_cus.cus_webhooks, aos_cus.cus_webhook_events, aos_cus.cus_webhook_deliveries FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE, DELETE ON aos_cus.cus_webhooks TO aos_cus_admin;
GRANT SELECT, UPDATE ON aos_cus.cus_webhook_deliveries TO aos_cus_admin;
GRANT SELECT ON aos_cus.cus_webhook_events TO aos_cus_admin;
GRANT SELECT ON aos_cus.cus_webhook_events, aos_cus.cus_webhook_deliveries TO aos_cus_reader;

-- Wakes the webhook worker when a transaction that queued deliveries commits (never for a rolled-back one).
CREATE FUNCTION aos_cus_internal.webhook_queue_wake() RETURNS trigger
    AS 'MODULE_PATHNAME', 'aos_cus_webhook_queue_wake'
    LANGUAGE C;
COMMENT ON FUNCTION aos_cus_internal.webhook_queue_wake() IS 'trigger: set the webhook worker''s latch at commit of queued deliveries';
REVOKE ALL ON FUNCTION aos_cus_internal.webhook_queue_wake() FROM PUBLIC;
CREATE TRIGGER cus_webhook_deliveries_wake AFTER INSERT OR UPDATE ON aos_cus.cus_webhook_deliveries
    FOR EACH STATEMENT EXECUTE FUNCTION aos_cus_internal.webhook_queue_wake();

-- The one writer of the outbox: the event once per dedup_key, and a delivery for every enabled endpoint of the
-- tenant that takes its type. Internal (no grants): check(), record_health() and the worker run it as the owner.
CREATE FUNCTION aos_cus_internal.emit_webhook_event(tenant_id uuid, type text, scope text, dedup_key text, payload jsonb)
    RETURNS boolean
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_seq bigint;
BEGIN
    INSERT INTO aos_cus.cus_webhook_events AS e (tenant_id, type, scope, dedup_key, payload)
    VALUES (emit_webhook_event.tenant_id, emit_webhook_event.type, emit_webhook_event.scope,
            emit_webhook_event.dedup_key, emit_webhook_event.payload)
    ON CONFLICT ON CONSTRAINT cus_webhook_events_once DO NOTHING
    RETURNING e.id INTO v_seq;
    IF v_seq IS NULL THEN
        RETURN false;
    END IF;
    INSERT INTO aos_cus.cus_webhook_deliveries (tenant_id, webhook_id, event_seq)
    SELECT w.tenant_id, w.id, v_seq
      FROM aos_cus.cus_webhooks w
     WHERE w.tenant_id OPERATOR(pg_catalog.=) emit_webhook_event.tenant_id AND w.enabled
       AND (w.events IS NULL OR emit_webhook_event.type OPERATOR(pg_catalog.=) ANY (w.events));
    RETURN true;
END
$$;
COMMENT ON FUNCTION aos_cus_internal.emit_webhook_event(uuid, text, text, text, jsonb) IS
    'internal: write one event to the webhook outbox (once per dedup_key) with a delivery per subscribed endpoint';
REVOKE ALL ON FUNCTION aos_cus_internal.emit_webhook_event(uuid, text, text, text, jsonb) FROM PUBLIC;

-- The Slack text of an event.
CREATE FUNCTION aos_cus_internal.webhook_summary(type text, payload jsonb) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
SELECT CASE webhook_summary.type
    WHEN 'budget.threshold' THEN pg_catalog.format('aos_cus: the budget of %s reached %s%% (%s of %s micro-cents)',
        payload OPERATOR(pg_catalog.->>) 'scope', payload OPERATOR(pg_catalog.->>) 'threshold',
        payload OPERATOR(pg_catalog.->>) 'used', payload OPERATOR(pg_catalog.->>) 'limit')
    WHEN 'tokens.threshold' THEN pg_catalog.format('aos_cus: the token limit of %s reached %s%% (%s of %s tokens)',
        payload OPERATOR(pg_catalog.->>) 'scope', payload OPERATOR(pg_catalog.->>) 'threshold',
        payload OPERATOR(pg_catalog.->>) 'used', payload OPERATOR(pg_catalog.->>) 'limit')
    WHEN 'budget.exhausted' THEN pg_catalog.format('aos_cus: the budget of %s is exhausted: calls are blocked (%s of %s micro-cents)',
        payload OPERATOR(pg_catalog.->>) 'scope', payload OPERATOR(pg_catalog.->>) 'used', payload OPERATOR(pg_catalog.->>) 'limit')
    WHEN 'tokens.exhausted' THEN pg_catalog.format('aos_cus: the token limit of %s is exhausted: calls are blocked (%s of %s tokens)',
        payload OPERATOR(pg_catalog.->>) 'scope', payload OPERATOR(pg_catalog.->>) 'used', payload OPERATOR(pg_catalog.->>) 'limit')
    WHEN 'budget.projected_overrun' THEN pg_catalog.format('aos_cus: at its current rate the budget of %s will be exceeded before %s (%s projected, %s micro-cents)',
        payload OPERATOR(pg_catalog.->>) 'scope', payload OPERATOR(pg_catalog.#>>) '{period,end}',
        payload OPERATOR(pg_catalog.->>) 'projected', payload OPERATOR(pg_catalog.->>) 'limit')
    WHEN 'integration.health_changed' THEN pg_catalog.format('aos_cus: %s is %s (was %s)',
        payload OPERATOR(pg_catalog.->>) 'scope', payload OPERATOR(pg_catalog.->>) 'state', payload OPERATOR(pg_catalog.->>) 'previous_state')
    ELSE pg_catalog.format('aos_cus: %s', webhook_summary.type) END
$$;
COMMENT ON FUNCTION aos_cus_internal.webhook_summary(text, jsonb) IS 'the one-line text of a webhook event (the body of format ''slack'')';
REVOKE ALL ON FUNCTION aos_cus_internal.webhook_summary(text, jsonb) FROM PUBLIC;

CREATE FUNCTION aos_cus.create_webhook(tenant_id uuid, url text, secret text DEFAULT NULL, events text[] DEFAULT NULL,
                                       format text DEFAULT 'standard', OUT webhook_id uuid, OUT secret text)
    RETURNS record
    AS 'MODULE_PATHNAME', 'aos_cus_create_webhook'
    LANGUAGE C VOLATILE;
COMMENT ON FUNCTION aos_cus.create_webhook(uuid, text, text, text[], text) IS
    'registers a webhook endpoint; returns its id and its signing secret (whsec_..., generated when NULL) this once';

CREATE FUNCTION aos_cus.list_webhooks(tenant_id uuid)
    RETURNS TABLE (webhook_id uuid, url text, events text[], format text, enabled boolean, created_at timestamptz,
                   delivered bigint, failed bigint, retried bigint, dead_lettered bigint, pending bigint,
                   oldest_pending_at timestamptz)
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF list_webhooks.tenant_id IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = '22004', MESSAGE = 'tenant_id must not be null';
    END IF;
    PERFORM aos_cus.assert_tenant(list_webhooks.tenant_id);
    RETURN QUERY
    SELECT w.id, w.url, w.events, w.format, w.enabled, w.created_at, w.delivered, w.failed, w.retried, w.dead_lettered,
           p.n, p.oldest
      FROM aos_cus.cus_webhooks w
      CROSS JOIN LATERAL (SELECT pg_catalog.count(*) AS n, pg_catalog.min(d.created_at) AS oldest
                            FROM aos_cus.cus_webhook_deliveries d
                           WHERE d.tenant_id OPERATOR(pg_catalog.=) w.tenant_id AND d.webhook_id OPERATOR(pg_catalog.=) w.id
                             AND d.status OPERATOR(pg_catalog.=) 'pending') p
     WHERE w.tenant_id OPERATOR(pg_catalog.=) list_webhooks.tenant_id
     ORDER BY w.created_at, w.id;
END
$$;
COMMENT ON FUNCTION aos_cus.list_webhooks(uuid) IS 'the tenant''s webhook endpoints with their delivery counters and backlog (never the secret)';

CREATE FUNCTION aos_cus.disable_webhook(tenant_id uuid, webhook_id uuid) RETURNS boolean
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF disable_webhook.tenant_id IS NULL OR disable_webhook.webhook_id IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = '22004', MESSAGE = 'tenant_id and webhook_id must not be null';
    END IF;
    PERFORM aos_cus.assert_tenant(disable_webhook.tenant_id);
    UPDATE aos_cus.cus_webhooks w SET enabled = false
     WHERE w.tenant_id OPERATOR(pg_catalog.=) disable_webhook.tenant_id AND w.id OPERATOR(pg_catalog.=) disable_webhook.webhook_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = '02000', MESSAGE = 'webhook_id does not name a webhook of this tenant';
    END IF;
    RETURN true;
END
$$;
COMMENT ON FUNCTION aos_cus.disable_webhook(uuid, uuid) IS
    'stops deliveries to an endpoint and its subscription to new events (pending deliveries are kept)';

CREATE FUNCTION aos_cus.delete_webhook(tenant_id uuid, webhook_id uuid) RETURNS boolean
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF delete_webhook.tenant_id IS NULL OR delete_webhook.webhook_id IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = '22004', MESSAGE = 'tenant_id and webhook_id must not be null';
    END IF;
    PERFORM aos_cus.assert_tenant(delete_webhook.tenant_id);
    DELETE FROM aos_cus.cus_webhooks w
     WHERE w.tenant_id OPERATOR(pg_catalog.=) delete_webhook.tenant_id AND w.id OPERATOR(pg_catalog.=) delete_webhook.webhook_id;
    RETURN FOUND;
END
$$;
COMMENT ON FUNCTION aos_cus.delete_webhook(uuid, uuid) IS 'removes an endpoint with its deliveries; true when it existed';

CREATE FUNCTION aos_cus.redeliver(event_id uuid) RETURNS integer
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_tenant uuid;
    v_seq bigint;
    v_n integer;
BEGIN
    IF redeliver.event_id IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = '22004', MESSAGE = 'event_id must not be null';
    END IF;
    SELECT e.tenant_id, e.id INTO v_tenant, v_seq FROM aos_cus.cus_webhook_events e
     WHERE e.event_id OPERATOR(pg_catalog.=) redeliver.event_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = '02000', MESSAGE = 'event_id does not name a webhook event of this tenant';
    END IF;
    PERFORM aos_cus.assert_tenant(v_tenant);
    UPDATE aos_cus.cus_webhook_deliveries d
       SET status = 'pending', attempts = 0, next_attempt_at = pg_catalog.now(), delivered_at = NULL
     WHERE d.tenant_id OPERATOR(pg_catalog.=) v_tenant AND d.event_seq OPERATOR(pg_catalog.=) v_seq;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    RETURN v_n;
END
$$;
COMMENT ON FUNCTION aos_cus.redeliver(uuid) IS
    'queues an event again (delivered or dead-lettered) to every endpoint that had it, with the same webhook-id; returns how many';

-- Projected overrun: at the current period's run rate (from the daily rollups), spend reaches the budget before the
-- period ends. Run by the webhook worker every aos_cus.webhook_projection_interval; once per period and limit.
CREATE FUNCTION aos_cus_internal.emit_projected_overruns() RETURNS integer
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r record;
    v_n integer := 0;
    v_projected numeric;
BEGIN
    FOR r IN
        SELECT i.tenant_id, i.id, i.budget_microcents AS budget, b.period_start, b.period_end, s.spent,
               EXTRACT(epoch FROM pg_catalog.now() OPERATOR(pg_catalog.-) b.period_start) AS elapsed,
               EXTRACT(epoch FROM b.period_end OPERATOR(pg_catalog.-) b.period_start) AS total
          FROM aos_cus.cus_integrations i
         CROSS JOIN LATERAL aos_cus.limit_period_bounds(i.budget_period, i.timezone) b
         CROSS JOIN LATERAL (SELECT pg_catalog.sum(d.cost_microcents) AS spent
                               FROM aos_cus.cus_usage_daily d
                              WHERE d.tenant_id OPERATOR(pg_catalog.=) i.tenant_id
                                AND d.integration_id OPERATOR(pg_catalog.=) i.id
                                AND d.day OPERATOR(pg_catalog.>=) (b.period_start AT TIME ZONE 'UTC')::pg_catalog.date) s
         WHERE i.status OPERATOR(pg_catalog.=) 'enabled' AND i.budget_microcents OPERATOR(pg_catalog.>) 0
           AND b.period_end IS NOT NULL
           AND EXISTS (SELECT FROM aos_cus.cus_webhooks w
                        WHERE w.tenant_id OPERATOR(pg_catalog.=) i.tenant_id AND w.enabled)
    LOOP
        CONTINUE WHEN r.spent IS NULL OR r.spent OPERATOR(pg_catalog.>=) r.budget OR r.elapsed OPERATOR(pg_catalog.<=) 0;
        v_projected := pg_catalog.round(r.spent::numeric OPERATOR(pg_catalog.*) r.total OPERATOR(pg_catalog./) r.elapsed);
        CONTINUE WHEN v_projected OPERATOR(pg_catalog.<=) r.budget;
        IF aos_cus_internal.emit_webhook_event(r.tenant_id, 'budget.projected_overrun', 'integration:' OPERATOR(pg_catalog.||) r.id,
               pg_catalog.concat_ws(':', 'budget.projected_overrun', r.id, EXTRACT(epoch FROM r.period_start), r.budget),
               pg_catalog.jsonb_build_object('tenant', r.tenant_id, 'integration', r.id,
                   'scope', 'integration:' OPERATOR(pg_catalog.||) r.id, 'dimension', 'budget',
                   'period', pg_catalog.jsonb_build_object('start', r.period_start, 'end', r.period_end),
                   'used', r.spent, 'projected', v_projected, 'limit', r.budget)) THEN
            v_n := v_n OPERATOR(pg_catalog.+) 1;
        END IF;
    END LOOP;
    RETURN v_n;
END
$$;
COMMENT ON FUNCTION aos_cus_internal.emit_projected_overruns() IS
    'internal (webhook worker): emit budget.projected_overrun for budgets the period''s run rate will exceed, once per period';
REVOKE ALL ON FUNCTION aos_cus_internal.emit_projected_overruns() FROM PUBLIC;

-- Per endpoint, for metrics() (every tenant: operator and monitoring roles only).
CREATE VIEW aos_cus.stat_webhooks AS
SELECT w.tenant_id, w.id AS webhook_id, w.delivered, w.failed, w.retried, w.dead_lettered,
       coalesce(p.n, 0) AS pending,
       coalesce(EXTRACT(epoch FROM pg_catalog.now() OPERATOR(pg_catalog.-) p.oldest)::float8, 0) AS oldest_pending_seconds
  FROM aos_cus.cus_webhooks w
  LEFT JOIN (SELECT d.tenant_id, d.webhook_id, pg_catalog.count(*) AS n, pg_catalog.min(d.created_at) AS oldest
               FROM aos_cus.cus_webhook_deliveries d
              WHERE d.status OPERATOR(pg_catalog.=) 'pending'
              GROUP BY d.tenant_id, d.webhook_id) p
         ON p.tenant_id OPERATOR(pg_catalog.=) w.tenant_id AND p.webhook_id OPERATOR(pg_catalog.=) w.id
 WHERE aos_cus.assert_no_tenant('stat_webhooks')
 ORDER BY w.tenant_id, w.id;
COMMENT ON VIEW aos_cus.stat_webhooks IS
    'per webhook endpoint: deliveries, failed attempts, retries, dead letters, pending deliveries and the age of the oldest (every tenant)';
REVOKE ALL ON aos_cus.stat_webhooks FROM PUBLIC;
GRANT SELECT ON aos_cus.stat_webhooks TO aos_cus_operator, pg_monitor;

REVOKE ALL ON FUNCTION aos_cus.create_webhook(uuid, text, text, text[], text), aos_cus.list_webhooks(uuid),
    aos_cus.disable_webhook(uuid, uuid), aos_cus.delete_webhook(uuid, uuid), aos_cus.redeliver(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION aos_cus.create_webhook(uuid, text, text, text[], text), aos_cus.disable_webhook(uuid, uuid),
    aos_cus.delete_webhook(uuid, uuid), aos_cus.redeliver(uuid) TO aos_cus_admin;
GRANT EXECUTE ON FUNCTION aos_cus.list_webhooks(uuid) TO aos_cus_admin, aos_cus_reader;

CREATE OR REPLACE FUNCTION aos_cus.record_health(tenant_id uuid, integration_id uuid, state text, latency_ms integer,
                                      error text DEFAULT NULL) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_status text;
    v_previous text;
    v_history bigint;
BEGIN
    IF record_health.tenant_id IS NULL THEN
        RAISE EXCEPTION 'tenant_id must not be null' USING ERRCODE = '22004';
    END IF;
    IF record_health.integration_id IS NULL THEN
        RAISE EXCEPTION 'integration_id must not be null' USING ERRCODE = '22004';
    END IF;
    IF record_health.state IS NULL OR record_health.state NOT IN ('unknown', 'healthy', 'degraded', 'failing') THEN
        RAISE EXCEPTION 'state must be one of unknown, healthy, degraded, failing' USING ERRCODE = '22023';
    END IF;
    IF record_health.latency_ms < 0 THEN
        RAISE EXCEPTION 'latency_ms must not be negative' USING ERRCODE = '22023';
    END IF;
    IF pg_catalog.length(record_health.error) > 1000 THEN
        RAISE EXCEPTION 'error must be at most 1000 characters' USING ERRCODE = '22001';
    END IF;
    PERFORM aos_cus.assert_tenant(record_health.tenant_id);

    SELECT i.status, i.health_state INTO v_status, v_previous FROM aos_cus.cus_integrations i
     WHERE i.tenant_id = record_health.tenant_id AND i.id = record_health.integration_id
       FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'integration % does not exist for this tenant', record_health.integration_id USING ERRCODE = '42704';
    ELSIF v_status = 'deleted' THEN
        RAISE EXCEPTION 'integration % is deleted', record_health.integration_id USING ERRCODE = '55000';
    END IF;
    UPDATE aos_cus.cus_integrations i
       SET health_state = record_health.state, health_checked_at = pg_catalog.now(),
           health_latency_ms = record_health.latency_ms, health_error = record_health.error
     WHERE i.tenant_id = record_health.tenant_id AND i.id = record_health.integration_id;
    INSERT INTO aos_cus.cus_health_history (tenant_id, integration_id, state, latency_ms, error)
    VALUES (record_health.tenant_id, record_health.integration_id, record_health.state,
            record_health.latency_ms, record_health.error)
    RETURNING id INTO v_history;
    -- Healthy to failing and back is a webhook event (issue 15), in this transaction.
    IF (v_previous, record_health.state) IN (('healthy', 'failing'), ('failing', 'healthy')) THEN
        PERFORM aos_cus_internal.emit_webhook_event(record_health.tenant_id, 'integration.health_changed',
            'integration:' OPERATOR(pg_catalog.||) record_health.integration_id,
            pg_catalog.concat_ws(':', 'integration.health_changed', record_health.integration_id, v_history),
            pg_catalog.jsonb_build_object('tenant', record_health.tenant_id, 'integration', record_health.integration_id,
                'scope', 'integration:' OPERATOR(pg_catalog.||) record_health.integration_id,
                'state', record_health.state, 'previous_state', v_previous, 'error', record_health.error));
    END IF;
    -- Bounded retention: drop this integration's rows beyond the newest health_history_keep.
    DELETE FROM aos_cus.cus_health_history h
     WHERE h.tenant_id = record_health.tenant_id AND h.integration_id = record_health.integration_id
       AND h.id <= (SELECT o.id FROM aos_cus.cus_health_history o
                     WHERE o.tenant_id = record_health.tenant_id AND o.integration_id = record_health.integration_id
                     ORDER BY o.id DESC
                    OFFSET pg_catalog.current_setting('aos_cus.health_history_keep')::integer LIMIT 1);
END
$$;

-- Messages (issue 18): an unknown webhook or webhook event is 42704, worded as for integrations.
CREATE OR REPLACE FUNCTION aos_cus.disable_webhook(tenant_id uuid, webhook_id uuid) RETURNS boolean
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF disable_webhook.tenant_id IS NULL OR disable_webhook.webhook_id IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = '22004', MESSAGE = 'tenant_id and webhook_id must not be null';
    END IF;
    PERFORM aos_cus.assert_tenant(disable_webhook.tenant_id);
    UPDATE aos_cus.cus_webhooks w SET enabled = false
     WHERE w.tenant_id OPERATOR(pg_catalog.=) disable_webhook.tenant_id AND w.id OPERATOR(pg_catalog.=) disable_webhook.webhook_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = '42704',
            MESSAGE = pg_catalog.format('webhook %s does not exist for this tenant', disable_webhook.webhook_id);
    END IF;
    RETURN true;
END
$$;
CREATE OR REPLACE FUNCTION aos_cus.redeliver(event_id uuid) RETURNS integer
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_tenant uuid;
    v_seq bigint;
    v_n integer;
BEGIN
    IF redeliver.event_id IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = '22004', MESSAGE = 'event_id must not be null';
    END IF;
    SELECT e.tenant_id, e.id INTO v_tenant, v_seq FROM aos_cus.cus_webhook_events e
     WHERE e.event_id OPERATOR(pg_catalog.=) redeliver.event_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = '42704',
            MESSAGE = pg_catalog.format('webhook event %s does not exist for this tenant', redeliver.event_id);
    END IF;
    PERFORM aos_cus.assert_tenant(v_tenant);
    UPDATE aos_cus.cus_webhook_deliveries d
       SET status = 'pending', attempts = 0, next_attempt_at = pg_catalog.now(), delivered_at = NULL
     WHERE d.tenant_id OPERATOR(pg_catalog.=) v_tenant AND d.event_seq OPERATOR(pg_catalog.=) v_seq;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    RETURN v_n;
END
$$;

-- Scaling out with Citus (issue 20): trigger checks accept Citus shards of their table, rollups fold only the
-- rows this node stores (per node under Citus) and set updated_at from the inserted row (Citus allows only immutable
-- functions in DO UPDATE SET), list_integrations passes a row of the table's own type, login bindings reach every
-- Citus worker, citus_distribute() and its helpers.
CREATE OR REPLACE FUNCTION aos_cus_internal.integration_lifecycle() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    -- cus_integrations or one of its Citus shards (cus_integrations_<shard id>).
    IF TG_TABLE_SCHEMA <> 'aos_cus' OR TG_TABLE_NAME !~ '^cus_integrations(_[0-9]+)?$' THEN
        RAISE EXCEPTION 'aos_cus_internal.integration_lifecycle() may only be attached to aos_cus.cus_integrations, not to %.%',
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
CREATE OR REPLACE FUNCTION aos_cus.list_integrations(tenant_id uuid, status text DEFAULT NULL, after_id uuid DEFAULT NULL,
                                          page_size integer DEFAULT 50) RETURNS SETOF aos_cus.integration
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    e_state text;
    e_message text;
    e_detail text;
    e_hint text;
BEGIN
    PERFORM aos_cus.assert_tenant(tenant_id);
    IF status IS NOT NULL AND status NOT IN ('created', 'enabled', 'disabled', 'deleted') THEN
        RAISE EXCEPTION 'status must be created, enabled, disabled, deleted or NULL (every status but deleted), not %',
            pg_catalog.to_jsonb(CASE WHEN pg_catalog.length(status) > 40 THEN pg_catalog.left(status, 40) || '...' ELSE status END) USING ERRCODE = '22023';
    END IF;
    IF page_size IS NULL THEN
        RAISE EXCEPTION 'page_size must not be null' USING ERRCODE = '22004';
    END IF;
    IF page_size NOT BETWEEN 1 AND 1000 THEN
        RAISE EXCEPTION 'page_size must be between 1 and 1000, not %', page_size USING ERRCODE = '22023';
    END IF;
    -- Keyset pagination on the primary key (tenant_id, id): stable order, each row once.
    RETURN QUERY
        SELECT (aos_cus_internal.integration_of(ROW(c.*)::aos_cus.cus_integrations)).* FROM aos_cus.cus_integrations c
         WHERE c.tenant_id = list_integrations.tenant_id
           AND c.id > coalesce(after_id, '00000000-0000-0000-0000-000000000000')
           AND CASE WHEN list_integrations.status IS NULL THEN c.status <> 'deleted' ELSE c.status = list_integrations.status END
         ORDER BY c.id
         LIMIT page_size;
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS e_state = RETURNED_SQLSTATE, e_message = MESSAGE_TEXT, e_detail = PG_EXCEPTION_DETAIL,
                            e_hint = PG_EXCEPTION_HINT;
    PERFORM aos_cus_internal.raise_error(e_state, e_message, e_detail, e_hint);
END
$$;
CREATE OR REPLACE FUNCTION aos_cus.bind_login(login regrole, tenant_id uuid) RETURNS void
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
CREATE OR REPLACE FUNCTION aos_cus.unbind_login(login regrole) RETURNS boolean
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
CREATE OR REPLACE FUNCTION aos_cus_internal.fold_usage(filter text, a pg_snapshot, b pg_snapshot, from_day date, to_day date)
    RETURNS bigint LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    folded bigint;
BEGIN
    EXECUTE pg_catalog.format($q$
        WITH g AS (
            SELECT tenant_id, integration_id, (started_at AT TIME ZONE 'UTC')::date AS day, provider, model,
                   count(*) AS requests, count(*) FILTER (WHERE status <> 'success') AS errors,
                   aos_cus_internal.saturate(sum(input_tokens)) AS input_tokens,
                   aos_cus_internal.saturate(sum(cache_read_tokens)) AS cache_read_tokens,
                   aos_cus_internal.saturate(sum(cache_write_tokens)) AS cache_write_tokens,
                   aos_cus_internal.saturate(sum(cache_write_1h_tokens)) AS cache_write_1h_tokens,
                   aos_cus_internal.saturate(sum(output_tokens)) AS output_tokens,
                   aos_cus_internal.saturate(sum(reasoning_tokens)) AS reasoning_tokens,
                   aos_cus_internal.saturate(sum(input_audio_tokens)) AS input_audio_tokens,
                   aos_cus_internal.saturate(sum(output_audio_tokens)) AS output_audio_tokens,
                   aos_cus_internal.saturate(coalesce(sum(cost_microcents), 0)) AS cost_microcents,
                   count(*) FILTER (WHERE cost_microcents IS NULL) AS unpriced_requests,
                   aos_cus_internal.saturate(coalesce(sum(latency_ms), 0)) AS latency_sum_ms,
                   coalesce(max(latency_ms), 0) AS latency_max_ms
              FROM aos_cus.cus_llm_usage
             WHERE (%s) AND %s
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
                input_tokens = aos_cus_internal.saturate(d.input_tokens::numeric + excluded.input_tokens),
                cache_read_tokens = aos_cus_internal.saturate(d.cache_read_tokens::numeric + excluded.cache_read_tokens),
                cache_write_tokens = aos_cus_internal.saturate(d.cache_write_tokens::numeric + excluded.cache_write_tokens),
                cache_write_1h_tokens = aos_cus_internal.saturate(d.cache_write_1h_tokens::numeric + excluded.cache_write_1h_tokens),
                output_tokens = aos_cus_internal.saturate(d.output_tokens::numeric + excluded.output_tokens),
                reasoning_tokens = aos_cus_internal.saturate(d.reasoning_tokens::numeric + excluded.reasoning_tokens),
                input_audio_tokens = aos_cus_internal.saturate(d.input_audio_tokens::numeric + excluded.input_audio_tokens),
                output_audio_tokens = aos_cus_internal.saturate(d.output_audio_tokens::numeric + excluded.output_audio_tokens),
                cost_microcents = aos_cus_internal.saturate(d.cost_microcents::numeric + excluded.cost_microcents),
                unpriced_requests = d.unpriced_requests + excluded.unpriced_requests,
                latency_sum_ms = aos_cus_internal.saturate(d.latency_sum_ms::numeric + excluded.latency_sum_ms),
                latency_max_ms = GREATEST(d.latency_max_ms, excluded.latency_max_ms),
                updated_at = excluded.updated_at)
        SELECT coalesce(sum(requests), 0)::bigint FROM g$q$, filter, aos_cus_internal.node_rows_filter())
    INTO folded USING a, b, from_day, to_day;
    RETURN folded;
END
$$;
CREATE OR REPLACE FUNCTION aos_cus_internal.lock_rollup_state(OUT last_snapshot pg_snapshot, OUT rebuilt bigint)
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
    s := aos_cus_internal.rollup_snapshot();
    -- Ids from another cluster mean nothing here: mark every row we can see as folded ("frozen" xid 2).
    EXECUTE pg_catalog.format('UPDATE aos_cus.cus_llm_usage SET ingest_xid = ''2'' '
                              'WHERE ingest_xid >= pg_catalog.pg_snapshot_xmin($1) AND %s', aos_cus_internal.node_rows_filter())
        USING s;
    EXECUTE 'DELETE FROM aos_cus.cus_usage_daily WHERE ' || aos_cus_internal.node_rows_filter();
    rebuilt := aos_cus_internal.fold_usage('pg_catalog.pg_visible_in_snapshot(ingest_xid, $2)', NULL, s, NULL, NULL);
    UPDATE aos_cus.cus_rollup_state SET last_snapshot = s, system_id = this_system, last_rollup_at = pg_catalog.now();
    last_snapshot := s;
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
    st := aos_cus_internal.lock_rollup_state();
    IF st.rebuilt IS NOT NULL THEN
        RETURN st.rebuilt;
    END IF;
    -- Exactly the rows the aggregates already stand for (visible in last_snapshot), so rollups stay exact.
    EXECUTE 'DELETE FROM aos_cus.cus_usage_daily WHERE day BETWEEN $1 AND $2 AND ' || aos_cus_internal.node_rows_filter()
        USING from_day, to_day;
    RETURN aos_cus_internal.fold_usage(
        'started_at >= ($3::timestamp AT TIME ZONE ''UTC'') AND started_at < (($4 + 1)::timestamp AT TIME ZONE ''UTC'')'
        ' AND pg_catalog.pg_visible_in_snapshot(ingest_xid, $1)', st.last_snapshot, NULL, from_day, to_day);
END
$$;

-- Internal: the usage rows this node stores, as a filter on tenant_id: "true" without Citus; under Citus the
-- hash ranges of this node's shards of cus_llm_usage (rollups and their snapshots are per node).
CREATE FUNCTION aos_cus_internal.node_rows_filter() RETURNS text
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    ranges text;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname OPERATOR(pg_catalog.=) 'citus') THEN
        RETURN 'true';
    END IF;
    EXECUTE $q$
        SELECT pg_catalog.string_agg(pg_catalog.format('pg_catalog.uuid_hash(tenant_id) BETWEEN %s AND %s',
                                                       s.shardminvalue, s.shardmaxvalue), ' OR ')
          FROM pg_catalog.pg_dist_shard s
          JOIN pg_catalog.pg_dist_placement p ON p.shardid OPERATOR(pg_catalog.=) s.shardid
         WHERE s.logicalrelid OPERATOR(pg_catalog.=) 'aos_cus.cus_llm_usage'::pg_catalog.regclass
           AND p.groupid OPERATOR(pg_catalog.=) (SELECT groupid FROM pg_catalog.pg_dist_local_group)$q$
    INTO ranges;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition
                    WHERE logicalrelid OPERATOR(pg_catalog.=) 'aos_cus.cus_llm_usage'::pg_catalog.regclass) THEN
        RETURN 'true';
    END IF;
    RETURN pg_catalog.format('(%s)', coalesce(ranges, 'false'));
END
$$;
COMMENT ON FUNCTION aos_cus_internal.node_rows_filter() IS
    'internal: filter on tenant_id selecting the rows this node stores (true without Citus, this node''s shard ranges under it)';
REVOKE ALL ON FUNCTION aos_cus_internal.node_rows_filter() FROM PUBLIC;

-- Internal: runs command on every Citus worker when this node is a Citus coordinator with workers (a no-op
-- otherwise); raises 58000 naming the nodes where it failed. Not part of this node's transaction.
CREATE FUNCTION aos_cus_internal.citus_on_workers(command text) RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    failed text;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname OPERATOR(pg_catalog.=) 'citus') THEN
        RETURN;
    END IF;
    EXECUTE 'SELECT pg_catalog.string_agg(pg_catalog.format(''%s:%s: %s'', w.nodename, w.nodeport, w.result), ''; '')
               FROM pg_catalog.run_command_on_workers($1) w
              WHERE (SELECT groupid FROM pg_catalog.pg_dist_local_group) OPERATOR(pg_catalog.=) 0 AND NOT w.success'
        INTO failed USING command;
    IF failed IS NOT NULL THEN
        RAISE EXCEPTION USING ERRCODE = '58000', MESSAGE = 'on Citus workers: ' || failed;
    END IF;
END
$$;
COMMENT ON FUNCTION aos_cus_internal.citus_on_workers(text) IS
    'internal: runs a command on every Citus worker from the coordinator (no-op without Citus or on a worker)';
REVOKE ALL ON FUNCTION aos_cus_internal.citus_on_workers(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION aos_cus_internal.citus_on_workers(text) TO aos_cus_operator;

-- Internal, run on every node: each sequence of the extension draws from this node's own range
-- [groupid * 2^48 + 1, (groupid + 1) * 2^48 - 1], so ids stay unique cluster-wide (the coordinator is group 0).
CREATE FUNCTION aos_cus_internal.citus_node_sequences() RETURNS integer
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    grp bigint;
    lo bigint;
    hi bigint;
    seq record;
    n integer := 0;
BEGIN
    EXECUTE 'SELECT groupid FROM pg_catalog.pg_dist_local_group' INTO grp;
    lo := grp OPERATOR(pg_catalog.*) 281474976710656 OPERATOR(pg_catalog.+) 1;
    hi := (grp OPERATOR(pg_catalog.+) 1) OPERATOR(pg_catalog.*) 281474976710656 OPERATOR(pg_catalog.-) 1;
    SET LOCAL citus.enable_ddl_propagation = off;
    FOR seq IN SELECT c.oid::pg_catalog.regclass AS rel, s.last_value
                 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_sequences s
                   ON s.schemaname OPERATOR(pg_catalog.=) 'aos_cus' AND s.sequencename OPERATOR(pg_catalog.=) c.relname
                WHERE c.relnamespace OPERATOR(pg_catalog.=) 'aos_cus'::pg_catalog.regnamespace
                  AND c.relkind OPERATOR(pg_catalog.=) 'S' LOOP
        IF seq.last_value IS NULL OR seq.last_value OPERATOR(pg_catalog.<) lo THEN
            EXECUTE pg_catalog.format('ALTER SEQUENCE %s MINVALUE %s MAXVALUE %s START %s RESTART %s',
                                      seq.rel, lo, hi, lo, lo);
        ELSE
            EXECUTE pg_catalog.format('ALTER SEQUENCE %s MINVALUE %s MAXVALUE %s START %s', seq.rel, lo, hi, lo);
        END IF;
        n := n OPERATOR(pg_catalog.+) 1;
    END LOOP;
    RETURN n;
END
$$;
COMMENT ON FUNCTION aos_cus_internal.citus_node_sequences() IS
    'internal to citus_distribute(): moves this node''s aos_cus sequences into its own id range';
REVOKE ALL ON FUNCTION aos_cus_internal.citus_node_sequences() FROM PUBLIC;

CREATE FUNCTION aos_cus.citus_distribute() RETURNS TABLE (object text, action text)
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    t text;
    f regprocedure;
    done boolean;
BEGIN
    PERFORM aos_cus.assert_platform('citus_distribute()');
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname OPERATOR(pg_catalog.=) 'citus') THEN
        RAISE EXCEPTION USING ERRCODE = '0A000', MESSAGE = 'citus_distribute() requires the citus extension',
            HINT = 'Install Citus, add citus first to shared_preload_libraries, CREATE EXTENSION citus, add the workers.';
    END IF;
    -- The settle and price triggers run on the shards, on the node that stores the tenant.
    SET LOCAL citus.enable_unsafe_triggers = on;
    SET LOCAL citus.multi_shard_modify_mode = 'sequential';
    -- Global tables: one copy on every node.
    FOREACH t IN ARRAY ARRAY['aos_cus.cus_model_prices'] LOOP
        EXECUTE 'SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition WHERE logicalrelid OPERATOR(pg_catalog.=) $1::pg_catalog.regclass)'
            INTO done USING t;
        IF NOT done THEN
            EXECUTE 'SELECT pg_catalog.create_reference_table($1::pg_catalog.regclass)' USING t;
        END IF;
        object := t; action := CASE WHEN done THEN 'already reference' ELSE 'reference table' END;
        RETURN NEXT;
    END LOOP;
    -- Tenant tables: sharded by tenant_id, each tenant's rows of every table on the same node.
    FOREACH t IN ARRAY ARRAY['aos_cus.cus_integrations', 'aos_cus.cus_llm_usage', 'aos_cus.cus_usage_daily',
                             'aos_cus.cus_ingest_rejects', 'aos_cus.cus_enforcement_log', 'aos_cus.cus_health_checks',
                             'aos_cus.cus_health_history', 'aos_cus.cus_credential_sources'] LOOP
        EXECUTE 'SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition WHERE logicalrelid OPERATOR(pg_catalog.=) $1::pg_catalog.regclass)'
            INTO done USING t;
        IF NOT done THEN
            IF t OPERATOR(pg_catalog.=) 'aos_cus.cus_integrations' THEN
                EXECUTE 'SELECT pg_catalog.create_distributed_table($1::pg_catalog.regclass, ''tenant_id'')' USING t;
            ELSE
                EXECUTE 'SELECT pg_catalog.create_distributed_table($1::pg_catalog.regclass, ''tenant_id'', colocate_with => ''aos_cus.cus_integrations'')'
                    USING t;
            END IF;
        END IF;
        object := t; action := CASE WHEN done THEN 'already distributed' ELSE 'distributed by tenant_id' END;
        RETURN NEXT;
    END LOOP;
    -- Tenant-scoped functions (first argument tenant_id, not optional) run on the node holding the tenant.
    FOR f IN SELECT p.oid::pg_catalog.regprocedure FROM pg_catalog.pg_proc p
              WHERE p.pronamespace OPERATOR(pg_catalog.=) 'aos_cus'::pg_catalog.regnamespace
                AND p.pronargs OPERATOR(pg_catalog.>=) 1
                AND p.proargtypes[0] OPERATOR(pg_catalog.=) 'pg_catalog.uuid'::pg_catalog.regtype
                AND p.proargnames[1] OPERATOR(pg_catalog.=) 'tenant_id'
                AND p.pronargdefaults OPERATOR(pg_catalog.<) p.pronargs
                AND p.proname OPERATOR(pg_catalog.<>) ALL (ARRAY['assert_tenant', 'request_health_check', 'record_health'])
              ORDER BY 1::text LOOP
        EXECUTE 'SELECT pg_catalog.create_distributed_function($1, ''$1'', colocate_with => ''aos_cus.cus_integrations'')'
            USING f;
        object := f::text; action := 'delegated by tenant_id';
        RETURN NEXT;
    END LOOP;
    -- Node-disjoint id ranges, on the workers and here.
    PERFORM aos_cus_internal.citus_on_workers('SELECT aos_cus_internal.citus_node_sequences()');
    PERFORM aos_cus_internal.citus_node_sequences();
    object := 'sequences'; action := 'node id ranges';
    RETURN NEXT;
    -- Login bindings are read locally by every node: copy them to the workers (also to workers added since).
    PERFORM aos_cus_internal.citus_on_workers(pg_catalog.format('SELECT aos_cus.bind_login(%L, %L)', l.login, l.tenant_id))
       FROM aos_cus.cus_tenant_logins l;
    object := 'aos_cus.cus_tenant_logins'; action := 'copied to every worker';
    RETURN NEXT;
    -- Rollups per node: each node folds its own shards with its own snapshots.
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname OPERATOR(pg_catalog.=) 'pg_cron') THEN
        EXECUTE 'SELECT cron.unschedule(jobid) FROM cron.job WHERE jobname OPERATOR(pg_catalog.=) $1 AND username OPERATOR(pg_catalog.=) current_user'
            USING 'aos_cus_rollup';
        EXECUTE 'SELECT cron.schedule($1, $2, $3)'
            USING 'aos_cus_rollup', '*/10 * * * *', 'SELECT aos_cus.citus_rollup()';
        object := 'cron job aos_cus_rollup'; action := 'citus_rollup() every 10 minutes';
        RETURN NEXT;
    END IF;
END
$$;
COMMENT ON FUNCTION aos_cus.citus_distribute() IS
    'Citus: distributes the tenant tables by tenant_id, delegates the tenant-scoped functions, gives each node its id range, schedules per-node rollups; idempotent; operator only';
REVOKE ALL ON FUNCTION aos_cus.citus_distribute() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION aos_cus.citus_distribute() TO aos_cus_operator;

CREATE FUNCTION aos_cus.citus_rollup(OUT nodename text, OUT nodeport integer, OUT folded bigint) RETURNS SETOF record
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r record;
BEGIN
    PERFORM aos_cus.assert_platform('citus_rollup()');
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname OPERATOR(pg_catalog.=) 'citus') THEN
        RAISE EXCEPTION USING ERRCODE = '0A000', MESSAGE = 'citus_rollup() requires the citus extension';
    END IF;
    FOR r IN EXECUTE 'SELECT w.nodename, w.nodeport, w.success, w.result
                        FROM pg_catalog.run_command_on_workers(''SELECT aos_cus.rollup_usage()'') w ORDER BY 1, 2' LOOP
        nodename := r.nodename; nodeport := r.nodeport; folded := NULL;
        IF r.success THEN
            folded := r.result::bigint;
        ELSE
            RAISE WARNING 'rollup_usage() failed on %:%: %', r.nodename, r.nodeport, r.result;
        END IF;
        RETURN NEXT;
    END LOOP;
END
$$;
COMMENT ON FUNCTION aos_cus.citus_rollup() IS
    'Citus: runs rollup_usage() on every worker (each folds its own shards with its own snapshots); folded NULL and a WARNING where it failed; operator only';
REVOKE ALL ON FUNCTION aos_cus.citus_rollup() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION aos_cus.citus_rollup() TO aos_cus_operator;

-- Issue 21 (4): unpriced usage is never silent: the pricing trigger records why a row has no cost.
ALTER TABLE aos_cus.cus_llm_usage ADD COLUMN unpriced_reason text;
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
    PRIMARY KEY (tenant_id, scope)
);
COMMENT ON TABLE aos_cus.cus_scope_limits IS 'limits of the tenant, subject:<v>|* and tag:<k>=<v>|* scopes (integration limits stay on cus_integrations)';
SELECT aos_cus_internal.enable_tenant_rls('aos_cus.cus_scope_limits');
SELECT pg_catalog.pg_extension_config_dump('aos_cus.cus_scope_limits', '');
REVOKE ALL ON aos_cus.cus_scope_limits FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE, DELETE ON aos_cus.cus_scope_limits TO aos_cus_admin;
GRANT SELECT ON aos_cus.cus_scope_limits TO aos_cus_app, aos_cus_reader;

-- Per-scope sums for rebuilding a scope's state from the usage rows of its period.
CREATE INDEX cus_llm_usage_subject_idx ON aos_cus.cus_llm_usage (tenant_id, subject, started_at) WHERE subject IS NOT NULL;
CREATE INDEX cus_llm_usage_tags_idx ON aos_cus.cus_llm_usage USING gin (tags jsonb_path_ops) WHERE tags IS NOT NULL;

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
               'rpm', s.rpm, 'tpm', s.tpm, 'warn_at_pct', s.warn_at_pct,
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
    i.warn_at_pct := coalesce(s.warn_at_pct, 80);
    i.enforcement_mode := coalesce(s.enforcement_mode, 'enforce');
    i.timezone := coalesce(s.timezone, 'UTC');
    i := aos_cus_internal.apply_limits(i, limits);
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
    RETURN QUERY
        SELECT s.scope, aos_cus_internal.scope_limits_json(s) FROM aos_cus.cus_scope_limits s
         WHERE s.tenant_id OPERATOR(pg_catalog.=) scope_limits.tenant_id
        UNION ALL
        SELECT 'integration:' OPERATOR(pg_catalog.||) i.id::pg_catalog.text, (aos_cus_internal.integration_of(i)).limits
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

REVOKE ALL ON FUNCTION aos_cus_internal.parse_scope(text), aos_cus_internal.scope_limits_json(aos_cus.cus_scope_limits),
    aos_cus.set_scope_limits(uuid, text, jsonb), aos_cus.scope_limits(uuid), aos_cus.delete_scope_limits(uuid, text)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION aos_cus_internal.parse_scope(text), aos_cus_internal.scope_limits_json(aos_cus.cus_scope_limits),
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
ALTER TABLE aos_cus.cus_enforcement_log DROP CONSTRAINT cus_enforcement_log_reason_check,
    ADD CONSTRAINT cus_enforcement_log_reason_check CHECK (reason IN ('integration_not_found', 'integration_disabled',
        'rate_limited', 'budget_exceeded', 'token_limit_exceeded', 'budget_warning', 'token_warning',
        'already_ingested', 'model_not_allowed', 'request_cost_cap', 'request_token_cap', 'concurrency_limit'));


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
    -- Why cost_microcents is NULL (the pricing trigger fills it; NULL when priced).
    unpriced_reason        text,
    -- Who and what the call was for (enforcement scopes): the end user, and flat string tags (at most 16).
    subject                text CHECK (pg_catalog.octet_length(subject) BETWEEN 1 AND 255),
    tags                   jsonb CHECK (pg_catalog.jsonb_typeof(tags) = 'object' AND pg_catalog.pg_column_size(tags) <= 8192),
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
-- Layered budgets' per-scope sums (issue 14), as in 72_scopes.sql.
CREATE INDEX cus_llm_usage_default_subject_idx ON aos_cus.cus_llm_usage_default (tenant_id, subject, started_at) WHERE subject IS NOT NULL;
CREATE INDEX cus_llm_usage_default_tags_idx ON aos_cus.cus_llm_usage_default USING gin (tags jsonb_path_ops) WHERE tags IS NOT NULL;

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
        ingest_xid, unpriced_reason, subject, tags)
SELECT tenant_id, id, integration_id, call_id, provider, model, service_tier, input_tokens, cache_read_tokens,
       cache_write_tokens, cache_write_1h_tokens, output_tokens, reasoning_tokens, input_audio_tokens, output_audio_tokens,
       cost_microcents, price_id, latency_ms, status, error_code, started_at, ingested_at, metadata, ingest_xid,
       unpriced_reason, subject, tags
  FROM pg_temp.usage_0_1;
INSERT INTO aos_cus.cus_usage_keys (tenant_id, call_id, usage_id, started_at, ingested_at)
SELECT tenant_id, call_id, id, started_at, ingested_at FROM pg_temp.usage_0_1;
ALTER SEQUENCE aos_cus.cus_llm_usage_id_seq OWNED BY aos_cus.cus_llm_usage.id;
DROP TABLE pg_temp.usage_0_1;
SELECT pg_catalog.pg_extension_config_dump('aos_cus.cus_llm_usage_default', '');
SELECT aos_cus_internal.enable_tenant_rls('aos_cus.cus_llm_usage');
GRANT SELECT, INSERT, UPDATE, DELETE ON aos_cus.cus_llm_usage TO aos_cus_admin;
GRANT SELECT ON aos_cus.cus_llm_usage TO aos_cus_app, aos_cus_reader, aos_cus_worker;
GRANT INSERT (tenant_id, integration_id, call_id, provider, model, service_tier, input_tokens, cache_read_tokens,
              cache_write_tokens, cache_write_1h_tokens, output_tokens, reasoning_tokens, input_audio_tokens,
              output_audio_tokens, latency_ms, status, error_code, started_at, metadata, subject, tags)
    ON aos_cus.cus_llm_usage TO aos_cus_app;
REVOKE ALL ON aos_cus.cus_llm_usage_default, aos_cus.cus_usage_keys FROM PUBLIC;
-- Partitions and idempotency keys are reached through cus_llm_usage alone (its row-level security): row-level
-- security without a policy refuses every row to anyone but their owner.
REVOKE ALL ON aos_cus.cus_llm_usage_default, aos_cus.cus_usage_keys FROM aos_cus_admin;
ALTER TABLE aos_cus.cus_llm_usage_default ENABLE ROW LEVEL SECURITY;
ALTER TABLE aos_cus.cus_usage_keys ENABLE ROW LEVEL SECURITY;
CREATE TRIGGER cus_llm_usage_price BEFORE INSERT OR UPDATE OF cost_microcents, price_id ON aos_cus.cus_llm_usage
    FOR EACH ROW WHEN (NEW.cost_microcents IS NULL) EXECUTE FUNCTION aos_cus_internal.usage_price_trigger();
CREATE TRIGGER enforcement_settle AFTER INSERT OR UPDATE OF cost_microcents ON aos_cus.cus_llm_usage
    FOR EACH ROW EXECUTE FUNCTION aos_cus_internal.usage_settle_trigger();
-- Idempotency: each inserted row claims its (tenant_id, call_id) in cus_usage_keys (a duplicate raises 23505,
-- or, inside ingest_usage(), is skipped and reported as duplicate); a deleted row frees its key.
CREATE FUNCTION aos_cus_internal.usage_key_trigger() RETURNS trigger
    AS 'MODULE_PATHNAME', 'aos_cus_usage_key_trigger'
    LANGUAGE C;
COMMENT ON FUNCTION aos_cus_internal.usage_key_trigger() IS
    'keeps cus_usage_keys: claims a usage row''s call_id on insert, frees it on delete or truncate';
REVOKE ALL ON FUNCTION aos_cus_internal.usage_key_trigger() FROM PUBLIC;
CREATE TRIGGER cus_llm_usage_key BEFORE INSERT ON aos_cus.cus_llm_usage
    FOR EACH ROW EXECUTE FUNCTION aos_cus_internal.usage_key_trigger();
CREATE TRIGGER cus_llm_usage_key_free AFTER DELETE ON aos_cus.cus_llm_usage
    FOR EACH ROW EXECUTE FUNCTION aos_cus_internal.usage_key_trigger();
CREATE TRIGGER cus_llm_usage_key_truncate AFTER TRUNCATE ON aos_cus.cus_llm_usage
    FOR EACH STATEMENT EXECUTE FUNCTION aos_cus_internal.usage_key_trigger();

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
SELECT aos_cus_internal.enable_tenant_rls('aos_cus.cus_ingest_rejects');
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
    st := aos_cus_internal.lock_rollup_state();
    IF st.rebuilt IS NOT NULL THEN
        folded := st.rebuilt;
    ELSE
        -- Taken after the lock: a concurrent rollup has committed, so we fold only what it did not.
        s := aos_cus_internal.rollup_snapshot();
        folded := aos_cus_internal.fold_usage(
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
CREATE FUNCTION aos_cus_internal.partition_bounds(tbl regclass, OUT part regclass, OUT lower timestamptz, OUT upper timestamptz)
    RETURNS SETOF record LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT c.oid::regclass, b[1]::timestamptz, b[2]::timestamptz
      FROM pg_catalog.pg_inherits i
      JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) i.inhrelid,
           LATERAL pg_catalog.regexp_match(pg_catalog.pg_get_expr(c.relpartbound, c.oid),
                                           $r$FROM \('([^']+)'\) TO \('([^']+)'\)$r$) b
     WHERE i.inhparent OPERATOR(pg_catalog.=) tbl AND b IS NOT NULL
     ORDER BY 2
$$;
COMMENT ON FUNCTION aos_cus_internal.partition_bounds(regclass) IS 'internal: each time partition of tbl with its [lower, upper) bounds';
REVOKE ALL ON FUNCTION aos_cus_internal.partition_bounds(regclass) FROM PUBLIC;

-- Internal: the start of the partition period holding ts (UTC days, ISO weeks, months, quarters, years).
CREATE FUNCTION aos_cus_internal.partition_start(ts timestamptz, step interval) RETURNS timestamptz
    LANGUAGE sql STABLE STRICT SET search_path = pg_catalog, pg_temp
    RETURN pg_catalog.date_trunc(CASE step WHEN interval '1 day' THEN 'day' WHEN interval '7 days' THEN 'week'
                                          WHEN interval '1 month' THEN 'month' WHEN interval '3 months' THEN 'quarter'
                                          ELSE 'year' END, ts, 'UTC');
COMMENT ON FUNCTION aos_cus_internal.partition_start(timestamptz, interval) IS 'internal: start of the partition period holding ts';
REVOKE ALL ON FUNCTION aos_cus_internal.partition_start(timestamptz, interval) FROM PUBLIC;

-- Internal: a new partition [lower, upper) of tbl holding the default partition's rows of that range, built with
-- the default partition's keys and indexes and attached (the parent's triggers and foreign key are cloned). The
-- default partition is detached meanwhile (moving its rows fires no trigger); inserts wait for the commit.
CREATE FUNCTION aos_cus_internal.add_partition(tbl regclass, lower timestamptz, upper timestamptz) RETURNS regclass
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
COMMENT ON FUNCTION aos_cus_internal.add_partition(regclass, timestamptz, timestamptz) IS
    'internal to maintain_partitions(): a new time partition holding the default partition''s rows of its range';
REVOKE ALL ON FUNCTION aos_cus_internal.add_partition(regclass, timestamptz, timestamptz) FROM PUBLIC;

-- Internal: partitions of tbl ahead of now, the default partition's rows in their own, past retention dropped.
CREATE FUNCTION aos_cus_internal.maintain_table(tbl regclass, step interval, retention interval)
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
        lo := GREATEST((SELECT max(b.upper) FROM aos_cus_internal.partition_bounds(tbl) b),
                       aos_cus_internal.partition_start(pg_catalog.now(), step));
        EXIT WHEN lo > ahead;
        action := 'created';
        partition_name := aos_cus_internal.add_partition(tbl, lo, aos_cus_internal.partition_start(lo, step) + step)::text;
        RETURN NEXT;
    END LOOP;
    -- Rows in the default partition: each in the gap between partitions that holds it, cut to its period.
    LOOP
        EXECUTE pg_catalog.format('SELECT min(%I) FROM %s', col, def) INTO r;
        EXIT WHEN r IS NULL;
        lo := GREATEST(aos_cus_internal.partition_start(r, step),
                       (SELECT max(b.upper) FROM aos_cus_internal.partition_bounds(tbl) b WHERE b.upper OPERATOR(pg_catalog.<=) r));
        hi := LEAST(aos_cus_internal.partition_start(r, step) + step,
                    (SELECT min(b.lower) FROM aos_cus_internal.partition_bounds(tbl) b WHERE b.lower OPERATOR(pg_catalog.>) r));
        action := 'moved';
        partition_name := aos_cus_internal.add_partition(tbl, lo, hi)::text;
        RETURN NEXT;
    END LOOP;
    IF retention IS NULL THEN
        RETURN;
    END IF;
    -- Retention: whole partitions ending before now - retention; usage only once every row is rolled up.
    st := (SELECT s.last_snapshot FROM aos_cus.cus_rollup_state s);
    FOR p IN SELECT * FROM aos_cus_internal.partition_bounds(tbl) b WHERE b.upper OPERATOR(pg_catalog.<=) pg_catalog.now() - retention LOOP
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
COMMENT ON FUNCTION aos_cus_internal.maintain_table(regclass, interval, interval) IS 'internal to maintain_partitions(): one partitioned table';
REVOKE ALL ON FUNCTION aos_cus_internal.maintain_table(regclass, interval, interval) FROM PUBLIC;

CREATE FUNCTION aos_cus.maintain_partitions() RETURNS TABLE (table_name text, action text, partition_name text)
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    cfg record := aos_cus.usage_settings();
BEGIN
    PERFORM aos_cus.assert_platform('maintain_partitions()');
    RETURN QUERY SELECT 'cus_llm_usage', m.action, m.partition_name
                   FROM aos_cus_internal.maintain_table('aos_cus.cus_llm_usage', cfg.partition_interval, cfg.raw_retention) m;
    RETURN QUERY SELECT 'cus_ingest_rejects', m.action, m.partition_name
                   FROM aos_cus_internal.maintain_table('aos_cus.cus_ingest_rejects', cfg.partition_interval, cfg.rejects_retention) m;
    DELETE FROM aos_cus.cus_usage_hourly h WHERE h.hour OPERATOR(pg_catalog.<) pg_catalog.now() - cfg.hourly_retention;
    -- A key lives while its row started, or was ingested, inside the window.
    DELETE FROM aos_cus.cus_usage_keys k WHERE k.started_at OPERATOR(pg_catalog.<) pg_catalog.now() - cfg.idempotency_window
                                           AND k.ingested_at OPERATOR(pg_catalog.<) pg_catalog.now() - cfg.idempotency_window;
END
$$;
COMMENT ON FUNCTION aos_cus.maintain_partitions() IS
    'creates time partitions ahead, moves default-partition rows into their own, drops partitions past retention, prunes hourly rollups and idempotency keys; rollup_usage() runs it';

-- Internal: the settings row, made from the defaults when missing, for an update.
CREATE FUNCTION aos_cus_internal.lock_usage_settings() RETURNS void
    LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    INSERT INTO aos_cus.cus_usage_settings (partition_interval, idempotency_window, raw_retention, rejects_retention, hourly_retention)
    SELECT s.partition_interval, s.idempotency_window, s.raw_retention, s.rejects_retention, s.hourly_retention
      FROM aos_cus.usage_settings() s
    ON CONFLICT (id) DO UPDATE SET updated_at = pg_catalog.now()
$$;
COMMENT ON FUNCTION aos_cus_internal.lock_usage_settings() IS 'internal: makes and locks the settings row';
REVOKE ALL ON FUNCTION aos_cus_internal.lock_usage_settings() FROM PUBLIC;

CREATE FUNCTION aos_cus.set_retention(raw interval, rejects interval) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM aos_cus.assert_platform('set_retention()');
    IF raw < interval '1 day' OR rejects < interval '1 day' THEN
        RAISE EXCEPTION USING ERRCODE = '22023',
            MESSAGE = pg_catalog.format('retention raw %s, rejects %s: each must be NULL (forever) or at least 1 day',
                                        coalesce(raw::text, 'NULL'), coalesce(rejects::text, 'NULL'));
    END IF;
    PERFORM aos_cus_internal.lock_usage_settings();
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
            MESSAGE = pg_catalog.format('partition_interval "%s" is not one of 1 day, 7 days, 1 month, 3 months, 1 year', partition_interval);
    END IF;
    IF idempotency_window < interval '1 day' OR hourly_retention < interval '1 day' THEN
        RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = pg_catalog.format(
            'idempotency_window %s, hourly_retention %s: each must be at least 1 day', idempotency_window, hourly_retention);
    END IF;
    PERFORM aos_cus_internal.lock_usage_settings();
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
SELECT count(*) FROM aos_cus_internal.maintain_table('aos_cus.cus_llm_usage', interval '1 month', NULL);
SELECT count(*) FROM aos_cus_internal.maintain_table('aos_cus.cus_ingest_rejects', interval '1 month', NULL);

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
SELECT aos_cus_internal.enable_tenant_rls('aos_cus.cus_usage_hourly');
REVOKE ALL ON aos_cus.cus_usage_hourly FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE, DELETE ON aos_cus.cus_usage_hourly TO aos_cus_admin;
GRANT SELECT ON aos_cus.cus_usage_hourly TO aos_cus_app, aos_cus_reader, aos_cus_worker;
CREATE OR REPLACE FUNCTION aos_cus_internal.fold_usage(filter text, a pg_snapshot, b pg_snapshot, from_day date, to_day date)
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
                input_tokens = aos_cus_internal.saturate(d.input_tokens::numeric + excluded.input_tokens),
                cache_read_tokens = aos_cus_internal.saturate(d.cache_read_tokens::numeric + excluded.cache_read_tokens),
                cache_write_tokens = aos_cus_internal.saturate(d.cache_write_tokens::numeric + excluded.cache_write_tokens),
                cache_write_1h_tokens = aos_cus_internal.saturate(d.cache_write_1h_tokens::numeric + excluded.cache_write_1h_tokens),
                output_tokens = aos_cus_internal.saturate(d.output_tokens::numeric + excluded.output_tokens),
                reasoning_tokens = aos_cus_internal.saturate(d.reasoning_tokens::numeric + excluded.reasoning_tokens),
                input_audio_tokens = aos_cus_internal.saturate(d.input_audio_tokens::numeric + excluded.input_audio_tokens),
                output_audio_tokens = aos_cus_internal.saturate(d.output_audio_tokens::numeric + excluded.output_audio_tokens),
                cost_microcents = aos_cus_internal.saturate(d.cost_microcents::numeric + excluded.cost_microcents),
                unpriced_requests = d.unpriced_requests + excluded.unpriced_requests,
                latency_sum_ms = aos_cus_internal.saturate(d.latency_sum_ms::numeric + excluded.latency_sum_ms),
                latency_max_ms = GREATEST(d.latency_max_ms, excluded.latency_max_ms),
                updated_at = excluded.updated_at$u$;
    -- Hours before the hourly retention are not kept (maintain_partitions() prunes them).
    hourly_from timestamptz := pg_catalog.now() - (SELECT s.hourly_retention FROM aos_cus.usage_settings() s);
    folded bigint;
BEGIN
    -- Rows grouped by UTC hour; the days are sums of their hours (sums of non-negative counts saturate alike).
    EXECUTE pg_catalog.format($q$
        WITH h AS (
            SELECT tenant_id, integration_id, pg_catalog.date_trunc('hour', started_at, 'UTC') AS hour, provider, model,
                   count(*) AS requests, count(*) FILTER (WHERE status <> 'success') AS errors,
                   aos_cus_internal.saturate(sum(input_tokens)) AS input_tokens,
                   aos_cus_internal.saturate(sum(cache_read_tokens)) AS cache_read_tokens,
                   aos_cus_internal.saturate(sum(cache_write_tokens)) AS cache_write_tokens,
                   aos_cus_internal.saturate(sum(cache_write_1h_tokens)) AS cache_write_1h_tokens,
                   aos_cus_internal.saturate(sum(output_tokens)) AS output_tokens,
                   aos_cus_internal.saturate(sum(reasoning_tokens)) AS reasoning_tokens,
                   aos_cus_internal.saturate(sum(input_audio_tokens)) AS input_audio_tokens,
                   aos_cus_internal.saturate(sum(output_audio_tokens)) AS output_audio_tokens,
                   aos_cus_internal.saturate(coalesce(sum(cost_microcents), 0)) AS cost_microcents,
                   count(*) FILTER (WHERE cost_microcents IS NULL) AS unpriced_requests,
                   aos_cus_internal.saturate(coalesce(sum(latency_ms), 0)) AS latency_sum_ms,
                   coalesce(max(latency_ms), 0) AS latency_max_ms
              FROM aos_cus.cus_llm_usage
             WHERE (%1$s) AND %4$s
             GROUP BY 1, 2, 3, 4, 5),
        kept AS (SELECT * FROM h WHERE hour >= $5),
        g AS (
            SELECT tenant_id, integration_id, (hour AT TIME ZONE 'UTC')::date AS day, provider, model,
                   sum(requests)::bigint AS requests, sum(errors)::bigint AS errors,
                   aos_cus_internal.saturate(sum(input_tokens)) AS input_tokens,
                   aos_cus_internal.saturate(sum(cache_read_tokens)) AS cache_read_tokens,
                   aos_cus_internal.saturate(sum(cache_write_tokens)) AS cache_write_tokens,
                   aos_cus_internal.saturate(sum(cache_write_1h_tokens)) AS cache_write_1h_tokens,
                   aos_cus_internal.saturate(sum(output_tokens)) AS output_tokens,
                   aos_cus_internal.saturate(sum(reasoning_tokens)) AS reasoning_tokens,
                   aos_cus_internal.saturate(sum(input_audio_tokens)) AS input_audio_tokens,
                   aos_cus_internal.saturate(sum(output_audio_tokens)) AS output_audio_tokens,
                   aos_cus_internal.saturate(sum(cost_microcents)) AS cost_microcents,
                   sum(unpriced_requests)::bigint AS unpriced_requests,
                   aos_cus_internal.saturate(sum(latency_sum_ms)) AS latency_sum_ms,
                   max(latency_max_ms) AS latency_max_ms
              FROM h
             GROUP BY 1, 2, 3, 4, 5),
        ins_hourly AS (%2$s),
        ins_daily AS (%3$s)
        SELECT coalesce(sum(requests), 0)::bigint FROM g$q$, filter,
        pg_catalog.format(upsert, 'cus_usage_hourly', 'hour', 'kept'), pg_catalog.format(upsert, 'cus_usage_daily', 'day', 'g'),
        aos_cus_internal.node_rows_filter())
    INTO folded USING a, b, from_day, to_day, hourly_from;
    RETURN folded;
END
$$;
COMMENT ON FUNCTION aos_cus_internal.fold_usage(text, pg_snapshot, pg_snapshot, date, date) IS
    'internal to rollup_usage() and rebuild_daily(): adds the usage rows a fixed filter selects to cus_usage_daily and cus_usage_hourly';
REVOKE ALL ON FUNCTION aos_cus_internal.fold_usage(text, pg_snapshot, pg_snapshot, date, date) FROM PUBLIC;

CREATE OR REPLACE FUNCTION aos_cus_internal.lock_rollup_state(OUT last_snapshot pg_snapshot, OUT rebuilt bigint)
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
    s := aos_cus_internal.rollup_snapshot();
    -- Ids from another cluster mean nothing here: mark every row we can see as folded ("frozen" xid 2).
    EXECUTE pg_catalog.format('UPDATE aos_cus.cus_llm_usage SET ingest_xid = ''2'' '
                              'WHERE ingest_xid >= pg_catalog.pg_snapshot_xmin($1) AND %s', aos_cus_internal.node_rows_filter())
        USING s;
    EXECUTE 'DELETE FROM aos_cus.cus_usage_daily WHERE ' || aos_cus_internal.node_rows_filter();
    EXECUTE 'DELETE FROM aos_cus.cus_usage_hourly WHERE ' || aos_cus_internal.node_rows_filter();
    rebuilt := aos_cus_internal.fold_usage('pg_catalog.pg_visible_in_snapshot(ingest_xid, $2)', NULL, s, NULL, NULL);
    UPDATE aos_cus.cus_rollup_state SET last_snapshot = s, system_id = this_system, last_rollup_at = pg_catalog.now();
    last_snapshot := s;
END
$$;
COMMENT ON FUNCTION aos_cus_internal.lock_rollup_state() IS
    'internal: locks cus_rollup_state; rebuilds every aggregate when the cluster changed (restore) or on first use';
REVOKE ALL ON FUNCTION aos_cus_internal.lock_rollup_state() FROM PUBLIC;

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
    st := aos_cus_internal.lock_rollup_state();
    IF st.rebuilt IS NOT NULL THEN
        RETURN st.rebuilt;
    END IF;
    -- Exactly the rows the aggregates already stand for (visible in last_snapshot), so rollups stay exact.
    EXECUTE 'DELETE FROM aos_cus.cus_usage_daily WHERE day BETWEEN $1 AND $2 AND ' || aos_cus_internal.node_rows_filter()
        USING from_day, to_day;
    EXECUTE 'DELETE FROM aos_cus.cus_usage_hourly WHERE hour >= ($1::timestamp AT TIME ZONE ''UTC'')'
            ' AND hour < (($2 + 1)::timestamp AT TIME ZONE ''UTC'') AND ' || aos_cus_internal.node_rows_filter()
        USING from_day, to_day;
    RETURN aos_cus_internal.fold_usage(
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
    st := aos_cus_internal.lock_rollup_state();
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

-- Citus with time partitions (issues 19, 20): partitions of the distributed tables are made on the coordinator by
-- citus_rollup(); rollup_usage() on a Citus worker leaves them alone.
CREATE OR REPLACE FUNCTION aos_cus.rollup_usage() RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    st record;
    s pg_snapshot;
    folded bigint;
BEGIN
    PERFORM aos_cus.assert_platform('rollup_usage()');
    st := aos_cus_internal.lock_rollup_state();
    IF st.rebuilt IS NOT NULL THEN
        folded := st.rebuilt;
    ELSE
        -- Taken after the lock: a concurrent rollup has committed, so we fold only what it did not.
        s := aos_cus_internal.rollup_snapshot();
        folded := aos_cus_internal.fold_usage(
            'ingest_xid >= pg_catalog.pg_snapshot_xmin($1) AND pg_catalog.pg_visible_in_snapshot(ingest_xid, $2)'
            ' AND NOT pg_catalog.pg_visible_in_snapshot(ingest_xid, $1)', st.last_snapshot, s, NULL, NULL);
        UPDATE aos_cus.cus_rollup_state SET last_snapshot = s, last_rollup_at = pg_catalog.now();
    END IF;
    -- Under Citus, partitions of the distributed tables are made on the coordinator (citus_rollup()).
    IF aos_cus_internal.node_rows_filter() OPERATOR(pg_catalog.=) 'true' THEN
        PERFORM aos_cus.maintain_partitions();
    END IF;
    RETURN folded;
END
$$;
CREATE OR REPLACE FUNCTION aos_cus.citus_rollup(OUT nodename text, OUT nodeport integer, OUT folded bigint) RETURNS SETOF record
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r record;
BEGIN
    PERFORM aos_cus.assert_platform('citus_rollup()');
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname OPERATOR(pg_catalog.=) 'citus') THEN
        RAISE EXCEPTION USING ERRCODE = '0A000', MESSAGE = 'citus_rollup() requires the citus extension';
    END IF;
    FOR r IN EXECUTE 'SELECT w.nodename, w.nodeport, w.success, w.result
                        FROM pg_catalog.run_command_on_workers(''SELECT aos_cus.rollup_usage()'') w ORDER BY 1, 2' LOOP
        nodename := r.nodename; nodeport := r.nodeport; folded := NULL;
        IF r.success THEN
            folded := r.result::bigint;
        ELSE
            RAISE WARNING 'rollup_usage() failed on %:%: %', r.nodename, r.nodeport, r.result;
        END IF;
        RETURN NEXT;
    END LOOP;
    -- Time partitions of distributed tables are created (and dropped) from the coordinator only.
    PERFORM aos_cus.maintain_partitions();
END
$$;
COMMENT ON FUNCTION aos_cus.citus_rollup() IS
    'Citus: runs rollup_usage() on every worker (each folds its own shards with its own snapshots), then maintain_partitions() here; folded NULL and a WARNING where it failed; operator only';

-- Citus, the rest of issue 20: reprice_usage() through the coordinator reprices on every worker; set_retention()
-- and set_partitioning() reach the workers, which prune their own hourly rollups and keys; the coordinator drops
-- usage partitions past retention once every worker has folded their rows; set_price() writes the reference table;
-- tenant-scoped functions are delegated inside transaction blocks too (force_delegation).
CREATE OR REPLACE FUNCTION aos_cus_internal.citus_node() RETURNS text
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    grp integer;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname OPERATOR(pg_catalog.=) 'citus') THEN
        RETURN NULL;
    END IF;
    EXECUTE 'SELECT (SELECT groupid FROM pg_catalog.pg_dist_local_group) FROM pg_catalog.pg_dist_partition
              WHERE logicalrelid OPERATOR(pg_catalog.=) ''aos_cus.cus_llm_usage''::pg_catalog.regclass' INTO grp;
    RETURN CASE WHEN grp IS NULL THEN NULL WHEN grp OPERATOR(pg_catalog.=) 0 THEN 'coordinator' ELSE 'worker' END;
END
$$;
COMMENT ON FUNCTION aos_cus_internal.citus_node() IS
    'internal: coordinator or worker of a Citus cluster with distributed usage; NULL otherwise';
REVOKE ALL ON FUNCTION aos_cus_internal.citus_node() FROM PUBLIC;
CREATE OR REPLACE FUNCTION aos_cus_internal.usage_unfolded(lower timestamptz, upper timestamptz) RETURNS boolean
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    unfolded boolean;
BEGIN
    EXECUTE 'SELECT EXISTS (SELECT 1 FROM aos_cus.cus_llm_usage u, aos_cus.cus_rollup_state s
                             WHERE u.started_at OPERATOR(pg_catalog.>=) $1 AND u.started_at OPERATOR(pg_catalog.<) $2
                               AND u.ingest_xid OPERATOR(pg_catalog.>=) pg_catalog.pg_snapshot_xmin(s.last_snapshot)
                               AND NOT pg_catalog.pg_visible_in_snapshot(u.ingest_xid, s.last_snapshot) AND '
            OPERATOR(pg_catalog.||) aos_cus_internal.node_rows_filter() OPERATOR(pg_catalog.||) ')'
        INTO unfolded USING lower, upper;
    RETURN unfolded;
END
$$;
COMMENT ON FUNCTION aos_cus_internal.usage_unfolded(timestamptz, timestamptz) IS
    'internal: true when this node stores usage rows of the range that are not rolled up yet';
REVOKE ALL ON FUNCTION aos_cus_internal.usage_unfolded(timestamptz, timestamptz) FROM PUBLIC;
CREATE OR REPLACE FUNCTION aos_cus_internal.maintain_table(tbl regclass, step interval, retention interval)
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
    unfolded boolean;
    p record;
BEGIN
    -- Ahead: contiguous from the last partition (or the current period) to past now + one period.
    LOOP
        lo := GREATEST((SELECT max(b.upper) FROM aos_cus_internal.partition_bounds(tbl) b),
                       aos_cus_internal.partition_start(pg_catalog.now(), step));
        EXIT WHEN lo > ahead;
        action := 'created';
        partition_name := aos_cus_internal.add_partition(tbl, lo, aos_cus_internal.partition_start(lo, step) + step)::text;
        RETURN NEXT;
    END LOOP;
    -- Rows in the default partition: each in the gap between partitions that holds it, cut to its period.
    LOOP
        EXECUTE pg_catalog.format('SELECT min(%I) FROM %s', col, def) INTO r;
        EXIT WHEN r IS NULL;
        lo := GREATEST(aos_cus_internal.partition_start(r, step),
                       (SELECT max(b.upper) FROM aos_cus_internal.partition_bounds(tbl) b WHERE b.upper OPERATOR(pg_catalog.<=) r));
        hi := LEAST(aos_cus_internal.partition_start(r, step) + step,
                    (SELECT min(b.lower) FROM aos_cus_internal.partition_bounds(tbl) b WHERE b.lower OPERATOR(pg_catalog.>) r));
        action := 'moved';
        partition_name := aos_cus_internal.add_partition(tbl, lo, hi)::text;
        RETURN NEXT;
    END LOOP;
    IF retention IS NULL THEN
        RETURN;
    END IF;
    -- Retention: whole partitions ending before now - retention; usage only once every row is rolled up.
    FOR p IN SELECT * FROM aos_cus_internal.partition_bounds(tbl) b WHERE b.upper OPERATOR(pg_catalog.<=) pg_catalog.now() - retention LOOP
        -- A Citus coordinator asks each worker about the rows it stores (before the lock, which reaches their shards).
        IF rel OPERATOR(pg_catalog.=) 'cus_llm_usage' AND aos_cus_internal.citus_node() OPERATOR(pg_catalog.=) 'coordinator' THEN
            EXECUTE 'SELECT pg_catalog.bool_or(NOT w.success OR w.result::pg_catalog.bool) FROM pg_catalog.run_command_on_workers($1) w'
                INTO unfolded USING pg_catalog.format('SELECT aos_cus_internal.usage_unfolded(%L, %L)', p.lower, p.upper);
            CONTINUE WHEN unfolded;
        END IF;
        EXECUTE pg_catalog.format('LOCK TABLE %s IN ACCESS EXCLUSIVE MODE', p.part);
        IF rel OPERATOR(pg_catalog.=) 'cus_llm_usage' THEN
            CONTINUE WHEN aos_cus_internal.citus_node() IS NULL AND aos_cus_internal.usage_unfolded(p.lower, p.upper);
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
COMMENT ON FUNCTION aos_cus_internal.maintain_table(regclass, interval, interval) IS 'internal to maintain_partitions(): one partitioned table';
CREATE OR REPLACE FUNCTION aos_cus.maintain_partitions() RETURNS TABLE (table_name text, action text, partition_name text)
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    cfg record := aos_cus.usage_settings();
BEGIN
    PERFORM aos_cus.assert_platform('maintain_partitions()');
    -- A Citus worker refuses DDL on distributed tables: their partitions are made and dropped on the coordinator.
    IF aos_cus_internal.citus_node() IS DISTINCT FROM 'worker' THEN
        RETURN QUERY SELECT 'cus_llm_usage', m.action, m.partition_name
                       FROM aos_cus_internal.maintain_table('aos_cus.cus_llm_usage', cfg.partition_interval, cfg.raw_retention) m;
        RETURN QUERY SELECT 'cus_ingest_rejects', m.action, m.partition_name
                       FROM aos_cus_internal.maintain_table('aos_cus.cus_ingest_rejects', cfg.partition_interval, cfg.rejects_retention) m;
    END IF;
    -- Local tables of each node (under Citus, of the worker holding the tenant).
    DELETE FROM aos_cus.cus_usage_hourly h WHERE h.hour OPERATOR(pg_catalog.<) pg_catalog.now() - cfg.hourly_retention;
    -- A key lives while its row started, or was ingested, inside the window.
    DELETE FROM aos_cus.cus_usage_keys k WHERE k.started_at OPERATOR(pg_catalog.<) pg_catalog.now() - cfg.idempotency_window
                                           AND k.ingested_at OPERATOR(pg_catalog.<) pg_catalog.now() - cfg.idempotency_window;
END
$$;
COMMENT ON FUNCTION aos_cus.maintain_partitions() IS
    'creates time partitions ahead, moves default-partition rows into their own, drops partitions past retention, prunes hourly rollups and idempotency keys; rollup_usage() runs it';
CREATE OR REPLACE FUNCTION aos_cus.set_retention(raw interval, rejects interval) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM aos_cus.assert_platform('set_retention()');
    IF raw < interval '1 day' OR rejects < interval '1 day' THEN
        RAISE EXCEPTION USING ERRCODE = '22023',
            MESSAGE = pg_catalog.format('retention raw %s, rejects %s: each must be NULL (forever) or at least 1 day',
                                        coalesce(raw::text, 'NULL'), coalesce(rejects::text, 'NULL'));
    END IF;
    PERFORM aos_cus_internal.lock_usage_settings();
    UPDATE aos_cus.cus_usage_settings SET raw_retention = raw, rejects_retention = rejects;
    -- Under Citus each worker prunes its own hourly rollups and keys by its own copy of the settings.
    PERFORM aos_cus_internal.citus_on_workers(pg_catalog.format('SELECT aos_cus.set_retention(%L, %L)', raw, rejects));
END
$$;
COMMENT ON FUNCTION aos_cus.set_retention(interval, interval) IS
    'keeps raw usage rows and ingest rejects this long (NULL: forever); maintain_partitions() drops whole partitions past it';
CREATE OR REPLACE FUNCTION aos_cus.set_partitioning(partition_interval interval DEFAULT NULL, idempotency_window interval DEFAULT NULL,
                                         hourly_retention interval DEFAULT NULL) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM aos_cus.assert_platform('set_partitioning()');
    IF partition_interval NOT IN (interval '1 day', interval '7 days', interval '1 month', interval '3 months', interval '1 year') THEN
        RAISE EXCEPTION USING ERRCODE = '22023',
            MESSAGE = pg_catalog.format('partition_interval "%s" is not one of 1 day, 7 days, 1 month, 3 months, 1 year', partition_interval);
    END IF;
    IF idempotency_window < interval '1 day' OR hourly_retention < interval '1 day' THEN
        RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = pg_catalog.format(
            'idempotency_window %s, hourly_retention %s: each must be at least 1 day', idempotency_window, hourly_retention);
    END IF;
    PERFORM aos_cus_internal.lock_usage_settings();
    UPDATE aos_cus.cus_usage_settings s
       SET partition_interval = coalesce(set_partitioning.partition_interval, s.partition_interval),
           idempotency_window = coalesce(set_partitioning.idempotency_window, s.idempotency_window),
           hourly_retention = coalesce(set_partitioning.hourly_retention, s.hourly_retention);
    PERFORM aos_cus_internal.citus_on_workers(pg_catalog.format('SELECT aos_cus.set_partitioning(%L, %L, %L)',
        set_partitioning.partition_interval, set_partitioning.idempotency_window, set_partitioning.hourly_retention));
END
$$;
COMMENT ON FUNCTION aos_cus.set_partitioning(interval, interval, interval) IS
    'partition interval of new partitions, idempotency window and hourly rollup retention (NULL keeps the current value)';
CREATE OR REPLACE FUNCTION aos_cus.rollup_usage() RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    st record;
    s pg_snapshot;
    folded bigint;
BEGIN
    PERFORM aos_cus.assert_platform('rollup_usage()');
    st := aos_cus_internal.lock_rollup_state();
    IF st.rebuilt IS NOT NULL THEN
        folded := st.rebuilt;
    ELSE
        -- Taken after the lock: a concurrent rollup has committed, so we fold only what it did not.
        s := aos_cus_internal.rollup_snapshot();
        folded := aos_cus_internal.fold_usage(
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
CREATE OR REPLACE FUNCTION aos_cus.reprice_usage(from_ts timestamptz, to_ts timestamptz, only_unpriced boolean DEFAULT true)
    RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    st record;
    node text := aos_cus_internal.citus_node();
    tenant uuid;
    n bigint;
    changed bigint := 0;
    cmd text;
    style text;
    failed text;
BEGIN
    PERFORM aos_cus.assert_platform('reprice_usage()');
    IF from_ts IS NULL OR to_ts IS NULL OR only_unpriced IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = '22004', MESSAGE = 'from_ts, to_ts and only_unpriced must not be null';
    END IF;
    IF from_ts > to_ts THEN
        RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = pg_catalog.format('from_ts %s is after to_ts %s', from_ts, to_ts);
    END IF;
    -- Citus coordinator: each worker reprices the rows it stores, in its own transaction (one node per commit).
    IF node OPERATOR(pg_catalog.=) 'coordinator' THEN
        -- The bounds travel as text in ISO style, which every DateStyle reads back.
        style := pg_catalog.current_setting('DateStyle');
        PERFORM pg_catalog.set_config('DateStyle', 'ISO', true);
        cmd := pg_catalog.format('SELECT aos_cus.reprice_usage(%L, %L, %L)', from_ts, to_ts, only_unpriced);
        PERFORM pg_catalog.set_config('DateStyle', style, true);
        EXECUTE 'SELECT pg_catalog.sum(w.result::pg_catalog.int8) FILTER (WHERE w.success),
                        pg_catalog.string_agg(pg_catalog.format(''%s:%s: %s'', w.nodename, w.nodeport, w.result), ''; '')
                          FILTER (WHERE NOT w.success)
                   FROM pg_catalog.run_command_on_workers($1) w'
            INTO changed, failed
            USING cmd;
        IF failed IS NOT NULL THEN
            RAISE EXCEPTION USING ERRCODE = '58000', MESSAGE = 'reprice_usage() failed on Citus workers: ' || failed,
                DETAIL = 'The other workers committed their repricing; running reprice_usage() again is safe.';
        END IF;
        RETURN coalesce(changed, 0);
    END IF;
    -- Serialize with rollups: rows already folded get their aggregate corrected here, the rest on their rollup.
    st := aos_cus_internal.lock_rollup_state();
    -- On a Citus worker, one tenant at a time (Citus locks rows FOR UPDATE only in single-shard queries), for the
    -- tenants whose shards it stores; on one server, every row at once.
    FOR tenant IN EXECUTE CASE WHEN node IS NULL THEN 'SELECT NULL::pg_catalog.uuid'
                               ELSE 'SELECT DISTINCT tenant_id FROM aos_cus.cus_integrations WHERE ' OPERATOR(pg_catalog.||)
                                    aos_cus_internal.node_rows_filter() END LOOP
        EXECUTE pg_catalog.format($q$
    WITH old AS (
        SELECT tenant_id, id, cost_microcents
          FROM aos_cus.cus_llm_usage
         WHERE %1$s AND started_at >= $1 AND started_at < $2 AND (NOT $3 OR cost_microcents IS NULL)
           FOR UPDATE),
    upd AS (
        -- A NULL cost makes the pricing trigger price the row again.
        UPDATE aos_cus.cus_llm_usage u SET cost_microcents = NULL, price_id = NULL
          FROM old WHERE %2$s AND u.tenant_id = old.tenant_id AND u.id = old.id
        RETURNING u.tenant_id, u.integration_id, u.started_at, u.provider, u.model, u.ingest_xid,
                  old.cost_microcents AS old_cost, u.cost_microcents AS new_cost),
    delta_hourly AS (
        SELECT tenant_id, integration_id, pg_catalog.date_trunc('hour', started_at, 'UTC') AS hour, provider, model,
               sum(coalesce(new_cost, 0) - coalesce(old_cost, 0)) AS cost,
               sum((new_cost IS NULL)::int - (old_cost IS NULL)::int) AS unpriced
          FROM upd
         WHERE pg_catalog.pg_visible_in_snapshot(ingest_xid, $4)
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
    SELECT count(*) FILTER (WHERE new_cost IS DISTINCT FROM old_cost) FROM upd$q$,
            CASE WHEN tenant IS NULL THEN 'true' ELSE 'tenant_id OPERATOR(pg_catalog.=) $5' END,
            CASE WHEN tenant IS NULL THEN 'true' ELSE 'u.tenant_id OPERATOR(pg_catalog.=) $5' END)
            INTO n USING from_ts, to_ts, only_unpriced, st.last_snapshot, tenant;
        changed := changed OPERATOR(pg_catalog.+) n;
    END LOOP;
    RETURN changed;
END
$$;
COMMENT ON FUNCTION aos_cus.reprice_usage(timestamptz, timestamptz, boolean) IS
    'prices again the usage rows started in [from_ts, to_ts) (only unpriced ones by default); aggregates follow; returns rows whose cost changed; on Citus each worker reprices its own rows';
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
    names_given text[];
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
            MESSAGE = pg_catalog.format('provider "%s" is not one of openai, anthropic, google, azure_openai, aws_bedrock, mistral, custom', pg_catalog.left(set_price.provider, 64));
    END IF;
    IF m = '' OR pg_catalog.length(m) > 200 THEN
        RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'model must be 1 to 200 characters';
    END IF;
    IF NOT set_price.service_tier = ANY (ARRAY['standard', 'priority', 'flex', 'batch']) THEN
        RAISE EXCEPTION USING ERRCODE = '22023',
            MESSAGE = pg_catalog.format('service_tier "%s" is not one of standard, priority, flex, batch', pg_catalog.left(set_price.service_tier, 64));
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
    IF set_price.source LIKE 'langfuse: %' OR set_price.source LIKE 'genai-prices: %' THEN
        RAISE EXCEPTION USING ERRCODE = '22023',
            MESSAGE = 'source must not start with "langfuse: " or "genai-prices: " (reserved for the seed)';
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
    -- Computed here, not in VALUES: Citus refuses subqueries in an INSERT into the reference table.
    names_given := (SELECT pg_catalog.array_agg(pg_catalog.lower(a)) FROM pg_catalog.unnest(set_price.aliases) a);
    INSERT INTO aos_cus.cus_model_prices AS p (provider, model, aliases, match_pattern, service_tier, min_prompt_tokens,
        effective_from, input_price, output_price, cache_read_price, cache_write_price, cache_write_1h_price,
        reasoning_price, input_audio_price, output_audio_price, context_window, max_output_tokens, source)
    VALUES (set_price.provider, m,
            COALESCE(names_given, latest.aliases, '{}'),
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
COMMENT ON FUNCTION aos_cus.set_price(text, text, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, text, bigint, timestamptz, integer, integer, text[], text, text) IS
    'adds a price version (micro-cents per 1M tokens) effective from effective_from; returns its id';
CREATE OR REPLACE FUNCTION aos_cus.citus_distribute() RETURNS TABLE (object text, action text)
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    t text;
    f regprocedure;
    done boolean;
BEGIN
    PERFORM aos_cus.assert_platform('citus_distribute()');
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname OPERATOR(pg_catalog.=) 'citus') THEN
        RAISE EXCEPTION USING ERRCODE = '0A000', MESSAGE = 'citus_distribute() requires the citus extension',
            HINT = 'Install Citus, add citus first to shared_preload_libraries, CREATE EXTENSION citus, add the workers.';
    END IF;
    -- The settle and price triggers run on the shards, on the node that stores the tenant.
    SET LOCAL citus.enable_unsafe_triggers = on;
    SET LOCAL citus.multi_shard_modify_mode = 'sequential';
    -- Global tables: one copy on every node.
    FOREACH t IN ARRAY ARRAY['aos_cus.cus_model_prices'] LOOP
        EXECUTE 'SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition WHERE logicalrelid OPERATOR(pg_catalog.=) $1::pg_catalog.regclass)'
            INTO done USING t;
        IF NOT done THEN
            EXECUTE 'SELECT pg_catalog.create_reference_table($1::pg_catalog.regclass)' USING t;
        END IF;
        object := t; action := CASE WHEN done THEN 'already reference' ELSE 'reference table' END;
        RETURN NEXT;
    END LOOP;
    -- Tenant tables: sharded by tenant_id, each tenant's rows of every table on the same node.
    FOREACH t IN ARRAY ARRAY['aos_cus.cus_integrations', 'aos_cus.cus_llm_usage', 'aos_cus.cus_usage_daily',
                             'aos_cus.cus_ingest_rejects', 'aos_cus.cus_enforcement_log', 'aos_cus.cus_health_checks',
                             'aos_cus.cus_health_history', 'aos_cus.cus_credential_sources'] LOOP
        EXECUTE 'SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition WHERE logicalrelid OPERATOR(pg_catalog.=) $1::pg_catalog.regclass)'
            INTO done USING t;
        IF NOT done THEN
            IF t OPERATOR(pg_catalog.=) 'aos_cus.cus_integrations' THEN
                EXECUTE 'SELECT pg_catalog.create_distributed_table($1::pg_catalog.regclass, ''tenant_id'')' USING t;
            ELSE
                EXECUTE 'SELECT pg_catalog.create_distributed_table($1::pg_catalog.regclass, ''tenant_id'', colocate_with => ''aos_cus.cus_integrations'')'
                    USING t;
            END IF;
        END IF;
        object := t; action := CASE WHEN done THEN 'already distributed' ELSE 'distributed by tenant_id' END;
        RETURN NEXT;
    END LOOP;
    -- Tenant-scoped functions (first argument tenant_id, not optional) run on the node holding the tenant, also
    -- inside a transaction block (force_delegation: PostgREST runs every request in one).
    FOR f IN SELECT p.oid::pg_catalog.regprocedure FROM pg_catalog.pg_proc p
              WHERE p.pronamespace OPERATOR(pg_catalog.=) 'aos_cus'::pg_catalog.regnamespace
                AND p.pronargs OPERATOR(pg_catalog.>=) 1
                AND p.proargtypes[0] OPERATOR(pg_catalog.=) 'pg_catalog.uuid'::pg_catalog.regtype
                AND p.proargnames[1] OPERATOR(pg_catalog.=) 'tenant_id'
                AND p.pronargdefaults OPERATOR(pg_catalog.<) p.pronargs
                AND p.proname OPERATOR(pg_catalog.<>) ALL (ARRAY['assert_tenant', 'request_health_check', 'record_health'])
              ORDER BY 1::text LOOP
        EXECUTE 'SELECT pg_catalog.create_distributed_function($1, ''$1'', colocate_with => ''aos_cus.cus_integrations'', force_delegation => true)'
            USING f;
        object := f::text; action := 'delegated by tenant_id';
        RETURN NEXT;
    END LOOP;
    -- Node-disjoint id ranges, on the workers and here.
    PERFORM aos_cus_internal.citus_on_workers('SELECT aos_cus_internal.citus_node_sequences()');
    PERFORM aos_cus_internal.citus_node_sequences();
    object := 'sequences'; action := 'node id ranges';
    RETURN NEXT;
    -- Login bindings are read locally by every node: copy them to the workers (also to workers added since).
    PERFORM aos_cus_internal.citus_on_workers(pg_catalog.format('SELECT aos_cus.bind_login(%L, %L)', l.login, l.tenant_id))
       FROM aos_cus.cus_tenant_logins l;
    object := 'aos_cus.cus_tenant_logins'; action := 'copied to every worker';
    RETURN NEXT;
    -- Each worker prunes its own hourly rollups and idempotency keys: it needs the same windows.
    PERFORM aos_cus_internal.citus_on_workers(pg_catalog.format('SELECT aos_cus.set_partitioning(%L, %L, %L)',
                s.partition_interval, s.idempotency_window, s.hourly_retention)),
            aos_cus_internal.citus_on_workers(pg_catalog.format('SELECT aos_cus.set_retention(%L, %L)',
                s.raw_retention, s.rejects_retention))
       FROM aos_cus.usage_settings() s;
    object := 'aos_cus.cus_usage_settings'; action := 'copied to every worker';
    RETURN NEXT;
    -- Rollups per node: each node folds its own shards with its own snapshots.
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname OPERATOR(pg_catalog.=) 'pg_cron') THEN
        EXECUTE 'SELECT cron.unschedule(jobid) FROM cron.job WHERE jobname OPERATOR(pg_catalog.=) $1 AND username OPERATOR(pg_catalog.=) current_user'
            USING 'aos_cus_rollup';
        EXECUTE 'SELECT cron.schedule($1, $2, $3)'
            USING 'aos_cus_rollup', '*/10 * * * *', 'SELECT aos_cus.citus_rollup()';
        object := 'cron job aos_cus_rollup'; action := 'citus_rollup() every 10 minutes';
        RETURN NEXT;
    END IF;
END
$$;
COMMENT ON FUNCTION aos_cus.citus_distribute() IS
    'Citus: distributes the tenant tables by tenant_id, delegates the tenant-scoped functions, gives each node its id range, schedules per-node rollups; idempotent; operator only';

-- Unpriced rule (issue 21, requirement 4): policies choose what an unpriced model costs (block, fallback_price,
-- allow); check() blocks an unpriced model with reason unpriced_model; reprice_usage() prices rows charged at
-- fallback prices too.
ALTER TABLE aos_cus.cus_enforcement_log DROP CONSTRAINT cus_enforcement_log_reason_check,
    ADD CONSTRAINT cus_enforcement_log_reason_check CHECK (reason IN ('integration_not_found', 'integration_disabled',
        'rate_limited', 'budget_exceeded', 'token_limit_exceeded', 'budget_warning', 'token_warning',
        'already_ingested', 'model_not_allowed', 'request_cost_cap', 'request_token_cap', 'concurrency_limit',
        'unpriced_model'));
CREATE OR REPLACE FUNCTION aos_cus.reprice_usage(from_ts timestamptz, to_ts timestamptz, only_unpriced boolean DEFAULT true)
    RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    st record;
    node text := aos_cus_internal.citus_node();
    tenant uuid;
    n bigint;
    changed bigint := 0;
    cmd text;
    style text;
    failed text;
BEGIN
    PERFORM aos_cus.assert_platform('reprice_usage()');
    IF from_ts IS NULL OR to_ts IS NULL OR only_unpriced IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = '22004', MESSAGE = 'from_ts, to_ts and only_unpriced must not be null';
    END IF;
    IF from_ts > to_ts THEN
        RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = pg_catalog.format('from_ts %s is after to_ts %s', from_ts, to_ts);
    END IF;
    -- Citus coordinator: each worker reprices the rows it stores, in its own transaction (one node per commit).
    IF node OPERATOR(pg_catalog.=) 'coordinator' THEN
        -- The bounds travel as text in ISO style, which every DateStyle reads back.
        style := pg_catalog.current_setting('DateStyle');
        PERFORM pg_catalog.set_config('DateStyle', 'ISO', true);
        cmd := pg_catalog.format('SELECT aos_cus.reprice_usage(%L, %L, %L)', from_ts, to_ts, only_unpriced);
        PERFORM pg_catalog.set_config('DateStyle', style, true);
        EXECUTE 'SELECT pg_catalog.sum(w.result::pg_catalog.int8) FILTER (WHERE w.success),
                        pg_catalog.string_agg(pg_catalog.format(''%s:%s: %s'', w.nodename, w.nodeport, w.result), ''; '')
                          FILTER (WHERE NOT w.success)
                   FROM pg_catalog.run_command_on_workers($1) w'
            INTO changed, failed
            USING cmd;
        IF failed IS NOT NULL THEN
            RAISE EXCEPTION USING ERRCODE = '58000', MESSAGE = 'reprice_usage() failed on Citus workers: ' || failed,
                DETAIL = 'The other workers committed their repricing; running reprice_usage() again is safe.';
        END IF;
        RETURN coalesce(changed, 0);
    END IF;
    -- Serialize with rollups: rows already folded get their aggregate corrected here, the rest on their rollup.
    st := aos_cus_internal.lock_rollup_state();
    -- On a Citus worker, one tenant at a time (Citus locks rows FOR UPDATE only in single-shard queries), for the
    -- tenants whose shards it stores; on one server, every row at once.
    FOR tenant IN EXECUTE CASE WHEN node IS NULL THEN 'SELECT NULL::pg_catalog.uuid'
                               ELSE 'SELECT DISTINCT tenant_id FROM aos_cus.cus_integrations WHERE ' OPERATOR(pg_catalog.||)
                                    aos_cus_internal.node_rows_filter() END LOOP
        EXECUTE pg_catalog.format($q$
    WITH old AS (
        SELECT tenant_id, id, cost_microcents
          FROM aos_cus.cus_llm_usage
         WHERE %1$s AND started_at >= $1 AND started_at < $2
           AND (NOT $3 OR cost_microcents IS NULL OR unpriced_reason IS NOT NULL)
           FOR UPDATE),
    upd AS (
        -- A NULL cost makes the pricing trigger price the row again.
        UPDATE aos_cus.cus_llm_usage u SET cost_microcents = NULL, price_id = NULL
          FROM old WHERE %2$s AND u.tenant_id = old.tenant_id AND u.id = old.id
        RETURNING u.tenant_id, u.integration_id, u.started_at, u.provider, u.model, u.ingest_xid,
                  old.cost_microcents AS old_cost, u.cost_microcents AS new_cost),
    delta_hourly AS (
        SELECT tenant_id, integration_id, pg_catalog.date_trunc('hour', started_at, 'UTC') AS hour, provider, model,
               sum(coalesce(new_cost, 0) - coalesce(old_cost, 0)) AS cost,
               sum((new_cost IS NULL)::int - (old_cost IS NULL)::int) AS unpriced
          FROM upd
         WHERE pg_catalog.pg_visible_in_snapshot(ingest_xid, $4)
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
    SELECT count(*) FILTER (WHERE new_cost IS DISTINCT FROM old_cost) FROM upd$q$,
            CASE WHEN tenant IS NULL THEN 'true' ELSE 'tenant_id OPERATOR(pg_catalog.=) $5' END,
            CASE WHEN tenant IS NULL THEN 'true' ELSE 'u.tenant_id OPERATOR(pg_catalog.=) $5' END)
            INTO n USING from_ts, to_ts, only_unpriced, st.last_snapshot, tenant;
        changed := changed OPERATOR(pg_catalog.+) n;
    END LOOP;
    RETURN changed;
END
$$;
COMMENT ON FUNCTION aos_cus.reprice_usage(timestamptz, timestamptz, boolean) IS
    'prices again the usage rows started in [from_ts, to_ts) (only unpriced ones by default); aggregates follow; returns rows whose cost changed; on Citus each worker reprices its own rows';
COMMENT ON FUNCTION aos_cus.check_policy(jsonb) IS
    'the policy when valid (models_allow, models_deny, max_cost_microcents_per_request, max_tokens_per_request, max_concurrent, unpriced, fallback_input_price, fallback_output_price); 22023/22003/54000 naming the field otherwise';
-- Requests per hour and per day (issue 14): rph and rpd limits on integrations and scopes, counted per calendar
-- hour and day of the limit's timezone; check() refuses with reason request_quota.
ALTER TABLE aos_cus.cus_integrations ADD COLUMN rph integer CHECK (rph > 0), ADD COLUMN rpd integer CHECK (rpd > 0);
ALTER TABLE aos_cus.cus_scope_limits ADD COLUMN rph integer CHECK (rph > 0), ADD COLUMN rpd integer CHECK (rpd > 0);
CREATE OR REPLACE FUNCTION aos_cus_internal.integration_of(i aos_cus.cus_integrations) RETURNS aos_cus.integration
    LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT ROW(i.tenant_id, i.id, i.name, i.provider, i.status,
               pg_catalog.split_part(i.credential_ref, '://', 1), i.credential_hint, i.base_url, i.config,
               pg_catalog.jsonb_build_object(
                   'budget_microcents', i.budget_microcents, 'budget_period', i.budget_period,
                   'token_limit', i.token_limit, 'token_period', i.token_period,
                   'rpm', i.rpm, 'tpm', i.tpm, 'rph', i.rph, 'rpd', i.rpd, 'warn_at_pct', i.warn_at_pct,
                   'mode', i.enforcement_mode, 'timezone', i.timezone),
               i.health_state, i.health_checked_at, i.health_latency_ms, i.health_error,
               i.created_at, i.updated_at, i.deleted_at)::aos_cus.integration
$$;
CREATE OR REPLACE FUNCTION aos_cus_internal.apply_limits(i aos_cus.cus_integrations, limits jsonb) RETURNS aos_cus.cus_integrations
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    unknown text;
    periods constant text[] := ARRAY['day', 'week', 'month', 'total'];
    tz text;
BEGIN
    IF limits IS NULL OR pg_catalog.jsonb_typeof(limits) = 'null' THEN
        RAISE EXCEPTION 'limits must not be null' USING ERRCODE = '22004';
    END IF;
    IF pg_catalog.jsonb_typeof(limits) <> 'object' THEN
        RAISE EXCEPTION 'limits must be a JSON object, not %', pg_catalog.jsonb_typeof(limits) USING ERRCODE = '22023';
    END IF;
    SELECT pg_catalog.string_agg(k, ', ' ORDER BY k) INTO unknown FROM pg_catalog.jsonb_object_keys(limits) k
     WHERE k <> ALL (ARRAY['budget_microcents', 'budget_period', 'token_limit', 'token_period', 'rpm', 'tpm',
                           'rph', 'rpd', 'warn_at_pct', 'mode', 'enforcement_mode', 'timezone']);
    IF unknown IS NOT NULL THEN
        RAISE EXCEPTION 'limits has unknown key(s): %', unknown USING ERRCODE = '22023',
            HINT = 'Known keys: budget_microcents, budget_period, token_limit, token_period, rpm, tpm, rph, rpd, warn_at_pct, mode, timezone.';
    END IF;
    IF limits ? 'budget_microcents' THEN
        i.budget_microcents := aos_cus_internal.limit_integer(limits, 'budget_microcents', 0, 9223372036854775807);
    END IF;
    IF limits ? 'budget_period' THEN
        i.budget_period := coalesce(aos_cus_internal.limit_choice(limits, 'budget_period', periods), 'month');
    END IF;
    IF limits ? 'token_limit' THEN
        i.token_limit := aos_cus_internal.limit_integer(limits, 'token_limit', 0, 9223372036854775807);
    END IF;
    IF limits ? 'token_period' THEN
        i.token_period := coalesce(aos_cus_internal.limit_choice(limits, 'token_period', periods), 'month');
    END IF;
    IF limits ? 'rpm' THEN
        i.rpm := aos_cus_internal.limit_integer(limits, 'rpm', 1, 2147483647);
    END IF;
    IF limits ? 'tpm' THEN
        i.tpm := aos_cus_internal.limit_integer(limits, 'tpm', 1, 9223372036854775807);
    END IF;
    IF limits ? 'rph' THEN
        i.rph := aos_cus_internal.limit_integer(limits, 'rph', 1, 2147483647);
    END IF;
    IF limits ? 'rpd' THEN
        i.rpd := aos_cus_internal.limit_integer(limits, 'rpd', 1, 2147483647);
    END IF;
    IF limits ? 'warn_at_pct' THEN
        i.warn_at_pct := coalesce(aos_cus_internal.limit_integer(limits, 'warn_at_pct', 1, 100), 80);
    END IF;
    -- mode is the documented name (reads return it); enforcement_mode, the column's, is accepted too.
    IF limits ? 'mode' AND limits ? 'enforcement_mode' THEN
        RAISE EXCEPTION 'limits has both mode and enforcement_mode: give mode only' USING ERRCODE = '22023';
    END IF;
    IF limits ? 'mode' THEN
        i.enforcement_mode := coalesce(aos_cus_internal.limit_choice(limits, 'mode', ARRAY['enforce', 'warn', 'off']), 'enforce');
    ELSIF limits ? 'enforcement_mode' THEN
        i.enforcement_mode := coalesce(aos_cus_internal.limit_choice(limits, 'enforcement_mode', ARRAY['enforce', 'warn', 'off']), 'enforce');
    END IF;
    IF limits ? 'timezone' THEN
        IF pg_catalog.jsonb_typeof(limits -> 'timezone') NOT IN ('string', 'null') THEN
            RAISE EXCEPTION 'limits.timezone must be a string, not %', limits -> 'timezone' USING ERRCODE = '22023';
        END IF;
        tz := coalesce(limits ->> 'timezone', 'UTC');
        IF pg_catalog.length(tz) > 64 OR NOT aos_cus_internal.is_iana_timezone(tz) THEN
            RAISE EXCEPTION 'limits.timezone must be an IANA time zone such as Europe/Paris, not %', limits -> 'timezone'
                USING ERRCODE = '22023',
                HINT = 'SELECT name FROM pg_timezone_names lists them.';
        END IF;
        i.timezone := tz;
    END IF;
    RETURN i;
END
$$;
CREATE OR REPLACE FUNCTION aos_cus.create_integration(tenant_id uuid, name text, provider text, credential text,
                                           options jsonb DEFAULT '{}') RETURNS uuid
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    e_state text;
    e_message text;
    e_detail text;
    e_hint text;
    i aos_cus.cus_integrations;
    stored record;
    constraint_name text;
BEGIN
    PERFORM aos_cus.assert_tenant(tenant_id);
    PERFORM aos_cus_internal.check_keys(options, 'options', ARRAY['id', 'base_url', 'config', 'limits', 'enabled']);
    IF provider IS NULL THEN
        RAISE EXCEPTION 'provider must not be null' USING ERRCODE = '22004';
    END IF;
    IF provider NOT IN ('openai', 'anthropic', 'google', 'azure_openai', 'aws_bedrock', 'mistral', 'custom') THEN
        RAISE EXCEPTION 'provider "%" is not one of openai, anthropic, google, azure_openai, aws_bedrock, mistral, custom', pg_catalog.left(provider, 64)
            USING ERRCODE = '22023';
    END IF;
    IF options ? 'id' THEN
        IF pg_catalog.jsonb_typeof(options -> 'id') <> 'string'
           OR (options ->> 'id') !~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
           OR (options ->> 'id')::uuid = '00000000-0000-0000-0000-000000000000' THEN
            RAISE EXCEPTION 'options.id must be a non-nil UUID string, not %', options -> 'id' USING ERRCODE = '22023';
        END IF;
        i.id := (options ->> 'id')::uuid;
    ELSE
        i.id := pg_catalog.gen_random_uuid();
    END IF;
    i.tenant_id := tenant_id;
    i.name := name;
    i.provider := provider;
    IF options ? 'enabled' AND pg_catalog.jsonb_typeof(options -> 'enabled') <> 'boolean' THEN
        RAISE EXCEPTION 'options.enabled must be true or false, not %', options -> 'enabled' USING ERRCODE = '22023';
    END IF;
    -- A new integration blocks every check() until enabled: "enabled": true does it at once.
    i.status := CASE WHEN (options -> 'enabled') = 'true' THEN 'enabled' ELSE 'created' END;
    i.base_url := aos_cus_internal.patch_text(options, 'base_url', NULL);
    i.config := coalesce(options -> 'config', '{}');
    i := aos_cus_internal.check_integration_fields(i);
    -- Every limit at its default (JSON null), then what options.limits sets.
    i := aos_cus_internal.apply_limits(i, '{"budget_microcents": null, "budget_period": null, "token_limit": null, "token_period": null,
                                  "rpm": null, "tpm": null, "rph": null, "rpd": null, "warn_at_pct": null, "mode": null, "timezone": null}');
    IF options ? 'limits' THEN
        i := aos_cus_internal.apply_limits(i, options -> 'limits');
    END IF;
    -- Encrypted before the first write: the plaintext never reaches the table or the WAL.
    stored := aos_cus.credential_reference(tenant_id, i.id, credential);
    BEGIN
        INSERT INTO aos_cus.cus_integrations (tenant_id, id, name, provider, status, credential_ref, credential_hint,
                                              base_url, config, budget_microcents, budget_period, token_limit,
                                              token_period, rpm, tpm, rph, rpd, warn_at_pct, enforcement_mode, timezone)
        VALUES (i.tenant_id, i.id, i.name, i.provider, i.status, stored.credential_ref, stored.credential_hint,
                i.base_url, i.config, i.budget_microcents, i.budget_period, i.token_limit,
                i.token_period, i.rpm, i.tpm, i.rph, i.rpd, i.warn_at_pct, i.enforcement_mode, i.timezone);
    EXCEPTION WHEN unique_violation THEN
        GET STACKED DIAGNOSTICS constraint_name = CONSTRAINT_NAME;
        IF constraint_name = 'cus_integrations_name_key' THEN
            RAISE EXCEPTION 'an integration named "%" already exists for this tenant', i.name USING ERRCODE = '23505';
        END IF;
        RAISE EXCEPTION 'integration % already exists', i.id USING ERRCODE = '23505';
    END;
    RETURN i.id;
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS e_state = RETURNED_SQLSTATE, e_message = MESSAGE_TEXT, e_detail = PG_EXCEPTION_DETAIL,
                            e_hint = PG_EXCEPTION_HINT;
    PERFORM aos_cus_internal.raise_error(e_state, e_message, e_detail, e_hint);
END
$$;
CREATE OR REPLACE FUNCTION aos_cus.update_integration(tenant_id uuid, integration_id uuid, patch jsonb) RETURNS aos_cus.integration
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    e_state text;
    e_message text;
    e_detail text;
    e_hint text;
    i aos_cus.cus_integrations;
BEGIN
    PERFORM aos_cus_internal.check_keys(patch, 'patch', ARRAY['name', 'base_url', 'config', 'limits']);
    i := aos_cus_internal.integration_for_update(tenant_id, integration_id);
    IF i.status = 'deleted' THEN
        RAISE EXCEPTION 'integration % is deleted', integration_id
            USING ERRCODE = '55000', DETAIL = 'A deleted integration cannot be changed.';
    END IF;
    i.name := aos_cus_internal.patch_text(patch, 'name', i.name);
    i.base_url := aos_cus_internal.patch_text(patch, 'base_url', i.base_url);
    IF patch ? 'config' THEN
        i.config := patch -> 'config';
    END IF;
    i := aos_cus_internal.check_integration_fields(i);
    IF patch ? 'limits' THEN
        i := aos_cus_internal.apply_limits(i, patch -> 'limits');
    END IF;
    BEGIN
        UPDATE aos_cus.cus_integrations c
           SET name = i.name, base_url = i.base_url, config = i.config,
               budget_microcents = i.budget_microcents, budget_period = i.budget_period,
               token_limit = i.token_limit, token_period = i.token_period, rpm = i.rpm, tpm = i.tpm,
               rph = i.rph, rpd = i.rpd,
               warn_at_pct = i.warn_at_pct, enforcement_mode = i.enforcement_mode, timezone = i.timezone,
               updated_at = pg_catalog.now()
         WHERE c.tenant_id = i.tenant_id AND c.id = i.id
        RETURNING * INTO i;
    EXCEPTION WHEN unique_violation THEN
        RAISE EXCEPTION 'an integration named "%" already exists for this tenant', i.name USING ERRCODE = '23505';
    END;
    RETURN aos_cus_internal.integration_of(i);
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS e_state = RETURNED_SQLSTATE, e_message = MESSAGE_TEXT, e_detail = PG_EXCEPTION_DETAIL,
                            e_hint = PG_EXCEPTION_HINT;
    PERFORM aos_cus_internal.raise_error(e_state, e_message, e_detail, e_hint);
END
$$;
CREATE OR REPLACE FUNCTION aos_cus_internal.scope_limits_json(s aos_cus.cus_scope_limits) RETURNS jsonb
    LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT pg_catalog.jsonb_build_object(
               'budget_microcents', s.budget_microcents, 'budget_period', s.budget_period,
               'token_limit', s.token_limit, 'token_period', s.token_period,
               'rpm', s.rpm, 'tpm', s.tpm, 'rph', s.rph, 'rpd', s.rpd, 'warn_at_pct', s.warn_at_pct,
               'mode', s.enforcement_mode, 'timezone', s.timezone)
$$;
CREATE OR REPLACE FUNCTION aos_cus.set_scope_limits(tenant_id uuid, scope text, limits jsonb) RETURNS jsonb
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
                                               token_period, rpm, tpm, rph, rpd, warn_at_pct, enforcement_mode, timezone)
    VALUES (set_scope_limits.tenant_id, set_scope_limits.scope, i.budget_microcents, i.budget_period, i.token_limit,
            i.token_period, i.rpm, i.tpm, i.rph, i.rpd, i.warn_at_pct, i.enforcement_mode, i.timezone)
    ON CONFLICT ON CONSTRAINT cus_scope_limits_pkey DO UPDATE
       SET budget_microcents = EXCLUDED.budget_microcents, budget_period = EXCLUDED.budget_period,
           token_limit = EXCLUDED.token_limit, token_period = EXCLUDED.token_period, rpm = EXCLUDED.rpm,
           tpm = EXCLUDED.tpm, rph = EXCLUDED.rph, rpd = EXCLUDED.rpd, warn_at_pct = EXCLUDED.warn_at_pct, enforcement_mode = EXCLUDED.enforcement_mode,
           timezone = EXCLUDED.timezone, updated_at = pg_catalog.now()
    RETURNING * INTO s;
    RETURN aos_cus_internal.scope_limits_json(s);
END
$$;
CREATE OR REPLACE FUNCTION aos_cus.delete_scope_limits(tenant_id uuid, scope text) RETURNS boolean
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
COMMENT ON FUNCTION aos_cus.set_limits(uuid, uuid, jsonb) IS 'patch an integration''s limits (budget_microcents, budget_period, token_limit, token_period, rpm, tpm, rph, rpd, warn_at_pct, mode, timezone; JSON null restores a default)';
DROP TRIGGER enforcement_limits_updated ON aos_cus.cus_integrations;
CREATE TRIGGER enforcement_limits_updated
    AFTER UPDATE OF tenant_id, id, status, budget_microcents, budget_period, token_limit, token_period, rpm, tpm,
                    rph, rpd, warn_at_pct, enforcement_mode, timezone ON aos_cus.cus_integrations
    FOR EACH STATEMENT EXECUTE FUNCTION aos_cus_internal.limits_changed_trigger();
ALTER TABLE aos_cus.cus_enforcement_log DROP CONSTRAINT cus_enforcement_log_reason_check,
    ADD CONSTRAINT cus_enforcement_log_reason_check CHECK (reason IN ('integration_not_found', 'integration_disabled',
                               'rate_limited', 'budget_exceeded', 'token_limit_exceeded', 'budget_warning', 'token_warning',
                               'already_ingested', 'model_not_allowed', 'request_cost_cap', 'request_token_cap',
                               'concurrency_limit', 'unpriced_model', 'request_quota'));
COMMENT ON FUNCTION aos_cus.limit_period_bounds(text, text, timestamptz) IS
    'the calendar period (hour as rph counts it, day, week from Monday, month, total) containing at in an IANA time zone; NULL bounds for total';
DROP FUNCTION aos_cus.integration_limits(uuid, uuid);
CREATE FUNCTION aos_cus.integration_limits(tenant_id uuid, integration_id uuid,
    OUT budget_microcents bigint, OUT budget_period text, OUT budget_period_start timestamptz,
    OUT budget_period_end timestamptz, OUT budget_used_microcents bigint, OUT budget_remaining_microcents bigint,
    OUT token_limit bigint, OUT token_period text, OUT token_period_start timestamptz,
    OUT token_period_end timestamptz, OUT tokens_used bigint, OUT tokens_remaining bigint,
    OUT rpm integer, OUT requests_this_minute bigint, OUT tpm bigint, OUT tokens_this_minute bigint,
    OUT warn_at_pct smallint, OUT mode text, OUT timezone text, OUT rph integer, OUT rpd integer)
    RETURNS record
    LANGUAGE sql VOLATILE
    BEGIN ATOMIC
        SELECT i.budget_microcents, i.budget_period, u.budget_period_start, u.budget_period_end,
               u.spent_microcents + u.reserved_microcents,
               CASE WHEN i.budget_microcents IS NOT NULL
                    THEN GREATEST(i.budget_microcents - u.spent_microcents - u.reserved_microcents, 0) END,
               i.token_limit, i.token_period, u.token_period_start, u.token_period_end,
               u.tokens_used + u.reserved_tokens,
               CASE WHEN i.token_limit IS NOT NULL THEN GREATEST(i.token_limit - u.tokens_used - u.reserved_tokens, 0) END,
               i.rpm, u.requests_this_minute, i.tpm, u.tokens_this_minute,
               i.warn_at_pct, i.enforcement_mode, i.timezone, i.rph, i.rpd
          FROM aos_cus.current_usage(integration_limits.tenant_id, integration_limits.integration_id) u,
               aos_cus.cus_integrations i
         WHERE i.tenant_id = integration_limits.tenant_id AND i.id = integration_limits.integration_id;
    END;
COMMENT ON FUNCTION aos_cus.integration_limits(uuid, uuid) IS
    'configured limits with current period usage (reservations included) and what remains (NULL where there is no limit)';
REVOKE ALL ON FUNCTION aos_cus.integration_limits(uuid, uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION aos_cus.integration_limits(uuid, uuid) TO aos_cus_admin, aos_cus_app, aos_cus_reader;

-- Citus through the coordinator (issue 20): integration_limits in PL/pgSQL (Citus cannot plan a SQL function's
-- parameterized query on a distributed table).
CREATE OR REPLACE FUNCTION aos_cus.integration_limits(tenant_id uuid, integration_id uuid,
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

-- Citus through the coordinator (issue 20): redeliver(tenant_id, event_id), delegated to the worker holding the
-- tenant's outbox; redeliver(event_id) finds the tenant and calls it.
-- The tenant's event queued again; tenant_id first, so Citus runs it on the worker holding the tenant's outbox.
CREATE FUNCTION aos_cus.redeliver(tenant_id uuid, event_id uuid) RETURNS integer
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_seq bigint;
    v_n integer;
BEGIN
    IF redeliver.tenant_id IS NULL OR redeliver.event_id IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = '22004', MESSAGE = 'tenant_id and event_id must not be null';
    END IF;
    PERFORM aos_cus.assert_tenant(redeliver.tenant_id);
    SELECT e.id INTO v_seq FROM aos_cus.cus_webhook_events e
     WHERE e.tenant_id OPERATOR(pg_catalog.=) redeliver.tenant_id AND e.event_id OPERATOR(pg_catalog.=) redeliver.event_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = '42704',
            MESSAGE = pg_catalog.format('webhook event %s does not exist for this tenant', redeliver.event_id);
    END IF;
    UPDATE aos_cus.cus_webhook_deliveries d
       SET status = 'pending', attempts = 0, next_attempt_at = pg_catalog.now(), delivered_at = NULL
     WHERE d.tenant_id OPERATOR(pg_catalog.=) redeliver.tenant_id AND d.event_seq OPERATOR(pg_catalog.=) v_seq;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    RETURN v_n;
END
$$;
COMMENT ON FUNCTION aos_cus.redeliver(uuid, uuid) IS
    'queues an event of the tenant again (delivered or dead-lettered) to every endpoint that had it, with the same webhook-id; returns how many';

CREATE OR REPLACE FUNCTION aos_cus.redeliver(event_id uuid) RETURNS integer
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_tenant uuid;
BEGIN
    IF redeliver.event_id IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = '22004', MESSAGE = 'event_id must not be null';
    END IF;
    SELECT e.tenant_id INTO v_tenant FROM aos_cus.cus_webhook_events e
     WHERE e.event_id OPERATOR(pg_catalog.=) redeliver.event_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = '42704',
            MESSAGE = pg_catalog.format('webhook event %s does not exist for this tenant', redeliver.event_id);
    END IF;
    RETURN aos_cus.redeliver(v_tenant, redeliver.event_id);
END
$$;
COMMENT ON FUNCTION aos_cus.redeliver(uuid) IS
    'queues an event again (delivered or dead-lettered) to every endpoint that had it, with the same webhook-id; returns how many';
REVOKE ALL ON FUNCTION aos_cus.redeliver(uuid, uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION aos_cus.redeliver(uuid, uuid) TO aos_cus_admin;

-- Citus through the coordinator (issue 20): citus_distribute() also distributes cus_scope_limits and cus_policies by
-- tenant_id (a write that Citus does not delegate reaches the tenant's worker, whose check() reads them).
CREATE OR REPLACE FUNCTION aos_cus.citus_distribute() RETURNS TABLE (object text, action text)
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    t text;
    f regprocedure;
    done boolean;
BEGIN
    PERFORM aos_cus.assert_platform('citus_distribute()');
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname OPERATOR(pg_catalog.=) 'citus') THEN
        RAISE EXCEPTION USING ERRCODE = '0A000', MESSAGE = 'citus_distribute() requires the citus extension',
            HINT = 'Install Citus, add citus first to shared_preload_libraries, CREATE EXTENSION citus, add the workers.';
    END IF;
    -- The settle and price triggers run on the shards, on the node that stores the tenant.
    SET LOCAL citus.enable_unsafe_triggers = on;
    SET LOCAL citus.multi_shard_modify_mode = 'sequential';
    -- Global tables: one copy on every node.
    FOREACH t IN ARRAY ARRAY['aos_cus.cus_model_prices'] LOOP
        EXECUTE 'SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition WHERE logicalrelid OPERATOR(pg_catalog.=) $1::pg_catalog.regclass)'
            INTO done USING t;
        IF NOT done THEN
            EXECUTE 'SELECT pg_catalog.create_reference_table($1::pg_catalog.regclass)' USING t;
        END IF;
        object := t; action := CASE WHEN done THEN 'already reference' ELSE 'reference table' END;
        RETURN NEXT;
    END LOOP;
    -- Tenant tables: sharded by tenant_id, each tenant's rows of every table on the same node.
    FOREACH t IN ARRAY ARRAY['aos_cus.cus_integrations', 'aos_cus.cus_llm_usage', 'aos_cus.cus_usage_daily',
                             'aos_cus.cus_ingest_rejects', 'aos_cus.cus_enforcement_log', 'aos_cus.cus_health_checks',
                             'aos_cus.cus_health_history', 'aos_cus.cus_credential_sources', 'aos_cus.cus_scope_limits',
                             'aos_cus.cus_policies'] LOOP
        EXECUTE 'SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition WHERE logicalrelid OPERATOR(pg_catalog.=) $1::pg_catalog.regclass)'
            INTO done USING t;
        IF NOT done THEN
            IF t OPERATOR(pg_catalog.=) 'aos_cus.cus_integrations' THEN
                EXECUTE 'SELECT pg_catalog.create_distributed_table($1::pg_catalog.regclass, ''tenant_id'')' USING t;
            ELSE
                EXECUTE 'SELECT pg_catalog.create_distributed_table($1::pg_catalog.regclass, ''tenant_id'', colocate_with => ''aos_cus.cus_integrations'')'
                    USING t;
            END IF;
        END IF;
        object := t; action := CASE WHEN done THEN 'already distributed' ELSE 'distributed by tenant_id' END;
        RETURN NEXT;
    END LOOP;
    -- Tenant-scoped functions (first argument tenant_id, not optional) run on the node holding the tenant, also
    -- inside a transaction block (force_delegation: PostgREST runs every request in one).
    FOR f IN SELECT p.oid::pg_catalog.regprocedure FROM pg_catalog.pg_proc p
              WHERE p.pronamespace OPERATOR(pg_catalog.=) 'aos_cus'::pg_catalog.regnamespace
                AND p.pronargs OPERATOR(pg_catalog.>=) 1
                AND p.proargtypes[0] OPERATOR(pg_catalog.=) 'pg_catalog.uuid'::pg_catalog.regtype
                AND p.proargnames[1] OPERATOR(pg_catalog.=) 'tenant_id'
                AND p.pronargdefaults OPERATOR(pg_catalog.<) p.pronargs
                AND p.proname OPERATOR(pg_catalog.<>) ALL (ARRAY['assert_tenant', 'request_health_check', 'record_health'])
              ORDER BY 1::text LOOP
        EXECUTE 'SELECT pg_catalog.create_distributed_function($1, ''$1'', colocate_with => ''aos_cus.cus_integrations'', force_delegation => true)'
            USING f;
        object := f::text; action := 'delegated by tenant_id';
        RETURN NEXT;
    END LOOP;
    -- Node-disjoint id ranges, on the workers and here.
    PERFORM aos_cus_internal.citus_on_workers('SELECT aos_cus_internal.citus_node_sequences()');
    PERFORM aos_cus_internal.citus_node_sequences();
    object := 'sequences'; action := 'node id ranges';
    RETURN NEXT;
    -- Login bindings are read locally by every node: copy them to the workers (also to workers added since).
    PERFORM aos_cus_internal.citus_on_workers(pg_catalog.format('SELECT aos_cus.bind_login(%L, %L)', l.login, l.tenant_id))
       FROM aos_cus.cus_tenant_logins l;
    object := 'aos_cus.cus_tenant_logins'; action := 'copied to every worker';
    RETURN NEXT;
    -- Each worker prunes its own hourly rollups and idempotency keys: it needs the same windows.
    PERFORM aos_cus_internal.citus_on_workers(pg_catalog.format('SELECT aos_cus.set_partitioning(%L, %L, %L)',
                s.partition_interval, s.idempotency_window, s.hourly_retention)),
            aos_cus_internal.citus_on_workers(pg_catalog.format('SELECT aos_cus.set_retention(%L, %L)',
                s.raw_retention, s.rejects_retention))
       FROM aos_cus.usage_settings() s;
    object := 'aos_cus.cus_usage_settings'; action := 'copied to every worker';
    RETURN NEXT;
    -- Rollups per node: each node folds its own shards with its own snapshots.
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname OPERATOR(pg_catalog.=) 'pg_cron') THEN
        EXECUTE 'SELECT cron.unschedule(jobid) FROM cron.job WHERE jobname OPERATOR(pg_catalog.=) $1 AND username OPERATOR(pg_catalog.=) current_user'
            USING 'aos_cus_rollup';
        EXECUTE 'SELECT cron.schedule($1, $2, $3)'
            USING 'aos_cus_rollup', '*/10 * * * *', 'SELECT aos_cus.citus_rollup()';
        object := 'cron job aos_cus_rollup'; action := 'citus_rollup() every 10 minutes';
        RETURN NEXT;
    END IF;
END
$$;

-- Citus through the coordinator (issue 20): set_scope_limits() takes updated_at from the inserted row (Citus refuses a
-- non-immutable function in DO UPDATE SET on a distributed table).
CREATE OR REPLACE FUNCTION aos_cus.set_scope_limits(tenant_id uuid, scope text, limits jsonb) RETURNS jsonb
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

-- Citus through the coordinator (issue 20): scope_limits() casts its whole rows to the table's type (under Citus they
-- are rows of a shard).
CREATE OR REPLACE FUNCTION aos_cus.scope_limits(tenant_id uuid) RETURNS TABLE (scope text, limits jsonb)
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

-- Daily subject and tag sums (issue 14, requirement 2): cus_usage_daily_subject and cus_usage_daily_tag, folded by the
-- same rollups as cus_usage_daily (rows of 0.1.0 carry no subject or tags, so they start empty), read by the rebuilds
-- of subject: and tag: scopes; distributed by tenant_id under Citus.
-- Daily sums per subject and per tag (enforcement scopes subject:<v> and tag:<k>=<v>), folded by the same rollups as
-- cus_usage_daily, so a scope's rebuild reads days instead of usage rows, also after retention dropped the rows.
-- Only what a scope can match is kept: string tag values, keys up to 63 bytes and values up to 255 bytes.
CREATE TABLE aos_cus.cus_usage_daily_subject (
    tenant_id              uuid NOT NULL,
    subject                text NOT NULL,
    day                    date NOT NULL,
    integration_id         uuid NOT NULL,
    requests               bigint NOT NULL DEFAULT 0 CHECK (requests >= 0),
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
    PRIMARY KEY (tenant_id, subject, day, integration_id),
    FOREIGN KEY (tenant_id, integration_id) REFERENCES aos_cus.cus_integrations (tenant_id, id)
);
COMMENT ON TABLE aos_cus.cus_usage_daily_subject IS 'daily usage sums (UTC days) per subject, maintained by rollup_usage() for subject: scopes';
CREATE TABLE aos_cus.cus_usage_daily_tag (
    tenant_id              uuid NOT NULL,
    tag_key                text NOT NULL,
    tag_value              text NOT NULL,
    day                    date NOT NULL,
    integration_id         uuid NOT NULL,
    requests               bigint NOT NULL DEFAULT 0 CHECK (requests >= 0),
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
    PRIMARY KEY (tenant_id, tag_key, tag_value, day, integration_id),
    FOREIGN KEY (tenant_id, integration_id) REFERENCES aos_cus.cus_integrations (tenant_id, id)
);
COMMENT ON TABLE aos_cus.cus_usage_daily_tag IS 'daily usage sums (UTC days) per tag key and value, maintained by rollup_usage() for tag: scopes';
SELECT pg_catalog.pg_extension_config_dump('aos_cus.cus_usage_daily_subject', '');
SELECT pg_catalog.pg_extension_config_dump('aos_cus.cus_usage_daily_tag', '');
SELECT aos_cus_internal.enable_tenant_rls('aos_cus.cus_usage_daily_subject');
SELECT aos_cus_internal.enable_tenant_rls('aos_cus.cus_usage_daily_tag');
REVOKE ALL ON aos_cus.cus_usage_daily_subject, aos_cus.cus_usage_daily_tag FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE, DELETE ON aos_cus.cus_usage_daily_subject, aos_cus.cus_usage_daily_tag TO aos_cus_admin;
GRANT SELECT ON aos_cus.cus_usage_daily_subject, aos_cus.cus_usage_daily_tag TO aos_cus_app, aos_cus_reader, aos_cus_worker;
CREATE OR REPLACE FUNCTION aos_cus_internal.fold_usage(filter text, a pg_snapshot, b pg_snapshot, from_day date, to_day date)
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
                input_tokens = aos_cus_internal.saturate(d.input_tokens::numeric + excluded.input_tokens),
                cache_read_tokens = aos_cus_internal.saturate(d.cache_read_tokens::numeric + excluded.cache_read_tokens),
                cache_write_tokens = aos_cus_internal.saturate(d.cache_write_tokens::numeric + excluded.cache_write_tokens),
                cache_write_1h_tokens = aos_cus_internal.saturate(d.cache_write_1h_tokens::numeric + excluded.cache_write_1h_tokens),
                output_tokens = aos_cus_internal.saturate(d.output_tokens::numeric + excluded.output_tokens),
                reasoning_tokens = aos_cus_internal.saturate(d.reasoning_tokens::numeric + excluded.reasoning_tokens),
                input_audio_tokens = aos_cus_internal.saturate(d.input_audio_tokens::numeric + excluded.input_audio_tokens),
                output_audio_tokens = aos_cus_internal.saturate(d.output_audio_tokens::numeric + excluded.output_audio_tokens),
                cost_microcents = aos_cus_internal.saturate(d.cost_microcents::numeric + excluded.cost_microcents),
                unpriced_requests = d.unpriced_requests + excluded.unpriced_requests,
                latency_sum_ms = aos_cus_internal.saturate(d.latency_sum_ms::numeric + excluded.latency_sum_ms),
                latency_max_ms = GREATEST(d.latency_max_ms, excluded.latency_max_ms),
                updated_at = excluded.updated_at$u$;
    -- Adds the groups of a CTE to a daily scope sum table keyed by its scope columns (%1$I table, %2$s columns, %3$s CTE).
    upsert_scope constant text := $u$
            INSERT INTO aos_cus.%1$I AS d
                   (tenant_id, %2$s, day, integration_id, requests, input_tokens, cache_read_tokens, cache_write_tokens,
                    cache_write_1h_tokens, output_tokens, reasoning_tokens, input_audio_tokens, output_audio_tokens,
                    cost_microcents, unpriced_requests)
            SELECT * FROM %3$s
            ON CONFLICT (tenant_id, %2$s, day, integration_id) DO UPDATE SET
                requests = d.requests + excluded.requests,
                input_tokens = aos_cus_internal.saturate(d.input_tokens::numeric + excluded.input_tokens),
                cache_read_tokens = aos_cus_internal.saturate(d.cache_read_tokens::numeric + excluded.cache_read_tokens),
                cache_write_tokens = aos_cus_internal.saturate(d.cache_write_tokens::numeric + excluded.cache_write_tokens),
                cache_write_1h_tokens = aos_cus_internal.saturate(d.cache_write_1h_tokens::numeric + excluded.cache_write_1h_tokens),
                output_tokens = aos_cus_internal.saturate(d.output_tokens::numeric + excluded.output_tokens),
                reasoning_tokens = aos_cus_internal.saturate(d.reasoning_tokens::numeric + excluded.reasoning_tokens),
                input_audio_tokens = aos_cus_internal.saturate(d.input_audio_tokens::numeric + excluded.input_audio_tokens),
                output_audio_tokens = aos_cus_internal.saturate(d.output_audio_tokens::numeric + excluded.output_audio_tokens),
                cost_microcents = aos_cus_internal.saturate(d.cost_microcents::numeric + excluded.cost_microcents),
                unpriced_requests = d.unpriced_requests + excluded.unpriced_requests$u$;
    -- The sums of a scope CTE's groups (%s: its group columns, then day and integration_id).
    scope_sums constant text := $u$
            SELECT %s, (started_at AT TIME ZONE 'UTC')::date AS day, integration_id, count(*) AS requests,
                   aos_cus_internal.saturate(sum(input_tokens)), aos_cus_internal.saturate(sum(cache_read_tokens)),
                   aos_cus_internal.saturate(sum(cache_write_tokens)), aos_cus_internal.saturate(sum(cache_write_1h_tokens)),
                   aos_cus_internal.saturate(sum(output_tokens)), aos_cus_internal.saturate(sum(reasoning_tokens)),
                   aos_cus_internal.saturate(sum(input_audio_tokens)), aos_cus_internal.saturate(sum(output_audio_tokens)),
                   aos_cus_internal.saturate(coalesce(sum(cost_microcents), 0)),
                   count(*) FILTER (WHERE cost_microcents IS NULL) AS unpriced_requests$u$;
    -- Hours before the hourly retention are not kept (maintain_partitions() prunes them).
    hourly_from timestamptz := pg_catalog.now() - (SELECT s.hourly_retention FROM aos_cus.usage_settings() s);
    folded bigint;
BEGIN
    -- Rows grouped by UTC hour; the days are sums of their hours (sums of non-negative counts saturate alike).
    EXECUTE pg_catalog.format($q$
        WITH h AS (
            SELECT tenant_id, integration_id, pg_catalog.date_trunc('hour', started_at, 'UTC') AS hour, provider, model,
                   count(*) AS requests, count(*) FILTER (WHERE status <> 'success') AS errors,
                   aos_cus_internal.saturate(sum(input_tokens)) AS input_tokens,
                   aos_cus_internal.saturate(sum(cache_read_tokens)) AS cache_read_tokens,
                   aos_cus_internal.saturate(sum(cache_write_tokens)) AS cache_write_tokens,
                   aos_cus_internal.saturate(sum(cache_write_1h_tokens)) AS cache_write_1h_tokens,
                   aos_cus_internal.saturate(sum(output_tokens)) AS output_tokens,
                   aos_cus_internal.saturate(sum(reasoning_tokens)) AS reasoning_tokens,
                   aos_cus_internal.saturate(sum(input_audio_tokens)) AS input_audio_tokens,
                   aos_cus_internal.saturate(sum(output_audio_tokens)) AS output_audio_tokens,
                   aos_cus_internal.saturate(coalesce(sum(cost_microcents), 0)) AS cost_microcents,
                   count(*) FILTER (WHERE cost_microcents IS NULL) AS unpriced_requests,
                   aos_cus_internal.saturate(coalesce(sum(latency_ms), 0)) AS latency_sum_ms,
                   coalesce(max(latency_ms), 0) AS latency_max_ms
              FROM aos_cus.cus_llm_usage
             WHERE (%1$s) AND %4$s
             GROUP BY 1, 2, 3, 4, 5),
        kept AS (SELECT * FROM h WHERE hour >= $5),
        g AS (
            SELECT tenant_id, integration_id, (hour AT TIME ZONE 'UTC')::date AS day, provider, model,
                   sum(requests)::bigint AS requests, sum(errors)::bigint AS errors,
                   aos_cus_internal.saturate(sum(input_tokens)) AS input_tokens,
                   aos_cus_internal.saturate(sum(cache_read_tokens)) AS cache_read_tokens,
                   aos_cus_internal.saturate(sum(cache_write_tokens)) AS cache_write_tokens,
                   aos_cus_internal.saturate(sum(cache_write_1h_tokens)) AS cache_write_1h_tokens,
                   aos_cus_internal.saturate(sum(output_tokens)) AS output_tokens,
                   aos_cus_internal.saturate(sum(reasoning_tokens)) AS reasoning_tokens,
                   aos_cus_internal.saturate(sum(input_audio_tokens)) AS input_audio_tokens,
                   aos_cus_internal.saturate(sum(output_audio_tokens)) AS output_audio_tokens,
                   aos_cus_internal.saturate(sum(cost_microcents)) AS cost_microcents,
                   sum(unpriced_requests)::bigint AS unpriced_requests,
                   aos_cus_internal.saturate(sum(latency_sum_ms)) AS latency_sum_ms,
                   max(latency_max_ms) AS latency_max_ms
              FROM h
             GROUP BY 1, 2, 3, 4, 5),
        -- The rows a subject: or tag: scope can match, read once for both sums.
        sc AS MATERIALIZED (
            SELECT tenant_id, integration_id, started_at, subject, tags, input_tokens, cache_read_tokens,
                   cache_write_tokens, cache_write_1h_tokens, output_tokens, reasoning_tokens, input_audio_tokens,
                   output_audio_tokens, cost_microcents
              FROM aos_cus.cus_llm_usage
             WHERE (%1$s) AND %4$s AND (subject IS NOT NULL OR tags IS NOT NULL)),
        subj AS (%5$s FROM sc WHERE subject IS NOT NULL GROUP BY 1, 2, 3, 4),
        tag AS (%6$s FROM (SELECT sc.*, kv.key AS tag_key, kv.value OPERATOR(pg_catalog.#>>) '{}' AS tag_value
                             FROM sc, pg_catalog.jsonb_each(sc.tags) kv
                            WHERE pg_catalog.jsonb_typeof(kv.value) = 'string') t
                 WHERE pg_catalog.octet_length(tag_key) BETWEEN 1 AND 63 AND pg_catalog.octet_length(tag_value) BETWEEN 1 AND 255
                 GROUP BY 1, 2, 3, 4, 5),
        ins_hourly AS (%2$s),
        ins_daily AS (%3$s),
        ins_subject AS (%7$s),
        ins_tag AS (%8$s)
        SELECT coalesce(sum(requests), 0)::bigint FROM g$q$, filter,
        pg_catalog.format(upsert, 'cus_usage_hourly', 'hour', 'kept'), pg_catalog.format(upsert, 'cus_usage_daily', 'day', 'g'),
        aos_cus_internal.node_rows_filter(), pg_catalog.format(scope_sums, 'tenant_id, subject'),
        pg_catalog.format(scope_sums, 'tenant_id, tag_key, tag_value'),
        pg_catalog.format(upsert_scope, 'cus_usage_daily_subject', 'subject', 'subj'),
        pg_catalog.format(upsert_scope, 'cus_usage_daily_tag', 'tag_key, tag_value', 'tag'))
    INTO folded USING a, b, from_day, to_day, hourly_from;
    RETURN folded;
END
$$;
COMMENT ON FUNCTION aos_cus_internal.fold_usage(text, pg_snapshot, pg_snapshot, date, date) IS
    'internal to rollup_usage() and rebuild_daily(): adds the usage rows a fixed filter selects to cus_usage_daily, cus_usage_hourly and the daily subject and tag sums';
CREATE OR REPLACE FUNCTION aos_cus_internal.lock_rollup_state(OUT last_snapshot pg_snapshot, OUT rebuilt bigint)
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
    s := aos_cus_internal.rollup_snapshot();
    -- Ids from another cluster mean nothing here: mark every row we can see as folded ("frozen" xid 2).
    EXECUTE pg_catalog.format('UPDATE aos_cus.cus_llm_usage SET ingest_xid = ''2'' '
                              'WHERE ingest_xid >= pg_catalog.pg_snapshot_xmin($1) AND %s', aos_cus_internal.node_rows_filter())
        USING s;
    EXECUTE 'DELETE FROM aos_cus.cus_usage_daily WHERE ' || aos_cus_internal.node_rows_filter();
    EXECUTE 'DELETE FROM aos_cus.cus_usage_hourly WHERE ' || aos_cus_internal.node_rows_filter();
    EXECUTE 'DELETE FROM aos_cus.cus_usage_daily_subject WHERE ' || aos_cus_internal.node_rows_filter();
    EXECUTE 'DELETE FROM aos_cus.cus_usage_daily_tag WHERE ' || aos_cus_internal.node_rows_filter();
    rebuilt := aos_cus_internal.fold_usage('pg_catalog.pg_visible_in_snapshot(ingest_xid, $2)', NULL, s, NULL, NULL);
    UPDATE aos_cus.cus_rollup_state SET last_snapshot = s, system_id = this_system, last_rollup_at = pg_catalog.now();
    last_snapshot := s;
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
    st := aos_cus_internal.lock_rollup_state();
    IF st.rebuilt IS NOT NULL THEN
        RETURN st.rebuilt;
    END IF;
    -- Exactly the rows the aggregates already stand for (visible in last_snapshot), so rollups stay exact.
    EXECUTE 'DELETE FROM aos_cus.cus_usage_daily WHERE day BETWEEN $1 AND $2 AND ' || aos_cus_internal.node_rows_filter()
        USING from_day, to_day;
    EXECUTE 'DELETE FROM aos_cus.cus_usage_daily_subject WHERE day BETWEEN $1 AND $2 AND ' || aos_cus_internal.node_rows_filter()
        USING from_day, to_day;
    EXECUTE 'DELETE FROM aos_cus.cus_usage_daily_tag WHERE day BETWEEN $1 AND $2 AND ' || aos_cus_internal.node_rows_filter()
        USING from_day, to_day;
    EXECUTE 'DELETE FROM aos_cus.cus_usage_hourly WHERE hour >= ($1::timestamp AT TIME ZONE ''UTC'')'
            ' AND hour < (($2 + 1)::timestamp AT TIME ZONE ''UTC'') AND ' || aos_cus_internal.node_rows_filter()
        USING from_day, to_day;
    RETURN aos_cus_internal.fold_usage(
        'started_at >= ($3::timestamp AT TIME ZONE ''UTC'') AND started_at < (($4 + 1)::timestamp AT TIME ZONE ''UTC'')'
        ' AND pg_catalog.pg_visible_in_snapshot(ingest_xid, $1)', st.last_snapshot, NULL, from_day, to_day);
END
$$;
COMMENT ON FUNCTION aos_cus.rebuild_daily(date, date) IS
    'recomputes cus_usage_daily, cus_usage_hourly and the daily subject and tag sums exactly for the UTC days from_day..to_day; returns the usage rows counted';
CREATE OR REPLACE FUNCTION aos_cus.reprice_usage(from_ts timestamptz, to_ts timestamptz, only_unpriced boolean DEFAULT true)
    RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    st record;
    node text := aos_cus_internal.citus_node();
    tenant uuid;
    n bigint;
    changed bigint := 0;
    cmd text;
    style text;
    failed text;
BEGIN
    PERFORM aos_cus.assert_platform('reprice_usage()');
    IF from_ts IS NULL OR to_ts IS NULL OR only_unpriced IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = '22004', MESSAGE = 'from_ts, to_ts and only_unpriced must not be null';
    END IF;
    IF from_ts > to_ts THEN
        RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = pg_catalog.format('from_ts %s is after to_ts %s', from_ts, to_ts);
    END IF;
    -- Citus coordinator: each worker reprices the rows it stores, in its own transaction (one node per commit).
    IF node OPERATOR(pg_catalog.=) 'coordinator' THEN
        -- The bounds travel as text in ISO style, which every DateStyle reads back.
        style := pg_catalog.current_setting('DateStyle');
        PERFORM pg_catalog.set_config('DateStyle', 'ISO', true);
        cmd := pg_catalog.format('SELECT aos_cus.reprice_usage(%L, %L, %L)', from_ts, to_ts, only_unpriced);
        PERFORM pg_catalog.set_config('DateStyle', style, true);
        EXECUTE 'SELECT pg_catalog.sum(w.result::pg_catalog.int8) FILTER (WHERE w.success),
                        pg_catalog.string_agg(pg_catalog.format(''%s:%s: %s'', w.nodename, w.nodeport, w.result), ''; '')
                          FILTER (WHERE NOT w.success)
                   FROM pg_catalog.run_command_on_workers($1) w'
            INTO changed, failed
            USING cmd;
        IF failed IS NOT NULL THEN
            RAISE EXCEPTION USING ERRCODE = '58000', MESSAGE = 'reprice_usage() failed on Citus workers: ' || failed,
                DETAIL = 'The other workers committed their repricing; running reprice_usage() again is safe.';
        END IF;
        RETURN coalesce(changed, 0);
    END IF;
    -- Serialize with rollups: rows already folded get their aggregate corrected here, the rest on their rollup.
    st := aos_cus_internal.lock_rollup_state();
    -- On a Citus worker, one tenant at a time (Citus locks rows FOR UPDATE only in single-shard queries), for the
    -- tenants whose shards it stores; on one server, every row at once.
    FOR tenant IN EXECUTE CASE WHEN node IS NULL THEN 'SELECT NULL::pg_catalog.uuid'
                               ELSE 'SELECT DISTINCT tenant_id FROM aos_cus.cus_integrations WHERE ' OPERATOR(pg_catalog.||)
                                    aos_cus_internal.node_rows_filter() END LOOP
        EXECUTE pg_catalog.format($q$
    WITH old AS (
        SELECT tenant_id, id, cost_microcents
          FROM aos_cus.cus_llm_usage
         WHERE %1$s AND started_at >= $1 AND started_at < $2
           AND (NOT $3 OR cost_microcents IS NULL OR unpriced_reason IS NOT NULL)
           FOR UPDATE),
    upd AS (
        -- A NULL cost makes the pricing trigger price the row again.
        UPDATE aos_cus.cus_llm_usage u SET cost_microcents = NULL, price_id = NULL
          FROM old WHERE %2$s AND u.tenant_id = old.tenant_id AND u.id = old.id
        RETURNING u.tenant_id, u.integration_id, u.started_at, u.provider, u.model, u.ingest_xid, u.subject, u.tags,
                  old.cost_microcents AS old_cost, u.cost_microcents AS new_cost),
    delta_hourly AS (
        SELECT tenant_id, integration_id, pg_catalog.date_trunc('hour', started_at, 'UTC') AS hour, provider, model,
               sum(coalesce(new_cost, 0) - coalesce(old_cost, 0)) AS cost,
               sum((new_cost IS NULL)::int - (old_cost IS NULL)::int) AS unpriced
          FROM upd
         WHERE pg_catalog.pg_visible_in_snapshot(ingest_xid, $4)
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
    folded AS (
        SELECT tenant_id, integration_id, (started_at AT TIME ZONE 'UTC')::date AS day, subject, tags,
               coalesce(new_cost, 0) - coalesce(old_cost, 0) AS cost, (new_cost IS NULL)::int - (old_cost IS NULL)::int AS unpriced
          FROM upd
         WHERE pg_catalog.pg_visible_in_snapshot(ingest_xid, $4) AND (subject IS NOT NULL OR tags IS NOT NULL)),
    delta_subject AS (
        SELECT tenant_id, subject, day, integration_id, sum(cost) AS cost, sum(unpriced) AS unpriced
          FROM folded WHERE subject IS NOT NULL
         GROUP BY 1, 2, 3, 4),
    delta_tag AS (
        SELECT tenant_id, kv.key AS tag_key, kv.value OPERATOR(pg_catalog.#>>) '{}' AS tag_value, day, integration_id,
               sum(cost) AS cost, sum(unpriced) AS unpriced
          FROM folded, pg_catalog.jsonb_each(folded.tags) kv
         WHERE pg_catalog.jsonb_typeof(kv.value) = 'string'
         GROUP BY 1, 2, 3, 4, 5),
    adjusted_subject AS (
        UPDATE aos_cus.cus_usage_daily_subject d
           SET cost_microcents = d.cost_microcents + x.cost, unpriced_requests = d.unpriced_requests + x.unpriced
          FROM delta_subject x
         WHERE d.tenant_id = x.tenant_id AND d.subject = x.subject AND d.day = x.day AND d.integration_id = x.integration_id
        RETURNING 1),
    adjusted_tag AS (
        UPDATE aos_cus.cus_usage_daily_tag d
           SET cost_microcents = d.cost_microcents + x.cost, unpriced_requests = d.unpriced_requests + x.unpriced
          FROM delta_tag x
         WHERE d.tenant_id = x.tenant_id AND d.tag_key = x.tag_key AND d.tag_value = x.tag_value AND d.day = x.day
           AND d.integration_id = x.integration_id
        RETURNING 1),
    adjusted AS (
        UPDATE aos_cus.cus_usage_daily d
           SET cost_microcents = d.cost_microcents + delta.cost,
               unpriced_requests = d.unpriced_requests + delta.unpriced, updated_at = pg_catalog.now()
          FROM delta
         WHERE d.tenant_id = delta.tenant_id AND d.integration_id = delta.integration_id AND d.day = delta.day
           AND d.provider = delta.provider AND d.model = delta.model
        RETURNING 1)
    SELECT count(*) FILTER (WHERE new_cost IS DISTINCT FROM old_cost) FROM upd$q$,
            CASE WHEN tenant IS NULL THEN 'true' ELSE 'tenant_id OPERATOR(pg_catalog.=) $5' END,
            CASE WHEN tenant IS NULL THEN 'true' ELSE 'u.tenant_id OPERATOR(pg_catalog.=) $5' END)
            INTO n USING from_ts, to_ts, only_unpriced, st.last_snapshot, tenant;
        changed := changed OPERATOR(pg_catalog.+) n;
    END LOOP;
    RETURN changed;
END
$$;
CREATE OR REPLACE FUNCTION aos_cus.citus_distribute() RETURNS TABLE (object text, action text)
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    t text;
    f regprocedure;
    done boolean;
BEGIN
    PERFORM aos_cus.assert_platform('citus_distribute()');
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname OPERATOR(pg_catalog.=) 'citus') THEN
        RAISE EXCEPTION USING ERRCODE = '0A000', MESSAGE = 'citus_distribute() requires the citus extension',
            HINT = 'Install Citus, add citus first to shared_preload_libraries, CREATE EXTENSION citus, add the workers.';
    END IF;
    -- The settle and price triggers run on the shards, on the node that stores the tenant.
    SET LOCAL citus.enable_unsafe_triggers = on;
    SET LOCAL citus.multi_shard_modify_mode = 'sequential';
    -- Global tables: one copy on every node.
    FOREACH t IN ARRAY ARRAY['aos_cus.cus_model_prices'] LOOP
        EXECUTE 'SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition WHERE logicalrelid OPERATOR(pg_catalog.=) $1::pg_catalog.regclass)'
            INTO done USING t;
        IF NOT done THEN
            EXECUTE 'SELECT pg_catalog.create_reference_table($1::pg_catalog.regclass)' USING t;
        END IF;
        object := t; action := CASE WHEN done THEN 'already reference' ELSE 'reference table' END;
        RETURN NEXT;
    END LOOP;
    -- Tenant tables: sharded by tenant_id, each tenant's rows of every table on the same node.
    FOREACH t IN ARRAY ARRAY['aos_cus.cus_integrations', 'aos_cus.cus_llm_usage', 'aos_cus.cus_usage_daily',
                             'aos_cus.cus_usage_daily_subject', 'aos_cus.cus_usage_daily_tag', 'aos_cus.cus_ingest_rejects',
                             'aos_cus.cus_enforcement_log', 'aos_cus.cus_health_checks', 'aos_cus.cus_health_history',
                             'aos_cus.cus_credential_sources', 'aos_cus.cus_scope_limits', 'aos_cus.cus_policies'] LOOP
        EXECUTE 'SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition WHERE logicalrelid OPERATOR(pg_catalog.=) $1::pg_catalog.regclass)'
            INTO done USING t;
        IF NOT done THEN
            IF t OPERATOR(pg_catalog.=) 'aos_cus.cus_integrations' THEN
                EXECUTE 'SELECT pg_catalog.create_distributed_table($1::pg_catalog.regclass, ''tenant_id'')' USING t;
            ELSE
                EXECUTE 'SELECT pg_catalog.create_distributed_table($1::pg_catalog.regclass, ''tenant_id'', colocate_with => ''aos_cus.cus_integrations'')'
                    USING t;
            END IF;
        END IF;
        object := t; action := CASE WHEN done THEN 'already distributed' ELSE 'distributed by tenant_id' END;
        RETURN NEXT;
    END LOOP;
    -- Tenant-scoped functions (first argument tenant_id, not optional) run on the node holding the tenant, also
    -- inside a transaction block (force_delegation: PostgREST runs every request in one).
    FOR f IN SELECT p.oid::pg_catalog.regprocedure FROM pg_catalog.pg_proc p
              WHERE p.pronamespace OPERATOR(pg_catalog.=) 'aos_cus'::pg_catalog.regnamespace
                AND p.pronargs OPERATOR(pg_catalog.>=) 1
                AND p.proargtypes[0] OPERATOR(pg_catalog.=) 'pg_catalog.uuid'::pg_catalog.regtype
                AND p.proargnames[1] OPERATOR(pg_catalog.=) 'tenant_id'
                AND p.pronargdefaults OPERATOR(pg_catalog.<) p.pronargs
                AND p.proname OPERATOR(pg_catalog.<>) ALL (ARRAY['assert_tenant', 'request_health_check', 'record_health'])
              ORDER BY 1::text LOOP
        EXECUTE 'SELECT pg_catalog.create_distributed_function($1, ''$1'', colocate_with => ''aos_cus.cus_integrations'', force_delegation => true)'
            USING f;
        object := f::text; action := 'delegated by tenant_id';
        RETURN NEXT;
    END LOOP;
    -- Node-disjoint id ranges, on the workers and here.
    PERFORM aos_cus_internal.citus_on_workers('SELECT aos_cus_internal.citus_node_sequences()');
    PERFORM aos_cus_internal.citus_node_sequences();
    object := 'sequences'; action := 'node id ranges';
    RETURN NEXT;
    -- Login bindings are read locally by every node: copy them to the workers (also to workers added since).
    PERFORM aos_cus_internal.citus_on_workers(pg_catalog.format('SELECT aos_cus.bind_login(%L, %L)', l.login, l.tenant_id))
       FROM aos_cus.cus_tenant_logins l;
    object := 'aos_cus.cus_tenant_logins'; action := 'copied to every worker';
    RETURN NEXT;
    -- Each worker prunes its own hourly rollups and idempotency keys: it needs the same windows.
    PERFORM aos_cus_internal.citus_on_workers(pg_catalog.format('SELECT aos_cus.set_partitioning(%L, %L, %L)',
                s.partition_interval, s.idempotency_window, s.hourly_retention)),
            aos_cus_internal.citus_on_workers(pg_catalog.format('SELECT aos_cus.set_retention(%L, %L)',
                s.raw_retention, s.rejects_retention))
       FROM aos_cus.usage_settings() s;
    object := 'aos_cus.cus_usage_settings'; action := 'copied to every worker';
    RETURN NEXT;
    -- Rollups per node: each node folds its own shards with its own snapshots.
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname OPERATOR(pg_catalog.=) 'pg_cron') THEN
        EXECUTE 'SELECT cron.unschedule(jobid) FROM cron.job WHERE jobname OPERATOR(pg_catalog.=) $1 AND username OPERATOR(pg_catalog.=) current_user'
            USING 'aos_cus_rollup';
        EXECUTE 'SELECT cron.schedule($1, $2, $3)'
            USING 'aos_cus_rollup', '*/10 * * * *', 'SELECT aos_cus.citus_rollup()';
        object := 'cron job aos_cus_rollup'; action := 'citus_rollup() every 10 minutes';
        RETURN NEXT;
    END IF;
END
$$;

-- One row check (issue 19): cus_llm_usage's ten CHECK expressions, read and planned again by every INSERT
-- statement, become cus_llm_usage_row_check, one call of a C function that enforces the same bounds.
CREATE FUNCTION aos_cus_internal.usage_row_check(call_id text, model text, status text, error_code text, subject text,
        latency_ms integer, metadata jsonb, tags jsonb, input_tokens aos_cus.token_count,
        cache_read_tokens aos_cus.token_count, cache_write_tokens aos_cus.token_count,
        cache_write_1h_tokens aos_cus.token_count, output_tokens aos_cus.token_count,
        reasoning_tokens aos_cus.token_count, input_audio_tokens aos_cus.token_count,
        output_audio_tokens aos_cus.token_count) RETURNS boolean
    AS 'MODULE_PATHNAME', 'aos_cus_usage_row_check'
    LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION aos_cus_internal.usage_row_check(text, text, text, text, text, integer, jsonb, jsonb,
        aos_cus.token_count, aos_cus.token_count, aos_cus.token_count, aos_cus.token_count, aos_cus.token_count,
        aos_cus.token_count, aos_cus.token_count, aos_cus.token_count) IS
    'cus_llm_usage_row_check: call_id 1-255 and model 1-200 characters, a known status, error_code at most 200 characters, subject 1-255 bytes, latency_ms not negative, metadata (16 kB) and tags (8 kB) objects, token counts at most 10^12, reasoning_tokens <= output_tokens; raises 23514 naming the column';
REVOKE ALL ON FUNCTION aos_cus_internal.usage_row_check(text, text, text, text, text, integer, jsonb, jsonb,
    aos_cus.token_count, aos_cus.token_count, aos_cus.token_count, aos_cus.token_count, aos_cus.token_count,
    aos_cus.token_count, aos_cus.token_count, aos_cus.token_count) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION aos_cus_internal.usage_row_check(text, text, text, text, text, integer, jsonb, jsonb,
    aos_cus.token_count, aos_cus.token_count, aos_cus.token_count, aos_cus.token_count, aos_cus.token_count,
    aos_cus.token_count, aos_cus.token_count, aos_cus.token_count) TO aos_cus_admin, aos_cus_app;
ALTER TABLE aos_cus.cus_llm_usage DROP CONSTRAINT cus_llm_usage_call_id_check,
    DROP CONSTRAINT cus_llm_usage_model_check, DROP CONSTRAINT cus_llm_usage_latency_ms_check,
    DROP CONSTRAINT cus_llm_usage_status_check, DROP CONSTRAINT cus_llm_usage_error_code_check,
    DROP CONSTRAINT cus_llm_usage_metadata_check, DROP CONSTRAINT cus_llm_usage_subject_check,
    DROP CONSTRAINT cus_llm_usage_tags_check, DROP CONSTRAINT cus_llm_usage_check,
    DROP CONSTRAINT cus_llm_usage_token_counts_bounded,
    ADD CONSTRAINT cus_llm_usage_row_check CHECK (aos_cus_internal.usage_row_check(call_id, model, status, error_code,
        subject, latency_ms, metadata, tags, input_tokens, cache_read_tokens, cache_write_tokens, cache_write_1h_tokens,
        output_tokens, reasoning_tokens, input_audio_tokens, output_audio_tokens));

-- Key pruning (issue 19): maintain_partitions() read every idempotency key to find those past the window; a block
-- range summary of ingested_at (the order keys are written in) lets it read only the old ones.
CREATE INDEX cus_usage_keys_ingested_at_idx ON aos_cus.cus_usage_keys USING brin (ingested_at);
-- maintain_partitions() summarizes the keys written since its last run before pruning.
CREATE OR REPLACE FUNCTION aos_cus.maintain_partitions() RETURNS TABLE (table_name text, action text, partition_name text)
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    cfg record := aos_cus.usage_settings();
BEGIN
    PERFORM aos_cus.assert_platform('maintain_partitions()');
    -- A Citus worker refuses DDL on distributed tables: their partitions are made and dropped on the coordinator.
    IF aos_cus_internal.citus_node() IS DISTINCT FROM 'worker' THEN
        RETURN QUERY SELECT 'cus_llm_usage', m.action, m.partition_name
                       FROM aos_cus_internal.maintain_table('aos_cus.cus_llm_usage', cfg.partition_interval, cfg.raw_retention) m;
        RETURN QUERY SELECT 'cus_ingest_rejects', m.action, m.partition_name
                       FROM aos_cus_internal.maintain_table('aos_cus.cus_ingest_rejects', cfg.partition_interval, cfg.rejects_retention) m;
    END IF;
    -- Local tables of each node (under Citus, of the worker holding the tenant).
    DELETE FROM aos_cus.cus_usage_hourly h WHERE h.hour OPERATOR(pg_catalog.<) pg_catalog.now() - cfg.hourly_retention;
    -- A key lives while its row started, or was ingested, inside the window. The keys written since the last run are
    -- summarized first, so the BRIN index of ingested_at leaves out every block range of younger keys.
    PERFORM pg_catalog.brin_summarize_new_values('aos_cus.cus_usage_keys_ingested_at_idx'::pg_catalog.regclass);
    DELETE FROM aos_cus.cus_usage_keys k WHERE k.started_at OPERATOR(pg_catalog.<) pg_catalog.now() - cfg.idempotency_window
                                           AND k.ingested_at OPERATOR(pg_catalog.<) pg_catalog.now() - cfg.idempotency_window;
END
$$;
