/* migrate_ops.c - a migration step watched, and each synced table copied before the
 * step first writes it (migrate_ops.h, invariant 1); migrate_ops_record.c does the rest. */
#include "migrate_ops_internal.h"
#include "capture.h"
#include "key.h"
#include "oplog.h"
#include "txn.h"
#include "base/buf.h"
#include "base/mem.h"
#include "lineage/catalog.h"
#include "lineage/sqlscript.h"
#include "lineage/syncable.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- (1) copies ---- */

static bool s_listed(char *const *names, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcasecmp(names[i], name) == 0)
            return true;
    return false;
}

const migops_copy *stm_migrate_ops_copy_of(const migrate_ops_t *m, const char *table)
{
    for (size_t i = 0; i < m->ncopies; i++)
        if (strcasecmp(m->copies[i].table, table) == 0)
            return &m->copies[i];
    return NULL;
}

static int s_authorize(void *ctx, int action, const char *a1, const char *a2, const char *db,
                       const char *trigger)
{
    (void)a2, (void)trigger;
    migrate_ops_t *m = ctx;
    if (action != SQLITE_INSERT && action != SQLITE_UPDATE && action != SQLITE_DELETE &&
        action != SQLITE_DROP_TABLE)
        return SQLITE_OK;
    if (!a1 || !db || strcmp(db, "main") != 0 || s_listed(m->pending, m->npending, a1))
        return SQLITE_OK;
    const catalog_table *t = m->before ? stm_catalog_find(m->before, a1) : NULL;
    if (!t || stm_syncable_classify(t, false) != SYNCABLE_SYNCED || stm_migrate_ops_copy_of(m, a1))
        return SQLITE_OK;
    m->pending = stm_grow(m->pending, &m->pending_cap, m->npending + 1, sizeof *m->pending);
    m->pending[m->npending++] = stm_strdup(a1);
    return SQLITE_OK;
}

static stm_err s_exec(migrate_ops_t *m, const char *sql, stm_error *err)
{
    if (sqlite3_exec(m->db, sql, NULL, NULL, NULL) != SQLITE_OK)
        return stm_store_error(m->store, err, "copying a table a migration writes");
    return STM_OK;
}

/* Copies table (as it is now: earlier statements of the step may have altered it). */
static stm_err s_take_copy(migrate_ops_t *m, const char *table, stm_error *err)
{
    migops_copy c = {0};
    c.table = stm_strdup(table);
    buf_t name = BUF_INIT, sql = BUF_INIT;
    stm_buf_printf(&name, "stemma_step_copy_%zu", m->ncopies);
    c.copy = stm_strdup(stm_buf_str(&name));
    stm_buf_printf(&sql, "CREATE TEMP TABLE %s AS SELECT * FROM main.", c.copy);
    stm_sqlscript_quote_ident(&sql, table);
    stm_err rc = s_exec(m, stm_buf_str(&sql), err);
    /* Its columns as the copy has them, and the key as the table has it now. */
    sqlite3_stmt *st = NULL;
    if (rc == STM_OK) {
        stm_buf_reset(&sql);
        stm_buf_puts(&sql, "SELECT name, pk FROM pragma_table_info(?1, 'main')");
        if (sqlite3_prepare_v2(m->db, stm_buf_str(&sql), -1, &st, NULL) != SQLITE_OK)
            rc = stm_store_error(m->store, err, "reading a table a migration writes");
    }
    if (rc == STM_OK) {
        sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
        size_t cols_cap = 0, keys_cap = 0;
        int *pk = NULL;
        size_t pk_cap = 0;
        while (sqlite3_step(st) == SQLITE_ROW) {
            const char *col = (const char *)sqlite3_column_text(st, 0);
            c.cols = stm_grow(c.cols, &cols_cap, c.ncols + 1, sizeof *c.cols);
            pk = stm_grow(pk, &pk_cap, c.ncols + 1, sizeof *pk);
            pk[c.ncols] = sqlite3_column_int(st, 1);
            c.cols[c.ncols++] = stm_strdup(col ? col : "");
        }
        for (int k = 1; k <= (int)c.ncols; k++)
            for (size_t i = 0; i < c.ncols; i++)
                if (pk[i] == k) {
                    c.keys = stm_grow(c.keys, &keys_cap, c.nkeys + 1, sizeof *c.keys);
                    c.keys[c.nkeys++] = stm_strdup(c.cols[i]);
                }
        free(pk);
    }
    sqlite3_finalize(st);
    if (rc == STM_OK && c.nkeys) {
        stm_buf_reset(&sql);
        stm_buf_printf(&sql, "CREATE INDEX temp.%s_key ON %s (", c.copy, c.copy);
        for (size_t k = 0; k < c.nkeys; k++) {
            if (k)
                stm_buf_puts(&sql, ", ");
            stm_sqlscript_quote_ident(&sql, c.keys[k]);
        }
        stm_buf_puts(&sql, ")");
        rc = s_exec(m, stm_buf_str(&sql), err);
    }
    stm_buf_free(&name);
    stm_buf_free(&sql);
    m->copies = stm_grow(m->copies, &m->copies_cap, m->ncopies + 1, sizeof *m->copies);
    m->copies[m->ncopies++] = c; /* kept even when it failed: destroy drops it */
    return rc;
}

/* sqlscript_before_fn: copies what the statement about to run writes first. */
static stm_err s_before(void *ctx, stm_error *err)
{
    migrate_ops_t *m = ctx;
    stm_err rc = STM_OK;
    /* The copies run SQL of their own: what they prepare is not the step's. */
    sqlite3_set_authorizer(m->db, NULL, NULL);
    for (size_t i = 0; i < m->npending; i++) {
        if (rc == STM_OK && !stm_migrate_ops_copy_of(m, m->pending[i]))
            rc = s_take_copy(m, m->pending[i], err);
        free(m->pending[i]);
    }
    m->npending = 0;
    sqlite3_set_authorizer(m->db, s_authorize, m);
    return rc;
}

migrate_ops_t *stm_migrate_ops_new(store_t *store, const catalog_t *since, bool since_is_now)
{
    migrate_ops_t *m = stm_calloc(1, sizeof *m);
    m->store = store;
    m->db = stm_store_db(store);
    m->since = since;
    m->since_is_now = since && since_is_now;
    return m;
}

void stm_migrate_ops_destroy(migrate_ops_t **self_p)
{
    migrate_ops_t *m = *self_p;
    if (!m)
        return;
    for (size_t i = 0; i < m->ncopies; i++) {
        migops_copy *c = &m->copies[i];
        char sql[96];
        snprintf(sql, sizeof sql, "DROP TABLE IF EXISTS temp.%s", c->copy);
        sqlite3_exec(m->db, sql, NULL, NULL, NULL);
        for (size_t k = 0; k < c->ncols; k++)
            free(c->cols[k]);
        for (size_t k = 0; k < c->nkeys; k++)
            free(c->keys[k]);
        free(c->cols);
        free(c->keys);
        free(c->table);
        free(c->copy);
    }
    for (size_t i = 0; i < m->npending; i++)
        free(m->pending[i]);
    free(m->pending);
    free(m->copies);
    stm_catalog_destroy(&m->before);
    free(m);
    *self_p = NULL;
}

stm_err stm_migrate_ops_run(migrate_ops_t *m, const char *file, const char *sql, stm_error *err)
{
    stm_catalog_destroy(&m->before);
    stm_err rc = STM_OK;
    if (m->since_is_now)
        m->before = stm_catalog_share(m->since);
    else
        rc = stm_catalog_read_since(m->db, m->since, &m->before, err);
    if (rc != STM_OK)
        return rc;
    sqlite3_set_authorizer(m->db, s_authorize, m);
    rc = stm_sqlscript_run_each(m->db, file, sql, 0, s_before, m, err);
    sqlite3_set_authorizer(m->db, NULL, NULL);
    return rc;
}
