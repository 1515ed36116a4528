/* park_internal.h - private to the park: only sync/park*.c include it. park.c keeps the
 * list (parking, telling the application, counting, retrying by kind, the reasons);
 * park_wake.c makes wakes, the digests of what an operation waits for (invariant 4);
 * park_watch.c keeps what a transaction knows is waited for, notes the rows it writes
 * and wakes what waits for them (invariant 5). What they share: the park itself, its
 * statements and these steps, prefixed stm_park_ but not API. */
#ifndef STM_PARK_INTERNAL_H
#define STM_PARK_INTERNAL_H

#include "park.h"
#include "stmtcache.h"
#include "base/buf.h"

/* The fixed statements (park.c's s_sql). */
enum {
    Q_PARK,  /* why an operation is parked */
    Q_LIST,  /* parked operations of a kind */
    Q_CLEAR, /* ... taken out for a retry */
    Q_ANY,
    Q_COUNT,
    Q_LIST_ALL, /* the same four for every kind, in the same order */
    Q_CLEAR_ALL,
    Q_ANY_ALL,
    Q_COUNT_ALL,
    Q_LIST_ADMITTED, /* the same four for every kind but 'policy' */
    Q_CLEAR_ADMITTED,
    Q_ANY_ADMITTED,
    Q_COUNT_ADMITTED,
    Q_WAIT_ADD,   /* a wake of an operation parked for a constraint */
    Q_WAIT_DROP,  /* ... all of one operation's */
    Q_WAIT_FIND,  /* the operations waiting for a wake */
    Q_WAIT_SOME,  /* does any operation wait for a row? a table? anything? */
    Q_WAIT_GEN,   /* have the wakes changed? */
    Q_WAIT_CLEAR, /* every wake: every operation parked for a constraint taken out */
    Q_TAKE_ONE,   /* one operation parked for a constraint, taken out for a retry */
    Q_WAIT_ROWS,  /* every row's wake, for the filter */
    Q_WAIT_BUMP,  /* the wakes changed: stemma_local.wait_gen moves */
    Q_N
};
#define Q_ALL (Q_LIST_ALL - Q_LIST)           /* from a kind's statement to every kind's */
#define Q_ADMITTED (Q_LIST_ADMITTED - Q_LIST) /* ... to every kind's but 'policy' */

/* What operations parked for a constraint wait for (invariant 4), as far as the
 * transaction knows: looked up once in it, and added to as it parks. What is not
 * waited for by any is neither noted nor looked up: a table's wake when none waits for
 * a table, anything when none waits for anything, nothing at all when none waits. */
typedef struct {
    bool looked;       /* in this transaction (stm_park_begin forgets) */
    bool rows;         /* some wait for a row */
    bool tables;       /* ... for a table */
    bool any;          /* ... for anything */
    int64_t gen;       /* stemma_local.wait_gen as the transaction began (-1: not known) */
    bool moved;        /* ... and moved on since, by this transaction's changes */
    int64_t kinds_gen; /* the wait_gen rows, tables and any were found at: good again
                        * in a transaction that finds it unchanged (-1: none) */
} park_watch;

/* The rows' wakes in stemma_parked_wait, as a Bloom filter: a row written whose wake
 * it lacks wakes nothing, and is not looked up (a million wakes fill 20 MB, which a
 * lookup per row written reads at random; the filter takes 2 MB and no read). Read
 * whole when first needed; good while stemma_local.wait_gen, which every transaction
 * that changes the wakes moves, is where it was (so another program's parking, or
 * another park object's, makes it be read again); what this one parks is added to
 * it, and what it takes out stays in it (a wake it holds in vain only costs a
 * lookup). */
typedef struct {
    uint64_t *bits; /* owned; NULL: none (read at the next need) */
    uint64_t mask;  /* blocks - 1, blocks (of 512 bits) a power of two */
    size_t held;    /* wakes added */
    size_t room;    /* ... before it is too full to be worth it: read again */
    int64_t gen;    /* the wait_gen it holds the wakes of */
} park_filter;

struct park {
    store_t *store;     /* lent */
    oplog_t *log;       /* lent: where parked operations are fetched from */
    stmtcache_t *stmts; /* owned, by Q_* */
    park_warn_fn warn;  /* may be NULL */
    void *warn_ctx;
    bool quiet;    /* in a retry: tell nothing (invariant 3) */
    char **warned; /* "origin/table.column" keys told already */
    size_t nwarned, warned_cap;
    park_watch watch; /* what is waited for (stm_park_begin forgets) */
    park_wake *rows;  /* wakes of the rows written since the last stm_park_wake */
    size_t nrows, rows_cap;
    park_wake *tables; /* ... of their tables, each once */
    size_t ntables, tables_cap;
    park_filter filter;       /* the rows' wakes (not read while none waits for a row) */
    buf_t form;               /* a row's loose form, while its wake is made */
    buf_t prefix;             /* the start of the loose form of prefix_table's rows */
    const char *prefix_table; /* compared by pointer, as last_table */
    const char *last_table;   /* the table of the last row noted, its wake in tables (a
                               * name lent by the caller's catalog, compared by pointer) */
};

/* ---- park.c ---- */

/* Runs fixed statement q, Q_WAIT_ADD or Q_WAIT_DROP, for the operation (origin number
 * no, seq), waiting for wake (Q_WAIT_ADD); or Q_TAKE_ONE for (origin, seq). SQLite's
 * result. */
int stm_park_run_op(park_t *p, int q, int64_t no, const stm_id *origin, uint64_t seq,
                    park_wake wake);
/* Gives the operations of batch to apply, quietly (invariant 3); *applied is how many
 * applied. */
STM_NODISCARD stm_err stm_park_reapply(park_t *p, opbatch_t *batch, park_apply_fn apply, void *ctx,
                                       uint64_t *applied, stm_error *err);

/* ---- park_wake.c ---- */

/* The start of a row's loose form in b: "row" NUL and table's name. */
void stm_park_put_row_prefix(buf_t *b, const char *table);
/* stm_park_wake_key, its loose form made in b after the prefix b holds already. */
park_wake stm_park_wake_key_values(buf_t *b, const op_value *key);

/* ---- park_watch.c ---- */

/* The wakes change in this transaction: wait_gen moves (once a transaction), so that
 * every other filter is read again; this one stays good. */
STM_NODISCARD stm_err stm_park_wakes_change(park_t *p, stm_error *err);
/* True when some operation waits for anything at all. */
bool stm_park_waiting(park_t *p);
/* Adds row wake w to filter f. */
void stm_park_filter_add(park_filter *f, park_wake w);

#endif
