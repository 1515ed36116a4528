/* mesh.h - the peers a node knows: the set, finding one, meeting those a peer list
 * names, and sending to all that are connected.
 *
 * The mesh owns its peers (peer.h), in the order they were met. A peer is never
 * removed while the node runs, so a peer_t * taken from the mesh stays valid as long
 * as the mesh: the inbound queue and the loop rely on it. The node's own id is never
 * a peer. */
#ifndef STM_MESH_H
#define STM_MESH_H

#include "peer.h"
#include "wire.h"

#include <stddef.h>
#include <stdint.h>

/* Peers named in peer lists are met until the node knows this many: each takes a
 * socket (libzmq allows 1,023 by default), and a peer list is another node's claim. */
#define MESH_MAX_LEARNED 1000

typedef struct mesh mesh_t;

/* An empty mesh for the node whose id is self (copied); its peers get timing and the
 * node's inbox (lent; it must outlive the mesh). The caller owns it (stm_mesh_destroy),
 * which destroys every peer. */
mesh_t *stm_mesh_new(const stm_id *self, const peer_timing *timing, inbox_t *inbox);
void stm_mesh_destroy(mesh_t **self_p);

size_t stm_mesh_count(const mesh_t *m);
/* Peer i (in the order met), lent for the mesh's life. */
peer_t *stm_mesh_at(const mesh_t *m, size_t i);
/* The peer with this id, or at this endpoint; NULL when none. Lent. */
peer_t *stm_mesh_find(const mesh_t *m, const stm_id *id);
peer_t *stm_mesh_find_endpoint(const mesh_t *m, const char *endpoint);
/* Adds a peer (stm_peer_new's arguments) and lends it. */
peer_t *stm_mesh_add(mesh_t *m, const stm_id *id, const char *endpoint, bool configured);

/* Meets the peers h's peer list names that are not known yet (by id or endpoint), up
 * to MESH_MAX_LEARNED peers: each is CONNECTING, its HELLO due at once. */
void stm_mesh_learn(mesh_t *m, const wire_hello *h);

/* The connected peers with known ids but except, as a HELLO names them: the array is
 * the caller's to free, its endpoints lent by the peers. */
wire_peer *stm_mesh_list(const mesh_t *m, const peer_t *except, size_t *count);
/* Sends msg to every connected peer. */
void stm_mesh_send_connected(mesh_t *m, const buf_t *msg);
/* Every peer may lack operations now (a local write, a batch stored). */
void stm_mesh_mark_more(mesh_t *m);

#endif
