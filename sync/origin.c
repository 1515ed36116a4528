#include "origin.h"
#include "base/id.h"
#include "base/mem.h"
#include "base/safefile.h"

#include <inttypes.h>
#include <sodium.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

/* Where the origin was taken. The inode and not the device: overlay and network
 * filesystems give a file another device number at each mount, and a copy within one
 * filesystem always gets another inode. */
static const char *const s_table =
    "CREATE TABLE IF NOT EXISTS stemma_origin ("
    "  id INTEGER PRIMARY KEY CHECK (id = 1),"
    "  file_ino INTEGER NOT NULL," /* the database file's inode */
    "  machine BLOB NOT NULL"      /* BLAKE2b-256 of /etc/machine-id; 32 zero bytes: none */
    ")";

const char *stm_origin_change_text(origin_change c)
{
    switch (c) {
    case ORIGIN_OTHER_FILE:
        return "this database file is a copy of the one its origin was used in";
    case ORIGIN_OTHER_MACHINE:
        return "this database is on another machine than the one its origin was used on";
    case ORIGIN_AHEAD:
        return "a peer holds more of this database's origin than it has issued (it went back "
               "in time, mark and all, or a copy writes as it); writes collected since it went "
               "back may have been dropped by its peers";
    case ORIGIN_RESTORED:
        return "this database went back below how far its own operations had left it "
               "(restored)";
    case ORIGIN_KEPT:
        break;
    }
    return "";
}

/* A digest of this machine's id (systemd's /etc/machine-id, which an image should
 * leave empty for each machine to make its own); zero where there is none. */
static void s_machine(stm_id *out)
{
    memset(out, 0, sizeof *out);
    FILE *f = fopen("/etc/machine-id", "r");
    if (!f)
        return;
    char text[128];
    size_t n = fread(text, 1, sizeof text, f);
    fclose(f);
    while (n && (text[n - 1] == '\n' || text[n - 1] == ' '))
        n--;
    if (n == 0)
        return;
    stm_hasher h;
    stm_hasher_init(&h);
    stm_hasher_str(&h, "stemma machine");
    stm_hasher_update(&h, text, n);
    stm_hasher_final(&h, out);
}

/* Records where the database is now. */
static stm_err s_record(store_t *store, sqlite3_int64 ino, const stm_id *machine, stm_error *err)
{
    sqlite3_stmt *stmt = NULL;
    sqlite3 *db = stm_store_db(store);
    if (sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO stemma_origin VALUES (1, ?1, ?2)", -1,
                           &stmt, NULL) != SQLITE_OK)
        return stm_store_error(store, err, "recording the database's origin");
    sqlite3_bind_int64(stmt, 1, ino);
    sqlite3_bind_blob(stmt, 2, machine->bytes, STM_ID_BYTES, SQLITE_STATIC);
    int step = sqlite3_step(stmt);
    sqlite3_finalize(stmt);
    return step == SQLITE_DONE ? STM_OK
                               : stm_store_error(store, err, "recording the database's origin");
}

/* Where the database file is: its inode (0 when it cannot be told) and the machine. */
static void s_where(store_t *store, sqlite3_int64 *ino, stm_id *machine)
{
    struct stat st;
    *ino = stat(stm_store_path(store), &st) == 0 ? (sqlite3_int64)st.st_ino : 0;
    s_machine(machine);
}

/* A new random origin, the old one's operations left as they are (store.h). */
static stm_err s_new_origin(store_t *store, stm_error *err)
{
    stm_id id;
    randombytes_buf(id.bytes, sizeof id.bytes);
    return stm_store_set_node_id(store, &id, err);
}

stm_err stm_origin_check(store_t *store, origin_change *change, stm_error *err)
{
    *change = ORIGIN_KEPT;
    sqlite3_int64 ino;
    stm_id machine;
    s_where(store, &ino, &machine);
    if (ino == 0) /* no file to tell by (it went away under us): nothing to compare */
        return STM_OK;
    stm_err rc = stm_store_exec(store, s_table, err);
    if (rc != STM_OK)
        return rc;
    sqlite3_stmt *stmt = NULL;
    if (sqlite3_prepare_v2(stm_store_db(store),
                           "SELECT file_ino, machine FROM stemma_origin WHERE id = 1", -1, &stmt,
                           NULL) != SQLITE_OK)
        return stm_store_error(store, err, "reading the database's origin");
    int step = sqlite3_step(stmt);
    if (step == SQLITE_ROW) {
        bool same_machine = sqlite3_column_bytes(stmt, 1) == STM_ID_BYTES &&
                            memcmp(sqlite3_column_blob(stmt, 1), machine.bytes, STM_ID_BYTES) == 0;
        if (sqlite3_column_int64(stmt, 0) != ino)
            *change = ORIGIN_OTHER_FILE;
        else if (!same_machine)
            *change = ORIGIN_OTHER_MACHINE;
    }
    sqlite3_finalize(stmt);
    if (step != SQLITE_ROW && step != SQLITE_DONE)
        return stm_store_error(store, err, "reading the database's origin");
    if (step == SQLITE_ROW && *change == ORIGIN_KEPT)
        return STM_OK;
    if (*change != ORIGIN_KEPT && (rc = s_new_origin(store, err)) != STM_OK)
        return rc;
    return s_record(store, ino, &machine, err);
}

/* ---- how far the database's own operations have left it ---- */

/* FILE-stemma-sent, the caller's to free. */
static char *s_sent_path(store_t *store)
{
    const char *db = stm_store_path(store);
    size_t n = strlen(db) + sizeof ORIGIN_SENT_SUFFIX;
    char *path = stm_malloc(n);
    snprintf(path, n, "%s%s", db, ORIGIN_SENT_SUFFIX);
    return path;
}

/* The mark: *found false when there is none, or it does not parse (written again whole
 * at the next send). */
static void s_sent_read(store_t *store, stm_id *origin, uint64_t *seq, bool *found)
{
    *found = false;
    char *path = s_sent_path(store);
    FILE *f = fopen(path, "r");
    free(path);
    if (!f)
        return;
    char hex[STM_ID_HEX_LEN + 2];
    uint64_t n = 0;
    int got = fscanf(f, "%65s %" SCNu64, hex, &n);
    fclose(f);
    if (got == 2 && strlen(hex) == STM_ID_HEX_LEN && stm_id_from_hex(hex, origin)) {
        *seq = n;
        *found = true;
    }
}

/* The database's origin and its own last sequence. */
static stm_err s_own(store_t *store, stm_id *origin, uint64_t *seq, stm_error *err)
{
    sqlite3_stmt *stmt = NULL;
    if (sqlite3_prepare_v2(stm_store_db(store),
                           "SELECT node_id, seq FROM stemma_local WHERE id = 1", -1, &stmt,
                           NULL) != SQLITE_OK)
        return stm_store_error(store, err, "reading the database's origin");
    stm_err rc = STM_OK;
    if (sqlite3_step(stmt) == SQLITE_ROW && sqlite3_column_bytes(stmt, 0) == STM_ID_BYTES) {
        memcpy(origin->bytes, sqlite3_column_blob(stmt, 0), STM_ID_BYTES);
        *seq = (uint64_t)sqlite3_column_int64(stmt, 1);
    } else {
        rc = stm_store_error(store, err, "reading the database's origin");
    }
    sqlite3_finalize(stmt);
    return rc;
}

stm_err stm_origin_mark_sent(store_t *store, stm_id *origin, stm_error *err)
{
    uint64_t seq, marked_seq = 0;
    stm_id marked;
    bool found;
    stm_err rc = s_own(store, origin, &seq, err);
    if (rc != STM_OK)
        return rc;
    s_sent_read(store, &marked, &marked_seq, &found);
    if (found && stm_id_equal(&marked, origin) && marked_seq >= seq)
        return STM_OK;
    char hex[STM_ID_HEX_LEN + 1];
    stm_id_to_hex(origin, hex);
    char line[STM_ID_HEX_LEN + 32];
    int len = snprintf(line, sizeof line, "%s %" PRIu64 "\n", hex, seq);
    char *path = s_sent_path(store);
    /* Readable by every program that opens the database (it holds no secret). */
    rc = stm_safefile_write(path, line, (size_t)len, 0644, false, err);
    free(path);
    return rc;
}

stm_err stm_origin_check_sent(store_t *store, origin_change *change, stm_error *err)
{
    *change = ORIGIN_KEPT;
    stm_id marked, origin;
    uint64_t marked_seq = 0, seq;
    bool found;
    s_sent_read(store, &marked, &marked_seq, &found);
    if (!found)
        return STM_OK;
    stm_err rc = s_own(store, &origin, &seq, err);
    if (rc != STM_OK || !stm_id_equal(&marked, &origin) || seq >= marked_seq)
        return rc;
    *change = ORIGIN_RESTORED;
    return s_new_origin(store, err);
}

stm_err stm_origin_check_held(store_t *store, const vector_t *theirs, origin_change *change,
                              stm_error *err)
{
    *change = ORIGIN_KEPT;
    stm_id origin;
    uint64_t seq;
    stm_err rc = s_own(store, &origin, &seq, err);
    uint64_t held = rc == STM_OK && theirs ? stm_vector_get(theirs, &origin) : 0;
    if (rc != STM_OK || held <= seq)
        return rc;
    rc = stm_origin_renew(store, err);
    if (rc == STM_OK)
        *change = ORIGIN_AHEAD;
    return rc;
}

stm_err stm_origin_renew(store_t *store, stm_error *err)
{
    sqlite3_int64 ino;
    stm_id machine;
    s_where(store, &ino, &machine);
    stm_err rc = stm_store_exec(store, "BEGIN IMMEDIATE", err);
    if (rc != STM_OK)
        return rc;
    rc = stm_store_exec(store, s_table, err);
    if (rc == STM_OK)
        rc = s_new_origin(store, err);
    if (rc == STM_OK)
        rc = s_record(store, ino, &machine, err);
    if (rc == STM_OK)
        return stm_store_exec(store, "COMMIT", err);
    if (stm_store_exec(store, "ROLLBACK", NULL) != STM_OK) {
        /* closing the connection ends the transaction; err says what failed */
    }
    return rc;
}
