/* oplog_internal.h - private to oplog.c and oplog_read.c: how a stored row change is
 * selected and read back. */
#ifndef STM_OPLOG_INTERNAL_H
#define STM_OPLOG_INTERNAL_H

#include "feed.h"
#include "oplog.h"

/* A stored row change as a statement hands it out:
 * SELECT RC_COLUMNS (RC_* give the positions). */
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

/* A stand-in's cells (op.h): a map {"withheld": bytes}, where a row change's cells
 * begin with a column name (a str). An older stemma takes such a row for damage and
 * says so: it never reads it as operations. */
#define OPLOG_WITHHELD_KEY "withheld"
#define OPLOG_WITHHELD_MAX_CELLS 32 /* a map of one key and a uint64 takes 19 bytes */

/* Appends the operations of the row change stmt is on (selected as RC_COLUMNS), those
 * with a sequence above after, to out; or, for a stand-in's row, a stand-in for them;
 * or, when its key or a value is over max_value bytes, a stand-in of this database's
 * own for it, of `bytes`. STM_ECORRUPT for a damaged row, of which nothing is added. */
STM_NODISCARD stm_err stm_oplog_row_unpack(store_t *store, sqlite3_stmt *stmt,
                                           const stm_id *origin, uint64_t after,
                                           uint64_t max_value, uint64_t bytes, opbatch_t *out,
                                           stm_error *err);

#endif
