/*
 * credential_crypto.h: keyring parsing, per-tenant key derivation and the
 * AES-256-GCM envelope, with OpenSSL and without Postgres headers.
 *
 * Key material handled here is never printed: error texts name line numbers
 * and versions only.
 */
#ifndef AOS_CUS_CREDENTIAL_CRYPTO_H
#define AOS_CUS_CREDENTIAL_CRYPTO_H

#include "credential_ref.h"

/* Most key versions one keyring may hold. */
#define AOS_KEYRING_MAX 64
/* Hex characters of a key fingerprint. */
#define AOS_FINGERPRINT_LEN 16

typedef struct AosKeyringEntry
{
	uint32_t	version;
	uint8_t		key[AOS_DATA_KEY_LEN];
} AosKeyringEntry;

/* A data key ready for use: OpenSSL contexts with the AES key schedule and GCM tables computed once. */
typedef struct AosGcmKey
{
	struct evp_cipher_ctx_st *seal;
	struct evp_cipher_ctx_st *open;
} AosGcmKey;

typedef struct AosKeyring
{
	int			count;
	AosKeyringEntry entries[AOS_KEYRING_MAX];
} AosKeyring;

/*
 * Parse keyring text: one "<version>:<64 hex>" per line; blank lines and lines
 * starting with '#' are skipped. On failure returns false, leaves kr zeroed and
 * writes a reason naming the line (never its content) into err.
 */
bool		aos_cus_keyring_parse(const char *buf, size_t len, AosKeyring *kr, char *err, size_t errlen);

/* The entry of a version, or NULL. */
const AosKeyringEntry *aos_cus_keyring_find(const AosKeyring *kr, uint32_t version);

/* The highest version in a non-empty keyring. */
uint32_t	aos_cus_keyring_highest(const AosKeyring *kr);

/* Zero memory in a way the compiler cannot drop. */
void		aos_cus_secure_zero(void *p, size_t n);

/* HKDF-SHA256 of the version's key for one tenant; false on an OpenSSL failure. */
bool		aos_cus_derive_tenant_key(const uint8_t master[AOS_DATA_KEY_LEN], uint32_t version,
								  const uint8_t tenant[16], uint8_t out[AOS_DATA_KEY_LEN]);

/* Prepare an AES-256-GCM key (false on an OpenSSL failure, with k left empty). */
bool		aos_cus_gcm_key_init(AosGcmKey *k, const uint8_t key[AOS_DATA_KEY_LEN]);

/* Free a prepared key; OpenSSL wipes the key schedule. Safe on an empty key. */
void		aos_cus_gcm_key_free(AosGcmKey *k);

/*
 * Encrypt n bytes with a fresh random nonce into env (aos_cus_envelope_len(n)
 * bytes: nonce | ciphertext | tag); false on an OpenSSL failure.
 */
bool		aos_cus_gcm_seal(const AosGcmKey *k, const uint8_t aad[AOS_AAD_LEN],
						 const uint8_t *plaintext, size_t n, uint8_t *env);

/*
 * Authenticate and decrypt an envelope into plaintext (room for the ciphertext
 * length); false when it does not authenticate, with plaintext zeroed.
 */
bool		aos_cus_gcm_open(const AosGcmKey *k, const uint8_t aad[AOS_AAD_LEN],
						 const uint8_t *env, size_t env_len, uint8_t *plaintext, size_t *plaintext_len);

/* A fingerprint of a key (HMAC-SHA256 of a fixed label, 8 bytes in hex) that reveals nothing of it. */
bool		aos_cus_key_fingerprint(const uint8_t key[AOS_DATA_KEY_LEN], char out[AOS_FINGERPRINT_LEN + 1]);

#endif
