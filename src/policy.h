/* policy.h: per-integration call policies (policy.c): model globs, request caps, concurrency. */
#ifndef AOS_CUS_POLICY_H
#define AOS_CUS_POLICY_H

#include "postgres.h"

#include "enforce_math.h"
#include "vocab.h"
#include "utils/uuid.h"

/* What an unpriced model (no price in force) costs: policy key unpriced. */
typedef enum AosUnpriced
{
	AOS_UNPRICED_BLOCK,			/* check() naming it blocks (unpriced_model); ingest charges nothing */
	AOS_UNPRICED_FALLBACK,		/* charged at the policy's fallback prices */
	AOS_UNPRICED_ALLOW			/* admitted, charged nothing */
} AosUnpriced;

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
	AosUnpriced unpriced;
	int64		fallback_input;	/* micro-cents per 1M tokens (AOS_UNPRICED_FALLBACK only) */
	int64		fallback_output;
	int			provider;		/* the integration's AosProvider, -1 when it is not found */
} AosPolicy;

/*
 * The policy of (tenant, integration), cached in this backend for limits
 * version; read with a fresh snapshot on a miss. Never NULL (no policy: no caps).
 */
extern const AosPolicy *aos_cus_policy_for(const pg_uuid_t *tenant, const pg_uuid_t *integration, uint64 version);

/*
 * Model, unpriced model and request caps of a policy for one call: a refusal
 * reason, or AOS_REASON_OK. May read prices: call it before taking a lock.
 */
extern AosReason aos_cus_policy_verdict(const AosPolicy *p, const char *model, int64 est_cost, int64 est_tokens);

/*
 * check()'s estimate when none is given but a model is: estimated_tokens
 * priced as output tokens at the model's price in force, or for an unpriced
 * model at the fallback output price (fallback_price), else 0. May read prices.
 */
extern int64 aos_cus_policy_estimate(const AosPolicy *p, const char *model, int64 est_tokens);

/*
 * The cost of an unpriced usage row of (tenant, integration) by its policy's
 * rule: true with *cost at the fallback prices under fallback_price, false
 * (no cost) otherwise. Reads the policy afresh (unpriced rows are rare).
 */
extern bool aos_cus_unpriced_cost(const pg_uuid_t *tenant, const pg_uuid_t *integration,
								  const AosTokens *tokens, int64 *cost);

#endif
