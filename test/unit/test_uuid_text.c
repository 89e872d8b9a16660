/* test_uuid_text.c: unit tests of UUID text parsing and formatting. */
#include "unit.h"
#include "uuid_text.h"

/* Run every UUID case. */
int
main(void)
{
	uint8_t		u[AOS_UUID_LEN];
	char		text[AOS_UUID_TEXT_LEN + 1];

	CHECK(aos_cus_uuid_parse("123E4567-e89b-12d3-a456-426614174000", u));
	CHECK(u[0] == 0x12 && u[15] == 0x00 && u[6] == 0x12);
	aos_cus_uuid_format(u, text);
	CHECK_STR(text, "123e4567-e89b-12d3-a456-426614174000");

	CHECK(!aos_cus_uuid_parse(NULL, u));
	CHECK(!aos_cus_uuid_parse("", u));
	CHECK(!aos_cus_uuid_parse("123e4567e89b12d3a456426614174000", u));
	CHECK(!aos_cus_uuid_parse("123e4567-e89b-12d3-a456-42661417400", u));
	CHECK(!aos_cus_uuid_parse("123e4567-e89b-12d3-a456-4266141740000", u));
	CHECK(!aos_cus_uuid_parse("123e4567-e89b-12d3-a456_426614174000", u));
	CHECK(!aos_cus_uuid_parse("g23e4567-e89b-12d3-a456-426614174000", u));
	return UNIT_DONE();
}
