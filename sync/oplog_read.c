/* oplog_read.c - reading the oplog: a stored row change decoded back into operations,
 * and the reader that walks a feed for a peer (oplog.h). */
#include "oplog_internal.h"
#include "codec.h"
#include "key.h"
#include "base/mem.h"
#include "msgread.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static stm_err s_corrupt(store_t *store, stm_error *err, uint64_t seq)
{
    return stm_error_set(err, STM_ECORRUPT,
                         "%s: stemma_oplog: the row change at sequence %llu is damaged",
                         stm_store_path(store), (unsigned long long)seq);
}

/* ---- row changes ---- */

/* Whether the cells of the row stmt is on are a stand-in's, and then its bytes. Only
 * the first byte of cells a row change holds is looked at. */
static bool s_is_withheld(sqlite3_stmt *stmt, uint64_t *bytes)
{
    if (sqlite3_column_type(stmt, RC_CELLS) != SQLITE_BLOB ||
        sqlite3_column_bytes(stmt, RC_CELLS) > OPLOG_WITHHELD_MAX_CELLS)
        return false;
    msgread_t r;
    stm_msgread_init(&r, sqlite3_column_blob(stmt, RC_CELLS),
                     (size_t)sqlite3_column_bytes(stmt, RC_CELLS));
    uint32_t nkeys, klen;
    const char *key;
    return stm_msgread_peek(&r) == MSG_MAP && stm_msgread_map(&r, &nkeys) && nkeys == 1 &&
           stm_msgread_str(&r, &key, &klen) && klen == strlen(OPLOG_WITHHELD_KEY) &&
           memcmp(key, OPLOG_WITHHELD_KEY, klen) == 0 && stm_msgread_uint(&r, bytes) &&
           stm_msgread_left(&r) == 0;
}

/* Reads what the operations of the row change stmt is on share (origin, clock,
 * version, table, key, incarnation) into op; its first sequence and count into *seq
 * and *n. */
static stm_err s_row_head(store_t *store, sqlite3_stmt *stmt, const stm_id *origin, op_t *op,
                          uint64_t *seq, int64_t *n, stm_error *err)
{
    memset(op, 0, sizeof *op);
    op->origin = *origin;
    *seq = (uint64_t)sqlite3_column_int64(stmt, RC_SEQ);
    *n = sqlite3_column_int64(stmt, RC_N);
    op->hlc = (uint64_t)sqlite3_column_int64(stmt, RC_HLC);
    stm_err rc =
        stm_store_id_of(store, sqlite3_column_int64(stmt, RC_VERSION), &op->version_id, err);
    if (rc != STM_OK)
        return rc;
    op->table = (const char *)sqlite3_column_text(stmt, RC_TBL);
    stm_op_value_column(stmt, RC_PK, &op->pk);
    if (sqlite3_column_int(stmt, RC_PK_PACKED)) {
        if (op->pk.type != VALUE_BLOB)
            return s_corrupt(store, err, *seq);
        op->pk.type = VALUE_KEY;
        if (stm_key_columns(&op->pk) < 2)
            return s_corrupt(store, err, *seq);
    }
    if (!op->table || *n < 1)
        return s_corrupt(store, err, *seq);
    op->derived = sqlite3_column_int(stmt, RC_DERIVED) != 0;
    if (sqlite3_column_type(stmt, RC_BORN_HLC) == SQLITE_INTEGER) {
        op->born_hlc = (uint64_t)sqlite3_column_int64(stmt, RC_BORN_HLC);
        rc = stm_store_id_of(store, sqlite3_column_int64(stmt, RC_BORN_ORIGIN), &op->born_origin,
                             err);
        if (rc != STM_OK)
            return rc;
    }
    return STM_OK;
}

/* Appends to out a stand-in for the operations above after of the row change op heads
 * (seq .. seq + n - 1), of the given bytes; here: read from the row change itself. */
static void s_add_withheld(opbatch_t *out, const op_t *op, uint64_t seq, int64_t n, uint64_t after,
                           uint64_t bytes, bool here)
{
    uint64_t first = seq > after ? seq : after + 1;
    op_withheld w = {.origin = op->origin,
                     .seq = first,
                     .n = seq + (uint64_t)n - first,
                     .hlc = op->hlc,
                     .version_id = op->version_id,
                     .table = op->table,
                     .pk = op->pk,
                     .bytes = bytes,
                     .here = here};
    stm_opbatch_add_withheld(out, &w);
}

stm_err stm_oplog_row_unpack(store_t *store, sqlite3_stmt *stmt, const stm_id *origin, uint64_t after,
                        uint64_t max_value, uint64_t bytes, opbatch_t *out, stm_error *err)
{
    op_t op;
    uint64_t seq;
    int64_t n;
    stm_err rc = s_row_head(store, stmt, origin, &op, &seq, &n, err);
    if (rc != STM_OK)
        return rc;
    uint64_t withheld;
    if (s_is_withheld(stmt, &withheld)) {
        s_add_withheld(out, &op, seq, n, after, withheld, false);
        return STM_OK;
    }
    if (sqlite3_column_type(stmt, RC_CELLS) == SQLITE_NULL) {
        if (n != 1)
            return s_corrupt(store, err, seq);
        op.seq = seq;
        if (seq > after)
            stm_opbatch_add(out, &op);
        return STM_OK;
    }
    msgread_t r;
    stm_msgread_init(&r, sqlite3_column_blob(stmt, RC_CELLS),
                     (size_t)sqlite3_column_bytes(stmt, RC_CELLS));
    /* Checked whole first, so that a damaged row adds nothing. */
    msgread_t check = r;
    bool too_large = op.pk.len > max_value;
    for (int64_t i = 0; i < n; i++) {
        const char *data;
        uint32_t len;
        int64_t aff;
        if (!stm_msgread_str(&check, &data, &len) || len > OP_MAX_NAME_BYTES ||
            !stm_msgread_int(&check, &aff) || aff <= 0 || aff > 127 ||
            !stm_codec_read_value(&check, &op.value))
            return s_corrupt(store, err, seq);
        too_large = too_large || op.value.len > max_value;
    }
    if (stm_msgread_left(&check))
        return s_corrupt(store, err, seq);
    if (too_large) {
        s_add_withheld(out, &op, seq, n, after, bytes, true);
        return STM_OK;
    }
    char name[OP_MAX_NAME_BYTES + 1];
    for (int64_t i = 0; i < n; i++) {
        const char *data;
        uint32_t len;
        int64_t aff;
        stm_msgread_str(&r, &data, &len);
        stm_msgread_int(&r, &aff);
        stm_codec_read_value(&r, &op.value);
        memcpy(name, data, len);
        name[len] = '\0';
        op.column = name;
        op.affinity = (char)aff;
        op.seq = seq + (uint64_t)i;
        if (op.seq > after)
            stm_opbatch_add(out, &op);
    }
    return STM_OK;
}
/* ---- the reader ---- */

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
    stm_id origin;      /* the run's origin, while live */
    uint64_t after;     /* hand out its operations above this sequence */
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

void stm_oplog_reader_rest(oplog_reader_t *r)
{
    /* Finalized, not reset: between passes the node may open its database anew (it was
     * read-only), and a statement left on the old connection would keep it open. One
     * prepare a pass costs nothing beside the pass. */
    sqlite3_finalize(r->stmt);
    r->stmt = NULL;
    r->live = r->ready = false;
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
    r->after = start - 1;
    r->live = true;
    return STM_OK;
}

/* Moves past the run at r->pos, or stays at its end when it is the last (it may grow:
 * feed.h, invariant 3). False when there is nothing further. */
static bool s_next_run(oplog_reader_t *r, const feed_run *run)
{
    if (r->stmt)
        sqlite3_reset(r->stmt);
    r->live = r->ready = false;
    if (r->pos.run + 1 < stm_feed_count(r->feed)) {
        r->pos = (oplog_pos){r->pos.run + 1, 0};
        return true;
    }
    r->pos.seq = run->first + run->count;
    return false;
}

/* Makes sure a row the peer lacks is ready, walking runs; false at the end, or when
 * budget runs have been skipped whole (*yielded). */
static stm_err s_fill(oplog_reader_t *r, size_t budget, size_t *skipped, bool *yielded,
                      bool *have, stm_error *err)
{
    *have = false;
    while (!r->ready) {
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
        int step = sqlite3_step(r->stmt);
        if (step == SQLITE_ROW) {
            /* The first may lie wholly at or below after; one of no operation is
             * damaged, and reading it says so. */
            uint64_t seq = (uint64_t)sqlite3_column_int64(r->stmt, RC_SEQ);
            int64_t n = sqlite3_column_int64(r->stmt, RC_N);
            r->ready = n < 1 || seq + (uint64_t)n - 1 > r->after;
        } else if (step == SQLITE_DONE) {
            if (!s_next_run(r, &run))
                return STM_OK;
        } else {
            return stm_store_error(stm_feed_store(r->feed), err, "reading the oplog");
        }
    }
    *have = true;
    return STM_OK;
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
    while (*got < max_ops && stm_opbatch_bytes(batch) < max_bytes) {
        bool have;
        stm_err rc = s_fill(r, budget, &skipped, yielded, &have, err);
        if (rc != STM_OK)
            return rc;
        if (!have)
            break;
        /* A large row change goes alone, so that a batch is either of the usual size or
         * one row change: it is left for the next call when this one has read anything.
         * (One too large to travel is a small stand-in, which goes with the rest.) */
        uint64_t bytes = s_change_bytes(r->stmt);
        if (bytes > max_bytes && bytes <= r->limit && *got > 0)
            break;
        uint64_t before = stm_opbatch_covered(batch);
        op_t head;
        uint64_t seq;
        int64_t n;
        if (bytes > r->limit) {
            /* Too large to travel: a stand-in goes in its place (op.h), and its values
             * are never copied. */
            rc = s_row_head(store, r->stmt, &r->origin, &head, &seq, &n, err);
            if (rc == STM_OK)
                s_add_withheld(batch, &head, seq, n, r->after, bytes, true);
        } else {
            seq = (uint64_t)sqlite3_column_int64(r->stmt, RC_SEQ);
            n = sqlite3_column_int64(r->stmt, RC_N);
            rc = stm_oplog_row_unpack(store, r->stmt, &r->origin, r->after, r->max_value, bytes, batch, err);
        }
        if (rc != STM_OK)
            return rc;
        r->ready = false;
        r->pos.seq = seq + (uint64_t)n;
        *got += (size_t)(stm_opbatch_covered(batch) - before);
    }
    return STM_OK;
}

stm_err stm_oplog_reader_next(oplog_reader_t *r, opbatch_t *batch, size_t max_ops, size_t max_bytes,
                              size_t *got, stm_error *err)
{
    bool yielded;
    return stm_oplog_reader_walk(r, batch, max_ops, max_bytes, SIZE_MAX, got, &yielded, err);
}

stm_err stm_oplog_counts(store_t *store, uint64_t *total, uint64_t *parked, stm_error *err)
{
    return stm_oplog_counts_withheld(store, total, parked, NULL, err);
}

stm_err stm_oplog_counts_withheld(store_t *store, uint64_t *total, uint64_t *parked,
                                  uint64_t *withheld, stm_error *err)
{
    sqlite3_stmt *stmt = NULL;
    /* A stand-in's cells are short and begin with a map of one key (0x81), which no row
     * change's do (a column name, a str): length() reads no large value to say so. */
    if (sqlite3_prepare_v2(stm_store_db(store),
                           withheld ? "SELECT coalesce(sum(n), 0), (SELECT count(*) FROM "
                                      "stemma_parked), coalesce(sum(CASE WHEN length(cells) "
                                      "<= 32 AND substr(cells, 1, 1) = x'81' THEN n END), 0) "
                                      "FROM stemma_oplog"
                                    : "SELECT coalesce(sum(n), 0), (SELECT count(*) FROM "
                                      "stemma_parked) FROM stemma_oplog",
                           -1, &stmt, NULL) != SQLITE_OK)
        return stm_store_error(store, err, "counting operations");
    stm_err rc = STM_OK;
    if (sqlite3_step(stmt) == SQLITE_ROW) {
        *total = (uint64_t)sqlite3_column_int64(stmt, 0);
        *parked = (uint64_t)sqlite3_column_int64(stmt, 1);
        if (withheld)
            *withheld = (uint64_t)sqlite3_column_int64(stmt, 2);
    } else {
        rc = stm_store_error(store, err, "counting operations");
    }
    sqlite3_finalize(stmt);
    return rc;
}
