/* beacon.h - LAN discovery: the UDP beacon a node broadcasts so that nodes on one
 * network find each other without configured endpoints ([discovery] in node.toml;
 * docs/protocol.md, "Beacons", has the bytes), and the socket that sends and hears it.
 *
 * A beacon says who a node is (its id: its CURVE public key), on which TCP port its
 * inbox listens, and whether it runs insecure. It proves nothing: a receiver that
 * chooses to meet the sender dials the address the datagram came from, at that port,
 * and under CURVE the handshake proves the key (a beacon naming a key its sender does
 * not hold gets a failed handshake, nothing more). Whom to dial is the node's decision
 * (node.c, by trust); this module sends, hears, checks bytes and counts.
 *
 * Invariants:
 *
 *  1. A datagram is read whole or not at all, and checked (its size exactly
 *     BEACON_BYTES first, then magic, version, port, sender address) before any field
 *     is used: anything else is dropped and counted by the caller as malformed.
 *  2. A node sends beacons only when the network the beacons reach can dial its inbox
 *     (stm_beacon_mesh_port); otherwise it listens and sends none.
 *  3. Sending is one deadline (stm_beacon_send_at) in the node's timer table; nothing
 *     here sleeps or blocks: the socket is non-blocking.
 *  4. The set of keys already named in the log (stm_beacon_tell_once) is bounded by
 *     BEACON_MAX_TOLD, so a network full of beacons from fresh keys costs a bounded
 *     amount of memory and log. */
#ifndef STM_BEACON_H
#define STM_BEACON_H

#include "base/error.h"
#include "base/id.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BEACON_MAGIC "STMD" /* 53 54 4D 44; "STMB" is the bundle file's */
#define BEACON_VERSION 1
#define BEACON_BYTES 40           /* magic 4, version 1, flags 1, node 32, port 2 */
#define BEACON_FLAG_INSECURE 0x01 /* the sender runs without CURVE */
#define BEACON_MAX_TOLD 256       /* keys stm_beacon_tell_once remembers */
#define BEACON_ENDPOINT_MAX 32    /* "tcp://255.255.255.255:65535" and its NUL fit */

/* What one beacon says. */
typedef struct {
    stm_id id;     /* the sender's node id, its CURVE public key: a claim until dialled */
    uint16_t port; /* the TCP port its inbox listens on, 1 to 65535 */
    bool insecure; /* it runs without CURVE (security.insecure) */
} beacon_msg;

/* m as the datagram's bytes, into out (the caller's, BEACON_BYTES long). */
void stm_beacon_encode(const beacon_msg *m, unsigned char out[BEACON_BYTES]);
/* Reads a datagram of len bytes into *m. STM_EPROTO, saying what is wrong (its size,
 * magic, version or port), for anything but a beacon of this version; *m is then left
 * as it was. Flag bits it does not know are ignored (a later version may use them). */
STM_NODISCARD stm_err stm_beacon_decode(const void *data, size_t len, beacon_msg *m,
                                        stm_error *err);

/* The TCP port beacons should carry for an inbox bound at bound (as ZMQ_LAST_ENDPOINT
 * gives it, port resolved) when they are sent to broadcast (an IPv4 address): the
 * port, or 0 when nodes that hear them could not dial it, with *why (static) saying
 * why: bound nowhere (""), on ipc://, on an IPv6 address, on a loopback address while
 * beacons leave the machine, or on another address while they stay on loopback. */
int stm_beacon_mesh_port(const char *bound, const char *broadcast, const char **why);

/* How to run the beacon. */
typedef struct {
    int port;              /* the UDP port beacons go to and are heard on */
    int interval_ms;       /* how often one is sent */
    const char *broadcast; /* the IPv4 address they are sent to (copied) */
    beacon_msg self;       /* what this node's beacon says; self.port 0: send none */
} beacon_options;

/* What became of the beacons heard, as the node decided (stm_beacon_tally). */
typedef enum {
    BEACON_OWN,        /* this node's own, heard back: not counted */
    BEACON_KNOWN,      /* from a peer the node knows already */
    BEACON_MET,        /* from a node met by it: a new peer */
    BEACON_UNTRUSTED,  /* from a key the node does not trust: ignored */
    BEACON_OTHER_MODE, /* from an insecure node to a CURVE one, or the reverse: ignored */
    BEACON_FULL,       /* from a node not met because the node knows too many peers */
} beacon_outcome;

/* The counters `stemma stats` shows, since the node started. */
typedef struct {
    uint64_t sent;       /* beacons sent */
    uint64_t heard;      /* well-formed beacons heard from other nodes */
    uint64_t untrusted;  /* of those, from keys not trusted (BEACON_UNTRUSTED) */
    uint64_t other_mode; /* of those, from nodes of the other security mode */
    uint64_t met;        /* peers met by their beacon */
} beacon_counts;

typedef struct beacon beacon_t;

/* Opens the UDP socket: bound to every interface at o->port, sharing the port with
 * other programs (SO_REUSEADDR, SO_REUSEPORT: several nodes on one machine each hear
 * every beacon), allowed to broadcast. The first beacon is due at once when
 * o->self.port is not 0. STM_ESYS naming the port and the reason when the system
 * refuses. *out is the caller's (stm_beacon_destroy). */
STM_NODISCARD stm_err stm_beacon_new(const beacon_options *o, beacon_t **out, stm_error *err);
/* Closes the socket and frees; safe twice. */
void stm_beacon_destroy(beacon_t **self_p);

/* The socket's file descriptor, to poll for reading. */
int stm_beacon_fd(const beacon_t *b);
/* Whether it sends beacons (else it only listens). */
bool stm_beacon_sending(const beacon_t *b);

/* When the next beacon is due (monotonic ms); INT64_MAX when it sends none. */
int64_t stm_beacon_send_at(const beacon_t *b);
/* Sends one beacon now and sets the next deadline interval_ms later. A send the system
 * refuses (no route to the broadcast address, say) is logged once, and again once
 * sending works again; the deadline moves on either way. */
void stm_beacon_send(beacon_t *b, int64_t now_ms);

/* What stm_beacon_next read. */
typedef enum {
    BEACON_NONE,      /* nothing waits */
    BEACON_HEARD,     /* a beacon, in *out */
    BEACON_MALFORMED, /* a datagram that is not one: dropped; err says why */
} beacon_read;

/* A beacon and where it came from. */
typedef struct {
    beacon_msg msg;                     /* what it says */
    char address[16];                   /* the IPv4 address it came from, dotted */
    char endpoint[BEACON_ENDPOINT_MAX]; /* tcp://ADDRESS:PORT: where its sender listens */
} beacon_heard;

/* Reads the next datagram waiting, without waiting for one. A datagram from an
 * address no node can be dialled at (0.0.0.0, a broadcast or multicast address) is
 * malformed too. */
beacon_read stm_beacon_next(beacon_t *b, beacon_heard *out, stm_error *err);

/* Counts what the node made of a beacon heard. */
void stm_beacon_tally(beacon_t *b, beacon_outcome what);
/* The counters, lent. */
const beacon_counts *stm_beacon_counts(const beacon_t *b);

/* True the first time it is asked about key, so that a log line about a key is said
 * once; false after, and for every key once BEACON_MAX_TOLD have been named. */
bool stm_beacon_tell_once(beacon_t *b, const stm_id *key);

/* The UDP port, the broadcast address (lent) and the interval, for logs and reports. */
int stm_beacon_port(const beacon_t *b);
const char *stm_beacon_broadcast(const beacon_t *b);
int stm_beacon_interval_ms(const beacon_t *b);

#endif
