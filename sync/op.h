/* op.h - operations: one cell written or one row deleted, by one origin, at one clock.
 *
 * An operation says "in table T, the row whose primary key is P, column C became V"
 * (or, with no column, "the row P was deleted"). It carries the writer's node id
 * (origin), its per-origin sequence number (1, 2, 3, ... without gaps), its hybrid
 * logical clock, and the writer's schema version id. Values keep their SQLite type.
 *
 * A batch owns its operations and every byte they point to (an arena), so a batch
 * read from a peer or a file can be handed around and freed in one piece.
 *
 * A batch may also hold stand-ins (op_withheld): a row change too large to travel
 * (over OP_MAX_CHANGE_BYTES, or over what one peer can take) is not sent but named,
 * so that receivers hold its sequence numbers as withheld, their vectors move past
 * it, and everything after it goes on (docs/protocol.md, "Withheld row changes").
 * Stand-ins are kept apart from the operations: nothing that walks a batch's
 * operations ever meets one by mistake.
 *
 * A stand-in may also say that its operations were pruned (compact.h): their cells
 * have later writes, which its sender sends as operations, so the receiver lacks
 * nothing by holding them as it holds withheld ones. It names no row: its clock is 0,
 * its version the zero id, its table OP_PRUNED_TABLE, its key NULL. */
#ifndef STM_OP_H
#define STM_OP_H

#include "base/buf.h"
#include "base/id.h"

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Limits every decoder checks before it allocates (docs/protocol.md). */
#define OP_MAX_NAME_BYTES 1024u                /* a table or column name */
/* The most bytes a row change may take encoded in a batch (codec.h) to travel: the
 * largest batch a bundle frame or an OPS sent in parts carries. One over it is
 * withheld by whoever would send it (oplog.h). */
#define OP_MAX_CHANGE_BYTES (256u * 1024u * 1024u)
/* One text or blob value: no more than a row change (a batch holding it is larger
 * still, so one this large never arrives whole; decoders check it first anyway). */
#define OP_MAX_VALUE_BYTES OP_MAX_CHANGE_BYTES
/* The largest seq and hlc an operation may carry: 2^62, half of what SQLite's integers
 * hold. A node moves its clock past every clock it applies and its own sequence past
 * every operation of its own origin it receives; what is left above the limits is
 * more than any node will ever count, so nothing a peer sends can make them overflow
 * (which turned the clock into a REAL and made every local write fail). 2^62 as a
 * clock is the year 4199. */
#define OP_MAX_SEQ (1ull << 62)
#define OP_MAX_HLC (1ull << 62)

typedef enum {
    VALUE_NULL,
    VALUE_INTEGER,
    VALUE_REAL,
    VALUE_TEXT,
    VALUE_BLOB,
    VALUE_KEY, /* only as op_t.pk: a key of several columns, packed (key.h) */
} value_type;

/* A value with its SQLite type. Text and blob bytes are lent (by a batch or a row). */
typedef struct {
    value_type type;
    int64_t i;         /* VALUE_INTEGER */
    double r;          /* VALUE_REAL */
    const void *bytes; /* VALUE_TEXT (UTF-8, not NUL-terminated), VALUE_BLOB, VALUE_KEY */
    size_t len;        /* bytes' length */
} op_value;

typedef struct {
    stm_id origin;     /* the node that wrote it */
    uint64_t seq;      /* per origin, from 1 */
    uint64_t hlc;      /* milliseconds << 16 | counter */
    stm_id version_id; /* the writer's schema version */
    const char *table; /* NUL-terminated */
    op_value pk;       /* the row's primary key: its value, or packed (key.h) */
    const char *column; /* NUL-terminated; NULL for a row delete */
    char affinity;     /* the column's affinity at the writer: T N I R B; 0 for a delete */
    op_value value;    /* the new value (NULL type for a delete) */
    /* The row's incarnation, in a table whose keys are chosen per device (identity.h):
     * the clock and origin of the row change that created the row this operation
     * writes or deletes. born_hlc 0: none (another kind of table, or a row there
     * before stemma, the same on every device). */
    uint64_t born_hlc;
    stm_id born_origin;
    /* Set by capture on a local row change that created its row (an insert, or an
     * insert after a delete); never sent: receivers see born == (hlc, origin). */
    bool creates;
    /* Written by the migration to version_id itself (migrate_ops.h), not by an
     * application: it means nothing to a database that has not run that migration,
     * which parks it until it has (apply.h, invariant 11). */
    bool derived;
} op_t;

/* The table a pruned stand-in names (a name must be one byte at least). */
#define OP_PRUNED_TABLE "*"

/* A stand-in for a row change that was not sent because it is too large: the
 * operations seq .. seq + n - 1 of origin, which a receiver records as held but
 * withheld (it never applies anything of them), so that its vector moves past them. */
typedef struct {
    stm_id origin;     /* the writer of the row change */
    uint64_t seq;      /* its first operation withheld */
    uint64_t n;        /* how many: seq .. seq + n - 1, at least 1 */
    uint64_t hlc;      /* the row change's clock */
    stm_id version_id; /* the writer's schema version */
    const char *table; /* NUL-terminated */
    op_value pk;       /* the row's key: its value, or packed (key.h) */
    uint64_t bytes;    /* how large the whole row change was, as whoever withheld it
                          counted it (oplog.h) */
    bool here;         /* read here from the row change itself (oplog.h), not from a
                          stand-in received: this database is the one withholding it.
                          Never sent. */
    bool pruned;       /* not withheld but pruned (above): nothing of them is lacking */
} op_withheld;

typedef struct opbatch opbatch_t;

/* An empty batch; the caller's (stm_opbatch_destroy). */
opbatch_t *stm_opbatch_new(void);
void stm_opbatch_destroy(opbatch_t **self_p);
/* Empties the batch (its stand-ins too), keeping its memory for reuse; but not a block
 * that held one large value, so that a batch reused for every batch sent to a peer
 * does not hold on to the largest row change it ever carried. */
void stm_opbatch_clear(opbatch_t *b);
/* Operation i, to change: for the writer that stamps what it made (the incarnation of
 * a local row change, txn_record.c). Lent until the batch changes. */
op_t *stm_opbatch_at_mut(opbatch_t *b, size_t i);
/* Appends a copy of op (its strings and bytes are copied into the batch). */
void stm_opbatch_add(opbatch_t *b, const op_t *op);
/* A copy of the len bytes of name, NUL-terminated, held by the batch: for a decoder
 * that names each table and column once however many operations name it (a batch's
 * dictionaries), with stm_opbatch_add_named. */
const char *stm_opbatch_name(opbatch_t *b, const char *name, size_t len);
/* stm_opbatch_add for an op whose table and column the batch already holds (stm_opbatch_name):
 * only its values are copied. */
void stm_opbatch_add_named(opbatch_t *b, const op_t *op);
size_t stm_opbatch_count(const opbatch_t *b);
/* Operation i, lent until the batch changes. */
const op_t *stm_opbatch_at(const opbatch_t *b, size_t i);
/* Bytes the batch holds in its arena (for flow control). */
size_t stm_opbatch_bytes(const opbatch_t *b);

/* Appends a copy of the stand-in w (its table and key copied into the batch). */
void stm_opbatch_add_withheld(opbatch_t *b, const op_withheld *w);
/* How many stand-ins the batch holds, and stand-in i, lent until the batch changes. */
size_t stm_opbatch_withheld_count(const opbatch_t *b);
const op_withheld *stm_opbatch_withheld_at(const opbatch_t *b, size_t i);
/* How many operations the batch covers: its own, and those its stand-ins stand for. */
uint64_t stm_opbatch_covered(const opbatch_t *b);

/* True when op is a row delete. */
bool stm_op_is_delete(const op_t *op);
/* True when a and b are writes of one row change: one origin and clock, one table
 * and key (a delete is a change of its own). The unit the oplog stores and the
 * applier writes a row with. */
bool stm_op_same_row_change(const op_t *a, const op_t *b);
/* Orders two writes by (hlc, origin): <0, 0 or >0. The last writer wins. */
int stm_op_clock_compare(uint64_t hlc_a, const stm_id *origin_a, uint64_t hlc_b,
                         const stm_id *origin_b);

/* Binds v to parameter i of stmt (a packed key as the BLOB of its bytes). */
int stm_op_value_bind(sqlite3_stmt *stmt, int i, const op_value *v);
/* Reads column i of the current row of stmt into v; bytes are lent until the next
 * step or reset of stmt. */
void stm_op_value_column(sqlite3_stmt *stmt, int i, op_value *v);
/* Appends v, for a log line, to b: a number as it is, text quoted with control
 * characters escaped and cut after 40 bytes, a blob or a packed key by its size. */
void stm_op_value_describe(buf_t *b, const op_value *v);
/* Appends w, for a log line, to b: "operations 10-16 of origin 0123456789ab (table
 * files, key 'f1'), a row change of 293601280 bytes" ("operation 10" for one; "...
 * 0123456789ab, pruned" for a pruned one). */
void stm_op_withheld_describe(buf_t *b, const op_withheld *w);
/* True when both values have the same type and content. */
bool stm_op_value_equal(const op_value *a, const op_value *b);

#endif
