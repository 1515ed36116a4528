/* oplog_reader.c - reading the oplog for a peer (oplog.h, "Reading" and "Gaps"): what
 * another vector lacks, merged across origins by clock, a large row change alone and one
 * too large to travel as a stand-in, and the gaps compaction left handed out as pruned
 * stand-ins. oplog.c is the storage. */
#include "oplog.h"
#include "oplog_internal.h"
#include "base/mem.h"

#include <stdlib.h>
#include <string.h>

/* ---- the reader ---- */

/* One origin's stream: a statement stepping through its row changes from `since`, and
 * the gaps between them that this database holds (at or below its vector entry): the
 * operations compaction pruned, handed out as pruned stand-ins (op.h). */
typedef struct {
    stm_id origin;
    uint64_t since;     /* hand out operations above this sequence */
    uint64_t held;      /* every operation up to here is held (the vector) */
    uint64_t next;      /* the first sequence not handed out yet */
    uint64_t gap_to;    /* next .. gap_to are pruned, to hand out first; below next: none */
    sqlite3_stmt *stmt; /* positioned on the next row change when `ready`; NULL: no rows */
    bool ready;         /* stmt holds a row not handed out yet */
    bool done;          /* no more rows */
} s_stream;

struct oplog_reader {
    store_t *store;    /* lent */
    s_stream *streams; /* one per origin */
    size_t count;
    uint64_t limit;     /* a row change over this many bytes is read as a stand-in */
    uint64_t max_value; /* so is one with a key or value over this many */
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

/* From the row change holding since + 1 (it may have started below it), else from
 * since + 1: never from one wholly at or below since, which stepping onto would read
 * whole (a large row change was read for nothing, at every turn of the loop). Finding
 * it reads one row's seq and n (they lie before its cells), whatever the history. */
static const char *const s_select =
    "SELECT " RC_COLUMNS " FROM stemma_oplog WHERE origin = ?1 AND seq >= coalesce("
    "(SELECT seq FROM (SELECT seq, n FROM stemma_oplog WHERE origin = ?1 AND seq <= ?2 + 1 "
    "ORDER BY seq DESC LIMIT 1) WHERE seq + n - 1 > ?2), ?2 + 1) ORDER BY seq";

stm_err stm_oplog_reader_new(store_t *store, const vector_t *since, oplog_reader_t **out,
                             stm_error *err)
{
    vector_t *mine = NULL;
    stm_err rc = stm_vector_read(store, &mine, err);
    if (rc != STM_OK)
        return rc;
    oplog_reader_t *r = stm_calloc(1, sizeof *r);
    r->store = store;
    r->limit = OP_MAX_CHANGE_BYTES;
    r->max_value = OP_MAX_VALUE_BYTES;
    r->streams = stm_calloc(stm_vector_count(mine) + 1, sizeof *r->streams);
    for (size_t i = 0; i < stm_vector_count(mine) && rc == STM_OK; i++) {
        const vector_entry *e = stm_vector_at(mine, i);
        int64_t no;
        rc = stm_store_id_number(store, &e->origin, false, &no, err);
        if (rc != STM_OK)
            continue;
        s_stream *s = &r->streams[r->count];
        s->origin = e->origin;
        s->since = since ? stm_vector_get(since, &e->origin) : 0;
        s->held = e->seq;
        s->next = s->since + 1;
        /* An origin with no number has no rows: all it holds of it was pruned. */
        s->done = !no;
        if (no &&
            sqlite3_prepare_v2(stm_store_db(store), s_select, -1, &s->stmt, NULL) != SQLITE_OK) {
            rc = stm_store_error(store, err, "reading the oplog");
            break;
        }
        r->count++;
        if (!no)
            continue;
        sqlite3_bind_int64(s->stmt, 1, no);
        sqlite3_bind_int64(s->stmt, 2, (sqlite3_int64)s->since);
    }
    stm_vector_destroy(&mine);
    if (rc != STM_OK) {
        stm_oplog_reader_destroy(&r);
        return rc;
    }
    *out = r;
    return STM_OK;
}

void stm_oplog_reader_destroy(oplog_reader_t **self_p)
{
    oplog_reader_t *r = *self_p;
    if (!r)
        return;
    for (size_t i = 0; i < r->count; i++)
        sqlite3_finalize(r->streams[i].stmt);
    free(r->streams);
    free(r);
    *self_p = NULL;
}

/* Makes sure stream s has its next row change, if any, and notes the gap before it (or,
 * at the end, before what is held ends) when this database holds it: pruned. */
static stm_err s_fill(oplog_reader_t *r, s_stream *s, stm_error *err)
{
    if (s->gap_to >= s->next)
        return STM_OK; /* the gap goes first */
    while (!s->ready && !s->done) {
        int step = sqlite3_step(s->stmt);
        if (step == SQLITE_ROW) {
            /* The first may lie wholly at or below since. */
            uint64_t seq = (uint64_t)sqlite3_column_int64(s->stmt, RC_SEQ);
            uint64_t n = (uint64_t)sqlite3_column_int64(s->stmt, RC_N);
            s->ready = seq + n - 1 > s->since;
            if (s->ready && seq > s->next && s->next <= s->held)
                s->gap_to = seq - 1 < s->held ? seq - 1 : s->held;
        } else if (step == SQLITE_DONE) {
            s->done = true;
        } else {
            return stm_store_error(r->store, err, "reading the oplog");
        }
    }
    if (s->done && s->next <= s->held)
        s->gap_to = s->held;
    return STM_OK;
}

void stm_oplog_reader_set_limit(oplog_reader_t *r, uint64_t limit, uint64_t max_value)
{
    r->limit = limit < OP_MAX_CHANGE_BYTES ? limit : OP_MAX_CHANGE_BYTES;
    r->max_value = max_value < OP_MAX_VALUE_BYTES ? max_value : OP_MAX_VALUE_BYTES;
}

stm_err stm_oplog_reader_next(oplog_reader_t *r, opbatch_t *batch, size_t max_ops, size_t max_bytes,
                              size_t *got, stm_error *err)
{
    *got = 0;
    /* What the batch holds against max_ops: its operations, and a pruned stand-in as
     * one, whatever it covers (it costs its receiver no row). */
    size_t work = 0;
    while (work < max_ops && stm_opbatch_bytes(batch) < max_bytes) {
        /* A gap first, whatever its place: it names nothing a clock orders. Else the
         * stream whose next row change has the smallest clock. */
        s_stream *best = NULL, *gap = NULL;
        uint64_t best_hlc = 0;
        for (size_t i = 0; i < r->count && !gap; i++) {
            s_stream *s = &r->streams[i];
            stm_err rc = s_fill(r, s, err);
            if (rc != STM_OK)
                return rc;
            if (s->gap_to >= s->next)
                gap = s;
            if (!s->ready)
                continue;
            uint64_t h = (uint64_t)sqlite3_column_int64(s->stmt, RC_HLC);
            if (!best || h < best_hlc)
                best = s, best_hlc = h;
        }
        if (gap) {
            uint64_t to;
            stm_oplog_add_pruned(batch, &gap->origin, gap->next, gap->gap_to, &to);
            *got += (size_t)(to - gap->next + 1);
            gap->next = to + 1;
            work++;
            continue;
        }
        if (!best)
            break;
        /* A large row change goes alone, so that a batch is either of the usual size or
         * one row change: it is left for the next call when this one has read anything.
         * (One too large to travel is a small stand-in, which goes with the rest.) */
        uint64_t bytes = s_change_bytes(best->stmt);
        if (bytes > max_bytes && bytes <= r->limit && *got > 0)
            break;
        uint64_t before = stm_opbatch_covered(batch);
        size_t ops_before = stm_opbatch_count(batch),
               standins_before = stm_opbatch_withheld_count(batch);
        stm_err rc;
        if (bytes > r->limit) {
            /* Too large to travel: a stand-in goes in its place (op.h), and its values
             * are never copied. */
            op_t head;
            uint64_t seq;
            int64_t n;
            rc = stm_oplog_row_head(r->store, best->stmt, &best->origin, &head, &seq, &n, err);
            if (rc == STM_OK)
                stm_oplog_add_withheld(batch, &head, seq, n, best->since, bytes, true);
        } else {
            rc = stm_oplog_unpack(r->store, best->stmt, &best->origin, best->since, r->max_value, bytes,
                          batch, err);
        }
        if (rc != STM_OK)
            return rc;
        best->ready = false;
        uint64_t end = (uint64_t)sqlite3_column_int64(best->stmt, RC_SEQ) +
                       (uint64_t)sqlite3_column_int64(best->stmt, RC_N);
        if (end > best->next)
            best->next = end;
        *got += (size_t)(stm_opbatch_covered(batch) - before);
        work += stm_opbatch_count(batch) - ops_before;
        for (size_t i = standins_before; i < stm_opbatch_withheld_count(batch); i++) {
            const op_withheld *w = stm_opbatch_withheld_at(batch, i);
            work += w->pruned ? 1 : (size_t)w->n;
        }
    }
    return STM_OK;
}
