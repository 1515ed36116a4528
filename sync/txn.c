/* txn.c - the write transaction of the sync layer; the invariants are in txn.h. */
#include "txn.h"
#include "capture.h"
#include "identity.h"
#include "origin.h"
#include "base/idmap.h"
#include "key.h"
#include "stmtcache.h"
#include "base/buf.h"
#include "base/mem.h"
#include "lineage/sqlscript.h"

#include <stdlib.h>
#include <string.h>

/* The fixed statements, prepared on first use. */
enum {
    Q_CLOCK_GET, /* a row's clocks */
    Q_CLOCK_PUT, /* ... written back */
    Q_CLOCK_NEW, /* ... or written the first time */
    Q_CLOCK_TOP, /* the greatest key of a table in stemma_clock */
    Q_CLOCK_DEL, /* a row's clocks gone (kept aside instead) */
    Q_VECTOR_GET,
    Q_VECTOR_SET,
    Q_ABOVE, /* does an origin have operations stored above its vector entry? */
    Q_LOCAL_SEQ,
    Q_HLC, /* the local clock moved, capture on again */
    Q_DATA_VERSION, /* moves when another connection commits */
    Q_N
};

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

struct txn_table {
    const catalog_table *def;             /* lent by the transaction's catalog */
    size_t keys;                          /* how many columns its key has */
    bool identity;                        /* its rows have incarnations (identity.h) */
    bool folds;                           /* some key column's collation folds text (key.h) */
    bool has_unique;                      /* a UNIQUE index other than its key */
    bool touched;                         /* stm_txn_table_touch since the last look */
    key_collation colls[KEY_MAX_COLUMNS]; /* the key columns' collations */
    /* Within a transaction: the greatest key stemma_clock holds for the table, when it
     * is an integer (or there is none), so that a new row with a greater integer key
     * (the usual insert) is known to have no clocks without looking. */
    bool top_known;
    bool top_none; /* no clocks at all, or the greatest key is not an integer */
    int64_t top;
};

/* What the transaction knows of one origin. */
typedef struct {
    stm_id id;
    int64_t no;    /* stemma_ids number; 0 until it has one */
    uint64_t held; /* every operation up to here is held */
    bool above;    /* some may be held above held, so look those up */
    bool touched;  /* operations of it were recorded in this transaction */
    uint64_t top;  /* the highest sequence recorded in this transaction */
} s_origin;

struct txn {
    store_t *store;     /* lent */
    sqlite3 *db;        /* store's connection, lent */
    oplog_t *log;       /* lent */
    stmtcache_t *stmts; /* owned, by Q_* */
    catalog_t *catalog; /* the local schema as last read */
    const catalog_t *since; /* lent until the first reading: an earlier one of the same
                               schema (stm_txn_read_since); NULL: none */
    int schema_cookie;  /* PRAGMA schema_version when it was read; -1: never */
    uint64_t epoch;     /* moves whenever tables is freed (invariant 8) */
    txn_table *tables;  /* synced tables, in catalog order */
    size_t ntables;
    txn_table *last_table; /* the last one looked up: batches run table by table */
    stm_id node_id;        /* this database's origin */
    uint64_t max_hlc;      /* greatest clock recorded (within clock_limit) or applied in
                            * the current transaction */
    uint64_t clock_limit;  /* recorded clocks above it do not count (invariant 3) */
    s_origin *origins;     /* origins met in the current transaction */
    size_t norigins, origins_cap;
    idmap_t origins_by_id; /* positions in origins (s_forget_origins empties both) */
    size_t last_origin;     /* index of the last one met */
    rowclock_t clock;       /* the clocks of the row read last */
    buf_t clock_bytes;      /* scratch for encoding them */
    buf_t key_bytes;        /* scratch for a key as its table compares it (key.h) */
    conflicts_t *conflicts; /* owned: incarnations kept aside (identity.h) */
    bool collected;         /* the start recorded local changes */
    size_t collect_limit;   /* queued rows the next start collects at most (SIZE_MAX: all) */
    bool collect_more;      /* the start left some for another (stm_txn_limit_collect) */
    opbatch_t *settle;      /* owned: rows of identity tables deleted or made anew locally
                             * since the start, as deletes (table and key): stm_txn_settle */
    txn_listener listener;  /* told of what is recorded and how it ends (all NULL: none) */
    bool told_open;         /* the listener was told of a transaction not ended yet */
    txn_wrote_fn wrote;     /* told of every row whose clocks are written; may be NULL */
    void *wrote_ctx;
    int64_t data_version;    /* PRAGMA data_version at the last start; -1: none yet */
    bool origin_checked;     /* stm_origin_check ran in a transaction of this handle */
    bool origin_uncommitted; /* ... in the one still open: a rollback undoes it */
    origin_change origin_change; /* what it found, until stm_txn_origin_change takes it */
    oplog_row *pruned_rows; /* rows of pruned stand-ins recorded in the transaction: those
                             * the vector passes by its commit go then (oplog.h) */
    size_t npruned_rows, pruned_rows_cap;
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

/* ---- origins and what is held of them ---- */

/* The transaction's state of origin, read on first meeting. */
static bool s_is_origin(const void *ctx, uint32_t pos)
{
    const txn_t *t = ((const void *const *)ctx)[0];
    return stm_id_equal(&t->origins[pos].id, ((const void *const *)ctx)[1]);
}

static stm_err s_origin_get(txn_t *t, const stm_id *id, s_origin **out, stm_error *err)
{
    if (t->norigins && stm_id_equal(&t->origins[t->last_origin].id, id)) {
        *out = &t->origins[t->last_origin];
        return STM_OK;
    }
    /* By hash: a batch may carry operations of thousands of origins. */
    const void *want[2] = {t, id};
    int64_t at = stm_idmap_find(&t->origins_by_id, stm_idmap_hash_id(id), s_is_origin, want);
    if (at >= 0) {
        t->last_origin = (size_t)at;
        *out = &t->origins[at];
        return STM_OK;
    }
    s_origin o = {.id = *id};
    stm_err rc = stm_store_id_number(t->store, id, false, &o.no, err);
    if (rc != STM_OK)
        return rc;
    if (stm_id_equal(id, &t->node_id)) {
        sqlite3_stmt *q = NULL;
        if (sqlite3_prepare_v2(t->db, "SELECT seq FROM stemma_local WHERE id = 1", -1, &q, NULL) !=
            SQLITE_OK)
            return stm_store_error(t->store, err, "reading the local sequence");
        if (sqlite3_step(q) == SQLITE_ROW)
            o.held = (uint64_t)sqlite3_column_int64(q, 0);
        sqlite3_finalize(q);
    } else {
        sqlite3_stmt *get = stm_stmtcache_fixed(t->stmts, Q_VECTOR_GET);
        if (!get)
            return stm_store_error(t->store, err, "reading the version vector");
        sqlite3_bind_blob(get, 1, id->bytes, STM_ID_BYTES, SQLITE_STATIC);
        if (sqlite3_step(get) == SQLITE_ROW)
            o.held = (uint64_t)sqlite3_column_int64(get, 0);
        sqlite3_reset(get);
    }
    if (o.no) {
        sqlite3_stmt *above = stm_stmtcache_fixed(t->stmts, Q_ABOVE);
        if (!above)
            return stm_store_error(t->store, err, "reading the oplog");
        sqlite3_bind_int64(above, 1, o.no);
        sqlite3_bind_int64(above, 2, (sqlite3_int64)o.held);
        int step = sqlite3_step(above);
        o.above = step == SQLITE_ROW;
        sqlite3_reset(above);
        if (step != SQLITE_ROW && step != SQLITE_DONE)
            return stm_store_error(t->store, err, "reading the oplog");
    }
    t->origins = stm_grow(t->origins, &t->origins_cap, t->norigins + 1, sizeof *t->origins);
    t->last_origin = t->norigins;
    stm_idmap_put(&t->origins_by_id, stm_idmap_hash_id(id), (uint32_t)t->norigins);
    t->origins[t->norigins++] = o;
    *out = &t->origins[t->last_origin];
    return STM_OK;
}

/* Whether operation seq of o is held; *end is the last sequence of the stored row
 * change holding it (skip to there), or seq when it is not held. */
static stm_err s_held(txn_t *t, s_origin *o, uint64_t seq, bool *held, uint64_t *end,
                      stm_error *err)
{
    *end = seq;
    *held = seq <= o->held;
    /* Without anything stored above o->held, seq above it is new. */
    if (*held || !o->above || !o->no)
        return STM_OK;
    uint64_t last;
    stm_err rc = stm_oplog_holds(t->log, o->no, seq, &last, err);
    if (rc == STM_OK && last) {
        *held = true;
        *end = last;
    }
    return rc;
}

/* What o holds now that first .. last (clock hlc) were recorded. */
static stm_err s_recorded(txn_t *t, s_origin *o, uint64_t first, uint64_t last, uint64_t hlc,
                          stm_error *err)
{
    stm_err rc;
    /* Numbered even when no row is stored (pruned operations continuing what is held):
     * the listener's feed names every origin of its runs by number (feed.h). */
    if (!o->no && (rc = stm_store_id_number(t->store, &o->id, true, &o->no, err)) != STM_OK)
        return rc;
    if (t->listener.recorded) {
        t->listener.recorded(t->listener.ctx, o->no, &o->id, first, last - first + 1);
        t->told_open = true;
    }
    if (first == o->held + 1)
        o->held = last;
    else
        o->above = true; /* a gap below it: later arrivals must be looked up */
    o->touched = true;
    if (last > o->top)
        o->top = last;
    if (hlc <= t->clock_limit)
        stm_txn_clock_seen(t, hlc);
    return STM_OK;
}

/* Records ops[0..n) (one row change, none held, consecutive sequences) for o. */
static stm_err s_record(txn_t *t, s_origin *o, const op_t *const *ops, size_t n, stm_error *err)
{
    stm_err rc = stm_oplog_append(t->log, ops, n, ops[0]->table, err);
    if (rc != STM_OK)
        return rc;
    return s_recorded(t, o, ops[0]->seq, ops[n - 1]->seq, ops[0]->hlc, err);
}

/* Records run .. last of stand-in w, none held: a row of its own, but for pruned ones
 * that continue what is held, which need none (the vector moves past them, and a gap
 * below the vector is what pruned operations leave: oplog.h). */
static stm_err s_record_standin(txn_t *t, s_origin *o, const op_withheld *w, uint64_t run,
                                uint64_t last, stm_error *err)
{
    stm_err rc = STM_OK;
    if (!w->pruned)
        rc = stm_oplog_append_withheld(t->log, w, run, last - run + 1, w->table, err);
    else if (run != o->held + 1) {
        rc = stm_oplog_append_pruned(t->log, &w->origin, run, last - run + 1, err);
        t->pruned_rows = stm_grow(t->pruned_rows, &t->pruned_rows_cap, t->npruned_rows + 1,
                                  sizeof *t->pruned_rows);
        t->pruned_rows[t->npruned_rows++] = (oplog_row){
            .origin_id = w->origin, .seq = run, .n = last - run + 1, .kind = OPLOG_ROW_PRUNED};
    }
    return rc == STM_OK ? s_recorded(t, o, run, last, w->hlc, err) : rc;
}

stm_err stm_txn_take_withheld(txn_t *t, const op_withheld *w, uint64_t *fresh, uint64_t *present,
                              stm_error *err)
{
    *fresh = 0;
    s_origin *o;
    stm_err rc = s_origin_get(t, &w->origin, &o, err);
    /* Runs of sequences not held, each recorded as a row of its own (rows never
     * overlap), the rest counted as present. */
    uint64_t seq = w->seq, end_seq = w->seq + w->n - 1, run = 0;
    while (rc == STM_OK && seq <= end_seq) {
        bool held;
        uint64_t end;
        if ((rc = s_held(t, o, seq, &held, &end, err)) != STM_OK)
            break;
        if (!held) {
            if (!run)
                run = seq;
            seq++;
        } else {
            if (run) {
                rc = s_record_standin(t, o, w, run, seq - 1, err);
                *fresh += seq - run;
                run = 0;
            }
            /* Held by the vector: all of it up to there at once. */
            if (seq <= o->held && o->held > end)
                end = o->held;
            uint64_t to = end < end_seq ? end : end_seq;
            *present += to - seq + 1;
            seq = to + 1;
        }
    }
    if (rc == STM_OK && run) {
        rc = s_record_standin(t, o, w, run, end_seq, err);
        *fresh += end_seq - run + 1;
    }
    return rc;
}

stm_err stm_txn_take_new(txn_t *t, const op_t **ops, size_t n, size_t *fresh, uint64_t *present,
                         stm_error *err)
{
    *fresh = 0;
    s_origin *o;
    stm_err rc = s_origin_get(t, &ops[0]->origin, &o, err);
    uint64_t skip_to = 0;
    for (size_t i = 0; i < n && rc == STM_OK; i++) {
        bool held = ops[i]->seq <= skip_to;
        uint64_t end = 0;
        if (!held && (rc = s_held(t, o, ops[i]->seq, &held, &end, err)) != STM_OK)
            break;
        if (held) {
            (*present)++;
            if (end > skip_to)
                skip_to = end;
            continue;
        }
        ops[(*fresh)++] = ops[i];
    }
    /* Duplicates within the batch itself are held once recorded, so the same
     * sequence twice in a row is dropped here. */
    size_t kept = 0;
    for (size_t i = 0; i < *fresh; i++) {
        if (kept && ops[kept - 1]->seq == ops[i]->seq) {
            (*present)++;
            continue;
        }
        ops[kept++] = ops[i];
    }
    *fresh = kept;
    for (size_t i = 0; i < kept && rc == STM_OK;) {
        size_t j = i + 1;
        while (j < kept && ops[j]->seq == ops[j - 1]->seq + 1)
            j++;
        rc = s_record(t, o, ops + i, j - i, err);
        i = j;
    }
    return rc;
}

stm_err stm_txn_record_own(txn_t *t, const op_t *op, stm_error *err)
{
    s_origin *o;
    stm_err rc = s_origin_get(t, &t->node_id, &o, err);
    if (rc != STM_OK)
        return rc;
    /* Its sequence was taken past o->held already (stemma_local): record it as the
     * next, as local changes are. */
    o->held = op->seq - 1;
    return s_record(t, o, &op, 1, err);
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

/* ---- local changes ---- */

/* Notes that the row pk of table was deleted or made anew here (stm_txn_settle). */
static void s_note_settle(txn_t *t, const txn_table *table, const op_value *pk)
{
    op_t del;
    memset(&del, 0, sizeof del);
    del.table = stm_catalog_table_name(table->def);
    del.pk = *pk;
    stm_opbatch_add(t->settle, &del);
}

/* Stamps a local row change ops[0..n) of an identity table with its row's incarnation
 * (identity.h), before it is recorded: a row change that created its row makes a new
 * one, (its clock, this node), and the row's earlier incarnation, dead here, is kept
 * with its clocks in stemma_conflicts; any other names the row's current one.
 * t->clock holds the row's clocks (found: it has some); a new incarnation starts
 * them afresh. */
static stm_err s_stamp_local(txn_t *t, txn_table *table, op_t *const *ops, size_t n, bool found,
                             stm_error *err)
{
    identity_stamp s;
    stm_err rc = stm_identity_of_clock(t->store, &t->clock, &s, err);
    if (rc == STM_OK && ops[0]->creates) {
        if (found) {
            bool alive = false;
            rc = stm_identity_alive(t->store, &t->clock, &alive, err);
            if (rc == STM_OK)
                rc = stm_conflicts_save(t->conflicts, stm_catalog_table_name(table->def),
                                        &ops[0]->pk, &s, &t->clock, alive, err);
        }
        stm_rowclock_clear(&t->clock);
        s = (identity_stamp){.hlc = ops[0]->hlc, .origin = t->node_id};
        if (rc == STM_OK)
            rc = stm_identity_set_clock(t->store, &t->clock, &s, ops[0]->seq, err);
    }
    for (size_t k = 0; k < n; k++) {
        ops[k]->born_hlc = s.hlc;
        ops[k]->born_origin = s.origin;
    }
    return rc;
}

/* Records local operations (stm_capture_collect's) and enters them into stemma_clock
 * (invariant 4); a row of an identity table deleted or made anew is noted
 * (stm_txn_settle). */
static stm_err s_record_local(txn_t *t, opbatch_t *batch, stm_error *err)
{
    size_t n = stm_opbatch_count(batch);
    if (!n)
        return STM_OK;
    s_origin *o;
    stm_err rc = s_origin_get(t, &t->node_id, &o, err);
    op_t **ops = stm_calloc(n, sizeof *ops);
    for (size_t i = 0; i < n; i++)
        ops[i] = stm_opbatch_at_mut(batch, i);
    /* Local sequences were taken past o->held already: record them as the next. */
    o->held = ops[0]->seq - 1;
    int64_t origin_no = 0;
    if (rc == STM_OK)
        rc = stm_store_id_number(t->store, &t->node_id, true, &origin_no, err);
    for (size_t i = 0; i < n && rc == STM_OK;) {
        size_t j = i + 1;
        if (!stm_op_is_delete(ops[i]))
            while (j < n && stm_op_same_row_change(ops[i], ops[j]))
                j++;
        txn_table *table = stm_txn_table_find(t, ops[i]->table);
        bool found = false;
        if (table)
            rc = stm_txn_clock_read(t, table, &ops[i]->pk, &found, err);
        bool identity = table && table->identity;
        if (rc == STM_OK && identity)
            rc = s_stamp_local(t, table, ops + i, j - i, found, err);
        if (rc == STM_OK)
            rc = s_record(t, o, (const op_t *const *)(ops + i), j - i, err);
        for (size_t k = i; k < j && table && rc == STM_OK; k++) {
            const catalog_column *col =
                ops[k]->column ? stm_catalog_table_find(table->def, ops[k]->column) : NULL;
            if (stm_op_is_delete(ops[k]))
                stm_rowclock_set(&t->clock, ROWCLOCK_DELETE, NULL, ops[k]->hlc, origin_no,
                                 ops[k]->seq);
            else if (col)
                stm_rowclock_set(&t->clock, ROWCLOCK_CELL, col->name, ops[k]->hlc, origin_no,
                                 ops[k]->seq);
        }
        if (table && rc == STM_OK)
            rc = stm_txn_clock_write(t, table, &ops[i]->pk, !found, err);
        if (rc == STM_OK && identity && (stm_op_is_delete(ops[i]) || ops[i]->creates))
            s_note_settle(t, table, &ops[i]->pk);
        i = j;
    }
    free(ops);
    return rc;
}

stm_err stm_txn_record_made(txn_t *t, opbatch_t *batch, stm_error *err)
{
    return s_record_local(t, batch, err);
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
        rc = s_record_local(t, local, err);
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

/* Writes each touched origin's vector entry, moved up over what is now contiguous,
 * and keeps the local sequence above any operation of our own id received back
 * (invariant 5). */
static stm_err s_update_vectors(txn_t *t, stm_error *err)
{
    stm_err rc = STM_OK;
    for (size_t i = 0; i < t->norigins && rc == STM_OK; i++) {
        s_origin *o = &t->origins[i];
        if (!o->touched)
            continue;
        if (stm_id_equal(&o->id, &t->node_id)) {
            /* Its own operations from a peer, above what it issued: the sequences between
             * were never issued, and are marked so, not taken for pruned (oplog.h). */
            if (o->above && o->top > o->held &&
                (rc = stm_oplog_skip_gaps(t->log, &o->id, o->no, o->held, o->top, err)) != STM_OK)
                break;
            sqlite3_stmt *set = stm_stmtcache_fixed(t->stmts, Q_LOCAL_SEQ);
            if (!set)
                return stm_store_error(t->store, err, "updating the local sequence");
            sqlite3_bind_int64(set, 1, (sqlite3_int64)o->top);
            if (sqlite3_step(set) != SQLITE_DONE)
                rc = stm_store_error(t->store, err, "updating the local sequence");
            else if (t->listener.vector)
                t->listener.vector(t->listener.ctx, &o->id, o->top > o->held ? o->top : o->held);
            continue;
        }
        uint64_t seq = o->held;
        if (o->above && (rc = stm_oplog_contiguous(t->log, o->no, o->held, &seq, err)) != STM_OK)
            break;
        sqlite3_stmt *set = stm_stmtcache_fixed(t->stmts, Q_VECTOR_SET);
        if (!set)
            return stm_store_error(t->store, err, "updating the version vector");
        sqlite3_bind_blob(set, 1, o->id.bytes, STM_ID_BYTES, SQLITE_STATIC);
        sqlite3_bind_int64(set, 2, (sqlite3_int64)seq);
        if (sqlite3_step(set) != SQLITE_DONE)
            rc = stm_store_error(t->store, err, "updating the version vector");
        else if (t->listener.vector)
            t->listener.vector(t->listener.ctx, &o->id, seq);
        /* A pruned stand-in's row the vector now passes says no more than a gap. */
        for (size_t k = 0; k < t->npruned_rows && rc == STM_OK; k++) {
            oplog_row *row = &t->pruned_rows[k];
            if (!stm_id_equal(&row->origin_id, &o->id) || row->seq + row->n - 1 > seq)
                continue;
            row->origin = o->no;
            rc = stm_oplog_prune(t->log, row, NULL, NULL, err);
        }
    }
    t->npruned_rows = 0;
    return rc;
}

stm_err stm_txn_commit(txn_t *t, stm_error *err)
{
    stm_err rc = s_update_vectors(t, err);
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
