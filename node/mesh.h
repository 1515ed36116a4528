/* mesh.h - the peers a node knows, and which of them it keeps: the set, finding one,
 * meeting those a peer list names, choosing whom to dial, letting in those that dial
 * it, and sending to all that are connected.
 *
 * The mesh owns its peers (peer.h), in the order they were met. A peer is never
 * removed while the node runs, so a peer_t * taken from the mesh stays valid as long
 * as the mesh: the inbound queue and the loop rely on it. The node's own id is never
 * a peer.
 *
 * A sparse mesh (docs/architecture.md, "A sparse mesh"). Each peer has a role: the
 * peers node.toml names are always kept; of the peers learned (from peer lists,
 * beacons, or their own HELLO), a node dials about log2 of how many it knows, chosen
 * by the distance of ids (choose.h), and lets in about as many more that dial it; the
 * rest are only known, and are chosen when a kept one goes away. Each kept peer costs
 * a connection and its share of every operation's traffic, so the bound is what keeps
 * a mesh of nodes that all trust each other from becoming a complete graph.
 *
 * Invariants:
 *
 *  1. A peer is active (peer.h) exactly when its role is not MESH_KNOWN.
 *  2. With k the target (stm_mesh_target): at most k peers are CHOSEN; CHOSEN and
 *     DIALLED_IN peers together number at most 2k; and no peer is made active beyond
 *     limits.max_active, but for those node.toml names.
 *  3. A CHOSEN peer that was CONNECTED in its role and is no longer (gone, refused, or
 *     it declined us), or that is not CONNECTED within limits.trial_ms, becomes KNOWN;
 *     so does a DIALLED_IN or LISTED one that is gone, or whose history this node
 *     refuses. Let go so, none is chosen again for limits.retry_ms.
 *  4. Roles change only in stm_mesh_add, stm_mesh_set_configured, stm_mesh_admit,
 *     stm_mesh_declined and stm_mesh_choose. */
#ifndef STM_MESH_H
#define STM_MESH_H

#include "peer.h"
#include "wire.h"

#include <stddef.h>
#include <stdint.h>

/* Peers named in peer lists are met until the node knows this many: each takes
 * memory, and a peer list is another node's claim. */
#define MESH_MAX_LEARNED 1000

/* Why a peer is kept, or that it is not. */
typedef enum {
    MESH_CONFIGURED, /* node.toml's [peers] (or stemma peer add): always dialled */
    MESH_CHOSEN,     /* learned, and chosen to be dialled (stm_mesh_choose) */
    MESH_LISTED,     /* it dialled this node, which its node.toml lists: let in */
    MESH_DIALLED_IN, /* learned: it dialled this node and was let in (stm_mesh_admit) */
    MESH_KNOWN,      /* learned and not kept: only remembered, a candidate */
} mesh_role;

/* "configured", "listed", "chosen", "dialled-in", "known": static. */
const char *stm_mesh_role_name(mesh_role r);

/* The bounds of a node's mesh ([mesh] in node.toml; fdbudget.h). */
typedef struct {
    int max_learned;   /* the most learned peers dialled ([mesh] max_learned_peers) */
    size_t max_active; /* the most active peers the process's descriptors allow */
    int trial_ms;      /* how long a chosen peer has to connect */
    int retry_ms;      /* how long a peer let go is not chosen again */
} mesh_limits;

/* Whether this node trusts a key (the ZAP handler's answer; any under trust on first
 * use): only such peers are chosen. */
typedef bool (*mesh_trusted_fn)(void *ctx, const stm_id *id);

typedef struct mesh mesh_t;

/* An empty mesh for the node whose id is self (copied); its peers get timing, it keeps
 * within limits (copied), and the node's inbox (lent; it must outlive the mesh). The
 * caller owns it (stm_mesh_destroy), which destroys every peer. */
mesh_t *stm_mesh_new(const stm_id *self, const peer_timing *timing, const mesh_limits *limits,
                     inbox_t *inbox);
void stm_mesh_destroy(mesh_t **self_p);

size_t stm_mesh_count(const mesh_t *m);
/* Peer i (in the order met), lent for the mesh's life, and its role. */
peer_t *stm_mesh_at(const mesh_t *m, size_t i);
mesh_role stm_mesh_role_at(const mesh_t *m, size_t i);
/* p's role (MESH_KNOWN when p is not the mesh's). */
mesh_role stm_mesh_role_of(const mesh_t *m, const peer_t *p);
/* The peer with this id, or at this endpoint; NULL when none. Lent. */
peer_t *stm_mesh_find(const mesh_t *m, const stm_id *id);
peer_t *stm_mesh_find_endpoint(const mesh_t *m, const char *endpoint);
/* Adds a peer (stm_peer_new's arguments) in role, MESH_CONFIGURED (dialled at once) or
 * MESH_KNOWN (inactive until chosen or let in), and lends it. */
peer_t *stm_mesh_add(mesh_t *m, const stm_id *id, const char *endpoint, mesh_role role);
/* `stemma peer add` (configured) or `remove` named p, a peer of the mesh: it is
 * MESH_CONFIGURED and active from now_ms, or MESH_KNOWN and inactive. */
void stm_mesh_set_configured(mesh_t *m, peer_t *p, bool configured, int64_t now_ms);

/* Remembers the peers h's peer list names that are not known yet (by id or endpoint),
 * up to MESH_MAX_LEARNED peers, as MESH_KNOWN: stm_mesh_choose may choose them. */
void stm_mesh_learn(mesh_t *m, const wire_hello *h);

/* k: the learned peers this node dials, log2 of the peers it knows and one more
 * (floor(log2 n) + 1: 2 of 2, 3 of 4, 5 of 16, 7 of 64), within max_learned and what
 * the descriptors leave beside the configured peers. */
size_t stm_mesh_target(const mesh_t *m);
/* An inactive peer dialled this node (its HELLO came): let in and made active from
 * now_ms when there is room (invariant 2): as MESH_LISTED when listed (it names this
 * node in its own node.toml), within max_active; else as MESH_DIALLED_IN. False: no
 * room, it stays known (the caller tells it so). */
bool stm_mesh_admit(mesh_t *m, peer_t *p, bool listed, int64_t now_ms);
/* p said it does not keep this node (its HELLO's "full"): a chosen, listed or
 * dialled-in peer becomes known (invariant 3); a configured one keeps being asked. */
void stm_mesh_declined(mesh_t *m, peer_t *p, int64_t now_ms);
/* Lets go of kept peers that went away (invariant 3), then chooses known ones up to k
 * (choose.h) among those trusted says this node trusts. Cheap when nothing changed:
 * the node calls it every turn of its loop. */
void stm_mesh_choose(mesh_t *m, int64_t now_ms, mesh_trusted_fn trusted, void *ctx);
/* Something the choice depends on changed outside the mesh (a key trusted): the next
 * stm_mesh_choose looks at every known peer again. */
void stm_mesh_touch(mesh_t *m);
/* When a choice is due by time alone (a trial ending, a peer let go that may be chosen
 * again); INT64_MAX when none is. */
int64_t stm_mesh_choose_at(const mesh_t *m);

/* The connected peers with known ids but except, as a HELLO names them: the array is
 * the caller's to free, its endpoints lent by the peers. */
wire_peer *stm_mesh_list(const mesh_t *m, const peer_t *except, size_t *count);
/* Sends msg to every connected peer. */
void stm_mesh_send_connected(mesh_t *m, const buf_t *msg);
/* Every peer may lack operations now (a local write, a batch stored). */
void stm_mesh_mark_more(mesh_t *m);

#endif
