/* usage_stats.h: committed cost and tokens per (provider, model) in a bounded shared-memory hash. */
#ifndef AOS_CUS_USAGE_STATS_H
#define AOS_CUS_USAGE_STATS_H

#include "postgres.h"

/* Bytes of the model label in a key (longer model names are clipped on a character boundary). */
#define AOS_USAGE_MODEL_LEN 256
/* Bytes of the provider label in a key (one of vocab.h's providers or "other"). */
#define AOS_USAGE_PROVIDER_LEN 16

/* One (provider, model) row as read by metrics() and aos_cus.stat_usage. */
typedef struct AosUsageStatsRow
{
	char		provider[AOS_USAGE_PROVIDER_LEN];
	char		model[AOS_USAGE_MODEL_LEN];
	uint64		requests;
	uint64		cost_microcents;
	uint64		input_tokens;
	uint64		output_tokens;
} AosUsageStatsRow;

/* One usage row's contribution as the settlement trigger queues it (signed: an update is -old + new). */
typedef struct AosUsageDelta
{
	char		provider[AOS_USAGE_PROVIDER_LEN];
	char		model[AOS_USAGE_MODEL_LEN];
	int64		requests;
	int64		input_tokens;
	int64		output_tokens;
} AosUsageDelta;

/* Register aos_cus.usage_stats_max_models (before shared memory is sized). */
extern void aos_cus_usage_stats_init(void);

/* Bytes of shared memory the table needs. */
extern Size aos_cus_usage_stats_shmem_size(void);

/* Request the table's LWLock tranche (from the shmem request hook). */
extern void aos_cus_usage_stats_shmem_request(void);

/* Create or attach the table (called under AddinShmemInitLock). */
extern void aos_cus_usage_stats_shmem_init(void);

/*
 * Add one committed transaction's usage delta for (provider, model). Call
 * only at commit. Amounts may be negative (an UPDATE of a row's cost is
 * -old + new); a counter is floored at zero. Never raises an error; a no-op
 * when the library was not preloaded.
 */
extern void aos_cus_usage_stats_add(const char *provider, const char *model, int64 requests,
									int64 cost_microcents, int64 input_tokens, int64 output_tokens);

/* Copy every row, sorted by provider then model, into palloc'd memory; returns the count. */
extern int	aos_cus_usage_stats_snapshot(AosUsageStatsRow **rows);

/* Entries in use and the table's capacity (regular models plus one "other" per provider label). */
extern void aos_cus_usage_stats_fill(int64 *used, int64 *capacity);

/* Remove every entry (aos_cus.stat_reset()). */
extern void aos_cus_usage_stats_reset(void);

#endif
