/*
 * integrations.c: C helpers of integration management (the API itself is
 * SQL in src/sql/40_integrations.sql) and its two errors, worded once.
 */
#include "integrations.h"
#include "uuid_text.h"

#include "fmgr.h"
#include "pgtime.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

/* Sorted names of the server's time zone database, loaded once per backend. */
static char **zone_names = NULL;
static int	zone_count = 0;

PG_FUNCTION_INFO_V1(aos_cus_is_iana_timezone);

/* qsort/bsearch comparator of two C strings held by pointer. */
static int
compare_names(const void *a, const void *b)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}

/* Read every zone name (as pg_timezone_names lists them) into zone_names. */
static void
load_zone_names(void)
{
	MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
	pg_tzenum  *e = pg_tzenumerate_start();
	pg_tz	   *tz;
	int			cap = 1024;
	char	  **names = palloc(cap * sizeof(char *));
	int			n = 0;

	while ((tz = pg_tzenumerate_next(e)) != NULL)
	{
		if (n == cap)
		{
			cap *= 2;
			names = repalloc(names, cap * sizeof(char *));
		}
		names[n++] = pstrdup(pg_get_timezone_name(tz));
	}
	pg_tzenumerate_end(e);
	MemoryContextSwitchTo(old);
	qsort(names, n, sizeof(char *), compare_names);
	zone_names = names;
	zone_count = n;
}

/* SQL is_iana_timezone(name): true when name is exactly a zone of pg_timezone_names. */
Datum
aos_cus_is_iana_timezone(PG_FUNCTION_ARGS)
{
	char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(0));

	if (zone_names == NULL)
		load_zone_names();
	PG_RETURN_BOOL(bsearch(&name, zone_names, zone_count, sizeof(char *), compare_names) != NULL);
}

PG_FUNCTION_INFO_V1(aos_cus_raise_error);

/*
 * SQL raise_error(sqlstate, message, detail, hint): raises that error with no CONTEXT lines. The API functions
 * re-raise what their helpers raised through it, so a user sees the message, never the helpers' call stack.
 * Empty detail or hint means none.
 */
Datum
aos_cus_raise_error(PG_FUNCTION_ARGS)
{
	char	   *state = text_to_cstring(PG_GETARG_TEXT_PP(0));
	char	   *message = text_to_cstring(PG_GETARG_TEXT_PP(1));
	char	   *detail = text_to_cstring(PG_GETARG_TEXT_PP(2));
	char	   *hint = text_to_cstring(PG_GETARG_TEXT_PP(3));

	if (strlen(state) != 5 || strspn(state, "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ") != 5)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("sqlstate must be five digits or capital letters, not \"%s\"", state)));
	/* Every handler that catches this restores the context stack it saved. */
	error_context_stack = NULL;
	ereport(ERROR,
			(errcode(MAKE_SQLSTATE(state[0], state[1], state[2], state[3], state[4])),
			 errmsg_internal("%s", message),
			 detail[0] ? errdetail_internal("%s", detail) : 0,
			 hint[0] ? errhint("%s", hint) : 0));
	PG_RETURN_VOID();
}

/* Raise 42704: integration is not one of the session tenant's (unknown, or another tenant's). */
void
aos_cus_integration_missing(const pg_uuid_t *integration)
{
	char		id[AOS_UUID_TEXT_LEN + 1];

	aos_cus_uuid_format(integration->data, id);
	ereport(ERROR,
			(errcode(ERRCODE_UNDEFINED_OBJECT),
			 errmsg("integration %s does not exist for this tenant", id)));
}

/* Raise 55000: integration is deleted. */
void
aos_cus_integration_deleted(const pg_uuid_t *integration)
{
	char		id[AOS_UUID_TEXT_LEN + 1];

	aos_cus_uuid_format(integration->data, id);
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("integration %s is deleted", id)));
}
