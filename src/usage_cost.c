/*
 * usage_cost.c: the BEFORE INSERT OR UPDATE trigger on cus_llm_usage that
 * fills cost_microcents and price_id, so a plain INSERT or COPY is priced
 * exactly as ingest_usage() is (which prices in C and passes the cost, so the
 * trigger's WHEN (NEW.cost_microcents IS NULL) skips it). Only roles with full
 * INSERT on the table (aos_cus_admin, the owner: restores, imports of billed
 * history) may supply a cost; aos_cus_app may not insert that column.
 * reprice_usage() sets the cost to NULL and lets this trigger price again.
 * A row left without a price gets unpriced_reason (absent from the 0.1.0
 * table: then skipped) and the cost its policy's unpriced rule gives (policy.h:
 * the fallback prices, else none). Prices come from the pricing module (pricing.h).
 */
#include "aos_cus.h"
#include "policy.h"
#include "pricing.h"
#include "usage.h"
#include "vocab.h"

#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/rel.h"


const char *const aos_cus_status_names[] = {"success", "error", "timeout", "cancelled", "blocked", NULL};

/* Columns the trigger reads and writes, looked up once per query (kept in fn_extra). */
enum
{
	COL_PROVIDER,
	COL_MODEL,
	COL_TIER,
	COL_STARTED_AT,
	COL_COST,
	COL_PRICE_ID,
	COL_REASON,
	COL_TENANT,
	COL_INTEGRATION,
	COL_TOKENS,
	COL_COUNT = COL_TOKENS + AOS_BUCKET_COUNT
};

static const char *const fixed_columns[] = {
	"provider", "model", "service_tier", "started_at", "cost_microcents", "price_id", "unpriced_reason",
	"tenant_id", "integration_id"
};

PG_FUNCTION_INFO_V1(aos_cus_usage_price_trigger);

/* Price through the pricing module's C API. */
bool
aos_cus_usage_price(const char *provider, const char *model, const char *tier, TimestampTz at,
					const int64 tokens[AOS_BUCKET_COUNT], int64 *cost_microcents, int64 *price_id)
{
	AosTokens	t;

	for (int b = 0; b < AOS_BUCKET_COUNT; b++)
		aos_cus_tokens_set(&t, b, tokens[b]);
	return aos_cus_price_call(provider, model, tier, at, &t, cost_microcents, price_id);
}

/* Why a call has no price (no price of that model, or none in force when the call started). */
char *
aos_cus_unpriced_reason(const char *provider, const char *model, const char *tier)
{
	return psprintf("no price in force at started_at for model '%s' of provider %s, service tier %s",
					model, provider, tier);
}

/* Normalize a raw usage block through the pricing module. */
void
aos_cus_usage_extract(const char *provider, Jsonb *usage, int64 tokens[AOS_BUCKET_COUNT])
{
	AosTokens	t;

	aos_cus_extract_tokens(provider, usage, &t);
	for (int b = 0; b < AOS_BUCKET_COUNT; b++)
		tokens[b] = aos_cus_tokens_get(&t, b);
}


/* Attribute numbers of the columns the trigger uses, cached per query in fn_extra. */
static int *
usage_columns(FunctionCallInfo fcinfo, TupleDesc desc)
{
	int		   *cols = (int *) fcinfo->flinfo->fn_extra;

	if (cols != NULL)
		return cols;
	cols = MemoryContextAlloc(fcinfo->flinfo->fn_mcxt, sizeof(int) * COL_COUNT);
	for (int i = 0; i < COL_COUNT; i++)
	{
		const char *name = i < COL_TOKENS ? fixed_columns[i] : aos_cus_token_columns[i - COL_TOKENS];

		cols[i] = SPI_fnumber(desc, name);
		if (cols[i] <= 0 && i == COL_REASON)
			cols[i] = 0;
		else if (cols[i] <= 0)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("aos_cus_usage_price_trigger: column \"%s\" is missing", name)));
	}
	fcinfo->flinfo->fn_extra = cols;
	return cols;
}

/* The cost the policy's unpriced rule gives a row without a price (false: none). */
static bool
unpriced_row_cost(HeapTuple tuple, TupleDesc desc, const int *cols, const int64 tokens[AOS_BUCKET_COUNT], int64 *cost)
{
	bool		tnull;
	bool		inull;
	Datum		tenant = heap_getattr(tuple, cols[COL_TENANT], desc, &tnull);
	Datum		integration = heap_getattr(tuple, cols[COL_INTEGRATION], desc, &inull);
	AosTokens	t;

	/* NOT NULL columns: a NULL fails its constraint right after this trigger. */
	if (tnull || inull)
		return false;
	for (int b = 0; b < AOS_BUCKET_COUNT; b++)
		aos_cus_tokens_set(&t, b, tokens[b]);
	return aos_cus_unpriced_cost(DatumGetUUIDP(tenant), DatumGetUUIDP(integration), &t, cost);
}

/* BEFORE INSERT OR UPDATE FOR EACH ROW: price a row that has no cost. */
Datum
aos_cus_usage_price_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	HeapTuple	tuple;
	TupleDesc	desc;
	int		   *cols;
	bool		isnull;
	Datum		key[COL_STARTED_AT + 1];
	int64		tokens[AOS_BUCKET_COUNT];
	int64		cost;
	int64		price_id;
	int			replace_cols[3];
	Datum		values[3];
	bool		nulls[3];
	int			nreplace;
	bool		priced;

	aos_cus_require_trigger_on(fcinfo, "aos_cus_internal.usage_price_trigger()", "cus_llm_usage");
	if (!TRIGGER_FIRED_BEFORE(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) || TRIGGER_FIRED_BY_DELETE(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("aos_cus_usage_price_trigger must fire BEFORE INSERT OR UPDATE FOR EACH ROW")));
	tuple = TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event) ? trigdata->tg_newtuple : trigdata->tg_trigtuple;
	desc = RelationGetDescr(trigdata->tg_relation);
	cols = usage_columns(fcinfo, desc);

	(void) heap_getattr(tuple, cols[COL_COST], desc, &isnull);
	if (!isnull)
		return PointerGetDatum(tuple);

	for (int i = 0; i < AOS_BUCKET_COUNT; i++)
	{
		Datum		d = heap_getattr(tuple, cols[COL_TOKENS + i], desc, &isnull);

		tokens[i] = isnull ? 0 : DatumGetInt64(d);
	}
	/* The table's CHECK refuses this row right after the trigger; leave the verdict to it. */
	if (tokens[AOS_BUCKET_REASONING] > tokens[AOS_BUCKET_OUTPUT])
		return PointerGetDatum(tuple);
	for (int i = COL_PROVIDER; i <= COL_STARTED_AT; i++)
	{
		key[i] = heap_getattr(tuple, cols[i], desc, &isnull);
		/* NOT NULL columns: a NULL fails its constraint right after this trigger. */
		if (isnull)
			return PointerGetDatum(tuple);
	}
	priced = aos_cus_usage_price(TextDatumGetCString(key[COL_PROVIDER]), TextDatumGetCString(key[COL_MODEL]),
								 TextDatumGetCString(key[COL_TIER]), DatumGetTimestampTz(key[COL_STARTED_AT]),
								 tokens, &cost, &price_id);
	nulls[1] = !priced;
	nulls[0] = !priced && !unpriced_row_cost(tuple, desc, cols, tokens, &cost);
	replace_cols[0] = cols[COL_COST];
	replace_cols[1] = cols[COL_PRICE_ID];
	values[0] = nulls[0] ? (Datum) 0 : Int64GetDatum(cost);
	values[1] = nulls[1] ? (Datum) 0 : Int64GetDatum(price_id);
	nreplace = 2;
	if (cols[COL_REASON] > 0)
	{
		replace_cols[2] = cols[COL_REASON];
		nulls[2] = priced;
		values[2] = nulls[2] ? (Datum) 0 :
			CStringGetTextDatum(aos_cus_unpriced_reason(TextDatumGetCString(key[COL_PROVIDER]),
														TextDatumGetCString(key[COL_MODEL]),
														TextDatumGetCString(key[COL_TIER])));
		nreplace = 3;
	}
	return PointerGetDatum(heap_modify_tuple_by_cols(tuple, desc, nreplace, replace_cols, values, nulls));
}
