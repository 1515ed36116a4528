/* lens.c - what each migration does to the data already there (lens.h), derived:
 * each migration run on a probe of marked rows. lens_set.c answers questions about the
 * set and reads one back. */
#include "lens.h"
#include "lens_internal.h"
#include "catalog.h"
#include "sqlscript.h"
#include "base/buf.h"
#include "base/mem.h"

#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The rows marked in each table: text markers; integer markers where the column is
 * numeric; NULL wherever the column may hold it. */
#define S_ROWS 3
#define S_ROW_NULLS 2
/* Integer markers: base + table * 100000 + column * 10 + row, below 2^53 so that a REAL
 * column holds them exactly. Tables beyond S_MAX_TABLES or columns beyond 9999 are not
 * marked. */
#define S_INT_BASE INT64_C(4000000000000000)
#define S_MAX_TABLES 90000
#define S_MAX_COLUMNS 9999
/* Rows read back from one table after the migration. */
#define S_READ_LIMIT 5000

const char *stm_lens_kind_name(lens_kind k)
{
    static const char *const names[LENS_KINDS] = {"renamed", "cast",   "filled",  "computed",
                                                  "added",   "copied", "dropped", "emptied",
                                                  "replaced"};
    return k < LENS_KINDS ? names[k] : "?";
}

/* ---- markers ---- */

/* Where a marker came from, and whether it is the value put there. */
typedef struct {
    unsigned table, column, row;
} s_mark;

static bool s_rowid_alias(const catalog_table *t, const catalog_column *c)
{
    return c->pk == 1 && stm_catalog_table_key_count(t) == 1 && !stm_catalog_table_without_rowid(t) &&
           strcasecmp(c->decltype, "INTEGER") == 0;
}

static bool s_numeric(catalog_affinity a)
{
    return a == AFFINITY_INTEGER || a == AFFINITY_NUMERIC || a == AFFINITY_REAL;
}

static void s_text_marker(char *out, size_t size, unsigned t, unsigned c, unsigned r)
{
    snprintf(out, size, "~stm~%u.%u.%u", t, c, r);
}

/* Binds the marker of (t, c, r) to parameter i. typed: as the column's type asks (a
 * STRICT table refused the first try). */
static void s_bind_marker(sqlite3_stmt *st, int i, const catalog_table *tab,
                          const catalog_column *col, unsigned t, unsigned c, unsigned r, bool typed)
{
    int64_t n = S_INT_BASE + (int64_t)t * 100000 + (int64_t)c * 10 + r;
    char text[64];
    s_text_marker(text, sizeof text, t, c, r);
    bool nullable = !col->not_null && !col->pk;
    if (r == S_ROW_NULLS && nullable) {
        sqlite3_bind_null(st, i);
    } else if (s_rowid_alias(tab, col) || (typed && (col->affinity == AFFINITY_INTEGER ||
                                                     col->affinity == AFFINITY_NUMERIC)) ||
               (r == 1 && s_numeric(col->affinity))) {
        sqlite3_bind_int64(st, i, n);
    } else if (typed && col->affinity == AFFINITY_REAL) {
        sqlite3_bind_double(st, i, (double)n);
    } else if (typed && col->affinity == AFFINITY_BLOB) {
        sqlite3_bind_blob(st, i, text, (int)strlen(text), SQLITE_TRANSIENT);
    } else {
        sqlite3_bind_text(st, i, text, -1, SQLITE_TRANSIENT);
    }
}

static bool s_decode_text(const char *s, size_t len, s_mark *m)
{
    char buf[64];
    if (len < 6 || len >= sizeof buf || memcmp(s, "~stm~", 5) != 0)
        return false;
    memcpy(buf, s, len);
    buf[len] = '\0';
    char tail;
    return sscanf(buf + 5, "%u.%u.%u%c", &m->table, &m->column, &m->row, &tail) == 3;
}

static bool s_decode_int(int64_t n, s_mark *m)
{
    if (n < S_INT_BASE || n >= S_INT_BASE + (int64_t)S_MAX_TABLES * 100000)
        return false;
    int64_t k = n - S_INT_BASE;
    m->table = (unsigned)(k / 100000);
    m->column = (unsigned)(k / 10 % 10000);
    m->row = (unsigned)(k % 10);
    return m->row < S_ROWS;
}

/* The marker a value holds, in any of the forms a cast may leave it in. */
static bool s_decode(sqlite3_stmt *st, int i, s_mark *m)
{
    switch (sqlite3_column_type(st, i)) {
    case SQLITE_INTEGER:
        return s_decode_int(sqlite3_column_int64(st, i), m);
    case SQLITE_FLOAT: {
        double d = sqlite3_column_double(st, i);
        /* In range first: the cast is defined there; integral when it changes nothing. */
        return d >= (double)S_INT_BASE && d < 9e15 && (double)(int64_t)d == d &&
               s_decode_int((int64_t)d, m);
    }
    case SQLITE_TEXT:
    case SQLITE_BLOB: {
        const char *s = sqlite3_column_type(st, i) == SQLITE_TEXT
                            ? (const char *)sqlite3_column_text(st, i)
                            : (const char *)sqlite3_column_blob(st, i);
        size_t len = (size_t)sqlite3_column_bytes(st, i);
        if (s && s_decode_text(s, len, m))
            return true;
        /* An integer marker cast to text or blob. */
        char buf[32];
        if (!s || len == 0 || len >= sizeof buf)
            return false;
        memcpy(buf, s, len);
        buf[len] = '\0';
        char *end;
        long long n = strtoll(buf, &end, 10);
        return *end == '\0' && s_decode_int(n, m);
    }
    default:
        return false;
    }
}

/* A marker naming a column of the catalog before (a value that only looks like one, or
 * one of a table that was not marked, names none). */
static bool s_names_column(const catalog_t *before, const s_mark *m)
{
    return before && m->table < stm_catalog_count(before) &&
           m->column < stm_catalog_table_count(stm_catalog_at(before, m->table));
}

/* ---- what the probe held before the migration ---- */

/* Per table of the catalog before: how each marked cell was stored (SQLITE_INTEGER,
 * ..., 0 for none: NULL, or the row not inserted). */
typedef struct {
    int *type; /* [column * S_ROWS + row] */
    bool marked; /* at least one row went in */
} s_before;

/* A foreign key column, which is given the marker of the column it refers to, row for
 * row, so that a migration joining the two tables finds its rows (marked otherwise, a
 * join finds nothing, and a NOT NULL column filled from it fails). Reading back, a
 * marker of the parent's column found in a column of the child's name is the child's
 * (unless that is the parent's own column). */
typedef struct {
    unsigned table, column;              /* the child's */
    unsigned parent_table, parent_column; /* what it refers to */
} s_ref;

typedef struct {
    s_ref *refs;
    size_t count, cap;
} s_refs;

static bool s_table_index(const catalog_t *c, const char *name, unsigned *out)
{
    for (size_t i = 0; i < stm_catalog_count(c); i++)
        if (strcasecmp(stm_catalog_table_name(stm_catalog_at(c, i)), name) == 0) {
            *out = (unsigned)i;
            return true;
        }
    return false;
}

static bool s_column_index(const catalog_table *t, const char *name, unsigned *out)
{
    for (size_t i = 0; i < stm_catalog_table_count(t); i++)
        if (strcasecmp(stm_catalog_table_column(t, i)->name, name) == 0) {
            *out = (unsigned)i;
            return true;
        }
    return false;
}

/* The foreign keys of table ti, as SQLite reports them, that name a column of the
 * catalog (a key referring to a parent's primary key names none: its key's column). */
static void s_foreign_keys(sqlite3 *db, const catalog_t *before, unsigned ti, s_refs *refs)
{
    const catalog_table *t = stm_catalog_at(before, ti);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, "SELECT \"table\", \"from\", \"to\" FROM pragma_foreign_key_list(?)",
                           -1, &st, NULL) != SQLITE_OK)
        return;
    sqlite3_bind_text(st, 1, stm_catalog_table_name(t), -1, SQLITE_STATIC);
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *parent = (const char *)sqlite3_column_text(st, 0);
        const char *from = (const char *)sqlite3_column_text(st, 1);
        const char *to = (const char *)sqlite3_column_text(st, 2);
        s_ref r = {.table = ti};
        if (!parent || !from || !s_table_index(before, parent, &r.parent_table) ||
            !s_column_index(t, from, &r.column))
            continue;
        const catalog_table *pt = stm_catalog_at(before, r.parent_table);
        if (to ? !s_column_index(pt, to, &r.parent_column)
               : stm_catalog_table_key_count(pt) != 1 ||
                     !s_column_index(pt, stm_catalog_table_key(pt, 0)->name, &r.parent_column))
            continue;
        refs->refs = stm_grow(refs->refs, &refs->cap, refs->count + 1, sizeof *refs->refs);
        refs->refs[refs->count++] = r;
    }
    sqlite3_finalize(st);
}

/* What column (table ti, column ci) refers to, when it is a foreign key. */
static const s_ref *s_ref_of(const s_refs *refs, unsigned ti, unsigned ci)
{
    for (size_t i = 0; i < refs->count; i++)
        if (refs->refs[i].table == ti && refs->refs[i].column == ci)
            return &refs->refs[i];
    return NULL;
}

/* Whether (t, c) is a column some foreign key refers to: its marker is in its children
 * too, so it does not say which table a row came from. */
static bool s_is_parent(const s_refs *refs, unsigned t, unsigned c)
{
    for (size_t i = 0; i < refs->count; i++)
        if (refs->refs[i].parent_table == t && refs->refs[i].parent_column == c)
            return true;
    return false;
}

/* The column a marker found in column cname of table tname stands for, in a row that
 * came from table home (UINT_MAX: not known): the parent's own column where it always
 * was; else a foreign key referring to it in the row's own table, or of this name in a
 * table of this name; else the parent's column (a copy of it: a name alone does not say
 * which of the equal values was read). */
static s_mark s_resolve(const catalog_t *before, const s_refs *refs, s_mark m, unsigned home,
                        const char *tname, const char *cname)
{
    const catalog_table *own = stm_catalog_at(before, m.table);
    if (strcasecmp(stm_catalog_table_name(own), tname) == 0 &&
        strcasecmp(stm_catalog_table_column(own, m.column)->name, cname) == 0)
        return m;
    s_mark best = m;
    int best_score = 0;
    for (size_t i = 0; i < refs->count; i++) {
        const s_ref *r = &refs->refs[i];
        if (r->parent_table != m.table || r->parent_column != m.column)
            continue;
        const catalog_table *t = stm_catalog_at(before, r->table);
        int score = (r->table == home) * 4 +
                    (strcasecmp(stm_catalog_table_column(t, r->column)->name, cname) == 0) * 2 +
                    (strcasecmp(stm_catalog_table_name(t), tname) == 0);
        if (score > best_score && score >= 3) {
            best = (s_mark){r->table, r->column, m.row};
            best_score = score;
        }
    }
    return best;
}

/* The SELECT of every column a migration can carry (generated ones cannot be): its
 * text into q, and the catalog's index of each selected column into cols. */
static size_t s_select(buf_t *q, const catalog_table *t, size_t *cols)
{
    size_t n = 0;
    stm_buf_puts(q, "SELECT ");
    for (size_t c = 0; c < stm_catalog_table_count(t); c++) {
        if (stm_catalog_table_column(t, c)->hidden)
            continue;
        if (n)
            stm_buf_puts(q, ", ");
        stm_sqlscript_quote_ident(q, stm_catalog_table_column(t, c)->name);
        cols[n++] = c;
    }
    stm_buf_puts(q, " FROM ");
    stm_sqlscript_quote_ident(q, stm_catalog_table_name(t));
    stm_buf_printf(q, " LIMIT %d", S_READ_LIMIT);
    return n;
}

/* Inserts the marked rows of table ti; records how each cell was stored. */
static void s_mark_table(sqlite3 *db, const catalog_t *before, const s_refs *refs, unsigned ti,
                         s_before *b)
{
    const catalog_table *t = stm_catalog_at(before, ti);
    size_t ncols = stm_catalog_table_count(t);
    b->type = stm_calloc(ncols * S_ROWS + 1, sizeof *b->type);
    if (ti >= S_MAX_TABLES || ncols > S_MAX_COLUMNS)
        return;
    buf_t q = BUF_INIT;
    stm_buf_puts(&q, "INSERT INTO ");
    stm_sqlscript_quote_ident(&q, stm_catalog_table_name(t));
    stm_buf_puts(&q, " (");
    size_t *cols = stm_calloc(ncols + 1, sizeof *cols), n = 0;
    for (size_t c = 0; c < ncols; c++) {
        if (stm_catalog_table_column(t, c)->hidden)
            continue;
        stm_buf_puts(&q, n ? ", " : "");
        stm_sqlscript_quote_ident(&q, stm_catalog_table_column(t, c)->name);
        cols[n++] = c;
    }
    stm_buf_puts(&q, ") VALUES (");
    for (size_t i = 0; i < n; i++)
        stm_buf_puts(&q, i ? ", ?" : "?");
    stm_buf_puts(&q, ")");
    sqlite3_stmt *st = NULL;
    if (n && sqlite3_prepare_v2(db, stm_buf_str(&q), -1, &st, NULL) == SQLITE_OK) {
        for (unsigned r = 0; r < S_ROWS; r++) {
            int rc = SQLITE_ERROR;
            for (int typed = 0; typed < 2 && rc != SQLITE_DONE; typed++) {
                sqlite3_reset(st);
                for (size_t i = 0; i < n; i++) {
                    const s_ref *ref = s_ref_of(refs, ti, (unsigned)cols[i]);
                    const catalog_table *mt = ref ? stm_catalog_at(before, ref->parent_table) : t;
                    unsigned mc = ref ? ref->parent_column : (unsigned)cols[i];
                    s_bind_marker(st, (int)i + 1, mt, stm_catalog_table_column(mt, mc),
                                  ref ? ref->parent_table : ti, mc, r, typed);
                }
                rc = sqlite3_step(st);
            }
            b->marked |= rc == SQLITE_DONE;
        }
    }
    sqlite3_finalize(st);
    /* How SQLite stored each: a REAL column keeps an integer marker as a REAL, and that
     * is the column's own value, not a cast. */
    stm_buf_reset(&q);
    n = s_select(&q, t, cols);
    if (b->marked && n && sqlite3_prepare_v2(db, stm_buf_str(&q), -1, &st, NULL) == SQLITE_OK) {
        while (sqlite3_step(st) == SQLITE_ROW)
            for (size_t i = 0; i < n; i++) {
                s_mark m;
                const s_ref *ref = s_ref_of(refs, ti, (unsigned)cols[i]);
                unsigned want_t = ref ? ref->parent_table : ti;
                unsigned want_c = ref ? ref->parent_column : (unsigned)cols[i];
                if (s_decode(st, (int)i, &m) && m.row < S_ROWS && m.table == want_t &&
                    m.column == want_c)
                    b->type[cols[i] * S_ROWS + m.row] = sqlite3_column_type(st, (int)i);
            }
        sqlite3_finalize(st);
    }
    stm_buf_free(&q);
    free(cols);
}

/* ---- reading the probe after the migration ---- */

/* What one column of the catalog after holds, over the rows derived from marked rows. */
typedef struct {
    bool src_found, multi, inexact, filled;
    s_mark src;
    size_t carried;    /* cells holding a marker */
    size_t overwritten; /* cells of text or integer marker rows holding something else */
    size_t derived;    /* rows derived from marked rows */
    bool constant_set, varies;
    sqlite3_value *constant; /* the first value that is no marker */
} s_col;

/* Reads table t of the catalog after, and lists what changed in its columns. carried
 * marks, per table and column of before, the ones some column carries now. */
static void s_read_table(sqlite3 *db, const catalog_t *before, const catalog_t *after,
                         const s_before *marks, const s_refs *refs, const catalog_table *t,
                         bool **carried, lens_step *step)
{
    size_t ncols = stm_catalog_table_count(t);
    size_t *cols = stm_calloc(ncols + 1, sizeof *cols);
    buf_t q = BUF_INIT;
    size_t n = s_select(&q, t, cols);
    s_col *acc = stm_calloc(n + 1, sizeof *acc);
    sqlite3_stmt *st = NULL;
    if (n && sqlite3_prepare_v2(db, stm_buf_str(&q), -1, &st, NULL) == SQLITE_OK) {
        while (sqlite3_step(st) == SQLITE_ROW) {
            /* The row this one comes from: the first marker in it. */
            s_mark rowmark, m;
            bool derived = false;
            for (size_t i = 0; i < n && !derived; i++)
                derived = s_decode(st, (int)i, &rowmark) && s_names_column(before, &rowmark);
            /* The table it came from: a marker no foreign key copies says. */
            unsigned home = UINT_MAX;
            for (size_t i = 0; i < n && home == UINT_MAX; i++)
                if (s_decode(st, (int)i, &m) && s_names_column(before, &m) &&
                    !s_is_parent(refs, m.table, m.column))
                    home = m.table;
            if (!derived)
                continue; /* a row the migration made itself */
            for (size_t i = 0; i < n; i++) {
                s_col *a = &acc[i];
                a->derived++;
                if (s_decode(st, (int)i, &m) && s_names_column(before, &m)) {
                    m = s_resolve(before, refs, m, home, stm_catalog_table_name(t),
                                  stm_catalog_table_column(t, cols[i])->name);
                    a->carried++;
                    if (!a->src_found) {
                        a->src = m;
                        a->src_found = true;
                    } else if (a->src.table != m.table || a->src.column != m.column) {
                        a->multi = true;
                    }
                    const s_before *b = &marks[m.table];
                    if (b->type && b->type[m.column * S_ROWS + m.row] != sqlite3_column_type(st, (int)i))
                        a->inexact = true;
                    continue;
                }
                bool null = sqlite3_column_type(st, (int)i) == SQLITE_NULL;
                if (rowmark.row == S_ROW_NULLS && !null)
                    a->filled = true;
                else if (rowmark.row != S_ROW_NULLS && !null)
                    a->overwritten++;
                else if (rowmark.row != S_ROW_NULLS)
                    a->overwritten++; /* a marker replaced by NULL */
                sqlite3_value *v = sqlite3_column_value(st, (int)i);
                if (!a->constant_set) {
                    a->constant = sqlite3_value_dup(v);
                    a->constant_set = true;
                } else if (!a->varies) {
                    a->varies = sqlite3_value_type(v) != sqlite3_value_type(a->constant) ||
                                (sqlite3_value_type(v) != SQLITE_NULL &&
                                 (sqlite3_value_bytes(v) != sqlite3_value_bytes(a->constant) ||
                                  (sqlite3_value_bytes(v) > 0 && /* an empty one is NULL */
                                   memcmp(sqlite3_value_blob(v), sqlite3_value_blob(a->constant),
                                          (size_t)sqlite3_value_bytes(v)) != 0)));
                }
            }
        }
        sqlite3_finalize(st);
    }
    const char *tname = stm_catalog_table_name(t);
    const catalog_table *same = stm_catalog_find(before, tname);
    for (size_t i = 0; i < n; i++) {
        s_col *a = &acc[i];
        const char *cname = stm_catalog_table_column(t, cols[i])->name;
        if (a->src_found && !a->multi) {
            const catalog_table *ft = stm_catalog_at(before, a->src.table);
            const char *fcol = stm_catalog_table_column(ft, a->src.column)->name;
            const char *ftname = stm_catalog_table_name(ft);
            if (!a->overwritten)
                carried[a->src.table][a->src.column] = true;
            bool moved = strcasecmp(ftname, tname) != 0 || strcasecmp(fcol, cname) != 0;
            /* Its source still there under its name: a copy, not a rename. */
            const catalog_table *still = stm_catalog_find(after, ftname);
            bool copied = moved && still && stm_catalog_table_find(still, fcol);
            if (a->overwritten)
                stm_lens_step_add(step, LENS_COMPUTED, tname, cname, NULL, NULL);
            else if (a->filled)
                stm_lens_step_add(step, LENS_FILLED, tname, cname, ftname, fcol);
            else if (a->inexact)
                stm_lens_step_add(step, LENS_CAST, tname, cname, ftname, fcol);
            else if (moved)
                stm_lens_step_add(step, copied ? LENS_COPIED : LENS_RENAMED, tname, cname, ftname, fcol);
        } else if (a->derived) {
            /* No one column's values: made by the migration. A column new to a table
             * that had rows, the same in every row, is its default. */
            bool existed = same && stm_catalog_table_find(same, cname);
            bool added = !existed && !a->multi && !a->varies;
            stm_lens_step_add(step, added ? LENS_ADDED : LENS_COMPUTED, tname, cname, NULL, NULL);
        }
        if (a->constant)
            sqlite3_value_free(a->constant);
    }
    free(acc);
    free(cols);
    stm_buf_free(&q);
}

/* The tables a migration reads or writes, as SQLite's authorizer tells them while it
 * prepares each statement (triggers' statements included): only they are marked and
 * read back, which keeps a history of many tables and small steps cheap to probe. */
typedef struct {
    char **names;
    size_t count, cap;
    char **dropped; /* ... and the tables it drops (DROP TABLE) */
    size_t ndropped, dropped_cap;
} s_touched;

static bool s_touched_has(const s_touched *t, const char *name)
{
    for (size_t i = 0; i < t->count; i++)
        if (strcasecmp(t->names[i], name) == 0)
            return true;
    return false;
}

static void s_touch(s_touched *t, const char *name)
{
    if (!name || strncasecmp(name, "sqlite_", 7) == 0 || s_touched_has(t, name))
        return;
    t->names = stm_grow(t->names, &t->cap, t->count + 1, sizeof *t->names);
    t->names[t->count++] = stm_strdup(name);
}

static void s_drop(s_touched *t, const char *name)
{
    if (!name)
        return;
    for (size_t i = 0; i < t->ndropped; i++)
        if (strcasecmp(t->dropped[i], name) == 0)
            return;
    t->dropped = stm_grow(t->dropped, &t->dropped_cap, t->ndropped + 1, sizeof *t->dropped);
    t->dropped[t->ndropped++] = stm_strdup(name);
}

static bool s_dropped(const s_touched *t, const char *name)
{
    for (size_t i = 0; i < t->ndropped; i++)
        if (strcasecmp(t->dropped[i], name) == 0)
            return true;
    return false;
}

static int s_authorize(void *ctx, int action, const char *a1, const char *a2, const char *db,
                       const char *trigger)
{
    (void)db, (void)trigger;
    s_touched *t = ctx;
    switch (action) {
    case SQLITE_READ:
    case SQLITE_INSERT:
    case SQLITE_UPDATE:
    case SQLITE_DELETE:
    case SQLITE_CREATE_TABLE:
        s_touch(t, a1);
        break;
    case SQLITE_DROP_TABLE:
        s_touch(t, a1);
        s_drop(t, a1);
        break;
    case SQLITE_ALTER_TABLE:
        s_touch(t, a2); /* a1 is the schema's name */
        break;
    default:
        break;
    }
    return SQLITE_OK;
}

static void s_touched_free(s_touched *t)
{
    for (size_t i = 0; i < t->count; i++)
        free(t->names[i]);
    free(t->names);
    for (size_t i = 0; i < t->ndropped; i++)
        free(t->dropped[i]);
    free(t->dropped);
    *t = (s_touched){0};
}

/* Runs migration m on a copy of clean holding marked rows in the tables it touches
 * (and the tables their foreign keys refer to, so that joins find rows), and lists what
 * it did to them. */
static void s_probe(sqlite3 *clean, const catalog_t *before, const catalog_t *after,
                    const s_touched *touched, const char *path, const schemaset_migration *m,
                    lens_step *step)
{
    sqlite3 *db = NULL;
    stm_error err = {0};
    if (stm_sqlscript_open_memory(&db, &err) != STM_OK) {
        step->why = stm_strdup(err.msg);
        return;
    }
    sqlite3_backup *bk = sqlite3_backup_init(db, "main", clean, "main");
    if (!bk || sqlite3_backup_step(bk, -1) != SQLITE_DONE) {
        sqlite3_backup_finish(bk);
        step->why = stm_strdup(sqlite3_errmsg(db));
        sqlite3_close(db);
        return;
    }
    sqlite3_backup_finish(bk);
    /* Markers break CHECK constraints a column's real values keep; foreign keys are
     * off already (the default). */
    sqlite3_exec(db, "PRAGMA ignore_check_constraints = ON", NULL, NULL, NULL);
    size_t nbefore = before ? stm_catalog_count(before) : 0;
    s_before *marks = stm_calloc(nbefore + 1, sizeof *marks);
    bool **carried = stm_calloc(nbefore + 1, sizeof *carried);
    s_refs refs = {0};
    bool *look = stm_calloc(nbefore + 1, sizeof *look); /* touched: examined after */
    bool *mark = stm_calloc(nbefore + 1, sizeof *mark); /* ... and their parents: marked */
    for (size_t t = 0; t < nbefore && t < S_MAX_TABLES; t++) {
        look[t] = mark[t] = s_touched_has(touched, stm_catalog_table_name(stm_catalog_at(before, t)));
        if (look[t])
            s_foreign_keys(db, before, (unsigned)t, &refs);
    }
    for (size_t i = 0; i < refs.count; i++)
        mark[refs.refs[i].parent_table] = true;
    for (size_t t = 0; t < nbefore; t++) {
        carried[t] = stm_calloc(stm_catalog_table_count(stm_catalog_at(before, t)) + 1, sizeof **carried);
        if (mark[t])
            s_mark_table(db, before, &refs, (unsigned)t, &marks[t]);
        else
            marks[t].type = stm_calloc(1, sizeof *marks[t].type);
    }
    stm_err rc = sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) == SQLITE_OK
                     ? stm_sqlscript_run(db, path, m->text, 0, &err)
                     : stm_error_db(&err, db, path, "beginning");
    if (rc != STM_OK) {
        step->why = stm_strdup(err.msg);
    } else {
        step->probed = true;
        for (size_t i = 0; i < stm_catalog_count(after); i++) {
            const catalog_table *t = stm_catalog_at(after, i);
            bool is_new = !before || !stm_catalog_find(before, stm_catalog_table_name(t));
            if (is_new || s_touched_has(touched, stm_catalog_table_name(t)))
                s_read_table(db, before, after, marks, &refs, t, carried, step);
        }
        /* What no column carries any more, of tables that had marked rows; a column whose
         * table still has one of its name is not dropped (its rows may have gone). */
        for (size_t t = 0; t < nbefore; t++) {
            const catalog_table *bt = stm_catalog_at(before, t);
            if (!marks[t].marked || !look[t])
                continue;
            const catalog_table *now = stm_catalog_find(after, stm_catalog_table_name(bt));
            bool any = false;
            for (size_t c = 0; c < stm_catalog_table_count(bt); c++)
                any |= carried[t][c];
            if (!any) {
                /* Dropped and made again under its name, or its rows deleted. */
                lens_kind k = !now                                            ? LENS_DROPPED
                              : s_dropped(touched, stm_catalog_table_name(bt)) ? LENS_REPLACED
                                                                               : LENS_EMPTIED;
                stm_lens_step_add(step, k, stm_catalog_table_name(bt), NULL, NULL, NULL);
                if (k != LENS_EMPTIED)
                    continue;
            }
            for (size_t c = 0; c < stm_catalog_table_count(bt); c++) {
                const catalog_column *col = stm_catalog_table_column(bt, c);
                if (!col->hidden && !carried[t][c] &&
                    !(now && stm_catalog_table_find(now, col->name)))
                    stm_lens_step_add(step, LENS_DROPPED, stm_catalog_table_name(bt), col->name, NULL, NULL);
            }
        }
    }
    for (size_t t = 0; t < nbefore; t++) {
        free(marks[t].type);
        free(carried[t]);
    }
    free(marks);
    free(carried);
    free(look);
    free(mark);
    free(refs.refs);
    sqlite3_close(db);
}

/* One column of the version before whose values two or more columns now hold (a rebuild
 * that puts one column into two): which of them is "the same column" is not for stemma
 * to guess per operation, so the first listed (tables by name, columns in declaration
 * order) is, and the others are copies: translated operations land in the first, and
 * the others hold values of their own (lens.h). The same schema set always gives the
 * same answer, and `history --lenses` shows it. */
static void s_one_heir(lens_step *st)
{
    for (size_t i = 0; i < st->count; i++) {
        lens_change *c = &st->changes[i];
        if (c->kind != LENS_RENAMED && c->kind != LENS_CAST && c->kind != LENS_FILLED)
            continue;
        for (size_t k = 0; k < i; k++) {
            const lens_change *e = &st->changes[k];
            if ((e->kind == LENS_RENAMED || e->kind == LENS_CAST || e->kind == LENS_FILLED) &&
                strcasecmp(e->from_table, c->from_table) == 0 &&
                strcasecmp(e->from_column, c->from_column) == 0) {
                c->kind = LENS_COPIED;
                break;
            }
        }
    }
}

stm_err stm_lens_derive(const schemaset_t *set, lens_set_t **out, stm_error *err)
{
    sqlite3 *db;
    stm_err rc = stm_sqlscript_open_memory(&db, err);
    if (rc != STM_OK)
        return rc;
    lens_set_t *s = stm_calloc(1, sizeof *s);
    s->count = stm_schemaset_count(set);
    s->steps = stm_calloc(s->count + 1, sizeof *s->steps);
    catalog_t *before = NULL;
    buf_t path = BUF_INIT;
    for (size_t i = 0; i < s->count && rc == STM_OK; i++) {
        const schemaset_migration *m = stm_schemaset_at(set, i);
        stm_buf_reset(&path);
        stm_buf_printf(&path, "%s/%s", stm_schemaset_dir(set), m->file);
        /* The clean database moves on first: the probe needs the catalog after. */
        sqlite3 *probe_from = NULL;
        if (i > 0 && stm_sqlscript_open_memory(&probe_from, err) == STM_OK) {
            sqlite3_backup *bk = sqlite3_backup_init(probe_from, "main", db, "main");
            if (bk)
                sqlite3_backup_step(bk, -1);
            sqlite3_backup_finish(bk);
        }
        if (sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
            rc = stm_error_db(err, db, stm_buf_str(&path), "beginning");
        s_touched touched = {0};
        sqlite3_set_authorizer(db, s_authorize, &touched);
        if (rc == STM_OK)
            rc = stm_sqlscript_run(db, stm_buf_str(&path), m->text, 0, err);
        sqlite3_set_authorizer(db, NULL, NULL);
        if (rc != STM_OK)
            sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        else if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
            rc = stm_error_set(err, STM_EINPUT, "%s: %s", stm_buf_str(&path), sqlite3_errmsg(db));
        catalog_t *after = NULL;
        if (rc == STM_OK)
            rc = stm_catalog_read(db, &after, err);
        if (rc == STM_OK && probe_from)
            s_probe(probe_from, before, after, &touched, stm_buf_str(&path), m, &s->steps[i]);
        else if (rc == STM_OK && i == 0)
            s->steps[i].probed = true; /* the first: everything is new, nothing derived */
        else if (rc == STM_OK)
            s->steps[i].why = stm_strdup("no memory for a copy of the database to probe");
        s_one_heir(&s->steps[i]);
        if (rc == STM_OK) {
            size_t nt = stm_catalog_count(after);
            const catalog_table **tables = stm_calloc(nt + 1, sizeof *tables);
            for (size_t t = 0; t < nt; t++)
                tables[t] = stm_catalog_at(after, t);
            stm_lens_identities(s, i, tables, nt);
            free(tables);
        }
        if (probe_from)
            sqlite3_close(probe_from);
        s_touched_free(&touched);
        stm_catalog_destroy(&before);
        before = after;
    }
    stm_buf_free(&path);
    stm_catalog_destroy(&before);
    sqlite3_close(db);
    if (rc != STM_OK) {
        stm_lens_destroy(&s);
        return rc;
    }
    *out = s;
    return STM_OK;
}
