/* Tests of lineage/cache: the derived lineage and lenses of a schema set read back from
 * a cache file only when they are the set's as it is now, and a damaged or foreign
 * file told and derived again; and of the lenses' encoding (lens_codec.c), cut and
 * damaged at every byte. Each test works in a scratch directory: its schema set and
 * its cache directory. */
#include "base/buf.h"
#include "lineage/cache.h"
#include "lineage/export.h"
#include "testutil.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <dirent.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Renames, a rebuild and a computed column: lenses with every kind of string. */
static const char *const s_files[][2] = {
    {"001_start.sql", "CREATE TABLE people (id TEXT PRIMARY KEY, name TEXT, nick TEXT);\n"
                      "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);\n"},
    {"002_rename.sql", "ALTER TABLE people RENAME COLUMN nick TO nickname;\n"},
    {"003_rebuild.sql", "CREATE TABLE notes_new (id INTEGER PRIMARY KEY, text TEXT);\n"
                        "INSERT INTO notes_new SELECT id, body FROM notes;\n"
                        "DROP TABLE notes;\n"
                        "ALTER TABLE notes_new RENAME TO notes;\n"},
    {"004_computed.sql", "ALTER TABLE people ADD COLUMN shout TEXT;\n"
                         "UPDATE people SET shout = upper(name);\n"
                         "ALTER TABLE people DROP COLUMN nickname;\n"},
};
#define S_FILES (sizeof s_files / sizeof s_files[0])

typedef struct {
    char *dir;     /* scratch directory */
    char *schemas; /* DIR/schemas */
    char *cache;   /* DIR/cache */
} s_fixture;

static int s_setup(void **state)
{
    s_fixture *f = calloc(1, sizeof *f);
    f->dir = tu_tmpdir();
    f->schemas = tu_path(f->dir, "schemas");
    f->cache = tu_path(f->dir, "cache");
    assert_int_equal(mkdir(f->schemas, 0755), 0);
    for (size_t i = 0; i < S_FILES; i++)
        tu_write(f->schemas, s_files[i][0], s_files[i][1]);
    *state = f;
    return 0;
}

static int s_teardown(void **state)
{
    s_fixture *f = *state;
    chmod(f->cache, 0700);
    tu_remove_tree(f->dir);
    free(f->dir);
    free(f->schemas);
    free(f->cache);
    free(f);
    return 0;
}

/* What a lineage and lenses say, as text: the export and the lenses' bytes in hex. */
static char *s_text(const lineage_t *l, const lens_set_t *s)
{
    buf_t b = BUF_INIT;
    char *toml = stm_export_lineage(l);
    stm_buf_puts(&b, toml);
    free(toml);
    buf_t lens = BUF_INIT;
    stm_lens_encode(s, &lens);
    for (size_t i = 0; i < lens.len; i++)
        stm_buf_printf(&b, "%02x", (unsigned char)lens.data[i]);
    stm_buf_free(&lens);
    return stm_buf_detach(&b);
}

/* Derives the set in f's directory, read in layout, through the cache (NULL: none);
 * returns what it says as s_text, the caller's; *report filled. */
static char *s_derive_layout(const s_fixture *f, schemaset_layout layout, const char *cache,
                             cache_report *report)
{
    schemaset_t *set = NULL;
    lineage_t *l = NULL;
    lens_set_t *s = NULL;
    stm_error err = {0};
    if (stm_schemaset_load_layout(f->schemas, layout, &set, &err) != STM_OK ||
        stm_cache_derive(set, cache, &l, &s, report, &err) != STM_OK)
        fail_msg("%s", err.msg);
    char *text = s_text(l, s);
    stm_lineage_destroy(&l);
    stm_lens_destroy(&s);
    stm_schemaset_destroy(&set);
    return text;
}

/* The same in the layout detected. */
static char *s_derive(const s_fixture *f, const char *cache, cache_report *report)
{
    return s_derive_layout(f, LAYOUT_AUTO, cache, report);
}

/* The one cache file in f's cache directory, the caller's; NULL when there is none. */
static char *s_cache_file(const s_fixture *f)
{
    DIR *d = opendir(f->cache);
    if (!d)
        return NULL;
    char *found = NULL;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.') {
            assert_null(found);
            found = tu_path(f->cache, e->d_name);
        }
    closedir(d);
    return found;
}

static void test_a_second_derivation_is_read_from_the_cache(void **state)
{
    s_fixture *f = *state;
    cache_report r;
    char *direct = s_derive(f, NULL, &r);
    assert_false(r.hit);
    assert_false(r.written);
    char *first = s_derive(f, f->cache, &r);
    assert_false(r.hit);
    assert_true(r.written);
    assert_string_equal(r.warning, "");
    char *second = s_derive(f, f->cache, &r);
    assert_true(r.hit);
    assert_string_equal(r.warning, "");
    assert_string_equal(first, direct);
    assert_string_equal(second, direct);
    free(direct);
    free(first);
    free(second);
}

/* The set's files fit sqlx's layout too: read so, the files are the same and so are
 * the ids, but the layout names files (messages in the lenses name them), so it is
 * part of the key. */
static void test_the_layout_is_part_of_the_key(void **state)
{
    s_fixture *f = *state;
    cache_report r;
    char *stemma = s_derive(f, f->cache, &r);
    assert_true(r.written);
    char *sqlx = s_derive_layout(f, LAYOUT_SQLX, f->cache, &r);
    assert_false(r.hit);
    assert_true(r.written);
    free(s_derive_layout(f, LAYOUT_SQLX, f->cache, &r));
    assert_true(r.hit);
    free(s_derive_layout(f, LAYOUT_STEMMA, f->cache, &r));
    assert_true(r.hit);
    assert_string_equal(sqlx, stemma);
    free(stemma);
    free(sqlx);
}

static void test_an_edited_migration_is_derived_again(void **state)
{
    s_fixture *f = *state;
    cache_report r;
    free(s_derive(f, f->cache, &r));
    /* The same number, another text: another head, so another key. */
    tu_write(f->schemas, "004_computed.sql",
             "ALTER TABLE people ADD COLUMN alias TEXT;\n"
             "UPDATE people SET alias = lower(name);\n");
    char *direct = s_derive(f, NULL, &r);
    char *cached = s_derive(f, f->cache, &r);
    assert_false(r.hit);
    assert_string_equal(r.warning, "");
    assert_string_equal(cached, direct);
    assert_non_null(strstr(cached, "alias"));
    free(cached);
    cached = s_derive(f, f->cache, &r);
    assert_true(r.hit);
    assert_string_equal(cached, direct);
    free(cached);
    free(direct);
}

static void test_a_migration_added_is_derived_again(void **state)
{
    s_fixture *f = *state;
    cache_report r;
    free(s_derive(f, f->cache, &r));
    tu_write(f->schemas, "005_more.sql", "CREATE TABLE more (id TEXT PRIMARY KEY);\n");
    char *direct = s_derive(f, NULL, &r);
    char *cached = s_derive(f, f->cache, &r);
    assert_false(r.hit);
    assert_string_equal(cached, direct);
    free(cached);
    free(direct);
}

/* Replaces the cache file's bytes with what make gives, derives again, and checks the
 * answer is the right one, told once, and the file made good again. */
static void s_damaged(const s_fixture *f, void (*make)(const char *path))
{
    cache_report r;
    char *direct = s_derive(f, NULL, &r);
    free(s_derive(f, f->cache, &r));
    char *path = s_cache_file(f);
    assert_non_null(path);
    make(path);
    char *again = s_derive(f, f->cache, &r);
    assert_false(r.hit);
    assert_true(r.written);
    assert_string_equal(again, direct);
    /* One line naming the file. */
    assert_non_null(strstr(r.warning, path));
    assert_null(strchr(r.warning, '\n'));
    free(again);
    again = s_derive(f, f->cache, &r);
    assert_true(r.hit);
    assert_string_equal(r.warning, "");
    assert_string_equal(again, direct);
    free(again);
    free(direct);
    free(path);
}

static void s_garbage(const char *path)
{
    char junk[4096];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (char)(i * 7 + 3);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(junk, 1, sizeof junk, f), sizeof junk);
    fclose(f);
}

static void s_truncated(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(truncate(path, st.st_size / 2), 0);
}

static void s_sql(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

/* One name in the lenses changed, the file otherwise sound: the lenses still read as
 * a set (of a column "shoux"), so only the digest can tell. */
static void s_edited(const char *path)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT value FROM cache WHERE key = 'lenses'", -1,
                                        &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    size_t n = (size_t)sqlite3_column_bytes(st, 0);
    char *blob = malloc(n);
    memcpy(blob, sqlite3_column_blob(st, 0), n);
    sqlite3_finalize(st);
    char *at = NULL;
    for (size_t i = 0; !at && i + 5 <= n; i++)
        if (memcmp(blob + i, "shout", 5) == 0)
            at = blob + i;
    assert_non_null(at);
    at[4] = 'x';
    assert_int_equal(
        sqlite3_prepare_v2(db, "UPDATE cache SET value = ?1 WHERE key = 'lenses'", -1, &st, NULL),
        SQLITE_OK);
    sqlite3_bind_blob(st, 1, blob, (int)n, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);
    sqlite3_close(db);
    free(blob);
}

/* A file edited and its digest made again as the writer makes it (cache.h): the
 * lineage's own checks (its family heads) must tell. */
static void s_forged(const char *path)
{
    s_sql(path, "UPDATE cache SET value = replace(value, 'nickname', 'nicknamf') "
                "WHERE key = 'lineage'");
    static const char *const keys[] = {"format", "code",  "sqlite", "name",    "dir",
                                       "layout", "count", "head",   "lineage", "lenses"};
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    stm_hasher h;
    stm_hasher_init(&h);
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        sqlite3_stmt *st = NULL;
        assert_int_equal(
            sqlite3_prepare_v2(db, "SELECT value FROM cache WHERE key = ?1", -1, &st, NULL),
            SQLITE_OK);
        sqlite3_bind_text(st, 1, keys[i], -1, SQLITE_STATIC);
        assert_int_equal(sqlite3_step(st), SQLITE_ROW);
        size_t n = (size_t)sqlite3_column_bytes(st, 0);
        stm_hasher_u64(&h, n);
        stm_hasher_update(&h, sqlite3_column_blob(st, 0), n);
        sqlite3_finalize(st);
    }
    stm_id id;
    stm_hasher_final(&h, &id);
    char hex[STM_ID_HEX_LEN + 1], sql[200];
    stm_id_to_hex(&id, hex);
    snprintf(sql, sizeof sql, "UPDATE cache SET value = '%s' WHERE key = 'digest'", hex);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

static void s_emptied(const char *path)
{
    s_sql(path, "DELETE FROM cache WHERE key = 'lenses'");
}

static void test_a_garbage_cache_is_told_and_derived_again(void **state)
{
    s_damaged(*state, s_garbage);
}

static void test_a_truncated_cache_is_told_and_derived_again(void **state)
{
    s_damaged(*state, s_truncated);
}

static void test_an_edited_cache_is_told_and_derived_again(void **state)
{
    s_damaged(*state, s_edited);
    s_damaged(*state, s_forged);
    s_damaged(*state, s_emptied);
}

static void test_an_unwritable_cache_is_no_error(void **state)
{
    s_fixture *f = *state;
    assert_int_equal(mkdir(f->cache, 0500), 0);
    cache_report r;
    char *direct = s_derive(f, NULL, &r);
    char *cached = s_derive(f, f->cache, &r);
    if (geteuid() != 0) /* root writes anywhere */
        assert_false(r.written);
    assert_string_equal(r.warning, "");
    assert_string_equal(cached, direct);
    free(cached);
    free(direct);
}

static void test_the_lenses_cut_or_damaged_at_any_byte_are_refused(void **state)
{
    s_fixture *f = *state;
    schemaset_t *set = NULL;
    lens_set_t *s = NULL;
    stm_error err = {0};
    assert_int_equal(stm_schemaset_load(f->schemas, &set, &err), STM_OK);
    assert_int_equal(stm_lens_derive(set, &s, &err), STM_OK);
    buf_t b = BUF_INIT;
    stm_lens_encode(s, &b);
    lens_set_t *back = NULL;
    assert_int_equal(stm_lens_decode(b.data, b.len, S_FILES, &back, &err), STM_OK);
    buf_t again = BUF_INIT;
    stm_lens_encode(back, &again);
    assert_int_equal(again.len, b.len);
    assert_memory_equal(again.data, b.data, b.len);
    stm_lens_destroy(&back);
    /* Another count, every cut: refused, never read past the end (ASan watches). */
    assert_int_equal(stm_lens_decode(b.data, b.len, S_FILES + 1, &back, &err), STM_ECORRUPT);
    for (size_t n = 0; n < b.len; n++) {
        char *cut = malloc(n + 1);
        memcpy(cut, b.data, n);
        assert_int_equal(stm_lens_decode(cut, n, S_FILES, &back, &err), STM_ECORRUPT);
        free(cut);
    }
    /* Every byte changed: refused, or read as some set that answers without harm. */
    for (size_t i = 0; i < b.len; i++) {
        char *bent = malloc(b.len);
        memcpy(bent, b.data, b.len);
        bent[i] = (char)(bent[i] ^ 0x5a);
        if (stm_lens_decode(bent, b.len, S_FILES, &back, &err) == STM_OK) {
            const char *t, *c;
            for (int v = 1; v <= (int)S_FILES; v++)
                (void)stm_lens_translate(back, 1, "people", "name", v, &t, &c);
            stm_lens_destroy(&back);
        }
        free(bent);
    }
    stm_buf_free(&again);
    stm_buf_free(&b);
    stm_lens_destroy(&s);
    stm_schemaset_destroy(&set);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, s_setup, s_teardown)
    const struct CMUnitTest tests[] = {
        T(test_a_second_derivation_is_read_from_the_cache),
        T(test_the_layout_is_part_of_the_key),
        T(test_an_edited_migration_is_derived_again),
        T(test_a_migration_added_is_derived_again),
        T(test_a_garbage_cache_is_told_and_derived_again),
        T(test_a_truncated_cache_is_told_and_derived_again),
        T(test_an_edited_cache_is_told_and_derived_again),
        T(test_an_unwritable_cache_is_no_error),
        T(test_the_lenses_cut_or_damaged_at_any_byte_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
