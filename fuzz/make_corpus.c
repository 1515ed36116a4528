/* make_corpus.c - writes the seed inputs of the wire, judge and codec fuzz targets with
 * the real encoders, so the fuzzers start from messages a node actually sends.
 *
 *   make_corpus SOURCE_ROOT OUT_DIR
 *
 * writes files into OUT_DIR/wire, OUT_DIR/judge, OUT_DIR/codec and OUT_DIR/beacon (the directories
 * must exist) in the input layouts targets.h describes. fuzz/make_corpus.sh runs it with the rest
 * of the seeds; its output is committed under fuzz/corpus/. */
#include "base/buf.h"
#include "lineage/lens.h"
#include "lineage/lineage.h"
#include "lineage/schemaset.h"
#include "node/beacon.h"
#include "node/wire.h"
#include "sync/codec.h"
#include "sync/key.h"
#include "sync/vector.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *s_out;

static void s_write(const char *target, const char *name, const void *data, size_t len)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s/%s", s_out, target, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
}

/* A wire seed: the type byte (wire_type - 1), then the message without its header. */
static void s_wire(const char *name, const buf_t *msg)
{
    /* The first byte picks the type in fuzz_wire: HELLO REFUSE OPS ACK RECEIVED VECTOR
     * GRAFT. */
    buf_t seed = BUF_INIT;
    int type = msg->data[5];
    stm_buf_putc(&seed, (char)(type == WIRE_RECEIVED ? 4
                               : type == WIRE_VECTOR ? 5
                               : type == WIRE_GRAFT  ? 6
                                                     : type - 1));
    stm_buf_append(&seed, msg->data + WIRE_HEADER_BYTES, msg->len - WIRE_HEADER_BYTES);
    s_write("wire", name, seed.data, seed.len);
    stm_buf_free(&seed);
}

static lineage_t *s_lineage(const char *root, const char *set)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/schemas/%s", root, set);
    schemaset_t *s = NULL;
    lineage_t *l = NULL;
    stm_error err = {0};
    if (stm_schemaset_load(dir, &s, &err) != STM_OK || stm_lineage_build(s, &l, &err) != STM_OK) {
        fprintf(stderr, "make_corpus: %s\n", err.msg);
        exit(1);
    }
    stm_schemaset_destroy(&s);
    return l;
}

/* A made-up lineage sharing nothing with tasks: one version, one family "notes". */
static lineage_t *s_unrelated(void)
{
    lineage_t *l = stm_lineage_new("notes");
    stm_id id, zero = {{0}}, head;
    memset(id.bytes, 0x42, sizeof id.bytes);
    memset(head.bytes, 0x24, sizeof head.bytes);
    if (stm_lineage_add_version(l, 1, &id, &zero, &zero, "", NULL) != STM_OK)
        abort();
    catalog_table *t = stm_catalog_table_new("notes", false);
    catalog_column cols[] = {
        {.name = "id", .decltype = "INTEGER", .affinity = AFFINITY_INTEGER, .pk = 1},
        {.name = "body", .decltype = "TEXT", .affinity = AFFINITY_TEXT},
        {.name = "score", .decltype = "REAL", .affinity = AFFINITY_REAL},
        {.name = "raw", .decltype = "BLOB", .affinity = AFFINITY_BLOB},
        {.name = "n", .decltype = "NUMERIC", .affinity = AFFINITY_NUMERIC, .hidden = 3},
    };
    for (size_t i = 0; i < sizeof cols / sizeof cols[0]; i++)
        stm_catalog_table_add_column(t, &cols[i]);
    if (stm_lineage_add_family(l, stm_family_from_heads("notes", &head, 1, t), NULL) != STM_OK)
        abort();
    return l;
}

static stm_id s_id(unsigned char b)
{
    stm_id id;
    memset(id.bytes, b, sizeof id.bytes);
    id.bytes[0] = 0;
    return id;
}

static vector_t *s_vector(size_t n)
{
    vector_t *v = stm_vector_new();
    for (size_t i = 0; i < n; i++) {
        stm_id o = s_id((unsigned char)(0x10 * (i + 1)));
        stm_vector_set(v, &o, 3 + 100 * i);
    }
    return v;
}

/* Operations like those capture records: inserts (one per column), an update, a
 * delete, every value type, two origins and two schema versions. */
static opbatch_t *s_batch(void)
{
    opbatch_t *b = stm_opbatch_new();
    stm_id o1 = s_id(0x10), o2 = s_id(0x20), v3 = s_id(0x33), v4 = s_id(0x44);
    op_value pk = {VALUE_TEXT, 0, 0, "t-1", 3};
    struct {
        const char *column;
        char affinity;
        op_value value;
    } cells[] = {
        {"list_id", 'T', {VALUE_TEXT, 0, 0, "inbox", 5}},
        {"title", 'T', {VALUE_TEXT, 0, 0, "write the fuzzers", 17}},
        {"done", 'I', {VALUE_INTEGER, 0, 0, NULL, 0}},
        {"notes", 'T', {VALUE_NULL, 0, 0, NULL, 0}},
        {"priority", 'I', {VALUE_INTEGER, -9000000000LL, 0, NULL, 0}},
        {"score", 'R', {VALUE_REAL, 0, 2.5, NULL, 0}},
        {"raw", 'B', {VALUE_BLOB, 0, 0, "\x00\x01\xff", 3}},
        {"amount", 'N', {VALUE_INTEGER, 0, 0, NULL, 0}},
    };
    uint64_t seq = 1, hlc = (uint64_t)1700000000000 << 16;
    for (size_t i = 0; i < sizeof cells / sizeof cells[0]; i++) {
        op_t op = {.origin = o1,
                   .seq = seq++,
                   .hlc = hlc++,
                   .version_id = v4,
                   .table = "tasks",
                   .pk = pk,
                   .column = cells[i].column,
                   .affinity = cells[i].affinity,
                   .value = cells[i].value};
        stm_opbatch_add(b, &op);
    }
    op_t update = {.origin = o2,
                   .seq = 1,
                   .hlc = hlc + 5,
                   .version_id = v3,
                   .table = "tasks",
                   .pk = pk,
                   .column = "done",
                   .affinity = 'I',
                   .value = {VALUE_INTEGER, 1, 0, NULL, 0}};
    stm_opbatch_add(b, &update);
    op_t del = {.origin = o2,
                .seq = 2,
                .hlc = hlc + 6,
                .version_id = v3,
                .table = "lists",
                .pk = {VALUE_INTEGER, 42, 0, NULL, 0}};
    stm_opbatch_add(b, &del);
    /* A key of two columns (sync/key.h), and a write naming its row's incarnation
     * (sync/identity.h). */
    op_value parts[2] = {{VALUE_TEXT, 0, 0, "room", 4}, {VALUE_INTEGER, 7, 0, NULL, 0}};
    buf_t packed = BUF_INIT;
    stm_key_pack(parts, 2, &packed);
    op_t pair = {.origin = o1,
                 .seq = seq++,
                 .hlc = hlc++,
                 .version_id = v4,
                 .table = "links",
                 .pk = {VALUE_KEY, 0, 0, packed.data, packed.len},
                 .column = "note",
                 .affinity = 'T',
                 .value = {VALUE_TEXT, 0, 0, "n", 1}};
    stm_opbatch_add(b, &pair);
    op_t born = {.origin = o2,
                 .seq = 3,
                 .hlc = hlc + 9,
                 .version_id = v3,
                 .table = "users",
                 .pk = {VALUE_INTEGER, 1, 0, NULL, 0},
                 .column = "name",
                 .affinity = 'T',
                 .value = {VALUE_TEXT, 0, 0, "bob", 3},
                 .born_hlc = hlc,
                 .born_origin = o1};
    stm_opbatch_add(b, &born);
    stm_buf_free(&packed);
    return b;
}

/* A beacon seed: the datagram as a node sends it. */
static void s_beacon(const char *name, unsigned char fill, uint16_t port, bool insecure)
{
    beacon_msg m = {.id = s_id(fill), .port = port, .insecure = insecure};
    unsigned char bytes[BEACON_BYTES];
    stm_beacon_encode(&m, bytes);
    s_write("beacon", name, bytes, sizeof bytes);
}

static void s_hello(const char *name, const lineage_t *l, size_t nvec, int min_supported,
                    size_t npeers, bool reply, const lens_set_t *lenses)
{
    vector_t *v = s_vector(nvec);
    wire_peer peers[2] = {{.id = s_id(0x10), .endpoint = "tcp://127.0.0.1:7001"},
                          {.id = s_id(0x20), .endpoint = "ipc:///tmp/stemma.sock"}};
    stm_id node = s_id(0x99);
    buf_t msg = BUF_INIT;
    vector_out vo = {.entries = BUF_INIT};
    stm_vector_out_whole(&vo, v);
    wire_hello_out h = {.endpoint = "tcp://127.0.0.1:7000", .name = "device-7000", .lineage = l,
                        .vector = &vo, .min_supported = min_supported, .peers = peers,
                        .npeers = npeers, .reply = reply, .deltas = nvec == 2, .lenses = lenses};
    stm_wire_encode_hello(&msg, &node, &h);
    stm_buf_free(&vo.entries);
    char wname[128];
    snprintf(wname, sizeof wname, "hello-%s", name);
    s_wire(wname, &msg);
    s_write("judge", name, msg.data + WIRE_HEADER_BYTES, msg.len - WIRE_HEADER_BYTES);
    stm_buf_free(&msg);
    stm_vector_destroy(&v);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: make_corpus SOURCE_ROOT OUT_DIR\n");
        return 2;
    }
    s_out = argv[2];
    lineage_t *tasks = s_lineage(argv[1], "tasks");
    lineage_t *fork = s_lineage(argv[1], "tasks-fork");
    lineage_t *other = s_unrelated();

    /* HELLOs: every version of tasks, the fork (divergent after v2) and a stranger. */
    for (size_t n = 0; n <= stm_lineage_count(tasks); n++) {
        lineage_t *p = stm_lineage_prefix(tasks, n);
        char name[64];
        snprintf(name, sizeof name, "tasks-v%zu", n);
        s_hello(name, p, n % 3, (int)(n / 2), n % 3, n % 2 == 1, NULL);
        stm_lineage_destroy(&p);
    }
    s_hello("fork-v3", fork, 2, 0, 1, false, NULL);
    lineage_t *fork2 = stm_lineage_prefix(fork, 2);
    s_hello("fork-v2", fork2, 1, 1, 0, true, NULL);
    stm_lineage_destroy(&fork2);
    s_hello("unrelated", other, 0, 0, 0, false, NULL);
    /* The fork with lenses (wire_lens.h): a rename, a table replaced, a step unknown. */
    lens_set_t *lenses = stm_lens_assemble_new(stm_lineage_count(fork));
    const lens_change renamed = {LENS_RENAMED, "tasks", "heading", "tasks", "title"},
                      replaced = {LENS_REPLACED, "tags", NULL, NULL, NULL};
    stm_lens_assemble_change(lenses, 2, &renamed);
    stm_lens_assemble_change(lenses, 2, &replaced);
    stm_lens_assemble_unprobed(lenses, 3, "a CHECK the markers break");
    stm_lens_assemble_finish(lenses, fork);
    s_hello("fork-v3-lenses", fork, 2, 0, 1, false, lenses);
    stm_lens_destroy(&lenses);

    /* Beacons: a CURVE node on the default port, an insecure one on the highest. */
    s_beacon("curve-7420", 0x31, 7420, false);
    s_beacon("insecure-65535", 0x42, 65535, true);

    /* Batches and vectors, alone (codec) and in OPS and ACK messages (wire). */
    opbatch_t *b = s_batch();
    buf_t batch = BUF_INIT, one = BUF_INIT, none = BUF_INIT, msg = BUF_INIT;
    stm_codec_encode_ops(b, 0, stm_opbatch_count(b), &batch);
    stm_codec_encode_ops(b, stm_opbatch_count(b) - 1, 1, &one);
    stm_codec_encode_ops(b, 0, 0, &none);
    s_write("codec", "batch", batch.data, batch.len);
    s_write("codec", "batch-delete", one.data, one.len);
    s_write("codec", "batch-empty", none.data, none.len);
    stm_wire_encode_ops(&msg, 1, batch.data, batch.len);
    s_wire("ops", &msg);
    stm_buf_reset(&msg);
    stm_wire_encode_ops(&msg, 77, one.data, one.len);
    s_wire("ops-delete", &msg);
    /* A batch in parts (its first and last), and the RECEIVED that answers a part. */
    stm_buf_reset(&msg);
    stm_wire_encode_ops_part(&msg, 5, 0, 3, batch.len, batch.data, batch.len / 3);
    s_wire("ops-part-first", &msg);
    stm_buf_reset(&msg);
    size_t last_from = 2 * (batch.len / 3);
    stm_wire_encode_ops_part(&msg, 5, 2, 3, batch.len, batch.data + last_from,
                             batch.len - last_from);
    s_wire("ops-part-last", &msg);
    stm_buf_reset(&msg);
    stm_wire_encode_received(&msg, 5, batch.len / 3);
    s_wire("received", &msg);
    /* Stand-ins: a batch of them alone, and beside operations (sync/op.h). */
    opbatch_t *w = s_batch();
    op_value key[2] = {{VALUE_TEXT, 0, 0, "photo", 5}, {VALUE_INTEGER, 3, 0, NULL, 0}};
    buf_t packed = BUF_INIT;
    stm_key_pack(key, 2, &packed);
    op_withheld big = {.origin = s_id(1), .seq = 12, .n = 7, .hlc = (uint64_t)1 << 50,
                       .version_id = s_id(0x44), .table = "files",
                       .pk = {VALUE_TEXT, 0, 0, "f1", 2}, .bytes = 293601280};
    op_withheld small = {.origin = s_id(9), .seq = 1, .n = 1, .hlc = 3,
                         .version_id = s_id(0x45), .table = "photos",
                         .pk = {VALUE_KEY, 0, 0, packed.data, packed.len},
                         .bytes = 300000000};
    stm_opbatch_add_withheld(w, &big);
    stm_opbatch_add_withheld(w, &small);
    buf_t mixed = BUF_INIT, alone = BUF_INIT;
    stm_codec_encode_ops(w, 0, stm_opbatch_count(w), &mixed);
    stm_codec_encode_ops(w, 0, 0, &alone);
    s_write("codec", "batch-withheld", mixed.data, mixed.len);
    s_write("codec", "batch-withheld-alone", alone.data, alone.len);
    stm_buf_reset(&msg);
    stm_wire_encode_ops(&msg, 8, alone.data, alone.len);
    s_wire("ops-withheld", &msg);
    stm_buf_free(&mixed);
    stm_buf_free(&alone);
    stm_buf_free(&packed);
    stm_opbatch_destroy(&w);
    for (size_t n = 0; n <= 3; n += 1) {
        vector_t *v = s_vector(n);
        buf_t enc = BUF_INIT;
        stm_vector_encode(v, &enc);
        char name[64];
        snprintf(name, sizeof name, "vector-%zu", n);
        if (n != 2)
            s_write("codec", name, enc.data, enc.len);
        stm_buf_reset(&msg);
        vector_out vo = {.entries = BUF_INIT};
        stm_vector_out_whole(&vo, v);
        stm_wire_encode_ack(&msg, n * 10, &vo);
        snprintf(name, sizeof name, "ack-%zu", n);
        s_wire(name, &msg);
        /* The same as a delta over a digest, and as a VECTOR part (vdelta.v1). */
        vo.delta = true;
        vo.more = n == 1;
        stm_buf_reset(&msg);
        stm_wire_encode_ack(&msg, n * 10, &vo);
        snprintf(name, sizeof name, "ack-delta-%zu", n);
        s_wire(name, &msg);
        stm_buf_reset(&msg);
        stm_wire_encode_vector(&msg, &vo, n == 3);
        snprintf(name, sizeof name, "vector-part-%zu", n);
        s_wire(name, &msg);
        stm_buf_reset(&msg);
        stm_wire_encode_graft(&msg, &vo);
        snprintf(name, sizeof name, "graft-%zu", n);
        s_wire(name, &msg);
        stm_buf_free(&vo.entries);
        stm_buf_free(&enc);
        stm_vector_destroy(&v);
    }
    stm_buf_reset(&msg);
    stm_wire_encode_refuse(&msg, "unrelated schema histories (no common ancestor): the policy "
                                 "syncs nothing with unrelated peers");
    s_wire("refuse", &msg);
    stm_buf_reset(&msg);
    stm_wire_encode_refuse(&msg, "peer's database is at v1, older than min_supported_version 3");
    s_wire("refuse-min-version", &msg);

    stm_buf_free(&msg);
    stm_buf_free(&batch);
    stm_buf_free(&one);
    stm_buf_free(&none);
    stm_opbatch_destroy(&b);
    stm_lineage_destroy(&tasks);
    stm_lineage_destroy(&fork);
    stm_lineage_destroy(&other);
    return 0;
}
