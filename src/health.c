/*
 * health.c: health settings, test_credentials(), and the wake-up of the health
 * worker when a check is queued.
 *
 * A check queued in aos_cus.cus_health_checks wakes the worker only when the
 * queuing transaction commits (a row trigger sets a flag, the commit callback
 * sets the worker's latch), so rolled-back requests never cause a probe.
 * Shared state: the worker's latch pointer, written by the worker alone at
 * start and exit under the spinlock, read by committing backends under it.
 */
#include "aos_cus.h"
#include "credentials.h"
#include "health.h"
#include "worker_wake.h"
#include "health_probe.h"
#include "integrations.h"
#include "stats.h"
#include "tenancy.h"

#include "access/xact.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "postmaster/bgworker.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/builtins.h"
#include "utils/guc.h"

bool		aos_cus_health_worker_enabled = false;
char	   *aos_cus_health_database = NULL;
int			aos_cus_health_interval_s = 300;
static int	health_min_interval_s = 60;
int			aos_cus_health_timeout_ms = 10000;
int			aos_cus_health_connect_timeout_ms = 3000;
char	   *aos_cus_health_ca_file = NULL;
int			aos_cus_health_max_in_flight = 8;
static int	health_history_keep = 100;

/* The worker this module wakes at commit (worker_wake.h). */
static AosWorkerWake health_wake = {.shmem_name = "aos_cus health"};

PG_FUNCTION_INFO_V1(aos_cus_test_credentials);
PG_FUNCTION_INFO_V1(aos_cus_health_queue_wake);

/* Register the health GUCs (the worker's two postmaster settings only while preloading). */
void
aos_cus_health_init(void)
{
	/* PGC_POSTMASTER settings may only be defined while preloading */
	if (process_shared_preload_libraries_in_progress)
	{
		DefineCustomBoolVariable("aos_cus.health_worker",
								 "Start the health background worker.",
								 NULL, &aos_cus_health_worker_enabled, false,
								 PGC_POSTMASTER, 0, NULL, NULL, NULL);
		DefineCustomStringVariable("aos_cus.health_database",
								   "Database in which the health worker probes integrations.",
								   NULL, &aos_cus_health_database, "postgres",
								   PGC_POSTMASTER, 0, NULL, NULL, NULL);
	}
	DefineCustomIntVariable("aos_cus.health_interval",
							"Age after which the health worker re-probes an enabled integration (0: only queued checks).",
							NULL, &aos_cus_health_interval_s, 300, 0, 7 * 86400,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("aos_cus.health_min_interval",
							"Minimum time between two probes of one integration requested with request_health_check().",
							NULL, &health_min_interval_s, 60, 0, 86400,
							PGC_SUSET, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("aos_cus.health_timeout",
							"Total time bound of one health probe.",
							NULL, &aos_cus_health_timeout_ms, 10000, 100, 120000,
							PGC_SUSET, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("aos_cus.health_connect_timeout",
							"Connect time bound of one health probe (capped by aos_cus.health_timeout).",
							NULL, &aos_cus_health_connect_timeout_ms, 3000, 100, 120000,
							PGC_SUSET, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomStringVariable("aos_cus.health_ca_file",
							   "CA bundle for verifying providers' TLS certificates (empty: the system bundle).",
							   NULL, &aos_cus_health_ca_file, "",
							   PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("aos_cus.health_max_in_flight",
							"Probes the health worker runs at once.",
							NULL, &aos_cus_health_max_in_flight, 8, 1, 256,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("aos_cus.health_history_keep",
							"Health history rows kept per integration.",
							NULL, &health_history_keep, 100, 1, 100000,
							PGC_SUSET, 0, NULL, NULL, NULL);
}

/* Register the worker when aos_cus.health_worker is on. */
void
aos_cus_health_register_worker(void)
{
	if (aos_cus_health_worker_enabled)
		aos_cus_worker_register("aos_cus_health_worker_main", "aos_cus health worker");
}

/* Bytes of shared memory for the worker's latch. */
Size
aos_cus_health_shmem_size(void)
{
	return aos_cus_worker_wake_shmem_size();
}

/* Create or attach the shared state (under AddinShmemInitLock). */
void
aos_cus_health_shmem_init(void)
{
	aos_cus_worker_wake_shmem_init(&health_wake);
}

/* Publish or clear the worker's latch. */
void
aos_cus_health_set_worker_latch(Latch *latch)
{
	aos_cus_worker_wake_set_latch(&health_wake, latch);
}

/* Row trigger on cus_health_checks: wake the worker when this transaction commits. */
Datum
aos_cus_health_queue_wake(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	aos_cus_require_trigger_on(fcinfo, "aos_cus_internal.health_queue_wake()", "cus_health_checks");
	aos_cus_worker_wake_at_commit(&health_wake);
	aos_cus_stat_add(AOS_STAT_HEALTH_CHECKS_QUEUED, 1);
	return PointerGetDatum(trigdata->tg_trigtuple);
}

/* Resolve the integration's key, set up p's request with it, and wipe the key whatever happens. */
bool
aos_cus_health_probe_setup(AosHealthProbe *p, const char *provider, const char *base_url,
				   const char *api_version, const char *health_path)
{
	char	   *key = aos_cus_resolve_credential(&p->tenant_id, &p->integration_id);
	bool		ready = false;

	PG_TRY();
	{
		ready = aos_cus_health_probe_prepare(p, provider, base_url, api_version, health_path, key);
	}
	PG_FINALLY();
	{
		explicit_bzero(key, strlen(key));
		pfree(key);
	}
	PG_END_TRY();
	return ready;
}

/* Text of column col of SPI row 0, copied into the caller's context, or NULL. */
static char *
spi_text(int col)
{
	char	   *v = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, col);
	char	   *copy;

	if (v == NULL)
		return NULL;
	copy = SPI_palloc(strlen(v) + 1);
	strcpy(copy, v);
	return copy;
}

/*
 * SQL test_credentials(tenant_id, integration_id): probe the integration now,
 * record the result with record_health(), and return it.
 */
Datum
aos_cus_test_credentials(PG_FUNCTION_ARGS)
{
	pg_uuid_t  *tenant;
	pg_uuid_t  *integration;
	Oid			argtypes[2] = {UUIDOID, UUIDOID};
	Datum		args[2];
	char	   *provider;
	char	   *base_url;
	char	   *api_version;
	char	   *health_path;
	char	   *status;
	AosHealthProbe probe;
	TupleDesc	tupdesc;
	Datum		values[3];
	bool		nulls[3] = {false, false, false};
	Oid			rec_types[5] = {UUIDOID, UUIDOID, TEXTOID, INT4OID, TEXTOID};
	Datum		rec_args[5];
	char		rec_nulls[5] = {' ', ' ', ' ', ' ', ' '};

	aos_cus_require_arg(fcinfo, 0, "tenant_id");
	aos_cus_require_arg(fcinfo, 1, "integration_id");
	tenant = PG_GETARG_UUID_P(0);
	integration = PG_GETARG_UUID_P(1);
	aos_cus_assert_tenant(tenant, "tenant_id");
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "test_credentials must return a composite type");

	args[0] = UUIDPGetDatum(tenant);
	args[1] = UUIDPGetDatum(integration);
	SPI_connect();
	if (SPI_execute_with_args("SELECT provider, base_url, config OPERATOR(pg_catalog.->>) 'api_version',"
							  " config OPERATOR(pg_catalog.->>) 'health_path', status FROM aos_cus.cus_integrations"
							  " WHERE tenant_id OPERATOR(pg_catalog.=) $1 AND id OPERATOR(pg_catalog.=) $2",
							  2, argtypes, args, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read the integration");
	if (SPI_processed == 0)
		aos_cus_integration_missing(integration);
	provider = spi_text(1);
	base_url = spi_text(2);
	api_version = spi_text(3);
	health_path = spi_text(4);
	status = spi_text(5);
	if (strcmp(status, "deleted") == 0)
		aos_cus_integration_deleted(integration);

	memset(&probe, 0, sizeof(probe));
	probe.tenant_id = *tenant;
	probe.integration_id = *integration;
	if (aos_cus_probe_supported(provider))
	{
		aos_cus_health_probe_setup(&probe, provider, base_url, api_version, health_path);
		aos_cus_health_probe_run(&probe);
	}
	else
		aos_cus_health_probe_fail(&probe, AOS_HEALTH_UNKNOWN, "no health probe exists for this provider");

	rec_args[0] = UUIDPGetDatum(tenant);
	rec_args[1] = UUIDPGetDatum(integration);
	rec_args[2] = CStringGetTextDatum(aos_cus_health_state_name(probe.state));
	rec_args[3] = Int32GetDatum(probe.latency_ms);
	rec_args[4] = CStringGetTextDatum(probe.error);
	if (probe.error[0] == '\0')
		rec_nulls[4] = 'n';
	if (SPI_execute_with_args("SELECT aos_cus.record_health($1, $2, $3, $4, $5)",
							  5, rec_types, rec_args, rec_nulls, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not record the health result");
	SPI_finish();

	values[0] = CStringGetTextDatum(aos_cus_health_state_name(probe.state));
	values[1] = Int32GetDatum(probe.latency_ms);
	if (probe.error[0] == '\0')
		nulls[2] = true;
	else
		values[2] = CStringGetTextDatum(probe.error);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}
