/* lens_internal.h - private to the lens module: only lineage/lens.c, which derives a
 * lens set, lineage/lens_set.c, which answers questions about it and assembles one
 * read back, and lineage/lens_codec.c, which writes it to bytes and reads it back,
 * include it. What they must agree on: the layout of a lens set. */
#ifndef STM_LENS_INTERNAL_H
#define STM_LENS_INTERNAL_H

#include "lens.h"
#include "catalog.h"

/* A column of one version and the identity of the values it holds: two columns of two
 * versions with one identity hold the same values (renamed, moved, cast or filled on the
 * way). Names are the set's (its pool). */
typedef struct {
    const char *table, *column;
    unsigned id;
} lens_column_id;

/* What one migration did. */
typedef struct {
    lens_change *changes;    /* its changes; their strings are each the set's to free */
    size_t count, cap;       /* changes in use, allocated */
    bool probed;             /* its changes are known */
    char *why;               /* why not probed; NULL when probed */
    lens_column_id *columns; /* every column of the version, by (table, column) folded */
    size_t ncolumns;         /* entries in columns */
} lens_step;

struct lens_set {
    lens_step *steps;       /* steps[i]: the migration to version i + 1 */
    size_t count;           /* migrations */
    char **pool;            /* the names the columns' identities point at */
    size_t npool, pool_cap; /* names in pool, room */
    unsigned next_id;       /* the identity the next new column takes */
};

/* Internal. Orders lens_column_id by table then column, ASCII case folded. */
int stm_lens_column_id_cmp(const void *pa, const void *pb);
/* Internal. Appends a change to step s (its strings copied). */
void stm_lens_step_add(lens_step *s, lens_kind kind, const char *table, const char *column,
                       const char *from_table, const char *from_column);
/* Internal. The identities of version i + 1's columns, from its changes and its tables
 * after[0 .. nafter) (their columns in declaration order), and version i's identities. */
void stm_lens_identities(lens_set_t *s, size_t i, const catalog_table *const *after, size_t nafter);

#endif
