/* usage_keys.h: the idempotency keys of cus_llm_usage (usage_keys.c). */
#ifndef AOS_CUS_USAGE_KEYS_H
#define AOS_CUS_USAGE_KEYS_H

#include "postgres.h"

/* What the key trigger does with an inserted row; ingest sets it around its own inserts only. */
typedef enum AosUsageKeyMode
{
	AOS_USAGE_KEY_CLAIM,		/* claim the row's key; a duplicate raises 23505 as a unique constraint */
	AOS_USAGE_KEY_SKIP_DUPLICATES,	/* claim it; a duplicate skips its row */
	AOS_USAGE_KEY_CLAIMED		/* the same statement claimed it already (ingest's keyed insert) */
} AosUsageKeyMode;

extern AosUsageKeyMode aos_cus_usage_key_mode;

#endif
