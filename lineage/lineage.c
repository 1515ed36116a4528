#include "lineage.h"
#include "base/buf.h"
#include "catalog.h"
#include "base/mem.h"
#include "sqlscript.h"

#include <sqlite3.h>
#include <assert.h>
#include <stdlib.h>
#include <string.h>

struct lineage {
    char *name;                /* the schema set's name */
    lineage_version *versions; /* index i holds number i + 1 */
    size_t count;
    size_t cap;
    family_t **families; /* sorted by name, case folded */
    size_t nfamilies;
    size_t families_cap;
    lineage_virtual *virtuals; /* sorted by name, case folded, then by version created */
    size_t nvirtual;
    size_t virtual_cap;
};

/* The description of every version a peer describes (it sends none), shared. */
static char s_no_description[] = "";

void stm_lineage_version_id(const stm_id *parent, int number, const char *text, size_t len,
                            stm_id *out)
{
    stm_hasher h;
    stm_hasher_init(&h);
    stm_hasher_update(&h, parent->bytes, STM_ID_BYTES);
    stm_hasher_u64(&h, (uint64_t)number);
    stm_hasher_update(&h, text, len);
    stm_hasher_final(&h, out);
}

lineage_t *stm_lineage_new(const char *name)
{
    lineage_t *l = stm_calloc(1, sizeof *l);
    l->name = stm_strdup(name);
    return l;
}

void stm_lineage_destroy(lineage_t **self_p)
{
    lineage_t *l = *self_p;
    if (!l)
        return;
    for (size_t i = 0; i < l->count; i++)
        if (l->versions[i].description != s_no_description)
            free(l->versions[i].description);
    free(l->versions);
    for (size_t i = 0; i < l->nfamilies; i++)
        stm_family_destroy(&l->families[i]);
    free(l->families);
    for (size_t i = 0; i < l->nvirtual; i++)
        free(l->virtuals[i].name);
    free(l->virtuals);
    free(l->name);
    free(l);
    *self_p = NULL;
}

stm_err stm_lineage_add_version(lineage_t *l, int number, const stm_id *id, const stm_id *parent,
                                const stm_id *checksum, const char *description, stm_error *err)
{
    if (number < 1 || (size_t)number != l->count + 1)
        return stm_error_set(err, STM_ECORRUPT, "version %d: expected number %zu", number,
                             l->count + 1);
    stm_id zero = {{0}};
    const stm_id *expected = l->count ? &l->versions[l->count - 1].id : &zero;
    if (!stm_id_equal(parent, expected))
        return stm_error_set(err, STM_ECORRUPT,
                             "version %d: its parent is not the id of version %d", number,
                             number - 1);
    /* Copied before the array grows: the caller may have pointed into it. */
    stm_id new_id = *id, new_parent = *parent, new_checksum = *checksum;
    l->versions = stm_grow(l->versions, &l->cap, l->count + 1, sizeof *l->versions);
    lineage_version *v = &l->versions[l->count++];
    v->number = number;
    v->id = new_id;
    v->parent = new_parent;
    v->checksum = new_checksum;
    v->description = description && *description ? stm_strdup(description) : s_no_description;
    return STM_OK;
}

void stm_lineage_reserve(lineage_t *l, size_t n)
{
    if (n <= l->cap)
        return;
    l->versions = stm_realloc(l->versions, n * sizeof *l->versions);
    l->cap = n;
}

/* Index of the family named name, or where it would go (*found false). */
static size_t s_family_slot(const lineage_t *l, const char *name, bool *found)
{
    size_t lo = 0, hi = l->nfamilies;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int cmp = sqlite3_stricmp(stm_family_name(l->families[mid]), name);
        if (cmp == 0) {
            *found = true;
            return mid;
        }
        if (cmp < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

stm_err stm_lineage_add_family(lineage_t *l, family_t *f, stm_error *err)
{
    bool found;
    size_t slot = s_family_slot(l, stm_family_name(f), &found);
    if (found) {
        stm_error_set(err, STM_ECORRUPT, "family %s appears twice", stm_family_name(f));
        stm_family_destroy(&f);
        return STM_ECORRUPT;
    }
    l->families = stm_grow(l->families, &l->families_cap, l->nfamilies + 1, sizeof *l->families);
    memmove(&l->families[slot + 1], &l->families[slot],
            (l->nfamilies - slot) * sizeof *l->families);
    l->families[slot] = f;
    l->nfamilies++;
    return STM_OK;
}

/* The family of that name, made when it does not exist yet. */
static family_t *s_family_for(lineage_t *l, const char *name)
{
    bool found;
    size_t slot = s_family_slot(l, name, &found);
    if (found)
        return l->families[slot];
    family_t *f = stm_family_new(name);
    /* Cannot fail: the name was just looked for and is not there. */
    stm_err rc = stm_lineage_add_family(l, f, NULL);
    assert(rc == STM_OK);
    (void)rc;
    return f;
}

/* ---- virtual tables ---- */

/* Index of the first virtual table whose name sorts after name: one past the last life
 * of name. */
static size_t s_virtual_after(const lineage_t *l, const char *name)
{
    size_t lo = 0, hi = l->nvirtual;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (sqlite3_stricmp(l->virtuals[mid].name, name) <= 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Inserts a life of name at slot, in order (the callers found the slot). */
static void s_virtual_insert(lineage_t *l, size_t slot, const char *name, int created, int dropped)
{
    l->virtuals = stm_grow(l->virtuals, &l->virtual_cap, l->nvirtual + 1, sizeof *l->virtuals);
    memmove(&l->virtuals[slot + 1], &l->virtuals[slot], (l->nvirtual - slot) * sizeof *l->virtuals);
    l->virtuals[slot] = (lineage_virtual){stm_strdup(name), created, dropped};
    l->nvirtual++;
}

stm_err stm_lineage_add_virtual(lineage_t *l, const char *name, int created, int dropped,
                                stm_error *err)
{
    int count = (int)l->count;
    if (created < 1 || created > count || dropped < 0 || dropped > count ||
        (dropped && dropped <= created))
        return stm_error_set(err, STM_ECORRUPT,
                             "virtual table %s: created at %d and dropped at %d, which does "
                             "not fit versions 1 to %d",
                             name, created, dropped, count);
    const lineage_virtual *last = l->nvirtual ? &l->virtuals[l->nvirtual - 1] : NULL;
    int cmp = last ? sqlite3_stricmp(last->name, name) : -1;
    if (cmp > 0 || (cmp == 0 && (!last->dropped || last->dropped > created)))
        return stm_error_set(err, STM_ECORRUPT,
                             "virtual table %s: out of order (by name, then by the version "
                             "created, each life after the one before)",
                             name);
    s_virtual_insert(l, l->nvirtual, name, created, dropped);
    return STM_OK;
}

size_t stm_lineage_virtual_count(const lineage_t *l)
{
    return l->nvirtual;
}

const lineage_virtual *stm_lineage_virtual_at(const lineage_t *l, size_t i)
{
    return &l->virtuals[i];
}

bool stm_lineage_virtual_live(const lineage_virtual *v, int n)
{
    return v->created <= n && (v->dropped == 0 || v->dropped > n);
}

/* Records the virtual tables created and dropped at version between two catalogs. */
static void s_record_virtuals(lineage_t *l, int version, const catalog_t *before,
                              const catalog_t *after)
{
    size_t nbefore = before ? stm_catalog_virtual_count(before) : 0;
    size_t nafter = stm_catalog_virtual_count(after);
    for (size_t i = 0, j = 0; i < nbefore || j < nafter;) {
        const char *was = i < nbefore ? stm_catalog_virtual_at(before, i) : NULL;
        const char *is = j < nafter ? stm_catalog_virtual_at(after, j) : NULL;
        int cmp = !was ? 1 : !is ? -1 : sqlite3_stricmp(was, is);
        if (cmp == 0) {
            i++, j++;
        } else if (cmp < 0) {
            /* Dropped: its life is the last of its name, and still open. */
            size_t slot = s_virtual_after(l, was);
            assert(slot > 0 && l->virtuals[slot - 1].dropped == 0);
            l->virtuals[slot - 1].dropped = version;
            i++;
        } else {
            s_virtual_insert(l, s_virtual_after(l, is), is, version, 0);
            j++;
        }
    }
}

/* ---- building ---- */

/* Records in the families every table that differs between two catalogs. */
static void s_record_catalog(lineage_t *l, const lineage_version *v, const catalog_t *before,
                             const catalog_t *after)
{
    size_t nafter = stm_catalog_count(after);
    for (size_t i = 0; i < nafter; i++) {
        const catalog_table *t = stm_catalog_at(after, i);
        const catalog_table *old =
            before ? stm_catalog_find(before, stm_catalog_table_name(t)) : NULL;
        stm_family_record(s_family_for(l, stm_catalog_table_name(t)), v->number, &v->id, old, t);
    }
    size_t nbefore = before ? stm_catalog_count(before) : 0;
    for (size_t i = 0; i < nbefore; i++) {
        const catalog_table *t = stm_catalog_at(before, i);
        if (!stm_catalog_find(after, stm_catalog_table_name(t)))
            stm_family_record(s_family_for(l, stm_catalog_table_name(t)), v->number, &v->id, t,
                              NULL);
    }
}

/* Runs one migration in its own transaction. */
static stm_err s_run_migration(sqlite3 *db, const char *dir, const schemaset_migration *m,
                               stm_error *err)
{
    buf_t pathbuf = BUF_INIT;
    stm_buf_printf(&pathbuf, "%s/%s", dir, m->file);
    const char *path = stm_buf_str(&pathbuf);
    stm_err rc = STM_OK;
    if (sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
        rc = stm_error_set(err, STM_EDB, "%s: cannot begin: %s", path, sqlite3_errmsg(db));
    else if ((rc = stm_sqlscript_run(db, path, m->text, 0, err)) != STM_OK)
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    else if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        rc = stm_error_set(err, STM_EINPUT, "%s: %s", path, sqlite3_errmsg(db));
    stm_buf_free(&pathbuf);
    return rc;
}

stm_err stm_lineage_build(const schemaset_t *set, lineage_t **out, stm_error *err)
{
    sqlite3 *db;
    stm_err rc = stm_sqlscript_open_memory(&db, err);
    if (rc != STM_OK)
        return rc;
    lineage_t *l = stm_lineage_new(stm_schemaset_name(set));
    catalog_t *before = NULL;
    for (size_t i = 0; i < stm_schemaset_count(set) && rc == STM_OK; i++) {
        const schemaset_migration *m = stm_schemaset_at(set, i);
        stm_id parent = {{0}}, id, checksum;
        if (l->count)
            parent = l->versions[l->count - 1].id;
        stm_lineage_version_id(&parent, m->number, m->text, m->text_len, &id);
        stm_id_hash(m->text, m->text_len, &checksum);
        rc = stm_lineage_add_version(l, m->number, &id, &parent, &checksum, m->description, err);
        if (rc != STM_OK)
            break;
        int cookie = stm_sqlscript_schema_cookie(db);
        rc = s_run_migration(db, stm_schemaset_dir(set), m, err);
        if (rc != STM_OK || (before && stm_sqlscript_schema_cookie(db) == cookie))
            continue; /* the schema did not change: no family did either */
        catalog_t *after = NULL;
        rc = stm_catalog_read(db, &after, err);
        if (rc != STM_OK)
            break;
        s_record_catalog(l, &l->versions[l->count - 1], before, after);
        s_record_virtuals(l, m->number, before, after);
        stm_catalog_destroy(&before);
        before = after;
    }
    stm_catalog_destroy(&before);
    sqlite3_close(db);
    if (rc != STM_OK) {
        stm_lineage_destroy(&l);
        return rc;
    }
    *out = l;
    return STM_OK;
}

const char *stm_lineage_name(const lineage_t *l)
{
    return l->name;
}

size_t stm_lineage_count(const lineage_t *l)
{
    return l->count;
}

const lineage_version *stm_lineage_version_at(const lineage_t *l, size_t i)
{
    return &l->versions[i];
}

const lineage_version *stm_lineage_head(const lineage_t *l)
{
    return l->count ? &l->versions[l->count - 1] : NULL;
}

size_t stm_lineage_family_count(const lineage_t *l)
{
    return l->nfamilies;
}

const family_t *stm_lineage_family_at(const lineage_t *l, size_t i)
{
    return l->families[i];
}

const family_t *stm_lineage_family_find(const lineage_t *l, const char *name)
{
    bool found;
    size_t slot = s_family_slot(l, name, &found);
    return found ? l->families[slot] : NULL;
}

lineage_t *stm_lineage_prefix(const lineage_t *l, size_t n)
{
    lineage_t *p = stm_lineage_new(l->name);
    if (n > l->count)
        n = l->count;
    for (size_t i = 0; i < n; i++) {
        const lineage_version *v = &l->versions[i];
        /* Cannot fail: l's versions already passed the checks, in this order. */
        stm_err rc = stm_lineage_add_version(p, v->number, &v->id, &v->parent, &v->checksum,
                                             v->description, NULL);
        assert(rc == STM_OK);
        (void)rc;
    }
    for (size_t i = 0; i < l->nfamilies; i++) {
        family_t *f = stm_family_prefix(l->families[i], (int)n);
        if (!f)
            continue;
        /* Cannot fail: l's family names are distinct. */
        stm_err rc = stm_lineage_add_family(p, f, NULL);
        assert(rc == STM_OK);
        (void)rc;
    }
    for (size_t i = 0; i < l->nvirtual; i++) {
        const lineage_virtual *v = &l->virtuals[i];
        if ((size_t)v->created <= n)
            s_virtual_insert(p, p->nvirtual, v->name, v->created,
                             v->dropped && (size_t)v->dropped <= n ? v->dropped : 0);
    }
    return p;
}
