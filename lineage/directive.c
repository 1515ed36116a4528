#include "directive.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define S_KNOWN "keys per-device, keys shared"

const char *stm_directive_keys_name(directive_keys k)
{
    switch (k) {
    case DIRECTIVE_KEYS_PER_DEVICE:
        return "per-device";
    case DIRECTIVE_KEYS_SHARED:
        return "shared";
    case DIRECTIVE_KEYS_DEFAULT:
        break;
    }
    return NULL;
}

bool stm_directive_keys_parse(const char *name, directive_keys *out)
{
    if (strcmp(name, "per-device") == 0)
        *out = DIRECTIVE_KEYS_PER_DEVICE;
    else if (strcmp(name, "shared") == 0)
        *out = DIRECTIVE_KEYS_SHARED;
    else
        return false;
    return true;
}

/* One "stemma:" comment found by s_scan: its words (from just after "stemma:" to the
 * comment's end), whether it sits inside a CREATE TABLE's parentheses, and where. */
typedef struct {
    const char *words;
    size_t len;
    bool in_create_table;
    int statement;  /* which statement of the text (0, 1, ...) it is in */
    const char *at; /* the comment's first byte */
} s_found;

typedef bool (*s_visit)(const s_found *f, void *ctx); /* false stops the scan */

static bool s_word_is(const char *p, const char *end, const char *word)
{
    size_t n = strlen(word);
    return (size_t)(end - p) == n && strncasecmp(p, word, n) == 0;
}

/* Looks at a comment's body [p, end): calls visit when it starts with "stemma:". */
static bool s_comment(const char *p, const char *end, const char *at, bool in_create_table,
                      int statement, s_visit visit, void *ctx)
{
    while (p < end && isspace((unsigned char)*p))
        p++;
    if ((size_t)(end - p) < 7 || strncasecmp(p, "stemma:", 7) != 0)
        return true;
    s_found f = {p + 7, (size_t)(end - p - 7), in_create_table, statement, at};
    return visit(&f, ctx);
}

/* Walks SQL text as SQLite's tokenizer would for what matters here: quoted strings and
 * names (no comment inside them), comments, parentheses and the statements' first
 * words (CREATE [TEMP|TEMPORARY] TABLE). A ';' inside a trigger's body ends a
 * "statement" early; what follows is no CREATE TABLE, which is all that counts. */
static void s_scan(const char *text, s_visit visit, void *ctx)
{
    const char *p = text;
    int depth = 0, words = 0, statement = 0; /* parentheses open; words seen in this
                                                * statement; statements ended */
    bool create = false, table = false;
    while (*p) {
        char c = *p;
        if (c == '-' && p[1] == '-') {
            const char *end = strchr(p, '\n');
            if (!end)
                end = p + strlen(p);
            if (!s_comment(p + 2, end, p, table && depth > 0, statement, visit, ctx))
                return;
            p = end;
        } else if (c == '/' && p[1] == '*') {
            const char *end = strstr(p + 2, "*/");
            const char *body_end = end ? end : p + strlen(p);
            if (!s_comment(p + 2, body_end, p, table && depth > 0, statement, visit, ctx))
                return;
            p = end ? end + 2 : body_end;
        } else if (c == '\'' || c == '"' || c == '`' || c == '[') {
            char close = c == '[' ? ']' : c;
            p++;
            while (*p && !(*p == close && (close == ']' || p[1] != close)))
                p += *p == close ? 2 : 1; /* a doubled quote stands for itself */
            if (*p)
                p++;
            words++;
        } else if (c == '(') {
            depth++, p++;
        } else if (c == ')') {
            depth -= depth > 0, p++;
        } else if (c == ';') {
            depth = 0, words = 0, create = table = false, statement++, p++;
        } else if (isalpha((unsigned char)c) || c == '_') {
            const char *w = p;
            while (isalnum((unsigned char)*p) || *p == '_' || *p == '$')
                p++;
            if (words == 0)
                create = s_word_is(w, p, "CREATE");
            else if (create && !table && words <= 2)
                table = s_word_is(w, p, "TABLE");
            if (create && words == 1 && !table && !s_word_is(w, p, "TEMP") &&
                !s_word_is(w, p, "TEMPORARY"))
                create = false;
            /* CREATE TABLE ... AS SELECT: SQLite records a text of its own making
             * (CREATE TABLE t(a,b)), no comment of the statement's. */
            if (table && depth == 0 && s_word_is(w, p, "AS"))
                table = false;
            words++;
        } else {
            p++;
        }
    }
}

/* Parses one comment's words into *keys; false with why[] when it says nothing known. */
static bool s_parse(const s_found *f, directive_keys *keys, char *why, size_t whylen)
{
    char text[128];
    size_t n = f->len < sizeof text - 1 ? f->len : sizeof text - 1;
    memcpy(text, f->words, n);
    text[n] = '\0';
    while (n && isspace((unsigned char)text[n - 1]))
        text[--n] = '\0';
    char *save = NULL;
    const char *what = strtok_r(text, " \t\r\n", &save);
    const char *value = what ? strtok_r(NULL, " \t\r\n", &save) : NULL;
    const char *extra = value ? strtok_r(NULL, " \t\r\n", &save) : NULL;
    char lower[32] = "";
    for (size_t i = 0; value && value[i] && i + 1 < sizeof lower; i++)
        lower[i] = (char)tolower((unsigned char)value[i]);
    if (what && strcasecmp(what, "keys") == 0 && value && !extra &&
        stm_directive_keys_parse(lower, keys))
        return true;
    const char *w = f->words;
    size_t wlen = f->len;
    while (wlen && isspace((unsigned char)*w))
        w++, wlen--;
    while (wlen && isspace((unsigned char)w[wlen - 1]))
        wlen--;
    snprintf(why, whylen, "unknown stemma setting '%.*s' (stemma knows: " S_KNOWN ")",
             (int)(wlen > 60 ? 60 : wlen), w);
    for (char *q = why; *q; q++)
        if (*q == '\n' || *q == '\r')
            *q = ' ';
    return false;
}

typedef struct {
    directive_keys keys;
    char why[256];
    const char *bad; /* the comment that is wrong, or NULL */
} s_reading;

static bool s_read_one(const s_found *f, void *ctx)
{
    s_reading *r = ctx;
    directive_keys k = DIRECTIVE_KEYS_DEFAULT;
    if (!s_parse(f, &k, r->why, sizeof r->why)) {
        r->bad = f->at;
        return false;
    }
    if (r->keys != DIRECTIVE_KEYS_DEFAULT && r->keys != k) {
        snprintf(r->why, sizeof r->why, "its stemma settings disagree: keys %s, then keys %s",
                 stm_directive_keys_name(r->keys), stm_directive_keys_name(k));
        r->bad = f->at;
        return false;
    }
    r->keys = k;
    return true;
}

stm_err stm_directive_read(const char *sql, const char *table, directive_keys *keys,
                           stm_error *err)
{
    *keys = DIRECTIVE_KEYS_DEFAULT;
    if (!sql)
        return STM_OK;
    s_reading r = {0};
    s_scan(sql, s_read_one, &r);
    if (r.bad)
        return stm_error_set(err, STM_EINPUT, "table %s: %s", table, r.why);
    *keys = r.keys;
    return STM_OK;
}

typedef struct {
    s_reading reading; /* of the statement the last comment was in */
    int statement;
} s_checking;

static bool s_check_one(const s_found *f, void *ctx)
{
    s_checking *c = ctx;
    if (!f->in_create_table) {
        snprintf(c->reading.why, sizeof c->reading.why,
                 "a stemma setting goes inside the parentheses of a CREATE TABLE, where SQLite "
                 "keeps it (CREATE TABLE t ( -- stemma: keys per-device ...); here SQLite "
                 "would drop it");
        c->reading.bad = f->at;
        return false;
    }
    if (f->statement != c->statement) /* another table's settings begin */
        c->reading.keys = DIRECTIVE_KEYS_DEFAULT;
    c->statement = f->statement;
    return s_read_one(f, &c->reading);
}

static int s_line_of(const char *text, const char *pos)
{
    int line = 1;
    for (const char *p = text; p < pos; p++)
        line += *p == '\n';
    return line;
}

stm_err stm_directive_check_script(const char *file, const char *text, stm_error *err)
{
    s_checking c = {{0}, 0};
    s_scan(text, s_check_one, &c);
    if (c.reading.bad)
        return stm_error_set(err, STM_EINPUT, "%s:%d: %s", file, s_line_of(text, c.reading.bad),
                             c.reading.why);
    return STM_OK;
}
