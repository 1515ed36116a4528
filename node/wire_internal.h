/* wire_internal.h - private to wire.c and wire_hello.c: the framing and the readers and
 * writers of fields every message uses, the vector part among them (docs/protocol.md,
 * "Vector deltas"). */
#ifndef STM_WIRE_INTERNAL_H
#define STM_WIRE_INTERNAL_H

#include "wire.h"
#include "sync/msgread.h"

#include <msgpack.h>

/* A limit in a message: "10000" from WIRE_MAX_FAMILIES. */
#define S_STR(x) S_STR2(x)
#define S_STR2(x) #x

/* ---- writing ---- */

/* The magic, version and type, then a packer appending to out. */
void stm_wire_put_header(buf_t *out, wire_type type, msgpack_packer *pk);
void stm_wire_put_key(msgpack_packer *pk, const char *key);
void stm_wire_put_str(msgpack_packer *pk, const char *s);
void stm_wire_put_id(msgpack_packer *pk, const stm_id *id);
/* How many map keys stm_wire_put_vector writes for v. */
uint32_t stm_wire_vector_keys(const vector_out *v);
/* The vector part's keys: "vector", then "vbase", "vdigest", "vmore", "vpart" as v has
 * them. */
void stm_wire_put_vector(msgpack_packer *pk, buf_t *out, const vector_out *v);

/* ---- reading ---- */

/* STM_EPROTO, "malformed message: what". */
STM_NODISCARD stm_err stm_wire_bad(stm_error *err, const char *what);
/* Opens the body of a message of type: the map and its key count. */
STM_NODISCARD stm_err stm_wire_body(const void *data, size_t len, wire_type type, msgread_t *r,
                                    uint32_t *nkeys, stm_error *err);
/* Reads a map key into key (size bytes): 1 for a key to look at, 0 for a field skipped
 * (a key longer than any field's, its value skipped), -1 for malformed input. */
int stm_wire_next_key(msgread_t *r, char *key, size_t size);
/* True when s holds a control character (a peer's text goes into logs and terminals). */
bool stm_wire_has_control(const char *s, uint32_t n);
/* A text of at most WIRE_MAX_TEXT bytes without control characters, into *out (the
 * caller's, freed first). */
bool stm_wire_read_text(msgread_t *r, char **out);
bool stm_wire_read_id(msgread_t *r, stm_id *id);
/* An array header announcing at most max elements, each of at least min_bytes of what
 * is left (checked before anything is sized by it); r is left as it was otherwise. */
bool stm_wire_array(msgread_t *r, uint32_t max, size_t min_bytes, uint32_t *n);
/* The value of key when it is one of the vector part's ("vector", "vbase", "vdigest",
 * "vmore", "vpart"), into m: 1 when read, 0 when key is another, -1 when malformed
 * (err says why). A "vector" longer than VECTOR_MAX_ENTRIES is cut (m->cut). */
int stm_wire_read_vector_key(const char *key, msgread_t *r, vector_msg *m, bool *have_vector,
                             stm_error *err);
/* A digest: bin of VECTOR_DIGEST_BYTES. */
bool stm_wire_read_digest(msgread_t *r, vector_digest *d);

#endif
