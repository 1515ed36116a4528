/* Tests of sync/park: parking by kind, counted by kind and by reason, parked again
 * with a new reason; the application told once; retries that take the operations out
 * and give them back, quietly; a failed retry that leaves them parked; through the
 * applier, a write replayed once its column appears; and what operations parked for a
 * constraint wait for (invariants 4 and 5): wakes that match every spelling of a key,
 * a row written that wakes exactly what waits for it (and what those write in turn),
 * read without reading the rest. */
#include "dbutil.h"
#include "sync/key.h"
#include "sync/apply.h"
#include "sync/oplog.h"
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
    "CREATE TABLE tasks (id TEXT PRIMARY KEY, title TEXT NOT NULL, note TEXT);\n";

typedef struct {
    char *dir;
    char path[4200];
    store_t *store;
    oplog_t *log;
    park_t *park;
    int warnings;
    char last_warning[512];
    /* What the retry callback saw and does. */
    size_t given;
    uint64_t seqs[16];
    uint64_t parked_during; /* stm_park_count(PARK_ANY) inside the callback */
    uint64_t repark_seq;    /* park this one again (0: none) */
    stm_err fail_with;
} fixture;

static void s_ok(stm_err rc, const stm_error *err)
{
    if (rc != STM_OK)
        fail_msg("%s", err->msg);
}

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
    f->log = stm_oplog_new(f->store);
    f->park = stm_park_new(f->store, f->log, s_warn, f);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    stm_park_destroy(&f->park);
    assert_null(f->park);
    stm_park_destroy(&f->park); /* safe twice */
    stm_oplog_destroy(&f->log);
    stm_store_destroy(&f->store);
    tu_remove_tree(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

/* A write of origin 0xa1 (seq, to column of tasks row "t1"), text value. */
static op_t s_op(uint64_t seq, const char *column)
{
    op_t op;
    memset(&op, 0, sizeof op);
    memset(op.origin.bytes, 0xa1, STM_ID_BYTES);
    op.seq = seq;
    op.hlc = 1000 + seq;
    op.table = "tasks";
    op.pk.type = VALUE_TEXT;
    op.pk.bytes = "t1";
    op.pk.len = 2;
    op.column = column;
    op.affinity = 'T';
    op.value.type = VALUE_TEXT;
    op.value.bytes = "v";
    op.value.len = 1;
    return op;
}

/* Records op in the oplog (parked operations are held) and parks it through p. */
static void s_park_with(fixture *f, park_t *p, uint64_t seq, const char *column, park_kind kind,
                        const char *reason)
{
    op_t op = s_op(seq, column);
    const op_t *ops[1] = {&op};
    stm_error err = {0};
    s_ok(stm_store_exec(f->store, "BEGIN IMMEDIATE", &err), &err);
    s_ok(stm_oplog_append(f->log, ops, 1, op.table, &err), &err);
    s_ok(stm_park_op(p, &op, kind, reason, &err), &err);
    s_ok(stm_store_exec(f->store, "COMMIT", &err), &err);
}

static void s_park(fixture *f, uint64_t seq, const char *column, park_kind kind, const char *reason)
{
    s_park_with(f, f->park, seq, column, kind, reason);
}

static uint64_t s_count(fixture *f, park_kind kind)
{
    uint64_t n = 0;
    stm_error err = {0};
    s_ok(stm_park_count(f->park, kind, &n, &err), &err);
    return n;
}

static void test_parked_operations_are_counted_by_kind_and_reason(void **state)
{
    fixture *f = *state;
    assert_false(stm_park_any(f->park, PARK_ANY));
    s_park(f, 1, "priority", PARK_SCHEMA, "column not in this database");
    s_park(f, 2, "priority", PARK_SCHEMA, "column not in this database");
    s_park(f, 3, "note", PARK_CONSTRAINT, "NOT NULL constraint failed: tasks.title");
    assert_int_equal(s_count(f, PARK_SCHEMA), 2);
    assert_int_equal(s_count(f, PARK_CONSTRAINT), 1);
    assert_int_equal(s_count(f, PARK_ANY), 3);
    assert_true(stm_park_any(f->park, PARK_SCHEMA));
    assert_true(stm_park_any(f->park, PARK_CONSTRAINT));
    /* Told once per (origin, table.column), with the reason. */
    assert_int_equal(f->warnings, 2);
    assert_non_null(strstr(f->last_warning, "on tasks.note: NOT NULL constraint failed"));
    /* By reason, most common first (what `stemma report` shows). */
    park_reason *reasons = NULL;
    size_t n = 0;
    stm_error err = {0};
    s_ok(stm_park_reasons(f->store, 10, &reasons, &n, &err), &err);
    assert_int_equal(n, 2);
    assert_string_equal(reasons[0].reason, "column not in this database");
    assert_int_equal(reasons[0].count, 2);
    assert_int_equal(reasons[1].count, 1);
    stm_park_reasons_free(&reasons, n);
    /* Parked again (invariant 1): the row is replaced, not added. */
    op_t op = s_op(1, "priority");
    s_ok(stm_park_op(f->park, &op, PARK_CONSTRAINT, "CHECK constraint failed: p", &err), &err);
    assert_int_equal(s_count(f, PARK_ANY), 3);
    assert_int_equal(s_count(f, PARK_SCHEMA), 1);
    assert_int_equal(s_count(f, PARK_CONSTRAINT), 2);
    assert_int_equal(f->warnings, 2);
}

/* park_apply_fn for the tests: notes what it is given, parks one again. */
static stm_err s_again(void *ctx, const op_t **ops, size_t n, uint64_t *applied, stm_error *err)
{
    fixture *f = ctx;
    f->given = n;
    for (size_t i = 0; i < n && i < 16; i++)
        f->seqs[i] = ops[i]->seq;
    stm_err rc = stm_park_count(f->park, PARK_ANY, &f->parked_during, err);
    if (rc != STM_OK)
        return rc;
    if (f->fail_with != STM_OK)
        return stm_error_set(err, f->fail_with, "the callback says stop");
    *applied = n;
    for (size_t i = 0; i < n && rc == STM_OK; i++) {
        if (ops[i]->seq == f->repark_seq) {
            (*applied)--;
            rc = stm_park_op(f->park, ops[i], PARK_SCHEMA, "still not in this database", err);
        }
    }
    return rc;
}

static void test_retry_takes_them_out_and_parks_again_quietly(void **state)
{
    fixture *f = *state;
    s_park(f, 1, "priority", PARK_SCHEMA, "column not in this database");
    /* Parked by another park object: f->park has told nothing of tasks.tags. */
    park_t *other = stm_park_new(f->store, f->log, NULL, NULL);
    s_park_with(f, other, 2, "tags", PARK_SCHEMA, "column not in this database");
    stm_park_destroy(&other);
    s_park(f, 3, "note", PARK_CONSTRAINT, "NOT NULL constraint failed: tasks.title");
    s_park(f, 4, "priority", PARK_SCHEMA, "column not in this database");
    int told = f->warnings;
    f->repark_seq = 2;
    uint64_t replayed = 0;
    stm_error err = {0};
    s_ok(stm_store_exec(f->store, "BEGIN IMMEDIATE", &err), &err);
    s_ok(stm_park_retry(f->park, PARK_SCHEMA, s_again, f, &replayed, &err), &err);
    s_ok(stm_store_exec(f->store, "COMMIT", &err), &err);
    /* The schema ones, in (origin, seq) order, out of stemma_parked while retried
     * (invariant 2); the constraint one stays where it was. */
    assert_int_equal(f->given, 3);
    assert_int_equal(f->seqs[0], 1);
    assert_int_equal(f->seqs[1], 2);
    assert_int_equal(f->seqs[2], 4);
    assert_int_equal(f->parked_during, 1);
    assert_int_equal(replayed, 2);
    assert_int_equal(s_count(f, PARK_SCHEMA), 1);
    assert_int_equal(s_count(f, PARK_CONSTRAINT), 1);
    assert_int_equal(du_int(f->store, "SELECT seq FROM stemma_parked WHERE kind = 'schema' AND "
                                      "reason = 'still not in this database'"),
                     2);
    /* Nothing told during the retry (invariant 3), though tasks.tags, never told of,
     * was parked again; told when parked outside one. */
    assert_int_equal(f->warnings, told);
    op_t tags = s_op(2, "tags");
    s_ok(stm_park_op(f->park, &tags, PARK_SCHEMA, "still not in this database", &err), &err);
    assert_int_equal(f->warnings, told + 1);
    assert_non_null(strstr(f->last_warning, "tasks.tags: still not in this database"));
    /* All of them: the one left of each kind. */
    f->repark_seq = 0;
    s_ok(stm_store_exec(f->store, "BEGIN IMMEDIATE", &err), &err);
    s_ok(stm_park_retry(f->park, PARK_ANY, s_again, f, &replayed, &err), &err);
    s_ok(stm_store_exec(f->store, "COMMIT", &err), &err);
    assert_int_equal(f->given, 2);
    assert_int_equal(replayed, 2);
    assert_int_equal(s_count(f, PARK_ANY), 0);
    assert_false(stm_park_any(f->park, PARK_ANY));
    /* Nothing parked: the callback is not called. */
    f->given = 99;
    s_ok(stm_park_retry(f->park, PARK_ANY, s_again, f, &replayed, &err), &err);
    assert_int_equal(f->given, 99);
    assert_int_equal(replayed, 0);
}

static void test_failed_retry_leaves_them_parked(void **state)
{
    fixture *f = *state;
    s_park(f, 1, "priority", PARK_SCHEMA, "column not in this database");
    s_park(f, 2, "priority", PARK_SCHEMA, "column not in this database");
    f->fail_with = STM_EDB;
    uint64_t replayed = 0;
    stm_error err = {0};
    s_ok(stm_store_exec(f->store, "BEGIN IMMEDIATE", &err), &err);
    assert_int_equal(stm_park_retry(f->park, PARK_SCHEMA, s_again, f, &replayed, &err), STM_EDB);
    assert_string_equal(err.msg, "the callback says stop");
    /* The caller rolls back: they are parked as they were. */
    s_ok(stm_store_exec(f->store, "ROLLBACK", &err), &err);
    assert_int_equal(s_count(f, PARK_SCHEMA), 2);
    assert_int_equal(du_int(f->store, "SELECT count(*) FROM stemma_parked WHERE "
                                      "reason = 'column not in this database'"),
                     2);
}

/* The whole way, through the applier: a write to a column this schema lacks is
 * parked; once a migration adds the column, stm_applier_replay applies it. */
static void test_replay_after_the_column_appears(void **state)
{
    fixture *f = *state;
    applier_t *applier = stm_applier_new(f->store, s_warn, f);
    opbatch_t *batch = stm_opbatch_new();
    op_t id = s_op(1, "id"), title = s_op(2, "title"), priority = s_op(3, "priority");
    id.hlc = title.hlc = priority.hlc = 1000; /* one row change */
    id.value.bytes = "t1";
    id.value.len = 2;
    priority.affinity = 'I';
    priority.value.type = VALUE_INTEGER;
    priority.value.i = 5;
    stm_opbatch_add(batch, &id);
    stm_opbatch_add(batch, &title);
    stm_opbatch_add(batch, &priority);
    apply_stats st = {0};
    stm_error err = {0};
    s_ok(stm_applier_apply(applier, batch, &st, &err), &err);
    assert_int_equal(st.applied, 2);
    assert_int_equal(st.parked, 1);
    assert_int_equal(s_count(f, PARK_SCHEMA), 1);
    assert_non_null(strstr(f->last_warning, "tasks.priority: column not in this database"));
    /* Nothing to replay yet: it stays parked. */
    s_ok(stm_applier_replay(applier, &st, &err), &err);
    assert_int_equal(st.replayed, 0);
    assert_int_equal(s_count(f, PARK_SCHEMA), 1);
    du_migrate(f->store, "ALTER TABLE tasks ADD COLUMN priority INTEGER;");
    s_ok(stm_applier_replay(applier, &st, &err), &err);
    assert_int_equal(st.replayed, 1);
    assert_int_equal(s_count(f, PARK_ANY), 0);
    assert_int_equal(du_int(f->store, "SELECT priority FROM tasks WHERE id = 't1'"), 5);
    stm_opbatch_destroy(&batch);
    stm_applier_destroy(&applier);
}

/* Counts SQLite's virtual-machine steps (a progress handler called every 100). */
static int s_steps(void *ctx)
{
    (*(long *)ctx)++;
    return 0;
}

/* Asking whether an operation of one kind is parked (after every batch applied) reads
 * only that kind's entries, however many of other kinds there are: the work is counted
 * in SQLite's steps, not timed. */
static void test_a_kind_is_found_without_reading_the_others(void **state)
{
    fixture *f = *state;
    sqlite3 *db = stm_store_db(f->store);
    assert_int_equal(sqlite3_exec(db,
                                  "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
                                  "WHERE i < 20000) INSERT INTO stemma_parked (origin, seq, kind, "
                                  "reason) SELECT randomblob(32), i, 'schema', 'a column' FROM n",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    long steps = 0;
    sqlite3_progress_handler(db, 100, s_steps, &steps);
    assert_false(stm_park_any(f->park, PARK_CONSTRAINT));
    uint64_t count = 1;
    stm_error err = {0};
    s_ok(stm_park_count(f->park, PARK_AHEAD, &count, &err), &err);
    assert_int_equal(count, 0);
    long by_kind = steps;
    steps = 0;
    /* What reading them all costs, for scale: a search no index serves. */
    assert_int_equal(sqlite3_exec(db, "SELECT count(*) FROM stemma_parked WHERE reason = 'x'",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    long reading_all = steps;
    sqlite3_progress_handler(db, 0, NULL, NULL);
    assert_true(reading_all > 100); /* the measure sees a scan */
    if (by_kind > 10)
        fail_msg("looking for a kind none has took %ld00 steps (reading all: %ld00): it read "
                 "the other kinds",
                 by_kind, reading_all);
    assert_true(stm_park_any(f->park, PARK_SCHEMA));
}

/* ---- wakes (invariants 4 and 5) ---- */

static op_value s_text(const char *t)
{
    return (op_value){.type = VALUE_TEXT, .bytes = t, .len = strlen(t)};
}

static op_value s_int(int64_t i)
{
    return (op_value){.type = VALUE_INTEGER, .i = i};
}

static park_wake s_row(const char *table, op_value v)
{
    return stm_park_wake_row(table, &v, 1);
}

/* Keys SQLite may hold as one row (by a column's affinity, NOCASE or RTRIM) have one
 * wake, so that no write misses what waits for it; others differ. */
static void test_a_key_spelt_any_way_sqlite_takes_as_one_has_one_wake(void **state)
{
    (void)state;
    park_wake one = s_row("tasks", s_int(1));
    assert_int_equal(s_row("tasks", (op_value){.type = VALUE_REAL, .r = 1.0}), one);
    assert_int_equal(s_row("tasks", s_text("1")), one);
    assert_int_equal(s_row("tasks", s_text(" 1\t")), one);
    assert_int_equal(s_row("tasks", s_text("+1")), one);
    assert_int_equal(s_row("tasks", s_text("1.0")), one);
    assert_int_equal(s_row("tasks", s_text("1e0")), one);
    assert_int_equal(s_row("TASKS", s_int(1)), one); /* names compare without case */
    assert_true(s_row("tasks", s_int(2)) != one);
    assert_true(s_row("lists", s_int(1)) != one);
    assert_true(s_row("tasks", (op_value){.type = VALUE_REAL, .r = 1.5}) != one);
    assert_int_equal(s_row("tasks", s_text("1.50")),
                     s_row("tasks", (op_value){.type = VALUE_REAL, .r = 1.5}));
    /* An integer no double holds exactly, as text and as itself. */
    assert_int_equal(s_row("tasks", s_text("9007199254740993")),
                     s_row("tasks", s_int(9007199254740993LL)));
    assert_true(s_row("tasks", s_int(9007199254740993LL)) !=
                s_row("tasks", s_int(9007199254740992LL)));
    /* Text folded as NOCASE and RTRIM fold it; leading blanks count. */
    park_wake ann = s_row("tasks", s_text("Ann"));
    assert_int_equal(s_row("tasks", s_text("ann")), ann);
    assert_int_equal(s_row("tasks", s_text("ANN  ")), ann);
    assert_true(s_row("tasks", s_text(" Ann")) != ann);
    assert_true(s_row("tasks", s_text("Anne")) != ann);
    op_value blob = {.type = VALUE_BLOB, .bytes = "ann", .len = 3};
    assert_true(s_row("tasks", blob) != ann); /* a blob is never text */
    /* A key of several columns, packed as operations carry it or as its parts. */
    op_value parts[2] = {s_text("Room 1"), s_int(7)};
    buf_t packed = BUF_INIT;
    stm_key_pack(parts, 2, &packed);
    op_value key = {.type = VALUE_KEY, .bytes = packed.data, .len = packed.len};
    assert_int_equal(stm_park_wake_key("events", &key), stm_park_wake_row("events", parts, 2));
    assert_int_equal(stm_park_wake_key("tasks", &parts[1]), s_row("tasks", s_int(7)));
    op_value swapped[2] = {s_int(7), s_text("Room 1")};
    assert_true(stm_park_wake_row("events", swapped, 2) != stm_park_wake_row("events", parts, 2));
    stm_buf_free(&packed);
    /* A row's wake, a table's and anything's are told apart. */
    park_wake table = stm_park_wake_table("tasks");
    assert_int_equal(stm_park_wake_table("Tasks"), table);
    assert_true(table & PARK_WAKE_TABLE);
    assert_false(one & PARK_WAKE_TABLE);
    assert_true(one != PARK_WAKE_ANY && table != PARK_WAKE_ANY);
}

/* s_park_with, waiting for wakes[0..n). */
static void s_park_waiting(fixture *f, uint64_t seq, const park_wake *wakes, size_t n)
{
    op_t op = s_op(seq, "note");
    const op_t *ops[1] = {&op};
    stm_error err = {0};
    s_ok(stm_store_exec(f->store, "BEGIN IMMEDIATE", &err), &err);
    s_ok(stm_oplog_append(f->log, ops, 1, op.table, &err), &err);
    s_ok(stm_park_op_waiting(f->park, &op, "NOT NULL constraint failed: tasks.title", wakes, n,
                             &err),
         &err);
    s_ok(stm_store_exec(f->store, "COMMIT", &err), &err);
}

/* Parks again, as a retry would, operation seq (recorded already): for a constraint,
 * waiting for wakes[0..n), or (n 0) as kind. */
static void s_repark(fixture *f, uint64_t seq, const park_wake *wakes, size_t n, park_kind kind)
{
    op_t op = s_op(seq, "note");
    stm_error err = {0};
    s_ok(stm_store_exec(f->store, "BEGIN IMMEDIATE", &err), &err);
    if (n)
        s_ok(stm_park_op_waiting(f->park, &op, "NOT NULL constraint failed: tasks.title", wakes, n,
                                 &err),
             &err);
    else
        s_ok(stm_park_op(f->park, &op, kind, "parked again", &err), &err);
    s_ok(stm_store_exec(f->store, "COMMIT", &err), &err);
}

/* park_apply_fn: notes what it is given; each "applies" (leaves the park) and, like a
 * real apply, may write a row: f->writes_seq's writes the row f->writes_key. */
static uint64_t s_given[64];
static size_t s_ngiven, s_calls;
static uint64_t s_writes_seq;
static const char *s_writes_key;

static stm_err s_wake_apply(void *ctx, const op_t **ops, size_t n, uint64_t *applied,
                            stm_error *err)
{
    (void)err;
    fixture *f = ctx;
    s_calls++;
    for (size_t i = 0; i < n; i++) {
        if (s_ngiven < 64)
            s_given[s_ngiven++] = ops[i]->seq;
        if (ops[i]->seq == s_writes_seq) {
            op_value k = s_text(s_writes_key);
            stm_park_wrote(f->park, "tasks", &k);
        }
    }
    *applied = n;
    return STM_OK;
}

/* Notes that row key of table was written, and wakes: in one transaction. */
static uint64_t s_write_and_wake(fixture *f, const char *table, const char *key)
{
    stm_error err = {0};
    uint64_t replayed = 0;
    s_ngiven = s_calls = 0;
    s_ok(stm_store_exec(f->store, "BEGIN IMMEDIATE", &err), &err);
    stm_park_begin(f->park);
    if (key) {
        op_value k = s_text(key);
        stm_park_wrote(f->park, table, &k);
    }
    s_ok(stm_park_wake(f->park, s_wake_apply, f, &replayed, &err), &err);
    s_ok(stm_store_exec(f->store, "COMMIT", &err), &err);
    return replayed;
}

static bool s_given_has(uint64_t seq)
{
    for (size_t i = 0; i < s_ngiven; i++)
        if (s_given[i] == seq)
            return true;
    return false;
}

/* A row written wakes what waits for it, for its table and for anything, and nothing
 * else: the others stay parked, their wakes with them. */
static void test_a_row_written_wakes_what_waits_for_it_and_nothing_else(void **state)
{
    fixture *f = *state;
    park_wake t1 = s_row("tasks", s_text("t1")), t2 = s_row("tasks", s_text("t2"));
    park_wake lists = stm_park_wake_table("lists"), any = PARK_WAKE_ANY;
    park_wake both[2] = {t1, stm_park_wake_table("tasks")};
    s_park_waiting(f, 1, &t1, 1);
    s_park_waiting(f, 2, &t2, 1);
    s_park_waiting(f, 3, &lists, 1);
    s_park_waiting(f, 4, &any, 1);
    s_park_waiting(f, 5, both, 2);
    s_park(f, 6, "priority", PARK_SCHEMA, "column not in this database");
    assert_int_equal(du_int(f->store, "SELECT count(*) FROM stemma_parked_wait"), 6);
    /* Another spelling of t1 (NOCASE would take it as the same row). */
    assert_int_equal(s_write_and_wake(f, "Tasks", "T1"), 3);
    assert_int_equal(s_ngiven, 3);
    assert_true(s_given_has(1) && s_given_has(4) && s_given_has(5));
    assert_int_equal(s_count(f, PARK_CONSTRAINT), 2);
    assert_int_equal(s_count(f, PARK_SCHEMA), 1);
    assert_int_equal(du_int(f->store, "SELECT count(*) FROM stemma_parked_wait"), 2);
    /* A row of lists: what waits for the table. */
    assert_int_equal(s_write_and_wake(f, "lists", "l9"), 1);
    assert_true(s_given_has(3));
    /* Nothing written: nothing retried. */
    assert_int_equal(s_write_and_wake(f, "tasks", NULL), 0);
    assert_int_equal(s_calls, 0);
    assert_int_equal(s_count(f, PARK_CONSTRAINT), 1);
    /* Written, then rolled back: not written after all. */
    stm_error err = {0};
    s_ok(stm_store_exec(f->store, "BEGIN IMMEDIATE", &err), &err);
    stm_park_begin(f->park);
    op_value k = s_text("t2");
    stm_park_wrote(f->park, "tasks", &k);
    s_ok(stm_store_exec(f->store, "ROLLBACK", &err), &err);
    stm_park_rollback(f->park);
    assert_int_equal(s_write_and_wake(f, "tasks", NULL), 0);
    assert_int_equal(s_calls, 0);
    assert_int_equal(s_write_and_wake(f, "tasks", "t2"), 1);
    assert_int_equal(du_int(f->store, "SELECT count(*) FROM stemma_parked_wait"), 0);
}

/* What a retried operation writes wakes what waits for that, in the same call: a
 * chain (a row a foreign key wants, which another wants in turn) needs no second
 * batch. */
static void test_what_a_woken_operation_writes_wakes_more(void **state)
{
    fixture *f = *state;
    park_wake a = s_row("tasks", s_text("a")), b = s_row("tasks", s_text("b"));
    s_park_waiting(f, 1, &a, 1);
    s_park_waiting(f, 2, &b, 1);
    s_writes_seq = 1;
    s_writes_key = "b";
    assert_int_equal(s_write_and_wake(f, "tasks", "a"), 2);
    assert_int_equal(s_calls, 2);
    assert_int_equal(s_count(f, PARK_ANY), 0);
    s_writes_seq = 0;
}

/* Parked again, an operation waits for what it waits for now; parked for another
 * kind, or taken out by a retry of its kind, for nothing. */
static void test_parked_again_it_waits_for_what_it_waits_for_now(void **state)
{
    fixture *f = *state;
    park_wake a = s_row("tasks", s_text("a")), b = s_row("tasks", s_text("b"));
    s_park_waiting(f, 1, &a, 1);
    s_repark(f, 1, &b, 1, PARK_CONSTRAINT);
    assert_int_equal(s_write_and_wake(f, "tasks", "a"), 0);
    assert_int_equal(s_count(f, PARK_CONSTRAINT), 1);
    assert_int_equal(s_write_and_wake(f, "tasks", "b"), 1);
    s_park_waiting(f, 2, &a, 1);
    s_repark(f, 2, NULL, 0, PARK_SCHEMA);
    assert_int_equal(du_int(f->store, "SELECT count(*) FROM stemma_parked_wait"), 0);
    /* Parked for a constraint without saying what for: anything. */
    s_park(f, 3, "note", PARK_CONSTRAINT, "CHECK constraint failed: x");
    assert_int_equal(du_int(f->store, "SELECT count(*) FROM stemma_parked_wait WHERE wake = 0"), 1);
    s_park_waiting(f, 4, &a, 1);
    uint64_t replayed = 0;
    stm_error err = {0};
    f->repark_seq = 0;
    s_ok(stm_store_exec(f->store, "BEGIN IMMEDIATE", &err), &err);
    s_ok(stm_park_retry(f->park, PARK_CONSTRAINT, s_again, f, &replayed, &err), &err);
    s_ok(stm_store_exec(f->store, "COMMIT", &err), &err);
    assert_int_equal(replayed, 2);
    assert_int_equal(du_int(f->store, "SELECT count(*) FROM stemma_parked_wait"), 0);
    assert_int_equal(s_count(f, PARK_SCHEMA), 1);
}

/* Waking reads what waits for the rows written, not what is parked: with 20,000
 * operations waiting for other rows, a write none waits for costs a few of SQLite's
 * steps (counted, not timed), and retries nothing. The first write after the wakes
 * changed elsewhere (here, behind park's back) reads the rows' wakes once, into the
 * filter; the one measured is the next. */
static void test_a_wake_reads_only_what_waits_for_the_rows_written(void **state)
{
    fixture *f = *state;
    park_wake a = s_row("tasks", s_text("a"));
    s_park_waiting(f, 1, &a, 1); /* the kind is known to wait: rows are noted */
    sqlite3 *db = stm_store_db(f->store);
    assert_int_equal(sqlite3_exec(db,
                                  "WITH RECURSIVE n(i) AS (SELECT 2 UNION ALL SELECT i + 1 FROM n "
                                  "WHERE i < 20001) INSERT INTO stemma_parked (origin, seq, kind, "
                                  "reason) SELECT x'a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1"
                                  "a1a1a1a1a1a1a1a1a1a1', i, 'constraint', 'x' FROM n;"
                                  "INSERT INTO stemma_parked_wait (wake, origin, seq) SELECT "
                                  "abs(random() % 4611686018427387904) + 1, i.no, p.seq FROM "
                                  "stemma_parked AS p JOIN stemma_ids AS i ON i.id = p.origin "
                                  "WHERE p.seq > 1",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    assert_int_equal(s_write_and_wake(f, "tasks", "first"), 0);
    long steps = 0;
    sqlite3_progress_handler(db, 100, s_steps, &steps);
    assert_int_equal(s_write_and_wake(f, "tasks", "nobody"), 0);
    long woken = steps;
    steps = 0;
    assert_int_equal(
        sqlite3_exec(db, "SELECT count(*) FROM stemma_parked WHERE reason = 'y'", NULL, NULL, NULL),
        SQLITE_OK);
    long reading_all = steps;
    sqlite3_progress_handler(db, 0, NULL, NULL);
    assert_int_equal(s_calls, 0);
    assert_true(reading_all > 100);
    if (woken > 10)
        fail_msg("a write none waits for took %ld00 steps (reading all: %ld00): it read what "
                 "is parked",
                 woken, reading_all);
    assert_int_equal(s_count(f, PARK_CONSTRAINT), 20001);
}

/* s_park_waiting through park object p, in a transaction of its own (committed, or
 * rolled back when rollback). */
static void s_park_by(fixture *f, park_t *p, uint64_t seq, const char *key, bool rollback)
{
    op_t op = s_op(seq, "note");
    const op_t *ops[1] = {&op};
    /* A key of "*": any row of lists. */
    park_wake w = strcmp(key, "*") ? s_row("tasks", s_text(key)) : stm_park_wake_table("lists");
    stm_error err = {0};
    s_ok(stm_store_exec(f->store, "BEGIN IMMEDIATE", &err), &err);
    stm_park_begin(p);
    s_ok(stm_oplog_append(f->log, ops, 1, op.table, &err), &err);
    s_ok(stm_park_op_waiting(p, &op, "NOT NULL constraint failed: tasks.title", &w, 1, &err),
         &err);
    s_ok(stm_store_exec(f->store, rollback ? "ROLLBACK" : "COMMIT", &err), &err);
    if (rollback)
        stm_park_rollback(p);
}

/* The filter that spares a write its lookups never hides a row something waits for,
 * nor do the kinds of wakes known: what another park object (another program) parks
 * is seen at the next transaction, what this one parks at once, and a rolled-back
 * transaction's changes do not make it take what another parks since for what it
 * held. */
static void test_the_filter_never_hides_a_row_waited_for(void **state)
{
    fixture *f = *state;
    park_t *other = stm_park_new(f->store, f->log, NULL, NULL);
    s_park_by(f, f->park, 1, "a", false);
    assert_int_equal(s_write_and_wake(f, "tasks", "zzz"), 0); /* the filter is read */
    s_park_by(f, other, 2, "b", false);
    assert_int_equal(s_write_and_wake(f, "tasks", "b"), 1);
    assert_true(s_given_has(2));
    s_park_by(f, f->park, 3, "c", false);
    assert_int_equal(s_write_and_wake(f, "tasks", "c"), 1);
    assert_true(s_given_has(3));
    s_park_by(f, f->park, 4, "d", true);
    s_park_by(f, other, 5, "e", false);
    assert_int_equal(s_write_and_wake(f, "tasks", "e"), 1);
    assert_true(s_given_has(5));
    assert_int_equal(s_write_and_wake(f, "tasks", "a"), 1);
    assert_int_equal(s_count(f, PARK_ANY), 0);
    /* Nothing waits for a table: a write of lists notes nothing; until another parks
     * one that does. */
    assert_int_equal(s_write_and_wake(f, "lists", "l1"), 0);
    s_park_by(f, other, 6, "*", false);
    assert_int_equal(s_write_and_wake(f, "lists", "l1"), 1);
    assert_true(s_given_has(6));
    stm_park_destroy(&other);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_parked_operations_are_counted_by_kind_and_reason,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry_takes_them_out_and_parks_again_quietly, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_failed_retry_leaves_them_parked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replay_after_the_column_appears, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_kind_is_found_without_reading_the_others, setup,
                                        teardown),
        cmocka_unit_test(test_a_key_spelt_any_way_sqlite_takes_as_one_has_one_wake),
        cmocka_unit_test_setup_teardown(test_a_row_written_wakes_what_waits_for_it_and_nothing_else,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_what_a_woken_operation_writes_wakes_more, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_parked_again_it_waits_for_what_it_waits_for_now, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_wake_reads_only_what_waits_for_the_rows_written,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_the_filter_never_hides_a_row_waited_for, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
