#include "apply.h"
#include "capture.h"
#include "oplog.h"
#include "lineage/buf.h"
#include "lineage/catalog.h"
#include "lineage/mem.h"
#include "lineage/sqlscript.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* How the hot path stays close to SQLite's own speed: the statements are prepared
 * once (fixed ones by name, row statements by table and column set); an operation is
 * recorded with INSERT OR IGNORE, whose change count says whether it was already
 * present, instead of a lookup first; and a row is updated first and only looked up
 * when the update found nothing. What is left per written cell is one index seek for
 * the cell's latest clock, the oplog insert and the row write. */

/* A synced table of the local catalog. */
typedef struct {
    const catalog_table *def;  /* lent by the applier's catalog */
    const catalog_column *key; /* its single key column */
} s_table;

/* The fixed statements, prepared on first use. */
enum {
    Q_RECORD,        /* INSERT OR IGNORE an operation */
    Q_MARK_PARKED,   /* set an operation's parked flag */
    Q_PARK_REASON,   /* why it is parked */
    Q_CLOCK_GET,     /* the latest write of a cell (or a row's latest delete or write) */
    Q_CLOCK_PUT,     /* record a write there when it is later than what is there */
    Q_ROW_LATEST,    /* the latest write of any cell of a row */
    Q_CELL_VALUE,    /* the value of a cell's latest write */
    Q_CLOCKED_LIST,  /* origins captured here, and how far they are in the clock */
    Q_CLOCKED_OPS,   /* their operations beyond that */
    Q_CLOCKED_SET,
    Q_VECTOR_GET,
    Q_VECTOR_SET,
    Q_LOCAL_SEQ,
    Q_CLOCK,
    Q_HAS_PARKED,
    Q_COUNT
};

/* stemma_clock.col for a row's latest delete, and for its latest write that this
 * schema could not hold (a column it lacks): integers, never equal to a column name.
 * A row's latest write is the latest of its cells' entries and that one. */
enum { CLOCK_DELETE = 0, CLOCK_WRITE = 1 };

static const char *const s_sql[Q_COUNT] = {
    [Q_RECORD] = "INSERT OR IGNORE INTO stemma_oplog (origin, seq, hlc, version_id, tbl, pk, col, "
                 "aff, val, parked) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    [Q_MARK_PARKED] = "UPDATE stemma_oplog SET parked = ?3 WHERE origin = ?1 AND seq = ?2",
    [Q_PARK_REASON] = "INSERT OR REPLACE INTO stemma_parked (origin, seq, kind, reason) "
                      "VALUES (?1, ?2, ?3, ?4)",
    [Q_CLOCK_GET] = "SELECT hlc, origin FROM stemma_clock WHERE tbl = ?1 AND pk = ?2 AND col = ?3",
    [Q_CLOCK_PUT] = "INSERT INTO stemma_clock (tbl, pk, col, hlc, origin, seq) "
                    "VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (tbl, pk, col) DO UPDATE SET "
                    "hlc = excluded.hlc, origin = excluded.origin, seq = excluded.seq "
                    "WHERE (excluded.hlc, excluded.origin) > (stemma_clock.hlc, stemma_clock.origin)",
    [Q_ROW_LATEST] = "SELECT hlc, origin FROM stemma_clock WHERE tbl = ?1 AND pk = ?2 AND "
                     "col IS NOT 0 ORDER BY hlc DESC, origin DESC LIMIT 1",
    [Q_CELL_VALUE] = "SELECT o.val FROM stemma_clock AS c JOIN stemma_oplog AS o ON "
                     "o.origin = c.origin AND o.seq = c.seq "
                     "WHERE c.tbl = ?1 AND c.pk = ?2 AND c.col = ?3",
    [Q_CLOCKED_LIST] = "SELECT origin, seq FROM stemma_clocked",
    [Q_CLOCKED_OPS] = "SELECT seq, hlc, tbl, pk, col FROM stemma_oplog WHERE origin = ?1 AND "
                      "seq > ?2 ORDER BY seq",
    [Q_CLOCKED_SET] = "UPDATE stemma_clocked SET seq = ?2 WHERE origin = ?1",
    [Q_VECTOR_GET] = "SELECT seq FROM stemma_vector WHERE origin = ?1",
    [Q_VECTOR_SET] = "INSERT INTO stemma_vector (origin, seq) VALUES (?1, ?2) "
                     "ON CONFLICT (origin) DO UPDATE SET seq = excluded.seq",
    [Q_LOCAL_SEQ] = "UPDATE stemma_local SET seq = max(seq, (SELECT max(seq) FROM stemma_oplog "
                    "WHERE origin = ?1)) WHERE id = 1",
    [Q_CLOCK] = "UPDATE stemma_local SET hlc = max(hlc, ?1), applying = 0 WHERE id = 1",
    [Q_HAS_PARKED] = "SELECT 1 FROM stemma_parked WHERE kind = ?1 LIMIT 1",
};

/* Row statements: one per (table, kind, set of columns). */
typedef enum { ROW_EXISTS, ROW_UPDATE, ROW_INSERT, ROW_DELETE } s_row_kind;

typedef struct {
    const s_table *table; /* NULL: empty slot */
    s_row_kind kind;
    uint64_t mask;        /* bit i: column i of the table (declaration order) */
    sqlite3_stmt *stmt;
} s_row_stmt;

/* Tables with more columns than a mask holds use statements keyed by their text. */
typedef struct {
    char *sql;
    sqlite3_stmt *stmt;
} s_text_stmt;

struct applier {
    store_t *store;        /* lent */
    sqlite3 *db;           /* store's connection, lent */
    apply_warn_fn warn;    /* may be NULL */
    void *warn_ctx;
    catalog_t *catalog;    /* the local schema as last read */
    int schema_cookie;     /* PRAGMA schema_version when it was read; -1: never */
    s_table *tables;       /* synced tables, in catalog order */
    size_t ntables;
    const s_table *last_table; /* the last one looked up: batches run table by table */
    sqlite3_stmt *fixed[Q_COUNT]; /* by Q_*, prepared on first use */
    s_row_stmt *rows;      /* open-addressing table of row statements */
    size_t nrows_slots;    /* a power of two, or 0 */
    size_t nrows;
    s_text_stmt *texts;    /* row statements of wide tables */
    size_t ntexts;
    size_t texts_cap;
    char **warned;         /* "origin/table.column" keys already warned about */
    size_t nwarned;
    size_t warned_cap;
    stm_id node_id;        /* this database's origin */
    uint64_t max_hlc;      /* greatest clock seen in the current transaction */
    stm_id *touched;       /* origins with new operations in this transaction */
    size_t ntouched;
    size_t touched_cap;
    bool any_applied;      /* something applied in this transaction */
    bool open;             /* applier_begin opened a transaction batches join */
};

/* ---- statements ---- */

static stm_err s_db_error(applier_t *a, stm_error *err, const char *what)
{
    return stm_error_set(err, STM_EDB, "%s: %s: %s", store_path(a->store), what,
                         sqlite3_errmsg(a->db));
}

/* Fixed statement q, reset and unbound; NULL when it cannot be prepared. */
static sqlite3_stmt *s_fixed(applier_t *a, int q)
{
    if (!a->fixed[q]) {
        if (sqlite3_prepare_v3(a->db, s_sql[q], -1, SQLITE_PREPARE_PERSISTENT, &a->fixed[q],
                               NULL) != SQLITE_OK)
            return NULL;
        return a->fixed[q];
    }
    sqlite3_reset(a->fixed[q]);
    sqlite3_clear_bindings(a->fixed[q]);
    return a->fixed[q];
}

static void s_statements_clear(applier_t *a)
{
    for (int q = 0; q < Q_COUNT; q++) {
        sqlite3_finalize(a->fixed[q]);
        a->fixed[q] = NULL;
    }
    for (size_t i = 0; i < a->nrows_slots; i++)
        sqlite3_finalize(a->rows[i].stmt);
    free(a->rows);
    a->rows = NULL;
    a->nrows_slots = a->nrows = 0;
    for (size_t i = 0; i < a->ntexts; i++) {
        sqlite3_finalize(a->texts[i].stmt);
        free(a->texts[i].sql);
    }
    a->ntexts = 0;
}

/* One cell to write: a local column and its value. */
typedef struct {
    const catalog_column *col;
    size_t position;  /* the column's index in the table */
    uint64_t seq;     /* the sequence of the operation that wrote it */
    op_value value;
    bool saved;       /* value's bytes are in the caller's buffer, at offset */
    size_t offset;
} s_cell;

/* The SQL of a row statement: ?1 is the key, ?2... the cells in order. */
static void s_row_sql(buf_t *sql, const s_table *t, s_row_kind kind, const s_cell *cells,
                      size_t ncells)
{
    const char *table = catalog_table_name(t->def);
    switch (kind) {
    case ROW_EXISTS:
        buf_puts(sql, "SELECT 1 FROM ");
        sqlscript_quote_ident(sql, table);
        break;
    case ROW_DELETE:
        buf_puts(sql, "DELETE FROM ");
        sqlscript_quote_ident(sql, table);
        break;
    case ROW_UPDATE:
        buf_puts(sql, "UPDATE ");
        sqlscript_quote_ident(sql, table);
        buf_puts(sql, " SET ");
        for (size_t i = 0; i < ncells; i++) {
            if (i)
                buf_puts(sql, ", ");
            sqlscript_quote_ident(sql, cells[i].col->name);
            buf_printf(sql, " = ?%zu", i + 2);
        }
        break;
    case ROW_INSERT:
        buf_puts(sql, "INSERT INTO ");
        sqlscript_quote_ident(sql, table);
        buf_puts(sql, " (");
        sqlscript_quote_ident(sql, t->key->name);
        for (size_t i = 0; i < ncells; i++) {
            buf_puts(sql, ", ");
            sqlscript_quote_ident(sql, cells[i].col->name);
        }
        buf_puts(sql, ") VALUES (?1");
        for (size_t i = 0; i < ncells; i++)
            buf_printf(sql, ", ?%zu", i + 2);
        buf_puts(sql, ")");
        return;
    }
    buf_puts(sql, " WHERE ");
    sqlscript_quote_ident(sql, t->key->name);
    buf_puts(sql, " = ?1");
}

static sqlite3_stmt *s_prepare(applier_t *a, const char *sql)
{
    sqlite3_stmt *stmt = NULL;
    if (sqlite3_prepare_v3(a->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, NULL) != SQLITE_OK)
        return NULL;
    return stmt;
}

static size_t s_row_slot(const applier_t *a, const s_table *t, s_row_kind kind, uint64_t mask)
{
    uint64_t h = (uint64_t)(uintptr_t)t * 0x9E3779B97F4A7C15ull ^ mask * 0xC2B2AE3D27D4EB4Full ^
                 (uint64_t)kind;
    size_t s = (size_t)(h ^ h >> 29) & (a->nrows_slots - 1);
    while (a->rows[s].table &&
           !(a->rows[s].table == t && a->rows[s].kind == kind && a->rows[s].mask == mask))
        s = (s + 1) & (a->nrows_slots - 1);
    return s;
}

/* The row statement for these cells (sorted by position), reset and unbound. */
static sqlite3_stmt *s_row_stmt_for(applier_t *a, const s_table *t, s_row_kind kind,
                                    const s_cell *cells, size_t ncells)
{
    uint64_t mask = 0;
    bool fits = true;
    for (size_t i = 0; i < ncells; i++) {
        if (cells[i].position >= 64)
            fits = false;
        else
            mask |= 1ull << cells[i].position;
    }
    buf_t sql = BUF_INIT;
    sqlite3_stmt *stmt = NULL;
    if (!fits) {
        s_row_sql(&sql, t, kind, cells, ncells);
        for (size_t i = 0; i < a->ntexts && !stmt; i++)
            if (strcmp(a->texts[i].sql, buf_str(&sql)) == 0)
                stmt = a->texts[i].stmt;
        if (!stmt && (stmt = s_prepare(a, buf_str(&sql))) != NULL) {
            a->texts = stm_grow(a->texts, &a->texts_cap, a->ntexts + 1, sizeof *a->texts);
            a->texts[a->ntexts].sql = buf_detach(&sql);
            a->texts[a->ntexts].stmt = stmt;
            a->ntexts++;
        }
        buf_free(&sql);
    } else {
        if ((a->nrows + 1) * 2 > a->nrows_slots) {
            size_t old_n = a->nrows_slots;
            s_row_stmt *old = a->rows;
            a->nrows_slots = old_n ? old_n * 2 : 64;
            a->rows = stm_calloc(a->nrows_slots, sizeof *a->rows);
            for (size_t i = 0; i < old_n; i++)
                if (old[i].table)
                    a->rows[s_row_slot(a, old[i].table, old[i].kind, old[i].mask)] = old[i];
            free(old);
        }
        size_t slot = s_row_slot(a, t, kind, mask);
        if (a->rows[slot].table) {
            stmt = a->rows[slot].stmt;
        } else {
            s_row_sql(&sql, t, kind, cells, ncells);
            stmt = s_prepare(a, buf_str(&sql));
            buf_free(&sql);
            if (stmt) {
                a->rows[slot] = (s_row_stmt){t, kind, mask, stmt};
                a->nrows++;
            }
        }
    }
    if (stmt) {
        sqlite3_reset(stmt);
        sqlite3_clear_bindings(stmt);
    }
    return stmt;
}

/* ---- the local catalog ---- */

/* Re-reads the catalog and the exclude list when the schema changed. */
static stm_err s_refresh_catalog(applier_t *a, stm_error *err)
{
    int cookie = sqlscript_schema_cookie(a->db);
    if (cookie == a->schema_cookie && a->catalog)
        return STM_OK;
    s_statements_clear(a);
    catalog_destroy(&a->catalog);
    free(a->tables);
    a->tables = NULL;
    a->ntables = 0;
    a->last_table = NULL;
    stm_err rc = catalog_read(a->db, &a->catalog, err);
    if (rc != STM_OK)
        return rc;
    sqlite3_stmt *excluded = NULL;
    if (sqlite3_prepare_v2(a->db, "SELECT 1 FROM stemma_exclude WHERE tbl = ?1", -1, &excluded,
                           NULL) != SQLITE_OK)
        return s_db_error(a, err, "reading stemma_exclude");
    a->tables = stm_calloc(catalog_count(a->catalog) + 1, sizeof *a->tables);
    for (size_t i = 0; i < catalog_count(a->catalog); i++) {
        const catalog_table *t = catalog_at(a->catalog, i);
        sqlite3_reset(excluded);
        sqlite3_bind_text(excluded, 1, catalog_table_name(t), -1, SQLITE_STATIC);
        bool is_excluded = sqlite3_step(excluded) == SQLITE_ROW;
        if (capture_classify(t, is_excluded) != CAPTURE_SYNCED)
            continue;
        a->tables[a->ntables].def = t;
        a->tables[a->ntables].key = capture_key_column(t);
        a->ntables++;
    }
    sqlite3_finalize(excluded);
    a->schema_cookie = cookie;
    return STM_OK;
}

/* The synced table named name (any case), or NULL. */
static const s_table *s_find_table(applier_t *a, const char *name)
{
    if (a->last_table && sqlite3_stricmp(catalog_table_name(a->last_table->def), name) == 0)
        return a->last_table;
    for (size_t i = 0; i < a->ntables; i++) {
        if (sqlite3_stricmp(catalog_table_name(a->tables[i].def), name) == 0) {
            a->last_table = &a->tables[i];
            return a->last_table;
        }
    }
    return NULL;
}

/* The position of col in t's declaration. */
static size_t s_position(const s_table *t, const catalog_column *col)
{
    return (size_t)(col - catalog_table_column(t->def, 0));
}

/* ---- life ---- */

applier_t *applier_new(store_t *store, apply_warn_fn warn, void *ctx)
{
    applier_t *a = stm_calloc(1, sizeof *a);
    a->store = store;
    a->db = store_db(store);
    a->warn = warn;
    a->warn_ctx = ctx;
    a->schema_cookie = -1;
    return a;
}

void applier_destroy(applier_t **self_p)
{
    applier_t *a = *self_p;
    if (!a)
        return;
    s_statements_clear(a);
    free(a->texts);
    catalog_destroy(&a->catalog);
    free(a->tables);
    for (size_t i = 0; i < a->nwarned; i++)
        free(a->warned[i]);
    free(a->warned);
    free(a->touched);
    free(a);
    *self_p = NULL;
}

/* ---- recording and parking ---- */

static void s_warn_once(applier_t *a, const op_t *op, const char *reason)
{
    if (!a->warn)
        return;
    char origin[STM_ID_HEX_LEN + 1];
    stm_id_to_hex(&op->origin, origin);
    origin[12] = '\0';
    buf_t key = BUF_INIT;
    buf_printf(&key, "%s/%s.%s", origin, op->table, op->column ? op->column : "");
    for (size_t i = 0; i < a->nwarned; i++) {
        if (strcmp(a->warned[i], buf_str(&key)) == 0) {
            buf_free(&key);
            return;
        }
    }
    a->warned = stm_grow(a->warned, &a->warned_cap, a->nwarned + 1, sizeof *a->warned);
    a->warned[a->nwarned++] = buf_detach(&key);
    buf_t msg = BUF_INIT;
    buf_printf(&msg, "parking operations from %s on %s%s%s: %s", origin, op->table,
               op->column ? "." : "", op->column ? op->column : "", reason);
    a->warn(a->warn_ctx, buf_str(&msg));
    buf_free(&msg);
}

/* Parked kinds as stored in stemma_oplog.parked. */
enum { PARKED_NO = 0, PARKED_SCHEMA = 1, PARKED_CONSTRAINT = 2 };

static const char *s_kind_name(int parked)
{
    return parked == PARKED_SCHEMA ? "schema" : "constraint";
}

static void s_touch(applier_t *a, const stm_id *origin)
{
    for (size_t i = 0; i < a->ntouched; i++)
        if (stm_id_equal(&a->touched[i], origin))
            return;
    a->touched = stm_grow(a->touched, &a->touched_cap, a->ntouched + 1, sizeof *a->touched);
    a->touched[a->ntouched++] = *origin;
}

/* Records op in the oplog unless it is there already (*present). table and column
 * are the names to store: the local catalog's for an op that applies, so that later
 * lookups find it; the received ones for a parked op. */
static stm_err s_record(applier_t *a, const op_t *op, const char *table, const char *column,
                        int parked, bool *present, stm_error *err)
{
    sqlite3_stmt *ins = s_fixed(a, Q_RECORD);
    if (!ins)
        return s_db_error(a, err, "recording an operation");
    char aff[2] = {op->affinity, '\0'};
    sqlite3_bind_blob(ins, 1, op->origin.bytes, STM_ID_BYTES, SQLITE_STATIC);
    sqlite3_bind_int64(ins, 2, (sqlite3_int64)op->seq);
    sqlite3_bind_int64(ins, 3, (sqlite3_int64)op->hlc);
    sqlite3_bind_blob(ins, 4, op->version_id.bytes, STM_ID_BYTES, SQLITE_STATIC);
    sqlite3_bind_text(ins, 5, table, -1, SQLITE_STATIC);
    /* A value SQLite refuses to bind (over its length limit) must not become NULL. */
    if (op_value_bind(ins, 6, &op->pk) != SQLITE_OK)
        return s_db_error(a, err, "recording an operation's key");
    if (column) {
        sqlite3_bind_text(ins, 7, column, -1, SQLITE_STATIC);
        sqlite3_bind_text(ins, 8, aff, 1, SQLITE_TRANSIENT);
        if (op_value_bind(ins, 9, &op->value) != SQLITE_OK)
            return s_db_error(a, err, "recording an operation's value");
    }
    sqlite3_bind_int(ins, 10, parked);
    if (sqlite3_step(ins) != SQLITE_DONE)
        return s_db_error(a, err, "recording an operation");
    *present = sqlite3_changes(a->db) == 0;
    if (!*present) {
        if (op->hlc > a->max_hlc)
            a->max_hlc = op->hlc;
        s_touch(a, &op->origin);
    }
    return STM_OK;
}

/* Writes why op (recorded already) is parked. */
static stm_err s_park_reason(applier_t *a, const op_t *op, int parked, const char *reason,
                             apply_stats *st, stm_error *err)
{
    s_warn_once(a, op, reason);
    st->parked++;
    sqlite3_stmt *park = s_fixed(a, Q_PARK_REASON);
    if (!park)
        return s_db_error(a, err, "parking an operation");
    sqlite3_bind_blob(park, 1, op->origin.bytes, STM_ID_BYTES, SQLITE_STATIC);
    sqlite3_bind_int64(park, 2, (sqlite3_int64)op->seq);
    sqlite3_bind_text(park, 3, s_kind_name(parked), -1, SQLITE_STATIC);
    sqlite3_bind_text(park, 4, reason, -1, SQLITE_STATIC);
    if (sqlite3_step(park) != SQLITE_DONE)
        return s_db_error(a, err, "parking an operation");
    return STM_OK;
}

/* Records and parks a new op; counts it present instead when it was there. */
static stm_err s_park(applier_t *a, const op_t *op, int parked, const char *reason,
                      apply_stats *st, stm_error *err)
{
    bool present;
    stm_err rc = s_record(a, op, op->table, op->column, parked, &present, err);
    if (rc != STM_OK)
        return rc;
    if (present) {
        st->present++;
        return STM_OK;
    }
    return s_park_reason(a, op, parked, reason, st, err);
}

/* Parks an op already recorded as applied: a constraint refused its row write. */
static stm_err s_repark(applier_t *a, const op_t *op, const char *reason, apply_stats *st,
                        stm_error *err)
{
    sqlite3_stmt *mark = s_fixed(a, Q_MARK_PARKED);
    if (!mark)
        return s_db_error(a, err, "parking an operation");
    sqlite3_bind_blob(mark, 1, op->origin.bytes, STM_ID_BYTES, SQLITE_STATIC);
    sqlite3_bind_int64(mark, 2, (sqlite3_int64)op->seq);
    sqlite3_bind_int(mark, 3, PARKED_CONSTRAINT);
    if (sqlite3_step(mark) != SQLITE_DONE)
        return s_db_error(a, err, "parking an operation");
    return s_park_reason(a, op, PARKED_CONSTRAINT, reason, st, err);
}

/* ---- last writer wins ---- */

/* Binds stemma_clock's (tbl, pk, col) as ?1 ?2 ?3: a column name, or when column is
 * NULL the special entry `special`. */
static int s_bind_cell(sqlite3_stmt *stmt, const char *table, const op_value *pk,
                       const char *column, int special)
{
    sqlite3_bind_text(stmt, 1, table, -1, SQLITE_STATIC);
    int rc = op_value_bind(stmt, 2, pk);
    if (column)
        sqlite3_bind_text(stmt, 3, column, -1, SQLITE_STATIC);
    else
        sqlite3_bind_int(stmt, 3, special);
    return rc;
}

/* Steps stmt, a query of (hlc, origin), once: the write it finds, if any. */
static stm_err s_read_clock(applier_t *a, sqlite3_stmt *stmt, uint64_t *hlc, stm_id *origin,
                            bool *found, stm_error *err)
{
    int step = sqlite3_step(stmt);
    *found = step == SQLITE_ROW;
    if (*found) {
        *hlc = (uint64_t)sqlite3_column_int64(stmt, 0);
        memset(origin->bytes, 0, STM_ID_BYTES);
        if (sqlite3_column_bytes(stmt, 1) == STM_ID_BYTES)
            memcpy(origin->bytes, sqlite3_column_blob(stmt, 1), STM_ID_BYTES);
    }
    sqlite3_reset(stmt);
    if (step != SQLITE_ROW && step != SQLITE_DONE)
        return s_db_error(a, err, "reading clocks");
    return STM_OK;
}

/* The latest write recorded for a cell (or a row's special entry). *found false
 * when there is none. */
static stm_err s_clock_get(applier_t *a, const char *table, const op_value *pk,
                           const char *column, int special, uint64_t *hlc, stm_id *origin,
                           bool *found, stm_error *err)
{
    sqlite3_stmt *stmt = s_fixed(a, Q_CLOCK_GET);
    if (!stmt || s_bind_cell(stmt, table, pk, column, special) != SQLITE_OK)
        return s_db_error(a, err, "reading clocks");
    return s_read_clock(a, stmt, hlc, origin, found, err);
}

/* Records the write (hlc, origin, seq) for a cell (or special entry) when it is later
 * than the one there. */
static stm_err s_clock_put(applier_t *a, const char *table, const op_value *pk,
                           const char *column, int special, uint64_t hlc, const stm_id *origin,
                           uint64_t seq, stm_error *err)
{
    sqlite3_stmt *stmt = s_fixed(a, Q_CLOCK_PUT);
    if (!stmt || s_bind_cell(stmt, table, pk, column, special) != SQLITE_OK)
        return s_db_error(a, err, "recording clocks");
    sqlite3_bind_int64(stmt, 4, (sqlite3_int64)hlc);
    sqlite3_bind_blob(stmt, 5, origin->bytes, STM_ID_BYTES, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 6, (sqlite3_int64)seq);
    if (sqlite3_step(stmt) != SQLITE_DONE)
        return s_db_error(a, err, "recording clocks");
    return STM_OK;
}

/* The latest write of any cell of a row (written here, or parked for a column this
 * schema lacks). */
static stm_err s_row_latest(applier_t *a, const char *table, const op_value *pk, uint64_t *hlc,
                            stm_id *origin, bool *found, stm_error *err)
{
    sqlite3_stmt *stmt = s_fixed(a, Q_ROW_LATEST);
    if (!stmt)
        return s_db_error(a, err, "reading clocks");
    sqlite3_bind_text(stmt, 1, table, -1, SQLITE_STATIC);
    if (op_value_bind(stmt, 2, pk) != SQLITE_OK)
        return s_db_error(a, err, "reading clocks");
    return s_read_clock(a, stmt, hlc, origin, found, err);
}

/* True when the write (hlc, origin) is later than the latest one found. */
static bool s_later(uint64_t hlc, const stm_id *origin, bool found, uint64_t other_hlc,
                    const stm_id *other_origin)
{
    return !found || op_clock_compare(hlc, origin, other_hlc, other_origin) > 0;
}

/* The value of the latest applied write to a cell, for bringing a deleted row back.
 * Bytes are copied into store (freed by the caller). */
static stm_err s_cell_value(applier_t *a, const s_table *t, const op_value *pk,
                            const catalog_column *col, s_cell *cell, bool *found, buf_t *store,
                            stm_error *err)
{
    sqlite3_stmt *q = s_fixed(a, Q_CELL_VALUE);
    if (!q)
        return s_db_error(a, err, "reading a cell");
    sqlite3_bind_text(q, 1, catalog_table_name(t->def), -1, SQLITE_STATIC);
    if (op_value_bind(q, 2, pk) != SQLITE_OK)
        return s_db_error(a, err, "reading a cell");
    sqlite3_bind_text(q, 3, col->name, -1, SQLITE_STATIC);
    int step = sqlite3_step(q);
    *found = step == SQLITE_ROW;
    if (*found) {
        cell->col = col;
        cell->position = s_position(t, col);
        op_value_column(q, 0, &cell->value);
        if (cell->value.type == VALUE_TEXT || cell->value.type == VALUE_BLOB) {
            /* Keep the bytes past the reset; store may still move, so remember where. */
            cell->saved = true;
            cell->offset = store->len;
            buf_append(store, cell->value.bytes, cell->value.len);
        }
    }
    sqlite3_reset(q);
    return step == SQLITE_ROW || step == SQLITE_DONE ? STM_OK : s_db_error(a, err, "reading a cell");
}

/* Runs a row statement with the key as ?1 and the cells as ?2, ?3, ... Returns
 * SQLite's result; on a constraint failure *refused holds the message. */
static int s_run_row(applier_t *a, const s_table *t, s_row_kind kind, const op_value *pk,
                     const s_cell *cells, size_t ncells, char **refused)
{
    sqlite3_stmt *stmt = s_row_stmt_for(a, t, kind, cells, ncells);
    if (!stmt)
        return sqlite3_errcode(a->db);
    int rc = op_value_bind(stmt, 1, pk);
    for (size_t i = 0; i < ncells && rc == SQLITE_OK; i++)
        rc = op_value_bind(stmt, (int)i + 2, &cells[i].value);
    if (rc != SQLITE_OK)
        return rc; /* e.g. SQLITE_TOOBIG: the batch fails rather than write NULL */
    rc = sqlite3_step(stmt);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW && (rc & 0xff) == SQLITE_CONSTRAINT)
        *refused = stm_strdup(sqlite3_errmsg(a->db));
    sqlite3_reset(stmt);
    return rc;
}

/* An error that must abort the whole batch, as opposed to one that parks a row. */
static bool s_fatal(int rc)
{
    return rc != SQLITE_DONE && rc != SQLITE_ROW && (rc & 0xff) != SQLITE_CONSTRAINT &&
           (rc & 0xff) != SQLITE_MISMATCH;
}

static int s_by_position(const void *pa, const void *pb)
{
    const s_cell *a = pa, *b = pb;
    return a->position < b->position ? -1 : a->position > b->position;
}

/* Brings a row (back) into being: with the winning cells of this change and, when
 * the row was deleted before, the latest earlier value of every other column. */
static int s_insert_row(applier_t *a, const s_table *t, const op_value *pk, const s_cell *cells,
                        size_t ncells, bool deleted, char **refused, stm_error *err,
                        stm_err *rc)
{
    size_t ncols = catalog_table_count(t->def), nall = 0;
    s_cell *all = stm_calloc(ncols + 1, sizeof *all);
    buf_t saved = BUF_INIT;
    for (size_t i = 0; i < ncells; i++)
        if (cells[i].col != t->key)
            all[nall++] = cells[i];
    for (size_t c = 0; deleted && c < ncols && *rc == STM_OK; c++) {
        const catalog_column *col = catalog_table_column(t->def, c);
        bool have = col == t->key || col->hidden;
        for (size_t i = 0; i < nall && !have; i++)
            have = all[i].col == col;
        bool found = false;
        if (!have)
            *rc = s_cell_value(a, t, pk, col, &all[nall], &found, &saved, err);
        if (found)
            nall++;
    }
    int step = SQLITE_DONE;
    if (*rc == STM_OK) {
        /* Offsets into saved become pointers now that it has stopped growing. */
        for (size_t i = 0; i < nall; i++)
            if (all[i].saved)
                all[i].value.bytes = saved.data + all[i].offset;
        qsort(all, nall, sizeof *all, s_by_position);
        step = s_run_row(a, t, ROW_INSERT, pk, all, nall, refused);
    }
    free(all);
    buf_free(&saved);
    return step;
}

/* Applies one row change: n operations of one origin and clock on one row, all cell
 * writes. */
static stm_err s_apply_writes(applier_t *a, const op_t *const *ops, size_t n, apply_stats *st,
                              stm_error *err)
{
    const op_t *first = ops[0];
    const s_table *t = s_find_table(a, first->table);
    stm_err rc = STM_OK;
    if (!t) {
        for (size_t i = 0; i < n && rc == STM_OK; i++)
            rc = s_park(a, ops[i], PARKED_SCHEMA, "table not in this database, or not synced here",
                        st, err);
        return rc;
    }
    if (first->pk.type == VALUE_NULL) {
        for (size_t i = 0; i < n && rc == STM_OK; i++)
            rc = s_park(a, ops[i], PARKED_SCHEMA, "a row with a NULL primary key cannot be synced",
                        st, err);
        return rc;
    }
    const char *table = catalog_table_name(t->def);
    s_cell *cells = stm_calloc(n, sizeof *cells);
    const op_t **applied = stm_calloc(n, sizeof *applied);
    size_t ncells = 0, napplied = 0, nparked = 0;
    char *refused = NULL;

    for (size_t i = 0; i < n && rc == STM_OK; i++) {
        const op_t *op = ops[i];
        const catalog_column *col = catalog_table_find(t->def, op->column);
        char reason[160];
        if (!col || col->hidden || capture_affinity_code(col->affinity) != op->affinity) {
            if (!col || col->hidden)
                snprintf(reason, sizeof reason, "column not in this database");
            else
                snprintf(reason, sizeof reason, "type conflict: %s here, %c at the writer",
                         catalog_affinity_name(col->affinity), op->affinity);
            uint64_t before = st->parked;
            rc = s_park(a, op, PARKED_SCHEMA, reason, st, err);
            nparked += st->parked - before;
            continue;
        }
        bool present;
        rc = s_record(a, op, table, col->name, PARKED_NO, &present, err);
        if (rc != STM_OK || present) {
            st->present += present;
            continue;
        }
        applied[napplied++] = op;
        uint64_t hlc = 0;
        stm_id origin = {{0}};
        bool found = false;
        rc = s_clock_get(a, table, &op->pk, col->name, 0, &hlc, &origin, &found, err);
        if (rc == STM_OK && s_later(op->hlc, &op->origin, found, hlc, &origin)) {
            cells[ncells].col = col;
            cells[ncells].position = s_position(t, col);
            cells[ncells].seq = op->seq;
            cells[ncells].value = op->value;
            ncells++;
        }
    }
    /* Even a change whose every column was parked may bring a deleted row back. */
    if (rc != STM_OK || (napplied == 0 && nparked == 0))
        goto done;
    qsort(cells, ncells, sizeof *cells, s_by_position);

    int step = SQLITE_DONE;
    bool exists = false;
    /* Most rows exist: update first, and look further only when nothing matched. */
    if (ncells) {
        step = s_run_row(a, t, ROW_UPDATE, &first->pk, cells, ncells, &refused);
        exists = step == SQLITE_DONE && sqlite3_changes(a->db) > 0;
    } else {
        step = s_run_row(a, t, ROW_EXISTS, &first->pk, NULL, 0, &refused);
        exists = step == SQLITE_ROW;
        if (step == SQLITE_ROW)
            step = SQLITE_DONE;
    }
    if (!exists && !refused && !s_fatal(step)) {
        uint64_t del_hlc = 0;
        stm_id del_origin = {{0}};
        bool deleted = false;
        rc = s_clock_get(a, table, &first->pk, NULL, CLOCK_DELETE, &del_hlc, &del_origin, &deleted,
                         err);
        bool have_values = napplied > 0 || deleted;
        if (rc == STM_OK && have_values &&
            s_later(first->hlc, &first->origin, deleted, del_hlc, &del_origin))
            step = s_insert_row(a, t, &first->pk, cells, ncells, deleted, &refused, err, &rc);
    }
    if (rc != STM_OK)
        goto done;
    if (s_fatal(step)) {
        rc = s_db_error(a, err, "writing a row");
        goto done;
    }
    for (size_t i = 0; i < napplied && rc == STM_OK; i++) {
        if (refused) {
            rc = s_repark(a, applied[i], refused, st, err);
        } else {
            st->applied++;
            a->any_applied = true;
        }
    }
    /* The clocks move only for what was written: the winning cells and, for a write
     * parked for a missing column, the row's entry for such writes. */
    for (size_t i = 0; i < ncells && rc == STM_OK && !refused; i++)
        rc = s_clock_put(a, table, &first->pk, cells[i].col->name, 0, first->hlc, &first->origin,
                         cells[i].seq, err);
    if (rc == STM_OK && nparked)
        rc = s_clock_put(a, table, &first->pk, NULL, CLOCK_WRITE, first->hlc, &first->origin,
                         first->seq, err);
done:
    free(refused);
    free(cells);
    free(applied);
    return rc;
}

/* Applies one row delete. */
static stm_err s_apply_delete(applier_t *a, const op_t *op, apply_stats *st, stm_error *err)
{
    const s_table *t = s_find_table(a, op->table);
    if (!t)
        return s_park(a, op, PARKED_SCHEMA, "table not in this database, or not synced here", st,
                      err);
    if (op->pk.type == VALUE_NULL)
        return s_park(a, op, PARKED_SCHEMA, "a row with a NULL primary key cannot be synced", st,
                      err);
    const char *table = catalog_table_name(t->def);
    bool present;
    stm_err rc = s_record(a, op, table, NULL, PARKED_NO, &present, err);
    if (rc != STM_OK || present) {
        st->present += present;
        return rc;
    }
    uint64_t hlc = 0;
    stm_id origin = {{0}};
    bool found = false;
    if ((rc = s_row_latest(a, table, &op->pk, &hlc, &origin, &found, err)) != STM_OK)
        return rc;
    char *refused = NULL;
    if (s_later(op->hlc, &op->origin, found, hlc, &origin)) {
        int step = s_run_row(a, t, ROW_DELETE, &op->pk, NULL, 0, &refused);
        if (s_fatal(step))
            return s_db_error(a, err, "deleting a row");
    }
    if (refused) {
        rc = s_repark(a, op, refused, st, err);
        free(refused);
        return rc;
    }
    st->applied++;
    a->any_applied = true;
    return s_clock_put(a, table, &op->pk, NULL, CLOCK_DELETE, op->hlc, &op->origin, op->seq, err);
}

/* ---- batches ---- */

/* Causal order: by clock, then origin, then sequence. */
static int s_causal(const void *pa, const void *pb)
{
    const op_t *a = *(const op_t *const *)pa, *b = *(const op_t *const *)pb;
    int c = op_clock_compare(a->hlc, &a->origin, b->hlc, &b->origin);
    if (c)
        return c;
    return a->seq < b->seq ? -1 : a->seq > b->seq;
}

static bool s_same_row_change(const op_t *a, const op_t *b)
{
    return a->hlc == b->hlc && stm_id_equal(&a->origin, &b->origin) && !op_is_delete(a) &&
           !op_is_delete(b) && strcmp(a->table, b->table) == 0 && op_value_equal(&a->pk, &b->pk);
}

/* Applies ops (any order) inside the open transaction. */
static stm_err s_apply_ops(applier_t *a, const op_t **ops, size_t n, apply_stats *st,
                           stm_error *err)
{
    qsort(ops, n, sizeof *ops, s_causal);
    stm_err rc = STM_OK;
    size_t i = 0;
    while (i < n && rc == STM_OK) {
        size_t j = i + 1;
        while (j < n && s_same_row_change(ops[i], ops[j]))
            j++;
        rc = op_is_delete(ops[i]) ? s_apply_delete(a, ops[i], st, err)
                                  : s_apply_writes(a, ops + i, j - i, st, err);
        i = j;
    }
    return rc;
}

/* Moves each touched remote origin's vector entry up over what is now contiguous,
 * and keeps the local sequence above any operation of our own id received back. */
static stm_err s_update_vectors(applier_t *a, stm_error *err)
{
    sqlite3_stmt *walk = NULL;
    if (sqlite3_prepare_v2(a->db, "SELECT seq FROM stemma_oplog WHERE origin = ?1 AND seq > ?2 "
                                  "ORDER BY seq", -1, &walk, NULL) != SQLITE_OK)
        return s_db_error(a, err, "updating the version vector");
    stm_err rc = STM_OK;
    for (size_t i = 0; i < a->ntouched && rc == STM_OK; i++) {
        const stm_id *origin = &a->touched[i];
        if (stm_id_equal(origin, &a->node_id)) {
            sqlite3_stmt *set = s_fixed(a, Q_LOCAL_SEQ);
            if (!set) {
                rc = s_db_error(a, err, "updating the local sequence");
                break;
            }
            sqlite3_bind_blob(set, 1, origin->bytes, STM_ID_BYTES, SQLITE_STATIC);
            if (sqlite3_step(set) != SQLITE_DONE)
                rc = s_db_error(a, err, "updating the local sequence");
            continue;
        }
        sqlite3_stmt *get = s_fixed(a, Q_VECTOR_GET);
        if (!get) {
            rc = s_db_error(a, err, "updating the version vector");
            break;
        }
        sqlite3_bind_blob(get, 1, origin->bytes, STM_ID_BYTES, SQLITE_STATIC);
        sqlite3_int64 seq = sqlite3_step(get) == SQLITE_ROW ? sqlite3_column_int64(get, 0) : 0;
        sqlite3_reset(get);
        sqlite3_reset(walk);
        sqlite3_bind_blob(walk, 1, origin->bytes, STM_ID_BYTES, SQLITE_STATIC);
        sqlite3_bind_int64(walk, 2, seq);
        while (sqlite3_step(walk) == SQLITE_ROW && sqlite3_column_int64(walk, 0) == seq + 1)
            seq++;
        sqlite3_reset(walk);
        sqlite3_stmt *set = s_fixed(a, Q_VECTOR_SET);
        if (!set) {
            rc = s_db_error(a, err, "updating the version vector");
            break;
        }
        sqlite3_bind_blob(set, 1, origin->bytes, STM_ID_BYTES, SQLITE_STATIC);
        sqlite3_bind_int64(set, 2, seq);
        if (sqlite3_step(set) != SQLITE_DONE)
            rc = s_db_error(a, err, "updating the version vector");
    }
    sqlite3_finalize(walk);
    return rc;
}

/* Enters the operations captured here since the last time into stemma_clock, so
 * that they take part in last writer wins (capture itself only appends to the oplog,
 * keeping the application's writes cheap). */
static stm_err s_catch_up(applier_t *a, stm_error *err)
{
    sqlite3_stmt *list = s_fixed(a, Q_CLOCKED_LIST);
    if (!list)
        return s_db_error(a, err, "reading stemma_clocked");
    stm_id *origins = NULL;
    uint64_t *marks = NULL;
    size_t n = 0, cap = 0, mcap = 0;
    while (sqlite3_step(list) == SQLITE_ROW) {
        if (sqlite3_column_bytes(list, 0) != STM_ID_BYTES)
            continue;
        origins = stm_grow(origins, &cap, n + 1, sizeof *origins);
        marks = stm_grow(marks, &mcap, n + 1, sizeof *marks);
        memcpy(origins[n].bytes, sqlite3_column_blob(list, 0), STM_ID_BYTES);
        marks[n] = (uint64_t)sqlite3_column_int64(list, 1);
        n++;
    }
    sqlite3_reset(list);
    stm_err rc = STM_OK;
    sqlite3_stmt *ops = NULL;
    if (sqlite3_prepare_v2(a->db, s_sql[Q_CLOCKED_OPS], -1, &ops, NULL) != SQLITE_OK)
        rc = s_db_error(a, err, "reading local operations");
    for (size_t i = 0; i < n && rc == STM_OK; i++) {
        sqlite3_reset(ops);
        sqlite3_bind_blob(ops, 1, origins[i].bytes, STM_ID_BYTES, SQLITE_STATIC);
        sqlite3_bind_int64(ops, 2, (sqlite3_int64)marks[i]);
        uint64_t last = marks[i];
        int step;
        while (rc == STM_OK && (step = sqlite3_step(ops)) == SQLITE_ROW) {
            last = (uint64_t)sqlite3_column_int64(ops, 0);
            uint64_t hlc = (uint64_t)sqlite3_column_int64(ops, 1);
            const char *table = (const char *)sqlite3_column_text(ops, 2);
            op_value pk;
            op_value_column(ops, 3, &pk);
            const char *column = (const char *)sqlite3_column_text(ops, 4);
            if (!table || pk.type == VALUE_NULL)
                continue;
            if (column) {
                rc = s_clock_put(a, table, &pk, column, 0, hlc, &origins[i], last, err);
            } else {
                rc = s_clock_put(a, table, &pk, NULL, CLOCK_DELETE, hlc, &origins[i], last, err);
            }
        }
        if (rc == STM_OK && step != SQLITE_DONE)
            rc = s_db_error(a, err, "reading local operations");
        if (rc == STM_OK && last != marks[i]) {
            sqlite3_stmt *set = s_fixed(a, Q_CLOCKED_SET);
            if (!set)
                rc = s_db_error(a, err, "updating stemma_clocked");
            else {
                sqlite3_bind_blob(set, 1, origins[i].bytes, STM_ID_BYTES, SQLITE_STATIC);
                sqlite3_bind_int64(set, 2, (sqlite3_int64)last);
                if (sqlite3_step(set) != SQLITE_DONE)
                    rc = s_db_error(a, err, "updating stemma_clocked");
            }
        }
    }
    sqlite3_finalize(ops);
    free(origins);
    free(marks);
    return rc;
}

/* Opens the batch's transaction with capture off. */
static stm_err s_begin(applier_t *a, stm_error *err)
{
    if (sqlite3_exec(a->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        return s_db_error(a, err, "starting a transaction");
    stm_err rc = s_refresh_catalog(a, err);
    if (rc == STM_OK)
        rc = s_catch_up(a, err);
    if (rc == STM_OK)
        rc = store_exec(a->store, "UPDATE stemma_local SET applying = 1 WHERE id = 1", err);
    if (rc == STM_OK)
        rc = store_node_id(a->store, &a->node_id, err);
    a->max_hlc = 0;
    a->ntouched = 0;
    a->any_applied = false;
    if (rc != STM_OK)
        sqlite3_exec(a->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

/* Moves the clock, turns capture back on and commits; rolls back on failure. */
static stm_err s_commit(applier_t *a, stm_err rc, stm_error *err)
{
    if (rc == STM_OK)
        rc = s_update_vectors(a, err);
    if (rc == STM_OK) {
        sqlite3_stmt *clock = s_fixed(a, Q_CLOCK);
        if (!clock)
            rc = s_db_error(a, err, "moving the clock");
        else {
            sqlite3_bind_int64(clock, 1, (sqlite3_int64)a->max_hlc);
            if (sqlite3_step(clock) != SQLITE_DONE)
                rc = s_db_error(a, err, "moving the clock");
        }
    }
    if (rc == STM_OK && sqlite3_exec(a->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        rc = s_db_error(a, err, "committing");
    if (rc != STM_OK)
        sqlite3_exec(a->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

/* Takes the parked operations (of one kind, or all) out of the oplog into batch. */
static stm_err s_take_parked(applier_t *a, const char *kind, opbatch_t *batch, stm_error *err)
{
    sqlite3_stmt *q = NULL;
    const char *sql =
        "SELECT o.origin, o.seq, o.hlc, o.version_id, o.tbl, o.pk, o.col, o.aff, o.val "
        "FROM stemma_parked AS p JOIN stemma_oplog AS o ON o.origin = p.origin AND o.seq = p.seq "
        "WHERE ?1 IS NULL OR p.kind = ?1";
    if (sqlite3_prepare_v2(a->db, sql, -1, &q, NULL) != SQLITE_OK)
        return s_db_error(a, err, "reading parked operations");
    if (kind)
        sqlite3_bind_text(q, 1, kind, -1, SQLITE_STATIC);
    int step;
    while ((step = sqlite3_step(q)) == SQLITE_ROW) {
        op_t op;
        oplog_row_read(q, &op);
        opbatch_add(batch, &op);
    }
    sqlite3_finalize(q);
    if (step != SQLITE_DONE)
        return s_db_error(a, err, "reading parked operations");
    if (!opbatch_count(batch))
        return STM_OK;
    /* Out of the oplog for the retry, which records each again, parked or not. */
    sqlite3_stmt *del = NULL;
    if (sqlite3_prepare_v2(a->db,
                           "DELETE FROM stemma_oplog WHERE (origin, seq) IN (SELECT origin, seq "
                           "FROM stemma_parked WHERE ?1 IS NULL OR kind = ?1)",
                           -1, &del, NULL) != SQLITE_OK)
        return s_db_error(a, err, "retrying parked operations");
    if (kind)
        sqlite3_bind_text(del, 1, kind, -1, SQLITE_STATIC);
    step = sqlite3_step(del);
    sqlite3_finalize(del);
    if (step != SQLITE_DONE)
        return s_db_error(a, err, "retrying parked operations");
    sqlite3_stmt *clear = NULL;
    if (sqlite3_prepare_v2(a->db, "DELETE FROM stemma_parked WHERE ?1 IS NULL OR kind = ?1", -1,
                           &clear, NULL) != SQLITE_OK)
        return s_db_error(a, err, "retrying parked operations");
    if (kind)
        sqlite3_bind_text(clear, 1, kind, -1, SQLITE_STATIC);
    step = sqlite3_step(clear);
    sqlite3_finalize(clear);
    return step == SQLITE_DONE ? STM_OK : s_db_error(a, err, "retrying parked operations");
}

/* Retries parked operations of kind (NULL: all) inside the open transaction. */
static stm_err s_retry(applier_t *a, const char *kind, apply_stats *st, stm_error *err)
{
    opbatch_t *batch = opbatch_new();
    stm_err rc = s_take_parked(a, kind, batch, err);
    size_t n = opbatch_count(batch);
    if (rc == STM_OK && n) {
        const op_t **ops = stm_calloc(n, sizeof *ops);
        for (size_t i = 0; i < n; i++)
            ops[i] = opbatch_at(batch, i);
        apply_stats again = {0};
        /* Retried operations are not warned about a second time. */
        apply_warn_fn warn = a->warn;
        a->warn = NULL;
        rc = s_apply_ops(a, ops, n, &again, err);
        a->warn = warn;
        st->replayed += again.applied;
        free(ops);
    }
    opbatch_destroy(&batch);
    return rc;
}

static bool s_has_parked(applier_t *a, const char *kind)
{
    sqlite3_stmt *q = s_fixed(a, Q_HAS_PARKED);
    if (!q)
        return false;
    sqlite3_bind_text(q, 1, kind, -1, SQLITE_STATIC);
    bool any = sqlite3_step(q) == SQLITE_ROW;
    sqlite3_reset(q);
    return any;
}

stm_err applier_begin(applier_t *a, stm_error *err)
{
    if (a->open)
        return STM_OK;
    stm_err rc = s_begin(a, err);
    a->open = rc == STM_OK;
    return rc;
}

stm_err applier_commit(applier_t *a, stm_error *err)
{
    if (!a->open)
        return STM_OK;
    a->open = false;
    return s_commit(a, STM_OK, err);
}

void applier_rollback(applier_t *a)
{
    if (a->open)
        sqlite3_exec(a->db, "ROLLBACK", NULL, NULL, NULL);
    a->open = false;
}

stm_err applier_apply(applier_t *a, const opbatch_t *batch, apply_stats *stats, stm_error *err)
{
    bool own = !a->open;
    stm_err rc = own ? s_begin(a, err) : STM_OK;
    if (rc != STM_OK)
        return rc;
    size_t n = opbatch_count(batch);
    const op_t **ops = stm_calloc(n + 1, sizeof *ops);
    for (size_t i = 0; i < n; i++)
        ops[i] = opbatch_at(batch, i);
    apply_stats st = {0};
    a->any_applied = false;
    rc = s_apply_ops(a, ops, n, &st, err);
    free(ops);
    /* A row a refused write needed may have just arrived. */
    if (rc == STM_OK && a->any_applied && s_has_parked(a, "constraint"))
        rc = s_retry(a, "constraint", &st, err);
    if (own)
        rc = s_commit(a, rc, err);
    else if (rc != STM_OK)
        applier_rollback(a);
    if (rc == STM_OK) {
        stats->applied += st.applied;
        stats->present += st.present;
        stats->parked += st.parked;
        stats->replayed += st.replayed;
    }
    return rc;
}

stm_err applier_replay(applier_t *a, apply_stats *stats, stm_error *err)
{
    stm_err rc = s_begin(a, err);
    if (rc != STM_OK)
        return rc;
    apply_stats st = {0};
    rc = s_retry(a, NULL, &st, err);
    rc = s_commit(a, rc, err);
    if (rc == STM_OK)
        stats->replayed += st.replayed;
    return rc;
}

stm_err applier_catch_up(applier_t *a, stm_error *err)
{
    stm_err rc = s_begin(a, err);
    if (rc != STM_OK)
        return rc;
    return s_commit(a, STM_OK, err);
}
