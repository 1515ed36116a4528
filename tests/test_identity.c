/* Tests of identity (sync/identity.h): in a table whose keys are chosen per device
 * (INTEGER PRIMARY KEY), two rows created apart under one key are never merged. The
 * earlier-born keeps the key on every replica, the other is kept whole aside, and the
 * outcome does not depend on the order operations arrive in. Real databases, the
 * real capture triggers, operations carried through the codec. */
#include "dbutil.h"
#include "base/buf.h"
#include "base/clock.h"
#include "sync/apply.h"
#include "sync/identity.h"
#include "testutil.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const SCHEMA =
    "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT UNIQUE, secret TEXT);\n"
    "CREATE TABLE notes (id INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT);\n"
    /* A natural key: writes to one key are writes to one row. */
    "CREATE TABLE tags (name TEXT PRIMARY KEY COLLATE NOCASE, color TEXT);\n";

enum { N = 3 };

typedef struct {
    char *dir;
    char path[N][4200];
    store_t *db[N];
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    f->dir = tu_tmpdir();
    for (int i = 0; i < N; i++) {
        snprintf(f->path[i], sizeof f->path[i], "%s/r%d.db", f->dir, i);
        f->db[i] = du_setup(f->path[i], SCHEMA, NULL);
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    for (int i = 0; i < N; i++)
        stm_store_destroy(&f->db[i]);
    tu_remove_tree(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

static void s_sync(fixture *f, int from, int to)
{
    opbatch_t *b = du_lacking(f->db[from], f->db[to]);
    du_apply(f->db[to], b);
    stm_opbatch_destroy(&b);
}

static void s_sync_all(fixture *f)
{
    for (int round = 0; round < 2; round++)
        for (int a = 0; a < N; a++)
            for (int b = 0; b < N; b++)
                if (a != b)
                    s_sync(f, a, b);
}

/* A write by replica i's application, collected now (a node would on its next look);
 * the next write is in a later millisecond, so which row was made first is known, not
 * left to a tie between origins. */
static void s_write(fixture *f, int i, const char *sql)
{
    du_exec(f->path[i], sql);
    du_ops(f->db[i]);
    int64_t ms = stm_wall_ms();
    while (stm_wall_ms() == ms)
        ;
}

/* What every replica must agree on: the rows, and the conflicts kept aside with the
 * values of their rows (stm_conflicts_rows), whose clocks are the same everywhere. */
static char *s_state(store_t *db)
{
    buf_t b = BUF_INIT;
    char *rows = du_hash(db, "SELECT * FROM users ORDER BY id");
    char *notes = du_hash(db, "SELECT * FROM notes ORDER BY id");
    char *tags = du_hash(db, "SELECT * FROM tags ORDER BY name");
    stm_buf_printf(&b, "%s %s %s", rows, notes, tags);
    free(rows);
    free(notes);
    free(tags);
    char *kept = du_conflicts(db);
    stm_buf_printf(&b, "\n%s", kept);
    free(kept);
    return stm_buf_detach(&b);
}

static void s_assert_converged(fixture *f)
{
    char *first = s_state(f->db[0]);
    for (int i = 1; i < N; i++) {
        char *other = s_state(f->db[i]);
        if (strcmp(first, other) != 0)
            fail_msg("replicas 0 and %d differ:\n%s\n---\n%s", i, first, other);
        free(other);
    }
    free(first);
}

static long long s_conflicts(store_t *db)
{
    uint64_t n = 0;
    stm_error err = {0};
    if (stm_conflicts_count(db, &n, &err) != STM_OK)
        fail_msg("%s", err.msg);
    return (long long)n;
}

static void test_two_rows_under_one_key_are_never_merged(void **state)
{
    fixture *f = *state;
    s_write(f, 0, "INSERT INTO users (name, secret) VALUES ('alice', 'a-secret')");
    s_write(f, 1, "INSERT INTO users (name, secret) VALUES ('bob', 'b-secret')");
    /* Both got id 1. */
    assert_int_equal(du_int(f->db[1], "SELECT id FROM users WHERE name = 'bob'"), 1);
    s_sync_all(f);
    s_assert_converged(f);
    /* alice was born first: she keeps id 1 everywhere; bob is kept whole, aside. */
    for (int i = 0; i < N; i++) {
        assert_int_equal(du_int(f->db[i], "SELECT count(*) FROM users WHERE id = 1 AND "
                                          "name = 'alice' AND secret = 'a-secret'"),
                         1);
        assert_int_equal(s_conflicts(f->db[i]), 1);
    }
    char *state0 = s_state(f->db[0]);
    assert_non_null(strstr(state0, "name=bob"));
    assert_non_null(strstr(state0, "secret=b-secret"));
    free(state0);
}

static void test_the_outcome_does_not_depend_on_arrival_order(void **state)
{
    fixture *f = *state;
    /* Three rows under id 1, then each origin edits its own; C learns them in the
     * order B, A, and B in the order C, A. */
    s_write(f, 0, "INSERT INTO users (name) VALUES ('alice')");
    s_write(f, 1, "INSERT INTO users (name) VALUES ('bob')");
    s_write(f, 2, "INSERT INTO users (name) VALUES ('carol')");
    s_write(f, 1, "UPDATE users SET secret = 'b2' WHERE id = 1");
    s_write(f, 2, "UPDATE users SET secret = 'c2' WHERE id = 1");
    s_sync(f, 1, 2);
    s_sync(f, 0, 2);
    s_sync(f, 2, 1);
    s_sync(f, 0, 1);
    s_sync_all(f);
    s_assert_converged(f);
    assert_int_equal(du_int(f->db[2], "SELECT count(*) FROM users WHERE name = 'alice'"), 1);
    assert_int_equal(s_conflicts(f->db[2]), 2);
}

static void test_an_edit_of_a_row_kept_aside_goes_to_that_row(void **state)
{
    fixture *f = *state;
    s_write(f, 0, "INSERT INTO users (name, secret) VALUES ('alice', 'a')");
    s_write(f, 1, "INSERT INTO users (name, secret) VALUES ('bob', 'b')");
    s_sync(f, 0, 1); /* B now shows alice; its bob is aside */
    assert_int_equal(du_int(f->db[1], "SELECT count(*) FROM users WHERE name = 'alice'"), 1);
    /* A, not having heard of bob yet, edits row 1: alice's. C hears of bob first. */
    s_write(f, 0, "UPDATE users SET secret = 'a2' WHERE id = 1");
    s_sync(f, 1, 2);
    s_sync_all(f);
    s_assert_converged(f);
    assert_int_equal(du_int(f->db[2], "SELECT count(*) FROM users WHERE secret = 'a2'"), 1);
    char *st = s_state(f->db[2]);
    assert_non_null(strstr(st, "secret=b"));
    free(st);
}

static void test_when_the_row_is_deleted_the_row_kept_aside_takes_the_key(void **state)
{
    fixture *f = *state;
    s_write(f, 0, "INSERT INTO users (name) VALUES ('alice')");
    s_write(f, 1, "INSERT INTO users (name) VALUES ('bob')");
    s_sync_all(f);
    assert_int_equal(s_conflicts(f->db[2]), 1);
    /* alice's row is deleted on C: bob's takes id 1 everywhere. */
    s_write(f, 2, "DELETE FROM users WHERE id = 1");
    s_sync_all(f);
    s_assert_converged(f);
    for (int i = 0; i < N; i++) {
        assert_int_equal(du_int(f->db[i], "SELECT count(*) FROM users WHERE id = 1 AND "
                                          "name = 'bob'"),
                         1);
        assert_int_equal(s_conflicts(f->db[i]), 0);
    }
}

static void test_a_delete_that_arrives_before_its_row_keeps_it_deleted(void **state)
{
    fixture *f = *state;
    s_write(f, 0, "INSERT INTO users (name) VALUES ('alice')");
    opbatch_t *insert = du_lacking(f->db[0], f->db[2]);
    s_write(f, 0, "DELETE FROM users WHERE id = 1");
    opbatch_t *both = du_lacking(f->db[0], f->db[2]);
    /* C gets the delete alone first (the last operation), then everything. */
    opbatch_t *del = stm_opbatch_new();
    stm_opbatch_add(del, stm_opbatch_at(both, stm_opbatch_count(both) - 1));
    du_apply(f->db[2], del);
    du_apply(f->db[2], insert);
    assert_int_equal(du_int(f->db[2], "SELECT count(*) FROM users"), 0);
    du_apply(f->db[2], both);
    assert_int_equal(du_int(f->db[2], "SELECT count(*) FROM users"), 0);
    stm_opbatch_destroy(&insert);
    stm_opbatch_destroy(&both);
    stm_opbatch_destroy(&del);
}

static void test_rows_from_before_stemma_merge_by_key(void **state)
{
    fixture *f = *state;
    /* A seed row every device has, from the migration that made the table (before
     * capture): the genesis incarnation. */
    for (int i = 0; i < N; i++) {
        stm_store_destroy(&f->db[i]);
        snprintf(f->path[i], sizeof f->path[i], "%s/seeded%d.db", f->dir, i);
        f->db[i] = du_setup(f->path[i],
                            "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, secret TEXT);"
                            "CREATE TABLE notes (id INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT);"
                            "CREATE TABLE tags (name TEXT PRIMARY KEY, color TEXT);"
                            "INSERT INTO users VALUES (7, 'admin', 'x');",
                            NULL);
    }
    s_write(f, 0, "UPDATE users SET secret = 'from a' WHERE id = 7");
    s_write(f, 1, "UPDATE users SET name = 'root' WHERE id = 7");
    /* A new row on C under that key cannot be: 7 is taken there. Another device's new
     * row 8 is a plain insert. */
    s_write(f, 2, "INSERT INTO users VALUES (8, 'eve', NULL)");
    s_sync_all(f);
    s_assert_converged(f);
    assert_int_equal(du_int(f->db[1], "SELECT count(*) FROM users WHERE id = 7 AND name = 'root' "
                                      "AND secret = 'from a'"),
                     1);
    assert_int_equal(s_conflicts(f->db[1]), 0);
}

static void test_natural_keys_merge(void **state)
{
    fixture *f = *state;
    s_write(f, 0, "INSERT INTO tags VALUES ('home', 'red')");
    s_write(f, 1, "INSERT INTO tags VALUES ('home', 'blue')");
    s_sync_all(f);
    s_assert_converged(f);
    assert_int_equal(du_int(f->db[0], "SELECT count(*) FROM tags"), 1);
    assert_int_equal(s_conflicts(f->db[0]), 0);
}

static void test_autoincrement_keys_are_identities_too(void **state)
{
    fixture *f = *state;
    s_write(f, 0, "INSERT INTO notes (body) VALUES ('from a'), ('a again')");
    s_write(f, 1, "INSERT INTO notes (body) VALUES ('from b')");
    s_sync_all(f);
    s_assert_converged(f);
    assert_int_equal(du_int(f->db[1], "SELECT count(*) FROM notes"), 2);
    assert_int_equal(s_conflicts(f->db[1]), 1);
}

/* ---- edge cases found in review: each once left replicas different for good ---- */

/* 1. s_take_over refused by a constraint leaves the row's own incarnation listed aside. */
static void test_a_take_over_a_unique_index_refuses_leaves_the_row_as_it_is(void **state)
{
    fixture *f = *state;
    s_write(f, 0, "INSERT INTO users (name) VALUES ('x')");        /* id 1, born first */
    s_write(f, 1, "INSERT INTO users (name) VALUES ('y')");        /* id 1, born later */
    s_write(f, 1, "INSERT INTO users (id, name) VALUES (2, 'x')"); /* holds 'x' */
    s_sync(f, 0, 1); /* 0's row 1 (earlier) should take the key on 1: UNIQUE refuses */
    /* Only x (born first) is aside; y is the row. */
    assert_int_equal(s_conflicts(f->db[1]), 1);
}

/* 1b. ...and then a local delete of the row brings back a stale copy. */
static void test_after_a_refused_take_over_a_deleted_row_stays_deleted(void **state)
{
    fixture *f = *state;
    s_write(f, 0, "INSERT INTO users (name) VALUES ('x')");
    s_write(f, 1, "INSERT INTO users (name) VALUES ('y')");
    s_write(f, 1, "INSERT INTO users (id, name) VALUES (2, 'x')");
    s_sync(f, 0, 1);
    /* Discard the true conflict (born on 0). */
    opbatch_t *kept = stm_opbatch_new();
    stm_error err = {0};
    assert_int_equal(stm_conflicts_rows(f->db[1], kept, &err), STM_OK);
    identity_stamp inc = {0};
    for (size_t i = 0; i < stm_opbatch_count(kept); i++) {
        const op_t *c = stm_opbatch_at(kept, i);
        if (c->column && strcmp(c->column, "name") == 0 && c->value.len == 1 &&
            memcmp(c->value.bytes, "x", 1) == 0) {
            inc.hlc = c->born_hlc;
            inc.origin = c->born_origin;
        }
    }
    assert_true(inc.hlc != 0);
    op_value pk = {.type = VALUE_INTEGER, .i = 1};
    applier_t *a = stm_applier_new(f->db[1], NULL, NULL);
    assert_int_equal(stm_applier_discard(a, "users", &pk, &inc, &err), STM_OK);
    stm_applier_destroy(&a);
    stm_opbatch_destroy(&kept);
    /* The application deletes row 1 (y). */
    s_write(f, 1, "DELETE FROM users WHERE id = 1");
    long long n = du_int(f->db[1], "SELECT count(*) FROM users WHERE id = 1");
    assert_int_equal(n, 0);
}

/* 2. Local delete + re-insert under the same key in one collect window while a
 * conflict is aside. */
static void test_a_key_made_anew_here_yields_to_an_older_row_aside(void **state)
{
    fixture *f = *state;
    s_write(f, 0, "INSERT INTO users (name) VALUES ('alice')");
    s_write(f, 1, "INSERT INTO users (name) VALUES ('bob')");
    s_sync_all(f);
    assert_int_equal(s_conflicts(f->db[0]), 1);
    s_write(f, 0, "DELETE FROM users WHERE id = 1; INSERT INTO users (name) VALUES ('carol')");
    s_sync_all(f);
    char *a = s_state(f->db[0]), *b = s_state(f->db[1]);
    assert_string_equal(a, b);
    free(a);
    free(b);
}

/* 3. A migration's collect promotes with capture on. */
static void test_a_migration_settling_a_deleted_row_captures_nothing(void **state)
{
    fixture *f = *state;
    s_write(f, 0, "INSERT INTO users (name) VALUES ('alice')");
    s_write(f, 1, "INSERT INTO users (name) VALUES ('bob')");
    s_sync_all(f);
    du_exec(f->path[0], "DELETE FROM users WHERE id = 1");
    du_migrate(f->db[0], "CREATE TABLE extra (x INTEGER PRIMARY KEY);");
    du_ops(f->db[0]);
    long long pending_local =
        du_int(f->db[0], "SELECT count(*) FROM temp.ops WHERE tbl = 'users' AND col IS NOT NULL "
                         "AND val = 'bob' AND origin = (SELECT node_id FROM stemma_local)");
    s_sync_all(f);
    assert_int_equal(pending_local, 0);
    assert_int_equal(s_conflicts(f->db[0]), 0);
}

/* 4. NOCASE key respelt, deleted and written concurrently. */
static void test_a_nocase_key_comes_back_in_its_latest_spelling(void **state)
{
    fixture *f = *state;
    s_write(f, 0, "INSERT INTO tags VALUES ('Ann', 'red')");
    s_sync_all(f);
    s_write(f, 1, "UPDATE tags SET name = 'ann' WHERE name = 'Ann'");   /* R */
    s_write(f, 2, "DELETE FROM tags WHERE name = 'Ann'");               /* D, later */
    s_write(f, 0, "UPDATE tags SET color = 'blue' WHERE name = 'Ann'"); /* W, later still */
    /* replica 1: R, D, W.  replica 0: W, R, D. */
    s_sync(f, 2, 1);
    s_sync(f, 0, 1);
    s_sync(f, 1, 0);
    s_sync(f, 2, 0);
    s_sync_all(f);
    char *n0 = du_hash(f->db[0], "SELECT * FROM tags"),
         *n1 = du_hash(f->db[1], "SELECT * FROM tags");
    assert_string_equal(n0, n1);
    free(n0);
    free(n1);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_two_rows_under_one_key_are_never_merged),
        T(test_the_outcome_does_not_depend_on_arrival_order),
        T(test_an_edit_of_a_row_kept_aside_goes_to_that_row),
        T(test_when_the_row_is_deleted_the_row_kept_aside_takes_the_key),
        T(test_a_delete_that_arrives_before_its_row_keeps_it_deleted),
        T(test_rows_from_before_stemma_merge_by_key),
        T(test_natural_keys_merge),
        T(test_autoincrement_keys_are_identities_too),
        T(test_a_take_over_a_unique_index_refuses_leaves_the_row_as_it_is),
        T(test_after_a_refused_take_over_a_deleted_row_stays_deleted),
        T(test_a_key_made_anew_here_yields_to_an_older_row_aside),
        T(test_a_migration_settling_a_deleted_row_captures_nothing),
        T(test_a_nocase_key_comes_back_in_its_latest_spelling),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
