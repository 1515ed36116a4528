/* sqlite_ext.c - stemma as a SQLite loadable extension: its functions in SQL, so that
 * any language's SQLite binding syncs a database without bindings of its own
 * (docs/user-guide.md, "The SQLite extension").
 *
 *   stemma_version()                    text: this stemma's version
 *   stemma_status([schemas])            text (JSON): the database's schema version id
 *                                       (and number, given its schema set), its
 *                                       operations, parked ones, conflicts
 *   stemma_vector()                     blob: the database's version vector
 *   stemma_changes([vector])            blob: a bundle of the operations the vector
 *                                       lacks (NULL or none: all of them)
 *   stemma_apply(bundle [, schemas])    text (JSON): what applying the bundle did;
 *                                       with its schema set, operations written at
 *                                       another version are translated (renames)
 *   stemma_migrate(schemas [, to])      integer: the version the database is at after
 *                                       migrating to `to` (none: the newest)
 *   stemma_compare(local, remote)       text (JSON): how the second history (a schema
 *                                       directory or exported TOML) relates to the first
 *
 * The blobs are the bytes of `stemma vector` and `stemma changes` files exactly, so a
 * blob and a file go either way. Each call works on the database of the connection
 * it is called on (its "main" file) through a connection of its own, as `stemma
 * apply` beside the application would: it must be called outside a transaction on
 * that connection (the other would wait for its lock), and the database must be a
 * file. Errors are SQL errors with stemma's one-line message.
 *
 * Only the functions that read are usable from triggers and views; the ones that write
 * (apply, migrate, changes, which turns the application's queued changes into
 * operations) are SQLITE_DIRECTONLY. The module must run in a process whose SQLite is
 * the system's libsqlite3 (Python's sqlite3 module, the sqlite3 shell): stemma's own
 * connections use it, and two copies of SQLite in one process would not see each
 * other's locks. */
#include <sqlite3ext.h>
SQLITE_EXTENSION_INIT1

#include "stemma.h"
#include "base/buf.h"
#include "base/error.h"
#include "base/mem.h"
#include "lineage/cache.h"
#include "lineage/lens.h"
#include "lineage/load.h"
#include "sync/apply.h"
#include "sync/bundle.h"
#include "sync/dbopen.h"
#include "sync/store.h"

#include <stdlib.h>
#include <string.h>

/* Sets the SQL error of ctx from err, prefixed by the function's name. */
static void s_fail(sqlite3_context *ctx, const char *fn, const char *msg)
{
    char *text = sqlite3_mprintf("%s: %s", fn, msg);
    sqlite3_result_error(ctx, text ? text : fn, -1);
    sqlite3_free(text);
}

/* The path of the calling connection's database, checked usable: NULL (the error set)
 * for an in-memory or temporary one, or a call inside a transaction. */
static const char *s_db_path(sqlite3_context *ctx, const char *fn)
{
    sqlite3 *db = sqlite3_context_db_handle(ctx);
    const char *path = sqlite3_db_filename(db, "main");
    if (!path || !*path) {
        s_fail(ctx, fn, "the database is not a file (stemma keeps its operations in the "
                        "database file itself)");
        return NULL;
    }
    if (!sqlite3_get_autocommit(db)) {
        s_fail(ctx, fn, "called inside a transaction: stemma works through a connection of "
                        "its own, which would wait for this one's lock; call it outside BEGIN "
                        "... COMMIT");
        return NULL;
    }
    return path;
}

/* The database opened for stemma (sync/dbopen.h); NULL with the error set. */
static store_t *s_open(sqlite3_context *ctx, const char *fn)
{
    const char *path = s_db_path(ctx, fn);
    if (!path)
        return NULL;
    store_t *store = NULL;
    stm_error err = {0};
    if (stm_dbopen(path, &store, NULL, &err) != STM_OK) {
        s_fail(ctx, fn, err.msg);
        return NULL;
    }
    return store;
}

/* The text of argument i, or NULL (an error set) when it is not one. */
static const char *s_text_arg(sqlite3_context *ctx, const char *fn, sqlite3_value *v,
                              const char *what)
{
    const char *s = sqlite3_value_type(v) == SQLITE_TEXT ? (const char *)sqlite3_value_text(v)
                                                          : NULL;
    if (!s || !*s) {
        char *msg = sqlite3_mprintf("%s must be a text (a path)", what);
        s_fail(ctx, fn, msg ? msg : what);
        sqlite3_free(msg);
    }
    return s && *s ? s : NULL;
}

/* A schema set's lineage and lenses from path (both may come back NULL: an exported
 * history without lenses); false with the error set. */
static bool s_history(sqlite3_context *ctx, const char *fn, const char *path, lineage_t **set,
                      lens_set_t **lenses)
{
    stm_error err = {0};
    char *cache = stm_cache_dir_from_env();
    stm_err rc = stm_load_history(path, cache, set, lenses, NULL, &err);
    free(cache);
    if (rc != STM_OK)
        s_fail(ctx, fn, err.msg);
    return rc == STM_OK;
}

static void s_version(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    (void)argc;
    (void)argv;
    sqlite3_result_text(ctx, stemma_version(), -1, SQLITE_STATIC);
}

static void s_status(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    static const char fn[] = "stemma_status";
    const char *schemas = NULL;
    if (argc > 0 && !(schemas = s_text_arg(ctx, fn, argv[0], "the schema set")))
        return;
    lineage_t *set = NULL;
    if (schemas && !s_history(ctx, fn, schemas, &set, NULL))
        return;
    store_t *store = s_open(ctx, fn);
    stm_error err = {0};
    stm_id v;
    store_counts c;
    if (store && (stm_store_version_id(store, &v, &err) != STM_OK ||
                  stm_store_counts(store, &c, &err) != STM_OK)) {
        s_fail(ctx, fn, err.msg);
        stm_store_destroy(&store);
    }
    if (store) {
        char hex[2 * STM_ID_BYTES + 1];
        stm_id_to_hex(&v, hex);
        buf_t json = BUF_INIT;
        stm_buf_printf(&json, "{\"version_id\": \"%s\"", hex);
        if (set) {
            int number = 0;
            for (size_t i = 0; i < stm_lineage_count(set) && !number; i++)
                if (stm_id_equal(&stm_lineage_version_at(set, i)->id, &v))
                    number = (int)i + 1;
            if (number)
                stm_buf_printf(&json, ", \"version\": %d", number);
            else
                stm_buf_puts(&json, ", \"version\": null");
        }
        stm_buf_printf(&json,
                       ", \"operations\": %llu, \"parked\": %llu, \"conflicts\": %llu, "
                       "\"withheld\": %llu, \"pruned\": %llu}",
                       (unsigned long long)c.operations, (unsigned long long)c.parked,
                       (unsigned long long)c.conflicts, (unsigned long long)c.withheld,
                       (unsigned long long)c.pruned);
        sqlite3_result_text(ctx, stm_buf_str(&json), -1, SQLITE_TRANSIENT);
        stm_buf_free(&json);
    }
    stm_store_destroy(&store);
    stm_lineage_destroy(&set);
}

static void s_vector(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    static const char fn[] = "stemma_vector";
    (void)argc;
    (void)argv;
    store_t *store = s_open(ctx, fn);
    if (!store)
        return;
    stm_error err = {0};
    vector_t *v = NULL;
    char *blob = NULL;
    size_t len = 0;
    if (stm_vector_read(store, &v, &err) != STM_OK ||
        stm_bundle_write_vector_mem(v, &blob, &len, &err) != STM_OK)
        s_fail(ctx, fn, err.msg);
    else
        sqlite3_result_blob64(ctx, blob, len, free);
    stm_vector_destroy(&v);
    stm_store_destroy(&store);
}

static void s_changes(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    static const char fn[] = "stemma_changes";
    stm_error err = {0};
    vector_t *since = NULL;
    if (argc > 0 && sqlite3_value_type(argv[0]) != SQLITE_NULL) {
        if (sqlite3_value_type(argv[0]) != SQLITE_BLOB) {
            s_fail(ctx, fn, "the vector must be a blob (stemma_vector() of the other database)");
            return;
        }
        if (stm_bundle_read_vector_mem(sqlite3_value_blob(argv[0]),
                                       (size_t)sqlite3_value_bytes(argv[0]), &since,
                                       &err) != STM_OK) {
            s_fail(ctx, fn, err.msg);
            return;
        }
    }
    store_t *store = s_open(ctx, fn);
    char *blob = NULL;
    size_t len = 0;
    bundle_info info;
    if (store && stm_bundle_write_mem(store, since, &blob, &len, &info, &err) != STM_OK)
        s_fail(ctx, fn, err.msg);
    else if (store)
        sqlite3_result_blob64(ctx, blob, len, free);
    stm_vector_destroy(&since);
    stm_store_destroy(&store);
}

static void s_apply(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    static const char fn[] = "stemma_apply";
    if (sqlite3_value_type(argv[0]) != SQLITE_BLOB) {
        s_fail(ctx, fn, "the bundle must be a blob (stemma_changes() of the other database)");
        return;
    }
    const char *schemas = NULL;
    if (argc > 1 && !(schemas = s_text_arg(ctx, fn, argv[1], "the schema set")))
        return;
    lineage_t *set = NULL;
    lens_set_t *lenses = NULL;
    if (schemas && !s_history(ctx, fn, schemas, &set, &lenses))
        return;
    store_t *store = s_open(ctx, fn);
    if (store) {
        stm_error err = {0};
        applier_t *applier = stm_applier_new(store, NULL, NULL);
        stm_applier_set_lenses(applier, lenses, set);
        apply_stats st = {0};
        bundle_info info;
        bool owed = false;
        /* A replay a migration left unfinished first, as `stemma apply` does. */
        stm_err rc = stm_applier_replay_owed(applier, &st, &owed, &err);
        if (rc == STM_OK)
            rc = stm_bundle_apply_mem(applier, sqlite3_value_blob(argv[0]),
                                      (size_t)sqlite3_value_bytes(argv[0]), &st, &info, &err);
        store_counts c = {0};
        if (rc == STM_OK)
            rc = stm_store_counts(store, &c, &err);
        stm_applier_destroy(&applier);
        if (rc != STM_OK) {
            s_fail(ctx, fn, err.msg);
        } else {
            char *json = sqlite3_mprintf(
                "{\"applied\": %llu, \"present\": %llu, \"parked\": %llu, \"replayed\": %llu, "
                "\"parked_total\": %llu}",
                (unsigned long long)st.applied, (unsigned long long)st.present,
                (unsigned long long)st.parked, (unsigned long long)st.replayed,
                (unsigned long long)c.parked);
            sqlite3_result_text(ctx, json, -1, sqlite3_free);
        }
    }
    stm_store_destroy(&store);
    stm_lens_destroy(&lenses);
    stm_lineage_destroy(&set);
}

static void s_migrate(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    static const char fn[] = "stemma_migrate";
    const char *schemas = s_text_arg(ctx, fn, argv[0], "the schema set");
    if (!schemas)
        return;
    stemma_migrate_options opts = STEMMA_MIGRATE_OPTIONS_INIT;
    opts.backup = 0; /* the application keeps its own copies; a file beside it it did not ask
                        for would surprise it */
    if (argc > 1 && sqlite3_value_type(argv[1]) != SQLITE_NULL) {
        if (sqlite3_value_type(argv[1]) != SQLITE_INTEGER || sqlite3_value_int64(argv[1]) < 1 ||
            sqlite3_value_int64(argv[1]) > 1000000) {
            s_fail(ctx, fn, "the version to reach must be a positive integer");
            return;
        }
        opts.to = (int)sqlite3_value_int64(argv[1]);
    }
    const char *path = s_db_path(ctx, fn);
    if (!path)
        return;
    stemma_migrate_result result;
    stemma_error err;
    if (stemma_migrate(path, schemas, &opts, &result, &err) != STEMMA_OK)
        s_fail(ctx, fn, err.message);
    else
        sqlite3_result_int(ctx, result.version);
}

static void s_compare(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    static const char fn[] = "stemma_compare";
    (void)argc;
    const char *paths[2] = {s_text_arg(ctx, fn, argv[0], "the local history"), NULL};
    if (!paths[0] || !(paths[1] = s_text_arg(ctx, fn, argv[1], "the remote history")))
        return;
    stemma_lineage *l[2] = {NULL, NULL};
    stemma_comparison *c = NULL;
    stemma_error err;
    if (stemma_lineage_load(paths[0], &l[0], &err) != STEMMA_OK ||
        stemma_lineage_load(paths[1], &l[1], &err) != STEMMA_OK ||
        stemma_compare(l[0], l[1], &c, &err) != STEMMA_OK) {
        s_fail(ctx, fn, err.message);
    } else {
        /* The version both histories share last; none (null) when they are unrelated. */
        size_t common = stemma_comparison_common(c);
        const char *relation = stemma_relation_name(stemma_comparison_relation(c));
        char *json = common ? sqlite3_mprintf("{\"relation\": \"%s\", \"common\": %llu}",
                                              relation, (unsigned long long)common)
                            : sqlite3_mprintf("{\"relation\": \"%s\", \"common\": null}",
                                              relation);
        sqlite3_result_text(ctx, json, -1, sqlite3_free);
    }
    stemma_comparison_free(&c);
    stemma_lineage_free(&l[0]);
    stemma_lineage_free(&l[1]);
}

#if defined(__GNUC__) || defined(__clang__)
#define S_EXPORT __attribute__((visibility("default")))
#else
#define S_EXPORT
#endif

/* The entry point SQLite derives from the file's name (stemma.so: sqlite3_stemma_init). */
S_EXPORT int sqlite3_stemma_init(sqlite3 *db, char **errmsg, const sqlite3_api_routines *api);
int sqlite3_stemma_init(sqlite3 *db, char **errmsg, const sqlite3_api_routines *api)
{
    SQLITE_EXTENSION_INIT2(api);
    (void)errmsg;
    static const struct {
        const char *name;
        int min, max; /* arguments */
        bool writes;
        void (*fn)(sqlite3_context *, int, sqlite3_value **);
    } fns[] = {
        {"stemma_version", 0, 0, false, s_version}, {"stemma_status", 0, 1, false, s_status},
        {"stemma_vector", 0, 0, false, s_vector},   {"stemma_changes", 0, 1, true, s_changes},
        {"stemma_apply", 1, 2, true, s_apply},      {"stemma_migrate", 1, 2, true, s_migrate},
        {"stemma_compare", 2, 2, false, s_compare},
    };
    for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++)
        for (int n = fns[i].min; n <= fns[i].max; n++) {
            int flags = SQLITE_UTF8 | (fns[i].writes ? SQLITE_DIRECTONLY : 0);
            int rc = sqlite3_create_function_v2(db, fns[i].name, n, flags, NULL, fns[i].fn, NULL,
                                                NULL, NULL);
            if (rc != SQLITE_OK)
                return rc;
        }
    return SQLITE_OK;
}
