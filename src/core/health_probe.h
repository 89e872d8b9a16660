/*
 * health_probe.h: the pure parts of a provider health probe, without Postgres
 * headers: which URL and headers each provider's cheapest authenticated
 * endpoint needs, and how a transport outcome and HTTP status map to a health
 * state.
 */
#ifndef AOS_CUS_HEALTH_PROBE_H
#define AOS_CUS_HEALTH_PROBE_H

#include <stdbool.h>
#include <stddef.h>

#define AOS_PROBE_URL_MAX 2400
#define AOS_PROBE_HEADER_MAX 1200
#define AOS_PROBE_KEY_MAX 1024
#define AOS_PROBE_ERROR_MAX 200

/* Health states in the order of cus_integrations.health_state's CHECK. */
typedef enum AosHealthState
{
	AOS_HEALTH_UNKNOWN,
	AOS_HEALTH_HEALTHY,
	AOS_HEALTH_DEGRADED,
	AOS_HEALTH_FAILING
} AosHealthState;

/* What happened on the wire, before any HTTP status is looked at. */
typedef enum AosProbeTransport
{
	AOS_PROBE_RESPONSE,			/* an HTTP status line arrived */
	AOS_PROBE_TIMEOUT,			/* connect or total timeout */
	AOS_PROBE_CONNECT_FAILED,	/* connection refused or unreachable */
	AOS_PROBE_DNS_FAILED,		/* host name did not resolve */
	AOS_PROBE_TLS_FAILED,		/* handshake or certificate verification */
	AOS_PROBE_NETWORK_ERROR,	/* reset, empty reply: transient */
	AOS_PROBE_OTHER_ERROR,		/* anything else */
	AOS_PROBE_EGRESS_REFUSED	/* the egress policy refused every address of the target */
} AosProbeTransport;

/* One probe: the URL and the headers, the auth header's value still missing the key. */
typedef struct AosProbeRequest
{
	char		url[AOS_PROBE_URL_MAX];
	const char *auth_name;		/* "Authorization", "api-key", "x-api-key", "x-goog-api-key" */
	const char *auth_prefix;	/* "Bearer " or "" */
	const char *extra_header;	/* a fixed header line ("anthropic-version: ...") or NULL */
} AosProbeRequest;

/* True when the provider has a probe (every provider except aws_bedrock, which needs SigV4). */
bool		aos_cus_probe_supported(const char *provider);

/*
 * Fill req for provider at base_url (NULL: the provider's public endpoint).
 * api_version (Azure) and health_path (custom) may be NULL for the defaults.
 * Returns NULL on success, else a static message naming what is wrong.
 */
const char *aos_cus_probe_build(const char *provider, const char *base_url, const char *api_version,
							const char *health_path, AosProbeRequest *req);

/* Write "<auth_name>: <auth_prefix><key>" into buf; false when the key is empty, too long or not header-safe. */
bool		aos_cus_probe_auth_header(const AosProbeRequest *req, const char *key, char *buf, size_t buflen);

/* Map a libcurl CURLcode to a transport outcome (body_aborted: we stopped reading an oversized body). */
AosProbeTransport aos_cus_probe_transport_from_curl(int curl_code, long http_status);

/* Classify an outcome; writes a short error (never containing any secret) into error, "" when healthy. */
AosHealthState aos_cus_probe_classify(AosProbeTransport transport, long http_status, long elapsed_ms,
								  char *error, size_t errlen);

/* The state's name as stored in health_state; NULL for an out-of-range value. */
const char *aos_cus_health_state_name(AosHealthState state);

#endif
