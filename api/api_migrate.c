/* api_migrate.c - migrating a database, for applications (include/stemma.h): the
 * migrator (sync/migrate.h), its plan and its progress told through the caller's
 * callback. */
#include "api_internal.h"
#include "base/mem.h"
#include "lineage/cache.h"
#include "sync/migrate.h"

#include <stdlib.h>

/* The caller's callback, and whether the run was asked for dry. */
typedef struct {
    const stemma_migrate_options *opts;
} s_tell;

static void s_emit(const s_tell *t, stemma_migrate_event *ev)
{
    if (t->opts->on_event)
        t->opts->on_event(t->opts->user, ev);
}

/* A migrator's event as the API tells it. */
static void s_progress(const migrate_event *mev, void *user)
{
    static const stemma_migrate_event_kind kinds[] = {
        [MIGRATE_EVENT_BACKUP_WRITTEN] = STEMMA_MIGRATE_BACKUP,
        [MIGRATE_EVENT_ADOPTED] = STEMMA_MIGRATE_ADOPTED,
        [MIGRATE_EVENT_STEP_STARTED] = STEMMA_MIGRATE_STEP_STARTED,
        [MIGRATE_EVENT_STEP_RUNNING] = STEMMA_MIGRATE_STEP_RUNNING,
        [MIGRATE_EVENT_STEP_DONE] = STEMMA_MIGRATE_STEP_DONE,
        [MIGRATE_EVENT_STEP_FAILED] = STEMMA_MIGRATE_STEP_FAILED,
        [MIGRATE_EVENT_REPLAYED] = STEMMA_MIGRATE_REPLAYED,
        [MIGRATE_EVENT_CAPTURE_SET_UP] = STEMMA_MIGRATE_CAPTURE_SET_UP,
    };
    stemma_migrate_event ev = {
        .kind = kinds[mev->kind],
        .version = mev->step ? mev->step->version : mev->version,
        .down = mev->step && mev->step->direction == MIGRATE_DOWN,
        .file = mev->step ? mev->step->file : NULL,
        .description = mev->step ? mev->step->description : NULL,
        .elapsed_ms = mev->elapsed_ms,
        .path = mev->path,
        .replayed = mev->replayed,
        .parked = mev->parked,
    };
    s_emit(user, &ev);
}

/* The plan told: drift first (a run refuses on it), then each step it would take. */
static void s_tell_plan(const s_tell *t, const migrate_plan *plan)
{
    for (size_t i = 0; plan->checked && i < plan->ndrift; i++) {
        stemma_migrate_event ev = {.kind = STEMMA_MIGRATE_DRIFT, .message = plan->drift[i]};
        s_emit(t, &ev);
    }
    for (size_t i = 0; i < plan->nsteps; i++) {
        const migrate_step *s = &plan->steps[i];
        stemma_migrate_event ev = {.kind = STEMMA_MIGRATE_PLANNED,
                                   .version = s->version,
                                   .down = s->direction == MIGRATE_DOWN,
                                   .file = s->file,
                                   .description = s->description,
                                   .sql = s->sql};
        s_emit(t, &ev);
    }
}

STEMMA_API stemma_code stemma_migrate(const char *db, const char *schemas,
                                      const stemma_migrate_options *opts,
                                      stemma_migrate_result *result, stemma_error *err)
{
    static const stemma_migrate_options defaults = STEMMA_MIGRATE_OPTIONS_INIT;
    if (!opts)
        opts = &defaults;
    if (result)
        *result = (stemma_migrate_result){0};
    if (!db || !schemas)
        return stm_api_fail(err, STEMMA_EUSAGE, "stemma_migrate: db and schemas are required");
    if (opts->to < -1)
        return stm_api_fail(err, STEMMA_EUSAGE,
                            "stemma_migrate: to must be a version number, or -1 for the newest");
    s_tell t = {opts};
    migrate_options mo = MIGRATE_OPTIONS_INIT;
    mo.to = opts->to < 0 ? MIGRATE_HEAD : opts->to;
    mo.backup = opts->backup != 0;
    mo.exclude = opts->exclude;
    mo.nexclude = opts->nexclude;
    mo.progress = s_progress;
    mo.progress_user = &t;
    stm_error e = {0};
    migrate_t *m = NULL;
    char *cache = stm_cache_dir_from_env();
    stm_err rc = stm_migrate_open_cached(db, schemas, cache, &m, &e);
    free(cache);
    /* The plan first, dry or not: the caller hears what will run before it runs. */
    migrate_plan plan = {0};
    if (rc == STM_OK) {
        rc = stm_migrate_run_plan(m, &mo, &plan, &e);
        s_tell_plan(&t, &plan);
    }
    if (rc == STM_OK && opts->dry_run)
        rc = stm_migrate_rehearse(m, &plan, &e);
    if (rc == STM_OK && result) {
        result->from = plan.version;
        result->version = plan.target;
        result->steps = plan.nsteps;
        result->nothing_to_do = plan.nothing_to_do;
        result->parked = plan.parked;
    }
    migrate_result r = {0};
    if (rc == STM_OK && !opts->dry_run) {
        rc = stm_migrate_run(m, &mo, &r, &e);
        if (result) {
            result->from = r.from;
            result->version = r.version;
            result->steps = r.nsteps;
            result->nothing_to_do = r.nothing_to_do;
            result->replayed = r.replayed;
            result->parked = r.parked;
            result->derived_ops = r.derived_ops;
        }
    }
    stm_migrate_result_free(&r);
    stm_migrate_plan_free(&plan);
    stm_migrate_destroy(&m);
    return rc == STM_OK ? STEMMA_OK : stm_api_error(err, &e);
}
