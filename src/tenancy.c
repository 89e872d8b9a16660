/*
 * tenancy.c: who the session acts for. The current tenant comes from
 * request.jwt.claims ->> 'tenant_id' (PostgREST) or else the aos_cus.tenant_id
 * setting. Every tenant-scoped API function checks its tenant_id argument
 * against it with aos_cus_assert_tenant(); row-level security policies use
 * aos_cus.current_tenant().
 */
#include "aos_cus.h"
#include "uuid_text.h"

#include "catalog/pg_authid.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"

static char *tenant_setting = NULL;

/* Parsed-claims cache: request.jwt.claims changes once per request, not per call. */
static char *cached_claims = NULL;
static bool cached_claims_has_tenant = false;
static pg_uuid_t cached_claims_tenant;

PG_FUNCTION_INFO_V1(aos_cus_current_tenant);
PG_FUNCTION_INFO_V1(aos_cus_assert_tenant_sql);

/* GUC check hook: aos_cus.tenant_id must be empty or a UUID. */
static bool
check_tenant_setting(char **newval, void **extra, GucSource source)
{
	uint8_t		bytes[AOS_UUID_LEN];

	if (*newval == NULL || (*newval)[0] == '\0' || aos_uuid_parse(*newval, bytes))
		return true;
	GUC_check_errdetail("aos_cus.tenant_id must be a UUID such as 00000000-0000-0000-0000-000000000001.");
	return false;
}

/* Register aos_cus.tenant_id. */
void
aos_cus_tenancy_init(void)
{
	DefineCustomStringVariable("aos_cus.tenant_id",
							   "Tenant the session acts for when request.jwt.claims has none.",
							   NULL,
							   &tenant_setting,
							   "",
							   PGC_USERSET,
							   0,
							   check_tenant_setting, NULL, NULL);
}

/* Read tenant_id from a JSON claims text; raises 22023 on a malformed claim. */
static bool
claims_tenant(const char *claims, pg_uuid_t *out)
{
	Jsonb	   *jb;
	JsonbValue	key;
	JsonbValue *val;
	char	   *text;

	jb = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(claims)));
	if (!JB_ROOT_IS_OBJECT(jb))
		return false;
	key.type = jbvString;
	key.val.string.val = "tenant_id";
	key.val.string.len = strlen("tenant_id");
	val = findJsonbValueFromContainer(&jb->root, JB_FOBJECT, &key);
	if (val == NULL || val->type == jbvNull)
		return false;
	if (val->type != jbvString)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("request.jwt.claims tenant_id must be a string UUID")));
	text = pnstrdup(val->val.string.val, val->val.string.len);
	if (!aos_uuid_parse(text, out->data))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("request.jwt.claims tenant_id is not a valid UUID")));
	pfree(text);
	return true;
}

/* Session tenant, claims first; false when neither source names one. */
bool
aos_cus_session_tenant(pg_uuid_t *out)
{
	const char *claims = GetConfigOption("request.jwt.claims", true, false);

	if (claims != NULL && claims[0] != '\0')
	{
		if (cached_claims == NULL || strcmp(cached_claims, claims) != 0)
		{
			pg_uuid_t	parsed;
			bool		has = claims_tenant(claims, &parsed);

			if (cached_claims != NULL)
				pfree(cached_claims);
			cached_claims = MemoryContextStrdup(TopMemoryContext, claims);
			cached_claims_has_tenant = has;
			cached_claims_tenant = parsed;
		}
		if (cached_claims_has_tenant)
		{
			*out = cached_claims_tenant;
			return true;
		}
	}
	if (tenant_setting != NULL && tenant_setting[0] != '\0')
		return aos_uuid_parse(tenant_setting, out->data);
	return false;
}

/* Superuser or member of aos_cus_admin, judged on the role outside SECURITY DEFINER. */
bool
aos_cus_caller_is_admin(void)
{
	Oid			caller = GetOuterUserId();
	Oid			admin;

	if (superuser_arg(caller))
		return true;
	admin = get_role_oid("aos_cus_admin", true);
	return OidIsValid(admin) && has_privs_of_role(caller, admin);
}

/* 42501 unless the session acts for tenant, or has no tenant and is admin. */
void
aos_cus_assert_tenant(const pg_uuid_t *tenant, const char *argname)
{
	pg_uuid_t	session;

	if (aos_cus_session_tenant(&session))
	{
		if (memcmp(session.data, tenant->data, UUID_LEN) != 0)
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("%s does not match the session's tenant", argname),
					 errdetail("The session acts for another tenant (request.jwt.claims or aos_cus.tenant_id).")));
		return;
	}
	if (!aos_cus_caller_is_admin())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("no tenant is set for this session"),
				 errhint("Set aos_cus.tenant_id or the tenant_id claim of request.jwt.claims; only aos_cus_admin may act without one.")));
}

/* SQL current_tenant(): the session's tenant or NULL. */
Datum
aos_cus_current_tenant(PG_FUNCTION_ARGS)
{
	pg_uuid_t  *result = palloc(sizeof(pg_uuid_t));

	if (!aos_cus_session_tenant(result))
		PG_RETURN_NULL();
	PG_RETURN_UUID_P(result);
}

/* SQL assert_tenant(tenant_id uuid): raises unless the caller may act for tenant_id. */
Datum
aos_cus_assert_tenant_sql(PG_FUNCTION_ARGS)
{
	aos_cus_require_arg(fcinfo, 0, "tenant_id");
	aos_cus_assert_tenant(PG_GETARG_UUID_P(0), "tenant_id");
	PG_RETURN_VOID();
}
