/* vtrack.c - a version vector kept in memory with change generations and its digest
 * (vtrack.h has the invariants). */
#include "vtrack.h"
#include "base/idmap.h"
#include "base/mem.h"

#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

/* New origins' list is freed after a settle above this capacity. */
#define S_ADDED_KEEP 4096

typedef struct {
    vector_entry e; /* first: stm_vtrack_at lends it */
    uint64_t gen;   /* the generation of its last change */
} s_entry;

struct vtrack {
    s_entry *entries; /* settled, in order of origin */
    size_t count, cap;
    s_entry *added; /* origins added since the last settle, in the order met */
    size_t nadded, added_cap;
    idmap_t added_by_id; /* positions in added */
    uint64_t gen;        /* the last generation given */
    vector_digest digest;
    uint64_t sum_lo, sum_hi; /* the entries' seqs summed, low and high 32 bits apart: what
                                SQLite sums of a table without overflowing (stm_vtrack_sums) */
};

vtrack_t *stm_vtrack_new(void)
{
    return stm_calloc(1, sizeof(vtrack_t));
}

void stm_vtrack_destroy(vtrack_t **self_p)
{
    vtrack_t *vt = *self_p;
    if (!vt)
        return;
    free(vt->entries);
    free(vt->added);
    stm_idmap_free(&vt->added_by_id);
    free(vt);
    *self_p = NULL;
}

/* The settled entry of origin, or NULL. */
static s_entry *s_find(const vtrack_t *vt, const stm_id *origin)
{
    size_t lo = 0, hi = vt->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int cmp = memcmp(vt->entries[mid].e.origin.bytes, origin->bytes, STM_ID_BYTES);
        if (cmp == 0)
            return &vt->entries[mid];
        if (cmp < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static bool s_is_added(const void *ctx, uint32_t pos)
{
    const vtrack_t *vt = ((const void *const *)ctx)[0];
    return stm_id_equal(&vt->added[pos].e.origin, ((const void *const *)ctx)[1]);
}

static s_entry *s_find_added(const vtrack_t *vt, const stm_id *origin)
{
    const void *want[2] = {vt, origin};
    int64_t at = stm_idmap_find(&vt->added_by_id, stm_idmap_hash_id(origin), s_is_added, want);
    return at < 0 ? NULL : &vt->added[at];
}

void stm_vtrack_set(vtrack_t *vt, const stm_id *origin, uint64_t seq)
{
    s_entry *e = s_find(vt, origin);
    if (!e)
        e = s_find_added(vt, origin);
    if (!e) {
        /* New: merged with the others at the next settle, so that many new origins at
         * once (a batch from thousands of devices) cost one merge, not a move each. */
        vt->added = stm_grow(vt->added, &vt->added_cap, vt->nadded + 1, sizeof *vt->added);
        stm_idmap_put(&vt->added_by_id, stm_idmap_hash_id(origin), (uint32_t)vt->nadded);
        e = &vt->added[vt->nadded++];
        memset(e, 0, sizeof *e);
        e->e.origin = *origin;
    } else if (e->e.seq == seq) {
        return;
    }
    stm_vector_digest_sub(&vt->digest, &e->e.origin, e->e.seq);
    stm_vector_digest_add(&vt->digest, origin, seq);
    vt->sum_lo += (seq & 0xffffffffu) - (e->e.seq & 0xffffffffu);
    vt->sum_hi += (seq >> 32) - (e->e.seq >> 32);
    e->e.seq = seq;
    e->gen = ++vt->gen;
}

static int s_cmp(const void *a, const void *b)
{
    return memcmp(((const s_entry *)a)->e.origin.bytes, ((const s_entry *)b)->e.origin.bytes,
                  STM_ID_BYTES);
}

void stm_vtrack_settle(vtrack_t *vt)
{
    if (!vt->nadded)
        return;
    qsort(vt->added, vt->nadded, sizeof *vt->added, s_cmp);
    vt->entries = stm_grow(vt->entries, &vt->cap, vt->count + vt->nadded, sizeof *vt->entries);
    /* Merged from the back, in place. */
    size_t i = vt->count, j = vt->nadded, k = vt->count + vt->nadded;
    while (j > 0) {
        if (i > 0 && s_cmp(&vt->entries[i - 1], &vt->added[j - 1]) > 0)
            vt->entries[--k] = vt->entries[--i];
        else
            vt->entries[--k] = vt->added[--j];
    }
    vt->count += vt->nadded;
    vt->nadded = 0;
    /* Doubling left up to as much again unused: with 100,000 origins, 4.8 MB. */
    if (vt->cap > vt->count + vt->count / 8 + 1024) {
        vt->cap = vt->count + vt->count / 16 + 64;
        vt->entries = stm_realloc(vt->entries, vt->cap * sizeof *vt->entries);
    }
    /* What a load of many origins took is let go of: the list and its index are kept only
     * at the size a transaction's new origins usually need. */
    if (vt->added_cap > S_ADDED_KEEP) {
        free(vt->added);
        vt->added = NULL;
        vt->added_cap = 0;
        stm_idmap_free(&vt->added_by_id);
    } else {
        stm_idmap_clear(&vt->added_by_id);
    }
}

stm_err stm_vtrack_load(vtrack_t *vt, store_t *store, vtrack_changed_fn changed, void *ctx,
                        stm_error *err)
{
    vector_t *v = NULL;
    stm_err rc = stm_vector_read(store, &v, err);
    if (rc != STM_OK)
        return rc;
    stm_vtrack_settle(vt);
    for (size_t i = 0; i < stm_vector_count(v); i++) {
        const vector_entry *e = stm_vector_at(v, i);
        s_entry *have = s_find(vt, &e->origin);
        uint64_t was = have ? have->e.seq : 0;
        if (have && was == e->seq)
            continue;
        stm_vtrack_set(vt, &e->origin, e->seq);
        if (changed)
            changed(ctx, &e->origin, was, e->seq);
    }
    stm_vector_destroy(&v);
    stm_vtrack_settle(vt);
    return STM_OK;
}

uint64_t stm_vtrack_get(const vtrack_t *vt, const stm_id *origin)
{
    const s_entry *e = s_find(vt, origin);
    if (!e)
        e = s_find_added(vt, origin);
    return e ? e->e.seq : 0;
}

size_t stm_vtrack_count(const vtrack_t *vt)
{
    return vt->count;
}

void stm_vtrack_sums(const vtrack_t *vt, size_t *count, uint64_t *lo, uint64_t *hi)
{
    *count = vt->count + vt->nadded;
    *lo = vt->sum_lo;
    *hi = vt->sum_hi;
}

const vector_entry *stm_vtrack_at(const vtrack_t *vt, size_t i)
{
    return &vt->entries[i].e;
}

uint64_t stm_vtrack_gen(const vtrack_t *vt)
{
    return vt->gen;
}

void stm_vtrack_digest(const vtrack_t *vt, vector_digest *out)
{
    *out = vt->digest;
}

size_t stm_vtrack_changed_count(const vtrack_t *vt, uint64_t gen)
{
    size_t n = 0;
    for (size_t i = 0; i < vt->count; i++)
        n += vt->entries[i].gen > gen;
    return n;
}

vector_t *stm_vtrack_copy(const vtrack_t *vt)
{
    vector_t *v = stm_vector_new();
    for (size_t i = 0; i < vt->count; i++) /* in order: each goes at the end */
        stm_vector_set(v, &vt->entries[i].e.origin, vt->entries[i].e.seq);
    return v;
}

/* ---- encoding ---- */

static int s_write(void *data, const char *bytes, size_t len)
{
    stm_buf_append(data, bytes, len);
    return 0;
}

static void s_pack_entry(msgpack_packer *pk, const vector_entry *e)
{
    msgpack_pack_array(pk, 2);
    msgpack_pack_bin_with_body(pk, e->origin.bytes, STM_ID_BYTES);
    msgpack_pack_uint64(pk, e->seq);
}

void stm_vtrack_encode_range(const vtrack_t *vt, size_t from, size_t to, buf_t *out,
                             vector_digest *prefix)
{
    if (to > vt->count)
        to = vt->count;
    if (from > to)
        from = to;
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, s_write);
    msgpack_pack_array(&pk, to - from);
    for (size_t i = from; i < to; i++) {
        s_pack_entry(&pk, &vt->entries[i].e);
        if (prefix)
            stm_vector_digest_add(prefix, &vt->entries[i].e.origin, vt->entries[i].e.seq);
    }
}

void stm_vtrack_encode_changed(const vtrack_t *vt, uint64_t gen, buf_t *out)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, s_write);
    msgpack_pack_array(&pk, stm_vtrack_changed_count(vt, gen));
    for (size_t i = 0; i < vt->count; i++)
        if (vt->entries[i].gen > gen)
            s_pack_entry(&pk, &vt->entries[i].e);
}

static int s_by_seq_desc(const void *a, const void *b)
{
    uint64_t x = ((const uint64_t *)a)[0], y = ((const uint64_t *)b)[0];
    return x < y ? 1 : x > y ? -1 : 0;
}

void stm_vtrack_encode_top(const vtrack_t *vt, size_t max, buf_t *out)
{
    if (vt->count <= max) {
        stm_vtrack_encode_range(vt, 0, vt->count, out, NULL);
        return;
    }
    /* (seq, position) pairs, the highest seqs first; the first max are kept. */
    uint64_t(*order)[2] = stm_malloc(vt->count * sizeof *order);
    for (size_t i = 0; i < vt->count; i++)
        order[i][0] = vt->entries[i].e.seq, order[i][1] = i;
    qsort(order, vt->count, sizeof *order, s_by_seq_desc);
    bool *keep = stm_calloc(vt->count, sizeof *keep);
    for (size_t i = 0; i < max; i++)
        keep[order[i][1]] = true;
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, s_write);
    msgpack_pack_array(&pk, max);
    for (size_t i = 0; i < vt->count; i++)
        if (keep[i])
            s_pack_entry(&pk, &vt->entries[i].e);
    free(keep);
    free(order);
}
