#include "family.h"
#include "base/mem.h"

#include <stdlib.h>
#include <string.h>

struct family {
    char *name;             /* as first created */
    family_entry *entries;  /* in order of version */
    size_t count;           /* entries in use */
    size_t cap;             /* entries allocated */
};

const char *stm_family_action_name(family_action a)
{
    switch (a) {
    case FAMILY_CREATED:
        return "created";
    case FAMILY_CHANGED:
        return "changed";
    case FAMILY_DROPPED:
        return "dropped";
    }
    return "changed";
}

bool stm_family_action_parse(const char *name, family_action *out)
{
    for (int a = FAMILY_CREATED; a <= FAMILY_DROPPED; a++) {
        if (strcmp(name, stm_family_action_name((family_action)a)) == 0) {
            *out = (family_action)a;
            return true;
        }
    }
    return false;
}

family_t *stm_family_new(const char *name)
{
    family_t *f = stm_calloc(1, sizeof *f);
    f->name = stm_strdup(name);
    return f;
}

static void s_free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

void stm_family_destroy(family_t **self_p)
{
    family_t *f = *self_p;
    if (!f)
        return;
    for (size_t i = 0; i < f->count; i++) {
        family_entry *e = &f->entries[i];
        s_free_names(e->added, e->nadded);
        s_free_names(e->removed, e->nremoved);
        s_free_names(e->changed, e->nchanged);
        stm_catalog_table_destroy(&e->table);
    }
    free(f->entries);
    free(f->name);
    free(f);
    *self_p = NULL;
}

stm_id stm_family_head(const family_t *f)
{
    stm_id zero = {{0}};
    return f->count ? f->entries[f->count - 1].head : zero;
}

/* head(k) = H(head(k-1) || def(k)); a drop's def is the u32 0xffffffff. */
static void s_next_head(const stm_id *prev, const catalog_table *table, stm_id *out)
{
    stm_hasher h;
    stm_hasher_init(&h);
    stm_hasher_update(&h, prev->bytes, STM_ID_BYTES);
    if (table)
        stm_catalog_table_digest(table, &h);
    else
        stm_hasher_u32(&h, 0xffffffffu);
    stm_hasher_final(&h, out);
}

static void s_push_name(char ***names, size_t *n, const char *name)
{
    /* The capacity is implicit, the next power of two from 8: growing by one each time
     * copied n squared pointers for a table of many columns (seconds for 60,000 under
     * allocators that never grow in place). */
    if (*n >= 8 && (*n & (*n - 1)) == 0)
        *names = stm_realloc(*names, 2 * *n * sizeof **names);
    else if (*n == 0)
        *names = stm_malloc(8 * sizeof **names);
    (*names)[(*n)++] = stm_strdup(name);
}

/* Fills the entry's added/removed/changed lists from the two definitions. */
static void s_diff(family_entry *e, const catalog_table *before, const catalog_table *after)
{
    size_t nafter = after ? stm_catalog_table_count(after) : 0;
    size_t nbefore = before ? stm_catalog_table_count(before) : 0;
    for (size_t i = 0; i < nafter; i++) {
        const catalog_column *c = stm_catalog_table_column(after, i);
        const catalog_column *old = before ? stm_catalog_table_find(before, c->name) : NULL;
        if (!old)
            s_push_name(&e->added, &e->nadded, c->name);
        else if (!stm_catalog_column_equal(old, c))
            s_push_name(&e->changed, &e->nchanged, c->name);
    }
    for (size_t i = 0; i < nbefore; i++) {
        const catalog_column *c = stm_catalog_table_column(before, i);
        if (!after || !stm_catalog_table_find(after, c->name))
            s_push_name(&e->removed, &e->nremoved, c->name);
    }
}

static family_entry *s_push_entry(family_t *f, int version, const stm_id *version_id,
                                  family_action action, catalog_table *table, const stm_id *head)
{
    f->entries = stm_grow(f->entries, &f->cap, f->count + 1, sizeof *f->entries);
    family_entry *e = &f->entries[f->count];
    memset(e, 0, sizeof *e);
    e->version = version;
    e->version_id = *version_id;
    e->action = action;
    e->head = *head;
    e->table = table;
    s_diff(e, f->count ? f->entries[f->count - 1].table : NULL, table);
    f->count++;
    return e;
}

bool stm_family_record(family_t *f, int version, const stm_id *version_id,
                       const catalog_table *before, const catalog_table *after)
{
    if (!before && !after)
        return false;
    stm_id prev = stm_family_head(f);
    stm_id head;
    s_next_head(&prev, after, &head);
    if (before && after) {
        /* Unchanged when the definition hashes the same from the same head. */
        stm_id same;
        s_next_head(&prev, before, &same);
        if (stm_id_equal(&same, &head))
            return false;
    }
    family_action action = !before ? FAMILY_CREATED : !after ? FAMILY_DROPPED : FAMILY_CHANGED;
    s_push_entry(f, version, version_id, action, after ? stm_catalog_table_copy(after) : NULL,
                 &head);
    return true;
}

stm_err stm_family_append(family_t *f, int version, const stm_id *version_id, family_action action,
                          catalog_table *table, const stm_id *expected_head, stm_error *err)
{
    const family_entry *last = f->count ? &f->entries[f->count - 1] : NULL;
    bool live = last && last->table;
    const char *why = NULL;
    if (action == FAMILY_CREATED && live)
        why = "created again while it exists";
    else if (action != FAMILY_CREATED && !live)
        why = "changed or dropped before it was created";
    else if ((action == FAMILY_DROPPED) != (table == NULL))
        why = action == FAMILY_DROPPED ? "a drop that has columns" : "an entry with no columns";
    else if (last && version <= last->version)
        why = "versions out of order";
    if (why) {
        stm_catalog_table_destroy(&table);
        return stm_error_set(err, STM_ECORRUPT, "family %s, version %d: %s", f->name, version,
                             why);
    }
    stm_id prev = stm_family_head(f);
    stm_id head;
    s_next_head(&prev, table, &head);
    if (!stm_id_equal(&head, expected_head)) {
        stm_catalog_table_destroy(&table);
        return stm_error_set(err, STM_ECORRUPT,
                             "family %s, version %d: the head does not match its definition "
                             "(the file was edited or is damaged)",
                             f->name, version);
    }
    s_push_entry(f, version, version_id, action, table, &head);
    return STM_OK;
}

const char *stm_family_name(const family_t *f)
{
    return f->name;
}

size_t stm_family_count(const family_t *f)
{
    return f->count;
}

const family_entry *stm_family_entry_at(const family_t *f, size_t i)
{
    return &f->entries[i];
}

const catalog_table *stm_family_table(const family_t *f)
{
    return f->count ? f->entries[f->count - 1].table : NULL;
}

const catalog_table *stm_family_table_at(const family_t *f, int version)
{
    for (size_t i = f->count; i > 0; i--)
        if (f->entries[i - 1].version <= version)
            return f->entries[i - 1].table;
    return NULL;
}

family_t *stm_family_from_heads(const char *name, const stm_id *heads, size_t nheads,
                                catalog_table *current)
{
    family_t *f = stm_family_new(name);
    stm_id zero = {{0}};
    /* Exactly as many entries as heads: a peer's families cost what they hold. */
    if (nheads) {
        f->entries = stm_malloc(nheads * sizeof *f->entries);
        f->cap = nheads;
    }
    for (size_t i = 0; i < nheads; i++) {
        bool last = i + 1 == nheads;
        family_action action = i == 0 ? FAMILY_CREATED
                               : last && !current ? FAMILY_DROPPED
                                                  : FAMILY_CHANGED;
        family_entry *e = &f->entries[f->count++];
        memset(e, 0, sizeof *e);
        e->version_id = zero;
        e->action = action;
        e->head = heads[i];
        e->table = last ? current : NULL;
    }
    if (!nheads)
        stm_catalog_table_destroy(&current);
    return f;
}

static char **s_copy_names(char **names, size_t n)
{
    char **copy = stm_calloc(n + 1, sizeof *copy);
    for (size_t i = 0; i < n; i++)
        copy[i] = stm_strdup(names[i]);
    return copy;
}

family_t *stm_family_prefix(const family_t *f, int max_version)
{
    size_t n = 0;
    while (n < f->count && f->entries[n].version <= max_version)
        n++;
    if (n == 0)
        return NULL;
    family_t *copy = stm_family_new(f->name);
    copy->entries = stm_calloc(n, sizeof *copy->entries);
    copy->cap = n;
    for (size_t i = 0; i < n; i++) {
        const family_entry *e = &f->entries[i];
        family_entry *d = &copy->entries[i];
        *d = *e;
        d->added = s_copy_names(e->added, e->nadded);
        d->removed = s_copy_names(e->removed, e->nremoved);
        d->changed = s_copy_names(e->changed, e->nchanged);
        d->table = e->table ? stm_catalog_table_copy(e->table) : NULL;
    }
    copy->count = n;
    return copy;
}
