/* usage_keys.h: the idempotency keys of cus_llm_usage (usage_keys.c). */
#ifndef AOS_CUS_USAGE_KEYS_H
#define AOS_CUS_USAGE_KEYS_H

#include "postgres.h"

/* While true (ingest's own inserts), a duplicate (tenant_id, call_id) skips its row instead of raising 23505. */
extern bool aos_cus_usage_keys_skip_duplicates;

#endif
