/* usage_record.c: pure checks on usage-record fields: integers and UTF-8 lengths. */
#include "usage_record.h"

#include <string.h>

/* Parse optional '-' then digits (trailing ".0..." allowed) as int64 with overflow detection. */
AosIntParse
aos_cus_parse_int64(const char *text, int64_t *out)
{
	const char *p = text;
	bool		negative = false;
	uint64_t	magnitude = 0;
	uint64_t	limit;

	if (p == NULL || *p == '\0')
		return AOS_INT_NOT_INTEGER;
	if (*p == '-')
	{
		negative = true;
		p++;
	}
	if (*p < '0' || *p > '9')
		return AOS_INT_NOT_INTEGER;
	limit = negative ? (uint64_t) INT64_MAX + 1 : (uint64_t) INT64_MAX;
	for (; *p >= '0' && *p <= '9'; p++)
	{
		unsigned	digit = (unsigned) (*p - '0');

		if (magnitude > (limit - digit) / 10)
			return AOS_INT_OVERFLOW;
		magnitude = magnitude * 10 + digit;
	}
	if (*p == '.')
	{
		for (p++; *p == '0'; p++)
			;
	}
	if (*p != '\0')
		return AOS_INT_NOT_INTEGER;
	if (negative)
		*out = magnitude == (uint64_t) INT64_MAX + 1 ? INT64_MIN : -(int64_t) magnitude;
	else
		*out = (int64_t) magnitude;
	return AOS_INT_OK;
}

/* Count the bytes that are not UTF-8 continuation bytes. */
size_t
aos_cus_utf8_chars(const char *s, size_t len)
{
	size_t		n = 0;

	for (size_t i = 0; i < len; i++)
		if (((unsigned char) s[i] & 0xC0) != 0x80)
			n++;
	return n;
}
