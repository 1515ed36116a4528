/* json_min.c - see json_min.h. Recursive descent, nesting capped at JSON_MAX_DEPTH. */
#include "json_min.h"

#include "base/buf.h"
#include "base/mem.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JSON_MAX_DEPTH 512

typedef struct {
    const char *cur;  /* the cursor */
    const char *end;  /* one past the last byte */
    const char *text; /* for offsets in messages */
    char *err;        /* message buffer */
    size_t errlen;    /* its size */
    bool failed;      /* a message has been written */
} s_reader;

static void s_fail(s_reader *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void s_fail(s_reader *r, const char *fmt, ...)
{
    if (r->failed)
        return;
    r->failed = true;
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (r->err && r->errlen)
        snprintf(r->err, r->errlen, "offset %ld: %s", (long)(r->cur - r->text), msg);
}

static void s_ws(s_reader *r)
{
    while (r->cur < r->end &&
           (*r->cur == ' ' || *r->cur == '\t' || *r->cur == '\n' || *r->cur == '\r'))
        r->cur++;
}

static json_value *s_new(json_type type)
{
    json_value *v = stm_calloc(1, sizeof *v);
    v->type = type;
    return v;
}

static void s_put_utf8(buf_t *b, uint32_t cp)
{
    char o[4];
    size_t n;
    if (cp < 0x80) {
        o[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        o[0] = (char)(0xF0 | (cp >> 18));
        o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[3] = (char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    stm_buf_append(b, o, n);
}

static bool s_hex4(s_reader *r, uint32_t *out)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        if (r->cur >= r->end) {
            s_fail(r, "short \\u escape");
            return false;
        }
        char c = *r->cur++;
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (uint32_t)(c - 'A' + 10);
        else {
            s_fail(r, "bad hex digit in \\u escape");
            return false;
        }
    }
    *out = v;
    return true;
}

/* At '"': decodes the string into b. */
static bool s_string(s_reader *r, buf_t *b)
{
    r->cur++;
    for (;;) {
        if (r->cur >= r->end) {
            s_fail(r, "unterminated string");
            return false;
        }
        char c = *r->cur++;
        if (c == '"')
            return true;
        if ((unsigned char)c < 0x20) {
            s_fail(r, "control character in string");
            return false;
        }
        if (c != '\\') {
            stm_buf_putc(b, c);
            continue;
        }
        if (r->cur >= r->end) {
            s_fail(r, "unterminated escape");
            return false;
        }
        c = *r->cur++;
        uint32_t cp, lo;
        switch (c) {
        case '"':
        case '\\':
        case '/':
            stm_buf_putc(b, c);
            break;
        case 'b':
            stm_buf_putc(b, '\b');
            break;
        case 'f':
            stm_buf_putc(b, '\f');
            break;
        case 'n':
            stm_buf_putc(b, '\n');
            break;
        case 'r':
            stm_buf_putc(b, '\r');
            break;
        case 't':
            stm_buf_putc(b, '\t');
            break;
        case 'u':
            if (!s_hex4(r, &cp))
                return false;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                if (r->end - r->cur < 6 || r->cur[0] != '\\' || r->cur[1] != 'u') {
                    s_fail(r, "lone high surrogate");
                    return false;
                }
                r->cur += 2;
                if (!s_hex4(r, &lo))
                    return false;
                if (lo < 0xDC00 || lo > 0xDFFF) {
                    s_fail(r, "bad low surrogate");
                    return false;
                }
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                s_fail(r, "lone low surrogate");
                return false;
            }
            s_put_utf8(b, cp);
            break;
        default:
            s_fail(r, "bad escape \\%c", c);
            return false;
        }
    }
}

static json_value *s_value(s_reader *r, int depth);

static json_value *s_container(s_reader *r, int depth, bool object)
{
    json_value *v = s_new(object ? JSON_OBJECT : JSON_ARRAY);
    size_t cap = 0, kcap = 0, lcap = 0;
    char close = object ? '}' : ']';
    r->cur++;
    s_ws(r);
    if (r->cur < r->end && *r->cur == close) {
        r->cur++;
        return v;
    }
    for (;;) {
        s_ws(r);
        if (object) {
            buf_t key = BUF_INIT;
            if (r->cur >= r->end || *r->cur != '"' || !s_string(r, &key)) {
                s_fail(r, "expected a string key");
                stm_buf_free(&key);
                json_free(v);
                return NULL;
            }
            s_ws(r);
            if (r->cur >= r->end || *r->cur != ':') {
                s_fail(r, "expected ':'");
                stm_buf_free(&key);
                json_free(v);
                return NULL;
            }
            r->cur++;
            v->keys = stm_grow(v->keys, &kcap, v->count + 1, sizeof *v->keys);
            v->keylens = stm_grow(v->keylens, &lcap, v->count + 1, sizeof *v->keylens);
            v->keylens[v->count] = key.len;
            v->keys[v->count] = stm_buf_detach(&key);
        }
        json_value *item = s_value(r, depth + 1);
        if (!item) {
            if (object)
                free(v->keys[v->count]);
            json_free(v);
            return NULL;
        }
        v->items = stm_grow(v->items, &cap, v->count + 1, sizeof *v->items);
        v->items[v->count++] = item;
        s_ws(r);
        if (r->cur < r->end && *r->cur == ',') {
            r->cur++;
            continue;
        }
        if (r->cur < r->end && *r->cur == close) {
            r->cur++;
            return v;
        }
        s_fail(r, "expected ',' or '%c'", close);
        json_free(v);
        return NULL;
    }
}

static bool s_word(s_reader *r, const char *w)
{
    size_t n = strlen(w);
    if ((size_t)(r->end - r->cur) < n || memcmp(r->cur, w, n) != 0)
        return false;
    r->cur += n;
    return true;
}

static json_value *s_value(s_reader *r, int depth)
{
    s_ws(r);
    if (depth > JSON_MAX_DEPTH) {
        s_fail(r, "nested too deep");
        return NULL;
    }
    if (r->cur >= r->end) {
        s_fail(r, "expected a value");
        return NULL;
    }
    char c = *r->cur;
    if (c == '{' || c == '[')
        return s_container(r, depth, c == '{');
    if (c == '"') {
        buf_t b = BUF_INIT;
        if (!s_string(r, &b)) {
            stm_buf_free(&b);
            return NULL;
        }
        json_value *v = s_new(JSON_STRING);
        v->len = b.len;
        v->str = stm_buf_detach(&b);
        return v;
    }
    if (s_word(r, "true") || s_word(r, "false")) {
        json_value *v = s_new(JSON_BOOL);
        v->b = c == 't';
        return v;
    }
    if (s_word(r, "null"))
        return s_new(JSON_NULL);
    const char *s = r->cur;
    while (r->cur < r->end && strchr("+-0123456789.eE", *r->cur))
        r->cur++;
    if (r->cur == s) {
        s_fail(r, "unexpected character '%c'", c);
        return NULL;
    }
    json_value *v = s_new(JSON_NUMBER);
    v->len = (size_t)(r->cur - s);
    v->str = stm_strndup(s, v->len);
    return v;
}

json_value *json_parse(const char *text, size_t len, char *err, size_t errlen)
{
    s_reader r = {text, text + len, text, err, errlen, false};
    json_value *v = s_value(&r, 0);
    if (!v)
        return NULL;
    s_ws(&r);
    if (r.cur != r.end) {
        s_fail(&r, "trailing data");
        json_free(v);
        return NULL;
    }
    return v;
}

void json_free(json_value *v)
{
    if (!v)
        return;
    for (size_t i = 0; i < v->count; i++) {
        if (v->keys)
            free(v->keys[i]);
        json_free(v->items[i]);
    }
    free(v->keys);
    free(v->keylens);
    free(v->items);
    free(v->str);
    free(v);
}

const json_value *json_get(const json_value *obj, const char *key)
{
    if (!obj || obj->type != JSON_OBJECT)
        return NULL;
    size_t n = strlen(key);
    for (size_t i = 0; i < obj->count; i++)
        if (obj->keylens[i] == n && memcmp(obj->keys[i], key, n) == 0)
            return obj->items[i];
    return NULL;
}
