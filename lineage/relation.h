/* relation.h - how two histories relate, per database, per family and per column.
 *
 * Both histories are hash chains, so they share a version exactly when they share every
 * version before it: comparing them is finding the length of their common prefix, a
 * linear walk. With `common` versions shared out of nlocal and nremote:
 *
 *   same        nlocal == nremote == common
 *   ancestor    common == nlocal < nremote    (local is an ancestor: remote is newer)
 *   descendant  common == nremote < nlocal    (local is newer)
 *   divergent   0 < common < both             (the histories parted after `common`)
 *   unrelated   common == 0 < both            (no common ancestor)
 *
 * An empty history is an ancestor of every other. Two versions with the same number
 * and different text have different ids, so they diverge: they are never `same`. */
#ifndef STM_RELATION_H
#define STM_RELATION_H

#include "lens.h"
#include "lineage.h"

typedef enum {
    RELATION_SAME,
    RELATION_ANCESTOR,
    RELATION_DESCENDANT,
    RELATION_DIVERGENT,
    RELATION_UNRELATED,
} relation_kind;

typedef enum {
    COLUMN_SHARED,      /* on both sides with the same affinity and key role */
    COLUMN_LOCAL_ONLY,  /* only here */
    COLUMN_REMOTE_ONLY, /* only on the other side */
    COLUMN_CONFLICTING, /* on both, but the affinity or the primary-key role differs */
} column_relation;

/* "same", "ancestor", ...: static. */
const char *stm_relation_name(relation_kind k);
/* "shared", "local_only", ...: static. */
const char *stm_column_relation_name(column_relation r);

/* How two databases' lineages relate; *common is how many versions they share (the
 * common ancestor is version *common when it is not 0). */
relation_kind stm_relation_of_lineages(const lineage_t *local, const lineage_t *remote,
                                       size_t *common);
/* The same for two families' histories (either may be NULL: no history). */
relation_kind stm_relation_of_families(const family_t *local, const family_t *remote,
                                       size_t *common);
/* How one column relates, given its definition on each side (either may be NULL). */
column_relation stm_relation_of_columns(const catalog_column *local, const catalog_column *remote);

/* A column here held there under another name (or the other way): renamed, or carried
 * through a rebuild or a renamed table (lineage/lens.h). Names lent. */
typedef struct {
    const char *here, *there;
} column_rename;

/* The column names of one family, sorted into the four relations. Names are lent by
 * the two lineages compared: a comparison must not outlive them. */
typedef struct {
    const char *name;         /* the family's name */
    relation_kind relation;   /* of the family histories */
    size_t common;            /* family entries both share */
    bool local_live;          /* the table exists here now */
    bool remote_live;         /* the table exists there now */
    const char **columns[4];  /* names (the arrays owned), indexed by column_relation */
    size_t ncolumns[4];
    column_rename *renamed;   /* columns on one side only that the other holds under
                                 another name (stm_comparison_follow); owned. In a table
                                 renamed (renamed_table), on the family here: its columns
                                 renamed on the way (there: in renamed_table) */
    size_t nrenamed;
    const char *renamed_table; /* a table on one side only that is this one under another
                                  name on the other (stm_comparison_follow); lent */
} comparison_family;

/* A whole comparison: the caller's (stm_comparison_destroy). */
typedef struct {
    relation_kind relation; /* of the database lineages */
    size_t common;          /* versions shared; the common ancestor is version `common` */
    stm_id common_id;       /* its id (zero when common is 0) */
    int stm_local_version;  /* head numbers (0 when empty) and ids */
    int remote_version;
    stm_id local_id;
    stm_id remote_id;
    comparison_family *families; /* every family either side has, in order of name */
    size_t nfamilies;
} comparison_t;

/* The caller owns the result; it borrows names from local and remote, which must
 * outlive it. */
comparison_t *stm_relation_compare(const lineage_t *local, const lineage_t *remote);
void stm_comparison_destroy(comparison_t **self_p);

/* Follows renames through lenses (both lent; set is the lineage they were derived from)
 * when both heads compared are versions of set: a column only here that set says is a
 * column only there under another name moves from those lists to the family's renamed
 * pairs, and a table only here that is a table only there gets its other name; what is
 * renamed is translated when operations apply (sync/apply.h), not parked. Nothing changes
 * when a head is not in set (a divergent branch, another history). */
void stm_comparison_follow(comparison_t *c, const lens_set_t *lenses, const lineage_t *set);
/* The same for a remote head on another branch b (lent; its version base + upto is the
 * remote head): a column only there that b walks back to the version both hold, and
 * lenses (derived from set) bring on to a column only here in the same table, is a
 * renamed pair; a table only there that b walks back to one lenses bring on to a table
 * only here is the same table renamed (renamed_table, both ways; its columns are
 * compared by name). */
void stm_comparison_follow_branch(comparison_t *c, const lens_set_t *lenses,
                                  const lineage_t *set, const lens_branch *b, size_t upto);

#endif
