/* park_watch.c - what operations parked for a constraint wait for, as far as a
 * transaction knows, and waking them when it writes what they wait for (park.h,
 * invariants 4 and 5).
 *
 * Operations parked for a constraint are found by what they wait for (invariant 4):
 * the rows a transaction writes are noted as wakes (stm_park_wrote, from the
 * transaction's clock writes) and, after each batch, looked up in stemma_parked_wait
 * (stm_park_wake). What a batch pays for that, however much is parked: one read of
 * stemma_local.wait_gen a transaction (whether the wakes changed elsewhere), a digest
 * per row written, a look in a Bloom filter of the rows' wakes (park_filter) and, only
 * for a row the filter may hold, an index probe. Nothing is noted while no operation
 * waits; a table's wake only while one waits for a table. */
#include "park_internal.h"
#include "base/mem.h"

#include <stdlib.h>

/* ---- what is waited for (invariant 4) ---- */

/* What operations wait for, looked up at its first use in a transaction: wait_gen,
 * and unless it is where it was when the kinds were last found, the least wake (when
 * the database cannot say: everything, which only costs lookups). */
static const park_watch *s_watching(park_t *p)
{
    park_watch *w = &p->watch;
    if (w->looked)
        return w;
    w->looked = true;
    w->moved = false;
    sqlite3_stmt *q = stm_stmtcache_fixed(p->stmts, Q_WAIT_GEN);
    w->gen = q && sqlite3_step(q) == SQLITE_ROW ? sqlite3_column_int64(q, 0) : -1;
    if (q)
        sqlite3_reset(q);
    /* Wakes changed elsewhere since the filter was read (or cannot be told). */
    if (p->filter.bits && (w->gen < 0 || w->gen != p->filter.gen)) {
        free(p->filter.bits);
        p->filter.bits = NULL;
    }
    if (w->gen >= 0 && w->gen == w->kinds_gen)
        return w;
    q = stm_stmtcache_fixed(p->stmts, Q_WAIT_SOME);
    bool ok = w->gen >= 0 && q && sqlite3_step(q) == SQLITE_ROW;
    bool none = ok && sqlite3_column_type(q, 0) == SQLITE_NULL;
    sqlite3_int64 least = ok && !none ? sqlite3_column_int64(q, 0) : -1;
    if (q)
        sqlite3_reset(q);
    /* The least wake tells which kinds there may be: a row's only when it is one;
     * anything's when it is 0 (no table's then) or a table's (perhaps). */
    w->rows = !none;
    w->tables = !none && least < 0;
    w->any = !none && least <= 0;
    w->kinds_gen = ok ? w->gen : -1;
    return w;
}

/* The wakes change in this transaction: wait_gen moves (once a transaction), so that
 * every other filter is read again; this one stays good. */
stm_err stm_park_wakes_change(park_t *p, stm_error *err)
{
    s_watching(p);
    if (p->watch.moved)
        return STM_OK;
    sqlite3_stmt *bump = stm_stmtcache_fixed(p->stmts, Q_WAIT_BUMP);
    if (!bump || sqlite3_step(bump) != SQLITE_DONE) {
        if (bump)
            sqlite3_reset(bump);
        return stm_store_error(p->store, err, "parking an operation");
    }
    sqlite3_reset(bump);
    p->watch.moved = true;
    /* What this transaction parks and takes out is the filter's and the kinds' to
     * follow (kinds only ever grow here: one taken out may leave them saying some
     * wait in vain, which only costs lookups). */
    if (p->filter.bits && p->filter.gen == p->watch.gen)
        p->filter.gen = p->watch.gen + 1;
    if (p->watch.kinds_gen == p->watch.gen && p->watch.gen >= 0)
        p->watch.kinds_gen = p->watch.gen + 1;
    return STM_OK;
}

/* The filter is blocked: a wake's four bits lie in one 512-bit block (a cache line),
 * the block chosen by the digest's low bits, the bits by four 9-bit fields of its
 * high ones, so that a lookup touches one line of memory, not four. */
static const uint64_t *s_block(const park_filter *f, park_wake w)
{
    return f->bits + 8 * (w & f->mask);
}

void stm_park_filter_add(park_filter *f, park_wake w)
{
    uint64_t *block = f->bits + 8 * (w & f->mask);
    for (int i = 0; i < 4; i++) {
        unsigned bit = (unsigned)(w >> (27 + 9 * i)) & 511;
        block[bit >> 6] |= UINT64_C(1) << (bit & 63);
    }
    f->held++;
}

static bool s_filter_has(const park_filter *f, park_wake w)
{
    const uint64_t *block = s_block(f, w);
    for (int i = 0; i < 4; i++) {
        unsigned bit = (unsigned)(w >> (27 + 9 * i)) & 511;
        if (!(block[bit >> 6] & UINT64_C(1) << (bit & 63)))
            return false;
    }
    return true;
}

/* Reads the rows' wakes into a filter of at least 16 bits a wake (about one lookup in
 * a thousand in vain; 2 MB for a million), with room for as many again (one in thirty
 * when full); false when the database cannot say. */
static bool s_filter_read(park_t *p)
{
    sqlite3_stmt *q = stm_stmtcache_fixed(p->stmts, Q_WAIT_ROWS);
    if (!q)
        return false;
    park_wake *wakes = NULL;
    size_t n = 0, cap = 0;
    int step;
    while ((step = sqlite3_step(q)) == SQLITE_ROW) {
        wakes = stm_grow(wakes, &cap, n + 1, sizeof *wakes);
        wakes[n++] = (park_wake)sqlite3_column_int64(q, 0);
    }
    sqlite3_reset(q);
    if (step != SQLITE_DONE) {
        free(wakes);
        return false;
    }
    park_filter *f = &p->filter;
    size_t room = 2 * n + 4096, blocks = 128;
    while (blocks * 512 < 8 * room)
        blocks <<= 1;
    free(f->bits);
    f->bits = stm_calloc(blocks * 8, sizeof *f->bits);
    f->mask = blocks - 1;
    f->held = 0;
    f->room = room;
    f->gen = p->watch.moved ? p->watch.gen + 1 : p->watch.gen;
    for (size_t i = 0; i < n; i++)
        stm_park_filter_add(f, wakes[i]);
    free(wakes);
    return true;
}

/* False only when no operation waits for row wake w (the filter says so). */
static bool s_row_waited(park_t *p, park_wake w)
{
    if (!p->filter.bits && !s_filter_read(p))
        return true;
    return s_filter_has(&p->filter, w);
}

/* True when some operation waits for anything at all. */
bool stm_park_waiting(park_t *p)
{
    const park_watch *w = s_watching(p);
    return w->rows || w->tables || w->any;
}

/* ---- waking what waits for the rows written (invariant 5) ---- */

void stm_park_begin(park_t *p)
{
    p->watch.looked = false;
    /* The schema may be read again: another name at those addresses. */
    p->last_table = p->prefix_table = NULL;
}

void stm_park_rollback(park_t *p)
{
    p->nrows = p->ntables = 0;
    p->last_table = p->prefix_table = NULL;
    /* wait_gen went back: so does the filter's (what it added stays, in vain); the
     * kinds are found again. */
    if (p->watch.looked && p->watch.moved && p->filter.gen == p->watch.gen + 1)
        p->filter.gen = p->watch.gen;
    p->watch.kinds_gen = -1;
    p->watch.looked = false;
}

void stm_park_wrote(park_t *p, const char *table, const op_value *key)
{
    const park_watch *w = s_watching(p);
    if (!w->rows && !w->tables && !w->any)
        return;
    park_wake row = 1;
    if (w->rows) {
        /* Batches come table by table: the prefix of the last table's rows is kept. */
        if (table != p->prefix_table) {
            stm_buf_reset(&p->prefix);
            stm_park_put_row_prefix(&p->prefix, table);
            p->prefix_table = table;
        }
        stm_buf_reset(&p->form);
        stm_buf_append(&p->form, p->prefix.data, p->prefix.len);
        row = stm_park_wake_key_values(&p->form, key);
    }
    /* Anything written wakes what waits for anything (a row, to stand for it). */
    if ((w->rows && s_row_waited(p, row)) || (w->any && !p->nrows && !p->ntables)) {
        p->rows = stm_grow(p->rows, &p->rows_cap, p->nrows + 1, sizeof *p->rows);
        p->rows[p->nrows++] = row;
    }
    if (!w->tables)
        return;
    /* Batches come table by table: the last table's wake is noted already. */
    if (table == p->last_table && p->ntables)
        return;
    park_wake t = stm_park_wake_table(table);
    p->last_table = table;
    for (size_t i = p->ntables; i-- > 0;)
        if (p->tables[i] == t)
            return;
    p->tables = stm_grow(p->tables, &p->tables_cap, p->ntables + 1, sizeof *p->tables);
    p->tables[p->ntables++] = t;
}

static int s_by_wake(const void *a, const void *b)
{
    park_wake x = *(const park_wake *)a, y = *(const park_wake *)b;
    return x < y ? -1 : x > y;
}

/* An operation woken: its origin's number and its sequence. */
typedef struct {
    int64_t no;
    uint64_t seq;
} s_woken;

static int s_by_op(const void *a, const void *b)
{
    const s_woken *x = a, *y = b;
    if (x->no != y->no)
        return x->no < y->no ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Takes the operations waiting for wakes[0..n) (sorted, any duplicates) out of
 * stemma_parked and stemma_parked_wait into batch. */
static stm_err s_take_woken(park_t *p, const park_wake *wakes, size_t n, opbatch_t *batch,
                            stm_error *err)
{
    sqlite3_stmt *find = stm_stmtcache_fixed(p->stmts, Q_WAIT_FIND);
    if (!find)
        return stm_store_error(p->store, err, "reading parked operations");
    /* Collected first: taking them out writes the table being read. */
    s_woken *woken = NULL;
    size_t nwoken = 0, cap = 0;
    stm_err rc = STM_OK;
    for (size_t i = 0; i < n && rc == STM_OK; i++) {
        if (i && wakes[i] == wakes[i - 1])
            continue;
        sqlite3_bind_int64(find, 1, (sqlite3_int64)wakes[i]);
        int step;
        while ((step = sqlite3_step(find)) == SQLITE_ROW) {
            woken = stm_grow(woken, &cap, nwoken + 1, sizeof *woken);
            woken[nwoken].no = sqlite3_column_int64(find, 0);
            woken[nwoken].seq = (uint64_t)sqlite3_column_int64(find, 1);
            nwoken++;
        }
        if (step != SQLITE_DONE)
            rc = stm_store_error(p->store, err, "reading parked operations");
        sqlite3_reset(find);
    }
    if (nwoken > 1)
        qsort(woken, nwoken, sizeof *woken, s_by_op);
    if (nwoken && rc == STM_OK)
        rc = stm_park_wakes_change(p, err);
    for (size_t i = 0; i < nwoken && rc == STM_OK; i++) {
        if (i && s_by_op(&woken[i], &woken[i - 1]) == 0)
            continue; /* woken by two of the wakes */
        /* Taken out only when still parked for a constraint: a wake whose operation is
         * not (its row deleted by hand, say) just goes. */
        bool parked = false;
        stm_id origin;
        rc = stm_store_id_of(p->store, woken[i].no, &origin, err);
        if (rc == STM_OK &&
            stm_park_run_op(p, Q_TAKE_ONE, 0, &origin, woken[i].seq, 0) == SQLITE_DONE)
            parked = sqlite3_changes(stm_store_db(p->store)) > 0;
        else if (rc == STM_OK)
            rc = stm_store_error(p->store, err, "retrying parked operations");
        if (rc == STM_OK &&
            stm_park_run_op(p, Q_WAIT_DROP, woken[i].no, NULL, woken[i].seq, 0) != SQLITE_DONE)
            rc = stm_store_error(p->store, err, "retrying parked operations");
        bool found;
        if (rc == STM_OK && parked)
            rc = stm_oplog_fetch(p->log, &origin, woken[i].seq, batch, &found, err);
    }
    free(woken);
    return rc;
}

stm_err stm_park_wake(park_t *p, park_apply_fn apply, void *ctx, uint64_t *replayed, stm_error *err)
{
    *replayed = 0;
    stm_err rc = STM_OK;
    opbatch_t *batch = NULL;
    /* The operations retried write rows too, which may wake more (a row a foreign key
     * wanted, which another wants in turn): again until a pass wakes nothing. A pass
     * that applies nothing can still note a row (a write parked for a missing column
     * moves its row's clocks), but only once per operation; after two such passes in a
     * row what is noted waits for the next call. */
    for (int idle = 0; rc == STM_OK && p->nrows + p->ntables > 0 && idle < 2;) {
        size_t n = p->nrows + p->ntables + 1;
        park_wake *wakes = stm_calloc(n, sizeof *wakes);
        for (size_t i = 0; i < p->nrows; i++)
            wakes[i] = p->rows[i];
        for (size_t i = 0; i < p->ntables; i++)
            wakes[p->nrows + i] = p->tables[i];
        wakes[n - 1] = PARK_WAKE_ANY; /* something was written */
        if (!s_watching(p)->any)
            n--;
        p->nrows = p->ntables = 0;
        p->last_table = NULL;
        qsort(wakes, n, sizeof *wakes, s_by_wake);
        if (!batch)
            batch = stm_opbatch_new();
        stm_opbatch_clear(batch);
        rc = s_take_woken(p, wakes, n, batch, err);
        free(wakes);
        uint64_t applied = 0;
        if (rc == STM_OK)
            rc = stm_park_reapply(p, batch, apply, ctx, &applied, err);
        *replayed += applied;
        idle = applied ? 0 : idle + 1;
    }
    stm_opbatch_destroy(&batch);
    return rc;
}
