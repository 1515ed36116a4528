/* Tests of node/wire: every mesh message round trips, and every truncated or damaged
 * message is refused cleanly (never a crash, never a leak). */
#include "node/config.h"
#include "node/judge.h"
#include "node/wire.h"
#include "lineage/relation.h"
#include "testutil.h"
#include "wireutil.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <malloc.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


static buf_t s_hello(bool reply)
{
    lineage_t *full = tu_lineage_dir("schemas/tasks");
    lineage_t *v3 = stm_lineage_prefix(full, 3);
    vector_t *v = stm_vector_new();
    stm_id a = {{1}}, b = {{2}}, node = {{9}};
    stm_vector_set(v, &a, 5);
    stm_vector_set(v, &b, 7);
    wire_peer peers[2] = {{.id = a, .endpoint = "tcp://127.0.0.1:7001"},
                          {.id = b, .endpoint = "ipc:///tmp/x.sock"}};
    buf_t msg = BUF_INIT;
    wu_encode_hello(&msg, &node, "tcp://127.0.0.1:7000", "laptop \xc3\xa9", v3, v, 2,
                          peers, 2, reply);
    stm_vector_destroy(&v);
    stm_lineage_destroy(&v3);
    stm_lineage_destroy(&full);
    return msg;
}

/* A HELLO carries what its sender's migrations did (wire_lens.h): the steps with
 * changes, or whose changes are not known, and nothing for the others; every prefix of
 * it is refused cleanly. */
static void test_hello_carries_lenses(void **state)
{
    (void)state;
    lineage_t *l = tu_lineage_dir("tests/data/schemas/renames");
    assert_int_equal(stm_lineage_count(l), 3);
    lens_set_t *lenses = stm_lens_assemble_new(3);
    const lens_change renamed = {LENS_RENAMED, "users", "akey", "users", "key"};
    stm_lens_assemble_change(lenses, 2, &renamed);
    stm_lens_assemble_unprobed(lenses, 3, "a CHECK the markers break");
    stm_lens_assemble_finish(lenses, l);
    vector_t *v = stm_vector_new();
    stm_id node = {{9}};
    buf_t msg = BUF_INIT;
    wu_encode_hello_lenses(&msg, &node, "tcp://h:1", "", l, v, 0, NULL, 0, false, lenses);
    wire_hello h;
    stm_error err = {0};
    assert_int_equal(stm_wire_decode_hello(msg.data, msg.len, &h, &err), STM_OK);
    assert_int_equal(h.lenses.count, 2);
    assert_int_equal(h.lenses.steps[0].version, 2);
    assert_true(h.lenses.steps[0].probed);
    assert_int_equal(h.lenses.steps[0].count, 1);
    const lens_change *c = &h.lenses.steps[0].changes[0];
    assert_int_equal(c->kind, LENS_RENAMED);
    assert_string_equal(c->table, "users");
    assert_string_equal(c->column, "akey");
    assert_string_equal(c->from_table, "users");
    assert_string_equal(c->from_column, "key");
    assert_int_equal(h.lenses.steps[1].version, 3);
    assert_false(h.lenses.steps[1].probed);
    assert_int_equal(h.lenses.steps[1].count, 0);
    stm_wire_hello_clear(&h);
    for (size_t len = 0; len < msg.len; len++) {
        wire_hello cut;
        stm_error e = {0};
        assert_int_not_equal(stm_wire_decode_hello(msg.data, len, &cut, &e), STM_OK);
    }
    stm_buf_free(&msg);
    stm_vector_destroy(&v);
    stm_lens_destroy(&lenses);
    stm_lineage_destroy(&l);
}

static void test_hello_round_trip(void **state)
{
    (void)state;
    buf_t msg = s_hello(true);
    wire_hello h;
    stm_error err = {0};
    assert_int_equal(stm_wire_decode_hello(msg.data, msg.len, &h, &err), STM_OK);
    stm_id node = {{9}};
    assert_true(stm_id_equal(&h.node_id, &node));
    assert_string_equal(h.endpoint, "tcp://127.0.0.1:7000");
    assert_string_equal(h.name, "laptop \xc3\xa9");
    assert_string_equal(h.schema_set, "tasks");
    assert_true(h.reply);
    assert_int_equal(h.min_supported_version, 2);
    assert_int_equal(h.npeers, 2);
    assert_string_equal(h.peers[1].endpoint, "ipc:///tmp/x.sock");
    assert_int_equal(stm_vector_count(h.vector.entries), 2);
    assert_false(h.vector.delta);
    assert_true(h.vector.has_digest);
    assert_false(h.has_know);
    /* The lineage it carries compares exactly like the one it was made from. */
    lineage_t *full = tu_lineage_dir("schemas/tasks");
    lineage_t *v3 = stm_lineage_prefix(full, 3);
    comparison_t *c = stm_relation_compare(v3, h.lineage);
    assert_int_equal(c->relation, RELATION_SAME);
    for (size_t i = 0; i < c->nfamilies; i++) {
        assert_int_equal(c->families[i].relation, RELATION_SAME);
        assert_int_equal(c->families[i].ncolumns[COLUMN_LOCAL_ONLY], 0);
        assert_int_equal(c->families[i].ncolumns[COLUMN_REMOTE_ONLY], 0);
        assert_int_equal(c->families[i].ncolumns[COLUMN_CONFLICTING], 0);
    }
    stm_comparison_destroy(&c);
    comparison_t *c4 = stm_relation_compare(full, h.lineage);
    assert_int_equal(c4->relation, RELATION_DESCENDANT);
    stm_comparison_destroy(&c4);
    /* And a peer judges it as the docs say. */
    peer_policy p;
    stm_config_policy_default(&p);
    peer_verdict v;
    stm_judge_hello(full, h.lineage, &p, &v);
    assert_int_equal(v.sync, PEER_SYNC_FULL);
    assert_non_null(strstr(v.reason, "this node is newer (v4 against v3)"));
    stm_peer_verdict_clear(&v);
    p.min_supported_version = 4;
    stm_judge_hello(full, h.lineage, &p, &v);
    assert_int_equal(v.sync, PEER_SYNC_REFUSED);
    assert_non_null(strstr(v.reason, "older than min_supported_version 4"));
    stm_peer_verdict_clear(&v);
    stm_config_policy_default(&p);
    p.max_version_gap = 0;
    lineage_t *v1 = stm_lineage_prefix(full, 1);
    p.max_version_gap = 2;
    stm_judge_hello(full, v1, &p, &v);
    assert_non_null(strstr(v.warning, "recommend a resync"));
    stm_peer_verdict_clear(&v);
    stm_lineage_destroy(&v1);
    stm_lineage_destroy(&v3);
    stm_lineage_destroy(&full);
    stm_wire_hello_clear(&h);
    stm_buf_free(&msg);
}

static void test_hello_truncated_and_damaged(void **state)
{
    (void)state;
    buf_t msg = s_hello(false);
    stm_error err = {0};
    /* Every cut short copy is refused (allocated exactly, so an over-read shows). */
    for (size_t len = 0; len < msg.len; len++) {
        char *copy = malloc(len ? len : 1);
        memcpy(copy, msg.data, len);
        wire_hello h;
        assert_int_not_equal(stm_wire_decode_hello(copy, len, &h, &err), STM_OK);
        free(copy);
    }
    /* Damage anywhere: accepted or refused, never a crash or a leak. */
    srand(7);
    for (int i = 0; i < 3000; i++) {
        char *copy = malloc(msg.len);
        memcpy(copy, msg.data, msg.len);
        size_t at = WIRE_HEADER_BYTES + (size_t)rand() % (msg.len - WIRE_HEADER_BYTES);
        copy[at] ^= (char)(1 + rand() % 255);
        wire_hello h;
        if (stm_wire_decode_hello(copy, msg.len, &h, &err) == STM_OK)
            stm_wire_hello_clear(&h);
        free(copy);
    }
    stm_buf_free(&msg);
}

static void test_header(void **state)
{
    (void)state;
    int version, type;
    stm_error err = {0};
    assert_int_equal(stm_wire_header("STM", 3, &version, &type, &err), STM_EPROTO);
    assert_int_equal(stm_wire_header("XXXX\x01\x01", 6, &version, &type, &err), STM_EPROTO);
    assert_non_null(strstr(err.msg, "wrong magic"));
    assert_int_equal(stm_wire_header("STMW\x09\x4d", 6, &version, &type, &err), STM_OK);
    assert_int_equal(version, 9);
    assert_int_equal(type, 77);
    /* A message of another version or type is not decoded as a HELLO. */
    buf_t msg = s_hello(false);
    msg.data[4] = WIRE_VERSION - 1;
    wire_hello h;
    assert_int_equal(stm_wire_decode_hello(msg.data, msg.len, &h, &err), STM_EPROTO);
    msg.data[4] = WIRE_VERSION;
    msg.data[5] = WIRE_OPS;
    assert_int_equal(stm_wire_decode_hello(msg.data, msg.len, &h, &err), STM_EPROTO);
    stm_buf_free(&msg);
}

static void test_ops_ack_refuse_ping(void **state)
{
    (void)state;
    stm_error err = {0};
    buf_t msg = BUF_INIT;
    stm_wire_encode_ops(&msg, 42, "batch-bytes", 11);
    uint64_t seq;
    wire_ops ops;
    assert_int_equal(stm_wire_decode_ops(msg.data, msg.len, &ops, &err), STM_OK);
    assert_int_equal(ops.seq, 42);
    assert_int_equal(ops.batch_len, 11);
    assert_memory_equal(ops.batch, "batch-bytes", 11);
    assert_int_equal(ops.parts, 0); /* whole */
    for (size_t len = 0; len < msg.len; len++)
        assert_int_not_equal(stm_wire_decode_ops(msg.data, len, &ops, &err), STM_OK);
    stm_buf_reset(&msg);
    vector_t *v = stm_vector_new();
    vector_msg back;
    stm_id a = {{3}};
    stm_vector_set(v, &a, 11);
    vector_out vo = {.entries = BUF_INIT};
    stm_vector_out_whole(&vo, v);
    stm_wire_encode_ack(&msg, 7, &vo);
    assert_int_equal(stm_wire_decode_ack(msg.data, msg.len, &seq, &back, &err), STM_OK);
    assert_int_equal(seq, 7);
    assert_int_equal(stm_vector_get(back.entries, &a), 11);
    assert_true(back.has_digest && stm_vector_digest_equal(&back.digest, &vo.digest));
    stm_vector_msg_clear(&back);
    for (size_t len = 0; len < msg.len; len++) {
        assert_int_not_equal(stm_wire_decode_ack(msg.data, len, &seq, &back, &err), STM_OK);
        assert_null(back.entries);
    }
    stm_buf_free(&vo.entries);
    stm_vector_destroy(&v);
    stm_buf_reset(&msg);
    stm_wire_encode_refuse(&msg, "unrelated schema histories");
    char *reason = NULL;
    assert_int_equal(stm_wire_decode_refuse(msg.data, msg.len, &reason, &err), STM_OK);
    assert_string_equal(reason, "unrelated schema histories");
    free(reason);
    for (size_t len = 0; len < msg.len; len++) {
        assert_int_not_equal(stm_wire_decode_refuse(msg.data, len, &reason, &err), STM_OK);
        assert_null(reason);
    }
    stm_buf_reset(&msg);
    stm_wire_encode_empty(&msg, WIRE_PING);
    int version, type;
    assert_int_equal(stm_wire_header(msg.data, msg.len, &version, &type, &err), STM_OK);
    assert_int_equal(type, WIRE_PING);
    stm_buf_free(&msg);
}

static void test_unknown_keys_are_skipped(void **state)
{
    (void)state;
    /* An OPS with an extra key, a long unknown key, and the fields in another order. */
    const unsigned char body[] = {0x84, 0xa5, 'b', 'a', 't', 'c', 'h', 0xc4, 0x01, 'x',
                                  0xa5, 'e', 'x', 't', 'r', 'a', 0x92, 0x01, 0x02,
                                  0xd9, 40, 'l', 'o', 'n', 'g', 'l', 'o', 'n', 'g', 'l', 'o',
                                  'n', 'g', 'l', 'o', 'n', 'g', 'l', 'o', 'n', 'g', 'l', 'o',
                                  'n', 'g', 'l', 'o', 'n', 'g', 'l', 'o', 'n', 'g', 'l', 'o',
                                  'n', 'g', 'l', 'o', 'n', 'g', 0xc0,
                                  0xa3, 's', 'e', 'q', 0x05};
    buf_t msg = BUF_INIT;
    stm_buf_append(&msg, "STMW", 4);
    stm_buf_putc(&msg, (char)WIRE_VERSION);
    stm_buf_putc(&msg, (char)WIRE_OPS);
    stm_buf_append(&msg, body, sizeof body);
    wire_ops ops;
    stm_error err = {0};
    assert_int_equal(stm_wire_decode_ops(msg.data, msg.len, &ops, &err), STM_OK);
    assert_int_equal(ops.seq, 5);
    assert_int_equal(ops.batch_len, 1);
    stm_buf_free(&msg);
}

/* An OPS in parts (docs/protocol.md, "OPS"): part, parts and bytes round trip, come
 * together or not at all, and keep to their rules; RECEIVED round trips. */
static void test_ops_in_parts_and_received(void **state)
{
    (void)state;
    stm_error err = {0};
    buf_t msg = BUF_INIT;
    stm_wire_encode_ops_part(&msg, 9, 2, 3, 2500000, "slice", 5);
    wire_ops ops;
    assert_int_equal(stm_wire_decode_ops(msg.data, msg.len, &ops, &err), STM_OK);
    assert_int_equal(ops.seq, 9);
    assert_int_equal(ops.part, 2);
    assert_int_equal(ops.parts, 3);
    assert_int_equal(ops.bytes, 2500000);
    assert_int_equal(ops.batch_len, 5);
    assert_memory_equal(ops.batch, "slice", 5);
    for (size_t len = 0; len < msg.len; len++)
        assert_int_not_equal(stm_wire_decode_ops(msg.data, len, &ops, &err), STM_OK);
    /* Each rule broken: refused, saying which. */
    static const struct {
        uint64_t part, parts, bytes;
        size_t slice;
        const char *why;
    } bad[] = {
        {0, 1, 10, 5, "not below parts"},
        {3, 3, 10, 5, "not below parts"},
        {0, WIRE_MAX_PARTS + 1, 1u << 20, 5, "not below parts"},
        {0, 2, WIRE_MAX_BATCH + 1ull, 5, "over 268435456 bytes"},
        {0, 4, 3, 1, "fewer bytes than parts"},
        {0, 2, 10, 0, "slice is empty"},
        {0, 2, 10, 11, "longer than its batch"},
    };
    char slice[16] = "0123456789abcde";
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        stm_buf_reset(&msg);
        stm_wire_encode_ops_part(&msg, 1, bad[i].part, bad[i].parts, bad[i].bytes, slice,
                                 bad[i].slice);
        assert_int_equal(stm_wire_decode_ops(msg.data, msg.len, &ops, &err), STM_EPROTO);
        if (!strstr(err.msg, bad[i].why))
            fail_msg("case %zu: expected \"%s\" in \"%s\"", i, bad[i].why, err.msg);
    }
    /* At the limits: fine. */
    stm_buf_reset(&msg);
    stm_wire_encode_ops_part(&msg, 1, WIRE_MAX_PARTS - 1, WIRE_MAX_PARTS, WIRE_MAX_BATCH, slice, 1);
    assert_int_equal(stm_wire_decode_ops(msg.data, msg.len, &ops, &err), STM_OK);
    /* A part without the rest: {"seq": 1, "batch": "x", "part": 0}. */
    const unsigned char body[] = {0x83, 0xa3, 's', 'e', 'q', 0x01, 0xa5, 'b', 'a', 't', 'c',
                                  'h',  0xc4, 0x01, 'x', 0xa4, 'p', 'a', 'r', 't', 0x00};
    stm_buf_reset(&msg);
    stm_buf_append(&msg, "STMW", 4);
    stm_buf_putc(&msg, (char)WIRE_VERSION);
    stm_buf_putc(&msg, (char)WIRE_OPS);
    stm_buf_append(&msg, body, sizeof body);
    assert_int_equal(stm_wire_decode_ops(msg.data, msg.len, &ops, &err), STM_EPROTO);
    assert_non_null(strstr(err.msg, "lacks part, parts or bytes"));

    stm_buf_reset(&msg);
    stm_wire_encode_received(&msg, 77, 3u << 20);
    uint64_t seq = 0, bytes = 0;
    assert_int_equal(stm_wire_decode_received(msg.data, msg.len, &seq, &bytes, &err), STM_OK);
    assert_int_equal(seq, 77);
    assert_int_equal(bytes, 3u << 20);
    int version, type;
    assert_int_equal(stm_wire_header(msg.data, msg.len, &version, &type, &err), STM_OK);
    assert_int_equal(type, WIRE_RECEIVED);
    for (size_t len = 0; len < msg.len; len++)
        assert_int_not_equal(stm_wire_decode_received(msg.data, len, &seq, &bytes, &err), STM_OK);
    /* Not an OPS, nor an ACK. */
    assert_int_equal(stm_wire_decode_ops(msg.data, msg.len, &ops, &err), STM_EPROTO);
    stm_buf_free(&msg);
}

/* Our HELLO says we put parts together (and read answers on our connections), and that
 * we keep a bounded set of peers, whose HELLOs say "listed" and "full" (mesh.v1). */
static void test_hello_lists_the_capabilities(void **state)
{
    (void)state;
    buf_t msg = s_hello(false);
    wire_hello h;
    stm_error err = {0};
    assert_int_equal(stm_wire_decode_hello(msg.data, msg.len, &h, &err), STM_OK);
    assert_int_equal(h.ncapabilities, 4);
    assert_string_equal(h.capabilities[0], "ops.v1");
    assert_string_equal(h.capabilities[1], WIRE_CAP_ROUTE);
    assert_string_equal(h.capabilities[2], WIRE_CAP_PARTS);
    assert_string_equal(h.capabilities[3], WIRE_CAP_MESH);
    assert_false(h.listed || h.full); /* absent: what an older stemma sends */
    stm_wire_hello_clear(&h);
    stm_buf_free(&msg);
    /* With vector deltas, vdelta.v1 too, and the vector part's keys and vknow back. */
    lineage_t *l = stm_lineage_new("x");
    vector_t *v = stm_vector_new();
    stm_id a = {{7}}, node = {{8}};
    stm_vector_set(v, &a, 3);
    vector_out vo = {.entries = BUF_INIT};
    stm_vector_out_whole(&vo, v);
    vo.delta = vo.more = true;
    vo.base.lane[0] = 42;
    vector_digest know = {{5, 6}};
    wire_hello_out ho = {.endpoint = "", .name = "", .lineage = l, .vector = &vo, .know = &know,
                         .deltas = true, .listed = true, .full = true};
    msg = (buf_t)BUF_INIT;
    stm_wire_encode_hello(&msg, &node, &ho);
    assert_int_equal(stm_wire_decode_hello(msg.data, msg.len, &h, &err), STM_OK);
    assert_int_equal(h.ncapabilities, 5);
    assert_string_equal(h.capabilities[3], WIRE_CAP_VDELTA);
    assert_string_equal(h.capabilities[4], WIRE_CAP_MESH);
    assert_true(h.listed && h.full);
    assert_true(h.vector.delta && h.vector.more && !h.vector.part && h.vector.has_digest);
    assert_true(stm_vector_digest_equal(&h.vector.base, &vo.base));
    assert_true(stm_vector_digest_equal(&h.vector.digest, &vo.digest));
    assert_int_equal(stm_vector_get(h.vector.entries, &a), 3);
    assert_true(h.has_know && stm_vector_digest_equal(&h.know, &know));
    stm_wire_hello_clear(&h);
    stm_buf_free(&msg);
    stm_buf_free(&vo.entries);
    stm_vector_destroy(&v);
    stm_lineage_destroy(&l);
}

/* A vector longer than one message carries (an older stemma with more origins) is cut
 * to its first VECTOR_MAX_ENTRIES, never refused: refusing it partitioned the mesh. A
 * VECTOR carries a part or vneed, and each comes back as it went. */
static void test_long_vectors_are_cut_and_vectors_travel(void **state)
{
    (void)state;
    vector_t *v = stm_vector_new();
    for (uint32_t i = 0; i < VECTOR_MAX_ENTRIES + 3; i++) {
        stm_id o = {{0}};
        o.bytes[0] = (unsigned char)(i >> 24), o.bytes[1] = (unsigned char)(i >> 16);
        o.bytes[2] = (unsigned char)(i >> 8), o.bytes[3] = (unsigned char)i;
        stm_vector_set(v, &o, 1 + i % 5); /* in order: appended */
    }
    vector_out vo = {.entries = BUF_INIT};
    stm_vector_out_whole(&vo, v);
    buf_t msg = BUF_INIT;
    stm_wire_encode_ack(&msg, 9, &vo);
    uint64_t seq;
    vector_msg back;
    stm_error err = {0};
    assert_int_equal(stm_wire_decode_ack(msg.data, msg.len, &seq, &back, &err), STM_OK);
    assert_int_equal(stm_vector_count(back.entries), VECTOR_MAX_ENTRIES);
    assert_int_equal(back.cut, 3);
    stm_vector_msg_clear(&back);
    /* VECTOR: a part, vneed, both; neither is malformed. */
    bool has, need;
    for (int k = 0; k < 3; k++) {
        stm_buf_reset(&msg);
        stm_wire_encode_vector(&msg, k != 1 ? &vo : NULL, k > 0);
        assert_int_equal(stm_wire_decode_vector(msg.data, msg.len, &back, &has, &need, &err),
                         STM_OK);
        assert_true(has == (k != 1) && need == (k > 0));
        stm_vector_msg_clear(&back);
    }
    stm_buf_reset(&msg);
    stm_wire_encode_vector(&msg, NULL, false);
    assert_int_equal(stm_wire_decode_vector(msg.data, msg.len, &back, &has, &need, &err),
                     STM_EPROTO);
    assert_null(back.entries);
    stm_buf_free(&msg);
    stm_buf_free(&vo.entries);
    stm_vector_destroy(&v);
}


/* ---- HELLOs at and past every limit (docs/protocol.md, "HELLO") ---- */

static int s_write(void *data, const char *bytes, size_t len)
{
    stm_buf_append(data, bytes, len);
    return 0;
}

/* The shape of a HELLO to build: how many of each list it holds. */
typedef struct {
    uint32_t versions;          /* lineage entries */
    uint32_t families;          /* tables */
    uint32_t heads;             /* per family */
    uint32_t columns;           /* per family */
    uint32_t peers;
    uint32_t capabilities;
    const char *dup_family;     /* when set, the last family is named this */
    bool lie;                   /* the lineage array announces 100,000 ids that are not there */
} s_shape;

static void s_id(msgpack_packer *pk, uint32_t n)
{
    unsigned char id[32] = {0};
    memcpy(id, &n, sizeof n);
    id[31] = 0x5a;
    msgpack_pack_bin_with_body(pk, id, sizeof id);
}

static void s_key(msgpack_packer *pk, const char *k)
{
    msgpack_pack_str_with_body(pk, k, strlen(k));
}

static buf_t s_shaped(const s_shape *sh)
{
    buf_t out = BUF_INIT;
    stm_buf_append(&out, "STMW", 4);
    stm_buf_putc(&out, (char)WIRE_VERSION);
    stm_buf_putc(&out, (char)WIRE_HELLO);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &out, s_write);
    msgpack_pack_map(&pk, 7);
    s_key(&pk, "node");
    s_id(&pk, 777);
    s_key(&pk, "endpoint");
    s_key(&pk, "tcp://127.0.0.1:9");
    s_key(&pk, "lineage");
    if (sh->lie) {
        stm_buf_append(&out, "\xdd\x00\x01\x86\xa0", 5); /* array32 of 100,000 */
        s_id(&pk, 1);
    } else {
        msgpack_pack_array(&pk, sh->versions);
        for (uint32_t i = 0; i < sh->versions; i++)
            s_id(&pk, i + 1);
    }
    s_key(&pk, "families");
    msgpack_pack_array(&pk, sh->families);
    char name[32];
    for (uint32_t f = 0; f < sh->families; f++) {
        msgpack_pack_array(&pk, 3);
        snprintf(name, sizeof name, "t%u", f);
        s_key(&pk, sh->dup_family && f + 1 == sh->families ? sh->dup_family : name);
        msgpack_pack_array(&pk, sh->heads);
        for (uint32_t i = 0; i < sh->heads; i++)
            s_id(&pk, i + 1);
        msgpack_pack_array(&pk, sh->columns);
        for (uint32_t c = 0; c < sh->columns; c++) {
            msgpack_pack_array(&pk, 4);
            snprintf(name, sizeof name, "c%u", c);
            s_key(&pk, name);
            msgpack_pack_uint8(&pk, 'T');
            msgpack_pack_uint8(&pk, c == 0);
            msgpack_pack_uint8(&pk, 0);
        }
    }
    s_key(&pk, "vector");
    msgpack_pack_array(&pk, 0);
    s_key(&pk, "peers");
    msgpack_pack_array(&pk, sh->peers);
    for (uint32_t i = 0; i < sh->peers; i++) {
        msgpack_pack_array(&pk, 2);
        s_id(&pk, i);
        s_key(&pk, "tcp://127.0.0.1:9");
    }
    s_key(&pk, "capabilities");
    msgpack_pack_array(&pk, sh->capabilities);
    for (uint32_t i = 0; i < sh->capabilities; i++)
        s_key(&pk, "ops.v1");
    return out;
}

/* Decodes a HELLO of that shape: STM_OK, or the error with its message in why. */
static stm_err s_decode_shape(const s_shape *sh, char *why, size_t why_size)
{
    buf_t msg = s_shaped(sh);
    wire_hello h;
    stm_error err = {0};
    stm_err rc = stm_wire_decode_hello(msg.data, msg.len, &h, &err);
    snprintf(why, why_size, "%s", rc == STM_OK ? "" : err.msg);
    if (rc == STM_OK)
        stm_wire_hello_clear(&h);
    stm_buf_free(&msg);
    return rc;
}

#define S_OK(...)                                                                       \
    do {                                                                                \
        s_shape sh_ = {__VA_ARGS__};                                                    \
        char why_[1100];                                                                 \
        if (s_decode_shape(&sh_, why_, sizeof why_) != STM_OK)                          \
            fail_msg("refused at its limit: %s", why_);                                 \
    } while (0)

#define S_REFUSED(fragment, ...)                                                        \
    do {                                                                                \
        s_shape sh_ = {__VA_ARGS__};                                                    \
        char why_[1100];                                                                 \
        assert_int_equal(s_decode_shape(&sh_, why_, sizeof why_), STM_EPROTO);          \
        if (!strstr(why_, fragment))                                                    \
            fail_msg("expected \"%s\" in \"%s\"", fragment, why_);                      \
    } while (0)

static void test_hello_limits(void **state)
{
    (void)state;
    /* Each list at its limit is accepted; one more is malformed, and says which. */
    S_OK(.versions = WIRE_MAX_VERSIONS);
    S_REFUSED("lineage is not an array of at most 100000", .versions = WIRE_MAX_VERSIONS + 1);
    S_OK(.versions = 1, .families = WIRE_MAX_FAMILIES, .heads = 1);
    S_REFUSED("families are not an array of at most 10000", .versions = 1,
              .families = WIRE_MAX_FAMILIES + 1, .heads = 1);
    S_OK(.versions = 1, .families = 1, .heads = 1, .columns = WIRE_MAX_COLUMNS);
    S_REFUSED("columns are not an array of at most 2000", .versions = 1, .families = 1, .heads = 1,
              .columns = WIRE_MAX_COLUMNS + 1);
    S_OK(.versions = 1, .peers = WIRE_MAX_PEERS, .capabilities = WIRE_MAX_CAPABILITIES);
    S_REFUSED("peers are not an array of at most 1024", .versions = 1,
              .peers = WIRE_MAX_PEERS + 1);
    S_REFUSED("capabilities are not an array of at most 64", .versions = 1,
              .capabilities = WIRE_MAX_CAPABILITIES + 1);
    /* A family has a head per version it changed in: never more than the lineage has,
     * and never none. */
    S_OK(.versions = 3, .families = 2, .heads = 3, .columns = 1);
    S_REFUSED("heads are not an array of 1 id to as many as its lineage", .versions = 3,
              .families = 1, .heads = 4);
    S_REFUSED("heads are not an array of 1 id", .versions = 3, .families = 1, .heads = 0,
              .columns = 10);
    /* Versions, heads and columns count together against WIRE_MAX_ITEMS. */
    uint32_t per = 249; /* tables of a head and 2000 columns each */
    uint32_t versions = WIRE_MAX_ITEMS - per * (1 + WIRE_MAX_COLUMNS);
    S_OK(.versions = versions, .families = per, .heads = 1, .columns = WIRE_MAX_COLUMNS);
    S_REFUSED("more than 500000 versions, heads and columns", .versions = versions + 1,
              .families = per, .heads = 1, .columns = WIRE_MAX_COLUMNS);
    /* Two families whose names differ only in case are one table twice. */
    S_REFUSED("a family name comes twice", .versions = 1, .families = 3, .heads = 1,
              .dup_family = "T0");
    /* A count the bytes cannot hold is refused before anything is sized by it. */
    S_REFUSED("HELLO's lineage is malformed", .lie = true);
}

/* The memory one HELLO at WIRE_MAX_ITEMS holds once decoded and judged: the limits are
 * there to bound it (docs/hardening.md, "Size limits"). Measured with mallinfo2, which
 * the sanitizers' allocators do not fill in: there the check is skipped. */
static void test_hello_at_the_item_limit_costs_what_the_docs_say(void **state)
{
    (void)state;
    lineage_t *full = tu_lineage_dir("schemas/tasks");
    /* Versions and heads are the costliest items: a lineage of 100,000 versions and four
     * families with a head at each. */
    s_shape sh = {.versions = WIRE_MAX_VERSIONS, .families = 4, .heads = WIRE_MAX_VERSIONS};
    buf_t msg = s_shaped(&sh);
    struct mallinfo2 before = mallinfo2();
    wire_hello h;
    stm_error err = {0};
    assert_int_equal(stm_wire_decode_hello(msg.data, msg.len, &h, &err), STM_OK);
    peer_policy p;
    stm_config_policy_default(&p);
    peer_verdict v;
    stm_judge_hello(full, h.lineage, &p, &v);
    struct mallinfo2 after = mallinfo2();
    /* Large blocks are mapped (hblkhd), small ones come from the heap (uordblks). */
    size_t used = after.uordblks + after.hblkhd - before.uordblks - before.hblkhd;
    if (after.uordblks != 0) {
        printf("# a HELLO of %zu bytes at the item limit holds %zu bytes decoded and judged\n",
               msg.len, used);
        assert_true(used < (size_t)WIRE_MAX_ITEMS * 130);
    }
    stm_peer_verdict_clear(&v);
    stm_wire_hello_clear(&h);
    stm_buf_free(&msg);
    stm_lineage_destroy(&full);
}

/* A peer's text reaches log lines, reports and terminals: a control character in it
 * (a newline forging a log line, an escape driving the terminal) makes the message
 * malformed. */
static void test_text_with_control_characters_is_refused(void **state)
{
    (void)state;
    stm_error err = {0};
    const char *bad[] = {"tcp://h:1\n2026-01-01T00:00:00.000Z info  started forged",
                         "tcp://h:1\x1b[2J", "tcp://h:1\x7f", "tcp://h:1\r"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        buf_t msg = BUF_INIT;
        stm_wire_encode_refuse(&msg, bad[i]);
        char *reason = NULL;
        assert_int_equal(stm_wire_decode_refuse(msg.data, msg.len, &reason, &err), STM_EPROTO);
        assert_null(reason);
        stm_buf_reset(&msg);
        lineage_t *l = stm_lineage_new("x");
        vector_t *v = stm_vector_new();
        stm_id node = {{4}};
        wu_encode_hello(&msg, &node, bad[i], "", l, v, 0, NULL, 0, false);
        wire_hello h;
        assert_int_equal(stm_wire_decode_hello(msg.data, msg.len, &h, &err), STM_EPROTO);
        assert_non_null(strstr(err.msg, "endpoint"));
        /* A device's name is text of at most WIRE_MAX_NAME bytes, as any is. */
        stm_buf_reset(&msg);
        wu_encode_hello(&msg, &node, "tcp://h:1", bad[i] + 5, l, v, 0, NULL, 0, false);
        assert_int_equal(stm_wire_decode_hello(msg.data, msg.len, &h, &err), STM_EPROTO);
        assert_non_null(strstr(err.msg, "name"));
        stm_vector_destroy(&v);
        stm_lineage_destroy(&l);
        stm_buf_free(&msg);
    }
    char longest[WIRE_MAX_NAME + 2];
    for (int extra = 0; extra < 2; extra++) {
        memset(longest, 'n', sizeof longest);
        longest[WIRE_MAX_NAME + extra] = '\0';
        buf_t msg = BUF_INIT;
        lineage_t *l = stm_lineage_new("x");
        vector_t *v = stm_vector_new();
        stm_id node = {{4}};
        wu_encode_hello(&msg, &node, "tcp://h:1", longest, l, v, 0, NULL, 0, false);
        wire_hello h;
        assert_int_equal(stm_wire_decode_hello(msg.data, msg.len, &h, &err),
                         extra ? STM_EPROTO : STM_OK);
        if (!extra)
            stm_wire_hello_clear(&h);
        stm_vector_destroy(&v);
        stm_lineage_destroy(&l);
        stm_buf_free(&msg);
    }
    /* In a table's or a column's name. */
    s_shape sh = {.versions = 1, .families = 1, .heads = 1, .dup_family = "ta\tsks"};
    char why[1100];
    assert_int_equal(s_decode_shape(&sh, why, sizeof why), STM_EPROTO);
    assert_non_null(strstr(why, "no control character"));
    lineage_t *full = tu_lineage_dir("schemas/tasks");
    buf_t msg = BUF_INIT;
    vector_t *v = stm_vector_new();
    stm_id node = {{4}};
    wu_encode_hello(&msg, &node, "tcp://h:1", "", full, v, 0, NULL, 0, false);
    char *at = NULL;
    for (size_t i = 0; i + 5 <= msg.len && !at; i++)
        if (memcmp(msg.data + i, "title", 5) == 0)
            at = msg.data + i;
    assert_non_null(at);
    at[2] = '\n';
    wire_hello h;
    assert_int_equal(stm_wire_decode_hello(msg.data, msg.len, &h, &err), STM_EPROTO);
    assert_non_null(strstr(err.msg, "no control character"));
    stm_buf_free(&msg);
    stm_vector_destroy(&v);
    stm_lineage_destroy(&full);
}

/* A node checks its own schema against the same limits before it says HELLO with it. */
static void test_own_lineage_is_checked_against_the_limits(void **state)
{
    (void)state;
    stm_error err = {0};
    lineage_t *full = tu_lineage_dir("schemas/tasks");
    assert_int_equal(stm_wire_check_lineage(full, &err), STM_OK);
    stm_lineage_destroy(&full);
    lineage_t *wide = stm_lineage_new("wide");
    stm_id zero = {{0}}, id = {{1}};
    assert_int_equal(stm_lineage_add_version(wide, 1, &id, &zero, &zero, "", &err), STM_OK);
    catalog_table *t = stm_catalog_table_new("w", false);
    char name[32];
    for (int c = 0; c <= WIRE_MAX_COLUMNS; c++) {
        snprintf(name, sizeof name, "c%d", c);
        catalog_column col = {.name = name, .decltype = "TEXT", .affinity = AFFINITY_TEXT};
        stm_catalog_table_add_column(t, &col);
    }
    assert_int_equal(stm_lineage_add_family(wide, stm_family_from_heads("w", &id, 1, t), &err),
                     STM_OK);
    assert_int_equal(stm_wire_check_lineage(wide, &err), STM_EINPUT);
    assert_non_null(strstr(err.msg, "more than 2000 columns in one table"));
    stm_lineage_destroy(&wide);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hello_round_trip),
        cmocka_unit_test(test_hello_carries_lenses),
        cmocka_unit_test(test_hello_truncated_and_damaged),
        cmocka_unit_test(test_header),
        cmocka_unit_test(test_ops_ack_refuse_ping),
        cmocka_unit_test(test_unknown_keys_are_skipped),
        cmocka_unit_test(test_ops_in_parts_and_received),
        cmocka_unit_test(test_hello_lists_the_capabilities),
        cmocka_unit_test(test_long_vectors_are_cut_and_vectors_travel),
        cmocka_unit_test(test_hello_limits),
        cmocka_unit_test(test_hello_at_the_item_limit_costs_what_the_docs_say),
        cmocka_unit_test(test_own_lineage_is_checked_against_the_limits),
        cmocka_unit_test(test_text_with_control_characters_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
