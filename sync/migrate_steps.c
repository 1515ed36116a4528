/* migrate_steps.c - a run's steps (migrate_run.c carries the rest of a plan out): one
 * transaction for them all, a savepoint for each, capture's triggers off until the
 * commit (migrate.h, invariant 2), each step told to the caller's progress callback as
 * it starts, runs and ends. */
#include "migrate_internal.h"
#include "carry.h"
#include "dropped.h"
#include "migrate_ops.h"
#include "base/clock.h"
#include "base/mem.h"
#include "lineage/sqlscript.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- progress ---- */

/* How often (in SQLite VM instructions) the progress handler looks at the clock. */
#define S_PROGRESS_INSTRUCTIONS 1000

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
 * (stm_migrate_run_steps); the marks and the catalog follow each step. */
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
        rc = stm_migrate_tx_marks(self, o, &id, err);
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
stm_err stm_migrate_run_steps(const migrate_run_ctx *run, const migrate_plan *plan, stm_error *err)
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
    stm_err erc = stm_migrate_tx_capture(self, run->o, &id, &end);
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
