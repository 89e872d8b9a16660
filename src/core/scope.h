/*
 * scope.h: the grammar of enforcement scopes and of the subject and tags a
 * call names, free of Postgres headers: one place for what is valid.
 *   tenant | integration:<uuid> | subject:<value> | subject:* | tag:<key>=<value> | tag:<key>=*
 */
#ifndef AOS_CUS_SCOPE_H
#define AOS_CUS_SCOPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "uuid_text.h"

#define AOS_SUBJECT_MAX 255		/* bytes of a subject */
#define AOS_TAG_KEY_MAX 63		/* bytes of a tag key */
#define AOS_TAG_VALUE_MAX 255	/* bytes of a tag value */
#define AOS_TAGS_MAX 16			/* tags of one call */
/* Longest scope text: "tag:" key "=" value. */
#define AOS_SCOPE_TEXT_MAX (4 + AOS_TAG_KEY_MAX + 1 + AOS_TAG_VALUE_MAX)

typedef enum AosScopeKind
{
	AOS_SCOPE_TENANT,
	AOS_SCOPE_INTEGRATION,
	AOS_SCOPE_SUBJECT,
	AOS_SCOPE_TAG
} AosScopeKind;

/* A parsed scope; value and tag key point into the parsed text. */
typedef struct AosScope
{
	AosScopeKind kind;
	bool		wildcard;		/* subject:* or tag:<key>=* */
	uint8_t		integration[AOS_UUID_LEN];
	const char *key;			/* tag key */
	size_t		key_len;
	const char *value;			/* subject or tag value (NULL for a wildcard) */
	size_t		value_len;
} AosScope;

/* NULL when s (len bytes) is a valid subject, else what is wrong with it. */
const char *aos_cus_subject_problem(const char *s, size_t len);

/* NULL when s is a valid tag key, else what is wrong with it. */
const char *aos_cus_tag_key_problem(const char *s, size_t len);

/* NULL when s is a valid tag value, else what is wrong with it. */
const char *aos_cus_tag_value_problem(const char *s, size_t len);

/* Parse a scope string (NUL-terminated); NULL on success, else what is wrong with it. */
const char *aos_cus_scope_parse(const char *text, AosScope *out);

#endif
