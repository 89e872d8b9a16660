/*
 * fuzz_keyring.c: libFuzzer target for the keyring file parser. A parsed
 * keyring has 1..64 distinct versions; a refused one is zeroed and its error
 * text never contains 16 consecutive hex digits of the input (key material).
 */
#include "credential_crypto.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

/* Abort (a finding) when cond is false. */
#define REQUIRE(cond) do { if (!(cond)) abort(); } while (0)

/* One input: parse and check the invariants. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static AosKeyring kr;
	char		err[256] = "";

	if (aos_cus_keyring_parse((const char *) data, size, &kr, err, sizeof(err)))
	{
		REQUIRE(kr.count >= 1 && kr.count <= AOS_KEYRING_MAX);
		for (int i = 0; i < kr.count; i++)
		{
			REQUIRE(kr.entries[i].version >= 1);
			REQUIRE(aos_cus_keyring_find(&kr, kr.entries[i].version) == &kr.entries[i]);
		}
	}
	else
	{
		int			run = 0;

		REQUIRE(kr.count == 0 && err[0] != '\0');
		for (const char *p = err; *p; p++)
		{
			run = isxdigit((unsigned char) *p) ? run + 1 : 0;
			REQUIRE(run < 16);
		}
	}
	return 0;
}
