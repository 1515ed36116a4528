/* Tests of lineage/syncable: the one rule for which tables are synced, the virtual
 * tables the catalog and the lineage keep apart, and the tables a version cannot sync. */
#include "lineage/sqlscript.h"
#include "lineage/syncable.h"
#include "testutil.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

/* A table named name whose key is its first `keys` of `columns` TEXT columns. */
static catalog_table *s_table(const char *name, size_t columns, size_t keys)
{
    catalog_table *t = stm_catalog_table_new(name, false);
    for (size_t i = 0; i < columns; i++) {
        char col[24];
        snprintf(col, sizeof col, "c%zu", i);
        catalog_column c = {.name = col, .decltype = "TEXT", .affinity = AFFINITY_TEXT};
        c.pk = i < keys ? (int)i + 1 : 0;
        stm_catalog_table_add_column(t, &c);
    }
    return t;
}

static void s_expect_class(const char *name, size_t columns, size_t keys, bool excluded,
                           syncable_reason expected)
{
    catalog_table *t = s_table(name, columns, keys);
    assert_int_equal(stm_syncable_classify(t, excluded), expected);
    stm_catalog_table_destroy(&t);
}

static void test_the_rule_in_its_order(void **state)
{
    (void)state;
    s_expect_class("stemma_oplog", 2, 1, false, SYNCABLE_OWN);
    s_expect_class("Schema_Version", 2, 1, true, SYNCABLE_OWN); /* own before excluded */
    s_expect_class("t", 2, 1, false, SYNCABLE_SYNCED);
    s_expect_class("t", 2, 1, true, SYNCABLE_EXCLUDED);
    s_expect_class("t", 2, 0, true, SYNCABLE_EXCLUDED); /* excluded before its key */
    s_expect_class("t", 2, 0, false, SYNCABLE_NO_KEY);
    s_expect_class("t", 3, 2, false, SYNCABLE_SYNCED); /* a composite key syncs */
    s_expect_class("t", SYNCABLE_MAX_KEY_COLUMNS, SYNCABLE_MAX_KEY_COLUMNS, false, SYNCABLE_SYNCED);
    s_expect_class("t", SYNCABLE_MAX_KEY_COLUMNS + 1, SYNCABLE_MAX_KEY_COLUMNS + 1, false,
                   SYNCABLE_WIDE_KEY);
    assert_true(stm_syncable_is_own("STEMMA_x"));
    assert_false(stm_syncable_is_own("stemmas"));
}

static void test_reasons_say_what_to_do(void **state)
{
    (void)state;
    assert_string_equal(stm_syncable_reason_name(SYNCABLE_NO_KEY), "no_key");
    assert_string_equal(stm_syncable_reason_name(SYNCABLE_WIDE_KEY), "wide_key");
    assert_string_equal(stm_syncable_reason_name(SYNCABLE_VIRTUAL), "virtual");
    assert_string_equal(stm_syncable_reason_name(SYNCABLE_EXCLUDED), "excluded");
    assert_string_equal(stm_syncable_reason_text(SYNCABLE_NO_KEY),
                        "no primary key (rowids differ between devices); add one in a migration, "
                        "or keep it local with --exclude");
    assert_string_equal(stm_syncable_reason_text(SYNCABLE_WIDE_KEY),
                        "a primary key of more than 32 columns; give it one of at most 32 in a "
                        "migration, or keep it local with --exclude");
    assert_string_equal(stm_syncable_reason_text(SYNCABLE_VIRTUAL),
                        "a virtual table (triggers cannot capture its rows)");
    assert_string_equal(stm_syncable_reason_text(SYNCABLE_EXCLUDED),
                        "excluded (stemma migrate --exclude)");
}

/* The catalog keeps virtual tables by name and leaves their shadow tables out. */
static void test_the_catalog_keeps_virtual_tables_apart(void **state)
{
    (void)state;
    sqlite3 *db;
    stm_error err = {0};
    assert_int_equal(stm_sqlscript_open_memory(&db, &err), STM_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "CREATE TABLE notes (id TEXT PRIMARY KEY, body TEXT);"
                                  "CREATE VIRTUAL TABLE Search USING fts5(body);"
                                  "CREATE VIRTUAL TABLE boxes USING rtree(id, x0, x1);",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    catalog_t *c = NULL;
    assert_int_equal(stm_catalog_read(db, &c, &err), STM_OK);
    assert_int_equal(stm_catalog_count(c), 1); /* no search_data, boxes_node, ... */
    assert_string_equal(stm_catalog_table_name(stm_catalog_at(c, 0)), "notes");
    assert_int_equal(stm_catalog_virtual_count(c), 2);
    assert_string_equal(stm_catalog_virtual_at(c, 0), "boxes");
    assert_string_equal(stm_catalog_virtual_at(c, 1), "Search");
    stm_catalog_destroy(&c);
    sqlite3_close(db);
}

static void s_expect_unsynced(const lineage_t *l, int version, const char *const *excluded,
                              size_t nexcluded, const char *expected)
{
    syncable_table *t = NULL;
    size_t n = stm_syncable_unsynced(l, version, excluded, nexcluded, &t);
    char got[512] = "";
    for (size_t i = 0; i < n; i++)
        snprintf(got + strlen(got), sizeof got - strlen(got), "%s%s:%s", i ? " " : "", t[i].name,
                 stm_syncable_reason_name(t[i].reason));
    if (strcmp(got, expected) != 0)
        fail_msg("at version %d: expected \"%s\", got \"%s\"", version, expected, got);
    if (n == 0)
        assert_null(t);
    stm_syncable_tables_free(t, n);
}

/* The lineage knows each virtual table's lives; a version names what it cannot sync. */
static void test_what_a_version_cannot_sync(void **state)
{
    (void)state;
    static const char *const files[] = {
        "1_a.sql",
        "CREATE TABLE log (at TEXT); CREATE TABLE notes (id TEXT PRIMARY KEY);"
        "CREATE TABLE links (a TEXT, b TEXT, PRIMARY KEY (a, b)) WITHOUT ROWID;"
        "CREATE TABLE stemma_extra (x); CREATE VIRTUAL TABLE find USING fts5(body);",
        "2_b.sql",
        "DROP TABLE find; CREATE TABLE drafts (id INTEGER PRIMARY KEY);",
        "3_c.sql",
        "ALTER TABLE log RENAME TO old_log; CREATE TABLE log (id INTEGER PRIMARY KEY, at TEXT);"
        "INSERT INTO log (at) SELECT at FROM old_log; DROP TABLE old_log;"
        "CREATE VIRTUAL TABLE Find USING fts5(title, body);",
        NULL};
    lineage_t *l = tu_lineage_files_ok(files);
    assert_int_equal(stm_lineage_virtual_count(l), 2);
    const lineage_virtual *v = stm_lineage_virtual_at(l, 0);
    assert_string_equal(v->name, "find");
    assert_int_equal(v->created, 1);
    assert_int_equal(v->dropped, 2);
    v = stm_lineage_virtual_at(l, 1);
    assert_string_equal(v->name, "Find");
    assert_int_equal(v->created, 3);
    assert_int_equal(v->dropped, 0);
    assert_false(stm_lineage_virtual_live(v, 2));
    assert_true(stm_lineage_virtual_live(v, 3));

    s_expect_unsynced(l, 0, NULL, 0, "");
    s_expect_unsynced(l, 1, NULL, 0, "find:virtual log:no_key");
    s_expect_unsynced(l, 2, NULL, 0, "log:no_key");
    const char *excluded[] = {"DRAFTS", "nothing_of_that_name"};
    s_expect_unsynced(l, 2, excluded, 2, "drafts:excluded log:no_key");
    s_expect_unsynced(l, 3, excluded, 2, "drafts:excluded Find:virtual");
    s_expect_unsynced(l, 3, NULL, 0, "Find:virtual");

    syncable_table *t = NULL;
    size_t n = stm_syncable_unsynced(l, 3, excluded, 2, &t);
    assert_int_equal(stm_syncable_find(t, n, "find")->reason, SYNCABLE_VIRTUAL);
    assert_int_equal(stm_syncable_find(t, n, "Drafts")->reason, SYNCABLE_EXCLUDED);
    assert_null(stm_syncable_find(t, n, "notes"));
    assert_null(stm_syncable_find(NULL, 0, "notes"));
    stm_syncable_tables_free(t, n);

    /* A prefix keeps the lives up to its version, a later drop not yet made. */
    lineage_t *p = stm_lineage_prefix(l, 1);
    assert_int_equal(stm_lineage_virtual_count(p), 1);
    assert_int_equal(stm_lineage_virtual_at(p, 0)->dropped, 0);
    s_expect_unsynced(p, 1, NULL, 0, "find:virtual log:no_key");
    stm_lineage_destroy(&p);
    stm_lineage_destroy(&l);
}

static void test_adding_virtual_tables_checks_their_lives(void **state)
{
    (void)state;
    lineage_t *l = tu_lineage_dir("tests/data/schemas/unsynced");
    stm_error err = {0};
    /* The directory's own: search_fts from version 2 on. */
    assert_int_equal(stm_lineage_virtual_count(l), 1);
    assert_int_equal(stm_lineage_add_virtual(l, "a", 0, 0, &err), STM_ECORRUPT);
    assert_int_equal(stm_lineage_add_virtual(l, "a", 1, 3, &err), STM_ECORRUPT);
    assert_int_equal(stm_lineage_add_virtual(l, "a", 2, 2, &err), STM_ECORRUPT);
    assert_int_equal(stm_lineage_add_virtual(l, "Search_FTS", 1, 0, &err), STM_ECORRUPT);
    assert_non_null(strstr(err.msg, "out of order"));
    assert_int_equal(stm_lineage_add_virtual(l, "z", 1, 2, &err), STM_OK);
    assert_int_equal(stm_lineage_add_virtual(l, "Z", 1, 0, &err), STM_ECORRUPT);
    assert_int_equal(stm_lineage_add_virtual(l, "Z", 2, 0, &err), STM_OK);
    assert_int_equal(stm_lineage_virtual_count(l), 3);
    stm_lineage_destroy(&l);
}

/* ---- the keys setting written in a CREATE TABLE (lineage/directive.h) ---- */

static const catalog_table *s_head_table(const lineage_t *l, const char *name)
{
    const family_t *f = stm_lineage_family_find(l, name);
    assert_non_null(f);
    return stm_family_table(f);
}

static void s_expect_per_device(const lineage_t *l, int version, const char *expected)
{
    char **names = NULL;
    size_t n = stm_syncable_per_device(l, version, NULL, 0, &names);
    char got[256] = "";
    for (size_t i = 0; i < n; i++)
        snprintf(got + strlen(got), sizeof got - strlen(got), "%s%s", i ? " " : "", names[i]);
    stm_syncable_names_free(names, n);
    if (strcmp(got, expected) != 0)
        fail_msg("at version %d: expected \"%s\", got \"%s\"", version, expected, got);
}

static void test_a_table_says_how_its_keys_name_rows(void **state)
{
    (void)state;
    static const char *const files[] = {
        "1_a.sql",
        "CREATE TABLE accounts ( -- stemma: keys per-device\n"
        "  email TEXT PRIMARY KEY COLLATE NOCASE, name TEXT);\n"
        "CREATE TABLE counters (id INTEGER PRIMARY KEY, /* Stemma: KEYS Shared */ n INTEGER);\n"
        "CREATE TABLE notes (id INTEGER PRIMARY KEY,\n"
        "  body TEXT DEFAULT '-- stemma: not a setting, a default');\n"
        "CREATE TABLE tags (name TEXT PRIMARY KEY);\n",
        /* The setting stays through ALTER TABLE; a rebuild must say it again. */
        "2_b.sql",
        "ALTER TABLE accounts ADD COLUMN phone TEXT;\n"
        "CREATE TABLE new_counters (id INTEGER PRIMARY KEY, n INTEGER, m INTEGER);\n"
        "DROP TABLE counters; ALTER TABLE new_counters RENAME TO counters;\n",
        NULL};
    lineage_t *l = tu_lineage_files_ok(files);
    s_expect_per_device(l, 1, "accounts notes");
    s_expect_per_device(l, 2, "accounts counters notes");
    assert_int_equal(stm_catalog_table_keys(s_head_table(l, "accounts")),
                     DIRECTIVE_KEYS_PER_DEVICE);
    assert_int_equal(stm_catalog_table_keys(s_head_table(l, "tags")), DIRECTIVE_KEYS_DEFAULT);
    /* Part of the definition: the same columns with another setting are a change. */
    const family_t *counters = stm_lineage_family_find(l, "counters");
    assert_int_equal(stm_family_count(counters), 2);
    /* A change of rule between two versions is named (migrate says what it means). */
    char **changed = NULL;
    size_t n = stm_syncable_keys_changed(l, 1, 2, NULL, 0, &changed);
    assert_int_equal(n, 1);
    assert_string_equal(changed[0], "counters");
    stm_syncable_names_free(changed, n);
    const char *excluded[] = {"COUNTERS"};
    assert_int_equal(stm_syncable_keys_changed(l, 1, 2, excluded, 1, &changed), 0);
    assert_null(changed);
    assert_int_equal(stm_syncable_keys_changed(l, 2, 2, NULL, 0, &changed), 0);
    stm_lineage_destroy(&l);
}

static void s_expect_refused(const char *sql, const char *expected)
{
    const char *files[] = {"1_a.sql", sql, NULL};
    stm_error err = {0};
    lineage_t *l = tu_lineage_files(files, &err);
    if (l || !strstr(err.msg, expected))
        fail_msg("expected an error with \"%s\", got \"%s\"", expected, l ? "none" : err.msg);
    assert_int_equal(err.code, STM_EINPUT);
}

static void test_a_setting_sqlite_would_drop_or_stemma_does_not_know_is_refused(void **state)
{
    (void)state;
    /* Before the CREATE: SQLite keeps no comment there. */
    s_expect_refused("CREATE TABLE a (x TEXT PRIMARY KEY);\n"
                     "-- stemma: keys per-device\n"
                     "CREATE TABLE t (id TEXT PRIMARY KEY);\n",
                     "1_a.sql:2: a stemma setting goes inside the parentheses of a CREATE TABLE");
    /* After its closing parenthesis. */
    s_expect_refused("CREATE TABLE t (id TEXT PRIMARY KEY) -- stemma: keys per-device\n;",
                     "1_a.sql:1: a stemma setting goes inside");
    /* In another kind of statement. */
    s_expect_refused("CREATE TABLE t (id TEXT PRIMARY KEY);\n\n"
                     "ALTER TABLE t ADD COLUMN x /* stemma: keys shared */ TEXT;",
                     "1_a.sql:3: a stemma setting goes inside");
    /* In CREATE TABLE ... AS SELECT: SQLite keeps a text of its own making for it. */
    s_expect_refused("CREATE TABLE t AS SELECT * FROM (SELECT 'a' AS id -- stemma: keys shared\n"
                     ");",
                     "1_a.sql:1: a stemma setting goes inside");
    s_expect_refused("CREATE TABLE t (id TEXT PRIMARY KEY, -- stemma: keys per_device\n x);",
                     "1_a.sql:1: unknown stemma setting 'keys per_device' (stemma knows: keys "
                     "per-device, keys shared)");
    s_expect_refused("CREATE TABLE t (\n id TEXT PRIMARY KEY, -- stemma: merge\n x);",
                     "1_a.sql:2: unknown stemma setting");
    s_expect_refused("CREATE TABLE t (id TEXT PRIMARY KEY, -- stemma: keys per-device\n"
                     "  x /* stemma: keys shared */);",
                     "1_a.sql:2: its stemma settings disagree: keys per-device, then keys shared");
    /* A comment that only looks like one, in a string or a quoted name, is no setting. */
    const char *files[] = {"1_a.sql",
                           "CREATE TABLE \"-- stemma: x\" (id TEXT PRIMARY KEY, "
                           "v TEXT DEFAULT '/* stemma: y */');",
                           NULL};
    lineage_t *l = tu_lineage_files_ok(files);
    stm_lineage_destroy(&l);
}

/* A database the application changed itself: the catalog reads the setting from
 * SQLite's own record of the table, and refuses one it does not know. */
static void test_the_catalog_reads_the_setting_from_the_database(void **state)
{
    (void)state;
    sqlite3 *db;
    stm_error err = {0};
    assert_int_equal(stm_sqlscript_open_memory(&db, &err), STM_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "CREATE TABLE t (id TEXT PRIMARY KEY -- stemma: keys per-device\n"
                                  ");ALTER TABLE t RENAME TO u; ALTER TABLE u ADD COLUMN v;",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    catalog_t *c = NULL;
    assert_int_equal(stm_catalog_read(db, &c, &err), STM_OK);
    assert_int_equal(stm_catalog_table_keys(stm_catalog_find(c, "u")), DIRECTIVE_KEYS_PER_DEVICE);
    assert_true(stm_syncable_keys_per_device(stm_catalog_find(c, "u")));
    stm_catalog_destroy(&c);
    assert_int_equal(sqlite3_exec(db, "CREATE TABLE w (id TEXT PRIMARY KEY -- stemma: keys\n);",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    assert_int_equal(stm_catalog_read(db, &c, &err), STM_EINPUT);
    assert_non_null(strstr(err.msg, "table w: unknown stemma setting 'keys'"));
    sqlite3_close(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_the_rule_in_its_order),
        cmocka_unit_test(test_reasons_say_what_to_do),
        cmocka_unit_test(test_the_catalog_keeps_virtual_tables_apart),
        cmocka_unit_test(test_what_a_version_cannot_sync),
        cmocka_unit_test(test_adding_virtual_tables_checks_their_lives),
        cmocka_unit_test(test_a_table_says_how_its_keys_name_rows),
        cmocka_unit_test(test_a_setting_sqlite_would_drop_or_stemma_does_not_know_is_refused),
        cmocka_unit_test(test_the_catalog_reads_the_setting_from_the_database),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
