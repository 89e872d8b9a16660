/* cost.c: price row selection and exact 128-bit cost arithmetic (see cost.h). */
#include "cost.h"

#include <stdio.h>
#include <string.h>

#define MICRO 1000000

/* First invalid bucket as a status. */
AosCostStatus
aos_cus_tokens_check(const AosTokens *tokens, AosBucket *bad_bucket)
{
	for (int b = 0; b < AOS_BUCKET_COUNT; b++)
	{
		if (aos_cus_tokens_get(tokens, b) < 0)
		{
			if (bad_bucket)
				*bad_bucket = b;
			return AOS_COST_NEGATIVE_TOKENS;
		}
	}
	if (tokens->reasoning > tokens->output)
	{
		if (bad_bucket)
			*bad_bucket = AOS_BUCKET_REASONING;
		return AOS_COST_REASONING_EXCEEDS_OUTPUT;
	}
	return AOS_COST_OK;
}

/* Input + cache read + cache writes, saturating. */
int64_t
aos_cus_prompt_tokens(const AosTokens *t)
{
	__int128	sum = (__int128) t->input + t->cache_read + t->cache_write + t->cache_write_1h;

	return sum > INT64_MAX ? INT64_MAX : (int64_t) sum;
}

/* Unit price of a bucket after the documented fallbacks. */
int64_t
aos_cus_effective_price(const AosPriceRow *row, AosBucket bucket)
{
	int64_t		p = row->price[bucket];

	if (p != AOS_PRICE_NONE)
		return p;
	switch (bucket)
	{
		case AOS_BUCKET_CACHE_WRITE_1H:
			return aos_cus_effective_price(row, AOS_BUCKET_CACHE_WRITE);
		case AOS_BUCKET_REASONING:
		case AOS_BUCKET_OUTPUT_AUDIO:
			return row->price[AOS_BUCKET_OUTPUT];
		default:
			return row->price[AOS_BUCKET_INPUT];
	}
}

/* True when candidate a prices the call before b: higher threshold, then later version. */
static bool
row_better(const AosPriceRow *a, const AosPriceRow *b)
{
	if (a->min_prompt_tokens != b->min_prompt_tokens)
		return a->min_prompt_tokens > b->min_prompt_tokens;
	return a->effective_from > b->effective_from;
}

/* Best row of one tier for at and prompt, or -1. */
static int
select_in_tier(const AosPriceRow *rows, int n, int tier, int64_t at, int64_t prompt)
{
	int			best = -1;

	for (int i = 0; i < n; i++)
	{
		const AosPriceRow *r = &rows[i];

		if (r->tier != tier || r->effective_from > at)
			continue;
		if (r->min_prompt_tokens > 0 && prompt <= r->min_prompt_tokens)
			continue;
		if (best < 0 || row_better(r, &rows[best]))
			best = i;
	}
	return best;
}

/* The row pricing a call; standard when the tier has none. */
int
aos_cus_price_select(const AosPriceRow *rows, int n, int tier, int64_t at, int64_t prompt)
{
	int			best = select_in_tier(rows, n, tier, at, prompt);

	if (best < 0 && tier != AOS_TIER_STANDARD)
		best = select_in_tier(rows, n, AOS_TIER_STANDARD, at, prompt);
	return best;
}

/* Exact cost; one rounding half up at the end; overflow when the result exceeds int64. */
AosCostStatus
aos_cus_cost_compute(const AosTokens *tokens, const AosPriceRow *row, int64_t *cost, AosCostItem *items)
{
	/* The largest sum whose rounded quotient still fits in int64. */
	const unsigned __int128 limit = (unsigned __int128) INT64_MAX * MICRO + MICRO / 2 - 1;
	unsigned __int128 sum = 0;
	AosCostStatus status = aos_cus_tokens_check(tokens, NULL);

	if (status != AOS_COST_OK)
		return status;
	for (int b = 0; b < AOS_BUCKET_COUNT; b++)
	{
		int64_t		n = aos_cus_tokens_get(tokens, b);
		int64_t		price = aos_cus_effective_price(row, b);
		unsigned __int128 scaled;

		if (b == AOS_BUCKET_OUTPUT)
			n -= tokens->reasoning;
		/* Both factors are below 2^63, so the product is below 2^126 and sum + product cannot wrap. */
		scaled = (unsigned __int128) n * (uint64_t) price;
		if (items)
		{
			items[b].tokens = n;
			items[b].unit_price = price;
			items[b].scaled = scaled;
		}
		sum += scaled;
		if (sum > limit)
			return AOS_COST_OVERFLOW;
	}
	*cost = (int64_t) ((sum + MICRO / 2) / MICRO);
	return AOS_COST_OK;
}

/* Exact decimal text of scaled / 10^6. */
void
aos_cus_scaled_to_text(unsigned __int128 scaled, char *buf, int buflen)
{
	char		digits[48];
	int			len = 0;
	unsigned __int128 whole = scaled / MICRO;
	unsigned	frac = (unsigned) (scaled % MICRO);
	int			pos;

	do
	{
		digits[len++] = (char) ('0' + (int) (whole % 10));
		whole /= 10;
	} while (whole > 0 && len < (int) sizeof(digits) - 1);
	pos = 0;
	while (len > 0 && pos < buflen - 1)
		buf[pos++] = digits[--len];
	if (frac != 0 && pos + 8 < buflen)
	{
		int			width = 6;

		while (frac % 10 == 0)
		{
			frac /= 10;
			width--;
		}
		pos += snprintf(buf + pos, buflen - pos, ".%0*u", width, frac);
	}
	buf[pos] = '\0';
}
