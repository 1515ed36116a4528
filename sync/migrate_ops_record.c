/* migrate_ops_record.c - what a migration step wrote, compared with the copies taken
 * before it and recorded as derived operations (migrate_ops.h, invariants 2 - 4). */
#include "migrate_ops_internal.h"
#include "capture.h"
#include "key.h"
#include "oplog.h"
#include "txn.h"
#include "base/buf.h"
#include "base/mem.h"
#include "lineage/sqlscript.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Operations recorded at once: a bound on what one table's differences hold in memory. */
#define S_FLUSH_OPS 4096

/* A cell or row to put back (migrate_ops.h, invariant 4). */
typedef struct {
    op_value pk;  /* bytes owned (keep) */
    char *column; /* NULL: the whole row, which the step deleted */
} s_keep;

/* ---- (2) - (4) differences made operations ---- */

/* What one table's comparison needs. */
typedef struct {
    migrate_ops_t *m;
    txn_t *txn;
    txn_table *table;
    const catalog_table *def;
    const migops_copy *copy; /* NULL: every row is new */
    const char **source;     /* per column of def: the copy's column holding its values, or NULL */
    bool *fresh;             /* per column of def: none of the version before held its values
                                (added or computed by the step, even before the copy) */
    bool *send;              /* scratch, per column of def: the row at hand sends it */
    size_t send_cap;
    opbatch_t *batch;
    s_keep *keeps;
    size_t nkeeps, keeps_cap;
    const lineage_t *lineage;
    int version;
    bool own;                 /* every row is the database's own, written before stemma
                                 (stm_migrate_ops_record_rows), not the step's */
    sqlite3_stmt *version_of; /* an operation's version number */
    int64_t *no_cache;        /* stemma_ids numbers of versions and their numbers in lineage */
    int *num_cache;
    size_t ncache, cache_cap;
    migrate_ops_stats *st;
} s_table;

static bool s_default_constant(const char *dflt)
{
    static const char *const moving[] = {"current_", "now", "random", "time", "date"};
    for (size_t i = 0; i < sizeof moving / sizeof *moving; i++)
        for (const char *p = dflt; *p; p++)
            if (strncasecmp(p, moving[i], strlen(moving[i])) == 0)
                return false;
    return true;
}

/* " AND "-joined "a.k = b.sk": the rows of the table (alias a) and of the copy (b) with
 * one key; the copy's side first when it leads (its index is the copy's key). */
static void s_key_join(buf_t *q, const s_table *x, bool copy_side_first)
{
    for (size_t k = 0; k < stm_catalog_table_key_count(x->def); k++) {
        const catalog_column *kc = stm_catalog_table_key(x->def, k);
        size_t ci = 0;
        while (stm_catalog_table_column(x->def, ci) != kc)
            ci++;
        if (k)
            stm_buf_puts(q, " AND ");
        if (copy_side_first) {
            stm_buf_puts(q, "s.");
            stm_sqlscript_quote_ident(q, x->source[ci]);
            stm_buf_puts(q, " = t.");
            stm_sqlscript_quote_ident(q, kc->name);
        } else {
            stm_buf_puts(q, "t.");
            stm_sqlscript_quote_ident(q, kc->name);
            stm_buf_puts(q, " = s.");
            stm_sqlscript_quote_ident(q, x->source[ci]);
        }
    }
}

/* "t.k1, ..., t.c1, ...": the key, then every captured column. */
static void s_row_columns(buf_t *q, const s_table *x)
{
    for (size_t k = 0; k < stm_catalog_table_key_count(x->def); k++) {
        stm_buf_puts(q, k ? ", t." : "t.");
        stm_sqlscript_quote_ident(q, stm_catalog_table_key(x->def, k)->name);
    }
    for (size_t i = 0; i < stm_catalog_table_count(x->def); i++) {
        const catalog_column *c = stm_catalog_table_column(x->def, i);
        if (c->hidden)
            continue;
        stm_buf_puts(q, ", t.");
        stm_sqlscript_quote_ident(q, c->name);
    }
}

/* The key of the current row of stmt, whose columns from `at` hold it; packed into
 * scratch when it has several columns. */
static void s_read_key(sqlite3_stmt *stmt, int at, size_t nkeys, buf_t *scratch, op_value *pk)
{
    if (nkeys == 1) {
        stm_op_value_column(stmt, at, pk);
        return;
    }
    op_value parts[KEY_MAX_COLUMNS];
    for (size_t k = 0; k < nkeys; k++)
        stm_op_value_column(stmt, at + (int)k, &parts[k]);
    stm_buf_reset(scratch);
    stm_key_pack(parts, nkeys, scratch);
    *pk = (op_value){.type = VALUE_KEY, .bytes = scratch->data, .len = scratch->len};
}

/* The number in the lineage of the version operation (origin, seq) was written at; 0
 * when it is none of its versions or the operation is not held. */
static stm_err s_version_of(s_table *x, int64_t origin, uint64_t seq, int *number, stm_error *err)
{
    *number = 0;
    sqlite3_stmt *q = x->version_of;
    sqlite3_reset(q);
    sqlite3_bind_int64(q, 1, origin);
    sqlite3_bind_int64(q, 2, (sqlite3_int64)seq);
    int step = sqlite3_step(q);
    if (step == SQLITE_DONE)
        return STM_OK;
    if (step != SQLITE_ROW)
        return stm_store_error(x->m->store, err, "reading the oplog");
    int64_t no = sqlite3_column_int64(q, 0);
    sqlite3_reset(q);
    for (size_t i = 0; i < x->ncache; i++)
        if (x->no_cache[i] == no) {
            *number = x->num_cache[i];
            return STM_OK;
        }
    stm_id id;
    stm_err rc = stm_store_id_of(x->m->store, no, &id, err);
    if (rc != STM_OK)
        return rc;
    for (size_t i = 0; i < stm_lineage_count(x->lineage) && !*number; i++)
        if (stm_id_equal(&stm_lineage_version_at(x->lineage, i)->id, &id))
            *number = (int)i + 1;
    size_t cap = x->cache_cap;
    x->no_cache = stm_grow(x->no_cache, &cap, x->ncache + 1, sizeof *x->no_cache);
    x->num_cache = stm_grow(x->num_cache, &x->cache_cap, x->ncache + 1, sizeof *x->num_cache);
    x->no_cache[x->ncache] = no;
    x->num_cache[x->ncache++] = *number;
    return STM_OK;
}

/* Whether entry e of a row's clocks is a write made at the step's version or later. */
static stm_err s_newer(s_table *x, const rowclock_entry *e, bool *newer, stm_error *err)
{
    *newer = false;
    if (!e || !x->lineage || !e->seq)
        return STM_OK;
    int number = 0;
    stm_err rc = s_version_of(x, e->origin, e->seq, &number, err);
    *newer = rc == STM_OK && number >= x->version;
    return rc;
}

static void s_keep_add(s_table *x, const op_value *pk, const char *column)
{
    x->keeps = stm_grow(x->keeps, &x->keeps_cap, x->nkeeps + 1, sizeof *x->keeps);
    s_keep *k = &x->keeps[x->nkeeps++];
    k->pk = *pk;
    void *bytes = pk->len ? stm_malloc(pk->len) : NULL;
    if (bytes)
        memcpy(bytes, pk->bytes, pk->len);
    k->pk.bytes = bytes;
    k->column = column ? stm_strdup(column) : NULL;
}

/* Records the operations made so far, numbered as this database's next. */
static stm_err s_flush(s_table *x, stm_error *err)
{
    size_t n = stm_opbatch_count(x->batch);
    if (!n)
        return STM_OK;
    op_t proto;
    memset(&proto, 0, sizeof proto);
    stm_err rc = stm_capture_reserve(x->m->store, n, &proto, err);
    for (size_t i = 0; i < n && rc == STM_OK; i++) {
        op_t *op = stm_opbatch_at_mut(x->batch, i);
        op->origin = proto.origin;
        op->version_id = proto.version_id;
        op->seq = proto.seq + i;
    }
    if (rc == STM_OK)
        rc = stm_txn_record_made(x->txn, x->batch, err);
    x->st->ops += n;
    stm_opbatch_clear(x->batch);
    return rc;
}

typedef enum { S_NEW, S_CHANGED, S_GONE } s_kind;

/* One row of a comparison's result: its key from column 0, then (S_NEW, S_CHANGED)
 * every captured column, then (S_CHANGED) whether each differs. */
static stm_err s_row(s_table *x, sqlite3_stmt *stmt, s_kind kind, buf_t *scratch, stm_error *err)
{
    size_t nkeys = stm_catalog_table_key_count(x->def);
    op_value pk;
    s_read_key(stmt, 0, nkeys, scratch, &pk);
    if (pk.type == VALUE_NULL || stm_key_has_null(&pk))
        return STM_OK; /* no row anyone can address */
    bool found = false;
    stm_err rc = stm_txn_clock_read(x->txn, x->table, &pk, &found, err);
    if (rc != STM_OK)
        return rc;
    const rowclock_t *clock = stm_txn_clock(x->txn);
    uint64_t top = 0;
    for (size_t i = 0; found && i < clock->count; i++)
        if (clock->entries[i].hlc > top)
            top = clock->entries[i].hlc;
    if (kind == S_GONE) {
        for (size_t i = 0; found && i < clock->count; i++) {
            bool newer = false;
            if ((rc = s_newer(x, &clock->entries[i], &newer, err)) != STM_OK)
                return rc;
            if (newer) {
                s_keep_add(x, &pk, NULL);
                return STM_OK;
            }
        }
    }
    op_t op;
    memset(&op, 0, sizeof op);
    op.table = stm_catalog_table_name(x->def);
    op.pk = pk;
    op.hlc = top + 1;
    op.derived = !x->own;
    size_t before = stm_opbatch_count(x->batch);
    if (kind == S_GONE) {
        stm_opbatch_add(x->batch, &op);
    } else {
        /* Never a new incarnation of the row (identity.h): a step run on every device
         * makes the same row on each, which must not meet itself as a conflict. A row
         * the database held before stemma is its own: one of its incarnation. */
        op.creates = x->own;
        size_t ncaptured = 0;
        for (size_t i = 0; i < stm_catalog_table_count(x->def); i++)
            ncaptured += !stm_catalog_table_column(x->def, i)->hidden;
        /* A changed row of a table with a column it had no values for before the step
         * (added, or computed) is sent whole: a database that holds no row of that key
         * yet, because the insert that made it was refused there for want of that
         * column (NOT NULL, at a later version too), takes it from this change, and
         * what waited for it applies. */
        bool whole = false;
        size_t ncols = stm_catalog_table_count(x->def);
        for (size_t i = 0; kind == S_CHANGED && i < ncols; i++)
            whole |= !stm_catalog_table_column(x->def, i)->hidden && x->fresh[i];
        /* Which cells the step changed are the migration's to send: not those written
         * at its version or later (put back instead). */
        if (ncols > x->send_cap)
            x->send = stm_grow(x->send, &x->send_cap, ncols, sizeof *x->send);
        bool any = kind != S_CHANGED;
        for (size_t i = 0, at = nkeys; i < ncols && rc == STM_OK; i++) {
            const catalog_column *c = stm_catalog_table_column(x->def, i);
            x->send[i] = false;
            if (c->hidden)
                continue;
            int value = (int)at++;
            if (kind != S_CHANGED) {
                x->send[i] = true;
                continue;
            }
            if (!sqlite3_column_int(stmt, value + (int)ncaptured))
                continue;
            bool newer = false;
            /* A cell with no write of its own here, in a row whose latest write parked
             * for want of a column is of this version or later: that write may be this
             * cell's (a value a rollback dropped, sync/dropped.h, or one received before
             * the column was added), and replays after the step. */
            rowclock_t *clock_now = stm_txn_clock(x->txn);
            const rowclock_entry *e = stm_rowclock_find(clock_now, ROWCLOCK_CELL, c->name);
            if (!e)
                e = stm_rowclock_find(clock_now, ROWCLOCK_PARKED, NULL);
            if (found)
                rc = s_newer(x, e, &newer, err);
            if (rc == STM_OK && newer)
                s_keep_add(x, &pk, c->name);
            else
                any = x->send[i] = true;
        }
        /* Nothing the migration's own: nothing sent, not even whole. */
        int at = (int)nkeys;
        for (size_t i = 0; any && i < ncols && rc == STM_OK; i++) {
            const catalog_column *c = stm_catalog_table_column(x->def, i);
            if (c->hidden)
                continue;
            int value = at++;
            bool changed = kind == S_CHANGED && sqlite3_column_int(stmt, value + (int)ncaptured);
            if (!x->send[i] && (changed || !whole))
                continue;
            op.column = c->name;
            op.affinity = stm_capture_affinity_code(c->affinity);
            stm_op_value_column(stmt, value, &op.value);
            stm_opbatch_add(x->batch, &op);
        }
    }
    if (stm_opbatch_count(x->batch) > before)
        x->st->rows++;
    if (rc == STM_OK && stm_opbatch_count(x->batch) >= S_FLUSH_OPS)
        rc = s_flush(x, err);
    return rc;
}

/* Runs query q, each row one of kind. */
static stm_err s_scan(s_table *x, const buf_t *q, s_kind kind, stm_error *err)
{
    sqlite3_stmt *stmt = NULL;
    if (sqlite3_prepare_v2(x->m->db, stm_buf_str(q), -1, &stmt, NULL) != SQLITE_OK)
        return stm_store_error(x->m->store, err,
                               "comparing a table with its rows before a migration");
    buf_t scratch = BUF_INIT;
    stm_err rc = STM_OK;
    int step;
    while (rc == STM_OK && (step = sqlite3_step(stmt)) == SQLITE_ROW)
        rc = s_row(x, stmt, kind, &scratch, err);
    if (rc == STM_OK && step != SQLITE_DONE)
        rc =
            stm_store_error(x->m->store, err, "comparing a table with its rows before a migration");
    sqlite3_finalize(stmt);
    stm_buf_free(&scratch);
    return rc;
}

/* Binds the parts of key pk to parameters 1 .. n of stmt. */
static bool s_bind_key(sqlite3_stmt *stmt, const op_value *pk)
{
    op_value parts[KEY_MAX_COLUMNS];
    size_t n = 0;
    if (!stm_key_values(pk, parts, KEY_MAX_COLUMNS, &n))
        return false;
    for (size_t k = 0; k < n; k++)
        if (stm_op_value_bind(stmt, (int)k + 1, &parts[k]) != SQLITE_OK)
            return false;
    return true;
}

/* "s.sk1 = ?1 AND ...": the copy's row of the key in parameters 1 .. n. */
static void s_copy_match(buf_t *q, const s_table *x)
{
    for (size_t k = 0; k < x->copy->nkeys; k++) {
        const catalog_column *kc = stm_catalog_table_key(x->def, k);
        size_t ci = 0;
        while (stm_catalog_table_column(x->def, ci) != kc)
            ci++;
        stm_buf_printf(q, "%ss.", k ? " AND " : "");
        stm_sqlscript_quote_ident(q, x->source[ci]);
        stm_buf_printf(q, " = ?%zu", k + 1);
    }
}

/* Puts back what the step changed that was written at its version or later (4). */
static stm_err s_put_back(s_table *x, const catalog_t *after, stm_error *err)
{
    if (!x->nkeeps)
        return STM_OK;
    stm_err rc =
        stm_store_exec(x->m->store, "UPDATE stemma_local SET applying = 1 WHERE id = 1", err);
    buf_t q = BUF_INIT;
    for (size_t i = 0; i < x->nkeeps && rc == STM_OK; i++) {
        const s_keep *k = &x->keeps[i];
        stm_buf_reset(&q);
        if (k->column) {
            const catalog_column *c = stm_catalog_table_find(x->def, k->column);
            size_t ci = 0;
            while (stm_catalog_table_column(x->def, ci) != c)
                ci++;
            stm_buf_puts(&q, "UPDATE main.");
            stm_sqlscript_quote_ident(&q, stm_catalog_table_name(x->def));
            stm_buf_puts(&q, " SET ");
            stm_sqlscript_quote_ident(&q, c->name);
            stm_buf_puts(&q, " = (SELECT s.");
            /* A column with no source here was not in the copy: its value there is the
             * one it had, which the table has no column to hold but its own. */
            stm_sqlscript_quote_ident(&q, x->source[ci] ? x->source[ci] : c->name);
            stm_buf_printf(&q, " FROM temp.%s AS s WHERE ", x->copy->copy);
            s_copy_match(&q, x);
            stm_buf_puts(&q, ") WHERE ");
            stm_key_match_sql(&q, x->def);
        } else {
            stm_buf_puts(&q, "INSERT INTO main.");
            stm_sqlscript_quote_ident(&q, stm_catalog_table_name(x->def));
            stm_buf_puts(&q, " (");
            bool first = true;
            for (size_t c = 0; c < stm_catalog_table_count(x->def); c++)
                if (x->source[c] && !stm_catalog_table_column(x->def, c)->hidden) {
                    stm_buf_puts(&q, first ? "" : ", ");
                    stm_sqlscript_quote_ident(&q, stm_catalog_table_column(x->def, c)->name);
                    first = false;
                }
            stm_buf_puts(&q, ") SELECT ");
            first = true;
            for (size_t c = 0; c < stm_catalog_table_count(x->def); c++)
                if (x->source[c] && !stm_catalog_table_column(x->def, c)->hidden) {
                    stm_buf_puts(&q, first ? "s." : ", s.");
                    stm_sqlscript_quote_ident(&q, x->source[c]);
                    first = false;
                }
            stm_buf_printf(&q, " FROM temp.%s AS s WHERE ", x->copy->copy);
            s_copy_match(&q, x);
        }
        sqlite3_stmt *stmt = NULL;
        bool ok = sqlite3_prepare_v2(x->m->db, stm_buf_str(&q), -1, &stmt, NULL) == SQLITE_OK &&
                  s_bind_key(stmt, &k->pk) && sqlite3_step(stmt) == SQLITE_DONE;
        sqlite3_finalize(stmt);
        if (ok)
            x->st->kept++;
        else
            x->st->unkept++;
    }
    stm_buf_free(&q);
    if (rc == STM_OK)
        rc = stm_store_exec(x->m->store, "UPDATE stemma_local SET applying = 0 WHERE id = 1", err);
    /* A row put back above a table's mark is not the application's insert. */
    if (rc == STM_OK)
        rc = stm_capture_mark(x->m->store, after, err);
    return rc;
}

static bool s_copy_has(const migops_copy *c, const char *col, const char **spelt)
{
    for (size_t i = 0; i < c->ncols; i++)
        if (strcasecmp(c->cols[i], col) == 0) {
            *spelt = c->cols[i];
            return true;
        }
    return false;
}

/* Compares one synced table of the new version with its copy (or takes every row). */
static stm_err s_table_ops(s_table *x, const lens_set_t *lenses, const catalog_t *after,
                           stm_error *err)
{
    size_t ncols = stm_catalog_table_count(x->def);
    x->source = stm_calloc(ncols + 1, sizeof *x->source);
    x->fresh = stm_calloc(ncols + 1, sizeof *x->fresh);
    const char *name = stm_catalog_table_name(x->def);
    /* The table as the version before had it: the copy may have been taken after the
     * step added columns to it. */
    const catalog_table *was =
        x->copy && x->m->before ? stm_catalog_find(x->m->before, x->copy->table) : NULL;
    for (size_t i = 0; x->copy && i < ncols; i++) {
        const char *col = stm_catalog_table_column(x->def, i)->name, *ft, *fc, *spelt;
        if (lenses && x->version > 1 &&
            stm_lens_translate(lenses, x->version, name, col, x->version - 1, &ft, &fc) &&
            strcasecmp(ft, x->copy->table) == 0 && s_copy_has(x->copy, fc, &spelt))
            x->source[i] = spelt;
        else if (s_copy_has(x->copy, col, &spelt))
            x->source[i] = spelt;
        x->fresh[i] = !x->source[i] || !was || !stm_catalog_table_find(was, x->source[i]);
    }
    /* A key column the copy has no values for (a table keyed anew, its key of the
     * same width) is matched by its place in the key, as operations name rows: an
     * operation of the version before names a row here by the same key values, so the
     * rows of the copy that no row here has are deleted here too. A key of another
     * width than the copy's: every row is new, and nothing is matched. */
    bool keyed = x->copy && x->copy->nkeys == stm_catalog_table_key_count(x->def);
    for (size_t k = 0; keyed && k < stm_catalog_table_key_count(x->def); k++) {
        const catalog_column *kc = stm_catalog_table_key(x->def, k);
        for (size_t i = 0; i < ncols; i++)
            if (stm_catalog_table_column(x->def, i) == kc && !x->source[i])
                x->source[i] = x->copy->keys[k];
    }
    buf_t q = BUF_INIT;
    stm_err rc = STM_OK;
    stm_buf_puts(&q, "SELECT ");
    s_row_columns(&q, x);
    stm_buf_puts(&q, " FROM main.");
    stm_sqlscript_quote_ident(&q, name);
    stm_buf_puts(&q, " AS t");
    if (!keyed) {
        x->copy = NULL; /* nothing is put back either: no row of the copy is known here */
        rc = s_scan(x, &q, S_NEW, err);
        goto done;
    }
    /* Rows the step made. */
    stm_buf_printf(&q, " WHERE NOT EXISTS (SELECT 1 FROM temp.%s AS s WHERE ", x->copy->copy);
    s_key_join(&q, x, true);
    stm_buf_puts(&q, ")");
    rc = s_scan(x, &q, S_NEW, err);
    /* Rows it deleted. */
    stm_buf_reset(&q);
    stm_buf_puts(&q, "SELECT ");
    for (size_t k = 0; k < x->copy->nkeys; k++) {
        const catalog_column *kc = stm_catalog_table_key(x->def, k);
        for (size_t i = 0; i < ncols; i++)
            if (stm_catalog_table_column(x->def, i) == kc) {
                stm_buf_puts(&q, k ? ", s." : "s.");
                stm_sqlscript_quote_ident(&q, x->source[i]);
            }
    }
    stm_buf_printf(&q, " FROM temp.%s AS s WHERE NOT EXISTS (SELECT 1 FROM main.", x->copy->copy);
    stm_sqlscript_quote_ident(&q, name);
    stm_buf_puts(&q, " AS t WHERE ");
    s_key_join(&q, x, false);
    stm_buf_puts(&q, ")");
    if (rc == STM_OK)
        rc = s_scan(x, &q, S_GONE, err);
    /* Cells it changed. */
    stm_buf_reset(&q);
    stm_buf_puts(&q, "SELECT ");
    s_row_columns(&q, x);
    buf_t differs = BUF_INIT;
    for (size_t i = 0; i < ncols; i++) {
        const catalog_column *c = stm_catalog_table_column(x->def, i);
        if (c->hidden)
            continue;
        stm_buf_puts(&q, ", ");
        buf_t e = BUF_INIT;
        if (c->pk) {
            stm_buf_puts(&e, "0");
        } else if (x->source[i]) {
            stm_buf_puts(&e, "(t.");
            stm_sqlscript_quote_ident(&e, c->name);
            stm_buf_puts(&e, " IS NOT s.");
            stm_sqlscript_quote_ident(&e, x->source[i]);
            stm_buf_puts(&e, ")");
        } else if (c->default_sql && !s_default_constant(c->default_sql)) {
            stm_buf_puts(&e, "1");
        } else {
            stm_buf_puts(&e, "(t.");
            stm_sqlscript_quote_ident(&e, c->name);
            stm_buf_printf(&e, " IS NOT (%s))", c->default_sql ? c->default_sql : "NULL");
        }
        stm_buf_puts(&q, stm_buf_str(&e));
        if (!c->pk) {
            stm_buf_puts(&differs, differs.len ? " OR " : "");
            stm_buf_puts(&differs, stm_buf_str(&e));
        }
        stm_buf_free(&e);
    }
    stm_buf_puts(&q, " FROM main.");
    stm_sqlscript_quote_ident(&q, name);
    stm_buf_printf(&q, " AS t JOIN temp.%s AS s ON ", x->copy->copy);
    s_key_join(&q, x, true);
    if (differs.len) {
        stm_buf_printf(&q, " WHERE %s", stm_buf_str(&differs));
        if (rc == STM_OK)
            rc = s_scan(x, &q, S_CHANGED, err);
    }
    stm_buf_free(&differs);
done:
    if (rc == STM_OK)
        rc = s_flush(x, err);
    if (rc == STM_OK && x->copy)
        rc = s_put_back(x, after, err);
    stm_buf_free(&q);
    return rc;
}

/* Where the rows of table name (of the version after the step) were before it: the
 * lenses follow renames and rebuilds; NULL for a table the step made, or dropped and
 * made again (its old rows are gone by the migration itself wherever it runs, and
 * older writes to them with it: apply_lens.c). */
static const char *s_source_of(const migrate_ops_t *m, const lens_set_t *lenses, int version,
                               const char *name)
{
    const char *source = NULL;
    if (lenses && version >= 2 &&
        stm_lens_translate_table(lenses, version, name, version - 1, &source))
        return source;
    return m->before && stm_catalog_find(m->before, name) &&
                   !(lenses && stm_lens_replaced(lenses, version, name))
               ? name
               : NULL;
}

/* Whether table name holds a row; true when SQLite cannot say (the caller looks). */
static bool s_has_rows(sqlite3 *db, const char *name)
{
    buf_t q = BUF_INIT;
    stm_buf_puts(&q, "SELECT 1 FROM main.");
    stm_sqlscript_quote_ident(&q, name);
    stm_buf_puts(&q, " LIMIT 1");
    sqlite3_stmt *st = NULL;
    int step = sqlite3_prepare_v2(db, stm_buf_str(&q), -1, &st, NULL) == SQLITE_OK
                   ? sqlite3_step(st)
                   : SQLITE_ERROR;
    sqlite3_finalize(st);
    stm_buf_free(&q);
    return step != SQLITE_DONE;
}

/* Whether any table of after may hold a row the step wrote: one whose rows it wrote
 * (copied before it did), or one it made that holds a row. Most steps of a real
 * history only change the schema: they need no transaction view at all. */
static bool s_any_written(const migrate_ops_t *m, const lens_set_t *lenses, int version,
                          const catalog_t *after)
{
    for (size_t i = 0; i < stm_catalog_count(after); i++) {
        const char *name = stm_catalog_table_name(stm_catalog_at(after, i));
        const char *source = s_source_of(m, lenses, version, name);
        if (source ? stm_migrate_ops_copy_of(m, source) != NULL : s_has_rows(m->db, name))
            return true;
    }
    return false;
}

/* stm_migrate_ops_record, and with own every row taken as new and the database's own
 * (stm_migrate_ops_record_rows). */
static stm_err s_record(migrate_ops_t *m, const lens_set_t *lenses, const lineage_t *lineage,
                        const catalog_t *now, int version, bool own, migrate_ops_stats *st,
                        stm_error *err)
{
    *st = (migrate_ops_stats){0};
    catalog_t *after = NULL;
    /* Only the tables the step changed are read again (catalog.h). */
    stm_err rc = STM_OK;
    if (now)
        after = stm_catalog_share(now);
    else
        rc = stm_catalog_read_since(m->db, m->before, &after, err);
    if (rc != STM_OK)
        return rc;
    if (!s_any_written(m, lenses, version, after)) {
        stm_catalog_destroy(&after);
        return STM_OK;
    }
    oplog_t *log = stm_oplog_new(m->store);
    txn_t *txn = stm_txn_new(m->store, log);
    stm_txn_read_since(txn, after);
    s_table x = {.m = m, .txn = txn, .lineage = lineage, .version = version, .own = own, .st = st};
    x.batch = stm_opbatch_new();
    if (sqlite3_prepare_v2(m->db,
                           "SELECT version FROM stemma_oplog WHERE origin = ?1 AND seq <= ?2 "
                           "ORDER BY seq DESC LIMIT 1",
                           -1, &x.version_of, NULL) != SQLITE_OK)
        rc = stm_store_error(m->store, err, "reading the oplog");
    /* Starts the transaction's view: the new schema, nothing queued (the step ran with
     * the triggers off). */
    if (rc == STM_OK)
        rc = stm_txn_collect(txn, err);
    for (size_t i = 0; i < stm_catalog_count(after) && rc == STM_OK; i++) {
        const catalog_table *def = stm_catalog_at(after, i);
        const char *name = stm_catalog_table_name(def);
        txn_table *table = stm_txn_table_find(txn, name);
        if (!table)
            continue;
        const char *source = s_source_of(m, lenses, version, name);
        const migops_copy *copy = source ? stm_migrate_ops_copy_of(m, source) : NULL;
        if (source && !copy)
            continue; /* rows of a table the step did not write */
        x.table = table;
        x.def = stm_txn_table_def(table);
        x.copy = copy;
        rc = s_table_ops(&x, lenses, after, err);
        for (size_t k = 0; k < x.nkeeps; k++) {
            free((void *)x.keeps[k].pk.bytes);
            free(x.keeps[k].column);
        }
        x.nkeeps = 0;
        free(x.source);
        free(x.fresh);
        x.source = NULL;
        x.fresh = NULL;
    }
    sqlite3_finalize(x.version_of);
    free(x.keeps);
    free(x.send);
    free(x.no_cache);
    free(x.num_cache);
    stm_opbatch_destroy(&x.batch);
    stm_txn_destroy(&txn);
    stm_oplog_destroy(&log);
    stm_catalog_destroy(&after);
    return rc;
}

stm_err stm_migrate_ops_record(migrate_ops_t *m, const lens_set_t *lenses, const lineage_t *lineage,
                               const catalog_t *now, int version, migrate_ops_stats *st,
                               stm_error *err)
{
    return s_record(m, lenses, lineage, now, version, false, st, err);
}

stm_err stm_migrate_ops_record_rows(store_t *store, const lineage_t *lineage, int version,
                                    migrate_ops_stats *st, stm_error *err)
{
    /* A watcher that watched nothing: no table has a copy or a schema before, so
     * every row of every synced table is one the "step" made (invariant 2). */
    migrate_ops_t *m = stm_migrate_ops_new(store, NULL, false);
    stm_err rc = s_record(m, NULL, lineage, NULL, version, true, st, err);
    stm_migrate_ops_destroy(&m);
    return rc;
}
