/* admit.c - the policy judged per operation, by its writer's version (admit.h). */
#include "admit.h"
#include "settings.h"
#include "base/mem.h"
#include "lineage/relation.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What the policy says of one version. */
typedef struct {
    stm_id version;         /* the writer's version */
    bool used;              /* this slot holds a decision */
    bool unknown;           /* nothing describes the version: everything parks */
    relation_kind relation; /* of the database's lineage to the version's */
    policy_mode mode;       /* the policy for that relation */
    comparison_t *cmp;      /* under shared: the database against the version; owned */
    lineage_t *owned;       /* the version's lineage when made here (a prefix); owned */
} s_decision;

/* What a learned lineage's HELLO said its migrations did: version v's changes at
 * [v - 1] (none for a version it did not list), owned. */
typedef struct {
    lens_change **changes;
    size_t *nchanges;
    bool *probed;
    bool any; /* the HELLO carried lenses at all */
} s_lenses;

struct admit {
    peer_policy policy;
    const lineage_t *db;     /* lent: the database's lineage */
    const lineage_t *set;    /* lent: the schema set's, or NULL */
    const lens_set_t *lenses; /* lent, or NULL */
    lineage_t *known[ADMIT_KNOWN_MAX]; /* learned from HELLOs, owned; oldest first */
    s_lenses known_lenses[ADMIT_KNOWN_MAX]; /* ... and their lenses */
    size_t nknown;
    lens_branch branch;      /* the last stm_admit_branch answered */
    s_decision decisions[ADMIT_DECISIONS_MAX];
    size_t last;             /* the slot that answered last */
    size_t next;             /* the slot the next new decision takes */
};

admit_t *stm_admit_new(const peer_policy *p)
{
    admit_t *a = stm_calloc(1, sizeof *a);
    a->policy = *p;
    return a;
}

static void s_forget(admit_t *a)
{
    for (size_t i = 0; i < ADMIT_DECISIONS_MAX; i++) {
        s_decision *d = &a->decisions[i];
        /* The comparison borrows names from the lineages: freed before them. */
        stm_comparison_destroy(&d->cmp);
        stm_lineage_destroy(&d->owned);
        memset(d, 0, sizeof *d);
    }
    a->last = a->next = 0;
}

static void s_lenses_free(s_lenses *l, size_t versions)
{
    for (size_t v = 0; l->changes && v < versions; v++) {
        for (size_t k = 0; k < l->nchanges[v]; k++)
            stm_lens_change_free(&l->changes[v][k]);
        free(l->changes[v]);
    }
    free(l->changes);
    free(l->nchanges);
    free(l->probed);
    memset(l, 0, sizeof *l);
}

/* A copy of what a HELLO said, by version, for a lineage of versions versions. */
static s_lenses s_lenses_copy(const wire_lenses *w, size_t versions)
{
    s_lenses l = {0};
    if (!w || !w->count)
        return l;
    l.any = true;
    l.changes = stm_calloc(versions + 1, sizeof *l.changes);
    l.nchanges = stm_calloc(versions + 1, sizeof *l.nchanges);
    l.probed = stm_calloc(versions + 1, sizeof *l.probed);
    for (size_t v = 0; v < versions; v++)
        l.probed[v] = true;
    for (size_t i = 0; i < w->count; i++) {
        const wire_lens_step *st = &w->steps[i];
        if (st->version < 1 || st->version > versions)
            continue;
        size_t v = st->version - 1;
        l.probed[v] = st->probed;
        l.changes[v] = stm_calloc(st->count + 1, sizeof *l.changes[v]);
        for (size_t k = 0; k < st->count; k++)
            l.changes[v][k] = stm_lens_change_copy(&st->changes[k]);
        l.nchanges[v] = st->count;
    }
    return l;
}

void stm_admit_destroy(admit_t **self_p)
{
    admit_t *a = *self_p;
    if (!a)
        return;
    s_forget(a);
    for (size_t i = 0; i < a->nknown; i++) {
        s_lenses_free(&a->known_lenses[i], stm_lineage_count(a->known[i]));
        stm_lineage_destroy(&a->known[i]);
    }
    free(a);
    *self_p = NULL;
}

void stm_admit_set_local(admit_t *a, const lineage_t *db, const lineage_t *set,
                         const lens_set_t *lenses)
{
    s_forget(a);
    a->db = db;
    a->set = set;
    a->lenses = lenses;
}

size_t stm_admit_known_count(const admit_t *a)
{
    return a->nknown;
}

/* The number of the version id in l (1 ..), or 0 when it is none of l's. */
static size_t s_number_in(const lineage_t *l, const stm_id *id)
{
    if (!l)
        return 0;
    for (size_t i = stm_lineage_count(l); i-- > 0;)
        if (stm_id_equal(&stm_lineage_version_at(l, i)->id, id))
            return i + 1;
    return 0;
}

bool stm_admit_learn(admit_t *a, const lineage_t *remote, const wire_lenses *lenses)
{
    const lineage_version *head = stm_lineage_head(remote);
    if (!head || s_number_in(a->db, &head->id) || s_number_in(a->set, &head->id))
        return false;
    for (size_t i = 0; i < a->nknown; i++) {
        const lineage_version *h = stm_lineage_head(a->known[i]);
        if (stm_id_equal(&h->id, &head->id))
            return false;
    }
    /* Decisions may borrow from the lineage forgotten, and one that said "unknown" may
     * not hold any more. */
    s_forget(a);
    if (a->nknown == ADMIT_KNOWN_MAX) {
        s_lenses_free(&a->known_lenses[0], stm_lineage_count(a->known[0]));
        stm_lineage_destroy(&a->known[0]);
        memmove(&a->known[0], &a->known[1], (ADMIT_KNOWN_MAX - 1) * sizeof a->known[0]);
        memmove(&a->known_lenses[0], &a->known_lenses[1],
                (ADMIT_KNOWN_MAX - 1) * sizeof a->known_lenses[0]);
        a->nknown--;
    }
    a->known_lenses[a->nknown] = s_lenses_copy(lenses, stm_lineage_count(remote));
    a->known[a->nknown++] = stm_lineage_prefix(remote, SIZE_MAX);
    return true;
}

/* The learned lineage holding version (the newest learned first): its index, and the
 * version's number in it; false when none does. */
static bool s_known_at(const admit_t *a, const stm_id *version, size_t *index, size_t *number)
{
    for (size_t i = a->nknown; i-- > 0;)
        if ((*number = s_number_in(a->known[i], version)) != 0) {
            *index = i;
            return true;
        }
    return false;
}

const lens_branch *stm_admit_branch(void *ctx, const stm_id *version, size_t *upto)
{
    admit_t *a = ctx;
    size_t i, x;
    if (!a->set || !s_known_at(a, version, &i, &x) || !a->known_lenses[i].any)
        return NULL;
    /* The last version it shares with the schema set: ids are a hash chain, so the
     * first that differs ends what both hold. */
    const lineage_t *k = a->known[i];
    size_t base = 0;
    while (base < x && base < stm_lineage_count(a->set) &&
           stm_id_equal(&stm_lineage_version_at(k, base)->id,
                        &stm_lineage_version_at(a->set, base)->id))
        base++;
    if (!base || base >= x)
        return NULL;
    const s_lenses *l = &a->known_lenses[i];
    a->branch = (lens_branch){(int)base, x - base, (const lens_change *const *)l->changes + base,
                              l->nchanges + base, l->probed + base};
    *upto = x - base;
    return &a->branch;
}

/* The decision for version, made and kept when there is none. */
static const s_decision *s_decide(admit_t *a, const stm_id *version)
{
    if (a->decisions[a->last].used && stm_id_equal(&a->decisions[a->last].version, version))
        return &a->decisions[a->last];
    for (size_t i = 0; i < ADMIT_DECISIONS_MAX; i++)
        if (a->decisions[i].used && stm_id_equal(&a->decisions[i].version, version)) {
            a->last = i;
            return &a->decisions[i];
        }
    s_decision *d = &a->decisions[a->next];
    stm_comparison_destroy(&d->cmp);
    stm_lineage_destroy(&d->owned);
    memset(d, 0, sizeof *d);
    d->used = true;
    d->version = *version;
    a->last = a->next;
    a->next = (a->next + 1) % ADMIT_DECISIONS_MAX;
    /* Who describes the version: this database's history, the schema set's, or a
     * HELLO's (the newest learned first). */
    const lineage_t *remote = NULL;
    size_t k;
    if ((k = s_number_in(a->db, version)) != 0)
        remote = d->owned = stm_lineage_prefix(a->db, k);
    else if ((k = s_number_in(a->set, version)) != 0)
        remote = d->owned = stm_lineage_prefix(a->set, k);
    for (size_t i = a->nknown; !remote && i-- > 0;)
        if ((k = s_number_in(a->known[i], version)) != 0)
            remote = k == stm_lineage_count(a->known[i])
                         ? a->known[i]
                         : (d->owned = stm_lineage_prefix(a->known[i], k));
    if (!remote || !a->db) {
        d->unknown = true;
        return d;
    }
    d->relation = stm_relation_of_lineages(a->db, remote, NULL);
    d->mode = a->policy.mode[d->relation];
    if (d->mode == POLICY_SHARED) {
        d->cmp = stm_relation_compare(a->db, remote);
        if (a->lenses && a->set)
            stm_comparison_follow(d->cmp, a->lenses, a->set);
    }
    return d;
}

/* The family of that name (any case) in c, or NULL: the families are in order of name
 * as sqlite3_stricmp sorts them (relation.c merges them so). */
static const comparison_family *s_family(const comparison_t *c, const char *name)
{
    size_t lo = 0, hi = c->nfamilies;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int cmp = sqlite3_stricmp(c->families[mid].name, name);
        if (cmp == 0)
            return &c->families[mid];
        if (cmp < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static bool s_listed(const char *const *names, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (sqlite3_stricmp(names[i], name) == 0)
            return true;
    return false;
}

static bool s_renamed_there(const comparison_family *f, const char *column)
{
    for (size_t i = 0; f && i < f->nrenamed; i++)
        if (sqlite3_stricmp(f->renamed[i].there, column) == 0)
            return true;
    return false;
}

/* True when table (column: NULL for the table itself), named as the writer's version
 * has it, is shared under the comparison c (the other side is the writer's). */
static bool s_shared(const comparison_t *c, const char *table, const char *column)
{
    const comparison_family *f = s_family(c, table);
    if (!f || !f->remote_live)
        return false;
    if (f->renamed_table) {
        /* A table renamed between the versions: f is its name there, here it is the
         * family renamed_table, whose pairs name the columns renamed on the way. */
        const comparison_family *here = s_family(c, f->renamed_table);
        if (!here || !here->local_live)
            return false;
        if (!column)
            return true;
        return s_renamed_there(here, column) ||
               (s_listed(f->columns[COLUMN_REMOTE_ONLY], f->ncolumns[COLUMN_REMOTE_ONLY], column) &&
                s_listed(here->columns[COLUMN_LOCAL_ONLY], here->ncolumns[COLUMN_LOCAL_ONLY],
                         column));
    }
    if (!f->local_live)
        return false;
    return !column || s_listed(f->columns[COLUMN_SHARED], f->ncolumns[COLUMN_SHARED], column) ||
           s_renamed_there(f, column);
}

/* True when table.column of version, on another branch, holds what a column this
 * database has holds: walked back through the branch's lenses to the version both
 * share, and on through the schema set's (a rename on either side), to a table and
 * column the comparison has here with the same affinity. */
static bool s_shared_through_branch(admit_t *a, const s_decision *d, const stm_id *version,
                                    const char *table, const char *column)
{
    size_t upto;
    const lens_branch *b = a->lenses ? stm_admit_branch(a, version, &upto) : NULL;
    const char *tb, *cb = NULL, *th, *ch = NULL;
    if (!b || !stm_lens_walk_back(b, upto, table, column, &tb, column ? &cb : NULL))
        return false;
    size_t here = stm_lineage_count(a->db);
    if (column ? !stm_lens_translate(a->lenses, b->base, tb, cb, (int)here, &th, &ch)
               : !stm_lens_translate_table(a->lenses, b->base, tb, (int)here, &th))
        return false;
    const comparison_family *f = s_family(d->cmp, th);
    if (!f || !f->local_live)
        return false;
    if (!column)
        return true;
    /* Here under its own name, or under another the other side does not have. */
    return s_listed(f->columns[COLUMN_SHARED], f->ncolumns[COLUMN_SHARED], ch) ||
           s_listed(f->columns[COLUMN_LOCAL_ONLY], f->ncolumns[COLUMN_LOCAL_ONLY], ch);
}

bool stm_admit_filter(void *ctx, const stm_id *version, const char *table, const char *column,
                      char *reason, size_t cap)
{
    admit_t *a = ctx;
    const s_decision *d = s_decide(a, version);
    char id[STM_ID_SHORT_LEN + 1];
    if (d->unknown) {
        stm_id_short(version, id);
        snprintf(reason, cap, "version %s unknown: no peer has described it", id);
        return false;
    }
    if (d->mode == POLICY_FULL)
        return true;
    const char *rel = stm_relation_name(d->relation);
    const char *word = stm_settings_policy_words[d->mode];
    stm_id_short(version, id);
    if (d->mode == POLICY_NONE) {
        snprintf(reason, cap, "nothing syncs with version %s (%s; [policy] %s = \"%s\")", id, rel,
                 rel, word);
        return false;
    }
    if (s_shared(d->cmp, table, NULL) && (!column || s_shared(d->cmp, table, column)))
        return true;
    if (s_shared_through_branch(a, d, version, table, column))
        return true;
    if (column && s_shared(d->cmp, table, NULL))
        snprintf(reason, cap, "%s.%s not shared with version %s (%s; [policy] %s = \"%s\")", table,
                 column, id, rel, rel, word);
    else
        snprintf(reason, cap, "%s (table) not shared with version %s (%s; [policy] %s = \"%s\")",
                 table, id, rel, rel, word);
    return false;
}
