/*
 * usage_map.h: provider usage counters -> aos_cus token buckets, without
 * Postgres headers. The glue (usage_extract.c) reads the counters from JSON;
 * these functions apply each API's accounting rules and check consistency.
 * Each returns NULL on success or a message naming the inconsistency.
 */
#ifndef AOS_CUS_USAGE_MAP_H
#define AOS_CUS_USAGE_MAP_H

#include "cost.h"

/* Counters of one response; -1 marks a counter the response did not carry. */
typedef struct AosUsageCounters
{
	int64_t		prompt;			/* OpenAI prompt/input tokens, Anthropic input, Gemini promptTokenCount */
	int64_t		cached;			/* cached input read (all three) */
	int64_t		cache_creation; /* Anthropic cache_creation_input_tokens (total) */
	int64_t		cache_5m;		/* Anthropic cache_creation.ephemeral_5m_input_tokens */
	int64_t		cache_1h;		/* Anthropic cache_creation.ephemeral_1h_input_tokens */
	int64_t		tool_prompt;	/* Gemini toolUsePromptTokenCount */
	int64_t		audio_in;		/* audio part of the prompt */
	int64_t		completion;		/* OpenAI completion/output tokens, Anthropic output, Gemini candidates */
	int64_t		reasoning;		/* OpenAI reasoning tokens, Gemini thoughtsTokenCount */
	int64_t		audio_out;		/* audio part of the completion */
} AosUsageCounters;

/* Every counter set to -1 (absent). */
void		aos_cus_usage_counters_init(AosUsageCounters *c);

/* OpenAI (chat completions and responses API): prompt includes cached and audio; completion includes reasoning and audio. */
const char *aos_cus_usage_map_openai(const AosUsageCounters *c, AosTokens *out);

/* Anthropic messages: input excludes cache reads and cache creation; cache creation splits into 5m and 1h. */
const char *aos_cus_usage_map_anthropic(const AosUsageCounters *c, AosTokens *out);

/* Gemini generateContent: prompt includes cached content; thoughts are billed as output besides candidates. */
const char *aos_cus_usage_map_gemini(const AosUsageCounters *c, AosTokens *out);

/*
 * OpenTelemetry GenAI span attributes: gen_ai.usage.input_tokens includes cache reads and cache writes,
 * gen_ai.usage.output_tokens includes reasoning. Counters used: prompt, cached, cache_creation, completion, reasoning.
 */
const char *aos_cus_usage_map_otel(const AosUsageCounters *c, AosTokens *out);

/* aos_cus provider index of a gen_ai.provider.name (or deprecated gen_ai.system) value; -1 when none matches. */
int			aos_cus_otel_provider(const char *name, int len);

#endif
