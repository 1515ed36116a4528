/* carry.c - a migration's renames carried into stemma's own tables (carry.h). */
#include "carry.h"
#include "rowclock.h"
#include "base/buf.h"
#include "base/mem.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* One table's renames: its columns' old and new names (lent by the lens set). */
typedef struct {
    const char **from, **to;
    size_t count, cap;
} s_renames;

/* stemma_carry(cells): the clocks with every renamed column's entry under its new
 * name; the same bytes when none is renamed. A value that is no clock is left as it is
 * (a damaged row is not made worse). */
static void s_carry_fn(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    (void)argc;
    const s_renames *r = sqlite3_user_data(ctx);
    const void *data = sqlite3_value_blob(argv[0]);
    size_t len = (size_t)sqlite3_value_bytes(argv[0]);
    rowclock_t in = {0}, out = {0};
    if (!stm_rowclock_decode(&in, data, len)) {
        sqlite3_result_value(ctx, argv[0]);
        stm_rowclock_free(&in);
        return;
    }
    for (size_t i = 0; i < in.count; i++) {
        const rowclock_entry *e = &in.entries[i];
        const char *name = e->kind == ROWCLOCK_CELL ? stm_rowclock_name(&in, e) : NULL;
        for (size_t k = 0; name && k < r->count; k++)
            if (strcasecmp(name, r->from[k]) == 0) {
                name = r->to[k];
                break;
            }
        stm_rowclock_set(&out, e->kind, name, e->hlc, e->origin, e->seq);
    }
    buf_t b = BUF_INIT;
    stm_rowclock_encode(&out, &b);
    sqlite3_result_blob(ctx, b.data, (int)b.len, SQLITE_TRANSIENT);
    stm_buf_free(&b);
    stm_rowclock_free(&in);
    stm_rowclock_free(&out);
}

/* Carries one table's clocks in the two tables that hold clocks. */
static stm_err s_carry_table(store_t *store, const char *from, const char *to,
                             const s_renames *r, stm_error *err)
{
    sqlite3 *db = stm_store_db(store);
    if (sqlite3_create_function(db, "stemma_carry", 1, SQLITE_UTF8, (void *)r, s_carry_fn, NULL,
                                NULL) != SQLITE_OK)
        return stm_store_error(store, err, "carrying clocks to renamed columns");
    static const char *const sql[] = {
        "UPDATE stemma_clock SET tbl = ?2, cells = stemma_carry(cells) WHERE tbl = ?1",
        "UPDATE stemma_conflicts SET tbl = ?2, cells = stemma_carry(cells) WHERE tbl = ?1"};
    stm_err rc = STM_OK;
    for (size_t i = 0; i < sizeof sql / sizeof sql[0] && rc == STM_OK; i++) {
        sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(db, sql[i], -1, &st, NULL) != SQLITE_OK) {
            rc = stm_store_error(store, err, "carrying clocks to renamed columns");
            break;
        }
        sqlite3_bind_text(st, 1, from, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, to, -1, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = stm_store_error(store, err, "carrying clocks to renamed columns");
        sqlite3_finalize(st);
    }
    sqlite3_create_function(db, "stemma_carry", 1, SQLITE_UTF8, NULL, NULL, NULL, NULL);
    return rc;
}

/* Forgets the clocks of a table the step dropped and made anew under its name
 * (LENS_REPLACED): they are another table's rows. Writes parked here for the new one
 * (from devices past the step) keep their operations in stemma_parked and record their
 * clocks again when they replay after the step. (Its rollback parks the new table's
 * cells instead, to come back: dropped.h.) */
static stm_err s_forget_table(store_t *store, const char *table, stm_error *err)
{
    sqlite3 *db = stm_store_db(store);
    static const char *const sql[] = {"DELETE FROM stemma_clock WHERE tbl = ?1",
                                      "DELETE FROM stemma_conflicts WHERE tbl = ?1"};
    stm_err rc = STM_OK;
    for (size_t i = 0; i < sizeof sql / sizeof sql[0] && rc == STM_OK; i++) {
        sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(db, sql[i], -1, &st, NULL) != SQLITE_OK)
            return stm_store_error(store, err, "forgetting the clocks of a replaced table");
        sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = stm_store_error(store, err, "forgetting the clocks of a replaced table");
        sqlite3_finalize(st);
    }
    return rc;
}

stm_err stm_carry_renames(store_t *store, const lens_set_t *lenses, int from, int to,
                          stm_error *err)
{
    stm_err rc = STM_OK;
    size_t n = stm_lens_column_count(lenses, from), i = 0;
    s_renames r = {0};
    /* The columns come by table: one table at a time. */
    while (i < n && rc == STM_OK) {
        const char *table, *column, *to_table, *t, *c;
        stm_lens_column_at(lenses, from, i, &table, &column);
        bool moves = stm_lens_translate_table(lenses, from, table, to, &to_table);
        r.count = 0;
        for (; i < n; i++) {
            const char *tb;
            stm_lens_column_at(lenses, from, i, &tb, &column);
            if (strcasecmp(tb, table) != 0)
                break;
            if (moves && stm_lens_translate(lenses, from, table, column, to, &t, &c) &&
                strcasecmp(t, to_table) == 0 && strcmp(c, column) != 0) {
                if (r.count == r.cap) {
                    r.from = stm_grow(r.from, &r.cap, r.count + 1, sizeof *r.from);
                    r.to = stm_realloc(r.to, r.cap * sizeof *r.to);
                }
                r.from[r.count] = column;
                r.to[r.count++] = c;
            }
        }
        if (moves && (r.count || strcmp(to_table, table) != 0))
            rc = s_carry_table(store, table, to_table, &r, err);
        else if (!moves && to > from && stm_lens_replaced(lenses, to, table))
            rc = s_forget_table(store, table, err);
    }
    free(r.from);
    free(r.to);
    return rc;
}
