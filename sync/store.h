/* store.h - a device's SQLite database as stemma keeps it.
 *
 * The application's tables and stemma's own live in one file, so that a change and
 * the operations that record it commit together. stemma's tables are all named
 * stemma_* (plus the migrator's schema_version); none of them is ever synced:
 *
 *   stemma_local    one row: this database's node id, its schema version id, the
 *                   hybrid logical clock, the last local sequence number, the
 *                   `applying` flag that keeps capture from recording applied ops,
 *                   the format, and wait_gen (park_watch.c)
 *   stemma_ids      node and schema version ids, numbered (the oplog and the clock
 *                   hold the numbers)
 *   stemma_pending  rows the application changed, with the wall time of each change,
 *                   queued by the capture triggers until stemma turns them into
 *                   operations (capture.h)
 *   stemma_mark     per synced table with an integer key, the greatest key looked at
 *                   and the time of the first insert above it: inserts above it are
 *                   found by the next collection, not queued
 *   stemma_oplog    every operation, local or received, a row change a row (oplog.h)
 *   stemma_clock    per row, the latest write of every cell, its latest delete and
 *                   latest write parked for a missing column (apply.h, txn.h)
 *   stemma_vector   per remote origin, the highest sequence held without a gap
 *   stemma_parked   operations held back, with the kind of reason and the reason
 *   stemma_parked_wait  what each one parked for a constraint waits for (park.h)
 *   stemma_exclude  tables the application does not want synced
 *
 * Opening a store changes nothing in the file; stm_store_prepare creates stemma's tables
 * (inside the caller's transaction), so a dry run leaves the file as it was. */
#ifndef STM_STORE_H
#define STM_STORE_H

#include "base/error.h"
#include "base/id.h"

#include <sqlite3.h>
#include <stdbool.h>

/* How long a connection waits for another writer (the application) to let go of the
 * database before SQLite reports it busy. */
#define STORE_BUSY_TIMEOUT_MS 10000

/* The layout of stemma's tables. A database whose tables are in another format is
 * refused with a message saying what to do, never read wrongly. Format 3: the capture
 * queue and the marks record when the application wrote (capture.h). Format 4: keys
 * of several columns (key.h): stemma_oplog.pk_packed, and stemma_pending's pk2, pk3,
 * ... added as synced tables need them; incarnations (identity.h): stemma_oplog's
 * born_hlc and born_origin, and stemma_conflicts. Format 5: stemma_parked_wait, what
 * each operation parked for a constraint waits for (park.h, invariant 4), and
 * stemma_local.wait_gen, moved by every transaction that changes it (so that a
 * program holding a filter of it knows to read it again, park_watch.c).
 *
 * Format 5 is numbered, not only added, because a stemma of format 4 would park
 * operations without their waits, and this one would then retry them only after a
 * migration; it refuses format 5 instead. A database in format 4 is read as it is and
 * brought to format 5 by its first write transaction (stm_store_upgrade, which every
 * transaction of txn.h runs when the schema changed): nothing to do by hand.
 *
 * Format 6 adds stemma_oplog.derived: which operations a migration wrote
 * (migrate_ops.h); a stemma of format 5 would send them as the application's.
 * Formats 4 and 5 are brought to 6 the same way.
 *
 * Format 7 keeps counters (below, "Counters") in stemma_local and stemma_park_counts,
 * and what peers held in stemma_peers (horizon.h), for compaction (compact.h), which
 * leaves the oplog with gaps below the vector: operations pruned, which a peer that
 * lacks them is sent stand-ins for (oplog.h). A stemma of format 6 would read those
 * gaps as operations it lacks, and count without the counters; formats 4 to 6 are
 * brought to 7 in place, their counters counted once. */
#define STORE_FORMAT 7
/* The oldest format this stemma upgrades in place (each format up to STORE_FORMAT). */
#define STORE_FORMAT_UPGRADABLE 4

typedef struct store store_t;

typedef enum {
    STORE_OPEN_EXISTING = 0, /* the file must exist */
    STORE_OPEN_CREATE = 1,   /* create the file when it does not exist */
    STORE_OPEN_READONLY = 2, /* never write (status, history, dry runs) */
} store_open_mode;

/* Opens path. Sets WAL mode and synchronous=NORMAL (unless read-only) and the busy
 * timeout. *out is the caller's (stm_store_destroy). STM_EINPUT when the file is missing
 * (without STORE_OPEN_CREATE) or is not a SQLite database; STM_EDB otherwise. */
STM_NODISCARD stm_err stm_store_open(const char *path, store_open_mode mode, store_t **out,
                                     stm_error *err);
void stm_store_destroy(store_t **self_p);

/* The connection, lent: valid until stm_store_destroy. */
sqlite3 *stm_store_db(store_t *self);
/* The path as given, lent. */
const char *stm_store_path(const store_t *self);

/* True when stemma's tables exist in this database. */
bool stm_store_is_prepared(store_t *self);
/* Creates stemma's tables when they are missing, giving the database a new random
 * node id; when they exist, checks their format (stm_store_check_format). Runs in the
 * caller's transaction. */
STM_NODISCARD stm_err stm_store_prepare(store_t *self, stm_error *err);

/* STM_EINPUT, saying what to do, when stemma's tables are in another format than
 * STORE_FORMAT_UPGRADABLE .. STORE_FORMAT (made by an older stemma, or a newer). */
STM_NODISCARD stm_err stm_store_check_format(store_t *self, stm_error *err);
/* Brings tables in a format from STORE_FORMAT_UPGRADABLE on to STORE_FORMAT, in the caller's write
 * transaction; nothing when they are in STORE_FORMAT; stm_store_check_format's error
 * for any other. */
STM_NODISCARD stm_err stm_store_upgrade(store_t *self, stm_error *err);
/* This database's node id (the origin of its local operations). */
STM_NODISCARD stm_err stm_store_node_id(store_t *self, stm_id *out, stm_error *err);
/* Gives the database another node id (the node's public key, when a node is set up).
 * Operations already captured keep the old origin, which joins the version vector. */
STM_NODISCARD stm_err stm_store_set_node_id(store_t *self, const stm_id *id, stm_error *err);
/* The schema version id local operations are stamped with (zero before any). */
STM_NODISCARD stm_err stm_store_version_id(store_t *self, stm_id *out, stm_error *err);
STM_NODISCARD stm_err stm_store_set_version_id(store_t *self, const stm_id *id, stm_error *err);

/* The number stemma_ids gives id. When id has none yet: with add, numbers it (in
 * the caller's transaction); without, sets *no to 0. Numbers are remembered; a caller
 * that rolls back a transaction which may have numbered ids must call
 * stm_store_forget_ids, since the numbers it was given are gone. */
STM_NODISCARD stm_err stm_store_id_number(store_t *self, const stm_id *id, bool add, int64_t *no,
                                          stm_error *err);
/* The id numbered no. STM_ECORRUPT when there is none. */
STM_NODISCARD stm_err stm_store_id_of(store_t *self, int64_t no, stm_id *out, stm_error *err);
void stm_store_forget_ids(store_t *self);

/* Whether a replay of parked operations is owed: a migration step committed and the
 * replay after it did not finish (killed, disk full). The mark is a row of
 * stemma_replay, a table made when first needed (older stemmas ignore it: what they
 * read is unchanged), holding the pid of the process that wrote it: while that process
 * still runs (a migrate between its steps and its replay) the replay is its own, and
 * not owed to anyone else. set writes or clears it in the caller's transaction. */
bool stm_store_replay_owed(store_t *self);
STM_NODISCARD stm_err stm_store_set_replay_owed(store_t *self, bool owed, stm_error *err);

/* ---- Counters ----
 *
 * What `stemma stats` and the node's report tell of the store is read in one row
 * (stm_store_counts), whatever its size: the counters move as the data changes. Those
 * of stemma_parked and stemma_conflicts by triggers in the file; those of the oplog by
 * the writers of this program, which tell the store (stm_store_count) and write what
 * they counted before their transaction commits (stm_store_flush_counts, or
 * stm_store_commit); a rollback forgets it. A commit with counts not written is a
 * programming bug (asserted). */

typedef struct {
    uint64_t operations;     /* in stemma_oplog: held, not pruned (stand-ins' included) */
    uint64_t withheld;       /* ... of them held only as withheld stand-ins (op.h) */
    uint64_t pruned;         /* operations compaction has removed, ever (compact.h) */
    uint64_t parked;         /* rows of stemma_parked */
    uint64_t conflicts;      /* rows of stemma_conflicts alive */
    uint64_t compact_passes; /* compaction passes finished, ever */
} store_counts;

/* Counts, in the open transaction, ops more operations in the oplog (negative: fewer),
 * withheld more of them stand-ins, pruned more pruned. */
void stm_store_count(store_t *self, int64_t ops, int64_t withheld, int64_t pruned);
/* Writes what the open transaction counted into stemma_local (in it). */
STM_NODISCARD stm_err stm_store_flush_counts(store_t *self, stm_error *err);
/* stm_store_flush_counts, then COMMIT. */
STM_NODISCARD stm_err stm_store_commit(store_t *self, stm_error *err);
/* The counters, as committed (format 7). */
STM_NODISCARD stm_err stm_store_counts(store_t *self, store_counts *out, stm_error *err);

/* stm_error_db for this store's connection and path: "PATH: WHAT: <SQLite's
 * message>", STM_EDB. For the sync modules' failed SQLite calls on the store. */
STM_NODISCARD stm_err stm_store_error(store_t *self, stm_error *err, const char *what);

/* Runs sql (no parameters, no rows wanted) and fills err with SQLite's message on
 * failure. A helper for the sync modules. "COMMIT" is stm_store_commit: what the
 * transaction counted is written first. */
STM_NODISCARD stm_err stm_store_exec(store_t *self, const char *sql, stm_error *err);

#endif
