/* rowsql.c - the statements that write one row (rowsql.h). */
#include "rowsql.h"
#include "key.h"
#include "stmtcache.h"
#include "base/buf.h"
#include "base/mem.h"
#include "lineage/sqlscript.h"

#include <stdlib.h>
#include <string.h>

struct rowsql {
    sqlite3 *db;       /* lent */
    txn_t *txn;        /* lent: its tables key the statements */
    stmtcache_t *rows; /* owned, keyed by (txn_table, kind, columns) */
    uint64_t epoch;    /* stm_txn_epoch when rows was last emptied */
};

rowsql_t *stm_rowsql_new(sqlite3 *db, txn_t *txn)
{
    rowsql_t *r = stm_calloc(1, sizeof *r);
    r->db = db;
    r->txn = txn;
    r->rows = stm_stmtcache_new(db, NULL, 0);
    r->epoch = stm_txn_epoch(txn);
    return r;
}

void stm_rowsql_destroy(rowsql_t **self_p)
{
    rowsql_t *r = *self_p;
    if (!r)
        return;
    stm_stmtcache_destroy(&r->rows);
    free(r);
    *self_p = NULL;
}

void stm_rowsql_sync(rowsql_t *r)
{
    /* The statements are keyed by the tables txn hands out, which it freed when it
     * read the schema again (stmtcache.h, invariant 2). */
    if (stm_txn_epoch(r->txn) != r->epoch) {
        stm_stmtcache_clear(r->rows);
        r->epoch = stm_txn_epoch(r->txn);
    }
}

/* The SQL of a row statement: ?1 .. ?k are the key's columns (k of them), ?k+1 ... the
 * cells in order that are not key columns (a key column's cell is the key itself, so
 * it is never written but through the key). */
static void s_row_sql(buf_t *sql, const txn_table *t, row_kind kind, const row_cell *cells,
                      size_t ncells)
{
    const catalog_table *def = stm_txn_table_def(t);
    const char *table = stm_catalog_table_name(def);
    size_t keys = stm_txn_table_keys(t), param = keys;
    switch (kind) {
    case ROW_EXISTS:
        stm_buf_puts(sql, "SELECT 1 FROM ");
        stm_sqlscript_quote_ident(sql, table);
        break;
    case ROW_DELETE:
        stm_buf_puts(sql, "DELETE FROM ");
        stm_sqlscript_quote_ident(sql, table);
        break;
    case ROW_UPDATE:
        stm_buf_puts(sql, "UPDATE ");
        stm_sqlscript_quote_ident(sql, table);
        stm_buf_puts(sql, " SET ");
        for (size_t i = 0; i < ncells; i++) {
            if (!stm_rowsql_sets(cells[i].col))
                continue;
            if (param > keys)
                stm_buf_puts(sql, ", ");
            stm_sqlscript_quote_ident(sql, cells[i].col->name);
            stm_buf_printf(sql, " = ?%zu", ++param);
        }
        break;
    case ROW_INSERT:
    case ROW_ADD:
        stm_buf_puts(sql, "INSERT INTO ");
        stm_sqlscript_quote_ident(sql, table);
        stm_buf_puts(sql, " (");
        for (size_t k = 0; k < keys; k++) {
            if (k)
                stm_buf_puts(sql, ", ");
            stm_sqlscript_quote_ident(sql, stm_catalog_table_key(def, k)->name);
        }
        for (size_t i = 0; i < ncells; i++) {
            if (cells[i].col->pk)
                continue;
            stm_buf_puts(sql, ", ");
            stm_sqlscript_quote_ident(sql, cells[i].col->name);
            param++;
        }
        stm_buf_puts(sql, ") VALUES (");
        for (size_t p = 1; p <= param; p++)
            stm_buf_printf(sql, p > 1 ? ", ?%zu" : "?%zu", p);
        stm_buf_puts(sql, ")");
        if (kind == ROW_ADD) {
            stm_buf_puts(sql, " ON CONFLICT (");
            for (size_t k = 0; k < keys; k++) {
                if (k)
                    stm_buf_puts(sql, ", ");
                stm_sqlscript_quote_ident(sql, stm_catalog_table_key(def, k)->name);
            }
            stm_buf_puts(sql, ") DO NOTHING");
        }
        return;
    }
    stm_buf_puts(sql, " WHERE ");
    stm_key_match_sql(sql, def);
}

size_t stm_rowsql_position(const txn_table *t, const catalog_column *col)
{
    return (size_t)(col - stm_catalog_table_column(stm_txn_table_def(t), 0));
}

/* The row statement for these cells (sorted by position), reset and unbound. */
static sqlite3_stmt *s_row_stmt_for(rowsql_t *a, const txn_table *t, row_kind kind,
                                    const row_cell *cells, size_t ncells)
{
    uint64_t mask = 0;
    bool fits = true;
    for (size_t i = 0; i < ncells; i++) {
        if (cells[i].position >= 64)
            fits = false;
        else
            mask |= 1ull << cells[i].position;
    }
    sqlite3_stmt *stmt = fits ? stm_stmtcache_get(a->rows, t, (int)kind, mask) : NULL;
    if (stmt)
        return stmt;
    /* Built once per shape; a table too wide for a mask is looked up by its SQL. */
    buf_t sql = BUF_INIT;
    s_row_sql(&sql, t, kind, cells, ncells);
    stmt = fits ? stm_stmtcache_add(a->rows, t, (int)kind, mask, stm_buf_str(&sql))
                : stm_stmtcache_sql(a->rows, stm_buf_str(&sql));
    stm_buf_free(&sql);
    return stmt;
}

/* Runs a row statement with the key's columns as ?1 .. ?k and the cells that are not
 * key columns as ?k+1, ... (s_row_sql). Returns SQLite's result; on a constraint
 * failure *refused holds the message. */
int stm_rowsql_run(rowsql_t *a, const txn_table *t, row_kind kind, const op_value *pk,
                   const row_cell *cells, size_t ncells, char **refused)
{
    sqlite3_stmt *stmt = s_row_stmt_for(a, t, kind, cells, ncells);
    if (!stmt)
        return sqlite3_errcode(a->db);
    int rc = SQLITE_OK;
    int param = 0;
    if (pk->type == VALUE_KEY) {
        op_value key[KEY_MAX_COLUMNS];
        size_t nkey = 0;
        if (!stm_key_values(pk, key, KEY_MAX_COLUMNS, &nkey) || nkey != stm_txn_table_keys(t))
            return SQLITE_MISMATCH; /* checked before: the key has the table's shape */
        for (size_t k = 0; k < nkey && rc == SQLITE_OK; k++)
            rc = stm_op_value_bind(stmt, ++param, &key[k]);
    } else {
        rc = stm_op_value_bind(stmt, ++param, pk);
    }
    for (size_t i = 0; i < ncells && rc == SQLITE_OK; i++)
        if (kind == ROW_UPDATE ? stm_rowsql_sets(cells[i].col) : !cells[i].col->pk)
            rc = stm_op_value_bind(stmt, ++param, &cells[i].value);
    if (rc != SQLITE_OK)
        return rc; /* e.g. SQLITE_TOOBIG: the batch fails rather than write NULL */
    rc = sqlite3_step(stmt);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW && (rc & 0xff) == SQLITE_CONSTRAINT)
        *refused = stm_strdup(sqlite3_errmsg(a->db));
    sqlite3_reset(stmt);
    return rc;
}

bool stm_rowsql_fatal(int rc)
{
    return rc != SQLITE_DONE && rc != SQLITE_ROW && (rc & 0xff) != SQLITE_CONSTRAINT &&
           (rc & 0xff) != SQLITE_MISMATCH;
}

static int s_by_position(const void *pa, const void *pb)
{
    const row_cell *a = pa, *b = pb;
    return a->position < b->position ? -1 : a->position > b->position;
}

bool stm_rowsql_sets(const catalog_column *c)
{
    return !c->pk || stm_key_collation_of(c) != KEY_BINARY;
}

void stm_rowsql_sort(row_cell *cells, size_t n)
{
    qsort(cells, n, sizeof *cells, s_by_position);
}
