/* dropped.c - what a rollback step drops, kept to come back (dropped.h). */
#include "dropped.h"
#include "oplog.h"
#include "park.h"
#include "rowclock.h"
#include "base/buf.h"
#include "base/mem.h"
#include "lineage/syncable.h"

#include <stdio.h>
#include <stdlib.h>

/* The write behind a cell taken out of stemma_clock. */
typedef struct {
    int64_t origin; /* stemma_ids number */
    uint64_t seq;
} s_taken;

/* One table swept (stemma_dropped's user data). */
typedef struct {
    store_t *store;            /* whose ids the clocks number */
    const catalog_table *now;  /* the table as it is now; NULL when it was dropped */
    bool replaced;             /* ... or replaced: its deletes go too (dropped.h) */
    s_taken *taken;            /* the writes taken out, to park */
    size_t ntaken, cap;        /* entries in taken, room */
    stm_err rc;                /* a failure inside the function */
    stm_error *err;            /* where it says why */
} s_sweep;

/* True when the write (hlc, origin) is later than entry e (by (hlc, origin id), as
 * apply.h compares writes). */
static bool s_later(s_sweep *s, uint64_t hlc, int64_t origin, const rowclock_entry *e)
{
    if (hlc != e->hlc || origin == e->origin)
        return hlc > e->hlc;
    stm_id a, b;
    if (s->rc == STM_OK)
        s->rc = stm_store_id_of(s->store, origin, &a, s->err);
    if (s->rc == STM_OK)
        s->rc = stm_store_id_of(s->store, e->origin, &b, s->err);
    return s->rc == STM_OK && stm_op_clock_compare(hlc, &a, e->hlc, &b) > 0;
}

/* stemma_dropped(cells): the row's clocks without the cells of columns the table no
 * longer has, the latest of their writes counted as the row's latest parked one; the
 * same bytes when it has none. A value that is no clock is left as it is. */
static void s_sweep_fn(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    (void)argc;
    s_sweep *s = sqlite3_user_data(ctx);
    rowclock_t in = {0}, out = {0};
    if (!stm_rowclock_decode(&in, sqlite3_value_blob(argv[0]),
                             (size_t)sqlite3_value_bytes(argv[0]))) {
        sqlite3_result_value(ctx, argv[0]);
        stm_rowclock_free(&in);
        return;
    }
    const rowclock_entry *was = stm_rowclock_find(&in, ROWCLOCK_PARKED, NULL);
    rowclock_entry parked = was ? *was : (rowclock_entry){0};
    bool has_parked = was != NULL, changed = false;
    for (size_t i = 0; i < in.count; i++) {
        const rowclock_entry *e = &in.entries[i];
        const char *name = e->kind == ROWCLOCK_CELL ? stm_rowclock_name(&in, e) : NULL;
        if (name && (!s->now || !stm_catalog_table_find(s->now, name))) {
            s->taken = stm_grow(s->taken, &s->cap, s->ntaken + 1, sizeof *s->taken);
            s->taken[s->ntaken++] = (s_taken){e->origin, e->seq};
            if (!has_parked || s_later(s, e->hlc, e->origin, &parked))
                parked = *e;
            has_parked = changed = true;
        } else if (e->kind == ROWCLOCK_DELETE && s->replaced) {
            /* The table comes back empty and its clocks are forgotten when the
             * migration runs again (carry.h): the delete replays with the writes. */
            s->taken = stm_grow(s->taken, &s->cap, s->ntaken + 1, sizeof *s->taken);
            s->taken[s->ntaken++] = (s_taken){e->origin, e->seq};
            changed = true;
        } else if (e->kind != ROWCLOCK_PARKED) {
            stm_rowclock_set(&out, e->kind, name, e->hlc, e->origin, e->seq);
        }
    }
    if (!changed) {
        sqlite3_result_value(ctx, argv[0]);
    } else {
        if (has_parked)
            stm_rowclock_set(&out, ROWCLOCK_PARKED, NULL, parked.hlc, parked.origin, parked.seq);
        buf_t b = BUF_INIT;
        stm_rowclock_encode(&out, &b);
        sqlite3_result_blob(ctx, b.data, (int)b.len, SQLITE_TRANSIENT);
        stm_buf_free(&b);
    }
    stm_rowclock_free(&in);
    stm_rowclock_free(&out);
}

/* Takes the cells of table that s->now lacks out of its rows' clocks, noting their
 * writes in s. */
static stm_err s_sweep_table(s_sweep *s, const char *table)
{
    sqlite3 *db = stm_store_db(s->store);
    if (sqlite3_create_function(db, "stemma_dropped", 1, SQLITE_UTF8, s, s_sweep_fn, NULL,
                                NULL) != SQLITE_OK)
        return stm_store_error(s->store, s->err, "keeping what the rollback drops");
    sqlite3_stmt *st = NULL;
    stm_err rc = STM_OK;
    if (sqlite3_prepare_v2(db, "UPDATE stemma_clock SET cells = stemma_dropped(cells) WHERE tbl = ?1",
                           -1, &st, NULL) != SQLITE_OK) {
        rc = stm_store_error(s->store, s->err, "keeping what the rollback drops");
    } else {
        sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = stm_store_error(s->store, s->err, "keeping what the rollback drops");
        rc = rc == STM_OK ? s->rc : rc;
    }
    sqlite3_finalize(st);
    sqlite3_create_function(db, "stemma_dropped", 1, SQLITE_UTF8, NULL, NULL, NULL, NULL);
    return rc;
}

/* Parks the writes s took out, for reason; adds to *parked. */
static stm_err s_park_taken(s_sweep *s, oplog_t *log, park_t *park, const char *reason,
                            uint64_t *parked)
{
    opbatch_t *batch = stm_opbatch_new();
    stm_err rc = STM_OK;
    for (size_t i = 0; i < s->ntaken && rc == STM_OK; i++) {
        stm_id origin;
        bool found = false;
        stm_opbatch_clear(batch);
        rc = stm_store_id_of(s->store, s->taken[i].origin, &origin, s->err);
        if (rc == STM_OK)
            rc = stm_oplog_fetch(log, &origin, s->taken[i].seq, batch, &found, s->err);
        /* Not held (never, for a cell's latest write): nothing to bring back. */
        if (rc == STM_OK && found)
            rc = stm_park_op(park, stm_opbatch_at(batch, 0), PARK_SCHEMA, reason, s->err);
        *parked += rc == STM_OK && found;
    }
    stm_opbatch_destroy(&batch);
    return rc;
}

/* True when now lacks a column t has. */
static bool s_lost_column(const catalog_table *t, const catalog_table *now)
{
    for (size_t i = 0; i < stm_catalog_table_count(t); i++)
        if (!stm_catalog_table_find(now, stm_catalog_table_column(t, i)->name))
            return true;
    return false;
}

stm_err stm_dropped_park(store_t *store, const catalog_t *before, int version,
                         const lens_set_t *lenses, uint64_t *parked, stm_error *err)
{
    *parked = 0;
    catalog_t *after = NULL;
    stm_err rc = stm_catalog_read(stm_store_db(store), &after, err);
    if (rc != STM_OK)
        return rc;
    oplog_t *log = stm_oplog_new(store);
    park_t *park = stm_park_new(store, log, NULL, NULL);
    /* The tables that lost columns or went, then those that came (a rename: their
     * clocks were carried to the new name, and may hold cells it lacks). */
    size_t nbefore = stm_catalog_count(before), nafter = stm_catalog_count(after);
    for (size_t i = 0; i < nbefore + nafter && rc == STM_OK; i++) {
        const catalog_table *t =
            i < nbefore ? stm_catalog_at(before, i) : stm_catalog_at(after, i - nbefore);
        const char *name = stm_catalog_table_name(t);
        const catalog_table *now = stm_catalog_find(after, name);
        /* Replaced by the migration: the table of its name now is another. */
        bool replaced = i < nbefore && now && lenses && stm_lens_replaced(lenses, version, name);
        if (replaced)
            now = NULL;
        if (stm_syncable_is_own(name) ||
            (i < nbefore && now && !s_lost_column(t, now)) ||
            (i >= nbefore && stm_catalog_find(before, name)))
            continue;
        s_sweep s = {.store = store, .now = now, .replaced = replaced, .err = err};
        rc = s_sweep_table(&s, name);
        char reason[96];
        snprintf(reason, sizeof reason, "the rollback of version %d dropped its %s", version,
                 now ? "column" : "table");
        if (rc == STM_OK)
            rc = s_park_taken(&s, log, park, reason, parked);
        free(s.taken);
    }
    stm_park_destroy(&park);
    stm_oplog_destroy(&log);
    stm_catalog_destroy(&after);
    return rc;
}
