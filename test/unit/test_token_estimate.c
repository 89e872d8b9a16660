/* test_token_estimate.c: unit tests of the token estimator. */
#include "token_estimate.h"
#include "unit.h"

/* Estimate of a C string. */
static int64_t
est(const char *s, AosTokenizer f)
{
	return aos_cus_token_estimate(s, strlen(s), f);
}

/* Run every estimator case. */
int
main(void)
{
	CHECK(aos_cus_tokenizer_for_model(NULL, 0) == AOS_TOKENIZER_CHARS4);
	CHECK(aos_cus_tokenizer_for_model("GPT-4o", 6) == AOS_TOKENIZER_OPENAI);
	CHECK(aos_cus_tokenizer_for_model("o3-mini", 7) == AOS_TOKENIZER_OPENAI);
	CHECK(aos_cus_tokenizer_for_model("omni", 4) == AOS_TOKENIZER_CHARS4);
	CHECK(aos_cus_tokenizer_for_model("us.anthropic.claude-sonnet-4-5-v1:0", 35) == AOS_TOKENIZER_ANTHROPIC);
	CHECK(aos_cus_tokenizer_for_model("gemini-2.5-pro", 14) == AOS_TOKENIZER_GEMINI);
	CHECK(aos_cus_tokenizer_for_model("mistral-large", 13) == AOS_TOKENIZER_CHARS4);

	CHECK(est("", AOS_TOKENIZER_CHARS4) == 0);
	CHECK(est("", AOS_TOKENIZER_OPENAI) == 0);
	CHECK(est("abcde", AOS_TOKENIZER_CHARS4) == 2);
	CHECK(est("\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", AOS_TOKENIZER_CHARS4) == 1);
	CHECK(est("hello", AOS_TOKENIZER_OPENAI) == 1);
	CHECK(est("hello world", AOS_TOKENIZER_OPENAI) == 2);
	CHECK(est("Let's", AOS_TOKENIZER_OPENAI) == 2);
	CHECK(est("top-line", AOS_TOKENIZER_OPENAI) == 2);
	CHECK(est("1234567", AOS_TOKENIZER_OPENAI) == 3);
	CHECK(est("\n\n\n", AOS_TOKENIZER_OPENAI) == 1);
	/* 20 letters: one token for the first 7, then one per 6 more, rounded up once. */
	CHECK(est("internationalization", AOS_TOKENIZER_OPENAI) == 4);
	CHECK(est("\xe6\x95\xb0\xe6\x8d\xae", AOS_TOKENIZER_GEMINI) == 2);
	CHECK(est("hello world", AOS_TOKENIZER_ANTHROPIC) == 3);
	/* A truncated UTF-8 sequence at the end is counted, not read past. */
	CHECK(est("ab\xe6\x95", AOS_TOKENIZER_OPENAI) >= 1);
	CHECK(est("\xff\xfe", AOS_TOKENIZER_OPENAI) >= 1);
	return UNIT_DONE();
}
