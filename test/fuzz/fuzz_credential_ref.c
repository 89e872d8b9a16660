/*
 * fuzz_credential_ref.c: libFuzzer target for the reference parser and decoder.
 * Every accepted encrypted reference must decode, split into nonce | ciphertext | tag,
 * and format back to the same text; no input may crash or read out of bounds.
 */
#include "credential_ref.h"

#include <stdlib.h>
#include <string.h>

/* Abort (a finding) when cond is false. */
#define REQUIRE(cond) do { if (!(cond)) abort(); } while (0)

/* One input: parse, decode, split, re-format, scan for key shapes. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *) data;
	AosCredRef	ref;
	const char *why;
	AosRefKind	kind = aos_cus_ref_parse(text, size, &ref, &why);

	(void) aos_cus_plaintext_key_shape(text, size);
	(void) aos_cus_contains_plaintext_key(text, size);
	(void) aos_cus_credential_hint_offset(text, size);
	if (kind == AOS_REF_INVALID)
	{
		REQUIRE(why != NULL);
		return 0;
	}
	REQUIRE(aos_cus_ref_kind_name(kind) != NULL);
	if (kind == AOS_REF_ENCRYPTED)
	{
		uint8_t    *env = malloc(ref.payload_len);
		size_t		env_len;
		const uint8_t *nonce,
				   *ct,
				   *tag;
		size_t		ct_len;
		char	   *again;

		REQUIRE(aos_cus_b64url_decode(ref.payload, ref.payload_len, env, &env_len));
		REQUIRE(aos_cus_envelope_split(env, env_len, &nonce, &ct, &ct_len, &tag));
		REQUIRE(ct_len >= 1 && nonce + 12 == ct && ct + ct_len == tag);
		again = malloc(aos_cus_ref_encrypted_len(ref.version, env_len) + 1);
		aos_cus_ref_format_encrypted(ref.version, env, env_len, again);
		REQUIRE(strlen(again) == size && memcmp(again, text, size) == 0);
		free(again);
		free(env);
	}
	return 0;
}
