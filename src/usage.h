/* usage.h: pricing and token extraction of usage rows, shared by ingest and the pricing trigger. */
#ifndef AOS_CUS_USAGE_H
#define AOS_CUS_USAGE_H

#include "postgres.h"

#include "utils/jsonb.h"
#include "utils/timestamp.h"
#include "vocab.h"

/* Bounds of cus_llm_usage's columns (its row check, usage_check.c), which ingest checks first; in the README. */
#define AOS_USAGE_MAX_CALL_ID		255		/* characters */
#define AOS_USAGE_MAX_MODEL			200		/* characters */
#define AOS_USAGE_MAX_ERROR_CODE	200		/* characters */
#define AOS_USAGE_MAX_METADATA		16384	/* stored bytes */
#define AOS_USAGE_MAX_TAGS			8192	/* stored bytes */

/* The call statuses of cus_llm_usage's row check, NULL-terminated. */
extern const char *const aos_cus_status_names[];

/* Price one call with the price in force at `at`; false when none applies (the row stays unpriced). */
extern bool aos_cus_usage_price(const char *provider, const char *model, const char *tier,
								TimestampTz at, const int64 tokens[AOS_BUCKET_COUNT],
								int64 *cost_microcents, int64 *price_id);

/* Why a call has no price: unpriced_reason of its row, the ingest NOTICE and the batch result's detail. */
extern char *aos_cus_unpriced_reason(const char *provider, const char *model, const char *tier);

/* Normalize a provider's raw usage block into the token buckets (raises 22023 on a malformed block). */
extern void aos_cus_usage_extract(const char *provider, Jsonb *usage, int64 tokens[AOS_BUCKET_COUNT]);

/*
 * Provider (aos_cus index, -1 when absent or not one of ours) and model (NULL when absent; points into usage)
 * named by OpenTelemetry GenAI attributes; both unset when usage is not such attributes. Never raises:
 * returns NULL, or a message naming an attribute that is not a string.
 */
extern const char *aos_cus_otel_identity(Jsonb *usage, int *provider, const char **model, int *model_len);

#endif
