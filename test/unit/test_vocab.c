/* test_vocab.c: the vocabulary's tables and helpers, and the SQL parts that must spell it the same. */
#include "unit.h"
#include "vocab.h"

#include <stdlib.h>

/* The whole file at path, NUL-terminated (NULL when it cannot be read). */
static char *
read_file(const char *path)
{
	FILE	   *f = fopen(path, "rb");
	char	   *s;
	long		n;

	if (f == NULL)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	s = malloc(n + 1);
	if (fread(s, 1, n, f) != (size_t) n)
		n = 0;
	s[n] = '\0';
	fclose(f);
	return s;
}

/*
 * Check every spelling of the list names in sql: each quoted list starting with 'first', (domain CHECKs, ARRAY[...]
 * and IN (...) tests) and each "one of first, ..." hint must name exactly names, in order. Returns how many it checked.
 */
static int
check_lists(const char *sql, const char *path, const char *const *names)
{
	char		want[256];
	char		quoted[64];
	char		prose[64];
	int			n = 0;

	aos_cus_enum_list(names, want, sizeof(want));
	snprintf(quoted, sizeof(quoted), "'%s', '", names[0]);
	snprintf(prose, sizeof(prose), "one of %s,", names[0]);
	for (int kind = 0; kind < 2; kind++)
	{
		const char *marker = kind == 0 ? quoted : prose;

		for (const char *p = strstr(sql, marker); p != NULL; p = strstr(p + 1, marker))
		{
			char		got[256];
			size_t		used = 0;
			const char *q = p + 7;

			/* a quoted list from its opening bracket, so a name put before the first is seen too */
			if (kind == 0)
				for (q = p; q > sql && q[-1] != '(' && q[-1] != '['; q--)
					;

			/* quoted: up to ')' or ']', quotes dropped; prose: up to the end of the sentence or string */
			for (; *q && used + 1 < sizeof(got); q++)
			{
				if (kind == 0 ? (*q == ')' || *q == ']') : (*q == '.' || *q == '\'' || *q == '"' || *q == '\n'))
					break;
				if (*q != '\'')
					got[used++] = *q;
			}
			got[used] = '\0';
			if (strcmp(got, want) != 0)
				fprintf(stderr, "%s: \"%s\" is not \"%s\"\n", path, got, want);
			CHECK_STR(got, want);
			n++;
		}
	}
	return n;
}

/* The token_count columns of the CREATE TABLE starting at marker, as "a, b, c" in order. */
static void
token_columns_of(const char *sql, const char *marker, char *out, size_t outsize)
{
	const char *p = sql ? strstr(sql, marker) : NULL;
	const char *end = p ? strstr(p, "\n);") : NULL;
	size_t		used = 0;

	out[0] = '\0';
	while (p != NULL && (p = strstr(p, "\n    ")) != NULL && p < end)
	{
		const char *name = p + 5;
		const char *stop = strchr(name, ' ');
		const char *eol = strchr(name, '\n');

		p = name;
		if (stop == NULL || eol == NULL || stop > eol || strncmp(name, "CHECK", 5) == 0)
			continue;
		/* "name   aos_cus.token_count ..." with any padding */
		while (*stop == ' ')
			stop++;
		if (strncmp(stop, "aos_cus.token_count", 19) != 0)
			continue;
		used += snprintf(out + used, outsize - used, "%s%.*s", used ? ", " : "",
						 (int) (strchr(name, ' ') - name), name);
	}
}

/* Tables: enum order, names, and the column spelling of each bucket. */
static void
test_tables(void)
{
	char		buf[256];

	CHECK(AOS_PROVIDER_COUNT == 7 && aos_cus_provider_names[AOS_PROVIDER_COUNT] == NULL);
	CHECK_STR(aos_cus_provider_names[AOS_PROVIDER_CUSTOM], "custom");
	CHECK_STR(aos_cus_provider_names[AOS_PROVIDER_AWS_BEDROCK], "aws_bedrock");
	CHECK(aos_cus_tier_names[AOS_TIER_COUNT] == NULL);
	CHECK_STR(aos_cus_tier_names[AOS_TIER_FLEX], "flex");
	CHECK(aos_cus_bucket_names[AOS_BUCKET_COUNT] == NULL && aos_cus_token_columns[AOS_BUCKET_COUNT] == NULL);
	for (int b = 0; b < AOS_BUCKET_COUNT; b++)
	{
		snprintf(buf, sizeof(buf), "%s_tokens", aos_cus_bucket_names[b]);
		CHECK_STR(aos_cus_token_columns[b], buf);
	}
}

/* Parsing, lists, and the bucket accessors. */
static void
test_helpers(void)
{
	char		buf[64];
	AosTokens	t;

	CHECK(aos_cus_provider_parse("mistral", 7) == AOS_PROVIDER_MISTRAL);
	CHECK(aos_cus_provider_parse("openai", 6) == AOS_PROVIDER_OPENAI);
	CHECK(aos_cus_provider_parse("OpenAI", 6) == -1);
	CHECK(aos_cus_provider_parse("open", 4) == -1);
	CHECK(aos_cus_provider_parse("other", 5) == -1);
	CHECK(aos_cus_tier_parse("flex", 4) == AOS_TIER_FLEX);
	CHECK(aos_cus_tier_parse("Flex", 4) == -1);
	CHECK(aos_cus_tier_parse("", 0) == -1);

	CHECK(aos_cus_enum_index("flex", 4, aos_cus_tier_names) == 2);
	CHECK(aos_cus_enum_index("flexible", 8, aos_cus_tier_names) == -1);
	CHECK(aos_cus_enum_index("fle", 3, aos_cus_tier_names) == -1);
	CHECK(aos_cus_enum_index("", 0, aos_cus_tier_names) == -1);
	aos_cus_enum_list(aos_cus_tier_names, buf, sizeof(buf));
	CHECK_STR(buf, "standard, priority, flex, batch");
	aos_cus_enum_list(aos_cus_tier_names, buf, 12);
	CHECK_STR(buf, "standard");

	/* Each bucket is its own field: setting one changes only it. */
	for (int b = 0; b < AOS_BUCKET_COUNT; b++)
		aos_cus_tokens_set(&t, b, 100 + b);
	CHECK(t.input == 100 && t.cache_read == 101 && t.cache_write == 102 && t.cache_write_1h == 103);
	CHECK(t.output == 104 && t.reasoning == 105 && t.input_audio == 106 && t.output_audio == 107);
	for (int b = 0; b < AOS_BUCKET_COUNT; b++)
		CHECK(aos_cus_tokens_get(&t, b) == 100 + b);

	/* A call's total counts output once: reasoning is part of it. */
	for (int b = 0; b < AOS_BUCKET_COUNT; b++)
		CHECK(aos_cus_bucket_in_total(b) == (b != AOS_BUCKET_REASONING));
}

/* The SQL parts and the C glue spell providers and tiers as vocab.h does; the usage tables have its buckets. */
static void
test_sql(void)
{
	static const char *const files[] = {
		"src/sql/10_tables.sql", "src/sql/30_pricing.sql", "src/sql/40_integrations.sql",
	};
	char	   *sql = read_file("src/sql/10_tables.sql");
	char		want[256];
	char		got[256];

	CHECK(sql != NULL);
	aos_cus_enum_list(aos_cus_token_columns, want, sizeof(want));
	token_columns_of(sql, "CREATE TABLE aos_cus.cus_llm_usage (", got, sizeof(got));
	CHECK_STR(got, want);
	token_columns_of(sql, "CREATE TABLE aos_cus.cus_usage_daily (", got, sizeof(got));
	CHECK_STR(got, want);
	free(sql);
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
	{
		sql = read_file(files[i]);
		CHECK(sql != NULL);
		if (sql == NULL)
			continue;
		/* 10_tables.sql: at least the domains themselves (a renamed first entry would find nothing) */
		CHECK(check_lists(sql, files[i], aos_cus_provider_names) >= (i == 0 ? 1 : 0));
		CHECK(check_lists(sql, files[i], aos_cus_tier_names) >= (i == 0 ? 1 : 0));
		free(sql);
	}
}

/* Run every vocabulary case. */
int
main(void)
{
	test_tables();
	test_helpers();
	test_sql();
	return UNIT_DONE();
}
