/* store_layout.c - the layout of stemma's tables (store.h): the schema of format
 * STORE_FORMAT, making it, telling its format, bringing older formats up to date, and
 * reading the counters it keeps. store.c is the connection, the ids and the counts a
 * transaction moves. */
#include "store.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

/* What each operation parked for a constraint waits for (format 5, park.h, invariant
 * 4): one row per wake, a digest of a row or a table (0: anything), so that a batch
 * retries only those the rows it wrote may unblock, found by wake; and by operation,
 * to take them out with it. The origin is its number, as in the oplog: a batch probes
 * this table once per row it writes, at random, so the smaller it is the more of it
 * stays in the cache (a million wakes take 20 MB so, 53 MB with the 32-byte ids). */
#define S_PARKED_WAIT                                                                              \
    "CREATE TABLE IF NOT EXISTS stemma_parked_wait ("                                              \
    "  wake INTEGER NOT NULL,"   /* park_wake: the row or table it waits for */                    \
    "  origin INTEGER NOT NULL," /* the operation: stemma_ids.no of its origin ... */              \
    "  seq INTEGER NOT NULL,"    /* ... and its seq, as in stemma_parked */                        \
    "  PRIMARY KEY (wake, origin, seq)"                                                            \
    ") WITHOUT ROWID;"                                                                             \
    "CREATE INDEX IF NOT EXISTS stemma_parked_wait_op ON stemma_parked_wait (origin, seq);"

/* Format 7: what `stemma stats` and a report tell, kept as the data changes so that
 * they are read in one row, whatever the oplog's size (store.h, "Counters"). The
 * oplog's are moved by this program's writes (stm_store_count, flushed before each
 * commit); those of stemma_parked and stemma_conflicts, written in many places and in
 * bulk, by triggers. stemma_local's columns, as the schema names them and as format 6
 * gains them (ALTER TABLE takes one at a time): */
#define S_LOCAL_COUNTS                                                                             \
    "  ops INTEGER NOT NULL DEFAULT 0,"       /* operations stemma_oplog holds ... */         \
    "  withheld INTEGER NOT NULL DEFAULT 0,"  /* ... of them held only as stand-ins */          \
    "  pruned INTEGER NOT NULL DEFAULT 0,"    /* operations compaction removed, ever */         \
    "  conflicts INTEGER NOT NULL DEFAULT 0," /* stemma_conflicts rows alive */                 \
    "  compact_passes INTEGER NOT NULL DEFAULT 0" /* compaction passes finished */
static const char *const s_local_counts[] = {"ops", "withheld", "pruned", "conflicts",
                                             "compact_passes"};

/* The parked operations by reason (the park's own statements replace a row's reason
 * by an upsert, which fires the update trigger; INSERT OR REPLACE would fire no delete
 * trigger), and the conflicts alive. A reason whose count fell to 0 keeps its row:
 * reasons are few (they name columns and versions, not rows), and a read skips it.
 * Named stemma_count_*: capture's triggers (capture.c) are those on synced tables. */
#define S_COUNTED                                                                                  \
    "CREATE TABLE IF NOT EXISTS stemma_park_counts ("                                              \
    "  reason TEXT PRIMARY KEY,"                                                                   \
    "  n INTEGER NOT NULL"                                                                         \
    ") WITHOUT ROWID;"                                                                             \
    "CREATE INDEX IF NOT EXISTS stemma_park_counts_n ON stemma_park_counts (n);"                   \
    "CREATE TRIGGER IF NOT EXISTS stemma_count_parked_in AFTER INSERT ON stemma_parked BEGIN "     \
    "INSERT INTO stemma_park_counts (reason, n) VALUES (NEW.reason, 1) "                           \
    "ON CONFLICT (reason) DO UPDATE SET n = n + 1; END;"                                           \
    "CREATE TRIGGER IF NOT EXISTS stemma_count_parked_out AFTER DELETE ON stemma_parked BEGIN "    \
    "UPDATE stemma_park_counts SET n = n - 1 WHERE reason = OLD.reason; END;"                      \
    "CREATE TRIGGER IF NOT EXISTS stemma_count_parked_re AFTER UPDATE OF reason ON stemma_parked " \
    "WHEN NEW.reason IS NOT OLD.reason BEGIN "                                                     \
    "UPDATE stemma_park_counts SET n = n - 1 WHERE reason = OLD.reason; "                          \
    "INSERT INTO stemma_park_counts (reason, n) VALUES (NEW.reason, 1) "                           \
    "ON CONFLICT (reason) DO UPDATE SET n = n + 1; END;"                                           \
    "CREATE TRIGGER IF NOT EXISTS stemma_count_conflicts_in AFTER INSERT ON stemma_conflicts "     \
    "WHEN NEW.alive BEGIN UPDATE stemma_local SET conflicts = conflicts + 1 WHERE id = 1; END;"   \
    "CREATE TRIGGER IF NOT EXISTS stemma_count_conflicts_out AFTER DELETE ON stemma_conflicts "    \
    "WHEN OLD.alive BEGIN UPDATE stemma_local SET conflicts = conflicts - 1 WHERE id = 1; END;"   \
    "CREATE TRIGGER IF NOT EXISTS stemma_count_conflicts_re AFTER UPDATE OF alive ON "             \
    "stemma_conflicts WHEN NEW.alive IS NOT OLD.alive BEGIN UPDATE stemma_local SET "              \
    "conflicts = conflicts + (NEW.alive <> 0) - (OLD.alive <> 0) WHERE id = 1; END;"              \
    /* What each peer held when last heard from (horizon.h): compaction prunes only  */          \
    /* what every peer it still counts as known holds a later write of. */                       \
    "CREATE TABLE IF NOT EXISTS stemma_peers ("                                                    \
    "  peer BLOB PRIMARY KEY,"    /* its node id, 32 bytes */                                     \
    "  seen INTEGER NOT NULL,"    /* wall-clock ms when it was last heard from */                 \
    "  vector BLOB NOT NULL"      /* its version vector then (vector.h's encoding) */             \
    ") WITHOUT ROWID;"

/* stemma's own tables (format STORE_FORMAT). Values in pk have no declared type, so
 * SQLite keeps each in the type it came with (null, integer, real, text or blob). */
static const char *const s_schema =
    "CREATE TABLE IF NOT EXISTS stemma_local ("
    "  id INTEGER PRIMARY KEY CHECK (id = 1),"
    "  node_id BLOB NOT NULL,"    /* origin of local operations, 32 bytes */
    "  version_id BLOB NOT NULL," /* schema version id stamped on local operations */
    "  hlc INTEGER NOT NULL,"     /* last hybrid logical clock issued or seen */
    "  seq INTEGER NOT NULL,"     /* last local sequence number issued */
    "  applying INTEGER NOT NULL," /* 1 while stemma applies operations: capture is off */
    "  format INTEGER NOT NULL,"  /* STORE_FORMAT of these tables */
    "  wait_gen INTEGER NOT NULL DEFAULT 0," /* moves with stemma_parked_wait (park_watch.c) */
    S_LOCAL_COUNTS
    ");"
    /* Node and schema version ids, numbered so that every oplog and clock row holds
     * a small integer in place of 32 bytes. */
    "CREATE TABLE IF NOT EXISTS stemma_ids ("
    "  no INTEGER PRIMARY KEY,"
    "  id BLOB NOT NULL UNIQUE"
    ");"
    /* Rows the application changed, queued by the capture triggers until stemma turns
     * them into operations (capture.h). */
    "CREATE TABLE IF NOT EXISTS stemma_pending ("
    "  id INTEGER PRIMARY KEY,"
    "  tbl TEXT NOT NULL,"
    "  pk,"                       /* the key; a key of several columns goes on in pk2,
                                     * pk3, ..., added as synced tables need (capture.c) */
    "  del INTEGER NOT NULL,"     /* 1: the row was deleted (or lost its key) */
    "  mask NOT NULL,"            /* the columns that changed (capture.h): no type, so
                                     * that a text mask stays text */
    "  at INTEGER"                /* wall-clock ms since 1970 when the change was made */
    ");"
    /* Per synced table with an integer key, the greatest key stemma has looked at:
     * an insert above it is not queued, the next collection finds it (capture.h). */
    "CREATE TABLE IF NOT EXISTS stemma_mark ("
    "  id INTEGER PRIMARY KEY,"   /* named in the table's insert trigger */
    "  tbl TEXT NOT NULL UNIQUE,"
    "  mark,"                     /* no type: the key's own */
    "  at INTEGER,"               /* wall-clock ms of the first insert above the mark
                                     * since it last moved; NULL: none (capture.h) */
    "  gate NOT NULL"             /* inserts above it run nothing: the mark once at is
                                     * set, the greatest integer until then */
    ");"
    /* Every operation, local or received, one row per row change: the operations
     * seq .. seq + n - 1 of origin, which share a clock, a schema version, a table and
     * a key (oplog.h has the format of cells). */
    "CREATE TABLE IF NOT EXISTS stemma_oplog ("
    "  origin INTEGER NOT NULL,"  /* stemma_ids.no of the writer */                                \
    "  seq INTEGER NOT NULL,"     /* the first operation's sequence number */
    "  n INTEGER NOT NULL,"       /* how many operations */
    "  hlc INTEGER NOT NULL,"     /* ms << 16 | counter */
    "  version INTEGER NOT NULL," /* stemma_ids.no of the writer's schema version */
    "  tbl TEXT NOT NULL,"        /* table name as the writer knows it */
    "  pk,"                       /* the row's key: its value, or packed (key.h) */
    "  cells BLOB,"               /* the columns written; NULL for a row delete */
    "  pk_packed INTEGER,"        /* 1: pk is a key of several columns, packed; else NULL */
    "  born_hlc INTEGER,"         /* the row's incarnation (identity.h); NULL: none */
    "  born_origin INTEGER,"      /* ... its origin's stemma_ids.no */
    "  derived INTEGER,"          /* 1: written by the migration to version (op.h) */
    "  PRIMARY KEY (origin, seq)"
    ") WITHOUT ROWID;"
    /* The latest write of every cell of a row, its latest delete and its latest write
     * parked for a missing column, kept by apply (apply.h) so that last writer wins
     * costs one lookup per row (rowclock.h has the format of cells). */
    "CREATE TABLE IF NOT EXISTS stemma_clock ("
    "  tbl TEXT NOT NULL,"        /* the local table name */
    "  pk NOT NULL,"              /* as in stemma_oplog; the table says whether packed */
    "  cells BLOB NOT NULL,"
    "  PRIMARY KEY (tbl, pk)"
    ") WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS stemma_vector ("
    "  origin BLOB PRIMARY KEY,"  /* a remote node id (or a former id of this one) */
    "  seq INTEGER NOT NULL"      /* highest sequence held with none missing below it */
    ") WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS stemma_parked ("
    "  origin BLOB NOT NULL,"
    "  seq INTEGER NOT NULL,"
    "  kind TEXT NOT NULL,"       /* 'schema': not in this schema; 'constraint': refused;
                                     * 'ahead': its clock too far ahead (apply.h) */
    "  reason TEXT NOT NULL,"     /* why the operation could not be applied */
    "  PRIMARY KEY (origin, seq)"
    ") WITHOUT ROWID;"
    /* Whether any operation of a kind is parked is asked after every batch applied:
     * without the index, that read every parked operation. */
    "CREATE INDEX IF NOT EXISTS stemma_parked_kind ON stemma_parked (kind);"
    S_PARKED_WAIT
    /* The incarnations of keys chosen per device that are not their key's row: the
     * conflicts (alive) and the deleted ones (identity.h). */
    "CREATE TABLE IF NOT EXISTS stemma_conflicts ("
    "  tbl TEXT NOT NULL,"        /* the local table name */
    "  pk NOT NULL,"              /* the key */
    "  born_hlc INTEGER NOT NULL," /* the incarnation: the clock of the row change that */
    "  born_origin BLOB NOT NULL,"  /* made it, and its origin (32 zero bytes: genesis) */
    "  alive INTEGER NOT NULL,"   /* 1: a row kept aside; 0: deleted, kept for its clocks */
    "  cells BLOB NOT NULL,"      /* its clocks (rowclock.h) */
    "  PRIMARY KEY (tbl, pk, born_hlc, born_origin)"
    ") WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS stemma_exclude ("
    "  tbl TEXT PRIMARY KEY COLLATE NOCASE" /* a table not to sync */
    ");" S_COUNTED;

/* stemma_local.format; 0 when it cannot be read. */
static int s_format(store_t *self)
{
    sqlite3_stmt *stmt = NULL;
    int format = 0;
    if (sqlite3_prepare_v2(stm_store_db(self), "SELECT format FROM stemma_local WHERE id = 1", -1, &stmt,
                           NULL) == SQLITE_OK &&
        sqlite3_step(stmt) == SQLITE_ROW)
        format = sqlite3_column_int(stmt, 0);
    sqlite3_finalize(stmt);
    return format;
}

stm_err stm_store_check_format(store_t *self, stm_error *err)
{
    int format = s_format(self);
    if (format >= STORE_FORMAT_UPGRADABLE && format <= STORE_FORMAT)
        return STM_OK;
    return stm_error_set(err, STM_EINPUT,
                         "%s: stemma's tables here are in format %d, this stemma reads format %d "
                         "(and formats %d to %d, which it brings up to date); restore a copy "
                         "without them (they are all named stemma_*) and sync again from a peer",
                         stm_store_path(self), format, STORE_FORMAT, STORE_FORMAT_UPGRADABLE,
                         STORE_FORMAT - 1);
}

/* Format 4 to 5: the waits of operations parked for a constraint. Those parked before
 * have none recorded, so each waits for anything (retried once a row is written, and
 * parked again with what it waits for). Their origins are numbered already (their
 * operations are in the oplog); any that is not gets a number. */
static const char *const s_upgrade_4 = S_PARKED_WAIT
    "ALTER TABLE stemma_local ADD COLUMN wait_gen INTEGER NOT NULL DEFAULT 0;"
    "INSERT OR IGNORE INTO stemma_ids (id) SELECT DISTINCT origin FROM stemma_parked "
    "WHERE kind = 'constraint';"
    "INSERT OR IGNORE INTO stemma_parked_wait (wake, origin, seq) "
    "SELECT 0, i.no, p.seq FROM stemma_parked AS p JOIN stemma_ids AS i ON i.id = p.origin "
    "WHERE p.kind = 'constraint';"
    "UPDATE stemma_local SET format = 5 WHERE id = 1;";

/* Format 5 to 6: which operations a migration wrote (op.h). None before. */
static const char *const s_upgrade_5 = "ALTER TABLE stemma_oplog ADD COLUMN derived INTEGER;"
                                       "UPDATE stemma_local SET format = 6 WHERE id = 1;";

/* Format 6 to 7: the counters (S_LOCAL_COUNTS, S_COUNTED), counted once here, and
 * stemma_peers. A stand-in's cells begin with a map of one key (0x81), which no row
 * change's do (a column name, a str): format 6 holds withheld ones only. */
static const char *const s_upgrade_6 =
    S_COUNTED
    /* Before compaction no operation was pruned: a gap at or below what the vector (or,
     * for the database's own origin, its sequence) says is held is sequences its origin
     * skipped, and is marked so (oplog.h, stm_oplog_append_skipped), never handed out as
     * pruned. */
    "INSERT OR IGNORE INTO stemma_ids (id) VALUES (zeroblob(32));"
    "CREATE TEMP TABLE stemma_upgrade_gaps AS "
    "WITH held(no, upto) AS ("
    "  SELECT i.no, v.seq FROM stemma_vector AS v JOIN stemma_ids AS i ON i.id = v.origin "
    "  UNION ALL SELECT i.no, l.seq FROM stemma_local AS l JOIN stemma_ids AS i "
    "  ON i.id = l.node_id), "
    "rows AS (SELECT origin, seq, lag(seq + n - 1, 1, 0) OVER (PARTITION BY origin "
    "  ORDER BY seq) AS prev FROM stemma_oplog) "
    "SELECT r.origin AS origin, r.prev + 1 AS seq, r.seq - r.prev - 1 AS n FROM rows AS r "
    "JOIN held AS h ON h.no = r.origin WHERE r.seq > r.prev + 1 AND r.seq - 1 <= h.upto;"
    "INSERT INTO stemma_oplog (origin, seq, n, hlc, version, tbl, pk, cells) "
    "SELECT origin, seq, n, 0, (SELECT no FROM stemma_ids WHERE id = zeroblob(32)), '*', NULL, "
    "x'c1' FROM temp.stemma_upgrade_gaps;"
    "DROP TABLE temp.stemma_upgrade_gaps;"
    "INSERT INTO stemma_park_counts (reason, n) SELECT reason, count(*) FROM stemma_parked "
    "GROUP BY reason;"
    "UPDATE stemma_local SET ops = (SELECT coalesce(sum(n), 0) FROM stemma_oplog), "
    "withheld = (SELECT coalesce(sum(n), 0) FROM stemma_oplog WHERE length(cells) <= 32 AND "
    "substr(cells, 1, 1) = x'81'), "
    "conflicts = (SELECT count(*) FROM stemma_conflicts WHERE alive = 1), format = 7 "
    "WHERE id = 1;";

stm_err stm_store_upgrade(store_t *self, stm_error *err)
{
    int format = s_format(self);
    if (format == STORE_FORMAT)
        return STM_OK;
    if (format < STORE_FORMAT_UPGRADABLE || format > STORE_FORMAT)
        return stm_store_check_format(self, err);
    stm_err rc = format == 4 ? stm_store_exec(self, s_upgrade_4, err) : STM_OK;
    if (rc == STM_OK && format <= 5)
        rc = stm_store_exec(self, s_upgrade_5, err);
    for (size_t i = 0; i < sizeof s_local_counts / sizeof *s_local_counts && rc == STM_OK; i++) {
        char sql[128];
        snprintf(sql, sizeof sql,
                 "ALTER TABLE stemma_local ADD COLUMN %s INTEGER NOT NULL DEFAULT 0",
                 s_local_counts[i]);
        rc = stm_store_exec(self, sql, err);
    }
    if (rc == STM_OK)
        rc = stm_store_exec(self, s_upgrade_6, err);
    return rc;
}

bool stm_store_is_prepared(store_t *self)
{
    sqlite3_stmt *stmt = NULL;
    bool found = false;
    if (sqlite3_prepare_v2(stm_store_db(self),
                           "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = "
                           "'stemma_local'",
                           -1, &stmt, NULL) == SQLITE_OK)
        found = sqlite3_step(stmt) == SQLITE_ROW;
    sqlite3_finalize(stmt);
    return found;
}

stm_err stm_store_prepare(store_t *self, stm_error *err)
{
    if (stm_store_is_prepared(self))
        return stm_store_check_format(self, err);
    stm_err rc = stm_store_exec(self, s_schema, err);
    if (rc != STM_OK)
        return rc;
    stm_id node_id;
    randombytes_buf(node_id.bytes, sizeof node_id.bytes);
    sqlite3_stmt *stmt = NULL;
    if (sqlite3_prepare_v2(stm_store_db(self),
                           "INSERT INTO stemma_local (id, node_id, version_id, hlc, seq, applying,"
                           " format) VALUES (1, ?1, zeroblob(32), 0, 0, 0, ?2)",
                           -1, &stmt, NULL) != SQLITE_OK) {
        return stm_error_set(err, STM_EDB, "%s: %s", stm_store_path(self), sqlite3_errmsg(stm_store_db(self)));
    }
    sqlite3_bind_blob(stmt, 1, node_id.bytes, STM_ID_BYTES, SQLITE_STATIC);
    sqlite3_bind_int(stmt, 2, STORE_FORMAT);
    if (sqlite3_step(stmt) != SQLITE_DONE)
        rc = stm_error_set(err, STM_EDB, "%s: %s", stm_store_path(self), sqlite3_errmsg(stm_store_db(self)));
    sqlite3_finalize(stmt);
    return rc;
}

/* The counters of a format before 7 (read as it is, by a dry run or a status), counted
 * as format 6 holds them: stand-ins begin with a map of one key (s_upgrade_6). */
static const char *const s_counts_scanned =
    "SELECT coalesce(sum(n), 0), coalesce(sum(CASE WHEN length(cells) <= 32 AND "
    "substr(cells, 1, 1) = x'81' THEN n END), 0), 0, (SELECT count(*) FROM stemma_conflicts "
    "WHERE alive = 1), 0, (SELECT count(*) FROM stemma_parked) FROM stemma_oplog";

stm_err stm_store_counts(store_t *self, store_counts *out, stm_error *err)
{
    memset(out, 0, sizeof *out);
    sqlite3_stmt *stmt = NULL;
    if (sqlite3_prepare_v2(stm_store_db(self),
                           s_format(self) < 7
                               ? s_counts_scanned
                               : "SELECT ops, withheld, pruned, conflicts, compact_passes, "
                                 "(SELECT coalesce(sum(n), 0) FROM stemma_park_counts) FROM "
                                 "stemma_local WHERE id = 1",
                           -1, &stmt, NULL) != SQLITE_OK)
        return stm_store_error(self, err, "reading the counters");
    int step = sqlite3_step(stmt);
    if (step == SQLITE_ROW) {
        out->operations = (uint64_t)sqlite3_column_int64(stmt, 0);
        out->withheld = (uint64_t)sqlite3_column_int64(stmt, 1);
        out->pruned = (uint64_t)sqlite3_column_int64(stmt, 2);
        out->conflicts = (uint64_t)sqlite3_column_int64(stmt, 3);
        out->compact_passes = (uint64_t)sqlite3_column_int64(stmt, 4);
        out->parked = (uint64_t)sqlite3_column_int64(stmt, 5);
    }
    sqlite3_finalize(stmt);
    return step == SQLITE_ROW ? STM_OK : stm_store_error(self, err, "reading the counters");
}
