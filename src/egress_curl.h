/* egress_curl.h: the egress policy (core/egress.h) applied to every outbound request of the extension (libcurl). */
#ifndef AOS_CUS_EGRESS_CURL_H
#define AOS_CUS_EGRESS_CURL_H

#include "postgres.h"

#include <curl/curl.h>

/* What the policy saw while one request ran; must outlive the easy handle it was applied to. */
typedef struct AosEgressGuard
{
	bool		refused;		/* a connection to a refused address was prevented */
} AosEgressGuard;

/* Register the egress GUCs (aos_cus.egress_allowed_networks, aos_cus.egress_allow_http). */
extern void aos_cus_egress_init(void);

/*
 * Apply the policy to easy, whose URL is url: allowed protocols, no proxy, and
 * a connect-time check of every resolved address (recorded in guard). Returns
 * NULL when the request may go ahead, else a fixed reason it may not.
 */
extern const char *aos_cus_egress_apply(CURL *easy, const char *url, AosEgressGuard *guard);

/*
 * Check a URL before it is stored (webhooks): NULL when the policy would let a
 * request to it go ahead as far as can be told without resolving its host (the
 * scheme; the address when the host is a literal), else a fixed reason.
 */
extern const char *aos_cus_egress_check_url(const char *url);

#endif
