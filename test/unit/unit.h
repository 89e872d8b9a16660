/* unit.h: a minimal test harness for src/core/; each test file is one program. */
#ifndef AOS_CUS_UNIT_H
#define AOS_CUS_UNIT_H

#include <stdio.h>
#include <string.h>

static int	unit_passed;
static int	unit_failed;

/* Record one assertion; print the failing expression with its place. */
#define CHECK(cond) \
	do { \
		if (cond) \
			unit_passed++; \
		else \
		{ \
			unit_failed++; \
			fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond); \
		} \
	} while (0)

/* Compare two strings (NULL-safe) as one assertion. */
#define CHECK_STR(a, b) CHECK(((a) == NULL && (b) == NULL) || ((a) != NULL && (b) != NULL && strcmp((a), (b)) == 0))

/* Print this program's tally in the runner's format and return its exit status. */
#define UNIT_DONE() \
	(printf("%s: %d passed, %d failed\n", __FILE__, unit_passed, unit_failed), unit_failed != 0)

#endif
