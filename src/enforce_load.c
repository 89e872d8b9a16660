/*
 * enforce_load.c: loading an entry from the durable tables (enforce_internal.h):
 * limits, calendar periods and the period usage read under one snapshot,
 * which scopes of a call have limits, and the lookup that (re)builds stale
 * entries before a decision.
 */

#include "enforce_internal.h"
#include "integrations.h"
#include "policy.h"
#include "prom_text.h"
#include "spi_safe.h"
#include "tenancy.h"
#include "usage_stats.h"
#include "uuid_text.h"
#include "vocab.h"
#include "webhooks.h"

#include "access/htup_details.h"
#include "access/xlog.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "commands/async.h"
#include "commands/trigger.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/ilist.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/lmgr.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/fmgrprotos.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "utils/xid8.h"

/* Prepared statements (kept for the backend's life). */
static SPIPlanPtr limits_plan = NULL;
static SPIPlanPtr limits_plan_0_1 = NULL;
static SPIPlanPtr request_count_plans[4];	/* by AosScopeKind (tenant, integration, subject, tag) */
static SPIPlanPtr usage_plans[4];	/* by AosScopeKind (tenant, integration, subject, tag) */
static SPIPlanPtr rollup_xmin_plan = NULL;
static SPIPlanPtr scope_limits_plan = NULL;
static SPIPlanPtr scope_cfg_plan = NULL;

/* ---------- loading an entry from the durable tables ---------- */

/* Period from its SQL name; 22023 for anything else. */
EnfPeriod
enf_period_from_name(const char *name)
{
	if (strcmp(name, "day") == 0)
		return ENF_PERIOD_DAY;
	if (strcmp(name, "week") == 0)
		return ENF_PERIOD_WEEK;
	if (strcmp(name, "month") == 0)
		return ENF_PERIOD_MONTH;
	if (strcmp(name, "total") == 0)
		return ENF_PERIOD_TOTAL;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("period must be day, week, month or total, not \"%s\"", name)));
	return ENF_PERIOD_TOTAL;		/* keep the compiler quiet */
}

/* date_trunc(unit, ts, zone) through PostgreSQL's own time zone code. */
static TimestampTz
trunc_in_zone(const char *unit, TimestampTz ts, const char *zone)
{
	return DatumGetTimestampTz(DirectFunctionCall3(timestamptz_trunc_zone,
												   CStringGetTextDatum(unit),
												   TimestampTzGetDatum(ts),
												   CStringGetTextDatum(zone)));
}

/*
 * The calendar period containing now in zone: its start is date_trunc in the
 * zone; its end is the start of the next one, found by truncating a point
 * safely inside it (a day is 23-25 hours, a month 28-31 days).
 */
void
enf_period_bounds(EnfPeriod period, const char *zone, TimestampTz now,
				  TimestampTz *start, TimestampTz *end)
{
	static const char *const units[] = {"day", "week", "month"};
	static const int64 steps[] = {26 * USECS_PER_HOUR, 8 * USECS_PER_DAY, 32 * USECS_PER_DAY};

	if (period == ENF_PERIOD_TOTAL)
	{
		TIMESTAMP_NOBEGIN(*start);
		TIMESTAMP_NOEND(*end);
		return;
	}
	*start = trunc_in_zone(units[period], now, zone);
	*end = trunc_in_zone(units[period], *start + steps[period], zone);
}

/*
 * The calendar hour containing now in zone: it starts at date_trunc('hour',
 * now, zone) and ends at the first instant where that value changes. Across
 * DST changes the two differ: at Australia/Lord_Howe's 30-minute fall-back
 * the next hour's date_trunc is 30 minutes before the instant it takes over.
 * An hour lasts at most three hours (Antarctica/Troll shifts by two), so the
 * change is within three hours of now; a binary search finds it to the
 * microsecond.
 */
void
enf_hour_bounds(const char *zone, TimestampTz now, TimestampTz *start, TimestampTz *end)
{
	TimestampTz lo = now;
	TimestampTz hi = now + 3 * USECS_PER_HOUR;

	*start = trunc_in_zone("hour", now, zone);
	while (hi - lo > 1)
	{
		TimestampTz mid = lo + (hi - lo) / 2;

		if (trunc_in_zone("hour", mid, zone) == *start)
			lo = mid;
		else
			hi = mid;
	}
	*end = hi;
}

/* SQL of the tokens row alias counts against token limits: the sum of its aos_cus_bucket_in_total() columns. */
static char *
token_total_sql(const char *alias)
{
	StringInfoData s;

	initStringInfo(&s);
	for (int b = 0; b < AOS_BUCKET_COUNT; b++)
		if (aos_cus_bucket_in_total(b))
			appendStringInfo(&s, "%s%s.%s", s.len > 0 ? " OPERATOR(pg_catalog.+) " : "", alias,
							 aos_cus_token_columns[b]);
	return s.data;
}

/* A usage row not written by this transaction ($5: its xid8, or NULL), which settles it at commit itself. */
#define NOT_OWN_XID(t) \
	"($5 IS NULL OR " t ".ingest_xid OPERATOR(pg_catalog.<>) $5)"

/*
 * Bind what the usage and request count queries share: $1 the tenant, $2 and
 * $6 what the instance matches (the integration's id as text, the subject, or
 * the tag's key and value; NULL otherwise) and $5 this transaction's id (NULL
 * if none). Returns the instance's kind.
 */
static AosScopeKind
bind_scope_params(const EnfKey *key, Datum *values, char *nulls)
{
	FullTransactionId own = GetTopFullTransactionIdIfAny();
	AosScope	sc;

	values[0] = UUIDPGetDatum(&key->tenant);
	nulls[0] = ' ';
	nulls[1] = nulls[5] = 'n';
	if (key->scope[0] == '\0')
	{
		char		id[AOS_UUID_TEXT_LEN + 1];

		aos_cus_uuid_format(key->integration.data, id);
		values[1] = CStringGetTextDatum(id);
		nulls[1] = ' ';
		sc.kind = AOS_SCOPE_INTEGRATION;
	}
	else if (aos_cus_scope_parse(key->scope, &sc) != NULL || sc.kind == AOS_SCOPE_INTEGRATION || sc.wildcard)
		elog(ERROR, "aos_cus: \"%s\" is not a scope instance", key->scope);
	else if (sc.kind == AOS_SCOPE_SUBJECT)
	{
		values[1] = PointerGetDatum(cstring_to_text_with_len(sc.value, sc.value_len));
		nulls[1] = ' ';
	}
	else if (sc.kind == AOS_SCOPE_TAG)
	{
		values[1] = PointerGetDatum(cstring_to_text_with_len(sc.key, sc.key_len));
		values[5] = PointerGetDatum(cstring_to_text_with_len(sc.value, sc.value_len));
		nulls[1] = nulls[5] = ' ';
	}
	values[4] = FullTransactionIdGetDatum(own);
	nulls[4] = FullTransactionIdIsValid(own) ? ' ' : 'n';
	return sc.kind;
}

/*
 * Settled cost and tokens of an integration or scope instance in [from, to),
 * read under snapshot: the rollup of its kind for the whole UTC days inside,
 * plus the usage rows of the partial UTC days at either edge and of the whole
 * days the rollup has not folded yet. Each part reads only its own range ($7
 * and $8 bound the whole days; $9 is the rollup's xmin, below which every row
 * is folded), so the cost follows the rows not yet rolled up, not the table's
 * size, and stays exact once retention has dropped the raw rows of rolled-up
 * days. It is planned for each call's values: only then do the planner's
 * statistics show how few rows are past $9, so that it reads them through
 * the ingest_xid index rather than every row of the period through the
 * tenant's. Rows of this transaction are left to its own settlement.
 */
static void
query_usage(const EnfKey *key, TimestampTz from, TimestampTz to, Snapshot snapshot, int64 *cost, int64 *tokens)
{
#define USAGE_SQL(rollup, rollup_filter, raw_filter) \
	"SELECT LEAST(coalesce(pg_catalog.sum(c), 0), 9223372036854775807)::bigint," /* sums saturate */ \
	"       LEAST(coalesce(pg_catalog.sum(t), 0), 9223372036854775807)::bigint FROM (" \
	"  SELECT d.cost_microcents AS c, %s AS t FROM aos_cus." rollup " d" \
	"   WHERE d.tenant_id OPERATOR(pg_catalog.=) $1 AND " rollup_filter \
	"     AND d.day OPERATOR(pg_catalog.>=) ($7 AT TIME ZONE 'UTC')::pg_catalog.date" \
	"     AND d.day OPERATOR(pg_catalog.<) ($8 AT TIME ZONE 'UTC')::pg_catalog.date" \
	"  UNION ALL" \
	"  SELECT coalesce(u.cost_microcents, 0), %s FROM aos_cus.cus_llm_usage u" \
	"   WHERE u.tenant_id OPERATOR(pg_catalog.=) $1 AND " raw_filter \
	"     AND u.started_at OPERATOR(pg_catalog.>=) $3 AND u.started_at OPERATOR(pg_catalog.<) $7" \
	"     AND " NOT_OWN_XID("u") \
	"  UNION ALL" \
	"  SELECT coalesce(u.cost_microcents, 0), %s FROM aos_cus.cus_llm_usage u" \
	"   WHERE u.tenant_id OPERATOR(pg_catalog.=) $1 AND " raw_filter \
	"     AND u.started_at OPERATOR(pg_catalog.>=) $8 AND u.started_at OPERATOR(pg_catalog.<) $4" \
	"     AND " NOT_OWN_XID("u") \
	"  UNION ALL" \
	"  SELECT coalesce(u.cost_microcents, 0), %s FROM aos_cus.cus_llm_usage u, aos_cus.cus_rollup_state r" \
	"   WHERE u.ingest_xid OPERATOR(pg_catalog.>=) $9" \
	"     AND NOT pg_catalog.pg_visible_in_snapshot(u.ingest_xid, r.last_snapshot)" \
	"     AND u.tenant_id OPERATOR(pg_catalog.=) $1 AND " raw_filter \
	"     AND u.started_at OPERATOR(pg_catalog.>=) $7 AND u.started_at OPERATOR(pg_catalog.<) $8" \
	"     AND " NOT_OWN_XID("u") \
	" ) x"
	static const char *const fmt[4] = {
		USAGE_SQL("cus_usage_daily", "true", "true"),
		USAGE_SQL("cus_usage_daily", "d.integration_id OPERATOR(pg_catalog.=) $2::pg_catalog.uuid",
				  "u.integration_id OPERATOR(pg_catalog.=) $2::pg_catalog.uuid"),
		USAGE_SQL("cus_usage_daily_subject", "d.subject OPERATOR(pg_catalog.=) $2",
				  "u.subject OPERATOR(pg_catalog.=) $2"),
		USAGE_SQL("cus_usage_daily_tag", "d.tag_key OPERATOR(pg_catalog.=) $2 AND d.tag_value OPERATOR(pg_catalog.=) $6",
				  "u.tags OPERATOR(pg_catalog.@>) pg_catalog.jsonb_build_object($2, $6)")
	};
#undef USAGE_SQL
	static const char *xmin_sql =
		"SELECT pg_catalog.pg_snapshot_xmin(r.last_snapshot) FROM aos_cus.cus_rollup_state r";
	Oid			types[9] = {UUIDOID, TEXTOID, TIMESTAMPTZOID, TIMESTAMPTZOID, XID8OID, TEXTOID,
		TIMESTAMPTZOID, TIMESTAMPTZOID, XID8OID};
	Datum		values[9];
	char		nulls[9] = {' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};
	char	   *sql = NULL;
	AosScopeKind kind = bind_scope_params(key, values, nulls);
	TimestampTz d1,
				d2;
	bool		isnull;
	int			rc;

	rc = SPI_execute_snapshot(aos_cus_keep_plan(&rollup_xmin_plan, xmin_sql, 0, NULL), NULL, NULL,
							  snapshot, InvalidSnapshot, true, false, 1);
	if (rc != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "aos_cus: rollup state query failed: %s", SPI_result_code_string(rc));
	values[8] = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	aos_cus_whole_utc_days(from, to, &d1, &d2);
	values[2] = TimestampTzGetDatum(from);
	values[3] = TimestampTzGetDatum(to);
	values[6] = TimestampTzGetDatum(d1);
	values[7] = TimestampTzGetDatum(d2);
	if (usage_plans[kind] == NULL)
		sql = psprintf(fmt[kind], token_total_sql("d"), token_total_sql("u"), token_total_sql("u"), token_total_sql("u"));
	rc = SPI_execute_snapshot(aos_cus_keep_plan_opts(&usage_plans[kind], sql, 9, types, CURSOR_OPT_CUSTOM_PLAN),
							  values, nulls,
							  snapshot, InvalidSnapshot, true, false, 1);
	if (rc != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "aos_cus: usage query failed: %s", SPI_result_code_string(rc));
	*cost = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	*tokens = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
}

/*
 * Requests of an integration or scope instance in its hour and its day: its
 * usage rows whose started_at is in each, under snapshot (rows of this
 * transaction left out, as in query_usage).
 */
static void
query_request_counts(const EnfKey *key, TimestampTz hour_start, TimestampTz hour_end, TimestampTz day_start,
					 TimestampTz day_end, Snapshot snapshot, int64 *hour, int64 *day)
{
#define REQUEST_COUNT_SQL(filter) \
	"SELECT pg_catalog.count(*) FILTER (WHERE u.started_at OPERATOR(pg_catalog.>=) $3" \
	"                                     AND u.started_at OPERATOR(pg_catalog.<) $4)," \
	"       pg_catalog.count(*) FILTER (WHERE u.started_at OPERATOR(pg_catalog.>=) $7" \
	"                                     AND u.started_at OPERATOR(pg_catalog.<) $8)" \
	"  FROM aos_cus.cus_llm_usage u" \
	" WHERE u.tenant_id OPERATOR(pg_catalog.=) $1" \
	"   AND u.started_at OPERATOR(pg_catalog.>=) LEAST($3, $7) AND u.started_at OPERATOR(pg_catalog.<) GREATEST($4, $8)" \
	"   AND " NOT_OWN_XID("u") " AND " filter
	static const char *const sql[4] = {
		REQUEST_COUNT_SQL("($2 IS NULL AND $6 IS NULL)"),
		REQUEST_COUNT_SQL("u.integration_id OPERATOR(pg_catalog.=) $2::pg_catalog.uuid AND $6 IS NULL"),
		REQUEST_COUNT_SQL("u.subject OPERATOR(pg_catalog.=) $2 AND $6 IS NULL"),
		REQUEST_COUNT_SQL("u.tags OPERATOR(pg_catalog.@>) pg_catalog.jsonb_build_object($2, $6)")
	};
#undef REQUEST_COUNT_SQL
	Oid			types[8] = {UUIDOID, TEXTOID, TIMESTAMPTZOID, TIMESTAMPTZOID, XID8OID, TEXTOID,
		TIMESTAMPTZOID, TIMESTAMPTZOID};
	Datum		values[8];
	char		nulls[8] = {' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};
	AosScopeKind kind = bind_scope_params(key, values, nulls);
	bool		isnull;
	int			rc;

	values[2] = TimestampTzGetDatum(hour_start);
	values[3] = TimestampTzGetDatum(hour_end);
	values[6] = TimestampTzGetDatum(day_start);
	values[7] = TimestampTzGetDatum(day_end);
	rc = SPI_execute_snapshot(aos_cus_keep_plan(&request_count_plans[kind], sql[kind], 8, types), values, nulls,
							  snapshot, InvalidSnapshot, true, false, 1);
	if (rc != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "aos_cus: request count query failed: %s", SPI_result_code_string(rc));
	*hour = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	*day = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
}

/* The scope of cus_scope_limits whose limits apply to a scope instance: its own row, else its kind's wildcard. */
static void
scope_pattern(const char *instance, char *pattern)
{
	AosScope	sc;

	strlcpy(pattern, instance, AOS_SCOPE_TEXT_MAX + 1);
	if (aos_cus_scope_parse(instance, &sc) != NULL || sc.wildcard)
		return;
	if (sc.kind == AOS_SCOPE_SUBJECT)
		strlcpy(pattern, "subject:*", AOS_SCOPE_TEXT_MAX + 1);
	else if (sc.kind == AOS_SCOPE_TAG)
		snprintf(pattern, AOS_SCOPE_TEXT_MAX + 1, "tag:%.*s=*", (int) sc.key_len, sc.key);
}

/* Everything a load computes before it stores into the entry. */
typedef struct EnfLoaded
{
	EnfLimits	lim;
	TimestampTz budget_start,
				budget_end,
				token_start,
				token_end;
	TimestampTz hour_start,
				hour_end,
				day_start,
				day_end;
	int64		spent;
	int64		tokens;
	int64		hour_requests;	/* usage rows in the hour and the day (rph, rpd set) */
	int64		day_requests;
} EnfLoaded;

/* Read the limits row and the period usage under one fresh snapshot. */
static void
read_durable_state(const EnfKey *key, TimestampTz now, EnfLoaded *out)
{
	static const char *sql =
		"SELECT status, budget_microcents, budget_period::pg_catalog.text, token_limit, token_period::pg_catalog.text,"
		"       rpm, tpm, warn_at_pct, enforcement_mode, timezone, rph, rpd"
		"  FROM aos_cus.cus_integrations WHERE tenant_id OPERATOR(pg_catalog.=) $1 AND id OPERATOR(pg_catalog.=) $2";
	/* A 0.1.0 schema (not yet updated) has no rph and rpd. */
	static const char *sql_0_1 =
		"SELECT status, budget_microcents, budget_period::pg_catalog.text, token_limit, token_period::pg_catalog.text,"
		"       rpm, tpm, warn_at_pct, enforcement_mode, timezone, NULL::integer, NULL::integer"
		"  FROM aos_cus.cus_integrations WHERE tenant_id OPERATOR(pg_catalog.=) $1 AND id OPERATOR(pg_catalog.=) $2";
	/* A scope instance's own row first, else its kind's wildcard row. */
	static const char *scope_sql =
		"SELECT 'enabled'::pg_catalog.text, budget_microcents, budget_period::pg_catalog.text, token_limit,"
		"       token_period::pg_catalog.text, rpm, tpm, warn_at_pct, enforcement_mode, timezone, rph, rpd"
		"  FROM aos_cus.cus_scope_limits WHERE tenant_id OPERATOR(pg_catalog.=) $1"
		"   AND (scope OPERATOR(pg_catalog.=) $2 OR scope OPERATOR(pg_catalog.=) $3)"
		" ORDER BY scope OPERATOR(pg_catalog.=) $2 DESC LIMIT 1";
	Oid			types[2] = {UUIDOID, UUIDOID};
	Oid			scope_types[3] = {UUIDOID, TEXTOID, TEXTOID};
	Datum		values[3];
	bool		is_scope = key->scope[0] != '\0';
	AosElevation elevation;
	Snapshot	snapshot;
	int			rc;

	memset(out, 0, sizeof(*out));
	out->lim.budget = out->lim.token_limit = out->lim.rpm = out->lim.tpm = out->lim.rph = out->lim.rpd = -1;
	TIMESTAMP_NOBEGIN(out->budget_start);
	TIMESTAMP_NOEND(out->budget_end);
	out->token_start = out->hour_start = out->day_start = out->budget_start;
	out->token_end = out->hour_end = out->day_end = out->budget_end;

	aos_cus_elevate(&elevation);
	SPI_connect();
	/* Latest snapshot, not the transaction's: a repeatable-read caller must still see every commit. */
	snapshot = RegisterSnapshot(GetLatestSnapshot());
	values[0] = UUIDPGetDatum(&key->tenant);
	if (is_scope)
	{
		char		pattern[AOS_SCOPE_TEXT_MAX + 1];

		scope_pattern(key->scope, pattern);
		values[1] = CStringGetTextDatum(key->scope);
		values[2] = CStringGetTextDatum(pattern);
		rc = SPI_execute_snapshot(aos_cus_keep_plan(&scope_limits_plan, scope_sql, 3, scope_types), values, NULL,
								  snapshot, InvalidSnapshot, true, false, 1);
	}
	else
	{
		bool		quotas = get_attnum(get_relname_relid("cus_integrations", get_namespace_oid("aos_cus", false)),
										"rph") != InvalidAttrNumber;

		values[1] = UUIDPGetDatum(&key->integration);
		rc = SPI_execute_snapshot(quotas ? aos_cus_keep_plan(&limits_plan, sql, 2, types) :
								  aos_cus_keep_plan(&limits_plan_0_1, sql_0_1, 2, types), values, NULL,
								  snapshot, InvalidSnapshot, true, false, 1);
	}
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "aos_cus: limits query failed: %s", SPI_result_code_string(rc));
	if (SPI_processed == 1)
	{
		HeapTuple	row = SPI_tuptable->vals[0];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		char	   *status = SPI_getvalue(row, desc, 1);
		char	   *mode = SPI_getvalue(row, desc, 9);
		char	   *zone = SPI_getvalue(row, desc, 10);
		bool		isnull;
		Datum		d;

		out->lim.found = strcmp(status, "deleted") != 0;
		out->lim.enabled = strcmp(status, "enabled") == 0;
		out->lim.mode = strcmp(mode, "warn") == 0 ? AOS_MODE_WARN :
			strcmp(mode, "off") == 0 ? AOS_MODE_OFF : AOS_MODE_ENFORCE;
		d = SPI_getbinval(row, desc, 2, &isnull);
		if (!isnull)
			out->lim.budget = DatumGetInt64(d);
		d = SPI_getbinval(row, desc, 4, &isnull);
		if (!isnull)
			out->lim.token_limit = DatumGetInt64(d);
		d = SPI_getbinval(row, desc, 6, &isnull);
		if (!isnull)
			out->lim.rpm = DatumGetInt32(d);
		d = SPI_getbinval(row, desc, 7, &isnull);
		if (!isnull)
			out->lim.tpm = DatumGetInt64(d);
		d = SPI_getbinval(row, desc, 11, &isnull);
		if (!isnull)
			out->lim.rph = DatumGetInt32(d);
		d = SPI_getbinval(row, desc, 12, &isnull);
		if (!isnull)
			out->lim.rpd = DatumGetInt32(d);
		out->lim.warn_pct = DatumGetInt16(SPI_getbinval(row, desc, 8, &isnull));
		/* Without rph and rpd the hour and day are unbounded: they neither count nor expire the entry. */
		if (out->lim.rph >= 0 || out->lim.rpd >= 0)
		{
			enf_hour_bounds(zone, now, &out->hour_start, &out->hour_end);
			enf_period_bounds(ENF_PERIOD_DAY, zone, now, &out->day_start, &out->day_end);
		}
		enf_period_bounds(enf_period_from_name(SPI_getvalue(row, desc, 3)), zone, now,
						  &out->budget_start, &out->budget_end);
		enf_period_bounds(enf_period_from_name(SPI_getvalue(row, desc, 5)), zone, now,
						  &out->token_start, &out->token_end);
		if (out->lim.found)
		{
			query_usage(key, out->budget_start, out->budget_end, snapshot, &out->spent, &out->tokens);
			if (out->token_start != out->budget_start || out->token_end != out->budget_end)
			{
				int64		unused_cost;

				query_usage(key, out->token_start, out->token_end, snapshot, &unused_cost, &out->tokens);
			}
			if (out->lim.rph >= 0 || out->lim.rpd >= 0)
				query_request_counts(key, out->hour_start, out->hour_end, out->day_start, out->day_end, snapshot,
									 &out->hour_requests, &out->day_requests);
		}
	}
	UnregisterSnapshot(snapshot);
	SPI_finish();
	aos_cus_unelevate(&elevation);
}

/* Alert flags already earned by usage found at load time (not announced again). */
uint8
enf_reached_flags(int64 used, int64 limit, int warn_pct)
{
	uint8		flags = 0;

	if (limit < 0)
		return 0;
	if (aos_cus_reached_pct(used, limit, warn_pct))
		flags |= ENF_ALERT_WARN;
	if (aos_cus_reached_pct(used, limit, 100))
		flags |= ENF_ALERT_FULL;
	return flags;
}

/* What load_entry did. */
typedef enum EnfLoad
{
	ENF_LOAD_STORED,			/* the entry is (re)built */
	ENF_LOAD_BUSY,				/* a commit holds the stripe: the cached entry stays as it is */
	ENF_LOAD_UNKNOWN			/* no such integration and no entry: nothing stored */
} EnfLoad;

/*
 * Store in e what read_durable_state found: limits, periods, settled spend and
 * tokens, and the requests of the hour and day (usage rows plus e's live
 * reservations; in the same period never fewer than e already counted). The
 * caller holds e->mutex or owns e.
 */
static void
store_loaded(EnfEntry *e, const EnfLoaded *l)
{
	int64		hour = sat_add(l->hour_requests, e->nreservations);
	int64		day = sat_add(l->day_requests, e->nreservations);

	e->hour_requests = e->hour_start == l->hour_start ? Max(hour, e->hour_requests) : hour;
	e->day_requests = e->day_start == l->day_start ? Max(day, e->day_requests) : day;
	e->lim = l->lim;
	e->budget_start = l->budget_start;
	e->budget_end = l->budget_end;
	e->token_start = l->token_start;
	e->token_end = l->token_end;
	e->spent = l->spent;
	e->tokens = l->tokens;
	e->hour_start = l->hour_start;
	e->hour_end = l->hour_end;
	e->day_start = l->day_start;
	e->day_end = l->day_end;
}

/*
 * (Re)build the entry of key from the durable tables. The stripe's
 * ExclusiveLock, tried without waiting, keeps commits of usage of this
 * integration out between the snapshot and the store. When a commit holds it,
 * a cached entry is kept; a missing one is stored from the query anyway but
 * marked stale (limits_version 0), so its next use rebuilds it.
 */
static EnfLoad
load_entry(const EnfKey *key, TimestampTz now, bool cached)
{
	LOCKTAG		tag;
	EnfLoaded	l;
	uint64		version;
	EnfEntry   *e;
	bool		locked;
	bool		rate;

	enf_stripe_locktag(&tag, enf_stripe_of(key));
	/* Lock rule 1 (enforce_internal.h). */
	locked = LockAcquire(&tag, ExclusiveLock, false, true) != LOCKACQUIRE_NOT_AVAIL;
	if (!locked && cached)
		return ENF_LOAD_BUSY;
	version = locked ? pg_atomic_read_u64(&enf->limits_version) : 0;
	read_durable_state(key, now, &l);

	/* Lock rule 2 (enforce_internal.h). */
	LWLockAcquire(enf->lock, LW_EXCLUSIVE);
	e = hash_search(enf_hash, key, HASH_FIND, NULL);
	if (e == NULL && !l.lim.found)
	{
		LWLockRelease(enf->lock);
		if (locked)
			LockRelease(&tag, ExclusiveLock, false);
		return ENF_LOAD_UNKNOWN;
	}
	if (e == NULL)
		e = enf_create_entry(key, now);
	/* Lock rule 4 (enforce_internal.h). */
	SpinLockAcquire(&e->mutex);
	if (e->budget_start != l.budget_start)
		e->budget_alerts = enf_reached_flags(l.spent + e->reserved_cost, l.lim.budget, l.lim.warn_pct);
	if (e->token_start != l.token_start)
		e->token_alerts = enf_reached_flags(l.tokens + e->reserved_tokens, l.lim.token_limit, l.lim.warn_pct);
	store_loaded(e, &l);
	e->limits_version = version;
	e->last_used = now;
	SpinLockRelease(&e->mutex);
	/* Limits with or without a rate decide which lists it is in. */
	rate = l.lim.rpm >= 0 || l.lim.tpm >= 0 || l.lim.rph >= 0 || l.lim.rpd >= 0;
	if (e->lru_rate != rate && e->lru_linked)
	{
		enf_lru_unlink(e);
		e->lru_rate = rate;
		enf_lru_link(e);
	}
	e->lru_rate = rate;
	LWLockRelease(enf->lock);
	if (locked)
		LockRelease(&tag, ExclusiveLock, false);
	pg_atomic_fetch_add_u64(&enf->kind_rebuilds[enf_key_kind(key)], 1);
	return ENF_LOAD_STORED;
}

/*
 * Backend-local: which scopes of recently used tenants have limits, for one
 * limits version. Per tenant, flags for the scopes every call may touch
 * (tenant, subject:*) and whether it has any other subject or tag row; those
 * other rows are in scope_cfg, looked up only when the tenant has some.
 */
typedef struct ScopeCfgTenant
{
	pg_uuid_t	tenant;			/* hash key: must be first */
	bool		tenant_scope;	/* a "tenant" row */
	bool		any_subject;	/* a "subject:*" row */
	bool		subject_rows;	/* a "subject:<value>" row */
	bool		tag_rows;		/* a "tag:..." row (a value or a wildcard) */
} ScopeCfgTenant;

typedef struct ScopeCfgKey
{
	pg_uuid_t	tenant;
	char		scope[AOS_SCOPE_TEXT_MAX + 1];
} ScopeCfgKey;

#define SCOPE_CFG_MAX 65536
static HTAB *scope_cfg_tenants = NULL;
static HTAB *scope_cfg = NULL;
static uint64 scope_cfg_version = 0;

/* Hash of a ScopeCfgKey: the tenant and the scope's text up to its NUL, not the whole padded array. */
static uint32
scope_cfg_hash(const void *key, Size keysize)
{
	const ScopeCfgKey *k = (const ScopeCfgKey *) key;

	return hash_combine(hash_bytes(k->tenant.data, sizeof(k->tenant.data)),
						hash_bytes((const unsigned char *) k->scope, strlen(k->scope)));
}

/* 0 when two ScopeCfgKeys are equal (dynahash's match convention). */
static int
scope_cfg_match(const void *a, const void *b, Size keysize)
{
	const ScopeCfgKey *x = (const ScopeCfgKey *) a;
	const ScopeCfgKey *y = (const ScopeCfgKey *) b;

	return memcmp(&x->tenant, &y->tenant, sizeof(x->tenant)) != 0 || strcmp(x->scope, y->scope) != 0;
}

/* Find or add (tenant, scope) in scope_cfg; a lookup reads the key only up to the scope's NUL. */
static bool
scope_cfg_lookup(const pg_uuid_t *tenant, const char *scope, HASHACTION action)
{
	ScopeCfgKey k;

	if (action == HASH_ENTER)
		memset(&k, 0, sizeof(k));
	k.tenant = *tenant;
	strlcpy(k.scope, scope, sizeof(k.scope));
	return hash_search(scope_cfg, &k, action, NULL) != NULL;
}

/* Note one cus_scope_limits row of t: a flag for tenant and subject:*, and the others in scope_cfg. */
static void
scope_cfg_add(ScopeCfgTenant *t, const char *scope)
{
	if (strcmp(scope, "tenant") == 0)
		t->tenant_scope = true;
	else if (strcmp(scope, "subject:*") == 0)
		t->any_subject = true;
	else
	{
		if (strncmp(scope, "subject:", 8) == 0)
			t->subject_rows = true;
		else if (strncmp(scope, "tag:", 4) == 0)
			t->tag_rows = true;
		scope_cfg_lookup(&t->tenant, scope, HASH_ENTER);
	}
}

/* tenant's scopes with limits as of the current limits version (read again on every call on a standby). */
static const ScopeCfgTenant *
load_scope_cfg(const pg_uuid_t *tenant)
{
	static const char *sql =
		"SELECT scope FROM aos_cus.cus_scope_limits WHERE tenant_id OPERATOR(pg_catalog.=) $1";
	uint64		version = pg_atomic_read_u64(&enf->limits_version);
	Oid			types[1] = {UUIDOID};
	Datum		values[1];
	AosElevation elevation;
	Snapshot	snapshot;
	ScopeCfgTenant *t;
	bool		found;

	if (scope_cfg == NULL || version != scope_cfg_version || RecoveryInProgress() ||
		hash_get_num_entries(scope_cfg) + hash_get_num_entries(scope_cfg_tenants) >= SCOPE_CFG_MAX)
	{
		HASHCTL		ctl;

		if (scope_cfg != NULL)
		{
			hash_destroy(scope_cfg);
			hash_destroy(scope_cfg_tenants);
		}
		ctl.keysize = sizeof(ScopeCfgKey);
		ctl.entrysize = sizeof(ScopeCfgKey);
		ctl.hash = scope_cfg_hash;
		ctl.match = scope_cfg_match;
		scope_cfg = hash_create("aos_cus scopes with limits", 64, &ctl, HASH_ELEM | HASH_FUNCTION | HASH_COMPARE);
		ctl.keysize = sizeof(pg_uuid_t);
		ctl.entrysize = sizeof(ScopeCfgTenant);
		scope_cfg_tenants = hash_create("aos_cus tenants' scopes with limits", 64, &ctl, HASH_ELEM | HASH_BLOBS);
		scope_cfg_version = version;
	}
	t = hash_search(scope_cfg_tenants, tenant, HASH_FIND, NULL);
	if (t != NULL)
		return t;
	/* A 0.1.0 schema (not yet updated) has no scopes. */
	if (!OidIsValid(get_relname_relid("cus_scope_limits", get_namespace_oid("aos_cus", false))))
	{
		t = hash_search(scope_cfg_tenants, tenant, HASH_ENTER, &found);
		t->tenant_scope = t->any_subject = t->subject_rows = t->tag_rows = false;
		return t;
	}
	aos_cus_elevate(&elevation);
	SPI_connect();
	snapshot = RegisterSnapshot(GetLatestSnapshot());
	values[0] = UUIDPGetDatum(tenant);
	if (SPI_execute_snapshot(aos_cus_keep_plan(&scope_cfg_plan, sql, 1, types), values, NULL,
							 snapshot, InvalidSnapshot, true, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "aos_cus: scope limits query failed");
	/* Entered only after the query: an error above leaves no half-loaded tenant. */
	t = hash_search(scope_cfg_tenants, tenant, HASH_ENTER, &found);
	t->tenant_scope = t->any_subject = t->subject_rows = t->tag_rows = false;
	for (uint64 i = 0; i < SPI_processed; i++)
		scope_cfg_add(t, SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1));
	UnregisterSnapshot(snapshot);
	SPI_finish();
	aos_cus_unelevate(&elevation);
	return t;
}

/* The keys of the scope instances req touches that have limits: its integration, then tenant, subject, tags. */
int
enf_request_scopes(const EnfRequest *req, EnfKey *keys)
{
	const pg_uuid_t *tenant = &req->key.tenant;
	const ScopeCfgTenant *t = load_scope_cfg(tenant);
	char		scope[AOS_SCOPE_TEXT_MAX + 1];
	char		pattern[AOS_SCOPE_TEXT_MAX + 1];
	int			n = 1;

	keys[0] = req->key;
	if (t->tenant_scope)
		enf_scope_key(&keys[n++], tenant, "tenant");
	if (req->subject != NULL && (t->any_subject || t->subject_rows))
	{
		enf_subject_scope(scope, req->subject);
		if (t->any_subject || scope_cfg_lookup(tenant, scope, HASH_FIND))
			enf_scope_key(&keys[n++], tenant, scope);
	}
	for (int i = 0; i < req->ntags && t->tag_rows; i++)
	{
		enf_tag_scope(scope, &req->tags[i]);
		scope_pattern(scope, pattern);
		if (scope_cfg_lookup(tenant, scope, HASH_FIND) || scope_cfg_lookup(tenant, pattern, HASH_FIND))
			enf_scope_key(&keys[n++], tenant, scope);
	}
	return n;
}

/* The entries a hot standby decides and reads on: this backend's, rebuilt on every call. */
static EnfEntry standby_entries[ENF_MAX_SCOPES];

/*
 * Rebuild standby entries for keys from the replayed tables and return them
 * with enf->lock held shared, as enf_fresh_entries does.
 */
static int
standby_fresh_entries(EnfKey *keys, int n, TimestampTz now, EnfEntry **entries)
{
	int			m = 0;

	for (int i = 0; i < n; i++)
	{
		EnfLoaded	l;
		EnfEntry   *e = &standby_entries[m];

		read_durable_state(&keys[i], now, &l);
		if (!l.lim.found)
		{
			if (i == 0)
				return 0;
			continue;
		}
		memset(e, 0, sizeof(*e));
		e->key = keys[i];
		SpinLockInit(&e->mutex);
		store_loaded(e, &l);
		e->last_used = now;
		keys[m] = keys[i];
		entries[m++] = e;
	}
	/* Lock rule 2 (enforce_internal.h). */
	LWLockAcquire(enf->lock, LW_SHARED);
	return m;
}

/*
 * Look up every key and return the entries with enf->lock held shared,
 * loading each first when missing or stale; 0 (no lock held) for an
 * integration (keys[0]) that does not exist. A scope whose limits are gone
 * is dropped from keys (the count returned is the rest). A stale entry whose
 * reload meets a commit in progress is used as it is: the reload happens on
 * a later call. On a hot standby entries are backend-local and rebuilt on
 * every call (see enforce_internal.h).
 */
int
enf_fresh_entries(EnfKey *keys, int n, TimestampTz now, EnfEntry **entries)
{
	bool		loaded[ENF_MAX_SCOPES];
	int			loads = 0;

	if (RecoveryInProgress())
		return standby_fresh_entries(keys, n, now, entries);
	memset(loaded, 0, sizeof(loaded));
	for (;;)
	{
		uint64		version = pg_atomic_read_u64(&enf->limits_version);
		int			need = -1;
		bool		cached = false;

		/* Lock rule 2 (enforce_internal.h). */
		LWLockAcquire(enf->lock, LW_SHARED);
		for (int i = 0; i < n && need < 0; i++)
		{
			EnfEntry   *e = hash_search(enf_hash, &keys[i], HASH_FIND, NULL);
			bool		stale = true;

			/* Lock rule 4's exception (enforce_internal.h): the version and period ends, read with (2) held shared. */
			if (e != NULL)
				stale = e->limits_version != version || now >= e->budget_end || now >= e->token_end ||
					now >= e->hour_end || now >= e->day_end;
			if (e != NULL && (!stale || loaded[i]))
				entries[i] = e;
			else
			{
				need = i;
				cached = e != NULL;
			}
		}
		if (need < 0)
			return n;
		LWLockRelease(enf->lock);
		/* Loading one scope may evict another of the same call only when the tenant's quota is below its scopes. */
		if (++loads > 4 * n + 4)
			ereport(ERROR,
					(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
					 errmsg("aos_cus.max_integrations_per_tenant (%d) cannot hold the %d scopes of one call",
							Min(enf_max_integrations_per_tenant, enf_max_integrations), n)));
		switch (load_entry(&keys[need], now, cached))
		{
			case ENF_LOAD_UNKNOWN:
				if (need == 0)
					return 0;
				/* Its limits were deleted: the scope no longer applies. */
				memmove(&keys[need], &keys[need + 1], (n - need - 1) * sizeof(EnfKey));
				memmove(&loaded[need], &loaded[need + 1], (n - need - 1) * sizeof(bool));
				n--;
				break;
			case ENF_LOAD_STORED:
			case ENF_LOAD_BUSY:
				loaded[need] = true;	/* the next lookup takes what is cached */
				break;
		}
	}
}

/* One entry, as enf_fresh_entries returns it; NULL (no lock held) for an integration that does not exist. */
EnfEntry *
enf_fresh_entry(const EnfKey *key, TimestampTz now)
{
	EnfKey		k = *key;
	EnfEntry   *e;

	return enf_fresh_entries(&k, 1, now, &e) == 1 ? e : NULL;
}
