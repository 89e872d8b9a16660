/*
 * webhook_worker.c: the webhook delivery background worker (issue 15).
 *
 * Like the health worker it never holds a transaction or snapshot across
 * network I/O. One short transaction reads the head of each enabled
 * endpoint's queue (its oldest pending delivery: one delivery per endpoint at
 * a time, in event order), opens the signing secrets of the heads that are
 * due, builds and signs their requests (Standard Webhooks: webhook-id is the
 * event's id, the same on every attempt) and commits; the requests then run
 * together on a curl multi handle with no transaction open, through the
 * egress policy; each outcome is recorded in a new transaction: a 2xx marks
 * the delivery delivered, anything else schedules the next attempt after an
 * exponential backoff with jitter, or dead-letters it after
 * aos_cus.webhook_max_attempts. A crash between sending and recording leaves
 * the delivery pending, so it is sent again: at least once. Every
 * aos_cus.webhook_projection_interval it runs emit_projected_overruns(); every
 * minute it drops events older than aos_cus.webhook_retention that are no
 * longer pending anywhere.
 * While the keyring cannot open secrets (not loaded, or a wrong key) it
 * sends nothing and spends no attempt, as the health worker pauses its probes.
 * Response bodies are discarded unread; secrets live only in this process's
 * memory while signing and are wiped at once.
 */
#include "aos_cus.h"
#include "credentials.h"
#include "egress.h"
#include "egress_curl.h"
#include "health.h"
#include "worker_wake.h"
#include "webhook.h"
#include "webhooks.h"

#include <curl/curl.h>
#include <time.h>

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "common/pg_prng.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/pmsignal.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#define MAX_DELIVERIES 256
#define IDLE_WAIT_MS 10000L
#define POLL_MS 100
#define PRUNE_INTERVAL_MS 60000L
#define WEBHOOK_USER_AGENT "aos_cus/0.2.0 webhook"

/* One attempt of one delivery. */
typedef struct Delivery
{
	pg_uuid_t	tenant_id;
	pg_uuid_t	webhook_id;
	int64		event_seq;
	int			attempts;		/* before this one */
	CURL	   *easy;			/* NULL when finished or never started */
	struct curl_slist *headers;
	AosEgressGuard egress;
	char	   *body;
	long		http_status;
	char		error[256];		/* empty on success */
} Delivery;

static Delivery deliveries[MAX_DELIVERIES];
static int	n_deliveries = 0;
static MemoryContext batch_cxt = NULL;
static CURLM *multi = NULL;
static bool warned_missing_extension = false;
static bool paused = false;		/* deliveries paused for a keyring fault, reported once */

/* Clear the published latch when the worker exits. */
static void
clear_latch(int code, Datum arg)
{
	aos_cus_webhooks_set_worker_latch(NULL);
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

/* Discard response bytes: bodies are never read, stored or logged. */
static size_t
discard_body(char *data, size_t size, size_t nmemb, void *arg)
{
	return size * nmemb;
}

/* Finish d without network I/O, as a failed attempt. */
static void
fail_now(Delivery *d, const char *error)
{
	d->easy = NULL;
	strlcpy(d->error, error, sizeof(d->error));
}

/* Open the endpoint's secret, sign body and set up d's request (in batch_cxt); a failure fails the attempt. */
static void
prepare(Delivery *d, const char *url, const char *secret_ref, const char *msg_id)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	char	   *volatile secret = NULL;
	uint8_t		key[AOS_WEBHOOK_KEY_MAX];
	size_t		key_len;
	const char *why;
	char		sig[AOS_WEBHOOK_SIGNATURE_LEN];
	char		line[128];
	int64		ts = (int64) time(NULL);
	bool		signed_ok;

	/* Opening the secret may raise (keyring fault, tampered reference): it fails this attempt only. */
	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(oldcxt);
	PG_TRY();
	{
		secret = aos_cus_open_secret(&d->tenant_id, &d->webhook_id, secret_ref, "the webhook secret");
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(oldcxt);
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
	}
	PG_END_TRY();
	if (secret == NULL)
	{
		fail_now(d, "the webhook secret could not be decrypted");
		return;
	}
	signed_ok = aos_cus_webhook_secret_decode(secret, key, &key_len, &why) &&
		aos_cus_webhook_sign(key, key_len, msg_id, ts, d->body, strlen(d->body), sig);
	explicit_bzero(secret, strlen(secret));
	explicit_bzero(key, sizeof(key));
	if (!signed_ok)
	{
		fail_now(d, "the message could not be signed");
		return;
	}

	d->easy = curl_easy_init();
	if (d->easy == NULL)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory setting up a webhook delivery")));
	if ((why = aos_cus_egress_apply(d->easy, url, &d->egress)) != NULL)
	{
		curl_easy_cleanup(d->easy);
		fail_now(d, why);
		return;
	}
	d->headers = curl_slist_append(NULL, "Content-Type: application/json");
	snprintf(line, sizeof(line), "webhook-id: %s", msg_id);
	d->headers = curl_slist_append(d->headers, line);
	snprintf(line, sizeof(line), "webhook-timestamp: " INT64_FORMAT, ts);
	d->headers = curl_slist_append(d->headers, line);
	snprintf(line, sizeof(line), "webhook-signature: %s", sig);
	d->headers = curl_slist_append(d->headers, line);
	if (d->headers == NULL)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory setting up a webhook delivery")));
	curl_easy_setopt(d->easy, CURLOPT_URL, url);
	curl_easy_setopt(d->easy, CURLOPT_POST, 1L);
	curl_easy_setopt(d->easy, CURLOPT_POSTFIELDS, d->body);
	curl_easy_setopt(d->easy, CURLOPT_POSTFIELDSIZE, (long) strlen(d->body));
	curl_easy_setopt(d->easy, CURLOPT_HTTPHEADER, d->headers);
	curl_easy_setopt(d->easy, CURLOPT_USERAGENT, WEBHOOK_USER_AGENT);
	curl_easy_setopt(d->easy, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(d->easy, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(d->easy, CURLOPT_SSL_VERIFYHOST, 2L);
	if (aos_cus_health_ca_file != NULL && aos_cus_health_ca_file[0] != '\0')
		curl_easy_setopt(d->easy, CURLOPT_CAINFO, aos_cus_health_ca_file);
	curl_easy_setopt(d->easy, CURLOPT_TIMEOUT_MS, (long) aos_cus_webhook_timeout_ms);
	curl_easy_setopt(d->easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(d->easy, CURLOPT_WRITEFUNCTION, discard_body);
	curl_easy_setopt(d->easy, CURLOPT_PRIVATE, d);
	curl_multi_add_handle(multi, d->easy);
}

/* Copy text column col of the current SPI row into batch_cxt. */
static char *
col_text(uint64 r, int col)
{
	char	   *v = SPI_getvalue(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, col);

	return v != NULL ? MemoryContextStrdup(batch_cxt, v) : NULL;
}

/* False while the keyring cannot open secrets (a fault of the server's): the pause is reported once, and its end. */
static bool
deliveries_may_run(void)
{
	char		why[600];

	if (!aos_cus_keyring_ready(why, sizeof(why)))
	{
		if (!paused)
			ereport(WARNING,
					(errmsg("aos_cus webhook worker: deliveries paused: %s", why),
					 errdetail("Pending deliveries keep their attempts; a server-side fault is not a failing endpoint."),
					 errhint("Fix aos_cus.keyring_file and restart the server; deliveries resume by themselves.")));
		paused = true;
		return false;
	}
	if (paused)
		ereport(LOG, (errmsg("aos_cus webhook worker: the keyring is usable again; deliveries resumed")));
	paused = false;
	return true;
}

/*
 * One short transaction: read every enabled endpoint's head delivery, set up
 * the due ones (at most aos_cus.webhook_max_in_flight). Returns the
 * milliseconds until the next head falls due (IDLE_WAIT_MS when none).
 */
static long
claim(void)
{
	static const char *heads_sql =
		"SELECT h.tenant_id, h.webhook_id, h.event_seq, h.attempts,"
		"  h.next_attempt_at OPERATOR(pg_catalog.<=) pg_catalog.now(),"
		"  pg_catalog.ceil(EXTRACT(epoch FROM h.next_attempt_at OPERATOR(pg_catalog.-) pg_catalog.now())"
		"    OPERATOR(pg_catalog.*) 1000)::pg_catalog.int8,"
		"  w.url, w.secret_ref, w.format, e.event_id::pg_catalog.text,"
		"  CASE w.format WHEN 'slack' THEN aos_cus_internal.webhook_summary(e.type, e.payload)"
		"    ELSE pg_catalog.jsonb_build_object('type', e.type, 'timestamp', e.created_at, 'data', e.payload)::pg_catalog.text END "
		"FROM (SELECT DISTINCT ON (d.tenant_id, d.webhook_id) d.tenant_id, d.webhook_id, d.event_seq, d.attempts,"
		"        d.next_attempt_at"
		"      FROM aos_cus.cus_webhook_deliveries d WHERE d.status OPERATOR(pg_catalog.=) 'pending'"
		"      ORDER BY d.tenant_id, d.webhook_id, d.event_seq) h "
		"JOIN aos_cus.cus_webhooks w ON w.tenant_id OPERATOR(pg_catalog.=) h.tenant_id AND w.id OPERATOR(pg_catalog.=) h.webhook_id "
		"JOIN aos_cus.cus_webhook_events e ON e.tenant_id OPERATOR(pg_catalog.=) h.tenant_id AND e.id OPERATOR(pg_catalog.=) h.event_seq "
		"WHERE w.enabled ORDER BY h.next_attempt_at";
	long		wait_ms = IDLE_WAIT_MS;
	int			slots = Min(aos_cus_webhook_max_in_flight, MAX_DELIVERIES);
	uint64		rows;
	SPITupleTable *tuptable;

	MemoryContextReset(batch_cxt);
	n_deliveries = 0;
	begin_work("aos_cus webhook worker: claiming deliveries");
	if (!OidIsValid(get_extension_oid("aos_cus", true)))
	{
		if (!warned_missing_extension)
			ereport(LOG,
					(errmsg("aos_cus webhook worker: extension aos_cus is not installed in database \"%s\"; waiting",
							aos_cus_health_database)));
		warned_missing_extension = true;
		end_work();
		return IDLE_WAIT_MS;
	}
	warned_missing_extension = false;
	if (!deliveries_may_run())
	{
		end_work();
		return IDLE_WAIT_MS;
	}
	if (SPI_execute(heads_sql, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "aos_cus webhook worker: could not read the delivery queue");
	rows = SPI_processed;
	tuptable = SPI_tuptable;
	for (uint64 r = 0; r < rows; r++)
	{
		HeapTuple	tup = tuptable->vals[r];
		TupleDesc	desc = tuptable->tupdesc;
		bool		isnull;
		Delivery   *d;
		char	   *url;
		char	   *secret_ref;
		char	   *msg_id;
		MemoryContext old;

		if (!DatumGetBool(SPI_getbinval(tup, desc, 5, &isnull)))
		{
			wait_ms = Min(wait_ms, Max(1, DatumGetInt64(SPI_getbinval(tup, desc, 6, &isnull))));
			continue;
		}
		if (n_deliveries >= slots)
		{
			wait_ms = 0;
			break;
		}
		d = &deliveries[n_deliveries++];
		memset(d, 0, sizeof(*d));
		d->tenant_id = *DatumGetUUIDP(SPI_getbinval(tup, desc, 1, &isnull));
		d->webhook_id = *DatumGetUUIDP(SPI_getbinval(tup, desc, 2, &isnull));
		d->event_seq = DatumGetInt64(SPI_getbinval(tup, desc, 3, &isnull));
		d->attempts = DatumGetInt32(SPI_getbinval(tup, desc, 4, &isnull));
		SPI_tuptable = tuptable;
		url = col_text(r, 7);
		secret_ref = col_text(r, 8);
		msg_id = col_text(r, 10);
		d->body = col_text(r, 11);
		if (strcmp(SPI_getvalue(tup, desc, 9), "slack") == 0)
		{
			char	   *slack = aos_cus_webhook_slack_body(d->body);

			if (slack == NULL)
				ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory building a webhook body")));
			d->body = MemoryContextStrdup(batch_cxt, slack);
			free(slack);
		}
		old = MemoryContextSwitchTo(batch_cxt);
		prepare(d, url, secret_ref, msg_id);
		MemoryContextSwitchTo(old);
	}
	end_work();
	return wait_ms;
}

/* Record one finished attempt; errors are logged, not fatal. */
static void
record(Delivery *d)
{
	static const char *delivered_sql =
		"WITH d AS (UPDATE aos_cus.cus_webhook_deliveries SET status = 'delivered',"
		"    attempts = attempts OPERATOR(pg_catalog.+) 1, delivered_at = pg_catalog.now(), last_http_status = $5,"
		"    last_error = NULL"
		"  WHERE tenant_id OPERATOR(pg_catalog.=) $1 AND webhook_id OPERATOR(pg_catalog.=) $2"
		"    AND event_seq OPERATOR(pg_catalog.=) $3 AND attempts OPERATOR(pg_catalog.=) $4"
		"    AND status OPERATOR(pg_catalog.=) 'pending' RETURNING 1) "
		"UPDATE aos_cus.cus_webhooks SET delivered = delivered OPERATOR(pg_catalog.+) 1"
		" WHERE tenant_id OPERATOR(pg_catalog.=) $1 AND id OPERATOR(pg_catalog.=) $2 AND EXISTS (SELECT FROM d)";
	static const char *failed_sql =
		"WITH d AS (UPDATE aos_cus.cus_webhook_deliveries SET"
		"    status = CASE WHEN $6 THEN 'dead' ELSE 'pending' END,"
		"    attempts = attempts OPERATOR(pg_catalog.+) 1, last_http_status = $5, last_error = $8,"
		"    next_attempt_at = pg_catalog.now() OPERATOR(pg_catalog.+) pg_catalog.make_interval(secs => $7::pg_catalog.float8 OPERATOR(pg_catalog./) 1000)"
		"  WHERE tenant_id OPERATOR(pg_catalog.=) $1 AND webhook_id OPERATOR(pg_catalog.=) $2"
		"    AND event_seq OPERATOR(pg_catalog.=) $3 AND attempts OPERATOR(pg_catalog.=) $4"
		"    AND status OPERATOR(pg_catalog.=) 'pending' RETURNING 1) "
		"UPDATE aos_cus.cus_webhooks SET failed = failed OPERATOR(pg_catalog.+) 1,"
		"  retried = retried OPERATOR(pg_catalog.+) (NOT $6)::pg_catalog.int4,"
		"  dead_lettered = dead_lettered OPERATOR(pg_catalog.+) $6::pg_catalog.int4"
		" WHERE tenant_id OPERATOR(pg_catalog.=) $1 AND id OPERATOR(pg_catalog.=) $2 AND EXISTS (SELECT FROM d)";
	Oid			types[8] = {UUIDOID, UUIDOID, INT8OID, INT4OID, INT4OID, BOOLOID, INT8OID, TEXTOID};
	Datum		args[8];
	char		nulls[8] = {' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};
	bool		ok = d->error[0] == '\0';
	MemoryContext oldcxt = CurrentMemoryContext;

	args[0] = UUIDPGetDatum(&d->tenant_id);
	args[1] = UUIDPGetDatum(&d->webhook_id);
	args[2] = Int64GetDatum(d->event_seq);
	args[3] = Int32GetDatum(d->attempts);
	args[4] = Int32GetDatum((int32) d->http_status);
	nulls[4] = d->http_status > 0 ? ' ' : 'n';
	args[5] = BoolGetDatum(d->attempts + 1 >= aos_cus_webhook_max_attempts);
	args[6] = Int64GetDatum(aos_cus_webhook_backoff_ms(d->attempts + 1, aos_cus_webhook_retry_base_ms,
												   aos_cus_webhook_retry_max_ms, pg_prng_double(&pg_global_prng_state)));
	args[7] = CStringGetTextDatum(d->error);
	PG_TRY();
	{
		begin_work("aos_cus webhook worker: recording a delivery");
		SPI_execute_with_args(ok ? delivered_sql : failed_sql, ok ? 5 : 8, types, args, nulls, false, 0);
		end_work();
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(oldcxt);
		EmitErrorReport();
		FlushErrorState();
		AbortCurrentTransaction();
		pgstat_report_activity(STATE_IDLE, NULL);
	}
	PG_END_TRY();
}

/* Classify a finished transfer: 2xx is delivered, anything else a failed attempt. */
static void
finish(Delivery *d, CURLcode code)
{
	curl_easy_getinfo(d->easy, CURLINFO_RESPONSE_CODE, &d->http_status);
	if (code != CURLE_OK && d->egress.refused)
		strlcpy(d->error, AOS_EGRESS_REFUSED_ERROR, sizeof(d->error));
	else if (code != CURLE_OK)
		snprintf(d->error, sizeof(d->error), "%s", curl_easy_strerror(code));
	else if (d->http_status < 200 || d->http_status > 299)
		snprintf(d->error, sizeof(d->error), "HTTP %ld", d->http_status);
	curl_multi_remove_handle(multi, d->easy);
	curl_easy_cleanup(d->easy);
	d->easy = NULL;
	curl_slist_free_all(d->headers);
	d->headers = NULL;
}

/* Run the claimed requests to completion (no transaction open), then record each. */
static void
deliver(void)
{
	int			running = 0;

	do
	{
		CURLMsg    *msg;
		int			left;

		CHECK_FOR_INTERRUPTS();
		curl_multi_perform(multi, &running);
		while ((msg = curl_multi_info_read(multi, &left)) != NULL)
		{
			Delivery   *d;

			if (msg->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **) &d);
			finish(d, msg->data.result);
		}
		if (running > 0)
		{
			pgstat_report_wait_start(PG_WAIT_EXTENSION);
			curl_multi_poll(multi, NULL, 0, POLL_MS, NULL);
			pgstat_report_wait_end();
			if (!PostmasterIsAlive())
				proc_exit(1);
		}
	} while (running > 0);
	for (int i = 0; i < n_deliveries; i++)
		record(&deliveries[i]);
	n_deliveries = 0;
}

/* Run one statement in its own short transaction (the extension installed); errors are logged, not fatal. */
static void
run_maintenance(const char *activity, const char *sql, int nargs, Oid *types, Datum *args)
{
	MemoryContext oldcxt = CurrentMemoryContext;

	PG_TRY();
	{
		begin_work(activity);
		if (OidIsValid(get_extension_oid("aos_cus", true)))
			SPI_execute_with_args(sql, nargs, types, args, NULL, false, 0);
		end_work();
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(oldcxt);
		EmitErrorReport();
		FlushErrorState();
		AbortCurrentTransaction();
		pgstat_report_activity(STATE_IDLE, NULL);
	}
	PG_END_TRY();
}

/* Emit budget.projected_overrun events. */
static void
project(void)
{
	run_maintenance("aos_cus webhook worker: projecting budgets", "SELECT aos_cus_internal.emit_projected_overruns()", 0, NULL, NULL);
}

/* Drop events older than aos_cus.webhook_retention that no endpoint still has pending (their deliveries go with them). */
static void
prune(void)
{
	Oid			types[1] = {INT4OID};
	Datum		args[1];

	args[0] = Int32GetDatum(aos_cus_webhook_retention_s);
	run_maintenance("aos_cus webhook worker: pruning old events",
					"DELETE FROM aos_cus.cus_webhook_events e"
					" WHERE e.created_at OPERATOR(pg_catalog.<) (pg_catalog.now() OPERATOR(pg_catalog.-) pg_catalog.make_interval(secs => $1))"
					" AND NOT EXISTS (SELECT FROM aos_cus.cus_webhook_deliveries d"
					"   WHERE d.tenant_id OPERATOR(pg_catalog.=) e.tenant_id AND d.event_seq OPERATOR(pg_catalog.=) e.id"
					"   AND d.status OPERATOR(pg_catalog.=) 'pending')",
					1, types, args);
}

/* Worker entry point: loop until SIGTERM or postmaster death. */
void
aos_cus_webhook_worker_main(Datum arg)
{
	TimestampTz next_projection = 0;
	TimestampTz next_prune = 0;

	aos_cus_worker_connect(aos_cus_health_database);

	batch_cxt = AllocSetContextCreate(TopMemoryContext, "aos_cus webhook batch", ALLOCSET_DEFAULT_SIZES);
	aos_cus_health_curl_init();
	multi = curl_multi_init();
	if (multi == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("aos_cus webhook worker: could not create a curl multi handle")));
	before_shmem_exit(clear_latch, 0);
	aos_cus_webhooks_set_worker_latch(MyLatch);
	pgstat_report_activity(STATE_IDLE, NULL);
	ereport(LOG, (errmsg("aos_cus webhook worker started in database \"%s\"", aos_cus_health_database)));

	for (;;)
	{
		long		wait_ms;
		int			rc;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
			next_projection = next_prune = 0;	/* new settings apply at once */
		}
		if (aos_cus_webhook_projection_interval_s > 0 && GetCurrentTimestamp() >= next_projection)
		{
			project();
			next_projection = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
														  (int64) aos_cus_webhook_projection_interval_s * 1000);
		}
		if (aos_cus_webhook_retention_s > 0 && GetCurrentTimestamp() >= next_prune)
		{
			prune();
			next_prune = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), PRUNE_INTERVAL_MS);
		}
		wait_ms = claim();
		if (n_deliveries > 0)
		{
			deliver();
			continue;
		}
		if (aos_cus_webhook_projection_interval_s > 0)
			wait_ms = Max(1, Min(wait_ms, TimestampDifferenceMilliseconds(GetCurrentTimestamp(), next_projection)));
		rc = WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, wait_ms, PG_WAIT_EXTENSION);
		if (rc & WL_LATCH_SET)
			ResetLatch(MyLatch);
	}
}
