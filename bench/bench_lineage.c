/* bench_lineage - how fast the lineage layer compares and reads histories.
 *
 * Builds two synthetic 10,000-version histories (1,000 tables, each changed ten
 * times), then measures:
 *   - compare: stm_relation_compare of the two (the database lineage and every family),
 *     once with identical histories (the longest walk) and once diverging at 9,000;
 *   - export: writing the history as TOML;
 *   - parse: the TOML parser alone on that text, in MB/s;
 *   - import: parse plus rebuilding the lineage with every id and head re-checked.
 * Each figure is the median of several runs. Not a test: figures go to stdout. */
#include "benchutil.h"
#include "lineage/export.h"
#include "lineage/relation.h"
#include "toml/toml.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define VERSIONS 10000
#define TABLES 1000

static double s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int s_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double s_median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, s_cmp_double);
    return v[n / 2];
}

/* A history whose version v adds column c<v> to table t<v % TABLES>; from version
 * `fork_at` on, the text differs (a divergent branch) when fork_at > 0. */
static lineage_t *s_synthetic(int fork_at)
{
    lineage_t *l = stm_lineage_new(fork_at ? "fork" : "main");
    catalog_table **tables = calloc(TABLES, sizeof *tables);
    family_t **families = calloc(TABLES, sizeof *families);
    stm_id parent = {{0}};
    for (int v = 1; v <= VERSIONS; v++) {
        char text[128], name[32], col[32];
        int t = v % TABLES;
        snprintf(name, sizeof name, "t%04d", t);
        snprintf(col, sizeof col, "c%d%s", v, fork_at && v >= fork_at ? "_fork" : "");
        snprintf(text, sizeof text, "ALTER TABLE %s ADD COLUMN %s INTEGER;\n", name, col);
        stm_id id, checksum;
        stm_lineage_version_id(&parent, v, text, strlen(text), &id);
        stm_id_hash(text, strlen(text), &checksum);
        if (stm_lineage_add_version(l, v, &id, &parent, &checksum, "add a column", NULL) != STM_OK)
            abort();
        if (!families[t])
            families[t] = stm_family_new(name);
        catalog_table *before = tables[t];
        catalog_table *after =
            before ? stm_catalog_table_copy(before) : stm_catalog_table_new(name, false);
        if (!before) {
            catalog_column pk = {.name = "id", .decltype = "INTEGER",
                                 .affinity = AFFINITY_INTEGER, .pk = 1};
            stm_catalog_table_add_column(after, &pk);
        }
        catalog_column c = {.name = col, .decltype = "INTEGER", .affinity = AFFINITY_INTEGER};
        stm_catalog_table_add_column(after, &c);
        stm_family_record(families[t], v, &id, before, after);
        stm_catalog_table_destroy(&before);
        tables[t] = after;
        parent = id;
    }
    for (int t = 0; t < TABLES; t++) {
        stm_catalog_table_destroy(&tables[t]);
        if (families[t] && stm_lineage_add_family(l, families[t], NULL) != STM_OK)
            abort();
    }
    free(tables);
    free(families);
    return l;
}

int main(void)
{
    lineage_t *a = s_synthetic(0), *same = s_synthetic(0), *fork = s_synthetic(9000);
    enum { RUNS = 41 };
    double t[RUNS];

    printf("stemma lineage benchmark: %d versions, %d tables, median of %d runs\n\n", VERSIONS,
           TABLES, RUNS);
    printf("%-44s %12s\n", "figure", "median");

    for (int r = 0; r < RUNS; r++) {
        double t0 = s_now();
        size_t common;
        stm_relation_of_lineages(a, same, &common);
        t[r] = s_now() - t0;
    }
    printf("%-44s %9.1f us\n", "relation: database lineages only, same", s_median(t, RUNS) * 1e6);
    char fig[96], o[48];
    snprintf(fig, sizeof fig, "compare two %d-version histories", VERSIONS);
    snprintf(o, sizeof o, "%.3f ms", s_median(t, RUNS) * 1e3);
    bench_row(fig, o, "", "", "<= 1 ms");

    for (int r = 0; r < RUNS; r++) {
        double t0 = s_now();
        comparison_t *c = stm_relation_compare(a, same);
        t[r] = s_now() - t0;
        stm_comparison_destroy(&c);
    }
    printf("%-44s %9.1f us\n", "compare: lineage + 1,000 families, same", s_median(t, RUNS) * 1e6);

    for (int r = 0; r < RUNS; r++) {
        double t0 = s_now();
        comparison_t *c = stm_relation_compare(a, fork);
        t[r] = s_now() - t0;
        if (c->relation != RELATION_DIVERGENT || c->common != 8999) {
            fprintf(stderr, "bench_lineage: wrong relation\n");
            return 1;
        }
        stm_comparison_destroy(&c);
    }
    printf("%-44s %9.1f us\n", "compare: lineage + families, divergent", s_median(t, RUNS) * 1e6);
    snprintf(fig, sizeof fig, "... with the families of %d tables, divergent", TABLES);
    snprintf(o, sizeof o, "%.3f ms", s_median(t, RUNS) * 1e3);
    bench_row(fig, o, "", "", "reported");

    enum { IO_RUNS = 7 };
    char *text = NULL;
    for (int r = 0; r < IO_RUNS; r++) {
        free(text);
        double t0 = s_now();
        text = stm_export_lineage(a);
        t[r] = s_now() - t0;
    }
    size_t len = strlen(text);
    printf("%-44s %9.1f ms  (%.1f MB)\n", "export to TOML", s_median(t, IO_RUNS) * 1e3,
           (double)len / 1e6);

    for (int r = 0; r < IO_RUNS; r++) {
        toml_value *root = NULL;
        stm_error err = {0};
        double t0 = s_now();
        if (stm_toml_parse(text, len, "bench", &root, &err) != STM_OK) {
            fprintf(stderr, "bench_lineage: %s\n", err.msg);
            return 1;
        }
        t[r] = s_now() - t0;
        stm_toml_destroy(&root);
    }
    double parse = s_median(t, IO_RUNS);
    printf("%-44s %9.1f ms  (%.0f MB/s)\n", "parse the TOML", parse * 1e3, (double)len / 1e6 / parse);
    snprintf(fig, sizeof fig, "parse the lineage's TOML (%.1f MB)", (double)len / 1e6);
    snprintf(o, sizeof o, "%.0f MB/s", (double)len / 1e6 / parse);
    bench_row(fig, o, "", "", ">= 50 MB/s");

    for (int r = 0; r < IO_RUNS; r++) {
        lineage_t *back = NULL;
        stm_error err = {0};
        double t0 = s_now();
        if (stm_export_parse(text, len, "bench", &back, &err) != STM_OK) {
            fprintf(stderr, "bench_lineage: %s\n", err.msg);
            return 1;
        }
        t[r] = s_now() - t0;
        stm_lineage_destroy(&back);
    }
    printf("%-44s %9.1f ms\n", "import: parse + rebuild + check every head", s_median(t, IO_RUNS) * 1e3);

    free(text);
    stm_lineage_destroy(&a);
    stm_lineage_destroy(&same);
    stm_lineage_destroy(&fork);
    return 0;
}
