/* policy.h: per-integration call policies (policy.c): model globs, request caps, concurrency. */
#ifndef AOS_CUS_POLICY_H
#define AOS_CUS_POLICY_H

#include "postgres.h"

#include "enforce_math.h"
#include "utils/uuid.h"

/* The policy in force for one integration: its own, else the tenant default (-1: no cap). */
typedef struct AosPolicy
{
	int			nallow;
	int			ndeny;
	char	  **allow;			/* model globs; a model must match one when nallow > 0 */
	char	  **deny;			/* model globs; a match refuses */
	int64		max_cost;		/* estimated cost per request, micro-cents */
	int64		max_tokens;		/* estimated tokens per request */
	int64		max_concurrent;	/* in-flight calls (live reservations) */
} AosPolicy;

/*
 * The policy of (tenant, integration), cached in this backend for limits
 * version; read with a fresh snapshot on a miss. Never NULL (no policy: no caps).
 */
extern const AosPolicy *aos_cus_policy_for(const pg_uuid_t *tenant, const pg_uuid_t *integration, uint64 version);

/* Model and request caps of a policy for one call: a refusal reason, or AOS_REASON_OK. */
extern AosReason aos_cus_policy_verdict(const AosPolicy *p, const char *model, int64 est_cost, int64 est_tokens);

#endif
