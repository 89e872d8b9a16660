/*
 * webhooks.c: webhook endpoints (create_webhook), the outbox's writer for C
 * callers (check()), the webhook worker's settings, registration and wake-up.
 *
 * An endpoint's signing secret is generated when not given, sealed with the
 * credential vault (the tenant's key, the endpoint's id in the AAD) and
 * returned once; only the encrypted:// reference is stored. Deliveries are
 * written in the transaction of their cause; a statement trigger sets the
 * worker's latch when that transaction commits.
 */
#include "aos_cus.h"
#include "credentials.h"
#include "egress_curl.h"
#include "spi_safe.h"
#include "tenancy.h"
#include "webhook.h"
#include "webhooks.h"
#include "worker_wake.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "postmaster/bgworker.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"

bool		aos_cus_webhook_worker_enabled = false;
int			aos_cus_webhook_max_attempts = 10;
int			aos_cus_webhook_retry_base_ms = 5000;
int			aos_cus_webhook_retry_max_ms = 3600000;
int			aos_cus_webhook_timeout_ms = 10000;
int			aos_cus_webhook_projection_interval_s = 300;
int			aos_cus_webhook_max_in_flight = 16;
int			aos_cus_webhook_retention_s = 30 * 86400;

/* The worker this module wakes at commit (worker_wake.h). */
static AosWorkerWake webhooks_wake = {.shmem_name = "aos_cus webhooks"};
static SPIPlanPtr emit_plan = NULL;

PG_FUNCTION_INFO_V1(aos_cus_create_webhook);
PG_FUNCTION_INFO_V1(aos_cus_webhook_queue_wake);

/* Register the webhook GUCs. */
void
aos_cus_webhooks_init(void)
{
	if (process_shared_preload_libraries_in_progress)
		DefineCustomBoolVariable("aos_cus.webhook_worker",
								 "Start the webhook delivery background worker (in aos_cus.health_database).",
								 NULL, &aos_cus_webhook_worker_enabled, false,
								 PGC_POSTMASTER, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("aos_cus.webhook_max_attempts",
							"Delivery attempts of one event to one endpoint before it is dead-lettered.",
							NULL, &aos_cus_webhook_max_attempts, 10, 1, 1000,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("aos_cus.webhook_retry_base",
							"Delay before the first retry of a failed delivery; it doubles per attempt (with jitter).",
							NULL, &aos_cus_webhook_retry_base_ms, 5000, 10, 86400000,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("aos_cus.webhook_retry_max",
							"Longest delay between two attempts of one delivery.",
							NULL, &aos_cus_webhook_retry_max_ms, 3600000, 10, 86400000,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("aos_cus.webhook_timeout",
							"Total time bound of one delivery attempt.",
							NULL, &aos_cus_webhook_timeout_ms, 10000, 100, 120000,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("aos_cus.webhook_projection_interval",
							"How often the webhook worker looks for budgets projected to overrun (0: never).",
							NULL, &aos_cus_webhook_projection_interval_s, 300, 0, 86400,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("aos_cus.webhook_retention",
							"Age after which delivered and dead-lettered webhook events are dropped (0: kept).",
							NULL, &aos_cus_webhook_retention_s, 30 * 86400, 0, 3650 * 86400,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("aos_cus.webhook_max_in_flight",
							"Endpoints the webhook worker delivers to at once (one delivery per endpoint).",
							NULL, &aos_cus_webhook_max_in_flight, 16, 1, 256,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
}

/* Register the worker when aos_cus.webhook_worker is on. */
void
aos_cus_webhooks_register_worker(void)
{
	if (aos_cus_webhook_worker_enabled)
		aos_cus_worker_register("aos_cus_webhook_worker_main", "aos_cus webhook worker");
}

/* Bytes of shared memory for the worker's latch. */
Size
aos_cus_webhooks_shmem_size(void)
{
	return aos_cus_worker_wake_shmem_size();
}

/* Create or attach the shared state (under AddinShmemInitLock). */
void
aos_cus_webhooks_shmem_init(void)
{
	aos_cus_worker_wake_shmem_init(&webhooks_wake);
}

/* Publish or clear the worker's latch. */
void
aos_cus_webhooks_set_worker_latch(Latch *latch)
{
	aos_cus_worker_wake_set_latch(&webhooks_wake, latch);
}

/* Statement trigger on cus_webhook_deliveries: wake the worker when this transaction commits. */
Datum
aos_cus_webhook_queue_wake(PG_FUNCTION_ARGS)
{
	aos_cus_require_trigger_on(fcinfo, "aos_cus_internal.webhook_queue_wake()", "cus_webhook_deliveries");
	aos_cus_worker_wake_at_commit(&webhooks_wake);
	return PointerGetDatum(NULL);
}

/* Write one event to the outbox with raised rights, in the current transaction. */
void
aos_cus_webhook_emit(const pg_uuid_t *tenant, const char *type, const char *scope,
					 const char *dedup_key, const char *payload)
{
	static const char *sql =
		"SELECT aos_cus_internal.emit_webhook_event($1, $2, $3, $4, $5::pg_catalog.jsonb)";
	Oid			types[5] = {UUIDOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID};
	Datum		values[5];
	AosElevation elevation;

	values[0] = UUIDPGetDatum(tenant);
	values[1] = CStringGetTextDatum(type);
	values[2] = CStringGetTextDatum(scope);
	values[3] = CStringGetTextDatum(dedup_key);
	values[4] = CStringGetTextDatum(payload);
	aos_cus_elevate(&elevation);
	SPI_connect();
	if (SPI_execute_plan(aos_cus_keep_plan(&emit_plan, sql, 5, types), values, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "aos_cus: writing a webhook event failed");
	SPI_finish();
	aos_cus_unelevate(&elevation);
}

/* The events argument: NULL (every event) or a non-empty array of known, distinct names. */
static void
check_events(FunctionCallInfo fcinfo, int n)
{
	ArrayType  *arr;
	Datum	   *elems;
	bool	   *nulls;
	int			count;

	if (PG_ARGISNULL(n))
		return;
	arr = PG_GETARG_ARRAYTYPE_P(n);
	if (ARR_NDIM(arr) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("events must be a one-dimensional array")));
	deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &count);
	if (count == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("events must not be empty"),
				 errhint("Pass NULL (the default) to receive every event.")));
	for (int i = 0; i < count; i++)
	{
		char	   *name;

		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("events must not contain NULL")));
		name = TextDatumGetCString(elems[i]);
		if (!aos_cus_webhook_event_known(name))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("events: unknown event \"%s\"", name),
					 errhint("Known events: budget.threshold, tokens.threshold, budget.exhausted, tokens.exhausted, budget.projected_overrun, integration.health_changed.")));
	}
}

/* A random (version 4) UUID. */
static void
random_uuid(pg_uuid_t *u)
{
	if (!pg_strong_random(u->data, UUID_LEN))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not generate random values")));
	u->data[6] = (u->data[6] & 0x0f) | 0x40;
	u->data[8] = (u->data[8] & 0x3f) | 0x80;
}

/* SQL create_webhook(tenant_id, url, secret, events, format) -> (webhook_id, secret). */
Datum
aos_cus_create_webhook(PG_FUNCTION_ARGS)
{
	static const char *exists_sql =
		"SELECT FROM aos_cus.cus_webhooks w WHERE w.tenant_id OPERATOR(pg_catalog.=) $1"
		" AND w.url OPERATOR(pg_catalog.=) $2";
	static const char *insert_sql =
		"INSERT INTO aos_cus.cus_webhooks (tenant_id, id, url, secret_ref, events, format)"
		" VALUES ($1, $2, $3, $4, $5, $6)";
	const pg_uuid_t *tenant;
	char	   *url;
	char	   *format;
	char		secret[AOS_WEBHOOK_SECRET_LEN];
	uint8_t		key[AOS_WEBHOOK_KEY_MAX];
	size_t		key_len;
	const char *why;
	pg_uuid_t  *id = palloc(sizeof(pg_uuid_t));
	Oid			types[6] = {UUIDOID, UUIDOID, TEXTOID, TEXTOID, TEXTARRAYOID, TEXTOID};
	Datum		values[6];
	char		nulls[6] = {' ', ' ', ' ', ' ', ' ', ' '};
	TupleDesc	desc;
	Datum		out[2];
	bool		out_nulls[2] = {false, false};
	text	   *secret_text;

	aos_cus_require_arg(fcinfo, 0, "tenant_id");
	aos_cus_require_arg(fcinfo, 1, "url");
	aos_cus_require_arg(fcinfo, 4, "format");
	tenant = PG_GETARG_UUID_P(0);
	aos_cus_assert_tenant(tenant, "tenant_id");
	url = text_to_cstring(PG_GETARG_TEXT_PP(1));
	if ((why = aos_cus_webhook_url_check(url)) != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("url is not a webhook URL: %s", why),
				 errhint("Webhook URLs are http:// or https:// URLs with a host.")));
	if ((why = aos_cus_egress_check_url(url)) != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("url is refused by the egress policy: %s", why),
				 errhint("The operator sets aos_cus.egress_allow_http and aos_cus.egress_allowed_networks.")));
	check_events(fcinfo, 3);
	format = text_to_cstring(PG_GETARG_TEXT_PP(4));
	if (strcmp(format, "standard") != 0 && strcmp(format, "slack") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("format must be 'standard' or 'slack'")));
	if (PG_ARGISNULL(2))
	{
		if (!aos_cus_webhook_secret_generate(secret))
			ereport(ERROR,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("could not generate a webhook secret with OpenSSL")));
	}
	else
	{
		text	   *given = PG_GETARG_TEXT_PP(2);

		if (VARSIZE_ANY_EXHDR(given) >= AOS_WEBHOOK_SECRET_LEN)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("secret is not a Standard Webhooks secret: it is too long"),
					 errhint("A secret is whsec_ followed by the base64 of 24 to 64 random bytes; pass NULL to have one generated.")));
		text_to_cstring_buffer(given, secret, sizeof(secret));
	}
	if (!aos_cus_webhook_secret_decode(secret, key, &key_len, &why))
	{
		explicit_bzero(secret, sizeof(secret));
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("secret is not a Standard Webhooks secret: %s", why),
				 errhint("A secret is whsec_ followed by the base64 of 24 to 64 random bytes; pass NULL to have one generated.")));
	}
	explicit_bzero(key, sizeof(key));

	SPI_connect();
	values[0] = UUIDPGetDatum(tenant);
	values[1] = PG_GETARG_DATUM(1);
	if (SPI_execute_with_args(exists_sql, 2, types + 1, values, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "aos_cus: reading webhooks failed");
	if (SPI_processed > 0)
	{
		explicit_bzero(secret, sizeof(secret));
		ereport(ERROR,
				(errcode(ERRCODE_UNIQUE_VIOLATION),
				 errmsg("url already has a webhook of this tenant"),
				 errhint("list_webhooks() shows it; delete_webhook() removes it.")));
	}
	random_uuid(id);
	values[0] = UUIDPGetDatum(tenant);
	values[1] = UUIDPGetDatum(id);
	values[2] = PG_GETARG_DATUM(1);
	values[3] = PointerGetDatum(aos_cus_seal_secret(tenant, id, secret, strlen(secret)));
	values[4] = PG_ARGISNULL(3) ? (Datum) 0 : PG_GETARG_DATUM(3);
	nulls[4] = PG_ARGISNULL(3) ? 'n' : ' ';
	values[5] = PG_GETARG_DATUM(4);
	if (SPI_execute_with_args(insert_sql, 6, types, values, nulls, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "aos_cus: storing the webhook failed");
	SPI_finish();

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "aos_cus: create_webhook must return a record");
	desc = BlessTupleDesc(desc);
	secret_text = cstring_to_text(secret);
	explicit_bzero(secret, sizeof(secret));
	out[0] = UUIDPGetDatum(id);
	out[1] = PointerGetDatum(secret_text);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(desc, out, out_nulls)));
}
