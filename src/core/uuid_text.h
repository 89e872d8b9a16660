/* uuid_text.h: parse and format RFC 4122 text UUIDs without Postgres headers. */
#ifndef AOS_CUS_UUID_TEXT_H
#define AOS_CUS_UUID_TEXT_H

#include <stdbool.h>
#include <stdint.h>

#define AOS_UUID_LEN 16
#define AOS_UUID_TEXT_LEN 36

/* Value of one hex digit (either case), or -1. */
int			aos_cus_hex_value(char c);

/* Parse a canonical (8-4-4-4-12, either case) UUID; false when the text is not one. */
bool aos_cus_uuid_parse(const char *text, uint8_t out[AOS_UUID_LEN]);

/* Format 16 bytes as lower-case canonical text into out (37 bytes with the NUL). */
void aos_cus_uuid_format(const uint8_t in[AOS_UUID_LEN], char out[AOS_UUID_TEXT_LEN + 1]);

#endif
