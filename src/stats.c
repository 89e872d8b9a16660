/*
 * stats.c: event counters in shared memory.
 *
 * Locking: none. Each counter is a pg_atomic_uint64 added to with
 * pg_atomic_fetch_add_u64 and read with pg_atomic_read_u64; readers may see
 * one counter a moment ahead of another, never a torn value. The array is
 * created once in the postmaster under AddinShmemInitLock. Counters are not
 * durable: they restart from zero with the server (or aos_cus.stat_reset()),
 * as Prometheus expects.
 */
#include "aos_cus.h"
#include "stats.h"
#include "tenancy.h"

#include "fmgr.h"
#include "funcapi.h"
#include "port/atomics.h"
#include "storage/shmem.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

typedef struct AosCusStats
{
	TimestampTz reset_at;
	pg_atomic_uint64 counters[AOS_STAT_COUNT];
} AosCusStats;

static AosCusStats *stats = NULL;

static const char *const stat_names[AOS_STAT_COUNT] = {
	"ingest_inserted",
	"ingest_duplicate",
	"ingest_rejected",
	"ingest_unpriced",
	"credential_encrypted",
	"credential_decrypted",
	"credential_decrypt_failed",
	"health_probes",
	"health_probes_healthy",
	"health_probes_degraded",
	"health_probes_failing",
	"health_checks_queued",
	"health_worker_paused",
};

PG_FUNCTION_INFO_V1(aos_cus_stat_counters);

/* Bytes of shared memory the counters need. */
Size
aos_cus_stats_shmem_size(void)
{
	return MAXALIGN(sizeof(AosCusStats));
}

/* Create or attach the counters. */
void
aos_cus_stats_shmem_init(void)
{
	bool		found;

	stats = ShmemInitStruct("aos_cus stats", sizeof(AosCusStats), &found);
	if (!found)
	{
		stats->reset_at = GetCurrentTimestamp();
		for (int i = 0; i < AOS_STAT_COUNT; i++)
			pg_atomic_init_u64(&stats->counters[i], 0);
	}
}

/* Add n to a counter. */
void
aos_cus_stat_add(AosCusStat which, uint64 n)
{
	if (stats != NULL)
		pg_atomic_fetch_add_u64(&stats->counters[which], n);
}

/* Name of a counter. */
const char *
aos_cus_stat_name(AosCusStat which)
{
	return stat_names[which];
}

/* Current value of a counter. */
uint64
aos_cus_stat_get(AosCusStat which)
{
	aos_cus_require_preload();
	return pg_atomic_read_u64(&stats->counters[which]);
}

/* Zero every counter; an add racing with the reset lands before or after it, never torn. */
void
aos_cus_stats_reset(void)
{
	aos_cus_require_preload();
	for (int i = 0; i < AOS_STAT_COUNT; i++)
		pg_atomic_write_u64(&stats->counters[i], 0);
	stats->reset_at = GetCurrentTimestamp();
}

/* SQL stat_counters(): one row (name, value) per counter. */
Datum
aos_cus_stat_counters(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	aos_cus_require_preload();
	aos_cus_assert_no_tenant("aos_cus.stat_counters()");
	InitMaterializedSRF(fcinfo, 0);
	for (int i = 0; i < AOS_STAT_COUNT; i++)
	{
		Datum		values[2];
		bool		nulls[2] = {false, false};

		values[0] = CStringGetTextDatum(stat_names[i]);
		values[1] = Int64GetDatum((int64) pg_atomic_read_u64(&stats->counters[i]));
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
