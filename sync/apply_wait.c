/* apply_wait.c - what an operation a constraint refused waits for: the wakes it is
 * parked with (park.h, invariant 4), from SQLite's refusal and the schema. Each is
 * something that must be written before the write can go through:
 *
 *   its own row      always: a later write to it may bring the cells NOT NULL or a
 *                    CHECK wants, or change what it compares. The only wake of a
 *                    refusal by NOT NULL, CHECK, a STRICT column's type or the key,
 *                    which look at the row alone.
 *   its table        a UNIQUE index other than the key that apply_unique.c leaves as
 *                    it is (an expression index, say): another row may free the value.
 *   a parent row     FOREIGN KEY (only when the connection enforces foreign keys:
 *                    SQLite's default, which stemma keeps, is not to): for each
 *                    foreign key of the table whose values the write brings and which
 *                    names its parent's key, the parent's row under those values; the
 *                    parent table when it names other columns or the values are not
 *                    the write's; and, for a delete or an update, each table whose
 *                    foreign keys name this one (a child that still refers to it).
 *   trigger tables   when the application has triggers on the table for that write,
 *                    whatever SQLite's code (a trigger's own writes fail with theirs):
 *                    every table they read or write, as SQLite's authorizer names them
 *                    while the statement is prepared. A trigger's rule may look
 *                    anywhere; its own table is among them (NEW.x reads as one).
 *   anything         a table named above that stemma does not sync (its rows change
 *                    without stemma writing them, so no write of stemma's can name
 *                    them), a trigger that calls a function whose value changes by
 *                    itself (the time, random()), a refusal of any other kind (a
 *                    function's, a virtual table's), or more wakes than
 *                    PARK_WAKES_MAX.
 *
 * What the schema says (foreign keys, triggers) is read once per table and kind of
 * write for each schema a transaction reads (stm_txn_epoch), not per refusal. */
#include "apply_internal.h"
#include "key.h"
#include "base/buf.h"
#include "base/mem.h"
#include "lineage/sqlscript.h"

#include <stdlib.h>
#include <stdio.h>
#include <string.h>

/* One foreign key of a table: its columns and what they name. */
typedef struct {
    char *parent; /* the parent table as the schema names it */
    size_t ncols;
    char **from; /* this table's columns */
    char **to;   /* the parent's columns; a NULL entry: its key's, in key order */
} s_fk;

/* Wakes being gathered: duplicates dropped, too many made "anything". */
typedef struct {
    park_wake w[PARK_WAKES_MAX];
    size_t n;
    bool any;
} s_set;

/* Writes other than deletes, and deletes: their triggers differ. */
enum { S_WRITE, S_DELETE, S_EVENTS };

/* What the schema says of one table, for one schema. */
typedef struct {
    char *name;                  /* the table's local name */
    bool probed[S_EVENTS];       /* its triggers were looked at */
    bool triggers[S_EVENTS];     /* the application has some for that write */
    s_set by_triggers[S_EVENTS]; /* the tables they read or write */
    bool fk_read;                /* fks and children were read */
    s_fk *fks;
    size_t nfks;
    s_set children; /* the tables whose foreign keys name it */
} s_table;

struct apply_waits {
    uint64_t epoch; /* the schema (stm_txn_epoch) tables describe */
    s_table *tables;
    size_t ntables, cap;
};

apply_waits *stm_apply_waits_new(void)
{
    return stm_calloc(1, sizeof(apply_waits));
}

static void s_forget(apply_waits *w)
{
    for (size_t i = 0; i < w->ntables; i++) {
        s_table *t = &w->tables[i];
        for (size_t f = 0; f < t->nfks; f++) {
            for (size_t c = 0; c < t->fks[f].ncols; c++) {
                free(t->fks[f].from[c]);
                free(t->fks[f].to[c]);
            }
            free(t->fks[f].from);
            free(t->fks[f].to);
            free(t->fks[f].parent);
        }
        free(t->fks);
        free(t->name);
    }
    w->ntables = 0;
}

void stm_apply_waits_destroy(apply_waits **self_p)
{
    apply_waits *w = *self_p;
    if (!w)
        return;
    s_forget(w);
    free(w->tables);
    free(w);
    *self_p = NULL;
}

static void s_add(s_set *set, park_wake wake)
{
    for (size_t i = 0; i < set->n; i++)
        if (set->w[i] == wake)
            return;
    if (set->n == PARK_WAKES_MAX)
        set->any = true;
    else
        set->w[set->n++] = wake;
}

static void s_add_all(s_set *set, const s_set *from)
{
    for (size_t i = 0; i < from->n; i++)
        s_add(set, from->w[i]);
    set->any |= from->any;
}

/* Any row of table: its table's wake when stemma syncs it (and so sees its writes),
 * else anything. */
static void s_add_table(applier_t *a, s_set *set, const char *table)
{
    if (stm_txn_table_find(a->txn, table))
        s_add(set, stm_park_wake_table(table));
    else
        set->any = true;
}

/* The entry for table t of the current schema, made on first use. */
static s_table *s_entry(applier_t *a, const txn_table *t)
{
    apply_waits *w = a->waits;
    if (w->epoch != stm_txn_epoch(a->txn)) {
        s_forget(w);
        w->epoch = stm_txn_epoch(a->txn);
    }
    const char *name = stm_catalog_table_name(stm_txn_table_def(t));
    for (size_t i = 0; i < w->ntables; i++)
        if (strcmp(w->tables[i].name, name) == 0)
            return &w->tables[i];
    w->tables = stm_grow(w->tables, &w->cap, w->ntables + 1, sizeof *w->tables);
    s_table *e = &w->tables[w->ntables++];
    memset(e, 0, sizeof *e);
    e->name = stm_strdup(name);
    return e;
}

/* ---- triggers ---- */

typedef struct {
    applier_t *a;
    s_set *set;
    bool triggers;
} s_probe;

static bool s_prefixed(const char *name, const char *prefix)
{
    return sqlite3_strnicmp(name, prefix, (int)strlen(prefix)) == 0;
}

/* SQLite's functions whose value changes with nothing written: the time, chance, the
 * connection's counters. A rule that calls one may let a row through on its own. */
static const char *const s_unsteady[] = {
    "date",   "time",       "datetime", "julianday",     "strftime",          "unixepoch",
    "random", "randomblob", "changes",  "total_changes", "last_insert_rowid", "timediff",
};

/* The authorizer while a probe is prepared: every table a trigger of the application
 * reads or writes, and whether it calls a function of s_unsteady (then it waits for
 * anything). stemma's own capture triggers, stemma_*, are not the application's, and
 * read stemma's tables only. */
static int s_authorize(void *ctx, int action, const char *x, const char *y, const char *db,
                       const char *trigger)
{
    (void)db;
    s_probe *pr = ctx;
    if (!trigger || s_prefixed(trigger, "stemma_"))
        return SQLITE_OK;
    pr->triggers = true;
    if (action == SQLITE_FUNCTION) {
        for (size_t i = 0; y && i < sizeof s_unsteady / sizeof s_unsteady[0]; i++)
            if (sqlite3_stricmp(y, s_unsteady[i]) == 0)
                pr->set->any = true;
        return SQLITE_OK;
    }
    if (action != SQLITE_READ && action != SQLITE_INSERT && action != SQLITE_UPDATE &&
        action != SQLITE_DELETE)
        return SQLITE_OK;
    if (x && *x && !s_prefixed(x, "sqlite_") && !s_prefixed(x, "stemma_"))
        s_add_table(pr->a, pr->set, x);
    return SQLITE_OK;
}

/* Prepares sql (never run) with the authorizer watching; false when SQLite refuses it. */
static bool s_probe_sql(applier_t *a, s_probe *pr, const char *sql)
{
    sqlite3_stmt *stmt = NULL;
    /* Setting an authorizer expires the connection's prepared statements; they are
     * prepared again when next run, once per table and kind of write a schema. */
    sqlite3_set_authorizer(a->db, s_authorize, pr);
    int rc = sqlite3_prepare_v2(a->db, sql, -1, &stmt, NULL);
    sqlite3_set_authorizer(a->db, NULL, NULL);
    sqlite3_finalize(stmt);
    return rc == SQLITE_OK;
}

/* Looks at the application's triggers on t for a write or a delete. */
static void s_probe_triggers(applier_t *a, const txn_table *t, s_table *e, int event)
{
    e->probed[event] = true;
    const catalog_table *def = stm_txn_table_def(t);
    s_probe pr = {.a = a, .set = &e->by_triggers[event]};
    buf_t sql = BUF_INIT;
    bool ok = true;
    if (event == S_DELETE) {
        stm_buf_puts(&sql, "DELETE FROM ");
        stm_sqlscript_quote_ident(&sql, stm_catalog_table_name(def));
        ok = s_probe_sql(a, &pr, stm_buf_str(&sql));
    } else {
        /* Inserts, and updates of every column: ROW_ADD, ROW_INSERT and ROW_UPDATE. */
        stm_buf_puts(&sql, "INSERT INTO ");
        stm_sqlscript_quote_ident(&sql, stm_catalog_table_name(def));
        stm_buf_puts(&sql, " DEFAULT VALUES");
        ok = s_probe_sql(a, &pr, stm_buf_str(&sql));
        stm_buf_reset(&sql);
        stm_buf_puts(&sql, "UPDATE ");
        stm_sqlscript_quote_ident(&sql, stm_catalog_table_name(def));
        stm_buf_puts(&sql, " SET ");
        size_t set = 0;
        for (size_t c = 0; c < stm_catalog_table_count(def); c++) {
            const catalog_column *col = stm_catalog_table_column(def, c);
            if (col->hidden)
                continue;
            if (set++)
                stm_buf_puts(&sql, ", ");
            stm_sqlscript_quote_ident(&sql, col->name);
            stm_buf_puts(&sql, " = ");
            stm_sqlscript_quote_ident(&sql, col->name);
        }
        ok = s_probe_sql(a, &pr, stm_buf_str(&sql)) && ok;
    }
    stm_buf_free(&sql);
    e->triggers[event] = pr.triggers || !ok;
    if (!ok) /* what the statement would run is not known */
        e->by_triggers[event].any = true;
}

/* ---- foreign keys ---- */

/* Reads t's foreign keys and the tables whose foreign keys name t. */
static stm_err s_read_fks(applier_t *a, const txn_table *t, s_table *e, stm_error *err)
{
    e->fk_read = true;
    const char *name = stm_catalog_table_name(stm_txn_table_def(t));
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(
            a->db,
            "SELECT id, \"table\", \"from\", \"to\" FROM pragma_foreign_key_list(?1) "
            "ORDER BY id, seq",
            -1, &q, NULL) != SQLITE_OK)
        return stm_store_error(a->store, err, "reading the foreign keys");
    sqlite3_bind_text(q, 1, name, -1, SQLITE_STATIC);
    int step, last = -1;
    size_t cap = 0, ccap = 0, tcap = 0;
    while ((step = sqlite3_step(q)) == SQLITE_ROW) {
        int id = sqlite3_column_int(q, 0);
        const char *parent = (const char *)sqlite3_column_text(q, 1);
        const char *from = (const char *)sqlite3_column_text(q, 2);
        const char *to = (const char *)sqlite3_column_text(q, 3);
        if (id != last || !e->nfks) {
            e->fks = stm_grow(e->fks, &cap, e->nfks + 1, sizeof *e->fks);
            memset(&e->fks[e->nfks++], 0, sizeof *e->fks);
            e->fks[e->nfks - 1].parent = stm_strdup(parent ? parent : "");
            ccap = tcap = 0;
            last = id;
        }
        s_fk *fk = &e->fks[e->nfks - 1];
        fk->from = stm_grow(fk->from, &ccap, fk->ncols + 1, sizeof *fk->from);
        fk->to = stm_grow(fk->to, &tcap, fk->ncols + 1, sizeof *fk->to);
        fk->from[fk->ncols] = stm_strdup(from ? from : "");
        fk->to[fk->ncols] = to ? stm_strdup(to) : NULL;
        fk->ncols++;
    }
    sqlite3_finalize(q);
    if (step != SQLITE_DONE)
        return stm_store_error(a->store, err, "reading the foreign keys");
    if (sqlite3_prepare_v2(a->db,
                           "SELECT DISTINCT m.name FROM sqlite_schema AS m, "
                           "pragma_foreign_key_list(m.name) AS f WHERE m.type = 'table' AND "
                           "f.\"table\" = ?1 COLLATE NOCASE",
                           -1, &q, NULL) != SQLITE_OK)
        return stm_store_error(a->store, err, "reading the foreign keys");
    sqlite3_bind_text(q, 1, name, -1, SQLITE_STATIC);
    while ((step = sqlite3_step(q)) == SQLITE_ROW)
        s_add_table(a, &e->children, (const char *)sqlite3_column_text(q, 0));
    sqlite3_finalize(q);
    return step == SQLITE_DONE ? STM_OK
                               : stm_store_error(a->store, err, "reading the foreign keys");
}

/* The value the write gives column name of t: a cell's, else a key column's from pk;
 * false when it gives none. */
static bool s_value(const txn_table *t, const op_value *pk, const row_cell *cells, size_t ncells,
                    const char *name, op_value *out)
{
    for (size_t i = 0; i < ncells; i++)
        if (sqlite3_stricmp(cells[i].col->name, name) == 0) {
            *out = cells[i].value;
            return true;
        }
    const catalog_table *def = stm_txn_table_def(t);
    op_value parts[KEY_MAX_COLUMNS];
    size_t n = 0;
    if (!stm_key_values(pk, parts, KEY_MAX_COLUMNS, &n) || n > KEY_MAX_COLUMNS)
        return false;
    for (size_t k = 0; k < n; k++) {
        const catalog_column *c = stm_catalog_table_key(def, k);
        if (c && sqlite3_stricmp(c->name, name) == 0) {
            *out = parts[k];
            return true;
        }
    }
    return false;
}

/* The parent row (or table) one foreign key of a refused write of t wants. */
static void s_add_parent(applier_t *a, s_set *set, const txn_table *t, const s_fk *fk,
                         const op_value *pk, const row_cell *cells, size_t ncells)
{
    txn_table *parent = stm_txn_table_find(a->txn, fk->parent);
    if (!parent) {
        set->any = true; /* stemma does not see its rows written */
        return;
    }
    const catalog_table *pdef = stm_txn_table_def(parent);
    size_t nkey = stm_txn_table_keys(parent);
    op_value ordered[KEY_MAX_COLUMNS];
    bool by_key = fk->ncols == nkey && nkey <= KEY_MAX_COLUMNS;
    for (size_t k = 0; k < nkey && by_key; k++) {
        const catalog_column *kc = stm_catalog_table_key(pdef, k);
        size_t i = 0;
        /* Columns named in any order; none named: the key's, in key order. */
        while (i < fk->ncols && !(fk->to[i] ? sqlite3_stricmp(fk->to[i], kc->name) == 0 : i == k))
            i++;
        op_value v;
        if (i == fk->ncols || !s_value(t, pk, cells, ncells, fk->from[i], &v)) {
            by_key = false;
            break;
        }
        if (v.type == VALUE_NULL)
            return; /* a foreign key with a NULL in it holds whatever the parent has */
        ordered[k] = v;
    }
    const char *pname = stm_catalog_table_name(pdef);
    s_add(set, by_key ? stm_park_wake_row(pname, ordered, nkey) : stm_park_wake_table(pname));
}

/* ---- the wakes of a refusal ---- */

stm_err stm_apply_wakes(applier_t *a, txn_table *t, const op_value *pk, row_kind kind, int code,
                        const row_cell *cells, size_t ncells, park_wake *wakes, size_t *n,
                        stm_error *err)
{
    const char *name = stm_catalog_table_name(stm_txn_table_def(t));
    s_set set = {.n = 0};
    s_add(&set, stm_park_wake_key(name, pk));
    s_table *e = s_entry(a, t);
    int event = kind == ROW_DELETE ? S_DELETE : S_WRITE;
    if (!e->probed[event])
        s_probe_triggers(a, t, e, event);
    if (e->triggers[event])
        s_add_all(&set, &e->by_triggers[event]);
    stm_err rc = STM_OK;
    switch (code) {
    case SQLITE_CONSTRAINT_NOTNULL:
    case SQLITE_CONSTRAINT_CHECK:
    case SQLITE_CONSTRAINT_DATATYPE:
    case SQLITE_CONSTRAINT_PRIMARYKEY:
    case SQLITE_CONSTRAINT_ROWID:
        break; /* the row alone */
    case SQLITE_CONSTRAINT_UNIQUE:
        s_add(&set, stm_park_wake_table(name));
        break;
    case SQLITE_CONSTRAINT_FOREIGNKEY:
        if (!e->fk_read)
            rc = s_read_fks(a, t, e, err);
        for (size_t f = 0; f < e->nfks && rc == STM_OK && kind != ROW_DELETE; f++)
            s_add_parent(a, &set, t, &e->fks[f], pk, cells, ncells);
        if (kind == ROW_DELETE || kind == ROW_UPDATE)
            s_add_all(&set, &e->children);
        break;
    case SQLITE_CONSTRAINT_TRIGGER:
        /* A trigger's RAISE: its tables, added above (none probed: anything). */
        if (!e->triggers[event])
            set.any = true;
        break;
    default:
        set.any = true;
        break;
    }
    if (rc != STM_OK)
        return rc;
    if (set.any) {
        /* Its own row still first: it is what most often frees it. */
        set.n = set.n < PARK_WAKES_MAX ? set.n : PARK_WAKES_MAX - 1;
        s_add(&set, PARK_WAKE_ANY);
    }
    memcpy(wakes, set.w, set.n * sizeof *wakes);
    *n = set.n;
    return STM_OK;
}

stm_err stm_apply_park_refused(applier_t *a, txn_table *t, const op_t *const *ops, size_t n,
                               row_kind kind, int code, const char *refused, const row_cell *cells,
                               size_t ncells, apply_stats *st, stm_error *err)
{
    park_wake wakes[PARK_WAKES_MAX];
    size_t nwakes = 0;
    stm_err rc = stm_apply_wakes(a, t, &ops[0]->pk, kind, code, cells, ncells, wakes, &nwakes, err);
    /* A NOT NULL column a migration made after the writer's version: the reason says
     * which, and what brings the row (migrate_ops.h sends it whole). */
    static const char nn[] = "NOT NULL constraint failed: ";
    char why[512];
    const char *dot = strncmp(refused, nn, sizeof nn - 1) == 0 ? strrchr(refused, '.') : NULL;
    int writer = 0, made = 0;
    if (dot && (size_t)(dot - refused) - (sizeof nn - 1) < 256) {
        char table[256];
        size_t len = (size_t)(dot - refused) - (sizeof nn - 1);
        memcpy(table, refused + sizeof nn - 1, len);
        table[len] = '\0';
        made = stm_apply_made_by(a, &ops[0]->version_id, table, dot + 1, &writer);
    }
    if (made) {
        snprintf(why, sizeof why,
                 "%s (made by migration %d, which its writer at version %d had not run: the "
                 "row comes whole once the writer migrates)",
                 refused, made, writer);
        refused = why;
    }
    for (size_t i = 0; i < n && rc == STM_OK; i++) {
        st->parked++;
        rc = stm_park_op_waiting(a->park, ops[i], refused, wakes, nwakes, err);
    }
    return rc;
}
