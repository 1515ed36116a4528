#include "capture.h"
#include "lineage/buf.h"
#include "lineage/mem.h"
#include "lineage/sqlscript.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The clock tick every trigger starts with (see capture.h). */
static const char *const s_tick =
    "max(hlc + 1, CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER) << 16)";
static const char *const s_guard = "(SELECT applying FROM stemma_local WHERE id = 1) = 0";

bool capture_is_own_table(const char *name)
{
    return strncasecmp(name, "stemma_", 7) == 0 || strcasecmp(name, "schema_version") == 0;
}

char capture_affinity_code(catalog_affinity a)
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

capture_status capture_classify(const catalog_table *t, bool excluded)
{
    if (capture_is_own_table(catalog_table_name(t)))
        return CAPTURE_OWN_TABLE;
    if (excluded)
        return CAPTURE_EXCLUDED;
    int keys = 0;
    for (size_t i = 0; i < catalog_table_count(t); i++)
        if (catalog_table_column(t, i)->pk)
            keys++;
    if (keys == 0)
        return CAPTURE_NO_KEY;
    return keys == 1 ? CAPTURE_SYNCED : CAPTURE_COMPOSITE_KEY;
}

const catalog_column *capture_key_column(const catalog_table *t)
{
    const catalog_column *key = NULL;
    for (size_t i = 0; i < catalog_table_count(t); i++) {
        const catalog_column *c = catalog_table_column(t, i);
        if (c->pk) {
            if (key)
                return NULL;
            key = c;
        }
    }
    return key;
}

static stm_err s_db_error(store_t *store, stm_error *err, const char *what)
{
    return stm_error_set(err, STM_EDB, "%s: %s: %s", store_path(store), what,
                         sqlite3_errmsg(store_db(store)));
}

stm_err capture_uninstall(store_t *store, stm_error *err)
{
    sqlite3 *db = store_db(store);
    sqlite3_stmt *stmt = NULL;
    if (sqlite3_prepare_v2(db,
                           "SELECT name FROM sqlite_schema WHERE type = 'trigger' AND "
                           "name LIKE 'stemma\\_%' ESCAPE '\\'",
                           -1, &stmt, NULL) != SQLITE_OK)
        return s_db_error(store, err, "listing triggers");
    buf_t sql = BUF_INIT;
    int step;
    while ((step = sqlite3_step(stmt)) == SQLITE_ROW) {
        buf_puts(&sql, "DROP TRIGGER ");
        sqlscript_quote_ident(&sql, (const char *)sqlite3_column_text(stmt, 0));
        buf_puts(&sql, ";\n");
    }
    sqlite3_finalize(stmt);
    stm_err rc = step == SQLITE_DONE ? STM_OK : s_db_error(store, err, "listing triggers");
    if (rc == STM_OK && sql.len)
        rc = store_exec(store, buf_str(&sql), err);
    buf_free(&sql);
    return rc;
}

/* Appends s as an SQL string literal. */
static void s_literal(buf_t *b, const char *s)
{
    buf_putc(b, '\'');
    for (const char *p = s; *p; p++) {
        if (*p == '\'')
            buf_putc(b, '\'');
        buf_putc(b, *p);
    }
    buf_putc(b, '\'');
}

/* Appends "ROW.column" (ROW is NEW or OLD). */
static void s_ref(buf_t *b, const char *row, const char *column)
{
    buf_printf(b, "%s.", row);
    sqlscript_quote_ident(b, column);
}

/* The columns a trigger records: all but generated ones. */
static bool s_captured(const catalog_column *c)
{
    return c->hidden == 0;
}

/* "CREATE TRIGGER stemma_KIND_TABLE AFTER EVENT ON TABLE WHEN guard [AND extra] BEGIN" */
static void s_trigger_head(buf_t *b, const char *kind, const char *event, const char *table,
                           const char *extra)
{
    buf_t name = BUF_INIT;
    buf_printf(&name, "stemma_%s_%s", kind, table);
    buf_puts(b, "CREATE TRIGGER ");
    sqlscript_quote_ident(b, buf_str(&name));
    buf_printf(b, " AFTER %s ON ", event);
    sqlscript_quote_ident(b, table);
    buf_printf(b, "\nWHEN %s%s%s\nBEGIN\n", s_guard, extra ? " AND " : "", extra ? extra : "");
    buf_free(&name);
}

/* Appends the statement that ticks the clock and reserves `count` (SQL text)
 * sequence numbers. */
static void s_reserve(buf_t *b, const char *count)
{
    buf_printf(b, "  UPDATE stemma_local SET hlc = %s, seq = seq + (%s) WHERE id = 1;\n", s_tick,
               count);
}

/* Appends the INSERT INTO stemma_oplog ... SELECT for one set of rows `source`,
 * whose columns are n (1-based position), col, aff, val; seq is base + position. */
static void s_insert_ops(buf_t *b, const char *table, const char *key_row, const char *key,
                         const char *seq_expr, const char *source)
{
    buf_puts(b, "  INSERT INTO stemma_oplog (origin, seq, hlc, version_id, tbl, pk, col, aff, val)\n"
                "  SELECT l.node_id, ");
    buf_puts(b, seq_expr);
    buf_puts(b, ", l.hlc, l.version_id, ");
    s_literal(b, table);
    buf_puts(b, ", ");
    s_ref(b, key_row, key);
    buf_printf(b, ", c.col, c.aff, c.val\n  FROM stemma_local AS l, (%s) AS c WHERE l.id = 1;\n",
               source);
}

/* The rows (n, col, aff, val) for every captured column of NEW; when only_changed,
 * for those whose value differs from OLD. */
static void s_column_rows(buf_t *b, const catalog_table *t, bool only_changed)
{
    int n = 0;
    for (size_t i = 0; i < catalog_table_count(t); i++) {
        const catalog_column *c = catalog_table_column(t, i);
        if (!s_captured(c))
            continue;
        if (n++)
            buf_puts(b, " UNION ALL ");
        buf_printf(b, "SELECT %d AS n, ", n);
        s_literal(b, c->name);
        buf_printf(b, " AS col, '%c' AS aff, ", capture_affinity_code(c->affinity));
        s_ref(b, "NEW", c->name);
        buf_puts(b, " AS val");
        if (only_changed) {
            buf_puts(b, " WHERE ");
            s_ref(b, "OLD", c->name);
            buf_puts(b, " IS NOT ");
            s_ref(b, "NEW", c->name);
        }
    }
}

/* "(OLD.a IS NOT NEW.a) + (OLD.b IS NOT NEW.b) ..." or, with joiner " OR ", the test. */
static void s_changed_expr(buf_t *b, const catalog_table *t, const char *joiner)
{
    int n = 0;
    for (size_t i = 0; i < catalog_table_count(t); i++) {
        const catalog_column *c = catalog_table_column(t, i);
        if (!s_captured(c))
            continue;
        if (n++)
            buf_puts(b, joiner);
        buf_putc(b, '(');
        s_ref(b, "OLD", c->name);
        buf_puts(b, " IS NOT ");
        s_ref(b, "NEW", c->name);
        buf_putc(b, ')');
    }
}

static int s_captured_count(const catalog_table *t)
{
    int n = 0;
    for (size_t i = 0; i < catalog_table_count(t); i++)
        n += s_captured(catalog_table_column(t, i));
    return n;
}

/* Appends the three triggers of one synced table. */
static void s_table_triggers(buf_t *b, const catalog_table *t)
{
    const char *table = catalog_table_name(t);
    const char *key = capture_key_column(t)->name;
    int ncols = s_captured_count(t);
    buf_t rows = BUF_INIT, tmp = BUF_INIT, seq = BUF_INIT;
    char count[32];
    snprintf(count, sizeof count, "%d", ncols);

    /* INSERT: every column. */
    s_column_rows(&rows, t, false);
    s_trigger_head(b, "ins", "INSERT", table, NULL);
    s_reserve(b, count);
    buf_printf(&seq, "l.seq - %d + c.n", ncols);
    s_insert_ops(b, table, "NEW", key, buf_str(&seq), buf_str(&rows));
    buf_puts(b, "END;\n");

    /* UPDATE keeping the key: the columns that changed. */
    buf_reset(&tmp);
    s_ref(&tmp, "OLD", key);
    buf_puts(&tmp, " IS ");
    s_ref(&tmp, "NEW", key);
    buf_puts(&tmp, " AND (");
    s_changed_expr(&tmp, t, " OR ");
    buf_puts(&tmp, ")");
    s_trigger_head(b, "upd", "UPDATE", table, buf_str(&tmp));
    buf_reset(&tmp);
    s_changed_expr(&tmp, t, " + ");
    s_reserve(b, buf_str(&tmp));
    buf_reset(&seq);
    buf_printf(&seq, "l.seq - (%s) + row_number() OVER (ORDER BY c.n)", buf_str(&tmp));
    buf_reset(&rows);
    s_column_rows(&rows, t, true);
    s_insert_ops(b, table, "NEW", key, buf_str(&seq), buf_str(&rows));
    buf_puts(b, "END;\n");

    /* UPDATE changing the key: delete the old row, insert the new one. */
    buf_reset(&tmp);
    s_ref(&tmp, "OLD", key);
    buf_puts(&tmp, " IS NOT ");
    s_ref(&tmp, "NEW", key);
    s_trigger_head(b, "rekey", "UPDATE", table, buf_str(&tmp));
    snprintf(count, sizeof count, "%d", ncols + 1);
    s_reserve(b, count);
    buf_reset(&seq);
    buf_printf(&seq, "l.seq - %d", ncols);
    s_insert_ops(b, table, "OLD", key, buf_str(&seq),
                 "SELECT NULL AS col, NULL AS aff, NULL AS val");
    buf_reset(&seq);
    buf_printf(&seq, "l.seq - %d + c.n", ncols);
    buf_reset(&rows);
    s_column_rows(&rows, t, false);
    s_insert_ops(b, table, "NEW", key, buf_str(&seq), buf_str(&rows));
    buf_puts(b, "END;\n");

    /* DELETE: one row delete. */
    s_trigger_head(b, "del", "DELETE", table, NULL);
    s_reserve(b, "1");
    s_insert_ops(b, table, "OLD", key, "l.seq", "SELECT NULL AS col, NULL AS aff, NULL AS val");
    buf_puts(b, "END;\n");

    buf_free(&rows);
    buf_free(&tmp);
    buf_free(&seq);
}

/* True when tbl is in stemma_exclude. */
static bool s_is_excluded(sqlite3_stmt *lookup, const char *tbl)
{
    sqlite3_reset(lookup);
    sqlite3_bind_text(lookup, 1, tbl, -1, SQLITE_STATIC);
    return sqlite3_step(lookup) == SQLITE_ROW;
}

stm_err capture_install(store_t *store, stm_error *err)
{
    stm_err rc = capture_uninstall(store, err);
    if (rc != STM_OK)
        return rc;
    catalog_t *catalog = NULL;
    if ((rc = catalog_read(store_db(store), &catalog, err)) != STM_OK)
        return rc;
    sqlite3_stmt *lookup = NULL;
    if (sqlite3_prepare_v2(store_db(store), "SELECT 1 FROM stemma_exclude WHERE tbl = ?1", -1,
                           &lookup, NULL) != SQLITE_OK) {
        catalog_destroy(&catalog);
        return s_db_error(store, err, "reading stemma_exclude");
    }
    buf_t sql = BUF_INIT;
    for (size_t i = 0; i < catalog_count(catalog) && rc == STM_OK; i++) {
        const catalog_table *t = catalog_at(catalog, i);
        switch (capture_classify(t, s_is_excluded(lookup, catalog_table_name(t)))) {
        case CAPTURE_SYNCED:
            s_table_triggers(&sql, t);
            break;
        case CAPTURE_COMPOSITE_KEY:
            rc = stm_error_set(err, STM_EINPUT,
                               "%s: table %s has a primary key of several columns, which stemma "
                               "cannot sync; exclude it (stemma migrate --exclude %s) or give it "
                               "a single-column key",
                               store_path(store), catalog_table_name(t), catalog_table_name(t));
            break;
        default:
            break;
        }
    }
    sqlite3_finalize(lookup);
    catalog_destroy(&catalog);
    if (rc == STM_OK && sql.len)
        rc = store_exec(store, buf_str(&sql), err);
    buf_free(&sql);
    return rc;
}

stm_err capture_exclude(store_t *store, const char *tbl, bool exclude, stm_error *err)
{
    sqlite3_stmt *stmt = NULL;
    const char *sql = exclude ? "INSERT OR IGNORE INTO stemma_exclude (tbl) VALUES (?1)"
                              : "DELETE FROM stemma_exclude WHERE tbl = ?1";
    if (sqlite3_prepare_v2(store_db(store), sql, -1, &stmt, NULL) != SQLITE_OK)
        return s_db_error(store, err, "updating stemma_exclude");
    sqlite3_bind_text(stmt, 1, tbl, -1, SQLITE_STATIC);
    stm_err rc = sqlite3_step(stmt) == SQLITE_DONE ? STM_OK
                                                    : s_db_error(store, err, "updating stemma_exclude");
    sqlite3_finalize(stmt);
    return rc;
}
