/* park.c - operations held back, and retrying them; the invariants are in park.h. Finding
 * what waits for the rows a transaction writes, and waking it, is park_watch.c's; the
 * wakes themselves park_wake.c's. */
#include "park_internal.h"
#include "base/mem.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

/* ?1 is a kind's name. One statement for a kind and another for every kind, not
 * "?1 IS NULL OR kind = ?1": SQLite cannot use stemma_parked_kind for that OR, and a
 * check after every batch would read every parked operation (a million took 0.2 s). */
static const char *const s_sql[Q_N] = {
    /* An upsert, not INSERT OR REPLACE, whose delete would fire no trigger: the
     * counts by reason (store.h) follow a reason replaced. */
    [Q_PARK] = ("INSERT INTO stemma_parked (origin, seq, kind, reason) VALUES (?1, ?2, ?3, ?4) "
                "ON CONFLICT (origin, seq) DO UPDATE SET kind = excluded.kind, "
                "reason = excluded.reason"),
    [Q_LIST] = "SELECT origin, seq FROM stemma_parked WHERE kind = ?1 ORDER BY origin, seq",
    [Q_CLEAR] = "DELETE FROM stemma_parked WHERE kind = ?1",
    [Q_ANY] = "SELECT 1 FROM stemma_parked WHERE kind = ?1 LIMIT 1",
    [Q_COUNT] = "SELECT count(*) FROM stemma_parked WHERE kind = ?1",
    [Q_LIST_ALL] = "SELECT origin, seq FROM stemma_parked ORDER BY origin, seq",
    [Q_CLEAR_ALL] = "DELETE FROM stemma_parked",
    [Q_ANY_ALL] = "SELECT 1 FROM stemma_parked LIMIT 1",
    [Q_COUNT_ALL] = "SELECT count(*) FROM stemma_parked",
    [Q_LIST_ADMITTED] = ("SELECT origin, seq FROM stemma_parked WHERE kind <> 'policy' "
                         "ORDER BY origin, seq"),
    [Q_CLEAR_ADMITTED] = "DELETE FROM stemma_parked WHERE kind <> 'policy'",
    [Q_ANY_ADMITTED] = "SELECT 1 FROM stemma_parked WHERE kind <> 'policy' LIMIT 1",
    [Q_COUNT_ADMITTED] = "SELECT count(*) FROM stemma_parked WHERE kind <> 'policy'",
    [Q_WAIT_ADD] = ("INSERT OR IGNORE INTO stemma_parked_wait (wake, origin, seq) "
                    "VALUES (?1, ?2, ?3)"),
    [Q_WAIT_DROP] = "DELETE FROM stemma_parked_wait WHERE origin = ?1 AND seq = ?2",
    [Q_WAIT_FIND] = "SELECT origin, seq FROM stemma_parked_wait WHERE wake = ?1",
    /* One seek (SQLite reads a lone min() off the index's edge): tables' wakes are
     * negative, anything's 0, rows' positive. */
    [Q_WAIT_SOME] = "SELECT min(wake) FROM stemma_parked_wait",
    [Q_WAIT_GEN] = "SELECT wait_gen FROM stemma_local WHERE id = 1",
    [Q_WAIT_CLEAR] = "DELETE FROM stemma_parked_wait",
    [Q_TAKE_ONE] = ("DELETE FROM stemma_parked WHERE origin = ?1 AND seq = ?2 AND "
                    "kind = 'constraint'"),
    [Q_WAIT_ROWS] = "SELECT wake FROM stemma_parked_wait WHERE wake > 0",
    [Q_WAIT_BUMP] = "UPDATE stemma_local SET wait_gen = wait_gen + 1 WHERE id = 1",
};

park_t *stm_park_new(store_t *store, oplog_t *log, park_warn_fn warn, void *ctx)
{
    park_t *p = stm_calloc(1, sizeof *p);
    p->store = store;
    p->log = log;
    p->stmts = stm_stmtcache_new(stm_store_db(store), s_sql, Q_N);
    p->watch.kinds_gen = -1;
    p->warn = warn;
    p->warn_ctx = ctx;
    return p;
}

void stm_park_destroy(park_t **self_p)
{
    park_t *p = *self_p;
    if (!p)
        return;
    stm_stmtcache_destroy(&p->stmts);
    for (size_t i = 0; i < p->nwarned; i++)
        free(p->warned[i]);
    free(p->warned);
    free(p->rows);
    free(p->tables);
    free(p->filter.bits);
    stm_buf_free(&p->form);
    stm_buf_free(&p->prefix);
    free(p);
    *self_p = NULL;
}

/* The name stemma_parked.kind holds for kind (not PARK_ANY). */
static const char *s_kind_name(park_kind kind)
{
    switch (kind) {
    case PARK_SCHEMA:
        return "schema";
    case PARK_CONSTRAINT:
        return "constraint";
    case PARK_AHEAD:
        return "ahead";
    case PARK_POLICY:
        return "policy";
    case PARK_ANY:
    case PARK_ADMITTED:
        break;
    }
    assert(!"no name for PARK_ANY or PARK_ADMITTED");
    return "";
}

/* Fixed statement q with ?1 bound to kind's name; its every-kind twin for PARK_ANY, its
 * every-kind-but-policy twin for PARK_ADMITTED. */
static sqlite3_stmt *s_of_kind(park_t *p, int q, park_kind kind)
{
    if (kind == PARK_ANY)
        return stm_stmtcache_fixed(p->stmts, (size_t)(q + Q_ALL));
    if (kind == PARK_ADMITTED)
        return stm_stmtcache_fixed(p->stmts, (size_t)(q + Q_ADMITTED));
    sqlite3_stmt *stmt = stm_stmtcache_fixed(p->stmts, (size_t)q);
    if (stmt)
        sqlite3_bind_text(stmt, 1, s_kind_name(kind), -1, SQLITE_STATIC);
    return stmt;
}

static void s_warn_once(park_t *p, const op_t *op, const char *reason)
{
    if (!p->warn || p->quiet)
        return;
    char origin[STM_ID_HEX_LEN + 1];
    stm_id_to_hex(&op->origin, origin);
    origin[12] = '\0';
    buf_t key = BUF_INIT;
    stm_buf_printf(&key, "%s/%s.%s", origin, op->table, op->column ? op->column : "");
    for (size_t i = 0; i < p->nwarned; i++) {
        if (strcmp(p->warned[i], stm_buf_str(&key)) == 0) {
            stm_buf_free(&key);
            return;
        }
    }
    p->warned = stm_grow(p->warned, &p->warned_cap, p->nwarned + 1, sizeof *p->warned);
    p->warned[p->nwarned++] = stm_buf_detach(&key);
    buf_t msg = BUF_INIT;
    stm_buf_printf(&msg, "parking operations from %s on %s%s%s: %s", origin, op->table,
                   op->column ? "." : "", op->column ? op->column : "", reason);
    p->warn(p->warn_ctx, stm_buf_str(&msg));
    stm_buf_free(&msg);
}

/* Runs fixed statement q, Q_WAIT_ADD or Q_WAIT_DROP, for the operation (origin
 * number no, seq), waiting for wake (Q_WAIT_ADD); or Q_TAKE_ONE for (origin, seq).
 * SQLite's result. */
int stm_park_run_op(park_t *p, int q, int64_t no, const stm_id *origin, uint64_t seq,
                    park_wake wake)
{
    sqlite3_stmt *stmt = stm_stmtcache_fixed(p->stmts, (size_t)q);
    if (!stmt)
        return SQLITE_ERROR;
    int at = 1;
    if (q == Q_WAIT_ADD)
        sqlite3_bind_int64(stmt, at++, (sqlite3_int64)wake);
    if (q == Q_TAKE_ONE)
        sqlite3_bind_blob(stmt, at++, origin->bytes, STM_ID_BYTES, SQLITE_STATIC);
    else
        sqlite3_bind_int64(stmt, at++, no);
    sqlite3_bind_int64(stmt, at, (sqlite3_int64)seq);
    int step = sqlite3_step(stmt);
    sqlite3_reset(stmt);
    return step;
}

/* Parks op as kind (its row in stemma_parked replaced, its wakes gone); *no is its
 * origin's number when some operation waits (its wakes name it so), else 0. */
static stm_err s_park(park_t *p, const op_t *op, park_kind kind, const char *reason, int64_t *no,
                      stm_error *err)
{
    s_warn_once(p, op, reason);
    *no = 0;
    /* Parked again: what it waited for before goes (invariant 4). */
    if (stm_park_waiting(p) || kind == PARK_CONSTRAINT) {
        stm_err rc = stm_store_id_number(p->store, &op->origin, true, no, err);
        if (rc != STM_OK)
            return rc;
    }
    if (stm_park_waiting(p)) {
        stm_err rc = stm_park_wakes_change(p, err);
        if (rc != STM_OK)
            return rc;
        if (stm_park_run_op(p, Q_WAIT_DROP, *no, NULL, op->seq, 0) != SQLITE_DONE)
            return stm_store_error(p->store, err, "parking an operation");
    }
    sqlite3_stmt *park = stm_stmtcache_fixed(p->stmts, Q_PARK);
    if (!park)
        return stm_store_error(p->store, err, "parking an operation");
    sqlite3_bind_blob(park, 1, op->origin.bytes, STM_ID_BYTES, SQLITE_STATIC);
    sqlite3_bind_int64(park, 2, (sqlite3_int64)op->seq);
    sqlite3_bind_text(park, 3, s_kind_name(kind), -1, SQLITE_STATIC);
    sqlite3_bind_text(park, 4, reason, -1, SQLITE_STATIC);
    if (sqlite3_step(park) != SQLITE_DONE)
        return stm_store_error(p->store, err, "parking an operation");
    return STM_OK;
}

stm_err stm_park_op(park_t *p, const op_t *op, park_kind kind, const char *reason, stm_error *err)
{
    if (kind == PARK_CONSTRAINT) {
        const park_wake any = PARK_WAKE_ANY;
        return stm_park_op_waiting(p, op, reason, &any, 1, err);
    }
    int64_t no;
    return s_park(p, op, kind, reason, &no, err);
}

stm_err stm_park_op_waiting(park_t *p, const op_t *op, const char *reason, const park_wake *wakes,
                            size_t n, stm_error *err)
{
    assert(n >= 1 && n <= PARK_WAKES_MAX);
    int64_t no;
    stm_err rc = s_park(p, op, PARK_CONSTRAINT, reason, &no, err);
    if (rc == STM_OK)
        rc = stm_park_wakes_change(p, err);
    for (size_t i = 0; i < n && rc == STM_OK; i++) {
        if (stm_park_run_op(p, Q_WAIT_ADD, no, NULL, op->seq, wakes[i]) != SQLITE_DONE)
            rc = stm_store_error(p->store, err, "parking an operation");
        /* Rows written from now on may free it: noted (invariant 5). */
        if (wakes[i] == PARK_WAKE_ANY) {
            p->watch.any = true;
        } else if (wakes[i] & PARK_WAKE_TABLE) {
            p->watch.tables = true;
        } else {
            p->watch.rows = true;
            park_filter *f = &p->filter;
            if (f->bits && f->held < f->room) {
                stm_park_filter_add(f, wakes[i]);
            } else if (f->bits) { /* too full to tell much: read again when needed */
                free(f->bits);
                f->bits = NULL;
            }
        }
    }
    return rc;
}

stm_err stm_park_release(park_t *p, const op_t *op, stm_error *err)
{
    int64_t no;
    stm_err rc = stm_store_id_number(p->store, &op->origin, false, &no, err);
    if (rc == STM_OK)
        rc = stm_park_wakes_change(p, err);
    if (rc == STM_OK &&
        (stm_park_run_op(p, Q_TAKE_ONE, 0, &op->origin, op->seq, 0) != SQLITE_DONE ||
         stm_park_run_op(p, Q_WAIT_DROP, no, NULL, op->seq, 0) != SQLITE_DONE))
        rc = stm_store_error(p->store, err, "taking a parked operation out");
    return rc;
}

bool stm_park_any(park_t *p, park_kind kind)
{
    sqlite3_stmt *q = s_of_kind(p, Q_ANY, kind);
    if (!q)
        return false;
    bool any = sqlite3_step(q) == SQLITE_ROW;
    sqlite3_reset(q);
    return any;
}

stm_err stm_park_count(park_t *p, park_kind kind, uint64_t *count, stm_error *err)
{
    *count = 0;
    sqlite3_stmt *q = s_of_kind(p, Q_COUNT, kind);
    if (!q || sqlite3_step(q) != SQLITE_ROW)
        return stm_store_error(p->store, err, "counting parked operations");
    *count = (uint64_t)sqlite3_column_int64(q, 0);
    sqlite3_reset(q);
    return STM_OK;
}

/* Takes the parked operations of kind out of stemma_parked into batch: the retry
 * parks again those that still cannot apply. */
static stm_err s_take(park_t *p, park_kind kind, opbatch_t *batch, stm_error *err)
{
    sqlite3_stmt *q = s_of_kind(p, Q_LIST, kind);
    if (!q)
        return stm_store_error(p->store, err, "reading parked operations");
    /* Collected first: fetching runs other statements on the same tables. */
    stm_id *origins = NULL;
    uint64_t *seqs = NULL;
    size_t n = 0, cap = 0, scap = 0;
    int step;
    while ((step = sqlite3_step(q)) == SQLITE_ROW) {
        if (sqlite3_column_bytes(q, 0) != STM_ID_BYTES)
            continue;
        origins = stm_grow(origins, &cap, n + 1, sizeof *origins);
        seqs = stm_grow(seqs, &scap, n + 1, sizeof *seqs);
        memcpy(origins[n].bytes, sqlite3_column_blob(q, 0), STM_ID_BYTES);
        seqs[n] = (uint64_t)sqlite3_column_int64(q, 1);
        n++;
    }
    stm_err rc =
        step == SQLITE_DONE ? STM_OK : stm_store_error(p->store, err, "reading parked operations");
    sqlite3_reset(q);
    for (size_t i = 0; i < n && rc == STM_OK; i++) {
        bool found;
        rc = stm_oplog_fetch(p->log, &origins[i], seqs[i], batch, &found, err);
    }
    free(origins);
    free(seqs);
    if (rc != STM_OK || !n)
        return rc;
    sqlite3_stmt *clear = s_of_kind(p, Q_CLEAR, kind);
    if (!clear)
        return stm_store_error(p->store, err, "retrying parked operations");
    if (sqlite3_step(clear) != SQLITE_DONE)
        return stm_store_error(p->store, err, "retrying parked operations");
    /* Every wake is an operation's parked for a constraint (invariant 4). */
    if (kind == PARK_CONSTRAINT || kind == PARK_ANY || kind == PARK_ADMITTED) {
        if ((rc = stm_park_wakes_change(p, err)) != STM_OK)
            return rc;
        sqlite3_stmt *waits = stm_stmtcache_fixed(p->stmts, Q_WAIT_CLEAR);
        if (!waits || sqlite3_step(waits) != SQLITE_DONE)
            return stm_store_error(p->store, err, "retrying parked operations");
        /* None waits, until they are parked again. */
        p->watch.rows = p->watch.tables = p->watch.any = false;
    }
    return STM_OK;
}

/* Gives ops[0..n) of batch to apply, quietly (invariant 3). */
stm_err stm_park_reapply(park_t *p, opbatch_t *batch, park_apply_fn apply, void *ctx,
                         uint64_t *applied, stm_error *err)
{
    *applied = 0;
    size_t n = stm_opbatch_count(batch);
    if (!n)
        return STM_OK;
    const op_t **ops = stm_calloc(n, sizeof *ops);
    for (size_t i = 0; i < n; i++)
        ops[i] = stm_opbatch_at(batch, i);
    p->quiet = true;
    stm_err rc = apply(ctx, ops, n, applied, err);
    p->quiet = false;
    free(ops);
    return rc;
}

stm_err stm_park_retry(park_t *p, park_kind kind, park_apply_fn apply, void *ctx,
                       uint64_t *replayed, stm_error *err)
{
    *replayed = 0;
    opbatch_t *batch = stm_opbatch_new();
    stm_err rc = s_take(p, kind, batch, err);
    if (rc == STM_OK)
        rc = stm_park_reapply(p, batch, apply, ctx, replayed, err);
    stm_opbatch_destroy(&batch);
    return rc;
}

stm_err stm_park_reasons(store_t *store, size_t max, park_reason **out, size_t *count,
                         stm_error *err)
{
    *out = NULL;
    *count = 0;
    sqlite3_stmt *stmt = NULL;
    /* From the counts kept by reason (store.h): as many rows as reasons, not parked
     * operations. A table before format 7 has none, and is counted. */
    sqlite3_stmt *has = NULL;
    bool kept = sqlite3_prepare_v2(stm_store_db(store),
                                   "SELECT 1 FROM sqlite_schema WHERE name = 'stemma_park_counts'",
                                   -1, &has, NULL) == SQLITE_OK &&
                sqlite3_step(has) == SQLITE_ROW;
    sqlite3_finalize(has);
    if (sqlite3_prepare_v2(stm_store_db(store),
                           kept ? "SELECT reason, n FROM stemma_park_counts WHERE n > 0 "
                                  "ORDER BY n DESC, reason LIMIT ?1"
                                : "SELECT reason, count(*) AS n FROM stemma_parked GROUP BY "
                                  "reason ORDER BY n DESC, reason LIMIT ?1",
                           -1, &stmt, NULL) != SQLITE_OK)
        return stm_store_error(store, err, "counting parked operations");
    /* The list is allocated before anything is read: max is the caller's bound. */
    assert(max <= PARK_REASONS_MAX);
    sqlite3_bind_int64(stmt, 1, (sqlite3_int64)max);
    park_reason *list = stm_calloc(max + 1, sizeof *list);
    size_t n = 0;
    int step;
    while ((step = sqlite3_step(stmt)) == SQLITE_ROW && n < max) {
        const char *reason = (const char *)sqlite3_column_text(stmt, 0);
        list[n].reason = stm_strdup(reason ? reason : "");
        list[n].count = (uint64_t)sqlite3_column_int64(stmt, 1);
        n++;
    }
    stm_err rc = step == SQLITE_DONE || step == SQLITE_ROW
                     ? STM_OK
                     : stm_store_error(store, err, "counting parked operations");
    sqlite3_finalize(stmt);
    if (rc != STM_OK) {
        stm_park_reasons_free(&list, n);
        return rc;
    }
    *out = list;
    *count = n;
    return STM_OK;
}

void stm_park_reasons_free(park_reason **list, size_t count)
{
    if (!*list)
        return;
    for (size_t i = 0; i < count; i++)
        free((*list)[i].reason);
    free(*list);
    *list = NULL;
}
