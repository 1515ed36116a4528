#include "oplog.h"
#include "lineage/mem.h"

#include <stdlib.h>
#include <string.h>

/* One origin's stream: a statement stepping through its operations above `since`. */
typedef struct {
    sqlite3_stmt *stmt; /* positioned on the next row when `ready` */
    bool ready;         /* stmt holds a row not handed out yet */
    bool done;          /* no more rows */
} s_stream;

struct oplog_reader {
    store_t *store;     /* lent */
    s_stream *streams;  /* one per origin */
    size_t count;
};

static const char *const s_select = "SELECT " OPLOG_COLUMNS " FROM stemma_oplog "
                                   "WHERE origin = ?1 AND seq > ?2 ORDER BY seq";

static stm_err s_db_error(store_t *store, stm_error *err)
{
    return stm_error_set(err, STM_EDB, "%s: reading the oplog: %s", store_path(store),
                         sqlite3_errmsg(store_db(store)));
}

stm_err oplog_reader_new(store_t *store, const vector_t *since, oplog_reader_t **out,
                         stm_error *err)
{
    vector_t *mine = NULL;
    stm_err rc = vector_read(store, &mine, err);
    if (rc != STM_OK)
        return rc;
    oplog_reader_t *r = stm_calloc(1, sizeof *r);
    r->store = store;
    r->streams = stm_calloc(vector_count(mine) + 1, sizeof *r->streams);
    for (size_t i = 0; i < vector_count(mine); i++) {
        const vector_entry *e = vector_at(mine, i);
        s_stream *s = &r->streams[r->count];
        if (sqlite3_prepare_v2(store_db(store), s_select, -1, &s->stmt, NULL) != SQLITE_OK) {
            rc = s_db_error(store, err);
            break;
        }
        r->count++;
        sqlite3_bind_blob(s->stmt, 1, e->origin.bytes, STM_ID_BYTES, SQLITE_TRANSIENT);
        sqlite3_bind_int64(s->stmt, 2, since ? (sqlite3_int64)vector_get(since, &e->origin) : 0);
    }
    vector_destroy(&mine);
    if (rc != STM_OK) {
        oplog_reader_destroy(&r);
        return rc;
    }
    *out = r;
    return STM_OK;
}

void oplog_reader_destroy(oplog_reader_t **self_p)
{
    oplog_reader_t *r = *self_p;
    if (!r)
        return;
    for (size_t i = 0; i < r->count; i++)
        sqlite3_finalize(r->streams[i].stmt);
    free(r->streams);
    free(r);
    *self_p = NULL;
}

/* Makes sure stream s has its next row, if any. */
static stm_err s_fill(oplog_reader_t *r, s_stream *s, stm_error *err)
{
    if (s->ready || s->done)
        return STM_OK;
    int step = sqlite3_step(s->stmt);
    if (step == SQLITE_ROW)
        s->ready = true;
    else if (step == SQLITE_DONE)
        s->done = true;
    else
        return s_db_error(r->store, err);
    return STM_OK;
}

void oplog_row_read(sqlite3_stmt *stmt, op_t *op)
{
    memset(op, 0, sizeof *op);
    if (sqlite3_column_bytes(stmt, 0) == STM_ID_BYTES)
        memcpy(op->origin.bytes, sqlite3_column_blob(stmt, 0), STM_ID_BYTES);
    op->seq = (uint64_t)sqlite3_column_int64(stmt, 1);
    op->hlc = (uint64_t)sqlite3_column_int64(stmt, 2);
    if (sqlite3_column_bytes(stmt, 3) == STM_ID_BYTES)
        memcpy(op->version_id.bytes, sqlite3_column_blob(stmt, 3), STM_ID_BYTES);
    op->table = (const char *)sqlite3_column_text(stmt, 4);
    op_value_column(stmt, 5, &op->pk);
    op->column = (const char *)sqlite3_column_text(stmt, 6);
    const char *aff = (const char *)sqlite3_column_text(stmt, 7);
    op->affinity = op->column && aff ? aff[0] : 0;
    if (op->column)
        op_value_column(stmt, 8, &op->value);
}

/* Copies the current row of stmt into batch. */
static void s_take(sqlite3_stmt *stmt, opbatch_t *batch)
{
    op_t op;
    oplog_row_read(stmt, &op);
    opbatch_add(batch, &op);
}

stm_err oplog_reader_next(oplog_reader_t *r, opbatch_t *batch, size_t max_ops, size_t max_bytes,
                          size_t *got, stm_error *err)
{
    *got = 0;
    s_stream *last = NULL;
    uint64_t last_hlc = 0;
    for (;;) {
        bool full = *got >= max_ops || opbatch_bytes(batch) >= max_bytes;
        /* Finish the row change in progress before stopping. */
        if (full && last) {
            stm_err rc = s_fill(r, last, err);
            if (rc != STM_OK)
                return rc;
            if (!last->ready || (uint64_t)sqlite3_column_int64(last->stmt, 2) != last_hlc)
                break;
        } else if (full) {
            break;
        }
        /* The stream whose next operation has the smallest clock. */
        s_stream *best = NULL;
        uint64_t best_hlc = 0;
        for (size_t i = 0; i < r->count; i++) {
            s_stream *s = &r->streams[i];
            stm_err rc = s_fill(r, s, err);
            if (rc != STM_OK)
                return rc;
            if (!s->ready)
                continue;
            uint64_t h = (uint64_t)sqlite3_column_int64(s->stmt, 2);
            if (!best || h < best_hlc)
                best = s, best_hlc = h;
        }
        if (full)
            best = last; /* finishing a row change: same stream */
        if (!best)
            break;
        last_hlc = (uint64_t)sqlite3_column_int64(best->stmt, 2);
        s_take(best->stmt, batch);
        best->ready = false;
        last = best;
        (*got)++;
    }
    return STM_OK;
}

stm_err oplog_counts(store_t *store, uint64_t *total, uint64_t *parked, stm_error *err)
{
    sqlite3_stmt *stmt = NULL;
    if (sqlite3_prepare_v2(store_db(store),
                           "SELECT count(*), (SELECT count(*) FROM stemma_parked) FROM stemma_oplog",
                           -1, &stmt, NULL) != SQLITE_OK)
        return s_db_error(store, err);
    stm_err rc = STM_OK;
    if (sqlite3_step(stmt) == SQLITE_ROW) {
        *total = (uint64_t)sqlite3_column_int64(stmt, 0);
        *parked = (uint64_t)sqlite3_column_int64(stmt, 1);
    } else {
        rc = s_db_error(store, err);
    }
    sqlite3_finalize(stmt);
    return rc;
}

stm_err oplog_parked_reasons(store_t *store, size_t max, oplog_parked_reason **out, size_t *count,
                             stm_error *err)
{
    *out = NULL;
    *count = 0;
    sqlite3_stmt *stmt = NULL;
    if (sqlite3_prepare_v2(store_db(store),
                           "SELECT reason, count(*) AS n FROM stemma_parked GROUP BY reason "
                           "ORDER BY n DESC, reason LIMIT ?1",
                           -1, &stmt, NULL) != SQLITE_OK)
        return s_db_error(store, err);
    sqlite3_bind_int64(stmt, 1, (sqlite3_int64)max);
    oplog_parked_reason *list = stm_calloc(max + 1, sizeof *list);
    size_t n = 0;
    int step;
    while ((step = sqlite3_step(stmt)) == SQLITE_ROW && n < max) {
        const char *reason = (const char *)sqlite3_column_text(stmt, 0);
        list[n].reason = stm_strdup(reason ? reason : "");
        list[n].count = (uint64_t)sqlite3_column_int64(stmt, 1);
        n++;
    }
    stm_err rc = step == SQLITE_DONE || step == SQLITE_ROW ? STM_OK : s_db_error(store, err);
    sqlite3_finalize(stmt);
    if (rc != STM_OK) {
        oplog_parked_reasons_free(&list, n);
        return rc;
    }
    *out = list;
    *count = n;
    return STM_OK;
}

void oplog_parked_reasons_free(oplog_parked_reason **list, size_t count)
{
    if (!*list)
        return;
    for (size_t i = 0; i < count; i++)
        free((*list)[i].reason);
    free(*list);
    *list = NULL;
}
