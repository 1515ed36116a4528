#include "store.h"
#include "base/idmap.h"
#include "base/mem.h"

#include <errno.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The most ids remembered: 65,536 take about 6 MB with their two indexes. */
#define STORE_IDS_CACHED 65536

/* An id numbered in stemma_ids, remembered. */
typedef struct {
    stm_id id;
    int64_t no;
} s_known_id;

struct store {
    sqlite3 *db;         /* the connection; owned */
    char *path;          /* as given */
    s_known_id *ids;     /* ids numbered so far, in the order met */
    size_t nids, ids_cap;
    idmap_t by_id, by_no; /* positions in ids, by id and by number */
    sqlite3_stmt *id_get, *id_put, *id_of; /* prepared on first use */
};

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
    "  wait_gen INTEGER NOT NULL DEFAULT 0" /* moves with stemma_parked_wait (park.c) */
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
    ");";

stm_err stm_store_open(const char *path, store_open_mode mode, store_t **out, stm_error *err)
{
    struct stat st;
    if (mode != STORE_OPEN_CREATE && stat(path, &st) != 0)
        return stm_error_set(err, STM_EINPUT, "%s: no such database file", path);
    int flags = mode == STORE_OPEN_READONLY ? SQLITE_OPEN_READONLY
                                            : SQLITE_OPEN_READWRITE |
                                                  (mode == STORE_OPEN_CREATE ? SQLITE_OPEN_CREATE
                                                                             : 0);
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(path, &db, flags | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
        stm_err rc = stm_error_set(err, STM_EDB, "%s: cannot open: %s", path,
                                   db ? sqlite3_errmsg(db) : "out of memory");
        sqlite3_close(db);
        return rc;
    }
    sqlite3_busy_timeout(db, STORE_BUSY_TIMEOUT_MS);
    sqlite3_extended_result_codes(db, 1);
    /* Reading the schema tells a SQLite file from anything else. */
    if (sqlite3_exec(db, "SELECT count(*) FROM sqlite_schema", NULL, NULL, NULL) != SQLITE_OK) {
        stm_err rc = stm_error_set(err, STM_EINPUT, "%s: not a usable SQLite database: %s", path,
                                   sqlite3_errmsg(db));
        sqlite3_close(db);
        return rc;
    }
    if (mode != STORE_OPEN_READONLY &&
        (sqlite3_exec(db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL) != SQLITE_OK ||
         sqlite3_exec(db, "PRAGMA synchronous=NORMAL", NULL, NULL, NULL) != SQLITE_OK ||
         /* The oplog and its index outgrow SQLite's default 2 MiB cache quickly. */
         sqlite3_exec(db, "PRAGMA cache_size=-32768", NULL, NULL, NULL) != SQLITE_OK)) {
        stm_err rc = stm_error_set(err, STM_EDB, "%s: cannot set WAL mode: %s", path,
                                   sqlite3_errmsg(db));
        sqlite3_close(db);
        return rc;
    }
    store_t *self = stm_calloc(1, sizeof *self);
    self->db = db;
    self->path = stm_strdup(path);
    *out = self;
    return STM_OK;
}

void stm_store_destroy(store_t **self_p)
{
    store_t *self = *self_p;
    if (!self)
        return;
    sqlite3_finalize(self->id_get);
    sqlite3_finalize(self->id_put);
    sqlite3_finalize(self->id_of);
    sqlite3_close(self->db);
    free(self->path);
    free(self->ids);
    stm_idmap_free(&self->by_id);
    stm_idmap_free(&self->by_no);
    free(self);
    *self_p = NULL;
}

sqlite3 *stm_store_db(store_t *self)
{
    return self->db;
}

const char *stm_store_path(const store_t *self)
{
    return self->path;
}

stm_err stm_store_error(store_t *self, stm_error *err, const char *what)
{
    return stm_error_db(err, self->db, self->path, "%s", what);
}

stm_err stm_store_exec(store_t *self, const char *sql, stm_error *err)
{
    char *msg = NULL;
    if (sqlite3_exec(self->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        stm_err rc = stm_error_set(err, STM_EDB, "%s: %s", self->path,
                                   msg ? msg : sqlite3_errmsg(self->db));
        sqlite3_free(msg);
        return rc;
    }
    return STM_OK;
}

/* stemma_local.format; 0 when it cannot be read. */
static int s_format(store_t *self)
{
    sqlite3_stmt *stmt = NULL;
    int format = 0;
    if (sqlite3_prepare_v2(self->db, "SELECT format FROM stemma_local WHERE id = 1", -1, &stmt,
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
                         self->path, format, STORE_FORMAT, STORE_FORMAT_UPGRADABLE,
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

stm_err stm_store_upgrade(store_t *self, stm_error *err)
{
    int format = s_format(self);
    if (format == STORE_FORMAT)
        return STM_OK;
    if (format < STORE_FORMAT_UPGRADABLE || format > STORE_FORMAT)
        return stm_store_check_format(self, err);
    stm_err rc = format == 4 ? stm_store_exec(self, s_upgrade_4, err) : STM_OK;
    if (rc == STM_OK)
        rc = stm_store_exec(self, s_upgrade_5, err);
    return rc;
}

bool stm_store_is_prepared(store_t *self)
{
    sqlite3_stmt *stmt = NULL;
    bool found = false;
    if (sqlite3_prepare_v2(self->db,
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
    if (sqlite3_prepare_v2(self->db,
                           "INSERT INTO stemma_local (id, node_id, version_id, hlc, seq, applying,"
                           " format) VALUES (1, ?1, zeroblob(32), 0, 0, 0, ?2)",
                           -1, &stmt, NULL) != SQLITE_OK) {
        return stm_error_set(err, STM_EDB, "%s: %s", self->path, sqlite3_errmsg(self->db));
    }
    sqlite3_bind_blob(stmt, 1, node_id.bytes, STM_ID_BYTES, SQLITE_STATIC);
    sqlite3_bind_int(stmt, 2, STORE_FORMAT);
    if (sqlite3_step(stmt) != SQLITE_DONE)
        rc = stm_error_set(err, STM_EDB, "%s: %s", self->path, sqlite3_errmsg(self->db));
    sqlite3_finalize(stmt);
    return rc;
}

/* Reads one 32-byte blob column of stemma_local. */
static stm_err s_read_id(store_t *self, const char *column, stm_id *out, stm_error *err)
{
    char sql[96];
    snprintf(sql, sizeof sql, "SELECT %s FROM stemma_local WHERE id = 1", column);
    sqlite3_stmt *stmt = NULL;
    stm_err rc = STM_OK;
    if (sqlite3_prepare_v2(self->db, sql, -1, &stmt, NULL) != SQLITE_OK)
        return stm_error_set(err, STM_EDB, "%s: %s (is this database set up for stemma?)",
                             self->path, sqlite3_errmsg(self->db));
    if (sqlite3_step(stmt) != SQLITE_ROW || sqlite3_column_bytes(stmt, 0) != STM_ID_BYTES)
        rc = stm_error_set(err, STM_ECORRUPT, "%s: stemma_local.%s is missing or damaged",
                           self->path, column);
    else
        memcpy(out->bytes, sqlite3_column_blob(stmt, 0), STM_ID_BYTES);
    sqlite3_finalize(stmt);
    return rc;
}

static stm_err s_write_id(store_t *self, const char *column, const stm_id *id, stm_error *err)
{
    char sql[96];
    snprintf(sql, sizeof sql, "UPDATE stemma_local SET %s = ?1 WHERE id = 1", column);
    sqlite3_stmt *stmt = NULL;
    stm_err rc = STM_OK;
    if (sqlite3_prepare_v2(self->db, sql, -1, &stmt, NULL) != SQLITE_OK)
        return stm_error_set(err, STM_EDB, "%s: %s", self->path, sqlite3_errmsg(self->db));
    sqlite3_bind_blob(stmt, 1, id->bytes, STM_ID_BYTES, SQLITE_STATIC);
    if (sqlite3_step(stmt) != SQLITE_DONE)
        rc = stm_error_set(err, STM_EDB, "%s: %s", self->path, sqlite3_errmsg(self->db));
    sqlite3_finalize(stmt);
    return rc;
}

stm_err stm_store_node_id(store_t *self, stm_id *out, stm_error *err)
{
    return s_read_id(self, "node_id", out, err);
}

stm_err stm_store_set_node_id(store_t *self, const stm_id *id, stm_error *err)
{
    /* The old id's operations stay in the oplog under the old origin: record how many
     * there are in the vector, where remote origins are kept, before switching. */
    stm_err rc = stm_store_exec(self,
                                "INSERT INTO stemma_vector (origin, seq) SELECT node_id, seq FROM "
                                "stemma_local WHERE id = 1 AND seq > 0 "
                                "ON CONFLICT (origin) DO UPDATE SET seq = max(seq, excluded.seq)",
                                err);
    if (rc == STM_OK)
        rc = s_write_id(self, "node_id", id, err);
    /* Sequences go on from what this database already holds of the new id (a node
     * id used here before, or its operations received back from peers). */
    if (rc == STM_OK)
        rc = stm_store_exec(self,
                            "UPDATE stemma_local SET seq = coalesce((SELECT v.seq FROM "
                            "stemma_vector AS v WHERE v.origin = stemma_local.node_id), 0) "
                            "WHERE id = 1;"
                            "DELETE FROM stemma_vector WHERE origin = (SELECT node_id FROM "
                            "stemma_local WHERE id = 1);",
                            err);
    return rc;
}

stm_err stm_store_version_id(store_t *self, stm_id *out, stm_error *err)
{
    return s_read_id(self, "version_id", out, err);
}

stm_err stm_store_set_version_id(store_t *self, const stm_id *id, stm_error *err)
{
    return s_write_id(self, "version_id", id, err);
}

/* ---- numbered ids ---- */

static sqlite3_stmt *s_ids_stmt(store_t *self, sqlite3_stmt **slot, const char *sql)
{
    if (!*slot &&
        sqlite3_prepare_v3(self->db, sql, -1, SQLITE_PREPARE_PERSISTENT, slot, NULL) != SQLITE_OK)
        return NULL;
    sqlite3_reset(*slot);
    return *slot;
}

static void s_remember(store_t *self, const stm_id *id, int64_t no)
{
    /* Every device that ever wrote is an origin: past STORE_IDS_CACHED the cache starts
     * again rather than grow with them (a lookup it lacks is one query). */
    if (self->nids >= STORE_IDS_CACHED)
        stm_store_forget_ids(self);
    self->ids = stm_grow(self->ids, &self->ids_cap, self->nids + 1, sizeof *self->ids);
    self->ids[self->nids].id = *id;
    self->ids[self->nids].no = no;
    stm_idmap_put(&self->by_id, stm_idmap_hash_id(id), (uint32_t)self->nids);
    stm_idmap_put(&self->by_no, stm_idmap_hash_int(no), (uint32_t)self->nids);
    self->nids++;
}

typedef struct {
    const store_t *self;
    const stm_id *id;
    int64_t no;
} s_looked_for;

static bool s_is_id(const void *ctx, uint32_t pos)
{
    const s_looked_for *l = ctx;
    return stm_id_equal(&l->self->ids[pos].id, l->id);
}

static bool s_is_no(const void *ctx, uint32_t pos)
{
    const s_looked_for *l = ctx;
    return l->self->ids[pos].no == l->no;
}

stm_err stm_store_id_number(store_t *self, const stm_id *id, bool add, int64_t *no, stm_error *err)
{
    /* Every device that ever wrote is an origin: looked up by hash, not by a scan,
     * which made a batch from many origins quadratic in them. */
    s_looked_for want = {self, id, 0};
    int64_t at = stm_idmap_find(&self->by_id, stm_idmap_hash_id(id), s_is_id, &want);
    if (at >= 0) {
        *no = self->ids[at].no;
        return STM_OK;
    }
    sqlite3_stmt *get = s_ids_stmt(self, &self->id_get, "SELECT no FROM stemma_ids WHERE id = ?1");
    if (!get)
        return stm_store_error(self, err, "numbering ids");
    sqlite3_bind_blob(get, 1, id->bytes, STM_ID_BYTES, SQLITE_STATIC);
    int step = sqlite3_step(get);
    if (step == SQLITE_ROW) {
        *no = sqlite3_column_int64(get, 0);
        sqlite3_reset(get);
        s_remember(self, id, *no);
        return STM_OK;
    }
    sqlite3_reset(get);
    if (step != SQLITE_DONE)
        return stm_store_error(self, err, "numbering ids");
    if (!add) {
        *no = 0;
        return STM_OK;
    }
    sqlite3_stmt *put = s_ids_stmt(self, &self->id_put, "INSERT INTO stemma_ids (id) VALUES (?1)");
    if (!put)
        return stm_store_error(self, err, "numbering ids");
    sqlite3_bind_blob(put, 1, id->bytes, STM_ID_BYTES, SQLITE_STATIC);
    step = sqlite3_step(put);
    sqlite3_reset(put);
    if (step != SQLITE_DONE)
        return stm_store_error(self, err, "numbering ids");
    *no = sqlite3_last_insert_rowid(self->db);
    s_remember(self, id, *no);
    return STM_OK;
}

stm_err stm_store_id_of(store_t *self, int64_t no, stm_id *out, stm_error *err)
{
    s_looked_for want = {self, NULL, no};
    int64_t at = stm_idmap_find(&self->by_no, stm_idmap_hash_int(no), s_is_no, &want);
    if (at >= 0) {
        *out = self->ids[at].id;
        return STM_OK;
    }
    sqlite3_stmt *get = s_ids_stmt(self, &self->id_of, "SELECT id FROM stemma_ids WHERE no = ?1");
    if (!get)
        return stm_store_error(self, err, "numbering ids");
    sqlite3_bind_int64(get, 1, no);
    int step = sqlite3_step(get);
    stm_err rc = STM_OK;
    if (step == SQLITE_ROW && sqlite3_column_bytes(get, 0) == STM_ID_BYTES) {
        memcpy(out->bytes, sqlite3_column_blob(get, 0), STM_ID_BYTES);
        s_remember(self, out, no);
    } else if (step == SQLITE_ROW || step == SQLITE_DONE) {
        rc = stm_error_set(err, STM_ECORRUPT, "%s: stemma_ids has no id numbered %lld",
                           self->path, (long long)no);
    } else {
        rc = stm_store_error(self, err, "numbering ids");
    }
    sqlite3_reset(get);
    return rc;
}

void stm_store_forget_ids(store_t *self)
{
    self->nids = 0;
    stm_idmap_clear(&self->by_id);
    stm_idmap_clear(&self->by_no);
}

bool stm_store_replay_owed(store_t *self)
{
    sqlite3_stmt *stmt = NULL;
    bool owed = false;
    /* No table (never owed, or made by an older stemma): not owed. */
    if (sqlite3_prepare_v2(self->db, "SELECT pid FROM stemma_replay", -1, &stmt, NULL) ==
            SQLITE_OK &&
        sqlite3_step(stmt) == SQLITE_ROW) {
        pid_t pid = (pid_t)sqlite3_column_int64(stmt, 0);
        /* The migrate that wrote it still runs (between its steps and its replay): the
         * replay is its own to finish. */
        bool running = pid > 0 && pid != getpid() && (kill(pid, 0) == 0 || errno == EPERM);
        owed = !running;
    }
    sqlite3_finalize(stmt);
    return owed;
}

stm_err stm_store_set_replay_owed(store_t *self, bool owed, stm_error *err)
{
    if (!owed) {
        sqlite3_stmt *stmt = NULL;
        bool exists = false;
        if (sqlite3_prepare_v2(self->db,
                               "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = "
                               "'stemma_replay'",
                               -1, &stmt, NULL) == SQLITE_OK)
            exists = sqlite3_step(stmt) == SQLITE_ROW;
        sqlite3_finalize(stmt);
        return exists ? stm_store_exec(self, "DELETE FROM stemma_replay", err) : STM_OK;
    }
    char sql[200];
    snprintf(sql, sizeof sql,
             "CREATE TABLE IF NOT EXISTS stemma_replay (id INTEGER PRIMARY KEY CHECK (id = 1), "
             "pid INTEGER NOT NULL);"
             "INSERT OR REPLACE INTO stemma_replay (id, pid) VALUES (1, %lld);",
             (long long)getpid());
    return stm_store_exec(self, sql, err);
}
