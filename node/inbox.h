/* inbox.h - the ROUTER every peer sends to: bound with the mesh's limits (and as a
 * CURVE server unless insecure), read a whole message at a time, and who sent each.
 *
 * Who sent a message: under CURVE the key its connection proved, which the ZAP
 * handler (zap.h) put in the message's User-Id; insecure, the routing id the sender
 * set ("N" and its id in hex), a claim and not a proof. Frames after the first one
 * following the routing id are read and dropped (docs/protocol.md, "Framing"). */
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
} inbox_msg;

/* Binds a ROUTER on ctx at bind (tcp://127.0.0.1:* picks a port). Unless insecure,
 * a CURVE server with secret (32 bytes) in the ZAP domain "stemma": the ZAP handler
 * must be bound first. STM_EINPUT when the endpoint cannot be bound; STM_ESYS when
 * libzmq refuses otherwise. *out is the caller's (stm_inbox_destroy). */
STM_NODISCARD stm_err stm_inbox_new(void *ctx, const char *bind, bool insecure,
                                    const unsigned char *secret, inbox_t **out, stm_error *err);
void stm_inbox_destroy(inbox_t **self_p);

/* The socket, to poll (lent); the endpoint bound, port resolved (lent). */
void *stm_inbox_socket(inbox_t *in);
const char *stm_inbox_endpoint(const inbox_t *in);

/* Reads the next whole message without waiting into *msg; false when none waits. */
bool stm_inbox_next(inbox_t *in, inbox_msg *msg);

#endif
