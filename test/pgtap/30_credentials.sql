-- Credential vault: round trip, tamper, transplant, references, CHECK, resolve, rotation, privileges, bad input.
BEGIN;
SELECT plan(125);

CREATE ROLE tap_c_admin IN ROLE aos_cus_admin;
CREATE ROLE tap_c_operator IN ROLE aos_cus_operator;
CREATE ROLE tap_c_app IN ROLE aos_cus_app;
CREATE ROLE tap_c_reader IN ROLE aos_cus_reader;
CREATE ROLE tap_c_worker IN ROLE aos_cus_worker;

-- base64url helpers to open up a reference's envelope.
CREATE FUNCTION pg_temp.b64url_decode(t text) RETURNS bytea LANGUAGE sql IMMUTABLE AS $$
    SELECT decode(rpad(translate(t, '-_', '+/'), ((length(t) + 3) / 4) * 4, '='), 'base64') $$;
CREATE FUNCTION pg_temp.b64url_encode(b bytea) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT rtrim(translate(replace(encode(b, 'base64'), E'\n', ''), '+/', '-_'), '=') $$;
CREATE FUNCTION pg_temp.envelope(ref text) RETURNS bytea LANGUAGE sql IMMUTABLE AS $$
    SELECT pg_temp.b64url_decode(split_part(ref, '/', 5)) $$;
CREATE FUNCTION pg_temp.with_envelope(ref text, env bytea) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT 'encrypted://v1/' || split_part(ref, '/', 4) || '/' || pg_temp.b64url_encode(env) $$;

-- 1. Round trip for 100 tenants x 10 integrations; every ciphertext differs, none contains the plaintext.
CREATE TEMP TABLE sealed AS
SELECT t, i, tenant, integration, secret, aos_cus.encrypt_credential(tenant, integration, secret) AS ref
  FROM (SELECT t, i,
               ('00000000-0000-4000-8000-' || lpad(t::text, 12, '0'))::uuid AS tenant,
               ('11111111-0000-4000-8000-' || lpad((t * 100 + i)::text, 12, '0'))::uuid AS integration,
               'sk-proj-' || md5(t::text || '/' || i::text) AS secret
          FROM generate_series(1, 100) t, generate_series(1, 10) i) s;
GRANT SELECT ON sealed TO PUBLIC;
SELECT is((SELECT count(*)::int FROM sealed WHERE aos_cus.decrypt_credential(tenant, integration, ref) = secret),
          1000, '1000 credentials of 100 tenants decrypt to their plaintext');
SELECT is((SELECT count(DISTINCT ref)::int FROM sealed), 1000, 'every ciphertext is distinct');
SELECT is((SELECT count(*)::int FROM sealed WHERE strpos(ref, secret) > 0 OR strpos(ref, substr(secret, 9, 12)) > 0),
          0, 'no reference contains its plaintext');
SELECT ok((SELECT bool_and(ref ~ '^encrypted://v1/1/[A-Za-z0-9_-]+$') FROM sealed), 'references have the encrypted://v1/<version>/<base64url> form');
SELECT is((SELECT length(pg_temp.envelope(ref)) FROM sealed WHERE t = 1 AND i = 1), 12 + 40 + 16,
          'envelope is 12 bytes nonce, the ciphertext (as long as the plaintext) and a 16 byte tag');
SELECT isnt(aos_cus.encrypt_credential('00000000-0000-4000-8000-000000000001', '11111111-0000-4000-8000-000000000001', 'sk-same-plaintext-000000000'),
            aos_cus.encrypt_credential('00000000-0000-4000-8000-000000000001', '11111111-0000-4000-8000-000000000001', 'sk-same-plaintext-000000000'),
            'the same plaintext twice gives different ciphertexts');
SELECT isnt((SELECT substr(pg_temp.envelope(a.ref), 1, 12) FROM sealed a WHERE t = 1 AND i = 1),
            (SELECT substr(pg_temp.envelope(a.ref), 1, 12) FROM sealed a WHERE t = 1 AND i = 2), 'nonces differ');
SELECT is(aos_cus.decrypt_credential('00000000-0000-4000-8000-000000000001', '11111111-0000-4000-8000-000000000001',
          aos_cus.encrypt_credential('00000000-0000-4000-8000-000000000001', '11111111-0000-4000-8000-000000000001', 'clé-ünïcødé-✓-key')),
          'clé-ünïcødé-✓-key', 'multibyte UTF-8 plaintext round-trips');
SELECT is(length(aos_cus.decrypt_credential('00000000-0000-4000-8000-000000000001', '11111111-0000-4000-8000-000000000001',
          aos_cus.encrypt_credential('00000000-0000-4000-8000-000000000001', '11111111-0000-4000-8000-000000000001', repeat('k', 2048)))),
          2048, 'a 2048-byte credential (the maximum) round-trips');

-- 2. Tamper: flipping any byte of nonce, ciphertext or tag fails; so do truncation and a changed version.
CREATE FUNCTION pg_temp.tamper_failures(r sealed) RETURNS int LANGUAGE plpgsql AS $$
DECLARE
    env bytea := pg_temp.envelope(r.ref);
    failed int := 0;
BEGIN
    FOR pos IN 0 .. length(env) - 1 LOOP
        BEGIN
            PERFORM aos_cus.decrypt_credential(r.tenant, r.integration,
                pg_temp.with_envelope(r.ref, set_byte(env, pos, get_byte(env, pos) # 1)));
        EXCEPTION WHEN invalid_parameter_value THEN
            IF SQLERRM LIKE '%does not authenticate%' AND strpos(SQLERRM, r.secret) = 0 THEN
                failed := failed + 1;
            END IF;
        END;
    END LOOP;
    RETURN failed;
END $$;
SELECT is((SELECT pg_temp.tamper_failures(s) FROM sealed s WHERE t = 7 AND i = 3), 68,
          'each of the 68 envelope bytes (12 nonce, 40 ciphertext, 16 tag), flipped, fails authentication');
SELECT throws_ok(format('SELECT aos_cus.decrypt_credential(%L, %L, %L)', tenant, integration, left(ref, -4)),
                 '22023', NULL, 'a truncated envelope fails') FROM sealed WHERE t = 7 AND i = 3;
SELECT throws_ok(format('SELECT aos_cus.decrypt_credential(%L, %L, %L)', tenant, integration,
                        pg_temp.with_envelope(ref, substr(pg_temp.envelope(ref), 1, 28))),
                 '22023', NULL, 'an envelope cut to 28 bytes fails') FROM sealed WHERE t = 7 AND i = 3;
SELECT throws_ok(format('SELECT aos_cus.decrypt_credential(%L, %L, %L)', tenant, integration, replace(ref, 'v1/1/', 'v1/2/')),
                 '55000', NULL, 'a reference naming a version outside the keyring fails') FROM sealed WHERE t = 7 AND i = 3;
SELECT throws_ok(format('SELECT aos_cus.decrypt_credential(%L, %L, %L)', tenant, integration, ref || 'AAAA'),
                 '22023', NULL, 'appended bytes fail') FROM sealed WHERE t = 7 AND i = 3;

-- 3. Transplant: another tenant or another integration fails authentication.
SELECT throws_ok(format('SELECT aos_cus.decrypt_credential(%L, %L, %L)', '00000000-0000-4000-8000-000000000008', integration, ref),
                 '22023', format('ref of integration %s cannot be decrypted: it does not authenticate for this tenant and integration (tampered, truncated or moved)', integration),
                 'a ciphertext moved to another tenant fails') FROM sealed WHERE t = 7 AND i = 3;
SELECT throws_ok(format('SELECT aos_cus.decrypt_credential(%L, %L, %L)', tenant, '11111111-0000-4000-8000-000000000704', ref),
                 '22023', NULL, 'a ciphertext moved to another integration of the tenant fails') FROM sealed WHERE t = 7 AND i = 3;
SELECT is((SELECT count(*)::int FROM sealed a JOIN sealed b ON a.t = b.t AND a.i = b.i % 10 + 1
            WHERE a.ref <> b.ref), 1000, 'setup: every credential has a neighbor to swap with');
CREATE FUNCTION pg_temp.swapped_failures() RETURNS int LANGUAGE plpgsql AS $$
DECLARE r record; failed int := 0;
BEGIN
    FOR r IN SELECT a.tenant, a.integration, b.ref FROM sealed a JOIN sealed b ON a.t = b.t AND b.i = a.i % 10 + 1 WHERE a.t <= 10 LOOP
        BEGIN
            PERFORM aos_cus.decrypt_credential(r.tenant, r.integration, r.ref);
        EXCEPTION WHEN invalid_parameter_value THEN failed := failed + 1;
        END;
    END LOOP;
    RETURN failed;
END $$;
SELECT is(pg_temp.swapped_failures(), 100, 'all 100 references swapped between integrations fail');

-- 4. validate_credential_format and the CHECK on credential_ref.
SELECT is(aos_cus.validate_credential_format(ref), 'encrypted', 'encrypted kind') FROM sealed WHERE t = 1 AND i = 1;
SELECT is(aos_cus.validate_credential_format('vault://openai-prod'), 'vault', 'vault kind');
SELECT is(aos_cus.validate_credential_format('env://AOS_CUS_OPENAI_KEY'), 'env', 'env kind');
SELECT throws_ok($$SELECT aos_cus.validate_credential_format('sk-abcdefghijklmnopqrstuvwxyz0123')$$, '22023',
                 'ref looks like a plaintext OpenAI API key, not a credential reference', 'sk- keys refused');
SELECT throws_ok($$SELECT aos_cus.validate_credential_format('sk-proj-abcdefghijklmnopqrstuvwxyz0123')$$, '22023', NULL, 'sk-proj- keys refused');
SELECT throws_ok($$SELECT aos_cus.validate_credential_format('sk-ant-api03-abcdefghijklmnopqrstuvwxyz')$$, '22023',
                 'ref looks like a plaintext Anthropic API key, not a credential reference', 'sk-ant- keys refused');
SELECT throws_ok($$SELECT aos_cus.validate_credential_format('AIzaSyD-abcdefghijklmnopqrstuvwxyz01234')$$, '22023',
                 'ref looks like a plaintext Google API key, not a credential reference', 'AIza keys refused');
SELECT throws_ok($$SELECT aos_cus.validate_credential_format('0123456789abcdef0123456789ABCDEF')$$, '22023',
                 'ref looks like a plaintext Azure API key, not a credential reference', 'Azure 32-hex keys refused');
SELECT throws_ok($$SELECT aos_cus.validate_credential_format('hunter2')$$, '22023',
                 'ref is not a valid credential reference: it is not an encrypted://, vault:// or env:// reference', 'other text refused');
SELECT throws_ok($$SELECT aos_cus.validate_credential_format('')$$, '22023', NULL, 'empty refused');
SELECT throws_ok($$SELECT aos_cus.validate_credential_format(NULL)$$, '22004', 'ref must not be null', 'NULL refused');
SELECT throws_ok($$SELECT aos_cus.validate_credential_format('encrypted://v1/1/' || repeat('A', 5000))$$, '22023',
                 'ref is not a valid credential reference: it is longer than 4096 bytes', 'huge refused');
SELECT throws_ok($$SELECT aos_cus.validate_credential_format('encrypted://v1/1/' || repeat('A', 38) || '!')$$, '22023',
                 'ref is not a valid credential reference: the payload is not canonical unpadded base64url', 'base64 garbage refused');
SELECT throws_ok($$SELECT aos_cus.validate_credential_format('encrypted://v1/1/AAAA')$$, '22023', NULL, 'too short an envelope refused');
SELECT throws_ok($$SELECT aos_cus.validate_credential_format('encrypted://v9/1/' || repeat('A', 40))$$, '22023',
                 'ref is not a valid credential reference: only envelope format v1 is known', 'unknown envelope format refused');
SELECT throws_ok($$SELECT aos_cus.validate_credential_format('encrypted://v1/x/' || repeat('A', 40))$$, '22023', NULL, 'non-numeric version refused');
SELECT throws_ok($$SELECT aos_cus.validate_credential_format('vault://has space')$$, '22023', NULL, 'bad vault name refused');
SELECT throws_ok($$SELECT aos_cus.validate_credential_format('env://1BAD')$$, '22023', NULL, 'bad env name refused');
SELECT throws_ok($$SELECT aos_cus.validate_credential_format('VAULT://x')$$, '22023', NULL, 'wrong-case scheme refused');
SELECT throws_ok($$SELECT aos_cus.validate_credential_format(E'vault://x\u00e9')$$, '22023', NULL, 'non-ASCII name refused');

INSERT INTO aos_cus.cus_integrations (tenant_id, id, name, provider)
VALUES ('00000000-0000-4000-8000-000000000001', '11111111-0000-4000-8000-000000000101', 'c-openai', 'openai'),
       ('00000000-0000-4000-8000-000000000001', '11111111-0000-4000-8000-000000000102', 'c-vault', 'openai'),
       ('00000000-0000-4000-8000-000000000001', '11111111-0000-4000-8000-000000000103', 'c-env', 'openai'),
       ('00000000-0000-4000-8000-000000000001', '11111111-0000-4000-8000-000000000104', 'c-none', 'openai');
SELECT throws_ok($$UPDATE aos_cus.cus_integrations SET credential_ref = 'sk-proj-abcdefghijklmnopqrstuvwxyz012345' WHERE name = 'c-openai'$$,
                 '23514', 'credential_ref looks like a plaintext OpenAI API key, not a credential reference',
                 'the table refuses a plaintext credential_ref (message without the value)');
SELECT throws_ok($$UPDATE aos_cus.cus_integrations SET credential_ref = 'https://x' WHERE name = 'c-openai'$$, '23514', NULL,
                 'the table refuses a non-reference');
SELECT lives_ok(format($$UPDATE aos_cus.cus_integrations SET credential_ref = %L WHERE name = 'c-openai'$$, ref),
                'the table accepts an encrypted reference') FROM sealed WHERE t = 1 AND i = 1;
SELECT is(con.conname::text, 'cus_integrations_credential_ref_is_reference', 'the CHECK is a named table constraint')
  FROM pg_constraint con WHERE con.conrelid = 'aos_cus.cus_integrations'::regclass AND pg_get_constraintdef(con.oid) LIKE '%check_credential_ref%';

-- 5. rotate_credential and resolve_credential.
SELECT lives_ok($$SELECT aos_cus.rotate_credential('00000000-0000-4000-8000-000000000001', '11111111-0000-4000-8000-000000000101', 'sk-proj-rotated-0123456789abcdefWXYZ')$$,
                'rotate_credential stores a plaintext key');
SELECT is(credential_hint, 'WXYZ', 'the hint is the last four characters') FROM aos_cus.cus_integrations WHERE name = 'c-openai';
SELECT ok(credential_ref LIKE 'encrypted://v1/1/%' AND strpos(credential_ref, 'rotated') = 0, 'the stored reference is encrypted')
  FROM aos_cus.cus_integrations WHERE name = 'c-openai';
SELECT is(aos_cus.resolve_credential('00000000-0000-4000-8000-000000000001', '11111111-0000-4000-8000-000000000101'),
          'sk-proj-rotated-0123456789abcdefWXYZ', 'resolve_credential decrypts encrypted://');
SELECT lives_ok($$SELECT aos_cus.rotate_credential('00000000-0000-4000-8000-000000000001', '11111111-0000-4000-8000-000000000104', 'short-key')$$,
                'a short key is stored');
SELECT is(credential_hint, NULL, 'a key shorter than 16 characters gets no hint') FROM aos_cus.cus_integrations WHERE name = 'c-none';
SELECT throws_ok($$SELECT aos_cus.rotate_credential('00000000-0000-4000-8000-000000000001', '11111111-0000-4000-8000-000000000102', 'vault://tap-openai')$$,
                 '42501', 'tenant 00000000-0000-4000-8000-000000000001 may not use the credential source "vault://tap-openai"',
                 'a vault:// source the operator did not allow the tenant is refused at write time');
SELECT is(aos_cus.allow_credential_source('00000000-0000-4000-8000-000000000001', 'vault://tap-openai'), true, 'allow_credential_source: newly allowed');
SELECT is(aos_cus.allow_credential_source('00000000-0000-4000-8000-000000000001', 'vault://tap-openai'), false, 'allow_credential_source: already allowed');
SELECT lives_ok($$SELECT aos_cus.rotate_credential('00000000-0000-4000-8000-000000000001', '11111111-0000-4000-8000-000000000102', 'vault://tap-openai')$$,
                'rotate_credential stores a vault:// reference');
SELECT is(credential_ref || '/' || coalesce(credential_hint, '-'), 'vault://tap-openai/-', 'a reference is stored as is, without hint')
  FROM aos_cus.cus_integrations WHERE name = 'c-vault';
SELECT throws_ok($$SELECT aos_cus.resolve_credential('00000000-0000-4000-8000-000000000001', '11111111-0000-4000-8000-000000000102')$$,
                 '0A000', 'integration 11111111-0000-4000-8000-000000000102 uses a vault:// credential, but Supabase Vault is not installed',
                 'vault:// without Supabase Vault is a clear error');
CREATE SCHEMA vault;
CREATE TABLE vault.decrypted_secrets (name text, decrypted_secret text);
INSERT INTO vault.decrypted_secrets VALUES ('tap-openai', 'sk-from-the-vault-0000');
SELECT is(aos_cus.resolve_credential('00000000-0000-4000-8000-000000000001', '11111111-0000-4000-8000-000000000102'),
          'sk-from-the-vault-0000', 'vault:// reads vault.decrypted_secrets when present');
DELETE FROM vault.decrypted_secrets;
SELECT throws_ok($$SELECT aos_cus.resolve_credential('00000000-0000-4000-8000-000000000001', '11111111-0000-4000-8000-000000000102')$$,
                 '42704', NULL, 'a missing vault secret is a clear error');
INSERT INTO vault.decrypted_secrets VALUES ('tap-openai', 'sk-from-the-vault-0000'), ('tap-other-tenant', 'sk-of-another-tenant-0000');
INSERT INTO aos_cus.cus_integrations (tenant_id, id, name, provider, credential_ref)
VALUES ('00000000-0000-4000-8000-000000000001', '11111111-0000-4000-8000-000000000105', 'c-planted', 'openai', 'vault://tap-other-tenant');
SELECT throws_ok($$SELECT aos_cus.resolve_credential('00000000-0000-4000-8000-000000000001', '11111111-0000-4000-8000-000000000105')$$,
                 '42501', 'tenant 00000000-0000-4000-8000-000000000001 may not use the credential source "vault://tap-other-tenant"',
                 'a vault:// source written directly into the table is refused at resolve time');
SELECT is(aos_cus.revoke_credential_source('00000000-0000-4000-8000-000000000001', 'vault://tap-openai'), true, 'revoke_credential_source: revoked');
SELECT is(aos_cus.revoke_credential_source('00000000-0000-4000-8000-000000000001', 'vault://tap-openai'), false, 'revoke_credential_source: not allowed any more');
SELECT throws_ok($$SELECT aos_cus.resolve_credential('00000000-0000-4000-8000-000000000001', '11111111-0000-4000-8000-000000000102')$$,
                 '42501', NULL, 'a stored vault:// reference whose allowance was revoked is refused at resolve time');
DROP SCHEMA vault CASCADE;
SELECT throws_ok($$SELECT aos_cus.rotate_credential('00000000-0000-4000-8000-000000000001', '11111111-0000-4000-8000-000000000103', 'env://AOS_CUS_TAP_UNSET_VARIABLE')$$,
                 '42501', NULL, 'an env:// source the operator did not allow the tenant is refused at write time, even under the prefix');
SELECT ok(aos_cus.allow_credential_source('00000000-0000-4000-8000-000000000001', 'env://HOME')
          AND aos_cus.allow_credential_source('00000000-0000-4000-8000-000000000001', 'env://AOS_CUS_TAP_UNSET_VARIABLE'),
          'the operator allows the tenant two env:// sources');
SELECT lives_ok($$SELECT aos_cus.rotate_credential('00000000-0000-4000-8000-000000000001', '11111111-0000-4000-8000-000000000103', 'env://HOME')$$,
                'rotate_credential stores an env:// reference');
SELECT throws_ok($$SELECT aos_cus.resolve_credential('00000000-0000-4000-8000-000000000001', '11111111-0000-4000-8000-000000000103')$$,
                 '42501', NULL, 'env:// outside aos_cus.env_credential_prefix is refused');
SELECT lives_ok($$SELECT aos_cus.rotate_credential('00000000-0000-4000-8000-000000000001', '11111111-0000-4000-8000-000000000103', 'env://AOS_CUS_TAP_UNSET_VARIABLE')$$,
                'an env:// reference under the prefix is stored');
SELECT throws_ok($$SELECT aos_cus.resolve_credential('00000000-0000-4000-8000-000000000001', '11111111-0000-4000-8000-000000000103')$$,
                 '42704', NULL, 'an unset variable is a clear error');
UPDATE aos_cus.cus_integrations SET credential_ref = NULL WHERE name = 'c-env';
SELECT throws_ok($$SELECT aos_cus.resolve_credential('00000000-0000-4000-8000-000000000001', '11111111-0000-4000-8000-000000000103')$$,
                 '55000', 'integration 11111111-0000-4000-8000-000000000103 has no credential', 'no credential is a clear error');
SELECT throws_ok($$SELECT aos_cus.resolve_credential('00000000-0000-4000-8000-000000000001', '11111111-0000-4000-8000-0000000009ff')$$,
                 '42704', NULL, 'an unknown integration is 42704');
SELECT throws_ok($$SELECT aos_cus.resolve_credential('00000000-0000-4000-8000-000000000002', '11111111-0000-4000-8000-000000000101')$$,
                 '42704', NULL, 'another tenant''s integration is not found');
SELECT throws_ok($$SELECT aos_cus.resolve_credential(NULL, '11111111-0000-4000-8000-000000000101')$$, '22004', NULL, 'NULL tenant refused');
SELECT throws_ok($$SELECT aos_cus.resolve_credential('00000000-0000-4000-8000-000000000001', NULL)$$, '22004', NULL, 'NULL integration refused');
SELECT throws_ok($$SELECT aos_cus.rotate_credential('00000000-0000-4000-8000-000000000001', '11111111-0000-4000-8000-0000000009ff', 'sk-abc')$$,
                 '42704', NULL, 'rotate_credential of an unknown integration is 42704');
SELECT throws_ok($$SELECT aos_cus.rotate_credential('00000000-0000-4000-8000-000000000001', '11111111-0000-4000-8000-000000000101', 'encrypted://v1/1/' || repeat('A', 40))$$,
                 '22023', 'credential is already a credential reference, not a plaintext key', 'an encrypted:// reference is not accepted as a credential');
SELECT throws_ok($$SELECT aos_cus.rotate_credential('00000000-0000-4000-8000-000000000001', '11111111-0000-4000-8000-000000000101', 'vault://bad name')$$,
                 '22023', NULL, 'a malformed vault reference is refused');
SELECT throws_ok($$SELECT aos_cus.rotate_credential('00000000-0000-4000-8000-000000000001', '11111111-0000-4000-8000-000000000101', ' sk-padded ')$$,
                 '22023', 'credential has leading or trailing white space', 'a padded key is refused');
SELECT throws_ok($$SELECT aos_cus.rotate_credential('00000000-0000-4000-8000-000000000001', '11111111-0000-4000-8000-000000000101', '')$$,
                 '22023', 'credential must not be empty', 'an empty key is refused');
SELECT throws_ok($$SELECT aos_cus.rotate_credential('00000000-0000-4000-8000-000000000001', '11111111-0000-4000-8000-000000000101', repeat('x', 2049))$$,
                 '22023', 'credential is longer than 2048 bytes', 'a huge key is refused');
SELECT throws_ok($$SELECT aos_cus.rotate_credential('00000000-0000-4000-8000-000000000001', '11111111-0000-4000-8000-000000000101', NULL)$$,
                 '22004', 'credential must not be null', 'a NULL key is refused');

-- 6. encrypt/decrypt bad input.
SELECT throws_ok($$SELECT aos_cus.encrypt_credential(NULL, gen_random_uuid(), 'k')$$, '22004', 'tenant_id must not be null', 'encrypt: NULL tenant');
SELECT throws_ok($$SELECT aos_cus.encrypt_credential(gen_random_uuid(), NULL, 'k')$$, '22004', 'integration_id must not be null', 'encrypt: NULL integration');
SELECT throws_ok($$SELECT aos_cus.encrypt_credential(gen_random_uuid(), gen_random_uuid(), NULL)$$, '22004', 'plaintext must not be null', 'encrypt: NULL plaintext');
SELECT throws_ok($$SELECT aos_cus.encrypt_credential(gen_random_uuid(), gen_random_uuid(), '')$$, '22023', 'plaintext must not be empty', 'encrypt: empty');
SELECT throws_ok($$SELECT aos_cus.encrypt_credential(gen_random_uuid(), gen_random_uuid(), repeat('k', 2049))$$, '22023', NULL, 'encrypt: huge');
SELECT throws_ok($$SELECT aos_cus.encrypt_credential(gen_random_uuid(), gen_random_uuid(), 'env://AOS_CUS_X')$$, '22023', NULL, 'encrypt: a reference');
SELECT throws_ok($$SELECT aos_cus.decrypt_credential(gen_random_uuid(), gen_random_uuid(), NULL)$$, '22004', 'ref must not be null', 'decrypt: NULL ref');
SELECT throws_ok($$SELECT aos_cus.decrypt_credential(gen_random_uuid(), gen_random_uuid(), 'vault://x')$$, '22023', NULL, 'decrypt: not encrypted://');
SELECT throws_ok($$SELECT aos_cus.decrypt_credential(gen_random_uuid(), gen_random_uuid(), 'sk-abcdef')$$, '22023', NULL, 'decrypt: plaintext');
SELECT throws_ok($$SELECT aos_cus.decrypt_credential(gen_random_uuid(), gen_random_uuid(), 'encrypted://v1/1/' || repeat('-', 40))$$, '22023', NULL, 'decrypt: random envelope');
SELECT throws_ok($$SELECT aos_cus.decrypt_credential(gen_random_uuid(), gen_random_uuid(), 'encrypted://v1/1/' || repeat('A', 100000))$$, '22023', NULL, 'decrypt: huge reference');
SELECT throws_ok($$SELECT aos_cus.decrypt_credential(gen_random_uuid(), gen_random_uuid(), '')$$, '22023', NULL, 'decrypt: empty reference');
SELECT throws_ok($$SELECT aos_cus.decrypt_credential(NULL, gen_random_uuid(), 'vault://x')$$, '22004', 'tenant_id must not be null', 'decrypt: NULL tenant');
SELECT throws_ok($$SELECT aos_cus.encrypt_credential(gen_random_uuid(), gen_random_uuid(), convert_from('\xc328'::bytea, 'UTF8'))$$, '22021', NULL,
                 'encrypt: invalid UTF-8 never reaches the function');
SELECT throws_ok($$SELECT aos_cus.rotate_encryption_key_batch(NULL)$$, '22004', 'batch_size must not be null', 'rotate batch: NULL');
SELECT throws_ok($$SELECT aos_cus.rotate_encryption_key_batch(-1)$$, '22023', 'batch_size must be between 1 and 100000', 'rotate batch: negative');
SELECT throws_ok($$SELECT aos_cus.rotate_encryption_key_batch(100001)$$, '22023', NULL, 'rotate batch: too large');
SELECT throws_ok($$SELECT aos_cus.allow_credential_source(NULL, 'env://AOS_CUS_X')$$, '22004', 'tenant_id must not be null', 'allow source: NULL tenant');
SELECT throws_ok($$SELECT aos_cus.allow_credential_source(gen_random_uuid(), NULL)$$, '22004', 'source must not be null', 'allow source: NULL source');
SELECT throws_ok($$SELECT aos_cus.allow_credential_source(gen_random_uuid(), 'encrypted://v1/1/' || repeat('A', 40))$$, '22023',
                 'source must be a vault:// or env:// reference', 'allow source: encrypted:// needs no allowance');
SELECT throws_ok($$SELECT aos_cus.allow_credential_source(gen_random_uuid(), 'sk-proj-abcdefghijklmnopqrstuvwxyz012345')$$, '22023',
                 'source looks like a plaintext OpenAI API key, not a credential reference', 'allow source: a plaintext key');
SELECT throws_ok($$SELECT aos_cus.revoke_credential_source(gen_random_uuid(), 'env://1BAD')$$, '22023', NULL, 'revoke source: malformed');

-- 7. Tenancy and privileges: only admin and worker decrypt or resolve; only admin encrypts and manages keys.
SET aos_cus.tenant_id = '00000000-0000-4000-8000-000000000002';
SELECT throws_ok($$SELECT aos_cus.encrypt_credential('00000000-0000-4000-8000-000000000001', gen_random_uuid(), 'k')$$, '42501', NULL,
                 'encrypt for another tenant than the session''s is refused');
SELECT throws_ok($$SELECT aos_cus.resolve_credential('00000000-0000-4000-8000-000000000001', '11111111-0000-4000-8000-000000000101')$$, '42501', NULL,
                 'resolve for another tenant than the session''s is refused');
SELECT throws_ok($$SELECT * FROM aos_cus.keyring_status()$$, '42501', NULL, 'keyring_status refuses a session acting for a tenant');
SELECT throws_ok($$SELECT aos_cus.allow_credential_source('00000000-0000-4000-8000-000000000002', 'env://AOS_CUS_PLATFORM_KEY')$$, '42501',
                 'allow_credential_source() spans every tenant and cannot run while the session acts for one',
                 'a session acting for a tenant cannot allow itself a source');
SELECT throws_ok($$SELECT aos_cus.revoke_credential_source('00000000-0000-4000-8000-000000000001', 'env://HOME')$$, '42501', NULL,
                 'a session acting for a tenant cannot revoke a source');
SET aos_cus.tenant_id = '00000000-0000-4000-8000-000000000001';
SET ROLE tap_c_app;
SELECT throws_ok($$SELECT aos_cus.resolve_credential('00000000-0000-4000-8000-000000000001', '11111111-0000-4000-8000-000000000101')$$, '42501', NULL, 'app cannot resolve');
SELECT throws_ok(format('SELECT aos_cus.decrypt_credential(%L, %L, %L)', tenant, integration, ref), '42501', NULL, 'app cannot decrypt') FROM sealed WHERE t = 1 AND i = 1;
SELECT throws_ok($$SELECT aos_cus.encrypt_credential('00000000-0000-4000-8000-000000000001', gen_random_uuid(), 'k')$$, '42501', NULL, 'app cannot encrypt');
SELECT is(aos_cus.validate_credential_format('vault://x'), 'vault', 'app can validate a reference');
SELECT throws_ok($$SELECT aos_cus.allow_credential_source('00000000-0000-4000-8000-000000000001', 'env://AOS_CUS_X')$$, '42501', NULL, 'app cannot allow a source');
SELECT throws_ok($$INSERT INTO aos_cus.cus_credential_sources VALUES ('00000000-0000-4000-8000-000000000001', 'env://AOS_CUS_X')$$, '42501', NULL,
                 'app cannot write the allow-list');
SET ROLE tap_c_reader;
SELECT throws_ok($$SELECT aos_cus.resolve_credential('00000000-0000-4000-8000-000000000001', '11111111-0000-4000-8000-000000000101')$$, '42501', NULL, 'reader cannot resolve');
SELECT throws_ok(format('SELECT aos_cus.decrypt_credential(%L, %L, %L)', tenant, integration, ref), '42501', NULL, 'reader cannot decrypt') FROM sealed WHERE t = 1 AND i = 1;
SET ROLE tap_c_worker;
SELECT is(aos_cus.resolve_credential('00000000-0000-4000-8000-000000000001', '11111111-0000-4000-8000-000000000101'),
          'sk-proj-rotated-0123456789abcdefWXYZ', 'worker resolves');
SELECT is(aos_cus.decrypt_credential(tenant, integration, ref), secret, 'worker decrypts') FROM sealed WHERE t = 1 AND i = 1;
SELECT throws_ok($$SELECT aos_cus.rotate_encryption_key()$$, '42501', NULL, 'worker cannot rotate the key');
SELECT throws_ok($$SELECT aos_cus.allow_credential_source('00000000-0000-4000-8000-000000000001', 'env://AOS_CUS_X')$$, '42501', NULL, 'worker cannot allow a source');
SET ROLE tap_c_admin;
SELECT is(aos_cus.resolve_credential('00000000-0000-4000-8000-000000000001', '11111111-0000-4000-8000-000000000101'),
          'sk-proj-rotated-0123456789abcdefWXYZ', 'admin resolves');
SELECT is((SELECT string_agg(source, ',' ORDER BY source) FROM aos_cus.cus_credential_sources), 'env://AOS_CUS_TAP_UNSET_VARIABLE,env://HOME',
          'a tenant admin sees its own allowed sources only');
SELECT throws_ok($$INSERT INTO aos_cus.cus_credential_sources VALUES ('00000000-0000-4000-8000-000000000001', 'env://AOS_CUS_PLATFORM_KEY')$$, '42501', NULL,
                 'a tenant admin cannot write the allow-list');
SELECT throws_ok($$SELECT aos_cus.allow_credential_source('00000000-0000-4000-8000-000000000001', 'env://AOS_CUS_PLATFORM_KEY')$$, '42501', NULL,
                 'a tenant admin cannot allow itself a source');
RESET aos_cus.tenant_id;
SELECT throws_ok($$SELECT aos_cus.rotate_encryption_key()$$, '42501', NULL,
    'a tenant admin cannot rotate the key');
SET ROLE tap_c_operator;
SELECT is(aos_cus.rotate_encryption_key(), 0::bigint, 'with one key version there is nothing to rotate');
SELECT throws_ok($$SELECT aos_cus.rotate_encryption_key_batch(0)$$, '22023', NULL, 'batch_size 0 refused');
SELECT ok((SELECT bool_and(fingerprint ~ '^[0-9a-f]{16}$') FROM aos_cus.keyring_status()), 'fingerprints are 16 hex digits');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
