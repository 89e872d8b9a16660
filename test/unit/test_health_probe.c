/* test_health_probe.c: unit tests of probe URLs, auth headers and classification. */
#include "unit.h"
#include "health_probe.h"

#include <curl/curl.h>

/* URLs and headers per provider, including base_url normalization and refusals. */
static void
test_build(void)
{
	AosProbeRequest r;
	char		hdr[AOS_PROBE_HEADER_MAX];
	char		longkey[AOS_PROBE_KEY_MAX + 2];

	CHECK(aos_cus_probe_build("openai", NULL, NULL, NULL, &r) == NULL);
	CHECK_STR(r.url, "https://api.openai.com/v1/models");
	CHECK(aos_cus_probe_auth_header(&r, "sk-abc", hdr, sizeof(hdr)));
	CHECK_STR(hdr, "Authorization: Bearer sk-abc");
	CHECK(r.extra_header == NULL);

	/* an SDK-style base_url ending in /v1 is not doubled; trailing slashes go */
	CHECK(aos_cus_probe_build("openai", "http://127.0.0.1:8080/v1/", NULL, NULL, &r) == NULL);
	CHECK_STR(r.url, "http://127.0.0.1:8080/v1/models");
	CHECK(aos_cus_probe_build("openai", "http://127.0.0.1:8080", NULL, NULL, &r) == NULL);
	CHECK_STR(r.url, "http://127.0.0.1:8080/v1/models");
	CHECK(aos_cus_probe_build("openai", "https://proxy.example/openai-v1", NULL, NULL, &r) == NULL);
	CHECK_STR(r.url, "https://proxy.example/openai-v1/v1/models");

	CHECK(aos_cus_probe_build("anthropic", NULL, NULL, NULL, &r) == NULL);
	CHECK_STR(r.url, "https://api.anthropic.com/v1/models");
	CHECK(aos_cus_probe_auth_header(&r, "sk-ant-x", hdr, sizeof(hdr)));
	CHECK_STR(hdr, "x-api-key: sk-ant-x");
	CHECK_STR(r.extra_header, "anthropic-version: 2023-06-01");

	CHECK(aos_cus_probe_build("google", NULL, NULL, NULL, &r) == NULL);
	CHECK_STR(r.url, "https://generativelanguage.googleapis.com/v1beta/models");
	CHECK(aos_cus_probe_auth_header(&r, "AIzaX", hdr, sizeof(hdr)));
	CHECK_STR(hdr, "x-goog-api-key: AIzaX");

	CHECK(aos_cus_probe_build("azure_openai", NULL, NULL, NULL, &r) != NULL);
	CHECK(aos_cus_probe_build("azure_openai", "https://res.openai.azure.com", NULL, NULL, &r) == NULL);
	CHECK_STR(r.url, "https://res.openai.azure.com/openai/models?api-version=2024-10-21");
	CHECK(aos_cus_probe_build("azure_openai", "https://res.openai.azure.com/openai", "2024-06-01", NULL, &r) == NULL);
	CHECK_STR(r.url, "https://res.openai.azure.com/openai/models?api-version=2024-06-01");
	CHECK(aos_cus_probe_auth_header(&r, "k123", hdr, sizeof(hdr)));
	CHECK_STR(hdr, "api-key: k123");
	CHECK(aos_cus_probe_build("azure_openai", "https://r.example", "x&y=1", NULL, &r) != NULL);

	CHECK(aos_cus_probe_build("mistral", NULL, NULL, NULL, &r) == NULL);
	CHECK_STR(r.url, "https://api.mistral.ai/v1/models");
	CHECK(aos_cus_probe_build("custom", NULL, NULL, NULL, &r) != NULL);
	CHECK(aos_cus_probe_build("custom", "http://h:1", NULL, NULL, &r) == NULL);
	CHECK_STR(r.url, "http://h:1/v1/models");
	CHECK(aos_cus_probe_build("custom", "http://h:1/api", NULL, "/api/health", &r) == NULL);
	CHECK_STR(r.url, "http://h:1/api/health");
	CHECK(aos_cus_probe_build("custom", "http://h:1", NULL, "health", &r) != NULL);
	CHECK(aos_cus_probe_build("custom", "http://h:1", NULL, "/a b", &r) != NULL);
	CHECK(aos_cus_probe_build("custom", "http://h:1", NULL, "/a?x=1", &r) != NULL);

	CHECK(aos_cus_probe_supported("google") && aos_cus_probe_supported("custom"));
	CHECK(!aos_cus_probe_supported("aws_bedrock") && !aos_cus_probe_supported(NULL) && !aos_cus_probe_supported("x"));
	CHECK(aos_cus_probe_build("aws_bedrock", NULL, NULL, NULL, &r) != NULL);
	CHECK(aos_cus_probe_build("nope", NULL, NULL, NULL, &r) != NULL);
	CHECK(aos_cus_probe_build(NULL, NULL, NULL, NULL, &r) != NULL);
	CHECK(aos_cus_probe_build("openai", "ftp://x", NULL, NULL, &r) != NULL);
	CHECK(aos_cus_probe_build("openai", "http://", NULL, NULL, &r) != NULL);
	CHECK(aos_cus_probe_build("openai", "http://u:p@h", NULL, NULL, &r) != NULL);
	CHECK(aos_cus_probe_build("openai", "http://h/?q=1", NULL, NULL, &r) != NULL);

	/* keys that would break the header line are refused, never sent */
	CHECK(aos_cus_probe_build("openai", NULL, NULL, NULL, &r) == NULL);
	CHECK(!aos_cus_probe_auth_header(&r, "", hdr, sizeof(hdr)));
	CHECK(!aos_cus_probe_auth_header(&r, NULL, hdr, sizeof(hdr)));
	CHECK(!aos_cus_probe_auth_header(&r, "sk-a\r\nX-Evil: 1", hdr, sizeof(hdr)));
	CHECK(!aos_cus_probe_auth_header(&r, "sk a", hdr, sizeof(hdr)));
	memset(longkey, 'k', sizeof(longkey) - 1);
	longkey[sizeof(longkey) - 1] = '\0';
	CHECK(!aos_cus_probe_auth_header(&r, longkey, hdr, sizeof(hdr)));
	CHECK(!aos_cus_probe_auth_header(&r, "sk-abcdef", hdr, 10));
}

/* Each transport outcome and status class lands in the right state with a short error. */
static void
test_classify(void)
{
	char		e[AOS_PROBE_ERROR_MAX];

	CHECK(aos_cus_probe_classify(AOS_PROBE_RESPONSE, 200, 5, e, sizeof(e)) == AOS_HEALTH_HEALTHY);
	CHECK_STR(e, "");
	CHECK(aos_cus_probe_classify(AOS_PROBE_EGRESS_REFUSED, 0, 0, e, sizeof(e)) == AOS_HEALTH_FAILING);
	CHECK_STR(e, "egress refused: the target address is not allowed by the egress policy");
	CHECK(aos_cus_probe_classify(AOS_PROBE_RESPONSE, 204, 5, e, sizeof(e)) == AOS_HEALTH_HEALTHY);
	CHECK(aos_cus_probe_classify(AOS_PROBE_RESPONSE, 401, 5, e, sizeof(e)) == AOS_HEALTH_FAILING);
	CHECK_STR(e, "HTTP 401: credential rejected");
	CHECK(aos_cus_probe_classify(AOS_PROBE_RESPONSE, 403, 5, e, sizeof(e)) == AOS_HEALTH_FAILING);
	CHECK(aos_cus_probe_classify(AOS_PROBE_RESPONSE, 429, 5, e, sizeof(e)) == AOS_HEALTH_DEGRADED);
	CHECK_STR(e, "HTTP 429: rate limited");
	CHECK(aos_cus_probe_classify(AOS_PROBE_RESPONSE, 500, 5, e, sizeof(e)) == AOS_HEALTH_DEGRADED);
	CHECK(aos_cus_probe_classify(AOS_PROBE_RESPONSE, 503, 5, e, sizeof(e)) == AOS_HEALTH_DEGRADED);
	CHECK(aos_cus_probe_classify(AOS_PROBE_RESPONSE, 408, 5, e, sizeof(e)) == AOS_HEALTH_DEGRADED);
	CHECK(aos_cus_probe_classify(AOS_PROBE_RESPONSE, 302, 5, e, sizeof(e)) == AOS_HEALTH_FAILING);
	CHECK(aos_cus_probe_classify(AOS_PROBE_RESPONSE, 404, 5, e, sizeof(e)) == AOS_HEALTH_FAILING);
	CHECK(aos_cus_probe_classify(AOS_PROBE_RESPONSE, 100, 5, e, sizeof(e)) == AOS_HEALTH_FAILING);
	CHECK(aos_cus_probe_classify(AOS_PROBE_TIMEOUT, 0, 2001, e, sizeof(e)) == AOS_HEALTH_DEGRADED);
	CHECK_STR(e, "timed out after 2001 ms");
	CHECK(aos_cus_probe_classify(AOS_PROBE_CONNECT_FAILED, 0, 1, e, sizeof(e)) == AOS_HEALTH_FAILING);
	CHECK(aos_cus_probe_classify(AOS_PROBE_DNS_FAILED, 0, 1, e, sizeof(e)) == AOS_HEALTH_FAILING);
	CHECK(aos_cus_probe_classify(AOS_PROBE_TLS_FAILED, 0, 1, e, sizeof(e)) == AOS_HEALTH_FAILING);
	CHECK(aos_cus_probe_classify(AOS_PROBE_NETWORK_ERROR, 0, 1, e, sizeof(e)) == AOS_HEALTH_DEGRADED);
	CHECK(aos_cus_probe_classify(AOS_PROBE_OTHER_ERROR, 0, 1, e, sizeof(e)) == AOS_HEALTH_FAILING);
	/* a tiny buffer truncates, never overflows */
	CHECK(aos_cus_probe_classify(AOS_PROBE_RESPONSE, 401, 5, e, 5) == AOS_HEALTH_FAILING);
	CHECK_STR(e, "HTTP");

	CHECK(aos_cus_probe_transport_from_curl(CURLE_OK, 200) == AOS_PROBE_RESPONSE);
	CHECK(aos_cus_probe_transport_from_curl(CURLE_WRITE_ERROR, 200) == AOS_PROBE_RESPONSE);
	CHECK(aos_cus_probe_transport_from_curl(CURLE_WRITE_ERROR, 0) == AOS_PROBE_OTHER_ERROR);
	CHECK(aos_cus_probe_transport_from_curl(CURLE_OPERATION_TIMEDOUT, 0) == AOS_PROBE_TIMEOUT);
	CHECK(aos_cus_probe_transport_from_curl(CURLE_COULDNT_CONNECT, 0) == AOS_PROBE_CONNECT_FAILED);
	CHECK(aos_cus_probe_transport_from_curl(CURLE_COULDNT_RESOLVE_HOST, 0) == AOS_PROBE_DNS_FAILED);
	CHECK(aos_cus_probe_transport_from_curl(CURLE_PEER_FAILED_VERIFICATION, 0) == AOS_PROBE_TLS_FAILED);
	CHECK(aos_cus_probe_transport_from_curl(CURLE_GOT_NOTHING, 0) == AOS_PROBE_NETWORK_ERROR);
	CHECK(aos_cus_probe_transport_from_curl(CURLE_UNSUPPORTED_PROTOCOL, 0) == AOS_PROBE_OTHER_ERROR);
}

/* State names match health_state's CHECK; out-of-range values have none. */
static void
test_names(void)
{
	CHECK_STR(aos_cus_health_state_name(AOS_HEALTH_UNKNOWN), "unknown");
	CHECK_STR(aos_cus_health_state_name(AOS_HEALTH_HEALTHY), "healthy");
	CHECK_STR(aos_cus_health_state_name(AOS_HEALTH_DEGRADED), "degraded");
	CHECK_STR(aos_cus_health_state_name(AOS_HEALTH_FAILING), "failing");
	CHECK(aos_cus_health_state_name((AosHealthState) 9) == NULL);
}

/* Run every health probe case. */
int
main(void)
{
	test_build();
	test_classify();
	test_names();
	return UNIT_DONE();
}
