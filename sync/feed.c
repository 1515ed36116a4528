/* feed.c - a database's row changes in order of arrival and its vector, in memory
 * (feed.h has the invariants). */
#include "feed.h"
#include "base/mem.h"

#include <stdlib.h>
#include <string.h>

/* A row change told by an open transaction, added at its commit. */
typedef struct {
    int64_t origin;
    uint64_t seq, n;
} s_row;

/* A vector entry told at commit, set when the commit is told. */
typedef struct {
    stm_id origin;
    uint64_t seq;
} s_entry;

struct feed {
    store_t *store;    /* lent */
    stm_id *ids;       /* by stemma_ids number: the origins of the runs (zero: not known
                          here, asked of the store), so that walking a million runs fills
                          no cache of the store's */
    size_t ids_cap;
    feed_run *runs;    /* committed, in order of arrival (invariant 3) */
    size_t nruns, runs_cap;
    uint64_t changes;  /* row changes covered */
    s_row *rows;       /* told by the open transaction */
    size_t nrows, rows_cap;
    s_entry *entries;  /* its vector at commit */
    size_t nentries, entries_cap;
    vtrack_t *vector;  /* owned (invariant 4) */
    uint64_t epoch;    /* moved by each reload: positions of before mean nothing */
    txn_listener listener;
};

/* Adds a row change at the end: the last run grows when it continues it. */
static void s_add(feed_t *f, int64_t origin, uint64_t seq, uint64_t n)
{
    f->changes++;
    if (f->nruns) {
        feed_run *last = &f->runs[f->nruns - 1];
        if (last->origin == origin && last->first + last->count == seq) {
            last->count += n;
            return;
        }
    }
    f->runs = stm_grow(f->runs, &f->runs_cap, f->nruns + 1, sizeof *f->runs);
    f->runs[f->nruns++] = (feed_run){.first = seq, .origin = origin, .count = n};
}

/* Numbers are dense (stemma_ids counts from 1): one far beyond the count is not kept. */
static void s_know(feed_t *f, int64_t no, const stm_id *id)
{
    if (no < 1 || (uint64_t)no > 4 * (uint64_t)f->nruns + 65536)
        return;
    if ((size_t)no >= f->ids_cap) {
        /* A quarter more, not double: 32 bytes a number. */
        size_t was = f->ids_cap, cap = was + was / 4 + 256;
        cap = cap > (size_t)no + 1 ? cap : (size_t)no + 1;
        f->ids = stm_realloc(f->ids, cap * sizeof *f->ids);
        memset(f->ids + was, 0, (cap - was) * sizeof *f->ids);
        f->ids_cap = cap;
    }
    f->ids[no] = *id;
}

bool stm_feed_origin(const feed_t *f, int64_t no, stm_id *out)
{
    static const stm_id zero = {{0}};
    if (no < 1 || (size_t)no >= f->ids_cap || stm_id_equal(&f->ids[no], &zero))
        return false;
    *out = f->ids[no];
    return true;
}

/* ---- told by transactions ---- */

static void s_recorded(void *ctx, int64_t origin, const stm_id *id, uint64_t seq, uint64_t n)
{
    feed_t *f = ctx;
    s_know(f, origin, id);
    f->rows = stm_grow(f->rows, &f->rows_cap, f->nrows + 1, sizeof *f->rows);
    f->rows[f->nrows++] = (s_row){origin, seq, n};
}

static void s_vector(void *ctx, const stm_id *origin, uint64_t seq)
{
    feed_t *f = ctx;
    f->entries = stm_grow(f->entries, &f->entries_cap, f->nentries + 1, sizeof *f->entries);
    f->entries[f->nentries++] = (s_entry){*origin, seq};
}

static void s_ended(void *ctx, bool committed)
{
    feed_t *f = ctx;
    if (committed) {
        for (size_t i = 0; i < f->nrows; i++)
            s_add(f, f->rows[i].origin, f->rows[i].seq, f->rows[i].n);
        for (size_t i = 0; i < f->nentries; i++)
            stm_vtrack_set(f->vector, &f->entries[i].origin, f->entries[i].seq);
        stm_vtrack_settle(f->vector);
    }
    f->nrows = f->nentries = 0;
    /* A bulk transaction's list goes with it, not kept for the next. */
    if (f->rows_cap > 65536) {
        free(f->rows);
        f->rows = NULL;
        f->rows_cap = 0;
    }
}

/* ---- loading ---- */

/* A stored row change as loaded, ordered by clock. */
typedef struct {
    uint64_t hlc;
    int64_t origin;
    uint64_t seq, n;
} s_loaded;

static int s_by_clock(const void *a, const void *b)
{
    const s_loaded *x = a, *y = b;
    if (x->hlc != y->hlc)
        return x->hlc < y->hlc ? -1 : 1;
    if (x->origin != y->origin)
        return x->origin < y->origin ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static stm_err s_load(feed_t *f, store_t *from, stm_error *err)
{
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(stm_store_db(from), "SELECT hlc, origin, seq, n FROM stemma_oplog", -1,
                           &q, NULL) != SQLITE_OK)
        return stm_store_error(from, err, "reading the oplog");
    s_loaded *all = NULL;
    size_t n = 0, cap = 0;
    int step;
    while ((step = sqlite3_step(q)) == SQLITE_ROW) {
        all = stm_grow(all, &cap, n + 1, sizeof *all);
        all[n++] = (s_loaded){(uint64_t)sqlite3_column_int64(q, 0), sqlite3_column_int64(q, 1),
                              (uint64_t)sqlite3_column_int64(q, 2),
                              (uint64_t)sqlite3_column_int64(q, 3)};
    }
    sqlite3_finalize(q);
    if (step != SQLITE_DONE) {
        free(all);
        return stm_store_error(from, err, "reading the oplog");
    }
    if (n)
        qsort(all, n, sizeof *all, s_by_clock);
    /* The ids of the numbers, read in one pass (not one lookup a run). */
    if (sqlite3_prepare_v2(stm_store_db(from), "SELECT no, id FROM stemma_ids", -1, &q, NULL) !=
        SQLITE_OK) {
        free(all);
        return stm_store_error(from, err, "reading stemma_ids");
    }
    while ((step = sqlite3_step(q)) == SQLITE_ROW)
        if (sqlite3_column_bytes(q, 1) == STM_ID_BYTES)
            s_know(f, sqlite3_column_int64(q, 0), sqlite3_column_blob(q, 1));
    sqlite3_finalize(q);
    /* A row claiming no operation (damaged) still gets one: reading it says it is. */
    for (size_t i = 0; i < n; i++)
        s_add(f, all[i].origin, all[i].seq, all[i].n >= 1 && all[i].n <= UINT32_MAX ? all[i].n : 1);
    free(all);
    if (f->runs_cap > f->nruns + f->nruns / 8 + 1024) { /* what doubling left unused */
        f->runs_cap = f->nruns + f->nruns / 16 + 64;
        f->runs = stm_realloc(f->runs, f->runs_cap * sizeof *f->runs);
    }
    return STM_OK;
}

stm_err stm_feed_open(store_t *store, feed_t **out, stm_error *err)
{
    feed_t *f = stm_calloc(1, sizeof *f);
    f->store = store;
    f->vector = stm_vtrack_new();
    f->listener = (txn_listener){s_recorded, s_vector, s_ended, f};
    /* Read on a connection of its own, of SQLite's default cache: the whole oplog read
     * once would otherwise fill the store's (32 MiB) with pages nothing reads again. */
    store_t *from = NULL;
    stm_error ignored = {0};
    if (stm_store_open(stm_store_path(store), STORE_OPEN_READONLY, &from, &ignored) != STM_OK)
        from = NULL;
    stm_err rc = stm_vtrack_load(f->vector, from ? from : store, NULL, NULL, err);
    if (rc == STM_OK)
        rc = s_load(f, from ? from : store, err);
    stm_store_destroy(&from);
    if (rc != STM_OK) {
        stm_feed_destroy(&f);
        return rc;
    }
    *out = f;
    return STM_OK;
}

stm_err stm_feed_reload(feed_t *f, stm_error *err)
{
    f->nruns = 0;
    f->changes = 0;
    if (f->ids)
        memset(f->ids, 0, f->ids_cap * sizeof *f->ids);
    f->epoch++;
    stm_store_forget_ids(f->store); /* its numbers too may name other ids now */
    stm_err rc = s_load(f, f->store, err);
    size_t changed;
    if (rc == STM_OK)
        rc = stm_feed_sync(f, &changed, err);
    return rc;
}

uint64_t stm_feed_epoch(const feed_t *f)
{
    return f->epoch;
}

void stm_feed_destroy(feed_t **self_p)
{
    feed_t *f = *self_p;
    if (!f)
        return;
    free(f->runs);
    free(f->ids);
    free(f->rows);
    free(f->entries);
    stm_vtrack_destroy(&f->vector);
    free(f);
    *self_p = NULL;
}

store_t *stm_feed_store(const feed_t *f)
{
    return f->store;
}

void stm_feed_set_store(feed_t *f, store_t *store)
{
    f->store = store;
}

const txn_listener *stm_feed_listener(feed_t *f)
{
    return &f->listener;
}

/* ---- what other programs recorded ---- */

/* An origin whose entry moved in a sync. */
typedef struct {
    stm_id origin;
    uint64_t was;
} s_moved;

typedef struct {
    s_moved *list;
    size_t n, cap;
} s_moves;

static void s_on_moved(void *ctx, const stm_id *origin, uint64_t was, uint64_t now)
{
    s_moves *m = ctx;
    if (now <= was)
        return; /* fell (a database put back): nothing new to send of it */
    m->list = stm_grow(m->list, &m->cap, m->n + 1, sizeof *m->list);
    m->list[m->n++] = (s_moved){*origin, was};
}

/* Whether the database's vector may differ from the feed's: its entries counted and
 * summed by SQLite (one pass over stemma_vector, nothing copied) against the feed's. */
static stm_err s_may_differ(feed_t *f, bool *differ, stm_error *err)
{
    sqlite3_stmt *q = NULL;
    *differ = true;
    if (sqlite3_prepare_v2(stm_store_db(f->store),
                           "SELECT count(*) + 1, coalesce(sum(seq & 4294967295), 0) + "
                           "(SELECT seq & 4294967295 FROM stemma_local WHERE id = 1), "
                           "coalesce(sum(seq >> 32), 0) + (SELECT seq >> 32 FROM stemma_local "
                           "WHERE id = 1) FROM stemma_vector",
                           -1, &q, NULL) != SQLITE_OK)
        return stm_store_error(f->store, err, "reading the version vector");
    /* The remote entries and the local origin's (stm_vector_read's rows). A new origin
     * moves the old one into stemma_vector: the count differs. */
    if (sqlite3_step(q) == SQLITE_ROW) {
        size_t count;
        uint64_t lo, hi;
        stm_vtrack_sums(f->vector, &count, &lo, &hi);
        *differ = (uint64_t)sqlite3_column_int64(q, 0) != count ||
                  (uint64_t)sqlite3_column_int64(q, 1) != lo ||
                  (uint64_t)sqlite3_column_int64(q, 2) != hi;
    }
    sqlite3_finalize(q);
    return STM_OK;
}

stm_err stm_feed_sync(feed_t *f, size_t *changed, stm_error *err)
{
    *changed = 0;
    bool differ;
    stm_err rc = s_may_differ(f, &differ, err);
    if (rc != STM_OK || !differ)
        return rc;
    s_moves moves = {0};
    rc = stm_vtrack_load(f->vector, f->store, s_on_moved, &moves, err);
    sqlite3_stmt *q = NULL;
    if (rc == STM_OK && moves.n &&
        sqlite3_prepare_v2(stm_store_db(f->store),
                           "SELECT seq, n FROM stemma_oplog WHERE origin = ?1 AND seq > ?2 "
                           "ORDER BY seq",
                           -1, &q, NULL) != SQLITE_OK)
        rc = stm_store_error(f->store, err, "reading the oplog");
    for (size_t i = 0; i < moves.n && rc == STM_OK; i++) {
        int64_t no;
        rc = stm_store_id_number(f->store, &moves.list[i].origin, false, &no, err);
        if (rc != STM_OK || !no)
            continue;
        s_know(f, no, &moves.list[i].origin);
        sqlite3_bind_int64(q, 1, no);
        sqlite3_bind_int64(q, 2, (sqlite3_int64)moves.list[i].was);
        int step;
        while ((step = sqlite3_step(q)) == SQLITE_ROW)
            s_add(f, no, (uint64_t)sqlite3_column_int64(q, 0), (uint64_t)sqlite3_column_int64(q, 1));
        sqlite3_reset(q);
        if (step != SQLITE_DONE)
            rc = stm_store_error(f->store, err, "reading the oplog");
    }
    sqlite3_finalize(q);
    *changed = moves.n;
    free(moves.list);
    return rc;
}

/* ---- reading ---- */

size_t stm_feed_count(const feed_t *f)
{
    return f->nruns;
}

feed_run stm_feed_at(const feed_t *f, size_t i)
{
    return f->runs[i];
}

uint64_t stm_feed_changes(const feed_t *f)
{
    return f->changes;
}

const vtrack_t *stm_feed_vector(const feed_t *f)
{
    return f->vector;
}
