/* api_lineage.c - lineages and their comparison, for applications (include/stemma.h). */
#include "api_internal.h"
#include "base/mem.h"
#include "lineage/export.h"
#include "lineage/layout.h"
#include "lineage/load.h"
#include "lineage/relation.h"

#include <stdlib.h>

struct stemma_comparison {
    comparison_t *cmp;       /* lends names from both lineages below */
    stemma_lineage *local;   /* a reference held */
    stemma_lineage *remote;  /* a reference held */
};

stemma_lineage *stm_api_lineage_wrap(lineage_t *l, lens_set_t *lenses)
{
    stemma_lineage *h = stm_calloc(1, sizeof *h);
    h->lineage = l;
    h->lenses = lenses;
    atomic_init(&h->refs, 1);
    return h;
}

STEMMA_API stemma_code stemma_lineage_load(const char *path, stemma_lineage **out,
                                           stemma_error *err)
{
    if (!path || !out)
        return stm_api_fail(err, STEMMA_EUSAGE, "stemma_lineage_load: path and out are required");
    return stemma_lineage_load_layout(path, NULL, out, err);
}

STEMMA_API stemma_code stemma_lineage_load_layout(const char *path, const char *layout,
                                                  stemma_lineage **out, stemma_error *err)
{
    if (!path || !out)
        return stm_api_fail(err, STEMMA_EUSAGE,
                            "stemma_lineage_load_layout: path and out are required");
    *out = NULL;
    schemaset_layout named = LAYOUT_AUTO;
    if (layout && !stm_layout_from_name(layout, &named))
        return stm_api_fail(err, STEMMA_EUSAGE,
                            "stemma_lineage_load_layout: no layout '%.64s': give \"auto\" or "
                            "one of " LAYOUT_NAMES,
                            layout);
    stm_error e = {0};
    lineage_t *l = NULL;
    lens_set_t *lenses = NULL;
    char *cache = stm_cache_dir_from_env();
    stm_err rc = stm_load_history_layout(path, named, cache, &l, &lenses, NULL, &e);
    free(cache);
    if (rc != STM_OK)
        return stm_api_error(err, &e);
    *out = stm_api_lineage_wrap(l, lenses);
    return STEMMA_OK;
}

STEMMA_API void stemma_lineage_free(stemma_lineage **lineage)
{
    if (!lineage || !*lineage)
        return;
    stemma_lineage *h = *lineage;
    *lineage = NULL;
    if (atomic_fetch_sub(&h->refs, 1) != 1)
        return;
    stm_lineage_destroy(&h->lineage);
    stm_lens_destroy(&h->lenses);
    free(h);
}

STEMMA_API const char *stemma_lineage_name(const stemma_lineage *lineage)
{
    return stm_lineage_name(lineage->lineage);
}

STEMMA_API size_t stemma_lineage_count(const stemma_lineage *lineage)
{
    return stm_lineage_count(lineage->lineage);
}

STEMMA_API stemma_code stemma_lineage_version(const stemma_lineage *lineage, size_t i,
                                              stemma_version_info *out, stemma_error *err)
{
    if (!lineage || !out || i >= stm_lineage_count(lineage->lineage))
        return stm_api_fail(err, STEMMA_EUSAGE,
                            "stemma_lineage_version: no version at index %zu (the lineage has "
                            "%zu)",
                            i, lineage ? stm_lineage_count(lineage->lineage) : 0);
    const lineage_version *v = stm_lineage_version_at(lineage->lineage, i);
    out->number = v->number;
    stm_id_to_hex(&v->id, out->id);
    stm_id_to_hex(&v->parent, out->parent);
    out->description = v->description ? v->description : "";
    return STEMMA_OK;
}

STEMMA_API stemma_code stemma_lineage_export(const stemma_lineage *lineage, char **toml,
                                             stemma_error *err)
{
    if (!lineage || !toml)
        return stm_api_fail(err, STEMMA_EUSAGE, "stemma_lineage_export: lineage and toml are "
                                                "required");
    *toml = lineage->lenses ? stm_export_lineage_lenses(lineage->lineage, lineage->lenses)
                            : stm_export_lineage(lineage->lineage);
    return STEMMA_OK;
}

STEMMA_API const char *stemma_relation_name(stemma_relation relation)
{
    if ((int)relation < RELATION_SAME || relation > STEMMA_UNRELATED)
        return "unknown";
    return stm_relation_name((relation_kind)relation);
}

STEMMA_API stemma_code stemma_compare(stemma_lineage *local, stemma_lineage *remote,
                                      stemma_comparison **out, stemma_error *err)
{
    if (!local || !remote || !out)
        return stm_api_fail(err, STEMMA_EUSAGE, "stemma_compare: local, remote and out are "
                                                "required");
    stemma_comparison *c = stm_calloc(1, sizeof *c);
    c->cmp = stm_relation_compare(local->lineage, remote->lineage);
    /* Renames are followed as `stemma compare` follows them: through the local set's
     * lenses, when both heads are its versions. */
    if (local->lenses)
        stm_comparison_follow(c->cmp, local->lenses, local->lineage);
    atomic_fetch_add(&local->refs, 1);
    atomic_fetch_add(&remote->refs, 1);
    c->local = local;
    c->remote = remote;
    *out = c;
    return STEMMA_OK;
}

STEMMA_API void stemma_comparison_free(stemma_comparison **comparison)
{
    if (!comparison || !*comparison)
        return;
    stemma_comparison *c = *comparison;
    stm_comparison_destroy(&c->cmp);
    stemma_lineage_free(&c->local);
    stemma_lineage_free(&c->remote);
    free(c);
    *comparison = NULL;
}

STEMMA_API stemma_relation stemma_comparison_relation(const stemma_comparison *c)
{
    return (stemma_relation)c->cmp->relation;
}

STEMMA_API size_t stemma_comparison_common(const stemma_comparison *c)
{
    return c->cmp->common;
}

STEMMA_API size_t stemma_comparison_table_count(const stemma_comparison *c)
{
    return c->cmp->nfamilies;
}

STEMMA_API const char *stemma_comparison_table(const stemma_comparison *c, size_t i,
                                               stemma_relation *relation)
{
    if (i >= c->cmp->nfamilies)
        return NULL;
    if (relation)
        *relation = (stemma_relation)c->cmp->families[i].relation;
    return c->cmp->families[i].name;
}

STEMMA_API size_t stemma_comparison_column_count(const stemma_comparison *c, size_t i,
                                                 stemma_column_relation kind)
{
    if (i >= c->cmp->nfamilies || (int)kind < 0 || kind > STEMMA_COLUMN_CONFLICTING)
        return 0;
    return c->cmp->families[i].ncolumns[kind];
}

STEMMA_API const char *stemma_comparison_column(const stemma_comparison *c, size_t i,
                                                stemma_column_relation kind, size_t j)
{
    if (j >= stemma_comparison_column_count(c, i, kind))
        return NULL;
    return c->cmp->families[i].columns[kind][j];
}
