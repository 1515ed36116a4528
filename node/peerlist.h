/* peerlist.h - `stemma peer add|remove`: node.toml's [peers] changed, for a running
 * node (which then dials the peer, or stops) and for `stemma peer --dir` on a stopped
 * one; the same function answers both.
 *
 * A peer added is what `stemma init --peer` makes: an entry in [peers] addresses and
 * its key in [security] trusted. A peer removed loses both. node.toml is read, changed
 * and written whole by stm_config_save (fsynced, then renamed into place): it takes the
 * commented layout `init` writes, so comments of the user's own are not kept. */
#ifndef STM_PEERLIST_H
#define STM_PEERLIST_H

#include "config.h"

#include <stdbool.h>

/* What a peer request changed. */
typedef enum {
    PEERLIST_NOTHING, /* an error */
    PEERLIST_ADDED,   /* peer was added to node.toml */
    PEERLIST_REMOVED, /* peer was removed from node.toml */
} peerlist_change;

typedef struct {
    peerlist_change change;
    config_peer peer;   /* the peer added or removed; its endpoint owned */
    bool still_trusted; /* removed, and its key is still in known_peers */
} peerlist_result;

/* Answers a control request (docs/protocol.md, "Control socket"): "peer add
 * KEY@ENDPOINT" (ENDPOINT alone on an insecure node) or "peer remove KEY" (or
 * ENDPOINT), changing dir/node.toml. Returns the reply text (the caller's to free; one
 * starting "error: " when nothing was changed) and fills *out
 * (stm_peerlist_result_clear); NULL when request is not a peer request. */
char *stm_peerlist_request(const char *dir, const char *request, peerlist_result *out);
void stm_peerlist_result_clear(peerlist_result *r);

#endif
