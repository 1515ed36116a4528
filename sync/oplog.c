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
static stm_err s_row_head(store_t *store, sqlite3_stmt *stmt, const stm_id *origin, op_t *op,
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
static void s_add_withheld(opbatch_t *out, const op_t *op, uint64_t seq, int64_t n, uint64_t after,
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
static void s_add_pruned(opbatch_t *out, const stm_id *origin, uint64_t first, uint64_t last,
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
    stm_err rc = s_row_head(store, stmt, origin, &op, &seq, &n, err);
    if (rc != STM_OK)
        return rc;
    uint64_t withheld, to;
    switch (stm_oplog_row_kind(stmt, &withheld)) {
    case OPLOG_ROW_WITHHELD:
        s_add_withheld(out, &op, seq, n, after, withheld, false);
        return STM_OK;
    case OPLOG_ROW_PRUNED:
        /* Pruned by whoever sent it: passed on as it came, in stand-ins of the bound. */
        for (uint64_t from = seq > after ? seq : after + 1; from < seq + (uint64_t)n; from = to + 1)
            s_add_pruned(out, origin, from, seq + (uint64_t)n - 1, &to);
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
        s_add_withheld(out, &op, seq, n, after, bytes, true);
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
            s_add_pruned(out, origin, from, op.seq - 1, &end);
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

/* ---- the reader ---- */

/* One origin's stream: a statement stepping through its row changes from `since`, and
 * the gaps between them that this database holds (at or below its vector entry): the
 * operations compaction pruned, handed out as pruned stand-ins (op.h). */
typedef struct {
    stm_id origin;
    uint64_t since;     /* hand out operations above this sequence */
    uint64_t held;      /* every operation up to here is held (the vector) */
    uint64_t next;      /* the first sequence not handed out yet */
    uint64_t gap_to;    /* next .. gap_to are pruned, to hand out first; below next: none */
    sqlite3_stmt *stmt; /* positioned on the next row change when `ready`; NULL: no rows */
    bool ready;         /* stmt holds a row not handed out yet */
    bool done;          /* no more rows */
} s_stream;

struct oplog_reader {
    store_t *store;    /* lent */
    s_stream *streams; /* one per origin */
    size_t count;
    uint64_t limit;     /* a row change over this many bytes is read as a stand-in */
    uint64_t max_value; /* so is one with a key or value over this many */
};

/* What a row change can take in a batch besides its cells, per operation: the array's
 * header, the indexes of its origin, version, table and column (5 bytes each at
 * most), its sequence, clock and incarnation (9, 9, 9 and 5), and its key's header
 * (the key itself is counted apart). 58 bytes; rounded up. */
#define S_OP_OVERHEAD 64u
/* And once per batch: the map, its keys, two origins and a version (34 bytes each),
 * the headers of the lists. */
#define S_BATCH_OVERHEAD 1024u

/* The most bytes the row change stmt is on can take in a batch of its own (codec.h): its
 * cells (each operation's column name, affinity and value; a name is sent once per
 * batch, so this counts it more often than it goes), then per operation its key and
 * S_OP_OVERHEAD, its table's name and the batch's own. Never below what
 * stm_codec_encode_ops makes of it alone, and above it by about 64 bytes an operation:
 * whether it may travel is told from this, before a byte of it is copied. */
static uint64_t s_change_bytes(sqlite3_stmt *stmt)
{
    /* A stand-in's row (or a skipped one) travels as one small stand-in, or nothing. */
    uint64_t value;
    if (stm_oplog_row_kind(stmt, &value) != OPLOG_ROW_CHANGE)
        return S_BATCH_OVERHEAD;
    uint64_t n = (uint64_t)sqlite3_column_int64(stmt, RC_N);
    int type = sqlite3_column_type(stmt, RC_PK);
    /* Only a text or blob key has a length worth asking (an integer asked would be
     * turned into text). */
    uint64_t key = type == SQLITE_TEXT || type == SQLITE_BLOB
                       ? (uint64_t)sqlite3_column_bytes(stmt, RC_PK)
                       : 9;
    uint64_t cells = sqlite3_column_type(stmt, RC_CELLS) == SQLITE_BLOB
                         ? (uint64_t)sqlite3_column_bytes(stmt, RC_CELLS)
                         : 0;
    return cells + n * (key + S_OP_OVERHEAD) + (uint64_t)sqlite3_column_bytes(stmt, RC_TBL) +
           S_BATCH_OVERHEAD;
}

/* From the row change holding since + 1 (it may have started below it), else from
 * since + 1: never from one wholly at or below since, which stepping onto would read
 * whole (a large row change was read for nothing, at every turn of the loop). Finding
 * it reads one row's seq and n (they lie before its cells), whatever the history. */
static const char *const s_select =
    "SELECT " RC_COLUMNS " FROM stemma_oplog WHERE origin = ?1 AND seq >= coalesce("
    "(SELECT seq FROM (SELECT seq, n FROM stemma_oplog WHERE origin = ?1 AND seq <= ?2 + 1 "
    "ORDER BY seq DESC LIMIT 1) WHERE seq + n - 1 > ?2), ?2 + 1) ORDER BY seq";

stm_err stm_oplog_reader_new(store_t *store, const vector_t *since, oplog_reader_t **out,
                             stm_error *err)
{
    vector_t *mine = NULL;
    stm_err rc = stm_vector_read(store, &mine, err);
    if (rc != STM_OK)
        return rc;
    oplog_reader_t *r = stm_calloc(1, sizeof *r);
    r->store = store;
    r->limit = OP_MAX_CHANGE_BYTES;
    r->max_value = OP_MAX_VALUE_BYTES;
    r->streams = stm_calloc(stm_vector_count(mine) + 1, sizeof *r->streams);
    for (size_t i = 0; i < stm_vector_count(mine) && rc == STM_OK; i++) {
        const vector_entry *e = stm_vector_at(mine, i);
        int64_t no;
        rc = stm_store_id_number(store, &e->origin, false, &no, err);
        if (rc != STM_OK)
            continue;
        s_stream *s = &r->streams[r->count];
        s->origin = e->origin;
        s->since = since ? stm_vector_get(since, &e->origin) : 0;
        s->held = e->seq;
        s->next = s->since + 1;
        /* An origin with no number has no rows: all it holds of it was pruned. */
        s->done = !no;
        if (no &&
            sqlite3_prepare_v2(stm_store_db(store), s_select, -1, &s->stmt, NULL) != SQLITE_OK) {
            rc = stm_store_error(store, err, "reading the oplog");
            break;
        }
        r->count++;
        if (!no)
            continue;
        sqlite3_bind_int64(s->stmt, 1, no);
        sqlite3_bind_int64(s->stmt, 2, (sqlite3_int64)s->since);
    }
    stm_vector_destroy(&mine);
    if (rc != STM_OK) {
        stm_oplog_reader_destroy(&r);
        return rc;
    }
    *out = r;
    return STM_OK;
}

void stm_oplog_reader_destroy(oplog_reader_t **self_p)
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

/* Makes sure stream s has its next row change, if any, and notes the gap before it (or,
 * at the end, before what is held ends) when this database holds it: pruned. */
static stm_err s_fill(oplog_reader_t *r, s_stream *s, stm_error *err)
{
    if (s->gap_to >= s->next)
        return STM_OK; /* the gap goes first */
    while (!s->ready && !s->done) {
        int step = sqlite3_step(s->stmt);
        if (step == SQLITE_ROW) {
            /* The first may lie wholly at or below since. */
            uint64_t seq = (uint64_t)sqlite3_column_int64(s->stmt, RC_SEQ);
            uint64_t n = (uint64_t)sqlite3_column_int64(s->stmt, RC_N);
            s->ready = seq + n - 1 > s->since;
            if (s->ready && seq > s->next && s->next <= s->held)
                s->gap_to = seq - 1 < s->held ? seq - 1 : s->held;
        } else if (step == SQLITE_DONE) {
            s->done = true;
        } else {
            return stm_store_error(r->store, err, "reading the oplog");
        }
    }
    if (s->done && s->next <= s->held)
        s->gap_to = s->held;
    return STM_OK;
}

void stm_oplog_reader_set_limit(oplog_reader_t *r, uint64_t limit, uint64_t max_value)
{
    r->limit = limit < OP_MAX_CHANGE_BYTES ? limit : OP_MAX_CHANGE_BYTES;
    r->max_value = max_value < OP_MAX_VALUE_BYTES ? max_value : OP_MAX_VALUE_BYTES;
}

stm_err stm_oplog_reader_next(oplog_reader_t *r, opbatch_t *batch, size_t max_ops, size_t max_bytes,
                              size_t *got, stm_error *err)
{
    *got = 0;
    /* What the batch holds against max_ops: its operations, and a pruned stand-in as
     * one, whatever it covers (it costs its receiver no row). */
    size_t work = 0;
    while (work < max_ops && stm_opbatch_bytes(batch) < max_bytes) {
        /* A gap first, whatever its place: it names nothing a clock orders. Else the
         * stream whose next row change has the smallest clock. */
        s_stream *best = NULL, *gap = NULL;
        uint64_t best_hlc = 0;
        for (size_t i = 0; i < r->count && !gap; i++) {
            s_stream *s = &r->streams[i];
            stm_err rc = s_fill(r, s, err);
            if (rc != STM_OK)
                return rc;
            if (s->gap_to >= s->next)
                gap = s;
            if (!s->ready)
                continue;
            uint64_t h = (uint64_t)sqlite3_column_int64(s->stmt, RC_HLC);
            if (!best || h < best_hlc)
                best = s, best_hlc = h;
        }
        if (gap) {
            uint64_t to;
            s_add_pruned(batch, &gap->origin, gap->next, gap->gap_to, &to);
            *got += (size_t)(to - gap->next + 1);
            gap->next = to + 1;
            work++;
            continue;
        }
        if (!best)
            break;
        /* A large row change goes alone, so that a batch is either of the usual size or
         * one row change: it is left for the next call when this one has read anything.
         * (One too large to travel is a small stand-in, which goes with the rest.) */
        uint64_t bytes = s_change_bytes(best->stmt);
        if (bytes > max_bytes && bytes <= r->limit && *got > 0)
            break;
        uint64_t before = stm_opbatch_covered(batch);
        size_t ops_before = stm_opbatch_count(batch),
               standins_before = stm_opbatch_withheld_count(batch);
        stm_err rc;
        if (bytes > r->limit) {
            /* Too large to travel: a stand-in goes in its place (op.h), and its values
             * are never copied. */
            op_t head;
            uint64_t seq;
            int64_t n;
            rc = s_row_head(r->store, best->stmt, &best->origin, &head, &seq, &n, err);
            if (rc == STM_OK)
                s_add_withheld(batch, &head, seq, n, best->since, bytes, true);
        } else {
            rc = stm_oplog_unpack(r->store, best->stmt, &best->origin, best->since, r->max_value, bytes,
                          batch, err);
        }
        if (rc != STM_OK)
            return rc;
        best->ready = false;
        uint64_t end = (uint64_t)sqlite3_column_int64(best->stmt, RC_SEQ) +
                       (uint64_t)sqlite3_column_int64(best->stmt, RC_N);
        if (end > best->next)
            best->next = end;
        *got += (size_t)(stm_opbatch_covered(batch) - before);
        work += stm_opbatch_count(batch) - ops_before;
        for (size_t i = standins_before; i < stm_opbatch_withheld_count(batch); i++) {
            const op_withheld *w = stm_opbatch_withheld_at(batch, i);
            work += w->pruned ? 1 : (size_t)w->n;
        }
    }
    return STM_OK;
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
