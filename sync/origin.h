/* origin.h - which origin a database's own operations carry, and when it takes a new one.
 *
 * An operation is named by (origin, seq) everywhere: a peer that holds (o, 7) takes any
 * other (o, 7) for the same operation and drops it. A database that is copied (a
 * golden image put on two devices, a backup put back, a phone restored) goes on from
 * the sequence its copy held, so its next writes reuse pairs that the original, or
 * the mesh, already holds for other writes, and they are lost without a word. So a
 * database takes a new origin (a random 32-byte id, its next *incarnation*) whenever
 * it may be a copy, before it collects a write:
 *
 *   - stemma_origin records the file its origin was taken in (device and inode) and
 *     the machine (a digest of /etc/machine-id, where there is one). A database
 *     opened as another file (cp, rsync, an image unpacked, VACUUM INTO, a backup
 *     copied back) or on another machine takes a new origin at its first write
 *     transaction (stm_origin_check, from sync/txn.c).
 *   - `stemma restore` writes older contents into the same file: it takes a new origin
 *     itself (stm_origin_renew).
 *   - a database found below how far its own operations have left it (restored in
 *     place by other means) takes one too (stm_origin_check_sent).
 *
 * The old origin's operations stay what they were; the peers that hold the later ones
 * send them back, as they would to any database. A new origin costs every peer one
 * vector entry; a missed one loses writes, so anything unsure takes one. */
#ifndef STM_ORIGIN_H
#define STM_ORIGIN_H

#include "store.h"
#include "vector.h"
#include "base/error.h"

#include <stdbool.h>

/* Why a database took a new origin (ORIGIN_KEPT: it did not). */
typedef enum {
    ORIGIN_KEPT,          /* the file and machine it was taken in, or first recorded now */
    ORIGIN_OTHER_FILE,    /* another file: a copy, or a backup put back by copying */
    ORIGIN_OTHER_MACHINE, /* the same file name and inode, another machine: an image */
    ORIGIN_RESTORED,      /* stemma restore, or found below how far its own operations left */
    ORIGIN_AHEAD,         /* a peer holds more of its origin than it has issued */
} origin_change;

/* For the log: "this database file is a copy of the one its origin was used in", ...
 * Static; "" for ORIGIN_KEPT. */
const char *stm_origin_change_text(origin_change c);

/* In the caller's write transaction, before anything is collected: takes a new origin
 * when the database is not the file, or not on the machine, its origin was taken in,
 * and records where it is now. A database with no record (set up by an older stemma)
 * is recorded as it is. *change says what happened. */
STM_NODISCARD stm_err stm_origin_check(store_t *store, origin_change *change, stm_error *err);

/* Beside the database file, FILE-stemma-sent records its origin and its own sequence as
 * they were when its own operations last left it (a node sent them, `stemma changes`
 * wrote them to a bundle), written (fsynced) before they leave. A database of that
 * origin found below it was put back in the same file (the sqlite3 shell's .restore, a
 * snapshot rolled back), which the file check cannot tell: it takes a new origin. A
 * crash leaves a database at or past its mark (operations leave only once committed),
 * so it keeps its origin; a power cut that loses the last commits takes a new one,
 * rightly: its peers may hold what it lost. */
#define ORIGIN_SENT_SUFFIX "-stemma-sent"

/* Records that the database's own operations up to its sequence may leave it now (no
 * write when the mark is there already); *origin is its origin. STM_ESYS, naming the
 * file, when it cannot be written: nothing may leave then. */
STM_NODISCARD stm_err stm_origin_mark_sent(store_t *store, stm_id *origin, stm_error *err);

/* In the caller's write transaction, before anything is collected (every transaction:
 * a restore may come at any time): takes a new origin (*change ORIGIN_RESTORED) when the
 * database is below its mark. */
STM_NODISCARD stm_err stm_origin_check_sent(store_t *store, origin_change *change,
                                            stm_error *err);

/* Outside a transaction: takes a new origin (*change ORIGIN_AHEAD) when theirs, a
 * peer's vector, holds more of the database's origin than the database itself has
 * issued: it went back in time with its mark (a virtual machine's snapshot reverted, a
 * file system rolled back), or a copy writes under its origin. The last line of
 * defence: its writes collected between going back and now may already have been
 * taken by that peer for others' and dropped; those after it are safe. */
STM_NODISCARD stm_err stm_origin_check_held(store_t *store, const vector_t *theirs,
                                            origin_change *change, stm_error *err);

/* Takes a new origin now and records the file, in a transaction of its own (after a
 * restore; for a device made from an image). */
STM_NODISCARD stm_err stm_origin_renew(store_t *store, stm_error *err);

#endif
