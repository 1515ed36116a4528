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

struct admit {
    peer_policy policy;
    const lineage_t *db;     /* lent: the database's lineage */
    const lineage_t *set;    /* lent: the schema set's, or NULL */
    const lens_set_t *lenses; /* lent, or NULL */
    lineage_t *known[ADMIT_KNOWN_MAX]; /* learned from HELLOs, owned; oldest first */
    size_t nknown;
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

void stm_admit_destroy(admit_t **self_p)
{
    admit_t *a = *self_p;
    if (!a)
        return;
    s_forget(a);
    for (size_t i = 0; i < a->nknown; i++)
        stm_lineage_destroy(&a->known[i]);
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

bool stm_admit_learn(admit_t *a, const lineage_t *remote)
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
        stm_lineage_destroy(&a->known[0]);
        memmove(&a->known[0], &a->known[1], (ADMIT_KNOWN_MAX - 1) * sizeof a->known[0]);
        a->nknown--;
    }
    a->known[a->nknown++] = stm_lineage_prefix(remote, SIZE_MAX);
    return true;
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
    if (column && s_shared(d->cmp, table, NULL))
        snprintf(reason, cap, "%s.%s not shared with version %s (%s; [policy] %s = \"%s\")", table,
                 column, id, rel, rel, word);
    else
        snprintf(reason, cap, "%s (table) not shared with version %s (%s; [policy] %s = \"%s\")",
                 table, id, rel, rel, word);
    return false;
}
