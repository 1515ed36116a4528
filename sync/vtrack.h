/* vtrack.h - a database's version vector kept in memory, as a node tells it to its
 * peers: each entry with the generation it last changed in, so that what changed since
 * an exchange is found without a query, and the vector's digest (vector.h), kept as it
 * changes.
 *
 * Reading the vector from the database costs a query per exchange and a row per
 * origin (every device that ever wrote is one): 100,000 origins took 15-30 ms, and an
 * ACK was sent after every batch stored. A node keeps this one instead, moved by its
 * own transactions as they commit (feed.h) and compared with the database when another
 * program wrote (stm_vtrack_load).
 *
 * Invariants:
 *
 *  1. Settled entries are in order of origin, each origin once (stm_vtrack_settle merges
 *     origins added since; every reader below needs a settled vector).
 *  2. gen counts changes: each change of an entry gives it the next generation, so the
 *     entries changed after generation g are those whose gen is above g.
 *  3. The digest is that of the entries as they are (vector.h), changed entry by entry. */
#ifndef STM_VTRACK_H
#define STM_VTRACK_H

#include "base/buf.h"
#include "base/error.h"
#include "store.h"
#include "vector.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct vtrack vtrack_t;

/* An empty vector. The caller owns it (stm_vtrack_destroy). */
vtrack_t *stm_vtrack_new(void);
void stm_vtrack_destroy(vtrack_t **self_p);

/* Sets origin's entry to seq (adding it; a new origin is settled later). */
void stm_vtrack_set(vtrack_t *vt, const stm_id *origin, uint64_t seq);
/* Merges the origins added since the last settle (invariant 1): O(n + k log k). */
void stm_vtrack_settle(vtrack_t *vt);

/* Told of each entry a load changes: its origin, the seq it had (0: none) and has. */
typedef void (*vtrack_changed_fn)(void *ctx, const stm_id *origin, uint64_t was, uint64_t now);
/* Sets every entry to the database's (stm_vector_read's rows: the remote origins and the
 * local one), telling changed (may be NULL) of each that differs; settles. */
STM_NODISCARD stm_err stm_vtrack_load(vtrack_t *vt, store_t *store, vtrack_changed_fn changed,
                                      void *ctx, stm_error *err);

/* ---- reading (settled) ---- */

/* Origin's entry (0: none), added but not settled ones too. */
uint64_t stm_vtrack_get(const vtrack_t *vt, const stm_id *origin);
size_t stm_vtrack_count(const vtrack_t *vt);
/* Entry i in order of origin, lent until the next change. */
const vector_entry *stm_vtrack_at(const vtrack_t *vt, size_t i);
/* How many entries, and their seqs summed: the low 32 bits of each, and the high ones
 * (modulo 2^64). Two vectors that differ almost surely differ in these, and SQLite sums
 * them over a table without reading it into memory (feed.h, stm_feed_sync). */
void stm_vtrack_sums(const vtrack_t *vt, size_t *count, uint64_t *lo, uint64_t *hi);
/* The generation of the last change (0: none yet). */
uint64_t stm_vtrack_gen(const vtrack_t *vt);
void stm_vtrack_digest(const vtrack_t *vt, vector_digest *out);
/* How many entries changed after generation gen. */
size_t stm_vtrack_changed_count(const vtrack_t *vt, uint64_t gen);
/* A copy of the whole vector; the caller owns it. */
vector_t *stm_vtrack_copy(const vtrack_t *vt);

/* ---- encoding (vector.h's MessagePack array), appended to out ---- */

/* Entries from .. to - 1 (in origin order), and prefix, the digest of entries 0 ..
 * from - 1, moved on to that of 0 .. to - 1 (NULL: none): the parts a vector too long for
 * one message is sent in. */
void stm_vtrack_encode_range(const vtrack_t *vt, size_t from, size_t to, buf_t *out,
                             vector_digest *prefix);
/* The entries changed after generation gen. */
void stm_vtrack_encode_changed(const vtrack_t *vt, uint64_t gen, buf_t *out);
/* At most max entries: those of the highest seq, in origin order; for a peer that takes
 * no more in one message. Dropping those of the lowest seq makes the peer send again
 * the fewest operations. */
void stm_vtrack_encode_top(const vtrack_t *vt, size_t max, buf_t *out);

#endif
