/* credentials.h: credential resolution for the health probes (contract of the credentials module). */
#ifndef AOS_CUS_CREDENTIALS_H
#define AOS_CUS_CREDENTIALS_H

#include "postgres.h"

#include "utils/uuid.h"

/* The integration's plaintext key, palloc'd; the caller zeroes it after use. */
extern char *aos_cus_resolve_credential(const pg_uuid_t *tenant, const pg_uuid_t *integration);

#endif
