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
 *  1. A key trusted is trusted for the life of the handler; keys are never removed.
 *  2. A key trusted on first use is trusted at once, in memory, and written to
 *     known_peers (and fsynced) only by stm_zap_flush, which the node calls after
 *     dispatch, before it sleeps: a slow disk never holds up an answer to libzmq or
 *     the messages waiting behind it. stm_zap_destroy flushes what is left.
 *  3. Every request gets an answer, even a malformed one (status 400): libzmq waits
 *     for it before the connection goes on or is closed. */
#ifndef STM_ZAP_H
#define STM_ZAP_H

#include "base/error.h"
#include "base/id.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct zap zap_t;

/* A handler trusting trusted[0..ntrusted) (copied; sorted, repeats dropped: each
 * connection is then a binary search), and under tofu any key, remembered in
 * dir/known_peers. No socket until stm_zap_bind. The caller owns it (stm_zap_destroy). */
zap_t *stm_zap_new(const stm_id *trusted, size_t ntrusted, bool tofu, const char *dir);
/* Writes what is left (stm_zap_flush), closes the socket, frees. */
void stm_zap_destroy(zap_t **self_p);

/* Binds the handler's REP socket on ctx at inproc://zeromq.zap.01. It must be bound
 * before the first CURVE socket binds. STM_ESYS when libzmq refuses. */
STM_NODISCARD stm_err stm_zap_bind(zap_t *z, void *ctx, stm_error *err);
/* The handler's socket, to poll (lent); NULL before stm_zap_bind. */
void *stm_zap_socket(zap_t *z);

bool stm_zap_is_trusted(const zap_t *z, const stm_id *key);
/* Trusts key (a peer we were told to reach may reach us); nothing when trusted. */
void stm_zap_trust(zap_t *z, const stm_id *key);

/* Answers every request waiting on the socket. */
void stm_zap_handle(zap_t *z);
/* Appends the keys trusted on first use since the last call to known_peers. A key
 * that cannot be written is logged and stays trusted for this run. */
void stm_zap_flush(zap_t *z);

/* Connections refused because their key was not trusted. */
uint64_t stm_zap_refused_keys(const zap_t *z);

#endif
