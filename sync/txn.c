/* txn.c - the write transaction of the sync layer; the invariants are in txn.h. What it
 * records, and what is held of each origin, is txn_record.c's. */
#include "txn_internal.h"
#include "capture.h"
#include "identity.h"
#include "origin.h"
#include "base/mem.h"
#include "lineage/sqlscript.h"

#include <stdlib.h>
#include <string.h>

static const char *const s_sql[Q_N] = {
    [Q_CLOCK_GET] = "SELECT cells FROM stemma_clock WHERE tbl = ?1 AND pk = ?2",
    [Q_CLOCK_PUT] = "INSERT OR REPLACE INTO stemma_clock (tbl, pk, cells) VALUES (?1, ?2, ?3)",
    [Q_CLOCK_NEW] = "INSERT INTO stemma_clock (tbl, pk, cells) VALUES (?1, ?2, ?3)",
    [Q_CLOCK_TOP] = "SELECT pk FROM stemma_clock WHERE tbl = ?1 ORDER BY pk DESC LIMIT 1",
    [Q_CLOCK_DEL] = "DELETE FROM stemma_clock WHERE tbl = ?1 AND pk = ?2",
    [Q_VECTOR_GET] = "SELECT seq FROM stemma_vector WHERE origin = ?1",
    [Q_VECTOR_SET] = ("INSERT INTO stemma_vector (origin, seq) VALUES (?1, ?2) "
                      "ON CONFLICT (origin) DO UPDATE SET seq = excluded.seq"),
    [Q_ABOVE] = "SELECT 1 FROM stemma_oplog WHERE origin = ?1 AND seq > ?2 LIMIT 1",
    [Q_LOCAL_SEQ] = "UPDATE stemma_local SET seq = max(seq, ?1) WHERE id = 1",
    [Q_HLC] = "UPDATE stemma_local SET hlc = max(hlc, ?1), applying = 0 WHERE id = 1",
    [Q_DATA_VERSION] = "PRAGMA data_version",
};

/* Forgets the origins met: a new transaction looks them up again. */
static void s_forget_origins(txn_t *t)
{
    t->norigins = 0;
    stm_idmap_clear(&t->origins_by_id);
}

void stm_txn_set_clock_limit(txn_t *t, uint64_t limit)
{
    t->clock_limit = limit;
}

void stm_txn_clock_seen(txn_t *t, uint64_t hlc)
{
    if (hlc > t->max_hlc)
        t->max_hlc = hlc;
}

/* conflicts_fold for the conflicts store: a key as its table compares it. */
static void s_fold_key(void *ctx, const char *tbl, const op_value *pk, buf_t *scratch,
                       op_value *out)
{
    txn_t *t = ctx;
    const txn_table *table = stm_txn_table_find(t, tbl);
    if (table && table->folds)
        stm_key_canonical(pk, table->colls, table->keys, scratch, out);
    else
        *out = *pk;
}

txn_t *stm_txn_new(store_t *store, oplog_t *log)
{
    txn_t *t = stm_calloc(1, sizeof *t);
    t->store = store;
    t->db = stm_store_db(store);
    t->log = log;
    t->stmts = stm_stmtcache_new(t->db, s_sql, Q_N);
    t->schema_cookie = -1;
    t->data_version = -1;
    t->clock_limit = UINT64_MAX;
    t->collect_limit = SIZE_MAX;
    t->conflicts = stm_conflicts_new(store);
    stm_conflicts_set_fold(t->conflicts, s_fold_key, t);
    t->settle = stm_opbatch_new();
    return t;
}

void stm_txn_destroy(txn_t **self_p)
{
    txn_t *t = *self_p;
    if (!t)
        return;
    stm_stmtcache_destroy(&t->stmts);
    stm_catalog_destroy(&t->catalog);
    free(t->tables);
    free(t->origins);
    free(t->pruned_rows);
    stm_idmap_free(&t->origins_by_id);
    stm_rowclock_free(&t->clock);
    stm_buf_free(&t->clock_bytes);
    stm_buf_free(&t->key_bytes);
    stm_conflicts_destroy(&t->conflicts);
    stm_opbatch_destroy(&t->settle);
    free(t);
    *self_p = NULL;
}

uint64_t stm_txn_epoch(const txn_t *t)
{
    return t->epoch;
}

/* ---- the local catalog ---- */

/* Re-reads the catalog and the exclude list when the schema changed. */
static stm_err s_refresh_catalog(txn_t *t, stm_error *err)
{
    int cookie = stm_sqlscript_schema_cookie(t->db);
    if (cookie == t->schema_cookie && t->catalog)
        return STM_OK;
    /* Tables in the format before are brought up to date first (store.h): a schema
     * that did not change cannot have gone back to it. */
    stm_err rc = stm_store_upgrade(t->store, err);
    if (rc != STM_OK)
        return rc;
    cookie = stm_sqlscript_schema_cookie(t->db);
    t->epoch++;
    /* The tables whose definition did not change are taken from the catalog before. */
    catalog_t *fresh = NULL;
    rc = stm_catalog_read_since(t->db, t->catalog ? t->catalog : t->since, &fresh, err);
    t->since = NULL;
    stm_catalog_destroy(&t->catalog);
    free(t->tables);
    t->tables = NULL;
    t->ntables = 0;
    t->last_table = NULL;
    if (rc != STM_OK)
        return rc;
    t->catalog = fresh;
    sqlite3_stmt *excluded = NULL, *unique = NULL;
    if (sqlite3_prepare_v2(t->db, "SELECT 1 FROM stemma_exclude WHERE tbl = ?1", -1, &excluded,
                           NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(t->db,
                           "SELECT 1 FROM pragma_index_list(?1) WHERE \"unique\" AND "
                           "origin <> 'pk' LIMIT 1",
                           -1, &unique, NULL) != SQLITE_OK) {
        sqlite3_finalize(excluded);
        return stm_store_error(t->store, err, "reading the tables' indexes");
    }
    t->tables = stm_calloc(stm_catalog_count(t->catalog) + 1, sizeof *t->tables);
    for (size_t i = 0; i < stm_catalog_count(t->catalog); i++) {
        const catalog_table *def = stm_catalog_at(t->catalog, i);
        sqlite3_reset(excluded);
        sqlite3_bind_text(excluded, 1, stm_catalog_table_name(def), -1, SQLITE_STATIC);
        bool is_excluded = sqlite3_step(excluded) == SQLITE_ROW;
        if (stm_syncable_classify(def, is_excluded) != SYNCABLE_SYNCED)
            continue;
        t->tables[t->ntables].def = def;
        t->tables[t->ntables].keys = stm_catalog_table_key_count(def);
        txn_table *tt = &t->tables[t->ntables];
        tt->identity = stm_identity_table(def);
        sqlite3_reset(unique);
        sqlite3_bind_text(unique, 1, stm_catalog_table_name(def), -1, SQLITE_STATIC);
        tt->has_unique = sqlite3_step(unique) == SQLITE_ROW;
        for (size_t k = 0; k < tt->keys && k < KEY_MAX_COLUMNS; k++) {
            tt->colls[k] = stm_key_collation_of(stm_catalog_table_key(def, k));
            tt->folds |= tt->colls[k] != KEY_BINARY;
        }
        t->ntables++;
    }
    sqlite3_finalize(excluded);
    sqlite3_finalize(unique);
    t->schema_cookie = cookie;
    return STM_OK;
}

void stm_txn_read_since(txn_t *t, const catalog_t *since)
{
    t->since = since;
}

txn_table *stm_txn_table_find(txn_t *t, const char *name)
{
    if (t->last_table && sqlite3_stricmp(stm_catalog_table_name(t->last_table->def), name) == 0)
        return t->last_table;
    for (size_t i = 0; i < t->ntables; i++) {
        if (sqlite3_stricmp(stm_catalog_table_name(t->tables[i].def), name) == 0) {
            t->last_table = &t->tables[i];
            return t->last_table;
        }
    }
    return NULL;
}

const catalog_table *stm_txn_table_def(const txn_table *table)
{
    return table->def;
}

size_t stm_txn_table_keys(const txn_table *table)
{
    return table->keys;
}

bool stm_txn_table_identity(const txn_table *table)
{
    return table->identity;
}

origin_change stm_txn_origin_change(txn_t *t)
{
    origin_change c = t->origin_change;
    t->origin_change = ORIGIN_KEPT;
    return c;
}

void stm_txn_limit_collect(txn_t *t, size_t max_rows)
{
    t->collect_limit = max_rows ? max_rows : 1;
}

bool stm_txn_collect_more(const txn_t *t)
{
    return t->collect_more;
}

void stm_txn_set_listener(txn_t *t, const txn_listener *l)
{
    if (l)
        t->listener = *l;
    else
        memset(&t->listener, 0, sizeof t->listener);
}

/* The listener told how the transaction it heard of ended. */
static void s_tell_end(txn_t *t, bool committed)
{
    if (t->told_open && t->listener.ended)
        t->listener.ended(t->listener.ctx, committed);
    t->told_open = false;
}

void stm_txn_on_write(txn_t *t, txn_wrote_fn fn, void *ctx)
{
    t->wrote = fn;
    t->wrote_ctx = ctx;
}

void stm_txn_wrote(txn_t *t, const txn_table *table, const op_value *pk)
{
    if (t->wrote)
        t->wrote(t->wrote_ctx, stm_catalog_table_name(table->def), pk);
}

void stm_txn_table_touch(txn_table *table)
{
    table->touched |= table->has_unique;
}

void stm_txn_touch_all(txn_t *t)
{
    for (size_t i = 0; i < t->ntables; i++)
        t->tables[i].touched = t->tables[i].has_unique;
}

txn_table *stm_txn_next_touched(txn_t *t)
{
    for (size_t i = 0; i < t->ntables; i++) {
        if (t->tables[i].touched) {
            t->tables[i].touched = false;
            return &t->tables[i];
        }
    }
    return NULL;
}

conflicts_t *stm_txn_conflicts(txn_t *t)
{
    return t->conflicts;
}

bool stm_txn_collected(const txn_t *t)
{
    return t->collected;
}

opbatch_t *stm_txn_settle(txn_t *t)
{
    return t->settle;
}

/* ---- row clocks ---- */

/* True when table has no clocks for integer key pk: it is above the greatest one. */
static stm_err s_above_top(txn_t *t, txn_table *table, const op_value *pk, bool *above,
                           stm_error *err)
{
    *above = false;
    if (pk->type != VALUE_INTEGER)
        return STM_OK;
    if (!table->top_known) {
        sqlite3_stmt *q = stm_stmtcache_fixed(t->stmts, Q_CLOCK_TOP);
        if (!q)
            return stm_store_error(t->store, err, "reading clocks");
        sqlite3_bind_text(q, 1, stm_catalog_table_name(table->def), -1, SQLITE_STATIC);
        int step = sqlite3_step(q);
        if (step == SQLITE_ROW && sqlite3_column_type(q, 0) == SQLITE_INTEGER) {
            table->top = sqlite3_column_int64(q, 0);
            table->top_none = false;
        } else {
            /* None at all (every integer is above), or a greater key of another type
             * (no integer is known to be above). */
            table->top_none = step == SQLITE_ROW;
            table->top = INT64_MIN;
        }
        sqlite3_reset(q);
        if (step != SQLITE_ROW && step != SQLITE_DONE)
            return stm_store_error(t->store, err, "reading clocks");
        table->top_known = true;
    }
    *above = !table->top_none && pk->i > table->top;
    return STM_OK;
}

/* The key as table compares it (key.h): the one stemma_clock holds its row's clocks
 * under, whatever the spelling an operation brought. Lent until the next call. */
static const op_value *s_clock_key(txn_t *t, const txn_table *table, const op_value *pk,
                                   op_value *scratch)
{
    if (!table->folds)
        return pk;
    stm_key_canonical(pk, table->colls, table->keys, &t->key_bytes, scratch);
    return scratch;
}

stm_err stm_txn_clock_read(txn_t *t, txn_table *table, const op_value *pk, bool *found,
                           stm_error *err)
{
    op_value folded;
    pk = s_clock_key(t, table, pk, &folded);
    bool above;
    stm_rowclock_clear(&t->clock);
    *found = false;
    stm_err rc = s_above_top(t, table, pk, &above, err);
    if (rc != STM_OK || above)
        return rc;
    const char *name = stm_catalog_table_name(table->def);
    sqlite3_stmt *get = stm_stmtcache_fixed(t->stmts, Q_CLOCK_GET);
    if (!get)
        return stm_store_error(t->store, err, "reading clocks");
    sqlite3_bind_text(get, 1, name, -1, SQLITE_STATIC);
    if (stm_op_value_bind(get, 2, pk) != SQLITE_OK)
        return stm_store_error(t->store, err, "reading clocks");
    int step = sqlite3_step(get);
    *found = step == SQLITE_ROW;
    if (*found && !stm_rowclock_decode(&t->clock, sqlite3_column_blob(get, 0),
                                       (size_t)sqlite3_column_bytes(get, 0)))
        rc = stm_error_set(err, STM_ECORRUPT,
                           "%s: stemma_clock: the clocks of a row of %s are damaged",
                           stm_store_path(t->store), name);
    else if (step != SQLITE_ROW && step != SQLITE_DONE)
        rc = stm_store_error(t->store, err, "reading clocks");
    sqlite3_reset(get);
    return rc;
}

stm_err stm_txn_clock_forget(txn_t *t, txn_table *table, const op_value *pk, stm_error *err)
{
    stm_txn_wrote(t, table, pk);
    op_value folded;
    pk = s_clock_key(t, table, pk, &folded);
    sqlite3_stmt *del = stm_stmtcache_fixed(t->stmts, Q_CLOCK_DEL);
    if (!del)
        return stm_store_error(t->store, err, "recording clocks");
    sqlite3_bind_text(del, 1, stm_catalog_table_name(table->def), -1, SQLITE_STATIC);
    if (stm_op_value_bind(del, 2, pk) != SQLITE_OK || sqlite3_step(del) != SQLITE_DONE)
        return stm_store_error(t->store, err, "recording clocks");
    return STM_OK;
}

rowclock_t *stm_txn_clock(txn_t *t)
{
    return &t->clock;
}

stm_err stm_txn_clock_write(txn_t *t, txn_table *table, const op_value *pk, bool is_new,
                            stm_error *err)
{
    stm_txn_wrote(t, table, pk);
    op_value folded;
    pk = s_clock_key(t, table, pk, &folded);
    stm_buf_reset(&t->clock_bytes);
    stm_rowclock_encode(&t->clock, &t->clock_bytes);
    if (pk->type == VALUE_INTEGER && table->top_known && !table->top_none && pk->i > table->top)
        table->top = pk->i;
    sqlite3_stmt *put = stm_stmtcache_fixed(t->stmts, is_new ? Q_CLOCK_NEW : Q_CLOCK_PUT);
    if (!put)
        return stm_store_error(t->store, err, "recording clocks");
    sqlite3_bind_text(put, 1, stm_catalog_table_name(table->def), -1, SQLITE_STATIC);
    if (stm_op_value_bind(put, 2, pk) != SQLITE_OK)
        return stm_store_error(t->store, err, "recording clocks");
    sqlite3_bind_blob(put, 3, t->clock_bytes.data, (int)t->clock_bytes.len, SQLITE_STATIC);
    if (sqlite3_step(put) != SQLITE_DONE)
        return stm_store_error(t->store, err, "recording clocks");
    return STM_OK;
}

/* What every transaction begins with, inside it: the schema as it is now, and the
 * application's queued changes made operations and recorded. */
static stm_err s_start(txn_t *t, stm_error *err)
{
    /* The limit is one start's, whatever becomes of it. */
    size_t limit = t->collect_limit;
    t->collect_limit = SIZE_MAX;
    t->collect_more = false;
    t->max_hlc = 0;
    s_forget_origins(t);
    stm_opbatch_clear(t->settle);
    stm_conflicts_forget(t->conflicts);
    t->collected = false;
    /* Another program committed since the last start: the ids the store remembers by
     * number may not be the file's any more (a backup put back in place renumbers
     * what came after it), so they are read again as they are needed. */
    sqlite3_stmt *dv = stm_stmtcache_fixed(t->stmts, Q_DATA_VERSION);
    if (!dv || sqlite3_step(dv) != SQLITE_ROW) {
        if (dv)
            sqlite3_reset(dv);
        return stm_store_error(t->store, err, "reading the database's data version");
    }
    int64_t data_version = sqlite3_column_int64(dv, 0);
    sqlite3_reset(dv);
    if (data_version != t->data_version)
        stm_store_forget_ids(t->store);
    t->data_version = data_version;
    /* A copy of a database must not write as its original's origin (origin.h): looked
     * at before the first write is collected, once per open database, and before the
     * catalog is read (the first look may make its table). */
    stm_err rc = STM_OK;
    origin_change change = ORIGIN_KEPT;
    if ((!t->origin_checked || t->origin_uncommitted) &&
        (rc = stm_origin_check(t->store, &change, err)) == STM_OK) {
        t->origin_checked = t->origin_uncommitted = true;
        if (change != ORIGIN_KEPT)
            t->origin_change = change;
    }
    /* Put back in place, by whatever means, since the last look: checked in every
     * transaction, as a restore may come at any time. */
    if (rc == STM_OK && (rc = stm_origin_check_sent(t->store, &change, err)) == STM_OK &&
        change != ORIGIN_KEPT)
        t->origin_change = change, t->origin_uncommitted = true;
    if (rc == STM_OK)
        rc = s_refresh_catalog(t, err);
    for (size_t i = 0; i < t->ntables; i++)
        t->tables[i].top_known = false;
    if (rc == STM_OK)
        rc = stm_store_node_id(t->store, &t->node_id, err);
    opbatch_t *local = rc == STM_OK ? stm_opbatch_new() : NULL;
    if (local && (rc = stm_capture_collect_some(t->store, t->catalog, local, limit,
                                                &t->collect_more, err)) == STM_OK) {
        t->collected = stm_opbatch_count(local) > 0;
        rc = stm_txn_record_local(t, local, err);
    }
    stm_opbatch_destroy(&local);
    return rc;
}

stm_err stm_txn_collect(txn_t *t, stm_error *err)
{
    stm_err rc = s_start(t, err);
    /* stm_capture_collect moved the local sequence and clock already. */
    s_forget_origins(t);
    if (rc != STM_OK)
        stm_store_forget_ids(t->store);
    return rc;
}

void stm_txn_rollback(txn_t *t)
{
    sqlite3_exec(t->db, "ROLLBACK", NULL, NULL, NULL);
    s_tell_end(t, false);
    if (t->origin_uncommitted) /* a new origin taken is undone: look again next time */
        t->origin_checked = t->origin_uncommitted = false, t->origin_change = ORIGIN_KEPT;
    stm_store_forget_ids(t->store);
    s_forget_origins(t);
    t->npruned_rows = 0;
}

stm_err stm_txn_begin(txn_t *t, stm_error *err)
{
    s_tell_end(t, false); /* a collect joined the caller's transaction (txn_listener) */
    if (sqlite3_exec(t->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        return stm_store_error(t->store, err, "starting a transaction");
    stm_err rc = s_start(t, err);
    if (rc == STM_OK)
        rc = stm_store_exec(t->store, "UPDATE stemma_local SET applying = 1 WHERE id = 1", err);
    if (rc != STM_OK)
        stm_txn_rollback(t);
    return rc;
}

stm_err stm_txn_commit(txn_t *t, stm_error *err)
{
    stm_err rc = stm_txn_update_vectors(t, err);
    if (rc == STM_OK) {
        /* Invariant 3, and capture on again. */
        sqlite3_stmt *hlc = stm_stmtcache_fixed(t->stmts, Q_HLC);
        if (!hlc)
            rc = stm_store_error(t->store, err, "moving the clock");
        else {
            sqlite3_bind_int64(hlc, 1, (sqlite3_int64)t->max_hlc);
            if (sqlite3_step(hlc) != SQLITE_DONE)
                rc = stm_store_error(t->store, err, "moving the clock");
        }
    }
    /* Invariant 6: rows written here are not the application's to collect. Not after a
     * slice that left the application's rows above a mark: the collect moved it only
     * past those it took (capture.h), and this transaction wrote none of its own. */
    if (rc == STM_OK && !t->collect_more)
        rc = stm_capture_mark(t->store, t->catalog, err);
    if (rc == STM_OK)
        rc = stm_store_flush_counts(t->store, err);
    if (rc == STM_OK && sqlite3_exec(t->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        rc = stm_store_error(t->store, err, "committing");
    if (rc != STM_OK)
        stm_txn_rollback(t);
    else
        t->origin_uncommitted = false, s_tell_end(t, true);
    s_forget_origins(t);
    return rc;
}
