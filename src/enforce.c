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
#include "policy.h"
#include "prom_text.h"
#include "scope.h"
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
#include "utils/json.h"
#include "utils/jsonb.h"
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
/* Scope kinds counted in stat_enforcement(), in the order of kind_names. */
#define ENF_KINDS 4
static const char *const kind_names[ENF_KINDS] = {"integration", "tenant", "subject", "tag"};

/* Scope instances one call touches: its integration, the tenant, its subject and each tag. */
#define ENF_MAX_SCOPES (3 + AOS_TAGS_MAX)

/* Limit periods, in the order of the domain aos_cus.limit_period. */
typedef enum EnfPeriod
{
	ENF_PERIOD_DAY,
	ENF_PERIOD_WEEK,
	ENF_PERIOD_MONTH,
	ENF_PERIOD_TOTAL
} EnfPeriod;

/* An entry's key: an integration (scope "") or a scope instance (integration zero, scope its text). */
typedef struct EnfKey
{
	Oid			dbid;			/* databases of one cluster never share state */
	pg_uuid_t	tenant;
	pg_uuid_t	integration;
	char		scope[AOS_SCOPE_TEXT_MAX + 1];	/* "tenant", "subject:<v>", "tag:<k>=<v>", NUL-padded */
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
	int			nentries;
	EnfEntry   *entries[ENF_MAX_SCOPES];	/* its integration, then its scopes (never evicted while reserved) */
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
	/* Per scope kind (integration, tenant, subject, tag): entries cached, evicted, (re)built. */
	pg_atomic_uint64 kind_entries[ENF_KINDS];
	pg_atomic_uint64 kind_evictions[ENF_KINDS];
	pg_atomic_uint64 kind_rebuilds[ENF_KINDS];
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
	/* For the usage counters per provider and model (usage_stats.c); NULL on the deltas of scopes. */
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
			usage_att_subject,
			usage_att_tags,
			usage_att_call_id,
			usage_att_started_at,
			usage_att_cost,
			usage_att_provider,
			usage_att_model;
static int	usage_att_tokens[AOS_BUCKET_COUNT];

/* Prepared statements (kept for the backend's life). */
static SPIPlanPtr limits_plan = NULL;
static SPIPlanPtr usage_plan = NULL;
static SPIPlanPtr scope_limits_plan = NULL;
static SPIPlanPtr scope_usage_plans[4];	/* by AosScopeKind (tenant, subject, tag) */
static SPIPlanPtr scope_cfg_plan = NULL;
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
PG_FUNCTION_INFO_V1(aos_cus_scope_limits_changed_trigger);
PG_FUNCTION_INFO_V1(aos_cus_parse_scope);
PG_FUNCTION_INFO_V1(aos_cus_policies_changed_trigger);
PG_FUNCTION_INFO_V1(aos_cus_explain_check);

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

/* Hash of an entry key: its fixed part and its scope text up to the NUL (the rest is padding). */
static uint32
enf_key_hash(const void *key, Size keysize)
{
	const EnfKey *k = (const EnfKey *) key;

	StaticAssertStmt(offsetof(EnfKey, scope) == sizeof(Oid) + 2 * sizeof(pg_uuid_t), "EnfKey has no padding");
	return hash_combine(hash_bytes((const unsigned char *) k, offsetof(EnfKey, scope)),
						hash_bytes((const unsigned char *) k->scope, strlen(k->scope)));
}

/* 0 when two entry keys are equal (dynahash's match convention). */
static int
enf_key_match(const void *a, const void *b, Size keysize)
{
	const EnfKey *x = (const EnfKey *) a;
	const EnfKey *y = (const EnfKey *) b;

	return memcmp(x, y, offsetof(EnfKey, scope)) != 0 || strcmp(x->scope, y->scope) != 0;
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
		for (int k = 0; k < ENF_KINDS; k++)
		{
			pg_atomic_init_u64(&enf->kind_entries[k], 0);
			pg_atomic_init_u64(&enf->kind_evictions[k], 0);
			pg_atomic_init_u64(&enf->kind_rebuilds[k], 0);
		}
		pg_atomic_init_u64(&enf->log_skipped, 0);
		for (int d = 0; d < AOS_DECISION_COUNT; d++)
			for (int r = 0; r < AOS_REASON_COUNT; r++)
				pg_atomic_init_u64(&enf->decisions[d][r], 0);
	}
	info.keysize = sizeof(EnfKey);
	info.entrysize = sizeof(EnfEntry);
	info.hash = enf_key_hash;
	info.match = enf_key_match;
	enf_hash = ShmemInitHash("aos_cus enforcement integrations", max_integrations, max_integrations,
							 &info, HASH_ELEM | HASH_FUNCTION | HASH_COMPARE);
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

/* Release one reservation: its amounts on every entry, counts and list places (lock at least shared, res_lock exclusive). */
static void
release_reservation(EnfReservation *r)
{
	for (int i = 0; i < r->nentries; i++)
	{
		EnfEntry   *e = r->entries[i];
		bool		unpinned;

		SpinLockAcquire(&e->mutex);
		e->reserved_cost -= r->cost;
		e->reserved_tokens -= r->tokens;
		e->nreservations--;
		unpinned = e->nreservations == 0;
		SpinLockRelease(&e->mutex);
		if (unpinned)
		{
			SpinLockAcquire(&enf->lru_mutex);
			if (!e->lru_linked)
				lru_link(e);
			SpinLockRelease(&enf->lru_mutex);
		}
	}
	r->entries[0]->tenant->nreservations--;
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
	return enf_key_hash(key, sizeof(EnfKey)) % ENF_LOCK_STRIPES;
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

/* Apply one delta's amounts to its entry, if cached; called at commit with no error possible. */
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
	LWLockRelease(enf->lock);
}

/*
 * Release the reservation a delta settles; called at commit after every
 * delta's amounts are applied, so no scope shows the call as neither
 * reserved nor spent.
 */
static void
settle_reservation(const EnfDelta *d)
{
	EnfResKey	rk;
	EnfReservation *r;

	memset(&rk, 0, sizeof(rk));
	rk.dbid = d->key.dbid;
	rk.tenant = d->key.tenant;
	strlcpy(rk.call_id, d->call_id, sizeof(rk.call_id));
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
				if (deltas[i].provider != NULL)
					aos_cus_usage_stats_add(deltas[i].provider, deltas[i].model, deltas[i].requests,
											deltas[i].cost, deltas[i].input_tokens, deltas[i].output_tokens);
			}
			for (int i = 0; i < ndeltas; i++)
				if (deltas[i].call_id != NULL)
					settle_reservation(&deltas[i]);
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

/* Deltas an added one may fold into, counted back from the newest (the scopes of one row and its neighbours). */
#define ENF_FOLD_WINDOW (2 * ENF_MAX_SCOPES)

/*
 * Queue one delta, folding it into a recent one when nothing distinguishes
 * them. usage is NULL for the deltas of a row's scopes (counted once, on its
 * integration's delta). Deltas of this nest level are the newest, so folding
 * into one of them keeps subtransaction aborts exact.
 */
static void
add_delta(const EnfKey *key, TimestampTz started_at, int64 cost, int64 tokens, const char *call_id,
		  const AosUsageDelta *usage)
{
	int			level = GetCurrentTransactionNestLevel();
	TimestampTz bucket = started_at - ((started_at % ENF_BUCKET_US) + ENF_BUCKET_US) % ENF_BUCKET_US;

	if (TIMESTAMP_NOT_FINITE(started_at))
		bucket = started_at;
	for (int i = ndeltas - 1; call_id == NULL && i >= 0 && i >= ndeltas - ENF_FOLD_WINDOW; i--)
	{
		EnfDelta   *last = &deltas[i];

		if (last->level != level)
			break;
		if (last->call_id != NULL || last->bucket != bucket || memcmp(&last->key, key, sizeof(EnfKey)) != 0 ||
			(last->provider == NULL) != (usage == NULL) ||
			(usage != NULL && (strcmp(last->provider, aos_cus_prom_provider_label(usage->provider)) != 0 ||
							   strcmp(last->model, usage->model) != 0)))
			continue;
		if (aos_cus_add_overflows(last->cost, cost, &last->cost))
			break;
		if (aos_cus_add_overflows(last->tokens, tokens, &last->tokens))
			last->tokens = PG_INT64_MAX;
		if (usage == NULL)
			return;
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
	deltas[ndeltas].provider = usage ? aos_cus_prom_provider_label(usage->provider) : NULL;
	deltas[ndeltas].model = usage ? MemoryContextStrdup(TopTransactionContext, usage->model) : NULL;
	deltas[ndeltas].requests = usage ? usage->requests : 0;
	deltas[ndeltas].input_tokens = usage ? usage->input_tokens : 0;
	deltas[ndeltas].output_tokens = usage ? usage->output_tokens : 0;
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
	usage_att_subject = SPI_fnumber(desc, "subject");
	usage_att_tags = SPI_fnumber(desc, "tags");
	usage_att_call_id = SPI_fnumber(desc, "call_id");
	usage_att_started_at = SPI_fnumber(desc, "started_at");
	usage_att_cost = SPI_fnumber(desc, "cost_microcents");
	usage_att_provider = SPI_fnumber(desc, "provider");
	usage_att_model = SPI_fnumber(desc, "model");
	for (int b = 0; b < AOS_BUCKET_COUNT; b++)
		usage_att_tokens[b] = SPI_fnumber(desc, aos_cus_token_columns[b]);
	usage_relid = RelationGetRelid(rel);
}

/* The key of scope instance scope (its text) of tenant. */
static void
scope_key(EnfKey *key, const pg_uuid_t *tenant, const char *scope)
{
	memset(key, 0, sizeof(*key));
	key->dbid = MyDatabaseId;
	key->tenant = *tenant;
	strlcpy(key->scope, scope, sizeof(key->scope));
}

/* The scope text of a subject or of one tag. */
static void
subject_scope(char *out, const char *subject)
{
	snprintf(out, AOS_SCOPE_TEXT_MAX + 1, "subject:%s", subject);
}

static void
tag_scope(char *out, const AosTagPair *tag)
{
	snprintf(out, AOS_SCOPE_TEXT_MAX + 1, "tag:%s=%s", tag->key, tag->value);
}

/* A subject argument or column: NULL, or valid by scope.h (22023 naming field). */
void
aos_cus_check_subject(const char *subject, const char *field)
{
	const char *problem = subject ? aos_cus_subject_problem(subject, strlen(subject)) : NULL;

	if (problem)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s %s", field, problem)));
}

/* Read a call's tags: a flat JSON object of at most max string values with valid keys and values. */
char *
aos_cus_read_tags(JsonbContainer *tags, int max, AosTagPair *pairs, int *n)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	char	   *key = NULL;

	*n = 0;
	if (!JsonContainerIsObject(tags))
		return pstrdup("tags must be a JSON object of strings");
	it = JsonbIteratorInit(tags);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		const char *problem;

		if (tok == WJB_KEY)
		{
			key = pnstrdup(v.val.string.val, v.val.string.len);
			if ((problem = aos_cus_tag_key_problem(v.val.string.val, v.val.string.len)) != NULL)
				return psprintf("tags key \"%.64s\" %s", key, problem);
			continue;
		}
		if (tok != WJB_VALUE)
			continue;
		if (v.type != jbvString)
			return psprintf("tags.%s must be a string, not a nested or non-string value", key);
		if ((problem = aos_cus_tag_value_problem(v.val.string.val, v.val.string.len)) != NULL)
			return psprintf("tags.%s %s", key, problem);
		if (*n >= max)
			return psprintf("tags has more than %d keys", max);
		pairs[*n].key = key;
		pairs[*n].value = pnstrdup(v.val.string.val, v.val.string.len);
		(*n)++;
	}
	return NULL;
}

/* Queue the delta of one usage row, with sign +1 (new row) or -1 (old row of an update), and those of its scopes. */
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

	memset(&key, 0, sizeof(key));
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

	/* Every scope instance the row belongs to, cached or not: a rebuild in between must meet this commit. */
	{
		EnfKey		skey;
		char		scope[AOS_SCOPE_TEXT_MAX + 1];
		Datum		d;

		scope_key(&skey, &key.tenant, "tenant");
		add_delta(&skey, started_at, sign * cost, sign * tokens, NULL, NULL);
		/* A 0.1.0 schema (not yet updated) has neither column. */
		d = usage_att_subject > 0 ? heap_getattr(tuple, usage_att_subject, desc, &isnull) : (Datum) 0;
		if (usage_att_subject > 0 && !isnull)
		{
			char	   *subject = TextDatumGetCString(d);

			aos_cus_check_subject(subject, "subject");
			subject_scope(scope, subject);
			scope_key(&skey, &key.tenant, scope);
			add_delta(&skey, started_at, sign * cost, sign * tokens, NULL, NULL);
		}
		d = usage_att_tags > 0 ? heap_getattr(tuple, usage_att_tags, desc, &isnull) : (Datum) 0;
		if (usage_att_tags > 0 && !isnull)
		{
			Jsonb	   *tags = DatumGetJsonbP(d);
			int			ntags;
			AosTagPair *pairs = palloc(sizeof(AosTagPair) * (JsonContainerSize(&tags->root) + 1));
			char	   *problem = aos_cus_read_tags(&tags->root, INT_MAX, pairs, &ntags);

			if (problem)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("%s", problem)));
			for (int i = 0; i < ntags; i++)
			{
				tag_scope(scope, &pairs[i]);
				scope_key(&skey, &key.tenant, scope);
				add_delta(&skey, started_at, sign * cost, sign * tokens, NULL, NULL);
			}
		}
	}
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

/* AFTER statement trigger on cus_scope_limits: cached scope limits reload after this transaction commits. */
Datum
aos_cus_scope_limits_changed_trigger(PG_FUNCTION_ARGS)
{
	aos_cus_require_trigger_on(fcinfo, "aos_cus_internal.scope_limits_changed_trigger()", "cus_scope_limits");
	if (aos_cus_preloaded)
		limits_changed = true;
	return PointerGetDatum(NULL);
}

/* AFTER statement trigger on cus_policies: cached policies reload after this transaction commits. */
Datum
aos_cus_policies_changed_trigger(PG_FUNCTION_ARGS)
{
	aos_cus_require_trigger_on(fcinfo, "aos_cus_internal.policies_changed_trigger()", "cus_policies");
	if (aos_cus_preloaded)
		limits_changed = true;
	return PointerGetDatum(NULL);
}

/* parse_scope(scope): its kind and, for integration:<id>, the id; 22023 naming scope when malformed. */
Datum
aos_cus_parse_scope(PG_FUNCTION_ARGS)
{
	static const char *const kinds[] = {"tenant", "integration", "subject", "tag"};
	AosScope	sc;
	const char *problem;
	char	   *str;
	TupleDesc	desc;
	Datum		values[2];
	bool		nulls[2] = {false, true};

	aos_cus_require_arg(fcinfo, 0, "scope");
	str = text_to_cstring(PG_GETARG_TEXT_PP(0));
	problem = aos_cus_scope_parse(str, &sc);
	if (problem)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("scope \"%.80s\" is not valid: %s", str, problem)));
	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "aos_cus: parse_scope must return a record");
	desc = BlessTupleDesc(desc);
	values[0] = CStringGetTextDatum(kinds[sc.kind]);
	if (sc.kind == AOS_SCOPE_INTEGRATION)
	{
		pg_uuid_t  *id = palloc(sizeof(pg_uuid_t));

		memcpy(id->data, sc.integration, AOS_UUID_LEN);
		values[1] = UUIDPGetDatum(id);
		nulls[1] = false;
	}
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(desc, values, nulls)));
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

/*
 * Settled cost and tokens of one scope instance (tenant, subject or tag) in
 * [from, to), from the usage rows under snapshot (indexed per scope: see
 * 72_scopes.sql). Like query_period_usage, rows of this transaction are left
 * to its own settlement.
 */
static void
query_scope_usage(const EnfKey *key, TimestampTz from, TimestampTz to, Snapshot snapshot,
				  int64 *cost, int64 *tokens)
{
#define SCOPE_USAGE_SQL(filter) \
	"SELECT LEAST(coalesce(pg_catalog.sum(coalesce(u.cost_microcents, 0)), 0), 9223372036854775807)::bigint," \
	"       LEAST(coalesce(pg_catalog.sum(%s), 0), 9223372036854775807)::bigint" \
	"  FROM aos_cus.cus_llm_usage u" \
	" WHERE u.tenant_id OPERATOR(pg_catalog.=) $1" \
	"   AND u.started_at OPERATOR(pg_catalog.>=) $3 AND u.started_at OPERATOR(pg_catalog.<) $4" \
	"   AND " NOT_OWN_XID("u") " AND " filter
	static const char *const fmt[4] = {
		SCOPE_USAGE_SQL("true"),
		NULL,
		SCOPE_USAGE_SQL("u.subject OPERATOR(pg_catalog.=) $2"),
		SCOPE_USAGE_SQL("u.tags OPERATOR(pg_catalog.@>) pg_catalog.jsonb_build_object($2, $6)")
	};
#undef SCOPE_USAGE_SQL
	Oid			types[6] = {UUIDOID, TEXTOID, TIMESTAMPTZOID, TIMESTAMPTZOID, XID8OID, TEXTOID};
	Datum		values[6];
	char		nulls[6] = {' ', 'n', ' ', ' ', ' ', 'n'};
	FullTransactionId own = GetTopFullTransactionIdIfAny();
	char	   *sql = NULL;
	AosScope	sc;
	bool		isnull;
	int			rc;

	if (aos_cus_scope_parse(key->scope, &sc) != NULL || sc.kind == AOS_SCOPE_INTEGRATION || sc.wildcard)
		elog(ERROR, "aos_cus: \"%s\" is not a scope instance", key->scope);
	values[0] = UUIDPGetDatum(&key->tenant);
	if (sc.kind == AOS_SCOPE_SUBJECT)
	{
		values[1] = PointerGetDatum(cstring_to_text_with_len(sc.value, sc.value_len));
		nulls[1] = ' ';
	}
	else if (sc.kind == AOS_SCOPE_TAG)
	{
		values[1] = PointerGetDatum(cstring_to_text_with_len(sc.key, sc.key_len));
		values[5] = PointerGetDatum(cstring_to_text_with_len(sc.value, sc.value_len));
		nulls[1] = nulls[5] = ' ';
	}
	values[2] = TimestampTzGetDatum(from);
	values[3] = TimestampTzGetDatum(to);
	values[4] = FullTransactionIdGetDatum(own);
	if (!FullTransactionIdIsValid(own))
		nulls[4] = 'n';
	if (scope_usage_plans[sc.kind] == NULL)
		sql = psprintf(fmt[sc.kind], token_total_sql("u"));
	rc = SPI_execute_snapshot(aos_cus_keep_plan(&scope_usage_plans[sc.kind], sql, 6, types), values, nulls,
							  snapshot, InvalidSnapshot, true, false, 1);
	if (rc != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "aos_cus: scope usage query failed: %s", SPI_result_code_string(rc));
	*cost = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	*tokens = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
}

/* The scope of cus_scope_limits whose limits apply to a scope instance: its own row, else its kind's wildcard. */
static void
scope_pattern(const char *instance, char *pattern)
{
	AosScope	sc;

	strlcpy(pattern, instance, AOS_SCOPE_TEXT_MAX + 1);
	if (aos_cus_scope_parse(instance, &sc) != NULL || sc.wildcard)
		return;
	if (sc.kind == AOS_SCOPE_SUBJECT)
		strlcpy(pattern, "subject:*", AOS_SCOPE_TEXT_MAX + 1);
	else if (sc.kind == AOS_SCOPE_TAG)
		snprintf(pattern, AOS_SCOPE_TEXT_MAX + 1, "tag:%.*s=*", (int) sc.key_len, sc.key);
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
	/* A scope instance's own row first, else its kind's wildcard row. */
	static const char *scope_sql =
		"SELECT 'enabled'::pg_catalog.text, budget_microcents, budget_period::pg_catalog.text, token_limit,"
		"       token_period::pg_catalog.text, rpm, tpm, warn_at_pct, enforcement_mode, timezone"
		"  FROM aos_cus.cus_scope_limits WHERE tenant_id OPERATOR(pg_catalog.=) $1"
		"   AND (scope OPERATOR(pg_catalog.=) $2 OR scope OPERATOR(pg_catalog.=) $3)"
		" ORDER BY scope OPERATOR(pg_catalog.=) $2 DESC LIMIT 1";
	Oid			types[2] = {UUIDOID, UUIDOID};
	Oid			scope_types[3] = {UUIDOID, TEXTOID, TEXTOID};
	Datum		values[3];
	bool		is_scope = key->scope[0] != '\0';
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
	if (is_scope)
	{
		char		pattern[AOS_SCOPE_TEXT_MAX + 1];

		scope_pattern(key->scope, pattern);
		values[1] = CStringGetTextDatum(key->scope);
		values[2] = CStringGetTextDatum(pattern);
		rc = SPI_execute_snapshot(aos_cus_keep_plan(&scope_limits_plan, scope_sql, 3, scope_types), values, NULL,
								  snapshot, InvalidSnapshot, true, false, 1);
	}
	else
	{
		values[1] = UUIDPGetDatum(&key->integration);
		rc = SPI_execute_snapshot(aos_cus_keep_plan(&limits_plan, sql, 2, types), values, NULL,
								  snapshot, InvalidSnapshot, true, false, 1);
	}
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
			void		(*query) (const EnfKey *, TimestampTz, TimestampTz, Snapshot, int64 *, int64 *) =
				is_scope ? query_scope_usage : query_period_usage;

			query(key, out->budget_start, out->budget_end, snapshot, &out->spent, &out->tokens);
			if (out->token_start != out->budget_start || out->token_end != out->budget_end)
			{
				int64		unused_cost;

				query(key, out->token_start, out->token_end, snapshot, &unused_cost, &out->tokens);
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

/* The scope kind of an entry key (index into kind_names). */
static int
key_kind(const EnfKey *key)
{
	if (key->scope[0] == '\0')
		return 0;
	if (strcmp(key->scope, "tenant") == 0)
		return 1;
	return strncmp(key->scope, "subject:", 8) == 0 ? 2 : 3;
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
	pg_atomic_fetch_sub_u64(&enf->kind_entries[key_kind(&e->key)], 1);
	pg_atomic_fetch_add_u64(&enf->kind_evictions[key_kind(&e->key)], 1);
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
	pg_atomic_fetch_add_u64(&enf->kind_entries[key_kind(key)], 1);
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
	pg_atomic_fetch_add_u64(&enf->kind_rebuilds[key_kind(key)], 1);
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
	EnfKey		key;			/* the integration */
	int64		est_cost;
	int64		est_tokens;
	const char *call_id;		/* NULL: no reservation */
	const char *subject;		/* NULL: none */
	const char *model;			/* NULL: not named (policies) */
	int			ntags;
	AosTagPair	tags[AOS_TAGS_MAX];
	int			dims;
	bool		commit;			/* count, reserve, log and alert (check()) */
} EnfRequest;

/* One scope instance's part of a decision. */
typedef struct EnfScopeResult
{
	EnfKey		key;
	AosDecision decision;
	AosReason	reason;
	const char *dimension;		/* what decided on this scope: status, rpm, tpm, budget, tokens; NULL when nothing */
	int64		rate_retry;
	/* Each limit's position for explain_check() (-1: no limit). */
	AosLimitVerdict budget_verdict;
	AosLimitVerdict token_verdict;
	bool		rpm_refused;
	bool		tpm_refused;
	int64		spent;			/* settled in the budget period */
	int64		reserved_cost;
	int64		tokens_settled;
	int64		reserved_tokens;
	int64		rpm;
	int64		rpm_used;		/* weighted count of the last 60 seconds */
	int64		tpm;
	int64		tpm_used;
	AosMode		mode;
	int64		budget_used;
	int64		budget_limit;
	int64		tokens_used;
	int64		token_limit;
	TimestampTz budget_start;
	TimestampTz budget_end;
	TimestampTz token_start;
	TimestampTz token_end;
	int			warn_pct;
	uint8		new_budget_alerts;	/* alert flags this decision set */
	uint8		new_token_alerts;
	bool		admitted;		/* its rate windows counted the request */
	int64		minute;			/* their current minute then */
} EnfScopeResult;

/* What a committing decide() changed in the reservation table, for undo_decision. */
typedef struct EnfUndo
{
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
	int			decider;		/* index of the scope that decided (0: the integration) */
	int			nscopes;
	EnfScopeResult scopes[ENF_MAX_SCOPES];
	EnfUndo		undo;
} EnfResult;

/* Backend-local: which scopes of recently used tenants have limits, for one limits version; scope "" marks a tenant loaded. */
typedef struct ScopeCfgKey
{
	pg_uuid_t	tenant;
	char		scope[AOS_SCOPE_TEXT_MAX + 1];
} ScopeCfgKey;

#define SCOPE_CFG_MAX 65536
static HTAB *scope_cfg = NULL;
static uint64 scope_cfg_version = 0;

/* Find or add (tenant, scope) in scope_cfg. */
static bool
scope_cfg_lookup(const pg_uuid_t *tenant, const char *scope, HASHACTION action)
{
	ScopeCfgKey k;

	memset(&k, 0, sizeof(k));
	k.tenant = *tenant;
	strlcpy(k.scope, scope, sizeof(k.scope));
	return hash_search(scope_cfg, &k, action, NULL) != NULL;
}

/* Make scope_cfg hold tenant's scopes with limits as of the current limits version (every call on a standby). */
static void
load_scope_cfg(const pg_uuid_t *tenant)
{
	static const char *sql =
		"SELECT scope FROM aos_cus.cus_scope_limits WHERE tenant_id OPERATOR(pg_catalog.=) $1";
	uint64		version = pg_atomic_read_u64(&enf->limits_version);
	Oid			types[1] = {UUIDOID};
	Datum		values[1];
	AosElevation elevation;
	Snapshot	snapshot;

	if (scope_cfg == NULL || version != scope_cfg_version || RecoveryInProgress() ||
		hash_get_num_entries(scope_cfg) >= SCOPE_CFG_MAX)
	{
		HASHCTL		ctl;

		if (scope_cfg != NULL)
			hash_destroy(scope_cfg);
		ctl.keysize = sizeof(ScopeCfgKey);
		ctl.entrysize = sizeof(ScopeCfgKey);
		scope_cfg = hash_create("aos_cus scopes with limits", 64, &ctl, HASH_ELEM | HASH_BLOBS);
		scope_cfg_version = version;
	}
	if (scope_cfg_lookup(tenant, "", HASH_FIND))
		return;
	/* A 0.1.0 schema (not yet updated) has no scopes. */
	if (!OidIsValid(get_relname_relid("cus_scope_limits", get_namespace_oid("aos_cus", false))))
	{
		scope_cfg_lookup(tenant, "", HASH_ENTER);
		return;
	}
	aos_cus_elevate(&elevation);
	SPI_connect();
	snapshot = RegisterSnapshot(GetLatestSnapshot());
	values[0] = UUIDPGetDatum(tenant);
	if (SPI_execute_snapshot(aos_cus_keep_plan(&scope_cfg_plan, sql, 1, types), values, NULL,
							 snapshot, InvalidSnapshot, true, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "aos_cus: scope limits query failed");
	for (uint64 i = 0; i < SPI_processed; i++)
		scope_cfg_lookup(tenant, SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1), HASH_ENTER);
	UnregisterSnapshot(snapshot);
	SPI_finish();
	aos_cus_unelevate(&elevation);
	scope_cfg_lookup(tenant, "", HASH_ENTER);
}

/* The keys of the scope instances req touches that have limits: its integration, then tenant, subject, tags. */
static int
request_scopes(const EnfRequest *req, EnfKey *keys)
{
	const pg_uuid_t *t = &req->key.tenant;
	char		scope[AOS_SCOPE_TEXT_MAX + 1];
	char		pattern[AOS_SCOPE_TEXT_MAX + 1];
	int			n = 1;

	keys[0] = req->key;
	load_scope_cfg(t);
	if (scope_cfg_lookup(t, "tenant", HASH_FIND))
		scope_key(&keys[n++], t, "tenant");
	if (req->subject != NULL)
	{
		subject_scope(scope, req->subject);
		if (scope_cfg_lookup(t, scope, HASH_FIND) || scope_cfg_lookup(t, "subject:*", HASH_FIND))
			scope_key(&keys[n++], t, scope);
	}
	for (int i = 0; i < req->ntags; i++)
	{
		tag_scope(scope, &req->tags[i]);
		scope_pattern(scope, pattern);
		if (scope_cfg_lookup(t, scope, HASH_FIND) || scope_cfg_lookup(t, pattern, HASH_FIND))
			scope_key(&keys[n++], t, scope);
	}
	return n;
}

/* The entries a hot standby decides and reads on: this backend's, rebuilt on every call. */
static EnfEntry standby_entries[ENF_MAX_SCOPES];

/*
 * Rebuild standby entries for keys from the replayed tables and return them
 * with enf->lock held shared, as fresh_entries does.
 */
static int
standby_fresh_entries(EnfKey *keys, int n, TimestampTz now, EnfEntry **entries)
{
	int			m = 0;

	for (int i = 0; i < n; i++)
	{
		EnfLoaded	l;
		EnfEntry   *e = &standby_entries[m];

		read_durable_state(&keys[i], now, &l);
		if (!l.lim.found)
		{
			if (i == 0)
				return 0;
			continue;
		}
		memset(e, 0, sizeof(*e));
		e->key = keys[i];
		SpinLockInit(&e->mutex);
		e->lim = l.lim;
		e->budget_start = l.budget_start;
		e->budget_end = l.budget_end;
		e->token_start = l.token_start;
		e->token_end = l.token_end;
		e->spent = l.spent;
		e->tokens = l.tokens;
		e->last_used = now;
		keys[m] = keys[i];
		entries[m++] = e;
	}
	LWLockAcquire(enf->lock, LW_SHARED);
	return m;
}

/*
 * Look up every key and return the entries with enf->lock held shared,
 * loading each first when missing or stale; 0 (no lock held) for an
 * integration (keys[0]) that does not exist. A scope whose limits are gone
 * is dropped from keys (the count returned is the rest). A stale entry whose
 * reload meets a commit in progress is used as it is: the reload happens on
 * a later call. On a hot standby entries are backend-local and rebuilt on
 * every call (see the top of this file).
 */
static int
fresh_entries(EnfKey *keys, int n, TimestampTz now, EnfEntry **entries)
{
	bool		loaded[ENF_MAX_SCOPES];
	int			loads = 0;

	if (RecoveryInProgress())
		return standby_fresh_entries(keys, n, now, entries);
	memset(loaded, 0, sizeof(loaded));
	for (;;)
	{
		uint64		version = pg_atomic_read_u64(&enf->limits_version);
		int			need = -1;
		bool		cached = false;

		LWLockAcquire(enf->lock, LW_SHARED);
		for (int i = 0; i < n && need < 0; i++)
		{
			EnfEntry   *e = hash_search(enf_hash, &keys[i], HASH_FIND, NULL);
			bool		stale = true;

			if (e != NULL)
			{
				SpinLockAcquire(&e->mutex);
				stale = e->limits_version != version || now >= e->budget_end || now >= e->token_end;
				SpinLockRelease(&e->mutex);
			}
			if (e != NULL && (!stale || loaded[i]))
				entries[i] = e;
			else
			{
				need = i;
				cached = e != NULL;
			}
		}
		if (need < 0)
			return n;
		LWLockRelease(enf->lock);
		/* Loading one scope may evict another of the same call only when the tenant's quota is below its scopes. */
		if (++loads > 4 * n + 4)
			ereport(ERROR,
					(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
					 errmsg("aos_cus.max_integrations_per_tenant (%d) cannot hold the %d scopes of one call",
							Min(max_integrations_per_tenant, max_integrations), n)));
		switch (load_entry(&keys[need], now, cached))
		{
			case ENF_LOAD_UNKNOWN:
				if (need == 0)
					return 0;
				/* Its limits were deleted: the scope no longer applies. */
				memmove(&keys[need], &keys[need + 1], (n - need - 1) * sizeof(EnfKey));
				memmove(&loaded[need], &loaded[need + 1], (n - need - 1) * sizeof(bool));
				n--;
				break;
			case ENF_LOAD_STORED:
			case ENF_LOAD_BUSY:
				loaded[need] = true;	/* the next lookup takes what is cached */
				break;
		}
	}
}

/* One entry, as fresh_entries returns it; NULL (no lock held) for an integration that does not exist. */
static EnfEntry *
fresh_entry(const EnfKey *key, TimestampTz now)
{
	EnfKey		k = *key;
	EnfEntry   *e;

	return fresh_entries(&k, 1, now, &e) == 1 ? e : NULL;
}

/* The dimension a reason speaks of (status, rpm, tpm, budget, tokens); NULL for ok. */
static const char *
reason_dimension(AosReason reason, bool rpm_refused)
{
	switch (reason)
	{
		case AOS_REASON_NOT_FOUND:
		case AOS_REASON_DISABLED:
			return "status";
		case AOS_REASON_RATE_LIMITED:
			return rpm_refused ? "rpm" : "tpm";
		case AOS_REASON_BUDGET_EXCEEDED:
		case AOS_REASON_BUDGET_WARNING:
			return "budget";
		case AOS_REASON_TOKEN_LIMIT_EXCEEDED:
		case AOS_REASON_TOKEN_WARNING:
			return "tokens";
		case AOS_REASON_MODEL_NOT_ALLOWED:
			return "model";
		case AOS_REASON_REQUEST_COST_CAP:
			return "request_cost";
		case AOS_REASON_REQUEST_TOKEN_CAP:
			return "request_tokens";
		case AOS_REASON_CONCURRENCY_LIMIT:
			return "concurrency";
		default:
			return NULL;
	}
}

/* The decision on an integration that does not exist. */
static void
decide_unknown(const EnfKey *key, EnfResult *res)
{
	AosVerdicts v;
	EnfScopeResult *s = &res->scopes[0];

	memset(&v, 0, sizeof(v));
	memset(res, 0, sizeof(*res));
	res->decision = aos_cus_decide(&v, &res->reason);
	res->retry_ms = -1;
	res->nscopes = 1;
	s->key = *key;
	s->decision = res->decision;
	s->reason = res->reason;
	s->dimension = reason_dimension(res->reason, false);
	s->budget_limit = s->token_limit = s->rpm = s->tpm = -1;
	TIMESTAMP_NOBEGIN(s->budget_start);
	TIMESTAMP_NOEND(s->budget_end);
	s->token_start = s->budget_start;
	s->token_end = s->budget_end;
}

/* Entries' spinlocks are taken in address order: one order for every caller, so none waits in a cycle. */
static int
entry_order(const void *a, const void *b)
{
	const EnfEntry *x = *(EnfEntry *const *) a;
	const EnfEntry *y = *(EnfEntry *const *) b;

	return x < y ? -1 : x > y ? 1 : 0;
}

/*
 * The verdicts of one scope instance (its spinlock held); old is the call_id's
 * reservation being replaced, policy the integration's policy refusal (OK on other scopes).
 */
static void
decide_scope(EnfEntry *e, const EnfRequest *req, const EnfReservation *old, AosReason policy, TimestampTz now,
			 EnfScopeResult *sr)
{
	AosVerdicts v;
	/* A repeated check of a call_id replaces its own reservation, so it is not counted twice. */
	int64		used_cost = sat_add(e->spent, e->reserved_cost - (old ? old->cost : 0));
	int64		used_tokens = sat_add(e->tokens, e->reserved_tokens - (old ? old->tokens : 0));

	e->last_used = now;
	v.found = e->lim.found;
	v.enabled = e->lim.enabled;
	v.mode = e->lim.mode;
	v.policy = policy;
	v.rate_limited = false;
	v.budget = v.tokens = AOS_LIMIT_OK;
	sr->rate_retry = 0;
	sr->rpm_refused = sr->tpm_refused = false;
	aos_cus_rate_advance(&e->requests, now);
	aos_cus_rate_advance(&e->token_rate, now);
	if (req->dims & ENF_RATE)
	{
		int64		retry;

		if (e->lim.rpm >= 0 && !aos_cus_rate_admits(&e->requests, now, e->lim.rpm, 1, &retry))
		{
			v.rate_limited = sr->rpm_refused = true;
			sr->rate_retry = retry;
		}
		if (e->lim.tpm >= 0 && !aos_cus_rate_admits(&e->token_rate, now, e->lim.tpm, req->est_tokens, &retry))
		{
			v.rate_limited = sr->tpm_refused = true;
			sr->rate_retry = Max(sr->rate_retry, retry);
		}
	}
	if (req->dims & ENF_BUDGET)
		v.budget = aos_cus_limit_verdict(used_cost, req->est_cost, e->lim.budget, e->lim.warn_pct);
	if (req->dims & ENF_TOKENS)
		v.tokens = aos_cus_limit_verdict(used_tokens, req->est_tokens, e->lim.token_limit, e->lim.warn_pct);
	sr->budget_verdict = v.budget;
	sr->token_verdict = v.tokens;
	sr->mode = e->lim.mode;
	sr->rpm = e->lim.rpm;
	sr->tpm = e->lim.tpm;
	sr->rpm_used = aos_cus_rate_weighted(&e->requests, now);
	sr->tpm_used = aos_cus_rate_weighted(&e->token_rate, now);
	sr->decision = aos_cus_decide(&v, &sr->reason);
	sr->dimension = reason_dimension(sr->reason, sr->rpm_refused);
}

/* Count an admitted request on one scope instance (its spinlock held) and report its position and new alerts. */
static void
admit_scope(EnfEntry *e, const EnfRequest *req, const EnfReservation *old, bool admit, bool reserve,
			EnfScopeResult *sr)
{
	int64		used_cost,
				used_tokens;

	sr->admitted = false;
	if (admit)
	{
		e->requests.curr++;
		e->token_rate.curr = sat_add(e->token_rate.curr, req->est_tokens);
		sr->admitted = true;
		sr->minute = e->requests.minute;
		if (reserve)
		{
			e->reserved_cost = sat_add(e->reserved_cost, req->est_cost - (old ? old->cost : 0));
			e->reserved_tokens = sat_add(e->reserved_tokens, req->est_tokens - (old ? old->tokens : 0));
			if (old == NULL)
				e->nreservations++;
		}
	}
	sr->spent = e->spent;
	sr->reserved_cost = e->reserved_cost;
	sr->tokens_settled = e->tokens;
	sr->reserved_tokens = e->reserved_tokens;
	used_cost = sat_add(e->spent, e->reserved_cost);
	used_tokens = sat_add(e->tokens, e->reserved_tokens);
	/* Without a reservation an admitted estimate still counts toward this check's alert crossing. */
	if (admit && !reserve)
	{
		used_cost = sat_add(used_cost, req->est_cost);
		used_tokens = sat_add(used_tokens, req->est_tokens);
	}
	sr->budget_used = used_cost;
	sr->tokens_used = used_tokens;
	sr->budget_limit = e->lim.budget;
	sr->token_limit = e->lim.token_limit;
	sr->budget_start = e->budget_start;
	sr->budget_end = e->budget_end;
	sr->token_start = e->token_start;
	sr->token_end = e->token_end;
	sr->warn_pct = e->lim.warn_pct;
	sr->new_budget_alerts = sr->new_token_alerts = 0;
	if (req->commit && e->lim.found && e->lim.enabled)
	{
		sr->new_budget_alerts = reached_flags(used_cost, e->lim.budget, e->lim.warn_pct) & ~e->budget_alerts;
		sr->new_token_alerts = reached_flags(used_tokens, e->lim.token_limit, e->lim.warn_pct) & ~e->token_alerts;
		/* The first block of the period on this scope instance by its own budget or token limit. */
		if (sr->decision == AOS_DECISION_BLOCKED && sr->reason == AOS_REASON_BUDGET_EXCEEDED)
			sr->new_budget_alerts |= ENF_ALERT_BLOCKED & ~e->budget_alerts;
		if (sr->decision == AOS_DECISION_BLOCKED && sr->reason == AOS_REASON_TOKEN_LIMIT_EXCEEDED)
			sr->new_token_alerts |= ENF_ALERT_BLOCKED & ~e->token_alerts;
		e->budget_alerts |= sr->new_budget_alerts;
		e->token_alerts |= sr->new_token_alerts;
	}
}

/* The reservation key of req's call_id. */
static void
reservation_key(const EnfRequest *req, EnfResKey *rk)
{
	memset(rk, 0, sizeof(*rk));
	rk->dbid = req->key.dbid;
	rk->tenant = req->key.tenant;
	strlcpy(rk->call_id, req->call_id, sizeof(rk->call_id));
}

/*
 * Decide one request against every scope instance it touches; fills res.
 * All scope entries are locked together (spinlocks in address order) while
 * they are judged, and the request is admitted (rates counted, estimate
 * reserved) on all of them or on none. The most severe scope decides:
 * blocked over warned over allowed, the first in scope order among equals.
 */
static void
decide(const EnfRequest *req, EnfResult *res)
{
	TimestampTz now = GetCurrentTimestamp();
	EnfKey		keys[ENF_MAX_SCOPES];
	EnfEntry   *entries[ENF_MAX_SCOPES];
	EnfEntry   *order[ENF_MAX_SCOPES];
	EnfReservation *old = NULL;
	EnfResKey	rk;
	bool		reserve = req->commit && req->call_id != NULL;
	bool		admit;
	int			n;
	const EnfScopeResult *d;
	/* The integration's policy (read before any lock: it may query), for check() and explain_check(). */
	const AosPolicy *policy = aos_cus_policy_for(&req->key.tenant, &req->key.integration,
												 pg_atomic_read_u64(&enf->limits_version));
	AosReason	policy_reason = req->dims == ENF_ALL ?
		aos_cus_policy_verdict(policy, req->model, req->est_cost, req->est_tokens) : AOS_REASON_OK;

	n = fresh_entries(keys, request_scopes(req, keys), now, entries);
	if (n == 0)
	{
		decide_unknown(&req->key, res);
		return;
	}
	memset(&res->undo, 0, sizeof(res->undo));
	res->nscopes = n;
	if (reserve)
	{
		int			quota = Min(max_reservations_per_tenant, max_reservations);

		reservation_key(req, &rk);
		LWLockAcquire(enf->res_lock, LW_EXCLUSIVE);
		expire_reservations(now);
		old = hash_search(res_hash, &rk, HASH_FIND, NULL);
		if (old != NULL && (old->nentries != n || memcmp(old->entries, entries, n * sizeof(EnfEntry *)) != 0))
		{
			bool		other_integration = old->entries[0] != entries[0];

			LWLockRelease(enf->res_lock);
			LWLockRelease(enf->lock);
			ereport(ERROR,
					(errcode(ERRCODE_UNIQUE_VIOLATION),
					 errmsg("call_id \"%s\" already holds a reservation on %s", req->call_id,
							other_integration ? "another integration" : "other scopes (subject or tags)")));
		}
		if (old == NULL && entries[0]->tenant->nreservations >= quota)
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
	{
		expire_if_due(now);
		/* explain_check() with a call_id: its own reservation is not counted, as check() would replace it. */
		if (req->call_id != NULL)
		{
			reservation_key(req, &rk);
			LWLockAcquire(enf->res_lock, LW_SHARED);
			old = hash_search(res_hash, &rk, HASH_FIND, NULL);
			if (old != NULL && (old->nentries != n || memcmp(old->entries, entries, n * sizeof(EnfEntry *)) != 0))
				old = NULL;
		}
	}
	for (int i = 0; i < n; i++)
		lru_touch(entries[i]);

	memcpy(order, entries, n * sizeof(EnfEntry *));
	qsort(order, n, sizeof(EnfEntry *), entry_order);
	for (int i = 0; i < n; i++)
		SpinLockAcquire(&order[i]->mutex);
	/* In-flight calls are the integration's live reservations (leases released at ingest or expiry). */
	if (policy_reason == AOS_REASON_OK && req->dims == ENF_ALL && policy->max_concurrent >= 0 &&
		entries[0]->nreservations - (old ? 1 : 0) >= policy->max_concurrent)
		policy_reason = AOS_REASON_CONCURRENCY_LIMIT;
	res->decider = 0;
	for (int i = 0; i < n; i++)
	{
		res->scopes[i].key = keys[i];
		decide_scope(entries[i], req, old, i == 0 ? policy_reason : AOS_REASON_OK, now, &res->scopes[i]);
		if (res->scopes[i].decision > res->scopes[res->decider].decision)
			res->decider = i;
	}
	d = &res->scopes[res->decider];
	res->decision = d->decision;
	res->reason = d->reason;
	admit = req->commit && res->decision != AOS_DECISION_BLOCKED;
	for (int i = 0; i < n; i++)
		admit_scope(entries[i], req, old, admit, reserve, &res->scopes[i]);
	for (int i = n - 1; i >= 0; i--)
		SpinLockRelease(&order[i]->mutex);

	if (reserve)
	{
		if (admit)
		{
			EnfReservation *r = old;

			res->undo.reserved = true;
			if (r == NULL)
			{
				r = hash_search(res_hash, &rk, HASH_ENTER, NULL);
				r->nentries = n;
				memcpy(r->entries, entries, n * sizeof(EnfEntry *));
				entries[0]->tenant->nreservations++;
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
	else if (req->call_id != NULL)
		LWLockRelease(enf->res_lock);
	LWLockRelease(enf->lock);

	/* retry_after_ms: rate refusals say when a slot frees; limit refusals when the deciding period resets. */
	res->retry_ms = -1;
	if (res->reason == AOS_REASON_RATE_LIMITED)
		res->retry_ms = d->rate_retry;
	else if (res->reason == AOS_REASON_BUDGET_EXCEEDED && !TIMESTAMP_NOT_FINITE(d->budget_end))
		res->retry_ms = (d->budget_end - now + 999) / 1000;
	else if (res->reason == AOS_REASON_TOKEN_LIMIT_EXCEEDED && !TIMESTAMP_NOT_FINITE(d->token_end))
		res->retry_ms = (d->token_end - now + 999) / 1000;
}

/*
 * Take back what decide() changed for req (an error followed it): the
 * reservation made or replaced, the rate admissions and the alert flags set,
 * on every scope. Raises no error (called while one propagates).
 */
static void
undo_decision(const EnfRequest *req, const EnfResult *res)
{
	const EnfUndo *u = &res->undo;
	bool		any = u->reserved;
	EnfEntry   *integration;

	for (int i = 0; i < res->nscopes; i++)
		any = any || res->scopes[i].admitted || res->scopes[i].new_budget_alerts || res->scopes[i].new_token_alerts;
	if (!any)
		return;
	LWLockAcquire(enf->lock, LW_SHARED);
	integration = hash_search(enf_hash, &res->scopes[0].key, HASH_FIND, NULL);
	if (integration != NULL && u->reserved)
	{
		EnfResKey	rk;
		EnfReservation *r;

		reservation_key(req, &rk);
		LWLockAcquire(enf->res_lock, LW_EXCLUSIVE);
		r = hash_search(res_hash, &rk, HASH_FIND, NULL);
		if (r != NULL && r->entries[0] == integration && !u->replaced)
			release_reservation(r);
		else if (r != NULL && r->entries[0] == integration)
		{
			for (int i = 0; i < r->nentries; i++)
			{
				EnfEntry   *e = r->entries[i];

				SpinLockAcquire(&e->mutex);
				e->reserved_cost = sat_add(e->reserved_cost, u->old_cost - r->cost);
				e->reserved_tokens = sat_add(e->reserved_tokens, u->old_tokens - r->tokens);
				SpinLockRelease(&e->mutex);
			}
			r->cost = u->old_cost;
			r->tokens = u->old_tokens;
			r->expires_at = u->old_expires_at;
			dlist_delete(&r->node);
			insert_by_expiry(r);
		}
		publish_next_expiry();
		LWLockRelease(enf->res_lock);
	}
	for (int i = 0; i < res->nscopes; i++)
	{
		const EnfScopeResult *sr = &res->scopes[i];
		EnfEntry   *e = hash_search(enf_hash, &sr->key, HASH_FIND, NULL);

		if (e == NULL)
			continue;
		SpinLockAcquire(&e->mutex);
		if (sr->admitted)
		{
			aos_cus_rate_unadmit(&e->requests, sr->minute, 1);
			aos_cus_rate_unadmit(&e->token_rate, sr->minute, req->est_tokens);
		}
		e->budget_alerts &= ~sr->new_budget_alerts;
		e->token_alerts &= ~sr->new_token_alerts;
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
	const EnfScopeResult *d = &res->scopes[res->decider];

	memset(nulls, ' ', sizeof(nulls));
	values[0] = UUIDPGetDatum(&req->key.tenant);
	values[1] = UUIDPGetDatum(&req->key.integration);
	values[2] = req->call_id ? CStringGetTextDatum(req->call_id) : (Datum) 0;
	nulls[2] = req->call_id ? ' ' : 'n';
	values[3] = CStringGetTextDatum(aos_cus_decision_name(res->decision));
	values[4] = CStringGetTextDatum(aos_cus_reason_name(res->reason));
	values[5] = Int64GetDatum(req->est_cost);
	values[6] = Int64GetDatum(req->est_tokens);
	values[7] = Int64GetDatum(d->budget_used);
	values[8] = Int64GetDatum(d->budget_limit);
	nulls[8] = d->budget_limit < 0 ? 'n' : ' ';
	values[9] = Int64GetDatum(d->tokens_used);
	values[10] = Int64GetDatum(d->token_limit);
	nulls[10] = d->token_limit < 0 ? 'n' : ' ';
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

/* The scope text of an entry's key: its scope, or integration:<id>. */
static void
scope_name(const EnfKey *key, char *out)
{
	char		id[AOS_UUID_TEXT_LEN + 1];

	if (key->scope[0] != '\0')
	{
		strlcpy(out, key->scope, AOS_SCOPE_TEXT_MAX + 1);
		return;
	}
	aos_cus_uuid_format(key->integration.data, id);
	snprintf(out, AOS_SCOPE_TEXT_MAX + 1, "integration:%s", id);
}

/*
 * Per newly set alert flag of one scope instance: a NOTIFY aos_cus_alerts for
 * a crossed threshold (sent when the transaction commits) and a webhook event
 * in the outbox (in this transaction, once per period, threshold, limit and
 * scope instance; not in a read-only transaction). integration is the call's.
 */
static void
send_alerts(const EnfKey *integration_key, const EnfKey *key, const char *dimension, uint8 flags, int warn_pct,
			TimestampTz start, TimestampTz end, int64 used, int64 limit)
{
	char		tenant[AOS_UUID_TEXT_LEN + 1];
	char		integration[AOS_UUID_TEXT_LEN + 1];
	char		scope[AOS_SCOPE_TEXT_MAX + 1];

	aos_cus_uuid_format(key->tenant.data, tenant);
	aos_cus_uuid_format(integration_key->integration.data, integration);
	scope_name(key, scope);
	for (int bit = ENF_ALERT_WARN; bit <= ENF_ALERT_BLOCKED; bit <<= 1)
	{
		StringInfoData buf;
		StringInfoData type;
		StringInfoData dedup;
		int			threshold = bit == ENF_ALERT_WARN ? warn_pct : 100;

		if (!(flags & bit))
			continue;
		initStringInfo(&buf);
		appendStringInfo(&buf, "{\"tenant\": \"%s\", \"integration\": \"%s\", \"scope\": ", tenant, integration);
		escape_json(&buf, scope);
		appendStringInfo(&buf, ", \"dimension\": \"%s\", ", dimension);
		if (bit != ENF_ALERT_BLOCKED)
			appendStringInfo(&buf, "\"threshold\": %d, ", threshold);
		appendStringInfoString(&buf, "\"period\": {\"start\": ");
		append_json_ts(&buf, start);
		appendStringInfoString(&buf, ", \"end\": ");
		append_json_ts(&buf, end);
		appendStringInfo(&buf, "}, \"used\": " INT64_FORMAT ", \"limit\": " INT64_FORMAT "}", used, limit);
		if (bit != ENF_ALERT_BLOCKED)
			Async_Notify("aos_cus_alerts", buf.data);
		if (!XactReadOnly)
		{
			initStringInfo(&type);
			appendStringInfo(&type, "%s.%s", dimension, bit == ENF_ALERT_BLOCKED ? "exhausted" : "threshold");
			initStringInfo(&dedup);
			appendStringInfo(&dedup, "%s:%s:" INT64_FORMAT ":" INT64_FORMAT, type.data, scope,
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
	aos_cus_require_preload();
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

/* Build an aos_cus.decision from a result: the deciding scope's position. */
static Datum
decision_datum(FunctionCallInfo fcinfo, const EnfResult *res)
{
	const EnfScopeResult *d = &res->scopes[res->decider];
	TupleDesc	desc = (TupleDesc) fcinfo->flinfo->fn_extra;
	Datum		values[10];
	bool		nulls[10] = {false, false, false, false, false, false, false, false, false, false};
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
	values[3] = Int64GetDatum(d->budget_used);
	values[4] = Int64GetDatum(d->budget_limit);
	nulls[4] = d->budget_limit < 0;
	values[5] = Int64GetDatum(d->tokens_used);
	values[6] = Int64GetDatum(d->token_limit);
	nulls[6] = d->token_limit < 0;
	/* The reset that matters: the deciding limit's period, else the budget's, else the tokens'. */
	resets = (res->reason == AOS_REASON_TOKEN_LIMIT_EXCEEDED || res->reason == AOS_REASON_TOKEN_WARNING ||
			  d->budget_limit < 0) ? d->token_end : d->budget_end;
	if (d->budget_limit < 0 && d->token_limit < 0)
		TIMESTAMP_NOEND(resets);
	values[7] = TimestampTzGetDatum(resets);
	nulls[7] = TIMESTAMP_NOT_FINITE(resets);
	/* What decided: the scope and its dimension (NULL when nothing limited or warned). The 0.1.0 type has neither. */
	nulls[8] = nulls[9] = d->dimension == NULL;
	if (d->dimension != NULL)
	{
		char		scope[AOS_SCOPE_TEXT_MAX + 1];

		scope_name(&d->key, scope);
		values[8] = CStringGetTextDatum(scope);
		values[9] = CStringGetTextDatum(d->dimension);
	}
	Assert(desc->natts == 8 || desc->natts == 10);
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
	for (int i = 0; i < res->nscopes; i++)
	{
		const EnfScopeResult *s = &res->scopes[i];

		if (s->new_budget_alerts)
			send_alerts(&req->key, &s->key, "budget", s->new_budget_alerts, s->warn_pct,
						s->budget_start, s->budget_end, s->budget_used, s->budget_limit);
		if (s->new_token_alerts)
			send_alerts(&req->key, &s->key, "tokens", s->new_token_alerts, s->warn_pct,
						s->token_start, s->token_end, s->tokens_used, s->token_limit);
	}
	return decision_datum(fcinfo, res);
}

/* check()'s subject, tags and model (arguments 5-7 of the 8-argument form; the 0.1.0 form has 5). */
static void
read_scope_args(FunctionCallInfo fcinfo, EnfRequest *req)
{
	if (PG_NARGS() < 8)
		return;
	if (!PG_ARGISNULL(5))
	{
		req->subject = text_to_cstring(PG_GETARG_TEXT_PP(5));
		aos_cus_check_subject(req->subject, "subject");
	}
	if (!PG_ARGISNULL(7))
	{
		req->model = text_to_cstring(PG_GETARG_TEXT_PP(7));
		if (strlen(req->model) < 1 || strlen(req->model) > 200)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("model must be 1 to 200 bytes long")));
	}
	if (!PG_ARGISNULL(6))
	{
		Jsonb	   *tags = PG_GETARG_JSONB_P(6);
		char	   *problem;

		if (!JB_ROOT_IS_OBJECT(tags))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("tags must be a JSON object of strings")));
		if (JB_ROOT_COUNT(tags) > AOS_TAGS_MAX)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("tags has %u keys, more than the limit of %d", JB_ROOT_COUNT(tags), AOS_TAGS_MAX)));
		problem = aos_cus_read_tags(&tags->root, AOS_TAGS_MAX, req->tags, &req->ntags);
		if (problem)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s", problem)));
	}
}

/* The arguments check() and explain_check() share. */
static void
read_call_args(FunctionCallInfo fcinfo, const char *fname, EnfRequest *req)
{
	read_request(fcinfo, fname, req);
	req->est_cost = amount_arg(fcinfo, 2, "estimated_cost_microcents");
	req->est_tokens = amount_arg(fcinfo, 3, "estimated_tokens");
	if (!PG_ARGISNULL(4))
	{
		req->call_id = text_to_cstring(PG_GETARG_TEXT_PP(4));
		if (strlen(req->call_id) < 1 || strlen(req->call_id) > ENF_CALL_ID_MAX)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("call_id must be 1 to %d bytes long", ENF_CALL_ID_MAX)));
	}
	read_scope_args(fcinfo, req);
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

/* check(tenant_id, integration_id, estimated_cost_microcents, estimated_tokens, call_id, subject, tags, model). */
Datum
aos_cus_check(PG_FUNCTION_ARGS)
{
	EnfRequest	req;
	EnfResult	res;
	Datum		result;

	read_call_args(fcinfo, "aos_cus.check()", &req);
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
		decide_unknown(&req.key, &res);
		res.decision = res.scopes[0].decision = AOS_DECISION_BLOCKED;
		res.reason = res.scopes[0].reason = AOS_REASON_ALREADY_INGESTED;
		res.scopes[0].dimension = NULL;
	}
	else
		decide(&req, &res);
	PG_TRY();
	{
		result = check_side_effects(fcinfo, &req, &res);
		for (int i = 0; i < res.nscopes; i++)
			if (res.scopes[i].new_budget_alerts || res.scopes[i].new_token_alerts)
				remember_alerts(&res.scopes[i].key, res.scopes[i].new_budget_alerts, res.scopes[i].new_token_alerts);
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

/* SQL name of a limit verdict in explain_check(). */
static const char *
verdict_name(AosLimitVerdict v)
{
	return v == AOS_LIMIT_EXCEEDED ? "exceeded" : v == AOS_LIMIT_WARN ? "warning" : "ok";
}

/* One explain_check() row; a limit < 0 (none) leaves it out, but for the status and policy rows. */
static void
explain_row(ReturnSetInfo *rsinfo, const char *scope, const char *dimension, int64 limit, int64 used,
			int64 reserved, int64 estimate, TimestampTz start, TimestampTz end, AosMode mode, const char *verdict)
{
	static const char *const modes[] = {"enforce", "warn", "off"};
	Datum		values[11];
	bool		nulls[11];

	if (limit < 0 && strcmp(verdict, "ok") == 0)
		return;
	memset(nulls, 0, sizeof(nulls));
	values[0] = CStringGetTextDatum(scope);
	values[1] = CStringGetTextDatum(dimension);
	values[2] = Int64GetDatum(limit);
	values[3] = Int64GetDatum(used);
	values[4] = Int64GetDatum(reserved);
	values[5] = Int64GetDatum(Max(limit - sat_add(used, reserved), 0));
	values[6] = Int64GetDatum(estimate);
	values[7] = TimestampTzGetDatum(start);
	values[8] = TimestampTzGetDatum(end);
	values[9] = CStringGetTextDatum(modes[mode]);
	values[10] = CStringGetTextDatum(verdict);
	nulls[2] = nulls[3] = nulls[4] = nulls[5] = nulls[6] = limit < 0;
	nulls[7] = TIMESTAMP_NOT_FINITE(start);
	nulls[8] = TIMESTAMP_NOT_FINITE(end);
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}

/*
 * explain_check(): check()'s arguments; one row per limit of every scope
 * instance the call touches (budget, tokens, rpm, tpm), with its position and
 * verdict, from the same decision check() makes, reserving and counting nothing.
 */
Datum
aos_cus_explain_check(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	EnfRequest	req;
	EnfResult	res;
	TimestampTz none;

	read_call_args(fcinfo, "aos_cus.explain_check()", &req);
	req.dims = ENF_ALL;
	decide(&req, &res);
	InitMaterializedSRF(fcinfo, 0);
	TIMESTAMP_NOEND(none);
	for (int i = 0; i < res.nscopes; i++)
	{
		const EnfScopeResult *s = &res.scopes[i];
		char		scope[AOS_SCOPE_TEXT_MAX + 1];

		scope_name(&s->key, scope);
		if (s->reason == AOS_REASON_NOT_FOUND || s->reason == AOS_REASON_DISABLED)
		{
			explain_row(rsinfo, scope, "status", -1, 0, 0, 0, none, none, AOS_MODE_ENFORCE, aos_cus_reason_name(s->reason));
			continue;
		}
		if (s->reason >= AOS_REASON_MODEL_NOT_ALLOWED)
			explain_row(rsinfo, scope, s->dimension, -1, 0, 0, 0, none, none, s->mode, aos_cus_reason_name(s->reason));
		explain_row(rsinfo, scope, "budget", s->budget_limit, s->spent, s->reserved_cost, req.est_cost,
					s->budget_start, s->budget_end, s->mode, verdict_name(s->budget_verdict));
		explain_row(rsinfo, scope, "tokens", s->token_limit, s->tokens_settled, s->reserved_tokens, req.est_tokens,
					s->token_start, s->token_end, s->mode, verdict_name(s->token_verdict));
		explain_row(rsinfo, scope, "rpm", s->rpm, s->rpm_used, 0, 1, none, none, s->mode,
					s->rpm_refused ? "exceeded" : "ok");
		explain_row(rsinfo, scope, "tpm", s->tpm, s->tpm_used, 0, req.est_tokens, none, none, s->mode,
					s->tpm_refused ? "exceeded" : "ok");
	}
	return (Datum) 0;
}

/* release_reservation(tenant_id, call_id): frees the call's live reservation now; true when there was one. */
Datum
aos_cus_release_reservation(PG_FUNCTION_ARGS)
{
	const pg_uuid_t *tenant;
	char	   *call_id;
	EnfResKey	rk;
	EnfReservation *r;

	aos_cus_require_preload();
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

	aos_cus_require_preload();
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

	aos_cus_require_preload();
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
	/* Per scope kind: entries_<kind>, evictions_<kind>, rebuilds_<kind>. */
	for (int k = 0; k < ENF_KINDS; k++)
	{
		pg_atomic_uint64 *counters[3] = {&enf->kind_entries[k], &enf->kind_evictions[k], &enf->kind_rebuilds[k]};
		static const char *const what[3] = {"entries", "evictions", "rebuilds"};

		for (int w = 0; w < 3; w++)
		{
			Datum		values[2];
			bool		nulls[2] = {false, false};

			values[0] = CStringGetTextDatum(psprintf("%s_%s", what[w], kind_names[k]));
			values[1] = Int64GetDatum((int64) pg_atomic_read_u64(counters[w]));
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		}
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

	aos_cus_require_preload();
	LWLockAcquire(enf->lock, LW_SHARED);
	*rows = palloc(Max(hash_get_num_entries(enf_hash), 1) * sizeof(AosBudgetRow));
	hash_seq_init(&seq, enf_hash);
	while ((e = hash_seq_search(&seq)) != NULL)
	{
		AosBudgetRow *row = &(*rows)[n];
		bool		keep;

		if (e->key.dbid != MyDatabaseId || e->key.scope[0] != '\0')
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
	aos_cus_require_preload();
	for (int d = 0; d < AOS_DECISION_COUNT; d++)
		for (int r = 0; r < AOS_REASON_COUNT; r++)
			pg_atomic_write_u64(&enf->decisions[d][r], 0);
}
