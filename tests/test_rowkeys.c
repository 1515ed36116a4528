/* Tests of keys of every shape (sync/key.h): keys of several columns, in any order and
 * of any affinity, WITHOUT ROWID tables, tables whose only columns are their key, taken
 * by the capture triggers, carried through the codec (what bundles and the wire carry),
 * stored in the oplog and applied to a second real database. */
#include "dbutil.h"
#include "base/buf.h"
#include "sync/apply.h"
#include "sync/key.h"
#include "testutil.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const SCHEMA =
    /* Key order is not declaration order: b comes first. */
    "CREATE TABLE pairs (a TEXT, b INTEGER, v TEXT, PRIMARY KEY (b, a));\n"
    "CREATE TABLE wr (k1 TEXT, k2 BLOB, k3 REAL, v, PRIMARY KEY (k1, k2, k3)) WITHOUT ROWID;\n"
    /* A link table: nothing but its key. */
    "CREATE TABLE links (src TEXT NOT NULL, dst TEXT NOT NULL, PRIMARY KEY (src, dst));\n"
    "CREATE TABLE single (id TEXT PRIMARY KEY, v TEXT) WITHOUT ROWID;\n"
    /* Keys compared as their collations compare them. */
    "CREATE TABLE mails (email TEXT COLLATE NOCASE PRIMARY KEY, name TEXT);\n"
    "CREATE TABLE rooms (room TEXT, n INTEGER, v TEXT, PRIMARY KEY (room COLLATE NOCASE, n))"
    " WITHOUT ROWID;\n"
    "CREATE TABLE codes (code TEXT COLLATE RTRIM PRIMARY KEY, v TEXT);\n";

typedef struct {
    char *dir;
    char a_path[4200], b_path[4200];
    store_t *a, *b;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    f->dir = tu_tmpdir();
    snprintf(f->a_path, sizeof f->a_path, "%s/a.db", f->dir);
    snprintf(f->b_path, sizeof f->b_path, "%s/b.db", f->dir);
    f->a = du_setup(f->a_path, SCHEMA, NULL);
    f->b = du_setup(f->b_path, SCHEMA, NULL);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    stm_store_destroy(&f->a);
    stm_store_destroy(&f->b);
    tu_remove_tree(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

/* Everything from holds that to lacks, through the codec, as a bundle or a peer
 * carries it; returns how many operations went. None may park. */
static size_t s_sync(store_t *from, store_t *to)
{
    opbatch_t *b = du_lacking(from, to);
    assert_int_equal(du_apply(to, b).parked, 0);
    size_t n = stm_opbatch_count(b);
    stm_opbatch_destroy(&b);
    return n;
}

/* A write by the application on path, collected at once (a node would look soon). */
static void s_write(fixture *f, const char *path, const char *sql)
{
    du_exec(path, sql);
    du_ops(path == f->a_path ? f->a : f->b);
}

static void s_assert_same(fixture *f, const char *query)
{
    char *a = du_hash(f->a, query), *b = du_hash(f->b, query);
    if (strcmp(a, b) != 0)
        fail_msg("the replicas differ on %s", query);
    free(a);
    free(b);
}

static void s_assert_all_same(fixture *f)
{
    s_assert_same(f, "SELECT email, name FROM mails ORDER BY email");
    s_assert_same(f, "SELECT room, n, v FROM rooms ORDER BY room, n");
    s_assert_same(f, "SELECT code, v FROM codes ORDER BY code");
    s_assert_same(f, "SELECT a, b, v FROM pairs ORDER BY b, a");
    s_assert_same(f, "SELECT k1, k2, k3, v, typeof(k3) FROM wr ORDER BY k1, k2, k3");
    s_assert_same(f, "SELECT src, dst FROM links ORDER BY src, dst");
    s_assert_same(f, "SELECT id, v FROM single ORDER BY id");
}

static void test_a_key_of_several_columns_is_captured_in_key_order(void **state)
{
    fixture *f = *state;
    du_exec(f->a_path, "INSERT INTO pairs VALUES ('x', 7, 'z')");
    du_ops(f->a);
    /* Three cells, one key: b (7) before a ('x'), packed as a MessagePack array. */
    assert_int_equal(du_int(f->a, "SELECT count(*) FROM temp.ops WHERE tbl = 'pairs' AND "
                                  "pk = x'9207a178'"),
                     3);
    du_exec(f->a_path, "UPDATE pairs SET v = 'w' WHERE a = 'x'");
    du_ops(f->a);
    assert_int_equal(du_int(f->a, "SELECT count(*) FROM temp.ops WHERE col = 'v' AND val = 'w' "
                                  "AND pk = x'9207a178'"),
                     1);
    /* A key changed: the old key deleted, the new one inserted whole. */
    du_exec(f->a_path, "UPDATE pairs SET a = 'y' WHERE a = 'x'");
    du_ops(f->a);
    assert_int_equal(du_int(f->a, "SELECT count(*) FROM temp.ops WHERE col IS NULL AND "
                                  "pk = x'9207a178'"),
                     1);
    assert_int_equal(du_int(f->a, "SELECT count(*) FROM temp.ops WHERE pk = x'9207a179'"), 3);
}

static void test_keys_of_every_shape_sync_through_the_codec(void **state)
{
    fixture *f = *state;
    du_exec(f->a_path, "INSERT INTO pairs VALUES ('x', 1, 'one'), ('x', 2, 'two'), ('y', 1, NULL);"
                       "INSERT INTO wr VALUES ('k', x'00ff', 1.5, 'blob key'),"
                       " ('k', x'00ff', 2.5, 42), ('k', 'text', 1.5, NULL);"
                       "INSERT INTO links VALUES ('n1', 'n2'), ('n2', 'n1'), ('n1', 'n3');"
                       "INSERT INTO single VALUES ('s', 'v')");
    assert_int_equal(s_sync(f->a, f->b), 3 * 3 + 3 * 4 + 3 * 2 + 2);
    s_assert_all_same(f);
    /* Changes from the other side, a key changed and a link removed. */
    du_exec(f->b_path, "UPDATE pairs SET v = 'uno' WHERE b = 1 AND a = 'x';"
                       "UPDATE wr SET k3 = 3.5 WHERE v = 42;"
                       "DELETE FROM links WHERE src = 'n1' AND dst = 'n3';"
                       "UPDATE single SET v = 'w'");
    s_sync(f->b, f->a);
    s_assert_all_same(f);
    assert_int_equal(du_int(f->a, "SELECT count(*) FROM wr WHERE k3 = 3.5 AND v = 42"), 1);
    assert_int_equal(du_int(f->a, "SELECT count(*) FROM links"), 2);
    /* Nothing comes back: what B applied is not captured again. */
    assert_int_equal(s_sync(f->a, f->b), 0);
}

static void test_a_link_deleted_and_added_again_follows_the_later_write(void **state)
{
    fixture *f = *state;
    du_exec(f->a_path, "INSERT INTO links VALUES ('p', 'q')");
    s_sync(f->a, f->b);
    /* A removes the link; B, later and not having seen that, adds it again. */
    du_exec(f->a_path, "DELETE FROM links");
    du_ops(f->a);
    du_exec(f->b_path, "DELETE FROM links; INSERT INTO links VALUES ('p', 'q')");
    s_sync(f->b, f->a);
    s_sync(f->a, f->b);
    s_assert_all_same(f);
    assert_int_equal(du_int(f->a, "SELECT count(*) FROM links"), 1);
    /* A third device's delete, earlier than B's insert, arrives late: the link stays,
     * because the insert of a row that is all key is a write of its key's cells. */
    long long insert_hlc = du_int(f->a, "SELECT max(hlc) FROM stemma_oplog WHERE tbl = 'links'");
    op_value parts[2] = {{.type = VALUE_TEXT, .bytes = "p", .len = 1},
                         {.type = VALUE_TEXT, .bytes = "q", .len = 1}};
    buf_t packed = BUF_INIT;
    stm_key_pack(parts, 2, &packed);
    op_t del;
    memset(&del, 0, sizeof del);
    memset(del.origin.bytes, 0xcc, STM_ID_BYTES);
    del.seq = 1;
    del.hlc = (uint64_t)insert_hlc - 1;
    del.table = "links";
    del.pk = (op_value){.type = VALUE_KEY, .bytes = packed.data, .len = packed.len};
    opbatch_t *batch = stm_opbatch_new();
    stm_opbatch_add(batch, &del);
    assert_int_equal(du_apply(f->a, batch).applied, 1);
    assert_int_equal(du_int(f->a, "SELECT count(*) FROM links"), 1);
    stm_opbatch_destroy(&batch);
    stm_buf_free(&packed);
}

static void test_concurrent_writes_to_one_composite_row_converge(void **state)
{
    fixture *f = *state;
    du_exec(f->a_path, "INSERT INTO pairs VALUES ('x', 1, 'a0')");
    s_sync(f->a, f->b);
    du_exec(f->a_path, "UPDATE pairs SET v = 'from a'");
    du_ops(f->a);
    du_exec(f->b_path, "UPDATE pairs SET v = 'from b'");
    du_ops(f->b);
    s_sync(f->a, f->b);
    s_sync(f->b, f->a);
    s_assert_all_same(f);
    /* B wrote last. */
    assert_int_equal(du_int(f->a, "SELECT v = 'from b' FROM pairs"), 1);
}

static void test_keys_compare_as_their_collation_compares_them(void **state)
{
    fixture *f = *state;
    /* One row to the table on each side, spelt two ways; B writes later. */
    s_write(f, f->a_path,
            "INSERT INTO mails VALUES ('Ann@x.org', 'from a');"
            "INSERT INTO rooms VALUES ('Lobby', 1, 'from a');"
            "INSERT INTO codes VALUES ('k1', 'from a')");
    s_write(f, f->b_path,
            "INSERT INTO mails VALUES ('ann@x.org', 'from b');"
            "INSERT INTO rooms VALUES ('LOBBY', 1, 'from b');"
            "INSERT INTO codes VALUES ('k1  ', 'from b')");
    s_sync(f->a, f->b);
    s_sync(f->b, f->a);
    s_assert_all_same(f);
    /* One row each, the later write's values and spelling everywhere. */
    assert_int_equal(du_int(f->a, "SELECT count(*) FROM mails WHERE email = 'ann@x.org' "
                                  "COLLATE BINARY AND name = 'from b'"),
                     1);
    assert_int_equal(du_int(f->a, "SELECT count(*) FROM rooms WHERE room = 'LOBBY' COLLATE BINARY "
                                  "AND v = 'from b'"),
                     1);
    assert_int_equal(du_int(f->a, "SELECT count(*) FROM codes"), 1);
    /* A new spelling made on A alone reaches B. */
    s_write(f, f->a_path, "UPDATE mails SET email = 'ANN@X.ORG'");
    s_sync(f->a, f->b);
    s_assert_all_same(f);
    assert_int_equal(du_int(f->b, "SELECT count(*) FROM mails WHERE email = 'ANN@X.ORG' "
                                  "COLLATE BINARY"),
                     1);
}

static void test_a_key_of_another_shape_is_parked_with_its_reason(void **state)
{
    fixture *f = *state;
    /* A writer whose pairs table is keyed by one column. */
    opbatch_t *batch = stm_opbatch_new();
    op_t op;
    memset(&op, 0, sizeof op);
    memset(op.origin.bytes, 0xab, STM_ID_BYTES);
    op.seq = 1;
    op.hlc = 1000;
    op.table = "pairs";
    op.pk = (op_value){.type = VALUE_INTEGER, .i = 5};
    op.column = "v";
    op.affinity = 'T';
    op.value = (op_value){.type = VALUE_TEXT, .bytes = "t", .len = 1};
    stm_opbatch_add(batch, &op);
    /* And a key of the right shape with a NULL in it. */
    op_value parts[2] = {{.type = VALUE_INTEGER, .i = 1}, {.type = VALUE_NULL}};
    buf_t packed = BUF_INIT;
    stm_key_pack(parts, 2, &packed);
    op.seq = 2;
    op.pk = (op_value){.type = VALUE_KEY, .bytes = packed.data, .len = packed.len};
    stm_opbatch_add(batch, &op);
    assert_int_equal(du_apply(f->b, batch).parked, 2);
    assert_int_equal(du_int(f->b, "SELECT count(*) FROM stemma_parked WHERE reason = "
                                  "'its key has 1 columns, the table''s key here 2'"),
                     1);
    assert_int_equal(du_int(f->b, "SELECT count(*) FROM stemma_parked WHERE reason LIKE "
                                  "'%NULL primary key%'"),
                     1);
    assert_int_equal(du_int(f->b, "SELECT count(*) FROM pairs"), 0);
    stm_buf_free(&packed);
    stm_opbatch_destroy(&batch);
}

static void test_a_key_is_packed_one_way_only(void **state)
{
    (void)state;
    /* [1, "x"] with the 1 spelt as an int64 of nine bytes: read, it packs as [1, "x"]
     * in the shortest form, so a peer cannot make one key into two. */
    const unsigned char longhand[] = {0x92, 0xd3, 0, 0, 0, 0, 0, 0, 0, 1, 0xa1, 'x'};
    const unsigned char shortest[] = {0x92, 0x01, 0xa1, 'x'};
    msgread_t r;
    stm_msgread_init(&r, longhand, sizeof longhand);
    buf_t scratch = BUF_INIT;
    op_value key;
    assert_true(stm_key_read(&r, &scratch, &key));
    assert_int_equal(key.type, VALUE_KEY);
    assert_int_equal(key.len, sizeof shortest);
    assert_memory_equal(key.bytes, shortest, sizeof shortest);
    assert_int_equal(stm_key_columns(&key), 2);
    assert_false(stm_key_has_null(&key));
    op_value values[KEY_MAX_COLUMNS];
    size_t n = 0;
    assert_true(stm_key_values(&key, values, KEY_MAX_COLUMNS, &n));
    assert_int_equal(n, 2);
    assert_int_equal(values[0].i, 1);
    assert_int_equal(values[1].len, 1);
    /* A plain value is a key of one column. */
    op_value one = {.type = VALUE_TEXT, .bytes = "k", .len = 1};
    assert_int_equal(stm_key_columns(&one), 1);
    /* Damaged bytes name no columns. */
    op_value bad = {.type = VALUE_KEY, .bytes = "\x92\x01", .len = 2};
    assert_int_equal(stm_key_columns(&bad), 0);
    assert_true(stm_key_has_null(&bad));
    stm_buf_free(&scratch);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_a_key_of_several_columns_is_captured_in_key_order,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_keys_of_every_shape_sync_through_the_codec, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_link_deleted_and_added_again_follows_the_later_write,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_writes_to_one_composite_row_converge, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_keys_compare_as_their_collation_compares_them, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_key_of_another_shape_is_parked_with_its_reason,
                                        setup, teardown),
        cmocka_unit_test(test_a_key_is_packed_one_way_only),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
