/* prom_text.h: Prometheus text exposition helpers (no Postgres headers). */
#ifndef AOS_CUS_PROM_TEXT_H
#define AOS_CUS_PROM_TEXT_H

#include <stddef.h>

/* Largest number of bytes aos_cus_prom_format_double() writes, NUL included. */
#define AOS_PROM_DOUBLE_LEN 32

/* Label value for a provider: one of vocab.h's providers, else "other" (bounded cardinality). */
const char *aos_cus_prom_provider_label(const char *provider);

/* Bytes needed to escape label value in (NUL included): at most 2 * strlen(in) + 1. */
size_t		aos_cus_prom_escaped_size(const char *in);

/* Escape a label value (backslash, double quote, newline) into out of aos_cus_prom_escaped_size(in) bytes. */
void		aos_cus_prom_escape_label(const char *in, char *out);

/* Format a sample value: NaN, +Inf, -Inf, integers below 1e15 in full, else %.15g or, when that loses bits, %.17g. */
void		aos_cus_prom_format_double(double value, char out[AOS_PROM_DOUBLE_LEN]);

/* One integration's budget figures for top-N selection. */
typedef struct AosBudgetRatio
{
	double		used_ratio;		/* (spent + reserved) / budget */
	size_t		index;			/* caller's position, the tie-break (stable output) */
} AosBudgetRatio;

/* Order items by used_ratio descending (ties by index) and return how many of them to keep: min(n, cap). */
size_t		aos_cus_prom_top_ratios(AosBudgetRatio *items, size_t n, size_t cap);

#endif
