/* Tests of node/parts: a batch sent in parts put together again in order, and every way
 * the parts can fail to make one (out of order, of another batch, not adding up, a new
 * part 0 before the last one) dropped and counted, part by part, with nothing left
 * held. The parts are made by the real encoder and decoder (node/wire.h). */
#include "node/parts.h"
#include "node/wire.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#define BATCH 2500

static char s_batch[BATCH];

/* Part k of batch seq of BATCH bytes cut into parts of `size`, through the wire: the
 * message is kept in *msg (which m's slice points into). */
static wire_ops s_part(buf_t *msg, uint64_t seq, uint64_t k, size_t size)
{
    uint64_t parts = (BATCH + size - 1) / size;
    size_t from = (size_t)k * size, len = BATCH - from < size ? BATCH - from : size;
    stm_buf_reset(msg);
    stm_wire_encode_ops_part(msg, seq, k, parts, BATCH, s_batch + from, len);
    wire_ops m;
    stm_error err = {0};
    if (stm_wire_decode_ops(msg->data, msg->len, &m, &err) != STM_OK)
        fail_msg("%s", err.msg);
    return m;
}

static parts_result s_add(parts_t *a, const wire_ops *m, uint64_t *dropped)
{
    const char *why = "unset";
    parts_result r = stm_parts_add(a, m, dropped, &why);
    if (r == PARTS_DROPPED)
        assert_non_null(why);
    else
        assert_null(why);
    return r;
}

static int setup(void **state)
{
    (void)state;
    for (size_t i = 0; i < BATCH; i++)
        s_batch[i] = (char)(i * 7 + 3);
    return 0;
}

static void test_parts_in_order_make_the_batch(void **state)
{
    (void)state;
    parts_t *a = stm_parts_new();
    buf_t msg = BUF_INIT;
    uint64_t dropped = 99;
    size_t len = 1;
    assert_null(stm_parts_batch(a, &len));
    assert_int_equal(len, 0);
    for (uint64_t k = 0; k < 3; k++) {
        wire_ops m = s_part(&msg, 4, k, 1000);
        parts_result r = s_add(a, &m, &dropped);
        assert_int_equal(dropped, 0);
        assert_int_equal(stm_parts_seq(a), 4);
        assert_int_equal(r, k < 2 ? PARTS_MORE : PARTS_DONE);
        assert_int_equal(stm_parts_received(a), k < 2 ? (k + 1) * 1000 : BATCH);
    }
    const void *whole = stm_parts_batch(a, &len);
    assert_int_equal(len, BATCH);
    assert_memory_equal(whole, s_batch, BATCH);
    /* Handed on: forgotten, and a part after it belongs to no batch. */
    stm_parts_clear(a);
    assert_null(stm_parts_batch(a, &len));
    wire_ops m = s_part(&msg, 4, 2, 1000);
    assert_int_equal(s_add(a, &m, &dropped), PARTS_DROPPED);
    assert_int_equal(dropped, 1);
    /* Another batch starts as the first did. */
    m = s_part(&msg, 5, 0, 2000);
    assert_int_equal(s_add(a, &m, &dropped), PARTS_MORE);
    m = s_part(&msg, 5, 1, 2000);
    assert_int_equal(s_add(a, &m, &dropped), PARTS_DONE);
    assert_memory_equal(stm_parts_batch(a, &len), s_batch, BATCH);
    stm_buf_free(&msg);
    stm_parts_destroy(&a);
    assert_null(a);
    stm_parts_destroy(&a); /* safe twice */
}

/* What breaks an assembly drops it and the part that broke it, counted part by part. */
static void test_parts_that_do_not_fit_are_dropped(void **state)
{
    (void)state;
    parts_t *a = stm_parts_new();
    buf_t msg = BUF_INIT;
    uint64_t dropped = 0;
    size_t len;
    /* Out of order: part 2 after part 0. */
    wire_ops m = s_part(&msg, 1, 0, 1000);
    assert_int_equal(s_add(a, &m, &dropped), PARTS_MORE);
    m = s_part(&msg, 1, 2, 1000);
    assert_int_equal(s_add(a, &m, &dropped), PARTS_DROPPED);
    assert_int_equal(dropped, 2);
    assert_int_equal(stm_parts_received(a), 0);
    /* A part of another batch in the middle of one. */
    m = s_part(&msg, 2, 0, 1000);
    s_add(a, &m, &dropped);
    m = s_part(&msg, 3, 1, 1000);
    assert_int_equal(s_add(a, &m, &dropped), PARTS_DROPPED);
    assert_int_equal(dropped, 2);
    /* The same batch cut otherwise (its sender started again with other parts). */
    m = s_part(&msg, 4, 0, 1000);
    s_add(a, &m, &dropped);
    m = s_part(&msg, 4, 1, 2000);
    assert_int_equal(s_add(a, &m, &dropped), PARTS_DROPPED);
    /* A part 0 before the last part: the unfinished one is dropped, the new one starts. */
    m = s_part(&msg, 5, 0, 1000);
    s_add(a, &m, &dropped);
    m = s_part(&msg, 5, 1, 1000);
    s_add(a, &m, &dropped);
    m = s_part(&msg, 6, 0, 1000);
    assert_int_equal(s_add(a, &m, &dropped), PARTS_MORE);
    assert_int_equal(dropped, 2);
    assert_int_equal(stm_parts_seq(a), 6);
    assert_int_equal(stm_parts_received(a), 1000);
    /* Slices that do not add up to the bytes announced: the last one short, or one
     * running over. Crafted, as no encoder of ours makes them. */
    wire_ops over = m;
    over.part = 1;
    over.batch_len = 1000;
    assert_int_equal(s_add(a, &over, &dropped), PARTS_MORE);
    wire_ops shortlast = over;
    shortlast.part = 2;
    shortlast.batch_len = 400; /* 100 short of 2500 */
    assert_int_equal(s_add(a, &shortlast, &dropped), PARTS_DROPPED);
    assert_int_equal(dropped, 3);
    m = s_part(&msg, 7, 0, 1000);
    s_add(a, &m, &dropped);
    over = m;
    over.part = 1;
    over.batch_len = 1600; /* 2600 of 2500 */
    assert_int_equal(s_add(a, &over, &dropped), PARTS_DROPPED);
    assert_int_equal(dropped, 2);
    assert_null(stm_parts_batch(a, &len));
    stm_buf_free(&msg);
    stm_parts_destroy(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parts_in_order_make_the_batch),
        cmocka_unit_test(test_parts_that_do_not_fit_are_dropped),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
