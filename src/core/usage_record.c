/* usage_record.c: pure checks on usage-record fields: integers, UTF-8 lengths, enumerations. */
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

/* Linear search: the lists are short (at most seven names). */
int
aos_cus_enum_index(const char *s, size_t len, const char *const *names)
{
	for (int i = 0; names[i] != NULL; i++)
		if (strlen(names[i]) == len && memcmp(names[i], s, len) == 0)
			return i;
	return -1;
}

/* Join names with ", " into buf, truncating safely. */
void
aos_cus_enum_list(const char *const *names, char *buf, size_t bufsize)
{
	size_t		used = 0;

	if (bufsize == 0)
		return;
	buf[0] = '\0';
	for (int i = 0; names[i] != NULL; i++)
	{
		size_t		need = strlen(names[i]) + (i > 0 ? 2 : 0);

		if (used + need + 1 > bufsize)
			break;
		if (i > 0)
		{
			memcpy(buf + used, ", ", 2);
			used += 2;
		}
		memcpy(buf + used, names[i], strlen(names[i]));
		used += strlen(names[i]);
		buf[used] = '\0';
	}
}
