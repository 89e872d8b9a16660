/* metrics.h: the Prometheus exposition and counter snapshots. */
#ifndef AOS_CUS_METRICS_H
#define AOS_CUS_METRICS_H

#include "postgres.h"

/* Register the metrics GUCs (aos_cus.metrics_max_integrations). */
extern void aos_cus_metrics_init(void);

#endif
