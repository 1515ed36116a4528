/* bulk.h - a bulk sync from a peer, logged as it goes: a node taking in a large backlog
 * (a new device's first sync, one back after weeks away) says how much there is, how
 * fast it goes and when it is over, instead of minutes of silence.
 *
 * A sync is bulk when what the peer holds and this database lacks (its vector against
 * this database's: sync/session.h, stm_session_ahead) is at least BULK_MIN_OPS when a
 * batch from it is stored. Then the node logs it once ("sync-bulk"), its progress every
 * BULK_LOG_EVERY_MS, and its end (nothing left, by the vectors). Looking at the vectors
 * costs a pass over the peer's vector, so it is done at most once a second per peer,
 * and between looks what is left is counted down by the operations stored. */
#ifndef STM_BULK_H
#define STM_BULK_H

#include "sync/session.h"

#include <stdbool.h>
#include <stdint.h>

#define BULK_MIN_OPS 100000u      /* what makes a sync bulk */
#define BULK_LOG_EVERY_MS 10000   /* progress lines at most this often */
#define BULK_LOOK_EVERY_MS 1000   /* the vectors compared at most this often */

/* One peer's: zero it to start (a peer's struct holds one). */
typedef struct {
    bool on;            /* a bulk sync from it is under way */
    int64_t started_ms; /* when it was found bulk */
    int64_t looked_ms;  /* when the vectors were last compared */
    int64_t logged_ms;  /* when progress was last logged */
    uint64_t base;      /* the session's operations received when it began */
    uint64_t at_look;   /* ... and at the last look */
    uint64_t left;      /* what was left at the last look */
    uint64_t total;     /* what was left when it began */
} bulk_sync;

/* After a batch from the peer of session s was stored: logs what the bulk sync did
 * (short_id names the peer in the log), mine being this database's vector. */
void stm_bulk_stored(bulk_sync *b, const session_t *s, const vtrack_t *mine,
                     const char *short_id, int64_t now_ms);

#endif
