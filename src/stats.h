/* stats.h: process-wide event counters kept in shared memory (atomics, no lock). */
#ifndef AOS_CUS_STATS_H
#define AOS_CUS_STATS_H

#include "postgres.h"

/* One counter per event kind; names in stats.c follow this order. */
typedef enum AosCusStat
{
	AOS_STAT_INGEST_INSERTED,
	AOS_STAT_INGEST_DUPLICATE,
	AOS_STAT_INGEST_REJECTED,
	AOS_STAT_INGEST_UNPRICED,
	AOS_STAT_CREDENTIAL_ENCRYPTED,
	AOS_STAT_CREDENTIAL_DECRYPTED,
	AOS_STAT_CREDENTIAL_DECRYPT_FAILED,
	AOS_STAT_HEALTH_PROBES,
	AOS_STAT_HEALTH_HEALTHY,
	AOS_STAT_HEALTH_DEGRADED,
	AOS_STAT_HEALTH_FAILING,
	AOS_STAT_HEALTH_CHECKS_QUEUED,
	AOS_STAT_HEALTH_PAUSED,
	AOS_STAT_COUNT
} AosCusStat;

/* Bytes of shared memory the counters need. */
extern Size aos_cus_stats_shmem_size(void);

/* Create or attach the counters (called under AddinShmemInitLock). */
extern void aos_cus_stats_shmem_init(void);

/* Add n to a counter; a no-op when the library was not preloaded. */
extern void aos_cus_stat_add(AosCusStat which, uint64 n);

/* Name of a counter as stat_counters() shows it (metrics() appends _total). */
extern const char *aos_cus_stat_name(AosCusStat which);

/* Current value of a counter (requires preload). */
extern uint64 aos_cus_stat_get(AosCusStat which);

/* Zero every counter and record the time (aos_cus.stat_reset()). */
extern void aos_cus_stats_reset(void);

#endif
