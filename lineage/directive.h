/* directive.h - stemma's settings for a table, written as a comment in its CREATE TABLE.
 *
 * A setting that every replica must agree on belongs to the schema, not to a node's
 * configuration: two devices that disagreed on it would resolve the same operations
 * differently. So it is written where SQLite keeps the table's definition, as a comment
 * inside the parentheses of its CREATE TABLE:
 *
 *     CREATE TABLE accounts (   -- stemma: keys per-device
 *         email TEXT PRIMARY KEY,
 *         name  TEXT
 *     );
 *
 * SQLite stores a CREATE TABLE's text as written, comments inside it included, and keeps
 * them through ALTER TABLE ... ADD COLUMN and RENAME; so the setting lives and dies with
 * the table's definition on every database that runs the migration, is part of the
 * migration's text (so of the version's id), and is read back with the catalog
 * (catalog.h), from the migration-built lineage and the live database alike. Another
 * migration runner ignores it.
 *
 * The settings ("stemma:" then the words, any case):
 *
 *   keys per-device   two rows created apart under one key are two rows: the first
 *                     created keeps the key, the other is kept aside as a conflict
 *                     (sync/identity.h). The default for a key that is a rowid alias
 *                     (INTEGER PRIMARY KEY), which each device picks for itself.
 *   keys shared       one key names one row wherever it was written: writes to it merge
 *                     column by column. The default for every other key (a natural key:
 *                     an email, a slug, a pair of ids).
 *
 * A "stemma:" comment anywhere else in a migration (before the CREATE, in another kind
 * of statement) would be dropped by SQLite without a word, so running a migration
 * refuses it (stm_directive_check_script), as it refuses a setting it does not know. */
#ifndef STM_DIRECTIVE_H
#define STM_DIRECTIVE_H

#include "base/error.h"

#include <stdbool.h>

/* How a table's keys name its rows. */
typedef enum {
    DIRECTIVE_KEYS_DEFAULT = 0, /* no setting: by the key's shape (lineage/syncable.h) */
    DIRECTIVE_KEYS_PER_DEVICE,  /* keys per-device */
    DIRECTIVE_KEYS_SHARED,      /* keys shared */
} directive_keys;

/* "per-device", "shared"; NULL for the default. Static. */
const char *stm_directive_keys_name(directive_keys k);
/* Parses "per-device" or "shared" (exact); false for anything else. */
bool stm_directive_keys_parse(const char *name, directive_keys *out);

/* The settings in a table's CREATE TABLE text sql (as sqlite_schema keeps it), for
 * table `table`: *keys is DIRECTIVE_KEYS_DEFAULT when it has none. STM_EINPUT naming
 * the table for a setting stemma does not know, or two that disagree. */
STM_NODISCARD stm_err stm_directive_read(const char *sql, const char *table, directive_keys *keys,
                                         stm_error *err);

/* Checks every "stemma:" comment of a migration's text (NUL-terminated): each must sit
 * inside the parentheses of a CREATE TABLE and say something stemma knows. STM_EINPUT
 * with "FILE:LINE: ..." for the first that does not. */
STM_NODISCARD stm_err stm_directive_check_script(const char *file, const char *text,
                                                 stm_error *err);

#endif
