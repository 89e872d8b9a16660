/*
 * spi_safe.c: elevated SPI. Every SPI text aos_cus runs is schema-qualified (types, functions, operators); on
 * top of that, elevated SPI runs as the tables' owner inside SECURITY_RESTRICTED_OPERATION with search_path
 * "pg_catalog, pg_temp" (pg_temp last, explicitly), so no object of the caller's can run with the owner's rights.
 */
#include "spi_safe.h"

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "miscadmin.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

#define AOS_SAFE_SEARCH_PATH "pg_catalog, pg_temp"

/* The owner of aos_cus.cus_integrations, which owns every aos_cus table. */
Oid
aos_cus_tables_owner(void)
{
	Oid			relid = get_relname_relid("cus_integrations", get_namespace_oid("aos_cus", false));
	HeapTuple	tup;
	Oid			owner;

	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("aos_cus.cus_integrations does not exist")));
	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for relation %u", relid);
	owner = ((Form_pg_class) GETSTRUCT(tup))->relowner;
	ReleaseSysCache(tup);
	return owner;
}

/* Switch user, restrict the operation and fix search_path, as CREATE INDEX and VACUUM do. */
void
aos_cus_elevate(AosElevation *e)
{
	Oid			owner = aos_cus_tables_owner();

	GetUserIdAndSecContext(&e->save_user, &e->save_sec);
	SetUserIdAndSecContext(owner, e->save_sec | SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION);
	e->guc_nest = NewGUCNestLevel();
	(void) set_config_option("search_path", AOS_SAFE_SEARCH_PATH, PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
}

/* Restore search_path, user and security context. */
void
aos_cus_unelevate(const AosElevation *e)
{
	AtEOXact_GUC(false, e->guc_nest);
	SetUserIdAndSecContext(e->save_user, e->save_sec);
}

/* Prepare once per backend; the texts are schema-qualified, so the plan means the same under any search_path. */
SPIPlanPtr
aos_cus_keep_plan(SPIPlanPtr *slot, const char *sql, int nargs, const Oid *types)
{
	return aos_cus_keep_plan_opts(slot, sql, nargs, types, 0);
}

/* As aos_cus_keep_plan, with cursor options (CURSOR_OPT_CUSTOM_PLAN: planned for each call's values). */
SPIPlanPtr
aos_cus_keep_plan_opts(SPIPlanPtr *slot, const char *sql, int nargs, const Oid *types, int options)
{
	if (*slot == NULL)
	{
		SPIPlanPtr	p = SPI_prepare_cursor(sql, nargs, (Oid *) types, options);

		if (p == NULL)
			elog(ERROR, "aos_cus: SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
		SPI_keepplan(p);
		*slot = p;
	}
	return *slot;
}
