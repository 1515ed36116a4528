/* txn_internal.h - private to the write transaction: only sync/txn*.c include it. txn.c
 * runs the transaction (its start, commit and rollback), reads the schema and keeps the
 * row clocks; txn_record.c records what it takes in, received or local, once each, and
 * keeps what is held of every origin, up to the vectors written at commit. What they
 * share: the transaction itself, its statements and these steps, prefixed stm_txn_ but
 * not API. */
#ifndef STM_TXN_INTERNAL_H
#define STM_TXN_INTERNAL_H

#include "txn.h"
#include "key.h"
#include "stmtcache.h"
#include "base/buf.h"
#include "base/idmap.h"

/* The fixed statements, prepared on first use. */
enum {
    Q_CLOCK_GET, /* a row's clocks */
    Q_CLOCK_PUT, /* ... written back */
    Q_CLOCK_NEW, /* ... or written the first time */
    Q_CLOCK_TOP, /* the greatest key of a table in stemma_clock */
    Q_CLOCK_DEL, /* a row's clocks gone (kept aside instead) */
    Q_VECTOR_GET,
    Q_VECTOR_SET,
    Q_ABOVE, /* does an origin have operations stored above its vector entry? */
    Q_LOCAL_SEQ,
    Q_HLC,          /* the local clock moved, capture on again */
    Q_DATA_VERSION, /* moves when another connection commits */
    Q_N
};

struct txn_table {
    const catalog_table *def;             /* lent by the transaction's catalog */
    size_t keys;                          /* how many columns its key has */
    bool identity;                        /* its rows have incarnations (identity.h) */
    bool folds;                           /* some key column's collation folds text (key.h) */
    bool has_unique;                      /* a UNIQUE index other than its key */
    bool touched;                         /* stm_txn_table_touch since the last look */
    key_collation colls[KEY_MAX_COLUMNS]; /* the key columns' collations */
    /* Within a transaction: the greatest key stemma_clock holds for the table, when it
     * is an integer (or there is none), so that a new row with a greater integer key
     * (the usual insert) is known to have no clocks without looking. */
    bool top_known;
    bool top_none; /* no clocks at all, or the greatest key is not an integer */
    int64_t top;
};

/* What the transaction knows of one origin. */
typedef struct {
    stm_id id;
    int64_t no;    /* stemma_ids number; 0 until it has one */
    uint64_t held; /* every operation up to here is held */
    bool above;    /* some may be held above held, so look those up */
    bool touched;  /* operations of it were recorded in this transaction */
    uint64_t top;  /* the highest sequence recorded in this transaction */
} txn_origin;

struct txn {
    store_t *store;         /* lent */
    sqlite3 *db;            /* store's connection, lent */
    oplog_t *log;           /* lent */
    stmtcache_t *stmts;     /* owned, by Q_* */
    catalog_t *catalog;     /* the local schema as last read */
    const catalog_t *since; /* lent until the first reading: an earlier one of the same
                               schema (stm_txn_read_since); NULL: none */
    int schema_cookie;      /* PRAGMA schema_version when it was read; -1: never */
    uint64_t epoch;         /* moves whenever tables is freed (invariant 8) */
    txn_table *tables;      /* synced tables, in catalog order */
    size_t ntables;
    txn_table *last_table; /* the last one looked up: batches run table by table */
    stm_id node_id;        /* this database's origin */
    uint64_t max_hlc;      /* greatest clock recorded (within clock_limit) or applied in
                            * the current transaction */
    uint64_t clock_limit;  /* recorded clocks above it do not count (invariant 3) */
    txn_origin *origins;   /* origins met in the current transaction */
    size_t norigins, origins_cap;
    idmap_t origins_by_id;  /* positions in origins (s_forget_origins empties both) */
    size_t last_origin;     /* index of the last one met */
    rowclock_t clock;       /* the clocks of the row read last */
    buf_t clock_bytes;      /* scratch for encoding them */
    buf_t key_bytes;        /* scratch for a key as its table compares it (key.h) */
    conflicts_t *conflicts; /* owned: incarnations kept aside (identity.h) */
    bool collected;         /* the start recorded local changes */
    size_t collect_limit;   /* queued rows the next start collects at most (SIZE_MAX: all) */
    bool collect_more;      /* the start left some for another (stm_txn_limit_collect) */
    opbatch_t *settle;      /* owned: rows of identity tables deleted or made anew locally
                             * since the start, as deletes (table and key): stm_txn_settle */
    txn_listener listener;  /* told of what is recorded and how it ends (all NULL: none) */
    bool told_open;         /* the listener was told of a transaction not ended yet */
    txn_wrote_fn wrote;     /* told of every row whose clocks are written; may be NULL */
    void *wrote_ctx;
    int64_t data_version;        /* PRAGMA data_version at the last start; -1: none yet */
    bool origin_checked;         /* stm_origin_check ran in a transaction of this handle */
    bool origin_uncommitted;     /* ... in the one still open: a rollback undoes it */
    origin_change origin_change; /* what it found, until stm_txn_origin_change takes it */
    oplog_row *pruned_rows;      /* rows of pruned stand-ins recorded in the transaction: those
                                  * the vector passes by its commit go then (oplog.h) */
    size_t npruned_rows, pruned_rows_cap;
};

/* ---- txn_record.c ---- */

/* Records local operations (stm_capture_collect's) and enters them into stemma_clock
 * (invariant 4); a row of an identity table deleted or made anew is noted
 * (stm_txn_settle). */
STM_NODISCARD stm_err stm_txn_record_local(txn_t *t, opbatch_t *batch, stm_error *err);
/* At commit: each touched origin's vector entry and the local sequence (invariant 5). */
STM_NODISCARD stm_err stm_txn_update_vectors(txn_t *t, stm_error *err);

#endif
