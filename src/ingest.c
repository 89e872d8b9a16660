/*
 * ingest.c: ingest_usage() and ingest_usage_batch(), idempotent by
 * (tenant_id, call_id).
 *
 * A record is read from its jsonb once, every field checked in C (22023 or
 * 22003 naming the field), and inserted through plans prepared once per
 * backend. A record claims its key in cus_usage_keys with ON CONFLICT DO
 * NOTHING in the statement that inserts its row; a key already taken sends
 * the record through the usage table's key trigger (usage_keys.c), which
 * takes over a key past the window or skips a duplicate (tenant_id,
 * call_id) as ON CONFLICT DO NOTHING would. When nothing is
 * inserted the existing row is read back through its key: the statement
 * waited for any concurrent inserter of the same call_id, so in READ
 * COMMITTED the winner is committed and visible to the next statement.
 * Cost and price are computed here through the pricing API (the table's
 * trigger, usage_cost.c, prices the same way rows inserted without a cost);
 * other triggers (enforcement) see ordinary inserts.
 *
 * A batch checks every record, then inserts the first valid occurrence of
 * each call_id with one INSERT ... SELECT FROM unnest() of an array of
 * aos_cus.usage_row inside one subtransaction; a record whose key is taken
 * inside the window is a duplicate read back, any other is settled on its
 * own as a single record. Only if that fails (a cost
 * overflows, or a record broke a rule no check foresaw) is the batch
 * replayed record by record, each in its own subtransaction, so one bad
 * record never costs the others. Rejected records go to cus_ingest_rejects
 * with their raw payload and reason.
 */
#include "aos_cus.h"
#include "cost.h"
#include "enforce.h"
#include "scope.h"
#include "spi_safe.h"
#include "stats.h"
#include "tenancy.h"
#include "usage.h"
#include "usage_keys.h"
#include "usage_record.h"
#include "uuid_text.h"
#include "vocab.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "commands/sequence.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/resowner.h"
#include "utils/syscache.h"
#include "utils/typcache.h"

/* Limits (documented in the README). */
#define INGEST_MAX_BATCH		10000
#define INGEST_MAX_PAYLOAD		65536
#define INGEST_FUTURE_SLACK		USECS_PER_DAY
#define INTEGRATION_CACHE_MAX	10000

/* Record keys, in the order of the switch in set_field(). */
enum
{
	KEY_INTEGRATION_ID,
	KEY_CALL_ID,
	KEY_PROVIDER,
	KEY_MODEL,
	KEY_SERVICE_TIER,
	KEY_USAGE,
	KEY_LATENCY_MS,
	KEY_STATUS,
	KEY_ERROR_CODE,
	KEY_STARTED_AT,
	KEY_METADATA,
	KEY_SUBJECT,
	KEY_TAGS,
	KEY_TOKENS
};

static const char *const record_keys[] = {
	"integration_id", "call_id", "provider", "model", "service_tier", "usage", "latency_ms",
	"status", "error_code", "started_at", "metadata", "subject", "tags", NULL
};

/* One usage record, checked; strings point into the caller's jsonb. */
typedef struct UsageRecord
{
	bool		has_integration;
	pg_uuid_t	integration_id;
	const char *call_id;
	int			call_id_len;
	int			provider;
	const char *model;
	int			model_len;
	int			tier;
	bool		has_tokens;
	int64		tokens[AOS_BUCKET_COUNT];
	Jsonb	   *usage;
	bool		has_latency;
	int32		latency_ms;
	int			status;
	const char *error_code;
	int			error_code_len;
	bool		has_started_at;
	TimestampTz started_at;
	Jsonb	   *metadata;
	char	   *subject;		/* NULL: none */
	Jsonb	   *tags;			/* NULL: none */
	bool		priced;
	int64		cost;
	int64		price_id;
} UsageRecord;

/* Why a record was refused. */
typedef struct RecordError
{
	int			sqlstate;
	char	   *message;
} RecordError;

/* Outcome of one record. */
typedef enum IngestStatus
{
	INGEST_PENDING,
	INGEST_INSERTED,
	INGEST_DUPLICATE,
	INGEST_REJECTED
} IngestStatus;

static const char *const status_names[] = {"pending", "inserted", "duplicate", "rejected"};

/* One record of a batch and its outcome. */
typedef struct BatchItem
{
	JsonbValue	raw;
	bool		valid;
	UsageRecord rec;
	int			first;			/* index of the first valid record with this call_id */
	IngestStatus status;
	int64		usage_id;
	bool		has_cost;
	int64		cost;
	RecordError error;
} BatchItem;

/* Positive cache of (tenant, integration) -> provider; rows are never re-keyed. */
typedef struct IntegrationKey
{
	pg_uuid_t	tenant;
	pg_uuid_t	integration;
} IntegrationKey;

typedef struct IntegrationEntry
{
	IntegrationKey key;
	int			provider;
} IntegrationEntry;

static HTAB *integration_cache = NULL;

/* Plans prepared once per backend (SPI_keepplan), replanned by the plan cache after DDL. */
static SPIPlanPtr plan_insert_one = NULL;
static SPIPlanPtr plan_insert_keyed = NULL;
static SPIPlanPtr plan_insert_many = NULL;
static SPIPlanPtr plan_insert_many_keyed = NULL;
static SPIPlanPtr plan_find_one = NULL;
static SPIPlanPtr plan_find_many = NULL;
static SPIPlanPtr plan_integration = NULL;
static SPIPlanPtr plan_reject = NULL;

#define USAGE_COLUMNS_0_1 \
	"tenant_id, integration_id, call_id, provider, model, service_tier, input_tokens, " \
	"cache_read_tokens, cache_write_tokens, cache_write_1h_tokens, output_tokens, reasoning_tokens, " \
	"input_audio_tokens, output_audio_tokens, latency_ms, status, error_code, started_at, metadata, " \
	"cost_microcents, price_id"
#define USAGE_COLUMNS USAGE_COLUMNS_0_1 ", subject, tags"
#define USAGE_NCOLS 23
/* A 0.1.0 schema (before ALTER EXTENSION UPDATE) has neither subject nor tags, the last two columns. */
#define USAGE_NCOLS_0_1 (USAGE_NCOLS - 2)
static int	usage_ncols = USAGE_NCOLS;
static const char *usage_columns = USAGE_COLUMNS;
/* With cus_usage_keys, one record's row id is drawn first and passed last ($usage_ncols + 1) to both plans. */
static Oid	usage_id_seq = InvalidOid;

static const Oid usage_types[USAGE_NCOLS] = {
	UUIDOID, UUIDOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID,
	INT8OID, INT8OID, INT8OID, INT8OID, INT8OID, INT8OID, INT8OID, INT8OID,
	INT4OID, TEXTOID, TEXTOID, TIMESTAMPTZOID, JSONBOID, INT8OID, INT8OID, TEXTOID, JSONBOID
};

PG_FUNCTION_INFO_V1(aos_cus_ingest_usage);
PG_FUNCTION_INFO_V1(aos_cus_ingest_usage_batch);

static bool record_error(RecordError *err, int sqlstate, const char *fmt,...) pg_attribute_printf(3, 4);

/* Fill err and return false: the common exit of every check. */
static bool
record_error(RecordError *err, int sqlstate, const char *fmt,...)
{
	va_list		args;
	StringInfoData buf;

	initStringInfo(&buf);
	for (;;)
	{
		int			needed;

		va_start(args, fmt);
		needed = appendStringInfoVA(&buf, fmt, args);
		va_end(args);
		if (needed == 0)
			break;
		enlargeStringInfo(&buf, needed);
	}
	err->sqlstate = sqlstate;
	err->message = buf.data;
	return false;
}

/* NUL-terminated copy of a jsonb string value. */
static char *
jstr(const JsonbValue *v)
{
	return pnstrdup(v->val.string.val, v->val.string.len);
}

/* JSON type name of a value, for messages. */
static const char *
json_type_name(const JsonbValue *v)
{
	switch (v->type)
	{
		case jbvNull:
			return "null";
		case jbvString:
			return "a string";
		case jbvNumeric:
			return "a number";
		case jbvBool:
			return "a boolean";
		case jbvBinary:
			return JsonContainerIsArray(v->val.binary.data) ? "an array" : "an object";
		default:
			return "an array";
	}
}

/* Read a non-negative JSON integer that fits in int64 (max bounds it further). */
static bool
get_count(const JsonbValue *v, const char *field, int64 max, int64 *out, RecordError *err)
{
	char	   *text;
	AosIntParse r;

	if (v->type != jbvNumeric)
		return record_error(err, ERRCODE_INVALID_PARAMETER_VALUE,
							"%s must be a non-negative integer, not %s", field, json_type_name(v));
	text = numeric_normalize(v->val.numeric);
	r = aos_cus_parse_int64(text, out);
	if (r == AOS_INT_NOT_INTEGER)
		return record_error(err, ERRCODE_INVALID_PARAMETER_VALUE,
							"%s must be an integer, not %s", field, text);
	if (r == AOS_INT_OVERFLOW || *out > max)
		return record_error(err, ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE,
							"%s is out of range: %s (at most " INT64_FORMAT ")", field, text, max);
	if (*out < 0)
		return record_error(err, ERRCODE_INVALID_PARAMETER_VALUE,
							"%s must not be negative: %s", field, text);
	return true;
}

/* Read one value of an enumeration (provider, service_tier, status). */
static bool
get_enum(const JsonbValue *v, const char *field, const char *const *names, int *out, RecordError *err)
{
	char		list[128];

	if (v->type == jbvString)
	{
		*out = aos_cus_enum_index(v->val.string.val, v->val.string.len, names);
		if (*out >= 0)
			return true;
	}
	aos_cus_enum_list(names, list, sizeof(list));
	if (v->type != jbvString)
		return record_error(err, ERRCODE_INVALID_PARAMETER_VALUE,
							"%s must be a string, not %s (one of %s)", field, json_type_name(v), list);
	return record_error(err, ERRCODE_INVALID_PARAMETER_VALUE,
						"%s \"%.64s\" is not one of %s", field, jstr(v), list);
}

/* Read a string of 1..max characters. */
static bool
get_text(const JsonbValue *v, const char *field, int max, const char **s, int *len, RecordError *err)
{
	size_t		chars;

	if (v->type != jbvString)
		return record_error(err, ERRCODE_INVALID_PARAMETER_VALUE,
							"%s must be a string, not %s", field, json_type_name(v));
	chars = aos_cus_utf8_chars(v->val.string.val, v->val.string.len);
	if (chars == 0)
		return record_error(err, ERRCODE_INVALID_PARAMETER_VALUE, "%s must not be empty", field);
	if (chars > (size_t) max)
		return record_error(err, ERRCODE_INVALID_PARAMETER_VALUE,
							"%s is %zu characters long, more than the limit of %d", field, chars, max);
	*s = v->val.string.val;
	*len = v->val.string.len;
	return true;
}

/* Parse an ISO 8601 timestamp without raising (the server's own datetime decoder). */
static bool
parse_timestamptz(const JsonbValue *v, TimestampTz *out)
{
	char		text[MAXDATELEN + 1];
	char		workbuf[MAXDATELEN + MAXDATEFIELDS];
	char	   *field[MAXDATEFIELDS];
	int			ftype[MAXDATEFIELDS];
	int			nf;
	int			dtype;
	int			tz;
	fsec_t		fsec;
	struct pg_tm tm;
#if PG_VERSION_NUM >= 160000
	DateTimeErrorExtra extra;
#endif

	if (v->val.string.len > MAXDATELEN)
		return false;
	memcpy(text, v->val.string.val, v->val.string.len);
	text[v->val.string.len] = '\0';
	if (ParseDateTime(text, workbuf, sizeof(workbuf), field, ftype, MAXDATEFIELDS, &nf) != 0)
		return false;
#if PG_VERSION_NUM >= 160000
	if (DecodeDateTime(field, ftype, nf, &dtype, &tm, &fsec, &tz, &extra) != 0)
		return false;
#else
	if (DecodeDateTime(field, ftype, nf, &dtype, &tm, &fsec, &tz) != 0)
		return false;
#endif
	return dtype == DTK_DATE && tm2timestamp(&tm, fsec, &tz, out) == 0;
}

/* Read started_at: a timestamp from 2000-01-01 to one day after now. */
static bool
get_started_at(const JsonbValue *v, TimestampTz *out, RecordError *err)
{
	static const TimestampTz earliest = 0;	/* 2000-01-01 00:00 UTC, the Postgres epoch */

	if (v->type != jbvString)
		return record_error(err, ERRCODE_INVALID_PARAMETER_VALUE,
							"started_at must be an ISO 8601 timestamp string, not %s", json_type_name(v));
	/* Digits first: words such as now, today or epoch are not timestamps of a call. */
	if (v->val.string.len == 0 || !isdigit((unsigned char) v->val.string.val[0]) || !parse_timestamptz(v, out))
		return record_error(err, ERRCODE_INVALID_PARAMETER_VALUE,
							"started_at \"%.64s\" is not a valid timestamp", jstr(v));
	if (*out < earliest)
		return record_error(err, ERRCODE_INVALID_PARAMETER_VALUE,
							"started_at %.64s is before 2000-01-01", jstr(v));
	if (*out > GetCurrentTransactionStartTimestamp() + INGEST_FUTURE_SLACK)
		return record_error(err, ERRCODE_INVALID_PARAMETER_VALUE,
							"started_at %.64s is more than one day in the future", jstr(v));
	return true;
}

/* Read a JSON object value as its own Jsonb, at most max bytes. */
static bool
get_object(const JsonbValue *v, const char *field, Size max, Jsonb **out, RecordError *err)
{
	if (v->type != jbvBinary || !JsonContainerIsObject(v->val.binary.data))
		return record_error(err, ERRCODE_INVALID_PARAMETER_VALUE,
							"%s must be a JSON object, not %s", field, json_type_name(v));
	*out = JsonbValueToJsonb((JsonbValue *) v);
	if (VARSIZE(*out) > max)
		return record_error(err, ERRCODE_INVALID_PARAMETER_VALUE,
							"%s is %zu bytes, more than the limit of %zu", field, (Size) VARSIZE(*out), max);
	return true;
}

/* Check one key/value pair of a record and store it. */
static bool
set_field(UsageRecord *rec, const JsonbValue *key, const JsonbValue *v, RecordError *err)
{
	int			k = aos_cus_enum_index(key->val.string.val, key->val.string.len, record_keys);

	if (k < 0)
	{
		int			t = aos_cus_enum_index(key->val.string.val, key->val.string.len, aos_cus_token_columns);

		if (t < 0)
			return record_error(err, ERRCODE_INVALID_PARAMETER_VALUE,
								"record has an unknown key \"%.64s\"", jstr(key));
		k = KEY_TOKENS + t;
	}
	/* JSON null means "not given" for optional keys; required ones are checked afterwards. */
	if (v->type == jbvNull)
		return true;
	if ((k == KEY_SUBJECT || k == KEY_TAGS) && usage_ncols == USAGE_NCOLS_0_1)
		return record_error(err, ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
							"%s needs the aos_cus 0.2.0 schema: run ALTER EXTENSION aos_cus UPDATE", record_keys[k]);
	switch (k)
	{
		case KEY_INTEGRATION_ID:
			if (v->type != jbvString)
				return record_error(err, ERRCODE_INVALID_PARAMETER_VALUE,
									"integration_id must be a UUID string, not %s", json_type_name(v));
			{
				char	   *s = jstr(v);

				if (v->val.string.len != 36 || !aos_cus_uuid_parse(s, rec->integration_id.data))
					return record_error(err, ERRCODE_INVALID_PARAMETER_VALUE,
										"integration_id \"%.64s\" is not a valid UUID", s);
			}
			rec->has_integration = true;
			return true;
		case KEY_CALL_ID:
			return get_text(v, "call_id", AOS_USAGE_MAX_CALL_ID, &rec->call_id, &rec->call_id_len, err);
		case KEY_PROVIDER:
			return get_enum(v, "provider", aos_cus_provider_names, &rec->provider, err);
		case KEY_MODEL:
			return get_text(v, "model", AOS_USAGE_MAX_MODEL, &rec->model, &rec->model_len, err);
		case KEY_SERVICE_TIER:
			return get_enum(v, "service_tier", aos_cus_tier_names, &rec->tier, err);
		case KEY_USAGE:
			return get_object(v, "usage", AOS_USAGE_MAX_METADATA, &rec->usage, err);
		case KEY_LATENCY_MS:
			{
				int64		ms;

				if (!get_count(v, "latency_ms", PG_INT32_MAX, &ms, err))
					return false;
				rec->has_latency = true;
				rec->latency_ms = (int32) ms;
				return true;
			}
		case KEY_STATUS:
			return get_enum(v, "status", aos_cus_status_names, &rec->status, err);
		case KEY_ERROR_CODE:
			return get_text(v, "error_code", AOS_USAGE_MAX_ERROR_CODE, &rec->error_code, &rec->error_code_len, err);
		case KEY_STARTED_AT:
			rec->has_started_at = true;
			return get_started_at(v, &rec->started_at, err);
		case KEY_METADATA:
			return get_object(v, "metadata", AOS_USAGE_MAX_METADATA, &rec->metadata, err);
		case KEY_SUBJECT:
			{
				const char *problem;

				if (v->type != jbvString)
					return record_error(err, ERRCODE_INVALID_PARAMETER_VALUE,
										"subject must be a string, not %s", json_type_name(v));
				if ((problem = aos_cus_subject_problem(v->val.string.val, v->val.string.len)) != NULL)
					return record_error(err, ERRCODE_INVALID_PARAMETER_VALUE, "subject %s", problem);
				rec->subject = jstr(v);
				return true;
			}
		case KEY_TAGS:
			{
				AosTagPair	pairs[AOS_TAGS_MAX];
				int			ntags;
				char	   *problem;

				if (v->type != jbvBinary || !JsonContainerIsObject(v->val.binary.data))
					return record_error(err, ERRCODE_INVALID_PARAMETER_VALUE,
										"tags must be a JSON object of strings, not %s", json_type_name(v));
				if (JsonContainerSize(v->val.binary.data) > AOS_TAGS_MAX)
					return record_error(err, ERRCODE_PROGRAM_LIMIT_EXCEEDED,
										"tags has %u keys, more than the limit of %d",
										JsonContainerSize(v->val.binary.data), AOS_TAGS_MAX);
				if ((problem = aos_cus_read_tags(v->val.binary.data, AOS_TAGS_MAX, pairs, &ntags)) != NULL)
					return record_error(err, ERRCODE_INVALID_PARAMETER_VALUE, "%s", problem);
				rec->tags = JsonbValueToJsonb((JsonbValue *) v);
				return true;
			}
		default:
			rec->has_tokens = true;
			return get_count(v, aos_cus_token_columns[k - KEY_TOKENS], AOS_TOKEN_COUNT_MAX,
							 &rec->tokens[k - KEY_TOKENS], err);
	}
}

/* Provider of a tenant's integration (cached); -1 when the tenant has no such integration. */
static int
integration_provider(const pg_uuid_t *tenant, const pg_uuid_t *integration)
{
	IntegrationKey key;
	IntegrationEntry *entry;
	bool		found;
	Datum		args[2];
	int			provider;

	if (integration_cache == NULL || hash_get_num_entries(integration_cache) >= INTEGRATION_CACHE_MAX)
	{
		HASHCTL		ctl;

		if (integration_cache != NULL)
			hash_destroy(integration_cache);
		ctl.keysize = sizeof(IntegrationKey);
		ctl.entrysize = sizeof(IntegrationEntry);
		integration_cache = hash_create("aos_cus integrations", 256, &ctl, HASH_ELEM | HASH_BLOBS);
	}
	memset(&key, 0, sizeof(key));
	key.tenant = *tenant;
	key.integration = *integration;
	entry = hash_search(integration_cache, &key, HASH_FIND, NULL);
	if (entry != NULL)
		return entry->provider;

	args[0] = UUIDPGetDatum(tenant);
	args[1] = UUIDPGetDatum(integration);
	if (SPI_execute_plan(plan_integration, args, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "aos_cus: integration lookup failed");
	if (SPI_processed == 0)
		return -1;
	{
		bool		isnull;
		Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
		char	   *name = TextDatumGetCString(d);

		provider = aos_cus_enum_index(name, strlen(name), aos_cus_provider_names);
	}
	entry = hash_search(integration_cache, &key, HASH_ENTER, &found);
	entry->provider = provider;
	return provider;
}

/* Model and provider not given in the record, taken from OpenTelemetry GenAI attributes in its usage. */
static bool
otel_identity(UsageRecord *rec, RecordError *err)
{
	int			provider;
	JsonbValue	model = {.type = jbvString};
	const char *problem = aos_cus_otel_identity(rec->usage, &provider, (const char **) &model.val.string.val,
												&model.val.string.len);

	if (problem != NULL)
		return record_error(err, ERRCODE_INVALID_PARAMETER_VALUE, "usage %s", problem);
	if (rec->model == NULL && model.val.string.val != NULL &&
		!get_text(&model, "usage gen_ai.response.model (or gen_ai.request.model)", AOS_USAGE_MAX_MODEL,
				  &rec->model, &rec->model_len, err))
		return false;
	if (rec->provider < 0)
		rec->provider = provider;
	return true;
}

/* Read and check a whole record (a JSON object); false with err filled when it is invalid. */
static bool
parse_record(const pg_uuid_t *tenant, const JsonbValue *raw, UsageRecord *rec, RecordError *err)
{
	JsonbIterator *it;
	JsonbValue	key;
	JsonbValue	v;
	JsonbIteratorToken tok;
	int			owner_provider;

	memset(rec, 0, sizeof(*rec));
	rec->provider = -1;
	if (raw->type != jbvBinary || !JsonContainerIsObject(raw->val.binary.data))
		return record_error(err, ERRCODE_INVALID_PARAMETER_VALUE,
							"record must be a JSON object, not %s", json_type_name(raw));

	it = JsonbIteratorInit(raw->val.binary.data);
	tok = JsonbIteratorNext(&it, &v, true);
	Assert(tok == WJB_BEGIN_OBJECT);
	while ((tok = JsonbIteratorNext(&it, &key, true)) == WJB_KEY)
	{
		tok = JsonbIteratorNext(&it, &v, true);
		Assert(tok == WJB_VALUE);
		if (!set_field(rec, &key, &v, err))
			return false;
	}

	if (!rec->has_integration)
		return record_error(err, ERRCODE_INVALID_PARAMETER_VALUE, "integration_id is required");
	if (rec->call_id == NULL)
		return record_error(err, ERRCODE_INVALID_PARAMETER_VALUE, "call_id is required");
	if (rec->usage != NULL && !otel_identity(rec, err))
		return false;
	if (rec->model == NULL)
		return record_error(err, ERRCODE_INVALID_PARAMETER_VALUE, "model is required");
	if (!rec->has_started_at)
		return record_error(err, ERRCODE_INVALID_PARAMETER_VALUE, "started_at is required");
	if (rec->usage != NULL && rec->has_tokens)
		return record_error(err, ERRCODE_INVALID_PARAMETER_VALUE,
							"usage and the token keys (input_tokens, ...) are mutually exclusive");

	owner_provider = integration_provider(tenant, &rec->integration_id);
	if (owner_provider < 0)
	{
		char	   *id = DatumGetCString(DirectFunctionCall1(uuid_out, UUIDPGetDatum(&rec->integration_id)));

		return record_error(err, ERRCODE_INVALID_PARAMETER_VALUE,
							"integration_id %s is not an integration of this tenant", id);
	}
	if (rec->provider < 0)
		rec->provider = owner_provider;
	else if (rec->provider != owner_provider && owner_provider != AOS_PROVIDER_CUSTOM)
		return record_error(err, ERRCODE_INVALID_PARAMETER_VALUE,
							"provider \"%s\" does not match the integration's provider \"%s\"",
							aos_cus_provider_names[rec->provider], aos_cus_provider_names[owner_provider]);
	return true;
}

/* Error context naming the record key whose value was being read. */
static void
usage_key_context(void *arg)
{
	errcontext("record key usage");
}

/* Token buckets from the record's raw usage block; may raise on a malformed block. */
static void
extract_usage_tokens(UsageRecord *rec)
{
	ErrorContextCallback callback;

	callback.callback = usage_key_context;
	callback.arg = NULL;
	callback.previous = error_context_stack;
	error_context_stack = &callback;
	aos_cus_usage_extract(aos_cus_provider_names[rec->provider], rec->usage, rec->tokens);
	error_context_stack = callback.previous;
}

/* Cross-bucket rule the table enforces: reasoning is part of output. */
static bool
check_buckets(const UsageRecord *rec, RecordError *err)
{
	if (rec->tokens[AOS_BUCKET_REASONING] > rec->tokens[AOS_BUCKET_OUTPUT])
		return record_error(err, ERRCODE_INVALID_PARAMETER_VALUE,
							"reasoning_tokens (" INT64_FORMAT ") must not exceed output_tokens (" INT64_FORMAT ")",
							rec->tokens[AOS_BUCKET_REASONING], rec->tokens[AOS_BUCKET_OUTPUT]);
	return true;
}

#define KEY_ROW_JOIN \
	" JOIN aos_cus.cus_llm_usage u ON u.tenant_id OPERATOR(pg_catalog.=) k.tenant_id" \
	" AND u.started_at OPERATOR(pg_catalog.=) k.started_at AND u.id OPERATOR(pg_catalog.=) k.usage_id"

/* Run a usage insert with the key trigger in mode (usage_keys.c). */
static int
insert_usage(SPIPlanPtr plan, AosUsageKeyMode mode, Datum *values, const char *nulls, long count)
{
	volatile int rc = 0;

	aos_cus_usage_key_mode = mode;
	PG_TRY();
	{
		rc = SPI_execute_plan(plan, values, nulls, false, count);
	}
	PG_FINALLY();
	{
		aos_cus_usage_key_mode = AOS_USAGE_KEY_CLAIM;
	}
	PG_END_TRY();
	return rc;
}

/*
 * A 0.1.0 schema (the new library before ALTER EXTENSION UPDATE) has no cus_usage_keys but a unique
 * (tenant_id, call_id) on the usage table itself: there inserts skip duplicates with ON CONFLICT.
 */
static bool
schema_has_keys(void)
{
	return OidIsValid(get_relname_relid("cus_usage_keys", get_namespace_oid("aos_cus", false)));
}

#define CONFLICT_0_1_0 " ON CONFLICT (tenant_id, call_id) DO NOTHING"
#define FIND_0_1_0 " FROM aos_cus.cus_llm_usage u WHERE u.tenant_id OPERATOR(pg_catalog.=) $1 AND u.call_id OPERATOR(pg_catalog.=) "

/* Forget a kept plan (prepared again on next use). */
static void
drop_plan(SPIPlanPtr *slot)
{
	if (*slot != NULL)
		SPI_freeplan(*slot);
	*slot = NULL;
}

/* Prepare every plan on first use in this backend, and again once the schema gained its keys table. */
static void
prepare_plans(void)
{
	static bool planned_keys;
	bool		keys = schema_has_keys();
	Oid			find_one_types[2] = {UUIDOID, TEXTOID};
	Oid			find_many_types[2] = {UUIDOID, TEXTARRAYOID};
	Oid			integration_types[2] = {UUIDOID, UUIDOID};
	Oid			reject_types[7] = {UUIDOID, INT4OID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, INT4OID};
	Oid			types[USAGE_NCOLS + 1];
	StringInfoData sql;

	if (plan_reject != NULL && keys == planned_keys)
		return;
	drop_plan(&plan_insert_one);
	drop_plan(&plan_insert_keyed);
	drop_plan(&plan_insert_many);
	drop_plan(&plan_insert_many_keyed);
	drop_plan(&plan_find_one);
	drop_plan(&plan_find_many);
	drop_plan(&plan_integration);
	drop_plan(&plan_reject);
	planned_keys = keys;

	usage_ncols = get_attnum(get_relname_relid("cus_llm_usage", get_namespace_oid("aos_cus", false)), "subject")
		== InvalidAttrNumber ? USAGE_NCOLS_0_1 : USAGE_NCOLS;
	usage_columns = usage_ncols == USAGE_NCOLS ? USAGE_COLUMNS : USAGE_COLUMNS_0_1;
	usage_id_seq = keys ? get_relname_relid("cus_llm_usage_id_seq", get_namespace_oid("aos_cus", false)) : InvalidOid;
	memcpy(types, usage_types, sizeof(Oid) * usage_ncols);
	types[usage_ncols] = INT8OID;
	initStringInfo(&sql);
	appendStringInfo(&sql, "INSERT INTO aos_cus.cus_llm_usage (%s%s) VALUES (", keys ? "id, " : "", usage_columns);
	if (keys)
		appendStringInfo(&sql, "$%d, ", usage_ncols + 1);
	for (int i = 1; i <= usage_ncols; i++)
		appendStringInfo(&sql, "%s$%d", i > 1 ? ", " : "", i);
	appendStringInfo(&sql, ")%s RETURNING id, cost_microcents", keys ? "" : CONFLICT_0_1_0);
	aos_cus_keep_plan(&plan_insert_one, sql.data, usage_ncols + (keys ? 1 : 0), types);
	/* The key ($1 tenant_id, $3 call_id, $18 started_at) and the row in one statement; not on Citus (local keys). */
	if (keys && !OidIsValid(get_extension_oid("citus", true)))
	{
		resetStringInfo(&sql);
		appendStringInfo(&sql, "WITH k AS (INSERT INTO aos_cus.cus_usage_keys (tenant_id, call_id, usage_id, started_at, ingested_at)"
						 " VALUES ($1, $3, $%d, $18, pg_catalog.now()) ON CONFLICT (tenant_id, call_id) DO NOTHING RETURNING usage_id)"
						 " INSERT INTO aos_cus.cus_llm_usage (id, %s) SELECT k.usage_id", usage_ncols + 1, usage_columns);
		for (int i = 1; i <= usage_ncols; i++)
			appendStringInfo(&sql, ", $%d", i);
		appendStringInfoString(&sql, " FROM k RETURNING id, cost_microcents");
		aos_cus_keep_plan(&plan_insert_keyed, sql.data, usage_ncols + 1, types);
	}

	/* The row holding a key: the key's started_at leads to its one partition; for a batch, a key inside the window. */
	aos_cus_keep_plan(&plan_find_one,
					  keys ? "SELECT u.id, u.cost_microcents FROM aos_cus.cus_usage_keys k" KEY_ROW_JOIN
					  " WHERE k.tenant_id OPERATOR(pg_catalog.=) $1 AND k.call_id OPERATOR(pg_catalog.=) $2"
					  : "SELECT u.id, u.cost_microcents" FIND_0_1_0 "$2",
					  2, find_one_types);
	aos_cus_keep_plan(&plan_find_many,
					  keys ? "SELECT k.call_id, u.id, u.cost_microcents FROM aos_cus.cus_usage_keys k" KEY_ROW_JOIN
					  " CROSS JOIN (SELECT pg_catalog.now() OPERATOR(pg_catalog.-) s.idempotency_window AS start"
					  " FROM aos_cus.usage_settings() s) w"
					  " WHERE k.tenant_id OPERATOR(pg_catalog.=) $1 AND k.call_id OPERATOR(pg_catalog.=) ANY ($2)"
					  " AND (k.started_at OPERATOR(pg_catalog.>=) w.start OR k.ingested_at OPERATOR(pg_catalog.>=) w.start)"
					  : "SELECT u.call_id, u.id, u.cost_microcents" FIND_0_1_0 "ANY ($2)",
					  2, find_many_types);
	aos_cus_keep_plan(&plan_integration, "SELECT provider::pg_catalog.text FROM aos_cus.cus_integrations"
					  " WHERE tenant_id OPERATOR(pg_catalog.=) $1 AND id OPERATOR(pg_catalog.=) $2",
					  2, integration_types);
	aos_cus_keep_plan(&plan_reject, "INSERT INTO aos_cus.cus_ingest_rejects (tenant_id, ord, call_id, reason, sqlstate, payload, payload_bytes) "
							"VALUES ($1, $2, $3, $4, $5, $6, $7)", 7, reject_types);
	pfree(sql.data);
}

/* The record's column values (and nulls) in USAGE_COLUMNS order; price_record() ran before. */
static void
record_datums(const pg_uuid_t *tenant, const UsageRecord *rec, Datum *values, bool *nulls)
{
	static Jsonb *empty_object = NULL;

	if (empty_object == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		empty_object = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum("{}")));
		MemoryContextSwitchTo(old);
	}
	memset(nulls, 0, sizeof(bool) * USAGE_NCOLS);
	values[0] = UUIDPGetDatum(tenant);
	values[1] = UUIDPGetDatum(&rec->integration_id);
	values[2] = PointerGetDatum(cstring_to_text_with_len(rec->call_id, rec->call_id_len));
	values[3] = CStringGetTextDatum(aos_cus_provider_names[rec->provider]);
	values[4] = PointerGetDatum(cstring_to_text_with_len(rec->model, rec->model_len));
	values[5] = CStringGetTextDatum(aos_cus_tier_names[rec->tier]);
	for (int i = 0; i < AOS_BUCKET_COUNT; i++)
		values[6 + i] = Int64GetDatum(rec->tokens[i]);
	values[14] = Int32GetDatum(rec->latency_ms);
	nulls[14] = !rec->has_latency;
	values[15] = CStringGetTextDatum(aos_cus_status_names[rec->status]);
	nulls[16] = rec->error_code == NULL;
	values[16] = nulls[16] ? (Datum) 0 : PointerGetDatum(cstring_to_text_with_len(rec->error_code, rec->error_code_len));
	values[17] = TimestampTzGetDatum(rec->started_at);
	values[18] = JsonbPGetDatum(rec->metadata != NULL ? rec->metadata : empty_object);
	values[19] = Int64GetDatum(rec->cost);
	values[20] = Int64GetDatum(rec->price_id);
	nulls[19] = nulls[20] = !rec->priced;
	nulls[21] = rec->subject == NULL;
	values[21] = nulls[21] ? (Datum) 0 : CStringGetTextDatum(rec->subject);
	nulls[22] = rec->tags == NULL;
	values[22] = nulls[22] ? (Datum) 0 : JsonbPGetDatum(rec->tags);
}

/* Cost and price of a checked record (raises 22003 when the cost overflows). */
static void
price_record(UsageRecord *rec)
{
	rec->priced = aos_cus_usage_price(aos_cus_provider_names[rec->provider], pnstrdup(rec->model, rec->model_len),
									  aos_cus_tier_names[rec->tier], rec->started_at, rec->tokens,
									  &rec->cost, &rec->price_id);
}

/* Why a record has no price (see aos_cus_unpriced_reason()). */
static char *
record_unpriced_reason(const UsageRecord *rec)
{
	return aos_cus_unpriced_reason(aos_cus_provider_names[rec->provider], pnstrdup(rec->model, rec->model_len),
								   aos_cus_tier_names[rec->tier]);
}

/* SPI wants ' ' / 'n' null flags. */
static char *
spi_nulls(const bool *nulls, int n)
{
	char	   *flags = palloc(n);

	for (int i = 0; i < n; i++)
		flags[i] = nulls[i] ? 'n' : ' ';
	return flags;
}

/* Read (id, cost) from column offset off of the current SPI result row. */
static void
read_id_cost(int row, int off, int64 *usage_id, bool *has_cost, int64 *cost)
{
	bool		isnull;
	HeapTuple	tup = SPI_tuptable->vals[row];
	TupleDesc	desc = SPI_tuptable->tupdesc;

	*usage_id = DatumGetInt64(SPI_getbinval(tup, desc, off, &isnull));
	*cost = DatumGetInt64(SPI_getbinval(tup, desc, off + 1, &isnull));
	*has_cost = !isnull;
}

/* Insert one record's row; false when its call_id is a duplicate. A key taken already goes through the trigger. */
static bool
insert_one_row(Datum *values, const char *flags)
{
	if (plan_insert_keyed != NULL)
	{
		if (insert_usage(plan_insert_keyed, AOS_USAGE_KEY_CLAIMED, values, flags, 1) != SPI_OK_INSERT_RETURNING)
			elog(ERROR, "aos_cus: usage insert failed");
		if (SPI_processed == 1)
			return true;
	}
	if (insert_usage(plan_insert_one, AOS_USAGE_KEY_SKIP_DUPLICATES, values, flags, 1) != SPI_OK_INSERT_RETURNING)
		elog(ERROR, "aos_cus: usage insert failed");
	return SPI_processed == 1;
}

/* Insert one checked record or find its earlier row; sets status, id and cost. */
static void
ingest_one(const pg_uuid_t *tenant, UsageRecord *rec, BatchItem *out)
{
	Datum		values[USAGE_NCOLS + 1];
	bool		nulls[USAGE_NCOLS + 1];
	char	   *flags;
	Datum		key[2];

	price_record(rec);
	record_datums(tenant, rec, values, nulls);
	nulls[usage_ncols] = false;
	values[usage_ncols] = OidIsValid(usage_id_seq) ? Int64GetDatum(nextval_internal(usage_id_seq, true)) : (Datum) 0;
	flags = spi_nulls(nulls, usage_ncols + 1);
	key[0] = values[0];
	key[1] = values[2];
	/* A row found by the conflict check can vanish (deleted) before we read it: try again. */
	for (int attempt = 0; attempt < 3; attempt++)
	{
		if (insert_one_row(values, flags))
		{
			out->status = INGEST_INSERTED;
			read_id_cost(0, 1, &out->usage_id, &out->has_cost, &out->cost);
			return;
		}
		if (SPI_execute_plan(plan_find_one, key, NULL, false, 1) != SPI_OK_SELECT)
			elog(ERROR, "aos_cus: usage lookup failed");
		if (SPI_processed == 1)
		{
			out->status = INGEST_DUPLICATE;
			read_id_cost(0, 1, &out->usage_id, &out->has_cost, &out->cost);
			return;
		}
	}
	ereport(ERROR,
			(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
			 errmsg("call_id \"%.*s\" conflicted with a row that was deleted concurrently",
					rec->call_id_len, rec->call_id),
			 errhint("Retry the ingest.")));
}

/* SQL ingest_usage(tenant_id uuid, record jsonb) RETURNS aos_cus.ingest_result. */
Datum
aos_cus_ingest_usage(PG_FUNCTION_ARGS)
{
	pg_uuid_t  *tenant;
	Jsonb	   *record;
	JsonbValue	raw;
	UsageRecord rec;
	RecordError err;
	BatchItem	out;
	TupleDesc	desc;
	Datum		values[3];
	bool		nulls[3] = {false, false, false};

	aos_cus_require_arg(fcinfo, 0, "tenant_id");
	aos_cus_require_arg(fcinfo, 1, "record");
	tenant = PG_GETARG_UUID_P(0);
	record = PG_GETARG_JSONB_P(1);
	aos_cus_assert_tenant(tenant, "tenant_id");
	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "aos_cus: ingest_usage must return a composite type");

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "aos_cus: SPI_connect failed");
	prepare_plans();
	if (JB_ROOT_IS_SCALAR(record))
		(void) JsonbExtractScalar(&record->root, &raw);
	else
	{
		raw.type = jbvBinary;
		raw.val.binary.data = &record->root;
		raw.val.binary.len = VARSIZE(record) - VARHDRSZ;
	}
	if (!parse_record(tenant, &raw, &rec, &err))
		ereport(ERROR, (errcode(err.sqlstate), errmsg_internal("%s", err.message)));
	if (rec.usage != NULL)
		extract_usage_tokens(&rec);
	if (!check_buckets(&rec, &err))
		ereport(ERROR, (errcode(err.sqlstate), errmsg_internal("%s", err.message)));
	memset(&out, 0, sizeof(out));
	ingest_one(tenant, &rec, &out);
	SPI_finish();

	aos_cus_stat_add(out.status == INGEST_INSERTED ? AOS_STAT_INGEST_INSERTED : AOS_STAT_INGEST_DUPLICATE, 1);
	if (!rec.priced)
	{
		if (out.status == INGEST_INSERTED)
			aos_cus_stat_add(AOS_STAT_INGEST_UNPRICED, 1);
		ereport(NOTICE,
				(errmsg("usage %s unpriced: %s", out.status == INGEST_INSERTED ? "recorded" : "already recorded",
						record_unpriced_reason(&rec)),
				 out.has_cost ? errdetail("Charged " INT64_FORMAT " micro-cents at the fallback prices of its policy.", out.cost) : 0,
				 errhint("Add a price with set_price(), then reprice_usage().")));
	}
	values[0] = CStringGetTextDatum(status_names[out.status]);
	values[1] = Int64GetDatum(out.usage_id);
	values[2] = Int64GetDatum(out.cost);
	nulls[2] = !out.has_cost;
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), values, nulls)));
}

/* Signature of the work guarded() runs inside a subtransaction. */
typedef void (*GuardedFn) (void *arg);

/* A record's own data error (classes 22 and 23): a reject. Cancels, timeouts, lock and serialization failures are not. */
static bool
is_record_error(int sqlerrcode)
{
	return ERRCODE_TO_CATEGORY(sqlerrcode) == ERRCODE_DATA_EXCEPTION ||
		ERRCODE_TO_CATEGORY(sqlerrcode) == ERRCODE_INTEGRITY_CONSTRAINT_VIOLATION;
}

/* Run fn(arg) in a subtransaction; on a record error roll it back and describe it in err, else re-throw. */
static bool
guarded(GuardedFn fn, void *arg, RecordError *err)
{
	MemoryContext oldcontext = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	volatile bool ok = true;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(oldcontext);
	PG_TRY();
	{
		fn(arg);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcontext);
		CurrentResourceOwner = oldowner;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(oldcontext);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcontext);
		CurrentResourceOwner = oldowner;
		/* query cancel, statement and lock timeouts, deadlocks: the whole batch aborts, as users expect */
		if (!is_record_error(edata->sqlerrcode))
			ReThrowError(edata);
		err->sqlstate = edata->sqlerrcode;
		err->message = edata->message;
		ok = false;
	}
	PG_END_TRY();
	return ok;
}

/* State of one batch, shared by the guarded steps. */
typedef struct Batch
{
	pg_uuid_t  *tenant;
	BatchItem  *items;
	int			n;
	int		   *firsts;			/* indexes of first occurrences, in call_id order */
	int			nfirsts;
	int			current;		/* item handled by guarded_one() */
} Batch;

/* qsort_arg comparator over item indexes: by call_id bytes, then by position. */
static int
cmp_call_id(const void *a, const void *b, void *arg)
{
	const BatchItem *items = (const BatchItem *) arg;
	const UsageRecord *x = &items[*(const int *) a].rec;
	const UsageRecord *y = &items[*(const int *) b].rec;
	int			c = memcmp(x->call_id, y->call_id, Min(x->call_id_len, y->call_id_len));

	if (c != 0)
		return c;
	if (x->call_id_len != y->call_id_len)
		return x->call_id_len < y->call_id_len ? -1 : 1;
	return *(const int *) a - *(const int *) b;
}

/* True when two records carry the same call_id. */
static bool
same_call_id(const UsageRecord *a, const UsageRecord *b)
{
	return a->call_id_len == b->call_id_len && memcmp(a->call_id, b->call_id, a->call_id_len) == 0;
}

/* First occurrence holding call_id (binary search over b->firsts), or NULL. */
static BatchItem *
find_first(Batch *b, const char *call_id, int len)
{
	int			lo = 0,
				hi = b->nfirsts - 1;

	while (lo <= hi)
	{
		int			mid = (lo + hi) / 2;
		const UsageRecord *r = &b->items[b->firsts[mid]].rec;
		int			c = memcmp(call_id, r->call_id, Min(len, r->call_id_len));

		if (c == 0 && len != r->call_id_len)
			c = len < r->call_id_len ? -1 : 1;
		if (c == 0)
			return &b->items[b->firsts[mid]];
		if (c < 0)
			hi = mid - 1;
		else
			lo = mid + 1;
	}
	return NULL;
}

/* Apply (call_id, id, cost) rows of the current SPI result to first occurrences. */
static void
apply_rows(Batch *b, IngestStatus status)
{
	for (uint64 row = 0; row < SPI_processed; row++)
	{
		bool		isnull;
		text	   *call_id = DatumGetTextPP(SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, 1, &isnull));
		BatchItem  *item = find_first(b, VARDATA_ANY(call_id), VARSIZE_ANY_EXHDR(call_id));

		if (item == NULL || item->status != INGEST_PENDING)
			continue;
		item->status = status;
		read_id_cost(row, 2, &item->usage_id, &item->has_cost, &item->cost);
	}
}

/* Build a one-dimensional array of n datums of type elmtype. */
static Datum
make_array(Datum *elems, bool *nulls, int n, Oid elmtype)
{
	int16		len;
	bool		byval;
	char		align;
	int			dims[1] = {n};
	int			lbs[1] = {1};

	get_typlenbyvalalign(elmtype, &len, &byval, &align);
	return PointerGetDatum(construct_md_array(elems, nulls, 1, dims, lbs, elmtype, len, byval, align));
}

/*
 * The batch insert plan: INSERT ... SELECT from unnest() of one array of
 * aos_cus.usage_row (one composite per record, so the function scan keeps one
 * tuple per record). Prepared again when the type's OID changes (extension
 * dropped and created again in this backend).
 */
static SPIPlanPtr
insert_many_plan(Oid *row_type)
{
	static Oid	planned_type = InvalidOid;

	*row_type = GetSysCacheOid2(TYPENAMENSP, Anum_pg_type_oid, CStringGetDatum("usage_row"),
								ObjectIdGetDatum(get_namespace_oid("aos_cus", false)));
	if (!OidIsValid(*row_type))
		elog(ERROR, "aos_cus: type aos_cus.usage_row is missing");
	if (plan_insert_many == NULL || planned_type != *row_type)
	{
		Oid			types[2] = {UUIDOID, InvalidOid};

		types[1] = get_array_type(*row_type);
		drop_plan(&plan_insert_many);
		drop_plan(&plan_insert_many_keyed);
		aos_cus_keep_plan(&plan_insert_many, psprintf("INSERT INTO aos_cus.cus_llm_usage (%s) "
													  "SELECT $1, u.* FROM pg_catalog.unnest($2) AS u%s RETURNING call_id, id, cost_microcents",
													  usage_columns, schema_has_keys() ? "" : CONFLICT_0_1_0),
						  2, types);
		/* As plan_insert_keyed: each record's key and row in one statement, ids in input order. */
		if (plan_insert_keyed != NULL)
			aos_cus_keep_plan(&plan_insert_many_keyed,
							  psprintf("WITH k AS (INSERT INTO aos_cus.cus_usage_keys (tenant_id, call_id, usage_id, started_at, ingested_at)"
									   " SELECT $1, u.call_id, pg_catalog.nextval('aos_cus.cus_llm_usage_id_seq'::pg_catalog.regclass),"
									   " u.started_at, pg_catalog.now() FROM pg_catalog.unnest($2) AS u"
									   " ON CONFLICT (tenant_id, call_id) DO NOTHING RETURNING call_id, usage_id)"
									   " INSERT INTO aos_cus.cus_llm_usage (id, %s) SELECT k.usage_id, $1, u.* FROM pg_catalog.unnest($2) AS u"
									   " JOIN k ON k.call_id OPERATOR(pg_catalog.=) u.call_id RETURNING call_id, id, cost_microcents",
									   usage_columns),
							  2, types);
		planned_type = *row_type;
	}
	return plan_insert_many_keyed != NULL ? plan_insert_many_keyed : plan_insert_many;
}

/* Read back the first occurrences still pending whose call_id holds a key inside the window: duplicates. */
static void
read_back_duplicates(Batch *b)
{
	Datum		args[2];
	Datum	   *missing = palloc(sizeof(Datum) * b->nfirsts);
	int			nmissing = 0;

	for (int f = 0; f < b->nfirsts; f++)
	{
		BatchItem  *item = &b->items[b->firsts[f]];

		if (item->status == INGEST_PENDING)
			missing[nmissing++] = PointerGetDatum(cstring_to_text_with_len(item->rec.call_id, item->rec.call_id_len));
	}
	if (nmissing == 0)
		return;
	args[0] = UUIDPGetDatum(b->tenant);
	args[1] = make_array(missing, NULL, nmissing, TEXTOID);
	if (SPI_execute_plan(plan_find_many, args, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "aos_cus: batch lookup failed");
	apply_rows(b, INGEST_DUPLICATE);
}

/*
 * Fast path: insert every first occurrence with one statement, then read back the duplicates. Under Citus the
 * duplicates are read back first: its INSERT ... SELECT counts a row the key trigger skipped as returned.
 */
static void
insert_firsts(void *arg)
{
	Batch	   *b = (Batch *) arg;
	int			n = 0;
	Oid			row_type;
	SPIPlanPtr	plan = insert_many_plan(&row_type);
	TupleDesc	row_desc = lookup_rowtype_tupdesc_copy(row_type, -1);
	Datum	   *rows = palloc(sizeof(Datum) * b->nfirsts);
	Datum		args[2];

	if (OidIsValid(get_extension_oid("citus", true)))
		read_back_duplicates(b);
	/* In input order, so ids grow with position in the batch. */
	for (int i = 0; i < b->n; i++)
	{
		Datum		values[USAGE_NCOLS];
		bool		nulls[USAGE_NCOLS];
		HeapTuple	tuple;

		if (!b->items[i].valid || b->items[i].first != i || b->items[i].status != INGEST_PENDING)
			continue;
		price_record(&b->items[i].rec);
		record_datums(b->tenant, &b->items[i].rec, values, nulls);
		tuple = heap_form_tuple(row_desc, values + 1, nulls + 1);
		rows[n++] = heap_copy_tuple_as_datum(tuple, row_desc);
		heap_freetuple(tuple);
	}
	if (n > 0)
	{
		args[0] = UUIDPGetDatum(b->tenant);
		args[1] = make_array(rows, NULL, n, row_type);
		if (insert_usage(plan, plan == plan_insert_many_keyed ? AOS_USAGE_KEY_CLAIMED : AOS_USAGE_KEY_SKIP_DUPLICATES,
						 args, NULL, 0) != SPI_OK_INSERT_RETURNING)
			elog(ERROR, "aos_cus: batch insert failed");
		apply_rows(b, INGEST_INSERTED);
	}
	read_back_duplicates(b);
	/* A conflicting row deleted before the lookup, or a key past the window: settle that record on its own. */
	for (int f = 0; f < b->nfirsts; f++)
	{
		BatchItem  *item = &b->items[b->firsts[f]];

		if (item->status == INGEST_PENDING)
			ingest_one(b->tenant, &item->rec, item);
	}
}

/* Slow path step: one record (already checked and its usage block read) in its own subtransaction. */
static void
guarded_one(void *arg)
{
	Batch	   *b = (Batch *) arg;
	BatchItem  *item = &b->items[b->current];

	ingest_one(b->tenant, &item->rec, item);
}

/* Usage extraction of one record, guarded (a malformed provider block must not end the batch). */
static void
guarded_extract(void *arg)
{
	Batch	   *b = (Batch *) arg;

	extract_usage_tokens(&b->items[b->current].rec);
}

/* Record a refused item in cus_ingest_rejects with its raw payload (bounded) and reason. */
static void
store_reject(const pg_uuid_t *tenant, int ord, BatchItem *item)
{
	Datum		args[7];
	char		flags[7] = {' ', ' ', ' ', ' ', ' ', ' ', ' '};
	char	   *payload;
	int			len;

	if (item->raw.type == jbvBinary)
		payload = JsonbToCString(NULL, item->raw.val.binary.data, item->raw.val.binary.len);
	else
	{
		Jsonb	   *scalar = JsonbValueToJsonb(&item->raw);

		payload = JsonbToCString(NULL, &scalar->root, VARSIZE(scalar));
	}
	len = strlen(payload);
	args[0] = UUIDPGetDatum(tenant);
	args[1] = Int32GetDatum(ord);
	if (item->rec.call_id != NULL)
		args[2] = PointerGetDatum(cstring_to_text_with_len(item->rec.call_id,
														   Min(item->rec.call_id_len, AOS_USAGE_MAX_CALL_ID * 4)));
	else
		flags[2] = 'n';
	args[3] = CStringGetTextDatum(item->error.message);
	args[4] = CStringGetTextDatum(unpack_sql_state(item->error.sqlstate));
	args[5] = PointerGetDatum(cstring_to_text_with_len(payload, pg_mbcliplen(payload, len, INGEST_MAX_PAYLOAD)));
	args[6] = Int32GetDatum(len);
	if (SPI_execute_plan(plan_reject, args, flags, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "aos_cus: reject insert failed");
}

/*
 * SQL ingest_usage_batch(tenant_id uuid, records jsonb) RETURNS TABLE(ord, call_id,
 * status, usage_id, cost_microcents, error): one row per record, in input order.
 */
Datum
aos_cus_ingest_usage_batch(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Jsonb	   *records;
	Batch		b;
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	RecordError err;
	int			nvalid = 0;
	int		   *order;
	uint64		counts[4] = {0, 0, 0, 0};
	uint64		unpriced = 0;

	aos_cus_require_arg(fcinfo, 0, "tenant_id");
	aos_cus_require_arg(fcinfo, 1, "records");
	b.tenant = PG_GETARG_UUID_P(0);
	records = PG_GETARG_JSONB_P(1);
	aos_cus_assert_tenant(b.tenant, "tenant_id");
	if (JB_ROOT_IS_SCALAR(records) || !JB_ROOT_IS_ARRAY(records))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("records must be a JSON array of usage records")));
	b.n = JB_ROOT_COUNT(records);
	if (b.n > INGEST_MAX_BATCH)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("records holds %d records, more than the limit of %d per batch", b.n, INGEST_MAX_BATCH),
				 errhint("Split the batch; nothing was ingested.")));
	InitMaterializedSRF(fcinfo, 0);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "aos_cus: SPI_connect failed");
	prepare_plans();

	/* 1. Check every record. */
	b.items = palloc0(sizeof(BatchItem) * Max(b.n, 1));
	it = JsonbIteratorInit(&records->root);
	tok = JsonbIteratorNext(&it, &v, true);
	Assert(tok == WJB_BEGIN_ARRAY);
	for (int i = 0; (tok = JsonbIteratorNext(&it, &v, true)) == WJB_ELEM; i++)
	{
		BatchItem  *item = &b.items[i];

		item->raw = v;
		item->valid = parse_record(b.tenant, &v, &item->rec, &item->error);
		if (item->valid && item->rec.usage != NULL)
		{
			b.current = i;
			item->valid = guarded(guarded_extract, &b, &item->error);
			if (!item->valid)
				item->error.message = psprintf("usage: %s", item->error.message);
		}
		if (item->valid)
			item->valid = check_buckets(&item->rec, &item->error);
		if (item->valid)
			nvalid++;
		else
			item->status = INGEST_REJECTED;
	}

	/* 2. Group valid records by call_id: the first occurrence is inserted, later ones repeat it. */
	order = palloc(sizeof(int) * Max(nvalid, 1));
	b.firsts = palloc(sizeof(int) * Max(nvalid, 1));
	b.nfirsts = 0;
	for (int i = 0, k = 0; i < b.n; i++)
		if (b.items[i].valid)
			order[k++] = i;
	qsort_arg(order, nvalid, sizeof(int), cmp_call_id, b.items);
	for (int k = 0; k < nvalid; k++)
	{
		BatchItem  *item = &b.items[order[k]];

		if (k > 0 && same_call_id(&item->rec, &b.items[order[k - 1]].rec))
			item->first = b.items[order[k - 1]].first;
		else
		{
			item->first = order[k];
			b.firsts[b.nfirsts++] = order[k];
		}
	}

	/* 3. Insert: one statement, or record by record if it failed. */
	if (b.nfirsts > 0 && !guarded(insert_firsts, &b, &err))
	{
		for (int i = 0; i < b.n; i++)
		{
			BatchItem  *item = &b.items[i];

			if (!item->valid)
				continue;
			item->status = INGEST_PENDING;
			b.current = i;
			if (!guarded(guarded_one, &b, &item->error))
			{
				item->valid = false;
				item->status = INGEST_REJECTED;
			}
		}
	}
	else
	{
		for (int i = 0; i < b.n; i++)
		{
			BatchItem  *item = &b.items[i];
			BatchItem  *first = &b.items[item->first];

			if (!item->valid || item->first == i)
				continue;
			item->status = INGEST_DUPLICATE;
			item->usage_id = first->usage_id;
			item->has_cost = first->has_cost;
			item->cost = first->cost;
		}
	}

	/* 4. Keep the rejects, then return one row per record. */
	for (int i = 0; i < b.n; i++)
	{
		BatchItem  *item = &b.items[i];
		Datum		values[6];
		bool		nulls[6] = {false, false, false, false, false, false};
		bool		unpriced_item;

		if (item->status == INGEST_REJECTED)
			store_reject(b.tenant, i + 1, item);
		counts[item->status]++;
		values[0] = Int32GetDatum(i + 1);
		nulls[1] = item->rec.call_id == NULL;
		if (!nulls[1])
			values[1] = PointerGetDatum(cstring_to_text_with_len(item->rec.call_id, item->rec.call_id_len));
		values[2] = CStringGetTextDatum(status_names[item->status]);
		nulls[3] = item->status == INGEST_REJECTED;
		values[3] = Int64GetDatum(item->usage_id);
		nulls[4] = !item->has_cost;
		values[4] = Int64GetDatum(item->cost);
		unpriced_item = item->status != INGEST_REJECTED && !b.items[item->first].rec.priced;
		nulls[5] = item->status != INGEST_REJECTED && !unpriced_item;
		if (item->status == INGEST_REJECTED)
			values[5] = CStringGetTextDatum(item->error.message);
		else if (unpriced_item)
		{
			values[5] = CStringGetTextDatum(psprintf("unpriced: %s%s", record_unpriced_reason(&item->rec),
													 item->has_cost ? " (charged at the fallback prices of its policy)" : ""));
			if (item->status == INGEST_INSERTED)
				unpriced++;
		}
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	SPI_finish();
	aos_cus_stat_add(AOS_STAT_INGEST_INSERTED, counts[INGEST_INSERTED]);
	aos_cus_stat_add(AOS_STAT_INGEST_DUPLICATE, counts[INGEST_DUPLICATE]);
	aos_cus_stat_add(AOS_STAT_INGEST_REJECTED, counts[INGEST_REJECTED]);
	aos_cus_stat_add(AOS_STAT_INGEST_UNPRICED, unpriced);
	return (Datum) 0;
}
