/* usage.h: pricing and token extraction of usage rows, shared by ingest and the pricing trigger. */
#ifndef AOS_CUS_USAGE_H
#define AOS_CUS_USAGE_H

#include "postgres.h"

#include "utils/jsonb.h"
#include "utils/timestamp.h"
#include "vocab.h"

/* The call statuses of cus_llm_usage.status's CHECK, NULL-terminated. */
extern const char *const aos_cus_status_names[];

/* Price one call with the price in force at `at`; false when none applies (the row stays unpriced). */
extern bool aos_cus_usage_price(const char *provider, const char *model, const char *tier,
								TimestampTz at, const int64 tokens[AOS_BUCKET_COUNT],
								int64 *cost_microcents, int64 *price_id);

/* Normalize a provider's raw usage block into the token buckets (raises 22023 on a malformed block). */
extern void aos_cus_usage_extract(const char *provider, Jsonb *usage, int64 tokens[AOS_BUCKET_COUNT]);

#endif
