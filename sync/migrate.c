/* migrate.c - the migrator. The invariants it keeps are listed in migrate.h; the
 * order of work in every command that changes the database is:
 *
 *   check (read-only connection) -> reopen writable and check again -> backup ->
 *   adopt an older tool's schema_version -> one transaction per step
 *
 * so that anything refused is refused before the first write. */
#include "migrate.h"
#include "apply.h"
#include "backup.h"
#include "capture.h"
#include "oplog.h"
#include "store.h"
#include "base/buf.h"
#include "base/mem.h"
#include "lineage/sqlscript.h"

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct migrate {
    char *db_path;            /* as given */
    schemaset_t *set;         /* the directory; NULL when only reading history */
    lineage_t *lineage;       /* built from set; NULL likewise */
    store_t *store;           /* read-only until a change; NULL while the file is missing */
    bool exists;              /* the database file exists */
    bool created;             /* this run created the file (it did not exist when checked) */
    bool prepared;            /* stemma's tables exist */
    bool has_table;           /* schema_version exists */
    bool has_id_column;       /* schema_version.version_id exists */
    bool has_checksum_column; /* schema_version.checksum exists */
    migrate_record *records;  /* schema_version's rows, by version */
    size_t nrecords;
    size_t records_cap;
    int version;  /* the highest recorded version, 0 when none */
    bool adopt;   /* columns or values of stemma's are missing */
    char **drift; /* why migrate would refuse, in version order */
    size_t ndrift;
    size_t drift_cap;
    char *backup_path; /* the backup the last run made, or NULL */
    uint64_t replayed; /* parked operations the last run replayed */
};

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
/* How often the elapsed-time line is redrawn. */
#define S_PROGRESS_REDRAW_MS 100

/* ---- small helpers ---- */

static void s_say(const migrate_options *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void s_say(const migrate_options *o, const char *fmt, ...)
{
    if (!o->out)
        return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(o->out, fmt, ap);
    va_end(ap);
    fflush(o->out);
}

static long long s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The first 12 hex digits of an id, for people. */
static void s_short_id(const stm_id *id, char out[13])
{
    char hex[STM_ID_HEX_LEN + 1];
    stm_id_to_hex(id, hex);
    memcpy(out, hex, 12);
    out[12] = '\0';
}

static stm_err s_db_error(migrate_t *self, stm_error *err, const char *what)
{
    return stm_error_set(err, STM_EDB, "%s: %s: %s", self->db_path, what,
                         sqlite3_errmsg(store_db(self->store)));
}

/* "DIR/FILE" for messages, the caller's to free. */
static char *s_file_path(const migrate_t *self, const char *file)
{
    buf_t b = BUF_INIT;
    buf_printf(&b, "%s/%s", schemaset_dir(self->set), file);
    return buf_detach(&b);
}

static void s_drift(migrate_t *self, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void s_drift(migrate_t *self, const char *fmt, ...)
{
    buf_t b = BUF_INIT;
    va_list ap;
    va_start(ap, fmt);
    buf_vprintf(&b, fmt, ap);
    va_end(ap);
    self->drift = stm_grow(self->drift, &self->drift_cap, self->ndrift + 1, sizeof *self->drift);
    self->drift[self->ndrift++] = buf_detach(&b);
}

static void s_record_free(migrate_record *r)
{
    free(r->applied_at);
    free(r->description);
}

static void s_clear_state(migrate_t *self)
{
    for (size_t i = 0; i < self->nrecords; i++)
        s_record_free(&self->records[i]);
    self->nrecords = 0;
    for (size_t i = 0; i < self->ndrift; i++)
        free(self->drift[i]);
    self->ndrift = 0;
    self->prepared = self->has_table = self->has_id_column = self->has_checksum_column = false;
    self->adopt = false;
    self->version = 0;
}

/* ---- reading schema_version ---- */

/* Reads which of schema_version's columns exist. STM_EINPUT when the table is of a
 * layout stemma does not know, since writing to it could damage another tool's data. */
static stm_err s_read_layout(migrate_t *self, stm_error *err)
{
    sqlite3 *db = store_db(self->store);
    sqlite3_stmt *stmt = NULL;
    if (sqlite3_prepare_v2(db,
                           "SELECT type FROM sqlite_schema WHERE name = 'schema_version' "
                           "COLLATE NOCASE",
                           -1, &stmt, NULL) != SQLITE_OK)
        return s_db_error(self, err, "reading the schema");
    int step = sqlite3_step(stmt);
    char *type = step == SQLITE_ROW ? stm_strdup((const char *)sqlite3_column_text(stmt, 0)) : NULL;
    sqlite3_finalize(stmt);
    if (step != SQLITE_ROW && step != SQLITE_DONE)
        return s_db_error(self, err, "reading the schema");
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
        return s_db_error(self, err, "reading schema_version's columns");
    bool has_version = false, has_applied = false, has_description = false;
    buf_t names = BUF_INIT;
    while ((step = sqlite3_step(stmt)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(stmt, 1);
        if (!name)
            continue;
        buf_printf(&names, "%s%s", names.len ? ", " : "", name);
        has_version |= strcasecmp(name, "version") == 0;
        has_applied |= strcasecmp(name, "applied_at") == 0;
        has_description |= strcasecmp(name, "description") == 0;
        self->has_id_column |= strcasecmp(name, "version_id") == 0;
        self->has_checksum_column |= strcasecmp(name, "checksum") == 0;
    }
    sqlite3_finalize(stmt);
    stm_err rc = STM_OK;
    if (step != SQLITE_DONE)
        rc = s_db_error(self, err, "reading schema_version's columns");
    else if (!has_version || !has_applied || !has_description)
        rc = stm_error_set(err, STM_EINPUT,
                           "%s: its schema_version table has the columns (%s), not (version, "
                           "applied_at, description[, version_id, checksum]); it was made by "
                           "another tool, which stemma will not overwrite",
                           self->db_path, buf_str(&names));
    buf_free(&names);
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
    buf_printf(&sql,
               "SELECT version, applied_at, description, %s, %s FROM schema_version "
               "ORDER BY version",
               self->has_id_column ? "version_id" : "NULL",
               self->has_checksum_column ? "checksum" : "NULL");
    sqlite3_stmt *stmt = NULL;
    int prc = sqlite3_prepare_v2(store_db(self->store), buf_str(&sql), -1, &stmt, NULL);
    buf_free(&sql);
    if (prc != SQLITE_OK)
        return s_db_error(self, err, "reading schema_version");
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
        return s_db_error(self, err, "reading schema_version");
    return STM_OK;
}

/* Compares the records with the directory (see migrate.h: drift). */
static void s_check_drift(migrate_t *self)
{
    size_t count = lineage_count(self->lineage);
    const char *dir = schemaset_dir(self->set);
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
        const lineage_version *v = lineage_version_at(self->lineage, (size_t)r->version - 1);
        const schemaset_migration *m = schemaset_at(self->set, (size_t)r->version - 1);
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
                        dir, schemaset_at(self->set, (size_t)culprit->version - 1)->file,
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

/* (Re)reads everything the accessors report from the open store. */
static stm_err s_load_state(migrate_t *self, stm_error *err)
{
    s_clear_state(self);
    if (!self->store)
        return STM_OK;
    self->prepared = store_is_prepared(self->store);
    stm_err rc = s_read_layout(self, err);
    if (rc == STM_OK && self->has_table)
        rc = s_read_records(self, err);
    if (rc != STM_OK)
        return rc;
    if (self->nrecords)
        self->version = self->records[self->nrecords - 1].version;
    if (self->set)
        s_check_drift(self);
    return STM_OK;
}

/* ---- open, accessors ---- */

stm_err migrate_open(const char *db_path, const char *schemas_dir, migrate_t **out, stm_error *err)
{
    schemaset_t *set = NULL;
    lineage_t *lineage = NULL;
    stm_err rc = schemaset_load(schemas_dir, &set, err);
    if (rc == STM_OK)
        rc = lineage_build(set, &lineage, err);
    if (rc != STM_OK) {
        schemaset_destroy(&set);
        return rc;
    }
    migrate_t *self = stm_calloc(1, sizeof *self);
    self->db_path = stm_strdup(db_path);
    self->set = set;
    self->lineage = lineage;
    struct stat st;
    self->exists = stat(db_path, &st) == 0;
    if (self->exists)
        rc = store_open(db_path, STORE_OPEN_READONLY, &self->store, err);
    if (rc == STM_OK)
        rc = s_load_state(self, err);
    if (rc != STM_OK) {
        migrate_destroy(&self);
        return rc;
    }
    *out = self;
    return STM_OK;
}

void migrate_destroy(migrate_t **self_p)
{
    migrate_t *self = *self_p;
    if (!self)
        return;
    s_clear_state(self);
    free(self->records);
    free(self->drift);
    store_destroy(&self->store);
    lineage_destroy(&self->lineage);
    schemaset_destroy(&self->set);
    free(self->backup_path);
    free(self->db_path);
    free(self);
    *self_p = NULL;
}

const schemaset_t *migrate_schemaset(const migrate_t *self)
{
    return self->set;
}

const lineage_t *migrate_lineage(const migrate_t *self)
{
    return self->lineage;
}

const char *migrate_db_path(const migrate_t *self)
{
    return self->db_path;
}

bool migrate_db_exists(const migrate_t *self)
{
    return self->exists;
}

bool migrate_is_prepared(const migrate_t *self)
{
    return self->prepared;
}

int migrate_version(const migrate_t *self)
{
    return self->version;
}

bool migrate_version_id(const migrate_t *self, stm_id *out)
{
    memset(out, 0, sizeof *out);
    if (self->nrecords == 0)
        return false;
    const migrate_record *last = &self->records[self->nrecords - 1];
    if (last->has_id) {
        *out = last->id;
        return true;
    }
    if ((size_t)last->version <= lineage_count(self->lineage)) {
        *out = lineage_version_at(self->lineage, (size_t)last->version - 1)->id;
        return true;
    }
    return false;
}

bool migrate_needs_adoption(const migrate_t *self)
{
    return self->adopt;
}

size_t migrate_record_count(const migrate_t *self)
{
    return self->nrecords;
}

const migrate_record *migrate_record_at(const migrate_t *self, size_t i)
{
    return &self->records[i];
}

size_t migrate_drift_count(const migrate_t *self)
{
    return self->ndrift;
}

const char *migrate_drift_at(const migrate_t *self, size_t i)
{
    return self->drift[i];
}

const char *migrate_backup_path(const migrate_t *self)
{
    return self->backup_path;
}

/* ---- progress ---- */

/* The elapsed-time line of one step, drawn by SQLite's progress handler. */
typedef struct {
    FILE *to;          /* the terminal's stream, or NULL for none */
    int after_ms;      /* draw only once the step has run this long */
    long long start;   /* s_now_ms() when the step began */
    long long drawn;   /* when the line was last drawn, -1 before */
    const char *label; /* "v3 DIR/003_x.sql", lent */
} s_progress;

static int s_progress_tick(void *arg)
{
    s_progress *p = arg;
    long long now = s_now_ms();
    if (now - p->start < p->after_ms || (p->drawn >= 0 && now - p->drawn < S_PROGRESS_REDRAW_MS))
        return 0;
    fprintf(p->to, "\r%s: running for %.1f s", p->label, (double)(now - p->start) / 1000.0);
    fflush(p->to);
    p->drawn = now;
    return 0; /* never interrupt the migration */
}

static void s_progress_start(s_progress *p, const migrate_options *o, sqlite3 *db,
                             const char *label)
{
    p->to = o->progress;
    p->after_ms = o->progress_after_ms;
    p->start = s_now_ms();
    p->drawn = -1;
    p->label = label;
    if (p->to)
        sqlite3_progress_handler(db, S_PROGRESS_INSTRUCTIONS, s_progress_tick, p);
}

/* Stops the handler and erases the line, so the step's report takes its place. */
static long long s_progress_stop(s_progress *p, sqlite3 *db)
{
    if (p->to) {
        sqlite3_progress_handler(db, 0, NULL, NULL);
        if (p->drawn >= 0) {
            fputs("\r\033[K", p->to);
            fflush(p->to);
        }
    }
    return s_now_ms() - p->start;
}

/* ---- backup ---- */

/* Makes the run's backup (when wanted) and says where it is. */
static stm_err s_backup_before_change(migrate_t *self, const migrate_options *o, stm_error *err)
{
    free(self->backup_path);
    self->backup_path = NULL;
    if (!o->backup)
        return STM_OK;
    stm_err rc =
        backup_make(store_db(self->store), self->db_path, self->version, &self->backup_path, err);
    if (rc == STM_OK)
        s_say(o, "backup: %s\n", self->backup_path);
    return rc;
}

/* ---- transactions ---- */

static void s_rollback_tx(migrate_t *self)
{
    sqlite3 *db = store_db(self->store);
    /* A failed statement may have ended the transaction already. */
    if (!sqlite3_get_autocommit(db))
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
}

/* Inside a step's transaction: checks that no other process moved the database since
 * it was checked (two migrators at once). */
static stm_err s_expect_version(migrate_t *self, int expected, stm_error *err)
{
    sqlite3_stmt *stmt = NULL;
    if (sqlite3_prepare_v2(store_db(self->store),
                           "SELECT coalesce(max(version), 0) FROM schema_version", -1, &stmt,
                           NULL) != SQLITE_OK)
        return s_db_error(self, err, "reading schema_version");
    stm_err rc = STM_OK;
    if (sqlite3_step(stmt) != SQLITE_ROW)
        rc = s_db_error(self, err, "reading schema_version");
    else if (sqlite3_column_int64(stmt, 0) != expected)
        rc = stm_error_set(err, STM_EDB,
                           "%s: another process changed schema_version while stemma worked "
                           "(now at version %lld, expected %d); run the command again",
                           self->db_path, (long long)sqlite3_column_int64(stmt, 0), expected);
    sqlite3_finalize(stmt);
    return rc;
}

/* Ends a step's transaction: stemma's tables, the exclusions, the version id the
 * triggers stamp, and triggers for the schema as it now is. */
static stm_err s_refresh_capture(migrate_t *self, const migrate_options *o, const stm_id *id,
                                 stm_error *err)
{
    stm_err rc = store_prepare(self->store, err);
    for (size_t i = 0; i < o->nexclude && rc == STM_OK; i++)
        rc = capture_exclude(self->store, o->exclude[i], true, err);
    if (rc == STM_OK)
        rc = store_set_version_id(self->store, id, err);
    if (rc == STM_OK)
        rc = capture_install(self->store, err);
    return rc;
}

static stm_err s_begin(migrate_t *self, int expected, stm_error *err)
{
    stm_err rc = store_exec(self->store, "BEGIN IMMEDIATE", err);
    /* Changes still queued by the triggers become operations under the schema they
     * were made in, before a migration changes their columns; in the migration's own
     * transaction, so that nothing the application writes falls in between. */
    if (rc == STM_OK && store_is_prepared(self->store)) {
        applier_t *applier = applier_new(self->store, NULL, NULL);
        rc = applier_collect(applier, err);
        applier_destroy(&applier);
    }
    if (rc == STM_OK)
        rc = store_exec(self->store, s_create_table, err);
    if (rc == STM_OK)
        rc = s_expect_version(self, expected, err);
    if (rc == STM_OK && store_is_prepared(self->store))
        rc = capture_uninstall(self->store, err);
    return rc;
}

static stm_err s_commit(migrate_t *self, stm_error *err)
{
    return store_exec(self->store, "COMMIT", err);
}

/* The version id of version n of the directory (zero for 0). */
static stm_id s_id_of(const migrate_t *self, int n)
{
    stm_id zero = {{0}};
    return n == 0 ? zero : lineage_version_at(self->lineage, (size_t)n - 1)->id;
}

/* Adds stemma's columns to an older tool's schema_version and fills them from the
 * lineage (the numbers were checked against the directory: s_check_drift). */
static stm_err s_adopt(migrate_t *self, const migrate_options *o, stm_error *err)
{
    stm_err rc = s_begin(self, self->version, err);
    if (rc == STM_OK && !self->has_id_column)
        rc = store_exec(self->store, "ALTER TABLE schema_version ADD COLUMN version_id TEXT", err);
    if (rc == STM_OK && !self->has_checksum_column)
        rc = store_exec(self->store, "ALTER TABLE schema_version ADD COLUMN checksum TEXT", err);
    sqlite3_stmt *stmt = NULL;
    if (rc == STM_OK &&
        sqlite3_prepare_v2(store_db(self->store),
                           "UPDATE schema_version SET version_id = coalesce(version_id, ?2), "
                           "checksum = coalesce(checksum, ?3) WHERE version = ?1",
                           -1, &stmt, NULL) != SQLITE_OK)
        rc = s_db_error(self, err, "adopting schema_version");
    for (size_t i = 0; i < self->nrecords && rc == STM_OK; i++) {
        const lineage_version *v =
            lineage_version_at(self->lineage, (size_t)self->records[i].version - 1);
        char id[STM_ID_HEX_LEN + 1], sum[STM_ID_HEX_LEN + 1];
        stm_id_to_hex(&v->id, id);
        stm_id_to_hex(&v->checksum, sum);
        sqlite3_reset(stmt);
        sqlite3_bind_int(stmt, 1, v->number);
        sqlite3_bind_text(stmt, 2, id, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(stmt, 3, sum, -1, SQLITE_TRANSIENT);
        if (sqlite3_step(stmt) != SQLITE_DONE)
            rc = s_db_error(self, err, "adopting schema_version");
    }
    sqlite3_finalize(stmt);
    if (rc == STM_OK) {
        stm_id id = s_id_of(self, self->version);
        rc = s_refresh_capture(self, o, &id, err);
    }
    if (rc == STM_OK)
        rc = s_commit(self, err);
    if (rc != STM_OK) {
        s_rollback_tx(self);
        stm_error_append(err, "adopting schema_version failed; the database is as it was");
        return rc;
    }
    s_say(o,
          "adopted schema_version (from an older tool, at version %d): added version ids "
          "and checksums\n",
          self->version);
    return STM_OK;
}

static stm_err s_insert_record(migrate_t *self, const lineage_version *v, stm_error *err)
{
    sqlite3_stmt *stmt = NULL;
    if (sqlite3_prepare_v2(store_db(self->store),
                           "INSERT INTO schema_version (version, applied_at, description, "
                           "version_id, checksum) VALUES (?1, "
                           "strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), ?2, ?3, ?4)",
                           -1, &stmt, NULL) != SQLITE_OK)
        return s_db_error(self, err, "recording the version");
    char id[STM_ID_HEX_LEN + 1], sum[STM_ID_HEX_LEN + 1];
    stm_id_to_hex(&v->id, id);
    stm_id_to_hex(&v->checksum, sum);
    sqlite3_bind_int(stmt, 1, v->number);
    sqlite3_bind_text(stmt, 2, v->description, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 3, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 4, sum, -1, SQLITE_STATIC);
    stm_err rc =
        sqlite3_step(stmt) == SQLITE_DONE ? STM_OK : s_db_error(self, err, "recording the version");
    sqlite3_finalize(stmt);
    return rc;
}

/* Applies migration k (the database is at k - 1). */
static stm_err s_forward(migrate_t *self, int k, const migrate_options *o, stm_error *err)
{
    const schemaset_migration *m = schemaset_at(self->set, (size_t)k - 1);
    const lineage_version *v = lineage_version_at(self->lineage, (size_t)k - 1);
    char *path = s_file_path(self, m->file);
    buf_t label = BUF_INIT;
    buf_printf(&label, "v%d %s", k, path);
    sqlite3 *db = store_db(self->store);
    s_progress p;
    s_progress_start(&p, o, db, buf_str(&label));
    stm_err rc = s_begin(self, k - 1, err);
    if (rc == STM_OK)
        rc = sqlscript_run(db, path, m->text, 0, err);
    if (rc == STM_OK)
        rc = s_insert_record(self, v, err);
    if (rc == STM_OK)
        rc = s_refresh_capture(self, o, &v->id, err);
    if (rc == STM_OK)
        rc = s_commit(self, err);
    if (rc != STM_OK)
        s_rollback_tx(self);
    long long ms = s_progress_stop(&p, db);
    if (rc != STM_OK)
        stm_error_append(err, "migration %d was rolled back: the database is still at version %d", k,
                       k - 1);
    else
        s_say(o, "applied v%d  %s  %s  (%lld ms)\n", k, path, v->description, ms);
    buf_free(&label);
    free(path);
    return rc;
}

/* Runs the rollback of migration k (the database is at k). */
static stm_err s_backward(migrate_t *self, int k, const migrate_options *o, stm_error *err)
{
    const schemaset_migration *m = schemaset_at(self->set, (size_t)k - 1);
    char *path = s_file_path(self, m->down_file);
    buf_t label = BUF_INIT;
    buf_printf(&label, "v%d %s", k, path);
    sqlite3 *db = store_db(self->store);
    s_progress p;
    s_progress_start(&p, o, db, buf_str(&label));
    stm_err rc = s_begin(self, k, err);
    if (rc == STM_OK)
        rc = sqlscript_run(db, path, m->down_text, 0, err);
    if (rc == STM_OK) {
        char sql[96];
        snprintf(sql, sizeof sql, "DELETE FROM schema_version WHERE version = %d", k);
        rc = store_exec(self->store, sql, err);
    }
    if (rc == STM_OK) {
        stm_id id = s_id_of(self, k - 1);
        rc = s_refresh_capture(self, o, &id, err);
    }
    if (rc == STM_OK)
        rc = s_commit(self, err);
    if (rc != STM_OK)
        s_rollback_tx(self);
    long long ms = s_progress_stop(&p, db);
    if (rc != STM_OK)
        stm_error_append(err, "the rollback of %d was undone: the database is still at version %d", k,
                       k);
    else
        s_say(o, "rolled back v%d  %s  (%lld ms)\n", k, path, ms);
    buf_free(&label);
    free(path);
    return rc;
}

/* Reopens the database writable (creating it when mode says so) and checks it is still
 * as it was when checked read-only. */
static stm_err s_reopen_writable(migrate_t *self, store_open_mode mode, stm_error *err)
{
    int before = self->version;
    store_destroy(&self->store);
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
    stm_err rc = store_open(self->db_path, mode, &self->store, err);
    if (rc != STM_OK)
        return rc;
    if ((rc = s_load_state(self, err)) != STM_OK)
        return rc;
    if (self->version != before || self->ndrift)
        return stm_error_set(err, STM_EDB,
                             "%s: changed while stemma was checking it (now at version %d); run "
                             "the command again",
                             self->db_path, self->version);
    return STM_OK;
}

static stm_err s_refuse_drift(const migrate_t *self, stm_error *err)
{
    if (self->ndrift == 1)
        return stm_error_set(err, STM_EINPUT, "%s", self->drift[0]);
    return stm_error_set(err, STM_EINPUT, "%s (and %zu more problems: 'stemma status' lists them)",
                         self->drift[0], self->ndrift - 1);
}

/* Writes text to out indented by four spaces. */
static void s_say_indented(const migrate_options *o, const char *text)
{
    if (!o->out)
        return;
    const char *p = text;
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        if (n)
            fprintf(o->out, "    %.*s\n", (int)n, p);
        else
            fputc('\n', o->out);
        p += n + (nl ? 1 : 0);
    }
}

/* The first lines of a dry run: where the database is, and drift. */
static void s_say_where(const migrate_t *self, const migrate_options *o)
{
    if (!self->exists) {
        s_say(o, "%s does not exist: it would be created, at version 0\n", self->db_path);
    } else {
        stm_id id;
        char sid[13] = "none";
        if (migrate_version_id(self, &id))
            s_short_id(&id, sid);
        s_say(o, "%s is at version %d (id %s); %s has %zu migrations\n", self->db_path,
              self->version, self->version ? sid : "none", schemaset_dir(self->set),
              lineage_count(self->lineage));
    }
    if (!self->ndrift) {
        s_say(o, "drift: none\n");
        return;
    }
    s_say(o, "drift (stemma refuses to migrate until it is resolved):\n");
    for (size_t i = 0; i < self->ndrift; i++)
        s_say(o, "  %s\n", self->drift[i]);
}

/* True when opts names a table not yet in stemma_exclude. */
static bool s_new_exclusions(migrate_t *self, const migrate_options *o)
{
    if (o->nexclude == 0)
        return false;
    if (!self->prepared)
        return true;
    sqlite3_stmt *stmt = NULL;
    if (sqlite3_prepare_v2(store_db(self->store), "SELECT 1 FROM stemma_exclude WHERE tbl = ?1", -1,
                           &stmt, NULL) != SQLITE_OK)
        return true;
    bool found_new = false;
    for (size_t i = 0; i < o->nexclude && !found_new; i++) {
        sqlite3_reset(stmt);
        sqlite3_bind_text(stmt, 1, o->exclude[i], -1, SQLITE_STATIC);
        found_new = sqlite3_step(stmt) != SQLITE_ROW;
    }
    sqlite3_finalize(stmt);
    return found_new;
}

/* Removes a database file this run created and left at version 0 (a failed first
 * migration), so that "as it was before" holds for a new file too. */
static void s_remove_created(migrate_t *self)
{
    store_destroy(&self->store);
    static const char *const suffixes[] = {"", "-wal", "-shm", "-journal"};
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        buf_t b = BUF_INIT;
        buf_printf(&b, "%s%s", self->db_path, suffixes[i]);
        unlink(buf_str(&b));
        buf_free(&b);
    }
    self->exists = self->created = false;
    s_clear_state(self);
}

static void s_say_now_at(migrate_t *self, const migrate_options *o)
{
    stm_id id;
    char sid[13] = "none";
    if (migrate_version_id(self, &id))
        s_short_id(&id, sid);
    s_say(o, "%s: now at version %d (id %s)\n", self->db_path, self->version, sid);
}

/* ---- migrate ---- */

static void s_dry_run_forward(migrate_t *self, const migrate_options *o, int target, bool new_excl)
{
    int pending = target - self->version;
    if (pending <= 0 && !self->adopt && !new_excl && (self->prepared || self->version == 0)) {
        s_say(o, "nothing to do: the database is at version %d\n", self->version);
        return;
    }
    if (o->backup && self->exists && (pending > 0 || self->adopt))
        s_say(o, "would back the database up first, to %s.v%d-<UTC time>.bak\n", self->db_path,
              self->version);
    if (self->adopt)
        s_say(o,
              "would adopt schema_version (from an older tool, at version %d): add "
              "version ids and checksums\n",
              self->version);
    if (pending > 0)
        s_say(o, "would apply %d migration%s, each in its own transaction:\n", pending,
              pending == 1 ? "" : "s");
    else
        s_say(o, "would set up change capture for the current schema\n");
    for (int k = self->version + 1; k <= target; k++) {
        const schemaset_migration *m = schemaset_at(self->set, (size_t)k - 1);
        s_say(o, "\nv%d  %s/%s  %s\n", k, schemaset_dir(self->set), m->file, m->description);
        s_say_indented(o, m->text);
    }
    for (size_t i = 0; i < o->nexclude; i++)
        s_say(o, "%swould exclude table %s from sync\n", i == 0 && pending > 0 ? "\n" : "",
              o->exclude[i]);
}

/* After migrations that may have added tables or columns, operations parked for
 * want of them apply now, by the same last-writer-wins rule (apply.h). */
static stm_err s_replay_parked(migrate_t *self, const migrate_options *o, stm_error *err)
{
    applier_t *applier = applier_new(self->store, NULL, NULL);
    apply_stats st = {0};
    stm_err rc = applier_replay(applier, &st, err);
    applier_destroy(&applier);
    uint64_t total = 0, parked = 0;
    if (rc == STM_OK)
        rc = oplog_counts(self->store, &total, &parked, err);
    self->replayed = st.replayed;
    if (rc == STM_OK && (st.replayed || parked))
        s_say(o, "replayed %llu parked operation%s (%llu still parked)\n",
              (unsigned long long)st.replayed, st.replayed == 1 ? "" : "s",
              (unsigned long long)parked);
    return rc;
}

uint64_t migrate_replayed(const migrate_t *self)
{
    return self->replayed;
}

stm_err migrate_run(migrate_t *self, const migrate_options *o, stm_error *err)
{
    free(self->backup_path);
    self->backup_path = NULL;
    int count = (int)lineage_count(self->lineage);
    if (o->to < 0 && o->to != MIGRATE_HEAD)
        return stm_error_set(err, STM_EUSAGE, "the target version must be 0 or more, not %d",
                             o->to);
    int target = o->to == MIGRATE_HEAD ? count : o->to;
    if (target > count)
        return stm_error_set(err, STM_EINPUT, "there is no version %d: %s has %d migration%s",
                             target, schemaset_dir(self->set), count, count == 1 ? "" : "s");
    if (o->dry_run)
        s_say_where(self, o);
    if (self->ndrift)
        return s_refuse_drift(self, err);
    if (target < self->version)
        return stm_error_set(err, STM_EUSAGE,
                             "%s is at version %d, above %d: migrate only goes forward (to go "
                             "back: stemma rollback --to %d)",
                             self->db_path, self->version, target, target);
    bool new_excl = s_new_exclusions(self, o);
    if (o->dry_run) {
        s_dry_run_forward(self, o, target, new_excl);
        s_say(o, "\ndry run: nothing was changed\n");
        return STM_OK;
    }
    bool pending = target > self->version;
    if (!pending && !self->adopt && !new_excl && (self->prepared || self->version == 0)) {
        s_say(o, "%s is at version %d: nothing to do\n", self->db_path, self->version);
        return STM_OK;
    }
    bool existed = self->exists;
    stm_err rc = s_reopen_writable(self, STORE_OPEN_CREATE, err);
    if (rc == STM_OK && existed && (pending || self->adopt))
        rc = s_backup_before_change(self, o, err);
    bool adopted = false;
    if (rc == STM_OK && self->adopt) {
        rc = s_adopt(self, o, err);
        adopted = rc == STM_OK;
    }
    int from = self->version, done = from;
    for (int k = from + 1; k <= target && rc == STM_OK; k++)
        if ((rc = s_forward(self, k, o, err)) == STM_OK)
            done = k;
    if (rc == STM_OK && done > from)
        rc = s_replay_parked(self, o, err);
    if (rc == STM_OK && !pending && !adopted) {
        /* Nothing to apply: set up capture, or record new exclusions. */
        stm_id id = s_id_of(self, from);
        if ((rc = s_begin(self, from, err)) == STM_OK &&
            (rc = s_refresh_capture(self, o, &id, err)) == STM_OK)
            rc = s_commit(self, err);
        if (rc != STM_OK)
            s_rollback_tx(self);
        else
            s_say(o, "%s: change capture set up at version %d\n", self->db_path, from);
    }
    if (rc != STM_OK && self->created && done == 0) {
        s_remove_created(self);
        return rc;
    }
    /* The accessors report the database as it now is; a failure keeps err's message. */
    stm_error reload = {0};
    if (s_load_state(self, &reload) == STM_OK && rc == STM_OK)
        s_say_now_at(self, o);
    if (rc != STM_OK && self->backup_path)
        stm_error_append(err, "backup: %s", self->backup_path);
    return rc;
}

/* ---- rollback ---- */

/* Runs the migrations up to the current version, then the rollbacks down to `to`, on
 * an in-memory database, so a rollback SQLite refuses is refused before the real
 * database is touched. */
static stm_err s_rehearse_rollback(migrate_t *self, int to, stm_error *err)
{
    sqlite3 *db = NULL;
    if (sqlite3_open(":memory:", &db) != SQLITE_OK) {
        stm_err rc = stm_error_set(err, STM_EDB, "cannot open an in-memory database: %s",
                                   db ? sqlite3_errmsg(db) : "out of memory");
        sqlite3_close(db);
        return rc;
    }
    stm_err rc = STM_OK;
    for (int k = 1; k <= self->version && rc == STM_OK; k++) {
        const schemaset_migration *m = schemaset_at(self->set, (size_t)k - 1);
        char *path = s_file_path(self, m->file);
        sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
        rc = sqlscript_run(db, path, m->text, 0, err);
        sqlite3_exec(db, rc == STM_OK ? "COMMIT" : "ROLLBACK", NULL, NULL, NULL);
        free(path);
    }
    for (int k = self->version; k > to && rc == STM_OK; k--) {
        const schemaset_migration *m = schemaset_at(self->set, (size_t)k - 1);
        char *path = s_file_path(self, m->down_file);
        sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
        rc = sqlscript_run(db, path, m->down_text, 0, err);
        sqlite3_exec(db, rc == STM_OK ? "COMMIT" : "ROLLBACK", NULL, NULL, NULL);
        free(path);
    }
    sqlite3_close(db);
    if (rc != STM_OK)
        stm_error_append(err, "found running the rollbacks in memory; the database was not changed");
    return rc;
}

stm_err migrate_rollback(migrate_t *self, const migrate_options *o, stm_error *err)
{
    free(self->backup_path);
    self->backup_path = NULL;
    int to = o->to;
    if (to < 0)
        return stm_error_set(err, STM_EUSAGE, "rollback needs a target version, 0 or more");
    if (!self->exists)
        return stm_error_set(err, STM_EINPUT, "%s: no such database file", self->db_path);
    if (o->dry_run)
        s_say_where(self, o);
    if (self->ndrift)
        return s_refuse_drift(self, err);
    if (to > self->version)
        return stm_error_set(err, STM_EUSAGE,
                             "%s is at version %d, below %d: rollback only goes back (to go "
                             "forward: stemma migrate --to %d)",
                             self->db_path, self->version, to, to);
    if (to == self->version) {
        s_say(o, "%s is at version %d: nothing to do\n", self->db_path, to);
        return STM_OK;
    }
    for (int k = self->version; k > to; k--) {
        const schemaset_migration *m = schemaset_at(self->set, (size_t)k - 1);
        if (!m->down_text) {
            size_t n = strlen(m->file) - 4; /* the name without ".sql" */
            return stm_error_set(err, STM_EINPUT,
                                 "%s/%.*s.down.sql: missing, so version %d cannot be rolled "
                                 "back (nothing was changed)",
                                 schemaset_dir(self->set), (int)n, m->file, k);
        }
    }
    stm_err rc = s_rehearse_rollback(self, to, err);
    if (rc != STM_OK)
        return rc;
    if (o->dry_run) {
        if (o->backup)
            s_say(o, "would back the database up first, to %s.v%d-<UTC time>.bak\n", self->db_path,
                  self->version);
        if (self->adopt)
            s_say(o, "would adopt schema_version (an older tool's) first\n");
        s_say(o, "would roll back %d migration%s, each in its own transaction:\n",
              self->version - to, self->version - to == 1 ? "" : "s");
        for (int k = self->version; k > to; k--) {
            const schemaset_migration *m = schemaset_at(self->set, (size_t)k - 1);
            s_say(o, "\nv%d  %s/%s  (rolls back %s)\n", k, schemaset_dir(self->set), m->down_file,
                  m->description);
            s_say_indented(o, m->down_text);
        }
        s_say(o, "\ndry run: nothing was changed\n");
        return STM_OK;
    }
    rc = s_reopen_writable(self, STORE_OPEN_EXISTING, err);
    if (rc == STM_OK)
        rc = s_backup_before_change(self, o, err);
    if (rc == STM_OK && self->adopt)
        rc = s_adopt(self, o, err);
    for (int k = self->version; k > to && rc == STM_OK; k--)
        rc = s_backward(self, k, o, err);
    stm_error reload = {0};
    if (s_load_state(self, &reload) == STM_OK && rc == STM_OK)
        s_say_now_at(self, o);
    if (rc != STM_OK && self->backup_path)
        stm_error_append(err, "backup: %s", self->backup_path);
    return rc;
}

/* ---- restore ---- */

/* The work is backup.c's (backup_restore); of the options only out is used. */
stm_err migrate_restore(const char *db_path, const char *backup_path, const migrate_options *o,
                        char **saved_path, stm_error *err)
{
    return backup_restore(db_path, backup_path, o->out, saved_path, err);
}

/* ---- history ---- */

stm_err migrate_history_read(const char *db_path, migrate_record **records, size_t *count,
                             stm_error *err)
{
    *records = NULL;
    *count = 0;
    migrate_t tmp = {0};
    tmp.db_path = (char *)db_path;
    stm_err rc = store_open(db_path, STORE_OPEN_READONLY, &tmp.store, err);
    if (rc == STM_OK)
        rc = s_load_state(&tmp, err);
    if (rc == STM_OK) {
        *records = tmp.records;
        *count = tmp.nrecords;
        tmp.records = NULL;
        tmp.nrecords = 0;
    }
    s_clear_state(&tmp);
    free(tmp.records);
    free(tmp.drift);
    store_destroy(&tmp.store);
    return rc;
}

void migrate_records_free(migrate_record **records_p, size_t count)
{
    migrate_record *records = *records_p;
    if (!records)
        return;
    for (size_t i = 0; i < count; i++)
        s_record_free(&records[i]);
    free(records);
    *records_p = NULL;
}
