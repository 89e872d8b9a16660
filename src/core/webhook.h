/*
 * webhook.h: Standard Webhooks signing, secrets, retry backoff, event names and
 * bodies, without Postgres headers (OpenSSL for HMAC and randomness).
 *
 * A secret is "whsec_" followed by the standard base64 of 24 to 64 random
 * bytes; the signature of a message is "v1," and the base64 of
 * HMAC-SHA256(key, "<webhook-id>.<webhook-timestamp>.<body>").
 */
#ifndef AOS_CUS_WEBHOOK_H
#define AOS_CUS_WEBHOOK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AOS_WEBHOOK_SECRET_PREFIX "whsec_"
#define AOS_WEBHOOK_KEY_MIN 24
#define AOS_WEBHOOK_KEY_MAX 64
/* Bytes of a generated key. */
#define AOS_WEBHOOK_KEY_GENERATED 32
/* Largest secret text, NUL included: prefix + base64 of AOS_WEBHOOK_KEY_MAX bytes. */
#define AOS_WEBHOOK_SECRET_LEN (6 + 4 * ((AOS_WEBHOOK_KEY_MAX + 2) / 3) + 1)
/* Signature header value, NUL included: "v1," + base64 of 32 bytes. */
#define AOS_WEBHOOK_SIGNATURE_LEN (3 + 44 + 1)
/* Longest URL a webhook may have. */
#define AOS_WEBHOOK_URL_MAX 2048

/* Decode a secret into key (AOS_WEBHOOK_KEY_MAX bytes); false, with a fixed reason, when it is malformed. */
bool		aos_cus_webhook_secret_decode(const char *secret, uint8_t *key, size_t *key_len, const char **why);

/* A new random secret into out (AOS_WEBHOOK_SECRET_LEN bytes); false on an OpenSSL failure. */
bool		aos_cus_webhook_secret_generate(char *out);

/* Sign one message into out (AOS_WEBHOOK_SIGNATURE_LEN bytes); false on an OpenSSL failure. */
bool		aos_cus_webhook_sign(const uint8_t *key, size_t key_len, const char *msg_id, int64_t timestamp,
							 const char *body, size_t body_len, char *out);

/*
 * Delay before retry number attempt (1 = after the first failure): base_ms
 * doubled per attempt, capped at max_ms, with "equal jitter" (half fixed, half
 * scaled by jitter in [0, 1]).
 */
int64_t		aos_cus_webhook_backoff_ms(int attempt, int64_t base_ms, int64_t max_ms, double jitter);

/* True when name is an event type webhooks deliver. */
bool		aos_cus_webhook_event_known(const char *name);

/* The event types, NULL-terminated. */
extern const char *const aos_cus_webhook_event_names[];

/* NULL when url may be a webhook's (http:// or https://, a host, printable, not too long), else why not. */
const char *aos_cus_webhook_url_check(const char *url);

/* A Slack-compatible body {"text": "<text escaped>"} (malloc'd, NUL-terminated), or NULL when out of memory. */
char	   *aos_cus_webhook_slack_body(const char *text);

#endif
