/* toml_emit.c - TOML 1.0: the deterministic emitter (stm_toml_emit). It writes a tree, parsed
 * or built, the way toml.h describes: in each table the key/value lines first, then the
 * sub-tables as [sections], then the arrays of tables as [[sections]], with floats in the
 * shortest form that reads back the same, strings escaped as basic strings and keys quoted
 * only where they must be, so that parsing the output gives a tree stm_toml_equal to the input. */
#include "toml/toml.h"
#include "toml/toml_internal.h"

#include "base/buf.h"

#include <assert.h>
#include <inttypes.h>
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ the emitter */

static bool s_is_bare_key(const char *k, size_t len)
{
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!toml_isbare(k[i]))
            return false;
    return true;
}

/* A basic string: escapes quote, backslash and control characters; invalid UTF-8 (which
 * only a built string can hold) becomes U+FFFD so the output stays TOML. */
static void s_emit_string(buf_t *b, const char *s, size_t len)
{
    const char *end = s + len, *seg = s;
    stm_buf_putc(b, '"');
    while (s < end) {
        unsigned char c = (unsigned char)*s;
        if (c >= 0x20 && c < 0x7F && c != '"' && c != '\\') {
            s++;
            continue;
        }
        int n = c >= 0x80 ? stm_toml_utf8(s, end, NULL) : 0;
        if (n) {
            s += n;
            continue;
        }
        stm_buf_append(b, seg, (size_t)(s - seg));
        switch (c) {
        case '"':
            stm_buf_puts(b, "\\\"");
            break;
        case '\\':
            stm_buf_puts(b, "\\\\");
            break;
        case '\b':
            stm_buf_puts(b, "\\b");
            break;
        case '\t':
            stm_buf_puts(b, "\\t");
            break;
        case '\n':
            stm_buf_puts(b, "\\n");
            break;
        case '\f':
            stm_buf_puts(b, "\\f");
            break;
        case '\r':
            stm_buf_puts(b, "\\r");
            break;
        default:
            stm_buf_printf(b, "\\u%04X", c >= 0x80 ? 0xFFFD : c);
        }
        seg = ++s;
    }
    stm_buf_append(b, seg, (size_t)(s - seg));
    stm_buf_putc(b, '"');
}

static void s_emit_key(buf_t *b, const char *k, size_t len)
{
    if (s_is_bare_key(k, len))
        stm_buf_append(b, k, len);
    else
        s_emit_string(b, k, len);
}

/* The shortest of %.15g, %.16g, %.17g that reads back as d, always looking like a float. */
static void s_emit_float(buf_t *b, double d)
{
    if (isnan(d)) {
        stm_buf_puts(b, "nan");
        return;
    }
    if (isinf(d)) {
        stm_buf_puts(b, d < 0 ? "-inf" : "inf");
        return;
    }
    char tmp[40];
    const char *dp = localeconv()->decimal_point;
    char point = dp && dp[0] && !dp[1] ? dp[0] : '.';
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*g", prec, d);
        if (strtod(tmp, NULL) == d)
            break;
    }
    bool looks_float = false;
    for (char *c = tmp; *c; c++) {
        if (*c == point)
            *c = '.';
        if (*c == '.' || *c == 'e')
            looks_float = true;
    }
    stm_buf_puts(b, tmp);
    if (!looks_float)
        stm_buf_puts(b, ".0");
}

static void s_emit_datetime(buf_t *b, toml_type type, const toml_datetime *dt)
{
    if (type != TOML_TIME_LOCAL)
        stm_buf_printf(b, "%04d-%02d-%02d", dt->year, dt->month, dt->day);
    if (type == TOML_DATE_LOCAL)
        return;
    if (type != TOML_TIME_LOCAL)
        stm_buf_putc(b, 'T');
    stm_buf_printf(b, "%02d:%02d:%02d", dt->hour, dt->minute, dt->second);
    if (dt->nanosecond) {
        char frac[16];
        snprintf(frac, sizeof frac, "%09d", dt->nanosecond);
        size_t n = strlen(frac);
        while (n > 1 && frac[n - 1] == '0')
            n--;
        stm_buf_putc(b, '.');
        stm_buf_append(b, frac, n);
    }
    if (type == TOML_DATETIME) {
        int off = dt->offset_minutes;
        if (off == 0)
            stm_buf_putc(b, 'Z');
        else
            stm_buf_printf(b, "%c%02d:%02d", off < 0 ? '-' : '+', abs(off) / 60, abs(off) % 60);
    }
}

/* A non-empty array of nothing but tables. */
static bool s_is_table_array(const toml_value *v)
{
    if (v->type != TOML_ARRAY || v->u.arr.count == 0)
        return false;
    for (size_t i = 0; i < v->u.arr.count; i++)
        if (v->u.arr.items[i]->type != TOML_TABLE)
            return false;
    return true;
}

/* Written as a [header] section. */
static bool s_is_section(const toml_value *v)
{
    return v->type == TOML_TABLE && !(v->flags & S_INLINE);
}

/* Written as [[header]] sections. */
static bool s_is_aot(const toml_value *v)
{
    return !(v->flags & S_INLINE) && s_is_table_array(v);
}

/* Any value, on one line. */
static void s_emit_inline(buf_t *b, const toml_value *v)
{
    switch (v->type) {
    case TOML_TABLE:
        if (v->u.tab.count == 0) {
            stm_buf_puts(b, "{}");
            return;
        }
        stm_buf_puts(b, "{ ");
        for (size_t i = 0; i < v->u.tab.count; i++) {
            const s_entry *e = &v->u.tab.items[i];
            if (i)
                stm_buf_puts(b, ", ");
            s_emit_key(b, e->key, e->keylen);
            stm_buf_puts(b, " = ");
            s_emit_inline(b, e->val);
        }
        stm_buf_puts(b, " }");
        return;
    case TOML_ARRAY:
        stm_buf_putc(b, '[');
        for (size_t i = 0; i < v->u.arr.count; i++) {
            if (i)
                stm_buf_puts(b, ", ");
            s_emit_inline(b, v->u.arr.items[i]);
        }
        stm_buf_putc(b, ']');
        return;
    case TOML_STRING:
        s_emit_string(b, v->u.str.s, v->u.str.len);
        return;
    case TOML_INTEGER:
        stm_buf_printf(b, "%" PRId64, v->u.i);
        return;
    case TOML_FLOAT:
        s_emit_float(b, v->u.f);
        return;
    case TOML_BOOL:
        stm_buf_puts(b, v->u.b ? "true" : "false");
        return;
    default:
        s_emit_datetime(b, v->type, &v->u.dt);
    }
}

/* Before a header: a blank line, unless at the top or after one already. */
static void s_emit_blank(buf_t *b)
{
    if (b->len > 0 && !(b->len >= 2 && b->data[b->len - 1] == '\n' && b->data[b->len - 2] == '\n'))
        stm_buf_putc(b, '\n');
}

static void s_path_push(buf_t *path, const s_entry *e)
{
    if (path->len)
        stm_buf_putc(path, '.');
    s_emit_key(path, e->key, e->keylen);
}

/* The body of table t, whose header (if any) is written: its key/value lines, then its
 * sub-tables, then its arrays of tables. path is t's dotted name. */
static void s_emit_body(buf_t *b, const toml_value *t, buf_t *path)
{
    for (size_t i = 0; i < t->u.tab.count; i++) {
        const s_entry *e = &t->u.tab.items[i];
        const toml_value *v = e->val;
        if (s_is_section(v) || s_is_aot(v))
            continue;
        s_emit_key(b, e->key, e->keylen);
        stm_buf_puts(b, " = ");
        if (v->type == TOML_ARRAY && s_is_table_array(v)) {
            stm_buf_puts(b, "[\n");
            for (size_t j = 0; j < v->u.arr.count; j++) {
                stm_buf_puts(b, "  ");
                s_emit_inline(b, v->u.arr.items[j]);
                stm_buf_puts(b, ",\n");
            }
            stm_buf_putc(b, ']');
        } else {
            s_emit_inline(b, v);
        }
        stm_buf_putc(b, '\n');
    }
    for (size_t i = 0; i < t->u.tab.count; i++) {
        const s_entry *e = &t->u.tab.items[i];
        const toml_value *v = e->val;
        if (!s_is_section(v))
            continue;
        size_t mark = path->len;
        s_path_push(path, e);
        bool has_kv = v->u.tab.count == 0;
        for (size_t j = 0; j < v->u.tab.count && !has_kv; j++)
            has_kv = !s_is_section(v->u.tab.items[j].val) && !s_is_aot(v->u.tab.items[j].val);
        if (has_kv) {
            s_emit_blank(b);
            stm_buf_printf(b, "[%s]\n", stm_buf_str(path));
        }
        s_emit_body(b, v, path);
        path->len = mark;
        path->data[mark] = '\0';
    }
    for (size_t i = 0; i < t->u.tab.count; i++) {
        const s_entry *e = &t->u.tab.items[i];
        const toml_value *v = e->val;
        if (!s_is_aot(v))
            continue;
        size_t mark = path->len;
        s_path_push(path, e);
        for (size_t j = 0; j < v->u.arr.count; j++) {
            s_emit_blank(b);
            stm_buf_printf(b, "[[%s]]\n", stm_buf_str(path));
            s_emit_body(b, v->u.arr.items[j], path);
        }
        path->len = mark;
        path->data[mark] = '\0';
    }
}

/* Each line of header as a comment; control characters and invalid UTF-8 become spaces
 * so that the result stays TOML. */
static void s_emit_comment(buf_t *b, const char *header)
{
    const char *s = header, *end = header + strlen(header);
    while (s < end) {
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        const char *le = nl ? nl : end;
        if (le > s && le[-1] == '\r')
            le--;
        stm_buf_putc(b, '#');
        if (le > s)
            stm_buf_putc(b, ' ');
        while (s < le) {
            int n = (unsigned char)*s >= 0x80 ? stm_toml_utf8(s, le, NULL) : 1;
            if (n > 1) {
                stm_buf_append(b, s, (size_t)n);
                s += n;
            } else {
                stm_buf_putc(b, toml_isplain((unsigned char)*s) ? *s : ' ');
                s++;
            }
        }
        stm_buf_putc(b, '\n');
        s = nl ? nl + 1 : end;
    }
}

char *stm_toml_emit(const toml_value *root, const char *header)
{
    assert(root && root->type == TOML_TABLE);
    buf_t b = BUF_INIT, path = BUF_INIT;
    if (header && *header) {
        s_emit_comment(&b, header);
        if (root->u.tab.count)
            stm_buf_putc(&b, '\n');
    }
    s_emit_body(&b, root, &path);
    stm_buf_free(&path);
    return stm_buf_detach(&b);
}
