/* vector.h - version vectors: per origin, how many of its operations a database holds.
 *
 * An entry (origin, seq) says: this database holds every operation of origin with a
 * sequence number from 1 to seq. It may hold some above seq as well (they arrived out
 * of order); a peer sending "what the other lacks" sends everything above seq, and a
 * duplicate is harmless. Entries are kept in order of origin (bytewise). */
#ifndef STM_VECTOR_H
#define STM_VECTOR_H

#include "base/buf.h"
#include "base/error.h"
#include "base/id.h"
#include "store.h"

#include <stdint.h>

/* Most origins a decoded vector may name. */
#define VECTOR_MAX_ENTRIES 100000u

typedef struct {
    stm_id origin;
    uint64_t seq;
} vector_entry;

typedef struct vector vector_t;

vector_t *stm_vector_new(void);
void stm_vector_destroy(vector_t **self_p);
/* Sets origin's entry to seq (adding it when absent). */
void stm_vector_set(vector_t *v, const stm_id *origin, uint64_t seq);
/* The entry for origin, 0 when absent. */
uint64_t stm_vector_get(const vector_t *v, const stm_id *origin);
size_t stm_vector_count(const vector_t *v);
const vector_entry *stm_vector_at(const vector_t *v, size_t i);

/* The vector of a database: its own node id with its last local sequence, and every
 * other origin it holds operations of. *out is the caller's. */
STM_NODISCARD stm_err stm_vector_read(store_t *store, vector_t **out, stm_error *err);

/* MessagePack: an array of [bin32 origin, uint seq] pairs, in order of origin. */
void stm_vector_encode(const vector_t *v, buf_t *out);
/* STM_EPROTO on malformed input (origins out of order or repeated among it, so that
 * decoding stays linear and no entry is ambiguous); *out is the caller's on success. */
STM_NODISCARD stm_err stm_vector_decode(const void *data, size_t len, vector_t **out,
                                        stm_error *err);

#endif
