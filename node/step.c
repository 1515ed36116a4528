/* step.c - a node run by an application's own loop (node.h, "a node an application
 * runs in its own loop"; include/stemma.h): one pass at a time, a descriptor to poll
 * (pollfd.h), the goodbye said when it stops, and what it is asked on its own thread. */
#include "node.h"
#include "node_internal.h"
#include "control.h"
#include "pollfd.h"
#include "wire.h"
#include "base/buf.h"
#include "base/log.h"

#include <zmq.h>

stm_err stm_node_step(node_t *n, long *next_ms, stm_error *err)
{
    stm_err rc = stm_node_pass(n, 0, next_ms, err);
    if (rc != STM_OK)
        return rc;
    /* A socket with more than a pass reads (or one that became ready meanwhile) would
     * not wake a poll on stm_node_fd again (ZMQ_FD signals changes, not readiness):
     * asked now, and the caller told to step again at once. */
    size_t nitems = stm_node_poll_items(n);
    if (zmq_poll(n->poll_items, (int)nitems, 0) > 0)
        *next_ms = 0;
    return n->pollfd ? stm_pollfd_watch(n->pollfd, n->poll_items, nitems, err) : STM_OK;
}

stm_err stm_node_fd(node_t *n, int *fd, stm_error *err)
{
    if (!n->pollfd) {
        stm_err rc = stm_pollfd_new(&n->pollfd, err);
        if (rc != STM_OK)
            return rc;
        size_t nitems = stm_node_poll_items(n);
        rc = stm_pollfd_watch(n->pollfd, n->poll_items, nitems, err);
        if (rc != STM_OK)
            return rc;
    }
    *fd = stm_pollfd_fd(n->pollfd);
    return STM_OK;
}

void stm_node_say_bye(node_t *n)
{
    if (!n->started || n->said_bye)
        return;
    n->said_bye = true;
    buf_t bye = BUF_INIT;
    stm_wire_encode_empty(&bye, WIRE_BYE);
    stm_mesh_send_connected(n->mesh, &bye);
    stm_buf_free(&bye);
    log_level was = stm_log_raise_min(n->log_level);
    stm_log_event(STM_LOG_INFO, "stopped", n->short_id, "stopped cleanly");
    stm_log_set_min(was);
}

const char *stm_node_key_z85(const node_t *n)
{
    return n->key_z85;
}

const char *stm_node_control_endpoint(const node_t *n)
{
    return stm_control_endpoint(n->control);
}

char *stm_node_ask(node_t *n, const char *request)
{
    return stm_control_answer(&n->view, request);
}
