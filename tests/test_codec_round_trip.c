#define _GNU_SOURCE /* memmem */
/* Tests of sync/codec: operation batches there and back. Every value type, as a value
 * and as a key (1 MiB ones too), keeping its type; row deletes; the dictionaries that
 * write each name and id once; ranges of a batch, appended to what a batch held; a
 * batch that fails to decode leaving the batch it was decoded into as it was. What else
 * a peer may get wrong is in test_codec.c. */
#include "base/buf.h"
#include "sync/codec.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codecutil.h"

static void test_codec_every_value_type(void **state)
{
    (void)state;
    static const unsigned char nul_blob[] = {0, 0, 'a', 0, 0xff, 0};
    static const char nul_text[] = "tab\there\0and after";
    const op_value values[] = {
        cu_null(),
        cu_int(0),
        cu_int(1),
        cu_int(-1),
        cu_int(127),
        cu_int(128),
        cu_int(-32),
        cu_int(-33),
        cu_int(255),
        cu_int(65536),
        cu_int(INT32_MIN),
        cu_int((int64_t)UINT32_MAX + 1),
        cu_int(INT64_MIN),
        cu_int(INT64_MAX),
        cu_real(0.0),
        cu_real(-0.0),
        cu_real(1.5),
        cu_real(-1e-300),
        cu_real(DBL_MAX),
        cu_real(DBL_MIN / 4), /* subnormal */
        cu_real(INFINITY),
        cu_real(-INFINITY),
        cu_real(NAN),
        cu_text("", 0),
        cu_text("x", 1),
        cu_text("grüße, 世界", strlen("grüße, 世界")),
        cu_text(nul_text, sizeof nul_text - 1),
        cu_blob("", 0),
        cu_blob(nul_blob, sizeof nul_blob),
    };
    const size_t nvalues = sizeof values / sizeof values[0];
    opbatch_t *b = stm_opbatch_new();
    uint64_t seq = 1;
    for (size_t i = 0; i < nvalues; i++) {
        /* Each value as a written value, and as a row's key. */
        op_t op = cu_op(1, seq++, "t", cu_int((int64_t)i), "c", "TNIRB"[i % 5], values[i]);
        stm_opbatch_add(b, &op);
        op = cu_op(1, seq++, "t", values[i], "c", 'B', values[nvalues - 1 - i]);
        stm_opbatch_add(b, &op);
    }
    /* 1 MiB values, text and blob, with NULs in them. */
    size_t big = 1024 * 1024;
    unsigned char *bytes = malloc(big);
    cu_seed(7);
    for (size_t i = 0; i < big; i++)
        bytes[i] = (unsigned char)cu_rand();
    op_t op = cu_op(2, 1, "t", cu_int(1), "c", 'B', cu_blob(bytes, big));
    stm_opbatch_add(b, &op);
    op = cu_op(2, 2, "t", cu_text(bytes, big), "c", 'T', cu_text(bytes, big));
    stm_opbatch_add(b, &op);
    size_t len = cu_round_trip(b);
    assert_true(len > 3 * big);
    /* The types survive exactly: an integer stays an integer, 1.0 stays a real. */
    stm_opbatch_clear(b);
    op = cu_op(1, 1, "t", cu_real(1.0), "c", 'R', cu_real(2.0));
    stm_opbatch_add(b, &op);
    buf_t enc = BUF_INIT;
    stm_codec_encode_ops(b, 0, 1, &enc);
    opbatch_t *back = stm_opbatch_new();
    assert_int_equal(stm_codec_decode_ops(enc.data, enc.len, back, NULL), STM_OK);
    assert_int_equal(stm_opbatch_at(back, 0)->pk.type, VALUE_REAL);
    assert_int_equal(stm_opbatch_at(back, 0)->value.type, VALUE_REAL);
    stm_buf_free(&enc);
    stm_opbatch_destroy(&back);
    free(bytes);
    stm_opbatch_destroy(&b);
}

static void test_codec_deletes(void **state)
{
    (void)state;
    opbatch_t *b = stm_opbatch_new();
    op_t op = cu_op(1, 1, "tasks", cu_text("k1", 2), NULL, 0, cu_null());
    stm_opbatch_add(b, &op);
    op = cu_op(1, 2, "tasks", cu_text("k1", 2), "title", 'T', cu_text("again", 5));
    stm_opbatch_add(b, &op);
    op = cu_op(2, 1, "lists", cu_int(INT64_MIN), NULL, 0, cu_null());
    stm_opbatch_add(b, &op);
    op = cu_op(2, 2, "lists", cu_blob("\0", 1), NULL, 0, cu_null());
    stm_opbatch_add(b, &op);
    cu_round_trip(b);
    /* Only deletes: no column is named at all. */
    opbatch_t *dels = stm_opbatch_new();
    stm_opbatch_add(dels, stm_opbatch_at(b, 0));
    stm_opbatch_add(dels, stm_opbatch_at(b, 2));
    cu_round_trip(dels);
    buf_t enc = BUF_INIT;
    stm_codec_encode_ops(dels, 0, 2, &enc);
    opbatch_t *back = stm_opbatch_new();
    assert_int_equal(stm_codec_decode_ops(enc.data, enc.len, back, NULL), STM_OK);
    for (size_t i = 0; i < 2; i++) {
        assert_true(stm_op_is_delete(stm_opbatch_at(back, i)));
        assert_int_equal(stm_opbatch_at(back, i)->affinity, 0);
        assert_int_equal(stm_opbatch_at(back, i)->value.type, VALUE_NULL);
    }
    stm_buf_free(&enc);
    stm_opbatch_destroy(&back);
    stm_opbatch_destroy(&dels);
    stm_opbatch_destroy(&b);
}

/* How often needle occurs in hay. */
static size_t s_occurrences(const buf_t *hay, const void *needle, size_t n)
{
    size_t count = 0;
    for (size_t i = 0; i + n <= hay->len; i++)
        if (memcmp(hay->data + i, needle, n) == 0)
            count++;
    return count;
}

static void test_codec_dictionaries(void **state)
{
    (void)state;
    enum { ORIGINS = 300, TABLES = 200, COLUMNS = 600, OPS = 6000 };
    char tables[TABLES][16], columns[COLUMNS][16];
    for (int i = 0; i < TABLES; i++)
        snprintf(tables[i], sizeof tables[i], "tbl<%d>", i);
    for (int i = 0; i < COLUMNS; i++)
        snprintf(columns[i], sizeof columns[i], "col<%d>", i);
    uint64_t seqs[ORIGINS] = {0};
    opbatch_t *b = stm_opbatch_new();
    cu_seed(12345);
    for (int k = 0; k < OPS; k++) {
        /* Every name at least once, then at random. */
        unsigned o = k < ORIGINS ? (unsigned)k : (unsigned)(cu_rand() % ORIGINS);
        int t = k < TABLES ? k : (int)(cu_rand() % TABLES);
        int c = k < COLUMNS ? k : (int)(cu_rand() % COLUMNS);
        bool del = cu_rand() % 10 == 0 && k >= COLUMNS;
        op_t op = cu_op(o, ++seqs[o], tables[t], cu_int((int64_t)(cu_rand() % 100)),
                        del ? NULL : columns[c], 'T', cu_int(k));
        stm_opbatch_add(b, &op);
    }
    cu_round_trip(b);
    buf_t enc = BUF_INIT;
    stm_codec_encode_ops(b, 0, OPS, &enc);
    /* Each name and id is written once, however many operations use it. */
    for (int i = 0; i < TABLES; i++)
        assert_int_equal(s_occurrences(&enc, tables[i], strlen(tables[i])), 1);
    for (int i = 0; i < COLUMNS; i += 7)
        assert_int_equal(s_occurrences(&enc, columns[i], strlen(columns[i])), 1);
    for (unsigned i = 0; i < ORIGINS; i += 11) {
        stm_id id = cu_id(i);
        assert_int_equal(s_occurrences(&enc, id.bytes, STM_ID_BYTES), 1);
    }
    assert_true(enc.len < (size_t)OPS * 40);
    stm_buf_free(&enc);
    /* Names at the limit travel whole. */
    char name[OP_MAX_NAME_BYTES + 1];
    memset(name, 'n', OP_MAX_NAME_BYTES);
    name[OP_MAX_NAME_BYTES] = '\0';
    stm_opbatch_clear(b);
    op_t op = cu_op(1, 1, name, cu_int(1), name, 'I', cu_int(2));
    stm_opbatch_add(b, &op);
    cu_round_trip(b);
    stm_opbatch_destroy(&b);
}

static void test_codec_ranges_and_appending(void **state)
{
    (void)state;
    opbatch_t *b = stm_opbatch_new();
    for (uint64_t i = 1; i <= 10; i++) {
        op_t op = cu_op(1, i, i % 2 ? "odd" : "even", cu_int((int64_t)i), "c", 'I',
                        cu_int((int64_t)i * 10));
        stm_opbatch_add(b, &op);
    }
    /* Operations [3, 7) alone. */
    buf_t enc = BUF_INIT;
    stm_codec_encode_ops(b, 3, 4, &enc);
    opbatch_t *out = stm_opbatch_new();
    op_t first = cu_op(5, 1, "there", cu_int(0), "before", 'N', cu_real(0.5));
    stm_opbatch_add(out, &first);
    assert_int_equal(stm_codec_decode_ops(enc.data, enc.len, out, NULL), STM_OK);
    /* Appended after what was there. */
    assert_int_equal(stm_opbatch_count(out), 5);
    cu_assert_op_equal(stm_opbatch_at(out, 0), &first);
    for (size_t i = 0; i < 4; i++)
        cu_assert_op_equal(stm_opbatch_at(out, 1 + i), stm_opbatch_at(b, 3 + i));
    /* No operations at all is a valid batch. */
    stm_buf_reset(&enc);
    stm_codec_encode_ops(b, 10, 0, &enc);
    assert_int_equal(stm_codec_decode_ops(enc.data, enc.len, out, NULL), STM_OK);
    assert_int_equal(stm_opbatch_count(out), 5);
    stm_buf_free(&enc);
    stm_opbatch_destroy(&out);
    stm_opbatch_destroy(&b);
}

static void test_codec_decode_failure_leaves_batch_unchanged(void **state)
{
    (void)state;
    opbatch_t *b = cu_sample_batch();
    buf_t enc = BUF_INIT;
    stm_codec_encode_ops(b, 0, stm_opbatch_count(b), &enc);
    /* The out batch already holds operations, one with a big value. */
    opbatch_t *out = stm_opbatch_new(), *before = stm_opbatch_new();
    char *big = calloc(1, 300000);
    op_t op = cu_op(8, 1, "x", cu_int(1), "y", 'B', cu_blob(big, 300000));
    stm_opbatch_add(out, &op);
    stm_opbatch_add(out, stm_opbatch_at(b, 4));
    stm_opbatch_add(before, &op);
    stm_opbatch_add(before, stm_opbatch_at(b, 4));
    free(big);
    /* Corrupt the last operation's affinity: several operations decode before it. */
    /* The last operation is a delete: nil column, nil affinity, nil value. */
    assert_memory_equal(enc.data + enc.len - 3, "\xc0\xc0\xc0", 3);
    enc.data[enc.len - 2] = 'T';
    stm_error err = {0};
    assert_int_equal(stm_codec_decode_ops(enc.data, enc.len, out, &err), STM_EPROTO);
    assert_non_null(strstr(err.msg, "a row delete carries an affinity"));
    cu_assert_batches_equal(out, before);
    /* Without an error buffer, just the code. */
    assert_int_equal(stm_codec_decode_ops(enc.data, enc.len, out, NULL), STM_EPROTO);
    cu_assert_batches_equal(out, before);
    stm_buf_free(&enc);
    stm_opbatch_destroy(&before);
    stm_opbatch_destroy(&out);
    stm_opbatch_destroy(&b);
}

/* Stand-ins (op.h) travel beside the operations, sharing their lists; a batch may hold
 * only stand-ins; a batch without any encodes as before they existed. */
static void test_codec_stand_ins(void **state)
{
    (void)state;
    opbatch_t *b = cu_sample_batch();
    buf_t plain = BUF_INIT;
    stm_codec_encode_ops(b, 0, stm_opbatch_count(b), &plain);
    assert_null(memmem(plain.data, plain.len, "withheld", 8));
    cu_add_sample_withheld(b);
    assert_int_equal(stm_opbatch_withheld_count(b), 2);
    assert_int_equal(stm_opbatch_covered(b), stm_opbatch_count(b) + 8);
    size_t with = cu_round_trip(b);
    assert_true(with > plain.len);
    /* Every stand-in goes with any range of the operations, none of them included. */
    buf_t enc = BUF_INIT;
    stm_codec_encode_ops(b, 0, 0, &enc);
    opbatch_t *out = stm_opbatch_new();
    stm_error err = {0};
    if (stm_codec_decode_ops(enc.data, enc.len, out, &err) != STM_OK)
        fail_msg("%s", err.msg);
    assert_int_equal(stm_opbatch_count(out), 0);
    assert_int_equal(stm_opbatch_withheld_count(out), 2);
    for (size_t i = 0; i < 2; i++)
        cu_assert_withheld_equal(stm_opbatch_withheld_at(out, i), stm_opbatch_withheld_at(b, i));
    /* Where they were read is not sent: a receiver never takes one for its own. */
    assert_false(stm_opbatch_withheld_at(out, 0)->here);
    /* Cleared, a batch forgets its stand-ins too. */
    stm_opbatch_clear(out);
    assert_int_equal(stm_opbatch_withheld_count(out), 0);
    assert_int_equal(stm_opbatch_covered(out), 0);
    stm_buf_free(&enc);
    stm_buf_free(&plain);
    stm_opbatch_destroy(&out);
    stm_opbatch_destroy(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_codec_every_value_type),
        cmocka_unit_test(test_codec_deletes),
        cmocka_unit_test(test_codec_dictionaries),
        cmocka_unit_test(test_codec_ranges_and_appending),
        cmocka_unit_test(test_codec_decode_failure_leaves_batch_unchanged),
        cmocka_unit_test(test_codec_stand_ins),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
