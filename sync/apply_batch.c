/* apply_batch.c - the applier's batches: the transactions they run in (the applier's
 * own, or one held open over many), operations in causal order, each row change judged
 * before it applies (by the filter, the migrations this database has run, its clock:
 * invariants 7, 10 and 11) and translated to this version's names, then handed to
 * apply.c; stand-ins recorded; and what is parked retried: after a migration, for the
 * policy, for a clock ahead, and what the rows written wake. */
#include "apply_internal.h"
#include "base/buf.h"
#include "base/clock.h"
#include "base/log.h"
#include "base/mem.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* ---- clocks ahead of this machine's (invariant 7) ---- */

/* The greatest clock an operation applied now may have: wall + max_ahead, every
 * counter value of that millisecond included. */
static uint64_t s_clock_limit(const applier_t *a, int64_t now)
{
    int64_t ms = now + a->max_ahead_ms;
    if (ms < 0)
        return 0;
    if ((uint64_t)ms >= UINT64_C(1) << 48)
        return UINT64_MAX;
    return (uint64_t)ms << 16 | 0xffffu;
}

/* Parks ops[0..n) (one row change, one clock), whose clock is beyond the limit, and
 * notes when it may come within it. */
static stm_err s_park_ahead(applier_t *a, const op_t *const *ops, size_t n, apply_stats *st,
                            stm_error *err)
{
    char reason[96];
    snprintf(reason, sizeof reason, "its clock is more than %lld ms ahead of this machine's",
             (long long)a->max_ahead_ms);
    int64_t due = (int64_t)(ops[0]->hlc >> 16) - a->max_ahead_ms;
    if (due < a->ahead_due)
        a->ahead_due = due;
    stm_err rc = STM_OK;
    for (size_t i = 0; i < n && rc == STM_OK; i++)
        rc = stm_apply_park(a, ops[i], PARK_AHEAD, reason, st, err);
    return rc;
}

/* ---- batches ---- */

/* Causal order: by clock, then origin, then sequence. */
static int s_causal(const void *pa, const void *pb)
{
    const op_t *a = *(const op_t *const *)pa, *b = *(const op_t *const *)pb;
    int c = stm_op_clock_compare(a->hlc, &a->origin, b->hlc, &b->origin);
    if (c)
        return c;
    return a->seq < b->seq ? -1 : a->seq > b->seq;
}

/* Applies ops (any order) inside the open transaction. */
static stm_err s_apply_ops(applier_t *a, const op_t **ops, size_t n, apply_stats *st,
                           stm_error *err)
{
    /* Batches from a reader (oplog.h) arrive in causal order already. */
    size_t sorted = 1;
    while (sorted < n && s_causal(&ops[sorted - 1], &ops[sorted]) <= 0)
        sorted++;
    if (sorted < n)
        qsort(ops, n, sizeof *ops, s_causal);
    uint64_t limit = s_clock_limit(a, stm_wall_ms());
    stm_txn_set_clock_limit(a->txn, limit);
    stm_err rc = STM_OK;
    size_t i = 0;
    while (i < n && rc == STM_OK) {
        size_t j = i + 1;
        if (!stm_op_is_delete(ops[i]))
            while (j < n && stm_op_same_row_change(ops[i], ops[j]))
                j++;
        size_t fresh = j - i;
        if (!a->retrying)
            rc = stm_txn_take_new(a->txn, ops + i, j - i, &fresh, &st->present, err);
        /* The policy first: what it refuses is never judged by its clock or applied. */
        if (rc == STM_OK && fresh)
            rc = stm_apply_filter(a, ops + i, &fresh, st, err);
        bool ran = true;
        if (rc == STM_OK && fresh && ops[i]->derived)
            rc = stm_apply_ran(a, &ops[i]->version_id, &ran, err);
        if (rc == STM_OK && fresh && !ran) {
            /* Written by a migration this database has not run (invariant 11). */
            char hex[STM_ID_HEX_LEN + 1], why[160];
            stm_id_to_hex(&ops[i]->version_id, hex);
            snprintf(why, sizeof why,
                     "written by the migration to version %.12s, which this database has not "
                     "run: replays once it has",
                     hex);
            rc = stm_apply_park_all(a, ops + i, fresh, why, st, err);
        } else if (rc == STM_OK && fresh && ops[i]->hlc > limit) {
            rc = s_park_ahead(a, ops + i, fresh, st, err);
        } else if (rc == STM_OK && fresh) {
            stm_txn_clock_seen(a->txn, ops[i]->hlc); /* a retried one, recorded before */
            /* Written at another version: this database's names (invariant 8). */
            uint64_t gone = 0;
            const char *park_whole = NULL;
            const op_t *const *here = stm_apply_translate(a, ops + i, &fresh, &gone, &park_whole);
            if (!fresh)
                st->applied += gone; /* recorded; their table is gone here */
            if (fresh && park_whole)
                rc = stm_apply_park_all(a, here, fresh, park_whole, st, err);
            else if (fresh) {
                a->writer = &here[0]->version_id;
                rc = stm_op_is_delete(here[0]) ? stm_apply_delete(a, here[0], st, err)
                                               : stm_apply_writes(a, here, fresh, st, err);
                a->writer = NULL;
            }
        }
        i = j;
    }
    /* Local changes recorded at the next start are this database's own: no limit. */
    stm_txn_set_clock_limit(a->txn, UINT64_MAX);
    return rc;
}

/* park_apply_fn: parked operations again, by the same rules, not recorded again. */
static stm_err s_reapply(void *ctx, const op_t **ops, size_t n, uint64_t *applied, stm_error *err)
{
    applier_t *a = ctx;
    apply_stats again = {0};
    a->retrying = true;
    stm_err rc = s_apply_ops(a, ops, n, &again, err);
    a->retrying = false;
    *applied = again.applied;
    return rc;
}

/* Retries the operations parked for their clock once the earliest may apply
 * (invariant 7); re-parking them notes the next time. */
static stm_err s_retry_ahead(applier_t *a, uint64_t *replayed, stm_error *err)
{
    if (stm_wall_ms() < a->ahead_due)
        return STM_OK;
    if (!stm_park_any(a->park, PARK_AHEAD)) {
        a->ahead_due = INT64_MAX; /* until one is parked, which notes its time */
        return STM_OK;
    }
    a->ahead_due = INT64_MAX;
    stm_err rc = stm_park_retry(a->park, PARK_AHEAD, s_reapply, a, replayed, err);
    if (rc != STM_OK)
        a->ahead_due = INT64_MIN; /* rolled back: they are parked as they were */
    return rc;
}

/* ---- transactions ---- */

stm_err stm_apply_begin(applier_t *a, stm_error *err)
{
    stm_park_begin(a->park);
    stm_err rc = stm_txn_begin(a->txn, err);
    if (rc == STM_OK)
        stm_apply_lens_begin(a); /* a migration may have moved the database on */
    stm_rowsql_sync(a->rowsql);
    /* What the application changed may have freed a unique value a row aside lost, or
     * deleted a row whose key one aside takes. */
    bool local = rc == STM_OK && stm_txn_collected(a->txn);
    if (local)
        stm_txn_touch_all(a->txn);
    if (rc == STM_OK && (rc = stm_apply_settle_local(a, err)) == STM_OK && local)
        rc = stm_apply_settle_all(a, err);
    if (rc != STM_OK) {
        stm_txn_rollback(a->txn);
        stm_park_rollback(a->park);
    }
    return rc;
}

/* Commits when rc is STM_OK, else rolls back; returns the outcome. */
stm_err stm_apply_end(applier_t *a, stm_err rc, stm_error *err)
{
    /* What the application wrote (collected at the start) or anything written since
     * the last batch may free operations parked for a constraint (invariant 5). */
    uint64_t replayed = 0;
    if (rc == STM_OK)
        rc = stm_park_wake(a->park, s_reapply, a, &replayed, err);
    if (rc == STM_OK)
        rc = stm_txn_commit(a->txn, err);
    else
        stm_txn_rollback(a->txn);
    /* Not committed: operations a retry took out are parked again as they were, and
     * when they are due is not known any more (invariant 7). */
    if (rc != STM_OK) {
        a->ahead_due = INT64_MIN;
        stm_park_rollback(a->park);
    }
    return rc;
}

stm_err stm_applier_begin(applier_t *a, stm_error *err)
{
    if (a->open)
        return STM_OK;
    stm_err rc = stm_apply_begin(a, err);
    a->open = rc == STM_OK;
    return rc;
}

stm_err stm_applier_commit(applier_t *a, stm_error *err)
{
    if (!a->open)
        return STM_OK;
    a->open = false;
    return stm_apply_end(a, STM_OK, err);
}

void stm_applier_rollback(applier_t *a)
{
    if (a->open) {
        stm_txn_rollback(a->txn);
        stm_park_rollback(a->park);
        a->ahead_due = INT64_MIN; /* as in stm_apply_end */
    }
    a->open = false;
}

/* Records the stand-ins of batch (invariant 8), each new one logged once. */
static stm_err s_take_withheld(applier_t *a, const opbatch_t *batch, apply_stats *st,
                               stm_error *err)
{
    stm_err rc = STM_OK;
    for (size_t i = 0; i < stm_opbatch_withheld_count(batch) && rc == STM_OK; i++) {
        const op_withheld *w = stm_opbatch_withheld_at(batch, i);
        uint64_t fresh = 0;
        rc = stm_txn_take_withheld(a->txn, w, &fresh, &st->present, err);
        if (rc == STM_OK && w->pruned)
            st->pruned += fresh;
        if (rc != STM_OK || !fresh || w->pruned)
            continue;
        st->withheld += fresh;
        buf_t what = BUF_INIT;
        stm_op_withheld_describe(&what, w);
        stm_log_event(STM_LOG_WARN, "withheld", NULL,
                      "%s: withheld by the node that had it, too large to travel (at most %u "
                      "bytes). This database holds those operations as withheld and lacks that "
                      "write; a later, smaller write of the row travels as usual",
                      stm_buf_str(&what), OP_MAX_CHANGE_BYTES);
        stm_buf_free(&what);
    }
    return rc;
}

stm_err stm_applier_apply(applier_t *a, const opbatch_t *batch, apply_stats *stats, stm_error *err)
{
    bool own = !a->open;
    stm_err rc = own ? stm_apply_begin(a, err) : STM_OK;
    if (rc != STM_OK)
        return rc;
    size_t n = stm_opbatch_count(batch);
    const op_t **ops = stm_calloc(n + 1, sizeof *ops);
    for (size_t i = 0; i < n; i++)
        ops[i] = stm_opbatch_at(batch, i);
    apply_stats st = {0};
    a->any_applied = false;
    rc = s_take_withheld(a, batch, &st, err);
    if (rc == STM_OK)
        rc = s_apply_ops(a, ops, n, &st, err);
    free(ops);
    /* A unique value a row kept aside lost may be free again. */
    if (rc == STM_OK && a->any_applied)
        rc = stm_apply_settle_all(a, err);
    /* A row a refused write needs may have just arrived: those waiting for the rows
     * written (the batch's, and what the application wrote) are retried, not every
     * one parked for a constraint (park.h, invariant 5). */
    if (rc == STM_OK)
        rc = stm_park_wake(a->park, s_reapply, a, &st.replayed, err);
    /* This machine's clock may have caught up with some parked for theirs. */
    if (rc == STM_OK)
        rc = s_retry_ahead(a, &st.replayed, err);
    if (own)
        rc = stm_apply_end(a, rc, err);
    else if (rc != STM_OK)
        stm_applier_rollback(a);
    if (rc == STM_OK) {
        stats->applied += st.applied;
        stats->present += st.present;
        stats->parked += st.parked;
        stats->replayed += st.replayed;
        stats->withheld += st.withheld;
        stats->pruned += st.pruned;
    }
    return rc;
}

int64_t stm_applier_ahead_due(const applier_t *a)
{
    return a->ahead_due;
}

stm_err stm_applier_retry_ahead(applier_t *a, apply_stats *stats, stm_error *err)
{
    if (stm_wall_ms() < a->ahead_due)
        return STM_OK;
    stm_err rc = stm_apply_begin(a, err);
    if (rc != STM_OK)
        return rc;
    uint64_t replayed = 0;
    rc = s_retry_ahead(a, &replayed, err);
    rc = stm_apply_end(a, rc, err);
    if (rc == STM_OK)
        stats->replayed += replayed;
    return rc;
}

stm_err stm_applier_replay(applier_t *a, apply_stats *stats, stm_error *err)
{
    stm_err rc = stm_apply_begin(a, err);
    if (rc != STM_OK)
        return rc;
    uint64_t replayed = 0;
    a->ahead_due = INT64_MAX; /* re-parking notes it again */
    /* Without the policy, what it refused stays parked (invariant 10). */
    rc =
        stm_park_retry(a->park, a->filter ? PARK_ANY : PARK_ADMITTED, s_reapply, a, &replayed, err);
    /* A replay a migration left owed is done when this commits (store.h). */
    if (rc == STM_OK)
        rc = stm_store_set_replay_owed(a->store, false, err);
    rc = stm_apply_end(a, rc, err);
    if (rc == STM_OK)
        stats->replayed += replayed;
    return rc;
}

stm_err stm_applier_retry_policy(applier_t *a, apply_stats *stats, stm_error *err)
{
    if (!a->filter || !stm_park_any(a->park, PARK_POLICY))
        return STM_OK;
    stm_err rc = stm_apply_begin(a, err);
    if (rc != STM_OK)
        return rc;
    uint64_t replayed = 0;
    rc = stm_park_retry(a->park, PARK_POLICY, s_reapply, a, &replayed, err);
    rc = stm_apply_end(a, rc, err);
    if (rc == STM_OK)
        stats->replayed += replayed;
    return rc;
}

stm_err stm_applier_replay_owed(applier_t *a, apply_stats *stats, bool *ran, stm_error *err)
{
    *ran = stm_store_replay_owed(a->store);
    return *ran ? stm_applier_replay(a, stats, err) : STM_OK;
}

void stm_applier_set_max_clock_ahead(applier_t *a, int64_t ms)
{
    a->max_ahead_ms = ms;
    a->ahead_due = INT64_MIN; /* parked ones may apply under the new bound */
}

stm_err stm_applier_collect(applier_t *a, stm_error *err)
{
    /* The rows collected are noted; the replay after the migration retries them all. */
    stm_park_begin(a->park);
    stm_err rc = stm_txn_collect(a->txn, err);
    stm_rowsql_sync(a->rowsql);
    /* In the caller's transaction capture is on: what settling writes is stemma's, not
     * the application's, so the triggers are told to keep out while it runs. */
    if (rc == STM_OK && stm_opbatch_count(stm_txn_settle(a->txn))) {
        rc = stm_store_exec(a->store, "UPDATE stemma_local SET applying = 1 WHERE id = 1", err);
        if (rc == STM_OK)
            rc = stm_apply_settle_local(a, err);
        if (rc == STM_OK)
            rc = stm_store_exec(a->store, "UPDATE stemma_local SET applying = 0 WHERE id = 1", err);
    }
    return rc;
}

stm_err stm_applier_collect_slice(applier_t *a, size_t max_rows, bool *more, stm_error *err)
{
    *more = false;
    stm_txn_limit_collect(a->txn, max_rows);
    stm_err rc = stm_apply_begin(a, err);
    if (rc != STM_OK)
        return rc;
    *more = stm_txn_collect_more(a->txn);
    return stm_apply_end(a, STM_OK, err);
}

stm_err stm_applier_catch_up(applier_t *a, stm_error *err)
{
    bool more = true;
    stm_err rc = STM_OK;
    while (rc == STM_OK && more) {
        int64_t t0 = stm_monotime_ms();
        rc = stm_applier_collect_slice(a, APPLY_COLLECT_SLICE_ROWS, &more, err);
        /* As long again without the lock (apply.h): the application's writes, polling
         * for it from their busy handler, find it free. */
        int64_t took = stm_monotime_ms() - t0;
        if (rc == STM_OK && more && took > 0) {
            struct timespec ts = {.tv_sec = took / 1000, .tv_nsec = (took % 1000) * 1000000L};
            while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
                ;
        }
    }
    return rc;
}

origin_change stm_applier_origin_change(applier_t *a)
{
    return stm_txn_origin_change(a->txn);
}
