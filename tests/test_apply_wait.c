/* Tests of sync/apply_wait through the applier: what an operation a constraint refused
 * waits for, and that it applies once that is written, whoever writes it (a later
 * batch, the application, an operation retried before it), with nothing stranded; and
 * that a batch costs the same however many operations are parked (SQLite's steps,
 * counted, not timed). A store in format 4 is brought to format 5 with its parked
 * operations waiting for anything, then for what they wait for. */
#include "dbutil.h"
#include "sync/apply.h"
#include "sync/park.h"
#include "testutil.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const SCHEMA =
    "CREATE TABLE lists (id TEXT PRIMARY KEY, name TEXT, archived INTEGER NOT NULL DEFAULT 0);\n"
    "CREATE TABLE tasks (id TEXT PRIMARY KEY, list_id TEXT REFERENCES lists(id),"
    " title TEXT NOT NULL CHECK (length(title) < 20));\n"
    "CREATE TABLE comments (id TEXT PRIMARY KEY, task_id TEXT NOT NULL REFERENCES tasks(id),"
    " body TEXT);\n"
    /* A rule of the application's: no tag on an archived list. */
    "CREATE TABLE tags (id TEXT PRIMARY KEY, list_id TEXT, label TEXT);\n"
    "CREATE TRIGGER tags_on_archived BEFORE INSERT ON tags WHEN (SELECT archived FROM lists"
    " WHERE id = NEW.list_id) = 1 BEGIN SELECT RAISE(ABORT, 'that list is archived'); END;\n"
    /* Not synced (no key): its rows change without stemma seeing them. */
    "CREATE TABLE settings (name TEXT, value TEXT);\n"
    "CREATE TABLE notes (id TEXT PRIMARY KEY, body TEXT);\n"
    "CREATE TRIGGER notes_frozen BEFORE INSERT ON notes WHEN (SELECT value FROM settings"
    " WHERE name = 'frozen') = 'yes' BEGIN SELECT RAISE(ABORT, 'notes are frozen'); END;\n"
    /* A rule of the clock's: what frees it is the time, which no write names. */
    "CREATE TABLE alarms (id TEXT PRIMARY KEY, at TEXT);\n"
    "CREATE TRIGGER alarms_future BEFORE INSERT ON alarms WHEN NEW.at > strftime('%Y',"
    " 'now') BEGIN SELECT RAISE(ABORT, 'not yet'); END;\n";

typedef struct {
    char *dir;
    char path[4200];
    store_t *store;
    applier_t *applier;
    opbatch_t *batch;
    uint64_t seq; /* the next sequence of origin 0xb2 */
} fixture;

static void s_ok(stm_err rc, const stm_error *err)
{
    if (rc != STM_OK)
        fail_msg("%s", err->msg);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    f->dir = tu_tmpdir();
    snprintf(f->path, sizeof f->path, "%s/app.db", f->dir);
    f->store = du_setup(f->path, SCHEMA, NULL);
    f->applier = stm_applier_new(f->store, NULL, NULL);
    f->batch = stm_opbatch_new();
    f->seq = 1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    stm_opbatch_destroy(&f->batch);
    stm_applier_destroy(&f->applier);
    stm_store_destroy(&f->store);
    tu_remove_tree(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

/* A row change of origin 0xb2 at clock hlc to row pk of table: cols[i] = vals[i]
 * (text; NULL: SQL NULL; an "I" column name's value an integer), n of them; with n 0, a
 * delete. */
static void s_change(fixture *f, uint64_t hlc, const char *table, const char *pk,
                     const char *const *cols, const char *const *vals, size_t n)
{
    op_t op;
    memset(&op, 0, sizeof op);
    memset(op.origin.bytes, 0xb2, STM_ID_BYTES);
    op.hlc = hlc;
    op.table = table;
    op.pk = (op_value){.type = VALUE_TEXT, .bytes = pk, .len = strlen(pk)};
    if (!n) {
        op.seq = f->seq++;
        stm_opbatch_add(f->batch, &op);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        op.seq = f->seq++;
        op.column = cols[i];
        bool integer = strcmp(cols[i], "archived") == 0;
        op.affinity = integer ? 'I' : 'T';
        if (!vals[i])
            op.value = (op_value){.type = VALUE_NULL};
        else if (integer)
            op.value = (op_value){.type = VALUE_INTEGER, .i = atoi(vals[i])};
        else
            op.value = (op_value){.type = VALUE_TEXT, .bytes = vals[i], .len = strlen(vals[i])};
        stm_opbatch_add(f->batch, &op);
    }
}

#define CHANGE(f, hlc, table, pk, ...)                                                             \
    do {                                                                                           \
        const char *const s_kv[] = {__VA_ARGS__};                                                  \
        const char *s_c[8], *s_v[8];                                                               \
        size_t s_n = sizeof s_kv / sizeof s_kv[0] / 2;                                             \
        for (size_t s_i = 0; s_i < s_n; s_i++) {                                                   \
            s_c[s_i] = s_kv[2 * s_i];                                                              \
            s_v[s_i] = s_kv[2 * s_i + 1];                                                          \
        }                                                                                          \
        s_change(f, hlc, table, pk, s_c, s_v, s_n);                                                \
    } while (0)

static void s_delete(fixture *f, uint64_t hlc, const char *table, const char *pk)
{
    s_change(f, hlc, table, pk, NULL, NULL, 0);
}

static apply_stats s_apply(fixture *f)
{
    apply_stats st = {0};
    stm_error err = {0};
    s_ok(stm_applier_apply(f->applier, f->batch, &st, &err), &err);
    stm_opbatch_clear(f->batch);
    return st;
}

static long long s_int(fixture *f, const char *sql)
{
    return du_int(f->store, sql);
}

/* How many of the wakes of the operations parked on row pk of table are w. */
static long long s_waits(fixture *f, const char *table, const char *pk, park_wake w)
{
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM stemma_parked_wait AS w JOIN stemma_ids AS i ON i.no = "
             "w.origin JOIN temp.ops AS o ON o.origin = i.id AND o.seq = w.seq WHERE o.tbl = "
             "'%s' AND o.pk = '%s' AND w.wake = %lld",
             table, pk, (long long)w);
    du_ops(f->store);
    return s_int(f, sql);
}

static park_wake s_row(const char *table, const char *key)
{
    op_value v = {.type = VALUE_TEXT, .bytes = key, .len = strlen(key)};
    return stm_park_wake_row(table, &v, 1);
}

/* NOT NULL: a cell of a row this database has not seen waits for its row, and only
 * for it: a batch of other rows leaves it parked; the row's insert, arriving after it
 * though written before, lets it apply. */
static void test_a_row_completed_later_lets_what_waited_for_it_apply(void **state)
{
    fixture *f = *state;
    CHANGE(f, 2000, "tasks", "t1", "list_id", "l1");
    apply_stats st = s_apply(f);
    assert_int_equal(st.parked, 1);
    assert_int_equal(s_waits(f, "tasks", "t1", s_row("tasks", "t1")), 1);
    assert_int_equal(s_int(f, "SELECT count(*) FROM stemma_parked_wait"), 1); /* its row alone */
    CHANGE(f, 3000, "tasks", "t2", "id", "t2", "title", "other");
    st = s_apply(f);
    assert_int_equal(st.applied, 2);
    assert_int_equal(st.replayed, 0);
    assert_int_equal(s_int(f, "SELECT count(*) FROM stemma_parked"), 1);
    CHANGE(f, 1000, "tasks", "t1", "id", "t1", "title", "milk");
    st = s_apply(f);
    assert_int_equal(st.replayed, 1);
    assert_int_equal(s_int(f, "SELECT list_id = 'l1' AND title = 'milk' FROM tasks WHERE id = "
                              "'t1'"),
                     1);
    assert_int_equal(s_int(f, "SELECT count(*) FROM stemma_parked"), 0);
    assert_int_equal(s_int(f, "SELECT count(*) FROM stemma_parked_wait"), 0);
}

/* The same row completed by the application itself: its write, collected by the next
 * transaction (a catch-up here), lets the parked cell apply. */
static void test_a_row_the_application_completes_lets_what_waited_for_it_apply(void **state)
{
    fixture *f = *state;
    CHANGE(f, 2000, "tasks", "t1", "list_id", "l1");
    assert_int_equal(s_apply(f).parked, 1);
    du_exec(f->path, "INSERT INTO tasks (id, title) VALUES ('t1', 'milk')");
    stm_error err = {0};
    s_ok(stm_applier_catch_up(f->applier, &err), &err);
    assert_int_equal(s_int(f, "SELECT count(*) FROM stemma_parked"), 0);
    /* The application's write is later: its list_id (NULL) wins over the parked one. */
    assert_int_equal(s_int(f, "SELECT list_id IS NULL AND title = 'milk' FROM tasks"), 1);
}

/* CHECK: a row change whose value the row's CHECK refuses waits for its row: a batch of
 * another row leaves it parked; a later write of its row (the one the writer made
 * next) lets it apply, where it loses to that later title. */
static void test_a_check_refusal_waits_for_its_row(void **state)
{
    fixture *f = *state;
    CHANGE(f, 1000, "tasks", "t1", "id", "t1", "title", "a title far too long for it");
    assert_int_equal(s_apply(f).parked, 2);
    assert_int_equal(s_waits(f, "tasks", "t1", s_row("tasks", "t1")), 2);
    CHANGE(f, 1500, "tasks", "t2", "id", "t2", "title", "other");
    assert_int_equal(s_apply(f).replayed, 0);
    CHANGE(f, 2000, "tasks", "t1", "title", "short");
    apply_stats st = s_apply(f);
    assert_int_equal(st.applied, 1);
    assert_int_equal(st.replayed, 2);
    assert_int_equal(s_int(f, "SELECT title = 'short' FROM tasks WHERE id = 't1'"), 1);
    assert_int_equal(s_int(f, "SELECT count(*) FROM stemma_parked"), 0);
}

/* FOREIGN KEY (when the connection enforces them): a child waits for its parent's row,
 * not for any write of the parent's table; a chain (comment, task, list) applies in the
 * batch that brings its root; deletes wait for the children that refuse them. */
static void test_a_foreign_key_waits_for_its_parent_row(void **state)
{
    fixture *f = *state;
    assert_int_equal(
        sqlite3_exec(stm_store_db(f->store), "PRAGMA foreign_keys = ON", NULL, NULL, NULL),
        SQLITE_OK);
    CHANGE(f, 1000, "comments", "c1", "id", "c1", "task_id", "t9", "body", "hello");
    assert_int_equal(s_apply(f).parked, 3);
    assert_int_equal(s_waits(f, "comments", "c1", s_row("tasks", "t9")), 3);
    assert_int_equal(s_waits(f, "comments", "c1", PARK_WAKE_ANY), 0);
    CHANGE(f, 1100, "tasks", "t8", "id", "t8", "title", "not it");
    apply_stats st = s_apply(f);
    assert_int_equal(st.replayed, 0);
    CHANGE(f, 1200, "tasks", "t9", "id", "t9", "title", "its parent");
    st = s_apply(f);
    assert_int_equal(st.replayed, 3);
    assert_int_equal(s_int(f, "SELECT count(*) FROM comments WHERE task_id = 't9'"), 1);

    /* A chain, its leaves first. */
    CHANGE(f, 2000, "comments", "c2", "id", "c2", "task_id", "t10");
    CHANGE(f, 2001, "tasks", "t10", "id", "t10", "title", "child", "list_id", "l10");
    st = s_apply(f);
    assert_int_equal(st.parked, 5);
    CHANGE(f, 2002, "lists", "l10", "id", "l10", "name", "root");
    st = s_apply(f);
    assert_int_equal(st.applied, 2);
    assert_int_equal(st.replayed, 5);
    assert_int_equal(s_int(f, "SELECT count(*) FROM stemma_parked"), 0);

    /* Deletes, roots first: each waits for a child's table. */
    s_delete(f, 3000, "lists", "l10");
    st = s_apply(f);
    assert_int_equal(st.parked, 1);
    assert_int_equal(s_waits(f, "lists", "l10", stm_park_wake_table("tasks")), 1);
    s_delete(f, 3001, "tasks", "t10");
    assert_int_equal(s_apply(f).parked, 1);
    s_delete(f, 3002, "comments", "c2");
    st = s_apply(f);
    assert_int_equal(st.applied, 1);
    assert_int_equal(st.replayed, 2);
    assert_int_equal(s_int(f, "SELECT (SELECT count(*) FROM lists WHERE id = 'l10') + (SELECT "
                              "count(*) FROM tasks WHERE id = 't10')"),
                     0);
    assert_int_equal(s_int(f, "SELECT count(*) FROM stemma_parked"), 0);
}

/* A trigger's RAISE: the write waits for the tables the trigger reads (here the list
 * that is archived), and applies once the list is written. */
static void test_a_trigger_refusal_waits_for_the_tables_it_reads(void **state)
{
    fixture *f = *state;
    CHANGE(f, 1000, "lists", "l1", "id", "l1", "archived", "1");
    CHANGE(f, 1001, "tags", "g1", "id", "g1", "list_id", "l1", "label", "urgent");
    apply_stats st = s_apply(f);
    assert_int_equal(st.parked, 3);
    assert_int_equal(s_waits(f, "tags", "g1", stm_park_wake_table("lists")), 3);
    assert_int_equal(s_waits(f, "tags", "g1", PARK_WAKE_ANY), 0);
    CHANGE(f, 1002, "tasks", "t1", "id", "t1", "title", "elsewhere");
    assert_int_equal(s_apply(f).replayed, 0);
    CHANGE(f, 1003, "lists", "l1", "archived", "0");
    st = s_apply(f);
    assert_int_equal(st.replayed, 3);
    assert_int_equal(s_int(f, "SELECT label = 'urgent' FROM tags WHERE id = 'g1'"), 1);
}

/* A rule that reads a table stemma does not sync: no write of stemma's names what
 * frees it, so it waits for anything, retried whenever a row is written. */
static void test_a_blocker_stemma_cannot_see_waits_for_anything(void **state)
{
    fixture *f = *state;
    du_exec(f->path, "INSERT INTO settings VALUES ('frozen', 'yes')");
    CHANGE(f, 1000, "notes", "n1", "id", "n1", "body", "later");
    assert_int_equal(s_apply(f).parked, 2);
    assert_int_equal(s_waits(f, "notes", "n1", PARK_WAKE_ANY), 2);
    du_exec(f->path, "UPDATE settings SET value = 'no'");
    CHANGE(f, 1001, "tasks", "t1", "id", "t1", "title", "anything");
    apply_stats st = s_apply(f);
    assert_int_equal(st.replayed, 2);
    assert_int_equal(s_int(f, "SELECT count(*) FROM notes"), 1);
}

/* A rule that reads the clock: nothing written names what frees it, so it waits for
 * anything, as those stemma cannot see do. */
static void test_a_rule_of_the_clock_waits_for_anything(void **state)
{
    fixture *f = *state;
    CHANGE(f, 1000, "alarms", "a1", "id", "a1", "at", "9999");
    assert_int_equal(s_apply(f).parked, 2);
    assert_int_equal(s_waits(f, "alarms", "a1", PARK_WAKE_ANY), 2);
    assert_int_equal(s_waits(f, "alarms", "a1", s_row("alarms", "a1")), 2);
}

/* Counts SQLite's virtual-machine steps (a progress handler called every 100). */
static int s_steps(void *ctx)
{
    (*(long *)ctx)++;
    return 0;
}

/* The steps taken applying one batch of two new rows to f. */
static long s_batch_steps(fixture *f, const char *a, const char *b)
{
    CHANGE(f, 900000, "tasks", a, "id", a, "title", "x");
    CHANGE(f, 900001, "tasks", b, "id", b, "title", "y");
    long steps = 0;
    sqlite3_progress_handler(stm_store_db(f->store), 100, s_steps, &steps);
    apply_stats st = s_apply(f);
    sqlite3_progress_handler(stm_store_db(f->store), 0, NULL, NULL);
    assert_int_equal(st.applied, 4);
    assert_int_equal(st.replayed, 0);
    return steps;
}

/* A batch costs what it costs with nothing parked: with 20,000 operations parked for a
 * constraint (cells of rows whose other cells never come) and 20,000 for a missing
 * column, the same batch of new rows takes about the steps it takes with none, where a
 * retry of everything parked for a constraint would re-apply 20,000 operations. (The
 * batch before it read the rows' wakes once, into park's filter.) */
static void test_a_batch_costs_the_same_however_much_is_parked(void **state)
{
    fixture *f = *state;
    long none = s_batch_steps(f, "a1", "a2");
    char key[32];
    for (int i = 0; i < 20000; i++) {
        snprintf(key, sizeof key, "p%d", i);
        CHANGE(f, 1000 + (uint64_t)i, "tasks", key, "list_id", "l1");
        CHANGE(f, 1000 + (uint64_t)i, "tasks", key, "color", "red");
        if (stm_opbatch_count(f->batch) >= 5000) {
            apply_stats st = s_apply(f);
            assert_int_equal(st.parked, 5000);
        }
    }
    s_apply(f);
    assert_int_equal(s_int(f, "SELECT count(*) FROM stemma_parked WHERE kind = 'constraint'"),
                     20000);
    assert_int_equal(s_int(f, "SELECT count(*) FROM stemma_parked WHERE kind = 'schema'"), 20000);
    s_batch_steps(f, "b1", "b2");
    long with = s_batch_steps(f, "c1", "c2");
    if (with > 2 * none + 20)
        fail_msg("a batch took %ld00 steps with 40,000 parked, %ld00 with none: it read what is "
                 "parked",
                 with, none);
}

/* A database in format 4 is read as it is and brought to format 5 by its first write
 * transaction: what it parked for a constraint waits for anything, is retried at the
 * first row written, and waits from then on for what it waits for. */
static void test_format_4_is_upgraded_and_nothing_parked_is_stranded(void **state)
{
    fixture *f = *state;
    CHANGE(f, 2000, "tasks", "t1", "list_id", "l1");
    assert_int_equal(s_apply(f).parked, 1);
    stm_applier_destroy(&f->applier);
    stm_store_destroy(&f->store);
    du_format_6(f->path);
    du_exec(f->path, "DROP TABLE stemma_parked_wait; ALTER TABLE stemma_oplog DROP COLUMN derived; "
                     "ALTER TABLE stemma_local DROP COLUMN "
                     "wait_gen; UPDATE stemma_local SET format = 4");
    stm_error err = {0};
    s_ok(stm_store_open(f->path, STORE_OPEN_EXISTING, &f->store, &err), &err);
    s_ok(stm_store_check_format(f->store, &err), &err);
    assert_int_equal(s_int(f, "SELECT format FROM stemma_local"), 4);
    f->applier = stm_applier_new(f->store, NULL, NULL);
    s_ok(stm_applier_catch_up(f->applier, &err), &err);
    assert_int_equal(s_int(f, "SELECT format FROM stemma_local"), STORE_FORMAT);
    assert_int_equal(s_int(f, "SELECT count(*) FROM stemma_parked_wait WHERE wake = 0"), 1);
    /* The first row written retries it; parked again, it waits for its row. */
    CHANGE(f, 3000, "tasks", "t2", "id", "t2", "title", "other");
    assert_int_equal(s_apply(f).replayed, 0);
    assert_int_equal(s_int(f, "SELECT count(*) FROM stemma_parked_wait WHERE wake = 0"), 0);
    assert_int_equal(s_waits(f, "tasks", "t1", s_row("tasks", "t1")), 1);
    CHANGE(f, 1000, "tasks", "t1", "id", "t1", "title", "milk");
    assert_int_equal(s_apply(f).replayed, 1);
    assert_int_equal(s_int(f, "SELECT count(*) FROM stemma_parked"), 0);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_a_row_completed_later_lets_what_waited_for_it_apply),
        T(test_a_row_the_application_completes_lets_what_waited_for_it_apply),
        T(test_a_check_refusal_waits_for_its_row),
        T(test_a_foreign_key_waits_for_its_parent_row),
        T(test_a_trigger_refusal_waits_for_the_tables_it_reads),
        T(test_a_blocker_stemma_cannot_see_waits_for_anything),
        T(test_a_rule_of_the_clock_waits_for_anything),
        T(test_a_batch_costs_the_same_however_much_is_parked),
        T(test_format_4_is_upgraded_and_nothing_parked_is_stranded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
