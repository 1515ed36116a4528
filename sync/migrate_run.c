/* migrate_run.c - carrying out a plan (migrate_plan.c) on the real database. The
 * invariants it keeps are listed in migrate.h; the order of work in every command that
 * changes the database is:
 *
 *   plan (read-only connection) -> reopen writable and check again -> backup ->
 *   adopt an older tool's schema_version -> one transaction per step
 *
 * so that anything refused is refused before the first write. Each of these is told
 * to the caller's progress callback as it happens and kept in the result; nothing is
 * printed here. */
#include "migrate_internal.h"
#include "apply.h"
#include "backup.h"
#include "carry.h"
#include "migrate_ops.h"
#include "capture.h"
#include "dropped.h"
#include "oplog.h"
#include "base/buf.h"
#include "base/mem.h"
#include "base/clock.h"
#include "lineage/sqlscript.h"

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The columns stemma's schema_version has; the first three are an older tool's. */
static const char *const s_create_table = "CREATE TABLE IF NOT EXISTS schema_version ("
                                          "  version INTEGER PRIMARY KEY,"
                                          "  applied_at TEXT NOT NULL,"
                                          "  description TEXT NOT NULL,"
                                          "  version_id TEXT,"
                                          "  checksum TEXT"
                                          ")";

/* How often (in SQLite VM instructions) the progress handler looks at the clock. */
#define S_PROGRESS_INSTRUCTIONS 1000

/* Internal (migrate_internal.h). */
void stm_migrate_tell(const migrate_run_ctx *run, const migrate_event *ev)
{
    if (run->o->progress)
        run->o->progress(ev, run->o->progress_user);
}

/* The version id of version n of the directory (zero for 0). Internal:
 * migrate_internal.h. */
stm_id stm_migrate_id_of(const migrate_t *self, int n)
{
    stm_id zero = {{0}};
    return n == 0 ? zero : stm_lineage_version_at(self->lineage, (size_t)n - 1)->id;
}

/* ---- progress ---- */

/* STEP_RUNNING events for one step, told from SQLite's progress handler. */
typedef struct {
    const migrate_run_ctx *run; /* whom to tell */
    const migrate_step *step;   /* the step running, lent */
    int64_t start;              /* stm_monotime_ms() when the step began */
    long long told;             /* when STEP_RUNNING was last told, -1 before */
    uint64_t rows;              /* rows of the database's own tables written so far */
} s_progress;

/* SQLite's update hook: a row of a table with rowids was inserted, updated or deleted.
 * stemma's own tables (the capture queue the triggers fill, schema_version's record of
 * the step) are not the migration's work. Tables WITHOUT ROWID are not told of: their
 * rows go uncounted. */
static void s_row_written(void *arg, int op, const char *db_name, const char *table,
                          sqlite3_int64 rowid)
{
    (void)op;
    (void)db_name;
    (void)rowid;
    s_progress *p = arg;
    if (strncmp(table, "stemma_", 7) != 0 && strcmp(table, "schema_version") != 0)
        p->rows++;
}

static int s_progress_tick(void *arg)
{
    s_progress *p = arg;
    long long now = stm_monotime_ms();
    if (now - p->start < p->run->o->progress_after_ms ||
        (p->told >= 0 && now - p->told < MIGRATE_PROGRESS_EVERY_MS))
        return 0;
    migrate_event ev = {.kind = MIGRATE_EVENT_STEP_RUNNING,
                        .step = p->step,
                        .elapsed_ms = now - p->start,
                        .rows = p->rows};
    stm_migrate_tell(p->run, &ev);
    p->told = now;
    return 0; /* never interrupt the migration */
}

static void s_progress_start(s_progress *p, const migrate_run_ctx *run, const migrate_step *step,
                             sqlite3 *db)
{
    p->run = run;
    p->step = step;
    p->start = stm_monotime_ms();
    p->told = -1;
    p->rows = 0;
    /* Without a callback there is no one to tell: spare SQLite the handlers. */
    if (run->o->progress) {
        sqlite3_progress_handler(db, S_PROGRESS_INSTRUCTIONS, s_progress_tick, p);
        sqlite3_update_hook(db, s_row_written, p);
    }
}

/* Stops the handler; returns how long the step ran. */
static long long s_progress_stop(s_progress *p, sqlite3 *db)
{
    if (p->run->o->progress) {
        sqlite3_progress_handler(db, 0, NULL, NULL);
        sqlite3_update_hook(db, NULL, NULL);
    }
    return stm_monotime_ms() - p->start;
}

/* ---- backup ---- */

/* Makes the run's backup and tells where it is. */
static stm_err s_backup_before_change(const migrate_run_ctx *run, stm_error *err)
{
    migrate_t *self = run->self;
    stm_err rc = stm_backup_make(stm_store_db(self->store), self->db_path, self->version,
                                 &run->res->backup_path, err);
    if (rc == STM_OK) {
        migrate_event ev = {.kind = MIGRATE_EVENT_BACKUP_WRITTEN, .path = run->res->backup_path};
        stm_migrate_tell(run, &ev);
    }
    return rc;
}

/* ---- transactions ---- */

/* Internal (migrate_internal.h). */
void stm_migrate_tx_rollback(migrate_t *self)
{
    /* What the applier knows of the transaction (the sequences it took) goes with it. */
    stm_applier_destroy(&self->applier);
    sqlite3 *db = stm_store_db(self->store);
    /* A failed statement may have ended the transaction already. */
    if (!sqlite3_get_autocommit(db))
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
}

/* Inside a step's transaction, which holds the write lock: checks that no other
 * process moved the database since it was checked. Two migrates (or a migrate and a
 * rollback) started together both plan from the same version; the first to commit a
 * step moves it, and the other finds that here, at its first step, having changed
 * nothing. It says so, with the version the database is really at (self->moved_to),
 * rather than retry a plan made for another version. */
static stm_err s_expect_version(migrate_t *self, int expected, stm_error *err)
{
    sqlite3_stmt *stmt = NULL;
    if (sqlite3_prepare_v2(stm_store_db(self->store),
                           "SELECT coalesce(max(version), 0) FROM schema_version", -1, &stmt,
                           NULL) != SQLITE_OK)
        return stm_store_error(self->store, err, "reading schema_version");
    stm_err rc = STM_OK;
    if (sqlite3_step(stmt) != SQLITE_ROW)
        rc = stm_store_error(self->store, err, "reading schema_version");
    else if (sqlite3_column_int64(stmt, 0) != expected) {
        sqlite3_int64 now = sqlite3_column_int64(stmt, 0);
        self->moved_to = now >= 0 && now <= SCHEMASET_MAX_VERSIONS ? (int)now : 0;
        rc = stm_error_set(err, STM_EDB,
                           "%s: another process moved it from version %d to version %lld after "
                           "this run had checked it (a second migrate or rollback at once?)",
                           self->db_path, expected, (long long)now);
    }
    sqlite3_finalize(stmt);
    return rc;
}

/* stm_migrate_tx_capture, and (triggers false) all of it but the triggers: the marks
 * and the catalog follow the schema as it now is, the triggers are left as they are. */
static stm_err s_capture(migrate_t *self, const migrate_options *o, const stm_id *id, bool triggers,
                         stm_error *err)
{
    stm_err rc = stm_store_prepare(self->store, err);
    for (size_t i = 0; i < o->nexclude && rc == STM_OK; i++)
        rc = stm_capture_exclude(self->store, o->exclude[i], true, err);
    if (rc == STM_OK)
        rc = stm_store_set_version_id(self->store, id, err);
    /* Read from the schema as the step before left it: only the tables it changed are
     * read again. A step rolled back leaves a catalog that may be ahead of the file:
     * only what is the same text is taken from it, so it is as good as any. */
    catalog_t *now = NULL;
    if (rc == STM_OK)
        rc = triggers ? stm_capture_install_since(self->store, self->catalog, &now, err)
                      : stm_capture_mark_since(self->store, self->catalog, &now, err);
    if (rc == STM_OK) {
        stm_catalog_destroy(&self->catalog);
        self->catalog = now;
    }
    return rc;
}

/* Ends a transaction's work: stemma's tables, the exclusions, the version id the
 * triggers stamp, and triggers for the schema as it now is. Internal:
 * migrate_internal.h. */
stm_err stm_migrate_tx_capture(migrate_t *self, const migrate_options *o, const stm_id *id,
                               stm_error *err)
{
    return s_capture(self, o, id, true, err);
}

/* Begins a transaction at version expected; unhook: every capture trigger removed
 * (a run of steps, which installs them again at its end). Internal:
 * migrate_internal.h. */
stm_err stm_migrate_tx_begin(migrate_t *self, int expected, bool unhook, stm_error *err)
{
    stm_err rc = STM_OK;
    /* A bulk write still queued is collected first, a slice at a time (apply.h), so
     * that the step's transaction, which collects what is left, neither holds the lock
     * nor the operations of all of it at once. */
    if (stm_store_is_prepared(self->store) && stm_store_check_format(self->store, err) == STM_OK) {
        if (!self->applier)
            self->applier = stm_applier_new(self->store, NULL, NULL);
        rc = stm_applier_catch_up(self->applier, err);
    }
    if (rc == STM_OK)
        rc = stm_store_exec(self->store, "BEGIN IMMEDIATE", err);
    /* Changes still queued by the triggers become operations under the schema they
     * were made in, before a migration changes their columns; in the migration's own
     * transaction, so that nothing the application writes falls in between. */
    bool prepared = rc == STM_OK && stm_store_is_prepared(self->store);
    if (prepared) {
        /* Tables of another format cannot be collected from: refused saying what to do. */
        rc = stm_store_check_format(self->store, err);
        /* One applier for the run: its catalog of the step before is read again only
         * where the step changed it. */
        if (!self->applier)
            self->applier = stm_applier_new(self->store, NULL, NULL);
        if (rc == STM_OK)
            rc = stm_applier_collect(self->applier, err);
    }
    if (rc == STM_OK)
        rc = stm_store_exec(self->store, s_create_table, err);
    if (rc == STM_OK)
        rc = s_expect_version(self, expected, err);
    /* ALTER TABLE makes SQLite read the whole schema again, and the triggers are most
     * of it (four a synced table): without them a run's statements cost what they
     * cost the sqlite3 shell. Nothing is captured meanwhile: the run holds the write
     * lock, and what its steps write is recorded by migrate_ops. */
    if (rc == STM_OK && prepared && unhook)
        rc = stm_capture_uninstall(self->store, err);
    return rc;
}

/* Internal (migrate_internal.h). */
stm_err stm_migrate_tx_commit(migrate_t *self, stm_error *err)
{
    return stm_store_commit(self->store, err);
}

/* After another process moved the database (s_expect_version): says what this run did
 * before, and makes the result tell the version the database is really at. Internal:
 * migrate_internal.h. */
void stm_migrate_tell_moved(const migrate_run_ctx *run, stm_error *err)
{
    migrate_t *self = run->self;
    migrate_result *res = run->res;
    if (res->nsteps)
        stm_error_append(err, "this run had taken it to version %d before that", res->version);
    else
        stm_error_append(err, "this run changed nothing; 'stemma status' says where it is now");
    res->version = self->moved_to;
    res->has_id = self->moved_to > 0 && (size_t)self->moved_to <= stm_lineage_count(self->lineage);
    if (res->has_id)
        res->id = stm_migrate_id_of(self, self->moved_to);
    else
        memset(&res->id, 0, sizeof res->id);
}

/* Records version v as applied (in a step's transaction). Internal:
 * migrate_internal.h. */
stm_err stm_migrate_record_version(migrate_t *self, const lineage_version *v, stm_error *err)
{
    sqlite3_stmt *stmt = NULL;
    if (sqlite3_prepare_v2(stm_store_db(self->store),
                           "INSERT INTO schema_version (version, applied_at, description, "
                           "version_id, checksum) VALUES (?1, "
                           "strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), ?2, ?3, ?4)",
                           -1, &stmt, NULL) != SQLITE_OK)
        return stm_store_error(self->store, err, "recording the version");
    char id[STM_ID_HEX_LEN + 1], sum[STM_ID_HEX_LEN + 1];
    stm_id_to_hex(&v->id, id);
    stm_id_to_hex(&v->checksum, sum);
    sqlite3_bind_int(stmt, 1, v->number);
    sqlite3_bind_text(stmt, 2, v->description, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 3, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 4, sum, -1, SQLITE_STATIC);
    stm_err rc = sqlite3_step(stmt) == SQLITE_DONE
                     ? STM_OK
                     : stm_store_error(self->store, err, "recording the version");
    sqlite3_finalize(stmt);
    return rc;
}

/* Keeps a committed step in the result (its sql is the plan's business) and moves the
 * result's version with it. */
static const migrate_step *s_step_done(const migrate_run_ctx *run, const migrate_step *step,
                                       long long ms)
{
    migrate_result *res = run->res;
    migrate_step *s = &res->steps[res->nsteps++];
    s->version = step->version;
    s->direction = step->direction;
    s->file = stm_strdup(step->file);
    s->description = stm_strdup(step->description);
    s->ms = ms;
    res->version = step->direction == MIGRATE_UP ? step->version : step->version - 1;
    res->has_id = res->version > 0;
    res->id = stm_migrate_id_of(run->self, res->version);
    return s;
}

/* What a step's attempt did beyond the step itself, kept in the result once it commits. */
typedef struct {
    migrate_ops_stats derived; /* what it wrote to synced rows, made operations */
    uint64_t dropped;          /* values a rollback step dropped, parked (dropped.h) */
} s_done;

/* One step, inside the run's transaction under a savepoint of its own, rolled back to
 * it when it fails: migration k applied (the database is at k - 1), or its rollback
 * run (the database is at k). The capture triggers are off for the whole run
 * (s_run_steps); the marks and the catalog follow each step. */
static stm_err s_attempt(migrate_t *self, const migrate_options *o, const migrate_step *step,
                         s_done *done, stm_error *err)
{
    bool up = step->direction == MIGRATE_UP;
    int k = step->version, after = up ? k : k - 1;
    sqlite3 *db = stm_store_db(self->store);
    memset(done, 0, sizeof *done);
    stm_err rc = stm_store_exec(self->store, "SAVEPOINT stemma_step", err);
    if (rc != STM_OK)
        return rc;
    bool prepared = stm_store_is_prepared(self->store);
    /* A new database gets stemma's tables before its first migration, so that the
     * rows that migration writes (seed rows) are operations like any later step's. */
    if (up && k == 1 && !prepared)
        prepared = (rc = stm_store_prepare(self->store, err)) == STM_OK;
    /* Going down, the schema before the step: what it drops is kept (dropped.h). */
    catalog_t *before = NULL;
    if (rc == STM_OK && !up && prepared)
        rc = stm_catalog_read_since(db, self->catalog, &before, err);
    /* Capture keeps out of the step's own writes (capture.h); it has no triggers
     * during a run, but a trigger the migration itself makes may read the flag. */
    if (rc == STM_OK && prepared)
        rc = stm_store_exec(self->store, "UPDATE stemma_local SET applying = 1 WHERE id = 1", err);
    /* What a step writes to synced rows is sent (migrate_ops.h): the first's too,
     * whose seed rows may differ between devices (a time, a random id) and which a
     * row brought back after a delete needs whole. */
    migrate_ops_t *ops = NULL;
    if (rc == STM_OK && up && prepared) {
        /* The catalog as the step before (or the run's start) left it: the schema now. */
        ops = stm_migrate_ops_new(self->store, self->catalog, self->catalog != NULL);
        rc = stm_migrate_ops_run(ops, step->file, step->sql, err);
    } else if (rc == STM_OK) {
        rc = stm_sqlscript_run(db, step->file, step->sql, 0, err);
    }
    if (rc == STM_OK && prepared)
        rc = stm_store_exec(self->store, "UPDATE stemma_local SET applying = 0 WHERE id = 1", err);
    if (rc == STM_OK && up) {
        rc = stm_migrate_record_version(self, stm_lineage_version_at(self->lineage, (size_t)k - 1),
                                        err);
        /* Owed until the replay after the steps has finished (s_replay_parked). */
        if (rc == STM_OK)
            rc = stm_store_set_replay_owed(self->store, true, err);
    } else if (rc == STM_OK) {
        char sql[96];
        snprintf(sql, sizeof sql, "DELETE FROM schema_version WHERE version = %d", k);
        rc = stm_store_exec(self->store, sql, err);
    }
    /* The clocks of renamed columns and tables follow them (carry.h). */
    if (rc == STM_OK && self->lenses && after > 0 && (up ? k - 1 : k) > 0)
        rc = stm_carry_renames(self->store, self->lenses, up ? k - 1 : k, after, err);
    if (rc == STM_OK && before)
        rc = stm_dropped_park(self->store, before, k, self->lenses, &done->dropped, err);
    stm_catalog_destroy(&before);
    if (rc == STM_OK) {
        stm_id id = stm_migrate_id_of(self, after);
        rc = s_capture(self, o, &id, false, err);
    }
    if (rc == STM_OK && ops)
        rc = stm_migrate_ops_record(ops, self->lenses, self->lineage, self->catalog, k,
                                    &done->derived, err);
    stm_migrate_ops_destroy(&ops);
    if (rc == STM_OK)
        return stm_store_exec(self->store, "RELEASE stemma_step", err);
    /* A failed statement may have ended the whole transaction already. */
    if (!sqlite3_get_autocommit(db))
        sqlite3_exec(db, "ROLLBACK TO stemma_step; RELEASE stemma_step", NULL, NULL, NULL);
    return rc;
}

/* Runs one step (s_attempt), telling the caller as it goes. */
static stm_err s_step(const migrate_run_ctx *run, const migrate_step *step, stm_error *err)
{
    migrate_t *self = run->self;
    bool up = step->direction == MIGRATE_UP;
    int k = step->version;
    sqlite3 *db = stm_store_db(self->store);
    migrate_event ev = {.kind = MIGRATE_EVENT_STEP_STARTED, .step = step};
    stm_migrate_tell(run, &ev);
    s_progress p;
    s_progress_start(&p, run, step, db);
    s_done done;
    stm_err rc = s_attempt(self, run->o, step, &done, err);
    long long ms = s_progress_stop(&p, db);
    if (rc != STM_OK) {
        if (up)
            stm_error_append(err,
                             "migration %d was rolled back: the database is still at "
                             "version %d",
                             k, k - 1);
        else
            stm_error_append(err,
                             "the rollback of %d was undone: the database is still at "
                             "version %d",
                             k, k);
        ev = (migrate_event){.kind = MIGRATE_EVENT_STEP_FAILED, .step = step, .elapsed_ms = ms};
        stm_migrate_tell(run, &ev);
        return rc;
    }
    run->res->dropped += done.dropped;
    run->res->derived_rows += done.derived.rows;
    run->res->derived_ops += done.derived.ops;
    run->res->derived_kept += done.derived.kept;
    run->res->derived_unkept += done.derived.unkept;
    ev = (migrate_event){
        .kind = MIGRATE_EVENT_STEP_DONE, .step = s_step_done(run, step, ms), .elapsed_ms = ms};
    stm_migrate_tell(run, &ev);
    return STM_OK;
}

/* Forgets the steps the result holds, for a run whose transaction did not commit: the
 * database is where it was before them (from). */
static void s_steps_undone(const migrate_run_ctx *run, int from)
{
    migrate_result *res = run->res;
    stm_migrate_steps_free(res->steps, res->nsteps);
    res->steps = NULL;
    res->nsteps = 0;
    res->dropped = res->derived_rows = res->derived_ops = 0;
    res->derived_kept = res->derived_unkept = 0;
    res->version = from;
    res->has_id = from > 0;
    res->id = stm_migrate_id_of(run->self, from);
}

/* The plan's steps in one transaction, each under a savepoint: the capture triggers
 * are removed at its start and made again once, for the version reached, at its end
 * (an ALTER TABLE re-reads the whole schema, triggers and all: with them in place a
 * run cost several times what the same files cost the sqlite3 shell). A step that
 * fails is rolled back alone; the steps before it commit. A run killed or whose
 * commit fails leaves the database where it was. */
static stm_err s_run_steps(const migrate_run_ctx *run, const migrate_plan *plan, stm_error *err)
{
    migrate_t *self = run->self;
    const migrate_step *first = &plan->steps[0];
    int from = first->direction == MIGRATE_UP ? first->version - 1 : first->version;
    stm_err rc = stm_migrate_tx_begin(self, from, true, err);
    /* The schema as the run starts: each step takes it whole as the schema it starts
     * from, and reads again only what it changed. */
    catalog_t *now = NULL;
    if (rc == STM_OK && (rc = stm_catalog_read_since(stm_store_db(self->store), self->catalog, &now,
                                                     err)) == STM_OK) {
        stm_catalog_destroy(&self->catalog);
        self->catalog = now;
    }
    if (rc != STM_OK) {
        stm_migrate_tx_rollback(self);
        if (self->moved_to >= 0)
            stm_migrate_tell_moved(run, err);
        else
            stm_error_append(err, "nothing was changed: the database is still at version %d", from);
        return rc;
    }
    for (size_t i = 0; i < plan->nsteps && rc == STM_OK; i++)
        rc = s_step(run, &plan->steps[i], err);
    if (!run->res->nsteps) {
        stm_migrate_tx_rollback(self);
        return rc;
    }
    /* Some errors (a full disk, an I/O error) make SQLite roll the whole transaction
     * back, the steps before the failed one with it. */
    if (sqlite3_get_autocommit(stm_store_db(self->store))) {
        stm_migrate_tx_rollback(self);
        stm_error_append(err,
                         "SQLite undid the steps before it too: the database is still at "
                         "version %d",
                         from);
        s_steps_undone(run, from);
        return rc;
    }
    /* The triggers for where the steps done took the database, and the commit. A step
     * that failed has its message in err already: this one's goes after it. */
    stm_error end = {0};
    stm_id id = stm_migrate_id_of(self, run->res->version);
    stm_err erc = s_capture(self, run->o, &id, true, &end);
    if (erc == STM_OK)
        erc = stm_migrate_tx_commit(self, &end);
    if (erc == STM_OK)
        return rc;
    stm_migrate_tx_rollback(self);
    if (rc == STM_OK)
        stm_error_set(err, end.code, "%s", end.msg);
    else
        stm_error_append(err, "then %s", end.msg);
    stm_error_append(err, "nothing was committed: the database is still at version %d", from);
    s_steps_undone(run, from);
    return erc;
}

/* ---- around the steps ---- */

/* Forgets what the steps of a run kept from one to the next (the applier borrows the
 * store: it goes first). */
static void s_steps_done(migrate_t *self)
{
    stm_applier_destroy(&self->applier);
    stm_catalog_destroy(&self->catalog);
}

/* Reopens the database writable (creating it when mode says so) and checks it is still
 * as it was when checked read-only. */
static stm_err s_reopen_writable(migrate_t *self, store_open_mode mode, stm_error *err)
{
    int before = self->version;
    s_steps_done(self);
    stm_store_destroy(&self->store);
    if (!self->exists) {
        /* Create the file here, exclusively, so that a file this run did not create is
         * never removed as "the new file a failed first migration leaves". */
        int fd = open(self->db_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd < 0)
            return errno == EEXIST
                       ? stm_error_set(err, STM_EDB,
                                       "%s: created by another process while stemma was "
                                       "checking it; run the command again",
                                       self->db_path)
                       : stm_error_set(err, STM_ESYS, "%s: cannot create: %s", self->db_path,
                                       strerror(errno));
        close(fd);
        self->created = true;
        self->exists = true;
    }
    stm_err rc = stm_store_open(self->db_path, mode, &self->store, err);
    if (rc != STM_OK)
        return rc;
    if ((rc = stm_migrate_load_state(self, err)) != STM_OK)
        return rc;
    if (self->version != before || self->ndrift)
        return stm_error_set(err, STM_EDB,
                             "%s: changed while stemma was checking it (now at version %d); run "
                             "the command again",
                             self->db_path, self->version);
    return STM_OK;
}

/* Removes a database file this run created and left at version 0 (a failed first
 * migration), so that "as it was before" holds for a new file too. */
static void s_remove_created(migrate_t *self)
{
    s_steps_done(self);
    stm_store_destroy(&self->store);
    static const char *const suffixes[] = {"", "-wal", "-shm", "-journal"};
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        buf_t b = BUF_INIT;
        stm_buf_printf(&b, "%s%s", self->db_path, suffixes[i]);
        unlink(stm_buf_str(&b));
        stm_buf_free(&b);
    }
    self->exists = self->created = false;
    stm_migrate_clear_state(self);
}

/* After migrations that may have added tables or columns, operations parked for
 * want of them apply now, by the same last-writer-wins rule (apply.h). */
static stm_err s_replay_parked(const migrate_run_ctx *run, stm_error *err)
{
    migrate_result *res = run->res;
    migrate_t *self = run->self;
    if (!self->lenses && self->set) {
        stm_err lrc = stm_lens_derive(self->set, &self->lenses, err);
        if (lrc != STM_OK)
            return lrc;
    }
    applier_t *applier = stm_applier_new(self->store, NULL, NULL);
    if (self->lenses)
        stm_applier_set_lenses(applier, self->lenses, self->lineage);
    apply_stats st = {0};
    stm_err rc = stm_applier_replay(applier, &st, err); /* clears what was owed (store.h) */
    stm_applier_destroy(&applier);
    uint64_t total = 0;
    if (rc == STM_OK)
        rc = stm_oplog_counts(run->self->store, &total, &res->parked, err);
    res->replayed = st.replayed;
    if (rc != STM_OK)
        return rc;
    res->replay_ran = true;
    migrate_event ev = {
        .kind = MIGRATE_EVENT_REPLAYED, .replayed = res->replayed, .parked = res->parked};
    stm_migrate_tell(run, &ev);
    return STM_OK;
}

/* With nothing to apply or adopt: sets capture up for the current version, or records
 * new exclusions, in a transaction of its own. */
static stm_err s_set_up_capture(const migrate_run_ctx *run, stm_error *err)
{
    migrate_t *self = run->self;
    int at = self->version;
    stm_id id = stm_migrate_id_of(self, at);
    stm_err rc = stm_migrate_tx_begin(self, at, false, err);
    if (rc == STM_OK)
        rc = stm_migrate_tx_capture(self, run->o, &id, err);
    if (rc == STM_OK)
        rc = stm_migrate_tx_commit(self, err);
    if (rc != STM_OK) {
        stm_migrate_tx_rollback(self);
        if (self->moved_to >= 0)
            stm_migrate_tell_moved(run, err);
        return rc;
    }
    run->res->capture_set_up = true;
    migrate_event ev = {.kind = MIGRATE_EVENT_CAPTURE_SET_UP, .version = at};
    stm_migrate_tell(run, &ev);
    return STM_OK;
}

/* Carries plan out: reopen, backup, adoption, the steps; then, going up, the replay or
 * the capture of its own. */
static stm_err s_carry_out(const migrate_run_ctx *run, const migrate_plan *plan, stm_error *err)
{
    migrate_t *self = run->self;
    migrate_result *res = run->res;
    bool up = plan->direction == MIGRATE_UP;
    if (plan->nsteps)
        res->steps = stm_calloc(plan->nsteps, sizeof *res->steps);
    stm_err rc = s_reopen_writable(self, up ? STORE_OPEN_CREATE : STORE_OPEN_EXISTING, err);
    if (rc == STM_OK && plan->backup)
        rc = s_backup_before_change(run, err);
    if (rc == STM_OK && plan->adopt)
        rc = stm_migrate_adopt(run, err);
    if (rc == STM_OK && plan->baseline > 0)
        rc = stm_migrate_baseline(run, plan, err);
    /* What the migrations do to the data, for the clocks of what they rename and for
     * the operations replayed after them. */
    if (rc == STM_OK && plan->nsteps && self->set && !self->lenses)
        rc = stm_lens_derive(self->set, &self->lenses, err);
    if (rc == STM_OK && plan->nsteps)
        rc = s_run_steps(run, plan, err);
    s_steps_done(self); /* the replay has an applier of its own */
    if (rc == STM_OK && up && (res->nsteps || plan->replay))
        rc = s_replay_parked(run, err);
    if (rc == STM_OK && plan->set_up_capture && !res->adopted)
        rc = s_set_up_capture(run, err);
    s_steps_done(self);
    if (rc != STM_OK && self->created && res->nsteps == 0) {
        s_remove_created(self);
        return rc;
    }
    /* The accessors report the database as it now is. A failure to read it again is
     * not the run's: err keeps the run's own message, and the result has followed
     * every step already. */
    stm_error reload = {0};
    if (stm_migrate_load_state(self, &reload) != STM_OK) {
        /* the accessors then report nothing; the run's rc and result stand */
    }
    if (rc != STM_OK && res->backup_path)
        stm_error_append(err, "backup: %s", res->backup_path);
    return rc;
}

/* stm_migrate_run and stm_migrate_rollback: the plan first, so that every refusal comes before
 * the first write, then the plan carried out. */
static stm_err s_plan_and_run(migrate_t *self, const migrate_options *o, migrate_result *result,
                              migrate_direction direction, stm_error *err)
{
    migrate_result local;
    migrate_result *res = result ? result : &local;
    memset(res, 0, sizeof *res);
    self->moved_to = -1;
    res->direction = direction;
    res->from = res->version = self->version;
    res->has_id = stm_migrate_version_id(self, &res->id);
    migrate_plan plan;
    stm_err rc = direction == MIGRATE_UP ? stm_migrate_run_plan(self, o, &plan, err)
                                         : stm_migrate_rollback_plan(self, o, &plan, err);
    migrate_run_ctx run = {.self = self, .o = o, .res = res};
    if (rc == STM_OK && plan.nothing_to_do)
        res->nothing_to_do = true;
    else if (rc == STM_OK)
        rc = s_carry_out(&run, &plan, err);
    /* The exclusions a run recorded are read back by then; o's are counted for a run
     * whose reading back failed. */
    if (rc == STM_OK) {
        res->nunsynced = stm_migrate_unsynced_at(self, res->version, o, &res->unsynced);
        res->nper_device = stm_migrate_per_device_at(self, res->version, o, &res->per_device);
        res->nkeys_changed = stm_migrate_keys_changed_at(
            self, res->baseline ? res->baseline : res->from, res->version, o, &res->keys_changed);
    }
    stm_migrate_plan_free(&plan);
    if (!result)
        stm_migrate_result_free(&local);
    return rc;
}

stm_err stm_migrate_run(migrate_t *self, const migrate_options *o, migrate_result *result,
                        stm_error *err)
{
    return s_plan_and_run(self, o, result, MIGRATE_UP, err);
}

stm_err stm_migrate_rollback(migrate_t *self, const migrate_options *o, migrate_result *result,
                             stm_error *err)
{
    return s_plan_and_run(self, o, result, MIGRATE_DOWN, err);
}

void stm_migrate_result_free(migrate_result *result)
{
    free(result->backup_path);
    stm_migrate_steps_free(result->steps, result->nsteps);
    stm_syncable_tables_free(result->unsynced, result->nunsynced);
    stm_syncable_names_free(result->per_device, result->nper_device);
    stm_syncable_names_free(result->keys_changed, result->nkeys_changed);
    memset(result, 0, sizeof *result);
}
