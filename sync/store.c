#include "store.h"
#include "lineage/mem.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct store {
    sqlite3 *db; /* the connection; owned */
    char *path;  /* as given */
};

/* stemma's own tables. Values in pk and val have no declared type, so SQLite keeps
 * each in the type it came with (null, integer, real, text or blob). */
static const char *const s_schema =
    "CREATE TABLE IF NOT EXISTS stemma_local ("
    "  id INTEGER PRIMARY KEY CHECK (id = 1),"
    "  node_id BLOB NOT NULL,"    /* origin of local operations, 32 bytes */
    "  version_id BLOB NOT NULL," /* schema version id stamped on local operations */
    "  hlc INTEGER NOT NULL,"     /* last hybrid logical clock issued or seen */
    "  seq INTEGER NOT NULL,"     /* last local sequence number issued */
    "  applying INTEGER NOT NULL" /* 1 while stemma applies operations: capture is off */
    ");"
    "CREATE TABLE IF NOT EXISTS stemma_oplog ("
    "  origin BLOB NOT NULL,"     /* node id of the writer, 32 bytes */
    "  seq INTEGER NOT NULL,"     /* per origin: 1, 2, 3, ... */
    "  hlc INTEGER NOT NULL,"     /* ms << 16 | counter */
    "  version_id BLOB NOT NULL," /* the writer's schema version id */
    "  tbl TEXT NOT NULL,"        /* table name as the writer knows it */
    "  pk,"                       /* primary-key value */
    "  col TEXT,"                 /* column name; NULL for a row delete */
    "  aff TEXT,"                 /* the column's affinity at the writer (T N I R B) */
    "  val,"                      /* the new value */
    /* 0: applied; 1: parked, not in this schema; 2: parked, a constraint refused it */
    "  parked INTEGER NOT NULL DEFAULT 0,"
    "  PRIMARY KEY (origin, seq)"
    ") WITHOUT ROWID;"
    /* The latest write of every cell, kept by apply (apply.h) so that last writer wins
     * is one lookup. col is a column name, or 0 for the row's latest delete, or 1 for
     * its latest write of any column. The oplog row of the write is (origin, seq). */
    "CREATE TABLE IF NOT EXISTS stemma_clock ("
    "  tbl TEXT NOT NULL,"
    "  pk NOT NULL,"
    "  col NOT NULL,"
    "  hlc INTEGER NOT NULL,"
    "  origin BLOB NOT NULL,"
    "  seq INTEGER NOT NULL,"
    "  PRIMARY KEY (tbl, pk, col)"
    ") WITHOUT ROWID;"
    /* Local operations reach stemma_clock after the fact (capture only appends to the
     * oplog, to keep the application's writes fast): per origin captured here, the
     * sequence up to which they have. */
    "CREATE TABLE IF NOT EXISTS stemma_clocked ("
    "  origin BLOB PRIMARY KEY,"
    "  seq INTEGER NOT NULL"
    ") WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS stemma_vector ("
    "  origin BLOB PRIMARY KEY,"  /* a remote node id (or a former id of this one) */
    "  seq INTEGER NOT NULL"      /* highest sequence held with none missing below it */
    ") WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS stemma_parked ("
    "  origin BLOB NOT NULL,"
    "  seq INTEGER NOT NULL,"
    "  kind TEXT NOT NULL,"       /* 'schema': not in this schema; 'constraint': refused */
    "  reason TEXT NOT NULL,"     /* why the operation could not be applied */
    "  PRIMARY KEY (origin, seq)"
    ") WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS stemma_exclude ("
    "  tbl TEXT PRIMARY KEY COLLATE NOCASE" /* a table not to sync */
    ");";

stm_err store_open(const char *path, store_open_mode mode, store_t **out, stm_error *err)
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

void store_destroy(store_t **self_p)
{
    store_t *self = *self_p;
    if (!self)
        return;
    sqlite3_close(self->db);
    free(self->path);
    free(self);
    *self_p = NULL;
}

sqlite3 *store_db(store_t *self)
{
    return self->db;
}

const char *store_path(const store_t *self)
{
    return self->path;
}

stm_err store_exec(store_t *self, const char *sql, stm_error *err)
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

bool store_is_prepared(store_t *self)
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

stm_err store_prepare(store_t *self, stm_error *err)
{
    if (store_is_prepared(self))
        return STM_OK;
    stm_err rc = store_exec(self, s_schema, err);
    if (rc != STM_OK)
        return rc;
    stm_id node_id;
    randombytes_buf(node_id.bytes, sizeof node_id.bytes);
    sqlite3_stmt *stmt = NULL;
    if (sqlite3_prepare_v2(self->db,
                           "INSERT INTO stemma_local (id, node_id, version_id, hlc, seq, applying)"
                           " VALUES (1, ?1, zeroblob(32), 0, 0, 0)",
                           -1, &stmt, NULL) != SQLITE_OK) {
        return stm_error_set(err, STM_EDB, "%s: %s", self->path, sqlite3_errmsg(self->db));
    }
    sqlite3_bind_blob(stmt, 1, node_id.bytes, STM_ID_BYTES, SQLITE_STATIC);
    if (sqlite3_step(stmt) != SQLITE_DONE)
        rc = stm_error_set(err, STM_EDB, "%s: %s", self->path, sqlite3_errmsg(self->db));
    sqlite3_finalize(stmt);
    if (rc == STM_OK)
        rc = store_exec(self,
                        "INSERT INTO stemma_clocked (origin, seq) SELECT node_id, 0 FROM "
                        "stemma_local WHERE id = 1",
                        err);
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

stm_err store_node_id(store_t *self, stm_id *out, stm_error *err)
{
    return s_read_id(self, "node_id", out, err);
}

stm_err store_set_node_id(store_t *self, const stm_id *id, stm_error *err)
{
    /* The old id's operations stay in the oplog under the old origin: record how many
     * there are in the vector, where remote origins are kept, before switching. */
    stm_err rc = store_exec(self,
                            "INSERT INTO stemma_vector (origin, seq) SELECT node_id, seq FROM "
                            "stemma_local WHERE id = 1 AND seq > 0 "
                            "ON CONFLICT (origin) DO UPDATE SET seq = max(seq, excluded.seq)",
                            err);
    if (rc == STM_OK)
        rc = s_write_id(self, "node_id", id, err);
    /* Sequences go on from what this database already holds of the new id (a node
     * id used here before, or its operations received back from peers). */
    if (rc == STM_OK)
        rc = store_exec(self,
                        "UPDATE stemma_local SET seq = coalesce((SELECT v.seq FROM "
                        "stemma_vector AS v WHERE v.origin = stemma_local.node_id), 0) "
                        "WHERE id = 1;"
                        "DELETE FROM stemma_vector WHERE origin = (SELECT node_id FROM "
                        "stemma_local WHERE id = 1);"
                        /* Its operations held so far were applied, so are in the clock. */
                        "INSERT OR IGNORE INTO stemma_clocked (origin, seq) SELECT node_id, seq "
                        "FROM stemma_local WHERE id = 1;",
                        err);
    return rc;
}

stm_err store_version_id(store_t *self, stm_id *out, stm_error *err)
{
    return s_read_id(self, "version_id", out, err);
}

stm_err store_set_version_id(store_t *self, const stm_id *id, stm_error *err)
{
    return s_write_id(self, "version_id", id, err);
}
