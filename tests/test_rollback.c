/* Tests of rollbacks and of two migrates at once. A down file must leave the schema the
 * migrations make for the version below it, or the rollback is refused before the
 * database is touched (sync/migrate_plan.c, lineage/schemacmp.h); a database whose
 * schema is not its version's is drift; what a rollback drops comes back when a
 * migration adds it again (sync/dropped.h); the migrate that loses a race says where
 * the database is. Each test writes its schema set into a scratch directory. */
#include "base/buf.h"
#include "lineage/schemacmp.h"
#include "lineage/sqlscript.h"
#include "sync/migrate.h"
#include "sync/store.h"
#include "dbutil.h"
#include "testutil.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* items and, from version 3, a quantity and tags. 002 drops a column from the middle
 * of items; its down file can only put it back at the end. */
static const char *const s_items[] = {
    "001_items.sql",
    "-- Description: Items\n"
    "CREATE TABLE items (id TEXT PRIMARY KEY, note TEXT DEFAULT 'none', name TEXT NOT NULL);\n"
    "CREATE INDEX items_by_name ON items(name);\n",
    "001_items.down.sql",
    "DROP TABLE items;\n",
    "002_drop_note.sql",
    "-- Description: Items lose their note\n"
    "ALTER TABLE items DROP COLUMN note;\n",
    "002_drop_note.down.sql",
    "ALTER TABLE items ADD COLUMN note TEXT DEFAULT 'none';\n",
    "003_add_qty.sql",
    "-- Description: Items get a quantity, and tags\n"
    "ALTER TABLE items ADD COLUMN qty INTEGER NOT NULL DEFAULT 0;\n"
    "CREATE INDEX items_by_qty ON items(qty);\n"
    "CREATE TABLE tags (id TEXT PRIMARY KEY, label TEXT UNIQUE);\n",
    "003_add_qty.down.sql",
    "DROP INDEX items_by_qty;\n"
    "ALTER TABLE items DROP COLUMN qty;\n"
    "DROP TABLE tags;\n",
    NULL,
};

typedef struct {
    char *dir; /* scratch directory */
    char *set; /* DIR/items: the schema set */
    char *db;  /* DIR/app.db */
} s_fixture;

static int s_setup(void **state)
{
    s_fixture *f = calloc(1, sizeof *f);
    f->dir = tu_tmpdir();
    f->set = tu_path(f->dir, "items");
    f->db = tu_path(f->dir, "app.db");
    assert_int_equal(mkdir(f->set, 0755), 0);
    for (size_t i = 0; s_items[i]; i += 2)
        tu_write(f->set, s_items[i], s_items[i + 1]);
    *state = f;
    return 0;
}

static int s_teardown(void **state)
{
    s_fixture *f = *state;
    tu_remove_tree(f->dir);
    free(f->dir);
    free(f->set);
    free(f->db);
    free(f);
    return 0;
}

static migrate_t *s_open(const char *db, const char *set)
{
    stm_error err = {0};
    migrate_t *m = NULL;
    if (stm_migrate_open(db, set, &m, &err) != STM_OK)
        fail_msg("stm_migrate_open(%s, %s): %s", db, set, err.msg);
    return m;
}

/* Runs migrate (up) or rollback (down) to `to`, without a backup unless asked; returns
 * its code, err filled. */
static stm_err s_run(const char *db, const char *set, migrate_direction dir, int to, bool backup,
                     stm_error *err)
{
    migrate_t *m = s_open(db, set);
    migrate_options o = MIGRATE_OPTIONS_INIT;
    o.to = to;
    o.backup = backup;
    stm_err rc = dir == MIGRATE_UP ? stm_migrate_run(m, &o, NULL, err)
                                   : stm_migrate_rollback(m, &o, NULL, err);
    stm_migrate_destroy(&m);
    return rc;
}

static void s_run_ok(const char *db, const char *set, migrate_direction dir, int to)
{
    stm_error err = {0};
    if (s_run(db, set, dir, to, false, &err) != STM_OK)
        fail_msg("%s to %d: %s", dir == MIGRATE_UP ? "migrate" : "rollback", to, err.msg);
}

static int s_version(const char *db, const char *set)
{
    migrate_t *m = s_open(db, set);
    int v = stm_migrate_version(m);
    stm_migrate_destroy(&m);
    return v;
}

/* How many files in dir have names starting with prefix. */
static int s_count_files(const char *dir, const char *prefix)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += strncmp(e->d_name, prefix, strlen(prefix)) == 0;
    closedir(d);
    return n;
}

/* The number sql returns on db, read through a store of its own. */
static long long s_int(const char *db, const char *sql)
{
    store_t *store = NULL;
    stm_error err = {0};
    if (stm_store_open(db, STORE_OPEN_EXISTING, &store, &err) != STM_OK)
        fail_msg("%s", err.msg);
    long long v = du_int(store, sql);
    stm_store_destroy(&store);
    return v;
}

/* Expects a rollback of the database (at version from) to `to` to be refused with a
 * message that starts with "SET/FILE: " + rest, both as a plan and as a run, and the
 * database file, byte for byte, and its directory (no backup) to be left as they were. */
static void s_expect_refused(const s_fixture *f, int from, int to, const char *file,
                             const char *rest)
{
    size_t before_len = 0, after_len = 0;
    char *before = tu_read(f->db, &before_len);
    assert_non_null(before);
    migrate_t *m = s_open(f->db, f->set);
    migrate_options o = MIGRATE_OPTIONS_INIT;
    o.to = to;
    migrate_plan plan;
    stm_error err = {0};
    assert_int_equal(stm_migrate_rollback_plan(m, &o, &plan, &err), STM_EINPUT);
    tu_expect_msg(&err, f->set, file, rest, NULL);
    stm_migrate_plan_free(&plan);
    stm_error_clear(&err);
    assert_int_equal(stm_migrate_rollback(m, &o, NULL, &err), STM_EINPUT);
    tu_expect_msg(&err, f->set, file, rest, NULL);
    stm_migrate_destroy(&m);
    char *after = tu_read(f->db, &after_len);
    assert_non_null(after);
    assert_int_equal(before_len, after_len);
    assert_memory_equal(before, after, before_len);
    assert_int_equal(s_count_files(f->dir, "app.db.v"), 0);
    assert_int_equal(s_version(f->db, f->set), from);
    free(before);
    free(after);
}

/* The tail every refusal of a stale down file ends with. */
#define S_NOTHING "; nothing was changed (a down file must leave the schema of the version below it)"

/* ---- checked rollbacks ---- */

static void test_down_files_that_restore_the_schema_roll_back(void **state)
{
    s_fixture *f = *state;
    s_run_ok(f->db, f->set, MIGRATE_UP, MIGRATE_HEAD);
    du_exec(f->db, "INSERT INTO items (id, name, qty) VALUES ('i1', 'pen', 3)");
    s_run_ok(f->db, f->set, MIGRATE_DOWN, 1);
    assert_int_equal(s_version(f->db, f->set), 1);
    /* 002's down file put note back last: the order differs from version 1's, which
     * is not a difference (lineage/schemacmp.h says why), and no drift either. */
    assert_int_equal(s_int(f->db, "SELECT cid FROM pragma_table_info('items') "
                                  "WHERE name = 'note'"),
                     2);
    migrate_t *m = s_open(f->db, f->set);
    assert_int_equal(stm_migrate_drift_count(m), 0);
    stm_migrate_destroy(&m);
    s_run_ok(f->db, f->set, MIGRATE_UP, MIGRATE_HEAD);
    assert_int_equal(s_version(f->db, f->set), 3);
    s_run_ok(f->db, f->set, MIGRATE_DOWN, 0);
    assert_int_equal(s_version(f->db, f->set), 0);
}

static void test_an_empty_down_file_is_refused_before_anything_changes(void **state)
{
    s_fixture *f = *state;
    tu_write(f->set, "003_add_qty.down.sql", "");
    s_run_ok(f->db, f->set, MIGRATE_UP, MIGRATE_HEAD);
    /* What it leaves, named: a column, a table, an index (the tags table's UNIQUE
     * index goes with the table). */
    s_expect_refused(f, 3, 2, "003_add_qty.down.sql",
                     ": leaves column items.qty that version 2 does not have; leaves table tags "
                     "that version 2 does not have; leaves index items_by_qty that version 2 "
                     "does not have" S_NOTHING);
    /* Down to 1 as well: the file at fault is named whatever the target. */
    s_expect_refused(f, 3, 1, "003_add_qty.down.sql", NULL);
}

static void test_a_column_put_back_otherwise_is_refused(void **state)
{
    s_fixture *f = *state;
    tu_write(f->set, "002_drop_note.down.sql",
             "ALTER TABLE items ADD COLUMN note TEXT DEFAULT 'n/a';\n");
    s_run_ok(f->db, f->set, MIGRATE_UP, MIGRATE_HEAD);
    /* Rolling back 3 alone is fine: its down file is. */
    s_expect_refused(f, 3, 1, "002_drop_note.down.sql",
                     ": leaves column items.note as TEXT DEFAULT 'n/a' where version 1 has TEXT "
                     "DEFAULT 'none'" S_NOTHING);
    s_run_ok(f->db, f->set, MIGRATE_DOWN, 2);
    assert_int_equal(s_version(f->db, f->set), 2);
}

static void test_a_lost_index_and_a_missing_column_are_named(void **state)
{
    s_fixture *f = *state;
    tu_write(f->set, "002_drop_note.down.sql", "DROP INDEX items_by_name;\n");
    s_run_ok(f->db, f->set, MIGRATE_UP, 2);
    s_expect_refused(f, 2, 0, "002_drop_note.down.sql",
                     ": does not restore column items.note that version 1 has; does not restore "
                     "index items_by_name that version 1 has" S_NOTHING);
}

/* ---- a database whose schema is not its version's ---- */

static void test_a_schema_that_is_not_its_versions_is_drift(void **state)
{
    s_fixture *f = *state;
    s_run_ok(f->db, f->set, MIGRATE_UP, 2);
    /* A table the schema set never had is the application's own: no drift. */
    du_exec(f->db, "CREATE TABLE app_cache (k TEXT PRIMARY KEY, v)");
    migrate_t *m = s_open(f->db, f->set);
    assert_int_equal(stm_migrate_drift_count(m), 0);
    stm_migrate_destroy(&m);
    /* What an unchecked, empty down file of 003 leaves behind. */
    du_exec(f->db, "ALTER TABLE items ADD COLUMN qty INTEGER NOT NULL DEFAULT 0");
    m = s_open(f->db, f->set);
    assert_int_equal(stm_migrate_drift_count(m), 1);
    buf_t want = BUF_INIT;
    stm_buf_printf(&want,
                   "%s: has column items.qty that version 2 does not have (its schema is not "
                   "version 2's: a down file that did not undo its migration, or a change by "
                   "hand; put back the backup taken before, or make the schema match)",
                   f->db);
    assert_string_equal(stm_migrate_drift_at(m, 0), stm_buf_str(&want));
    /* So migrate refuses with it, rather than fail on "duplicate column name". */
    migrate_options o = MIGRATE_OPTIONS_INIT;
    stm_error err = {0};
    assert_int_equal(stm_migrate_run(m, &o, NULL, &err), STM_EINPUT);
    assert_string_equal(err.msg, stm_buf_str(&want));
    stm_migrate_destroy(&m);
    stm_buf_free(&want);
    /* Made to match, it migrates on. */
    du_exec(f->db, "ALTER TABLE items DROP COLUMN qty");
    s_run_ok(f->db, f->set, MIGRATE_UP, MIGRATE_HEAD);
}

/* ---- what a rollback drops comes back (sync/dropped.h) ---- */

/* What db's application tables hold, as a digest the caller frees. */
static char *s_content(const char *db)
{
    store_t *store = du_open(db);
    char *h = du_hash(store, "SELECT 'i', id, name, qty FROM items UNION ALL "
                             "SELECT 't', id, label, NULL FROM tags ORDER BY 1, 2");
    stm_store_destroy(&store);
    return h;
}

/* Rolls db back to `to` and returns how many operations the run kept parked. */
static uint64_t s_rollback_dropped(const char *db, const char *set, int to)
{
    migrate_t *m = s_open(db, set);
    migrate_options o = MIGRATE_OPTIONS_INIT;
    o.to = to;
    o.backup = false;
    migrate_result res;
    stm_error err = {0};
    if (stm_migrate_rollback(m, &o, &res, &err) != STM_OK)
        fail_msg("rollback to %d: %s", to, err.msg);
    uint64_t dropped = res.dropped;
    stm_migrate_result_free(&res);
    stm_migrate_destroy(&m);
    return dropped;
}

static void test_values_a_rollback_drops_come_back_with_their_column(void **state)
{
    s_fixture *f = *state;
    s_run_ok(f->db, f->set, MIGRATE_UP, MIGRATE_HEAD);
    du_exec(f->db, "INSERT INTO items (id, name, qty) VALUES ('i1', 'pen', 5), ('i2', 'ink', 7),"
                   " ('i3', 'nib', 9);"
                   "UPDATE items SET qty = 6 WHERE id = 'i1';"
                   "DELETE FROM items WHERE id = 'i3';"
                   "INSERT INTO tags (id, label) VALUES ('t1', 'red');");
    char *before = s_content(f->db);
    /* The cells of qty (not i3's: a deleted row keeps only its delete, which stays)
     * and those of tags. */
    assert_int_equal(s_rollback_dropped(f->db, f->set, 2), 4);
    assert_int_equal(s_int(f->db, "SELECT count(*) FROM pragma_table_info('items') "
                                  "WHERE name = 'qty'"),
                     0);
    assert_int_equal(s_int(f->db, "SELECT count(*) FROM stemma_parked WHERE reason = "
                                  "'the rollback of version 3 dropped its column'"),
                     2);
    assert_int_equal(s_int(f->db, "SELECT count(*) FROM stemma_parked WHERE reason = "
                                  "'the rollback of version 3 dropped its table'"),
                     2);
    /* Written at version 2 meanwhile: kept, as any write. */
    du_exec(f->db, "UPDATE items SET name = 'pencil' WHERE id = 'i1'");
    s_run_ok(f->db, f->set, MIGRATE_UP, MIGRATE_HEAD);
    assert_int_equal(s_int(f->db, "SELECT qty FROM items WHERE id = 'i1'"), 6);
    assert_int_equal(s_int(f->db, "SELECT qty FROM items WHERE id = 'i2'"), 7);
    assert_int_equal(s_int(f->db, "SELECT count(*) FROM items WHERE id = 'i3'"), 0);
    assert_int_equal(s_int(f->db, "SELECT count(*) FROM tags WHERE label = 'red'"), 1);
    assert_int_equal(s_int(f->db, "SELECT count(*) FROM stemma_parked"), 0);
    du_exec(f->db, "UPDATE items SET name = 'pen' WHERE id = 'i1'");
    char *after = s_content(f->db);
    assert_string_equal(before, after);
    free(before);
    free(after);
}

static void test_a_peers_values_come_back_and_later_ones_still_win(void **state)
{
    s_fixture *f = *state;
    char *peer = tu_path(f->dir, "peer.db");
    s_run_ok(f->db, f->set, MIGRATE_UP, MIGRATE_HEAD);
    s_run_ok(peer, f->set, MIGRATE_UP, MIGRATE_HEAD);
    du_exec(peer, "INSERT INTO items (id, name, qty) VALUES ('p1', 'cup', 2), ('p2', 'mug', 4);"
                  "INSERT INTO tags (id, label) VALUES ('t9', 'blue');");
    du_exec(f->db, "INSERT INTO items (id, name, qty) VALUES ('a1', 'pen', 1)");
    du_sync(peer, f->db);
    du_sync(f->db, peer);
    assert_int_equal(s_int(f->db, "SELECT qty FROM items WHERE id = 'p2'"), 4);
    s_rollback_dropped(f->db, f->set, 2);
    /* The peer writes qty while this database is at 2: parked here for want of it, a
     * later write than the one the rollback parked. */
    du_exec(peer, "UPDATE items SET qty = 40 WHERE id = 'p2'");
    du_sync(peer, f->db);
    s_run_ok(f->db, f->set, MIGRATE_UP, MIGRATE_HEAD);
    assert_int_equal(s_int(f->db, "SELECT qty FROM items WHERE id = 'p1'"), 2);
    assert_int_equal(s_int(f->db, "SELECT qty FROM items WHERE id = 'p2'"), 40);
    assert_int_equal(s_int(f->db, "SELECT qty FROM items WHERE id = 'a1'"), 1);
    du_sync(f->db, peer);
    du_sync(peer, f->db);
    char *here = s_content(f->db), *there = s_content(peer);
    assert_string_equal(here, there);
    free(here);
    free(there);
    assert_int_equal(s_int(f->db, "SELECT count(*) FROM stemma_parked"), 0);
    free(peer);
}

/* A row's latest write was to a column a rollback dropped; a delete from a peer, earlier
 * than that write, arrives while the column is gone. The write still counts for whether
 * the row exists (apply.h, invariant 2), here as on the peers that have the column. */
static void test_a_dropped_write_still_keeps_its_row(void **state)
{
    s_fixture *f = *state;
    s_run_ok(f->db, f->set, MIGRATE_UP, MIGRATE_HEAD);
    /* Collected apart (capture keeps one change a row until it is collected). */
    du_exec(f->db, "INSERT INTO items (id, name, qty) VALUES ('i1', 'pen', 5)");
    store_t *store = du_open(f->db);
    du_ops(store);
    stm_store_destroy(&store);
    du_exec(f->db, "UPDATE items SET qty = 6 WHERE id = 'i1'");
    store = du_open(f->db);
    du_ops(store);
    long long last = du_int(store, "SELECT max(hlc) FROM temp.ops WHERE col = 'qty'");
    long long first = du_int(store, "SELECT min(hlc) FROM temp.ops WHERE col = 'qty'");
    stm_store_destroy(&store);
    assert_true(first < last);
    s_rollback_dropped(f->db, f->set, 2);
    /* A peer's delete, between the insert and the update of qty: at the insert's clock,
     * from an origin that orders after this database's (writes compare by clock, then
     * origin). */
    op_t del = {.seq = 1, .hlc = (uint64_t)first, .table = "items",
                .pk = {.type = VALUE_TEXT, .bytes = "i1", .len = 2}};
    memset(del.origin.bytes, 0xff, sizeof del.origin.bytes);
    opbatch_t *batch = stm_opbatch_new();
    stm_opbatch_add(batch, &del);
    store = du_open(f->db);
    du_apply(store, batch);
    stm_store_destroy(&store);
    stm_opbatch_destroy(&batch);
    assert_int_equal(s_int(f->db, "SELECT count(*) FROM items WHERE id = 'i1'"), 1);
    s_run_ok(f->db, f->set, MIGRATE_UP, MIGRATE_HEAD);
    assert_int_equal(s_int(f->db, "SELECT qty FROM items WHERE id = 'i1'"), 6);
}

/* ---- two migrates at once ---- */

/* The other migrate: from the first one's BACKUP_WRITTEN event, after it checked the
 * database and before its first step, another migrate_t takes the database to head. */
typedef struct {
    const s_fixture *f;
    bool ran;
} s_other;

static void s_migrate_meanwhile(const migrate_event *ev, void *user)
{
    s_other *o = user;
    if (ev->kind != MIGRATE_EVENT_BACKUP_WRITTEN || o->ran)
        return;
    o->ran = true;
    s_run_ok(o->f->db, o->f->set, MIGRATE_UP, MIGRATE_HEAD);
}

static void test_the_migrate_that_loses_says_where_the_database_is(void **state)
{
    s_fixture *f = *state;
    s_run_ok(f->db, f->set, MIGRATE_UP, 1);
    migrate_t *m = s_open(f->db, f->set);
    s_other other = {.f = f};
    migrate_options o = MIGRATE_OPTIONS_INIT;
    o.progress = s_migrate_meanwhile;
    o.progress_user = &other;
    migrate_result res;
    stm_error err = {0};
    assert_int_equal(stm_migrate_run(m, &o, &res, &err), STM_EDB);
    assert_true(other.ran);
    buf_t want = BUF_INIT;
    stm_buf_printf(&want,
                   "%s: another process moved it from version 1 to version 3 after this run "
                   "had checked it (a second migrate or rollback at once?); this run changed "
                   "nothing; 'stemma status' says where it is now; backup: %s",
                   f->db, res.backup_path);
    assert_string_equal(err.msg, stm_buf_str(&want));
    assert_int_equal(res.nsteps, 0);
    assert_int_equal(res.version, 3);
    assert_true(res.has_id);
    assert_int_equal(stm_migrate_version(m), 3);
    stm_buf_free(&want);
    stm_migrate_result_free(&res);
    stm_migrate_destroy(&m);
    assert_int_equal(s_version(f->db, f->set), 3);
}

/* ---- what is compared (lineage/schemacmp.h) ---- */

/* The differences of the schema b makes from the one a makes, each described as a
 * down file's, one a line; the caller frees the text. */
static char *s_diff(const char *a, const char *b)
{
    sqlite3 *da = NULL, *db = NULL;
    stm_error err = {0};
    assert_int_equal(stm_sqlscript_open_memory(&da, &err), STM_OK);
    assert_int_equal(stm_sqlscript_open_memory(&db, &err), STM_OK);
    assert_int_equal(sqlite3_exec(da, a, NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, b, NULL, NULL, NULL), SQLITE_OK);
    schemacmp_t *want = NULL, *got = NULL;
    assert_int_equal(stm_schemacmp_read(da, true, &want, &err), STM_OK);
    assert_int_equal(stm_schemacmp_read(db, true, &got, &err), STM_OK);
    schemacmp_diff *d = NULL;
    size_t n = stm_schemacmp_compare(want, got, &d);
    buf_t out = BUF_INIT;
    for (size_t i = 0; i < n; i++) {
        stm_schemacmp_describe(&out, &d[i], 1, true);
        stm_buf_putc(&out, '\n');
    }
    stm_schemacmp_diffs_free(d, n);
    stm_schemacmp_destroy(&want);
    stm_schemacmp_destroy(&got);
    sqlite3_close(da);
    sqlite3_close(db);
    return stm_buf_detach(&out);
}

static void s_expect_diff(const char *a, const char *b, const char *expected)
{
    char *got = s_diff(a, b);
    assert_string_equal(got, expected);
    free(got);
}

static void test_what_the_comparison_sees(void **state)
{
    (void)state;
    const char *base = "CREATE TABLE p (id INTEGER PRIMARY KEY, code TEXT);"
                       "CREATE TABLE c (id INTEGER PRIMARY KEY, p_id INTEGER REFERENCES p (id) "
                       "ON DELETE CASCADE, label TEXT, UNIQUE (label));"
                       "CREATE INDEX c_by_p ON c (p_id) WHERE p_id > 0;"
                       "CREATE VIEW v AS SELECT id FROM p;"
                       "CREATE TRIGGER t AFTER INSERT ON p BEGIN SELECT 1; END;";
    /* The same schema written otherwise (case, spaces, comments, column order) is the
     * same. */
    s_expect_diff(base,
                  "create table P (code text, id integer primary key);"
                  "create table C (label TEXT, id INTEGER PRIMARY KEY, p_id INTEGER REFERENCES "
                  "p(id) ON DELETE CASCADE, unique(label));"
                  "create index C_BY_P on c(p_id)   where p_id>0;"
                  "create view V as /* the ids */ select id from p;"
                  "create trigger T after insert on p begin select 1; end;",
                  "");
    /* Each part of it differs. */
    s_expect_diff(base,
                  "CREATE TABLE p (id INTEGER PRIMARY KEY, code TEXT);"
                  "CREATE TABLE c (id INTEGER PRIMARY KEY, p_id INTEGER REFERENCES p (id), "
                  "label TEXT);"
                  "CREATE INDEX c_by_p ON c (p_id) WHERE p_id > 1;"
                  "CREATE VIEW v AS SELECT code FROM p;"
                  "CREATE TRIGGER t AFTER INSERT ON p BEGIN SELECT 'x'; END;",
                  "leaves index c_by_p defined otherwise than version 1 has it\n"
                  "does not restore the UNIQUE constraint on c (label) that version 1 has\n"
                  "leaves the foreign key c (p_id) REFERENCES p (id) that version 1 does not "
                  "have\n"
                  "does not restore the foreign key c (p_id) REFERENCES p (id) ON DELETE "
                  "CASCADE that version 1 has\n"
                  "leaves trigger t defined otherwise than version 1 has it\n"
                  "leaves view v defined otherwise than version 1 has it\n");
    /* Text inside quotes keeps its case. */
    s_expect_diff("CREATE TABLE p (a); CREATE VIEW v AS SELECT 'A' FROM p;",
                  "CREATE TABLE p (a); CREATE VIEW v AS SELECT 'a' FROM p;",
                  "leaves view v defined otherwise than version 1 has it\n");
    /* An index's columns, in words. */
    s_expect_diff("CREATE TABLE p (a, b); CREATE UNIQUE INDEX i ON p (a, b DESC);",
                  "CREATE TABLE p (a, b); CREATE INDEX i ON p (a COLLATE NOCASE);",
                  "leaves index i as on p (a COLLATE NOCASE) where version 1 has UNIQUE on p "
                  "(a, b DESC)\n");
    /* Keys and WITHOUT ROWID. */
    s_expect_diff("CREATE TABLE k (a TEXT, b TEXT, PRIMARY KEY (a, b)) WITHOUT ROWID;",
                  "CREATE TABLE k (a TEXT PRIMARY KEY, b TEXT NOT NULL);",
                  "leaves table k as a rowid table where version 1 has WITHOUT ROWID\n"
                  "leaves column k.a as TEXT PRIMARY KEY (key column 1) where version 1 has "
                  "TEXT NOT NULL PRIMARY KEY (key column 1)\n"
                  "leaves column k.b as TEXT NOT NULL where version 1 has TEXT NOT NULL "
                  "PRIMARY KEY (key column 2)\n");
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, s_setup, s_teardown)
    const struct CMUnitTest tests[] = {
        T(test_down_files_that_restore_the_schema_roll_back),
        T(test_an_empty_down_file_is_refused_before_anything_changes),
        T(test_a_column_put_back_otherwise_is_refused),
        T(test_a_lost_index_and_a_missing_column_are_named),
        T(test_a_schema_that_is_not_its_versions_is_drift),
        T(test_values_a_rollback_drops_come_back_with_their_column),
        T(test_a_peers_values_come_back_and_later_ones_still_win),
        T(test_a_dropped_write_still_keeps_its_row),
        T(test_the_migrate_that_loses_says_where_the_database_is),
        cmocka_unit_test(test_what_the_comparison_sees),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
