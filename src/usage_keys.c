/*
 * usage_keys.c: idempotency of cus_llm_usage by (tenant_id, call_id).
 *
 * cus_llm_usage is partitioned by started_at, so it cannot carry a unique key on (tenant_id, call_id);
 * cus_usage_keys (primary key named cus_llm_usage_tenant_id_call_id_key) holds it instead, for rows started
 * inside the idempotency window (maintain_partitions() prunes older keys). This BEFORE INSERT row trigger
 * claims the key: a plain INSERT of a duplicate raises 23505 as a unique constraint would (waiting for a
 * concurrent inserter of the same key first). Inside ingest_usage() (aos_cus_usage_keys_skip_duplicates
 * set) the claim is ON CONFLICT DO NOTHING and a duplicate row is skipped, which ingest reports as duplicate.
 * AFTER DELETE frees the row's key; AFTER TRUNCATE frees every key. Writes run elevated (spi_safe.h).
 */
#include "aos_cus.h"
#include "spi_safe.h"
#include "usage_keys.h"

#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"

PG_FUNCTION_INFO_V1(aos_cus_usage_key_trigger);

bool		aos_cus_usage_keys_skip_duplicates = false;

static SPIPlanPtr plan_claim = NULL;
static SPIPlanPtr plan_claim_or_skip = NULL;
static SPIPlanPtr plan_free = NULL;
static SPIPlanPtr plan_free_all = NULL;

/* Column numbers of tenant_id, call_id and started_at in the row's descriptor. */
static void
key_columns(TupleDesc desc, int *cols)
{
	static const char *const names[3] = {"tenant_id", "call_id", "started_at"};

	for (int i = 0; i < 3; i++)
	{
		cols[i] = SPI_fnumber(desc, names[i]);
		if (cols[i] <= 0)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("aos_cus_usage_key_trigger: column \"%s\" is missing", names[i])));
	}
}

/* Run plan with the row's key under elevated rights; returns rows processed. */
static uint64
run_key_plan(SPIPlanPtr *slot, const char *sql, HeapTuple tuple, TupleDesc desc)
{
	static const Oid types[3] = {UUIDOID, TEXTOID, TIMESTAMPTZOID};
	int			cols[3];
	Datum		values[3];
	bool		isnull;
	AosElevation e;
	uint64		n;

	key_columns(desc, cols);
	for (int i = 0; i < 3; i++)
		values[i] = SPI_getbinval(tuple, desc, cols[i], &isnull);
	aos_cus_elevate(&e);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "aos_cus: SPI_connect failed");
	if (SPI_execute_plan(aos_cus_keep_plan(slot, sql, 3, types), values, NULL, false, 0) < 0)
		elog(ERROR, "aos_cus: idempotency key statement failed");
	n = SPI_processed;
	SPI_finish();
	aos_cus_unelevate(&e);
	return n;
}

/* BEFORE INSERT / AFTER DELETE FOR EACH ROW, AFTER TRUNCATE FOR EACH STATEMENT on cus_llm_usage. */
Datum
aos_cus_usage_key_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	TupleDesc	desc;

	aos_cus_require_trigger_on(fcinfo, "aos_cus.usage_key_trigger()", "cus_llm_usage");
	desc = RelationGetDescr(td->tg_relation);
	if (TRIGGER_FIRED_BY_TRUNCATE(td->tg_event) && TRIGGER_FIRED_AFTER(td->tg_event))
	{
		AosElevation e;

		aos_cus_elevate(&e);
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "aos_cus: SPI_connect failed");
		if (SPI_execute_plan(aos_cus_keep_plan(&plan_free_all, "DELETE FROM aos_cus.cus_usage_keys", 0, NULL),
							 NULL, NULL, false, 0) < 0)
			elog(ERROR, "aos_cus: idempotency key statement failed");
		SPI_finish();
		aos_cus_unelevate(&e);
		return PointerGetDatum(NULL);
	}
	if (!TRIGGER_FIRED_FOR_ROW(td->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("aos_cus_usage_key_trigger must fire BEFORE INSERT or AFTER DELETE FOR EACH ROW, or AFTER TRUNCATE")));
	if (TRIGGER_FIRED_BY_DELETE(td->tg_event) && TRIGGER_FIRED_AFTER(td->tg_event))
	{
		/* Only the key this row holds: an older row of the same call_id (past the window) holds none. */
		run_key_plan(&plan_free,
					 "DELETE FROM aos_cus.cus_usage_keys WHERE tenant_id OPERATOR(pg_catalog.=) $1"
					 " AND call_id OPERATOR(pg_catalog.=) $2 AND started_at OPERATOR(pg_catalog.=) $3",
					 td->tg_trigtuple, desc);
		return PointerGetDatum(td->tg_trigtuple);
	}
	if (!TRIGGER_FIRED_BY_INSERT(td->tg_event) || !TRIGGER_FIRED_BEFORE(td->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("aos_cus_usage_key_trigger must fire BEFORE INSERT or AFTER DELETE FOR EACH ROW, or AFTER TRUNCATE")));
	if (!aos_cus_usage_keys_skip_duplicates)
	{
		run_key_plan(&plan_claim,
					 "INSERT INTO aos_cus.cus_usage_keys (tenant_id, call_id, started_at) VALUES ($1, $2, $3)",
					 td->tg_trigtuple, desc);
		return PointerGetDatum(td->tg_trigtuple);
	}
	if (run_key_plan(&plan_claim_or_skip,
					 "INSERT INTO aos_cus.cus_usage_keys (tenant_id, call_id, started_at) VALUES ($1, $2, $3)"
					 " ON CONFLICT (tenant_id, call_id) DO NOTHING",
					 td->tg_trigtuple, desc) == 0)
		return PointerGetDatum(NULL);
	return PointerGetDatum(td->tg_trigtuple);
}
