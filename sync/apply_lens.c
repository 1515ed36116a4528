/* apply_lens.c - operations written at another version of the schema set, translated
 * into this database's names before they apply (apply.h, invariant 8; lineage/lens.h).
 *
 * An operation names its table and column as its writer's schema had them, and says
 * which version that was. When both that version and this database's are versions of
 * the schema set the applier was given, the lenses say which column here holds what
 * that column held there (renamed, rebuilt under another name, its table renamed): the
 * operation applies to it. What has no column here (added after this version, dropped
 * before it, computed) is left as written, and parks as before. The operations are
 * recorded as they came (they travel on, and are translated again wherever they
 * apply); only the copy that applies carries the names of here. */
#include "apply_internal.h"
#include "key.h"
#include "base/mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void stm_applier_set_branches(applier_t *a, apply_branch_fn fn, void *ctx)
{
    a->branch = fn;
    a->branch_ctx = ctx;
}

void stm_applier_set_lenses(applier_t *a, const lens_set_t *lenses, const lineage_t *set)
{
    a->lenses = lenses;
    a->set = set;
    a->here = 0;
    a->cached_number = 0;
}

/* The number of version id in the schema set, or 0 when it is none of its versions. */
static int s_number(applier_t *a, const stm_id *id)
{
    if (a->cached_number && stm_id_equal(&a->cached_id, id))
        return a->cached_number;
    int number = 0;
    for (size_t i = stm_lineage_count(a->set); i-- > 0 && !number;)
        if (stm_id_equal(&stm_lineage_version_at(a->set, i)->id, id))
            number = (int)i + 1;
    a->cached_id = *id;
    a->cached_number = number;
    return number;
}

stm_err stm_apply_ran(applier_t *a, const stm_id *version_id, bool *ran, stm_error *err)
{
    if (a->ran >= 0 && stm_id_equal(&a->ran_id, version_id)) {
        *ran = a->ran == 1;
        return STM_OK;
    }
    *ran = false;
    sqlite3 *db = stm_store_db(a->store);
    sqlite3_stmt *q = NULL;
    /* No schema_version: no migration was ever run here. */
    if (sqlite3_prepare_v2(db, "SELECT 1 FROM schema_version WHERE version_id = ?1", -1, &q,
                           NULL) == SQLITE_OK) {
        char hex[STM_ID_HEX_LEN + 1];
        stm_id_to_hex(version_id, hex);
        sqlite3_bind_text(q, 1, hex, -1, SQLITE_TRANSIENT);
        int step = sqlite3_step(q);
        *ran = step == SQLITE_ROW;
        sqlite3_finalize(q);
        if (step != SQLITE_ROW && step != SQLITE_DONE)
            return stm_store_error(a->store, err, "reading schema_version");
    }
    a->ran_id = *version_id;
    a->ran = *ran;
    return STM_OK;
}

void stm_apply_lens_begin(applier_t *a)
{
    a->here = 0;
    a->ran = -1;
    if (!a->lenses)
        return;
    stm_id id;
    stm_error err = {0};
    /* A database at no version of the set (unrelated, or newer than the directory)
     * translates nothing. */
    if (stm_store_version_id(a->store, &id, &err) == STM_OK) {
        a->cached_number = 0;
        a->here = s_number(a, &id);
    }
}

/* Whether column (table.column, or a whole table when column is NULL) is one of version
 * v's. */
static bool s_at(const applier_t *a, int v, const char *table, const char *column)
{
    const char *t, *c;
    if (column)
        return stm_lens_translate(a->lenses, v, table, column, v, &t, &c);
    return stm_lens_translate_table(a->lenses, v, table, v, &t);
}

/* Why a row change of a newer version's table, which is not the one of its name here,
 * parks whole: names the migration that made it anew, when one between did. */
static const char *s_another_table(applier_t *a, int from, const char *table)
{
    int by = 0;
    for (int v = a->here + 1; v <= from && !by; v++)
        if (stm_lens_replaced(a->lenses, v, table))
            by = v;
    if (by)
        snprintf(a->xwhy, sizeof a->xwhy,
                 "table %s of version %d is another table than the one here: migration %d "
                 "made it anew; the row waits whole for this database to migrate",
                 table, from, by);
    else
        snprintf(a->xwhy, sizeof a->xwhy,
                 "table %s of version %d is another table than the one here: the row waits "
                 "whole for this database to migrate",
                 table, from);
    return a->xwhy;
}

/* The key a row of the writer's version from, in its table wtable, has here in table
 * (this database's name): a rebuild that keys a table anew by some of its old key's
 * columns (komga 059: PAGE_HASH keyed by (HASH, MEDIA_TYPE, SIZE), then by HASH)
 * names each row by those columns' parts, as the rebuild carried it. True with *key
 * (its bytes lent by the applier until the next call) when the key here differs from
 * the writer's and every column of it is one of the writer's key columns under the
 * lenses; false when it is the same, or cannot be made (a key column here the writer
 * did not key by: such a row parks for its key, waiting for a migration). */
static bool s_rekey(applier_t *a, int from, const char *wtable, const char *table,
                    const op_value *pk, op_value *key)
{
    const txn_table *t = stm_txn_table_find(a->txn, table);
    const family_t *f = stm_lineage_family_find(a->set, wtable);
    const catalog_table *then = f ? stm_family_table_at(f, from) : NULL;
    if (!t || !then)
        return false;
    const catalog_table *def = stm_txn_table_def(t);
    size_t m = stm_txn_table_keys(t), nparts = 0;
    op_value parts[KEY_MAX_COLUMNS], chosen[KEY_MAX_COLUMNS];
    if (m == 0 || m > KEY_MAX_COLUMNS ||
        !stm_key_values(pk, parts, KEY_MAX_COLUMNS, &nparts) || nparts > KEY_MAX_COLUMNS)
        return false;
    bool same = m == nparts;
    for (size_t k = 0; k < m; k++) {
        const char *tf, *cf;
        const catalog_column *kc = stm_catalog_table_key(def, k);
        if (!kc || !stm_lens_translate(a->lenses, a->here, table, kc->name, from, &tf, &cf) ||
            strcasecmp(tf, wtable) != 0)
            return false;
        const catalog_column *wc = stm_catalog_table_find(then, cf);
        if (!wc || wc->pk < 1 || (size_t)wc->pk > nparts)
            return false;
        chosen[k] = parts[wc->pk - 1];
        same &= (size_t)wc->pk == k + 1;
    }
    if (same)
        return false;
    stm_buf_reset(&a->xkey);
    if (m == 1 && chosen[0].type != VALUE_KEY) {
        *key = chosen[0];
        if (key->bytes) { /* parts point into pk, which outlives the row change */
            stm_buf_append(&a->xkey, key->bytes, key->len);
            key->bytes = (const unsigned char *)a->xkey.data;
        }
    } else {
        stm_key_pack(chosen, m, &a->xkey);
        *key = (op_value){.type = VALUE_KEY, .bytes = a->xkey.data, .len = a->xkey.len};
    }
    return true;
}

/* A row change written on another branch: its names walked back through the branch to
 * the version it shares with the set, and on from there to this database's (a copy
 * lent until the next call, or ops itself when nothing changes). What has no column
 * here is left as written, and parks as before. */
static const op_t *const *s_translate_branch(applier_t *a, const op_t *const *ops, size_t n)
{
    size_t upto = 0;
    const lens_branch *b = a->branch(a->branch_ctx, &ops[0]->version_id, &upto);
    const char *tc, *cc, *table;
    if (!b || !stm_lens_walk_back(b, upto, ops[0]->table, NULL, &tc, NULL) ||
        !stm_lens_translate_table(a->lenses, b->base, tc, a->here, &table))
        return ops;
    if (n > a->xcap) {
        a->xops = stm_grow(a->xops, &a->xcap, n, sizeof *a->xops);
        a->xptrs = stm_realloc(a->xptrs, a->xcap * sizeof *a->xptrs);
        a->xgone = stm_realloc(a->xgone, a->xcap * sizeof *a->xgone);
    }
    bool changed = false;
    for (size_t i = 0; i < n; i++) {
        const char *t, *c;
        op_t *x = &a->xops[i];
        *x = *ops[i];
        a->xgone[i] = false;
        if (ops[i]->column &&
            stm_lens_walk_back(b, upto, ops[i]->table, ops[i]->column, &tc, &cc) &&
            stm_lens_translate(a->lenses, b->base, tc, cc, a->here, &t, &c) &&
            strcasecmp(t, table) == 0)
            x->column = c;
        x->table = table;
        a->xptrs[i] = x;
        changed |= x->table != ops[i]->table || x->column != ops[i]->column;
    }
    return changed ? a->xptrs : ops;
}

const op_t *const *stm_apply_translate(applier_t *a, const op_t *const *ops, size_t *n,
                                       uint64_t *gone, const char **park_whole)
{
    *gone = 0;
    *park_whole = NULL;
    if (!a->here || !*n)
        return ops;
    int from = s_number(a, &ops[0]->version_id);
    if (!from && a->branch)
        return s_translate_branch(a, ops, *n);
    if (!from || from == a->here)
        return ops;
    /* One row change, one table: where its rows are here. */
    const char *table;
    if (!stm_lens_translate_table(a->lenses, from, ops[0]->table, a->here, &table)) {
        /* A table of the writer's older version that a migration since dropped: none
         * here holds any of its values (one of its name here is another table, made
         * anew: lens.h LENS_REPLACED). The writer's own migration drops its rows too. */
        if (from < a->here && s_at(a, from, ops[0]->table, NULL)) {
            *gone = *n;
            *n = 0;
        } else if (from > a->here && s_at(a, from, ops[0]->table, NULL) &&
                   s_at(a, a->here, ops[0]->table, NULL)) {
            *park_whole = s_another_table(a, from, ops[0]->table);
        }
        return ops;
    }
    if (*n > a->xcap) {
        a->xops = stm_grow(a->xops, &a->xcap, *n, sizeof *a->xops);
        a->xptrs = stm_realloc(a->xptrs, a->xcap * sizeof *a->xptrs);
        a->xgone = stm_realloc(a->xgone, a->xcap * sizeof *a->xgone);
    }
    op_value key;
    bool rekeyed = s_rekey(a, from, ops[0]->table, table, &ops[0]->pk, &key);
    bool changed = rekeyed;
    for (size_t i = 0; i < *n; i++) {
        const char *t, *c;
        op_t *x = &a->xops[i];
        *x = *ops[i];
        if (rekeyed)
            x->pk = key;
        a->xgone[i] = false;
        if (ops[i]->column &&
            stm_lens_translate(a->lenses, from, ops[i]->table, ops[i]->column, a->here, &t, &c) &&
            strcasecmp(t, table) == 0) {
            x->column = c;
        } else if (ops[i]->column && from < a->here &&
                   s_at(a, from, ops[i]->table, ops[i]->column) &&
                   !s_at(a, a->here, table, ops[i]->column)) {
            /* A column of the writer's older version that a migration since dropped,
             * with none of its name here. (One whose values a migration replaced, under
             * its own name, still takes the write: if the writer's migration computes
             * another value from it, it sends that, migrate_ops.h.) */
            ++*gone;
            a->xgone[i] = changed = true;
        }
        x->table = table;
        a->xptrs[i] = x;
        changed |= x->table != ops[i]->table || x->column != ops[i]->column;
    }
    return changed ? a->xptrs : ops;
}

bool stm_apply_gone(const applier_t *a, const op_t *op)
{
    return a->xcap && op >= a->xops && op < a->xops + a->xcap && a->xgone[op - a->xops];
}

int stm_apply_made_by(applier_t *a, const stm_id *version_id, const char *table,
                      const char *column, int *writer)
{
    *writer = 0;
    if (!a->here || !a->lenses)
        return 0;
    int from = s_number(a, version_id);
    if (!from || from >= a->here || !s_at(a, a->here, table, column))
        return 0;
    const char *t, *c;
    if (stm_lens_translate(a->lenses, a->here, table, column, from, &t, &c))
        return 0;
    *writer = from;
    for (int v = from + 1; v < a->here; v++)
        if (stm_lens_translate(a->lenses, a->here, table, column, v, &t, &c))
            return v;
    return a->here;
}


/* The column (of t) a NOT NULL refusal names, or NULL. */
static const catalog_column *s_refused_column(const txn_table *t, const char *refused)
{
    static const char nn[] = "NOT NULL constraint failed: ";
    const char *table = stm_catalog_table_name(stm_txn_table_def(t));
    size_t tl = strlen(table);
    if (strncmp(refused, nn, sizeof nn - 1) != 0)
        return NULL;
    refused += sizeof nn - 1;
    if (strncasecmp(refused, table, tl) != 0 || refused[tl] != '.')
        return NULL;
    return stm_catalog_table_find(stm_txn_table_def(t), refused + tl + 1);
}

/* The default column col (of t here) was added with by a migration since the writer's
 * version, evaluated into *value (its bytes, if any, the caller's to free): false when
 * it was not added so (computed, or no default), or the writer's version is not
 * older. */
static bool s_added_default(applier_t *a, const txn_table *t, const catalog_column *col,
                            op_value *value)
{
    if (!a->lenses || !a->here || !a->writer)
        return false;
    const char *table = stm_catalog_table_name(stm_txn_table_def(t));
    int writer = 0, made = stm_apply_made_by(a, a->writer, table, col->name, &writer);
    const char *tv, *cv;
    if (!made || !stm_lens_translate(a->lenses, a->here, table, col->name, made, &tv, &cv))
        return false;
    size_t n;
    const lens_change *c = stm_lens_changes(a->lenses, made, &n);
    bool added = false;
    for (size_t i = 0; i < n && !added; i++)
        added = c[i].kind == LENS_ADDED && c[i].column && strcasecmp(c[i].table, tv) == 0 &&
                strcasecmp(c[i].column, cv) == 0;
    const family_t *f = added ? stm_lineage_family_find(a->set, tv) : NULL;
    const catalog_table *def = f ? stm_family_table_at(f, made) : NULL;
    const catalog_column *then = def ? stm_catalog_table_find(def, cv) : NULL;
    if (!then || !then->default_sql)
        return false;
    /* The default's text is the schema set's (its own migrations), never a peer's. */
    buf_t sql = BUF_INIT;
    stm_buf_printf(&sql, "SELECT %s", then->default_sql);
    sqlite3_stmt *q = NULL;
    bool ok = sqlite3_prepare_v2(a->db, stm_buf_str(&sql), -1, &q, NULL) == SQLITE_OK &&
              sqlite3_step(q) == SQLITE_ROW && sqlite3_column_type(q, 0) != SQLITE_NULL;
    if (ok) {
        stm_op_value_column(q, 0, value);
        if (value->bytes) {
            void *copy = stm_malloc(value->len + 1);
            memcpy(copy, value->bytes, value->len);
            value->bytes = copy;
        }
    }
    sqlite3_finalize(q);
    stm_buf_free(&sql);
    return ok;
}

int stm_apply_insert_filled(applier_t *a, const txn_table *t, row_kind kind, const op_value *pk,
                            const row_cell *cells, size_t n, char **refused)
{
    int step = stm_rowsql_run(a->rowsql, t, kind, pk, cells, n, refused);
    size_t ncols = stm_catalog_table_count(stm_txn_table_def(t)), nowned = 0;
    const void **owned = NULL; /* the filled values' bytes */
    while (*refused && step == SQLITE_CONSTRAINT_NOTNULL && n < ncols) {
        const catalog_column *col = s_refused_column(t, *refused);
        op_value value;
        if (!col || !s_added_default(a, t, col, &value))
            break;
        if (!owned) {
            owned = stm_calloc(ncols + 1, sizeof *owned);
            a->fill = stm_grow(a->fill, &a->fill_cap, ncols + 1, sizeof *a->fill);
            memcpy(a->fill, cells, n * sizeof *cells);
        }
        owned[nowned++] = value.bytes;
        a->fill[n++] = (row_cell){col, stm_rowsql_position(t, col), 0, value};
        stm_rowsql_sort(a->fill, n);
        free(*refused);
        *refused = NULL;
        step = stm_rowsql_run(a->rowsql, t, kind, pk, a->fill, n, refused);
    }
    for (size_t i = 0; i < nowned; i++)
        free((void *)owned[i]);
    free(owned);
    return step;
}

bool stm_apply_translate_copy(applier_t *a, const op_t *op, opbatch_t *out)
{
    /* Scratch of its own for this one: what the caller translated stays put. */
    op_t *xops = a->xops;
    const op_t **xptrs = a->xptrs;
    bool *xgone = a->xgone;
    size_t xcap = a->xcap;
    buf_t xkey = a->xkey;
    a->xops = NULL;
    a->xptrs = NULL;
    a->xgone = NULL;
    a->xcap = 0;
    a->xkey = (buf_t)BUF_INIT;
    size_t n = 1;
    uint64_t gone = 0;
    const char *whole = NULL;
    const op_t *one[1] = {op};
    const op_t *const *here = stm_apply_translate(a, one, &n, &gone, &whole);
    bool copied = n == 1 && !whole && !stm_apply_gone(a, here[0]);
    if (copied)
        stm_opbatch_add(out, here[0]);
    free(a->xops);
    free(a->xptrs);
    free(a->xgone);
    stm_buf_free(&a->xkey);
    a->xops = xops;
    a->xptrs = xptrs;
    a->xgone = xgone;
    a->xcap = xcap;
    a->xkey = xkey;
    return copied;
}
