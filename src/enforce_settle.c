/*
 * enforce_settle.c: commit-time settlement (enforce_internal.h): the usage
 * trigger queues one delta per row and scope, the commit applies them to the
 * cached entries and releases the reservations they settle; an abort drops
 * them and takes back the alert flags its checks set.
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

PG_FUNCTION_INFO_V1(aos_cus_usage_settle_trigger);
PG_FUNCTION_INFO_V1(aos_cus_limits_changed_trigger);
PG_FUNCTION_INFO_V1(aos_cus_scope_limits_changed_trigger);
PG_FUNCTION_INFO_V1(aos_cus_policies_changed_trigger);

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

/* ---------- transaction-local settlement ---------- */

/*
 * Heavyweight lock tag of settlement stripe n. An integration's stripe is a
 * hash of its key, so a committing transaction that wrote usage of any number
 * of integrations takes at most ENF_LOCK_STRIPES of these locks (a bulk COPY
 * never exhausts max_locks_per_transaction); sharing a stripe only makes a
 * rebuild meet a few more commits.
 */
void
enf_stripe_locktag(LOCKTAG *tag, uint32 n)
{
	SET_LOCKTAG_ADVISORY(*tag, MyDatabaseId, n, 0, ENF_LOCKTAG_CLASS);
}

/* The settlement stripe of an integration. */
uint32
enf_stripe_of(const EnfKey *key)
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
		stripes |= UINT32_C(1) << enf_stripe_of(&deltas[i].key);
	for (uint32 n = 0; n < ENF_LOCK_STRIPES; n++)
	{
		LOCKTAG		tag;

		if (!(stripes & (UINT32_C(1) << n)))
			continue;
		enf_stripe_locktag(&tag, n);
		/* Lock rule 1 (enforce_internal.h). */
		(void) LockAcquire(&tag, ShareLock, false, false);
	}
}

/* Apply one delta's amounts to its entry, if cached; called at commit with no error possible. */
static void
apply_delta(const EnfDelta *d)
{
	EnfEntry   *e;

	/* Lock rule 2 (enforce_internal.h). */
	LWLockAcquire(enf->lock, LW_SHARED);
	e = hash_search(enf_hash, &d->key, HASH_FIND, NULL);
	if (e != NULL)
	{
		/* Lock rule 4 (enforce_internal.h). */
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
	EnfReservation *r;

	/* Lock rules 2 then 3 (enforce_internal.h). */
	LWLockAcquire(enf->lock, LW_SHARED);
	LWLockAcquire(enf->res_lock, LW_EXCLUSIVE);
	r = hash_search(enf_res_hash, d->reservation, HASH_FIND, NULL);
	if (r != NULL)
	{
		enf_release_reservation(r);
		enf_publish_next_expiry();
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
	/* Lock rule 2 (enforce_internal.h). */
	LWLockAcquire(enf->lock, LW_SHARED);
	for (int i = from; i < nalert_sets; i++)
	{
		EnfEntry   *e = hash_search(enf_hash, &alert_sets[i].key, HASH_FIND, NULL);

		if (e == NULL)
			continue;
		/* Lock rule 4 (enforce_internal.h). */
		SpinLockAcquire(&e->mutex);
		e->budget_alerts &= ~alert_sets[i].budget;
		e->token_alerts &= ~alert_sets[i].tokens;
		SpinLockRelease(&e->mutex);
	}
	LWLockRelease(enf->lock);
	nalert_sets = from;
}

/* Remember alert flags this transaction set, so an abort takes them back with their events. */
void
enf_remember_alerts(const EnfKey *key, uint8 budget, uint8 tokens)
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
void
enf_xact_callback(XactEvent event, void *arg)
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
				if (deltas[i].reservation != NULL)
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
void
enf_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
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

/* True when a live reservation exists for rk. */
static bool
reservation_exists(const EnfResKey *rk)
{
	bool		found;

	/* Lock rule 3 (enforce_internal.h). */
	LWLockAcquire(enf->res_lock, LW_SHARED);
	found = hash_search(enf_res_hash, rk, HASH_FIND, NULL) != NULL;
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
add_delta(const EnfKey *key, TimestampTz started_at, int64 cost, int64 tokens, const EnfResKey *reservation,
		  const AosUsageDelta *usage)
{
	int			level = GetCurrentTransactionNestLevel();
	TimestampTz bucket = started_at - ((started_at % ENF_BUCKET_US) + ENF_BUCKET_US) % ENF_BUCKET_US;

	if (TIMESTAMP_NOT_FINITE(started_at))
		bucket = started_at;
	for (int i = ndeltas - 1; reservation == NULL && i >= 0 && i >= ndeltas - ENF_FOLD_WINDOW; i--)
	{
		EnfDelta   *last = &deltas[i];

		if (last->level != level)
			break;
		if (last->reservation != NULL || last->bucket != bucket || memcmp(&last->key, key, sizeof(EnfKey)) != 0 ||
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
	deltas[ndeltas].reservation = NULL;
	if (reservation != NULL)
	{
		deltas[ndeltas].reservation = MemoryContextAlloc(TopTransactionContext, sizeof(EnfResKey));
		*deltas[ndeltas].reservation = *reservation;
	}
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

/* Column attnum (1-based) of a deformed row. */
static inline Datum
column(const Datum *values, const bool *nulls, int attnum, bool *isnull)
{
	*isnull = nulls[attnum - 1];
	return values[attnum - 1];
}

/* Queue the delta of one usage row, with sign +1 (new row) or -1 (old row of an update), and those of its scopes. */
static void
queue_usage_row(Relation rel, HeapTuple tuple, int sign, bool settle)
{
	TupleDesc	desc = RelationGetDescr(rel);
	Datum	   *values = palloc(sizeof(Datum) * desc->natts);
	bool	   *nulls = palloc(sizeof(bool) * desc->natts);
	bool		isnull;
	EnfKey		key;
	int64		cost;
	int64		tokens = 0;
	EnfResKey	rk;
	bool		settles = false;
	TimestampTz started_at;
	AosUsageDelta usage;

	/* One pass over the row: reading columns one by one walks it from the start for each. */
	heap_deform_tuple(tuple, desc, values, nulls);
	memset(&key, 0, sizeof(key));
	key.dbid = MyDatabaseId;
	key.tenant = *DatumGetUUIDP(column(values, nulls, usage_att_tenant, &isnull));
	key.integration = *DatumGetUUIDP(column(values, nulls, usage_att_integration, &isnull));
	started_at = DatumGetTimestampTz(column(values, nulls, usage_att_started_at, &isnull));
	cost = DatumGetInt64(column(values, nulls, usage_att_cost, &isnull));
	if (isnull)
		cost = 0;
	for (int b = 0; b < AOS_BUCKET_COUNT; b++)
	{
		int64		t;

		if (!aos_cus_bucket_in_total(b))
			continue;
		t = DatumGetInt64(column(values, nulls, usage_att_tokens[b], &isnull));
		if (!isnull && aos_cus_add_overflows(tokens, t, &tokens))
			tokens = PG_INT64_MAX;
	}
	/* Without any reservation held there is none to settle: no call_id hash, no res_lock. */
	if (settle && enf_any_reservation())
	{
		/* Made now, as settlement at commit may not raise. */
		enf_reservation_key(&rk, &key.tenant,
							TextDatumGetCString(column(values, nulls, usage_att_call_id, &isnull)));
		settles = reservation_exists(&rk);
	}
	/* Provider, model and the input/output buckets feed the usage counters per model. */
	text_to_cstring_buffer(DatumGetTextPP(column(values, nulls, usage_att_provider, &isnull)),
						   usage.provider, sizeof(usage.provider));
	text_to_cstring_buffer(DatumGetTextPP(column(values, nulls, usage_att_model, &isnull)),
						   usage.model, sizeof(usage.model));
	usage.requests = sign;
	usage.input_tokens = sign * DatumGetInt64(column(values, nulls, usage_att_tokens[AOS_BUCKET_INPUT], &isnull));
	usage.output_tokens = sign * DatumGetInt64(column(values, nulls, usage_att_tokens[AOS_BUCKET_OUTPUT], &isnull));
	add_delta(&key, started_at, sign * cost, sign * tokens, settles ? &rk : NULL, &usage);

	/* Every scope instance the row belongs to, cached or not: a rebuild in between must meet this commit. */
	{
		EnfKey		skey;
		char		scope[AOS_SCOPE_TEXT_MAX + 1];
		Datum		d;

		enf_scope_key(&skey, &key.tenant, "tenant");
		add_delta(&skey, started_at, sign * cost, sign * tokens, NULL, NULL);
		/* A 0.1.0 schema (not yet updated) has neither column. */
		d = usage_att_subject > 0 ? column(values, nulls, usage_att_subject, &isnull) : (Datum) 0;
		if (usage_att_subject > 0 && !isnull)
		{
			char	   *subject = TextDatumGetCString(d);

			aos_cus_check_subject(subject, "subject");
			enf_subject_scope(scope, subject);
			enf_scope_key(&skey, &key.tenant, scope);
			add_delta(&skey, started_at, sign * cost, sign * tokens, NULL, NULL);
		}
		d = usage_att_tags > 0 ? column(values, nulls, usage_att_tags, &isnull) : (Datum) 0;
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
				enf_tag_scope(scope, &pairs[i]);
				enf_scope_key(&skey, &key.tenant, scope);
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
