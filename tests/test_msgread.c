/* Tests of sync/msgread: every MessagePack form the reader meets, each read whole, cut
 * short at every byte, refused by every reader of another type, and skipped exactly;
 * lengths and counts beyond the bytes left; the nesting limit of skip.
 *
 * Inputs are copied into buffers of exactly their length (cu_exact), so a read one
 * byte too far shows up under valgrind and ASan. */
#include "sync/msgread.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "codecutil.h"

typedef struct {
    const unsigned char *b; /* the encoding */
    size_t n;               /* its length */
} s_bytes;

#define B(...)                                                                                     \
    {                                                                                              \
        (const unsigned char[]){__VA_ARGS__}, sizeof((const unsigned char[]){__VA_ARGS__})         \
    }

typedef bool (*s_read_fn)(msgread_t *r);

static bool s_rd_nil(msgread_t *r)
{
    return stm_msgread_nil(r);
}

static bool s_rd_bool(msgread_t *r)
{
    bool v;
    return stm_msgread_bool(r, &v);
}

static bool s_rd_int(msgread_t *r)
{
    int64_t v;
    return stm_msgread_int(r, &v);
}

static bool s_rd_uint(msgread_t *r)
{
    uint64_t v;
    return stm_msgread_uint(r, &v);
}

static bool s_rd_double(msgread_t *r)
{
    double v;
    return stm_msgread_double(r, &v);
}

static bool s_rd_str(msgread_t *r)
{
    const char *d;
    uint32_t n;
    return stm_msgread_str(r, &d, &n);
}

static bool s_rd_bin(msgread_t *r)
{
    const void *d;
    uint32_t n;
    return stm_msgread_bin(r, &d, &n);
}

static bool s_rd_array(msgread_t *r)
{
    uint32_t n;
    return stm_msgread_array(r, &n);
}

static bool s_rd_map(msgread_t *r)
{
    uint32_t n;
    return stm_msgread_map(r, &n);
}

/* Every reader but the one for the value's own type (and skip) must refuse it and
 * leave the reader where it was. */
static void s_assert_only(const unsigned char *b, size_t n, s_read_fn own)
{
    static const s_read_fn all[] = {s_rd_nil, s_rd_bool, s_rd_int,   s_rd_double,
                                    s_rd_str, s_rd_bin,  s_rd_array, s_rd_map};
    for (size_t k = 0; k < sizeof all / sizeof all[0]; k++) {
        if (all[k] == own || (own == s_rd_uint && all[k] == s_rd_int))
            continue;
        msgread_t r;
        stm_msgread_init(&r, b, n);
        assert_false(all[k](&r));
        assert_ptr_equal(r.p, b);
    }
}

/* Every proper prefix of a value must be refused by its reader and by skip, leaving
 * the reader where it was. */
static void s_assert_cuts_fail(const unsigned char *b, size_t n, s_read_fn fn)
{
    for (size_t cut = 0; cut < n; cut++) {
        unsigned char *p = cu_exact(b, cut);
        msgread_t r;
        stm_msgread_init(&r, p, cut);
        if (cut == 0)
            assert_int_equal(stm_msgread_peek(&r), MSG_INVALID);
        if (fn(&r))
            fail_msg("a prefix of %zu of %zu bytes was read", cut, n);
        assert_ptr_equal(r.p, p);
        assert_int_equal(stm_msgread_left(&r), cut);
        assert_false(stm_msgread_skip(&r));
        assert_ptr_equal(r.p, p);
        free(p);
    }
}

/* Reads a whole value with fn and with skip: both consume exactly n bytes. */
static void s_assert_whole(const unsigned char *b, size_t n, s_read_fn fn, msg_type type)
{
    unsigned char *p = cu_exact(b, n);
    msgread_t r;
    stm_msgread_init(&r, p, n);
    assert_int_equal(stm_msgread_peek(&r), type);
    assert_true(fn(&r));
    assert_int_equal(stm_msgread_left(&r), 0);
    stm_msgread_init(&r, p, n);
    assert_true(stm_msgread_skip(&r));
    assert_int_equal(stm_msgread_left(&r), 0);
    free(p);
    s_assert_cuts_fail(b, n, fn);
    s_assert_only(b, n, fn);
}

static void test_msgread_peek_every_lead_byte(void **state)
{
    (void)state;
    for (int c = 0; c < 256; c++) {
        msg_type want;
        if (c <= 0x7f || c >= 0xe0 || (c >= 0xcc && c <= 0xd3))
            want = MSG_INT;
        else if (c <= 0x8f || c == 0xde || c == 0xdf)
            want = MSG_MAP;
        else if (c <= 0x9f || c == 0xdc || c == 0xdd)
            want = MSG_ARRAY;
        else if (c <= 0xbf || (c >= 0xd9 && c <= 0xdb))
            want = MSG_STR;
        else if (c == 0xc0)
            want = MSG_NIL;
        else if (c == 0xc1)
            want = MSG_INVALID;
        else if (c == 0xc2 || c == 0xc3)
            want = MSG_BOOL;
        else if (c >= 0xc4 && c <= 0xc6)
            want = MSG_BIN;
        else if (c == 0xca || c == 0xcb)
            want = MSG_FLOAT;
        else
            want = MSG_EXT; /* c7..c9, d4..d8 */
        unsigned char buf[64] = {(unsigned char)c};
        msgread_t r;
        stm_msgread_init(&r, buf, sizeof buf);
        if (stm_msgread_peek(&r) != want)
            fail_msg("peek 0x%02x: %d, expected %d", c, stm_msgread_peek(&r), want);
        /* Followed by zeros, every lead byte either skips or is refused in place. */
        bool ok = stm_msgread_skip(&r);
        if (!ok)
            assert_ptr_equal(r.p, buf);
        else
            assert_true(stm_msgread_left(&r) < sizeof buf);
    }
    msgread_t r;
    stm_msgread_init(&r, "", 0);
    assert_int_equal(stm_msgread_peek(&r), MSG_INVALID);
    assert_int_equal(stm_msgread_left(&r), 0);
    assert_false(stm_msgread_skip(&r));
}

static void test_msgread_nil_bool(void **state)
{
    (void)state;
    s_bytes nil = B(0xc0), f = B(0xc2), t = B(0xc3), never = B(0xc1);
    s_assert_whole(nil.b, nil.n, s_rd_nil, MSG_NIL);
    s_assert_whole(f.b, f.n, s_rd_bool, MSG_BOOL);
    s_assert_whole(t.b, t.n, s_rd_bool, MSG_BOOL);
    msgread_t r;
    bool v = true;
    stm_msgread_init(&r, f.b, f.n);
    assert_true(stm_msgread_bool(&r, &v));
    assert_false(v);
    stm_msgread_init(&r, t.b, t.n);
    assert_true(stm_msgread_bool(&r, &v));
    assert_true(v);
    /* 0xc1 is never used: nothing reads it, nothing skips it. */
    stm_msgread_init(&r, never.b, never.n);
    assert_int_equal(stm_msgread_peek(&r), MSG_INVALID);
    assert_false(stm_msgread_skip(&r));
    assert_false(stm_msgread_nil(&r));
    assert_ptr_equal(r.p, never.b);
}

static void test_msgread_integers(void **state)
{
    (void)state;
    const struct {
        s_bytes b;
        int64_t v;
    } ints[] = {
        {B(0x00), 0},
        {B(0x01), 1},
        {B(0x7f), 127},
        {B(0xff), -1},
        {B(0xe0), -32},
        {B(0xcc, 0x80), 128},
        {B(0xcc, 0xff), 255},
        {B(0xcd, 0x01, 0x00), 256},
        {B(0xcd, 0xff, 0xff), 65535},
        {B(0xce, 0x00, 0x01, 0x00, 0x00), 65536},
        {B(0xce, 0xff, 0xff, 0xff, 0xff), 4294967295},
        {B(0xcf, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00), 4294967296},
        {B(0xcf, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff), INT64_MAX},
        {B(0xd0, 0x7f), 127},
        {B(0xd0, 0x80), -128},
        {B(0xd0, 0xdf), -33},
        {B(0xd1, 0x80, 0x00), -32768},
        {B(0xd1, 0x7f, 0xff), 32767},
        {B(0xd2, 0x80, 0x00, 0x00, 0x00), INT32_MIN},
        {B(0xd2, 0x7f, 0xff, 0xff, 0xff), INT32_MAX},
        {B(0xd2, 0xff, 0xff, 0xff, 0xfe), -2},
        {B(0xd3, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00), INT64_MIN},
        {B(0xd3, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff), INT64_MAX},
        {B(0xd3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff), -1},
        {B(0xd3, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00), -4294967296},
    };
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        const unsigned char *b = ints[i].b.b;
        size_t n = ints[i].b.n;
        s_assert_whole(b, n, s_rd_int, MSG_INT);
        msgread_t r;
        int64_t v = 0;
        stm_msgread_init(&r, b, n);
        assert_true(stm_msgread_int(&r, &v));
        if (v != ints[i].v)
            fail_msg("case %zu: read %lld, expected %lld", i, (long long)v, (long long)ints[i].v);
        uint64_t u = 0;
        stm_msgread_init(&r, b, n);
        if (ints[i].v >= 0) {
            assert_true(stm_msgread_uint(&r, &u));
            assert_true(u == (uint64_t)ints[i].v);
            assert_int_equal(stm_msgread_left(&r), 0);
        } else {
            assert_false(stm_msgread_uint(&r, &u));
            assert_ptr_equal(r.p, b);
        }
    }
}

static void test_msgread_uint64_above_int64_max(void **state)
{
    (void)state;
    const s_bytes big[] = {
        B(0xcf, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00),
        B(0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff),
    };
    for (size_t i = 0; i < 2; i++) {
        msgread_t r;
        int64_t v = 42;
        uint64_t u = 42;
        stm_msgread_init(&r, big[i].b, big[i].n);
        assert_int_equal(stm_msgread_peek(&r), MSG_INT);
        assert_false(stm_msgread_int(&r, &v));
        assert_false(stm_msgread_uint(&r, &u));
        assert_ptr_equal(r.p, big[i].b);
        assert_int_equal(v, 42);
        /* Refused as a value, but well-formed: skip walks over it. */
        assert_true(stm_msgread_skip(&r));
        assert_int_equal(stm_msgread_left(&r), 0);
        s_assert_cuts_fail(big[i].b, big[i].n, s_rd_int);
    }
}

static void test_msgread_floats(void **state)
{
    (void)state;
    s_bytes f32 = B(0xca, 0x3f, 0xc0, 0x00, 0x00);                         /* 1.5f */
    s_bytes f64 = B(0xcb, 0xc0, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00); /* -2.25 */
    s_bytes nan64 = B(0xcb, 0x7f, 0xf8, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01);
    s_bytes inf32 = B(0xca, 0xff, 0x80, 0x00, 0x00);
    s_assert_whole(f32.b, f32.n, s_rd_double, MSG_FLOAT);
    s_assert_whole(f64.b, f64.n, s_rd_double, MSG_FLOAT);
    msgread_t r;
    double d = 0;
    stm_msgread_init(&r, f32.b, f32.n);
    assert_true(stm_msgread_double(&r, &d));
    assert_true(d == 1.5);
    stm_msgread_init(&r, f64.b, f64.n);
    assert_true(stm_msgread_double(&r, &d));
    assert_true(d == -2.25);
    stm_msgread_init(&r, nan64.b, nan64.n);
    assert_true(stm_msgread_double(&r, &d));
    uint64_t bits;
    memcpy(&bits, &d, sizeof bits);
    assert_true(bits == 0x7ff8000000000001ull); /* the payload survives */
    stm_msgread_init(&r, inf32.b, inf32.n);
    assert_true(stm_msgread_double(&r, &d));
    assert_true(isinf(d) && d < 0);
    /* An integer is not a float. */
    s_bytes one = B(0x01);
    stm_msgread_init(&r, one.b, one.n);
    assert_false(stm_msgread_double(&r, &d));
}

/* A str or bin of the given form (lead byte) and length, its body counting up. */
static unsigned char *s_make_body(unsigned char lead, uint32_t len, size_t *n, size_t *hlen)
{
    int lbytes = 0; /* a fix form */
    if (lead == 0xd9 || lead == 0xc4)
        lbytes = 1;
    else if (lead == 0xda || lead == 0xc5)
        lbytes = 2;
    else if (lead == 0xdb || lead == 0xc6)
        lbytes = 4;
    *hlen = 1 + (size_t)lbytes;
    *n = *hlen + len;
    unsigned char *b = malloc(*n);
    b[0] = lbytes ? lead : (unsigned char)(lead | len);
    for (int i = 0; i < lbytes; i++)
        b[1 + i] = (unsigned char)(len >> (8 * (lbytes - 1 - i)));
    for (uint32_t i = 0; i < len; i++)
        b[*hlen + i] = (unsigned char)i;
    return b;
}

static void test_msgread_str_bin_every_form(void **state)
{
    (void)state;
    const struct {
        unsigned char lead;
        uint32_t len;
        bool str;
        bool every_cut; /* short enough to cut everywhere */
    } forms[] = {
        {0xa0, 0, true, true},  {0xa0, 3, true, true},  {0xa0, 31, true, true},
        {0xd9, 0, true, true},  {0xd9, 3, true, true},  {0xd9, 255, true, false},
        {0xda, 0, true, true},  {0xda, 3, true, true},  {0xda, 300, true, false},
        {0xdb, 0, true, true},  {0xdb, 3, true, true},  {0xdb, 70000, true, false},
        {0xc4, 0, false, true}, {0xc4, 3, false, true}, {0xc4, 255, false, false},
        {0xc5, 0, false, true}, {0xc5, 3, false, true}, {0xc5, 300, false, false},
        {0xc6, 0, false, true}, {0xc6, 3, false, true}, {0xc6, 70000, false, false},
    };
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        size_t n, hlen;
        unsigned char *b = s_make_body(forms[i].lead, forms[i].len, &n, &hlen);
        s_read_fn fn = forms[i].str ? s_rd_str : s_rd_bin;
        msgread_t r;
        stm_msgread_init(&r, b, n);
        assert_int_equal(stm_msgread_peek(&r), forms[i].str ? MSG_STR : MSG_BIN);
        const void *data = NULL;
        uint32_t len = 99;
        if (forms[i].str)
            assert_true(stm_msgread_str(&r, (const char **)&data, &len));
        else
            assert_true(stm_msgread_bin(&r, &data, &len));
        assert_ptr_equal(data, b + hlen); /* in place, no copy */
        assert_int_equal(len, forms[i].len);
        assert_int_equal(stm_msgread_left(&r), 0);
        if (forms[i].every_cut) {
            s_assert_whole(b, n, fn, forms[i].str ? MSG_STR : MSG_BIN);
        } else {
            /* The header at every byte, the body at a few. */
            size_t cuts[] = {0, 1, hlen - 1, hlen, hlen + 1, n / 2, n - 1};
            for (size_t k = 0; k < sizeof cuts / sizeof cuts[0]; k++) {
                unsigned char *p = cu_exact(b, cuts[k]);
                stm_msgread_init(&r, p, cuts[k]);
                assert_false(fn(&r));
                assert_false(stm_msgread_skip(&r));
                assert_ptr_equal(r.p, p);
                free(p);
            }
            s_assert_cuts_fail(b, hlen, fn);
        }
        free(b);
    }
}

static void test_msgread_lengths_beyond_the_data(void **state)
{
    (void)state;
    /* Each declares more bytes than follow. */
    const s_bytes liars[] = {
        B(0xa5, 'a', 'b'),
        B(0xd9, 0x03, 'a', 'b'),
        B(0xda, 0xff, 0xff, 'a'),
        B(0xdb, 0xff, 0xff, 0xff, 0xff, 'a', 'b', 'c', 'd'),
        B(0xdb, 0x80, 0x00, 0x00, 0x00),
        B(0xc4, 0x02, 0x00),
        B(0xc5, 0x01, 0x00),
        B(0xc6, 0xff, 0xff, 0xff, 0xff, 0x00),
        B(0xc6, 0x00, 0x00, 0x00, 0x05, 1, 2, 3, 4),
        B(0xd8, 0x01, 1, 2, 3),
        B(0xc7, 0x09, 0x01, 1, 2),
        B(0xc9, 0xff, 0xff, 0xff, 0xff, 0x01, 1),
    };
    for (size_t i = 0; i < sizeof liars / sizeof liars[0]; i++) {
        unsigned char *p = cu_exact(liars[i].b, liars[i].n);
        msgread_t r;
        stm_msgread_init(&r, p, liars[i].n);
        assert_false(s_rd_str(&r));
        assert_false(s_rd_bin(&r));
        assert_false(stm_msgread_skip(&r));
        assert_ptr_equal(r.p, p);
        free(p);
    }
}

static void test_msgread_containers(void **state)
{
    (void)state;
    const struct {
        s_bytes b;
        bool map;
        uint32_t count;
    } ok[] = {
        {B(0x90), false, 0},
        {B(0x93, 0x01, 0xc0, 0xa1, 'x'), false, 3},
        {B(0xdc, 0x00, 0x00), false, 0},
        {B(0xdc, 0x00, 0x02, 0x01, 0x02), false, 2},
        {B(0xdd, 0x00, 0x00, 0x00, 0x00), false, 0},
        {B(0xdd, 0x00, 0x00, 0x00, 0x02, 0xc2, 0xc3), false, 2},
        {B(0x80), true, 0},
        {B(0x81, 0xa1, 'k', 0x05), true, 1},
        {B(0xde, 0x00, 0x01, 0x00, 0x90), true, 1},
        {B(0xdf, 0x00, 0x00, 0x00, 0x02, 0x01, 0x02, 0x03, 0x81, 0x04, 0x05), true, 2},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        s_read_fn fn = ok[i].map ? s_rd_map : s_rd_array;
        unsigned char *p = cu_exact(ok[i].b.b, ok[i].b.n);
        msgread_t r;
        stm_msgread_init(&r, p, ok[i].b.n);
        assert_int_equal(stm_msgread_peek(&r), ok[i].map ? MSG_MAP : MSG_ARRAY);
        uint32_t count = 99;
        assert_true(ok[i].map ? stm_msgread_map(&r, &count) : stm_msgread_array(&r, &count));
        assert_int_equal(count, ok[i].count);
        stm_msgread_init(&r, p, ok[i].b.n);
        assert_true(stm_msgread_skip(&r));
        assert_int_equal(stm_msgread_left(&r), 0);
        free(p);
        /* Cut anywhere, the whole value no longer skips. */
        for (size_t cut = 0; cut < ok[i].b.n; cut++) {
            p = cu_exact(ok[i].b.b, cut);
            stm_msgread_init(&r, p, cut);
            assert_false(stm_msgread_skip(&r));
            assert_ptr_equal(r.p, p);
            free(p);
        }
        /* The header alone, cut inside. */
        size_t hlen = ok[i].b.b[0] == 0xdc || ok[i].b.b[0] == 0xde   ? 3
                      : ok[i].b.b[0] == 0xdd || ok[i].b.b[0] == 0xdf ? 5
                                                                     : 1;
        s_assert_cuts_fail(ok[i].b.b, hlen, fn);
        s_assert_only(ok[i].b.b, ok[i].b.n, fn);
    }
}

static void test_msgread_counts_beyond_the_bytes_left(void **state)
{
    (void)state;
    const struct {
        s_bytes b;
        bool map;
        bool ok;
    } cases[] = {
        /* A count each element of which fits in one byte (two for a map entry)... */
        {B(0x93, 0, 0, 0), false, true},
        {B(0x82, 0, 0, 0, 0), true, true},
        {B(0xdc, 0x00, 0x03, 0, 0, 0), false, true},
        {B(0xde, 0x00, 0x02, 0, 0, 0, 0), true, true},
        /* ...and one more than the bytes left can hold, refused at the header. */
        {B(0x93, 0, 0), false, false},
        {B(0x82, 0, 0, 0), true, false},
        {B(0x9f, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0), false, false},
        {B(0xdc, 0x00, 0x04, 0, 0, 0), false, false},
        {B(0xdc, 0xff, 0xff), false, false},
        {B(0xdd, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0), false, false},
        {B(0xdd, 0x7f, 0xff, 0xff, 0xff), false, false},
        {B(0xde, 0x00, 0x03, 0, 0, 0, 0, 0), true, false},
        {B(0xdf, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0), true, false},
        {B(0xdf, 0x80, 0x00, 0x00, 0x00, 0, 0), true, false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        unsigned char *p = cu_exact(cases[i].b.b, cases[i].b.n);
        msgread_t r;
        stm_msgread_init(&r, p, cases[i].b.n);
        uint32_t count = 12345;
        bool got = cases[i].map ? stm_msgread_map(&r, &count) : stm_msgread_array(&r, &count);
        if (got != cases[i].ok)
            fail_msg("case %zu: %s", i, got ? "accepted" : "refused");
        if (got) {
            assert_true((size_t)count * (cases[i].map ? 2 : 1) <= stm_msgread_left(&r));
        } else {
            assert_ptr_equal(r.p, p);
            assert_int_equal(count, 12345);
            assert_false(stm_msgread_skip(&r));
        }
        free(p);
    }
}

static void test_msgread_ext(void **state)
{
    (void)state;
    const s_bytes exts[] = {
        B(0xd4, 0x01, 0xaa),
        B(0xd5, 0x01, 0xaa, 0xbb),
        B(0xd6, 0xff, 1, 2, 3, 4),
        B(0xd7, 0x01, 1, 2, 3, 4, 5, 6, 7, 8),
        B(0xd8, 0x01, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16),
        B(0xc7, 0x00, 0x01),
        B(0xc7, 0x02, 0x01, 0xaa, 0xbb),
        B(0xc8, 0x00, 0x02, 0x01, 0xaa, 0xbb),
        B(0xc9, 0x00, 0x00, 0x00, 0x01, 0x01, 0xaa),
    };
    for (size_t i = 0; i < sizeof exts / sizeof exts[0]; i++) {
        unsigned char *p = cu_exact(exts[i].b, exts[i].n);
        msgread_t r;
        stm_msgread_init(&r, p, exts[i].n);
        assert_int_equal(stm_msgread_peek(&r), MSG_EXT);
        assert_true(stm_msgread_skip(&r));
        assert_int_equal(stm_msgread_left(&r), 0);
        free(p);
        for (size_t cut = 0; cut < exts[i].n; cut++) {
            p = cu_exact(exts[i].b, cut);
            stm_msgread_init(&r, p, cut);
            assert_false(stm_msgread_skip(&r));
            assert_ptr_equal(r.p, p);
            free(p);
        }
        s_assert_only(exts[i].b, exts[i].n, NULL);
    }
}

static void test_msgread_skip_walks_exactly_one_value(void **state)
{
    (void)state;
    /* {"a": [1, -1, 1.5f, nil, true, bin"xy", ext], "b": {"c": {}}} then 0x07. */
    s_bytes v = B(0x82, 0xa1, 'a', 0x97, 0x01, 0xff, 0xca, 0x3f, 0xc0, 0x00, 0x00, 0xc0, 0xc3, 0xc4,
                  0x02, 'x', 'y', 0xd4, 0x01, 0x02, 0xa1, 'b', 0x81, 0xa1, 'c', 0x80, 0x07);
    msgread_t r;
    stm_msgread_init(&r, v.b, v.n);
    assert_true(stm_msgread_skip(&r));
    assert_int_equal(stm_msgread_left(&r), 1);
    int64_t i;
    assert_true(stm_msgread_int(&r, &i));
    assert_int_equal(i, 7);
    /* A bad byte deep inside makes the whole skip fail, in place. */
    unsigned char bad[64];
    memcpy(bad, v.b, v.n);
    bad[11] = 0xc1; /* the nil inside the array */
    stm_msgread_init(&r, bad, v.n);
    assert_false(stm_msgread_skip(&r));
    assert_ptr_equal(r.p, bad);
}

/* depth containers nested, the innermost holding inner (a scalar or an empty array). */
static unsigned char *s_nested(size_t depth, bool map, unsigned char inner, size_t *n)
{
    unsigned char *b = malloc(depth * 2 + 1);
    size_t k = 0;
    for (size_t d = 0; d < depth; d++) {
        if (map) {
            b[k++] = 0x81; /* {0: ...} */
            b[k++] = 0x00;
        } else {
            b[k++] = 0x91; /* [...] */
        }
    }
    b[k++] = inner;
    *n = k;
    return b;
}

static void test_msgread_skip_depth_limit(void **state)
{
    (void)state;
    for (int map = 0; map < 2; map++) {
        for (int inner = 0; inner < 3; inner++) {
            unsigned char in = inner == 0 ? 0x01 : inner == 1 ? 0x90 : 0x80;
            /* MSGREAD_MAX_DEPTH containers, whatever the innermost holds, skip; one
             * more is refused. Innermost empty containers count as containers. */
            size_t within = MSGREAD_MAX_DEPTH - (inner ? 1 : 0);
            size_t n;
            unsigned char *b = s_nested(within, map, in, &n);
            msgread_t r;
            stm_msgread_init(&r, b, n);
            if (!stm_msgread_skip(&r))
                fail_msg("%zu nested %s holding 0x%02x refused", within, map ? "maps" : "arrays",
                         in);
            assert_int_equal(stm_msgread_left(&r), 0);
            free(b);
            b = s_nested(within + 1, map, in, &n);
            stm_msgread_init(&r, b, n);
            if (stm_msgread_skip(&r))
                fail_msg("%zu nested %s holding 0x%02x skipped", within + 1,
                         map ? "maps" : "arrays", in);
            assert_ptr_equal(r.p, b);
            free(b);
        }
    }
    /* Very deep nesting is refused, not walked until the stack runs out. */
    size_t n;
    unsigned char *b = s_nested(1000000, false, 0x01, &n);
    msgread_t r;
    stm_msgread_init(&r, b, n);
    assert_false(stm_msgread_skip(&r));
    assert_ptr_equal(r.p, b);
    free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_msgread_peek_every_lead_byte),
        cmocka_unit_test(test_msgread_nil_bool),
        cmocka_unit_test(test_msgread_integers),
        cmocka_unit_test(test_msgread_uint64_above_int64_max),
        cmocka_unit_test(test_msgread_floats),
        cmocka_unit_test(test_msgread_str_bin_every_form),
        cmocka_unit_test(test_msgread_lengths_beyond_the_data),
        cmocka_unit_test(test_msgread_containers),
        cmocka_unit_test(test_msgread_counts_beyond_the_bytes_left),
        cmocka_unit_test(test_msgread_ext),
        cmocka_unit_test(test_msgread_skip_walks_exactly_one_value),
        cmocka_unit_test(test_msgread_skip_depth_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
