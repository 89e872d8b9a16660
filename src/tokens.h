/* tokens.h: exact OpenAI token counts (count_tokens, count_message_tokens) for SQL and the rest of aos_cus. */
#ifndef AOS_CUS_TOKENS_H
#define AOS_CUS_TOKENS_H

#include "postgres.h"

#include "bpe.h"

/* Largest input, in bytes, count_tokens and count_message_tokens accept (54000 above it). */
#define AOS_TOKENS_MAX_INPUT (8 * 1024 * 1024)

/* Encoding of an OpenAI model as tiktoken maps it, or of an encoding name; 22023 naming the model otherwise. */
extern AosBpeEncoding aos_cus_model_encoding(const char *model, int len);

/* Exact tokens of text in the database encoding; argname names it in errors (22021, 54000). */
extern int64 aos_cus_count_text(AosBpeEncoding enc, const char *s, int len, const char *argname);

#endif
