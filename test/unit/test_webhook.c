/* test_webhook.c: unit tests of Standard Webhooks signing, secrets, backoff, event names, URLs and Slack bodies. */
#include "unit.h"
#include "webhook.h"

#include <stdlib.h>

/* Run every case. */
int
main(void)
{
	uint8_t		key[AOS_WEBHOOK_KEY_MAX];
	size_t		key_len = 0;
	const char *why = NULL;
	char		sig[AOS_WEBHOOK_SIGNATURE_LEN];
	char		secret[AOS_WEBHOOK_SECRET_LEN];
	char		other[AOS_WEBHOOK_SECRET_LEN];
	char	   *body;
	const char *payload = "{\"test\": 2432232314}";

	/* The Standard Webhooks specification's example (its reference libraries test the same vector). */
	CHECK(aos_cus_webhook_secret_decode("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", key, &key_len, &why));
	CHECK(key_len == 24);
	CHECK(aos_cus_webhook_sign(key, key_len, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, payload, strlen(payload), sig));
	CHECK_STR(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
	/* Any change of id, timestamp or body changes the signature. */
	CHECK(aos_cus_webhook_sign(key, key_len, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265331, payload, strlen(payload), sig));
	CHECK(strcmp(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=") != 0);
	CHECK(aos_cus_webhook_sign(key, key_len, "msg_p5jXN8AQM9LWM0D4loKWxJel", 1614265330, payload, strlen(payload), sig));
	CHECK(strcmp(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=") != 0);
	CHECK(aos_cus_webhook_sign(key, key_len, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, payload, strlen(payload) - 1, sig));
	CHECK(strcmp(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=") != 0);

	/* Malformed secrets. */
	CHECK(!aos_cus_webhook_secret_decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", key, &key_len, &why));
	CHECK_STR(why, "it does not start with whsec_");
	CHECK(!aos_cus_webhook_secret_decode("whsec_", key, &key_len, &why));
	CHECK(!aos_cus_webhook_secret_decode("whsec_c2hvcnQ=", key, &key_len, &why));	/* 5 bytes */
	CHECK_STR(why, "its key is not the base64 of 24 to 64 bytes");
	CHECK(!aos_cus_webhook_secret_decode("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS!", key, &key_len, &why));
	CHECK_STR(why, "its key is not standard base64");
	CHECK(!aos_cus_webhook_secret_decode("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwx", key, &key_len, &why));

	/* Generated secrets decode to 32 bytes and differ. */
	CHECK(aos_cus_webhook_secret_generate(secret));
	CHECK(aos_cus_webhook_secret_generate(other));
	CHECK(strncmp(secret, "whsec_", 6) == 0);
	CHECK(strcmp(secret, other) != 0);
	CHECK(aos_cus_webhook_secret_decode(secret, key, &key_len, &why) && key_len == AOS_WEBHOOK_KEY_GENERATED);

	/* Backoff: doubling, capped, equal jitter. */
	CHECK(aos_cus_webhook_backoff_ms(1, 1000, 60000, 0.0) == 500);
	CHECK(aos_cus_webhook_backoff_ms(1, 1000, 60000, 1.0) == 1000);
	CHECK(aos_cus_webhook_backoff_ms(3, 1000, 60000, 1.0) == 4000);
	CHECK(aos_cus_webhook_backoff_ms(3, 1000, 60000, 0.5) == 3000);
	CHECK(aos_cus_webhook_backoff_ms(30, 1000, 60000, 1.0) == 60000);
	CHECK(aos_cus_webhook_backoff_ms(1000000, 1000, 60000, 0.0) == 30000);
	CHECK(aos_cus_webhook_backoff_ms(0, 1000, 60000, 1.0) == 1000);
	CHECK(aos_cus_webhook_backoff_ms(2, 1000, 60000, -3.0) == 1000);
	CHECK(aos_cus_webhook_backoff_ms(2, 1000, 60000, 7.0) == 2000);

	/* Event names. */
	CHECK(aos_cus_webhook_event_known("budget.threshold"));
	CHECK(aos_cus_webhook_event_known("integration.health_changed"));
	CHECK(!aos_cus_webhook_event_known("budget"));
	CHECK(!aos_cus_webhook_event_known("Budget.threshold"));
	CHECK(!aos_cus_webhook_event_known(""));

	/* URLs. */
	CHECK(aos_cus_webhook_url_check("https://hooks.example.com/x?y=1") == NULL);
	CHECK(aos_cus_webhook_url_check("HTTP://127.0.0.1:8080/") == NULL);
	CHECK_STR(aos_cus_webhook_url_check("ftp://example.com/"), "it is not an http:// or https:// URL");
	CHECK_STR(aos_cus_webhook_url_check("file:///etc/passwd"), "it is not an http:// or https:// URL");
	CHECK_STR(aos_cus_webhook_url_check("https:///path"), "it has no host");
	CHECK_STR(aos_cus_webhook_url_check("https://a b/"), "it contains white space or control characters");
	CHECK_STR(aos_cus_webhook_url_check("https://user:pw@example.com/"), "it carries user information (user:password@)");
	CHECK(aos_cus_webhook_url_check("https://example.com/a@b") == NULL);

	/* Slack bodies escape JSON. */
	body = aos_cus_webhook_slack_body("budget \"x\" at 80%\n\\ \x01");
	CHECK_STR(body, "{\"text\": \"budget \\\"x\\\" at 80%\\n\\\\ \\u0001\"}");
	free(body);
	return UNIT_DONE();
}
