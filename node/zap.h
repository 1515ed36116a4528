/* zap.h - who may connect to the inbox: the trusted keys, and the ZAP handler that
 * answers libzmq's question about each connecting key (ZeroMQ RFC 27).
 *
 * The handler accepts mechanism CURVE with a 32-byte client key that is trusted (the
 * configuration's keys, the configured peers' keys, known_peers), or, under trust on
 * first use, any key, which it then trusts. It answers User-Id = the key in Z85, so
 * the node knows each message's sender by the key it proved (docs/protocol.md, ZAP).
 *
 * Invariants:
 *
 *  1. Every key is held once, with where its trust comes from (zap_from), in one array
 *     sorted by key: each connection and each message is a binary search. A key is
 *     trusted until stm_zap_remove drops it; one that node.toml names (trusted, or a
 *     peer's key) is never dropped while running, since it would come back at restart.
 *  2. stm_zap_add and stm_zap_remove change known_peers first and memory after: what
 *     `stemma trust` reports done is done on disk (a user's command, rare, answered
 *     only once written). A key trusted on first use is trusted at once, in memory, and written to
 *     known_peers (and fsynced) only by stm_zap_flush, which the node calls after
 *     dispatch, before it sleeps: a slow disk never holds up an answer to libzmq or
 *     the messages waiting behind it. stm_zap_destroy flushes what is left.
 *  3. Every request gets an answer, even a malformed one (status 400): libzmq waits
 *     for it before the connection goes on or is closed. */
#ifndef STM_ZAP_H
#define STM_ZAP_H

#include "config.h"
#include "base/error.h"
#include "base/id.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct zap zap_t;

/* Where a key's trust comes from; a key named in several places has the highest. */
typedef enum {
    ZAP_FROM_KNOWN,  /* known_peers: `stemma trust add`, or trusted on first use */
    ZAP_FROM_PEER,   /* node.toml [peers]: a peer we were told to reach may reach us */
    ZAP_FROM_CONFIG, /* node.toml [security] trusted */
} zap_from;

/* "known_peers", "node.toml [peers]", "node.toml [security] trusted": static. */
const char *stm_zap_from_name(zap_from from);

/* A handler trusting config->trusted, the keys of config->peers and known[0..nknown)
 * (copied; sorted, repeats dropped), and under config->trust_on_first_use any key,
 * remembered in config->dir/known_peers. No socket until stm_zap_bind: without one it
 * is the trusted set alone, which `stemma trust --dir` edits when no node runs. The
 * caller owns it (stm_zap_destroy). */
zap_t *stm_zap_new(const node_config *config, const stm_id *known, size_t nknown);
/* Writes what is left (stm_zap_flush), closes the socket, frees. */
void stm_zap_destroy(zap_t **self_p);

/* Binds the handler's REP socket on ctx at inproc://zeromq.zap.01. It must be bound
 * before the first CURVE socket binds. STM_ESYS when libzmq refuses. */
STM_NODISCARD stm_err stm_zap_bind(zap_t *z, void *ctx, stm_error *err);
/* The handler's socket, to poll (lent); NULL before stm_zap_bind. */
void *stm_zap_socket(zap_t *z);

bool stm_zap_is_trusted(const zap_t *z, const stm_id *key);
/* Whether a key that proved itself some other way than by connecting to the inbox (a
 * peer answering on the connection this node opened to it) may be heard: trusted, or
 * trusted now on first use, as the handler would (written by stm_zap_flush). */
bool stm_zap_admit(zap_t *z, const stm_id *key);
/* Whether key is trusted, and if so where from (*from). */
bool stm_zap_lookup(const zap_t *z, const stm_id *key, zap_from *from);

/* `stemma trust add`: appends key to known_peers (fsynced), then trusts it; *added is
 * false (and nothing is written) when it was trusted already. STM_ESYS naming the file
 * when it cannot be written: the key is then not trusted. */
STM_NODISCARD stm_err stm_zap_add(zap_t *z, const stm_id *key, bool *added, stm_error *err);
/* `stemma trust remove`: removes key's lines from known_peers (the file written whole),
 * then stops trusting it. STM_EINPUT when it is not trusted, or when node.toml trusts
 * it (the message names the setting: it would be trusted again at the next start);
 * STM_ESYS naming the file when it cannot be rewritten (the key then stays trusted). */
STM_NODISCARD stm_err stm_zap_remove(zap_t *z, const stm_id *key, stm_error *err);
/* In memory only, for a change node.toml already holds (`stemma peer`): trusts key
 * from source from (a key trusted already takes it when higher), or stops trusting it
 * (nothing when it is not trusted). */
void stm_zap_trust_as(zap_t *z, const stm_id *key, zap_from from);
void stm_zap_untrust(zap_t *z, const stm_id *key);

/* SIGHUP: the trusted set becomes what config and known[0..nknown) say (as
 * stm_zap_new, trust on first use included); each key that was trusted and is not
 * now, and each that is now and was not, is told to changed (added false, true), in
 * key order. Keys trusted on first use and not written yet are written first. */
void stm_zap_reload(zap_t *z, const node_config *config, const stm_id *known, size_t nknown,
                    void (*changed)(void *ctx, const stm_id *key, bool added), void *ctx);

/* The trusted keys, one a line: "Z85 FROM\n", sorted by key, then a line saying
 * whether trust on first use is on. The caller frees it. */
char *stm_zap_list_text(const zap_t *z);

/* What a trust request changed. */
typedef enum {
    ZAP_CHANGED_NOTHING, /* a list, a key trusted already, or an error */
    ZAP_CHANGED_ADDED,   /* *key is trusted now */
    ZAP_CHANGED_REMOVED, /* *key is no longer trusted */
} zap_change;

/* Answers a control request (docs/protocol.md, "Control socket"): "trust add KEY",
 * "trust remove KEY" or "trust list", KEY in Z85 or hex; the same function serves a
 * running node and `stemma trust --dir` on a stopped one. Returns the reply text (the
 * caller's to free; one starting "error: " when nothing was done) and says what
 * changed in *change and *key; NULL when request is not a trust request. */
char *stm_zap_request(zap_t *z, const char *request, zap_change *change, stm_id *key);

/* Answers every request waiting on the socket. */
void stm_zap_handle(zap_t *z);
/* Appends the keys trusted on first use since the last call to known_peers. A key
 * that cannot be written is logged and stays trusted for this run. */
void stm_zap_flush(zap_t *z);

/* Connections refused because their key was not trusted. */
uint64_t stm_zap_refused_keys(const zap_t *z);

/* Whether any key is trusted on first use (security.trust_on_first_use, as last read). */
bool stm_zap_tofu(const zap_t *z);

#endif
