/* migrate_internal.h - private to the migrator: only sync/migrate.c, migrate_plan.c and
 * migrate_run.c include it, and nothing outside sync/ may.
 *
 * The migrator is one job split along its seams into files that can each be held in
 * mind: reading the database's schema_version and finding drift (migrate.c), deciding
 * what a run would do (migrate_plan.c), doing it (migrate_run.c), and taking over a
 * database stemma did not migrate, an older tool's schema_version or none at all
 * (migrate_adopt.c). They need what migrate.h keeps opaque; this header holds just
 * that: the layout of migrate_t, the reading of its state, and the pieces of a run's
 * transactions that adopting shares with the steps. Its functions are prefixed
 * stm_migrate_ but are not API; each says it is internal. */
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
    bool untracked;           /* no schema_version, yet tables of the schema set */
    bool recognised;          /* match holds stm_migrate_recognise's answer for want */
    int recognised_want;      /* ... the version asked for (0: any) */
    baseline_match match;     /* ... the answer (lineage/baseline.h) */
};

/* Internal. (Re)reads everything the accessors report from the open store (none when
 * self->store is NULL): schema_version's layout and rows, and drift against the
 * directory when there is one. */
STM_NODISCARD stm_err stm_migrate_load_state(migrate_t *self, stm_error *err);

/* Internal. Forgets what stm_migrate_load_state read. */
void stm_migrate_clear_state(migrate_t *self);

/* Internal. The tables of `version` that are not synced, each with why, as
 * stm_syncable_unsynced gives them, with stemma_exclude's tables and o's exclude list (o
 * may be NULL) as the user's exclusions; and those of the database's tables the schema
 * set never had (marked outside). *out is the caller's (stm_syncable_tables_free). */
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

/* ---- migrate_adopt.c ---- */

/* Internal. Reads whether the database is untracked (self->untracked), on its open
 * store; only when it has no schema_version. */
STM_NODISCARD stm_err stm_migrate_read_untracked(migrate_t *self, stm_error *err);

/* Internal. The baseline part of a migrate plan (migrate_plan.c), for a database that
 * has no schema_version: refuses an untracked database without o->baseline, one whose
 * schema is no version's or several's alike (naming them), and a target below the
 * version recognised; else sets plan->baseline (0 when the database holds no table of
 * the set) and plan->baseline_rows. */
STM_NODISCARD stm_err stm_migrate_plan_baseline(migrate_t *self, const migrate_options *o,
                                                migrate_plan *plan, stm_error *err);

/* ---- a run's pieces (migrate_run.c), shared with migrate_adopt.c ---- */

/* Internal. One run: what it works on, whom it tells, and what it has done so far. */
typedef struct {
    migrate_t *self;          /* the migrator, its store writable */
    const migrate_options *o; /* the caller's options, lent */
    migrate_result *res;      /* filled as the run goes */
} migrate_run_ctx;

/* Internal. Tells the caller's progress callback of ev, if it has one. */
void stm_migrate_tell(const migrate_run_ctx *run, const migrate_event *ev);
/* Internal. The version id of version n of the directory (zero for 0). */
stm_id stm_migrate_id_of(const migrate_t *self, int n);
/* Internal. Begins a run's write transaction at version expected (another process
 * moving the database is found here: self->moved_to); the queued changes collected
 * first, schema_version made when missing. unhook: every capture trigger removed
 * (stm_migrate_tx_capture makes them again before the commit). */
STM_NODISCARD stm_err stm_migrate_tx_begin(migrate_t *self, int expected, bool unhook,
                                           stm_error *err);
/* Internal. Ends a step's work in its transaction: stemma's tables, o's exclusions,
 * the version id the triggers stamp (id), triggers for the schema as it now is. */
STM_NODISCARD stm_err stm_migrate_tx_capture(migrate_t *self, const migrate_options *o,
                                             const stm_id *id, stm_error *err);
/* Internal. The same without the triggers, which it leaves as they are: the marks and
 * the catalog follow the schema as it now is (stm_capture_mark_since), for a step of a
 * run that makes the triggers once at its end. */
STM_NODISCARD stm_err stm_migrate_tx_marks(migrate_t *self, const migrate_options *o,
                                           const stm_id *id, stm_error *err);
/* Internal (migrate_steps.c). Runs plan's steps (there is at least one) in one
 * transaction, a savepoint each, capture's triggers dropped at its start and made for
 * the version reached before its commit; a step that fails is rolled back alone and the
 * steps before it commit. Fills run->res as steps end; err says where the database is
 * when one fails. */
STM_NODISCARD stm_err stm_migrate_run_steps(const migrate_run_ctx *run, const migrate_plan *plan,
                                            stm_error *err);
/* Internal. Commits the run's transaction; rolls it back (and forgets the applier). */
STM_NODISCARD stm_err stm_migrate_tx_commit(migrate_t *self, stm_error *err);
void stm_migrate_tx_rollback(migrate_t *self);
/* Internal. Records version v as applied, as migrate does (in a transaction). */
STM_NODISCARD stm_err stm_migrate_record_version(migrate_t *self, const lineage_version *v,
                                                 stm_error *err);
/* Internal. After another process moved the database: says what this run did before
 * in err, and makes the result tell the version the database is really at. */
void stm_migrate_tell_moved(const migrate_run_ctx *run, stm_error *err);

/* Internal (migrate_adopt.c). Adds stemma's columns to an older tool's schema_version
 * and fills them from the lineage, in a transaction of its own, capture set up; rows
 * held before stemma's tables were made, made operations as a baseline's. */
STM_NODISCARD stm_err stm_migrate_adopt(const migrate_run_ctx *run, stm_error *err);
/* Internal (migrate_adopt.c). The baseline of plan (plan->baseline > 0), in a
 * transaction of its own: the schema checked again, versions 1 .. baseline recorded,
 * capture set up, every row made an operation (stm_migrate_ops_record_rows). */
STM_NODISCARD stm_err stm_migrate_baseline(const migrate_run_ctx *run, const migrate_plan *plan,
                                           stm_error *err);

#endif
