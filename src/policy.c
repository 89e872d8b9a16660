/*
 * policy.c: call policies per integration, with a tenant default
 * (cus_policies, set_policy()): model allow and deny globs, caps on a
 * request's estimated cost and tokens, and a cap on in-flight calls (their
 * reservations, counted by enforce_decide.c). Policies are configuration, cached per
 * backend and dropped when the limits version moves (a trigger bumps it).
 */
#include "aos_cus.h"
#include "glob.h"
#include "policy.h"
#include "spi_safe.h"

#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

#define POLICY_GLOBS_MAX 32
#define POLICY_CACHE_MAX 65536

typedef struct PolicyKey
{
	pg_uuid_t	tenant;
	pg_uuid_t	integration;
} PolicyKey;

typedef struct PolicyEntry
{
	PolicyKey	key;			/* hash key: must be first */
	AosPolicy	policy;
} PolicyEntry;

static HTAB *policy_cache = NULL;
static MemoryContext policy_cxt = NULL;
static uint64 policy_version = 0;
static SPIPlanPtr policy_plan = NULL;

PG_FUNCTION_INFO_V1(aos_cus_check_policy);

/* An integer key of a policy within [low, high]: 22023 when not an integer, 22003 out of range. */
static int64
policy_integer(const JsonbValue *v, const char *key, int64 low)
{
	char	   *s;
	char	   *end;
	int64		n;

	if (v->type != jbvNumeric)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("policy.%s must be an integer", key)));
	s = numeric_normalize(v->val.numeric);
	errno = 0;
	n = strtoi64(s, &end, 10);
	if (*end != '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("policy.%s must be an integer, not %s", key, s)));
	if (errno == ERANGE || n < low)
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("policy.%s must be between " INT64_FORMAT " and " INT64_FORMAT ", not %s",
						key, low, PG_INT64_MAX, s)));
	return n;
}

/* A list of model globs: a JSON array of at most 32 valid patterns (22023 naming the element). */
static int
policy_globs(const JsonbValue *v, const char *key, char ***out)
{
	JsonbIterator *it;
	JsonbValue	e;
	JsonbIteratorToken tok;
	int			n = 0;

	if (v->type != jbvBinary || !JsonContainerIsArray(v->val.binary.data))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("policy.%s must be a JSON array of model globs", key)));
	if (JsonContainerSize(v->val.binary.data) > POLICY_GLOBS_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("policy.%s has more than %d patterns", key, POLICY_GLOBS_MAX)));
	*out = palloc0(sizeof(char *) * (JsonContainerSize(v->val.binary.data) + 1));
	it = JsonbIteratorInit(v->val.binary.data);
	while ((tok = JsonbIteratorNext(&it, &e, true)) != WJB_DONE)
	{
		const char *problem;
		char	   *pattern;

		if (tok != WJB_ELEM)
			continue;
		if (e.type != jbvString)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("policy.%s[%d] must be a string", key, n)));
		pattern = pnstrdup(e.val.string.val, e.val.string.len);
		if ((problem = aos_cus_glob_problem(pattern)) != NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("policy.%s[%d] \"%.64s\" is not a valid glob: it %s", key, n, pattern, problem),
					 errhint("Globs use * (any run), ? (one character) and [a-z] classes.")));
		(*out)[n++] = pattern;
	}
	return n;
}

/* Parse (and validate) a policy object into out, allocating in CurrentMemoryContext. */
static void
parse_policy(Jsonb *policy, AosPolicy *out)
{
	JsonbIterator *it;
	JsonbValue	k;
	JsonbValue	v;
	JsonbIteratorToken tok;

	memset(out, 0, sizeof(*out));
	out->max_cost = out->max_tokens = out->max_concurrent = -1;
	if (!JB_ROOT_IS_OBJECT(policy) || JB_ROOT_IS_SCALAR(policy))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("policy must be a JSON object")));
	it = JsonbIteratorInit(&policy->root);
	while ((tok = JsonbIteratorNext(&it, &k, true)) != WJB_DONE)
	{
		char	   *key;

		if (tok != WJB_KEY)
			continue;
		key = pnstrdup(k.val.string.val, k.val.string.len);
		(void) JsonbIteratorNext(&it, &v, true);
		if (v.type == jbvNull)
			continue;
		if (strcmp(key, "models_allow") == 0)
			out->nallow = policy_globs(&v, key, &out->allow);
		else if (strcmp(key, "models_deny") == 0)
			out->ndeny = policy_globs(&v, key, &out->deny);
		else if (strcmp(key, "max_cost_microcents_per_request") == 0)
			out->max_cost = policy_integer(&v, key, 0);
		else if (strcmp(key, "max_tokens_per_request") == 0)
			out->max_tokens = policy_integer(&v, key, 0);
		else if (strcmp(key, "max_concurrent") == 0)
			out->max_concurrent = policy_integer(&v, key, 1);
		else
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("policy has an unknown key \"%.64s\"", key),
					 errhint("Known keys: models_allow, models_deny, max_cost_microcents_per_request, max_tokens_per_request, max_concurrent.")));
	}
}

/* check_policy(policy): the policy when valid; 22023 / 22003 / 54000 naming the field otherwise. */
Datum
aos_cus_check_policy(PG_FUNCTION_ARGS)
{
	AosPolicy	unused;

	aos_cus_require_arg(fcinfo, 0, "policy");
	parse_policy(PG_GETARG_JSONB_P(0), &unused);
	PG_RETURN_DATUM(PG_GETARG_DATUM(0));
}

/* Read the policy of (tenant, integration) from cus_policies: its own row, else the tenant default's. */
static void
load_policy(const PolicyKey *key, AosPolicy *out)
{
	static const char *sql =
		"SELECT policy FROM aos_cus.cus_policies WHERE tenant_id OPERATOR(pg_catalog.=) $1"
		"   AND (integration_id OPERATOR(pg_catalog.=) $2 OR integration_id IS NULL)"
		" ORDER BY integration_id IS NULL LIMIT 1";
	Oid			types[2] = {UUIDOID, UUIDOID};
	Datum		values[2];
	AosElevation elevation;
	Snapshot	snapshot;

	memset(out, 0, sizeof(*out));
	out->max_cost = out->max_tokens = out->max_concurrent = -1;
	/* A 0.1.0 schema (not yet updated) has no policies. */
	if (!OidIsValid(get_relname_relid("cus_policies", get_namespace_oid("aos_cus", false))))
		return;
	aos_cus_elevate(&elevation);
	SPI_connect();
	snapshot = RegisterSnapshot(GetLatestSnapshot());
	values[0] = UUIDPGetDatum(&key->tenant);
	values[1] = UUIDPGetDatum(&key->integration);
	if (SPI_execute_snapshot(aos_cus_keep_plan(&policy_plan, sql, 2, types), values, NULL,
							 snapshot, InvalidSnapshot, true, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "aos_cus: policy query failed");
	if (SPI_processed == 1)
	{
		bool		isnull;
		Jsonb	   *policy = DatumGetJsonbP(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		MemoryContext old = MemoryContextSwitchTo(policy_cxt);

		parse_policy(policy, out);
		MemoryContextSwitchTo(old);
	}
	UnregisterSnapshot(snapshot);
	SPI_finish();
	aos_cus_unelevate(&elevation);
}

/* The cached policy of (tenant, integration) for limits version version. */
const AosPolicy *
aos_cus_policy_for(const pg_uuid_t *tenant, const pg_uuid_t *integration, uint64 version)
{
	PolicyKey	key;
	PolicyEntry *e;
	AosPolicy	p;
	bool		found;

	if (policy_cache == NULL || version != policy_version || RecoveryInProgress() ||
		hash_get_num_entries(policy_cache) >= POLICY_CACHE_MAX)
	{
		HASHCTL		ctl;

		if (policy_cache != NULL)
			hash_destroy(policy_cache);
		if (policy_cxt == NULL)
			policy_cxt = AllocSetContextCreate(TopMemoryContext, "aos_cus policies", ALLOCSET_SMALL_SIZES);
		MemoryContextReset(policy_cxt);
		ctl.keysize = sizeof(PolicyKey);
		ctl.entrysize = sizeof(PolicyEntry);
		policy_cache = hash_create("aos_cus policies", 64, &ctl, HASH_ELEM | HASH_BLOBS);
		policy_version = version;
	}
	memset(&key, 0, sizeof(key));
	key.tenant = *tenant;
	key.integration = *integration;
	e = hash_search(policy_cache, &key, HASH_FIND, NULL);
	if (e != NULL)
		return &e->policy;
	load_policy(&key, &p);
	e = hash_search(policy_cache, &key, HASH_ENTER, &found);
	e->policy = p;
	return &e->policy;
}

/* Deny globs first, then the allow list, then the caps on this request's estimates. */
AosReason
aos_cus_policy_verdict(const AosPolicy *p, const char *model, int64 est_cost, int64 est_tokens)
{
	for (int i = 0; i < p->ndeny && model != NULL; i++)
		if (aos_cus_glob_match(p->deny[i], model))
			return AOS_REASON_MODEL_NOT_ALLOWED;
	if (p->nallow > 0)
	{
		bool		allowed = false;

		for (int i = 0; i < p->nallow && model != NULL && !allowed; i++)
			allowed = aos_cus_glob_match(p->allow[i], model);
		if (!allowed)
			return AOS_REASON_MODEL_NOT_ALLOWED;
	}
	if (p->max_cost >= 0 && est_cost > p->max_cost)
		return AOS_REASON_REQUEST_COST_CAP;
	if (p->max_tokens >= 0 && est_tokens > p->max_tokens)
		return AOS_REASON_REQUEST_TOKEN_CAP;
	return AOS_REASON_OK;
}
