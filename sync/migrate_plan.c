/* migrate_plan.c - what a migrate or rollback run would do, decided on the read-only
 * connection: every refusal the migrator makes (a bad target, drift, the wrong
 * direction, a missing or failing rollback file) is made here, before anything is
 * written (migrate.h, invariants 1, 4 and 5). migrate_run.c carries the plan out; a
 * dry run is the plan alone. */
#include "migrate_internal.h"
#include "oplog.h"
#include "base/buf.h"
#include "base/mem.h"
#include "lineage/schemacmp.h"
#include "lineage/lens.h"
#include "lineage/sqlscript.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

/* "DIR/FILE" for messages, the caller's to free. */
static char *s_file_path(const migrate_t *self, const char *file)
{
    buf_t b = BUF_INIT;
    stm_buf_printf(&b, "%s/%s", stm_schemaset_dir(self->set), file);
    return stm_buf_detach(&b);
}

/* Appends the step of migration k to plan, whose steps have room for it. */
static void s_step_add(migrate_plan *plan, const migrate_t *self, int k, migrate_direction dir)
{
    const schemaset_migration *m = stm_schemaset_at(self->set, (size_t)k - 1);
    migrate_step *s = &plan->steps[plan->nsteps++];
    s->version = k;
    s->direction = dir;
    s->file = s_file_path(self, dir == MIGRATE_UP ? m->file : m->down_file);
    s->description = stm_strdup(m->description);
    s->sql = stm_strdup(dir == MIGRATE_UP ? m->text : m->down_text);
}

/* Internal (migrate_internal.h). */
void stm_migrate_steps_free(migrate_step *steps, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(steps[i].file);
        free(steps[i].description);
        free(steps[i].sql);
    }
    free(steps);
}

void stm_migrate_plan_free(migrate_plan *plan)
{
    free(plan->db_path);
    free(plan->schemas_dir);
    for (size_t i = 0; i < plan->ndrift; i++)
        free(plan->drift[i]);
    free(plan->drift);
    stm_migrate_steps_free(plan->steps, plan->nsteps);
    for (size_t i = 0; i < plan->nexclude; i++)
        free(plan->exclude[i]);
    free(plan->exclude);
    stm_syncable_tables_free(plan->unsynced, plan->nunsynced);
    stm_syncable_names_free(plan->per_device, plan->nper_device);
    stm_syncable_names_free(plan->keys_changed, plan->nkeys_changed);
    memset(plan, 0, sizeof *plan);
}

/* The first part of a plan: the database as it was checked, drift included. */
static void s_fill_checked(const migrate_t *self, migrate_plan *plan)
{
    plan->checked = true;
    plan->db_path = stm_strdup(self->db_path);
    plan->db_exists = self->exists;
    plan->untracked = self->untracked;
    plan->version = self->version;
    plan->has_id = stm_migrate_version_id(self, &plan->id);
    plan->schemas_dir = stm_strdup(stm_schemaset_dir(self->set));
    plan->nmigrations = stm_lineage_count(self->lineage);
    if (self->ndrift) {
        plan->drift = stm_calloc(self->ndrift, sizeof *plan->drift);
        for (size_t i = 0; i < self->ndrift; i++)
            plan->drift[i] = stm_strdup(self->drift[i]);
        plan->ndrift = self->ndrift;
    }
}

static stm_err s_refuse_drift(const migrate_t *self, stm_error *err)
{
    if (self->ndrift == 1)
        return stm_error_set(err, STM_EINPUT, "%s", self->drift[0]);
    return stm_error_set(err, STM_EINPUT, "%s (and %zu more problems: 'stemma status' lists them)",
                         self->drift[0], self->ndrift - 1);
}

/* True when opts names a table not yet in stemma_exclude (which compares without
 * regard to case). */
static bool s_new_exclusions(const migrate_t *self, const migrate_options *o)
{
    for (size_t i = 0; i < o->nexclude; i++) {
        bool known = false;
        for (size_t k = 0; k < self->nexclude && !known; k++)
            known = sqlite3_stricmp(self->exclude[k], o->exclude[i]) == 0;
        if (!known)
            return true;
    }
    return false;
}

/* ---- migrate ---- */

stm_err stm_migrate_run_plan(migrate_t *self, const migrate_options *o, migrate_plan *plan,
                             stm_error *err)
{
    memset(plan, 0, sizeof *plan);
    int count = (int)stm_lineage_count(self->lineage);
    if (o->to < 0 && o->to != MIGRATE_HEAD)
        return stm_error_set(err, STM_EUSAGE, "the target version must be 0 or more, not %d",
                             o->to);
    int target = o->to == MIGRATE_HEAD ? count : o->to;
    if (target > count)
        return stm_error_set(err, STM_EINPUT, "there is no version %d: %s has %d migration%s",
                             target, stm_schemaset_dir(self->set), count, count == 1 ? "" : "s");
    s_fill_checked(self, plan);
    if (self->ndrift)
        return s_refuse_drift(self, err);
    /* A database without schema_version: made without stemma when it holds tables of
     * the set, taken over only at the version its schema is (migrate_adopt.c). */
    stm_err rc = stm_migrate_plan_baseline(self, o, plan, err);
    if (rc != STM_OK)
        return rc;
    int from = plan->baseline > 0 ? plan->baseline : self->version;
    if (target < from && plan->baseline)
        return stm_error_set(err, STM_EUSAGE,
                             "%s: its schema is version %d's, above %d: migrate only goes "
                             "forward (record it at %d first with --baseline --to %d, then "
                             "stemma rollback --to %d); nothing was changed",
                             self->db_path, from, target, from, from, target);
    if (target < from)
        return stm_error_set(err, STM_EUSAGE,
                             "%s is at version %d, above %d: migrate only goes forward (to go "
                             "back: stemma rollback --to %d)",
                             self->db_path, from, target, target);
    plan->direction = MIGRATE_UP;
    plan->target = target;
    bool pending = target > from;
    plan->nunsynced = stm_migrate_unsynced_at(self, target, o, &plan->unsynced);
    plan->nper_device = stm_migrate_per_device_at(self, target, o, &plan->per_device);
    plan->nkeys_changed = stm_migrate_keys_changed_at(self, from, target, o, &plan->keys_changed);
    /* A database with stemma's tables missing at a version above 0 needs capture set
     * up even when no migration is pending; a baseline sets it up. */
    bool capture = self->adopt || s_new_exclusions(self, o) || (!self->prepared && from) ||
                   plan->baseline;
    if (!pending && !capture && self->replay_owed) {
        plan->replay = true; /* only the replay an earlier run did not finish */
        return STM_OK;
    }
    if (!pending && !capture) {
        plan->nothing_to_do = true;
        return STM_OK;
    }
    plan->backup = o->backup && self->exists && (pending || self->adopt || plan->baseline);
    plan->adopt = self->adopt;
    plan->set_up_capture = !pending && !plan->baseline;
    if (pending)
        plan->steps = stm_calloc((size_t)(target - from), sizeof *plan->steps);
    for (int k = from + 1; k <= target; k++)
        s_step_add(plan, self, k, MIGRATE_UP);
    if (o->nexclude) {
        plan->exclude = stm_calloc(o->nexclude, sizeof *plan->exclude);
        for (size_t i = 0; i < o->nexclude; i++)
            plan->exclude[i] = stm_strdup(o->exclude[i]);
        plan->nexclude = o->nexclude;
    }
    uint64_t total = 0;
    if (pending && self->prepared)
        return stm_oplog_counts(self->store, &total, &plan->parked, err);
    return STM_OK;
}

/* ---- rollback ---- */

/* Runs migration k, or its rollback, on the in-memory database db in a transaction. */
static stm_err s_rehearse_step(const migrate_t *self, sqlite3 *db, int k, migrate_direction dir,
                               stm_error *err)
{
    const schemaset_migration *m = stm_schemaset_at(self->set, (size_t)k - 1);
    char *path = s_file_path(self, dir == MIGRATE_UP ? m->file : m->down_file);
    sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
    stm_err rc = stm_sqlscript_run(db, path, dir == MIGRATE_UP ? m->text : m->down_text, 0, err);
    sqlite3_exec(db, rc == STM_OK ? "COMMIT" : "ROLLBACK", NULL, NULL, NULL);
    free(path);
    return rc;
}

/* After the rollback of k in memory: STM_EINPUT naming its down file when the schema
 * it left differs from want, version k - 1's as its migrations make it. */
static stm_err s_check_down(const migrate_t *self, sqlite3 *db, int k, const schemacmp_t *want,
                            stm_error *err)
{
    schemacmp_t *got = NULL;
    stm_err rc = stm_schemacmp_read(db, true, &got, err);
    if (rc != STM_OK)
        return rc;
    schemacmp_diff *diffs = NULL;
    size_t n = stm_schemacmp_compare(want, got, &diffs);
    if (n) {
        const schemaset_migration *m = stm_schemaset_at(self->set, (size_t)k - 1);
        buf_t b = BUF_INIT;
        stm_schemacmp_summary(&b, diffs, n, k - 1, true);
        rc = stm_error_set(err, STM_EINPUT,
                           "%s/%s: %s; nothing was changed (a down file must leave the schema "
                           "of the version below it)",
                           stm_schemaset_dir(self->set), m->down_file, stm_buf_str(&b));
        stm_buf_free(&b);
    }
    stm_schemacmp_diffs_free(diffs, n);
    stm_schemacmp_destroy(&got);
    return rc;
}

/* Runs the migrations up to the current version, then the rollbacks down to `to`, on
 * an in-memory database, so that a rollback SQLite refuses is refused before the real
 * database is touched, and so is one that does not leave the schema the migrations
 * make for the version below it (lineage/schemacmp.h says what is compared): each
 * down file is compared with the version it leads to, so the message names the file
 * at fault, and the real run, one transaction a step, never stops at a version whose
 * schema is not that version's. */
static stm_err s_rehearse_rollback(migrate_t *self, int to, stm_error *err)
{
    sqlite3 *db;
    stm_err rc = stm_sqlscript_open_memory(&db, err);
    if (rc != STM_OK)
        return rc;
    /* want[i]: the schema of version to + i, for i < version - to. */
    size_t nwant = (size_t)(self->version - to);
    schemacmp_t **want = stm_calloc(nwant, sizeof *want);
    if (to == 0)
        rc = stm_schemacmp_read(db, true, &want[0], err);
    for (int k = 1; k <= self->version && rc == STM_OK; k++) {
        rc = s_rehearse_step(self, db, k, MIGRATE_UP, err);
        if (rc == STM_OK && k >= to && k < self->version)
            rc = stm_schemacmp_read(db, true, &want[k - to], err);
    }
    bool sqlite_refused = rc != STM_OK;
    for (int k = self->version; k > to && rc == STM_OK; k--) {
        rc = s_rehearse_step(self, db, k, MIGRATE_DOWN, err);
        sqlite_refused = rc != STM_OK;
        if (rc == STM_OK)
            rc = s_check_down(self, db, k, want[k - 1 - to], err);
    }
    for (size_t i = 0; i < nwant; i++)
        stm_schemacmp_destroy(&want[i]);
    free(want);
    sqlite3_close(db);
    if (sqlite_refused)
        stm_error_append(err,
                         "found running the rollbacks in memory; the database was not changed");
    return rc;
}

stm_err stm_migrate_rollback_plan(migrate_t *self, const migrate_options *o, migrate_plan *plan,
                                  stm_error *err)
{
    memset(plan, 0, sizeof *plan);
    int to = o->to;
    if (to < 0)
        return stm_error_set(err, STM_EUSAGE, "rollback needs a target version, 0 or more");
    if (!self->exists)
        return stm_error_set(err, STM_EINPUT, "%s: no such database file", self->db_path);
    s_fill_checked(self, plan);
    if (self->ndrift)
        return s_refuse_drift(self, err);
    if (to > self->version)
        return stm_error_set(err, STM_EUSAGE,
                             "%s is at version %d, below %d: rollback only goes back (to go "
                             "forward: stemma migrate --to %d)",
                             self->db_path, self->version, to, to);
    plan->direction = MIGRATE_DOWN;
    plan->target = to;
    plan->nunsynced = stm_migrate_unsynced_at(self, to, NULL, &plan->unsynced);
    plan->nper_device = stm_migrate_per_device_at(self, to, NULL, &plan->per_device);
    plan->nkeys_changed =
        stm_migrate_keys_changed_at(self, self->version, to, NULL, &plan->keys_changed);
    if (to == self->version) {
        plan->nothing_to_do = true;
        return STM_OK;
    }
    for (int k = self->version; k > to; k--) {
        const schemaset_migration *m = stm_schemaset_at(self->set, (size_t)k - 1);
        if (!m->down_text)
            return stm_error_set(err, STM_EINPUT,
                                 "%s/%s: missing, so version %d cannot be rolled back (nothing "
                                 "was changed)",
                                 stm_schemaset_dir(self->set), m->down_where, k);
    }
    stm_err rc = s_rehearse_rollback(self, to, err);
    if (rc != STM_OK)
        return rc;
    plan->backup = o->backup;
    plan->adopt = self->adopt;
    plan->steps = stm_calloc((size_t)(self->version - to), sizeof *plan->steps);
    for (int k = self->version; k > to; k--)
        s_step_add(plan, self, k, MIGRATE_DOWN);
    return STM_OK;
}

/* ---- rehearsing a migrate on a copy ---- */

/* Drops stemma's capture triggers in db, as each step of a run does before its SQL
 * (a column they name could not be dropped otherwise). */
static stm_err s_drop_capture(sqlite3 *db, stm_error *err)
{
    sqlite3_stmt *q = NULL;
    buf_t drops = BUF_INIT;
    int rc = sqlite3_prepare_v2(db,
                                "SELECT name FROM sqlite_schema WHERE type = 'trigger' AND "
                                "name LIKE 'stemma\\_%' ESCAPE '\\'",
                                -1, &q, NULL);
    while (rc == SQLITE_OK && sqlite3_step(q) == SQLITE_ROW) {
        stm_buf_puts(&drops, "DROP TRIGGER \"");
        for (const char *c = (const char *)sqlite3_column_text(q, 0); c && *c; c++) {
            if (*c == '"')
                stm_buf_putc(&drops, '"');
            stm_buf_putc(&drops, *c);
        }
        stm_buf_puts(&drops, "\";");
    }
    sqlite3_finalize(q);
    if (rc == SQLITE_OK && drops.len)
        rc = sqlite3_exec(db, stm_buf_str(&drops), NULL, NULL, NULL);
    stm_buf_free(&drops);
    return rc == SQLITE_OK ? STM_OK
                           : stm_error_set(err, STM_EDB, "rehearsing on a copy: %s",
                                           sqlite3_errmsg(db));
}

stm_err stm_migrate_rehearse(migrate_t *self, const migrate_plan *plan, stm_error *err)
{
    if (plan->direction != MIGRATE_UP || !plan->nsteps)
        return STM_OK;
    /* The run derives the lenses before its first step: one it cannot derive refuses. */
    if (self->set && !self->lenses) {
        stm_err rc = stm_lens_derive(self->set, &self->lenses, err);
        if (rc != STM_OK)
            return rc;
    }
    if (!self->exists || !self->store)
        return STM_OK; /* an empty database: the lineage ran these on one already */
    /* A private temporary database ("" names one): on disk, not in memory, so that a
     * large database is copied whole without holding it in memory. */
    sqlite3 *copy = NULL;
    if (sqlite3_open_v2("", &copy, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK) {
        stm_err rc = stm_error_set(err, STM_ESYS, "rehearsing on a copy: %s",
                                   copy ? sqlite3_errmsg(copy) : "out of memory");
        sqlite3_close(copy);
        return rc;
    }
    sqlite3_backup *b = sqlite3_backup_init(copy, "main", stm_store_db(self->store), "main");
    int step = b ? sqlite3_backup_step(b, -1) : SQLITE_ERROR;
    int fin = b ? sqlite3_backup_finish(b) : SQLITE_ERROR;
    stm_err rc = step == SQLITE_DONE && fin == SQLITE_OK
                     ? s_drop_capture(copy, err)
                     : stm_error_set(err, STM_EDB, "%s: copying it to rehearse the run: %s",
                                     self->db_path, sqlite3_errmsg(copy));
    int at = plan->baseline > 0 ? plan->baseline : self->version;
    for (size_t i = 0; i < plan->nsteps && rc == STM_OK; i++) {
        const migrate_step *s = &plan->steps[i];
        sqlite3_exec(copy, "BEGIN", NULL, NULL, NULL);
        rc = stm_sqlscript_run(copy, s->file, s->sql, 0, err);
        sqlite3_exec(copy, rc == STM_OK ? "COMMIT" : "ROLLBACK", NULL, NULL, NULL);
        if (rc == STM_OK) {
            at = s->version;
            rc = s_drop_capture(copy, err);
        } else {
            stm_error_append(err,
                             "found running the migrations on a copy of %s: the run would "
                             "roll migration %d back and stop at version %d (nothing was "
                             "changed)",
                             self->db_path, s->version, at);
        }
    }
    sqlite3_close(copy);
    return rc;
}
