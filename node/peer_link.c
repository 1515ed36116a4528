/* peer_link.c - how messages reach one peer and come from it (peer.h): its DEALER,
 * opened, dialled anew or moved; the route of the connection it opened to this node;
 * sending on either, and reading what comes on the DEALER. The state machine and the
 * deadlines are peer.c's (invariants 6 and 7 there are kept here). */
#include "peer_internal.h"
#include "endpoint.h"
#include "inbox.h"
#include "zsock.h"
#include "base/clock.h"
#include "base/mem.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

/* Messages libzmq holds for a DEALER before the node reads them: with WIRE_MAX_MESSAGE,
 * what an endpoint can make the node hold through the connection it opened to it. */
#define PEER_DEALER_RCVHWM 4

/* Lets go of the message stm_peer_next lent. */
static void s_release(peer_t *p)
{
    if (p->holding)
        zmq_msg_close(&p->in_msg);
    p->holding = false;
}

void stm_peer_close_dealer(peer_t *p)
{
    s_release(p);
    stm_zsock_close(&p->outbox);
}

/* The DEALER's options; CURVE keys from self and the peer's id. */
static stm_err s_setup_outbox(peer_t *p, void *s, const peer_self *self, stm_error *err)
{
    const char *name = "a peer's socket";
    /* The peer answers on this connection when it has none of its own to us (it cannot
     * dial us, or has not yet): the node reads it as it reads the inbox, with the
     * inbox's limit on a message. Its queue is short: whoever is at the endpoint a peer
     * list named may send on it, and what libzmq holds unread for it stays under
     * PEER_DEALER_RCVHWM messages (the node reads it every pass of its loop). */
    stm_err rc = stm_zsock_set_int(s, ZMQ_RCVHWM, PEER_DEALER_RCVHWM, name, err);
    if (rc == STM_OK)
        rc = stm_zsock_set_int64(s, ZMQ_MAXMSGSIZE, WIRE_MAX_MESSAGE, name, err);
    /* Messages wait for the connection to come up (a HELLO sent right after connecting
     * must not be lost). The queue stays small: only connected peers are sent
     * operations, at most a window of them, and HELLO retries back off. */
    if (rc == STM_OK)
        rc = stm_zsock_set_int(s, ZMQ_IMMEDIATE, 0, name, err);
    if (rc == STM_OK)
        rc = stm_zsock_set_int(s, ZMQ_SNDHWM, 1000, name, err);
    if (rc == STM_OK)
        rc = stm_zsock_set_int(s, ZMQ_RECONNECT_IVL, p->timing.reconnect_min_ms, name, err);
    if (rc == STM_OK)
        rc = stm_zsock_set_int(s, ZMQ_RECONNECT_IVL_MAX, p->timing.reconnect_max_ms, name, err);
    if (rc != STM_OK)
        return rc;
    if (self->insecure) {
        /* Without CURVE the inbox knows a sender only by its routing id: make it stable
         * (it survives reconnections) and say who we are, "N" and our id in hex. */
        char rid[1 + STM_ID_HEX_LEN + 1];
        rid[0] = 'N';
        stm_id_to_hex(self->id, rid + 1);
        return stm_zsock_set(s, ZMQ_ROUTING_ID, rid, 1 + STM_ID_HEX_LEN, name, err);
    }
    if (!p->id_known)
        return stm_error_set(err, STM_EINPUT, "peer %s: its key is needed (KEY@ENDPOINT)",
                             p->endpoint);
    char server[41], public_z85[41], secret_z85[41];
    zmq_z85_encode(server, p->id.bytes, 32);
    zmq_z85_encode(public_z85, self->id->bytes, 32);
    zmq_z85_encode(secret_z85, self->secret, 32);
    rc = stm_zsock_set(s, ZMQ_CURVE_SERVERKEY, server, 40, name, err);
    if (rc == STM_OK)
        rc = stm_zsock_set(s, ZMQ_CURVE_PUBLICKEY, public_z85, 40, name, err);
    if (rc == STM_OK)
        rc = stm_zsock_set(s, ZMQ_CURVE_SECRETKEY, secret_z85, 40, name, err);
    sodium_memzero(secret_z85, sizeof secret_z85);
    return rc;
}

stm_err stm_peer_open(peer_t *p, const peer_self *self, int64_t now_ms, stm_error *err)
{
    if (p->outbox || p->distrusted || !p->active)
        return STM_OK; /* a distrusted or inactive peer is sent nothing (invariants 6, 8) */
    /* No endpoint to dial (it advertises none): it reaches us; nothing is sent to it
     * until a HELLO of its gives one. */
    if (!stm_endpoint_dialable(p->endpoint))
        return STM_OK;
    void *s = NULL;
    stm_err rc = stm_zsock_new(self->ctx, ZMQ_DEALER, "a peer's socket", &s, err);
    if (rc != STM_OK)
        return rc;
    rc = s_setup_outbox(p, s, self, err);
    if (rc == STM_OK && zmq_connect(s, p->endpoint) != 0)
        rc = stm_error_set(err, STM_EINPUT, "peer %s: cannot connect: %s", p->endpoint,
                           zmq_strerror(zmq_errno()));
    if (rc != STM_OK) {
        stm_zsock_close(&s);
        return rc;
    }
    p->outbox = s;
    p->dialled_ms = now_ms;
    return STM_OK;
}

bool stm_peer_redial_due(const peer_t *p, int64_t now_ms)
{
    if (!p->outbox || (p->state != PEER_CONNECTING && p->state != PEER_GONE))
        return false;
    int64_t since = p->dialled_ms > p->last_seen_ms ? p->dialled_ms : p->last_seen_ms;
    return now_ms - since >= p->timing.reconnect_max_ms;
}

bool stm_peer_redial(peer_t *p)
{
    stm_peer_close_dealer(p); /* what waited in it is sent again: a HELLO follows */
    bool first = !p->redialled;
    p->redialled = true;
    return first;
}

bool stm_peer_move(peer_t *p, const char *endpoint, int64_t now_ms)
{
    if (p->configured || p->distrusted || (p->state != PEER_CONNECTING && p->state != PEER_GONE) ||
        strcmp(p->endpoint, endpoint) == 0)
        return false;
    if (stm_endpoint_dialable(p->endpoint) && !stm_peer_redial_due(p, now_ms))
        return false;
    free(p->endpoint);
    p->endpoint = stm_strdup(endpoint);
    stm_peer_close_dealer(p);
    p->next_hello_ms = now_ms;
    p->backoff_ms = p->timing.reconnect_min_ms;
    return true;
}

void stm_peer_set_route(peer_t *p, const void *route, size_t len, const char *address)
{
    if (len == 0 || len > sizeof p->route)
        return;
    memcpy(p->route, route, len);
    p->route_len = len;
    snprintf(p->address, sizeof p->address, "%s", address ? address : "");
}

bool stm_peer_routed(const peer_t *p)
{
    return p->route_len > 0 && p->reads_route;
}

/* A message that left: its bytes, in all and by its type (the header's sixth byte), and
 * when (a link that carries messages needs no PING). */
static void s_count(peer_t *p, const buf_t *msg)
{
    p->last_sent_ms = stm_monotime_ms();
    p->bytes_sent += msg->len;
    unsigned type = msg->len >= WIRE_HEADER_BYTES ? (unsigned char)msg->data[5] : 0;
    p->bytes_by_type[type < PEER_MESSAGE_TYPES ? type : 0] += msg->len;
}

bool stm_peer_send(peer_t *p, const buf_t *msg)
{
    /* On the connection it opened to us while that is open: it is up (libzmq knows of
     * it only once its handshake is done), and it is the one way to a peer that cannot
     * be dialled. Else on our DEALER, whose messages wait for its connection. */
    if (stm_peer_routed(p) && p->inbox) {
        switch (stm_inbox_send(p->inbox, p->route, p->route_len, msg->data, msg->len)) {
        case INBOX_SENT:
            s_count(p, msg);
            return true;
        case INBOX_FULL:
            return false;
        case INBOX_CLOSED:
            p->route_len = 0; /* until it sends on a connection of its own again */
            break;
        }
    }
    if (!p->outbox || zmq_send(p->outbox, msg->data, msg->len, ZMQ_DONTWAIT) != (int)msg->len)
        return false;
    s_count(p, msg);
    return true;
}

bool stm_peer_answer(peer_t *p, const void *route, size_t len, const buf_t *msg)
{
    if (len == 0 || !p->inbox ||
        stm_inbox_send(p->inbox, route, len, msg->data, msg->len) != INBOX_SENT)
        return false;
    s_count(p, msg);
    return true;
}

void *stm_peer_socket(peer_t *p)
{
    return p->outbox;
}

bool stm_peer_next(peer_t *p, const void **data, size_t *len)
{
    s_release(p);
    if (!p->outbox)
        return false;
    zmq_msg_init(&p->in_msg);
    if (zmq_msg_recv(&p->in_msg, p->outbox, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&p->in_msg);
        return false;
    }
    p->holding = true;
    /* Anything after the first frame is not ours: read and drop it (as the inbox does). */
    bool more = zmq_msg_more(&p->in_msg);
    while (more) {
        zmq_msg_t extra;
        zmq_msg_init(&extra);
        more = zmq_msg_recv(&extra, p->outbox, 0) >= 0 && zmq_msg_more(&extra);
        zmq_msg_close(&extra);
    }
    *data = zmq_msg_data(&p->in_msg);
    *len = zmq_msg_size(&p->in_msg);
    return true;
}
