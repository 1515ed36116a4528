#include "testutil.h"
#include "base/buf.h"

#include <setjmp.h>
#include <stdarg.h>
#include <cmocka.h>

#include <dirent.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

char *tu_tmpdir(void)
{
    const char *base = getenv("TMPDIR");
    char tmpl[4096];
    snprintf(tmpl, sizeof tmpl, "%s/stemma-test-XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(tmpl)) {
        perror("mkdtemp");
        abort();
    }
    return strdup(tmpl);
}

void tu_write_bytes(const char *dir, const char *name, const void *data, size_t len)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0) {
        perror(path);
        abort();
    }
}

void tu_write(const char *dir, const char *name, const char *text)
{
    tu_write_bytes(dir, name, text, strlen(text));
}

static int s_remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void tu_remove_tree(const char *path)
{
    nftw(path, s_remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

char *tu_read(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0;
    char *data = malloc(cap);
    size_t got;
    while ((got = fread(data + n, 1, cap - n - 1, f)) > 0) {
        n += got;
        if (cap - n - 1 == 0)
            data = realloc(data, cap *= 2);
    }
    fclose(f);
    data[n] = '\0';
    if (len)
        *len = n;
    return data;
}

char *tu_path(const char *dir, const char *name)
{
    buf_t b = BUF_INIT;
    stm_buf_printf(&b, "%s/%s", dir, name);
    return stm_buf_detach(&b);
}

char *tu_read_file(const char *dir, const char *name)
{
    char *p = tu_path(dir, name);
    char *text = tu_read(p, NULL);
    free(p);
    assert_non_null(text);
    return text;
}

unsigned tu_mode(const char *dir, const char *name)
{
    char *p = tu_path(dir, name);
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    free(p);
    return (unsigned)(st.st_mode & 07777);
}

void tu_no_temporaries(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d)))
        if (strstr(e->d_name, ".tmp"))
            fail_msg("temporary file left behind: %s", e->d_name);
    closedir(d);
}

void tu_expect_msg(const stm_error *err, const char *dir, const char *name, const char *rest,
                   const char *contains)
{
    buf_t want = BUF_INIT;
    stm_buf_printf(&want, "%s/%s%s", dir, name, rest ? rest : "");
    if (strncmp(err->msg, stm_buf_str(&want), want.len) != 0)
        fail_msg("message \"%s\" does not start with \"%s\"", err->msg, stm_buf_str(&want));
    if (contains && !strstr(err->msg, contains))
        fail_msg("message \"%s\" does not contain \"%s\"", err->msg, contains);
    assert_null(strchr(err->msg, '\n'));
    stm_buf_free(&want);
}

lineage_t *tu_lineage_dir(const char *dir)
{
    schemaset_t *set = NULL;
    lineage_t *l = NULL;
    stm_error err = {0};
    if (stm_schemaset_load(dir, &set, &err) != STM_OK || stm_lineage_build(set, &l, &err) != STM_OK)
        fail_msg("%s: %s", dir, err.msg);
    stm_schemaset_destroy(&set);
    return l;
}

lineage_t *tu_lineage_files(const char *const *files, stm_error *err)
{
    char *dir = tu_tmpdir();
    for (size_t i = 0; files[i]; i += 2)
        tu_write(dir, files[i], files[i + 1]);
    schemaset_t *set = NULL;
    lineage_t *l = NULL;
    if (stm_schemaset_load(dir, &set, err) == STM_OK && stm_lineage_build(set, &l, err) != STM_OK)
        l = NULL;
    stm_schemaset_destroy(&set);
    tu_remove_tree(dir);
    free(dir);
    return l;
}

lineage_t *tu_lineage_files_ok(const char *const *files)
{
    stm_error err = {0};
    lineage_t *l = tu_lineage_files(files, &err);
    if (!l)
        fail_msg("build failed: %s", err.msg);
    return l;
}
