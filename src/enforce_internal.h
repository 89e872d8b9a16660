/*
 * enforce_internal.h: what the files of pre-call enforcement share (README:
 * Enforcement). Public entry points are in enforce.h; this header is for
 * src/enforce_*.c only. The files, by concern:
 *   enforce_state.c   shared memory: the hashes, LRU lists and eviction, the
 *                     reservation expiry list, the GUCs that size them;
 *   enforce_settle.c  commit-time settlement of usage and of alert flags, the
 *                     triggers that queue it, the settlement stripe locks;
 *   enforce_load.c    (re)building entries from the durable tables, periods,
 *                     which scopes of a call have limits;
 *   enforce_decide.c  the decision across every scope of a call, its undo,
 *                     and its side effects (enforcement log, alerts);
 *   enforce_sql.c     the SQL functions and their argument checks.
 *
 * Shared state
 *   - an entry hash keyed by (database, tenant_id, integration_id, scope),
 *     sized by aos_cus.max_integrations: cached limits, the budget and token
 *     periods with their settled spend and tokens, reserved amounts, the rpm
 *     and tpm sliding windows and the alert flags of the current periods.
 *     Only integrations and scopes with limits get an entry: an unknown id is
 *     answered integration_not_found from the durable tables and leaves no
 *     trace;
 *   - a tenant hash keyed by (database, tenant_id): each tenant's count of
 *     entries and reservations, held to aos_cus.max_integrations_per_tenant
 *     and aos_cus.max_reservations_per_tenant, so one tenant cannot fill the
 *     tables for the others (only the tenant over its quota gets 53400);
 *   - a reservation hash keyed by (database, tenant_id, SHA-256 of call_id
 *     truncated to 128 bits: a fixed 36-byte key, not the 256 bytes a
 *     call_id may take; see enf_reservation_key), sized by
 *     aos_cus.max_reservations; every reservation is also linked into one
 *     global list in expiry order (one TTL: creation order, an O(1) append),
 *     popped by every check before reservations are counted;
 *   - LRU lists of entries in use order, one pair for the whole table and one
 *     per tenant: "plain" entries without rpm/tpm/rph/rpd and "rate" entries with one.
 *     Eviction looks at the list heads only: an entry holding reservations is
 *     unlinked when met there (relinked when its last reservation goes), and a
 *     rate entry whose window is live (admissions in the current or previous
 *     minute) is never evicted, as that would reset its window and admit more
 *     than the limit (nor one whose rph/rpd period counted requests); being used in order, a live head means no rate entry is
 *     evictable. A tenant at its entry quota evicts its own least recently
 *     used entry; a full table evicts the global one; when nothing is
 *     evictable, 53400;
 *   - decision counters per (decision, reason), counters per scope kind and a
 *     limits version, atomics.
 *
 * Locking rules. Every lock acquisition in enforce_*.c names its rule here.
 * Locks are taken in this order, never the reverse:
 *   1. Settlement stripe (heavyweight lock, enf_stripe_locktag): taken with no
 *      LWLock held. A usage writer takes its stripes in ShareLock at
 *      XACT_EVENT_PRE_COMMIT (before its rows become visible) and keeps them
 *      until its commit callback has applied its deltas; a rebuild
 *      (load_entry) tries ExclusiveLock around its snapshot, query and store
 *      without ever waiting. So check() never waits for another transaction.
 *   2. EnfShared->lock (LWLock): the entry and tenant hashes. Entries are
 *      created, reloaded and evicted only with it held exclusively (which
 *      also guards the LRU lists); lookups and counter updates hold it
 *      shared, which keeps the entry and its tenant from going away.
 *   3. EnfShared->res_lock (LWLock): the reservation hash, the expiry list and
 *      the reservation counts. Exclusive for any change, and then only while
 *      holding (2) at least shared; a lookup that touches no entry may take
 *      it shared alone (reservation_exists).
 *   4. EnfEntry->mutex and EnfShared->lru_mutex (spinlocks): the entry's
 *      counters, windows, limits and flags; the LRU lists while (2) is held
 *      shared. Held for a few straight-line instructions, nothing that can
 *      raise an error. lru_mutex never nests with an entry's mutex; the
 *      entry mutexes of one decision are held together, taken in address
 *      order (entry_order), so no two deciders wait in a cycle. One
 *      exception: an entry's limits_version and period bounds (budget,
 *      token, hour and day start and end) are written only with (2) held
 *      exclusively (load_entry, enf_create_entry), so a holder of (2) shared
 *      reads them without the mutex (the staleness test of
 *      enf_fresh_entries). A decision touches its entries' LRU positions
 *      under one lru_mutex acquisition (enf_lru_touch).
 *   Decision counters, the limits version and the next expiry are atomics,
 *   read and written without a lock. Before raising an error with (2) or (3)
 *   held, the raiser releases them (enf_capacity_error).
 *
 * Shared memory is a cache of the durable tables. An entry is (re)built on
 * first use, when its period ends and when the limits version moved, by one
 * indexed query over cus_usage_daily and the usage rows the rollup has not
 * folded yet (see the rollup contract in 10_tables.sql). The rebuild and the
 * commit-time settlement of usage are ordered by the stripe lock of rule 1.
 * With it, every committed row is counted exactly once, either by the query
 * or by its own settlement. When a commit of the same stripe holds it at
 * that instant, a cached entry is kept as it is and a missing one is stored
 * from the query but marked stale, so it is rebuilt on its next use: only
 * rows of the commits in progress at that instant may be off until then. An
 * open transaction that wrote usage holds no such lock.
 *
 * On a hot standby nothing is stored: WAL replay moves neither the limits
 * version nor the periods, and no commit settles usage there, so reads and
 * probes use a backend-local entry rebuilt from the replayed tables on every
 * call, and check() (which counts rates and holds reservations) is refused.
 * Shared memory is therefore empty when the standby is promoted, and each
 * first use after promotion rebuilds from the durable tables.
 *
 * check() changes shared memory when it decides (rate admission, reservation,
 * alert flags), then logs and alerts; when those fail, enf_undo_decision
 * takes the changes back, so nothing outlives a failed check(). In a
 * read-only transaction the log write is skipped and counted
 * (stat_enforcement).
 *
 * Limits changes: statement triggers on cus_integrations, cus_scope_limits
 * and cus_policies bump the limits version at commit; an entry loaded under
 * an older version reloads on its next use, keeping its reservations, rate
 * windows and alert flags.
 *
 * Rate limits use a sliding-window counter over calendar minutes (UTC): the
 * previous minute's count weighted by the part of it still inside the last
 * 60 seconds, plus the current minute's count, may not exceed the limit
 * (src/core/enforce_math.c). It admits at most rpm (tpm) per calendar minute,
 * exactly, as the test and admit happen under the entry's spinlock.
 *
 * Request quotas (rph, rpd) count requests per calendar hour and day of the
 * limit's timezone (date_trunc(unit, now, zone), right across DST changes),
 * tested and counted at admission under the entry's spinlock, so exact under
 * concurrency like rpm. An entry is rebuilt when its hour or day ends. A
 * (re)build counts the usage rows whose started_at is in the period plus the
 * entry's live reservations (admitted, not yet ingested), and a reload of a
 * cached entry in the same period keeps the larger of that and its own
 * count: never fewer than were admitted. An entry whose quota period has
 * counted requests is live for eviction like a live rate window (evicting it
 * would lose admissions not yet ingested). After a restart, admissions whose
 * usage was never ingested and that hold no reservation are not known.
 */
#ifndef AOS_CUS_ENFORCE_INTERNAL_H
#define AOS_CUS_ENFORCE_INTERNAL_H

#include "postgres.h"

#include "aos_cus.h"
#include "enforce.h"
#include "enforce_math.h"
#include "scope.h"

#include "access/xact.h"
#include "lib/ilist.h"
#include "port/atomics.h"
#include "storage/lock.h"
#include "storage/lwlock.h"
#include "storage/spin.h"
#include "utils/hsearch.h"
#include "utils/timestamp.h"

/* Number of striped heavyweight locks that order settlement and rebuilds (see enf_stripe_locktag). */
#define ENF_LOCK_STRIPES 32
/* Lock tag field 4 that marks those locks in pg_locks (advisory). */
#define ENF_LOCKTAG_CLASS 0xA05C
#define ENF_CALL_ID_MAX 255
/* Scope kinds counted in stat_enforcement(): integration, tenant, subject, tag (enf_key_kind()). */
#define ENF_KINDS 4

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
	int64		rph;
	int64		rpd;
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
	/* Requests admitted in the calendar hour and day (limit's timezone) that contain now: rph and rpd. */
	TimestampTz hour_start;
	TimestampTz hour_end;
	TimestampTz day_start;
	TimestampTz day_end;
	int64		hour_requests;
	int64		day_requests;
	uint8		budget_alerts;
	uint8		token_alerts;
	TimestampTz last_used;
} EnfEntry;

/* Bytes of a call_id's digest in a reservation key. */
#define ENF_CALL_DIGEST_LEN 16

typedef struct EnfResKey
{
	Oid			dbid;
	pg_uuid_t	tenant;
	uint8		call_digest[ENF_CALL_DIGEST_LEN];	/* SHA-256 of the call_id, first 128 bits */
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

/*
 * Every check() reads the first group and writes the others: each written
 * group starts a cache line of its own, so one backend's writes do not
 * invalidate the line the others read (false sharing).
 */
typedef struct EnfShared
{
	LWLock	   *lock;
	LWLock	   *res_lock;
	pg_atomic_uint64 limits_version;
	slock_t		lru_mutex pg_attribute_aligned(PG_CACHE_LINE_SIZE);
	EnfLru		lru;			/* every entry (lru_node) */
	dlist_head	expiry pg_attribute_aligned(PG_CACHE_LINE_SIZE);	/* every reservation, soonest expiry first (res_lock) */
	pg_atomic_uint64 next_expiry;	/* expires_at of expiry's head, PG_INT64_MAX when empty */
	pg_atomic_uint64 evictions pg_attribute_aligned(PG_CACHE_LINE_SIZE);
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
	EnfResKey  *reservation;	/* set when a reservation may be settled */
	/* For the usage counters per provider and model (usage_stats.c); NULL on the deltas of scopes. */
	const char *provider;		/* provider label (static) */
	char	   *model;
	int64		requests;
	int64		input_tokens;
	int64		output_tokens;
} EnfDelta;

/* started_at is folded into 15-minute buckets: every time zone offset is a multiple of it. */
#define ENF_BUCKET_US (INT64CONST(15) * 60 * USECS_PER_SEC)

/* a + b, saturating at the int64 range (totals so large are past every limit anyway). */
static inline int64
sat_add(int64 a, int64 b)
{
	int64		r;

	if (aos_cus_add_overflows(a, b, &r))
		return b > 0 ? PG_INT64_MAX : PG_INT64_MIN;
	return r;
}

/* What enf_capacity_error reports full. */
typedef enum EnfCapacity
{
	CAPACITY_INTEGRATIONS,		/* the integration cache (of one tenant when tenant is set) */
	CAPACITY_RESERVATIONS,		/* the reservation table (of one tenant when tenant is set) */
} EnfCapacity;

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
	EnfResKey	res_key;		/* the reservation key of call_id, when set */
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
	bool		rph_refused;
	bool		rpd_refused;
	int64		spent;			/* settled in the budget period */
	int64		reserved_cost;
	int64		tokens_settled;
	int64		reserved_tokens;
	int64		rpm;
	int64		rpm_used;		/* weighted count of the last 60 seconds */
	int64		tpm;
	int64		tpm_used;
	int64		rph;
	int64		rph_used;		/* requests admitted in the calendar hour */
	int64		rpd;
	int64		rpd_used;		/* requests admitted in the calendar day */
	TimestampTz hour_start;
	TimestampTz hour_end;
	TimestampTz day_start;
	TimestampTz day_end;
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
	TimestampTz quota_hour;		/* the hour_start and day_start it was counted in */
	TimestampTz quota_day;
} EnfScopeResult;

/* What a committing enf_decide() changed in the reservation table, for enf_undo_decision. */
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

/* ---------- enforce_state.c: shared state and eviction ---------- */

extern EnfShared *enf;
extern HTAB *enf_hash;			/* entries (rule 2) */
extern HTAB *enf_res_hash;		/* reservations (rule 3) */
extern HTAB *enf_tenant_hash;	/* tenants (rule 2) */

/* GUCs (aos_cus_enforce_init). */
extern int	enf_max_integrations;
extern int	enf_max_reservations;
extern int	enf_max_integrations_per_tenant;
extern int	enf_max_reservations_per_tenant;
extern int	enf_reservation_ttl_ms;
extern int	enf_log_max_rows;

extern uint32 enf_key_hash(const void *key, Size keysize);
extern void enf_scope_key(EnfKey *key, const pg_uuid_t *tenant, const char *scope);
extern void enf_subject_scope(char *out, const char *subject);
extern void enf_tag_scope(char *out, const AosTagPair *tag);
extern void enf_scope_name(const EnfKey *key, char *out);
extern void enf_reservation_key(EnfResKey *rk, const pg_uuid_t *tenant, const char *call_id);
extern int	enf_key_kind(const EnfKey *key);
extern void enf_lru_link(EnfEntry *e);
extern void enf_lru_unlink(EnfEntry *e);
extern void enf_lru_touch(EnfEntry *const *entries, int n);
extern void enf_publish_next_expiry(void);
extern bool enf_any_reservation(void);
extern void enf_release_reservation(EnfReservation *r);
extern void enf_expire_reservations(TimestampTz now);
extern void enf_expire_if_due(TimestampTz now);
extern void enf_insert_by_expiry(EnfReservation *r);
extern void enf_capacity_error(EnfCapacity what, int value, const pg_uuid_t *tenant);
extern EnfEntry *enf_create_entry(const EnfKey *key, TimestampTz now);

/* ---------- enforce_settle.c: commit-time settlement ---------- */

extern void enf_stripe_locktag(LOCKTAG *tag, uint32 n);
extern uint32 enf_stripe_of(const EnfKey *key);
extern void enf_remember_alerts(const EnfKey *key, uint8 budget, uint8 tokens);
extern void enf_xact_callback(XactEvent event, void *arg);
extern void enf_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
								 SubTransactionId parentSubid, void *arg);

/* ---------- enforce_load.c: loading from the durable tables ---------- */

extern EnfPeriod enf_period_from_name(const char *name);
extern void enf_period_bounds(EnfPeriod period, const char *zone, TimestampTz now,
							  TimestampTz *start, TimestampTz *end);
extern void enf_hour_bounds(const char *zone, TimestampTz now, TimestampTz *start, TimestampTz *end);
extern uint8 enf_reached_flags(int64 used, int64 limit, int warn_pct);
extern int	enf_request_scopes(const EnfRequest *req, EnfKey *keys);
extern int	enf_fresh_entries(EnfKey *keys, int n, TimestampTz now, EnfEntry **entries);
extern EnfEntry *enf_fresh_entry(const EnfKey *key, TimestampTz now);

/* ---------- enforce_decide.c: the decision ---------- */

extern void enf_decide(const EnfRequest *req, EnfResult *res);
extern void enf_decide_unknown(const EnfKey *key, EnfResult *res);
extern void enf_undo_decision(const EnfRequest *req, const EnfResult *res);
extern void enf_log_decision(const EnfRequest *req, const EnfResult *res);
extern void enf_send_alerts(const EnfKey *integration_key, const EnfKey *key, const char *dimension, uint8 flags,
							int warn_pct, TimestampTz start, TimestampTz end, int64 used, int64 limit);

#endif
