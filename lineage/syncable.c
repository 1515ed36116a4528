/* syncable.c - the rule of syncable.h, and the tables of a version it refuses. */
#include "syncable.h"
#include "base/mem.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* SYNCABLE_MAX_KEY_COLUMNS spelt out, for a static message. */
#define S_STR2(x) #x
#define S_STR(x) S_STR2(x)
#define S_MAX_KEY S_STR(SYNCABLE_MAX_KEY_COLUMNS)

bool stm_syncable_is_own(const char *name)
{
    return sqlite3_strnicmp(name, "stemma_", 7) == 0 ||
           sqlite3_stricmp(name, "schema_version") == 0;
}

syncable_reason stm_syncable_classify(const catalog_table *t, bool excluded)
{
    if (stm_syncable_is_own(stm_catalog_table_name(t)))
        return SYNCABLE_OWN;
    if (excluded)
        return SYNCABLE_EXCLUDED;
    size_t keys = stm_catalog_table_key_count(t);
    if (keys == 0)
        return SYNCABLE_NO_KEY;
    if (keys > SYNCABLE_MAX_KEY_COLUMNS)
        return SYNCABLE_WIDE_KEY;
    for (size_t k = 0; k < keys; k++)
        if (!stm_syncable_known_collation(stm_catalog_table_key(t, k)->key_collation))
            return SYNCABLE_COLLATION;
    return SYNCABLE_SYNCED;
}

bool stm_syncable_known_collation(const char *name)
{
    return !name || sqlite3_stricmp(name, "BINARY") == 0 || sqlite3_stricmp(name, "NOCASE") == 0 ||
           sqlite3_stricmp(name, "RTRIM") == 0;
}

const char *stm_syncable_reason_name(syncable_reason r)
{
    switch (r) {
    case SYNCABLE_SYNCED:
        return "synced";
    case SYNCABLE_OWN:
        return "own";
    case SYNCABLE_EXCLUDED:
        return "excluded";
    case SYNCABLE_VIRTUAL:
        return "virtual";
    case SYNCABLE_NO_KEY:
        return "no_key";
    case SYNCABLE_WIDE_KEY:
        return "wide_key";
    case SYNCABLE_COLLATION:
        return "collation";
    case SYNCABLE_UNCAPTURED:
        return "uncaptured";
    }
    return "synced";
}

const char *stm_syncable_reason_text(syncable_reason r)
{
    switch (r) {
    case SYNCABLE_SYNCED:
        return "synced";
    case SYNCABLE_OWN:
        return "one of stemma's own tables";
    case SYNCABLE_EXCLUDED:
        return "excluded (stemma migrate --exclude)";
    case SYNCABLE_VIRTUAL:
        return "a virtual table (triggers cannot capture its rows)";
    case SYNCABLE_NO_KEY:
        return "no primary key (rowids differ between devices); add one in a migration, or keep "
               "it local with --exclude";
    case SYNCABLE_WIDE_KEY:
        return "a primary key of more than " S_MAX_KEY " columns; give it one of at most " S_MAX_KEY
               " in a migration, or keep it local with --exclude";
    case SYNCABLE_COLLATION:
        return "its key compares by a collation stemma does not have (only BINARY, NOCASE and "
               "RTRIM); use one of those, or keep it local with --exclude";
    case SYNCABLE_UNCAPTURED:
        return "not captured yet: made after stemma set capture up, which the next migration "
               "step does again (the rows it holds by then stay local)";
    }
    return "synced";
}

static bool s_excluded(const char *name, const char *const *excluded, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (sqlite3_stricmp(excluded[i], name) == 0)
            return true;
    return false;
}

static int s_compare(const void *pa, const void *pb)
{
    const syncable_table *a = pa, *b = pb;
    return sqlite3_stricmp(a->name, b->name);
}

/* Appends (name, reason) to the list *tables of *n entries, *cap allocated. */
static void s_add(syncable_table **tables, size_t *n, size_t *cap, const char *name,
                  syncable_reason reason)
{
    *tables = stm_grow(*tables, cap, *n + 1, sizeof **tables);
    (*tables)[(*n)++] = (syncable_table){stm_strdup(name), reason, false};
}

size_t stm_syncable_unsynced(const lineage_t *l, int version, const char *const *excluded,
                             size_t nexcluded, syncable_table **out)
{
    syncable_table *tables = NULL;
    size_t n = 0, cap = 0;
    for (size_t i = 0; i < stm_lineage_family_count(l); i++) {
        const catalog_table *t = stm_family_table_at(stm_lineage_family_at(l, i), version);
        if (!t)
            continue;
        const char *name = stm_catalog_table_name(t);
        syncable_reason r = stm_syncable_classify(t, s_excluded(name, excluded, nexcluded));
        if (r != SYNCABLE_SYNCED && r != SYNCABLE_OWN)
            s_add(&tables, &n, &cap, name, r);
    }
    for (size_t i = 0; i < stm_lineage_virtual_count(l); i++) {
        const lineage_virtual *v = stm_lineage_virtual_at(l, i);
        if (!stm_lineage_virtual_live(v, version) || stm_syncable_is_own(v->name))
            continue;
        s_add(&tables, &n, &cap, v->name,
              s_excluded(v->name, excluded, nexcluded) ? SYNCABLE_EXCLUDED : SYNCABLE_VIRTUAL);
    }
    if (n > 1)
        qsort(tables, n, sizeof *tables, s_compare);
    *out = tables;
    return n;
}

static int s_compare_names(const void *pa, const void *pb);

void stm_syncable_add_outside(const catalog_t *c, const lineage_t *l, const char *const *excluded,
                              size_t nexcluded, syncable_table **tables, size_t *n, char ***names,
                              size_t *nnames)
{
    size_t n0 = *n, cap = *n, ncap = names ? *nnames : 0, nn0 = names ? *nnames : 0;
    for (size_t i = 0; i < stm_catalog_count(c); i++) {
        const catalog_table *t = stm_catalog_at(c, i);
        const char *name = stm_catalog_table_name(t);
        if (stm_lineage_family_find(l, name))
            continue;
        syncable_reason r = stm_syncable_classify(t, s_excluded(name, excluded, nexcluded));
        if (r == SYNCABLE_OWN)
            continue;
        if (r != SYNCABLE_SYNCED) {
            s_add(tables, n, &cap, name, r);
            (*tables)[*n - 1].outside = true;
        } else if (names) {
            *names = stm_grow(*names, &ncap, *nnames + 1, sizeof **names);
            (*names)[(*nnames)++] = stm_strdup(name);
        }
    }
    for (size_t i = 0; i < stm_catalog_virtual_count(c); i++) {
        const char *name = stm_catalog_virtual_at(c, i);
        bool known = stm_syncable_is_own(name);
        for (size_t k = 0; k < stm_lineage_virtual_count(l) && !known; k++)
            known = sqlite3_stricmp(stm_lineage_virtual_at(l, k)->name, name) == 0;
        if (known)
            continue;
        s_add(tables, n, &cap, name,
              s_excluded(name, excluded, nexcluded) ? SYNCABLE_EXCLUDED : SYNCABLE_VIRTUAL);
        (*tables)[*n - 1].outside = true;
    }
    if (*n > n0 && *n > 1)
        qsort(*tables, *n, sizeof **tables, s_compare);
    if (names && *nnames > nn0 && *nnames > 1)
        qsort(*names, *nnames, sizeof **names, s_compare_names);
}

void stm_syncable_move_uncaptured(bool (*captured)(const char *table, void *ctx), void *ctx,
                                  char **names, size_t *nnames, syncable_table **tables,
                                  size_t *n)
{
    size_t kept = 0, n0 = *n, cap = *n;
    for (size_t i = 0; i < *nnames; i++) {
        if (captured(names[i], ctx)) {
            names[kept++] = names[i];
            continue;
        }
        *tables = stm_grow(*tables, &cap, *n + 1, sizeof **tables);
        (*tables)[(*n)++] = (syncable_table){names[i], SYNCABLE_UNCAPTURED, true};
    }
    *nnames = kept;
    if (*n > n0 && *n > 1)
        qsort(*tables, *n, sizeof **tables, s_compare);
}

const syncable_table *stm_syncable_find(const syncable_table *tables, size_t n, const char *name)
{
    syncable_table key = {(char *)name, SYNCABLE_SYNCED, false};
    return n ? bsearch(&key, tables, n, sizeof *tables, s_compare) : NULL;
}

void stm_syncable_tables_free(syncable_table *tables, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(tables[i].name);
    free(tables);
}

bool stm_syncable_rowid_alias(const catalog_table *t)
{
    /* SQLite makes a rowid alias of a key of one column declared exactly INTEGER, in
     * a table with rowids (https://sqlite.org/lang_createtable.html#rowid). */
    if (stm_catalog_table_without_rowid(t) || stm_catalog_table_key_count(t) != 1)
        return false;
    return strcasecmp(stm_catalog_table_key(t, 0)->decltype, "INTEGER") == 0;
}

bool stm_syncable_keys_per_device(const catalog_table *t)
{
    directive_keys setting = stm_catalog_table_keys(t);
    if (setting != DIRECTIVE_KEYS_DEFAULT)
        return setting == DIRECTIVE_KEYS_PER_DEVICE;
    return stm_syncable_rowid_alias(t);
}

static int s_compare_names(const void *pa, const void *pb)
{
    return sqlite3_stricmp(*(char *const *)pa, *(char *const *)pb);
}

size_t stm_syncable_per_device(const lineage_t *l, int version, const char *const *excluded,
                               size_t nexcluded, char ***out)
{
    char **names = NULL;
    size_t n = 0, cap = 0;
    for (size_t i = 0; i < stm_lineage_family_count(l); i++) {
        const catalog_table *t = stm_family_table_at(stm_lineage_family_at(l, i), version);
        if (!t || !stm_syncable_keys_per_device(t))
            continue;
        const char *name = stm_catalog_table_name(t);
        if (stm_syncable_classify(t, s_excluded(name, excluded, nexcluded)) != SYNCABLE_SYNCED)
            continue;
        names = stm_grow(names, &cap, n + 1, sizeof *names);
        names[n++] = stm_strdup(name);
    }
    if (n > 1)
        qsort(names, n, sizeof *names, s_compare_names);
    *out = names;
    return n;
}

size_t stm_syncable_synced(const lineage_t *l, int version, const char *const *excluded,
                           size_t nexcluded, char ***out)
{
    char **names = NULL;
    size_t n = 0, cap = 0;
    for (size_t i = 0; i < stm_lineage_family_count(l); i++) {
        const catalog_table *t = stm_family_table_at(stm_lineage_family_at(l, i), version);
        if (!t)
            continue;
        const char *name = stm_catalog_table_name(t);
        if (stm_syncable_classify(t, s_excluded(name, excluded, nexcluded)) != SYNCABLE_SYNCED)
            continue;
        names = stm_grow(names, &cap, n + 1, sizeof *names);
        names[n++] = stm_strdup(name);
    }
    if (n > 1)
        qsort(names, n, sizeof *names, s_compare_names);
    *out = names;
    return n;
}

size_t stm_syncable_keys_changed(const lineage_t *l, int from, int to,
                                 const char *const *excluded, size_t nexcluded, char ***out)
{
    char **names = NULL;
    size_t n = 0, cap = 0;
    for (size_t i = 0; from != to && i < stm_lineage_family_count(l); i++) {
        const family_t *f = stm_lineage_family_at(l, i);
        const catalog_table *a = stm_family_table_at(f, from), *b = stm_family_table_at(f, to);
        if (!a || !b || stm_syncable_keys_per_device(a) == stm_syncable_keys_per_device(b))
            continue;
        bool ex = s_excluded(stm_catalog_table_name(b), excluded, nexcluded);
        if (stm_syncable_classify(a, ex) != SYNCABLE_SYNCED ||
            stm_syncable_classify(b, ex) != SYNCABLE_SYNCED)
            continue;
        names = stm_grow(names, &cap, n + 1, sizeof *names);
        names[n++] = stm_strdup(stm_catalog_table_name(b));
    }
    if (n > 1)
        qsort(names, n, sizeof *names, s_compare_names);
    *out = names;
    return n;
}

void stm_syncable_names_free(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}
