/* compare_parks.h - what parks between two schema histories under the default policy,
 * on which side, and whether a migration replays it (and which): for compare's summary,
 * in text and JSON alike.
 *
 * Between an older and a newer history (ancestor, descendant), what only the newer has
 * parks on the older side and replays when it migrates to the version of the newer
 * history that adds it; what only the older has was dropped by the newer, parks there
 * and is never replayed (no version of that history has it). Between divergent
 * histories, what one side lacks parks there for the policy ([policy] divergent =
 * "shared", node/admit.h), and nothing compared here replays it. Tables that cannot sync
 * on a side that has them, and renamed columns and tables (translated), park nothing. */
#ifndef STM_COMPARE_PARKS_H
#define STM_COMPARE_PARKS_H

#include "lineage/relation.h"
#include "lineage/syncable.h"

#include <stdbool.h>
#include <stddef.h>

typedef enum {
    PARKS_MISSING, /* the parking side lacks it yet: replayed at `version` */
    PARKS_DROPPED, /* the parking side dropped it at `version`: never replayed */
    PARKS_POLICY,  /* the parking side lacks it on another branch: parked for the policy */
} parks_kind;

/* One table or column that parks. Names are lent by the comparison's lineages. */
typedef struct {
    const char *table;  /* as the family is named */
    const char *column; /* NULL: the whole table */
    bool here;          /* parked on this side (LOCAL); false: on the remote */
    parks_kind kind;
    int version; /* MISSING: the version that adds it (0: not found); DROPPED: the version
                    that dropped it (0: not found); POLICY: 0 */
} parks_item;

/* What parks between local and remote, compared as c (the caller's; renames followed
 * or not), the tables of each head that cannot sync being local_unsynced and
 * remote_unsynced (stm_syncable_unsynced). Returns how many; *out is the caller's
 * (free), NULL when none. */
size_t compare_parks(const comparison_t *c, const lineage_t *local, const lineage_t *remote,
                     const syncable_table *local_unsynced, size_t nlocal,
                     const syncable_table *remote_unsynced, size_t nremote, parks_item **out);

/* "missing", "dropped", "policy": static. */
const char *compare_parks_kind_name(parks_kind k);

#endif
