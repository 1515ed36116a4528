/* inbox.c - the ROUTER every peer sends to (inbox.h). */
#include "inbox.h"
#include "wire.h"
#include "zsock.h"
#include "base/mem.h"

#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

struct inbox {
    void *sock;          /* ROUTER */
    bool insecure;       /* senders named by routing id, not by key */
    char endpoint[256];  /* bound, port resolved */
    zmq_msg_t rid, body; /* the message lent by stm_inbox_next */
    bool holding;        /* rid and body hold a message */
};

static stm_err s_setup(inbox_t *in, const unsigned char *secret, stm_error *err)
{
    const char *name = "the inbox";
    stm_err rc = stm_zsock_set_int64(in->sock, ZMQ_MAXMSGSIZE, WIRE_MAX_MESSAGE, name, err);
    if (rc == STM_OK)
        rc = stm_zsock_set_int(in->sock, ZMQ_RCVHWM, 10000, name, err);
    if (rc == STM_OK)
        rc = stm_zsock_set_int(in->sock, ZMQ_ROUTER_HANDOVER, 1, name, err);
    /* An answer to a connection that has gone fails (EHOSTUNREACH) instead of being
     * dropped without a word: the peer is then tried on its own endpoint. */
    if (rc == STM_OK)
        rc = stm_zsock_set_int(in->sock, ZMQ_ROUTER_MANDATORY, 1, name, err);
    /* Answers wait at most this many a connection, as a DEALER's do (peer.c). */
    if (rc == STM_OK)
        rc = stm_zsock_set_int(in->sock, ZMQ_SNDHWM, 1000, name, err);
    if (rc != STM_OK || in->insecure)
        return rc;
    char secret_z85[41];
    zmq_z85_encode(secret_z85, secret, 32);
    rc = stm_zsock_set_int(in->sock, ZMQ_CURVE_SERVER, 1, name, err);
    if (rc == STM_OK)
        rc = stm_zsock_set(in->sock, ZMQ_CURVE_SECRETKEY, secret_z85, 40, name, err);
    sodium_memzero(secret_z85, sizeof secret_z85);
    if (rc == STM_OK)
        rc = stm_zsock_set(in->sock, ZMQ_ZAP_DOMAIN, "stemma", 6, name, err);
    return rc;
}

stm_err stm_inbox_new(void *ctx, const char *bind, bool insecure, const unsigned char *secret,
                      inbox_t **out, stm_error *err)
{
    inbox_t *in = stm_calloc(1, sizeof *in);
    in->insecure = insecure;
    stm_err rc = stm_zsock_new(ctx, ZMQ_ROUTER, "the inbox", &in->sock, err);
    if (rc == STM_OK)
        rc = s_setup(in, secret, err);
    bool binds = bind && bind[0];
    if (rc == STM_OK && binds && zmq_bind(in->sock, bind) != 0)
        rc = stm_error_set(err, STM_EINPUT, "cannot bind the mesh endpoint %s: %s", bind,
                           zmq_strerror(zmq_errno()));
    size_t size = sizeof in->endpoint;
    if (rc == STM_OK && binds &&
        zmq_getsockopt(in->sock, ZMQ_LAST_ENDPOINT, in->endpoint, &size) != 0)
        rc = stm_zsock_error(err, "the inbox: reading the endpoint it is bound to");
    if (rc != STM_OK) {
        stm_inbox_destroy(&in);
        return rc;
    }
    *out = in;
    return STM_OK;
}

static void s_release(inbox_t *in)
{
    if (!in->holding)
        return;
    zmq_msg_close(&in->rid);
    zmq_msg_close(&in->body);
    in->holding = false;
}

void stm_inbox_destroy(inbox_t **self_p)
{
    inbox_t *in = *self_p;
    if (!in)
        return;
    s_release(in);
    stm_zsock_close(&in->sock);
    free(in);
    *self_p = NULL;
}

void *stm_inbox_socket(inbox_t *in)
{
    return in->sock;
}

const char *stm_inbox_endpoint(const inbox_t *in)
{
    return in->endpoint;
}

/* A key in Z85 (40 characters) or hex (64). */
static bool s_parse_key(const char *text, size_t len, stm_id *out)
{
    char tmp[80];
    if (len == 40) {
        memcpy(tmp, text, 40);
        tmp[40] = '\0';
        return zmq_z85_decode(out->bytes, tmp) != NULL;
    }
    if (len == 64) {
        memcpy(tmp, text, 64);
        tmp[64] = '\0';
        return stm_id_from_hex(tmp, out);
    }
    return false;
}

/* Who sent the message held: by its verified key, or (insecure) by routing id. */
static void s_sender(inbox_t *in, inbox_msg *msg)
{
    msg->has_sender = msg->verified = false;
    if (!in->insecure) {
        const char *user = zmq_msg_gets(&in->body, "User-Id");
        if (user && s_parse_key(user, strlen(user), &msg->sender))
            msg->has_sender = msg->verified = true;
        return;
    }
    /* Insecure: the routing id our peers set ("N" + hex id); a claim, not a proof. */
    const char *rid = zmq_msg_data(&in->rid);
    if (zmq_msg_size(&in->rid) == 1 + STM_ID_HEX_LEN && rid[0] == 'N')
        msg->has_sender = s_parse_key(rid + 1, STM_ID_HEX_LEN, &msg->sender);
}

bool stm_inbox_next(inbox_t *in, inbox_msg *msg)
{
    s_release(in);
    for (;;) {
        zmq_msg_init(&in->rid);
        if (zmq_msg_recv(&in->rid, in->sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&in->rid);
            return false;
        }
        zmq_msg_init(&in->body);
        in->holding = true;
        if (zmq_msg_more(&in->rid) && zmq_msg_recv(&in->body, in->sock, 0) >= 0)
            break;
        s_release(in); /* a routing id alone: nothing to read */
    }
    /* Anything after the body is not ours: read and drop it. */
    bool more = zmq_msg_more(&in->body);
    while (more) {
        zmq_msg_t extra;
        zmq_msg_init(&extra);
        more = zmq_msg_recv(&extra, in->sock, 0) >= 0 && zmq_msg_more(&extra);
        zmq_msg_close(&extra);
    }
    msg->data = zmq_msg_data(&in->body);
    msg->len = zmq_msg_size(&in->body);
    msg->route = zmq_msg_data(&in->rid);
    msg->route_len = zmq_msg_size(&in->rid);
    const char *address = zmq_msg_gets(&in->body, "Peer-Address");
    msg->address = address ? address : "";
    s_sender(in, msg);
    return true;
}

inbox_sent stm_inbox_send(inbox_t *in, const void *route, size_t route_len, const void *data,
                          size_t len)
{
    /* Under ZMQ_ROUTER_MANDATORY the routing id frame fails when its connection is gone
     * (EHOSTUNREACH) or full (EAGAIN); once it is taken, the body is too. */
    if (zmq_send(in->sock, route, route_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) != (int)route_len)
        return zmq_errno() == EAGAIN ? INBOX_FULL : INBOX_CLOSED;
    if (zmq_send(in->sock, data, len, ZMQ_DONTWAIT) != (int)len)
        return INBOX_FULL;
    return INBOX_SENT;
}
