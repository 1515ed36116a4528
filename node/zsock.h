/* zsock.h - ZeroMQ socket calls with their results checked.
 *
 * A socket that is made, set up, bound or connected without an error checked can
 * fail later in ways that name nothing (a CURVE key not set is a plain-text socket).
 * Each call here turns a failure into an stm_error naming the socket, the call and
 * libzmq's reason: "the inbox: ZMQ_CURVE_SECRETKEY: Invalid argument". */
#ifndef STM_ZSOCK_H
#define STM_ZSOCK_H

#include "base/error.h"

#include <stddef.h>
#include <stdint.h>

/* STM_ESYS "what: libzmq's message for zmq_errno()". Returns the code. */
STM_NODISCARD stm_err stm_zsock_error(stm_error *err, const char *what);

/* A new socket of type on ctx, with ZMQ_LINGER 0 (a node that stops drops what it has
 * not sent: unacknowledged batches are sent again from vectors). *out is the
 * caller's (stm_zsock_close). name says which socket in messages ("the inbox"). */
STM_NODISCARD stm_err stm_zsock_new(void *ctx, int type, const char *name, void **out,
                                    stm_error *err);

/* Closes *sock when it is open and sets it to NULL; safe twice. */
void stm_zsock_close(void **sock);

/* zmq_setsockopt with the result checked. */
STM_NODISCARD stm_err stm_zsock_set(void *sock, int option, const void *value, size_t len,
                                    const char *name, stm_error *err);
STM_NODISCARD stm_err stm_zsock_set_int(void *sock, int option, int value, const char *name,
                                        stm_error *err);
STM_NODISCARD stm_err stm_zsock_set_int64(void *sock, int option, int64_t value, const char *name,
                                          stm_error *err);

/* libzmq's version as "MAJOR.MINOR.PATCH" into out (size bytes, NUL-terminated). */
void stm_zsock_version(char *out, size_t size);

#endif
