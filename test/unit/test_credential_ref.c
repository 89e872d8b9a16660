/* test_credential_ref.c: unit tests of reference parsing, base64url, envelope layout and plaintext detection. */
#include "credential_ref.h"
#include "unit.h"

/* Parse a NUL-terminated reference and return its kind. */
static AosRefKind
kind_of(const char *text)
{
	AosCredRef	ref;
	const char *why;

	return aos_cus_ref_parse(text, strlen(text), &ref, &why);
}

/* Round trip every length 0..64 through base64url. */
static void
test_b64url(void)
{
	uint8_t		in[64],
				out[64];
	char		text[100];
	size_t		n;

	for (size_t i = 0; i < sizeof(in); i++)
		in[i] = (uint8_t) (i * 37 + 11);
	for (size_t len = 0; len <= sizeof(in); len++)
	{
		aos_cus_b64url_encode(in, len, text);
		CHECK(strlen(text) == aos_cus_b64url_encoded_len(len));
		CHECK(aos_cus_b64url_decode(text, strlen(text), out, &n) && n == len && memcmp(in, out, len) == 0);
	}
	aos_cus_b64url_encode((const uint8_t *) "\xfb\xff", 2, text);
	CHECK_STR(text, "-_8");
	CHECK(!aos_cus_b64url_decode("abcde", 5, out, &n));	/* length 1 mod 4 */
	CHECK(!aos_cus_b64url_decode("ab+/", 4, out, &n));	/* standard base64 characters */
	CHECK(!aos_cus_b64url_decode("ab==", 4, out, &n));	/* padding */
	CHECK(!aos_cus_b64url_decode("ab", 2, out, &n) || n == 1);
	CHECK(!aos_cus_b64url_decode("ab", 2, out, &n));	/* 'b' leaves non-zero padding bits */
	CHECK(aos_cus_b64url_decode("aQ", 2, out, &n) && n == 1 && out[0] == 'i');
	CHECK(!aos_cus_b64url_decode("aR", 2, out, &n));	/* non-canonical */
	CHECK(!aos_cus_b64url_decode("aaa\n", 4, out, &n));
}

/* Envelope layout and formatting of encrypted references. */
static void
test_envelope(void)
{
	uint8_t		env[12 + 5 + 16];
	const uint8_t *nonce,
			   *ct,
			   *tag;
	size_t		ct_len;
	char		ref[200];
	AosCredRef	parsed;
	const char *why;

	for (size_t i = 0; i < sizeof(env); i++)
		env[i] = (uint8_t) i;
	CHECK(aos_cus_envelope_len(5) == sizeof(env));
	CHECK(aos_cus_envelope_split(env, sizeof(env), &nonce, &ct, &ct_len, &tag));
	CHECK(nonce == env && ct == env + 12 && ct_len == 5 && tag == env + 17);
	CHECK(!aos_cus_envelope_split(env, 28, &nonce, &ct, &ct_len, &tag));
	CHECK(aos_cus_envelope_split(env, 29, &nonce, &ct, &ct_len, &tag) && ct_len == 1);

	aos_cus_ref_format_encrypted(42, env, sizeof(env), ref);
	CHECK(strlen(ref) == aos_cus_ref_encrypted_len(42, sizeof(env)));
	CHECK(strncmp(ref, "encrypted://v1/42/", 18) == 0);
	CHECK(aos_cus_ref_parse(ref, strlen(ref), &parsed, &why) == AOS_REF_ENCRYPTED);
	CHECK(parsed.version == 42 && parsed.payload == ref + 18 && parsed.payload_len == strlen(ref) - 18);
	aos_cus_ref_format_encrypted(2147483647u, env, sizeof(env), ref);
	CHECK(kind_of(ref) == AOS_REF_ENCRYPTED);
}

/* Accepted and refused references. */
static void
test_parse(void)
{
	AosCredRef	ref;
	const char *why;
	/* 29 bytes (the shortest envelope) encode to 39 characters. */
	const char *ok = "encrypted://v1/1/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

	CHECK(kind_of(ok) == AOS_REF_ENCRYPTED);
	CHECK(kind_of("encrypted://v1/1/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA") == AOS_REF_INVALID);
	CHECK(kind_of("encrypted://v1/0/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA") == AOS_REF_INVALID);
	CHECK(kind_of("encrypted://v1/01/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA") == AOS_REF_INVALID);
	CHECK(kind_of("encrypted://v1/2147483648/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA") == AOS_REF_INVALID);
	CHECK(kind_of("encrypted://v1/-1/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA") == AOS_REF_INVALID);
	CHECK(kind_of("encrypted://v2/1/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA") == AOS_REF_INVALID);
	CHECK(kind_of("encrypted://v1/1/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=") == AOS_REF_INVALID);
	CHECK(kind_of("encrypted://v1/1") == AOS_REF_INVALID);
	CHECK(kind_of("encrypted://v1//AAAA") == AOS_REF_INVALID);
	CHECK(kind_of("ENCRYPTED://v1/1/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA") == AOS_REF_INVALID);

	CHECK(kind_of("vault://openai-prod") == AOS_REF_VAULT);
	CHECK(aos_cus_ref_parse("vault://a.b/c", 13, &ref, &why) == AOS_REF_VAULT && ref.payload_len == 5);
	CHECK(kind_of("vault://") == AOS_REF_INVALID);
	CHECK(kind_of("vault://has space") == AOS_REF_INVALID);
	CHECK(kind_of("vault://sk-proj-abcdefghijklmnopqrstuvwxyz") == AOS_REF_INVALID);

	CHECK(kind_of("env://AOS_CUS_OPENAI_KEY") == AOS_REF_ENV);
	CHECK(kind_of("env://_x") == AOS_REF_ENV);
	CHECK(kind_of("env://1X") == AOS_REF_INVALID);
	CHECK(kind_of("env://A-B") == AOS_REF_INVALID);
	CHECK(kind_of("env://") == AOS_REF_INVALID);

	CHECK(kind_of("") == AOS_REF_INVALID);
	CHECK(kind_of("https://example.com") == AOS_REF_INVALID);
	CHECK(aos_cus_ref_parse("sk-abc", 6, &ref, &why) == AOS_REF_INVALID && strstr(why, "plaintext") != NULL);
	CHECK(aos_cus_ref_parse("vault://x\0y", 11, &ref, &why) == AOS_REF_INVALID);
	CHECK_STR(aos_cus_ref_kind_name(AOS_REF_ENCRYPTED), "encrypted");
	CHECK_STR(aos_cus_ref_kind_name(AOS_REF_VAULT), "vault");
	CHECK_STR(aos_cus_ref_kind_name(AOS_REF_ENV), "env");
	CHECK(aos_cus_ref_kind_name(AOS_REF_INVALID) == NULL);
}

/* Plaintext key shapes, whole and embedded. */
static void
test_plaintext(void)
{
	const char *s;

	s = "sk-ant-api03-abcdef";
	CHECK_STR(aos_cus_plaintext_key_shape(s, strlen(s)), "Anthropic");
	s = "sk-proj-abcdef";
	CHECK_STR(aos_cus_plaintext_key_shape(s, strlen(s)), "OpenAI");
	s = "sk-abc";
	CHECK_STR(aos_cus_plaintext_key_shape(s, strlen(s)), "OpenAI");
	s = "AIzaSyA-1234567890";
	CHECK_STR(aos_cus_plaintext_key_shape(s, strlen(s)), "Google");
	s = "0123456789abcdefABCDEF0123456789";
	CHECK_STR(aos_cus_plaintext_key_shape(s, strlen(s)), "Azure");
	s = "0123456789abcdefABCDEF012345678";
	CHECK(aos_cus_plaintext_key_shape(s, strlen(s)) == NULL);
	s = "0123456789abcdefABCDEF012345678g";
	CHECK(aos_cus_plaintext_key_shape(s, strlen(s)) == NULL);
	s = "vault://x";
	CHECK(aos_cus_plaintext_key_shape(s, strlen(s)) == NULL);

	s = "SELECT f('sk-proj-ABCDEFGHIJKLMNOPQRSTUVWXYZ')";
	CHECK(aos_cus_contains_plaintext_key(s, strlen(s)));
	s = "SELECT 'AIzaSyABCDEFGHIJKLMNOPQRSTUVWXYZ0123456'";
	CHECK(aos_cus_contains_plaintext_key(s, strlen(s)));
	s = "x 0123456789abcdef0123456789abcdef";
	CHECK(aos_cus_contains_plaintext_key(s, strlen(s)));
	s = "SELECT 'd0d0d0d0-0000-4000-8000-000000000001', 'task-list', 'sk-short'";
	CHECK(!aos_cus_contains_plaintext_key(s, strlen(s)));
	s = "0123456789abcdef0123456789abcdef0";
	CHECK(!aos_cus_contains_plaintext_key(s, strlen(s)));
}

/* AAD layout and hint offsets. */
static void
test_aad_hint(void)
{
	uint8_t		t[16],
				i[16],
				aad[AOS_AAD_LEN];

	memset(t, 0xaa, 16);
	memset(i, 0xbb, 16);
	aos_cus_credential_aad(0x01020304, t, i, aad);
	CHECK(memcmp(aad, "aos_cus", 8) == 0 && aad[8] == 1 && aad[11] == 4 && aad[12] == 0xaa && aad[43] == 0xbb);
	CHECK(aos_cus_credential_hint_offset("sk-abcdef", 9) == 5);
	CHECK(aos_cus_credential_hint_offset("ab", 2) == 0);
	CHECK(aos_cus_credential_hint_offset("xx\xc3\xa9\xc3\xa9yz", 8) == 2);
}

/* Run every case. */
int
main(void)
{
	test_b64url();
	test_envelope();
	test_parse();
	test_plaintext();
	test_aad_hint();
	return UNIT_DONE();
}
