/* fdbudget.h - the file descriptors a node may open, against what its peers take.
 *
 * An active peer costs about FDBUDGET_PER_PEER descriptors: the TCP connection of the
 * DEALER this node opens to it, that socket's own mailbox (libzmq gives every socket an
 * eventfd), and the connection the peer opens to this node's inbox. The rest are fixed:
 * the database and its journal files, libzmq's threads and the node's other sockets,
 * the log. A node that runs out fails to connect, or to open its database, at some
 * moment nobody chose; so the node counts at start, raises its soft limit toward the
 * hard one when it needs to, and keeps no more active peers than fit (mesh.h). */
#ifndef STM_FDBUDGET_H
#define STM_FDBUDGET_H

#include <stddef.h>

#define FDBUDGET_PER_PEER 3
/* Descriptors kept beside those open at the count, for what opens later: SQLite's
 * journal and a backup, a reader's connection to the control socket, a beacon. */
#define FDBUDGET_RESERVE 16

typedef struct {
    long limit;     /* RLIMIT_NOFILE's soft limit, after raising it; -1: no limit known */
    long hard;      /* its hard limit (-1: none) */
    long fixed;     /* descriptors open at the count, and FDBUDGET_RESERVE */
    size_t peers;   /* active peers that fit (SIZE_MAX: no limit known) */
    size_t want;    /* the active peers asked for */
    long raised_from; /* the soft limit before it was raised; 0: not raised */
} fd_budget;

/* Counts for want active peers: the descriptors open now (/proc/self/fd), the limit,
 * raised toward the hard limit when want needs it (the one change this makes). Fills
 * *out. */
void stm_fdbudget_check(size_t want, fd_budget *out);

/* The node's count at start, for its configured peers and max_learned (mesh.h: it
 * dials that many learned peers and lets in as many more): the most active peers it
 * may keep (SIZE_MAX: no limit known). When that is fewer than it would keep, says so
 * in one log line (`fd-budget`), with what to raise. */
size_t stm_fdbudget_peers(size_t configured, int max_learned);

#endif
