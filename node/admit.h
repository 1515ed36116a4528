/* admit.h - what the node's policy lets apply of each operation received, judged by
 * the version its writer's database was at (sync/apply.h, invariant 10).
 *
 * The judge (judge.h) says what syncs with a peer; but operations travel on through
 * nodes of other versions, so a peer's verdict cannot stand for what it relays. Each
 * operation carries its writer's version id (sync/op.h), and is judged by the relation
 * of that version to this database's, under [policy]:
 *
 *   full    it applies (what this database lacks, a column or a table, is parked by
 *           the applier for the schema, as an older peer's would be);
 *   shared  it applies when its table and column are shared with that version (on
 *           both, with the same affinity and key role; renamed ones that lenses follow
 *           count as shared); the rest is parked ('policy'), naming the column, the
 *           version and the setting;
 *   none    nothing of that version applies: parked ('policy').
 *
 * A version is described by this database's lineage, by the schema set's (versions
 * newer than the database), or by a lineage a HELLO described (stm_admit_learn: at most
 * ADMIT_KNOWN_MAX of them, the oldest learned forgotten first; `stemma apply --writer`
 * gives a whole history). A HELLO describes its head's catalog only: a version inside a
 * lineage learned from one is compared by the catalog of that lineage's head, the
 * nearest description there is (a column it dropped since is parked, never wrongly
 * applied). An operation of a version nothing describes is parked
 * ('policy': "version ... unknown: no peer has described it"), never applied blindly.
 *
 * What is parked for the policy is retried by the node (stm_applier_retry_policy) when
 * the node starts (the policy may have changed), when it learns a version, and when
 * its database migrates; a migration's own replay leaves them (it has no policy).
 *
 * Decisions are cached per version (ADMIT_DECISIONS_MAX), so that the check an
 * operation costs is a comparison of ids and, under shared, a look-up of its table and
 * column. */
#ifndef STM_ADMIT_H
#define STM_ADMIT_H

#include "judge.h"
#include "wire_lens.h"
#include "lineage/lens.h"
#include "lineage/lineage.h"

#include <stdbool.h>
#include <stddef.h>

/* The most lineages learned from HELLOs kept at once. */
#define ADMIT_KNOWN_MAX 64
/* The most versions whose decision is kept at once. */
#define ADMIT_DECISIONS_MAX 16

typedef struct admit admit_t;

/* Judges by policy p (copied). The caller owns the result (stm_admit_destroy). */
admit_t *stm_admit_new(const peer_policy *p);
void stm_admit_destroy(admit_t **self_p);

/* The database's lineage, the schema set's whole lineage and its lenses (db required;
 * set and lenses may be NULL), all lent: they must outlive the admit or be replaced by
 * the next call. Forgets every decision. */
void stm_admit_set_local(admit_t *a, const lineage_t *db, const lineage_t *set,
                         const lens_set_t *lenses);

/* Learns the lineage a HELLO described (copied), with what its migrations did to the
 * data (lenses, copied; NULL or empty when the HELLO said nothing). True when its head
 * was known by nothing before: what is parked for the policy may apply now. */
bool stm_admit_learn(admit_t *a, const lineage_t *remote, const wire_lenses *lenses);

/* sync/apply.h's apply_branch_fn, ctx the admit_t: the branch of a version a learned
 * lineage holds past the last version it shares with the schema set, with its lenses
 * (lent until the next learn); NULL when no learned lineage holds it, it shares no
 * version with the set, or its HELLO said nothing of its lenses. Under [policy]
 * "shared", a column such a branch renamed from one this database has counts as
 * shared (stm_admit_filter). */
const lens_branch *stm_admit_branch(void *ctx, const stm_id *version, size_t *upto);

/* How many lineages are learned (for tests and reports). */
size_t stm_admit_known_count(const admit_t *a);

/* sync/apply.h's apply_filter_fn, ctx the admit_t: true when the operation written at
 * version on table.column (column NULL: a row delete), in its writer's names, may
 * apply; false with why in reason[0 .. cap). */
bool stm_admit_filter(void *ctx, const stm_id *version, const char *table, const char *column,
                      char *reason, size_t cap);

#endif
