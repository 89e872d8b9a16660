/*
 * enforce_decide.c: the decision (enforce_internal.h): one request judged on
 * every scope instance it touches, admitted on all of them or on none, its
 * undo, and what check() does after it (enforcement log, alerts).
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

static SPIPlanPtr log_plan = NULL;
static SPIPlanPtr prune_plan = NULL;

/* ---------- the decision ---------- */

/* The dimension a reason speaks of (status, rpm, tpm, rph, rpd, budget, tokens, ...); NULL for ok. */
static const char *
reason_dimension(AosReason reason, bool rpm_refused, bool rpd_refused)
{
	switch (reason)
	{
		case AOS_REASON_NOT_FOUND:
		case AOS_REASON_DISABLED:
			return "status";
		case AOS_REASON_RATE_LIMITED:
			return rpm_refused ? "rpm" : "tpm";
		case AOS_REASON_REQUEST_QUOTA:
			return rpd_refused ? "rpd" : "rph";
		case AOS_REASON_BUDGET_EXCEEDED:
		case AOS_REASON_BUDGET_WARNING:
			return "budget";
		case AOS_REASON_TOKEN_LIMIT_EXCEEDED:
		case AOS_REASON_TOKEN_WARNING:
			return "tokens";
		case AOS_REASON_MODEL_NOT_ALLOWED:
		case AOS_REASON_UNPRICED_MODEL:
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
void
enf_decide_unknown(const EnfKey *key, EnfResult *res)
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
	s->dimension = reason_dimension(res->reason, false, false);
	s->budget_limit = s->token_limit = s->rpm = s->tpm = s->rph = s->rpd = -1;
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
	v.rate_limited = v.quota_exceeded = false;
	v.budget = v.tokens = AOS_LIMIT_OK;
	sr->rate_retry = 0;
	sr->rpm_refused = sr->tpm_refused = sr->rph_refused = sr->rpd_refused = false;
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
	/* Request quotas: the requests already admitted in the calendar hour and day (check() and explain_check()). */
	if (req->dims == ENF_ALL)
	{
		if (e->lim.rph >= 0 && e->hour_requests >= e->lim.rph)
			v.quota_exceeded = sr->rph_refused = true;
		if (e->lim.rpd >= 0 && e->day_requests >= e->lim.rpd)
			v.quota_exceeded = sr->rpd_refused = true;
	}
	sr->rph = e->lim.rph;
	sr->rpd = e->lim.rpd;
	sr->rph_used = e->hour_requests;
	sr->rpd_used = e->day_requests;
	sr->hour_start = e->hour_start;
	sr->hour_end = e->hour_end;
	sr->day_start = e->day_start;
	sr->day_end = e->day_end;
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
	sr->dimension = reason_dimension(sr->reason, sr->rpm_refused, sr->rpd_refused);
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
		e->hour_requests = sat_add(e->hour_requests, 1);
		e->day_requests = sat_add(e->day_requests, 1);
		sr->admitted = true;
		sr->minute = e->requests.minute;
		sr->quota_hour = e->hour_start;
		sr->quota_day = e->day_start;
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
		sr->new_budget_alerts = enf_reached_flags(used_cost, e->lim.budget, e->lim.warn_pct) & ~e->budget_alerts;
		sr->new_token_alerts = enf_reached_flags(used_tokens, e->lim.token_limit, e->lim.warn_pct) & ~e->token_alerts;
		/* The first block of the period on this scope instance by its own budget or token limit. */
		if (sr->decision == AOS_DECISION_BLOCKED && sr->reason == AOS_REASON_BUDGET_EXCEEDED)
			sr->new_budget_alerts |= ENF_ALERT_BLOCKED & ~e->budget_alerts;
		if (sr->decision == AOS_DECISION_BLOCKED && sr->reason == AOS_REASON_TOKEN_LIMIT_EXCEEDED)
			sr->new_token_alerts |= ENF_ALERT_BLOCKED & ~e->token_alerts;
		e->budget_alerts |= sr->new_budget_alerts;
		e->token_alerts |= sr->new_token_alerts;
	}
}

/*
 * Decide one request against every scope instance it touches; fills res.
 * All scope entries are locked together (spinlocks in address order) while
 * they are judged, and the request is admitted (rates counted, estimate
 * reserved) on all of them or on none. The most severe scope decides:
 * blocked over warned over allowed, the first in scope order among equals.
 */
void
enf_decide(const EnfRequest *req, EnfResult *res)
{
	TimestampTz now = GetCurrentTimestamp();
	EnfKey		keys[ENF_MAX_SCOPES];
	EnfEntry   *entries[ENF_MAX_SCOPES];
	EnfEntry   *order[ENF_MAX_SCOPES];
	EnfReservation *old = NULL;
	bool		reserve = req->commit && req->call_id != NULL;
	bool		admit;
	int			n;
	const EnfScopeResult *d;
	/* The integration's policy (read before any lock: it may query), for check() and explain_check(). */
	const AosPolicy *policy = aos_cus_policy_for(&req->key.tenant, &req->key.integration,
												 pg_atomic_read_u64(&enf->limits_version));
	AosReason	policy_reason = req->dims == ENF_ALL ?
		aos_cus_policy_verdict(policy, req->model, req->est_cost, req->est_tokens) : AOS_REASON_OK;

	n = enf_fresh_entries(keys, enf_request_scopes(req, keys), now, entries);
	if (n == 0)
	{
		enf_decide_unknown(&req->key, res);
		return;
	}
	memset(&res->undo, 0, sizeof(res->undo));
	res->nscopes = n;
	if (reserve)
	{
		int			quota = Min(enf_max_reservations_per_tenant, enf_max_reservations);

		/* Lock rule 3 (enforce_internal.h). */
		LWLockAcquire(enf->res_lock, LW_EXCLUSIVE);
		enf_expire_reservations(now);
		old = hash_search(enf_res_hash, &req->res_key, HASH_FIND, NULL);
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
			enf_capacity_error(CAPACITY_RESERVATIONS, quota, &req->key.tenant);
		}
		if (old == NULL && hash_get_num_entries(enf_res_hash) >= enf_max_reservations)
		{
			LWLockRelease(enf->res_lock);
			enf_capacity_error(CAPACITY_RESERVATIONS, enf_max_reservations, NULL);
		}
	}
	else
	{
		enf_expire_if_due(now);
		/* explain_check() with a call_id: its own reservation is not counted, as check() would replace it. */
		if (req->call_id != NULL)
		{
			/* Lock rule 3 (enforce_internal.h). */
			LWLockAcquire(enf->res_lock, LW_SHARED);
			old = hash_search(enf_res_hash, &req->res_key, HASH_FIND, NULL);
			if (old != NULL && (old->nentries != n || memcmp(old->entries, entries, n * sizeof(EnfEntry *)) != 0))
				old = NULL;
		}
	}
	enf_lru_touch(entries, n);

	memcpy(order, entries, n * sizeof(EnfEntry *));
	qsort(order, n, sizeof(EnfEntry *), entry_order);
	for (int i = 0; i < n; i++)
		/* Lock rule 4 (enforce_internal.h). */
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
				r = hash_search(enf_res_hash, &req->res_key, HASH_ENTER, NULL);
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
			r->expires_at = now + (int64) enf_reservation_ttl_ms * 1000;
			enf_insert_by_expiry(r);
		}
		LWLockRelease(enf->res_lock);
	}
	else if (req->call_id != NULL)
		LWLockRelease(enf->res_lock);
	LWLockRelease(enf->lock);

	/* retry_after_ms: rate refusals say when a slot frees; quota and limit refusals when the deciding period ends. */
	res->retry_ms = -1;
	if (res->reason == AOS_REASON_RATE_LIMITED)
		res->retry_ms = d->rate_retry;
	else if (res->reason == AOS_REASON_REQUEST_QUOTA)
		res->retry_ms = ((d->rpd_refused ? d->day_end : d->hour_end) - now + 999) / 1000;
	else if (res->reason == AOS_REASON_BUDGET_EXCEEDED && !TIMESTAMP_NOT_FINITE(d->budget_end))
		res->retry_ms = (d->budget_end - now + 999) / 1000;
	else if (res->reason == AOS_REASON_TOKEN_LIMIT_EXCEEDED && !TIMESTAMP_NOT_FINITE(d->token_end))
		res->retry_ms = (d->token_end - now + 999) / 1000;
}

/*
 * Take back what enf_decide() changed for req (an error followed it): the
 * reservation made or replaced, the rate admissions and the alert flags set,
 * on every scope. Raises no error (called while one propagates).
 */
void
enf_undo_decision(const EnfRequest *req, const EnfResult *res)
{
	const EnfUndo *u = &res->undo;
	bool		any = u->reserved;
	EnfEntry   *integration;

	for (int i = 0; i < res->nscopes; i++)
		any = any || res->scopes[i].admitted || res->scopes[i].new_budget_alerts || res->scopes[i].new_token_alerts;
	if (!any)
		return;
	/* Lock rule 2 (enforce_internal.h). */
	LWLockAcquire(enf->lock, LW_SHARED);
	integration = hash_search(enf_hash, &res->scopes[0].key, HASH_FIND, NULL);
	if (integration != NULL && u->reserved)
	{
		EnfReservation *r;

		/* Lock rule 3 (enforce_internal.h). */
		LWLockAcquire(enf->res_lock, LW_EXCLUSIVE);
		r = hash_search(enf_res_hash, &req->res_key, HASH_FIND, NULL);
		if (r != NULL && r->entries[0] == integration && !u->replaced)
			enf_release_reservation(r);
		else if (r != NULL && r->entries[0] == integration)
		{
			for (int i = 0; i < r->nentries; i++)
			{
				EnfEntry   *e = r->entries[i];

				/* Lock rule 4 (enforce_internal.h). */
				SpinLockAcquire(&e->mutex);
				e->reserved_cost = sat_add(e->reserved_cost, u->old_cost - r->cost);
				e->reserved_tokens = sat_add(e->reserved_tokens, u->old_tokens - r->tokens);
				SpinLockRelease(&e->mutex);
			}
			r->cost = u->old_cost;
			r->tokens = u->old_tokens;
			r->expires_at = u->old_expires_at;
			dlist_delete(&r->node);
			enf_insert_by_expiry(r);
		}
		enf_publish_next_expiry();
		LWLockRelease(enf->res_lock);
	}
	for (int i = 0; i < res->nscopes; i++)
	{
		const EnfScopeResult *sr = &res->scopes[i];
		EnfEntry   *e = hash_search(enf_hash, &sr->key, HASH_FIND, NULL);

		if (e == NULL)
			continue;
		/* Lock rule 4 (enforce_internal.h). */
		SpinLockAcquire(&e->mutex);
		if (sr->admitted)
		{
			aos_cus_rate_unadmit(&e->requests, sr->minute, 1);
			aos_cus_rate_unadmit(&e->token_rate, sr->minute, req->est_tokens);
			if (e->hour_start == sr->quota_hour && e->hour_requests > 0)
				e->hour_requests--;
			if (e->day_start == sr->quota_day && e->day_requests > 0)
				e->day_requests--;
		}
		e->budget_alerts &= ~sr->new_budget_alerts;
		e->token_alerts &= ~sr->new_token_alerts;
		SpinLockRelease(&e->mutex);
	}
	LWLockRelease(enf->lock);
}

/* ---------- side effects of check(): log and alerts ---------- */

/* Write a warned or blocked decision to the bounded enforcement log. */
void
enf_log_decision(const EnfRequest *req, const EnfResult *res)
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
		pvalues[1] = Int64GetDatum((int64) enf_log_max_rows);
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
 * Per newly set alert flag of one scope instance: a NOTIFY aos_cus_alerts for
 * a crossed threshold (sent when the transaction commits) and a webhook event
 * in the outbox (in this transaction, once per period, threshold, limit and
 * scope instance; not in a read-only transaction). integration is the call's.
 */
void
enf_send_alerts(const EnfKey *integration_key, const EnfKey *key, const char *dimension, uint8 flags, int warn_pct,
				TimestampTz start, TimestampTz end, int64 used, int64 limit)
{
	char		tenant[AOS_UUID_TEXT_LEN + 1];
	char		integration[AOS_UUID_TEXT_LEN + 1];
	char		scope[AOS_SCOPE_TEXT_MAX + 1];

	aos_cus_uuid_format(key->tenant.data, tenant);
	aos_cus_uuid_format(integration_key->integration.data, integration);
	enf_scope_name(key, scope);
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
