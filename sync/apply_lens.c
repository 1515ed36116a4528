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
#include "base/mem.h"

#include <string.h>
#include <strings.h>

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

const op_t *const *stm_apply_translate(applier_t *a, const op_t *const *ops, size_t *n,
                                       uint64_t *gone)
{
    *gone = 0;
    if (!a->here || !*n)
        return ops;
    int from = s_number(a, &ops[0]->version_id);
    if (!from || from == a->here)
        return ops;
    /* One row change, one table: where its rows are here. */
    const char *table;
    if (!stm_lens_translate_table(a->lenses, from, ops[0]->table, a->here, &table)) {
        /* A table of the writer's older version that a migration since dropped (and
         * none of its name here). */
        if (from < a->here && s_at(a, from, ops[0]->table, NULL) &&
            !s_at(a, a->here, ops[0]->table, NULL)) {
            *gone = *n;
            *n = 0;
        }
        return ops;
    }
    if (*n > a->xcap) {
        a->xops = stm_grow(a->xops, &a->xcap, *n, sizeof *a->xops);
        a->xptrs = stm_realloc(a->xptrs, a->xcap * sizeof *a->xptrs);
        a->xgone = stm_realloc(a->xgone, a->xcap * sizeof *a->xgone);
    }
    bool changed = false;
    for (size_t i = 0; i < *n; i++) {
        const char *t, *c;
        op_t *x = &a->xops[i];
        *x = *ops[i];
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


const char *stm_apply_local_column(applier_t *a, const op_t *op, const char **table)
{
    *table = op->table;
    int from = a->here && op->column ? s_number(a, &op->version_id) : 0;
    if (!from || from == a->here)
        return op->column;
    const char *t, *c;
    if (!stm_lens_translate(a->lenses, from, op->table, op->column, a->here, &t, &c))
        return NULL;
    *table = t;
    return c;
}
