/* The convergence property across migrations run at random moments: replicas start at
 * version 1 of a history that renames a column and backfills (v2), rebuilds a table
 * with a computed NOT NULL column and renames another table (v3), and deletes rows and
 * inserts seed rows, one into a table older versions have (v4). They write, exchange what the others lack (operations of
 * other versions translated through the lenses, as a node does) and migrate one step
 * at a time with the real migrator (sync/migrate.h, whose steps send what they write:
 * sync/migrate_ops.h), all in a random order. Once every replica is at the head and
 * has exchanged with every other, they hold the same rows in every table, whatever
 * order and timing they migrated in (issue 12: "once two databases are at the same
 * version they are identical").
 *
 * Seeds: STEMMA_SEEDS=n runs seeds 1..n (default 3), STEMMA_STEPS the random steps per
 * seed (default 200). A failure names the seed. */
#include "dbutil.h"
#include "lineage/lens.h"
#include "lineage/lineage.h"
#include "sync/apply.h"
#include "sync/migrate.h"
#include "testutil.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

enum { NREPLICAS = 4, HEAD = 4, KEYS = 8 };

static const char *const s_set[] = {
    "001_items.sql",
    "CREATE TABLE items (id TEXT PRIMARY KEY, name TEXT NOT NULL, flag TEXT);\n"
    "CREATE TABLE notes (id TEXT PRIMARY KEY, body TEXT);\n",
    "002_rename_backfill.sql",
    "ALTER TABLE items RENAME COLUMN name TO title;\n"
    "UPDATE items SET flag = 'legacy' WHERE flag IS NULL;\n",
    "003_rebuild.sql",
    "CREATE TABLE items_new (id TEXT PRIMARY KEY, title TEXT NOT NULL, flag TEXT,\n"
    "                        label TEXT NOT NULL);\n"
    "INSERT INTO items_new SELECT id, title, flag, upper(title) FROM items;\n"
    "DROP TABLE items;\n"
    "ALTER TABLE items_new RENAME TO items;\n"
    "ALTER TABLE notes RENAME TO memos;\n",
    "004_purge_seed.sql",
    "DELETE FROM items WHERE flag = 'purge';\n"
    "CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);\n"
    "INSERT INTO settings VALUES ('theme', 'dark');\n"
    "INSERT INTO memos VALUES ('welcome', 'hello');\n",
    "002_rename_backfill.down.sql",
    "ALTER TABLE items RENAME COLUMN title TO name;\n",
    "003_rebuild.down.sql",
    "ALTER TABLE memos RENAME TO notes;\n"
    "ALTER TABLE items DROP COLUMN label;\n",
    "004_purge_seed.down.sql",
    "DROP TABLE settings;\n"
    "DELETE FROM memos WHERE id = 'welcome';\n",
    NULL,
};

typedef struct {
    char path[4200];
    int version;
    store_t *store;
    applier_t *applier;
} replica;

typedef struct {
    uint64_t state;
    char *dir, *set;
    lineage_t *lineage;
    lens_set_t *lenses;
    replica r[NREPLICAS];
    bool rollbacks;  /* replicas also roll back a step now and then */
} world;

static uint64_t s_rand(world *w)
{
    w->state ^= w->state >> 12;
    w->state ^= w->state << 25;
    w->state ^= w->state >> 27;
    return w->state * 2685821657736338717ull;
}

static int s_pick(world *w, int n)
{
    return (int)(s_rand(w) % (uint64_t)n);
}

static void s_quiet(void *ctx, const char *message)
{
    (void)ctx, (void)message;
}

static void s_open(world *w, replica *r)
{
    stm_error err = {0};
    if (stm_store_open(r->path, STORE_OPEN_EXISTING, &r->store, &err) != STM_OK)
        fail_msg("%s", err.msg);
    r->applier = stm_applier_new(r->store, s_quiet, NULL);
    stm_applier_set_lenses(r->applier, w->lenses, w->lineage);
}

static void s_close(replica *r)
{
    stm_applier_destroy(&r->applier);
    stm_store_destroy(&r->store);
}

/* One step up, with the real migrator (its own connection), which replays. */
static void s_migrate(world *w, replica *r)
{
    s_close(r);
    stm_error err = {0};
    migrate_t *m = NULL;
    if (stm_migrate_open(r->path, w->set, &m, &err) != STM_OK)
        fail_msg("%s", err.msg);
    migrate_options o = MIGRATE_OPTIONS_INIT;
    o.to = r->version + 1;
    o.backup = false;
    migrate_result res = {0};
    if (stm_migrate_run(m, &o, &res, &err) != STM_OK)
        fail_msg("migrating %s to %d: %s", r->path, o.to, err.msg);
    stm_migrate_result_free(&res);
    stm_migrate_destroy(&m);
    r->version++;
    s_open(w, r);
}

/* One step down, with the real rollback (its own connection). */
static void s_rollback(world *w, replica *r)
{
    s_close(r);
    stm_error err = {0};
    migrate_t *m = NULL;
    if (stm_migrate_open(r->path, w->set, &m, &err) != STM_OK)
        fail_msg("%s", err.msg);
    migrate_options o = MIGRATE_OPTIONS_INIT;
    o.to = r->version - 1;
    o.backup = false;
    migrate_result res = {0};
    if (stm_migrate_rollback(m, &o, &res, &err) != STM_OK)
        fail_msg("rolling %s back to %d: %s", r->path, o.to, err.msg);
    stm_migrate_result_free(&res);
    stm_migrate_destroy(&m);
    r->version--;
    s_open(w, r);
}

/* A random write of the application at r's version. */
static void s_write(world *w, replica *r, int n)
{
    int k = s_pick(w, KEYS), v = s_pick(w, 1000);
    const char *title = r->version >= 2 ? "title" : "name";
    const char *notes = r->version >= 3 ? "memos" : "notes";
    static const char *const flags[] = {"NULL", "'x'", "'purge'", "'y'"};
    buf_t sql = BUF_INIT;
    switch (s_pick(w, 6)) {
    case 0:
        if (r->version >= 3)
            stm_buf_printf(&sql, "INSERT OR REPLACE INTO items (id, title, flag, label) VALUES "
                                 "('i%d', 'w%d-%d', %s, 'L%d')",
                           k, n, v, flags[v % 4], v);
        else
            stm_buf_printf(&sql, "INSERT OR REPLACE INTO items (id, %s, flag) VALUES "
                                 "('i%d', 'w%d-%d', %s)",
                           title, k, n, v, flags[v % 4]);
        break;
    case 1:
        stm_buf_printf(&sql, "UPDATE items SET flag = %s WHERE id = 'i%d'", flags[v % 4], k);
        break;
    case 2:
        stm_buf_printf(&sql, "UPDATE items SET %s = 'u%d-%d' WHERE id = 'i%d'", title, n, v, k);
        break;
    case 3:
        stm_buf_printf(&sql, "DELETE FROM items WHERE id = 'i%d'", k);
        break;
    case 4:
        stm_buf_printf(&sql, "INSERT OR REPLACE INTO %s (id, body) VALUES ('n%d', 'b%d-%d')",
                       notes, k, n, v);
        break;
    default:
        stm_buf_printf(&sql, "DELETE FROM %s WHERE id = 'n%d'", notes, k);
        break;
    }
    du_exec(r->path, stm_buf_str(&sql));
    stm_buf_free(&sql);
}

static void s_exchange(replica *src, replica *dst)
{
    opbatch_t *batch = du_lacking(src->store, dst->store);
    apply_stats st = {0};
    stm_error err = {0};
    if (stm_applier_apply(dst->applier, batch, &st, &err) != STM_OK)
        fail_msg("applying to %s: %s", dst->path, err.msg);
    stm_opbatch_destroy(&batch);
}

static void s_assert_same(world *w, uint64_t seed, const char *query)
{
    char *first = du_hash(w->r[0].store, query);
    for (int i = 1; i < NREPLICAS; i++) {
        char *other = du_hash(w->r[i].store, query);
        if (strcmp(first, other) != 0)
            fail_msg("seed %llu: replicas 0 and %d differ on: %s", (unsigned long long)seed, i,
                     query);
        free(other);
    }
    free(first);
}

static void s_run_seed(uint64_t seed, int steps, bool rollbacks)
{
    world w;
    memset(&w, 0, sizeof w);
    w.rollbacks = rollbacks;
    w.state = seed * 0x9E3779B97F4A7C15ull + 7;
    w.dir = tu_tmpdir();
    w.set = tu_path(w.dir, "set");
    assert_int_equal(mkdir(w.set, 0755), 0);
    for (size_t i = 0; s_set[i]; i += 2)
        tu_write(w.set, s_set[i], s_set[i + 1]);
    w.lineage = tu_lineage_dir(w.set);
    schemaset_t *set = NULL;
    stm_error err = {0};
    if (stm_schemaset_load(w.set, &set, &err) != STM_OK ||
        stm_lens_derive(set, &w.lenses, &err) != STM_OK)
        fail_msg("%s", err.msg);
    stm_schemaset_destroy(&set);
    for (int i = 0; i < NREPLICAS; i++) {
        replica *r = &w.r[i];
        snprintf(r->path, sizeof r->path, "%s/r%d.db", w.dir, i);
        migrate_t *m = NULL;
        if (stm_migrate_open(r->path, w.set, &m, &err) != STM_OK)
            fail_msg("%s", err.msg);
        migrate_options o = MIGRATE_OPTIONS_INIT;
        o.to = 1;
        o.backup = false;
        migrate_result res = {0};
        if (stm_migrate_run(m, &o, &res, &err) != STM_OK)
            fail_msg("%s", err.msg);
        stm_migrate_result_free(&res);
        stm_migrate_destroy(&m);
        r->version = 1;
        s_open(&w, r);
    }
    for (int step = 0; step < steps; step++) {
        replica *r = &w.r[s_pick(&w, NREPLICAS)];
        int roll = s_pick(&w, 20);
        if (roll < 11) {
            s_write(&w, r, step);
        } else if (roll < 19) {
            replica *other = &w.r[(r - w.r + 1 + s_pick(&w, NREPLICAS - 1)) % NREPLICAS];
            s_exchange(r, other);
        } else if (r->version < HEAD && (r->version == 1 || !w.rollbacks || s_pick(&w, 2))) {
            s_migrate(&w, r);
        } else if (r->version > 1 && w.rollbacks) {
            s_rollback(&w, r);
        }
    }
    /* Everyone to the head, in a random order, then everyone hears from everyone. */
    for (int left = 1; left;) {
        left = 0;
        for (int i = 0; i < NREPLICAS; i++)
            left |= w.r[i].version < HEAD;
        if (left) {
            replica *r = &w.r[s_pick(&w, NREPLICAS)];
            if (r->version < HEAD)
                s_migrate(&w, r);
        }
    }
    for (int round = 0; round < 2; round++)
        for (int a = 0; a < NREPLICAS; a++)
            for (int b = 0; b < NREPLICAS; b++)
                if (a != b)
                    s_exchange(&w.r[a], &w.r[b]);
    s_assert_same(&w, seed, "SELECT id, title, flag, label FROM items ORDER BY id");
    s_assert_same(&w, seed, "SELECT id, body FROM memos ORDER BY id");
    s_assert_same(&w, seed, "SELECT key, value FROM settings ORDER BY key");
    for (int i = 0; i < NREPLICAS; i++)
        s_close(&w.r[i]);
    stm_lens_destroy(&w.lenses);
    stm_lineage_destroy(&w.lineage);
    tu_remove_tree(w.dir);
    free(w.set);
    free(w.dir);
}

static int s_env(const char *name, int fallback)
{
    const char *v = getenv(name);
    return v && atoi(v) > 0 ? atoi(v) : fallback;
}

static void test_replicas_migrating_at_random_moments_converge(void **state)
{
    (void)state;
    int seeds = s_env("STEMMA_SEEDS", 3), steps = s_env("STEMMA_STEPS", 200);
    for (int seed = 1; seed <= seeds; seed++)
        s_run_seed((uint64_t)seed, steps, false);
}

/* The same with rollbacks at random moments too: as often as migrations, once a replica
 * is past version 1 (what a rollback drops and the next migrate brings back is
 * sync/dropped.h's, checked on its own in test_rollback). */
static void test_and_rolling_back_at_random_moments(void **state)
{
    (void)state;
    int seeds = s_env("STEMMA_SEEDS", 3), steps = s_env("STEMMA_STEPS", 200);
    for (int seed = 1; seed <= seeds; seed++)
        s_run_seed((uint64_t)seed + 1000, steps, true);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_replicas_migrating_at_random_moments_converge),
        cmocka_unit_test(test_and_rolling_back_at_random_moments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
