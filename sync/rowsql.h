/* rowsql.h - the statements that write one row of a synced table, by its key.
 *
 * The applier decides which cells of a row change win (apply.c); this module writes
 * what it decided. One statement per (table, kind, set of columns), prepared once and
 * kept until the schema is read again (stmtcache.h, invariant 2):
 *
 *   ROW_EXISTS  SELECT 1 ... WHERE key        is the row there?
 *   ROW_UPDATE  UPDATE ... SET cells WHERE key
 *   ROW_INSERT  INSERT (key, cells)
 *   ROW_ADD     INSERT (key, cells) ON CONFLICT (key) DO NOTHING
 *   ROW_DELETE  DELETE ... WHERE key
 *
 * The key's columns are parameters ?1 .. ?k (k = the table's key columns, key.h);
 * the cells that are not key columns follow. A key column's cell is the key itself,
 * so it is never written but through the key, except by ROW_UPDATE in a column whose
 * collation folds text: there the cell may spell the key another way the table
 * holds as the same ('ann' for 'Ann' under NOCASE), and the later spelling wins.
 * Names in the SQL are the local catalog's, quoted; nothing a peer sent is ever
 * spliced into it. */
#ifndef STM_ROWSQL_H
#define STM_ROWSQL_H

#include "op.h"
#include "txn.h"
#include "lineage/catalog.h"

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum { ROW_EXISTS, ROW_UPDATE, ROW_INSERT, ROW_ADD, ROW_DELETE } row_kind;

/* One cell to write: a local column and its value. */
typedef struct {
    const catalog_column *col;
    size_t position; /* the column's index in the table (stm_rowsql_position) */
    uint64_t seq;    /* the sequence of the operation that wrote it */
    op_value value;  /* lent by the caller */
} row_cell;

typedef struct rowsql rowsql_t;

/* Row statements on db (lent; it must outlive them), for the tables of txn (lent):
 * when txn reads the schema again, the statements go (stm_rowsql_sync). The caller
 * owns the result (stm_rowsql_destroy). */
rowsql_t *stm_rowsql_new(sqlite3 *db, txn_t *txn);
void stm_rowsql_destroy(rowsql_t **self_p);
/* After txn started: drops the statements when it read the schema again. */
void stm_rowsql_sync(rowsql_t *r);

/* The position of col in t's declaration. */
size_t stm_rowsql_position(const txn_table *t, const catalog_column *col);
/* True when ROW_UPDATE sets column c's cell: any column but a key column that
 * compares byte for byte. */
bool stm_rowsql_sets(const catalog_column *c);
/* Sorts cells by position, the order stm_rowsql_run wants them in. */
void stm_rowsql_sort(row_cell *cells, size_t n);

/* Runs the kind statement on the row of t whose key is pk, with cells[0..n) (sorted
 * by position). Returns SQLite's result (SQLITE_DONE, or SQLITE_ROW for ROW_EXISTS
 * when the row is there); on a constraint failure *refused is SQLite's message (the
 * caller frees it). */
int stm_rowsql_run(rowsql_t *r, const txn_table *t, row_kind kind, const op_value *pk,
                   const row_cell *cells, size_t n, char **refused);
/* True when a result of stm_rowsql_run must abort the whole batch (the disk, the
 * lock), as opposed to a refusal that parks the row's operations. */
bool stm_rowsql_fatal(int rc);

#endif
