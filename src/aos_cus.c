/*
 * aos_cus.c: module entry point. _PG_init registers every GUC and, when the
 * library is preloaded, the shared-memory request and background workers.
 * Loaded without shared_preload_libraries, the pure functions (cost,
 * estimate, extract) still work; the rest raise aos_cus_require_preload().
 */
#include "aos_cus.h"
#include "credentials.h"
#include "egress_curl.h"
#include "enforce.h"
#include "health.h"
#include "metrics.h"
#include "pricing.h"
#include "stats.h"
#include "tenancy.h"
#include "usage_stats.h"
#include "webhooks.h"

#include "catalog/namespace.h"
#include "catalog/partition.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"

PG_MODULE_MAGIC;

bool		aos_cus_preloaded = false;

#if PG_VERSION_NUM >= 150000
static shmem_request_hook_type prev_shmem_request_hook = NULL;
#endif
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

void		_PG_init(void);

/* Shared memory every feature needs, summed in one place. */
static Size
aos_cus_shmem_size(void)
{
	Size		size = 0;

	size = add_size(size, aos_cus_stats_shmem_size());
	size = add_size(size, aos_cus_usage_stats_shmem_size());
	size = add_size(size, aos_cus_enforce_shmem_size());
	size = add_size(size, aos_cus_health_shmem_size());
	size = add_size(size, aos_cus_webhooks_shmem_size());
	return size;
}

/* Ask the postmaster for our shared memory (shmem_request_hook on 15+). */
static void
aos_cus_shmem_request(void)
{
#if PG_VERSION_NUM >= 150000
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
#endif
	RequestAddinShmemSpace(aos_cus_shmem_size());
	aos_cus_usage_stats_shmem_request();
	aos_cus_enforce_shmem_request();
}

/* Attach to (or create) each feature's shared state. */
static void
aos_cus_shmem_startup(void)
{
	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	aos_cus_stats_shmem_init();
	aos_cus_usage_stats_shmem_init();
	aos_cus_enforce_shmem_init();
	aos_cus_health_shmem_init();
	aos_cus_webhooks_shmem_init();
	LWLockRelease(AddinShmemInitLock);
}

/* Raise 55000 naming the setting when shared memory is needed but absent. */
void
aos_cus_require_preload(void)
{
	if (!aos_cus_preloaded)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("aos_cus must be loaded via shared_preload_libraries"),
				 errhint("Add aos_cus to shared_preload_libraries in postgresql.conf and restart the server.")));
}

/* Raise 22004 naming the argument when argument n is NULL. */
void
aos_cus_require_arg(FunctionCallInfo fcinfo, int n, const char *name)
{
	if (PG_ARGISNULL(n))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be null", name)));
}

/* True when name is table or a Citus shard of it ("<table>_<shard id>", which Citus gives the table's triggers). */
static bool
is_table_or_shard(const char *name, const char *table)
{
	size_t		len = strlen(table);

	if (strncmp(name, table, len) != 0)
		return false;
	if (name[len] == '\0')
		return true;
	if (name[len] != '_' || name[len + 1] == '\0')
		return false;
	return strspn(name + len + 1, "0123456789") == strlen(name + len + 1);
}

/* True when rel is a partition of aos_cus.<table> or of its shard (the parent's row triggers fire on partitions). */
static bool
is_partition_of(Relation rel, const char *table)
{
	static Oid	last_partition = InvalidOid;	/* the last partition found, asked again for each row */
	static char last_table[NAMEDATALEN];
	Oid			root;

	if (!rel->rd_rel->relispartition)
		return false;
	if (RelationGetRelid(rel) == last_partition && strcmp(last_table, table) == 0)
		return true;
	root = llast_oid(get_partition_ancestors(RelationGetRelid(rel)));
	if (get_rel_namespace(root) != RelationGetNamespace(rel) || !is_table_or_shard(get_rel_name(root), table))
		return false;
	last_partition = RelationGetRelid(rel);
	strlcpy(last_table, table, sizeof(last_table));
	return true;
}

/* Raise 39P01 naming the function and the table unless fcinfo is a trigger call on aos_cus.<table> (or a shard or
 * partition of it), or on any aos_cus table when table is NULL. */
void
aos_cus_require_trigger_on(FunctionCallInfo fcinfo, const char *fname, const char *table)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	Relation	rel;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("%s must be called as a trigger", fname)));
	rel = td->tg_relation;
	if (RelationGetNamespace(rel) != get_namespace_oid("aos_cus", false) ||
		(table != NULL && !is_table_or_shard(RelationGetRelationName(rel), table) && !is_partition_of(rel, table)))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("%s may only be attached to aos_cus.%s, not to %s", fname, table ? table : "* (its own tables)",
						quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)),
												   RelationGetRelationName(rel)))));
}

/* Module load: GUCs always; shared memory and workers only when preloaded. */
void
_PG_init(void)
{
	if (IsBinaryUpgrade)
		return;

	aos_cus_tenancy_init();
	aos_cus_metrics_init();
	aos_cus_usage_stats_init();
	aos_cus_enforce_init();
	aos_cus_pricing_init();
	aos_cus_credentials_init();
	aos_cus_egress_init();
	aos_cus_health_init();
	aos_cus_webhooks_init();

#if PG_VERSION_NUM >= 150000
	MarkGUCPrefixReserved("aos_cus");
#else
	EmitWarningsOnPlaceholders("aos_cus");
#endif

	if (!process_shared_preload_libraries_in_progress)
		return;
	aos_cus_preloaded = true;

#if PG_VERSION_NUM >= 150000
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = aos_cus_shmem_request;
#else
	aos_cus_shmem_request();
#endif
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = aos_cus_shmem_startup;
	aos_cus_health_register_worker();
	aos_cus_webhooks_register_worker();
}
