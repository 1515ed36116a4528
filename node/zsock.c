/* zsock.c - ZeroMQ socket calls with their results checked (zsock.h). */
#include "zsock.h"

#include <assert.h>
#include <stdio.h>
#include <zmq.h>

stm_err stm_zsock_error(stm_error *err, const char *what)
{
    return stm_error_set(err, STM_ESYS, "%s: %s", what, zmq_strerror(zmq_errno()));
}

/* The options the node sets, by name, for messages. */
static const char *s_option_name(int option)
{
    switch (option) {
    case ZMQ_LINGER:
        return "ZMQ_LINGER";
    case ZMQ_RCVHWM:
        return "ZMQ_RCVHWM";
    case ZMQ_SNDHWM:
        return "ZMQ_SNDHWM";
    case ZMQ_IMMEDIATE:
        return "ZMQ_IMMEDIATE";
    case ZMQ_MAXMSGSIZE:
        return "ZMQ_MAXMSGSIZE";
    case ZMQ_RECONNECT_IVL:
        return "ZMQ_RECONNECT_IVL";
    case ZMQ_RECONNECT_IVL_MAX:
        return "ZMQ_RECONNECT_IVL_MAX";
    case ZMQ_ROUTING_ID:
        return "ZMQ_ROUTING_ID";
    case ZMQ_ROUTER_HANDOVER:
        return "ZMQ_ROUTER_HANDOVER";
    case ZMQ_CURVE_SERVER:
        return "ZMQ_CURVE_SERVER";
    case ZMQ_CURVE_SERVERKEY:
        return "ZMQ_CURVE_SERVERKEY";
    case ZMQ_CURVE_PUBLICKEY:
        return "ZMQ_CURVE_PUBLICKEY";
    case ZMQ_CURVE_SECRETKEY:
        return "ZMQ_CURVE_SECRETKEY";
    case ZMQ_ZAP_DOMAIN:
        return "ZMQ_ZAP_DOMAIN";
    }
    return "an option";
}

stm_err stm_zsock_set(void *sock, int option, const void *value, size_t len, const char *name,
                      stm_error *err)
{
    if (zmq_setsockopt(sock, option, value, len) == 0)
        return STM_OK;
    return stm_error_set(err, STM_ESYS, "%s: setting %s: %s", name, s_option_name(option),
                         zmq_strerror(zmq_errno()));
}

stm_err stm_zsock_set_int(void *sock, int option, int value, const char *name, stm_error *err)
{
    return stm_zsock_set(sock, option, &value, sizeof value, name, err);
}

stm_err stm_zsock_set_int64(void *sock, int option, int64_t value, const char *name, stm_error *err)
{
    return stm_zsock_set(sock, option, &value, sizeof value, name, err);
}

stm_err stm_zsock_new(void *ctx, int type, const char *name, void **out, stm_error *err)
{
    *out = zmq_socket(ctx, type);
    if (!*out)
        return stm_error_set(err, STM_ESYS, "%s: creating the socket: %s", name,
                             zmq_strerror(zmq_errno()));
    stm_err rc = stm_zsock_set_int(*out, ZMQ_LINGER, 0, name, err);
    if (rc != STM_OK)
        stm_zsock_close(out);
    return rc;
}

void stm_zsock_close(void **sock)
{
    if (!*sock)
        return;
    /* zmq_close fails only for something that is not a socket: a bug here. */
    int rc = zmq_close(*sock);
    assert(rc == 0);
    (void)rc;
    *sock = NULL;
}

void stm_zsock_version(char *out, size_t size)
{
    int major, minor, patch;
    zmq_version(&major, &minor, &patch);
    snprintf(out, size, "%d.%d.%d", major, minor, patch);
}
