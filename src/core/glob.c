/*
 * glob.c: validation and matching of model-name globs (glob.h). Matching
 * backtracks only to the last '*', so it is linear in practice and never
 * exponential.
 */
#include "glob.h"

#include <string.h>

/* ASCII lower case. */
static char
lower(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char) (c - 'A' + 'a') : c;
}

/* End of the class starting at p ('['), or NULL when it is not closed or empty. */
static const char *
class_end(const char *p)
{
	const char *q = p + 1;

	if (*q == '!')
		q++;
	if (*q == ']')
		return NULL;
	while (*q != '\0' && *q != ']')
		q++;
	return *q == ']' ? q : NULL;
}

/* Valid: 1..200 bytes, no control characters, every '[' closed and not empty, ranges ascending. */
const char *
aos_cus_glob_problem(const char *pattern)
{
	size_t		len = strlen(pattern);

	if (len < 1 || len > AOS_GLOB_MAX)
		return "must be 1 to 200 bytes long";
	for (const char *p = pattern; *p != '\0'; p++)
	{
		if ((unsigned char) *p < 0x20 || *p == 0x7f)
			return "must not contain control characters";
		if (*p == '[')
		{
			const char *end = class_end(p);

			if (end == NULL)
				return "has a '[' class that is empty or not closed with ']'";
			for (const char *q = p + 1; q < end; q++)
				if (q[1] == '-' && q + 2 < end && lower(q[2]) < lower(q[0]))
					return "has a descending range in a '[' class";
			p = end;
		}
	}
	return NULL;
}

/* Does c match the class [p, end)? */
static bool
class_match(const char *p, const char *end, char c)
{
	bool		negate = false;
	bool		hit = false;

	p++;
	if (*p == '!')
	{
		negate = true;
		p++;
	}
	for (; p < end; p++)
	{
		if (p[1] == '-' && p + 2 < end)
		{
			hit = hit || (lower(c) >= lower(p[0]) && lower(c) <= lower(p[2]));
			p += 2;
		}
		else
			hit = hit || lower(c) == lower(*p);
	}
	return hit != negate;
}

/* Whole-name match with one backtrack point (the last '*'). */
bool
aos_cus_glob_match(const char *pattern, const char *name)
{
	const char *p = pattern;
	const char *n = name;
	const char *star = NULL;
	const char *resume = NULL;

	while (*n != '\0')
	{
		if (*p == '*')
		{
			star = ++p;
			resume = n;
			continue;
		}
		if (*p == '[')
		{
			const char *end = class_end(p);

			if (end != NULL && class_match(p, end, *n))
			{
				p = end + 1;
				n++;
				continue;
			}
		}
		else if (*p != '\0' && (*p == '?' || lower(*p) == lower(*n)))
		{
			p++;
			n++;
			continue;
		}
		if (star == NULL)
			return false;
		p = star;
		n = ++resume;
	}
	while (*p == '*')
		p++;
	return *p == '\0';
}
