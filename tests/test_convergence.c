/* The convergence property: replicas at mixed schema versions (same, older, newer,
 * divergent) take random inserts, updates and deletes through their own connections,
 * exchange bundles in random order, with duplicates and stale bundles, and end up
 * holding the same data on the columns they share. After the older replicas migrate
 * and replay what they parked, they hold the same data on every column. Every replica
 * also has a table keyed by two columns (WITHOUT ROWID, key order not declaration
 * order) whose rows are inserted, updated, deleted and given new keys, and one whose
 * integer keys each replica picks itself (INTEGER PRIMARY KEY), so rows made apart
 * collide on their keys and on a UNIQUE name: replicas must also agree on the conflicts
 * they keep aside; and
 * one whose key ignores case, written and respelt in random case.
 *
 * The same runs again with compaction (sync/compact.h): replicas prune at random
 * moments, as if no peer were known (so as much as can go goes), and still converge;
 * and a replica made at the end, which never met anyone, takes the current cells from
 * a compacted one and holds what the others hold.
 *
 * Seeds: STEMMA_SEEDS=n runs seeds 1..n (default 3), STEMMA_SEED=n seed n alone,
 * STEMMA_STEPS the random steps per seed (default 300). A failure names the seed;
 * STEMMA_TRACE=1 prints each step, write to handles and bundle to stderr. */
#include "dbutil.h"
#include "lineage/lineage.h"
#include "sync/apply.h"
#include "sync/bundle.h"
#include "sync/compact.h"
#include "testutil.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { NREPLICAS = 5 };

typedef struct {
    const char *set; /* schema directory */
    int version;     /* migrated to */
    char path[4200]; /* database */
    store_t *store;
    applier_t *applier;
} replica;

typedef struct {
    uint64_t state;
    char *dir;
    replica r[NREPLICAS];
    char stale[4][4300]; /* bundles kept to be applied again later */
    int nstale;
    int bundles;
    bool compact; /* replicas compact at random moments */
} world;

static uint64_t s_rand(world *w)
{
    /* xorshift64*: reproducible from the seed */
    w->state ^= w->state >> 12;
    w->state ^= w->state << 25;
    w->state ^= w->state >> 27;
    return w->state * 2685821657736338717ull;
}

static int s_pick(world *w, int n)
{
    return (int)(s_rand(w) % (uint64_t)n);
}

/* The SQL of migrations from+1 .. to of a schema set, and the id of version `to`. */
static char *s_migrations(const char *set, int from, int to, stm_id *id)
{
    schemaset_t *s = NULL;
    lineage_t *l = NULL;
    stm_error err = {0};
    if (stm_schemaset_load(set, &s, &err) != STM_OK || stm_lineage_build(s, &l, &err) != STM_OK)
        fail_msg("%s", err.msg);
    buf_t sql = BUF_INIT;
    for (int v = from + 1; v <= to; v++)
        stm_buf_puts(&sql, stm_schemaset_at(s, (size_t)v - 1)->text);
    *id = stm_lineage_version_at(l, (size_t)to - 1)->id;
    stm_lineage_destroy(&l);
    stm_schemaset_destroy(&s);
    return stm_buf_detach(&sql);
}

static bool s_has_column(replica *r, const char *table, const char *column)
{
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM pragma_table_info('%s') WHERE name = '%s'",
             table, column);
    return du_int(r->store, sql) > 0;
}

static bool s_row_exists(replica *r, const char *table, const char *id)
{
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM %s WHERE id = '%s'", table, id);
    return du_int(r->store, sql) > 0;
}

/* Every replica's table keyed by two columns, outside the schema history. */
static const char *const LINKS =
    "CREATE TABLE links (a TEXT NOT NULL, b INTEGER NOT NULL, note TEXT, PRIMARY KEY (b, a))"
    " WITHOUT ROWID;\n"
    "CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT UNIQUE, n INTEGER);\n"
    "CREATE TABLE mails (email TEXT COLLATE NOCASE PRIMARY KEY, n INTEGER);\n"
    /* A natural key the schema declares per device, of two columns, one NOCASE, and a
     * unique value besides. */
    "CREATE TABLE handles ( -- stemma: keys per-device\n"
    "  site TEXT NOT NULL, handle TEXT NOT NULL COLLATE NOCASE, tag TEXT UNIQUE, n INTEGER,\n"
    "  PRIMARY KEY (site, handle)) WITHOUT ROWID;\n";

/* One random write to handles: a new row (rows made apart under one key are two),
 * a new value or tag, a respelt key, or a delete. */
static void s_random_handle_write(world *w, replica *r)
{
    char site[4], handle[8];
    snprintf(site, sizeof site, "s%d", s_pick(w, 2));
    snprintf(handle, sizeof handle, "%c", s_pick(w, 2) ? 'h' : 'H');
    snprintf(handle + 1, sizeof handle - 1, "%d", s_pick(w, 2));
    int v = s_pick(w, 1000);
    char sql[256];
    switch (s_pick(w, 5)) {
    case 0:
    case 1:
        snprintf(sql, sizeof sql,
                 "INSERT OR IGNORE INTO handles VALUES ('%s', '%s', 't%d', %d)", site, handle,
                 v % 6, v);
        break;
    case 2:
        snprintf(sql, sizeof sql,
                 "UPDATE OR IGNORE handles SET n = %d, tag = 't%d' WHERE site = '%s' AND "
                 "handle = '%s'",
                 v, v % 6, site, handle);
        break;
    case 3:
        snprintf(sql, sizeof sql,
                 "UPDATE handles SET handle = '%s' WHERE site = '%s' AND handle = '%s'", handle,
                 site, handle);
        break;
    default:
        snprintf(sql, sizeof sql, "DELETE FROM handles WHERE site = '%s' AND handle = '%s'", site,
                 handle);
    }
    if (getenv("STEMMA_TRACE"))
        fprintf(stderr, "  %s: %s\n", strrchr(r->path, '/') + 1, sql);
    du_exec(r->path, sql);
}

/* One random write to mails, whose key ignores case: a new row, a new value, a new
 * spelling of the key, or a delete, each spelling the key in a random case. */
static void s_random_mail_write(world *w, replica *r)
{
    char email[16];
    int who = s_pick(w, 3), v = s_pick(w, 1000);
    snprintf(email, sizeof email, "%c%c@x", s_pick(w, 2) ? 'a' + who : 'A' + who,
             s_pick(w, 2) ? 'm' : 'M');
    char sql[200];
    switch (s_pick(w, 4)) {
    case 0:
        snprintf(sql, sizeof sql, "INSERT OR IGNORE INTO mails VALUES ('%s', %d)", email, v);
        break;
    case 1:
        snprintf(sql, sizeof sql, "UPDATE mails SET n = %d WHERE email = '%s'", v, email);
        break;
    case 2:
        snprintf(sql, sizeof sql, "UPDATE mails SET email = '%s' WHERE email = '%s'", email, email);
        break;
    default:
        snprintf(sql, sizeof sql, "DELETE FROM mails WHERE email = '%s'", email);
    }
    du_exec(r->path, sql);
}

/* One random write to people: a new row (its key the replica's own pick), or an edit
 * or a delete of a row it has. */
static void s_random_person_write(world *w, replica *r)
{
    int id = 1 + s_pick(w, 6), v = s_pick(w, 1000);
    char sql[200], exists[100];
    snprintf(exists, sizeof exists, "SELECT count(*) FROM people WHERE id = %d", id);
    bool there = du_int(r->store, exists) > 0;
    int action = s_pick(w, 4);
    if (action == 0 || !there)
        /* Names from a small set: rows made apart claim one name often. */
        snprintf(sql, sizeof sql, "INSERT OR IGNORE INTO people (name, n) VALUES ('p%d', %d)",
                 v % 40, v);
    else if (action == 1)
        snprintf(sql, sizeof sql, "DELETE FROM people WHERE id = %d", id);
    else
        snprintf(sql, sizeof sql, "UPDATE people SET n = %d WHERE id = %d", v, id);
    du_exec(r->path, sql);
}

/* One random write to links: insert, delete, a new note, or a new key (the old key
 * deleted, the new inserted, as SQLite's UPDATE of a key column is captured). */
static void s_random_link_write(world *w, replica *r)
{
    char a[8];
    snprintf(a, sizeof a, "x%d", s_pick(w, 3));
    int b = s_pick(w, 3), v = s_pick(w, 1000);
    char sql[256], exists[160];
    snprintf(exists, sizeof exists, "SELECT count(*) FROM links WHERE a = '%s' AND b = %d", a, b);
    if (!du_int(r->store, exists)) {
        snprintf(sql, sizeof sql, "INSERT INTO links VALUES ('%s', %d, 'n%d')", a, b, v);
    } else {
        switch (s_pick(w, 4)) {
        case 0:
            snprintf(sql, sizeof sql, "DELETE FROM links WHERE a = '%s' AND b = %d", a, b);
            break;
        case 1:
            /* A key taken already makes SQLite refuse: OR IGNORE, as an application
             * would check first. */
            snprintf(sql, sizeof sql, "UPDATE OR IGNORE links SET b = %d WHERE a = '%s' AND b = %d",
                     (b + 1) % 3, a, b);
            break;
        default:
            snprintf(sql, sizeof sql, "UPDATE links SET note = 'n%d' WHERE a = '%s' AND b = %d", v,
                     a, b);
        }
    }
    du_exec(r->path, sql);
}

/* One random write, as the application on replica r would make it. */
static void s_random_write(world *w, replica *r)
{
    int roll = s_pick(w, 10);
    if (roll < 2) {
        s_random_link_write(w, r);
        return;
    }
    if (roll < 4) {
        s_random_person_write(w, r);
        return;
    }
    if (roll < 5) {
        s_random_mail_write(w, r);
        return;
    }
    if (roll < 6) {
        s_random_handle_write(w, r);
        return;
    }
    static const char *const tables[] = {"lists", "tasks", "tags", "comments"};
    const char *table = tables[s_pick(w, 4)];
    if (!s_has_column(r, table, "id"))
        table = "tasks";
    char id[16];
    snprintf(id, sizeof id, "%c%d",
             table[0] == 't' && table[1] == 'a' && table[2] == 'g' ? 'g' : table[0], s_pick(w, 4));
    buf_t sql = BUF_INIT;
    int v = s_pick(w, 1000);
    bool exists = s_row_exists(r, table, id);
    int action = exists ? s_pick(w, 10) : 0; /* 0-1 insert-or-replace, 2-3 delete, else update */
    if (action >= 2 && action <= 3) {
        stm_buf_printf(&sql, "DELETE FROM %s WHERE id = '%s'", table, id);
    } else if (!exists) {
        if (strcmp(table, "lists") == 0)
            stm_buf_printf(&sql, "INSERT INTO lists (id, name) VALUES ('%s', 'list %d')", id, v);
        else if (strcmp(table, "tags") == 0)
            stm_buf_printf(&sql,
                           "INSERT INTO tags (id, label, color) VALUES ('%s', '%s-%d', 'c%d')", id,
                           id, v, v % 7);
        else if (strcmp(table, "comments") == 0)
            stm_buf_printf(&sql,
                           "INSERT INTO comments (id, task_id, body) VALUES ('%s', 't%d', "
                           "'body %d')",
                           id, v % 6, v);
        else
            stm_buf_printf(&sql,
                           "INSERT INTO tasks (id, list_id, title) VALUES ('%s', 'l%d', "
                           "'title %d')",
                           id, v % 6, v);
    } else if (action <= 1) {
        /* Written again whole. */
        if (strcmp(table, "tasks") == 0)
            stm_buf_printf(&sql,
                           "UPDATE tasks SET title = 'again %d', done = %d, notes = 'n%d' "
                           "WHERE id = '%s'",
                           v, v % 2, v, id);
        else if (strcmp(table, "lists") == 0)
            stm_buf_printf(&sql, "UPDATE lists SET name = 'again %d' WHERE id = '%s'", v, id);
        else if (strcmp(table, "tags") == 0)
            stm_buf_printf(&sql, "UPDATE tags SET label = '%s-%d', color = NULL WHERE id = '%s'",
                           id, v, id);
        else
            stm_buf_printf(&sql, "UPDATE comments SET author = 'a%d' WHERE id = '%s'", v, id);
    } else {
        /* One column, maybe one only some replicas have. */
        const char *cols[8];
        int n = 0;
        if (strcmp(table, "tasks") == 0) {
            static const char *const all[] = {"title",    "done", "notes",
                                              "priority", "tags", "due_at"};
            for (int k = 0; k < 6; k++)
                if (s_has_column(r, "tasks", all[k]))
                    cols[n++] = all[k];
        } else if (strcmp(table, "lists") == 0) {
            cols[n++] = "name";
        } else if (strcmp(table, "tags") == 0) {
            cols[n++] = "color";
        } else {
            cols[n++] = "body";
            cols[n++] = "author";
        }
        const char *col = cols[s_pick(w, n)];
        if (strcmp(col, "done") == 0 || strcmp(col, "priority") == 0)
            stm_buf_printf(&sql, "UPDATE %s SET %s = %d WHERE id = '%s'", table, col, v % 5, id);
        else if (strcmp(col, "tags") == 0)
            stm_buf_printf(&sql, "UPDATE tasks SET tags = '[\"g%d\"]' WHERE id = '%s'", v % 6, id);
        else
            stm_buf_printf(&sql, "UPDATE %s SET %s = '%s %d' WHERE id = '%s'", table, col, col, v,
                           id);
    }
    du_exec(r->path, stm_buf_str(&sql));
    stm_buf_free(&sql);
}

static apply_stats s_apply_bundle(replica *dst, const char *path);

static stm_err s_apply_one(void *ctx, const opbatch_t *batch, stm_error *err)
{
    void **args = ctx;
    return stm_applier_apply(args[0], batch, args[1], err);
}

static apply_stats s_apply_bundle(replica *dst, const char *path)
{
    if (getenv("STEMMA_TRACE"))
        fprintf(stderr, "  %s applied to %s\n", strrchr(path, '/') + 1, strrchr(dst->path, '/') + 1);
    apply_stats st = {0};
    bundle_info info;
    stm_error err = {0};
    void *args[2] = {dst->applier, &st};
    if (stm_bundle_read(path, s_apply_one, args, &info, &err) != STM_OK)
        fail_msg("applying %s to %s: %s", path, dst->path, err.msg);
    return st;
}

/* src sends dst what dst lacks (or, when full, everything it holds). */
static void s_exchange(world *w, replica *src, replica *dst, bool full)
{
    char path[4300];
    snprintf(path, sizeof path, "%s/b%d.bundle", w->dir, w->bundles++);
    vector_t *since = NULL;
    stm_error err = {0};
    if (!full && stm_vector_read(dst->store, &since, &err) != STM_OK)
        fail_msg("%s", err.msg);
    bundle_info info;
    if (stm_bundle_write(src->store, since, path, &info, &err) != STM_OK)
        fail_msg("%s", err.msg);
    if (getenv("STEMMA_TRACE"))
        fprintf(stderr, "  %s from %s%s\n", strrchr(path, '/') + 1, strrchr(src->path, '/') + 1,
                full ? " (everything)" : "");
    stm_vector_destroy(&since);
    s_apply_bundle(dst, path);
    /* Keep a few to apply again, late, somewhere. */
    int slot = w->nstale < 4 ? w->nstale++ : (int)(s_rand(w) % 4);
    if (w->stale[slot][0])
        remove(w->stale[slot]);
    snprintf(w->stale[slot], sizeof w->stale[slot], "%s", path);
}

static void s_sync_all(world *w)
{
    for (int round = 0; round < 2; round++)
        for (int a = 0; a < NREPLICAS; a++)
            for (int b = 0; b < NREPLICAS; b++)
                if (a != b)
                    s_exchange(w, &w->r[a], &w->r[b], false);
}

static void s_warn_quietly(void *ctx, const char *message)
{
    (void)ctx;
    (void)message;
}

static void s_open_world(world *w, uint64_t seed)
{
    memset(w, 0, sizeof *w);
    w->state = seed * 0x9E3779B97F4A7C15ull + 1;
    w->dir = tu_tmpdir();
    static const struct {
        const char *set;
        int version;
    } plan[NREPLICAS] = {{"schemas/tasks", 2},
                         {"schemas/tasks", 3},
                         {"schemas/tasks", 4},
                         {"schemas/tasks-fork", 3},
                         {"schemas/tasks", 3}};
    for (int i = 0; i < NREPLICAS; i++) {
        replica *r = &w->r[i];
        r->set = plan[i].set;
        r->version = plan[i].version;
        snprintf(r->path, sizeof r->path, "%s/r%d.db", w->dir, i);
        stm_id id;
        char *history = s_migrations(r->set, 0, r->version, &id);
        size_t len = strlen(history) + strlen(LINKS) + 1;
        char *sql = malloc(len);
        snprintf(sql, len, "%s%s", history, LINKS);
        free(history);
        r->store = du_setup(r->path, sql, &id);
        r->applier = stm_applier_new(r->store, s_warn_quietly, NULL);
        free(sql);
    }
}

static void s_close_world(world *w)
{
    for (int i = 0; i < NREPLICAS; i++) {
        stm_applier_destroy(&w->r[i].applier);
        stm_store_destroy(&w->r[i].store);
    }
    if (!getenv("STEMMA_KEEP"))
        tu_remove_tree(w->dir);
    free(w->dir);
}

/* Migrates replica r to version `to` of its set, as `stemma migrate` does, and
 * replays what it parked. */
static void s_migrate(replica *r, int to)
{
    stm_id id;
    char *sql = s_migrations(r->set, r->version, to, &id);
    du_migrate(r->store, sql);
    free(sql);
    stm_error err = {0};
    if (stm_store_set_version_id(r->store, &id, &err) != STM_OK)
        fail_msg("%s", err.msg);
    r->version = to;
    apply_stats st = {0};
    if (stm_applier_replay(r->applier, &st, &err) != STM_OK)
        fail_msg("replay on %s: %s", r->path, err.msg);
}

static void s_assert_same(world *w, uint64_t seed, const int *which, int n, const char *query)
{
    char *first = du_hash(w->r[which[0]].store, query);
    for (int k = 1; k < n; k++) {
        char *other = du_hash(w->r[which[k]].store, query);
        if (strcmp(first, other) != 0)
            fail_msg("seed %llu: replicas %d and %d differ on: %s", (unsigned long long)seed,
                     which[0], which[k], query);
        free(other);
    }
    free(first);
}

static const char *const SHARED[] = {
    "SELECT id, name, created_at FROM lists ORDER BY id",
    "SELECT id, list_id, title, done, notes, priority FROM tasks ORDER BY id",
    "SELECT id, label, color FROM tags ORDER BY id",
    "SELECT a, b, note FROM links ORDER BY b, a",
    "SELECT id, name, n FROM people ORDER BY id",
    "SELECT email COLLATE BINARY, n FROM mails ORDER BY email",
    "SELECT site, handle COLLATE BINARY, tag, n FROM handles ORDER BY site, handle",
};

/* Every replica keeps the same conflicts aside. */
static void s_assert_same_conflicts(world *w, uint64_t seed)
{
    char *first = du_conflicts(w->r[0].store);
    for (int k = 1; k < NREPLICAS; k++) {
        char *other = du_conflicts(w->r[k].store);
        if (strcmp(first, other) != 0)
            fail_msg("seed %llu: replicas 0 and %d keep other conflicts:\n%s---\n%s",
                     (unsigned long long)seed, k, first, other);
        free(other);
    }
    free(first);
}

/* Compacts replica r, all of it, with no peer known. */
static void s_compact(replica *r)
{
    compact_stats st = {0};
    stm_error err = {0};
    if (stm_applier_compact_all(r->applier, NULL, &st, &err) != STM_OK)
        fail_msg("compacting %s: %s", r->path, err.msg);
}

/* Every replica holds the same operations, by their vectors (what compaction pruned
 * is held, as a gap). */
static void s_assert_same_vectors(world *w, uint64_t seed)
{
    stm_error err = {0};
    vector_t *v[NREPLICAS];
    for (int i = 0; i < NREPLICAS; i++)
        if (stm_vector_read(w->r[i].store, &v[i], &err) != STM_OK)
            fail_msg("%s", err.msg);
    for (int i = 1; i < NREPLICAS; i++)
        for (int side = 0; side < 2; side++) {
            const vector_t *a = side ? v[i] : v[0], *b = side ? v[0] : v[i];
            for (size_t k = 0; k < stm_vector_count(a); k++)
                if (stm_vector_at(a, k)->seq != stm_vector_get(b, &stm_vector_at(a, k)->origin))
                    fail_msg("seed %llu: replicas 0 and %d hold other operations",
                             (unsigned long long)seed, i);
        }
    for (int i = 0; i < NREPLICAS; i++)
        stm_vector_destroy(&v[i]);
}

/* A replica made now at v4 of the main line, which never met anyone, takes everything
 * from replica `from` and holds what the v4 replicas hold. */
static void s_assert_newcomer_agrees(world *w, uint64_t seed, int from, const int *v4, int n)
{
    replica fresh = {.set = "schemas/tasks", .version = 4};
    snprintf(fresh.path, sizeof fresh.path, "%s/new.db", w->dir);
    stm_id id;
    char *history = s_migrations(fresh.set, 0, 4, &id);
    size_t len = strlen(history) + strlen(LINKS) + 1;
    char *sql = malloc(len);
    snprintf(sql, len, "%s%s", history, LINKS);
    free(history);
    fresh.store = du_setup(fresh.path, sql, &id);
    fresh.applier = stm_applier_new(fresh.store, s_warn_quietly, NULL);
    free(sql);
    s_exchange(w, &w->r[from], &fresh, false);
    static const char *const q[] = {"SELECT * FROM tasks ORDER BY id",
                                    "SELECT * FROM comments ORDER BY id",
                                    "SELECT * FROM lists ORDER BY id"};
    for (size_t k = 0; k < sizeof q / sizeof *q; k++) {
        char *want = du_hash(w->r[v4[0]].store, q[k]), *got = du_hash(fresh.store, q[k]);
        if (strcmp(want, got) != 0)
            fail_msg("seed %llu: a newcomer fed by replica %d differs on %s (%s)",
                     (unsigned long long)seed, from, q[k], w->dir);
        free(want);
        free(got);
    }
    (void)n;
    char *conflicts = du_conflicts(w->r[0].store), *its = du_conflicts(fresh.store);
    if (strcmp(conflicts, its) != 0)
        fail_msg("seed %llu: a newcomer keeps other conflicts:\n%s---\n%s",
                 (unsigned long long)seed, conflicts, its);
    free(conflicts);
    free(its);
    assert_int_equal(du_int(fresh.store, "SELECT count(*) FROM stemma_parked WHERE kind <> "
                                         "'schema'"),
                     0);
    stm_applier_destroy(&fresh.applier);
    stm_store_destroy(&fresh.store);
}

static void s_run_seed(uint64_t seed, int steps, bool compact)
{
    world w;
    s_open_world(&w, seed);
    w.compact = compact;
    for (int step = 0; step < steps; step++) {
        if (getenv("STEMMA_TRACE"))
            fprintf(stderr, "step %d\n", step);
        if (w.compact && s_pick(&w, 12) == 0)
            s_compact(&w.r[s_pick(&w, NREPLICAS)]);
        int roll = s_pick(&w, 10);
        if (roll < 6) {
            s_random_write(&w, &w.r[s_pick(&w, NREPLICAS)]);
        } else if (roll < 9) {
            int a = s_pick(&w, NREPLICAS), b = (a + 1 + s_pick(&w, NREPLICAS - 1)) % NREPLICAS;
            s_exchange(&w, &w.r[a], &w.r[b], s_pick(&w, 4) == 0);
        } else if (w.nstale) {
            s_apply_bundle(&w.r[s_pick(&w, NREPLICAS)], w.stale[s_pick(&w, w.nstale)]);
        }
    }
    s_sync_all(&w);
    int all[NREPLICAS] = {0, 1, 2, 3, 4};
    for (size_t q = 0; q < sizeof SHARED / sizeof SHARED[0]; q++)
        s_assert_same(&w, seed, all, NREPLICAS, SHARED[q]);
    s_assert_same_conflicts(&w, seed);
    /* The same version holds the same everything. */
    int v3[] = {1, 4};
    s_assert_same(&w, seed, v3, 2, "SELECT * FROM tasks ORDER BY id");

    /* The v2 replica catches up to v3, replays, and then holds what v3 holds. */
    s_migrate(&w.r[0], 3);
    int now_v3[] = {0, 1, 4};
    s_assert_same(&w, seed, now_v3, 3, "SELECT * FROM tasks ORDER BY id");
    s_assert_same(&w, seed, now_v3, 3, "SELECT * FROM lists ORDER BY id");
    /* Everyone on the main line moves to v4: comments too. */
    s_migrate(&w.r[0], 4);
    s_migrate(&w.r[1], 4);
    s_migrate(&w.r[4], 4);
    int v4[] = {0, 1, 2, 4};
    s_assert_same(&w, seed, v4, 4, "SELECT * FROM tasks ORDER BY id");
    s_assert_same(&w, seed, v4, 4, "SELECT * FROM comments ORDER BY id");
    /* More writes after the upgrade still converge, the fork included. */
    for (int step = 0; step < steps / 4; step++)
        s_random_write(&w, &w.r[s_pick(&w, NREPLICAS)]);
    s_sync_all(&w);
    for (size_t q = 0; q < sizeof SHARED / sizeof SHARED[0]; q++)
        s_assert_same(&w, seed, all, NREPLICAS, SHARED[q]);
    s_assert_same(&w, seed, v4, 4, "SELECT * FROM comments ORDER BY id");
    s_assert_same(&w, seed, v4, 4, "SELECT * FROM tasks ORDER BY id");
    s_assert_same_conflicts(&w, seed);
    /* Nothing was lost on the way: every replica holds every operation (compacted,
     * some as gaps). */
    s_assert_same_vectors(&w, seed);
    if (!w.compact) {
        long long ops = du_int(w.r[0].store, "SELECT sum(n) FROM stemma_oplog");
        for (int i = 1; i < NREPLICAS; i++)
            assert_int_equal(du_int(w.r[i].store, "SELECT sum(n) FROM stemma_oplog"), ops);
    }
    /* Nothing stays parked but what a schema truly lacks: no refused constraint, no
     * clock ahead; on the main line at its head, only the fork's own column. */
    for (int i = 0; i < NREPLICAS; i++)
        assert_int_equal(
            du_int(w.r[i].store, "SELECT count(*) FROM stemma_parked WHERE kind <> 'schema'"), 0);
    for (int k = 0; k < 4; k++)
        assert_int_equal(du_int(w.r[v4[k]].store,
                                "SELECT count(*) FROM stemma_parked p JOIN stemma_ids i ON "
                                "i.id = p.origin JOIN stemma_oplog o ON o.origin = i.no AND "
                                "p.seq BETWEEN o.seq AND o.seq + o.n - 1 WHERE o.tbl <> 'tasks' "
                                "OR instr(o.cells, x'a66475655f6174') = 0"),
                         0);
    if (w.compact) {
        /* All compacted, and a newcomer fed by one of them. */
        long long pruned = 0;
        for (int i = 0; i < NREPLICAS; i++) {
            s_compact(&w.r[i]);
            pruned += du_int(w.r[i].store, "SELECT pruned FROM stemma_local");
        }
        assert_true(pruned > 0);
        s_assert_newcomer_agrees(&w, seed, v4[s_pick(&w, 4)], v4, 4);
    }
    s_close_world(&w);
}

static int s_env(const char *name, int fallback)
{
    const char *v = getenv(name);
    return v && atoi(v) > 0 ? atoi(v) : fallback;
}

/* Seeds 1 .. STEMMA_SEEDS, or STEMMA_SEED alone. */
static void s_run_seeds(bool compact)
{
    int seeds = s_env("STEMMA_SEEDS", 3), steps = s_env("STEMMA_STEPS", 300);
    int one = s_env("STEMMA_SEED", 0);
    for (int seed = one ? one : 1; seed <= (one ? one : seeds); seed++)
        s_run_seed((uint64_t)seed, steps, compact);
}

static void test_replicas_converge(void **state)
{
    (void)state;
    s_run_seeds(false);
}

static void test_replicas_converge_through_compaction(void **state)
{
    (void)state;
    s_run_seeds(true);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_replicas_converge),
        cmocka_unit_test(test_replicas_converge_through_compaction),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
