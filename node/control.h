/* control.h - the control socket: local requests for reports, answered from a snapshot
 * the node fills (report.h renders it).
 *
 * A REP socket on the control endpoint, which must be ipc:// or loopback TCP: it has
 * no authentication, so the mesh must never reach it. An ipc socket file is made mode
 * 0600 from the start (only the node's user may ask) and removed when the node stops.
 * The requests are docs/protocol.md's, "Control socket". */
#ifndef STM_CONTROL_H
#define STM_CONTROL_H

#include "base/error.h"
#include "report.h"

/* Fills r for one answer. What r points to is lent by the filler until the answer is
 * rendered, except r->peers and r->parked_reasons, which control_handle frees (free;
 * oplog_parked_reasons_free). */
typedef void (*control_fill_fn)(void *ctx, report_node *r);

typedef struct control control_t;

/* Binds a REP socket on ctx at endpoint (copied). STM_EINPUT when the endpoint is not
 * ipc:// or loopback TCP, or cannot be bound; STM_ESYS when libzmq refuses otherwise.
 * *out is the caller's (control_destroy). */
stm_err control_new(void *ctx, const char *endpoint, control_t **out, stm_error *err);
/* Closes the socket and removes an ipc socket file. */
void control_destroy(control_t **self_p);

/* The socket, to poll (lent); the endpoint as configured (lent). */
void *control_socket(control_t *c);
const char *control_endpoint(const control_t *c);

/* Answers the request waiting, if any: fill is called once for a known request. */
void control_handle(control_t *c, control_fill_fn fill, void *ctx);

#endif
