/* Tests of lineage/schemaset: reading migration directories, and every way one can be
 * wrong. */
#include "lineage/schemaset.h"
#include "testutil.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void test_loads_the_tasks_example(void **state)
{
    (void)state;
    schemaset_t *set = NULL;
    stm_error err = {0};
    assert_int_equal(stm_schemaset_load("schemas/tasks", &set, &err), STM_OK);
    assert_string_equal(stm_schemaset_name(set), "tasks");
    assert_int_equal(stm_schemaset_count(set), 4);
    const schemaset_migration *m = stm_schemaset_at(set, 1);
    assert_int_equal(m->number, 2);
    assert_string_equal(m->file, "002_add_priority.sql");
    assert_string_equal(m->description, "Tasks get a priority");
    assert_non_null(strstr(m->text, "ADD COLUMN priority"));
    assert_string_equal(m->down_file, "002_add_priority.down.sql");
    assert_non_null(strstr(m->down_text, "DROP COLUMN priority"));
    stm_schemaset_destroy(&set);
    assert_null(set);
    stm_schemaset_destroy(&set); /* safe twice */
}

static void test_description_falls_back_to_file_name(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    tu_write(dir, "001_create_the_users.sql", "CREATE TABLE users(id INTEGER PRIMARY KEY);\n");
    tu_write(dir, "002_more-things.sql", "-- just a comment\nCREATE TABLE t(x);\n");
    tu_write(dir, "003_described.sql", "--DESCRIPTION:   Spaces trimmed  \nCREATE TABLE u(x);\n");
    tu_write(dir, "README.md", "not a migration\n");
    schemaset_t *set = NULL;
    stm_error err = {0};
    assert_int_equal(stm_schemaset_load(dir, &set, &err), STM_OK);
    assert_int_equal(stm_schemaset_count(set), 3);
    assert_string_equal(stm_schemaset_at(set, 0)->description, "create the users");
    assert_string_equal(stm_schemaset_at(set, 1)->description, "more things");
    assert_string_equal(stm_schemaset_at(set, 2)->description, "Spaces trimmed");
    assert_null(stm_schemaset_at(set, 0)->down_file);
    stm_schemaset_destroy(&set);
    tu_remove_tree(dir);
    free(dir);
}

static void test_line_endings_are_normalised(void **state)
{
    (void)state;
    char *lf = tu_tmpdir(), *crlf = tu_tmpdir();
    tu_write(lf, "001_a.sql", "CREATE TABLE t(x);\nCREATE TABLE u(y);\n");
    tu_write(crlf, "001_a.sql", "\xef\xbb\xbf" "CREATE TABLE t(x);\r\nCREATE TABLE u(y);\r");
    schemaset_t *a = NULL, *b = NULL;
    stm_error err = {0};
    assert_int_equal(stm_schemaset_load(lf, &a, &err), STM_OK);
    assert_int_equal(stm_schemaset_load(crlf, &b, &err), STM_OK);
    assert_int_equal(stm_schemaset_at(a, 0)->text_len, stm_schemaset_at(b, 0)->text_len);
    assert_string_equal(stm_schemaset_at(a, 0)->text, stm_schemaset_at(b, 0)->text);
    stm_schemaset_destroy(&a);
    stm_schemaset_destroy(&b);
    tu_remove_tree(lf);
    tu_remove_tree(crlf);
    free(lf);
    free(crlf);
}

static void test_empty_directory_is_an_empty_history(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    schemaset_t *set = NULL;
    stm_error err = {0};
    assert_int_equal(stm_schemaset_load(dir, &set, &err), STM_OK);
    assert_int_equal(stm_schemaset_count(set), 0);
    stm_schemaset_destroy(&set);
    tu_remove_tree(dir);
    free(dir);
}

/* Loads a directory made of (name, text) pairs and expects an error whose message
 * contains each of the given fragments. */
static void s_expect_error(stm_err code, const char *const *files, const char *const *fragments)
{
    char *dir = tu_tmpdir();
    for (size_t i = 0; files[i]; i += 2)
        tu_write(dir, files[i], files[i + 1]);
    schemaset_t *set = NULL;
    stm_error err = {0};
    assert_int_equal(stm_schemaset_load(dir, &set, &err), code);
    assert_null(set);
    for (size_t i = 0; fragments[i]; i++) {
        if (!strstr(err.msg, fragments[i]))
            fail_msg("message \"%s\" lacks \"%s\"", err.msg, fragments[i]);
    }
    assert_null(strchr(err.msg, '\n'));
    tu_remove_tree(dir);
    free(dir);
}

static void test_gap_is_an_error(void **state)
{
    (void)state;
    const char *files[] = {"001_a.sql", "CREATE TABLE a(x);", "003_c.sql", "CREATE TABLE c(x);",
                           NULL};
    const char *frags[] = {"003_c.sql", "gap", "3 follows 1", NULL};
    s_expect_error(STM_EINPUT, files, frags);
}

static void test_duplicate_number_is_an_error(void **state)
{
    (void)state;
    const char *files[] = {"001_a.sql", "CREATE TABLE a(x);", "1_b.sql", "CREATE TABLE b(x);",
                           NULL};
    const char *frags[] = {"duplicate migration number 1", "001_a.sql", "1_b.sql", NULL};
    s_expect_error(STM_EINPUT, files, frags);
}

static void test_must_start_at_one(void **state)
{
    (void)state;
    const char *files[] = {"002_b.sql", "CREATE TABLE b(x);", NULL};
    const char *frags[] = {"002_b.sql", "start at 1", NULL};
    s_expect_error(STM_EINPUT, files, frags);
    const char *zero[] = {"000_z.sql", "CREATE TABLE z(x);", NULL};
    const char *zfrags[] = {"000_z.sql", "start at 1", NULL};
    s_expect_error(STM_EINPUT, zero, zfrags);
}

static void test_bad_file_name_is_an_error(void **state)
{
    (void)state;
    const char *files[] = {"001_a.sql", "CREATE TABLE a(x);", "add_b.sql", "CREATE TABLE b(x);",
                           NULL};
    const char *frags[] = {"add_b.sql", "not a migration file name", NULL};
    s_expect_error(STM_EINPUT, files, frags);
    const char *huge[] = {"99999999999_a.sql", "SELECT 1;", NULL};
    const char *hfrags[] = {"99999999999_a.sql", "not a migration file name", NULL};
    s_expect_error(STM_EINPUT, huge, hfrags);
}

static void test_rollback_without_migration_is_an_error(void **state)
{
    (void)state;
    const char *files[] = {"001_a.sql", "CREATE TABLE a(x);", "002_b.down.sql", "DROP TABLE b;",
                           NULL};
    const char *frags[] = {"002_b.down.sql", "rollback without its migration", NULL};
    s_expect_error(STM_EINPUT, files, frags);
}

static void test_nul_byte_is_an_error(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    tu_write_bytes(dir, "001_a.sql", "CREATE TABLE a(x);\0DROP TABLE a;", 32);
    schemaset_t *set = NULL;
    stm_error err = {0};
    assert_int_equal(stm_schemaset_load(dir, &set, &err), STM_EINPUT);
    assert_non_null(strstr(err.msg, "001_a.sql"));
    assert_non_null(strstr(err.msg, "NUL"));
    tu_remove_tree(dir);
    free(dir);
}

static void test_unreadable_file_is_an_error(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    tu_write(dir, "001_a.sql", "CREATE TABLE a(x);");
    /* A dangling link cannot be read, even by root. */
    char link[4200];
    snprintf(link, sizeof link, "%s/002_b.sql", dir);
    assert_int_equal(symlink("/nonexistent/stemma/target.sql", link), 0);
    schemaset_t *set = NULL;
    stm_error err = {0};
    assert_int_equal(stm_schemaset_load(dir, &set, &err), STM_EINPUT);
    assert_non_null(strstr(err.msg, "002_b.sql"));
    assert_non_null(strstr(err.msg, "cannot read"));
    tu_remove_tree(dir);
    free(dir);
}

static void test_missing_directory_is_an_error(void **state)
{
    (void)state;
    schemaset_t *set = NULL;
    stm_error err = {0};
    assert_int_equal(stm_schemaset_load("tests/no-such-directory", &set, &err), STM_EINPUT);
    assert_non_null(strstr(err.msg, "tests/no-such-directory"));
    assert_int_equal(stm_schemaset_load("schemas/tasks/001_initial_schema.sql", &set, &err),
                     STM_EINPUT);
    assert_non_null(strstr(err.msg, "not a directory"));
}

/* A FIFO named like a migration is refused at once: opening it for reading would wait
 * for a writer, and every command reading the set would hang. */
static void test_fifo_is_not_waited_on(void **state)
{
    (void)state;
    alarm(20);
    char *dir = tu_tmpdir();
    tu_write(dir, "001_a.sql", "CREATE TABLE a(x);");
    char fifo[4200];
    snprintf(fifo, sizeof fifo, "%s/002_b.sql", dir);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    schemaset_t *set = NULL;
    stm_error err = {0};
    assert_int_equal(stm_schemaset_load(dir, &set, &err), STM_EINPUT);
    assert_non_null(strstr(err.msg, "002_b.sql: not a regular file"));
    tu_remove_tree(dir);
    free(dir);
    alarm(0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loads_the_tasks_example),
        cmocka_unit_test(test_description_falls_back_to_file_name),
        cmocka_unit_test(test_line_endings_are_normalised),
        cmocka_unit_test(test_empty_directory_is_an_empty_history),
        cmocka_unit_test(test_gap_is_an_error),
        cmocka_unit_test(test_duplicate_number_is_an_error),
        cmocka_unit_test(test_must_start_at_one),
        cmocka_unit_test(test_bad_file_name_is_an_error),
        cmocka_unit_test(test_rollback_without_migration_is_an_error),
        cmocka_unit_test(test_nul_byte_is_an_error),
        cmocka_unit_test(test_unreadable_file_is_an_error),
        cmocka_unit_test(test_missing_directory_is_an_error),
        cmocka_unit_test(test_fifo_is_not_waited_on),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
