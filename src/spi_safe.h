/* spi_safe.h: SPI that runs with raised rights as PostgreSQL's own maintenance commands do. */
#ifndef AOS_CUS_SPI_SAFE_H
#define AOS_CUS_SPI_SAFE_H

#include "postgres.h"

#include "executor/spi.h"

/* What aos_cus_elevate changed, for aos_cus_unelevate to restore. */
typedef struct AosElevation
{
	Oid			save_user;
	int			save_sec;
	int			guc_nest;
} AosElevation;

/* The owner of aos_cus's tables (the role elevated SPI runs as). */
extern Oid	aos_cus_tables_owner(void);

/*
 * Become the tables' owner with SECURITY_RESTRICTED_OPERATION and search_path "pg_catalog, pg_temp" until
 * aos_cus_unelevate; an error unwinds both with the (sub)transaction.
 */
extern void aos_cus_elevate(AosElevation *e);
extern void aos_cus_unelevate(const AosElevation *e);

/* Prepare sql once per backend and keep the plan in *slot. */
extern SPIPlanPtr aos_cus_keep_plan(SPIPlanPtr *slot, const char *sql, int nargs, const Oid *types);
extern SPIPlanPtr aos_cus_keep_plan_opts(SPIPlanPtr *slot, const char *sql, int nargs, const Oid *types,
										 int options);

#endif
