/*
 * cost.h: exact integer cost of one LLM call, without Postgres headers.
 *
 * Money is micro-cents (1 USD = 10^8); prices are micro-cents per one million
 * tokens. A call's cost is the sum over its token buckets of tokens * price,
 * kept in unsigned 128-bit integers, divided by 10^6 once and rounded half up.
 */
#ifndef AOS_CUS_COST_H
#define AOS_CUS_COST_H

#include <stdbool.h>
#include <stdint.h>

#include "vocab.h"

/*
 * The largest token count one call may report per bucket (10^12): the sum of a call's buckets and its cost at
 * any stored price fit in int64 with room; sums over many calls saturate at INT64_MAX (README "Bounds").
 */
#define AOS_TOKEN_COUNT_MAX INT64_C(1000000000000)

/* One price row: micro-cents per 1M tokens per bucket; AOS_PRICE_NONE where the row has none. */
#define AOS_PRICE_NONE (-1)
typedef struct AosPriceRow
{
	int64_t		id;
	int			tier;			/* AosTier */
	int64_t		min_prompt_tokens;	/* long-context threshold; 0 for the base row */
	int64_t		effective_from; /* microseconds, any epoch, INT64_MIN for -infinity */
	int64_t		price[AOS_BUCKET_COUNT];
} AosPriceRow;

/* One bucket of a computed cost: tokens, the unit price applied, tokens * price (micro-cents * 10^6). */
typedef struct AosCostItem
{
	int64_t		tokens;
	int64_t		unit_price;
	unsigned __int128 scaled;
} AosCostItem;

typedef enum AosCostStatus
{
	AOS_COST_OK,
	AOS_COST_NEGATIVE_TOKENS,	/* some bucket is negative */
	AOS_COST_REASONING_EXCEEDS_OUTPUT,	/* reasoning > output */
	AOS_COST_OVERFLOW			/* the rounded cost does not fit in int64 */
} AosCostStatus;

/* First bucket that is invalid (negative, or reasoning > output), as a status; AOS_COST_OK when valid. */
AosCostStatus aos_cus_tokens_check(const AosTokens *tokens, AosBucket *bad_bucket);

/* Prompt size for long-context tiers: input + cache read + both cache writes (saturates at INT64_MAX). */
int64_t		aos_cus_prompt_tokens(const AosTokens *tokens);

/*
 * Unit price applied to each bucket when the row has none: cache read, cache
 * write and input audio fall back to input; the 1-hour write to the 5-minute
 * write (then input); reasoning and output audio to output.
 */
int64_t		aos_cus_effective_price(const AosPriceRow *row, AosBucket bucket);

/*
 * The row of rows[0..n) that prices a call of tier at time at with a prompt
 * of prompt tokens: among rows of that tier in force at at (effective_from <=
 * at), the one with the highest threshold the prompt exceeds (threshold 0
 * always applies), latest effective_from first. Falls back to standard when
 * the tier has no applicable row. Returns the index, or -1 when none.
 */
int			aos_cus_price_select(const AosPriceRow *rows, int n, int tier, int64_t at, int64_t prompt);

/*
 * Cost of tokens at row's prices into *cost (micro-cents, rounded half up once).
 * items, when not NULL, receives AOS_BUCKET_COUNT entries (output excludes
 * the reasoning part, which is its own item).
 */
AosCostStatus aos_cus_cost_compute(const AosTokens *tokens, const AosPriceRow *row,
							   int64_t *cost, AosCostItem *items);

/* Decimal text of scaled / 10^6 (exact, no trailing zeros) into buf (at least 48 bytes). */
void		aos_cus_scaled_to_text(unsigned __int128 scaled, char *buf, int buflen);

#endif
