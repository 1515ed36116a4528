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
#include "sync/apply.h"

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
/* stm_node_new with what the directory `stemma init` set up holds: node.toml, the key
 * pair, known_peers. *out is the caller's (stm_node_destroy). */
STM_NODISCARD stm_err stm_node_open(const char *dir, node_t **out, stm_error *err);
/* Runs until *stop becomes non-zero (a signal handler sets it), then says BYE to the
 * peers and returns. When *reload becomes non-zero (SIGHUP; reload may be NULL) the
 * node clears it, reads node.toml and known_peers again, applies what changed in
 * trust and peers, logs settings changed that need a restart, and runs on. */
STM_NODISCARD stm_err stm_node_run(node_t *n, volatile sig_atomic_t *stop,
                                   volatile sig_atomic_t *reload, stm_error *err);
void stm_node_destroy(node_t **self_p);

/* The endpoint the inbox is bound to (with the port chosen), lent. */
const char *stm_node_endpoint(const node_t *n);
/* The node's public key (its id) in Z85, lent. */
const char *stm_node_key_z85(const node_t *n);
/* The control endpoint (as configured), lent. */
const char *stm_node_control_endpoint(const node_t *n);

/* ---- a node an application runs in its own loop (include/stemma.h) ----
 *
 * Instead of stm_node_run, the application polls stm_node_fd for reading, with a
 * timeout of what the last step said, and calls stm_node_step whenever it wakes;
 * every call on a node is made from one thread. */

/* One pass of the loop without waiting: reads what the sockets hold, runs the timers
 * that are due and the before-sleep step (stm_node_run's pass). *next_ms: how long the
 * caller may wait on stm_node_fd before the next step (0: at once; -1: until the fd is
 * readable). */
STM_NODISCARD stm_err stm_node_step(node_t *n, long *next_ms, stm_error *err);
/* A file descriptor that becomes readable when a step has something to read (an epoll
 * set of the node's sockets, kept up to date by each step): the node's, lent, valid
 * until stm_node_destroy. */
STM_NODISCARD stm_err stm_node_fd(node_t *n, int *fd, stm_error *err);
/* Says BYE to the connected peers and logs that it stopped: what stm_node_run does when
 * told to stop. Once; nothing before the first step. */
void stm_node_say_bye(node_t *n);
/* SIGHUP's work (live.c): node.toml and known_peers read again, trust and peers
 * changed to match, settings that need a restart named in the log. */
void stm_node_reload(node_t *n);
/* Answers a control request ("report json", "peers", "stats", "trust add KEY", ...: the
 * control socket's, docs/protocol.md) on the node's own thread, without the socket. The
 * answer is the caller's to free. */
char *stm_node_ask(node_t *n, const char *request);

/* What happened, for an application that embeds the node (include/stemma.h). */
typedef enum {
    NODE_EVENT_PEER_JUDGED = 1, /* a peer's HELLO was judged */
    NODE_EVENT_APPLIED,         /* operations were stored (from peers, or parked ones
                                   retried): what they did, and the totals after */
    NODE_EVENT_MIGRATED,        /* the database is at another version now */
} node_event_kind;

/* One event; everything in it lent for the call. */
typedef struct {
    node_event_kind kind;
    const stm_id *peer;       /* PEER_JUDGED: the peer's key */
    const char *peer_name;    /* PEER_JUDGED: the device name its HELLO gave, or NULL */
    const char *endpoint;     /* PEER_JUDGED: where it is dialled, "" when nowhere */
    int relation;             /* PEER_JUDGED: lineage/relation.h's relation_kind */
    int peer_version;         /* PEER_JUDGED: the version its HELLO gave */
    peer_sync sync;           /* PEER_JUDGED: full, partial or refused */
    const char *reason;       /* PEER_JUDGED: why */
    apply_stats stats;        /* APPLIED: what this store did */
    uint64_t parked_total;    /* APPLIED: operations parked now */
    uint64_t conflicts_total; /* APPLIED: rows kept aside now (sync/identity.h) */
    int version;              /* MIGRATED: the database's version now */
} node_event;

/* Told of each event, on the node's thread, after it happened; fn must not call back
 * into the node. */
typedef void (*node_event_fn)(void *ctx, const node_event *ev);
/* Sets whom events are told (fn NULL: no one; ctx lent). */
void stm_node_set_events(node_t *n, node_event_fn fn, void *ctx);

#endif
