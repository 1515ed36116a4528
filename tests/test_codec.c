/* Tests of sync/codec against what a peer may send: operation batches cut short at
 * every byte, flipped at random, and crafted by hand to lie (indexes beyond their lists,
 * seq or clock out of range, values of the wrong type, bad names and ids, keys twice,
 * counts the bytes cannot hold, values over the limit), each refused whole with a message
 * saying what is wrong and the batch it was decoded into left as it was; the forms a
 * writer may choose, accepted; names held once however many operations name them.
 * Round trips of good batches are in test_codec_round_trip.c.
 *
 * Inputs that should be refused are copied into buffers of exactly their length
 * (cu_exact), so a read one byte too far shows up under valgrind and ASan. */
#include "base/buf.h"
#include "sync/codec.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "codecutil.h"

/* Decodes data (copied to an exact buffer) into out; returns the code. */
static stm_err s_decode(const void *data, size_t len, opbatch_t *out, stm_error *err)
{
    unsigned char *p = cu_exact(data, len);
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
    op_t keep = cu_op(9, 1, "kept", cu_text(pk, 4), "c", 'T', cu_int(1));
    stm_opbatch_add(out, &keep);
    stm_error err = {0};
    stm_err rc = s_decode(data, len, out, &err);
    if (rc != STM_EPROTO)
        fail_msg("expected refusal (%s), got %d: %s", what ? what : "any", rc, err.msg);
    assert_non_null(strstr(err.msg, "malformed operation batch"));
    if (what && !strstr(err.msg, what))
        fail_msg("expected \"%s\" in \"%s\"", what, err.msg);
    assert_int_equal(stm_opbatch_count(out), 1);
    cu_assert_op_equal(stm_opbatch_at(out, 0), &keep);
    stm_opbatch_destroy(&out);
}

static void test_codec_every_truncation(void **state)
{
    (void)state;
    opbatch_t *b = cu_sample_batch();
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
    opbatch_t *b = cu_sample_batch();
    buf_t enc = BUF_INIT;
    stm_codec_encode_ops(b, 0, stm_opbatch_count(b), &enc);
    opbatch_t *out = stm_opbatch_new();
    unsigned char *copy = malloc(enc.len);
    cu_seed(0x5eed5eed);
    int accepted = 0, refused = 0;
    for (int iter = 0; iter < 4000; iter++) {
        memcpy(copy, enc.data, enc.len);
        int flips = 1 + (int)(cu_rand() % 3);
        for (int f = 0; f < flips; f++)
            copy[cu_rand() % enc.len] ^= (unsigned char)(1 + cu_rand() % 255);
        /* Now and then, also cut it short. */
        size_t len = iter % 5 == 0 ? (size_t)(cu_rand() % enc.len) : enc.len;
        stm_opbatch_clear(out);
        stm_error err = {0};
        stm_err rc = s_decode(copy, len, out, &err);
        if (rc == STM_OK) {
            accepted++;
            s_assert_sane(out);
            /* What decodes encodes back to something that decodes the same. */
            cu_round_trip(out);
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

/* Crafting batches by hand (codecutil.h's fields): one good entry of each list, and one
 * good op (origin 0, seq 1, hlc 1000, version 0, table 0, key 7, column 0, 'T', "v"). */
static const cu_field s_default_origins[] = {BIN(ID_A), END};
static const cu_field s_default_versions[] = {BIN(ID_B), END};
static const cu_field s_default_tables[] = {STR("t"), END};
static const cu_field s_default_columns[] = {STR("c"), END};
static const cu_field s_good_op[] = {U(0), U(1), U(1000), U(0),     U(0),
                                     I(7), U(0), U('T'),  STR("v"), END};

/* A batch of the given lists (NULL: one good entry each) and ops (NULL: one good op;
 * each op an array of fields). */
static void s_craft(buf_t *out, const cu_field *origins, const cu_field *versions,
                    const cu_field *tables, const cu_field *columns, const cu_field *const *ops,
                    size_t nops)
{
    msgpack_packer pk;
    cu_packer(&pk, out);
    msgpack_pack_map(&pk, 5);
    msgpack_pack_str_with_body(&pk, "origins", 7);
    cu_pack_array(&pk, origins ? origins : s_default_origins);
    msgpack_pack_str_with_body(&pk, "versions", 8);
    cu_pack_array(&pk, versions ? versions : s_default_versions);
    msgpack_pack_str_with_body(&pk, "tables", 6);
    cu_pack_array(&pk, tables ? tables : s_default_tables);
    msgpack_pack_str_with_body(&pk, "columns", 7);
    cu_pack_array(&pk, columns ? columns : s_default_columns);
    msgpack_pack_str_with_body(&pk, "ops", 3);
    if (!ops) {
        msgpack_pack_array(&pk, 1);
        cu_pack_array(&pk, s_good_op);
        return;
    }
    msgpack_pack_array(&pk, nops);
    for (size_t i = 0; i < nops; i++)
        cu_pack_array(&pk, ops[i]);
}

static stm_err s_craft_decode(const cu_field *origins, const cu_field *versions,
                              const cu_field *tables, const cu_field *columns, const cu_field *op,
                              opbatch_t *out, stm_error *err)
{
    buf_t b = BUF_INIT;
    const cu_field *ops[] = {op};
    s_craft(&b, origins, versions, tables, columns, op ? ops : NULL, 1);
    stm_err rc = s_decode(b.data, b.len, out, err);
    stm_buf_free(&b);
    return rc;
}

static void s_assert_op_refused(const cu_field *op, const char *what)
{
    buf_t b = BUF_INIT;
    const cu_field *ops[] = {op};
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
        cu_field op[16];
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
         "key is not a value or an array"},
        {"key an array of one value",
         {U(0), U(1), U(1000), U(0), U(0), RAW("\x91\x01"), U(0), U('T'), STR("v"), END},
         "key is not a value or an array"},
        {"key an empty array",
         {U(0), U(1), U(1000), U(0), U(0), RAW("\x90"), U(0), U('T'), STR("v"), END},
         "key is not a value or an array"},
        {"key an array holding an array",
         {U(0), U(1), U(1000), U(0), U(0), RAW("\x92\x01\x92\x01\x02"), U(0), U('T'), STR("v"),
          END},
         "key is not a value or an array"},
        {"key an array of 33 values",
         {U(0), U(1), U(1000), U(0), U(0),
          RAW("\xdc\x00\x21\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01"
              "\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01"),
          U(0), U('T'), STR("v"), END},
         "key is not a value or an array"},
        {"key an array holding a map",
         {U(0), U(1), U(1000), U(0), U(0), RAW("\x92\x01\x80"), U(0), U('T'), STR("v"), END},
         "key is not a value or an array"},
        {"key a map",
         {U(0), U(1), U(1000), U(0), U(0), MAP, U(0), U('T'), STR("v"), END},
         "key is not a value or an array"},
        {"key an ext",
         {U(0), U(1), U(1000), U(0), U(0), EXT, U(0), U('T'), STR("v"), END},
         "key is not a value or an array"},
        {"key above INT64_MAX",
         {U(0), U(1), U(1000), U(0), U(0), U(1ull << 63), U(0), U('T'), STR("v"), END},
         "key is not a value or an array"},
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
        {"an incarnation's origin beyond the list",
         {U(0), U(1), U(1000), U(0), U(0), I(7), U(0), U('T'), STR("v"), U(5), U(9), END},
         "incarnation"},
        {"an incarnation not before the op's clock",
         {U(0), U(1), U(1000), U(0), U(0), I(7), U(0), U('T'), STR("v"), U(1000), U(0), END},
         "incarnation"},
        {"an incarnation that is not a clock",
         {U(0), U(1), U(1000), U(0), U(0), I(7), U(0), U('T'), STR("v"), STR("t"), U(0), END},
         "incarnation"},
        {"0xc1 in an extra field",
         {U(0), U(1), U(1000), U(0), U(0), I(7), U(0), U('T'), STR("v"), RAW("\xc1"), END},
         "extra field is malformed"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        print_message("  %s\n", cases[i].name);
        s_assert_op_refused(cases[i].op, cases[i].what);
    }
    /* An operation that is not an array at all. */
    static const cu_field not_array[] = {U(1), END};
    buf_t b = BUF_INIT;
    msgpack_packer pk;
    cu_packer(&pk, &b);
    msgpack_pack_map(&pk, 1);
    msgpack_pack_str_with_body(&pk, "ops", 3);
    cu_pack_array(&pk, not_array);
    s_assert_refused(b.data, b.len, "not an array of at least 9 fields");
    stm_buf_free(&b);
}

static void test_codec_forms_a_writer_may_choose(void **state)
{
    (void)state;
    /* Integers in signed or wider forms, a float32 value, an incarnation, extra op
     * fields of every type after it: all fine. */
    static const cu_field ops[][20] = {
        {I(0), I(1), I(1000), I(0), I(0), I(7), I(0), I('T'), FLOAT(1.5), END},
        {U(0), U(2), U(1000), U(0), U(0), STR("k"), U(0), U('N'), REAL(2.5), U(100), U(0), U(1),
         STR("x"), MAP, ARRAY, EXT, NIL, TRUE_, END},
        {U(0), U(3), U(1000), U(0), U(0), BIN("\0k"), NIL, NIL, NIL, ARRAY, END},
        {U(0), U(4), U(1000), U(0), U(0), RAW("\xd3\x00\x00\x00\x00\x00\x00\x00\x07"),
         RAW("\xcc\x00"), RAW("\xcd\x00\x49"), RAW("\xdb\x00\x00\x00\x01v"), END},
    };
    const cu_field *list[] = {ops[0], ops[1], ops[2], ops[3]};
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
    assert_int_equal(stm_opbatch_at(out, 1)->born_hlc, 900);
    assert_int_equal(stm_opbatch_at(out, 0)->born_hlc, 0);
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
    const cu_field name_1025[] = {{F_STR, 0, 0, long_name, OP_MAX_NAME_BYTES + 1}, END};
    const cu_field name_1024[] = {{F_STR, 0, 0, long_name, OP_MAX_NAME_BYTES}, END};
    const cu_field name_nul[] = {{F_STR, 0, 0, "t\0x", 3}, END};
    const cu_field name_lead_nul[] = {{F_STR, 0, 0, "\0", 1}, END};
    const cu_field name_empty[] = {STR(""), END};
    const cu_field name_bin[] = {BIN("t"), END};
    const cu_field name_int[] = {U(1), END};
    const cu_field id_31[] = {{F_BIN, 0, 0, ID_A, 31}, END};
    const cu_field id_33[] = {{F_BIN, 0, 0, ID_A ID_B, 33}, END};
    const cu_field id_str[] = {STR(ID_A), END};
    const cu_field id_nil[] = {NIL, END};
    const cu_field empty[] = {END};
    const struct {
        const char *name;
        const cu_field *lists[4];
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
    cu_pack_array(pk, s_default_origins);
    s_key(pk, "versions");
    cu_pack_array(pk, s_default_versions);
    s_key(pk, "tables");
    cu_pack_array(pk, s_default_tables);
    s_key(pk, "columns");
    cu_pack_array(pk, s_default_columns);
}

static void s_good_ops(msgpack_packer *pk)
{
    s_key(pk, "ops");
    msgpack_pack_array(pk, 1);
    cu_pack_array(pk, s_good_op);
}

static void test_codec_batch_structure(void **state)
{
    (void)state;
    buf_t b = BUF_INIT;
    msgpack_packer pk;
    opbatch_t *out = stm_opbatch_new();
    stm_error err = {0};

    /* The ops first, unknown keys anywhere with values of every kind: decode fine. */
    cu_packer(&pk, &b);
    msgpack_pack_map(&pk, 9);
    s_key(&pk, "future");
    cu_pack_field(&pk, &(cu_field)MAP);
    s_good_ops(&pk);
    s_key(&pk, "");
    cu_pack_field(&pk, &(cu_field)EXT);
    s_good_lists(&pk);
    s_key(&pk, "opsx");
    cu_pack_field(&pk, &(cu_field)ARRAY);
    s_key(&pk, "origin");
    cu_pack_field(&pk, &(cu_field)U(UINT64_MAX));
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
    cu_pack_array(&pk, s_default_tables);
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
        cu_packer(&pk, &b);
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
    cu_packer(&pk, &b);
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
        s_assert_refused(b.data, b.len,
                         k < 2 ? "the id list is not an array of at most"
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
        op_t op = cu_op(1, (uint64_t)i + 1, table, cu_int(i), column, 'I', cu_int(i));
        stm_opbatch_add(in, &op);
    }
    buf_t enc = BUF_INIT;
    stm_codec_encode_ops(in, 0, stm_opbatch_count(in), &enc);
    opbatch_t *out = stm_opbatch_new();
    stm_error err = {0};
    assert_int_equal(stm_codec_decode_ops(enc.data, enc.len, out, &err), STM_OK);
    assert_int_equal(stm_opbatch_count(out), 10000);
    for (size_t i = 0; i < 10000; i++)
        cu_assert_op_equal(stm_opbatch_at(out, i), stm_opbatch_at(in, i));
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
    const cu_field text_over[] = {
        U(0), U(1), U(1000), U(0), U(0), I(7), U(0), U('T'), {F_STR, 0, 0, big, over}, END};
    const cu_field blob_over[] = {
        U(0), U(1), U(1000), U(0), U(0), I(7), U(0), U('B'), {F_BIN, 0, 0, big, over}, END};
    const cu_field key_over[] = {U(0), U(1),   U(1000), U(0), U(0), {F_BIN, 0, 0, big, over},
                                 U(0), U('B'), NIL,     END};
    s_assert_op_refused(text_over, "value is not a valid value");
    s_assert_op_refused(blob_over, "value is not a valid value");
    s_assert_op_refused(key_over, "key is not a value or an array");
    /* Exactly at the limit: fine. */
    const cu_field blob_at[] = {
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
    const cu_field liars[][16] = {
        {U(0), U(1), U(1000), U(0), U(0), I(7), U(0), U('T'), RAW("\xdb\x01\x00\x00\x01vv"), END},
        {U(0), U(1), U(1000), U(0), U(0), I(7), U(0), U('T'), RAW("\xdb\xff\xff\xff\xffvv"), END},
        {U(0), U(1), U(1000), U(0), U(0), I(7), U(0), U('B'), RAW("\xc6\x00\x10\x00\x00vv"), END},
        {U(0), U(1), U(1000), U(0), U(0), RAW("\xc6\x7f\xff\xff\xff"), U(0), U('B'), NIL, END},
    };
    for (size_t i = 0; i < sizeof liars / sizeof liars[0]; i++)
        s_assert_op_refused(liars[i], NULL);
}

/* Stand-ins: cut short anywhere, refused whole (the batch left as it was); crafted to
 * lie, refused with what is wrong; the lists may come after them. */
static void test_codec_bad_stand_ins(void **state)
{
    (void)state;
    opbatch_t *b = cu_sample_batch();
    cu_add_sample_withheld(b);
    buf_t enc = BUF_INIT;
    stm_codec_encode_ops(b, 0, stm_opbatch_count(b), &enc);
    for (size_t cut = 0; cut < enc.len; cut++)
        s_assert_refused(enc.data, cut, NULL);
    stm_buf_free(&enc);
    stm_opbatch_destroy(&b);

    static const cu_field good[] = {U(0), U(5), U(3), U(1000), U(0), U(0), STR("k"), U(9), END};
    static const struct {
        cu_field fields[12];
        const char *what;
    } bad[] = {
        {{U(0), U(5), U(3), U(1000), U(0), U(0), STR("k"), END}, "is not [origin"},
        {{U(1), U(5), U(3), U(1000), U(0), U(0), STR("k"), U(9), END}, "index is beyond"},
        {{U(0), U(5), U(3), U(1000), U(1), U(0), STR("k"), U(9), END}, "index is beyond"},
        {{U(0), U(5), U(3), U(1000), U(0), U(1), STR("k"), U(9), END}, "index is beyond"},
        {{U(0), U(0), U(3), U(1000), U(0), U(0), STR("k"), U(9), END}, "out of range"},
        {{U(0), U(5), U(0), U(1000), U(0), U(0), STR("k"), U(9), END}, "out of range"},
        {{U(0), U(5), U(100001), U(1000), U(0), U(0), STR("k"), U(9), END}, "out of range"},
        {{U(0), U((1ull << 62) - 1), U(3), U(1000), U(0), U(0), STR("k"), U(9), END},
         "out of range"},
        {{U(0), U(5), U(3), U((1ull << 62) + 1), U(0), U(0), STR("k"), U(9), END},
         "out of range"},
        {{U(0), U(5), U(3), U(1000), U(0), U(0), MAP, U(9), END}, "key is not a value"},
        {{U(0), U(5), U(3), U(1000), U(0), U(0), STR("k"), I(-1), END}, "bytes is not"},
        {{U(0), U(5), U(3), U(1000), U(0), U(0), STR("k"), U(9), RAW("\xc1"), END},
         "malformed or cut short"},
        {{I(-1), U(5), U(3), U(1000), U(0), U(0), STR("k"), U(9), END}, "is not [origin"},
    };
    buf_t w = BUF_INIT;
    msgpack_packer pk;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        stm_buf_reset(&w);
        cu_packer(&pk, &w);
        msgpack_pack_map(&pk, 6);
        s_good_lists(&pk);
        s_good_ops(&pk);
        s_key(&pk, "withheld");
        msgpack_pack_array(&pk, 2);
        cu_pack_array(&pk, good);
        cu_pack_array(&pk, bad[i].fields);
        s_assert_refused(w.data, w.len, bad[i].what);
    }
    /* Not an array; more declared than the bytes can hold; twice. */
    stm_buf_reset(&w);
    msgpack_pack_map(&pk, 6);
    s_good_lists(&pk);
    s_good_ops(&pk);
    s_key(&pk, "withheld");
    msgpack_pack_map(&pk, 0);
    s_assert_refused(w.data, w.len, "\"withheld\" is not an array");
    stm_buf_reset(&w);
    msgpack_pack_map(&pk, 6);
    s_good_lists(&pk);
    s_good_ops(&pk);
    s_key(&pk, "withheld");
    msgpack_pack_array(&pk, 1000);
    cu_pack_array(&pk, good);
    s_assert_refused(w.data, w.len, NULL);
    stm_buf_reset(&w);
    msgpack_pack_map(&pk, 7);
    s_good_lists(&pk);
    s_good_ops(&pk);
    s_key(&pk, "withheld");
    msgpack_pack_array(&pk, 0);
    s_key(&pk, "withheld");
    msgpack_pack_array(&pk, 0);
    s_assert_refused(w.data, w.len, "a key comes twice");
    /* First, before the lists and the ops: read once they are known. */
    stm_buf_reset(&w);
    msgpack_pack_map(&pk, 6);
    s_key(&pk, "withheld");
    msgpack_pack_array(&pk, 1);
    cu_pack_array(&pk, good);
    s_good_ops(&pk);
    s_good_lists(&pk);
    opbatch_t *out = stm_opbatch_new();
    stm_error err = {0};
    if (s_decode(w.data, w.len, out, &err) != STM_OK)
        fail_msg("%s", err.msg);
    assert_int_equal(stm_opbatch_count(out), 1);
    assert_int_equal(stm_opbatch_withheld_count(out), 1);
    const op_withheld *got = stm_opbatch_withheld_at(out, 0);
    assert_int_equal(got->seq, 5);
    assert_int_equal(got->n, 3);
    assert_int_equal(got->hlc, 1000);
    assert_int_equal(got->bytes, 9);
    assert_string_equal(got->table, "t");
    assert_memory_equal(got->origin.bytes, ID_A, 32);
    assert_memory_equal(got->version_id.bytes, ID_B, 32);
    stm_opbatch_destroy(&out);
    stm_buf_free(&w);
}

/* Which operations a migration wrote ("derived": their positions in "ops") travel with
 * them; a position beyond the ops, or a list that is no array of them, refuses the
 * batch. A batch with none is the same bytes as before the list existed. */
static void test_codec_derived_operations(void **state)
{
    (void)state;
    opbatch_t *b = cu_sample_batch();
    size_t n = stm_opbatch_count(b);
    assert_true(n >= 2);
    buf_t plain = BUF_INIT, enc = BUF_INIT;
    stm_codec_encode_ops(b, 0, n, &plain);
    stm_opbatch_at_mut(b, 1)->derived = true;
    stm_codec_encode_ops(b, 0, n, &enc);
    assert_true(enc.len > plain.len);
    opbatch_t *out = stm_opbatch_new();
    stm_error err = {0};
    if (s_decode(enc.data, enc.len, out, &err) != STM_OK)
        fail_msg("%s", err.msg);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(stm_opbatch_at(out, i)->derived, i == 1);
    stm_opbatch_clear(out);
    if (s_decode(plain.data, plain.len, out, &err) != STM_OK)
        fail_msg("%s", err.msg);
    for (size_t i = 0; i < n; i++)
        assert_false(stm_opbatch_at(out, i)->derived);
    stm_opbatch_destroy(&out);
    for (size_t cut = 0; cut < enc.len; cut++)
        s_assert_refused(enc.data, cut, NULL);
    stm_buf_free(&plain);
    stm_buf_free(&enc);
    stm_opbatch_destroy(&b);

    buf_t w = BUF_INIT;
    msgpack_packer pk;
    cu_packer(&pk, &w);
    msgpack_pack_map(&pk, 6);
    s_good_lists(&pk);
    s_key(&pk, "derived");
    msgpack_pack_array(&pk, 1);
    msgpack_pack_uint32(&pk, 1); /* the good ops are one */
    s_good_ops(&pk);
    s_assert_refused(w.data, w.len, "not one of the batch's operations");
    stm_buf_reset(&w);
    msgpack_pack_map(&pk, 6);
    s_good_lists(&pk);
    s_key(&pk, "derived");
    msgpack_pack_map(&pk, 0);
    s_good_ops(&pk);
    s_assert_refused(w.data, w.len, "\"derived\" is not an array");
    stm_buf_reset(&w);
    msgpack_pack_map(&pk, 7);
    s_good_lists(&pk);
    s_key(&pk, "derived");
    msgpack_pack_array(&pk, 0);
    s_key(&pk, "derived");
    msgpack_pack_array(&pk, 0);
    s_good_ops(&pk);
    s_assert_refused(w.data, w.len, "a key comes twice");
    stm_buf_free(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
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
        cmocka_unit_test(test_codec_bad_stand_ins),
        cmocka_unit_test(test_codec_derived_operations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
