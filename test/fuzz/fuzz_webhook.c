/*
 * fuzz_webhook.c: libFuzzer target for the webhook secret decoder, the URL check and the Slack body.
 * A decoded key is 24 to 64 bytes and signs; a refused input has a reason; the Slack body is JSON whose
 * string holds no raw control character or unescaped quote; no input may crash or read out of bounds.
 */
#include "webhook.h"

#include <stdlib.h>
#include <string.h>

/* Abort (a finding) when cond is false. */
#define REQUIRE(cond) do { if (!(cond)) abort(); } while (0)

/* One input, as a NUL-terminated text: decode it as a secret, check it as a URL, wrap it as Slack text. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char	   *text = malloc(size + 1);
	uint8_t		key[AOS_WEBHOOK_KEY_MAX];
	size_t		key_len = 0;
	const char *why = NULL;
	char		sig[AOS_WEBHOOK_SIGNATURE_LEN];
	char	   *body;

	memcpy(text, data, size);
	text[size] = '\0';
	if (aos_cus_webhook_secret_decode(text, key, &key_len, &why))
	{
		REQUIRE(key_len >= AOS_WEBHOOK_KEY_MIN && key_len <= AOS_WEBHOOK_KEY_MAX);
		REQUIRE(aos_cus_webhook_sign(key, key_len, "msg", 1, text, strlen(text), sig));
		REQUIRE(strncmp(sig, "v1,", 3) == 0 && strlen(sig) == AOS_WEBHOOK_SIGNATURE_LEN - 1);
	}
	else
		REQUIRE(why != NULL);
	why = aos_cus_webhook_url_check(text);
	REQUIRE(why != NULL || strncasecmp(text, "http", 4) == 0);
	body = aos_cus_webhook_slack_body(text);
	REQUIRE(body != NULL && strncmp(body, "{\"text\": \"", 10) == 0);
	for (const char *p = body + 10; p[2] != '\0'; p++)
	{
		REQUIRE((unsigned char) *p >= 0x20);
		if (*p == '\\')
			p++;
		else
			REQUIRE(*p != '"');
	}
	free(body);
	free(text);
	return 0;
}
