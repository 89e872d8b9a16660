/* test_usage_map.c: unit tests of provider usage accounting rules. */
#include "unit.h"
#include "usage_map.h"

#include <stdint.h>

/* Counters with every field absent. */
static AosUsageCounters
counters(void)
{
	AosUsageCounters c;

	aos_cus_usage_counters_init(&c);
	return c;
}

/* OpenAI chat completions and responses API. */
static void
test_openai(void)
{
	AosUsageCounters c = counters();
	AosTokens	t;

	CHECK(aos_cus_usage_map_openai(&c, &t) != NULL);
	c.prompt = 1843;
	c.completion = 956;
	c.cached = 1024;
	c.reasoning = 640;
	CHECK(aos_cus_usage_map_openai(&c, &t) == NULL);
	CHECK(t.input == 819 && t.cache_read == 1024 && t.output == 956 && t.reasoning == 640);
	CHECK(t.cache_write == 0 && t.input_audio == 0 && t.output_audio == 0);
	c.audio_in = 800;
	CHECK(aos_cus_usage_map_openai(&c, &t) == NULL && t.input == 19 && t.input_audio == 800);
	c.audio_in = 820;
	CHECK(aos_cus_usage_map_openai(&c, &t) != NULL);
	c.audio_in = 0;
	c.audio_out = 316;
	CHECK(aos_cus_usage_map_openai(&c, &t) == NULL && t.output == 640 && t.output_audio == 316);
	c.audio_out = 317;
	CHECK(aos_cus_usage_map_openai(&c, &t) != NULL);
}

/* Anthropic messages with and without the 5m/1h split. */
static void
test_anthropic(void)
{
	AosUsageCounters c = counters();
	AosTokens	t;

	c.prompt = 21;
	CHECK(aos_cus_usage_map_anthropic(&c, &t) != NULL);
	c.completion = 393;
	c.cached = 12000;
	c.cache_creation = 3500;
	CHECK(aos_cus_usage_map_anthropic(&c, &t) == NULL && t.cache_write == 3500 && t.cache_write_1h == 0);
	c.cache_5m = 1500;
	c.cache_1h = 2000;
	CHECK(aos_cus_usage_map_anthropic(&c, &t) == NULL);
	CHECK(t.input == 21 && t.cache_read == 12000 && t.cache_write == 1500 && t.cache_write_1h == 2000 && t.output == 393);
	c.cache_1h = 1999;
	CHECK(aos_cus_usage_map_anthropic(&c, &t) != NULL);
	c.cache_creation = -1;
	CHECK(aos_cus_usage_map_anthropic(&c, &t) == NULL && t.cache_write_1h == 1999);
}

/* Gemini generateContent: thoughts are output. */
static void
test_gemini(void)
{
	AosUsageCounters c = counters();
	AosTokens	t;

	CHECK(aos_cus_usage_map_gemini(&c, &t) != NULL);
	c.prompt = 1256;
	CHECK(aos_cus_usage_map_gemini(&c, &t) == NULL && t.input == 1256 && t.output == 0);
	c.cached = 1024;
	c.completion = 412;
	c.reasoning = 750;
	c.tool_prompt = 10;
	CHECK(aos_cus_usage_map_gemini(&c, &t) == NULL);
	CHECK(t.input == 242 && t.cache_read == 1024 && t.output == 1162 && t.reasoning == 750);
	c.cached = 1257;
	CHECK(aos_cus_usage_map_gemini(&c, &t) != NULL);
	c.cached = 0;
	c.reasoning = INT64_MAX;
	CHECK(aos_cus_usage_map_gemini(&c, &t) != NULL);
}

/* OTel GenAI attributes: cached tokens and reasoning are inside the totals and come out of them once. */
static void
test_otel(void)
{
	AosUsageCounters c = counters();
	AosTokens	t;

	CHECK(aos_cus_usage_map_otel(&c, &t) != NULL);
	c.prompt = 15521;
	CHECK(aos_cus_usage_map_otel(&c, &t) == NULL && t.input == 15521 && t.output == 0);
	c.completion = 393;
	c.cached = 12000;
	c.cache_creation = 3500;
	CHECK(aos_cus_usage_map_otel(&c, &t) == NULL);
	CHECK(t.input == 21 && t.cache_read == 12000 && t.cache_write == 3500 && t.cache_write_1h == 0 && t.output == 393);
	CHECK(t.reasoning == 0 && t.input_audio == 0 && t.output_audio == 0);
	CHECK(t.input + t.cache_read + t.cache_write == c.prompt);
	c.cache_creation = 3522;
	CHECK(aos_cus_usage_map_otel(&c, &t) != NULL);
	c.cache_creation = 3521;
	CHECK(aos_cus_usage_map_otel(&c, &t) == NULL && t.input == 0);
	c.reasoning = 393;
	CHECK(aos_cus_usage_map_otel(&c, &t) == NULL && t.output == 393 && t.reasoning == 393);
	c.reasoning = 394;
	CHECK(aos_cus_usage_map_otel(&c, &t) != NULL);
}

/* OTel provider names, current and deprecated, map to aos_cus providers; others to none. */
static void
test_otel_provider(void)
{
	CHECK(aos_cus_otel_provider("openai", 6) == aos_cus_provider_parse("openai", 6));
	CHECK(aos_cus_otel_provider("aws.bedrock", 11) == aos_cus_provider_parse("aws_bedrock", 11));
	CHECK(aos_cus_otel_provider("gcp.vertex_ai", 13) == aos_cus_provider_parse("google", 6));
	CHECK(aos_cus_otel_provider("gcp.gemini", 10) == aos_cus_provider_parse("google", 6));
	CHECK(aos_cus_otel_provider("azure.ai.openai", 15) == aos_cus_provider_parse("azure_openai", 12));
	CHECK(aos_cus_otel_provider("mistral_ai", 10) == aos_cus_provider_parse("mistral", 7));
	CHECK(aos_cus_otel_provider("anthropic", 9) == aos_cus_provider_parse("anthropic", 9));
	CHECK(aos_cus_otel_provider("cohere", 6) == -1);
	CHECK(aos_cus_otel_provider("openai2", 7) == -1);
	CHECK(aos_cus_otel_provider("opena", 5) == -1);
}

/* Run every usage mapping case. */
int
main(void)
{
	test_openai();
	test_anthropic();
	test_gemini();
	test_otel();
	test_otel_provider();
	return UNIT_DONE();
}
