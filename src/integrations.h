/* integrations.h: the errors every integration lookup raises, worded once (the SQL API words them alike). */
#ifndef AOS_CUS_INTEGRATIONS_H
#define AOS_CUS_INTEGRATIONS_H

#include "postgres.h"

#include "utils/uuid.h"

/* Raise 42704: integration is not one of the session tenant's (unknown, or another tenant's). */
extern void aos_cus_integration_missing(const pg_uuid_t *integration) pg_attribute_noreturn();

/* Raise 55000: integration is deleted. */
extern void aos_cus_integration_deleted(const pg_uuid_t *integration) pg_attribute_noreturn();

#endif
