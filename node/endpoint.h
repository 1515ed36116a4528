/* endpoint.h - where a node listens or connects, as node.toml and the command line
 * give it, checked before ZeroMQ sees it so that a mistake is one line naming the
 * setting rather than a bind that fails later.
 *
 * An endpoint is tcp://HOST:PORT (HOST a name, an IPv4 address or a [bracketed] IPv6
 * one; `*`, every interface, too where the node binds; PORT 1-65535) or ipc://PATH (at
 * most ENDPOINT_MAX_IPC_PATH bytes, the limit of a Unix socket's name). */
#ifndef STM_ENDPOINT_H
#define STM_ENDPOINT_H

#include "base/error.h"

#include <stdbool.h>

#define ENDPOINT_MAX_IPC_PATH 107 /* bytes of an ipc:// path (sun_path) */

/* Checks an endpoint; bind allows `*` as the host. STM_EINPUT with a message saying
 * what is wrong (without naming the setting: callers add that). */
STM_NODISCARD stm_err stm_endpoint_check(const char *endpoint, bool bind, stm_error *err);

/* A tcp:// endpoint whose host is a wildcard: `*`, 0.0.0.0 or the IPv6 [::]. A node
 * may bind one; dialled, it reaches the dialler's own machine, never the node. */
bool stm_endpoint_is_wildcard(const char *endpoint);
/* An endpoint a peer may be dialled at: not empty (a HELLO's "none") and not a
 * wildcard (what an older node advertised when it bound one). */
bool stm_endpoint_dialable(const char *endpoint);

#endif
