/* known_peers.h - NODE_DIR/known_peers: the public keys a node trusted on first use
 * (security.trust_on_first_use in node.toml), kept apart from node.toml, which the
 * node never writes.
 *
 * One Z85 key per line (hex is read too); lines starting with '#' that are not keys
 * are comments, blank lines are skipped. The node appends to it (a key trusted on
 * first use, or by `stemma trust add`); `stemma trust remove` or a person deletes a
 * line to stop trusting a key. Bounds: at most CONFIG_MAX_TRUSTED keys and
 * KNOWN_PEERS_MAX_BYTES bytes, checked before anything is kept. */
#ifndef STM_KNOWN_PEERS_H
#define STM_KNOWN_PEERS_H

#include "base/error.h"
#include "base/id.h"

#include <stdbool.h>
#include <stddef.h>

#define KNOWN_PEERS_FILE "known_peers"
#define KNOWN_PEERS_MAX_BYTES (8u << 20) /* the size of known_peers */
#define KNOWN_PEERS_MAX_LINE 510         /* a key line, blanks trimmed; comments may be longer */

/* Reads dir/known_peers into *keys (the caller's to free) and *count; a missing file is
 * an empty list. STM_EINPUT "DIR/known_peers:LINE: ..." for a line that is neither a
 * key nor a comment, or a file over the limits; STM_ESYS when it cannot be read. */
STM_NODISCARD stm_err stm_known_peers_load(const char *dir, stm_id **keys, size_t *count,
                                           stm_error *err);
/* Appends key (in Z85) as a line of dir/known_peers, creating it with a comment saying
 * what it is, and fsyncs it. Does not look for the key first: the caller knows. */
STM_NODISCARD stm_err stm_known_peers_add(const char *dir, const stm_id *key, stm_error *err);

/* Removes every line of dir/known_peers holding key (comments and other keys kept),
 * writing the file whole, fsynced, before it takes the name; *removed says whether
 * any line held it (a missing file holds none). STM_EINPUT or STM_ESYS as
 * stm_known_peers_load, or STM_ESYS when it cannot be written. */
STM_NODISCARD stm_err stm_known_peers_remove(const char *dir, const stm_id *key, bool *removed,
                                             stm_error *err);

#endif
