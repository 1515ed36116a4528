/* apply_filter.c - the policy's say on each operation before it applies (apply.h,
 * invariant 10): the filter a node sets (node/admit.h) is asked first, by the writer's
 * version and names; what it refuses is parked ('policy') and is no write here. Only an
 * applier with a filter retries those (apply_batch.c: stm_applier_replay,
 * stm_applier_retry_policy). */
#include "apply_internal.h"

void stm_applier_set_filter(applier_t *a, apply_filter_fn fn, void *ctx)
{
    a->filter = fn;
    a->filter_ctx = ctx;
}

/* Parks those of ops[0..n) (one row change, recorded already) the filter refuses
 * (invariant 10), keeping the others, in order, at the front: *n is how many. */
stm_err stm_apply_filter(applier_t *a, const op_t **ops, size_t *n, apply_stats *st,
                         stm_error *err)
{
    if (!a->filter)
        return STM_OK;
    size_t kept = 0;
    stm_err rc = STM_OK;
    for (size_t i = 0; i < *n && rc == STM_OK; i++) {
        char reason[256];
        reason[0] = '\0';
        if (a->filter(a->filter_ctx, &ops[i]->version_id, ops[i]->table, ops[i]->column, reason,
                      sizeof reason))
            ops[kept++] = ops[i];
        else
            rc = stm_apply_park(a, ops[i], PARK_POLICY, reason[0] ? reason : "refused by policy",
                                st, err);
    }
    *n = kept;
    return rc;
}
