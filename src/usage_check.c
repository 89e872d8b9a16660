/*
 * usage_check.c: cus_llm_usage_row_check, the CHECK constraint of cus_llm_usage. PostgreSQL reads and plans
 * a table's CHECK expressions again for every INSERT statement; ten SQL expressions cost more than half of a
 * single-row insert, one call of this function a tenth of that. It enforces what the ten enforced, with the
 * same NULL rule (a NULL column passes), and names the column that fails (23514).
 */
#include "aos_cus.h"
#include "scope.h"
#include "usage.h"

#include "access/detoast.h"
#include "cost.h"
#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"

PG_FUNCTION_INFO_V1(aos_cus_usage_row_check);

/* Arguments, in the order of the constraint's call. */
enum
{
	ARG_CALL_ID,
	ARG_MODEL,
	ARG_STATUS,
	ARG_ERROR_CODE,
	ARG_SUBJECT,
	ARG_LATENCY_MS,
	ARG_METADATA,
	ARG_TAGS,
	ARG_TOKENS					/* the eight token counts, input_tokens first, reasoning_tokens sixth */
};
#define ARG_OUTPUT_TOKENS (ARG_TOKENS + 4)
#define ARG_REASONING_TOKENS (ARG_TOKENS + 5)
#define TOKEN_ARGS 8

static void violation(const char *fmt,...) pg_attribute_printf(1, 2);

/* Raise 23514 naming the constraint, with what failed as detail. */
static void
violation(const char *fmt,...)
{
	char		detail[256];
	va_list		ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	ereport(ERROR,
			(errcode(ERRCODE_CHECK_VIOLATION),
			 errmsg("new row for relation \"cus_llm_usage\" violates check constraint \"cus_llm_usage_row_check\""),
			 errdetail_internal("%s", detail)));
}

/* Characters of text argument n within [min, max] (bytes when bytes is set). */
static void
check_length(FunctionCallInfo fcinfo, int n, const char *column, int min, int max, bool bytes)
{
	text	   *t;
	int			len;

	if (PG_ARGISNULL(n))
		return;
	t = PG_GETARG_TEXT_PP(n);
	len = bytes ? (int) VARSIZE_ANY_EXHDR(t) : pg_mbstrlen_with_len(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
	if (len < min || len > max)
		violation("%s has %d %s; it must have %d to %d.", column, len, bytes ? "bytes" : "characters", min, max);
}

/* jsonb argument n is an object of at most max stored bytes (pg_column_size). */
static void
check_object(FunctionCallInfo fcinfo, int n, const char *column, Size max)
{
	Size		size;

	if (PG_ARGISNULL(n))
		return;
	size = toast_datum_size(PG_GETARG_DATUM(n));
	if (!JB_ROOT_IS_OBJECT(PG_GETARG_JSONB_P(n)))
		violation("%s must be a JSON object.", column);
	if (size > max)
		violation("%s takes %zu bytes; at most %zu are allowed.", column, size, max);
}

/* The status is one of aos_cus_status_names. */
static void
check_status(FunctionCallInfo fcinfo)
{
	char	   *status;

	if (PG_ARGISNULL(ARG_STATUS))
		return;
	status = text_to_cstring(PG_GETARG_TEXT_PP(ARG_STATUS));
	for (int i = 0; aos_cus_status_names[i] != NULL; i++)
		if (strcmp(status, aos_cus_status_names[i]) == 0)
			return;
	violation("status \"%s\" is not one of success, error, timeout, cancelled, blocked.", status);
}

/* CHECK (usage_row_check(call_id, model, status, error_code, subject, latency_ms, metadata, tags, tokens...)). */
Datum
aos_cus_usage_row_check(PG_FUNCTION_ARGS)
{
	if (PG_NARGS() != ARG_TOKENS + TOKEN_ARGS)
		elog(ERROR, "aos_cus_usage_row_check takes %d arguments", ARG_TOKENS + TOKEN_ARGS);
	check_length(fcinfo, ARG_CALL_ID, "call_id", 1, AOS_USAGE_MAX_CALL_ID, false);
	check_length(fcinfo, ARG_MODEL, "model", 1, AOS_USAGE_MAX_MODEL, false);
	check_status(fcinfo);
	check_length(fcinfo, ARG_ERROR_CODE, "error_code", 0, AOS_USAGE_MAX_ERROR_CODE, false);
	check_length(fcinfo, ARG_SUBJECT, "subject", 1, AOS_SUBJECT_MAX, true);
	if (!PG_ARGISNULL(ARG_LATENCY_MS) && PG_GETARG_INT32(ARG_LATENCY_MS) < 0)
		violation("latency_ms is %d; it must not be negative.", PG_GETARG_INT32(ARG_LATENCY_MS));
	check_object(fcinfo, ARG_METADATA, "metadata", AOS_USAGE_MAX_METADATA);
	check_object(fcinfo, ARG_TAGS, "tags", AOS_USAGE_MAX_TAGS);
	for (int i = ARG_TOKENS; i < ARG_TOKENS + TOKEN_ARGS; i++)
		if (!PG_ARGISNULL(i) && PG_GETARG_INT64(i) > AOS_TOKEN_COUNT_MAX)
			violation("a token count is " INT64_FORMAT "; each must be at most " INT64_FORMAT ".",
					  PG_GETARG_INT64(i), AOS_TOKEN_COUNT_MAX);
	if (!PG_ARGISNULL(ARG_OUTPUT_TOKENS) && !PG_ARGISNULL(ARG_REASONING_TOKENS) &&
		PG_GETARG_INT64(ARG_REASONING_TOKENS) > PG_GETARG_INT64(ARG_OUTPUT_TOKENS))
		violation("reasoning_tokens (" INT64_FORMAT ") exceeds output_tokens (" INT64_FORMAT ").",
				  PG_GETARG_INT64(ARG_REASONING_TOKENS), PG_GETARG_INT64(ARG_OUTPUT_TOKENS));
	PG_RETURN_BOOL(true);
}
