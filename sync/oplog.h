/* oplog.h - reading operations out of a database's oplog, in causal order.
 *
 * The reader hands out what a peer lacks: for every origin this database holds
 * operations of, those above the peer's vector entry. Within an origin operations go
 * in sequence order; across origins they are merged by hybrid logical clock, so an
 * operation always comes after those its writer had seen when it wrote it (an update
 * after the insert of its row). A batch never splits the operations of one row
 * change (one origin, one clock), so the receiver writes each row in one statement. */
#ifndef STM_OPLOG_H
#define STM_OPLOG_H

#include "op.h"
#include "store.h"
#include "vector.h"

typedef struct oplog_reader oplog_reader_t;

/* A reader of everything above since (NULL: everything). since is copied. *out is
 * the caller's (oplog_reader_destroy); it keeps statements open on the store's
 * connection until destroyed. */
stm_err oplog_reader_new(store_t *store, const vector_t *since, oplog_reader_t **out,
                         stm_error *err);
void oplog_reader_destroy(oplog_reader_t **self_p);

/* Appends the next operations to batch until it holds max_ops more or max_bytes in
 * all (opbatch_bytes), going over only to finish a row change. *got is how many were
 * appended; 0 means done. */
stm_err oplog_reader_next(oplog_reader_t *r, opbatch_t *batch, size_t max_ops, size_t max_bytes,
                          size_t *got, stm_error *err);

/* The columns an operation is read from, in the order oplog_row_read expects them:
 * "origin, seq, hlc, version_id, tbl, pk, col, aff, val" (a SELECT list of
 * stemma_oplog, possibly qualified). */
#define OPLOG_COLUMNS "origin, seq, hlc, version_id, tbl, pk, col, aff, val"

/* Reads the current row of stmt, whose first nine columns are OPLOG_COLUMNS, into op;
 * strings and bytes are lent by stmt until its next step or reset. */
void oplog_row_read(sqlite3_stmt *stmt, op_t *op);

/* How many operations the database holds, and how many of them are parked. */
stm_err oplog_counts(store_t *store, uint64_t *total, uint64_t *parked, stm_error *err);

/* One reason operations are parked for (apply.h), and how many are parked for it. */
typedef struct {
    char *reason;   /* as stemma_parked holds it, owned */
    uint64_t count;
} oplog_parked_reason;

/* The parked operations counted by reason, most common first, at most max reasons.
 * *out is the caller's (oplog_parked_reasons_free). */
stm_err oplog_parked_reasons(store_t *store, size_t max, oplog_parked_reason **out, size_t *count,
                             stm_error *err);
void oplog_parked_reasons_free(oplog_parked_reason **list, size_t count);

#endif
