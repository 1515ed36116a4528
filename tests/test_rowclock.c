/* Tests of sync/rowclock: a row's clocks there and back, the cells of one row change
 * sharing one write, and damaged bytes refused. Inputs that should be refused are
 * copied into buffers of exactly their length, so a read too far shows under ASan. */
#include "sync/rowclock.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

static void test_round_trip_keeps_every_entry(void **state)
{
    (void)state;
    rowclock_t c = {0}, back = {0};
    /* A row change of three cells (one clock, sequences 10-12), a later write of one of
     * them by another origin, a delete and a parked write. */
    stm_rowclock_set(&c, ROWCLOCK_CELL, "id", 1000, 1, 10);
    stm_rowclock_set(&c, ROWCLOCK_CELL, "title", 1000, 1, 11);
    stm_rowclock_set(&c, ROWCLOCK_CELL, "notes", 1000, 1, 12);
    stm_rowclock_set(&c, ROWCLOCK_CELL, "title", 2000, 7, 3);
    stm_rowclock_set(&c, ROWCLOCK_DELETE, NULL, 1500, 2, 99);
    stm_rowclock_set(&c, ROWCLOCK_PARKED, NULL, 2500, 7, 4);
    assert_int_equal(c.count, 5);
    buf_t bytes = BUF_INIT;
    stm_rowclock_encode(&c, &bytes);
    assert_true(stm_rowclock_decode(&back, bytes.data, bytes.len));
    assert_int_equal(back.count, 5);
    const rowclock_entry *title = stm_rowclock_find(&back, ROWCLOCK_CELL, "TITLE");
    assert_non_null(title);
    assert_int_equal(title->hlc, 2000);
    assert_int_equal(title->origin, 7);
    assert_int_equal(title->seq, 3);
    const rowclock_entry *notes = stm_rowclock_find(&back, ROWCLOCK_CELL, "notes");
    assert_int_equal(notes->hlc, 1000);
    assert_int_equal(notes->seq, 12);
    assert_int_equal(stm_rowclock_find(&back, ROWCLOCK_DELETE, NULL)->seq, 99);
    assert_int_equal(stm_rowclock_find(&back, ROWCLOCK_PARKED, NULL)->hlc, 2500);
    assert_null(stm_rowclock_find(&back, ROWCLOCK_CELL, "missing"));
    /* Encoding what was decoded gives the same bytes. */
    buf_t again = BUF_INIT;
    stm_rowclock_encode(&back, &again);
    assert_int_equal(again.len, bytes.len);
    assert_memory_equal(again.data, bytes.data, bytes.len);
    stm_buf_free(&again);
    stm_buf_free(&bytes);
    stm_rowclock_free(&c);
    stm_rowclock_free(&back);
}

static void test_a_row_change_is_one_write(void **state)
{
    (void)state;
    rowclock_t one = {0}, six = {0};
    stm_rowclock_set(&one, ROWCLOCK_CELL, "a", 123456789012345ull, 3, 1000000);
    const char *names[] = {"a", "b", "c", "d", "e", "f"};
    for (int i = 0; i < 6; i++)
        stm_rowclock_set(&six, ROWCLOCK_CELL, names[i], 123456789012345ull, 3,
                         1000000 + (uint64_t)i);
    buf_t b1 = BUF_INIT, b6 = BUF_INIT;
    stm_rowclock_encode(&one, &b1);
    stm_rowclock_encode(&six, &b6);
    /* Five more cells cost a name, a write index and an offset each: 4 bytes. */
    assert_int_equal(b6.len - b1.len, 5 * 4);
    stm_buf_free(&b1);
    stm_buf_free(&b6);
    stm_rowclock_free(&one);
    stm_rowclock_free(&six);
}

static bool s_decodes(const void *data, size_t len)
{
    void *exact = malloc(len ? len : 1);
    memcpy(exact, data, len);
    rowclock_t c = {0};
    bool ok = stm_rowclock_decode(&c, exact, len);
    stm_rowclock_free(&c);
    free(exact);
    return ok;
}

static void test_damaged_bytes_are_refused(void **state)
{
    (void)state;
    rowclock_t c = {0};
    stm_rowclock_set(&c, ROWCLOCK_CELL, "title", 1000, 1, 10);
    stm_rowclock_set(&c, ROWCLOCK_DELETE, NULL, 900, 2, 5);
    buf_t bytes = BUF_INIT;
    stm_rowclock_encode(&c, &bytes);
    assert_true(s_decodes(bytes.data, bytes.len));
    /* Every cut leaves a value half read or an entry missing; a byte more is extra. */
    for (size_t cut = 0; cut < bytes.len; cut++)
        assert_false(s_decodes(bytes.data, cut));
    stm_buf_putc(&bytes, 0x00);
    assert_false(s_decodes(bytes.data, bytes.len));
    /* A write count larger than the bytes, an index past the writes, a key of 3, a
     * name holding a NUL. */
    const unsigned char huge[] = {0xce, 0xff, 0xff, 0xff, 0xff};
    assert_false(s_decodes(huge, sizeof huge));
    const unsigned char fine[] = {0x01, 0x01, 0x01, 0x01, 0x01, 0xa1, 'x', 0x00, 0x00};
    assert_true(s_decodes(fine, sizeof fine));
    const unsigned char bad_index[] = {0x01, 0x01, 0x01, 0x01, 0x01, 0xa1, 'x', 0x05, 0x00};
    assert_false(s_decodes(bad_index, sizeof bad_index));
    const unsigned char bad_key[] = {0x01, 0x01, 0x01, 0x01, 0x01, 0x03, 0x00, 0x00};
    assert_false(s_decodes(bad_key, sizeof bad_key));
    const unsigned char nul_name[] = {0x01, 0x01, 0x01, 0x01, 0x01, 0xa2, 'x', 0x00, 0x00, 0x00};
    assert_false(s_decodes(nul_name, sizeof nul_name));
    stm_buf_free(&bytes);
    stm_rowclock_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_keeps_every_entry),
        cmocka_unit_test(test_a_row_change_is_one_write),
        cmocka_unit_test(test_damaged_bytes_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
