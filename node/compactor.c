/* compactor.c - the node's compaction (compactor.h): passes on a timer, a slice a turn. */
#include "compactor.h"
#include "peer.h"
#include "base/clock.h"
#include "base/log.h"
#include "base/mem.h"
#include "sync/compact.h"
#include "sync/horizon.h"
#include "sync/session.h"

#include <stdlib.h>

/* After a failed slice (busy, read-only): tried again then. */
#define S_RETRY_MS 1000

struct compactor {
    compactor_options o;
    int64_t next_ms;      /* when the next pass starts (monotonic) */
    bool running;         /* a pass is under way: its next slice is due at once */
    bool asked;           /* a pass was asked for (stemma compact), even when off */
    int64_t retry_ms;     /* a failed slice waits until then */
    bool failing;         /* that failure is logged (once) */
    compact_cursor at;    /* where the pass stands */
    vector_t *horizon;    /* read at the pass's start; NULL: no peer known */
    compact_stats pass;   /* the pass so far */
    int64_t pass_ms, pass_slice_ms;
    uint64_t pass_slices, pass_known;
    compactor_figures done; /* what finished passes did */
};

compactor_t *stm_compactor_new(const compactor_options *o, int64_t now_ms)
{
    compactor_t *c = stm_calloc(1, sizeof *c);
    c->o = *o;
    c->next_ms = now_ms + o->interval_ms;
    c->done.enabled = o->enabled;
    c->done.last_ms = -1;
    return c;
}

void stm_compactor_destroy(compactor_t **self_p)
{
    compactor_t *c = *self_p;
    if (!c)
        return;
    stm_vector_destroy(&c->horizon);
    free(c);
    *self_p = NULL;
}

int64_t stm_compactor_due(const compactor_t *c)
{
    if (c->running)
        return c->retry_ms;
    return c->o.enabled || c->asked ? c->next_ms : INT64_MAX;
}

void stm_compactor_start(compactor_t *c, int64_t now_ms)
{
    if (c->running)
        return;
    c->next_ms = now_ms;
    c->asked = true;
}

/* Notes what each peer this node syncs with holds, and reads the horizon (horizon.h),
 * in one transaction of l's database. */
static stm_err s_begin_pass(compactor_t *c, local_t *l, mesh_t *mesh, stm_error *err)
{
    store_t *store = stm_local_store(l);
    int64_t now = stm_wall_ms();
    stm_err rc = stm_store_exec(store, "BEGIN IMMEDIATE", err);
    if (rc != STM_OK)
        return rc;
    for (size_t i = 0; i < stm_mesh_count(mesh) && rc == STM_OK; i++) {
        peer_t *p = stm_mesh_at(mesh, i);
        peer_state state = stm_peer_get_state(p);
        const vector_t *theirs = stm_session_theirs(stm_peer_session(p));
        if (!stm_peer_id(p) || !theirs || !stm_peer_last_seen(p) ||
            (state != PEER_CONNECTED && state != PEER_GONE))
            continue;
        int64_t seen = state == PEER_CONNECTED ? now : (int64_t)stm_peer_last_seen(p) * 1000;
        rc = stm_horizon_note(store, stm_peer_id(p), theirs, seen, err);
    }
    size_t known = 0;
    stm_vector_destroy(&c->horizon);
    if (rc == STM_OK)
        rc = stm_horizon_read(store, now, (int64_t)c->o.known_peer_hours * 3600 * 1000,
                              &c->horizon, &known, err);
    if (rc == STM_OK)
        rc = stm_store_exec(store, "COMMIT", err);
    else if (stm_store_exec(store, "ROLLBACK", NULL) != STM_OK) {
        /* err says what failed; a failed ROLLBACK leaves nothing open */
    }
    c->pass_known = known;
    return rc;
}

void stm_compactor_run(compactor_t *c, local_t *l, mesh_t *mesh, int64_t now_ms)
{
    stm_error err = {0};
    stm_err rc = STM_OK;
    if (!c->running) {
        c->at = (compact_cursor){0, 0};
        c->pass = (compact_stats){0};
        c->pass_ms = c->pass_slice_ms = 0;
        c->pass_slices = 0;
        rc = s_begin_pass(c, l, mesh, &err);
        if (rc == STM_OK) {
            c->running = true;
            c->asked = false;
            c->next_ms = now_ms + c->o.interval_ms;
        }
    }
    int64_t start = stm_monotime_ms();
    if (rc == STM_OK)
        rc = stm_applier_compact(stm_local_applier(l), c->horizon, &c->at, COMPACT_SLICE_ROWS,
                                 &c->pass, &err);
    int64_t took = stm_monotime_ms() - start;
    if (rc != STM_OK) {
        c->retry_ms = now_ms + S_RETRY_MS;
        if (!c->running)
            c->next_ms = c->retry_ms;
        if (!c->failing)
            stm_log_event(STM_LOG_WARN, "compaction", NULL, "%s (tried again)", err.msg);
        c->failing = true;
        return;
    }
    c->failing = false;
    c->retry_ms = 0;
    c->pass_ms += took;
    c->pass_slice_ms = took > c->pass_slice_ms ? took : c->pass_slice_ms;
    c->pass_slices++;
    if (!c->pass.done)
        return;
    c->running = false;
    stm_vector_destroy(&c->horizon);
    c->done.passes++;
    c->done.pruned += c->pass.pruned;
    c->done.last_pruned = c->pass.pruned;
    c->done.last_waiting = c->pass.waiting;
    c->done.last_rows = c->pass.rows;
    c->done.last_slices = c->pass_slices;
    c->done.last_ms = c->pass_ms;
    c->done.last_slice_ms = c->pass_slice_ms;
    c->done.known_peers = c->pass_known;
    if (c->pass.pruned || c->pass.waiting)
        stm_log_event(STM_LOG_INFO, "compaction", NULL,
                      "%llu operations pruned, %llu kept for %llu known peers that lack what "
                      "replaced them; %llu rows in %llu slices, %lld ms",
                      (unsigned long long)c->pass.pruned, (unsigned long long)c->pass.waiting,
                      (unsigned long long)c->pass_known, (unsigned long long)c->pass.rows,
                      (unsigned long long)c->pass_slices, (long long)c->pass_ms);
}

void stm_compactor_figures(const compactor_t *c, compactor_figures *out)
{
    *out = c->done;
    out->running = c->running;
}
