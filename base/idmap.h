/* idmap.h - an open-addressing index from hashes to positions in the caller's array,
 * for the lookups that were linear scans: ids to their numbers and back (sync/store.c),
 * a transaction's origins (sync/txn_record.c). With many origins (every device that
 * ever wrote is one) a scan per operation made applying a batch quadratic in them.
 *
 * The map holds (hash, position) pairs, no keys: the caller keeps its entries in an
 * array and says, through eq, whether the entry at a position is the one looked for.
 * Ids are digests or random keys, so their first eight bytes are a good hash
 * (stm_idmap_hash_id); numbers are spread by stm_idmap_hash_int. */
#ifndef STM_IDMAP_H
#define STM_IDMAP_H

#include "id.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t hash;
    uint32_t pos1; /* position + 1; 0: empty */
} idmap_slot;

/* Zero-initialised: empty. */
typedef struct {
    idmap_slot *slots;
    size_t cap; /* a power of two, or 0 */
    size_t n;
} idmap_t;

/* True when the caller's entry at pos is the one looked for (ctx: what is looked for). */
typedef bool (*idmap_eq)(const void *ctx, uint32_t pos);

uint64_t stm_idmap_hash_id(const stm_id *id);
uint64_t stm_idmap_hash_int(int64_t v);

/* The position of the entry hashed h for which eq is true, or -1. */
int64_t stm_idmap_find(const idmap_t *m, uint64_t h, idmap_eq eq, const void *ctx);
/* Adds position pos under hash h (the caller checked it is not there). */
void stm_idmap_put(idmap_t *m, uint64_t h, uint32_t pos);
/* Empties the map, keeping its memory. */
void stm_idmap_clear(idmap_t *m);
void stm_idmap_free(idmap_t *m);

#endif
