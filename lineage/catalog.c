#include "catalog.h"
#include "base/mem.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct catalog_table {
    char *name;              /* as created */
    bool without_rowid;      /* a WITHOUT ROWID table */
    directive_keys keys;     /* its keys setting (directive.h) */
    catalog_column *columns; /* in declaration order (table_xinfo's cid) */
    size_t count;            /* columns in use */
    size_t cap;              /* columns allocated */
    uint32_t *by_name;       /* column indexes in order of folded name: a cache that
                                stm_catalog_table_find builds when the table is large; it
                                is valid while nby_name == count */
    size_t nby_name;
    unsigned shared; /* catalogs holding it besides the first: a table read
                        again from the same text is this one (read_since) */
    char *source;    /* the CREATE TABLE text it was read from (NULL: not read from a
                        database): the same text is the same table (read_since) */
};

/* The declared type of most columns a peer describes, shared rather than copied. */
static char s_no_type[] = "";

/* Tables at most this wide are searched column by column; wider ones by name through
 * by_name, so that a table of many columns (a peer's, an exported file's) does not
 * cost n squared to read or compare. */
#define S_INDEX_MIN 16

struct catalog {
    catalog_table **tables; /* sorted by name, case folded */
    size_t count;
    char **virtuals; /* the virtual tables' names, sorted by name, case folded */
    size_t nvirtual;
};

const char *stm_catalog_affinity_name(catalog_affinity a)
{
    switch (a) {
    case AFFINITY_TEXT:
        return "TEXT";
    case AFFINITY_NUMERIC:
        return "NUMERIC";
    case AFFINITY_INTEGER:
        return "INTEGER";
    case AFFINITY_REAL:
        return "REAL";
    case AFFINITY_BLOB:
        return "BLOB";
    }
    return "BLOB";
}

bool stm_catalog_affinity_parse(const char *name, catalog_affinity *out)
{
    static const catalog_affinity all[] = {AFFINITY_TEXT, AFFINITY_NUMERIC, AFFINITY_INTEGER,
                                           AFFINITY_REAL, AFFINITY_BLOB};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        if (strcmp(name, stm_catalog_affinity_name(all[i])) == 0) {
            *out = all[i];
            return true;
        }
    }
    return false;
}

/* True when needle occurs in hay without regard to ASCII case. */
static bool s_contains_nocase(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    for (const char *p = hay; *p; p++)
        if (strncasecmp(p, needle, n) == 0)
            return true;
    return false;
}

catalog_affinity stm_catalog_affinity_of(const char *decltype)
{
    /* The rules of https://sqlite.org/datatype3.html#determination_of_column_affinity,
     * applied in their order. */
    if (s_contains_nocase(decltype, "INT"))
        return AFFINITY_INTEGER;
    if (s_contains_nocase(decltype, "CHAR") || s_contains_nocase(decltype, "CLOB") ||
        s_contains_nocase(decltype, "TEXT"))
        return AFFINITY_TEXT;
    if (s_contains_nocase(decltype, "BLOB") || decltype[0] == '\0')
        return AFFINITY_BLOB;
    if (s_contains_nocase(decltype, "REAL") || s_contains_nocase(decltype, "FLOA") ||
        s_contains_nocase(decltype, "DOUB"))
        return AFFINITY_REAL;
    return AFFINITY_NUMERIC;
}

catalog_table *stm_catalog_table_new(const char *name, bool without_rowid)
{
    catalog_table *t = stm_calloc(1, sizeof *t);
    t->name = stm_strdup(name);
    t->without_rowid = without_rowid;
    return t;
}

void stm_catalog_table_reserve(catalog_table *t, size_t n)
{
    if (n <= t->cap)
        return;
    t->columns = stm_realloc(t->columns, n * sizeof *t->columns);
    t->cap = n;
}

void stm_catalog_table_add_column(catalog_table *t, const catalog_column *col)
{
    t->columns = stm_grow(t->columns, &t->cap, t->count + 1, sizeof *t->columns);
    catalog_column *c = &t->columns[t->count++];
    *c = *col;
    c->name = stm_strdup(col->name);
    c->decltype = col->decltype && *col->decltype ? stm_strdup(col->decltype) : s_no_type;
    c->default_sql = col->default_sql ? stm_strdup(col->default_sql) : NULL;
    c->key_collation = col->key_collation ? stm_strdup(col->key_collation) : NULL;
}

catalog_table *stm_catalog_table_copy(const catalog_table *t)
{
    catalog_table *copy = stm_catalog_table_new(t->name, t->without_rowid);
    copy->keys = t->keys;
    copy->source = t->source ? stm_strdup(t->source) : NULL;
    for (size_t i = 0; i < t->count; i++)
        stm_catalog_table_add_column(copy, &t->columns[i]);
    return copy;
}

void stm_catalog_table_destroy(catalog_table **self_p)
{
    catalog_table *t = *self_p;
    if (!t)
        return;
    *self_p = NULL;
    if (t->shared) {
        t->shared--;
        return;
    }
    for (size_t i = 0; i < t->count; i++) {
        free(t->columns[i].name);
        if (t->columns[i].decltype != s_no_type)
            free(t->columns[i].decltype);
        free(t->columns[i].default_sql);
        free(t->columns[i].key_collation);
    }
    free(t->columns);
    free(t->by_name);
    free(t->source);
    free(t->name);
    free(t);
}

const char *stm_catalog_table_name(const catalog_table *t)
{
    return t->name;
}

bool stm_catalog_table_without_rowid(const catalog_table *t)
{
    return t->without_rowid;
}

directive_keys stm_catalog_table_keys(const catalog_table *t)
{
    return t->keys;
}

void stm_catalog_table_set_keys(catalog_table *t, directive_keys keys)
{
    t->keys = keys;
}

size_t stm_catalog_table_count(const catalog_table *t)
{
    return t->count;
}

const catalog_column *stm_catalog_table_column(const catalog_table *t, size_t i)
{
    return &t->columns[i];
}

size_t stm_catalog_table_key_count(const catalog_table *t)
{
    size_t n = 0;
    for (size_t i = 0; i < t->count; i++)
        n += t->columns[i].pk > 0;
    return n;
}

const catalog_column *stm_catalog_table_key(const catalog_table *t, size_t i)
{
    for (size_t c = 0; c < t->count; c++)
        if (t->columns[c].pk > 0 && (size_t)t->columns[c].pk == i + 1)
            return &t->columns[c];
    return NULL;
}

/* The table whose by_name qsort is ordering (qsort passes no context). */
static const catalog_table *s_sorting;

static int s_compare_indexes(const void *pa, const void *pb)
{
    uint32_t a = *(const uint32_t *)pa, b = *(const uint32_t *)pb;
    int cmp = sqlite3_stricmp(s_sorting->columns[a].name, s_sorting->columns[b].name);
    return cmp ? cmp : (a > b) - (a < b); /* duplicates in declaration order */
}

/* Builds by_name when it is stale. The table is logically unchanged (a cache), so a
 * const table may have it built; tables are never shared between threads. */
static void s_index(const catalog_table *ct)
{
    catalog_table *t = (catalog_table *)ct;
    if (t->by_name && t->nby_name == t->count)
        return;
    free(t->by_name);
    t->by_name = stm_malloc((t->count ? t->count : 1) * sizeof *t->by_name);
    for (size_t i = 0; i < t->count; i++)
        t->by_name[i] = (uint32_t)i;
    s_sorting = t;
    qsort(t->by_name, t->count, sizeof *t->by_name, s_compare_indexes);
    s_sorting = NULL;
    t->nby_name = t->count;
}

const catalog_column *stm_catalog_table_find(const catalog_table *t, const char *name)
{
    if (t->count <= S_INDEX_MIN) {
        for (size_t i = 0; i < t->count; i++)
            if (sqlite3_stricmp(t->columns[i].name, name) == 0)
                return &t->columns[i];
        return NULL;
    }
    s_index(t);
    size_t lo = 0, hi = t->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const catalog_column *c = &t->columns[t->by_name[mid]];
        int cmp = sqlite3_stricmp(c->name, name);
        if (cmp == 0) {
            /* The first of equal names, as the linear search finds it. */
            while (mid > 0 && sqlite3_stricmp(t->columns[t->by_name[mid - 1]].name, name) == 0)
                mid--;
            return &t->columns[t->by_name[mid]];
        }
        if (cmp < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

const catalog_column *stm_catalog_table_duplicate(const catalog_table *t)
{
    if (t->count < 2)
        return NULL;
    s_index(t);
    for (size_t i = 1; i < t->count; i++)
        if (sqlite3_stricmp(t->columns[t->by_name[i - 1]].name, t->columns[t->by_name[i]].name) ==
            0)
            return &t->columns[t->by_name[i]];
    return NULL;
}

static bool s_str_equal(const char *a, const char *b)
{
    if (!a || !b)
        return a == b;
    return strcmp(a, b) == 0;
}

bool stm_catalog_column_equal(const catalog_column *a, const catalog_column *b)
{
    return strcmp(a->name, b->name) == 0 && strcmp(a->decltype, b->decltype) == 0 &&
           a->affinity == b->affinity && a->not_null == b->not_null &&
           s_str_equal(a->default_sql, b->default_sql) && a->pk == b->pk &&
           a->hidden == b->hidden && s_str_equal(a->key_collation, b->key_collation);
}

static int s_compare_columns(const void *pa, const void *pb)
{
    const catalog_column *a = *(const catalog_column *const *)pa;
    const catalog_column *b = *(const catalog_column *const *)pb;
    return sqlite3_stricmp(a->name, b->name);
}

void stm_catalog_table_digest(const catalog_table *t, stm_hasher *h)
{
    /* Columns in order of case-folded name, so that a rebuild that only reorders
     * columns is not a change of definition. */
    const catalog_column **sorted = stm_malloc((t->count ? t->count : 1) * sizeof *sorted);
    for (size_t i = 0; i < t->count; i++)
        sorted[i] = &t->columns[i];
    qsort(sorted, t->count, sizeof *sorted, s_compare_columns);
    stm_hasher_u32(h, t->without_rowid ? 1 : 0);
    stm_hasher_u32(h, (uint32_t)t->count);
    for (size_t i = 0; i < t->count; i++) {
        const catalog_column *c = sorted[i];
        stm_hasher_str(h, c->name);
        stm_hasher_str(h, c->decltype);
        stm_hasher_str(h, stm_catalog_affinity_name(c->affinity));
        stm_hasher_u32(h, c->not_null ? 1 : 0);
        stm_hasher_str(h, c->default_sql);
        stm_hasher_u32(h, (uint32_t)c->pk);
        stm_hasher_u32(h, (uint32_t)c->hidden);
        /* Not the key collation: stemma compared keys by it before it was recorded
         * here, so a head with it would set this build apart from older ones over
         * tables both treat alike. */
    }
    /* After the columns, and only when set, so that tables without it hash as they
     * always did. */
    if (t->keys != DIRECTIVE_KEYS_DEFAULT) {
        stm_hasher_u32(h, 0x6b657973u); /* "keys" */
        stm_hasher_str(h, stm_directive_keys_name(t->keys));
    }
    free(sorted);
}

static int s_compare_tables(const void *pa, const void *pb)
{
    const catalog_table *a = *(const catalog_table *const *)pa;
    const catalog_table *b = *(const catalog_table *const *)pb;
    return sqlite3_stricmp(a->name, b->name);
}

static int s_compare_names(const void *pa, const void *pb)
{
    return sqlite3_stricmp(*(const char *const *)pa, *(const char *const *)pb);
}

/* Reads the columns of table t from table_xinfo. */
static stm_err s_read_columns(sqlite3 *db, sqlite3_stmt *cols, catalog_table *t, stm_error *err)
{
    sqlite3_reset(cols);
    sqlite3_bind_text(cols, 1, t->name, -1, SQLITE_STATIC);
    int rc;
    while ((rc = sqlite3_step(cols)) == SQLITE_ROW) {
        const char *decltype = (const char *)sqlite3_column_text(cols, 1);
        catalog_column c = {
            .name = (char *)sqlite3_column_text(cols, 0),
            .decltype = (char *)(decltype ? decltype : ""),
            .affinity = stm_catalog_affinity_of(decltype ? decltype : ""),
            .not_null = sqlite3_column_int(cols, 2) != 0,
            .default_sql = (char *)sqlite3_column_text(cols, 3),
            .pk = sqlite3_column_int(cols, 4),
            .hidden = sqlite3_column_int(cols, 5),
        };
        stm_catalog_table_add_column(t, &c);
    }
    return rc == SQLITE_DONE ? STM_OK
                             : stm_error_db(err, db, NULL, "reading the catalog (%s)", t->name);
}

/* Reads the collations of t's key columns other than BINARY from its primary key
 * index; a table with no key, or whose key is its rowid, has none to read. */
static stm_err s_read_key_collations(sqlite3 *db, sqlite3_stmt *colls, catalog_table *t,
                                     stm_error *err)
{
    size_t keys = stm_catalog_table_key_count(t);
    if (keys == 0 || (keys == 1 && !t->without_rowid &&
                      sqlite3_stricmp(stm_catalog_table_key(t, 0)->decltype, "INTEGER") == 0))
        return STM_OK;
    sqlite3_reset(colls);
    sqlite3_bind_text(colls, 1, t->name, -1, SQLITE_STATIC);
    int rc;
    while ((rc = sqlite3_step(colls)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(colls, 0);
        const char *coll = (const char *)sqlite3_column_text(colls, 1);
        for (size_t i = 0; name && coll && i < t->count; i++)
            if (t->columns[i].pk && sqlite3_stricmp(t->columns[i].name, name) == 0 &&
                !t->columns[i].key_collation)
                t->columns[i].key_collation = stm_strdup(coll);
    }
    return rc == SQLITE_DONE ? STM_OK
                             : stm_error_db(err, db, NULL, "reading the catalog (%s)", t->name);
}

stm_err stm_catalog_read(sqlite3 *db, catalog_t **out, stm_error *err)
{
    return stm_catalog_read_since(db, NULL, out, err);
}

/* prev's table read from the very CREATE TABLE text source (name and all), or NULL. */
static const catalog_table *s_same_source(const catalog_t *prev, const char *name,
                                          const char *source)
{
    const catalog_table *t = prev ? stm_catalog_find(prev, name) : NULL;
    return t && t->source && strcmp(t->source, source) == 0 && strcmp(t->name, name) == 0 ? t
                                                                                          : NULL;
}

/* A table's name and CREATE TABLE text, as sqlite_schema holds them; or, when the
 * text is the one an earlier reading had, that reading's table (same: name and sql
 * are then NULL, nothing copied). */
typedef struct {
    char *name, *sql;
    const catalog_table *same;
} s_text;

static const char *s_text_name(const s_text *t)
{
    return t->same ? t->same->name : t->name;
}

static int s_text_cmp(const void *a, const void *b)
{
    return strcmp(s_text_name(a), s_text_name(b));
}

/* Every table's text, sorted by name (byte for byte, as sqlite_schema compares):
 * one scan, rather than one a table. */
static stm_err s_read_texts(sqlite3 *db, const catalog_t *prev, s_text **out, size_t *n,
                            stm_error *err)
{
    sqlite3_stmt *st = NULL;
    size_t cap = 0;
    *out = NULL;
    *n = 0;
    if (sqlite3_prepare_v2(db, "SELECT name, sql FROM sqlite_schema WHERE type = 'table'", -1, &st,
                           NULL) != SQLITE_OK)
        return stm_error_db(err, db, NULL, "reading the catalog (prepare)");
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 0);
        const char *sql = (const char *)sqlite3_column_text(st, 1);
        if (!name || !sql)
            continue;
        *out = stm_grow(*out, &cap, *n + 1, sizeof **out);
        const catalog_table *same = s_same_source(prev, name, sql);
        (*out)[(*n)++] =
            same ? (s_text){NULL, NULL, same} : (s_text){stm_strdup(name), stm_strdup(sql), NULL};
    }
    sqlite3_finalize(st);
    if (*n > 1)
        qsort(*out, *n, sizeof **out, s_text_cmp);
    return step == SQLITE_DONE ? STM_OK
                               : stm_error_db(err, db, NULL, "reading the catalog (tables)");
}

static void s_texts_free(s_text *t, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(t[i].name);
        free(t[i].sql);
    }
    free(t);
}

stm_err stm_catalog_read_since(sqlite3 *db, const catalog_t *prev, catalog_t **out, stm_error *err)
{
    /* A table whose text is the one read before is the table read before: only the
     * others are asked of SQLite. pragma table_list (SQLite 3.37) tells an ordinary
     * table from a virtual or shadow one, and which are WITHOUT ROWID; asked per table,
     * since every table it lists costs it a look at the table's columns. */
    static const char *kind_sql =
        "SELECT wr, type FROM pragma_table_list(?1) WHERE schema = 'main' "
        "AND type IN ('table', 'virtual')";
    static const char *columns_sql = "SELECT name, type, \"notnull\", dflt_value, pk, hidden "
                                     "FROM pragma_table_xinfo(?1) ORDER BY cid";
    /* A key column's collation is its primary key index's (a rowid alias has none). */
    static const char *collations_sql =
        "SELECT i.name, i.coll FROM pragma_index_list(?1) l, pragma_index_xinfo(l.name) i "
        "WHERE l.origin = 'pk' AND i.key AND i.coll <> 'BINARY'";
    sqlite3_stmt *kind = NULL, *cols = NULL, *colls = NULL;
    catalog_t *c = stm_calloc(1, sizeof *c);
    size_t cap = 0, virtual_cap = 0, ntexts = 0;
    s_text *texts = NULL;
    stm_err rc = s_read_texts(db, prev, &texts, &ntexts, err);
    if (rc != STM_OK)
        goto done;
    for (size_t i = 0; i < ntexts; i++) {
        const char *name = s_text_name(&texts[i]), *sql = texts[i].sql;
        if (strncasecmp(name, "sqlite_", 7) == 0)
            continue;
        /* Everything read below is SQLite's reading of that text: the same text, the
         * same table (WITHOUT ROWID included). */
        const catalog_table *same = texts[i].same;
        if (same) {
            /* Shared, not copied: a table read from a database is never changed after
             * (only its by_name cache is filled, alike for every holder), and a run of
             * migrations reads the catalog several times a step. */
            catalog_table *t = (catalog_table *)same;
            t->shared++;
            c->tables = stm_grow(c->tables, &cap, c->count + 1, sizeof *c->tables);
            c->tables[c->count++] = t;
            continue;
        }
        if (!kind && sqlite3_prepare_v2(db, kind_sql, -1, &kind, NULL) != SQLITE_OK) {
            rc = stm_error_db(err, db, NULL, "reading the catalog (prepare)");
            goto done;
        }
        sqlite3_reset(kind);
        sqlite3_bind_text(kind, 1, name, -1, SQLITE_STATIC);
        int step = sqlite3_step(kind);
        if (step == SQLITE_DONE)
            continue; /* a shadow table, or one of another schema */
        if (step != SQLITE_ROW) {
            rc = stm_error_db(err, db, NULL, "reading the catalog (tables)");
            goto done;
        }
        bool without_rowid = sqlite3_column_int(kind, 0) != 0;
        const char *type = (const char *)sqlite3_column_text(kind, 1);
        if (type && strcmp(type, "virtual") == 0) {
            c->virtuals = stm_grow(c->virtuals, &virtual_cap, c->nvirtual + 1, sizeof *c->virtuals);
            c->virtuals[c->nvirtual++] = stm_strdup(name);
            continue;
        }
        c->tables = stm_grow(c->tables, &cap, c->count + 1, sizeof *c->tables);
        catalog_table *t = stm_catalog_table_new(name, without_rowid);
        c->tables[c->count++] = t;
        t->source = texts[i].sql; /* taken */
        texts[i].sql = NULL;
        /* Prepared only when a table is read (an incremental reading often reads none). */
        if (!cols && (sqlite3_prepare_v2(db, columns_sql, -1, &cols, NULL) != SQLITE_OK ||
                      sqlite3_prepare_v2(db, collations_sql, -1, &colls, NULL) != SQLITE_OK)) {
            rc = stm_error_db(err, db, NULL, "reading the catalog (prepare)");
            goto done;
        }
        rc = stm_directive_read(sql, name, &t->keys, err);
        if (rc == STM_OK)
            rc = s_read_columns(db, cols, t, err);
        if (rc == STM_OK)
            rc = s_read_key_collations(db, colls, t, err);
        if (rc != STM_OK)
            goto done;
    }
    if (c->count > 1)
        qsort(c->tables, c->count, sizeof *c->tables, s_compare_tables);
    if (c->nvirtual > 1)
        qsort(c->virtuals, c->nvirtual, sizeof *c->virtuals, s_compare_names);
done:
    s_texts_free(texts, ntexts);
    sqlite3_finalize(kind);
    sqlite3_finalize(cols);
    sqlite3_finalize(colls);
    if (rc != STM_OK)
        stm_catalog_destroy(&c);
    else
        *out = c;
    return rc;
}

catalog_t *stm_catalog_share(const catalog_t *c)
{
    catalog_t *out = stm_calloc(1, sizeof *out);
    out->tables = stm_calloc(c->count ? c->count : 1, sizeof *out->tables);
    for (size_t i = 0; i < c->count; i++) {
        c->tables[i]->shared++;
        out->tables[out->count++] = c->tables[i];
    }
    out->virtuals = stm_calloc(c->nvirtual ? c->nvirtual : 1, sizeof *out->virtuals);
    for (size_t i = 0; i < c->nvirtual; i++)
        out->virtuals[out->nvirtual++] = stm_strdup(c->virtuals[i]);
    return out;
}

void stm_catalog_destroy(catalog_t **self_p)
{
    catalog_t *c = *self_p;
    if (!c)
        return;
    for (size_t i = 0; i < c->count; i++)
        stm_catalog_table_destroy(&c->tables[i]);
    free(c->tables);
    for (size_t i = 0; i < c->nvirtual; i++)
        free(c->virtuals[i]);
    free(c->virtuals);
    free(c);
    *self_p = NULL;
}

size_t stm_catalog_count(const catalog_t *c)
{
    return c->count;
}

const catalog_table *stm_catalog_at(const catalog_t *c, size_t i)
{
    return c->tables[i];
}

const catalog_table *stm_catalog_find(const catalog_t *c, const char *name)
{
    size_t lo = 0, hi = c->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int cmp = sqlite3_stricmp(c->tables[mid]->name, name);
        if (cmp == 0)
            return c->tables[mid];
        if (cmp < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

size_t stm_catalog_virtual_count(const catalog_t *c)
{
    return c->nvirtual;
}

const char *stm_catalog_virtual_at(const catalog_t *c, size_t i)
{
    return c->virtuals[i];
}
