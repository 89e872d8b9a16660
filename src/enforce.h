/* enforce.h: enforcement state in shared memory (enforce.c). */
#ifndef AOS_CUS_ENFORCE_H
#define AOS_CUS_ENFORCE_H

#include "postgres.h"

/* Bytes of shared memory the enforcement state needs (sized by aos_cus.max_integrations). */
extern Size aos_cus_enforce_shmem_size(void);

/* Request the enforcement LWLock tranche (shmem request hook). */
extern void aos_cus_enforce_shmem_request(void);

/* Create or attach the enforcement state (under AddinShmemInitLock). */
extern void aos_cus_enforce_shmem_init(void);

/* Register the enforcement GUCs and, when preloaded, the transaction callbacks. */
extern void aos_cus_enforce_init(void);

#endif
