/* test_cost.c: unit tests of price row selection and exact cost arithmetic. */
#include "cost.h"
#include "unit.h"

#include <limits.h>

/* A price row with every bucket unset except input and output. */
static AosPriceRow
row(int64_t id, int tier, int64_t min_prompt, int64_t eff, int64_t input, int64_t output)
{
	AosPriceRow r;

	r.id = id;
	r.tier = tier;
	r.min_prompt_tokens = min_prompt;
	r.effective_from = eff;
	for (int b = 0; b < AOS_BUCKET_COUNT; b++)
		r.price[b] = AOS_PRICE_NONE;
	r.price[AOS_BUCKET_INPUT] = input;
	r.price[AOS_BUCKET_OUTPUT] = output;
	return r;
}

/* Cost of tokens at r, or -1 with the status in *st. */
static int64_t
cost_of(AosTokens t, const AosPriceRow *r, AosCostStatus *st)
{
	int64_t		c = -1;

	*st = aos_cus_cost_compute(&t, r, &c, NULL);
	return *st == AOS_COST_OK ? c : -1;
}

/* Arithmetic, rounding and fallbacks. */
static void
test_arithmetic(void)
{
	AosPriceRow gpt4o = row(1, AOS_TIER_STANDARD, 0, INT64_MIN, 250000000, 1000000000);
	AosPriceRow claude = row(2, AOS_TIER_STANDARD, 0, INT64_MIN, 300000000, 1500000000);
	AosCostStatus st;
	AosCostItem items[AOS_BUCKET_COUNT];
	int64_t		c;
	char		text[64];

	gpt4o.price[AOS_BUCKET_CACHE_READ] = 125000000;
	/* 1000 in, 500 out, 200 cached at $2.50/$10/$1.25 per 1M: 0.0025 + 0.005 + 0.00025 USD. */
	CHECK(cost_of((AosTokens) {.input = 1000,.output = 500,.cache_read = 200}, &gpt4o, &st) == 775000);
	/* One token of input: 250 micro-cents exactly. */
	CHECK(cost_of((AosTokens) {.input = 1}, &gpt4o, &st) == 250);
	/* Rounding half up, once: 1 token at 1,500,000 per 1M is 1.5 -> 2; at 1,499,999 -> 1. */
	CHECK(cost_of((AosTokens) {.input = 1}, &(AosPriceRow) {.price = {1500000, 0, -1, -1, 0, -1, -1, -1}}, &st) == 2);
	CHECK(cost_of((AosTokens) {.input = 1}, &(AosPriceRow) {.price = {1499999, 0, -1, -1, 0, -1, -1, -1}}, &st) == 1);
	/* Rounding happens on the sum: two halves make one, not two. */
	CHECK(cost_of((AosTokens) {.input = 1,.output = 1}, &(AosPriceRow) {.price = {500000, -1, -1, -1, 500000, -1, -1, -1}}, &st) == 1);
	CHECK(cost_of((AosTokens) {0}, &gpt4o, &st) == 0);

	/* Cache writes: 5m and 1h prices, and the 1h fallback to the 5m price then input. */
	claude.price[AOS_BUCKET_CACHE_WRITE] = 375000000;
	claude.price[AOS_BUCKET_CACHE_WRITE_1H] = 600000000;
	claude.price[AOS_BUCKET_CACHE_READ] = 30000000;
	CHECK(cost_of((AosTokens) {.cache_write = 1000000}, &claude, &st) == 375000000);
	CHECK(cost_of((AosTokens) {.cache_write_1h = 1000000}, &claude, &st) == 600000000);
	claude.price[AOS_BUCKET_CACHE_WRITE_1H] = AOS_PRICE_NONE;
	CHECK(aos_cus_effective_price(&claude, AOS_BUCKET_CACHE_WRITE_1H) == 375000000);
	claude.price[AOS_BUCKET_CACHE_WRITE] = AOS_PRICE_NONE;
	CHECK(aos_cus_effective_price(&claude, AOS_BUCKET_CACHE_WRITE_1H) == 300000000);
	CHECK(aos_cus_effective_price(&claude, AOS_BUCKET_INPUT_AUDIO) == 300000000);
	CHECK(aos_cus_effective_price(&claude, AOS_BUCKET_OUTPUT_AUDIO) == 1500000000);

	/* Reasoning is part of output, charged at the reasoning price where one exists. */
	CHECK(cost_of((AosTokens) {.output = 100,.reasoning = 60}, &gpt4o, &st) == 100000);
	gpt4o.price[AOS_BUCKET_REASONING] = 2000000000;
	CHECK(cost_of((AosTokens) {.output = 100,.reasoning = 60}, &gpt4o, &st) == 40000 + 120000);
	CHECK(aos_cus_cost_compute(&(AosTokens) {.output = 100,.reasoning = 60}, &gpt4o, &c, items) == AOS_COST_OK);
	CHECK(items[AOS_BUCKET_OUTPUT].tokens == 40 && items[AOS_BUCKET_REASONING].tokens == 60);
	CHECK(items[AOS_BUCKET_REASONING].unit_price == 2000000000);

	/* Audio buckets. */
	gpt4o.price[AOS_BUCKET_INPUT_AUDIO] = 10000000000;
	gpt4o.price[AOS_BUCKET_OUTPUT_AUDIO] = 20000000000;
	CHECK(cost_of((AosTokens) {.input_audio = 1000,.output_audio = 1000}, &gpt4o, &st) == 10000000 + 20000000);

	/* Exact decimal text of an item. */
	aos_cus_scaled_to_text((unsigned __int128) 1500000, text, sizeof(text));
	CHECK_STR(text, "1.5");
	aos_cus_scaled_to_text((unsigned __int128) 250, text, sizeof(text));
	CHECK_STR(text, "0.00025");
	aos_cus_scaled_to_text((unsigned __int128) 7000000, text, sizeof(text));
	CHECK_STR(text, "7");
	aos_cus_scaled_to_text((unsigned __int128) INT64_MAX * 1000000 * 8, text, sizeof(text));
	CHECK_STR(text, "73786976294838206456");
}

/* Invalid tokens and overflow. */
static void
test_errors(void)
{
	AosPriceRow high = row(1, AOS_TIER_STANDARD, 0, INT64_MIN, 100000000000000, 100000000000000);
	AosCostStatus st;
	AosBucket	bad;
	int64_t		c;

	CHECK(cost_of((AosTokens) {.input = -1}, &high, &st) == -1 && st == AOS_COST_NEGATIVE_TOKENS);
	CHECK(aos_cus_tokens_check(&(AosTokens) {.output_audio = -5}, &bad) == AOS_COST_NEGATIVE_TOKENS && bad == AOS_BUCKET_OUTPUT_AUDIO);
	CHECK(aos_cus_tokens_check(&(AosTokens) {.output = 1,.reasoning = 2}, &bad) == AOS_COST_REASONING_EXCEEDS_OUTPUT && bad == AOS_BUCKET_REASONING);
	CHECK(cost_of((AosTokens) {.output = 1,.reasoning = 2}, &high, &st) == -1 && st == AOS_COST_REASONING_EXCEEDS_OUTPUT);

	/* 2^62 tokens at $1,000,000 per 1M tokens (10^14 micro-cents): about 4.6e23 micro-cents, far beyond int64. */
	CHECK(cost_of((AosTokens) {.input = (int64_t) 1 << 62}, &high, &st) == -1 && st == AOS_COST_OVERFLOW);
	/* Every bucket at INT64_MAX with the highest price: the 128-bit sum must not wrap either. */
	{
		AosPriceRow max = row(1, AOS_TIER_STANDARD, 0, INT64_MIN, INT64_MAX, INT64_MAX);
		AosTokens	all = {INT64_MAX, INT64_MAX, INT64_MAX, INT64_MAX, INT64_MAX, INT64_MAX, INT64_MAX, INT64_MAX};

		for (int b = 0; b < AOS_BUCKET_COUNT; b++)
			max.price[b] = INT64_MAX;
		CHECK(cost_of(all, &max, &st) == -1 && st == AOS_COST_OVERFLOW);
	}
	/* 2^62 tokens at 1 micro-cent per 1M fits: 4611686018427.387904 -> 4611686018427. */
	CHECK(cost_of((AosTokens) {.input = (int64_t) 1 << 62}, &(AosPriceRow) {.price = {1, 0, -1, -1, 0, -1, -1, -1}}, &st) == 4611686018427);
	/* The exact edge: INT64_MAX tokens at 10^6 per 1M is INT64_MAX micro-cents; one more micro-cent overflows. */
	CHECK(cost_of((AosTokens) {.input = INT64_MAX}, &(AosPriceRow) {.price = {1000000, 0, -1, -1, 0, -1, -1, -1}}, &st) == INT64_MAX);
	CHECK(aos_cus_cost_compute(&(AosTokens) {.input = INT64_MAX,.output = 1},
						   &(AosPriceRow) {.price = {1000000, -1, -1, -1, 1000000, -1, -1, -1}}, &c, NULL) == AOS_COST_OVERFLOW);
	/* Half a micro-cent below the edge still rounds into range; exactly half above it does not. */
	CHECK(aos_cus_cost_compute(&(AosTokens) {.input = INT64_MAX,.output = 1},
						   &(AosPriceRow) {.price = {1000000, -1, -1, -1, 499999, -1, -1, -1}}, &c, NULL) == AOS_COST_OK && c == INT64_MAX);
	CHECK(aos_cus_cost_compute(&(AosTokens) {.input = INT64_MAX,.output = 1},
						   &(AosPriceRow) {.price = {1000000, -1, -1, -1, 500000, -1, -1, -1}}, &c, NULL) == AOS_COST_OVERFLOW);
}

/* Tier, long-context and effective-date selection. */
static void
test_select(void)
{
	AosPriceRow rows[] = {
		row(10, AOS_TIER_STANDARD, 0, INT64_MIN, 1, 1),
		row(11, AOS_TIER_STANDARD, 0, 1000, 2, 2),
		row(12, AOS_TIER_STANDARD, 272000, INT64_MIN, 3, 3),
		row(13, AOS_TIER_FLEX, 0, INT64_MIN, 4, 4),
		row(14, AOS_TIER_FLEX, 272000, INT64_MIN, 5, 5),
		row(15, AOS_TIER_PRIORITY, 0, 5000, 6, 6),
	};
	int			n = sizeof(rows) / sizeof(rows[0]);

	CHECK(rows[aos_cus_price_select(rows, n, AOS_TIER_STANDARD, 0, 10)].id == 10);
	CHECK(rows[aos_cus_price_select(rows, n, AOS_TIER_STANDARD, 999, 10)].id == 10);
	CHECK(rows[aos_cus_price_select(rows, n, AOS_TIER_STANDARD, 1000, 10)].id == 11);
	/* Exactly the threshold is standard; one more token is the long-context tier. */
	CHECK(rows[aos_cus_price_select(rows, n, AOS_TIER_STANDARD, 2000, 272000)].id == 11);
	CHECK(rows[aos_cus_price_select(rows, n, AOS_TIER_STANDARD, 2000, 272001)].id == 12);
	CHECK(rows[aos_cus_price_select(rows, n, AOS_TIER_FLEX, 2000, 272000)].id == 13);
	CHECK(rows[aos_cus_price_select(rows, n, AOS_TIER_FLEX, 2000, 272001)].id == 14);
	/* A tier without a row in force falls back to standard. */
	CHECK(rows[aos_cus_price_select(rows, n, AOS_TIER_PRIORITY, 4999, 10)].id == 11);
	CHECK(rows[aos_cus_price_select(rows, n, AOS_TIER_PRIORITY, 5000, 10)].id == 15);
	CHECK(rows[aos_cus_price_select(rows, n, AOS_TIER_BATCH, 0, 10)].id == 10);
	CHECK(aos_cus_price_select(rows + 1, 1, AOS_TIER_STANDARD, 999, 10) == -1);
	CHECK(aos_cus_price_select(rows, 0, AOS_TIER_STANDARD, 0, 0) == -1);

	CHECK(aos_cus_prompt_tokens(&(AosTokens) {.input = 1,.cache_read = 2,.cache_write = 3,.cache_write_1h = 4,.output = 100}) == 10);
	CHECK(aos_cus_prompt_tokens(&(AosTokens) {.input = INT64_MAX,.cache_read = INT64_MAX}) == INT64_MAX);
}

/* Run every cost case. */
int
main(void)
{
	test_arithmetic();
	test_errors();
	test_select();
	return UNIT_DONE();
}
