/* webhook.c: Standard Webhooks signing, secrets, retry backoff, event names and bodies (see webhook.h). */
#include "webhook.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

const char *const aos_cus_webhook_event_names[] = {
	"budget.threshold",
	"tokens.threshold",
	"budget.exhausted",
	"tokens.exhausted",
	"budget.projected_overrun",
	"integration.health_changed",
	NULL
};

/* Decode a secret into key; false, with a fixed reason, when it is malformed. */
bool
aos_cus_webhook_secret_decode(const char *secret, uint8_t *key, size_t *key_len, const char **why)
{
	size_t		prefix = strlen(AOS_WEBHOOK_SECRET_PREFIX);
	size_t		len;
	uint8_t		buf[4 * ((AOS_WEBHOOK_KEY_MAX + 2) / 3)];
	int			n;

	if (strncmp(secret, AOS_WEBHOOK_SECRET_PREFIX, prefix) != 0)
	{
		*why = "it does not start with whsec_";
		return false;
	}
	secret += prefix;
	len = strlen(secret);
	if (len == 0 || len % 4 != 0 || len > sizeof(buf))
	{
		*why = "its key is not the base64 of 24 to 64 bytes";
		return false;
	}
	for (size_t i = 0; i < len; i++)
		if (!(isalnum((unsigned char) secret[i]) || secret[i] == '+' || secret[i] == '/' ||
			  (secret[i] == '=' && i >= len - 2)))
		{
			*why = "its key is not standard base64";
			return false;
		}
	n = EVP_DecodeBlock(buf, (const unsigned char *) secret, (int) len);
	if (n < 0)
	{
		*why = "its key is not standard base64";
		return false;
	}
	/* EVP_DecodeBlock counts padding as zero bytes. */
	n -= (secret[len - 1] == '=') + (secret[len - 2] == '=');
	if (n < AOS_WEBHOOK_KEY_MIN || n > AOS_WEBHOOK_KEY_MAX)
	{
		*why = "its key is not the base64 of 24 to 64 bytes";
		OPENSSL_cleanse(buf, sizeof(buf));
		return false;
	}
	memcpy(key, buf, (size_t) n);
	*key_len = (size_t) n;
	OPENSSL_cleanse(buf, sizeof(buf));
	return true;
}

/* A new random secret into out. */
bool
aos_cus_webhook_secret_generate(char *out)
{
	uint8_t		key[AOS_WEBHOOK_KEY_GENERATED];
	size_t		prefix = strlen(AOS_WEBHOOK_SECRET_PREFIX);

	if (RAND_bytes(key, sizeof(key)) != 1)
		return false;
	memcpy(out, AOS_WEBHOOK_SECRET_PREFIX, prefix);
	EVP_EncodeBlock((unsigned char *) out + prefix, key, sizeof(key));
	OPENSSL_cleanse(key, sizeof(key));
	return true;
}

/* Sign "<msg_id>.<timestamp>.<body>" into out ("v1,<base64>"). */
bool
aos_cus_webhook_sign(const uint8_t *key, size_t key_len, const char *msg_id, int64_t timestamp,
				 const char *body, size_t body_len, char *out)
{
	char		ts[24];
	size_t		id_len = strlen(msg_id);
	size_t		ts_len = (size_t) snprintf(ts, sizeof(ts), ".%lld.", (long long) timestamp);
	size_t		len = id_len + ts_len + body_len;
	uint8_t	   *msg = malloc(len + 1);
	uint8_t		mac[32];
	unsigned int mac_len = 0;
	bool		ok;

	if (msg == NULL)
		return false;
	memcpy(msg, msg_id, id_len);
	memcpy(msg + id_len, ts, ts_len);
	memcpy(msg + id_len + ts_len, body, body_len);
	ok = HMAC(EVP_sha256(), key, (int) key_len, msg, len, mac, &mac_len) != NULL && mac_len == sizeof(mac);
	free(msg);
	if (!ok)
		return false;
	memcpy(out, "v1,", 3);
	EVP_EncodeBlock((unsigned char *) out + 3, mac, sizeof(mac));
	return true;
}

/* base_ms * 2^(attempt-1), capped at max_ms, half of it fixed and half scaled by jitter. */
int64_t
aos_cus_webhook_backoff_ms(int attempt, int64_t base_ms, int64_t max_ms, double jitter)
{
	int64_t		delay = base_ms;

	if (attempt < 1)
		attempt = 1;
	for (int i = 1; i < attempt && delay < max_ms; i++)
		delay *= 2;
	if (delay > max_ms)
		delay = max_ms;
	if (!(jitter >= 0.0))
		jitter = 0.0;
	if (jitter > 1.0)
		jitter = 1.0;
	return delay - delay / 2 + (int64_t) ((double) (delay / 2) * jitter);
}

/* True when name is an event type. */
bool
aos_cus_webhook_event_known(const char *name)
{
	for (int i = 0; aos_cus_webhook_event_names[i] != NULL; i++)
		if (strcmp(name, aos_cus_webhook_event_names[i]) == 0)
			return true;
	return false;
}

/* NULL when url is an http(s) URL with a host, printable and at most AOS_WEBHOOK_URL_MAX bytes. */
const char *
aos_cus_webhook_url_check(const char *url)
{
	size_t		len = strlen(url);
	const char *host;

	if (len > AOS_WEBHOOK_URL_MAX)
		return "it is longer than 2048 bytes";
	for (size_t i = 0; i < len; i++)
		if ((unsigned char) url[i] <= ' ' || url[i] == 0x7f)
			return "it contains white space or control characters";
	if (strncasecmp(url, "https://", 8) == 0)
		host = url + 8;
	else if (strncasecmp(url, "http://", 7) == 0)
		host = url + 7;
	else
		return "it is not an http:// or https:// URL";
	if (*host == '\0' || *host == '/' || *host == '?' || *host == '#' || *host == ':')
		return "it has no host";
	for (const char *p = host; *p != '\0' && *p != '/' && *p != '?' && *p != '#'; p++)
		if (*p == '@')
			return "it carries user information (user:password@)";
	return NULL;
}

/* {"text": "<text>"} with JSON string escaping. */
char *
aos_cus_webhook_slack_body(const char *text)
{
	size_t		len = strlen(text);
	char	   *out = malloc(6 * len + sizeof("{\"text\": \"\"}"));
	char	   *o;

	if (out == NULL)
		return NULL;
	o = out + sprintf(out, "{\"text\": \"");
	for (const unsigned char *p = (const unsigned char *) text; *p != '\0'; p++)
	{
		if (*p == '"' || *p == '\\')
		{
			*o++ = '\\';
			*o++ = (char) *p;
		}
		else if (*p == '\n')
		{
			*o++ = '\\';
			*o++ = 'n';
		}
		else if (*p < 0x20 || *p == 0x7f)
			o += sprintf(o, "\\u%04x", *p);
		else
			*o++ = (char) *p;
	}
	strcpy(o, "\"}");
	return out;
}
