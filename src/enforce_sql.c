/*
 * enforce_sql.c: the SQL functions of enforcement (README: Enforcement):
 * check(), explain_check(), the probes, current_usage(), the statistics,
 * and the argument checks they share with ingest.
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
#include "utils/typcache.h"
#include "utils/xid8.h"

PG_FUNCTION_INFO_V1(aos_cus_check);
PG_FUNCTION_INFO_V1(aos_cus_release_reservation);
PG_FUNCTION_INFO_V1(aos_cus_limit_period_bounds);
PG_FUNCTION_INFO_V1(aos_cus_check_budget_limit);
PG_FUNCTION_INFO_V1(aos_cus_check_token_limit);
PG_FUNCTION_INFO_V1(aos_cus_check_rate_limit);
PG_FUNCTION_INFO_V1(aos_cus_current_usage);
PG_FUNCTION_INFO_V1(aos_cus_stat_decisions);
PG_FUNCTION_INFO_V1(aos_cus_stat_enforcement);
PG_FUNCTION_INFO_V1(aos_cus_parse_scope);
PG_FUNCTION_INFO_V1(aos_cus_explain_check);

static const char *const kind_names[ENF_KINDS] = {"integration", "tenant", "subject", "tag"};

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

/* limit_period_bounds(period, timezone, at): the calendar period (or rph's hour) containing at, as enforcement uses it. */
Datum
aos_cus_limit_period_bounds(PG_FUNCTION_ARGS)
{
	char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	bool		hour = strcmp(name, "hour") == 0;
	EnfPeriod	period = hour ? ENF_PERIOD_DAY : enf_period_from_name(name);
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
	if (hour)
		enf_hour_bounds(zone, at, &start, &end);
	else
		enf_period_bounds(period, zone, at, &start, &end);
	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "aos_cus: limit_period_bounds must return a record");
	desc = BlessTupleDesc(desc);
	values[0] = TimestampTzGetDatum(start);
	values[1] = TimestampTzGetDatum(end);
	nulls[0] = TIMESTAMP_NOT_FINITE(start);
	nulls[1] = TIMESTAMP_NOT_FINITE(end);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(desc, values, nulls)));
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
	/* The result type from the call's expression, its descriptor from the type cache (kept current there). */
	Oid			type = get_fn_expr_rettype(fcinfo->flinfo);
	TupleDesc	desc;
	Datum		values[10];
	bool		nulls[10] = {false, false, false, false, false, false, false, false, false, false};
	TimestampTz resets;
	Datum		result;

	if (!OidIsValid(type) && get_call_result_type(fcinfo, &type, NULL) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "aos_cus: check functions must return aos_cus.decision");
	desc = lookup_rowtype_tupdesc(type, -1);
	init_name_datums();
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

		enf_scope_name(&d->key, scope);
		values[8] = CStringGetTextDatum(scope);
		values[9] = CStringGetTextDatum(d->dimension);
	}
	Assert(desc->natts == 8 || desc->natts == 10);
	result = HeapTupleGetDatum(heap_form_tuple(desc, values, nulls));
	ReleaseTupleDesc(desc);
	return result;
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
			enf_log_decision(req, res);
	}
	for (int i = 0; i < res->nscopes; i++)
	{
		const EnfScopeResult *s = &res->scopes[i];

		if (s->new_budget_alerts)
			enf_send_alerts(&req->key, &s->key, "budget", s->new_budget_alerts, s->warn_pct,
							s->budget_start, s->budget_end, s->budget_used, s->budget_limit);
		if (s->new_token_alerts)
			enf_send_alerts(&req->key, &s->key, "tokens", s->new_token_alerts, s->warn_pct,
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
	/* With a model, a NULL cost estimate is derived from its price (policy.h); without one it is refused. */
	bool		derive_cost = PG_NARGS() >= 8 && PG_ARGISNULL(2) && !PG_ARGISNULL(7);

	read_request(fcinfo, fname, req);
	req->est_cost = derive_cost ? 0 : amount_arg(fcinfo, 2, "estimated_cost_microcents");
	req->est_tokens = amount_arg(fcinfo, 3, "estimated_tokens");
	if (!PG_ARGISNULL(4))
	{
		req->call_id = text_to_cstring(PG_GETARG_TEXT_PP(4));
		if (strlen(req->call_id) < 1 || strlen(req->call_id) > ENF_CALL_ID_MAX)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("call_id must be 1 to %d bytes long", ENF_CALL_ID_MAX)));
		enf_reservation_key(&req->res_key, &req->key.tenant, req->call_id);
	}
	read_scope_args(fcinfo, req);
	if (derive_cost)
		req->est_cost = aos_cus_policy_estimate(aos_cus_policy_for(&req->key.tenant, &req->key.integration,
																   pg_atomic_read_u64(&enf->limits_version)),
												req->model, req->est_tokens);
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
		enf_decide_unknown(&req.key, &res);
		res.decision = res.scopes[0].decision = AOS_DECISION_BLOCKED;
		res.reason = res.scopes[0].reason = AOS_REASON_ALREADY_INGESTED;
		res.scopes[0].dimension = NULL;
	}
	else
		enf_decide(&req, &res);
	PG_TRY();
	{
		result = check_side_effects(fcinfo, &req, &res);
		for (int i = 0; i < res.nscopes; i++)
			if (res.scopes[i].new_budget_alerts || res.scopes[i].new_token_alerts)
				enf_remember_alerts(&res.scopes[i].key, res.scopes[i].new_budget_alerts, res.scopes[i].new_token_alerts);
	}
	PG_CATCH();
	{
		enf_undo_decision(&req, &res);
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
 * instance the call touches (budget, tokens, rpm, tpm, rph, rpd), with its position and
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
	enf_decide(&req, &res);
	InitMaterializedSRF(fcinfo, 0);
	TIMESTAMP_NOEND(none);
	for (int i = 0; i < res.nscopes; i++)
	{
		const EnfScopeResult *s = &res.scopes[i];
		char		scope[AOS_SCOPE_TEXT_MAX + 1];

		enf_scope_name(&s->key, scope);
		if (s->reason == AOS_REASON_NOT_FOUND || s->reason == AOS_REASON_DISABLED)
		{
			explain_row(rsinfo, scope, "status", -1, 0, 0, 0, none, none, AOS_MODE_ENFORCE, aos_cus_reason_name(s->reason));
			continue;
		}
		if (s->reason >= AOS_REASON_MODEL_NOT_ALLOWED && s->reason != AOS_REASON_REQUEST_QUOTA)
			explain_row(rsinfo, scope, s->dimension, -1, 0, 0, 0, none, none, s->mode, aos_cus_reason_name(s->reason));
		explain_row(rsinfo, scope, "budget", s->budget_limit, s->spent, s->reserved_cost, req.est_cost,
					s->budget_start, s->budget_end, s->mode, verdict_name(s->budget_verdict));
		explain_row(rsinfo, scope, "tokens", s->token_limit, s->tokens_settled, s->reserved_tokens, req.est_tokens,
					s->token_start, s->token_end, s->mode, verdict_name(s->token_verdict));
		explain_row(rsinfo, scope, "rpm", s->rpm, s->rpm_used, 0, 1, none, none, s->mode,
					s->rpm_refused ? "exceeded" : "ok");
		explain_row(rsinfo, scope, "tpm", s->tpm, s->tpm_used, 0, req.est_tokens, none, none, s->mode,
					s->tpm_refused ? "exceeded" : "ok");
		explain_row(rsinfo, scope, "rph", s->rph, s->rph_used, 0, 1, s->hour_start, s->hour_end, s->mode,
					s->rph_refused ? "exceeded" : "ok");
		explain_row(rsinfo, scope, "rpd", s->rpd, s->rpd_used, 0, 1, s->day_start, s->day_end, s->mode,
					s->rpd_refused ? "exceeded" : "ok");
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
	enf_reservation_key(&rk, tenant, call_id);
	/* Lock rules 2 then 3 (enforce_internal.h). */
	LWLockAcquire(enf->lock, LW_SHARED);
	LWLockAcquire(enf->res_lock, LW_EXCLUSIVE);
	r = hash_search(enf_res_hash, &rk, HASH_FIND, NULL);
	if (r != NULL)
	{
		enf_release_reservation(r);
		enf_publish_next_expiry();
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
	enf_decide(&req, &res);
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
	e = enf_fresh_entry(&req.key, now);
	if (e != NULL)
	{
		enf_expire_if_due(now);
		/* Lock rule 4 (enforce_internal.h). */
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
	/* Lock rule 2 (enforce_internal.h). */
	LWLockAcquire(enf->lock, LW_SHARED);
	stat[0] = hash_get_num_entries(enf_hash);
	/* Lock rule 3 (enforce_internal.h). */
	LWLockAcquire(enf->res_lock, LW_SHARED);
	stat[2] = hash_get_num_entries(enf_res_hash);
	LWLockRelease(enf->res_lock);
	LWLockRelease(enf->lock);
	stat[1] = enf_max_integrations;
	stat[3] = enf_max_reservations;
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

/* Zero the decision counters (aos_cus.stat_reset()). */
void
aos_cus_enforce_reset_decisions(void)
{
	aos_cus_require_preload();
	for (int d = 0; d < AOS_DECISION_COUNT; d++)
		for (int r = 0; r < AOS_REASON_COUNT; r++)
			pg_atomic_write_u64(&enf->decisions[d][r], 0);
}
