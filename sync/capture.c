/* capture.c - the capture triggers, the marks and the exclude list (capture.h);
 * capture_collect.c turns what the triggers queue into operations. */
#include "capture.h"
#include "capture_internal.h"
#include "base/buf.h"
#include "base/mem.h"
#include "lineage/sqlscript.h"
#include "lineage/syncable.h"

#include <stdlib.h>
#include <string.h>

static const char *const s_guard = "(SELECT applying FROM stemma_local WHERE id = 1) = 0";

/* The wall time in SQL: milliseconds since 1970 (SQLite keeps 'now' in whole
 * milliseconds, fixed within one statement; unixepoch('subsec') needs 3.42). */
#define S_NOW_MS "CAST(round((julianday('now') - 2440587.5) * 86400000) AS INTEGER)"

char stm_capture_affinity_code(catalog_affinity a)
{
    switch (a) {
    case AFFINITY_TEXT:
        return 'T';
    case AFFINITY_NUMERIC:
        return 'N';
    case AFFINITY_INTEGER:
        return 'I';
    case AFFINITY_REAL:
        return 'R';
    case AFFINITY_BLOB:
        return 'B';
    }
    return 'B';
}

/* Appends s as an SQL string literal. */
static void s_literal(buf_t *b, const char *s)
{
    stm_buf_putc(b, '\'');
    for (const char *p = s; *p; p++) {
        if (*p == '\'')
            stm_buf_putc(b, '\'');
        stm_buf_putc(b, *p);
    }
    stm_buf_putc(b, '\'');
}

/* Appends "ROW.column" (ROW is NEW or OLD). */
static void s_ref(buf_t *b, const char *row, const char *column)
{
    /* puts, not printf: install writes every table's triggers at every step. */
    stm_buf_puts(b, row);
    stm_buf_putc(b, '.');
    stm_sqlscript_quote_ident(b, column);
}

/* The columns a trigger records: all but generated ones. */
bool stm_capture_captured(const catalog_column *c)
{
    return c->hidden == 0;
}

int stm_capture_captured_count(const catalog_table *t)
{
    int n = 0;
    for (size_t i = 0; i < stm_catalog_table_count(t); i++)
        n += stm_capture_captured(stm_catalog_table_column(t, i));
    return n;
}

/* "CREATE TRIGGER stemma_KIND_TABLE AFTER EVENT ON TABLE WHEN guard [AND extra] BEGIN" */
static void s_trigger_head(buf_t *b, const char *kind, const char *event, const char *table,
                           const char *extra)
{
    buf_t name = BUF_INIT;
    stm_buf_puts(&name, "stemma_");
    stm_buf_puts(&name, kind);
    stm_buf_putc(&name, '_');
    stm_buf_puts(&name, table);
    stm_buf_puts(b, "CREATE TRIGGER ");
    stm_sqlscript_quote_ident(b, stm_buf_str(&name));
    stm_buf_puts(b, " AFTER ");
    stm_buf_puts(b, event);
    stm_buf_puts(b, " ON ");
    stm_sqlscript_quote_ident(b, table);
    stm_buf_puts(b, "\nWHEN ");
    stm_buf_puts(b, s_guard);
    if (extra) {
        stm_buf_puts(b, " AND ");
        stm_buf_puts(b, extra);
    }
    stm_buf_puts(b, "\nBEGIN\n");
    stm_buf_free(&name);
}

/* Appends the statement queueing one row: its key (ROW.k1, ROW.k2, ...), del, the mask
 * (SQL text) and the time; when only_if is not NULL, only if that SQL condition holds. */
static void s_queue(buf_t *b, const catalog_table *t, const char *row, int del, const char *mask,
                    const char *only_if)
{
    size_t keys = stm_catalog_table_key_count(t);
    stm_buf_puts(b, "  INSERT INTO stemma_pending (tbl, pk");
    for (size_t k = 1; k < keys; k++)
        stm_buf_printf(b, ", pk%zu", k + 1);
    stm_buf_puts(b, ", del, mask, at) SELECT ");
    s_literal(b, stm_catalog_table_name(t));
    for (size_t k = 0; k < keys; k++) {
        stm_buf_puts(b, ", ");
        s_ref(b, row, stm_catalog_table_key(t, k)->name);
    }
    stm_buf_printf(b, ", %d, %s, " S_NOW_MS "%s%s;\n", del, mask, only_if ? " WHERE " : "",
                   only_if ? only_if : "");
}

/* "(OLD.k1 IS NEW.k1 AND OLD.k2 IS NEW.k2 ...)": the row kept its key. */
static void s_same_key_expr(buf_t *b, const catalog_table *t)
{
    stm_buf_putc(b, '(');
    for (size_t k = 0; k < stm_catalog_table_key_count(t); k++) {
        if (k)
            stm_buf_puts(b, " AND ");
        s_ref(b, "OLD", stm_catalog_table_key(t, k)->name);
        stm_buf_puts(b, " IS ");
        s_ref(b, "NEW", stm_catalog_table_key(t, k)->name);
        /* The same row as the key compares ('Ann' and 'ann' under NOCASE): a new
         * spelling is an update of the key's cell, not a new row. */
        stm_key_collate_sql(b, stm_catalog_table_key(t, k));
    }
    stm_buf_putc(b, ')');
}

/* "OLD.c IS NOT NEW.c COLLATE BINARY": the value changed, byte for byte. Under the
 * column's own collation ('Bob' and 'bob' are equal under NOCASE) a new spelling
 * would not be captured, and replicas would keep different ones for good. */
static void s_differs(buf_t *b, const char *column)
{
    s_ref(b, "OLD", column);
    stm_buf_puts(b, " IS NOT ");
    s_ref(b, "NEW", column);
    stm_buf_puts(b, " COLLATE BINARY");
}

/* The changed-columns mask of an UPDATE (capture.h): an integer with bit i set when
 * captured column i changed, or for wide tables a text of '0' and '1'. */
static void s_mask_expr(buf_t *b, const catalog_table *t)
{
    bool wide = stm_capture_captured_count(t) > CAPTURE_MASK_BITS;
    int n = 0;
    for (size_t i = 0; i < stm_catalog_table_count(t); i++) {
        const catalog_column *c = stm_catalog_table_column(t, i);
        if (!stm_capture_captured(c))
            continue;
        if (n)
            stm_buf_puts(b, wide ? " || " : " | ");
        /* <<, & and | share one precedence in SQLite: every term in parentheses. */
        stm_buf_puts(b, "((");
        s_differs(b, c->name);
        stm_buf_printf(b, ") << %d)", wide ? 0 : n);
        n++;
    }
}

/* "(OLD.a IS NOT NEW.a) OR (OLD.b IS NOT NEW.b) ...": some column changed. */
static void s_changed_expr(buf_t *b, const catalog_table *t)
{
    int n = 0;
    for (size_t i = 0; i < stm_catalog_table_count(t); i++) {
        const catalog_column *c = stm_catalog_table_column(t, i);
        if (!stm_capture_captured(c))
            continue;
        if (n++)
            stm_buf_puts(b, " OR ");
        stm_buf_putc(b, '(');
        s_differs(b, c->name);
        stm_buf_putc(b, ')');
    }
}

/* True when t's inserts are found by their key (stemma_mark) rather than queued: its
 * key is one column of INTEGER affinity, so new keys usually come above the greatest. */
static bool s_marked(const catalog_table *t)
{
    return stm_catalog_table_key_count(t) == 1 &&
           stm_catalog_table_key(t, 0)->affinity == AFFINITY_INTEGER;
}

/* The four triggers of a table, in this order. */
enum { S_INS, S_UPD, S_REKEY, S_DEL, S_KINDS };

/* The four triggers of one synced table, one CREATE TRIGGER statement each (without a
 * semicolon: as sqlite_schema.sql keeps it), in out[S_INS .. S_DEL]; mark_id is its
 * stemma_mark row, or 0. */
static void s_table_triggers(buf_t out[S_KINDS], const catalog_table *t, int64_t mark_id)
{
    buf_t *b = &out[S_INS];
    const char *table = stm_catalog_table_name(t);
    const char *key = stm_catalog_table_key(t, 0)->name; /* the mark's, when marked */
    buf_t tmp = BUF_INIT, mask = BUF_INIT;

    /* An insert above the mark is found by the next collection: the trigger only
     * compares (it is the application's write the trigger slows), with the gate, which
     * is the mark once the first insert above it since it last moved has written its
     * time on the mark row, and the greatest integer until then (capture.h). */
    if (mark_id) {
        buf_t above = BUF_INIT;
        s_ref(&above, "NEW", key);
        stm_buf_printf(&above, " <= (SELECT mark FROM stemma_mark WHERE id = %lld)",
                       (long long)mark_id);
        s_ref(&tmp, "NEW", key);
        stm_buf_printf(&tmp, " <= (SELECT gate FROM stemma_mark WHERE id = %lld)",
                       (long long)mark_id);
        s_trigger_head(b, "ins", "INSERT", table, stm_buf_str(&tmp));
        s_queue(b, t, "NEW", 0, "-1", stm_buf_str(&above));
        stm_buf_printf(b,
                       "  UPDATE stemma_mark SET at = " S_NOW_MS ", gate = mark"
                       " WHERE id = %lld AND at IS NULL AND ",
                       (long long)mark_id);
        s_ref(b, "NEW", key);
        stm_buf_puts(b, " > mark;\n");
        stm_buf_free(&above);
    } else {
        s_trigger_head(b, "ins", "INSERT", table, NULL);
        s_queue(b, t, "NEW", 0, "-1", NULL);
    }
    stm_buf_puts(b, "END");
    stm_buf_reset(&tmp);

    /* UPDATE keeping the key and changing some value. */
    b = &out[S_UPD];
    s_same_key_expr(&tmp, t);
    stm_buf_puts(&tmp, " AND (");
    s_changed_expr(&tmp, t);
    stm_buf_puts(&tmp, ")");
    s_trigger_head(b, "upd", "UPDATE", table, stm_buf_str(&tmp));
    s_mask_expr(&mask, t);
    s_queue(b, t, "NEW", 0, stm_buf_str(&mask), NULL);
    stm_buf_puts(b, "END");

    /* UPDATE changing the key: the old row is gone, the new one is new. */
    b = &out[S_REKEY];
    stm_buf_reset(&tmp);
    stm_buf_puts(&tmp, "NOT ");
    s_same_key_expr(&tmp, t);
    s_trigger_head(b, "rekey", "UPDATE", table, stm_buf_str(&tmp));
    s_queue(b, t, "OLD", 1, "0", NULL);
    s_queue(b, t, "NEW", 0, "-1", NULL);
    stm_buf_puts(b, "END");

    b = &out[S_DEL];
    s_trigger_head(b, "del", "DELETE", table, NULL);
    s_queue(b, t, "OLD", 1, "0", NULL);
    stm_buf_puts(b, "END");

    stm_buf_free(&tmp);
    stm_buf_free(&mask);
}

/* A name and what goes with it: a trigger's text, or a table's stemma_mark row. */
typedef struct {
    char *name;  /* the trigger's or the table's name */
    char *sql;   /* the trigger's text as sqlite_schema keeps it; NULL for a mark */
    int64_t id;  /* the mark's row; 0 for a trigger */
    bool wanted; /* a trigger install keeps as it is */
} s_named;

typedef struct {
    s_named *items; /* sorted by name (triggers: ASCII case folded, as SQLite compares them) */
    size_t count, cap;
} s_names;

static int s_cmp_nocase(const void *a, const void *b)
{
    return sqlite3_stricmp(((const s_named *)a)->name, ((const s_named *)b)->name);
}

static int s_cmp_exact(const void *a, const void *b)
{
    return strcmp(((const s_named *)a)->name, ((const s_named *)b)->name);
}

static void s_names_free(s_names *n)
{
    for (size_t i = 0; i < n->count; i++) {
        free(n->items[i].name);
        free(n->items[i].sql);
    }
    free(n->items);
    memset(n, 0, sizeof *n);
}

/* Reads the rows of sql (name, then the trigger's text or the mark's id) into n, sorted. */
static stm_err s_names_read(store_t *store, const char *sql, bool trigger, s_names *n,
                            stm_error *err)
{
    sqlite3_stmt *stmt = NULL;
    if (sqlite3_prepare_v2(stm_store_db(store), sql, -1, &stmt, NULL) != SQLITE_OK)
        return stm_store_error(store, err, trigger ? "listing triggers" : "reading stemma_mark");
    int step;
    while ((step = sqlite3_step(stmt)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(stmt, 0);
        const char *text = (const char *)sqlite3_column_text(stmt, 1);
        if (!name || (trigger && !text))
            continue;
        n->items = stm_grow(n->items, &n->cap, n->count + 1, sizeof *n->items);
        n->items[n->count++] = (s_named){stm_strdup(name), trigger ? stm_strdup(text) : NULL,
                                         trigger ? 0 : sqlite3_column_int64(stmt, 1), false};
    }
    sqlite3_finalize(stmt);
    if (step != SQLITE_DONE)
        return stm_store_error(store, err, trigger ? "listing triggers" : "reading stemma_mark");
    if (n->count)
        qsort(n->items, n->count, sizeof *n->items, trigger ? s_cmp_nocase : s_cmp_exact);
    return STM_OK;
}

static s_named *s_names_find(const s_names *n, const char *name, bool trigger)
{
    s_named key = {.name = (char *)name};
    return n->count ? bsearch(&key, n->items, n->count, sizeof *n->items,
                              trigger ? s_cmp_nocase : s_cmp_exact)
                    : NULL;
}

/* Capture's triggers: stemma's on any other table than its own (those on stemma_*
 * tables keep its counters, store.h). */
#define S_CAPTURE_TRIGGERS                                                                         \
    "type = 'trigger' AND name LIKE 'stemma\\_%' ESCAPE '\\' AND tbl_name NOT LIKE "               \
    "'stemma\\_%' ESCAPE '\\'"

static const char *const s_list_triggers =
    "SELECT name, sql FROM sqlite_schema WHERE " S_CAPTURE_TRIGGERS;

/* Drops the capture triggers on the n tables named (any case), or on every table
 * when tables is NULL. */
static stm_err s_drop_triggers(store_t *store, const char *const *tables, size_t n, stm_error *err)
{
    sqlite3_stmt *stmt = NULL;
    if (sqlite3_prepare_v2(stm_store_db(store),
                           "SELECT name, tbl_name FROM sqlite_schema WHERE " S_CAPTURE_TRIGGERS, -1,
                           &stmt, NULL) != SQLITE_OK)
        return stm_store_error(store, err, "listing triggers");
    buf_t sql = BUF_INIT;
    int step;
    while ((step = sqlite3_step(stmt)) == SQLITE_ROW) {
        const char *on = (const char *)sqlite3_column_text(stmt, 1);
        bool named = tables == NULL;
        for (size_t i = 0; on && !named && i < n; i++)
            named = sqlite3_stricmp(on, tables[i]) == 0;
        if (!named)
            continue;
        stm_buf_puts(&sql, "DROP TRIGGER ");
        stm_sqlscript_quote_ident(&sql, (const char *)sqlite3_column_text(stmt, 0));
        stm_buf_puts(&sql, ";\n");
    }
    sqlite3_finalize(stmt);
    stm_err rc = step == SQLITE_DONE ? STM_OK : stm_store_error(store, err, "listing triggers");
    if (rc == STM_OK && sql.len)
        rc = stm_store_exec(store, stm_buf_str(&sql), err);
    stm_buf_free(&sql);
    return rc;
}

stm_err stm_capture_uninstall(store_t *store, stm_error *err)
{
    return s_drop_triggers(store, NULL, 0, err);
}

stm_err stm_capture_uninstall_tables(store_t *store, const char *const *tables, size_t n,
                                     stm_error *err)
{
    return n ? s_drop_triggers(store, tables, n, err) : STM_OK;
}

/* True when tbl is in stemma_exclude. */
static bool s_is_excluded(sqlite3_stmt *lookup, const char *tbl)
{
    sqlite3_reset(lookup);
    sqlite3_bind_text(lookup, 1, tbl, -1, SQLITE_STATIC);
    return sqlite3_step(lookup) == SQLITE_ROW;
}

/* Gives stemma_pending the columns pk2 .. pkN a key of n columns is queued in. */
static stm_err s_pending_key_columns(store_t *store, size_t n, stm_error *err)
{
    size_t have = stm_capture_pending_key_columns(store);
    if (have == 0)
        return stm_store_error(store, err, "reading stemma_pending's columns");
    buf_t sql = BUF_INIT;
    for (size_t k = have + 1; k <= n; k++)
        stm_buf_printf(&sql, "ALTER TABLE stemma_pending ADD COLUMN pk%zu;\n", k);
    stm_err rc = sql.len ? stm_store_exec(store, stm_buf_str(&sql), err) : STM_OK;
    stm_buf_free(&sql);
    return rc;
}

size_t stm_capture_pending_key_columns(store_t *store)
{
    sqlite3_stmt *stmt = NULL;
    if (sqlite3_prepare_v2(stm_store_db(store),
                           "SELECT count(*) FROM pragma_table_info('stemma_pending') "
                           "WHERE name = 'pk' OR name GLOB 'pk[0-9]*'",
                           -1, &stmt, NULL) != SQLITE_OK)
        return 0;
    size_t n = sqlite3_step(stmt) == SQLITE_ROW ? (size_t)sqlite3_column_int64(stmt, 0) : 0;
    sqlite3_finalize(stmt);
    return n;
}

/* Runs one statement on table with ?1 bound to it: a write to stemma_mark. */
static stm_err s_mark_exec(store_t *store, const char *sql, const char *table, stm_error *err)
{
    sqlite3_stmt *stmt = NULL;
    if (sqlite3_prepare_v2(stm_store_db(store), sql, -1, &stmt, NULL) != SQLITE_OK)
        return stm_store_error(store, err, "writing stemma_mark");
    sqlite3_bind_text(stmt, 1, table, -1, SQLITE_STATIC);
    int step = sqlite3_step(stmt);
    sqlite3_finalize(stmt);
    return step == SQLITE_DONE ? STM_OK : stm_store_error(store, err, "writing stemma_mark");
}

/* The stemma_mark row of table, added when missing (marks holds the rows there). */
static stm_err s_mark_row(store_t *store, const s_names *marks, const char *table, int64_t *id,
                          stm_error *err)
{
    const s_named *m = s_names_find(marks, table, false);
    if (m) {
        *id = m->id;
        return STM_OK;
    }
    stm_err rc = s_mark_exec(store,
                             "INSERT INTO stemma_mark (tbl, mark, gate) "
                             "VALUES (?1, -9223372036854775808, 9223372036854775807)",
                             table, err);
    *id = sqlite3_last_insert_rowid(stm_store_db(store));
    return rc;
}

/* Decides the triggers of one table of the schema: those already there with the text
 * install would give them are kept (wanted); the others are appended to create. Its
 * stemma_mark row is made first when it needs one; have NULL: only that. */
static stm_err s_want_table(store_t *store, const catalog_table *t, s_names *have,
                            const s_names *marks, buf_t *create, stm_error *err)
{
    static const char *const kinds[S_KINDS] = {"ins", "upd", "rekey", "del"};
    int64_t mark_id = 0;
    stm_err rc =
        s_marked(t) ? s_mark_row(store, marks, stm_catalog_table_name(t), &mark_id, err) : STM_OK;
    if (rc != STM_OK || !have)
        return rc;
    buf_t text[S_KINDS] = {BUF_INIT, BUF_INIT, BUF_INIT, BUF_INIT};
    s_table_triggers(text, t, mark_id);
    buf_t name = BUF_INIT;
    for (int k = 0; k < S_KINDS; k++) {
        stm_buf_reset(&name);
        stm_buf_printf(&name, "stemma_%s_%s", kinds[k], stm_catalog_table_name(t));
        s_named *there = s_names_find(have, stm_buf_str(&name), true);
        if (there && strcmp(there->sql, stm_buf_str(&text[k])) == 0) {
            there->wanted = true;
        } else {
            stm_buf_append(create, text[k].data, text[k].len);
            stm_buf_puts(create, ";\n");
        }
        stm_buf_free(&text[k]);
    }
    stm_buf_free(&name);
    return STM_OK;
}

stm_err stm_capture_install(store_t *store, stm_error *err)
{
    return stm_capture_install_since(store, NULL, NULL, err);
}

/* stm_capture_install_since, and without triggers (stm_capture_mark_since): then the
 * triggers there are neither read nor touched. */
static stm_err s_install(store_t *store, const catalog_t *prev, catalog_t **now, bool triggers,
                         stm_error *err)
{
    catalog_t *catalog = NULL;
    stm_err rc = stm_catalog_read_since(stm_store_db(store), prev, &catalog, err);
    if (rc != STM_OK)
        return rc;
    s_names have = {0}, marks = {0};
    if (triggers)
        rc = s_names_read(store, s_list_triggers, true, &have, err);
    if (rc == STM_OK)
        rc = s_names_read(store, "SELECT tbl, id FROM stemma_mark", false, &marks, err);
    sqlite3_stmt *lookup = NULL;
    if (rc == STM_OK &&
        sqlite3_prepare_v2(stm_store_db(store), "SELECT 1 FROM stemma_exclude WHERE tbl = ?1", -1,
                           &lookup, NULL) != SQLITE_OK)
        rc = stm_store_error(store, err, "reading stemma_exclude");
    buf_t sql = BUF_INIT, create = BUF_INIT;
    size_t widest = 1;
    for (size_t i = 0; i < stm_catalog_count(catalog) && rc == STM_OK; i++) {
        const catalog_table *t = stm_catalog_at(catalog, i);
        const char *name = stm_catalog_table_name(t);
        if (stm_syncable_classify(t, s_is_excluded(lookup, name)) != SYNCABLE_SYNCED) {
            /* Its mark goes with its triggers: collecting finds rows above a mark. */
            if (s_names_find(&marks, name, false))
                rc = s_mark_exec(store, "DELETE FROM stemma_mark WHERE tbl = ?1", name, err);
            continue;
        }
        rc = s_want_table(store, t, triggers ? &have : NULL, &marks, &create, err);
        if (stm_catalog_table_key_count(t) > widest)
            widest = stm_catalog_table_key_count(t);
    }
    sqlite3_finalize(lookup);
    /* What is not wanted goes first: a trigger whose text changed is made again under
     * its own name. */
    for (size_t i = 0; i < have.count; i++)
        if (!have.items[i].wanted) {
            stm_buf_puts(&sql, "DROP TRIGGER ");
            stm_sqlscript_quote_ident(&sql, have.items[i].name);
            stm_buf_puts(&sql, ";\n");
        }
    if (rc == STM_OK && sql.len)
        rc = stm_store_exec(store, stm_buf_str(&sql), err);
    /* The queue's key columns are the triggers' to fill. */
    if (rc == STM_OK && triggers)
        rc = s_pending_key_columns(store, widest, err);
    if (rc == STM_OK && create.len)
        rc = stm_store_exec(store, stm_buf_str(&create), err);
    /* Rows there now are not changes to send (the caller collected the queue). */
    if (rc == STM_OK)
        rc = stm_capture_mark(store, catalog, err);
    if (rc == STM_OK && now)
        *now = catalog;
    else
        stm_catalog_destroy(&catalog);
    s_names_free(&have);
    s_names_free(&marks);
    stm_buf_free(&sql);
    stm_buf_free(&create);
    return rc;
}

stm_err stm_capture_install_since(store_t *store, const catalog_t *prev, catalog_t **now,
                                  stm_error *err)
{
    return s_install(store, prev, now, true, err);
}

stm_err stm_capture_mark_since(store_t *store, const catalog_t *prev, catalog_t **now,
                               stm_error *err)
{
    return s_install(store, prev, now, false, err);
}

stm_err stm_capture_each_mark(store_t *store, const catalog_t *catalog, capture_mark_fn fn,
                              void *ctx, stm_error *err)
{
    sqlite3_stmt *rows = NULL;
    if (sqlite3_prepare_v2(stm_store_db(store), "SELECT tbl, mark, at FROM stemma_mark", -1, &rows,
                           NULL) != SQLITE_OK)
        return stm_store_error(store, err, "reading stemma_mark");
    stm_err rc = STM_OK;
    int step;
    while (rc == STM_OK && (step = sqlite3_step(rows)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(rows, 0);
        const catalog_table *t = name ? stm_catalog_find(catalog, name) : NULL;
        /* A table dropped, or synced no more: its triggers are gone with it. */
        if (t && s_marked(t))
            rc = fn(store, t, rows, ctx, err);
    }
    if (rc == STM_OK && step != SQLITE_DONE)
        rc = stm_store_error(store, err, "reading stemma_mark");
    sqlite3_finalize(rows);
    return rc;
}

/* What stm_capture_mark_cut is given: the tables cut, and how many. */
typedef struct {
    const capture_cut *cuts;
    size_t n;
} s_cuts;

/* A cut table's mark: to the last key taken; the gate follows it while a first insert
 * above has recorded its time (the rows left above were made at or after it), and
 * stays the greatest integer when none has, so that the next records one. */
static stm_err s_cut_mark(store_t *store, const capture_cut *cut, stm_error *err)
{
    sqlite3_stmt *stmt = NULL;
    if (sqlite3_prepare_v2(
            stm_store_db(store),
            "UPDATE stemma_mark SET mark = ?2, gate = CASE WHEN at IS NULL THEN gate "
            "ELSE ?2 END WHERE tbl = ?1",
            -1, &stmt, NULL) != SQLITE_OK)
        return stm_store_error(store, err, "writing stemma_mark");
    sqlite3_bind_text(stmt, 1, stm_catalog_table_name(cut->t), -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 2, cut->last);
    stm_err rc = sqlite3_step(stmt) == SQLITE_DONE
                     ? STM_OK
                     : stm_store_error(store, err, "writing stemma_mark");
    sqlite3_finalize(stmt);
    return rc;
}

static stm_err s_raise_mark(store_t *store, const catalog_table *t, sqlite3_stmt *row, void *ctx,
                            stm_error *err)
{
    (void)row;
    const s_cuts *cuts = ctx;
    for (size_t i = 0; cuts && i < cuts->n; i++)
        if (cuts->cuts[i].t == t)
            return s_cut_mark(store, &cuts->cuts[i], err);
    buf_t sql = BUF_INIT;
    /* The rows above the mark are looked at now: the time of the first of them goes. */
    stm_buf_puts(&sql, "UPDATE stemma_mark SET at = NULL, gate = 9223372036854775807, "
                       "mark = coalesce((SELECT max(");
    stm_sqlscript_quote_ident(&sql, stm_catalog_table_key(t, 0)->name);
    stm_buf_puts(&sql, ") FROM ");
    stm_sqlscript_quote_ident(&sql, stm_catalog_table_name(t));
    stm_buf_puts(&sql, "), mark) WHERE tbl = ?1");
    sqlite3_stmt *stmt = NULL;
    stm_err rc = STM_OK;
    if (sqlite3_prepare_v2(stm_store_db(store), stm_buf_str(&sql), -1, &stmt, NULL) != SQLITE_OK)
        rc = stm_store_error(store, err, "writing stemma_mark");
    else {
        sqlite3_bind_text(stmt, 1, stm_catalog_table_name(t), -1, SQLITE_STATIC);
        if (sqlite3_step(stmt) != SQLITE_DONE)
            rc = stm_store_error(store, err, "writing stemma_mark");
    }
    sqlite3_finalize(stmt);
    stm_buf_free(&sql);
    return rc;
}

stm_err stm_capture_mark(store_t *store, const catalog_t *catalog, stm_error *err)
{
    return stm_capture_each_mark(store, catalog, s_raise_mark, NULL, err);
}

stm_err stm_capture_mark_cut(store_t *store, const catalog_t *catalog, const capture_cut *cuts,
                             size_t n, stm_error *err)
{
    s_cuts c = {cuts, n};
    return stm_capture_each_mark(store, catalog, s_raise_mark, n ? &c : NULL, err);
}

stm_err stm_capture_exclude(store_t *store, const char *tbl, bool exclude, stm_error *err)
{
    sqlite3_stmt *stmt = NULL;
    const char *sql = exclude ? "INSERT OR IGNORE INTO stemma_exclude (tbl) VALUES (?1)"
                              : "DELETE FROM stemma_exclude WHERE tbl = ?1";
    if (sqlite3_prepare_v2(stm_store_db(store), sql, -1, &stmt, NULL) != SQLITE_OK)
        return stm_store_error(store, err, "updating stemma_exclude");
    sqlite3_bind_text(stmt, 1, tbl, -1, SQLITE_STATIC);
    stm_err rc = sqlite3_step(stmt) == SQLITE_DONE
                     ? STM_OK
                     : stm_store_error(store, err, "updating stemma_exclude");
    sqlite3_finalize(stmt);
    return rc;
}

bool stm_capture_has_triggers(store_t *store, const char *table)
{
    sqlite3_stmt *q = NULL;
    bool has = false;
    /* The insert trigger stands for the four: they are made and dropped together. */
    if (sqlite3_prepare_v2(stm_store_db(store),
                           "SELECT 1 FROM main.sqlite_schema WHERE type = 'trigger' AND "
                           "name = 'stemma_ins_' || ?1 COLLATE NOCASE",
                           -1, &q, NULL) == SQLITE_OK) {
        sqlite3_bind_text(q, 1, table, -1, SQLITE_STATIC);
        has = sqlite3_step(q) == SQLITE_ROW;
    }
    sqlite3_finalize(q);
    return has;
}
