#include "vector.h"
#include "base/mem.h"
#include "msgread.h"

#include <msgpack.h>
#include <sodium.h>
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

bool stm_vector_merge(vector_t *v, const vector_t *changes, vector_digest *d)
{
    /* Entries changed in place, and those to add counted, in one walk of both. */
    size_t i = 0, added = 0;
    bool fell = false;
    for (size_t k = 0; k < changes->count; k++) {
        const vector_entry *c = &changes->entries[k];
        while (i < v->count && memcmp(v->entries[i].origin.bytes, c->origin.bytes, STM_ID_BYTES) < 0)
            i++;
        if (i < v->count && stm_id_equal(&v->entries[i].origin, &c->origin)) {
            if (d) {
                stm_vector_digest_sub(d, &c->origin, v->entries[i].seq);
                stm_vector_digest_add(d, &c->origin, c->seq);
            }
            fell = fell || c->seq < v->entries[i].seq;
            v->entries[i].seq = c->seq;
        } else {
            added++;
        }
    }
    if (!added)
        return fell;
    /* Merged from the back, in place: the new ones among the old. */
    v->entries = stm_grow(v->entries, &v->cap, v->count + added, sizeof *v->entries);
    size_t a = v->count, k = changes->count, to = v->count + added;
    while (k > 0) {
        const vector_entry *c = &changes->entries[k - 1];
        int cmp = a > 0 ? memcmp(v->entries[a - 1].origin.bytes, c->origin.bytes, STM_ID_BYTES) : -1;
        if (cmp > 0) {
            v->entries[--to] = v->entries[--a];
        } else if (cmp == 0) {
            v->entries[--to] = v->entries[--a]; /* changed above */
            k--;
        } else {
            v->entries[--to] = *c;
            if (d)
                stm_vector_digest_add(d, &c->origin, c->seq);
            k--;
        }
    }
    v->count += added;
    return fell;
}

bool stm_vector_fell(const vector_t *was, const vector_t *now)
{
    size_t j = 0;
    for (size_t i = 0; i < was->count; i++) {
        const vector_entry *e = &was->entries[i];
        while (j < now->count && memcmp(now->entries[j].origin.bytes, e->origin.bytes, STM_ID_BYTES) < 0)
            j++;
        bool there = j < now->count && stm_id_equal(&now->entries[j].origin, &e->origin);
        if (e->seq > (there ? now->entries[j].seq : 0))
            return true;
    }
    return false;
}

void stm_vector_out_whole(vector_out *o, const vector_t *v)
{
    buf_t keep = o->entries;
    memset(o, 0, sizeof *o);
    o->entries = keep;
    stm_buf_reset(&o->entries);
    stm_vector_encode(v, &o->entries);
    o->has_digest = true;
    stm_vector_digest_of(v, &o->digest);
}

void stm_vector_out_of_msg(vector_out *o, const vector_msg *m)
{
    buf_t keep = o->entries;
    memset(o, 0, sizeof *o);
    o->entries = keep;
    stm_buf_reset(&o->entries);
    vector_t *none = m->entries ? NULL : stm_vector_new();
    stm_vector_encode(m->entries ? m->entries : none, &o->entries);
    stm_vector_destroy(&none);
    o->delta = m->delta;
    o->base = m->base;
    o->has_digest = m->has_digest;
    o->digest = m->digest;
    o->more = m->more;
    o->part = m->part;
}

void stm_vector_msg_clear(vector_msg *m)
{
    stm_vector_destroy(&m->entries);
    memset(m, 0, sizeof *m);
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

/* ---- the digest ---- */

static const unsigned char s_digest_key[crypto_shorthash_siphashx24_KEYBYTES] = {
    's', 't', 'e', 'm', 'm', 'a', ' ', 'v', 'e', 'c', 't', 'o', 'r', ' ', 'v', '1'};

static uint64_t s_le64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* The entry's two halves, or nothing for seq 0. */
static bool s_entry_hash(const stm_id *origin, uint64_t seq, uint64_t lanes[2])
{
    if (!seq)
        return false;
    unsigned char m[STM_ID_BYTES + 8], h[crypto_shorthash_siphashx24_BYTES];
    memcpy(m, origin->bytes, STM_ID_BYTES);
    for (int i = 0; i < 8; i++)
        m[STM_ID_BYTES + i] = (unsigned char)(seq >> (56 - 8 * i));
    crypto_shorthash_siphashx24(h, m, sizeof m, s_digest_key);
    lanes[0] = s_le64(h);
    lanes[1] = s_le64(h + 8);
    return true;
}

void stm_vector_digest_add(vector_digest *d, const stm_id *origin, uint64_t seq)
{
    uint64_t l[2];
    if (s_entry_hash(origin, seq, l))
        d->lane[0] += l[0], d->lane[1] += l[1];
}

void stm_vector_digest_sub(vector_digest *d, const stm_id *origin, uint64_t seq)
{
    uint64_t l[2];
    if (s_entry_hash(origin, seq, l))
        d->lane[0] -= l[0], d->lane[1] -= l[1];
}

void stm_vector_digest_of(const vector_t *v, vector_digest *out)
{
    memset(out, 0, sizeof *out);
    for (size_t i = 0; i < v->count; i++)
        stm_vector_digest_add(out, &v->entries[i].origin, v->entries[i].seq);
}

void stm_vector_digest_bytes(const vector_digest *d, unsigned char out[VECTOR_DIGEST_BYTES])
{
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < 8; i++)
            out[8 * k + i] = (unsigned char)(d->lane[k] >> (8 * i));
}

void stm_vector_digest_from(vector_digest *d, const unsigned char in[VECTOR_DIGEST_BYTES])
{
    d->lane[0] = s_le64(in);
    d->lane[1] = s_le64(in + 8);
}

bool stm_vector_digest_equal(const vector_digest *a, const vector_digest *b)
{
    return a->lane[0] == b->lane[0] && a->lane[1] == b->lane[1];
}

stm_err stm_vector_decode(const void *data, size_t len, vector_t **out, stm_error *err)
{
    msgread_t r;
    stm_msgread_init(&r, data, len);
    uint32_t n;
    if (!stm_msgread_array(&r, &n) || n > VECTOR_MAX_ENTRIES)
        return stm_error_set(err, STM_EPROTO, "malformed version vector: not an array of at "
                                              "most %u entries", VECTOR_MAX_ENTRIES);
    size_t cut;
    return stm_vector_decode_max(data, len, VECTOR_MAX_ENTRIES, out, &cut, err);
}

stm_err stm_vector_decode_max(const void *data, size_t len, size_t max, vector_t **out, size_t *cut,
                              stm_error *err)
{
    msgread_t r;
    stm_msgread_init(&r, data, len);
    uint32_t n;
    *cut = 0;
    /* Nothing is sized by the count: entries are read (and kept) one by one, so a count
     * with no bytes behind it fails at the first entry missing. */
    if (!stm_msgread_array(&r, &n))
        return stm_error_set(err, STM_EPROTO, "malformed version vector: not an array");
    vector_t *v = stm_vector_new();
    stm_id last;
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
        if (i && memcmp(last.bytes, origin, STM_ID_BYTES) >= 0) {
            stm_vector_destroy(&v);
            return stm_error_set(err, STM_EPROTO,
                                 "malformed version vector: entry %u is out of order or repeated",
                                 i);
        }
        memcpy(last.bytes, origin, STM_ID_BYTES);
        if (v->count >= max) {
            ++*cut; /* checked, not kept */
            continue;
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
