/*
 * tenancy.c: who the session acts for. A login role bound to a tenant in
 * aos_cus.cus_tenant_logins (by session_user) always acts for it; otherwise
 * the tenant comes from request.jwt.claims ->> 'tenant_id' (PostgREST) or
 * else the aos_cus.tenant_id setting. Every tenant-scoped API function checks
 * its tenant_id argument against it with aos_cus_assert_tenant(); row-level
 * security policies use aos_cus.current_tenant(). Operations on every tenant
 * (prices, rollups, statistics, key rotation, bindings) need aos_cus_operator
 * and a session acting for no tenant: aos_cus_assert_platform().
 */
#include "aos_cus.h"
#include "tenancy.h"
#include "uuid_text.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/namespace.h"
#include "catalog/pg_authid.h"
#include "commands/extension.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

static char *tenant_setting = NULL;

/* Parsed-claims cache: request.jwt.claims changes once per request, not per call. */
static char *cached_claims = NULL;
static bool cached_claims_has_tenant = false;
static pg_uuid_t cached_claims_tenant;

/* Binding of the session user (cus_tenant_logins), valid until that table changes. */
static Oid	logins_relid = InvalidOid;
static bool binding_valid = false;
static Oid	binding_user = InvalidOid;
static bool binding_bound = false;
static pg_uuid_t binding_tenant;

PG_FUNCTION_INFO_V1(aos_cus_current_tenant);
PG_FUNCTION_INFO_V1(aos_cus_assert_tenant_sql);
PG_FUNCTION_INFO_V1(aos_cus_assert_platform_sql);
PG_FUNCTION_INFO_V1(aos_cus_assert_no_tenant_sql);
PG_FUNCTION_INFO_V1(aos_cus_platform_table_guard);
PG_FUNCTION_INFO_V1(aos_cus_tenant_logins_changed);

/* GUC check hook: aos_cus.tenant_id must be empty or a UUID. */
static bool
check_tenant_setting(char **newval, void **extra, GucSource source)
{
	uint8_t		bytes[AOS_UUID_LEN];

	if (*newval == NULL || (*newval)[0] == '\0' || aos_cus_uuid_parse(*newval, bytes))
		return true;
	GUC_check_errdetail("aos_cus.tenant_id must be a UUID such as 00000000-0000-0000-0000-000000000001.");
	return false;
}

/* Relcache callback: forget the cached binding when cus_tenant_logins (or everything) is invalidated. */
static void
logins_relcache_callback(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == logins_relid)
		binding_valid = false;
}

/* Register aos_cus.tenant_id and the binding cache's invalidation callback. */
void
aos_cus_tenancy_init(void)
{
	CacheRegisterRelcacheCallback(logins_relcache_callback, (Datum) 0);
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
	if (!aos_cus_uuid_parse(text, out->data))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("request.jwt.claims tenant_id is not a valid UUID")));
	pfree(text);
	return true;
}

/*
 * Read the binding of login from cus_tenant_logins (heap scan of a small
 * table, no privilege or row-level security check, latest committed state).
 * Returns false with *found_table false when the table does not exist (an
 * install not yet updated to 0.2.0).
 */
static bool
read_binding(Oid login, pg_uuid_t *tenant, bool *found_table)
{
	Oid			nsp = get_namespace_oid("aos_cus", true);
	Relation	rel;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tuple;
	Snapshot	snapshot;
	bool		found = false;

	logins_relid = OidIsValid(nsp) ? get_relname_relid("cus_tenant_logins", nsp) : InvalidOid;
	*found_table = OidIsValid(logins_relid);
	if (!*found_table)
		return false;
	rel = table_open(logins_relid, AccessShareLock);
	/* Column 1 is login (regrole, stored as an oid). */
	ScanKeyInit(&key, 1, BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(login));
	snapshot = RegisterSnapshot(GetLatestSnapshot());
	scan = systable_beginscan(rel, InvalidOid, false, snapshot, 1, &key);
	if (HeapTupleIsValid(tuple = systable_getnext(scan)))
	{
		bool		isnull;
		Datum		d = heap_getattr(tuple, 2, RelationGetDescr(rel), &isnull);

		if (!isnull)
		{
			*tenant = *DatumGetUUIDP(d);
			found = true;
		}
	}
	systable_endscan(scan);
	UnregisterSnapshot(snapshot);
	table_close(rel, AccessShareLock);
	return found;
}

/* The tenant the session user is bound to, if any (cached per backend). */
static bool
login_binding(pg_uuid_t *out)
{
	Oid			login = GetSessionUserId();

	if (!binding_valid || binding_user != login)
	{
		bool		found_table;

		binding_bound = read_binding(login, &binding_tenant, &found_table);
		binding_user = login;
		/* Without the table nothing is cached, so the update that creates it takes effect at once. */
		binding_valid = found_table;
	}
	if (binding_bound)
		*out = binding_tenant;
	return binding_bound;
}

/* Tenant named by the claims (first) or the setting; source says which. */
static bool
requested_tenant(pg_uuid_t *out, const char **source)
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
			*source = "request.jwt.claims tenant_id";
			return true;
		}
	}
	*source = "aos_cus.tenant_id";
	if (tenant_setting != NULL && tenant_setting[0] != '\0')
		return aos_cus_uuid_parse(tenant_setting, out->data);
	return false;
}

/*
 * Session tenant: the session user's binding, else claims, else the setting;
 * false when none names one. A claim or setting naming another tenant than
 * the binding raises 42501.
 */
bool
aos_cus_session_tenant(pg_uuid_t *out)
{
	pg_uuid_t	requested;
	const char *source;
	bool		has = requested_tenant(&requested, &source);

	if (login_binding(out))
	{
		if (has && memcmp(requested.data, out->data, UUID_LEN) != 0)
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("%s names another tenant than the one login role \"%s\" is bound to",
							source, GetUserNameFromId(GetSessionUserId(), false)),
					 errdetail("A login bound with aos_cus.bind_login() always acts for its tenant.")));
		return true;
	}
	if (has)
		*out = requested;
	return has;
}

/* Superuser or member of aos_cus_operator, judged on the role outside SECURITY DEFINER. */
bool
aos_cus_caller_is_operator(void)
{
	Oid			caller = GetOuterUserId();
	Oid			op;

	if (superuser_arg(caller))
		return true;
	op = get_role_oid("aos_cus_operator", true);
	return OidIsValid(op) && has_privs_of_role(caller, op);
}

/* 42501 unless the session acts for tenant, or has no tenant and is the operator. */
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
					 errdetail("The session acts for another tenant (login binding, request.jwt.claims or aos_cus.tenant_id).")));
		return;
	}
	if (!aos_cus_caller_is_operator())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("no tenant is set for this session"),
				 errhint("Set aos_cus.tenant_id or the tenant_id claim of request.jwt.claims; only aos_cus_operator may act without one.")));
}

/* 42501 when the session acts for a tenant: what spans every tenant. */
void
aos_cus_assert_no_tenant(const char *what)
{
	pg_uuid_t	session;

	if (aos_cus_session_tenant(&session))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("%s spans every tenant and cannot run while the session acts for one", what),
				 errhint("Run it as aos_cus_operator with aos_cus.tenant_id and request.jwt.claims unset, from a login not bound to a tenant.")));
}

/* 42501 unless the caller is aos_cus_operator (or superuser) acting for no tenant. */
void
aos_cus_assert_platform(const char *what)
{
	if (!aos_cus_caller_is_operator())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("%s requires aos_cus_operator", what),
				 errhint("It spans every tenant: grant aos_cus_operator to the platform's own login, never to a tenant's role.")));
	aos_cus_assert_no_tenant(what);
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

/* SQL assert_platform(what text): raises unless the caller may run an operation spanning every tenant. */
Datum
aos_cus_assert_platform_sql(PG_FUNCTION_ARGS)
{
	aos_cus_require_arg(fcinfo, 0, "what");
	aos_cus_assert_platform(text_to_cstring(PG_GETARG_TEXT_PP(0)));
	PG_RETURN_VOID();
}

/* SQL assert_no_tenant(what text): true, or 42501 while the session acts for a tenant (views over every tenant). */
Datum
aos_cus_assert_no_tenant_sql(PG_FUNCTION_ARGS)
{
	aos_cus_require_arg(fcinfo, 0, "what");
	aos_cus_assert_no_tenant(text_to_cstring(PG_GETARG_TEXT_PP(0)));
	PG_RETURN_BOOL(true);
}

/* Statement trigger on global tables: no session acting for a tenant writes them (installs excepted). */
Datum
aos_cus_platform_table_guard(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	const char *op;

	aos_cus_require_trigger_on(fcinfo, "aos_cus_internal.platform_table_guard()", NULL);
	if (creating_extension)
		return PointerGetDatum(NULL);
	op = TRIGGER_FIRED_BY_INSERT(trigdata->tg_event) ? "INSERT into" :
		TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event) ? "UPDATE of" :
		TRIGGER_FIRED_BY_DELETE(trigdata->tg_event) ? "DELETE from" : "TRUNCATE of";
	aos_cus_assert_no_tenant(psprintf("%s aos_cus.%s", op, RelationGetRelationName(trigdata->tg_relation)));
	return PointerGetDatum(NULL);
}

/* Statement trigger on cus_tenant_logins: every backend re-reads its binding. */
Datum
aos_cus_tenant_logins_changed(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	aos_cus_require_trigger_on(fcinfo, "aos_cus_internal.tenant_logins_changed()", "cus_tenant_logins");
	CacheInvalidateRelcache(trigdata->tg_relation);
	return PointerGetDatum(NULL);
}
