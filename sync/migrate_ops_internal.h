/* migrate_ops_internal.h - private to migrate_ops: migrate_ops.c watches a step and
 * copies what it writes (invariant 1 of migrate_ops.h); migrate_ops_record.c compares
 * after the step and records the differences (2 - 4). What both must agree on. */
#ifndef STM_MIGRATE_OPS_INTERNAL_H
#define STM_MIGRATE_OPS_INTERNAL_H

#include "migrate_ops.h"
#include "lineage/catalog.h"

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>

/* One table copied before the step wrote it. */
typedef struct {
    char *table; /* its name when copied (the version the step starts from) */
    char *copy;  /* the temp table holding its rows */
    char **cols; /* the copy's columns, as the table had them when copied */
    size_t ncols;
    char **keys; /* its key columns, in key order */
    size_t nkeys;
} migops_copy;

struct migrate_ops {
    store_t *store;
    sqlite3 *db;
    catalog_t *before;      /* the schema the step starts from */
    const catalog_t *since; /* an earlier reading of the schema, lent; NULL: none */
    bool since_is_now;      /* ... and the schema as the step starts from */
    char **pending;         /* tables the statement being prepared writes */
    size_t npending, pending_cap;
    migops_copy *copies;
    size_t ncopies, copies_cap;
};

/* The copy of table (its name at the version the step starts from), or NULL: the step
 * did not write it. Lent by m. */
const migops_copy *stm_migrate_ops_copy_of(const migrate_ops_t *m, const char *table);

#endif
