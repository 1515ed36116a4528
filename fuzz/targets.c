/* targets.c - the body of each fuzz target (targets.h).
 *
 * What is checked beyond "no crash, no leak, no undefined behaviour":
 *   toml    a document that parses emits a document that parses to an equal tree, and
 *           emitting that gives the same bytes; an exported lineage that reads back
 *           exports, reads and exports again to the same bytes (export.h promises it)
 *   wire    a message that decodes encodes to one that decodes, and that encodes to the
 *           same bytes again; an OPS batch goes through the codec checks below, an OPS
 *           part through a receiver's assembly (one part never makes a batch whole)
 *   codec   a refused batch leaves the output batch as it was; an accepted one encodes
 *           and decodes to the same operations and stand-ins, field by field; the same
 *           for vectors
 *   bundle  a bundle that reads hands out as many operations as it says it holds (each
 *           input is read twice: as it is, and with the digest at its end made right)
 *   beacon  a datagram that decodes encodes to the same 40 bytes but for flag bits this
 *           version does not know, and decodes again to the same beacon; a refused one
 *           leaves the output as it was
 *   judge   stm_relation_compare(a, b) mirrors stm_relation_compare(b, a); a lineage is `same`
 *           as itself with every column shared; a verdict always gives a reason */
#define _GNU_SOURCE /* memfd_create */
#include "fuzz/targets.h"
#include "base/buf.h"
#include "lineage/export.h"
#include "base/mem.h"
#include "lineage/relation.h"
#include "lineage/schemaset.h"
#include "toml/toml.h"
#include "node/config.h"
#include "node/beacon.h"
#include "node/judge.h"
#include "node/parts.h"
#include "node/wire.h"
#include "sync/bundle.h"
#include "sync/codec.h"
#include "sync/vector.h"

#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* ---- helpers ---- */

/* Where sums over every byte handed out go, so that the reads are not optimised away. */
static volatile size_t s_sink;

/* A broken promise: a bug, not bad input. */
static void s_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void s_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("fuzz: BUG: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    abort();
}

/* A whole message: a valid header of the given type, then body. Allocated to exactly
 * its length, so a decoder reading past the end shows under ASan. */
static unsigned char *s_message(wire_type type, const uint8_t *body, size_t size, size_t *len)
{
    *len = WIRE_HEADER_BYTES + size;
    unsigned char *m = stm_malloc(*len);
    memcpy(m, "STMW", 4);
    m[4] = WIRE_VERSION;
    m[5] = (unsigned char)type;
    if (size)
        memcpy(m + WIRE_HEADER_BYTES, body, size);
    return m;
}

static void s_same_bytes(const char *what, const buf_t *a, const buf_t *b)
{
    if (a->len != b->len || (a->len && memcmp(a->data, b->data, a->len) != 0))
        s_fail("%s: encoding the decoded value again gives other bytes (%zu, then %zu)", what,
               a->len, b->len);
}

/* Reads every byte a value lends, so a dangling or short pointer shows under ASan. */
static size_t s_touch_value(const op_value *v)
{
    size_t sum = (size_t)v->type;
    if (v->type == VALUE_TEXT || v->type == VALUE_BLOB)
        for (size_t i = 0; i < v->len; i++)
            sum += ((const unsigned char *)v->bytes)[i];
    return sum;
}

static size_t s_touch_op(const op_t *op)
{
    size_t sum = op->origin.bytes[0] + op->version_id.bytes[31] + (size_t)op->seq +
                 (size_t)op->hlc + strlen(op->table) + (size_t)op->affinity;
    if (op->column)
        sum += strlen(op->column);
    return sum + s_touch_value(&op->pk) + s_touch_value(&op->value);
}

/* The first field in which two operations differ, NULL when none does. */
static const char *s_op_diff(const op_t *a, const op_t *b)
{
    if (!stm_id_equal(&a->origin, &b->origin))
        return "origin";
    if (a->seq != b->seq)
        return "seq";
    if (a->hlc != b->hlc)
        return "hlc";
    if (!stm_id_equal(&a->version_id, &b->version_id))
        return "version_id";
    if (strcmp(a->table, b->table) != 0)
        return "table";
    if (!stm_op_value_equal(&a->pk, &b->pk))
        return "pk";
    if (!a->column != !b->column || (a->column && strcmp(a->column, b->column) != 0))
        return "column";
    if (a->affinity != b->affinity)
        return "affinity";
    if (!stm_op_value_equal(&a->value, &b->value))
        return "value";
    return NULL;
}

/* The first field in which two stand-ins differ, NULL when none does. */
static const char *s_withheld_diff(const op_withheld *a, const op_withheld *b)
{
    if (!stm_id_equal(&a->origin, &b->origin))
        return "origin";
    if (a->seq != b->seq || a->n != b->n)
        return "seq or n";
    if (a->hlc != b->hlc)
        return "hlc";
    if (!stm_id_equal(&a->version_id, &b->version_id))
        return "version_id";
    if (strcmp(a->table, b->table) != 0)
        return "table";
    if (!stm_op_value_equal(&a->pk, &b->pk))
        return "pk";
    if (a->bytes != b->bytes)
        return "bytes";
    return NULL;
}

static bool s_vector_equal(const vector_t *a, const vector_t *b)
{
    if (stm_vector_count(a) != stm_vector_count(b))
        return false;
    for (size_t i = 0; i < stm_vector_count(a); i++) {
        const vector_entry *x = stm_vector_at(a, i), *y = stm_vector_at(b, i);
        if (!stm_id_equal(&x->origin, &y->origin) || x->seq != y->seq)
            return false;
    }
    return true;
}

/* ---- toml ---- */

static void s_toml_round_trip(const toml_value *root)
{
    char *once = stm_toml_emit(root, NULL);
    toml_value *again = NULL;
    stm_error err = {0};
    if (stm_toml_parse(once, strlen(once), "emitted", &again, &err) != STM_OK)
        s_fail("toml: the emitted document does not parse (%s):\n%s", err.msg, once);
    if (!stm_toml_equal(root, again))
        s_fail("toml: the emitted document parses to another tree:\n%s", once);
    char *twice = stm_toml_emit(again, NULL);
    if (strcmp(once, twice) != 0)
        s_fail("toml: emitting the tree read back gives other bytes:\n%s\n----\n%s", once, twice);
    free(twice);
    stm_toml_destroy(&again);
    free(once);
}

static void s_export_round_trip(const lineage_t *l)
{
    char *once = stm_export_lineage(l);
    lineage_t *again = NULL;
    stm_error err = {0};
    if (stm_export_parse(once, strlen(once), "exported", &again, &err) != STM_OK)
        s_fail("export: an exported lineage does not read back (%s):\n%s", err.msg, once);
    char *twice = stm_export_lineage(again);
    if (strcmp(once, twice) != 0)
        s_fail("export: export, read, export gives other bytes:\n%s\n----\n%s", once, twice);
    free(twice);
    stm_lineage_destroy(&again);
    free(once);
}

void fuzz_toml(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    stm_error err = {0};
    toml_value *root = NULL;
    if (stm_toml_parse(text, size, "fuzz", &root, &err) == STM_OK) {
        s_toml_round_trip(root);
        stm_toml_destroy(&root);
    }
    lineage_t *l = NULL;
    if (stm_export_parse(text, size, "fuzz", &l, &err) == STM_OK) {
        s_export_round_trip(l);
        stm_lineage_destroy(&l);
    }
}

/* ---- codec ---- */

/* What a refused decode must leave in its output batch untouched. */
static void s_sentinel(op_t *op)
{
    static const char text[] = "sentinel";
    memset(op, 0, sizeof *op);
    op->origin.bytes[0] = 0x5e;
    op->seq = 1;
    op->hlc = 2;
    op->version_id.bytes[0] = 0x7e;
    op->table = "sentinel";
    op->pk.type = VALUE_INTEGER;
    op->pk.i = 7;
    op->column = "c";
    op->affinity = 'T';
    op->value.type = VALUE_TEXT;
    op->value.bytes = text;
    op->value.len = sizeof text - 1;
}

static void s_codec_batch(const void *data, size_t size)
{
    op_t sentinel;
    s_sentinel(&sentinel);
    opbatch_t *b = stm_opbatch_new();
    stm_opbatch_add(b, &sentinel);
    stm_error err = {0};
    if (stm_codec_decode_ops(data, size, b, &err) != STM_OK) {
        if (stm_opbatch_count(b) != 1 || s_op_diff(stm_opbatch_at(b, 0), &sentinel) ||
            stm_opbatch_withheld_count(b) != 0)
            s_fail("codec: a refused batch (%s) changed the batch it was decoded into", err.msg);
        stm_opbatch_destroy(&b);
        return;
    }
    size_t n = stm_opbatch_count(b) - 1, sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += s_touch_op(stm_opbatch_at(b, i + 1));
    buf_t once = BUF_INIT, twice = BUF_INIT;
    stm_codec_encode_ops(b, 1, n, &once);
    opbatch_t *again = stm_opbatch_new();
    if (stm_codec_decode_ops(once.data, once.len, again, &err) != STM_OK)
        s_fail("codec: a re-encoded batch of %zu operations does not decode: %s", n, err.msg);
    if (stm_opbatch_count(again) != n)
        s_fail("codec: %zu operations re-encoded decode as %zu", n, stm_opbatch_count(again));
    for (size_t i = 0; i < n; i++) {
        const char *field = s_op_diff(stm_opbatch_at(b, i + 1), stm_opbatch_at(again, i));
        if (field)
            s_fail("codec: operation %zu differs in its %s after encoding and decoding", i, field);
    }
    /* Stand-ins (sync/op.h) go with any range of the operations. */
    size_t nw = stm_opbatch_withheld_count(b);
    if (stm_opbatch_withheld_count(again) != nw)
        s_fail("codec: %zu stand-ins re-encoded decode as %zu", nw,
               stm_opbatch_withheld_count(again));
    for (size_t i = 0; i < nw; i++) {
        const op_withheld *w = stm_opbatch_withheld_at(b, i);
        const char *field = s_withheld_diff(w, stm_opbatch_withheld_at(again, i));
        if (field)
            s_fail("codec: stand-in %zu differs in its %s after encoding and decoding", i, field);
        if (w->n == 0 || w->seq == 0 || w->seq + w->n - 1 > OP_MAX_SEQ || w->here)
            s_fail("codec: a stand-in decoded outside its limits");
        sum += w->n + s_touch_value(&w->pk) + strlen(w->table);
    }
    stm_codec_encode_ops(again, 0, n, &twice);
    s_same_bytes("codec", &once, &twice);
    stm_buf_free(&once);
    stm_buf_free(&twice);
    stm_opbatch_destroy(&again);
    stm_opbatch_destroy(&b);
    s_sink += sum;
}

/* A decoded vector encodes and decodes to itself. */
static void s_vector_round_trip(const char *what, const vector_t *v)
{
    buf_t once = BUF_INIT, twice = BUF_INIT;
    stm_vector_encode(v, &once);
    vector_t *again = NULL;
    stm_error err = {0};
    if (stm_vector_decode(once.data, once.len, &again, &err) != STM_OK)
        s_fail("%s: a re-encoded vector does not decode: %s", what, err.msg);
    if (!s_vector_equal(v, again))
        s_fail("%s: a vector differs after encoding and decoding", what);
    stm_vector_encode(again, &twice);
    s_same_bytes(what, &once, &twice);
    stm_vector_destroy(&again);
    stm_buf_free(&once);
    stm_buf_free(&twice);
}

void fuzz_codec(const uint8_t *data, size_t size)
{
    s_codec_batch(data, size);
    vector_t *v = NULL;
    stm_error err = {0};
    if (stm_vector_decode(data, size, &v, &err) == STM_OK) {
        s_vector_round_trip("vector", v);
        stm_vector_destroy(&v);
    }
}


/* ---- wire ---- */

static bool s_lists(const wire_hello *h, const char *capability)
{
    for (size_t i = 0; i < h->ncapabilities; i++)
        if (strcmp(h->capabilities[i], capability) == 0)
            return true;
    return false;
}

static void s_hello_encode(const wire_hello *h, buf_t *out)
{
    vector_out vo = {.entries = BUF_INIT};
    stm_vector_out_of_msg(&vo, &h->vector);
    wire_hello_out o = {.endpoint = h->endpoint,
                        .name = h->name ? h->name : "",
                        .lineage = h->lineage,
                        .vector = &vo,
                        .know = h->has_know ? &h->know : NULL,
                        .min_supported = h->min_supported_version,
                        .peers = h->peers,
                        .npeers = h->npeers,
                        .reply = h->reply,
                        .deltas = s_lists(h, WIRE_CAP_VDELTA)};
    stm_wire_encode_hello(out, &h->node_id, &o);
    stm_buf_free(&vo.entries);
}

static void s_hello_round_trip(const wire_hello *h)
{
    buf_t once = BUF_INIT, twice = BUF_INIT;
    s_hello_encode(h, &once);
    wire_hello again;
    stm_error err = {0};
    if (stm_wire_decode_hello(once.data, once.len, &again, &err) != STM_OK)
        s_fail("wire: a re-encoded HELLO does not decode: %s", err.msg);
    s_hello_encode(&again, &twice);
    s_same_bytes("wire HELLO", &once, &twice);
    stm_wire_hello_clear(&again);
    stm_buf_free(&once);
    stm_buf_free(&twice);
}

static void s_wire_hello(const unsigned char *m, size_t len)
{
    wire_hello h;
    stm_error err = {0};
    if (stm_wire_decode_hello(m, len, &h, &err) == STM_OK) {
        s_hello_round_trip(&h);
        stm_wire_hello_clear(&h);
    }
}

static void s_wire_refuse(const unsigned char *m, size_t len)
{
    char *reason = NULL;
    stm_error err = {0};
    if (stm_wire_decode_refuse(m, len, &reason, &err) != STM_OK)
        return;
    buf_t once = BUF_INIT;
    stm_wire_encode_refuse(&once, reason);
    char *again = NULL;
    if (stm_wire_decode_refuse(once.data, once.len, &again, &err) != STM_OK)
        s_fail("wire: a re-encoded REFUSE does not decode: %s", err.msg);
    if (strcmp(reason, again) != 0)
        s_fail("wire: a REFUSE's reason differs after encoding and decoding");
    free(again);
    free(reason);
    stm_buf_free(&once);
}

static bool s_ops_equal(const wire_ops *a, const wire_ops *b)
{
    return a->seq == b->seq && a->batch_len == b->batch_len && a->part == b->part &&
           a->parts == b->parts && a->bytes == b->bytes &&
           (!a->batch_len || memcmp(a->batch, b->batch, a->batch_len) == 0);
}

static void s_wire_ops(const unsigned char *m, size_t len)
{
    wire_ops ops, again;
    stm_error err = {0};
    if (stm_wire_decode_ops(m, len, &ops, &err) != STM_OK)
        return;
    buf_t once = BUF_INIT;
    if (ops.parts)
        stm_wire_encode_ops_part(&once, ops.seq, ops.part, ops.parts, ops.bytes, ops.batch,
                                 ops.batch_len);
    else
        stm_wire_encode_ops(&once, ops.seq, ops.batch, ops.batch_len);
    if (stm_wire_decode_ops(once.data, once.len, &again, &err) != STM_OK)
        s_fail("wire: a re-encoded OPS does not decode: %s", err.msg);
    if (!s_ops_equal(&ops, &again))
        s_fail("wire: an OPS differs after encoding and decoding");
    stm_buf_free(&once);
    if (!ops.parts) {
        /* What the node does next with it. */
        s_codec_batch(ops.batch, ops.batch_len);
        return;
    }
    /* A part goes into the sender's assembly (node/parts.h): part 0 starts one and
     * waits for the rest; any other, with none started, is dropped. Then it again: the
     * same part twice is out of order. Announced sizes are allocated, not touched: only
     * those a fuzzer can afford. */
    if (ops.bytes > (16u << 20))
        return;
    parts_t *a = stm_parts_new();
    uint64_t dropped = 0;
    const char *why = NULL;
    parts_result r = stm_parts_add(a, &ops, &dropped, &why);
    if (ops.part == 0 ? r != PARTS_MORE || dropped != 0 || stm_parts_received(a) != ops.batch_len
                      : r != PARTS_DROPPED || dropped != 1 || !why)
        s_fail("wire: part %llu of %llu taken wrongly into an empty assembly",
               (unsigned long long)ops.part, (unsigned long long)ops.parts);
    r = stm_parts_add(a, &ops, &dropped, &why);
    if (ops.part == 0 ? r != PARTS_MORE || dropped != 1 : r != PARTS_DROPPED || dropped != 1)
        s_fail("wire: a part taken twice");
    size_t whole = 0;
    if (stm_parts_batch(a, &whole) || whole)
        s_fail("wire: one part made a whole batch");
    stm_parts_destroy(&a);
}

static void s_wire_received(const unsigned char *m, size_t len)
{
    uint64_t seq = 0, bytes = 0, seq2 = 0, bytes2 = 0;
    stm_error err = {0};
    if (stm_wire_decode_received(m, len, &seq, &bytes, &err) != STM_OK)
        return;
    buf_t once = BUF_INIT;
    stm_wire_encode_received(&once, seq, bytes);
    if (stm_wire_decode_received(once.data, once.len, &seq2, &bytes2, &err) != STM_OK)
        s_fail("wire: a re-encoded RECEIVED does not decode: %s", err.msg);
    if (seq != seq2 || bytes != bytes2)
        s_fail("wire: a RECEIVED differs after encoding and decoding");
    stm_buf_free(&once);
}

/* Two vector parts say the same. */
static bool s_vector_msg_equal(const vector_msg *a, const vector_msg *b)
{
    return s_vector_equal(a->entries, b->entries) && a->delta == b->delta &&
           (!a->delta || stm_vector_digest_equal(&a->base, &b->base)) &&
           a->has_digest == b->has_digest &&
           (!a->has_digest || stm_vector_digest_equal(&a->digest, &b->digest)) &&
           a->more == b->more && a->part == b->part;
}

static void s_wire_ack(const unsigned char *m, size_t len)
{
    uint64_t seq = 0, seq2 = 0;
    vector_msg v, v2;
    stm_error err = {0};
    if (stm_wire_decode_ack(m, len, &seq, &v, &err) != STM_OK) {
        if (v.entries)
            s_fail("wire: a refused ACK left a vector behind");
        return;
    }
    buf_t once = BUF_INIT;
    vector_out vo = {.entries = BUF_INIT};
    stm_vector_out_of_msg(&vo, &v);
    stm_wire_encode_ack(&once, seq, &vo);
    if (stm_wire_decode_ack(once.data, once.len, &seq2, &v2, &err) != STM_OK)
        s_fail("wire: a re-encoded ACK does not decode: %s", err.msg);
    if (seq != seq2 || !s_vector_msg_equal(&v, &v2))
        s_fail("wire: an ACK differs after encoding and decoding");
    stm_vector_msg_clear(&v);
    stm_vector_msg_clear(&v2);
    stm_buf_free(&vo.entries);
    stm_buf_free(&once);
}

static void s_wire_vector(const unsigned char *m, size_t len)
{
    vector_msg v, v2;
    bool has, has2, need, need2;
    stm_error err = {0};
    if (stm_wire_decode_vector(m, len, &v, &has, &need, &err) != STM_OK) {
        if (v.entries)
            s_fail("wire: a refused VECTOR left a vector behind");
        return;
    }
    buf_t once = BUF_INIT;
    vector_out vo = {.entries = BUF_INIT};
    stm_vector_out_of_msg(&vo, &v);
    stm_wire_encode_vector(&once, has ? &vo : NULL, need);
    if (stm_wire_decode_vector(once.data, once.len, &v2, &has2, &need2, &err) != STM_OK)
        s_fail("wire: a re-encoded VECTOR does not decode: %s", err.msg);
    if (has != has2 || need != need2 || (has && !s_vector_msg_equal(&v, &v2)))
        s_fail("wire: a VECTOR differs after encoding and decoding");
    stm_vector_msg_clear(&v);
    stm_vector_msg_clear(&v2);
    stm_buf_free(&vo.entries);
    stm_buf_free(&once);
}

static void s_wire_graft(const unsigned char *m, size_t len)
{
    vector_msg v, v2;
    stm_error err = {0};
    if (stm_wire_decode_graft(m, len, &v, &err) != STM_OK) {
        if (v.entries)
            s_fail("wire: a refused GRAFT left a vector behind");
        return;
    }
    buf_t once = BUF_INIT;
    vector_out vo = {.entries = BUF_INIT};
    stm_vector_out_of_msg(&vo, &v);
    stm_wire_encode_graft(&once, &vo);
    if (stm_wire_decode_graft(once.data, once.len, &v2, &err) != STM_OK)
        s_fail("wire: a re-encoded GRAFT does not decode: %s", err.msg);
    if (!s_vector_msg_equal(&v, &v2))
        s_fail("wire: a GRAFT differs after encoding and decoding");
    stm_vector_msg_clear(&v);
    stm_vector_msg_clear(&v2);
    stm_buf_free(&vo.entries);
    stm_buf_free(&once);
}

void fuzz_wire(const uint8_t *data, size_t size)
{
    if (size == 0)
        return;
    /* The first byte picks the type: its index here (a seed's first byte). */
    static const wire_type types[7] = {WIRE_HELLO,    WIRE_REFUSE, WIRE_OPS,  WIRE_ACK,
                                       WIRE_RECEIVED, WIRE_VECTOR, WIRE_GRAFT};
    wire_type type = types[data[0] % 7];
    size_t len;
    unsigned char *m = s_message(type, data + 1, size - 1, &len);
    switch (type) {
    case WIRE_HELLO:
        s_wire_hello(m, len);
        break;
    case WIRE_REFUSE:
        s_wire_refuse(m, len);
        break;
    case WIRE_OPS:
        s_wire_ops(m, len);
        break;
    case WIRE_RECEIVED:
        s_wire_received(m, len);
        break;
    case WIRE_VECTOR:
        s_wire_vector(m, len);
        break;
    case WIRE_GRAFT:
        s_wire_graft(m, len);
        break;
    default:
        s_wire_ack(m, len);
        break;
    }
    free(m);
}

/* ---- bundle ---- */

/* The inputs go into one memory-backed file per process, named by /proc/self/fd, so
 * nothing is left on disk and parallel fuzzers do not share it. */
static int s_fd = -1;
static char s_path[64];

static const char *s_file(const uint8_t *data, size_t size)
{
    if (s_fd < 0) {
        s_fd = memfd_create("stemma-fuzz-bundle", 0);
        if (s_fd < 0)
            s_fail("bundle: memfd_create failed");
        snprintf(s_path, sizeof s_path, "/proc/self/fd/%d", s_fd);
    }
    if (ftruncate(s_fd, 0) != 0)
        s_fail("bundle: cannot truncate %s", s_path);
    for (size_t done = 0; done < size;) {
        ssize_t n = pwrite(s_fd, data + done, size - done, (off_t)done);
        if (n <= 0)
            s_fail("bundle: cannot write %s", s_path);
        done += (size_t)n;
    }
    return s_path;
}

typedef struct {
    uint64_t ops;
    size_t sum;
} s_tally;

static stm_err s_count_batch(void *ctx, const opbatch_t *batch, stm_error *err)
{
    (void)err;
    s_tally *t = ctx;
    for (size_t i = 0; i < stm_opbatch_count(batch); i++)
        t->sum += s_touch_op(stm_opbatch_at(batch, i));
    t->ops += stm_opbatch_count(batch);
    return STM_OK;
}

static void s_bundle_file(const uint8_t *data, size_t size)
{
    const char *path = s_file(data, size);
    s_tally t = {0, 0};
    bundle_info info;
    stm_error err = {0};
    if (stm_bundle_read(path, s_count_batch, &t, &info, &err) == STM_OK) {
        if (t.ops != info.ops)
            s_fail("bundle: it says it holds %llu operations and handed out %llu",
                   (unsigned long long)info.ops, (unsigned long long)t.ops);
        if (info.bytes != size)
            s_fail("bundle: it says it is %llu bytes long, the file is %zu",
                   (unsigned long long)info.bytes, size);
    }
    vector_t *v = NULL;
    if (stm_bundle_read_vector(path, &v, &err) == STM_OK) {
        s_vector_round_trip("vector file", v);
        stm_vector_destroy(&v);
    }
    s_sink += t.sum;
}

void fuzz_bundle(const uint8_t *data, size_t size)
{
    s_bundle_file(data, size);
    /* A fuzzer cannot forge the digest that ends both kinds of file, and without it
     * nothing is handed out: read the input a second time with its last 32 bytes
     * replaced by the digest of everything before them. */
    if (size < 8 + STM_ID_BYTES)
        return;
    size_t body = size - STM_ID_BYTES;
    stm_id digest;
    stm_id_hash(data, body, &digest);
    if (memcmp(data + body, digest.bytes, STM_ID_BYTES) == 0)
        return;
    uint8_t *fixed = stm_malloc(size);
    memcpy(fixed, data, body);
    memcpy(fixed + body, digest.bytes, STM_ID_BYTES);
    s_bundle_file(fixed, size);
    free(fixed);
}

/* ---- beacon ---- */

void fuzz_beacon(const uint8_t *data, size_t size)
{
    beacon_msg m, again;
    memset(&m, 0x5a, sizeof m);
    beacon_msg before = m;
    stm_error err = {0};
    if (stm_beacon_decode(data, size, &m, &err) != STM_OK) {
        if (memcmp(&m, &before, sizeof m) != 0)
            s_fail("beacon: a refused datagram changed the output (%s)", err.msg);
        if (!err.msg[0])
            s_fail("beacon: refused without a message");
        return;
    }
    if (size != BEACON_BYTES || m.port == 0)
        s_fail("beacon: accepted %zu bytes naming port %u", size, (unsigned)m.port);
    unsigned char out[BEACON_BYTES];
    stm_beacon_encode(&m, out);
    /* The same bytes, but the flag bits this version does not know (which it drops). */
    for (size_t i = 0; i < BEACON_BYTES; i++) {
        unsigned char want = i == 5 ? (unsigned char)(data[i] & BEACON_FLAG_INSECURE) : data[i];
        if (out[i] != want)
            s_fail("beacon: byte %zu encodes as %u, was %u", i, out[i], want);
    }
    if (stm_beacon_decode(out, sizeof out, &again, &err) != STM_OK)
        s_fail("beacon: its own encoding is refused: %s", err.msg);
    if (!stm_id_equal(&again.id, &m.id) || again.port != m.port || again.insecure != m.insecure)
        s_fail("beacon: decoding its encoding gives another beacon");
}

/* ---- judge ---- */

static lineage_t *s_local;

void fuzz_judge_init(const char *root)
{
    if (s_local)
        return;
    if (!root || !*root)
        root = getenv("STEMMA_ROOT");
    if (!root || !*root)
        root = ".";
    buf_t dir = BUF_INIT;
    stm_buf_printf(&dir, "%s/schemas/tasks", root);
    schemaset_t *set = NULL;
    stm_error err = {0};
    if (stm_schemaset_load(stm_buf_str(&dir), &set, &err) != STM_OK ||
        stm_lineage_build(set, &s_local, &err) != STM_OK) {
        fprintf(stderr, "fuzz_judge: %s (set STEMMA_ROOT to the source tree)\n", err.msg);
        abort();
    }
    stm_schemaset_destroy(&set);
    stm_buf_free(&dir);
}

void fuzz_judge_fini(void)
{
    stm_lineage_destroy(&s_local);
}

static relation_kind s_mirror(relation_kind k)
{
    return k == RELATION_ANCESTOR     ? RELATION_DESCENDANT
           : k == RELATION_DESCENDANT ? RELATION_ANCESTOR
                                      : k;
}

static size_t s_touch_comparison(const comparison_t *c)
{
    size_t sum = 0;
    for (size_t i = 0; i < c->nfamilies; i++) {
        const comparison_family *f = &c->families[i];
        sum += strlen(f->name);
        for (int r = 0; r < 4; r++)
            for (size_t k = 0; k < f->ncolumns[r]; k++)
                sum += strlen(f->columns[r][k]);
    }
    return sum;
}

/* stm_relation_compare(a, b) and stm_relation_compare(b, a) tell the same story. */
static void s_check_mirror(const comparison_t *ab, const comparison_t *ba)
{
    if (ba->relation != s_mirror(ab->relation) || ab->common != ba->common ||
        ab->stm_local_version != ba->remote_version ||
        ab->remote_version != ba->stm_local_version ||
        !stm_id_equal(&ab->common_id, &ba->common_id))
        s_fail("judge: comparing both ways: %s against %s (common %zu, %zu)",
               stm_relation_name(ab->relation), stm_relation_name(ba->relation), ab->common,
               ba->common);
    if (ab->nfamilies != ba->nfamilies)
        s_fail("judge: comparing both ways: %zu families against %zu", ab->nfamilies,
               ba->nfamilies);
    for (size_t i = 0; i < ab->nfamilies; i++) {
        const comparison_family *x = &ab->families[i], *y = &ba->families[i];
        if (sqlite3_stricmp(x->name, y->name) != 0 || y->relation != s_mirror(x->relation) ||
            x->common != y->common || x->local_live != y->remote_live ||
            x->remote_live != y->local_live ||
            x->ncolumns[COLUMN_SHARED] != y->ncolumns[COLUMN_SHARED] ||
            x->ncolumns[COLUMN_LOCAL_ONLY] != y->ncolumns[COLUMN_REMOTE_ONLY] ||
            x->ncolumns[COLUMN_REMOTE_ONLY] != y->ncolumns[COLUMN_LOCAL_ONLY] ||
            x->ncolumns[COLUMN_CONFLICTING] != y->ncolumns[COLUMN_CONFLICTING])
            s_fail("judge: comparing both ways: family %zu (%s, %s) does not mirror", i, x->name,
                   y->name);
    }
}

static void s_check_self(const lineage_t *l)
{
    comparison_t *c = stm_relation_compare(l, l);
    if (c->relation != RELATION_SAME || c->common != stm_lineage_count(l))
        s_fail("judge: a lineage is %s to itself", stm_relation_name(c->relation));
    for (size_t i = 0; i < c->nfamilies; i++) {
        const comparison_family *f = &c->families[i];
        if (f->relation != RELATION_SAME || f->ncolumns[COLUMN_LOCAL_ONLY] ||
            f->ncolumns[COLUMN_REMOTE_ONLY] || f->ncolumns[COLUMN_CONFLICTING])
            s_fail("judge: family %s is not the same as itself", f->name);
    }
    stm_comparison_destroy(&c);
}

static void s_judge(const lineage_t *remote, const peer_policy *p)
{
    peer_verdict v;
    stm_judge_hello(s_local, remote, p, &v);
    if (v.sync != PEER_SYNC_FULL && v.sync != PEER_SYNC_PARTIAL && v.sync != PEER_SYNC_REFUSED)
        s_fail("judge: a verdict of %d", (int)v.sync);
    if (!v.reason[0])
        s_fail("judge: a %s verdict without a reason", stm_peer_sync_name(v.sync));
    if (!v.cmp)
        s_fail("judge: a verdict without its comparison");
    s_sink += s_touch_comparison(v.cmp);
    stm_peer_verdict_clear(&v);
}

void fuzz_judge(const uint8_t *data, size_t size)
{
    if (!s_local)
        fuzz_judge_init(NULL);
    size_t len;
    unsigned char *m = s_message(WIRE_HELLO, data, size, &len);
    wire_hello h;
    stm_error err = {0};
    if (stm_wire_decode_hello(m, len, &h, &err) == STM_OK) {
        peer_policy p;
        stm_config_policy_default(&p);
        s_judge(h.lineage, &p);
        p.min_supported_version = 3;
        p.max_version_gap = 1;
        s_judge(h.lineage, &p);
        comparison_t *ab = stm_relation_compare(s_local, h.lineage);
        comparison_t *ba = stm_relation_compare(h.lineage, s_local);
        s_sink += s_touch_comparison(ab) + s_touch_comparison(ba);
        s_check_mirror(ab, ba);
        stm_comparison_destroy(&ab);
        stm_comparison_destroy(&ba);
        s_check_self(h.lineage);
        stm_wire_hello_clear(&h);
    }
    free(m);
}
