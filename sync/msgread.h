/* msgread.h - a bounded, allocation-free MessagePack reader for untrusted input.
 *
 * stemma encodes with msgpack-c's packer. It does not decode with msgpack-c's C
 * unpacker, because that allocates from the element counts an array or map header
 * declares, before the elements arrive: five bytes from a peer can ask it for 96 GB
 * (msgpack-c issue #1013). This reader walks a buffer in place, hands out pointers
 * into it, and refuses any count larger than the bytes left, so nothing a peer
 * sends can make it allocate. Every call returns false on malformed or truncated
 * input and leaves the reader where it was. */
#ifndef STM_MSGREAD_H
#define STM_MSGREAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MSGREAD_MAX_DEPTH 32 /* arrays and maps nested in each other stm_msgread_skip will walk */

typedef struct {
    const unsigned char *p;   /* next byte */
    const unsigned char *end; /* one past the last */
} msgread_t;

typedef enum {
    MSG_INVALID,
    MSG_NIL,
    MSG_BOOL,
    MSG_INT, /* positive or negative integer */
    MSG_FLOAT,
    MSG_STR,
    MSG_BIN,
    MSG_ARRAY,
    MSG_MAP,
    MSG_EXT,
} msg_type;

void stm_msgread_init(msgread_t *r, const void *data, size_t len);
/* Bytes not read yet. */
size_t stm_msgread_left(const msgread_t *r);
/* The type of the next value, without reading it (MSG_INVALID at the end). */
msg_type stm_msgread_peek(const msgread_t *r);

bool stm_msgread_nil(msgread_t *r);
bool stm_msgread_bool(msgread_t *r, bool *v);
/* An integer that fits in int64 (uint64 above INT64_MAX is refused). */
bool stm_msgread_int(msgread_t *r, int64_t *v);
/* A non-negative integer. */
bool stm_msgread_uint(msgread_t *r, uint64_t *v);
/* A float32 or float64. */
bool stm_msgread_double(msgread_t *r, double *v);
/* A string: *data points into the buffer (not NUL-terminated). */
bool stm_msgread_str(msgread_t *r, const char **data, uint32_t *len);
bool stm_msgread_bin(msgread_t *r, const void **data, uint32_t *len);
/* An array or map header; *count is at most the bytes left (each element takes one
 * at least), so a caller may size an allocation by it. */
bool stm_msgread_array(msgread_t *r, uint32_t *count);
bool stm_msgread_map(msgread_t *r, uint32_t *count);
/* Skips one value of any type holding at most MSGREAD_MAX_DEPTH arrays and maps nested
 * in each other (the value itself counting as one when it is an array or map). */
bool stm_msgread_skip(msgread_t *r);

#endif
