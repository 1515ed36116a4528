#include "dbutil.h"
#include "sync/apply.h"
#include "lineage/sqlscript.h"
#include "base/buf.h"
#include "sync/capture.h"
#include "sync/codec.h"
#include "sync/identity.h"
#include "sync/oplog.h"
#include "sync/vector.h"

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
    s_ok(stm_store_open(path, STORE_OPEN_CREATE, &store, &err), &err);
    s_ok(stm_store_exec(store, "BEGIN IMMEDIATE", &err), &err);
    s_ok(stm_sqlscript_run(stm_store_db(store), path, schema_sql, 0, &err), &err);
    s_ok(stm_store_prepare(store, &err), &err);
    stm_id zero = {{0}};
    s_ok(stm_store_set_version_id(store, version ? version : &zero, &err), &err);
    s_ok(stm_capture_install(store, &err), &err);
    s_ok(stm_store_exec(store, "COMMIT", &err), &err);
    return store;
}

void du_migrate(store_t *store, const char *schema_sql)
{
    stm_error err = {0};
    /* As the migrator does: queued changes become operations under the old schema,
     * in the migration's transaction. */
    s_ok(stm_store_exec(store, "BEGIN IMMEDIATE", &err), &err);
    applier_t *applier = stm_applier_new(store, NULL, NULL);
    s_ok(stm_applier_collect(applier, &err), &err);
    stm_applier_destroy(&applier);
    s_ok(stm_capture_uninstall(store, &err), &err);
    s_ok(stm_sqlscript_run(stm_store_db(store), "migration", schema_sql, 0, &err), &err);
    s_ok(stm_capture_install(store, &err), &err);
    s_ok(stm_store_exec(store, "COMMIT", &err), &err);
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

void du_ops(store_t *store)
{
    stm_error err = {0};
    applier_t *applier = stm_applier_new(store, NULL, NULL);
    s_ok(stm_applier_catch_up(applier, &err), &err);
    stm_applier_destroy(&applier);
    s_ok(stm_store_exec(
             store,
             "DROP TABLE IF EXISTS temp.ops;"
             "CREATE TEMP TABLE ops (origin BLOB, seq INTEGER, hlc INTEGER, version_id BLOB,"
             " tbl TEXT, pk, col TEXT, aff TEXT, val, parked INTEGER);",
             &err),
         &err);
    oplog_reader_t *reader = NULL;
    s_ok(stm_oplog_reader_new(store, NULL, &reader, &err), &err);
    opbatch_t *batch = stm_opbatch_new();
    sqlite3_stmt *ins = NULL;
    if (sqlite3_prepare_v2(stm_store_db(store),
                           "INSERT INTO temp.ops VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, "
                           "(SELECT CASE kind WHEN 'schema' THEN 1 WHEN 'constraint' THEN 2 ELSE 3 END FROM stemma_parked "
                           "WHERE origin = ?1 AND seq = ?2))",
                           -1, &ins, NULL) != SQLITE_OK)
        fail_msg("temp.ops: %s", sqlite3_errmsg(stm_store_db(store)));
    size_t got;
    do {
        stm_opbatch_clear(batch);
        s_ok(stm_oplog_reader_next(reader, batch, 1000, 1u << 20, &got, &err), &err);
        for (size_t i = 0; i < stm_opbatch_count(batch); i++) {
            const op_t *op = stm_opbatch_at(batch, i);
            char aff[2] = {op->affinity, '\0'};
            sqlite3_reset(ins);
            sqlite3_clear_bindings(ins);
            sqlite3_bind_blob(ins, 1, op->origin.bytes, STM_ID_BYTES, SQLITE_STATIC);
            sqlite3_bind_int64(ins, 2, (sqlite3_int64)op->seq);
            sqlite3_bind_int64(ins, 3, (sqlite3_int64)op->hlc);
            sqlite3_bind_blob(ins, 4, op->version_id.bytes, STM_ID_BYTES, SQLITE_STATIC);
            sqlite3_bind_text(ins, 5, op->table, -1, SQLITE_STATIC);
            stm_op_value_bind(ins, 6, &op->pk);
            if (op->column) {
                sqlite3_bind_text(ins, 7, op->column, -1, SQLITE_STATIC);
                sqlite3_bind_text(ins, 8, aff, 1, SQLITE_TRANSIENT);
                stm_op_value_bind(ins, 9, &op->value);
            }
            if (sqlite3_step(ins) != SQLITE_DONE)
                fail_msg("temp.ops: %s", sqlite3_errmsg(stm_store_db(store)));
        }
    } while (got);
    sqlite3_finalize(ins);
    stm_opbatch_destroy(&batch);
    stm_oplog_reader_destroy(&reader);
}

void du_vector_set(store_t *store, const stm_id *origin, uint64_t seq)
{
    char hex[STM_ID_HEX_LEN + 1], sql[200];
    stm_id_to_hex(origin, hex);
    snprintf(sql, sizeof sql, "INSERT OR REPLACE INTO stemma_vector VALUES (x'%s', %llu)", hex,
             (unsigned long long)seq);
    stm_error err = {0};
    s_ok(stm_store_exec(store, sql, &err), &err);
}

long long du_int(store_t *store, const char *sql)
{
    if (strstr(sql, "temp.ops"))
        du_ops(store);
    sqlite3_stmt *stmt = NULL;
    if (sqlite3_prepare_v2(stm_store_db(store), sql, -1, &stmt, NULL) != SQLITE_OK)
        fail_msg("%s: %s", sql, sqlite3_errmsg(stm_store_db(store)));
    long long v = sqlite3_step(stmt) == SQLITE_ROW ? sqlite3_column_int64(stmt, 0) : -1;
    sqlite3_finalize(stmt);
    return v;
}

char *du_hash(store_t *store, const char *query)
{
    sqlite3_stmt *stmt = NULL;
    if (sqlite3_prepare_v2(stm_store_db(store), query, -1, &stmt, NULL) != SQLITE_OK)
        fail_msg("%s: %s", query, sqlite3_errmsg(stm_store_db(store)));
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

opbatch_t *du_lacking(store_t *from, store_t *to)
{
    stm_error err = {0};
    applier_t *src = stm_applier_new(from, NULL, NULL);
    s_ok(stm_applier_catch_up(src, &err), &err);
    stm_applier_destroy(&src);
    vector_t *since = NULL;
    oplog_reader_t *reader = NULL;
    s_ok(stm_vector_read(to, &since, &err), &err);
    s_ok(stm_oplog_reader_new(from, since, &reader, &err), &err);
    opbatch_t *batch = stm_opbatch_new(), *decoded = stm_opbatch_new();
    size_t got = 0;
    do {
        s_ok(stm_oplog_reader_next(reader, batch, 100000, 1u << 30, &got, &err), &err);
    } while (got);
    buf_t wire = BUF_INIT;
    stm_codec_encode_ops(batch, 0, stm_opbatch_count(batch), &wire);
    s_ok(stm_codec_decode_ops(wire.data, wire.len, decoded, &err), &err);
    stm_buf_free(&wire);
    stm_opbatch_destroy(&batch);
    stm_oplog_reader_destroy(&reader);
    stm_vector_destroy(&since);
    return decoded;
}

apply_stats du_apply(store_t *store, const opbatch_t *batch)
{
    stm_error err = {0};
    applier_t *applier = stm_applier_new(store, NULL, NULL);
    apply_stats st = {0};
    s_ok(stm_applier_apply(applier, batch, &st, &err), &err);
    stm_applier_destroy(&applier);
    return st;
}

char *du_conflicts(store_t *store)
{
    opbatch_t *kept = stm_opbatch_new();
    stm_error err = {0};
    s_ok(stm_conflicts_rows(store, kept, &err), &err);
    buf_t b = BUF_INIT;
    stm_buf_puts(&b, "");
    for (size_t i = 0; i < stm_opbatch_count(kept); i++) {
        const op_t *c = stm_opbatch_at(kept, i);
        char born[STM_ID_HEX_LEN + 1];
        stm_id_to_hex(&c->born_origin, born);
        stm_buf_printf(&b, "%s %lld %llu %.12s %s=", c->table, (long long)c->pk.i,
                       (unsigned long long)c->born_hlc, born, c->column ? c->column : "(none)");
        switch (c->value.type) {
        case VALUE_TEXT:
            stm_buf_append(&b, c->value.bytes, c->value.len);
            break;
        case VALUE_INTEGER:
            stm_buf_printf(&b, "%lld", (long long)c->value.i);
            break;
        default:
            stm_buf_printf(&b, "(type %d)", (int)c->value.type);
        }
        stm_buf_putc(&b, '\n');
    }
    stm_opbatch_destroy(&kept);
    return stm_buf_detach(&b);
}

store_t *du_open(const char *path)
{
    store_t *store = NULL;
    stm_error err = {0};
    s_ok(stm_store_open(path, STORE_OPEN_EXISTING, &store, &err), &err);
    return store;
}

apply_stats du_sync(const char *from, const char *to)
{
    store_t *a = du_open(from), *b = du_open(to);
    opbatch_t *batch = du_lacking(a, b);
    apply_stats st = du_apply(b, batch);
    stm_opbatch_destroy(&batch);
    stm_store_destroy(&a);
    stm_store_destroy(&b);
    return st;
}

void du_migrate_to(const char *path, const char *set, migrate_direction dir, int to,
                   migrate_result *res)
{
    stm_error err = {0};
    migrate_t *m = NULL;
    s_ok(stm_migrate_open(path, set, &m, &err), &err);
    migrate_options o = MIGRATE_OPTIONS_INIT;
    o.to = to;
    o.backup = false;
    migrate_result mine = {0};
    stm_err rc = dir == MIGRATE_UP ? stm_migrate_run(m, &o, res ? res : &mine, &err)
                                   : stm_migrate_rollback(m, &o, res ? res : &mine, &err);
    stm_migrate_result_free(&mine);
    stm_migrate_destroy(&m);
    if (rc != STM_OK)
        fail_msg("%s %s to %d: %s", dir == MIGRATE_UP ? "migrating" : "rolling back", path, to,
                 err.msg);
}


void du_format_6(const char *path)
{
    du_exec(path, "DROP TRIGGER stemma_count_parked_in; DROP TRIGGER stemma_count_parked_out; "
                  "DROP TRIGGER stemma_count_parked_re; DROP TRIGGER stemma_count_conflicts_in; "
                  "DROP TRIGGER stemma_count_conflicts_out; "
                  "DROP TRIGGER stemma_count_conflicts_re; DROP TABLE stemma_park_counts; "
                  "DROP TABLE stemma_peers; ALTER TABLE stemma_local DROP COLUMN ops; "
                  "ALTER TABLE stemma_local DROP COLUMN withheld; "
                  "ALTER TABLE stemma_local DROP COLUMN pruned; "
                  "ALTER TABLE stemma_local DROP COLUMN conflicts; "
                  "ALTER TABLE stemma_local DROP COLUMN compact_passes; "
                  "UPDATE stemma_local SET format = 6");
}
