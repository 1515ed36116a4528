/* Tests of node/choose: buckets by the leading bits ids share; one pick per bucket, the
 * farther bucket first, the same picks for the same knowledge and different ones for
 * different nodes; and the property the sparse mesh rests on: nodes that each pick about
 * log2 of the others this way form a connected mesh, in which no node is picked by many
 * more than its share. */
#include "node/choose.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* An id whose first bytes are b0, b1, the rest zero. */
static stm_id s_id2(unsigned char b0, unsigned char b1)
{
    stm_id id = {{0}};
    id.bytes[0] = b0;
    id.bytes[1] = b1;
    return id;
}

static void test_buckets_count_the_leading_bits_shared(void **state)
{
    (void)state;
    stm_id self = s_id2(0, 0);
    assert_int_equal(stm_choose_bucket(&self, &self), CHOOSE_SAME);
    stm_id o = s_id2(0x80, 0);
    assert_int_equal(stm_choose_bucket(&self, &o), 0);
    o = s_id2(0xff, 0xff);
    assert_int_equal(stm_choose_bucket(&self, &o), 0);
    o = s_id2(0x40, 0);
    assert_int_equal(stm_choose_bucket(&self, &o), 1);
    o = s_id2(0x01, 0);
    assert_int_equal(stm_choose_bucket(&self, &o), 7);
    o = s_id2(0, 0x80);
    assert_int_equal(stm_choose_bucket(&self, &o), 8);
    o = s_id2(0, 0);
    o.bytes[31] = 1;
    assert_int_equal(stm_choose_bucket(&self, &o), 255);
    /* Symmetric. */
    stm_id a = s_id2(0x12, 0x34), b = s_id2(0x13, 0x00);
    assert_int_equal(stm_choose_bucket(&a, &b), stm_choose_bucket(&b, &a));
}

static int s_bucket_of(const stm_id *self, const stm_id *cand, size_t pick)
{
    return stm_choose_bucket(self, &cand[pick]);
}

static void test_one_per_bucket_the_farther_first(void **state)
{
    (void)state;
    stm_id self = s_id2(0, 0);
    stm_id cand[] = {s_id2(0xc0, 0), s_id2(0x20, 0), s_id2(0x81, 0), s_id2(0x60, 0),
                     s_id2(0x80, 5), s_id2(0x40, 0), self};
    size_t picks[8], again[8];
    /* Bucket 0, then 1 (0x40 or 0x60), then 2 (0x20). */
    assert_int_equal(stm_choose_pick(&self, NULL, 0, cand, 7, 3, picks), 3);
    assert_int_equal(s_bucket_of(&self, cand, picks[0]), 0);
    assert_int_equal(s_bucket_of(&self, cand, picks[1]), 1);
    assert_int_equal(picks[2], 1);
    /* The same knowledge, the same picks. */
    assert_int_equal(stm_choose_pick(&self, NULL, 0, cand, 7, 3, again), 3);
    assert_memory_equal(picks, again, 3 * sizeof *picks);
    /* A peer kept in bucket 0 already: buckets 1 and 2 first, then bucket 0. */
    stm_id have = s_id2(0xff, 0);
    assert_int_equal(stm_choose_pick(&self, &have, 1, cand, 7, 3, picks), 3);
    assert_int_equal(s_bucket_of(&self, cand, picks[0]), 1);
    assert_int_equal(picks[1], 1);
    assert_int_equal(s_bucket_of(&self, cand, picks[2]), 0);
    /* Every bucket covered once: the second in the farthest next. */
    assert_int_equal(stm_choose_pick(&self, NULL, 0, cand, 7, 5, picks), 5);
    assert_int_equal(s_bucket_of(&self, cand, picks[3]), 0);
    assert_int_equal(s_bucket_of(&self, cand, picks[4]), 1);
    /* Never itself, and no more than there are. */
    assert_int_equal(stm_choose_pick(&self, NULL, 0, cand, 7, 8, picks), 6);
    for (size_t i = 0; i < 6; i++)
        assert_int_not_equal(picks[i], 6);
    assert_int_equal(stm_choose_pick(&self, NULL, 0, cand, 0, 3, picks), 0);
}

/* Two nodes whose ids differ only past the bits that sort the candidates into buckets
 * pick differently in a bucket of many: a hash of both ids ranks them. */
static void test_nodes_pick_differently_in_one_bucket(void **state)
{
    (void)state;
    stm_id cand[16];
    for (size_t i = 0; i < 16; i++)
        cand[i] = s_id2(0x80, (unsigned char)(i * 16));
    size_t differ = 0;
    for (unsigned char low = 0; low < 32; low++) {
        stm_id a = s_id2(0, low), b = s_id2(0, (unsigned char)(low + 32));
        size_t pa, pb;
        assert_int_equal(stm_choose_pick(&a, NULL, 0, cand, 16, 1, &pa), 1);
        assert_int_equal(stm_choose_pick(&b, NULL, 0, cand, 16, 1, &pb), 1);
        differ += pa != pb;
    }
    assert_true(differ >= 16); /* by chance alone, 30 of 32 */
}

/* n pseudo-random ids from seed (a fixed generator: the same on every machine). */
static void s_ids(stm_id *ids, size_t n, uint64_t seed)
{
    uint64_t x = seed * 0x9e3779b97f4a7c15u + 1;
    for (size_t i = 0; i < n; i++)
        for (size_t b = 0; b < sizeof ids[i].bytes; b++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            ids[i].bytes[b] = (unsigned char)(x >> 32);
        }
}

static size_t s_ceil_log2(size_t n)
{
    size_t b = 0;
    while (((size_t)1 << b) < n)
        b++;
    return b;
}

/* Every node knows all others and picks ceil(log2(n - 1)) of them: the links (either
 * way) connect all n, and no node is picked by more than 3 times that. */
static void test_random_meshes_are_connected(void **state)
{
    (void)state;
    static const size_t sizes[] = {2, 3, 5, 8, 12, 16, 64, 200};
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
        size_t n = sizes[si], k = s_ceil_log2(n - 1) ? s_ceil_log2(n - 1) : 1;
        for (uint64_t seed = 1; seed <= 20; seed++) {
            stm_id *ids = calloc(n, sizeof *ids), *others = calloc(n, sizeof *others);
            unsigned char *link = calloc(n * n, 1);
            size_t *picked = calloc(n, sizeof *picked), *picks = calloc(k, sizeof *picks);
            size_t *at = calloc(n, sizeof *at);
            s_ids(ids, n, seed);
            for (size_t i = 0; i < n; i++) {
                size_t m = 0;
                for (size_t j = 0; j < n; j++)
                    if (j != i)
                        at[m] = j, others[m++] = ids[j];
                size_t got = stm_choose_pick(&ids[i], NULL, 0, others, m, k, picks);
                assert_int_equal(got, k < m ? k : m);
                for (size_t p = 0; p < got; p++) {
                    size_t j = at[picks[p]];
                    link[i * n + j] = link[j * n + i] = 1;
                    picked[j]++;
                }
            }
            /* Reached from node 0 through the links. */
            size_t *queue = calloc(n, sizeof *queue), head = 0, tail = 0;
            unsigned char *seen = calloc(n, 1);
            seen[0] = 1;
            queue[tail++] = 0;
            while (head < tail) {
                size_t i = queue[head++];
                for (size_t j = 0; j < n; j++)
                    if (link[i * n + j] && !seen[j])
                        seen[j] = 1, queue[tail++] = j;
            }
            if (tail != n)
                fail_msg("%zu nodes, seed %llu: only %zu reached", n, (unsigned long long)seed,
                         tail);
            for (size_t j = 0; j < n; j++)
                if (picked[j] > 3 * k)
                    fail_msg("%zu nodes, seed %llu: one picked by %zu, over 3 x %zu", n,
                             (unsigned long long)seed, picked[j], k);
            free(ids), free(others), free(link), free(picked), free(picks), free(at);
            free(queue), free(seen);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buckets_count_the_leading_bits_shared),
        cmocka_unit_test(test_one_per_bucket_the_farther_first),
        cmocka_unit_test(test_nodes_pick_differently_in_one_bucket),
        cmocka_unit_test(test_random_meshes_are_connected),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
