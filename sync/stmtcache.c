/* stmtcache.c - prepared statements kept between transactions; the invariants are
 * in stmtcache.h. Keyed statements live in an open-addressing table (linear probing,
 * at most half full), so that the lookup the apply path makes per row change is a
 * hash and, nearly always, one comparison. */
#include "stmtcache.h"
#include "base/mem.h"

#include <assert.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* A statement kept under a key. */
typedef struct {
    const void *owner; /* NULL: an empty slot */
    int kind;
    uint64_t mask;
    sqlite3_stmt *stmt; /* owned */
} s_keyed;

/* A statement kept under its SQL text. */
typedef struct {
    char *sql;          /* owned */
    sqlite3_stmt *stmt; /* owned */
} s_text;

struct stmtcache {
    sqlite3 *db;            /* lent */
    const char *const *sql; /* the fixed statements' SQL, lent */
    size_t nfixed;
    sqlite3_stmt **fixed; /* by index, NULL until first used; owned */
    s_keyed *slots;       /* the keyed statements' table */
    size_t nslots;        /* a power of two, or 0 */
    size_t nkeyed;        /* slots in use */
    s_text *texts;        /* the statements kept under their SQL */
    size_t ntexts, texts_cap;
};

stmtcache_t *stm_stmtcache_new(sqlite3 *db, const char *const *fixed, size_t nfixed)
{
    stmtcache_t *c = stm_calloc(1, sizeof *c);
    c->db = db;
    c->sql = fixed;
    c->nfixed = nfixed;
    c->fixed = stm_calloc(nfixed + 1, sizeof *c->fixed);
    return c;
}

void stm_stmtcache_destroy(stmtcache_t **self_p)
{
    stmtcache_t *c = *self_p;
    if (!c)
        return;
    stm_stmtcache_clear(c);
    free(c->fixed);
    free(c->slots);
    free(c->texts);
    free(c);
    *self_p = NULL;
}

void stm_stmtcache_clear(stmtcache_t *c)
{
    for (size_t q = 0; q < c->nfixed; q++) {
        sqlite3_finalize(c->fixed[q]);
        c->fixed[q] = NULL;
    }
    for (size_t i = 0; i < c->nslots; i++)
        sqlite3_finalize(c->slots[i].stmt);
    free(c->slots);
    c->slots = NULL;
    c->nslots = c->nkeyed = 0;
    for (size_t i = 0; i < c->ntexts; i++) {
        sqlite3_finalize(c->texts[i].stmt);
        free(c->texts[i].sql);
    }
    c->ntexts = 0;
}

size_t stm_stmtcache_count(const stmtcache_t *c)
{
    size_t n = c->nkeyed + c->ntexts;
    for (size_t q = 0; q < c->nfixed; q++)
        n += c->fixed[q] != NULL;
    return n;
}

/* Persistent: these statements live as long as the connection's schema does. */
static sqlite3_stmt *s_prepare(stmtcache_t *c, const char *sql)
{
    sqlite3_stmt *stmt = NULL;
    if (sqlite3_prepare_v3(c->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, NULL) != SQLITE_OK)
        return NULL;
    return stmt;
}

/* Invariant 1: what the last user left behind is gone. */
static sqlite3_stmt *s_lend(sqlite3_stmt *stmt)
{
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
    return stmt;
}

sqlite3_stmt *stm_stmtcache_fixed(stmtcache_t *c, size_t q)
{
    assert(q < c->nfixed);
    if (!c->fixed[q])
        return c->fixed[q] = s_prepare(c, c->sql[q]);
    return s_lend(c->fixed[q]);
}

/* The slot holding (owner, kind, mask), or the empty one where it would go. */
static size_t s_slot(const stmtcache_t *c, const void *owner, int kind, uint64_t mask)
{
    uint64_t h = (uint64_t)(uintptr_t)owner * 0x9E3779B97F4A7C15ull ^ mask * 0xC2B2AE3D27D4EB4Full ^
                 (uint64_t)kind;
    size_t s = (size_t)(h ^ h >> 29) & (c->nslots - 1);
    while (c->slots[s].owner &&
           !(c->slots[s].owner == owner && c->slots[s].kind == kind && c->slots[s].mask == mask))
        s = (s + 1) & (c->nslots - 1);
    return s;
}

sqlite3_stmt *stm_stmtcache_get(stmtcache_t *c, const void *owner, int kind, uint64_t mask)
{
    if (!c->nslots)
        return NULL;
    size_t s = s_slot(c, owner, kind, mask);
    return c->slots[s].owner ? s_lend(c->slots[s].stmt) : NULL;
}

sqlite3_stmt *stm_stmtcache_add(stmtcache_t *c, const void *owner, int kind, uint64_t mask,
                                const char *sql)
{
    assert(owner);
    /* At most half full, so that probes stay short and always end. */
    if ((c->nkeyed + 1) * 2 > c->nslots) {
        size_t old_n = c->nslots;
        s_keyed *old = c->slots;
        c->nslots = old_n ? old_n * 2 : 64;
        c->slots = stm_calloc(c->nslots, sizeof *c->slots);
        for (size_t i = 0; i < old_n; i++)
            if (old[i].owner)
                c->slots[s_slot(c, old[i].owner, old[i].kind, old[i].mask)] = old[i];
        free(old);
    }
    size_t s = s_slot(c, owner, kind, mask);
    assert(!c->slots[s].owner);
    sqlite3_stmt *stmt = s_prepare(c, sql);
    if (stmt) {
        c->slots[s] = (s_keyed){owner, kind, mask, stmt};
        c->nkeyed++;
    }
    return stmt;
}

sqlite3_stmt *stm_stmtcache_sql(stmtcache_t *c, const char *sql)
{
    for (size_t i = 0; i < c->ntexts; i++)
        if (strcmp(c->texts[i].sql, sql) == 0)
            return s_lend(c->texts[i].stmt);
    sqlite3_stmt *stmt = s_prepare(c, sql);
    if (stmt) {
        c->texts = stm_grow(c->texts, &c->texts_cap, c->ntexts + 1, sizeof *c->texts);
        c->texts[c->ntexts].sql = stm_strdup(sql);
        c->texts[c->ntexts].stmt = stmt;
        c->ntexts++;
    }
    return stmt;
}
