/* pollfd.c - an epoll set standing for a node's sockets (pollfd.h). */
#include "pollfd.h"
#include "base/mem.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

struct pollfd_set {
    int epfd;     /* the epoll set */
    int *fds;     /* the descriptors it watches, as last set */
    size_t count; /* entries in fds */
};

stm_err stm_pollfd_new(pollfd_t **out, stm_error *err)
{
    int epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0)
        return stm_error_set(err, STM_ESYS, "making a descriptor to poll the node on: %s",
                             strerror(errno));
    pollfd_t *p = stm_calloc(1, sizeof *p);
    p->epfd = epfd;
    *out = p;
    return STM_OK;
}

void stm_pollfd_destroy(pollfd_t **self_p)
{
    pollfd_t *p = *self_p;
    if (!p)
        return;
    close(p->epfd);
    free(p->fds);
    free(p);
    *self_p = NULL;
}

int stm_pollfd_fd(const pollfd_t *p)
{
    return p->epfd;
}

/* The descriptor item waits on: a ZeroMQ socket's ZMQ_FD, or its plain fd; -1: none. */
static int s_item_fd(const zmq_pollitem_t *item)
{
    if (!item->socket)
        return item->events ? item->fd : -1;
    int fd = -1;
    size_t len = sizeof fd;
    if (zmq_getsockopt(item->socket, ZMQ_FD, &fd, &len) != 0)
        return -1;
    return fd;
}

static bool s_has(const int *fds, size_t n, int fd)
{
    for (size_t i = 0; i < n; i++)
        if (fds[i] == fd)
            return true;
    return false;
}

stm_err stm_pollfd_watch(pollfd_t *p, const zmq_pollitem_t *items, size_t n, stm_error *err)
{
    int *want = stm_calloc(n ? n : 1, sizeof *want);
    size_t nwant = 0;
    for (size_t i = 0; i < n; i++) {
        int fd = s_item_fd(&items[i]);
        if (fd >= 0 && !s_has(want, nwant, fd))
            want[nwant++] = fd;
    }
    /* Gone: removed (a socket closed has left the set already, and says so). */
    for (size_t i = 0; i < p->count; i++)
        if (!s_has(want, nwant, p->fds[i]))
            (void)epoll_ctl(p->epfd, EPOLL_CTL_DEL, p->fds[i], NULL);
    /* Every one wanted is added: EEXIST means it is there already. A number reused by a
     * new socket after the old one closed was dropped from the set on that close, and
     * is added again here. */
    stm_err rc = STM_OK;
    for (size_t i = 0; i < nwant && rc == STM_OK; i++) {
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = want[i]};
        if (epoll_ctl(p->epfd, EPOLL_CTL_ADD, want[i], &ev) != 0 && errno != EEXIST)
            rc = stm_error_set(err, STM_ESYS, "watching the node's sockets: %s",
                               strerror(errno));
    }
    free(p->fds);
    p->fds = want;
    p->count = nwant;
    return rc;
}
