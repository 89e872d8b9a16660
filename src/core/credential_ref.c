/* credential_ref.c: credential reference parsing, base64url, envelope layout, plaintext detection. */
#include "credential_ref.h"

#include <string.h>

static const char b64url_alphabet[] =
"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static const char encrypted_prefix[] = "encrypted://v1/";
static const char vault_prefix[] = "vault://";
static const char env_prefix[] = "env://";

/* Value of each byte as a base64url character, or -1. */
static const int8_t b64url_values[256] = {
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 62, -1, -1,
	52, 53, 54, 55, 56, 57, 58, 59, 60, 61, -1, -1, -1, -1, -1, -1,
	-1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14,
	15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, -1, -1, -1, -1, 63,
	-1, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40,
	41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
};

/* Value of one base64url character, or -1. */
static inline int
b64url_value(unsigned char c)
{
	return b64url_values[c];
}

/* True for a hexadecimal digit. */
static bool
is_hex(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* True for a character that may appear in an API key body. */
static bool
is_key_char(unsigned char c)
{
	return b64url_value(c) >= 0;
}

/* True when text of len bytes starts with the NUL-terminated prefix. */
static bool
starts_with(const char *text, size_t len, const char *prefix)
{
	size_t		n = strlen(prefix);

	return len >= n && memcmp(text, prefix, n) == 0;
}

/* Kind name for results and messages. */
const char *
aos_cus_ref_kind_name(AosRefKind kind)
{
	switch (kind)
	{
		case AOS_REF_ENCRYPTED:
			return "encrypted";
		case AOS_REF_VAULT:
			return "vault";
		case AOS_REF_ENV:
			return "env";
		case AOS_REF_INVALID:
			break;
	}
	return NULL;
}

/* Characters base64url needs for n bytes (no padding). */
size_t
aos_cus_b64url_encoded_len(size_t n)
{
	return (n / 3) * 4 + (n % 3 == 0 ? 0 : n % 3 + 1);
}

/* Encode n bytes as unpadded base64url. */
void
aos_cus_b64url_encode(const uint8_t *in, size_t n, char *out)
{
	size_t		i = 0,
				o = 0;

	for (; i + 3 <= n; i += 3)
	{
		uint32_t	v = (uint32_t) in[i] << 16 | (uint32_t) in[i + 1] << 8 | in[i + 2];

		out[o++] = b64url_alphabet[v >> 18 & 63];
		out[o++] = b64url_alphabet[v >> 12 & 63];
		out[o++] = b64url_alphabet[v >> 6 & 63];
		out[o++] = b64url_alphabet[v & 63];
	}
	if (n - i == 1)
	{
		uint32_t	v = (uint32_t) in[i] << 16;

		out[o++] = b64url_alphabet[v >> 18 & 63];
		out[o++] = b64url_alphabet[v >> 12 & 63];
	}
	else if (n - i == 2)
	{
		uint32_t	v = (uint32_t) in[i] << 16 | (uint32_t) in[i + 1] << 8;

		out[o++] = b64url_alphabet[v >> 18 & 63];
		out[o++] = b64url_alphabet[v >> 12 & 63];
		out[o++] = b64url_alphabet[v >> 6 & 63];
	}
	out[o] = '\0';
}

/* Check charset, length and zero padding bits of unpadded base64url; sets the decoded length. */
static bool
b64url_check(const char *in, size_t len, size_t *decoded_len)
{
	int			last;

	if (len % 4 == 1)
		return false;
	for (size_t i = 0; i < len; i++)
		if (b64url_value((unsigned char) in[i]) < 0)
			return false;
	*decoded_len = len / 4 * 3 + (len % 4 == 0 ? 0 : len % 4 - 1);
	if (len % 4 == 0)
		return true;
	/* The unused low bits of the last character must be zero (one canonical text per value). */
	last = b64url_value((unsigned char) in[len - 1]);
	return len % 4 == 2 ? (last & 0x0f) == 0 : (last & 0x03) == 0;
}

/* Decode canonical unpadded base64url. */
bool
aos_cus_b64url_decode(const char *in, size_t len, uint8_t *out, size_t *out_len)
{
	size_t		expect,
				o = 0,
				i = 0;

	if (!b64url_check(in, len, &expect))
		return false;
	for (; i + 4 <= len; i += 4)
	{
		uint32_t	v = (uint32_t) b64url_value((unsigned char) in[i]) << 18 |
			(uint32_t) b64url_value((unsigned char) in[i + 1]) << 12 |
			(uint32_t) b64url_value((unsigned char) in[i + 2]) << 6 |
			(uint32_t) b64url_value((unsigned char) in[i + 3]);

		out[o++] = (uint8_t) (v >> 16);
		out[o++] = (uint8_t) (v >> 8);
		out[o++] = (uint8_t) v;
	}
	if (len - i >= 2)
	{
		uint32_t	v = (uint32_t) b64url_value((unsigned char) in[i]) << 18 |
			(uint32_t) b64url_value((unsigned char) in[i + 1]) << 12;

		if (len - i == 3)
			v |= (uint32_t) b64url_value((unsigned char) in[i + 2]) << 6;
		out[o++] = (uint8_t) (v >> 16);
		if (len - i == 3)
			out[o++] = (uint8_t) (v >> 8);
	}
	*out_len = o;
	return o == expect;
}

/* Envelope bytes for a plaintext of n bytes. */
size_t
aos_cus_envelope_len(size_t n)
{
	return AOS_GCM_NONCE_LEN + n + AOS_GCM_TAG_LEN;
}

/* Split nonce | ciphertext | tag. */
bool
aos_cus_envelope_split(const uint8_t *env, size_t len, const uint8_t **nonce,
				   const uint8_t **ciphertext, size_t *ciphertext_len, const uint8_t **tag)
{
	if (len < aos_cus_envelope_len(1))
		return false;
	*nonce = env;
	*ciphertext = env + AOS_GCM_NONCE_LEN;
	*ciphertext_len = len - AOS_GCM_NONCE_LEN - AOS_GCM_TAG_LEN;
	*tag = env + len - AOS_GCM_TAG_LEN;
	return true;
}

/* Decimal digits of v. */
static size_t
decimal_len(uint32_t v)
{
	size_t		n = 1;

	while (v >= 10)
	{
		v /= 10;
		n++;
	}
	return n;
}

/* Length of encrypted://v1/<version>/<base64url>. */
size_t
aos_cus_ref_encrypted_len(uint32_t version, size_t envelope_len)
{
	return strlen(encrypted_prefix) + decimal_len(version) + 1 + aos_cus_b64url_encoded_len(envelope_len);
}

/* Format an encrypted reference. */
void
aos_cus_ref_format_encrypted(uint32_t version, const uint8_t *env, size_t env_len, char *out)
{
	size_t		pos = strlen(encrypted_prefix);
	size_t		digits = decimal_len(version);

	memcpy(out, encrypted_prefix, pos);
	for (size_t i = digits; i > 0; i--)
	{
		out[pos + i - 1] = (char) ('0' + version % 10);
		version /= 10;
	}
	pos += digits;
	out[pos++] = '/';
	aos_cus_b64url_encode(env, env_len, out + pos);
}

/* Parse the decimal key version (no sign, no leading zero, 1..AOS_KEY_VERSION_MAX). */
static bool
parse_version(const char *text, size_t len, uint32_t *out)
{
	uint64_t	v = 0;

	if (len == 0 || len > 10 || text[0] == '0')
		return false;
	for (size_t i = 0; i < len; i++)
	{
		if (text[i] < '0' || text[i] > '9')
			return false;
		v = v * 10 + (uint64_t) (text[i] - '0');
	}
	if (v > AOS_KEY_VERSION_MAX)
		return false;
	*out = (uint32_t) v;
	return true;
}

/* Parse the part after encrypted://v1/. */
static AosRefKind
parse_encrypted(const char *text, size_t len, AosCredRef *out, const char **why)
{
	const char *slash = memchr(text, '/', len);
	size_t		decoded;

	if (slash == NULL || !parse_version(text, (size_t) (slash - text), &out->version))
	{
		*why = "the key version must be a positive integer followed by \"/\"";
		return AOS_REF_INVALID;
	}
	out->payload = slash + 1;
	out->payload_len = len - (size_t) (slash + 1 - text);
	if (!b64url_check(out->payload, out->payload_len, &decoded))
	{
		*why = "the payload is not canonical unpadded base64url";
		return AOS_REF_INVALID;
	}
	if (decoded < aos_cus_envelope_len(1) || decoded > aos_cus_envelope_len(AOS_CREDENTIAL_MAX))
	{
		*why = "the payload is too short or too long to be a nonce, ciphertext and tag";
		return AOS_REF_INVALID;
	}
	out->kind = AOS_REF_ENCRYPTED;
	return out->kind;
}

/* Vault secret names: 1..255 of letters, digits and . _ - : @ / + ~. */
static bool
valid_vault_name(const char *name, size_t len)
{
	if (len == 0 || len > AOS_REF_NAME_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
	{
		unsigned char c = (unsigned char) name[i];

		if (!(b64url_value(c) >= 0 || c == '.' || c == ':' || c == '@' || c == '/' || c == '+' || c == '~'))
			return false;
	}
	return true;
}

/* Environment variable names: a letter or underscore, then letters, digits, underscores. */
static bool
valid_env_name(const char *name, size_t len)
{
	if (len == 0 || len > AOS_REF_NAME_MAX || (name[0] >= '0' && name[0] <= '9'))
		return false;
	for (size_t i = 0; i < len; i++)
	{
		unsigned char c = (unsigned char) name[i];

		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
			return false;
	}
	return true;
}

/* Parse any reference. */
AosRefKind
aos_cus_ref_parse(const char *text, size_t len, AosCredRef *out, const char **why)
{
	memset(out, 0, sizeof(*out));
	*why = NULL;
	if (len > AOS_REF_MAX)
	{
		*why = "it is longer than 4096 bytes";
		return AOS_REF_INVALID;
	}
	if (aos_cus_plaintext_key_shape(text, len) != NULL)
	{
		*why = "it looks like a plaintext API key";
		return AOS_REF_INVALID;
	}
	if (starts_with(text, len, encrypted_prefix))
		return parse_encrypted(text + strlen(encrypted_prefix), len - strlen(encrypted_prefix), out, why);
	if (starts_with(text, len, "encrypted://"))
	{
		*why = "only envelope format v1 is known";
		return AOS_REF_INVALID;
	}
	if (starts_with(text, len, vault_prefix))
	{
		out->payload = text + strlen(vault_prefix);
		out->payload_len = len - strlen(vault_prefix);
		if (!valid_vault_name(out->payload, out->payload_len) ||
			aos_cus_plaintext_key_shape(out->payload, out->payload_len) != NULL)
		{
			*why = "a vault secret name is 1 to 255 letters, digits or . _ - : @ / + ~";
			return AOS_REF_INVALID;
		}
		out->kind = AOS_REF_VAULT;
		return out->kind;
	}
	if (starts_with(text, len, env_prefix))
	{
		out->payload = text + strlen(env_prefix);
		out->payload_len = len - strlen(env_prefix);
		if (!valid_env_name(out->payload, out->payload_len))
		{
			*why = "an environment variable name is 1 to 255 letters, digits or underscores, not starting with a digit";
			return AOS_REF_INVALID;
		}
		out->kind = AOS_REF_ENV;
		return out->kind;
	}
	*why = "it is not an encrypted://, vault:// or env:// reference";
	return AOS_REF_INVALID;
}

/* Shape of a whole text that is a provider key, or NULL. */
const char *
aos_cus_plaintext_key_shape(const char *text, size_t len)
{
	bool		all_hex = len == 32;

	if (starts_with(text, len, "sk-ant-"))
		return "Anthropic";
	if (starts_with(text, len, "sk-"))
		return "OpenAI";
	if (starts_with(text, len, "AIza"))
		return "Google";
	for (size_t i = 0; all_hex && i < len; i++)
		all_hex = is_hex((unsigned char) text[i]);
	return all_hex ? "Azure" : NULL;
}

/* Length of the run of key characters starting at text[i]. */
static size_t
key_run(const char *text, size_t len, size_t i)
{
	size_t		n = 0;

	while (i + n < len && is_key_char((unsigned char) text[i + n]))
		n++;
	return n;
}

/* Scan for sk-... (20+ key characters), AIza... (30+) or an isolated run of exactly 32 hex digits. */
bool
aos_cus_contains_plaintext_key(const char *text, size_t len)
{
	size_t		hex_run = 0;

	for (size_t i = 0; i < len; i++)
	{
		unsigned char c = (unsigned char) text[i];

		if (c == 's' && starts_with(text + i, len - i, "sk-") && key_run(text, len, i + 3) >= 20)
			return true;
		if (c == 'A' && starts_with(text + i, len - i, "AIza") && key_run(text, len, i + 4) >= 30)
			return true;
		if (is_hex(c))
			hex_run++;
		else
		{
			if (hex_run == 32)
				return true;
			hex_run = 0;
		}
	}
	return hex_run == 32;
}

/* AAD: "aos_cus\0" | version (big-endian) | tenant | integration. */
void
aos_cus_credential_aad(uint32_t version, const uint8_t tenant[16], const uint8_t integration[16],
				   uint8_t out[AOS_AAD_LEN])
{
	memcpy(out, "aos_cus", 8);
	out[8] = (uint8_t) (version >> 24);
	out[9] = (uint8_t) (version >> 16);
	out[10] = (uint8_t) (version >> 8);
	out[11] = (uint8_t) version;
	memcpy(out + 12, tenant, 16);
	memcpy(out + 28, integration, 16);
}

/* Byte offset of the last four characters (UTF-8 continuation bytes are not counted). */
size_t
aos_cus_credential_hint_offset(const char *text, size_t len)
{
	size_t		chars = 0,
				i = len;

	while (i > 0 && chars < 4)
	{
		i--;
		if (((unsigned char) text[i] & 0xc0) != 0x80)
			chars++;
	}
	return i;
}
