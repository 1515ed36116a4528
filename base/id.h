/* id.h - the 32-byte identities of stemma: version ids, family heads, checksums.
 *
 * All are BLAKE2b-256 digests (libsodium crypto_generichash with a 32-byte output and
 * no key), printed as 64 lowercase hex digits. docs/lineage.md defines the bytes each
 * one hashes. A plain value type. */
#ifndef STM_ID_H
#define STM_ID_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STM_ID_BYTES 32
#define STM_ID_HEX_LEN 64
#define STM_ID_SHORT_LEN 12 /* hex digits of an id shown to people (logs) */

typedef struct {
    unsigned char bytes[STM_ID_BYTES];
} stm_id;

/* An incremental hash that ends in an stm_id; wraps crypto_generichash_state. */
typedef struct {
    unsigned char state[384]; /* crypto_generichash_state, kept opaque and aligned below */
} stm_hasher __attribute__((aligned(64)));

void stm_hasher_init(stm_hasher *h);
void stm_hasher_update(stm_hasher *h, const void *data, size_t len);
void stm_hasher_u32(stm_hasher *h, uint32_t v); /* 4 bytes, big-endian */
void stm_hasher_u64(stm_hasher *h, uint64_t v); /* 8 bytes, big-endian */
/* Hashes a string as a u32 big-endian length and its bytes; NULL as the length
 * 0xffffffff and no bytes, so NULL and "" differ. */
void stm_hasher_str(stm_hasher *h, const char *s);
void stm_hasher_final(stm_hasher *h, stm_id *out);

/* BLAKE2b-256 of one buffer. */
void stm_id_hash(const void *data, size_t len, stm_id *out);

/* Writes 64 lowercase hex digits and a NUL into out. */
void stm_id_to_hex(const stm_id *id, char out[STM_ID_HEX_LEN + 1]);
/* Parses exactly 64 hex digits (either case) and nothing else; false otherwise. */
bool stm_id_from_hex(const char *hex, stm_id *out);
/* The first STM_ID_SHORT_LEN hex digits and a NUL, for logs. */
void stm_id_short(const stm_id *id, char out[STM_ID_SHORT_LEN + 1]);
bool stm_id_equal(const stm_id *a, const stm_id *b);
bool stm_id_is_zero(const stm_id *id);

#endif
