#include "base/jsonw.h"

#include <assert.h>
#include <inttypes.h>
#include <string.h>

void stm_jsonw_init(jsonw_t *w, buf_t *out, bool pretty)
{
    w->out = out;
    w->pretty = pretty;
    w->depth = 0;
    w->has_items[0] = false;
    w->after_key = false;
}

static void s_newline(jsonw_t *w)
{
    if (!w->pretty)
        return;
    stm_buf_putc(w->out, '\n');
    for (int i = 0; i < w->depth; i++)
        stm_buf_puts(w->out, "  ");
}

/* Before any value or key: the comma and the line break. */
static void s_before_item(jsonw_t *w)
{
    if (w->after_key) {
        w->after_key = false;
        return;
    }
    if (w->depth > 0) {
        if (w->has_items[w->depth])
            stm_buf_putc(w->out, ',');
        s_newline(w);
    }
    w->has_items[w->depth] = true;
}

static void s_open(jsonw_t *w, char c)
{
    s_before_item(w);
    stm_buf_putc(w->out, c);
    assert(w->depth + 1 < JSONW_MAX_DEPTH);
    w->depth++;
    w->has_items[w->depth] = false;
}

static void s_close(jsonw_t *w, char c)
{
    assert(w->depth > 0);
    bool had = w->has_items[w->depth];
    w->depth--;
    if (had)
        s_newline(w);
    stm_buf_putc(w->out, c);
    if (w->depth == 0 && w->pretty)
        stm_buf_putc(w->out, '\n');
}

void stm_jsonw_object_begin(jsonw_t *w)
{
    s_open(w, '{');
}

void stm_jsonw_object_end(jsonw_t *w)
{
    s_close(w, '}');
}

void stm_jsonw_array_begin(jsonw_t *w)
{
    s_open(w, '[');
}

void stm_jsonw_array_end(jsonw_t *w)
{
    s_close(w, ']');
}

void stm_jsonw_escape(buf_t *b, const char *s)
{
    stm_jsonw_escape_len(b, s, strlen(s));
}

void stm_jsonw_escape_len(buf_t *b, const char *s, size_t len)
{
    stm_buf_putc(b, '"');
    const unsigned char *end = (const unsigned char *)s + len;
    for (const unsigned char *p = (const unsigned char *)s; p < end; p++) {
        switch (*p) {
        case '"':
            stm_buf_puts(b, "\\\"");
            break;
        case '\\':
            stm_buf_puts(b, "\\\\");
            break;
        case '\n':
            stm_buf_puts(b, "\\n");
            break;
        case '\r':
            stm_buf_puts(b, "\\r");
            break;
        case '\t':
            stm_buf_puts(b, "\\t");
            break;
        default:
            if (*p < 0x20 || *p == 0x7f) /* NUL too: \u0000 */
                stm_buf_printf(b, "\\u%04x", *p);
            else
                stm_buf_putc(b, (char)*p);
        }
    }
    stm_buf_putc(b, '"');
}

void stm_jsonw_key(jsonw_t *w, const char *key)
{
    s_before_item(w);
    stm_jsonw_escape(w->out, key);
    stm_buf_puts(w->out, w->pretty ? ": " : ":");
    w->after_key = true;
}

void stm_jsonw_string(jsonw_t *w, const char *s)
{
    if (!s) {
        stm_jsonw_null(w);
        return;
    }
    s_before_item(w);
    stm_jsonw_escape(w->out, s);
}

void stm_jsonw_string_len(jsonw_t *w, const char *s, size_t len)
{
    s_before_item(w);
    stm_jsonw_escape_len(w->out, s, len);
}

void stm_jsonw_double(jsonw_t *w, double v)
{
    s_before_item(w);
    /* JSON has no infinities or NaN: they are null. 17 digits give the value back. */
    if (v != v || v - v != 0)
        stm_buf_puts(w->out, "null");
    else
        stm_buf_printf(w->out, "%.17g", v);
}

void stm_jsonw_int(jsonw_t *w, int64_t v)
{
    s_before_item(w);
    stm_buf_printf(w->out, "%" PRId64, v);
}

void stm_jsonw_bool(jsonw_t *w, bool v)
{
    s_before_item(w);
    stm_buf_puts(w->out, v ? "true" : "false");
}

void stm_jsonw_null(jsonw_t *w)
{
    s_before_item(w);
    stm_buf_puts(w->out, "null");
}
