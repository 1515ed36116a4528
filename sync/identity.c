/* identity.c - incarnations and the conflicts kept aside (identity.h). */
#include "identity.h"
#include "key.h"
#include "oplog.h"
#include "stmtcache.h"
#include "base/buf.h"
#include "base/mem.h"
#include "lineage/syncable.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

bool stm_identity_table(const catalog_table *t)
{
    return stm_syncable_keys_per_device(t);
}

identity_stamp stm_identity_of_op(const op_t *op)
{
    identity_stamp s = {.hlc = op->born_hlc};
    if (op->born_hlc)
        s.origin = op->born_origin;
    return s;
}

bool stm_identity_equal(const identity_stamp *a, const identity_stamp *b)
{
    return a->hlc == b->hlc && (a->hlc == 0 || stm_id_equal(&a->origin, &b->origin));
}

int stm_identity_compare(const identity_stamp *a, const identity_stamp *b)
{
    if (a->hlc != b->hlc)
        return a->hlc < b->hlc ? -1 : 1;
    return a->hlc ? memcmp(a->origin.bytes, b->origin.bytes, STM_ID_BYTES) : 0;
}

stm_err stm_identity_of_clock(store_t *store, rowclock_t *clock, identity_stamp *out,
                              stm_error *err)
{
    memset(out, 0, sizeof *out);
    const rowclock_entry *e = stm_rowclock_find(clock, ROWCLOCK_BORN, NULL);
    if (!e)
        return STM_OK;
    out->hlc = e->hlc;
    return stm_store_id_of(store, e->origin, &out->origin, err);
}

stm_err stm_identity_set_clock(store_t *store, rowclock_t *clock, const identity_stamp *s,
                               uint64_t seq, stm_error *err)
{
    if (s->hlc == 0)
        return STM_OK;
    int64_t no;
    stm_err rc = stm_store_id_number(store, &s->origin, true, &no, err);
    if (rc == STM_OK)
        stm_rowclock_set(clock, ROWCLOCK_BORN, NULL, s->hlc, no, seq);
    return rc;
}

/* (hlc, origin bytes) of entry e, for comparing writes across replicas. */
static stm_err s_stamp(store_t *store, const rowclock_entry *e, identity_stamp *out, stm_error *err)
{
    out->hlc = e->hlc;
    return stm_store_id_of(store, e->origin, &out->origin, err);
}

stm_err stm_identity_alive(store_t *store, rowclock_t *clock, bool *alive, stm_error *err)
{
    const rowclock_entry *latest = NULL, *del = NULL;
    identity_stamp best = {0}, cur;
    stm_err rc = STM_OK;
    for (size_t i = 0; i < clock->count && rc == STM_OK; i++) {
        const rowclock_entry *e = &clock->entries[i];
        if (e->kind == ROWCLOCK_DELETE) {
            del = e;
        } else if (e->kind == ROWCLOCK_CELL || e->kind == ROWCLOCK_PARKED) {
            rc = s_stamp(store, e, &cur, err);
            if (rc == STM_OK && (!latest || stm_identity_compare(&cur, &best) > 0)) {
                latest = e;
                best = cur;
            }
        }
    }
    *alive = false;
    if (rc != STM_OK || !latest)
        return rc;
    if (!del) {
        *alive = true;
        return STM_OK;
    }
    identity_stamp d;
    rc = s_stamp(store, del, &d, err);
    *alive = rc == STM_OK && stm_identity_compare(&best, &d) > 0;
    return rc;
}

/* ---- stemma_conflicts ---- */

enum { Q_LOAD, Q_SAVE, Q_REMOVE, Q_FIRST, Q_ANY, Q_N };

static const char *const s_sql[Q_N] = {
    [Q_LOAD] = "SELECT cells FROM stemma_conflicts WHERE tbl = ?1 AND pk = ?2 AND "
               "born_hlc = ?3 AND born_origin = ?4",
    /* An upsert: the count of conflicts alive (store.h) follows it by trigger. */
    [Q_SAVE] = "INSERT INTO stemma_conflicts (tbl, pk, born_hlc, born_origin, alive, cells) "
               "VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (tbl, pk, born_hlc, born_origin) "
               "DO UPDATE SET alive = excluded.alive, cells = excluded.cells",
    [Q_REMOVE] = "DELETE FROM stemma_conflicts WHERE tbl = ?1 AND pk = ?2 AND born_hlc = ?3 AND "
                 "born_origin = ?4",
    [Q_FIRST] = "SELECT born_hlc, born_origin, cells FROM stemma_conflicts WHERE tbl = ?1 AND "
                "pk = ?2 AND alive = 1 AND (born_hlc, born_origin) > (?3, ?4) "
                "ORDER BY born_hlc, born_origin LIMIT 1",
    [Q_ANY] = "SELECT EXISTS (SELECT 1 FROM stemma_conflicts)",
};

struct conflicts {
    store_t *store;     /* lent */
    stmtcache_t *stmts; /* owned, by Q_* */
    buf_t cells;        /* scratch for encoding clocks */
    conflicts_fold fold; /* keys as their tables compare them, or NULL */
    void *fold_ctx;
    buf_t key;          /* scratch: the folded key's bytes */
    op_value folded;    /* the folded key, bound until the next statement */
    int any;            /* stemma_conflicts holds rows: 1, 0, or -1 not known */
};

conflicts_t *stm_conflicts_new(store_t *store)
{
    conflicts_t *c = stm_calloc(1, sizeof *c);
    c->store = store;
    c->stmts = stm_stmtcache_new(stm_store_db(store), s_sql, Q_N);
    c->any = -1;
    return c;
}

void stm_conflicts_set_fold(conflicts_t *c, conflicts_fold fold, void *ctx)
{
    c->fold = fold;
    c->fold_ctx = ctx;
}

/* pk as tbl compares it: what stemma_conflicts keeps it under. */
static const op_value *s_folded(conflicts_t *c, const char *tbl, const op_value *pk)
{
    if (!c->fold)
        return pk;
    c->fold(c->fold_ctx, tbl, pk, &c->key, &c->folded);
    return &c->folded;
}

void stm_conflicts_forget(conflicts_t *c)
{
    c->any = -1;
}

stm_err stm_conflicts_any(conflicts_t *c, bool *any, stm_error *err)
{
    if (c->any < 0) {
        sqlite3_stmt *stmt = stm_stmtcache_fixed(c->stmts, Q_ANY);
        if (!stmt || sqlite3_step(stmt) != SQLITE_ROW)
            return stm_store_error(c->store, err, "reading stemma_conflicts");
        c->any = sqlite3_column_int(stmt, 0) != 0;
        sqlite3_reset(stmt);
    }
    *any = c->any == 1;
    return STM_OK;
}

void stm_conflicts_destroy(conflicts_t **self_p)
{
    conflicts_t *c = *self_p;
    if (!c)
        return;
    stm_stmtcache_destroy(&c->stmts);
    stm_buf_free(&c->cells);
    stm_buf_free(&c->key);
    free(c);
    *self_p = NULL;
}

/* Statement q with (tbl, pk, born_hlc, born_origin) bound as ?1..?4; NULL on error. */
static sqlite3_stmt *s_bound(conflicts_t *c, int q, const char *tbl, const op_value *pk,
                             const identity_stamp *s)
{
    sqlite3_stmt *stmt = stm_stmtcache_fixed(c->stmts, (size_t)q);
    if (!stmt)
        return NULL;
    static const stm_id genesis = {{0}};
    sqlite3_bind_text(stmt, 1, tbl, -1, SQLITE_STATIC);
    if (stm_op_value_bind(stmt, 2, s_folded(c, tbl, pk)) != SQLITE_OK)
        return NULL;
    sqlite3_bind_int64(stmt, 3, (sqlite3_int64)s->hlc);
    sqlite3_bind_blob(stmt, 4, s->hlc ? s->origin.bytes : genesis.bytes, STM_ID_BYTES,
                      SQLITE_STATIC);
    return stmt;
}

/* Decodes the cells of column i of stmt into out. */
static stm_err s_decode(conflicts_t *c, sqlite3_stmt *stmt, int i, rowclock_t *out, stm_error *err)
{
    if (!stm_rowclock_decode(out, sqlite3_column_blob(stmt, i),
                             (size_t)sqlite3_column_bytes(stmt, i)))
        return stm_error_set(err, STM_ECORRUPT, "%s: stemma_conflicts: a row's clocks are damaged",
                             stm_store_path(c->store));
    return STM_OK;
}

stm_err stm_conflicts_load(conflicts_t *c, const char *tbl, const op_value *pk,
                           const identity_stamp *s, rowclock_t *out, bool *found, stm_error *err)
{
    stm_rowclock_clear(out);
    *found = false;
    sqlite3_stmt *stmt = s_bound(c, Q_LOAD, tbl, pk, s);
    if (!stmt)
        return stm_store_error(c->store, err, "reading stemma_conflicts");
    int step = sqlite3_step(stmt);
    stm_err rc = STM_OK;
    if (step == SQLITE_ROW) {
        *found = true;
        rc = s_decode(c, stmt, 0, out, err);
    } else if (step != SQLITE_DONE) {
        rc = stm_store_error(c->store, err, "reading stemma_conflicts");
    }
    /* Reset at once: a statement left stepping holds a read transaction open past the
     * commit, and the next BEGIN IMMEDIATE fails once the application has written. */
    sqlite3_reset(stmt);
    return rc;
}

stm_err stm_conflicts_save(conflicts_t *c, const char *tbl, const op_value *pk,
                           const identity_stamp *s, const rowclock_t *clock, bool alive,
                           stm_error *err)
{
    sqlite3_stmt *stmt = s_bound(c, Q_SAVE, tbl, pk, s);
    if (!stmt)
        return stm_store_error(c->store, err, "writing stemma_conflicts");
    stm_buf_reset(&c->cells);
    stm_rowclock_encode(clock, &c->cells);
    c->any = 1;
    sqlite3_bind_int(stmt, 5, alive ? 1 : 0);
    sqlite3_bind_blob64(stmt, 6, c->cells.len ? c->cells.data : "", c->cells.len, SQLITE_STATIC);
    return sqlite3_step(stmt) == SQLITE_DONE
               ? STM_OK
               : stm_store_error(c->store, err, "writing stemma_conflicts");
}

stm_err stm_conflicts_remove(conflicts_t *c, const char *tbl, const op_value *pk,
                             const identity_stamp *s, stm_error *err)
{
    sqlite3_stmt *stmt = s_bound(c, Q_REMOVE, tbl, pk, s);
    if (!stmt || sqlite3_step(stmt) != SQLITE_DONE)
        return stm_store_error(c->store, err, "writing stemma_conflicts");
    return STM_OK;
}

stm_err stm_conflicts_first_alive(conflicts_t *c, const char *tbl, const op_value *pk,
                                  identity_stamp *s, rowclock_t *out, bool *found, stm_error *err)
{
    return stm_conflicts_next_alive(c, tbl, pk, NULL, s, out, found, err);
}

stm_err stm_conflicts_next_alive(conflicts_t *c, const char *tbl, const op_value *pk,
                                 const identity_stamp *after, identity_stamp *s, rowclock_t *out,
                                 bool *found, stm_error *err)
{
    stm_rowclock_clear(out);
    *found = false;
    sqlite3_stmt *stmt = stm_stmtcache_fixed(c->stmts, Q_FIRST);
    if (!stmt)
        return stm_store_error(c->store, err, "reading stemma_conflicts");
    sqlite3_bind_text(stmt, 1, tbl, -1, SQLITE_STATIC);
    if (stm_op_value_bind(stmt, 2, s_folded(c, tbl, pk)) != SQLITE_OK)
        return stm_store_error(c->store, err, "reading stemma_conflicts");
    /* With no `after`, (-1, ...) is below every stamp, genesis's (0, zero) included. */
    static const stm_id zero = {{0}};
    sqlite3_bind_int64(stmt, 3, after ? (sqlite3_int64)after->hlc : -1);
    sqlite3_bind_blob(stmt, 4, after && after->hlc ? after->origin.bytes : zero.bytes, STM_ID_BYTES,
                      SQLITE_STATIC);
    int step = sqlite3_step(stmt);
    stm_err rc = STM_OK;
    if (step == SQLITE_ROW && sqlite3_column_bytes(stmt, 1) == STM_ID_BYTES) {
        memset(s, 0, sizeof *s);
        s->hlc = (uint64_t)sqlite3_column_int64(stmt, 0);
        if (s->hlc)
            memcpy(s->origin.bytes, sqlite3_column_blob(stmt, 1), STM_ID_BYTES);
        *found = true;
        rc = s_decode(c, stmt, 2, out, err);
    } else if (step != SQLITE_DONE) {
        rc = stm_store_error(c->store, err, "reading stemma_conflicts");
    }
    sqlite3_reset(stmt); /* as in stm_conflicts_load */
    return rc;
}

stm_err stm_conflicts_count(store_t *store, uint64_t *count, stm_error *err)
{
    sqlite3_stmt *stmt = NULL;
    *count = 0;
    if (sqlite3_prepare_v2(stm_store_db(store),
                           "SELECT count(*) FROM stemma_conflicts WHERE alive = 1", -1, &stmt,
                           NULL) != SQLITE_OK)
        return stm_store_error(store, err, "counting conflicts");
    int step = sqlite3_step(stmt);
    if (step == SQLITE_ROW)
        *count = (uint64_t)sqlite3_column_int64(stmt, 0);
    sqlite3_finalize(stmt);
    return step == SQLITE_ROW ? STM_OK : stm_store_error(store, err, "counting conflicts");
}

/* A cell's clock entry and its column name, for sorting. */
typedef struct {
    const char *name;
    const rowclock_entry *e;
} s_named;

static int s_by_name(const void *pa, const void *pb)
{
    return strcmp(((const s_named *)pa)->name, ((const s_named *)pb)->name);
}

/* Appends the cells of one kept incarnation (clock, at the row of rows) to out; its
 * table's key has `keys` columns. */
static stm_err s_rows_of(store_t *store, oplog_t *log, sqlite3_stmt *rows, size_t keys,
                         rowclock_t *clock, opbatch_t *held, opbatch_t *out, stm_error *err)
{
    op_t cell;
    memset(&cell, 0, sizeof cell);
    cell.table = (const char *)sqlite3_column_text(rows, 0);
    stm_key_column(rows, 1, keys, &cell.pk);
    cell.born_hlc = (uint64_t)sqlite3_column_int64(rows, 2);
    if (sqlite3_column_bytes(rows, 3) == STM_ID_BYTES)
        memcpy(cell.born_origin.bytes, sqlite3_column_blob(rows, 3), STM_ID_BYTES);
    /* In column name order: the clocks hold them in the order writes arrived, which
     * differs between replicas. */
    s_named *order = stm_calloc(clock->count + 1, sizeof *order);
    size_t n = 0;
    for (size_t i = 0; i < clock->count; i++)
        if (clock->entries[i].kind == ROWCLOCK_CELL)
            order[n++] =
                (s_named){stm_rowclock_name(clock, &clock->entries[i]), &clock->entries[i]};
    qsort(order, n, sizeof *order, s_by_name);
    stm_err rc = STM_OK;
    bool listed = false;
    for (size_t i = 0; i < n && rc == STM_OK; i++) {
        const rowclock_entry *e = order[i].e;
        stm_id origin;
        bool found = false;
        stm_opbatch_clear(held);
        rc = stm_store_id_of(store, e->origin, &origin, err);
        if (rc == STM_OK)
            rc = stm_oplog_fetch(log, &origin, e->seq, held, &found, err);
        if (rc != STM_OK || !found)
            continue;
        const op_t *w = stm_opbatch_at(held, 0);
        cell.origin = w->origin;
        cell.seq = w->seq;
        cell.hlc = w->hlc;
        cell.version_id = w->version_id;
        cell.column = stm_rowclock_name(clock, e);
        cell.affinity = w->affinity;
        cell.value = w->value;
        stm_opbatch_add(out, &cell);
        listed = true;
    }
    /* None of its values held here (its writes parked for columns this schema lacks,
     * say): listed all the same, as one entry with no column, so that what is
     * counted can be seen and discarded. */
    if (rc == STM_OK && !listed) {
        cell.column = NULL;
        stm_opbatch_add(out, &cell);
    }
    free(order);
    return rc;
}

stm_err stm_conflicts_rows(store_t *store, opbatch_t *out, stm_error *err)
{
    sqlite3_stmt *rows = NULL;
    /* With how many columns each table's key has: a key of several is kept packed. */
    if (sqlite3_prepare_v2(stm_store_db(store),
                           "SELECT tbl, pk, born_hlc, born_origin, cells, (SELECT count(*) FROM "
                           "pragma_table_info(tbl) WHERE pk > 0) FROM stemma_conflicts "
                           "WHERE alive = 1 ORDER BY tbl, pk, born_hlc, born_origin",
                           -1, &rows, NULL) != SQLITE_OK)
        return stm_store_error(store, err, "reading stemma_conflicts");
    oplog_t *log = stm_oplog_new(store);
    opbatch_t *held = stm_opbatch_new();
    rowclock_t clock = {0};
    stm_err rc = STM_OK;
    int step;
    while (rc == STM_OK && (step = sqlite3_step(rows)) == SQLITE_ROW) {
        if (!stm_rowclock_decode(&clock, sqlite3_column_blob(rows, 4),
                                 (size_t)sqlite3_column_bytes(rows, 4)))
            rc =
                stm_error_set(err, STM_ECORRUPT, "%s: stemma_conflicts: a row's clocks are damaged",
                              stm_store_path(store));
        else
            rc = s_rows_of(store, log, rows, (size_t)sqlite3_column_int64(rows, 5), &clock, held,
                           out, err);
    }
    if (rc == STM_OK && step != SQLITE_DONE)
        rc = stm_store_error(store, err, "reading stemma_conflicts");
    stm_rowclock_free(&clock);
    stm_opbatch_destroy(&held);
    stm_oplog_destroy(&log);
    sqlite3_finalize(rows);
    return rc;
}
