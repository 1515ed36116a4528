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
#include "sync/op.h"
#include "sync/vector.h"
#include "wire_lens.h"

/* Version 2: an operation's key may be an array, a key of several columns
 * (sync/key.h); version 1 peers would drop such batches as malformed. */
#define WIRE_VERSION 2
#define WIRE_HEADER_BYTES 6
#define WIRE_MAX_MESSAGE (64u * 1024u * 1024u) /* ZMQ_MAXMSGSIZE of the inbox and DEALERs */
/* The capability a HELLO lists when its sender reads what comes back on the connections
 * it opens: only then is it answered there (docs/protocol.md, "Sockets and security"). */
#define WIRE_CAP_ROUTE "route.v1"
/* The capability a HELLO lists when its sender puts together an OPS sent in parts and
 * answers each part with RECEIVED: only then is it sent batches over WIRE_PART_BYTES in
 * parts, and row changes up to WIRE_MAX_BATCH; a peer without it is sent none over
 * WIRE_MAX_MESSAGE (less WIRE_OPS_OVERHEAD), the rest withheld (docs/protocol.md, "OPS"). */
#define WIRE_CAP_PARTS "parts.v1"
/* The capability a HELLO lists when its sender takes vectors as deltas over a digest and
 * answers VECTOR messages: only then is it sent them (docs/protocol.md, "Vector deltas");
 * a peer without it is sent whole vectors, of at most VECTOR_MAX_ENTRIES. */
#define WIRE_CAP_VDELTA "vdelta.v1"
/* The capability a HELLO lists when its sender keeps a bounded set of peers (node/mesh.h)
 * and says so in HELLOs: "listed" when the receiver is in its node.toml, "full" when it
 * does not keep the receiver. A peer without it is let in as if it listed this node
 * (docs/protocol.md, "A sparse mesh"). */
#define WIRE_CAP_MESH "mesh.v1"
/* A batch larger than this goes in parts, each a slice of at most this many bytes: one
 * part must arrive within a peer's timeout, so a link carrying 1 MiB per peer_timeout_ms
 * (200 kB/s at 5 s) delivers a batch of any size. */
#define WIRE_PART_BYTES (1024u * 1024u)
/* The largest batch put together from parts: the largest a bundle frame holds. */
#define WIRE_MAX_BATCH OP_MAX_CHANGE_BYTES
/* The most parts of one batch: 4 KiB a part on average at WIRE_MAX_BATCH. */
#define WIRE_MAX_PARTS 65536
/* The most an OPS takes besides its batch (or slice): header, keys, numbers. */
#define WIRE_OPS_OVERHEAD 128
/* The largest value (or key) a peer without WIRE_CAP_PARTS decodes: its stemma refused
 * a batch holding a larger one as malformed. */
#define WIRE_LEGACY_MAX_VALUE (16u * 1024u * 1024u)
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
    WIRE_RECEIVED = 7, /* I have this much of your batch sent in parts */
    WIRE_VECTOR = 8,   /* my vector, or a part of it; or: send me yours whole */
    WIRE_PRUNE = 9,    /* another sends me first what you send: tell me your vector instead */
    WIRE_GRAFT = 10,   /* my other path stopped: send me what I lack again; my vector */
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
    vector_msg vector;          /* what it holds, whole or as a delta (sync/vector.h) */
    bool has_know;              /* it holds our vector, of digest know ("vknow") */
    vector_digest know;
    int min_supported_version;  /* it refuses peers older than this (0: none) */
    char **capabilities;        /* words, for later extensions */
    size_t ncapabilities;
    wire_peer *peers;           /* the peers it knows */
    size_t npeers;
    bool reply;                 /* it answers our HELLO: do not answer it again */
    bool listed;                /* we are in its node.toml's [peers] (WIRE_CAP_MESH) */
    bool full;                  /* it does not keep us: keeps as many peers as it may */
    wire_lenses lenses;         /* what its migrations did to the data (none: an older
                                   stemma, or no schema set) */
} wire_hello;

/* The header of a message: STM_EPROTO when it is too short or the magic is wrong. */
STM_NODISCARD stm_err stm_wire_header(const void *data, size_t len, int *version, int *type,
                                      stm_error *err);

/* Appends a whole message of type with an empty body, for PING and BYE. */
void stm_wire_encode_empty(buf_t *out, wire_type type);

/* What a HELLO says besides who sends it. */
typedef struct {
    const char *endpoint;       /* where to dial the sender ("" : nowhere) */
    const char *name;           /* the device's name (at most WIRE_MAX_NAME bytes) */
    const lineage_t *lineage;   /* the database's (stm_lineage_prefix of the schema set) */
    const vector_out *vector;   /* its vector, or the first part of it */
    const vector_digest *know;  /* the digest of the receiver's vector as the sender
                                   holds it; NULL: it holds none */
    int min_supported;
    const wire_peer *peers;
    size_t npeers;
    bool reply;                 /* it answers the peer's HELLO */
    bool listed;                /* the peer is in the sender's node.toml */
    bool full;                  /* the sender does not keep the peer (mesh.h) */
    bool deltas;                /* it lists WIRE_CAP_VDELTA */
    const lens_set_t *lenses;   /* the schema set's (NULL: none): what the lineage's
                                   migrations did to the data (wire_lens.h) */
} wire_hello_out;
/* Appends a HELLO. */
void stm_wire_encode_hello(buf_t *out, const stm_id *node_id, const wire_hello_out *h);
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

/* An OPS, decoded: a whole batch, or one part of a batch sent in parts. */
typedef struct {
    uint64_t seq;      /* the batch's number (the sender's count) */
    const void *batch; /* the encoded batch (codec.h), or this part's slice of it; lent
                          by the message */
    size_t batch_len;
    uint64_t parts;    /* 0: a whole batch; else how many parts it was cut into (2 to
                          WIRE_MAX_PARTS) */
    uint64_t part;     /* this part's number, 0 to parts - 1 */
    uint64_t bytes;    /* the whole batch's size (at most WIRE_MAX_BATCH) */
} wire_ops;

/* OPS: batch number `seq` and an encoded batch (codec.h), whole. */
void stm_wire_encode_ops(buf_t *out, uint64_t seq, const void *batch, size_t batch_len);
/* One part of batch seq, of `parts`, of a batch of `bytes` bytes in all: slice is its
 * slice, part_len bytes. */
void stm_wire_encode_ops_part(buf_t *out, uint64_t seq, uint64_t part, uint64_t parts,
                              uint64_t bytes, const void *slice, size_t part_len);
/* Decodes a whole OPS message into *m (its batch lent by data). STM_EPROTO when it
 * breaks a rule: part, parts and bytes come together or not at all; a part number
 * below parts; 2 to WIRE_MAX_PARTS parts; a slice of 1 to bytes bytes; bytes at most
 * WIRE_MAX_BATCH and at least parts. */
STM_NODISCARD stm_err stm_wire_decode_ops(const void *data, size_t len, wire_ops *m,
                                          stm_error *err);

/* RECEIVED: the receiver has the first `bytes` bytes of batch seq, sent in parts. */
void stm_wire_encode_received(buf_t *out, uint64_t seq, uint64_t bytes);
STM_NODISCARD stm_err stm_wire_decode_received(const void *data, size_t len, uint64_t *seq,
                                               uint64_t *bytes, stm_error *err);

/* ACK: the batch number acknowledged and the receiver's vector after applying it (or
 * its first part). */
void stm_wire_encode_ack(buf_t *out, uint64_t seq, const vector_out *vector);
/* *vector is the caller's (stm_vector_msg_clear), zeroed first. */
STM_NODISCARD stm_err stm_wire_decode_ack(const void *data, size_t len, uint64_t *seq,
                                          vector_msg *vector, stm_error *err);

/* GRAFT (to a peer listing WIRE_CAP_MESH only): the receiver is to send the sender
 * operations again, from the sender's vector (or its first part), which it carries. */
void stm_wire_encode_graft(buf_t *out, const vector_out *vector);
/* *vector is the caller's (stm_vector_msg_clear), zeroed first. */
STM_NODISCARD stm_err stm_wire_decode_graft(const void *data, size_t len, vector_msg *vector,
                                            stm_error *err);

/* VECTOR (to a peer listing WIRE_CAP_VDELTA only): a part of the sender's vector (the
 * parts after the first of a long one, or a whole one it was asked for), or, with need,
 * a request for the receiver's whole vector (vector NULL). */
void stm_wire_encode_vector(buf_t *out, const vector_out *vector, bool need);
/* *vector is the caller's (stm_vector_msg_clear), zeroed first; *has_vector false when
 * it only asks (*need). */
STM_NODISCARD stm_err stm_wire_decode_vector(const void *data, size_t len, vector_msg *vector,
                                             bool *has_vector, bool *need, stm_error *err);

#endif
