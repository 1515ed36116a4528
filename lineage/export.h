/* export.h - a lineage to TOML and back (docs/toml-format.md describes the layout).
 *
 * The export holds every version (number, id, parent, description, checksum) and, per
 * family, every entry with its definition, so that `compare` works on exported files
 * as it does on directories. Export, import, export again gives the same bytes.
 *
 * Import checks what it can without the migration texts: numbers run 1, 2, ...;
 * each parent is the previous id; the head matches the last version; every family
 * entry names a version of this lineage; and every family head is recomputed from the
 * definitions and must match. Keys it does not know are ignored, so a newer stemma
 * may add some; a newer `format` number is refused. */
#ifndef STM_EXPORT_H
#define STM_EXPORT_H

#include "base/error.h"
#include "lineage.h"

/* The format this stemma reads and writes. 2 added a table's `keys` setting, part of
 * the family heads; a file without one is written as format 1, which older readers
 * take (a key column's `collation`, not in the heads, they skip). */
#define EXPORT_FORMAT 2
/* Exported files larger than this are refused before they are read. */
#define EXPORT_MAX_BYTES (256u * 1024u * 1024u)

/* The TOML text of l; the caller frees it. */
char *stm_export_lineage(const lineage_t *l);
/* The same with what each migration does to the data (lens.h; NULL, or a set of another
 * count of versions: left out): per version its changes, or why they are not known,
 * and `lenses = true`, so that a reader can translate and compare without the
 * migrations. */
struct lens_set;
char *stm_export_lineage_lenses(const lineage_t *l, const struct lens_set *lenses);

/* Reads an exported lineage from text; name is used in messages ("FILE:LINE:COL: ...").
 * *out is the caller's (stm_lineage_destroy). STM_EINPUT for TOML that does not parse or
 * lacks what the format needs, STM_ECORRUPT when ids or heads do not check out. */
STM_NODISCARD stm_err stm_export_parse(const char *text, size_t len, const char *name,
                                       lineage_t **out, stm_error *err);
/* The same, from a file. */
STM_NODISCARD stm_err stm_export_read_file(const char *path, lineage_t **out, stm_error *err);
/* stm_export_parse and stm_export_read_file, and the lenses the file holds: *lenses is
 * the caller's (stm_lens_destroy), NULL when the file says nothing of them (written
 * without, or by an older stemma). A change of an unknown kind, or one that does not
 * name what its kind needs, is STM_EINPUT naming the place. */
STM_NODISCARD stm_err stm_export_parse_lenses(const char *text, size_t len, const char *name,
                                              lineage_t **out, struct lens_set **lenses,
                                              stm_error *err);
STM_NODISCARD stm_err stm_export_read_file_lenses(const char *path, lineage_t **out,
                                                  struct lens_set **lenses, stm_error *err);

#endif
