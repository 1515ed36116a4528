/* Tests of lineage/layout and lineage/sections: other migration tools' directories read
 * as they are (order, numbering from 0, sections, rollbacks, descriptions), detected or
 * named, the same ids whatever the layout, and every way such a directory is refused. */
#include "lineage/lineage.h"
#include "lineage/schemaset.h"
#include "lineage/sections.h"
#include "testutil.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Makes dir/sub. */
static void s_mkdir(const char *dir, const char *sub)
{
    char *path = tu_path(dir, sub);
    assert_int_equal(mkdir(path, 0700), 0);
    free(path);
}

/* A scratch directory made of (name, text) pairs ending in NULL; a name ending in '/'
 * is a sub-directory. The caller frees it after tu_remove_tree. */
static char *s_dir(const char *const *files)
{
    char *dir = tu_tmpdir();
    for (size_t i = 0; files[i]; i += 2) {
        if (files[i][strlen(files[i]) - 1] == '/')
            s_mkdir(dir, files[i]);
        else
            tu_write(dir, files[i], files[i + 1]);
    }
    return dir;
}

static void s_done(char *dir)
{
    tu_remove_tree(dir);
    free(dir);
}

/* Loads files in layout (LAYOUT_AUTO: detected), which must succeed and be read in
 * want; the caller destroys the set and the directory (*dir). */
static schemaset_t *s_load(const char *const *files, schemaset_layout layout, schemaset_layout want,
                           char **dir)
{
    *dir = s_dir(files);
    schemaset_t *set = NULL;
    stm_error err = {0};
    if (stm_schemaset_load_layout(*dir, layout, &set, &err) != STM_OK)
        fail_msg("loading as %s: %s", stm_layout_name(layout), err.msg);
    assert_int_equal(stm_schemaset_layout(set), want);
    return set;
}

/* Checks migration i + 1: its file, description, text and rollback (NULL: none). */
static void s_expect(const schemaset_t *set, size_t i, const char *file, const char *description,
                     const char *text, const char *down)
{
    const schemaset_migration *m = stm_schemaset_at(set, i);
    assert_int_equal(m->number, (int)i + 1);
    assert_string_equal(m->file, file);
    assert_string_equal(m->description, description);
    assert_string_equal(m->text, text);
    assert_int_equal(m->text_len, strlen(text));
    if (down)
        assert_string_equal(m->down_text, down);
    else
        assert_null(m->down_text);
}

/* Loads files in layout and expects an error holding each fragment. */
static void s_refused(const char *const *files, schemaset_layout layout,
                      const char *const *fragments)
{
    char *dir = s_dir(files);
    schemaset_t *set = NULL;
    stm_error err = {0};
    assert_int_equal(stm_schemaset_load_layout(dir, layout, &set, &err), STM_EINPUT);
    assert_null(set);
    for (size_t i = 0; fragments[i]; i++)
        if (!strstr(err.msg, fragments[i]))
            fail_msg("message \"%s\" lacks \"%s\"", err.msg, fragments[i]);
    assert_null(strchr(err.msg, '\n'));
    s_done(dir);
}

static void test_layout_names(void **state)
{
    (void)state;
    for (int i = 0; i < LAYOUT_COUNT; i++) {
        schemaset_layout l;
        assert_true(stm_layout_from_name(stm_layout_name((schemaset_layout)i), &l));
        assert_int_equal(l, i);
    }
    schemaset_layout l;
    assert_false(stm_layout_from_name("liquibase", &l));
    assert_false(stm_layout_from_name("Goose", &l));
}

/* Versions compare as numbers of any length; Flyway's part by part; Diesel's as text. */
static void test_versions_compare_as_the_tools_do(void **state)
{
    (void)state;
    assert_true(stm_layout_compare(LAYOUT_SQLX, "9", "10") < 0);
    assert_int_equal(stm_layout_compare(LAYOUT_GOOSE, "007", "7"), 0);
    assert_true(stm_layout_compare(LAYOUT_GOOSE, "0", "1") < 0);
    /* Past 64 bits, no overflow. */
    assert_true(stm_layout_compare(LAYOUT_DBMATE, "99999999999999999999999999999",
                                   "100000000000000000000000000000") < 0);
    assert_true(stm_layout_compare(LAYOUT_FLYWAY, "1.2", "1.10") < 0);
    assert_int_equal(stm_layout_compare(LAYOUT_FLYWAY, "1.0", "1"), 0);
    assert_true(stm_layout_compare(LAYOUT_FLYWAY, "1.0.1", "1") > 0);
    assert_true(stm_layout_compare(LAYOUT_FLYWAY, "2", "1.99") > 0);
    /* Diesel: a longer version is not a later one. */
    assert_true(stm_layout_compare(LAYOUT_DIESEL, "20260101000000", "202512081354280000") > 0);
    assert_true(stm_layout_compare(LAYOUT_SQLX, "20260101000000", "202512081354280000") < 0);
}

static void test_flyway(void **state)
{
    (void)state;
    const char *files[] = {"V1__create_users.sql",
                           "CREATE TABLE users(id INTEGER PRIMARY KEY);\n",
                           "V1.10__late.sql",
                           "CREATE TABLE late(x);\n",
                           "V1_2__second.sql",
                           "CREATE TABLE second(x);\n",
                           "U1_2__second.sql",
                           "DROP TABLE second;\n",
                           "sub/",
                           NULL,
                           "sub/V2__deep_down.sql",
                           "CREATE TABLE deep(x);\n",
                           "V1.10__late.sql.conf",
                           "executeInTransaction=true\n",
                           "README.md",
                           "not a migration\n",
                           NULL};
    char *dir;
    schemaset_t *set = s_load(files, LAYOUT_AUTO, LAYOUT_FLYWAY, &dir);
    assert_int_equal(stm_schemaset_count(set), 4);
    s_expect(set, 0, "V1__create_users.sql", "create users",
             "CREATE TABLE users(id INTEGER PRIMARY KEY);\n", NULL);
    s_expect(set, 1, "V1_2__second.sql", "second", "CREATE TABLE second(x);\n",
             "DROP TABLE second;\n");
    assert_string_equal(stm_schemaset_at(set, 1)->down_file, "U1_2__second.sql");
    s_expect(set, 2, "V1.10__late.sql", "late", "CREATE TABLE late(x);\n", NULL);
    assert_string_equal(stm_schemaset_at(set, 2)->down_where, "U1.10__late.sql");
    s_expect(set, 3, "sub/V2__deep_down.sql", "deep down", "CREATE TABLE deep(x);\n", NULL);
    stm_schemaset_destroy(&set);
    s_done(dir);

    /* Migrations only in sub-directories are Flyway's too, not an empty history. */
    const char *below[] = {"db/",
                           NULL,
                           "db/sqlite/",
                           NULL,
                           "db/sqlite/V2__b.sql",
                           "CREATE TABLE b(x);\n",
                           "db/V1__a.sql",
                           "CREATE TABLE a(x);\n",
                           NULL};
    set = s_load(below, LAYOUT_AUTO, LAYOUT_FLYWAY, &dir);
    assert_int_equal(stm_schemaset_count(set), 2);
    s_expect(set, 0, "db/V1__a.sql", "a", "CREATE TABLE a(x);\n", NULL);
    s_expect(set, 1, "db/sqlite/V2__b.sql", "b", "CREATE TABLE b(x);\n", NULL);
    stm_schemaset_destroy(&set);
    s_done(dir);
}

static void test_diesel(void **state)
{
    (void)state;
    const char *files[] = {"00000000000000_setup/",
                           NULL,
                           "00000000000000_setup/up.sql",
                           "CREATE TABLE meta(x);\n",
                           "2024-01-15-120000_add_users/",
                           NULL,
                           "2024-01-15-120000_add_users/up.sql",
                           "CREATE TABLE users(x);\n",
                           "2024-01-15-120000_add_users/down.sql",
                           "",
                           "2024-01-15-120000_add_users/metadata.toml",
                           "run_in_transaction = true\n",
                           "2023-12-31-235959_before/",
                           NULL,
                           "2023-12-31-235959_before/up.sql",
                           "CREATE TABLE before(x);\n",
                           "2023-12-31-235959_before/down.sql",
                           "DROP TABLE before;\n",
                           ".keep",
                           "",
                           "diesel.toml",
                           "[print_schema]\n",
                           NULL};
    char *dir;
    schemaset_t *set = s_load(files, LAYOUT_AUTO, LAYOUT_DIESEL, &dir);
    assert_int_equal(stm_schemaset_count(set), 3);
    s_expect(set, 0, "00000000000000_setup/up.sql", "setup", "CREATE TABLE meta(x);\n", NULL);
    assert_string_equal(stm_schemaset_at(set, 0)->down_where, "00000000000000_setup/down.sql");
    s_expect(set, 1, "2023-12-31-235959_before/up.sql", "before", "CREATE TABLE before(x);\n",
             "DROP TABLE before;\n");
    /* An empty down.sql is a rollback that does nothing, as an empty .down.sql is. */
    s_expect(set, 2, "2024-01-15-120000_add_users/up.sql", "add users", "CREATE TABLE users(x);\n",
             "");
    assert_string_equal(stm_schemaset_at(set, 2)->down_file,
                        "2024-01-15-120000_add_users/down.sql");
    stm_schemaset_destroy(&set);
    s_done(dir);
}

/* sqlx's plain files are stemma's names with any numbers: read when named. Reversible
 * pairs beside them make it detected. */
static void test_sqlx(void **state)
{
    (void)state;
    const char *files[] = {"20240101000000_first.sql",
                           "CREATE TABLE a(x);\n",
                           "20240102000000_second.up.sql",
                           "CREATE TABLE b(x);\n",
                           "20240102000000_second.down.sql",
                           "DROP TABLE b;\n",
                           "9_early.sql",
                           "CREATE TABLE early(x);\n",
                           NULL};
    char *dir;
    schemaset_t *set = s_load(files, LAYOUT_AUTO, LAYOUT_SQLX, &dir);
    assert_int_equal(stm_schemaset_count(set), 3);
    s_expect(set, 0, "9_early.sql", "early", "CREATE TABLE early(x);\n", NULL);
    assert_string_equal(stm_schemaset_at(set, 0)->down_where, "9_early.down.sql");
    s_expect(set, 1, "20240101000000_first.sql", "first", "CREATE TABLE a(x);\n", NULL);
    s_expect(set, 2, "20240102000000_second.up.sql", "second", "CREATE TABLE b(x);\n",
             "DROP TABLE b;\n");
    stm_schemaset_destroy(&set);
    s_done(dir);

    const char *plain[] = {"0000_initial.sql", "CREATE TABLE a(x);\n", "0002_later.sql",
                           "CREATE TABLE b(x);\n", NULL};
    set = s_load(plain, LAYOUT_SQLX, LAYOUT_SQLX, &dir);
    assert_int_equal(stm_schemaset_count(set), 2);
    s_expect(set, 0, "0000_initial.sql", "initial", "CREATE TABLE a(x);\n", NULL);
    s_expect(set, 1, "0002_later.sql", "later", "CREATE TABLE b(x);\n", NULL);
    stm_schemaset_destroy(&set);
    s_done(dir);
    /* Detected, they are stemma's, whose numbering refuses them and points to sqlx. */
    const char *frags[] = {"0000_initial.sql", "migration numbers start at 1", "--layout sqlx",
                           NULL};
    s_refused(plain, LAYOUT_AUTO, frags);
    /* Named stemma's, they get stemma's message as it always was. */
    dir = s_dir(plain);
    stm_error err = {0};
    assert_int_equal(stm_schemaset_load_layout(dir, LAYOUT_STEMMA, &set, &err), STM_EINPUT);
    assert_string_equal(err.msg + strlen(dir), "/0000_initial.sql: migration numbers start at 1");
    s_done(dir);
}

static void test_golang_migrate_numbered_from_zero(void **state)
{
    (void)state;
    const char *files[] = {"0_init.up.sql",
                           "CREATE TABLE a(x);\n",
                           "0_init.down.sql",
                           "DROP TABLE a;\n",
                           "10_ten.up.sql",
                           "CREATE TABLE ten(x);\n",
                           "2_two.up.sql",
                           "CREATE TABLE two(x);\n",
                           "2_two.down.sql",
                           "DROP TABLE two;\n",
                           NULL};
    char *dir;
    schemaset_t *set = s_load(files, LAYOUT_AUTO, LAYOUT_GOLANG_MIGRATE, &dir);
    assert_int_equal(stm_schemaset_count(set), 3);
    s_expect(set, 0, "0_init.up.sql", "init", "CREATE TABLE a(x);\n", "DROP TABLE a;\n");
    s_expect(set, 1, "2_two.up.sql", "two", "CREATE TABLE two(x);\n", "DROP TABLE two;\n");
    s_expect(set, 2, "10_ten.up.sql", "ten", "CREATE TABLE ten(x);\n", NULL);
    assert_string_equal(stm_schemaset_at(set, 2)->down_where, "10_ten.down.sql");
    stm_schemaset_destroy(&set);
    /* sqlx reads the same pairs the same way. */
    stm_error err = {0};
    assert_int_equal(stm_schemaset_load_layout(dir, LAYOUT_SQLX, &set, &err), STM_OK);
    assert_int_equal(stm_schemaset_count(set), 3);
    assert_string_equal(stm_schemaset_at(set, 2)->file, "10_ten.up.sql");
    stm_schemaset_destroy(&set);
    s_done(dir);
}

/* The marker lines, newline and all, belong to no section; everything else is kept,
 * StatementBegin and StatementEnd included. */
static void test_goose(void **state)
{
    (void)state;
    const char *files[] = {
        "00001_create.sql",
        "-- a comment before the markers\n\n-- +goose NO TRANSACTION\n"
        "-- +goose Up\nCREATE TABLE a(x);\n-- +goose Down\nDROP TABLE a;\n",
        "2_trigger.sql",
        "--+goose up\n-- +goose StatementBegin\nCREATE TRIGGER t AFTER INSERT ON a BEGIN "
        "SELECT 1; END;\n-- +goose StatementEnd\n",
        "20240101000000_crlf.sql",
        "\xef\xbb\xbf-- +goose Up\r\nCREATE TABLE c(x);\r\n"
        "-- +goose Down  \r\n",
        NULL};
    char *dir;
    schemaset_t *set = s_load(files, LAYOUT_AUTO, LAYOUT_GOOSE, &dir);
    assert_int_equal(stm_schemaset_count(set), 3);
    s_expect(set, 0, "00001_create.sql", "create", "CREATE TABLE a(x);\n", "DROP TABLE a;\n");
    assert_string_equal(stm_schemaset_at(set, 0)->down_file, "00001_create.sql");
    s_expect(set, 1, "2_trigger.sql", "trigger",
             "-- +goose StatementBegin\nCREATE TRIGGER t AFTER INSERT ON a BEGIN SELECT 1; "
             "END;\n-- +goose StatementEnd\n",
             NULL);
    assert_string_equal(stm_schemaset_at(set, 1)->down_where,
                        "2_trigger.sql's '-- +goose Down' section");
    /* Normalised first; a Down marker on the last line leaves an empty rollback. */
    s_expect(set, 2, "20240101000000_crlf.sql", "crlf", "CREATE TABLE c(x);\n", "");
    stm_schemaset_destroy(&set);
    s_done(dir);
}

static void test_dbmate(void **state)
{
    (void)state;
    const char *files[] = {
        "20240101120000_users.sql",
        "-- migrate:up transaction:false\n-- Description: Users arrive\nCREATE TABLE u(x);\n\n"
        "--migrate:down\nDROP TABLE u;\n",
        "3_early.sql", "\n-- header\n-- migrate:up\nCREATE TABLE e(x);\n", NULL};
    char *dir;
    schemaset_t *set = s_load(files, LAYOUT_AUTO, LAYOUT_DBMATE, &dir);
    assert_int_equal(stm_schemaset_count(set), 2);
    s_expect(set, 0, "3_early.sql", "early", "CREATE TABLE e(x);\n", NULL);
    s_expect(set, 1, "20240101120000_users.sql", "Users arrive",
             "-- Description: Users arrive\nCREATE TABLE u(x);\n\n", "DROP TABLE u;\n");
    stm_schemaset_destroy(&set);
    s_done(dir);
}

/* Reads a file of schemas/tasks, which the caller frees. */
static char *s_tasks(const char *name)
{
    return tu_read_file("schemas/tasks", name);
}

/* schemas/tasks wrapped in goose's and dbmate's sections, renamed to Flyway's and
 * golang-migrate's names and to Diesel's directories: the same ids, version by version. */
static void test_every_layout_keeps_the_ids(void **state)
{
    (void)state;
    static const char *const names[] = {"initial_schema", "add_priority", "add_task_tags",
                                        "add_comments"};
    static const char *const markers[][2] = {{"-- +goose Up\n", "-- +goose Down\n"},
                                             {"-- migrate:up\n", "-- migrate:down\n"}};
    lineage_t *want = tu_lineage_dir("schemas/tasks");
    char *dirs[5];
    for (int k = 0; k < 5; k++)
        dirs[k] = tu_tmpdir();
    for (int i = 0; i < 4; i++) {
        char up_name[64], down_name[64], name[160], sub[128];
        snprintf(up_name, sizeof up_name, "%03d_%s.sql", i + 1, names[i]);
        snprintf(down_name, sizeof down_name, "%03d_%s.down.sql", i + 1, names[i]);
        char *up = s_tasks(up_name), *down = s_tasks(down_name);
        for (int k = 0; k < 2; k++) {
            size_t n =
                strlen(markers[k][0]) + strlen(up) + strlen(markers[k][1]) + strlen(down) + 1;
            char *both = malloc(n);
            snprintf(both, n, "%s%s%s%s", markers[k][0], up, markers[k][1], down);
            snprintf(name, sizeof name, "%d_%s.sql", 20240101 + i * 7, names[i]);
            tu_write(dirs[k], name, both);
            free(both);
        }
        snprintf(name, sizeof name, "V1.%d__%s.sql", 8 + i, names[i]); /* 1.8 ... 1.11 */
        tu_write(dirs[2], name, up);
        snprintf(name, sizeof name, "%d_%s.up.sql", i * i, names[i]); /* 0, 1, 4, 9 */
        tu_write(dirs[3], name, up);
        snprintf(name, sizeof name, "%d_%s.down.sql", i * i, names[i]);
        tu_write(dirs[3], name, down);
        snprintf(sub, sizeof sub, "2024-01-0%d-000000_%s", 1 + i, names[i]);
        s_mkdir(dirs[4], sub);
        snprintf(name, sizeof name, "%s/up.sql", sub);
        tu_write(dirs[4], name, up);
        free(up);
        free(down);
    }
    for (int k = 0; k < 5; k++) {
        lineage_t *got = tu_lineage_dir(dirs[k]);
        assert_int_equal(stm_lineage_count(got), stm_lineage_count(want));
        for (size_t v = 0; v < stm_lineage_count(want); v++)
            assert_true(stm_id_equal(&stm_lineage_version_at(got, v)->id,
                                     &stm_lineage_version_at(want, v)->id));
        stm_lineage_destroy(&got);
        s_done(dirs[k]);
    }
    stm_lineage_destroy(&want);
}

static void test_two_layouts_are_refused(void **state)
{
    (void)state;
    const char *files[] = {"1_a.sql", "-- +goose Up\nCREATE TABLE a(x);\n", "2_b.sql",
                           "-- migrate:up\nCREATE TABLE b(x);\n", NULL};
    const char *frags[] = {"fits more than one layout", "goose (1_a.sql)", "dbmate (2_b.sql)",
                           "--layout NAME", NULL};
    s_refused(files, LAYOUT_AUTO, frags);
    const char *more[] = {"V1__a.sql", "CREATE TABLE a(x);\n", "1_b.up.sql", "CREATE TABLE b(x);\n",
                          NULL};
    const char *mfrags[] = {"flyway (V1__a.sql)", "golang-migrate or sqlx (1_b.up.sql)", NULL};
    s_refused(more, LAYOUT_AUTO, mfrags);
}

/* A .sql file that fits none of the layout's names, or a migration stemma cannot run. */
static void test_stray_files_are_refused(void **state)
{
    (void)state;
    const char *migrate[] = {"1_a.up.sql", "SELECT 1;", "3_c.sql", "SELECT 1;", NULL};
    const char *mfrags[] = {"3_c.sql", "not a migration file name of golang-migrate", NULL};
    s_refused(migrate, LAYOUT_GOLANG_MIGRATE, mfrags);
    const char *flyway[] = {"V1__a.sql", "SELECT 1;", "init.sql", "SELECT 1;", NULL};
    const char *ffrags[] = {"init.sql", "not a migration file name of flyway", NULL};
    s_refused(flyway, LAYOUT_AUTO, ffrags);
    const char *repeat[] = {"V1__a.sql", "SELECT 1;", "R__views.sql", "SELECT 1;", NULL};
    const char *rfrags[] = {"R__views.sql", "repeatable", NULL};
    s_refused(repeat, LAYOUT_AUTO, rfrags);
    const char *java[] = {"V1__a.sql", "SELECT 1;", "V2__fix.java", "class V2__fix {}", NULL};
    const char *jfrags[] = {"V2__fix.java", "not written in SQL", NULL};
    s_refused(java, LAYOUT_AUTO, jfrags);
    const char *go[] = {"1_a.sql", "-- +goose Up\nSELECT 1;\n", "2_b.go", "package m", NULL};
    const char *gfrags[] = {"2_b.go", "written in Go", NULL};
    s_refused(go, LAYOUT_AUTO, gfrags);
    const char *diesel[] = {"1_a/",      NULL,        "1_a/up.sql", "SELECT 1;",
                            "loose.sql", "SELECT 1;", NULL};
    const char *dfrags[] = {"loose.sql", "not in a migration directory", NULL};
    s_refused(diesel, LAYOUT_AUTO, dfrags);
    const char *noup[] = {"1_a/", NULL, "1_a/down.sql", "SELECT 1;", NULL};
    const char *nfrags[] = {"1_a", "without its up.sql", NULL};
    s_refused(noup, LAYOUT_DIESEL, nfrags);
    const char *alone[] = {"5_x.down.sql", "SELECT 1;", NULL};
    const char *afrags[] = {"5_x.down.sql", "rollback without its migration", NULL};
    s_refused(alone, LAYOUT_GOLANG_MIGRATE, afrags);
}

static void test_duplicate_versions_name_both_files(void **state)
{
    (void)state;
    const char *migrate[] = {"1_a.up.sql", "SELECT 1;", "01_b.up.sql", "SELECT 2;", NULL};
    const char *mfrags[] = {"duplicate version", "01_b.up.sql", "1_a.up.sql", NULL};
    s_refused(migrate, LAYOUT_AUTO, mfrags);
    const char *flyway[] = {"V1__a.sql", "SELECT 1;", "V1.0__b.sql", "SELECT 2;", NULL};
    const char *ffrags[] = {"duplicate version", "V1.0__b.sql", "V1__a.sql", NULL};
    s_refused(flyway, LAYOUT_AUTO, ffrags);
    const char *diesel[] = {"2024-01-01-000000_a/",
                            NULL,
                            "2024-01-01-000000_a/up.sql",
                            "SELECT 1;",
                            "20240101000000_b/",
                            NULL,
                            "20240101000000_b/up.sql",
                            "SELECT 2;",
                            NULL};
    const char *dfrags[] = {"duplicate version", "2024-01-01-000000_a/up.sql",
                            "20240101000000_b/up.sql", NULL};
    s_refused(diesel, LAYOUT_AUTO, dfrags);
    const char *down[] = {"1_a.sql",   "SELECT 1;", "1_a.down.sql", "SELECT 2;", "001_a.down.sql",
                          "SELECT 3;", NULL};
    const char *wfrags[] = {"duplicate rollback for version", "1_a.down.sql", NULL};
    s_refused(down, LAYOUT_SQLX, wfrags);
}

/* The section rules of sections.h, each broken. */
static void test_goose_and_dbmate_markers_are_checked(void **state)
{
    (void)state;
    const char *noup[] = {"1_a.sql", "-- +goose Up\nSELECT 1;\n", "2_b.sql", "CREATE TABLE b(x);\n",
                          NULL};
    const char *nfrags[] = {"2_b.sql: no '-- +goose Up' line", NULL};
    s_refused(noup, LAYOUT_AUTO, nfrags);
    const char *early[] = {"1_a.sql", "-- +goose Down\nSELECT 1;\n-- +goose Up\nSELECT 2;\n", NULL};
    const char *efrags[] = {"1_a.sql:1: '-- +goose Down' before the '-- +goose Up' line", NULL};
    s_refused(early, LAYOUT_AUTO, efrags);
    const char *twice[] = {"1_a.sql", "-- +goose Up\nSELECT 1;\n-- +goose Up\n", NULL};
    const char *tfrags[] = {"1_a.sql:3: a second '-- +goose Up' line (the first is line 1)", NULL};
    s_refused(twice, LAYOUT_AUTO, tfrags);
    const char *before[] = {"1_a.sql", "SELECT 0;\n-- migrate:up\nSELECT 1;\n", NULL};
    const char *bfrags[] = {"1_a.sql:1: SQL before the '-- migrate:up' line", NULL};
    s_refused(before, LAYOUT_AUTO, bfrags);
    const char *envsub[] = {"1_a.sql", "-- +goose Up\n-- +goose ENVSUB ON\nSELECT '${X}';\n", NULL};
    const char *vfrags[] = {"1_a.sql:2: '-- +goose ENVSUB ON'", NULL};
    s_refused(envsub, LAYOUT_AUTO, vfrags);
    const char *downs[] = {"1_a.sql", "-- migrate:up\n-- migrate:down\n-- migrate:down\n", NULL};
    const char *dfrags[] = {"1_a.sql:3: a second '-- migrate:down' line", NULL};
    s_refused(downs, LAYOUT_DBMATE, dfrags);
}

/* Markers that are not at the start of a line, or not whole words, are text. */
static void test_near_markers_are_text(void **state)
{
    (void)state;
    const char *text = "  -- +goose Up\n-- +goose Upward\n--migrate:upx\nSELECT 1;\n";
    assert_false(stm_sections_marked(LAYOUT_GOOSE, text, strlen(text)));
    assert_false(stm_sections_marked(LAYOUT_DBMATE, text, strlen(text)));
    char *up = NULL, *down = NULL;
    size_t up_len = 0, down_len = 0;
    const char *file = "-- +goose Up\nSELECT 1; -- +goose Down\n";
    assert_int_equal(stm_sections_split(LAYOUT_GOOSE, "f.sql", file, strlen(file), &up, &up_len,
                                        &down, &down_len, NULL),
                     STM_OK);
    assert_string_equal(up, "SELECT 1; -- +goose Down\n");
    assert_null(down);
    free(up);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layout_names),
        cmocka_unit_test(test_versions_compare_as_the_tools_do),
        cmocka_unit_test(test_flyway),
        cmocka_unit_test(test_diesel),
        cmocka_unit_test(test_sqlx),
        cmocka_unit_test(test_golang_migrate_numbered_from_zero),
        cmocka_unit_test(test_goose),
        cmocka_unit_test(test_dbmate),
        cmocka_unit_test(test_every_layout_keeps_the_ids),
        cmocka_unit_test(test_two_layouts_are_refused),
        cmocka_unit_test(test_stray_files_are_refused),
        cmocka_unit_test(test_duplicate_versions_name_both_files),
        cmocka_unit_test(test_goose_and_dbmate_markers_are_checked),
        cmocka_unit_test(test_near_markers_are_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
