/* cache.h - the lineage and lenses derived from a schema set, kept in a file, so that a
 * command does not run every migration again.
 *
 * Deriving runs every migration in memory, twice (lineage.h, lens.h): about 0.3 s for
 * a hundred real migrations. Reading the set and hashing it (its version ids) takes a
 * few milliseconds. So what was derived is kept in a cache directory, one file per
 * schema set as it is (cache_dir/HASH.db, HASH naming the key below), and read back
 * when the set is the same.
 *
 * The file is an SQLite database of one table, cache (key TEXT PRIMARY KEY, value),
 * written whole beside its name and renamed into place (base/safefile.h):
 *
 *   format   CACHE_FORMAT
 *   code     a hash of the sources that derive (lineage/ and toml/), made at build time
 *   sqlite   sqlite3_sourceid() of the SQLite that ran the migrations
 *   name     the set's name
 *   dir      its directory as given (messages in the lenses name files by it)
 *   layout   the layout it was read in (layout.h), which names its files too
 *   count    its number of migrations
 *   head     its head version id, hex: a hash chain over every migration's text, so an
 *            edited, added or removed migration changes it (and the file's name)
 *   lineage  the lineage's TOML export (export.h)
 *   lenses   the lenses, as stm_lens_encode writes them
 *   digest   BLAKE2b-256 over every value above, in this order, each after its length
 *
 * Invariants:
 *   1. A cache never answers for a set it was not derived from: the key values must
 *      equal the set's as read now, and the lineage read back must have the set's
 *      ids, checksums and descriptions, version by version.
 *   2. A damaged cache never answers either: the digest must match, and the lineage
 *      and lenses are read back with every check their readers make. A file that
 *      fails is reported (one line) and the set derived again, and the file replaced.
 *   3. A cache that cannot be written (no directory, read-only, full) is no error:
 *      the set is derived, as without a cache. */
#ifndef STM_CACHE_H
#define STM_CACHE_H

#include "base/error.h"
#include "lens.h"
#include "lineage.h"
#include "schemaset.h"

#include <stdbool.h>

/* The layout of the file above; another number is not read. */
#define CACHE_FORMAT 2
/* Cache files larger than this are not read (they are derived again). */
#define CACHE_MAX_BYTES (256u * 1024u * 1024u)
/* Files a cache directory keeps: when a write makes more, the oldest go. */
#define CACHE_MAX_FILES 64
/* Room for the warning of a cache_report. */
#define CACHE_WARNING_MAX 1024

/* What stm_cache_derive did with the cache. A plain value. */
typedef struct {
    bool hit;                        /* read from the cache: nothing ran */
    bool written;                    /* derived, and the cache file written */
    char warning[CACHE_WARNING_MAX]; /* "" or one line for the user: a cache file that was
                                        there but could not be used, and why */
} cache_report;

/* The cache directory the environment asks for, the caller's to free; NULL for none:
 * STEMMA_NO_CACHE set (and not "0" or "") turns the cache off; else STEMMA_CACHE_DIR;
 * else $XDG_CACHE_HOME/stemma; else $HOME/.cache/stemma; else none. */
char *stm_cache_dir_from_env(void);

/* set's lineage into *lineage (lineage may be NULL: not wanted) and its lenses into
 * *lenses (NULL: not wanted), both the caller's: read from the cache in dir when it
 * holds them for exactly this set, derived otherwise and then written there. dir NULL:
 * no cache. The errors are those of deriving (STM_EINPUT naming the file and line of a
 * migration SQLite refuses); the cache itself never fails a call (invariant 3), and
 * *report (may be NULL) says what it did. */
STM_NODISCARD stm_err stm_cache_derive(const schemaset_t *set, const char *dir,
                                       lineage_t **lineage, lens_set_t **lenses,
                                       cache_report *report, stm_error *err);

#endif
