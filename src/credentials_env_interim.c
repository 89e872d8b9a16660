/*
 * credentials_env_interim.c: INTERIM env:// resolution so the health probes can
 * be built and tested before the credentials module (branch creds) is merged;
 * removed at that merge in favour of its aos_cus_resolve_credential().
 */
#include "aos_cus.h"
#include "credentials.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"

/* Resolve env://AOS_CUS_* references from the server's environment. */
char *
aos_cus_resolve_credential(const pg_uuid_t *tenant, const pg_uuid_t *integration)
{
	Oid			argtypes[2] = {UUIDOID, UUIDOID};
	Datum		args[2] = {UUIDPGetDatum(tenant), UUIDPGetDatum(integration)};
	char	   *ref;
	const char *value;

	SPI_connect();
	SPI_execute_with_args("SELECT credential_ref FROM aos_cus.cus_integrations WHERE tenant_id = $1 AND id = $2",
						  2, argtypes, args, NULL, true, 1);
	ref = SPI_processed == 1 ? SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1) : NULL;
	if (ref == NULL || strncmp(ref, "env://AOS_CUS_", 14) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("integration has no env://AOS_CUS_* credential reference")));
	value = getenv(ref + 6);
	if (value == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("environment variable of the integration's credential is not set")));
	SPI_finish();
	return pstrdup(value);
}
