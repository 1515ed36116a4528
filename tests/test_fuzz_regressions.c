/* Regression tests of the fuzz targets: every file in tests/data/fuzz/TARGET/ goes
 * through the same code as the libFuzzer target fuzz_TARGET (fuzz/targets.c), so every
 * crash a fuzzer ever found stays fixed in the ordinary build, under the sanitizers when
 * the suite runs under them. Each directory also keeps a few seeds, so no test is empty.
 *
 * A file is read into a block of exactly its size, as libFuzzer hands it over, so a read
 * past the end shows under ASan. A broken promise aborts (targets.h) and names itself
 * on stderr; the file being run is printed first. docs/hardening.md tells how to add one. */
#include "fuzz/targets.h"
#include "testutil.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef void (*s_target_fn)(const uint8_t *data, size_t size);

static int s_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Runs fn on every file of tests/data/fuzz/target, in name order; returns how many. */
static size_t s_run_dir(const char *target, s_target_fn fn)
{
    char dir[256];
    snprintf(dir, sizeof dir, "tests/data/fuzz/%s", target);
    DIR *d = opendir(dir);
    if (!d)
        fail_msg("%s: cannot open (run from the source root)", dir);
    char **names = NULL;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        names = realloc(names, (n + 1) * sizeof *names);
        names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof *names, s_cmp);
    for (size_t i = 0; i < n; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        size_t len = 0;
        char *text = tu_read(path, &len);
        if (!text)
            fail_msg("%s: cannot read", path);
        uint8_t *exact = malloc(len ? len : 1);
        memcpy(exact, text, len);
        free(text);
        fprintf(stderr, "fuzz_%s %s\n", target, path);
        fn(exact, len);
        free(exact);
        free(names[i]);
    }
    free(names);
    return n;
}

static void test_toml(void **state)
{
    (void)state;
    assert_true(s_run_dir("toml", fuzz_toml) > 0);
}

static void test_wire(void **state)
{
    (void)state;
    assert_true(s_run_dir("wire", fuzz_wire) > 0);
}

static void test_codec(void **state)
{
    (void)state;
    assert_true(s_run_dir("codec", fuzz_codec) > 0);
}

static void test_bundle(void **state)
{
    (void)state;
    assert_true(s_run_dir("bundle", fuzz_bundle) > 0);
}

static void test_judge(void **state)
{
    (void)state;
    fuzz_judge_init(".");
    assert_true(s_run_dir("judge", fuzz_judge) > 0);
    fuzz_judge_fini();
}

static void test_beacon(void **state)
{
    (void)state;
    assert_true(s_run_dir("beacon", fuzz_beacon) > 0);
}

/* Empty inputs, which every target must take too. */
static void test_empty(void **state)
{
    (void)state;
    uint8_t none[1] = {0};
    fuzz_toml(none, 0);
    fuzz_wire(none, 0);
    fuzz_codec(none, 0);
    fuzz_bundle(none, 0);
    fuzz_beacon(none, 0);
    fuzz_judge_init(".");
    fuzz_judge(none, 0);
    fuzz_judge_fini();
    for (int b = 0; b < 4; b++) {
        none[0] = (uint8_t)b;
        fuzz_wire(none, 1);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_toml),   cmocka_unit_test(test_wire),  cmocka_unit_test(test_codec),
        cmocka_unit_test(test_bundle), cmocka_unit_test(test_judge), cmocka_unit_test(test_beacon),
        cmocka_unit_test(test_empty),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
