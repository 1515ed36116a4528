/* lens_set.c - a lens set: which columns of two versions hold the same values, the
 * questions lens.h answers about it, and a set assembled from changes read back (an
 * exported file). lens.c derives one. */
#include "lens.h"
#include "lens_internal.h"
#include "lineage.h"
#include "base/mem.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

lens_change stm_lens_change_copy(const lens_change *c)
{
    return (lens_change){c->kind, stm_strdup(c->table), c->column ? stm_strdup(c->column) : NULL,
                         c->from_table ? stm_strdup(c->from_table) : NULL,
                         c->from_column ? stm_strdup(c->from_column) : NULL};
}

void stm_lens_change_free(lens_change *c)
{
    free((char *)c->table);
    free((char *)c->column);
    free((char *)c->from_table);
    free((char *)c->from_column);
    memset(c, 0, sizeof *c);
}

void stm_lens_step_add(lens_step *s, lens_kind kind, const char *table, const char *column,
                       const char *from_table, const char *from_column)
{
    s->changes = stm_grow(s->changes, &s->cap, s->count + 1, sizeof *s->changes);
    lens_change c = {kind, table, column, from_table, from_column};
    s->changes[s->count++] = stm_lens_change_copy(&c);
}

/* ---- identities: which columns of two versions hold the same values ---- */

int stm_lens_column_id_cmp(const void *pa, const void *pb)
{
    const lens_column_id *a = pa, *b = pb;
    int c = strcasecmp(a->table, b->table);
    return c ? c : strcasecmp(a->column, b->column);
}

static const lens_column_id *s_find_id(const lens_step *st, const char *table, const char *column)
{
    lens_column_id key = {table, column, 0};
    return st->ncolumns
               ? bsearch(&key, st->columns, st->ncolumns, sizeof key, stm_lens_column_id_cmp)
               : NULL;
}

static const char *s_pooled(lens_set_t *s, const char *name)
{
    s->pool = stm_grow(s->pool, &s->pool_cap, s->npool + 1, sizeof *s->pool);
    return s->pool[s->npool++] = stm_strdup(name);
}

/* The identities of version i + 1's columns: a column renamed, cast or filled holds
 * what its source held; one computed, added or copied holds new values, as does every
 * column of a table replaced; any other holds what the column of its table and name
 * held before, if there was one. A step
 * that could not be probed keeps identities by name. */
void stm_lens_identities(lens_set_t *s, size_t i, const catalog_table *const *after, size_t nafter)
{
    lens_step *st = &s->steps[i];
    const lens_step *prev = i ? &s->steps[i - 1] : NULL;
    size_t n = 0;
    for (size_t t = 0; t < nafter; t++)
        n += stm_catalog_table_count(after[t]);
    st->columns = stm_calloc(n + 1, sizeof *st->columns);
    for (size_t t = 0; t < nafter; t++) {
        const catalog_table *tab = after[t];
        const char *tname = NULL;
        /* A table made anew under the name of one the step dropped holds none of
         * its values: nothing of it is the same as before by name. */
        bool anew = false;
        for (size_t k = 0; k < st->count && !anew; k++)
            anew = st->changes[k].kind == LENS_REPLACED &&
                   strcasecmp(st->changes[k].table, stm_catalog_table_name(tab)) == 0;
        for (size_t c = 0; c < stm_catalog_table_count(tab); c++) {
            const char *cname = stm_catalog_table_column(tab, c)->name;
            const lens_column_id *was = NULL;
            bool fresh = false;
            for (size_t k = 0; k < st->count && !was && !fresh; k++) {
                const lens_change *ch = &st->changes[k];
                if (!ch->column || strcasecmp(ch->table, stm_catalog_table_name(tab)) != 0 ||
                    strcasecmp(ch->column, cname) != 0)
                    continue;
                if (ch->kind == LENS_RENAMED || ch->kind == LENS_CAST || ch->kind == LENS_FILLED)
                    was = prev ? s_find_id(prev, ch->from_table, ch->from_column) : NULL;
                fresh = !was; /* computed, added, copied: values of their own */
            }
            if (!was && !fresh && !anew && prev)
                was = s_find_id(prev, stm_catalog_table_name(tab), cname);
            /* Names shared with the version before when they are the same. */
            const char *pt = was && strcmp(was->table, stm_catalog_table_name(tab)) == 0
                                 ? was->table
                             : tname ? tname
                                     : s_pooled(s, stm_catalog_table_name(tab));
            tname = pt;
            const char *pc =
                was && strcmp(was->column, cname) == 0 ? was->column : s_pooled(s, cname);
            st->columns[st->ncolumns++] = (lens_column_id){pt, pc, was ? was->id : s->next_id++};
        }
    }
    qsort(st->columns, st->ncolumns, sizeof *st->columns, stm_lens_column_id_cmp);
}

bool stm_lens_translate(const lens_set_t *s, int from, const char *table, const char *column,
                        int to, const char **to_table, const char **to_column)
{
    if (from < 1 || to < 1 || (size_t)from > s->count || (size_t)to > s->count)
        return false;
    const lens_column_id *id = s_find_id(&s->steps[from - 1], table, column);
    if (!id)
        return false;
    const lens_step *st = &s->steps[to - 1];
    for (size_t i = 0; i < st->ncolumns; i++)
        if (st->columns[i].id == id->id) {
            *to_table = st->columns[i].table;
            *to_column = st->columns[i].column;
            return true;
        }
    return false;
}

bool stm_lens_translate_table(const lens_set_t *s, int from, const char *table, int to,
                              const char **to_table)
{
    if (from < 1 || to < 1 || (size_t)from > s->count || (size_t)to > s->count)
        return false;
    const lens_step *st = &s->steps[from - 1];
    for (size_t i = 0; i < st->ncolumns; i++) {
        const char *column;
        if (strcasecmp(st->columns[i].table, table) != 0)
            continue;
        if (stm_lens_translate(s, from, table, st->columns[i].column, to, to_table, &column))
            return true;
    }
    return false;
}

bool stm_lens_replaced(const lens_set_t *s, int version, const char *table)
{
    size_t n;
    const lens_change *c = stm_lens_changes(s, version, &n);
    for (size_t i = 0; i < n; i++)
        if (c[i].kind == LENS_REPLACED && strcasecmp(c[i].table, table) == 0)
            return true;
    return false;
}

bool stm_lens_walk_back(const lens_branch *b, size_t upto, const char *table, const char *column,
                        const char **to_table, const char **to_column)
{
    if (upto > b->count)
        return false;
    for (size_t v = upto; v-- > 0;) {
        if (b->probed && !b->probed[v])
            return false;
        const lens_change *c = b->changes[v];
        const char *was_table = NULL;
        bool moved = false;
        for (size_t i = 0; i < b->nchanges[v] && !moved; i++) {
            bool from = c[i].kind == LENS_RENAMED || c[i].kind == LENS_CAST ||
                        c[i].kind == LENS_FILLED;
            if (!c[i].column) {
                if (c[i].kind == LENS_REPLACED && strcasecmp(c[i].table, table) == 0)
                    return false;
                continue;
            }
            if (strcasecmp(c[i].table, table) != 0)
                continue;
            if (column && strcasecmp(c[i].column, column) == 0) {
                if (!from)
                    return false; /* computed, added or copied: values of its own */
                table = c[i].from_table;
                column = c[i].from_column;
                moved = true;
            } else if (from && !was_table) {
                was_table = c[i].from_table; /* the table's rows came from there */
            }
        }
        /* Not listed itself (the table alone, or a column kept as it was): it was
         * where its table's rows came from. */
        if (!moved && was_table)
            table = was_table;
    }
    *to_table = table;
    if (to_column)
        *to_column = column;
    return true;
}

size_t stm_lens_column_count(const lens_set_t *s, int version)
{
    return version >= 1 && (size_t)version <= s->count ? s->steps[version - 1].ncolumns : 0;
}

void stm_lens_column_at(const lens_set_t *s, int version, size_t i, const char **table,
                        const char **column)
{
    const lens_column_id *c = &s->steps[version - 1].columns[i];
    *table = c->table;
    *column = c->column;
}

void stm_lens_destroy(lens_set_t **self_p)
{
    lens_set_t *s = *self_p;
    if (!s)
        return;
    for (size_t i = 0; i < s->count; i++) {
        for (size_t k = 0; k < s->steps[i].count; k++)
            stm_lens_change_free(&s->steps[i].changes[k]);
        free(s->steps[i].changes);
        free(s->steps[i].why);
        free(s->steps[i].columns);
    }
    for (size_t i = 0; i < s->npool; i++)
        free(s->pool[i]);
    free(s->pool);
    free(s->steps);
    free(s);
    *self_p = NULL;
}

size_t stm_lens_count(const lens_set_t *s)
{
    return s->count;
}

const lens_change *stm_lens_changes(const lens_set_t *s, int version, size_t *count)
{
    if (version < 1 || (size_t)version > s->count) {
        *count = 0;
        return NULL;
    }
    *count = s->steps[version - 1].count;
    return s->steps[version - 1].changes;
}

bool stm_lens_probed(const lens_set_t *s, int version, const char **why)
{
    const lens_step *st =
        version >= 1 && (size_t)version <= s->count ? &s->steps[version - 1] : NULL;
    if (why)
        *why = st && !st->probed ? st->why : NULL;
    return st && st->probed;
}

/* ---- a set read back ---- */

lens_set_t *stm_lens_assemble_new(size_t count)
{
    lens_set_t *s = stm_calloc(1, sizeof *s);
    s->count = count;
    s->steps = stm_calloc(count + 1, sizeof *s->steps);
    for (size_t i = 0; i < count; i++)
        s->steps[i].probed = true;
    return s;
}

void stm_lens_assemble_change(lens_set_t *s, int version, const lens_change *c)
{
    if (version < 1 || (size_t)version > s->count)
        return;
    stm_lens_step_add(&s->steps[version - 1], c->kind, c->table, c->column, c->from_table,
                      c->from_column);
}

void stm_lens_assemble_unprobed(lens_set_t *s, int version, const char *why)
{
    if (version < 1 || (size_t)version > s->count)
        return;
    lens_step *st = &s->steps[version - 1];
    st->probed = false;
    free(st->why);
    st->why = stm_strdup(why);
}

void stm_lens_assemble_finish(lens_set_t *s, const lineage_t *l)
{
    size_t nf = stm_lineage_family_count(l);
    const catalog_table **tables = stm_calloc(nf + 1, sizeof *tables);
    for (size_t i = 0; i < s->count; i++) {
        size_t nt = 0;
        for (size_t f = 0; f < nf; f++) {
            const catalog_table *t = stm_family_table_at(stm_lineage_family_at(l, f), (int)i + 1);
            if (t)
                tables[nt++] = t;
        }
        stm_lens_identities(s, i, tables, nt);
    }
    free(tables);
}
