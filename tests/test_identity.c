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
    "CREATE TABLE tags (name TEXT PRIMARY KEY COLLATE NOCASE, color TEXT);\n"
    /* A natural key and a unique value besides it. */
    "CREATE TABLE commands (id TEXT PRIMARY KEY, cmd TEXT UNIQUE, arg TEXT);\n"
    /* Natural keys the schema says are picked per device (lineage/directive.h). */
    "CREATE TABLE accounts ( -- stemma: keys per-device\n"
    "    email TEXT PRIMARY KEY COLLATE NOCASE, name TEXT);\n"
    "CREATE TABLE pairs (a TEXT, b INTEGER, note TEXT, /* stemma: keys per-device */\n"
    "    PRIMARY KEY (a, b)) WITHOUT ROWID;\n"
    /* A rowid alias the schema says names one row everywhere. */
    "CREATE TABLE counters (id INTEGER PRIMARY KEY, n INTEGER -- stemma: keys shared\n"
    ");\n";

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
    char *accounts = du_hash(db, "SELECT * FROM accounts ORDER BY email");
    char *pairs = du_hash(db, "SELECT * FROM pairs ORDER BY a, b");
    char *counters = du_hash(db, "SELECT * FROM counters ORDER BY id");
    stm_buf_printf(&b, "%s %s %s %s %s %s", rows, notes, tags, accounts, pairs, counters);
    free(rows);
    free(notes);
    free(tags);
    free(accounts);
    free(pairs);
    free(counters);
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
                            "CREATE TABLE accounts (email TEXT PRIMARY KEY, name TEXT);"
                            "CREATE TABLE pairs (a, b, note, PRIMARY KEY (a, b));"
                            "CREATE TABLE counters (id INTEGER PRIMARY KEY, n INTEGER);"
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

/* A natural key the schema declares per device: two accounts created apart under one
 * email (one key to NOCASE) are two rows, as with integer keys; the first created keeps
 * the key, and keeping the other needs a new key, which syncs. */
static void test_a_natural_key_declared_per_device_is_never_merged(void **state)
{
    fixture *f = *state;
    s_write(f, 0, "INSERT INTO accounts VALUES ('Ann@x.org', 'Ann A')");
    s_write(f, 1, "INSERT INTO accounts VALUES ('ann@x.org', 'Ann B')");
    s_write(f, 1, "UPDATE accounts SET name = 'Ann B2'");
    s_sync(f, 1, 2); /* replica 2 has B's first */
    s_sync_all(f);
    s_assert_converged(f);
    for (int i = 0; i < N; i++) {
        assert_int_equal(du_int(f->db[i], "SELECT count(*) FROM accounts WHERE email = "
                                          "'Ann@x.org' AND name = 'Ann A'"),
                         1);
        assert_int_equal(s_conflicts(f->db[i]), 1);
    }
    char *st = s_state(f->db[2]);
    assert_non_null(strstr(st, "name=Ann B2"));
    free(st);
    /* Kept under a new key on replica 2; every replica ends with both accounts. */
    opbatch_t *kept = stm_opbatch_new();
    stm_error err = {0};
    if (stm_conflicts_rows(f->db[2], kept, &err) != STM_OK)
        fail_msg("%s", err.msg);
    const op_t *c = stm_opbatch_at(kept, 0);
    identity_stamp inc = {c->born_hlc, c->born_origin};
    applier_t *a = stm_applier_new(f->db[2], NULL, NULL);
    int64_t rowid = 0;
    const char *none[] = {NULL};
    assert_int_equal(stm_applier_keep(a, "accounts", &c->pk, &inc, none, 0, &rowid, &err),
                     STM_EUSAGE);
    assert_non_null(strstr(err.msg, "the kept row needs a new key"));
    const char *key[] = {"ann.b@x.org"};
    if (stm_applier_keep(a, "accounts", &c->pk, &inc, key, 1, &rowid, &err) != STM_OK)
        fail_msg("%s", err.msg);
    stm_applier_destroy(&a);
    stm_opbatch_destroy(&kept);
    s_sync_all(f);
    s_assert_converged(f);
    for (int i = 0; i < N; i++) {
        assert_int_equal(du_int(f->db[i], "SELECT count(*) FROM accounts WHERE email = "
                                          "'ann.b@x.org' AND name = 'Ann B2'"),
                         1);
        assert_int_equal(s_conflicts(f->db[i]), 0);
    }
}

/* The same for a key of two columns in a WITHOUT ROWID table, with a delete: the row
 * kept aside takes the key when the first one goes. */
static void test_a_composite_key_declared_per_device(void **state)
{
    fixture *f = *state;
    s_write(f, 0, "INSERT INTO pairs VALUES ('p', 1, 'from a')");
    s_write(f, 1, "INSERT INTO pairs VALUES ('p', 1, 'from b')");
    s_write(f, 2, "INSERT INTO pairs VALUES ('p', 2, 'only c')");
    s_sync_all(f);
    s_assert_converged(f);
    for (int i = 0; i < N; i++) {
        assert_int_equal(du_int(f->db[i], "SELECT count(*) FROM pairs"), 2);
        assert_int_equal(du_int(f->db[i], "SELECT note = 'from a' FROM pairs WHERE a = 'p' AND "
                                          "b = 1"),
                         1);
        assert_int_equal(s_conflicts(f->db[i]), 1);
    }
    s_write(f, 2, "DELETE FROM pairs WHERE b = 1");
    s_sync_all(f);
    s_assert_converged(f);
    for (int i = 0; i < N; i++) {
        assert_int_equal(du_int(f->db[i], "SELECT note = 'from b' FROM pairs WHERE a = 'p' AND "
                                          "b = 1"),
                         1);
        assert_int_equal(s_conflicts(f->db[i]), 0);
    }
}

/* An integer key the schema declares shared names one row on every device: writes to
 * it merge, column by column, as a natural key's do. */
static void test_an_integer_key_declared_shared_merges(void **state)
{
    fixture *f = *state;
    s_write(f, 0, "INSERT INTO counters VALUES (1, 5)");
    s_write(f, 1, "INSERT INTO counters VALUES (1, 7)");
    s_sync_all(f);
    s_assert_converged(f);
    for (int i = 0; i < N; i++) {
        assert_int_equal(du_int(f->db[i], "SELECT count(*) FROM counters"), 1);
        assert_int_equal(du_int(f->db[i], "SELECT n FROM counters WHERE id = 1"), 7);
        assert_int_equal(s_conflicts(f->db[i]), 0);
    }
}

/* ---- edge cases found in review: each once left replicas different for good ---- */

/* Two rows claim one value of a UNIQUE index other than the key: the one that claimed
 * it first keeps it on every replica, the other is kept aside (apply_unique.c), here
 * while the same key's incarnations are being settled too. */
static void test_a_unique_value_goes_to_the_row_that_claimed_it_first(void **state)
{
    fixture *f = *state;
    s_write(f, 0, "INSERT INTO users (name) VALUES ('x')");        /* id 1, first */
    s_write(f, 1, "INSERT INTO users (name) VALUES ('y')");        /* id 1, later */
    s_write(f, 1, "INSERT INTO users (id, name) VALUES (2, 'x')"); /* 'x' again, later */
    s_sync_all(f);
    s_assert_converged(f);
    for (int i = 0; i < N; i++) {
        assert_int_equal(du_int(f->db[i], "SELECT count(*) FROM users"), 1);
        assert_int_equal(du_int(f->db[i], "SELECT name = 'x' FROM users WHERE id = 1"), 1);
        assert_int_equal(s_conflicts(f->db[i]), 2); /* y under 1, and the later x under 2 */
        assert_int_equal(du_int(f->db[i], "SELECT count(*) FROM stemma_parked"), 0);
    }
}

/* The same with natural keys, the later one arriving first on one replica: the first
 * claim wins everywhere, and discarding the other syncs. */
static void test_a_unique_value_with_natural_keys(void **state)
{
    fixture *f = *state;
    s_write(f, 0, "INSERT INTO commands VALUES ('a1', 'ls', 'first')");
    s_write(f, 1, "INSERT INTO commands VALUES ('b1', 'ls', 'second')");
    s_sync(f, 1, 2); /* replica 2 holds b1 before it hears of a1 */
    s_sync_all(f);
    s_assert_converged(f);
    for (int i = 0; i < N; i++) {
        assert_int_equal(du_int(f->db[i], "SELECT count(*) FROM commands WHERE id = 'a1'"), 1);
        assert_int_equal(du_int(f->db[i], "SELECT count(*) FROM commands"), 1);
        assert_int_equal(s_conflicts(f->db[i]), 1);
        assert_int_equal(du_int(f->db[i], "SELECT count(*) FROM stemma_parked"), 0);
    }
    op_value pk = {.type = VALUE_TEXT, .bytes = "b1", .len = 2};
    identity_stamp none = {0};
    applier_t *a = stm_applier_new(f->db[2], NULL, NULL);
    stm_error err = {0};
    if (stm_applier_discard(a, "commands", &pk, &none, &err) != STM_OK)
        fail_msg("%s", err.msg);
    stm_applier_destroy(&a);
    s_sync_all(f);
    s_assert_converged(f);
    assert_int_equal(s_conflicts(f->db[0]), 0);
}

/* The row that lost a unique value comes back on every replica once the value is
 * free; a conflict discarded goes everywhere. */
static void test_a_row_that_lost_a_unique_value_comes_back_when_it_is_free(void **state)
{
    fixture *f = *state;
    s_write(f, 0, "INSERT INTO users (id, name) VALUES (1, 'x')");
    s_write(f, 1, "INSERT INTO users (id, name, secret) VALUES (7, 'x', 'later')");
    s_sync_all(f);
    s_assert_converged(f);
    assert_int_equal(du_int(f->db[1], "SELECT count(*) FROM users WHERE id = 7"), 0);
    assert_int_equal(s_conflicts(f->db[1]), 1);
    /* The first one lets go of 'x' on replica 2: row 7 is back everywhere. */
    s_write(f, 2, "UPDATE users SET name = 'x2' WHERE id = 1");
    s_sync_all(f);
    s_assert_converged(f);
    for (int i = 0; i < N; i++) {
        assert_int_equal(du_int(f->db[i], "SELECT count(*) FROM users WHERE id = 7 AND "
                                          "name = 'x' AND secret = 'later'"),
                         1);
        assert_int_equal(s_conflicts(f->db[i]), 0);
    }
}

/* A row that lost a unique value to a row that itself leaves its key (an earlier-born
 * row of that key, aside until a value of its own was free, takes it back) comes back
 * in the same settling, whichever key is looked at first: row 1 lost 'b' to row 2's
 * later-born incarnation, which gives key 2 back to the earlier one once 'a', which row
 * 1 held, is free. */
static void test_a_chain_of_rows_aside_settles_whatever_the_key_order(void **state)
{
    fixture *f = *state;
    s_write(f, 1, "INSERT INTO users (id, name) VALUES (1, 'a')"); /* R claims 'a' */
    s_write(f, 0, "INSERT INTO users (id, name) VALUES (2, 'a')"); /* O: key 2's first */
    s_sync(f, 1, 2);
    s_write(f, 2, "INSERT INTO users (id, name) VALUES (2, 'b')"); /* L: key 2's second */
    s_write(f, 1, "UPDATE users SET name = 'b' WHERE id = 1");      /* R claims 'b', later */
    s_sync(f, 0, 2); /* O is older than L, but 'a' is R's: O waits aside */
    assert_int_equal(du_int(f->db[2], "SELECT count(*) FROM users WHERE id = 2 AND name = 'b'"),
                     1);
    /* R moves to 'b', loses it to L and leaves key 1, freeing 'a': O takes key 2, L
     * goes aside, and 'b' is free for R, all in the one batch. */
    s_sync(f, 1, 2);
    assert_int_equal(du_int(f->db[2], "SELECT count(*) FROM users WHERE id = 1 AND name = 'b'"),
                     1);
    assert_int_equal(du_int(f->db[2], "SELECT count(*) FROM users WHERE id = 2 AND name = 'a'"),
                     1);
    assert_int_equal(s_conflicts(f->db[2]), 1); /* L */
    s_sync_all(f);
    s_assert_converged(f);
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
        T(test_a_natural_key_declared_per_device_is_never_merged),
        T(test_a_composite_key_declared_per_device),
        T(test_an_integer_key_declared_shared_merges),
        T(test_a_unique_value_goes_to_the_row_that_claimed_it_first),
        T(test_a_row_that_lost_a_unique_value_comes_back_when_it_is_free),
        T(test_a_chain_of_rows_aside_settles_whatever_the_key_order),
        T(test_a_unique_value_with_natural_keys),
        T(test_a_key_made_anew_here_yields_to_an_older_row_aside),
        T(test_a_migration_settling_a_deleted_row_captures_nothing),
        T(test_a_nocase_key_comes_back_in_its_latest_spelling),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
