/*
 * metrics.c: aos_cus.metrics(), the Prometheus text exposition of the
 * extension's state, and the C sources of the aos_cus.stat_* views.
 *
 * Every number comes from shared memory (event counters, usage per
 * provider and model, enforcement decisions and budgets) or from a cheap
 * catalog read (the stat_health and stat_rollup views over
 * cus_integrations and cus_rollup_state); nothing here reads
 * cus_llm_usage, so the cost of a scrape does not grow with the usage
 * table; the webhook rows come from aos_cus.stat_webhooks (the endpoints'
 * counters and their pending deliveries). Label sets are bounded: provider (8 values), model
 * (aos_cus.usage_stats_max_models plus "other" per provider), decision x
 * reason (24), budget rows (aos_cus.metrics_max_integrations, nearest
 * their budget first), status x health_state (12), shared-memory tables,
 * webhook endpoints.
 * Money is in micro-cents (1 USD = 100,000,000), durations in seconds,
 * times in Unix seconds.
 */
#include "aos_cus.h"
#include "enforce.h"
#include "metrics.h"
#include "prom_text.h"
#include "spi_safe.h"
#include "stats.h"
#include "tenancy.h"
#include "usage_stats.h"
#include "uuid_text.h"

#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/float.h"
#include "utils/guc.h"

/* Help text for the event counters that have a more precise one than the default. */
static const struct
{
	AosCusStat	stat;
	const char *help;
}			stat_help[] = {
	{AOS_STAT_INGEST_INSERTED, "Usage records inserted by ingest."},
	{AOS_STAT_INGEST_DUPLICATE, "Usage records ingested again under a known call_id (nothing changed)."},
	{AOS_STAT_INGEST_REJECTED, "Usage records rejected by ingest as invalid (kept in the reject table)."},
	{AOS_STAT_INGEST_UNPRICED, "Usage records inserted by ingest without a price for their model (cost NULL)."},
	{AOS_STAT_CREDENTIAL_ENCRYPTED, "Credentials encrypted."},
	{AOS_STAT_CREDENTIAL_DECRYPTED, "Credentials decrypted."},
	{AOS_STAT_CREDENTIAL_DECRYPT_FAILED, "Credential decryptions that failed authentication."},
	{AOS_STAT_HEALTH_PROBES, "Health probes sent to providers."},
	{AOS_STAT_HEALTH_HEALTHY, "Health probes that found the integration healthy (2xx)."},
	{AOS_STAT_HEALTH_DEGRADED, "Health probes that found the integration degraded (429, 5xx, timeout)."},
	{AOS_STAT_HEALTH_FAILING, "Health probes that found the integration failing (401, 403)."},
	{AOS_STAT_HEALTH_CHECKS_QUEUED, "Health checks queued by request_health_check()."},
};

static int	metrics_max_integrations = 100;

/* Saved plans of the catalog reads, prepared once per backend. */
static SPIPlanPtr health_plan = NULL;
static SPIPlanPtr rollup_plan = NULL;
static SPIPlanPtr decisions_plan = NULL;
static SPIPlanPtr shmem_plan = NULL;
static SPIPlanPtr webhooks_plan = NULL;

/* The budget rows metrics() and stat_budget report: those nearest their budget, at most the cap. */
typedef struct BudgetReport
{
	AosBudgetRow *rows;			/* every cached integration with a budget */
	AosBudgetRatio *order;		/* rows by used ratio, descending */
	size_t		tracked;		/* rows */
	size_t		reported;		/* the first ones of order to report */
} BudgetReport;

PG_FUNCTION_INFO_V1(aos_cus_metrics);
PG_FUNCTION_INFO_V1(aos_cus_stat_usage);
PG_FUNCTION_INFO_V1(aos_cus_stat_shmem);
PG_FUNCTION_INFO_V1(aos_cus_stat_reset);
PG_FUNCTION_INFO_V1(aos_cus_stat_budget);

/* Register aos_cus.metrics_max_integrations. */
void
aos_cus_metrics_init(void)
{
	DefineCustomIntVariable("aos_cus.metrics_max_integrations",
							"Integrations reported by metrics() and stat_budget, those nearest their budget first.",
							NULL,
							&metrics_max_integrations,
							100, 0, 10000,
							PGC_SUSET,
							0,
							NULL, NULL, NULL);
}

/* "# HELP" and "# TYPE" lines of one metric family. */
static void
family(StringInfo buf, const char *name, const char *type, const char *help)
{
	appendStringInfo(buf, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Append one label value, escaped. */
static void
append_escaped(StringInfo buf, const char *value)
{
	char	   *escaped = palloc(aos_cus_prom_escaped_size(value));

	aos_cus_prom_escape_label(value, escaped);
	appendStringInfoString(buf, escaped);
	pfree(escaped);
}

/* Append a sample value as a double. */
static void
append_double(StringInfo buf, double value)
{
	char		text[AOS_PROM_DOUBLE_LEN];

	aos_cus_prom_format_double(value, text);
	appendStringInfo(buf, " %s\n", text);
}

/* Event counters: aos_cus_<name>_total. */
static void
emit_event_counters(StringInfo buf)
{
	for (int i = 0; i < AOS_STAT_COUNT; i++)
	{
		const char *name = aos_cus_stat_name(i);
		char	   *metric = psprintf("aos_cus_%s_total", name);
		const char *help = NULL;

		for (size_t h = 0; h < lengthof(stat_help); h++)
			if (stat_help[h].stat == (AosCusStat) i)
				help = stat_help[h].help;
		family(buf, metric, "counter", help ? help : psprintf("Event counter %s (aos_cus.stat_counters()).", name));
		appendStringInfo(buf, "%s " UINT64_FORMAT "\n", metric, aos_cus_stat_get(i));
	}
}

/* Append {provider="..",model=".."} without the closing brace. */
static void
usage_labels(StringInfo buf, const char *metric, const AosUsageStatsRow *row)
{
	appendStringInfo(buf, "%s{provider=\"%s\",model=\"", metric, row->provider);
	append_escaped(buf, row->model);
	appendStringInfoChar(buf, '"');
}

/* Committed requests, cost and tokens per provider and model. */
static void
emit_usage(StringInfo buf)
{
	AosUsageStatsRow *rows;
	int			n = aos_cus_usage_stats_snapshot(&rows);

	family(buf, "aos_cus_usage_requests_total", "counter",
		   "Committed LLM calls by provider and model (model \"other\" once aos_cus.usage_stats_max_models are tracked).");
	for (int i = 0; i < n; i++)
	{
		usage_labels(buf, "aos_cus_usage_requests_total", &rows[i]);
		appendStringInfo(buf, "} " UINT64_FORMAT "\n", rows[i].requests);
	}
	family(buf, "aos_cus_usage_cost_microcents_total", "counter",
		   "Committed LLM cost by provider and model, micro-cents (1 USD = 100000000).");
	for (int i = 0; i < n; i++)
	{
		usage_labels(buf, "aos_cus_usage_cost_microcents_total", &rows[i]);
		appendStringInfo(buf, "} " UINT64_FORMAT "\n", rows[i].cost_microcents);
	}
	family(buf, "aos_cus_usage_tokens_total", "counter",
		   "Committed LLM tokens by provider, model and type (input: uncached input; output: all billed output).");
	for (int i = 0; i < n; i++)
	{
		usage_labels(buf, "aos_cus_usage_tokens_total", &rows[i]);
		appendStringInfo(buf, ",type=\"input\"} " UINT64_FORMAT "\n", rows[i].input_tokens);
		usage_labels(buf, "aos_cus_usage_tokens_total", &rows[i]);
		appendStringInfo(buf, ",type=\"output\"} " UINT64_FORMAT "\n", rows[i].output_tokens);
	}
	pfree(rows);
}

/* Run a read-only query through a plan saved on first use (SPI connected). */
static void
run_saved(SPIPlanPtr *plan, const char *sql)
{
	if (SPI_execute_plan(aos_cus_keep_plan(plan, sql, 0, NULL), NULL, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute_plan failed for \"%s\"", sql);
}

/* One sample per row of the SPI result (label1 text, label2 text, value bigint). */
static void
emit_two_label_rows(StringInfo buf, const char *metric, const char *label1, const char *label2)
{
	TupleDesc	desc = SPI_tuptable->tupdesc;

	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		bool		isnull;

		appendStringInfo(buf, "%s{%s=\"%s\",%s=\"%s\"} " INT64_FORMAT "\n",
						 metric, label1, SPI_getvalue(tup, desc, 1), label2, SPI_getvalue(tup, desc, 2),
						 DatumGetInt64(SPI_getbinval(tup, desc, 3, &isnull)));
	}
}

/* Integrations per status and health state (aos_cus.stat_health; SPI connected). */
static void
emit_health(StringInfo buf)
{
	run_saved(&health_plan, "SELECT status, health_state, integrations FROM aos_cus.stat_health");
	family(buf, "aos_cus_integrations", "gauge",
		   "Integrations that are not deleted, by status and health state.");
	emit_two_label_rows(buf, "aos_cus_integrations", "status", "health_state");
}

/* Seconds since the last rollup and its time (aos_cus.stat_rollup; SPI connected). */
static void
emit_rollup(StringInfo buf)
{
	double		lag = get_float8_infinity();
	double		last = 0;

	run_saved(&rollup_plan, "SELECT lag_seconds, last_rollup_epoch FROM aos_cus.stat_rollup");
	if (SPI_processed == 1)
	{
		HeapTuple	tup = SPI_tuptable->vals[0];
		bool		isnull;

		lag = DatumGetFloat8(SPI_getbinval(tup, SPI_tuptable->tupdesc, 1, &isnull));
		last = DatumGetFloat8(SPI_getbinval(tup, SPI_tuptable->tupdesc, 2, &isnull));
	}
	family(buf, "aos_cus_rollup_lag_seconds", "gauge",
		   "Seconds since rollup_usage() last completed; +Inf when it never ran.");
	appendStringInfoString(buf, "aos_cus_rollup_lag_seconds");
	append_double(buf, lag);
	family(buf, "aos_cus_rollup_last_run_timestamp_seconds", "gauge",
		   "When rollup_usage() last completed, Unix seconds; 0 when it never ran.");
	appendStringInfoString(buf, "aos_cus_rollup_last_run_timestamp_seconds");
	append_double(buf, last);
}

/* check() decisions per decision and reason (aos_cus.stat_decisions(); SPI connected). */
static void
emit_decisions(StringInfo buf)
{
	run_saved(&decisions_plan, "SELECT decision, reason, count FROM aos_cus.stat_decisions()");
	family(buf, "aos_cus_decisions_total", "counter", "Enforcement decisions of check() by decision and reason.");
	emit_two_label_rows(buf, "aos_cus_decisions_total", "decision", "reason");
}

/* Entries used and capacity per shared-memory table (aos_cus.stat_shmem; SPI connected). */
static void
emit_shmem(StringInfo buf)
{
	TupleDesc	desc;
	bool		isnull;

	run_saved(&shmem_plan, "SELECT area, entries_used, entries_capacity FROM aos_cus.stat_shmem");
	desc = SPI_tuptable->tupdesc;
	family(buf, "aos_cus_shmem_entries_used", "gauge", "Entries in use in a shared-memory table.");
	for (uint64 i = 0; i < SPI_processed; i++)
		appendStringInfo(buf, "aos_cus_shmem_entries_used{table=\"%s\"} " INT64_FORMAT "\n",
						 SPI_getvalue(SPI_tuptable->vals[i], desc, 1),
						 DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i], desc, 2, &isnull)));
	family(buf, "aos_cus_shmem_entries_capacity", "gauge", "Entries a shared-memory table can hold.");
	for (uint64 i = 0; i < SPI_processed; i++)
		appendStringInfo(buf, "aos_cus_shmem_entries_capacity{table=\"%s\"} " INT64_FORMAT "\n",
						 SPI_getvalue(SPI_tuptable->vals[i], desc, 1),
						 DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i], desc, 3, &isnull)));
}

/* Per webhook endpoint: deliveries by outcome, backlog and its oldest age (aos_cus.stat_webhooks; SPI connected). */
static void
emit_webhooks(StringInfo buf)
{
	static const char *const outcomes[] = {"delivered", "failed", "retried", "dead_lettered"};
	TupleDesc	desc;
	bool		isnull;

	run_saved(&webhooks_plan, "SELECT tenant_id, webhook_id, delivered, failed, retried, dead_lettered, pending,"
			  " oldest_pending_seconds FROM aos_cus.stat_webhooks");
	desc = SPI_tuptable->tupdesc;
	family(buf, "aos_cus_webhook_deliveries_total", "counter",
		   "Webhook delivery attempts per endpoint by outcome: delivered, failed (an attempt that did not get a 2xx), retried (scheduled again), dead_lettered.");
	for (uint64 i = 0; i < SPI_processed; i++)
		for (size_t o = 0; o < lengthof(outcomes); o++)
			appendStringInfo(buf, "aos_cus_webhook_deliveries_total{tenant_id=\"%s\",webhook_id=\"%s\",outcome=\"%s\"} " INT64_FORMAT "\n",
							 SPI_getvalue(SPI_tuptable->vals[i], desc, 1), SPI_getvalue(SPI_tuptable->vals[i], desc, 2),
							 outcomes[o], DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i], desc, 3 + o, &isnull)));
	family(buf, "aos_cus_webhook_pending", "gauge", "Webhook deliveries not yet delivered nor dead-lettered, per endpoint.");
	for (uint64 i = 0; i < SPI_processed; i++)
		appendStringInfo(buf, "aos_cus_webhook_pending{tenant_id=\"%s\",webhook_id=\"%s\"} " INT64_FORMAT "\n",
						 SPI_getvalue(SPI_tuptable->vals[i], desc, 1), SPI_getvalue(SPI_tuptable->vals[i], desc, 2),
						 DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i], desc, 7, &isnull)));
	family(buf, "aos_cus_webhook_oldest_pending_age_seconds", "gauge",
		   "Age of the oldest undelivered event per webhook endpoint (0 when none is pending).");
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		appendStringInfo(buf, "aos_cus_webhook_oldest_pending_age_seconds{tenant_id=\"%s\",webhook_id=\"%s\"}",
						 SPI_getvalue(SPI_tuptable->vals[i], desc, 1), SPI_getvalue(SPI_tuptable->vals[i], desc, 2));
		append_double(buf, DatumGetFloat8(SPI_getbinval(SPI_tuptable->vals[i], desc, 8, &isnull)));
	}
}

/* Used ratio of one budget row: spend over budget; a zero budget is exhausted (1, or +Inf once spent). */
static double
used_ratio(const AosBudgetRow *row)
{
	if (row->budget > 0)
		return (double) row->used / (double) row->budget;
	return row->used > 0 ? get_float8_infinity() : 1.0;
}

/* Collect the budget rows and order them by used ratio, keeping aos_cus.metrics_max_integrations. */
static void
budget_report(BudgetReport *report)
{
	report->tracked = aos_cus_enforce_budget_snapshot(&report->rows);
	report->order = palloc(Max(report->tracked, 1) * sizeof(AosBudgetRatio));
	for (size_t i = 0; i < report->tracked; i++)
	{
		report->order[i].used_ratio = used_ratio(&report->rows[i]);
		report->order[i].index = i;
	}
	report->reported = aos_cus_prom_top_ratios(report->order, report->tracked, metrics_max_integrations);
}

/* Append {tenant_id="..",integration_id=".."} of one budget row. */
static void
budget_labels(StringInfo buf, const char *metric, const AosBudgetRow *row)
{
	char		tenant[AOS_UUID_TEXT_LEN + 1];
	char		integration[AOS_UUID_TEXT_LEN + 1];

	aos_cus_uuid_format(row->tenant.data, tenant);
	aos_cus_uuid_format(row->integration.data, integration);
	appendStringInfo(buf, "%s{tenant_id=\"%s\",integration_id=\"%s\"}", metric, tenant, integration);
}

/* Budget used and warn ratios of the integrations nearest their budget. */
static void
emit_budget(StringInfo buf)
{
	BudgetReport report;

	budget_report(&report);
	family(buf, "aos_cus_budget_used_ratio", "gauge",
		   "Spend plus reservations over budget in the current period, for the integrations nearest their budget "
		   "(at most aos_cus.metrics_max_integrations).");
	for (size_t i = 0; i < report.reported; i++)
	{
		budget_labels(buf, "aos_cus_budget_used_ratio", &report.rows[report.order[i].index]);
		append_double(buf, report.order[i].used_ratio);
	}
	family(buf, "aos_cus_budget_warn_ratio", "gauge", "The integration's warn_at_pct as a ratio (same integrations).");
	for (size_t i = 0; i < report.reported; i++)
	{
		const AosBudgetRow *row = &report.rows[report.order[i].index];

		budget_labels(buf, "aos_cus_budget_warn_ratio", row);
		append_double(buf, row->warn_pct / 100.0);
	}
	family(buf, "aos_cus_budget_integrations_omitted", "gauge",
		   "Integrations with a budget left out of aos_cus_budget_used_ratio by aos_cus.metrics_max_integrations.");
	appendStringInfo(buf, "aos_cus_budget_integrations_omitted %zu\n", report.tracked - report.reported);
}

/* SQL metrics(): the whole exposition as one text. */
Datum
aos_cus_metrics(PG_FUNCTION_ARGS)
{
	StringInfoData buf;

	aos_cus_require_preload();
	aos_cus_assert_no_tenant("aos_cus.metrics()");
	initStringInfo(&buf);
	emit_event_counters(&buf);
	emit_usage(&buf);
	emit_budget(&buf);

	SPI_connect();
	emit_decisions(&buf);
	emit_health(&buf);
	emit_rollup(&buf);
	emit_shmem(&buf);
	emit_webhooks(&buf);
	SPI_finish();

	PG_RETURN_TEXT_P(cstring_to_text_with_len(buf.data, buf.len));
}

/* SQL stat_usage(): one row per (provider, model). */
Datum
aos_cus_stat_usage(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	AosUsageStatsRow *rows;
	int			n;

	aos_cus_require_preload();
	aos_cus_assert_no_tenant("aos_cus.stat_usage()");
	InitMaterializedSRF(fcinfo, 0);
	n = aos_cus_usage_stats_snapshot(&rows);
	for (int i = 0; i < n; i++)
	{
		Datum		values[6];
		bool		nulls[6] = {false};

		values[0] = CStringGetTextDatum(rows[i].provider);
		values[1] = CStringGetTextDatum(rows[i].model);
		values[2] = Int64GetDatum((int64) rows[i].requests);
		values[3] = Int64GetDatum((int64) rows[i].cost_microcents);
		values[4] = Int64GetDatum((int64) rows[i].input_tokens);
		values[5] = Int64GetDatum((int64) rows[i].output_tokens);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/* SQL stat_shmem(): entries used and capacity per shared-memory table. */
Datum
aos_cus_stat_shmem(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Datum		values[3];
	bool		nulls[3] = {false};
	int64		used,
				capacity;

	aos_cus_require_preload();
	aos_cus_assert_no_tenant("aos_cus.stat_shmem()");
	InitMaterializedSRF(fcinfo, 0);
	aos_cus_usage_stats_fill(&used, &capacity);
	values[0] = CStringGetTextDatum("usage_stats");
	values[1] = Int64GetDatum(used);
	values[2] = Int64GetDatum(capacity);
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	return (Datum) 0;
}

/* SQL stat_budget(): every cached integration with a budget, nearest it first; reported = within the cap. */
Datum
aos_cus_stat_budget(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	BudgetReport report;

	aos_cus_require_preload();
	aos_cus_assert_no_tenant("aos_cus.stat_budget()");
	InitMaterializedSRF(fcinfo, 0);
	budget_report(&report);
	for (size_t i = 0; i < report.tracked; i++)
	{
		const AosBudgetRow *row = &report.rows[report.order[i].index];
		Datum		values[7];
		bool		nulls[7] = {false};

		values[0] = UUIDPGetDatum(&row->tenant);
		values[1] = UUIDPGetDatum(&row->integration);
		values[2] = Int64GetDatum(row->used);
		values[3] = Int64GetDatum(row->budget);
		values[4] = Float8GetDatum(report.order[i].used_ratio);
		values[5] = Float8GetDatum(row->warn_pct / 100.0);
		values[6] = BoolGetDatum(i < report.reported);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/* SQL stat_reset(): zero the event and decision counters and empty the usage table. */
Datum
aos_cus_stat_reset(PG_FUNCTION_ARGS)
{
	aos_cus_require_preload();
	aos_cus_assert_no_tenant("aos_cus.stat_reset()");
	aos_cus_stats_reset();
	aos_cus_usage_stats_reset();
	aos_cus_enforce_reset_decisions();
	PG_RETURN_VOID();
}
