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
 * Invariants the migrator keeps:
 *   1. Nothing touches the real database before the whole schema set has been run in
 *      memory (lineage_build): bad SQL is refused first.
 *   2. Each migration, rollback step or adoption is one transaction that also updates
 *      schema_version, stemma_local.version_id and the capture triggers, so the
 *      database is always at exactly one recorded version with triggers matching it.
 *   3. Before the first change the whole database is copied with SQLite's online
 *      backup API to DB.vFROM-YYYYMMDDTHHMMSSZ.bak (unless the caller opts out, the
 *      file is new, or nothing will change).
 *   4. Drift (an applied file changed since, a recorded version the directory lacks,
 *      a gap) makes migrate and rollback refuse before anything is changed.
 *   5. Checks read the database through a read-only connection; the writable one is
 *      opened only when something will change, so status, dry runs and refusals
 *      leave the file byte-for-byte as it was (SQLite may still create the -wal and
 *      -shm files beside a WAL database it reads). */
#ifndef STM_MIGRATE_H
#define STM_MIGRATE_H

#include "base/error.h"
#include "lineage/lineage.h"
#include "lineage/schemaset.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* migrate_options.to for "the newest version of the directory". */
#define MIGRATE_HEAD (-1)
/* A step running longer than this shows an elapsed-time line (when progress is set). */
#define MIGRATE_PROGRESS_AFTER_MS 1000

/* What a run may do and where it reports. A plain value type; start from
 * MIGRATE_OPTIONS_INIT. Pointers are lent for the call. */
typedef struct {
    int to;                     /* target version, or MIGRATE_HEAD (migrate only) */
    bool dry_run;               /* print what would run; change nothing */
    bool backup;                /* copy the database before the first change */
    const char *const *exclude; /* tables to record in stemma_exclude (migrate only) */
    size_t nexclude;            /* entries in exclude */
    FILE *out;                  /* reports: each step, the backup, dry-run plans; NULL: none */
    FILE *progress;             /* elapsed-time line for a long step (a terminal); NULL: none */
    int progress_after_ms;      /* how long a step runs before the line shows */
} migrate_options;

#define MIGRATE_OPTIONS_INIT                                                                       \
    {.to = MIGRATE_HEAD, .backup = true, .progress_after_ms = MIGRATE_PROGRESS_AFTER_MS}

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
 * (migrate_destroy). STM_EINPUT for a bad schema set, a file that is not SQLite or a
 * schema_version table of another layout; drift is not an error here (see below). */
stm_err migrate_open(const char *db_path, const char *schemas_dir, migrate_t **out, stm_error *err);
void migrate_destroy(migrate_t **self_p);

/* The schema set and its lineage, lent: valid until migrate_destroy. */
const schemaset_t *migrate_schemaset(const migrate_t *self);
const lineage_t *migrate_lineage(const migrate_t *self);
/* The database path as given, lent. */
const char *migrate_db_path(const migrate_t *self);
/* False when the database file does not exist (yet). */
bool migrate_db_exists(const migrate_t *self);
/* True when stemma's own tables (store.h) are in the database. */
bool migrate_is_prepared(const migrate_t *self);
/* The highest applied version, 0 when none. */
int migrate_version(const migrate_t *self);
/* The current version's id into *out: the recorded one, else (an older tool's row) the
 * directory's for that number. False, and *out zero, when there is none. */
bool migrate_version_id(const migrate_t *self, stm_id *out);
/* True when schema_version lacks stemma's columns or values and would be adopted. */
bool migrate_needs_adoption(const migrate_t *self);
/* The applied versions, in order; record i lent. */
size_t migrate_record_count(const migrate_t *self);
const migrate_record *migrate_record_at(const migrate_t *self, size_t i);
/* Drift: why migrate and rollback would refuse, one message each ("DIR/002_x.sql:
 * changed since it was applied (checksum differs)"), in version order; lent. */
size_t migrate_drift_count(const migrate_t *self);
const char *migrate_drift_at(const migrate_t *self, size_t i);
/* The path of the backup the last run made, lent, or NULL when it made none. */
const char *migrate_backup_path(const migrate_t *self);

/* Applies the pending migrations up to opts->to, each in its own transaction (see the
 * invariants above), and records opts->exclude in stemma_exclude. Refuses with
 * STM_EINPUT on drift or a target beyond the directory, STM_EUSAGE for a target below
 * the current version. A failing migration is rolled back and reported as STM_EINPUT
 * "FILE:LINE: SQLite's message (in: statement); ... still at version N". With
 * opts->dry_run, writes the plan to opts->out and changes nothing (the file is not
 * even created). Does nothing when nothing is pending. */
stm_err migrate_run(migrate_t *self, const migrate_options *opts, stm_error *err);

/* How many parked operations the last migrate_run replayed: after migrations ran, it
 * retries every parked operation (apply.h), so those waiting for a table or column
 * the migrations added apply by the same last-writer-wins rule. */
uint64_t migrate_replayed(const migrate_t *self);
/* Runs the .down.sql files from the current version down to opts->to + 1, each in its
 * own transaction, after a backup. Refuses, before changing anything, on drift, on a
 * missing rollback file (naming it), when a rollback fails in memory, or for a target
 * above the current version (STM_EUSAGE). opts->dry_run prints the plan. */
stm_err migrate_rollback(migrate_t *self, const migrate_options *opts, stm_error *err);

/* Replaces db_path's content with backup_path's, after checking the backup opens as
 * SQLite and passes PRAGMA integrity_check, and after copying the current database
 * (when it exists) to a backup of its own, whose path goes to *saved_path (the
 * caller's to free; NULL when none was made; saved_path may be NULL). Reports on
 * opts->out; only out is used. */
stm_err migrate_restore(const char *db_path, const char *backup_path, const migrate_options *opts,
                        char **saved_path, stm_error *err);

/* Reads db_path's schema_version (read-only; the file must exist). *records is the
 * caller's (migrate_records_free), *count its length; an empty list when the database
 * has no schema_version. */
stm_err migrate_history_read(const char *db_path, migrate_record **records, size_t *count,
                             stm_error *err);
void migrate_records_free(migrate_record **records_p, size_t count);

#endif
