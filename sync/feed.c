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

/* Adds operations seq .. seq + n - 1 of origin at the end: the last run grows when it
 * continues it. */
static void s_append(feed_t *f, int64_t origin, uint64_t seq, uint64_t n)
{
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

/* Adds a row change at the end. */
static void s_add(feed_t *f, int64_t origin, uint64_t seq, uint64_t n)
{
    f->changes++;
    s_append(f, origin, seq, n);
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

/* A gap a compaction left (oplog.h, "Gaps"): sequences at or below the vector with no
 * row, of an origin numbered `origin`. */
typedef struct {
    int64_t origin;
    uint64_t seq, n;
} s_gap;

typedef struct {
    s_gap *list;
    size_t n, cap;
} s_gaps;

/* Notes first .. last of origin (cut at what the vector holds of it, upto) as a gap. */
static void s_note_gap(s_gaps *g, int64_t origin, uint64_t first, uint64_t last, uint64_t upto)
{
    if (last > upto)
        last = upto;
    if (first > last)
        return;
    g->list = stm_grow(g->list, &g->cap, g->n + 1, sizeof *g->list);
    g->list[g->n++] = (s_gap){origin, first, last - first + 1};
}

/* What the vector holds of origin number no (0: not known). */
static uint64_t s_upto(const feed_t *f, int64_t no)
{
    stm_id id;
    return stm_feed_origin(f, no, &id) ? stm_vtrack_get(f->vector, &id) : 0;
}

/* Every stored row change, by clock (invariant 1), after the gaps compaction left below
 * the vector (they name nothing a clock orders: a reader hands each out as pruned). The
 * rows come in the table's order, (origin, seq), which shows the gaps between them. */
static stm_err s_load(feed_t *f, store_t *from, stm_error *err)
{
    sqlite3_stmt *q = NULL;
    int step;
    /* The ids of the numbers, read in one pass (not one lookup a run). */
    if (sqlite3_prepare_v2(stm_store_db(from), "SELECT no, id FROM stemma_ids", -1, &q, NULL) !=
        SQLITE_OK)
        return stm_store_error(from, err, "reading stemma_ids");
    while ((step = sqlite3_step(q)) == SQLITE_ROW)
        if (sqlite3_column_bytes(q, 1) == STM_ID_BYTES)
            s_know(f, sqlite3_column_int64(q, 0), sqlite3_column_blob(q, 1));
    sqlite3_finalize(q);
    if (sqlite3_prepare_v2(stm_store_db(from),
                           "SELECT hlc, origin, seq, n FROM stemma_oplog ORDER BY origin, seq", -1,
                           &q, NULL) != SQLITE_OK)
        return stm_store_error(from, err, "reading the oplog");
    s_loaded *all = NULL;
    size_t n = 0, cap = 0;
    s_gaps gaps = {0};
    int64_t origin = 0;
    uint64_t next = 1, upto = 0; /* of origin: the first sequence no row covered yet */
    while ((step = sqlite3_step(q)) == SQLITE_ROW) {
        s_loaded row = {(uint64_t)sqlite3_column_int64(q, 0), sqlite3_column_int64(q, 1),
                        (uint64_t)sqlite3_column_int64(q, 2), (uint64_t)sqlite3_column_int64(q, 3)};
        /* A row claiming no operation (damaged) still gets one: reading it says it is. */
        if (row.n < 1 || row.n > UINT32_MAX)
            row.n = 1;
        if (row.origin != origin || !n) {
            if (n)
                s_note_gap(&gaps, origin, next, UINT64_MAX, upto);
            origin = row.origin, next = 1, upto = s_upto(f, origin);
        }
        if (row.seq > next)
            s_note_gap(&gaps, origin, next, row.seq - 1, upto);
        if (row.seq + row.n > next)
            next = row.seq + row.n;
        all = stm_grow(all, &cap, n + 1, sizeof *all);
        all[n++] = row;
    }
    sqlite3_finalize(q);
    if (n)
        s_note_gap(&gaps, origin, next, UINT64_MAX, upto);
    /* Origins held with no row at all: everything of theirs was pruned. */
    if (step == SQLITE_DONE &&
        sqlite3_prepare_v2(stm_store_db(from),
                           "SELECT no FROM stemma_ids AS i WHERE NOT EXISTS (SELECT 1 FROM "
                           "stemma_oplog AS o WHERE o.origin = i.no)",
                           -1, &q, NULL) == SQLITE_OK) {
        while ((step = sqlite3_step(q)) == SQLITE_ROW) {
            int64_t no = sqlite3_column_int64(q, 0);
            s_note_gap(&gaps, no, 1, UINT64_MAX, s_upto(f, no));
        }
        sqlite3_finalize(q);
    }
    if (step != SQLITE_DONE) {
        free(all);
        free(gaps.list);
        return stm_store_error(from, err, "reading the oplog");
    }
    for (size_t i = 0; i < gaps.n; i++)
        s_append(f, gaps.list[i].origin, gaps.list[i].seq, gaps.list[i].n);
    free(gaps.list);
    if (n)
        qsort(all, n, sizeof *all, s_by_clock);
    for (size_t i = 0; i < n; i++)
        s_add(f, all[i].origin, all[i].seq, all[i].n);
    free(all);
    if (f->runs_cap > f->nruns + f->nruns / 8 + 1024) { /* what doubling left unused */
        f->runs_cap = f->nruns + f->nruns / 16 + 64;
        f->runs = stm_realloc(f->runs, f->runs_cap * sizeof *f->runs);
    }
    return STM_OK;
}

/* Numbers every origin the vector holds operations of that has none: a stemma before
 * this one took pruned operations that continue what is held without a row or a number
 * (txn_record.c numbers them now), and the feed names a gap's origin by its number.
 * Through the store's connection (the feed's own is read-only); a database that cannot be
 * written keeps them unnumbered, and those gaps are not handed on until it can. */
static void s_number_held(feed_t *f)
{
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(stm_store_db(f->store),
                           "SELECT origin FROM stemma_vector AS v WHERE seq > 0 AND NOT EXISTS "
                           "(SELECT 1 FROM stemma_ids AS i WHERE i.id = v.origin)",
                           -1, &q, NULL) != SQLITE_OK)
        return;
    stm_id *ids = NULL;
    size_t n = 0, cap = 0;
    while (sqlite3_step(q) == SQLITE_ROW)
        if (sqlite3_column_bytes(q, 0) == STM_ID_BYTES) {
            ids = stm_grow(ids, &cap, n + 1, sizeof *ids);
            memcpy(ids[n++].bytes, sqlite3_column_blob(q, 0), STM_ID_BYTES);
        }
    sqlite3_finalize(q);
    stm_error ignored = {0};
    for (size_t i = 0; i < n; i++) {
        int64_t no;
        if (stm_store_id_number(f->store, &ids[i], true, &no, &ignored) != STM_OK)
            break;
    }
    free(ids);
}

stm_err stm_feed_open(store_t *store, feed_t **out, stm_error *err)
{
    feed_t *f = stm_calloc(1, sizeof *f);
    f->store = store;
    f->vector = stm_vtrack_new();
    f->listener = (txn_listener){s_recorded, s_vector, s_ended, f};
    /* Read on a connection of its own, of SQLite's default cache: the whole oplog read
     * once would otherwise fill the store's (32 MiB) with pages nothing reads again. */
    s_number_held(f);
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
    s_number_held(f);
    stm_err rc = stm_vtrack_load(f->vector, f->store, NULL, NULL, err);
    if (rc == STM_OK)
        rc = s_load(f, f->store, err);
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
    uint64_t was, now;
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
    m->list[m->n++] = (s_moved){*origin, was, now};
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
        /* Its rows above the old entry, and the gaps between them up to the new one:
         * operations pruned before they came here (a peer's pruned stand-ins, oplog.h). */
        uint64_t next = moves.list[i].was + 1, now = moves.list[i].now;
        int step;
        while ((step = sqlite3_step(q)) == SQLITE_ROW) {
            uint64_t seq = (uint64_t)sqlite3_column_int64(q, 0);
            uint64_t n = (uint64_t)sqlite3_column_int64(q, 1);
            if (seq > next && next <= now)
                s_append(f, no, next, (seq - 1 < now ? seq - 1 : now) - next + 1);
            s_add(f, no, seq, n);
            if (seq + n > next)
                next = seq + n;
        }
        if (step == SQLITE_DONE && next <= now)
            s_append(f, no, next, now - next + 1);
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
