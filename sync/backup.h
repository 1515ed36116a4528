/* backup.h - copies of a device's database, made and put back with SQLite's online
 * backup API: the copy the migrator takes before it changes anything (migrate.h,
 * invariant 3), and any other a caller wants before a risky change.
 *
 * A backup of DB is a file beside it named for the version it was at and the time:
 *
 *   DB.vFROM-YYYYMMDDTHHMMSSZ.bak      UTC; -1, -2, ... before ".bak" when taken
 *
 * Invariants:
 *   1. Making a backup never overwrites an existing file: it takes the first free
 *      name, created exclusively.
 *   2. A backup is one self-contained file (DELETE journal mode, no -wal beside it),
 *      with the database's permissions; a failed backup leaves no file behind.
 *   3. Restoring checks the backup first (it opens as SQLite and passes PRAGMA
 *      integrity_check) and keeps a backup of the database it replaces, so nothing
 *      is lost either way. */
#ifndef STM_BACKUP_H
#define STM_BACKUP_H

#include "base/error.h"

#include <stdbool.h>

#include <sqlite3.h>

/* Copies src's main database (consistent even while the application writes) to a new
 * file DB.vFROM-STAMP[-N].bak beside db_path, from_version being the FROM in its name.
 * *out_path is the caller's to free. STM_ESYS when no file can be created, STM_EDB
 * when the copy fails. */
STM_NODISCARD stm_err stm_backup_make(sqlite3 *src, const char *db_path, int from_version,
                                      char **out_path, stm_error *err);

/* What stm_backup_restore did. A plain value; saved_path is its own (stm_backup_restored_free). */
typedef struct {
    char *saved_path; /* the backup of the database as it was before, or NULL when there was
                       * none to keep; set as soon as it is made, even if the restore fails */
    int version;      /* the version the database records after the restore */
    bool new_origin;  /* the restored database took a new origin (origin.h) */
} backup_restored;

/* Replaces db_path's content with backup_path's, after checking the backup opens as
 * SQLite and passes PRAGMA integrity_check, and after copying the current database
 * (when it exists) to a backup of its own (stm_backup_make). Prints nothing: *out (NULL:
 * not wanted) says what was done, and is the caller's to free with
 * stm_backup_restored_free whatever this returns. STM_EUSAGE when backup_path is the
 * database itself, STM_EINPUT when it is missing or not a usable SQLite database,
 * STM_ECORRUPT when it fails the check. */
STM_NODISCARD stm_err stm_backup_restore(const char *db_path, const char *backup_path,
                                         backup_restored *out, stm_error *err);
/* Frees what r holds and zeroes it; safe twice. */
void stm_backup_restored_free(backup_restored *r);

#endif
