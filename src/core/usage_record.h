/* usage_record.h: pure checks on usage-record fields (no Postgres headers). */
#ifndef AOS_CUS_USAGE_RECORD_H
#define AOS_CUS_USAGE_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Outcome of reading an integer from decimal text. */
typedef enum AosIntParse
{
	AOS_INT_OK,
	AOS_INT_NOT_INTEGER,
	AOS_INT_OVERFLOW
} AosIntParse;

/* Parse optional '-' then digits, optionally ".000", as int64; other text is not an integer. */
AosIntParse aos_cus_parse_int64(const char *text, int64_t *out);

/* Number of UTF-8 characters in len bytes of valid UTF-8 (continuation bytes not counted). */
size_t		aos_cus_utf8_chars(const char *s, size_t len);

#endif
