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
    RETURN pg_catalog.int8(LEAST(n, 9223372036854775807::numeric));
COMMENT ON FUNCTION aos_cus.saturate(numeric) IS 'internal: n as bigint, or 9223372036854775807 when larger';
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
CREATE POLICY admin_read ON aos_cus.cus_credential_sources FOR SELECT TO aos_cus_admin
    USING (aos_cus.current_tenant() IS NULL);
SELECT pg_catalog.pg_extension_config_dump('aos_cus.cus_credential_sources', '');
REVOKE ALL ON aos_cus.cus_credential_sources FROM PUBLIC;
GRANT SELECT ON aos_cus.cus_credential_sources TO aos_cus_admin, aos_cus_app, aos_cus_worker;

CREATE FUNCTION aos_cus.allow_credential_source(tenant_id uuid, source text) RETURNS boolean
    AS 'MODULE_PATHNAME', 'aos_cus_allow_credential_source'
    LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION aos_cus.allow_credential_source(uuid, text) IS
    'let a tenant use a vault:// or env:// credential reference (admin, no tenant set); true when newly allowed';

CREATE FUNCTION aos_cus.revoke_credential_source(tenant_id uuid, source text) RETURNS boolean
    AS 'MODULE_PATHNAME', 'aos_cus_revoke_credential_source'
    LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION aos_cus.revoke_credential_source(uuid, text) IS
    'withdraw a tenant''s vault:// or env:// source (admin, no tenant set); integrations using it fail to resolve with 42501';

REVOKE ALL ON FUNCTION aos_cus.allow_credential_source(uuid, text), aos_cus.revoke_credential_source(uuid, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION aos_cus.allow_credential_source(uuid, text), aos_cus.revoke_credential_source(uuid, text) TO aos_cus_admin;
COMMENT ON FUNCTION aos_cus.credential_reference(uuid, uuid, text) IS
    'what to store for a credential: vault:// and env:// references the tenant may use as they are, plaintext keys encrypted (with a 4-character hint)';
COMMENT ON FUNCTION aos_cus.resolve_credential(uuid, uuid) IS
    'plaintext credential of an integration: encrypted:// decrypted, vault:// from Supabase Vault, env:// from the server environment (vault:// and env:// only when allowed for the tenant)';
