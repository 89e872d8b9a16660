/*
 * enforce_state.c: enforcement state in shared memory (enforce_internal.h):
 * the entry, tenant and reservation hashes, the LRU lists and eviction, the
 * reservation expiry list, and the GUCs that size them.
 */

#include "enforce_internal.h"
#include "integrations.h"
#include "policy.h"
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
#include "common/cryptohash.h"
#include "common/hashfn.h"
#include "common/sha2.h"
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

EnfShared *enf = NULL;
HTAB *enf_hash = NULL;
HTAB *enf_res_hash = NULL;
HTAB *enf_tenant_hash = NULL;

int			enf_max_integrations = 10000;
int			enf_max_reservations = 640000;
int			enf_max_integrations_per_tenant = 2500;
int			enf_max_reservations_per_tenant = 160000;
int			enf_reservation_ttl_ms = 600000;
int			enf_log_max_rows = 100000;

/* ---------- shared memory ---------- */

/* Bytes of shared memory for the state (the hashes and the header). */
Size
aos_cus_enforce_shmem_size(void)
{
	Size		size = MAXALIGN(sizeof(EnfShared));

	size = add_size(size, hash_estimate_size(enf_max_integrations, sizeof(EnfEntry)));
	/* A tenant exists only with an entry; one more while a new tenant's first entry is made. */
	size = add_size(size, hash_estimate_size(enf_max_integrations + 1, sizeof(EnfTenant)));
	size = add_size(size, hash_estimate_size(enf_max_reservations, sizeof(EnfReservation)));
	return size;
}

/* Ask for the two LWLocks (from the shmem request hook). */
void
aos_cus_enforce_shmem_request(void)
{
	RequestNamedLWLockTranche("aos_cus enforcement", 2);
}

/* Hash of an entry key: its fixed part and its scope text up to the NUL (the rest is padding). */
uint32
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
	enf_hash = ShmemInitHash("aos_cus enforcement integrations", enf_max_integrations, enf_max_integrations,
							 &info, HASH_ELEM | HASH_FUNCTION | HASH_COMPARE);
	info.keysize = sizeof(EnfResKey);
	info.entrysize = sizeof(EnfReservation);
	enf_res_hash = ShmemInitHash("aos_cus enforcement reservations", enf_max_reservations, enf_max_reservations,
							 &info, HASH_ELEM | HASH_BLOBS);
	info.keysize = sizeof(EnfTenantKey);
	info.entrysize = sizeof(EnfTenant);
	enf_tenant_hash = ShmemInitHash("aos_cus enforcement tenants", enf_max_integrations + 1, enf_max_integrations + 1,
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
void
enf_lru_link(EnfEntry *e)
{
	dlist_push_tail(lru_list(&enf->lru, e), &e->lru_node);
	dlist_push_tail(lru_list(&e->tenant->lru, e), &e->lru_node_tenant);
	e->lru_linked = true;
}

/* Take e out of its lists, if in them (same locking as enf_lru_link). */
void
enf_lru_unlink(EnfEntry *e)
{
	if (!e->lru_linked)
		return;
	dlist_delete(&e->lru_node);
	dlist_delete(&e->lru_node_tenant);
	e->lru_linked = false;
}

/* The n entries of one decision were used, in this order: move each to the tails of its lists (lock held shared). */
void
enf_lru_touch(EnfEntry *const *entries, int n)
{
	/* Lock rule 4 (enforce_internal.h). */
	SpinLockAcquire(&enf->lru_mutex);
	for (int i = 0; i < n; i++)
	{
		EnfEntry   *e = entries[i];

		if (e->lru_linked)
		{
			dlist_move_tail(lru_list(&enf->lru, e), &e->lru_node);
			dlist_move_tail(lru_list(&e->tenant->lru, e), &e->lru_node_tenant);
		}
	}
	SpinLockRelease(&enf->lru_mutex);
}

/* Whether a rate limit or request quota of e still counts admissions at now (evicting it would lose them). */
static bool
rate_live(const EnfEntry *e, TimestampTz now)
{
	return (e->lim.rpm >= 0 && aos_cus_rate_live(&e->requests, now)) ||
		(e->lim.tpm >= 0 && aos_cus_rate_live(&e->token_rate, now)) ||
		(e->lim.rph >= 0 && e->hour_requests > 0 && now < e->hour_end) ||
		(e->lim.rpd >= 0 && e->day_requests > 0 && now < e->day_end);
}

/*
 * The least recently used evictable entry of lru, or NULL (lock exclusive).
 * Looks at each list's head only: entries holding reservations met there are
 * unlinked (relinked by enf_release_reservation), a live rate head ends the rate list.
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
				enf_lru_unlink(e);
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
void
enf_publish_next_expiry(void)
{
	int64		next = PG_INT64_MAX;

	if (!dlist_is_empty(&enf->expiry))
		next = dlist_head_element(EnfReservation, node, &enf->expiry)->expires_at;
	pg_atomic_write_u64(&enf->next_expiry, (uint64) next);
}

/* Whether any reservation is held, by the lock-free peek (reservations expire, so none has a PG_INT64_MAX deadline). */
bool
enf_any_reservation(void)
{
	return (int64) pg_atomic_read_u64(&enf->next_expiry) != PG_INT64_MAX;
}

/* Release one reservation: its amounts on every entry, counts and list places (lock at least shared, res_lock exclusive). */
void
enf_release_reservation(EnfReservation *r)
{
	for (int i = 0; i < r->nentries; i++)
	{
		EnfEntry   *e = r->entries[i];
		bool		unpinned;

		/* Lock rule 4 (enforce_internal.h). */
		SpinLockAcquire(&e->mutex);
		e->reserved_cost -= r->cost;
		e->reserved_tokens -= r->tokens;
		e->nreservations--;
		unpinned = e->nreservations == 0;
		SpinLockRelease(&e->mutex);
		if (unpinned)
		{
			/* Lock rule 4 (enforce_internal.h). */
			SpinLockAcquire(&enf->lru_mutex);
			if (!e->lru_linked)
				enf_lru_link(e);
			SpinLockRelease(&enf->lru_mutex);
		}
	}
	r->entries[0]->tenant->nreservations--;
	dlist_delete(&r->node);
	hash_search(enf_res_hash, &r->key, HASH_REMOVE, NULL);
}

/* Release every reservation whose time is up, soonest first, across all tenants (res_lock exclusive). */
void
enf_expire_reservations(TimestampTz now)
{
	while (!dlist_is_empty(&enf->expiry))
	{
		EnfReservation *r = dlist_head_element(EnfReservation, node, &enf->expiry);

		if (r->expires_at > now)
			break;
		enf_release_reservation(r);
	}
	enf_publish_next_expiry();
}

/* Expire due reservations if the lock-free peek says some are due (lock held at least shared). */
void
enf_expire_if_due(TimestampTz now)
{
	if ((int64) pg_atomic_read_u64(&enf->next_expiry) > now)
		return;
	/* Lock rule 3 (enforce_internal.h). */
	LWLockAcquire(enf->res_lock, LW_EXCLUSIVE);
	enf_expire_reservations(now);
	LWLockRelease(enf->res_lock);
}

/* Link r into the expiry list by its deadline, from the tail: with one TTL that is the tail itself. */
void
enf_insert_by_expiry(EnfReservation *r)
{
	dlist_iter	it;

	dlist_reverse_foreach(it, &enf->expiry)
	{
		EnfReservation *o = dlist_container(EnfReservation, node, it.cur);

		if (o->expires_at <= r->expires_at)
		{
			dlist_insert_after(it.cur, &r->node);
			enf_publish_next_expiry();
			return;
		}
	}
	dlist_push_head(&enf->expiry, &r->node);
	enf_publish_next_expiry();
}

/* The key of scope instance scope (its text) of tenant. */
void
enf_scope_key(EnfKey *key, const pg_uuid_t *tenant, const char *scope)
{
	memset(key, 0, sizeof(*key));
	key->dbid = MyDatabaseId;
	key->tenant = *tenant;
	strlcpy(key->scope, scope, sizeof(key->scope));
}

/* The scope text of a subject or of one tag. */
void
enf_subject_scope(char *out, const char *subject)
{
	snprintf(out, AOS_SCOPE_TEXT_MAX + 1, "subject:%s", subject);
}

void
enf_tag_scope(char *out, const AosTagPair *tag)
{
	snprintf(out, AOS_SCOPE_TEXT_MAX + 1, "tag:%s=%s", tag->key, tag->value);
}

/* 53400 for a full table or quota (of tenant, when not NULL): release the hash lock first. */
void
enf_capacity_error(EnfCapacity what, int value, const pg_uuid_t *tenant)
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
int
enf_key_kind(const EnfKey *key)
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

	enf_lru_unlink(e);
	if (--t->nentries == 0)
		hash_search(enf_tenant_hash, &t->key, HASH_REMOVE, NULL);
	hash_search(enf_hash, &e->key, HASH_REMOVE, NULL);
	pg_atomic_fetch_add_u64(&enf->evictions, 1);
	pg_atomic_fetch_sub_u64(&enf->kind_entries[enf_key_kind(&e->key)], 1);
	pg_atomic_fetch_add_u64(&enf->kind_evictions[enf_key_kind(&e->key)], 1);
}

/*
 * Make a new, empty entry for key (lock exclusive). A tenant at its quota
 * evicts its own least recently used entry, a full table the global one;
 * 53400 when nothing there may be evicted.
 */
EnfEntry *
enf_create_entry(const EnfKey *key, TimestampTz now)
{
	EnfTenantKey tk;
	EnfTenant  *t;
	EnfEntry   *e;
	int			quota = Min(enf_max_integrations_per_tenant, enf_max_integrations);
	bool		found;

	memset(&tk, 0, sizeof(tk));
	tk.dbid = key->dbid;
	tk.tenant = key->tenant;
	t = hash_search(enf_tenant_hash, &tk, HASH_FIND, NULL);
	if (t != NULL && t->nentries >= quota)
	{
		EnfEntry   *victim = lru_victim(&t->lru, now);

		if (victim == NULL)
			enf_capacity_error(CAPACITY_INTEGRATIONS, quota, &key->tenant);
		evict_entry(victim);
	}
	else if (hash_get_num_entries(enf_hash) >= enf_max_integrations)
	{
		EnfEntry   *victim = lru_victim(&enf->lru, now);

		if (victim == NULL)
			enf_capacity_error(CAPACITY_INTEGRATIONS, enf_max_integrations, NULL);
		evict_entry(victim);
	}
	/* The eviction may have removed this very tenant. */
	t = hash_search(enf_tenant_hash, &tk, HASH_ENTER_NULL, &found);
	e = t == NULL ? NULL : hash_search(enf_hash, key, HASH_ENTER_NULL, NULL);
	if (e == NULL)
	{
		if (t != NULL && !found)
			hash_search(enf_tenant_hash, &tk, HASH_REMOVE, NULL);
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
	pg_atomic_fetch_add_u64(&enf->kind_entries[enf_key_kind(key)], 1);
	memset((char *) e + sizeof(EnfKey), 0, sizeof(EnfEntry) - sizeof(EnfKey));
	SpinLockInit(&e->mutex);
	e->tenant = t;
	e->budget_start = e->token_start = e->hour_start = e->day_start = DT_NOEND;	/* differs from any real start */
	enf_lru_link(e);
	return e;
}

/*
 * The reservation key of tenant's call_id in this database. The call_id (up to
 * 255 bytes) is kept as the first 128 bits of its SHA-256, so a reservation
 * slot holds a 36-byte key: two call_ids of one tenant share a slot only if
 * they collide in 128 bits of SHA-256. Raises on a hashing failure, so callers
 * that may not raise (commit, undo) use a key made earlier.
 */
void
enf_reservation_key(EnfResKey *rk, const pg_uuid_t *tenant, const char *call_id)
{
	pg_cryptohash_ctx *ctx = pg_cryptohash_create(PG_SHA256);
	uint8		digest[PG_SHA256_DIGEST_LENGTH];

	StaticAssertStmt(ENF_CALL_DIGEST_LEN <= PG_SHA256_DIGEST_LENGTH, "digest is part of SHA-256");
	if (pg_cryptohash_init(ctx) < 0 ||
		pg_cryptohash_update(ctx, (const uint8 *) call_id, strlen(call_id)) < 0 ||
		pg_cryptohash_final(ctx, digest, sizeof(digest)) < 0)
		elog(ERROR, "aos_cus: could not hash a call_id: %s", pg_cryptohash_error(ctx));
	pg_cryptohash_free(ctx);
	memset(rk, 0, sizeof(*rk));
	rk->dbid = MyDatabaseId;
	rk->tenant = *tenant;
	memcpy(rk->call_digest, digest, ENF_CALL_DIGEST_LEN);
}

/* The scope text of an entry's key: its scope, or integration:<id>. */
void
enf_scope_name(const EnfKey *key, char *out)
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

/* Register the GUCs; when preloaded, the transaction callbacks too. */
void
aos_cus_enforce_init(void)
{
	DefineCustomIntVariable("aos_cus.reservation_ttl",
							"How long a reservation counts as spent before it is released unused.",
							NULL,
							&enf_reservation_ttl_ms, 600000, 1, INT_MAX,
							PGC_SUSET, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("aos_cus.enforcement_log_max_rows",
							"Rows kept per tenant in aos_cus.cus_enforcement_log (older ones are pruned).",
							NULL,
							&enf_log_max_rows, 100000, 1000, INT_MAX,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
	/* Sizes of shared memory exist only when preloaded (PGC_POSTMASTER cannot be defined later). */
	if (!process_shared_preload_libraries_in_progress)
		return;
	DefineCustomIntVariable("aos_cus.max_integrations",
							"Integrations whose enforcement state fits in shared memory.",
							"A full table evicts the least recently used entry without reservations.",
							&enf_max_integrations, 10000, 16, 10000000,
							PGC_POSTMASTER, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("aos_cus.max_reservations",
							"Reservations (checks with a call_id not yet ingested) that fit in shared memory.",
							"About 260 bytes of shared memory each; the default holds 1,000 reserving calls/s that never ingest for the default 10-minute aos_cus.reservation_ttl.",
							&enf_max_reservations, 640000, 16, 10000000,
							PGC_POSTMASTER, 0, NULL, NULL, NULL);
	/* Per-tenant shares default to a quarter of the sizes just read. */
	DefineCustomIntVariable("aos_cus.max_integrations_per_tenant",
							"Cached integrations one tenant may hold in shared memory.",
							"A tenant at its quota evicts its own least recently used entry. Default: a quarter of aos_cus.max_integrations.",
							&enf_max_integrations_per_tenant, Max(enf_max_integrations / 4, 1), 1, 10000000,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("aos_cus.max_reservations_per_tenant",
							"Reservations one tenant may hold in shared memory.",
							"Default: a quarter of aos_cus.max_reservations.",
							&enf_max_reservations_per_tenant, Max(enf_max_reservations / 4, 1), 1, 10000000,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
	RegisterXactCallback(enf_xact_callback, NULL);
	RegisterSubXactCallback(enf_subxact_callback, NULL);
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
	/* Lock rule 2 (enforce_internal.h). */
	LWLockAcquire(enf->lock, LW_SHARED);
	*rows = palloc(Max(hash_get_num_entries(enf_hash), 1) * sizeof(AosBudgetRow));
	hash_seq_init(&seq, enf_hash);
	while ((e = hash_seq_search(&seq)) != NULL)
	{
		AosBudgetRow *row = &(*rows)[n];
		bool		keep;

		if (e->key.dbid != MyDatabaseId || e->key.scope[0] != '\0')
			continue;
		/* Lock rule 4 (enforce_internal.h). */
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
