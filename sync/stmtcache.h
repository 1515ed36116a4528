/* stmtcache.h - prepared statements of one connection, kept from one transaction to
 * the next.
 *
 * The apply path runs a handful of statements per row change; preparing one costs
 * more than running it, so each is prepared once. A cache holds two sorts:
 *
 *   fixed   statements whose SQL never changes, named by their index in a table
 *           of SQL the owner gives at creation (the clock, vector and parking
 *           statements);
 *   built   statements the owner builds for a shape of work, looked up by a key
 *           (owner, kind, mask) without building their SQL again (the row writes:
 *           one per table, kind and set of columns), or by their SQL text when no
 *           mask can name the shape (a table of more than 64 columns).
 *
 * Invariants:
 *
 *  1. A statement handed out is reset and has no bindings, whatever its last user
 *     left behind; it stays the cache's (lent until stm_stmtcache_clear or destroy).
 *  2. A key is compared, never followed: an owner pointer names its statements only
 *     while the object it points to lives. Whoever frees the objects behind keys
 *     calls stm_stmtcache_clear first, before the address can name another (the applier
 *     does when it reads the schema again, since its tables are freed).
 *  3. stm_stmtcache_clear and stm_stmtcache_destroy finalize every statement the cache
 *     prepared, so that the connection can be closed after it. */
#ifndef STM_STMTCACHE_H
#define STM_STMTCACHE_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

typedef struct stmtcache stmtcache_t;

/* A cache for db (lent; it must outlive the cache). fixed[0..nfixed) is the SQL of
 * the fixed statements, lent (a static table). The caller owns the result
 * (stm_stmtcache_destroy). */
stmtcache_t *stm_stmtcache_new(sqlite3 *db, const char *const *fixed, size_t nfixed);
void stm_stmtcache_destroy(stmtcache_t **self_p);

/* Fixed statement q (below nfixed), prepared on first use; lent. NULL when SQLite
 * refuses to prepare it (sqlite3_errmsg says why). */
sqlite3_stmt *stm_stmtcache_fixed(stmtcache_t *c, size_t q);

/* The statement kept under (owner, kind, mask), lent; NULL when there is none yet. */
sqlite3_stmt *stm_stmtcache_get(stmtcache_t *c, const void *owner, int kind, uint64_t mask);
/* Prepares sql and keeps it under (owner, kind, mask), which holds none yet;
 * returns it, lent, or NULL when SQLite refuses to prepare it (then nothing is
 * kept). owner must not be NULL. */
sqlite3_stmt *stm_stmtcache_add(stmtcache_t *c, const void *owner, int kind, uint64_t mask,
                                const char *sql);
/* The statement for sql, prepared on its first use, lent; NULL when SQLite refuses.
 * A linear search: for the few shapes no mask can name. */
sqlite3_stmt *stm_stmtcache_sql(stmtcache_t *c, const char *sql);

/* Finalizes every statement and forgets every key. */
void stm_stmtcache_clear(stmtcache_t *c);
/* How many statements the cache holds prepared (fixed ones included). */
size_t stm_stmtcache_count(const stmtcache_t *c);

#endif
