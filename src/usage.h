/* usage.h: usage-record vocabulary shared by ingest and the pricing trigger. */
#ifndef AOS_CUS_USAGE_H
#define AOS_CUS_USAGE_H

#include "postgres.h"

#include "utils/jsonb.h"
#include "utils/timestamp.h"

/* Token buckets, in the order of aos_cus_token_columns and of AosTokens. */
#define AOS_TOKEN_BUCKETS 8
#define AOS_TOKEN_REASONING 5
#define AOS_TOKEN_OUTPUT 4

/* NULL-terminated enumerations of the usage table's CHECKs and domains. */
extern const char *const aos_cus_provider_names[];
extern const char *const aos_cus_tier_names[];
extern const char *const aos_cus_status_names[];
extern const char *const aos_cus_token_columns[];

/* Index of "custom" in aos_cus_provider_names (an integration that may carry any provider). */
#define AOS_PROVIDER_CUSTOM 6

/* Price one call with the price in force at `at`; false when none applies (the row stays unpriced). */
extern bool aos_cus_usage_price(const char *provider, const char *model, const char *tier,
								TimestampTz at, const int64 tokens[AOS_TOKEN_BUCKETS],
								int64 *cost_microcents, int64 *price_id);

/* Normalize a provider's raw usage block into the token buckets (raises 22023 on a malformed block). */
extern void aos_cus_usage_extract(const char *provider, Jsonb *usage, int64 tokens[AOS_TOKEN_BUCKETS]);

/*
 * Provider (aos_cus index, -1 when absent or not one of ours) and model (NULL when absent; points into usage)
 * named by OpenTelemetry GenAI attributes; both unset when usage is not such attributes. Never raises:
 * returns NULL, or a message naming an attribute that is not a string.
 */
extern const char *aos_cus_otel_identity(Jsonb *usage, int *provider, const char **model, int *model_len);

#endif
