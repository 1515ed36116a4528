/* oplog_prune.c - the oplog as compaction (compact.h) reads and shrinks it: stored rows
 * in key order a slice at a time, and a row removed but for the operations still
 * needed, which stay as rows of their own. What is removed leaves a gap below the
 * vector, which the reader hands a peer that lacks it as a pruned stand-in (oplog.h). */
#include "oplog.h"
#include "oplog_internal.h"
#include "base/buf.h"
#include "base/mem.h"
#include "codec.h"

#include <msgpack.h>

#include <stdlib.h>
#include <string.h>

/* The origin's number, after the RC_* columns of Q_SLICE. */
#define S_ORIGIN_COLUMN (RC_DERIVED + 1)

stm_err stm_oplog_slice(oplog_t *log, int64_t origin, uint64_t seq, size_t max, opbatch_t *ops,
                        oplog_row **rows, size_t *count, stm_error *err)
{
    store_t *store = stm_oplog_store(log);
    *rows = NULL;
    *count = 0;
    stm_opbatch_clear(ops);
    sqlite3_stmt *q = stm_oplog_stmt(log, OPLOG_Q_SLICE);
    if (!q)
        return stm_store_error(store, err, "reading the oplog");
    sqlite3_bind_int64(q, 1, origin);
    sqlite3_bind_int64(q, 2, (sqlite3_int64)seq);
    sqlite3_bind_int64(q, 3, (sqlite3_int64)max);
    oplog_row *list = stm_calloc(max + 1, sizeof *list);
    size_t n = 0;
    stm_err rc = STM_OK;
    int step;
    while (rc == STM_OK && (step = sqlite3_step(q)) == SQLITE_ROW && n < max) {
        oplog_row *row = &list[n];
        row->origin = sqlite3_column_int64(q, S_ORIGIN_COLUMN);
        row->seq = (uint64_t)sqlite3_column_int64(q, RC_SEQ);
        row->n = (uint64_t)sqlite3_column_int64(q, RC_N);
        uint64_t value;
        row->kind = stm_oplog_row_kind(q, &value);
        row->first = stm_opbatch_count(ops);
        rc = stm_store_id_of(store, row->origin, &row->origin_id, err);
        /* A row change's operations, every one (however large: they are what
         * compaction weighs), but those pruned before. */
        if (rc == STM_OK && row->kind == OPLOG_ROW_CHANGE)
            rc = stm_oplog_unpack(store, q, &row->origin_id, 0, UINT64_MAX, 0, ops, err);
        row->count = stm_opbatch_count(ops) - row->first;
        n++;
    }
    if (rc == STM_OK && step != SQLITE_ROW && step != SQLITE_DONE)
        rc = stm_store_error(store, err, "reading the oplog");
    sqlite3_reset(q);
    if (rc != STM_OK) {
        free(list);
        stm_opbatch_clear(ops);
        return rc;
    }
    *rows = list;
    *count = n;
    return STM_OK;
}

static int s_write(void *data, const char *bytes, size_t len)
{
    stm_buf_append(data, bytes, len);
    return 0;
}

stm_err stm_oplog_prune(oplog_t *log, const oplog_row *row, const opbatch_t *ops, const bool *live,
                        stm_error *err)
{
    store_t *store = stm_oplog_store(log);
    size_t stay = 0;
    for (size_t i = 0; live && i < row->count; i++)
        stay += live[i];
    int64_t gone = (int64_t)(row->kind == OPLOG_ROW_CHANGE ? row->count - stay : row->n);
    /* A pruned stand-in's row was never counted (store.h). */
    if (row->kind == OPLOG_ROW_WITHHELD)
        stm_store_count(store, -gone, -gone, gone);
    else if (row->kind == OPLOG_ROW_CHANGE)
        stm_store_count(store, -gone, 0, gone);
    sqlite3_stmt *q = stm_oplog_stmt(log, stay ? OPLOG_Q_HOLES : OPLOG_Q_REMOVE);
    if (!q)
        return stm_store_error(store, err, "pruning the oplog");
    buf_t cells = BUF_INIT;
    if (stay) {
        /* Its place kept: each operation pruned a nil (oplog.h). */
        msgpack_packer pk;
        msgpack_packer_init(&pk, &cells, s_write);
        size_t k = 0;
        for (uint64_t seq = row->seq; seq < row->seq + row->n; seq++) {
            const op_t *op = k < row->count ? stm_opbatch_at(ops, row->first + k) : NULL;
            if (!op || op->seq != seq) {
                msgpack_pack_nil(&pk);
                continue;
            }
            if (live[k++]) {
                msgpack_pack_str_with_body(&pk, op->column, strlen(op->column));
                msgpack_pack_int(&pk, (unsigned char)op->affinity);
                stm_codec_pack_value(&pk, &op->value);
            } else {
                msgpack_pack_nil(&pk);
            }
        }
        sqlite3_bind_blob64(q, 3, cells.data, cells.len, SQLITE_STATIC);
    }
    sqlite3_bind_int64(q, 1, row->origin);
    sqlite3_bind_int64(q, 2, (sqlite3_int64)row->seq);
    int step = sqlite3_step(q);
    sqlite3_reset(q);
    stm_buf_free(&cells);
    return step == SQLITE_DONE ? STM_OK : stm_store_error(store, err, "pruning the oplog");
}
