/* usage_map.c: provider usage accounting rules (see usage_map.h). */
#include "usage_map.h"

#include <stdint.h>
#include <string.h>

/* A counter's value, 0 when absent. */
static int64_t
or_zero(int64_t v)
{
	return v < 0 ? 0 : v;
}

/* Mark every counter absent. */
void
aos_cus_usage_counters_init(AosUsageCounters *c)
{
	c->prompt = c->cached = c->cache_creation = c->cache_5m = c->cache_1h = -1;
	c->tool_prompt = c->audio_in = c->completion = c->reasoning = c->audio_out = -1;
}

/* OpenAI: input = prompt - cached - audio; output = completion - audio (reasoning stays inside output). */
const char *
aos_cus_usage_map_openai(const AosUsageCounters *c, AosTokens *out)
{
	memset(out, 0, sizeof(*out));
	if (c->prompt < 0 || c->completion < 0)
		return "the usage has no prompt_tokens/completion_tokens (chat) or input_tokens/output_tokens (responses)";
	if (or_zero(c->cached) + or_zero(c->audio_in) > c->prompt)
		return "cached_tokens plus audio_tokens exceed the prompt tokens";
	if (or_zero(c->reasoning) + or_zero(c->audio_out) > c->completion)
		return "reasoning_tokens plus audio_tokens exceed the completion tokens";
	out->input = c->prompt - or_zero(c->cached) - or_zero(c->audio_in);
	out->cache_read = or_zero(c->cached);
	out->input_audio = or_zero(c->audio_in);
	out->output = c->completion - or_zero(c->audio_out);
	out->reasoning = or_zero(c->reasoning);
	out->output_audio = or_zero(c->audio_out);
	return NULL;
}

/* Anthropic: buckets as reported; the 5m/1h split wins over the total, which must then agree. */
const char *
aos_cus_usage_map_anthropic(const AosUsageCounters *c, AosTokens *out)
{
	memset(out, 0, sizeof(*out));
	if (c->prompt < 0 || c->completion < 0)
		return "the usage has no input_tokens or output_tokens";
	out->input = c->prompt;
	out->cache_read = or_zero(c->cached);
	out->output = c->completion;
	if (c->cache_5m >= 0 || c->cache_1h >= 0)
	{
		out->cache_write = or_zero(c->cache_5m);
		out->cache_write_1h = or_zero(c->cache_1h);
		if (c->cache_creation >= 0 && c->cache_creation != out->cache_write + out->cache_write_1h)
			return "cache_creation_input_tokens differs from the sum of cache_creation.ephemeral_5m_input_tokens and ephemeral_1h_input_tokens";
	}
	else
		out->cache_write = or_zero(c->cache_creation);
	return NULL;
}

/* Gemini: input = prompt + tool prompt - cached - audio; output = candidates + thoughts - audio. */
const char *
aos_cus_usage_map_gemini(const AosUsageCounters *c, AosTokens *out)
{
	memset(out, 0, sizeof(*out));
	if (c->prompt < 0)
		return "the usageMetadata has no promptTokenCount";
	if (or_zero(c->cached) + or_zero(c->audio_in) > c->prompt)
		return "cachedContentTokenCount plus audio prompt tokens exceed promptTokenCount";
	if (or_zero(c->audio_out) > or_zero(c->completion))
		return "audio candidate tokens exceed candidatesTokenCount";
	if (or_zero(c->tool_prompt) > INT64_MAX - c->prompt || or_zero(c->reasoning) > INT64_MAX - or_zero(c->completion))
		return "token counts are out of range for bigint";
	out->input = c->prompt + or_zero(c->tool_prompt) - or_zero(c->cached) - or_zero(c->audio_in);
	out->cache_read = or_zero(c->cached);
	out->input_audio = or_zero(c->audio_in);
	out->reasoning = or_zero(c->reasoning);
	out->output = or_zero(c->completion) - or_zero(c->audio_out) + out->reasoning;
	out->output_audio = or_zero(c->audio_out);
	return NULL;
}

/* OTel GenAI: input = input_tokens - cache reads - cache writes; output stays whole, reasoning inside it. */
const char *
aos_cus_usage_map_otel(const AosUsageCounters *c, AosTokens *out)
{
	memset(out, 0, sizeof(*out));
	if (c->prompt < 0)
		return "the attributes have no gen_ai.usage.input_tokens";
	if (or_zero(c->cached) + or_zero(c->cache_creation) > c->prompt)
		return "gen_ai.usage.cache_read.input_tokens plus gen_ai.usage.cache_creation.input_tokens exceed "
			"gen_ai.usage.input_tokens (which includes cached tokens)";
	if (or_zero(c->reasoning) > or_zero(c->completion))
		return "gen_ai.usage.reasoning.output_tokens exceed gen_ai.usage.output_tokens (which includes reasoning)";
	out->input = c->prompt - or_zero(c->cached) - or_zero(c->cache_creation);
	out->cache_read = or_zero(c->cached);
	out->cache_write = or_zero(c->cache_creation);
	out->output = or_zero(c->completion);
	out->reasoning = or_zero(c->reasoning);
	return NULL;
}

/* GenAI semantic convention provider names (and deprecated gen_ai.system values) -> aos_cus provider. */
static const struct
{
	const char *otel;
	AosProvider provider;
}			otel_providers[] = {
	{"openai", AOS_PROVIDER_OPENAI},
	{"anthropic", AOS_PROVIDER_ANTHROPIC},
	{"aws.bedrock", AOS_PROVIDER_AWS_BEDROCK},
	{"gcp.vertex_ai", AOS_PROVIDER_GOOGLE},
	{"gcp.gemini", AOS_PROVIDER_GOOGLE},
	{"gcp.gen_ai", AOS_PROVIDER_GOOGLE},
	{"vertex_ai", AOS_PROVIDER_GOOGLE},
	{"gemini", AOS_PROVIDER_GOOGLE},
	{"azure.ai.openai", AOS_PROVIDER_AZURE_OPENAI},
	{"az.ai.openai", AOS_PROVIDER_AZURE_OPENAI},
	{"mistral_ai", AOS_PROVIDER_MISTRAL},
};

int
aos_cus_otel_provider(const char *name, int len)
{
	for (size_t i = 0; i < sizeof(otel_providers) / sizeof(otel_providers[0]); i++)
		if ((size_t) len == strlen(otel_providers[i].otel) && memcmp(name, otel_providers[i].otel, len) == 0)
			return otel_providers[i].provider;
	return -1;
}
