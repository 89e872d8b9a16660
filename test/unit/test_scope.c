/* test_scope.c: unit tests of the scope grammar, subjects and tag keys and values. */
#include "unit.h"
#include "scope.h"

/* Run every scope case. */
int
main(void)
{
	AosScope	s;
	char		big[300];

	CHECK(aos_cus_scope_parse("tenant", &s) == NULL && s.kind == AOS_SCOPE_TENANT);
	CHECK(aos_cus_scope_parse("integration:123e4567-e89b-12d3-a456-426614174000", &s) == NULL &&
		  s.kind == AOS_SCOPE_INTEGRATION && s.integration[0] == 0x12);
	CHECK(aos_cus_scope_parse("integration:123e4567", &s) != NULL);
	CHECK(aos_cus_scope_parse("subject:*", &s) == NULL && s.kind == AOS_SCOPE_SUBJECT && s.wildcard);
	CHECK(aos_cus_scope_parse("subject:user-42", &s) == NULL && !s.wildcard && s.value_len == 7);
	CHECK(aos_cus_scope_parse("subject:", &s) != NULL);
	CHECK(aos_cus_scope_parse("subject:a\tb", &s) != NULL);
	CHECK(aos_cus_scope_parse("tag:team=*", &s) == NULL && s.kind == AOS_SCOPE_TAG && s.wildcard && s.key_len == 4);
	CHECK(aos_cus_scope_parse("tag:team=a=b", &s) == NULL && s.value_len == 3 && s.key_len == 4);
	CHECK(aos_cus_scope_parse("tag:team", &s) != NULL);
	CHECK(aos_cus_scope_parse("tag:=x", &s) != NULL);
	CHECK(aos_cus_scope_parse("tag:te am=x", &s) != NULL);
	CHECK(aos_cus_scope_parse("tag:team=", &s) != NULL);
	CHECK(aos_cus_scope_parse("Tenant", &s) != NULL);
	CHECK(aos_cus_scope_parse("user:x", &s) != NULL);
	CHECK(aos_cus_scope_parse("", &s) != NULL);

	memset(big, 'x', sizeof(big));
	CHECK(aos_cus_subject_problem(big, 255) == NULL);
	CHECK(aos_cus_subject_problem(big, 256) != NULL);
	CHECK(aos_cus_subject_problem("*", 1) != NULL);
	CHECK(aos_cus_subject_problem("", 0) != NULL);
	CHECK(aos_cus_tag_key_problem(big, 63) == NULL);
	CHECK(aos_cus_tag_key_problem(big, 64) != NULL);
	CHECK(aos_cus_tag_key_problem("a=b", 3) != NULL);
	CHECK(aos_cus_tag_value_problem(big, 255) == NULL);
	CHECK(aos_cus_tag_value_problem(big, 256) != NULL);
	CHECK(aos_cus_tag_value_problem("a\nb", 3) != NULL);
	CHECK(aos_cus_tag_value_problem("*", 1) != NULL);
	return UNIT_DONE();
}
