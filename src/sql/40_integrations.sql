-- Integration management (README: Integrations, Enforcement, Security model): lifecycle, limits configuration, tenant-safe API.
-- Every function runs with the caller's rights, so row-level security applies; only the
-- credential encryption (credential_reference, C) touches key material.

-- What reads return: the credential's kind and hint, never the reference.
CREATE TYPE aos_cus.integration AS (
    tenant_id          uuid,
    id                 uuid,
    name               text,
    provider           text,
    status             text,
    credential_kind    text,
    credential_hint    text,
    base_url           text,
    config             jsonb,
    limits             jsonb,
    health_state       text,
    health_checked_at  timestamptz,
    health_latency_ms  integer,
    health_error       text,
    created_at         timestamptz,
    updated_at         timestamptz,
    deleted_at         timestamptz
);
COMMENT ON TYPE aos_cus.integration IS 'an integration as the API returns it: credential kind and hint only';

-- STABLE like jsonb_build_object, so that it is inlined into the queries that call it.
CREATE FUNCTION aos_cus_internal.integration_of(i aos_cus.cus_integrations) RETURNS aos_cus.integration
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
COMMENT ON FUNCTION aos_cus_internal.integration_of(aos_cus.cus_integrations) IS
    'the API view of a cus_integrations row (credential kind and hint, limits as JSON)';

CREATE FUNCTION aos_cus_internal.is_iana_timezone(name text) RETURNS boolean
    AS 'MODULE_PATHNAME', 'aos_cus_is_iana_timezone'
    LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION aos_cus_internal.is_iana_timezone(text) IS 'true when name is exactly a zone of pg_timezone_names (cached per backend)';

-- The lifecycle, in one place: created -> enabled <-> disabled, any non-deleted state -> deleted
-- (terminal). Any assignment of status goes through here, API call or direct UPDATE alike.
CREATE FUNCTION aos_cus_internal.integration_lifecycle() RETURNS trigger
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
COMMENT ON FUNCTION aos_cus_internal.integration_lifecycle() IS 'trigger: the integration state machine; deleting wipes the credential';
CREATE TRIGGER cus_integrations_lifecycle BEFORE UPDATE OF status ON aos_cus.cus_integrations
    FOR EACH ROW EXECUTE FUNCTION aos_cus_internal.integration_lifecycle();

-- The API functions below catch what they or their helpers raise and raise it again through this, without the
-- helpers' call stack: a user's error has its SQLSTATE, message, detail and hint and no CONTEXT lines.
CREATE FUNCTION aos_cus_internal.raise_error(sqlstate text, message text, detail text, hint text) RETURNS void
    AS 'MODULE_PATHNAME', 'aos_cus_raise_error'
    LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION aos_cus_internal.raise_error(text, text, text, text) IS
    'raise an error with no CONTEXT lines (empty detail or hint: none); how the integration API re-raises its helpers'' errors';

-- Limits validation (README: Enforcement), in one place. limits is a patch: present keys are set, JSON null
-- restores the default (no limit, 'month', 80, 'enforce', 'UTC'), absent keys are kept. Every key
-- is checked before anything is written, so a bad limit never half-applies.
CREATE FUNCTION aos_cus_internal.limit_integer(limits jsonb, key text, low bigint, high bigint) RETURNS bigint
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
COMMENT ON FUNCTION aos_cus_internal.limit_integer(jsonb, text, bigint, bigint) IS 'limits validation helper: an integer key within [low, high], NULL when absent or null';

CREATE FUNCTION aos_cus_internal.limit_choice(limits jsonb, key text, choices text[]) RETURNS text
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
COMMENT ON FUNCTION aos_cus_internal.limit_choice(jsonb, text, text[]) IS 'limits validation helper: a string key from a fixed list, NULL when absent or null';

CREATE FUNCTION aos_cus_internal.apply_limits(i aos_cus.cus_integrations, limits jsonb) RETURNS aos_cus.cus_integrations
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
COMMENT ON FUNCTION aos_cus_internal.apply_limits(aos_cus.cus_integrations, jsonb) IS
    'validate a limits patch (the keys of set_limits) and return the row with it applied; raises before anything is written';

-- Checks of the other writable fields, shared by create and update.
CREATE FUNCTION aos_cus_internal.check_integration_name(name text) RETURNS text
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
COMMENT ON FUNCTION aos_cus_internal.check_integration_name(text) IS 'validation helper: an integration name';

CREATE FUNCTION aos_cus_internal.check_integration_fields(i aos_cus.cus_integrations) RETURNS aos_cus.cus_integrations
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
COMMENT ON FUNCTION aos_cus_internal.check_integration_fields(aos_cus.cus_integrations) IS 'validation helper: name, base_url and config of an integration';

-- A patch's text field: absent keeps the old value, JSON null clears it, anything but a string is refused.
CREATE FUNCTION aos_cus_internal.patch_text(patch jsonb, key text, old text) RETURNS text
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
COMMENT ON FUNCTION aos_cus_internal.patch_text(jsonb, text, text) IS 'patch helper: a text field of a JSON patch';

-- 22023 listing the keys of a JSON object that are not among the allowed ones.
CREATE FUNCTION aos_cus_internal.check_keys(obj jsonb, argname text, allowed text[]) RETURNS void
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
COMMENT ON FUNCTION aos_cus_internal.check_keys(jsonb, text, text[]) IS 'validation helper: refuse unknown keys of a JSON object argument';

-- The caller's row of an integration, locked for update; 42704 when it does not exist (or RLS hides it).
CREATE FUNCTION aos_cus_internal.integration_for_update(tenant_id uuid, integration_id uuid) RETURNS aos_cus.cus_integrations
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
COMMENT ON FUNCTION aos_cus_internal.integration_for_update(uuid, uuid) IS 'API helper: lock and return a tenant''s integration, 42704 when unknown';

CREATE FUNCTION aos_cus.create_integration(tenant_id uuid, name text, provider text, credential text,
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
COMMENT ON FUNCTION aos_cus.create_integration(uuid, text, text, text, jsonb) IS
    'create an integration (status created, or enabled with options.enabled); credential: plaintext key (encrypted at once) or vault:// / env:// reference; options: id, base_url, config, limits, enabled';

CREATE FUNCTION aos_cus.get_integration(tenant_id uuid, integration_id uuid) RETURNS aos_cus.integration
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
COMMENT ON FUNCTION aos_cus.get_integration(uuid, uuid) IS 'one integration (credential kind and hint only); 42704 when unknown';

CREATE FUNCTION aos_cus.list_integrations(tenant_id uuid, status text DEFAULT NULL, after_id uuid DEFAULT NULL,
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
COMMENT ON FUNCTION aos_cus.list_integrations(uuid, text, uuid, integer) IS
    'a page of integrations ordered by id after after_id (keyset); status NULL lists every status but deleted; page_size 1..1000';

CREATE FUNCTION aos_cus.update_integration(tenant_id uuid, integration_id uuid, patch jsonb) RETURNS aos_cus.integration
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
COMMENT ON FUNCTION aos_cus.update_integration(uuid, uuid, jsonb) IS
    'patch name, base_url, config and limits (JSON null clears base_url or restores a limit''s default); unknown keys refused';

CREATE FUNCTION aos_cus.set_limits(tenant_id uuid, integration_id uuid, limits jsonb) RETURNS aos_cus.integration
    LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    SELECT aos_cus.update_integration(tenant_id, integration_id, pg_catalog.jsonb_build_object('limits', limits))
$$;
COMMENT ON FUNCTION aos_cus.set_limits(uuid, uuid, jsonb) IS 'patch an integration''s limits (budget_microcents, budget_period, token_limit, token_period, rpm, tpm, rph, rpd, warn_at_pct, mode, timezone; JSON null restores a default)';

-- Lifecycle moves: the trigger decides what is legal.
CREATE FUNCTION aos_cus_internal.set_integration_status(tenant_id uuid, integration_id uuid, new_status text) RETURNS aos_cus.integration
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
COMMENT ON FUNCTION aos_cus_internal.set_integration_status(uuid, uuid, text) IS 'API helper: move an integration to a status (the lifecycle trigger judges)';

CREATE FUNCTION aos_cus.enable_integration(tenant_id uuid, integration_id uuid) RETURNS aos_cus.integration
    LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$ SELECT aos_cus_internal.set_integration_status(tenant_id, integration_id, 'enabled') $$;
COMMENT ON FUNCTION aos_cus.enable_integration(uuid, uuid) IS 'created or disabled -> enabled (55000 otherwise; enabling an enabled integration is a no-op)';

CREATE FUNCTION aos_cus.disable_integration(tenant_id uuid, integration_id uuid) RETURNS aos_cus.integration
    LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$ SELECT aos_cus_internal.set_integration_status(tenant_id, integration_id, 'disabled') $$;
COMMENT ON FUNCTION aos_cus.disable_integration(uuid, uuid) IS 'enabled -> disabled (55000 otherwise; disabling a disabled integration is a no-op)';

CREATE FUNCTION aos_cus.delete_integration(tenant_id uuid, integration_id uuid) RETURNS aos_cus.integration
    LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$ SELECT aos_cus_internal.set_integration_status(tenant_id, integration_id, 'deleted') $$;
COMMENT ON FUNCTION aos_cus.delete_integration(uuid, uuid) IS 'soft delete: status deleted, deleted_at set, credential wiped; the name can be reused';

-- Privileges (README: Security model, Roles): management is aos_cus_admin's; reads belong to every role of the extension.
REVOKE ALL ON FUNCTION aos_cus_internal.raise_error(text, text, text, text),
    aos_cus_internal.integration_of(aos_cus.cus_integrations), aos_cus_internal.is_iana_timezone(text),
    aos_cus_internal.integration_lifecycle(), aos_cus_internal.limit_integer(jsonb, text, bigint, bigint),
    aos_cus_internal.limit_choice(jsonb, text, text[]), aos_cus_internal.apply_limits(aos_cus.cus_integrations, jsonb),
    aos_cus_internal.check_integration_name(text), aos_cus_internal.check_integration_fields(aos_cus.cus_integrations),
    aos_cus_internal.patch_text(jsonb, text, text), aos_cus_internal.check_keys(jsonb, text, text[]),
    aos_cus_internal.integration_for_update(uuid, uuid), aos_cus.create_integration(uuid, text, text, text, jsonb),
    aos_cus.get_integration(uuid, uuid), aos_cus.list_integrations(uuid, text, uuid, integer),
    aos_cus.update_integration(uuid, uuid, jsonb), aos_cus.set_limits(uuid, uuid, jsonb),
    aos_cus_internal.set_integration_status(uuid, uuid, text), aos_cus.enable_integration(uuid, uuid),
    aos_cus.disable_integration(uuid, uuid), aos_cus.delete_integration(uuid, uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION aos_cus_internal.raise_error(text, text, text, text),
    aos_cus_internal.integration_of(aos_cus.cus_integrations), aos_cus_internal.is_iana_timezone(text),
    aos_cus.get_integration(uuid, uuid), aos_cus.list_integrations(uuid, text, uuid, integer)
    TO aos_cus_admin, aos_cus_app, aos_cus_reader, aos_cus_worker;
GRANT EXECUTE ON FUNCTION aos_cus_internal.limit_integer(jsonb, text, bigint, bigint), aos_cus_internal.limit_choice(jsonb, text, text[]),
    aos_cus_internal.apply_limits(aos_cus.cus_integrations, jsonb), aos_cus_internal.check_integration_name(text),
    aos_cus_internal.check_integration_fields(aos_cus.cus_integrations), aos_cus_internal.patch_text(jsonb, text, text),
    aos_cus_internal.check_keys(jsonb, text, text[]), aos_cus_internal.integration_for_update(uuid, uuid),
    aos_cus.create_integration(uuid, text, text, text, jsonb), aos_cus.update_integration(uuid, uuid, jsonb),
    aos_cus.set_limits(uuid, uuid, jsonb), aos_cus_internal.set_integration_status(uuid, uuid, text),
    aos_cus.enable_integration(uuid, uuid), aos_cus.disable_integration(uuid, uuid),
    aos_cus.delete_integration(uuid, uuid) TO aos_cus_admin;
