/*
 * health_worker.c: the health background worker.
 *
 * It drains aos_cus.cus_health_checks and, every aos_cus.health_interval,
 * queues the enabled integrations not probed for that long. Like pg_net it
 * never holds a transaction or snapshot across network I/O: one short
 * transaction claims up to health_max_in_flight checks (claimed_at set, keys
 * resolved) and commits; the probes then run together on a curl multi handle
 * with no transaction open; each result is recorded in a new transaction that
 * also deletes its queue row. Its latch is set when a queuing transaction
 * commits. At start it releases checks a previous incarnation had claimed.
 * A failing probe is a result, not an error; an error while recording one is
 * logged and the worker goes on. While credentials cannot be resolved for a
 * fault of the server's (the keyring is not loaded, or holds a wrong key) it
 * claims nothing, so no integration is recorded failing for it: it reports the
 * pause once (a WARNING and the health_worker_paused counter) and resumes when
 * the fault is gone. It exits on SIGTERM and on postmaster death.
 */
#include "postgres.h"

#include "credentials.h"
#include "health.h"
#include "worker_wake.h"
#include "health_probe.h"
#include "stats.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#define MAX_PROBES 256
#define STALE_BATCH 1000
#define IDLE_WAIT_MS 10000L
#define POLL_MS 100

static AosHealthProbe *probes[MAX_PROBES];
static int	n_probes = 0;
static MemoryContext probe_cxt = NULL;	/* the probes in flight */
static MemoryContext claim_cxt = NULL;	/* one claim's copied rows, reset at each claim */
static CURLM *multi = NULL;
static bool released_claims = false;
static bool warned_missing_extension = false;
static bool paused = false;		/* probes paused for a server-side fault, reported once */

/* Clear the published latch when the worker exits. */
static void
clear_latch(int code, Datum arg)
{
	aos_cus_health_set_worker_latch(NULL);
}

/* Start a transaction with a snapshot and SPI, reporting what it does. */
static void
begin_work(const char *activity)
{
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, activity);
}

/* Commit, leaving no transaction or snapshot behind. */
static void
end_work(void)
{
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_stat(false);
	pgstat_report_activity(STATE_IDLE, NULL);
}

/* Copy text column col of row r into claim_cxt, or NULL. */
static char *
row_text(uint64 r, int col)
{
	char	   *v = SPI_getvalue(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, col);

	return v != NULL ? MemoryContextStrdup(claim_cxt, v) : NULL;
}

/* Resolve the key and set up the probe's request; a failed resolution finishes the probe as failing. */
static void
start_probe(AosHealthProbe *p, const char *provider, const char *base_url,
			const char *api_version, const char *health_path)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;

	if (!aos_cus_probe_supported(provider))
	{
		aos_cus_health_probe_fail(p, AOS_HEALTH_UNKNOWN, "no health probe exists for this provider");
		return;
	}
	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(oldcxt);
	PG_TRY();
	{
		bool		ready = aos_cus_health_probe_setup(p, provider, base_url, api_version, health_path);

		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
		if (ready)
			curl_multi_add_handle(multi, p->easy);
	}
	PG_CATCH();
	{
		ErrorData  *edata;
		char		msg[AOS_PROBE_ERROR_MAX];

		MemoryContextSwitchTo(oldcxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
		snprintf(msg, sizeof(msg), "credential could not be resolved: %s", edata->message);
		aos_cus_health_probe_fail(p, AOS_HEALTH_FAILING, msg);
		FreeErrorData(edata);
	}
	PG_END_TRY();
}

/* False while the keyring cannot resolve credentials: the pause is reported once, and its end. */
static bool
probes_may_run(void)
{
	char		why[600];

	if (!aos_cus_keyring_ready(why, sizeof(why)))
	{
		if (!paused)
		{
			ereport(WARNING,
					(errmsg("aos_cus health worker: probes paused: %s", why),
					 errdetail("Integrations keep their health state; a server-side fault is not a failing credential."),
					 errhint("Fix aos_cus.keyring_file and restart the server; probes resume by themselves.")));
			aos_cus_stat_add(AOS_STAT_HEALTH_PAUSED, 1);
			paused = true;
		}
		return false;
	}
	if (paused)
		ereport(LOG, (errmsg("aos_cus health worker: the keyring is usable again; probes resumed")));
	paused = false;
	return true;
}

/*
 * One short transaction: release stale claims once, queue stale integrations
 * when due, claim up to slots checks and set up their probes. Returns the
 * number claimed. No network I/O happens here.
 */
static int
claim_checks(int slots, bool queue_stale)
{
	Oid			argtypes[1] = {INT4OID};
	Datum		args[1];
	Oid			keytypes[2] = {UUIDOID, INT8OID};
	Datum		keyargs[2];
	StringInfoData sql;
	char	   *filter;
	SPITupleTable *candidates;
	uint64		n_candidates;
	int			claimed;
	char	   *provider[MAX_PROBES];
	char	   *base_url[MAX_PROBES];
	char	   *api_version[MAX_PROBES];
	char	   *health_path[MAX_PROBES];

	MemoryContextReset(claim_cxt);
	begin_work("aos_cus health worker: claiming checks");
	if (!OidIsValid(get_extension_oid("aos_cus", true)))
	{
		if (!warned_missing_extension)
			ereport(LOG,
					(errmsg("aos_cus health worker: extension aos_cus is not installed in database \"%s\"; waiting",
							aos_cus_health_database)));
		warned_missing_extension = true;
		end_work();
		return 0;
	}
	warned_missing_extension = false;
	if (!probes_may_run())
	{
		end_work();
		return 0;
	}
	/* This node's rows: all of them, or under Citus the shards it stores (its own health worker probes those). */
	if (SPI_execute("SELECT aos_cus_internal.node_rows_filter()", true, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "aos_cus health worker: could not read the node's rows filter");
	filter = row_text(0, 1);
	if (!released_claims)
	{
		initStringInfo(&sql);
		appendStringInfo(&sql, "UPDATE aos_cus.cus_health_checks SET claimed_at = NULL WHERE claimed_at IS NOT NULL AND %s",
						 filter);
		SPI_execute(sql.data, false, 0);
		released_claims = true;
	}
	if (queue_stale)
	{
		args[0] = Int32GetDatum(aos_cus_health_interval_s);
		initStringInfo(&sql);
		appendStringInfo(&sql, "INSERT INTO aos_cus.cus_health_checks (tenant_id, integration_id) "
						 "SELECT s.tenant_id, s.integration_id "
						 "FROM aos_cus.stale_integrations(pg_catalog.make_interval(secs => $1)) s WHERE %s "
						 "LIMIT " CppAsString2(STALE_BATCH) " ON CONFLICT DO NOTHING", filter);
		SPI_execute_with_args(sql.data, 1, argtypes, args, NULL, false, 0);
	}

	/* The oldest checks first, each then claimed by its key (one shard under Citus), skipping rows locked by others. */
	args[0] = Int32GetDatum(slots);
	initStringInfo(&sql);
	appendStringInfo(&sql, "SELECT tenant_id, id FROM aos_cus.cus_health_checks WHERE claimed_at IS NULL AND %s "
					 "ORDER BY requested_at, id LIMIT $1", filter);
	if (SPI_execute_with_args(sql.data, 1, argtypes, args, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "aos_cus health worker: could not read queued checks");
	candidates = SPI_tuptable;
	n_candidates = SPI_processed;
	claimed = 0;
	for (uint64 c = 0; c < n_candidates; c++)
	{
		AosHealthProbe *p;
		bool		isnull;

		keyargs[0] = SPI_getbinval(candidates->vals[c], candidates->tupdesc, 1, &isnull);
		keyargs[1] = SPI_getbinval(candidates->vals[c], candidates->tupdesc, 2, &isnull);
		if (SPI_execute_with_args("WITH c AS (SELECT tenant_id, id FROM aos_cus.cus_health_checks "
								  "  WHERE tenant_id OPERATOR(pg_catalog.=) $1 AND id OPERATOR(pg_catalog.=) $2"
								  "  AND claimed_at IS NULL FOR UPDATE SKIP LOCKED) "
								  "UPDATE aos_cus.cus_health_checks q SET claimed_at = pg_catalog.now() "
								  "FROM c JOIN aos_cus.cus_integrations i ON i.tenant_id OPERATOR(pg_catalog.=) c.tenant_id "
								  "WHERE q.tenant_id OPERATOR(pg_catalog.=) $1 AND q.id OPERATOR(pg_catalog.=) c.id"
								  "  AND i.tenant_id OPERATOR(pg_catalog.=) $1 AND i.id OPERATOR(pg_catalog.=) q.integration_id "
								  "RETURNING q.tenant_id, q.integration_id, q.id, i.provider, i.base_url, "
								  "  i.config OPERATOR(pg_catalog.->>) 'api_version', i.config OPERATOR(pg_catalog.->>) 'health_path',"
								  "  i.status",
								  2, keytypes, keyargs, NULL, false, 0) != SPI_OK_UPDATE_RETURNING)
			elog(ERROR, "aos_cus health worker: could not claim checks");
		if (SPI_processed != 1)
			continue;
		/* copy the row first: resolving a key runs SPI, which replaces SPI_tuptable */
		p = MemoryContextAllocZero(probe_cxt, sizeof(AosHealthProbe));
		p->tenant_id = *DatumGetUUIDP(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		p->integration_id = *DatumGetUUIDP(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
		p->check_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull));
		p->record = strcmp(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 8), "deleted") != 0;
		provider[claimed] = row_text(0, 4);
		base_url[claimed] = row_text(0, 5);
		api_version[claimed] = row_text(0, 6);
		health_path[claimed] = row_text(0, 7);
		probes[n_probes + claimed] = p;
		claimed++;
	}
	for (int r = 0; r < claimed; r++)
	{
		AosHealthProbe *p = probes[n_probes + r];

		if (p->record)
			start_probe(p, provider[r], base_url[r], api_version[r], health_path[r]);
	}
	n_probes += claimed;
	end_work();
	return claimed;
}

/* Record one finished probe and drop its queue row; errors are logged, not fatal. */
static void
record_probe(AosHealthProbe *p)
{
	Oid			types[5] = {UUIDOID, UUIDOID, TEXTOID, INT4OID, TEXTOID};
	Datum		args[5];
	char		nulls[5] = {' ', ' ', ' ', ' ', ' '};
	Oid			del_types[2] = {UUIDOID, INT8OID};
	Datum		del_args[2];
	MemoryContext oldcxt = CurrentMemoryContext;

	args[0] = UUIDPGetDatum(&p->tenant_id);
	args[1] = UUIDPGetDatum(&p->integration_id);
	del_args[0] = UUIDPGetDatum(&p->tenant_id);
	del_args[1] = Int64GetDatum(p->check_id);
	PG_TRY();
	{
		begin_work("aos_cus health worker: recording a result");
		if (p->record)
		{
			args[2] = CStringGetTextDatum(aos_cus_health_state_name(p->state));
			args[3] = Int32GetDatum(p->latency_ms);
			args[4] = CStringGetTextDatum(p->error);
			if (p->error[0] == '\0')
				nulls[4] = 'n';
			SPI_execute_with_args("SELECT aos_cus.record_health($1, $2, $3, $4, $5)",
								  5, types, args, nulls, false, 0);
		}
		SPI_execute_with_args("DELETE FROM aos_cus.cus_health_checks WHERE tenant_id OPERATOR(pg_catalog.=) $1 AND id OPERATOR(pg_catalog.=) $2",
							  2, del_types, del_args, NULL, false, 0);
		end_work();
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(oldcxt);
		EmitErrorReport();
		FlushErrorState();
		AbortCurrentTransaction();
		pgstat_report_activity(STATE_IDLE, NULL);
		/* still drop the queue row, or it would be claimed again at the next start */
		begin_work("aos_cus health worker: dropping a check");
		SPI_execute_with_args("DELETE FROM aos_cus.cus_health_checks WHERE tenant_id OPERATOR(pg_catalog.=) $1 AND id OPERATOR(pg_catalog.=) $2",
							  2, del_types, del_args, NULL, false, 0);
		end_work();
	}
	PG_END_TRY();
}

/* Record every finished probe and compact the in-flight list. */
static void
record_finished(void)
{
	int			kept = 0;

	for (int i = 0; i < n_probes; i++)
	{
		AosHealthProbe *p = probes[i];

		if (p->easy != NULL)
		{
			probes[kept++] = p;
			continue;
		}
		record_probe(p);
		pfree(p);
	}
	n_probes = kept;
}

/* Worker entry point: loop until SIGTERM or postmaster death. */
void
aos_cus_health_worker_main(Datum arg)
{
	bool		check_queue = true;
	TimestampTz next_stale = 0;

	aos_cus_worker_connect(aos_cus_health_database);

	probe_cxt = AllocSetContextCreate(TopMemoryContext, "aos_cus health probes", ALLOCSET_DEFAULT_SIZES);
	claim_cxt = AllocSetContextCreate(TopMemoryContext, "aos_cus health claims", ALLOCSET_DEFAULT_SIZES);
	aos_cus_health_curl_init();
	multi = curl_multi_init();
	if (multi == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("aos_cus health worker: could not create a curl multi handle")));
	before_shmem_exit(clear_latch, 0);
	aos_cus_health_set_worker_latch(MyLatch);
	pgstat_report_activity(STATE_IDLE, NULL);
	ereport(LOG, (errmsg("aos_cus health worker started in database \"%s\"", aos_cus_health_database)));

	for (;;)
	{
		int			rc;
		int			slots;
		bool		queue_stale = false;
		TimestampTz now;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
			next_stale = 0;		/* a new health_interval applies at once */
			check_queue = true;
		}

		now = GetCurrentTimestamp();
		if (aos_cus_health_interval_s > 0 && now >= next_stale)
		{
			queue_stale = true;
			next_stale = TimestampTzPlusMilliseconds(now, (int64) aos_cus_health_interval_s * 1000 / 2);
		}
		slots = Min(aos_cus_health_max_in_flight, MAX_PROBES) - n_probes;
		if ((check_queue || queue_stale) && slots > 0)
		{
			check_queue = claim_checks(slots, queue_stale) == slots;
			record_finished();	/* probes that could not even start */
		}

		if (n_probes > 0)
		{
			int			running;

			curl_multi_perform(multi, &running);
			if (aos_cus_health_multi_collect(multi) > 0)
				record_finished();
			if (n_probes > 0)
			{
				pgstat_report_wait_start(PG_WAIT_EXTENSION);
				curl_multi_poll(multi, NULL, 0, POLL_MS, NULL);
				pgstat_report_wait_end();
			}
			rc = WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 0, PG_WAIT_EXTENSION);
		}
		else
		{
			long		wait_ms = IDLE_WAIT_MS;

			if (aos_cus_health_interval_s > 0)
				wait_ms = Max(1, Min(wait_ms, TimestampDifferenceMilliseconds(GetCurrentTimestamp(), next_stale)));
			rc = WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, wait_ms, PG_WAIT_EXTENSION);
		}
		if (rc & WL_LATCH_SET)
		{
			ResetLatch(MyLatch);
			check_queue = true;
		}
	}
}
