/* credential_crypto.c: keyring parsing, HKDF tenant keys and AES-256-GCM envelopes (OpenSSL EVP). */
#include "credential_crypto.h"
#include "uuid_text.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>

static const char hkdf_label[] = "aos_cus tenant data key v1";
static const char fingerprint_label[] = "aos_cus keyring fingerprint v1";

/*
 * Nonces come from a per-process pool of CSPRNG output refilled 4 kB at a time:
 * one RAND_bytes call costs microseconds, far more than the encryption itself.
 * Each nonce is used once and cleared from the pool; a fork empties the
 * child's pool (pthread_atfork) so parent and child never share nonces.
 */
#define NONCE_POOL_BYTES 4092
static uint8_t nonce_pool[NONCE_POOL_BYTES];
static size_t nonce_pool_next = NONCE_POOL_BYTES;
static bool nonce_pool_atfork = false;

/* AES-256-GCM, fetched once per process. */
static const EVP_CIPHER *gcm_cipher = NULL;

/* Parse "<version>:<64 hex>" of len bytes (trailing CR and blanks allowed) into e. */
static bool
parse_key_line(const char *line, size_t len, AosKeyringEntry *e)
{
	size_t		i = 0;
	uint64_t	v = 0;

	while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == ' ' || line[len - 1] == '\t'))
		len--;
	if (len == 0 || line[0] < '1' || line[0] > '9')
		return false;
	for (; i < len && line[i] >= '0' && line[i] <= '9'; i++)
	{
		v = v * 10 + (uint64_t) (line[i] - '0');
		if (v > AOS_KEY_VERSION_MAX)
			return false;
	}
	if (i >= len || line[i] != ':' || len - i - 1 != 2 * AOS_DATA_KEY_LEN)
		return false;
	e->version = (uint32_t) v;
	for (size_t k = 0; k < AOS_DATA_KEY_LEN; k++)
	{
		int			hi = aos_cus_hex_value(line[i + 1 + 2 * k]);
		int			lo = aos_cus_hex_value(line[i + 2 + 2 * k]);

		if (hi < 0 || lo < 0)
			return false;
		e->key[k] = (uint8_t) (hi << 4 | lo);
	}
	return true;
}

/* Parse a whole keyring. */
bool
aos_cus_keyring_parse(const char *buf, size_t len, AosKeyring *kr, char *err, size_t errlen)
{
	size_t		pos = 0;
	int			lineno = 0;

	memset(kr, 0, sizeof(*kr));
	while (pos < len)
	{
		const char *nl = memchr(buf + pos, '\n', len - pos);
		size_t		linelen = nl ? (size_t) (nl - (buf + pos)) : len - pos;
		const char *line = buf + pos;
		AosKeyringEntry e;

		lineno++;
		pos += linelen + (nl ? 1 : 0);
		if (linelen == 0 || line[0] == '#' || (linelen == 1 && line[0] == '\r'))
			continue;
		if (!parse_key_line(line, linelen, &e))
		{
			snprintf(err, errlen, "line %d is not \"<version>:<64 hex digits>\" with a version from 1 to %u",
					 lineno, AOS_KEY_VERSION_MAX);
			goto fail;
		}
		if (aos_cus_keyring_find(kr, e.version) != NULL)
		{
			snprintf(err, errlen, "line %d repeats key version %u", lineno, e.version);
			goto fail;
		}
		if (kr->count == AOS_KEYRING_MAX)
		{
			snprintf(err, errlen, "line %d exceeds the limit of %d key versions", lineno, AOS_KEYRING_MAX);
			goto fail;
		}
		kr->entries[kr->count++] = e;
		aos_cus_secure_zero(&e, sizeof(e));
	}
	if (kr->count == 0)
	{
		snprintf(err, errlen, "it holds no key");
		return false;
	}
	return true;

fail:
	aos_cus_secure_zero(kr, sizeof(*kr));
	return false;
}

/* Find a version's entry. */
const AosKeyringEntry *
aos_cus_keyring_find(const AosKeyring *kr, uint32_t version)
{
	for (int i = 0; i < kr->count; i++)
		if (kr->entries[i].version == version)
			return &kr->entries[i];
	return NULL;
}

/* Highest version present. */
uint32_t
aos_cus_keyring_highest(const AosKeyring *kr)
{
	uint32_t	best = 0;

	for (int i = 0; i < kr->count; i++)
		if (kr->entries[i].version > best)
			best = kr->entries[i].version;
	return best;
}

/* Zero memory with OPENSSL_cleanse. */
void
aos_cus_secure_zero(void *p, size_t n)
{
	OPENSSL_cleanse(p, n);
}

/* HKDF-SHA256(ikm = master key, info = label | version | tenant). */
bool
aos_cus_derive_tenant_key(const uint8_t master[AOS_DATA_KEY_LEN], uint32_t version,
					  const uint8_t tenant[16], uint8_t out[AOS_DATA_KEY_LEN])
{
	EVP_PKEY_CTX *pctx = EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, NULL);
	uint8_t		info[sizeof(hkdf_label) + 4 + 16];
	size_t		outlen = AOS_DATA_KEY_LEN;
	bool		ok;

	memcpy(info, hkdf_label, sizeof(hkdf_label));
	info[sizeof(hkdf_label)] = (uint8_t) (version >> 24);
	info[sizeof(hkdf_label) + 1] = (uint8_t) (version >> 16);
	info[sizeof(hkdf_label) + 2] = (uint8_t) (version >> 8);
	info[sizeof(hkdf_label) + 3] = (uint8_t) version;
	memcpy(info + sizeof(hkdf_label) + 4, tenant, 16);
	ok = pctx != NULL &&
		EVP_PKEY_derive_init(pctx) > 0 &&
		EVP_PKEY_CTX_set_hkdf_md(pctx, EVP_sha256()) > 0 &&
		EVP_PKEY_CTX_set1_hkdf_key(pctx, master, AOS_DATA_KEY_LEN) > 0 &&
		EVP_PKEY_CTX_add1_hkdf_info(pctx, info, sizeof(info)) > 0 &&
		EVP_PKEY_derive(pctx, out, &outlen) > 0 &&
		outlen == AOS_DATA_KEY_LEN;
	EVP_PKEY_CTX_free(pctx);
	if (!ok)
		aos_cus_secure_zero(out, AOS_DATA_KEY_LEN);
	return ok;
}

/* Prepare both directions' contexts with the key. */
bool
aos_cus_gcm_key_init(AosGcmKey *k, const uint8_t key[AOS_DATA_KEY_LEN])
{
	if (gcm_cipher == NULL)
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
		gcm_cipher = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
#else
		gcm_cipher = EVP_aes_256_gcm();
#endif
	k->seal = EVP_CIPHER_CTX_new();
	k->open = EVP_CIPHER_CTX_new();
	if (gcm_cipher != NULL && k->seal != NULL && k->open != NULL &&
		EVP_EncryptInit_ex(k->seal, gcm_cipher, NULL, key, NULL) == 1 &&
		EVP_DecryptInit_ex(k->open, gcm_cipher, NULL, key, NULL) == 1)
		return true;
	aos_cus_gcm_key_free(k);
	return false;
}

/* Free both contexts (EVP_CIPHER_CTX_free cleanses them). */
void
aos_cus_gcm_key_free(AosGcmKey *k)
{
	EVP_CIPHER_CTX_free(k->seal);
	EVP_CIPHER_CTX_free(k->open);
	k->seal = NULL;
	k->open = NULL;
}

/* pthread_atfork child handler: a forked process draws its own nonces. */
static void
nonce_pool_forget(void)
{
	memset(nonce_pool, 0, sizeof(nonce_pool));
	nonce_pool_next = NONCE_POOL_BYTES;
}

/* Take a fresh random nonce from the pool; false when the CSPRNG fails. */
static bool
next_nonce(uint8_t nonce[AOS_GCM_NONCE_LEN])
{
	if (!nonce_pool_atfork)
	{
		if (pthread_atfork(NULL, NULL, nonce_pool_forget) != 0)
			return false;
		nonce_pool_atfork = true;
	}
	if (nonce_pool_next + AOS_GCM_NONCE_LEN > NONCE_POOL_BYTES)
	{
		if (RAND_bytes(nonce_pool, NONCE_POOL_BYTES) != 1)
			return false;
		nonce_pool_next = 0;
	}
	memcpy(nonce, nonce_pool + nonce_pool_next, AOS_GCM_NONCE_LEN);
	memset(nonce_pool + nonce_pool_next, 0, AOS_GCM_NONCE_LEN);
	nonce_pool_next += AOS_GCM_NONCE_LEN;
	return true;
}

/* Encrypt with a random nonce. */
bool
aos_cus_gcm_seal(const AosGcmKey *k, const uint8_t aad[AOS_AAD_LEN],
			 const uint8_t *plaintext, size_t n, uint8_t *env)
{
	uint8_t    *nonce = env;
	uint8_t    *ct = env + AOS_GCM_NONCE_LEN;
	int			len = 0,
				fin = 0;

	if (n == 0 || n > AOS_CREDENTIAL_MAX || k->seal == NULL)
		return false;
	if (!next_nonce(nonce))
		return false;
	if (EVP_EncryptInit_ex(k->seal, NULL, NULL, NULL, nonce) != 1 ||
		EVP_EncryptUpdate(k->seal, NULL, &len, aad, AOS_AAD_LEN) != 1 ||
		EVP_EncryptUpdate(k->seal, ct, &len, plaintext, (int) n) != 1 ||
		EVP_EncryptFinal_ex(k->seal, ct + len, &fin) != 1 ||
		(size_t) (len + fin) != n ||
		EVP_CIPHER_CTX_ctrl(k->seal, EVP_CTRL_GCM_GET_TAG, AOS_GCM_TAG_LEN, ct + n) != 1)
		return false;
	return true;
}

/* Authenticate and decrypt. */
bool
aos_cus_gcm_open(const AosGcmKey *k, const uint8_t aad[AOS_AAD_LEN],
			 const uint8_t *env, size_t env_len, uint8_t *plaintext, size_t *plaintext_len)
{
	const uint8_t *nonce,
			   *ct,
			   *tag;
	size_t		ct_len;
	int			len = 0,
				fin = 0;

	*plaintext_len = 0;
	if (!aos_cus_envelope_split(env, env_len, &nonce, &ct, &ct_len, &tag) || k->open == NULL)
		return false;
	if (EVP_DecryptInit_ex(k->open, NULL, NULL, NULL, nonce) != 1 ||
		EVP_DecryptUpdate(k->open, NULL, &len, aad, AOS_AAD_LEN) != 1 ||
		EVP_DecryptUpdate(k->open, plaintext, &len, ct, (int) ct_len) != 1 ||
		EVP_CIPHER_CTX_ctrl(k->open, EVP_CTRL_GCM_SET_TAG, AOS_GCM_TAG_LEN, (void *) tag) != 1 ||
		EVP_DecryptFinal_ex(k->open, plaintext + len, &fin) != 1)
	{
		aos_cus_secure_zero(plaintext, ct_len);
		return false;
	}
	*plaintext_len = (size_t) (len + fin);
	return true;
}

/* First 8 bytes of HMAC-SHA256(key, label) in hex. */
bool
aos_cus_key_fingerprint(const uint8_t key[AOS_DATA_KEY_LEN], char out[AOS_FINGERPRINT_LEN + 1])
{
	static const char digits[] = "0123456789abcdef";
	uint8_t		mac[32];
	unsigned int mac_len = 0;

	if (HMAC(EVP_sha256(), key, AOS_DATA_KEY_LEN, (const uint8_t *) fingerprint_label,
			 strlen(fingerprint_label), mac, &mac_len) == NULL || mac_len != sizeof(mac))
		return false;
	for (int i = 0; i < AOS_FINGERPRINT_LEN / 2; i++)
	{
		out[2 * i] = digits[mac[i] >> 4];
		out[2 * i + 1] = digits[mac[i] & 0xf];
	}
	out[AOS_FINGERPRINT_LEN] = '\0';
	return true;
}
