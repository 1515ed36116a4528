#include "dbutil.h"
#include "lineage/sqlscript.h"
#include "sync/capture.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void s_ok(stm_err rc, const stm_error *err)
{
    if (rc != STM_OK)
        fail_msg("%s", err->msg);
}

store_t *du_setup(const char *path, const char *schema_sql, const stm_id *version)
{
    store_t *store = NULL;
    stm_error err = {0};
    s_ok(store_open(path, STORE_OPEN_CREATE, &store, &err), &err);
    s_ok(store_exec(store, "BEGIN IMMEDIATE", &err), &err);
    s_ok(sqlscript_run(store_db(store), path, schema_sql, 0, &err), &err);
    s_ok(store_prepare(store, &err), &err);
    stm_id zero = {{0}};
    s_ok(store_set_version_id(store, version ? version : &zero, &err), &err);
    s_ok(capture_install(store, &err), &err);
    s_ok(store_exec(store, "COMMIT", &err), &err);
    return store;
}

void du_migrate(store_t *store, const char *schema_sql)
{
    stm_error err = {0};
    s_ok(store_exec(store, "BEGIN IMMEDIATE", &err), &err);
    s_ok(capture_uninstall(store, &err), &err);
    s_ok(sqlscript_run(store_db(store), "migration", schema_sql, 0, &err), &err);
    s_ok(capture_install(store, &err), &err);
    s_ok(store_exec(store, "COMMIT", &err), &err);
}

void du_exec(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    char *msg = NULL;
    if (sqlite3_open(path, &db) != SQLITE_OK)
        fail_msg("%s: %s", path, sqlite3_errmsg(db));
    sqlite3_busy_timeout(db, 5000);
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
        fail_msg("%s: %s: %s", path, sql, msg);
    sqlite3_close(db);
}

long long du_int(store_t *store, const char *sql)
{
    sqlite3_stmt *stmt = NULL;
    if (sqlite3_prepare_v2(store_db(store), sql, -1, &stmt, NULL) != SQLITE_OK)
        fail_msg("%s: %s", sql, sqlite3_errmsg(store_db(store)));
    long long v = sqlite3_step(stmt) == SQLITE_ROW ? sqlite3_column_int64(stmt, 0) : -1;
    sqlite3_finalize(stmt);
    return v;
}

char *du_hash(store_t *store, const char *query)
{
    sqlite3_stmt *stmt = NULL;
    if (sqlite3_prepare_v2(store_db(store), query, -1, &stmt, NULL) != SQLITE_OK)
        fail_msg("%s: %s", query, sqlite3_errmsg(store_db(store)));
    stm_hasher h;
    stm_hasher_init(&h);
    while (sqlite3_step(stmt) == SQLITE_ROW) {
        for (int i = 0; i < sqlite3_column_count(stmt); i++) {
            unsigned char type = (unsigned char)sqlite3_column_type(stmt, i);
            stm_hasher_update(&h, &type, 1);
            const void *p = sqlite3_column_blob(stmt, i);
            int n = sqlite3_column_bytes(stmt, i);
            stm_hasher_u32(&h, (uint32_t)n);
            if (n)
                stm_hasher_update(&h, p, (size_t)n);
        }
    }
    sqlite3_finalize(stmt);
    stm_id id;
    stm_hasher_final(&h, &id);
    char *hex = malloc(STM_ID_HEX_LEN + 1);
    stm_id_to_hex(&id, hex);
    return hex;
}
