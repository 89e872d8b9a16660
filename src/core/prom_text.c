/* prom_text.c: label escaping, number formatting and top-N selection for metrics(). */
#include "prom_text.h"
#include "vocab.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Map a provider to its label: itself when one of vocab.h's, else "other". */
const char *
aos_cus_prom_provider_label(const char *provider)
{
	int			p = provider != NULL ? aos_cus_provider_parse(provider, (int) strlen(provider)) : -1;

	return p >= 0 ? aos_cus_provider_names[p] : "other";
}

/* Bytes the escaped form of in takes, NUL included. */
size_t
aos_cus_prom_escaped_size(const char *in)
{
	size_t		n = 1;

	for (const char *p = in; *p; p++)
		n += (*p == '\\' || *p == '"' || *p == '\n') ? 2 : 1;
	return n;
}

/* Escape backslash, double quote and newline as the exposition format requires. */
void
aos_cus_prom_escape_label(const char *in, char *out)
{
	for (const char *p = in; *p; p++)
	{
		if (*p == '\\' || *p == '"')
		{
			*out++ = '\\';
			*out++ = *p;
		}
		else if (*p == '\n')
		{
			*out++ = '\\';
			*out++ = 'n';
		}
		else
			*out++ = *p;
	}
	*out = '\0';
}

/* Format a double so that it parses back exactly; special values as Prometheus spells them. */
void
aos_cus_prom_format_double(double value, char out[AOS_PROM_DOUBLE_LEN])
{
	if (isnan(value))
		strcpy(out, "NaN");
	else if (isinf(value))
		strcpy(out, value > 0 ? "+Inf" : "-Inf");
	else if (value == floor(value) && fabs(value) < 1e15)
		snprintf(out, AOS_PROM_DOUBLE_LEN, "%.0f", value);
	else
	{
		/* 15 significant digits read back exactly for most values; 17 always do. */
		snprintf(out, AOS_PROM_DOUBLE_LEN, "%.15g", value);
		if (strtod(out, NULL) != value)
			snprintf(out, AOS_PROM_DOUBLE_LEN, "%.17g", value);
	}
}

/* qsort order: higher ratio first, then lower caller index. */
static int
ratio_cmp(const void *a, const void *b)
{
	const AosBudgetRatio *x = a;
	const AosBudgetRatio *y = b;

	if (x->used_ratio != y->used_ratio)
		return x->used_ratio > y->used_ratio ? -1 : 1;
	return (x->index > y->index) - (x->index < y->index);
}

/* Sort by ratio descending and keep the first cap. */
size_t
aos_cus_prom_top_ratios(AosBudgetRatio *items, size_t n, size_t cap)
{
	if (n > 1)
		qsort(items, n, sizeof(AosBudgetRatio), ratio_cmp);
	return n < cap ? n : cap;
}
