/* toml_parse.c - TOML 1.0: the parser's structure, and its entry points stm_toml_parse and
 * stm_toml_parse_file. This file reads what a document is made of (key/value lines and their
 * dotted key paths, [table] and [[array of tables]] headers, array values and inline
 * tables) and applies the rules for which table may be defined or extended by what. The
 * characters, strings and keys it reads come from toml_lex.c, numbers, dates and times
 * from toml_scalar.c; toml_parser.h holds the state the three share.
 *
 * The parser walks the text once with a cursor. Nothing is allocated per character:
 * strings and keys are decoded into scratch buffers that live as long as the parse
 * (toml_lex.c), and the values, keys and string bytes of the tree come from a bump arena
 * owned by the root, so the heap is only asked for the growing entry and element arrays
 * of tables and arrays.
 *
 * Invariants of the tree while parsing:
 *  1. Every value hangs from exactly one table entry or array slot under the parser's
 *     root, except the one value under construction, which the function building it
 *     frees before returning an error. So one stm_toml_destroy of the root cleans up after
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
 *  6. Every table and array has depth <= TOML_MAX_DEPTH (the root has depth 0), so the
 *     recursive parse, emit, compare and destroy run in a small, fixed stack.
 * (That a big table has a hash index is the tree's own invariant, kept in toml.c.)
 */
#include "toml/toml.h"
#include "toml/toml_parser.h"

#include "base/buf.h"
#include "base/mem.h"
#include "base/readfile.h"

#include <assert.h>
#include <locale.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ building and naming */

static char *s_pstrdup(s_parser *p, const char *s, size_t len)
{
    char *d = stm_toml_arena_alloc(p->arena, len + 1);
    if (len)
        memcpy(d, s, len);
    d[len] = '\0';
    return d;
}

/* Counts one more value or header: what a document costs once parsed is bounded by
 * the count, not only by its bytes. */
static stm_err s_count_value(s_parser *p, const char *at)
{
    if (++p->nvalues > TOML_MAX_VALUES)
        return stm_tp_fail(p, at, "more than %d values and headers in one document",
                           TOML_MAX_VALUES);
    return STM_OK;
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

/* ------------------------------------------------------------------ key paths and headers */

static s_entry *s_find_part(const s_parser *p, const toml_value *t, size_t i, uint32_t *hash)
{
    const s_keypart *k = &p->parts[i];
    *hash = toml_hash(p->kbuf.data + k->off, k->len);
    return stm_toml_find(t, p->kbuf.data + k->off, k->len, *hash);
}

/* Makes a table under t for key part i. */
static stm_err s_new_table(s_parser *p, toml_value *t, size_t i, uint32_t hash, unsigned flags,
                           const char *at, toml_value **out)
{
    if (t->depth >= TOML_MAX_DEPTH)
        return stm_tp_fail(p, p->parts[i].at, "tables nest deeper than %d levels", TOML_MAX_DEPTH);
    const s_keypart *k = &p->parts[i];
    toml_value *v = tp_pnew(p, TOML_TABLE);
    v->flags |= (uint8_t)flags;
    v->depth = (uint16_t)(t->depth + 1);
    v->line = p->line;
    v->column = stm_tp_column(p, at);
    stm_toml_append(t, s_pstrdup(p, p->kbuf.data + k->off, k->len), k->len, true, hash, v);
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
    stm_err rc = stm_tp_key(p);
    if (rc)
        return rc;
    if (p->cur >= p->end || *p->cur != '=')
        return stm_tp_expected(p, p->cur, "'=' after the key");
    p->cur++;
    tp_skip_ws(p);
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
            return stm_tp_fail(p, p->parts[i].at, "'%s' is %s %s (line %d), not a table",
                               s_keyname(p, prefix, i + 1, name, sizeof name), s_a(v->type),
                               stm_toml_type_name(v->type), v->line);
        if (v->flags & S_INLINE)
            return stm_tp_fail(p, p->parts[i].at,
                               "'%s' is an inline table (line %d), which cannot be extended",
                               s_keyname(p, prefix, i + 1, name, sizeof name), v->line);
        if ((v->flags & S_HEADER) || ((v->flags & S_DOTTED) && v->section != section))
            return stm_tp_fail(
                p, p->parts[i].at,
                "table '%s' is already defined (line %d); dotted keys cannot add to it",
                s_keyname(p, prefix, i + 1, name, sizeof name), v->line);
        v->flags |= S_DOTTED;
        v->section = section;
        t = v;
    }
    const s_keypart *last = &p->parts[p->nparts - 1];
    s_entry *e = s_find_part(p, t, p->nparts - 1, &hash);
    if (e)
        return stm_tp_fail(p, last->at, "duplicate key '%s' (first defined at line %d)",
                           s_keyname(p, prefix, p->nparts, name, sizeof name), e->val->line);
    size_t len = last->len;
    char *key = s_pstrdup(p, p->kbuf.data + last->off, len);
    toml_value *v;
    if ((rc = s_value(p, t->depth + 1, &v)))
        return rc;
    stm_toml_append(t, key, len, true, hash, v);
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
    tp_skip_ws(p);
    stm_err rc = stm_tp_key(p);
    if (rc)
        return rc;
    if (p->cur >= p->end || *p->cur != ']')
        return stm_tp_expected(p, p->cur,
                               aot ? "']]' after the table name" : "']' after the table name");
    p->cur++;
    if (aot) {
        if (p->cur >= p->end || *p->cur != ']')
            return stm_tp_expected(p, p->cur, "']]' after the table name");
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
            return stm_tp_fail(p, p->parts[i].at,
                               "'%s' is an inline table (line %d), which cannot be extended",
                               s_keyname(p, prefix, i + 1, name, sizeof name), v->line);
        } else if (v->type == TOML_ARRAY) {
            return stm_tp_fail(p, p->parts[i].at,
                               "'%s' is an array value (line %d), which cannot be extended",
                               s_keyname(p, prefix, i + 1, name, sizeof name), v->line);
        } else {
            return stm_tp_fail(p, p->parts[i].at, "'%s' is %s %s (line %d), not a table",
                               s_keyname(p, prefix, i + 1, name, sizeof name), s_a(v->type),
                               stm_toml_type_name(v->type), v->line);
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
            v->column = stm_tp_column(p, open);
            t = v;
        } else if (v->type == TOML_TABLE) {
            return stm_tp_fail(p, at, "table '%s' is already defined (line %d)", name, v->line);
        } else {
            return stm_tp_fail(p, at, "'%s' is already defined as %s %s (line %d)", name,
                               s_a(v->type), stm_toml_type_name(v->type), v->line);
        }
    } else {
        toml_value *a = v;
        if (!a) {
            if (t->depth + 1 >= TOML_MAX_DEPTH)
                return stm_tp_fail(p, at, "tables nest deeper than %d levels", TOML_MAX_DEPTH);
            a = tp_pnew(p, TOML_ARRAY);
            a->flags |= S_AOT;
            a->depth = (uint16_t)(t->depth + 1);
            a->line = p->line;
            a->column = stm_tp_column(p, open);
            const s_keypart *k = &p->parts[li];
            stm_toml_append(t, s_pstrdup(p, p->kbuf.data + k->off, k->len), k->len, true, hash, a);
        } else if (a->type != TOML_ARRAY) {
            return stm_tp_fail(p, at, "'%s' is already defined as %s %s (line %d)", name,
                               s_a(a->type), stm_toml_type_name(a->type), a->line);
        } else if (!(a->flags & S_AOT)) {
            return stm_tp_fail(p, at, "'%s' is an array value (line %d), which cannot be extended",
                               name, a->line);
        }
        t = tp_pnew(p, TOML_TABLE);
        t->flags |= S_HEADER;
        t->depth = (uint16_t)(a->depth + 1);
        t->line = p->line;
        t->column = stm_tp_column(p, open);
        stm_toml_push(a, t);
    }
    p->table = t;
    p->section = ++p->sections;
    s_keyname(p, NULL, p->nparts, p->secname, sizeof p->secname);
    return STM_OK;
}

/* ------------------------------------------------------------------ arrays and inline tables */

/* At '[': an array value of the given depth. */
static stm_err s_array(s_parser *p, int depth, toml_value **out)
{
    if (depth > TOML_MAX_DEPTH)
        return stm_tp_fail(p, p->cur, "arrays and tables nest deeper than %d levels",
                           TOML_MAX_DEPTH);
    toml_value *a = tp_pnew(p, TOML_ARRAY);
    a->flags |= S_INLINE;
    a->depth = (uint16_t)depth;
    stm_err rc;
    p->cur++;
    for (;;) {
        if ((rc = stm_tp_skip_ws_nl(p)))
            goto fail;
        if (p->cur < p->end && *p->cur == ']')
            break;
        toml_value *v;
        if ((rc = s_value(p, depth + 1, &v)))
            goto fail;
        stm_toml_push(a, v);
        if ((rc = stm_tp_skip_ws_nl(p)))
            goto fail;
        if (p->cur < p->end && *p->cur == ',') {
            p->cur++;
            continue;
        }
        if (p->cur < p->end && *p->cur == ']')
            break;
        rc = stm_tp_expected(p, p->cur, "',' or ']' in the array");
        goto fail;
    }
    p->cur++;
    *out = a;
    return STM_OK;
fail:
    stm_toml_free(a);
    return rc;
}

/* At '{': an inline table of the given depth. */
static stm_err s_inline_table(s_parser *p, int depth, toml_value **out)
{
    if (depth > TOML_MAX_DEPTH)
        return stm_tp_fail(p, p->cur, "arrays and tables nest deeper than %d levels",
                           TOML_MAX_DEPTH);
    toml_value *t = tp_pnew(p, TOML_TABLE);
    t->depth = (uint16_t)depth;
    unsigned section = ++p->sections;
    stm_err rc;
    p->cur++;
    tp_skip_ws(p);
    if (p->cur < p->end && *p->cur == '}') {
        p->cur++;
        t->flags |= S_INLINE;
        *out = t;
        return STM_OK;
    }
    for (;;) {
        if ((rc = s_keyval(p, t, section, NULL)))
            goto fail;
        tp_skip_ws(p);
        if (p->cur < p->end && *p->cur == '}')
            break;
        if (p->cur >= p->end || *p->cur != ',') {
            rc = stm_tp_expected(p, p->cur, "',' or '}' in the inline table");
            goto fail;
        }
        p->cur++;
        tp_skip_ws(p);
        if (p->cur < p->end && *p->cur == '}') {
            rc = stm_tp_fail(p, p->cur, "trailing comma in an inline table");
            goto fail;
        }
    }
    p->cur++;
    t->flags |= S_INLINE;
    *out = t;
    return STM_OK;
fail:
    stm_toml_free(t);
    return rc;
}

/* ------------------------------------------------------------------ values and the document */

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
        return stm_tp_expected(p, at, "a value");
    stm_err counted = s_count_value(p, at);
    if (counted)
        return counted;
    int line = p->line, col = stm_tp_column(p, at);
    toml_value *v = NULL;
    stm_err rc = STM_OK;
    switch (*at) {
    case '"':
    case '\'': {
        const char *s;
        size_t len;
        if (!(rc = stm_tp_string(p, true, &s, &len))) {
            v = tp_pnew(p, TOML_STRING);
            v->u.str.s = s_pstrdup(p, s, len);
            v->u.str.len = len;
        }
        break;
    }
    case 't':
    case 'f':
        if (s_match(p, "true") || s_match(p, "false")) {
            v = tp_pnew(p, TOML_BOOL);
            v->u.b = *at == 't';
        } else
            rc = stm_tp_fail(p, at, "invalid value (booleans are true and false, in lower case)");
        break;
    case '[':
        rc = s_array(p, depth, &v);
        break;
    case '{':
        rc = s_inline_table(p, depth, &v);
        break;
    default:
        if (toml_isdigit(*at) || *at == '+' || *at == '-' || *at == 'i' || *at == 'n')
            rc = stm_tp_number(p, &v);
        else
            rc = stm_tp_expected(p, at, "a value");
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
        tp_skip_ws(p);
        if (p->cur >= p->end)
            return STM_OK;
        char c = *p->cur;
        stm_err rc = STM_OK;
        if (c == '[')
            rc = s_header(p);
        else if (c != '#' && c != '\n' && c != '\r')
            rc = s_keyval(p, p->table, p->section, p->secname);
        if (rc || (rc = tp_eol(p)))
            return rc;
    }
}

stm_err stm_toml_parse(const char *text, size_t len, const char *name, toml_value **root,
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
    stm_buf_free(&p.sbuf);
    stm_buf_free(&p.kbuf);
    free(p.parts);
    if (rc) {
        stm_toml_destroy(&p.root);
        return rc;
    }
    *root = p.root;
    return STM_OK;
}

stm_err stm_toml_parse_file(const char *path, toml_value **root, stm_error *err)
{
    assert(path && root);
    char *data;
    size_t len;
    stm_err rc = stm_readfile_all(path, TOML_MAX_INPUT, &data, &len, err);
    if (rc != STM_OK)
        return rc;
    rc = stm_toml_parse(data, len, path, root, err);
    free(data);
    return rc;
}
