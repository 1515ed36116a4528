/* Tests of toml/: every kind of value, escapes, error positions, the depth limit,
 * huge tables, the emitter's exact output, and emit -> parse round trips. The toml-test
 * suite is in test_toml_conformance.c. One file (over the house's 700 lines): toml/ is
 * one module behind toml.h, and the emitter is tested by parsing what it writes, so the
 * parser's tests and the emitter's share their helpers. */
#include "base/buf.h"
#include "toml/toml.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static toml_value *s_parse(const char *text)
{
    toml_value *root = NULL;
    stm_error err = {0};
    if (stm_toml_parse(text, strlen(text), "test.toml", &root, &err) != STM_OK)
        fail_msg("unexpected error: %s", err.msg);
    return root;
}

/* Parses text, which must fail with a message starting with prefix. */
static void s_refuse(const char *text, size_t len, const char *prefix)
{
    toml_value *root = NULL;
    stm_error err = {0};
    stm_err rc = stm_toml_parse(text, len, "doc.toml", &root, &err);
    if (rc != STM_EINPUT)
        fail_msg("accepted: %.60s", text);
    assert_null(root);
    if (strncmp(err.msg, prefix, strlen(prefix)) != 0)
        fail_msg("message \"%s\" does not start with \"%s\" (document: %.60s)", err.msg, prefix,
                 text);
}

/* For literals holding NUL bytes. */
#define S_REFUSE_BYTES(lit, prefix) s_refuse(lit, sizeof(lit) - 1, prefix)

static double s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const toml_datetime *s_dt(const toml_value *t, const char *key, toml_type type)
{
    const toml_value *v = stm_toml_table_get(t, key);
    assert_non_null(v);
    assert_int_equal(stm_toml_type_of(v), type);
    return stm_toml_datetime_of(v);
}

static void test_scalars(void **state)
{
    (void)state;
    toml_value *t = s_parse("s = \"hello\"\n"
                            "i = -42\n"
                            "plus = +17\n"
                            "hex = 0xDEAD_beef\n"
                            "oct = 0o755\n"
                            "bin = 0b1101\n"
                            "max = 9223372036854775807\n"
                            "min = -9223372036854775808\n"
                            "zero = -0\n"
                            "f = 6.626e-34\n"
                            "fu = 1_000.5\n"
                            "fe = 5E+2_2\n"
                            "pinf = +inf\n"
                            "ninf = -inf\n"
                            "nan = -nan\n"
                            "yes = true\n"
                            "no = false\n"
                            "odt = 1979-05-27T00:32:00.999999999999-07:30\n"
                            "odtz = 1979-05-27 07:32:00z\n"
                            "ldt = 1979-05-27t07:32:00.5\n"
                            "ld = 2024-02-29\n"
                            "lt = 23:59:60.000001\n");
    size_t len;
    assert_string_equal(stm_toml_string(stm_toml_table_get(t, "s"), &len), "hello");
    assert_int_equal(len, 5);
    assert_int_equal(stm_toml_integer(stm_toml_table_get(t, "i")), -42);
    assert_int_equal(stm_toml_integer(stm_toml_table_get(t, "plus")), 17);
    assert_int_equal(stm_toml_integer(stm_toml_table_get(t, "hex")), 0xDEADBEEF);
    assert_int_equal(stm_toml_integer(stm_toml_table_get(t, "oct")), 0755);
    assert_int_equal(stm_toml_integer(stm_toml_table_get(t, "bin")), 13);
    assert_true(stm_toml_integer(stm_toml_table_get(t, "max")) == INT64_MAX);
    assert_true(stm_toml_integer(stm_toml_table_get(t, "min")) == INT64_MIN);
    assert_int_equal(stm_toml_integer(stm_toml_table_get(t, "zero")), 0);
    assert_true(stm_toml_float(stm_toml_table_get(t, "f")) == 6.626e-34);
    assert_true(stm_toml_float(stm_toml_table_get(t, "fu")) == 1000.5);
    assert_true(stm_toml_float(stm_toml_table_get(t, "fe")) == 5e22);
    assert_true(isinf(stm_toml_float(stm_toml_table_get(t, "pinf"))) &&
                stm_toml_float(stm_toml_table_get(t, "pinf")) > 0);
    assert_true(isinf(stm_toml_float(stm_toml_table_get(t, "ninf"))) &&
                stm_toml_float(stm_toml_table_get(t, "ninf")) < 0);
    assert_true(isnan(stm_toml_float(stm_toml_table_get(t, "nan"))));
    assert_true(stm_toml_bool(stm_toml_table_get(t, "yes")));
    assert_false(stm_toml_bool(stm_toml_table_get(t, "no")));

    const toml_datetime *d = s_dt(t, "odt", TOML_DATETIME);
    assert_int_equal(d->year, 1979);
    assert_int_equal(d->month, 5);
    assert_int_equal(d->day, 27);
    assert_int_equal(d->hour, 0);
    assert_int_equal(d->minute, 32);
    assert_int_equal(d->second, 0);
    assert_int_equal(d->nanosecond, 999999999);
    assert_int_equal(d->offset_minutes, -(7 * 60 + 30));
    d = s_dt(t, "odtz", TOML_DATETIME);
    assert_int_equal(d->hour, 7);
    assert_int_equal(d->offset_minutes, 0);
    d = s_dt(t, "ldt", TOML_DATETIME_LOCAL);
    assert_int_equal(d->nanosecond, 500000000);
    d = s_dt(t, "ld", TOML_DATE_LOCAL);
    assert_int_equal(d->year, 2024);
    assert_int_equal(d->month, 2);
    assert_int_equal(d->day, 29);
    d = s_dt(t, "lt", TOML_TIME_LOCAL);
    assert_int_equal(d->hour, 23);
    assert_int_equal(d->second, 60);
    assert_int_equal(d->nanosecond, 1000);

    /* insertion order, and where values start */
    assert_int_equal(stm_toml_table_count(t), 22);
    assert_string_equal(stm_toml_table_key(t, 0), "s");
    assert_string_equal(stm_toml_table_key(t, 21), "lt");
    assert_int_equal(stm_toml_line(stm_toml_table_at(t, 2)), 3);
    assert_int_equal(stm_toml_column(stm_toml_table_at(t, 2)), 8);
    assert_string_equal(stm_toml_type_name(TOML_DATETIME_LOCAL), "datetime-local");
    assert_string_equal(stm_toml_type_name(TOML_TABLE), "table");
    stm_toml_destroy(&t);
    assert_null(t);
}

static void test_tables(void **state)
{
    (void)state;
    toml_value *t = s_parse("top.x = 1\n"
                            "top.y.z = [1, 'two', 3.0, [4], {x = 5}]\n"
                            "arr = [\n  1, # one\n\n  2,\n]\n"
                            "[t]\n"
                            "\"key with space\" = 1\n"
                            "[t.sub]\n"
                            "[[t.list]]\n"
                            "n = 1\n"
                            "[[t.list]]\n"
                            "n = 2\n"
                            "[t.list.deep]\n"
                            "k = 'v'\n"
                            "[a.b.c]\n"
                            "[a]\n"
                            "x = 1\n");
    toml_value *top = stm_toml_table_get(t, "top");
    assert_int_equal(stm_toml_type_of(top), TOML_TABLE);
    assert_int_equal(stm_toml_integer(stm_toml_table_get(top, "x")), 1);
    toml_value *z = stm_toml_table_get(stm_toml_table_get(top, "y"), "z");
    assert_int_equal(stm_toml_array_count(z), 5);
    assert_int_equal(stm_toml_type_of(stm_toml_array_at(z, 1)), TOML_STRING);
    assert_int_equal(stm_toml_type_of(stm_toml_array_at(z, 3)), TOML_ARRAY);
    assert_int_equal(stm_toml_integer(stm_toml_table_get(stm_toml_array_at(z, 4), "x")), 5);
    assert_int_equal(stm_toml_array_count(stm_toml_table_get(t, "arr")), 2);
    toml_value *tt = stm_toml_table_get(t, "t");
    assert_non_null(stm_toml_table_get(tt, "key with space"));
    assert_int_equal(stm_toml_table_count(stm_toml_table_get(tt, "sub")), 0);
    toml_value *list = stm_toml_table_get(tt, "list");
    assert_int_equal(stm_toml_array_count(list), 2);
    assert_int_equal(stm_toml_integer(stm_toml_table_get(stm_toml_array_at(list, 1), "n")), 2);
    assert_string_equal(
        stm_toml_string(
            stm_toml_table_get(stm_toml_table_get(stm_toml_array_at(list, 1), "deep"), "k"), NULL),
        "v");
    assert_int_equal(stm_toml_line(list), 11);
    assert_int_equal(stm_toml_line(stm_toml_array_at(list, 1)), 13);
    toml_value *a = stm_toml_table_get(t, "a");
    assert_int_equal(stm_toml_table_count(a), 2);
    assert_int_equal(stm_toml_line(a), 18); /* where [a] defined it */
    stm_toml_destroy(&t);
}

static void test_strings(void **state)
{
    (void)state;
    toml_value *t = s_parse("esc = \"\\b\\t\\n\\f\\r\\\"\\\\\\u00e9\\U0001F600\"\n"
                            "nul = \"a\\u0000b\"\n"
                            "lit = 'C:\\path\\\"x\"'\n"
                            "ml = \"\"\"\nfirst\\\n    second \\  \n\n  third\"\"\"\n"
                            "mlq = \"\"\"\"\"quoted\"\"\"\"\"\n"
                            "mll = '''\n''x''\\n'''\n"
                            "crlf = \"\"\"a\r\nb\"\"\"\n"
                            "utf8 = \"\xce\xbb \xf0\x9f\x98\x80\"\n"
                            "\"\\u00e9\" = 1\n"
                            "'' = 2\n");
    size_t len;
    assert_string_equal(stm_toml_string(stm_toml_table_get(t, "esc"), &len),
                        "\b\t\n\f\r\"\\\xc3\xa9\xf0\x9f\x98\x80");
    const char *s = stm_toml_string(stm_toml_table_get(t, "nul"), &len);
    assert_int_equal(len, 3);
    assert_memory_equal(s, "a\0b", 4);
    assert_string_equal(stm_toml_string(stm_toml_table_get(t, "lit"), NULL), "C:\\path\\\"x\"");
    assert_string_equal(stm_toml_string(stm_toml_table_get(t, "ml"), NULL), "firstsecond third");
    assert_string_equal(stm_toml_string(stm_toml_table_get(t, "mlq"), NULL), "\"\"quoted\"\"");
    assert_string_equal(stm_toml_string(stm_toml_table_get(t, "mll"), NULL), "''x''\\n");
    assert_string_equal(stm_toml_string(stm_toml_table_get(t, "crlf"), NULL), "a\nb");
    assert_string_equal(stm_toml_string(stm_toml_table_get(t, "utf8"), NULL),
                        "\xce\xbb \xf0\x9f\x98\x80");
    assert_non_null(stm_toml_table_get(t, "\xc3\xa9"));
    assert_non_null(stm_toml_table_get(t, ""));
    stm_toml_destroy(&t);

    /* a key holding NUL is reachable by position and length */
    t = s_parse("\"a\\u0000\" = 1\n");
    assert_int_equal(stm_toml_table_key_len(t, 0), 2);
    assert_memory_equal(stm_toml_table_key(t, 0), "a\0", 3);
    stm_toml_destroy(&t);

    S_REFUSE_BYTES("s = \"\\uD800\"\n", "doc.toml:1:6: invalid \\u escape");
    S_REFUSE_BYTES("s = \"\\U00110000\"\n", "doc.toml:1:6: invalid \\U escape");
    S_REFUSE_BYTES("s = \"\\x41\"\n", "doc.toml:1:6: invalid escape");
    S_REFUSE_BYTES("s = '''a''''''\n", "doc.toml:1:14: too many");
}

static void test_error_positions(void **state)
{
    (void)state;
    static const struct {
        const char *doc;
        const char *prefix;
    } cases[] = {
        {"a = 1\nb = \"x\\q\"\n", "doc.toml:2:7: invalid escape"},
        {"a = 1\na = 2\n", "doc.toml:2:1: duplicate key 'a' (first defined at line 1)"},
        {"[a]\nb = 1\n[a]\n", "doc.toml:3:2: table 'a' is already defined"},
        {"[a]\nb.c = 1\n[a.b]\n", "doc.toml:3:4: table 'a.b' is already defined"},
        {"[x]\ny = {z = 1}\ny.w = 2\n", "doc.toml:3:1: 'x.y' is an inline table"},
        {"x = 9223372036854775808\n", "doc.toml:1:5: integer"},
        {"x = 01\n", "doc.toml:1:5: invalid number: leading zeros"},
        {"x = 1__0\n", "doc.toml:1:6: invalid number: '_'"},
        {"x = 2023-02-29\n", "doc.toml:1:13: day 29 is out of range"},
        {"x = 12:60:00\n", "doc.toml:1:8: minute 60"},
        {"s = \"\"\"\nabc\n", "doc.toml:3:1: a multi-line string opened at line 1, column 5"},
        {"k = \"\xc3\xa9\" x\n", "doc.toml:1:9: expected end of line, found 'x'"},
        {"a = [1,\n  2,,]\n", "doc.toml:2:5: expected a value, found ','"},
        {"a = 1\r\nb = @\r\n", "doc.toml:2:5: expected a value, found '@'"},
        {"t = {a = 1,}\n", "doc.toml:1:12: trailing comma"},
        {"t = {a = 1\n}\n", "doc.toml:1:11: expected ',' or '}'"},
        {"a = 1\rb = 2\n", "doc.toml:1:6: expected end of line, found control character U+000D"},
        {"x = tru\n", "doc.toml:1:5: invalid value"},
        {"\xef\xbb\xbf"
         "a = 1 b\n",
         "doc.toml:1:7: expected end of line, found 'b'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        s_refuse(cases[i].doc, strlen(cases[i].doc), cases[i].prefix);

    /* bytes that strlen would not see, and UTF-8 checks */
    S_REFUSE_BYTES("a = 1\n# caf\xc3\n", "doc.toml:2:6: invalid UTF-8");
    S_REFUSE_BYTES("a = 1\0\n",
                   "doc.toml:1:6: expected end of line, found control character U+0000");
    S_REFUSE_BYTES("a = \"\xed\xa0\x80\"\n", "doc.toml:1:6: invalid UTF-8 (byte 0xED)");
    S_REFUSE_BYTES("# \x7f\n", "doc.toml:1:3: control character U+007F");

    /* no name given */
    toml_value *root = NULL;
    stm_error err = {0};
    assert_int_equal(stm_toml_parse("=", 1, NULL, &root, &err), STM_EINPUT);
    assert_string_equal(err.msg, "<toml>:1:1: expected a key, found '='");
    assert_null(root);
}

static void test_depth_limit(void **state)
{
    (void)state;
    buf_t b = BUF_INIT;
    /* 256 nested arrays is the most allowed ... */
    stm_buf_puts(&b, "a = ");
    for (int i = 0; i < TOML_MAX_DEPTH; i++)
        stm_buf_putc(&b, '[');
    for (int i = 0; i < TOML_MAX_DEPTH; i++)
        stm_buf_putc(&b, ']');
    toml_value *t = s_parse(stm_buf_str(&b));
    char *out = stm_toml_emit(t, NULL);
    toml_value *again = s_parse(out);
    assert_true(stm_toml_equal(t, again));
    free(out);
    stm_toml_destroy(&again);
    stm_toml_destroy(&t);

    /* ... one more is refused at the bracket that goes too deep */
    stm_buf_reset(&b);
    stm_buf_puts(&b, "a = ");
    for (int i = 0; i <= TOML_MAX_DEPTH; i++)
        stm_buf_putc(&b, '[');
    s_refuse(stm_buf_str(&b), b.len, "doc.toml:1:261: arrays and tables nest deeper than 256");

    /* a million levels of inline tables stop at the limit, not at the stack */
    stm_buf_reset(&b);
    stm_buf_puts(&b, "a = ");
    for (int i = 0; i < 1000000; i++)
        stm_buf_puts(&b, "{b=");
    s_refuse(stm_buf_str(&b), b.len, "doc.toml:1:");

    /* dotted keys and headers count too */
    stm_buf_reset(&b);
    stm_buf_puts(&b, "k");
    for (int i = 0; i < 300; i++)
        stm_buf_puts(&b, ".k");
    stm_buf_puts(&b, " = 1\n");
    s_refuse(stm_buf_str(&b), b.len, "doc.toml:1:");
    stm_buf_reset(&b);
    stm_buf_puts(&b, "[k");
    for (int i = 0; i < 300; i++)
        stm_buf_puts(&b, ".k");
    stm_buf_puts(&b, "]\n");
    s_refuse(stm_buf_str(&b), b.len, "doc.toml:1:");
    /* arrays of tables inside arrays of tables: two levels per header */
    stm_buf_reset(&b);
    for (int i = 0; i < 300; i++) {
        stm_buf_puts(&b, "[[k");
        for (int j = 0; j < i; j++)
            stm_buf_puts(&b, ".k");
        stm_buf_puts(&b, "]]\n");
    }
    s_refuse(stm_buf_str(&b), b.len, "doc.toml:129:259: tables nest deeper than 256");
    stm_buf_free(&b);
}

/* A document of more than TOML_MAX_VALUES values, or headers, is refused where the one
 * too many starts: two bytes of text each ("0,") parsed into about 60, so 64 MB of
 * text held 1.9 GB before the limit. */
static void test_value_limit(void **state)
{
    (void)state;
    buf_t b = BUF_INIT;
    stm_buf_puts(&b, "a = [");
    for (int i = 0; i <= TOML_MAX_VALUES; i++)
        stm_buf_puts(&b, "0,");
    stm_buf_puts(&b, "0]\n");
    char prefix[96];
    /* The array is value 1; its element 3,999,999 (at column 6 + 2 * 3,999,999) is
     * value 4,000,001. */
    snprintf(prefix, sizeof prefix, "doc.toml:1:%d: more than %d values", 6 + 2 * (TOML_MAX_VALUES - 1),
             TOML_MAX_VALUES);
    s_refuse(stm_buf_str(&b), b.len, prefix);
    stm_buf_reset(&b);
    for (int i = 0; i <= TOML_MAX_VALUES; i++)
        stm_buf_puts(&b, "[[x]]\n");
    snprintf(prefix, sizeof prefix, "doc.toml:%d:1: more than %d values", TOML_MAX_VALUES + 1,
             TOML_MAX_VALUES);
    s_refuse(stm_buf_str(&b), b.len, prefix);
    stm_buf_free(&b);
}

static void test_big_table(void **state)
{
    (void)state;
    enum { N = 100000 };
    buf_t b = BUF_INIT;
    for (int i = 0; i < N; i++)
        stm_buf_printf(&b, "key_%d = %d\n", i, i);
    double start = s_now();
    toml_value *t = s_parse(stm_buf_str(&b));
    double took = s_now() - start;
    print_message("parsed a table of %d keys (%zu bytes) in %.3f s\n", N, b.len, took);
    assert_true(took < 5.0);
    assert_int_equal(stm_toml_table_count(t), N);
    assert_int_equal(stm_toml_integer(stm_toml_table_get(t, "key_0")), 0);
    assert_int_equal(stm_toml_integer(stm_toml_table_get(t, "key_99999")), 99999);
    assert_string_equal(stm_toml_table_key(t, 54321), "key_54321");
    assert_null(stm_toml_table_get(t, "key_100000"));
    stm_toml_destroy(&t);

    /* a duplicate at the very end is still found */
    stm_buf_puts(&b, "key_77 = 1\n");
    char prefix[64];
    snprintf(prefix, sizeof prefix, "doc.toml:%d:1: duplicate key 'key_77'", N + 1);
    s_refuse(stm_buf_str(&b), b.len, prefix);
    stm_buf_free(&b);

    /* and through the building API, with replacement in place */
    t = stm_toml_new_table();
    start = s_now();
    for (int i = 0; i < N; i++) {
        char key[32];
        snprintf(key, sizeof key, "k%d", i);
        stm_toml_table_set(t, key, stm_toml_new_integer(i));
    }
    stm_toml_table_set(t, "k500", stm_toml_new_string("x", 1));
    took = s_now() - start;
    assert_true(took < 5.0);
    assert_int_equal(stm_toml_table_count(t), N);
    assert_string_equal(stm_toml_table_key(t, 500), "k500");
    assert_int_equal(stm_toml_type_of(stm_toml_table_at(t, 500)), TOML_STRING);
    stm_toml_destroy(&t);
}

static toml_value *s_table_of(const char *key, toml_value *v)
{
    toml_value *t = stm_toml_new_table();
    stm_toml_table_set(t, key, v);
    return t;
}

static void test_emit_exact(void **state)
{
    (void)state;
    toml_value *root = stm_toml_new_table();
    stm_toml_table_set(root, "title", stm_toml_new_string("say \"hi\"\n\ttab\x01", 14));
    stm_toml_table_set(root, "n", stm_toml_new_integer(-42));
    stm_toml_table_set(root, "pi", stm_toml_new_float(3.14));
    stm_toml_table_set(root, "one", stm_toml_new_float(1.0));
    stm_toml_table_set(root, "big", stm_toml_new_float(1e300));
    stm_toml_table_set(root, "third", stm_toml_new_float(1.0 / 3.0));
    stm_toml_table_set(root, "nan", stm_toml_new_float(NAN));
    stm_toml_table_set(root, "ninf", stm_toml_new_float(-INFINITY));
    stm_toml_table_set(root, "key with space", stm_toml_new_bool(true));
    stm_toml_table_set(root, "", stm_toml_new_bool(false));
    toml_datetime dt = {1979, 5, 27, 7, 32, 0, 500000000, -8 * 60};
    stm_toml_table_set(root, "when", stm_toml_new_datetime(TOML_DATETIME, &dt));
    dt.offset_minutes = 0;
    dt.nanosecond = 0;
    stm_toml_table_set(root, "utc", stm_toml_new_datetime(TOML_DATETIME, &dt));
    stm_toml_table_set(root, "day", stm_toml_new_datetime(TOML_DATE_LOCAL, &dt));
    dt.nanosecond = 120000;
    stm_toml_table_set(root, "at", stm_toml_new_datetime(TOML_TIME_LOCAL, &dt));
    stm_toml_table_set(root, "local", stm_toml_new_datetime(TOML_DATETIME_LOCAL, &dt));

    /* sub-table first, so that order of kinds beats insertion order */
    toml_value *owner = stm_toml_new_table();
    stm_toml_table_set(owner, "name", stm_toml_new_string("Tom", 3));
    stm_toml_table_set(owner, "deep", s_table_of("x", s_table_of("k", stm_toml_new_integer(1))));
    stm_toml_table_set(root, "owner", owner);

    toml_value *ints = stm_toml_new_array();
    for (int i = 1; i <= 3; i++)
        stm_toml_array_push(ints, stm_toml_new_integer(i));
    stm_toml_table_set(root, "ints", ints);
    toml_value *nested = stm_toml_new_array();
    stm_toml_array_push(nested, stm_toml_new_array());
    stm_toml_array_push(nested, s_table_of("a", stm_toml_new_integer(1)));
    stm_toml_table_set(root, "mixed", nested);

    toml_value *point = stm_toml_new_table();
    stm_toml_table_set(point, "x", stm_toml_new_integer(1));
    stm_toml_table_set(point, "y", s_table_of("z", stm_toml_new_integer(2)));
    stm_toml_set_inline(point, true);
    stm_toml_table_set(root, "point", point);
    toml_value *none = stm_toml_new_table();
    stm_toml_set_inline(none, true);
    stm_toml_table_set(root, "none", none);

    stm_toml_table_set(root, "empty", stm_toml_new_table());

    toml_value *products = stm_toml_new_array();
    stm_toml_array_push(products, s_table_of("name", stm_toml_new_string("a", 1)));
    toml_value *p2 = s_table_of("name", stm_toml_new_string("b", 1));
    stm_toml_table_set(p2, "dims", s_table_of("w", stm_toml_new_integer(3)));
    stm_toml_array_push(products, p2);
    stm_toml_table_set(root, "products", products);

    toml_value *points = stm_toml_new_array();
    stm_toml_array_push(points, s_table_of("x", stm_toml_new_integer(1)));
    stm_toml_array_push(points, stm_toml_new_table());
    stm_toml_set_inline(points, true);
    stm_toml_table_set(root, "points", points);
    stm_toml_table_set(root, "a.b", stm_toml_new_string("dotted", 6));

    char *out = stm_toml_emit(root, "Generated by a test.\n\nDo not edit.\n");
    const char *want = "# Generated by a test.\n"
                       "#\n"
                       "# Do not edit.\n"
                       "\n"
                       "title = \"say \\\"hi\\\"\\n\\ttab\\u0001\"\n"
                       "n = -42\n"
                       "pi = 3.14\n"
                       "one = 1.0\n"
                       "big = 1e+300\n"
                       "third = 0.3333333333333333\n"
                       "nan = nan\n"
                       "ninf = -inf\n"
                       "\"key with space\" = true\n"
                       "\"\" = false\n"
                       "when = 1979-05-27T07:32:00.5-08:00\n"
                       "utc = 1979-05-27T07:32:00Z\n"
                       "day = 1979-05-27\n"
                       "at = 07:32:00.00012\n"
                       "local = 1979-05-27T07:32:00.00012\n"
                       "ints = [1, 2, 3]\n"
                       "mixed = [[], { a = 1 }]\n"
                       "point = { x = 1, y = { z = 2 } }\n"
                       "none = {}\n"
                       "points = [\n"
                       "  { x = 1 },\n"
                       "  {},\n"
                       "]\n"
                       "\"a.b\" = \"dotted\"\n"
                       "\n"
                       "[owner]\n"
                       "name = \"Tom\"\n"
                       "\n"
                       "[owner.deep.x]\n"
                       "k = 1\n"
                       "\n"
                       "[empty]\n"
                       "\n"
                       "[[products]]\n"
                       "name = \"a\"\n"
                       "\n"
                       "[[products]]\n"
                       "name = \"b\"\n"
                       "\n"
                       "[products.dims]\n"
                       "w = 3\n";
    assert_string_equal(out, want);

    /* it parses back to the same tree, and emits the same bytes again */
    toml_value *again = s_parse(out);
    assert_true(stm_toml_equal(root, again));
    char *out2 = stm_toml_emit(again, "Generated by a test.\n\nDo not edit.\n");
    assert_string_equal(out, out2);
    free(out2);
    free(out);
    stm_toml_destroy(&again);

    /* no header, empty tree */
    toml_value *empty = stm_toml_new_table();
    out = stm_toml_emit(empty, NULL);
    assert_string_equal(out, "");
    free(out);
    out = stm_toml_emit(empty, "only a comment");
    assert_string_equal(out, "# only a comment\n");
    free(out);
    stm_toml_destroy(&empty);
    stm_toml_destroy(&root);
}

/* A deterministic generator for the random round trips. */
static uint64_t s_rand(uint64_t *state)
{
    *state = *state * 6364136223846793005u + 1442695040888963407u;
    return *state >> 11;
}

static void test_round_trip(void **state)
{
    (void)state;
    /* a parsed document with everything in it */
    toml_value *t = s_parse("# comment\n"
                            "str = 'lit\\eral'\n"
                            "ctl = \"\\u0000\\u001f\\u007f\\t\"\n"
                            "\"quoted key\" = 1\n"
                            "\"\" = 2\n"
                            "a.b.c = 1e-7\n"
                            "inline = { x = [1, { y = 2 }], z.w = 3 }\n"
                            "aoi = [{ a = 1 }, { b = [ { c = 1 } ] }]\n"
                            "mixed = [1, 'a', 2.5, true, 1979-05-27, [], {}]\n"
                            "[t]\n"
                            "[t.u]\n"
                            "v = 1979-05-27T07:32:00.123456789+05:45\n"
                            "[[t.aot]]\n"
                            "[[t.aot]]\n"
                            "x = 1\n"
                            "[[t.aot.inner]]\n"
                            "y = 2\n"
                            "[t.aot.table]\n"
                            "z = 3\n");
    char *out = stm_toml_emit(t, NULL);
    toml_value *again = s_parse(out);
    assert_true(stm_toml_equal(t, again));
    /* parsed inline tables and arrays stay inline */
    assert_non_null(strstr(out, "inline = { x = [1, { y = 2 }], z = { w = 3 } }\n"));
    assert_non_null(strstr(out, "aoi = [\n  { a = 1 },\n  { b = [{ c = 1 }] },\n]\n"));
    free(out);
    stm_toml_destroy(&again);
    stm_toml_destroy(&t);

    /* floats: random bit patterns come back exactly */
    uint64_t seed = 42;
    t = stm_toml_new_table();
    toml_value *floats = stm_toml_new_array();
    for (int i = 0; i < 20000; i++) {
        uint64_t bits = s_rand(&seed) << 11 | (s_rand(&seed) & 0x7FF);
        double d;
        memcpy(&d, &bits, sizeof d);
        stm_toml_array_push(floats, stm_toml_new_float(d));
    }
    stm_toml_table_set(t, "floats", floats);
    toml_value *ints = stm_toml_new_array();
    stm_toml_array_push(ints, stm_toml_new_integer(INT64_MIN));
    stm_toml_array_push(ints, stm_toml_new_integer(INT64_MAX));
    stm_toml_array_push(ints, stm_toml_new_integer(0));
    stm_toml_table_set(t, "ints", ints);
    /* strings with every byte value that is valid UTF-8, and keys that need quotes */
    char all[128];
    for (int i = 0; i < 128; i++)
        all[i] = (char)i;
    stm_toml_table_set(t, "all ascii", stm_toml_new_string(all, sizeof all));
    stm_toml_table_set(t, "\xc3\xbc.\"\\", stm_toml_new_string("\xe2\x82\xac\xf0\x9f\x98\x80", 7));
    out = stm_toml_emit(t, NULL);
    again = s_parse(out);
    assert_true(stm_toml_equal(t, again));
    free(out);
    stm_toml_destroy(&again);
    stm_toml_destroy(&t);

    /* invalid UTF-8 in a built string is written as U+FFFD so the output stays TOML */
    t = s_table_of("bad", stm_toml_new_string("a\xff"
                                              "b",
                                              3));
    out = stm_toml_emit(t, "header with a\x01 control\r\nand a second line");
    assert_string_equal(out, "# header with a  control\n# and a second line\n\n"
                             "bad = \"a\\uFFFDb\"\n");
    again = s_parse(out);
    assert_string_equal(stm_toml_string(stm_toml_table_get(again, "bad"), NULL), "a\xef\xbf\xbd"
                                                                                 "b");
    free(out);
    stm_toml_destroy(&again);
    stm_toml_destroy(&t);
}

/* Floats read exactly as strtod reads them (the parser has a fast path of its own). */
static void test_float_reading(void **state)
{
    (void)state;
    uint64_t seed = 7;
    for (int it = 0; it < 200000; it++) {
        char num[96], plain[96];
        int k = 0, q = 0;
        if (s_rand(&seed) % 3 == 0)
            num[k++] = s_rand(&seed) % 2 ? '-' : '+';
        int idig = 1 + (int)(s_rand(&seed) % 12), fdig = (int)(s_rand(&seed) % 12);
        if (s_rand(&seed) % 4 == 0) {
            num[k++] = '0';
            idig = 0;
        }
        for (int i = 0; i < idig; i++) {
            num[k++] = (char)('0' + (i == 0 ? 1 + s_rand(&seed) % 9 : s_rand(&seed) % 10));
            if (i + 1 < idig && s_rand(&seed) % 10 == 0)
                num[k++] = '_';
        }
        if (fdig) {
            num[k++] = '.';
            for (int i = 0; i < fdig; i++)
                num[k++] = (char)('0' + s_rand(&seed) % 10);
        }
        if (!fdig || s_rand(&seed) % 2)
            k +=
                sprintf(num + k, "e%s%d", s_rand(&seed) % 2 ? "-" : "", (int)(s_rand(&seed) % 340));
        num[k] = '\0';
        for (int i = 0; i < k; i++)
            if (num[i] != '_')
                plain[q++] = num[i];
        plain[q] = '\0';
        char doc[128];
        snprintf(doc, sizeof doc, "x = %s\n", num);
        double want = strtod(plain, NULL);
        toml_value *t = NULL;
        stm_error err = {0};
        stm_err rc = stm_toml_parse(doc, strlen(doc), "f.toml", &t, &err);
        if (isinf(want)) {
            assert_int_equal(rc, STM_EINPUT); /* out of range */
            continue;
        }
        if (rc != STM_OK)
            fail_msg("%s: %s", num, err.msg);
        double got = stm_toml_float(stm_toml_table_get(t, "x"));
        if (memcmp(&got, &want, sizeof got) != 0)
            fail_msg("%s read as %.17g, strtod says %.17g", num, got, want);
        stm_toml_destroy(&t);
    }
}

static void test_equal(void **state)
{
    (void)state;
    toml_value *a = s_parse("x = 1\ny = [1.0, nan]\nz = {p = 'q'}\n");
    toml_value *b = s_parse("z.p = 'q'\ny = [1e0, -nan]\nx = 1\n");
    toml_value *c = s_parse("x = 1\ny = [1.0, nan]\nz = {p = 'r'}\n");
    toml_value *d = s_parse("x = 1.0\ny = [1.0, nan]\nz = {p = 'q'}\n");
    toml_value *e = s_parse("x = 1\ny = [1.0]\nz = {p = 'q'}\n");
    toml_value *f = s_parse("x = 1\ny = [1.0, nan]\nz = {p = 'q'}\nw = 0\n");
    assert_true(stm_toml_equal(a, b));
    assert_true(stm_toml_equal(a, a));
    assert_false(stm_toml_equal(a, c));
    assert_false(stm_toml_equal(a, d));
    assert_false(stm_toml_equal(a, e));
    assert_false(stm_toml_equal(a, f));
    assert_false(stm_toml_equal(f, a));
    assert_false(stm_toml_equal(a, NULL));
    toml_value *s1 = stm_toml_new_string("a\0b", 3), *s2 = stm_toml_new_string("a\0c", 3);
    assert_false(stm_toml_equal(s1, s2));
    toml_datetime dt = {2000, 1, 1, 0, 0, 0, 0, 60};
    toml_value *d1 = stm_toml_new_datetime(TOML_DATETIME, &dt);
    toml_value *d2 = stm_toml_new_datetime(TOML_DATETIME_LOCAL, &dt);
    assert_false(stm_toml_equal(d1, d2));
    stm_toml_destroy(&d1);
    stm_toml_destroy(&d2);
    stm_toml_destroy(&s1);
    stm_toml_destroy(&s2);
    stm_toml_destroy(&a);
    stm_toml_destroy(&b);
    stm_toml_destroy(&c);
    stm_toml_destroy(&d);
    stm_toml_destroy(&e);
    stm_toml_destroy(&f);
}

static void test_api(void **state)
{
    (void)state;
    toml_value *t = NULL;
    stm_toml_destroy(&t);
    stm_toml_destroy(NULL);

    /* built values have no position; replacing keeps the key's place */
    t = stm_toml_new_table();
    stm_toml_table_set(t, "a", stm_toml_new_integer(1));
    stm_toml_table_set(t, "b", stm_toml_new_integer(2));
    stm_toml_table_set(t, "a", stm_toml_new_string("one", 3));
    assert_int_equal(stm_toml_table_count(t), 2);
    assert_string_equal(stm_toml_table_key(t, 0), "a");
    assert_string_equal(stm_toml_string(stm_toml_table_at(t, 0), NULL), "one");
    assert_int_equal(stm_toml_line(stm_toml_table_at(t, 0)), 0);
    assert_int_equal(stm_toml_column(stm_toml_table_at(t, 0)), 0);
    stm_toml_destroy(&t);

    /* files */
    stm_error err = {0};
    assert_int_equal(stm_toml_parse_file("tests/data/no-such-file.toml", &t, &err), STM_EINPUT);
    assert_non_null(strstr(err.msg, "tests/data/no-such-file.toml"));
    assert_null(t);
    char path[] = "/tmp/test_toml_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fputs("a = 1\nb = [\n", f);
    fclose(f);
    assert_int_equal(stm_toml_parse_file(path, &t, &err), STM_EINPUT);
    char prefix[64];
    snprintf(prefix, sizeof prefix, "%s:3:1: ", path);
    assert_true(strncmp(err.msg, prefix, strlen(prefix)) == 0);
    f = fopen(path, "w");
    fputs("a = 1\n", f);
    fclose(f);
    assert_int_equal(stm_toml_parse_file(path, &t, &err), STM_OK);
    assert_int_equal(stm_toml_integer(stm_toml_table_get(t, "a")), 1);
    stm_toml_destroy(&t);
    remove(path);

    /* an empty document, and one with only a byte order mark */
    t = s_parse("");
    assert_int_equal(stm_toml_table_count(t), 0);
    stm_toml_destroy(&t);
    t = s_parse("\xef\xbb\xbf");
    assert_int_equal(stm_toml_table_count(t), 0);
    stm_toml_destroy(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scalars),       cmocka_unit_test(test_tables),
        cmocka_unit_test(test_strings),       cmocka_unit_test(test_error_positions),
        cmocka_unit_test(test_depth_limit),   cmocka_unit_test(test_big_table),
        cmocka_unit_test(test_value_limit),
        cmocka_unit_test(test_emit_exact),    cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_float_reading), cmocka_unit_test(test_equal),
        cmocka_unit_test(test_api),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
