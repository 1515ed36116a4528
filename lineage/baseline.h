/* baseline.h - which version of a schema set a database's schema is: for adopting a
 * database that was made without stemma (`stemma migrate --baseline`, Flyway's
 * baseline made exact).
 *
 * A version matches when the database's catalog equals the one the lineage derived for
 * it (lineage/schemacmp.h: tables, columns with their types, NOT NULL, defaults and key
 * roles, WITHOUT ROWID, keys settings, virtual tables), the very comparison the drift
 * check makes for a database that records its version. Tables the schema set never
 * had, at any version, are the application's own and not compared.
 *
 * Two versions may derive the same catalog: a migration that only adds an index, or
 * one that only changes data (chirpstack 007 deletes rows, 003 rewrites a column). When
 * several versions match, their migrations are run in memory and the database's
 * indexes, UNIQUE constraints, foreign keys, triggers and views are compared with each
 * one's as well; if that still leaves several, the schema cannot tell them apart and
 * the caller must be told which (what a data-only migration did is not in a schema).
 * Nothing is guessed: a wrong guess either skips a migration the data never had or
 * runs one again on data that had it. */
#ifndef STM_BASELINE_H
#define STM_BASELINE_H

#include "base/error.h"
#include "lineage.h"
#include "schemacmp.h"
#include "schemaset.h"

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>

/* What stm_baseline_match found. A plain value; its arrays are its own
 * (stm_baseline_match_free). */
typedef struct {
    int *versions;         /* the versions whose schema the database's is, ascending; more
                              than one when the schema cannot tell them apart */
    size_t nversions;      /* entries in versions; 0: none matches */
    int closest;           /* when none matches: the version asked for, else the one it
                              differs from least (a table missing or extra weighs its
                              columns, anything else one; the newest of those; version
                              0 only for an empty set) */
    schemacmp_diff *diffs; /* when none matches: how the database differs from closest
                              (the database as "got": "has column t.x that version 3
                              does not have") */
    size_t ndiffs;         /* entries in diffs */
    bool by_objects;       /* several versions had its catalog, and its indexes,
                              constraints, triggers or views told them apart (or told
                              diffs) */
} baseline_match;

/* Compares the schema of db (main; stemma's own tables left out) with every version 0
 * .. count of l (the lineage of set, both lent). want > 0: the caller says the database
 * is at that version; it matches only if its schema is that version's (and, when
 * several versions have its catalog, its indexes, constraints, triggers and views are
 * too): versions is then {want}, else empty with closest = want. want 0: every version
 * that matches. *out is the caller's (stm_baseline_match_free) whatever this returns.
 * STM_EDB when SQLite fails reading db; STM_EINPUT when a migration fails in memory
 * (it built the lineage, so only when the set changed since) or db has a keys setting
 * stemma does not know. */
STM_NODISCARD stm_err stm_baseline_match(sqlite3 *db, const schemaset_t *set, const lineage_t *l,
                                         int want, baseline_match *out, stm_error *err);

void stm_baseline_match_free(baseline_match *m);

/* The tables and virtual tables of db's catalog c (lent) that the schema set of l ever
 * had, by name as db has them, in c's order; how many. *out is the caller's (the array
 * only: the names are lent by c), NULL when none. A database without schema_version
 * that holds none of them is at version 0 as far as the set can tell. */
size_t stm_baseline_set_tables(const catalog_t *c, const lineage_t *l, const char ***out);

#endif
