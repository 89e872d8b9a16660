/*
 * health_probe.c: provider probe URLs and headers, outcome classification and
 * secret scrubbing. Pure C: the fmgr glue and the worker drive libcurl with
 * what these functions build (only libcurl's error code constants are used here).
 */
#include "health_probe.h"
#include "egress.h"

#include <curl/curl.h>
#include <stdio.h>
#include <string.h>

/* How one provider is probed: its public base URL, list-models path and auth header. */
typedef struct ProviderProbe
{
	const char *provider;
	const char *default_base;	/* NULL: base_url is required */
	const char *path;			/* NULL: health_path from the config (custom) */
	const char *auth_name;
	const char *auth_prefix;
	const char *extra_header;
} ProviderProbe;

static const ProviderProbe probes[] = {
	{"openai", "https://api.openai.com", "/v1/models", "Authorization", "Bearer ", NULL},
	{"azure_openai", NULL, "/openai/models", "api-key", "", NULL},
	{"anthropic", "https://api.anthropic.com", "/v1/models", "x-api-key", "", "anthropic-version: 2023-06-01"},
	{"google", "https://generativelanguage.googleapis.com", "/v1beta/models", "x-goog-api-key", "", NULL},
	{"mistral", "https://api.mistral.ai", "/v1/models", "Authorization", "Bearer ", NULL},
	{"custom", NULL, NULL, "Authorization", "Bearer ", NULL},
};

#define AZURE_DEFAULT_API_VERSION "2024-10-21"
#define CUSTOM_DEFAULT_PATH "/v1/models"

/* True when every byte of s is in the allowed set (s non-empty). */
static bool
only_chars(const char *s, const char *allowed)
{
	return s[0] != '\0' && strspn(s, allowed) == strlen(s);
}

/* Length of base without trailing slashes, minus a final segment equal to path's first one ("/v1"). */
static size_t
joined_base_len(const char *base, const char *path)
{
	size_t		len = strlen(base);
	const char *seg_end;
	size_t		seg_len;

	while (len > 0 && base[len - 1] == '/')
		len--;
	seg_end = strchr(path + 1, '/');
	seg_len = seg_end ? (size_t) (seg_end - path) : strlen(path);
	if (seg_end != NULL && len >= seg_len && strncmp(base + len - seg_len, path, seg_len) == 0)
		len -= seg_len;
	return len;
}

/* True when a probe exists for the provider. */
bool
aos_cus_probe_supported(const char *provider)
{
	for (size_t i = 0; provider != NULL && i < sizeof(probes) / sizeof(probes[0]); i++)
		if (strcmp(probes[i].provider, provider) == 0)
			return true;
	return false;
}

/* Fill req for provider at base_url; NULL on success, else why not. */
const char *
aos_cus_probe_build(const char *provider, const char *base_url, const char *api_version,
				const char *health_path, AosProbeRequest *req)
{
	const ProviderProbe *p = NULL;
	const char *base;
	const char *path;
	const char *scheme_end;
	size_t		base_len;
	int			n;

	if (provider == NULL)
		return "provider is missing";
	for (size_t i = 0; i < sizeof(probes) / sizeof(probes[0]); i++)
		if (strcmp(probes[i].provider, provider) == 0)
			p = &probes[i];
	if (p == NULL)
		return "no health probe exists for this provider";

	base = base_url != NULL ? base_url : p->default_base;
	if (base == NULL)
		return "base_url is required for this provider";
	if (strncmp(base, "http://", 7) != 0 && strncmp(base, "https://", 8) != 0)
		return "base_url must start with http:// or https://";
	scheme_end = strstr(base, "://") + 3;
	if (*scheme_end == '\0' || *scheme_end == '/')
		return "base_url has no host";
	if (strpbrk(base, "?# \t\r\n@") != NULL)
		return "base_url must not contain a query, fragment, user info or whitespace";

	path = p->path != NULL ? p->path : (health_path != NULL ? health_path : CUSTOM_DEFAULT_PATH);
	if (path[0] != '/' || strlen(path) > 512 ||
		!only_chars(path, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/-._~"))
		return "health_path must start with / and hold only letters, digits and /-._~";
	if (api_version == NULL)
		api_version = AZURE_DEFAULT_API_VERSION;
	if (strlen(api_version) > 64 ||
		!only_chars(api_version, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._"))
		return "api_version must hold only letters, digits and -._";

	base_len = joined_base_len(base, path);
	if (strcmp(p->provider, "azure_openai") == 0)
		n = snprintf(req->url, sizeof(req->url), "%.*s%s?api-version=%s", (int) base_len, base, path, api_version);
	else
		n = snprintf(req->url, sizeof(req->url), "%.*s%s", (int) base_len, base, path);
	if (n < 0 || (size_t) n >= sizeof(req->url))
		return "base_url is too long";
	req->auth_name = p->auth_name;
	req->auth_prefix = p->auth_prefix;
	req->extra_header = p->extra_header;
	return NULL;
}

/* Write the auth header line; false for an empty, oversized or non-printable key. */
bool
aos_cus_probe_auth_header(const AosProbeRequest *req, const char *key, char *buf, size_t buflen)
{
	size_t		len;
	int			n;

	if (key == NULL || key[0] == '\0')
		return false;
	len = strlen(key);
	if (len > AOS_PROBE_KEY_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char) key[i] < 0x21 || (unsigned char) key[i] > 0x7e)
			return false;
	n = snprintf(buf, buflen, "%s: %s%s", req->auth_name, req->auth_prefix, key);
	if (n < 0 || (size_t) n >= buflen)
	{
		memset(buf, 0, buflen);
		return false;
	}
	return true;
}

/* Map a CURLcode to a transport outcome. */
AosProbeTransport
aos_cus_probe_transport_from_curl(int curl_code, long http_status)
{
	switch (curl_code)
	{
		case CURLE_OK:
			return AOS_PROBE_RESPONSE;
		case CURLE_WRITE_ERROR:
			/* we stop reading a body past its bound; the status line already arrived */
			return http_status > 0 ? AOS_PROBE_RESPONSE : AOS_PROBE_OTHER_ERROR;
		case CURLE_OPERATION_TIMEDOUT:
			return AOS_PROBE_TIMEOUT;
		case CURLE_COULDNT_CONNECT:
			return AOS_PROBE_CONNECT_FAILED;
		case CURLE_COULDNT_RESOLVE_HOST:
		case CURLE_COULDNT_RESOLVE_PROXY:
			return AOS_PROBE_DNS_FAILED;
		case CURLE_SSL_CONNECT_ERROR:
		case CURLE_PEER_FAILED_VERIFICATION:
		case CURLE_SSL_CERTPROBLEM:
		case CURLE_SSL_CIPHER:
		case CURLE_SSL_CACERT_BADFILE:
		case CURLE_SSL_ISSUER_ERROR:
		case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
		case CURLE_SSL_INVALIDCERTSTATUS:
			return AOS_PROBE_TLS_FAILED;
		case CURLE_GOT_NOTHING:
		case CURLE_RECV_ERROR:
		case CURLE_SEND_ERROR:
		case CURLE_PARTIAL_FILE:
		case CURLE_HTTP2:
		case CURLE_HTTP2_STREAM:
			return AOS_PROBE_NETWORK_ERROR;
		default:
			return AOS_PROBE_OTHER_ERROR;
	}
}

/* Classify by transport, then by HTTP status; the error text is built only from numbers and fixed words. */
AosHealthState
aos_cus_probe_classify(AosProbeTransport transport, long http_status, long elapsed_ms,
				   char *error, size_t errlen)
{
	switch (transport)
	{
		case AOS_PROBE_RESPONSE:
			break;
		case AOS_PROBE_TIMEOUT:
			snprintf(error, errlen, "timed out after %ld ms", elapsed_ms);
			return AOS_HEALTH_DEGRADED;
		case AOS_PROBE_CONNECT_FAILED:
			snprintf(error, errlen, "could not connect (connection refused or unreachable)");
			return AOS_HEALTH_FAILING;
		case AOS_PROBE_DNS_FAILED:
			snprintf(error, errlen, "could not resolve host name");
			return AOS_HEALTH_FAILING;
		case AOS_PROBE_TLS_FAILED:
			snprintf(error, errlen, "TLS handshake or certificate verification failed");
			return AOS_HEALTH_FAILING;
		case AOS_PROBE_NETWORK_ERROR:
			snprintf(error, errlen, "connection broke off before a complete response");
			return AOS_HEALTH_DEGRADED;
		case AOS_PROBE_OTHER_ERROR:
			snprintf(error, errlen, "probe failed before an HTTP response");
			return AOS_HEALTH_FAILING;
		case AOS_PROBE_EGRESS_REFUSED:
			snprintf(error, errlen, "%s", AOS_EGRESS_REFUSED_ERROR);
			return AOS_HEALTH_FAILING;
	}

	if (http_status >= 200 && http_status <= 299)
	{
		if (errlen > 0)
			error[0] = '\0';
		return AOS_HEALTH_HEALTHY;
	}
	if (http_status == 401 || http_status == 403)
	{
		snprintf(error, errlen, "HTTP %ld: credential rejected", http_status);
		return AOS_HEALTH_FAILING;
	}
	if (http_status == 429)
	{
		snprintf(error, errlen, "HTTP 429: rate limited");
		return AOS_HEALTH_DEGRADED;
	}
	if (http_status == 408 || (http_status >= 500 && http_status <= 599))
	{
		snprintf(error, errlen, "HTTP %ld: provider error", http_status);
		return AOS_HEALTH_DEGRADED;
	}
	if (http_status >= 300 && http_status <= 399)
	{
		snprintf(error, errlen, "HTTP %ld: redirect not followed (check base_url)", http_status);
		return AOS_HEALTH_FAILING;
	}
	snprintf(error, errlen, "HTTP %ld: unexpected status (check base_url)", http_status);
	return AOS_HEALTH_FAILING;
}

static const char *const state_names[] = {"unknown", "healthy", "degraded", "failing"};

/* The state's stored name. */
const char *
aos_cus_health_state_name(AosHealthState state)
{
	if ((int) state < 0 || (int) state > AOS_HEALTH_FAILING)
		return NULL;
	return state_names[state];
}
