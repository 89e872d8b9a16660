/* enforce.h: enforcement entry points for the rest of the extension (src/enforce_*.c; internals: enforce_internal.h). */
#ifndef AOS_CUS_ENFORCE_H
#define AOS_CUS_ENFORCE_H

#include "postgres.h"

#include "utils/jsonb.h"
#include "utils/uuid.h"

/* One tag of a call (palloc'd strings). */
typedef struct AosTagPair
{
	char	   *key;
	char	   *value;
} AosTagPair;

/* One cached integration's budget position in its current period (metrics.c). */
typedef struct AosBudgetRow
{
	pg_uuid_t	tenant;
	pg_uuid_t	integration;
	int64		used;			/* settled spend plus reservations, micro-cents */
	int64		budget;			/* budget_microcents */
	int			warn_pct;
} AosBudgetRow;

/* Bytes of shared memory the enforcement state needs (sized by aos_cus.max_integrations). */
extern Size aos_cus_enforce_shmem_size(void);

/* Request the enforcement LWLock tranche (shmem request hook). */
extern void aos_cus_enforce_shmem_request(void);

/* Create or attach the enforcement state (under AddinShmemInitLock). */
extern void aos_cus_enforce_shmem_init(void);

/* Register the enforcement GUCs and, when preloaded, the transaction callbacks. */
extern void aos_cus_enforce_init(void);

/* Copy the budget rows of this database's cached integrations into palloc'd memory; returns the count. */
extern int	aos_cus_enforce_budget_snapshot(AosBudgetRow **rows);

/*
 * Read a call's tags into pairs (room for max): a flat JSON object of string
 * values, keys and values valid by scope.h. NULL when valid, else a message
 * naming the field (palloc'd).
 */
extern char *aos_cus_read_tags(JsonbContainer *tags, int max, AosTagPair *pairs, int *n);

/* Raise 22023 naming field unless subject is NULL or a valid subject (scope.h). */
extern void aos_cus_check_subject(const char *subject, const char *field);

/* Zero the decision counters (aos_cus.stat_reset()). */
extern void aos_cus_enforce_reset_decisions(void);

#endif
