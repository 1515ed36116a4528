/* judge.h - how a node judges a peer from its HELLO: the relation of their schema
 * histories (lineage/relation.h), and what the node's policy lets sync between them.
 *
 * The verdict is one of
 *   full     everything syncs (same, ancestor, descendant by default); what the older
 *            side lacks is parked there until it migrates, never lost
 *   partial  only what both sides share syncs (divergent by default): operations on
 *            columns or tables only one side has, or on conflicting columns, are parked
 *            by the receiver
 *   refused  nothing syncs, and the reason says why (unrelated by default; a peer older
 *            than min_supported_version; a relation the policy turns off)
 * A refusal is never silent: the node sends the reason to the peer (REFUSE) and both
 * show it in their reports and logs.
 *
 * This module only judges; the peer itself (its state, vectors and window) is
 * node/peer.h. The verdict's types keep their peer_ names (peer_policy, peer_verdict,
 * peer_sync) until exported names get the project prefix, so that the configuration
 * and the reports need not change twice. */
#ifndef STM_JUDGE_H
#define STM_JUDGE_H

#include "lineage/relation.h"
#include "wire.h"

typedef enum { PEER_SYNC_FULL, PEER_SYNC_PARTIAL, PEER_SYNC_REFUSED } peer_sync;

/* What the node's policy allows per relation: node.toml's [policy], whose defaults
 * are in the table of settings (settings.c; stm_config_policy_default). */
typedef enum { POLICY_FULL, POLICY_SHARED, POLICY_NONE } policy_mode;

typedef struct {
    policy_mode mode[5];       /* indexed by relation_kind */
    int min_supported_version; /* refuse peers whose database is older; 0: none */
    int max_version_gap;       /* warn above this gap; 0: no limit */
} peer_policy;

/* The judgement of one HELLO. Owns cmp (stm_peer_verdict_clear). */
typedef struct {
    comparison_t *cmp;  /* stm_relation_compare(local, the peer's lineage) */
    peer_sync sync;     /* full, partial or refused */
    char reason[512];   /* in words: why, what syncs, what does not */
    char warning[256];  /* e.g. a version gap above max_version_gap; "" when none */
} peer_verdict;

/* "full", "partial", "refused": static. */
const char *stm_peer_sync_name(peer_sync s);

/* Judges the peer whose database lineage is `remote` (from its HELLO) against the
 * local one. *v is filled and owns its comparison (stm_peer_verdict_clear). */
void stm_judge_hello(const lineage_t *local, const lineage_t *remote, const peer_policy *p,
                     peer_verdict *v);
/* After stm_judge_hello: renames the lenses (and the lineage they were derived from,
 * both lent; either NULL: nothing) follow between the two heads are no longer named as
 * parked or not shared but as translated (relation.h, stm_comparison_follow); so are
 * those of the peer's branch b (lent; NULL: none), when its head is on another branch
 * (its version base + upto: stm_comparison_follow_branch). */
void stm_judge_follow(peer_verdict *v, const lens_set_t *lenses, const lineage_t *set,
                      const lens_branch *b, size_t upto, const peer_policy *p);
void stm_peer_verdict_clear(peer_verdict *v);

#endif
