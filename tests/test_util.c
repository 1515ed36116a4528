/* Tests of the small lineage modules the others stand on: error messages, the
 * growable buffer, ids and their hex form, the JSON writer, and running SQL scripts. */
#include "base/buf.h"
#include "base/error.h"
#include "base/id.h"
#include "base/idmap.h"
#include "base/jsonw.h"
#include "base/readfile.h"
#include "lineage/sqlscript.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <sodium.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sqlite3.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void test_error_set_and_prefix(void **state)
{
    (void)state;
    stm_error err = {0};
    assert_int_equal(stm_error_set(&err, STM_EINPUT, "%s: bad %d", "f.sql", 3), STM_EINPUT);
    assert_string_equal(err.msg, "f.sql: bad 3");
    assert_int_equal(stm_error_prefix(&err, "dir"), STM_EINPUT);
    assert_string_equal(err.msg, "dir: f.sql: bad 3");
    /* An overlong prefix is cut (to 511 bytes), never the buffer overrun, and the
     * message it goes in front of survives. */
    char big[2000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    stm_error_prefix(&err, "%s", big);
    assert_true(strlen(err.msg) < sizeof err.msg);
    assert_int_equal(err.msg[0], 'x');
    assert_non_null(strstr(err.msg, "x: dir: f.sql: bad 3"));
    /* A message already at the limit keeps its start when prefixed. */
    memset(err.msg, 'm', sizeof err.msg - 1);
    err.msg[sizeof err.msg - 1] = '\0';
    stm_error_prefix(&err, "p");
    assert_int_equal(strlen(err.msg), sizeof err.msg - 1);
    assert_int_equal(strncmp(err.msg, "p: mmm", 6), 0);
    stm_error_clear(&err);
    assert_int_equal(err.code, STM_OK);
    assert_string_equal(err.msg, "");
    assert_int_equal(stm_error_set(NULL, STM_ESYS, "ignored"), STM_ESYS);
    assert_string_equal(stm_strerror(STM_ECORRUPT), "corrupt data");
    assert_string_equal(stm_strerror((stm_err)99), "unknown error");
}

/* A failed SQLite call's message: where, what, and SQLite's own words. */
static void test_error_db(void **state)
{
    (void)state;
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(":memory:", &db), SQLITE_OK);
    assert_int_not_equal(sqlite3_exec(db, "SELECT * FROM missing", NULL, NULL, NULL), SQLITE_OK);
    stm_error err = {0};
    assert_int_equal(stm_error_db(&err, db, "app.db", "reading %s", "clocks"), STM_EDB);
    assert_int_equal(err.code, STM_EDB);
    assert_string_equal(err.msg, "app.db: reading clocks: no such table: missing");
    assert_int_equal(stm_error_db(&err, db, NULL, "reading the catalog (%s)", "t"), STM_EDB);
    assert_string_equal(err.msg, "reading the catalog (t): no such table: missing");
    assert_int_equal(stm_error_db(NULL, db, NULL, "ignored"), STM_EDB);
    sqlite3_close(db);
}

static void test_buf(void **state)
{
    (void)state;
    buf_t p = BUF_INIT;
    stm_buf_put_printable(&p, "tab\there\nnew\x1b[2J\x7f ok é");
    assert_string_equal(stm_buf_str(&p), "tab\\x09here\\x0anew\\x1b[2J\\x7f ok é");
    stm_buf_free(&p);
    buf_t b = BUF_INIT;
    assert_string_equal(stm_buf_str(&b), "");
    stm_buf_puts(&b, "abc");
    stm_buf_putc(&b, '-');
    stm_buf_printf(&b, "%05d", 42);
    stm_buf_append(&b, "\0z", 2);
    assert_int_equal(b.len, 11);
    assert_memory_equal(b.data, "abc-00042\0z", 11);
    stm_buf_reset(&b);
    assert_string_equal(stm_buf_str(&b), "");
    for (int i = 0; i < 10000; i++)
        stm_buf_printf(&b, "%d,", i);
    char *s = stm_buf_detach(&b);
    assert_null(b.data);
    assert_int_equal(strncmp(s, "0,1,2,", 6), 0);
    free(s);
    stm_buf_free(&b);
}

static void test_id_hex(void **state)
{
    (void)state;
    stm_id id, back;
    stm_id_hash("abc", 3, &id);
    char hex[STM_ID_HEX_LEN + 1];
    stm_id_to_hex(&id, hex);
    /* b2sum -l 256 of "abc" */
    assert_string_equal(hex, "bddd813c634239723171ef3fee98579b94964e3bb1cb3e427262c8c068d52319");
    assert_true(stm_id_from_hex(hex, &back));
    assert_true(stm_id_equal(&id, &back));
    hex[0] = 'B';
    assert_true(stm_id_from_hex(hex, &back)); /* either case */
    assert_false(stm_id_from_hex("bddd", &back));
    hex[63] = 'g';
    assert_false(stm_id_from_hex(hex, &back));
    char longer[STM_ID_HEX_LEN + 2];
    memset(longer, 'a', sizeof longer - 1);
    longer[sizeof longer - 1] = '\0';
    assert_false(stm_id_from_hex(longer, &back));
    stm_id zero = {{0}};
    assert_true(stm_id_is_zero(&zero));
    assert_false(stm_id_is_zero(&id));
}

static void test_hasher_framing(void **state)
{
    (void)state;
    /* NULL and "" hash differently, and lengths frame strings. */
    stm_hasher h;
    stm_id a, b;
    stm_hasher_init(&h);
    stm_hasher_str(&h, NULL);
    stm_hasher_final(&h, &a);
    stm_hasher_init(&h);
    stm_hasher_str(&h, "");
    stm_hasher_final(&h, &b);
    assert_false(stm_id_equal(&a, &b));
    stm_hasher_init(&h);
    stm_hasher_str(&h, "ab");
    stm_hasher_str(&h, "c");
    stm_hasher_final(&h, &a);
    stm_hasher_init(&h);
    stm_hasher_str(&h, "a");
    stm_hasher_str(&h, "bc");
    stm_hasher_final(&h, &b);
    assert_false(stm_id_equal(&a, &b));
}

static void test_jsonw(void **state)
{
    (void)state;
    buf_t b = BUF_INIT;
    jsonw_t w;
    stm_jsonw_init(&w, &b, false);
    stm_jsonw_object_begin(&w);
    stm_jsonw_key(&w, "s");
    stm_jsonw_string(&w, "q\"\\\n\t\x01\x7f\xc3\xa9");
    stm_jsonw_key(&w, "n");
    stm_jsonw_int(&w, -9223372036854775807LL - 1);
    stm_jsonw_key(&w, "a");
    stm_jsonw_array_begin(&w);
    stm_jsonw_bool(&w, true);
    stm_jsonw_null(&w);
    stm_jsonw_string(&w, NULL);
    stm_jsonw_array_end(&w);
    stm_jsonw_key(&w, "e");
    stm_jsonw_array_begin(&w);
    stm_jsonw_array_end(&w);
    stm_jsonw_object_end(&w);
    assert_string_equal(stm_buf_str(&b),
                        "{\"s\":\"q\\\"\\\\\\n\\t\\u0001\\u007f\xc3\xa9\","
                        "\"n\":-9223372036854775808,\"a\":[true,null,null],\"e\":[]}");
    stm_buf_reset(&b);
    stm_jsonw_init(&w, &b, true);
    stm_jsonw_object_begin(&w);
    stm_jsonw_key(&w, "k");
    stm_jsonw_array_begin(&w);
    stm_jsonw_int(&w, 1);
    stm_jsonw_int(&w, 2);
    stm_jsonw_array_end(&w);
    stm_jsonw_object_end(&w);
    assert_string_equal(stm_buf_str(&b), "{\n  \"k\": [\n    1,\n    2\n  ]\n}\n");
    stm_buf_free(&b);
}

static void test_sqlscript(void **state)
{
    (void)state;
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(":memory:", &db), SQLITE_OK);
    stm_error err = {0};
    assert_int_equal(stm_sqlscript_run(db, "a.sql",
                                       "-- comment\n/* block */ CREATE TABLE t(x);\n"
                                       "INSERT INTO t VALUES (1); SELECT * FROM t;\n",
                                       0, &err),
                     STM_OK);
    /* The line of a syntax error is where SQLite says it is. */
    assert_int_equal(stm_sqlscript_run(db, "b.sql",
                                       "CREATE TABLE u(x);\n\n\nINSERT INTO\n t VALUES (,);", 0,
                                       &err),
                     STM_EINPUT);
    assert_non_null(strstr(err.msg, "b.sql:5: "));
    assert_non_null(strstr(err.msg, "syntax error"));
    assert_int_equal(stm_sqlscript_run(db, "c.sql", "\n  savepoint s;", 0, &err), STM_EINPUT);
    assert_non_null(strstr(err.msg, "c.sql:2: a migration may not control transactions"));
    assert_int_equal(stm_sqlscript_run(db, "d.sql", "BEGIN; COMMIT;", 1, &err), STM_OK);
    /* A name that merely starts like a keyword is not one. */
    assert_int_equal(
        stm_sqlscript_run(db, "e.sql", "CREATE TABLE ending(x); CREATE TABLE begin_(y);", 0, &err),
        STM_OK);
    sqlite3_close(db);
    buf_t b = BUF_INIT;
    stm_sqlscript_quote_ident(&b, "a\"b c");
    assert_string_equal(stm_buf_str(&b), "\"a\"\"b c\"");
    stm_buf_free(&b);
}

/* The one bounded reader: the whole file with a NUL after it; a file at the limit is
 * read, one byte over is refused before anything is read; a FIFO is refused at once
 * (not waited on); a missing file is STM_EINPUT with errno ENOENT, and only it. */
static void test_readfile(void **state)
{
    (void)state;
    char dir[] = "/tmp/test_util_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[64], fifo[64], missing[64];
    snprintf(path, sizeof path, "%s/ten", dir);
    snprintf(fifo, sizeof fifo, "%s/fifo", dir);
    snprintf(missing, sizeof missing, "%s/missing", dir);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite("0123456789", 1, 10, f), 10);
    fclose(f);
    assert_int_equal(mkfifo(fifo, 0600), 0);

    char *data;
    size_t len;
    stm_error err = {0};
    assert_int_equal(stm_readfile_all(path, 10, &data, &len, &err), STM_OK);
    assert_int_equal(len, 10);
    assert_string_equal(data, "0123456789");
    free(data);

    assert_int_equal(stm_readfile_all(path, 9, &data, &len, &err), STM_EINPUT);
    assert_null(data);
    assert_non_null(strstr(err.msg, "/ten: 10 bytes, more than the limit of 9"));
    assert_int_not_equal(errno, ENOENT);

    assert_int_equal(stm_readfile_all(fifo, 10, &data, &len, &err), STM_EINPUT);
    assert_non_null(strstr(err.msg, "/fifo: not a regular file"));
    assert_int_not_equal(errno, ENOENT);

    assert_int_equal(stm_readfile_all(missing, 10, &data, &len, &err), STM_EINPUT);
    assert_int_equal(errno, ENOENT);
    assert_non_null(strstr(err.msg, "/missing: cannot read: "));

    int fd = -1;
    struct stat st;
    assert_int_equal(stm_readfile_open(dir, 10, &fd, &st, &err), STM_EINPUT);
    assert_int_equal(fd, -1);
    assert_non_null(strstr(err.msg, "not a regular file"));

    unlink(path);
    unlink(fifo);
    rmdir(dir);
}

/* ---- idmap ---- */

static const int64_t *s_values;

static bool s_eq(const void *ctx, uint32_t pos)
{
    return s_values[pos] == *(const int64_t *)ctx;
}

static void test_idmap_finds_every_entry_and_only_those(void **state)
{
    (void)state;
    enum { N = 5000 };
    int64_t *values = malloc(N * sizeof *values);
    s_values = values;
    idmap_t m = {0};
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < N; i++) {
            values[i] = (int64_t)i * 7919 + pass;
            /* Every tenth entry shares one hash: probing must look past them. */
            uint64_t h = i % 10 == 0 ? 42 : stm_idmap_hash_int(values[i]);
            stm_idmap_put(&m, h, (uint32_t)i);
        }
        assert_int_equal(m.n, N);
        for (int i = 0; i < N; i++) {
            uint64_t h = i % 10 == 0 ? 42 : stm_idmap_hash_int(values[i]);
            assert_int_equal(stm_idmap_find(&m, h, s_eq, &values[i]), i);
        }
        int64_t absent = -1;
        assert_int_equal(stm_idmap_find(&m, 42, s_eq, &absent), -1);
        assert_int_equal(stm_idmap_find(&m, stm_idmap_hash_int(absent), s_eq, &absent), -1);
        stm_idmap_clear(&m); /* and filled again from empty */
        assert_int_equal(m.n, 0);
        assert_int_equal(stm_idmap_find(&m, 42, s_eq, &values[0]), -1);
    }
    stm_idmap_free(&m);
    assert_int_equal(stm_idmap_find(&m, 42, s_eq, &values[0]), -1);
    stm_id id = {{1, 2, 3, 4, 5, 6, 7, 8}};
    assert_true(stm_idmap_hash_id(&id) != 0);
    free(values);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_error_set_and_prefix), cmocka_unit_test(test_error_db),
        cmocka_unit_test(test_idmap_finds_every_entry_and_only_those),
        cmocka_unit_test(test_buf),
        cmocka_unit_test(test_id_hex),               cmocka_unit_test(test_hasher_framing),
        cmocka_unit_test(test_jsonw),                cmocka_unit_test(test_sqlscript),
        cmocka_unit_test(test_readfile),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
