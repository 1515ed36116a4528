/* peer_internal.h - private to peer.c (the state machine, the deadlines, the report),
 * peer_link.c (the DEALER and the route: how messages reach it) and peer_sync.c (what a
 * peer is sent and what it sends in parts): the peer's struct, one class in three files
 * split along those seams. */
#ifndef STM_PEER_INTERNAL_H
#define STM_PEER_INTERNAL_H

#include "peer.h"
#include "bulk.h"

#include <time.h>
#include <zmq.h>

struct peer {
    stm_id id; /* its node id (public key); zero until known when insecure */
    bool id_known;
    char *endpoint;                      /* where its inbox listens */
    char short_id[STM_ID_SHORT_LEN + 1]; /* for logs */
    bool configured;    /* from node.toml (else learned from a HELLO or peer list) */
    bool active;        /* dialled and talked to; else only known (peer.c, invariant 8) */
    peer_timing timing; /* the node's settings, copied */
    void *outbox;       /* DEALER connected to it; NULL until needed */
    inbox_t *inbox;     /* the node's inbox, to answer on the connection it opened (lent) */
    unsigned char route[INBOX_MAX_ROUTE]; /* that connection's routing id */
    size_t route_len;                     /* 0: it has none open to us */
    char address[64];   /* where that connection comes from; "" when not known */
    zmq_msg_t in_msg;   /* the message stm_peer_next lent */
    bool holding;       /* in_msg holds one */
    bool reads_route;   /* its HELLO says it reads answers on its own connections */
    bool reads_parts;   /* its HELLO says it puts batches sent in parts together */
    bool reads_prune;   /* its HELLO says it takes PRUNE and VECTORs (mesh.v1, vdelta.v1) */
    bool lazy;          /* it pruned us: it is sent our vector, not operations */
    bool pruned;        /* we pruned it: it sends us its vector, not operations */
    int64_t graft_from; /* pruned: since when it holds what we lack; 0: it does not */
    uint64_t graft_gen; /* our vector's generation then: moving on starts the wait again */
    uint64_t told_gen;  /* the generation of our vector last sent it while lazy */
    parts_t *parts;     /* a batch it sends in parts, being put together */
    vector_t *told;     /* per origin, the last operation of a row change withheld from it
                           that was logged: each is said once */
    uint64_t withheld;  /* row changes withheld from it, too large to send */
    peer_state state;   /* changed only by stm_peer_set_state */
    wire_hello hello;   /* its last HELLO (lineage, vector, peers) */
    bool have_hello;
    peer_verdict verdict;  /* our judgement of that HELLO */
    char *refused_by_peer; /* the reason it gave in a REFUSE, or NULL */
    char *distrusted;      /* why this node stopped trusting its key, or NULL */
    session_t *session;    /* vectors, window, batch numbers (sync/session.h) */
    uint64_t bytes_sent;   /* every message's bytes, as handed to ZeroMQ (before CURVE) */
    uint64_t bytes_by_type[PEER_MESSAGE_TYPES]; /* the same by message type (wire.h) */
    unsigned told_once;    /* PEER_TOLD_* bits: what was logged of it once */
    int64_t last_seen_ms;  /* monotonic time of its last message; 0: never */
    int64_t last_sent_ms;  /* monotonic time of the last message that left for it */
    int64_t ping_tried_ms; /* of the last PING tried, sent or not: the next waits anyway */
    time_t last_seen_wall; /* the same, wall clock, for reports */
    int64_t next_hello_ms; /* when to say HELLO again while it has not answered */
    int backoff_ms;        /* the wait after the next HELLO retry */
    int64_t dialled_ms;    /* monotonic time its DEALER was opened */
    bool redialled;        /* its DEALER was opened anew since it was last heard from */
    bulk_sync bulk;        /* a bulk sync from it, logged as it goes (bulk.h) */
};

/* Lets go of the message stm_peer_next lent and closes its DEALER (peer_link.c). */
void stm_peer_close_dealer(peer_t *p);

#endif
