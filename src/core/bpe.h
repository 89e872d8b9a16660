/* bpe.h: exact OpenAI token counts (tiktoken's o200k_base and cl100k_base), without Postgres headers. */
#ifndef AOS_CUS_BPE_H
#define AOS_CUS_BPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The encodings aos_cus counts exactly. */
typedef enum AosBpeEncoding
{
	AOS_BPE_CL100K,
	AOS_BPE_O200K,
	AOS_BPE_NENCODINGS
} AosBpeEncoding;

/* A rank file (written by scripts/tiktoken_ranks.py) viewed in place, e.g. through a read-only mapping. */
typedef struct AosBpeRanks
{
	uint32_t	n_ranks;
	uint32_t	n_slots;
	const uint32_t *offsets;	/* n_ranks + 1 byte offsets into blob */
	const uint32_t *slots;		/* hash slots: 0 empty, else rank + 1 */
	const uint8_t *blob;
} AosBpeRanks;

/* Pre-tokenizer and merge scratch of one encoding; reused across calls. */
typedef struct AosBpeCounter AosBpeCounter;

/* Errors of aos_cus_bpe_count (negative results). */
#define AOS_BPE_ERR_UTF8	(-1)	/* the text is not valid UTF-8 */
#define AOS_BPE_ERR_NOMEM	(-2)	/* out of memory */
#define AOS_BPE_ERR_MATCH	(-3)	/* the regex engine failed (e.g. its stack limit) */

/* Name of an encoding ("o200k_base"). */
const char *aos_cus_bpe_encoding_name(AosBpeEncoding enc);

/* Encoding of a model as tiktoken maps it (exact names, then prefixes) or of an encoding's name; -1 for others. */
int			aos_cus_bpe_encoding_for_model(const char *model, size_t len);

/* View a rank file of size bytes at data (4-byte aligned); false when it is malformed. */
bool		aos_cus_bpe_ranks_open(AosBpeRanks *ranks, const void *data, size_t size);

/* Rank of a byte string, or -1 when it is not a token. */
int64_t		aos_cus_bpe_rank(const AosBpeRanks *ranks, const uint8_t *s, size_t len);

/* Tokens of one pre-tokenized piece after byte-pair merging (tiktoken's rule: lowest rank, leftmost first). */
int64_t		aos_cus_bpe_piece_tokens(AosBpeCounter *c, const uint8_t *s, size_t len);

/* A counter for enc over ranks (which must outlive it); NULL when out of memory or PCRE2 fails. */
AosBpeCounter *aos_cus_bpe_counter_new(AosBpeEncoding enc, const AosBpeRanks *ranks);
void		aos_cus_bpe_counter_free(AosBpeCounter *c);

/* Tokens of UTF-8 text (special tokens such as <|endoftext|> count as ordinary text), or AOS_BPE_ERR_*. */
int64_t		aos_cus_bpe_count(AosBpeCounter *c, const char *text, size_t len);

#endif
