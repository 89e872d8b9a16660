/*
 * usage_keys.c: idempotency of cus_llm_usage by (tenant_id, call_id).
 *
 * cus_llm_usage is partitioned by started_at, so it cannot carry a unique key on (tenant_id, call_id):
 * cus_usage_keys (primary key named cus_llm_usage_tenant_id_call_id_key) holds, for each call_id, the row
 * that owns it while that row started or was ingested inside the idempotency window. This BEFORE INSERT
 * row trigger claims the key for the new row (waiting, as a unique index would, for a concurrent inserter of
 * the same key). A key past the window yields to the new row; a live one makes the insert a duplicate: a
 * plain INSERT raises 23505 as the unique constraint did, and ingest_usage()'s own inserts
 * (AOS_USAGE_KEY_SKIP_DUPLICATES) skip the row, which ingest reports as duplicate. ingest_usage() of one record
 * claims the key in the statement that inserts the row (AOS_USAGE_KEY_CLAIMED): the trigger passes that row. A row that itself
 * started and was ingested before the window (a restored old row) needs no key. AFTER DELETE frees the row's
 * key, AFTER TRUNCATE every key. Restoring a dump rebuilds the keys through this trigger. Writes run
 * elevated (spi_safe.h).
 */
#include "aos_cus.h"
#include "spi_safe.h"
#include "usage_keys.h"

#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/uuid.h"

PG_FUNCTION_INFO_V1(aos_cus_usage_key_trigger);

AosUsageKeyMode aos_cus_usage_key_mode = AOS_USAGE_KEY_CLAIM;

/* Columns of the usage row that make its key, in the order of the plans' parameters. */
#define KEY_NCOLS 5
static const char *const key_column_names[KEY_NCOLS] = {"tenant_id", "call_id", "id", "started_at", "ingested_at"};
static const Oid key_types[KEY_NCOLS] = {UUIDOID, TEXTOID, INT8OID, TIMESTAMPTZOID, TIMESTAMPTZOID};

/* Claim a free key (the common case, no window read). */
static const char *const claim_sql =
	"INSERT INTO aos_cus.cus_usage_keys (tenant_id, call_id, usage_id, started_at, ingested_at)"
	" VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant_id, call_id) DO NOTHING";

/* The key is taken: take it over if it is past the window; also say whether the new row itself is. */
#define WINDOW_START \
	"(pg_catalog.now() OPERATOR(pg_catalog.-) (SELECT s.idempotency_window FROM aos_cus.usage_settings() s))"
static const char *const take_over_sql =
	"WITH w AS (SELECT " WINDOW_START " AS start),"
	" taken AS (UPDATE aos_cus.cus_usage_keys k"
	"   SET usage_id = $3, started_at = $4, ingested_at = $5 FROM w"
	"   WHERE k.tenant_id OPERATOR(pg_catalog.=) $1 AND k.call_id OPERATOR(pg_catalog.=) $2"
	"     AND k.started_at OPERATOR(pg_catalog.<) w.start AND k.ingested_at OPERATOR(pg_catalog.<) w.start"
	"   RETURNING 1)"
	" SELECT EXISTS (SELECT 1 FROM taken),"
	"        $4 OPERATOR(pg_catalog.<) w.start AND $5 OPERATOR(pg_catalog.<) w.start FROM w";

static SPIPlanPtr plan_claim = NULL;
static SPIPlanPtr plan_take_over = NULL;
static SPIPlanPtr plan_free = NULL;
static SPIPlanPtr plan_free_all = NULL;

/* The row's key values, in key_column_names order. */
static void
key_values(HeapTuple tuple, TupleDesc desc, Datum *values)
{
	for (int i = 0; i < KEY_NCOLS; i++)
	{
		int			col = SPI_fnumber(desc, key_column_names[i]);
		bool		isnull;

		if (col <= 0)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("aos_cus_usage_key_trigger: column \"%s\" is missing", key_column_names[i])));
		values[i] = SPI_getbinval(tuple, desc, col, &isnull);
	}
}

/* Run a key statement (SPI connected, elevated); returns rows processed. */
static uint64
run_key_plan(SPIPlanPtr *slot, const char *sql, int nargs, Datum *values)
{
	if (SPI_execute_plan(aos_cus_keep_plan(slot, sql, nargs, key_types), values, NULL, false, 0) < 0)
		elog(ERROR, "aos_cus: idempotency key statement failed");
	return SPI_processed;
}

/* Claim the row's key: true when it holds it now, or needs none (itself past the window). */
static bool
claim_key(Datum *values)
{
	bool		isnull;

	if (run_key_plan(&plan_claim, claim_sql, KEY_NCOLS, values) == 1)
		return true;
	run_key_plan(&plan_take_over, take_over_sql, KEY_NCOLS, values);
	return DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)) ||
		DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
}

/* BEFORE INSERT / AFTER DELETE FOR EACH ROW, AFTER TRUNCATE FOR EACH STATEMENT on cus_llm_usage. */
Datum
aos_cus_usage_key_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	Datum		values[KEY_NCOLS];
	AosElevation e;
	bool		ok = true;

	aos_cus_require_trigger_on(fcinfo, "aos_cus_internal.usage_key_trigger()", "cus_llm_usage");
	if (!(TRIGGER_FIRED_BY_TRUNCATE(td->tg_event) && TRIGGER_FIRED_AFTER(td->tg_event)) &&
		(!TRIGGER_FIRED_FOR_ROW(td->tg_event) ||
		 !((TRIGGER_FIRED_BY_INSERT(td->tg_event) && TRIGGER_FIRED_BEFORE(td->tg_event)) ||
		   (TRIGGER_FIRED_BY_DELETE(td->tg_event) && TRIGGER_FIRED_AFTER(td->tg_event)))))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("aos_cus_usage_key_trigger must fire BEFORE INSERT or AFTER DELETE FOR EACH ROW, or AFTER TRUNCATE")));
	if (TRIGGER_FIRED_BY_INSERT(td->tg_event) && aos_cus_usage_key_mode == AOS_USAGE_KEY_CLAIMED)
		return PointerGetDatum(td->tg_trigtuple);
	if (TRIGGER_FIRED_FOR_ROW(td->tg_event))
		key_values(td->tg_trigtuple, RelationGetDescr(td->tg_relation), values);
	aos_cus_elevate(&e);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "aos_cus: SPI_connect failed");
	if (TRIGGER_FIRED_BY_TRUNCATE(td->tg_event))
		run_key_plan(&plan_free_all, "DELETE FROM aos_cus.cus_usage_keys", 0, NULL);
	else if (TRIGGER_FIRED_BY_DELETE(td->tg_event))
		/* Only the key this row holds (an older row of the same call_id, past the window, holds none). */
		run_key_plan(&plan_free,
					 "DELETE FROM aos_cus.cus_usage_keys WHERE tenant_id OPERATOR(pg_catalog.=) $1"
					 " AND call_id OPERATOR(pg_catalog.=) $2 AND usage_id OPERATOR(pg_catalog.=) $3",
					 3, values);
	else
		ok = claim_key(values);
	SPI_finish();
	aos_cus_unelevate(&e);
	if (!TRIGGER_FIRED_BY_INSERT(td->tg_event))
		return PointerGetDatum(TRIGGER_FIRED_FOR_ROW(td->tg_event) ? td->tg_trigtuple : NULL);
	if (ok)
		return PointerGetDatum(td->tg_trigtuple);
	if (aos_cus_usage_key_mode == AOS_USAGE_KEY_SKIP_DUPLICATES)
		return PointerGetDatum(NULL);
	ereport(ERROR,
			(errcode(ERRCODE_UNIQUE_VIOLATION),
			 errmsg("duplicate key value violates unique constraint \"%s\"", "cus_llm_usage_tenant_id_call_id_key"),
			 errdetail("Key (tenant_id, call_id)=(%s, %s) already exists.",
					   DatumGetCString(DirectFunctionCall1(uuid_out, values[0])), TextDatumGetCString(values[1])),
			 errtableconstraint(td->tg_relation, "cus_llm_usage_tenant_id_call_id_key")));
	return PointerGetDatum(NULL);
}
