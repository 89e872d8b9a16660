/*
 * credential_ref.h: credential references without Postgres headers.
 *
 * A stored credential is never plaintext; it is one of
 *   encrypted://v1/<key version>/<base64url(nonce | ciphertext | tag)>
 *   vault://<secret name>        (Supabase Vault)
 *   env://<VARIABLE>             (the server's environment)
 * This module parses and formats references, encodes base64url, lays out the
 * AES-GCM envelope and recognizes plaintext provider keys. It allocates nothing.
 */
#ifndef AOS_CUS_CREDENTIAL_REF_H
#define AOS_CUS_CREDENTIAL_REF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AOS_GCM_NONCE_LEN 12
#define AOS_GCM_TAG_LEN 16
#define AOS_DATA_KEY_LEN 32
/* Longest accepted plaintext credential, in bytes. */
#define AOS_CREDENTIAL_MAX 2048
/* Longest accepted reference text (the table allows 4096 characters). */
#define AOS_REF_MAX 4096
/* Longest vault secret name or environment variable name. */
#define AOS_REF_NAME_MAX 255
/* Highest key version a keyring or reference may name. */
#define AOS_KEY_VERSION_MAX 2147483647u
/* Bytes of additional authenticated data (see aos_cus_credential_aad). */
#define AOS_AAD_LEN (8 + 4 + 16 + 16)

typedef enum AosRefKind
{
	AOS_REF_INVALID = 0,
	AOS_REF_ENCRYPTED,
	AOS_REF_VAULT,
	AOS_REF_ENV
} AosRefKind;

/* A parsed reference; pointers point into the parsed text. */
typedef struct AosCredRef
{
	AosRefKind	kind;
	uint32_t	version;		/* encrypted: key version */
	const char *payload;		/* encrypted: base64url text; vault/env: the name */
	size_t		payload_len;
} AosCredRef;

/* Kind name ("encrypted", "vault", "env") or NULL for AOS_REF_INVALID. */
const char *aos_cus_ref_kind_name(AosRefKind kind);

/*
 * Parse a reference of len bytes. On failure returns AOS_REF_INVALID and sets
 * *why to a fixed English reason that never quotes the input.
 */
AosRefKind	aos_cus_ref_parse(const char *text, size_t len, AosCredRef *out, const char **why);

/*
 * Name of the provider key shape the text has ("OpenAI", "Anthropic", "Google",
 * "Azure"), or NULL when it does not look like a plaintext key.
 */
const char *aos_cus_plaintext_key_shape(const char *text, size_t len);

/* True when some substring of text looks like a plaintext provider key. */
bool		aos_cus_contains_plaintext_key(const char *text, size_t len);

/* Characters base64url (unpadded) needs for n bytes. */
size_t		aos_cus_b64url_encoded_len(size_t n);

/* Encode n bytes unpadded into out (aos_cus_b64url_encoded_len(n) + 1 bytes, NUL-terminated). */
void		aos_cus_b64url_encode(const uint8_t *in, size_t n, char *out);

/*
 * Decode unpadded canonical base64url into out (room for len * 3 / 4 bytes);
 * false on a bad character, an impossible length or non-zero padding bits.
 */
bool		aos_cus_b64url_decode(const char *in, size_t len, uint8_t *out, size_t *out_len);

/* Bytes of the envelope (nonce | ciphertext | tag) for a plaintext of n bytes. */
size_t		aos_cus_envelope_len(size_t n);

/*
 * Split a decoded envelope of len bytes into its parts; false when it is too
 * short to hold a nonce, a tag and at least one byte of ciphertext.
 */
bool		aos_cus_envelope_split(const uint8_t *env, size_t len, const uint8_t **nonce,
							   const uint8_t **ciphertext, size_t *ciphertext_len, const uint8_t **tag);

/* Characters of the reference text for an envelope of n bytes under key version, without the NUL. */
size_t		aos_cus_ref_encrypted_len(uint32_t version, size_t envelope_len);

/* Format encrypted://v1/<version>/<base64url(env)> into out (aos_cus_ref_encrypted_len + 1 bytes). */
void		aos_cus_ref_format_encrypted(uint32_t version, const uint8_t *env, size_t env_len, char *out);

/* Additional authenticated data binding a ciphertext to its key version, tenant and integration. */
void		aos_cus_credential_aad(uint32_t version, const uint8_t tenant[16], const uint8_t integration[16],
							   uint8_t out[AOS_AAD_LEN]);

/* The credential hint: the last four characters (UTF-8 aware) as byte offset into text. */
size_t		aos_cus_credential_hint_offset(const char *text, size_t len);

#endif
