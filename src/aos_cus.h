/* aos_cus.h: what every fmgr module uses: the preload flag and argument and trigger checks. */
#ifndef AOS_CUS_H
#define AOS_CUS_H

#include "postgres.h"

#include "fmgr.h"

/* True once _PG_init ran from shared_preload_libraries (shared memory and workers exist). */
extern bool aos_cus_preloaded;

/* Raise 55000 naming shared_preload_libraries when a preload-only feature is used without it. */
extern void aos_cus_require_preload(void);

/* Raise 22004 naming the argument when argument n is NULL. */
extern void aos_cus_require_arg(FunctionCallInfo fcinfo, int n, const char *name);

/* Raise 39P01 unless called as a trigger on aos_cus.<table> (any aos_cus table when table is NULL). */
extern void aos_cus_require_trigger_on(FunctionCallInfo fcinfo, const char *fname, const char *table);

#endif
