/* api_db.c - a database's changes, vector and bundles, for applications
 * (include/stemma.h): `stemma changes`, `vector` and `apply` as calls. */
#include "api_internal.h"
#include "base/mem.h"
#include "lineage/cache.h"
#include "lineage/load.h"
#include "sync/apply.h"
#include "sync/bundle.h"
#include "sync/dbopen.h"
#include "sync/oplog.h"

#include <stdlib.h>

struct stemma_db {
    store_t *store;     /* the database, owned */
    lineage_t *set;     /* its schema set's lineage, owned; NULL without one */
    lens_set_t *lenses; /* what the set's migrations do to the data, owned; NULL without */
};

STEMMA_API stemma_code stemma_db_open(const char *path, const char *schemas, stemma_db **out,
                                      stemma_error *err)
{
    if (!path || !out)
        return stm_api_fail(err, STEMMA_EUSAGE, "stemma_db_open: path and out are required");
    *out = NULL;
    stm_error e = {0};
    stemma_db *db = stm_calloc(1, sizeof *db);
    stm_err rc = STM_OK;
    if (schemas) {
        char *cache = stm_cache_dir_from_env();
        rc = stm_load_history(schemas, cache, &db->set, &db->lenses, NULL, &e);
        free(cache);
    }
    if (rc == STM_OK)
        rc = stm_dbopen(path, &db->store, NULL, &e);
    if (rc != STM_OK) {
        stemma_db_close(&db);
        return stm_api_error(err, &e);
    }
    *out = db;
    return STEMMA_OK;
}

STEMMA_API void stemma_db_close(stemma_db **db)
{
    if (!db || !*db)
        return;
    stm_store_destroy(&(*db)->store);
    stm_lineage_destroy(&(*db)->set);
    stm_lens_destroy(&(*db)->lenses);
    free(*db);
    *db = NULL;
}

STEMMA_API stemma_code stemma_db_version_id(stemma_db *db, char id[65], stemma_error *err)
{
    if (!db || !id)
        return stm_api_fail(err, STEMMA_EUSAGE, "stemma_db_version_id: db and id are required");
    stm_error e = {0};
    stm_id v;
    if (stm_store_version_id(db->store, &v, &e) != STM_OK)
        return stm_api_error(err, &e);
    static const stm_id none = {{0}};
    if (stm_id_equal(&v, &none))
        id[0] = '\0';
    else
        stm_id_to_hex(&v, id);
    return STEMMA_OK;
}

STEMMA_API stemma_code stemma_db_write_vector(stemma_db *db, const char *path, stemma_error *err)
{
    if (!db || !path)
        return stm_api_fail(err, STEMMA_EUSAGE, "stemma_db_write_vector: db and path are "
                                                "required");
    stm_error e = {0};
    vector_t *v = NULL;
    stm_err rc = stm_vector_read(db->store, &v, &e);
    if (rc == STM_OK)
        rc = stm_bundle_write_vector(v, path, &e);
    stm_vector_destroy(&v);
    return rc == STM_OK ? STEMMA_OK : stm_api_error(err, &e);
}

STEMMA_API stemma_code stemma_db_write_changes(stemma_db *db, const char *since_path,
                                               const char *bundle_path,
                                               stemma_bundle_info *info, stemma_error *err)
{
    if (!db || !bundle_path)
        return stm_api_fail(err, STEMMA_EUSAGE, "stemma_db_write_changes: db and bundle_path "
                                                "are required");
    stm_error e = {0};
    vector_t *since = NULL;
    bundle_info bi = {0};
    stm_err rc = since_path ? stm_bundle_read_vector(since_path, &since, &e) : STM_OK;
    if (rc == STM_OK)
        rc = stm_bundle_write(db->store, since, bundle_path, &bi, &e);
    stm_vector_destroy(&since);
    if (info)
        *info = (stemma_bundle_info){.ops = bi.ops, .bytes = bi.bytes, .withheld = bi.withheld};
    return rc == STM_OK ? STEMMA_OK : stm_api_error(err, &e);
}

STEMMA_API stemma_code stemma_db_apply(stemma_db *db, const char *path, stemma_apply_stats *stats,
                                       stemma_error *err)
{
    if (stats)
        *stats = (stemma_apply_stats){0};
    if (!db || !path)
        return stm_api_fail(err, STEMMA_EUSAGE, "stemma_db_apply: db and path are required");
    stm_error e = {0};
    applier_t *applier = stm_applier_new(db->store, NULL, NULL);
    stm_applier_set_lenses(applier, db->lenses, db->set);
    apply_stats st = {0};
    bundle_info info;
    bool owed = false;
    /* A replay a migration left unfinished first (killed, disk full): it is owed. */
    stm_err rc = stm_applier_replay_owed(applier, &st, &owed, &e);
    if (rc == STM_OK)
        rc = stm_bundle_apply(applier, path, &st, &info, &e);
    uint64_t total = 0, parked = 0;
    if (rc == STM_OK)
        rc = stm_oplog_counts(db->store, &total, &parked, &e);
    stm_applier_destroy(&applier);
    if (stats)
        *stats = (stemma_apply_stats){.applied = st.applied,
                                      .present = st.present,
                                      .parked = st.parked,
                                      .replayed = st.replayed,
                                      .parked_total = parked};
    return rc == STM_OK ? STEMMA_OK : stm_api_error(err, &e);
}
