/* migrate_run.c - carrying out a plan (migrate_plan.c) on the real database. The
 * invariants it keeps are listed in migrate.h; the order of work in every command that
 * changes the database is:
 *
 *   plan (read-only connection) -> reopen writable and check again -> backup ->
 *   adopt an older tool's schema_version -> the steps, in one transaction
 *   (migrate_steps.c) -> the replay
 *
 * so that anything refused is refused before the first write. Each of these is told
 * to the caller's progress callback as it happens and kept in the result; nothing is
 * printed here. */
#include "migrate_internal.h"
#include "apply.h"
#include "backup.h"
#include "capture.h"
#include "oplog.h"
#include "base/buf.h"
#include "base/mem.h"

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

/* Internal (migrate_internal.h). */
stm_err stm_migrate_tx_marks(migrate_t *self, const migrate_options *o, const stm_id *id,
                             stm_error *err)
{
    return s_capture(self, o, id, false, err);
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
        rc = stm_migrate_run_steps(run, plan, err);
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
