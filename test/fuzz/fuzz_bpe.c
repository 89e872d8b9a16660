/*
 * fuzz_bpe.c: libFuzzer target for the exact token counter (src/core/bpe.c) over the rank files in data/.
 * Any input: the model lookup answers; UTF-8 text counts between 1 and its byte length in both encodings,
 * anything else is refused as not UTF-8; as a raw piece, any bytes merge into 1 .. length tokens.
 */
#include "bpe.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* Abort (a finding) when cond is false. */
#define REQUIRE(cond) do { if (!(cond)) abort(); } while (0)

static AosBpeRanks ranks[AOS_BPE_NENCODINGS];
static AosBpeCounter *counters[AOS_BPE_NENCODINGS];

/* Map data/aos_cus_<encoding>.bpe and make its counter (once per process). */
static void
setup(void)
{
	for (int e = 0; e < AOS_BPE_NENCODINGS; e++)
	{
		char		path[128];
		struct stat st;
		void	   *p;
		int			fd;

		snprintf(path, sizeof(path), "data/aos_cus_%s.bpe", aos_cus_bpe_encoding_name(e));
		fd = open(path, O_RDONLY);
		REQUIRE(fd >= 0 && fstat(fd, &st) == 0);
		p = mmap(NULL, st.st_size, PROT_READ, MAP_SHARED, fd, 0);
		close(fd);
		REQUIRE(p != MAP_FAILED && aos_cus_bpe_ranks_open(&ranks[e], p, st.st_size));
		counters[e] = aos_cus_bpe_counter_new(e, &ranks[e]);
		REQUIRE(counters[e] != NULL);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int64_t		n[AOS_BPE_NENCODINGS];
	int			model;

	if (!counters[0])
		setup();
	model = aos_cus_bpe_encoding_for_model((const char *) data, size);
	REQUIRE(model >= -1 && model < AOS_BPE_NENCODINGS);
	for (int e = 0; e < AOS_BPE_NENCODINGS; e++)
	{
		int64_t		piece = aos_cus_bpe_piece_tokens(counters[e], data, size);

		REQUIRE(size == 0 ? piece == 0 : piece >= 1 && piece <= (int64_t) size);
		n[e] = aos_cus_bpe_count(counters[e], (const char *) data, size);
		REQUIRE(n[e] == AOS_BPE_ERR_UTF8 || (n[e] >= (size > 0) && n[e] <= (int64_t) size));
	}
	REQUIRE((n[0] == AOS_BPE_ERR_UTF8) == (n[1] == AOS_BPE_ERR_UTF8));
	return 0;
}
