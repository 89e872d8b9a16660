/* test_credential_crypto.c: unit tests of keyring parsing, HKDF tenant keys and the GCM envelope. */
#include "credential_crypto.h"
#include "unit.h"

static const char key1[] = "1:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

/* Parse a NUL-terminated keyring text. */
static bool
parse(const char *text, AosKeyring *kr, char *err)
{
	return aos_cus_keyring_parse(text, strlen(text), kr, err, 200);
}

/* Accepted and refused keyrings; errors never echo key material. */
static void
test_keyring(void)
{
	AosKeyring	kr;
	char		err[200];
	char		buf[400];

	CHECK(parse(key1, &kr, err) && kr.count == 1 && kr.entries[0].version == 1 && kr.entries[0].key[31] == 0x1f);
	snprintf(buf, sizeof(buf), "# comment\n\n%s\r\n7:%s\n", key1,
			 "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF");
	CHECK(parse(buf, &kr, err) && kr.count == 2 && aos_cus_keyring_highest(&kr) == 7);
	CHECK(aos_cus_keyring_find(&kr, 7) != NULL && aos_cus_keyring_find(&kr, 7)->key[0] == 0xff);
	CHECK(aos_cus_keyring_find(&kr, 2) == NULL);

	CHECK(!parse("", &kr, err) && strstr(err, "no key") != NULL);
	CHECK(!parse("# only a comment\n", &kr, err));
	CHECK(!parse("1:00\n", &kr, err) && strstr(err, "line 1") != NULL);
	snprintf(buf, sizeof(buf), "%s\n%s\n", key1, key1);
	CHECK(!parse(buf, &kr, err) && strstr(err, "line 2 repeats key version 1") != NULL && kr.count == 0);
	snprintf(buf, sizeof(buf), "%s\n0:%s\n", key1, key1 + 2);
	CHECK(!parse(buf, &kr, err) && strstr(err, "line 2") != NULL && strstr(err, "0001020304") == NULL);
	snprintf(buf, sizeof(buf), "2147483648:%s\n", key1 + 2);
	CHECK(!parse(buf, &kr, err));
	snprintf(buf, sizeof(buf), "x1:%s\n", key1 + 2);
	CHECK(!parse(buf, &kr, err));
	snprintf(buf, sizeof(buf), "1:%.63sg\n", key1 + 2);
	CHECK(!parse(buf, &kr, err) && strstr(err, key1 + 2) == NULL);
	snprintf(buf, sizeof(buf), "%s0\n", key1);
	CHECK(!parse(buf, &kr, err));
}

/* Derivation is deterministic and separates tenants and versions. */
static void
test_hkdf(void)
{
	uint8_t		master[32] = {1},
				t1[16] = {1},
				t2[16] = {2},
				a[32],
				b[32],
				c[32],
				d[32];

	CHECK(aos_cus_derive_tenant_key(master, 1, t1, a));
	CHECK(aos_cus_derive_tenant_key(master, 1, t1, b) && memcmp(a, b, 32) == 0);
	CHECK(aos_cus_derive_tenant_key(master, 1, t2, c) && memcmp(a, c, 32) != 0);
	CHECK(aos_cus_derive_tenant_key(master, 2, t1, d) && memcmp(a, d, 32) != 0);
	CHECK(memcmp(a, master, 32) != 0);
}

/* Round trip, fresh nonces, and every single-byte tamper fails. */
static void
test_gcm(void)
{
	uint8_t		raw[32] = {9},
				raw_other[32] = {8},
				t[16] = {1},
				i[16] = {2},
				aad[AOS_AAD_LEN],
				aad2[AOS_AAD_LEN];
	const char *secret = "sk-proj-unit-test-secret-0123456789";
	size_t		n = strlen(secret),
				out_len;
	uint8_t		env[200],
				env2[200],
				out[200];
	int			tamper_ok = 0;
	AosGcmKey	key,
				other;

	CHECK(aos_cus_gcm_key_init(&key, raw) && aos_cus_gcm_key_init(&other, raw_other));
	aos_cus_credential_aad(1, t, i, aad);
	CHECK(aos_cus_gcm_seal(&key, aad, (const uint8_t *) secret, n, env));
	CHECK(aos_cus_gcm_open(&key, aad, env, aos_cus_envelope_len(n), out, &out_len) && out_len == n && memcmp(out, secret, n) == 0);
	CHECK(aos_cus_gcm_seal(&key, aad, (const uint8_t *) secret, n, env2));
	CHECK(memcmp(env, env2, aos_cus_envelope_len(n)) != 0 && memcmp(env, env2, AOS_GCM_NONCE_LEN) != 0);
	CHECK(memmem(env, aos_cus_envelope_len(n), "unit-test", 9) == NULL);

	for (size_t pos = 0; pos < aos_cus_envelope_len(n); pos++)
	{
		env[pos] ^= 0x01;
		if (!aos_cus_gcm_open(&key, aad, env, aos_cus_envelope_len(n), out, &out_len) && out_len == 0)
			tamper_ok++;
		env[pos] ^= 0x01;
	}
	CHECK(tamper_ok == (int) aos_cus_envelope_len(n));
	CHECK(!aos_cus_gcm_open(&key, aad, env, aos_cus_envelope_len(n) - 1, out, &out_len));
	CHECK(!aos_cus_gcm_open(&other, aad, env, aos_cus_envelope_len(n), out, &out_len));
	aos_cus_credential_aad(1, t, t, aad2);
	CHECK(!aos_cus_gcm_open(&key, aad2, env, aos_cus_envelope_len(n), out, &out_len));
	aos_cus_credential_aad(2, t, i, aad2);
	CHECK(!aos_cus_gcm_open(&key, aad2, env, aos_cus_envelope_len(n), out, &out_len));
	CHECK(!aos_cus_gcm_seal(&key, aad, (const uint8_t *) secret, 0, env));
	CHECK(!aos_cus_gcm_open(&key, aad, env, 10, out, &out_len));
	aos_cus_gcm_key_free(&key);
	aos_cus_gcm_key_free(&other);
	CHECK(key.seal == NULL && key.open == NULL);
	CHECK(!aos_cus_gcm_seal(&key, aad, (const uint8_t *) secret, n, env));
	aos_cus_gcm_key_free(&key);
}

/* Fingerprints are stable, distinct per key, and not the key. */
static void
test_fingerprint(void)
{
	uint8_t		a[32] = {1},
				b[32] = {2};
	char		fa[17],
				fa2[17],
				fb[17];

	CHECK(aos_cus_key_fingerprint(a, fa) && aos_cus_key_fingerprint(a, fa2) && aos_cus_key_fingerprint(b, fb));
	CHECK(strlen(fa) == 16 && strcmp(fa, fa2) == 0 && strcmp(fa, fb) != 0);
	CHECK(strncmp(fa, "0100000000000000", 16) != 0);
}

/* Run every case. */
int
main(void)
{
	test_keyring();
	test_hkdf();
	test_gcm();
	test_fingerprint();
	return UNIT_DONE();
}
