/* Tests of sync/msgread, sync/codec, sync/vector and sync/op: every MessagePack form the
 * reader meets, operation batches and version vectors there and back, and every way a
 * peer's bytes can be wrong (cut short, flipped, lying about lengths, out of range).
 *
 * Inputs that should be refused are copied into buffers of exactly their length, so a
 * read one byte too far shows up under valgrind and ASan. */
#include "base/buf.h"
#include "sync/codec.h"
#include "sync/msgread.h"
#include "sync/vector.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <float.h>
#include <math.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- helpers ---- */

/* A seeded xorshift generator: the same "random" inputs on every run. */
static uint64_t s_rng;

static uint64_t s_rand(void)
{
    s_rng ^= s_rng << 13;
    s_rng ^= s_rng >> 7;
    s_rng ^= s_rng << 17;
    return s_rng;
}

/* A heap copy of len bytes of data in a block of exactly len bytes. */
static unsigned char *s_exact(const void *data, size_t len)
{
    unsigned char *p = malloc(len ? len : 1);
    if (len)
        memcpy(p, data, len);
    return p;
}

static int s_buf_write(void *data, const char *bytes, size_t len)
{
    stm_buf_append(data, bytes, len);
    return 0;
}

static void s_packer(msgpack_packer *pk, buf_t *b)
{
    msgpack_packer_init(pk, b, s_buf_write);
}

static stm_id s_id(unsigned n)
{
    stm_id id;
    memset(&id, 0, sizeof id);
    for (int i = 0; i < 4; i++)
        id.bytes[i] = (unsigned char)(n >> (8 * i));
    id.bytes[STM_ID_BYTES - 1] = 0xa5;
    return id;
}

static op_value s_null(void)
{
    op_value v = {VALUE_NULL, 0, 0, NULL, 0};
    return v;
}

static op_value s_int(int64_t i)
{
    op_value v = {VALUE_INTEGER, i, 0, NULL, 0};
    return v;
}

static op_value s_real(double r)
{
    op_value v = {VALUE_REAL, 0, r, NULL, 0};
    return v;
}

static op_value s_text(const void *p, size_t len)
{
    op_value v = {VALUE_TEXT, 0, 0, p, len};
    return v;
}

static op_value s_blob(const void *p, size_t len)
{
    op_value v = {VALUE_BLOB, 0, 0, p, len};
    return v;
}

/* A cell write (column given) or a row delete (column NULL). */
static op_t s_op(unsigned origin, uint64_t seq, const char *table, op_value pk, const char *column,
                 char affinity, op_value value)
{
    op_t op;
    memset(&op, 0, sizeof op);
    op.origin = s_id(origin);
    op.seq = seq;
    op.hlc = (uint64_t)1700000000000 << 16 | seq;
    op.version_id = s_id(1000 + origin % 3);
    op.table = table;
    op.pk = pk;
    op.column = column;
    op.affinity = column ? affinity : 0;
    op.value = column ? value : s_null();
    return op;
}

static void s_assert_op_equal(const op_t *a, const op_t *b)
{
    assert_memory_equal(a->origin.bytes, b->origin.bytes, STM_ID_BYTES);
    assert_memory_equal(a->version_id.bytes, b->version_id.bytes, STM_ID_BYTES);
    assert_true(a->seq == b->seq);
    assert_true(a->hlc == b->hlc);
    assert_string_equal(a->table, b->table);
    if (a->column || b->column) {
        assert_non_null(a->column);
        assert_non_null(b->column);
        assert_string_equal(a->column, b->column);
    }
    assert_int_equal(a->affinity, b->affinity);
    assert_true(stm_op_value_equal(&a->pk, &b->pk));
    assert_true(stm_op_value_equal(&a->value, &b->value));
}

static void s_assert_batches_equal(const opbatch_t *a, const opbatch_t *b)
{
    assert_int_equal(stm_opbatch_count(a), stm_opbatch_count(b));
    for (size_t i = 0; i < stm_opbatch_count(a); i++)
        s_assert_op_equal(stm_opbatch_at(a, i), stm_opbatch_at(b, i));
}

/* Encodes b whole, decodes it into a new batch and checks they are the same; returns
 * the encoding's length. */
static size_t s_round_trip(const opbatch_t *b)
{
    buf_t enc = BUF_INIT;
    stm_codec_encode_ops(b, 0, stm_opbatch_count(b), &enc);
    opbatch_t *back = stm_opbatch_new();
    stm_error err = {0};
    if (stm_codec_decode_ops(enc.data, enc.len, back, &err) != STM_OK)
        fail_msg("round trip: %s", err.msg);
    s_assert_batches_equal(b, back);
    stm_opbatch_destroy(&back);
    size_t len = enc.len;
    stm_buf_free(&enc);
    return len;
}

/* Decodes data (copied to an exact buffer) into out; returns the code. */
static stm_err s_decode(const void *data, size_t len, opbatch_t *out, stm_error *err)
{
    unsigned char *p = s_exact(data, len);
    stm_err rc = stm_codec_decode_ops(p, len, out, err);
    free(p);
    return rc;
}

/* Expects data to be refused with STM_EPROTO and a message containing what (when not
 * NULL), leaving a batch that held one operation as it was. */
static void s_assert_refused(const void *data, size_t len, const char *what)
{
    opbatch_t *out = stm_opbatch_new();
    char pk[] = "keep";
    op_t keep = s_op(9, 1, "kept", s_text(pk, 4), "c", 'T', s_int(1));
    stm_opbatch_add(out, &keep);
    stm_error err = {0};
    stm_err rc = s_decode(data, len, out, &err);
    if (rc != STM_EPROTO)
        fail_msg("expected refusal (%s), got %d: %s", what ? what : "any", rc, err.msg);
    assert_non_null(strstr(err.msg, "malformed operation batch"));
    if (what && !strstr(err.msg, what))
        fail_msg("expected \"%s\" in \"%s\"", what, err.msg);
    assert_int_equal(stm_opbatch_count(out), 1);
    s_assert_op_equal(stm_opbatch_at(out, 0), &keep);
    stm_opbatch_destroy(&out);
}

/* ---- msgread: every type ---- */

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
        unsigned char *p = s_exact(b, cut);
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
    unsigned char *p = s_exact(b, n);
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
                unsigned char *p = s_exact(b, cuts[k]);
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
        unsigned char *p = s_exact(liars[i].b, liars[i].n);
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
        unsigned char *p = s_exact(ok[i].b.b, ok[i].b.n);
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
            p = s_exact(ok[i].b.b, cut);
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
        unsigned char *p = s_exact(cases[i].b.b, cases[i].b.n);
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
        unsigned char *p = s_exact(exts[i].b, exts[i].n);
        msgread_t r;
        stm_msgread_init(&r, p, exts[i].n);
        assert_int_equal(stm_msgread_peek(&r), MSG_EXT);
        assert_true(stm_msgread_skip(&r));
        assert_int_equal(stm_msgread_left(&r), 0);
        free(p);
        for (size_t cut = 0; cut < exts[i].n; cut++) {
            p = s_exact(exts[i].b, cut);
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

/* ---- op ---- */

static void test_op_batch_owns_copies(void **state)
{
    (void)state;
    opbatch_t *b = stm_opbatch_new();
    assert_int_equal(stm_opbatch_count(b), 0);
    assert_int_equal(stm_opbatch_bytes(b), 0);
    char table[] = "tasks", column[] = "title", text[] = "hello", key[] = "k1";
    op_t op = s_op(1, 1, table, s_text(key, 2), column, 'T', s_text(text, 5));
    stm_opbatch_add(b, &op);
    const op_t *first = stm_opbatch_at(b, 0);
    const char *first_table = first->table;
    const void *first_text = first->value.bytes;
    /* Changing what was added changes nothing in the batch. */
    memset(table, 'x', 5);
    memset(column, 'x', 5);
    memset(text, 'x', 5);
    memset(key, 'x', 2);
    /* Many more operations (and big values) never move what the first points to. */
    char *big = calloc(1, 100000); /* bigger than an arena block */
    for (uint64_t i = 2; i < 3000; i++) {
        op_t more = s_op(2, i, "t", s_int((int64_t)i), "c", 'B', s_blob(big, i % 50 ? 3 : 100000));
        stm_opbatch_add(b, &more);
    }
    free(big);
    first = stm_opbatch_at(b, 0);
    assert_ptr_equal(first->table, first_table);
    assert_ptr_equal(first->value.bytes, first_text);
    assert_string_equal(first->table, "tasks");
    assert_string_equal(first->column, "title");
    assert_memory_equal(first->value.bytes, "hello", 5);
    assert_memory_equal(first->pk.bytes, "k1", 2);
    assert_int_equal(stm_opbatch_count(b), 2999);
    assert_true(stm_opbatch_bytes(b) > 59 * 100000);
    /* Cleared, the batch is empty and usable again. */
    stm_opbatch_clear(b);
    assert_int_equal(stm_opbatch_count(b), 0);
    assert_int_equal(stm_opbatch_bytes(b), 0);
    op_t del = s_op(3, 7, "t", s_int(5), NULL, 0, s_null());
    stm_opbatch_add(b, &del);
    assert_int_equal(stm_opbatch_count(b), 1);
    assert_true(stm_op_is_delete(stm_opbatch_at(b, 0)));
    assert_null(stm_opbatch_at(b, 0)->column);
    assert_false(stm_op_is_delete(&op));
    /* Empty text and blobs copy as empty values, not as NULL. */
    op_t empty = s_op(3, 8, "t", s_blob(NULL, 0), "c", 'T', s_text("", 0));
    stm_opbatch_add(b, &empty);
    assert_int_equal(stm_opbatch_at(b, 1)->value.type, VALUE_TEXT);
    assert_int_equal(stm_opbatch_at(b, 1)->value.len, 0);
    assert_int_equal(stm_opbatch_at(b, 1)->pk.type, VALUE_BLOB);
    stm_opbatch_destroy(&b);
    assert_null(b);
    stm_opbatch_destroy(&b); /* safe twice */
}

static void test_op_clock_compare(void **state)
{
    (void)state;
    stm_id a = s_id(1), b = s_id(2);
    assert_true(stm_op_clock_compare(1, &b, 2, &a) < 0);
    assert_true(stm_op_clock_compare(2, &a, 1, &b) > 0);
    assert_true(stm_op_clock_compare(5, &a, 5, &b) < 0); /* same clock: origin bytes decide */
    assert_true(stm_op_clock_compare(5, &b, 5, &a) > 0);
    assert_int_equal(stm_op_clock_compare(5, &a, 5, &a), 0);
    assert_true(stm_op_clock_compare(UINT64_MAX, &a, 0, &b) > 0);
}

static void test_op_value_equal(void **state)
{
    (void)state;
    op_value a, b;
    a = s_int(1), b = s_real(1.0);
    assert_false(stm_op_value_equal(&a, &b)); /* types differ */
    a = s_text("ab", 2), b = s_blob("ab", 2);
    assert_false(stm_op_value_equal(&a, &b));
    b = s_text("abc", 2);
    assert_true(stm_op_value_equal(&a, &b));
    b = s_text("ab", 1);
    assert_false(stm_op_value_equal(&a, &b));
    a = s_real(0.0), b = s_real(-0.0);
    assert_false(stm_op_value_equal(&a, &b)); /* bitwise: a -0.0 written is kept */
    a = s_real(NAN), b = s_real(NAN);
    assert_true(stm_op_value_equal(&a, &b));
    a = s_null(), b = s_null();
    assert_true(stm_op_value_equal(&a, &b));
    a = s_blob(NULL, 0), b = s_blob("", 0);
    assert_true(stm_op_value_equal(&a, &b));
    a = s_int(INT64_MIN), b = s_int(INT64_MAX);
    assert_false(stm_op_value_equal(&a, &b));
}

/* Every value type through SQLite and back, keeping its type. */
static void test_op_value_bind_and_column(void **state)
{
    (void)state;
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(":memory:", &db), SQLITE_OK);
    sqlite3_stmt *stmt = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT ?1, typeof(?1)", -1, &stmt, NULL), SQLITE_OK);
    const char nul_text[] = "a\0b";
    const unsigned char blob[] = {0, 1, 0, 255};
    const struct {
        op_value v;
        const char *sql_type;
    } cases[] = {
        {s_null(), "null"},
        {s_int(0), "integer"},
        {s_int(INT64_MIN), "integer"},
        {s_int(INT64_MAX), "integer"},
        {s_real(-2.5), "real"},
        {s_real(1e308), "real"},
        {s_text("héllo", strlen("héllo")), "text"},
        {s_text(nul_text, 3), "text"},
        {s_text("", 0), "text"},
        {s_text(NULL, 0), "text"}, /* empty text is text, not NULL */
        {s_blob(blob, sizeof blob), "blob"},
        {s_blob(NULL, 0), "blob"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sqlite3_reset(stmt);
        assert_int_equal(stm_op_value_bind(stmt, 1, &cases[i].v), SQLITE_OK);
        assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
        if (strcmp((const char *)sqlite3_column_text(stmt, 1), cases[i].sql_type) != 0)
            fail_msg("case %zu bound as %s, expected %s", i, sqlite3_column_text(stmt, 1),
                     cases[i].sql_type);
        op_value back;
        stm_op_value_column(stmt, 0, &back);
        assert_true(stm_op_value_equal(&back, &cases[i].v));
    }
    sqlite3_finalize(stmt);
    sqlite3_close(db);
}

/* ---- codec: round trips ---- */

static void test_codec_every_value_type(void **state)
{
    (void)state;
    static const unsigned char nul_blob[] = {0, 0, 'a', 0, 0xff, 0};
    static const char nul_text[] = "tab\there\0and after";
    const op_value values[] = {
        s_null(),
        s_int(0),
        s_int(1),
        s_int(-1),
        s_int(127),
        s_int(128),
        s_int(-32),
        s_int(-33),
        s_int(255),
        s_int(65536),
        s_int(INT32_MIN),
        s_int((int64_t)UINT32_MAX + 1),
        s_int(INT64_MIN),
        s_int(INT64_MAX),
        s_real(0.0),
        s_real(-0.0),
        s_real(1.5),
        s_real(-1e-300),
        s_real(DBL_MAX),
        s_real(DBL_MIN / 4), /* subnormal */
        s_real(INFINITY),
        s_real(-INFINITY),
        s_real(NAN),
        s_text("", 0),
        s_text("x", 1),
        s_text("grüße, 世界", strlen("grüße, 世界")),
        s_text(nul_text, sizeof nul_text - 1),
        s_blob("", 0),
        s_blob(nul_blob, sizeof nul_blob),
    };
    const size_t nvalues = sizeof values / sizeof values[0];
    opbatch_t *b = stm_opbatch_new();
    uint64_t seq = 1;
    for (size_t i = 0; i < nvalues; i++) {
        /* Each value as a written value, and as a row's key. */
        op_t op = s_op(1, seq++, "t", s_int((int64_t)i), "c", "TNIRB"[i % 5], values[i]);
        stm_opbatch_add(b, &op);
        op = s_op(1, seq++, "t", values[i], "c", 'B', values[nvalues - 1 - i]);
        stm_opbatch_add(b, &op);
    }
    /* 1 MiB values, text and blob, with NULs in them. */
    size_t big = 1024 * 1024;
    unsigned char *bytes = malloc(big);
    s_rng = 7;
    for (size_t i = 0; i < big; i++)
        bytes[i] = (unsigned char)s_rand();
    op_t op = s_op(2, 1, "t", s_int(1), "c", 'B', s_blob(bytes, big));
    stm_opbatch_add(b, &op);
    op = s_op(2, 2, "t", s_text(bytes, big), "c", 'T', s_text(bytes, big));
    stm_opbatch_add(b, &op);
    size_t len = s_round_trip(b);
    assert_true(len > 3 * big);
    /* The types survive exactly: an integer stays an integer, 1.0 stays a real. */
    stm_opbatch_clear(b);
    op = s_op(1, 1, "t", s_real(1.0), "c", 'R', s_real(2.0));
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
    op_t op = s_op(1, 1, "tasks", s_text("k1", 2), NULL, 0, s_null());
    stm_opbatch_add(b, &op);
    op = s_op(1, 2, "tasks", s_text("k1", 2), "title", 'T', s_text("again", 5));
    stm_opbatch_add(b, &op);
    op = s_op(2, 1, "lists", s_int(INT64_MIN), NULL, 0, s_null());
    stm_opbatch_add(b, &op);
    op = s_op(2, 2, "lists", s_blob("\0", 1), NULL, 0, s_null());
    stm_opbatch_add(b, &op);
    s_round_trip(b);
    /* Only deletes: no column is named at all. */
    opbatch_t *dels = stm_opbatch_new();
    stm_opbatch_add(dels, stm_opbatch_at(b, 0));
    stm_opbatch_add(dels, stm_opbatch_at(b, 2));
    s_round_trip(dels);
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
    s_rng = 12345;
    for (int k = 0; k < OPS; k++) {
        /* Every name at least once, then at random. */
        unsigned o = k < ORIGINS ? (unsigned)k : (unsigned)(s_rand() % ORIGINS);
        int t = k < TABLES ? k : (int)(s_rand() % TABLES);
        int c = k < COLUMNS ? k : (int)(s_rand() % COLUMNS);
        bool del = s_rand() % 10 == 0 && k >= COLUMNS;
        op_t op = s_op(o, ++seqs[o], tables[t], s_int((int64_t)(s_rand() % 100)),
                       del ? NULL : columns[c], 'T', s_int(k));
        stm_opbatch_add(b, &op);
    }
    s_round_trip(b);
    buf_t enc = BUF_INIT;
    stm_codec_encode_ops(b, 0, OPS, &enc);
    /* Each name and id is written once, however many operations use it. */
    for (int i = 0; i < TABLES; i++)
        assert_int_equal(s_occurrences(&enc, tables[i], strlen(tables[i])), 1);
    for (int i = 0; i < COLUMNS; i += 7)
        assert_int_equal(s_occurrences(&enc, columns[i], strlen(columns[i])), 1);
    for (unsigned i = 0; i < ORIGINS; i += 11) {
        stm_id id = s_id(i);
        assert_int_equal(s_occurrences(&enc, id.bytes, STM_ID_BYTES), 1);
    }
    assert_true(enc.len < (size_t)OPS * 40);
    stm_buf_free(&enc);
    /* Names at the limit travel whole. */
    char name[OP_MAX_NAME_BYTES + 1];
    memset(name, 'n', OP_MAX_NAME_BYTES);
    name[OP_MAX_NAME_BYTES] = '\0';
    stm_opbatch_clear(b);
    op_t op = s_op(1, 1, name, s_int(1), name, 'I', s_int(2));
    stm_opbatch_add(b, &op);
    s_round_trip(b);
    stm_opbatch_destroy(&b);
}

static void test_codec_ranges_and_appending(void **state)
{
    (void)state;
    opbatch_t *b = stm_opbatch_new();
    for (uint64_t i = 1; i <= 10; i++) {
        op_t op =
            s_op(1, i, i % 2 ? "odd" : "even", s_int((int64_t)i), "c", 'I', s_int((int64_t)i * 10));
        stm_opbatch_add(b, &op);
    }
    /* Operations [3, 7) alone. */
    buf_t enc = BUF_INIT;
    stm_codec_encode_ops(b, 3, 4, &enc);
    opbatch_t *out = stm_opbatch_new();
    op_t first = s_op(5, 1, "there", s_int(0), "before", 'N', s_real(0.5));
    stm_opbatch_add(out, &first);
    assert_int_equal(stm_codec_decode_ops(enc.data, enc.len, out, NULL), STM_OK);
    /* Appended after what was there. */
    assert_int_equal(stm_opbatch_count(out), 5);
    s_assert_op_equal(stm_opbatch_at(out, 0), &first);
    for (size_t i = 0; i < 4; i++)
        s_assert_op_equal(stm_opbatch_at(out, 1 + i), stm_opbatch_at(b, 3 + i));
    /* No operations at all is a valid batch. */
    stm_buf_reset(&enc);
    stm_codec_encode_ops(b, 10, 0, &enc);
    assert_int_equal(stm_codec_decode_ops(enc.data, enc.len, out, NULL), STM_OK);
    assert_int_equal(stm_opbatch_count(out), 5);
    stm_buf_free(&enc);
    stm_opbatch_destroy(&out);
    stm_opbatch_destroy(&b);
}

/* A batch of varied operations, for the malformed-input tests. */
static opbatch_t *s_sample_batch(void)
{
    opbatch_t *b = stm_opbatch_new();
    const op_value values[] = {s_null(),          s_int(-5),          s_int(INT64_MIN),
                               s_real(3.25),      s_text("hello", 5), s_text("", 0),
                               s_blob("\0\1", 2), s_int(1 << 20),     s_real(-0.0)};
    uint64_t seq = 1;
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        op_t op =
            s_op((unsigned)(i % 3), seq++, i % 2 ? "tasks" : "lists", s_text("key", 1 + i % 3),
                 i % 2 ? "title" : "name", "TNIRB"[i % 5], values[i]);
        stm_opbatch_add(b, &op);
    }
    op_t del = s_op(1, seq++, "tasks", s_int(77), NULL, 0, s_null());
    stm_opbatch_add(b, &del);
    return b;
}

static void test_codec_decode_failure_leaves_batch_unchanged(void **state)
{
    (void)state;
    opbatch_t *b = s_sample_batch();
    buf_t enc = BUF_INIT;
    stm_codec_encode_ops(b, 0, stm_opbatch_count(b), &enc);
    /* The out batch already holds operations, one with a big value. */
    opbatch_t *out = stm_opbatch_new(), *before = stm_opbatch_new();
    char *big = calloc(1, 300000);
    op_t op = s_op(8, 1, "x", s_int(1), "y", 'B', s_blob(big, 300000));
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
    s_assert_batches_equal(out, before);
    /* Without an error buffer, just the code. */
    assert_int_equal(stm_codec_decode_ops(enc.data, enc.len, out, NULL), STM_EPROTO);
    s_assert_batches_equal(out, before);
    stm_buf_free(&enc);
    stm_opbatch_destroy(&before);
    stm_opbatch_destroy(&out);
    stm_opbatch_destroy(&b);
}

/* ---- codec: malformed batches ---- */

static void test_codec_every_truncation(void **state)
{
    (void)state;
    opbatch_t *b = s_sample_batch();
    buf_t enc = BUF_INIT;
    stm_codec_encode_ops(b, 0, stm_opbatch_count(b), &enc);
    for (size_t cut = 0; cut < enc.len; cut++)
        s_assert_refused(enc.data, cut, NULL);
    stm_buf_free(&enc);
    stm_opbatch_destroy(&b);
}

/* What every decoded operation must satisfy, whatever the bytes were. */
static void s_assert_sane(const opbatch_t *b)
{
    for (size_t i = 0; i < stm_opbatch_count(b); i++) {
        const op_t *op = stm_opbatch_at(b, i);
        assert_true(op->seq >= 1 && op->seq <= (uint64_t)INT64_MAX);
        assert_true(op->hlc <= (uint64_t)INT64_MAX);
        size_t tl = strlen(op->table);
        assert_true(tl >= 1 && tl <= OP_MAX_NAME_BYTES);
        if (op->column) {
            size_t cl = strlen(op->column);
            assert_true(cl >= 1 && cl <= OP_MAX_NAME_BYTES);
            assert_non_null(memchr("TNIRB", op->affinity, 5));
            assert_true(op->affinity != 0);
        } else {
            assert_int_equal(op->affinity, 0);
            assert_int_equal(op->value.type, VALUE_NULL);
        }
        assert_true(op->value.len <= OP_MAX_VALUE_BYTES && op->pk.len <= OP_MAX_VALUE_BYTES);
    }
}

static void test_codec_random_flips(void **state)
{
    (void)state;
    opbatch_t *b = s_sample_batch();
    buf_t enc = BUF_INIT;
    stm_codec_encode_ops(b, 0, stm_opbatch_count(b), &enc);
    opbatch_t *out = stm_opbatch_new();
    unsigned char *copy = malloc(enc.len);
    s_rng = 0x5eed5eed;
    int accepted = 0, refused = 0;
    for (int iter = 0; iter < 4000; iter++) {
        memcpy(copy, enc.data, enc.len);
        int flips = 1 + (int)(s_rand() % 3);
        for (int f = 0; f < flips; f++)
            copy[s_rand() % enc.len] ^= (unsigned char)(1 + s_rand() % 255);
        /* Now and then, also cut it short. */
        size_t len = iter % 5 == 0 ? (size_t)(s_rand() % enc.len) : enc.len;
        stm_opbatch_clear(out);
        stm_error err = {0};
        stm_err rc = s_decode(copy, len, out, &err);
        if (rc == STM_OK) {
            accepted++;
            s_assert_sane(out);
            /* What decodes encodes back to something that decodes the same. */
            s_round_trip(out);
        } else {
            refused++;
            assert_int_equal(rc, STM_EPROTO);
            assert_int_equal(stm_opbatch_count(out), 0);
            assert_true(err.msg[0] != '\0');
        }
    }
    /* Both outcomes happen: the flips hit values as well as structure. */
    assert_true(accepted > 0);
    assert_true(refused > 0);
    free(copy);
    stm_buf_free(&enc);
    stm_opbatch_destroy(&out);
    stm_opbatch_destroy(&b);
}

/* Crafting batches by hand: each list and each op field as a tagged value. */
typedef enum {
    F_END,
    F_UINT,
    F_INT,
    F_NIL,
    F_TRUE,
    F_REAL,
    F_FLOAT,
    F_STR,
    F_BIN,
    F_MAP,
    F_ARRAY,
    F_EXT,
    F_RAW, /* bytes as they are */
} s_kind;

typedef struct {
    s_kind kind;
    uint64_t u;    /* F_UINT, F_INT (as int64) */
    double d;      /* F_REAL, F_FLOAT */
    const char *s; /* F_STR, F_BIN, F_RAW */
    size_t n;      /* s's length */
} s_field;

#define END                                                                                        \
    {                                                                                              \
        F_END, 0, 0, NULL, 0                                                                       \
    }
#define U(x)                                                                                       \
    {                                                                                              \
        F_UINT, (uint64_t)(x), 0, NULL, 0                                                          \
    }
#define I(x)                                                                                       \
    {                                                                                              \
        F_INT, (uint64_t)(int64_t)(x), 0, NULL, 0                                                  \
    }
#define NIL                                                                                        \
    {                                                                                              \
        F_NIL, 0, 0, NULL, 0                                                                       \
    }
#define TRUE_                                                                                      \
    {                                                                                              \
        F_TRUE, 0, 0, NULL, 0                                                                      \
    }
#define REAL(x)                                                                                    \
    {                                                                                              \
        F_REAL, 0, (x), NULL, 0                                                                    \
    }
#define FLOAT(x)                                                                                   \
    {                                                                                              \
        F_FLOAT, 0, (x), NULL, 0                                                                   \
    }
#define STR(x)                                                                                     \
    {                                                                                              \
        F_STR, 0, 0, (x), sizeof(x) - 1                                                            \
    }
#define BIN(x)                                                                                     \
    {                                                                                              \
        F_BIN, 0, 0, (x), sizeof(x) - 1                                                            \
    }
#define MAP                                                                                        \
    {                                                                                              \
        F_MAP, 0, 0, NULL, 0                                                                       \
    }
#define ARRAY                                                                                      \
    {                                                                                              \
        F_ARRAY, 0, 0, NULL, 0                                                                     \
    }
#define EXT                                                                                        \
    {                                                                                              \
        F_EXT, 0, 0, NULL, 0                                                                       \
    }
#define RAW(x)                                                                                     \
    {                                                                                              \
        F_RAW, 0, 0, (x), sizeof(x) - 1                                                            \
    }

#define ID_A "0123456789abcdef0123456789abcdef"
#define ID_B "fedcba9876543210fedcba9876543210"

static void s_pack_field(msgpack_packer *pk, const s_field *f)
{
    switch (f->kind) {
    case F_END:
        break;
    case F_UINT:
        msgpack_pack_uint64(pk, f->u);
        break;
    case F_INT:
        msgpack_pack_int64(pk, (int64_t)f->u);
        break;
    case F_NIL:
        msgpack_pack_nil(pk);
        break;
    case F_TRUE:
        msgpack_pack_true(pk);
        break;
    case F_REAL:
        msgpack_pack_double(pk, f->d);
        break;
    case F_FLOAT:
        msgpack_pack_float(pk, (float)f->d);
        break;
    case F_STR:
        msgpack_pack_str_with_body(pk, f->s, f->n);
        break;
    case F_BIN:
        msgpack_pack_bin_with_body(pk, f->s, f->n);
        break;
    case F_MAP:
        msgpack_pack_map(pk, 1);
        msgpack_pack_str_with_body(pk, "k", 1);
        msgpack_pack_array(pk, 2);
        msgpack_pack_nil(pk);
        msgpack_pack_map(pk, 0);
        break;
    case F_ARRAY:
        msgpack_pack_array(pk, 2);
        msgpack_pack_int(pk, 1);
        msgpack_pack_str_with_body(pk, "two", 3);
        break;
    case F_EXT:
        msgpack_pack_ext(pk, 2, 5);
        msgpack_pack_ext_body(pk, "ab", 2);
        break;
    case F_RAW:
        stm_buf_append(pk->data, f->s, f->n);
        break;
    }
}

static size_t s_count(const s_field *f)
{
    size_t n = 0;
    while (f[n].kind != F_END)
        n++;
    return n;
}

static void s_pack_array(msgpack_packer *pk, const s_field *f)
{
    size_t n = s_count(f);
    msgpack_pack_array(pk, n);
    for (size_t i = 0; i < n; i++)
        s_pack_field(pk, &f[i]);
}

static const s_field s_default_origins[] = {BIN(ID_A), END};
static const s_field s_default_versions[] = {BIN(ID_B), END};
static const s_field s_default_tables[] = {STR("t"), END};
static const s_field s_default_columns[] = {STR("c"), END};
static const s_field s_good_op[] = {U(0), U(1), U(1000), U(0),     U(0),
                                    I(7), U(0), U('T'),  STR("v"), END};

/* A batch of the given lists (NULL: one good entry each) and ops (NULL: one good op;
 * each op an array of fields). */
static void s_craft(buf_t *out, const s_field *origins, const s_field *versions,
                    const s_field *tables, const s_field *columns, const s_field *const *ops,
                    size_t nops)
{
    msgpack_packer pk;
    s_packer(&pk, out);
    msgpack_pack_map(&pk, 5);
    msgpack_pack_str_with_body(&pk, "origins", 7);
    s_pack_array(&pk, origins ? origins : s_default_origins);
    msgpack_pack_str_with_body(&pk, "versions", 8);
    s_pack_array(&pk, versions ? versions : s_default_versions);
    msgpack_pack_str_with_body(&pk, "tables", 6);
    s_pack_array(&pk, tables ? tables : s_default_tables);
    msgpack_pack_str_with_body(&pk, "columns", 7);
    s_pack_array(&pk, columns ? columns : s_default_columns);
    msgpack_pack_str_with_body(&pk, "ops", 3);
    if (!ops) {
        msgpack_pack_array(&pk, 1);
        s_pack_array(&pk, s_good_op);
        return;
    }
    msgpack_pack_array(&pk, nops);
    for (size_t i = 0; i < nops; i++)
        s_pack_array(&pk, ops[i]);
}

static stm_err s_craft_decode(const s_field *origins, const s_field *versions,
                              const s_field *tables, const s_field *columns, const s_field *op,
                              opbatch_t *out, stm_error *err)
{
    buf_t b = BUF_INIT;
    const s_field *ops[] = {op};
    s_craft(&b, origins, versions, tables, columns, op ? ops : NULL, 1);
    stm_err rc = s_decode(b.data, b.len, out, err);
    stm_buf_free(&b);
    return rc;
}

static void s_assert_op_refused(const s_field *op, const char *what)
{
    buf_t b = BUF_INIT;
    const s_field *ops[] = {op};
    s_craft(&b, NULL, NULL, NULL, NULL, ops, 1);
    s_assert_refused(b.data, b.len, what);
    stm_buf_free(&b);
}

static void test_codec_crafted_good_batch(void **state)
{
    (void)state;
    opbatch_t *out = stm_opbatch_new();
    stm_error err = {0};
    if (s_craft_decode(NULL, NULL, NULL, NULL, NULL, out, &err) != STM_OK)
        fail_msg("%s", err.msg);
    assert_int_equal(stm_opbatch_count(out), 1);
    const op_t *op = stm_opbatch_at(out, 0);
    assert_memory_equal(op->origin.bytes, ID_A, 32);
    assert_memory_equal(op->version_id.bytes, ID_B, 32);
    assert_int_equal(op->seq, 1);
    assert_int_equal(op->hlc, 1000);
    assert_string_equal(op->table, "t");
    assert_string_equal(op->column, "c");
    assert_int_equal(op->affinity, 'T');
    assert_int_equal(op->pk.type, VALUE_INTEGER);
    assert_int_equal(op->pk.i, 7);
    assert_int_equal(op->value.type, VALUE_TEXT);
    assert_memory_equal(op->value.bytes, "v", 1);
    stm_opbatch_destroy(&out);
}

static void test_codec_bad_operations(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        s_field op[16];
        const char *what;
    } cases[] = {
        {"origin index beyond",
         {U(1), U(1), U(1000), U(0), U(0), I(7), U(0), U('T'), STR("v"), END},
         "index is beyond its list"},
        {"version index beyond",
         {U(0), U(1), U(1000), U(1), U(0), I(7), U(0), U('T'), STR("v"), END},
         "index is beyond its list"},
        {"table index beyond",
         {U(0), U(1), U(1000), U(0), U(1), I(7), U(0), U('T'), STR("v"), END},
         "index is beyond its list"},
        {"table index huge",
         {U(0), U(1), U(1000), U(0), U(UINT32_MAX), I(7), U(0), U('T'), STR("v"), END},
         "index is beyond its list"},
        {"column index beyond",
         {U(0), U(1), U(1000), U(0), U(0), I(7), U(1), U('T'), STR("v"), END},
         "column index"},
        {"negative origin index",
         {I(-1), U(1), U(1000), U(0), U(0), I(7), U(0), U('T'), STR("v"), END},
         "not an integer"},
        {"negative column index",
         {U(0), U(1), U(1000), U(0), U(0), I(7), I(-1), U('T'), STR("v"), END},
         "column index"},
        {"origin index a string",
         {STR("0"), U(1), U(1000), U(0), U(0), I(7), U(0), U('T'), STR("v"), END},
         "not an integer"},
        {"seq 0",
         {U(0), U(0), U(1000), U(0), U(0), I(7), U(0), U('T'), STR("v"), END},
         "seq or hlc is out of range"},
        {"seq negative",
         {U(0), I(-1), U(1000), U(0), U(0), I(7), U(0), U('T'), STR("v"), END},
         "not an integer"},
        {"seq above INT64_MAX",
         {U(0), U(1ull << 63), U(1000), U(0), U(0), I(7), U(0), U('T'), STR("v"), END},
         "not an integer"},
        {"hlc above INT64_MAX",
         {U(0), U(1), U(UINT64_MAX), U(0), U(0), I(7), U(0), U('T'), STR("v"), END},
         "not an integer"},
        /* Room is left above every seq and clock (op.h): a node moves its own clock
         * past each it applies, and its own sequence past each of its own ops. */
        {"seq just above OP_MAX_SEQ",
         {U(0), U(OP_MAX_SEQ + 1), U(1000), U(0), U(0), I(7), U(0), U('T'), STR("v"), END},
         "seq or hlc is out of range"},
        {"seq INT64_MAX",
         {U(0), U(INT64_MAX), U(1000), U(0), U(0), I(7), U(0), U('T'), STR("v"), END},
         "seq or hlc is out of range"},
        {"hlc just above OP_MAX_HLC",
         {U(0), U(1), U(OP_MAX_HLC + 1), U(0), U(0), I(7), U(0), U('T'), STR("v"), END},
         "seq or hlc is out of range"},
        {"hlc INT64_MAX",
         {U(0), U(1), U(INT64_MAX), U(0), U(0), I(7), U(0), U('T'), STR("v"), END},
         "seq or hlc is out of range"},
        {"hlc a float",
         {U(0), U(1), REAL(1.0), U(0), U(0), I(7), U(0), U('T'), STR("v"), END},
         "not an integer"},
        {"affinity X",
         {U(0), U(1), U(1000), U(0), U(0), I(7), U(0), U('X'), STR("v"), END},
         "affinity"},
        {"affinity lowercase t",
         {U(0), U(1), U(1000), U(0), U(0), I(7), U(0), U('t'), STR("v"), END},
         "affinity"},
        {"affinity 0",
         {U(0), U(1), U(1000), U(0), U(0), I(7), U(0), U(0), STR("v"), END},
         "affinity"},
        {"affinity T + 256",
         {U(0), U(1), U(1000), U(0), U(0), I(7), U(0), U('T' + 256), STR("v"), END},
         "affinity"},
        {"affinity as a string",
         {U(0), U(1), U(1000), U(0), U(0), I(7), U(0), STR("T"), STR("v"), END},
         "affinity"},
        {"affinity nil on a write",
         {U(0), U(1), U(1000), U(0), U(0), I(7), U(0), NIL, STR("v"), END},
         "affinity"},
        {"column a string",
         {U(0), U(1), U(1000), U(0), U(0), I(7), STR("c"), U('T'), STR("v"), END},
         "column index"},
        {"delete with an affinity",
         {U(0), U(1), U(1000), U(0), U(0), I(7), NIL, U('T'), NIL, END},
         "a row delete carries an affinity"},
        {"delete with a value",
         {U(0), U(1), U(1000), U(0), U(0), I(7), NIL, NIL, I(5), END},
         "a row delete carries a value"},
        {"delete with an empty text",
         {U(0), U(1), U(1000), U(0), U(0), I(7), NIL, NIL, STR(""), END},
         "a row delete carries a value"},
        {"key a boolean",
         {U(0), U(1), U(1000), U(0), U(0), TRUE_, U(0), U('T'), STR("v"), END},
         "key is not a valid value"},
        {"key an array",
         {U(0), U(1), U(1000), U(0), U(0), ARRAY, U(0), U('T'), STR("v"), END},
         "key is not a valid value"},
        {"key a map",
         {U(0), U(1), U(1000), U(0), U(0), MAP, U(0), U('T'), STR("v"), END},
         "key is not a valid value"},
        {"key an ext",
         {U(0), U(1), U(1000), U(0), U(0), EXT, U(0), U('T'), STR("v"), END},
         "key is not a valid value"},
        {"key above INT64_MAX",
         {U(0), U(1), U(1000), U(0), U(0), U(1ull << 63), U(0), U('T'), STR("v"), END},
         "key is not a valid value"},
        {"value a boolean",
         {U(0), U(1), U(1000), U(0), U(0), I(7), U(0), U('T'), TRUE_, END},
         "value is not a valid value"},
        {"value a map",
         {U(0), U(1), U(1000), U(0), U(0), I(7), U(0), U('T'), MAP, END},
         "value is not a valid value"},
        {"value an array",
         {U(0), U(1), U(1000), U(0), U(0), I(7), U(0), U('T'), ARRAY, END},
         "value is not a valid value"},
        {"value an ext",
         {U(0), U(1), U(1000), U(0), U(0), I(7), U(0), U('T'), EXT, END},
         "value is not a valid value"},
        {"value above INT64_MAX",
         {U(0), U(1), U(1000), U(0), U(0), I(7), U(0), U('T'), U(UINT64_MAX), END},
         "value is not a valid value"},
        {"eight fields",
         {U(0), U(1), U(1000), U(0), U(0), I(7), U(0), U('T'), END},
         "at least 9 fields"},
        {"no fields", {END}, "at least 9 fields"},
        {"0xc1 in an extra field",
         {U(0), U(1), U(1000), U(0), U(0), I(7), U(0), U('T'), STR("v"), RAW("\xc1"), END},
         "extra field is malformed"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        print_message("  %s\n", cases[i].name);
        s_assert_op_refused(cases[i].op, cases[i].what);
    }
    /* An operation that is not an array at all. */
    static const s_field not_array[] = {U(1), END};
    buf_t b = BUF_INIT;
    msgpack_packer pk;
    s_packer(&pk, &b);
    msgpack_pack_map(&pk, 1);
    msgpack_pack_str_with_body(&pk, "ops", 3);
    s_pack_array(&pk, not_array);
    s_assert_refused(b.data, b.len, "not an array of at least 9 fields");
    stm_buf_free(&b);
}

static void test_codec_forms_a_writer_may_choose(void **state)
{
    (void)state;
    /* Integers in signed or wider forms, a float32 value, extra op fields of every
     * type: all fine. */
    static const s_field ops[][20] = {
        {I(0), I(1), I(1000), I(0), I(0), I(7), I(0), I('T'), FLOAT(1.5), END},
        {U(0), U(2), U(1000), U(0), U(0), STR("k"), U(0), U('N'), REAL(2.5), U(1), STR("x"), MAP,
         ARRAY, EXT, NIL, TRUE_, END},
        {U(0), U(3), U(1000), U(0), U(0), BIN("\0k"), NIL, NIL, NIL, ARRAY, END},
        {U(0), U(4), U(1000), U(0), U(0), RAW("\xd3\x00\x00\x00\x00\x00\x00\x00\x07"),
         RAW("\xcc\x00"), RAW("\xcd\x00\x49"), RAW("\xdb\x00\x00\x00\x01v"), END},
    };
    const s_field *list[] = {ops[0], ops[1], ops[2], ops[3]};
    buf_t b = BUF_INIT;
    s_craft(&b, NULL, NULL, NULL, NULL, list, 4);
    opbatch_t *out = stm_opbatch_new();
    stm_error err = {0};
    if (s_decode(b.data, b.len, out, &err) != STM_OK)
        fail_msg("%s", err.msg);
    assert_int_equal(stm_opbatch_count(out), 4);
    assert_int_equal(stm_opbatch_at(out, 0)->value.type, VALUE_REAL);
    assert_true(stm_opbatch_at(out, 0)->value.r == 1.5);
    assert_int_equal(stm_opbatch_at(out, 1)->pk.type, VALUE_TEXT);
    assert_int_equal(stm_opbatch_at(out, 1)->affinity, 'N');
    assert_true(stm_op_is_delete(stm_opbatch_at(out, 2)));
    assert_int_equal(stm_opbatch_at(out, 2)->pk.type, VALUE_BLOB);
    assert_int_equal(stm_opbatch_at(out, 3)->pk.i, 7);
    assert_int_equal(stm_opbatch_at(out, 3)->affinity, 'I');
    assert_int_equal(stm_opbatch_at(out, 3)->value.type, VALUE_TEXT);
    assert_int_equal(stm_opbatch_at(out, 3)->value.len, 1);
    stm_buf_free(&b);
    stm_opbatch_destroy(&out);
}

static void test_codec_bad_lists(void **state)
{
    (void)state;
    char long_name[OP_MAX_NAME_BYTES + 2];
    memset(long_name, 'a', sizeof long_name);
    const s_field name_1025[] = {{F_STR, 0, 0, long_name, OP_MAX_NAME_BYTES + 1}, END};
    const s_field name_1024[] = {{F_STR, 0, 0, long_name, OP_MAX_NAME_BYTES}, END};
    const s_field name_nul[] = {{F_STR, 0, 0, "t\0x", 3}, END};
    const s_field name_lead_nul[] = {{F_STR, 0, 0, "\0", 1}, END};
    const s_field name_empty[] = {STR(""), END};
    const s_field name_bin[] = {BIN("t"), END};
    const s_field name_int[] = {U(1), END};
    const s_field id_31[] = {{F_BIN, 0, 0, ID_A, 31}, END};
    const s_field id_33[] = {{F_BIN, 0, 0, ID_A ID_B, 33}, END};
    const s_field id_str[] = {STR(ID_A), END};
    const s_field id_nil[] = {NIL, END};
    const s_field empty[] = {END};
    const struct {
        const char *name;
        const s_field *lists[4];
        const char *what;
    } cases[] = {
        {"table name of 1025 bytes", {NULL, NULL, name_1025, NULL}, "1 to 1024 bytes"},
        {"column name of 1025 bytes", {NULL, NULL, NULL, name_1025}, "1 to 1024 bytes"},
        {"table name with a NUL", {NULL, NULL, name_nul, NULL}, "without NUL"},
        {"column name with a NUL", {NULL, NULL, NULL, name_nul}, "without NUL"},
        {"column name of one NUL", {NULL, NULL, NULL, name_lead_nul}, "without NUL"},
        {"empty table name", {NULL, NULL, name_empty, NULL}, "1 to 1024 bytes"},
        {"table name in bin", {NULL, NULL, name_bin, NULL}, "name"},
        {"column name an integer", {NULL, NULL, NULL, name_int}, "name"},
        {"origin of 31 bytes", {id_31, NULL, NULL, NULL}, "32 bytes"},
        {"origin of 33 bytes", {id_33, NULL, NULL, NULL}, "32 bytes"},
        {"version id as str", {NULL, id_str, NULL, NULL}, "32 bytes"},
        {"version id nil", {NULL, id_nil, NULL, NULL}, "32 bytes"},
        {"no origins", {empty, NULL, NULL, NULL}, "index is beyond its list"},
        {"no tables", {NULL, NULL, empty, NULL}, "index is beyond its list"},
        {"no columns", {NULL, NULL, NULL, empty}, "column index"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        print_message("  %s\n", cases[i].name);
        buf_t b = BUF_INIT;
        s_craft(&b, cases[i].lists[0], cases[i].lists[1], cases[i].lists[2], cases[i].lists[3],
                NULL, 0);
        s_assert_refused(b.data, b.len, cases[i].what);
        stm_buf_free(&b);
    }
    /* A name of exactly 1024 bytes is fine. */
    opbatch_t *out = stm_opbatch_new();
    assert_int_equal(s_craft_decode(NULL, NULL, name_1024, name_1024, NULL, out, NULL), STM_OK);
    assert_int_equal(strlen(stm_opbatch_at(out, 0)->table), OP_MAX_NAME_BYTES);
    assert_int_equal(strlen(stm_opbatch_at(out, 0)->column), OP_MAX_NAME_BYTES);
    stm_opbatch_destroy(&out);
}

/* A batch map built key by key. */
static void s_key(msgpack_packer *pk, const char *key)
{
    msgpack_pack_str_with_body(pk, key, strlen(key));
}

static void s_good_lists(msgpack_packer *pk)
{
    s_key(pk, "origins");
    s_pack_array(pk, s_default_origins);
    s_key(pk, "versions");
    s_pack_array(pk, s_default_versions);
    s_key(pk, "tables");
    s_pack_array(pk, s_default_tables);
    s_key(pk, "columns");
    s_pack_array(pk, s_default_columns);
}

static void s_good_ops(msgpack_packer *pk)
{
    s_key(pk, "ops");
    msgpack_pack_array(pk, 1);
    s_pack_array(pk, s_good_op);
}

static void test_codec_batch_structure(void **state)
{
    (void)state;
    buf_t b = BUF_INIT;
    msgpack_packer pk;
    opbatch_t *out = stm_opbatch_new();
    stm_error err = {0};

    /* The ops first, unknown keys anywhere with values of every kind: decode fine. */
    s_packer(&pk, &b);
    msgpack_pack_map(&pk, 9);
    s_key(&pk, "future");
    s_pack_field(&pk, &(s_field)MAP);
    s_good_ops(&pk);
    s_key(&pk, "");
    s_pack_field(&pk, &(s_field)EXT);
    s_good_lists(&pk);
    s_key(&pk, "opsx");
    s_pack_field(&pk, &(s_field)ARRAY);
    s_key(&pk, "origin");
    s_pack_field(&pk, &(s_field)U(UINT64_MAX));
    if (s_decode(b.data, b.len, out, &err) != STM_OK)
        fail_msg("%s", err.msg);
    assert_int_equal(stm_opbatch_count(out), 1);
    assert_string_equal(stm_opbatch_at(out, 0)->table, "t");

    /* Not a map. */
    stm_buf_reset(&b);
    msgpack_pack_array(&pk, 0);
    s_assert_refused(b.data, b.len, "not a map");
    s_assert_refused("", 0, "not a map");
    /* A key that is not a string. */
    stm_buf_reset(&b);
    msgpack_pack_map(&pk, 6);
    s_good_lists(&pk);
    s_good_ops(&pk);
    msgpack_pack_int(&pk, 1);
    msgpack_pack_int(&pk, 1);
    s_assert_refused(b.data, b.len, "a key is not a string");
    /* A list twice. */
    stm_buf_reset(&b);
    msgpack_pack_map(&pk, 6);
    s_good_lists(&pk);
    s_key(&pk, "tables");
    s_pack_array(&pk, s_default_tables);
    s_good_ops(&pk);
    s_assert_refused(b.data, b.len, "a key comes twice");
    /* The ops twice: which would count? Neither. */
    stm_buf_reset(&b);
    msgpack_pack_map(&pk, 6);
    s_good_lists(&pk);
    s_good_ops(&pk);
    s_key(&pk, "ops");
    msgpack_pack_array(&pk, 0);
    s_assert_refused(b.data, b.len, "a key comes twice");
    /* No ops. */
    stm_buf_reset(&b);
    msgpack_pack_map(&pk, 4);
    s_good_lists(&pk);
    s_assert_refused(b.data, b.len, "no \"ops\"");
    /* Ops that are not an array. */
    stm_buf_reset(&b);
    msgpack_pack_map(&pk, 5);
    s_good_lists(&pk);
    s_key(&pk, "ops");
    msgpack_pack_map(&pk, 0);
    s_assert_refused(b.data, b.len, "\"ops\" is not an array");
    /* A list that is not an array. */
    stm_buf_reset(&b);
    msgpack_pack_map(&pk, 2);
    s_key(&pk, "origins");
    msgpack_pack_bin_with_body(&pk, ID_A, 32);
    s_good_ops(&pk);
    s_assert_refused(b.data, b.len, "not an array");
    /* A map declaring more keys than it has. */
    stm_buf_reset(&b);
    msgpack_pack_map(&pk, 7);
    s_good_lists(&pk);
    s_good_ops(&pk);
    s_key(&pk, "x");
    msgpack_pack_nil(&pk);
    s_assert_refused(b.data, b.len, NULL);
    /* Bytes after the batch. */
    stm_buf_reset(&b);
    msgpack_pack_map(&pk, 5);
    s_good_lists(&pk);
    s_good_ops(&pk);
    msgpack_pack_nil(&pk);
    s_assert_refused(b.data, b.len, "bytes follow");

    stm_buf_free(&b);
    stm_opbatch_destroy(&out);
}

static void test_codec_counts_refused_before_allocation(void **state)
{
    (void)state;
    /* Lists and ops declaring billions of entries in a few bytes: refused at the
     * header (an allocation sized by them would abort or show under the sanitizers). */
    const char *keys[] = {"origins", "versions", "tables", "columns", "ops"};
    for (size_t k = 0; k < 5; k++) {
        buf_t b = BUF_INIT;
        msgpack_packer pk;
        s_packer(&pk, &b);
        msgpack_pack_map(&pk, 1);
        s_key(&pk, keys[k]);
        stm_buf_append(&b, "\xdd\xff\xff\xff\xff\x00\x00\x00\x00", 9);
        s_assert_refused(b.data, b.len, NULL);
        stm_buf_reset(&b);
        msgpack_pack_map(&pk, 1);
        s_key(&pk, keys[k]);
        stm_buf_append(&b, "\xdd\x7f\xff\xff\xff", 5);
        s_assert_refused(b.data, b.len, NULL);
        stm_buf_free(&b);
    }
    /* The top map too. */
    s_assert_refused("\xdf\xff\xff\xff\xff\xa3ops\x90", 10, "not a map");
    /* More operations than a batch may hold, each a well-formed (if useless) nil. */
    buf_t b = BUF_INIT;
    msgpack_packer pk;
    s_packer(&pk, &b);
    msgpack_pack_map(&pk, 5);
    s_good_lists(&pk);
    s_key(&pk, "ops");
    msgpack_pack_array(&pk, CODEC_MAX_BATCH_OPS + 1);
    for (unsigned i = 0; i < CODEC_MAX_BATCH_OPS + 1; i++)
        msgpack_pack_nil(&pk);
    s_assert_refused(b.data, b.len, "more operations than a batch may hold");
    /* A list whose count the bytes after it could hold one byte per entry, but not the
     * 34 of an id or the 2 of a name: refused before the list is sized (it took 12
     * bytes per entry, so a 256 MB bundle frame could ask for 3 GB). */
    for (size_t k = 0; k < 4; k++) {
        stm_buf_reset(&b);
        msgpack_pack_map(&pk, 1);
        s_key(&pk, keys[k]);
        msgpack_pack_array(&pk, 60000);
        for (int i = 0; i < 60000; i++)
            msgpack_pack_nil(&pk);
        s_assert_refused(b.data, b.len, k < 2 ? "the id list is not an array of at most"
                                              : "the name list is not an array of at most");
    }
    /* More names than a batch may hold, each well formed. */
    stm_buf_reset(&b);
    msgpack_pack_map(&pk, 1);
    s_key(&pk, "tables");
    msgpack_pack_array(&pk, CODEC_MAX_BATCH_OPS + 1);
    for (unsigned i = 0; i < CODEC_MAX_BATCH_OPS + 1; i++)
        s_key(&pk, "t");
    s_assert_refused(b.data, b.len, "the name list is not an array of at most 100000 names");
    stm_buf_free(&b);
}

/* A batch holds each table and column name once, however many operations name it: a
 * peer's 1,024-byte names in 100,000 operations of a 4 MB message held 200 MB. */
static void test_codec_names_are_held_once(void **state)
{
    (void)state;
    char table[OP_MAX_NAME_BYTES + 1], column[OP_MAX_NAME_BYTES + 1];
    memset(table, 't', OP_MAX_NAME_BYTES);
    memset(column, 'c', OP_MAX_NAME_BYTES);
    table[OP_MAX_NAME_BYTES] = column[OP_MAX_NAME_BYTES] = '\0';
    opbatch_t *in = stm_opbatch_new();
    for (int i = 0; i < 10000; i++) {
        op_t op = s_op(1, (uint64_t)i + 1, table, s_int(i), column, 'I', s_int(i));
        stm_opbatch_add(in, &op);
    }
    buf_t enc = BUF_INIT;
    stm_codec_encode_ops(in, 0, stm_opbatch_count(in), &enc);
    opbatch_t *out = stm_opbatch_new();
    stm_error err = {0};
    assert_int_equal(stm_codec_decode_ops(enc.data, enc.len, out, &err), STM_OK);
    assert_int_equal(stm_opbatch_count(out), 10000);
    for (size_t i = 0; i < 10000; i++)
        s_assert_op_equal(stm_opbatch_at(out, i), stm_opbatch_at(in, i));
    /* The ops themselves, and two names: not 10,000 of each. */
    assert_true(stm_opbatch_bytes(out) < 10000 * (sizeof(op_t) + 64) + 4 * OP_MAX_NAME_BYTES);
    assert_true(stm_opbatch_at(out, 0)->table == stm_opbatch_at(out, 9999)->table);
    stm_buf_free(&enc);
    stm_opbatch_destroy(&in);
    stm_opbatch_destroy(&out);
}

static void test_codec_value_limits(void **state)
{
    (void)state;
    size_t over = OP_MAX_VALUE_BYTES + 1;
    char *big = malloc(over);
    memset(big, 'v', over);
    /* One byte over the limit, as text, as blob, as a key. */
    const s_field text_over[] = {
        U(0), U(1), U(1000), U(0), U(0), I(7), U(0), U('T'), {F_STR, 0, 0, big, over}, END};
    const s_field blob_over[] = {
        U(0), U(1), U(1000), U(0), U(0), I(7), U(0), U('B'), {F_BIN, 0, 0, big, over}, END};
    const s_field key_over[] = {U(0), U(1),   U(1000), U(0), U(0), {F_BIN, 0, 0, big, over},
                                U(0), U('B'), NIL,     END};
    s_assert_op_refused(text_over, "value is not a valid value");
    s_assert_op_refused(blob_over, "value is not a valid value");
    s_assert_op_refused(key_over, "key is not a valid value");
    /* Exactly at the limit: fine. */
    const s_field blob_at[] = {
        U(0), U(1), U(1000), U(0), U(0), I(7), U(0), U('B'), {F_BIN, 0, 0, big, OP_MAX_VALUE_BYTES},
        END};
    opbatch_t *out = stm_opbatch_new();
    stm_error err = {0};
    if (s_craft_decode(NULL, NULL, NULL, NULL, blob_at, out, &err) != STM_OK)
        fail_msg("%s", err.msg);
    assert_int_equal(stm_opbatch_at(out, 0)->value.len, OP_MAX_VALUE_BYTES);
    stm_opbatch_destroy(&out);
    free(big);
    /* Declared lengths larger than the data that follows. */
    const s_field liars[][16] = {
        {U(0), U(1), U(1000), U(0), U(0), I(7), U(0), U('T'), RAW("\xdb\x01\x00\x00\x01vv"), END},
        {U(0), U(1), U(1000), U(0), U(0), I(7), U(0), U('T'), RAW("\xdb\xff\xff\xff\xffvv"), END},
        {U(0), U(1), U(1000), U(0), U(0), I(7), U(0), U('B'), RAW("\xc6\x00\x10\x00\x00vv"), END},
        {U(0), U(1), U(1000), U(0), U(0), RAW("\xc6\x7f\xff\xff\xff"), U(0), U('B'), NIL, END},
    };
    for (size_t i = 0; i < sizeof liars / sizeof liars[0]; i++)
        s_assert_op_refused(liars[i], NULL);
}

/* ---- vectors ---- */

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
    stm_id a = s_id(1), b = s_id(2), c = s_id(3);
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
            id.bytes[k] = (unsigned char)s_rand();
        uint64_t seq = i == 0 ? 0 : i == 1 ? (uint64_t)INT64_MAX : s_rand() >> (s_rand() % 63 + 1);
        stm_vector_set(v, &id, seq);
    }
    return v;
}

static void test_vector_round_trip(void **state)
{
    (void)state;
    s_rng = 99;
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
    unsigned char *p = s_exact(data, len);
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
    s_rng = 5;
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
        s_field entry[8];
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
        s_packer(&pk, &b);
        msgpack_pack_array(&pk, 1);
        s_pack_array(&pk, cases[i].entry);
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
    s_packer(&pk, &b);
    static const s_field a1[] = {BIN(ID_A), U(1), END}, a2[] = {BIN(ID_A), U(2), END},
                         b1[] = {BIN(ID_B), U(1), END};
    msgpack_pack_array(&pk, 2);
    s_pack_array(&pk, a1);
    s_pack_array(&pk, a2);
    s_assert_vector_refused(b.data, b.len, "order");
    stm_buf_reset(&b);
    msgpack_pack_array(&pk, 2);
    s_pack_array(&pk, b1);
    s_pack_array(&pk, a1);
    s_assert_vector_refused(b.data, b.len, "order");
    /* In order, with extra fields in an entry: fine. */
    static const s_field a_extra[] = {BIN(ID_A), U(3), STR("later"), MAP, END};
    stm_buf_reset(&b);
    msgpack_pack_array(&pk, 2);
    s_pack_array(&pk, a_extra);
    s_pack_array(&pk, b1);
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
    s_packer(&pk, b);
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
        cmocka_unit_test(test_op_batch_owns_copies),
        cmocka_unit_test(test_op_clock_compare),
        cmocka_unit_test(test_op_value_equal),
        cmocka_unit_test(test_op_value_bind_and_column),
        cmocka_unit_test(test_codec_every_value_type),
        cmocka_unit_test(test_codec_deletes),
        cmocka_unit_test(test_codec_dictionaries),
        cmocka_unit_test(test_codec_ranges_and_appending),
        cmocka_unit_test(test_codec_decode_failure_leaves_batch_unchanged),
        cmocka_unit_test(test_codec_every_truncation),
        cmocka_unit_test(test_codec_random_flips),
        cmocka_unit_test(test_codec_crafted_good_batch),
        cmocka_unit_test(test_codec_bad_operations),
        cmocka_unit_test(test_codec_forms_a_writer_may_choose),
        cmocka_unit_test(test_codec_bad_lists),
        cmocka_unit_test(test_codec_batch_structure),
        cmocka_unit_test(test_codec_counts_refused_before_allocation),
        cmocka_unit_test(test_codec_value_limits),
        cmocka_unit_test(test_codec_names_are_held_once),
        cmocka_unit_test(test_vector_set_get),
        cmocka_unit_test(test_vector_round_trip),
        cmocka_unit_test(test_vector_malformed),
        cmocka_unit_test(test_vector_entry_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
