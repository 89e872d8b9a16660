/* tenancy.h: the session's tenant and the checks that confine a caller to it. */
#ifndef AOS_CUS_TENANCY_H
#define AOS_CUS_TENANCY_H

#include "postgres.h"

#include "utils/uuid.h"

/* Session tenant: the login's binding, else request.jwt.claims ->> 'tenant_id', else aos_cus.tenant_id; false when unset. */
extern bool aos_cus_session_tenant(pg_uuid_t *out);

/* True when the role outside any SECURITY DEFINER function is a superuser or aos_cus_operator member. */
extern bool aos_cus_caller_is_operator(void);

/* Check that the caller may act for tenant (42501 otherwise); argname names the argument. */
extern void aos_cus_assert_tenant(const pg_uuid_t *tenant, const char *argname);

/* 42501 when the session acts for a tenant; what names the operation spanning every tenant. */
extern void aos_cus_assert_no_tenant(const char *what);

/* 42501 unless the caller is aos_cus_operator (or superuser) and the session acts for no tenant. */
extern void aos_cus_assert_platform(const char *what);

/* Register the tenancy GUCs (aos_cus.tenant_id). */
extern void aos_cus_tenancy_init(void);

#endif
