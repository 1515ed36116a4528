/* baseline.c - which version of a schema set a database's schema is (baseline.h). */
#include "baseline.h"
#include "base/mem.h"
#include "family.h"
#include "sqlscript.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void stm_baseline_match_free(baseline_match *m)
{
    free(m->versions);
    stm_schemacmp_diffs_free(m->diffs, m->ndiffs);
    memset(m, 0, sizeof *m);
}

size_t stm_baseline_set_tables(const catalog_t *c, const lineage_t *l, const char ***out)
{
    *out = NULL;
    size_t n = 0, cap = 0;
    for (size_t i = 0; i < stm_catalog_count(c); i++) {
        const char *name = stm_catalog_table_name(stm_catalog_at(c, i));
        if (!stm_lineage_family_find(l, name))
            continue;
        *out = stm_grow(*out, &cap, n + 1, sizeof **out);
        (*out)[n++] = name;
    }
    for (size_t i = 0; i < stm_catalog_virtual_count(c); i++) {
        const char *name = stm_catalog_virtual_at(c, i);
        bool known = false;
        for (size_t k = 0; k < stm_lineage_virtual_count(l) && !known; k++)
            known = sqlite3_stricmp(stm_lineage_virtual_at(l, k)->name, name) == 0;
        if (!known)
            continue;
        *out = stm_grow(*out, &cap, n + 1, sizeof **out);
        (*out)[n++] = name;
    }
    return n;
}

/* Keeps only the differences of indexes, constraints, triggers and views: the tables
 * were compared with the lineage's catalogs already, and an in-memory run knows
 * nothing of the application's own tables. Returns how many are left. */
static size_t s_objects_only(schemacmp_diff *d, size_t n)
{
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        if (d[i].kind == SCHEMACMP_TABLE || d[i].kind == SCHEMACMP_COLUMN ||
            d[i].kind == SCHEMACMP_VIRTUAL) {
            free(d[i].table);
            free(d[i].what);
            free(d[i].got);
            free(d[i].want);
            continue;
        }
        d[kept++] = d[i];
    }
    return kept;
}

/* The candidates of cand[0..n) (ascending, catalog-equal) whose indexes, constraints,
 * triggers and views are the database's too: the migrations up to the last are run in
 * memory, and each candidate's schema read with its objects. odiffs[i] (the caller's)
 * gets candidate i's differences, nodiffs[i] their count. */
static stm_err s_by_objects(sqlite3 *db, const schemaset_t *set, const int *cand, size_t n,
                            schemacmp_diff **odiffs, size_t *nodiffs, stm_error *err)
{
    schemacmp_t *got = NULL;
    stm_err rc = stm_schemacmp_read(db, true, &got, err);
    if (rc != STM_OK)
        return rc;
    sqlite3 *mem = NULL;
    rc = stm_sqlscript_open_memory(&mem, err);
    size_t next = 0; /* the next candidate to compare */
    for (int v = 0; rc == STM_OK && next < n; v++) {
        if (v > 0) {
            const schemaset_migration *m = stm_schemaset_at(set, (size_t)v - 1);
            char *path = NULL;
            size_t len = strlen(stm_schemaset_dir(set)) + strlen(m->file) + 2;
            path = stm_malloc(len);
            snprintf(path, len, "%s/%s", stm_schemaset_dir(set), m->file);
            sqlite3_exec(mem, "BEGIN", NULL, NULL, NULL);
            rc = stm_sqlscript_run(mem, path, m->text, 0, err);
            sqlite3_exec(mem, rc == STM_OK ? "COMMIT" : "ROLLBACK", NULL, NULL, NULL);
            free(path);
        }
        if (rc != STM_OK || cand[next] != v)
            continue;
        schemacmp_t *want = NULL;
        rc = stm_schemacmp_read(mem, true, &want, err);
        if (rc == STM_OK) {
            nodiffs[next] = stm_schemacmp_compare(want, got, &odiffs[next]);
            nodiffs[next] = s_objects_only(odiffs[next], nodiffs[next]);
        }
        stm_schemacmp_destroy(&want);
        next++;
    }
    sqlite3_close(mem);
    stm_schemacmp_destroy(&got);
    return rc;
}

/* How far a difference takes a schema from another: a table missing or extra weighs
 * its columns (so that a database holding some of the set's tables is not "closest" to
 * a version without them), anything else one. c is the database's catalog, l at
 * version v the other. */
static size_t s_weight(const schemacmp_diff *d, size_t n, const catalog_t *c, const lineage_t *l,
                       int v)
{
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        const catalog_table *t = NULL;
        if (d[i].kind == SCHEMACMP_TABLE && d[i].how == SCHEMACMP_EXTRA)
            t = stm_catalog_find(c, d[i].table);
        else if (d[i].kind == SCHEMACMP_TABLE && d[i].how == SCHEMACMP_MISSING &&
                 stm_lineage_family_find(l, d[i].table))
            t = stm_family_table_at(stm_lineage_family_find(l, d[i].table), v);
        w += t ? 1 + stm_catalog_table_count(t) : 1;
    }
    return w;
}

/* Sets out to no match: closest, with the differences d[0..n) (taken). */
static void s_no_match(baseline_match *out, int closest, schemacmp_diff *d, size_t n)
{
    out->closest = closest;
    out->diffs = d;
    out->ndiffs = n;
}

static bool s_has(const int *v, size_t n, int x)
{
    for (size_t i = 0; i < n; i++)
        if (v[i] == x)
            return true;
    return false;
}

stm_err stm_baseline_match(sqlite3 *db, const schemaset_t *set, const lineage_t *l, int want,
                           baseline_match *out, stm_error *err)
{
    memset(out, 0, sizeof *out);
    schemacmp_t *got = NULL;
    catalog_t *cat = NULL;
    stm_err rc = stm_schemacmp_read(db, false, &got, err);
    if (rc == STM_OK)
        rc = stm_catalog_read(db, &cat, err);
    if (rc != STM_OK) {
        stm_schemacmp_destroy(&got);
        return rc;
    }
    int count = (int)stm_lineage_count(l);
    /* The catalog against every version's: the versions it equals, and the closest. */
    int *cand = stm_calloc((size_t)count + 1, sizeof *cand);
    size_t ncand = 0;
    int best = -1;
    size_t best_n = 0, best_w = 0;
    schemacmp_diff *best_d = NULL, *want_d = NULL;
    size_t want_n = 0;
    for (int v = 0; v <= count; v++) {
        schemacmp_t *at = stm_schemacmp_of_lineage(l, v);
        schemacmp_diff *d = NULL;
        size_t n = stm_schemacmp_compare(at, got, &d);
        stm_schemacmp_destroy(&at);
        if (n == 0)
            cand[ncand++] = v;
        if (want > 0 && v == want) {
            want_d = d;
            want_n = n;
        } else if (n && (v > 0 || count == 0) &&
                   (best < 0 || s_weight(d, n, cat, l, v) <= best_w)) {
            stm_schemacmp_diffs_free(best_d, best_n);
            best = v, best_n = n, best_d = d, best_w = s_weight(d, n, cat, l, v);
        } else {
            stm_schemacmp_diffs_free(d, n);
        }
    }
    stm_schemacmp_destroy(&got);
    stm_catalog_destroy(&cat);
    if (want > 0 && want_n) {
        s_no_match(out, want, want_d, want_n);
        want_d = NULL, want_n = 0;
    } else if (ncand == 0) {
        s_no_match(out, best, best_d, best_n);
        best_d = NULL, best_n = 0;
    } else if (ncand == 1) {
        out->versions = stm_calloc(1, sizeof *out->versions);
        out->versions[out->nversions++] = cand[0];
    } else {
        /* Several versions have this catalog: their other objects may tell them apart. */
        schemacmp_diff **od = stm_calloc(ncand, sizeof *od);
        size_t *nod = stm_calloc(ncand, sizeof *nod);
        rc = s_by_objects(db, set, cand, ncand, od, nod, err);
        out->by_objects = true;
        out->versions = stm_calloc(ncand, sizeof *out->versions);
        for (size_t i = 0; rc == STM_OK && i < ncand; i++)
            if (nod[i] == 0)
                out->versions[out->nversions++] = cand[i];
        /* None is exact in them all (the application's own view, say): the catalog's
         * candidates stand, and the caller is asked which. */
        if (rc == STM_OK && out->nversions == 0) {
            memcpy(out->versions, cand, ncand * sizeof *cand);
            out->nversions = ncand;
        }
        if (rc == STM_OK && want > 0 && !s_has(out->versions, out->nversions, want)) {
            out->nversions = 0;
            for (size_t i = 0; i < ncand; i++)
                if (cand[i] == want) {
                    s_no_match(out, want, od[i], nod[i]);
                    od[i] = NULL, nod[i] = 0;
                }
        }
        for (size_t i = 0; i < ncand; i++)
            stm_schemacmp_diffs_free(od[i], nod[i]);
        free(od);
        free(nod);
    }
    if (rc == STM_OK && want > 0 && out->nversions) {
        out->versions[0] = want;
        out->nversions = 1;
    }
    stm_schemacmp_diffs_free(best_d, best_n);
    stm_schemacmp_diffs_free(want_d, want_n);
    free(cand);
    return rc;
}
