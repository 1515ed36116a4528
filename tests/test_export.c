/* Tests of lineage/export: a lineage to TOML and back, byte for byte, and every way an
 * exported file can be wrong. */
#include "lineage/export.h"
#include "lineage/lens.h"
#include "lineage/relation.h"
#include "toml/toml.h"
#include "testutil.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void s_assert_same_lineage(const lineage_t *a, const lineage_t *b)
{
    assert_string_equal(stm_lineage_name(a), stm_lineage_name(b));
    size_t common;
    assert_int_equal(stm_relation_of_lineages(a, b, &common), RELATION_SAME);
    for (size_t i = 0; i < stm_lineage_count(a); i++) {
        const lineage_version *x = stm_lineage_version_at(a, i), *y = stm_lineage_version_at(b, i);
        assert_string_equal(x->description, y->description);
        assert_true(stm_id_equal(&x->checksum, &y->checksum));
    }
    assert_int_equal(stm_lineage_family_count(a), stm_lineage_family_count(b));
    for (size_t i = 0; i < stm_lineage_family_count(a); i++) {
        const family_t *f = stm_lineage_family_at(a, i), *g = stm_lineage_family_at(b, i);
        assert_string_equal(stm_family_name(f), stm_family_name(g));
        assert_int_equal(stm_relation_of_families(f, g, &common), RELATION_SAME);
        for (size_t k = 0; k < stm_family_count(f); k++) {
            const family_entry *e = stm_family_entry_at(f, k), *d = stm_family_entry_at(g, k);
            assert_int_equal(e->version, d->version);
            assert_int_equal(e->action, d->action);
            assert_int_equal(e->nadded, d->nadded);
            assert_int_equal(e->nremoved, d->nremoved);
            assert_int_equal(e->nchanged, d->nchanged);
        }
    }
    assert_int_equal(stm_lineage_virtual_count(a), stm_lineage_virtual_count(b));
    for (size_t i = 0; i < stm_lineage_virtual_count(a); i++) {
        const lineage_virtual *v = stm_lineage_virtual_at(a, i), *w = stm_lineage_virtual_at(b, i);
        assert_string_equal(v->name, w->name);
        assert_int_equal(v->created, w->created);
        assert_int_equal(v->dropped, w->dropped);
    }
}

static void test_round_trip_is_byte_identical(void **state)
{
    (void)state;
    const char *dirs[] = {"schemas/tasks", "schemas/tasks-fork", "tests/data/schemas/rebuilds",
                          "tests/data/schemas/notes", "tests/data/schemas/unsynced"};
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        lineage_t *l = tu_lineage_dir(dirs[i]);
        char *first = stm_export_lineage(l);
        lineage_t *back = NULL;
        stm_error err = {0};
        if (stm_export_parse(first, strlen(first), dirs[i], &back, &err) != STM_OK)
            fail_msg("%s: %s", dirs[i], err.msg);
        s_assert_same_lineage(l, back);
        char *second = stm_export_lineage(back);
        assert_string_equal(first, second);
        free(first);
        free(second);
        stm_lineage_destroy(&l);
        stm_lineage_destroy(&back);
    }
}

static void test_empty_lineage_round_trips(void **state)
{
    (void)state;
    lineage_t *l = stm_lineage_new("empty");
    char *text = stm_export_lineage(l);
    lineage_t *back = NULL;
    stm_error err = {0};
    assert_int_equal(stm_export_parse(text, strlen(text), "empty", &back, &err), STM_OK);
    assert_int_equal(stm_lineage_count(back), 0);
    assert_null(stm_lineage_head(back));
    char *again = stm_export_lineage(back);
    assert_string_equal(text, again);
    free(text);
    free(again);
    stm_lineage_destroy(&l);
    stm_lineage_destroy(&back);
}

static void test_read_file(void **state)
{
    (void)state;
    lineage_t *l = tu_lineage_dir("schemas/tasks");
    char *text = stm_export_lineage(l);
    char *dir = tu_tmpdir();
    tu_write(dir, "tasks.toml", text);
    char path[4200];
    snprintf(path, sizeof path, "%s/tasks.toml", dir);
    lineage_t *back = NULL;
    stm_error err = {0};
    assert_int_equal(stm_export_read_file(path, &back, &err), STM_OK);
    s_assert_same_lineage(l, back);
    stm_lineage_destroy(&back);
    snprintf(path, sizeof path, "%s/missing.toml", dir);
    assert_int_equal(stm_export_read_file(path, &back, &err), STM_EINPUT);
    assert_non_null(strstr(err.msg, "missing.toml: cannot read"));
    assert_int_equal(stm_export_read_file(dir, &back, &err), STM_EINPUT);
    assert_non_null(strstr(err.msg, "not a regular file"));
    /* A FIFO is refused at once, not waited on (the alarm turns a hang into a failure). */
    snprintf(path, sizeof path, "%s/fifo.toml", dir);
    assert_int_equal(mkfifo(path, 0600), 0);
    alarm(20);
    assert_int_equal(stm_export_read_file(path, &back, &err), STM_EINPUT);
    alarm(0);
    assert_non_null(strstr(err.msg, "fifo.toml: not a regular file"));
    tu_remove_tree(dir);
    free(dir);
    free(text);
    stm_lineage_destroy(&l);
}

/* Replaces the first occurrence of from by to in text (which the caller frees). */
static char *s_replace(const char *text, const char *from, const char *to)
{
    const char *at = strstr(text, from);
    if (!at)
        fail_msg("fixture lacks \"%s\"", from);
    size_t head = (size_t)(at - text), flen = strlen(from), tlen = strlen(to);
    char *out = malloc(strlen(text) - flen + tlen + 1);
    memcpy(out, text, head);
    memcpy(out + head, to, tlen);
    strcpy(out + head + tlen, at + flen);
    return out;
}

static void s_expect(const char *text, stm_err code, const char *fragment)
{
    lineage_t *l = NULL;
    stm_error err = {0};
    stm_err rc = stm_export_parse(text, strlen(text), "x.toml", &l, &err);
    if (rc != code)
        fail_msg("expected code %d, got %d (%s)", code, rc, err.msg);
    assert_null(l);
    if (!strstr(err.msg, fragment))
        fail_msg("message \"%s\" lacks \"%s\"", err.msg, fragment);
    assert_non_null(strstr(err.msg, "x.toml"));
}

static void test_bad_files(void **state)
{
    (void)state;
    lineage_t *l = tu_lineage_dir("schemas/tasks");
    char *good = stm_export_lineage(l);
    s_expect("format = 1\nschema_set = \n", STM_EINPUT, "x.toml:2:");
    s_expect("format = 3\n", STM_EINPUT, "newer stemma");
    s_expect("format = \"1\"\n", STM_EINPUT, "format: expected a integer");
    s_expect("format = 1\nschema_set = \"x\"\nhead_version = 0\n", STM_EINPUT, "head_id: missing");
    char *bad;
    bad = s_replace(good, "number = 2", "number = 3");
    s_expect(bad, STM_ECORRUPT, "expected number 2");
    free(bad);
    bad = s_replace(good, "head_version = 4", "head_version = 3");
    s_expect(bad, STM_ECORRUPT, "head_version and head_id do not match");
    free(bad);
    bad = s_replace(good, "affinity = \"TEXT\"", "affinity = \"STRING\"");
    s_expect(bad, STM_EINPUT, "affinity must be");
    free(bad);
    bad = s_replace(good, "type = \"INTEGER\"", "type = \"BIGINT\"");
    s_expect(bad, STM_ECORRUPT, "head does not match");
    free(bad);
    bad = s_replace(good, "action = \"created\"", "action = \"changed\"");
    s_expect(bad, STM_ECORRUPT, "changed or dropped before it was created");
    free(bad);
    bad = s_replace(good, "action = \"created\"", "action = \"born\"");
    s_expect(bad, STM_EINPUT, "action must be");
    free(bad);
    bad = s_replace(good, "version = 4\nid = \"", "version = 4\nid = \"0");
    s_expect(bad, STM_EINPUT, "expected 64 hexadecimal digits");
    free(bad);
    /* A family entry naming a version id the lineage does not hold. */
    char hex[STM_ID_HEX_LEN + 1], from[128], to[128];
    stm_id_to_hex(&stm_lineage_version_at(l, 3)->id, hex);
    snprintf(from, sizeof from, "version = 4\nid = \"%s\"", hex);
    hex[0] = hex[0] == '0' ? '1' : '0';
    snprintf(to, sizeof to, "version = 4\nid = \"%s\"", hex);
    bad = s_replace(good, from, to);
    s_expect(bad, STM_ECORRUPT, "which this lineage does not hold");
    free(bad);
    free(good);
    stm_lineage_destroy(&l);
}

/* Virtual tables: written only when there are some, and every life checked on reading. */
static void test_virtual_tables(void **state)
{
    (void)state;
    lineage_t *l = tu_lineage_dir("schemas/tasks");
    char *text = stm_export_lineage(l);
    assert_null(strstr(text, "virtual_tables"));
    free(text);
    stm_lineage_destroy(&l);
    static const char *const files[] = {
        "1_a.sql", "CREATE VIRTUAL TABLE s USING fts5(a); CREATE VIRTUAL TABLE r USING fts5(b);",
        "2_b.sql", "DROP TABLE s;",
        "3_c.sql", "CREATE VIRTUAL TABLE s USING fts5(c);",
        NULL};
    l = tu_lineage_files_ok(files);
    char *good = stm_export_lineage(l);
    assert_non_null(strstr(good, "[[virtual_tables]]\nname = \"r\"\ncreated = 1\n\n"));
    assert_non_null(strstr(good, "name = \"s\"\ncreated = 1\ndropped = 2\n"));
    assert_non_null(strstr(good, "name = \"s\"\ncreated = 3\n"));
    char *bad = s_replace(good, "dropped = 2", "dropped = 4");
    s_expect(bad, STM_ECORRUPT, "virtual table s: created at 1 and dropped at 4");
    free(bad);
    bad = s_replace(good, "dropped = 2", "dropped = 1");
    s_expect(bad, STM_ECORRUPT, "does not fit versions 1 to 3");
    free(bad);
    bad = s_replace(good, "dropped = 2\n", "");
    s_expect(bad, STM_ECORRUPT, "virtual table s: out of order");
    free(bad);
    bad = s_replace(good, "name = \"r\"", "name = \"t\"");
    s_expect(bad, STM_ECORRUPT, "out of order");
    free(bad);
    bad = s_replace(good, "created = 3", "created = \"3\"");
    s_expect(bad, STM_EINPUT, "virtual_tables[2].created: expected a integer");
    free(bad);
    free(good);
    stm_lineage_destroy(&l);
}

/* A table's keys setting and its key's collation are part of its definition: they
 * round-trip, count in the family heads (an edited file is refused), and make the file
 * format 2; a file with neither stays format 1, which older readers take. */
static void test_keys_settings_and_collations(void **state)
{
    (void)state;
    lineage_t *l = tu_lineage_dir("schemas/tasks");
    char *plain = stm_export_lineage(l);
    assert_non_null(strstr(plain, "format = 1\n"));
    free(plain);
    stm_lineage_destroy(&l);
    /* A collation alone: format 1, which older readers take (the heads skip it). */
    static const char *const nocase[] = {
        "1_a.sql", "CREATE TABLE tags (name TEXT PRIMARY KEY COLLATE NOCASE, color TEXT);", NULL};
    l = tu_lineage_files_ok(nocase);
    plain = stm_export_lineage(l);
    assert_non_null(strstr(plain, "format = 1\n"));
    assert_non_null(strstr(plain, "collation = \"NOCASE\""));
    free(plain);
    stm_lineage_destroy(&l);
    static const char *const files[] = {
        "1_a.sql",
        "CREATE TABLE accounts ( -- stemma: keys per-device\n"
        "  email TEXT PRIMARY KEY COLLATE NOCASE, name TEXT);\n"
        "CREATE TABLE counters (id INTEGER PRIMARY KEY, n INTEGER -- stemma: keys shared\n);",
        NULL};
    l = tu_lineage_files_ok(files);
    char *good = stm_export_lineage(l);
    assert_non_null(strstr(good, "format = 2\n"));
    assert_non_null(strstr(good, "keys = \"per-device\"\n"));
    assert_non_null(strstr(good, "keys = \"shared\"\n"));
    assert_non_null(strstr(good, "pk = 1, collation = \"NOCASE\" }"));
    lineage_t *back = NULL;
    stm_error err = {0};
    if (stm_export_parse(good, strlen(good), "x.toml", &back, &err) != STM_OK)
        fail_msg("%s", err.msg);
    s_assert_same_lineage(l, back);
    const catalog_table *t = stm_family_table(stm_lineage_family_find(back, "accounts"));
    assert_int_equal(stm_catalog_table_keys(t), DIRECTIVE_KEYS_PER_DEVICE);
    assert_string_equal(stm_catalog_table_key(t, 0)->key_collation, "NOCASE");
    char *again = stm_export_lineage(back);
    assert_string_equal(good, again);
    free(again);
    stm_lineage_destroy(&back);
    char *bad = s_replace(good, "keys = \"per-device\"", "keys = \"shared\"");
    s_expect(bad, STM_ECORRUPT, "family accounts, version 1: the head does not match");
    free(bad);
    bad = s_replace(good, "keys = \"per-device\"", "keys = \"mine\"");
    s_expect(bad, STM_EINPUT, "keys must be per-device or shared");
    free(bad);
    bad = s_replace(good, "name = \"name\", type = \"TEXT\", affinity = \"TEXT\", not_null = false, pk = 0",
                    "name = \"name\", type = \"TEXT\", affinity = \"TEXT\", not_null = false, pk = 0, "
                    "collation = \"NOCASE\"");
    s_expect(bad, STM_EINPUT, "only a key column has a collation here");
    free(bad);
    free(good);
    stm_lineage_destroy(&l);
}

static void test_unknown_keys_are_ignored(void **state)
{
    (void)state;
    lineage_t *l = tu_lineage_dir("schemas/tasks");
    char *good = stm_export_lineage(l);
    char *more = s_replace(good, "format = 1\n", "format = 1\nfuture_key = [1, 2]\n");
    lineage_t *back = NULL;
    stm_error err = {0};
    assert_int_equal(stm_export_parse(more, strlen(more), "x", &back, &err), STM_OK);
    s_assert_same_lineage(l, back);
    stm_lineage_destroy(&back);
    free(more);
    free(good);
    stm_lineage_destroy(&l);
}

/* A lineage of one version whose one table has n columns c0, c1, ... */
static lineage_t *s_wide(size_t n)
{
    lineage_t *l = stm_lineage_new("wide");
    stm_id zero = {{0}}, id = {{7}};
    assert_int_equal(stm_lineage_add_version(l, 1, &id, &zero, &zero, "wide", NULL), STM_OK);
    catalog_table *t = stm_catalog_table_new("w", false);
    stm_catalog_table_reserve(t, n);
    char name[32];
    for (size_t c = 0; c < n; c++) {
        snprintf(name, sizeof name, "c%zu", c);
        catalog_column col = {.name = name, .decltype = "TEXT", .affinity = AFFINITY_TEXT,
                              .pk = c == 0};
        stm_catalog_table_add_column(t, &col);
    }
    family_t *f = stm_family_new("w");
    stm_family_record(f, 1, &id, NULL, t);
    stm_catalog_table_destroy(&t);
    assert_int_equal(stm_lineage_add_family(l, f, NULL), STM_OK);
    return l;
}

static double s_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* An exported file's table of many columns is read in n log n: each name used to be
 * looked up among those before it, so 60,000 columns took seconds (and a 256 MB file
 * hours). A name given twice, in any case, is still refused, naming the column. */
static void test_wide_table_reads_fast_and_refuses_a_repeated_name(void **state)
{
    (void)state;
    lineage_t *l = s_wide(60000);
    char *text = stm_export_lineage(l);
    lineage_t *back = NULL;
    stm_error err = {0};
    double t0 = s_seconds();
    assert_int_equal(stm_export_parse(text, strlen(text), "wide.toml", &back, &err), STM_OK);
    double took = s_seconds() - t0;
    printf("# 60,000 columns read back in %.2f s\n", took);
    assert_true(took < 5.0); /* about 0.2 s; n squared took minutes under the sanitizers */
    assert_int_equal(stm_catalog_table_count(stm_family_table(stm_lineage_family_at(back, 0))),
                     60000);
    assert_non_null(
        stm_catalog_table_find(stm_family_table(stm_lineage_family_at(back, 0)), "C59999"));
    stm_lineage_destroy(&back);
    /* c59999 renamed C1: the same name as c1 to SQLite. */
    char *dup = s_replace(text, "name = \"c59999\"", "name = \"C1\"");
    s_expect(dup, STM_EINPUT, "columns[59999]: a column of that name comes twice");
    free(dup);
    free(text);
    stm_lineage_destroy(&l);
}

/* An export with the lenses reads back to a set that translates as the derived one
 * does, every column of every version to every other, and exports to the same bytes. */
static void test_lenses_round_trip(void **state)
{
    (void)state;
    static const char *const dirs[] = {"tests/data/schemas/renames", "tests/data/schemas/rebuilds",
                                       "schemas/tasks"};
    for (size_t d = 0; d < sizeof dirs / sizeof *dirs; d++) {
        lineage_t *l = tu_lineage_dir(dirs[d]);
        schemaset_t *set = NULL;
        lens_set_t *derived = NULL, *read = NULL;
        stm_error err = {0};
        if (stm_schemaset_load(dirs[d], &set, &err) != STM_OK ||
            stm_lens_derive(set, &derived, &err) != STM_OK)
            fail_msg("%s", err.msg);
        char *text = stm_export_lineage_lenses(l, derived);
        lineage_t *back = NULL;
        if (stm_export_parse_lenses(text, strlen(text), "x.toml", &back, &read, &err) != STM_OK)
            fail_msg("%s", err.msg);
        assert_non_null(read);
        char *again = stm_export_lineage_lenses(back, read);
        assert_string_equal(text, again);
        int n = (int)stm_lens_count(derived);
        for (int from = 1; from <= n; from++)
            for (size_t i = 0; i < stm_lens_column_count(derived, from); i++) {
                const char *t, *c;
                stm_lens_column_at(derived, from, i, &t, &c);
                for (int to = 1; to <= n; to++) {
                    const char *t1 = NULL, *c1 = NULL, *t2 = NULL, *c2 = NULL;
                    bool a = stm_lens_translate(derived, from, t, c, to, &t1, &c1);
                    bool b = stm_lens_translate(read, from, t, c, to, &t2, &c2);
                    assert_int_equal(a, b);
                    if (a) {
                        assert_string_equal(t1, t2);
                        assert_string_equal(c1, c2);
                    }
                }
            }
        /* Without them the file says nothing of lenses. */
        char *bare = stm_export_lineage(l);
        lineage_t *b2 = NULL;
        lens_set_t *none = NULL;
        if (stm_export_parse_lenses(bare, strlen(bare), "y.toml", &b2, &none, &err) != STM_OK)
            fail_msg("%s", err.msg);
        assert_null(none);
        stm_lineage_destroy(&b2);
        free(bare);
        free(again);
        free(text);
        stm_lens_destroy(&read);
        stm_lens_destroy(&derived);
        stm_lineage_destroy(&back);
        stm_lineage_destroy(&l);
        stm_schemaset_destroy(&set);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_is_byte_identical),
        cmocka_unit_test(test_lenses_round_trip),
        cmocka_unit_test(test_empty_lineage_round_trips),
        cmocka_unit_test(test_read_file),
        cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_virtual_tables),
        cmocka_unit_test(test_keys_settings_and_collations),
        cmocka_unit_test(test_unknown_keys_are_ignored),
        cmocka_unit_test(test_wide_table_reads_fast_and_refuses_a_repeated_name),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
