/* backup.c - makes and restores backups of a device's database with SQLite's online
 * backup API; the file naming is described in backup.h. The invariants it keeps, and
 * where:
 *
 *   1. Never overwrite an existing file: stm_backup_make creates each name with O_EXCL and
 *      moves on to the next suffix (-1, -2, ...) when it is taken.
 *   2. A backup is one self-contained file: stm_backup_make switches the copy to DELETE
 *      journal mode (a WAL source makes a WAL copy) and unlinks a copy that failed.
 *   3. Restoring keeps a copy of what it replaces: stm_backup_restore checks the backup
 *      (s_integrity_check) and backs the current database up (stm_backup_make) before it
 *      copies anything over it. */
#include "backup.h"
#include "origin.h"
#include "store.h"
#include "base/buf.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- backup ---- */

/* Copies db's main database to a new file DB.vFROM-STAMP[-N].bak beside db_path, with
 * the online backup API (consistent even while the application writes). The path is
 * returned in *out_path, the caller's. */
stm_err stm_backup_make(sqlite3 *src, const char *db_path, int from_version, char **out_path,
                        stm_error *err)
{
    time_t now = time(NULL);
    struct tm tm;
    char stamp[32];
    gmtime_r(&now, &tm);
    strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
    /* The backup holds the same data as the database: give it the same permissions. */
    struct stat st;
    mode_t mode = stat(db_path, &st) == 0 ? (st.st_mode & 0666) : 0600;
    buf_t path = BUF_INIT;
    int fd = -1;
    for (int i = 0; i < 1000 && fd < 0; i++) {
        stm_buf_reset(&path);
        if (i == 0)
            stm_buf_printf(&path, "%s.v%d-%s.bak", db_path, from_version, stamp);
        else
            stm_buf_printf(&path, "%s.v%d-%s-%d.bak", db_path, from_version, stamp, i);
        /* O_EXCL: never overwrite an earlier backup, even one made this second. */
        fd = open(stm_buf_str(&path), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
        if (fd < 0 && errno != EEXIST) {
            stm_err rc = stm_error_set(err, STM_ESYS, "%s: cannot create the backup: %s",
                                       stm_buf_str(&path), strerror(errno));
            stm_buf_free(&path);
            return rc;
        }
    }
    if (fd < 0) {
        stm_err rc = stm_error_set(err, STM_ESYS,
                                   "%s: cannot create the backup: too many "
                                   "backups made this second",
                                   stm_buf_str(&path));
        stm_buf_free(&path);
        return rc;
    }
    close(fd);
    sqlite3 *dst = NULL;
    stm_err rc = STM_OK;
    if (sqlite3_open_v2(stm_buf_str(&path), &dst, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
        rc = stm_error_set(err, STM_ESYS, "%s: cannot open the backup: %s", stm_buf_str(&path),
                           dst ? sqlite3_errmsg(dst) : "out of memory");
    } else {
        sqlite3_backup *b = sqlite3_backup_init(dst, "main", src, "main");
        int step = b ? sqlite3_backup_step(b, -1) : SQLITE_ERROR;
        if (b)
            sqlite3_backup_finish(b);
        /* SQLite reports a backup's errors on the destination connection. */
        if (step != SQLITE_DONE)
            rc = stm_error_set(err, STM_EDB, "%s: backing up to %s failed: %s (%s)", db_path,
                               stm_buf_str(&path), sqlite3_errstr(step), sqlite3_errmsg(dst));
        /* A WAL-mode source makes a WAL-mode copy; a backup is better one plain file. */
        else if (sqlite3_exec(dst, "PRAGMA journal_mode=DELETE", NULL, NULL, NULL) != SQLITE_OK)
            rc = stm_error_set(err, STM_EDB, "%s: %s", stm_buf_str(&path), sqlite3_errmsg(dst));
    }
    sqlite3_close(dst);
    if (rc != STM_OK) {
        unlink(stm_buf_str(&path));
        stm_buf_free(&path);
        return rc;
    }
    *out_path = stm_buf_detach(&path);
    return STM_OK;
}

/* ---- restore ---- */

/* The highest version db's schema_version records, 0 when there is none. */
static int s_recorded_version(sqlite3 *db)
{
    sqlite3_stmt *stmt = NULL;
    int v = 0;
    if (sqlite3_prepare_v2(db, "SELECT max(version) FROM schema_version", -1, &stmt, NULL) ==
            SQLITE_OK &&
        sqlite3_step(stmt) == SQLITE_ROW) {
        sqlite3_int64 x = sqlite3_column_int64(stmt, 0);
        v = x > 0 && x <= INT_MAX ? (int)x : 0;
    }
    sqlite3_finalize(stmt);
    return v;
}

static stm_err s_integrity_check(store_t *store, const char *path, stm_error *err)
{
    sqlite3_stmt *stmt = NULL;
    sqlite3 *db = stm_store_db(store);
    if (sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &stmt, NULL) != SQLITE_OK)
        return stm_error_set(err, STM_EINPUT, "%s: cannot be checked: %s", path,
                             sqlite3_errmsg(db));
    stm_err rc = STM_OK;
    int step = sqlite3_step(stmt);
    const char *first = step == SQLITE_ROW ? (const char *)sqlite3_column_text(stmt, 0) : NULL;
    if (step != SQLITE_ROW)
        rc = stm_error_set(err, STM_ECORRUPT,
                           "%s: fails SQLite's integrity check: %s; not "
                           "restoring it",
                           path, sqlite3_errmsg(db));
    else if (!first || strcmp(first, "ok") != 0)
        rc = stm_error_set(err, STM_ECORRUPT,
                           "%s: fails SQLite's integrity check (%s); not "
                           "restoring it",
                           path, first ? first : "no answer");
    sqlite3_finalize(stmt);
    return rc;
}

void stm_backup_restored_free(backup_restored *r)
{
    free(r->saved_path);
    memset(r, 0, sizeof *r);
}

stm_err stm_backup_restore(const char *db_path, const char *backup_path, backup_restored *out,
                           stm_error *err)
{
    backup_restored local;
    backup_restored *res = out ? out : &local;
    memset(res, 0, sizeof *res);
    struct stat db_st, bak_st;
    bool existed = stat(db_path, &db_st) == 0;
    if (existed && stat(backup_path, &bak_st) == 0 && db_st.st_dev == bak_st.st_dev &&
        db_st.st_ino == bak_st.st_ino)
        return stm_error_set(err, STM_EUSAGE, "%s is the database itself, not a backup of it",
                             backup_path);
    store_t *src = NULL, *dst = NULL;
    stm_err rc = stm_store_open(backup_path, STORE_OPEN_READONLY, &src, err);
    if (rc == STM_OK)
        rc = s_integrity_check(src, backup_path, err);
    if (rc == STM_OK)
        rc = stm_store_open(db_path, STORE_OPEN_CREATE, &dst, err);
    /* Nothing is lost: what is being replaced is kept too. */
    if (rc == STM_OK && existed)
        rc = stm_backup_make(stm_store_db(dst), db_path, s_recorded_version(stm_store_db(dst)),
                             &res->saved_path, err);
    if (rc == STM_OK) {
        sqlite3_backup *b =
            sqlite3_backup_init(stm_store_db(dst), "main", stm_store_db(src), "main");
        int step = b ? sqlite3_backup_step(b, -1) : SQLITE_ERROR;
        if (b)
            sqlite3_backup_finish(b);
        if (step != SQLITE_DONE) {
            rc = stm_error_set(err, STM_EDB,
                               "%s: restoring from %s failed: %s; the database is "
                               "as it was",
                               db_path, backup_path, sqlite3_errmsg(stm_store_db(dst)));
            if (res->saved_path)
                stm_error_append(err, "backup: %s", res->saved_path);
        }
    }
    if (rc == STM_OK)
        res->version = s_recorded_version(stm_store_db(dst));
    /* The restored database goes on from its sequence at the backup, which its peers
     * passed long ago: its writes from now on carry a new origin (origin.h). */
    if (rc == STM_OK && stm_store_is_prepared(dst)) {
        rc = stm_origin_renew(dst, err);
        if (rc != STM_OK)
            stm_error_append(err, "the database is restored, but its next writes would reuse "
                                  "its old origin: restore again");
        res->new_origin = rc == STM_OK;
    }
    stm_store_destroy(&src);
    stm_store_destroy(&dst);
    if (!out)
        stm_backup_restored_free(&local);
    return rc;
}
