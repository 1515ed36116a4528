/* migrate.c - the migrator's reading of a database: schema_version's layout and rows,
 * drift against the schema directory (migrate.h, invariant 4), the accessors, and
 * history. It never writes; planning is migrate_plan.c's and running migrate_run.c's
 * (migrate_internal.h says how the three share migrate_t). */
#include "migrate_internal.h"
#include "capture.h"
#include "base/buf.h"
#include "base/mem.h"
#include "lineage/schemacmp.h"

#include <sqlite3.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

/* ---- small helpers ---- */

/* Internal (migrate_internal.h). */
static void s_drift(migrate_t *self, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void s_drift(migrate_t *self, const char *fmt, ...)
{
    buf_t b = BUF_INIT;
    va_list ap;
    va_start(ap, fmt);
    stm_buf_vprintf(&b, fmt, ap);
    va_end(ap);
    self->drift = stm_grow(self->drift, &self->drift_cap, self->ndrift + 1, sizeof *self->drift);
    self->drift[self->ndrift++] = stm_buf_detach(&b);
}

static void s_record_free(migrate_record *r)
{
    free(r->applied_at);
    free(r->description);
}

/* Internal (migrate_internal.h). */
void stm_migrate_clear_state(migrate_t *self)
{
    for (size_t i = 0; i < self->nrecords; i++)
        s_record_free(&self->records[i]);
    self->nrecords = 0;
    for (size_t i = 0; i < self->ndrift; i++)
        free(self->drift[i]);
    self->ndrift = 0;
    for (size_t i = 0; i < self->nexclude; i++)
        free(self->exclude[i]);
    free(self->exclude);
    self->exclude = NULL;
    self->nexclude = 0;
    self->prepared = self->has_table = self->has_id_column = self->has_checksum_column = false;
    self->adopt = false;
    self->untracked = false;
    stm_baseline_match_free(&self->match);
    self->recognised = false;
    self->version = 0;
}

/* ---- reading schema_version ---- */

/* Reads which of schema_version's columns exist. STM_EINPUT when the table is of a
 * layout stemma does not know, since writing to it could damage another tool's data. */
static stm_err s_read_layout(migrate_t *self, stm_error *err)
{
    sqlite3 *db = stm_store_db(self->store);
    sqlite3_stmt *stmt = NULL;
    if (sqlite3_prepare_v2(db,
                           "SELECT type FROM sqlite_schema WHERE name = 'schema_version' "
                           "COLLATE NOCASE",
                           -1, &stmt, NULL) != SQLITE_OK)
        return stm_store_error(self->store, err, "reading the schema");
    int step = sqlite3_step(stmt);
    char *type = step == SQLITE_ROW ? stm_strdup((const char *)sqlite3_column_text(stmt, 0)) : NULL;
    sqlite3_finalize(stmt);
    if (step != SQLITE_ROW && step != SQLITE_DONE)
        return stm_store_error(self->store, err, "reading the schema");
    if (!type)
        return STM_OK;
    if (strcmp(type, "table") != 0) {
        stm_err rc = stm_error_set(err, STM_EINPUT,
                                   "%s: schema_version is a %s, not a table; stemma keeps its "
                                   "record of applied migrations in a table of that name",
                                   self->db_path, type);
        free(type);
        return rc;
    }
    free(type);
    self->has_table = true;
    if (sqlite3_prepare_v2(db, "PRAGMA main.table_info(schema_version)", -1, &stmt, NULL) !=
        SQLITE_OK)
        return stm_store_error(self->store, err, "reading schema_version's columns");
    bool has_version = false, has_applied = false, has_description = false;
    buf_t names = BUF_INIT;
    while ((step = sqlite3_step(stmt)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(stmt, 1);
        if (!name)
            continue;
        stm_buf_printf(&names, "%s%s", names.len ? ", " : "", name);
        has_version |= strcasecmp(name, "version") == 0;
        has_applied |= strcasecmp(name, "applied_at") == 0;
        has_description |= strcasecmp(name, "description") == 0;
        self->has_id_column |= strcasecmp(name, "version_id") == 0;
        self->has_checksum_column |= strcasecmp(name, "checksum") == 0;
    }
    sqlite3_finalize(stmt);
    stm_err rc = STM_OK;
    if (step != SQLITE_DONE)
        rc = stm_store_error(self->store, err, "reading schema_version's columns");
    else if (!has_version || !has_applied || !has_description)
        rc = stm_error_set(err, STM_EINPUT,
                           "%s: its schema_version table has the columns (%s), not (version, "
                           "applied_at, description[, version_id, checksum]); it was made by "
                           "another tool, which stemma will not overwrite",
                           self->db_path, stm_buf_str(&names));
    stm_buf_free(&names);
    return rc;
}

/* Parses a recorded id: 64 hex digits, or NULL for none. False when it is neither. */
static bool s_read_hex(sqlite3_stmt *stmt, int col, bool *has, stm_id *out)
{
    *has = false;
    if (sqlite3_column_type(stmt, col) == SQLITE_NULL)
        return true;
    const char *text = (const char *)sqlite3_column_text(stmt, col);
    if (!text || !stm_id_from_hex(text, out))
        return false;
    *has = true;
    return true;
}

static stm_err s_read_records(migrate_t *self, stm_error *err)
{
    buf_t sql = BUF_INIT;
    stm_buf_printf(&sql,
                   "SELECT version, applied_at, description, %s, %s FROM schema_version "
                   "ORDER BY version",
                   self->has_id_column ? "version_id" : "NULL",
                   self->has_checksum_column ? "checksum" : "NULL");
    sqlite3_stmt *stmt = NULL;
    int prc = sqlite3_prepare_v2(stm_store_db(self->store), stm_buf_str(&sql), -1, &stmt, NULL);
    stm_buf_free(&sql);
    if (prc != SQLITE_OK)
        return stm_store_error(self->store, err, "reading schema_version");
    int step;
    while ((step = sqlite3_step(stmt)) == SQLITE_ROW) {
        sqlite3_int64 v = sqlite3_column_int64(stmt, 0);
        if (sqlite3_column_type(stmt, 0) != SQLITE_INTEGER || v < 1 || v > SCHEMASET_MAX_VERSIONS) {
            const char *text = (const char *)sqlite3_column_text(stmt, 0);
            s_drift(self,
                    "%s: schema_version holds a row whose version (%s) is not a migration "
                    "number",
                    self->db_path, text ? text : "NULL");
            continue;
        }
        migrate_record r = {0};
        r.version = (int)v;
        const char *applied = (const char *)sqlite3_column_text(stmt, 1);
        const char *desc = (const char *)sqlite3_column_text(stmt, 2);
        if (!s_read_hex(stmt, 3, &r.has_id, &r.id))
            s_drift(self, "%s: schema_version's version_id for version %d is not a 64-digit hex id",
                    self->db_path, r.version);
        if (!s_read_hex(stmt, 4, &r.has_checksum, &r.checksum))
            s_drift(self, "%s: schema_version's checksum for version %d is not a 64-digit hex id",
                    self->db_path, r.version);
        r.applied_at = stm_strdup(applied ? applied : "");
        r.description = stm_strdup(desc ? desc : "");
        self->records =
            stm_grow(self->records, &self->records_cap, self->nrecords + 1, sizeof *self->records);
        self->records[self->nrecords++] = r;
    }
    sqlite3_finalize(stmt);
    if (step != SQLITE_DONE)
        return stm_store_error(self->store, err, "reading schema_version");
    return STM_OK;
}

/* Reads the tables the user excluded (stemma_exclude), in order of name. */
static stm_err s_read_exclude(migrate_t *self, stm_error *err)
{
    sqlite3_stmt *stmt = NULL;
    if (sqlite3_prepare_v2(stm_store_db(self->store), "SELECT tbl FROM stemma_exclude ORDER BY tbl",
                           -1, &stmt, NULL) != SQLITE_OK)
        return stm_store_error(self->store, err, "reading stemma_exclude");
    size_t cap = 0;
    int step;
    while ((step = sqlite3_step(stmt)) == SQLITE_ROW) {
        const char *tbl = (const char *)sqlite3_column_text(stmt, 0);
        self->exclude = stm_grow(self->exclude, &cap, self->nexclude + 1, sizeof *self->exclude);
        self->exclude[self->nexclude++] = stm_strdup(tbl ? tbl : "");
    }
    sqlite3_finalize(stmt);
    return step == SQLITE_DONE ? STM_OK
                               : stm_store_error(self->store, err, "reading stemma_exclude");
}

/* Compares the records with the directory (see migrate.h: drift). */
static void s_check_drift(migrate_t *self)
{
    size_t count = stm_lineage_count(self->lineage);
    const char *dir = stm_schemaset_dir(self->set);
    int expected = 1;
    bool earlier_changed = false;
    for (size_t i = 0; i < self->nrecords; i++) {
        const migrate_record *r = &self->records[i];
        if (r->version > expected)
            s_drift(self,
                    "%s: schema_version has no row for version %d but has one for %d, so "
                    "stemma cannot tell whether migration %d ran",
                    self->db_path, expected, r->version, expected);
        else if (r->version < expected)
            s_drift(self, "%s: schema_version holds version %d twice", self->db_path, r->version);
        expected = r->version + 1;
        if (!r->has_id || !r->has_checksum)
            self->adopt = true;
        if ((size_t)r->version > count) {
            s_drift(self,
                    "database %s holds version %d, which %s lacks (\"%s\", applied %s): is "
                    "this the schema directory the database was migrated with?",
                    self->db_path, r->version, dir, r->description, r->applied_at);
            continue;
        }
        const lineage_version *v = stm_lineage_version_at(self->lineage, (size_t)r->version - 1);
        const schemaset_migration *m = stm_schemaset_at(self->set, (size_t)r->version - 1);
        if (r->has_checksum && !stm_id_equal(&r->checksum, &v->checksum)) {
            s_drift(self, "%s/%s: changed since it was applied (checksum differs)", dir, m->file);
            earlier_changed = true;
        } else if (r->has_id && !stm_id_equal(&r->id, &v->id) && !earlier_changed) {
            /* The id chains every text up to here, so some text differs from the one
             * applied though no checksum says so: it must be one recorded without a
             * checksum (an adopted row), at or below this version. */
            const migrate_record *culprit = NULL;
            for (size_t j = 0; j <= i && !culprit; j++)
                if (!self->records[j].has_checksum && (size_t)self->records[j].version <= count)
                    culprit = &self->records[j];
            if (culprit)
                s_drift(self,
                        "%s/%s: differs from the migration that was applied (version "
                        "%d's recorded id shows it; %d was recorded without a checksum)",
                        dir, stm_schemaset_at(self->set, (size_t)culprit->version - 1)->file,
                        r->version, culprit->version);
            else
                s_drift(self,
                        "%s: schema_version's recorded id for version %d does not follow "
                        "from the migrations it records: was the table edited by hand?",
                        self->db_path, r->version);
            earlier_changed = true;
        }
    }
    if (!self->has_id_column || !self->has_checksum_column)
        self->adopt = self->has_table;
}

/* A database whose schema is not the one its recorded version has is drift too: the
 * next migration would stumble on it ("duplicate column name") and the peers would be
 * told a version whose columns it lacks. It happens when a down file did not undo its
 * migration (run by a stemma that did not check them: migrate_plan.c does now) or a
 * table was changed by hand. Compared with what the lineage derived, tables and
 * columns (it keeps no indexes: lineage/schemacmp.h), and only once a version is
 * recorded: a database at 0 may hold tables made before its first migration. Only
 * when nothing else drifted: then the version's schema is the one to compare with. */
static stm_err s_check_catalog(migrate_t *self, stm_error *err)
{
    if (self->ndrift || self->version < 1 ||
        (size_t)self->version > stm_lineage_count(self->lineage))
        return STM_OK;
    schemacmp_t *got = NULL;
    stm_err rc = stm_schemacmp_read(stm_store_db(self->store), false, &got, err);
    if (rc != STM_OK)
        return stm_error_prefix(err, "%s", self->db_path);
    schemacmp_t *want = stm_schemacmp_of_lineage(self->lineage, self->version);
    schemacmp_diff *diffs = NULL;
    size_t n = stm_schemacmp_compare(want, got, &diffs);
    if (n) {
        buf_t b = BUF_INIT;
        stm_schemacmp_summary(&b, diffs, n, self->version, false);
        s_drift(self,
                "%s: %s (its schema is not version %d's: a down file that did not undo its "
                "migration, or a change by hand; put back the backup taken before, or make "
                "the schema match)",
                self->db_path, stm_buf_str(&b), self->version);
        stm_buf_free(&b);
    }
    stm_schemacmp_diffs_free(diffs, n);
    stm_schemacmp_destroy(&want);
    stm_schemacmp_destroy(&got);
    return STM_OK;
}

/* Internal (migrate_internal.h). */
stm_err stm_migrate_load_state(migrate_t *self, stm_error *err)
{
    stm_migrate_clear_state(self);
    if (!self->store)
        return STM_OK;
    self->prepared = stm_store_is_prepared(self->store);
    self->replay_owed = self->prepared && stm_store_replay_owed(self->store);
    stm_err rc = s_read_layout(self, err);
    if (rc == STM_OK && self->has_table)
        rc = s_read_records(self, err);
    if (rc == STM_OK && self->prepared)
        rc = s_read_exclude(self, err);
    if (rc == STM_OK && self->set && !self->has_table)
        rc = stm_migrate_read_untracked(self, err);
    if (rc != STM_OK)
        return rc;
    if (self->nrecords)
        self->version = self->records[self->nrecords - 1].version;
    if (self->set)
        s_check_drift(self);
    return self->set ? s_check_catalog(self, err) : STM_OK;
}

/* ---- open, accessors ---- */

stm_err stm_migrate_open(const char *db_path, const char *schemas_dir, migrate_t **out,
                         stm_error *err)
{
    return stm_migrate_open_cached(db_path, schemas_dir, NULL, out, err);
}

stm_err stm_migrate_open_cached(const char *db_path, const char *schemas_dir,
                                const char *cache_dir, migrate_t **out, stm_error *err)
{
    return stm_migrate_open_layout(db_path, schemas_dir, LAYOUT_AUTO, cache_dir, out, err);
}

stm_err stm_migrate_open_layout(const char *db_path, const char *schemas_dir,
                                schemaset_layout layout, const char *cache_dir, migrate_t **out,
                                stm_error *err)
{
    schemaset_t *set = NULL;
    lineage_t *lineage = NULL;
    lens_set_t *lenses = NULL;
    cache_report report;
    stm_err rc = stm_schemaset_load_layout(schemas_dir, layout, &set, err);
    /* With a cache the lenses come too: read back, they cost little, and a run that
     * steps needs them (without one they are derived when a step is to run). */
    if (rc == STM_OK)
        rc = stm_cache_derive(set, cache_dir, &lineage, cache_dir ? &lenses : NULL, &report,
                              err);
    if (rc != STM_OK) {
        stm_schemaset_destroy(&set);
        return rc;
    }
    migrate_t *self = stm_calloc(1, sizeof *self);
    self->moved_to = -1;
    self->db_path = stm_strdup(db_path);
    self->set = set;
    self->lineage = lineage;
    self->lenses = lenses;
    self->cache = report;
    struct stat st;
    self->exists = stat(db_path, &st) == 0;
    if (self->exists)
        rc = stm_store_open(db_path, STORE_OPEN_READONLY, &self->store, err);
    if (rc == STM_OK)
        rc = stm_migrate_load_state(self, err);
    if (rc != STM_OK) {
        stm_migrate_destroy(&self);
        return rc;
    }
    *out = self;
    return STM_OK;
}

void stm_migrate_destroy(migrate_t **self_p)
{
    migrate_t *self = *self_p;
    if (!self)
        return;
    stm_migrate_clear_state(self);
    free(self->records);
    free(self->drift);
    stm_applier_destroy(&self->applier); /* it borrows the store */
    stm_catalog_destroy(&self->catalog);
    stm_store_destroy(&self->store);
    stm_lineage_destroy(&self->lineage);
    stm_lens_destroy(&self->lenses);
    stm_schemaset_destroy(&self->set);
    free(self->db_path);
    free(self);
    *self_p = NULL;
}

lens_set_t *stm_migrate_take_lenses(migrate_t *self)
{
    lens_set_t *lenses = self->lenses;
    self->lenses = NULL;
    return lenses;
}

const char *stm_migrate_cache_warning(const migrate_t *self)
{
    return self->cache.warning[0] ? self->cache.warning : NULL;
}

const schemaset_t *stm_migrate_schemaset(const migrate_t *self)
{
    return self->set;
}

const lineage_t *stm_migrate_lineage(const migrate_t *self)
{
    return self->lineage;
}

const char *stm_migrate_db_path(const migrate_t *self)
{
    return self->db_path;
}

bool stm_migrate_db_exists(const migrate_t *self)
{
    return self->exists;
}

bool stm_migrate_is_prepared(const migrate_t *self)
{
    return self->prepared;
}

int stm_migrate_version(const migrate_t *self)
{
    return self->version;
}

bool stm_migrate_version_id(const migrate_t *self, stm_id *out)
{
    memset(out, 0, sizeof *out);
    if (self->nrecords == 0)
        return false;
    const migrate_record *last = &self->records[self->nrecords - 1];
    if (last->has_id) {
        *out = last->id;
        return true;
    }
    if ((size_t)last->version <= stm_lineage_count(self->lineage)) {
        *out = stm_lineage_version_at(self->lineage, (size_t)last->version - 1)->id;
        return true;
    }
    return false;
}

bool stm_migrate_needs_adoption(const migrate_t *self)
{
    return self->adopt;
}

size_t stm_migrate_record_count(const migrate_t *self)
{
    return self->nrecords;
}

const migrate_record *stm_migrate_record_at(const migrate_t *self, size_t i)
{
    return &self->records[i];
}

size_t stm_migrate_drift_count(const migrate_t *self)
{
    return self->ndrift;
}

const char *stm_migrate_drift_at(const migrate_t *self, size_t i)
{
    return self->drift[i];
}

/* The names of the tables a run at o excludes: stemma_exclude's and o's. The caller
 * frees the array (not the names, which are lent). */
static const char **s_excluded(const migrate_t *self, const migrate_options *o, size_t *n)
{
    size_t nextra = o ? o->nexclude : 0;
    const char **names = stm_malloc((self->nexclude + nextra + 1) * sizeof *names);
    for (size_t i = 0; i < self->nexclude; i++)
        names[i] = self->exclude[i];
    for (size_t i = 0; i < nextra; i++)
        names[self->nexclude + i] = o->exclude[i];
    *n = self->nexclude + nextra;
    return names;
}

/* Adds the database's tables the schema set never had (lineage/syncable.h) to the
 * lists: they are captured and applied by the same rule as the set's, so what
 * happens to them is said with the rest. Nothing when the database does not exist or
 * cannot be read (status and plans say what they can). */
static int s_name_order(const void *a, const void *b)
{
    return sqlite3_stricmp(*(char *const *)a, *(char *const *)b);
}

static bool s_captured(const char *table, void *store)
{
    return stm_capture_has_triggers(store, table);
}

/* ... One the rule syncs is captured only once capture was set up after it was made:
 * in a database set up for capture, one without its triggers is named uncaptured (in a
 * database not set up, nothing is captured yet, and status says so). */
static void s_add_outside(const migrate_t *self, const char *const *excluded, size_t nexcluded,
                          syncable_table **tables, size_t *n, char ***names, size_t *nnames)
{
    catalog_t *c = NULL;
    if (!self->store || stm_catalog_read(stm_store_db(self->store), &c, NULL) != STM_OK)
        return;
    char **outside = NULL;
    size_t noutside = 0;
    stm_syncable_add_outside(c, self->lineage, excluded, nexcluded, tables, n, &outside,
                             &noutside);
    stm_catalog_destroy(&c);
    if (self->prepared)
        stm_syncable_move_uncaptured(s_captured, self->store, outside, &noutside, tables, n);
    for (size_t i = 0; i < noutside && names; i++) {
        *names = stm_realloc(*names, (*nnames + 1) * sizeof **names);
        (*names)[(*nnames)++] = outside[i];
    }
    if (names && noutside > 0 && *nnames > 1)
        qsort(*names, *nnames, sizeof **names, s_name_order);
    if (!names)
        stm_syncable_names_free(outside, noutside);
    else
        free(outside);
}

/* Internal (migrate_internal.h). */
size_t stm_migrate_unsynced_at(const migrate_t *self, int version, const migrate_options *o,
                               syncable_table **out)
{
    size_t nexcluded;
    const char **names = s_excluded(self, o, &nexcluded);
    size_t n = stm_syncable_unsynced(self->lineage, version, names, nexcluded, out);
    s_add_outside(self, names, nexcluded, out, &n, NULL, NULL);
    free(names);
    return n;
}

/* Internal (migrate_internal.h). */
size_t stm_migrate_per_device_at(const migrate_t *self, int version, const migrate_options *o,
                                 char ***out)
{
    size_t nexcluded;
    const char **names = s_excluded(self, o, &nexcluded);
    size_t n = stm_syncable_per_device(self->lineage, version, names, nexcluded, out);
    free(names);
    return n;
}

/* Internal (migrate_internal.h). */
size_t stm_migrate_keys_changed_at(const migrate_t *self, int from, int to,
                                   const migrate_options *o, char ***out)
{
    size_t nexcluded;
    const char **names = s_excluded(self, o, &nexcluded);
    size_t n = stm_syncable_keys_changed(self->lineage, from, to, names, nexcluded, out);
    free(names);
    return n;
}

size_t stm_migrate_unsynced(const migrate_t *self, syncable_table **out)
{
    return stm_migrate_unsynced_at(self, self->version, NULL, out);
}

size_t stm_migrate_synced(const migrate_t *self, char ***out)
{
    size_t nexcluded;
    const char **names = s_excluded(self, NULL, &nexcluded);
    size_t n = stm_syncable_synced(self->lineage, self->version, names, nexcluded, out);
    syncable_table *unsynced = NULL;
    size_t nunsynced = 0;
    s_add_outside(self, names, nexcluded, &unsynced, &nunsynced, out, &n);
    stm_syncable_tables_free(unsynced, nunsynced);
    free(names);
    return n;
}

size_t stm_migrate_per_device(const migrate_t *self, char ***out)
{
    return stm_migrate_per_device_at(self, self->version, NULL, out);
}

/* ---- history ---- */

stm_err stm_migrate_history_read(const char *db_path, migrate_record **records, size_t *count,
                                 stm_error *err)
{
    *records = NULL;
    *count = 0;
    migrate_t tmp = {0};
    tmp.db_path = (char *)db_path;
    stm_err rc = stm_store_open(db_path, STORE_OPEN_READONLY, &tmp.store, err);
    if (rc == STM_OK)
        rc = stm_migrate_load_state(&tmp, err);
    if (rc == STM_OK) {
        *records = tmp.records;
        *count = tmp.nrecords;
        tmp.records = NULL;
        tmp.nrecords = 0;
    }
    stm_migrate_clear_state(&tmp);
    free(tmp.records);
    free(tmp.drift);
    stm_store_destroy(&tmp.store);
    return rc;
}

void stm_migrate_records_free(migrate_record **records_p, size_t count)
{
    migrate_record *records = *records_p;
    if (!records)
        return;
    for (size_t i = 0; i < count; i++)
        s_record_free(&records[i]);
    free(records);
    *records_p = NULL;
}
