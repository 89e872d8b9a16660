/* credentials.h: the credential vault's entry points for other C modules (health probes, workers). */
#ifndef AOS_CUS_CREDENTIALS_H
#define AOS_CUS_CREDENTIALS_H

#include "postgres.h"

#include "utils/uuid.h"

/*
 * Plaintext credential of an integration: encrypted:// is decrypted, vault://
 * read from Supabase Vault, env:// from the server's environment (both only
 * when the operator allowed the tenant that source: 42501 otherwise). Checks the
 * tenant with aos_cus_assert_tenant(). Returns a palloc'd NUL-terminated string
 * that the caller must wipe (explicit_bzero) and pfree as soon as it is used.
 * Raises an error naming the integration, never the secret, on any failure.
 * Call it inside a transaction; it reads cus_integrations through SPI with the
 * current user's rights (row-level security applies to non-owners).
 */
extern char *aos_cus_resolve_credential(const pg_uuid_t *tenant, const pg_uuid_t *integration);

/*
 * False, with the reason in why (never key material), when credentials cannot
 * be resolved for a fault of the server's: the keyring is not loaded, or one
 * of its versions holds another key than the one the database recorded for it.
 * Call it inside a transaction.
 */
extern bool aos_cus_keyring_ready(char *why, size_t len);

/*
 * Seal another secret of the tenant with the vault (AES-256-GCM under the
 * tenant's key, owner's id in the AAD, as integrations' keys): the palloc'd
 * encrypted:// reference. Marks the running statement as carrying a secret.
 */
extern text *aos_cus_seal_secret(const pg_uuid_t *tenant, const pg_uuid_t *owner, const char *plaintext, size_t len);

/* Open a reference sealed for (tenant, owner): palloc'd, to be wiped by the caller; errors name what, never the secret. */
extern char *aos_cus_open_secret(const pg_uuid_t *tenant, const pg_uuid_t *owner, const char *ref, const char *what);

/* Register the credential GUCs, load the keyring when preloaded, install the log filter. */
extern void aos_cus_credentials_init(void);

#endif
