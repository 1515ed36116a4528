/* oplog_internal.h - private to the oplog: oplog.c (storage and the reader for a peer)
 * and oplog_prune.c (compaction's reading and removing) share how a stored row is read
 * back. */
#ifndef STM_OPLOG_INTERNAL_H
#define STM_OPLOG_INTERNAL_H

#include "oplog.h"

/* A stored row change as a statement hands it out:
 * SELECT seq, n, hlc, version, tbl, pk, cells, pk_packed, born_hlc, born_origin, derived
 * (RC_* give the positions; a statement may put more columns after them). */
enum {
    RC_SEQ,
    RC_N,
    RC_HLC,
    RC_VERSION,
    RC_TBL,
    RC_PK,
    RC_CELLS,
    RC_PK_PACKED,
    RC_BORN_HLC,
    RC_BORN_ORIGIN,
    RC_DERIVED
};
#define RC_COLUMNS "seq, n, hlc, version, tbl, pk, cells, pk_packed, born_hlc, born_origin, derived"

/* Whether the row stmt is on is a row change or a stand-in's (op.h), and then its bytes
 * (withheld) or its count (pruned). Only the first byte of a row change's cells is looked
 * at. */
oplog_row_kind stm_oplog_row_kind(sqlite3_stmt *stmt, uint64_t *value);

/* Appends the operations of the row stmt is on (of origin), those with a sequence above
 * after, to out; or, for a stand-in's row, a stand-in for them; or, when its key or a
 * value is over max_value bytes, a stand-in of this database's own for it, of `bytes`.
 * STM_ECORRUPT for a damaged row, of which nothing is added. */
STM_NODISCARD stm_err stm_oplog_unpack(store_t *store, sqlite3_stmt *stmt, const stm_id *origin,
                                       uint64_t after, uint64_t max_value, uint64_t bytes,
                                       opbatch_t *out, stm_error *err);

/* Reads what the operations of the row change stmt is on share (origin, clock,
 * version, table, key, incarnation) into op; its first sequence and count into *seq and
 * *n. Strings and bytes are lent by stmt until its next step. STM_ECORRUPT for damage. */
STM_NODISCARD stm_err stm_oplog_row_head(store_t *store, sqlite3_stmt *stmt, const stm_id *origin,
                                         op_t *op, uint64_t *seq, int64_t *n, stm_error *err);
/* Appends to out a stand-in for the operations above after of the row change op heads
 * (seq .. seq + n - 1), of the given bytes; here: read from the row change itself. */
void stm_oplog_add_withheld(opbatch_t *out, const op_t *op, uint64_t seq, int64_t n,
                            uint64_t after, uint64_t bytes, bool here);
/* Appends to out a pruned stand-in (op.h) for operations first .. last of origin, at most
 * CODEC_MAX_BATCH_OPS of them; *to is the last it covers. */
void stm_oplog_add_pruned(opbatch_t *out, const stm_id *origin, uint64_t first, uint64_t last,
                          uint64_t *to);

/* The store, lent. */
store_t *stm_oplog_store(oplog_t *log);
/* Compaction's fixed statements, kept with the handle's (reset; NULL on failure). */
enum { OPLOG_Q_SLICE = 4, OPLOG_Q_REMOVE = 5, OPLOG_Q_HOLES = 6 };
sqlite3_stmt *stm_oplog_stmt(oplog_t *log, int q);

#endif
