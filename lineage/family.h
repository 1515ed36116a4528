/* family.h - the history of one table across the versions of a schema set.
 *
 * A family is every table of one name (ASCII case folded). Its history holds one entry
 * per version in which the table was created, changed or dropped, with the columns
 * added, removed and changed, and the definition after it. Each entry has a head: a
 * hash chain over the family's definitions,
 *
 *     head(k) = BLAKE2b-256(head(k-1) || def(k)),  head(0) = 32 zero bytes,
 *
 * where def is the canonical definition (stm_catalog_table_digest) or, for a drop, the
 * four bytes ff ff ff ff. Two families share an entry only when they went through the
 * same definitions in the same order, whatever the database versions were called, so
 * family lineages compare on their own: `lists` can be `same` in two schema sets whose
 * database lineages diverged. A table renamed is one family dropped and one created. */
#ifndef STM_FAMILY_H
#define STM_FAMILY_H

#include "catalog.h"
#include "base/error.h"
#include "base/id.h"

typedef enum {
    FAMILY_CREATED,
    FAMILY_CHANGED,
    FAMILY_DROPPED,
} family_action;

/* One step of a family's history. Owned by its family. */
typedef struct {
    int version;          /* database version number where this happened */
    stm_id version_id;    /* that version's id */
    family_action action; /* created, changed or dropped */
    stm_id head;          /* the family head after this entry */
    char **added;         /* column names added, in declaration order */
    size_t nadded;
    char **removed; /* column names removed */
    size_t nremoved;
    char **changed; /* columns whose type, constraints, default or key role changed */
    size_t nchanged;
    catalog_table *table; /* the definition after this entry; NULL after a drop */
} family_entry;

typedef struct family family_t;

/* "created", "changed", "dropped": static. */
const char *stm_family_action_name(family_action a);
bool stm_family_action_parse(const char *name, family_action *out);

/* A family with no history yet; the caller's (stm_family_destroy). */
family_t *stm_family_new(const char *name);
void stm_family_destroy(family_t **self_p);

/* Records the step from before to after (either may be NULL: the table did not exist)
 * at the given version. Adds an entry only when the definition changed; returns true
 * when it did. The tables are copied, not taken. */
bool stm_family_record(family_t *f, int version, const stm_id *version_id,
                       const catalog_table *before, const catalog_table *after);

/* Appends an entry read from elsewhere (an exported file): its head is recomputed from
 * its definition and must equal expected_head, and its action must fit the previous
 * entry. Takes table (may be NULL for a drop) in every case; the name lists are
 * recomputed from the definitions. Returns STM_ECORRUPT with a message otherwise. */
STM_NODISCARD stm_err stm_family_append(family_t *f, int version, const stm_id *version_id,
                                        family_action action, catalog_table *table,
                                        const stm_id *expected_head, stm_error *err);

/* A family as a peer describes it: only its entries' heads (oldest first) and its
 * current definition (NULL: dropped), for comparing with stm_relation_of_families and
 * for its columns. Versions, ids, actions and the definitions of earlier entries are
 * unknown (0, zero, changed). Takes current. The caller owns the result. Nothing can
 * be checked: a peer's heads are its claim. */
family_t *stm_family_from_heads(const char *name, const stm_id *heads, size_t nheads,
                                catalog_table *current);

/* A copy of f's entries up to database version max_version (a database that has not
 * migrated further), or NULL when it has none by then. The caller owns the result. */
family_t *stm_family_prefix(const family_t *f, int max_version);

/* The name: as the table was first created (lent). */
const char *stm_family_name(const family_t *f);
size_t stm_family_count(const family_t *f);
const family_entry *stm_family_entry_at(const family_t *f, size_t i);
/* The current definition, lent: NULL when the family has no entry or was dropped. */
const catalog_table *stm_family_table(const family_t *f);
/* The definition at database version `version`, lent: that of the last entry at or
 * before it; NULL when the table did not exist then. (A peer's family, whose entries
 * carry no versions, gives its current definition.) */
const catalog_table *stm_family_table_at(const family_t *f, int version);
/* The head after the last entry; all zero when there is none. */
stm_id stm_family_head(const family_t *f);

#endif
