/* Tests of sync/vector: version vectors set and read, there and back, and every way a
 * peer's vector can be wrong (cut short, entries malformed, origins repeated or out of
 * order, more entries than the limit); the largest vector decoded as fast in the worst
 * order as in the best.
 *
 * Inputs that should be refused are copied into buffers of exactly their length
 * (cu_exact), so a read one byte too far shows up under valgrind and ASan. */
#include "base/buf.h"
#include "sync/vector.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codecutil.h"

static void s_assert_vectors_equal(const vector_t *a, const vector_t *b)
{
    assert_int_equal(stm_vector_count(a), stm_vector_count(b));
    for (size_t i = 0; i < stm_vector_count(a); i++) {
        assert_memory_equal(stm_vector_at(a, i)->origin.bytes, stm_vector_at(b, i)->origin.bytes,
                            STM_ID_BYTES);
        assert_true(stm_vector_at(a, i)->seq == stm_vector_at(b, i)->seq);
    }
}

static void test_vector_set_get(void **state)
{
    (void)state;
    vector_t *v = stm_vector_new();
    assert_int_equal(stm_vector_count(v), 0);
    stm_id a = cu_id(1), b = cu_id(2), c = cu_id(3);
    assert_int_equal(stm_vector_get(v, &a), 0);
    stm_vector_set(v, &c, 30);
    stm_vector_set(v, &a, 10);
    stm_vector_set(v, &b, 20);
    stm_vector_set(v, &a, 11); /* replaces */
    assert_int_equal(stm_vector_count(v), 3);
    assert_int_equal(stm_vector_get(v, &a), 11);
    assert_int_equal(stm_vector_get(v, &b), 20);
    assert_int_equal(stm_vector_get(v, &c), 30);
    /* Kept in order of origin bytes. */
    for (size_t i = 1; i < stm_vector_count(v); i++)
        assert_true(memcmp(stm_vector_at(v, i - 1)->origin.bytes, stm_vector_at(v, i)->origin.bytes,
                           STM_ID_BYTES) < 0);
    stm_vector_destroy(&v);
    assert_null(v);
    stm_vector_destroy(&v);
}

static vector_t *s_random_vector(size_t n)
{
    vector_t *v = stm_vector_new();
    for (size_t i = 0; i < n; i++) {
        stm_id id;
        for (int k = 0; k < STM_ID_BYTES; k++)
            id.bytes[k] = (unsigned char)cu_rand();
        uint64_t seq = i == 0   ? 0
                       : i == 1 ? (uint64_t)INT64_MAX
                                : cu_rand() >> (cu_rand() % 63 + 1);
        stm_vector_set(v, &id, seq);
    }
    return v;
}

static void test_vector_round_trip(void **state)
{
    (void)state;
    cu_seed(99);
    size_t sizes[] = {0, 1, 2, 1000};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        vector_t *v = s_random_vector(sizes[s]);
        buf_t enc = BUF_INIT;
        stm_vector_encode(v, &enc);
        vector_t *back = NULL;
        stm_error err = {0};
        if (stm_vector_decode(enc.data, enc.len, &back, &err) != STM_OK)
            fail_msg("%s", err.msg);
        s_assert_vectors_equal(v, back);
        stm_vector_destroy(&back);
        stm_buf_free(&enc);
        stm_vector_destroy(&v);
    }
}

static void s_assert_vector_refused(const void *data, size_t len, const char *what)
{
    unsigned char *p = cu_exact(data, len);
    vector_t *v = NULL;
    stm_error err = {0};
    stm_err rc = stm_vector_decode(p, len, &v, &err);
    free(p);
    if (rc != STM_EPROTO)
        fail_msg("expected refusal (%s), got %d", what ? what : "any", rc);
    assert_null(v);
    assert_non_null(strstr(err.msg, "malformed version vector"));
    if (what && !strstr(err.msg, what))
        fail_msg("expected \"%s\" in \"%s\"", what, err.msg);
}

static void test_vector_malformed(void **state)
{
    (void)state;
    cu_seed(5);
    vector_t *v = s_random_vector(5);
    buf_t enc = BUF_INIT;
    stm_vector_encode(v, &enc);
    /* Every truncation. */
    for (size_t cut = 0; cut < enc.len; cut++)
        s_assert_vector_refused(enc.data, cut, NULL);
    /* Bytes after it. */
    stm_buf_append(&enc, "\xc0", 1);
    s_assert_vector_refused(enc.data, enc.len, "bytes follow");
    stm_buf_free(&enc);
    stm_vector_destroy(&v);

    static const struct {
        const char *name;
        cu_field entry[8];
        const char *what;
    } cases[] = {
        {"entry of one field", {BIN(ID_A), END}, "[bin32, uint]"},
        {"origin of 31 bytes", {{F_BIN, 0, 0, ID_A, 31}, U(1), END}, "[bin32, uint]"},
        {"origin as str", {STR(ID_A), U(1), END}, "[bin32, uint]"},
        {"seq negative", {BIN(ID_A), I(-1), END}, "[bin32, uint]"},
        {"seq above INT64_MAX", {BIN(ID_A), U(1ull << 63), END}, "[bin32, uint]"},
        {"seq a string", {BIN(ID_A), STR("1"), END}, "[bin32, uint]"},
        {"seq a float", {BIN(ID_A), REAL(1.0), END}, "[bin32, uint]"},
        {"extra field 0xc1", {BIN(ID_A), U(1), RAW("\xc1"), END}, "extra field"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        print_message("  %s\n", cases[i].name);
        buf_t b = BUF_INIT;
        msgpack_packer pk;
        cu_packer(&pk, &b);
        msgpack_pack_array(&pk, 1);
        cu_pack_array(&pk, cases[i].entry);
        s_assert_vector_refused(b.data, b.len, cases[i].what);
        stm_buf_free(&b);
    }
    s_assert_vector_refused("\x81\x01\x02", 3, "not an array");
    s_assert_vector_refused("\x91\x01", 2, "entry 0");
    s_assert_vector_refused("\xdd\xff\xff\xff\xff\x90", 6, NULL);
    s_assert_vector_refused("", 0, NULL);

    /* The same origin twice, or origins out of order: which entry would count? */
    buf_t b = BUF_INIT;
    msgpack_packer pk;
    cu_packer(&pk, &b);
    static const cu_field a1[] = {BIN(ID_A), U(1), END}, a2[] = {BIN(ID_A), U(2), END},
                          b1[] = {BIN(ID_B), U(1), END};
    msgpack_pack_array(&pk, 2);
    cu_pack_array(&pk, a1);
    cu_pack_array(&pk, a2);
    s_assert_vector_refused(b.data, b.len, "order");
    stm_buf_reset(&b);
    msgpack_pack_array(&pk, 2);
    cu_pack_array(&pk, b1);
    cu_pack_array(&pk, a1);
    s_assert_vector_refused(b.data, b.len, "order");
    /* In order, with extra fields in an entry: fine. */
    static const cu_field a_extra[] = {BIN(ID_A), U(3), STR("later"), MAP, END};
    stm_buf_reset(&b);
    msgpack_pack_array(&pk, 2);
    cu_pack_array(&pk, a_extra);
    cu_pack_array(&pk, b1);
    vector_t *got = NULL;
    stm_error err = {0};
    if (stm_vector_decode(b.data, b.len, &got, &err) != STM_OK)
        fail_msg("%s", err.msg);
    assert_int_equal(stm_vector_count(got), 2);
    stm_id ida;
    memcpy(ida.bytes, ID_A, 32);
    assert_int_equal(stm_vector_get(got, &ida), 3);
    stm_vector_destroy(&got);
    stm_buf_free(&b);
}

/* n entries, origins counting up (or down), as an encoder would write them. */
static void s_pack_vector_entries(buf_t *b, size_t n, bool descending)
{
    msgpack_packer pk;
    cu_packer(&pk, b);
    msgpack_pack_array(&pk, n);
    for (size_t i = 0; i < n; i++) {
        size_t k = descending ? n - 1 - i : i;
        unsigned char id[STM_ID_BYTES] = {0};
        for (int j = 0; j < 4; j++)
            id[j] = (unsigned char)(k >> (8 * (3 - j)));
        msgpack_pack_array(&pk, 2);
        msgpack_pack_bin_with_body(&pk, id, STM_ID_BYTES);
        msgpack_pack_uint64(&pk, k);
    }
}

static void test_vector_entry_limit(void **state)
{
    (void)state;
    buf_t b = BUF_INIT;
    s_pack_vector_entries(&b, VECTOR_MAX_ENTRIES, false);
    vector_t *v = NULL;
    stm_error err = {0};
    clock_t start = clock();
    if (stm_vector_decode(b.data, b.len, &v, &err) != STM_OK)
        fail_msg("%s", err.msg);
    assert_int_equal(stm_vector_count(v), VECTOR_MAX_ENTRIES);
    stm_vector_destroy(&v);
    stm_buf_reset(&b);
    s_pack_vector_entries(&b, VECTOR_MAX_ENTRIES + 1, false);
    s_assert_vector_refused(b.data, b.len, "at most");
    /* The largest vector in the worst order costs no more than in the best: a peer
     * cannot make decoding quadratic. */
    stm_buf_reset(&b);
    s_pack_vector_entries(&b, VECTOR_MAX_ENTRIES, true);
    s_assert_vector_refused(b.data, b.len, "order");
    double secs = (double)(clock() - start) / CLOCKS_PER_SEC;
    if (secs > 5)
        fail_msg("decoding took %.1f s", secs);
    stm_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vector_set_get),
        cmocka_unit_test(test_vector_round_trip),
        cmocka_unit_test(test_vector_malformed),
        cmocka_unit_test(test_vector_entry_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
