/*
 * usage_stats.c: committed requests, cost and tokens per (provider, model)
 * in shared memory, for metrics() and aos_cus.stat_usage.
 *
 * The table is a fixed-size shared hash with aos_cus.usage_stats_max_models
 * regular entries plus one overflow entry per provider label. Provider
 * labels are bounded (vocab.h's providers, anything else becomes "other");
 * once the regular entries are all taken, a new model is counted under
 * model "other" of its provider, so the label set never grows past the cap
 * and nothing is dropped.
 *
 * Locking: entries are created and removed with the table's LWLock held
 * exclusively and looked up with it held shared; counters are atomics
 * changed with the lock held at least shared. The lock is a leaf: nothing
 * else is acquired while it is held. aos_cus_usage_stats_add() is called
 * at commit by the enforcement engine's delta application, so the counters
 * hold committed usage only; they are not durable and restart from zero
 * with the server, as Prometheus counters may.
 */
#include "aos_cus.h"
#include "prom_text.h"
#include "usage_stats.h"
#include "vocab.h"

#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/guc.h"
#include "utils/hsearch.h"

/* Provider labels: the providers and "other", each with one overflow entry. */
#define PROVIDER_LABELS (AOS_PROVIDER_COUNT + 1)
#define OVERFLOW_MODEL "other"

typedef struct UsageStatsKey
{
	char		provider[AOS_USAGE_PROVIDER_LEN];
	char		model[AOS_USAGE_MODEL_LEN];
} UsageStatsKey;

typedef struct UsageStatsEntry
{
	UsageStatsKey key;			/* hash key: zero-padded labels */
	pg_atomic_uint64 requests;
	pg_atomic_uint64 cost_microcents;
	pg_atomic_uint64 input_tokens;
	pg_atomic_uint64 output_tokens;
} UsageStatsEntry;

typedef struct UsageStatsShared
{
	LWLock	   *lock;
	int			regular_used;	/* entries other than the overflow ones; exclusive lock */
} UsageStatsShared;

static int	usage_stats_max_models = 1000;
static UsageStatsShared *shared = NULL;
static HTAB *table = NULL;

/* Entries the hash is sized for. */
static int
usage_stats_capacity(void)
{
	return usage_stats_max_models + PROVIDER_LABELS;
}

/* Register aos_cus.usage_stats_max_models (a postmaster setting: only while preloading). */
void
aos_cus_usage_stats_init(void)
{
	if (!process_shared_preload_libraries_in_progress)
		return;
	DefineCustomIntVariable("aos_cus.usage_stats_max_models",
							"Distinct (provider, model) pairs counted in shared memory; later ones count as model \"other\".",
							NULL,
							&usage_stats_max_models,
							1000, 16, 100000,
							PGC_POSTMASTER,
							0,
							NULL, NULL, NULL);
}

/* Bytes of shared memory: the control struct and the hash. */
Size
aos_cus_usage_stats_shmem_size(void)
{
	return add_size(MAXALIGN(sizeof(UsageStatsShared)),
					hash_estimate_size(usage_stats_capacity(), sizeof(UsageStatsEntry)));
}

/* Request the LWLock tranche. */
void
aos_cus_usage_stats_shmem_request(void)
{
	RequestNamedLWLockTranche("aos_cus_usage_stats", 1);
}

/* Create or attach the control struct and the hash. */
void
aos_cus_usage_stats_shmem_init(void)
{
	HASHCTL		info;
	bool		found;

	shared = ShmemInitStruct("aos_cus usage_stats", sizeof(UsageStatsShared), &found);
	if (!found)
	{
		shared->lock = &(GetNamedLWLockTranche("aos_cus_usage_stats"))->lock;
		shared->regular_used = 0;
	}
	memset(&info, 0, sizeof(info));
	info.keysize = sizeof(UsageStatsKey);
	info.entrysize = sizeof(UsageStatsEntry);
	table = ShmemInitHash("aos_cus usage_stats hash", usage_stats_capacity(), usage_stats_capacity(),
						  &info, HASH_ELEM | HASH_BLOBS);
}

/* Build the zero-padded key: provider label, model clipped on a character boundary. */
static void
make_key(UsageStatsKey *key, const char *provider, const char *model)
{
	int			len;

	memset(key, 0, sizeof(*key));
	strlcpy(key->provider, aos_cus_prom_provider_label(provider), AOS_USAGE_PROVIDER_LEN);
	if (model == NULL || model[0] == '\0')
		model = OVERFLOW_MODEL;
	len = pg_mbcliplen(model, strlen(model), AOS_USAGE_MODEL_LEN - 1);
	memcpy(key->model, model, len);
}

/* Find the entry for key or create it (exclusive lock held); full table: the provider's "other". */
static UsageStatsEntry *
find_or_create(UsageStatsKey *key)
{
	UsageStatsEntry *entry;
	bool		found;
	bool		overflow = strcmp(key->model, OVERFLOW_MODEL) == 0;

	entry = hash_search(table, key, HASH_FIND, NULL);
	if (entry != NULL)
		return entry;
	if (!overflow && shared->regular_used >= usage_stats_max_models)
	{
		memset(key->model, 0, sizeof(key->model));
		strlcpy(key->model, OVERFLOW_MODEL, AOS_USAGE_MODEL_LEN);
		overflow = true;
	}
	entry = hash_search(table, key, HASH_ENTER_NULL, &found);
	if (entry != NULL && !found)
	{
		pg_atomic_init_u64(&entry->requests, 0);
		pg_atomic_init_u64(&entry->cost_microcents, 0);
		pg_atomic_init_u64(&entry->input_tokens, 0);
		pg_atomic_init_u64(&entry->output_tokens, 0);
		if (!overflow)
			shared->regular_used++;
	}
	return entry;
}

/* Add a signed amount to a counter, flooring at zero (counters never read negative). */
static void
add_floored(pg_atomic_uint64 *counter, int64 delta)
{
	uint64		old;
	uint64		decrement;

	if (delta >= 0)
	{
		pg_atomic_fetch_add_u64(counter, (uint64) delta);
		return;
	}
	decrement = (uint64) (-(delta + 1)) + 1;
	old = pg_atomic_read_u64(counter);
	while (!pg_atomic_compare_exchange_u64(counter, &old, old > decrement ? old - decrement : 0))
		;
}

/* Add a committed transaction's usage delta to (provider, model). */
void
aos_cus_usage_stats_add(const char *provider, const char *model, int64 requests,
						int64 cost_microcents, int64 input_tokens, int64 output_tokens)
{
	UsageStatsKey key;
	UsageStatsEntry *entry;

	if (shared == NULL)
		return;
	if (requests == 0 && cost_microcents == 0 && input_tokens == 0 && output_tokens == 0)
		return;
	make_key(&key, provider, model);

	LWLockAcquire(shared->lock, LW_SHARED);
	entry = hash_search(table, &key, HASH_FIND, NULL);
	if (entry == NULL)
	{
		LWLockRelease(shared->lock);
		LWLockAcquire(shared->lock, LW_EXCLUSIVE);
		entry = find_or_create(&key);
	}
	/* The fixed-size hash always has room for the overflow entries, so entry is set. */
	if (entry != NULL)
	{
		add_floored(&entry->requests, requests);
		add_floored(&entry->cost_microcents, cost_microcents);
		add_floored(&entry->input_tokens, input_tokens);
		add_floored(&entry->output_tokens, output_tokens);
	}
	LWLockRelease(shared->lock);
}

/* qsort order of snapshot rows: provider, then model. */
static int
row_cmp(const void *a, const void *b)
{
	const AosUsageStatsRow *x = a;
	const AosUsageStatsRow *y = b;
	int			c = strcmp(x->provider, y->provider);

	return c != 0 ? c : strcmp(x->model, y->model);
}

/* Copy every entry into a palloc'd array sorted by provider and model. */
int
aos_cus_usage_stats_snapshot(AosUsageStatsRow **rows)
{
	HASH_SEQ_STATUS seq;
	UsageStatsEntry *entry;
	int			n = 0;

	aos_cus_require_preload();
	LWLockAcquire(shared->lock, LW_SHARED);
	*rows = palloc(Max(hash_get_num_entries(table), 1) * sizeof(AosUsageStatsRow));
	hash_seq_init(&seq, table);
	while ((entry = hash_seq_search(&seq)) != NULL)
	{
		AosUsageStatsRow *row = &(*rows)[n++];

		memcpy(row->provider, entry->key.provider, AOS_USAGE_PROVIDER_LEN);
		memcpy(row->model, entry->key.model, AOS_USAGE_MODEL_LEN);
		row->requests = pg_atomic_read_u64(&entry->requests);
		row->cost_microcents = pg_atomic_read_u64(&entry->cost_microcents);
		row->input_tokens = pg_atomic_read_u64(&entry->input_tokens);
		row->output_tokens = pg_atomic_read_u64(&entry->output_tokens);
	}
	LWLockRelease(shared->lock);
	qsort(*rows, n, sizeof(AosUsageStatsRow), row_cmp);
	return n;
}

/* Entries in use and capacity. */
void
aos_cus_usage_stats_fill(int64 *used, int64 *capacity)
{
	aos_cus_require_preload();
	LWLockAcquire(shared->lock, LW_SHARED);
	*used = hash_get_num_entries(table);
	LWLockRelease(shared->lock);
	*capacity = usage_stats_capacity();
}

/* Remove every entry. */
void
aos_cus_usage_stats_reset(void)
{
	HASH_SEQ_STATUS seq;
	UsageStatsEntry *entry;

	aos_cus_require_preload();
	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	hash_seq_init(&seq, table);
	while ((entry = hash_seq_search(&seq)) != NULL)
		hash_search(table, &entry->key, HASH_REMOVE, NULL);
	shared->regular_used = 0;
	LWLockRelease(shared->lock);
}
