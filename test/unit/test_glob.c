/* test_glob.c: unit tests of model-name globs. */
#include "unit.h"
#include "glob.h"

/* Run every glob case. */
int
main(void)
{
	char		big[300];

	CHECK(aos_cus_glob_match("gpt-4o*", "gpt-4o"));
	CHECK(aos_cus_glob_match("gpt-4o*", "gpt-4o-mini-2024-07-18"));
	CHECK(!aos_cus_glob_match("gpt-4o*", "gpt-4"));
	CHECK(aos_cus_glob_match("claude-*", "Claude-3-5-Sonnet"));
	CHECK(!aos_cus_glob_match("claude-*", "claude"));
	CHECK(aos_cus_glob_match("*mini*", "gpt-4o-mini"));
	CHECK(aos_cus_glob_match("gpt-?o", "gpt-4o"));
	CHECK(!aos_cus_glob_match("gpt-?o", "gpt-4xo"));
	CHECK(aos_cus_glob_match("gpt-[34]*", "gpt-3.5-turbo"));
	CHECK(!aos_cus_glob_match("gpt-[34]*", "gpt-5"));
	CHECK(aos_cus_glob_match("gpt-[!3]*", "gpt-5"));
	CHECK(aos_cus_glob_match("o[1-3]*", "o3-mini"));
	CHECK(!aos_cus_glob_match("o[1-3]*", "o4-mini"));
	CHECK(aos_cus_glob_match("*", "anything"));
	CHECK(aos_cus_glob_match("a*b*c", "aXXbYYbZc"));
	CHECK(!aos_cus_glob_match("a*b*c", "aXXbYYbZ"));

	CHECK(aos_cus_glob_problem("gpt-4o*") == NULL);
	CHECK(aos_cus_glob_problem("o[1-3]*") == NULL);
	CHECK(aos_cus_glob_problem("") != NULL);
	CHECK(aos_cus_glob_problem("gpt-[4") != NULL);
	CHECK(aos_cus_glob_problem("gpt-[]") != NULL);
	CHECK(aos_cus_glob_problem("o[3-1]") != NULL);
	CHECK(aos_cus_glob_problem("a\tb") != NULL);
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	CHECK(aos_cus_glob_problem(big) != NULL);
	big[200] = '\0';
	CHECK(aos_cus_glob_problem(big) == NULL);
	return UNIT_DONE();
}
