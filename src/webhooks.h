/* webhooks.h: webhook endpoints, the outbox's writer for C callers, the worker's settings and wake-up (issue 15). */
#ifndef AOS_CUS_WEBHOOKS_H
#define AOS_CUS_WEBHOOKS_H

#include "postgres.h"

#include "storage/latch.h"
#include "utils/uuid.h"

/* GUCs (see aos_cus_webhooks_init for meaning and ranges). */
extern bool aos_cus_webhook_worker_enabled;
extern int	aos_cus_webhook_max_attempts;
extern int	aos_cus_webhook_retry_base_ms;
extern int	aos_cus_webhook_retry_max_ms;
extern int	aos_cus_webhook_timeout_ms;
extern int	aos_cus_webhook_projection_interval_s;
extern int	aos_cus_webhook_max_in_flight;
extern int	aos_cus_webhook_retention_s;

/* Register the webhook GUCs (the worker switch only while preloading). */
extern void aos_cus_webhooks_init(void);

/* Register the webhook worker when aos_cus.webhook_worker is on. */
extern void aos_cus_webhooks_register_worker(void);

/* Shared memory: the worker's latch. */
extern Size aos_cus_webhooks_shmem_size(void);
extern void aos_cus_webhooks_shmem_init(void);
extern void aos_cus_webhooks_set_worker_latch(Latch *latch);

/*
 * Write one event to the outbox in the current transaction (once per
 * dedup_key), with a delivery for every subscribed endpoint of the tenant.
 * Runs with raised rights; payload is a JSON object's text.
 */
extern void aos_cus_webhook_emit(const pg_uuid_t *tenant, const char *type, const char *scope,
								 const char *dedup_key, const char *payload);

/* Background worker entry point (webhook_worker.c). */
extern PGDLLEXPORT void aos_cus_webhook_worker_main(Datum arg);

#endif
