/*
 * glob.h: model-name glob patterns of enforcement policies, free of Postgres
 * headers: '*' (any run), '?' (one byte) and '[...]' classes with ranges,
 * matched case-insensitively (ASCII) against the whole name.
 */
#ifndef AOS_CUS_GLOB_H
#define AOS_CUS_GLOB_H

#include <stdbool.h>
#include <stddef.h>

#define AOS_GLOB_MAX 200		/* bytes of one pattern */

/* NULL when pattern is a valid glob, else what is wrong with it. */
const char *aos_cus_glob_problem(const char *pattern);

/* True when name matches the whole of a valid pattern. */
bool		aos_cus_glob_match(const char *pattern, const char *name);

#endif
