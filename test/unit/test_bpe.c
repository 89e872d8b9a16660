/* test_bpe.c: exact token counts of src/core/bpe.c against values from npm tiktoken 1.0.22. */
#include "bpe.h"
#include "unit.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* Map data/aos_cus_<enc>.bpe (run from the repository's root); NULL when missing. */
static const void *
map_ranks(AosBpeEncoding enc, size_t *size)
{
	char		path[128];
	struct stat st;
	void	   *p;
	int			fd;

	snprintf(path, sizeof(path), "data/aos_cus_%s.bpe", aos_cus_bpe_encoding_name(enc));
	fd = open(path, O_RDONLY);
	if (fd < 0 || fstat(fd, &st) != 0)
		return NULL;
	p = mmap(NULL, st.st_size, PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	*size = st.st_size;
	return p == MAP_FAILED ? NULL : p;
}

typedef struct Case
{
	const char *text;
	int64_t		cl100k;
	int64_t		o200k;
} Case;

static const Case cases[] = {
	{"hello world", 2, 2},
	{"", 0, 0},
	{" ", 1, 1},
	{"I'm sure they'll say: \"It's 12345678 o'clock\"!\n\n\tdone  ", 20, 17},
	{"日本語のテキストです。", 10, 8},
	{"👨‍👩‍👧‍👦 👍🏽", 23, 14},
	{"<|endoftext|>", 7, 7},
	{"HELLO'S World'S", 5, 5},
	{"a\xc2\x85" "b c\xc2\xa0 d", 7, 7},
	{"ſ's 'S 'ſ", 8, 6},
	{"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 10, 10},
};

int
main(void)
{
	AosBpeRanks ranks[AOS_BPE_NENCODINGS];
	AosBpeCounter *c[AOS_BPE_NENCODINGS];
	char		bad[64];

	/* tiktoken's model table: exact names, prefixes in order, encoding names; others are unknown */
	CHECK(aos_cus_bpe_encoding_for_model("gpt-4o", 6) == AOS_BPE_O200K);
	CHECK(aos_cus_bpe_encoding_for_model("gpt-4o-mini-2024-07-18", 22) == AOS_BPE_O200K);
	CHECK(aos_cus_bpe_encoding_for_model("gpt-4", 5) == AOS_BPE_CL100K);
	CHECK(aos_cus_bpe_encoding_for_model("gpt-4-turbo", 11) == AOS_BPE_CL100K);
	CHECK(aos_cus_bpe_encoding_for_model("gpt-4.1-nano", 12) == AOS_BPE_O200K);
	CHECK(aos_cus_bpe_encoding_for_model("chatgpt-4o-latest", 17) == AOS_BPE_O200K);
	CHECK(aos_cus_bpe_encoding_for_model("ft:gpt-4o-mini:org::id", 22) == AOS_BPE_O200K);
	CHECK(aos_cus_bpe_encoding_for_model("ft:gpt-4-0613:org::id", 21) == AOS_BPE_CL100K);
	CHECK(aos_cus_bpe_encoding_for_model("o3-mini", 7) == AOS_BPE_O200K);
	CHECK(aos_cus_bpe_encoding_for_model("text-embedding-3-small", 22) == AOS_BPE_CL100K);
	CHECK(aos_cus_bpe_encoding_for_model("cl100k_base", 11) == AOS_BPE_CL100K);
	CHECK(aos_cus_bpe_encoding_for_model("o200k_base", 10) == AOS_BPE_O200K);
	CHECK(aos_cus_bpe_encoding_for_model("gpt-4oo", 7) == -1);
	CHECK(aos_cus_bpe_encoding_for_model("gpt", 3) == -1);
	CHECK(aos_cus_bpe_encoding_for_model("claude-sonnet-4", 15) == -1);
	CHECK(aos_cus_bpe_encoding_for_model("text-davinci-003", 16) == -1);
	CHECK(aos_cus_bpe_encoding_for_model("", 0) == -1);

	for (int e = 0; e < AOS_BPE_NENCODINGS; e++)
	{
		size_t		size = 0;
		const void *data = map_ranks(e, &size);

		CHECK(data != NULL);
		if (!data)
			return UNIT_DONE();
		CHECK(aos_cus_bpe_ranks_open(&ranks[e], data, size));
		/* a truncated or bit-flipped file is refused */
		CHECK(!aos_cus_bpe_ranks_open(&ranks[e], data, size - 1));
		CHECK(!aos_cus_bpe_ranks_open(&ranks[e], data, 19));
		CHECK(aos_cus_bpe_ranks_open(&ranks[e], data, size));
		c[e] = aos_cus_bpe_counter_new(e, &ranks[e]);
		CHECK(c[e] != NULL);
		if (!c[e])
			return UNIT_DONE();
	}
	CHECK(ranks[AOS_BPE_CL100K].n_ranks == 100256);
	CHECK(ranks[AOS_BPE_O200K].n_ranks == 199998);
	/* single bytes are tokens; ranks of known tokens */
	CHECK(aos_cus_bpe_rank(&ranks[AOS_BPE_CL100K], (const uint8_t *) "!", 1) == 0);
	CHECK(aos_cus_bpe_rank(&ranks[AOS_BPE_CL100K], (const uint8_t *) "hello", 5) == 15339);
	CHECK(aos_cus_bpe_rank(&ranks[AOS_BPE_O200K], (const uint8_t *) "hello", 5) == 24912);
	CHECK(aos_cus_bpe_rank(&ranks[AOS_BPE_O200K], (const uint8_t *) "not a token at all", 18) == -1);

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	{
		int64_t		a = aos_cus_bpe_count(c[AOS_BPE_CL100K], cases[i].text, strlen(cases[i].text));
		int64_t		b = aos_cus_bpe_count(c[AOS_BPE_O200K], cases[i].text, strlen(cases[i].text));

		CHECK(a == cases[i].cl100k);
		CHECK(b == cases[i].o200k);
		if (a != cases[i].cl100k || b != cases[i].o200k)
			fprintf(stderr, "case %zu: %lld %lld\n", i, (long long) a, (long long) b);
	}

	/* invalid UTF-8 anywhere in the text, even after valid pieces, is refused */
	snprintf(bad, sizeof(bad), "hello world \xff there");
	CHECK(aos_cus_bpe_count(c[AOS_BPE_O200K], bad, strlen(bad)) == AOS_BPE_ERR_UTF8);
	CHECK(aos_cus_bpe_count(c[AOS_BPE_CL100K], "\xc3", 1) == AOS_BPE_ERR_UTF8);
	CHECK(aos_cus_bpe_count(c[AOS_BPE_CL100K], "\xed\xa0\x80", 3) == AOS_BPE_ERR_UTF8);	/* a surrogate */

	/* a long piece merges in n log n: 1 MB of one letter */
	{
		size_t		n = 1 << 20;
		char	   *big = malloc(n);

		memset(big, 'a', n);
		CHECK(aos_cus_bpe_count(c[AOS_BPE_CL100K], big, n) > 0);
		free(big);
	}

	for (int e = 0; e < AOS_BPE_NENCODINGS; e++)
		aos_cus_bpe_counter_free(c[e]);
	return UNIT_DONE();
}
