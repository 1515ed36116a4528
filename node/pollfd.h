/* pollfd.h - one file descriptor for an application's loop to poll, standing for all of
 * a node's sockets: an epoll set holding each ZeroMQ socket's ZMQ_FD and each plain
 * descriptor (LAN discovery's UDP socket) the node's loop waits on.
 *
 * ZMQ_FD says that a socket's state may have changed, not that a message waits: after
 * it wakes, the socket is asked (zmq_poll, as stm_node_step does) and read until it has
 * nothing more, or it may never wake again. stm_node_step does that, and says when a
 * socket still holds more than one step reads. */
#ifndef STM_POLLFD_H
#define STM_POLLFD_H

#include "base/error.h"

#include <stddef.h>
#include <zmq.h>

typedef struct pollfd_set pollfd_t;

/* A new, empty set. *out is the caller's (stm_pollfd_destroy). STM_ESYS when the system
 * will not make one. */
STM_NODISCARD stm_err stm_pollfd_new(pollfd_t **out, stm_error *err);
void stm_pollfd_destroy(pollfd_t **self_p);

/* The descriptor to poll for reading, the set's (closed by stm_pollfd_destroy). */
int stm_pollfd_fd(const pollfd_t *p);

/* Makes the set watch exactly what items wait on for reading (items with neither a
 * socket nor a descriptor are skipped): those added, those gone removed. */
STM_NODISCARD stm_err stm_pollfd_watch(pollfd_t *p, const zmq_pollitem_t *items, size_t n,
                                       stm_error *err);

#endif
