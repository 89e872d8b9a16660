-- Credential vault (credentials.c): AES-256-GCM per tenant, references, keyring, rotation.

CREATE FUNCTION aos_cus.validate_credential_format(ref text) RETURNS text
    AS 'MODULE_PATHNAME', 'aos_cus_validate_credential_format'
    LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION aos_cus.validate_credential_format(text) IS
    'kind of a credential reference (encrypted, vault, env); 22023 for plaintext keys or malformed references';

CREATE FUNCTION aos_cus_internal.check_credential_ref(ref text) RETURNS boolean
    AS 'MODULE_PATHNAME', 'aos_cus_check_credential_ref'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION aos_cus_internal.check_credential_ref(text) IS
    'CHECK of cus_integrations.credential_ref: true for a reference, else 23514 without quoting the value';

-- The stored reference is never plaintext (README: Credentials): enforced in C.
ALTER TABLE aos_cus.cus_integrations
    ADD CONSTRAINT cus_integrations_credential_ref_is_reference CHECK (aos_cus_internal.check_credential_ref(credential_ref));

CREATE FUNCTION aos_cus.encrypt_credential(tenant_id uuid, integration_id uuid, plaintext text) RETURNS text
    AS 'MODULE_PATHNAME', 'aos_cus_encrypt_credential'
    LANGUAGE C VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION aos_cus.encrypt_credential(uuid, uuid, text) IS
    'seal a plaintext key for one tenant and integration: encrypted://v1/<version>/<base64url(nonce|ciphertext|tag)>';

CREATE FUNCTION aos_cus.decrypt_credential(tenant_id uuid, integration_id uuid, ref text) RETURNS text
    AS 'MODULE_PATHNAME', 'aos_cus_decrypt_credential'
    LANGUAGE C STABLE PARALLEL RESTRICTED;
COMMENT ON FUNCTION aos_cus.decrypt_credential(uuid, uuid, text) IS
    'open an encrypted:// reference of one tenant and integration (aos_cus_admin and aos_cus_worker only)';

CREATE FUNCTION aos_cus.credential_reference(tenant_id uuid, integration_id uuid, credential text,
                                             OUT credential_ref text, OUT credential_hint text) RETURNS record
    AS 'MODULE_PATHNAME', 'aos_cus_credential_reference'
    LANGUAGE C VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION aos_cus.credential_reference(uuid, uuid, text) IS
    'what to store for a credential: vault:// and env:// references the tenant may use as they are, plaintext keys encrypted (with a 4-character hint)';

CREATE FUNCTION aos_cus.resolve_credential(tenant_id uuid, integration_id uuid) RETURNS text
    AS 'MODULE_PATHNAME', 'aos_cus_resolve_credential_sql'
    LANGUAGE C STABLE SECURITY DEFINER PARALLEL RESTRICTED SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION aos_cus.resolve_credential(uuid, uuid) IS
    'plaintext credential of an integration: encrypted:// decrypted, vault:// from Supabase Vault, env:// from the server environment (vault:// and env:// only when allowed for the tenant)';

CREATE FUNCTION aos_cus.rotate_credential(tenant_id uuid, integration_id uuid, credential text) RETURNS void
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
COMMENT ON FUNCTION aos_cus.rotate_credential(uuid, uuid, text) IS
    'replace an integration''s credential (plaintext key, encrypted at once, or a vault:// / env:// reference)';

CREATE FUNCTION aos_cus.rotate_encryption_key() RETURNS bigint
    AS 'MODULE_PATHNAME', 'aos_cus_rotate_encryption_key'
    LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION aos_cus.rotate_encryption_key() IS
    're-encrypt every encrypted:// credential under aos_cus.active_key_version in batches of 1000 (NOTICE per batch); returns how many';

CREATE FUNCTION aos_cus.rotate_encryption_key_batch(batch_size integer) RETURNS bigint
    AS 'MODULE_PATHNAME', 'aos_cus_rotate_encryption_key_batch'
    LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION aos_cus.rotate_encryption_key_batch(integer) IS
    're-encrypt at most batch_size credentials under the active key version; loop with COMMIT until it returns 0';

CREATE FUNCTION aos_cus.keyring_status(OUT version bigint, OUT active boolean, OUT fingerprint text, OUT credentials bigint)
    RETURNS SETOF record
    AS 'MODULE_PATHNAME', 'aos_cus_keyring_status'
    LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION aos_cus.keyring_status() IS
    'key versions: active or not, a fingerprint that reveals nothing of the key, credentials using it (NULL fingerprint: version missing from the keyring)';

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

-- Credential sources (issue 13): a vault:// or env:// reference names a secret outside the tenant's own
-- encrypted credentials, so a tenant may use one only when the platform operator allowed it here. Tenants
-- read their own rows; only allow_credential_source() and revoke_credential_source() write.
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

-- Privileges (README: Security model, Roles): decrypting and resolving belong to aos_cus_admin and aos_cus_worker only.
REVOKE ALL ON FUNCTION aos_cus.validate_credential_format(text), aos_cus_internal.check_credential_ref(text),
    aos_cus.encrypt_credential(uuid, uuid, text), aos_cus.decrypt_credential(uuid, uuid, text),
    aos_cus.credential_reference(uuid, uuid, text), aos_cus.resolve_credential(uuid, uuid),
    aos_cus.rotate_credential(uuid, uuid, text), aos_cus.rotate_encryption_key(),
    aos_cus.rotate_encryption_key_batch(integer), aos_cus.keyring_status(),
    aos_cus.allow_credential_source(uuid, text), aos_cus.revoke_credential_source(uuid, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION aos_cus.validate_credential_format(text), aos_cus_internal.check_credential_ref(text)
    TO aos_cus_admin, aos_cus_app, aos_cus_reader, aos_cus_worker;
GRANT EXECUTE ON FUNCTION aos_cus.encrypt_credential(uuid, uuid, text), aos_cus.credential_reference(uuid, uuid, text),
    aos_cus.rotate_credential(uuid, uuid, text), aos_cus.rotate_encryption_key(),
    aos_cus.rotate_encryption_key_batch(integer), aos_cus.keyring_status() TO aos_cus_admin;
GRANT EXECUTE ON FUNCTION aos_cus.allow_credential_source(uuid, text), aos_cus.revoke_credential_source(uuid, text)
    TO aos_cus_operator;
GRANT EXECUTE ON FUNCTION aos_cus.decrypt_credential(uuid, uuid, text), aos_cus.resolve_credential(uuid, uuid)
    TO aos_cus_admin, aos_cus_worker;
