/*
 * scope.c: validation of scope strings, subjects and tags (scope.h).
 */
#include "scope.h"

#include <string.h>

/* True when s has a byte below 0x20 or DEL. */
static bool
has_control(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if ((unsigned char) s[i] < 0x20 || s[i] == 0x7f)
			return true;
	return false;
}

/* A subject: 1-255 bytes, no control characters, not "*" (which names every subject). */
const char *
aos_cus_subject_problem(const char *s, size_t len)
{
	if (len < 1 || len > AOS_SUBJECT_MAX)
		return "must be 1 to 255 bytes long";
	if (has_control(s, len))
		return "must not contain control characters";
	if (len == 1 && s[0] == '*')
		return "must not be \"*\" (it names every subject)";
	return NULL;
}

/* A tag key: 1-63 bytes of letters, digits, '_', '-', '.' and ':'. */
const char *
aos_cus_tag_key_problem(const char *s, size_t len)
{
	if (len < 1 || len > AOS_TAG_KEY_MAX)
		return "must be 1 to 63 bytes long";
	for (size_t i = 0; i < len; i++)
	{
		char		c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
			  c == '_' || c == '-' || c == '.' || c == ':'))
			return "may hold only letters, digits, '_', '-', '.' and ':'";
	}
	return NULL;
}

/* A tag value: 1-255 bytes, no control characters, not "*" (which names every value). */
const char *
aos_cus_tag_value_problem(const char *s, size_t len)
{
	if (len < 1 || len > AOS_TAG_VALUE_MAX)
		return "must be 1 to 255 bytes long";
	if (has_control(s, len))
		return "must not contain control characters";
	if (len == 1 && s[0] == '*')
		return "must not be \"*\" (it names every value)";
	return NULL;
}

/* Parse tenant, integration:<uuid>, subject:<v>|*, tag:<k>=<v>|*. */
const char *
aos_cus_scope_parse(const char *text, AosScope *out)
{
	size_t		len = strlen(text);

	memset(out, 0, sizeof(*out));
	if (strcmp(text, "tenant") == 0)
	{
		out->kind = AOS_SCOPE_TENANT;
		return NULL;
	}
	if (strncmp(text, "integration:", 12) == 0)
	{
		out->kind = AOS_SCOPE_INTEGRATION;
		if (len != 12 + AOS_UUID_TEXT_LEN || !aos_cus_uuid_parse(text + 12, out->integration))
			return "integration:<id> needs a canonical UUID";
		return NULL;
	}
	if (strncmp(text, "subject:", 8) == 0)
	{
		out->kind = AOS_SCOPE_SUBJECT;
		if (strcmp(text + 8, "*") == 0)
		{
			out->wildcard = true;
			return NULL;
		}
		out->value = text + 8;
		out->value_len = len - 8;
		return aos_cus_subject_problem(out->value, out->value_len) ? "subject:<value> needs a valid subject (1 to 255 bytes, no control characters)" : NULL;
	}
	if (strncmp(text, "tag:", 4) == 0)
	{
		const char *eq = strchr(text + 4, '=');

		out->kind = AOS_SCOPE_TAG;
		if (eq == NULL)
			return "tag scopes are tag:<key>=<value> or tag:<key>=*";
		out->key = text + 4;
		out->key_len = (size_t) (eq - out->key);
		if (aos_cus_tag_key_problem(out->key, out->key_len))
			return "tag:<key>=... needs a key of 1 to 63 letters, digits, '_', '-', '.' or ':'";
		if (strcmp(eq + 1, "*") == 0)
		{
			out->wildcard = true;
			return NULL;
		}
		out->value = eq + 1;
		out->value_len = len - (size_t) (out->value - text);
		return aos_cus_tag_value_problem(out->value, out->value_len) ? "tag:<key>=<value> needs a value of 1 to 255 bytes without control characters" : NULL;
	}
	return "a scope is tenant, integration:<id>, subject:<value>, subject:*, tag:<key>=<value> or tag:<key>=*";
}
