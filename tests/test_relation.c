/* Tests of lineage/relation: the five relations for databases and families, and the
 * four for columns. */
#include "lineage/relation.h"
#include "testutil.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const V1[] = {"001_a.sql", "CREATE TABLE t(id TEXT PRIMARY KEY, a TEXT);\n",
                                 NULL};
static const char *const V2[] = {"001_a.sql", "CREATE TABLE t(id TEXT PRIMARY KEY, a TEXT);\n",
                                 "002_b.sql", "ALTER TABLE t ADD COLUMN b INTEGER;\n", NULL};
/* Version 2 with other text: the same number, a different version. */
static const char *const V2X[] = {"001_a.sql", "CREATE TABLE t(id TEXT PRIMARY KEY, a TEXT);\n",
                                  "002_b.sql", "ALTER TABLE t ADD COLUMN b TEXT;\n", NULL};
static const char *const OTHER[] = {"001_a.sql", "CREATE TABLE t(id TEXT PRIMARY KEY, a TEXT); \n",
                                    NULL};

static relation_kind s_rel(const char *const *a, const char *const *b, size_t *common)
{
    lineage_t *la = tu_lineage_files_ok(a), *lb = tu_lineage_files_ok(b);
    relation_kind k = stm_relation_of_lineages(la, lb, common);
    stm_lineage_destroy(&la);
    stm_lineage_destroy(&lb);
    return k;
}

static void test_same(void **state)
{
    (void)state;
    size_t common;
    assert_int_equal(s_rel(V2, V2, &common), RELATION_SAME);
    assert_int_equal(common, 2);
}

static void test_strict_prefix_is_ancestor_and_descendant(void **state)
{
    (void)state;
    size_t common;
    assert_int_equal(s_rel(V1, V2, &common), RELATION_ANCESTOR);
    assert_int_equal(common, 1);
    assert_int_equal(s_rel(V2, V1, &common), RELATION_DESCENDANT);
    assert_int_equal(common, 1);
}

static void test_same_number_different_text_is_divergent(void **state)
{
    (void)state;
    size_t common;
    assert_int_equal(s_rel(V2, V2X, &common), RELATION_DIVERGENT);
    assert_int_equal(common, 1);
}

static void test_no_common_first_version_is_unrelated(void **state)
{
    (void)state;
    size_t common = 99;
    /* One trailing space of difference in version 1: a different history from the root. */
    assert_int_equal(s_rel(V1, OTHER, &common), RELATION_UNRELATED);
    assert_int_equal(common, 0);
    assert_int_equal(s_rel(V2, OTHER, &common), RELATION_UNRELATED);
}

static void test_empty_histories(void **state)
{
    (void)state;
    lineage_t *e1 = stm_lineage_new("e1"), *e2 = stm_lineage_new("e2"),
              *l = tu_lineage_files_ok(V2);
    size_t common = 99;
    assert_int_equal(stm_relation_of_lineages(e1, e2, &common), RELATION_SAME);
    assert_int_equal(common, 0);
    assert_int_equal(stm_relation_of_lineages(e1, l, &common), RELATION_ANCESTOR);
    assert_int_equal(stm_relation_of_lineages(l, e1, &common), RELATION_DESCENDANT);
    assert_int_equal(common, 0);
    comparison_t *c = stm_relation_compare(e1, l);
    assert_int_equal(c->relation, RELATION_ANCESTOR);
    assert_int_equal(c->stm_local_version, 0);
    assert_int_equal(c->remote_version, 2);
    assert_int_equal(c->nfamilies, 1);
    assert_int_equal(c->families[0].relation, RELATION_ANCESTOR);
    assert_int_equal(c->families[0].ncolumns[COLUMN_REMOTE_ONLY], 3);
    stm_comparison_destroy(&c);
    stm_lineage_destroy(&e1);
    stm_lineage_destroy(&e2);
    stm_lineage_destroy(&l);
}

static void test_identical_sets_in_different_directories_are_same(void **state)
{
    (void)state;
    lineage_t *a = tu_lineage_dir("schemas/tasks");
    char *dir = tu_tmpdir();
    schemaset_t *set = NULL;
    stm_error err = {0};
    assert_int_equal(stm_schemaset_load("schemas/tasks", &set, &err), STM_OK);
    for (size_t i = 0; i < stm_schemaset_count(set); i++)
        tu_write(dir, stm_schemaset_at(set, i)->file, stm_schemaset_at(set, i)->text);
    stm_schemaset_destroy(&set);
    lineage_t *b = tu_lineage_dir(dir);
    comparison_t *c = stm_relation_compare(a, b);
    assert_int_equal(c->relation, RELATION_SAME);
    for (size_t i = 0; i < c->nfamilies; i++) {
        assert_int_equal(c->families[i].relation, RELATION_SAME);
        assert_int_equal(c->families[i].ncolumns[COLUMN_LOCAL_ONLY], 0);
        assert_int_equal(c->families[i].ncolumns[COLUMN_REMOTE_ONLY], 0);
    }
    stm_comparison_destroy(&c);
    stm_lineage_destroy(&a);
    stm_lineage_destroy(&b);
    tu_remove_tree(dir);
    free(dir);
}

static const comparison_family *s_family(const comparison_t *c, const char *name)
{
    for (size_t i = 0; i < c->nfamilies; i++)
        if (strcmp(c->families[i].name, name) == 0)
            return &c->families[i];
    fail_msg("no family %s", name);
    return NULL;
}

static void s_assert_names(const char **names, size_t n, const char *const *expected)
{
    size_t k = 0;
    for (; expected[k]; k++) {
        if (k >= n)
            fail_msg("missing %s", expected[k]);
        assert_string_equal(names[k], expected[k]);
    }
    assert_int_equal(n, k);
}

static void test_tasks_against_the_fork(void **state)
{
    (void)state;
    lineage_t *tasks = tu_lineage_dir("schemas/tasks"), *fork = tu_lineage_dir("schemas/tasks-fork");
    comparison_t *c = stm_relation_compare(tasks, fork);
    assert_int_equal(c->relation, RELATION_DIVERGENT);
    assert_int_equal(c->common, 2);
    assert_true(stm_id_equal(&c->common_id, &stm_lineage_version_at(fork, 1)->id));
    assert_int_equal(c->stm_local_version, 4);
    assert_int_equal(c->remote_version, 3);
    /* The database lineage diverged, but lists and tags never changed: same. */
    assert_int_equal(s_family(c, "lists")->relation, RELATION_SAME);
    assert_int_equal(s_family(c, "tags")->relation, RELATION_SAME);
    const comparison_family *t = s_family(c, "tasks");
    assert_int_equal(t->relation, RELATION_DIVERGENT);
    assert_int_equal(t->common, 2);
    const char *shared[] = {"id", "list_id", "title", "done", "notes", "priority", NULL};
    s_assert_names(t->columns[COLUMN_SHARED], t->ncolumns[COLUMN_SHARED], shared);
    const char *mine[] = {"tags", NULL};
    s_assert_names(t->columns[COLUMN_LOCAL_ONLY], t->ncolumns[COLUMN_LOCAL_ONLY], mine);
    const char *theirs[] = {"due_at", NULL};
    s_assert_names(t->columns[COLUMN_REMOTE_ONLY], t->ncolumns[COLUMN_REMOTE_ONLY], theirs);
    const comparison_family *cm = s_family(c, "comments");
    assert_int_equal(cm->relation, RELATION_DESCENDANT);
    assert_true(cm->local_live);
    assert_false(cm->remote_live);
    assert_int_equal(cm->ncolumns[COLUMN_LOCAL_ONLY], 5);
    stm_comparison_destroy(&c);
    stm_lineage_destroy(&tasks);
    stm_lineage_destroy(&fork);
}

static void test_column_relations(void **state)
{
    (void)state;
    const char *a[] = {"001_a.sql",
                       "CREATE TABLE t(id TEXT PRIMARY KEY, n INTEGER, s TEXT, k TEXT, "
                       "v VARCHAR(10), only_a);\n",
                       NULL};
    const char *b[] = {"001_a.sql",
                       "CREATE TABLE t(id TEXT PRIMARY KEY, N BIGINT NOT NULL DEFAULT 0, s REAL,"
                       " k TEXT UNIQUE, v TEXT, only_b);\n",
                       NULL};
    lineage_t *la = tu_lineage_files_ok(a), *lb = tu_lineage_files_ok(b);
    comparison_t *c = stm_relation_compare(la, lb);
    assert_int_equal(c->relation, RELATION_UNRELATED);
    const comparison_family *t = s_family(c, "t");
    assert_int_equal(t->relation, RELATION_UNRELATED);
    /* N and n are one column (SQLite folds case); BIGINT and INTEGER share an affinity;
     * VARCHAR(10) and TEXT too. s is TEXT against REAL: conflicting. */
    const char *shared[] = {"id", "n", "k", "v", NULL};
    s_assert_names(t->columns[COLUMN_SHARED], t->ncolumns[COLUMN_SHARED], shared);
    const char *conflicting[] = {"s", NULL};
    s_assert_names(t->columns[COLUMN_CONFLICTING], t->ncolumns[COLUMN_CONFLICTING], conflicting);
    const char *la_only[] = {"only_a", NULL};
    s_assert_names(t->columns[COLUMN_LOCAL_ONLY], t->ncolumns[COLUMN_LOCAL_ONLY], la_only);
    const char *lb_only[] = {"only_b", NULL};
    s_assert_names(t->columns[COLUMN_REMOTE_ONLY], t->ncolumns[COLUMN_REMOTE_ONLY], lb_only);
    stm_comparison_destroy(&c);
    stm_lineage_destroy(&la);
    stm_lineage_destroy(&lb);
}

static void test_primary_key_role_conflicts(void **state)
{
    (void)state;
    catalog_column pk = {.name = "id", .decltype = "TEXT", .affinity = AFFINITY_TEXT, .pk = 1};
    catalog_column plain = pk;
    plain.pk = 0;
    assert_int_equal(stm_relation_of_columns(&pk, &plain), COLUMN_CONFLICTING);
    assert_int_equal(stm_relation_of_columns(&pk, &pk), COLUMN_SHARED);
    assert_int_equal(stm_relation_of_columns(&pk, NULL), COLUMN_LOCAL_ONLY);
    assert_int_equal(stm_relation_of_columns(NULL, &pk), COLUMN_REMOTE_ONLY);
}

static void test_family_diverges_while_database_is_descendant(void **state)
{
    (void)state;
    /* Local is v2 of the same history (descendant); its family t went on one step. */
    lineage_t *l2 = tu_lineage_files_ok(V2), *l1 = tu_lineage_files_ok(V1);
    comparison_t *c = stm_relation_compare(l2, l1);
    assert_int_equal(c->relation, RELATION_DESCENDANT);
    const comparison_family *t = s_family(c, "t");
    assert_int_equal(t->relation, RELATION_DESCENDANT);
    const char *mine[] = {"b", NULL};
    s_assert_names(t->columns[COLUMN_LOCAL_ONLY], t->ncolumns[COLUMN_LOCAL_ONLY], mine);
    stm_comparison_destroy(&c);
    stm_lineage_destroy(&l1);
    stm_lineage_destroy(&l2);
}

static void test_names(void **state)
{
    (void)state;
    assert_string_equal(stm_relation_name(RELATION_SAME), "same");
    assert_string_equal(stm_relation_name(RELATION_ANCESTOR), "ancestor");
    assert_string_equal(stm_relation_name(RELATION_DESCENDANT), "descendant");
    assert_string_equal(stm_relation_name(RELATION_DIVERGENT), "divergent");
    assert_string_equal(stm_relation_name(RELATION_UNRELATED), "unrelated");
    assert_string_equal(stm_column_relation_name(COLUMN_LOCAL_ONLY), "local_only");
    assert_string_equal(stm_column_relation_name(COLUMN_REMOTE_ONLY), "remote_only");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same),
        cmocka_unit_test(test_strict_prefix_is_ancestor_and_descendant),
        cmocka_unit_test(test_same_number_different_text_is_divergent),
        cmocka_unit_test(test_no_common_first_version_is_unrelated),
        cmocka_unit_test(test_empty_histories),
        cmocka_unit_test(test_identical_sets_in_different_directories_are_same),
        cmocka_unit_test(test_tasks_against_the_fork),
        cmocka_unit_test(test_column_relations),
        cmocka_unit_test(test_primary_key_role_conflicts),
        cmocka_unit_test(test_family_diverges_while_database_is_descendant),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
