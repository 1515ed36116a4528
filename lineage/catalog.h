/* catalog.h - what a schema holds, as SQLite itself reports it.
 *
 * A catalog is the set of ordinary tables of a database's main schema (views, virtual
 * tables, their shadow tables and SQLite's own sqlite_* tables are not part of it),
 * each with its columns as `pragma table_xinfo` gives them. Nothing here parses SQL:
 * SQLite runs the migrations and we read the result back.
 *
 * Virtual tables (CREATE VIRTUAL TABLE: FTS5, R*Tree, ...) are kept apart, by name
 * only: `pragma table_list` tells them (type 'virtual') from the shadow tables their
 * module keeps its rows in (type 'shadow'), which are left out altogether. They are
 * part of the schema, but no trigger can capture their rows (lineage/syncable.h).
 *
 * Names compare without regard to ASCII case, as SQLite compares them. */
#ifndef STM_CATALOG_H
#define STM_CATALOG_H

#include "base/error.h"
#include "base/id.h"
#include "directive.h"

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>

/* SQLite's five type affinities (https://sqlite.org/datatype3.html, section 3.1). */
typedef enum {
    AFFINITY_TEXT,
    AFFINITY_NUMERIC,
    AFFINITY_INTEGER,
    AFFINITY_REAL,
    AFFINITY_BLOB,
} catalog_affinity;

/* One column. A plain record; strings are owned by the table that holds it. */
typedef struct {
    char *name;                /* as declared */
    char *decltype;            /* declared type as written, "" when none */
    catalog_affinity affinity; /* derived from decltype by SQLite's rules */
    bool not_null;             /* NOT NULL constraint */
    char *default_sql;         /* the DEFAULT expression's text, NULL when there is none */
    int pk;                    /* 0, or the column's 1-based position in the primary key */
    char *key_collation;       /* a key column's collation in the key ("NOCASE", "RTRIM", ...),
                                * NULL for BINARY and for other columns */
    int hidden; /* table_xinfo's hidden: 0 normal, 2 generated virtual, 3 generated stored */
} catalog_column;

typedef struct catalog_table catalog_table;
typedef struct catalog catalog_t;

/* "TEXT", "NUMERIC", "INTEGER", "REAL", "BLOB": static. */
const char *stm_catalog_affinity_name(catalog_affinity a);
/* Parses one of those names (exact case); false when it is none of them. */
bool stm_catalog_affinity_parse(const char *name, catalog_affinity *out);
/* The affinity SQLite gives a column declared with this type. */
catalog_affinity stm_catalog_affinity_of(const char *decltype);

/* A new empty table definition, the caller's (stm_catalog_table_destroy). */
catalog_table *stm_catalog_table_new(const char *name, bool without_rowid);
catalog_table *stm_catalog_table_copy(const catalog_table *t);
void stm_catalog_table_destroy(catalog_table **self_p);
/* Makes room for n columns in all, exactly (a reader that knows how many will come). */
void stm_catalog_table_reserve(catalog_table *t, size_t n);
/* Appends a copy of col (its strings are copied). */
void stm_catalog_table_add_column(catalog_table *t, const catalog_column *col);
const char *stm_catalog_table_name(const catalog_table *t);
bool stm_catalog_table_without_rowid(const catalog_table *t);
/* The table's keys setting, from a comment in its CREATE TABLE (directive.h);
 * DIRECTIVE_KEYS_DEFAULT when it has none. Part of its definition (digest, export). */
directive_keys stm_catalog_table_keys(const catalog_table *t);
void stm_catalog_table_set_keys(catalog_table *t, directive_keys keys);
size_t stm_catalog_table_count(const catalog_table *t);
/* Column i in declaration order, lent. */
const catalog_column *stm_catalog_table_column(const catalog_table *t, size_t i);
/* How many columns t's primary key has: 0 when it declares none. */
size_t stm_catalog_table_key_count(const catalog_table *t);
/* Column i of t's primary key in key order (PRIMARY KEY (b, a) puts b first), lent;
 * NULL past the end. */
const catalog_column *stm_catalog_table_key(const catalog_table *t, size_t i);
/* The column of that name (any case), lent, or NULL; the first declared when the name
 * comes twice. O(log n) for wide tables (an index built on first use, and again after
 * columns are added). */
const catalog_column *stm_catalog_table_find(const catalog_table *t, const char *name);
/* A column whose name (any case) an earlier column of t already has, lent, or NULL:
 * n log n, for readers of untrusted tables that check names once after reading them. */
const catalog_column *stm_catalog_table_duplicate(const catalog_table *t);
/* True when a and b have the same name, type, affinity, constraints, default, key role
 * and key collation (a change of collation is a change of the column; the digest leaves
 * it out, see stm_catalog_table_digest). */
bool stm_catalog_column_equal(const catalog_column *a, const catalog_column *b);
/* Feeds the table's canonical definition to h (docs/lineage.md defines the bytes): the
 * same columns give the same bytes whatever their order of declaration. */
void stm_catalog_table_digest(const catalog_table *t, stm_hasher *h);

/* Reads the catalog of db's main schema. *out is the caller's (stm_catalog_destroy). */
STM_NODISCARD stm_err stm_catalog_read(sqlite3 *db, catalog_t **out, stm_error *err);
/* The same, taking from prev (lent; NULL: none), an earlier reading of the same
 * database, every table whose CREATE TABLE text is the same as then: SQLite derives
 * all a catalog says of a table from that text (ALTER TABLE rewrites it), so only the
 * tables a migration changed are asked about again. Such a table is shared with prev,
 * not copied: each catalog may be destroyed first. Not for catalogs used by two
 * threads at once. */
STM_NODISCARD stm_err stm_catalog_read_since(sqlite3 *db, const catalog_t *prev, catalog_t **out,
                                             stm_error *err);
/* Another catalog of c's tables, shared as stm_catalog_read_since shares them, for a
 * caller that knows the database's schema is still the one c was read from (inside
 * one write transaction that has not changed it). The caller owns it
 * (stm_catalog_destroy). */
catalog_t *stm_catalog_share(const catalog_t *c);
void stm_catalog_destroy(catalog_t **self_p);
size_t stm_catalog_count(const catalog_t *c);
/* Table i, in order of name (ASCII case folded), lent. */
const catalog_table *stm_catalog_at(const catalog_t *c, size_t i);
/* The table of that name (any case), lent, or NULL. */
const catalog_table *stm_catalog_find(const catalog_t *c, const char *name);
/* How many virtual tables the schema holds, and the name of virtual table i, in order
 * of name (ASCII case folded), lent. */
size_t stm_catalog_virtual_count(const catalog_t *c);
const char *stm_catalog_virtual_at(const catalog_t *c, size_t i);

#endif
