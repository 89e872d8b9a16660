/* uuid_text.c: canonical UUID text parsing and formatting. */
#include "uuid_text.h"

#include <string.h>

/* Value of one hex digit, or -1. */
int
aos_cus_hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Parse a canonical UUID text of exactly 36 characters. */
bool
aos_cus_uuid_parse(const char *text, uint8_t out[AOS_UUID_LEN])
{
	int			byte = 0;

	if (text == NULL || strlen(text) != AOS_UUID_TEXT_LEN)
		return false;
	for (int i = 0; i < AOS_UUID_TEXT_LEN;)
	{
		int			hi,
					lo;

		if (i == 8 || i == 13 || i == 18 || i == 23)
		{
			if (text[i] != '-')
				return false;
			i++;
			continue;
		}
		hi = aos_cus_hex_value(text[i]);
		lo = aos_cus_hex_value(text[i + 1]);
		if (hi < 0 || lo < 0)
			return false;
		out[byte++] = (uint8_t) (hi << 4 | lo);
		i += 2;
	}
	return byte == AOS_UUID_LEN;
}

/* Format a UUID as lower-case canonical text. */
void
aos_cus_uuid_format(const uint8_t in[AOS_UUID_LEN], char out[AOS_UUID_TEXT_LEN + 1])
{
	static const char digits[] = "0123456789abcdef";
	int			pos = 0;

	for (int i = 0; i < AOS_UUID_LEN; i++)
	{
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[pos++] = '-';
		out[pos++] = digits[in[i] >> 4];
		out[pos++] = digits[in[i] & 0xf];
	}
	out[pos] = '\0';
}
