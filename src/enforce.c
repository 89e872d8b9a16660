/*
 * enforce.c: pre-call enforcement (README: Enforcement) with its state in shared memory.
 *
 * Shared state
 *   - an integration hash keyed by (database, tenant_id, integration_id), sized by
 *     aos_cus.max_integrations: cached limits, the budget and token periods
 *     with their settled spend and tokens, reserved amounts, the rpm and tpm
 *     sliding windows and the alert flags of the current periods. Only
 *     integrations that exist get an entry: an unknown id is answered
 *     integration_not_found from the durable tables and leaves no trace;
 *   - a tenant hash keyed by (database, tenant_id): each tenant's count of
 *     entries and reservations, held to aos_cus.max_integrations_per_tenant
 *     and aos_cus.max_reservations_per_tenant, so one tenant cannot fill the
 *     tables for the others (only the tenant over its quota gets 53400);
 *   - a reservation hash keyed by (database, tenant_id, call_id), sized by
 *     aos_cus.max_reservations; every reservation is also linked into one
 *     global list in expiry order (one TTL: creation order, an O(1) append),
 *     popped by every check before reservations are counted;
 *   - LRU lists of entries in use order, one pair for the whole table and one
 *     per tenant: "plain" entries without rpm/tpm and "rate" entries with one.
 *     Eviction looks at the list heads only: an entry holding reservations is
 *     unlinked when met there (relinked when its last reservation goes), and a
 *     rate entry whose window is live (admissions in the current or previous
 *     minute) is never evicted, as that would reset its window and admit more
 *     than the limit; being used in order, a live head means no rate entry is
 *     evictable. A tenant at its entry quota evicts its own least recently
 *     used entry; a full table evicts the global one; when nothing is
 *     evictable, 53400;
 *   - decision counters per (decision, reason) and a limits version, atomics.
 *
 * Locking rules (in this order, never the reverse):
 *   1. EnfShared->lock (LWLock): the integration and tenant hashes. Entries
 *      are created, reloaded and evicted only with it held exclusively
 *      (which also guards the LRU lists); lookups and counter updates hold it
 *      shared, which keeps the entry and its tenant from going away.
 *   2. EnfShared->res_lock (LWLock): the reservation hash, the expiry list and
 *      the reservation counts, exclusive for any change, taken only while
 *      holding (1) at least shared.
 *   3. EnfEntry->mutex and EnfShared->lru_mutex (spinlocks, never nested):
 *      the entry's counters, windows, limits and flags; the LRU lists while
 *      (1) is held shared. Held for a few straight-line instructions.
 *   Decision counters, the limits version and the next expiry are atomics.
 *
 * Shared memory is a cache of the durable tables. An entry is (re)built on
 * first use, when its period ends and when the limits version moved, by one
 * indexed query over cus_usage_daily and the usage rows the rollup has not
 * folded yet (see the rollup contract in 10_tables.sql). The rebuild and the
 * commit-time settlement of usage are ordered by a heavyweight lock per
 * integration (striped: see stripe_locktag). A usage writer takes it in
 * ShareLock only when it commits (XACT_EVENT_PRE_COMMIT, before its rows
 * become visible) and keeps it until its commit callback has applied its
 * deltas; the rebuild tries ExclusiveLock around its snapshot, query and
 * store without ever waiting. With the lock, every committed row is counted
 * exactly once, either by the query or by its own settlement. When a commit
 * of the same stripe holds it at that instant, a cached entry is kept as it
 * is and a missing one is stored from the query but marked stale, so it is
 * rebuilt on its next use: only rows of the commits in progress at that
 * instant may be off until then. So check() never waits for another
 * transaction: an open transaction that wrote usage holds no such lock.
 *
 * On a hot standby nothing is stored: WAL replay moves neither the limits
 * version nor the periods, and no commit settles usage there, so reads and
 * probes use a backend-local entry rebuilt from the replayed tables on every
 * call, and check() (which counts rates and holds reservations) is refused.
 * Shared memory is therefore empty when the standby is promoted, and each
 * first use after promotion rebuilds from the durable tables.
 *
 * check() changes shared memory when it decides (rate admission, reservation,
 * alert flags), then logs and alerts; when those fail, undo_decision takes the
 * changes back, so nothing outlives a failed check(). In a read-only
 * transaction the log write is skipped and counted (stat_enforcement).
 *
 * Limits changes: a statement trigger on cus_integrations bumps the limits
 * version at commit; an entry loaded under an older version reloads on its
 * next use, keeping its reservations, rate windows and alert flags.
 *
 * Rate limits use a sliding-window counter over calendar minutes (UTC): the
 * previous minute's count weighted by the part of it still inside the last
 * 60 seconds, plus the current minute's count, may not exceed the limit
 * (src/core/enforce_math.c). It admits at most rpm (tpm) per calendar minute,
 * exactly, as the test and admit happen under the entry's spinlock.
 */
#include "aos_cus.h"
#include "enforce.h"
#include "enforce_math.h"
#include "integrations.h"
#include "prom_text.h"
#include "spi_safe.h"
#include "tenancy.h"
#include "usage_stats.h"
#include "uuid_text.h"
#include "vocab.h"
#include "webhooks.h"

#include "access/htup_details.h"
#include "access/xlog.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "commands/async.h"
#include "commands/trigger.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/ilist.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/lmgr.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/fmgrprotos.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "utils/xid8.h"

/* Number of striped heavyweight locks that order settlement and rebuilds (see stripe_locktag). */
#define ENF_LOCK_STRIPES 32
/* Lock tag field 4 that marks those locks in pg_locks (advisory). */
#define ENF_LOCKTAG_CLASS 0xA05C
#define ENF_CALL_ID_MAX 255

/* Limit periods, in the order of the domain aos_cus.limit_period. */
typedef enum EnfPeriod
{
	ENF_PERIOD_DAY,
	ENF_PERIOD_WEEK,
	ENF_PERIOD_MONTH,
	ENF_PERIOD_TOTAL
} EnfPeriod;

typedef struct EnfKey
{
	Oid			dbid;			/* databases of one cluster never share state */
	pg_uuid_t	tenant;
	pg_uuid_t	integration;
} EnfKey;

/* The limits of one integration as cached (-1: no limit). */
typedef struct EnfLimits
{
	bool		found;			/* exists and is not deleted */
	bool		enabled;
	AosMode		mode;
	int			warn_pct;
	int64		budget;
	int64		token_limit;
	int64		rpm;
	int64		tpm;
} EnfLimits;

/* Alert flags per dimension and period. */
#define ENF_ALERT_WARN 1
#define ENF_ALERT_FULL 2
#define ENF_ALERT_BLOCKED 4		/* the first block of the period (an exhausted event) */

/* Entries in use order, oldest first: without rate limits, and with rpm or tpm. */
typedef struct EnfLru
{
	dlist_head	plain;
	dlist_head	rate;
} EnfLru;

typedef struct EnfTenantKey
{
	Oid			dbid;
	pg_uuid_t	tenant;
} EnfTenantKey;

/* One tenant's share of the tables (exists while it has entries). */
typedef struct EnfTenant
{
	EnfTenantKey key;			/* hash key: must be first */
	int			nentries;		/* EnfShared->lock */
	int			nreservations;	/* EnfShared->res_lock */
	EnfLru		lru;			/* its entries (lru_node_tenant) */
} EnfTenant;

typedef struct EnfEntry
{
	EnfKey		key;			/* hash key: must be first */
	slock_t		mutex;
	EnfTenant  *tenant;
	dlist_node	lru_node;		/* in EnfShared->lru */
	dlist_node	lru_node_tenant;	/* in tenant->lru */
	bool		lru_linked;		/* false while unlinked for holding reservations */
	bool		lru_rate;		/* in the rate lists (rpm or tpm set) */
	uint64		limits_version; /* EnfShared->limits_version when loaded */
	EnfLimits	lim;
	TimestampTz budget_start;
	TimestampTz budget_end;
	TimestampTz token_start;
	TimestampTz token_end;
	int64		spent;			/* settled cost in the budget period */
	int64		tokens;			/* settled tokens in the token period */
	int64		reserved_cost;
	int64		reserved_tokens;
	int64		nreservations;
	AosRateWindow requests;
	AosRateWindow token_rate;
	uint8		budget_alerts;
	uint8		token_alerts;
	TimestampTz last_used;
} EnfEntry;

typedef struct EnfResKey
{
	Oid			dbid;
	pg_uuid_t	tenant;
	char		call_id[ENF_CALL_ID_MAX + 1];	/* NUL-padded */
} EnfResKey;

typedef struct EnfReservation
{
	EnfResKey	key;			/* hash key: must be first */
	EnfEntry   *entry;			/* its integration (never evicted while reserved) */
	int64		cost;
	int64		tokens;
	TimestampTz expires_at;
	dlist_node	node;			/* in EnfShared->expiry */
} EnfReservation;

typedef struct EnfShared
{
	LWLock	   *lock;
	LWLock	   *res_lock;
	slock_t		lru_mutex;
	EnfLru		lru;			/* every entry (lru_node) */
	dlist_head	expiry;			/* every reservation, soonest expiry first (res_lock) */
	pg_atomic_uint64 next_expiry;	/* expires_at of expiry's head, PG_INT64_MAX when empty */
	pg_atomic_uint64 limits_version;
	pg_atomic_uint64 evictions;
	pg_atomic_uint64 log_skipped;	/* warned/blocked decisions not logged: read-only transaction */
	pg_atomic_uint64 decisions[AOS_DECISION_COUNT][AOS_REASON_COUNT];
} EnfShared;

/* One settlement of usage, kept until the transaction ends (TopTransactionContext). */
typedef struct EnfDelta
{
	EnfKey		key;
	int			level;			/* subtransaction nest level that made it */
	TimestampTz bucket;			/* started_at rounded down to 15 minutes */
	int64		cost;
	int64		tokens;
	char	   *call_id;		/* set when a reservation may be settled */
	/* For the usage counters per provider and model (usage_stats.c). */
	const char *provider;		/* provider label (static) */
	char	   *model;
	int64		requests;
	int64		input_tokens;
	int64		output_tokens;
} EnfDelta;

/* started_at is folded into 15-minute buckets: every time zone offset is a multiple of it. */
#define ENF_BUCKET_US (INT64CONST(15) * 60 * USECS_PER_SEC)

static EnfShared *enf = NULL;
static HTAB *enf_hash = NULL;
static HTAB *res_hash = NULL;
static HTAB *tenant_hash = NULL;

static int	max_integrations = 10000;
static int	max_reservations = 10000;
static int	max_integrations_per_tenant = 2500;
static int	max_reservations_per_tenant = 2500;
static int	reservation_ttl_ms = 600000;
static int	log_max_rows = 100000;

/* Transaction-local settlements and whether limits changed. */
static EnfDelta *deltas = NULL;
static int	ndeltas = 0;
static int	maxdeltas = 0;
static bool limits_changed = false;

/* Alert flags a check() of this transaction set, taken back if it (or its subtransaction) aborts. */
typedef struct EnfAlertSet
{
	EnfKey		key;
	int			level;			/* subtransaction nest level that set them */
	uint8		budget;
	uint8		tokens;
} EnfAlertSet;

static EnfAlertSet *alert_sets = NULL;	/* in TopTransactionContext */
static int	nalert_sets = 0;
static int	maxalert_sets = 0;

/* Usage table column numbers, cached per relation. */
static Oid	usage_relid = InvalidOid;
static int	usage_att_tenant,
			usage_att_integration,
			usage_att_call_id,
			usage_att_started_at,
			usage_att_cost,
			usage_att_provider,
			usage_att_model;
static int	usage_att_tokens[AOS_BUCKET_COUNT];

/* Prepared statements (kept for the backend's life). */
static SPIPlanPtr limits_plan = NULL;
static SPIPlanPtr usage_plan = NULL;
static SPIPlanPtr log_plan = NULL;
static SPIPlanPtr prune_plan = NULL;

PG_FUNCTION_INFO_V1(aos_cus_check);
PG_FUNCTION_INFO_V1(aos_cus_release_reservation);
PG_FUNCTION_INFO_V1(aos_cus_limit_period_bounds);
PG_FUNCTION_INFO_V1(aos_cus_check_budget_limit);
PG_FUNCTION_INFO_V1(aos_cus_check_token_limit);
PG_FUNCTION_INFO_V1(aos_cus_check_rate_limit);
PG_FUNCTION_INFO_V1(aos_cus_current_usage);
PG_FUNCTION_INFO_V1(aos_cus_stat_decisions);
PG_FUNCTION_INFO_V1(aos_cus_stat_enforcement);
PG_FUNCTION_INFO_V1(aos_cus_usage_settle_trigger);
PG_FUNCTION_INFO_V1(aos_cus_limits_changed_trigger);

/* ---------- shared memory ---------- */

/* Bytes of shared memory for the state (the hashes and the header). */
Size
aos_cus_enforce_shmem_size(void)
{
	Size		size = MAXALIGN(sizeof(EnfShared));

	size = add_size(size, hash_estimate_size(max_integrations, sizeof(EnfEntry)));
	/* A tenant exists only with an entry; one more while a new tenant's first entry is made. */
	size = add_size(size, hash_estimate_size(max_integrations + 1, sizeof(EnfTenant)));
	size = add_size(size, hash_estimate_size(max_reservations, sizeof(EnfReservation)));
	return size;
}

/* Ask for the two LWLocks (from the shmem request hook). */
void
aos_cus_enforce_shmem_request(void)
{
	RequestNamedLWLockTranche("aos_cus enforcement", 2);
}

/* Create or attach the state (under AddinShmemInitLock). */
void
aos_cus_enforce_shmem_init(void)
{
	bool		found;
	HASHCTL		info;

	enf = ShmemInitStruct("aos_cus enforcement", sizeof(EnfShared), &found);
	if (!found)
	{
		LWLockPadded *locks = GetNamedLWLockTranche("aos_cus enforcement");

		enf->lock = &locks[0].lock;
		enf->res_lock = &locks[1].lock;
		SpinLockInit(&enf->lru_mutex);
		dlist_init(&enf->lru.plain);
		dlist_init(&enf->lru.rate);
		dlist_init(&enf->expiry);
		pg_atomic_init_u64(&enf->next_expiry, (uint64) PG_INT64_MAX);
		pg_atomic_init_u64(&enf->limits_version, 1);
		pg_atomic_init_u64(&enf->evictions, 0);
		pg_atomic_init_u64(&enf->log_skipped, 0);
		for (int d = 0; d < AOS_DECISION_COUNT; d++)
			for (int r = 0; r < AOS_REASON_COUNT; r++)
				pg_atomic_init_u64(&enf->decisions[d][r], 0);
	}
	info.keysize = sizeof(EnfKey);
	info.entrysize = sizeof(EnfEntry);
	enf_hash = ShmemInitHash("aos_cus enforcement integrations", max_integrations, max_integrations,
							 &info, HASH_ELEM | HASH_BLOBS);
	info.keysize = sizeof(EnfResKey);
	info.entrysize = sizeof(EnfReservation);
	res_hash = ShmemInitHash("aos_cus enforcement reservations", max_reservations, max_reservations,
							 &info, HASH_ELEM | HASH_BLOBS);
	info.keysize = sizeof(EnfTenantKey);
	info.entrysize = sizeof(EnfTenant);
	tenant_hash = ShmemInitHash("aos_cus enforcement tenants", max_integrations + 1, max_integrations + 1,
								&info, HASH_ELEM | HASH_BLOBS);
}

/* ---------- LRU lists and the expiry list ---------- */

/* The list of lru that e belongs in. */
static dlist_head *
lru_list(EnfLru *lru, const EnfEntry *e)
{
	return e->lru_rate ? &lru->rate : &lru->plain;
}

/* Append e to its global and tenant lists (lock exclusive, or shared with lru_mutex). */
static void
lru_link(EnfEntry *e)
{
	dlist_push_tail(lru_list(&enf->lru, e), &e->lru_node);
	dlist_push_tail(lru_list(&e->tenant->lru, e), &e->lru_node_tenant);
	e->lru_linked = true;
}

/* Take e out of its lists, if in them (same locking as lru_link). */
static void
lru_unlink(EnfEntry *e)
{
	if (!e->lru_linked)
		return;
	dlist_delete(&e->lru_node);
	dlist_delete(&e->lru_node_tenant);
	e->lru_linked = false;
}

/* e was used: move it to the tails of its lists (lock held shared). */
static void
lru_touch(EnfEntry *e)
{
	SpinLockAcquire(&enf->lru_mutex);
	if (e->lru_linked)
	{
		dlist_move_tail(lru_list(&enf->lru, e), &e->lru_node);
		dlist_move_tail(lru_list(&e->tenant->lru, e), &e->lru_node_tenant);
	}
	SpinLockRelease(&enf->lru_mutex);
}

/* Whether a rate limit of e still counts admissions at now (evicting it would reset them). */
static bool
rate_live(const EnfEntry *e, TimestampTz now)
{
	return (e->lim.rpm >= 0 && aos_cus_rate_live(&e->requests, now)) ||
		(e->lim.tpm >= 0 && aos_cus_rate_live(&e->token_rate, now));
}

/*
 * The least recently used evictable entry of lru, or NULL (lock exclusive).
 * Looks at each list's head only: entries holding reservations met there are
 * unlinked (relinked by release_reservation), a live rate head ends the rate list.
 */
static EnfEntry *
lru_victim(EnfLru *lru, TimestampTz now)
{
	EnfEntry   *victim = NULL;
	bool		global = lru == &enf->lru;

	for (int rate = 0; rate <= 1; rate++)
	{
		dlist_head *list = rate ? &lru->rate : &lru->plain;

		while (!dlist_is_empty(list))
		{
			dlist_node *n = dlist_head_node(list);
			EnfEntry   *e = global ? dlist_container(EnfEntry, lru_node, n) :
				dlist_container(EnfEntry, lru_node_tenant, n);

			if (e->nreservations > 0)
			{
				lru_unlink(e);
				continue;
			}
			if (!(rate && rate_live(e, now)) && (victim == NULL || e->last_used < victim->last_used))
				victim = e;
			break;
		}
	}
	return victim;
}

/* Publish the expiry list's first deadline for the lock-free peek (res_lock exclusive). */
static void
publish_next_expiry(void)
{
	int64		next = PG_INT64_MAX;

	if (!dlist_is_empty(&enf->expiry))
		next = dlist_head_element(EnfReservation, node, &enf->expiry)->expires_at;
	pg_atomic_write_u64(&enf->next_expiry, (uint64) next);
}

/* Release one reservation: its amounts, counts and list places (lock at least shared, res_lock exclusive). */
static void
release_reservation(EnfReservation *r)
{
	EnfEntry   *e = r->entry;
	bool		unpinned;

	SpinLockAcquire(&e->mutex);
	e->reserved_cost -= r->cost;
	e->reserved_tokens -= r->tokens;
	e->nreservations--;
	unpinned = e->nreservations == 0;
	SpinLockRelease(&e->mutex);
	e->tenant->nreservations--;
	if (unpinned)
	{
		SpinLockAcquire(&enf->lru_mutex);
		if (!e->lru_linked)
			lru_link(e);
		SpinLockRelease(&enf->lru_mutex);
	}
	dlist_delete(&r->node);
	hash_search(res_hash, &r->key, HASH_REMOVE, NULL);
}

/* Release every reservation whose time is up, soonest first, across all tenants (res_lock exclusive). */
static void
expire_reservations(TimestampTz now)
{
	while (!dlist_is_empty(&enf->expiry))
	{
		EnfReservation *r = dlist_head_element(EnfReservation, node, &enf->expiry);

		if (r->expires_at > now)
			break;
		release_reservation(r);
	}
	publish_next_expiry();
}

/* Expire due reservations if the lock-free peek says some are due (lock held at least shared). */
static void
expire_if_due(TimestampTz now)
{
	if ((int64) pg_atomic_read_u64(&enf->next_expiry) > now)
		return;
	LWLockAcquire(enf->res_lock, LW_EXCLUSIVE);
	expire_reservations(now);
	LWLockRelease(enf->res_lock);
}

/* Link r into the expiry list by its deadline, from the tail: with one TTL that is the tail itself. */
static void
insert_by_expiry(EnfReservation *r)
{
	dlist_iter	it;

	dlist_reverse_foreach(it, &enf->expiry)
	{
		EnfReservation *o = dlist_container(EnfReservation, node, it.cur);

		if (o->expires_at <= r->expires_at)
		{
			dlist_insert_after(it.cur, &r->node);
			publish_next_expiry();
			return;
		}
	}
	dlist_push_head(&enf->expiry, &r->node);
	publish_next_expiry();
}

/* ---------- transaction-local settlement ---------- */

/* a + b, saturating at the int64 range (totals so large are past every limit anyway). */
static inline int64
sat_add(int64 a, int64 b)
{
	int64		r;

	if (aos_cus_add_overflows(a, b, &r))
		return b > 0 ? PG_INT64_MAX : PG_INT64_MIN;
	return r;
}

/*
 * Heavyweight lock tag of settlement stripe n. An integration's stripe is a
 * hash of its key, so a committing transaction that wrote usage of any number
 * of integrations takes at most ENF_LOCK_STRIPES of these locks (a bulk COPY
 * never exhausts max_locks_per_transaction); sharing a stripe only makes a
 * rebuild meet a few more commits.
 */
static void
stripe_locktag(LOCKTAG *tag, uint32 n)
{
	SET_LOCKTAG_ADVISORY(*tag, MyDatabaseId, n, 0, ENF_LOCKTAG_CLASS);
}

/* The settlement stripe of an integration. */
static uint32
stripe_of(const EnfKey *key)
{
	return (uint32) (hash_bytes_extended((const unsigned char *) key, sizeof(EnfKey), 0) % ENF_LOCK_STRIPES);
}

/* Before the commit makes our usage visible: hold the stripes of its deltas until the deltas are applied. */
static void
lock_settlement_stripes(void)
{
	uint32		stripes = 0;

	StaticAssertStmt(ENF_LOCK_STRIPES <= 32, "stripes must fit in a uint32 bitmap");
	for (int i = 0; i < ndeltas; i++)
		stripes |= UINT32_C(1) << stripe_of(&deltas[i].key);
	for (uint32 n = 0; n < ENF_LOCK_STRIPES; n++)
	{
		LOCKTAG		tag;

		if (!(stripes & (UINT32_C(1) << n)))
			continue;
		stripe_locktag(&tag, n);
		(void) LockAcquire(&tag, ShareLock, false, false);
	}
}

/* Apply one delta to its entry, if cached; called at commit with no error possible. */
static void
apply_delta(const EnfDelta *d)
{
	EnfEntry   *e;

	LWLockAcquire(enf->lock, LW_SHARED);
	e = hash_search(enf_hash, &d->key, HASH_FIND, NULL);
	if (e != NULL)
	{
		SpinLockAcquire(&e->mutex);
		if (d->bucket >= e->budget_start && d->bucket < e->budget_end)
			e->spent = sat_add(e->spent, d->cost);
		if (d->bucket >= e->token_start && d->bucket < e->token_end)
			e->tokens = sat_add(e->tokens, d->tokens);
		SpinLockRelease(&e->mutex);
	}
	if (d->call_id != NULL)
	{
		EnfResKey	rk;
		EnfReservation *r;

		memset(&rk, 0, sizeof(rk));
		rk.dbid = d->key.dbid;
		rk.tenant = d->key.tenant;
		strlcpy(rk.call_id, d->call_id, sizeof(rk.call_id));
		LWLockAcquire(enf->res_lock, LW_EXCLUSIVE);
		r = hash_search(res_hash, &rk, HASH_FIND, NULL);
		if (r != NULL)
		{
			release_reservation(r);
			publish_next_expiry();
		}
		LWLockRelease(enf->res_lock);
	}
	LWLockRelease(enf->lock);
}

/* Clear the alert flags of alert_sets[from..] in shared memory (their events were rolled back); raises no error. */
static void
take_back_alerts(int from)
{
	if (from >= nalert_sets || enf == NULL)
		return;
	LWLockAcquire(enf->lock, LW_SHARED);
	for (int i = from; i < nalert_sets; i++)
	{
		EnfEntry   *e = hash_search(enf_hash, &alert_sets[i].key, HASH_FIND, NULL);

		if (e == NULL)
			continue;
		SpinLockAcquire(&e->mutex);
		e->budget_alerts &= ~alert_sets[i].budget;
		e->token_alerts &= ~alert_sets[i].tokens;
		SpinLockRelease(&e->mutex);
	}
	LWLockRelease(enf->lock);
	nalert_sets = from;
}

/* Remember alert flags this transaction set, so an abort takes them back with their events. */
static void
remember_alerts(const EnfKey *key, uint8 budget, uint8 tokens)
{
	if (nalert_sets == maxalert_sets)
	{
		int			newmax = Max(8, maxalert_sets * 2);

		alert_sets = alert_sets == NULL ?
			MemoryContextAlloc(TopTransactionContext, newmax * sizeof(EnfAlertSet)) :
			repalloc(alert_sets, newmax * sizeof(EnfAlertSet));
		maxalert_sets = newmax;
	}
	alert_sets[nalert_sets].key = *key;
	alert_sets[nalert_sets].level = GetCurrentTransactionNestLevel();
	alert_sets[nalert_sets].budget = budget;
	alert_sets[nalert_sets].tokens = tokens;
	nalert_sets++;
}

/* Commit applies the deltas and publishes limits changes; abort drops them and takes back alert flags. */
static void
enforce_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
			lock_settlement_stripes();
			break;
		case XACT_EVENT_PRE_PREPARE:
			if (ndeltas > 0 || limits_changed)
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("cannot PREPARE a transaction that wrote aos_cus usage or integration limits"),
						 errdetail("Enforcement counters are settled by the committing session.")));
			break;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			for (int i = 0; i < ndeltas; i++)
			{
				apply_delta(&deltas[i]);
				aos_cus_usage_stats_add(deltas[i].provider, deltas[i].model, deltas[i].requests,
										deltas[i].cost, deltas[i].input_tokens, deltas[i].output_tokens);
			}
			if (limits_changed)
				pg_atomic_fetch_add_u64(&enf->limits_version, 1);
			/* FALLTHROUGH */
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT)
				take_back_alerts(0);
			/* FALLTHROUGH */
		case XACT_EVENT_PREPARE:
			alert_sets = NULL;	/* freed with TopTransactionContext */
			nalert_sets = maxalert_sets = 0;
			deltas = NULL;		/* freed with TopTransactionContext */
			ndeltas = maxdeltas = 0;
			limits_changed = false;
			break;
		default:
			break;
	}
}

/* A subtransaction's deltas join its parent on commit and vanish on abort. */
static void
enforce_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
						 SubTransactionId parentSubid, void *arg)
{
	int			level = GetCurrentTransactionNestLevel();

	if (event == SUBXACT_EVENT_ABORT_SUB)
	{
		int			from = nalert_sets;

		while (ndeltas > 0 && deltas[ndeltas - 1].level >= level)
			ndeltas--;
		while (from > 0 && alert_sets[from - 1].level >= level)
			from--;
		take_back_alerts(from);
	}
	else if (event == SUBXACT_EVENT_COMMIT_SUB)
	{
		for (int i = ndeltas - 1; i >= 0 && deltas[i].level >= level; i--)
			deltas[i].level = level - 1;
		for (int i = nalert_sets - 1; i >= 0 && alert_sets[i].level >= level; i--)
			alert_sets[i].level = level - 1;
	}
}

/* True when a live reservation exists for (tenant, call_id). */
static bool
reservation_exists(const pg_uuid_t *tenant, const char *call_id)
{
	EnfResKey	rk;
	bool		found;

	memset(&rk, 0, sizeof(rk));
	rk.dbid = MyDatabaseId;
	rk.tenant = *tenant;
	strlcpy(rk.call_id, call_id, sizeof(rk.call_id));
	LWLockAcquire(enf->res_lock, LW_SHARED);
	found = hash_search(res_hash, &rk, HASH_FIND, NULL) != NULL;
	LWLockRelease(enf->res_lock);
	return found;
}

/* Queue one delta, folding it into the previous one when nothing distinguishes them. */
static void
add_delta(const EnfKey *key, TimestampTz started_at, int64 cost, int64 tokens, const char *call_id,
		  const AosUsageDelta *usage)
{
	int			level = GetCurrentTransactionNestLevel();
	TimestampTz bucket = started_at - ((started_at % ENF_BUCKET_US) + ENF_BUCKET_US) % ENF_BUCKET_US;
	EnfDelta   *last = ndeltas > 0 ? &deltas[ndeltas - 1] : NULL;

	if (TIMESTAMP_NOT_FINITE(started_at))
		bucket = started_at;
	if (call_id == NULL && last != NULL && last->call_id == NULL && last->level == level &&
		last->bucket == bucket && memcmp(&last->key, key, sizeof(EnfKey)) == 0 &&
		strcmp(last->provider, usage->provider) == 0 && strcmp(last->model, usage->model) == 0 &&
		!aos_cus_add_overflows(last->cost, cost, &last->cost))
	{
		if (aos_cus_add_overflows(last->tokens, tokens, &last->tokens))
			last->tokens = PG_INT64_MAX;
		last->requests += usage->requests;
		if (aos_cus_add_overflows(last->input_tokens, usage->input_tokens, &last->input_tokens))
			last->input_tokens = PG_INT64_MAX;
		if (aos_cus_add_overflows(last->output_tokens, usage->output_tokens, &last->output_tokens))
			last->output_tokens = PG_INT64_MAX;
		return;
	}
	if (ndeltas == maxdeltas)
	{
		maxdeltas = maxdeltas == 0 ? 16 : maxdeltas * 2;
		deltas = deltas == NULL ?
			MemoryContextAlloc(TopTransactionContext, maxdeltas * sizeof(EnfDelta)) :
			repalloc(deltas, maxdeltas * sizeof(EnfDelta));
	}
	deltas[ndeltas].key = *key;
	deltas[ndeltas].level = level;
	deltas[ndeltas].bucket = bucket;
	deltas[ndeltas].cost = cost;
	deltas[ndeltas].tokens = tokens;
	deltas[ndeltas].call_id = call_id ? MemoryContextStrdup(TopTransactionContext, call_id) : NULL;
	deltas[ndeltas].provider = aos_cus_prom_provider_label(usage->provider);
	deltas[ndeltas].model = MemoryContextStrdup(TopTransactionContext, usage->model);
	deltas[ndeltas].requests = usage->requests;
	deltas[ndeltas].input_tokens = usage->input_tokens;
	deltas[ndeltas].output_tokens = usage->output_tokens;
	ndeltas++;
}

/* Find the usage table's column numbers once per relation. */
static void
cache_usage_columns(Relation rel)
{
	TupleDesc	desc = RelationGetDescr(rel);

	if (usage_relid == RelationGetRelid(rel))
		return;
	usage_att_tenant = SPI_fnumber(desc, "tenant_id");
	usage_att_integration = SPI_fnumber(desc, "integration_id");
	usage_att_call_id = SPI_fnumber(desc, "call_id");
	usage_att_started_at = SPI_fnumber(desc, "started_at");
	usage_att_cost = SPI_fnumber(desc, "cost_microcents");
	usage_att_provider = SPI_fnumber(desc, "provider");
	usage_att_model = SPI_fnumber(desc, "model");
	for (int b = 0; b < AOS_BUCKET_COUNT; b++)
		usage_att_tokens[b] = SPI_fnumber(desc, aos_cus_token_columns[b]);
	usage_relid = RelationGetRelid(rel);
}

/* Queue the delta of one usage row, with sign +1 (new row) or -1 (old row of an update). */
static void
queue_usage_row(Relation rel, HeapTuple tuple, int sign, bool settle)
{
	TupleDesc	desc = RelationGetDescr(rel);
	bool		isnull;
	EnfKey		key;
	int64		cost;
	int64		tokens = 0;
	char	   *call_id = NULL;
	TimestampTz started_at;
	AosUsageDelta usage;

	key.dbid = MyDatabaseId;
	key.tenant = *DatumGetUUIDP(heap_getattr(tuple, usage_att_tenant, desc, &isnull));
	key.integration = *DatumGetUUIDP(heap_getattr(tuple, usage_att_integration, desc, &isnull));
	started_at = DatumGetTimestampTz(heap_getattr(tuple, usage_att_started_at, desc, &isnull));
	cost = DatumGetInt64(heap_getattr(tuple, usage_att_cost, desc, &isnull));
	if (isnull)
		cost = 0;
	for (int b = 0; b < AOS_BUCKET_COUNT; b++)
	{
		int64		t;

		if (!aos_cus_bucket_in_total(b))
			continue;
		t = DatumGetInt64(heap_getattr(tuple, usage_att_tokens[b], desc, &isnull));
		if (!isnull && aos_cus_add_overflows(tokens, t, &tokens))
			tokens = PG_INT64_MAX;
	}
	if (settle)
	{
		char	   *c = TextDatumGetCString(heap_getattr(tuple, usage_att_call_id, desc, &isnull));

		if (reservation_exists(&key.tenant, c))
			call_id = c;
	}
	/* Provider, model and the input/output buckets feed the usage counters per model. */
	text_to_cstring_buffer(DatumGetTextPP(heap_getattr(tuple, usage_att_provider, desc, &isnull)),
						   usage.provider, sizeof(usage.provider));
	text_to_cstring_buffer(DatumGetTextPP(heap_getattr(tuple, usage_att_model, desc, &isnull)),
						   usage.model, sizeof(usage.model));
	usage.requests = sign;
	usage.input_tokens = sign * DatumGetInt64(heap_getattr(tuple, usage_att_tokens[AOS_BUCKET_INPUT], desc, &isnull));
	usage.output_tokens = sign * DatumGetInt64(heap_getattr(tuple, usage_att_tokens[AOS_BUCKET_OUTPUT], desc, &isnull));
	add_delta(&key, started_at, sign * cost, sign * tokens, call_id, &usage);
}

/* AFTER INSERT or UPDATE OF cost_microcents row trigger on cus_llm_usage: queue the settlement. */
Datum
aos_cus_usage_settle_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;

	aos_cus_require_trigger_on(fcinfo, "aos_cus_internal.usage_settle_trigger()", "cus_llm_usage");
	if (!TRIGGER_FIRED_AFTER(td->tg_event) || !TRIGGER_FIRED_FOR_ROW(td->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("aos_cus_usage_settle_trigger must be an AFTER ROW trigger")));
	if (!aos_cus_preloaded)
		return PointerGetDatum(NULL);
	cache_usage_columns(td->tg_relation);
	if (TRIGGER_FIRED_BY_INSERT(td->tg_event))
		queue_usage_row(td->tg_relation, td->tg_trigtuple, 1, true);
	else if (TRIGGER_FIRED_BY_UPDATE(td->tg_event))
	{
		queue_usage_row(td->tg_relation, td->tg_trigtuple, -1, false);
		queue_usage_row(td->tg_relation, td->tg_newtuple, 1, false);
	}
	return PointerGetDatum(NULL);
}

/* AFTER statement trigger on cus_integrations: cached limits reload after this transaction commits. */
Datum
aos_cus_limits_changed_trigger(PG_FUNCTION_ARGS)
{
	aos_cus_require_trigger_on(fcinfo, "aos_cus_internal.limits_changed_trigger()", "cus_integrations");
	if (aos_cus_preloaded)
		limits_changed = true;
	return PointerGetDatum(NULL);
}

/* ---------- loading an entry from the durable tables ---------- */

/* Period from its SQL name; 22023 for anything else. */
static EnfPeriod
period_from_name(const char *name)
{
	if (strcmp(name, "day") == 0)
		return ENF_PERIOD_DAY;
	if (strcmp(name, "week") == 0)
		return ENF_PERIOD_WEEK;
	if (strcmp(name, "month") == 0)
		return ENF_PERIOD_MONTH;
	if (strcmp(name, "total") == 0)
		return ENF_PERIOD_TOTAL;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("period must be day, week, month or total, not \"%s\"", name)));
	return ENF_PERIOD_TOTAL;		/* keep the compiler quiet */
}

/* date_trunc(unit, ts, zone) through PostgreSQL's own time zone code. */
static TimestampTz
trunc_in_zone(const char *unit, TimestampTz ts, const char *zone)
{
	return DatumGetTimestampTz(DirectFunctionCall3(timestamptz_trunc_zone,
												   CStringGetTextDatum(unit),
												   TimestampTzGetDatum(ts),
												   CStringGetTextDatum(zone)));
}

/*
 * The calendar period containing now in zone: its start is date_trunc in the
 * zone; its end is the start of the next one, found by truncating a point
 * safely inside it (a day is 23-25 hours, a month 28-31 days).
 */
static void
period_bounds(EnfPeriod period, const char *zone, TimestampTz now,
			  TimestampTz *start, TimestampTz *end)
{
	static const char *const units[] = {"day", "week", "month"};
	static const int64 steps[] = {26 * USECS_PER_HOUR, 8 * USECS_PER_DAY, 32 * USECS_PER_DAY};

	if (period == ENF_PERIOD_TOTAL)
	{
		TIMESTAMP_NOBEGIN(*start);
		TIMESTAMP_NOEND(*end);
		return;
	}
	*start = trunc_in_zone(units[period], now, zone);
	*end = trunc_in_zone(units[period], *start + steps[period], zone);
}

/* limit_period_bounds(period, timezone, at): the calendar period containing at, as enforcement uses it. */
Datum
aos_cus_limit_period_bounds(PG_FUNCTION_ARGS)
{
	EnfPeriod	period = period_from_name(text_to_cstring(PG_GETARG_TEXT_PP(0)));
	char	   *zone = text_to_cstring(PG_GETARG_TEXT_PP(1));
	TimestampTz at = PG_GETARG_TIMESTAMPTZ(2);
	TimestampTz start,
				end;
	TupleDesc	desc;
	Datum		values[2];
	bool		nulls[2];

	if (TIMESTAMP_NOT_FINITE(at))
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("at must be a finite timestamp")));
	period_bounds(period, zone, at, &start, &end);
	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "aos_cus: limit_period_bounds must return a record");
	desc = BlessTupleDesc(desc);
	values[0] = TimestampTzGetDatum(start);
	values[1] = TimestampTzGetDatum(end);
	nulls[0] = TIMESTAMP_NOT_FINITE(start);
	nulls[1] = TIMESTAMP_NOT_FINITE(end);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(desc, values, nulls)));
}

/* SQL of the tokens row alias counts against token limits: the sum of its aos_cus_bucket_in_total() columns. */
static char *
token_total_sql(const char *alias)
{
	StringInfoData s;

	initStringInfo(&s);
	for (int b = 0; b < AOS_BUCKET_COUNT; b++)
		if (aos_cus_bucket_in_total(b))
			appendStringInfo(&s, "%s%s.%s", s.len > 0 ? " OPERATOR(pg_catalog.+) " : "", alias,
							 aos_cus_token_columns[b]);
	return s.data;
}

/* A usage row not written by this transaction ($5: its xid8, or NULL), which settles it at commit itself. */
#define NOT_OWN_XID(t) \
	"($5 IS NULL OR " t ".ingest_xid OPERATOR(pg_catalog.<>) $5)"

/* Settled cost and tokens of one integration in [from, to), read under snapshot. */
static void
query_period_usage(const EnfKey *key, TimestampTz from, TimestampTz to, Snapshot snapshot,
				   int64 *cost, int64 *tokens)
{
	static const char *fmt =
		"WITH p AS (SELECT ((($3 AT TIME ZONE 'UTC') OPERATOR(pg_catalog.+) interval '1 day'"
		"                     OPERATOR(pg_catalog.-) interval '1 microsecond')::pg_catalog.date) AS d1,"
		"                  (($4 AT TIME ZONE 'UTC')::pg_catalog.date) AS d2)"
		" SELECT LEAST(coalesce(pg_catalog.sum(c), 0), 9223372036854775807)::bigint,"	/* sums saturate */
		"        LEAST(coalesce(pg_catalog.sum(t), 0), 9223372036854775807)::bigint FROM ("
		/* full UTC days inside the period, already folded by the rollup */
		"  SELECT d.cost_microcents AS c, %s AS t"
		"    FROM aos_cus.cus_usage_daily d, p"
		"   WHERE d.tenant_id OPERATOR(pg_catalog.=) $1 AND d.integration_id OPERATOR(pg_catalog.=) $2"
		"     AND d.day OPERATOR(pg_catalog.>=) p.d1 AND d.day OPERATOR(pg_catalog.<) p.d2"
		"  UNION ALL"
		/* partial UTC days at the period's edges, from the raw rows */
		"  SELECT coalesce(u.cost_microcents, 0), %s"
		"    FROM aos_cus.cus_llm_usage u, p"
		"   WHERE u.tenant_id OPERATOR(pg_catalog.=) $1 AND u.integration_id OPERATOR(pg_catalog.=) $2"
		"     AND u.started_at OPERATOR(pg_catalog.>=) $3 AND u.started_at OPERATOR(pg_catalog.<) $4"
		"     AND (u.started_at OPERATOR(pg_catalog.<) (p.d1::timestamp AT TIME ZONE 'UTC')"
		"          OR u.started_at OPERATOR(pg_catalog.>=) (p.d2::timestamp AT TIME ZONE 'UTC'))"
		"     AND " NOT_OWN_XID("u")
		"  UNION ALL"
		/* rows of the full days the rollup has not folded yet */
		"  SELECT coalesce(u.cost_microcents, 0), %s"
		"    FROM aos_cus.cus_llm_usage u, aos_cus.cus_rollup_state r, p"
		"   WHERE u.ingest_xid OPERATOR(pg_catalog.>=) pg_catalog.pg_snapshot_xmin(r.last_snapshot)"
		"     AND NOT pg_catalog.pg_visible_in_snapshot(u.ingest_xid, r.last_snapshot)"
		"     AND u.tenant_id OPERATOR(pg_catalog.=) $1 AND u.integration_id OPERATOR(pg_catalog.=) $2"
		"     AND u.started_at OPERATOR(pg_catalog.>=) (p.d1::timestamp AT TIME ZONE 'UTC')"
		"     AND u.started_at OPERATOR(pg_catalog.<) (p.d2::timestamp AT TIME ZONE 'UTC')"
		"     AND " NOT_OWN_XID("u")
		" ) x";
	char	   *sql = NULL;
	Oid			types[5] = {UUIDOID, UUIDOID, TIMESTAMPTZOID, TIMESTAMPTZOID, XID8OID};
	Datum		values[5];
	char		nulls[5] = {' ', ' ', ' ', ' ', ' '};
	FullTransactionId own = GetTopFullTransactionIdIfAny();
	bool		isnull;
	int			rc;

	values[0] = UUIDPGetDatum(&key->tenant);
	values[1] = UUIDPGetDatum(&key->integration);
	values[2] = TimestampTzGetDatum(from);
	values[3] = TimestampTzGetDatum(to);
	values[4] = FullTransactionIdGetDatum(own);
	if (!FullTransactionIdIsValid(own))
		nulls[4] = 'n';
	if (usage_plan == NULL)
		sql = psprintf(fmt, token_total_sql("d"), token_total_sql("u"), token_total_sql("u"));
	rc = SPI_execute_snapshot(aos_cus_keep_plan(&usage_plan, sql, 5, types), values, nulls,
							  snapshot, InvalidSnapshot, true, false, 1);
	if (rc != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "aos_cus: period usage query failed: %s", SPI_result_code_string(rc));
	*cost = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	*tokens = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
}

/* Everything a load computes before it stores into the entry. */
typedef struct EnfLoaded
{
	EnfLimits	lim;
	TimestampTz budget_start,
				budget_end,
				token_start,
				token_end;
	int64		spent;
	int64		tokens;
} EnfLoaded;

/* Read the limits row and the period usage under one fresh snapshot. */
static void
read_durable_state(const EnfKey *key, TimestampTz now, EnfLoaded *out)
{
	static const char *sql =
		"SELECT status, budget_microcents, budget_period::pg_catalog.text, token_limit, token_period::pg_catalog.text,"
		"       rpm, tpm, warn_at_pct, enforcement_mode, timezone"
		"  FROM aos_cus.cus_integrations WHERE tenant_id OPERATOR(pg_catalog.=) $1 AND id OPERATOR(pg_catalog.=) $2";
	Oid			types[2] = {UUIDOID, UUIDOID};
	Datum		values[2];
	AosElevation elevation;
	Snapshot	snapshot;
	int			rc;

	memset(out, 0, sizeof(*out));
	out->lim.budget = out->lim.token_limit = out->lim.rpm = out->lim.tpm = -1;
	TIMESTAMP_NOBEGIN(out->budget_start);
	TIMESTAMP_NOEND(out->budget_end);
	out->token_start = out->budget_start;
	out->token_end = out->budget_end;

	aos_cus_elevate(&elevation);
	SPI_connect();
	/* Latest snapshot, not the transaction's: a repeatable-read caller must still see every commit. */
	snapshot = RegisterSnapshot(GetLatestSnapshot());
	values[0] = UUIDPGetDatum(&key->tenant);
	values[1] = UUIDPGetDatum(&key->integration);
	rc = SPI_execute_snapshot(aos_cus_keep_plan(&limits_plan, sql, 2, types), values, NULL,
							  snapshot, InvalidSnapshot, true, false, 1);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "aos_cus: limits query failed: %s", SPI_result_code_string(rc));
	if (SPI_processed == 1)
	{
		HeapTuple	row = SPI_tuptable->vals[0];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		char	   *status = SPI_getvalue(row, desc, 1);
		char	   *mode = SPI_getvalue(row, desc, 9);
		char	   *zone = SPI_getvalue(row, desc, 10);
		bool		isnull;
		Datum		d;

		out->lim.found = strcmp(status, "deleted") != 0;
		out->lim.enabled = strcmp(status, "enabled") == 0;
		out->lim.mode = strcmp(mode, "warn") == 0 ? AOS_MODE_WARN :
			strcmp(mode, "off") == 0 ? AOS_MODE_OFF : AOS_MODE_ENFORCE;
		d = SPI_getbinval(row, desc, 2, &isnull);
		if (!isnull)
			out->lim.budget = DatumGetInt64(d);
		d = SPI_getbinval(row, desc, 4, &isnull);
		if (!isnull)
			out->lim.token_limit = DatumGetInt64(d);
		d = SPI_getbinval(row, desc, 6, &isnull);
		if (!isnull)
			out->lim.rpm = DatumGetInt32(d);
		d = SPI_getbinval(row, desc, 7, &isnull);
		if (!isnull)
			out->lim.tpm = DatumGetInt64(d);
		out->lim.warn_pct = DatumGetInt16(SPI_getbinval(row, desc, 8, &isnull));
		period_bounds(period_from_name(SPI_getvalue(row, desc, 3)), zone, now,
					  &out->budget_start, &out->budget_end);
		period_bounds(period_from_name(SPI_getvalue(row, desc, 5)), zone, now,
					  &out->token_start, &out->token_end);
		if (out->lim.found)
		{
			query_period_usage(key, out->budget_start, out->budget_end, snapshot,
							   &out->spent, &out->tokens);
			if (out->token_start != out->budget_start || out->token_end != out->budget_end)
			{
				int64		unused_cost;

				query_period_usage(key, out->token_start, out->token_end, snapshot,
								   &unused_cost, &out->tokens);
			}
		}
	}
	UnregisterSnapshot(snapshot);
	SPI_finish();
	aos_cus_unelevate(&elevation);
}

/* What capacity_error reports full. */
typedef enum EnfCapacity
{
	CAPACITY_INTEGRATIONS,		/* the integration cache (of one tenant when tenant is set) */
	CAPACITY_RESERVATIONS,		/* the reservation table (of one tenant when tenant is set) */
} EnfCapacity;

/* 53400 for a full table or quota (of tenant, when not NULL): release the hash lock first. */
static void
capacity_error(EnfCapacity what, int value, const pg_uuid_t *tenant)
{
	char		id[AOS_UUID_TEXT_LEN + 1];

	LWLockRelease(enf->lock);
	if (tenant == NULL && what == CAPACITY_INTEGRATIONS)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("aos_cus.max_integrations (%d) reached: every cached integration holds reservations or a live rate window",
						value),
				 errhint("Raise aos_cus.max_integrations, or wait for reservations to settle or expire (aos_cus.reservation_ttl).")));
	if (tenant == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("aos_cus.max_reservations (%d) reached: every reservation is in use", value),
				 errhint("Raise aos_cus.max_reservations, or wait for reservations to settle or expire (aos_cus.reservation_ttl).")));
	aos_cus_uuid_format(tenant->data, id);
	if (what == CAPACITY_INTEGRATIONS)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("aos_cus.max_integrations_per_tenant (%d) reached by tenant %s: its cached integrations all hold reservations or live rate windows",
						value, id),
				 errhint("Raise aos_cus.max_integrations_per_tenant, or wait for this tenant's reservations to settle or expire (aos_cus.reservation_ttl).")));
	ereport(ERROR,
			(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
			 errmsg("aos_cus.max_reservations_per_tenant (%d) reached by tenant %s: its reservations are all in use",
					value, id),
			 errhint("Raise aos_cus.max_reservations_per_tenant, or wait for this tenant's reservations to settle or expire (aos_cus.reservation_ttl).")));
}

/* Evict e: out of its lists, its tenant's count and the hash (lock exclusive). */
static void
evict_entry(EnfEntry *e)
{
	EnfTenant  *t = e->tenant;

	lru_unlink(e);
	if (--t->nentries == 0)
		hash_search(tenant_hash, &t->key, HASH_REMOVE, NULL);
	hash_search(enf_hash, &e->key, HASH_REMOVE, NULL);
	pg_atomic_fetch_add_u64(&enf->evictions, 1);
}

/*
 * Make a new, empty entry for key (lock exclusive). A tenant at its quota
 * evicts its own least recently used entry, a full table the global one;
 * 53400 when nothing there may be evicted.
 */
static EnfEntry *
create_entry(const EnfKey *key, TimestampTz now)
{
	EnfTenantKey tk;
	EnfTenant  *t;
	EnfEntry   *e;
	int			quota = Min(max_integrations_per_tenant, max_integrations);
	bool		found;

	memset(&tk, 0, sizeof(tk));
	tk.dbid = key->dbid;
	tk.tenant = key->tenant;
	t = hash_search(tenant_hash, &tk, HASH_FIND, NULL);
	if (t != NULL && t->nentries >= quota)
	{
		EnfEntry   *victim = lru_victim(&t->lru, now);

		if (victim == NULL)
			capacity_error(CAPACITY_INTEGRATIONS, quota, &key->tenant);
		evict_entry(victim);
	}
	else if (hash_get_num_entries(enf_hash) >= max_integrations)
	{
		EnfEntry   *victim = lru_victim(&enf->lru, now);

		if (victim == NULL)
			capacity_error(CAPACITY_INTEGRATIONS, max_integrations, NULL);
		evict_entry(victim);
	}
	/* The eviction may have removed this very tenant. */
	t = hash_search(tenant_hash, &tk, HASH_ENTER_NULL, &found);
	e = t == NULL ? NULL : hash_search(enf_hash, key, HASH_ENTER_NULL, NULL);
	if (e == NULL)
	{
		if (t != NULL && !found)
			hash_search(tenant_hash, &tk, HASH_REMOVE, NULL);
		LWLockRelease(enf->lock);
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of aos_cus enforcement shared memory")));
	}
	if (!found)
	{
		t->nentries = t->nreservations = 0;
		dlist_init(&t->lru.plain);
		dlist_init(&t->lru.rate);
	}
	t->nentries++;
	memset((char *) e + sizeof(EnfKey), 0, sizeof(EnfEntry) - sizeof(EnfKey));
	SpinLockInit(&e->mutex);
	e->tenant = t;
	e->budget_start = e->token_start = DT_NOEND;	/* differs from any real start */
	lru_link(e);
	return e;
}

/* Alert flags already earned by usage found at load time (not announced again). */
static uint8
reached_flags(int64 used, int64 limit, int warn_pct)
{
	uint8		flags = 0;

	if (limit < 0)
		return 0;
	if (aos_cus_reached_pct(used, limit, warn_pct))
		flags |= ENF_ALERT_WARN;
	if (aos_cus_reached_pct(used, limit, 100))
		flags |= ENF_ALERT_FULL;
	return flags;
}

/* What load_entry did. */
typedef enum EnfLoad
{
	ENF_LOAD_STORED,			/* the entry is (re)built */
	ENF_LOAD_BUSY,				/* a commit holds the stripe: the cached entry stays as it is */
	ENF_LOAD_UNKNOWN			/* no such integration and no entry: nothing stored */
} EnfLoad;

/*
 * (Re)build the entry of key from the durable tables. The stripe's
 * ExclusiveLock, tried without waiting, keeps commits of usage of this
 * integration out between the snapshot and the store. When a commit holds it,
 * a cached entry is kept; a missing one is stored from the query anyway but
 * marked stale (limits_version 0), so its next use rebuilds it.
 */
static EnfLoad
load_entry(const EnfKey *key, TimestampTz now, bool cached)
{
	LOCKTAG		tag;
	EnfLoaded	l;
	uint64		version;
	EnfEntry   *e;
	bool		locked;
	bool		rate;

	stripe_locktag(&tag, stripe_of(key));
	locked = LockAcquire(&tag, ExclusiveLock, false, true) != LOCKACQUIRE_NOT_AVAIL;
	if (!locked && cached)
		return ENF_LOAD_BUSY;
	version = locked ? pg_atomic_read_u64(&enf->limits_version) : 0;
	read_durable_state(key, now, &l);

	LWLockAcquire(enf->lock, LW_EXCLUSIVE);
	e = hash_search(enf_hash, key, HASH_FIND, NULL);
	if (e == NULL && !l.lim.found)
	{
		LWLockRelease(enf->lock);
		if (locked)
			LockRelease(&tag, ExclusiveLock, false);
		return ENF_LOAD_UNKNOWN;
	}
	if (e == NULL)
		e = create_entry(key, now);
	SpinLockAcquire(&e->mutex);
	if (e->budget_start != l.budget_start)
		e->budget_alerts = reached_flags(l.spent + e->reserved_cost, l.lim.budget, l.lim.warn_pct);
	if (e->token_start != l.token_start)
		e->token_alerts = reached_flags(l.tokens + e->reserved_tokens, l.lim.token_limit, l.lim.warn_pct);
	e->lim = l.lim;
	e->budget_start = l.budget_start;
	e->budget_end = l.budget_end;
	e->token_start = l.token_start;
	e->token_end = l.token_end;
	e->spent = l.spent;
	e->tokens = l.tokens;
	e->limits_version = version;
	e->last_used = now;
	SpinLockRelease(&e->mutex);
	/* Limits with or without a rate decide which lists it is in. */
	rate = l.lim.rpm >= 0 || l.lim.tpm >= 0;
	if (e->lru_rate != rate && e->lru_linked)
	{
		lru_unlink(e);
		e->lru_rate = rate;
		lru_link(e);
	}
	e->lru_rate = rate;
	LWLockRelease(enf->lock);
	if (locked)
		LockRelease(&tag, ExclusiveLock, false);
	return ENF_LOAD_STORED;
}

/* ---------- the decision ---------- */

/* Which dimensions a call evaluates and whether it changes state. */
#define ENF_RATE   1
#define ENF_BUDGET 2
#define ENF_TOKENS 4
#define ENF_ALL    (ENF_RATE | ENF_BUDGET | ENF_TOKENS)

typedef struct EnfRequest
{
	EnfKey		key;
	int64		est_cost;
	int64		est_tokens;
	const char *call_id;		/* NULL: no reservation */
	int			dims;
	bool		commit;			/* count, reserve, log and alert (check()) */
} EnfRequest;

/* What a committing decide() changed in shared memory, for undo_decision. */
typedef struct EnfUndo
{
	bool		admitted;		/* the rate windows counted the request */
	int64		minute;			/* their current minute then */
	bool		reserved;		/* the call_id's reservation was made or replaced */
	bool		replaced;		/* it replaced one with these terms */
	int64		old_cost;
	int64		old_tokens;
	TimestampTz old_expires_at;
} EnfUndo;

typedef struct EnfResult
{
	AosDecision decision;
	AosReason	reason;
	int64		retry_ms;		/* -1: NULL */
	int64		budget_used;
	int64		budget_limit;
	int64		tokens_used;
	int64		token_limit;
	TimestampTz budget_end;
	TimestampTz token_end;
	TimestampTz budget_start;
	TimestampTz token_start;
	int			warn_pct;
	uint8		new_budget_alerts;	/* alert flags this decision set */
	uint8		new_token_alerts;
	EnfUndo		undo;
} EnfResult;

/* The entry a hot standby decides and reads on: this backend's, rebuilt on every call. */
static EnfEntry standby_entry;

/*
 * Rebuild standby_entry from the replayed tables and return it with enf->lock
 * held shared, as fresh_entry does; NULL for an integration that does not exist.
 */
static EnfEntry *
standby_fresh_entry(const EnfKey *key, TimestampTz now)
{
	EnfLoaded	l;
	EnfEntry   *e = &standby_entry;

	read_durable_state(key, now, &l);
	if (!l.lim.found)
		return NULL;
	memset(e, 0, sizeof(*e));
	e->key = *key;
	SpinLockInit(&e->mutex);
	e->lim = l.lim;
	e->budget_start = l.budget_start;
	e->budget_end = l.budget_end;
	e->token_start = l.token_start;
	e->token_end = l.token_end;
	e->spent = l.spent;
	e->tokens = l.tokens;
	e->last_used = now;
	LWLockAcquire(enf->lock, LW_SHARED);
	return e;
}

/*
 * Look up key and return it with enf->lock held shared, loading it first when
 * missing or stale; NULL (no lock held) for an integration that does not
 * exist. A stale entry whose reload meets a commit in progress is used as it
 * is: the reload happens on a later call. On a hot standby the entry is
 * backend-local and rebuilt on every call (see the top of this file).
 */
static EnfEntry *
fresh_entry(const EnfKey *key, TimestampTz now)
{
	bool		loaded = false;

	if (RecoveryInProgress())
		return standby_fresh_entry(key, now);
	for (;;)
	{
		EnfEntry   *e;
		bool		stale = true;
		uint64		version = pg_atomic_read_u64(&enf->limits_version);

		LWLockAcquire(enf->lock, LW_SHARED);
		e = hash_search(enf_hash, key, HASH_FIND, NULL);
		if (e != NULL)
		{
			SpinLockAcquire(&e->mutex);
			stale = e->limits_version != version || now >= e->budget_end || now >= e->token_end;
			SpinLockRelease(&e->mutex);
		}
		if (e != NULL && (!stale || loaded))
			return e;
		LWLockRelease(enf->lock);
		switch (load_entry(key, now, e != NULL))
		{
			case ENF_LOAD_UNKNOWN:
				return NULL;
			case ENF_LOAD_STORED:
			case ENF_LOAD_BUSY:
				loaded = true;	/* the next lookup returns what is cached */
				break;
		}
	}
}

/* The decision on an integration that does not exist. */
static void
decide_unknown(EnfResult *res)
{
	AosVerdicts v;

	memset(&v, 0, sizeof(v));
	memset(res, 0, sizeof(*res));
	res->decision = aos_cus_decide(&v, &res->reason);
	res->retry_ms = -1;
	res->budget_limit = res->token_limit = -1;
	TIMESTAMP_NOBEGIN(res->budget_start);
	TIMESTAMP_NOEND(res->budget_end);
	res->token_start = res->budget_start;
	res->token_end = res->budget_end;
}

/* Decide one request against shared memory; fills res. */
static void
decide(const EnfRequest *req, EnfResult *res)
{
	TimestampTz now = GetCurrentTimestamp();
	EnfEntry   *e = fresh_entry(&req->key, now);
	EnfReservation *old = NULL;
	EnfResKey	rk;
	bool		reserve = req->commit && req->call_id != NULL;
	AosVerdicts v;
	int64		rate_retry = 0;
	int64		used_cost,
				used_tokens;

	memset(&res->undo, 0, sizeof(res->undo));
	if (e == NULL)
	{
		decide_unknown(res);
		return;
	}
	if (reserve)
	{
		int			quota = Min(max_reservations_per_tenant, max_reservations);

		memset(&rk, 0, sizeof(rk));
		rk.dbid = MyDatabaseId;
		rk.tenant = req->key.tenant;
		strlcpy(rk.call_id, req->call_id, sizeof(rk.call_id));
		LWLockAcquire(enf->res_lock, LW_EXCLUSIVE);
		expire_reservations(now);
		old = hash_search(res_hash, &rk, HASH_FIND, NULL);
		if (old != NULL && old->entry != e)
		{
			LWLockRelease(enf->res_lock);
			LWLockRelease(enf->lock);
			ereport(ERROR,
					(errcode(ERRCODE_UNIQUE_VIOLATION),
					 errmsg("call_id \"%s\" already holds a reservation on another integration", req->call_id)));
		}
		if (old == NULL && e->tenant->nreservations >= quota)
		{
			LWLockRelease(enf->res_lock);
			capacity_error(CAPACITY_RESERVATIONS, quota, &req->key.tenant);
		}
		if (old == NULL && hash_get_num_entries(res_hash) >= max_reservations)
		{
			LWLockRelease(enf->res_lock);
			capacity_error(CAPACITY_RESERVATIONS, max_reservations, NULL);
		}
	}
	else
		expire_if_due(now);
	lru_touch(e);

	SpinLockAcquire(&e->mutex);
	e->last_used = now;
	/* A repeated check of a call_id replaces its own reservation, so it is not counted twice. */
	used_cost = sat_add(e->spent, e->reserved_cost - (old ? old->cost : 0));
	used_tokens = sat_add(e->tokens, e->reserved_tokens - (old ? old->tokens : 0));
	v.found = e->lim.found;
	v.enabled = e->lim.enabled;
	v.mode = e->lim.mode;
	v.rate_limited = false;
	v.budget = v.tokens = AOS_LIMIT_OK;
	aos_cus_rate_advance(&e->requests, now);
	aos_cus_rate_advance(&e->token_rate, now);
	if (req->dims & ENF_RATE)
	{
		int64		retry;

		if (e->lim.rpm >= 0 && !aos_cus_rate_admits(&e->requests, now, e->lim.rpm, 1, &retry))
		{
			v.rate_limited = true;
			rate_retry = retry;
		}
		if (e->lim.tpm >= 0 && !aos_cus_rate_admits(&e->token_rate, now, e->lim.tpm, req->est_tokens, &retry))
		{
			v.rate_limited = true;
			rate_retry = Max(rate_retry, retry);
		}
	}
	if (req->dims & ENF_BUDGET)
		v.budget = aos_cus_limit_verdict(used_cost, req->est_cost, e->lim.budget, e->lim.warn_pct);
	if (req->dims & ENF_TOKENS)
		v.tokens = aos_cus_limit_verdict(used_tokens, req->est_tokens, e->lim.token_limit, e->lim.warn_pct);
	res->decision = aos_cus_decide(&v, &res->reason);
	if (req->commit && res->decision != AOS_DECISION_BLOCKED)
	{
		e->requests.curr++;
		e->token_rate.curr = sat_add(e->token_rate.curr, req->est_tokens);
		res->undo.admitted = true;
		res->undo.minute = e->requests.minute;
		if (reserve)
		{
			e->reserved_cost = sat_add(e->reserved_cost, req->est_cost - (old ? old->cost : 0));
			e->reserved_tokens = sat_add(e->reserved_tokens, req->est_tokens - (old ? old->tokens : 0));
			if (old == NULL)
				e->nreservations++;
		}
	}
	used_cost = sat_add(e->spent, e->reserved_cost);
	used_tokens = sat_add(e->tokens, e->reserved_tokens);
	/* Without a reservation an admitted estimate still counts toward this check's alert crossing. */
	if (req->commit && res->decision != AOS_DECISION_BLOCKED && !reserve)
	{
		used_cost = sat_add(used_cost, req->est_cost);
		used_tokens = sat_add(used_tokens, req->est_tokens);
	}
	res->budget_used = used_cost;
	res->tokens_used = used_tokens;
	res->budget_limit = e->lim.budget;
	res->token_limit = e->lim.token_limit;
	res->budget_start = e->budget_start;
	res->budget_end = e->budget_end;
	res->token_start = e->token_start;
	res->token_end = e->token_end;
	res->warn_pct = e->lim.warn_pct;
	res->new_budget_alerts = res->new_token_alerts = 0;
	if (req->commit && e->lim.found && e->lim.enabled)
	{
		res->new_budget_alerts = reached_flags(used_cost, e->lim.budget, e->lim.warn_pct) & ~e->budget_alerts;
		res->new_token_alerts = reached_flags(used_tokens, e->lim.token_limit, e->lim.warn_pct) & ~e->token_alerts;
		if (res->decision == AOS_DECISION_BLOCKED && res->reason == AOS_REASON_BUDGET_EXCEEDED)
			res->new_budget_alerts |= ENF_ALERT_BLOCKED & ~e->budget_alerts;
		if (res->decision == AOS_DECISION_BLOCKED && res->reason == AOS_REASON_TOKEN_LIMIT_EXCEEDED)
			res->new_token_alerts |= ENF_ALERT_BLOCKED & ~e->token_alerts;
		e->budget_alerts |= res->new_budget_alerts;
		e->token_alerts |= res->new_token_alerts;
	}
	SpinLockRelease(&e->mutex);

	if (reserve)
	{
		if (res->decision != AOS_DECISION_BLOCKED)
		{
			EnfReservation *r = old;

			res->undo.reserved = true;
			if (r == NULL)
			{
				r = hash_search(res_hash, &rk, HASH_ENTER, NULL);
				r->entry = e;
				e->tenant->nreservations++;
			}
			else
			{
				res->undo.replaced = true;
				res->undo.old_cost = r->cost;
				res->undo.old_tokens = r->tokens;
				res->undo.old_expires_at = r->expires_at;
				dlist_delete(&r->node);
			}
			r->cost = req->est_cost;
			r->tokens = req->est_tokens;
			r->expires_at = now + (int64) reservation_ttl_ms * 1000;
			insert_by_expiry(r);
		}
		LWLockRelease(enf->res_lock);
	}
	LWLockRelease(enf->lock);

	/* retry_after_ms: rate refusals say when a slot frees; limit refusals when the period resets. */
	res->retry_ms = -1;
	if (res->reason == AOS_REASON_RATE_LIMITED)
		res->retry_ms = rate_retry;
	else if (res->reason == AOS_REASON_BUDGET_EXCEEDED && !TIMESTAMP_NOT_FINITE(res->budget_end))
		res->retry_ms = (res->budget_end - now + 999) / 1000;
	else if (res->reason == AOS_REASON_TOKEN_LIMIT_EXCEEDED && !TIMESTAMP_NOT_FINITE(res->token_end))
		res->retry_ms = (res->token_end - now + 999) / 1000;
}

/*
 * Take back what decide() changed for req (an error followed it): the
 * reservation made or replaced, the rate admission and the alert flags set.
 * Raises no error (called while one propagates).
 */
static void
undo_decision(const EnfRequest *req, const EnfResult *res)
{
	const EnfUndo *u = &res->undo;
	EnfEntry   *e;

	if (!u->admitted && !u->reserved && !res->new_budget_alerts && !res->new_token_alerts)
		return;
	LWLockAcquire(enf->lock, LW_SHARED);
	e = hash_search(enf_hash, &req->key, HASH_FIND, NULL);
	if (e != NULL && u->reserved)
	{
		EnfResKey	rk;
		EnfReservation *r;

		memset(&rk, 0, sizeof(rk));
		rk.dbid = req->key.dbid;
		rk.tenant = req->key.tenant;
		strlcpy(rk.call_id, req->call_id, sizeof(rk.call_id));
		LWLockAcquire(enf->res_lock, LW_EXCLUSIVE);
		r = hash_search(res_hash, &rk, HASH_FIND, NULL);
		if (r != NULL && r->entry == e && !u->replaced)
			release_reservation(r);
		else if (r != NULL && r->entry == e)
		{
			SpinLockAcquire(&e->mutex);
			e->reserved_cost = sat_add(e->reserved_cost, u->old_cost - r->cost);
			e->reserved_tokens = sat_add(e->reserved_tokens, u->old_tokens - r->tokens);
			SpinLockRelease(&e->mutex);
			r->cost = u->old_cost;
			r->tokens = u->old_tokens;
			r->expires_at = u->old_expires_at;
			dlist_delete(&r->node);
			insert_by_expiry(r);
		}
		publish_next_expiry();
		LWLockRelease(enf->res_lock);
	}
	if (e != NULL)
	{
		SpinLockAcquire(&e->mutex);
		if (u->admitted)
		{
			aos_cus_rate_unadmit(&e->requests, u->minute, 1);
			aos_cus_rate_unadmit(&e->token_rate, u->minute, req->est_tokens);
		}
		e->budget_alerts &= ~res->new_budget_alerts;
		e->token_alerts &= ~res->new_token_alerts;
		SpinLockRelease(&e->mutex);
	}
	LWLockRelease(enf->lock);
}

/* ---------- side effects of check(): log and alerts ---------- */

/* Write a warned or blocked decision to the bounded enforcement log. */
static void
log_decision(const EnfRequest *req, const EnfResult *res)
{
	static const char *insert_sql =
		"INSERT INTO aos_cus.cus_enforcement_log (tenant_id, integration_id, call_id, decision, reason,"
		" estimated_cost_microcents, estimated_tokens, budget_used_microcents, budget_limit_microcents,"
		" tokens_used, token_limit, retry_after_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
		" RETURNING id";
	/* Everything of this tenant older than its newest aos_cus.enforcement_log_max_rows, by the primary key. */
	static const char *prune_sql =
		"DELETE FROM aos_cus.cus_enforcement_log"
		" WHERE tenant_id OPERATOR(pg_catalog.=) $1 AND id OPERATOR(pg_catalog.<=)"
		"  (SELECT l.id FROM aos_cus.cus_enforcement_log l WHERE l.tenant_id OPERATOR(pg_catalog.=) $1"
		"    ORDER BY l.id DESC OFFSET $2 LIMIT 1)";
	Oid			types[12] = {UUIDOID, UUIDOID, TEXTOID, TEXTOID, TEXTOID, INT8OID, INT8OID,
	INT8OID, INT8OID, INT8OID, INT8OID, INT8OID};
	Datum		values[12];
	char		nulls[12];
	AosElevation elevation;
	bool		isnull;
	int64		id;

	memset(nulls, ' ', sizeof(nulls));
	values[0] = UUIDPGetDatum(&req->key.tenant);
	values[1] = UUIDPGetDatum(&req->key.integration);
	values[2] = req->call_id ? CStringGetTextDatum(req->call_id) : (Datum) 0;
	nulls[2] = req->call_id ? ' ' : 'n';
	values[3] = CStringGetTextDatum(aos_cus_decision_name(res->decision));
	values[4] = CStringGetTextDatum(aos_cus_reason_name(res->reason));
	values[5] = Int64GetDatum(req->est_cost);
	values[6] = Int64GetDatum(req->est_tokens);
	values[7] = Int64GetDatum(res->budget_used);
	values[8] = Int64GetDatum(res->budget_limit);
	nulls[8] = res->budget_limit < 0 ? 'n' : ' ';
	values[9] = Int64GetDatum(res->tokens_used);
	values[10] = Int64GetDatum(res->token_limit);
	nulls[10] = res->token_limit < 0 ? 'n' : ' ';
	values[11] = Int64GetDatum(res->retry_ms);
	nulls[11] = res->retry_ms < 0 ? 'n' : ' ';

	aos_cus_elevate(&elevation);
	SPI_connect();
	if (SPI_execute_plan(aos_cus_keep_plan(&log_plan, insert_sql, 12, types), values, nulls, false, 1) != SPI_OK_INSERT_RETURNING)
		elog(ERROR, "aos_cus: enforcement log insert failed");
	id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	/* Keep at most aos_cus.enforcement_log_max_rows rows per tenant (plus about one pruning step). */
	if (id % 1000 == 0)
	{
		Oid			ptypes[2] = {UUIDOID, INT8OID};
		Datum		pvalues[2];

		pvalues[0] = UUIDPGetDatum(&req->key.tenant);
		pvalues[1] = Int64GetDatum((int64) log_max_rows);
		if (SPI_execute_plan(aos_cus_keep_plan(&prune_plan, prune_sql, 2, ptypes), pvalues, NULL, false, 0) != SPI_OK_DELETE)
			elog(ERROR, "aos_cus: enforcement log pruning failed");
	}
	SPI_finish();
	aos_cus_unelevate(&elevation);
}

/* Format a timestamptz as JSON: ISO 8601 in UTC ("...Z"), or null for an infinite bound. */
static void
append_json_ts(StringInfo buf, TimestampTz ts)
{
	struct pg_tm tm;
	fsec_t		fsec;
	char		text[MAXDATELEN + 1];

	if (TIMESTAMP_NOT_FINITE(ts) || timestamp2tm(ts, NULL, &tm, &fsec, NULL, NULL) != 0)
	{
		appendStringInfoString(buf, "null");
		return;
	}
	EncodeDateTime(&tm, fsec, false, 0, NULL, USE_XSD_DATES, text);
	appendStringInfo(buf, "\"%sZ\"", text);
}

/*
 * Per newly set alert flag: a NOTIFY aos_cus_alerts for a crossed threshold
 * (sent when the transaction commits) and a webhook event in the outbox (in
 * this transaction, once per period, threshold and limit; not in a read-only
 * transaction). The scope is the integration's limit.
 */
static void
send_alerts(const EnfKey *key, const char *dimension, uint8 flags, int warn_pct,
			TimestampTz start, TimestampTz end, int64 used, int64 limit)
{
	char		tenant[AOS_UUID_TEXT_LEN + 1];
	char		integration[AOS_UUID_TEXT_LEN + 1];
	char		scope[AOS_UUID_TEXT_LEN + 16];

	aos_cus_uuid_format(key->tenant.data, tenant);
	aos_cus_uuid_format(key->integration.data, integration);
	snprintf(scope, sizeof(scope), "integration:%s", integration);
	for (int bit = ENF_ALERT_WARN; bit <= ENF_ALERT_BLOCKED; bit <<= 1)
	{
		StringInfoData buf;
		StringInfoData type;
		StringInfoData dedup;
		int			threshold = bit == ENF_ALERT_WARN ? warn_pct : 100;

		if (!(flags & bit))
			continue;
		initStringInfo(&buf);
		appendStringInfo(&buf, "{\"tenant\": \"%s\", \"integration\": \"%s\", \"dimension\": \"%s\", ",
						 tenant, integration, dimension);
		if (bit != ENF_ALERT_BLOCKED)
			appendStringInfo(&buf, "\"threshold\": %d, ", threshold);
		appendStringInfoString(&buf, "\"period\": {\"start\": ");
		append_json_ts(&buf, start);
		appendStringInfoString(&buf, ", \"end\": ");
		append_json_ts(&buf, end);
		appendStringInfo(&buf, "}, \"used\": " INT64_FORMAT ", \"limit\": " INT64_FORMAT, used, limit);
		if (bit != ENF_ALERT_BLOCKED)
			Async_Notify("aos_cus_alerts", psprintf("%s}", buf.data));
		if (!XactReadOnly)
		{
			appendStringInfo(&buf, ", \"scope\": \"%s\"}", scope);
			initStringInfo(&type);
			appendStringInfo(&type, "%s.%s", dimension, bit == ENF_ALERT_BLOCKED ? "exhausted" : "threshold");
			initStringInfo(&dedup);
			appendStringInfo(&dedup, "%s:%s:" INT64_FORMAT ":" INT64_FORMAT, type.data, integration,
							 (int64) start, limit);
			if (bit != ENF_ALERT_BLOCKED)
				appendStringInfo(&dedup, ":%d", threshold);
			aos_cus_webhook_emit(&key->tenant, type.data, scope, dedup.data, buf.data);
		}
		pfree(buf.data);
	}
}

/* ---------- SQL functions ---------- */

/* Argument helpers: NULL and negative values are refused naming the argument. */
static const pg_uuid_t *
uuid_arg(FunctionCallInfo fcinfo, int n, const char *name)
{
	aos_cus_require_arg(fcinfo, n, name);
	return PG_GETARG_UUID_P(n);
}

/* A non-negative bigint argument. */
static int64
amount_arg(FunctionCallInfo fcinfo, int n, const char *name)
{
	int64		v;

	if (PG_ARGISNULL(n))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be null", name),
				 errhint("Pass 0 when there is no estimate.")));
	v = PG_GETARG_INT64(n);
	if (v < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must not be negative", name)));
	return v;
}

/* Common prologue: preload, arguments, tenant. */
static void
read_request(FunctionCallInfo fcinfo, const char *fname, EnfRequest *req)
{
	aos_cus_require_preload(fname);
	memset(req, 0, sizeof(*req));
	req->key.dbid = MyDatabaseId;
	req->key.tenant = *uuid_arg(fcinfo, 0, "tenant_id");
	req->key.integration = *uuid_arg(fcinfo, 1, "integration_id");
	aos_cus_assert_tenant(&req->key.tenant, "tenant_id");
}

/* Text datums of the decision and reason names, made once per backend. */
static Datum decision_text[AOS_DECISION_COUNT];
static Datum reason_text[AOS_REASON_COUNT];

/* Fill decision_text and reason_text on first use. */
static void
init_name_datums(void)
{
	MemoryContext old;

	if (decision_text[0] != (Datum) 0)
		return;
	old = MemoryContextSwitchTo(TopMemoryContext);
	for (int r = 0; r < AOS_REASON_COUNT; r++)
		reason_text[r] = CStringGetTextDatum(aos_cus_reason_name(r));
	for (int d = 0; d < AOS_DECISION_COUNT; d++)
		decision_text[d] = CStringGetTextDatum(aos_cus_decision_name(d));
	MemoryContextSwitchTo(old);
}

/* Build an aos_cus.decision from a result. */
static Datum
decision_datum(FunctionCallInfo fcinfo, const EnfResult *res)
{
	TupleDesc	desc = (TupleDesc) fcinfo->flinfo->fn_extra;
	Datum		values[8];
	bool		nulls[8] = {false, false, false, false, false, false, false, false};
	TimestampTz resets;

	if (desc == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(fcinfo->flinfo->fn_mcxt);

		if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
			elog(ERROR, "aos_cus: check functions must return aos_cus.decision");
		desc = BlessTupleDesc(CreateTupleDescCopy(desc));
		MemoryContextSwitchTo(old);
		fcinfo->flinfo->fn_extra = desc;
		init_name_datums();
	}
	values[0] = decision_text[res->decision];
	values[1] = reason_text[res->reason];
	values[2] = Int64GetDatum(res->retry_ms);
	nulls[2] = res->retry_ms < 0;
	values[3] = Int64GetDatum(res->budget_used);
	values[4] = Int64GetDatum(res->budget_limit);
	nulls[4] = res->budget_limit < 0;
	values[5] = Int64GetDatum(res->tokens_used);
	values[6] = Int64GetDatum(res->token_limit);
	nulls[6] = res->token_limit < 0;
	/* The reset that matters: the deciding limit's period, else the budget's, else the tokens'. */
	resets = (res->reason == AOS_REASON_TOKEN_LIMIT_EXCEEDED || res->reason == AOS_REASON_TOKEN_WARNING ||
			  res->budget_limit < 0) ? res->token_end : res->budget_end;
	if (res->budget_limit < 0 && res->token_limit < 0)
		TIMESTAMP_NOEND(resets);
	values[7] = TimestampTzGetDatum(resets);
	nulls[7] = TIMESTAMP_NOT_FINITE(resets);
	return HeapTupleGetDatum(heap_form_tuple(desc, values, nulls));
}

/*
 * What check() does after deciding: log a warned or blocked decision (skipped
 * and counted in a read-only transaction), queue the alerts, build the result.
 */
static Datum
check_side_effects(FunctionCallInfo fcinfo, const EnfRequest *req, const EnfResult *res)
{
	if (res->decision != AOS_DECISION_ALLOWED || res->reason != AOS_REASON_OK)
	{
		if (XactReadOnly)
			pg_atomic_fetch_add_u64(&enf->log_skipped, 1);
		else
			log_decision(req, res);
	}
	if (res->new_budget_alerts)
		send_alerts(&req->key, "budget", res->new_budget_alerts, res->warn_pct,
					res->budget_start, res->budget_end, res->budget_used, res->budget_limit);
	if (res->new_token_alerts)
		send_alerts(&req->key, "tokens", res->new_token_alerts, res->warn_pct,
					res->token_start, res->token_end, res->tokens_used, res->token_limit);
	return decision_datum(fcinfo, res);
}

/* True when the tenant's usage of call_id is already recorded (committed, or written by this transaction). */
static bool
usage_recorded(const pg_uuid_t *tenant, const char *call_id)
{
	static SPIPlanPtr plan = NULL;
	static const char *sql =
		"SELECT 1 FROM aos_cus.cus_llm_usage"
		" WHERE tenant_id OPERATOR(pg_catalog.=) $1 AND call_id OPERATOR(pg_catalog.=) $2";
	Oid			types[2] = {UUIDOID, TEXTOID};
	Datum		values[2];
	AosElevation elevation;
	bool		found;

	values[0] = UUIDPGetDatum(tenant);
	values[1] = CStringGetTextDatum(call_id);
	aos_cus_elevate(&elevation);
	SPI_connect();
	if (SPI_execute_plan(aos_cus_keep_plan(&plan, sql, 2, types), values, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "aos_cus: usage lookup failed");
	found = SPI_processed > 0;
	SPI_finish();
	aos_cus_unelevate(&elevation);
	return found;
}

/* check(tenant_id, integration_id, estimated_cost_microcents, estimated_tokens, call_id). */
Datum
aos_cus_check(PG_FUNCTION_ARGS)
{
	EnfRequest	req;
	EnfResult	res;
	Datum		result;

	read_request(fcinfo, "aos_cus.check()", &req);
	req.est_cost = amount_arg(fcinfo, 2, "estimated_cost_microcents");
	req.est_tokens = amount_arg(fcinfo, 3, "estimated_tokens");
	if (!PG_ARGISNULL(4))
	{
		req.call_id = text_to_cstring(PG_GETARG_TEXT_PP(4));
		if (strlen(req.call_id) < 1 || strlen(req.call_id) > ENF_CALL_ID_MAX)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("call_id must be 1 to %d bytes long", ENF_CALL_ID_MAX)));
	}
	if (RecoveryInProgress())
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("aos_cus.check() cannot run on a hot standby"),
				 errdetail("check() counts rate limits and holds reservations in the primary's shared memory."),
				 errhint("Call check() on the primary. On a standby, check_budget_limit(), check_token_limit() and current_usage() read the replayed tables.")));
	req.dims = ENF_ALL;
	req.commit = true;
	if (req.call_id != NULL && usage_recorded(&req.key.tenant, req.call_id))
	{
		/* That call happened: reserving again would hold its estimate until the TTL. */
		decide_unknown(&res);
		res.decision = AOS_DECISION_BLOCKED;
		res.reason = AOS_REASON_ALREADY_INGESTED;
	}
	else
		decide(&req, &res);
	PG_TRY();
	{
		result = check_side_effects(fcinfo, &req, &res);
		if (res.new_budget_alerts || res.new_token_alerts)
			remember_alerts(&req.key, res.new_budget_alerts, res.new_token_alerts);
	}
	PG_CATCH();
	{
		undo_decision(&req, &res);
		PG_RE_THROW();
	}
	PG_END_TRY();
	pg_atomic_fetch_add_u64(&enf->decisions[res.decision][res.reason], 1);
	PG_RETURN_DATUM(result);
}

/* release_reservation(tenant_id, call_id): frees the call's live reservation now; true when there was one. */
Datum
aos_cus_release_reservation(PG_FUNCTION_ARGS)
{
	const pg_uuid_t *tenant;
	char	   *call_id;
	EnfResKey	rk;
	EnfReservation *r;

	aos_cus_require_preload("aos_cus.release_reservation()");
	tenant = uuid_arg(fcinfo, 0, "tenant_id");
	aos_cus_require_arg(fcinfo, 1, "call_id");
	call_id = text_to_cstring(PG_GETARG_TEXT_PP(1));
	if (strlen(call_id) < 1 || strlen(call_id) > ENF_CALL_ID_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("call_id must be 1 to %d bytes long", ENF_CALL_ID_MAX)));
	aos_cus_assert_tenant(tenant, "tenant_id");
	memset(&rk, 0, sizeof(rk));
	rk.dbid = MyDatabaseId;
	rk.tenant = *tenant;
	strlcpy(rk.call_id, call_id, sizeof(rk.call_id));
	LWLockAcquire(enf->lock, LW_SHARED);
	LWLockAcquire(enf->res_lock, LW_EXCLUSIVE);
	r = hash_search(res_hash, &rk, HASH_FIND, NULL);
	if (r != NULL)
	{
		release_reservation(r);
		publish_next_expiry();
	}
	LWLockRelease(enf->res_lock);
	LWLockRelease(enf->lock);
	PG_RETURN_BOOL(r != NULL);
}

/* A single-dimension probe: the same precedence, no reservation, nothing counted. */
static Datum
probe(FunctionCallInfo fcinfo, const char *fname, int dims)
{
	EnfRequest	req;
	EnfResult	res;

	read_request(fcinfo, fname, &req);
	if (dims == ENF_BUDGET)
		req.est_cost = amount_arg(fcinfo, 2, "estimated_cost_microcents");
	else
		req.est_tokens = amount_arg(fcinfo, 2, "estimated_tokens");
	req.dims = dims;
	decide(&req, &res);
	PG_RETURN_DATUM(decision_datum(fcinfo, &res));
}

/* check_budget_limit(tenant_id, integration_id, estimated_cost_microcents). */
Datum
aos_cus_check_budget_limit(PG_FUNCTION_ARGS)
{
	return probe(fcinfo, "aos_cus.check_budget_limit()", ENF_BUDGET);
}

/* check_token_limit(tenant_id, integration_id, estimated_tokens). */
Datum
aos_cus_check_token_limit(PG_FUNCTION_ARGS)
{
	return probe(fcinfo, "aos_cus.check_token_limit()", ENF_TOKENS);
}

/* check_rate_limit(tenant_id, integration_id, estimated_tokens). */
Datum
aos_cus_check_rate_limit(PG_FUNCTION_ARGS)
{
	return probe(fcinfo, "aos_cus.check_rate_limit()", ENF_RATE);
}

/* current_usage(tenant_id, integration_id): the entry's periods, spend, reservations and rates. */
Datum
aos_cus_current_usage(PG_FUNCTION_ARGS)
{
	EnfRequest	req;
	TimestampTz now;
	EnfEntry   *e;
	EnfEntry	copy;
	TupleDesc	desc;
	Datum		values[11];
	bool		nulls[11];

	read_request(fcinfo, "aos_cus.current_usage()", &req);
	now = GetCurrentTimestamp();
	e = fresh_entry(&req.key, now);
	if (e != NULL)
	{
		expire_if_due(now);
		SpinLockAcquire(&e->mutex);
		aos_cus_rate_advance(&e->requests, now);
		aos_cus_rate_advance(&e->token_rate, now);
		copy = *e;
		SpinLockRelease(&e->mutex);
		LWLockRelease(enf->lock);
	}
	if (e == NULL || !copy.lim.found)
		aos_cus_integration_missing(&req.key.integration);
	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "aos_cus: current_usage must return a record");
	desc = BlessTupleDesc(desc);
	memset(nulls, 0, sizeof(nulls));
	values[0] = TimestampTzGetDatum(copy.budget_start);
	nulls[0] = TIMESTAMP_NOT_FINITE(copy.budget_start);
	values[1] = TimestampTzGetDatum(copy.budget_end);
	nulls[1] = TIMESTAMP_NOT_FINITE(copy.budget_end);
	values[2] = Int64GetDatum(copy.spent);
	values[3] = Int64GetDatum(copy.reserved_cost);
	values[4] = TimestampTzGetDatum(copy.token_start);
	nulls[4] = TIMESTAMP_NOT_FINITE(copy.token_start);
	values[5] = TimestampTzGetDatum(copy.token_end);
	nulls[5] = TIMESTAMP_NOT_FINITE(copy.token_end);
	values[6] = Int64GetDatum(copy.tokens);
	values[7] = Int64GetDatum(copy.reserved_tokens);
	values[8] = Int64GetDatum(copy.nreservations);
	values[9] = Int64GetDatum(aos_cus_rate_current(&copy.requests));
	values[10] = Int64GetDatum(aos_cus_rate_current(&copy.token_rate));
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(desc, values, nulls)));
}

/* stat_decisions(): one row per (decision, reason) with its count since start. */
Datum
aos_cus_stat_decisions(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	aos_cus_require_preload("aos_cus.stat_decisions()");
	aos_cus_assert_no_tenant("aos_cus.stat_decisions()");
	InitMaterializedSRF(fcinfo, 0);
	for (int d = 0; d < AOS_DECISION_COUNT; d++)
		for (int r = 0; r < AOS_REASON_COUNT; r++)
		{
			Datum		values[3];
			bool		nulls[3] = {false, false, false};

			values[0] = CStringGetTextDatum(aos_cus_decision_name(d));
			values[1] = CStringGetTextDatum(aos_cus_reason_name(r));
			values[2] = Int64GetDatum((int64) pg_atomic_read_u64(&enf->decisions[d][r]));
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		}
	return (Datum) 0;
}

/* stat_enforcement(): fill of the shared tables and evictions. */
Datum
aos_cus_stat_enforcement(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int64		stat[6];
	static const char *const names[6] = {
		"integrations_cached", "max_integrations", "reservations_active", "max_reservations", "evictions",
		"log_skipped_read_only"
	};

	aos_cus_require_preload("aos_cus.stat_enforcement()");
	aos_cus_assert_no_tenant("aos_cus.stat_enforcement()");
	InitMaterializedSRF(fcinfo, 0);
	LWLockAcquire(enf->lock, LW_SHARED);
	stat[0] = hash_get_num_entries(enf_hash);
	LWLockAcquire(enf->res_lock, LW_SHARED);
	stat[2] = hash_get_num_entries(res_hash);
	LWLockRelease(enf->res_lock);
	LWLockRelease(enf->lock);
	stat[1] = max_integrations;
	stat[3] = max_reservations;
	stat[4] = (int64) pg_atomic_read_u64(&enf->evictions);
	stat[5] = (int64) pg_atomic_read_u64(&enf->log_skipped);
	for (int i = 0; i < 6; i++)
	{
		Datum		values[2];
		bool		nulls[2] = {false, false};

		values[0] = CStringGetTextDatum(names[i]);
		values[1] = Int64GetDatum(stat[i]);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/* Register the GUCs; when preloaded, the transaction callbacks too. */
void
aos_cus_enforce_init(void)
{
	DefineCustomIntVariable("aos_cus.reservation_ttl",
							"How long a reservation counts as spent before it is released unused.",
							NULL,
							&reservation_ttl_ms, 600000, 1, INT_MAX,
							PGC_SUSET, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("aos_cus.enforcement_log_max_rows",
							"Rows kept per tenant in aos_cus.cus_enforcement_log (older ones are pruned).",
							NULL,
							&log_max_rows, 100000, 1000, INT_MAX,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
	/* Sizes of shared memory exist only when preloaded (PGC_POSTMASTER cannot be defined later). */
	if (!process_shared_preload_libraries_in_progress)
		return;
	DefineCustomIntVariable("aos_cus.max_integrations",
							"Integrations whose enforcement state fits in shared memory.",
							"A full table evicts the least recently used entry without reservations.",
							&max_integrations, 10000, 16, 10000000,
							PGC_POSTMASTER, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("aos_cus.max_reservations",
							"Reservations (checks with a call_id not yet ingested) that fit in shared memory.",
							NULL,
							&max_reservations, 10000, 16, 10000000,
							PGC_POSTMASTER, 0, NULL, NULL, NULL);
	/* Per-tenant shares default to a quarter of the sizes just read. */
	DefineCustomIntVariable("aos_cus.max_integrations_per_tenant",
							"Cached integrations one tenant may hold in shared memory.",
							"A tenant at its quota evicts its own least recently used entry. Default: a quarter of aos_cus.max_integrations.",
							&max_integrations_per_tenant, Max(max_integrations / 4, 1), 1, 10000000,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("aos_cus.max_reservations_per_tenant",
							"Reservations one tenant may hold in shared memory.",
							"Default: a quarter of aos_cus.max_reservations.",
							&max_reservations_per_tenant, Max(max_reservations / 4, 1), 1, 10000000,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
	RegisterXactCallback(enforce_xact_callback, NULL);
	RegisterSubXactCallback(enforce_subxact_callback, NULL);
}

/* Budget position of every cached integration of this database that has a budget (metrics.c). */
int
aos_cus_enforce_budget_snapshot(AosBudgetRow **rows)
{
	HASH_SEQ_STATUS seq;
	EnfEntry   *e;
	TimestampTz now = GetCurrentTimestamp();
	int			n = 0;

	aos_cus_require_preload("budget statistics");
	LWLockAcquire(enf->lock, LW_SHARED);
	*rows = palloc(Max(hash_get_num_entries(enf_hash), 1) * sizeof(AosBudgetRow));
	hash_seq_init(&seq, enf_hash);
	while ((e = hash_seq_search(&seq)) != NULL)
	{
		AosBudgetRow *row = &(*rows)[n];
		bool		keep;

		if (e->key.dbid != MyDatabaseId)
			continue;
		SpinLockAcquire(&e->mutex);
		keep = e->lim.found && e->lim.budget >= 0;
		row->budget = e->lim.budget;
		row->warn_pct = e->lim.warn_pct;
		/* Spend of a period that has ended no longer counts; the entry reloads on its next use. */
		row->used = (now < e->budget_end ? e->spent : 0) + e->reserved_cost;
		SpinLockRelease(&e->mutex);
		if (!keep)
			continue;
		row->tenant = e->key.tenant;
		row->integration = e->key.integration;
		n++;
	}
	LWLockRelease(enf->lock);
	return n;
}

/* Zero the decision counters (aos_cus.stat_reset()). */
void
aos_cus_enforce_reset_decisions(void)
{
	aos_cus_require_preload("aos_cus.stat_reset()");
	for (int d = 0; d < AOS_DECISION_COUNT; d++)
		for (int r = 0; r < AOS_REASON_COUNT; r++)
			pg_atomic_write_u64(&enf->decisions[d][r], 0);
}
