/* dbopen.h - a database stemma has set up, opened for a command or an application:
 * `changes`, `vector`, `apply` and the public API's stemma_db (include/stemma.h).
 *
 * It is checked through a read-only connection first: opening it for writing switches
 * it to WAL mode, which must not happen to a file that is then refused. Its format is
 * checked, and what the application changed since stemma last looked is made
 * operations, so that they are counted, sent and compared with what arrives. */
#ifndef STM_DBOPEN_H
#define STM_DBOPEN_H

#include "origin.h"
#include "store.h"
#include "base/error.h"

/* Opens path as above. *out is the caller's (stm_store_destroy); *change (may be NULL)
 * says whether the database took a new origin on the way, and why (origin.h), for the
 * caller to tell. STM_EINPUT, saying what to run, for a file stemma has not set up. */
STM_NODISCARD stm_err stm_dbopen(const char *path, store_t **out, origin_change *change,
                                 stm_error *err);

#endif
