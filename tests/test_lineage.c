/* Tests of lineage/lineage, lineage/catalog and lineage/family: version ids, the
 * catalog SQLite reports after each migration, and each table's family history. */
#include "lineage/catalog.h"
#include "lineage/lineage.h"
#include "testutil.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void test_version_ids_follow_the_documented_chain(void **state)
{
    (void)state;
    const char *files[] = {"001_a.sql", "CREATE TABLE a(x);\n", "002_b.sql",
                           "CREATE TABLE b(y);\n", NULL};
    lineage_t *l = tu_lineage_files_ok(files);
    assert_int_equal(stm_lineage_count(l), 2);
    /* id(1) = H(zero32 || u64be(1) || text), computed here independently. */
    unsigned char input[32 + 8 + 64] = {0};
    input[32 + 7] = 1;
    const char *text1 = "CREATE TABLE a(x);\n";
    memcpy(input + 40, text1, strlen(text1));
    unsigned char expect1[32];
    crypto_generichash(expect1, 32, input, 40 + strlen(text1), NULL, 0);
    const lineage_version *v1 = stm_lineage_version_at(l, 0);
    assert_memory_equal(v1->id.bytes, expect1, 32);
    assert_true(stm_id_is_zero(&v1->parent));
    /* id(2) chains on id(1). */
    const lineage_version *v2 = stm_lineage_version_at(l, 1);
    const char *text2 = "CREATE TABLE b(y);\n";
    memcpy(input, expect1, 32);
    memset(input + 32, 0, 8);
    input[32 + 7] = 2;
    memcpy(input + 40, text2, strlen(text2));
    unsigned char expect2[32];
    crypto_generichash(expect2, 32, input, 40 + strlen(text2), NULL, 0);
    assert_memory_equal(v2->id.bytes, expect2, 32);
    assert_true(stm_id_equal(&v2->parent, &v1->id));
    /* The checksum is BLAKE2b-256 of the text alone. */
    unsigned char sum[32];
    crypto_generichash(sum, 32, (const unsigned char *)text2, strlen(text2), NULL, 0);
    assert_memory_equal(v2->checksum.bytes, sum, 32);
    stm_lineage_destroy(&l);
}

static void test_ids_depend_on_text_not_on_directory(void **state)
{
    (void)state;
    lineage_t *a = tu_lineage_dir("schemas/tasks");
    /* The same files in another directory, under other descriptions' file names. */
    char *dir = tu_tmpdir();
    schemaset_t *set = NULL;
    stm_error err = {0};
    assert_int_equal(stm_schemaset_load("schemas/tasks", &set, &err), STM_OK);
    for (size_t i = 0; i < stm_schemaset_count(set); i++) {
        char name[64];
        snprintf(name, sizeof name, "%zu_renamed.sql", i + 1);
        tu_write(dir, name, stm_schemaset_at(set, i)->text);
    }
    stm_schemaset_destroy(&set);
    lineage_t *b = tu_lineage_dir(dir);
    assert_int_equal(stm_lineage_count(a), stm_lineage_count(b));
    for (size_t i = 0; i < stm_lineage_count(a); i++)
        assert_true(
            stm_id_equal(&stm_lineage_version_at(a, i)->id, &stm_lineage_version_at(b, i)->id));
    /* One changed byte in version 2 changes ids 2, 3 and 4, not 1. */
    tu_write(dir, "2_renamed.sql", "ALTER TABLE tasks ADD COLUMN priority INTEGER DEFAULT 1;\n");
    lineage_t *c = tu_lineage_dir(dir);
    assert_true(stm_id_equal(&stm_lineage_version_at(a, 0)->id, &stm_lineage_version_at(c, 0)->id));
    for (size_t i = 1; i < 4; i++)
        assert_false(
            stm_id_equal(&stm_lineage_version_at(a, i)->id, &stm_lineage_version_at(c, i)->id));
    stm_lineage_destroy(&a);
    stm_lineage_destroy(&b);
    stm_lineage_destroy(&c);
    tu_remove_tree(dir);
    free(dir);
}

static void test_sql_error_names_file_line_and_sqlite_message(void **state)
{
    (void)state;
    const char *files[] = {"001_a.sql", "CREATE TABLE a(x);\n", "002_b.sql",
                           "-- Description: broken\nCREATE TABLE b(y);\n\nCREATE TABLE c(z"
                           " INTEGER,, w);\n",
                           NULL};
    stm_error err = {0};
    assert_null(tu_lineage_files(files, &err));
    assert_int_equal(err.code, STM_EINPUT);
    assert_non_null(strstr(err.msg, "002_b.sql:4: "));
    assert_non_null(strstr(err.msg, "syntax error"));
    const char *missing[] = {"001_a.sql", "ALTER TABLE nope ADD COLUMN x;\n", NULL};
    assert_null(tu_lineage_files(missing, &err));
    assert_non_null(strstr(err.msg, "001_a.sql:1: no such table: nope"));
    const char *txn[] = {"001_a.sql", "BEGIN;\nCREATE TABLE a(x);\nCOMMIT;\n", NULL};
    assert_null(tu_lineage_files(txn, &err));
    assert_non_null(strstr(err.msg, "001_a.sql:1: a migration may not control transactions"));
}

static void test_catalog_of_the_tasks_example(void **state)
{
    (void)state;
    lineage_t *l = tu_lineage_dir("schemas/tasks");
    const family_t *tasks = stm_lineage_family_find(l, "TASKS"); /* case folded */
    assert_non_null(tasks);
    const catalog_table *t = stm_family_table(tasks);
    assert_int_equal(stm_catalog_table_count(t), 7);
    const catalog_column *id = stm_catalog_table_column(t, 0);
    assert_string_equal(id->name, "id");
    assert_string_equal(id->decltype, "TEXT");
    assert_int_equal(id->affinity, AFFINITY_TEXT);
    assert_int_equal(id->pk, 1);
    const catalog_column *done = stm_catalog_table_find(t, "done");
    assert_true(done->not_null);
    assert_string_equal(done->default_sql, "0");
    assert_int_equal(done->affinity, AFFINITY_INTEGER);
    const catalog_column *notes = stm_catalog_table_find(t, "notes");
    assert_null(notes->default_sql);
    assert_false(notes->not_null);
    const catalog_column *tags = stm_catalog_table_find(t, "tags");
    assert_string_equal(tags->default_sql, "'[]'");
    assert_int_equal(stm_lineage_family_count(l), 4); /* comments, lists, tags, tasks */
    assert_string_equal(stm_family_name(stm_lineage_family_at(l, 0)), "comments");
    stm_lineage_destroy(&l);
}

static void test_affinity_rules(void **state)
{
    (void)state;
    assert_int_equal(stm_catalog_affinity_of("INT"), AFFINITY_INTEGER);
    assert_int_equal(stm_catalog_affinity_of("unsigned big int"), AFFINITY_INTEGER);
    assert_int_equal(stm_catalog_affinity_of("VARCHAR(255)"), AFFINITY_TEXT);
    assert_int_equal(stm_catalog_affinity_of("clob"), AFFINITY_TEXT);
    assert_int_equal(stm_catalog_affinity_of("BLOB"), AFFINITY_BLOB);
    assert_int_equal(stm_catalog_affinity_of(""), AFFINITY_BLOB);
    assert_int_equal(stm_catalog_affinity_of("DOUBLE PRECISION"), AFFINITY_REAL);
    assert_int_equal(stm_catalog_affinity_of("FLOATING POINT"), AFFINITY_INTEGER); /* "INT" wins */
    assert_int_equal(stm_catalog_affinity_of("DECIMAL(10,5)"), AFFINITY_NUMERIC);
    assert_int_equal(stm_catalog_affinity_of("STRING"), AFFINITY_NUMERIC);
    catalog_affinity a;
    assert_true(stm_catalog_affinity_parse("REAL", &a));
    assert_int_equal(a, AFFINITY_REAL);
    assert_false(stm_catalog_affinity_parse("real", &a));
}

static void test_family_history_add_drop_rename_and_rebuild(void **state)
{
    (void)state;
    const char *files[] = {
        "001_create.sql", "CREATE TABLE t(id INTEGER PRIMARY KEY, a TEXT, b TEXT);\n",
        "002_add.sql", "ALTER TABLE t ADD COLUMN c REAL DEFAULT 1.5;\n",
        "003_drop.sql", "ALTER TABLE t DROP COLUMN b;\n",
        "004_rename.sql", "ALTER TABLE t RENAME COLUMN a TO title;\n",
        "005_index_only.sql", "CREATE INDEX t_by_title ON t(title);\n",
        /* A rebuild that only reorders the columns is not a change of definition. */
        "006_rebuild_same.sql",
        "CREATE TABLE t_new(c REAL DEFAULT 1.5, title TEXT, id INTEGER PRIMARY KEY);\n"
        "INSERT INTO t_new(id, title, c) SELECT id, title, c FROM t;\n"
        "DROP TABLE t;\nALTER TABLE t_new RENAME TO t;\n",
        /* A rebuild that changes a type is. */
        "007_rebuild_type.sql",
        "CREATE TABLE t_new(id INTEGER PRIMARY KEY, title TEXT NOT NULL DEFAULT '', c INTEGER);\n"
        "INSERT INTO t_new SELECT id, coalesce(title, ''), c FROM t;\n"
        "DROP TABLE t;\nALTER TABLE t_new RENAME TO t;\n",
        "008_drop_table.sql", "DROP TABLE t;\n",
        "009_recreate.sql", "CREATE TABLE t(id INTEGER PRIMARY KEY) WITHOUT ROWID;\n",
        "010_view.sql", "CREATE VIEW v AS SELECT id FROM t;\n",
        NULL};
    lineage_t *l = tu_lineage_files_ok(files);
    assert_int_equal(stm_lineage_count(l), 10);
    assert_int_equal(stm_lineage_family_count(l), 1); /* the view and t_new are not families */
    const family_t *f = stm_lineage_family_find(l, "t");
    assert_int_equal(stm_family_count(f), 7);
    const family_entry *e = stm_family_entry_at(f, 0);
    assert_int_equal(e->version, 1);
    assert_int_equal(e->action, FAMILY_CREATED);
    assert_int_equal(e->nadded, 3);
    e = stm_family_entry_at(f, 1);
    assert_int_equal(e->version, 2);
    assert_int_equal(e->action, FAMILY_CHANGED);
    assert_int_equal(e->nadded, 1);
    assert_string_equal(e->added[0], "c");
    assert_int_equal(stm_catalog_table_find(e->table, "c")->affinity, AFFINITY_REAL);
    e = stm_family_entry_at(f, 2);
    assert_int_equal(e->version, 3);
    assert_int_equal(e->nremoved, 1);
    assert_string_equal(e->removed[0], "b");
    e = stm_family_entry_at(f, 3);
    assert_int_equal(e->version, 4);
    assert_int_equal(e->nadded, 1);
    assert_string_equal(e->added[0], "title");
    assert_int_equal(e->nremoved, 1);
    assert_string_equal(e->removed[0], "a");
    e = stm_family_entry_at(f, 4);
    assert_int_equal(e->version, 7); /* 5 and 6 did not change the definition */
    assert_int_equal(e->nchanged, 2);
    assert_string_equal(e->changed[0], "title");
    assert_string_equal(e->changed[1], "c");
    assert_true(stm_catalog_table_find(e->table, "title")->not_null);
    e = stm_family_entry_at(f, 5);
    assert_int_equal(e->version, 8);
    assert_int_equal(e->action, FAMILY_DROPPED);
    assert_null(e->table);
    assert_int_equal(e->nremoved, 3);
    e = stm_family_entry_at(f, 6);
    assert_int_equal(e->version, 9);
    assert_int_equal(e->action, FAMILY_CREATED);
    assert_true(stm_catalog_table_without_rowid(e->table));
    assert_true(stm_id_equal(&stm_lineage_version_at(l, 8)->id, &e->version_id));
    stm_lineage_destroy(&l);
}

static void test_generated_columns_are_marked(void **state)
{
    (void)state;
    const char *files[] = {"001_a.sql",
                           "CREATE TABLE p(id INTEGER PRIMARY KEY, w REAL, h REAL,"
                           " area REAL GENERATED ALWAYS AS (w * h) STORED,"
                           " half REAL AS (w / 2));\n",
                           NULL};
    lineage_t *l = tu_lineage_files_ok(files);
    const catalog_table *t = stm_family_table(stm_lineage_family_find(l, "p"));
    assert_int_equal(stm_catalog_table_find(t, "area")->hidden, 3);
    assert_int_equal(stm_catalog_table_find(t, "half")->hidden, 2);
    assert_int_equal(stm_catalog_table_find(t, "w")->hidden, 0);
    stm_lineage_destroy(&l);
}

static void test_family_heads_ignore_version_names(void **state)
{
    (void)state;
    /* The same table reached through different database histories has the same head. */
    const char *a[] = {"001_a.sql", "CREATE TABLE t(x TEXT);\n", "002_b.sql",
                       "CREATE TABLE other(y);\n", NULL};
    const char *b[] = {"001_z.sql", "CREATE TABLE unrelated(q);\n", "002_y.sql",
                       "CREATE TABLE t(x TEXT);\n", NULL};
    lineage_t *la = tu_lineage_files_ok(a), *lb = tu_lineage_files_ok(b);
    stm_id ha = stm_family_head(stm_lineage_family_find(la, "t"));
    stm_id hb = stm_family_head(stm_lineage_family_find(lb, "t"));
    assert_true(stm_id_equal(&ha, &hb));
    stm_lineage_destroy(&la);
    stm_lineage_destroy(&lb);
}

static void test_lineage_add_version_checks_the_chain(void **state)
{
    (void)state;
    lineage_t *l = stm_lineage_new("x");
    stm_id zero = {{0}}, one = {{1}}, two = {{2}};
    stm_error err = {0};
    assert_int_equal(stm_lineage_add_version(l, 2, &one, &zero, &zero, "d", &err), STM_ECORRUPT);
    assert_int_equal(stm_lineage_add_version(l, 1, &one, &two, &zero, "d", &err), STM_ECORRUPT);
    assert_non_null(strstr(err.msg, "parent"));
    assert_int_equal(stm_lineage_add_version(l, 1, &one, &zero, &zero, "d", &err), STM_OK);
    assert_int_equal(stm_lineage_add_version(l, 2, &two, &zero, &zero, "d", &err), STM_ECORRUPT);
    assert_int_equal(stm_lineage_add_version(l, 2, &two, &one, &zero, "d", &err), STM_OK);
    assert_int_equal(stm_lineage_count(l), 2);
    assert_int_equal(stm_lineage_add_family(l, stm_family_new("T"), &err), STM_OK);
    assert_int_equal(stm_lineage_add_family(l, stm_family_new("t"), &err), STM_ECORRUPT);
    stm_lineage_destroy(&l);
}

/* True when a and b say the same of every table, column by column in order. */
static bool s_catalogs_equal(const catalog_t *a, const catalog_t *b)
{
    if (stm_catalog_count(a) != stm_catalog_count(b) ||
        stm_catalog_virtual_count(a) != stm_catalog_virtual_count(b))
        return false;
    for (size_t i = 0; i < stm_catalog_count(a); i++) {
        const catalog_table *x = stm_catalog_at(a, i), *y = stm_catalog_at(b, i);
        if (strcmp(stm_catalog_table_name(x), stm_catalog_table_name(y)) != 0 ||
            stm_catalog_table_without_rowid(x) != stm_catalog_table_without_rowid(y) ||
            stm_catalog_table_keys(x) != stm_catalog_table_keys(y) ||
            stm_catalog_table_count(x) != stm_catalog_table_count(y))
            return false;
        for (size_t k = 0; k < stm_catalog_table_count(x); k++)
            if (!stm_catalog_column_equal(stm_catalog_table_column(x, k),
                                          stm_catalog_table_column(y, k)))
                return false;
    }
    return true;
}

static void test_a_catalog_read_since_another_is_read_whole(void **state)
{
    (void)state;
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(":memory:", &db), SQLITE_OK);
    /* Each step changes some tables and leaves others: each reading since the one
     * before must say what a reading from nothing says. */
    static const char *const steps[] = {
        "CREATE TABLE a (id TEXT PRIMARY KEY COLLATE NOCASE, x TEXT);"
        "CREATE TABLE b (id INTEGER PRIMARY KEY, y TEXT) WITHOUT ROWID;"
        "CREATE TABLE c (id INTEGER PRIMARY KEY, z INTEGER);",
        "ALTER TABLE a ADD COLUMN w REAL DEFAULT 1.5;",
        "ALTER TABLE b RENAME COLUMN y TO yy;",
        "ALTER TABLE a DROP COLUMN x;",
        "CREATE TABLE c_new (id INTEGER PRIMARY KEY, z TEXT NOT NULL);"
        "INSERT INTO c_new SELECT * FROM c; DROP TABLE c; ALTER TABLE c_new RENAME TO c;",
        "ALTER TABLE a RENAME TO a2; ALTER TABLE b RENAME TO a; ALTER TABLE a2 RENAME TO b;",
        "CREATE TABLE d (k TEXT PRIMARY KEY, t TEXT GENERATED ALWAYS AS (upper(k)));",
    };
    catalog_t *prev = NULL;
    stm_error err = {0};
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        assert_int_equal(sqlite3_exec(db, steps[i], NULL, NULL, NULL), SQLITE_OK);
        catalog_t *since = NULL, *whole = NULL;
        assert_int_equal(stm_catalog_read_since(db, prev, &since, &err), STM_OK);
        assert_int_equal(stm_catalog_read(db, &whole, &err), STM_OK);
        assert_true(s_catalogs_equal(since, whole));
        stm_catalog_destroy(&whole);
        stm_catalog_destroy(&prev);
        prev = since;
    }
    stm_catalog_destroy(&prev);
    sqlite3_close(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_version_ids_follow_the_documented_chain),
        cmocka_unit_test(test_ids_depend_on_text_not_on_directory),
        cmocka_unit_test(test_sql_error_names_file_line_and_sqlite_message),
        cmocka_unit_test(test_catalog_of_the_tasks_example),
        cmocka_unit_test(test_affinity_rules),
        cmocka_unit_test(test_family_history_add_drop_rename_and_rebuild),
        cmocka_unit_test(test_generated_columns_are_marked),
        cmocka_unit_test(test_family_heads_ignore_version_names),
        cmocka_unit_test(test_lineage_add_version_checks_the_chain),
        cmocka_unit_test(test_a_catalog_read_since_another_is_read_whole),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
