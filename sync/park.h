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
 *
 * When retries run is the applier's rule (apply.h): all of them after a migration,
 * those a constraint refused after every batch that applied something, and those
 * parked for a clock ahead once this machine's clock may have caught up. */
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
    PARK_ANY         /* for stm_park_any, stm_park_count and stm_park_retry: any */
} park_kind;

/* Told once per (origin, table.column) what was parked and why (apply_warn_fn). */
typedef void (*park_warn_fn)(void *ctx, const char *message);

/* Gives ops[0..n) (parked ones, recorded already) to the applier again; *applied is
 * how many of them applied. Those that still cannot apply it parks again. */
typedef stm_err (*park_apply_fn)(void *ctx, const op_t **ops, size_t n, uint64_t *applied,
                                 stm_error *err);

typedef struct park park_t;

/* Parking for store, fetching parked operations through log (both lent; they must
 * outlive it). warn may be NULL. The caller owns the result (stm_park_destroy). */
park_t *stm_park_new(store_t *store, oplog_t *log, park_warn_fn warn, void *ctx);
void stm_park_destroy(park_t **self_p);

/* Parks op (recorded already) as kind (not PARK_ANY) for reason. */
STM_NODISCARD stm_err stm_park_op(park_t *p, const op_t *op, park_kind kind, const char *reason,
                                  stm_error *err);

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
