/* dirlock.h - one node per directory: NODE_DIR/node.lock, held while a node runs.
 *
 * A running node holds an exclusive flock(2) on NODE_DIR/node.lock, which holds its
 * pid (for the message a second node prints). The kernel drops the lock when the
 * process ends, however it ends (kill -9 included), so a lock is never stale; the
 * file itself stays, and a pid in it means nothing unless the lock is held.
 *
 * Why flock and not fcntl: an fcntl lock belongs to the process and goes when any
 * descriptor of the file is closed by it; a flock belongs to the open file, so only
 * stm_dirlock_release ends it. The file is opened O_CLOEXEC: a program the node might
 * start does not inherit it.
 *
 * Why the file is never removed: a node that removed it on the way out could leave a
 * second one locking the old, removed file while a third creates and locks a new one:
 * two nodes running. Kept, every node locks the same file.
 *
 * What the lock makes safe (node.c takes it before anything else): the database,
 * known_peers and the control socket in NODE_DIR have one node at a time, so a socket
 * file found there at start was left by a node that died, and a node removes its own
 * socket before it lets go of the lock, so never one a newer node made. */
#ifndef STM_DIRLOCK_H
#define STM_DIRLOCK_H

#include "base/error.h"

#define DIRLOCK_FILE "node.lock"

typedef struct dirlock dirlock_t;

/* Locks dir/node.lock (created 0600 if missing) without waiting, and writes this
 * process's pid into it. *out is the caller's (stm_dirlock_release). STM_ESYS "DIR:
 * already running (pid N)" when another process holds it, or when the file cannot be
 * opened or locked. */
STM_NODISCARD stm_err stm_dirlock_acquire(const char *dir, dirlock_t **out, stm_error *err);
/* Empties the file and lets go of the lock; safe on NULL and twice. */
void stm_dirlock_release(dirlock_t **self_p);

#endif
