/* codecutil.h - helpers the tests of sync/msgread, sync/op, sync/codec and sync/vector
 * share: seeded random numbers, exact-length copies, operations and values built in one
 * call, batch comparisons and round trips, and MessagePack crafted field by field.
 *
 * Include it after the system headers: the crafting macros (END, U, I, NIL, STR, ...)
 * are short on purpose, so that a case table reads as the bytes it packs. */
#ifndef STM_CODECUTIL_H
#define STM_CODECUTIL_H

#include "base/buf.h"
#include "base/id.h"
#include "sync/op.h"

#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

/* A seeded xorshift generator: the same "random" inputs on every run. */
void cu_seed(uint64_t seed);
uint64_t cu_rand(void);

/* A heap copy of len bytes of data in a block of exactly len bytes (the caller frees
 * it), so that a read one byte too far shows up under valgrind and ASan. */
unsigned char *cu_exact(const void *data, size_t len);

/* Points pk at b: what it packs is appended to b. */
void cu_packer(msgpack_packer *pk, buf_t *b);

/* An id of n in its first four bytes (and 0xa5 in its last). */
stm_id cu_id(unsigned n);

/* Values; text and blob bytes are lent. */
op_value cu_null(void);
op_value cu_int(int64_t i);
op_value cu_real(double r);
op_value cu_text(const void *p, size_t len);
op_value cu_blob(const void *p, size_t len);

/* A cell write (column given) or a row delete (column NULL) by origin cu_id(origin),
 * its clock made from seq; table, column and the values are lent. */
op_t cu_op(unsigned origin, uint64_t seq, const char *table, op_value pk, const char *column,
           char affinity, op_value value);

/* Fail the test unless the two are the same, field by field (batches: their
 * operations and their stand-ins, in order). */
void cu_assert_op_equal(const op_t *a, const op_t *b);
void cu_assert_withheld_equal(const op_withheld *a, const op_withheld *b);
void cu_assert_batches_equal(const opbatch_t *a, const opbatch_t *b);

/* Encodes b whole, decodes it into a new batch and checks they are the same; returns
 * the encoding's length. */
size_t cu_round_trip(const opbatch_t *b);

/* A new batch of varied operations (every value type, two tables, three origins, a
 * row delete last), for the tests of what decoding refuses; the caller destroys it. */
opbatch_t *cu_sample_batch(void);
/* Appends two stand-ins to b (op.h): one of an origin and table its operations have,
 * one of another origin with a key of two columns. */
void cu_add_sample_withheld(opbatch_t *b);

/* ---- MessagePack crafted by hand: each list and each op field as a tagged value ---- */

typedef enum {
    F_END,
    F_UINT,
    F_INT,
    F_NIL,
    F_TRUE,
    F_REAL,
    F_FLOAT,
    F_STR,
    F_BIN,
    F_MAP,
    F_ARRAY,
    F_EXT,
    F_RAW, /* bytes as they are */
} cu_kind;

typedef struct {
    cu_kind kind;
    uint64_t u;    /* F_UINT, F_INT (as int64) */
    double d;      /* F_REAL, F_FLOAT */
    const char *s; /* F_STR, F_BIN, F_RAW */
    size_t n;      /* s's length */
} cu_field;

#define END                                                                                        \
    {                                                                                              \
        F_END, 0, 0, NULL, 0                                                                       \
    }
#define U(x)                                                                                       \
    {                                                                                              \
        F_UINT, (uint64_t)(x), 0, NULL, 0                                                          \
    }
#define I(x)                                                                                       \
    {                                                                                              \
        F_INT, (uint64_t)(int64_t)(x), 0, NULL, 0                                                  \
    }
#define NIL                                                                                        \
    {                                                                                              \
        F_NIL, 0, 0, NULL, 0                                                                       \
    }
#define TRUE_                                                                                      \
    {                                                                                              \
        F_TRUE, 0, 0, NULL, 0                                                                      \
    }
#define REAL(x)                                                                                    \
    {                                                                                              \
        F_REAL, 0, (x), NULL, 0                                                                    \
    }
#define FLOAT(x)                                                                                   \
    {                                                                                              \
        F_FLOAT, 0, (x), NULL, 0                                                                   \
    }
#define STR(x)                                                                                     \
    {                                                                                              \
        F_STR, 0, 0, (x), sizeof(x) - 1                                                            \
    }
#define BIN(x)                                                                                     \
    {                                                                                              \
        F_BIN, 0, 0, (x), sizeof(x) - 1                                                            \
    }
#define MAP                                                                                        \
    {                                                                                              \
        F_MAP, 0, 0, NULL, 0                                                                       \
    }
#define ARRAY                                                                                      \
    {                                                                                              \
        F_ARRAY, 0, 0, NULL, 0                                                                     \
    }
#define EXT                                                                                        \
    {                                                                                              \
        F_EXT, 0, 0, NULL, 0                                                                       \
    }
#define RAW(x)                                                                                     \
    {                                                                                              \
        F_RAW, 0, 0, (x), sizeof(x) - 1                                                            \
    }

/* Two 32-byte ids, as bin bodies. */
#define ID_A "0123456789abcdef0123456789abcdef"
#define ID_B "fedcba9876543210fedcba9876543210"

/* Packs one field (F_END packs nothing; F_MAP, F_ARRAY and F_EXT pack a small one). */
void cu_pack_field(msgpack_packer *pk, const cu_field *f);
/* Packs the fields up to F_END as one array. */
void cu_pack_array(msgpack_packer *pk, const cu_field *f);

#endif
