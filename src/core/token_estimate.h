/* token_estimate.h: fast token-count estimates of text, without Postgres headers or vocabularies. */
#ifndef AOS_CUS_TOKEN_ESTIMATE_H
#define AOS_CUS_TOKEN_ESTIMATE_H

#include <stddef.h>
#include <stdint.h>

/* Tokenizer families the estimator knows; CHARS4 is the characters / 4 fallback. */
typedef enum AosTokenizer
{
	AOS_TOKENIZER_CHARS4,
	AOS_TOKENIZER_OPENAI,
	AOS_TOKENIZER_ANTHROPIC,
	AOS_TOKENIZER_GEMINI
} AosTokenizer;

/* Family of a model name (NULL or unknown: CHARS4). */
AosTokenizer aos_cus_tokenizer_for_model(const char *model, size_t len);

/*
 * Estimated tokens of UTF-8 text. CHARS4 is ceil(code points / 4). The known
 * families split text as BPE pre-tokenizers do (words with their leading
 * space, digit groups of three, punctuation, line breaks, CJK characters)
 * and charge each piece by its length, scaled per family.
 */
int64_t		aos_cus_token_estimate(const char *text, size_t len, AosTokenizer family);

#endif
