#include "vector.h"
#include "base/mem.h"
#include "msgread.h"

#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

struct vector {
    vector_entry *entries; /* sorted by origin */
    size_t count;
    size_t cap;
};

vector_t *stm_vector_new(void)
{
    return stm_calloc(1, sizeof(vector_t));
}

void stm_vector_destroy(vector_t **self_p)
{
    vector_t *v = *self_p;
    if (!v)
        return;
    free(v->entries);
    free(v);
    *self_p = NULL;
}

/* The index of origin, or where it would go. */
static size_t s_find(const vector_t *v, const stm_id *origin, bool *found)
{
    size_t lo = 0, hi = v->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int cmp = memcmp(v->entries[mid].origin.bytes, origin->bytes, STM_ID_BYTES);
        if (cmp == 0) {
            *found = true;
            return mid;
        }
        if (cmp < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

void stm_vector_set(vector_t *v, const stm_id *origin, uint64_t seq)
{
    bool found;
    size_t i = s_find(v, origin, &found);
    if (!found) {
        v->entries = stm_grow(v->entries, &v->cap, v->count + 1, sizeof *v->entries);
        memmove(&v->entries[i + 1], &v->entries[i], (v->count - i) * sizeof *v->entries);
        v->entries[i].origin = *origin;
        v->count++;
    }
    v->entries[i].seq = seq;
}

uint64_t stm_vector_get(const vector_t *v, const stm_id *origin)
{
    bool found;
    size_t i = s_find(v, origin, &found);
    return found ? v->entries[i].seq : 0;
}

size_t stm_vector_count(const vector_t *v)
{
    return v->count;
}

const vector_entry *stm_vector_at(const vector_t *v, size_t i)
{
    return &v->entries[i];
}

stm_err stm_vector_read(store_t *store, vector_t **out, stm_error *err)
{
    sqlite3_stmt *stmt = NULL;
    if (sqlite3_prepare_v2(stm_store_db(store),
                           "SELECT origin, seq FROM stemma_vector UNION ALL "
                           "SELECT node_id, seq FROM stemma_local WHERE id = 1",
                           -1, &stmt, NULL) != SQLITE_OK)
        return stm_store_error(store, err, "reading the version vector");
    vector_t *v = stm_vector_new();
    int step;
    while ((step = sqlite3_step(stmt)) == SQLITE_ROW) {
        if (sqlite3_column_bytes(stmt, 0) != STM_ID_BYTES)
            continue;
        stm_id origin;
        memcpy(origin.bytes, sqlite3_column_blob(stmt, 0), STM_ID_BYTES);
        stm_vector_set(v, &origin, (uint64_t)sqlite3_column_int64(stmt, 1));
    }
    sqlite3_finalize(stmt);
    if (step != SQLITE_DONE) {
        stm_vector_destroy(&v);
        return stm_store_error(store, err, "reading the version vector");
    }
    *out = v;
    return STM_OK;
}

static int s_write(void *data, const char *bytes, size_t len)
{
    stm_buf_append(data, bytes, len);
    return 0;
}

void stm_vector_encode(const vector_t *v, buf_t *out)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, s_write);
    msgpack_pack_array(&pk, v->count);
    for (size_t i = 0; i < v->count; i++) {
        msgpack_pack_array(&pk, 2);
        msgpack_pack_bin_with_body(&pk, v->entries[i].origin.bytes, STM_ID_BYTES);
        msgpack_pack_uint64(&pk, v->entries[i].seq);
    }
}

stm_err stm_vector_decode(const void *data, size_t len, vector_t **out, stm_error *err)
{
    msgread_t r;
    stm_msgread_init(&r, data, len);
    uint32_t n;
    if (!stm_msgread_array(&r, &n) || n > VECTOR_MAX_ENTRIES)
        return stm_error_set(err, STM_EPROTO, "malformed version vector: not an array of at "
                                              "most %u entries", VECTOR_MAX_ENTRIES);
    vector_t *v = stm_vector_new();
    for (uint32_t i = 0; i < n; i++) {
        uint32_t fields;
        const void *origin;
        uint32_t olen;
        uint64_t seq;
        if (!stm_msgread_array(&r, &fields) || fields < 2 || !stm_msgread_bin(&r, &origin, &olen) ||
            olen != STM_ID_BYTES || !stm_msgread_uint(&r, &seq)) {
            stm_vector_destroy(&v);
            return stm_error_set(err, STM_EPROTO,
                                 "malformed version vector: entry %u is not [bin32, uint]", i);
        }
        bool extra_ok = true;
        for (uint32_t k = 2; k < fields && extra_ok; k++)
            extra_ok = stm_msgread_skip(&r);
        if (!extra_ok) {
            stm_vector_destroy(&v);
            return stm_error_set(err, STM_EPROTO,
                                 "malformed version vector: entry %u has a malformed extra field",
                                 i);
        }
        /* In order, each entry goes at the end: inserting out of order would cost a
         * peer's large vector quadratic time. */
        if (v->count && memcmp(v->entries[v->count - 1].origin.bytes, origin, STM_ID_BYTES) >= 0) {
            stm_vector_destroy(&v);
            return stm_error_set(err, STM_EPROTO,
                                 "malformed version vector: entry %u is out of order or repeated",
                                 i);
        }
        v->entries = stm_grow(v->entries, &v->cap, v->count + 1, sizeof *v->entries);
        memcpy(v->entries[v->count].origin.bytes, origin, STM_ID_BYTES);
        v->entries[v->count++].seq = seq;
    }
    if (stm_msgread_left(&r) != 0) {
        stm_vector_destroy(&v);
        return stm_error_set(err, STM_EPROTO, "malformed version vector: bytes follow it");
    }
    *out = v;
    return STM_OK;
}
