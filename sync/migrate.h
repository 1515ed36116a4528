/* migrate.h - brings a device's database to a version of its schema set, and back.
 *
 * The database records what was applied in a `schema_version` table:
 *
 *   version INTEGER PRIMARY KEY   1, 2, ... without gaps
 *   applied_at TEXT NOT NULL      UTC, ISO 8601 with milliseconds
 *   description TEXT NOT NULL     the migration's description when it was applied
 *   version_id TEXT               the lineage id (docs/lineage.md), 64 lowercase hex
 *   checksum TEXT                 BLAKE2b-256 of the migration text, 64 lowercase hex
 *
 * The first three columns are the layout older tools made; a table with only those
 * (or rows with no id or checksum) is *adopted*: its numbers are checked against the
 * directory and the missing columns and values filled in from the lineage.
 *
 * A database with no schema_version at all that holds tables of the schema set was
 * made without stemma. migrate refuses it, unless told to take it over (a *baseline*,
 * migrate_options.baseline): then the version whose schema it has is recognised,
 * exactly (lineage/baseline.h), and recorded as if migrate had applied versions 1 ..
 * N, capture is set up, and every row it holds becomes an operation that any real
 * write beats (sync/migrate_ops.h, stm_migrate_ops_record_rows), all in one
 * transaction; the run goes on from N. This is migrate_adopt.c's, with the adoption
 * of an older tool's table.
 *
 * Invariants the migrator keeps:
 *   1. Nothing touches the real database before the whole schema set has been run in
 *      memory (stm_lineage_build): bad SQL is refused first. With a cache
 *      (stm_migrate_open_cached) that run may be an earlier one, of the very same
 *      texts: the cache answers only for the set whose version ids it holds.
 *   2. A run's steps (migrations or rollback steps) are one transaction, each step
 *      under a savepoint that also updates schema_version and stemma_local.version_id;
 *      the capture triggers are dropped at the run's start and made for the version
 *      reached before the commit, so the database is always at exactly one recorded
 *      version with triggers matching it. A step that fails is rolled back to its
 *      savepoint and the steps before it commit; a run killed, or whose commit fails,
 *      leaves the database where it was. An adoption or a baseline is a transaction
 *      of its own.
 *   3. Before the first change the whole database is copied with SQLite's online
 *      backup API to DB.vFROM-YYYYMMDDTHHMMSSZ.bak (unless the caller opts out, the
 *      file is new, or nothing will change).
 *   4. Drift (an applied file changed since, a recorded version the directory lacks,
 *      a gap, tables or columns that are not those the lineage derives for the
 *      recorded version) makes migrate and rollback refuse before anything is changed.
 *   5. Checks read the database through a read-only connection; the writable one is
 *      opened only when something will change, so status, plans and refusals leave
 *      the file byte-for-byte as it was (SQLite may still create the -wal and -shm
 *      files beside a WAL database it reads).
 *   6. The migrator prints nothing. What a run would do is a value (migrate_plan),
 *      what it did is a value (migrate_result), and each step is reported as it
 *      happens through a callback (migrate_progress_fn); the command line renders
 *      them (cli/migrate_text.h).
 *
 * The module is three files: migrate.c reads schema_version and finds drift, and has
 * the accessors; migrate_plan.c decides what a run would do (every refusal is there);
 * migrate_run.c carries a plan out, one transaction a run. */
#ifndef STM_MIGRATE_H
#define STM_MIGRATE_H

#include "base/error.h"
#include "lineage/baseline.h"
#include "lineage/lens.h"
#include "lineage/lineage.h"
#include "lineage/schemaset.h"
#include "lineage/syncable.h"

#include <stdbool.h>
#include <stdint.h>

/* migrate_options.to for "the newest version of the directory". */
#define MIGRATE_HEAD (-1)
/* A step running longer than this is reported as running (MIGRATE_EVENT_STEP_RUNNING). */
#define MIGRATE_PROGRESS_AFTER_MS 1000
/* After the first, STEP_RUNNING events come at most this often: enough to redraw an
 * elapsed-time line, few enough not to slow the step. */
#define MIGRATE_PROGRESS_EVERY_MS 100

/* Which way a step goes. */
typedef enum {
    MIGRATE_UP = 1, /* applying a migration: version - 1 -> version */
    MIGRATE_DOWN,   /* running its rollback file: version -> version - 1 */
} migrate_direction;

/* One step of a plan or of a result. Its strings belong to the plan or result that
 * holds it; in an event the whole step is lent for the call. */
typedef struct {
    int version;                 /* the migration's number */
    migrate_direction direction; /* applied, or rolled back */
    char *file;                  /* "DIR/NNN_x.sql", or "DIR/NNN_x.down.sql" going down */
    char *description;           /* the migration's description (the up file's) */
    char *sql;                   /* the text that runs; in a plan only (NULL in a result) */
    long long ms;                /* how long it ran: in a result and STEP_DONE; 0 in a plan */
} migrate_step;

/* What happened, told as it happens (migrate_progress_fn). */
typedef enum {
    MIGRATE_EVENT_BACKUP_WRITTEN = 1, /* path: the backup, taken before the first change */
    MIGRATE_EVENT_ADOPTED,            /* version, rows: an older tool's schema_version
                                         adopted (rows: those it held before stemma's
                                         tables were made, made operations) */
    MIGRATE_EVENT_STEP_STARTED,       /* step: its transaction is about to begin */
    MIGRATE_EVENT_STEP_RUNNING,       /* step, elapsed_ms: a long step, still running */
    MIGRATE_EVENT_STEP_DONE,          /* step, elapsed_ms: committed */
    MIGRATE_EVENT_STEP_FAILED,        /* step, elapsed_ms: rolled back; the error says why */
    MIGRATE_EVENT_REPLAYED,           /* replayed, parked: parked operations retried */
    MIGRATE_EVENT_CAPTURE_SET_UP,     /* version: no step ran; capture set up (again) there */
    MIGRATE_EVENT_BASELINED,          /* version, rows: a database made without stemma
                                         recorded at the version its schema is, its rows
                                         made operations */
} migrate_event_kind;

/* One event. Everything in it is lent for the call only. */
typedef struct {
    migrate_event_kind kind;
    const migrate_step *step; /* STEP_*: the step; NULL for the others */
    long long elapsed_ms;     /* STEP_RUNNING, _DONE, _FAILED: since STEP_STARTED */
    const char *path;         /* BACKUP_WRITTEN: the backup's path; NULL for the others */
    int version;              /* ADOPTED: the version adopted at; CAPTURE_SET_UP: the version */
    uint64_t replayed;        /* REPLAYED: operations that applied this time */
    uint64_t parked;          /* REPLAYED: operations still parked after */
    uint64_t rows;            /* BASELINED, ADOPTED: rows made operations; STEP_RUNNING:
                                 rows of the database's tables the step has inserted,
                                 updated or deleted so far (of tables with rowids: SQLite
                                 tells nothing of the rows of others) */
    uint64_t ops;             /* BASELINED, ADOPTED: ... the operations */
} migrate_event;

/* Told of each event of stm_migrate_run and stm_migrate_rollback, on the calling thread.
 * STEP_RUNNING is told from inside SQLite (its progress handler) while the step's
 * statement runs: the callback must not use the database or the migrate_t, and
 * should return quickly. user is migrate_options.progress_user. */
typedef void (*migrate_progress_fn)(const migrate_event *ev, void *user);

/* What a run may do and whom it tells. A plain value type; start from
 * MIGRATE_OPTIONS_INIT. Pointers are lent for the call. */
typedef struct {
    int to;                       /* target version, or MIGRATE_HEAD (migrate only) */
    bool backup;                  /* copy the database before the first change */
    const char *const *exclude;   /* tables to record in stemma_exclude (migrate only) */
    size_t nexclude;              /* entries in exclude */
    migrate_progress_fn progress; /* told of each step as it happens; NULL: no one */
    void *progress_user;          /* passed to progress */
    int progress_after_ms;        /* how long a step runs before STEP_RUNNING events */
    bool baseline;                /* a database without schema_version that holds tables of
                                     the schema set is taken over at the version its schema
                                     is (see above); false: it is refused (migrate only) */
    int baseline_version;         /* with baseline: the version the caller says it is at,
                                     which its schema must be too (several versions may
                                     have one schema); 0: the one its schema is */
} migrate_options;

#define MIGRATE_OPTIONS_INIT                                                                       \
    {.to = MIGRATE_HEAD, .backup = true, .progress_after_ms = MIGRATE_PROGRESS_AFTER_MS}

/* What a run would do: stm_migrate_run_plan, stm_migrate_rollback_plan. A plain value; every
 * string and array in it is its own (stm_migrate_plan_free), so it outlives the migrate_t. */
typedef struct {
    /* The database as checked. Filled whenever the target was accepted, even when
     * the call then refuses, so that a caller can show what it refuses on. */
    bool checked;       /* the fields of this part are filled */
    char *db_path;      /* as given to stm_migrate_open */
    bool db_exists;     /* false: a run would create the file */
    int version;        /* the version it is at, 0 when none */
    bool has_id;        /* id holds that version's id (stm_migrate_version_id) */
    stm_id id;          /* the current version id, zero when none */
    char *schemas_dir;  /* the schema set's directory */
    size_t nmigrations; /* migrations in the directory */
    bool untracked;     /* no schema_version, yet tables of the schema set (made without
                           stemma: stm_migrate_untracked) */
    char **drift;       /* why a run would refuse (stm_migrate_drift_at), in version order */
    size_t ndrift;      /* entries in drift */
    /* What a run would do. Filled when the call returns STM_OK. */
    migrate_direction direction; /* UP for migrate, DOWN for rollback */
    int target;                  /* the version a run would end at */
    bool nothing_to_do;          /* a run would change nothing */
    bool backup;                 /* a backup would be taken before the first change */
    bool adopt;                  /* an older tool's schema_version would be adopted first */
    int baseline;                /* > 0: the database has no schema_version and its schema
                                    is this version's: a run records versions 1 .. baseline
                                    first, and the steps start after it */
    uint64_t baseline_rows;      /* ... the rows of its synced tables a run makes operations */
    bool set_up_capture;         /* no step, but capture set up anew (and exclusions recorded) */
    bool replay;                 /* no step, but the replay after an earlier run's steps was
                                    cut short (killed, disk full): it is run again */
    migrate_step *steps;         /* in the order a run would take them, sql included */
    size_t nsteps;               /* entries in steps */
    char **exclude;              /* tables a run would record in stemma_exclude (the options') */
    size_t nexclude;             /* entries in exclude */
    uint64_t parked;             /* parked operations an UP run would retry after its steps */
    syncable_table *unsynced;    /* the tables of `target` that would not be synced, and why
                                    (stemma_exclude and the options' exclusions counted), in
                                    order of name; also when there is nothing to do */
    size_t nunsynced;            /* entries in unsynced */
    char **per_device;           /* the synced tables of `target` whose keys are chosen per
                                    device (lineage/syncable.h), by name */
    size_t nper_device;          /* entries in per_device */
    char **keys_changed;         /* the synced tables whose keys go from merging to chosen
                                    per device, or back, between the database's version and
                                    `target` (stm_syncable_keys_changed), by name */
    size_t nkeys_changed;        /* entries in keys_changed */
} migrate_plan;

/* Frees what plan holds and zeroes it; safe on a zeroed plan, and twice. */
void stm_migrate_plan_free(migrate_plan *plan);

/* What a run did: stm_migrate_run, stm_migrate_rollback. A plain value; every string and array
 * in it is its own (stm_migrate_result_free). Filled as the run goes, so after a failure
 * it says what was done before it (the backup, the steps that committed). */
typedef struct {
    migrate_direction direction; /* UP for migrate, DOWN for rollback */
    int from;                    /* the version before the run */
    int version;                 /* the version the database is at after it */
    bool has_id;                 /* id holds that version's id */
    stm_id id;                   /* the version id after the run */
    bool nothing_to_do;          /* nothing needed doing: nothing was changed */
    char *backup_path;           /* the backup the run took, or NULL when it took none */
    bool adopted;                /* an older tool's schema_version was adopted */
    int baseline;                /* > 0: recorded at this version first (the plan's) */
    uint64_t baseline_rows;      /* the rows the database held before stemma, made
                                    operations: by the baseline, or an adoption */
    uint64_t baseline_ops;       /* ... the operations */
    bool capture_set_up;         /* no step ran, and capture was set up in a step of its own */
    migrate_step *steps;         /* the steps that committed, in order (sql NULL) */
    size_t nsteps;               /* entries in steps */
    uint64_t derived_rows;       /* rows the steps wrote, sent as operations (migrate_ops.h) */
    uint64_t derived_ops;        /* ... the operations */
    uint64_t derived_kept;       /* cells or rows written at a step's version or later that
                                    a step changed, put back as they were */
    uint64_t derived_unkept;     /* ... that a constraint would not take back */
    bool replay_ran;             /* parked operations were retried (after UP steps) */
    uint64_t replayed;           /* of them, how many applied */
    uint64_t parked;             /* operations still parked after the replay */
    uint64_t dropped;            /* going down: operations parked because a step dropped
                                    the column or table they wrote, to replay when a
                                    migration adds it again (sync/dropped.h) */
    syncable_table *unsynced;    /* when the run succeeded: the tables of `version` that are
                                    not synced, and why (stemma_exclude counted), in order of
                                    name; also when there was nothing to do */
    size_t nunsynced;            /* entries in unsynced */
    char **per_device;           /* when the run succeeded: the synced tables of `version`
                                    whose keys are chosen per device, by name */
    size_t nper_device;          /* entries in per_device */
    char **keys_changed;         /* when the run succeeded: those whose keys went from
                                    merging to chosen per device, or back, between `from`
                                    and `version`, by name */
    size_t nkeys_changed;        /* entries in keys_changed */
} migrate_result;

/* Frees what result holds and zeroes it; safe on a zeroed result, and twice. */
void stm_migrate_result_free(migrate_result *result);

/* One row of schema_version. Strings are owned by whoever holds the record. */
typedef struct {
    int version;       /* 1, 2, ... */
    char *applied_at;  /* as recorded, "" when NULL */
    char *description; /* as recorded, "" when NULL */
    bool has_id;       /* version_id is recorded (false: an older tool's row) */
    stm_id id;         /* the recorded version id */
    bool has_checksum; /* checksum is recorded */
    stm_id checksum;   /* the recorded checksum */
} migrate_record;

typedef struct migrate migrate_t;

/* Loads the schema set in schemas_dir, builds its lineage (every migration runs in
 * memory) and reads db_path's schema_version through a read-only connection; a
 * missing db_path reads as version 0 and is not created. *out is the caller's
 * (stm_migrate_destroy). STM_EINPUT for a bad schema set, a file that is not SQLite or a
 * schema_version table of another layout; drift is not an error here (see below). */
STM_NODISCARD stm_err stm_migrate_open(const char *db_path, const char *schemas_dir,
                                       migrate_t **out, stm_error *err);
/* The same, the lineage and lenses read from the cache in cache_dir (lineage/cache.h)
 * when it holds them for this schema set, else derived and written there; cache_dir
 * NULL: no cache, as stm_migrate_open. A cache that cannot be used is no error:
 * stm_migrate_cache_warning says so. */
STM_NODISCARD stm_err stm_migrate_open_cached(const char *db_path, const char *schemas_dir,
                                              const char *cache_dir, migrate_t **out,
                                              stm_error *err);
/* The same with the schema set read in layout (lineage/layout.h; LAYOUT_AUTO: detected). */
STM_NODISCARD stm_err stm_migrate_open_layout(const char *db_path, const char *schemas_dir,
                                              schemaset_layout layout, const char *cache_dir,
                                              migrate_t **out, stm_error *err);
void stm_migrate_destroy(migrate_t **self_p);

/* One line for the user when the cache held a file for this set that could not be used
 * (and why), lent; NULL otherwise. */
const char *stm_migrate_cache_warning(const migrate_t *self);

/* The schema set and its lineage, lent: valid until stm_migrate_destroy. */
const schemaset_t *stm_migrate_schemaset(const migrate_t *self);
const lineage_t *stm_migrate_lineage(const migrate_t *self);
/* The lenses of the schema set when they were read from the cache at open (or derived
 * by a run that stepped), handed to the caller (stm_lens_destroy); NULL when there are
 * none. The migrator no longer has them after. */
lens_set_t *stm_migrate_take_lenses(migrate_t *self);
/* The database path as given, lent. */
const char *stm_migrate_db_path(const migrate_t *self);
/* False when the database file does not exist (yet). */
bool stm_migrate_db_exists(const migrate_t *self);
/* True when stemma's own tables (store.h) are in the database. */
bool stm_migrate_is_prepared(const migrate_t *self);
/* The highest applied version, 0 when none. */
int stm_migrate_version(const migrate_t *self);
/* The current version's id into *out: the recorded one, else (an older tool's row) the
 * directory's for that number. False, and *out zero, when there is none. */
bool stm_migrate_version_id(const migrate_t *self, stm_id *out);
/* True when schema_version lacks stemma's columns or values and would be adopted. */
bool stm_migrate_needs_adoption(const migrate_t *self);
/* True when the database has no schema_version yet holds tables of the schema set: made
 * without stemma, it needs a baseline (migrate_options.baseline). */
bool stm_migrate_untracked(const migrate_t *self);
/* For an untracked database: which version its schema is (lineage/baseline.h), want as
 * stm_baseline_match's. *out is lent until the next call or the database is read again
 * (a run). STM_EDB and STM_EINPUT as stm_baseline_match's. */
STM_NODISCARD stm_err stm_migrate_recognise(migrate_t *self, int want,
                                            const baseline_match **out, stm_error *err);
/* The applied versions, in order; record i lent. */
size_t stm_migrate_record_count(const migrate_t *self);
const migrate_record *stm_migrate_record_at(const migrate_t *self, size_t i);
/* Drift: why migrate and rollback would refuse, one message each ("DIR/002_x.sql:
 * changed since it was applied (checksum differs)"), in version order; lent. */
size_t stm_migrate_drift_count(const migrate_t *self);
const char *stm_migrate_drift_at(const migrate_t *self, size_t i);
/* The tables of the database's current version that are not synced, each with why
 * (lineage/syncable.h; its stemma_exclude counted), and those of its tables the schema
 * set never had that are not (marked outside), in order of name. Returns how many;
 * *out is the caller's (stm_syncable_tables_free), NULL when there are none. */
size_t stm_migrate_unsynced(const migrate_t *self, syncable_table **out);
/* The tables of the database's version that are synced (lineage/syncable.h, its
 * exclusions counted), and those of its tables the schema set never had that are, by
 * name; *out is the caller's (stm_syncable_names_free). */
size_t stm_migrate_synced(const migrate_t *self, char ***out);
/* The synced tables of the database's version whose keys are chosen per device
 * (lineage/syncable.h), by name; *out is the caller's (stm_syncable_names_free). */
size_t stm_migrate_per_device(const migrate_t *self, char ***out);

/* What stm_migrate_run would do with opts, changing nothing (the file is not even
 * created): the dry run. Makes every check stm_migrate_run makes and refuses as it would.
 * *plan is the caller's to free with stm_migrate_plan_free whatever this returns; on a
 * refusal, plan->checked says whether its first part is filled. */
STM_NODISCARD stm_err stm_migrate_run_plan(migrate_t *self, const migrate_options *opts,
                                           migrate_plan *plan, stm_error *err);

/* Applies the pending migrations up to opts->to, each in its own transaction (see the
 * invariants above), and records opts->exclude in stemma_exclude; then retries every
 * parked operation (apply.h), so those waiting for a table or column the migrations
 * added apply by the same last-writer-wins rule. Refuses with STM_EINPUT on drift, a
 * target beyond the directory, or an untracked database without opts->baseline (or one
 * whose schema is no version's, or several's alike with no baseline_version to choose:
 * stm_migrate_recognise says which); STM_EUSAGE for a target below the current
 * version (or the version a baseline recognises). A
 * failing migration is rolled back and reported as STM_EINPUT "FILE:LINE: SQLite's
 * message (in: statement); ... still at version N". Does nothing when nothing is
 * pending. Each step is told to opts->progress as it happens. *result (NULL: not
 * wanted) is the caller's to free with stm_migrate_result_free whatever this returns. */
STM_NODISCARD stm_err stm_migrate_run(migrate_t *self, const migrate_options *opts,
                                      migrate_result *result, stm_error *err);

/* For a dry run, after stm_migrate_run_plan: runs plan's migrations (each in its own
 * transaction, as the run does) on a private temporary copy of the database, and
 * derives the set's lenses as the run would, so that what the run would meet on this
 * database's data (a UNIQUE index its rows break, a NOT NULL column without a value) is
 * said before the run. Nothing of the database changes. STM_EINPUT as stm_migrate_run
 * reports a failing migration, saying it was found on a copy; STM_OK when nothing is
 * pending. */
STM_NODISCARD stm_err stm_migrate_rehearse(migrate_t *self, const migrate_plan *plan,
                                           stm_error *err);

/* What stm_migrate_rollback would do with opts, changing nothing; *plan as for
 * stm_migrate_run_plan. Includes running the rollbacks in memory. */
STM_NODISCARD stm_err stm_migrate_rollback_plan(migrate_t *self, const migrate_options *opts,
                                                migrate_plan *plan, stm_error *err);

/* Runs the .down.sql files from the current version down to opts->to + 1, each in its
 * own transaction, after a backup. Refuses, before changing anything, on drift, on a
 * missing rollback file (naming it), when a rollback fails in memory or leaves another
 * schema than the migrations make for the version below it (naming the file and the
 * difference), or for a target above the current version (STM_EUSAGE). In each step's
 * transaction, the operations behind the values it drops (a column, a table) are
 * parked, so that the migration that adds them again replays them (sync/dropped.h;
 * result->dropped counts them). Progress and *result as for stm_migrate_run. */
STM_NODISCARD stm_err stm_migrate_rollback(migrate_t *self, const migrate_options *opts,
                                           migrate_result *result, stm_error *err);

/* Reads db_path's schema_version (read-only; the file must exist). *records is the
 * caller's (stm_migrate_records_free), *count its length; an empty list when the database
 * has no schema_version. */
STM_NODISCARD stm_err stm_migrate_history_read(const char *db_path, migrate_record **records,
                                               size_t *count, stm_error *err);
void stm_migrate_records_free(migrate_record **records_p, size_t count);

/* Putting a backup back is backup.h's stm_backup_restore. */

#endif
