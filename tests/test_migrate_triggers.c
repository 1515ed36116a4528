/* Tests of the capture triggers across migration steps (sync/migrate_run.c with
 * sync/capture.c): a run removes every trigger at its start and makes them again at its
 * end, and after it every synced table is captured as it now is, whatever the
 * steps did to it (a column added, renamed, dropped and added again, a table rebuilt
 * under its own name, two tables that swap names). Each test migrates a real database
 * file in a scratch directory through a schema set written there. */
#include "base/buf.h"
#include "sync/migrate.h"
#include "sync/store.h"
#include "dbutil.h"
#include "testutil.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Version 2 changes b and creates c; a stays as it was. Each later version does one
 * thing a trigger left in place would get wrong. */
static const char *const s_files[][2] = {
    {"001_start.sql", "CREATE TABLE a (id TEXT PRIMARY KEY, x TEXT);\n"
                      "CREATE TABLE b (id INTEGER PRIMARY KEY, y TEXT);\n"},
    {"002_more.sql", "ALTER TABLE b ADD COLUMN z TEXT;\n"
                     "CREATE TABLE c (id TEXT PRIMARY KEY, w TEXT);\n"},
    {"003_rename_column.sql", "ALTER TABLE b RENAME COLUMN y TO yy;\n"},
    /* a's definition is the same after as before: the lineage shows no change. */
    {"004_drop_and_add.sql", "ALTER TABLE a DROP COLUMN x;\n"
                             "ALTER TABLE a ADD COLUMN x TEXT;\n"},
    /* So too a table rebuilt under its own name, its triggers gone with the old one. */
    {"005_rebuild.sql", "CREATE TABLE a_new (id TEXT PRIMARY KEY, x TEXT);\n"
                        "INSERT INTO a_new SELECT id, x FROM a;\n"
                        "DROP TABLE a;\n"
                        "ALTER TABLE a_new RENAME TO a;\n"},
    /* And two tables of one definition that swap names: triggers follow their table. */
    {"006_swap.sql", "CREATE TABLE d (id TEXT PRIMARY KEY, v TEXT);\n"
                     "CREATE TABLE e (id TEXT PRIMARY KEY, v TEXT);\n"},
    {"007_swap.sql", "ALTER TABLE d RENAME TO tmp;\n"
                     "ALTER TABLE e RENAME TO d;\n"
                     "ALTER TABLE tmp RENAME TO e;\n"},
};
#define S_FILES (sizeof s_files / sizeof s_files[0])

typedef struct {
    char *dir;     /* scratch directory */
    char *schemas; /* DIR/schemas */
    char *db;      /* DIR/app.db */
} s_fixture;

static int s_setup(void **state)
{
    s_fixture *f = calloc(1, sizeof *f);
    f->dir = tu_tmpdir();
    f->schemas = tu_path(f->dir, "schemas");
    assert_int_equal(mkdir(f->schemas, 0755), 0);
    f->db = tu_path(f->dir, "app.db");
    for (size_t i = 0; i < S_FILES; i++)
        tu_write(f->schemas, s_files[i][0], s_files[i][1]);
    *state = f;
    return 0;
}

static int s_teardown(void **state)
{
    s_fixture *f = *state;
    tu_remove_tree(f->dir);
    free(f->dir);
    free(f->schemas);
    free(f->db);
    free(f);
    return 0;
}

static void s_migrate(const s_fixture *f, int to)
{
    stm_error err = {0};
    migrate_t *m = NULL;
    if (stm_migrate_open(f->db, f->schemas, &m, &err) != STM_OK)
        fail_msg("open: %s", err.msg);
    migrate_options o = MIGRATE_OPTIONS_INIT;
    o.to = to;
    o.backup = false;
    if (stm_migrate_run(m, &o, NULL, &err) != STM_OK)
        fail_msg("migrate to %d: %s", to, err.msg);
    stm_migrate_destroy(&m);
}

static store_t *s_store(const s_fixture *f)
{
    store_t *s = NULL;
    stm_error err = {0};
    if (stm_store_open(f->db, STORE_OPEN_EXISTING, &s, &err) != STM_OK)
        fail_msg("%s", err.msg);
    return s;
}

static long long s_int(const s_fixture *f, const char *sql)
{
    store_t *s = s_store(f);
    long long v = du_int(s, sql);
    stm_store_destroy(&s);
    return v;
}

/* The operations the store holds on table.col (any column: col NULL), the queue
 * collected first. */
static long long s_ops(const s_fixture *f, const char *table, const char *col)
{
    store_t *s = s_store(f);
    du_ops(s);
    buf_t q = BUF_INIT;
    stm_buf_printf(&q, "SELECT count(*) FROM temp.ops WHERE tbl = '%s'", table);
    if (col)
        stm_buf_printf(&q, " AND col = '%s'", col);
    long long n = du_int(s, stm_buf_str(&q));
    stm_buf_free(&q);
    stm_store_destroy(&s);
    return n;
}

/* How many operations the application's write sql makes on table.col (col NULL: on
 * any column of table). */
static long long s_captured(const s_fixture *f, const char *sql, const char *table, const char *col)
{
    long long before = s_ops(f, table, col);
    du_exec(f->db, sql);
    return s_ops(f, table, col) - before;
}

/* A run drops every capture trigger at its start and makes them once, for the version
 * it reaches, before its commit: after seven steps in one run, every table has its four
 * and each column is captured under the name it now has. */
static void test_a_run_of_steps_captures_every_table_at_the_version_it_reaches(void **state)
{
    s_fixture *f = *state;
    s_migrate(f, (int)S_FILES);
    static const char *const tables[] = {"a", "b", "c", "d", "e"};
    for (size_t i = 0; i < sizeof tables / sizeof tables[0]; i++) {
        buf_t q = BUF_INIT;
        stm_buf_printf(&q,
                       "SELECT count(*) FROM sqlite_schema WHERE type = 'trigger' AND "
                       "tbl_name = '%s'",
                       tables[i]);
        assert_int_equal(s_int(f, stm_buf_str(&q)), 4);
        stm_buf_free(&q);
    }
    assert_int_equal(s_captured(f, "INSERT INTO a VALUES ('a1', 'x1')", "a", "x"), 1);
    assert_int_equal(s_captured(f, "INSERT INTO b (id, yy, z) VALUES (1, 'y', 'z')", "b", "yy"), 1);
    assert_int_equal(s_captured(f, "UPDATE b SET z = 'zz' WHERE id = 1", "b", "z"), 1);
    assert_int_equal(s_captured(f, "INSERT INTO c VALUES ('c1', 'w1')", "c", "w"), 1);
    assert_int_equal(s_captured(f, "INSERT INTO d VALUES ('d1', 'v1')", "d", "v"), 1);
    assert_int_equal(s_captured(f, "INSERT INTO e VALUES ('e1', 'v1')", "e", "v"), 1);
}

static void test_a_column_added_is_captured_after_the_step(void **state)
{
    s_fixture *f = *state;
    s_migrate(f, 1);
    du_exec(f->db, "INSERT INTO b (id, y) VALUES (1, 'one')");
    s_migrate(f, 2);
    assert_int_equal(s_captured(f, "UPDATE b SET z = 'zed' WHERE id = 1", "b", "z"), 1);
    assert_int_equal(s_captured(f, "INSERT INTO c VALUES ('c1', 'w1')", "c", "w"), 1);
}

static void test_a_column_renamed_is_captured_under_its_new_name(void **state)
{
    s_fixture *f = *state;
    s_migrate(f, 2);
    du_exec(f->db, "INSERT INTO b (id, y) VALUES (1, 'one')");
    s_migrate(f, 3);
    assert_int_equal(s_captured(f, "UPDATE b SET yy = 'uno' WHERE id = 1", "b", "yy"), 1);
    assert_int_equal(s_captured(f, "UPDATE b SET yy = 'eins' WHERE id = 1", "b", NULL), 1);
}

static void test_a_column_dropped_and_added_again_as_it_was_migrates(void **state)
{
    s_fixture *f = *state;
    s_migrate(f, 3);
    du_exec(f->db, "INSERT INTO a VALUES ('a1', 'ex')");
    /* The lineage shows a unchanged, so its triggers stay for the step; they name x,
     * which ALTER TABLE DROP COLUMN refuses to drop. The step runs again without. */
    s_migrate(f, 4);
    assert_int_equal(s_int(f, "SELECT count(*) FROM schema_version"), 4);
    assert_int_equal(s_captured(f, "UPDATE a SET x = 'new' WHERE id = 'a1'", "a", "x"), 1);
}

static void test_a_table_rebuilt_under_its_name_is_captured(void **state)
{
    s_fixture *f = *state;
    s_migrate(f, 4);
    du_exec(f->db, "INSERT INTO a VALUES ('a1', 'ex')");
    s_migrate(f, 5);
    assert_int_equal(s_int(f, "SELECT count(*) FROM sqlite_schema WHERE type = 'trigger' AND "
                              "tbl_name = 'a'"),
                     4);
    assert_int_equal(s_captured(f, "UPDATE a SET x = 'new' WHERE id = 'a1'", "a", "x"), 1);
}

static void test_tables_that_swap_names_are_captured_under_their_names(void **state)
{
    s_fixture *f = *state;
    s_migrate(f, 6);
    s_migrate(f, 7);
    /* Every trigger is on the table it names, and queues that table's name (those on
     * stemma's own tables keep its counters). */
    assert_int_equal(s_int(f, "SELECT count(*) FROM sqlite_schema WHERE type = 'trigger' AND "
                              "tbl_name NOT LIKE 'stemma%' AND "
                              "name NOT LIKE '%\\_' || tbl_name ESCAPE '\\'"),
                     0);
    assert_int_equal(s_captured(f, "INSERT INTO d VALUES ('d1', 'v')", "d", "v"), 1);
    assert_int_equal(s_ops(f, "e", NULL), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_a_run_of_steps_captures_every_table_at_the_version_it_reaches, s_setup,
            s_teardown),
        cmocka_unit_test_setup_teardown(test_a_column_added_is_captured_after_the_step, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_a_column_renamed_is_captured_under_its_new_name,
                                        s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_a_column_dropped_and_added_again_as_it_was_migrates,
                                        s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_a_table_rebuilt_under_its_name_is_captured, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_tables_that_swap_names_are_captured_under_their_names,
                                        s_setup, s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
