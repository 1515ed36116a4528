/* feed.h - what a node sends: its database's row changes in the order they arrived, and
 * its version vector, both kept in memory.
 *
 * The oplog (oplog.h) is keyed by (origin, seq) and has no order of arrival. Reading
 * what a peer lacks from it took a statement per origin, merged by clock at every send
 * pass: with 100,000 origins, 860 MB of statements and 12-15 s of a blocked loop per
 * pass. The feed holds that order instead, as runs: row changes of one origin with
 * consecutive sequence numbers, (origin, first, count), in the order they were
 * recorded. A reader (oplog.h) walks it once, from a position it keeps between passes,
 * reading only the runs its peer lacks; a run takes 24 bytes, however many operations
 * it covers (a bulk insert of a million rows is one).
 *
 * The order is kept in memory because the oplog's layout cannot hold it yet: an arrival
 * number in stemma_oplog (a store format change) would let a reader walk the table
 * itself and spare the load below. Until then the feed is loaded when the node starts.
 *
 * Invariants:
 *
 *  1. At open, the runs cover every row change stored, in order of clock (hlc, then
 *     origin, then seq): an operation comes after those its writer had seen. Before
 *     them, runs cover the gaps compaction left (oplog.h, "Gaps"): sequences at or below
 *     the vector with no row, which a reader hands out as pruned stand-ins. Every origin
 *     of the vector has a number for it (one taken through the store when a stemma
 *     before this one left it without: txn_record.c numbers the origins of pruned
 *     operations held with no row).
 *  2. Then every row change a transaction of the node's own records is added as that
 *     transaction commits (txn.h's listener; stm_feed_listener), in the order recorded,
 *     and so are pruned operations it took with no row; one rolled back adds nothing.
 *     Readers see only what committed.
 *  3. Runs are only added at the end, and only the last one grows: a reader's position
 *     stays valid for ever, and one at the end of the last run sees it grow.
 *  4. The vector (stm_feed_vector) is the database's as of the last commit or sync:
 *     what the node's transactions told at commit, and what stm_feed_sync read.
 *  5. What another program recorded (stemma apply, migrate) is added by stm_feed_sync,
 *     which compares the database's vector with the feed's (first their entries counted
 *     and summed by SQLite, a pass over stemma_vector that copies nothing; then, when
 *     those differ, entry by entry): for each origin whose entry moved, its row changes
 *     above the old entry and the gaps between them up to the new one. (Of those, ones above a gap in
 *     that origin's sequence are found once the gap fills; one already in the feed may
 *     come twice, which only sends it twice.)
 *  6. A database put back in time under the node is read whole again
 *     (stm_feed_reload): its numbers may name other ids now, its rows be others. The
 *     epoch changes, and a position taken before means nothing after. */
#ifndef STM_FEED_H
#define STM_FEED_H

#include "base/error.h"
#include "store.h"
#include "txn.h"
#include "vtrack.h"

#include <stdint.h>

/* One run: the operations first .. first + count - 1 of one origin, recorded in a row. */
typedef struct {
    uint64_t first;
    int64_t origin; /* its stemma_ids number */
    uint64_t count;
} feed_run;

typedef struct feed feed_t;

/* Loads the feed of store (lent; it must outlive the feed, or be replaced with
 * stm_feed_set_store): every stored row change, by clock (invariant 1), and the vector,
 * read on a connection of its own (so that the store's page cache stays empty): what is
 * committed, never a transaction the store holds open. The caller owns it
 * (stm_feed_destroy). */
STM_NODISCARD stm_err stm_feed_open(store_t *store, feed_t **out, stm_error *err);
void stm_feed_destroy(feed_t **self_p);

/* The store it reads, lent; replaced when the node opens its database anew. */
store_t *stm_feed_store(const feed_t *f);
void stm_feed_set_store(feed_t *f, store_t *store);

/* What an applier's transactions tell the feed (txn.h; the listener is lent with f). */
const txn_listener *stm_feed_listener(feed_t *f);

/* Reads the database's vector and adds what other programs recorded (invariant 5);
 * *changed counts the entries that moved (0: nothing new). */
STM_NODISCARD stm_err stm_feed_sync(feed_t *f, size_t *changed, stm_error *err);

/* Reads every run and origin id again from the database, as at open: for a database
 * put back in time under the node (its numbers may now name other ids, its rows be
 * others). Positions before it mean nothing after it: stm_feed_epoch changes, and a
 * reader that sees it change starts from the start. The vector is compared anew
 * (stm_feed_sync). */
STM_NODISCARD stm_err stm_feed_reload(feed_t *f, stm_error *err);
/* Changes at every stm_feed_reload. */
uint64_t stm_feed_epoch(const feed_t *f);

/* The runs readers may walk (committed), and run i (lent until the next commit, which
 * may grow the last one or move the array). */
size_t stm_feed_count(const feed_t *f);
feed_run stm_feed_at(const feed_t *f, size_t i);
/* How many row changes it covers in all (they may share runs). */
uint64_t stm_feed_changes(const feed_t *f);

/* The id of origin number no (its stemma_ids number) into *out, when the feed knows it:
 * every origin of its runs, read at open and told since. False otherwise. */
bool stm_feed_origin(const feed_t *f, int64_t no, stm_id *out);

/* The database's vector (invariant 4), lent. */
const vtrack_t *stm_feed_vector(const feed_t *f);

#endif
