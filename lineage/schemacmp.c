/* schemacmp.c - two schemas compared as SQLite reports them (schemacmp.h). */
#include "schemacmp.h"
#include "base/mem.h"
#include "family.h"
#include "syncable.h"

#include <stdlib.h>
#include <string.h>

/* An index, constraint, trigger or view. */
typedef struct {
    schemacmp_kind kind; /* INDEX, UNIQUE, FKEY, TRIGGER or VIEW: the order they are told in */
    char *table; /* the table it belongs to, NULL for a view */
    char *key;  /* what identifies it, compared without case: its name, or for a UNIQUE
                 * constraint or a foreign key, what it covers (then the same as what) */
    char *what; /* how a message names it */
    char *sig;  /* its definition, compared exactly (folded already); NULL: key says all */
    char *show; /* its definition in words, NULL when words would not help */
} s_object;

struct schemacmp {
    catalog_t *catalog;           /* the tables read, NULL for a lineage's */
    const lineage_t *lineage;     /* a lineage's: the tables it ever had; NULL for one read */
    const catalog_table **tables; /* stemma's own left out, in order of folded name;
                                   * lent by catalog or by the lineage */
    size_t ntables;               /* entries in tables */
    char **virtuals;              /* the virtual tables' names, in order of folded name */
    size_t nvirtual;              /* entries in virtuals */
    bool objects;                 /* read from a database: objs is filled */
    s_object *objs;               /* in order of kind, then of folded key */
    size_t nobjs;                 /* entries in objs */
};

static void s_add_table(schemacmp_t *s, size_t *cap, const catalog_table *t)
{
    if (stm_syncable_is_own(stm_catalog_table_name(t)))
        return;
    s->tables = stm_grow(s->tables, cap, s->ntables + 1, sizeof *s->tables);
    s->tables[s->ntables++] = t;
}

static void s_add_virtual(schemacmp_t *s, size_t *cap, const char *name)
{
    s->virtuals = stm_grow(s->virtuals, cap, s->nvirtual + 1, sizeof *s->virtuals);
    s->virtuals[s->nvirtual++] = stm_strdup(name);
}

void stm_schemacmp_destroy(schemacmp_t **self_p)
{
    schemacmp_t *s = *self_p;
    if (!s)
        return;
    stm_catalog_destroy(&s->catalog);
    free(s->tables);
    for (size_t i = 0; i < s->nvirtual; i++)
        free(s->virtuals[i]);
    free(s->virtuals);
    for (size_t i = 0; i < s->nobjs; i++) {
        free(s->objs[i].table);
        free(s->objs[i].key);
        free(s->objs[i].what);
        free(s->objs[i].sig);
        free(s->objs[i].show);
    }
    free(s->objs);
    free(s);
    *self_p = NULL;
}

schemacmp_t *stm_schemacmp_of_lineage(const lineage_t *l, int version)
{
    schemacmp_t *s = stm_calloc(1, sizeof *s);
    s->lineage = l;
    size_t cap = 0, vcap = 0;
    for (size_t i = 0; i < stm_lineage_family_count(l); i++) {
        const catalog_table *t = stm_family_table_at(stm_lineage_family_at(l, i), version);
        if (t)
            s_add_table(s, &cap, t);
    }
    for (size_t i = 0; i < stm_lineage_virtual_count(l); i++) {
        const lineage_virtual *v = stm_lineage_virtual_at(l, i);
        if (stm_lineage_virtual_live(v, version))
            s_add_virtual(s, &vcap, v->name);
    }
    return s;
}

/* ---- reading a database ---- */

/* Appends sql to out with ASCII case folded, comments removed and whitespace kept
 * (as one space) only between two word characters, outside quotes. */
static void s_fold_sql(buf_t *out, const char *sql)
{
    bool space = false, word = false; /* whitespace pending; the last kept was a word's */
    const char *p = sql;
    while (*p) {
        char c = *p;
        if (c == '-' && p[1] == '-') {
            while (*p && *p != '\n')
                p++;
            space = true;
            continue;
        }
        if (c == '/' && p[1] == '*') {
            const char *end = strstr(p + 2, "*/");
            p = end ? end + 2 : p + strlen(p);
            space = true;
            continue;
        }
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v') {
            space = true;
            p++;
            continue;
        }
        bool w = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '_' || c == '$' || (unsigned char)c >= 0x80;
        if (space && word && w)
            stm_buf_putc(out, ' ');
        space = false;
        if (c == '\'' || c == '"' || c == '`' || c == '[') {
            char close = c == '[' ? ']' : c;
            stm_buf_putc(out, *p++);
            while (*p) {
                char q = *p++;
                stm_buf_putc(out, q);
                if (q != close)
                    continue;
                if (close != ']' && *p == close) { /* a doubled quote stays inside */
                    stm_buf_putc(out, *p++);
                    continue;
                }
                break;
            }
            word = false;
            continue;
        }
        stm_buf_putc(out, c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c);
        word = w;
        p++;
    }
}

static char *s_folded(const char *sql)
{
    buf_t b = BUF_INIT;
    s_fold_sql(&b, sql ? sql : "");
    return stm_buf_detach(&b);
}

/* Adds an object; takes the strings but table, which is copied. */
static void s_add_object(schemacmp_t *s, size_t *cap, schemacmp_kind kind, const char *table,
                         char *key, char *what, char *sig, char *show)
{
    s->objs = stm_grow(s->objs, cap, s->nobjs + 1, sizeof *s->objs);
    s->objs[s->nobjs++] = (s_object){kind, table ? stm_strdup(table) : NULL, key, what, sig, show};
}

/* Statements prepared once for every table read. */
typedef struct {
    sqlite3_stmt *indexes; /* ?1's indexes, with their text */
    sqlite3_stmt *columns; /* an index's key columns */
    sqlite3_stmt *fkeys;   /* ?1's foreign keys */
} s_stmts;

/* Appends an index's key columns, "(a, b DESC, <expression>)", to b. */
static stm_err s_index_columns(sqlite3 *db, sqlite3_stmt *q, const char *index, buf_t *b,
                               bool *expression, stm_error *err)
{
    sqlite3_reset(q);
    sqlite3_bind_text(q, 1, index, -1, SQLITE_TRANSIENT);
    stm_buf_putc(b, '(');
    int step, n = 0;
    while ((step = sqlite3_step(q)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(q, 1);
        const char *coll = (const char *)sqlite3_column_text(q, 3);
        if (n++)
            stm_buf_puts(b, ", ");
        if (sqlite3_column_int(q, 0) == -2) {
            stm_buf_puts(b, "<expression>");
            *expression = true;
        } else {
            stm_buf_puts(b, name ? name : "rowid");
        }
        if (sqlite3_column_int(q, 2))
            stm_buf_puts(b, " DESC");
        if (coll && sqlite3_stricmp(coll, "BINARY") != 0)
            stm_buf_printf(b, " COLLATE %s", coll);
    }
    stm_buf_putc(b, ')');
    return step == SQLITE_DONE ? STM_OK
                               : stm_error_db(err, db, NULL, "reading index %s", index);
}

/* Reads table's indexes and UNIQUE constraints (the primary key's index is the
 * columns' key role, compared with them). */
static stm_err s_read_indexes(schemacmp_t *s, size_t *cap, sqlite3 *db, s_stmts *st,
                              const char *table, stm_error *err)
{
    sqlite3_reset(st->indexes);
    sqlite3_bind_text(st->indexes, 1, table, -1, SQLITE_TRANSIENT);
    int step = SQLITE_DONE;
    stm_err rc = STM_OK;
    while (rc == STM_OK && (step = sqlite3_step(st->indexes)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st->indexes, 0);
        bool unique = sqlite3_column_int(st->indexes, 1) != 0;
        const char *origin = (const char *)sqlite3_column_text(st->indexes, 2);
        bool partial = sqlite3_column_int(st->indexes, 3) != 0;
        const char *sql = (const char *)sqlite3_column_text(st->indexes, 4);
        if (!name || !origin || strcmp(origin, "pk") == 0)
            continue;
        buf_t cols = BUF_INIT;
        bool expression = false;
        rc = s_index_columns(db, st->columns, name, &cols, &expression, err);
        buf_t what = BUF_INIT, show = BUF_INIT;
        if (rc == STM_OK && strcmp(origin, "u") == 0) {
            stm_buf_printf(&what, "the UNIQUE constraint on %s %s", table, stm_buf_str(&cols));
            char *key = stm_strdup(stm_buf_str(&what)); /* before what is detached */
            s_add_object(s, cap, SCHEMACMP_UNIQUE, table, key, stm_buf_detach(&what), NULL, NULL);
        } else if (rc == STM_OK) {
            stm_buf_printf(&what, "index %s", name);
            stm_buf_printf(&show, "%son %s %s%s", unique ? "UNIQUE " : "", table,
                           stm_buf_str(&cols), partial ? " WHERE ..." : "");
            buf_t sig = BUF_INIT;
            s_fold_sql(&sig, stm_buf_str(&show));
            /* Words cannot show an expression or a WHERE clause: the text is compared. */
            if (expression || partial) {
                stm_buf_putc(&sig, '|');
                s_fold_sql(&sig, sql ? sql : "");
            }
            s_add_object(s, cap, SCHEMACMP_INDEX, table, stm_strdup(name), stm_buf_detach(&what),
                         stm_buf_detach(&sig), stm_buf_detach(&show));
        }
        stm_buf_free(&what);
        stm_buf_free(&show);
        stm_buf_free(&cols);
    }
    if (rc == STM_OK && step != SQLITE_DONE)
        rc = stm_error_db(err, db, NULL, "reading the indexes of %s", table);
    return rc;
}

/* Appends one foreign key, "(a, b) REFERENCES p (x, y) ON DELETE CASCADE", read from
 * its first row on; returns the step after its last. */
static int s_fkey_text(sqlite3_stmt *q, const char *table, buf_t *what)
{
    int id = sqlite3_column_int(q, 0);
    const char *parent = (const char *)sqlite3_column_text(q, 1);
    buf_t from = BUF_INIT, to = BUF_INIT, tail = BUF_INIT;
    stm_buf_printf(&tail, "%s", parent ? parent : "");
    const char *on_update = (const char *)sqlite3_column_text(q, 4);
    const char *on_delete = (const char *)sqlite3_column_text(q, 5);
    const char *match = (const char *)sqlite3_column_text(q, 6);
    buf_t actions = BUF_INIT;
    if (on_update && strcmp(on_update, "NO ACTION") != 0)
        stm_buf_printf(&actions, " ON UPDATE %s", on_update);
    if (on_delete && strcmp(on_delete, "NO ACTION") != 0)
        stm_buf_printf(&actions, " ON DELETE %s", on_delete);
    if (match && strcmp(match, "NONE") != 0)
        stm_buf_printf(&actions, " MATCH %s", match);
    bool any_to = false;
    int step = SQLITE_ROW;
    for (int n = 0; step == SQLITE_ROW && sqlite3_column_int(q, 0) == id; n++) {
        const char *f = (const char *)sqlite3_column_text(q, 2);
        const char *t = (const char *)sqlite3_column_text(q, 3);
        stm_buf_printf(&from, "%s%s", n ? ", " : "", f ? f : "");
        stm_buf_printf(&to, "%s%s", n ? ", " : "", t ? t : "");
        any_to |= t != NULL;
        step = sqlite3_step(q);
    }
    stm_buf_printf(what, "the foreign key %s (%s) REFERENCES %s", table, stm_buf_str(&from),
                   stm_buf_str(&tail));
    if (any_to)
        stm_buf_printf(what, " (%s)", stm_buf_str(&to));
    stm_buf_puts(what, stm_buf_str(&actions));
    stm_buf_free(&from);
    stm_buf_free(&to);
    stm_buf_free(&tail);
    stm_buf_free(&actions);
    return step;
}

static stm_err s_read_fkeys(schemacmp_t *s, size_t *cap, sqlite3 *db, sqlite3_stmt *q,
                            const char *table, stm_error *err)
{
    sqlite3_reset(q);
    sqlite3_bind_text(q, 1, table, -1, SQLITE_TRANSIENT);
    int step = sqlite3_step(q);
    while (step == SQLITE_ROW) {
        buf_t what = BUF_INIT;
        step = s_fkey_text(q, table, &what);
        char *key = stm_strdup(stm_buf_str(&what)); /* before what is detached */
        s_add_object(s, cap, SCHEMACMP_FKEY, table, key, stm_buf_detach(&what), NULL, NULL);
    }
    return step == SQLITE_DONE ? STM_OK
                               : stm_error_db(err, db, NULL, "reading the foreign keys of %s",
                                              table);
}

/* Reads the triggers and views, but stemma's own. */
static stm_err s_read_texts(schemacmp_t *s, size_t *cap, sqlite3 *db, stm_error *err)
{
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(db,
                           "SELECT type, name, tbl_name, sql FROM main.sqlite_schema "
                           "WHERE type IN ('trigger', 'view')",
                           -1, &q, NULL) != SQLITE_OK)
        return stm_error_db(err, db, NULL, "reading the triggers and views");
    int step;
    while ((step = sqlite3_step(q)) == SQLITE_ROW) {
        bool trigger = strcmp((const char *)sqlite3_column_text(q, 0), "trigger") == 0;
        const char *name = (const char *)sqlite3_column_text(q, 1);
        const char *table = (const char *)sqlite3_column_text(q, 2);
        if (!name || stm_syncable_is_own(name) || (table && stm_syncable_is_own(table)))
            continue;
        buf_t what = BUF_INIT;
        stm_buf_printf(&what, "%s %s", trigger ? "trigger" : "view", name);
        s_add_object(s, cap, trigger ? SCHEMACMP_TRIGGER : SCHEMACMP_VIEW,
                     trigger ? table : NULL, stm_strdup(name),
                     stm_buf_detach(&what), s_folded((const char *)sqlite3_column_text(q, 3)),
                     NULL);
    }
    sqlite3_finalize(q);
    return step == SQLITE_DONE ? STM_OK
                               : stm_error_db(err, db, NULL, "reading the triggers and views");
}

static int s_object_order(const void *pa, const void *pb)
{
    const s_object *a = pa, *b = pb;
    if (a->kind != b->kind)
        return a->kind < b->kind ? -1 : 1;
    return sqlite3_stricmp(a->key, b->key);
}

stm_err stm_schemacmp_read(sqlite3 *db, bool objects, schemacmp_t **out, stm_error *err)
{
    schemacmp_t *s = stm_calloc(1, sizeof *s);
    s->objects = objects;
    stm_err rc = stm_catalog_read(db, &s->catalog, err);
    size_t cap = 0, vcap = 0, ocap = 0;
    s_stmts st = {0};
    if (rc == STM_OK && objects &&
        (sqlite3_prepare_v2(db,
                            "SELECT l.name, l.\"unique\", l.origin, l.partial, m.sql "
                            "FROM pragma_index_list(?1) l LEFT JOIN main.sqlite_schema m "
                            "ON m.type = 'index' AND m.name = l.name",
                            -1, &st.indexes, NULL) != SQLITE_OK ||
         sqlite3_prepare_v2(db,
                            "SELECT cid, name, \"desc\", coll FROM pragma_index_xinfo(?1) "
                            "WHERE key ORDER BY seqno",
                            -1, &st.columns, NULL) != SQLITE_OK ||
         sqlite3_prepare_v2(db,
                            "SELECT id, \"table\", \"from\", \"to\", on_update, on_delete, "
                            "match FROM pragma_foreign_key_list(?1) ORDER BY id, seq",
                            -1, &st.fkeys, NULL) != SQLITE_OK))
        rc = stm_error_db(err, db, NULL, "reading the schema (prepare)");
    for (size_t i = 0; rc == STM_OK && i < stm_catalog_count(s->catalog); i++) {
        const catalog_table *t = stm_catalog_at(s->catalog, i);
        size_t before = s->ntables;
        s_add_table(s, &cap, t);
        if (s->ntables == before || !objects)
            continue; /* stemma's own, or tables only */
        rc = s_read_indexes(s, &ocap, db, &st, stm_catalog_table_name(t), err);
        if (rc == STM_OK)
            rc = s_read_fkeys(s, &ocap, db, st.fkeys, stm_catalog_table_name(t), err);
    }
    for (size_t i = 0; rc == STM_OK && i < stm_catalog_virtual_count(s->catalog); i++)
        s_add_virtual(s, &vcap, stm_catalog_virtual_at(s->catalog, i));
    if (rc == STM_OK && objects)
        rc = s_read_texts(s, &ocap, db, err);
    sqlite3_finalize(st.indexes);
    sqlite3_finalize(st.columns);
    sqlite3_finalize(st.fkeys);
    if (rc != STM_OK) {
        stm_schemacmp_destroy(&s);
        return rc;
    }
    if (s->nobjs > 1)
        qsort(s->objs, s->nobjs, sizeof *s->objs, s_object_order);
    *out = s;
    return STM_OK;
}

/* ---- comparing ---- */

typedef struct {
    schemacmp_diff *items; /* the differences found */
    size_t count, cap;     /* entries in items, room */
} s_diffs;

/* Adds a difference; takes what, got and want, copies table. */
static void s_diff(s_diffs *d, schemacmp_how how, schemacmp_kind kind, const char *table,
                   char *what, char *got, char *want)
{
    d->items = stm_grow(d->items, &d->cap, d->count + 1, sizeof *d->items);
    d->items[d->count++] =
        (schemacmp_diff){how, kind, table ? stm_strdup(table) : NULL, what, got, want};
}

/* "KIND a" or "KIND a.b", the caller's. */
static char *s_named(const char *kind, const char *a, const char *b)
{
    buf_t buf = BUF_INIT;
    stm_buf_printf(&buf, "%s %s", kind, a);
    if (b)
        stm_buf_printf(&buf, ".%s", b);
    return stm_buf_detach(&buf);
}

/* A column's definition in words: "INTEGER NOT NULL DEFAULT 0"; named first when
 * named is set. */
static char *s_column_text(const catalog_column *c, bool named)
{
    buf_t b = BUF_INIT;
    if (named)
        stm_buf_printf(&b, "%s ", c->name);
    stm_buf_puts(&b, *c->decltype ? c->decltype : "(no type)");
    if (c->not_null)
        stm_buf_puts(&b, " NOT NULL");
    if (c->default_sql)
        stm_buf_printf(&b, " DEFAULT %s", c->default_sql);
    if (c->pk)
        stm_buf_printf(&b, " PRIMARY KEY (key column %d)", c->pk);
    if (c->key_collation)
        stm_buf_printf(&b, " COLLATE %s", c->key_collation);
    if (c->hidden == 2 || c->hidden == 3)
        stm_buf_printf(&b, " GENERATED %s", c->hidden == 2 ? "VIRTUAL" : "STORED");
    return stm_buf_detach(&b);
}

static char *s_table_text(const catalog_table *t)
{
    buf_t b = BUF_INIT;
    stm_buf_puts(&b, stm_catalog_table_without_rowid(t) ? "WITHOUT ROWID" : "a rowid table");
    if (stm_catalog_table_keys(t) != DIRECTIVE_KEYS_DEFAULT)
        stm_buf_printf(&b, ", keys %s", stm_directive_keys_name(stm_catalog_table_keys(t)));
    return stm_buf_detach(&b);
}

static void s_compare_table(s_diffs *d, const catalog_table *want, const catalog_table *got)
{
    const char *name = stm_catalog_table_name(want);
    if (stm_catalog_table_without_rowid(want) != stm_catalog_table_without_rowid(got) ||
        stm_catalog_table_keys(want) != stm_catalog_table_keys(got))
        s_diff(d, SCHEMACMP_DIFFERS, SCHEMACMP_TABLE, name, s_named("table", name, NULL),
               s_table_text(got),
               s_table_text(want));
    for (size_t i = 0; i < stm_catalog_table_count(want); i++) {
        const catalog_column *w = stm_catalog_table_column(want, i);
        const catalog_column *g = stm_catalog_table_find(got, w->name);
        if (!g) {
            s_diff(d, SCHEMACMP_MISSING, SCHEMACMP_COLUMN, name, s_named("column", name, w->name),
                   NULL, NULL);
        } else if (!stm_catalog_column_equal(w, g)) {
            bool named = strcmp(w->name, g->name) != 0;
            s_diff(d, SCHEMACMP_DIFFERS, SCHEMACMP_COLUMN, name, s_named("column", name, w->name),
                   s_column_text(g, named), s_column_text(w, named));
        }
    }
    for (size_t i = 0; i < stm_catalog_table_count(got); i++) {
        const catalog_column *g = stm_catalog_table_column(got, i);
        if (!stm_catalog_table_find(want, g->name))
            s_diff(d, SCHEMACMP_EXTRA, SCHEMACMP_COLUMN, name, s_named("column", name, g->name),
                   NULL, NULL);
    }
}

/* -1, 0 or 1 as SQLite orders two names (ASCII case folded); a missing one last. */
static int s_name_order(const char *a, const char *b)
{
    if (!a || !b)
        return !a - !b;
    return sqlite3_stricmp(a, b);
}

static void s_compare_tables(s_diffs *d, const schemacmp_t *want, const schemacmp_t *got)
{
    for (size_t i = 0, j = 0; i < want->ntables || j < got->ntables;) {
        const catalog_table *w = i < want->ntables ? want->tables[i] : NULL;
        const catalog_table *g = j < got->ntables ? got->tables[j] : NULL;
        int cmp = s_name_order(w ? stm_catalog_table_name(w) : NULL,
                               g ? stm_catalog_table_name(g) : NULL);
        if (cmp < 0) {
            s_diff(d, SCHEMACMP_MISSING, SCHEMACMP_TABLE, stm_catalog_table_name(w),
                   s_named("table", stm_catalog_table_name(w), NULL), NULL, NULL);
            i++;
        } else if (cmp > 0) {
            /* One the schema set never had is the application's own. */
            if (!want->lineage || stm_lineage_family_find(want->lineage, stm_catalog_table_name(g)))
                s_diff(d, SCHEMACMP_EXTRA, SCHEMACMP_TABLE, stm_catalog_table_name(g),
                       s_named("table", stm_catalog_table_name(g), NULL), NULL, NULL);
            j++;
        } else {
            s_compare_table(d, w, g);
            i++, j++;
        }
    }
    for (size_t i = 0, j = 0; i < want->nvirtual || j < got->nvirtual;) {
        const char *w = i < want->nvirtual ? want->virtuals[i] : NULL;
        const char *g = j < got->nvirtual ? got->virtuals[j] : NULL;
        int cmp = s_name_order(w, g);
        if (cmp < 0)
            s_diff(d, SCHEMACMP_MISSING, SCHEMACMP_VIRTUAL, NULL, s_named("virtual table", w, NULL),
                   NULL, NULL);
        else if (cmp > 0)
            s_diff(d, SCHEMACMP_EXTRA, SCHEMACMP_VIRTUAL, NULL, s_named("virtual table", g, NULL),
                   NULL, NULL);
        i += cmp <= 0;
        j += cmp >= 0;
    }
}

static char *s_dup(const char *s)
{
    return s ? stm_strdup(s) : NULL;
}

/* True when s has a table of that name (NULL: a view's, which belongs to none). */
static bool s_has_table(const schemacmp_t *s, const char *table)
{
    if (!table)
        return true;
    size_t lo = 0, hi = s->ntables;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int cmp = sqlite3_stricmp(stm_catalog_table_name(s->tables[mid]), table);
        if (cmp == 0)
            return true;
        if (cmp < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return false;
}

static void s_compare_objects(s_diffs *d, const schemacmp_t *want, const schemacmp_t *got)
{
    for (size_t i = 0, j = 0; i < want->nobjs || j < got->nobjs;) {
        const s_object *w = i < want->nobjs ? &want->objs[i] : NULL;
        const s_object *g = j < got->nobjs ? &got->objs[j] : NULL;
        int cmp = !w ? 1 : !g ? -1 : s_object_order(w, g);
        /* What belongs to a table the other lacks is told with the table. */
        if (cmp < 0 && s_has_table(got, w->table)) {
            s_diff(d, SCHEMACMP_MISSING, w->kind, w->table, stm_strdup(w->what), NULL, NULL);
        } else if (cmp > 0 && s_has_table(want, g->table)) {
            s_diff(d, SCHEMACMP_EXTRA, g->kind, g->table, stm_strdup(g->what), NULL, NULL);
        } else if (cmp == 0 && w->sig && g->sig && strcmp(w->sig, g->sig) != 0) {
            bool words = w->show && g->show && strcmp(w->show, g->show) != 0;
            s_diff(d, SCHEMACMP_DIFFERS, w->kind, g->table, stm_strdup(w->what),
                   words ? s_dup(g->show) : NULL, words ? s_dup(w->show) : NULL);
        }
        i += cmp <= 0;
        j += cmp >= 0;
    }
}

size_t stm_schemacmp_compare(const schemacmp_t *want, const schemacmp_t *got,
                             schemacmp_diff **out)
{
    s_diffs d = {0};
    s_compare_tables(&d, want, got);
    if (want->objects && got->objects)
        s_compare_objects(&d, want, got);
    *out = d.items;
    return d.count;
}

void stm_schemacmp_diffs_free(schemacmp_diff *diffs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(diffs[i].table);
        free(diffs[i].what);
        free(diffs[i].got);
        free(diffs[i].want);
    }
    free(diffs);
}

void stm_schemacmp_describe(buf_t *b, const schemacmp_diff *d, int version, bool leaves)
{
    switch (d->how) {
    case SCHEMACMP_EXTRA:
        stm_buf_printf(b, "%s %s that version %d does not have", leaves ? "leaves" : "has",
                       d->what, version);
        break;
    case SCHEMACMP_MISSING:
        stm_buf_printf(b, "%s %s that version %d has", leaves ? "does not restore" : "lacks",
                       d->what, version);
        break;
    case SCHEMACMP_DIFFERS:
        if (d->got && d->want)
            stm_buf_printf(b, "%s %s as %s where version %d has %s", leaves ? "leaves" : "has",
                           d->what, d->got, version, d->want);
        else
            stm_buf_printf(b, "%s %s defined otherwise than version %d has it",
                           leaves ? "leaves" : "has", d->what, version);
        break;
    }
}

void stm_schemacmp_summary(buf_t *b, const schemacmp_diff *diffs, size_t n, int version,
                           bool leaves)
{
    size_t shown = n < SCHEMACMP_SUMMARY_MAX ? n : SCHEMACMP_SUMMARY_MAX;
    for (size_t i = 0; i < shown; i++) {
        if (i)
            stm_buf_puts(b, "; ");
        stm_schemacmp_describe(b, &diffs[i], version, leaves);
    }
    if (n > shown)
        stm_buf_printf(b, " (and %zu more)", n - shown);
}
