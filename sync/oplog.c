#include "oplog.h"
#include "oplog_internal.h"
#include "codec.h"
#include "key.h"
#include "base/buf.h"
#include "base/mem.h"
#include "msgread.h"
#include "stmtcache.h"

#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

static stm_err s_corrupt(store_t *store, stm_error *err, uint64_t seq)
{
    return stm_error_set(err, STM_ECORRUPT,
                         "%s: stemma_oplog: the row change at sequence %llu is damaged",
                         stm_store_path(store), (unsigned long long)seq);
}

/* ---- row changes ---- */


/* A stand-in's cells (op.h): a map {"withheld": bytes}, or {"pruned": n} for one of
 * operations pruned received above a gap (stm_oplog_append_pruned), where a row
 * change's cells begin with a column name (a str). An older stemma takes such a row for
 * damage and says so: it never reads it as operations. */
#define S_WITHHELD_KEY "withheld"
#define S_PRUNED_KEY "pruned"
/* A skipped row's cells: the byte MessagePack never uses (0xc1), which no row change's
 * cells begin with; one the upgrade from format 6 can write in SQL (store_layout.c). */
#define S_SKIPPED_CELLS 0xc1
#define S_WITHHELD_MAX_CELLS 32 /* a map of one key and a uint64 takes 19 bytes */

oplog_row_kind stm_oplog_row_kind(sqlite3_stmt *stmt, uint64_t *bytes)
{
    /* A skipped row names no row and has no clock; a row change damaged into the byte
     * 0xc1 has both, and is damage. */
    if (sqlite3_column_type(stmt, RC_CELLS) == SQLITE_BLOB &&
        sqlite3_column_bytes(stmt, RC_CELLS) == 1 && sqlite3_column_int64(stmt, RC_HLC) == 0 &&
        sqlite3_column_type(stmt, RC_PK) == SQLITE_NULL &&
        *(const unsigned char *)sqlite3_column_blob(stmt, RC_CELLS) == S_SKIPPED_CELLS) {
        *bytes = (uint64_t)sqlite3_column_int64(stmt, RC_N);
        return OPLOG_ROW_SKIPPED;
    }
    if (sqlite3_column_type(stmt, RC_CELLS) != SQLITE_BLOB ||
        sqlite3_column_bytes(stmt, RC_CELLS) > S_WITHHELD_MAX_CELLS)
        return OPLOG_ROW_CHANGE;
    msgread_t r;
    stm_msgread_init(&r, sqlite3_column_blob(stmt, RC_CELLS),
                     (size_t)sqlite3_column_bytes(stmt, RC_CELLS));
    uint32_t nkeys, klen;
    const char *key;
    if (stm_msgread_peek(&r) != MSG_MAP || !stm_msgread_map(&r, &nkeys) || nkeys != 1 ||
        !stm_msgread_str(&r, &key, &klen) || !stm_msgread_uint(&r, bytes) ||
        stm_msgread_left(&r) != 0)
        return OPLOG_ROW_CHANGE;
    if (klen == strlen(S_WITHHELD_KEY) && memcmp(key, S_WITHHELD_KEY, klen) == 0)
        return OPLOG_ROW_WITHHELD;
    if (klen == strlen(S_PRUNED_KEY) && memcmp(key, S_PRUNED_KEY, klen) == 0)
        return OPLOG_ROW_PRUNED;
    return OPLOG_ROW_CHANGE;
}

/* Reads what the operations of the row change stmt is on share (origin, clock,
 * version, table, key, incarnation) into op; its first sequence and count into *seq
 * and *n. */
stm_err stm_oplog_row_head(store_t *store, sqlite3_stmt *stmt, const stm_id *origin, op_t *op,
                          uint64_t *seq, int64_t *n, stm_error *err)
{
    memset(op, 0, sizeof *op);
    op->origin = *origin;
    *seq = (uint64_t)sqlite3_column_int64(stmt, RC_SEQ);
    *n = sqlite3_column_int64(stmt, RC_N);
    op->hlc = (uint64_t)sqlite3_column_int64(stmt, RC_HLC);
    stm_err rc =
        stm_store_id_of(store, sqlite3_column_int64(stmt, RC_VERSION), &op->version_id, err);
    if (rc != STM_OK)
        return rc;
    op->table = (const char *)sqlite3_column_text(stmt, RC_TBL);
    stm_op_value_column(stmt, RC_PK, &op->pk);
    if (sqlite3_column_int(stmt, RC_PK_PACKED)) {
        if (op->pk.type != VALUE_BLOB)
            return s_corrupt(store, err, *seq);
        op->pk.type = VALUE_KEY;
        if (stm_key_columns(&op->pk) < 2)
            return s_corrupt(store, err, *seq);
    }
    if (!op->table || *n < 1)
        return s_corrupt(store, err, *seq);
    op->derived = sqlite3_column_int(stmt, RC_DERIVED) != 0;
    if (sqlite3_column_type(stmt, RC_BORN_HLC) == SQLITE_INTEGER) {
        op->born_hlc = (uint64_t)sqlite3_column_int64(stmt, RC_BORN_HLC);
        rc = stm_store_id_of(store, sqlite3_column_int64(stmt, RC_BORN_ORIGIN), &op->born_origin,
                             err);
        if (rc != STM_OK)
            return rc;
    }
    return STM_OK;
}

/* Appends to out a stand-in for the operations above after of the row change op heads
 * (seq .. seq + n - 1), of the given bytes; here: read from the row change itself. */
void stm_oplog_add_withheld(opbatch_t *out, const op_t *op, uint64_t seq, int64_t n, uint64_t after,
                           uint64_t bytes, bool here)
{
    uint64_t first = seq > after ? seq : after + 1;
    op_withheld w = {.origin = op->origin,
                     .seq = first,
                     .n = seq + (uint64_t)n - first,
                     .hlc = op->hlc,
                     .version_id = op->version_id,
                     .table = op->table,
                     .pk = op->pk,
                     .bytes = bytes,
                     .here = here};
    stm_opbatch_add_withheld(out, &w);
}

/* Appends to out a pruned stand-in (op.h) for operations first .. last of origin, at most
 * CODEC_MAX_BATCH_OPS of them (a stand-in's bound); *to is the last it covers. */
void stm_oplog_add_pruned(opbatch_t *out, const stm_id *origin, uint64_t first, uint64_t last,
                         uint64_t *to)
{
    *to = last - first >= CODEC_MAX_BATCH_OPS ? first + CODEC_MAX_BATCH_OPS - 1 : last;
    op_withheld w = {.origin = *origin,
                     .seq = first,
                     .n = *to - first + 1,
                     .table = OP_PRUNED_TABLE,
                     .pk = {.type = VALUE_NULL},
                     .pruned = true};
    stm_opbatch_add_withheld(out, &w);
}

/* oplog_internal.h */
stm_err stm_oplog_unpack(store_t *store, sqlite3_stmt *stmt, const stm_id *origin, uint64_t after,
                        uint64_t max_value, uint64_t bytes, opbatch_t *out, stm_error *err)
{
    op_t op;
    uint64_t seq;
    int64_t n;
    stm_err rc = stm_oplog_row_head(store, stmt, origin, &op, &seq, &n, err);
    if (rc != STM_OK)
        return rc;
    uint64_t withheld, to;
    switch (stm_oplog_row_kind(stmt, &withheld)) {
    case OPLOG_ROW_WITHHELD:
        stm_oplog_add_withheld(out, &op, seq, n, after, withheld, false);
        return STM_OK;
    case OPLOG_ROW_PRUNED:
        /* Pruned by whoever sent it: passed on as it came, in stand-ins of the bound. */
        for (uint64_t from = seq > after ? seq : after + 1; from < seq + (uint64_t)n; from = to + 1)
            stm_oplog_add_pruned(out, origin, from, seq + (uint64_t)n - 1, &to);
        return STM_OK;
    case OPLOG_ROW_SKIPPED:
        return STM_OK; /* never issued: nothing to hand out */
    case OPLOG_ROW_CHANGE:
        break;
    }
    if (sqlite3_column_type(stmt, RC_CELLS) == SQLITE_NULL) {
        if (n != 1)
            return s_corrupt(store, err, seq);
        op.seq = seq;
        if (seq > after)
            stm_opbatch_add(out, &op);
        return STM_OK;
    }
    msgread_t r;
    stm_msgread_init(&r, sqlite3_column_blob(stmt, RC_CELLS),
                     (size_t)sqlite3_column_bytes(stmt, RC_CELLS));
    /* Checked whole first, so that a damaged row adds nothing. */
    msgread_t check = r;
    bool too_large = op.pk.len > max_value;
    for (int64_t i = 0; i < n; i++) {
        const char *data;
        uint32_t len;
        int64_t aff;
        if (stm_msgread_peek(&check) == MSG_NIL && stm_msgread_nil(&check))
            continue; /* pruned */
        if (!stm_msgread_str(&check, &data, &len) || len > OP_MAX_NAME_BYTES ||
            !stm_msgread_int(&check, &aff) || aff <= 0 || aff > 127 ||
            !stm_codec_read_value(&check, &op.value))
            return s_corrupt(store, err, seq);
        too_large = too_large || op.value.len > max_value;
    }
    if (stm_msgread_left(&check))
        return s_corrupt(store, err, seq);
    if (too_large) {
        stm_oplog_add_withheld(out, &op, seq, n, after, bytes, true);
        return STM_OK;
    }
    char name[OP_MAX_NAME_BYTES + 1];
    uint64_t hole = 0; /* the first of the pruned run being read; 0: none */
    for (int64_t i = 0; i <= n; i++) {
        op.seq = seq + (uint64_t)i;
        if (i < n && stm_msgread_peek(&r) == MSG_NIL) {
            stm_msgread_nil(&r);
            if (!hole)
                hole = op.seq;
            continue;
        }
        /* A run of operations compaction pruned out of the row change: a gap, handed
         * out as one (oplog.h, "Gaps"). */
        uint64_t from = hole > after ? hole : after + 1, end;
        for (; hole && from < op.seq; from = end + 1)
            stm_oplog_add_pruned(out, origin, from, op.seq - 1, &end);
        hole = 0;
        if (i == n)
            break;
        const char *data;
        uint32_t len;
        int64_t aff;
        stm_msgread_str(&r, &data, &len);
        stm_msgread_int(&r, &aff);
        stm_codec_read_value(&r, &op.value);
        memcpy(name, data, len);
        name[len] = '\0';
        op.column = name;
        op.affinity = (char)aff;
        if (op.seq > after)
            stm_opbatch_add(out, &op);
    }
    return STM_OK;
}

static int s_write(void *data, const char *bytes, size_t len)
{
    stm_buf_append(data, bytes, len);
    return 0;
}

/* ---- the handle ---- */

enum { Q_APPEND, Q_HOLDS, Q_AFTER, Q_FETCH, Q_SLICE = OPLOG_Q_SLICE, Q_REMOVE = OPLOG_Q_REMOVE,
       Q_HOLES = OPLOG_Q_HOLES, Q_COUNT };

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
    /* Compaction's (oplog_prune.c): the rows after a place, in key order. */
    [Q_SLICE] = "SELECT " RC_COLUMNS ", origin FROM stemma_oplog WHERE (origin, seq) > (?1, ?2) "
                "ORDER BY origin, seq LIMIT ?3",
    [Q_REMOVE] = "DELETE FROM stemma_oplog WHERE origin = ?1 AND seq = ?2",
    [Q_HOLES] = "UPDATE stemma_oplog SET cells = ?3 WHERE origin = ?1 AND seq = ?2",
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

store_t *stm_oplog_store(oplog_t *log)
{
    return log->store;
}

sqlite3_stmt *stm_oplog_stmt(oplog_t *log, int q)
{
    return stm_stmtcache_fixed(log->stmts, (size_t)q);
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
    stm_store_count(log->store, (int64_t)n, 0, 0);
    return STM_OK;
}

/* Records a stand-in's row (op.h): operations seq .. seq + n - 1 of w's origin, under
 * the name table, its cells the map {key: value}. */
static stm_err s_append_standin(oplog_t *log, const op_withheld *w, uint64_t seq, uint64_t n,
                                const char *table, const char *key, uint64_t value,
                                stm_error *err)
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
    msgpack_pack_str_with_body(&pk, key, strlen(key));
    msgpack_pack_uint64(&pk, value);
    sqlite3_bind_blob64(ins, 8, log->cells.data, log->cells.len, SQLITE_STATIC);
    if (sqlite3_step(ins) != SQLITE_DONE)
        return stm_store_error(log->store, err, "recording a stand-in");
    return STM_OK;
}

stm_err stm_oplog_append_withheld(oplog_t *log, const op_withheld *w, uint64_t seq, uint64_t n,
                                  const char *table, stm_error *err)
{
    stm_err rc = s_append_standin(log, w, seq, n, table, S_WITHHELD_KEY, w->bytes, err);
    if (rc == STM_OK)
        stm_store_count(log->store, (int64_t)n, (int64_t)n, 0);
    return rc;
}

stm_err stm_oplog_append_pruned(oplog_t *log, const stm_id *origin, uint64_t seq, uint64_t n,
                                stm_error *err)
{
    op_withheld w = {.origin = *origin, .pk = {.type = VALUE_NULL}, .pruned = true};
    return s_append_standin(log, &w, seq, n, OP_PRUNED_TABLE, S_PRUNED_KEY, n, err);
}

stm_err stm_oplog_append_skipped(oplog_t *log, const stm_id *origin, uint64_t seq, uint64_t n,
                                 stm_error *err)
{
    const stm_id zero = {{0}};
    int64_t no, version;
    stm_err rc = stm_store_id_number(log->store, origin, true, &no, err);
    if (rc == STM_OK)
        rc = stm_store_id_number(log->store, &zero, true, &version, err);
    if (rc != STM_OK)
        return rc;
    sqlite3_stmt *ins = stm_stmtcache_fixed(log->stmts, Q_APPEND);
    if (!ins)
        return stm_store_error(log->store, err, "recording skipped sequences");
    static const unsigned char cells = S_SKIPPED_CELLS;
    sqlite3_bind_int64(ins, 1, no);
    sqlite3_bind_int64(ins, 2, (sqlite3_int64)seq);
    sqlite3_bind_int64(ins, 3, (sqlite3_int64)n);
    sqlite3_bind_int64(ins, 4, 0);
    sqlite3_bind_int64(ins, 5, version);
    sqlite3_bind_text(ins, 6, OP_PRUNED_TABLE, -1, SQLITE_STATIC);
    sqlite3_bind_blob(ins, 8, &cells, 1, SQLITE_STATIC);
    return sqlite3_step(ins) == SQLITE_DONE
               ? STM_OK
               : stm_store_error(log->store, err, "recording skipped sequences");
}

stm_err stm_oplog_skip_gaps(oplog_t *log, const stm_id *origin, int64_t no, uint64_t from,
                            uint64_t to, stm_error *err)
{
    sqlite3_stmt *q = stm_stmtcache_fixed(log->stmts, Q_AFTER);
    if (!q)
        return stm_store_error(log->store, err, "reading the oplog");
    /* Collected first: recording them writes the table being read. */
    uint64_t (*gaps)[2] = NULL, next = from + 1;
    size_t ngaps = 0, cap = 0;
    sqlite3_bind_int64(q, 1, no);
    sqlite3_bind_int64(q, 2, (sqlite3_int64)from);
    int step;
    while ((step = sqlite3_step(q)) == SQLITE_ROW) {
        uint64_t seq = (uint64_t)sqlite3_column_int64(q, 0);
        if (seq > to)
            break;
        if (seq > next) {
            gaps = stm_grow(gaps, &cap, ngaps + 1, sizeof *gaps);
            gaps[ngaps][0] = next;
            gaps[ngaps++][1] = seq - next;
        }
        uint64_t end = seq + (uint64_t)sqlite3_column_int64(q, 1);
        next = end > next ? end : next;
    }
    sqlite3_reset(q);
    stm_err rc = step == SQLITE_ROW || step == SQLITE_DONE
                     ? STM_OK
                     : stm_store_error(log->store, err, "reading the oplog");
    for (size_t i = 0; i < ngaps && rc == STM_OK; i++)
        rc = stm_oplog_append_skipped(log, origin, gaps[i][0], gaps[i][1], err);
    free(gaps);
    return rc;
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
            rc = stm_oplog_unpack(log->store, q, origin, seq - 1, UINT64_MAX, 0, all, err);
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

stm_err stm_oplog_counts(store_t *store, uint64_t *total, uint64_t *parked, stm_error *err)
{
    return stm_oplog_counts_withheld(store, total, parked, NULL, err);
}

stm_err stm_oplog_counts_withheld(store_t *store, uint64_t *total, uint64_t *parked,
                                  uint64_t *withheld, stm_error *err)
{
    store_counts c;
    stm_err rc = stm_store_counts(store, &c, err);
    if (rc == STM_OK) {
        *total = c.operations;
        *parked = c.parked;
        if (withheld)
            *withheld = c.withheld;
    }
    return rc;
}
