/* bpe.c: tiktoken's pre-tokenizer (PCRE2, JIT) and byte-pair merge over a memory-mapped rank file. */
#include "bpe.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <stdlib.h>
#include <string.h>

/* tiktoken's patterns with \s written out as Unicode White_Space, as Rust's regex means it (PCRE2's \s lacks U+0085). */
#define WS "\\t\\n\\x{0b}\\f\\r \\x{85}\\x{a0}\\x{1680}\\x{2000}-\\x{200a}\\x{2028}\\x{2029}\\x{202f}\\x{205f}\\x{3000}"
#define CONTRACTION "(?i:'s|'t|'re|'ve|'m|'ll|'d)"
#define UPPER "[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]"
#define LOWER "[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]"

static const char *const patterns[AOS_BPE_NENCODINGS] = {
	[AOS_BPE_CL100K] = CONTRACTION "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^" WS "\\p{L}\\p{N}]+[\\r\\n]*"
	"|[" WS "]*[\\r\\n]+|[" WS "]+(?![^" WS "])|[" WS "]+",
	[AOS_BPE_O200K] = "[^\\r\\n\\p{L}\\p{N}]?" UPPER "*" LOWER "+" CONTRACTION "?"
	"|[^\\r\\n\\p{L}\\p{N}]?" UPPER "+" LOWER "*" CONTRACTION "?"
	"|\\p{N}{1,3}| ?[^" WS "\\p{L}\\p{N}]+[\\r\\n/]*|[" WS "]*[\\r\\n]+|[" WS "]+(?![^" WS "])|[" WS "]+",
};

static const char *const names[AOS_BPE_NENCODINGS] = {
	[AOS_BPE_CL100K] = "cl100k_base",
	[AOS_BPE_O200K] = "o200k_base",
};

/* tiktoken's model table (tiktoken/model.py and the npm package's model_to_encoding.json) for these encodings. */
typedef struct ModelRule
{
	const char *name;
	AosBpeEncoding enc;
} ModelRule;

static const ModelRule exact_models[] = {
	{"o1", AOS_BPE_O200K}, {"o3", AOS_BPE_O200K}, {"o4-mini", AOS_BPE_O200K}, {"gpt-5", AOS_BPE_O200K},
	{"gpt-4.1", AOS_BPE_O200K}, {"gpt-4o", AOS_BPE_O200K}, {"gpt-4", AOS_BPE_CL100K},
	{"gpt-3.5-turbo", AOS_BPE_CL100K}, {"gpt-3.5", AOS_BPE_CL100K}, {"gpt-35-turbo", AOS_BPE_CL100K},
	{"davinci-002", AOS_BPE_CL100K}, {"babbage-002", AOS_BPE_CL100K}, {"text-embedding-ada-002", AOS_BPE_CL100K},
	{"text-embedding-3-small", AOS_BPE_CL100K}, {"text-embedding-3-large", AOS_BPE_CL100K},
	{"cl100k_base", AOS_BPE_CL100K}, {"o200k_base", AOS_BPE_O200K},
};

/* Prefixes in tiktoken's order: the first that matches wins. */
static const ModelRule prefix_models[] = {
	{"o1-", AOS_BPE_O200K}, {"o3-", AOS_BPE_O200K}, {"o4-mini-", AOS_BPE_O200K}, {"gpt-5-", AOS_BPE_O200K},
	{"gpt-4.5-", AOS_BPE_O200K}, {"gpt-4.1-", AOS_BPE_O200K}, {"chatgpt-4o-", AOS_BPE_O200K},
	{"gpt-4o-", AOS_BPE_O200K}, {"gpt-4-", AOS_BPE_CL100K}, {"gpt-3.5-turbo-", AOS_BPE_CL100K},
	{"gpt-35-turbo-", AOS_BPE_CL100K}, {"ft:gpt-4o", AOS_BPE_O200K}, {"ft:gpt-4", AOS_BPE_CL100K},
	{"ft:gpt-3.5-turbo", AOS_BPE_CL100K}, {"ft:davinci-002", AOS_BPE_CL100K}, {"ft:babbage-002", AOS_BPE_CL100K},
};

#define NONE UINT32_MAX

struct AosBpeCounter
{
	const AosBpeRanks *ranks;
	pcre2_code *re;
	pcre2_match_data *md;
	pcre2_match_context *mctx;
	pcre2_jit_stack *stack;
	/* merge scratch for pieces up to cap bytes: linked parts, each part's pair rank, a min-heap */
	size_t		cap;
	uint32_t   *next;
	uint32_t   *prev;
	uint32_t   *pair;
	uint64_t   *heap;
};

const char *
aos_cus_bpe_encoding_name(AosBpeEncoding enc)
{
	return names[enc];
}

int
aos_cus_bpe_encoding_for_model(const char *model, size_t len)
{
	for (size_t i = 0; i < sizeof(exact_models) / sizeof(exact_models[0]); i++)
		if (strlen(exact_models[i].name) == len && memcmp(exact_models[i].name, model, len) == 0)
			return exact_models[i].enc;
	for (size_t i = 0; i < sizeof(prefix_models) / sizeof(prefix_models[0]); i++)
	{
		size_t		plen = strlen(prefix_models[i].name);

		if (plen <= len && memcmp(prefix_models[i].name, model, plen) == 0)
			return prefix_models[i].enc;
	}
	return -1;
}

/* Read a little-endian u32. */
static uint32_t
le32(const uint8_t *p)
{
	return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 | (uint32_t) p[3] << 24;
}

bool
aos_cus_bpe_ranks_open(AosBpeRanks *ranks, const void *data, size_t size)
{
	const uint8_t *p = data;
	uint64_t	n, slots, blob, need;

	if (size < 20 || memcmp(p, "AOSBPE01", 8) != 0 || ((uintptr_t) p & 3) != 0)
		return false;
	n = le32(p + 8);
	slots = le32(p + 12);
	blob = le32(p + 16);
	need = 20 + 4 * (n + 1) + 4 * slots + blob;
	if (n == 0 || slots < n || (slots & (slots - 1)) != 0 || need != size)
		return false;
	ranks->n_ranks = (uint32_t) n;
	ranks->n_slots = (uint32_t) slots;
	ranks->offsets = (const uint32_t *) (p + 20);
	ranks->slots = ranks->offsets + n + 1;
	ranks->blob = (const uint8_t *) (ranks->slots + slots);
	if (ranks->offsets[0] != 0 || ranks->offsets[n] != blob)
		return false;
	for (uint32_t r = 0; r < n; r++)
		if (ranks->offsets[r] >= ranks->offsets[r + 1])
			return false;
	for (uint32_t s = 0; s < slots; s++)
		if (ranks->slots[s] > n)
			return false;
	return true;
}

int64_t
aos_cus_bpe_rank(const AosBpeRanks *ranks, const uint8_t *s, size_t len)
{
	uint32_t	h = 0x811C9DC5u;
	uint32_t	mask = ranks->n_slots - 1;

	for (size_t i = 0; i < len; i++)
		h = (h ^ s[i]) * 0x01000193u;
	for (uint32_t i = h & mask;; i = (i + 1) & mask)
	{
		uint32_t	v = ranks->slots[i];
		uint32_t	off, end;

		if (v == 0)
			return -1;
		off = ranks->offsets[v - 1];
		end = ranks->offsets[v];
		if (end - off == len && memcmp(ranks->blob + off, s, len) == 0)
			return v - 1;
	}
}

/* Rank of the pair at part i (its bytes and the next part's), NONE when there is no next part or no such token. */
static uint32_t
pair_rank(AosBpeCounter *c, const uint8_t *s, size_t len, uint32_t i)
{
	uint32_t	j = c->next[i];
	int64_t		r;

	if (j == NONE)
		return NONE;
	r = aos_cus_bpe_rank(c->ranks, s + i, (c->next[j] == NONE ? len : c->next[j]) - i);
	return r < 0 ? NONE : (uint32_t) r;
}

/* Min-heap of (rank << 32 | part start), so the lowest rank and then the leftmost part comes first. */
static void
heap_push(uint64_t *heap, size_t *n, uint64_t v)
{
	size_t		i = (*n)++;

	while (i > 0 && heap[(i - 1) / 2] > v)
	{
		heap[i] = heap[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	heap[i] = v;
}

static uint64_t
heap_pop(uint64_t *heap, size_t *n)
{
	uint64_t	top = heap[0];
	uint64_t	v = heap[--*n];
	size_t		i = 0;

	for (;;)
	{
		size_t		k = 2 * i + 1;

		if (k >= *n)
			break;
		if (k + 1 < *n && heap[k + 1] < heap[k])
			k++;
		if (heap[k] >= v)
			break;
		heap[i] = heap[k];
		i = k;
	}
	if (*n > 0)
		heap[i] = v;
	return top;
}

/* Scratch kept between calls is for pieces up to this many bytes; a longer piece's scratch is freed after its text. */
#define KEEP_SCRATCH 4096

/* Free the merge scratch. */
static void
release(AosBpeCounter *c)
{
	free(c->next);
	free(c->prev);
	free(c->pair);
	free(c->heap);
	c->next = c->prev = c->pair = NULL;
	c->heap = NULL;
	c->cap = 0;
}

/* Make the scratch hold a piece of len bytes; false when out of memory. */
static bool
reserve(AosBpeCounter *c, size_t len)
{
	size_t		cap = c->cap ? c->cap : 64;
	uint32_t   *next, *prev, *pair;
	uint64_t   *heap;

	if (len <= c->cap)
		return true;
	while (cap < len)
		cap *= 2;
	next = realloc(c->next, cap * sizeof(uint32_t));
	if (next)
		c->next = next;
	prev = realloc(c->prev, cap * sizeof(uint32_t));
	if (prev)
		c->prev = prev;
	pair = realloc(c->pair, cap * sizeof(uint32_t));
	if (pair)
		c->pair = pair;
	heap = realloc(c->heap, 2 * cap * sizeof(uint64_t));
	if (heap)
		c->heap = heap;
	if (!next || !prev || !pair || !heap)
		return false;
	c->cap = cap;
	return true;
}

int64_t
aos_cus_bpe_piece_tokens(AosBpeCounter *c, const uint8_t *s, size_t len)
{
	size_t		n = 0;
	int64_t		parts = (int64_t) len;

	if (len <= 1 || aos_cus_bpe_rank(c->ranks, s, len) >= 0)
		return len == 0 ? 0 : 1;
	if (len >= NONE || !reserve(c, len))
		return AOS_BPE_ERR_NOMEM;
	/* one part per byte, named by its start offset */
	for (uint32_t i = 0; i < len; i++)
	{
		c->next[i] = i + 1 < len ? i + 1 : NONE;
		c->prev[i] = i > 0 ? i - 1 : NONE;
	}
	for (uint32_t i = 0; i < len; i++)
	{
		c->pair[i] = pair_rank(c, s, len, i);
		if (c->pair[i] != NONE)
			heap_push(c->heap, &n, (uint64_t) c->pair[i] << 32 | i);
	}
	while (n > 0)
	{
		uint64_t	top = heap_pop(c->heap, &n);
		uint32_t	i = (uint32_t) top, j;

		if (c->pair[i] != (uint32_t) (top >> 32))
			continue;			/* stale: part i merged away or its pair changed */
		j = c->next[i];
		c->next[i] = c->next[j];
		if (c->next[j] != NONE)
			c->prev[c->next[j]] = i;
		c->pair[j] = NONE;
		parts--;
		c->pair[i] = pair_rank(c, s, len, i);
		if (c->pair[i] != NONE)
			heap_push(c->heap, &n, (uint64_t) c->pair[i] << 32 | i);
		if (c->prev[i] != NONE)
		{
			uint32_t	p = c->prev[i];

			c->pair[p] = pair_rank(c, s, len, p);
			if (c->pair[p] != NONE)
				heap_push(c->heap, &n, (uint64_t) c->pair[p] << 32 | p);
		}
	}
	return parts;
}

AosBpeCounter *
aos_cus_bpe_counter_new(AosBpeEncoding enc, const AosBpeRanks *ranks)
{
	AosBpeCounter *c = calloc(1, sizeof(AosBpeCounter));
	int			err;
	PCRE2_SIZE	off;

	if (!c)
		return NULL;
	c->ranks = ranks;
	c->re = pcre2_compile((PCRE2_SPTR) patterns[enc], PCRE2_ZERO_TERMINATED, PCRE2_UTF, &err, &off, NULL);
	if (c->re)
	{
		pcre2_jit_compile(c->re, PCRE2_JIT_COMPLETE);	/* without JIT PCRE2 interprets the pattern */
		c->md = pcre2_match_data_create_from_pattern(c->re, NULL);
		c->mctx = pcre2_match_context_create(NULL);
		c->stack = pcre2_jit_stack_create(32 * 1024, 1024 * 1024, NULL);
	}
	if (!c->re || !c->md || !c->mctx || !c->stack)
	{
		aos_cus_bpe_counter_free(c);
		return NULL;
	}
	pcre2_jit_stack_assign(c->mctx, NULL, c->stack);
	return c;
}

void
aos_cus_bpe_counter_free(AosBpeCounter *c)
{
	if (!c)
		return;
	pcre2_jit_stack_free(c->stack);
	pcre2_match_context_free(c->mctx);
	pcre2_match_data_free(c->md);
	pcre2_code_free(c->re);
	release(c);
	free(c);
}

/* Tokens of text (see aos_cus_bpe_count), leaving the scratch as large as its longest piece needed. */
static int64_t
count(AosBpeCounter *c, const char *text, size_t len)
{
	const PCRE2_SIZE *ov = pcre2_get_ovector_pointer(c->md);
	PCRE2_SIZE	at = 0;
	uint32_t	opts = 0;		/* the first match checks the whole text is UTF-8, the rest need not */
	int64_t		total = 0;

	while (at < len)
	{
		int			rc = pcre2_match(c->re, (PCRE2_SPTR) text, len, at, opts, c->md, c->mctx);
		int64_t		n;

		if (rc == PCRE2_ERROR_NOMATCH)
			break;
		if (rc <= PCRE2_ERROR_UTF8_ERR1 && rc >= PCRE2_ERROR_UTF8_ERR21)
			return AOS_BPE_ERR_UTF8;
		if (rc < 0 || ov[1] <= ov[0])
			return AOS_BPE_ERR_MATCH;
		n = aos_cus_bpe_piece_tokens(c, (const uint8_t *) text + ov[0], ov[1] - ov[0]);
		if (n < 0)
			return n;
		total += n;
		at = ov[1];
		opts = PCRE2_NO_UTF_CHECK;
	}
	return total;
}

int64_t
aos_cus_bpe_count(AosBpeCounter *c, const char *text, size_t len)
{
	int64_t		n = count(c, text, len);

	if (c->cap > KEEP_SCRATCH)
		release(c);
	return n;
}
