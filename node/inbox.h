/* inbox.h - the ROUTER every peer that dials this node sends to: bound with the mesh's
 * limits (and as a CURVE server unless insecure), read a whole message at a time, who
 * sent each and on which connection, and answers sent back on that connection.
 *
 * Who sent a message: under CURVE the key its connection proved, which the ZAP
 * handler (zap.h) put in the message's User-Id; insecure, the routing id the sender
 * set ("N" and its id in hex), a claim and not a proof. Frames after the first one
 * following the routing id are read and dropped (docs/protocol.md, "Framing").
 *
 * A connection's routing id (its *route*) lets the node answer a peer on the
 * connection the peer opened, so that a peer this node cannot dial (behind NAT, or
 * binding nothing) is answered all the same: one connection per pair is enough. */
#ifndef STM_INBOX_H
#define STM_INBOX_H

#include "base/error.h"
#include "base/id.h"

#include <stdbool.h>
#include <stddef.h>

typedef struct inbox inbox_t;

/* One message, lent until the next stm_inbox_next or stm_inbox_destroy. */
typedef struct {
    const void *data; /* the message's one frame */
    size_t len;
    bool has_sender; /* sender says who sent it */
    bool verified;   /* ... proved by its CURVE key (else claimed by its routing id) */
    stm_id sender;
    const void *route; /* the connection it came on: its routing id (1 to 255 bytes) */
    size_t route_len;
    const char *address; /* where the connection came from, "IP" as the socket saw it
                          * (libzmq's Peer-Address); "" when not known */
} inbox_msg;

/* The longest routing id libzmq gives a connection. */
#define INBOX_MAX_ROUTE 255

/* Binds a ROUTER on ctx at bind (tcp://127.0.0.1:* picks a port; "": bound nowhere, a
 * node that only dials, whose peers reach it on the connections it opens). Unless insecure,
 * a CURVE server with secret (32 bytes) in the ZAP domain "stemma": the ZAP handler
 * must be bound first. STM_EINPUT when the endpoint cannot be bound; STM_ESYS when
 * libzmq refuses otherwise. *out is the caller's (stm_inbox_destroy). */
STM_NODISCARD stm_err stm_inbox_new(void *ctx, const char *bind, bool insecure,
                                    const unsigned char *secret, inbox_t **out, stm_error *err);
void stm_inbox_destroy(inbox_t **self_p);

/* The socket, to poll (lent); the endpoint bound, port resolved, or "" (lent). */
void *stm_inbox_socket(inbox_t *in);
const char *stm_inbox_endpoint(const inbox_t *in);

/* Reads the next whole message without waiting into *msg; false when none waits. */
bool stm_inbox_next(inbox_t *in, inbox_msg *msg);

/* What became of a message sent back on a route. */
typedef enum {
    INBOX_SENT,   /* queued on that connection */
    INBOX_FULL,   /* the connection's queue is full: try later */
    INBOX_CLOSED, /* no such connection any more (the peer went, or dialled anew) */
} inbox_sent;

/* Sends data (one frame) back on the connection route names, without waiting. */
inbox_sent stm_inbox_send(inbox_t *in, const void *route, size_t route_len, const void *data,
                          size_t len);

#endif
