#include "apply.h"
#include "capture.h"
#include "oplog.h"
#include "rowclock.h"
#include "base/buf.h"
#include "lineage/catalog.h"
#include "base/mem.h"
#include "lineage/sqlscript.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* How the hot path stays close to SQLite's own speed: a row change (the operations
 * of one origin and clock on one row) is the unit of work. It is recorded as one
 * oplog row (oplog.h), its row's clocks are one stemma_clock row read and written
 * once (rowclock.h), and the row is written with one statement, prepared once per
 * (table, kind, set of columns). Whether an operation is held already is known from
 * the version vector without a query, except for operations that arrive out of
 * order. A row with no clock yet is inserted first (the common case for new rows),
 * a row with one updated first. */

/* A synced table of the local catalog. */
typedef struct {
    const catalog_table *def;  /* lent by the applier's catalog */
    const catalog_column *key; /* its single key column */
    /* Within a transaction: the greatest key stemma_clock holds for the table, when it
     * is an integer (or there is none), so that a new row with a greater integer key
     * (the usual insert) is known to have no clocks without looking. */
    bool top_known;
    bool top_none;             /* no clocks at all, or the greatest key is not an integer */
    int64_t top;
} s_table;

/* The fixed statements, prepared on first use. */
enum {
    Q_CLOCK_GET,    /* a row's clocks */
    Q_CLOCK_PUT,    /* ... written back */
    Q_CLOCK_NEW,    /* ... or written the first time */
    Q_CLOCK_TOP,    /* the greatest key of a table in stemma_clock */
    Q_PARK,         /* why an operation is parked */
    Q_PARKED_LIST,  /* parked operations of a kind (or all) */
    Q_PARKED_CLEAR, /* ... taken out for a retry */
    Q_HAS_PARKED,
    Q_VECTOR_GET,
    Q_VECTOR_SET,
    Q_ABOVE,        /* does an origin have operations stored above its vector entry? */
    Q_LOCAL_SEQ,
    Q_CLOCK,
    Q_COUNT
};

static const char *const s_sql[Q_COUNT] = {
    [Q_CLOCK_GET] = "SELECT cells FROM stemma_clock WHERE tbl = ?1 AND pk = ?2",
    [Q_CLOCK_PUT] = "INSERT OR REPLACE INTO stemma_clock (tbl, pk, cells) VALUES (?1, ?2, ?3)",
    [Q_CLOCK_NEW] = "INSERT INTO stemma_clock (tbl, pk, cells) VALUES (?1, ?2, ?3)",
    [Q_CLOCK_TOP] = "SELECT pk FROM stemma_clock WHERE tbl = ?1 ORDER BY pk DESC LIMIT 1",
    [Q_PARK] = "INSERT OR REPLACE INTO stemma_parked (origin, seq, kind, reason) "
               "VALUES (?1, ?2, ?3, ?4)",
    [Q_PARKED_LIST] = "SELECT origin, seq FROM stemma_parked WHERE ?1 IS NULL OR kind = ?1 "
                      "ORDER BY origin, seq",
    [Q_PARKED_CLEAR] = "DELETE FROM stemma_parked WHERE ?1 IS NULL OR kind = ?1",
    [Q_HAS_PARKED] = "SELECT 1 FROM stemma_parked WHERE kind = ?1 LIMIT 1",
    [Q_VECTOR_GET] = "SELECT seq FROM stemma_vector WHERE origin = ?1",
    [Q_VECTOR_SET] = "INSERT INTO stemma_vector (origin, seq) VALUES (?1, ?2) "
                     "ON CONFLICT (origin) DO UPDATE SET seq = excluded.seq",
    [Q_ABOVE] = "SELECT 1 FROM stemma_oplog WHERE origin = ?1 AND seq > ?2 LIMIT 1",
    [Q_LOCAL_SEQ] = "UPDATE stemma_local SET seq = max(seq, ?1) WHERE id = 1",
    [Q_CLOCK] = "UPDATE stemma_local SET hlc = max(hlc, ?1), applying = 0 WHERE id = 1",
};

/* Row statements: one per (table, kind, set of columns). */
/* ROW_ADD inserts unless the key is there (then changes nothing). */
typedef enum { ROW_EXISTS, ROW_UPDATE, ROW_INSERT, ROW_ADD, ROW_DELETE } s_row_kind;

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



/* One cell to write: a local column and its value. */
typedef struct {
    const catalog_column *col;
    size_t position;  /* the column's index in the table */
    uint64_t seq;     /* the sequence of the operation that wrote it */
    op_value value;
    bool saved;       /* value's bytes are in the caller's buffer, at offset */
    size_t offset;
} s_cell;

/* What the transaction knows of one origin. */
typedef struct {
    stm_id id;
    int64_t no;        /* stemma_ids number; 0 until it has one */
    uint64_t held;     /* every operation up to here is held */
    bool above;        /* some may be held above held, so look those up */
    bool touched;      /* operations of it were recorded in this transaction */
    uint64_t top;      /* the highest sequence recorded in this transaction */
} s_origin;

struct applier {
    store_t *store;        /* lent */
    sqlite3 *db;           /* store's connection, lent */
    oplog_t *log;          /* owned */
    apply_warn_fn warn;    /* may be NULL */
    void *warn_ctx;
    catalog_t *catalog;    /* the local schema as last read */
    int schema_cookie;     /* PRAGMA schema_version when it was read; -1: never */
    s_table *tables;       /* synced tables, in catalog order */
    size_t ntables;
    s_table *last_table;   /* the last one looked up: batches run table by table */
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
    s_origin *origins;     /* origins met in the current transaction */
    size_t norigins, origins_cap;
    size_t last_origin;    /* index of the last one met */
    rowclock_t clock;      /* the clocks of the row being written */
    s_cell *cells;         /* scratch for a row change's cells, kept between rows */
    const op_t **applied;  /* ... and its operations that apply */
    size_t scratch_cap;
    buf_t clock_bytes;     /* scratch for encoding them */
    bool retrying;         /* applying parked operations, recorded already */
    bool any_applied;      /* something applied in this transaction */
    bool open;             /* applier_begin opened a transaction batches join */
};

/* ---- statements ---- */

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
    case ROW_ADD:
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
        if (kind == ROW_ADD) {
            buf_puts(sql, " ON CONFLICT (");
            sqlscript_quote_ident(sql, t->key->name);
            buf_puts(sql, ") DO NOTHING");
        }
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
        return store_error(a->store, err, "reading stemma_exclude");
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
static s_table *s_find_table(applier_t *a, const char *name)
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
    a->log = oplog_new(store);
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
    oplog_destroy(&a->log);
    free(a->texts);
    catalog_destroy(&a->catalog);
    free(a->tables);
    for (size_t i = 0; i < a->nwarned; i++)
        free(a->warned[i]);
    free(a->warned);
    free(a->origins);
    free(a->cells);
    free(a->applied);
    rowclock_free(&a->clock);
    buf_free(&a->clock_bytes);
    free(a);
    *self_p = NULL;
}

/* ---- origins and what is held of them ---- */

/* The transaction's state of origin, read on first meeting. */
static stm_err s_origin_get(applier_t *a, const stm_id *id, s_origin **out, stm_error *err)
{
    if (a->norigins && stm_id_equal(&a->origins[a->last_origin].id, id)) {
        *out = &a->origins[a->last_origin];
        return STM_OK;
    }
    for (size_t i = 0; i < a->norigins; i++) {
        if (stm_id_equal(&a->origins[i].id, id)) {
            a->last_origin = i;
            *out = &a->origins[i];
            return STM_OK;
        }
    }
    s_origin o = {.id = *id};
    stm_err rc = store_id_number(a->store, id, false, &o.no, err);
    if (rc != STM_OK)
        return rc;
    if (stm_id_equal(id, &a->node_id)) {
        sqlite3_stmt *q = NULL;
        if (sqlite3_prepare_v2(a->db, "SELECT seq FROM stemma_local WHERE id = 1", -1, &q, NULL) !=
            SQLITE_OK)
            return store_error(a->store, err, "reading the local sequence");
        if (sqlite3_step(q) == SQLITE_ROW)
            o.held = (uint64_t)sqlite3_column_int64(q, 0);
        sqlite3_finalize(q);
    } else {
        sqlite3_stmt *get = s_fixed(a, Q_VECTOR_GET);
        if (!get)
            return store_error(a->store, err, "reading the version vector");
        sqlite3_bind_blob(get, 1, id->bytes, STM_ID_BYTES, SQLITE_STATIC);
        if (sqlite3_step(get) == SQLITE_ROW)
            o.held = (uint64_t)sqlite3_column_int64(get, 0);
        sqlite3_reset(get);
    }
    if (o.no) {
        sqlite3_stmt *above = s_fixed(a, Q_ABOVE);
        if (!above)
            return store_error(a->store, err, "reading the oplog");
        sqlite3_bind_int64(above, 1, o.no);
        sqlite3_bind_int64(above, 2, (sqlite3_int64)o.held);
        int step = sqlite3_step(above);
        o.above = step == SQLITE_ROW;
        sqlite3_reset(above);
        if (step != SQLITE_ROW && step != SQLITE_DONE)
            return store_error(a->store, err, "reading the oplog");
    }
    a->origins = stm_grow(a->origins, &a->origins_cap, a->norigins + 1, sizeof *a->origins);
    a->last_origin = a->norigins;
    a->origins[a->norigins++] = o;
    *out = &a->origins[a->last_origin];
    return STM_OK;
}

/* Whether operation seq of o is held; *end is the last sequence of the stored row
 * change holding it (skip to there), or seq when it is not held. */
static stm_err s_held(applier_t *a, s_origin *o, uint64_t seq, bool *held, uint64_t *end,
                      stm_error *err)
{
    *end = seq;
    *held = seq <= o->held;
    /* Without anything stored above o->held, seq above it is new. */
    if (*held || !o->above || !o->no)
        return STM_OK;
    uint64_t last;
    stm_err rc = oplog_holds(a->log, o->no, seq, &last, err);
    if (rc == STM_OK && last) {
        *held = true;
        *end = last;
    }
    return rc;
}

/* Records ops[0..n) (one row change, none held, consecutive sequences) for o. */
static stm_err s_record(applier_t *a, s_origin *o, const op_t *const *ops, size_t n,
                        stm_error *err)
{
    stm_err rc = oplog_append(a->log, ops, n, ops[0]->table, err);
    if (rc != STM_OK)
        return rc;
    if (!o->no && (rc = store_id_number(a->store, &o->id, false, &o->no, err)) != STM_OK)
        return rc;
    uint64_t first = ops[0]->seq, last = ops[n - 1]->seq;
    if (first == o->held + 1)
        o->held = last;
    else
        o->above = true; /* a gap below it: later arrivals must be looked up */
    o->touched = true;
    if (last > o->top)
        o->top = last;
    if (ops[0]->hlc > a->max_hlc)
        a->max_hlc = ops[0]->hlc;
    return STM_OK;
}

/* ---- parking ---- */

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

/* Parked kinds: 'schema' (not in this schema) and 'constraint' (refused). */
typedef enum { PARK_SCHEMA, PARK_CONSTRAINT } s_park_kind;

/* Parks op (recorded already) with its reason. */
static stm_err s_park(applier_t *a, const op_t *op, s_park_kind kind, const char *reason,
                      apply_stats *st, stm_error *err)
{
    s_warn_once(a, op, reason);
    st->parked++;
    sqlite3_stmt *park = s_fixed(a, Q_PARK);
    if (!park)
        return store_error(a->store, err, "parking an operation");
    sqlite3_bind_blob(park, 1, op->origin.bytes, STM_ID_BYTES, SQLITE_STATIC);
    sqlite3_bind_int64(park, 2, (sqlite3_int64)op->seq);
    sqlite3_bind_text(park, 3, kind == PARK_SCHEMA ? "schema" : "constraint", -1, SQLITE_STATIC);
    sqlite3_bind_text(park, 4, reason, -1, SQLITE_STATIC);
    if (sqlite3_step(park) != SQLITE_DONE)
        return store_error(a->store, err, "parking an operation");
    return STM_OK;
}

static stm_err s_park_all(applier_t *a, const op_t *const *ops, size_t n, const char *reason,
                          apply_stats *st, stm_error *err)
{
    stm_err rc = STM_OK;
    for (size_t i = 0; i < n && rc == STM_OK; i++)
        rc = s_park(a, ops[i], PARK_SCHEMA, reason, st, err);
    return rc;
}

/* ---- row clocks ---- */

/* True when t has no clocks for integer key pk: it is above the greatest one. */
static stm_err s_above_top(applier_t *a, s_table *t, const op_value *pk, bool *above,
                           stm_error *err)
{
    *above = false;
    if (pk->type != VALUE_INTEGER)
        return STM_OK;
    if (!t->top_known) {
        sqlite3_stmt *q = s_fixed(a, Q_CLOCK_TOP);
        if (!q)
            return store_error(a->store, err, "reading clocks");
        sqlite3_bind_text(q, 1, catalog_table_name(t->def), -1, SQLITE_STATIC);
        int step = sqlite3_step(q);
        if (step == SQLITE_ROW && sqlite3_column_type(q, 0) == SQLITE_INTEGER) {
            t->top = sqlite3_column_int64(q, 0);
            t->top_none = false;
        } else {
            /* None at all (every integer is above), or a greater key of another type
             * (no integer is known to be above). */
            t->top_none = step == SQLITE_ROW;
            t->top = INT64_MIN;
        }
        sqlite3_reset(q);
        if (step != SQLITE_ROW && step != SQLITE_DONE)
            return store_error(a->store, err, "reading clocks");
        t->top_known = true;
    }
    *above = !t->top_none && pk->i > t->top;
    return STM_OK;
}

static stm_err s_clock_read(applier_t *a, const char *table, const op_value *pk, bool *found,
                            stm_error *err);

/* Reads the clocks of a row of t into a->clock, unless it is known to have none
 * (s_above_top); *found false when it has none. */
static stm_err s_row_clocks(applier_t *a, s_table *t, const op_value *pk, bool *found,
                            stm_error *err)
{
    bool above;
    stm_err rc = s_above_top(a, t, pk, &above, err);
    if (rc != STM_OK || !above)
        return rc == STM_OK ? s_clock_read(a, catalog_table_name(t->def), pk, found, err) : rc;
    rowclock_clear(&a->clock);
    *found = false;
    return STM_OK;
}

/* Reads the clocks of (table, pk) into a->clock; *found false when it has none. */
static stm_err s_clock_read(applier_t *a, const char *table, const op_value *pk, bool *found,
                            stm_error *err)
{
    rowclock_clear(&a->clock);
    sqlite3_stmt *get = s_fixed(a, Q_CLOCK_GET);
    if (!get)
        return store_error(a->store, err, "reading clocks");
    sqlite3_bind_text(get, 1, table, -1, SQLITE_STATIC);
    if (op_value_bind(get, 2, pk) != SQLITE_OK)
        return store_error(a->store, err, "reading clocks");
    int step = sqlite3_step(get);
    *found = step == SQLITE_ROW;
    stm_err rc = STM_OK;
    if (*found && !rowclock_decode(&a->clock, sqlite3_column_blob(get, 0),
                                   (size_t)sqlite3_column_bytes(get, 0)))
        rc = stm_error_set(err, STM_ECORRUPT, "%s: stemma_clock: the clocks of a row of %s are "
                           "damaged", store_path(a->store), table);
    else if (step != SQLITE_ROW && step != SQLITE_DONE)
        rc = store_error(a->store, err, "reading clocks");
    sqlite3_reset(get);
    return rc;
}

/* Writes a->clock as the clocks of (t, pk); is_new: the row had none. */
static stm_err s_clock_write(applier_t *a, s_table *t, const op_value *pk, bool is_new,
                             stm_error *err)
{
    const char *table = catalog_table_name(t->def);
    buf_reset(&a->clock_bytes);
    rowclock_encode(&a->clock, &a->clock_bytes);
    if (pk->type == VALUE_INTEGER && t->top_known && !t->top_none && pk->i > t->top)
        t->top = pk->i;
    sqlite3_stmt *put = s_fixed(a, is_new ? Q_CLOCK_NEW : Q_CLOCK_PUT);
    if (!put)
        return store_error(a->store, err, "recording clocks");
    sqlite3_bind_text(put, 1, table, -1, SQLITE_STATIC);
    if (op_value_bind(put, 2, pk) != SQLITE_OK)
        return store_error(a->store, err, "recording clocks");
    sqlite3_bind_blob(put, 3, a->clock_bytes.data, (int)a->clock_bytes.len, SQLITE_STATIC);
    if (sqlite3_step(put) != SQLITE_DONE)
        return store_error(a->store, err, "recording clocks");
    return STM_OK;
}

/* True when the write (hlc, origin) is later than entry e (NULL: there is none). */
static stm_err s_later(applier_t *a, uint64_t hlc, const stm_id *origin, const rowclock_entry *e,
                       bool *later, stm_error *err)
{
    if (!e || hlc != e->hlc) {
        *later = !e || hlc > e->hlc;
        return STM_OK;
    }
    stm_id other;
    stm_err rc = store_id_of(a->store, e->origin, &other, err);
    if (rc == STM_OK)
        *later = op_clock_compare(hlc, origin, e->hlc, &other) > 0;
    return rc;
}

/* The later of two entries (either may be NULL). */
static const rowclock_entry *s_max_entry(applier_t *a, const rowclock_entry *x,
                                         const rowclock_entry *y, stm_error *err, stm_err *rc)
{
    if (!x || !y)
        return x ? x : y;
    stm_id origin;
    bool later = false;
    if ((*rc = store_id_of(a->store, x->origin, &origin, err)) == STM_OK)
        *rc = s_later(a, x->hlc, &origin, y, &later, err);
    return later ? x : y;
}

/* The latest write of any cell of the row in a->clock (written here, or parked for a
 * column this schema lacks). */
static const rowclock_entry *s_latest_write(applier_t *a, stm_error *err, stm_err *rc)
{
    const rowclock_entry *best = NULL;
    for (size_t i = 0; i < a->clock.count && *rc == STM_OK; i++)
        if (a->clock.entries[i].kind != ROWCLOCK_DELETE)
            best = s_max_entry(a, best, &a->clock.entries[i], err, rc);
    return best;
}

/* ---- writing rows ---- */

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

/* The value of the latest applied write to a column of the row in a->clock, for
 * bringing a deleted row back; held is where its operation is copied to. */
static stm_err s_cell_value(applier_t *a, const catalog_column *col, opbatch_t *held,
                            bool *found, stm_error *err)
{
    *found = false;
    const rowclock_entry *e = rowclock_find(&a->clock, ROWCLOCK_CELL, col->name);
    if (!e)
        return STM_OK;
    stm_id origin;
    stm_err rc = store_id_of(a->store, e->origin, &origin, err);
    if (rc == STM_OK)
        rc = oplog_fetch(a->log, &origin, e->seq, held, found, err);
    return rc;
}

/* Brings a row (back) into being: with the winning cells of this change and, when
 * the row was deleted before, the latest earlier value of every other column. */
static int s_insert_row(applier_t *a, const s_table *t, const op_value *pk, const s_cell *cells,
                        size_t ncells, bool deleted, char **refused, stm_error *err,
                        stm_err *rc)
{
    size_t ncols = catalog_table_count(t->def), nall = 0;
    s_cell *all = stm_calloc(ncols + 1, sizeof *all);
    opbatch_t *held = opbatch_new();
    for (size_t i = 0; i < ncells; i++)
        if (cells[i].col != t->key)
            all[nall++] = cells[i];
    size_t from = nall;
    for (size_t c = 0; deleted && c < ncols && *rc == STM_OK; c++) {
        const catalog_column *col = catalog_table_column(t->def, c);
        bool have = col == t->key || col->hidden;
        for (size_t i = 0; i < nall && !have; i++)
            have = all[i].col == col;
        bool found = false;
        if (!have)
            *rc = s_cell_value(a, col, held, &found, err);
        if (found) {
            all[nall].col = col;
            all[nall].position = s_position(t, col);
            nall++;
        }
    }
    int step = SQLITE_DONE;
    if (*rc == STM_OK) {
        /* The batch of earlier values has stopped growing: its operations stay put. */
        for (size_t i = from; i < nall; i++)
            all[i].value = opbatch_at(held, i - from)->value;
        qsort(all, nall, sizeof *all, s_by_position);
        step = s_run_row(a, t, ROW_INSERT, pk, all, nall, refused);
    }
    free(all);
    opbatch_destroy(&held);
    return step;
}

/* Applies one row change: n new operations of one origin and clock on one row, all
 * cell writes, recorded already. */
static stm_err s_apply_writes(applier_t *a, const op_t *const *ops, size_t n, apply_stats *st,
                              stm_error *err)
{
    const op_t *first = ops[0];
    s_table *t = s_find_table(a, first->table);
    if (!t)
        return s_park_all(a, ops, n, "table not in this database, or not synced here", st, err);
    if (first->pk.type == VALUE_NULL)
        return s_park_all(a, ops, n, "a row with a NULL primary key cannot be synced", st, err);
    bool have_clock = false;
    stm_err rc = s_row_clocks(a, t, &first->pk, &have_clock, err);
    if (rc != STM_OK)
        return rc;
    int64_t origin_no;
    if ((rc = store_id_number(a->store, &first->origin, true, &origin_no, err)) != STM_OK)
        return rc;
    if (n > a->scratch_cap) {
        size_t cap = a->scratch_cap;
        a->cells = stm_grow(a->cells, &cap, n, sizeof *a->cells);
        a->applied = stm_grow(a->applied, &a->scratch_cap, n, sizeof *a->applied);
    }
    s_cell *cells = a->cells;
    const op_t **applied = a->applied;
    memset(cells, 0, n * sizeof *cells);
    size_t ncells = 0, napplied = 0, nparked = 0;
    char *refused = NULL;

    for (size_t i = 0; i < n && rc == STM_OK; i++) {
        const op_t *op = ops[i];
        const catalog_column *col = catalog_table_find(t->def, op->column);
        if (!col || col->hidden || capture_affinity_code(col->affinity) != op->affinity) {
            char reason[160];
            if (!col || col->hidden)
                snprintf(reason, sizeof reason, "column not in this database");
            else
                snprintf(reason, sizeof reason, "type conflict: %s here, %c at the writer",
                         catalog_affinity_name(col->affinity), op->affinity);
            rc = s_park(a, op, PARK_SCHEMA, reason, st, err);
            nparked++;
            continue;
        }
        applied[napplied++] = op;
        bool later = false;
        rc = s_later(a, op->hlc, &op->origin, rowclock_find(&a->clock, ROWCLOCK_CELL, col->name),
                     &later, err);
        if (rc == STM_OK && later) {
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
    if (!have_clock && ncells) {
        /* A row never written here: most likely new, so insert it unless it is there
         * (a row from before stemma, which the change then updates). */
        step = s_run_row(a, t, ROW_ADD, &first->pk, cells, ncells, &refused);
        if (step == SQLITE_DONE && sqlite3_changes(a->db) > 0)
            goto written;
    }
    if (ncells && !refused && !s_fatal(step)) {
        step = s_run_row(a, t, ROW_UPDATE, &first->pk, cells, ncells, &refused);
        exists = step == SQLITE_DONE && sqlite3_changes(a->db) > 0;
    } else if (!refused && !s_fatal(step)) {
        step = s_run_row(a, t, ROW_EXISTS, &first->pk, NULL, 0, &refused);
        exists = step == SQLITE_ROW;
        if (step == SQLITE_ROW)
            step = SQLITE_DONE;
    }
    if (!exists && !refused && !s_fatal(step)) {
        const rowclock_entry *del = rowclock_find(&a->clock, ROWCLOCK_DELETE, NULL);
        bool later = false;
        rc = s_later(a, first->hlc, &first->origin, del, &later, err);
        if (rc == STM_OK && (napplied > 0 || del) && later)
            step = s_insert_row(a, t, &first->pk, cells, ncells, del != NULL, &refused, err, &rc);
    }
written:
    if (rc != STM_OK)
        goto done;
    if (s_fatal(step)) {
        rc = store_error(a->store, err, "writing a row");
        goto done;
    }
    for (size_t i = 0; i < napplied && rc == STM_OK; i++) {
        if (refused) {
            rc = s_park(a, applied[i], PARK_CONSTRAINT, refused, st, err);
        } else {
            st->applied++;
            a->any_applied = true;
        }
    }
    /* The clocks move only for what was written: the winning cells and, for a write
     * parked for a missing column, the row's entry for such writes. */
    bool moved = false;
    for (size_t i = 0; i < ncells && rc == STM_OK && !refused; i++) {
        rowclock_set(&a->clock, ROWCLOCK_CELL, cells[i].col->name, first->hlc, origin_no,
                     cells[i].seq);
        moved = true;
    }
    if (rc == STM_OK && nparked) {
        const rowclock_entry *e = rowclock_find(&a->clock, ROWCLOCK_PARKED, NULL);
        bool later = false;
        rc = s_later(a, first->hlc, &first->origin, e, &later, err);
        if (rc == STM_OK && later) {
            rowclock_set(&a->clock, ROWCLOCK_PARKED, NULL, first->hlc, origin_no, first->seq);
            moved = true;
        }
    }
    if (rc == STM_OK && moved)
        rc = s_clock_write(a, t, &first->pk, !have_clock, err);
done:
    free(refused);
    return rc;
}

/* Applies one new row delete, recorded already. */
static stm_err s_apply_delete(applier_t *a, const op_t *op, apply_stats *st, stm_error *err)
{
    s_table *t = s_find_table(a, op->table);
    if (!t)
        return s_park(a, op, PARK_SCHEMA, "table not in this database, or not synced here", st,
                      err);
    if (op->pk.type == VALUE_NULL)
        return s_park(a, op, PARK_SCHEMA, "a row with a NULL primary key cannot be synced", st,
                      err);
    bool have_clock;
    stm_err rc = s_row_clocks(a, t, &op->pk, &have_clock, err);
    int64_t origin_no = 0;
    if (rc == STM_OK)
        rc = store_id_number(a->store, &op->origin, true, &origin_no, err);
    const rowclock_entry *latest = rc == STM_OK ? s_latest_write(a, err, &rc) : NULL;
    bool later = false;
    if (rc == STM_OK)
        rc = s_later(a, op->hlc, &op->origin, latest, &later, err);
    if (rc != STM_OK)
        return rc;
    char *refused = NULL;
    if (later) {
        int step = s_run_row(a, t, ROW_DELETE, &op->pk, NULL, 0, &refused);
        if (s_fatal(step))
            return store_error(a->store, err, "deleting a row");
    }
    if (refused) {
        rc = s_park(a, op, PARK_CONSTRAINT, refused, st, err);
        free(refused);
        return rc;
    }
    st->applied++;
    a->any_applied = true;
    const rowclock_entry *del = rowclock_find(&a->clock, ROWCLOCK_DELETE, NULL);
    if ((rc = s_later(a, op->hlc, &op->origin, del, &later, err)) != STM_OK || !later)
        return rc;
    rowclock_set(&a->clock, ROWCLOCK_DELETE, NULL, op->hlc, origin_no, op->seq);
    return s_clock_write(a, t, &op->pk, !have_clock, err);
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

/* Keeps the operations of one row change ops[0..n) that are not held yet (moving them
 * to the front, *fresh of them) and records them, in runs of consecutive sequences. */
static stm_err s_take_new(applier_t *a, const op_t **ops, size_t n, size_t *fresh,
                          apply_stats *st, stm_error *err)
{
    *fresh = 0;
    s_origin *o;
    stm_err rc = s_origin_get(a, &ops[0]->origin, &o, err);
    uint64_t skip_to = 0;
    for (size_t i = 0; i < n && rc == STM_OK; i++) {
        bool held = ops[i]->seq <= skip_to;
        uint64_t end = 0;
        if (!held && (rc = s_held(a, o, ops[i]->seq, &held, &end, err)) != STM_OK)
            break;
        if (held) {
            st->present++;
            if (end > skip_to)
                skip_to = end;
            continue;
        }
        ops[(*fresh)++] = ops[i];
    }
    /* Duplicates within the batch itself are held once recorded, so the same
     * sequence twice in a row is dropped here. */
    size_t kept = 0;
    for (size_t i = 0; i < *fresh; i++) {
        if (kept && ops[kept - 1]->seq == ops[i]->seq) {
            st->present++;
            continue;
        }
        ops[kept++] = ops[i];
    }
    *fresh = kept;
    for (size_t i = 0; i < kept && rc == STM_OK;) {
        size_t j = i + 1;
        while (j < kept && ops[j]->seq == ops[j - 1]->seq + 1)
            j++;
        rc = s_record(a, o, ops + i, j - i, err);
        i = j;
    }
    return rc;
}

/* Applies ops (any order) inside the open transaction. */
static stm_err s_apply_ops(applier_t *a, const op_t **ops, size_t n, apply_stats *st,
                           stm_error *err)
{
    /* Batches from a reader (oplog.h) arrive in causal order already. */
    size_t sorted = 1;
    while (sorted < n && s_causal(&ops[sorted - 1], &ops[sorted]) <= 0)
        sorted++;
    if (sorted < n)
        qsort(ops, n, sizeof *ops, s_causal);
    stm_err rc = STM_OK;
    size_t i = 0;
    while (i < n && rc == STM_OK) {
        size_t j = i + 1;
        if (!op_is_delete(ops[i]))
            while (j < n && s_same_row_change(ops[i], ops[j]))
                j++;
        size_t fresh = j - i;
        if (!a->retrying)
            rc = s_take_new(a, ops + i, j - i, &fresh, st, err);
        if (rc == STM_OK && fresh)
            rc = op_is_delete(ops[i]) ? s_apply_delete(a, ops[i], st, err)
                                      : s_apply_writes(a, ops + i, fresh, st, err);
        i = j;
    }
    return rc;
}

/* Records local operations (capture_collect's), which are the latest writes of their
 * cells by construction: their clock is above every clock this database has seen. */
static stm_err s_record_local(applier_t *a, const opbatch_t *batch, stm_error *err)
{
    size_t n = opbatch_count(batch);
    if (!n)
        return STM_OK;
    s_origin *o;
    stm_err rc = s_origin_get(a, &a->node_id, &o, err);
    const op_t **ops = stm_calloc(n, sizeof *ops);
    for (size_t i = 0; i < n; i++)
        ops[i] = opbatch_at(batch, i);
    /* Local sequences were taken past o->held already: record them as the next. */
    o->held = ops[0]->seq - 1;
    int64_t origin_no = 0;
    for (size_t i = 0; i < n && rc == STM_OK;) {
        size_t j = i + 1;
        if (!op_is_delete(ops[i]))
            while (j < n && s_same_row_change(ops[i], ops[j]))
                j++;
        rc = s_record(a, o, ops + i, j - i, err);
        if (rc == STM_OK && !origin_no)
            rc = store_id_number(a->store, &a->node_id, false, &origin_no, err);
        s_table *t = rc == STM_OK ? s_find_table(a, ops[i]->table) : NULL;
        bool found = false;
        if (t)
            rc = s_row_clocks(a, t, &ops[i]->pk, &found, err);
        for (size_t k = i; k < j && t && rc == STM_OK; k++) {
            const catalog_column *col =
                ops[k]->column ? catalog_table_find(t->def, ops[k]->column) : NULL;
            if (op_is_delete(ops[k]))
                rowclock_set(&a->clock, ROWCLOCK_DELETE, NULL, ops[k]->hlc, origin_no,
                             ops[k]->seq);
            else if (col)
                rowclock_set(&a->clock, ROWCLOCK_CELL, col->name, ops[k]->hlc, origin_no,
                             ops[k]->seq);
        }
        if (t && rc == STM_OK)
            rc = s_clock_write(a, t, &ops[i]->pk, !found, err);
        i = j;
    }
    free(ops);
    return rc;
}

/* Turns the application's queued changes into operations and records them. */
static stm_err s_collect(applier_t *a, stm_error *err)
{
    opbatch_t *local = opbatch_new();
    stm_err rc = capture_collect(a->store, a->catalog, local, err);
    if (rc == STM_OK)
        rc = s_record_local(a, local, err);
    opbatch_destroy(&local);
    return rc;
}

/* Writes each touched origin's vector entry, moved up over what is now contiguous,
 * and keeps the local sequence above any operation of our own id received back. */
static stm_err s_update_vectors(applier_t *a, stm_error *err)
{
    stm_err rc = STM_OK;
    for (size_t i = 0; i < a->norigins && rc == STM_OK; i++) {
        s_origin *o = &a->origins[i];
        if (!o->touched)
            continue;
        if (stm_id_equal(&o->id, &a->node_id)) {
            sqlite3_stmt *set = s_fixed(a, Q_LOCAL_SEQ);
            if (!set)
                return store_error(a->store, err, "updating the local sequence");
            sqlite3_bind_int64(set, 1, (sqlite3_int64)o->top);
            if (sqlite3_step(set) != SQLITE_DONE)
                rc = store_error(a->store, err, "updating the local sequence");
            continue;
        }
        uint64_t seq = o->held;
        if (o->above && (rc = oplog_contiguous(a->log, o->no, o->held, &seq, err)) != STM_OK)
            break;
        sqlite3_stmt *set = s_fixed(a, Q_VECTOR_SET);
        if (!set)
            return store_error(a->store, err, "updating the version vector");
        sqlite3_bind_blob(set, 1, o->id.bytes, STM_ID_BYTES, SQLITE_STATIC);
        sqlite3_bind_int64(set, 2, (sqlite3_int64)seq);
        if (sqlite3_step(set) != SQLITE_DONE)
            rc = store_error(a->store, err, "updating the version vector");
    }
    return rc;
}

static void s_rollback(applier_t *a)
{
    sqlite3_exec(a->db, "ROLLBACK", NULL, NULL, NULL);
    /* Ids numbered in the transaction are gone with it. */
    store_forget_ids(a->store);
    a->norigins = 0;
}

/* What every transaction of the applier's begins with, inside it: the schema as it is
 * now, and the application's queued changes made operations. */
static stm_err s_start(applier_t *a, stm_error *err)
{
    a->max_hlc = 0;
    a->norigins = 0;
    stm_err rc = s_refresh_catalog(a, err);
    for (size_t i = 0; i < a->ntables; i++)
        a->tables[i].top_known = false;
    if (rc == STM_OK)
        rc = store_node_id(a->store, &a->node_id, err);
    if (rc == STM_OK)
        rc = s_collect(a, err);
    return rc;
}

/* Opens the batch's transaction with capture off. */
static stm_err s_begin(applier_t *a, stm_error *err)
{
    if (sqlite3_exec(a->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        return store_error(a->store, err, "starting a transaction");
    a->any_applied = false;
    stm_err rc = s_start(a, err);
    if (rc == STM_OK)
        rc = store_exec(a->store, "UPDATE stemma_local SET applying = 1 WHERE id = 1", err);
    if (rc != STM_OK)
        s_rollback(a);
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
            rc = store_error(a->store, err, "moving the clock");
        else {
            sqlite3_bind_int64(clock, 1, (sqlite3_int64)a->max_hlc);
            if (sqlite3_step(clock) != SQLITE_DONE)
                rc = store_error(a->store, err, "moving the clock");
        }
    }
    /* Rows written here are not the application's to collect. */
    if (rc == STM_OK)
        rc = capture_mark(a->store, a->catalog, err);
    if (rc == STM_OK && sqlite3_exec(a->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        rc = store_error(a->store, err, "committing");
    if (rc != STM_OK)
        s_rollback(a);
    a->norigins = 0;
    return rc;
}

/* Takes the parked operations (of one kind, or all) out of stemma_parked into batch:
 * the retry parks again those that still cannot apply. */
static stm_err s_take_parked(applier_t *a, const char *kind, opbatch_t *batch, stm_error *err)
{
    sqlite3_stmt *q = s_fixed(a, Q_PARKED_LIST);
    if (!q)
        return store_error(a->store, err, "reading parked operations");
    if (kind)
        sqlite3_bind_text(q, 1, kind, -1, SQLITE_STATIC);
    /* Collected first: fetching runs other statements on the same tables. */
    stm_id *origins = NULL;
    uint64_t *seqs = NULL;
    size_t n = 0, cap = 0, scap = 0;
    int step;
    while ((step = sqlite3_step(q)) == SQLITE_ROW) {
        if (sqlite3_column_bytes(q, 0) != STM_ID_BYTES)
            continue;
        origins = stm_grow(origins, &cap, n + 1, sizeof *origins);
        seqs = stm_grow(seqs, &scap, n + 1, sizeof *seqs);
        memcpy(origins[n].bytes, sqlite3_column_blob(q, 0), STM_ID_BYTES);
        seqs[n] = (uint64_t)sqlite3_column_int64(q, 1);
        n++;
    }
    sqlite3_reset(q);
    stm_err rc =
        step == SQLITE_DONE ? STM_OK : store_error(a->store, err, "reading parked operations");
    for (size_t i = 0; i < n && rc == STM_OK; i++) {
        bool found;
        rc = oplog_fetch(a->log, &origins[i], seqs[i], batch, &found, err);
    }
    free(origins);
    free(seqs);
    if (rc != STM_OK || !n)
        return rc;
    sqlite3_stmt *clear = s_fixed(a, Q_PARKED_CLEAR);
    if (!clear)
        return store_error(a->store, err, "retrying parked operations");
    if (kind)
        sqlite3_bind_text(clear, 1, kind, -1, SQLITE_STATIC);
    if (sqlite3_step(clear) != SQLITE_DONE)
        return store_error(a->store, err, "retrying parked operations");
    return STM_OK;
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
        /* Retried operations are not warned about a second time, nor recorded. */
        apply_warn_fn warn = a->warn;
        a->warn = NULL;
        a->retrying = true;
        rc = s_apply_ops(a, ops, n, &again, err);
        a->retrying = false;
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
        s_rollback(a);
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

stm_err applier_collect(applier_t *a, stm_error *err)
{
    stm_err rc = s_start(a, err);
    /* capture_collect moved the local sequence and clock already. */
    a->norigins = 0;
    if (rc != STM_OK)
        store_forget_ids(a->store);
    return rc;
}

stm_err applier_catch_up(applier_t *a, stm_error *err)
{
    stm_err rc = s_begin(a, err);
    if (rc != STM_OK)
        return rc;
    return s_commit(a, STM_OK, err);
}
