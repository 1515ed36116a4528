/* Tests of node/wire: every mesh message round trips, and every truncated or damaged
 * message is refused cleanly (never a crash, never a leak). */
#include "node/peer.h"
#include "node/wire.h"
#include "lineage/relation.h"
#include "testutil.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

static buf_t s_hello(bool reply)
{
    lineage_t *full = tu_lineage_dir("schemas/tasks");
    lineage_t *v3 = lineage_prefix(full, 3);
    vector_t *v = vector_new();
    stm_id a = {{1}}, b = {{2}}, node = {{9}};
    vector_set(v, &a, 5);
    vector_set(v, &b, 7);
    wire_peer peers[2] = {{.id = a, .endpoint = "tcp://127.0.0.1:7001"},
                          {.id = b, .endpoint = "ipc:///tmp/x.sock"}};
    buf_t msg = BUF_INIT;
    wire_encode_hello(&msg, &node, "tcp://127.0.0.1:7000", v3, v, 2, peers, 2, reply);
    vector_destroy(&v);
    lineage_destroy(&v3);
    lineage_destroy(&full);
    return msg;
}

static void test_hello_round_trip(void **state)
{
    (void)state;
    buf_t msg = s_hello(true);
    wire_hello h;
    stm_error err = {0};
    assert_int_equal(wire_decode_hello(msg.data, msg.len, &h, &err), STM_OK);
    stm_id node = {{9}};
    assert_true(stm_id_equal(&h.node_id, &node));
    assert_string_equal(h.endpoint, "tcp://127.0.0.1:7000");
    assert_string_equal(h.schema_set, "tasks");
    assert_true(h.reply);
    assert_int_equal(h.min_supported_version, 2);
    assert_int_equal(h.npeers, 2);
    assert_string_equal(h.peers[1].endpoint, "ipc:///tmp/x.sock");
    assert_int_equal(vector_count(h.vector), 2);
    /* The lineage it carries compares exactly like the one it was made from. */
    lineage_t *full = tu_lineage_dir("schemas/tasks");
    lineage_t *v3 = lineage_prefix(full, 3);
    comparison_t *c = relation_compare(v3, h.lineage);
    assert_int_equal(c->relation, RELATION_SAME);
    for (size_t i = 0; i < c->nfamilies; i++) {
        assert_int_equal(c->families[i].relation, RELATION_SAME);
        assert_int_equal(c->families[i].ncolumns[COLUMN_LOCAL_ONLY], 0);
        assert_int_equal(c->families[i].ncolumns[COLUMN_REMOTE_ONLY], 0);
        assert_int_equal(c->families[i].ncolumns[COLUMN_CONFLICTING], 0);
    }
    comparison_destroy(&c);
    comparison_t *c4 = relation_compare(full, h.lineage);
    assert_int_equal(c4->relation, RELATION_DESCENDANT);
    comparison_destroy(&c4);
    /* And a peer judges it as the docs say. */
    peer_policy p;
    peer_policy_default(&p);
    peer_verdict v;
    peer_judge(full, h.lineage, &p, &v);
    assert_int_equal(v.sync, PEER_SYNC_FULL);
    assert_non_null(strstr(v.reason, "this node is newer (v4 against v3)"));
    peer_verdict_clear(&v);
    p.min_supported_version = 4;
    peer_judge(full, h.lineage, &p, &v);
    assert_int_equal(v.sync, PEER_SYNC_REFUSED);
    assert_non_null(strstr(v.reason, "older than min_supported_version 4"));
    peer_verdict_clear(&v);
    peer_policy_default(&p);
    p.max_version_gap = 0;
    lineage_t *v1 = lineage_prefix(full, 1);
    p.max_version_gap = 2;
    peer_judge(full, v1, &p, &v);
    assert_non_null(strstr(v.warning, "recommend a resync"));
    peer_verdict_clear(&v);
    lineage_destroy(&v1);
    lineage_destroy(&v3);
    lineage_destroy(&full);
    wire_hello_clear(&h);
    buf_free(&msg);
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
        assert_int_not_equal(wire_decode_hello(copy, len, &h, &err), STM_OK);
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
        if (wire_decode_hello(copy, msg.len, &h, &err) == STM_OK)
            wire_hello_clear(&h);
        free(copy);
    }
    buf_free(&msg);
}

static void test_header(void **state)
{
    (void)state;
    int version, type;
    stm_error err = {0};
    assert_int_equal(wire_header("STM", 3, &version, &type, &err), STM_EPROTO);
    assert_int_equal(wire_header("XXXX\x01\x01", 6, &version, &type, &err), STM_EPROTO);
    assert_non_null(strstr(err.msg, "wrong magic"));
    assert_int_equal(wire_header("STMW\x09\x4d", 6, &version, &type, &err), STM_OK);
    assert_int_equal(version, 9);
    assert_int_equal(type, 77);
    /* A message of another version or type is not decoded as a HELLO. */
    buf_t msg = s_hello(false);
    msg.data[4] = 2;
    wire_hello h;
    assert_int_equal(wire_decode_hello(msg.data, msg.len, &h, &err), STM_EPROTO);
    msg.data[4] = 1;
    msg.data[5] = WIRE_OPS;
    assert_int_equal(wire_decode_hello(msg.data, msg.len, &h, &err), STM_EPROTO);
    buf_free(&msg);
}

static void test_ops_ack_refuse_ping(void **state)
{
    (void)state;
    stm_error err = {0};
    buf_t msg = BUF_INIT;
    wire_encode_ops(&msg, 42, "batch-bytes", 11);
    uint64_t seq;
    const void *batch;
    size_t batch_len;
    assert_int_equal(wire_decode_ops(msg.data, msg.len, &seq, &batch, &batch_len, &err), STM_OK);
    assert_int_equal(seq, 42);
    assert_int_equal(batch_len, 11);
    assert_memory_equal(batch, "batch-bytes", 11);
    for (size_t len = 0; len < msg.len; len++)
        assert_int_not_equal(wire_decode_ops(msg.data, len, &seq, &batch, &batch_len, &err),
                             STM_OK);
    buf_reset(&msg);
    vector_t *v = vector_new(), *back = NULL;
    stm_id a = {{3}};
    vector_set(v, &a, 11);
    wire_encode_ack(&msg, 7, v);
    assert_int_equal(wire_decode_ack(msg.data, msg.len, &seq, &back, &err), STM_OK);
    assert_int_equal(seq, 7);
    assert_int_equal(vector_get(back, &a), 11);
    vector_destroy(&back);
    for (size_t len = 0; len < msg.len; len++) {
        assert_int_not_equal(wire_decode_ack(msg.data, len, &seq, &back, &err), STM_OK);
        assert_null(back);
    }
    vector_destroy(&v);
    buf_reset(&msg);
    wire_encode_refuse(&msg, "unrelated schema histories");
    char *reason = NULL;
    assert_int_equal(wire_decode_refuse(msg.data, msg.len, &reason, &err), STM_OK);
    assert_string_equal(reason, "unrelated schema histories");
    free(reason);
    for (size_t len = 0; len < msg.len; len++) {
        assert_int_not_equal(wire_decode_refuse(msg.data, len, &reason, &err), STM_OK);
        assert_null(reason);
    }
    buf_reset(&msg);
    wire_encode_empty(&msg, WIRE_PING);
    int version, type;
    assert_int_equal(wire_header(msg.data, msg.len, &version, &type, &err), STM_OK);
    assert_int_equal(type, WIRE_PING);
    buf_free(&msg);
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
    buf_append(&msg, "STMW\x01\x03", 6);
    buf_append(&msg, body, sizeof body);
    uint64_t seq;
    const void *batch;
    size_t batch_len;
    stm_error err = {0};
    assert_int_equal(wire_decode_ops(msg.data, msg.len, &seq, &batch, &batch_len, &err), STM_OK);
    assert_int_equal(seq, 5);
    assert_int_equal(batch_len, 1);
    buf_free(&msg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hello_round_trip),
        cmocka_unit_test(test_hello_truncated_and_damaged),
        cmocka_unit_test(test_header),
        cmocka_unit_test(test_ops_ack_refuse_ping),
        cmocka_unit_test(test_unknown_keys_are_skipped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
