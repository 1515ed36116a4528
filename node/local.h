/* local.h - the node's own database: opened as the node's, the lineage it is at, and
 * what changed in it since the last look (the application wrote; it migrated).
 *
 * Invariants:
 *
 *  1. The database's node id is the node's public key: operations it captures carry
 *     that origin. Changes captured under an older id become that id's operations
 *     before the id changes.
 *  2. The lineage is the schema set's to the database's version, and within the
 *     protocol's limits (a HELLO beyond them would be dropped by every peer).
 *  3. The application's writes, noticed by PRAGMA data_version, become operations
 *     (stm_applier_catch_up) before anything is sent from them; a failure is logged once
 *     and tried again at the next look.
 *  4. A connection SQLite opened read-only stays so until it is opened again: the
 *     store is opened anew once the file is writable (stm_local_reopen_if_readonly), so
 *     fixing the file is enough. The store and applier it lends are then new.
 *  5. The feed (sync/feed.h) is told by every transaction of the applier's; what other
 *     programs recorded joins it after a look found that another connection wrote
 *     (stm_local_sync_due), at most once per twenty times what the last comparison took,
 *     and at once when the database took a new origin. */
#ifndef STM_LOCAL_H
#define STM_LOCAL_H

#include "admit.h"
#include "base/error.h"
#include "base/id.h"
#include "lineage/layout.h"
#include "lineage/lineage.h"
#include "sync/apply.h"
#include "sync/feed.h"
#include "sync/inbound.h"
#include "sync/store.h"

#include <stdbool.h>

typedef struct local local_t;

/* Opens db_path (which stemma migrate has set up) for the node, checking it against schemas_dir,
 * read in layout (lineage/layout.h; LAYOUT_AUTO: detected). Its first look collects the writes
 * made while no node ran (under a new origin, logged, when the database is a copy or was
 * restored: sync/origin.h). inbound (lent; it must outlive the result) waits on the database's
 * write lock for it (stm_inbound_watch). *out is the caller's (stm_local_destroy). STM_EINPUT
 * when the database is not set up, its format is old, or its lineage is beyond the protocol's
 * limits. */
STM_NODISCARD stm_err stm_local_open(const char *db_path, const char *schemas_dir,
                                     schemaset_layout layout, inbound_t *inbound, local_t **out,
                                     stm_error *err);
void stm_local_destroy(local_t **self_p);

/* Takes a new origin, and logs why, when theirs (a peer's vector) holds more of the
 * database's origin than it has issued (sync/origin.h, stm_origin_check_held); at most
 * once a run, so that no peer can make it mint origins without end. */
void stm_local_check_held(local_t *l, const vector_t *theirs);

/* Records, beside the database, that its own operations may leave it now
 * (sync/origin.h, stm_origin_mark_sent); *origin is its origin. */
STM_NODISCARD stm_err stm_local_mark_sent(local_t *l, stm_id *origin, stm_error *err);

/* The applier's bound on clocks ahead of this machine's (sync/apply.h, invariant 7),
 * kept across a reopen. */
void stm_local_set_max_clock_ahead(local_t *l, int64_t ms);

/* Judges every operation received by policy p (copied) and the version its writer was
 * at (admit.h; sync/apply.h, invariant 10), on this applier and every one made anew. */
void stm_local_set_policy(local_t *l, const peer_policy *p);
/* What judges them, lent until the next stm_local_set_policy; NULL before the first. */
admit_t *stm_local_admit(local_t *l);

/* Lent until the next stm_local_reopen_if_readonly or stm_local_destroy. */
store_t *stm_local_store(local_t *l);
applier_t *stm_local_applier(local_t *l);
/* The row changes in order of arrival and the vector, as peers are sent them
 * (sync/feed.h), lent until stm_local_destroy. */
feed_t *stm_local_feed(local_t *l);
/* The database's lineage and version, lent until the next stm_local_look. */
/* What the schema set's migrations do to the data, and the set's whole lineage (lent
 * until the set changes): operations of other versions are translated through them. */
const lens_set_t *stm_local_lenses(const local_t *l);
const lineage_t *stm_local_set_lineage(const local_t *l);
const lineage_t *stm_local_lineage(const local_t *l);
int stm_local_version(const local_t *l);
const char *stm_local_path(const local_t *l);
bool stm_local_readonly(local_t *l);

/* What stm_local_look found. */
typedef enum {
    LOCAL_WROTE = 1,    /* the application wrote: there are operations to send */
    LOCAL_MIGRATED = 2, /* the database is at another version: a new lineage */
} local_change;

/* Reads the feed again from the database now (sync/feed.h, stm_feed_reload): before
 * peers are told of a new origin (the database was put back in time: its vector may
 * have fallen, its numbers name other ids). Every peer's reader starts again. */
void stm_local_sync_feed(local_t *l);

/* What other programs recorded, looked for when another program wrote and the last
 * look is far enough behind (local.h, invariant 5): after a pass's sends, so that it
 * never delays them. True when something new joined the feed (peers may lack it). */
bool stm_local_sync_due(local_t *l);

/* The origins at which the node says, once, that they grow: half an older stemma's wall
 * (it refused vectors of more than VECTOR_MAX_ENTRIES), then at that wall. */
#define LOCAL_ORIGINS_WARN (VECTOR_MAX_ENTRIES / 2)
/* Logs, once each, that the database's origins (every device that ever wrote is one)
 * passed LOCAL_ORIGINS_WARN and VECTOR_MAX_ENTRIES. */
void stm_local_warn_origins(local_t *l);

/* Looks for writes of other connections and for a migration; returns the
 * local_change bits found (0: nothing). The application's writes are collected a slice
 * at a time (sync/apply.h, APPLY_COLLECT_SLICE_ROWS): after a bulk write,
 * stm_local_collecting stays true, and the node looks again at once, until every slice
 * is done. */
int stm_local_look(local_t *l);
/* A bulk write is being collected, slice by slice: operations received wait until it
 * is done (applying them would land on rows whose own changes are not recorded yet). */
bool stm_local_collecting(local_t *l);
/* While collecting, when the next slice is due (monotonic ms). */
int64_t stm_local_next_slice_ms(const local_t *l);
/* Before received operations are stored: collects a slice of what the application
 * wrote since the last look (the store's transaction would otherwise collect all of
 * it at once); true while more slices are to come, when they must wait. */
bool stm_local_collect_first(local_t *l);

/* Opens the database anew when this connection is read-only and the file no longer
 * is (invariant 4). */
void stm_local_reopen_if_readonly(local_t *l);

#endif
