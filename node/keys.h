/* keys.h - the node's CURVE key pair, and CURVE public keys as people write them.
 *
 * A key is 32 bytes (a Curve25519 key, as ZeroMQ's CURVE mechanism uses). It is read
 * in either of two spellings: Z85 (40 characters, ZeroMQ's encoding) or hex (64
 * digits, either case). stemma always *shows* a key in Z85 — in node.toml, in
 * known_peers, in reports and on the command line — so that a key copied from any of
 * them can be pasted into any other.
 *
 * A node's pair lives in its directory:
 *
 *   NODE_DIR/node.key   the secret key, Z85, one line; mode 0600 (refused when group
 *                       or others may read it, as ssh refuses a private key)
 *   NODE_DIR/node.pub   the public key, Z85, one line; mode 0644
 *
 * In memory the secret is kept in sodium_malloc'd memory (guard pages, never swapped,
 * read-only once loaded) and wiped when the pair is destroyed. Only node/ includes
 * zmq.h; this module uses it for Z85 and the CURVE key functions. */
#ifndef STM_KEYS_H
#define STM_KEYS_H

#include "base/error.h"
#include "base/id.h"

#include <stdbool.h>

#define KEYS_BYTES 32   /* a CURVE key; a public key is an stm_id (id.h), a node's id */
#define KEYS_Z85_LEN 40 /* characters in its Z85 form */
#define KEYS_HEX_LEN 64 /* characters in its hex form */

#define KEYS_SECRET_FILE "node.key"
#define KEYS_PUBLIC_FILE "node.pub"

/* A node's key pair. Opaque; the whole object lives in sodium_malloc'd memory. */
typedef struct node_keys node_keys;

/* Parses a public key written in Z85 (exactly 40 characters) or hex (exactly 64 digits)
 * and nothing else (no spaces) into out; false, out unspecified, otherwise. */
bool stm_keys_parse(const char *text, stm_id *out);
/* Writes key's 40 Z85 characters and a NUL into out (the caller's buffer). */
void stm_keys_to_z85(const stm_id *key, char out[KEYS_Z85_LEN + 1]);

/* Makes a new CURVE key pair and writes DIR/node.key (mode 0600) and DIR/node.pub
 * (0644), each written whole and fsynced beside its name, then moved into place.
 * Never replaces an existing secret key: STM_EINPUT naming DIR/node.key when one is
 * there. STM_ESYS when the directory cannot be written, or when libzmq lacks CURVE. */
STM_NODISCARD stm_err stm_keys_generate(const char *dir, stm_error *err);

/* Reads and checks DIR's key pair; *out is the caller's (stm_keys_destroy). STM_EINPUT
 * with one line naming the file when a file is missing, the secret key file may be
 * read by group or others (the message says 'chmod 600 FILE'), a file does not hold
 * exactly one key (one trailing newline allowed), or the public key is not the secret
 * key's; STM_ESYS when a file cannot be read. */
STM_NODISCARD stm_err stm_keys_load(const char *dir, node_keys **out, stm_error *err);
/* Wipes the secret and frees the pair; sets *self_p NULL; safe on NULL and twice. */
void stm_keys_destroy(node_keys **self_p);

/* The public key (the node's id), lent: valid until stm_keys_destroy. */
const stm_id *stm_keys_public(const node_keys *self);
/* The public key in Z85 (40 characters, NUL-terminated), lent. */
const char *stm_keys_public_z85(const node_keys *self);
/* The secret key's 32 bytes, lent (read-only memory): valid until stm_keys_destroy. */
const unsigned char *stm_keys_secret(const node_keys *self);
/* The secret key in Z85, lent, for zmq_setsockopt(ZMQ_CURVE_SECRETKEY, ..., 41). */
const char *stm_keys_secret_z85(const node_keys *self);

#endif
