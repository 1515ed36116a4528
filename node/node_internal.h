/* node_internal.h - private to the node: only node.c, life.c, step.c, events.c,
 * dispatch.c, meet.c and live.c include it.
 *
 * node.c holds the loop and the timers; life.c makes and destroys the node; step.c a
 * pass of the loop as the application's loop calls it; events.c what the application is told; dispatch.c what each message from a
 * peer does, but for HELLOs and beacons, which meet.c takes (meeting peers); live.c the
 * changes a running node takes without a restart (`stemma trust`, `stemma peer`,
 * SIGHUP). All work on the node's parts, so its struct is here rather than in any of
 * them. */
#ifndef STM_NODE_INTERNAL_H
#define STM_NODE_INTERNAL_H

#include "node.h"
#include "beacon.h"
#include "compactor.h"
#include "control.h"
#include "dirlock.h"
#include "inbox.h"
#include "local.h"
#include "mesh.h"
#include "pollfd.h"
#include "zap.h"
#include "sync/inbound.h"

#include <zmq.h>

struct node {
    dirlock_t *lock;    /* NODE_DIR/node.lock: taken first, let go of last */
    char *dir;          /* NODE_DIR: node.toml, for `stemma peer` and SIGHUP */
    char *settings;     /* the settings it runs with (stm_config_values_text) */
    log_level log_level; /* node.toml's: the least important lines it logs, over what the
                            thread's sink lets through (base/log.h); read on SIGHUP */
    config_peer *peers; /* node.toml's [peers] as last read or changed, owned */
    size_t npeers;
    bool insecure;         /* plain TCP: no CURVE, no ZAP */
    peer_policy policy;    /* what syncs with whom */
    int local_poll_ms;     /* how often to look for local writes and migrations */
    int reconnect_max_ms;  /* how often a silent peer is dialled anew (peer.h) */
    char *advertise;       /* the endpoint HELLOs give: "" when none can be dialled */
    char *name;            /* the device's name HELLOs give: node.name, or the host name */
    stm_id origin;         /* the database's origin as last seen; zero before */
    bool mark_failing;     /* the sent mark could not be written (logged once) */
    char *clone_seen;      /* owned: the endpoints last said to share a key (ours, or a
                            * peer's), or NULL */
    stm_id id;             /* our public key */
    unsigned char *secret; /* sodium_malloc'd, 32 bytes, read-only */
    char short_id[STM_ID_SHORT_LEN + 1];
    /* our public key in Z85, for messages a user acts on */
    char key_z85[KEYS_Z85_LEN + 1];
    inbound_t *inbound;  /* batches received and not stored yet */
    local_t *local;      /* the database, its lineage and version */
    void *ctx;           /* the ZeroMQ context */
    inbox_t *inbox;      /* the ROUTER every peer sends to */
    zap_t *zap;          /* the trusted keys; its socket only when secure */
    control_t *control;  /* reports for `stemma report` */
    compactor_t *compactor; /* compaction's passes and slices */
    mesh_t *mesh;        /* the peers; NULL until the sockets are bound */
    beacon_t *beacon;    /* LAN discovery's UDP socket; NULL when discovery is off */
    const char *no_beacon_why;  /* static: why no beacon is sent while discovery is on */
    zmq_pollitem_t *poll_items; /* what the loop waits on (node.c, s_poll_items) */
    peer_t **poll_peers;        /* whose DEALER each item after the fixed ones is */
    size_t poll_cap;
    control_view view;   /* the parts above, as the control socket reads them */
    control_drops drops; /* messages dropped, by why */
    int64_t next_local_poll_ms;
    int64_t ahead_retry_after; /* after a failed retry of clocks parked ahead: not before */
    int64_t listened_ms;       /* when the loop last read its sockets (zmq_poll returned):
                                  a peer's silence and lost batches are judged only once
                                  what came while the node was busy has been read */
    bool ahead_failing;        /* that failure is logged once */
    bool policy_retry;         /* what the policy parked may apply now (the node started,
                                  learned a version, migrated): retried by its timer */
    int64_t policy_retry_after; /* after a failed retry of those: not before */
    bool policy_failing;       /* that failure is logged once */
    bool started;              /* the first pass ran (and said so) */
    bool said_bye;             /* stm_node_say_bye ran */
    pollfd_t *pollfd;          /* stm_node_fd's epoll set; NULL until asked for */
    node_event_fn on_event;    /* told of events (events.c); NULL: no one */
    void *event_ctx;           /* on_event's first argument, lent */
    apply_stats stored;        /* what the batches acknowledged in this store did */
    bool walking;              /* a peer's reader stopped in a slice of a long walk: the
                                  loop goes on without sleeping */
    bool deltas;               /* [sync] vector_deltas: list vdelta.v1 */
};

/* Internal (node.c). The sockets the loop waits on, rebuilt into n->poll_items (the
 * fixed ones, then every open DEALER); returns how many. */
size_t stm_node_poll_items(node_t *n);
/* Internal (node.c). One pass of the loop, waiting at most wait_ms for a socket; *next_ms
 * how long the loop may sleep after it (-1: until a socket wakes it). step.c steps it. */
STM_NODISCARD stm_err stm_node_pass(node_t *n, long wait_ms, long *next_ms, stm_error *err);

/* Internal (dispatch.c): what a message from a peer does. */

/* Counts a message dropped from the mesh, by why (stemma stats). */
void stm_node_drop(node_t *n, report_drop why);
/* Opens p's DEALER when it has none (peer.h, stm_peer_open). */
STM_NODISCARD stm_err stm_node_open_peer(node_t *n, peer_t *p, stm_error *err);
/* Our vector as the next message to p carries it (sync/session.h, invariant 10): the
 * parts (lent until the next call), of which the first goes in that message and the
 * rest follow in VECTOR messages (stm_node_send_parts); returns how many. */
size_t stm_node_vector_out(node_t *n, peer_t *p, const vector_out **parts);
void stm_node_send_parts(peer_t *p, const vector_out *parts, size_t count);
/* Our whole vector to p, in VECTOR messages: it asked, or does not hold it. */
void stm_node_send_whole(node_t *n, peer_t *p);
/* A vector message taken as a stemma before vector deltas takes it, when this node is
 * told not to use them ([sync] vector_deltas = false). */
void stm_node_as_older(const node_t *n, vector_msg *m);
/* What a vector part of p's came to (stm_session_take_vector; cut_before: the
 * session's vectors cut before it): asked for whole, or said once. */
void stm_node_vector_taken(node_t *n, peer_t *p, session_vector r, uint64_t cut_before);

/* Internal (meet.c): meeting peers. */

/* Our HELLO to p, naming our other connected peers; reply: it answers p's. */
void stm_node_send_hello(node_t *n, peer_t *p, bool reply);
/* A HELLO (m), from the inbox (p NULL) or on p's DEALER: met, judged, let in or told
 * this node is full, its peer list remembered. */
void stm_node_on_hello(node_t *n, peer_t *p, const inbox_msg *m);
/* Whether a connected peer other than p sends to this node eagerly (peer.h, "lazy
 * links"): p may be pruned only then. */
bool stm_node_eager_besides(const node_t *n, const peer_t *p);
/* Stores the batches received (one transaction), acknowledging each after the commit. */
void stm_node_store_inbound(node_t *n);
/* Our vector to the peers that send to us lazily, when it changed since they last heard
 * it (before sleeping: after the batches were stored and local writes found). */
void stm_node_tell_vectors(node_t *n);
/* A GRAFT to p when it is due (peer.h, "lazy links"). */
void stm_node_check_graft(node_t *n, peer_t *p);
/* One message, from the inbox (from NULL) or from the DEALER to peer from: its header
 * checked, then handed to its handler. */
void stm_node_dispatch(node_t *n, peer_t *from, const inbox_msg *m);
/* A beacon heard: the node it names met, when it may be (dispatch.c says when). */
void stm_node_on_beacon(node_t *n, const beacon_heard *h);

/* Internal (live.c). Adds a copy of spec to node.toml's [peers] as the node knows it. */
void stm_node_peers_push(node_t *n, const config_peer *spec);
/* Internal (live.c). Forgets that list. */
void stm_node_peers_clear(node_t *n);
/* Internal (live.c). The control socket's answer to a request that changes the node
 * ("trust ...", "peer ..."); ctx is the node. The answer is the caller's to free. */
char *stm_node_control_change(void *ctx, const char *request);
/* Internal (events.c). Tells the application a peer was judged (its verdict as set). */
void stm_node_tell_judged(node_t *n, peer_t *p);
/* Internal (events.c). Tells it operations were stored or retried, with what they did. */
void stm_node_tell_applied(node_t *n, const apply_stats *st);
/* Internal (events.c). Tells it the database migrated to version. */
void stm_node_tell_migrated(node_t *n, int version);

#endif
