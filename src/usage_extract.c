/*
 * usage_extract.c: extract_usage() and aos_cus_extract_tokens(): read the
 * usage counters of a provider response (or of its usage object alone) from
 * jsonb; src/core/usage_map.c turns them into token buckets.
 *
 * Shapes: OpenAI, Azure OpenAI, Mistral and custom take OpenAI chat
 * completions (usage.prompt_tokens) or the responses API (usage.input_tokens);
 * Anthropic takes messages (usage.input_tokens); Google takes
 * generateContent (usageMetadata.promptTokenCount); Bedrock takes Converse
 * (usage.inputTokens) or Anthropic messages. Anything else is 22023.
 * OpenTelemetry GenAI span attributes (an object with gen_ai.usage.input_tokens
 * or gen_ai.usage.output_tokens) are read the same way for every provider,
 * and are the only shape of the pseudo-provider "otel".
 */
#include "postgres.h"
#include "vocab.h"

#include "cost.h"
#include "pricing.h"
#include "usage.h"
#include "usage_map.h"

#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"

PG_FUNCTION_INFO_V1(aos_cus_extract_usage);

/* A member of an object container, NULL when absent or JSON null. */
static JsonbValue *
member(JsonbContainer *obj, const char *key)
{
	JsonbValue	k;
	JsonbValue *v;

	k.type = jbvString;
	k.val.string.val = (char *) key;
	k.val.string.len = strlen(key);
	v = findJsonbValueFromContainer(obj, JB_FOBJECT, &k);
	return (v == NULL || v->type == jbvNull) ? NULL : v;
}

/* A member that must be an object when present; NULL when absent. */
static JsonbContainer *
member_object(JsonbContainer *obj, const char *key, const char *where)
{
	JsonbValue *v = member(obj, key);

	if (v == NULL)
		return NULL;
	if (v->type != jbvBinary || !JsonContainerIsObject(v->val.binary.data))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("response %s%s must be a JSON object", where, key)));
	return v->val.binary.data;
}

/* A token count JSON value (0..AOS_TOKEN_COUNT_MAX); 22023 or 22003 naming where/key otherwise. */
static int64
count_value(JsonbValue *v, const char *where, const char *key)
{
	char	   *text;

	if (v->type == jbvNumeric)
	{
		text = DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(v->val.numeric)));
		if (text[0] >= '0' && text[0] <= '9' && strspn(text, "0123456789") == strlen(text))
		{
			/* 13 digits hold AOS_TOKEN_COUNT_MAX (10^12); longer numbers are out of range unparsed */
			if (strlen(text) <= 13 && strtoll(text, NULL, 10) <= AOS_TOKEN_COUNT_MAX)
				return (int64) strtoll(text, NULL, 10);
			ereport(ERROR,
					(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
					 errmsg("response %s%s is out of range: %s (at most " INT64_FORMAT ")",
							where, key, text, AOS_TOKEN_COUNT_MAX)));
		}
	}
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("response %s%s must be a non-negative integer token count", where, key)));
	return 0;
}

/* A counter member: its value, or -1 when absent. */
static int64
count_member(JsonbContainer *obj, const char *key, const char *where)
{
	JsonbValue *v;

	if (obj == NULL)
		return -1;
	v = member(obj, key);
	return v == NULL ? -1 : count_value(v, where, key);
}

/* Sum of the tokenCount of the AUDIO entries of a Gemini modality details array, -1 when none. */
static int64
gemini_audio(JsonbContainer *usage, const char *key)
{
	JsonbValue *arr = member(usage, key);
	int64		sum = -1;

	if (arr == NULL)
		return -1;
	if (arr->type != jbvBinary || !JsonContainerIsArray(arr->val.binary.data))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("response usageMetadata.%s must be a JSON array", key)));
	for (uint32 i = 0; i < JsonContainerSize(arr->val.binary.data); i++)
	{
		JsonbValue *item = getIthJsonbValueFromContainer(arr->val.binary.data, i);
		JsonbValue *modality;

		if (item->type != jbvBinary || !JsonContainerIsObject(item->val.binary.data))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("response usageMetadata.%s items must be JSON objects", key)));
		modality = member(item->val.binary.data, "modality");
		if (modality != NULL && modality->type == jbvString &&
			modality->val.string.len == 5 && memcmp(modality->val.string.val, "AUDIO", 5) == 0)
		{
			int64		n = count_member(item->val.binary.data, "tokenCount", "usageMetadata.promptTokensDetails[].");

			sum = (sum < 0 ? 0 : sum) + (n < 0 ? 0 : n);
			if (sum > AOS_TOKEN_COUNT_MAX)
				ereport(ERROR,
						(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
						 errmsg("response usageMetadata.%s AUDIO tokenCount sum is out of range (at most " INT64_FORMAT ")",
								key, AOS_TOKEN_COUNT_MAX)));
		}
	}
	return sum;
}

/* The usage object: root->key when present (must be an object), else the root itself. */
static JsonbContainer *
usage_object(JsonbContainer *root, const char *key)
{
	JsonbContainer *u = member_object(root, key, "");

	return u != NULL ? u : root;
}

/* Raise 22023 for an unknown shape or an inconsistent usage block. */
static void
shape_error(const char *provider, const char *problem)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("response is not a usage block aos_cus knows for provider %s", provider),
			 errdetail_internal("%s.", problem),
			 errhint("Pass the provider's whole response or its usage object; see extract_usage in README.md.")));
}

/* True when an object carries OpenTelemetry GenAI usage attributes. */
static bool
is_otel(JsonbContainer *root)
{
	return member(root, "gen_ai.usage.input_tokens") != NULL || member(root, "gen_ai.usage.output_tokens") != NULL;
}

/* A string attribute, NULL when absent; *problem is set when it is not a string. */
static JsonbValue *
otel_string(JsonbContainer *root, const char *key, const char **problem)
{
	JsonbValue *v = member(root, key);

	if (v != NULL && v->type != jbvString)
	{
		*problem = psprintf("%s must be a string", key);
		return NULL;
	}
	return v;
}

/* C API: see pricing.h. */
const char *
aos_cus_otel_identity(Jsonb *usage, int *provider, const char **model, int *model_len)
{
	JsonbContainer *root = &usage->root;
	const char *problem = NULL;
	JsonbValue *name;
	JsonbValue *m;

	*provider = -1;
	*model = NULL;
	*model_len = 0;
	if (!JB_ROOT_IS_OBJECT(usage) || JB_ROOT_IS_SCALAR(usage) || !is_otel(root))
		return NULL;
	name = otel_string(root, "gen_ai.provider.name", &problem);
	if (name == NULL && problem == NULL)
		name = otel_string(root, "gen_ai.system", &problem);
	m = otel_string(root, "gen_ai.response.model", &problem);
	if (m == NULL && problem == NULL)
		m = otel_string(root, "gen_ai.request.model", &problem);
	if (problem != NULL)
		return problem;
	if (name != NULL)
		*provider = aos_cus_otel_provider(name->val.string.val, name->val.string.len);
	if (m != NULL)
	{
		*model = m->val.string.val;
		*model_len = m->val.string.len;
	}
	return NULL;
}

/* C API: see pricing.h. */
void
aos_cus_extract_tokens(const char *provider, Jsonb *response, AosTokens *out)
{
	bool		otel = provider != NULL && strcmp(provider, "otel") == 0;
	int			p = provider && !otel ? aos_cus_provider_parse(provider, strlen(provider)) : -1;
	JsonbContainer *root;
	JsonbContainer *u;
	AosUsageCounters c;
	const char *problem = NULL;

	if (p < 0 && !otel)
	{
		char		list[160];

		aos_cus_enum_list(aos_cus_provider_names, list, sizeof(list));
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("provider \"%.64s\" is not one of %s, otel", provider ? provider : "(null)", list),
				 errhint("otel reads OpenTelemetry GenAI span attributes.")));
	}
	if (response == NULL || !JB_ROOT_IS_OBJECT(response) || JB_ROOT_IS_SCALAR(response))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("response must be a JSON object")));
	root = &response->root;
	aos_cus_usage_counters_init(&c);
	if (otel || is_otel(root))
	{
		c.prompt = count_member(root, "gen_ai.usage.input_tokens", "");
		c.completion = count_member(root, "gen_ai.usage.output_tokens", "");
		c.cached = count_member(root, "gen_ai.usage.cache_read.input_tokens", "");
		c.cache_creation = count_member(root, "gen_ai.usage.cache_creation.input_tokens", "");
		c.reasoning = count_member(root, "gen_ai.usage.reasoning.output_tokens", "");
		problem = aos_cus_usage_map_otel(&c, out);
		if (problem != NULL)
			shape_error(otel ? "otel" : aos_cus_provider_names[p], problem);
		return;
	}
	switch (p)
	{
		case AOS_PROVIDER_ANTHROPIC:
			u = usage_object(root, "usage");
			c.prompt = count_member(u, "input_tokens", "usage.");
			c.completion = count_member(u, "output_tokens", "usage.");
			c.cached = count_member(u, "cache_read_input_tokens", "usage.");
			c.cache_creation = count_member(u, "cache_creation_input_tokens", "usage.");
			{
				JsonbContainer *split = member_object(u, "cache_creation", "usage.");

				c.cache_5m = count_member(split, "ephemeral_5m_input_tokens", "usage.cache_creation.");
				c.cache_1h = count_member(split, "ephemeral_1h_input_tokens", "usage.cache_creation.");
			}
			problem = aos_cus_usage_map_anthropic(&c, out);
			break;
		case AOS_PROVIDER_GOOGLE:
			u = usage_object(root, "usageMetadata");
			c.prompt = count_member(u, "promptTokenCount", "usageMetadata.");
			c.cached = count_member(u, "cachedContentTokenCount", "usageMetadata.");
			c.tool_prompt = count_member(u, "toolUsePromptTokenCount", "usageMetadata.");
			c.completion = count_member(u, "candidatesTokenCount", "usageMetadata.");
			c.reasoning = count_member(u, "thoughtsTokenCount", "usageMetadata.");
			if (c.prompt >= 0)
			{
				c.audio_in = gemini_audio(u, "promptTokensDetails");
				c.audio_out = gemini_audio(u, "candidatesTokensDetails");
			}
			problem = aos_cus_usage_map_gemini(&c, out);
			break;
		case AOS_PROVIDER_AWS_BEDROCK:
			u = usage_object(root, "usage");
			if (member(u, "inputTokens") != NULL)
			{
				/* Converse: inputTokens excludes cache reads and writes, as Anthropic's input_tokens does. */
				c.prompt = count_member(u, "inputTokens", "usage.");
				c.completion = count_member(u, "outputTokens", "usage.");
				c.cached = count_member(u, "cacheReadInputTokens", "usage.");
				c.cache_creation = count_member(u, "cacheWriteInputTokens", "usage.");
				problem = aos_cus_usage_map_anthropic(&c, out);
				break;
			}
			aos_cus_extract_tokens("anthropic", response, out);
			return;
		default:
			u = usage_object(root, "usage");
			if (member(u, "prompt_tokens") != NULL)
			{
				JsonbContainer *pd = member_object(u, "prompt_tokens_details", "usage.");
				JsonbContainer *cd = member_object(u, "completion_tokens_details", "usage.");

				c.prompt = count_member(u, "prompt_tokens", "usage.");
				c.completion = count_member(u, "completion_tokens", "usage.");
				c.cached = count_member(pd, "cached_tokens", "usage.prompt_tokens_details.");
				c.audio_in = count_member(pd, "audio_tokens", "usage.prompt_tokens_details.");
				c.reasoning = count_member(cd, "reasoning_tokens", "usage.completion_tokens_details.");
				c.audio_out = count_member(cd, "audio_tokens", "usage.completion_tokens_details.");
			}
			else
			{
				JsonbContainer *id = member_object(u, "input_tokens_details", "usage.");
				JsonbContainer *od = member_object(u, "output_tokens_details", "usage.");

				c.prompt = count_member(u, "input_tokens", "usage.");
				c.completion = count_member(u, "output_tokens", "usage.");
				c.cached = count_member(id, "cached_tokens", "usage.input_tokens_details.");
				c.reasoning = count_member(od, "reasoning_tokens", "usage.output_tokens_details.");
			}
			problem = aos_cus_usage_map_openai(&c, out);
			break;
	}
	if (problem != NULL)
		shape_error(aos_cus_provider_names[p], problem);
}

/* Append "key": n to a JSON object text. */
static void
append_count(StringInfo buf, const char *key, int64 n)
{
	appendStringInfo(buf, "%s\"%s\": %lld", buf->len > 1 ? ", " : "", key, (long long) n);
}

/* SQL extract_usage(provider, response): the buckets under cus_llm_usage column names. */
Datum
aos_cus_extract_usage(PG_FUNCTION_ARGS)
{
	AosTokens	t;
	StringInfoData buf;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("provider must not be null")));
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("response must not be null")));
	aos_cus_extract_tokens(text_to_cstring(PG_GETARG_TEXT_PP(0)), PG_GETARG_JSONB_P(1), &t);

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	append_count(&buf, "input_tokens", t.input);
	append_count(&buf, "cache_read_tokens", t.cache_read);
	append_count(&buf, "cache_write_tokens", t.cache_write);
	append_count(&buf, "cache_write_1h_tokens", t.cache_write_1h);
	append_count(&buf, "output_tokens", t.output);
	append_count(&buf, "reasoning_tokens", t.reasoning);
	append_count(&buf, "input_audio_tokens", t.input_audio);
	append_count(&buf, "output_audio_tokens", t.output_audio);
	appendStringInfoChar(&buf, '}');
	PG_RETURN_DATUM(DirectFunctionCall1(jsonb_in, CStringGetDatum(buf.data)));
}
