/*
 * Woken background workers (see worker_wake.h): one registration, one latch slot and one commit callback for
 * every worker that a committing transaction wakes.
 */
#include "postgres.h"

#include "access/xact.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/shmem.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"

#include "worker_wake.h"

/* Register the worker (restarted after 5 s, started when recovery has finished). */
void
aos_cus_worker_register(const char *function, const char *name)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = 5;
	strlcpy(worker.bgw_library_name, "aos_cus", BGW_MAXLEN);
	strlcpy(worker.bgw_function_name, function, BGW_MAXLEN);
	strlcpy(worker.bgw_name, name, BGW_MAXLEN);
	strlcpy(worker.bgw_type, name, BGW_MAXLEN);
	RegisterBackgroundWorker(&worker);
}

/* In the worker: reload on SIGHUP, exit on SIGTERM, connect, and fix search_path. */
void
aos_cus_worker_connect(const char *database)
{
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(database, NULL, 0);
	/* The worker runs as the bootstrap superuser: nothing from a schema of a database user may run in it. */
	SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_SUSET, PGC_S_OVERRIDE);
}

/* Bytes of shared memory for one worker's latch. */
Size
aos_cus_worker_wake_shmem_size(void)
{
	return MAXALIGN(sizeof(AosWakeShared));
}

/* Create or attach the worker's latch slot (under AddinShmemInitLock). */
void
aos_cus_worker_wake_shmem_init(AosWorkerWake *wake)
{
	bool		found;

	wake->shared = ShmemInitStruct(wake->shmem_name, sizeof(AosWakeShared), &found);
	if (!found)
	{
		SpinLockInit(&wake->shared->mutex);
		wake->shared->latch = NULL;
	}
}

/* Publish or clear the worker's latch. */
void
aos_cus_worker_wake_set_latch(AosWorkerWake *wake, Latch *latch)
{
	SpinLockAcquire(&wake->shared->mutex);
	wake->shared->latch = latch;
	SpinLockRelease(&wake->shared->mutex);
}

/* At commit, set the worker's latch if this transaction asked for it; an abort forgets the request. */
static void
wake_xact_callback(XactEvent event, void *arg)
{
	AosWorkerWake *wake = (AosWorkerWake *) arg;
	Latch	   *latch;

	if (!wake->pending)
		return;
	if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT)
		wake->pending = false;
	if (event != XACT_EVENT_COMMIT)
		return;
	wake->pending = false;
	if (wake->shared == NULL)
		return;
	SpinLockAcquire(&wake->shared->mutex);
	latch = wake->shared->latch;
	SpinLockRelease(&wake->shared->mutex);
	if (latch != NULL)
		SetLatch(latch);
}

/* Wake the worker when this transaction commits. */
void
aos_cus_worker_wake_at_commit(AosWorkerWake *wake)
{
	if (!wake->registered)
	{
		RegisterXactCallback(wake_xact_callback, wake);
		wake->registered = true;
	}
	wake->pending = true;
}
