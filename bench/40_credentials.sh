#!/usr/bin/env bash
# Credential encryption: encrypt + decrypt of 100,000 API-key-sized secrets (51 bytes, like
# sk-proj-...) across 100 tenants. Ours: AES-256-GCM with a per-tenant HKDF key, a random nonce
# and authentication (encrypt_credential/decrypt_credential). Peer: pgcrypto encrypt_iv/decrypt_iv
# aes-cbc with the tenant key and IV already in the row (no authentication, no derivation, no
# random IV generated). pgp_sym_encrypt/pgp_sym_decrypt (OpenPGP, salted S2K) on a 2,000-row slice.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
pg_sql -d "$BENCH_DB" <<'SQL'
CREATE EXTENSION IF NOT EXISTS pgcrypto;
DROP TABLE IF EXISTS bench_secrets;
CREATE TABLE bench_secrets AS
SELECT g AS n,
       ('00000000-0000-4000-8000-' || lpad((g % 100)::text, 12, '0'))::uuid AS tenant,
       gen_random_uuid() AS integration,
       'sk-proj-' || substr(md5(g::text) || md5((g * 7)::text), 1, 43) AS secret,
       digest('tenant key ' || (g % 100), 'sha256') AS tenant_key,
       gen_random_bytes(16) AS iv
  FROM generate_series(1, 100000) g;
ANALYZE bench_secrets;
SQL
compare_sql "encrypt+decrypt 100k secrets, 100 tenants: GCM+HKDF vs pgcrypto aes-cbc" \
	"SELECT count(*) FROM bench_secrets s
	  WHERE aos_cus.decrypt_credential(s.tenant, s.integration, aos_cus.encrypt_credential(s.tenant, s.integration, s.secret)) = s.secret" \
	"SELECT count(*) FROM bench_secrets s
	  WHERE convert_from(decrypt_iv(encrypt_iv(convert_to(s.secret, 'UTF8'), s.tenant_key, s.iv, 'aes-cbc'),
	                                s.tenant_key, s.iv, 'aes-cbc'), 'UTF8') = s.secret"
compare_sql "encrypt+decrypt 2k secrets: GCM+HKDF vs pgp_sym_encrypt/pgp_sym_decrypt" \
	"SELECT count(*) FROM bench_secrets s WHERE s.n <= 2000
	    AND aos_cus.decrypt_credential(s.tenant, s.integration, aos_cus.encrypt_credential(s.tenant, s.integration, s.secret)) = s.secret" \
	"SELECT count(*) FROM bench_secrets s WHERE s.n <= 2000
	    AND pgp_sym_decrypt(pgp_sym_encrypt(s.secret, encode(s.tenant_key, 'hex')), encode(s.tenant_key, 'hex')) = s.secret"
