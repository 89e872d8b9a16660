/* vocab.c: the tables of vocab.h. */
#include "vocab.h"

#include <string.h>

const char *const aos_cus_provider_names[AOS_PROVIDER_COUNT + 1] = {
	"openai", "anthropic", "google", "azure_openai", "aws_bedrock", "mistral", "custom", NULL,
};

const char *const aos_cus_tier_names[AOS_TIER_COUNT + 1] = {
	"standard", "priority", "flex", "batch", NULL,
};

const char *const aos_cus_bucket_names[AOS_BUCKET_COUNT + 1] = {
	"input", "cache_read", "cache_write", "cache_write_1h",
	"output", "reasoning", "input_audio", "output_audio", NULL,
};

const char *const aos_cus_token_columns[AOS_BUCKET_COUNT + 1] = {
	"input_tokens", "cache_read_tokens", "cache_write_tokens", "cache_write_1h_tokens",
	"output_tokens", "reasoning_tokens", "input_audio_tokens", "output_audio_tokens", NULL,
};

/* Address of bucket b's count in t. */
static int64_t *
bucket_slot(AosTokens *t, AosBucket b)
{
	switch (b)
	{
		case AOS_BUCKET_INPUT:
			return &t->input;
		case AOS_BUCKET_CACHE_READ:
			return &t->cache_read;
		case AOS_BUCKET_CACHE_WRITE:
			return &t->cache_write;
		case AOS_BUCKET_CACHE_WRITE_1H:
			return &t->cache_write_1h;
		case AOS_BUCKET_OUTPUT:
			return &t->output;
		case AOS_BUCKET_REASONING:
			return &t->reasoning;
		case AOS_BUCKET_INPUT_AUDIO:
			return &t->input_audio;
		case AOS_BUCKET_OUTPUT_AUDIO:
		default:
			return &t->output_audio;
	}
}

int64_t
aos_cus_tokens_get(const AosTokens *t, AosBucket b)
{
	return *bucket_slot((AosTokens *) t, b);
}

void
aos_cus_tokens_set(AosTokens *t, AosBucket b, int64_t count)
{
	*bucket_slot(t, b) = count;
}

bool
aos_cus_bucket_in_total(AosBucket b)
{
	return b != AOS_BUCKET_REASONING;
}

/* Linear search: the lists are short (at most seven names). */
int
aos_cus_enum_index(const char *s, size_t len, const char *const *names)
{
	for (int i = 0; names[i] != NULL; i++)
		if (strlen(names[i]) == len && memcmp(names[i], s, len) == 0)
			return i;
	return -1;
}

/* Join names with ", " into buf, truncating safely. */
void
aos_cus_enum_list(const char *const *names, char *buf, size_t bufsize)
{
	size_t		used = 0;

	if (bufsize == 0)
		return;
	buf[0] = '\0';
	for (int i = 0; names[i] != NULL; i++)
	{
		size_t		need = strlen(names[i]) + (i > 0 ? 2 : 0);

		if (used + need + 1 > bufsize)
			break;
		if (i > 0)
		{
			memcpy(buf + used, ", ", 2);
			used += 2;
		}
		memcpy(buf + used, names[i], strlen(names[i]));
		used += strlen(names[i]);
		buf[used] = '\0';
	}
}

int
aos_cus_provider_parse(const char *name, int len)
{
	return aos_cus_enum_index(name, (size_t) len, aos_cus_provider_names);
}

int
aos_cus_tier_parse(const char *name, int len)
{
	return aos_cus_enum_index(name, (size_t) len, aos_cus_tier_names);
}
