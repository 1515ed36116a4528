/* Tests of lineage/baseline: which version of a schema set a database's schema is, on
 * in-memory databases built from tests/data/schemas/adopt (002 adds an index only, 003
 * changes data only, so versions 1, 2 and 3 have one catalog). */
#include "lineage/baseline.h"
#include "lineage/sqlscript.h"
#include "testutil.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ADOPT "tests/data/schemas/adopt"

typedef struct {
    schemaset_t *set;
    lineage_t *lineage;
} s_fixture;

static int s_setup(void **state)
{
    s_fixture *f = calloc(1, sizeof *f);
    stm_error err = {0};
    assert_int_equal(stm_schemaset_load(ADOPT, &f->set, &err), STM_OK);
    f->lineage = tu_lineage_dir(ADOPT);
    *state = f;
    return 0;
}

static int s_teardown(void **state)
{
    s_fixture *f = *state;
    stm_lineage_destroy(&f->lineage);
    stm_schemaset_destroy(&f->set);
    free(f);
    return 0;
}

/* A database made by running the set's first n migrations, then extra (may be NULL). */
static sqlite3 *s_db_at(const s_fixture *f, int n, const char *extra)
{
    sqlite3 *db = NULL;
    stm_error err = {0};
    assert_int_equal(stm_sqlscript_open_memory(&db, &err), STM_OK);
    for (int k = 0; k < n; k++)
        assert_int_equal(sqlite3_exec(db, stm_schemaset_at(f->set, (size_t)k)->text, NULL, NULL,
                                      NULL),
                         SQLITE_OK);
    if (extra)
        assert_int_equal(sqlite3_exec(db, extra, NULL, NULL, NULL), SQLITE_OK);
    return db;
}

static void s_expect(const s_fixture *f, sqlite3 *db, int want, const int *versions, size_t n)
{
    baseline_match m;
    stm_error err = {0};
    assert_int_equal(stm_baseline_match(db, f->set, f->lineage, want, &m, &err), STM_OK);
    assert_int_equal(m.nversions, n);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(m.versions[i], versions[i]);
    stm_baseline_match_free(&m);
}

static void test_each_version_is_found(void **state)
{
    s_fixture *f = *state;
    static const int one[] = {1}, two_three[] = {2, 3}, four[] = {4}, zero[] = {0};
    sqlite3 *db = s_db_at(f, 0, "CREATE TABLE mine (a)"); /* the application's own only */
    s_expect(f, db, 0, zero, 1);
    sqlite3_close(db);
    db = s_db_at(f, 1, NULL); /* the index is missing: 1, not 2 or 3 */
    s_expect(f, db, 0, one, 1);
    sqlite3_close(db);
    db = s_db_at(f, 2, NULL); /* 003 changes data only */
    s_expect(f, db, 0, two_three, 2);
    s_expect(f, db, 3, two_three + 1, 1); /* told which */
    sqlite3_close(db);
    db = s_db_at(f, 4, "CREATE TABLE mine (a)");
    s_expect(f, db, 0, four, 1);
    sqlite3_close(db);
}

static void test_what_differs_from_the_closest(void **state)
{
    s_fixture *f = *state;
    stm_error err = {0};
    baseline_match m;
    /* At 2, told 1: its index is not version 1's. */
    sqlite3 *db = s_db_at(f, 2, NULL);
    assert_int_equal(stm_baseline_match(db, f->set, f->lineage, 1, &m, &err), STM_OK);
    assert_int_equal(m.nversions, 0);
    assert_int_equal(m.closest, 1);
    assert_int_equal(m.ndiffs, 1);
    assert_int_equal(m.diffs[0].how, SCHEMACMP_EXTRA);
    assert_string_equal(m.diffs[0].what, "index items_by_name");
    stm_baseline_match_free(&m);
    sqlite3_close(db);
    /* At 4 with a column more: version 4, one difference; told 2, what 2 lacks too. */
    db = s_db_at(f, 4, "ALTER TABLE items ADD COLUMN note TEXT");
    assert_int_equal(stm_baseline_match(db, f->set, f->lineage, 0, &m, &err), STM_OK);
    assert_int_equal(m.nversions, 0);
    assert_int_equal(m.closest, 4);
    assert_int_equal(m.ndiffs, 1);
    assert_string_equal(m.diffs[0].what, "column items.note");
    stm_baseline_match_free(&m);
    assert_int_equal(stm_baseline_match(db, f->set, f->lineage, 2, &m, &err), STM_OK);
    assert_int_equal(m.closest, 2);
    assert_int_equal(m.ndiffs, 2); /* items.note, labels.color */
    stm_baseline_match_free(&m);
    sqlite3_close(db);
}

static void test_the_set_tables_a_database_holds(void **state)
{
    s_fixture *f = *state;
    sqlite3 *db = s_db_at(f, 1, "CREATE TABLE mine (a)");
    catalog_t *c = NULL;
    stm_error err = {0};
    assert_int_equal(stm_catalog_read(db, &c, &err), STM_OK);
    const char **names = NULL;
    size_t n = stm_baseline_set_tables(c, f->lineage, &names);
    assert_int_equal(n, 3); /* items, labels, log; not mine */
    for (size_t i = 0; i < n; i++)
        assert_string_not_equal(names[i], "mine");
    free(names);
    stm_catalog_destroy(&c);
    sqlite3_close(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_each_version_is_found, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_what_differs_from_the_closest, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_the_set_tables_a_database_holds, s_setup,
                                        s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
