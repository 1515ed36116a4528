/* report.h - what a running node tells `stemma report`, `stemma peers` and `stemma stats`.
 *
 * The node fills a report_node snapshot (control.c, at each request) and a renderer
 * turns it into text for people, JSON or TOML for programs, or Graphviz DOT for a
 * picture of the mesh's lineage tree. The snapshot is a plain value: its strings,
 * lineages and verdicts are lent by whoever filled it, for the duration of one render
 * call, so the renderers never see the node's state and can be tested on snapshots
 * built by hand. Every renderer returns a NUL-terminated string the caller frees.
 *
 * What the outputs promise (tests/mesh_test.py and tests/test_report.c hold them to it):
 *   json   an object {"node": {...}, "peers": [{...}, ...]}; absent values are null
 *   toml   the same keys and values as the JSON, as a [node] table and [[peers]] with
 *          [[peers.families]]; TOML has no null, so absent values are left out
 *   dot    one graph node per distinct version id of every lineage known (this node's,
 *          and each peer's from its HELLO), edges parent -> child, and a box for this
 *          node and for each peer joined to its head version */
#ifndef STM_REPORT_H
#define STM_REPORT_H

#include "base/id.h"
#include "lineage/lineage.h"
#include "judge.h"
#include "sync/park.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Where the node stands with a peer (node/peer.c has the transitions). */
typedef enum {
    REPORT_CONNECTING, /* HELLOs sent, none answered */
    REPORT_CONNECTED,  /* its HELLO came and was judged: syncing */
    REPORT_GONE,       /* silent past peer_timeout_ms, or said BYE */
    REPORT_REFUSED,    /* refused by this node or by the peer */
} report_state;

/* Why the node dropped a message from the mesh, each counted (stemma stats). The first
 * seven, "beacon" and "received" together are the malformed messages, impostor,
 * unknown-sender and untrusted the unknown senders; "parts" is neither. Never
 * renumbered: the names are what the reports print. */
typedef enum {
    REPORT_DROP_NOT_STEMMA, /* "not-stemma": shorter than a header, or not "STMW" */
    REPORT_DROP_VERSION,    /* "protocol-version": of another protocol version */
    REPORT_DROP_HELLO,      /* "hello": a HELLO breaking its rules or limits */
    REPORT_DROP_REFUSE,     /* "refuse" */
    REPORT_DROP_OPS,        /* "ops": an OPS message breaking its rules */
    REPORT_DROP_BATCH,      /* "batch": an OPS whose operation batch is malformed */
    REPORT_DROP_ACK,        /* "ack" */
    REPORT_DROP_IMPOSTOR,   /* "impostor": a HELLO naming another node than its key */
    REPORT_DROP_UNKNOWN,    /* "unknown-sender": not a HELLO, from no peer */
    REPORT_DROP_UNTRUSTED,  /* "untrusted": on a connection whose key is no longer trusted */
    REPORT_DROP_BEACON,     /* "beacon": a UDP datagram on the discovery port that is no
                               beacon of this version (size, magic, version, port) */
    REPORT_DROP_RECEIVED,   /* "received": a RECEIVED breaking its rules (malformed) */
    REPORT_DROP_PARTS,      /* "parts": parts of a batch that could not be put together
                               (out of order, of another batch, not adding up): its
                               sender sends it again */
    REPORT_DROP_VECTOR,     /* "vector": a VECTOR breaking its rules (malformed) */
    REPORT_DROP_KINDS
} report_drop;

/* One peer as the reports show it. */
typedef struct {
    stm_id id;            /* its node id, which is its public key */
    bool id_known;        /* false while unknown (insecure mode, before its HELLO) */
    const char *endpoint; /* where its inbox listens; "" when it gives none */
    const char *name;     /* its device's name from its HELLO; NULL when none */
    const char *dialled_in_from; /* the address of the connection it opened to this node,
                                    which this node answers on; NULL when none is open */
    report_state state;
    const char *role;            /* why it is kept (node/mesh.h): "configured", "chosen",
                                    "dialled-in", or "known": not kept, only remembered */
    const char *link;            /* connected: the lazy links (docs/protocol.md, "PRUNE and
                                    GRAFT"): "eager" both ways, "pruned" (it sends this node
                                    only its vector), "lazy" (this node sends it only its
                                    vector), or "lazy, pruned"; NULL when not connected */
    const char *schema_set;      /* the schema set its HELLO named; NULL when none */
    const lineage_t *lineage;    /* its database's lineage from its HELLO; NULL before one */
    const peer_verdict *verdict; /* this node's judgement of that HELLO; NULL before one */
    const char *refused_by_peer; /* the reason the peer gave in a REFUSE; NULL when none */
    const char *distrusted;      /* why this node stopped trusting its key; NULL when it
                                    trusts it (stemma trust remove) */
    uint64_t ops_sent;           /* operations sent to it */
    uint64_t ops_received;       /* operations received from it */
    uint64_t parked;             /* of those received, how many were parked here */
    uint64_t withheld;           /* row changes not sent to it, too large: stand-ins went */
    uint64_t behind;             /* operations this node holds and it lacks, by its vector */
    time_t last_seen;            /* wall-clock time of its last message; 0: never */
} report_peer;

/* What compaction did (node/compactor.h), as the node tells it. */
typedef struct {
    bool enabled;          /* [compaction] enabled */
    bool running;          /* a pass is under way */
    bool has_last;         /* a pass finished since the node started: the figures below */
    uint64_t last_pruned;  /* the last pass finished since the start: operations pruned */
    uint64_t last_waiting; /* ... replaced operations kept for known peers */
    uint64_t last_rows;    /* ... stored rows looked at */
    int64_t last_ms;       /* ... its slices' time together */
    int64_t last_slice_ms; /* ... its longest slice */
    uint64_t known_peers;  /* ... peers holding pruning back */
} report_compaction;

/* This node and its peers. */
typedef struct {
    stm_id id;                /* this node's id (public key) */
    const lineage_t *lineage; /* its database's lineage; stm_lineage_name is the schema set */
    int version;              /* its database's version */
    const char *endpoint;     /* the mesh endpoint, port resolved */
    const char *name;         /* the device's name */
    bool secure;              /* CURVE (false: insecure, plain TCP) */
    uint64_t operations;      /* operations in its oplog */
    uint64_t parked;          /* of those, parked */
    uint64_t withheld;        /* of those, held only as stand-ins: their row changes were
                                 too large to travel, and this database lacks them */
    uint64_t conflicts;       /* rows kept aside under a taken key (sync/identity.h) */
    uint64_t pruned;          /* operations compaction removed from the oplog, ever */
    uint64_t compact_passes;  /* compaction passes finished, ever */
    report_compaction compaction; /* the node's compaction */
    uint64_t malformed;       /* messages dropped as malformed or of another version */
    uint64_t refused_keys;    /* connections the ZAP handler refused */
    uint64_t unknown_senders; /* messages from no known peer, or impostor HELLOs */
    uint64_t dropped[REPORT_DROP_KINDS]; /* the two above, by why */
    const park_reason *parked_reasons; /* parked operations by reason, most first */
    size_t nparked_reasons;
    uint64_t bytes_sent;      /* bytes of every message sent to every peer */
    uint64_t bytes_hello, bytes_ack, bytes_vector; /* of those, in HELLOs, ACKs, VECTORs */
    uint64_t origins;         /* entries of this database's version vector */
    uint64_t vector_cut;      /* entries dropped from peers' vectors over 100,000 in one
                                 message (older peers' whole vectors) */
    uint64_t apply_busy;      /* attempts to store received batches that found another
                                 program holding the database's write lock too long */
    uint64_t apply_io;        /* attempts the database refused otherwise: disk full,
                                 read-only file, I/O error */
    uint64_t batches_waiting; /* batches received, not stored yet, so not acknowledged */
    uint64_t batches_deferred; /* not taken because too many waited: sent again */
    int discovery_port;        /* LAN discovery's UDP port; 0: discovery is off */
    bool beacons_sending;      /* it sends beacons (false: it only listens) */
    uint64_t beacons_sent;     /* beacons sent */
    uint64_t beacons_heard;    /* well-formed beacons heard from other nodes */
    uint64_t beacons_untrusted;  /* of those, from keys not trusted: ignored */
    uint64_t beacons_other_mode; /* of those, from nodes of the other security mode */
    uint64_t peers_discovered;   /* peers met by their beacons */
    const report_peer *peers; /* npeers of them, in the order the node met them */
    size_t npeers;
} report_node;

/* "connecting", "connected", "gone", "refused": static. */
const char *stm_report_state_name(report_state s);
/* "not-stemma", "protocol-version", "hello", ...: static. */
const char *stm_report_drop_name(report_drop d);

/* The whole report as JSON (pretty-printed); the caller frees it. */
char *stm_report_json(const report_node *r);
/* The whole report for people: the node, then each peer with its reason, warnings and
 * counters; the caller frees it. */
char *stm_report_text(const report_node *r);
/* The short form: the node and one line per peer; the caller frees it. */
char *stm_report_peers_text(const report_node *r);
/* The counters, one per line; the caller frees it. */
char *stm_report_stats_text(const report_node *r);
/* The same content as stm_report_json, as a TOML 1.0 document; the caller frees it. */
char *stm_report_toml(const report_node *r);
/* The mesh's lineage tree as a Graphviz digraph; the caller frees it. */
char *stm_report_dot(const report_node *r);

#endif
