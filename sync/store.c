#include "store.h"
#include "base/idmap.h"
#include "base/mem.h"

#include <assert.h>
#include <errno.h>
#include <signal.h>
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
    /* What this connection's open transaction changed of the oplog's counters
     * (stm_store_count): written by stm_store_flush_counts before its commit, forgotten
     * when it rolls back. */
    int64_t d_ops, d_withheld, d_pruned;
};

static stm_err s_exec(store_t *self, const char *sql, stm_error *err);

/* sqlite3_rollback_hook: what the transaction counted is gone with it. */
static void s_on_rollback(void *ctx)
{
    store_t *self = ctx;
    self->d_ops = self->d_withheld = self->d_pruned = 0;
}

/* sqlite3_commit_hook: a transaction that wrote the oplog commits only after its counts
 * are written (stm_store_commit, stm_txn_commit); one that does not is a programming
 * bug, which would leave stats wrong for good. */
static int s_on_commit(void *ctx)
{
    const store_t *self = ctx;
    assert(self->d_ops == 0 && self->d_withheld == 0 && self->d_pruned == 0);
    (void)self;
    return 0;
}

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
    sqlite3_rollback_hook(db, s_on_rollback, self);
    sqlite3_commit_hook(db, s_on_commit, self);
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
    if (strcmp(sql, "COMMIT") == 0)
        return stm_store_commit(self, err);
    return s_exec(self, sql, err);
}

static stm_err s_exec(store_t *self, const char *sql, stm_error *err)
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

/* ---- counters ---- */

void stm_store_count(store_t *self, int64_t ops, int64_t withheld, int64_t pruned)
{
    self->d_ops += ops;
    self->d_withheld += withheld;
    self->d_pruned += pruned;
    /* A write outside a transaction has committed already: counted at once. */
    if (sqlite3_get_autocommit(self->db) && stm_store_flush_counts(self, NULL) != STM_OK)
        self->d_ops = self->d_withheld = self->d_pruned = 0;
}

stm_err stm_store_flush_counts(store_t *self, stm_error *err)
{
    if (!self->d_ops && !self->d_withheld && !self->d_pruned)
        return STM_OK;
    sqlite3_stmt *stmt = NULL;
    if (sqlite3_prepare_v2(self->db,
                           "UPDATE stemma_local SET ops = ops + ?1, withheld = withheld + ?2, "
                           "pruned = pruned + ?3 WHERE id = 1",
                           -1, &stmt, NULL) != SQLITE_OK)
        return stm_store_error(self, err, "counting operations");
    sqlite3_bind_int64(stmt, 1, self->d_ops);
    sqlite3_bind_int64(stmt, 2, self->d_withheld);
    sqlite3_bind_int64(stmt, 3, self->d_pruned);
    /* Written from here: outside a transaction this very statement commits, and the
     * commit hook must find nothing left to write. */
    int64_t ops = self->d_ops, withheld = self->d_withheld, pruned = self->d_pruned;
    self->d_ops = self->d_withheld = self->d_pruned = 0;
    int step = sqlite3_step(stmt);
    sqlite3_finalize(stmt);
    if (step != SQLITE_DONE) {
        self->d_ops += ops;
        self->d_withheld += withheld;
        self->d_pruned += pruned;
        return stm_store_error(self, err, "counting operations");
    }
    return STM_OK;
}

stm_err stm_store_commit(store_t *self, stm_error *err)
{
    stm_err rc = stm_store_flush_counts(self, err);
    return rc == STM_OK ? s_exec(self, "COMMIT", err) : rc;
}
