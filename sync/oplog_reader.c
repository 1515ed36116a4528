/* oplog_reader.c - reading the oplog for a peer (oplog.h, "Reading" and "Gaps"): a
 * reader walking the feed (feed.h) in order of arrival, kept between passes; a large row
 * change alone and one too large to travel as a stand-in; the gaps compaction left, at or
 * below the database's vector, handed out as pruned stand-ins. oplog.c is the storage. */
#include "oplog.h"
#include "oplog_internal.h"
#include "feed.h"
#include "base/mem.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct oplog_reader {
    feed_t *feed;       /* lent, or owned (own_feed) */
    bool own_feed;
    vector_t *since;    /* owned: what the peer of a reader made by stm_oplog_reader_new holds */
    oplog_held_fn held; /* what the peer holds of an origin */
    void *held_ctx;
    uint64_t limit;     /* a row change over this many bytes is read as a stand-in */
    uint64_t max_value; /* so is one with a key or value over this many */
    oplog_pos pos;      /* the next operation to look at: run, and seq in it (0: its first) */
    uint64_t epoch;     /* the feed's when pos was taken (stm_feed_epoch) */
    sqlite3_stmt *stmt; /* the rows of one run; prepared on first use, finalized at rest */
    bool live;          /* stmt is bound to pos.run and stepping */
    bool ready;         /* stmt holds a row not handed out yet */
    bool drained;       /* stmt has no more rows in the run */
    stm_id origin;      /* the run's origin, while live */
    uint64_t after;     /* hand out its operations above this sequence */
    uint64_t upto;      /* the database holds the run's origin up to here (its vector):
                           a sequence at or below it with no row was pruned */
    uint64_t gap_to;    /* pos.seq .. gap_to were pruned, to hand out before the ready row
                           (or, drained, before the next run); below pos.seq: none */
};

/* What a row change can take in a batch besides its cells, per operation: the array's
 * header, the indexes of its origin, version, table and column (5 bytes each at
 * most), its sequence, clock and incarnation (9, 9, 9 and 5), and its key's header
 * (the key itself is counted apart). 58 bytes; rounded up. */
#define S_OP_OVERHEAD 64u
/* And once per batch: the map, its keys, two origins and a version (34 bytes each),
 * the headers of the lists. */
#define S_BATCH_OVERHEAD 1024u

/* The most bytes the row change stmt is on can take in a batch of its own (codec.h): its
 * cells (each operation's column name, affinity and value; a name is sent once per
 * batch, so this counts it more often than it goes), then per operation its key and
 * S_OP_OVERHEAD, its table's name and the batch's own. Never below what
 * stm_codec_encode_ops makes of it alone, and above it by about 64 bytes an operation:
 * whether it may travel is told from this, before a byte of it is copied. */
static uint64_t s_change_bytes(sqlite3_stmt *stmt)
{
    /* A stand-in's row (or a skipped one) travels as one small stand-in, or nothing. */
    uint64_t value;
    if (stm_oplog_row_kind(stmt, &value) != OPLOG_ROW_CHANGE)
        return S_BATCH_OVERHEAD;
    uint64_t n = (uint64_t)sqlite3_column_int64(stmt, RC_N);
    int type = sqlite3_column_type(stmt, RC_PK);
    /* Only a text or blob key has a length worth asking (an integer asked would be
     * turned into text). */
    uint64_t key = type == SQLITE_TEXT || type == SQLITE_BLOB
                       ? (uint64_t)sqlite3_column_bytes(stmt, RC_PK)
                       : 9;
    uint64_t cells = sqlite3_column_type(stmt, RC_CELLS) == SQLITE_BLOB
                         ? (uint64_t)sqlite3_column_bytes(stmt, RC_CELLS)
                         : 0;
    return cells + n * (key + S_OP_OVERHEAD) + (uint64_t)sqlite3_column_bytes(stmt, RC_TBL) +
           S_BATCH_OVERHEAD;
}

/* One run's rows above ?2, up to ?3: from the row change holding ?2 + 1 (it may have
 * started below it), else from ?2 + 1; never from one wholly at or below ?2, which
 * stepping onto would read whole (a large row change was read for nothing, at every
 * turn). Finding it reads one row's seq and n (they lie before its cells). */
static const char *const s_select =
    "SELECT " RC_COLUMNS " FROM stemma_oplog WHERE origin = ?1 AND seq >= coalesce("
    "(SELECT seq FROM (SELECT seq, n FROM stemma_oplog WHERE origin = ?1 AND seq <= ?2 + 1 "
    "ORDER BY seq DESC LIMIT 1) WHERE seq + n - 1 > ?2), ?2 + 1) AND seq <= ?3 ORDER BY seq";

oplog_reader_t *stm_oplog_reader_on(feed_t *feed)
{
    oplog_reader_t *r = stm_calloc(1, sizeof *r);
    r->feed = feed;
    r->epoch = stm_feed_epoch(feed);
    r->limit = OP_MAX_CHANGE_BYTES;
    r->max_value = OP_MAX_VALUE_BYTES;
    return r;
}

static uint64_t s_since_held(void *ctx, const stm_id *origin)
{
    const vector_t *since = ctx;
    return since ? stm_vector_get(since, origin) : 0;
}

stm_err stm_oplog_reader_new(store_t *store, const vector_t *since, oplog_reader_t **out,
                             stm_error *err)
{
    feed_t *feed = NULL;
    stm_err rc = stm_feed_open(store, &feed, err);
    if (rc != STM_OK)
        return rc;
    oplog_reader_t *r = stm_oplog_reader_on(feed);
    r->own_feed = true;
    if (since) {
        r->since = stm_vector_new();
        for (size_t i = 0; i < stm_vector_count(since); i++) /* in order: appended */
            stm_vector_set(r->since, &stm_vector_at(since, i)->origin,
                           stm_vector_at(since, i)->seq);
    }
    stm_oplog_reader_held(r, s_since_held, r->since);
    *out = r;
    return STM_OK;
}

void stm_oplog_reader_destroy(oplog_reader_t **self_p)
{
    oplog_reader_t *r = *self_p;
    if (!r)
        return;
    sqlite3_finalize(r->stmt);
    if (r->own_feed)
        stm_feed_destroy(&r->feed);
    stm_vector_destroy(&r->since);
    free(r);
    *self_p = NULL;
}

void stm_oplog_reader_held(oplog_reader_t *r, oplog_held_fn fn, void *ctx)
{
    r->held = fn;
    r->held_ctx = ctx;
}

void stm_oplog_reader_set_limit(oplog_reader_t *r, uint64_t limit, uint64_t max_value)
{
    r->limit = limit < OP_MAX_CHANGE_BYTES ? limit : OP_MAX_CHANGE_BYTES;
    r->max_value = max_value < OP_MAX_VALUE_BYTES ? max_value : OP_MAX_VALUE_BYTES;
}

/* Leaves the run it is in (its statement reset): what it learned of it goes. */
static void s_leave_run(oplog_reader_t *r)
{
    r->live = r->ready = r->drained = false;
    r->gap_to = 0;
}

void stm_oplog_reader_rest(oplog_reader_t *r)
{
    /* Finalized, not reset: between passes the node may open its database anew (it was
     * read-only), and a statement left on the old connection would keep it open. One
     * prepare a pass costs nothing beside the pass. */
    sqlite3_finalize(r->stmt);
    r->stmt = NULL;
    s_leave_run(r);
}

oplog_pos stm_oplog_reader_tell(const oplog_reader_t *r)
{
    return r->pos;
}

void stm_oplog_reader_seek(oplog_reader_t *r, oplog_pos pos)
{
    stm_oplog_reader_rest(r);
    r->pos = pos;
}

int stm_oplog_pos_cmp(oplog_pos a, oplog_pos b)
{
    if (a.run != b.run)
        return a.run < b.run ? -1 : 1;
    return a.seq < b.seq ? -1 : a.seq > b.seq;
}

/* Binds the statement to the run at r->pos from what the peer lacks of it; *skip when
 * it lacks nothing there. */
static stm_err s_open_run(oplog_reader_t *r, const feed_run *run, bool *skip, stm_error *err)
{
    store_t *store = stm_feed_store(r->feed);
    *skip = false;
    if (!stm_feed_origin(r->feed, run->origin, &r->origin)) {
        stm_err rc = stm_store_id_of(store, run->origin, &r->origin, err);
        if (rc != STM_OK)
            return rc;
    }
    uint64_t last = run->first + run->count - 1;
    uint64_t start = r->pos.seq > run->first ? r->pos.seq : run->first;
    uint64_t held = r->held ? r->held(r->held_ctx, &r->origin) : 0;
    if (held >= start)
        start = held + 1;
    if (start > last) {
        *skip = true;
        return STM_OK;
    }
    if (!r->stmt &&
        sqlite3_prepare_v2(stm_store_db(store), s_select, -1, &r->stmt, NULL) != SQLITE_OK)
        return stm_store_error(store, err, "reading the oplog");
    sqlite3_bind_int64(r->stmt, 1, run->origin);
    sqlite3_bind_int64(r->stmt, 2, (sqlite3_int64)(start - 1));
    sqlite3_bind_int64(r->stmt, 3, (sqlite3_int64)last);
    r->pos.seq = start;
    r->after = start - 1;
    r->upto = stm_vtrack_get(stm_feed_vector(r->feed), &r->origin);
    r->live = true;
    return STM_OK;
}

/* Moves past the run at r->pos, or stays at its end when it is the last (it may grow:
 * feed.h, invariant 3). False when there is nothing further. */
static bool s_next_run(oplog_reader_t *r, const feed_run *run)
{
    if (r->stmt)
        sqlite3_reset(r->stmt);
    s_leave_run(r);
    if (r->pos.run + 1 < stm_feed_count(r->feed)) {
        r->pos = (oplog_pos){r->pos.run + 1, 0};
        return true;
    }
    r->pos.seq = run->first + run->count;
    return false;
}

/* Notes the sequences from pos.seq up to to (at most what the database holds) as a gap
 * to hand out first: pruned operations (oplog.h, "Gaps"). */
static void s_gap_before(oplog_reader_t *r, uint64_t to)
{
    if (r->pos.seq <= r->upto && r->pos.seq <= to)
        r->gap_to = to < r->upto ? to : r->upto;
}

/* What s_fill found next. */
typedef enum { S_END, S_GAP, S_ROW } s_found;

/* Finds the next thing the peer lacks, walking runs: a gap (pos.seq .. gap_to) or a
 * ready row; S_END at the end, or when budget runs have been skipped whole (*yielded). */
static stm_err s_fill(oplog_reader_t *r, size_t budget, size_t *skipped, bool *yielded,
                      s_found *found, stm_error *err)
{
    *found = S_END;
    for (;;) {
        if (r->live && r->gap_to >= r->pos.seq) {
            *found = S_GAP;
            return STM_OK;
        }
        if (r->ready) {
            *found = S_ROW;
            return STM_OK;
        }
        if (r->pos.run >= stm_feed_count(r->feed))
            return STM_OK;
        feed_run run = stm_feed_at(r->feed, r->pos.run);
        if (!r->live) {
            if (r->pos.seq >= run.first + run.count) { /* at its end: the next, if any */
                if (!s_next_run(r, &run))
                    return STM_OK;
                continue;
            }
            bool skip;
            stm_err rc = s_open_run(r, &run, &skip, err);
            if (rc != STM_OK)
                return rc;
            if (skip) {
                bool more = s_next_run(r, &run);
                if (++*skipped >= budget) {
                    *yielded = more;
                    return STM_OK;
                }
                if (!more)
                    return STM_OK;
                continue;
            }
        }
        if (r->drained) { /* and its gap handed out */
            if (!s_next_run(r, &run))
                return STM_OK;
            continue;
        }
        int step = sqlite3_step(r->stmt);
        if (step == SQLITE_ROW) {
            /* The first may lie wholly at or below after; one of no operation is
             * damaged, and reading it says so. A row beyond pos.seq leaves a gap. */
            uint64_t seq = (uint64_t)sqlite3_column_int64(r->stmt, RC_SEQ);
            int64_t n = sqlite3_column_int64(r->stmt, RC_N);
            r->ready = n < 1 || seq + (uint64_t)n - 1 > r->after;
            if (r->ready && n >= 1 && seq > r->pos.seq)
                s_gap_before(r, seq - 1);
        } else if (step == SQLITE_DONE) {
            r->drained = true;
            s_gap_before(r, run.first + run.count - 1);
        } else {
            return stm_store_error(stm_feed_store(r->feed), err, "reading the oplog");
        }
    }
}

stm_err stm_oplog_reader_walk(oplog_reader_t *r, opbatch_t *batch, size_t max_ops,
                              size_t max_bytes, size_t budget, size_t *got, bool *yielded,
                              stm_error *err)
{
    *got = 0;
    *yielded = false;
    size_t skipped = 0;
    store_t *store = stm_feed_store(r->feed);
    if (r->epoch != stm_feed_epoch(r->feed)) { /* read again: positions mean nothing */
        stm_oplog_reader_seek(r, (oplog_pos){0, 0});
        r->epoch = stm_feed_epoch(r->feed);
    }
    /* What the batch holds against max_ops: its operations, and a pruned stand-in as
     * one, whatever it covers (it costs its receiver no row). */
    size_t work = 0;
    while (work < max_ops && stm_opbatch_bytes(batch) < max_bytes) {
        s_found found;
        stm_err rc = s_fill(r, budget, &skipped, yielded, &found, err);
        if (rc != STM_OK)
            return rc;
        if (found == S_END)
            break;
        if (found == S_GAP) {
            uint64_t to;
            stm_oplog_add_pruned(batch, &r->origin, r->pos.seq, r->gap_to, &to);
            *got += (size_t)(to - r->pos.seq + 1);
            r->pos.seq = to + 1;
            work++;
            continue;
        }
        /* A large row change goes alone, so that a batch is either of the usual size or
         * one row change: it is left for the next call when this one has read anything.
         * (One too large to travel is a small stand-in, which goes with the rest.) */
        uint64_t bytes = s_change_bytes(r->stmt);
        if (bytes > max_bytes && bytes <= r->limit && *got > 0)
            break;
        uint64_t before = stm_opbatch_covered(batch);
        size_t ops_before = stm_opbatch_count(batch),
               standins_before = stm_opbatch_withheld_count(batch);
        op_t head;
        uint64_t seq;
        int64_t n;
        if (bytes > r->limit) {
            /* Too large to travel: a stand-in goes in its place (op.h), and its values
             * are never copied. */
            rc = stm_oplog_row_head(store, r->stmt, &r->origin, &head, &seq, &n, err);
            if (rc == STM_OK)
                stm_oplog_add_withheld(batch, &head, seq, n, r->after, bytes, true);
        } else {
            seq = (uint64_t)sqlite3_column_int64(r->stmt, RC_SEQ);
            n = sqlite3_column_int64(r->stmt, RC_N);
            rc = stm_oplog_unpack(store, r->stmt, &r->origin, r->after, r->max_value, bytes,
                                  batch, err);
        }
        if (rc != STM_OK)
            return rc;
        r->ready = false;
        if (seq + (uint64_t)n > r->pos.seq)
            r->pos.seq = seq + (uint64_t)n;
        *got += (size_t)(stm_opbatch_covered(batch) - before);
        work += stm_opbatch_count(batch) - ops_before;
        for (size_t i = standins_before; i < stm_opbatch_withheld_count(batch); i++) {
            const op_withheld *w = stm_opbatch_withheld_at(batch, i);
            work += w->pruned ? 1 : (size_t)w->n;
        }
    }
    return STM_OK;
}

stm_err stm_oplog_reader_next(oplog_reader_t *r, opbatch_t *batch, size_t max_ops, size_t max_bytes,
                              size_t *got, stm_error *err)
{
    bool yielded;
    return stm_oplog_reader_walk(r, batch, max_ops, max_bytes, SIZE_MAX, got, &yielded, err);
}
