/* migrate_internal.h - private to the migrator: only sync/migrate.c, migrate_plan.c and
 * migrate_run.c include it, and nothing outside sync/ may.
 *
 * The migrator is one job split along its seams into three files that can each be
 * held in mind: reading the database's schema_version and finding drift (migrate.c),
 * deciding what a run would do (migrate_plan.c) and doing it (migrate_run.c). All
 * three need what migrate.h keeps opaque; this header holds just that: the layout of
 * migrate_t and the reading of its state. Its functions are prefixed migrate_ but are
 * not API; each says it is internal. */
#ifndef STM_MIGRATE_INTERNAL_H
#define STM_MIGRATE_INTERNAL_H

#include "migrate.h"
#include "apply.h"
#include "store.h"
#include "lineage/cache.h"
#include "lineage/lens.h"

struct migrate {
    char *db_path;            /* as given */
    schemaset_t *set;         /* the directory; NULL when only reading history */
    lineage_t *lineage;       /* built from set; NULL likewise */
    lens_set_t *lenses;       /* what set's migrations do to the data (lineage/lens.h),
                               * read from the cache at open, or derived when a step is
                               * to run; NULL before */
    cache_report cache;       /* what the cache did at open (lineage/cache.h) */
    applier_t *applier;       /* collects before each step of a run, on store; NULL
                               * outside a run */
    catalog_t *catalog;       /* the schema as the last step's capture read it, so the
                               * next reads only what it changed; NULL outside a run */
    store_t *store;           /* read-only until a change; NULL while the file is missing */
    bool exists;              /* the database file exists */
    bool created;             /* this run created the file (it did not exist when checked) */
    bool prepared;            /* stemma's tables exist */
    bool has_table;           /* schema_version exists */
    bool has_id_column;       /* schema_version.version_id exists */
    bool has_checksum_column; /* schema_version.checksum exists */
    bool replay_owed;         /* a replay of parked operations did not finish (store.h) */
    int moved_to;             /* the version another process moved the database to after
                               * this run had checked it (found by a step's transaction);
                               * -1 when none did */
    migrate_record *records;  /* schema_version's rows, by version */
    size_t nrecords;          /* entries in records */
    size_t records_cap;       /* room in records */
    int version;              /* the highest recorded version, 0 when none */
    bool adopt;               /* columns or values of stemma's are missing */
    char **drift;             /* why migrate would refuse, in version order */
    size_t ndrift;            /* entries in drift */
    size_t drift_cap;         /* room in drift */
    char **exclude;           /* the tables in stemma_exclude (none when not prepared) */
    size_t nexclude;          /* entries in exclude */
};

/* Internal. (Re)reads everything the accessors report from the open store (none when
 * self->store is NULL): schema_version's layout and rows, and drift against the
 * directory when there is one. */
STM_NODISCARD stm_err stm_migrate_load_state(migrate_t *self, stm_error *err);

/* Internal. Forgets what stm_migrate_load_state read. */
void stm_migrate_clear_state(migrate_t *self);

/* Internal. The tables of `version` that are not synced, each with why, as
 * stm_syncable_unsynced gives them, with stemma_exclude's tables and o's exclude list (o
 * may be NULL) as the user's exclusions. *out is the caller's (stm_syncable_tables_free). */
size_t stm_migrate_unsynced_at(const migrate_t *self, int version, const migrate_options *o,
                               syncable_table **out);
/* The same for the synced tables whose keys are chosen per device (names). */
/* The same for the synced tables whose keys change rule between two versions. */
size_t stm_migrate_keys_changed_at(const migrate_t *self, int from, int to,
                                   const migrate_options *o, char ***out);
size_t stm_migrate_per_device_at(const migrate_t *self, int version, const migrate_options *o,
                                 char ***out);

/* Internal. Frees n steps and their strings (stm_migrate_plan_free, stm_migrate_result_free). */
void stm_migrate_steps_free(migrate_step *steps, size_t n);

#endif
