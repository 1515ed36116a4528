/* capture_collect.c - turning what the capture triggers queued into operations
 * (stm_capture_collect, capture.h): read the queue and the rows above each mark, fold each
 * row's changes into one, and emit its writes with the next sequence numbers and
 * clocks. The triggers themselves are in capture.c. */
#include "capture.h"
#include "capture_internal.h"
#include "base/buf.h"
#include "base/clock.h"
#include "base/mem.h"
#include "lineage/sqlscript.h"

#include <stdlib.h>
#include <string.h>

/* ---- turning queued rows into operations ---- */

/* One stemma_pending row. Text lives in the collector's arena, at offsets, until
 * every row is read. */
typedef struct {
    int64_t id;
    const char *table; /* NUL-terminated, in the arena (at table_at while reading) */
    size_t table_at;
    op_value pk; /* text and blob bytes in the arena, at pk_at */
    size_t pk_at;
    bool del;
    int64_t mask;          /* bit i: captured column i changed; -1: all */
    const char *mask_text; /* or, for a wide table, '0' or '1' per column (at mask_at) */
    size_t mask_at;
    size_t mask_len;
    int64_t at; /* wall-clock ms of the change (capture.h) */
} s_pending;

typedef struct {
    s_pending *rows;
    size_t count, cap;
    buf_t arena;
    int64_t now;   /* wall-clock ms when collecting began: no change is later */
    size_t budget; /* rows still to take in this slice (SIZE_MAX: every one) */
    bool more;     /* some were left for the next slice */
    capture_cut *cuts; /* tables above whose new mark rows were left (capture_internal.h) */
    size_t ncuts, cuts_cap;
    int64_t last_id; /* the last stemma_pending row taken (0: none) */
} s_queue_t;

static int s_value_cmp(const op_value *a, const op_value *b)
{
    if (a->type != b->type)
        return a->type < b->type ? -1 : 1;
    switch (a->type) {
    case VALUE_NULL:
        return 0;
    case VALUE_INTEGER:
        return a->i < b->i ? -1 : a->i > b->i;
    case VALUE_REAL:
        return a->r < b->r ? -1 : a->r > b->r;
    case VALUE_TEXT:
    case VALUE_BLOB:
    case VALUE_KEY: {
        size_t n = a->len < b->len ? a->len : b->len;
        int c = n ? memcmp(a->bytes, b->bytes, n) : 0;
        return c ? c : (a->len < b->len ? -1 : a->len > b->len);
    }
    }
    return 0;
}

/* By table, then key, then queue order. */
static int s_by_row(const void *pa, const void *pb)
{
    const s_pending *a = pa, *b = pb;
    int c = strcmp(a->table, b->table);
    if (!c)
        c = s_value_cmp(&a->pk, &b->pk);
    return c ? c : (a->id < b->id ? -1 : a->id > b->id);
}

/* A run of queued rows for one table row, found by position in the sorted queue. */
typedef struct {
    size_t from, to; /* [from, to) in the sorted queue */
    int64_t first;   /* the id of its first row: row changes keep the order they began in */
} s_change;

static int s_by_first(const void *pa, const void *pb)
{
    const s_change *a = pa, *b = pb;
    return a->first < b->first ? -1 : a->first > b->first;
}

/* Reads the key of the queue row at stmt (SELECT * FROM stemma_pending: pk is column
 * 2, pk2 .. pkN columns 6 ..) into p, its bytes appended to the arena. A key of
 * several columns is packed (key.h); t is the row's table (NULL: not in the schema). */
static void s_read_key(sqlite3_stmt *stmt, const catalog_table *t, s_queue_t *q, s_pending *p)
{
    size_t keys = t ? stm_catalog_table_key_count(t) : 1;
    p->pk_at = q->arena.len;
    if (keys < 2 || keys > KEY_MAX_COLUMNS || (int)(keys + 5) > sqlite3_column_count(stmt)) {
        stm_op_value_column(stmt, 2, &p->pk);
        if (p->pk.type == VALUE_TEXT || p->pk.type == VALUE_BLOB)
            stm_buf_append(&q->arena, p->pk.bytes, p->pk.len);
        return;
    }
    op_value values[KEY_MAX_COLUMNS];
    stm_op_value_column(stmt, 2, &values[0]);
    for (size_t k = 1; k < keys; k++)
        stm_op_value_column(stmt, (int)k + 5, &values[k]);
    stm_key_pack(values, keys, &q->arena);
    memset(&p->pk, 0, sizeof p->pk);
    p->pk.type = VALUE_KEY;
    p->pk.len = q->arena.len - p->pk_at;
}

static stm_err s_read_queue(store_t *store, const catalog_t *catalog, s_queue_t *q, stm_error *err)
{
    if (q->budget == 0) { /* the rows above the marks took the slice */
        q->more = true;
        return STM_OK;
    }
    sqlite3_stmt *stmt = NULL;
    /* Every column: a key of several columns is queued in pk, pk2, pk3, ... (capture.c).
     * One more than the budget says whether some are left. */
    if (sqlite3_prepare_v2(stm_store_db(store), "SELECT * FROM stemma_pending ORDER BY id LIMIT ?1",
                           -1, &stmt, NULL) != SQLITE_OK)
        return stm_store_error(store, err, "reading stemma_pending");
    sqlite3_bind_int64(stmt, 1, q->budget == SIZE_MAX ? -1 : (sqlite3_int64)q->budget + 1);
    const catalog_table *t = NULL;
    int step;
    while ((step = sqlite3_step(stmt)) == SQLITE_ROW) {
        if (q->budget == 0) {
            q->more = true;
            break;
        }
        if (q->budget != SIZE_MAX)
            q->budget--;
        q->rows = stm_grow(q->rows, &q->cap, q->count + 1, sizeof *q->rows);
        s_pending *p = &q->rows[q->count++];
        memset(p, 0, sizeof *p);
        p->id = sqlite3_column_int64(stmt, 0);
        p->table_at = q->arena.len;
        const char *tbl = (const char *)sqlite3_column_text(stmt, 1);
        stm_buf_puts(&q->arena, tbl ? tbl : "");
        stm_buf_putc(&q->arena, '\0');
        /* Queued rows come table by table, mostly. */
        if (!t || !tbl || sqlite3_stricmp(stm_catalog_table_name(t), tbl) != 0)
            t = tbl ? stm_catalog_find(catalog, tbl) : NULL;
        s_read_key(stmt, t, q, p);
        p->del = sqlite3_column_int(stmt, 3) != 0;
        if (sqlite3_column_type(stmt, 4) == SQLITE_TEXT) {
            p->mask_text = "";
            p->mask_at = q->arena.len;
            p->mask_len = (size_t)sqlite3_column_bytes(stmt, 4);
            stm_buf_append(&q->arena, sqlite3_column_text(stmt, 4), p->mask_len);
        } else {
            p->mask = sqlite3_column_int64(stmt, 4);
        }
        p->at =
            sqlite3_column_type(stmt, 5) == SQLITE_INTEGER ? sqlite3_column_int64(stmt, 5) : q->now;
        q->last_id = p->id;
    }
    sqlite3_finalize(stmt);
    if (step != SQLITE_DONE && step != SQLITE_ROW)
        return stm_store_error(store, err, "reading stemma_pending");
    return STM_OK;
}

/* Adds one queue row for every row of t whose key is above its mark: inserts the
 * trigger left to be found. They count as queued before anything else (id 0), at the
 * time the first of them recorded on the mark row (every one was inserted at or after
 * it), or now when none did. */
static stm_err s_scan_mark(store_t *store, const catalog_table *t, sqlite3_stmt *row, void *ctx,
                           stm_error *err)
{
    s_queue_t *q = ctx;
    const char *key = stm_catalog_table_key(t, 0)->name; /* a marked table has one */
    buf_t sql = BUF_INIT;
    stm_buf_puts(&sql, "SELECT ");
    stm_sqlscript_quote_ident(&sql, key);
    stm_buf_puts(&sql, " FROM ");
    stm_sqlscript_quote_ident(&sql, stm_catalog_table_name(t));
    stm_buf_puts(&sql, " WHERE ");
    stm_sqlscript_quote_ident(&sql, key);
    /* In key order, one more than the budget: a slice takes the lowest keys, and the
     * mark moves to the last of them. */
    stm_buf_puts(&sql, " > ?1 ORDER BY ");
    stm_sqlscript_quote_ident(&sql, key);
    stm_buf_puts(&sql, " LIMIT ?2");
    sqlite3_stmt *stmt = NULL;
    if (sqlite3_prepare_v2(stm_store_db(store), stm_buf_str(&sql), -1, &stmt, NULL) != SQLITE_OK) {
        stm_buf_free(&sql);
        return stm_store_error(store, err, "reading new rows");
    }
    stm_buf_free(&sql);
    sqlite3_bind_value(stmt, 1, sqlite3_column_value(row, 1));
    sqlite3_bind_int64(stmt, 2, q->budget == SIZE_MAX ? -1 : (sqlite3_int64)q->budget + 1);
    int64_t at =
        sqlite3_column_type(row, 2) == SQLITE_INTEGER ? sqlite3_column_int64(row, 2) : q->now;
    size_t taken = 0;
    int step;
    while ((step = sqlite3_step(stmt)) == SQLITE_ROW) {
        if (q->budget == 0) {
            /* Left for the next slice: the mark stops at the last key taken (none: where
             * it is). A marked table's key is an integer (capture.c), and the rows above
             * it came in order. */
            q->more = true;
            q->cuts = stm_grow(q->cuts, &q->cuts_cap, q->ncuts + 1, sizeof *q->cuts);
            q->cuts[q->ncuts++] = (capture_cut){
                t, taken ? q->rows[q->count - 1].pk.i : sqlite3_column_int64(row, 1)};
            break;
        }
        taken++;
        if (q->budget != SIZE_MAX)
            q->budget--;
        q->rows = stm_grow(q->rows, &q->cap, q->count + 1, sizeof *q->rows);
        s_pending *p = &q->rows[q->count++];
        memset(p, 0, sizeof *p);
        p->table_at = q->arena.len;
        stm_buf_puts(&q->arena, stm_catalog_table_name(t));
        stm_buf_putc(&q->arena, '\0');
        stm_op_value_column(stmt, 0, &p->pk);
        p->pk_at = q->arena.len;
        if (p->pk.type == VALUE_TEXT || p->pk.type == VALUE_BLOB)
            stm_buf_append(&q->arena, p->pk.bytes, p->pk.len);
        p->mask = -1;
        p->at = at;
    }
    sqlite3_finalize(stmt);
    return step == SQLITE_DONE || step == SQLITE_ROW ? STM_OK
                                                     : stm_store_error(store, err, "reading new rows");
}

/* Once every row is read, the arena stops moving: offsets become pointers. */
static void s_resolve(s_queue_t *q)
{
    for (size_t i = 0; i < q->count; i++) {
        s_pending *p = &q->rows[i];
        p->table = q->arena.data + p->table_at;
        if (p->pk.type == VALUE_TEXT || p->pk.type == VALUE_BLOB || p->pk.type == VALUE_KEY)
            p->pk.bytes = q->arena.data + p->pk_at;
        if (p->mask_text)
            p->mask_text = q->arena.data + p->mask_at;
    }
}

/* The statement reading a table's captured columns by key, one per table met. */
typedef struct {
    const catalog_table *table;
    sqlite3_stmt *stmt;
} s_reader;

static sqlite3_stmt *s_row_reader(store_t *store, s_reader **readers, size_t *n, size_t *cap,
                                  const catalog_table *t)
{
    for (size_t i = 0; i < *n; i++)
        if ((*readers)[i].table == t) {
            sqlite3_reset((*readers)[i].stmt);
            return (*readers)[i].stmt;
        }
    buf_t sql = BUF_INIT;
    stm_buf_puts(&sql, "SELECT ");
    int k = 0;
    for (size_t i = 0; i < stm_catalog_table_count(t); i++) {
        const catalog_column *c = stm_catalog_table_column(t, i);
        if (!stm_capture_captured(c))
            continue;
        if (k++)
            stm_buf_puts(&sql, ", ");
        stm_sqlscript_quote_ident(&sql, c->name);
    }
    stm_buf_puts(&sql, " FROM ");
    stm_sqlscript_quote_ident(&sql, stm_catalog_table_name(t));
    stm_buf_puts(&sql, " WHERE ");
    stm_key_match_sql(&sql, t);
    sqlite3_stmt *stmt = NULL;
    if (sqlite3_prepare_v2(stm_store_db(store), stm_buf_str(&sql), -1, &stmt, NULL) != SQLITE_OK)
        stmt = NULL;
    stm_buf_free(&sql);
    if (stmt) {
        *readers = stm_grow(*readers, cap, *n + 1, sizeof **readers);
        (*readers)[(*n)++] = (s_reader){t, stmt};
    }
    return stmt;
}

/* The local writer's state, ticked as operations are made. */
typedef struct {
    stm_id node_id, version_id;
    uint64_t hlc, seq;
    int64_t now;   /* wall-clock ms when collecting began */
    bool *changed; /* scratch: which columns of the row at hand changed */
    size_t changed_cap;
} s_writer;

/* The clock of a row change made at ms (its last change's time): max(previous + 1,
 * ms << 16), so monotonic and ahead of every clock seen here (txn.h, invariant 3). A
 * change cannot be later than its collection: a time after now (a clock set back
 * since, or a queue row not written by the trigger) counts as now; one before 1970
 * as 0. */
static uint64_t s_tick(s_writer *w, int64_t ms)
{
    if (ms > w->now)
        ms = w->now;
    uint64_t wall = ms > 0 ? (uint64_t)ms << 16 : 0;
    w->hlc = wall > w->hlc + 1 ? wall : w->hlc + 1;
    return w->hlc;
}

/* Emits the operations of one row's queued changes rows[0..n), in queue order. */
static stm_err s_emit(store_t *store, const catalog_table *t, sqlite3_stmt *reader,
                      const s_pending *rows, size_t n, s_writer *w, opbatch_t *out, stm_error *err)
{
    size_t ncols = (size_t)stm_capture_captured_count(t);
    w->changed = stm_grow(w->changed, &w->changed_cap, ncols + 1, sizeof *w->changed);
    bool *changed = w->changed;
    memset(changed, 0, ncols * sizeof *changed);
    bool deleted = false, inserted = false;
    /* The row's changes fold into its last state: they take the time of the last. */
    int64_t at = rows[n - 1].at;
    for (size_t i = 0; i < n; i++) {
        const s_pending *p = &rows[i];
        if (p->del) {
            deleted = true;
            memset(changed, 0, ncols * sizeof *changed);
            continue;
        }
        /* Only an insert queues every column as -1 (capture.c). */
        inserted |= !p->mask_text && p->mask == -1;
        for (size_t c = 0; c < ncols; c++) {
            if (p->mask_text)
                changed[c] |= c < p->mask_len && p->mask_text[c] == '1';
            else
                changed[c] |= p->mask == -1 || (c < 64 && ((uint64_t)p->mask >> c & 1u));
        }
    }
    op_t op;
    memset(&op, 0, sizeof op);
    op.origin = w->node_id;
    op.version_id = w->version_id;
    op.table = stm_catalog_table_name(t);
    op.pk = rows[0].pk;
    stm_err rc = STM_OK;
    op_value key[KEY_MAX_COLUMNS];
    size_t nkey = 0;
    bool bound = stm_key_values(&op.pk, key, KEY_MAX_COLUMNS, &nkey);
    for (size_t k = 0; bound && k < nkey; k++)
        bound = stm_op_value_bind(reader, (int)k + 1, &key[k]) == SQLITE_OK;
    if (!bound) {
        rc = stm_store_error(store, err, "reading a changed row");
        goto done;
    }
    int step = sqlite3_step(reader);
    if (step != SQLITE_ROW && step != SQLITE_DONE) {
        rc = stm_store_error(store, err, "reading a changed row");
        goto done;
    }
    if (deleted) {
        op.seq = ++w->seq;
        op.hlc = s_tick(w, at);
        stm_opbatch_add(out, &op);
    }
    if (step == SQLITE_ROW) {
        op.hlc = s_tick(w, at);
        /* The row is there now: after a delete it came back by an insert, every column
         * of it new. That insert may not be queued at all: one above the mark is found
         * by its key and counts as queued first, before the delete it followed. */
        op.creates = inserted || deleted;
        if (deleted)
            memset(changed, 1, ncols * sizeof *changed);
        int k = 0;
        for (size_t i = 0; i < stm_catalog_table_count(t); i++) {
            const catalog_column *c = stm_catalog_table_column(t, i);
            if (!stm_capture_captured(c))
                continue;
            if (changed[k]) {
                op.column = c->name;
                op.affinity = stm_capture_affinity_code(c->affinity);
                stm_op_value_column(reader, k, &op.value);
                op.seq = ++w->seq;
                stm_opbatch_add(out, &op);
            }
            k++;
        }
    }
done:
    sqlite3_reset(reader);
    return rc;
}

static stm_err s_read_writer(store_t *store, s_writer *w, stm_error *err)
{
    sqlite3_stmt *stmt = NULL;
    if (sqlite3_prepare_v2(stm_store_db(store),
                           "SELECT node_id, version_id, hlc, seq FROM stemma_local WHERE id = 1",
                           -1, &stmt, NULL) != SQLITE_OK)
        return stm_store_error(store, err, "reading stemma_local");
    stm_err rc = STM_OK;
    if (sqlite3_step(stmt) == SQLITE_ROW && sqlite3_column_bytes(stmt, 0) == STM_ID_BYTES &&
        sqlite3_column_bytes(stmt, 1) == STM_ID_BYTES) {
        memcpy(w->node_id.bytes, sqlite3_column_blob(stmt, 0), STM_ID_BYTES);
        memcpy(w->version_id.bytes, sqlite3_column_blob(stmt, 1), STM_ID_BYTES);
        w->hlc = (uint64_t)sqlite3_column_int64(stmt, 2);
        w->seq = (uint64_t)sqlite3_column_int64(stmt, 3);
    } else {
        rc = stm_error_set(err, STM_ECORRUPT, "%s: stemma_local is missing or damaged",
                           stm_store_path(store));
    }
    sqlite3_finalize(stmt);
    return rc;
}

/* Writes the local clock and sequence w has ticked to back to stemma_local. */
static stm_err s_write_writer(store_t *store, const s_writer *w, stm_error *err)
{
    sqlite3_stmt *stmt = NULL;
    stm_err rc = STM_OK;
    if (sqlite3_prepare_v2(stm_store_db(store),
                           "UPDATE stemma_local SET hlc = ?1, seq = ?2 WHERE id = 1", -1, &stmt,
                           NULL) != SQLITE_OK)
        return stm_store_error(store, err, "updating stemma_local");
    sqlite3_bind_int64(stmt, 1, (sqlite3_int64)w->hlc);
    sqlite3_bind_int64(stmt, 2, (sqlite3_int64)w->seq);
    if (sqlite3_step(stmt) != SQLITE_DONE)
        rc = stm_store_error(store, err, "updating stemma_local");
    sqlite3_finalize(stmt);
    return rc;
}

stm_err stm_capture_collect(store_t *store, const catalog_t *catalog, opbatch_t *out,
                            stm_error *err)
{
    bool more;
    return stm_capture_collect_some(store, catalog, out, SIZE_MAX, &more, err);
}

stm_err stm_capture_collect_some(store_t *store, const catalog_t *catalog, opbatch_t *out,
                                 size_t max_rows, bool *more, stm_error *err)
{
    /* The rows above the marks first (they count as queued before anything else), then
     * the queue in order, as far as the budget goes. */
    s_queue_t q = {.now = stm_wall_ms(), .budget = max_rows ? max_rows : 1};
    s_writer w = {.now = q.now};
    stm_err rc = stm_capture_each_mark(store, catalog, s_scan_mark, &q, err);
    if (rc == STM_OK)
        rc = s_read_queue(store, catalog, &q, err);
    *more = q.more;
    if (rc != STM_OK || q.count == 0)
        goto done;
    s_resolve(&q);
    if ((rc = s_read_writer(store, &w, err)) != STM_OK)
        goto done;
    int64_t last_id = 0;
    for (size_t i = 0; i < q.count; i++)
        if (q.rows[i].id > last_id)
            last_id = q.rows[i].id;
    qsort(q.rows, q.count, sizeof *q.rows, s_by_row);
    s_change *changes = stm_calloc(q.count, sizeof *changes);
    size_t nchanges = 0;
    for (size_t i = 0; i < q.count;) {
        size_t j = i + 1;
        while (j < q.count && strcmp(q.rows[i].table, q.rows[j].table) == 0 &&
               s_value_cmp(&q.rows[i].pk, &q.rows[j].pk) == 0)
            j++;
        changes[nchanges++] = (s_change){i, j, q.rows[i].id};
        i = j;
    }
    qsort(changes, nchanges, sizeof *changes, s_by_first);
    s_reader *readers = NULL;
    size_t nreaders = 0, readers_cap = 0;
    for (size_t i = 0; i < nchanges && rc == STM_OK; i++) {
        const s_pending *rows = &q.rows[changes[i].from];
        const catalog_table *t = stm_catalog_find(catalog, rows->table);
        /* A table dropped, or no longer synced, since its rows were queued: its
         * changes went with it. A key with a NULL in it is no row anyone can address. */
        if (!t || stm_syncable_classify(t, false) != SYNCABLE_SYNCED ||
            stm_key_columns(&rows->pk) != stm_catalog_table_key_count(t) ||
            stm_key_has_null(&rows->pk))
            continue;
        sqlite3_stmt *reader = s_row_reader(store, &readers, &nreaders, &readers_cap, t);
        if (!reader) {
            rc = stm_store_error(store, err, "reading a changed row");
            break;
        }
        rc = s_emit(store, t, reader, rows, changes[i].to - changes[i].from, &w, out, err);
    }
    for (size_t i = 0; i < nreaders; i++)
        sqlite3_finalize(readers[i].stmt);
    free(readers);
    free(changes);
    if (rc != STM_OK)
        goto done;
    rc = s_write_writer(store, &w, err);
    sqlite3_stmt *stmt = NULL;
    if (rc == STM_OK) {
        if (sqlite3_prepare_v2(stm_store_db(store), "DELETE FROM stemma_pending WHERE id <= ?1", -1,
                               &stmt, NULL) != SQLITE_OK)
            rc = stm_store_error(store, err, "emptying stemma_pending");
        else {
            sqlite3_bind_int64(stmt, 1, last_id);
            if (sqlite3_step(stmt) != SQLITE_DONE)
                rc = stm_store_error(store, err, "emptying stemma_pending");
        }
        sqlite3_finalize(stmt);
    }
    if (rc == STM_OK)
        rc = stm_capture_mark_cut(store, catalog, q.cuts, q.ncuts, err);
done:
    free(q.cuts);
    free(w.changed);
    free(q.rows);
    stm_buf_free(&q.arena);
    return rc;
}

stm_err stm_capture_next_op(store_t *store, op_t *op, stm_error *err)
{
    s_writer w = {.now = stm_wall_ms()};
    stm_err rc = s_read_writer(store, &w, err);
    if (rc != STM_OK)
        return rc;
    op->origin = w.node_id;
    op->version_id = w.version_id;
    op->seq = ++w.seq;
    op->hlc = s_tick(&w, w.now);
    return s_write_writer(store, &w, err);
}

stm_err stm_capture_reserve(store_t *store, uint64_t n, op_t *proto, stm_error *err)
{
    s_writer w = {.now = stm_wall_ms()};
    stm_err rc = s_read_writer(store, &w, err);
    if (rc != STM_OK)
        return rc;
    proto->origin = w.node_id;
    proto->version_id = w.version_id;
    proto->seq = w.seq + 1;
    w.seq += n;
    return s_write_writer(store, &w, err);
}
