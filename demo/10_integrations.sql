-- Integrations: the API hands back the credential's kind and hint, never the key
\pset footer off
SET aos_cus.tenant_id = 'd0d0d0d0-0000-4000-8000-000000000001';
\echo The keys went in as plaintext (demo/00_tenant.sql); reads return only their kind and last four characters:
SELECT name, provider, status, credential_kind, credential_hint, limits ->> 'rpm' AS rpm
  FROM aos_cus.list_integrations(aos_cus.current_tenant());
\echo The table holds AES-256-GCM envelopes bound to tenant and integration, encrypted before the first write:
SELECT name, left(credential_ref, 44) || '...' AS credential_ref FROM aos_cus.cus_integrations ORDER BY name;
\echo env:// and vault:// name secrets outside the tenant credentials: the platform operator (no tenant set) allows each per tenant:
RESET aos_cus.tenant_id;
SELECT aos_cus.allow_credential_source('d0d0d0d0-0000-4000-8000-000000000001', 'env://AOS_CUS_MISTRAL_KEY') AS allowed;
SET aos_cus.tenant_id = 'd0d0d0d0-0000-4000-8000-000000000001';
\echo A fourth integration whose key stays in the server environment (env://), with limits in Paris time:
SELECT aos_cus.create_integration(aos_cus.current_tenant(), 'mistral-lab', 'mistral', 'env://AOS_CUS_MISTRAL_KEY',
           '{"id": "d0d0d0d0-0000-4000-8000-0000000000a4",
             "limits": {"budget_microcents": 100000000, "budget_period": "day", "mode": "warn", "timezone": "Europe/Paris"}}') AS id;
SELECT name, credential_kind, limits
  FROM aos_cus.get_integration(aos_cus.current_tenant(), 'd0d0d0d0-0000-4000-8000-0000000000a4');
\echo Limits change through set_limits; a bad value is refused and changes nothing; the lifecycle is enforced:
SELECT name, limits ->> 'rpm' AS rpm, limits ->> 'warn_at_pct' AS warn_at_pct
  FROM aos_cus.set_limits(aos_cus.current_tenant(), 'd0d0d0d0-0000-4000-8000-0000000000a3', '{"rpm": 60, "warn_at_pct": 90}');
DO $$
BEGIN
    PERFORM aos_cus.set_limits(aos_cus.current_tenant(), 'd0d0d0d0-0000-4000-8000-0000000000a3', '{"rpm": 120, "timezone": "Mars/Olympus"}');
EXCEPTION WHEN OTHERS THEN
    RAISE NOTICE 'refused (%): %', SQLSTATE, SQLERRM;
END $$;
DO $$
BEGIN
    PERFORM aos_cus.disable_integration(aos_cus.current_tenant(), 'd0d0d0d0-0000-4000-8000-0000000000a3');
EXCEPTION WHEN OTHERS THEN
    RAISE NOTICE 'refused (%): %', SQLSTATE, SQLERRM;
END $$;
SELECT name, status, limits ->> 'rpm' AS rpm FROM aos_cus.get_integration(aos_cus.current_tenant(), 'd0d0d0d0-0000-4000-8000-0000000000a3');
\echo A soft delete wipes the credential; the name can be used again:
SELECT name, status, credential_kind, deleted_at IS NOT NULL AS deleted
  FROM aos_cus.delete_integration(aos_cus.current_tenant(), 'd0d0d0d0-0000-4000-8000-0000000000a4');
\echo The keyring (server-wide, so no tenant): versions, fingerprints that reveal nothing, credentials per version:
RESET aos_cus.tenant_id;
SELECT version, active, fingerprint, credentials FROM aos_cus.keyring_status();
