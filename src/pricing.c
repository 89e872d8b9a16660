/*
 * pricing.c: price lookup with a per-backend cache, cost_microcents(),
 * cost_breakdown() and the C API of pricing.h.
 *
 * Cache: a hash table keyed by (provider, model as given, service tier) whose
 * entry holds every version of every row that can price that key (the tier's
 * rows and the standard rows of the resolved model, all effective dates and
 * long-context thresholds); src/core/cost.c picks the row per call. Unknown
 * models are cached as entries with no rows.
 *
 * Invalidation: a statement-level trigger on cus_model_prices calls
 * CacheInvalidateRelcache() for every INSERT, UPDATE, DELETE and TRUNCATE, so
 * each commit that changes prices sends a relcache invalidation to every
 * backend (and to our own at the next command). Our relcache callback only
 * marks the cache stale; the next lookup, which first calls
 * AcceptInvalidationMessages(), drops it and reloads. A commit becomes
 * visible before its invalidation is sent, and reloads read with the latest
 * snapshot, so a call that follows another session's commit never sees the
 * old price. A reload interrupted by an invalidation is used once, not kept.
 * Parallel mode forbids taking a new snapshot: there entries are loaded with
 * the query's snapshot, marked provisional, and dropped by the first call
 * outside parallel mode (parallel workers exit after their query).
 */
#include "aos_cus.h"
#include "cost.h"
#include "pricing.h"
#include "spi_safe.h"
#include "token_estimate.h"
#include "vocab.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "commands/trigger.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/inval.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

/* Same bound as cus_model_prices.model and cus_llm_usage.model (characters). */
#define MODEL_MAX_CHARS 200
#define MODEL_MAX_BYTES (MODEL_MAX_CHARS * 4)

typedef struct PriceKey
{
	int16		provider;		/* AosProvider */
	int16		tier;			/* AosTier */
	int32		len;			/* bytes of model */
	char		model[MODEL_MAX_BYTES + 1];
} PriceKey;

typedef struct PriceEntry
{
	PriceKey	key;			/* must be first */
	char	   *canonical;		/* resolved model name, NULL when unknown */
	bool		provisional;	/* loaded in parallel mode with the query's snapshot */
	int			nrows;
	AosPriceRow *rows;
} PriceEntry;

static MemoryContext price_cxt = NULL;
static HTAB *price_cache = NULL;
static bool price_cache_stale = true;
static uint64 price_cache_generation = 0;
static Oid	prices_relid = InvalidOid;
static SPIPlanPtr load_plan = NULL;

/* One-entry memo of the last lookup: a row-by-row caller repeats the same key. */
static PriceEntry *memo_entry = NULL;

PG_FUNCTION_INFO_V1(aos_cus_cost_microcents);
PG_FUNCTION_INFO_V1(aos_cus_cost_breakdown);
PG_FUNCTION_INFO_V1(aos_cus_prices_changed);
PG_FUNCTION_INFO_V1(aos_cus_estimate_tokens);

/* Relcache callback: mark the cache stale when cus_model_prices (or everything) is invalidated. */
static void
prices_relcache_callback(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == prices_relid)
	{
		price_cache_stale = true;
		price_cache_generation++;
		memo_entry = NULL;
	}
}

/* Register the invalidation callback once per process. */
void
aos_cus_pricing_init(void)
{
	CacheRegisterRelcacheCallback(prices_relcache_callback, (Datum) 0);
}

/* Hash of a PriceKey: only the used bytes of the model. */
static uint32
price_key_hash(const void *key, Size keysize)
{
	const PriceKey *k = key;

	return hash_bytes((const unsigned char *) k->model, k->len) ^ (uint32) (k->provider << 8 | k->tier);
}

/* Equality of two PriceKeys (0 when equal). */
static int
price_key_match(const void *a, const void *b, Size keysize)
{
	const PriceKey *x = a;
	const PriceKey *y = b;

	if (x->provider != y->provider || x->tier != y->tier || x->len != y->len)
		return 1;
	return memcmp(x->model, y->model, x->len);
}

/* Drop every entry and start an empty cache. */
static void
price_cache_reset(void)
{
	HASHCTL		ctl;

	if (price_cxt == NULL)
		price_cxt = AllocSetContextCreate(CacheMemoryContext, "aos_cus price cache", ALLOCSET_DEFAULT_SIZES);
	else
		MemoryContextReset(price_cxt);
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(PriceKey);
	ctl.entrysize = sizeof(PriceEntry);
	ctl.hash = price_key_hash;
	ctl.match = price_key_match;
	ctl.hcxt = price_cxt;
	price_cache = hash_create("aos_cus price cache", 64, &ctl,
							  HASH_ELEM | HASH_FUNCTION | HASH_COMPARE | HASH_CONTEXT);
	memo_entry = NULL;
	prices_relid = get_relname_relid("cus_model_prices", get_namespace_oid("aos_cus", true));
	price_cache_stale = false;
}

/* Int64 of a nullable bigint column, AOS_PRICE_NONE for NULL. */
static int64
column_price(HeapTuple tup, TupleDesc desc, int col)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tup, desc, col, &isnull);

	return isnull ? AOS_PRICE_NONE : DatumGetInt64(d);
}

/* Every row that can price a (provider, model, tier): the tier's rows and the standard rows. */
static const char *const load_sql =
"SELECT p.id, p.service_tier::pg_catalog.text, p.min_prompt_tokens, p.effective_from,"
" p.input_price, p.cache_read_price, p.cache_write_price, p.cache_write_1h_price,"
" p.output_price, p.reasoning_price, p.input_audio_price, p.output_audio_price, r.canonical_model"
" FROM aos_cus.resolve_model($1, $2) r"
" JOIN aos_cus.cus_model_prices p"
"   ON p.provider OPERATOR(pg_catalog.=) r.price_provider AND p.model OPERATOR(pg_catalog.=) r.canonical_model"
" WHERE p.service_tier::pg_catalog.text OPERATOR(pg_catalog.=) ANY (ARRAY[$3, 'standard'])";

/* Read every row that can price key (in cxt) with the latest snapshot (the query's in parallel mode). */
static void
price_load(const PriceKey *key, MemoryContext cxt, PriceEntry *entry)
{
	Datum		args[3];
	Oid			argtypes[3] = {TEXTOID, TEXTOID, TEXTOID};
	bool		parallel = IsInParallelMode();
	int			rc;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	aos_cus_keep_plan(&load_plan, load_sql, 3, argtypes);
	args[0] = CStringGetTextDatum(aos_cus_provider_names[key->provider]);
	args[1] = PointerGetDatum(cstring_to_text_with_len(key->model, key->len));
	args[2] = CStringGetTextDatum(aos_cus_tier_names[key->tier]);
	rc = SPI_execute_snapshot(load_plan, args, NULL, parallel ? GetActiveSnapshot() : GetLatestSnapshot(),
							  InvalidSnapshot, true, false, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "price lookup failed: %s", SPI_result_code_string(rc));

	entry->nrows = (int) SPI_processed;
	entry->canonical = NULL;
	entry->provisional = parallel;
	entry->rows = entry->nrows > 0 ? MemoryContextAlloc(cxt, sizeof(AosPriceRow) * entry->nrows) : NULL;
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		AosPriceRow *r = &entry->rows[i];
		char	   *tier = SPI_getvalue(tup, desc, 2);
		bool		isnull;

		r->id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
		r->tier = aos_cus_tier_parse(tier, strlen(tier));
		r->min_prompt_tokens = DatumGetInt64(SPI_getbinval(tup, desc, 3, &isnull));
		r->effective_from = DatumGetTimestampTz(SPI_getbinval(tup, desc, 4, &isnull));
		for (int b = 0; b < AOS_BUCKET_COUNT; b++)
			r->price[b] = column_price(tup, desc, 5 + b);
		if (entry->canonical == NULL)
			entry->canonical = MemoryContextStrdup(cxt, SPI_getvalue(tup, desc, 13));
	}
	SPI_finish();
}

/* Fill a PriceKey, raising 22023 for a bad provider, model or tier (argument names as in SQL). */
static void
price_key_make(PriceKey *key, const char *provider, int plen, const char *model, int mlen,
			   const char *tier, int tlen)
{
	int			p = aos_cus_provider_parse(provider, plen);
	int			t = aos_cus_tier_parse(tier, tlen);
	char		list[128];

	if (p < 0)
	{
		aos_cus_enum_list(aos_cus_provider_names, list, sizeof(list));
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("provider \"%.*s\" is not one of %s", Min(plen, 64), provider, list)));
	}
	if (t < 0)
	{
		aos_cus_enum_list(aos_cus_tier_names, list, sizeof(list));
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("service_tier \"%.*s\" is not one of %s", Min(tlen, 64), tier, list)));
	}
	if (mlen == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("model must not be empty")));
	if (mlen > MODEL_MAX_BYTES || (mlen > MODEL_MAX_CHARS && pg_mbstrlen_with_len(model, mlen) > MODEL_MAX_CHARS))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("model is longer than %d characters", MODEL_MAX_CHARS)));
	key->provider = (int16) p;
	key->tier = (int16) t;
	key->len = mlen;
	memcpy(key->model, model, mlen);
	key->model[mlen] = '\0';
}

/*
 * The cache entry for key, loading it on a miss. When an invalidation
 * arrived during the load, the entry is built in *scratch (current memory
 * context) and not kept.
 */
static const PriceEntry *
price_lookup(const PriceKey *key, PriceEntry *scratch)
{
	PriceEntry *entry;
	bool		found;
	uint64		generation;

	AcceptInvalidationMessages();
	if (price_cache_stale || price_cache == NULL)
		price_cache_reset();
	if (memo_entry != NULL && price_key_match(&memo_entry->key, key, 0) == 0)
		entry = memo_entry;
	else
		entry = hash_search(price_cache, key, HASH_FIND, NULL);
	if (entry != NULL && entry->provisional && !IsInParallelMode())
	{
		price_cache_reset();
		entry = NULL;
	}
	if (entry != NULL)
		return memo_entry = entry;

	generation = price_cache_generation;
	price_load(key, CurrentMemoryContext, scratch);
	if (generation != price_cache_generation || price_cache_stale)
		return scratch;

	entry = hash_search(price_cache, key, HASH_ENTER, &found);
	entry->nrows = scratch->nrows;
	entry->provisional = scratch->provisional;
	entry->canonical = scratch->canonical ? MemoryContextStrdup(price_cxt, scratch->canonical) : NULL;
	entry->rows = NULL;
	if (scratch->nrows > 0)
	{
		entry->rows = MemoryContextAlloc(price_cxt, sizeof(AosPriceRow) * scratch->nrows);
		memcpy(entry->rows, scratch->rows, sizeof(AosPriceRow) * scratch->nrows);
	}
	return memo_entry = entry;
}

/* Raise 22023 for negative tokens or reasoning > output, naming the argument. */
static void
tokens_validate(const AosTokens *tokens)
{
	AosBucket	bad;

	switch (aos_cus_tokens_check(tokens, &bad))
	{
		case AOS_COST_OK:
			return;
		case AOS_COST_REASONING_EXCEEDS_OUTPUT:
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("reasoning_tokens must not exceed output_tokens"),
					 errdetail("reasoning_tokens is %lld, output_tokens is %lld.",
							   (long long) tokens->reasoning, (long long) tokens->output),
					 errhint("output_tokens counts all billed output, reasoning included.")));
			break;
		default:
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s must not be negative", aos_cus_token_columns[bad])));
	}
}

/* Cost of tokens at row; raises 22003 on overflow. */
static int64
cost_or_error(const AosTokens *tokens, const AosPriceRow *row, AosCostItem *items)
{
	int64_t		cost = 0;

	if (aos_cus_cost_compute(tokens, row, &cost, items) == AOS_COST_OVERFLOW)
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("cost is out of range for bigint micro-cents"),
				 errdetail("The token counts times the prices of price row %lld exceed 9223372036854775807 micro-cents.",
						   (long long) row->id)));
	return cost;
}

/* The selected row for key/tokens/at, or NULL when no price applies; *entry_out gets the entry. */
static const AosPriceRow *
price_row_for(const PriceKey *key, TimestampTz at, const AosTokens *tokens,
			  PriceEntry *scratch, const PriceEntry **entry_out)
{
	const PriceEntry *entry;
	int			i;

	tokens_validate(tokens);
	entry = price_lookup(key, scratch);
	if (entry_out)
		*entry_out = entry;
	i = aos_cus_price_select(entry->rows, entry->nrows, key->tier, at, aos_cus_prompt_tokens(tokens));
	return i < 0 ? NULL : &entry->rows[i];
}

/* C API: see pricing.h. */
bool
aos_cus_price_call(const char *provider, const char *model, const char *service_tier,
				   TimestampTz at, const AosTokens *tokens,
				   int64 *cost_microcents, int64 *price_id)
{
	PriceKey	key;
	PriceEntry	scratch;
	const AosPriceRow *row;

	if (provider == NULL || model == NULL || service_tier == NULL || tokens == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("provider, model, service_tier and tokens must not be null")));
	price_key_make(&key, provider, strlen(provider), model, strlen(model), service_tier, strlen(service_tier));
	row = price_row_for(&key, at, tokens, &scratch, NULL);
	if (row == NULL)
		return false;
	*cost_microcents = cost_or_error(tokens, row, NULL);
	*price_id = row->id;
	return true;
}

/* Argument positions of cost_microcents() and cost_breakdown(). */
enum
{
	ARG_PROVIDER, ARG_MODEL, ARG_INPUT, ARG_OUTPUT, ARG_CACHE_READ, ARG_CACHE_WRITE,
	ARG_CACHE_WRITE_1H, ARG_REASONING, ARG_TIER, ARG_AT, ARG_INPUT_AUDIO, ARG_OUTPUT_AUDIO, ARG_COUNT
};

/* The bucket each argument carries, by position; -1 for provider, model, service_tier and at. */
static const int arg_bucket[ARG_COUNT] = {
	[ARG_PROVIDER] = -1, [ARG_MODEL] = -1, [ARG_INPUT] = AOS_BUCKET_INPUT, [ARG_OUTPUT] = AOS_BUCKET_OUTPUT,
	[ARG_CACHE_READ] = AOS_BUCKET_CACHE_READ, [ARG_CACHE_WRITE] = AOS_BUCKET_CACHE_WRITE,
	[ARG_CACHE_WRITE_1H] = AOS_BUCKET_CACHE_WRITE_1H, [ARG_REASONING] = AOS_BUCKET_REASONING, [ARG_TIER] = -1,
	[ARG_AT] = -1, [ARG_INPUT_AUDIO] = AOS_BUCKET_INPUT_AUDIO, [ARG_OUTPUT_AUDIO] = AOS_BUCKET_OUTPUT_AUDIO,
};

/* SQL name of argument i (a token argument is named as its column). */
static const char *
arg_name(int i)
{
	switch (i)
	{
		case ARG_PROVIDER:
			return "provider";
		case ARG_MODEL:
			return "model";
		case ARG_TIER:
			return "service_tier";
		case ARG_AT:
			return "at";
		default:
			return aos_cus_token_columns[arg_bucket[i]];
	}
}

/* Read the shared arguments of cost_microcents()/cost_breakdown(); 22004 for NULLs. */
static void
cost_args(FunctionCallInfo fcinfo, PriceKey *key, AosTokens *tokens, TimestampTz *at)
{
	text	   *provider;
	text	   *model;
	text	   *tier;

	for (int i = 0; i < ARG_COUNT; i++)
		if (PG_ARGISNULL(i))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("%s must not be null", arg_name(i))));
	provider = PG_GETARG_TEXT_PP(ARG_PROVIDER);
	model = PG_GETARG_TEXT_PP(ARG_MODEL);
	tier = PG_GETARG_TEXT_PP(ARG_TIER);
	price_key_make(key, VARDATA_ANY(provider), VARSIZE_ANY_EXHDR(provider),
				   VARDATA_ANY(model), VARSIZE_ANY_EXHDR(model),
				   VARDATA_ANY(tier), VARSIZE_ANY_EXHDR(tier));
	for (int i = 0; i < ARG_COUNT; i++)
		if (arg_bucket[i] >= 0)
			aos_cus_tokens_set(tokens, arg_bucket[i], PG_GETARG_INT64(i));
	*at = PG_GETARG_TIMESTAMPTZ(ARG_AT);
}

/* SQL cost_microcents(...): exact cost in micro-cents, NULL for an unknown model. */
Datum
aos_cus_cost_microcents(PG_FUNCTION_ARGS)
{
	PriceKey	key;
	AosTokens	tokens;
	TimestampTz at;
	PriceEntry	scratch;
	const AosPriceRow *row;

	cost_args(fcinfo, &key, &tokens, &at);
	row = price_row_for(&key, at, &tokens, &scratch, NULL);
	if (row == NULL)
		PG_RETURN_NULL();
	PG_RETURN_INT64(cost_or_error(&tokens, row, NULL));
}

/* SQL cost_breakdown(...): the price row, tier and one item per bucket as jsonb; NULL for an unknown model. */
Datum
aos_cus_cost_breakdown(PG_FUNCTION_ARGS)
{
	PriceKey	key;
	AosTokens	tokens;
	TimestampTz at;
	PriceEntry	scratch;
	const PriceEntry *entry;
	const AosPriceRow *row;
	AosCostItem items[AOS_BUCKET_COUNT];
	int64		total;
	StringInfoData buf;
	char		num[64];

	cost_args(fcinfo, &key, &tokens, &at);
	row = price_row_for(&key, at, &tokens, &scratch, &entry);
	if (row == NULL)
		PG_RETURN_NULL();
	total = cost_or_error(&tokens, row, items);

	initStringInfo(&buf);
	appendStringInfo(&buf, "{\"price_id\": %lld, \"provider\": ", (long long) row->id);
	escape_json(&buf, aos_cus_provider_names[key.provider]);
	appendStringInfoString(&buf, ", \"model\": ");
	escape_json(&buf, entry->canonical);
	appendStringInfo(&buf, ", \"service_tier\": \"%s\", \"requested_service_tier\": \"%s\""
					 ", \"min_prompt_tokens\": %lld, \"prompt_tokens\": %lld, \"effective_from\": ",
					 aos_cus_tier_names[row->tier], aos_cus_tier_names[key.tier],
					 (long long) row->min_prompt_tokens, (long long) aos_cus_prompt_tokens(&tokens));
	escape_json(&buf, timestamptz_to_str(row->effective_from));
	appendStringInfoString(&buf, ", \"items\": [");
	for (int b = 0; b < AOS_BUCKET_COUNT; b++)
	{
		aos_cus_scaled_to_text(items[b].scaled, num, sizeof(num));
		appendStringInfo(&buf, "%s{\"bucket\": \"%s\", \"tokens\": %lld, \"unit_price\": %lld, \"microcents\": %s}",
						 b > 0 ? ", " : "", aos_cus_bucket_names[b], (long long) items[b].tokens,
						 (long long) items[b].unit_price, num);
	}
	appendStringInfo(&buf, "], \"total_microcents\": %lld}", (long long) total);
	PG_RETURN_DATUM(DirectFunctionCall1(jsonb_in, CStringGetDatum(buf.data)));
}

/* Statement trigger on cus_model_prices: tell every backend's price cache at commit. */
Datum
aos_cus_prices_changed(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	aos_cus_require_trigger_on(fcinfo, "aos_cus_internal.prices_changed()", "cus_model_prices");
	CacheInvalidateRelcache(trigdata->tg_relation);
	return PointerGetDatum(NULL);
}

/* SQL estimate_tokens(content, model): NULL for NULL content; model picks the tokenizer family. */
Datum
aos_cus_estimate_tokens(PG_FUNCTION_ARGS)
{
	text	   *content;
	AosTokenizer family = AOS_TOKENIZER_CHARS4;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	content = PG_GETARG_TEXT_PP(0);
	if (!PG_ARGISNULL(1))
	{
		text	   *model = PG_GETARG_TEXT_PP(1);

		family = aos_cus_tokenizer_for_model(VARDATA_ANY(model), VARSIZE_ANY_EXHDR(model));
	}
	PG_RETURN_INT32((int32) aos_cus_token_estimate(VARDATA_ANY(content), VARSIZE_ANY_EXHDR(content), family));
}
