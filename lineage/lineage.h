/* lineage.h - the version history of a schema set: its versions and its families.
 *
 * Each version's id is a hash chain over the versions before it:
 *
 *     id(n) = BLAKE2b-256(id(n-1) || u64be(n) || text(n)),  id(0) = 32 zero bytes,
 *
 * where text(n) is migration n's normalised text (schemaset.h). Two versions are the
 * same only when their whole histories are. The checksum of a version is
 * BLAKE2b-256(text(n)) alone (what `b2sum -l 256` prints for an LF file), used to
 * detect a migration file edited after it was applied.
 *
 * A lineage is built from a schema set (the migrations run on an in-memory SQLite
 * database, and the catalog after each is read back) or read from an exported TOML
 * file (export.h). Families are kept in order of name, ASCII case folded.
 *
 * Virtual tables are no families (catalog.h leaves them out: they have no definition
 * stemma could sync), but a version's schema holds them: the lineage keeps each by
 * name with the versions it lived in, so that what a version cannot sync can be named
 * (syncable.h). They take no part in any id or head. */
#ifndef STM_LINEAGE_H
#define STM_LINEAGE_H

#include "base/error.h"
#include "family.h"
#include "base/id.h"
#include "schemaset.h"

/* One version. Owned by its lineage. */
typedef struct {
    int number;        /* 1, 2, ... */
    stm_id id;         /* the hash chain above */
    stm_id parent;     /* the id of number - 1; all zero for version 1 */
    stm_id checksum;   /* BLAKE2b-256 of the migration text */
    char *description; /* one line */
} lineage_version;

/* A virtual table, from the version whose migration created it to the one whose
 * migration dropped it. Owned by its lineage. */
typedef struct {
    char *name;  /* as created */
    int created; /* the version that created it */
    int dropped; /* the version that dropped it; 0 while it lives */
} lineage_virtual;

typedef struct lineage lineage_t;

/* id(n) from the parent's id, the number and the normalised text. */
void stm_lineage_version_id(const stm_id *parent, int number, const char *text, size_t len,
                            stm_id *out);

/* Runs every migration of set, in order, on a new in-memory database and records the
 * versions and the families. *out is the caller's (stm_lineage_destroy). A migration that
 * SQLite refuses gives STM_EINPUT naming the file, the line and SQLite's message. */
STM_NODISCARD stm_err stm_lineage_build(const schemaset_t *set, lineage_t **out, stm_error *err);

/* An empty lineage named name, the caller's, to be filled by stm_lineage_add_version and
 * stm_lineage_add_family (used when reading an exported file or a peer's handshake). */
lineage_t *stm_lineage_new(const char *name);
void stm_lineage_destroy(lineage_t **self_p);

/* Appends the next version. Its number must be count + 1 and its parent the previous
 * version's id (zero for the first); STM_ECORRUPT otherwise. */
STM_NODISCARD stm_err stm_lineage_add_version(lineage_t *l, int number, const stm_id *id,
                                              const stm_id *parent, const stm_id *checksum,
                                              const char *description, stm_error *err);
/* Makes room for n versions in all, exactly (a reader that knows how many will come). */
void stm_lineage_reserve(lineage_t *l, size_t n);
/* Takes f (which must have a name not yet used, case folded; STM_ECORRUPT otherwise). */
STM_NODISCARD stm_err stm_lineage_add_family(lineage_t *l, family_t *f, stm_error *err);

/* Appends a virtual table read from elsewhere (an exported file): created must be a
 * version of l, dropped 0 or a later version of l, and the tables must come in order of
 * name (ASCII case folded), one name's lives in order and apart; STM_ECORRUPT with a
 * message otherwise. name is copied. */
STM_NODISCARD stm_err stm_lineage_add_virtual(lineage_t *l, const char *name, int created,
                                              int dropped, stm_error *err);

/* The lineage of a database at version n of this schema set: versions 1..n and the
 * families as they were then. The caller owns the result; n above the count is the
 * whole lineage. */
lineage_t *stm_lineage_prefix(const lineage_t *l, size_t n);

/* The schema set's name, lent. */
const char *stm_lineage_name(const lineage_t *l);
size_t stm_lineage_count(const lineage_t *l);
/* Version i + 1, lent. */
const lineage_version *stm_lineage_version_at(const lineage_t *l, size_t i);
/* The newest version, lent, or NULL when the lineage is empty. */
const lineage_version *stm_lineage_head(const lineage_t *l);
size_t stm_lineage_family_count(const lineage_t *l);
const family_t *stm_lineage_family_at(const lineage_t *l, size_t i);
/* The family of that name (any case), lent, or NULL. */
const family_t *stm_lineage_family_find(const lineage_t *l, const char *name);
/* The virtual tables ever created, in order of name (ASCII case folded), a name
 * created again after a drop once per life; entry i lent. */
size_t stm_lineage_virtual_count(const lineage_t *l);
const lineage_virtual *stm_lineage_virtual_at(const lineage_t *l, size_t i);
/* True when v exists at version n (0 .. count). */
bool stm_lineage_virtual_live(const lineage_virtual *v, int n);

#endif
