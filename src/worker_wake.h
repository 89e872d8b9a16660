/*
 * A background worker that transactions wake at commit (health checks, webhook deliveries): its registration,
 * its latch in shared memory, and the commit callback that sets it.
 */
#ifndef AOS_CUS_WORKER_WAKE_H
#define AOS_CUS_WORKER_WAKE_H

#include "postgres.h"

#include "storage/latch.h"
#include "storage/spin.h"

/* The worker's latch, in shared memory. */
typedef struct AosWakeShared
{
	slock_t		mutex;
	Latch	   *latch;
} AosWakeShared;

/* One woken worker, as each backend sees it. */
typedef struct AosWorkerWake
{
	const char *shmem_name;		/* name of its shared memory struct */
	AosWakeShared *shared;		/* NULL until attached */
	bool		pending;		/* this transaction asked to wake it at commit */
	bool		registered;		/* the commit callback is registered in this backend */
} AosWorkerWake;

/* Register the background worker whose entry point is function, named name. */
extern void aos_cus_worker_register(const char *function, const char *name);

/* In the worker: its signal handlers, its connection to database, search_path fixed to pg_catalog, pg_temp. */
extern void aos_cus_worker_connect(const char *database);

/* Bytes of shared memory for one worker's latch. */
extern Size aos_cus_worker_wake_shmem_size(void);

/* Create or attach the worker's latch slot (under AddinShmemInitLock). */
extern void aos_cus_worker_wake_shmem_init(AosWorkerWake *wake);

/* Publish (or clear, with NULL) the worker's latch. */
extern void aos_cus_worker_wake_set_latch(AosWorkerWake *wake, Latch *latch);

/* Wake the worker when this transaction commits (never when it aborts). */
extern void aos_cus_worker_wake_at_commit(AosWorkerWake *wake);

#endif
