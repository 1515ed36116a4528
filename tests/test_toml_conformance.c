/* Conformance of toml/ against the toml-test 1.0.0 selection in
 * ../shared/toml-test (see its README.md): every valid document must parse to what its
 * .json says, every invalid one must be refused with a "name:line:col:" message, and
 * every valid document must survive emit -> parse unchanged (and emitting again must
 * give the same bytes). No file is skipped. */
#include "json_min.h"
#include "base/buf.h"
#include "base/mem.h"
#include "toml/toml.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The suite the project was given lives in ../shared/toml-test; a copy (MIT, with its
 * LICENSE) is kept in tests/data/toml-test for checkouts where ../shared is not there. */
static const char *SUITE = "../shared/toml-test";

static void s_choose_suite(void)
{
    FILE *f = fopen("../shared/toml-test/files-toml-1.0.0", "rb");
    if (f)
        fclose(f);
    else
        SUITE = "tests/data/toml-test";
    printf("toml-test suite: %s\n", SUITE);
}

static char *s_read(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    buf_t b = BUF_INIT;
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        stm_buf_append(&b, chunk, n);
    fclose(f);
    *len = b.len;
    return stm_buf_detach(&b);
}

/* The listed files, one per line. */
static char **s_list(size_t *count)
{
    size_t len;
    char list[256];
    snprintf(list, sizeof list, "%s/files-toml-1.0.0", SUITE);
    char *text = s_read(list, &len);
    if (!text)
        fail_msg("cannot read %s/files-toml-1.0.0: %s", SUITE, strerror(errno));
    char **files = NULL;
    size_t n = 0, cap = 0;
    for (char *line = strtok(text, "\r\n"); line; line = strtok(NULL, "\r\n")) {
        if (!*line)
            continue;
        files = stm_grow(files, &cap, n + 1, sizeof *files);
        files[n++] = stm_strdup(line);
    }
    free(text);
    *count = n;
    return files;
}

static void s_free_list(char **files, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(files[i]);
    free(files);
}

static bool s_ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* A date/time as toml-test writes it, read independently of the parser under test. */
static bool s_parse_datetime(const char *s, toml_type type, toml_datetime *dt)
{
    memset(dt, 0, sizeof *dt);
    int n = 0;
    if (type != TOML_TIME_LOCAL) {
        if (sscanf(s, "%4d-%2d-%2d%n", &dt->year, &dt->month, &dt->day, &n) != 3)
            return false;
        s += n;
        if (type == TOML_DATE_LOCAL)
            return *s == '\0';
        if (*s != 'T' && *s != 't' && *s != ' ')
            return false;
        s++;
    }
    n = 0;
    if (sscanf(s, "%2d:%2d:%2d%n", &dt->hour, &dt->minute, &dt->second, &n) != 3)
        return false;
    s += n;
    if (*s == '.') {
        int digits = 0;
        for (s++; isdigit((unsigned char)*s); s++)
            if (digits < 9) {
                dt->nanosecond = dt->nanosecond * 10 + (*s - '0');
                digits++;
            }
        for (; digits < 9; digits++)
            dt->nanosecond *= 10;
    }
    if (type == TOML_DATETIME) {
        if (*s == 'Z' || *s == 'z') {
            s++;
        } else if (*s == '+' || *s == '-') {
            int sign = *s == '-' ? -1 : 1, h, m;
            n = 0;
            if (sscanf(s + 1, "%2d:%2d%n", &h, &m, &n) != 2)
                return false;
            dt->offset_minutes = sign * (h * 60 + m);
            s += 1 + n;
        } else {
            return false;
        }
    }
    return *s == '\0';
}

static bool s_is_scalar(const json_value *j)
{
    const json_value *t = json_get(j, "type"), *v = json_get(j, "value");
    return j->type == JSON_OBJECT && j->count == 2 && t && v && t->type == JSON_STRING &&
           v->type == JSON_STRING;
}

static void s_why(buf_t *why, const buf_t *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void s_why(buf_t *why, const buf_t *path, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    stm_buf_printf(why, "at '%s': ", stm_buf_str(path));
    stm_buf_vprintf(why, fmt, ap);
    va_end(ap);
}

static bool s_match(const toml_value *t, const json_value *j, buf_t *path, buf_t *why);

static bool s_match_scalar(const toml_value *t, const json_value *j, buf_t *path, buf_t *why)
{
    const char *type = json_get(j, "type")->str;
    const json_value *value = json_get(j, "value");
    const char *want = value->str;
    toml_type tt = stm_toml_type_of(t);
    if (strcmp(stm_toml_type_name(tt), type) != 0) {
        s_why(why, path, "parsed as %s, expected %s", stm_toml_type_name(tt), type);
        return false;
    }
    switch (tt) {
    case TOML_STRING: {
        size_t len;
        const char *s = stm_toml_string(t, &len);
        if (len == value->len && memcmp(s, want, len) == 0)
            return true;
        s_why(why, path, "string \"%s\" (%zu bytes), expected \"%s\" (%zu bytes)", s, len, want,
              value->len);
        return false;
    }
    case TOML_INTEGER: {
        errno = 0;
        char *end;
        long long i = strtoll(want, &end, 10);
        if (errno || *end) {
            s_why(why, path, "bad expected integer %s", want);
            return false;
        }
        if (stm_toml_integer(t) == i)
            return true;
        s_why(why, path, "integer %lld, expected %s", (long long)stm_toml_integer(t), want);
        return false;
    }
    case TOML_FLOAT: {
        char *end;
        double d = strtod(want, &end), got = stm_toml_float(t);
        if (*end) {
            s_why(why, path, "bad expected float %s", want);
            return false;
        }
        if ((isnan(d) && isnan(got)) || d == got)
            return true;
        s_why(why, path, "float %.17g, expected %s", got, want);
        return false;
    }
    case TOML_BOOL:
        if (stm_toml_bool(t) == (strcmp(want, "true") == 0))
            return true;
        s_why(why, path, "bool %d, expected %s", stm_toml_bool(t), want);
        return false;
    case TOML_DATETIME:
    case TOML_DATETIME_LOCAL:
    case TOML_DATE_LOCAL:
    case TOML_TIME_LOCAL: {
        toml_datetime dt;
        const toml_datetime *got = stm_toml_datetime_of(t);
        if (!s_parse_datetime(want, tt, &dt)) {
            s_why(why, path, "bad expected %s %s", type, want);
            return false;
        }
        if (dt.year == got->year && dt.month == got->month && dt.day == got->day &&
            dt.hour == got->hour && dt.minute == got->minute && dt.second == got->second &&
            dt.nanosecond == got->nanosecond && dt.offset_minutes == got->offset_minutes)
            return true;
        s_why(why, path, "%04d-%02d-%02d %02d:%02d:%02d.%09d %+d, expected %s", got->year,
              got->month, got->day, got->hour, got->minute, got->second, got->nanosecond,
              got->offset_minutes, want);
        return false;
    }
    default:
        s_why(why, path, "a %s, expected a scalar", stm_toml_type_name(tt));
        return false;
    }
}

static bool s_match(const toml_value *t, const json_value *j, buf_t *path, buf_t *why)
{
    if (s_is_scalar(j))
        return s_match_scalar(t, j, path, why);
    size_t mark = path->len;
    if (j->type == JSON_OBJECT) {
        if (stm_toml_type_of(t) != TOML_TABLE) {
            s_why(why, path, "a %s, expected a table", stm_toml_type_name(stm_toml_type_of(t)));
            return false;
        }
        if (stm_toml_table_count(t) != j->count) {
            s_why(why, path, "table of %zu keys, expected %zu", stm_toml_table_count(t), j->count);
            return false;
        }
        for (size_t i = 0; i < j->count; i++) {
            const toml_value *v = NULL;
            for (size_t k = 0; k < stm_toml_table_count(t) && !v; k++)
                if (stm_toml_table_key_len(t, k) == j->keylens[i] &&
                    memcmp(stm_toml_table_key(t, k), j->keys[i], j->keylens[i]) == 0)
                    v = stm_toml_table_at(t, k);
            stm_buf_printf(path, ".%s", j->keys[i]);
            if (!v) {
                s_why(why, path, "key missing");
                return false;
            }
            if (!s_match(v, j->items[i], path, why))
                return false;
            path->len = mark;
            path->data[mark] = '\0';
        }
        return true;
    }
    if (j->type == JSON_ARRAY) {
        if (stm_toml_type_of(t) != TOML_ARRAY) {
            s_why(why, path, "a %s, expected an array", stm_toml_type_name(stm_toml_type_of(t)));
            return false;
        }
        if (stm_toml_array_count(t) != j->count) {
            s_why(why, path, "array of %zu, expected %zu", stm_toml_array_count(t), j->count);
            return false;
        }
        for (size_t i = 0; i < j->count; i++) {
            stm_buf_printf(path, "[%zu]", i);
            if (!s_match(stm_toml_array_at(t, i), j->items[i], path, why))
                return false;
            path->len = mark;
            path->data[mark] = '\0';
        }
        return true;
    }
    s_why(why, path, "unexpected JSON value");
    return false;
}

/* "name:L:C: something" */
static bool s_has_position(const char *msg, const char *name)
{
    size_t n = strlen(name);
    if (strncmp(msg, name, n) != 0 || msg[n] != ':')
        return false;
    const char *s = msg + n + 1;
    for (int field = 0; field < 2; field++) {
        if (!isdigit((unsigned char)*s) || *s == '0')
            return false;
        while (isdigit((unsigned char)*s))
            s++;
        if (*s++ != ':')
            return false;
    }
    return *s == ' ' && s[1] != '\0';
}

static void s_report(buf_t *failures, size_t *nfail, const char *file, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void s_report(buf_t *failures, size_t *nfail, const char *file, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    stm_buf_printf(failures, "  FAIL %s: ", file);
    stm_buf_vprintf(failures, fmt, ap);
    stm_buf_putc(failures, '\n');
    va_end(ap);
    (*nfail)++;
}

/* Runs check on every listed file whose name starts with prefix and ends in .toml. */
static void s_walk(const char *prefix, const char *what,
                   void (*check)(const char *path, buf_t *failures, size_t *nfail))
{
    size_t n, total = 0, nfail = 0;
    char **files = s_list(&n);
    buf_t failures = BUF_INIT;
    for (size_t i = 0; i < n; i++) {
        if (strncmp(files[i], prefix, strlen(prefix)) != 0 || !s_ends_with(files[i], ".toml"))
            continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", SUITE, files[i]);
        total++;
        check(path, &failures, &nfail);
    }
    printf("toml-test 1.0.0 %s: %zu of %zu passed\n", what, total - nfail, total);
    if (nfail)
        printf("%s", stm_buf_str(&failures));
    stm_buf_free(&failures);
    s_free_list(files, n);
    assert_true(total > 0);
    assert_int_equal(nfail, 0);
}

static void s_check_valid(const char *path, buf_t *failures, size_t *nfail)
{
    char json_path[1024];
    snprintf(json_path, sizeof json_path, "%.*s.json", (int)(strlen(path) - 5), path);
    size_t len;
    char *text = s_read(json_path, &len);
    if (!text) {
        s_report(failures, nfail, path, "cannot read %s", json_path);
        return;
    }
    char jerr[256];
    json_value *j = json_parse(text, len, jerr, sizeof jerr);
    free(text);
    if (!j) {
        s_report(failures, nfail, path, "bad JSON %s: %s", json_path, jerr);
        return;
    }
    toml_value *root = NULL;
    stm_error err = {0};
    if (stm_toml_parse_file(path, &root, &err) != STM_OK) {
        s_report(failures, nfail, path, "refused: %s", err.msg);
    } else {
        buf_t where = BUF_INIT, why = BUF_INIT;
        if (!s_match(root, j, &where, &why))
            s_report(failures, nfail, path, "%s", stm_buf_str(&why));
        stm_buf_free(&where);
        stm_buf_free(&why);
    }
    stm_toml_destroy(&root);
    json_free(j);
}

static void s_check_invalid(const char *path, buf_t *failures, size_t *nfail)
{
    toml_value *root = NULL;
    stm_error err = {0};
    stm_err rc = stm_toml_parse_file(path, &root, &err);
    if (rc != STM_EINPUT)
        s_report(failures, nfail, path, "accepted (rc %d)", rc);
    else if (root)
        s_report(failures, nfail, path, "refused, but *root was set");
    else if (!s_has_position(err.msg, path))
        s_report(failures, nfail, path, "message lacks \"name:line:col: \": %s", err.msg);
    stm_toml_destroy(&root);
}

static void s_check_round_trip(const char *path, buf_t *failures, size_t *nfail)
{
    toml_value *root = NULL, *again = NULL, *third = NULL;
    stm_error err = {0};
    if (stm_toml_parse_file(path, &root, &err) != STM_OK) {
        s_report(failures, nfail, path, "refused: %s", err.msg);
        return;
    }
    char *out = stm_toml_emit(root, "emitted by test_toml_conformance");
    char *out2 = NULL;
    if (stm_toml_parse(out, strlen(out), "emitted", &again, &err) != STM_OK) {
        s_report(failures, nfail, path, "emitted text refused: %s\n%s", err.msg, out);
    } else if (!stm_toml_equal(root, again)) {
        s_report(failures, nfail, path, "emit -> parse differs:\n%s", out);
    } else {
        out2 = stm_toml_emit(again, "emitted by test_toml_conformance");
        if (strcmp(out, out2) != 0)
            s_report(failures, nfail, path, "emitting again differs:\n%s\n---\n%s", out, out2);
        else if (stm_toml_parse(out2, strlen(out2), "emitted", &third, &err) != STM_OK ||
                 !stm_toml_equal(root, third))
            s_report(failures, nfail, path, "second round trip differs");
    }
    free(out);
    free(out2);
    stm_toml_destroy(&root);
    stm_toml_destroy(&again);
    stm_toml_destroy(&third);
}

static void test_valid(void **state)
{
    (void)state;
    s_walk("valid/", "valid documents", s_check_valid);
}

static void test_invalid(void **state)
{
    (void)state;
    s_walk("invalid/", "invalid documents refused", s_check_invalid);
}

static void test_round_trip(void **state)
{
    (void)state;
    s_walk("valid/", "emit/parse round trips", s_check_round_trip);
}

int main(void)
{
    s_choose_suite();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_invalid),
        cmocka_unit_test(test_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
