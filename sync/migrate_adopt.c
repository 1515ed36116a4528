/* migrate_adopt.c - taking over a database stemma did not migrate (migrate.h): an older
 * tool's schema_version adopted, or a database with none at all that holds tables of
 * the schema set (made by the application itself, the sqlite3 shell, another tool)
 * recognised at the version its schema is and recorded there: the baseline.
 *
 * A baseline is one transaction, so that the database is either as it was or at a
 * recorded version with capture set up and its rows operations (migrate.h, invariant
 * 2): the schema compared again under the write lock, schema_version filled with the
 * rows migrate would have written for versions 1 .. N, stemma's tables and triggers,
 * then every row of every synced table made an operation clocked as low as a row a
 * migration makes (sync/migrate_ops.h, stm_migrate_ops_record_rows), so that the first
 * sync carries them and any real write beats them. What a plan refuses (nothing
 * matches, several versions match, no --baseline) it refuses on the read-only
 * connection, before anything is written (invariant 5). */
#include "migrate_internal.h"
#include "migrate_ops.h"
#include "base/buf.h"
#include "base/mem.h"
#include "lineage/schemacmp.h"
#include "lineage/sqlscript.h"
#include "lineage/syncable.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

/* Ends an adoption's transaction: commits it after rc == STM_OK, else (or when the
 * commit fails) rolls it back and says what (failed) and where the database is. */
static stm_err s_end(const migrate_run_ctx *run, stm_err rc, const char *failed, stm_error *err)
{
    if (rc == STM_OK)
        rc = stm_migrate_tx_commit(run->self, err);
    if (rc == STM_OK)
        return STM_OK;
    stm_migrate_tx_rollback(run->self);
    if (run->self->moved_to < 0)
        stm_error_append(err, "%s; the database is as it was", failed);
    else
        stm_migrate_tell_moved(run, err);
    return rc;
}

/* ---- an older tool's schema_version ---- */

/* Internal (migrate_internal.h); the numbers were checked against the directory
 * (migrate.c, drift). */
stm_err stm_migrate_adopt(const migrate_run_ctx *run, stm_error *err)
{
    migrate_t *self = run->self;
    stm_err rc = stm_migrate_tx_begin(self, self->version, false, err);
    if (rc == STM_OK && !self->has_id_column)
        rc = stm_store_exec(self->store, "ALTER TABLE schema_version ADD COLUMN version_id TEXT",
                            err);
    if (rc == STM_OK && !self->has_checksum_column)
        rc =
            stm_store_exec(self->store, "ALTER TABLE schema_version ADD COLUMN checksum TEXT", err);
    sqlite3_stmt *stmt = NULL;
    if (rc == STM_OK &&
        sqlite3_prepare_v2(stm_store_db(self->store),
                           "UPDATE schema_version SET version_id = coalesce(version_id, ?2), "
                           "checksum = coalesce(checksum, ?3) WHERE version = ?1",
                           -1, &stmt, NULL) != SQLITE_OK)
        rc = stm_store_error(self->store, err, "adopting schema_version");
    for (size_t i = 0; i < self->nrecords && rc == STM_OK; i++) {
        const lineage_version *v =
            stm_lineage_version_at(self->lineage, (size_t)self->records[i].version - 1);
        char id[STM_ID_HEX_LEN + 1], sum[STM_ID_HEX_LEN + 1];
        stm_id_to_hex(&v->id, id);
        stm_id_to_hex(&v->checksum, sum);
        sqlite3_reset(stmt);
        sqlite3_bind_int(stmt, 1, v->number);
        sqlite3_bind_text(stmt, 2, id, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(stmt, 3, sum, -1, SQLITE_TRANSIENT);
        if (sqlite3_step(stmt) != SQLITE_DONE)
            rc = stm_store_error(self->store, err, "adopting schema_version");
    }
    sqlite3_finalize(stmt);
    /* Rows the database held before stemma's tables were made are its own, written
     * before stemma could see them: operations as a baseline makes them (below). */
    bool rows_before = rc == STM_OK && !stm_store_is_prepared(self->store);
    if (rc == STM_OK) {
        stm_id id = stm_migrate_id_of(self, self->version);
        rc = stm_migrate_tx_capture(self, run->o, &id, err);
    }
    migrate_ops_stats st = {0};
    if (rc == STM_OK && rows_before)
        rc = stm_migrate_ops_record_rows(self->store, self->lineage, self->version, &st, err);
    if ((rc = s_end(run, rc, "adopting schema_version failed", err)) != STM_OK)
        return rc;
    run->res->adopted = true;
    run->res->baseline_rows = st.rows;
    run->res->baseline_ops = st.ops;
    migrate_event ev = {
        .kind = MIGRATE_EVENT_ADOPTED, .version = self->version, .rows = st.rows, .ops = st.ops};
    stm_migrate_tell(run, &ev);
    return STM_OK;
}

/* ---- no schema_version: recognising the version ---- */

/* Internal (migrate_internal.h). */
stm_err stm_migrate_read_untracked(migrate_t *self, stm_error *err)
{
    self->untracked = false;
    if (!self->store || !self->lineage || self->has_table)
        return STM_OK;
    catalog_t *c = NULL;
    stm_err rc = stm_catalog_read(stm_store_db(self->store), &c, err);
    if (rc != STM_OK)
        return stm_error_prefix(err, "%s", self->db_path);
    const char **names = NULL;
    self->untracked = stm_baseline_set_tables(c, self->lineage, &names) > 0;
    free(names);
    stm_catalog_destroy(&c);
    return STM_OK;
}

bool stm_migrate_untracked(const migrate_t *self)
{
    return self->untracked;
}

stm_err stm_migrate_recognise(migrate_t *self, int want, const baseline_match **out, stm_error *err)
{
    *out = NULL;
    if (!self->recognised || self->recognised_want != want) {
        stm_baseline_match_free(&self->match);
        self->recognised = false;
        if (!self->store)
            return stm_error_set(err, STM_EUSAGE, "%s: no such database file", self->db_path);
        stm_err rc = stm_baseline_match(stm_store_db(self->store), self->set, self->lineage, want,
                                        &self->match, err);
        if (rc != STM_OK) {
            stm_baseline_match_free(&self->match);
            return stm_error_prefix(err, "%s", self->db_path);
        }
        self->recognised = true;
        self->recognised_want = want;
    }
    *out = &self->match;
    return STM_OK;
}

/* ---- the plan ---- */

/* "6 and 7", "2, 3 and 4". */
static void s_versions(buf_t *b, const int *v, size_t n, const char *last_joint)
{
    for (size_t i = 0; i < n; i++)
        stm_buf_printf(b, "%s%d", i == 0 ? "" : i + 1 == n ? last_joint : ", ", v[i]);
}

/* The rows of the database's synced tables (o's exclusions counted): what a baseline
 * makes operations. */
static stm_err s_count_rows(migrate_t *self, const migrate_options *o, uint64_t *rows,
                            stm_error *err)
{
    *rows = 0;
    sqlite3 *db = stm_store_db(self->store);
    catalog_t *c = NULL;
    stm_err rc = stm_catalog_read(db, &c, err);
    buf_t q = BUF_INIT;
    for (size_t i = 0; rc == STM_OK && i < stm_catalog_count(c); i++) {
        const catalog_table *t = stm_catalog_at(c, i);
        bool excluded = false;
        for (size_t k = 0; k < o->nexclude && !excluded; k++)
            excluded = sqlite3_stricmp(o->exclude[k], stm_catalog_table_name(t)) == 0;
        if (stm_syncable_classify(t, excluded) != SYNCABLE_SYNCED)
            continue;
        stm_buf_reset(&q);
        stm_buf_puts(&q, "SELECT count(*) FROM main.");
        stm_sqlscript_quote_ident(&q, stm_catalog_table_name(t));
        sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(db, stm_buf_str(&q), -1, &st, NULL) != SQLITE_OK ||
            sqlite3_step(st) != SQLITE_ROW)
            rc = stm_store_error(self->store, err, "counting the rows of the database's tables");
        else
            *rows += (uint64_t)sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
    }
    stm_buf_free(&q);
    stm_catalog_destroy(&c);
    return rc;
}

/* STM_EINPUT: the database's schema is no version's (m has the closest). */
static stm_err s_refuse_no_match(const migrate_t *self, const migrate_options *o,
                                 const baseline_match *m, stm_error *err)
{
    buf_t b = BUF_INIT;
    stm_schemacmp_summary(&b, m->diffs, m->ndiffs, m->closest, false);
    stm_err rc;
    if (o->baseline_version > 0)
        rc = stm_error_set(err, STM_EINPUT,
                           "%s: its schema is not version %d's (--baseline-version): it %s; "
                           "nothing was changed",
                           self->db_path, m->closest, stm_buf_str(&b));
    else
        rc = stm_error_set(err, STM_EINPUT,
                           "%s: has no schema_version, and its schema is no version of %s: it "
                           "differs from version %d, the closest, in %zu place%s: it %s; make "
                           "the schema that version's, or add the migration that makes it; "
                           "nothing was changed",
                           self->db_path, stm_schemaset_dir(self->set), m->closest, m->ndiffs,
                           m->ndiffs == 1 ? "" : "s", stm_buf_str(&b));
    stm_buf_free(&b);
    return rc;
}

/* STM_EINPUT: several versions have the database's schema (m->versions). */
static stm_err s_refuse_ambiguous(const migrate_t *self, const baseline_match *m, stm_error *err)
{
    buf_t b = BUF_INIT, opts = BUF_INIT;
    s_versions(&b, m->versions, m->nversions, " and ");
    for (size_t i = 0; i < m->nversions; i++)
        stm_buf_printf(&opts, "%s--baseline-version %d", i == 0 ? "" : " or ", m->versions[i]);
    int lo = m->versions[0], hi = m->versions[m->nversions - 1];
    const schemaset_migration *first = stm_schemaset_at(self->set, (size_t)lo);
    const schemaset_migration *last = stm_schemaset_at(self->set, (size_t)hi - 1);
    stm_err rc = stm_error_set(
        err, STM_EINPUT,
        "%s: has no schema_version, and its schema is that of versions %s alike: what "
        "%s/%s%s%s change%s is not in the schema (data, or nothing stemma compares), so "
        "only you can tell which version its data is at; say it with %s; nothing was changed",
        self->db_path, stm_buf_str(&b), stm_schemaset_dir(self->set), first->file,
        hi > lo + 1 ? " to " : "", hi > lo + 1 ? last->file : "", hi > lo + 1 ? "" : "s",
        stm_buf_str(&opts));
    stm_buf_free(&b);
    stm_buf_free(&opts);
    return rc;
}

/* Internal (migrate_internal.h). */
stm_err stm_migrate_plan_baseline(migrate_t *self, const migrate_options *o, migrate_plan *plan,
                                  stm_error *err)
{
    plan->baseline = 0;
    if (o->baseline_version > 0 && self->has_table)
        return stm_error_set(err, STM_EUSAGE,
                             "%s: records its version in schema_version already (version %d): "
                             "--baseline-version is for a database without one",
                             self->db_path, self->version);
    if (self->has_table)
        return STM_OK;
    if (!self->untracked) {
        if (o->baseline_version > 0)
            return stm_error_set(err, STM_EINPUT,
                                 "%s: holds no table of %s, so its schema is version 0's, not "
                                 "%d's (--baseline-version); nothing was changed",
                                 self->db_path, stm_schemaset_dir(self->set), o->baseline_version);
        return STM_OK; /* version 0: a plain migrate */
    }
    if (self->prepared)
        return stm_error_set(err, STM_EINPUT,
                             "%s: has stemma's tables but no schema_version (was it dropped?): "
                             "stemma cannot tell what it applied; put back a backup ('stemma "
                             "restore'); nothing was changed",
                             self->db_path);
    if (!o->baseline && o->baseline_version <= 0)
        return stm_error_set(err, STM_EINPUT,
                             "%s: has no schema_version, yet holds tables of %s: it was made "
                             "without stemma, and migration 1 would meet them; 'stemma migrate "
                             "--baseline' recognises the version its schema is, records it and "
                             "migrates on from there (with --dry-run it says which); nothing "
                             "was changed",
                             self->db_path, stm_schemaset_dir(self->set));
    if (o->baseline_version > (int)stm_lineage_count(self->lineage))
        return stm_error_set(err, STM_EINPUT,
                             "there is no version %d (--baseline-version): %s has %zu "
                             "migrations",
                             o->baseline_version, stm_schemaset_dir(self->set),
                             stm_lineage_count(self->lineage));
    const baseline_match *m = NULL;
    stm_err rc =
        stm_migrate_recognise(self, o->baseline_version > 0 ? o->baseline_version : 0, &m, err);
    if (rc != STM_OK)
        return rc;
    if (m->nversions == 0)
        return s_refuse_no_match(self, o, m, err);
    if (m->nversions > 1)
        return s_refuse_ambiguous(self, m, err);
    plan->baseline = m->versions[0];
    return plan->baseline > 0 ? s_count_rows(self, o, &plan->baseline_rows, err) : STM_OK;
}

/* ---- the run ---- */

/* Under the write lock: the schema is still version v's (another process may have
 * changed it since the plan read it). */
static stm_err s_check_still(migrate_t *self, int v, stm_error *err)
{
    schemacmp_t *got = NULL;
    stm_err rc = stm_schemacmp_read(stm_store_db(self->store), false, &got, err);
    if (rc != STM_OK)
        return rc;
    schemacmp_t *want = stm_schemacmp_of_lineage(self->lineage, v);
    schemacmp_diff *d = NULL;
    size_t n = stm_schemacmp_compare(want, got, &d);
    if (n) {
        buf_t b = BUF_INIT;
        stm_schemacmp_summary(&b, d, n, v, false);
        rc = stm_error_set(err, STM_EDB,
                           "%s: its schema changed while stemma was checking it (it now %s); run "
                           "the command again",
                           self->db_path, stm_buf_str(&b));
        stm_buf_free(&b);
    }
    stm_schemacmp_diffs_free(d, n);
    stm_schemacmp_destroy(&want);
    stm_schemacmp_destroy(&got);
    return rc;
}

/* Internal (migrate_internal.h). */
stm_err stm_migrate_baseline(const migrate_run_ctx *run, const migrate_plan *plan, stm_error *err)
{
    migrate_t *self = run->self;
    int v = plan->baseline;
    stm_err rc = stm_migrate_tx_begin(self, 0, false, err);
    if (rc == STM_OK)
        rc = s_check_still(self, v, err);
    for (int k = 1; k <= v && rc == STM_OK; k++)
        rc = stm_migrate_record_version(self, stm_lineage_version_at(self->lineage, (size_t)k - 1),
                                        err);
    stm_id id = stm_migrate_id_of(self, v);
    if (rc == STM_OK)
        rc = stm_migrate_tx_capture(self, run->o, &id, err);
    migrate_ops_stats st = {0};
    if (rc == STM_OK)
        rc = stm_migrate_ops_record_rows(self->store, self->lineage, v, &st, err);
    if ((rc = s_end(run, rc, "the baseline was rolled back", err)) != STM_OK)
        return rc;
    migrate_result *res = run->res;
    res->baseline = v;
    res->baseline_rows = st.rows;
    res->baseline_ops = st.ops;
    res->version = v;
    res->has_id = true;
    res->id = id;
    migrate_event ev = {
        .kind = MIGRATE_EVENT_BASELINED, .version = v, .rows = st.rows, .ops = st.ops};
    stm_migrate_tell(run, &ev);
    return STM_OK;
}
