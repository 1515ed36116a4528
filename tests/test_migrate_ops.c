/* Tests of a migration's own writes sent as operations (sync/migrate_ops.h) and of
 * where they apply (sync/apply.h, invariant 10): a backfill, a computed column, rows a
 * migration inserts or deletes reach the replicas that held the rows elsewhere or got
 * them later, with clocks that never beat a later write; what was written at the
 * step's version or later is put back, not migrated twice; and an operation a
 * migration wrote waits on a database that has not run it. Each test writes its
 * schema set into a scratch directory and syncs real databases on disk. */
#include "sync/migrate.h"
#include "sync/store.h"
#include "dbutil.h"
#include "testutil.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* items; 002 backfills flag; 003 rebuilds items with a label computed from the name
 * (NOT NULL), adds settings with a seed row and deletes the items named 'gone'. */
static const char *const s_set[] = {
    "001_items.sql",
    "CREATE TABLE items (id TEXT PRIMARY KEY, name TEXT NOT NULL, flag TEXT);\n"
    "CREATE TABLE notes (id TEXT PRIMARY KEY, body TEXT);\n",
    "002_backfill.sql",
    "UPDATE items SET flag = 'legacy' WHERE flag IS NULL;\n",
    "003_rebuild.sql",
    "CREATE TABLE items_new (id TEXT PRIMARY KEY, name TEXT NOT NULL, flag TEXT,\n"
    "                        label TEXT NOT NULL);\n"
    "INSERT INTO items_new SELECT id, name, flag, upper(name) FROM items;\n"
    "DROP TABLE items;\n"
    "ALTER TABLE items_new RENAME TO items;\n"
    "DELETE FROM items WHERE name = 'gone';\n"
    "CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);\n"
    "INSERT INTO settings VALUES ('theme', 'dark');\n",
    NULL,
};

typedef struct {
    char *dir, *set, *a, *b; /* scratch directory, the schema set, two databases */
} s_fixture;

static int s_setup(void **state)
{
    s_fixture *f = calloc(1, sizeof *f);
    f->dir = tu_tmpdir();
    f->set = tu_path(f->dir, "set");
    f->a = tu_path(f->dir, "a.db");
    f->b = tu_path(f->dir, "b.db");
    assert_int_equal(mkdir(f->set, 0755), 0);
    for (size_t i = 0; s_set[i]; i += 2)
        tu_write(f->set, s_set[i], s_set[i + 1]);
    *state = f;
    return 0;
}

static int s_teardown(void **state)
{
    s_fixture *f = *state;
    tu_remove_tree(f->dir);
    free(f->dir);
    free(f->set);
    free(f->a);
    free(f->b);
    free(f);
    return 0;
}

static void s_migrate(const char *db, const char *set, int to, migrate_result *res)
{
    du_migrate_to(db, set, MIGRATE_UP, to, res);
}

static long long s_int(const char *db, const char *sql)
{
    store_t *store = du_open(db);
    du_ops(store);
    long long v = du_int(store, sql);
    stm_store_destroy(&store);
    return v;
}

static void s_same(const char *a, const char *b)
{
    static const char *const tables[] = {"SELECT * FROM items ORDER BY id",
                                         "SELECT * FROM notes ORDER BY id",
                                         "SELECT * FROM settings ORDER BY key"};
    store_t *x = du_open(a), *y = du_open(b);
    for (size_t i = 0; i < sizeof tables / sizeof *tables; i++) {
        if (i == 2 && !du_int(x, "SELECT count(*) FROM sqlite_master WHERE name = 'settings'"))
            continue; /* before version 3 */
        char *here = du_hash(x, tables[i]), *there = du_hash(y, tables[i]);
        if (strcmp(here, there) != 0)
            fail_msg("%s differs", tables[i]);
        free(here);
        free(there);
    }
    stm_store_destroy(&x);
    stm_store_destroy(&y);
}

/* A backfill run on rows this database held is sent: one write a row it changed, at
 * the new version, one tick after the row's own clock, marked as a migration's. */
static void test_a_backfill_is_sent_clocked_just_after_its_row(void **state)
{
    s_fixture *f = *state;
    s_migrate(f->a, f->set, 1, NULL);
    du_exec(f->a, "INSERT INTO items VALUES ('i1', 'pen', NULL), ('i2', 'cup', 'kept');"
                  "INSERT INTO notes VALUES ('n1', 'x')");
    s_int(f->a, "SELECT 1"); /* collected before the migration */
    migrate_result res = {0};
    s_migrate(f->a, f->set, 2, &res);
    assert_int_equal(res.derived_rows, 1);
    assert_int_equal(res.derived_ops, 1);
    stm_migrate_result_free(&res);
    assert_int_equal(s_int(f->a, "SELECT count(*) FROM stemma_oplog WHERE derived = 1"), 1);
    assert_int_equal(s_int(f->a, "SELECT count(*) FROM temp.ops WHERE col = 'flag' AND "
                                 "val = 'legacy' AND hlc = (SELECT hlc FROM temp.ops "
                                 "WHERE col = 'name' AND val = 'pen') + 1"),
                     1);
}

/* The original complaint: a row written at version 1 reaches a database that ran the
 * backfill before it had the row. Once its writer migrates, both hold the same. */
static void test_a_row_that_missed_a_backfill_gets_it_from_its_writer(void **state)
{
    s_fixture *f = *state;
    s_migrate(f->a, f->set, 1, NULL);
    s_migrate(f->b, f->set, 2, NULL);
    du_exec(f->a, "INSERT INTO items VALUES ('i1', 'pen', NULL)");
    du_sync(f->a, f->b);
    assert_int_equal(s_int(f->b, "SELECT count(*) FROM items WHERE flag IS NULL"), 1);
    s_migrate(f->a, f->set, 2, NULL);
    du_sync(f->a, f->b);
    du_sync(f->b, f->a);
    assert_int_equal(s_int(f->b, "SELECT count(*) FROM items WHERE flag = 'legacy'"), 1);
    s_same(f->a, f->b);
}

/* A row written at version 2 (after the backfill) that an older database holds is
 * not backfilled again when it migrates: it is put back, and nothing is sent for it. */
static void test_a_write_of_the_new_version_is_put_back(void **state)
{
    s_fixture *f = *state;
    s_migrate(f->a, f->set, 1, NULL);
    s_migrate(f->b, f->set, 2, NULL);
    du_exec(f->b, "INSERT INTO items VALUES ('i2', 'cup', NULL)");
    du_sync(f->b, f->a);
    migrate_result res = {0};
    s_migrate(f->a, f->set, 2, &res);
    assert_int_equal(res.derived_kept, 1);
    assert_int_equal(res.derived_rows, 0);
    stm_migrate_result_free(&res);
    assert_int_equal(s_int(f->a, "SELECT count(*) FROM items WHERE flag IS NULL"), 1);
    assert_int_equal(s_int(f->a, "SELECT count(*) FROM stemma_oplog WHERE derived = 1"), 0);
    s_same(f->a, f->b);
}

/* What a migration wrote waits on a database that has not run it, and replays once it
 * has: applied before, it would make the migration's own insert of the seed row fail,
 * and the old database could never migrate. */
static void test_a_migrations_writes_wait_for_it_elsewhere(void **state)
{
    s_fixture *f = *state;
    s_migrate(f->a, f->set, 1, NULL);
    s_migrate(f->b, f->set, 1, NULL);
    du_exec(f->a, "INSERT INTO items VALUES ('i1', 'pen', NULL), ('i2', 'gone', 'x')");
    du_sync(f->a, f->b);
    s_migrate(f->a, f->set, 3, NULL);
    apply_stats st = du_sync(f->a, f->b);
    assert_true(st.parked > 0);
    assert_int_equal(s_int(f->b, "SELECT count(*) FROM stemma_parked WHERE reason LIKE "
                                 "'written by the migration to version %'"),
                     (long long)st.parked);
    migrate_result res = {0};
    s_migrate(f->b, f->set, 3, &res);
    assert_int_equal(res.parked, 0);
    stm_migrate_result_free(&res);
    du_sync(f->b, f->a);
    s_same(f->a, f->b);
    assert_int_equal(s_int(f->b, "SELECT count(*) FROM items"), 1);
    assert_int_equal(s_int(f->b, "SELECT count(*) FROM settings"), 1);
}

/* A rebuild that computes a NOT NULL column: a row inserted at version 1 reaches a
 * database already at 3, where it is refused for want of the label; once its writer
 * migrates, the row it sends whole (migrate_ops.h) completes it, and nothing stays
 * parked. */
static void test_a_row_refused_for_a_computed_column_arrives_whole(void **state)
{
    s_fixture *f = *state;
    s_migrate(f->a, f->set, 1, NULL);
    s_migrate(f->b, f->set, 3, NULL);
    du_exec(f->a, "INSERT INTO items VALUES ('i1', 'pen', 'x')");
    apply_stats st = du_sync(f->a, f->b);
    assert_true(st.parked > 0);
    assert_int_equal(s_int(f->b, "SELECT count(*) FROM items"), 0);
    s_migrate(f->a, f->set, 3, NULL);
    du_sync(f->a, f->b);
    du_sync(f->b, f->a);
    assert_int_equal(s_int(f->b, "SELECT count(*) FROM items WHERE label = 'PEN'"), 1);
    assert_int_equal(s_int(f->b, "SELECT count(*) FROM stemma_parked"), 0);
    s_same(f->a, f->b);
}

/* Two databases that each ran the migration on the same rows converge whatever their
 * order, and a real write made afterwards beats both derived writes. */
static void test_both_ran_it_and_a_later_write_wins(void **state)
{
    s_fixture *f = *state;
    s_migrate(f->a, f->set, 1, NULL);
    s_migrate(f->b, f->set, 1, NULL);
    du_exec(f->a, "INSERT INTO items VALUES ('i1', 'pen', NULL)");
    du_sync(f->a, f->b);
    s_migrate(f->a, f->set, 3, NULL);
    s_migrate(f->b, f->set, 3, NULL);
    du_exec(f->b, "UPDATE items SET flag = 'new' WHERE id = 'i1'");
    du_sync(f->a, f->b);
    du_sync(f->b, f->a);
    s_same(f->a, f->b);
    assert_int_equal(s_int(f->a, "SELECT count(*) FROM items WHERE flag = 'new'"), 1);
    assert_int_equal(s_int(f->a, "SELECT count(*) FROM stemma_parked"), 0);
}

/* A value the application wrote to a column a migration computes, dropped by a
 * rollback of that migration and migrated again: the migration computes the column
 * anew, but the value written at its version comes back (sync/dropped.h), and nothing
 * derived is sent that would beat it on the peers. */
static void test_a_rollback_then_migrate_keeps_what_was_written(void **state)
{
    s_fixture *f = *state;
    char *set = tu_path(f->dir, "label");
    assert_int_equal(mkdir(set, 0755), 0);
    tu_write(set, "001_items.sql", "CREATE TABLE items (id TEXT PRIMARY KEY, name TEXT);\n");
    tu_write(set, "002_label.sql",
             "ALTER TABLE items ADD COLUMN label TEXT;\nUPDATE items SET label = upper(name);\n");
    tu_write(set, "002_label.down.sql", "ALTER TABLE items DROP COLUMN label;\n");
    s_migrate(f->a, set, 2, NULL);
    du_exec(f->a, "INSERT INTO items VALUES ('i1', 'pen', 'mine')");
    s_int(f->a, "SELECT 1"); /* collected */
    du_migrate_to(f->a, set, MIGRATE_DOWN, 1, NULL);
    migrate_result res = {0};
    s_migrate(f->a, set, 2, &res);
    assert_int_equal(res.derived_rows, 0);
    stm_migrate_result_free(&res);
    assert_int_equal(s_int(f->a, "SELECT count(*) FROM items WHERE label = 'mine'"), 1);
    assert_int_equal(s_int(f->a, "SELECT count(*) FROM stemma_oplog WHERE derived = 1"), 0);
    free(set);
}

#define T(name) cmocka_unit_test_setup_teardown(name, s_setup, s_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_a_backfill_is_sent_clocked_just_after_its_row),
        T(test_a_row_that_missed_a_backfill_gets_it_from_its_writer),
        T(test_a_write_of_the_new_version_is_put_back),
        T(test_a_migrations_writes_wait_for_it_elsewhere),
        T(test_a_row_refused_for_a_computed_column_arrives_whole),
        T(test_both_ran_it_and_a_later_write_wins),
        T(test_a_rollback_then_migrate_keeps_what_was_written),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
