/* compactor.h - the node's compaction (sync/compact.h): a pass every interval, run one
 * slice (a transaction of at most COMPACT_SLICE_ROWS stored rows) per turn of the loop, so
 * that peers and the control socket are answered between slices; at the start of each
 * pass the peers it synced with are noted with what they hold (sync/horizon.h), and the
 * horizon read once for the whole pass. `stemma compact` starts a pass at once. Its
 * figures are what `stemma stats` shows of compaction.
 *
 * Which peers hold pruning back: those connected (full or partial sync) at a pass's
 * start, noted as heard from now; those gone, noted as heard from when they last spoke;
 * and those noted before (by an earlier run, or before they were refused) and heard from
 * within known_peer_hours. A peer refused is not noted; one never heard from holds
 * nothing back. */
#ifndef STM_COMPACTOR_H
#define STM_COMPACTOR_H

#include "local.h"
#include "mesh.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct compactor compactor_t;

typedef struct {
    bool enabled;         /* [compaction] enabled */
    int interval_ms;      /* [compaction] interval_ms: between passes */
    int known_peer_hours; /* [compaction] known_peer_hours */
} compactor_options;

/* What it has done, for stats. */
typedef struct {
    bool enabled;
    bool running;            /* a pass is under way */
    uint64_t passes;         /* passes finished since the node started */
    uint64_t pruned;         /* operations pruned since the node started */
    uint64_t last_pruned;    /* by the last pass finished */
    uint64_t last_waiting;   /* replaced operations it kept for known peers */
    uint64_t last_rows;      /* stored rows it looked at */
    uint64_t last_slices;    /* transactions it took */
    int64_t last_ms;         /* the time its slices took together; -1: none yet */
    int64_t last_slice_ms;   /* its longest slice */
    uint64_t known_peers;    /* peers that held pruning back in it */
} compactor_figures;

/* A compactor whose first pass is due interval_ms from now_ms (monotonic). The caller
 * owns it (stm_compactor_destroy). */
compactor_t *stm_compactor_new(const compactor_options *o, int64_t now_ms);
void stm_compactor_destroy(compactor_t **self_p);

/* When the next slice is due (monotonic ms): now while a pass is under way; INT64_MAX
 * when compaction is off. */
int64_t stm_compactor_due(const compactor_t *c);
/* Runs the next slice on l's database, starting a pass first when none is under way
 * (the peers of mesh noted, the horizon read). A failure (the database busy past its
 * timeout, full, read-only) is logged once and the slice tried again a second later;
 * nothing of it is kept. */
void stm_compactor_run(compactor_t *c, local_t *l, mesh_t *mesh, int64_t now_ms);
/* A pass at once (`stemma compact`), even when compaction is off; nothing when one is
 * under way. */
void stm_compactor_start(compactor_t *c, int64_t now_ms);
void stm_compactor_figures(const compactor_t *c, compactor_figures *out);

#endif
