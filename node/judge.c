/* judge.c - judging a peer's HELLO: relation, then full / partial / refused by policy
 * (judge.h). Stateless: the verdict is the caller's. */
#include "judge.h"
#include "base/buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *stm_peer_sync_name(peer_sync s)
{
    switch (s) {
    case PEER_SYNC_FULL:
        return "full";
    case PEER_SYNC_PARTIAL:
        return "partial";
    case PEER_SYNC_REFUSED:
        return "refused";
    }
    return "refused";
}

#define S_REASON_MAX sizeof(((peer_verdict *)0)->reason)

/* "tasks.tags, comments (table)" for the columns on one side only or conflicting. */
static void s_not_shared(buf_t *b, const comparison_t *c, bool local_side, bool remote_side,
                         bool conflicting)
{
    size_t n = 0;
    /* The verdict keeps the first S_REASON_MAX bytes: a peer's thousands of tables
     * and columns are not listed past them. */
    for (size_t i = 0; i < c->nfamilies && b->len <= S_REASON_MAX; i++) {
        const comparison_family *f = &c->families[i];
        if (f->local_live != f->remote_live) {
            if (f->renamed_table)
                continue; /* translated (s_translated) */
            if ((f->local_live && local_side) || (f->remote_live && remote_side))
                stm_buf_printf(b, "%s%s (table)", n++ ? ", " : "", f->name);
            continue;
        }
        for (int r = COLUMN_LOCAL_ONLY; r <= COLUMN_CONFLICTING; r++) {
            if ((r == COLUMN_LOCAL_ONLY && !local_side) ||
                (r == COLUMN_REMOTE_ONLY && !remote_side) ||
                (r == COLUMN_CONFLICTING && !conflicting))
                continue;
            for (size_t k = 0; k < f->ncolumns[r] && b->len <= S_REASON_MAX; k++)
                stm_buf_printf(b, "%s%s.%s", n++ ? ", " : "", f->name, f->columns[r][k]);
        }
    }
    if (!n)
        stm_buf_puts(b, "nothing");
}

/* ", translated: users.key = users.akey, people = users" for what lenses follow. */
static void s_translated(buf_t *b, const comparison_t *c)
{
    size_t n = 0;
    for (size_t i = 0; i < c->nfamilies && b->len <= S_REASON_MAX; i++) {
        const comparison_family *f = &c->families[i];
        if (f->renamed_table && f->local_live)
            stm_buf_printf(b, "%s%s here = %s there", n++ ? ", " : "; translated: ", f->name,
                           f->renamed_table);
        const char *there = f->renamed_table ? f->renamed_table : f->name;
        for (size_t k = 0; k < f->nrenamed && b->len <= S_REASON_MAX; k++)
            stm_buf_printf(b, "%s%s.%s here = %s.%s there", n++ ? ", " : "; translated: ",
                           f->name, f->renamed[k].here, there, f->renamed[k].there);
    }
}

/* The verdict and its reason from v->cmp, by policy p. */
static void s_verdict(peer_verdict *v, const peer_policy *p)
{
    const comparison_t *c = v->cmp;
    policy_mode mode = p->mode[c->relation];
    buf_t why = BUF_INIT;
    if (p->max_version_gap > 0) {
        int gap = abs(c->stm_local_version - c->remote_version);
        if (gap > p->max_version_gap)
            snprintf(v->warning, sizeof v->warning,
                     "version gap %d (v%d here, v%d there) is over max_version_gap %d: "
                     "recommend a resync of the older side",
                     gap, c->stm_local_version, c->remote_version, p->max_version_gap);
    }
    if (p->min_supported_version > 0 && c->remote_version < p->min_supported_version) {
        v->sync = PEER_SYNC_REFUSED;
        stm_buf_printf(&why, "peer's database is at v%d, older than min_supported_version %d",
                       c->remote_version, p->min_supported_version);
    } else if (mode == POLICY_NONE) {
        v->sync = PEER_SYNC_REFUSED;
        if (c->relation == RELATION_UNRELATED)
            stm_buf_puts(&why, "unrelated schema histories (no common ancestor): the policy syncs "
                               "nothing with unrelated peers");
        else
            stm_buf_printf(&why, "the policy syncs nothing with %s peers",
                           stm_relation_name(c->relation));
    } else if (mode == POLICY_SHARED) {
        v->sync = PEER_SYNC_PARTIAL;
        if (c->relation == RELATION_DIVERGENT)
            stm_buf_printf(&why, "histories parted after v%zu: ", c->common);
        stm_buf_puts(&why, "shared columns only; not synced: ");
        s_not_shared(&why, c, true, true, true);
    } else if (c->relation == RELATION_DIVERGENT || c->relation == RELATION_UNRELATED) {
        /* The policy says full where the histories do not descend from each other:
         * everything both have syncs (node/admit.h), the rest parks where it lacks. */
        v->sync = PEER_SYNC_FULL;
        if (c->relation == RELATION_DIVERGENT)
            stm_buf_printf(&why, "histories parted after v%zu; ", c->common);
        else
            stm_buf_puts(&why, "unrelated schema histories; ");
        stm_buf_printf(&why,
                       "[policy] %s = \"full\": everything both have syncs; parked where it is "
                       "missing or of another type: ",
                       stm_relation_name(c->relation));
        s_not_shared(&why, c, true, true, true);
    } else if (c->relation == RELATION_SAME) {
        v->sync = PEER_SYNC_FULL;
        stm_buf_puts(&why, "same schema history: everything syncs");
    } else {
        v->sync = PEER_SYNC_FULL;
        bool peer_newer = c->relation == RELATION_ANCESTOR;
        stm_buf_printf(&why,
                       "%s is newer (v%d against v%d): everything syncs; parked %s until %s "
                       "migrates: ",
                       peer_newer ? "the peer" : "this node",
                       peer_newer ? c->remote_version : c->stm_local_version,
                       peer_newer ? c->stm_local_version : c->remote_version,
                       peer_newer ? "here" : "there", peer_newer ? "this node" : "the peer");
        s_not_shared(&why, c, !peer_newer, peer_newer, false);
    }
    if (v->sync != PEER_SYNC_REFUSED)
        s_translated(&why, c);
    snprintf(v->reason, sizeof v->reason, "%s", stm_buf_str(&why));
    stm_buf_free(&why);
}

void stm_judge_hello(const lineage_t *local, const lineage_t *remote, const peer_policy *p,
                     peer_verdict *v)
{
    memset(v, 0, sizeof *v);
    v->cmp = stm_relation_compare(local, remote);
    s_verdict(v, p);
}

void stm_judge_follow(peer_verdict *v, const lens_set_t *lenses, const lineage_t *set,
                      const lens_branch *b, size_t upto, const peer_policy *p)
{
    if (!v->cmp || !lenses || !set)
        return;
    stm_comparison_follow(v->cmp, lenses, set);
    if (b)
        stm_comparison_follow_branch(v->cmp, lenses, set, b, upto);
    s_verdict(v, p); /* the same verdict; the reason names what is translated */
}

void stm_peer_verdict_clear(peer_verdict *v)
{
    stm_comparison_destroy(&v->cmp);
    memset(v, 0, sizeof *v);
}
