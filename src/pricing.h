/* pricing.h: the pricing engine's C API for other modules (ingest, enforcement). */
#ifndef AOS_CUS_PRICING_H
#define AOS_CUS_PRICING_H

#include "postgres.h"

#include "vocab.h"
#include "datatype/timestamp.h"
#include "utils/jsonb.h"

/*
 * Price one call with the cus_model_prices row in force at `at` for the
 * provider, model (resolved as resolve_model() documents) and service tier.
 * Returns false when no price is known for the model at that time. Raises
 * 22023 for an unknown provider or tier, an empty or over-long model, or
 * invalid tokens (negative, reasoning > output), and 22003 on overflow.
 * Uses the per-backend price cache: cheap enough to call once per row.
 */
extern bool aos_cus_price_call(const char *provider, const char *model, const char *service_tier,
							   TimestampTz at, const AosTokens *tokens,
							   int64 *cost_microcents, int64 *price_id);

/*
 * Normalize a provider response (or just its usage object) into token
 * buckets (README: Pricing, cost and tokens). Raises 22023 for an unknown provider or a shape that is
 * not one of the supported APIs, naming the missing or bad key.
 */
extern void aos_cus_extract_tokens(const char *provider, Jsonb *usage, AosTokens *out);

/* Register the price cache's invalidation callback (from _PG_init). */
extern void aos_cus_pricing_init(void);

#endif
