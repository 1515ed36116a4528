/* control.h - the control socket: local requests for reports, answered from a snapshot
 * of the node's parts (report.h renders it).
 *
 * A REP socket on the control endpoint, which must be ipc:// or loopback TCP: it has
 * no authentication, so the mesh must never reach it. An ipc socket file is made mode
 * 0600 from the start (only the node's user may ask) and removed when the node stops,
 * if it is still the file the node bound. One found at start is removed when nobody
 * listens on it (a node that died: NODE_DIR's lock, dirlock.h, says none runs) and
 * refused when somebody does.
 * The requests are docs/protocol.md's, "Control socket". */
#ifndef STM_CONTROL_H
#define STM_CONTROL_H

#include "base/error.h"
#include "beacon.h"
#include "local.h"
#include "mesh.h"
#include "report.h"
#include "zap.h"
#include "sync/inbound.h"
#include "compactor.h"

#include <stdbool.h>
#include <stdint.h>

/* Messages dropped from the mesh, by why: the node counts them, the reports show them
 * (stemma stats). */
typedef struct {
    uint64_t malformed;                  /* malformed, or of another protocol version */
    uint64_t unknown_senders;            /* from no known peer, or impostor HELLOs */
    uint64_t by_kind[REPORT_DROP_KINDS]; /* the two above, by why */
} control_drops;

/* Counts one message dropped. */
void stm_control_drop(control_drops *d, report_drop why);

/* Where a report is read from: the node's parts, lent for as long as the control
 * socket is used with them. */
typedef struct {
    const stm_id *id;           /* this node's id */
    bool secure;                /* CURVE (false: insecure) */
    const char *endpoint;       /* the mesh endpoint, port resolved */
    const char *name;           /* the device's name */
    local_t *local;             /* the database, its lineage and version */
    const inbound_t *inbound;   /* the batches waiting, and the attempts to store them */
    const zap_t *zap;           /* the keys refused */
    const mesh_t *mesh;         /* the peers */
    const control_drops *drops; /* messages dropped */
    const beacon_t *beacon;     /* LAN discovery's counters; NULL when it is off */
    const compactor_t *compactor; /* compaction's figures */
    /* Answers a request that changes the node ("trust ...", "peer ..."): the reply, the caller's
     * to free; NULL when request is none of those. NULL: every such request is unknown. */
    char *(*change)(void *ctx, const char *request);
    void *change_ctx; /* change's first argument */
} control_view;

typedef struct control control_t;

/* Binds a REP socket on ctx at endpoint (copied). STM_EINPUT when the endpoint is not
 * ipc:// or loopback TCP, or cannot be bound; STM_ESYS when libzmq refuses otherwise.
 * *out is the caller's (stm_control_destroy). */
STM_NODISCARD stm_err stm_control_new(void *ctx, const char *endpoint, control_t **out,
                                      stm_error *err);
/* Closes the socket and removes an ipc socket file. */
void stm_control_destroy(control_t **self_p);

/* The socket, to poll (lent); the endpoint as configured (lent). */
void *stm_control_socket(control_t *c);
const char *stm_control_endpoint(const control_t *c);

/* The longest request read (longer ones are cut to this and so not understood). */
#define CONTROL_MAX_REQUEST 1023

/* Answers the request waiting, if any: a report filled from view, or view->change's
 * answer. The database
 * is read once an answer (counts, and the vector each peer's lag is measured
 * against), not once a peer. */
void stm_control_handle(control_t *c, const control_view *view);

/* The answer to request (a NUL-terminated request of the socket's), from view: what
 * stm_control_handle sends. The caller frees it. */
char *stm_control_answer(const control_view *view, const char *request);

/* ---- the other end: asking a running node ---- */

/* How long stm_control_ask waits for a node to take the request and to answer. */
#define CONTROL_ASK_TIMEOUT_MS 5000

/* Sends request (docs/protocol.md, "Control socket") to the node at endpoint and
 * waits for its answer, at most CONTROL_ASK_TIMEOUT_MS: *reply (NUL-terminated, *len
 * bytes before the NUL) is the caller's to free. name is how messages name the node
 * (its directory; NULL: the endpoint). STM_EUSAGE when endpoint cannot be used;
 * STM_ESYS at once when an ipc endpoint has no socket file or one nobody listens on
 * (no node runs), and when no node answers in time. */
STM_NODISCARD stm_err stm_control_ask(const char *endpoint, const char *name, const char *request,
                                      char **reply, size_t *len, stm_error *err);

#endif
