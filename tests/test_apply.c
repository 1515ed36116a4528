/* Tests of sync/apply: last writer wins, deletes, parking and replay, idempotence,
 * hostile names and whole-batch atomicity. */
#include "base/clock.h"
#include "dbutil.h"
#include "sync/apply.h"
#include "sync/oplog.h"
#include "sync/vector.h"
#include "testutil.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const SCHEMA =
    "CREATE TABLE tasks (id TEXT PRIMARY KEY, title TEXT NOT NULL, done INTEGER DEFAULT 0,"
    " note TEXT);\n"
    "CREATE TABLE nums (id INTEGER PRIMARY KEY, v REAL);\n";

typedef struct {
    char *dir;
    char path[4200];
    store_t *store;
    applier_t *applier;
    opbatch_t *batch;
    int warnings;
    char last_warning[512];
} fixture;

static void s_warn(void *ctx, const char *message)
{
    fixture *f = ctx;
    f->warnings++;
    snprintf(f->last_warning, sizeof f->last_warning, "%s", message);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    f->dir = tu_tmpdir();
    snprintf(f->path, sizeof f->path, "%s/app.db", f->dir);
    f->store = du_setup(f->path, SCHEMA, NULL);
    f->applier = stm_applier_new(f->store, s_warn, f);
    f->batch = stm_opbatch_new();
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

/* Adds an operation: origin is one byte repeated; text values for pk and value
 * (value NULL: SQL NULL); column NULL: a row delete. */
static void s_add(fixture *f, unsigned char origin, uint64_t seq, uint64_t hlc, const char *table,
                  const char *pk, const char *column, char affinity, const char *value)
{
    op_t op;
    memset(&op, 0, sizeof op);
    memset(op.origin.bytes, origin, STM_ID_BYTES);
    op.seq = seq;
    op.hlc = hlc;
    op.table = table;
    op.pk.type = VALUE_TEXT;
    op.pk.bytes = pk;
    op.pk.len = strlen(pk);
    op.column = column;
    op.affinity = column ? affinity : 0;
    if (column && value) {
        op.value.type = VALUE_TEXT;
        op.value.bytes = value;
        op.value.len = strlen(value);
    }
    stm_opbatch_add(f->batch, &op);
}

/* Adds a whole-row insert of tasks: id, title, done, note at one clock. */
static void s_insert_task(fixture *f, unsigned char origin, uint64_t seq, uint64_t hlc,
                          const char *id, const char *title)
{
    s_add(f, origin, seq, hlc, "tasks", id, "id", 'T', id);
    s_add(f, origin, seq + 1, hlc, "tasks", id, "title", 'T', title);
    s_add(f, origin, seq + 2, hlc, "tasks", id, "done", 'I', NULL);
    s_add(f, origin, seq + 3, hlc, "tasks", id, "note", 'T', NULL);
}

static apply_stats s_apply(fixture *f)
{
    apply_stats st = {0};
    stm_error err = {0};
    if (stm_applier_apply(f->applier, f->batch, &st, &err) != STM_OK)
        fail_msg("apply: %s", err.msg);
    stm_opbatch_clear(f->batch);
    return st;
}

static char *s_title(fixture *f, const char *id)
{
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT title FROM tasks WHERE id = '%s'", id);
    sqlite3_stmt *stmt = NULL;
    sqlite3_prepare_v2(stm_store_db(f->store), sql, -1, &stmt, NULL);
    char *title = NULL;
    if (sqlite3_step(stmt) == SQLITE_ROW)
        title = strdup((const char *)sqlite3_column_text(stmt, 0));
    sqlite3_finalize(stmt);
    return title;
}

static void s_assert_title(fixture *f, const char *id, const char *want)
{
    char *got = s_title(f, id);
    if (!want) {
        if (got)
            fail_msg("row %s exists with title %s", id, got);
        return;
    }
    if (!got)
        fail_msg("row %s does not exist", id);
    assert_string_equal(got, want);
    free(got);
}

static void test_insert_arrives_and_is_not_recaptured(void **state)
{
    fixture *f = *state;
    s_insert_task(f, 0xa1, 1, 1000, "t1", "milk");
    apply_stats st = s_apply(f);
    assert_int_equal(st.applied, 4);
    s_assert_title(f, "t1", "milk");
    /* Recorded once, with origin and clock kept; the local sequence is untouched. */
    assert_int_equal(du_int(f->store, "SELECT count(*) FROM temp.ops"), 4);
    assert_int_equal(du_int(f->store, "SELECT count(*) FROM temp.ops WHERE hlc = 1000"), 4);
    assert_int_equal(du_int(f->store, "SELECT seq FROM stemma_local"), 0);
    /* The local clock moved past what it saw. */
    assert_true(du_int(f->store, "SELECT hlc FROM stemma_local") >= 1000);
}

/* Hybrid logical clock, receive side: after applying a write from a node whose clock
 * is an hour ahead, a local write here still orders after it, and wins. */
static void test_local_clock_moves_past_what_it_applied(void **state)
{
    fixture *f = *state;
    /* Five minutes ahead: within the bound (APPLY_MAX_CLOCK_AHEAD_MS). */
    long long ahead = du_int(f->store, "SELECT (CAST((julianday('now') - 2440587.5) * 86400000 "
                                       "AS INTEGER) + 300000) << 16");
    s_insert_task(f, 0xa1, 1, (uint64_t)ahead, "t1", "from the future");
    s_apply(f);
    du_exec(f->path, "UPDATE tasks SET title = 'local' WHERE id = 't1'");
    assert_true(du_int(f->store, "SELECT max(hlc) FROM temp.ops WHERE col = 'title'") >
                ahead);
    /* And the local write wins against a concurrent one at the future clock. */
    s_add(f, 0xb2, 1, (uint64_t)ahead, "tasks", "t1", "title", 'T', "concurrent");
    s_apply(f);
    s_assert_title(f, "t1", "local");
}

/* This machine's wall clock in ms, plus ms, as a clock. */
static uint64_t s_clock_in(fixture *f, long long ms)
{
    char sql[160];
    snprintf(sql, sizeof sql,
             "SELECT (CAST(round((julianday('now') - 2440587.5) * 86400000) AS INTEGER) + %lld)"
             " << 16",
             ms);
    return (uint64_t)du_int(f->store, sql);
}

static void test_a_clock_too_far_ahead_is_parked_until_it_is_not(void **state)
{
    fixture *f = *state;
    /* An hour ahead: parked, recorded (it travels on), not applied. */
    uint64_t ahead = s_clock_in(f, 3600000);
    s_insert_task(f, 0xa1, 1, ahead, "t1", "from the future");
    apply_stats st = s_apply(f);
    assert_int_equal(st.applied, 0);
    assert_int_equal(st.parked, 4);
    s_assert_title(f, "t1", NULL);
    assert_int_equal(du_int(f->store, "SELECT count(*) FROM stemma_parked WHERE kind = 'ahead' AND"
                                      " reason = 'its clock is more than 600000 ms ahead of this "
                                      "machine''s'"),
                     4);
    assert_int_equal(du_int(f->store, "SELECT seq FROM stemma_vector"), 4);
    assert_non_null(strstr(f->last_warning, "ahead of this machine's"));
    /* It does not drag the local clock: a local write now is earlier. */
    du_exec(f->path, "INSERT INTO tasks (id, title) VALUES ('t2', 'local')");
    du_ops(f->store);
    assert_true((uint64_t)du_int(f->store, "SELECT max(hlc) FROM temp.ops WHERE pk = 't2'") <
                ahead);
    /* Applying more does not apply it while it is still too far ahead, nor lose it. */
    s_add(f, 0xb2, 1, s_clock_in(f, 0), "tasks", "t2", "title", 'T', "other");
    st = s_apply(f);
    assert_int_equal(st.replayed, 0);
    assert_int_equal(du_int(f->store, "SELECT count(*) FROM stemma_parked"), 4);
    apply_stats replay = {0};
    stm_error err = {0};
    assert_int_equal(stm_applier_replay(f->applier, &replay, &err), STM_OK);
    assert_int_equal(replay.replayed, 0);
    assert_int_equal(du_int(f->store, "SELECT count(*) FROM stemma_parked"), 4);
    /* Once it is within the bound (here the bound is raised; the clock catching up
     * does the same, below), the next apply applies it, and the clock moves past it. */
    stm_applier_set_max_clock_ahead(f->applier, 2 * 3600000);
    st = s_apply(f);
    assert_int_equal(st.replayed, 4);
    s_assert_title(f, "t1", "from the future");
    assert_int_equal(du_int(f->store, "SELECT count(*) FROM stemma_parked"), 0);
    du_exec(f->path, "UPDATE tasks SET title = 'later' WHERE id = 't1'");
    du_ops(f->store);
    assert_true((uint64_t)du_int(f->store, "SELECT max(hlc) FROM temp.ops WHERE pk = 't1' AND "
                                           "col = 'title'") > ahead);
}

static void test_a_parked_clock_applies_when_the_wall_clock_catches_up(void **state)
{
    fixture *f = *state;
    /* A bound of -2 s: a clock of now is ahead until 2 s have passed (a real bound
     * works the same way, minutes later). */
    stm_applier_set_max_clock_ahead(f->applier, -2000);
    s_insert_task(f, 0xa1, 1, s_clock_in(f, 0), "t1", "soon");
    apply_stats st = s_apply(f);
    assert_int_equal(st.parked, 4);
    /* Every apply retries them once they may be due: wait for it, at most 30 s. */
    for (int i = 0; i < 300 && st.replayed == 0; i++) {
        nanosleep(&(struct timespec){.tv_nsec = 100 * 1000 * 1000}, NULL);
        st = s_apply(f);
    }
    assert_int_equal(st.replayed, 4);
    s_assert_title(f, "t1", "soon");
}

/* A node that receives nothing asks when to retry and retries then (no apply needed):
 * before that time nothing happens; at it, they apply; then nothing is due. */
static void test_parked_clocks_say_when_they_are_due(void **state)
{
    fixture *f = *state;
    assert_int_equal(stm_applier_ahead_due(f->applier), INT64_MIN); /* not known yet */
    stm_applier_set_max_clock_ahead(f->applier, -2000);
    s_insert_task(f, 0xa1, 1, s_clock_in(f, 0), "t1", "soon");
    apply_stats st = s_apply(f);
    assert_int_equal(st.parked, 4);
    int64_t due = stm_applier_ahead_due(f->applier);
    assert_true(due > INT64_MIN && due < INT64_MAX);
    stm_error err = {0};
    apply_stats retried = {0};
    while (stm_wall_ms() < due) {
        /* Not due yet: nothing is applied. */
        if (stm_applier_retry_ahead(f->applier, &retried, &err) != STM_OK)
            fail_msg("%s", err.msg);
        if (stm_wall_ms() < due)
            assert_int_equal(retried.replayed, 0);
        nanosleep(&(struct timespec){.tv_nsec = 50 * 1000 * 1000}, NULL);
    }
    if (stm_applier_retry_ahead(f->applier, &retried, &err) != STM_OK)
        fail_msg("%s", err.msg);
    assert_int_equal(retried.replayed, 4);
    s_assert_title(f, "t1", "soon");
    assert_int_equal(stm_applier_ahead_due(f->applier), INT64_MAX); /* none left */
}

/* A retry of clocks parked ahead inside a transaction that then rolls back leaves them
 * parked and due: the next retry applies them (they were once stranded until a restart). */
static void test_parked_clocks_stay_due_after_a_rollback(void **state)
{
    fixture *f = *state;
    stm_applier_set_max_clock_ahead(f->applier, -1000);
    s_insert_task(f, 0xa1, 1, s_clock_in(f, 0), "t1", "soon");
    apply_stats st = s_apply(f);
    assert_int_equal(st.parked, 4);
    int64_t due = stm_applier_ahead_due(f->applier);
    while (stm_wall_ms() < due)
        nanosleep(&(struct timespec){.tv_nsec = 50 * 1000 * 1000}, NULL);
    stm_error err = {0};
    if (stm_applier_begin(f->applier, &err) != STM_OK)
        fail_msg("%s", err.msg);
    s_add(f, 0xb2, 1, 1000, "tasks", "t2", "title", 'T', "other");
    apply_stats in_txn = {0};
    if (stm_applier_apply(f->applier, f->batch, &in_txn, &err) != STM_OK)
        fail_msg("%s", err.msg);
    assert_int_equal(in_txn.replayed, 4);
    stm_applier_rollback(f->applier);
    assert_true(stm_applier_ahead_due(f->applier) < INT64_MAX);
    apply_stats retried = {0};
    if (stm_applier_retry_ahead(f->applier, &retried, &err) != STM_OK)
        fail_msg("%s", err.msg);
    assert_int_equal(retried.replayed, 4);
    s_assert_title(f, "t1", "soon");
}

static void test_last_writer_wins_in_any_order(void **state)
{
    fixture *f = *state;
    s_insert_task(f, 0xa1, 1, 1000, "t1", "first");
    s_apply(f);
    /* b2 writes later than a1; apply the later one first. */
    s_add(f, 0xb2, 1, 3000, "tasks", "t1", "title", 'T', "late");
    s_apply(f);
    s_add(f, 0xa1, 5, 2000, "tasks", "t1", "title", 'T', "early");
    apply_stats st = s_apply(f);
    assert_int_equal(st.applied, 1); /* recorded, but it lost */
    s_assert_title(f, "t1", "late");
    /* A tie on the clock is broken by the origin's bytes: c3 > b2. */
    s_add(f, 0xc3, 1, 3000, "tasks", "t1", "title", 'T', "tie");
    s_apply(f);
    s_assert_title(f, "t1", "tie");
    s_add(f, 0x01, 1, 3000, "tasks", "t1", "title", 'T', "tie loses");
    s_apply(f);
    s_assert_title(f, "t1", "tie");
}

static void test_applying_twice_changes_nothing(void **state)
{
    fixture *f = *state;
    s_insert_task(f, 0xa1, 1, 1000, "t1", "milk");
    s_apply(f);
    s_insert_task(f, 0xa1, 1, 1000, "t1", "milk");
    s_add(f, 0xa1, 5, 1001, "tasks", "t1", "title", 'T', "oat milk");
    apply_stats st = s_apply(f);
    assert_int_equal(st.present, 4);
    assert_int_equal(st.applied, 1);
    s_assert_title(f, "t1", "oat milk");
    assert_int_equal(du_int(f->store, "SELECT count(*) FROM temp.ops"), 5);
}

static void test_deletes_against_writes(void **state)
{
    fixture *f = *state;
    s_insert_task(f, 0xa1, 1, 1000, "t1", "milk");
    s_apply(f);
    /* A delete older than the latest write leaves the row. */
    s_add(f, 0xb2, 1, 500, "tasks", "t1", NULL, 0, NULL);
    s_apply(f);
    s_assert_title(f, "t1", "milk");
    /* A newer one removes it. */
    s_add(f, 0xb2, 2, 2000, "tasks", "t1", NULL, 0, NULL);
    s_apply(f);
    s_assert_title(f, "t1", NULL);
    /* A write older than the delete arriving late leaves it deleted... */
    s_add(f, 0xa1, 5, 1500, "tasks", "t1", "note", 'T', "older note");
    s_apply(f);
    s_assert_title(f, "t1", NULL);
    /* ...and a newer write brings it back, with the latest earlier value of each
     * column, the late note included. */
    s_add(f, 0xc3, 1, 2500, "tasks", "t1", "done", 'I', NULL);
    s_apply(f);
    s_assert_title(f, "t1", "milk");
    assert_int_equal(du_int(f->store, "SELECT note = 'older note' FROM tasks WHERE id = 't1'"), 1);
}

static void test_unknown_table_and_column_are_parked_then_replayed(void **state)
{
    fixture *f = *state;
    s_insert_task(f, 0xa1, 1, 1000, "t1", "milk");
    s_add(f, 0xa1, 5, 1000, "tasks", "t1", "priority", 'I', NULL);
    s_add(f, 0xa1, 6, 1001, "tasks", "t1", "priority", 'I', "3");
    s_add(f, 0xa1, 7, 1002, "tags", "g1", "label", 'T', "home");
    apply_stats st = s_apply(f);
    assert_int_equal(st.applied, 4);
    assert_int_equal(st.parked, 3);
    assert_int_equal(f->warnings, 2); /* one per (origin, table.column) */
    assert_non_null(strstr(f->last_warning, "tags.label"));
    assert_int_equal(du_int(f->store, "SELECT count(*) FROM stemma_parked WHERE kind = 'schema'"),
                     3);
    /* Parked operations are held (they travel on) and count in the vector. */
    assert_int_equal(du_int(f->store, "SELECT seq FROM stemma_vector"), 7);
    /* A local write to the new column after the migration is newer than the parked one. */
    du_migrate(f->store, "ALTER TABLE tasks ADD COLUMN priority INTEGER;"
                         "CREATE TABLE tags (id TEXT PRIMARY KEY, label TEXT);");
    apply_stats replay = {0};
    stm_error err = {0};
    assert_int_equal(stm_applier_replay(f->applier, &replay, &err), STM_OK);
    assert_int_equal(replay.replayed, 3);
    assert_int_equal(du_int(f->store, "SELECT priority FROM tasks WHERE id = 't1'"), 3);
    assert_int_equal(du_int(f->store, "SELECT count(*) FROM tags WHERE label = 'home'"), 1);
    assert_int_equal(du_int(f->store, "SELECT count(*) FROM stemma_parked"), 0);
    assert_int_equal(du_int(f->store, "SELECT count(*) FROM temp.ops WHERE parked IS NOT NULL"), 0);
}

static void test_replay_follows_last_writer_wins(void **state)
{
    fixture *f = *state;
    s_insert_task(f, 0xa1, 1, 1000, "t1", "milk");
    s_add(f, 0xa1, 5, 1001, "tasks", "t1", "priority", 'I', "1");
    s_apply(f);
    du_migrate(f->store, "ALTER TABLE tasks ADD COLUMN priority INTEGER;");
    /* Before replaying, this database writes the column itself, later. */
    du_exec(f->path, "UPDATE tasks SET priority = 9 WHERE id = 't1'");
    apply_stats replay = {0};
    stm_error err = {0};
    assert_int_equal(stm_applier_replay(f->applier, &replay, &err), STM_OK);
    assert_int_equal(replay.replayed, 1);
    assert_int_equal(du_int(f->store, "SELECT priority FROM tasks WHERE id = 't1'"), 9);
}

/* A write to a column this schema lacks still counts for the row's existence, in
 * either order of arrival, so that this replica agrees with newer ones on which rows
 * exist. */
static void test_parked_write_keeps_row_alive(void **state)
{
    fixture *f = *state;
    s_insert_task(f, 0xa1, 1, 1000, "t1", "milk");
    s_apply(f);
    /* Delete (5000) arrives first, then the later write to an unknown column (7000). */
    s_add(f, 0xb2, 1, 5000, "tasks", "t1", NULL, 0, NULL);
    s_apply(f);
    s_assert_title(f, "t1", NULL);
    s_add(f, 0xc3, 1, 7000, "tasks", "t1", "priority", 'I', "2");
    s_apply(f);
    s_assert_title(f, "t1", "milk");
    /* Now the other order, on another row. */
    s_insert_task(f, 0xa1, 5, 1000, "t2", "bread");
    s_add(f, 0xc3, 2, 7001, "tasks", "t2", "priority", 'I', "2");
    s_apply(f);
    s_add(f, 0xb2, 2, 5001, "tasks", "t2", NULL, 0, NULL);
    s_apply(f);
    s_assert_title(f, "t2", "bread");
}

/* The order of arrival does not change which rows exist: a write parked for a column
 * this schema lacks, later than a delete, keeps the row whether it comes before the
 * row's insert and the delete or after them (issue 11's B, C, A and A, C, B). */
static void test_a_parked_write_later_than_a_delete_keeps_the_row_in_any_order(void **state)
{
    fixture *f = *state;
    static const int orders[2][3] = {{1, 2, 0}, {0, 2, 1}}; /* B C A, then A C B */
    for (int o = 0; o < 2; o++) {
        char id[8];
        snprintf(id, sizeof id, "x%d", o);
        for (int k = 0; k < 3; k++) {
            switch (orders[o][k]) {
            case 0: /* A inserts x */
                s_insert_task(f, 0xa1, 1 + 4 * (uint64_t)o, 1000, id, "made by a");
                break;
            case 1: /* B, which never saw the delete, sets x.color, a column here lacks */
                s_add(f, 0xb2, 1 + (uint64_t)o, 3000, "tasks", id, "color", 'T', "red");
                break;
            default: /* C deletes x */
                s_add(f, 0xc3, 1 + (uint64_t)o, 2000, "tasks", id, NULL, 0, NULL);
            }
            s_apply(f);
        }
        s_assert_title(f, id, "made by a");
    }
}

static void test_type_conflict_is_parked(void **state)
{
    fixture *f = *state;
    s_insert_task(f, 0xa1, 1, 1000, "t1", "milk");
    s_add(f, 0xa1, 5, 1001, "tasks", "t1", "done", 'T', "yes");
    apply_stats st = s_apply(f);
    assert_int_equal(st.parked, 1);
    assert_non_null(strstr(f->last_warning, "type conflict: INTEGER here, T at the writer"));
    assert_int_equal(du_int(f->store, "SELECT done IS NULL FROM tasks"), 1);
}

static void test_constraint_refusal_is_parked_and_retried(void **state)
{
    fixture *f = *state;
    /* An update to a row this database has not seen: the row cannot be made without
     * its NOT NULL title, so SQLite refuses and the operation is parked. */
    s_add(f, 0xb2, 1, 2000, "tasks", "t1", "note", 'T', "from b");
    apply_stats st = s_apply(f);
    assert_int_equal(st.parked, 1);
    assert_int_equal(du_int(f->store, "SELECT count(*) FROM stemma_parked WHERE kind = "
                                      "'constraint' AND reason LIKE '%NOT NULL%'"),
                     1);
    /* The insert arrives later: the row is made, and the parked update retried. */
    s_insert_task(f, 0xa1, 1, 1000, "t1", "milk");
    st = s_apply(f);
    assert_int_equal(st.replayed, 1);
    assert_int_equal(du_int(f->store, "SELECT note = 'from b' FROM tasks WHERE id = 't1'"), 1);
    assert_int_equal(du_int(f->store, "SELECT count(*) FROM stemma_parked"), 0);
}

static void test_hostile_names_are_parked_as_unknown(void **state)
{
    fixture *f = *state;
    s_add(f, 0x66, 1, 1000, "tasks; DROP TABLE tasks", "x", "id", 'T', "x");
    s_add(f, 0x66, 2, 1001, "tasks", "x\"; DROP TABLE tasks; --", "title\" = 1; --", 'T', "x");
    apply_stats st = s_apply(f);
    assert_int_equal(st.parked, 2);
    assert_int_equal(du_int(f->store, "SELECT count(*) FROM sqlite_schema WHERE name = 'tasks'"),
                     1);
    assert_int_equal(du_int(f->store, "SELECT count(*) FROM stemma_parked"), 2);
}

static void test_vector_counts_contiguous_sequences(void **state)
{
    fixture *f = *state;
    s_add(f, 0xa1, 1, 1000, "nums", "1", "id", 'I', "1");
    s_add(f, 0xa1, 2, 1001, "nums", "2", "id", 'I', "2");
    s_add(f, 0xa1, 4, 1003, "nums", "4", "id", 'I', "4");
    s_apply(f);
    vector_t *v = NULL;
    stm_error err = {0};
    stm_id a1;
    memset(a1.bytes, 0xa1, STM_ID_BYTES);
    assert_int_equal(stm_vector_read(f->store, &v, &err), STM_OK);
    assert_int_equal(stm_vector_get(v, &a1), 2);
    stm_vector_destroy(&v);
    s_add(f, 0xa1, 3, 1002, "nums", "3", "id", 'I', "3");
    s_apply(f);
    assert_int_equal(stm_vector_read(f->store, &v, &err), STM_OK);
    assert_int_equal(stm_vector_get(v, &a1), 4);
    /* The vector also carries this database's own origin. */
    assert_int_equal(stm_vector_count(v), 2);
    stm_vector_destroy(&v);
}

/* Adds a stand-in (op.h) for seq .. seq + n - 1 of origin, row pk of tasks. */
static void s_add_withheld(fixture *f, unsigned char origin, uint64_t seq, uint64_t n,
                           uint64_t hlc, const char *pk)
{
    op_withheld w;
    memset(&w, 0, sizeof w);
    memset(w.origin.bytes, origin, STM_ID_BYTES);
    w.seq = seq;
    w.n = n;
    w.hlc = hlc;
    w.table = "tasks";
    w.pk = (op_value){.type = VALUE_TEXT, .bytes = pk, .len = strlen(pk)};
    w.bytes = 300000000;
    stm_opbatch_add_withheld(f->batch, &w);
}

static uint64_t s_vector_of(fixture *f, unsigned char origin)
{
    vector_t *v = NULL;
    stm_error err = {0};
    stm_id id;
    memset(id.bytes, origin, STM_ID_BYTES);
    assert_int_equal(stm_vector_read(f->store, &v, &err), STM_OK);
    uint64_t seq = stm_vector_get(v, &id);
    stm_vector_destroy(&v);
    return seq;
}

/* A stand-in holds its operations as withheld (invariant 8): nothing applied, the
 * vector past them, what comes after applied; again, or overlapping what is held, it
 * changes nothing but what is new; operations for what it holds are present. */
static void test_a_stand_in_holds_its_operations_as_withheld(void **state)
{
    fixture *f = *state;
    s_insert_task(f, 0xa1, 1, 1000, "t1", "first");
    s_add_withheld(f, 0xa1, 5, 4, 2000, "t2");
    s_insert_task(f, 0xa1, 9, 3000, "t3", "third");
    apply_stats st = s_apply(f);
    assert_int_equal(st.applied, 8);
    assert_int_equal(st.withheld, 4);
    assert_int_equal(s_vector_of(f, 0xa1), 12);
    assert_int_equal(du_int(f->store, "SELECT count(*) FROM tasks"), 2);
    assert_int_equal(du_int(f->store, "SELECT count(*) FROM tasks WHERE id = 't2'"), 0);
    uint64_t total = 0, parked = 0, withheld = 0;
    stm_error err = {0};
    assert_int_equal(stm_oplog_counts_withheld(f->store, &total, &parked, &withheld, &err),
                     STM_OK);
    assert_int_equal(total, 12);
    assert_int_equal(withheld, 4);
    assert_int_equal(parked, 0);
    /* Again: nothing new. */
    s_add_withheld(f, 0xa1, 5, 4, 2000, "t2");
    st = s_apply(f);
    assert_int_equal(st.withheld, 0);
    assert_int_equal(st.present, 4);
    /* The operations themselves, from a sender that could send them: present. */
    s_insert_task(f, 0xa1, 5, 2000, "t2", "second");
    st = s_apply(f);
    assert_int_equal(st.applied, 0);
    assert_int_equal(st.present, 4);
    assert_int_equal(du_int(f->store, "SELECT count(*) FROM tasks WHERE id = 't2'"), 0);
    /* Above a gap, and overlapping what is held on both sides: only what is new is
     * recorded (rows never overlap), and the gap filled, the vector runs on. */
    s_add(f, 0xa2, 3, 4000, "nums", "3", "id", 'I', "3");
    s_add(f, 0xa2, 6, 4001, "nums", "6", "id", 'I', "6");
    s_apply(f);
    assert_int_equal(s_vector_of(f, 0xa2), 0);
    s_add_withheld(f, 0xa2, 2, 6, 3500, "x");
    st = s_apply(f);
    assert_int_equal(st.withheld, 4); /* 2, 4, 5, 7 */
    assert_int_equal(st.present, 2);  /* 3, 6 */
    assert_int_equal(s_vector_of(f, 0xa2), 0);
    s_add(f, 0xa2, 1, 3400, "nums", "1", "id", 'I', "1");
    s_apply(f);
    assert_int_equal(s_vector_of(f, 0xa2), 7);
    assert_int_equal(du_int(f->store, "SELECT count(*) FROM nums"), 3);
    assert_int_equal(stm_oplog_counts_withheld(f->store, &total, &parked, &withheld, &err),
                     STM_OK);
    assert_int_equal(withheld, 8);
    /* The clock moved past the stand-ins' too (txn.h, invariant 3). */
    assert_true(du_int(f->store, "SELECT hlc FROM stemma_local") >= 4001);
}

static void test_failed_batch_changes_nothing(void **state)
{
    fixture *f = *state;
    s_insert_task(f, 0xa1, 1, 1000, "t1", "milk");
    /* A value over SQLite's length limit: an error that is not a refusal of one row
     * but a failure of the batch. */
    sqlite3_limit(stm_store_db(f->store), SQLITE_LIMIT_LENGTH, 1000);
    char big[2001];
    memset(big, 'x', 2000);
    big[2000] = '\0';
    s_add(f, 0xa1, 5, 1001, "tasks", "t1", "note", 'T', big);
    apply_stats st = {0};
    stm_error err = {0};
    assert_int_not_equal(stm_applier_apply(f->applier, f->batch, &st, &err), STM_OK);
    assert_int_equal(du_int(f->store, "SELECT count(*) FROM tasks"), 0);
    assert_int_equal(du_int(f->store, "SELECT count(*) FROM temp.ops"), 0);
    assert_int_equal(du_int(f->store, "SELECT applying FROM stemma_local"), 0);
    assert_int_equal(du_int(f->store, "SELECT count(*) FROM stemma_vector"), 0);
}

static void test_integer_keys_and_real_values(void **state)
{
    fixture *f = *state;
    op_t op;
    memset(&op, 0, sizeof op);
    memset(op.origin.bytes, 0xa1, STM_ID_BYTES);
    op.seq = 1;
    op.hlc = 10;
    op.table = "NUMS"; /* names match without regard to case */
    op.pk.type = VALUE_INTEGER;
    op.pk.i = 42;
    op.column = "V";
    op.affinity = 'R';
    op.value.type = VALUE_REAL;
    op.value.r = 2.5;
    stm_opbatch_add(f->batch, &op);
    apply_stats st = s_apply(f);
    assert_int_equal(st.applied, 1);
    assert_int_equal(du_int(f->store, "SELECT v = 2.5 FROM nums WHERE id = 42"), 1);
    /* Kept as the writer sent it, to travel on unchanged. */
    assert_int_equal(du_int(f->store, "SELECT count(*) FROM temp.ops WHERE tbl = 'NUMS' AND "
                                      "col = 'V'"),
                     1);
    /* The row it inserted is above the table's mark, and not taken for a local insert:
     * the commit raised the mark. */
    assert_int_equal(du_int(f->store, "SELECT count(*) FROM temp.ops"), 1);
    assert_int_equal(du_int(f->store, "SELECT mark FROM stemma_mark WHERE tbl = 'nums'"), 42);
    assert_int_equal(du_int(f->store, "SELECT seq FROM stemma_local"), 0);
    /* Its clock is the local cell's, whatever the spelling: an older write to "v"
     * loses to it. */
    stm_opbatch_clear(f->batch);
    op.seq = 2;
    op.hlc = 5;
    op.table = "nums";
    op.column = "v";
    op.value.r = 9.5;
    stm_opbatch_add(f->batch, &op);
    st = s_apply(f);
    assert_int_equal(st.applied, 1);
    assert_int_equal(du_int(f->store, "SELECT v = 2.5 FROM nums WHERE id = 42"), 1);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_insert_arrives_and_is_not_recaptured),
        T(test_local_clock_moves_past_what_it_applied),
        T(test_a_clock_too_far_ahead_is_parked_until_it_is_not),
        T(test_a_parked_clock_applies_when_the_wall_clock_catches_up),
        T(test_parked_clocks_say_when_they_are_due),
        T(test_parked_clocks_stay_due_after_a_rollback),
        T(test_last_writer_wins_in_any_order),
        T(test_applying_twice_changes_nothing),
        T(test_deletes_against_writes),
        T(test_unknown_table_and_column_are_parked_then_replayed),
        T(test_replay_follows_last_writer_wins),
        T(test_parked_write_keeps_row_alive),
        T(test_a_parked_write_later_than_a_delete_keeps_the_row_in_any_order),
        T(test_type_conflict_is_parked),
        T(test_constraint_refusal_is_parked_and_retried),
        T(test_hostile_names_are_parked_as_unknown),
        T(test_vector_counts_contiguous_sequences),
        T(test_a_stand_in_holds_its_operations_as_withheld),
        T(test_failed_batch_changes_nothing),
        T(test_integer_keys_and_real_values),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
