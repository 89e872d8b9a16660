/*
 * vocab.h: the product's vocabulary, defined once (no Postgres headers): providers, service tiers and token
 * buckets, with their SQL spellings. The SQL domains aos_cus.provider and aos_cus.service_tier and the token
 * columns of aos_cus.cus_llm_usage (src/sql/10_tables.sql) list the same names in the same order
 * (test/unit/test_vocab.c compares them).
 */
#ifndef AOS_CUS_VOCAB_H
#define AOS_CUS_VOCAB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Providers (README: Integrations); custom is an integration that may report any provider's usage. */
typedef enum AosProvider
{
	AOS_PROVIDER_OPENAI,
	AOS_PROVIDER_ANTHROPIC,
	AOS_PROVIDER_GOOGLE,
	AOS_PROVIDER_AZURE_OPENAI,
	AOS_PROVIDER_AWS_BEDROCK,
	AOS_PROVIDER_MISTRAL,
	AOS_PROVIDER_CUSTOM,
	AOS_PROVIDER_COUNT
} AosProvider;

/* Service tiers (README: Pricing, cost and tokens). */
typedef enum AosTier
{
	AOS_TIER_STANDARD,
	AOS_TIER_PRIORITY,
	AOS_TIER_FLEX,
	AOS_TIER_BATCH,
	AOS_TIER_COUNT
} AosTier;

/* Token buckets of one call, in the order of AosPrices, AosCostItem and the usage table's columns. */
typedef enum AosBucket
{
	AOS_BUCKET_INPUT,
	AOS_BUCKET_CACHE_READ,
	AOS_BUCKET_CACHE_WRITE,
	AOS_BUCKET_CACHE_WRITE_1H,
	AOS_BUCKET_OUTPUT,
	AOS_BUCKET_REASONING,
	AOS_BUCKET_INPUT_AUDIO,
	AOS_BUCKET_OUTPUT_AUDIO,
	AOS_BUCKET_COUNT
} AosBucket;

/* Names as SQL spells them, by enum value, each list NULL-terminated. */
extern const char *const aos_cus_provider_names[AOS_PROVIDER_COUNT + 1];
extern const char *const aos_cus_tier_names[AOS_TIER_COUNT + 1];
extern const char *const aos_cus_bucket_names[AOS_BUCKET_COUNT + 1];	/* "input", ... (cost_breakdown items) */
extern const char *const aos_cus_token_columns[AOS_BUCKET_COUNT + 1];	/* "input_tokens", ... (columns, JSON keys, arguments) */

/* Token counts of one call (README: Pricing, cost and tokens); disjoint except that output includes reasoning. */
typedef struct AosTokens
{
	int64_t		input;			/* uncached input */
	int64_t		cache_read;		/* input read from the prompt cache */
	int64_t		cache_write;	/* input written to the 5-minute cache */
	int64_t		cache_write_1h; /* input written to the 1-hour cache */
	int64_t		output;			/* all billed output, reasoning included */
	int64_t		reasoning;		/* the part of output that was reasoning */
	int64_t		input_audio;	/* audio input */
	int64_t		output_audio;	/* audio output */
} AosTokens;

/* The count of bucket b in t. */
int64_t		aos_cus_tokens_get(const AosTokens *t, AosBucket b);

/* Set the count of bucket b in t. */
void		aos_cus_tokens_set(AosTokens *t, AosBucket b, int64_t count);

/* Whether bucket b counts in a call's token total (token limits): every bucket but reasoning, part of output. */
bool		aos_cus_bucket_in_total(AosBucket b);

/* Index of the len-byte string s in the NULL-terminated list names, or -1. */
int			aos_cus_enum_index(const char *s, size_t len, const char *const *names);

/* Comma-separated list of names (for error hints), written into buf of size bufsize. */
void		aos_cus_enum_list(const char *const *names, char *buf, size_t bufsize);

/* Provider index of a name (exact, lower case), or -1. */
int			aos_cus_provider_parse(const char *name, int len);

/* Tier index of a name (exact, lower case), or -1. */
int			aos_cus_tier_parse(const char *name, int len);

#endif
