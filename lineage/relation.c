#include "relation.h"
#include "base/mem.h"

#include <sqlite3.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

const char *stm_relation_name(relation_kind k)
{
    switch (k) {
    case RELATION_SAME:
        return "same";
    case RELATION_ANCESTOR:
        return "ancestor";
    case RELATION_DESCENDANT:
        return "descendant";
    case RELATION_DIVERGENT:
        return "divergent";
    case RELATION_UNRELATED:
        return "unrelated";
    }
    return "unrelated";
}

const char *stm_column_relation_name(column_relation r)
{
    switch (r) {
    case COLUMN_SHARED:
        return "shared";
    case COLUMN_LOCAL_ONLY:
        return "local_only";
    case COLUMN_REMOTE_ONLY:
        return "remote_only";
    case COLUMN_CONFLICTING:
        return "conflicting";
    }
    return "conflicting";
}

static relation_kind s_kind(size_t nlocal, size_t nremote, size_t common)
{
    if (common == nlocal && common == nremote)
        return RELATION_SAME;
    if (common == nlocal)
        return RELATION_ANCESTOR;
    if (common == nremote)
        return RELATION_DESCENDANT;
    return common ? RELATION_DIVERGENT : RELATION_UNRELATED;
}

relation_kind stm_relation_of_lineages(const lineage_t *local, const lineage_t *remote,
                                       size_t *common)
{
    size_t nl = stm_lineage_count(local), nr = stm_lineage_count(remote);
    size_t n = nl < nr ? nl : nr, i = 0;
    while (i < n && stm_id_equal(&stm_lineage_version_at(local, i)->id,
                                 &stm_lineage_version_at(remote, i)->id))
        i++;
    if (common)
        *common = i;
    return s_kind(nl, nr, i);
}

relation_kind stm_relation_of_families(const family_t *local, const family_t *remote,
                                       size_t *common)
{
    size_t nl = local ? stm_family_count(local) : 0, nr = remote ? stm_family_count(remote) : 0;
    size_t n = nl < nr ? nl : nr, i = 0;
    while (i < n && stm_id_equal(&stm_family_entry_at(local, i)->head,
                                 &stm_family_entry_at(remote, i)->head))
        i++;
    if (common)
        *common = i;
    return s_kind(nl, nr, i);
}

column_relation stm_relation_of_columns(const catalog_column *local, const catalog_column *remote)
{
    if (!remote)
        return COLUMN_LOCAL_ONLY;
    if (!local)
        return COLUMN_REMOTE_ONLY;
    if (local->affinity != remote->affinity || local->pk != remote->pk)
        return COLUMN_CONFLICTING;
    return COLUMN_SHARED;
}

static void s_compare_family(comparison_family *cf, const family_t *local, const family_t *remote)
{
    cf->name = stm_family_name(local ? local : remote);
    cf->relation = stm_relation_of_families(local, remote, &cf->common);
    const catalog_table *lt = local ? stm_family_table(local) : NULL;
    const catalog_table *rt = remote ? stm_family_table(remote) : NULL;
    cf->local_live = lt != NULL;
    cf->remote_live = rt != NULL;
    size_t nl = lt ? stm_catalog_table_count(lt) : 0, nr = rt ? stm_catalog_table_count(rt) : 0;
    /* Counted first, then each list allocated to its size: a peer's wide tables cost
     * one pointer per column here, not four. */
    size_t want[4] = {0};
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1)
            for (int r = 0; r < 4; r++)
                cf->columns[r] = stm_malloc((want[r] ? want[r] : 1) * sizeof(char *));
        for (size_t i = 0; i < nl; i++) {
            const catalog_column *c = stm_catalog_table_column(lt, i);
            column_relation r =
                stm_relation_of_columns(c, rt ? stm_catalog_table_find(rt, c->name) : NULL);
            if (pass == 0)
                want[r]++;
            else
                cf->columns[r][cf->ncolumns[r]++] = c->name;
        }
        for (size_t i = 0; i < nr; i++) {
            const catalog_column *c = stm_catalog_table_column(rt, i);
            if (lt && stm_catalog_table_find(lt, c->name))
                continue;
            if (pass == 0)
                want[COLUMN_REMOTE_ONLY]++;
            else
                cf->columns[COLUMN_REMOTE_ONLY][cf->ncolumns[COLUMN_REMOTE_ONLY]++] = c->name;
        }
    }
}

comparison_t *stm_relation_compare(const lineage_t *local, const lineage_t *remote)
{
    comparison_t *c = stm_calloc(1, sizeof *c);
    c->relation = stm_relation_of_lineages(local, remote, &c->common);
    if (c->common)
        c->common_id = stm_lineage_version_at(local, c->common - 1)->id;
    const lineage_version *lh = stm_lineage_head(local), *rh = stm_lineage_head(remote);
    if (lh) {
        c->stm_local_version = lh->number;
        c->local_id = lh->id;
    }
    if (rh) {
        c->remote_version = rh->number;
        c->remote_id = rh->id;
    }
    /* Both family lists are sorted by folded name: merge them. */
    size_t nl = stm_lineage_family_count(local), nr = stm_lineage_family_count(remote), i = 0,
           j = 0;
    c->families = stm_calloc(nl + nr, sizeof *c->families);
    while (i < nl || j < nr) {
        const family_t *lf = i < nl ? stm_lineage_family_at(local, i) : NULL;
        const family_t *rf = j < nr ? stm_lineage_family_at(remote, j) : NULL;
        int cmp = !lf ? 1 : !rf ? -1 : sqlite3_stricmp(stm_family_name(lf), stm_family_name(rf));
        if (cmp < 0)
            rf = NULL, i++;
        else if (cmp > 0)
            lf = NULL, j++;
        else
            i++, j++;
        s_compare_family(&c->families[c->nfamilies++], lf, rf);
    }
    return c;
}

void stm_comparison_destroy(comparison_t **self_p)
{
    comparison_t *c = *self_p;
    if (!c)
        return;
    for (size_t i = 0; i < c->nfamilies; i++) {
        comparison_family *cf = &c->families[i];
        for (int r = 0; r < 4; r++)
            free(cf->columns[r]);
        free(cf->renamed);
    }
    free(c->families);
    free(c);
    *self_p = NULL;
}

/* The number of the version with id in set (0 when none). */
static int s_number_in(const lineage_t *set, int number, const stm_id *id)
{
    if (number < 1 || (size_t)number > stm_lineage_count(set))
        return 0;
    return stm_id_equal(&stm_lineage_version_at(set, (size_t)number - 1)->id, id) ? number : 0;
}

/* Removes names[k] keeping the order. */
static void s_drop_at(const char **names, size_t *n, size_t k)
{
    memmove(&names[k], &names[k + 1], (*n - k - 1) * sizeof *names);
    (*n)--;
}

static comparison_family *s_family(comparison_t *c, const char *name)
{
    for (size_t i = 0; i < c->nfamilies; i++)
        if (sqlite3_stricmp(c->families[i].name, name) == 0)
            return &c->families[i];
    return NULL;
}

void stm_comparison_follow(comparison_t *c, const lens_set_t *lenses, const lineage_t *set)
{
    int here = s_number_in(set, c->stm_local_version, &c->local_id);
    int there = s_number_in(set, c->remote_version, &c->remote_id);
    if (!here || !there || here == there || (size_t)here > stm_lens_count(lenses) ||
        (size_t)there > stm_lens_count(lenses))
        return;
    for (size_t i = 0; i < c->nfamilies; i++) {
        comparison_family *f = &c->families[i];
        const char *table, *column;
        if (f->local_live && !f->remote_live && !f->renamed_table &&
            stm_lens_translate_table(lenses, here, f->name, there, &table)) {
            comparison_family *g = s_family(c, table);
            if (g && g != f && g->remote_live && !g->local_live) {
                f->renamed_table = g->name;
                g->renamed_table = f->name;
                /* Its columns renamed on the way, on the side it is here. */
                for (size_t k = 0; k < f->ncolumns[COLUMN_LOCAL_ONLY]; k++) {
                    const char *x = f->columns[COLUMN_LOCAL_ONLY][k];
                    if (!stm_lens_translate(lenses, here, f->name, x, there, &table, &column) ||
                        sqlite3_stricmp(column, x) == 0)
                        continue;
                    /* The name as the other side's lineage holds it (the comparison
                     * lends names from the lineages only). */
                    for (size_t j = 0; j < g->ncolumns[COLUMN_REMOTE_ONLY]; j++)
                        if (sqlite3_stricmp(g->columns[COLUMN_REMOTE_ONLY][j], column) == 0) {
                            f->renamed =
                                stm_realloc(f->renamed, (f->nrenamed + 1) * sizeof *f->renamed);
                            f->renamed[f->nrenamed++] =
                                (column_rename){x, g->columns[COLUMN_REMOTE_ONLY][j]};
                            break;
                        }
                }
            }
            continue;
        }
        if (!f->local_live || !f->remote_live)
            continue;
        const char **mine = f->columns[COLUMN_LOCAL_ONLY], **theirs = f->columns[COLUMN_REMOTE_ONLY];
        for (size_t k = 0; k < f->ncolumns[COLUMN_LOCAL_ONLY];) {
            size_t at = SIZE_MAX;
            if (stm_lens_translate(lenses, here, f->name, mine[k], there, &table, &column) &&
                sqlite3_stricmp(table, f->name) == 0)
                for (size_t j = 0; j < f->ncolumns[COLUMN_REMOTE_ONLY] && at == SIZE_MAX; j++)
                    if (sqlite3_stricmp(theirs[j], column) == 0)
                        at = j;
            if (at == SIZE_MAX) {
                k++;
                continue;
            }
            f->renamed = stm_realloc(f->renamed, (f->nrenamed + 1) * sizeof *f->renamed);
            f->renamed[f->nrenamed++] = (column_rename){mine[k], theirs[at]};
            s_drop_at(theirs, &f->ncolumns[COLUMN_REMOTE_ONLY], at);
            s_drop_at(mine, &f->ncolumns[COLUMN_LOCAL_ONLY], k);
        }
    }
}

void stm_comparison_follow_branch(comparison_t *c, const lens_set_t *lenses,
                                  const lineage_t *set, const lens_branch *b, size_t upto)
{
    int here = s_number_in(set, c->stm_local_version, &c->local_id);
    if (!here || b->base < 1 || (size_t)b->base > stm_lens_count(lenses) ||
        (size_t)here > stm_lens_count(lenses))
        return;
    for (size_t i = 0; i < c->nfamilies; i++) {
        comparison_family *f = &c->families[i];
        const char *tb, *th;
        /* A table only there that the branch renamed from one only here. */
        if (f->remote_live && !f->local_live && !f->renamed_table &&
            stm_lens_walk_back(b, upto, f->name, NULL, &tb, NULL) &&
            stm_lens_translate_table(lenses, b->base, tb, here, &th)) {
            comparison_family *g = s_family(c, th);
            if (g && g != f && g->local_live && !g->remote_live && !g->renamed_table) {
                f->renamed_table = g->name;
                g->renamed_table = f->name;
            }
            continue;
        }
        if (!f->local_live || !f->remote_live)
            continue;
        const char **mine = f->columns[COLUMN_LOCAL_ONLY], **theirs = f->columns[COLUMN_REMOTE_ONLY];
        for (size_t k = 0; k < f->ncolumns[COLUMN_REMOTE_ONLY];) {
            const char *cb, *ch;
            size_t at = SIZE_MAX;
            if (stm_lens_walk_back(b, upto, f->name, theirs[k], &tb, &cb) &&
                stm_lens_translate(lenses, b->base, tb, cb, here, &th, &ch) &&
                sqlite3_stricmp(th, f->name) == 0)
                for (size_t j = 0; j < f->ncolumns[COLUMN_LOCAL_ONLY] && at == SIZE_MAX; j++)
                    if (sqlite3_stricmp(mine[j], ch) == 0)
                        at = j;
            if (at == SIZE_MAX) {
                k++;
                continue;
            }
            f->renamed = stm_realloc(f->renamed, (f->nrenamed + 1) * sizeof *f->renamed);
            f->renamed[f->nrenamed++] = (column_rename){mine[at], theirs[k]};
            s_drop_at(mine, &f->ncolumns[COLUMN_LOCAL_ONLY], at);
            s_drop_at(theirs, &f->ncolumns[COLUMN_REMOTE_ONLY], k);
        }
    }
}
