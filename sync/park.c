/* park.c - operations held back, and retrying them; the invariants are in park.h.
 *
 * Operations parked for a constraint are found by what they wait for (invariant 4):
 * the rows a transaction writes are noted as wakes (stm_park_wrote, from the
 * transaction's clock writes) and, after each batch, looked up in stemma_parked_wait
 * (stm_park_wake). What a batch pays for that, however much is parked: one read of
 * stemma_local.wait_gen a transaction (whether the wakes changed elsewhere), a digest
 * per row written, a look in a Bloom filter of the rows' wakes (s_filter) and, only
 * for a row the filter may hold, an index probe. Nothing is noted while no operation
 * waits; a table's wake only while one waits for a table. */
#include "park.h"
#include "key.h"
#include "stmtcache.h"
#include "base/buf.h"
#include "base/mem.h"

#include <assert.h>
#include <errno.h>
#include <sodium.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    Q_PARK,  /* why an operation is parked */
    Q_LIST,  /* parked operations of a kind */
    Q_CLEAR, /* ... taken out for a retry */
    Q_ANY,
    Q_COUNT,
    Q_LIST_ALL, /* the same four for every kind, in the same order */
    Q_CLEAR_ALL,
    Q_ANY_ALL,
    Q_COUNT_ALL,
    Q_LIST_ADMITTED, /* the same four for every kind but 'policy' */
    Q_CLEAR_ADMITTED,
    Q_ANY_ADMITTED,
    Q_COUNT_ADMITTED,
    Q_WAIT_ADD,   /* a wake of an operation parked for a constraint */
    Q_WAIT_DROP,  /* ... all of one operation's */
    Q_WAIT_FIND,  /* the operations waiting for a wake */
    Q_WAIT_SOME,  /* does any operation wait for a row? a table? anything? */
    Q_WAIT_GEN,   /* have the wakes changed? */
    Q_WAIT_CLEAR, /* every wake: every operation parked for a constraint taken out */
    Q_TAKE_ONE,   /* one operation parked for a constraint, taken out for a retry */
    Q_WAIT_ROWS,  /* every row's wake, for the filter */
    Q_WAIT_BUMP,  /* the wakes changed: stemma_local.wait_gen moves */
    Q_N
};
#define Q_ALL (Q_LIST_ALL - Q_LIST) /* from a kind's statement to every kind's */
#define Q_ADMITTED (Q_LIST_ADMITTED - Q_LIST) /* ... to every kind's but 'policy' */

/* ?1 is a kind's name. One statement for a kind and another for every kind, not
 * "?1 IS NULL OR kind = ?1": SQLite cannot use stemma_parked_kind for that OR, and a
 * check after every batch would read every parked operation (a million took 0.2 s). */
static const char *const s_sql[Q_N] = {
    /* An upsert, not INSERT OR REPLACE, whose delete would fire no trigger: the
     * counts by reason (store.h) follow a reason replaced. */
    [Q_PARK] = ("INSERT INTO stemma_parked (origin, seq, kind, reason) VALUES (?1, ?2, ?3, ?4) "
                "ON CONFLICT (origin, seq) DO UPDATE SET kind = excluded.kind, "
                "reason = excluded.reason"),
    [Q_LIST] = "SELECT origin, seq FROM stemma_parked WHERE kind = ?1 ORDER BY origin, seq",
    [Q_CLEAR] = "DELETE FROM stemma_parked WHERE kind = ?1",
    [Q_ANY] = "SELECT 1 FROM stemma_parked WHERE kind = ?1 LIMIT 1",
    [Q_COUNT] = "SELECT count(*) FROM stemma_parked WHERE kind = ?1",
    [Q_LIST_ALL] = "SELECT origin, seq FROM stemma_parked ORDER BY origin, seq",
    [Q_CLEAR_ALL] = "DELETE FROM stemma_parked",
    [Q_ANY_ALL] = "SELECT 1 FROM stemma_parked LIMIT 1",
    [Q_COUNT_ALL] = "SELECT count(*) FROM stemma_parked",
    [Q_LIST_ADMITTED] = ("SELECT origin, seq FROM stemma_parked WHERE kind <> 'policy' "
                         "ORDER BY origin, seq"),
    [Q_CLEAR_ADMITTED] = "DELETE FROM stemma_parked WHERE kind <> 'policy'",
    [Q_ANY_ADMITTED] = "SELECT 1 FROM stemma_parked WHERE kind <> 'policy' LIMIT 1",
    [Q_COUNT_ADMITTED] = "SELECT count(*) FROM stemma_parked WHERE kind <> 'policy'",
    [Q_WAIT_ADD] = ("INSERT OR IGNORE INTO stemma_parked_wait (wake, origin, seq) "
                    "VALUES (?1, ?2, ?3)"),
    [Q_WAIT_DROP] = "DELETE FROM stemma_parked_wait WHERE origin = ?1 AND seq = ?2",
    [Q_WAIT_FIND] = "SELECT origin, seq FROM stemma_parked_wait WHERE wake = ?1",
    /* One seek (SQLite reads a lone min() off the index's edge): tables' wakes are
     * negative, anything's 0, rows' positive. */
    [Q_WAIT_SOME] = "SELECT min(wake) FROM stemma_parked_wait",
    [Q_WAIT_GEN] = "SELECT wait_gen FROM stemma_local WHERE id = 1",
    [Q_WAIT_CLEAR] = "DELETE FROM stemma_parked_wait",
    [Q_TAKE_ONE] = ("DELETE FROM stemma_parked WHERE origin = ?1 AND seq = ?2 AND "
                    "kind = 'constraint'"),
    [Q_WAIT_ROWS] = "SELECT wake FROM stemma_parked_wait WHERE wake > 0",
    [Q_WAIT_BUMP] = "UPDATE stemma_local SET wait_gen = wait_gen + 1 WHERE id = 1",
};

/* What operations parked for a constraint wait for (invariant 4), as far as the
 * transaction knows: looked up once in it, and added to as it parks. What is not
 * waited for by any is neither noted nor looked up: a table's wake when none waits for
 * a table, anything when none waits for anything, nothing at all when none waits. */
typedef struct {
    bool looked;       /* in this transaction (stm_park_begin forgets) */
    bool rows;         /* some wait for a row */
    bool tables;       /* ... for a table */
    bool any;          /* ... for anything */
    int64_t gen;       /* stemma_local.wait_gen as the transaction began (-1: not known) */
    bool moved;        /* ... and moved on since, by this transaction's changes */
    int64_t kinds_gen; /* the wait_gen rows, tables and any were found at: good again
                        * in a transaction that finds it unchanged (-1: none) */
} s_watch;

/* The rows' wakes in stemma_parked_wait, as a Bloom filter: a row written whose wake
 * it lacks wakes nothing, and is not looked up (a million wakes fill 20 MB, which a
 * lookup per row written reads at random; the filter takes 2 MB and no read). Read
 * whole when first needed; good while stemma_local.wait_gen, which every transaction
 * that changes the wakes moves, is where it was (so another program's parking, or
 * another park object's, makes it be read again); what this one parks is added to
 * it, and what it takes out stays in it (a wake it holds in vain only costs a
 * lookup). */
typedef struct {
    uint64_t *bits; /* owned; NULL: none (read at the next need) */
    uint64_t mask;  /* blocks - 1, blocks (of 512 bits) a power of two */
    size_t held;    /* wakes added */
    size_t room;    /* ... before it is too full to be worth it: read again */
    int64_t gen;    /* the wait_gen it holds the wakes of */
} s_filter;

struct park {
    store_t *store;     /* lent */
    oplog_t *log;       /* lent: where parked operations are fetched from */
    stmtcache_t *stmts; /* owned, by Q_* */
    park_warn_fn warn;  /* may be NULL */
    void *warn_ctx;
    bool quiet;    /* in a retry: tell nothing (invariant 3) */
    char **warned; /* "origin/table.column" keys told already */
    size_t nwarned, warned_cap;
    s_watch watch;   /* what is waited for (stm_park_begin forgets) */
    park_wake *rows; /* wakes of the rows written since the last stm_park_wake */
    size_t nrows, rows_cap;
    park_wake *tables; /* ... of their tables, each once */
    size_t ntables, tables_cap;
    s_filter filter;          /* the rows' wakes (not read while none waits for a row) */
    buf_t form;               /* a row's loose form, while its wake is made */
    buf_t prefix;             /* the start of the loose form of prefix_table's rows */
    const char *prefix_table; /* compared by pointer, as last_table */
    const char *last_table;   /* the table of the last row noted, its wake in tables (a
                               * name lent by the caller's catalog, compared by pointer) */
};

park_t *stm_park_new(store_t *store, oplog_t *log, park_warn_fn warn, void *ctx)
{
    park_t *p = stm_calloc(1, sizeof *p);
    p->store = store;
    p->log = log;
    p->stmts = stm_stmtcache_new(stm_store_db(store), s_sql, Q_N);
    p->watch.kinds_gen = -1;
    p->warn = warn;
    p->warn_ctx = ctx;
    return p;
}

void stm_park_destroy(park_t **self_p)
{
    park_t *p = *self_p;
    if (!p)
        return;
    stm_stmtcache_destroy(&p->stmts);
    for (size_t i = 0; i < p->nwarned; i++)
        free(p->warned[i]);
    free(p->warned);
    free(p->rows);
    free(p->tables);
    free(p->filter.bits);
    stm_buf_free(&p->form);
    stm_buf_free(&p->prefix);
    free(p);
    *self_p = NULL;
}

/* ---- wakes (invariant 4) ---- */

/* A wake is a digest of a loose form, written into a buffer and hashed once:
 *
 *   row    "row" NUL, name, u32 n, n values      table  "table" NUL, name
 *   name   u64 length, the name's bytes with ASCII letters in lower case
 *   value  "#" digits NUL    a number: an integer, or a real of integral value that
 *                            fits one, as the integer; any other real in 17 digits;
 *                            and text that reads as one between blanks, as INTEGER,
 *                            REAL and NUMERIC affinity would take it
 *        | "$" u64 len bytes other text, folded as NOCASE and RTRIM fold (ASCII
 *                            letters to lower case, trailing spaces off)
 *        | "b" u64 len bytes a blob      | "n" NULL
 *
 * so that keys SQLite may hold as one row under some affinity or collation have one
 * wake. */

static void s_put_u64(buf_t *b, uint64_t v)
{
    unsigned char bytes[8];
    for (int i = 7; i >= 0; i--, v >>= 8)
        bytes[i] = (unsigned char)v;
    stm_buf_append(b, bytes, 8);
}

/* len bytes, ASCII letters in lower case. */
static void s_put_folded(buf_t *b, const char *bytes, size_t len)
{
    s_put_u64(b, len);
    size_t at = b->len;
    stm_buf_append(b, bytes, len);
    for (size_t j = at; j < b->len; j++)
        if (b->data[j] >= 'A' && b->data[j] <= 'Z')
            b->data[j] = (char)(b->data[j] - 'A' + 'a');
}

static void s_put_number(buf_t *b, bool is_int, int64_t i, double r)
{
    if (!is_int && isfinite(r) && r >= -9223372036854775808.0 && r < 9223372036854775808.0 &&
        r == (double)(int64_t)r) {
        i = (int64_t)r;
        is_int = true;
    }
    char text[48];
    int n = is_int ? snprintf(text, sizeof text, "#%lld", (long long)i)
                   : snprintf(text, sizeof text, "#%.17g", r);
    stm_buf_append(b, text, (size_t)n + 1);
}

static bool s_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

/* Text: a number when it reads as one between blanks; else folded. */
static void s_put_text(buf_t *b, const char *bytes, size_t len)
{
    size_t from = 0, to = len;
    while (from < to && s_space(bytes[from]))
        from++;
    while (to > from && s_space(bytes[to - 1]))
        to--;
    char t[64]; /* longer text is no number any affinity keeps exactly */
    if (from < to && to - from < sizeof t &&
        (bytes[from] == '+' || bytes[from] == '-' || bytes[from] == '.' ||
         (bytes[from] >= '0' && bytes[from] <= '9'))) {
        memcpy(t, bytes + from, to - from);
        t[to - from] = '\0';
        size_t k = t[0] == '+' || t[0] == '-';
        bool digits = t[k] != '\0';
        for (size_t j = k; t[j] && digits; j++)
            digits = t[j] >= '0' && t[j] <= '9';
        char *end = NULL;
        errno = 0;
        if (digits) {
            long long i = strtoll(t, &end, 10);
            if (errno == 0 && *end == '\0') {
                s_put_number(b, true, i, 0);
                return;
            }
        }
        double r = strtod(t, &end);
        if (end != t && *end == '\0') {
            s_put_number(b, false, 0, r);
            return;
        }
    }
    while (len > 0 && bytes[len - 1] == ' ')
        len--;
    stm_buf_append(b, "$", 1);
    s_put_folded(b, bytes, len);
}

/* SipHash-2-4's key for wakes: fixed, since wakes are stored (a change is a new store
 * format). Being public it lets anyone make two keys collide, which buys nothing: an
 * operation waits for its own row, so a peer that wants a row's every write to retry
 * its operations need only send them for that row. */
static const unsigned char s_siphash_key[crypto_shorthash_siphash24_KEYBYTES] = "stemma park wake";

/* The wake of the loose form in b: a row's with the top bit clear, a table's with it
 * set (negative as SQLite holds it), so that whether any operation waits for a table
 * is one look. */
static park_wake s_wake_of(const buf_t *b, bool table)
{
    unsigned char digest[crypto_shorthash_siphash24_BYTES];
    crypto_shorthash_siphash24(digest, (const unsigned char *)b->data, b->len, s_siphash_key);
    park_wake w = 0;
    for (size_t i = 0; i < sizeof digest; i++)
        w = w << 8 | digest[i];
    w = table ? w | PARK_WAKE_TABLE : w & ~PARK_WAKE_TABLE;
    return w == PARK_WAKE_ANY ? 1 : w; /* PARK_WAKE_ANY is no digest's */
}

/* The start of a row's loose form: "row" NUL and table's name. */
static void s_put_row_prefix(buf_t *b, const char *table)
{
    stm_buf_append(b, "row", 4);
    s_put_folded(b, table, strlen(table));
}

/* stm_park_wake_row, its loose form made in b after the prefix b holds already. */
static park_wake s_wake_row_values(buf_t *b, const op_value *parts, size_t n)
{
    s_put_u64(b, n);
    for (size_t i = 0; i < n; i++) {
        const op_value *v = &parts[i];
        switch (v->type) {
        case VALUE_INTEGER:
            s_put_number(b, true, v->i, 0);
            break;
        case VALUE_REAL:
            s_put_number(b, false, 0, v->r);
            break;
        case VALUE_TEXT:
            s_put_text(b, v->bytes, v->len);
            break;
        case VALUE_BLOB:
        case VALUE_KEY: /* not a key column's value: its bytes, as a blob's */
            stm_buf_append(b, "b", 1);
            s_put_u64(b, v->len);
            stm_buf_append(b, v->bytes, v->len);
            break;
        case VALUE_NULL:
            stm_buf_append(b, "n", 1);
            break;
        }
    }
    return s_wake_of(b, false);
}

/* stm_park_wake_key, its loose form made in b after the prefix b holds already. */
static park_wake s_wake_key_values(buf_t *b, const op_value *key)
{
    op_value parts[KEY_MAX_COLUMNS];
    size_t n = 0;
    if (!stm_key_values(key, parts, KEY_MAX_COLUMNS, &n) || n > KEY_MAX_COLUMNS)
        return s_wake_row_values(b, key, 1); /* damaged: its bytes name it */
    return s_wake_row_values(b, parts, n);
}

park_wake stm_park_wake_row(const char *table, const op_value *parts, size_t n)
{
    buf_t b = BUF_INIT;
    s_put_row_prefix(&b, table);
    park_wake w = s_wake_row_values(&b, parts, n);
    stm_buf_free(&b);
    return w;
}

park_wake stm_park_wake_key(const char *table, const op_value *key)
{
    buf_t b = BUF_INIT;
    s_put_row_prefix(&b, table);
    park_wake w = s_wake_key_values(&b, key);
    stm_buf_free(&b);
    return w;
}

park_wake stm_park_wake_table(const char *table)
{
    buf_t b = BUF_INIT;
    stm_buf_append(&b, "table", 6);
    s_put_folded(&b, table, strlen(table));
    park_wake w = s_wake_of(&b, true);
    stm_buf_free(&b);
    return w;
}

/* The name stemma_parked.kind holds for kind (not PARK_ANY). */
static const char *s_kind_name(park_kind kind)
{
    switch (kind) {
    case PARK_SCHEMA:
        return "schema";
    case PARK_CONSTRAINT:
        return "constraint";
    case PARK_AHEAD:
        return "ahead";
    case PARK_POLICY:
        return "policy";
    case PARK_ANY:
    case PARK_ADMITTED:
        break;
    }
    assert(!"no name for PARK_ANY or PARK_ADMITTED");
    return "";
}

/* Fixed statement q with ?1 bound to kind's name; its every-kind twin for PARK_ANY, its
 * every-kind-but-policy twin for PARK_ADMITTED. */
static sqlite3_stmt *s_of_kind(park_t *p, int q, park_kind kind)
{
    if (kind == PARK_ANY)
        return stm_stmtcache_fixed(p->stmts, (size_t)(q + Q_ALL));
    if (kind == PARK_ADMITTED)
        return stm_stmtcache_fixed(p->stmts, (size_t)(q + Q_ADMITTED));
    sqlite3_stmt *stmt = stm_stmtcache_fixed(p->stmts, (size_t)q);
    if (stmt)
        sqlite3_bind_text(stmt, 1, s_kind_name(kind), -1, SQLITE_STATIC);
    return stmt;
}

static void s_warn_once(park_t *p, const op_t *op, const char *reason)
{
    if (!p->warn || p->quiet)
        return;
    char origin[STM_ID_HEX_LEN + 1];
    stm_id_to_hex(&op->origin, origin);
    origin[12] = '\0';
    buf_t key = BUF_INIT;
    stm_buf_printf(&key, "%s/%s.%s", origin, op->table, op->column ? op->column : "");
    for (size_t i = 0; i < p->nwarned; i++) {
        if (strcmp(p->warned[i], stm_buf_str(&key)) == 0) {
            stm_buf_free(&key);
            return;
        }
    }
    p->warned = stm_grow(p->warned, &p->warned_cap, p->nwarned + 1, sizeof *p->warned);
    p->warned[p->nwarned++] = stm_buf_detach(&key);
    buf_t msg = BUF_INIT;
    stm_buf_printf(&msg, "parking operations from %s on %s%s%s: %s", origin, op->table,
                   op->column ? "." : "", op->column ? op->column : "", reason);
    p->warn(p->warn_ctx, stm_buf_str(&msg));
    stm_buf_free(&msg);
}

/* What operations wait for, looked up at its first use in a transaction: wait_gen,
 * and unless it is where it was when the kinds were last found, the least wake (when
 * the database cannot say: everything, which only costs lookups). */
static const s_watch *s_watching(park_t *p)
{
    s_watch *w = &p->watch;
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
static stm_err s_wakes_change(park_t *p, stm_error *err)
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
static const uint64_t *s_block(const s_filter *f, park_wake w)
{
    return f->bits + 8 * (w & f->mask);
}

static void s_filter_add(s_filter *f, park_wake w)
{
    uint64_t *block = f->bits + 8 * (w & f->mask);
    for (int i = 0; i < 4; i++) {
        unsigned bit = (unsigned)(w >> (27 + 9 * i)) & 511;
        block[bit >> 6] |= UINT64_C(1) << (bit & 63);
    }
    f->held++;
}

static bool s_filter_has(const s_filter *f, park_wake w)
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
    s_filter *f = &p->filter;
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
        s_filter_add(f, wakes[i]);
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
static bool s_waiting(park_t *p)
{
    const s_watch *w = s_watching(p);
    return w->rows || w->tables || w->any;
}

/* Runs fixed statement q, Q_WAIT_ADD or Q_WAIT_DROP, for the operation (origin
 * number no, seq), waiting for wake (Q_WAIT_ADD); or Q_TAKE_ONE for (origin, seq).
 * SQLite's result. */
static int s_run_op(park_t *p, int q, int64_t no, const stm_id *origin, uint64_t seq,
                    park_wake wake)
{
    sqlite3_stmt *stmt = stm_stmtcache_fixed(p->stmts, (size_t)q);
    if (!stmt)
        return SQLITE_ERROR;
    int at = 1;
    if (q == Q_WAIT_ADD)
        sqlite3_bind_int64(stmt, at++, (sqlite3_int64)wake);
    if (q == Q_TAKE_ONE)
        sqlite3_bind_blob(stmt, at++, origin->bytes, STM_ID_BYTES, SQLITE_STATIC);
    else
        sqlite3_bind_int64(stmt, at++, no);
    sqlite3_bind_int64(stmt, at, (sqlite3_int64)seq);
    int step = sqlite3_step(stmt);
    sqlite3_reset(stmt);
    return step;
}

/* Parks op as kind (its row in stemma_parked replaced, its wakes gone); *no is its
 * origin's number when some operation waits (its wakes name it so), else 0. */
static stm_err s_park(park_t *p, const op_t *op, park_kind kind, const char *reason, int64_t *no,
                      stm_error *err)
{
    s_warn_once(p, op, reason);
    *no = 0;
    /* Parked again: what it waited for before goes (invariant 4). */
    if (s_waiting(p) || kind == PARK_CONSTRAINT) {
        stm_err rc = stm_store_id_number(p->store, &op->origin, true, no, err);
        if (rc != STM_OK)
            return rc;
    }
    if (s_waiting(p)) {
        stm_err rc = s_wakes_change(p, err);
        if (rc != STM_OK)
            return rc;
        if (s_run_op(p, Q_WAIT_DROP, *no, NULL, op->seq, 0) != SQLITE_DONE)
            return stm_store_error(p->store, err, "parking an operation");
    }
    sqlite3_stmt *park = stm_stmtcache_fixed(p->stmts, Q_PARK);
    if (!park)
        return stm_store_error(p->store, err, "parking an operation");
    sqlite3_bind_blob(park, 1, op->origin.bytes, STM_ID_BYTES, SQLITE_STATIC);
    sqlite3_bind_int64(park, 2, (sqlite3_int64)op->seq);
    sqlite3_bind_text(park, 3, s_kind_name(kind), -1, SQLITE_STATIC);
    sqlite3_bind_text(park, 4, reason, -1, SQLITE_STATIC);
    if (sqlite3_step(park) != SQLITE_DONE)
        return stm_store_error(p->store, err, "parking an operation");
    return STM_OK;
}

stm_err stm_park_op(park_t *p, const op_t *op, park_kind kind, const char *reason, stm_error *err)
{
    if (kind == PARK_CONSTRAINT) {
        const park_wake any = PARK_WAKE_ANY;
        return stm_park_op_waiting(p, op, reason, &any, 1, err);
    }
    int64_t no;
    return s_park(p, op, kind, reason, &no, err);
}

stm_err stm_park_op_waiting(park_t *p, const op_t *op, const char *reason, const park_wake *wakes,
                            size_t n, stm_error *err)
{
    assert(n >= 1 && n <= PARK_WAKES_MAX);
    int64_t no;
    stm_err rc = s_park(p, op, PARK_CONSTRAINT, reason, &no, err);
    if (rc == STM_OK)
        rc = s_wakes_change(p, err);
    for (size_t i = 0; i < n && rc == STM_OK; i++) {
        if (s_run_op(p, Q_WAIT_ADD, no, NULL, op->seq, wakes[i]) != SQLITE_DONE)
            rc = stm_store_error(p->store, err, "parking an operation");
        /* Rows written from now on may free it: noted (invariant 5). */
        if (wakes[i] == PARK_WAKE_ANY) {
            p->watch.any = true;
        } else if (wakes[i] & PARK_WAKE_TABLE) {
            p->watch.tables = true;
        } else {
            p->watch.rows = true;
            s_filter *f = &p->filter;
            if (f->bits && f->held < f->room) {
                s_filter_add(f, wakes[i]);
            } else if (f->bits) { /* too full to tell much: read again when needed */
                free(f->bits);
                f->bits = NULL;
            }
        }
    }
    return rc;
}

stm_err stm_park_release(park_t *p, const op_t *op, stm_error *err)
{
    int64_t no;
    stm_err rc = stm_store_id_number(p->store, &op->origin, false, &no, err);
    if (rc == STM_OK)
        rc = s_wakes_change(p, err);
    if (rc == STM_OK && (s_run_op(p, Q_TAKE_ONE, 0, &op->origin, op->seq, 0) != SQLITE_DONE ||
                         s_run_op(p, Q_WAIT_DROP, no, NULL, op->seq, 0) != SQLITE_DONE))
        rc = stm_store_error(p->store, err, "taking a parked operation out");
    return rc;
}

bool stm_park_any(park_t *p, park_kind kind)
{
    sqlite3_stmt *q = s_of_kind(p, Q_ANY, kind);
    if (!q)
        return false;
    bool any = sqlite3_step(q) == SQLITE_ROW;
    sqlite3_reset(q);
    return any;
}

stm_err stm_park_count(park_t *p, park_kind kind, uint64_t *count, stm_error *err)
{
    *count = 0;
    sqlite3_stmt *q = s_of_kind(p, Q_COUNT, kind);
    if (!q || sqlite3_step(q) != SQLITE_ROW)
        return stm_store_error(p->store, err, "counting parked operations");
    *count = (uint64_t)sqlite3_column_int64(q, 0);
    sqlite3_reset(q);
    return STM_OK;
}

/* Takes the parked operations of kind out of stemma_parked into batch: the retry
 * parks again those that still cannot apply. */
static stm_err s_take(park_t *p, park_kind kind, opbatch_t *batch, stm_error *err)
{
    sqlite3_stmt *q = s_of_kind(p, Q_LIST, kind);
    if (!q)
        return stm_store_error(p->store, err, "reading parked operations");
    /* Collected first: fetching runs other statements on the same tables. */
    stm_id *origins = NULL;
    uint64_t *seqs = NULL;
    size_t n = 0, cap = 0, scap = 0;
    int step;
    while ((step = sqlite3_step(q)) == SQLITE_ROW) {
        if (sqlite3_column_bytes(q, 0) != STM_ID_BYTES)
            continue;
        origins = stm_grow(origins, &cap, n + 1, sizeof *origins);
        seqs = stm_grow(seqs, &scap, n + 1, sizeof *seqs);
        memcpy(origins[n].bytes, sqlite3_column_blob(q, 0), STM_ID_BYTES);
        seqs[n] = (uint64_t)sqlite3_column_int64(q, 1);
        n++;
    }
    stm_err rc =
        step == SQLITE_DONE ? STM_OK : stm_store_error(p->store, err, "reading parked operations");
    sqlite3_reset(q);
    for (size_t i = 0; i < n && rc == STM_OK; i++) {
        bool found;
        rc = stm_oplog_fetch(p->log, &origins[i], seqs[i], batch, &found, err);
    }
    free(origins);
    free(seqs);
    if (rc != STM_OK || !n)
        return rc;
    sqlite3_stmt *clear = s_of_kind(p, Q_CLEAR, kind);
    if (!clear)
        return stm_store_error(p->store, err, "retrying parked operations");
    if (sqlite3_step(clear) != SQLITE_DONE)
        return stm_store_error(p->store, err, "retrying parked operations");
    /* Every wake is an operation's parked for a constraint (invariant 4). */
    if (kind == PARK_CONSTRAINT || kind == PARK_ANY || kind == PARK_ADMITTED) {
        if ((rc = s_wakes_change(p, err)) != STM_OK)
            return rc;
        sqlite3_stmt *waits = stm_stmtcache_fixed(p->stmts, Q_WAIT_CLEAR);
        if (!waits || sqlite3_step(waits) != SQLITE_DONE)
            return stm_store_error(p->store, err, "retrying parked operations");
        /* None waits, until they are parked again. */
        p->watch.rows = p->watch.tables = p->watch.any = false;
    }
    return STM_OK;
}

/* Gives ops[0..n) of batch to apply, quietly (invariant 3). */
static stm_err s_reapply(park_t *p, opbatch_t *batch, park_apply_fn apply, void *ctx,
                         uint64_t *applied, stm_error *err)
{
    *applied = 0;
    size_t n = stm_opbatch_count(batch);
    if (!n)
        return STM_OK;
    const op_t **ops = stm_calloc(n, sizeof *ops);
    for (size_t i = 0; i < n; i++)
        ops[i] = stm_opbatch_at(batch, i);
    p->quiet = true;
    stm_err rc = apply(ctx, ops, n, applied, err);
    p->quiet = false;
    free(ops);
    return rc;
}

stm_err stm_park_retry(park_t *p, park_kind kind, park_apply_fn apply, void *ctx,
                       uint64_t *replayed, stm_error *err)
{
    *replayed = 0;
    opbatch_t *batch = stm_opbatch_new();
    stm_err rc = s_take(p, kind, batch, err);
    if (rc == STM_OK)
        rc = s_reapply(p, batch, apply, ctx, replayed, err);
    stm_opbatch_destroy(&batch);
    return rc;
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
    const s_watch *w = s_watching(p);
    if (!w->rows && !w->tables && !w->any)
        return;
    park_wake row = 1;
    if (w->rows) {
        /* Batches come table by table: the prefix of the last table's rows is kept. */
        if (table != p->prefix_table) {
            stm_buf_reset(&p->prefix);
            s_put_row_prefix(&p->prefix, table);
            p->prefix_table = table;
        }
        stm_buf_reset(&p->form);
        stm_buf_append(&p->form, p->prefix.data, p->prefix.len);
        row = s_wake_key_values(&p->form, key);
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
        rc = s_wakes_change(p, err);
    for (size_t i = 0; i < nwoken && rc == STM_OK; i++) {
        if (i && s_by_op(&woken[i], &woken[i - 1]) == 0)
            continue; /* woken by two of the wakes */
        /* Taken out only when still parked for a constraint: a wake whose operation is
         * not (its row deleted by hand, say) just goes. */
        bool parked = false;
        stm_id origin;
        rc = stm_store_id_of(p->store, woken[i].no, &origin, err);
        if (rc == STM_OK && s_run_op(p, Q_TAKE_ONE, 0, &origin, woken[i].seq, 0) == SQLITE_DONE)
            parked = sqlite3_changes(stm_store_db(p->store)) > 0;
        else if (rc == STM_OK)
            rc = stm_store_error(p->store, err, "retrying parked operations");
        if (rc == STM_OK &&
            s_run_op(p, Q_WAIT_DROP, woken[i].no, NULL, woken[i].seq, 0) != SQLITE_DONE)
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
            rc = s_reapply(p, batch, apply, ctx, &applied, err);
        *replayed += applied;
        idle = applied ? 0 : idle + 1;
    }
    stm_opbatch_destroy(&batch);
    return rc;
}

stm_err stm_park_reasons(store_t *store, size_t max, park_reason **out, size_t *count,
                         stm_error *err)
{
    *out = NULL;
    *count = 0;
    sqlite3_stmt *stmt = NULL;
    /* From the counts kept by reason (store.h): as many rows as reasons, not parked
     * operations. A table before format 7 has none, and is counted. */
    sqlite3_stmt *has = NULL;
    bool kept = sqlite3_prepare_v2(stm_store_db(store),
                                   "SELECT 1 FROM sqlite_schema WHERE name = 'stemma_park_counts'",
                                   -1, &has, NULL) == SQLITE_OK &&
                sqlite3_step(has) == SQLITE_ROW;
    sqlite3_finalize(has);
    if (sqlite3_prepare_v2(stm_store_db(store),
                           kept ? "SELECT reason, n FROM stemma_park_counts WHERE n > 0 "
                                  "ORDER BY n DESC, reason LIMIT ?1"
                                : "SELECT reason, count(*) AS n FROM stemma_parked GROUP BY "
                                  "reason ORDER BY n DESC, reason LIMIT ?1",
                           -1, &stmt, NULL) != SQLITE_OK)
        return stm_store_error(store, err, "counting parked operations");
    /* The list is allocated before anything is read: max is the caller's bound. */
    assert(max <= PARK_REASONS_MAX);
    sqlite3_bind_int64(stmt, 1, (sqlite3_int64)max);
    park_reason *list = stm_calloc(max + 1, sizeof *list);
    size_t n = 0;
    int step;
    while ((step = sqlite3_step(stmt)) == SQLITE_ROW && n < max) {
        const char *reason = (const char *)sqlite3_column_text(stmt, 0);
        list[n].reason = stm_strdup(reason ? reason : "");
        list[n].count = (uint64_t)sqlite3_column_int64(stmt, 1);
        n++;
    }
    stm_err rc = step == SQLITE_DONE || step == SQLITE_ROW
                     ? STM_OK
                     : stm_store_error(store, err, "counting parked operations");
    sqlite3_finalize(stmt);
    if (rc != STM_OK) {
        stm_park_reasons_free(&list, n);
        return rc;
    }
    *out = list;
    *count = n;
    return STM_OK;
}

void stm_park_reasons_free(park_reason **list, size_t count)
{
    if (!*list)
        return;
    for (size_t i = 0; i < count; i++)
        free((*list)[i].reason);
    free(*list);
    *list = NULL;
}
