/* node.h - the daemon: one thread that owns the database, the sockets and the peers.
 *
 * Sockets (only node/ includes zmq.h):
 *   inbox    ROUTER bound on the mesh endpoint: every peer's messages arrive here. A
 *            CURVE server unless insecure; a ZAP handler decides who may connect.
 *   outbox   one DEALER per peer, connected to its inbox: messages to it leave here.
 *            A CURVE client that knows the peer's public key, which is its node id.
 *   zap      REP on inproc://zeromq.zap.01: libzmq asks it about each connecting key.
 *   control  REP on the control endpoint (ipc inside the node directory by default, or
 *            loopback TCP): reports for `stemma report`; never reachable from the mesh.
 *
 * The loop (STYLE.md, "the daemon loop"; node.c): run every timer whose deadline has
 * come (looking for local writes and schema changes, heartbeats, storing the batches
 * received, and per peer its silence, its unacknowledged batches and its HELLO
 * retries with backoff); then, before sleeping, write keys trusted on first use and
 * send each peer what it lacks, within its window; poll inbox, zap and control until
 * the earliest of those same deadlines; handle every ready socket. Batches received
 * are stored in one transaction and each is acknowledged once it commits; those the
 * database would not take (locked by another program past busy_timeout_ms, full,
 * read-only) stay unacknowledged and are stored again later, so one attempt blocks
 * the loop for busy_timeout_ms at most (sync/inbound.h).
 *
 * Peer states (node/peer.c has the diagram and the table of legal transitions):
 * connecting (HELLOs sent, none answered) -> connected (its HELLO came and was judged)
 * -> gone (silent past peer_timeout_ms, or BYE; HELLOs resume with backoff) ->
 * connected again; refused (by us or by it) until a new HELLO. */
#ifndef STM_NODE_H
#define STM_NODE_H

#include "config.h"
#include "keys.h"
#include "judge.h"
#include "base/error.h"
#include "base/id.h"

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

/* What a node is made from, all lent: stm_node_new copies what it keeps. */
typedef struct {
    const node_config *config; /* node.toml's settings (config.h): every setting the node
                                  reads comes from here, defaults included */
    const node_keys *keys;     /* its CURVE key pair (keys.h); the public key is its node
                                  id, the secret is copied into protected memory */
    const stm_id *known;       /* keys trusted on first use before (known_peers.h), trusted
                                  beside config->trusted */
    size_t nknown;
} node_options;

typedef struct node node_t;

/* Opens the database (config->db, resolved against config->dir), checks it against its
 * schema set, binds the sockets and adds the configured peers. *out is the caller's
 * (stm_node_destroy). */
STM_NODISCARD stm_err stm_node_new(const node_options *o, node_t **out, stm_error *err);
/* Runs until *stop becomes non-zero (a signal handler sets it), then says BYE to the
 * peers and returns. When *reload becomes non-zero (SIGHUP; reload may be NULL) the
 * node clears it, reads node.toml and known_peers again, applies what changed in
 * trust and peers, logs settings changed that need a restart, and runs on. */
STM_NODISCARD stm_err stm_node_run(node_t *n, volatile sig_atomic_t *stop,
                                   volatile sig_atomic_t *reload, stm_error *err);
void stm_node_destroy(node_t **self_p);

/* The endpoint the inbox is bound to (with the port chosen), lent. */
const char *stm_node_endpoint(const node_t *n);

#endif
