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

/* Most origins a decoded vector may name, and the most entries one message carries:
 * a longer vector from a peer is cut there (stm_vector_decode_max), never refused, and
 * a node sends a longer one in parts or, to an older peer, cut (docs/protocol.md,
 * "Vector deltas"). */
#define VECTOR_MAX_ENTRIES 100000u

/* The most entries of one part of a whole vector a node sends a peer that takes parts
 * (vdelta.v1), and of the first HELLO to a peer whose capabilities are not known yet:
 * about 590 KB, so that no message of a long vector costs either side more than a few
 * megabytes in flight (ZeroMQ and CURVE hold several copies of a message). */
#define VECTOR_PART_ENTRIES 16384u

/* A vector's digest (docs/protocol.md, "Vector deltas"): for each entry of a seq above 0,
 * SipHash-2-4 with a 128-bit output (crypto_shorthash_siphashx24) of its origin and
 * its seq (8 bytes, big-endian) under the key "stemma vector v1"; the two little-endian
 * 64-bit halves of each summed modulo 2^64, written little-endian. A sum, so that
 * changing an entry changes the digest in constant time, whatever the vector's size,
 * and the order of the entries does not matter. An entry of seq 0 counts as absent. */
#define VECTOR_DIGEST_BYTES 16

typedef struct {
    uint64_t lane[2];
} vector_digest;

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

/* Sets every entry of changes in v (adding those it lacks) in one merge, O(n + k): a
 * delta naming thousands of new origins costs one pass, not a move each. d, when not
 * NULL, is v's digest, kept. True when some entry fell (a database put back in time). */
bool stm_vector_merge(vector_t *v, const vector_t *changes, vector_digest *d);

/* True when some entry of was is above now's (absent: 0): the vector fell. */
bool stm_vector_fell(const vector_t *was, const vector_t *now);

/* The vector of a database: its own node id with its last local sequence, and every
 * other origin it holds operations of. *out is the caller's. */
STM_NODISCARD stm_err stm_vector_read(store_t *store, vector_t **out, stm_error *err);

/* The digest changed by origin's entry seq joining (add) or leaving (sub) the vector. */
void stm_vector_digest_add(vector_digest *d, const stm_id *origin, uint64_t seq);
void stm_vector_digest_sub(vector_digest *d, const stm_id *origin, uint64_t seq);
/* The digest of v. */
void stm_vector_digest_of(const vector_t *v, vector_digest *out);
/* As bytes, for the wire, and back. */
void stm_vector_digest_bytes(const vector_digest *d, unsigned char out[VECTOR_DIGEST_BYTES]);
void stm_vector_digest_from(vector_digest *d, const unsigned char in[VECTOR_DIGEST_BYTES]);
bool stm_vector_digest_equal(const vector_digest *a, const vector_digest *b);

/* MessagePack: an array of [bin32 origin, uint seq] pairs, in order of origin. */
void stm_vector_encode(const vector_t *v, buf_t *out);
/* STM_EPROTO on malformed input (origins out of order or repeated among it, so that
 * decoding stays linear and no entry is ambiguous); *out is the caller's on success. */
STM_NODISCARD stm_err stm_vector_decode(const void *data, size_t len, vector_t **out,
                                        stm_error *err);
/* The same for a vector of any length from a peer: the first max entries are kept and
 * the rest checked (in order, well-formed) and dropped, *cut saying how many. Dropping
 * entries is safe: a peer thought to hold less is sent again what it holds (duplicates
 * change nothing), never denied what it lacks. */
STM_NODISCARD stm_err stm_vector_decode_max(const void *data, size_t len, size_t max,
                                            vector_t **out, size_t *cut, stm_error *err);

/* A vector as one message carries it, decoded (docs/protocol.md, "Vector deltas"). */
typedef struct {
    vector_t *entries;    /* the whole vector, or the entries changed since base; owned */
    bool delta;           /* entries change the vector whose digest is base */
    vector_digest base;
    bool has_digest;
    vector_digest digest; /* the sender's, once this part is taken */
    bool more;            /* further parts follow (VECTOR messages) */
    bool part;            /* whole, but cut by its sender: some of its entries only */
    size_t cut;           /* entries dropped in decoding (over VECTOR_MAX_ENTRIES) */
} vector_msg;
void stm_vector_msg_clear(vector_msg *m);

/* A vector as this node sends one message of it: entries encoded (a MessagePack array,
 * as stm_vector_encode writes one) and what to say with them. */
typedef struct {
    buf_t entries;
    bool delta;
    vector_digest base;
    bool has_digest;
    vector_digest digest;
    bool more, part;
} vector_out;

/* Fills o (its entries reset first; the caller frees them, stm_buf_free) with v whole
 * and its digest. */
void stm_vector_out_whole(vector_out *o, const vector_t *v);
/* Fills o the same way with what m says, as it said it (a decoded part sent on). */
void stm_vector_out_of_msg(vector_out *o, const vector_msg *m);

#endif
