/* aos_cus.h: declarations shared by the extension's fmgr glue, shared memory and workers. */
#ifndef AOS_CUS_H
#define AOS_CUS_H

#include "postgres.h"

#include "fmgr.h"
#include "utils/uuid.h"

/* True once _PG_init ran from shared_preload_libraries (shared memory and workers exist). */
extern bool aos_cus_preloaded;

/* Raise 55000 naming shared_preload_libraries when a preload-only feature is used without it. */
extern void aos_cus_require_preload(const char *feature);

/* Raise 22004 naming the argument when argument n is NULL. */
extern void aos_cus_require_arg(FunctionCallInfo fcinfo, int n, const char *name);

/* Raise 39P01 unless called as a trigger on aos_cus.<table> (attached elsewhere it would misread rows). */
extern void aos_cus_require_trigger_on(FunctionCallInfo fcinfo, const char *fname, const char *table);

/* Session tenant from request.jwt.claims ->> 'tenant_id' or aos_cus.tenant_id; false when unset. */
extern bool aos_cus_session_tenant(pg_uuid_t *out);

/* True when the role outside any SECURITY DEFINER function is a superuser or aos_cus_admin member. */
extern bool aos_cus_caller_is_admin(void);

/* Check that the caller may act for tenant (42501 otherwise); argname names the argument. */
extern void aos_cus_assert_tenant(const pg_uuid_t *tenant, const char *argname);

/* Register the tenancy GUCs (aos_cus.tenant_id). */
extern void aos_cus_tenancy_init(void);

/* Register the metrics GUCs (aos_cus.metrics_max_integrations). */
extern void aos_cus_metrics_init(void);

#endif
