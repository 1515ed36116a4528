/* wire.h - the messages nodes exchange over ZeroMQ (docs/protocol.md, "Mesh messages").
 *
 * Every message is one ZeroMQ frame:
 *
 *   message = "STMW" version:u8 type:u8 body
 *   body    = a MessagePack map (unknown keys are skipped)
 *
 * version is WIRE_VERSION; a node reads messages of its own version and drops (and
 * counts) those of another, which is how a future version tells old peers apart. A
 * message of a type it does not know is ignored, not fatal. Decoding never
 * trusts a length it cannot see bytes for (msgread.h) and checks every list against
 * the limits below before it allocates. */
#ifndef STM_WIRE_H
#define STM_WIRE_H

#include "base/buf.h"
#include "base/error.h"
#include "lineage/lineage.h"
#include "sync/vector.h"

/* Version 2: an operation's key may be an array, a key of several columns
 * (sync/key.h); version 1 peers would drop such batches as malformed. */
#define WIRE_VERSION 2
#define WIRE_HEADER_BYTES 6
#define WIRE_MAX_MESSAGE (64u * 1024u * 1024u) /* ZMQ_MAXMSGSIZE of the inbox and DEALERs */
/* The capability a HELLO lists when its sender reads what comes back on the connections
 * it opens: only then is it answered there (docs/protocol.md, "Sockets and security"). */
#define WIRE_CAP_ROUTE "route.v1"
/* The limits of a HELLO (docs/protocol.md). They bound what decoding and judging one
 * costs: about 130 bytes of memory per version, head or column at most, so WIRE_MAX_ITEMS
 * keeps a HELLO under WIRE_MAX_ITEMS * 130 bytes besides its text (docs/hardening.md,
 * "Size limits", has the figures). Plain numbers: messages quote them. */
#define WIRE_MAX_VERSIONS 100000     /* lineage entries; SCHEMASET_MAX_VERSIONS */
#define WIRE_MAX_FAMILIES 10000      /* tables */
#define WIRE_MAX_COLUMNS 2000        /* columns of one table: SQLite's SQLITE_MAX_COLUMN */
#define WIRE_MAX_ITEMS 500000        /* versions, family heads and columns together */
#define WIRE_MAX_PEERS 1024          /* entries of the peer list */
#define WIRE_MAX_CAPABILITIES 64
#define WIRE_MAX_TEXT 4096           /* endpoints, names, reasons */
#define WIRE_MAX_NAME 64             /* a device's name (CONFIG_MAX_NAME) */
/* The fewest bytes an element can take, to check a declared count against what is left
 * before anything is sized by it. */
#define WIRE_MIN_ID_BYTES 34         /* bin8 header and 32 bytes */
#define WIRE_MIN_COLUMN_BYTES 6      /* [name of one byte, affinity, pk, hidden] */
#define WIRE_MIN_FAMILY_BYTES 39     /* [name of one byte, [one head], nil] */
#define WIRE_MIN_PEER_BYTES 36       /* [id, ""] */

typedef enum {
    WIRE_HELLO = 1,  /* who I am, my lineage, families, vector, peers */
    WIRE_REFUSE = 2, /* I will not sync with you, and why */
    WIRE_OPS = 3,    /* a batch of operations you lack */
    WIRE_ACK = 4,    /* I applied your batch; my vector now */
    WIRE_PING = 5,   /* I am here (heartbeat) */
    WIRE_BYE = 6,    /* I am leaving */
} wire_type;

/* A peer named in a HELLO's peer list. */
typedef struct {
    stm_id id;      /* its node id (its public key) */
    char *endpoint; /* where it listens, owned */
} wire_peer;

/* A HELLO, decoded. Everything is owned by the struct (stm_wire_hello_clear). */
typedef struct {
    stm_id node_id;             /* the sender (its CURVE public key) */
    char *endpoint;             /* where the sender listens */
    char *name;                 /* its device's name for people; NULL when it gave none */
    char *schema_set;           /* its schema set's name */
    lineage_t *lineage;         /* its database's lineage: numbers, ids, family heads and
                                   current columns (no descriptions or checksums) */
    vector_t *vector;           /* what it holds */
    int min_supported_version;  /* it refuses peers older than this (0: none) */
    char **capabilities;        /* words, for later extensions */
    size_t ncapabilities;
    wire_peer *peers;           /* the peers it knows */
    size_t npeers;
    bool reply;                 /* it answers our HELLO: do not answer it again */
} wire_hello;

/* The header of a message: STM_EPROTO when it is too short or the magic is wrong. */
STM_NODISCARD stm_err stm_wire_header(const void *data, size_t len, int *version, int *type,
                                      stm_error *err);

/* Appends a whole message of type with an empty body, for PING and BYE. */
void stm_wire_encode_empty(buf_t *out, wire_type type);

/* Appends a HELLO. name is the device's (at most WIRE_MAX_NAME bytes); lineage is the
 * database's (stm_lineage_prefix of the schema set); reply says it answers the peer's
 * HELLO. */
void stm_wire_encode_hello(buf_t *out, const stm_id *node_id, const char *endpoint,
                           const char *name, const lineage_t *lineage, const vector_t *vector,
                           int min_supported, const wire_peer *peers, size_t npeers, bool reply);
/* Decodes a whole HELLO message (header included) into h (zeroed first). */
STM_NODISCARD stm_err stm_wire_decode_hello(const void *data, size_t len, wire_hello *h,
                                            stm_error *err);
void stm_wire_hello_clear(wire_hello *h);

/* STM_EINPUT when the lineage (a database's, as stm_wire_encode_hello would send it) is
 * beyond the limits above, so that peers would refuse its HELLO as malformed. */
STM_NODISCARD stm_err stm_wire_check_lineage(const lineage_t *l, stm_error *err);

/* A REFUSE: the reason in words (one line). */
void stm_wire_encode_refuse(buf_t *out, const char *reason);
/* *reason is the caller's to free. */
STM_NODISCARD stm_err stm_wire_decode_refuse(const void *data, size_t len, char **reason,
                                             stm_error *err);

/* OPS: batch number `seq` (the sender's count) and an encoded batch (codec.h). */
void stm_wire_encode_ops(buf_t *out, uint64_t seq, const void *batch, size_t batch_len);
/* *batch points into data (lent). */
STM_NODISCARD stm_err stm_wire_decode_ops(const void *data, size_t len, uint64_t *seq,
                                          const void **batch, size_t *batch_len, stm_error *err);

/* ACK: the batch number acknowledged and the receiver's vector after applying it. */
void stm_wire_encode_ack(buf_t *out, uint64_t seq, const vector_t *vector);
/* *vector is the caller's. */
STM_NODISCARD stm_err stm_wire_decode_ack(const void *data, size_t len, uint64_t *seq,
                                          vector_t **vector, stm_error *err);

#endif
