/* toml_lex.c - the TOML parser's characters: UTF-8 validation, positions and error
 * messages, whitespace and comments, the four kinds of string with their
 * escapes, and keys (simple keys joined by dots, decoded into the parser's key buffer).
 * The structure (toml_parse.c) and the scalars (toml_scalar.c) are read with these.
 *
 * Nothing is allocated per character: strings and keys are decoded into two scratch
 * buffers that live as long as the parse, and a string without escapes is taken straight
 * from the text.
 *
 * Invariants of the cursor, kept here:
 *  1. p->line and p->line_start describe the line p->cur is on. Newlines are consumed
 *     only by the line-end helpers (tp_eat_newline and tp_eol, inline in toml_parser.h
 *     because they run once a line) and by stm_tp_string inside a multi-line string, each
 *     through tp_newline; no number, date or piece of punctuation the other files read
 *     can span one.
 *  2. The column is counted from line_start, with a cache (col_line, col_at, col_n) that
 *     stm_tp_column resets when the line changes or when asked about a position before the
 *     cached one, so the positions recorded for the values of a long line cost linear
 *     time in all. A position on an earlier line, wanted only for a message, is found by
 *     scanning from the start (s_locate).
 *  3. Every string and key decoded is valid UTF-8: each byte passed in a string or a
 *     comment is printable ASCII, a tab, part of a well-formed sequence (stm_toml_utf8) or a
 *     newline a multi-line string may hold, and a \u or \U escape must name a Unicode
 *     scalar value (s_escape); anything else fails with a message naming it.
 */
#include "toml/toml.h"
#include "toml/toml_parser.h"

#include "base/buf.h"
#include "base/mem.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>

/* ------------------------------------------------------------------ UTF-8 */

/* Length (1-4) of the well-formed UTF-8 sequence at s, or 0 if it is malformed
 * (overlong, a surrogate, beyond U+10FFFF, or cut short by end). */
int stm_toml_utf8(const char *s, const char *end, uint32_t *cp_out)
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
    stm_buf_append(b, out, n);
}

/* ------------------------------------------------------------------ positions and messages */

/* The column (1-based, in characters) of at, which is on the cursor's line. */
int stm_tp_column(s_parser *p, const char *at)
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
        *col = stm_tp_column(p, at);
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

stm_err stm_tp_fail(s_parser *p, const char *at, const char *fmt, ...)
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

/* Describes the character at at for a message. */
const char *stm_tp_what(const s_parser *p, const char *at, char *out, size_t size)
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
    else if ((n = stm_toml_utf8(at, p->end, &cp)))
        snprintf(out, size, "'%.*s' (U+%04X)", n, at, (unsigned)cp);
    else
        snprintf(out, size, "invalid UTF-8 byte 0x%02X", c);
    return out;
}

stm_err stm_tp_expected(s_parser *p, const char *at, const char *what)
{
    char buf[48];
    return stm_tp_fail(p, at, "expected %s, found %s", what, stm_tp_what(p, at, buf, sizeof buf));
}

/* The message for a byte a string or comment may not hold. */
static stm_err s_bad_char(s_parser *p, const char *at, const char *where)
{
    unsigned char c = (unsigned char)*at;
    if (c >= 0x80)
        return stm_tp_fail(p, at, "invalid UTF-8 (byte 0x%02X) in %s", c, where);
    if (c == '\r')
        return stm_tp_fail(p, at, "carriage return not followed by a newline in %s", where);
    if (c == '\n')
        return stm_tp_fail(p, at, "newline in %s", where);
    return stm_tp_fail(
        p, at, "control character U+%04X in %s (it must be escaped, if at all allowed)", c, where);
}

/* ------------------------------------------------------------------ whitespace and comments */

/* At '#': skips the comment up to, not including, the end of the line. */
stm_err stm_tp_comment(s_parser *p)
{
    p->cur++;
    while (p->cur < p->end) {
        unsigned char c = (unsigned char)*p->cur;
        if (toml_isplain(c)) {
            p->cur++;
        } else if (c == '\n' || (c == '\r' && p->cur + 1 < p->end && p->cur[1] == '\n')) {
            break;
        } else if (c >= 0x80) {
            int n = stm_toml_utf8(p->cur, p->end, NULL);
            if (!n)
                return s_bad_char(p, p->cur, "a comment");
            p->cur += n;
        } else {
            return s_bad_char(p, p->cur, "a comment");
        }
    }
    return STM_OK;
}

/* Whitespace, newlines and comments, as allowed between the elements of an array. */
stm_err stm_tp_skip_ws_nl(s_parser *p)
{
    for (;;) {
        tp_skip_ws(p);
        if (p->cur < p->end && *p->cur == '#') {
            stm_err rc = stm_tp_comment(p);
            if (rc)
                return rc;
        }
        if (!tp_eat_newline(p))
            return STM_OK;
    }
}

/* ------------------------------------------------------------------ strings */

/* At a backslash in a basic string: decodes the escape into sbuf. */
static stm_err s_escape(s_parser *p)
{
    const char *at = p->cur;
    if (p->end - at < 2)
        return stm_tp_fail(p, at + 1, "unterminated string");
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
        stm_buf_putc(&p->sbuf, out);
        p->cur += 2;
        return STM_OK;
    }
    if (c != 'u' && c != 'U') {
        char buf[32];
        return stm_tp_fail(p, at, "invalid escape sequence: backslash followed by %s",
                           stm_tp_what(p, at + 1, buf, sizeof buf));
    }
    int ndigits = c == 'u' ? 4 : 8;
    uint32_t cp = 0;
    for (int i = 0; i < ndigits; i++) {
        const char *d = at + 2 + i;
        if (d >= p->end || !tp_isdigit_in(*d, 16)) {
            char buf[32];
            return stm_tp_fail(p, d, "invalid \\%c escape: expected %d hex digits, found %s", c,
                               ndigits, stm_tp_what(p, d, buf, sizeof buf));
        }
        cp = (cp << 4) | (uint32_t)tp_digit_value(*d);
    }
    if ((cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
        return stm_tp_fail(p, at, "invalid \\%c escape: %.*s is not a Unicode scalar value", c,
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
        stm_buf_append(&p->sbuf, seg, (size_t)(end - seg));
        *s = p->sbuf.data;
        *len = p->sbuf.len;
    } else {
        *s = seg;
        *len = (size_t)(end - seg);
    }
}

/* At a quote: any of the four kinds of string (multi-line ones only if multiline is
 * set). The result is lent: it points into the source or into sbuf. */
stm_err stm_tp_string(s_parser *p, bool multiline, const char **s, size_t *len)
{
    const char *open = p->cur;
    char q = *open;
    bool basic = q == '"';
    bool triple = p->end - open >= 3 && open[1] == q && open[2] == q;
    const char *where = basic ? (triple ? "a multi-line string" : "a string")
                              : (triple ? "a multi-line literal string" : "a literal string");
    bool copied = false;
    stm_err rc;
    stm_buf_reset(&p->sbuf);
    if (triple && !multiline)
        return stm_tp_fail(p, open, "a key cannot be a multi-line string");
    if (!triple) {
        const char *seg = ++p->cur;
        for (;;) {
            while (p->cur < p->end && toml_isplain((unsigned char)*p->cur) && *p->cur != q &&
                   *p->cur != '\\')
                p->cur++;
            if (p->cur >= p->end)
                return stm_tp_fail(p, p->cur, "%s opened at column %d is never closed", where,
                                   stm_tp_column(p, open));
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
                stm_buf_append(&p->sbuf, seg, (size_t)(p->cur - seg));
                copied = true;
                if ((rc = s_escape(p)))
                    return rc;
                seg = p->cur;
            } else if (c >= 0x80) {
                int n = stm_toml_utf8(p->cur, p->end, NULL);
                if (!n)
                    return s_bad_char(p, p->cur, where);
                p->cur += n;
            } else if (c == '\n' || c == '\r') {
                return stm_tp_fail(p, p->cur, "end of line in %s (no closing %c)", where, q);
            } else {
                return s_bad_char(p, p->cur, where);
            }
        }
    }
    int open_line = p->line, open_col = stm_tp_column(p, open);
    p->cur += 3;
    tp_eat_newline(p); /* a newline right after the opening delimiter is trimmed */
    const char *seg = p->cur;
    for (;;) {
        while (p->cur < p->end && toml_isplain((unsigned char)*p->cur) && *p->cur != q &&
               *p->cur != '\\')
            p->cur++;
        if (p->cur >= p->end)
            return stm_tp_fail(p, p->cur, "%s opened at line %d, column %d is never closed", where,
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
                return stm_tp_fail(p, run + 5, "too many %c after the end of %s", q, where);
            s_string_done(p, copied, seg, run + (n - 3), s, len);
            return STM_OK;
        }
        if (c == '\\' && basic) {
            stm_buf_append(&p->sbuf, seg, (size_t)(p->cur - seg));
            copied = true;
            const char *t = p->cur + 1;
            while (t < p->end && (*t == ' ' || *t == '\t'))
                t++;
            if (t < p->end && (*t == '\n' || (*t == '\r' && t + 1 < p->end && t[1] == '\n'))) {
                /* line-ending backslash: drop all whitespace and newlines up to the next
                 * character */
                p->cur = t;
                for (;;) {
                    tp_skip_ws(p);
                    if (!tp_eat_newline(p))
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
            tp_newline(p);
        } else if (c == '\r' && p->cur + 1 < p->end && p->cur[1] == '\n') {
            /* CRLF becomes LF */
            stm_buf_append(&p->sbuf, seg, (size_t)(p->cur - seg));
            stm_buf_putc(&p->sbuf, '\n');
            copied = true;
            p->cur += 2;
            tp_newline(p);
            seg = p->cur;
        } else if (c >= 0x80) {
            int n = stm_toml_utf8(p->cur, p->end, NULL);
            if (!n)
                return s_bad_char(p, p->cur, where);
            p->cur += n;
        } else {
            return s_bad_char(p, p->cur, where);
        }
    }
}

/* ------------------------------------------------------------------ keys */

/* A key: simple keys joined by dots, into p->parts; skips the whitespace after it. */
stm_err stm_tp_key(s_parser *p)
{
    p->nparts = 0;
    stm_buf_reset(&p->kbuf);
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
            stm_err rc = stm_tp_string(p, false, &s, &len);
            if (rc)
                return rc;
        } else {
            return stm_tp_expected(p, at, "a key");
        }
        p->parts = stm_grow(p->parts, &p->partcap, p->nparts + 1, sizeof *p->parts);
        p->parts[p->nparts++] = (s_keypart){p->kbuf.len, len, at};
        stm_buf_append(&p->kbuf, s, len);
        tp_skip_ws(p);
        if (p->cur >= p->end || *p->cur != '.')
            return STM_OK;
        p->cur++;
        tp_skip_ws(p);
    }
}
