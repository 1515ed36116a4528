/* migrate_text.c - renders the migrator's values (sync/migrate.h) as text; what each
 * line means is in the help of migrate and rollback (cmd_store.c). */
#include "migrate_text.h"
#include "cli.h"
#include "progress.h"
#include "unsynced_text.h"
#include "lineage/schemacmp.h"

#include <string.h>
#include <unistd.h>

/* Where one run is rendered. */
typedef struct {
    FILE *out;           /* the report */
    cli_progress line;   /* a long step's time and rows, on a terminal (progress.h) */
    const char *db_path; /* the database, lent */
} s_view;

/* An id for people: its first 12 hex digits, or "none" when there is none. */
static void s_short(bool has, const stm_id *id, char out[STM_ID_SHORT_LEN + 1])
{
    if (has)
        stm_id_short(id, out);
    else
        strcpy(out, "none");
}

/* Writes text to out indented by four spaces. */
static void s_indented(FILE *out, const char *text)
{
    const char *p = text;
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        if (n)
            fprintf(out, "    %.*s\n", (int)n, p);
        else
            fputc('\n', out);
        p += n + (nl ? 1 : 0);
    }
}

/* Writes the tables of version that are not synced, each with why, those whose keys
 * are chosen per device, and those whose keys change rule since version from; nothing
 * when there are none. lead goes before it (a blank line in a plan). */
static void s_unsynced(FILE *out, const char *lead, int from, int version,
                       const syncable_table *tables, size_t n, char *const *per_device,
                       size_t nper_device, char *const *keys_changed, size_t nkeys_changed)
{
    if (n == 0 && nper_device == 0 && nkeys_changed == 0)
        return;
    buf_t b = BUF_INIT;
    unsynced_text_block(&b, version, tables, n);
    unsynced_text_per_device(&b, version, per_device, nper_device);
    unsynced_text_keys_changed(&b, from, version, keys_changed, nkeys_changed);
    fprintf(out, "%s%s", lead, stm_buf_str(&b));
    stm_buf_free(&b);
}

/* ---- plans ---- */

/* The first lines of a dry run: where the database is, and drift. */
static void s_where(FILE *out, const migrate_plan *p)
{
    if (!p->db_exists) {
        fprintf(out, "%s does not exist: it would be created, at version 0\n", p->db_path);
    } else if (p->baseline) {
        fprintf(out,
                "%s has no schema_version, and its schema is version %d's exactly; %s has %zu "
                "migrations\n",
                p->db_path, p->baseline, p->schemas_dir, p->nmigrations);
    } else if (p->untracked) {
        fprintf(out,
                "%s has no schema_version, yet holds tables of %s, which has %zu migrations: "
                "it was made without stemma\n",
                p->db_path, p->schemas_dir, p->nmigrations);
    } else {
        char sid[STM_ID_SHORT_LEN + 1];
        s_short(p->version && p->has_id, &p->id, sid);
        fprintf(out, "%s is at version %d (id %s); %s has %zu migrations\n", p->db_path, p->version,
                sid, p->schemas_dir, p->nmigrations);
    }
    if (!p->ndrift) {
        fputs("drift: none\n", out);
        return;
    }
    fputs("drift (stemma refuses to migrate until it is resolved):\n", out);
    for (size_t i = 0; i < p->ndrift; i++)
        fprintf(out, "  %s\n", p->drift[i]);
}

static void s_plan_up(FILE *out, const migrate_plan *p)
{
    if (p->nothing_to_do) {
        fprintf(out, "nothing to do: the database is at version %d\n", p->version);
        return;
    }
    if (p->backup)
        fprintf(out, "would back the database up first, to %s.v%d-<UTC time>.bak\n", p->db_path,
                p->version);
    if (p->adopt)
        fprintf(out,
                "would adopt schema_version (from an older tool, at version %d): add "
                "version ids and checksums\n",
                p->version);
    if (p->baseline)
        fprintf(out,
                "would record versions 1 to %d in schema_version, as if migrate had applied "
                "them (baseline), set up change capture, and send its %llu row%s in synced "
                "tables as operations that any later write beats\n",
                p->baseline, (unsigned long long)p->baseline_rows,
                p->baseline_rows == 1 ? "" : "s");
    if (p->nsteps)
        fprintf(out, "would apply %zu migration%s, each in its own transaction:\n", p->nsteps,
                p->nsteps == 1 ? "" : "s");
    else
        fputs("would set up change capture for the current schema\n", out);
    for (size_t i = 0; i < p->nsteps; i++) {
        const migrate_step *s = &p->steps[i];
        fprintf(out, "\nv%d  %s  %s\n", s->version, s->file, s->description);
        s_indented(out, s->sql);
    }
    for (size_t i = 0; i < p->nexclude; i++)
        fprintf(out, "%swould exclude table %s from sync\n", i == 0 && p->nsteps ? "\n" : "",
                p->exclude[i]);
}

/* Returns false when there is nothing to do (a rollback's dry run then says only that). */
static bool s_plan_down(FILE *out, const migrate_plan *p)
{
    if (p->nothing_to_do) {
        fprintf(out, "%s is at version %d: nothing to do\n", p->db_path, p->version);
        return false;
    }
    if (p->backup)
        fprintf(out, "would back the database up first, to %s.v%d-<UTC time>.bak\n", p->db_path,
                p->version);
    if (p->adopt)
        fputs("would adopt schema_version (an older tool's) first\n", out);
    fprintf(out, "would roll back %zu migration%s, each in its own transaction:\n", p->nsteps,
            p->nsteps == 1 ? "" : "s");
    for (size_t i = 0; i < p->nsteps; i++) {
        const migrate_step *s = &p->steps[i];
        fprintf(out, "\nv%d  %s  (rolls back %s)\n", s->version, s->file, s->description);
        s_indented(out, s->sql);
    }
    return true;
}

stm_err migrate_text_plan(migrate_t *m, const migrate_options *opts, migrate_direction direction,
                          FILE *out, stm_error *err)
{
    migrate_plan plan;
    stm_err rc = direction == MIGRATE_UP ? stm_migrate_run_plan(m, opts, &plan, err)
                                         : stm_migrate_rollback_plan(m, opts, &plan, err);
    if (plan.checked)
        s_where(out, &plan);
    bool planned = rc == STM_OK;
    if (planned && direction == MIGRATE_UP) {
        s_plan_up(out, &plan);
        /* What the run would meet on this database's rows, found on a copy. */
        if ((rc = stm_migrate_rehearse(m, &plan, err)) != STM_OK)
            fprintf(out, "\nthe run would stop: %s\n", err->msg);
        planned = rc == STM_OK;
    }
    else if (planned)
        planned = s_plan_down(out, &plan);
    if (planned) {
        s_unsynced(out, "\n", stm_migrate_version(m), plan.target, plan.unsynced,
                   plan.nunsynced, plan.per_device, plan.nper_device, plan.keys_changed,
                   plan.nkeys_changed);
        fputs("\ndry run: nothing was changed\n", out);
    }
    fflush(out);
    stm_migrate_plan_free(&plan);
    return rc;
}

/* ---- runs ---- */

/* Erases the progress line, so that the step's report takes its place. */
static void s_erase(s_view *v)
{
    cli_progress_clear(&v->line);
}

static void s_event(const migrate_event *ev, void *user)
{
    s_view *v = user;
    const migrate_step *s = ev->step;
    switch (ev->kind) {
    case MIGRATE_EVENT_BACKUP_WRITTEN:
        fprintf(v->out, "backup: %s\n", ev->path);
        break;
    case MIGRATE_EVENT_ADOPTED:
        fprintf(v->out,
                "adopted schema_version (from an older tool, at version %d): added version "
                "ids and checksums\n",
                ev->version);
        if (ev->rows)
            fprintf(v->out,
                    "made the %llu row%s it held operations (%llu), which any later write "
                    "beats\n",
                    (unsigned long long)ev->rows, ev->rows == 1 ? "" : "s",
                    (unsigned long long)ev->ops);
        break;
    case MIGRATE_EVENT_STEP_STARTED:
        return;
    case MIGRATE_EVENT_STEP_RUNNING:
        if (ev->rows) {
            char rows[32];
            cli_progress_show(&v->line, true, "v%d %s: running for %.1f s, %s rows written",
                              s->version, s->file, (double)ev->elapsed_ms / 1000.0,
                              cli_progress_count(ev->rows, rows));
        } else {
            cli_progress_show(&v->line, true, "v%d %s: running for %.1f s", s->version, s->file,
                              (double)ev->elapsed_ms / 1000.0);
        }
        return;
    case MIGRATE_EVENT_STEP_FAILED:
        s_erase(v);
        return;
    case MIGRATE_EVENT_STEP_DONE:
        s_erase(v);
        if (s->direction == MIGRATE_UP)
            fprintf(v->out, "applied v%d  %s  %s  (%lld ms)\n", s->version, s->file, s->description,
                    ev->elapsed_ms);
        else
            fprintf(v->out, "rolled back v%d  %s  (%lld ms)\n", s->version, s->file,
                    ev->elapsed_ms);
        break;
    case MIGRATE_EVENT_REPLAYED:
        /* A replay that found nothing parked is not worth a line. */
        if (!ev->replayed && !ev->parked)
            return;
        fprintf(v->out, "replayed %llu parked operation%s (%llu still parked)\n",
                (unsigned long long)ev->replayed, ev->replayed == 1 ? "" : "s",
                (unsigned long long)ev->parked);
        break;
    case MIGRATE_EVENT_CAPTURE_SET_UP:
        fprintf(v->out, "%s: change capture set up at version %d\n", v->db_path, ev->version);
        break;
    case MIGRATE_EVENT_BASELINED:
        fprintf(v->out,
                "baseline: %s had no schema_version and its schema is version %d's: recorded "
                "versions 1 to %d as applied, set up change capture, and made its %llu row%s "
                "operations (%llu), which any later write beats\n",
                v->db_path, ev->version, ev->version, (unsigned long long)ev->rows,
                ev->rows == 1 ? "" : "s", (unsigned long long)ev->ops);
        break;
    }
    fflush(v->out);
}

stm_err migrate_text_run(migrate_t *m, const migrate_options *opts, migrate_direction direction,
                         FILE *out, bool quiet, stm_error *err)
{
    s_view view = {.out = out, .db_path = stm_migrate_db_path(m)};
    cli_progress_init(&view.line, quiet);
    migrate_options o = *opts;
    o.progress = s_event;
    o.progress_user = &view;
    migrate_result res;
    stm_err rc = direction == MIGRATE_UP ? stm_migrate_run(m, &o, &res, err)
                                         : stm_migrate_rollback(m, &o, &res, err);
    if (rc == STM_OK && res.nothing_to_do) {
        fprintf(out, "%s is at version %d: nothing to do\n", view.db_path, res.version);
    } else if (rc == STM_OK) {
        char sid[STM_ID_SHORT_LEN + 1];
        s_short(res.has_id, &res.id, sid);
        fprintf(out, "%s: now at version %d (id %s)\n", view.db_path, res.version, sid);
    }
    if (rc == STM_OK && res.dropped)
        fprintf(out,
                "kept %llu value%s of the columns and tables the rollback dropped, as parked "
                "operations: they come back when a migration adds them again\n",
                (unsigned long long)res.dropped, res.dropped == 1 ? "" : "s");
    if (rc == STM_OK && res.derived_rows)
        fprintf(out,
                "sending what the migrations wrote to %llu synced row%s (%llu operation%s), "
                "for the devices that held those rows elsewhere or get them later\n",
                (unsigned long long)res.derived_rows, res.derived_rows == 1 ? "" : "s",
                (unsigned long long)res.derived_ops, res.derived_ops == 1 ? "" : "s");
    if (rc == STM_OK && res.derived_kept + res.derived_unkept)
        fprintf(out,
                "kept %llu cell%s or row%s written at a migration's version or later as they "
                "were%s\n",
                (unsigned long long)res.derived_kept, res.derived_kept == 1 ? "" : "s",
                res.derived_kept == 1 ? "" : "s",
                res.derived_unkept ? " (some could not be put back: a constraint refused them)"
                                   : "");
    if (rc == STM_OK)
        s_unsynced(out, "", res.from, res.version, res.unsynced, res.nunsynced, res.per_device,
                   res.nper_device, res.keys_changed, res.nkeys_changed);
    fflush(out);
    stm_migrate_result_free(&res);
    return rc;
}

void migrate_text_baseline_diffs(migrate_t *m, const migrate_options *opts, FILE *out)
{
    if (!stm_migrate_untracked(m) || (!opts->baseline && opts->baseline_version <= 0))
        return;
    const baseline_match *match = NULL;
    /* The error named up to SCHEMACMP_SUMMARY_MAX already: the list only when it had
     * more. */
    if (stm_migrate_recognise(m, opts->baseline_version, &match, NULL) != STM_OK ||
        match->nversions || match->ndiffs <= SCHEMACMP_SUMMARY_MAX)
        return;
    buf_t b = BUF_INIT;
    for (size_t i = 0; i < match->ndiffs; i++) {
        stm_buf_reset(&b);
        stm_schemacmp_describe(&b, &match->diffs[i], match->closest, false);
        fprintf(out, "  %s\n", stm_buf_str(&b));
    }
    stm_buf_free(&b);
}

/* "6 and 7", "2, 3 and 4". */
static void s_versions(buf_t *b, const int *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        stm_buf_printf(b, "%s%d", i == 0 ? "" : i + 1 == n ? " and " : ", ", v[i]);
}

stm_err migrate_text_baseline_status(migrate_t *m, buf_t *b, jsonw_t *w, stm_error *err)
{
    const baseline_match *match = NULL;
    if (stm_migrate_untracked(m)) {
        stm_err rc = stm_migrate_recognise(m, 0, &match, err);
        if (rc != STM_OK)
            return rc;
    }
    if (w) {
        stm_jsonw_key(w, "baseline");
        if (!match) {
            stm_jsonw_null(w);
            return STM_OK;
        }
        stm_jsonw_object_begin(w);
        stm_jsonw_key(w, "versions");
        stm_jsonw_array_begin(w);
        for (size_t i = 0; i < match->nversions; i++)
            stm_jsonw_int(w, match->versions[i]);
        stm_jsonw_array_end(w);
        stm_jsonw_key(w, "closest");
        if (match->nversions)
            stm_jsonw_null(w);
        else
            stm_jsonw_int(w, match->closest);
        stm_jsonw_key(w, "differences");
        stm_jsonw_array_begin(w);
        buf_t d = BUF_INIT;
        for (size_t i = 0; i < match->ndiffs; i++) {
            stm_buf_reset(&d);
            stm_schemacmp_describe(&d, &match->diffs[i], match->closest, false);
            stm_jsonw_string(w, stm_buf_str(&d));
        }
        stm_buf_free(&d);
        stm_jsonw_array_end(w);
        stm_jsonw_object_end(w);
        return STM_OK;
    }
    if (!match)
        return STM_OK;
    if (match->nversions == 1) {
        stm_buf_printf(b,
                       "baseline  its schema is version %d's exactly: 'stemma migrate --baseline' "
                       "records it and migrates on\n",
                       match->versions[0]);
    } else if (match->nversions > 1) {
        stm_buf_puts(b, "baseline  its schema is that of versions ");
        s_versions(b, match->versions, match->nversions);
        stm_buf_puts(b, " alike (what the migrations between them change is not in the schema): "
                        "'stemma migrate --baseline-version N' says which its data is at\n");
    } else {
        stm_buf_printf(b,
                       "baseline  its schema is no version's: it differs from version %d, the "
                       "closest, in %zu place%s ('stemma migrate --baseline' refuses it):\n",
                       match->closest, match->ndiffs, match->ndiffs == 1 ? "" : "s");
        for (size_t i = 0; i < match->ndiffs; i++) {
            stm_buf_puts(b, "  ");
            stm_schemacmp_describe(b, &match->diffs[i], match->closest, false);
            stm_buf_putc(b, '\n');
        }
    }
    return STM_OK;
}
