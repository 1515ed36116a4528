/* test_lens.c - what migrations do to the data, derived by running them on marked rows
 * (lineage/lens.h): renames of columns and tables, rebuilds, casts, backfills, computed
 * and added columns, drops, emptied and replaced tables, and migrations the markers
 * break. */
#include "testutil.h"
#include "base/buf.h"
#include "lineage/lens.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* The lenses of a scratch schema set of (file, text) pairs ending in NULL. */
static lens_set_t *s_lenses(const char *const *files)
{
    char *dir = tu_tmpdir();
    for (size_t i = 0; files[i]; i += 2)
        tu_write(dir, files[i], files[i + 1]);
    schemaset_t *set = NULL;
    lens_set_t *l = NULL;
    stm_error err = {0};
    if (stm_schemaset_load(dir, &set, &err) != STM_OK || stm_lens_derive(set, &l, &err) != STM_OK)
        fail_msg("derive failed: %s", err.msg);
    stm_schemaset_destroy(&set);
    tu_remove_tree(dir);
    free(dir);
    return l;
}

/* The changes of one version as lines "kind table.column [from t.c]", sorted as listed,
 * joined by "; ". */
static char *s_changes(const lens_set_t *l, int version)
{
    size_t n;
    const lens_change *c = stm_lens_changes(l, version, &n);
    buf_t b = BUF_INIT;
    for (size_t i = 0; i < n; i++) {
        stm_buf_printf(&b, "%s%s %s%s%s", i ? "; " : "", stm_lens_kind_name(c[i].kind), c[i].table,
                       c[i].column ? "." : "", c[i].column ? c[i].column : "");
        if (c[i].from_table)
            stm_buf_printf(&b, " from %s.%s", c[i].from_table, c[i].from_column);
    }
    return stm_buf_detach(&b);
}

static void s_expect(const lens_set_t *l, int version, const char *want)
{
    assert_true(stm_lens_probed(l, version, NULL));
    char *got = s_changes(l, version);
    if (strcmp(got, want) != 0)
        fail_msg("v%d: got '%s'\n        want '%s'", version, got, want);
    free(got);
}

/* Where (table, column) at version from is at version to, as "table.column", or "-". */
static char *s_where(const lens_set_t *l, int from, const char *table, const char *column, int to)
{
    const char *t, *c;
    buf_t b = BUF_INIT;
    if (stm_lens_translate(l, from, table, column, to, &t, &c))
        stm_buf_printf(&b, "%s.%s", t, c);
    else
        stm_buf_puts(&b, "-");
    return stm_buf_detach(&b);
}

#define S_WHERE(l, from, table, column, to, want)                                                \
    do {                                                                                         \
        char *got_ = s_where(l, from, table, column, to);                                        \
        assert_string_equal(got_, want);                                                         \
        free(got_);                                                                              \
    } while (0)

static const char *V1 = "CREATE TABLE users (id INTEGER PRIMARY KEY, key TEXT NOT NULL, "
                        "type TEXT, modified INTEGER DEFAULT 0);\n"
                        "CREATE TABLE notes (id TEXT PRIMARY KEY, body TEXT, qty INTEGER);\n";

static void test_renames(void **state)
{
    (void)state;
    const char *files[] = {
        "001_init.sql", V1,
        /* two columns renamed in one step (a real history does this) */
        "002_rename.sql",
        "ALTER TABLE users RENAME COLUMN key TO akey;\n"
        "ALTER TABLE users RENAME COLUMN type TO atype;\n",
        /* one column renamed twice in one step */
        "003_twice.sql",
        "ALTER TABLE users RENAME COLUMN modified TO m1;\n"
        "ALTER TABLE users RENAME COLUMN m1 TO created_at;\n",
        /* a table renamed */
        "004_table.sql", "ALTER TABLE notes RENAME TO memos;\n",
        /* nothing happens to the data */
        "005_index.sql", "CREATE INDEX memos_body ON memos (body);\n",
        NULL};
    lens_set_t *l = s_lenses(files);
    assert_int_equal(stm_lens_count(l), 5);
    s_expect(l, 1, "");
    s_expect(l, 2, "renamed users.akey from users.key; renamed users.atype from users.type");
    s_expect(l, 3, "renamed users.created_at from users.modified");
    s_expect(l, 4, "renamed memos.id from notes.id; renamed memos.body from notes.body; "
                   "renamed memos.qty from notes.qty");
    s_expect(l, 5, "");
    /* Values travel through every rename, both ways, and names are found in any case. */
    S_WHERE(l, 1, "users", "key", 5, "users.akey");
    S_WHERE(l, 5, "USERS", "AKEY", 1, "users.key");
    S_WHERE(l, 1, "users", "modified", 5, "users.created_at");
    S_WHERE(l, 3, "users", "created_at", 2, "users.modified");
    S_WHERE(l, 1, "notes", "body", 5, "memos.body");
    S_WHERE(l, 5, "memos", "qty", 1, "notes.qty");
    S_WHERE(l, 2, "users", "id", 2, "users.id");
    S_WHERE(l, 1, "users", "nope", 5, "-");
    S_WHERE(l, 1, "users", "key", 6, "-");
    stm_lens_destroy(&l);
}

static void test_rebuilds_casts_and_drops(void **state)
{
    (void)state;
    const char *files[] = {
        "001_init.sql", V1,
        /* the rebuild SQLite's documentation gives: a new table, the rows copied, the
         * old one dropped and the new renamed back; here qty becomes TEXT (a cast), type
         * is dropped and key renamed on the way */
        "002_rebuild.sql",
        "CREATE TABLE notes_new (id TEXT PRIMARY KEY, body TEXT, qty TEXT);\n"
        "INSERT INTO notes_new (id, body, qty) SELECT id, body, CAST(qty AS TEXT) FROM notes;\n"
        "DROP TABLE notes;\n"
        "ALTER TABLE notes_new RENAME TO notes;\n"
        "CREATE TABLE users_new (id INTEGER PRIMARY KEY, name TEXT NOT NULL, modified INTEGER);\n"
        "INSERT INTO users_new SELECT id, key, modified FROM users;\n"
        "DROP TABLE users;\n"
        "ALTER TABLE users_new RENAME TO users;\n",
        /* a table dropped, and a column dropped */
        "003_drop.sql", "DROP TABLE notes;\nALTER TABLE users DROP COLUMN modified;\n", NULL};
    lens_set_t *l = s_lenses(files);
    s_expect(l, 2, "cast notes.qty from notes.qty; renamed users.name from users.key; "
                   "dropped users.type");
    s_expect(l, 3, "dropped notes; dropped users.modified");
    S_WHERE(l, 1, "notes", "qty", 2, "notes.qty"); /* a cast keeps the column */
    S_WHERE(l, 1, "users", "key", 3, "users.name");
    S_WHERE(l, 1, "users", "type", 2, "-");        /* dropped by the rebuild */
    S_WHERE(l, 2, "users", "modified", 3, "-");
    S_WHERE(l, 3, "users", "name", 1, "users.key");
    stm_lens_destroy(&l);
}

static void test_computed_filled_added_copied_emptied_and_replaced(void **state)
{
    (void)state;
    const char *files[] = {
        "001_init.sql", V1,
        /* a column added with a default; one computed from another; a backfill of NULLs */
        "002_compute.sql",
        "ALTER TABLE users ADD COLUMN flags INTEGER NOT NULL DEFAULT 7;\n"
        "ALTER TABLE users ADD COLUMN label TEXT;\n"
        "UPDATE users SET label = upper(key);\n"
        "UPDATE users SET type = 'legacy' WHERE type IS NULL;\n",
        /* a new table filled from an old one that stays */
        "003_copy.sql",
        "CREATE TABLE tags (user_id INTEGER PRIMARY KEY, tag TEXT);\n"
        "INSERT INTO tags (user_id, tag) SELECT id, 'none' FROM users;\n",
        /* every row deleted */
        "004_empty.sql", "DELETE FROM notes;\n",
        /* a table dropped and made anew under its name, its rows not carried */
        "005_anew.sql", "DROP TABLE tags;\nCREATE TABLE tags (user_id TEXT PRIMARY KEY, tag TEXT);\n",
        NULL};
    lens_set_t *l = s_lenses(files);
    s_expect(l, 2, "filled users.type from users.type; added users.flags; computed users.label");
    s_expect(l, 3, "copied tags.user_id from users.id; added tags.tag");
    s_expect(l, 4, "emptied notes");
    S_WHERE(l, 1, "users", "type", 4, "users.type"); /* filled: the same column */
    S_WHERE(l, 4, "users", "label", 1, "-");         /* computed: values of its own */
    S_WHERE(l, 3, "tags", "user_id", 2, "-");        /* copied: ditto */
    S_WHERE(l, 1, "notes", "body", 4, "notes.body"); /* emptied: the column stays */
    s_expect(l, 5, "replaced tags");
    S_WHERE(l, 4, "tags", "tag", 5, "-");            /* replaced: another table */
    S_WHERE(l, 5, "tags", "tag", 4, "-");
    S_WHERE(l, 4, "notes", "body", 5, "notes.body");
    const char *t;
    assert_false(stm_lens_translate_table(l, 4, "tags", 5, &t));
    assert_true(stm_lens_replaced(l, 5, "tags"));
    assert_false(stm_lens_replaced(l, 4, "notes"));
    stm_lens_destroy(&l);
}

/* A branch a peer describes by its changes alone: names walked back to the version
 * shared, through renames of columns and tables; not through a computed column, a
 * replaced table or a step not probed. */
static void test_a_branch_walked_back_to_the_version_shared(void **state)
{
    (void)state;
    const lens_change v3[] = {{LENS_RENAMED, "users", "akey", "users", "key"},
                              {LENS_COMPUTED, "users", "label", NULL, NULL}},
                      v4[] = {{LENS_RENAMED, "people", "id", "users", "id"},
                              {LENS_RENAMED, "people", "akey", "users", "akey"},
                              {LENS_RENAMED, "people", "label", "users", "label"},
                              {LENS_REPLACED, "tags", NULL, NULL, NULL}};
    const lens_change *changes[] = {v3, v4};
    const size_t n[] = {2, 4};
    bool probed[] = {true, true};
    lens_branch b = {2, 2, changes, n, probed};
    const char *t, *c;
    assert_true(stm_lens_walk_back(&b, 2, "people", "akey", &t, &c));
    assert_string_equal(t, "users");
    assert_string_equal(c, "key");
    assert_true(stm_lens_walk_back(&b, 1, "users", "akey", &t, &c));
    assert_string_equal(c, "key");
    assert_true(stm_lens_walk_back(&b, 2, "people", NULL, &t, NULL));
    assert_string_equal(t, "users");
    assert_true(stm_lens_walk_back(&b, 2, "notes", "body", &t, &c)); /* untouched */
    assert_string_equal(t, "notes");
    assert_string_equal(c, "body");
    assert_false(stm_lens_walk_back(&b, 2, "people", "label", &t, &c)); /* computed */
    assert_false(stm_lens_walk_back(&b, 2, "tags", "name", &t, &c));    /* replaced */
    assert_false(stm_lens_walk_back(&b, 3, "users", "id", &t, &c));      /* beyond it */
    probed[0] = false;
    assert_false(stm_lens_walk_back(&b, 2, "notes", "body", &t, &c));
    assert_true(stm_lens_walk_back(&b, 0, "notes", "body", &t, &c));
}

static void test_checks_strict_tables_and_a_migration_markers_break(void **state)
{
    (void)state;
    const char *files[] = {
        /* CHECK constraints markers break, a STRICT table (text markers refused in its
         * INTEGER column), an INTEGER PRIMARY KEY */
        "001_init.sql",
        "CREATE TABLE t (id INTEGER PRIMARY KEY, code TEXT CHECK (length(code) = 2), "
        "n INTEGER) STRICT;\n"
        "CREATE TABLE u (k TEXT PRIMARY KEY, v INTEGER CHECK (v > 0));\n",
        "002_rename.sql", "ALTER TABLE t RENAME COLUMN n TO count;\n",
        /* a migration that fails on rows it did not expect: several rows with one
         * value break the index; the clean run has no rows and passes */
        "003_picky.sql", "UPDATE u SET v = 1;\nCREATE UNIQUE INDEX u_v ON u (v);\n",
        "004_after.sql", "ALTER TABLE u RENAME COLUMN v TO value;\n", NULL};
    lens_set_t *l = s_lenses(files);
    s_expect(l, 2, "renamed t.count from t.n");
    const char *why = NULL;
    assert_false(stm_lens_probed(l, 3, &why));
    assert_non_null(why);
    assert_non_null(strstr(why, "003_picky.sql:2: UNIQUE constraint failed: u.v"));
    size_t n = 99;
    stm_lens_changes(l, 3, &n);
    assert_int_equal(n, 0);
    /* The derivation goes on after it. */
    s_expect(l, 4, "renamed u.value from u.v");
    stm_lens_destroy(&l);
}

static void test_joins_through_foreign_keys(void **state)
{
    (void)state;
    /* A migration that fills a NOT NULL column through a join (a real history does):
     * a foreign key column holds the marker of the column it refers to, so the join
     * finds its rows; marked apart, the join found none and the insert failed. */
    const char *files[] = {
        "001_init.sql",
        "CREATE TABLE series (id TEXT PRIMARY KEY, title TEXT);\n"
        "CREATE TABLE book (id TEXT PRIMARY KEY, series_id TEXT NOT NULL REFERENCES series (id), "
        "tag TEXT);\n",
        "002_aggregate.sql",
        "CREATE TABLE series_tags (tag TEXT NOT NULL, series_id TEXT NOT NULL, title TEXT NOT NULL);\n"
        "INSERT INTO series_tags SELECT b.tag, s.id, s.title FROM book b "
        "LEFT JOIN series s ON s.id = b.series_id WHERE b.tag IS NOT NULL;\n",
        /* the child's key column read back in its own table is its own */
        "003_rename.sql", "ALTER TABLE book RENAME COLUMN tag TO label;\n", NULL};
    lens_set_t *l = s_lenses(files);
    s_expect(l, 2, "copied series_tags.tag from book.tag; "
                   "copied series_tags.series_id from book.series_id; "
                   "copied series_tags.title from series.title");
    s_expect(l, 3, "renamed book.label from book.tag");
    stm_lens_destroy(&l);
}

static void test_a_migration_that_fails_is_named(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    tu_write(dir, "001_init.sql", "CREATE TABLE a (x);\n");
    tu_write(dir, "002_bad.sql", "\nALTER TABLE nope ADD COLUMN y;\n");
    schemaset_t *set = NULL;
    lens_set_t *l = NULL;
    stm_error err = {0};
    assert_int_equal(stm_schemaset_load(dir, &set, &err), STM_OK);
    assert_int_equal(stm_lens_derive(set, &l, &err), STM_EINPUT);
    assert_null(l);
    assert_non_null(strstr(err.msg, "002_bad.sql:2"));
    assert_non_null(strstr(err.msg, "no such table"));
    stm_schemaset_destroy(&set);
    tu_remove_tree(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_renames),
        cmocka_unit_test(test_rebuilds_casts_and_drops),
        cmocka_unit_test(test_computed_filled_added_copied_emptied_and_replaced),
        cmocka_unit_test(test_a_branch_walked_back_to_the_version_shared),
        cmocka_unit_test(test_checks_strict_tables_and_a_migration_markers_break),
        cmocka_unit_test(test_joins_through_foreign_keys),
        cmocka_unit_test(test_a_migration_that_fails_is_named),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
