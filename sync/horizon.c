/* horizon.c - stemma_peers and the horizon made of it (horizon.h). */
#include "horizon.h"
#include "base/buf.h"

#include <string.h>

stm_err stm_horizon_note(store_t *store, const stm_id *peer, const vector_t *held, int64_t seen_ms,
                         stm_error *err)
{
    buf_t bytes = BUF_INIT;
    stm_vector_encode(held, &bytes);
    sqlite3_stmt *stmt = NULL;
    stm_err rc = STM_OK;
    if (sqlite3_prepare_v2(stm_store_db(store),
                           "INSERT INTO stemma_peers (peer, seen, vector) VALUES (?1, ?2, ?3) "
                           "ON CONFLICT (peer) DO UPDATE SET seen = excluded.seen, "
                           "vector = excluded.vector",
                           -1, &stmt, NULL) != SQLITE_OK) {
        rc = stm_store_error(store, err, "noting what a peer holds");
    } else {
        sqlite3_bind_blob(stmt, 1, peer->bytes, STM_ID_BYTES, SQLITE_STATIC);
        sqlite3_bind_int64(stmt, 2, seen_ms);
        sqlite3_bind_blob64(stmt, 3, bytes.len ? bytes.data : "", bytes.len, SQLITE_STATIC);
        if (sqlite3_step(stmt) != SQLITE_DONE)
            rc = stm_store_error(store, err, "noting what a peer holds");
    }
    sqlite3_finalize(stmt);
    stm_buf_free(&bytes);
    return rc;
}

/* Lowers every entry of h to what v holds of its origin. */
static void s_meet(vector_t *h, const vector_t *v)
{
    for (size_t i = 0; i < stm_vector_count(h); i++) {
        const vector_entry *e = stm_vector_at(h, i);
        uint64_t theirs = stm_vector_get(v, &e->origin);
        if (theirs < e->seq)
            stm_vector_set(h, &e->origin, theirs);
    }
}

stm_err stm_horizon_read(store_t *store, int64_t now_ms, int64_t keep_ms, vector_t **out,
                         size_t *known, stm_error *err)
{
    *out = NULL;
    *known = 0;
    sqlite3_stmt *forget = NULL, *stmt = NULL;
    stm_err rc = STM_OK;
    if (sqlite3_prepare_v2(stm_store_db(store), "DELETE FROM stemma_peers WHERE seen < ?1", -1,
                           &forget, NULL) != SQLITE_OK)
        return stm_store_error(store, err, "forgetting peers");
    sqlite3_bind_int64(forget, 1, now_ms - keep_ms);
    if (sqlite3_step(forget) != SQLITE_DONE)
        rc = stm_store_error(store, err, "forgetting peers");
    sqlite3_finalize(forget);
    if (rc != STM_OK)
        return rc;
    if (sqlite3_prepare_v2(stm_store_db(store), "SELECT peer, vector FROM stemma_peers", -1, &stmt,
                           NULL) != SQLITE_OK)
        return stm_store_error(store, err, "reading what peers hold");
    vector_t *h = NULL;
    int step;
    while (rc == STM_OK && (step = sqlite3_step(stmt)) == SQLITE_ROW) {
        vector_t *v = NULL;
        const void *bytes = sqlite3_column_blob(stmt, 1);
        size_t len = (size_t)sqlite3_column_bytes(stmt, 1);
        if (stm_vector_decode(bytes ? bytes : "", len, &v, err) != STM_OK) {
            rc = stm_error_set(err, STM_ECORRUPT,
                               "%s: stemma_peers: a peer's vector is damaged (delete the row: "
                               "the node notes it again when the peer next answers)",
                               stm_store_path(store));
            break;
        }
        if (!h)
            h = v;
        else {
            s_meet(h, v);
            stm_vector_destroy(&v);
        }
        ++*known;
    }
    if (rc == STM_OK && step != SQLITE_DONE)
        rc = stm_store_error(store, err, "reading what peers hold");
    sqlite3_finalize(stmt);
    if (rc != STM_OK) {
        stm_vector_destroy(&h);
        return rc;
    }
    *out = h;
    return STM_OK;
}
