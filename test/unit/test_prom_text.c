/* test_prom_text.c: unit tests of the Prometheus text helpers. */
#include "unit.h"
#include "prom_text.h"

#include <math.h>
#include <stdlib.h>

/* Escape in and compare with the expected text. */
static int
escapes_to(const char *in, const char *expected)
{
	char	   *out = malloc(aos_cus_prom_escaped_size(in));
	int			ok;

	aos_cus_prom_escape_label(in, out);
	ok = strcmp(out, expected) == 0 && aos_cus_prom_escaped_size(in) >= strlen(expected) + 1;
	free(out);
	return ok;
}

/* Format value and compare with the expected text. */
static int
formats_to(double value, const char *expected)
{
	char		out[AOS_PROM_DOUBLE_LEN];

	aos_cus_prom_format_double(value, out);
	return strcmp(out, expected) == 0;
}

/* Run every case. */
int
main(void)
{
	AosBudgetRatio r[5] = {{0.5, 0}, {1.25, 1}, {0.5, 2}, {0.0, 3}, {0.9, 4}};
	size_t		keep;
	int			round_trips = 0;

	CHECK_STR(aos_cus_prom_provider_label("openai"), "openai");
	CHECK_STR(aos_cus_prom_provider_label("aws_bedrock"), "aws_bedrock");
	CHECK_STR(aos_cus_prom_provider_label("OpenAI"), "other");
	CHECK_STR(aos_cus_prom_provider_label("openai2"), "other");
	CHECK_STR(aos_cus_prom_provider_label(""), "other");
	CHECK_STR(aos_cus_prom_provider_label(NULL), "other");

	CHECK(escapes_to("gpt-4o", "gpt-4o"));
	CHECK(escapes_to("", ""));
	CHECK(escapes_to("a\"b", "a\\\"b"));
	CHECK(escapes_to("a\\b", "a\\\\b"));
	CHECK(escapes_to("line\nbreak", "line\\nbreak"));
	CHECK(escapes_to("\"\\\n", "\\\"\\\\\\n"));
	CHECK(aos_cus_prom_escaped_size("\"\"\"") == 7);
	CHECK(escapes_to("modèle-ü", "modèle-ü"));

	CHECK(formats_to(0.0, "0"));
	CHECK(formats_to(0.8, "0.8"));
	CHECK(formats_to(1.0 / 3.0, "0.33333333333333331"));
	CHECK(formats_to(123456789012.0, "123456789012"));
	CHECK(formats_to(9007199254740992.0, "9007199254740992"));
	CHECK(formats_to(-2.5, "-2.5"));
	CHECK(formats_to(NAN, "NaN"));
	CHECK(formats_to(INFINITY, "+Inf"));
	CHECK(formats_to(-INFINITY, "-Inf"));
	CHECK(formats_to(1e300, "1e+300"));
	CHECK(formats_to(90.0, "90"));
	CHECK(formats_to(1e15, "1e+15"));
	CHECK(formats_to(999999999999999.0, "999999999999999"));
	CHECK(formats_to(1795999034.629345, "1795999034.6293449"));
	CHECK(formats_to(0.850005, "0.850005"));

	/* Every finite value reads back exactly. */
	for (int i = 1; i < 2000; i++)
	{
		double		v = (double) i * 7919.0 / 104729.0;
		char		out[AOS_PROM_DOUBLE_LEN];

		aos_cus_prom_format_double(v, out);
		round_trips += strtod(out, NULL) == v;
	}
	CHECK(round_trips == 1999);

	keep = aos_cus_prom_top_ratios(r, 5, 3);
	CHECK(keep == 3);
	CHECK(r[0].index == 1 && r[1].index == 4 && r[2].index == 0 && r[3].index == 2 && r[4].index == 3);
	CHECK(aos_cus_prom_top_ratios(r, 5, 100) == 5);
	CHECK(aos_cus_prom_top_ratios(r, 0, 3) == 0);
	CHECK(aos_cus_prom_top_ratios(r, 5, 0) == 0);
	return UNIT_DONE();
}
