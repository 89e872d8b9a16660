/*
 * egress_curl.c: the egress policy of outbound requests (health probes; webhooks
 * later), applied to libcurl handles.
 *
 * Every connection's resolved address is checked in CURLOPT_OPENSOCKETFUNCTION,
 * so a host name that resolves (or re-resolves, DNS rebinding) to a refused
 * address never gets a socket: no byte, key included, reaches it. Loopback,
 * link-local, private, unspecified and reserved addresses are refused unless
 * aos_cus.egress_allowed_networks lists them; only https is spoken unless
 * aos_cus.egress_allow_http is on; proxies from the environment are ignored
 * (a proxy would connect to the target past the check), and no connection is
 * reused (a pooled one may have been checked under an older policy). Both settings are
 * superuser-only; the health worker reads them from the configuration files.
 */
#include "postgres.h"

#include "egress.h"
#include "egress_curl.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "utils/guc.h"

static char *allowed_networks_setting = NULL;
static const AosNetList *allowed_networks = NULL;
static bool allow_http = false;

/* GUC check hook: the allow-list must parse; the parsed list becomes the setting's extra. */
static bool
check_allowed_networks(char **newval, void **extra, GucSource source)
{
	/* GUC extra data is malloc'd: guc.c frees it with free(). */
	AosNetList *list = malloc(sizeof(AosNetList));
	const char *why;

	if (list == NULL)
		return false;
	if (!aos_cus_netlist_parse(*newval != NULL ? *newval : "", list, &why))
	{
		GUC_check_errdetail("aos_cus.egress_allowed_networks: %s.", why);
		GUC_check_errhint("List networks in CIDR form separated by commas, such as '127.0.0.1/32, fd00::/8'.");
		free(list);
		return false;
	}
	*extra = list;
	return true;
}

/* GUC assign hook: use the parsed list. */
static void
assign_allowed_networks(const char *newval, void *extra)
{
	allowed_networks = (const AosNetList *) extra;
}

/* Register the egress GUCs (superuser-only; the networks, which map the inside, are hidden from others). */
void
aos_cus_egress_init(void)
{
	DefineCustomStringVariable("aos_cus.egress_allowed_networks",
							   "Networks (CIDR) outbound requests may reach although the egress policy refuses them by default (loopback, link-local, private, unspecified, reserved).",
							   NULL,
							   &allowed_networks_setting,
							   "",
							   PGC_SUSET,
							   GUC_SUPERUSER_ONLY,
							   check_allowed_networks, assign_allowed_networks, NULL);
	DefineCustomBoolVariable("aos_cus.egress_allow_http",
							 "Let outbound requests use plain http (default: https only).",
							 NULL,
							 &allow_http,
							 false,
							 PGC_SUSET,
							 0,
							 NULL, NULL, NULL);
}

/* CURLOPT_OPENSOCKETFUNCTION: a socket only for an address the policy allows. */
static curl_socket_t
open_allowed_socket(void *clientp, curlsocktype purpose, struct curl_sockaddr *address)
{
	AosEgressGuard *guard = (AosEgressGuard *) clientp;
	bool		ok = false;

	if (purpose == CURLSOCKTYPE_IPCXN && address->family == AF_INET &&
		address->addrlen >= sizeof(struct sockaddr_in))
		ok = aos_cus_egress_address_allowed(allowed_networks, AOS_AF_INET4,
										(const uint8_t *) &((struct sockaddr_in *) &address->addr)->sin_addr);
	else if (purpose == CURLSOCKTYPE_IPCXN && address->family == AF_INET6 &&
			 address->addrlen >= sizeof(struct sockaddr_in6))
		ok = aos_cus_egress_address_allowed(allowed_networks, AOS_AF_INET6,
										(const uint8_t *) &((struct sockaddr_in6 *) &address->addr)->sin6_addr);
	if (!ok)
	{
		guard->refused = true;
		return CURL_SOCKET_BAD;
	}
	return socket(address->family, address->socktype, address->protocol);
}

/* Apply the policy to easy; NULL when the request may go ahead. */
const char *
aos_cus_egress_apply(CURL *easy, const char *url, AosEgressGuard *guard)
{
	const char *why = aos_cus_egress_check_scheme(url, allow_http);
	const char *protocols = allow_http ? "http,https" : "https";

	guard->refused = false;
	if (why != NULL)
		return why;
	curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, protocols);
	curl_easy_setopt(easy, CURLOPT_REDIR_PROTOCOLS_STR, protocols);
	curl_easy_setopt(easy, CURLOPT_PROXY, "");
	/* A fresh, checked connection each time: a pooled one may predate a change of the policy. */
	curl_easy_setopt(easy, CURLOPT_FRESH_CONNECT, 1L);
	curl_easy_setopt(easy, CURLOPT_FORBID_REUSE, 1L);
	curl_easy_setopt(easy, CURLOPT_OPENSOCKETFUNCTION, open_allowed_socket);
	curl_easy_setopt(easy, CURLOPT_OPENSOCKETDATA, guard);
	return NULL;
}

/* Check a URL as far as possible without connecting: its scheme, and its host when that is an address literal. */
const char *
aos_cus_egress_check_url(const char *url)
{
	const char *why = aos_cus_egress_check_scheme(url, allow_http);
	CURLU	   *u;
	char	   *host = NULL;
	uint8_t		addr[16];

	if (why != NULL)
		return why;
	u = curl_url();
	if (u == NULL)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
		curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK)
		why = "the URL does not parse";
	else
	{
		char	   *h = host;
		size_t		len = strlen(h);

		if (len > 2 && h[0] == '[' && h[len - 1] == ']')
		{
			h[len - 1] = '\0';
			h++;
		}
		if (inet_pton(AF_INET, h, addr) == 1 &&
			!aos_cus_egress_address_allowed(allowed_networks, AOS_AF_INET4, addr))
			why = AOS_EGRESS_REFUSED_ERROR;
		else if (inet_pton(AF_INET6, h, addr) == 1 &&
				 !aos_cus_egress_address_allowed(allowed_networks, AOS_AF_INET6, addr))
			why = AOS_EGRESS_REFUSED_ERROR;
	}
	curl_free(host);
	curl_url_cleanup(u);
	return why;
}
