/* park.h - operations held back (stemma_parked), and retrying them.
 *
 * The applier parks an operation it cannot apply here rather than drop it (apply.h
 * says when); this module keeps the list, tells the application, and hands the
 * parked operations back for another try. Everything runs in the caller's open
 * write transaction.
 *
 * Invariants:
 *
 *  1. A parked operation is in the oplog (it is recorded before it is parked, so it
 *     travels on like any other) and has one row in stemma_parked, keyed by (origin,
 *     seq), with its kind and SQLite's or the applier's reason. Parking it again
 *     replaces the row.
 *  2. A retry takes the operations of its kind out of stemma_parked and gives them to
 *     the applier again, by the same rules: those that still cannot apply are parked
 *     again with their reason of now, the others are no longer parked. A failure rolls
 *     back with the caller's transaction, leaving them parked as they were.
 *  3. The application is told once per (origin, table.column), for the life of the
 *     park object, what is parked and why; nothing during a retry (it was told when
 *     the operation was first parked).
 *  4. An operation parked for a constraint has one row or more in stemma_parked_wait,
 *     its wakes: what must be written before it can apply. A wake names a row (a
 *     table and a key: its own row, whose other cells may complete it, or a row a
 *     foreign key wants), a table (any row of it: a unique value another row may
 *     free, rows an application's trigger reads), or anything (PARK_WAKE_ANY: what
 *     the applier cannot name). No other operation has wakes; parking again or taking
 *     it out removes its wakes with it. A transaction that changes the wakes moves
 *     stemma_local.wait_gen, so that what a program keeps of them (park_watch.c's filter)
 *     is read again when another has changed them.
 *  5. A row written in the caller's transaction (stm_park_wrote: applied, collected
 *     as a local change, moved aside) wakes the operations waiting for it, for its
 *     table or for anything; stm_park_wake retries exactly those, reading nothing else
 *     that is parked, and again while the retried ones write rows that wake more. An
 *     operation parked for a constraint is therefore retried whenever something it
 *     named may have changed, and never strands; what it costs a batch is the
 *     operations its rows wake, not how many are parked (but for one read of the
 *     rows' wakes after another program changed them).
 *
 * When retries run is the applier's rule (apply.h): all of them after a migration,
 * those a constraint refused when a row they wait for is written, and those parked
 * for a clock ahead once this machine's clock may have caught up. */
#ifndef STM_PARK_H
#define STM_PARK_H

#include "op.h"
#include "oplog.h"
#include "store.h"

/* Why an operation is parked; stemma_parked.kind holds the name. */
typedef enum {
    PARK_SCHEMA,     /* 'schema': a table or column this database lacks or does not
                      * sync, another affinity, a NULL key */
    PARK_CONSTRAINT, /* 'constraint': a constraint refused the row write */
    PARK_AHEAD,      /* 'ahead': its clock is further ahead of this machine's wall
                      * clock than the applier allows (apply.h) */
    PARK_POLICY,     /* 'policy': the applier's filter refused it (apply.h, invariant
                      * 10): the node's policy does not sync it with its writer's
                      * version, or that version is not known */
    PARK_ANY,        /* for stm_park_any, stm_park_count and stm_park_retry: any */
    PARK_ADMITTED    /* ... any but PARK_POLICY: what a filter let through once */
} park_kind;

/* Told once per (origin, table.column) what was parked and why (apply_warn_fn). */
typedef void (*park_warn_fn)(void *ctx, const char *message);

/* Gives ops[0..n) (parked ones, recorded already) to the applier again; *applied is
 * how many of them applied. Those that still cannot apply it parks again. */
typedef stm_err (*park_apply_fn)(void *ctx, const op_t **ops, size_t n, uint64_t *applied,
                                 stm_error *err);

/* A wake (invariant 4): 63 bits of a SipHash-2-4 digest of a table's name and a
 * key's loose form (stm_park_wake_row), of a table's name alone (stm_park_wake_table,
 * the top bit set), or PARK_WAKE_ANY; stemma_parked_wait.wake holds it as an integer
 * (a row's positive, a table's negative). The loose form (park_wake.c) gives keys SQLite
 * may take as one row (by affinity, NOCASE or RTRIM) one digest, so no write misses
 * what waits for it; keys it does not tell apart (1 and '1', 'A' and 'a') only cost
 * a retry, as does a collision. */
typedef uint64_t park_wake;
#define PARK_WAKE_ANY UINT64_C(0)
/* Set in a table's wake, clear in a row's. */
#define PARK_WAKE_TABLE (UINT64_C(1) << 63)
/* The most wakes an operation is parked with; one that would need more waits for
 * anything instead. */
#define PARK_WAKES_MAX 32

/* The wake of the row of table (its name, any case) whose key columns hold
 * parts[0..n) in key order. */
park_wake stm_park_wake_row(const char *table, const op_value *parts, size_t n);
/* The same for a key as operations carry it: one value, or packed (key.h). */
park_wake stm_park_wake_key(const char *table, const op_value *key);
/* The wake of any row of table. */
park_wake stm_park_wake_table(const char *table);

typedef struct park park_t;

/* Parking for store, fetching parked operations through log (both lent; they must
 * outlive it). warn may be NULL. The caller owns the result (stm_park_destroy). */
park_t *stm_park_new(store_t *store, oplog_t *log, park_warn_fn warn, void *ctx);
void stm_park_destroy(park_t **self_p);

/* Parks op (recorded already) as kind (not PARK_ANY or PARK_ADMITTED) for reason. One parked for a
 * constraint so waits for anything: the applier says what with stm_park_op_waiting. */
STM_NODISCARD stm_err stm_park_op(park_t *p, const op_t *op, park_kind kind, const char *reason,
                                  stm_error *err);
/* Parks op (recorded already) for a constraint that refused it for reason, waiting for
 * wakes[0..n) (1 <= n <= PARK_WAKES_MAX; duplicates are fine). */
STM_NODISCARD stm_err stm_park_op_waiting(park_t *p, const op_t *op, const char *reason,
                                          const park_wake *wakes, size_t n, stm_error *err);

/* A transaction of the caller's begins: called before anything else in it. What
 * operations wait for (rows, tables, anything) is looked up again at the first use in
 * it, since another program may have parked some; stm_park_wrote notes only what some
 * operation waits for, and costs nothing while none does. */
void stm_park_begin(park_t *p);
/* Row key (as operations carry it) of table (its local name) was written or deleted
 * in the caller's transaction: what waits for it is retried by the next
 * stm_park_wake. */
void stm_park_wrote(park_t *p, const char *table, const op_value *key);
/* Retries the operations the rows written since the last call wake (invariant 5),
 * quietly, through apply; *replayed is how many applied. Nothing when no row was
 * written. */
STM_NODISCARD stm_err stm_park_wake(park_t *p, park_apply_fn apply, void *ctx, uint64_t *replayed,
                                    stm_error *err);
/* The caller's transaction rolled back: the rows noted since were not written, and
 * what operations wait for is looked up again. */
void stm_park_rollback(park_t *p);

/* Takes op, parked for a constraint, out of the park: it applied otherwise (joined to
 * another piece of its row, apply_pieces.c). */
STM_NODISCARD stm_err stm_park_release(park_t *p, const op_t *op, stm_error *err);

/* True when an operation of kind is parked (false, too, when the database cannot
 * say: the next retry will find out). */
bool stm_park_any(park_t *p, park_kind kind);

/* How many operations of kind are parked. */
STM_NODISCARD stm_err stm_park_count(park_t *p, park_kind kind, uint64_t *count, stm_error *err);

/* Retries every operation of kind parked here through apply (invariant 2);
 * *replayed is how many applied. */
STM_NODISCARD stm_err stm_park_retry(park_t *p, park_kind kind, park_apply_fn apply, void *ctx,
                                     uint64_t *replayed, stm_error *err);

/* One reason operations are parked for, and how many are parked for it. */
typedef struct {
    char *reason; /* as stemma_parked holds it, owned */
    uint64_t count;
} park_reason;

/* The most reasons stm_park_reasons lists at once. */
#define PARK_REASONS_MAX 1000

/* The parked operations counted by reason, most common first, at most max reasons
 * (max <= PARK_REASONS_MAX). *out is the caller's (stm_park_reasons_free). */
STM_NODISCARD stm_err stm_park_reasons(store_t *store, size_t max, park_reason **out, size_t *count,
                                       stm_error *err);
void stm_park_reasons_free(park_reason **list, size_t count);

#endif
