/*
 * policy.c: call policies per integration, with a tenant default
 * (cus_policies, set_policy()): model allow and deny globs, caps on a
 * request's estimated cost and tokens, a cap on in-flight calls (their
 * reservations, counted by enforce_decide.c), and the rule for unpriced models
 * (block, fallback_price, allow). Policies are configuration, cached per
 * backend and dropped when the limits version moves (a trigger bumps it).
 */
#include "aos_cus.h"
#include "cost.h"
#include "glob.h"
#include "policy.h"
#include "pricing.h"
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

static const char *const unpriced_names[] = {"block", "fallback_price", "allow", NULL};

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

/* The policy.unpriced rule: one of unpriced_names (22023 quoting the value otherwise). */
static AosUnpriced
policy_unpriced(const JsonbValue *v)
{
	if (v->type == jbvString)
		for (int i = 0; unpriced_names[i] != NULL; i++)
			if (strlen(unpriced_names[i]) == (size_t) v->val.string.len &&
				memcmp(unpriced_names[i], v->val.string.val, v->val.string.len) == 0)
				return (AosUnpriced) i;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 v->type == jbvString ?
			 errmsg("policy.unpriced must be one of block, fallback_price, allow, not \"%.*s\"",
					Min(v->val.string.len, 64), v->val.string.val) :
			 errmsg("policy.unpriced must be one of block, fallback_price, allow, as a string")));
	return AOS_UNPRICED_BLOCK;	/* not reached */
}

/* No policy: no caps, unpriced models blocked. */
static void
policy_defaults(AosPolicy *out)
{
	memset(out, 0, sizeof(*out));
	out->max_cost = out->max_tokens = out->max_concurrent = -1;
	out->unpriced = AOS_UNPRICED_BLOCK;
	out->fallback_input = out->fallback_output = -1;
	out->provider = -1;
}

/* Parse (and validate) a policy object into out, allocating in CurrentMemoryContext. */
static void
parse_policy(Jsonb *policy, AosPolicy *out)
{
	JsonbIterator *it;
	JsonbValue	k;
	JsonbValue	v;
	JsonbIteratorToken tok;

	policy_defaults(out);
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
		else if (strcmp(key, "unpriced") == 0)
			out->unpriced = policy_unpriced(&v);
		else if (strcmp(key, "fallback_input_price") == 0)
			out->fallback_input = policy_integer(&v, key, 0);
		else if (strcmp(key, "fallback_output_price") == 0)
			out->fallback_output = policy_integer(&v, key, 0);
		else
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("policy has an unknown key \"%.64s\"", key),
					 errhint("Known keys: models_allow, models_deny, max_cost_microcents_per_request, max_tokens_per_request, max_concurrent, unpriced, fallback_input_price, fallback_output_price.")));
	}
	/* Fallback prices go with fallback_price, both of them, and with nothing else. */
	if (out->unpriced == AOS_UNPRICED_FALLBACK && (out->fallback_input < 0 || out->fallback_output < 0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("policy.unpriced \"fallback_price\" needs policy.%s",
						out->fallback_input < 0 ? "fallback_input_price" : "fallback_output_price"),
				 errhint("Give fallback_input_price and fallback_output_price in micro-cents per 1M tokens, as set_price() takes them.")));
	if (out->unpriced != AOS_UNPRICED_FALLBACK && (out->fallback_input >= 0 || out->fallback_output >= 0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("policy.%s is used only with policy.unpriced \"fallback_price\", not \"%s\"",
						out->fallback_input >= 0 ? "fallback_input_price" : "fallback_output_price",
						unpriced_names[out->unpriced])));
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

/*
 * Read the policy of (tenant, integration) from cus_policies (its own row,
 * else the tenant default's) and the integration's provider, parsing into cxt.
 */
static void
load_policy(const PolicyKey *key, AosPolicy *out, MemoryContext cxt)
{
	static const char *sql =
		"SELECT (SELECT policy FROM aos_cus.cus_policies WHERE tenant_id OPERATOR(pg_catalog.=) $1"
		"           AND (integration_id OPERATOR(pg_catalog.=) $2 OR integration_id IS NULL)"
		"         ORDER BY integration_id IS NULL LIMIT 1),"
		"       (SELECT provider::pg_catalog.text FROM aos_cus.cus_integrations"
		"         WHERE tenant_id OPERATOR(pg_catalog.=) $1 AND id OPERATOR(pg_catalog.=) $2)";
	Oid			types[2] = {UUIDOID, UUIDOID};
	Datum		values[2];
	AosElevation elevation;
	Snapshot	snapshot;
	bool		isnull;
	Datum		d;

	policy_defaults(out);
	/* A 0.1.0 schema (not yet updated) has no policies. */
	if (!OidIsValid(get_relname_relid("cus_policies", get_namespace_oid("aos_cus", false))))
		return;
	aos_cus_elevate(&elevation);
	SPI_connect();
	snapshot = RegisterSnapshot(GetLatestSnapshot());
	values[0] = UUIDPGetDatum(&key->tenant);
	values[1] = UUIDPGetDatum(&key->integration);
	if (SPI_execute_snapshot(aos_cus_keep_plan(&policy_plan, sql, 2, types), values, NULL,
							 snapshot, InvalidSnapshot, true, false, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "aos_cus: policy query failed");
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (!isnull)
	{
		MemoryContext old = MemoryContextSwitchTo(cxt);

		parse_policy(DatumGetJsonbP(d), out);
		MemoryContextSwitchTo(old);
	}
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);
	if (!isnull)
	{
		char	   *provider = TextDatumGetCString(d);

		out->provider = aos_cus_provider_parse(provider, strlen(provider));
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
	load_policy(&key, &p, policy_cxt);
	e = hash_search(policy_cache, &key, HASH_ENTER, &found);
	e->policy = p;
	return &e->policy;
}

/*
 * True with *cost when the model has a standard price in force now for provider
 * (cost of tokens at it). A custom integration may call any provider: its own
 * prices first, then each provider's in order.
 */
static bool
model_cost(int provider, const char *model, const AosTokens *tokens, int64 *cost)
{
	int64		price_id;
	TimestampTz now = GetCurrentTransactionStartTimestamp();

	if (aos_cus_price_call(aos_cus_provider_names[provider], model, "standard", now, tokens, cost, &price_id))
		return true;
	for (int other = 0; provider == AOS_PROVIDER_CUSTOM && other < AOS_PROVIDER_CUSTOM; other++)
		if (aos_cus_price_call(aos_cus_provider_names[other], model, "standard", now, tokens, cost, &price_id))
			return true;
	return false;
}

/* True when the model has a standard price in force now for provider. */
static bool
model_priced(int provider, const char *model)
{
	AosTokens	none;
	int64		cost;

	memset(&none, 0, sizeof(none));
	return model_cost(provider, model, &none, &cost);
}

/* Deny globs first, then the allow list, then an unpriced model, then the caps on this request's estimates. */
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
	if (p->unpriced == AOS_UNPRICED_BLOCK && model != NULL && p->provider >= 0 && !model_priced(p->provider, model))
		return AOS_REASON_UNPRICED_MODEL;
	if (p->max_cost >= 0 && est_cost > p->max_cost)
		return AOS_REASON_REQUEST_COST_CAP;
	if (p->max_tokens >= 0 && est_tokens > p->max_tokens)
		return AOS_REASON_REQUEST_TOKEN_CAP;
	return AOS_REASON_OK;
}

/* Cost of tokens at the policy's fallback prices (the other buckets fall back to them as cost.h says). */
static int64
fallback_cost(const AosPolicy *p, const AosTokens *tokens)
{
	AosPriceRow row;
	int64		cost;

	memset(&row, 0, sizeof(row));
	for (int b = 0; b < AOS_BUCKET_COUNT; b++)
		row.price[b] = AOS_PRICE_NONE;
	row.price[AOS_BUCKET_INPUT] = p->fallback_input;
	row.price[AOS_BUCKET_OUTPUT] = p->fallback_output;
	if (aos_cus_cost_compute(tokens, &row, &cost, NULL) != AOS_COST_OK)
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("the cost of this call at the policy's fallback prices is out of range")));
	return cost;
}

/* C API: see policy.h. */
int64
aos_cus_policy_estimate(const AosPolicy *p, const char *model, int64 est_tokens)
{
	AosTokens	tokens;
	int64		cost;

	if (p->provider < 0)
		return 0;
	memset(&tokens, 0, sizeof(tokens));
	/* At most the largest count one call may report (cost.h). */
	tokens.output = Min(est_tokens, AOS_TOKEN_COUNT_MAX);
	if (model_cost(p->provider, model, &tokens, &cost))
		return cost;
	return p->unpriced == AOS_UNPRICED_FALLBACK ? fallback_cost(p, &tokens) : 0;
}

/* C API: see policy.h. */
bool
aos_cus_unpriced_cost(const pg_uuid_t *tenant, const pg_uuid_t *integration, const AosTokens *tokens, int64 *cost)
{
	PolicyKey	key;
	AosPolicy	p;

	memset(&key, 0, sizeof(key));
	key.tenant = *tenant;
	key.integration = *integration;
	load_policy(&key, &p, CurrentMemoryContext);
	if (p.unpriced != AOS_UNPRICED_FALLBACK)
		return false;
	*cost = fallback_cost(&p, tokens);
	return true;
}
