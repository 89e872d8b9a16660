/* The floor of check() for benchmarks: a C function with check()'s arguments returning a constant decision row. */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

PG_MODULE_MAGIC;

PG_FUNCTION_INFO_V1(decision_floor);

/* The row check() returns for an allowed call in bench/63 and bench/71, built without deciding anything. */
Datum
decision_floor(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	Datum		values[10] = {0};
	bool		nulls[10] = {false, false, true, false, false, false, true, false, true, true};

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE || tupdesc->natts != 10)
		ereport(ERROR, (errcode(ERRCODE_DATATYPE_MISMATCH), errmsg("decision_floor must return aos_cus.decision")));
	values[0] = CStringGetTextDatum("allowed");
	values[1] = CStringGetTextDatum("ok");
	values[3] = Int64GetDatum(100);
	values[4] = Int64GetDatum(INT64CONST(9000000000000000000));
	values[5] = Int64GetDatum(10);
	values[7] = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(tupdesc), values, nulls)));
}
