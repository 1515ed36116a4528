/* codecutil.c - the helpers codecutil.h describes. */
#include "sync/codec.h"
#include "sync/key.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "codecutil.h"
#include "sync/key.h"

static uint64_t s_rng;

void cu_seed(uint64_t seed)
{
    s_rng = seed;
}

uint64_t cu_rand(void)
{
    s_rng ^= s_rng << 13;
    s_rng ^= s_rng >> 7;
    s_rng ^= s_rng << 17;
    return s_rng;
}

unsigned char *cu_exact(const void *data, size_t len)
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

void cu_packer(msgpack_packer *pk, buf_t *b)
{
    msgpack_packer_init(pk, b, s_buf_write);
}

stm_id cu_id(unsigned n)
{
    stm_id id;
    memset(&id, 0, sizeof id);
    for (int i = 0; i < 4; i++)
        id.bytes[i] = (unsigned char)(n >> (8 * i));
    id.bytes[STM_ID_BYTES - 1] = 0xa5;
    return id;
}

op_value cu_null(void)
{
    op_value v = {VALUE_NULL, 0, 0, NULL, 0};
    return v;
}

op_value cu_int(int64_t i)
{
    op_value v = {VALUE_INTEGER, i, 0, NULL, 0};
    return v;
}

op_value cu_real(double r)
{
    op_value v = {VALUE_REAL, 0, r, NULL, 0};
    return v;
}

op_value cu_text(const void *p, size_t len)
{
    op_value v = {VALUE_TEXT, 0, 0, p, len};
    return v;
}

op_value cu_blob(const void *p, size_t len)
{
    op_value v = {VALUE_BLOB, 0, 0, p, len};
    return v;
}

op_t cu_op(unsigned origin, uint64_t seq, const char *table, op_value pk, const char *column,
           char affinity, op_value value)
{
    op_t op;
    memset(&op, 0, sizeof op);
    op.origin = cu_id(origin);
    op.seq = seq;
    op.hlc = (uint64_t)1700000000000 << 16 | seq;
    op.version_id = cu_id(1000 + origin % 3);
    op.table = table;
    op.pk = pk;
    op.column = column;
    op.affinity = column ? affinity : 0;
    op.value = column ? value : cu_null();
    return op;
}

void cu_assert_op_equal(const op_t *a, const op_t *b)
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
    assert_true(a->born_hlc == b->born_hlc);
    if (a->born_hlc)
        assert_memory_equal(a->born_origin.bytes, b->born_origin.bytes, STM_ID_BYTES);
}

void cu_assert_withheld_equal(const op_withheld *a, const op_withheld *b)
{
    assert_memory_equal(a->origin.bytes, b->origin.bytes, STM_ID_BYTES);
    assert_memory_equal(a->version_id.bytes, b->version_id.bytes, STM_ID_BYTES);
    assert_true(a->seq == b->seq);
    assert_true(a->n == b->n);
    assert_true(a->hlc == b->hlc);
    assert_true(a->bytes == b->bytes);
    assert_string_equal(a->table, b->table);
    assert_true(stm_op_value_equal(&a->pk, &b->pk));
}

void cu_assert_batches_equal(const opbatch_t *a, const opbatch_t *b)
{
    assert_int_equal(stm_opbatch_count(a), stm_opbatch_count(b));
    for (size_t i = 0; i < stm_opbatch_count(a); i++)
        cu_assert_op_equal(stm_opbatch_at(a, i), stm_opbatch_at(b, i));
    assert_int_equal(stm_opbatch_withheld_count(a), stm_opbatch_withheld_count(b));
    for (size_t i = 0; i < stm_opbatch_withheld_count(a); i++)
        cu_assert_withheld_equal(stm_opbatch_withheld_at(a, i), stm_opbatch_withheld_at(b, i));
}

void cu_add_sample_withheld(opbatch_t *b)
{
    op_withheld w = {.origin = cu_id(1),
                     .seq = 40,
                     .n = 7,
                     .hlc = (uint64_t)1700000000000 << 16,
                     .version_id = cu_id(100),
                     .table = "tasks",
                     .pk = cu_text("big", 3),
                     .bytes = 300000000};
    stm_opbatch_add_withheld(b, &w);
    op_value parts[2] = {cu_text("room", 4), cu_int(9)};
    buf_t packed = BUF_INIT;
    stm_key_pack(parts, 2, &packed);
    op_withheld other = {.origin = cu_id(7),
                         .seq = 1,
                         .n = 1,
                         .hlc = 5,
                         .version_id = cu_id(101),
                         .table = "photos",
                         .pk = {.type = VALUE_KEY, .bytes = packed.data, .len = packed.len},
                         .bytes = (uint64_t)INT64_MAX};
    stm_opbatch_add_withheld(b, &other);
    stm_buf_free(&packed);
}

size_t cu_round_trip(const opbatch_t *b)
{
    buf_t enc = BUF_INIT;
    stm_codec_encode_ops(b, 0, stm_opbatch_count(b), &enc);
    opbatch_t *back = stm_opbatch_new();
    stm_error err = {0};
    if (stm_codec_decode_ops(enc.data, enc.len, back, &err) != STM_OK)
        fail_msg("round trip: %s", err.msg);
    cu_assert_batches_equal(b, back);
    stm_opbatch_destroy(&back);
    size_t len = enc.len;
    stm_buf_free(&enc);
    return len;
}

opbatch_t *cu_sample_batch(void)
{
    opbatch_t *b = stm_opbatch_new();
    const op_value values[] = {cu_null(),          cu_int(-5),          cu_int(INT64_MIN),
                               cu_real(3.25),      cu_text("hello", 5), cu_text("", 0),
                               cu_blob("\0\1", 2), cu_int(1 << 20),     cu_real(-0.0)};
    uint64_t seq = 1;
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        op_t op =
            cu_op((unsigned)(i % 3), seq++, i % 2 ? "tasks" : "lists", cu_text("key", 1 + i % 3),
                  i % 2 ? "title" : "name", "TNIRB"[i % 5], values[i]);
        stm_opbatch_add(b, &op);
    }
    /* A key of two columns (key.h), and writes naming the incarnation of their row
     * (identity.h): made by another origin, and by their own row change. */
    op_value parts[2] = {cu_text("room", 4), cu_int(9)};
    buf_t packed = BUF_INIT;
    stm_key_pack(parts, 2, &packed);
    op_t pair = cu_op(2, seq++, "pairs", (op_value){.type = VALUE_KEY, .bytes = packed.data,
                                                    .len = packed.len},
                      "v", 'T', cu_text("x", 1));
    stm_opbatch_add(b, &pair);
    op_t born = cu_op(0, seq++, "users", cu_int(1), "name", 'T', cu_text("bob", 3));
    born.born_hlc = born.hlc - 5;
    memset(born.born_origin.bytes, 0x42, STM_ID_BYTES);
    stm_opbatch_add(b, &born);
    op_t own = cu_op(1, seq++, "users", cu_int(2), NULL, 0, cu_null());
    own.born_hlc = own.hlc;
    own.born_origin = own.origin;
    stm_opbatch_add(b, &own);
    stm_buf_free(&packed);
    /* Last, a plain delete (tests corrupt its fields). */
    op_t del = cu_op(1, seq++, "tasks", cu_int(77), NULL, 0, cu_null());
    stm_opbatch_add(b, &del);
    return b;
}

void cu_pack_field(msgpack_packer *pk, const cu_field *f)
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

static size_t s_count(const cu_field *f)
{
    size_t n = 0;
    while (f[n].kind != F_END)
        n++;
    return n;
}

void cu_pack_array(msgpack_packer *pk, const cu_field *f)
{
    size_t n = s_count(f);
    msgpack_pack_array(pk, n);
    for (size_t i = 0; i < n; i++)
        cu_pack_field(pk, &f[i]);
}
