/* toml_parse.c - TOML 1.0: a single-pass parser into a value tree (toml_parse and
 * toml_parse_file), with its lexer, strings, numbers, dates and times, key paths, the
 * rules for defining tables, and UTF-8 validation.
 *
 * The parser walks the text once with a cursor. Nothing is allocated per character:
 * strings and keys are decoded into two scratch buffers that live as long as the parse
 * (a string without escapes is taken straight from the text), and the values, keys and
 * string bytes of the tree come from a bump arena owned by the root, so the heap is only
 * asked for the growing entry and element arrays of tables and arrays. The line is
 * counted as newlines are consumed; the column is counted from the start of the line,
 * with a cache so that the positions recorded for the values of a long line cost linear
 * time in all.
 *
 * Invariants of the tree while parsing:
 *  1. Every value hangs from exactly one table entry or array slot under the parser's
 *     root, except the one value under construction, which the function building it
 *     frees before returning an error. So one toml_destroy of the root cleans up after
 *     an error anywhere.
 *  2. A table flagged S_INLINE (an inline table) and an array not flagged S_AOT (an
 *     array value) are frozen: no header and no dotted key may add to them or to
 *     anything inside them.
 *  3. A table flagged S_HEADER was defined by a [header] or is an element a [[header]]
 *     appended; no header may define it again and no dotted key may extend it.
 *  4. A table flagged S_DOTTED was defined by dotted keys in the section numbered
 *     `section` (every header and every inline table opens a new section). Dotted keys
 *     of that same section may add to it; a [header] naming it is a redefinition; a
 *     [header] naming a table below it is allowed (TOML 1.0, "Table" section).
 *  5. A table with none of S_INLINE, S_HEADER, S_DOTTED was created implicitly by a
 *     header ([a.b] creates a): one later [a] header may define it, and dotted keys
 *     reaching it define it as in 4.
 *  6. A table holding more than S_INDEX_MIN keys has a hash index over its entries
 *     (linear probing, at most half full), so finding a key is O(1) in a huge table.
 *  7. Every table and array has depth <= TOML_MAX_DEPTH (the root has depth 0), so the
 *     recursive parse, emit, compare and destroy run in a small, fixed stack.
 */
#include "toml/toml.h"
#include "toml/toml_internal.h"

#include "base/buf.h"
#include "base/mem.h"
#include "base/readfile.h"

#include <assert.h>
#include <float.h>
#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ characters */

static bool s_isdigit_in(char c, int base)
{
    switch (base) {
    case 2:
        return c == '0' || c == '1';
    case 8:
        return c >= '0' && c <= '7';
    case 16:
        return toml_isdigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
    default:
        return toml_isdigit(c);
    }
}

static int s_digit_value(char c)
{
    if (toml_isdigit(c))
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return c - 'A' + 10;
}

/* Length (1-4) of the well-formed UTF-8 sequence at s, or 0 if it is malformed
 * (overlong, a surrogate, beyond U+10FFFF, or cut short by end). */
int toml_utf8(const char *s, const char *end, uint32_t *cp_out)
{
    const unsigned char *u = (const unsigned char *)s;
    unsigned c = u[0];
    if (c < 0x80) {
        if (cp_out)
            *cp_out = c;
        return 1;
    }
    int n;
    uint32_t cp;
    unsigned lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
        cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        cp = c & 0x0F;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        cp = c & 0x07;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else {
        return 0;
    }
    if (end - s < n || u[1] < lo || u[1] > hi)
        return 0;
    cp = (cp << 6) | (u[1] & 0x3F);
    for (int i = 2; i < n; i++) {
        if ((u[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (u[i] & 0x3F);
    }
    if (cp_out)
        *cp_out = cp;
    return n;
}

static void s_put_utf8(buf_t *b, uint32_t cp)
{
    char out[4];
    size_t n;
    if (cp < 0x80) {
        out[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        out[0] = (char)(0xF0 | (cp >> 18));
        out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[3] = (char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    buf_append(b, out, n);
}

/* ------------------------------------------------------------------ the parser */

/* One part of a dotted key, as decoded into the parser's kbuf. */
typedef struct {
    size_t off;     /* where the part starts in kbuf */
    size_t len;     /* its length in bytes */
    const char *at; /* where it starts in the source, for positions and messages */
} s_keypart;

typedef struct {
    const char *text;       /* the document, after any byte order mark */
    const char *cur;        /* the cursor */
    const char *end;        /* one past the last byte */
    const char *name;       /* for messages */
    int line;               /* 1-based line of cur */
    const char *line_start; /* first byte of that line */
    int col_line;           /* s_column's cache: the line it is for, ... */
    const char *col_at;     /* ... a position on that line, ... */
    int col_n;              /* ... and the characters from line_start to col_at */
    unsigned sections;      /* sections opened so far (headers and inline tables) */
    unsigned section;       /* the section the document's key/value lines belong to */
    toml_value *root;       /* the tree being built, owned */
    toml_value *table;      /* where the current section's key/value lines go */
    buf_t sbuf;             /* scratch for decoding a string */
    buf_t kbuf;             /* scratch for the decoded parts of one key */
    s_keypart *parts;       /* the parts of the key parsed last */
    size_t nparts;          /* parts in use */
    size_t partcap;         /* parts allocated */
    s_arena *arena;         /* where the document's values, keys and strings go */
    char decimal_point;     /* the C library's, which strtod and printf use */
    char secname[256];      /* the dotted name of the current section's table, for messages */
    stm_error *err;         /* where errors go, may be NULL */
    size_t nvalues;         /* values and headers so far, at most TOML_MAX_VALUES */
} s_parser;


static toml_value *s_pnew(s_parser *p, toml_type type)
{
    toml_value *v = toml_arena_alloc(p->arena, sizeof *v);
    memset(v, 0, sizeof *v);
    v->type = (uint8_t)type;
    v->flags = S_ARENA;
    return v;
}

static char *s_pstrdup(s_parser *p, const char *s, size_t len)
{
    char *d = toml_arena_alloc(p->arena, len + 1);
    if (len)
        memcpy(d, s, len);
    d[len] = '\0';
    return d;
}

/* The column (1-based, in characters) of at, which is on the cursor's line. */
static int s_column(s_parser *p, const char *at)
{
    if (p->col_line != p->line || p->col_at < p->line_start || p->col_at > at) {
        p->col_line = p->line;
        p->col_at = p->line_start;
        p->col_n = 0;
    }
    int n = p->col_n;
    for (const char *q = p->col_at; q < at; q++)
        n += ((unsigned char)*q & 0xC0) != 0x80;
    p->col_at = at;
    p->col_n = n;
    return n + 1;
}

static void s_locate(s_parser *p, const char *at, int *line, int *col)
{
    if (at >= p->line_start) {
        *line = p->line;
        *col = s_column(p, at);
        return;
    }
    int l = 1, n = 0;
    const char *ls = p->text;
    for (const char *q = p->text; q < at; q++)
        if (*q == '\n') {
            l++;
            ls = q + 1;
        }
    for (const char *q = ls; q < at; q++)
        n += ((unsigned char)*q & 0xC0) != 0x80;
    *line = l;
    *col = n + 1;
}

static stm_err s_fail(s_parser *p, const char *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static stm_err s_fail(s_parser *p, const char *at, const char *fmt, ...)
{
    int line, col;
    s_locate(p, at, &line, &col);
    char what[sizeof p->err->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return stm_error_set(p->err, STM_EINPUT, "%s:%d:%d: %s", p->name, line, col, what);
}

/* Counts one more value or header: what a document costs once parsed is bounded by
 * the count, not only by its bytes. */
static stm_err s_count_value(s_parser *p, const char *at)
{
    if (++p->nvalues > TOML_MAX_VALUES)
        return s_fail(p, at, "more than %d values and headers in one document",
                      TOML_MAX_VALUES);
    return STM_OK;
}

/* Describes the character at at for a message. */
static const char *s_what(const s_parser *p, const char *at, char *out, size_t size)
{
    if (at >= p->end)
        return "end of file";
    unsigned char c = (unsigned char)*at;
    uint32_t cp;
    int n;
    if (c == '\n' || (c == '\r' && at + 1 < p->end && at[1] == '\n'))
        return "end of line";
    if (c >= 0x20 && c < 0x7F)
        snprintf(out, size, "'%c'", c);
    else if (c < 0x80)
        snprintf(out, size, "control character U+%04X", c);
    else if ((n = toml_utf8(at, p->end, &cp)))
        snprintf(out, size, "'%.*s' (U+%04X)", n, at, (unsigned)cp);
    else
        snprintf(out, size, "invalid UTF-8 byte 0x%02X", c);
    return out;
}

static stm_err s_expected(s_parser *p, const char *at, const char *what)
{
    char buf[48];
    return s_fail(p, at, "expected %s, found %s", what, s_what(p, at, buf, sizeof buf));
}

/* The message for a byte a string or comment may not hold. */
static stm_err s_bad_char(s_parser *p, const char *at, const char *where)
{
    unsigned char c = (unsigned char)*at;
    if (c >= 0x80)
        return s_fail(p, at, "invalid UTF-8 (byte 0x%02X) in %s", c, where);
    if (c == '\r')
        return s_fail(p, at, "carriage return not followed by a newline in %s", where);
    if (c == '\n')
        return s_fail(p, at, "newline in %s", where);
    return s_fail(p, at, "control character U+%04X in %s (it must be escaped, if at all allowed)",
                  c, where);
}

/* The dotted name of the first n parts of the key just parsed, after prefix (NULL or a
 * dotted name), for messages; quoted parts show unprintable bytes as '?'. Truncated. */
static const char *s_keyname(const s_parser *p, const char *prefix, size_t n, char *out,
                             size_t size)
{
    size_t o = 0;
    for (; prefix && *prefix && o + 2 < size; prefix++)
        out[o++] = *prefix;
    if (o && n)
        out[o++] = '.';
#define S_PUT(ch)                                                                                  \
    do {                                                                                           \
        if (o + 1 < size)                                                                          \
            out[o++] = (ch);                                                                       \
    } while (0)
    for (size_t i = 0; i < n; i++) {
        const s_keypart *k = &p->parts[i];
        const char *s = p->kbuf.data + k->off;
        bool bare = k->len > 0;
        for (size_t j = 0; j < k->len; j++)
            bare = bare && toml_isbare(s[j]);
        if (i)
            S_PUT('.');
        if (!bare)
            S_PUT('"');
        for (size_t j = 0; j < k->len; j++) {
            unsigned char c = (unsigned char)s[j];
            S_PUT(toml_isplain(c) || c >= 0x80 ? s[j] : '?');
        }
        if (!bare)
            S_PUT('"');
    }
#undef S_PUT
    out[o] = '\0';
    return out;
}

/* "a" or "an", for a value of type t. */
static const char *s_a(toml_type t)
{
    return t == TOML_ARRAY || t == TOML_INTEGER ? "an" : "a";
}

static void s_newline(s_parser *p)
{
    p->line++;
    p->line_start = p->cur;
}

static void s_skip_ws(s_parser *p)
{
    while (p->cur < p->end && (*p->cur == ' ' || *p->cur == '\t'))
        p->cur++;
}

/* At '#': skips the comment up to, not including, the end of the line. */
static stm_err s_comment(s_parser *p)
{
    p->cur++;
    while (p->cur < p->end) {
        unsigned char c = (unsigned char)*p->cur;
        if (toml_isplain(c)) {
            p->cur++;
        } else if (c == '\n' || (c == '\r' && p->cur + 1 < p->end && p->cur[1] == '\n')) {
            break;
        } else if (c >= 0x80) {
            int n = toml_utf8(p->cur, p->end, NULL);
            if (!n)
                return s_bad_char(p, p->cur, "a comment");
            p->cur += n;
        } else {
            return s_bad_char(p, p->cur, "a comment");
        }
    }
    return STM_OK;
}

/* Consumes a newline (LF or CRLF) at the cursor if there is one. */
static bool s_eat_newline(s_parser *p)
{
    if (p->cur < p->end && *p->cur == '\n') {
        p->cur++;
    } else if (p->end - p->cur >= 2 && p->cur[0] == '\r' && p->cur[1] == '\n') {
        p->cur += 2;
    } else {
        return false;
    }
    s_newline(p);
    return true;
}

/* After a key/value pair or a header: whitespace, maybe a comment, then a newline or
 * the end of the document. */
static stm_err s_eol(s_parser *p)
{
    s_skip_ws(p);
    if (p->cur < p->end && *p->cur == '#') {
        stm_err rc = s_comment(p);
        if (rc)
            return rc;
    }
    if (p->cur >= p->end || s_eat_newline(p))
        return STM_OK;
    return s_expected(p, p->cur, "end of line");
}

/* Whitespace, newlines and comments, as allowed between the elements of an array. */
static stm_err s_skip_ws_nl(s_parser *p)
{
    for (;;) {
        s_skip_ws(p);
        if (p->cur < p->end && *p->cur == '#') {
            stm_err rc = s_comment(p);
            if (rc)
                return rc;
        }
        if (!s_eat_newline(p))
            return STM_OK;
    }
}

/* At a backslash in a basic string: decodes the escape into sbuf. */
static stm_err s_escape(s_parser *p)
{
    const char *at = p->cur;
    if (p->end - at < 2)
        return s_fail(p, at + 1, "unterminated string");
    char c = at[1], out = 0;
    switch (c) {
    case 'b':
        out = '\b';
        break;
    case 't':
        out = '\t';
        break;
    case 'n':
        out = '\n';
        break;
    case 'f':
        out = '\f';
        break;
    case 'r':
        out = '\r';
        break;
    case '"':
    case '\\':
        out = c;
        break;
    }
    if (out) {
        buf_putc(&p->sbuf, out);
        p->cur += 2;
        return STM_OK;
    }
    if (c != 'u' && c != 'U') {
        char buf[32];
        return s_fail(p, at, "invalid escape sequence: backslash followed by %s",
                      s_what(p, at + 1, buf, sizeof buf));
    }
    int ndigits = c == 'u' ? 4 : 8;
    uint32_t cp = 0;
    for (int i = 0; i < ndigits; i++) {
        const char *d = at + 2 + i;
        if (d >= p->end || !s_isdigit_in(*d, 16)) {
            char buf[32];
            return s_fail(p, d, "invalid \\%c escape: expected %d hex digits, found %s", c, ndigits,
                          s_what(p, d, buf, sizeof buf));
        }
        cp = (cp << 4) | (uint32_t)s_digit_value(*d);
    }
    if ((cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
        return s_fail(p, at, "invalid \\%c escape: %.*s is not a Unicode scalar value", c,
                      ndigits + 2, at);
    s_put_utf8(&p->sbuf, cp);
    p->cur += 2 + ndigits;
    return STM_OK;
}

/* Ends the decoded string: the text between seg and end, after whatever sbuf holds if
 * copied is set, otherwise straight from the source. */
static void s_string_done(s_parser *p, bool copied, const char *seg, const char *end,
                          const char **s, size_t *len)
{
    if (copied) {
        buf_append(&p->sbuf, seg, (size_t)(end - seg));
        *s = p->sbuf.data;
        *len = p->sbuf.len;
    } else {
        *s = seg;
        *len = (size_t)(end - seg);
    }
}

/* At a quote: any of the four kinds of string (multi-line ones only if multiline is
 * set). The result is lent: it points into the source or into sbuf. */
static stm_err s_string(s_parser *p, bool multiline, const char **s, size_t *len)
{
    const char *open = p->cur;
    char q = *open;
    bool basic = q == '"';
    bool triple = p->end - open >= 3 && open[1] == q && open[2] == q;
    const char *where = basic ? (triple ? "a multi-line string" : "a string")
                              : (triple ? "a multi-line literal string" : "a literal string");
    bool copied = false;
    stm_err rc;
    buf_reset(&p->sbuf);
    if (triple && !multiline)
        return s_fail(p, open, "a key cannot be a multi-line string");
    if (!triple) {
        const char *seg = ++p->cur;
        for (;;) {
            while (p->cur < p->end && toml_isplain((unsigned char)*p->cur) && *p->cur != q &&
                   *p->cur != '\\')
                p->cur++;
            if (p->cur >= p->end)
                return s_fail(p, p->cur, "%s opened at column %d is never closed", where,
                              s_column(p, open));
            unsigned char c = (unsigned char)*p->cur;
            if (c == (unsigned char)q) {
                s_string_done(p, copied, seg, p->cur, s, len);
                p->cur++;
                return STM_OK;
            }
            if (c == '\\') {
                if (!basic) {
                    p->cur++;
                    continue;
                }
                buf_append(&p->sbuf, seg, (size_t)(p->cur - seg));
                copied = true;
                if ((rc = s_escape(p)))
                    return rc;
                seg = p->cur;
            } else if (c >= 0x80) {
                int n = toml_utf8(p->cur, p->end, NULL);
                if (!n)
                    return s_bad_char(p, p->cur, where);
                p->cur += n;
            } else if (c == '\n' || c == '\r') {
                return s_fail(p, p->cur, "end of line in %s (no closing %c)", where, q);
            } else {
                return s_bad_char(p, p->cur, where);
            }
        }
    }
    int open_line = p->line, open_col = s_column(p, open);
    p->cur += 3;
    s_eat_newline(p); /* a newline right after the opening delimiter is trimmed */
    const char *seg = p->cur;
    for (;;) {
        while (p->cur < p->end && toml_isplain((unsigned char)*p->cur) && *p->cur != q &&
               *p->cur != '\\')
            p->cur++;
        if (p->cur >= p->end)
            return s_fail(p, p->cur, "%s opened at line %d, column %d is never closed", where,
                          open_line, open_col);
        unsigned char c = (unsigned char)*p->cur;
        if (c == (unsigned char)q) {
            const char *run = p->cur;
            while (p->cur < p->end && *p->cur == q)
                p->cur++;
            size_t n = (size_t)(p->cur - run);
            if (n < 3)
                continue;
            if (n > 5)
                return s_fail(p, run + 5, "too many %c after the end of %s", q, where);
            s_string_done(p, copied, seg, run + (n - 3), s, len);
            return STM_OK;
        }
        if (c == '\\' && basic) {
            buf_append(&p->sbuf, seg, (size_t)(p->cur - seg));
            copied = true;
            const char *t = p->cur + 1;
            while (t < p->end && (*t == ' ' || *t == '\t'))
                t++;
            if (t < p->end && (*t == '\n' || (*t == '\r' && t + 1 < p->end && t[1] == '\n'))) {
                /* line-ending backslash: drop all whitespace and newlines up to the next
                 * character */
                p->cur = t;
                for (;;) {
                    s_skip_ws(p);
                    if (!s_eat_newline(p))
                        break;
                }
            } else if ((rc = s_escape(p))) {
                return rc;
            }
            seg = p->cur;
        } else if (c == '\\') {
            p->cur++;
        } else if (c == '\n') {
            p->cur++;
            s_newline(p);
        } else if (c == '\r' && p->cur + 1 < p->end && p->cur[1] == '\n') {
            /* CRLF becomes LF */
            buf_append(&p->sbuf, seg, (size_t)(p->cur - seg));
            buf_putc(&p->sbuf, '\n');
            copied = true;
            p->cur += 2;
            s_newline(p);
            seg = p->cur;
        } else if (c >= 0x80) {
            int n = toml_utf8(p->cur, p->end, NULL);
            if (!n)
                return s_bad_char(p, p->cur, where);
            p->cur += n;
        } else {
            return s_bad_char(p, p->cur, where);
        }
    }
}

/* A key: simple keys joined by dots, into p->parts; skips the whitespace after it. */
static stm_err s_key(s_parser *p)
{
    p->nparts = 0;
    buf_reset(&p->kbuf);
    for (;;) {
        const char *at = p->cur;
        const char *s;
        size_t len;
        if (at < p->end && toml_isbare(*at)) {
            while (p->cur < p->end && toml_isbare(*p->cur))
                p->cur++;
            s = at;
            len = (size_t)(p->cur - at);
        } else if (at < p->end && (*at == '"' || *at == '\'')) {
            stm_err rc = s_string(p, false, &s, &len);
            if (rc)
                return rc;
        } else {
            return s_expected(p, at, "a key");
        }
        p->parts = stm_grow(p->parts, &p->partcap, p->nparts + 1, sizeof *p->parts);
        p->parts[p->nparts++] = (s_keypart){p->kbuf.len, len, at};
        buf_append(&p->kbuf, s, len);
        s_skip_ws(p);
        if (p->cur >= p->end || *p->cur != '.')
            return STM_OK;
        p->cur++;
        s_skip_ws(p);
    }
}

static s_entry *s_find_part(const s_parser *p, const toml_value *t, size_t i, uint32_t *hash)
{
    const s_keypart *k = &p->parts[i];
    *hash = toml_hash(p->kbuf.data + k->off, k->len);
    return toml_find(t, p->kbuf.data + k->off, k->len, *hash);
}

/* Makes a table under t for key part i. */
static stm_err s_new_table(s_parser *p, toml_value *t, size_t i, uint32_t hash, unsigned flags,
                           const char *at, toml_value **out)
{
    if (t->depth >= TOML_MAX_DEPTH)
        return s_fail(p, p->parts[i].at, "tables nest deeper than %d levels", TOML_MAX_DEPTH);
    const s_keypart *k = &p->parts[i];
    toml_value *v = s_pnew(p, TOML_TABLE);
    v->flags |= (uint8_t)flags;
    v->depth = (uint16_t)(t->depth + 1);
    v->line = p->line;
    v->column = s_column(p, at);
    toml_append(t, s_pstrdup(p, p->kbuf.data + k->off, k->len), k->len, true, hash, v);
    *out = v;
    return STM_OK;
}

static stm_err s_value(s_parser *p, int depth, toml_value **out);

/* key = value, into table t, whose dotted keys belong to section; prefix is t's dotted
 * name for messages, NULL in an inline table. */
static stm_err s_keyval(s_parser *p, toml_value *t, unsigned section, const char *prefix)
{
    char name[256] = "";
    uint32_t hash;
    stm_err rc = s_key(p);
    if (rc)
        return rc;
    if (p->cur >= p->end || *p->cur != '=')
        return s_expected(p, p->cur, "'=' after the key");
    p->cur++;
    s_skip_ws(p);
    for (size_t i = 0; i + 1 < p->nparts; i++) {
        s_entry *e = s_find_part(p, t, i, &hash);
        if (!e) {
            if ((rc = s_new_table(p, t, i, hash, S_DOTTED, p->parts[i].at, &t)))
                return rc;
            t->section = section;
            continue;
        }
        toml_value *v = e->val;
        if (v->type != TOML_TABLE)
            return s_fail(p, p->parts[i].at, "'%s' is %s %s (line %d), not a table",
                          s_keyname(p, prefix, i + 1, name, sizeof name), s_a(v->type),
                          toml_type_name(v->type), v->line);
        if (v->flags & S_INLINE)
            return s_fail(p, p->parts[i].at,
                          "'%s' is an inline table (line %d), which cannot be extended",
                          s_keyname(p, prefix, i + 1, name, sizeof name), v->line);
        if ((v->flags & S_HEADER) || ((v->flags & S_DOTTED) && v->section != section))
            return s_fail(p, p->parts[i].at,
                          "table '%s' is already defined (line %d); dotted keys cannot add to it",
                          s_keyname(p, prefix, i + 1, name, sizeof name), v->line);
        v->flags |= S_DOTTED;
        v->section = section;
        t = v;
    }
    const s_keypart *last = &p->parts[p->nparts - 1];
    s_entry *e = s_find_part(p, t, p->nparts - 1, &hash);
    if (e)
        return s_fail(p, last->at, "duplicate key '%s' (first defined at line %d)",
                      s_keyname(p, prefix, p->nparts, name, sizeof name), e->val->line);
    size_t len = last->len;
    char *key = s_pstrdup(p, p->kbuf.data + last->off, len);
    toml_value *v;
    if ((rc = s_value(p, t->depth + 1, &v)))
        return rc;
    toml_append(t, key, len, true, hash, v);
    return STM_OK;
}

/* At '[': a [table] or [[array of tables]] header. */
static stm_err s_header(s_parser *p)
{
    char name[256] = "";
    uint32_t hash;
    const char *prefix = NULL;
    stm_err counted = s_count_value(p, p->cur);
    if (counted)
        return counted;
    const char *open = p->cur++;
    bool aot = p->cur < p->end && *p->cur == '[';
    if (aot)
        p->cur++;
    s_skip_ws(p);
    stm_err rc = s_key(p);
    if (rc)
        return rc;
    if (p->cur >= p->end || *p->cur != ']')
        return s_expected(p, p->cur,
                          aot ? "']]' after the table name" : "']' after the table name");
    p->cur++;
    if (aot) {
        if (p->cur >= p->end || *p->cur != ']')
            return s_expected(p, p->cur, "']]' after the table name");
        p->cur++;
    }
    toml_value *t = p->root;
    for (size_t i = 0; i + 1 < p->nparts; i++) {
        s_entry *e = s_find_part(p, t, i, &hash);
        if (!e) {
            if ((rc = s_new_table(p, t, i, hash, 0, p->parts[i].at, &t)))
                return rc;
            continue;
        }
        toml_value *v = e->val;
        if (v->type == TOML_TABLE && !(v->flags & S_INLINE)) {
            t = v;
        } else if (v->type == TOML_ARRAY && (v->flags & S_AOT)) {
            t = v->u.arr.items[v->u.arr.count - 1];
        } else if (v->type == TOML_TABLE) {
            return s_fail(p, p->parts[i].at,
                          "'%s' is an inline table (line %d), which cannot be extended",
                          s_keyname(p, prefix, i + 1, name, sizeof name), v->line);
        } else if (v->type == TOML_ARRAY) {
            return s_fail(p, p->parts[i].at,
                          "'%s' is an array value (line %d), which cannot be extended",
                          s_keyname(p, prefix, i + 1, name, sizeof name), v->line);
        } else {
            return s_fail(p, p->parts[i].at, "'%s' is %s %s (line %d), not a table",
                          s_keyname(p, prefix, i + 1, name, sizeof name), s_a(v->type),
                          toml_type_name(v->type), v->line);
        }
    }
    size_t li = p->nparts - 1;
    const char *at = p->parts[li].at;
    s_entry *e = s_find_part(p, t, li, &hash);
    toml_value *v = e ? e->val : NULL;
    if (v)
        s_keyname(p, prefix, p->nparts, name, sizeof name);
    if (!aot) {
        if (!v) {
            if ((rc = s_new_table(p, t, li, hash, S_HEADER, open, &t)))
                return rc;
        } else if (v->type == TOML_TABLE && !(v->flags & (S_INLINE | S_HEADER | S_DOTTED))) {
            v->flags |= S_HEADER;
            v->line = p->line;
            v->column = s_column(p, open);
            t = v;
        } else if (v->type == TOML_TABLE) {
            return s_fail(p, at, "table '%s' is already defined (line %d)", name, v->line);
        } else {
            return s_fail(p, at, "'%s' is already defined as %s %s (line %d)", name, s_a(v->type),
                          toml_type_name(v->type), v->line);
        }
    } else {
        toml_value *a = v;
        if (!a) {
            if (t->depth + 1 >= TOML_MAX_DEPTH)
                return s_fail(p, at, "tables nest deeper than %d levels", TOML_MAX_DEPTH);
            a = s_pnew(p, TOML_ARRAY);
            a->flags |= S_AOT;
            a->depth = (uint16_t)(t->depth + 1);
            a->line = p->line;
            a->column = s_column(p, open);
            const s_keypart *k = &p->parts[li];
            toml_append(t, s_pstrdup(p, p->kbuf.data + k->off, k->len), k->len, true, hash, a);
        } else if (a->type != TOML_ARRAY) {
            return s_fail(p, at, "'%s' is already defined as %s %s (line %d)", name, s_a(a->type),
                          toml_type_name(a->type), a->line);
        } else if (!(a->flags & S_AOT)) {
            return s_fail(p, at, "'%s' is an array value (line %d), which cannot be extended", name,
                          a->line);
        }
        t = s_pnew(p, TOML_TABLE);
        t->flags |= S_HEADER;
        t->depth = (uint16_t)(a->depth + 1);
        t->line = p->line;
        t->column = s_column(p, open);
        toml_push(a, t);
    }
    p->table = t;
    p->section = ++p->sections;
    s_keyname(p, NULL, p->nparts, p->secname, sizeof p->secname);
    return STM_OK;
}

/* At '[': an array value of the given depth. */
static stm_err s_array(s_parser *p, int depth, toml_value **out)
{
    if (depth > TOML_MAX_DEPTH)
        return s_fail(p, p->cur, "arrays and tables nest deeper than %d levels", TOML_MAX_DEPTH);
    toml_value *a = s_pnew(p, TOML_ARRAY);
    a->flags |= S_INLINE;
    a->depth = (uint16_t)depth;
    stm_err rc;
    p->cur++;
    for (;;) {
        if ((rc = s_skip_ws_nl(p)))
            goto fail;
        if (p->cur < p->end && *p->cur == ']')
            break;
        toml_value *v;
        if ((rc = s_value(p, depth + 1, &v)))
            goto fail;
        toml_push(a, v);
        if ((rc = s_skip_ws_nl(p)))
            goto fail;
        if (p->cur < p->end && *p->cur == ',') {
            p->cur++;
            continue;
        }
        if (p->cur < p->end && *p->cur == ']')
            break;
        rc = s_expected(p, p->cur, "',' or ']' in the array");
        goto fail;
    }
    p->cur++;
    *out = a;
    return STM_OK;
fail:
    toml_free(a);
    return rc;
}

/* At '{': an inline table of the given depth. */
static stm_err s_inline_table(s_parser *p, int depth, toml_value **out)
{
    if (depth > TOML_MAX_DEPTH)
        return s_fail(p, p->cur, "arrays and tables nest deeper than %d levels", TOML_MAX_DEPTH);
    toml_value *t = s_pnew(p, TOML_TABLE);
    t->depth = (uint16_t)depth;
    unsigned section = ++p->sections;
    stm_err rc;
    p->cur++;
    s_skip_ws(p);
    if (p->cur < p->end && *p->cur == '}') {
        p->cur++;
        t->flags |= S_INLINE;
        *out = t;
        return STM_OK;
    }
    for (;;) {
        if ((rc = s_keyval(p, t, section, NULL)))
            goto fail;
        s_skip_ws(p);
        if (p->cur < p->end && *p->cur == '}')
            break;
        if (p->cur >= p->end || *p->cur != ',') {
            rc = s_expected(p, p->cur, "',' or '}' in the inline table");
            goto fail;
        }
        p->cur++;
        s_skip_ws(p);
        if (p->cur < p->end && *p->cur == '}') {
            rc = s_fail(p, p->cur, "trailing comma in an inline table");
            goto fail;
        }
    }
    p->cur++;
    t->flags |= S_INLINE;
    *out = t;
    return STM_OK;
fail:
    toml_free(t);
    return rc;
}

/* Reads exactly n digits at *q into *v, advancing *q; false (with *q at the offending
 * character) if they are not there. */
static bool s_fixed(const char **q, const char *end, int n, int *v)
{
    int x = 0;
    for (int i = 0; i < n; i++, (*q)++) {
        if (*q >= end || !toml_isdigit(**q))
            return false;
        x = x * 10 + (**q - '0');
    }
    *v = x;
    return true;
}

/* HH:MM:SS[.fraction] at *q. */
static stm_err s_time(s_parser *p, const char **q, toml_datetime *dt)
{
    const char *f = *q;
    if (!s_fixed(q, p->end, 2, &dt->hour))
        return s_expected(p, *q, "a digit in the time (HH:MM:SS)");
    if (dt->hour > 23)
        return s_fail(p, f, "hour %02d is out of range", dt->hour);
    if (*q >= p->end || **q != ':')
        return s_expected(p, *q, "':' in the time (HH:MM:SS)");
    f = ++*q;
    if (!s_fixed(q, p->end, 2, &dt->minute))
        return s_expected(p, *q, "a digit in the time (HH:MM:SS)");
    if (dt->minute > 59)
        return s_fail(p, f, "minute %02d is out of range", dt->minute);
    if (*q >= p->end || **q != ':')
        return s_expected(p, *q, "':' in the time (HH:MM:SS)");
    f = ++*q;
    if (!s_fixed(q, p->end, 2, &dt->second))
        return s_expected(p, *q, "a digit in the time (HH:MM:SS)");
    if (dt->second > 60)
        return s_fail(p, f, "second %02d is out of range", dt->second);
    if (*q < p->end && **q == '.') {
        ++*q;
        if (*q >= p->end || !toml_isdigit(**q))
            return s_expected(p, *q, "a digit after the decimal point");
        int ns = 0, n = 0;
        for (; *q < p->end && toml_isdigit(**q); ++*q)
            if (n < 9) {
                ns = ns * 10 + (**q - '0');
                n++;
            }
        for (; n < 9; n++)
            ns *= 10;
        dt->nanosecond = ns;
    }
    return STM_OK;
}

/* A date, date-time or time (time_only: starts HH:). */
static stm_err s_datetime(s_parser *p, bool time_only, toml_value **out)
{
    const char *q = p->cur, *f = q;
    toml_datetime dt = {0};
    toml_type type = TOML_TIME_LOCAL;
    stm_err rc;
    if (!time_only) {
        if (!s_fixed(&q, p->end, 4, &dt.year))
            return s_expected(p, q, "a digit in the date (YYYY-MM-DD)");
        if (q >= p->end || *q != '-')
            return s_expected(p, q, "'-' in the date (YYYY-MM-DD)");
        f = ++q;
        if (!s_fixed(&q, p->end, 2, &dt.month))
            return s_expected(p, q, "a digit in the date (YYYY-MM-DD)");
        if (dt.month < 1 || dt.month > 12)
            return s_fail(p, f, "month %02d is out of range", dt.month);
        if (q >= p->end || *q != '-')
            return s_expected(p, q, "'-' in the date (YYYY-MM-DD)");
        f = ++q;
        if (!s_fixed(&q, p->end, 2, &dt.day))
            return s_expected(p, q, "a digit in the date (YYYY-MM-DD)");
        if (dt.day < 1 || dt.day > toml_days_in_month(dt.year, dt.month))
            return s_fail(p, f, "day %02d is out of range for %04d-%02d", dt.day, dt.year,
                          dt.month);
        type = TOML_DATE_LOCAL;
        if (q < p->end &&
            (*q == 'T' || *q == 't' || (*q == ' ' && q + 1 < p->end && toml_isdigit(q[1])))) {
            q++;
            type = TOML_DATETIME_LOCAL;
        }
    }
    if (type != TOML_DATE_LOCAL) {
        if ((rc = s_time(p, &q, &dt)))
            return rc;
        if (type == TOML_DATETIME_LOCAL && q < p->end && (*q == 'Z' || *q == 'z')) {
            q++;
            type = TOML_DATETIME;
        } else if (type == TOML_DATETIME_LOCAL && q < p->end && (*q == '+' || *q == '-')) {
            int sign = *q++ == '-' ? -1 : 1, h, m;
            f = q;
            if (!s_fixed(&q, p->end, 2, &h))
                return s_expected(p, q, "a digit in the time offset (+HH:MM)");
            if (h > 23)
                return s_fail(p, f, "offset hour %02d is out of range", h);
            if (q >= p->end || *q != ':')
                return s_expected(p, q, "':' in the time offset (+HH:MM)");
            f = ++q;
            if (!s_fixed(&q, p->end, 2, &m))
                return s_expected(p, q, "a digit in the time offset (+HH:MM)");
            if (m > 59)
                return s_fail(p, f, "offset minute %02d is out of range", m);
            dt.offset_minutes = sign * (h * 60 + m);
            type = TOML_DATETIME;
        }
    }
    p->cur = q;
    toml_value *v = s_pnew(p, type);
    v->u.dt = dt;
    *out = v;
    return STM_OK;
}

/* Scans DIGIT *(DIGIT / "_" DIGIT) in base from q; returns the end, or NULL with *bad at
 * the offending character. */
static const char *s_scan_digits(const char *q, const char *e, int base, const char **bad)
{
    if (q >= e || !s_isdigit_in(*q, base)) {
        *bad = q;
        return NULL;
    }
    for (q++; q < e;) {
        if (*q == '_') {
            if (q + 1 >= e || !s_isdigit_in(q[1], base)) {
                *bad = q;
                return NULL;
            }
            q += 2;
        } else if (s_isdigit_in(*q, base)) {
            q++;
        } else {
            break;
        }
    }
    return q;
}

/* The float in [s, e), already checked against the grammar, when it can be computed
 * exactly: a mantissa of at most 2^53 times or divided by a power of ten of at most
 * 10^22 (both exact doubles) is one correctly rounded operation. False otherwise. */
static bool s_fast_float(const char *s, const char *e, double *out)
{
#if FLT_EVAL_METHOD == 0
    static const double pow10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                   1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                   1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
    bool neg = *s == '-';
    if (*s == '+' || *s == '-')
        s++;
    uint64_t w = 0;
    int digits = 0, scale = 0;
    bool frac = false;
    for (; s < e && *s != 'e' && *s != 'E'; s++) {
        if (*s == '_')
            continue;
        if (*s == '.') {
            frac = true;
            continue;
        }
        if (w == 0 && *s == '0') {
            if (frac)
                scale--;
            continue;
        }
        if (++digits > 19)
            return false;
        w = w * 10 + (uint64_t)(*s - '0');
        if (frac)
            scale--;
    }
    if (s < e) {
        bool eneg = *++s == '-';
        if (*s == '+' || *s == '-')
            s++;
        int x = 0;
        for (; s < e; s++)
            if (*s != '_' && (x = x * 10 + (*s - '0')) > 1000)
                return false;
        scale += eneg ? -x : x;
    }
    if (w == 0) {
        *out = neg ? -0.0 : 0.0;
        return true;
    }
    if (w > (1ull << 53) || scale < -22 || scale > 22)
        return false;
    double d = (double)w;
    if (scale < 0)
        d /= pow10[-scale];
    else if (scale > 0)
        d *= pow10[scale];
    *out = neg ? -d : d;
    return true;
#else
    (void)s, (void)e, (void)out;
    return false;
#endif
}

static bool s_isnumchar(char c)
{
    return toml_isbare(c) || c == '.' || c == '+';
}

static stm_err s_bad_number(s_parser *p, const char *at)
{
    char buf[32];
    if (at < p->end && *at == '_')
        return s_fail(p, at, "invalid number: '_' must sit between two digits");
    return s_fail(p, at, "invalid number: unexpected %s", s_what(p, at, buf, sizeof buf));
}

/* An integer, a float, or (by its shape) a date or time. */
static stm_err s_number(s_parser *p, toml_value **out)
{
    const char *s = p->cur, *e = s, *q = s, *bad;
    size_t avail = (size_t)(p->end - s);
    if (avail >= 3 && toml_isdigit(s[0]) && toml_isdigit(s[1]) && s[2] == ':')
        return s_datetime(p, true, out);
    if (avail >= 5 && toml_isdigit(s[0]) && toml_isdigit(s[1]) && toml_isdigit(s[2]) &&
        toml_isdigit(s[3]) && s[4] == '-')
        return s_datetime(p, false, out);
    while (e < p->end && s_isnumchar(*e))
        e++;
    bool neg = false, sign = *q == '+' || *q == '-';
    if (sign)
        neg = *q++ == '-';
    if (e - q == 3 && (memcmp(q, "inf", 3) == 0 || memcmp(q, "nan", 3) == 0)) {
        toml_value *v = s_pnew(p, TOML_FLOAT);
        v->u.f = q[0] == 'i' ? (neg ? -INFINITY : INFINITY) : (neg ? -NAN : NAN);
        p->cur = e;
        *out = v;
        return STM_OK;
    }
    if (q >= e || !toml_isdigit(*q)) {
        if (q < e && (*q == 'i' || *q == 'n'))
            return s_fail(p, q, "invalid value (did you mean inf or nan?)");
        return s_bad_number(p, q);
    }
    int base = 10;
    if (!sign && q[0] == '0' && e - q >= 2 && (q[1] == 'x' || q[1] == 'o' || q[1] == 'b')) {
        base = q[1] == 'x' ? 16 : q[1] == 'o' ? 8 : 2;
        q += 2;
    } else if (q[0] == '0' && e - q >= 2 && (toml_isdigit(q[1]) || q[1] == '_')) {
        return s_fail(p, q, "invalid number: leading zeros are not allowed");
    }
    const char *digits = q;
    if (!(q = s_scan_digits(q, e, base, &bad)))
        return s_bad_number(p, bad);
    bool is_float = false;
    if (base == 10 && q < e && *q == '.') {
        if (!(q = s_scan_digits(q + 1, e, 10, &bad)))
            return s_bad_number(p, bad);
        is_float = true;
    }
    if (base == 10 && q < e && (*q == 'e' || *q == 'E')) {
        q++;
        if (q < e && (*q == '+' || *q == '-'))
            q++;
        if (!(q = s_scan_digits(q, e, 10, &bad)))
            return s_bad_number(p, bad);
        is_float = true;
    }
    if (q != e)
        return s_bad_number(p, q);
    toml_value *v;
    double f;
    if (is_float && s_fast_float(s, e, &f)) {
        v = s_pnew(p, TOML_FLOAT);
        v->u.f = f;
    } else if (is_float) {
        char small[64], *tmp = small;
        if ((size_t)(e - s) >= sizeof small) {
            buf_reset(&p->sbuf);
            buf_append(&p->sbuf, s, (size_t)(e - s));
            tmp = p->sbuf.data;
        }
        size_t n = 0;
        for (const char *c = s; c < e; c++)
            if (*c != '_')
                tmp[n++] = *c == '.' ? p->decimal_point : *c;
        tmp[n] = '\0';
        f = strtod(tmp, NULL);
        if (isinf(f))
            return s_fail(p, s, "float %.*s is out of range", (int)(e - s), s);
        v = s_pnew(p, TOML_FLOAT);
        v->u.f = f;
    } else {
        uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX, acc = 0;
        uint64_t cutoff = limit / (unsigned)base, cutlim = limit % (unsigned)base;
        for (const char *c = digits; c < e; c++) {
            if (*c == '_')
                continue;
            unsigned d = (unsigned)s_digit_value(*c);
            if (acc > cutoff || (acc == cutoff && d > cutlim))
                return s_fail(p, s, "integer %.*s does not fit in 64 bits", (int)(e - s), s);
            acc = acc * (unsigned)base + d;
        }
        v = s_pnew(p, TOML_INTEGER);
        v->u.i = neg ? (acc == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)acc) : (int64_t)acc;
    }
    p->cur = e;
    *out = v;
    return STM_OK;
}

static bool s_match(s_parser *p, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(p->end - p->cur) < n || memcmp(p->cur, word, n) != 0)
        return false;
    p->cur += n;
    return true;
}

/* Any value, which will have the given depth. */
static stm_err s_value(s_parser *p, int depth, toml_value **out)
{
    const char *at = p->cur;
    if (at >= p->end)
        return s_expected(p, at, "a value");
    stm_err counted = s_count_value(p, at);
    if (counted)
        return counted;
    int line = p->line, col = s_column(p, at);
    toml_value *v = NULL;
    stm_err rc = STM_OK;
    switch (*at) {
    case '"':
    case '\'': {
        const char *s;
        size_t len;
        if (!(rc = s_string(p, true, &s, &len))) {
            v = s_pnew(p, TOML_STRING);
            v->u.str.s = s_pstrdup(p, s, len);
            v->u.str.len = len;
        }
        break;
    }
    case 't':
    case 'f':
        if (s_match(p, "true") || s_match(p, "false")) {
            v = s_pnew(p, TOML_BOOL);
            v->u.b = *at == 't';
        } else
            rc = s_fail(p, at, "invalid value (booleans are true and false, in lower case)");
        break;
    case '[':
        rc = s_array(p, depth, &v);
        break;
    case '{':
        rc = s_inline_table(p, depth, &v);
        break;
    default:
        if (toml_isdigit(*at) || *at == '+' || *at == '-' || *at == 'i' || *at == 'n')
            rc = s_number(p, &v);
        else
            rc = s_expected(p, at, "a value");
    }
    if (rc)
        return rc;
    v->line = line;
    v->column = col;
    *out = v;
    return STM_OK;
}

static stm_err s_document(s_parser *p)
{
    for (;;) {
        s_skip_ws(p);
        if (p->cur >= p->end)
            return STM_OK;
        char c = *p->cur;
        stm_err rc = STM_OK;
        if (c == '[')
            rc = s_header(p);
        else if (c != '#' && c != '\n' && c != '\r')
            rc = s_keyval(p, p->table, p->section, p->secname);
        if (rc || (rc = s_eol(p)))
            return rc;
    }
}

stm_err toml_parse(const char *text, size_t len, const char *name, toml_value **root,
                   stm_error *err)
{
    assert(root && (text || len == 0));
    if (!name)
        name = "<toml>";
    if (len > TOML_MAX_INPUT)
        return stm_error_set(err, STM_EINPUT, "%s: the document is larger than %u bytes", name,
                             TOML_MAX_INPUT);
    if (!text)
        text = "";
    s_parser p = {0};
    p.text = text;
    p.end = text + len;
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
        p.text += 3;
    p.cur = p.line_start = p.col_at = p.text;
    p.line = p.col_line = 1;
    p.name = name;
    p.err = err;
    const char *dp = localeconv()->decimal_point;
    p.decimal_point = dp && dp[0] && !dp[1] ? dp[0] : '.';
    s_doc *doc = stm_calloc(1, sizeof *doc);
    doc->root.type = TOML_TABLE;
    doc->root.flags = S_DOC;
    doc->root.line = doc->root.column = 1;
    p.root = p.table = &doc->root;
    p.arena = &doc->arena;
    stm_err rc = s_document(&p);
    buf_free(&p.sbuf);
    buf_free(&p.kbuf);
    free(p.parts);
    if (rc) {
        toml_destroy(&p.root);
        return rc;
    }
    *root = p.root;
    return STM_OK;
}

stm_err toml_parse_file(const char *path, toml_value **root, stm_error *err)
{
    assert(path && root);
    char *data;
    size_t len;
    stm_err rc = readfile_all(path, TOML_MAX_INPUT, &data, &len, err);
    if (rc != STM_OK)
        return rc;
    rc = toml_parse(data, len, path, root, err);
    free(data);
    return rc;
}
