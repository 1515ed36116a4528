/* Tests of sync/migrate: migrating real database files, change capture after each
 * migration, drift, adopting an older tool's schema_version, failing migrations,
 * plans (dry runs), backups, rollback and restore, and what a run tells: its events,
 * its result, and that it prints nothing. Each test works in its own scratch
 * directory; schema sets it changes are copied there first. One file (over the house's
 * 700 lines) because every test shares the fixtures and helpers below. */
#include "base/buf.h"
#include "lineage/lineage.h"
#include "sync/apply.h"
#include "sync/backup.h"
#include "sync/migrate.h"
#include "sync/op.h"
#include "sync/store.h"
#include "dbutil.h"
#include "testutil.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <dirent.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define TASKS "schemas/tasks"

/* ---- helpers ---- */

typedef struct {
    char *dir; /* scratch directory */
    char *db;  /* DIR/app.db */
} s_fixture;

static int s_setup(void **state)
{
    s_fixture *f = calloc(1, sizeof *f);
    f->dir = tu_tmpdir();
    buf_t b = BUF_INIT;
    stm_buf_printf(&b, "%s/app.db", f->dir);
    f->db = stm_buf_detach(&b);
    *state = f;
    return 0;
}

static int s_teardown(void **state)
{
    s_fixture *f = *state;
    tu_remove_tree(f->dir);
    free(f->dir);
    free(f->db);
    free(f);
    return 0;
}

/* "DIR/name", the caller's. */
static char *s_path(const char *dir, const char *name)
{
    buf_t b = BUF_INIT;
    stm_buf_printf(&b, "%s/%s", dir, name);
    return stm_buf_detach(&b);
}

/* Copies every file of schema directory src into a new directory DIR/name; returns its
 * path, the caller's. */
static char *s_copy_set(const char *src, const char *dir, const char *name)
{
    char *dst = s_path(dir, name);
    assert_int_equal(mkdir(dst, 0755), 0);
    DIR *d = opendir(src);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char *from = s_path(src, e->d_name);
        size_t len = 0;
        char *data = tu_read(from, &len);
        assert_non_null(data);
        tu_write_bytes(dst, e->d_name, data, len);
        free(data);
        free(from);
    }
    closedir(d);
    return dst;
}

static void s_remove(const char *dir, const char *name)
{
    char *p = s_path(dir, name);
    assert_int_equal(unlink(p), 0);
    free(p);
}

static migrate_t *s_open(const char *db, const char *schemas)
{
    stm_error err = {0};
    migrate_t *m = NULL;
    if (stm_migrate_open(db, schemas, &m, &err) != STM_OK)
        fail_msg("stm_migrate_open(%s, %s): %s", db, schemas, err.msg);
    return m;
}

/* Runs migrate to `to` (backup as asked, silent) and returns its code; err filled. */
static stm_err s_migrate(const char *db, const char *schemas, int to, bool backup, stm_error *err)
{
    migrate_t *m = s_open(db, schemas);
    migrate_options o = MIGRATE_OPTIONS_INIT;
    o.to = to;
    o.backup = backup;
    stm_err rc = stm_migrate_run(m, &o, NULL, err);
    stm_migrate_destroy(&m);
    return rc;
}

static void s_migrate_ok(const char *db, const char *schemas, int to)
{
    stm_error err = {0};
    if (s_migrate(db, schemas, to, false, &err) != STM_OK)
        fail_msg("migrate %s to %d: %s", schemas, to, err.msg);
}

static int s_version(const char *db, const char *schemas)
{
    migrate_t *m = s_open(db, schemas);
    int v = stm_migrate_version(m);
    stm_migrate_destroy(&m);
    return v;
}

static sqlite3 *s_conn(const char *db)
{
    sqlite3 *c = NULL;
    assert_int_equal(sqlite3_open_v2(db, &c, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL),
                     SQLITE_OK);
    sqlite3_busy_timeout(c, 5000);
    return c;
}

/* Runs sql on a second connection, as the application or the sqlite3 shell would. */
static void s_exec(const char *db, const char *sql)
{
    sqlite3 *c = s_conn(db);
    char *msg = NULL;
    if (sqlite3_exec(c, sql, NULL, NULL, &msg) != SQLITE_OK)
        fail_msg("%s: %s", sql, msg);
    sqlite3_close(c);
}

/* The first column of the first row of sql, as an integer. */
static long long s_int(const char *db, const char *sql)
{
    if (strstr(sql, "temp.ops")) {
        store_t *store = NULL;
        stm_error err = {0};
        if (stm_store_open(db, STORE_OPEN_EXISTING, &store, &err) != STM_OK)
            fail_msg("%s", err.msg);
        long long v = du_int(store, sql);
        stm_store_destroy(&store);
        return v;
    }
    sqlite3 *c = s_conn(db);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(c, sql, -1, &st, NULL) != SQLITE_OK)
        fail_msg("%s: %s", sql, sqlite3_errmsg(c));
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    long long v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(c);
    return v;
}

/* The first column of the first row of sql, as text the caller frees (NULL for NULL). */
static char *s_text(const char *db, const char *sql)
{
    sqlite3 *c = s_conn(db);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(c, sql, -1, &st, NULL) != SQLITE_OK)
        fail_msg("%s: %s", sql, sqlite3_errmsg(c));
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    const char *t = (const char *)sqlite3_column_text(st, 0);
    char *copy = t ? strdup(t) : NULL;
    sqlite3_finalize(st);
    sqlite3_close(c);
    return copy;
}

/* BLAKE2b of a whole file, to prove it did not change. */
static void s_hash_file(const char *path, unsigned char out[32])
{
    size_t len = 0;
    char *data = tu_read(path, &len);
    assert_non_null(data);
    crypto_generichash(out, 32, (const unsigned char *)data, len, NULL, 0);
    free(data);
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

static bool s_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static lineage_t *s_lineage(const char *schemas)
{
    schemaset_t *set = NULL;
    lineage_t *l = NULL;
    stm_error err = {0};
    if (stm_schemaset_load(schemas, &set, &err) != STM_OK ||
        stm_lineage_build(set, &l, &err) != STM_OK)
        fail_msg("%s: %s", schemas, err.msg);
    stm_schemaset_destroy(&set);
    return l;
}

static void s_hex_of(const lineage_t *l, int version, char out[STM_ID_HEX_LEN + 1])
{
    stm_id_to_hex(&stm_lineage_version_at(l, (size_t)version - 1)->id, out);
}

/* The version id stemma_local stamps local operations with. */
static void s_store_version_id(const char *db, stm_id *out)
{
    store_t *s = NULL;
    stm_error err = {0};
    assert_int_equal(stm_store_open(db, STORE_OPEN_EXISTING, &s, &err), STM_OK);
    assert_int_equal(stm_store_version_id(s, out, &err), STM_OK);
    stm_store_destroy(&s);
}

/* Capture's triggers: stemma's on the application's tables (those on its own keep
 * counters). */
static long long s_triggers(const char *db)
{
    return s_int(db, "SELECT count(*) FROM sqlite_schema WHERE type = 'trigger' AND name LIKE "
                     "'stemma%' AND tbl_name NOT LIKE 'stemma%'");
}

static bool s_has_column(const char *db, const char *table, const char *column)
{
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM pragma_table_info('%s') WHERE name = '%s'",
             table, column);
    return s_int(db, sql) == 1;
}

/* ---- what the migrator tells, and that it prints nothing ---- */

/* Every event of a run but STEP_RUNNING as one line ("started up 3"), so that a test
 * compares the whole sequence at once; STEP_RUNNING (timing-dependent) is counted. */
typedef struct {
    buf_t log;           /* one line an event */
    int running;         /* STEP_RUNNING events */
    int running_version; /* the step the last one was for */
    int open_step;       /* the step started and not yet ended, 0 for none */
    int stray;           /* STEP_RUNNING events outside their step */
    char *backup;        /* BACKUP_WRITTEN's path, copied */
} s_events;

static void s_events_init(s_events *e)
{
    memset(e, 0, sizeof *e);
    e->log = (buf_t)BUF_INIT;
}

static void s_events_free(s_events *e)
{
    stm_buf_free(&e->log);
    free(e->backup);
}

static void s_record(const migrate_event *ev, void *user)
{
    s_events *e = user;
    const migrate_step *s = ev->step;
    const char *dir = s && s->direction == MIGRATE_DOWN ? "down" : "up";
    switch (ev->kind) {
    case MIGRATE_EVENT_BACKUP_WRITTEN:
        stm_buf_puts(&e->log, "backup\n");
        e->backup = strdup(ev->path);
        break;
    case MIGRATE_EVENT_ADOPTED:
        stm_buf_printf(&e->log, "adopted %d\n", ev->version);
        break;
    case MIGRATE_EVENT_STEP_STARTED:
        stm_buf_printf(&e->log, "started %s %d\n", dir, s->version);
        e->open_step = s->version;
        break;
    case MIGRATE_EVENT_STEP_RUNNING:
        e->running++;
        e->running_version = s->version;
        e->stray += e->open_step != s->version;
        break;
    case MIGRATE_EVENT_STEP_DONE:
    case MIGRATE_EVENT_STEP_FAILED:
        stm_buf_printf(&e->log, "%s %s %d\n",
                       ev->kind == MIGRATE_EVENT_STEP_DONE ? "done" : "failed", dir, s->version);
        e->open_step = 0;
        assert_true(ev->elapsed_ms >= 0);
        break;
    case MIGRATE_EVENT_REPLAYED:
        stm_buf_printf(&e->log, "replayed %llu %llu\n", (unsigned long long)ev->replayed,
                       (unsigned long long)ev->parked);
        break;
    case MIGRATE_EVENT_BASELINED:
        stm_buf_printf(&e->log, "baseline %d %llu\n", ev->version, (unsigned long long)ev->rows);
        break;
    case MIGRATE_EVENT_CAPTURE_SET_UP:
        stm_buf_printf(&e->log, "capture %d\n", ev->version);
        break;
    }
}

/* Default options whose events go to e. */
static migrate_options s_told(s_events *e)
{
    migrate_options o = MIGRATE_OPTIONS_INIT;
    o.progress = s_record;
    o.progress_user = e;
    return o;
}

/* stdout and stderr pointed at a file for a while, to show nothing is printed. */
typedef struct {
    int saved_out; /* stdout before */
    int saved_err; /* stderr before */
    FILE *file;    /* where both went */
} s_capture;

static void s_capture_begin(s_capture *c)
{
    fflush(stdout);
    fflush(stderr);
    c->file = tmpfile();
    assert_non_null(c->file);
    c->saved_out = dup(STDOUT_FILENO);
    c->saved_err = dup(STDERR_FILENO);
    assert_true(c->saved_out >= 0 && c->saved_err >= 0);
    assert_int_equal(dup2(fileno(c->file), STDOUT_FILENO), STDOUT_FILENO);
    assert_int_equal(dup2(fileno(c->file), STDERR_FILENO), STDERR_FILENO);
}

/* Puts stdout and stderr back; returns how many bytes were written to them meanwhile. */
static long long s_capture_end(s_capture *c)
{
    fflush(stdout);
    fflush(stderr);
    dup2(c->saved_out, STDOUT_FILENO);
    dup2(c->saved_err, STDERR_FILENO);
    close(c->saved_out);
    close(c->saved_err);
    struct stat st;
    long long size = fstat(fileno(c->file), &st) == 0 ? (long long)st.st_size : -1;
    fclose(c->file);
    return size;
}

/* Runs migrate (MIGRATE_UP) or rollback with o into *res, and checks that it printed
 * nothing; fails the test on an error. */
static void s_run_silently(migrate_t *m, const migrate_options *o, migrate_direction dir,
                           migrate_result *res)
{
    stm_error err = {0};
    s_capture c;
    s_capture_begin(&c);
    stm_err rc = dir == MIGRATE_UP ? stm_migrate_run(m, o, res, &err)
                                   : stm_migrate_rollback(m, o, res, &err);
    long long printed = s_capture_end(&c);
    if (rc != STM_OK)
        fail_msg("%s", err.msg);
    assert_int_equal(printed, 0);
}

/* ---- migrate ---- */

static void test_fresh_migrate_to_head(void **state)
{
    s_fixture *f = *state;
    migrate_t *m = s_open(f->db, TASKS);
    assert_false(stm_migrate_db_exists(m));
    assert_int_equal(stm_migrate_version(m), 0);
    assert_int_equal(stm_migrate_drift_count(m), 0);
    assert_false(stm_migrate_is_prepared(m));
    assert_false(s_exists(f->db)); /* opening checks only: nothing created */
    migrate_options o = MIGRATE_OPTIONS_INIT;
    stm_error err = {0};
    migrate_result res;
    assert_int_equal(stm_migrate_run(m, &o, &res, &err), STM_OK);
    assert_int_equal(stm_migrate_version(m), 4);
    assert_true(stm_migrate_is_prepared(m));
    assert_null(res.backup_path); /* a new file: nothing to back up */
    stm_migrate_result_free(&res);
    assert_int_equal(stm_migrate_record_count(m), 4);
    const lineage_t *l = stm_migrate_lineage(m);
    for (size_t i = 0; i < 4; i++) {
        const migrate_record *r = stm_migrate_record_at(m, i);
        assert_int_equal(r->version, (int)i + 1);
        assert_true(r->has_id && r->has_checksum);
        assert_true(stm_id_equal(&r->id, &stm_lineage_version_at(l, i)->id));
        assert_true(stm_id_equal(&r->checksum, &stm_lineage_version_at(l, i)->checksum));
        assert_string_equal(r->description, stm_lineage_version_at(l, i)->description);
        /* 2024-01-02T03:04:05.678Z */
        assert_int_equal(strlen(r->applied_at), 24);
        assert_int_equal(r->applied_at[10], 'T');
        assert_int_equal(r->applied_at[19], '.');
        assert_int_equal(r->applied_at[23], 'Z');
    }
    /* Ids are readable in the sqlite3 shell: 64 lowercase hex digits. */
    char hex[STM_ID_HEX_LEN + 1];
    s_hex_of(l, 4, hex);
    char *recorded = s_text(f->db, "SELECT version_id FROM schema_version WHERE version = 4");
    assert_string_equal(recorded, hex);
    free(recorded);
    stm_id stamped;
    s_store_version_id(f->db, &stamped);
    assert_true(stm_id_equal(&stamped, &stm_lineage_head(l)->id));
    assert_int_equal(s_triggers(f->db), 16); /* lists, tasks, tags, comments: 4 each */
    char *mode = s_text(f->db, "PRAGMA journal_mode");
    assert_string_equal(mode, "wal");
    free(mode);
    stm_migrate_destroy(&m);
}

static void test_rerun_is_a_noop(void **state)
{
    s_fixture *f = *state;
    s_migrate_ok(f->db, TASKS, MIGRATE_HEAD);
    unsigned char before[32], after[32];
    s_hash_file(f->db, before);
    stm_error err = {0};
    assert_int_equal(s_migrate(f->db, TASKS, MIGRATE_HEAD, true, &err), STM_OK);
    s_hash_file(f->db, after);
    assert_memory_equal(before, after, 32);
    assert_int_equal(s_count_files(f->dir, "app.db.v"), 0); /* no backup either */
    assert_int_equal(s_version(f->db, TASKS), 4);
}

static void test_to_stops_there_and_refuses_bad_targets(void **state)
{
    s_fixture *f = *state;
    s_migrate_ok(f->db, TASKS, 2);
    assert_int_equal(s_version(f->db, TASKS), 2);
    assert_false(s_has_column(f->db, "tasks", "tags"));
    stm_error err = {0};
    assert_int_equal(s_migrate(f->db, TASKS, 1, true, &err), STM_EUSAGE);
    assert_non_null(strstr(err.msg, "stemma rollback --to 1"));
    assert_int_equal(s_migrate(f->db, TASKS, 9, true, &err), STM_EINPUT);
    assert_non_null(strstr(err.msg, "there is no version 9"));
    assert_int_equal(s_migrate(f->db, TASKS, 3, false, &err), STM_OK);
    assert_int_equal(s_version(f->db, TASKS), 3);
    assert_true(s_has_column(f->db, "tasks", "tags"));
}

/* ---- capture after migrating ---- */

static void test_writes_are_captured_with_the_new_version_id(void **state)
{
    s_fixture *f = *state;
    s_migrate_ok(f->db, TASKS, MIGRATE_HEAD);
    lineage_t *l = s_lineage(TASKS);
    s_exec(f->db, "INSERT INTO lists (id, name) VALUES ('l1', 'Home');"
                  "INSERT INTO tasks (id, list_id, title) VALUES ('t1', 'l1', 'Milk');"
                  "UPDATE tasks SET priority = 2 WHERE id = 't1';");
    assert_true(s_int(f->db, "SELECT count(*) FROM temp.ops") >= 10);
    assert_int_equal(s_int(f->db, "SELECT count(DISTINCT version_id) FROM temp.ops"), 1);
    char hex[STM_ID_HEX_LEN + 1], sql[256];
    stm_id_to_hex(&stm_lineage_head(l)->id, hex);
    snprintf(sql, sizeof sql,
             "SELECT count(*) = (SELECT count(*) FROM temp.ops) FROM temp.ops WHERE "
             "lower(hex(version_id)) = '%s'",
             hex);
    assert_int_equal(s_int(f->db, sql), 1);
    stm_lineage_destroy(&l);
}

static void test_a_migration_dropping_a_column_works_with_triggers_installed(void **state)
{
    s_fixture *f = *state;
    const char *set = "tests/data/schemas/drop-column";
    s_migrate_ok(f->db, set, 1);
    assert_int_equal(s_triggers(f->db), 4);
    s_exec(f->db, "INSERT INTO people VALUES ('p1', 'Ada', 'ada')");
    /* The triggers name nickname; ALTER TABLE DROP COLUMN fails while they do. */
    s_migrate_ok(f->db, set, 2);
    assert_false(s_has_column(f->db, "people", "nickname"));
    s_exec(f->db, "UPDATE people SET name = 'Ada L.' WHERE id = 'p1'");
    lineage_t *l = s_lineage(set);
    char sql[256], hex[STM_ID_HEX_LEN + 1];
    s_hex_of(l, 2, hex);
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM temp.ops WHERE col = 'name' AND val = 'Ada L.' AND "
             "lower(hex(version_id)) = '%s'",
             hex);
    assert_int_equal(s_int(f->db, sql), 1);
    assert_int_equal(s_int(f->db, "SELECT count(*) FROM sqlite_schema WHERE type = 'trigger' "
                                  "AND sql LIKE '%nickname%'"),
                     0);
    stm_lineage_destroy(&l);
}

/* ---- drift ---- */

static void test_a_changed_file_is_drift(void **state)
{
    s_fixture *f = *state;
    char *set = s_copy_set(TASKS, f->dir, "tasks");
    s_migrate_ok(f->db, set, MIGRATE_HEAD);
    tu_write(set, "002_add_priority.sql",
             "-- Description: Tasks get a priority\n"
             "ALTER TABLE tasks ADD COLUMN priority INTEGER DEFAULT 1;\n");
    unsigned char before[32], after[32];
    s_hash_file(f->db, before);
    migrate_t *m = s_open(f->db, set);
    /* Version 2's file changed; 3 and 4's ids change with it but are not reported. */
    assert_int_equal(stm_migrate_drift_count(m), 1);
    char *expect = s_path(set, "002_add_priority.sql: changed since it was applied (checksum "
                               "differs)");
    assert_string_equal(stm_migrate_drift_at(m, 0), expect);
    migrate_options o = MIGRATE_OPTIONS_INIT;
    stm_error err = {0};
    /* A plan refused for drift still describes the database, drift included. */
    migrate_plan plan;
    assert_int_equal(stm_migrate_run_plan(m, &o, &plan, &err), STM_EINPUT);
    assert_string_equal(err.msg, expect);
    assert_true(plan.checked);
    assert_int_equal(plan.version, 4);
    assert_int_equal(plan.ndrift, 1);
    assert_string_equal(plan.drift[0], expect);
    assert_int_equal(plan.nsteps, 0);
    stm_migrate_plan_free(&plan);
    assert_int_equal(stm_migrate_run(m, &o, NULL, &err), STM_EINPUT);
    assert_string_equal(err.msg, expect);
    o.to = 1;
    assert_int_equal(stm_migrate_rollback(m, &o, NULL, &err), STM_EINPUT);
    assert_string_equal(err.msg, expect);
    stm_migrate_destroy(&m);
    s_hash_file(f->db, after);
    assert_memory_equal(before, after, 32);
    assert_int_equal(s_count_files(f->dir, "app.db.v"), 0);
    free(expect);
    free(set);
}

static void test_a_version_the_directory_lacks_is_drift(void **state)
{
    s_fixture *f = *state;
    char *set = s_copy_set(TASKS, f->dir, "tasks");
    s_migrate_ok(f->db, set, MIGRATE_HEAD);
    s_remove(set, "004_add_comments.sql");
    s_remove(set, "004_add_comments.down.sql");
    migrate_t *m = s_open(f->db, set);
    assert_int_equal(stm_migrate_version(m), 4);
    assert_int_equal(stm_migrate_drift_count(m), 1);
    assert_non_null(strstr(stm_migrate_drift_at(m, 0), "holds version 4, which"));
    assert_non_null(strstr(stm_migrate_drift_at(m, 0), "lacks (\"Comments on tasks\""));
    migrate_options o = MIGRATE_OPTIONS_INIT;
    stm_error err = {0};
    assert_int_equal(stm_migrate_run(m, &o, NULL, &err), STM_EINPUT);
    assert_non_null(strstr(err.msg, "holds version 4"));
    stm_migrate_destroy(&m);
    free(set);
}

static void test_an_id_without_a_checksum_names_the_earlier_file(void **state)
{
    s_fixture *f = *state;
    char *set = s_copy_set(TASKS, f->dir, "tasks");
    s_migrate_ok(f->db, set, MIGRATE_HEAD);
    /* Version 2 recorded without a checksum (and no id), then its file changed: only
     * version 3's id can tell. */
    s_exec(f->db, "UPDATE schema_version SET checksum = NULL, version_id = NULL WHERE "
                  "version = 2");
    tu_write(set, "002_add_priority.sql", "ALTER TABLE tasks ADD COLUMN priority INTEGER;\n");
    migrate_t *m = s_open(f->db, set);
    assert_int_equal(stm_migrate_drift_count(m), 1);
    assert_non_null(strstr(stm_migrate_drift_at(m, 0), "/002_add_priority.sql: differs from the "
                                                       "migration that was applied"));
    stm_migrate_destroy(&m);
    free(set);
}

/* ---- adoption ---- */

/* A database an older tool migrated to version n of schemas/tasks. */
static void s_make_old_style(const char *db, int n, const char *extra_rows)
{
    sqlite3 *c = NULL;
    assert_int_equal(sqlite3_open(db, &c), SQLITE_OK);
    schemaset_t *set = NULL;
    stm_error err = {0};
    assert_int_equal(stm_schemaset_load(TASKS, &set, &err), STM_OK);
    assert_int_equal(sqlite3_exec(c,
                                  "CREATE TABLE schema_version (version INTEGER PRIMARY KEY, "
                                  "applied_at TEXT NOT NULL, description TEXT NOT NULL)",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    for (int k = 1; k <= n; k++) {
        assert_int_equal(
            sqlite3_exec(c, stm_schemaset_at(set, (size_t)k - 1)->text, NULL, NULL, NULL),
            SQLITE_OK);
        char sql[200];
        /* Descriptions an older tool wrote need not match ours. */
        snprintf(sql, sizeof sql,
                 "INSERT INTO schema_version VALUES (%d, '2020-01-0%dT00:00:00Z', 'step %d')", k, k,
                 k);
        assert_int_equal(sqlite3_exec(c, sql, NULL, NULL, NULL), SQLITE_OK);
    }
    if (extra_rows)
        assert_int_equal(sqlite3_exec(c, extra_rows, NULL, NULL, NULL), SQLITE_OK);
    stm_schemaset_destroy(&set);
    sqlite3_close(c);
}

static void test_an_older_schema_version_is_adopted(void **state)
{
    s_fixture *f = *state;
    s_make_old_style(f->db, 2, "INSERT INTO lists VALUES ('l1', 'Home', '2020')");
    migrate_t *m = s_open(f->db, TASKS);
    assert_true(stm_migrate_needs_adoption(m));
    assert_int_equal(stm_migrate_version(m), 2);
    assert_int_equal(stm_migrate_drift_count(m), 0);
    assert_false(stm_migrate_is_prepared(m));
    s_events e;
    s_events_init(&e);
    migrate_options o = s_told(&e);
    stm_error err = {0};
    migrate_result res;
    if (stm_migrate_run(m, &o, &res, &err) != STM_OK)
        fail_msg("%s", err.msg);
    assert_false(stm_migrate_needs_adoption(m));
    assert_int_equal(stm_migrate_version(m), 4);
    assert_true(res.adopted);
    assert_string_equal(stm_buf_str(&e.log), "backup\nadopted 2\nstarted up 3\ndone up 3\n"
                                             "started up 4\ndone up 4\nreplayed 0 0\n");
    s_events_free(&e);
    /* The backup was taken before adoption: an older tool's table, at version 2. */
    const char *bak = res.backup_path;
    assert_non_null(bak);
    assert_false(s_has_column(bak, "schema_version", "version_id"));
    assert_int_equal(s_int(bak, "SELECT max(version) FROM schema_version"), 2);
    lineage_t *l = s_lineage(TASKS);
    for (int k = 1; k <= 4; k++) {
        char sql[128], hex[STM_ID_HEX_LEN + 1];
        snprintf(sql, sizeof sql, "SELECT version_id FROM schema_version WHERE version = %d", k);
        char *got = s_text(f->db, sql);
        s_hex_of(l, k, hex);
        assert_string_equal(got, hex);
        free(got);
    }
    /* The older tool's rows keep their times and descriptions. */
    char *desc = s_text(f->db, "SELECT description FROM schema_version WHERE version = 1");
    assert_string_equal(desc, "step 1");
    free(desc);
    assert_int_equal(s_int(f->db, "SELECT count(*) FROM lists"), 1);
    assert_int_equal(s_triggers(f->db), 16);
    stm_lineage_destroy(&l);
    stm_migrate_result_free(&res);
    stm_migrate_destroy(&m);
}

static void test_an_older_table_at_head_is_adopted_and_set_up(void **state)
{
    s_fixture *f = *state;
    s_make_old_style(f->db, 4, NULL);
    stm_error err = {0};
    assert_int_equal(s_migrate(f->db, TASKS, MIGRATE_HEAD, false, &err), STM_OK);
    migrate_t *m = s_open(f->db, TASKS);
    assert_false(stm_migrate_needs_adoption(m));
    assert_true(stm_migrate_is_prepared(m));
    stm_migrate_destroy(&m);
    assert_int_equal(s_triggers(f->db), 16);
}

static void test_rollback_adopts_an_older_table_first(void **state)
{
    s_fixture *f = *state;
    s_make_old_style(f->db, 3, NULL);
    migrate_t *m = s_open(f->db, TASKS);
    migrate_options o = MIGRATE_OPTIONS_INIT;
    o.to = 1;
    o.backup = false;
    stm_error err = {0};
    if (stm_migrate_rollback(m, &o, NULL, &err) != STM_OK)
        fail_msg("%s", err.msg);
    assert_int_equal(stm_migrate_version(m), 1);
    assert_false(stm_migrate_needs_adoption(m));
    stm_migrate_destroy(&m);
    assert_true(s_has_column(f->db, "schema_version", "checksum"));
    assert_false(s_has_column(f->db, "tasks", "priority"));
    assert_int_equal(s_triggers(f->db), 12);
}

static void test_capture_is_set_up_again_when_stemma_tables_are_gone(void **state)
{
    s_fixture *f = *state;
    s_migrate_ok(f->db, TASKS, MIGRATE_HEAD);
    /* Someone removed stemma's tables and triggers; schema_version is intact. */
    sqlite3 *c = s_conn(f->db);
    sqlite3_stmt *st = NULL;
    buf_t drop = BUF_INIT;
    assert_int_equal(sqlite3_prepare_v2(c,
                                        "SELECT type, name FROM sqlite_schema WHERE name LIKE "
                                        "'stemma%' AND type IN ('trigger', 'table')",
                                        -1, &st, NULL),
                     SQLITE_OK);
    while (sqlite3_step(st) == SQLITE_ROW)
        stm_buf_printf(&drop, "DROP %s IF EXISTS \"%s\";", sqlite3_column_text(st, 0),
                       sqlite3_column_text(st, 1));
    sqlite3_finalize(st);
    sqlite3_close(c);
    s_exec(f->db, stm_buf_str(&drop));
    stm_buf_free(&drop);
    migrate_t *m = s_open(f->db, TASKS);
    assert_false(stm_migrate_is_prepared(m));
    s_events e;
    s_events_init(&e);
    migrate_options o = s_told(&e);
    stm_error err = {0};
    migrate_plan plan;
    assert_int_equal(stm_migrate_run_plan(m, &o, &plan, &err), STM_OK);
    assert_false(plan.nothing_to_do);
    assert_true(plan.set_up_capture);
    assert_int_equal(plan.nsteps, 0);
    stm_migrate_plan_free(&plan);
    migrate_result res;
    assert_int_equal(stm_migrate_run(m, &o, &res, &err), STM_OK);
    assert_true(stm_migrate_is_prepared(m));
    assert_null(res.backup_path); /* no migration ran: no backup */
    assert_true(res.capture_set_up);
    assert_int_equal(res.nsteps, 0);
    assert_string_equal(stm_buf_str(&e.log), "capture 4\n");
    stm_migrate_result_free(&res);
    s_events_free(&e);
    stm_migrate_destroy(&m);
    assert_int_equal(s_triggers(f->db), 16);
    stm_id stamped;
    s_store_version_id(f->db, &stamped);
    lineage_t *l = s_lineage(TASKS);
    assert_true(stm_id_equal(&stamped, &stm_lineage_head(l)->id));
    stm_lineage_destroy(&l);
}

static void test_adoption_refuses_versions_the_directory_lacks(void **state)
{
    s_fixture *f = *state;
    s_make_old_style(f->db, 4, "INSERT INTO schema_version VALUES (5, '2020', 'later')");
    unsigned char before[32], after[32];
    s_hash_file(f->db, before);
    migrate_t *m = s_open(f->db, TASKS);
    assert_int_equal(stm_migrate_drift_count(m), 1);
    assert_non_null(
        strstr(stm_migrate_drift_at(m, 0), "holds version 5, which schemas/tasks lacks"));
    migrate_options o = MIGRATE_OPTIONS_INIT;
    stm_error err = {0};
    assert_int_equal(stm_migrate_run(m, &o, NULL, &err), STM_EINPUT);
    assert_non_null(strstr(err.msg, "version 5"));
    stm_migrate_destroy(&m);
    s_hash_file(f->db, after);
    assert_memory_equal(before, after, 32);
    assert_false(s_has_column(f->db, "schema_version", "version_id"));
}

static void test_adoption_refuses_a_gap(void **state)
{
    s_fixture *f = *state;
    s_make_old_style(f->db, 3, "DELETE FROM schema_version WHERE version = 2");
    migrate_t *m = s_open(f->db, TASKS);
    assert_int_equal(stm_migrate_drift_count(m), 1);
    assert_non_null(strstr(stm_migrate_drift_at(m, 0), "no row for version 2"));
    migrate_options o = MIGRATE_OPTIONS_INIT;
    stm_error err = {0};
    assert_int_equal(stm_migrate_run(m, &o, NULL, &err), STM_EINPUT);
    stm_migrate_destroy(&m);
}

static void test_a_foreign_schema_version_layout_is_refused(void **state)
{
    s_fixture *f = *state;
    s_exec(f->db, "CREATE TABLE schema_version (major INTEGER, minor INTEGER)");
    stm_error err = {0};
    migrate_t *m = NULL;
    assert_int_equal(stm_migrate_open(f->db, TASKS, &m, &err), STM_EINPUT);
    assert_null(m);
    assert_non_null(strstr(err.msg, "(major, minor)"));
}

/* ---- a failing migration ---- */

static void test_a_failing_migration_leaves_the_previous_version(void **state)
{
    s_fixture *f = *state;
    const char *set = "tests/data/schemas/fails-on-data";
    s_migrate_ok(f->db, set, 1);
    /* Fine on the empty in-memory database, refused on this data. */
    s_exec(f->db, "INSERT INTO items (code) VALUES ('a'), ('a')");
    migrate_t *m = s_open(f->db, set);
    s_events e;
    s_events_init(&e);
    migrate_options o = s_told(&e);
    stm_error err = {0};
    migrate_result res;
    assert_int_equal(stm_migrate_run(m, &o, &res, &err), STM_EINPUT);
    /* The result says what was done before the failure. */
    assert_string_equal(stm_buf_str(&e.log), "backup\nstarted up 2\nfailed up 2\n");
    assert_non_null(res.backup_path);
    assert_non_null(strstr(err.msg, res.backup_path));
    assert_int_equal(res.nsteps, 0);
    assert_int_equal(res.version, 1);
    assert_false(res.replay_ran);
    stm_migrate_result_free(&res);
    s_events_free(&e);
    assert_non_null(
        strstr(err.msg, "tests/data/schemas/fails-on-data/002_unique_codes.sql:3: UNIQUE"));
    assert_non_null(strstr(err.msg, "(in: CREATE UNIQUE INDEX items_by_code"));
    assert_non_null(strstr(err.msg, "still at version 1"));
    assert_non_null(strstr(err.msg, "backup: "));
    assert_int_equal(stm_migrate_version(m), 1);
    stm_migrate_destroy(&m);
    assert_int_equal(s_version(f->db, set), 1);
    assert_false(s_has_column(f->db, "items", "note")); /* line 2 was rolled back too */
    assert_int_equal(s_triggers(f->db), 4);             /* capture as before */
    assert_int_equal(s_int(f->db, "SELECT count(*) FROM items"), 2);
    /* Fixing the data lets it through. */
    s_exec(f->db, "UPDATE items SET code = 'b' WHERE id = 2");
    s_migrate_ok(f->db, set, MIGRATE_HEAD);
    assert_int_equal(s_version(f->db, set), 2);
}

/* A run is one transaction with a savepoint a step: the steps before a failing one
 * commit, with capture set up for the version they reached. */
static void test_a_failing_step_keeps_the_steps_before_it(void **state)
{
    s_fixture *f = *state;
    char *set = s_path(f->dir, "set");
    assert_int_equal(mkdir(set, 0755), 0);
    static const char v1[] = "CREATE TABLE items (id INTEGER PRIMARY KEY, code TEXT);\n";
    static const char v2[] = "ALTER TABLE items ADD COLUMN note TEXT;\n";
    static const char v3[] = "CREATE UNIQUE INDEX items_by_code ON items(code);\n";
    tu_write_bytes(set, "001_items.sql", v1, sizeof v1 - 1);
    tu_write_bytes(set, "002_note.sql", v2, sizeof v2 - 1);
    tu_write_bytes(set, "003_unique.sql", v3, sizeof v3 - 1);
    s_migrate_ok(f->db, set, 1);
    s_exec(f->db, "INSERT INTO items (code) VALUES ('a'), ('a')");
    migrate_t *m = s_open(f->db, set);
    s_events e;
    s_events_init(&e);
    migrate_options o = s_told(&e);
    o.backup = false;
    stm_error err = {0};
    migrate_result res;
    assert_int_equal(stm_migrate_run(m, &o, &res, &err), STM_EINPUT);
    assert_string_equal(stm_buf_str(&e.log),
                        "started up 2\ndone up 2\nstarted up 3\nfailed up 3\n");
    assert_int_equal(res.nsteps, 1);
    assert_int_equal(res.version, 2);
    assert_non_null(strstr(err.msg, "migration 3 was rolled back: the database is still at "
                                    "version 2"));
    stm_migrate_result_free(&res);
    s_events_free(&e);
    stm_migrate_destroy(&m);
    assert_int_equal(s_version(f->db, set), 2);
    assert_true(s_has_column(f->db, "items", "note"));
    assert_int_equal(
        s_int(f->db, "SELECT count(*) FROM sqlite_schema WHERE name = 'items_by_code'"), 0);
    /* Capture for version 2: its triggers there, stamping version 2's id, and a write
     * to the new column queued. */
    assert_int_equal(s_triggers(f->db), 4);
    lineage_t *l = s_lineage(set);
    stm_id at;
    s_store_version_id(f->db, &at);
    assert_true(stm_id_equal(&at, &stm_lineage_version_at(l, 1)->id));
    stm_lineage_destroy(&l);
    long long queued = s_int(f->db, "SELECT count(*) FROM stemma_pending");
    s_exec(f->db, "UPDATE items SET note = 'n' WHERE id = 1");
    assert_int_equal(s_int(f->db, "SELECT count(*) FROM stemma_pending"), queued + 1);
    free(set);
}

static void test_a_new_file_whose_first_migration_fails_is_not_left(void **state)
{
    s_fixture *f = *state;
    /* The disk fills during the first migration: files may grow to 64 KiB only (a write
     * past that fails with EFBIG as one past a full disk fails with ENOSPC). */
    const char *set = "tests/data/schemas/big-seed";
    migrate_t *m = s_open(f->db, set);
    struct rlimit was;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &was), 0);
    void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN);
    struct rlimit small = {64 * 1024, was.rlim_max};
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
    migrate_options o = MIGRATE_OPTIONS_INIT;
    stm_error err = {0};
    stm_err rc = stm_migrate_run(m, &o, NULL, &err);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &was), 0);
    signal(SIGXFSZ, old_handler);
    stm_migrate_destroy(&m);
    assert_int_not_equal(rc, STM_OK);
    /* The run's one commit is what fails. */
    if (!strstr(err.msg, "nothing was committed: the database is still at version 0"))
        fail_msg("%s", err.msg);
    assert_false(s_exists(f->db));
}

static void test_exclude_lets_a_composite_key_table_stay_local(void **state)
{
    s_fixture *f = *state;
    const char *set = "tests/data/schemas/composite-key";
    migrate_t *m = s_open(f->db, set);
    const char *exclude[] = {"note_links"};
    migrate_options o = MIGRATE_OPTIONS_INIT;
    o.exclude = exclude;
    o.nexclude = 1;
    stm_error err = {0};
    if (stm_migrate_run(m, &o, NULL, &err) != STM_OK)
        fail_msg("%s", err.msg);
    stm_migrate_destroy(&m);
    assert_int_equal(s_int(f->db, "SELECT count(*) FROM stemma_exclude WHERE tbl = 'note_links'"),
                     1);
    assert_int_equal(s_triggers(f->db), 4); /* notes only */
    s_exec(f->db, "INSERT INTO notes VALUES ('n1', 'x'), ('n2', 'y');"
                  "INSERT INTO note_links VALUES ('n1', 'n2')");
    assert_int_equal(s_int(f->db, "SELECT count(*) FROM temp.ops WHERE tbl = 'note_links'"), 0);
}

/* "name:kind name:kind ..." of a list of tables not synced, for comparing. */
static void s_unsynced_str(const syncable_table *t, size_t n, char *out, size_t size)
{
    out[0] = '\0';
    for (size_t i = 0; i < n; i++)
        snprintf(out + strlen(out), size - strlen(out), "%s%s:%s", i ? " " : "", t[i].name,
                 stm_syncable_reason_name(t[i].reason));
}

/* The plan, the result and status name every table that is not synced, each with why:
 * no key, virtual, excluded (the options' and stemma_exclude's); not the composite key. */
static void test_plans_results_and_status_name_the_tables_not_synced(void **state)
{
    s_fixture *f = *state;
    const char *set = "tests/data/schemas/unsynced";
    char got[256];
    migrate_t *m = s_open(f->db, set);
    syncable_table *t = NULL;
    assert_int_equal(stm_migrate_unsynced(m, &t), 0); /* version 0: no table at all */
    assert_null(t);
    const char *exclude[] = {"drafts"};
    migrate_options o = MIGRATE_OPTIONS_INIT;
    o.to = 1;
    o.exclude = exclude;
    o.nexclude = 1;
    migrate_plan plan;
    stm_error err = {0};
    assert_int_equal(stm_migrate_run_plan(m, &o, &plan, &err), STM_OK);
    s_unsynced_str(plan.unsynced, plan.nunsynced, got, sizeof got);
    assert_string_equal(got, "drafts:excluded peers:no_key");
    stm_migrate_plan_free(&plan);
    migrate_result res;
    if (stm_migrate_run(m, &o, &res, &err) != STM_OK)
        fail_msg("%s", err.msg);
    s_unsynced_str(res.unsynced, res.nunsynced, got, sizeof got);
    assert_string_equal(got, "drafts:excluded peers:no_key");
    stm_migrate_result_free(&res);
    assert_null(res.unsynced);
    stm_migrate_destroy(&m);

    /* Without the option: stemma_exclude remembers drafts, and version 2 adds search_fts. */
    m = s_open(f->db, set);
    size_t n = stm_migrate_unsynced(m, &t);
    s_unsynced_str(t, n, got, sizeof got);
    assert_string_equal(got, "drafts:excluded peers:no_key");
    stm_syncable_tables_free(t, n);
    o = (migrate_options)MIGRATE_OPTIONS_INIT;
    assert_int_equal(stm_migrate_run_plan(m, &o, &plan, &err), STM_OK);
    s_unsynced_str(plan.unsynced, plan.nunsynced, got, sizeof got);
    assert_string_equal(got, "drafts:excluded peers:no_key search_fts:virtual");
    stm_migrate_plan_free(&plan);
    if (stm_migrate_run(m, &o, &res, &err) != STM_OK)
        fail_msg("%s", err.msg);
    s_unsynced_str(res.unsynced, res.nunsynced, got, sizeof got);
    assert_string_equal(got, "drafts:excluded peers:no_key search_fts:virtual");
    stm_migrate_result_free(&res);
    /* Nothing to do: still said. */
    assert_int_equal(stm_migrate_run(m, &o, &res, &err), STM_OK);
    assert_true(res.nothing_to_do);
    assert_int_equal(res.nunsynced, 3);
    stm_migrate_result_free(&res);
    /* A plan refused after it was filled frees what it holds (no .down files here). */
    o.to = 1;
    assert_int_equal(stm_migrate_rollback_plan(m, &o, &plan, &err), STM_EINPUT); /* no .down */
    stm_migrate_plan_free(&plan);
    stm_migrate_destroy(&m);
    /* Capture agrees: triggers on notes and note_links only (4 each). */
    assert_int_equal(s_triggers(f->db), 8);
}

/* ---- dry run ---- */

static void test_a_dry_run_plans_and_changes_nothing(void **state)
{
    s_fixture *f = *state;
    s_migrate_ok(f->db, TASKS, 1);
    s_exec(f->db, "INSERT INTO lists (id, name) VALUES ('l1', 'Home')");
    unsigned char before[32], after[32];
    s_hash_file(f->db, before);
    migrate_t *m = s_open(f->db, TASKS);
    migrate_options o = MIGRATE_OPTIONS_INIT;
    stm_error err = {0};
    migrate_plan plan;
    s_capture c;
    s_capture_begin(&c);
    stm_err rc = stm_migrate_run_plan(m, &o, &plan, &err);
    assert_int_equal(s_capture_end(&c), 0); /* the migrator prints nothing */
    assert_int_equal(rc, STM_OK);
    assert_int_equal(stm_migrate_version(m), 1);
    /* The database as checked. */
    assert_true(plan.checked);
    assert_string_equal(plan.db_path, f->db);
    assert_true(plan.db_exists);
    assert_int_equal(plan.version, 1);
    assert_true(plan.has_id);
    assert_true(stm_id_equal(&plan.id, &stm_lineage_version_at(stm_migrate_lineage(m), 0)->id));
    assert_string_equal(plan.schemas_dir, TASKS);
    assert_int_equal(plan.nmigrations, 4);
    assert_int_equal(plan.ndrift, 0);
    /* What a run would do: steps 2, 3 and 4, after a backup. */
    assert_int_equal(plan.direction, MIGRATE_UP);
    assert_int_equal(plan.target, 4);
    assert_false(plan.nothing_to_do);
    assert_true(plan.backup);
    assert_false(plan.adopt);
    assert_false(plan.set_up_capture);
    assert_int_equal(plan.nsteps, 3);
    static const char *const files[] = {TASKS "/002_add_priority.sql",
                                        TASKS "/003_add_task_tags.sql",
                                        TASKS "/004_add_comments.sql"};
    for (size_t i = 0; i < 3; i++) {
        const migrate_step *s = &plan.steps[i];
        assert_int_equal(s->version, (int)i + 2);
        assert_int_equal(s->direction, MIGRATE_UP);
        assert_string_equal(s->file, files[i]);
        assert_string_equal(s->description,
                            stm_lineage_version_at(stm_migrate_lineage(m), i + 1)->description);
        assert_int_equal(s->ms, 0);
    }
    assert_non_null(strstr(plan.steps[1].sql, "ALTER TABLE tasks ADD COLUMN tags TEXT DEFAULT "
                                              "'[]';\n"));
    assert_int_equal(plan.nexclude, 0);
    assert_int_equal(plan.parked, 0);
    stm_migrate_plan_free(&plan);
    stm_migrate_plan_free(&plan); /* safe twice */
    /* Up to 2 only, without a backup, excluding a table. */
    const char *exclude[] = {"tags"};
    o.to = 2;
    o.backup = false;
    o.exclude = exclude;
    o.nexclude = 1;
    assert_int_equal(stm_migrate_run_plan(m, &o, &plan, &err), STM_OK);
    assert_int_equal(plan.target, 2);
    assert_false(plan.backup);
    assert_int_equal(plan.nsteps, 1);
    assert_int_equal(plan.steps[0].version, 2);
    assert_int_equal(plan.nexclude, 1);
    assert_string_equal(plan.exclude[0], "tags");
    stm_migrate_plan_free(&plan);
    /* Going back is refused, with the database described. */
    o = (migrate_options)MIGRATE_OPTIONS_INIT;
    o.to = 0;
    assert_int_equal(stm_migrate_run_plan(m, &o, &plan, &err), STM_EUSAGE);
    assert_true(plan.checked);
    assert_int_equal(plan.nsteps, 0);
    stm_migrate_plan_free(&plan);
    /* A target beyond the directory is refused before anything is checked. */
    o.to = 9;
    assert_int_equal(stm_migrate_run_plan(m, &o, &plan, &err), STM_EINPUT);
    assert_false(plan.checked);
    stm_migrate_plan_free(&plan);
    stm_migrate_destroy(&m);
    s_hash_file(f->db, after);
    assert_memory_equal(before, after, 32);
    assert_int_equal(s_count_files(f->dir, "app.db.v"), 0);
}

static void test_a_dry_run_does_not_create_the_file(void **state)
{
    s_fixture *f = *state;
    migrate_t *m = s_open(f->db, TASKS);
    migrate_options o = MIGRATE_OPTIONS_INIT;
    stm_error err = {0};
    migrate_plan plan;
    assert_int_equal(stm_migrate_run_plan(m, &o, &plan, &err), STM_OK);
    assert_false(plan.db_exists);
    assert_int_equal(plan.version, 0);
    assert_false(plan.has_id);
    assert_false(plan.backup); /* a new file: nothing to back up */
    assert_int_equal(plan.nsteps, 4);
    assert_int_equal(plan.steps[0].version, 1);
    stm_migrate_plan_free(&plan);
    o.to = 0;
    /* Nothing to roll back. */
    assert_int_equal(stm_migrate_rollback_plan(m, &o, &plan, &err), STM_EINPUT);
    assert_false(plan.checked);
    stm_migrate_plan_free(&plan);
    stm_migrate_destroy(&m);
    assert_false(s_exists(f->db));
}

static void test_a_rollback_plan_lists_the_down_files(void **state)
{
    s_fixture *f = *state;
    s_migrate_ok(f->db, TASKS, MIGRATE_HEAD);
    unsigned char before[32], after[32];
    s_hash_file(f->db, before);
    migrate_t *m = s_open(f->db, TASKS);
    migrate_options o = MIGRATE_OPTIONS_INIT;
    o.to = 1;
    stm_error err = {0};
    migrate_plan plan;
    assert_int_equal(stm_migrate_rollback_plan(m, &o, &plan, &err), STM_OK);
    assert_int_equal(plan.direction, MIGRATE_DOWN);
    assert_int_equal(plan.version, 4);
    assert_int_equal(plan.target, 1);
    assert_true(plan.backup);
    assert_int_equal(plan.nsteps, 3);
    static const char *const files[] = {TASKS "/004_add_comments.down.sql",
                                        TASKS "/003_add_task_tags.down.sql",
                                        TASKS "/002_add_priority.down.sql"};
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(plan.steps[i].version, 4 - (int)i);
        assert_int_equal(plan.steps[i].direction, MIGRATE_DOWN);
        assert_string_equal(plan.steps[i].file, files[i]);
    }
    assert_string_equal(plan.steps[0].description, "Comments on tasks");
    assert_non_null(strstr(plan.steps[0].sql, "DROP TABLE comments;"));
    stm_migrate_plan_free(&plan);
    o.to = 4;
    assert_int_equal(stm_migrate_rollback_plan(m, &o, &plan, &err), STM_OK);
    assert_true(plan.nothing_to_do);
    assert_int_equal(plan.nsteps, 0);
    stm_migrate_plan_free(&plan);
    stm_migrate_destroy(&m);
    s_hash_file(f->db, after);
    assert_memory_equal(before, after, 32);
}

/* ---- backups ---- */

static void test_the_backup_opens_at_the_old_version(void **state)
{
    s_fixture *f = *state;
    s_migrate_ok(f->db, TASKS, 2);
    s_exec(f->db, "INSERT INTO lists (id, name) VALUES ('l1', 'Home')");
    /* Names this second and the next are taken: the backup must not overwrite them. */
    time_t now = time(NULL);
    char taken[2][512];
    for (int i = 0; i < 2; i++) {
        time_t t = now + i;
        struct tm tm;
        char stamp[32];
        gmtime_r(&t, &tm);
        strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
        snprintf(taken[i], sizeof taken[i], "app.db.v2-%s.bak", stamp);
        tu_write(f->dir, taken[i], "not mine");
    }
    migrate_t *m = s_open(f->db, TASKS);
    migrate_options o = MIGRATE_OPTIONS_INIT;
    stm_error err = {0};
    migrate_result res;
    assert_int_equal(stm_migrate_run(m, &o, &res, &err), STM_OK);
    char *bak = strdup(res.backup_path);
    stm_migrate_result_free(&res);
    stm_migrate_destroy(&m);
    char *prefix = s_path(f->dir, "app.db.v2-");
    assert_int_equal(strncmp(bak, prefix, strlen(prefix)), 0);
    assert_int_equal(strcmp(bak + strlen(bak) - 4, ".bak"), 0);
    for (int i = 0; i < 2; i++) {
        char *p = s_path(f->dir, taken[i]);
        char *content = tu_read(p, NULL);
        assert_string_equal(content, "not mine");
        assert_string_not_equal(p, bak);
        free(content);
        free(p);
    }
    /* A complete database at version 2, with the data, in one plain file. */
    assert_int_equal(s_version(bak, TASKS), 2);
    assert_int_equal(s_int(bak, "SELECT count(*) FROM lists"), 1);
    char *ok = s_text(bak, "PRAGMA integrity_check");
    assert_string_equal(ok, "ok");
    free(ok);
    char *mode = s_text(bak, "PRAGMA journal_mode");
    assert_string_equal(mode, "delete");
    free(mode);
    assert_int_equal(s_version(f->db, TASKS), 4);
    free(prefix);
    free(bak);
}

static void test_no_backup_when_asked_or_nothing_pending(void **state)
{
    s_fixture *f = *state;
    s_migrate_ok(f->db, TASKS, 2);
    stm_error err = {0};
    assert_int_equal(s_migrate(f->db, TASKS, 3, false, &err), STM_OK);
    assert_int_equal(s_migrate(f->db, TASKS, 3, true, &err), STM_OK);
    assert_int_equal(s_count_files(f->dir, "app.db.v"), 0);
}

/* ---- rollback ---- */

static void test_rollback_runs_the_down_files(void **state)
{
    s_fixture *f = *state;
    s_migrate_ok(f->db, TASKS, MIGRATE_HEAD);
    s_exec(f->db, "INSERT INTO lists (id, name) VALUES ('l1', 'Home');"
                  "INSERT INTO tasks (id, list_id, title, priority) VALUES ('t1', 'l1', 'x', 3)");
    migrate_t *m = s_open(f->db, TASKS);
    migrate_options o = MIGRATE_OPTIONS_INIT;
    o.to = 1;
    stm_error err = {0};
    migrate_result res;
    if (stm_migrate_rollback(m, &o, &res, &err) != STM_OK)
        fail_msg("%s", err.msg);
    assert_int_equal(stm_migrate_version(m), 1);
    assert_non_null(res.backup_path);
    char *bak = strdup(res.backup_path);
    stm_migrate_result_free(&res);
    stm_migrate_destroy(&m);
    assert_int_equal(s_version(bak, TASKS), 4);
    assert_int_equal(s_int(f->db, "SELECT count(*) FROM schema_version"), 1);
    assert_false(s_has_column(f->db, "tasks", "priority"));
    assert_int_equal(s_int(f->db, "SELECT count(*) FROM sqlite_schema WHERE name = 'comments'"), 0);
    assert_int_equal(s_int(f->db, "SELECT count(*) FROM tasks"), 1);
    lineage_t *l = s_lineage(TASKS);
    stm_id stamped;
    s_store_version_id(f->db, &stamped);
    assert_true(stm_id_equal(&stamped, &stm_lineage_version_at(l, 0)->id));
    assert_int_equal(s_triggers(f->db), 12); /* lists, tasks, tags */
    long long before = s_int(f->db, "SELECT count(*) FROM temp.ops");
    s_exec(f->db, "UPDATE tasks SET title = 'y'");
    assert_int_equal(s_int(f->db, "SELECT count(*) FROM temp.ops"), before + 1);
    /* And all the way down, then up again. */
    m = s_open(f->db, TASKS);
    o.to = 0;
    o.backup = false;
    assert_int_equal(stm_migrate_rollback(m, &o, NULL, &err), STM_OK);
    assert_int_equal(stm_migrate_version(m), 0);
    stm_migrate_destroy(&m);
    assert_int_equal(s_int(f->db, "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND "
                                  "name NOT LIKE 'stemma%' AND name <> 'schema_version'"),
                     0);
    assert_int_equal(s_triggers(f->db), 0);
    s_migrate_ok(f->db, TASKS, MIGRATE_HEAD);
    assert_int_equal(s_version(f->db, TASKS), 4);
    stm_lineage_destroy(&l);
    free(bak);
}

static void test_rollback_refuses_a_missing_down_file(void **state)
{
    s_fixture *f = *state;
    char *set = s_copy_set(TASKS, f->dir, "tasks");
    s_remove(set, "003_add_task_tags.down.sql");
    s_migrate_ok(f->db, set, MIGRATE_HEAD);
    unsigned char before[32], after[32];
    s_hash_file(f->db, before);
    migrate_t *m = s_open(f->db, set);
    migrate_options o = MIGRATE_OPTIONS_INIT;
    o.to = 1;
    stm_error err = {0};
    assert_int_equal(stm_migrate_rollback(m, &o, NULL, &err), STM_EINPUT);
    char *expect = s_path(set, "003_add_task_tags.down.sql: missing");
    assert_non_null(strstr(err.msg, expect));
    free(expect);
    /* Rolling back above it is fine. */
    o.to = 3;
    o.backup = false;
    s_hash_file(f->db, after);
    assert_memory_equal(before, after, 32);
    assert_int_equal(stm_migrate_rollback(m, &o, NULL, &err), STM_OK);
    assert_int_equal(stm_migrate_version(m), 3);
    o.to = 5;
    assert_int_equal(stm_migrate_rollback(m, &o, NULL, &err), STM_EUSAGE);
    assert_non_null(strstr(err.msg, "stemma migrate --to 5"));
    stm_migrate_destroy(&m);
    assert_int_equal(s_count_files(f->dir, "app.db.v"), 0);
    free(set);
}

static void test_rollback_refuses_a_down_file_sqlite_refuses(void **state)
{
    s_fixture *f = *state;
    char *set = s_copy_set(TASKS, f->dir, "tasks");
    tu_write(set, "004_add_comments.down.sql", "DROP INDEX comments_by_task;\nDROP TABLE nope;\n");
    s_migrate_ok(f->db, set, MIGRATE_HEAD);
    unsigned char before[32], after[32];
    s_hash_file(f->db, before);
    migrate_t *m = s_open(f->db, set);
    migrate_options o = MIGRATE_OPTIONS_INIT;
    o.to = 2;
    stm_error err = {0};
    assert_int_equal(stm_migrate_rollback(m, &o, NULL, &err), STM_EINPUT);
    assert_non_null(strstr(err.msg, "004_add_comments.down.sql:2: no such table: nope"));
    assert_non_null(strstr(err.msg, "not changed"));
    stm_migrate_destroy(&m);
    s_hash_file(f->db, after);
    assert_memory_equal(before, after, 32);
    free(set);
}

/* ---- restore ---- */

static void test_restore_puts_a_backup_back_and_keeps_the_current(void **state)
{
    s_fixture *f = *state;
    s_migrate_ok(f->db, TASKS, 2);
    migrate_t *m = s_open(f->db, TASKS);
    migrate_options o = MIGRATE_OPTIONS_INIT;
    stm_error err = {0};
    migrate_result res;
    assert_int_equal(stm_migrate_run(m, &o, &res, &err), STM_OK);
    char *bak = strdup(res.backup_path);
    stm_migrate_result_free(&res);
    stm_migrate_destroy(&m);
    s_exec(f->db, "INSERT INTO lists (id, name) VALUES ('l1', 'after the backup')");
    backup_restored r;
    if (stm_backup_restore(f->db, bak, &r, &err) != STM_OK)
        fail_msg("%s", err.msg);
    assert_int_equal(r.version, 2);
    assert_int_equal(s_version(f->db, TASKS), 2);
    assert_int_equal(s_int(f->db, "SELECT count(*) FROM lists"), 0);
    /* What was replaced is kept. */
    assert_non_null(r.saved_path);
    assert_int_equal(s_version(r.saved_path, TASKS), 4);
    assert_int_equal(s_int(r.saved_path, "SELECT count(*) FROM lists"), 1);
    /* The restored database migrates on as usual. */
    s_migrate_ok(f->db, TASKS, MIGRATE_HEAD);
    stm_backup_restored_free(&r);
    /* Bad backups are refused, and the database is left alone. */
    tu_write(f->dir, "junk.bak", "this is not a database, not even close to one........");
    char *junk = s_path(f->dir, "junk.bak");
    assert_int_equal(stm_backup_restore(f->db, junk, &r, &err), STM_EINPUT);
    assert_non_null(strstr(err.msg, "not a usable SQLite database"));
    assert_null(r.saved_path);
    char *missing = s_path(f->dir, "missing.bak");
    assert_int_equal(stm_backup_restore(f->db, missing, &r, &err), STM_EINPUT);
    assert_int_equal(stm_backup_restore(f->db, f->db, NULL, &err), STM_EUSAGE);
    assert_int_equal(s_version(f->db, TASKS), 4);
    free(missing);
    free(junk);
    free(bak);
}

static void test_restore_refuses_a_damaged_backup(void **state)
{
    s_fixture *f = *state;
    s_migrate_ok(f->db, TASKS, MIGRATE_HEAD);
    char *copy = s_path(f->dir, "damaged.db");
    /* A copy with its tasks table's root page overwritten by another table's. */
    sqlite3 *c = s_conn(f->db);
    char sql[600];
    snprintf(sql, sizeof sql, "VACUUM INTO '%s'", copy);
    assert_int_equal(sqlite3_exec(c, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(c);
    c = NULL;
    assert_int_equal(sqlite3_open(copy, &c), SQLITE_OK);
    assert_int_equal(sqlite3_exec(c,
                                  "PRAGMA writable_schema = ON;"
                                  "UPDATE sqlite_schema SET rootpage = (SELECT rootpage FROM "
                                  "sqlite_schema WHERE name = 'lists') WHERE name = 'tags';",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(c);
    stm_error err = {0};
    backup_restored r;
    assert_int_equal(stm_backup_restore(f->db, copy, &r, &err), STM_ECORRUPT);
    assert_null(r.saved_path);
    assert_non_null(strstr(err.msg, "fails SQLite's integrity check"));
    assert_int_equal(s_count_files(f->dir, "app.db.v"), 0);
    free(copy);
}

/* ---- progress, status, history ---- */

static void test_long_steps_are_told_as_running(void **state)
{
    s_fixture *f = *state;
    const char *set = "tests/data/schemas/drop-column";
    s_migrate_ok(f->db, set, 1);
    /* Enough rows that dropping a column runs many SQLite instructions: the progress
     * handler is called every thousand. */
    s_exec(f->db, "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000)"
                  " INSERT INTO people SELECT 'p' || i, 'name ' || i, 'nick' FROM n");
    s_events e;
    s_events_init(&e);
    migrate_t *m = s_open(f->db, set);
    migrate_options o = s_told(&e);
    o.progress_after_ms = 0; /* every step is "long" */
    o.backup = false;
    stm_error err = {0};
    assert_int_equal(stm_migrate_run(m, &o, NULL, &err), STM_OK);
    stm_migrate_destroy(&m);
    assert_true(e.running > 0);
    assert_int_equal(e.running_version, 2);
    assert_int_equal(e.stray, 0); /* only between the step's start and its end */
    assert_string_equal(stm_buf_str(&e.log), "started up 2\ndone up 2\nreplayed 0 0\n");
    s_events_free(&e);
    /* With the default threshold, quick steps are not told as running. */
    s_events_init(&e);
    char *other = s_path(f->dir, "other.db");
    m = s_open(other, TASKS);
    free(other);
    o = s_told(&e);
    assert_int_equal(stm_migrate_run(m, &o, NULL, &err), STM_OK);
    stm_migrate_destroy(&m);
    assert_int_equal(e.running, 0);
    s_events_free(&e);
}

static void test_a_run_tells_each_step_and_prints_nothing(void **state)
{
    s_fixture *f = *state;
    s_migrate_ok(f->db, TASKS, 1);
    s_events e;
    s_events_init(&e);
    migrate_t *m = s_open(f->db, TASKS);
    migrate_options o = s_told(&e);
    migrate_result res;
    s_run_silently(m, &o, MIGRATE_UP, &res);
    assert_string_equal(stm_buf_str(&e.log), "backup\n"
                                             "started up 2\ndone up 2\n"
                                             "started up 3\ndone up 3\n"
                                             "started up 4\ndone up 4\n"
                                             "replayed 0 0\n");
    assert_int_equal(e.stray, 0);
    const lineage_t *l = stm_migrate_lineage(m);
    assert_int_equal(res.direction, MIGRATE_UP);
    assert_int_equal(res.from, 1);
    assert_int_equal(res.version, 4);
    assert_true(res.has_id);
    assert_true(stm_id_equal(&res.id, &stm_lineage_head(l)->id));
    assert_false(res.nothing_to_do);
    assert_non_null(res.backup_path);
    assert_string_equal(res.backup_path, e.backup);
    assert_int_equal(s_version(res.backup_path, TASKS), 1);
    assert_false(res.adopted);
    assert_false(res.capture_set_up);
    assert_int_equal(res.nsteps, 3);
    for (size_t i = 0; i < 3; i++) {
        const migrate_step *s = &res.steps[i];
        assert_int_equal(s->version, (int)i + 2);
        assert_int_equal(s->direction, MIGRATE_UP);
        assert_non_null(strstr(s->file, TASKS "/00"));
        assert_string_equal(s->description, stm_lineage_version_at(l, i + 1)->description);
        assert_null(s->sql);
        assert_true(s->ms >= 0);
    }
    assert_true(res.replay_ran);
    assert_int_equal(res.replayed, 0);
    assert_int_equal(res.parked, 0);
    stm_migrate_result_free(&res);
    stm_migrate_result_free(&res); /* safe twice */
    s_events_free(&e);
    /* Again: nothing to do, nothing told. */
    s_events_init(&e);
    o = s_told(&e);
    s_run_silently(m, &o, MIGRATE_UP, &res);
    assert_true(res.nothing_to_do);
    assert_int_equal(res.from, 4);
    assert_int_equal(res.version, 4);
    assert_null(res.backup_path);
    assert_int_equal(res.nsteps, 0);
    assert_false(res.replay_ran);
    assert_string_equal(stm_buf_str(&e.log), "");
    stm_migrate_result_free(&res);
    s_events_free(&e);
    stm_migrate_destroy(&m);
}

static void test_a_rollback_tells_each_step(void **state)
{
    s_fixture *f = *state;
    s_migrate_ok(f->db, TASKS, MIGRATE_HEAD);
    s_events e;
    s_events_init(&e);
    migrate_t *m = s_open(f->db, TASKS);
    migrate_options o = s_told(&e);
    o.to = 2;
    o.backup = false;
    migrate_result res;
    s_run_silently(m, &o, MIGRATE_DOWN, &res);
    assert_string_equal(stm_buf_str(&e.log),
                        "started down 4\ndone down 4\nstarted down 3\ndone down 3\n");
    assert_int_equal(res.direction, MIGRATE_DOWN);
    assert_int_equal(res.from, 4);
    assert_int_equal(res.version, 2);
    assert_true(stm_id_equal(&res.id, &stm_lineage_version_at(stm_migrate_lineage(m), 1)->id));
    assert_null(res.backup_path);
    assert_int_equal(res.nsteps, 2);
    assert_string_equal(res.steps[0].file, TASKS "/004_add_comments.down.sql");
    assert_string_equal(res.steps[1].file, TASKS "/003_add_task_tags.down.sql");
    assert_false(res.replay_ran);
    stm_migrate_result_free(&res);
    s_events_free(&e);
    stm_migrate_destroy(&m);
}

/* Applies one write to tasks.tags from another node to db (at version 2, without that
 * column): it is parked. */
static void s_park_a_tags_write(const char *db)
{
    store_t *store = NULL;
    stm_error err = {0};
    assert_int_equal(stm_store_open(db, STORE_OPEN_EXISTING, &store, &err), STM_OK);
    applier_t *a = stm_applier_new(store, NULL, NULL);
    opbatch_t *b = stm_opbatch_new();
    op_t op;
    memset(&op, 0, sizeof op);
    memset(op.origin.bytes, 0xa1, STM_ID_BYTES);
    op.seq = 1;
    op.hlc = 1000;
    op.table = "tasks";
    op.pk.type = VALUE_TEXT;
    op.pk.bytes = "t1";
    op.pk.len = 2;
    op.column = "tags";
    op.affinity = 'T';
    op.value.type = VALUE_TEXT;
    op.value.bytes = "[\"shop\"]";
    op.value.len = strlen(op.value.bytes);
    stm_opbatch_add(b, &op);
    apply_stats st = {0};
    if (stm_applier_apply(a, b, &st, &err) != STM_OK)
        fail_msg("%s", err.msg);
    assert_int_equal(st.parked, 1);
    stm_opbatch_destroy(&b);
    stm_applier_destroy(&a);
    stm_store_destroy(&store);
}

static void test_parked_operations_replay_after_the_steps(void **state)
{
    s_fixture *f = *state;
    s_migrate_ok(f->db, TASKS, 2);
    s_exec(f->db, "INSERT INTO lists (id, name) VALUES ('l1', 'Home');"
                  "INSERT INTO tasks (id, list_id, title) VALUES ('t1', 'l1', 'Milk')");
    s_park_a_tags_write(f->db);
    migrate_t *m = s_open(f->db, TASKS);
    migrate_options o = MIGRATE_OPTIONS_INIT;
    o.to = 3;
    stm_error err = {0};
    migrate_plan plan;
    assert_int_equal(stm_migrate_run_plan(m, &o, &plan, &err), STM_OK);
    assert_int_equal(plan.parked, 1); /* a replay pending */
    stm_migrate_plan_free(&plan);
    s_events e;
    s_events_init(&e);
    o = s_told(&e);
    o.to = 3;
    o.backup = false;
    migrate_result res;
    if (stm_migrate_run(m, &o, &res, &err) != STM_OK)
        fail_msg("%s", err.msg);
    assert_string_equal(stm_buf_str(&e.log), "started up 3\ndone up 3\nreplayed 1 0\n");
    assert_true(res.replay_ran);
    assert_int_equal(res.replayed, 1);
    assert_int_equal(res.parked, 0);
    stm_migrate_result_free(&res);
    s_events_free(&e);
    stm_migrate_destroy(&m);
    char *tags = s_text(f->db, "SELECT tags FROM tasks WHERE id = 't1'");
    assert_string_equal(tags, "[\"shop\"]");
    free(tags);
}

static void test_status_of_a_missing_file_is_version_0(void **state)
{
    s_fixture *f = *state;
    migrate_t *m = s_open(f->db, TASKS);
    stm_id id;
    assert_false(stm_migrate_version_id(m, &id));
    assert_true(stm_id_is_zero(&id));
    assert_int_equal(stm_migrate_record_count(m), 0);
    assert_false(stm_migrate_needs_adoption(m));
    stm_migrate_destroy(&m);
    assert_false(s_exists(f->db));
    /* A file that is not SQLite is bad input. */
    tu_write(f->dir, "app.db", "hello, this is a text file and not a database at all....");
    stm_error err = {0};
    assert_int_equal(stm_migrate_open(f->db, TASKS, &m, &err), STM_EINPUT);
    assert_null(m);
}

static void test_history_reads_what_was_applied(void **state)
{
    s_fixture *f = *state;
    migrate_record *r = NULL;
    size_t n = 0;
    stm_error err = {0};
    assert_int_equal(stm_migrate_history_read(f->db, &r, &n, &err), STM_EINPUT); /* no file */
    s_exec(f->db, "CREATE TABLE t (x)");
    assert_int_equal(stm_migrate_history_read(f->db, &r, &n, &err), STM_OK);
    assert_int_equal(n, 0);
    stm_migrate_records_free(&r, n);
    s_migrate_ok(f->db, TASKS, 2);
    assert_int_equal(stm_migrate_history_read(f->db, &r, &n, &err), STM_OK);
    assert_int_equal(n, 2);
    assert_int_equal(r[1].version, 2);
    assert_string_equal(r[1].description, "Tasks get a priority");
    assert_true(r[1].has_id);
    lineage_t *l = s_lineage(TASKS);
    assert_true(stm_id_equal(&r[1].id, &stm_lineage_version_at(l, 1)->id));
    stm_lineage_destroy(&l);
    stm_migrate_records_free(&r, n);
    assert_null(r);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, s_setup, s_teardown)
    const struct CMUnitTest tests[] = {
        T(test_fresh_migrate_to_head),
        T(test_rerun_is_a_noop),
        T(test_to_stops_there_and_refuses_bad_targets),
        T(test_writes_are_captured_with_the_new_version_id),
        T(test_a_migration_dropping_a_column_works_with_triggers_installed),
        T(test_a_changed_file_is_drift),
        T(test_a_version_the_directory_lacks_is_drift),
        T(test_an_id_without_a_checksum_names_the_earlier_file),
        T(test_an_older_schema_version_is_adopted),
        T(test_an_older_table_at_head_is_adopted_and_set_up),
        T(test_rollback_adopts_an_older_table_first),
        T(test_capture_is_set_up_again_when_stemma_tables_are_gone),
        T(test_adoption_refuses_versions_the_directory_lacks),
        T(test_adoption_refuses_a_gap),
        T(test_a_foreign_schema_version_layout_is_refused),
        T(test_a_failing_migration_leaves_the_previous_version),
        T(test_a_failing_step_keeps_the_steps_before_it),
        T(test_a_new_file_whose_first_migration_fails_is_not_left),
        T(test_exclude_lets_a_composite_key_table_stay_local),
        T(test_plans_results_and_status_name_the_tables_not_synced),
        T(test_a_dry_run_plans_and_changes_nothing),
        T(test_a_dry_run_does_not_create_the_file),
        T(test_a_rollback_plan_lists_the_down_files),
        T(test_the_backup_opens_at_the_old_version),
        T(test_no_backup_when_asked_or_nothing_pending),
        T(test_rollback_runs_the_down_files),
        T(test_rollback_refuses_a_missing_down_file),
        T(test_rollback_refuses_a_down_file_sqlite_refuses),
        T(test_restore_puts_a_backup_back_and_keeps_the_current),
        T(test_restore_refuses_a_damaged_backup),
        T(test_long_steps_are_told_as_running),
        T(test_a_run_tells_each_step_and_prints_nothing),
        T(test_a_rollback_tells_each_step),
        T(test_parked_operations_replay_after_the_steps),
        T(test_status_of_a_missing_file_is_version_0),
        T(test_history_reads_what_was_applied),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
