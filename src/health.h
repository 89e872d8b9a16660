/* health.h: provider health probes (libcurl), the check queue's wake-up and the health worker. */
#ifndef AOS_CUS_HEALTH_H
#define AOS_CUS_HEALTH_H

#include "postgres.h"

#include <curl/curl.h>

#include "egress_curl.h"
#include "health_probe.h"
#include "storage/latch.h"
#include "utils/uuid.h"

/* GUCs (see aos_cus_health_init for meaning and ranges). */
extern bool aos_cus_health_worker_enabled;
extern char *aos_cus_health_database;
extern int	aos_cus_health_interval_s;
extern int	aos_cus_health_timeout_ms;
extern int	aos_cus_health_connect_timeout_ms;
extern char *aos_cus_health_ca_file;
extern int	aos_cus_health_max_in_flight;

/* One probe of one integration, from set-up to its classified result. */
typedef struct AosHealthProbe
{
	pg_uuid_t	tenant_id;
	pg_uuid_t	integration_id;
	int64		check_id;		/* queue row, 0 for test_credentials */
	bool		record;			/* false: integration gone, only drop the queue row */
	CURL	   *easy;			/* NULL once finished (or never started) */
	struct curl_slist *headers;
	AosEgressGuard egress;		/* the egress policy's view of the transfer */
	size_t		body_bytes;
	AosHealthState state;
	int			latency_ms;
	long		http_status;
	char		error[AOS_PROBE_ERROR_MAX];
} AosHealthProbe;

/* Initialize libcurl once per process (ERROR on failure). */
extern void aos_cus_health_curl_init(void);

/*
 * Set up p's request for provider at base_url with key (not kept: it is copied
 * into a header that is zeroed when the probe finishes). When the request
 * cannot be built, p is finished at once with a classified error and false is returned.
 */
extern bool aos_cus_health_probe_prepare(AosHealthProbe *p, const char *provider, const char *base_url,
								 const char *api_version, const char *health_path, const char *key);

/* Finish p without network I/O: state and error as given (for set-up failures). */
extern void aos_cus_health_probe_fail(AosHealthProbe *p, AosHealthState state, const char *error);

/* Read finished transfers off multi and classify their probes; returns how many finished. */
extern int	aos_cus_health_multi_collect(CURLM *multi);

/* Run one prepared probe to completion, cancellable (test_credentials). */
extern void aos_cus_health_probe_run(AosHealthProbe *p);

/* Resolve p's integration key and set up its request (the key is wiped at once); false as aos_cus_health_probe_prepare. */
extern bool aos_cus_health_probe_setup(AosHealthProbe *p, const char *provider, const char *base_url,
							   const char *api_version, const char *health_path);

/* Register the health GUCs. */
extern void aos_cus_health_init(void);

/* Register the background worker when aos_cus.health_worker is on (preload only). */
extern void aos_cus_health_register_worker(void);

/* Shared memory for the worker's latch. */
extern Size aos_cus_health_shmem_size(void);
extern void aos_cus_health_shmem_init(void);

/* Publish (or clear, with NULL) the running worker's latch. */
extern void aos_cus_health_set_worker_latch(Latch *latch);

/* Background worker entry point. */
extern PGDLLEXPORT void aos_cus_health_worker_main(Datum arg);

#endif
