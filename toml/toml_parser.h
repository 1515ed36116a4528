/* toml_parser.h - private to the parser's three files (toml/toml_lex.c, toml_scalar.c
 * and toml_parse.c): the parser's state and the functions they lend one another.
 * Nothing else includes it, not even toml.c or toml_emit.c, which know nothing of a
 * parse in progress; the value layout they all share stays in toml_internal.h.
 *
 * The parser is one single pass over the text split by what it reads: toml_lex.c the
 * characters (positions, messages, whitespace, comments, strings and keys),
 * toml_scalar.c numbers, dates and times, toml_parse.c the structure (key paths,
 * headers, arrays, inline tables, the document) and the rules for defining tables. Its
 * functions shared across those files are prefixed tp_; like the types here they are not
 * API and are not in toml.h. The few that run on nearly every byte, value or line are
 * inline here, so that the only call the split added to the hot path is the one to
 * stm_tp_number, and a parse runs no more instructions than it did in one file. */
#ifndef STM_TOML_PARSER_H
#define STM_TOML_PARSER_H

#include "toml/toml.h"
#include "toml/toml_internal.h"

#include "base/buf.h"
#include "base/error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

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
    int col_line;           /* stm_tp_column's cache: the line it is for, ... */
    const char *col_at;     /* ... a position on that line, ... */
    int col_n;              /* ... and the characters from line_start to col_at */
    unsigned sections;      /* sections opened so far (headers and inline tables) */
    unsigned section;       /* the section the document's key/value lines belong to */
    toml_value *root;       /* the tree being built, owned */
    toml_value *table;      /* where the current section's key/value lines go */
    buf_t sbuf;             /* scratch for decoding a string (or a long float's digits) */
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

/* ------------------------------------------------------------------ inline helpers */

/* A digit of the given base (2, 8, 10 or 16), and its value. */
static inline bool tp_isdigit_in(char c, int base)
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

static inline int tp_digit_value(char c)
{
    if (toml_isdigit(c))
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return c - 'A' + 10;
}

/* A new value of the given type in the document's arena (flagged S_ARENA). */
static inline toml_value *tp_pnew(s_parser *p, toml_type type)
{
    toml_value *v = stm_toml_arena_alloc(p->arena, sizeof *v);
    memset(v, 0, sizeof *v);
    v->type = (uint8_t)type;
    v->flags = S_ARENA;
    return v;
}

/* Skips spaces and tabs (not newlines). */
static inline void tp_skip_ws(s_parser *p)
{
    while (p->cur < p->end && (*p->cur == ' ' || *p->cur == '\t'))
        p->cur++;
}

/* ------------------------------------------------------------------ toml_lex.c */

/* The column (1-based, in characters) of at, which is on the cursor's line. */
int stm_tp_column(s_parser *p, const char *at);

/* Fails the parse with STM_EINPUT and "name:line:column: message" for the position at. */
STM_NODISCARD stm_err stm_tp_fail(s_parser *p, const char *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Describes the character at at for a message ("'x'", "end of line", ...); may write
 * into out (size bytes) and returns it or a constant. */
const char *stm_tp_what(const s_parser *p, const char *at, char *out, size_t size);

/* Fails with "expected <what>, found <the character at at>". */
STM_NODISCARD stm_err stm_tp_expected(s_parser *p, const char *at, const char *what);

/* At '#': skips the comment up to, not including, the end of the line. */
STM_NODISCARD stm_err stm_tp_comment(s_parser *p);

/* Whitespace, newlines and comments, as allowed between the elements of an array. */
STM_NODISCARD stm_err stm_tp_skip_ws_nl(s_parser *p);

/* At a quote: any of the four kinds of string (multi-line ones only if multiline is
 * set). The result is lent: it points into the source or into sbuf, and lasts until the
 * next string, key or number is read. */
STM_NODISCARD stm_err stm_tp_string(s_parser *p, bool multiline, const char **s, size_t *len);

/* A key: simple keys joined by dots, into p->parts and p->kbuf; skips the whitespace
 * after it. */
STM_NODISCARD stm_err stm_tp_key(s_parser *p);

/* ------------------------------------------------------------------ line ends */

/* The lexer's, but inline: the structure asks for one at the end of every line, where a
 * call cost up to 1% more instructions on a document of short lines. They are bound by
 * toml_lex.c's invariant 1 like the rest of the lexer. */

/* The cursor has just passed a newline: it is now on the next line. */
static inline void tp_newline(s_parser *p)
{
    p->line++;
    p->line_start = p->cur;
}

/* Consumes a newline (LF or CRLF) at the cursor if there is one. */
static inline bool tp_eat_newline(s_parser *p)
{
    if (p->cur < p->end && *p->cur == '\n') {
        p->cur++;
    } else if (p->end - p->cur >= 2 && p->cur[0] == '\r' && p->cur[1] == '\n') {
        p->cur += 2;
    } else {
        return false;
    }
    tp_newline(p);
    return true;
}

/* After a key/value pair or a header: whitespace, maybe a comment, then a newline or
 * the end of the document. */
static inline stm_err tp_eol(s_parser *p)
{
    tp_skip_ws(p);
    if (p->cur < p->end && *p->cur == '#') {
        stm_err rc = stm_tp_comment(p);
        if (rc)
            return rc;
    }
    if (p->cur >= p->end || tp_eat_newline(p))
        return STM_OK;
    return stm_tp_expected(p, p->cur, "end of line");
}

/* ------------------------------------------------------------------ toml_scalar.c */

/* At a digit, a sign, 'i' or 'n': an integer, a float, or (by its shape) a date or time,
 * into *out (in the arena; line and column are the caller's to set). */
STM_NODISCARD stm_err stm_tp_number(s_parser *p, toml_value **out);

#endif
