/* sqlscript.h - runs a migration's SQL text on a database, one statement at a time,
 * so that a failure names the statement and its line. */
#ifndef STM_SQLSCRIPT_H
#define STM_SQLSCRIPT_H

#include "base/buf.h"
#include "base/error.h"

#include <sqlite3.h>

/* Runs every statement of text (NUL-terminated) on db, in order; rows that statements
 * return are read and discarded. Stops at the first failure and returns STM_EINPUT
 * with "FILE:LINE: SQLite's message (in: first words of the statement)". It opens no
 * transaction of its own: the caller decides. A statement that opens or ends a
 * transaction (BEGIN, COMMIT, ROLLBACK, SAVEPOINT, RELEASE) is refused unless
 * allow_transactions, because stemma runs each migration inside its own. A stemma
 * setting out of place, or one stemma does not know, is refused before anything runs
 * (directive.h). */
STM_NODISCARD stm_err stm_sqlscript_run(sqlite3 *db, const char *file, const char *text,
                                        int allow_transactions, stm_error *err);

/* Called by stm_sqlscript_run_each after each statement is prepared and before it
 * runs: what an authorizer set by the caller learnt from the prepare (which tables the
 * statement writes) can be acted on while the database is still as the statement
 * found it. The callback may run SQL of its own on db; a failure stops the script. */
typedef stm_err (*sqlscript_before_fn)(void *ctx, stm_error *err);

/* stm_sqlscript_run, telling before (may be NULL) of each statement about to run. */
STM_NODISCARD stm_err stm_sqlscript_run_each(sqlite3 *db, const char *file, const char *text,
                                             int allow_transactions, sqlscript_before_fn before,
                                             void *ctx, stm_error *err);

/* Opens a private in-memory database to run migrations on (building a lineage,
 * rehearsing a rollback): *db is the caller's to sqlite3_close. STM_EDB when SQLite
 * cannot. */
STM_NODISCARD stm_err stm_sqlscript_open_memory(sqlite3 **db, stm_error *err);

/* The database's schema cookie (PRAGMA schema_version): it changes whenever the
 * schema does, so a cached catalog is stale when it differs. -1 if it cannot be read. */
int stm_sqlscript_schema_cookie(sqlite3 *db);

/* Appends name to b as a quoted SQL identifier: "name", inner quotes doubled. Every
 * table or column name that stemma puts into SQL text goes through here, and only
 * names read from the local catalog do. */
void stm_sqlscript_quote_ident(buf_t *b, const char *name);

#endif
