/* test_usage_record.c: unit tests of usage-record field checks. */
#include "unit.h"
#include "usage_record.h"

#include <stdint.h>

/* Run every integer and UTF-8 case. */
int
main(void)
{
	int64_t		v = 0;

	CHECK(aos_cus_parse_int64("0", &v) == AOS_INT_OK && v == 0);
	CHECK(aos_cus_parse_int64("12345", &v) == AOS_INT_OK && v == 12345);
	CHECK(aos_cus_parse_int64("-7", &v) == AOS_INT_OK && v == -7);
	CHECK(aos_cus_parse_int64("42.000", &v) == AOS_INT_OK && v == 42);
	CHECK(aos_cus_parse_int64("9223372036854775807", &v) == AOS_INT_OK && v == INT64_MAX);
	CHECK(aos_cus_parse_int64("-9223372036854775808", &v) == AOS_INT_OK && v == INT64_MIN);
	CHECK(aos_cus_parse_int64("9223372036854775808", &v) == AOS_INT_OVERFLOW);
	CHECK(aos_cus_parse_int64("-9223372036854775809", &v) == AOS_INT_OVERFLOW);
	CHECK(aos_cus_parse_int64("99999999999999999999999", &v) == AOS_INT_OVERFLOW);
	CHECK(aos_cus_parse_int64("1.5", &v) == AOS_INT_NOT_INTEGER);
	CHECK(aos_cus_parse_int64("", &v) == AOS_INT_NOT_INTEGER);
	CHECK(aos_cus_parse_int64(NULL, &v) == AOS_INT_NOT_INTEGER);
	CHECK(aos_cus_parse_int64("-", &v) == AOS_INT_NOT_INTEGER);
	CHECK(aos_cus_parse_int64("1e3", &v) == AOS_INT_NOT_INTEGER);
	CHECK(aos_cus_parse_int64(" 1", &v) == AOS_INT_NOT_INTEGER);

	CHECK(aos_cus_utf8_chars("abc", 3) == 3);
	CHECK(aos_cus_utf8_chars("h\xc3\xa9\xe2\x82\xac", 6) == 3);
	CHECK(aos_cus_utf8_chars("", 0) == 0);
	return UNIT_DONE();
}
