/* Tests of libstemma's public API (include/stemma.h), through the shared library and
 * nothing else of stemma: lineages loaded and compared, a database migrated with its plan
 * and progress told to a callback (and a dry run that changes nothing), a row carried
 * from one database to another in a bundle and not again after the vector, and bad input
 * refused with its code and a line saying what is wrong. The embedded node is
 * tests/embed_test.py's. */
#include "stemma.h"
#include "testutil.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OK(call)                                                                                   \
    do {                                                                                           \
        stemma_error e_ = {0};                                                                     \
        stemma_error *err = &e_;                                                                   \
        if ((call) != STEMMA_OK)                                                                   \
            fail_msg("%s: %s", #call, e_.message);                                                 \
    } while (0)

static void s_sql(const char *db, const char *sql)
{
    sqlite3 *h = NULL;
    assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
    char *msg = NULL;
    if (sqlite3_exec(h, sql, NULL, NULL, &msg) != SQLITE_OK)
        fail_msg("%s: %s", sql, msg);
    sqlite3_close(h);
}

static long long s_count(const char *db, const char *sql)
{
    sqlite3 *h = NULL;
    sqlite3_stmt *q = NULL;
    assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(h, sql, -1, &q, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    long long n = sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    sqlite3_close(h);
    return n;
}

static void test_lineages_compare(void **state)
{
    (void)state;
    stemma_lineage *tasks = NULL, *fork = NULL;
    OK(stemma_lineage_load("schemas/tasks", &tasks, err));
    OK(stemma_lineage_load("schemas/tasks-fork", &fork, err));
    assert_string_equal(stemma_lineage_name(tasks), "tasks");
    assert_int_equal(stemma_lineage_count(tasks), 4);
    stemma_version_info v;
    OK(stemma_lineage_version(tasks, 1, &v, err));
    assert_int_equal(v.number, 2);
    assert_int_equal(strlen(v.id), 64);
    stemma_version_info first;
    OK(stemma_lineage_version(tasks, 0, &first, err));
    assert_string_equal(v.parent, first.id);
    assert_string_equal(v.description, "Tasks get a priority");

    stemma_comparison *c = NULL;
    OK(stemma_compare(tasks, fork, &c, err));
    /* The comparison keeps both alive: freed here, still read below. */
    stemma_lineage_free(&fork);
    assert_null(fork);
    assert_int_equal(stemma_comparison_relation(c), STEMMA_DIVERGENT);
    assert_string_equal(stemma_relation_name(stemma_comparison_relation(c)), "divergent");
    assert_int_equal(stemma_comparison_common(c), 2);
    bool saw_tasks = false;
    for (size_t i = 0; i < stemma_comparison_table_count(c); i++) {
        stemma_relation r;
        const char *name = stemma_comparison_table(c, i, &r);
        if (strcmp(name, "tasks") != 0)
            continue;
        saw_tasks = true;
        assert_int_equal(r, STEMMA_DIVERGENT);
        assert_true(stemma_comparison_column_count(c, i, STEMMA_COLUMN_SHARED) >= 5);
        /* the fork's due dates, on the remote side only */
        bool due = false;
        for (size_t j = 0; j < stemma_comparison_column_count(c, i, STEMMA_COLUMN_REMOTE_ONLY);
             j++)
            due = due || strstr(stemma_comparison_column(c, i, STEMMA_COLUMN_REMOTE_ONLY, j),
                                "due") != NULL;
        assert_true(due);
        assert_null(stemma_comparison_column(c, i, STEMMA_COLUMN_SHARED, 999));
    }
    assert_true(saw_tasks);
    assert_null(stemma_comparison_table(c, 999, NULL));
    stemma_comparison_free(&c);
    stemma_comparison_free(&c); /* safe twice */

    char *toml = NULL;
    OK(stemma_lineage_export(tasks, &toml, err));
    assert_non_null(strstr(toml, "[[versions]]"));
    stemma_free(toml);
    stemma_lineage_free(&tasks);
    stemma_lineage_free(&tasks);
}

/* What a migration told, in order, one letter an event. */
typedef struct {
    char seen[64];
    size_t n;
    char first_sql[512];
} s_told;

static void s_on_migrate(void *user, const stemma_migrate_event *ev)
{
    s_told *t = user;
    static const char letters[] = " DPBASRdFRCL";
    if (t->n + 1 < sizeof t->seen)
        t->seen[t->n++] = letters[ev->kind];
    if (ev->kind == STEMMA_MIGRATE_PLANNED && !t->first_sql[0])
        snprintf(t->first_sql, sizeof t->first_sql, "%s", ev->sql);
}

static void test_migrate_and_bundles(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    char *a = tu_path(dir, "a.db"), *b = tu_path(dir, "b.db");
    char *bundle = tu_path(dir, "a.bundle"), *vector = tu_path(dir, "b.vector");

    s_told t = {0};
    stemma_migrate_options o = STEMMA_MIGRATE_OPTIONS_INIT;
    o.to = 2;
    o.on_event = s_on_migrate;
    o.user = &t;
    stemma_migrate_result r;
    OK(stemma_migrate(a, "schemas/tasks", &o, &r, err));
    /* Planned twice, then each step started and done (a new file: no backup), then the
     * parked operations retried. */
    assert_string_equal(t.seen, "PPSdSdR");
    assert_non_null(strstr(t.first_sql, "CREATE TABLE"));
    assert_int_equal(r.from, 0);
    assert_int_equal(r.version, 2);
    assert_int_equal(r.steps, 2);

    /* A dry run to 3 tells its plan and changes nothing. */
    memset(&t, 0, sizeof t);
    o.to = 3;
    o.dry_run = 1;
    OK(stemma_migrate(a, "schemas/tasks", &o, &r, err));
    assert_string_equal(t.seen, "P");
    assert_int_equal(r.version, 3);
    assert_int_equal(s_count(a, "SELECT max(version) FROM schema_version"), 2);
    o.dry_run = 0;
    o.on_event = NULL;
    o.backup = 0;
    OK(stemma_migrate(b, "schemas/tasks", &o, NULL, err)); /* b at 3 */

    /* A row written by the application at a travels to b in a bundle. */
    s_sql(a, "INSERT INTO lists (id, name) VALUES ('l1', 'groceries')");
    stemma_db *da = NULL, *db = NULL;
    OK(stemma_db_open(a, NULL, &da, err));
    OK(stemma_db_open(b, "schemas/tasks", &db, err));
    char id[65];
    OK(stemma_db_version_id(db, id, err));
    assert_int_equal(strlen(id), 64);
    stemma_bundle_info info;
    OK(stemma_db_write_changes(da, NULL, bundle, &info, err));
    assert_true(info.ops >= 2);
    stemma_apply_stats st;
    OK(stemma_db_apply(db, bundle, &st, err));
    assert_int_equal(st.applied, info.ops);
    assert_int_equal(st.parked, 0);
    assert_int_equal(s_count(b, "SELECT count(*) FROM lists WHERE name = 'groceries'"), 1);
    /* Applied again: all of it already present. */
    OK(stemma_db_apply(db, bundle, &st, err));
    assert_int_equal(st.present, info.ops);
    /* Nothing more once a knows b's vector. */
    OK(stemma_db_write_vector(db, vector, err));
    OK(stemma_db_write_changes(da, vector, bundle, &info, err));
    assert_int_equal(info.ops, 0);
    stemma_db_close(&da);
    stemma_db_close(&db);
    stemma_db_close(&db);
    tu_remove_tree(dir);
    free(a);
    free(b);
    free(bundle);
    free(vector);
    free(dir);
}

/* A database made without stemma (its tables created by the application from the first
 * three migrations, a row in it) is refused by a plain migrate, named at version 3 by
 * a dry run with baseline, then recorded there, its row made operations, and migrated
 * on: events in order, the result says so, and the row travels in a bundle. */
static void test_baseline(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    char *a = tu_path(dir, "a.db"), *bundle = tu_path(dir, "a.bundle");
    static const char *const files[] = {"schemas/tasks/001_initial_schema.sql",
                                        "schemas/tasks/002_add_priority.sql",
                                        "schemas/tasks/003_add_task_tags.sql"};
    for (size_t i = 0; i < 3; i++) {
        char *text = tu_read(files[i], NULL);
        s_sql(a, text);
        free(text);
    }
    s_sql(a, "INSERT INTO lists (id, name) VALUES ('l1', 'kept')");
    stemma_error e;
    stemma_migrate_options o = STEMMA_MIGRATE_OPTIONS_INIT;
    o.backup = 0;
    assert_int_equal(stemma_migrate(a, "schemas/tasks", &o, NULL, &e), STEMMA_EINPUT);
    assert_non_null(strstr(e.message, "--baseline"));
    assert_int_equal(s_count(a, "SELECT count(*) FROM sqlite_schema WHERE name = "
                                "'schema_version'"),
                     0);

    s_told t = {0};
    o.baseline = 1;
    o.dry_run = 1;
    o.on_event = s_on_migrate;
    o.user = &t;
    stemma_migrate_result r;
    OK(stemma_migrate(a, "schemas/tasks", &o, &r, err));
    assert_string_equal(t.seen, "P");
    assert_int_equal(r.baseline, 3);
    assert_int_equal(r.baseline_rows, 1);
    assert_int_equal(r.version, 4);
    assert_int_equal(s_count(a, "SELECT count(*) FROM sqlite_schema WHERE name = "
                                "'schema_version'"),
                     0);

    memset(&t, 0, sizeof t);
    o.dry_run = 0;
    OK(stemma_migrate(a, "schemas/tasks", &o, &r, err));
    /* Planned, recorded at 3 (baseLined), v4 started and done, the replay. */
    assert_string_equal(t.seen, "PLSdR");
    assert_int_equal(r.from, 0);
    assert_int_equal(r.baseline, 3);
    assert_int_equal(r.baseline_rows, 1);
    assert_int_equal(r.version, 4);
    assert_int_equal(r.steps, 1);
    assert_int_equal(s_count(a, "SELECT count(*) FROM schema_version"), 4);
    stemma_db *da = NULL;
    OK(stemma_db_open(a, NULL, &da, err));
    stemma_bundle_info info;
    OK(stemma_db_write_changes(da, NULL, bundle, &info, err));
    assert_int_equal(info.ops, 3); /* the row's id, name, created_at */
    stemma_db_close(&da);

    o.baseline_version = -1;
    assert_int_equal(stemma_migrate(a, "schemas/tasks", &o, NULL, &e), STEMMA_EUSAGE);
    tu_remove_tree(dir);
    free(a);
    free(bundle);
    free(dir);
}

static void test_bad_input_is_refused_with_a_line(void **state)
{
    (void)state;
    stemma_error err;
    stemma_lineage *l = NULL;
    assert_int_equal(stemma_lineage_load("no/such/dir", &l, &err), STEMMA_EINPUT);
    assert_int_equal(err.code, STEMMA_EINPUT);
    assert_non_null(strstr(err.message, "no/such/dir"));
    assert_null(l);
    assert_int_equal(stemma_lineage_load(NULL, &l, &err), STEMMA_EUSAGE);
    /* A layout named: stemma's own reads the set as detection does; a name that is no
     * layout is refused; another tool's layout finds none of its files here. */
    assert_int_equal(stemma_lineage_load_layout("schemas/tasks", "stemma", &l, &err), STEMMA_OK);
    assert_int_equal(stemma_lineage_count(l), 4);
    stemma_lineage_free(&l);
    assert_int_equal(stemma_lineage_load_layout("schemas/tasks", "liquibase", &l, &err),
                     STEMMA_EUSAGE);
    assert_non_null(strstr(err.message, "no layout 'liquibase'"));
    assert_null(l);
    assert_int_equal(stemma_lineage_load_layout("schemas/tasks", "flyway", &l, &err),
                     STEMMA_EINPUT);
    assert_null(l);
    assert_string_equal(stemma_strerror(STEMMA_EINPUT), "bad input");

    assert_int_equal(stemma_lineage_load("schemas/tasks", &l, &err), STEMMA_OK);
    stemma_version_info v;
    assert_int_equal(stemma_lineage_version(l, 4, &v, &err), STEMMA_EUSAGE);
    assert_non_null(strstr(err.message, "no version at index 4"));
    stemma_lineage_free(&l);

    char *dir = tu_tmpdir();
    char *plain = tu_path(dir, "plain.db");
    s_sql(plain, "CREATE TABLE t (id INTEGER PRIMARY KEY)");
    stemma_db *db = NULL;
    assert_int_equal(stemma_db_open(plain, NULL, &db, &err), STEMMA_EINPUT);
    assert_non_null(strstr(err.message, "not set up for stemma"));
    assert_null(db);
    stemma_migrate_options o = STEMMA_MIGRATE_OPTIONS_INIT;
    o.to = -5;
    assert_int_equal(stemma_migrate(plain, "schemas/tasks", &o, NULL, &err), STEMMA_EUSAGE);
    stemma_node *node = NULL;
    assert_int_equal(stemma_node_open(dir, NULL, &node, &err), STEMMA_EINPUT);
    assert_non_null(strstr(err.message, "node.toml"));
    assert_null(node);
    assert_int_equal(stemma_node_open(dir, NULL, &node, NULL), STEMMA_EINPUT); /* err NULL */
    tu_remove_tree(dir);
    free(plain);
    free(dir);
}

static void test_versions(void **state)
{
    (void)state;
    char want[32];
    snprintf(want, sizeof want, "%d.%d.%d", STEMMA_VERSION_MAJOR, STEMMA_VERSION_MINOR,
             STEMMA_VERSION_PATCH);
    assert_string_equal(stemma_version(), want);
    assert_true(stemma_format_version(STEMMA_FORMAT_WIRE) >= 2);
    assert_true(stemma_format_version(STEMMA_FORMAT_BUNDLE) >= 3);
    assert_true(stemma_format_version(STEMMA_FORMAT_STORE) >= 6);
    assert_int_equal(stemma_format_version((stemma_format)99), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lineages_compare),
        cmocka_unit_test(test_migrate_and_bundles),
        cmocka_unit_test(test_baseline),
        cmocka_unit_test(test_bad_input_is_refused_with_a_line),
        cmocka_unit_test(test_versions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
