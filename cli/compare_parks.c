/* compare_parks.c - what parks between two schema histories, and when it replays
 * (compare_parks.h). */
#include "compare_parks.h"
#include "base/mem.h"

#include <stdlib.h>

const char *compare_parks_kind_name(parks_kind k)
{
    switch (k) {
    case PARKS_MISSING:
        return "missing";
    case PARKS_DROPPED:
        return "dropped";
    case PARKS_POLICY:
        return "policy";
    }
    return "policy";
}

/* The first version after `after` of table's history in l at which the table (column
 * NULL) or its column exists (want true) or does not (want false); 0 when none. */
static int s_first(const lineage_t *l, const char *table, const char *column, int after, bool want)
{
    const family_t *f = stm_lineage_family_find(l, table);
    for (size_t i = 0; f && i < stm_family_count(f); i++) {
        const family_entry *e = stm_family_entry_at(f, i);
        if (e->version <= after)
            continue;
        bool has = e->table && (!column || stm_catalog_table_find(e->table, column));
        if (has == want)
            return e->version;
    }
    return 0;
}

typedef struct {
    parks_item *items;
    size_t n, cap;
    const comparison_t *c;
    const lineage_t *local, *remote;
} s_list;

/* Adds table.column (column NULL: the table), which exists only on the side named by
 * on_local. */
static void s_add(s_list *l, const char *table, const char *column, bool on_local)
{
    const comparison_t *c = l->c;
    parks_item it = {.table = table, .column = column, .here = !on_local};
    if (c->relation == RELATION_DIVERGENT) {
        it.kind = PARKS_POLICY;
    } else {
        /* One history goes on from the other: the older head's number, and whether what
         * exists on one side only is the newer side's (added since) or the older's
         * (dropped since), by the newer history. */
        bool local_newer = c->relation == RELATION_DESCENDANT;
        const lineage_t *newer = local_newer ? l->local : l->remote;
        int older = local_newer ? c->remote_version : c->stm_local_version;
        bool on_newer = on_local == local_newer;
        it.kind = on_newer ? PARKS_MISSING : PARKS_DROPPED;
        it.version = s_first(newer, table, column, older, on_newer);
    }
    l->items = stm_grow(l->items, &l->cap, l->n + 1, sizeof *l->items);
    l->items[l->n++] = it;
}

size_t compare_parks(const comparison_t *c, const lineage_t *local, const lineage_t *remote,
                     const syncable_table *local_unsynced, size_t nlocal,
                     const syncable_table *remote_unsynced, size_t nremote, parks_item **out)
{
    *out = NULL;
    /* Nothing syncs between unrelated histories, and nothing differs in the same. */
    if (c->relation == RELATION_UNRELATED || c->relation == RELATION_SAME)
        return 0;
    s_list l = {.c = c, .local = local, .remote = remote};
    for (size_t i = 0; i < c->nfamilies; i++) {
        const comparison_family *f = &c->families[i];
        if ((f->local_live && stm_syncable_find(local_unsynced, nlocal, f->name)) ||
            (f->remote_live && stm_syncable_find(remote_unsynced, nremote, f->name)) ||
            f->renamed_table)
            continue;
        if (f->local_live != f->remote_live) {
            s_add(&l, f->name, NULL, f->local_live);
            continue;
        }
        for (size_t k = 0; k < f->ncolumns[COLUMN_LOCAL_ONLY]; k++)
            s_add(&l, f->name, f->columns[COLUMN_LOCAL_ONLY][k], true);
        for (size_t k = 0; k < f->ncolumns[COLUMN_REMOTE_ONLY]; k++)
            s_add(&l, f->name, f->columns[COLUMN_REMOTE_ONLY][k], false);
    }
    *out = l.items;
    return l.n;
}
