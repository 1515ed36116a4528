/* oplog.c - the oplog's storage: row changes recorded and looked up (oplog.h); reading
 * them back is oplog_read.c's. */
#include "oplog_internal.h"
#include "codec.h"
#include "base/buf.h"
#include "base/mem.h"
#include "stmtcache.h"

#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

static int s_write(void *data, const char *bytes, size_t len)
{
    stm_buf_append(data, bytes, len);
    return 0;
}

/* ---- the handle ---- */

enum { Q_APPEND, Q_HOLDS, Q_AFTER, Q_FETCH, Q_COUNT };

static const char *const s_sql[Q_COUNT] = {
    [Q_APPEND] = "INSERT INTO stemma_oplog (origin, seq, n, hlc, version, tbl, pk, cells, "
                 "pk_packed, born_hlc, born_origin, derived) "
                 "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    /* The row change that may hold ?2: the last one starting at or below it. */
    [Q_HOLDS] = "SELECT seq, n FROM stemma_oplog WHERE origin = ?1 AND seq <= ?2 "
                "ORDER BY seq DESC LIMIT 1",
    [Q_AFTER] = "SELECT seq, n FROM stemma_oplog WHERE origin = ?1 AND seq > ?2 ORDER BY seq",
    [Q_FETCH] = "SELECT " RC_COLUMNS " FROM stemma_oplog WHERE origin = ?1 AND seq <= ?2 "
                "ORDER BY seq DESC LIMIT 1",
};

struct oplog {
    store_t *store;     /* lent */
    stmtcache_t *stmts; /* by Q_*, owned */
    buf_t cells;        /* scratch for the cells being appended */
};

oplog_t *stm_oplog_new(store_t *store)
{
    oplog_t *log = stm_calloc(1, sizeof *log);
    log->store = store;
    log->stmts = stm_stmtcache_new(stm_store_db(store), s_sql, Q_COUNT);
    return log;
}

void stm_oplog_destroy(oplog_t **self_p)
{
    oplog_t *log = *self_p;
    if (!log)
        return;
    stm_stmtcache_destroy(&log->stmts);
    stm_buf_free(&log->cells);
    free(log);
    *self_p = NULL;
}

stm_err stm_oplog_append(oplog_t *log, const op_t *const *ops, size_t n, const char *table,
                         stm_error *err)
{
    const op_t *first = ops[0];
    int64_t origin, version;
    stm_err rc = stm_store_id_number(log->store, &first->origin, true, &origin, err);
    if (rc == STM_OK)
        rc = stm_store_id_number(log->store, &first->version_id, true, &version, err);
    if (rc != STM_OK)
        return rc;
    sqlite3_stmt *ins = stm_stmtcache_fixed(log->stmts, Q_APPEND);
    if (!ins)
        return stm_store_error(log->store, err, "recording operations");
    sqlite3_bind_int64(ins, 1, origin);
    sqlite3_bind_int64(ins, 2, (sqlite3_int64)first->seq);
    sqlite3_bind_int64(ins, 3, (sqlite3_int64)n);
    sqlite3_bind_int64(ins, 4, (sqlite3_int64)first->hlc);
    sqlite3_bind_int64(ins, 5, version);
    sqlite3_bind_text(ins, 6, table, -1, SQLITE_STATIC);
    /* A value SQLite refuses to bind (over its length limit) must not become NULL. */
    if (stm_op_value_bind(ins, 7, &first->pk) != SQLITE_OK)
        return stm_store_error(log->store, err, "recording an operation's key");
    if (first->pk.type == VALUE_KEY)
        sqlite3_bind_int(ins, 9, 1);
    if (first->derived)
        sqlite3_bind_int(ins, 12, 1);
    if (first->born_hlc) {
        int64_t born;
        if ((rc = stm_store_id_number(log->store, &first->born_origin, true, &born, err)) != STM_OK)
            return rc;
        sqlite3_bind_int64(ins, 10, (sqlite3_int64)first->born_hlc);
        sqlite3_bind_int64(ins, 11, born);
    }
    if (!stm_op_is_delete(first)) {
        stm_buf_reset(&log->cells);
        msgpack_packer pk;
        msgpack_packer_init(&pk, &log->cells, s_write);
        for (size_t i = 0; i < n; i++) {
            msgpack_pack_str_with_body(&pk, ops[i]->column, strlen(ops[i]->column));
            msgpack_pack_int(&pk, (unsigned char)ops[i]->affinity);
            stm_codec_pack_value(&pk, &ops[i]->value);
        }
        if (sqlite3_bind_blob64(ins, 8, log->cells.data, log->cells.len, SQLITE_STATIC) !=
            SQLITE_OK)
            return stm_store_error(log->store, err, "recording an operation's value");
    }
    if (sqlite3_step(ins) != SQLITE_DONE)
        return stm_store_error(log->store, err, "recording operations");
    return STM_OK;
}

stm_err stm_oplog_append_withheld(oplog_t *log, const op_withheld *w, uint64_t seq, uint64_t n,
                                  const char *table, stm_error *err)
{
    int64_t origin, version;
    stm_err rc = stm_store_id_number(log->store, &w->origin, true, &origin, err);
    if (rc == STM_OK)
        rc = stm_store_id_number(log->store, &w->version_id, true, &version, err);
    if (rc != STM_OK)
        return rc;
    sqlite3_stmt *ins = stm_stmtcache_fixed(log->stmts, Q_APPEND);
    if (!ins)
        return stm_store_error(log->store, err, "recording operations");
    sqlite3_bind_int64(ins, 1, origin);
    sqlite3_bind_int64(ins, 2, (sqlite3_int64)seq);
    sqlite3_bind_int64(ins, 3, (sqlite3_int64)n);
    sqlite3_bind_int64(ins, 4, (sqlite3_int64)w->hlc);
    sqlite3_bind_int64(ins, 5, version);
    sqlite3_bind_text(ins, 6, table, -1, SQLITE_STATIC);
    if (stm_op_value_bind(ins, 7, &w->pk) != SQLITE_OK)
        return stm_store_error(log->store, err, "recording an operation's key");
    if (w->pk.type == VALUE_KEY)
        sqlite3_bind_int(ins, 9, 1);
    stm_buf_reset(&log->cells);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &log->cells, s_write);
    msgpack_pack_map(&pk, 1);
    msgpack_pack_str_with_body(&pk, OPLOG_WITHHELD_KEY, strlen(OPLOG_WITHHELD_KEY));
    msgpack_pack_uint64(&pk, w->bytes);
    sqlite3_bind_blob64(ins, 8, log->cells.data, log->cells.len, SQLITE_STATIC);
    if (sqlite3_step(ins) != SQLITE_DONE)
        return stm_store_error(log->store, err, "recording a withheld row change");
    return STM_OK;
}

stm_err stm_oplog_holds(oplog_t *log, int64_t origin, uint64_t seq, uint64_t *end, stm_error *err)
{
    *end = 0;
    sqlite3_stmt *q = stm_stmtcache_fixed(log->stmts, Q_HOLDS);
    if (!q)
        return stm_store_error(log->store, err, "reading the oplog");
    sqlite3_bind_int64(q, 1, origin);
    sqlite3_bind_int64(q, 2, (sqlite3_int64)seq);
    int step = sqlite3_step(q);
    if (step == SQLITE_ROW) {
        uint64_t first = (uint64_t)sqlite3_column_int64(q, 0);
        uint64_t last = first + (uint64_t)sqlite3_column_int64(q, 1) - 1;
        if (last >= seq)
            *end = last;
    }
    sqlite3_reset(q);
    if (step != SQLITE_ROW && step != SQLITE_DONE)
        return stm_store_error(log->store, err, "reading the oplog");
    return STM_OK;
}

stm_err stm_oplog_contiguous(oplog_t *log, int64_t origin, uint64_t from, uint64_t *to,
                             stm_error *err)
{
    uint64_t end;
    stm_err rc = stm_oplog_holds(log, origin, from + 1, &end, err);
    if (rc != STM_OK)
        return rc;
    *to = from;
    if (!end)
        return STM_OK;
    sqlite3_stmt *q = stm_stmtcache_fixed(log->stmts, Q_AFTER);
    if (!q)
        return stm_store_error(log->store, err, "reading the oplog");
    sqlite3_bind_int64(q, 1, origin);
    sqlite3_bind_int64(q, 2, (sqlite3_int64)end);
    *to = end;
    int step;
    while ((step = sqlite3_step(q)) == SQLITE_ROW &&
           (uint64_t)sqlite3_column_int64(q, 0) == *to + 1)
        *to += (uint64_t)sqlite3_column_int64(q, 1);
    sqlite3_reset(q);
    if (step != SQLITE_ROW && step != SQLITE_DONE)
        return stm_store_error(log->store, err, "reading the oplog");
    return STM_OK;
}

stm_err stm_oplog_fetch(oplog_t *log, const stm_id *origin, uint64_t seq, opbatch_t *out,
                        bool *found, stm_error *err)
{
    *found = false;
    int64_t no;
    stm_err rc = stm_store_id_number(log->store, origin, false, &no, err);
    if (rc != STM_OK || !no)
        return rc;
    sqlite3_stmt *q = stm_stmtcache_fixed(log->stmts, Q_FETCH);
    if (!q)
        return stm_store_error(log->store, err, "reading the oplog");
    sqlite3_bind_int64(q, 1, no);
    sqlite3_bind_int64(q, 2, (sqlite3_int64)seq);
    int step = sqlite3_step(q);
    if (step == SQLITE_ROW) {
        uint64_t first = (uint64_t)sqlite3_column_int64(q, RC_SEQ);
        uint64_t n = (uint64_t)sqlite3_column_int64(q, RC_N);
        if (first + n > seq) {
            opbatch_t *all = stm_opbatch_new();
            rc = stm_oplog_row_unpack(log->store, q, origin, seq - 1, UINT64_MAX, 0, all, err);
            if (rc == STM_OK && stm_opbatch_count(all)) {
                stm_opbatch_add(out, stm_opbatch_at(all, 0));
                *found = true;
            }
            stm_opbatch_destroy(&all);
        }
    } else if (step != SQLITE_DONE) {
        rc = stm_store_error(log->store, err, "reading the oplog");
    }
    sqlite3_reset(q);
    return rc;
}
